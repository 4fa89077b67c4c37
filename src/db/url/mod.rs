//! Parsing `DATABASE_URL` into a target, and redacting it for output.

mod hosts;
mod params;
mod percent;
mod redact;
#[cfg(test)]
mod tests;

pub(crate) use percent::{encode_component, percent_decode};
pub(crate) use redact::{redact, redact_url, remember_secrets_of};

use super::{DbError, DbResult, Dialect, ErrorKind};
use hosts::{hosts_of, split_hosts, with_host_list};
use params::{split_search_path, split_session_attrs, split_tls};
use redact::{redacted_url, remember_url_secrets};
use std::path::PathBuf;

/// How a connection is secured: libpq's `sslmode` (PostgreSQL) or the MySQL client's `ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP (`sslmode=disable`, `ssl-mode=DISABLED`).
    Disable,
    /// TLS when the server offers it, certificate not checked; plain otherwise. The default, as in
    /// libpq and the mysql client.
    Prefer,
    /// TLS or fail; certificate not checked (PostgreSQL: checked against `sslrootcert` when one is
    /// given, as libpq does).
    Require,
    /// TLS, certificate signed by a trusted CA; host name not checked.
    VerifyCa,
    /// TLS, trusted CA and the host name in the certificate (`verify-full`, `VERIFY_IDENTITY`).
    VerifyFull,
}

/// Which CAs `verify-ca`/`verify-full` trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCerts {
    /// A PEM file (`sslrootcert=PATH`, `ssl-ca=PATH`).
    File(PathBuf),
    /// The public web PKI roots built into the binary (`sslrootcert=system`).
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    pub(crate) roots: Option<RootCerts>,
}

/// Which server of a multi-host URL a session may use: libpq's `target_session_attrs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionAttrs {
    /// The first server that answers.
    Any,
    /// One that accepts writes by default: not in recovery, `default_transaction_read_only` off.
    ReadWrite,
    /// One not in recovery (hot standby), whatever its default read-only setting.
    Primary,
}

/// Where to connect. `url` may hold a password: never print it, print `redacted`.
#[derive(Clone)]
pub struct Target {
    /// The server's kind, from the URL's scheme.
    pub dialect: Dialect,
    /// The URL for the driver: TLS parameters removed (they are in `tls`), password kept.
    url: String,
    /// The URL with any password replaced by `***`: what output and the audit table show.
    pub redacted: String,
    /// TLS settings from the URL's query (`sslmode`/`sslrootcert`, `ssl-mode`/`ssl-ca`).
    pub tls: Tls,
    /// SQLite only: the database file.
    pub sqlite_path: Option<PathBuf>,
    /// The database name (percent-decoded), for lock names and messages.
    pub database: String,
    /// The host as the URL gives it (servers only).
    pub host: Option<String>,
    /// The port, the dialect's default when the URL gives none (servers only).
    pub port: Option<u16>,
    /// PostgreSQL: every host of a libpq multi-host URL (`h1:5432,h2:5432`), tried in order; the
    /// first is `host`/`port`.
    pub(crate) hosts: Vec<(String, u16)>,
    /// PostgreSQL: `target_session_attrs` (default `any`).
    pub(crate) session_attrs: SessionAttrs,
    /// PostgreSQL: the schemas to work in, as `search_path` takes them (`app` or `app, public`),
    /// from `--schema`, the URL's `options=-csearch_path=…` or the `.env`; `None`: the role's own.
    /// Set in every transaction (`SET LOCAL`), so it holds through a pooler that drops `options`.
    pub search_path: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.redacted)
    }
}

pub(super) fn config_error(message: impl Into<String>) -> DbError {
    DbError::new(ErrorKind::Config, message)
}

impl Target {
    /// Reads a `postgres://`, `mysql://`/`mariadb://` or `sqlite://` URL; a bad one is a
    /// [`ErrorKind::Config`](crate::db::ErrorKind::Config) error naming what is wrong.
    pub fn parse(raw: &str) -> DbResult<Target> {
        let raw = raw.trim();
        let scheme = raw.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let dialect = dialect_of(scheme.as_deref())?;
        if dialect == Dialect::Sqlite {
            return Self::parse_sqlite(raw);
        }
        let shown = scheme.as_deref().unwrap_or("postgres");
        let (one_host, more_hosts) = split_hosts(raw, dialect)?;
        let parsed = ::url::Url::parse(&one_host).map_err(|e| {
            config_error(format!(
                "malformed database URL ({e}); expected e.g. {shown}://user:password@host:port/database"
            ))
        })?;
        if parsed.host_str().unwrap_or("").is_empty() {
            return Err(config_error("malformed database URL: no host; expected scheme://user:password@host:port/database"));
        }
        remember_url_secrets(&parsed);
        let (database, parsed) = one_database(&parsed, shown)?;
        let redacted = with_host_list(&redacted_url(&parsed), more_hosts.as_deref());
        let (session_attrs, parsed) = split_session_attrs(dialect, &parsed)?;
        let (search_path, parsed) = split_search_path(dialect, &parsed)?;
        let (tls, driver_url) = split_tls(dialect, &parsed)?;
        let url = if dialect == Dialect::Mysql && scheme.as_deref() == Some("mariadb") {
            format!("mysql{}", &driver_url["mariadb".len()..])
        } else {
            driver_url
        };
        let hosts = hosts_of(dialect, &parsed, more_hosts.as_deref())?;
        Ok(Target {
            dialect,
            url,
            redacted,
            tls,
            sqlite_path: None,
            database,
            host: Some(hosts[0].0.clone()),
            port: Some(hosts[0].1),
            hosts,
            session_attrs,
            search_path,
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
            tls: Tls {
                mode: TlsMode::Disable,
                roots: None,
            },
            database: path.display().to_string(),
            sqlite_path: Some(path),
            host: None,
            port: None,
            hosts: Vec::new(),
            session_attrs: SessionAttrs::Any,
            search_path: None,
        })
    }

    /// The URL with its secret, for drivers only.
    pub(crate) fn secret_url(&self) -> &str {
        &self.url
    }

    /// One driver URL (with its secret) per host of a multi-host URL, in the URL's order.
    pub(crate) fn secret_urls(&self) -> Vec<(String, String)> {
        if self.hosts.len() < 2 {
            return vec![(self.place(0), self.url.clone())];
        }
        let Ok(first) = ::url::Url::parse(&self.url) else {
            return vec![(self.place(0), self.url.clone())];
        };
        (0..self.hosts.len())
            .map(|i| {
                let mut url = first.clone();
                let (host, port) = &self.hosts[i];
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let _ = url.set_host(Some(&host));
                let _ = url.set_port(Some(*port));
                (self.place(i), url.to_string())
            })
            .collect()
    }

    /// `host:port` of the i-th host, for messages.
    fn place(&self, i: usize) -> String {
        match self.hosts.get(i) {
            Some((h, p)) => format!("{h}:{p}"),
            None => self.redacted.clone(),
        }
    }
}

/// The dialect a URL's scheme names (`None`: the URL has no `://`).
fn dialect_of(scheme: Option<&str>) -> DbResult<Dialect> {
    match scheme {
        Some("postgres" | "postgresql") => Ok(Dialect::Postgres),
        Some("mysql" | "mariadb") => Ok(Dialect::Mysql),
        Some("sqlite") => Ok(Dialect::Sqlite),
        Some(other) => Err(config_error(format!(
            "unsupported database URL scheme `{other}://`; use postgres://, mysql://, mariadb:// or sqlite://"
        ))),
        None => Err(config_error(
            "malformed database URL (no scheme); expected e.g. postgres://user@host:5432/db or sqlite://path/to/file.db",
        )),
    }
}

/// The one database the URL's path names (percent-decoded), and the URL with that path exactly:
/// the drivers get the one name without the trailing slash (PostgreSQL would look for `db/`).
fn one_database(parsed: &::url::Url, scheme: &str) -> DbResult<(String, ::url::Url)> {
    let path = parsed.path();
    let name = path.strip_prefix('/').unwrap_or(path);
    if name.is_empty() {
        return Err(config_error(
            "database URL names no database; add it as the path, e.g. .../myapp",
        ));
    }
    // `host//db` or `host/db/x`: MySQL would take an empty or a partial name (one trailing
    // slash is harmless).
    let name = name.strip_suffix('/').unwrap_or(name);
    if name.is_empty() || name.contains('/') {
        return Err(config_error(format!(
            "database URL path `{path}` is not one database name; write it once after the host, e.g. {scheme}://user@host/myapp"
        )));
    }
    let mut one = parsed.clone();
    if path.len() > name.len() + 1 {
        one.set_path(&format!("/{name}"));
    }
    Ok((percent_decode(name), one))
}
