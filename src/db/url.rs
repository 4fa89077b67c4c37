//! Parsing `DATABASE_URL` into a target, and redacting it for output.

use super::{DbError, DbResult, Dialect, ErrorKind};
use std::path::PathBuf;

/// Where to connect. `url` may hold a password: never print it, print `redacted`.
#[derive(Clone)]
pub struct Target {
    pub dialect: Dialect,
    url: String,
    pub redacted: String,
    /// SQLite only: the database file.
    pub sqlite_path: Option<PathBuf>,
    /// The database name, for lock names and messages.
    pub database: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.redacted)
    }
}

fn config_error(message: impl Into<String>) -> DbError {
    DbError::new(ErrorKind::Config, message)
}

impl Target {
    pub fn parse(raw: &str) -> DbResult<Target> {
        let raw = raw.trim();
        let scheme = raw.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let dialect = match scheme.as_deref() {
            Some("postgres" | "postgresql") => Dialect::Postgres,
            Some("mysql" | "mariadb") => Dialect::Mysql,
            Some("sqlite") => Dialect::Sqlite,
            Some(other) => {
                return Err(config_error(format!(
                    "unsupported database URL scheme `{other}://`; use postgres://, mysql://, mariadb:// or sqlite://"
                )))
            }
            None => {
                return Err(config_error(
                    "malformed database URL (no scheme); expected e.g. postgres://user@host:5432/db or sqlite://path/to/file.db",
                ))
            }
        };
        if dialect == Dialect::Sqlite {
            return Self::parse_sqlite(raw);
        }
        let parsed = ::url::Url::parse(raw).map_err(|e| {
            config_error(format!(
                "malformed database URL ({e}); expected e.g. {}://user:password@host:port/database",
                scheme.as_deref().unwrap_or("postgres")
            ))
        })?;
        if parsed.host_str().unwrap_or("").is_empty() {
            return Err(config_error("malformed database URL: no host; expected scheme://user:password@host:port/database"));
        }
        let database = parsed.path().trim_start_matches('/').to_string();
        if database.is_empty() {
            return Err(config_error(
                "database URL names no database; add it as the path, e.g. .../myapp",
            ));
        }
        let mut redacted = parsed.clone();
        if redacted.password().is_some() {
            let _ = redacted.set_password(Some("***"));
        }
        let url = if dialect == Dialect::Mysql && scheme.as_deref() == Some("mariadb") {
            format!("mysql{}", &raw["mariadb".len()..])
        } else {
            raw.to_string()
        };
        Ok(Target {
            dialect,
            url,
            redacted: redacted.to_string(),
            sqlite_path: None,
            database,
        })
    }

    fn parse_sqlite(raw: &str) -> DbResult<Target> {
        let rest = &raw["sqlite://".len()..];
        let path = rest.split('?').next().unwrap_or("");
        if path.is_empty() {
            return Err(config_error("sqlite URL names no file; use sqlite://relative/path.db or sqlite:///absolute/path.db"));
        }
        let path = PathBuf::from(path);
        Ok(Target {
            dialect: Dialect::Sqlite,
            url: raw.to_string(),
            redacted: raw.to_string(),
            database: path.display().to_string(),
            sqlite_path: Some(path),
        })
    }

    /// The URL with its secret, for drivers only.
    pub(crate) fn secret_url(&self) -> &str {
        &self.url
    }
}

/// Replaces the password of every URL with credentials inside `text` (an argument, an error message).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, token) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&redact_token(token));
    }
    out
}

fn redact_token(token: &str) -> String {
    let Some(start) = token.find("://") else {
        return token.to_string();
    };
    let rest = &token[start + 3..];
    let Some(at) = rest.find('@') else {
        return token.to_string();
    };
    let creds = &rest[..at];
    match creds.split_once(':') {
        Some((user, pass)) if pass != "***" && !creds.contains('/') => {
            format!("{}{user}:***{}", &token[..start + 3], &rest[at..])
        }
        _ => token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_redaction() {
        let t = Target::parse("mariadb://root:s3cret@127.0.0.1:3306/app").unwrap();
        assert_eq!(t.dialect, Dialect::Mysql);
        assert!(!t.redacted.contains("s3cret"));
        assert_eq!(t.database, "app");
        assert!(t.secret_url().starts_with("mysql://"));
        assert!(Target::parse("oracle://x/y").is_err());
        assert!(Target::parse("nonsense").is_err());
        let s = Target::parse("sqlite:///tmp/a.db").unwrap();
        assert_eq!(s.sqlite_path.unwrap(), PathBuf::from("/tmp/a.db"));
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("cannot connect to mysql://root:***@h:3306/db: denied for 'root'@'h' (x)"),
            "cannot connect to mysql://root:***@h:3306/db: denied for 'root'@'h' (x)"
        );
        assert_eq!(
            redact("--database-url=mysql://a:b@c/d"),
            "--database-url=mysql://a:***@c/d"
        );
    }
}
