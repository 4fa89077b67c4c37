//! Which database to work on: `--database-url` > `DATABASE_URL` > `--env-file` (Laravel's `.env`).
//! Errors about the database name where its setting came from (the flag, the environment, a line of
//! the `.env`), so the operator fixes the right place.

use crate::db::Target;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

// Beside this file, not in src/target/: .gitignore's `target/` would hide that directory.
#[path = "dotenv.rs"]
pub(crate) mod dotenv;

/// Where a database URL given as a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum UrlFrom {
    /// `--database-url`.
    #[default]
    Flag,
    /// The `DATABASE_URL` environment variable.
    Environment,
}

/// `sqlite:/abs/path.db` and `sqlite:rel.db` (one colon, as SQLAlchemy and some PHP configs write
/// it) as `sqlite:///abs/path.db` and `sqlite://rel.db`; other URLs as given.
pub(crate) fn normalize(url: &str) -> String {
    let url = url.trim();
    match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("sqlite:") && !url[7..].starts_with("//") => {
            format!("sqlite://{}", &url[7..])
        }
        _ => url.to_string(),
    }
}

/// Parses a URL whose origin is `origin`; a malformed one is named by where it came from.
fn parse_from(url: &str, origin: &str) -> Result<Target> {
    Target::parse(&normalize(url)).map_err(|e| {
        let e = Error::from(e);
        let text = format!("{e} (the URL came from {origin})");
        let e = match e {
            Error::Usage(_) => Error::Usage(text),
            _ => Error::Runtime(text),
        };
        e.located(origin)
    })
}

/// Resolves the target from the flag/env value or the app's env file, with where its setting came
/// from, e.g. `--database-url` or `DB_DATABASE in /srv/app/.env`: errors about the database name
/// it ([`Error::located`]). An error that is not yet about a setting (no database given, an
/// unreadable `.env`) names none.
pub(crate) fn resolve(
    url: Option<&str>,
    from: UrlFrom,
    env_file: Option<&Path>,
) -> Result<(Target, String)> {
    if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
        let origin = match from {
            UrlFrom::Flag => "--database-url",
            UrlFrom::Environment => "DATABASE_URL",
        };
        return Ok((parse_from(url, origin)?, origin.to_string()));
    }
    match env_file {
        Some(path) => from_env_file(path),
        None => Err(Error::Usage(
            "no database given; set DATABASE_URL, pass --database-url URL, or --env-file path/to/.env".into(),
        )),
    }
}

/// Reads the env file as Laravel does (see [`dotenv`]): the file's variables, with the process
/// environment winning where it sets one.
fn read_env_file(path: &Path) -> Result<dotenv::Vars> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Usage(format!(
                "env file {shown} does not exist; check the --env-file path"
            )))
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "cannot read env file {shown}: {}",
                one_line(&e)
            )))
        }
        Ok(m) if m.is_dir() => {
            return Err(Error::Usage(format!(
                "env file {shown} is a directory; give the path of the .env file itself"
            )))
        }
        Ok(_) => {}
    }
    let text = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("cannot read env file {shown}: {}", one_line(&e))))?;
    let text = String::from_utf8(text).map_err(|_| {
        Error::Usage(format!(
            "env file {shown} is not UTF-8 text; save it as UTF-8"
        ))
    })?;
    // The error names the line and its key only: the value may be the password.
    let entries = dotenv::parse(&text).map_err(|e| {
        Error::Usage(format!(
            "env file {shown} is malformed at {e}; fix that line as Laravel reads it"
        ))
    })?;
    Ok(dotenv::load(&entries, |name| std::env::var(name).ok()))
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds a URL from Laravel's `DB_*` settings (or uses `DB_URL`/`DATABASE_URL` when the file sets one).
/// Every part goes into the URL percent-encoded, so the driver gets the value exactly as written
/// (`ab%41c` stays `ab%41c`). A relative SQLite `DB_DATABASE` is a path from the app's folder, the
/// `.env`'s own, as Laravel resolves it from the app's base path.
pub(crate) fn from_env_file(path: &Path) -> Result<(Target, String)> {
    let vars = read_env_file(path)?;
    // Where a variable came from: the file, or the process environment that wins over it.
    let origin = |name: &str| {
        if vars.is_from_environment(name) {
            format!(
                "the environment variable {name} (it wins over {})",
                path.display()
            )
        } else {
            format!("{name} in {}", path.display())
        }
    };
    for name in ["DATABASE_URL", "DB_URL"] {
        if let Some(url) = vars.env(name).filter(|u| !u.is_empty()) {
            let origin = origin(name);
            return Ok((parse_from(&url, &origin)?, origin));
        }
    }
    let get = |k: &str| vars.env(k).unwrap_or_default();
    let connection = get("DB_CONNECTION");
    let (scheme, default_port) = match connection.as_str() {
        "pgsql" | "postgres" | "postgresql" => ("postgres", "5432"),
        "mysql" | "mariadb" => ("mysql", "3306"),
        "sqlite" => return sqlite_from(path, &get("DB_DATABASE"), origin("DB_DATABASE")),
        "" => return Err(Error::Usage(format!("{} sets no DB_CONNECTION; expected pgsql, mysql, mariadb or sqlite", path.display()))),
        other => {
            return Err(Error::Usage(format!(
                "{} has DB_CONNECTION={other}, which backfill does not support; expected pgsql, mysql, mariadb or sqlite",
                path.display()
            )))
        }
    };
    let origin = format!("the DB_* settings of {}", path.display());
    let target = from_settings(path, &get, scheme, default_port).map_err(|e| e.located(&origin))?;
    Ok((target, origin))
}

/// `DB_CONNECTION=sqlite`: the file `DB_DATABASE` names, which must exist.
fn sqlite_from(path: &Path, file: &str, origin: String) -> Result<(Target, String)> {
    if file.is_empty() {
        return Err(Error::Usage(format!(
            "{} has DB_CONNECTION=sqlite but no DB_DATABASE; set it to the database file",
            path.display()
        )));
    }
    let file = sqlite_file(path, file);
    let target = parse_from(&format!("sqlite://{}", file.display()), &origin)?;
    if !file.is_file() {
        let missing = format!("no SQLite database at {}; check {origin}", file.display());
        return Err(Error::Usage(missing).located(&origin));
    }
    Ok((target, origin))
}

/// A server's URL from the `.env`'s `DB_*` settings, as Laravel's config/database.php reads them.
fn from_settings(
    path: &Path,
    get: &dyn Fn(&str) -> String,
    scheme: &str,
    default_port: &str,
) -> Result<Target> {
    let host = Some(get("DB_HOST"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    // An IPv6 address goes in brackets in a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let port = Some(get("DB_PORT"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default_port.into());
    let encode = crate::db::url::encode_component;
    let (user, password) = (get("DB_USERNAME"), get("DB_PASSWORD"));
    let userinfo = match (user.is_empty(), password.is_empty()) {
        (true, true) => String::new(),
        (_, true) => format!("{}@", encode(&user)),
        _ => format!("{}:{}@", encode(&user), encode(&password)),
    };
    let mut url = url::Url::parse(&format!(
        "{scheme}://{userinfo}{host}:{port}/{}",
        encode(&get("DB_DATABASE"))
    ))
    .map_err(|e| {
        Error::Usage(format!(
            "{}: DB_HOST/DB_PORT do not form a valid address ({e}); check them",
            path.display()
        ))
    })?;
    with_settings(&mut url, scheme, get);
    Ok(Target::parse(url.as_str())?)
}

/// The URL's query from the `.env`: TLS and the schema, as Laravel's connections take them.
fn with_settings(url: &mut url::Url, scheme: &str, get: &dyn Fn(&str) -> String) {
    // Laravel's own TLS settings: DB_SSLMODE (pgsql), MYSQL_ATTR_SSL_CA (mysql).
    match scheme {
        "postgres" if !get("DB_SSLMODE").is_empty() => {
            url.query_pairs_mut()
                .append_pair("sslmode", &get("DB_SSLMODE"));
        }
        _ => {}
    }
    // The schema the app's tables are in: Laravel's `search_path` (older: `schema`) setting, as
    // config/database.php reads it from DB_SEARCH_PATH or DB_SCHEMA.
    let schema = Some(get("DB_SEARCH_PATH"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| get("DB_SCHEMA"));
    let schema = schema
        .split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(",");
    match scheme {
        "postgres" if !schema.is_empty() => {
            url.query_pairs_mut()
                .append_pair("options", &format!("-csearch_path={schema}"));
        }
        "mysql" if !get("MYSQL_ATTR_SSL_CA").is_empty() => {
            url.query_pairs_mut()
                .append_pair("ssl-ca", &get("MYSQL_ATTR_SSL_CA"));
        }
        _ => {}
    }
}

/// The SQLite file a `.env` names: an absolute path as is, a relative one from the `.env`'s folder.
fn sqlite_file(env_file: &Path, file: &str) -> PathBuf {
    let file = Path::new(file);
    if file.is_absolute() {
        return file.to_path_buf();
    }
    let dir = env_file.parent().filter(|d| !d.as_os_str().is_empty());
    dir.map_or_else(|| file.to_path_buf(), |d| d.join(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_colon_sqlite_urls() {
        assert_eq!(normalize("sqlite:/tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(normalize("SQLite:/tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(normalize("sqlite:a.db"), "sqlite://a.db");
        assert_eq!(normalize("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(normalize("sqlite://a.db"), "sqlite://a.db");
        assert_eq!(normalize("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn relative_sqlite_from_the_env_files_folder() {
        let env = Path::new("/srv/app/.env");
        assert_eq!(
            sqlite_file(env, "database/app.sqlite"),
            Path::new("/srv/app/database/app.sqlite")
        );
        assert_eq!(
            sqlite_file(env, "/data/app.sqlite"),
            Path::new("/data/app.sqlite")
        );
        assert_eq!(
            sqlite_file(Path::new(".env"), "app.sqlite"),
            Path::new("app.sqlite")
        );
    }
}
