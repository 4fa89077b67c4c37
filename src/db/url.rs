//! Parsing `DATABASE_URL` into a target, and redacting it for output.

use super::{DbError, DbResult, Dialect, ErrorKind};
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
pub enum RootCerts {
    /// A PEM file (`sslrootcert=PATH`, `ssl-ca=PATH`).
    File(PathBuf),
    /// The public web PKI roots built into the binary (`sslrootcert=system`).
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    pub roots: Option<RootCerts>,
}

/// Which server of a multi-host URL a session may use: libpq's `target_session_attrs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
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
    pub dialect: Dialect,
    /// The URL for the driver: TLS parameters removed (they are in `tls`), password kept.
    url: String,
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
    pub hosts: Vec<(String, u16)>,
    /// PostgreSQL: `target_session_attrs` (default `any`).
    pub session_attrs: SessionAttrs,
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
        let (one_host, more_hosts) = split_hosts(raw, dialect)?;
        let raw = one_host.as_str();
        let parsed = ::url::Url::parse(raw).map_err(|e| {
            config_error(format!(
                "malformed database URL ({e}); expected e.g. {}://user:password@host:port/database",
                scheme.as_deref().unwrap_or("postgres")
            ))
        })?;
        if parsed.host_str().unwrap_or("").is_empty() {
            return Err(config_error("malformed database URL: no host; expected scheme://user:password@host:port/database"));
        }
        remember_url_secrets(&parsed);
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
                "database URL path `{path}` is not one database name; write it once after the host, e.g. {}://user@host/myapp",
                scheme.as_deref().unwrap_or("postgres")
            )));
        }
        let database = percent_decode(name);
        // The drivers get the one name without the trailing slash (PostgreSQL would look for `db/`).
        let one = (path.len() > name.len() + 1).then(|| format!("/{name}"));
        let mut parsed = parsed.clone();
        if let Some(one) = one {
            parsed.set_path(&one);
        }
        let redacted = with_host_list(&redacted_url(&parsed), more_hosts.as_deref());
        let (session_attrs, parsed) = split_session_attrs(dialect, &parsed)?;
        let (search_path, parsed) = split_search_path(dialect, &parsed)?;
        let (tls, driver_url) = split_tls(dialect, &parsed)?;
        let url = if dialect == Dialect::Mysql && scheme.as_deref() == Some("mariadb") {
            format!("mysql{}", &driver_url["mariadb".len()..])
        } else {
            driver_url
        };
        let default_port = if dialect == Dialect::Postgres {
            5432
        } else {
            3306
        };
        let hosts = match more_hosts {
            Some(list) => host_list(&list, default_port)?,
            None => vec![(
                parsed.host_str().unwrap_or_default().to_string(),
                parsed.port().unwrap_or(default_port),
            )],
        };
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

/// A libpq multi-host URL (`postgres://u@h1:5432,h2:5433/db`): the URL with its first host only, for
/// the URL parser, and the whole host list as written.
fn split_hosts(raw: &str, dialect: Dialect) -> DbResult<(String, Option<String>)> {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Ok((raw.to_string(), None));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let start = authority.rfind('@').map_or(0, |at| at + 1);
    let list = &authority[start..];
    if !list.contains(',') {
        return Ok((raw.to_string(), None));
    }
    if dialect != Dialect::Postgres {
        return Err(config_error(format!(
            "malformed database URL: `{list}` names several hosts, which only postgres:// URLs may do; give one host"
        )));
    }
    let first = list.split(',').next().unwrap_or_default();
    let one = format!("{scheme}://{}{first}{}", &authority[..start], &rest[end..]);
    Ok((one, Some(list.to_string())))
}

/// `h1:5432,[::1]:5433,h3` as (host, port) pairs; a host without a port gets the default.
fn host_list(list: &str, default_port: u16) -> DbResult<Vec<(String, u16)>> {
    list.split(',')
        .map(|item| {
            let (host, port) = match item.rsplit_once(':') {
                Some((h, p)) if !p.contains(']') => (h, Some(p)),
                _ => (item, None),
            };
            if host.is_empty() {
                return Err(config_error(format!(
                    "malformed database URL: an empty host in `{list}`; write host:port,host:port"
                )));
            }
            let port = match port {
                None => default_port,
                Some(p) => p.parse().map_err(|_| {
                    config_error(format!(
                        "malformed database URL: `{item}` in `{list}` has an invalid port"
                    ))
                })?,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok((host.to_string(), port))
        })
        .collect()
}

/// The redacted one-host URL with the whole host list back in place of its host.
fn with_host_list(redacted: &str, list: Option<&str>) -> String {
    let Some(list) = list else {
        return redacted.to_string();
    };
    let Some((scheme, rest)) = redacted.split_once("://") else {
        return redacted.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let start = rest[..end].rfind('@').map_or(0, |at| at + 1);
    format!("{scheme}://{}{list}{}", &rest[..start], &rest[end..])
}

/// Takes `search_path` out of libpq's `options` (`-c search_path=app`, `-csearch_path=app`,
/// `--search_path=app`); the other options stay for the server.
fn split_search_path(
    dialect: Dialect,
    parsed: &::url::Url,
) -> DbResult<(Option<String>, ::url::Url)> {
    if dialect != Dialect::Postgres || !parsed.query_pairs().any(|(k, _)| k == "options") {
        return Ok((None, parsed.clone()));
    }
    let mut search_path = None;
    let mut pairs = Vec::new();
    for (k, v) in parsed.query_pairs() {
        if k != "options" {
            pairs.push((k.into_owned(), v.into_owned()));
            continue;
        }
        let mut kept = Vec::new();
        let mut words = v.split_whitespace();
        while let Some(word) = words.next() {
            let setting = match word {
                "-c" => words.next().unwrap_or_default(),
                w => w
                    .strip_prefix("-c")
                    .or_else(|| w.strip_prefix("--"))
                    .unwrap_or(w),
            };
            match setting.split_once('=') {
                Some(("search_path", value)) => search_path = Some(value.to_string()),
                _ if word == "-c" => kept.push(format!("-c {setting}")),
                _ => kept.push(word.to_string()),
            }
        }
        if !kept.is_empty() {
            pairs.push((k.into_owned(), kept.join(" ")));
        }
    }
    if search_path.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(config_error(
            "`search_path=` in the URL's options names no schema; give one, e.g. options=-csearch_path%3Dapp",
        ));
    }
    Ok((search_path, with_query(parsed, pairs)))
}

/// `parsed` with exactly `pairs` as its query (none: no `?` at all), for the parameters a step
/// leaves to the next one and the driver.
fn with_query(parsed: &::url::Url, pairs: Vec<(String, String)>) -> ::url::Url {
    let mut url = parsed.clone();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url
}

/// Takes libpq's `target_session_attrs` out of the query: backfill picks the host itself.
fn split_session_attrs(
    dialect: Dialect,
    parsed: &::url::Url,
) -> DbResult<(SessionAttrs, ::url::Url)> {
    let key = "target_session_attrs";
    if dialect != Dialect::Postgres || !parsed.query_pairs().any(|(k, _)| k == key) {
        return Ok((SessionAttrs::Any, parsed.clone()));
    }
    let mut attrs = SessionAttrs::Any;
    let mut rest = Vec::new();
    for (k, v) in parsed.query_pairs() {
        if k != key {
            rest.push((k.into_owned(), v.into_owned()));
            continue;
        }
        attrs = match v.as_ref() {
            "any" => SessionAttrs::Any,
            "read-write" => SessionAttrs::ReadWrite,
            "primary" => SessionAttrs::Primary,
            "read-only" | "standby" | "prefer-standby" => {
                return Err(config_error(format!(
                    "`{key}={v}` is not supported: backfill writes to the primary; use read-write, primary or any"
                )))
            }
            other => {
                return Err(config_error(format!(
                    "unknown `{key}={other}`; expected read-write, primary or any"
                )))
            }
        };
    }
    Ok((attrs, with_query(parsed, rest)))
}

/// Takes the TLS parameters out of the URL's query: PostgreSQL's `sslmode`/`sslrootcert` (as libpq
/// spells them) or MySQL's `ssl-mode`/`ssl-ca` (as the mysql client does). The drivers get the rest.
fn split_tls(dialect: Dialect, parsed: &::url::Url) -> DbResult<(Tls, String)> {
    let (mode_keys, ca_keys): (&[&str], &[&str]) = match dialect {
        Dialect::Postgres => (&["sslmode"], &["sslrootcert"]),
        _ => (&["ssl-mode", "ssl_mode", "sslmode"], &["ssl-ca", "ssl_ca"]),
    };
    let (mut mode, mut roots) = (None, None);
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if mode_keys.contains(&key.as_ref()) {
            mode = Some(parse_tls_mode(dialect, &key, &value)?);
        } else if ca_keys.contains(&key.as_ref()) {
            if value.is_empty() {
                return Err(config_error(format!(
                    "`{key}=` names no file; give the path of the CA certificate (PEM)"
                )));
            }
            roots = Some(if dialect == Dialect::Postgres && value == "system" {
                RootCerts::System
            } else {
                RootCerts::File(PathBuf::from(value.as_ref()))
            });
        } else if dialect == Dialect::Postgres
            && matches!(key.as_ref(), "sslcert" | "sslkey" | "sslpassword")
        {
            return Err(config_error(format!(
                "`{key}` (client certificates) is not supported; authenticate with a password"
            )));
        } else {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    let mode = match (mode, &roots) {
        (Some(mode), _) => mode,
        // The mysql client verifies against --ssl-ca when it is given without a mode.
        (None, Some(_)) if dialect == Dialect::Mysql => TlsMode::VerifyCa,
        (None, _) => TlsMode::Prefer,
    };
    Ok((Tls { mode, roots }, with_query(parsed, rest).to_string()))
}

fn parse_tls_mode(dialect: Dialect, key: &str, value: &str) -> DbResult<TlsMode> {
    let mode = match (
        dialect,
        value.to_ascii_lowercase().replace('_', "-").as_str(),
    ) {
        (_, "disable" | "disabled") => TlsMode::Disable,
        (_, "prefer" | "preferred") => TlsMode::Prefer,
        (_, "require" | "required") => TlsMode::Require,
        (_, "verify-ca") => TlsMode::VerifyCa,
        (Dialect::Postgres, "verify-full") | (Dialect::Mysql, "verify-identity") => {
            TlsMode::VerifyFull
        }
        _ => {
            let expected = if dialect == Dialect::Postgres {
                "disable, prefer, require, verify-ca or verify-full"
            } else {
                "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
            };
            return Err(config_error(format!(
                "unsupported TLS mode `{key}={value}`; expected {expected}"
            )));
        }
    };
    Ok(mode)
}

/// Query parameters whose value is a secret for some driver: `password` (both drivers take it),
/// `sslpassword` (libpq), `pkcs12_pass` (mysql), and anything else naming a password.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("pass") || key == "pwd"
}

/// The URL with its password and every secret query value replaced by `***`.
fn redacted_url(parsed: &::url::Url) -> String {
    let mut redacted = parsed.clone();
    if redacted.password().is_some() {
        let _ = redacted.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| is_secret_key(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_key(&k) {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        redacted.query_pairs_mut().clear().extend_pairs(pairs);
    }
    redacted.to_string()
}

/// Every secret seen in a URL this process was given, so [`redact`] removes it from any text, in
/// whatever form a driver or a message may echo it (as given, or percent-decoded).
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn remember(secret: &str) {
    // Shorter strings would blank out ordinary words; the URL-shaped redaction still covers them.
    if secret.chars().count() < 3 || secret == "***" {
        return;
    }
    if let Ok(mut all) = SECRETS.lock() {
        if !all.iter().any(|s| s == secret) {
            all.push(secret.to_string());
            // Longest first, so a secret that contains another is replaced whole.
            all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

fn remember_url_secrets(parsed: &::url::Url) {
    if let Some(p) = parsed.password() {
        remember(p);
        remember(&percent_decode(p));
    }
    for (k, v) in parsed.query_pairs() {
        if is_secret_key(&k) {
            remember(&v);
        }
    }
}

/// Learns the secrets of a database URL as the operator typed it (an argument, `DATABASE_URL`),
/// before anything parses it, so even a message about a malformed URL cannot show them.
pub fn remember_secrets_of(raw: &str) {
    if let Ok(parsed) = ::url::Url::parse(raw.trim()) {
        remember_url_secrets(&parsed);
    }
    // What the URL parser may not see as a password (a raw `/` or `?` in it): everything between
    // `user:` and the last `@`.
    if let Some((_, rest)) = raw.split_once("://") {
        if let Some(at) = rest.rfind('@') {
            if let Some((_, pass)) = rest[..at].split_once(':') {
                remember(pass);
                remember(&percent_decode(pass));
            }
        }
    }
    for part in raw.split(['?', '&', ';', ' ']) {
        if let Some((k, v)) = part.split_once('=') {
            if is_secret_key(k) {
                remember(v);
                remember(&percent_decode(v));
            }
        }
    }
}

/// A database URL as the operator typed it, for the audit table: parsed as the drivers parse it,
/// password and secret parameters replaced; when it does not parse, everything between `://` and
/// the last `@` replaced.
pub fn redact_url(raw: &str) -> String {
    remember_secrets_of(raw);
    if let Ok(parsed) = ::url::Url::parse(raw.trim()) {
        if parsed.has_host() {
            return redacted_url(&parsed);
        }
    }
    match raw.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => redact(&format!("{scheme}://***{}", &rest[at..])),
            None => redact(raw),
        },
        None => redact(raw),
    }
}

/// Replaces credentials inside `text` (an argument, an error message, a log line): the password of
/// every `scheme://user:password@` URL, secret query parameters, and every secret a URL given to
/// this process held.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, token) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&redact_token(token));
    }
    if let Ok(secrets) = SECRETS.lock() {
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
    }
    out
}

fn redact_token(token: &str) -> String {
    let token = redact_params(token);
    let Some(start) = token.find("://") else {
        return token;
    };
    let rest = &token[start + 3..];
    // The userinfo ends at the last `@` before the path (a password may hold a raw `@`).
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return token;
    };
    let creds = &rest[..at];
    match creds.split_once(':') {
        Some((user, pass)) if pass != "***" && !creds.contains('/') => {
            format!("{}{user}:***{}", &token[..start + 3], &rest[at..])
        }
        _ => token,
    }
}

/// `password=…` (and the other secret keys) inside a query string or a connection string.
fn redact_params(token: &str) -> String {
    if !token.contains('=') {
        return token.to_string();
    }
    let mut out = String::with_capacity(token.len());
    let mut rest = token;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .rfind(['?', '&', ';', '(', '`', '\'', '"', ','])
            .map_or(0, |i| i + 1);
        let key = &rest[key_start..eq];
        out.push_str(&rest[..=eq]);
        rest = &rest[eq + 1..];
        if is_secret_key(key) && !rest.starts_with("***") {
            let end = rest
                .find(['&', ';', '`', '\'', '"', ')', ','])
                .unwrap_or(rest.len());
            if end > 0 {
                out.push_str("***");
            }
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a value goes into a URL
/// exactly as it is (a `%` stays a `%`).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` sequences (invalid ones stay as written; invalid UTF-8 becomes U+FFFD).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters() {
        let t = Target::parse(
            "postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(t.tls.mode, TlsMode::VerifyFull);
        assert_eq!(t.tls.roots, Some(RootCerts::File("/ca.pem".into())));
        assert_eq!(t.secret_url(), "postgres://u:pw@h/db?connect_timeout=5");
        assert!(t.redacted.contains("sslmode=verify-full"));
        let t = Target::parse("postgres://u@h/db").unwrap();
        assert_eq!((t.tls.mode, &t.tls.roots), (TlsMode::Prefer, &None));
        assert_eq!(t.secret_url(), "postgres://u@h/db");
        let t = Target::parse("postgres://u@h/db?sslrootcert=system&sslmode=require").unwrap();
        assert_eq!(t.tls.roots, Some(RootCerts::System));
        let t =
            Target::parse("mariadb://u:pw@h/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem").unwrap();
        assert_eq!(t.tls.mode, TlsMode::VerifyFull);
        assert_eq!(t.secret_url(), "mysql://u:pw@h/db");
        let t = Target::parse("mysql://u@h/db?ssl-ca=/ca.pem").unwrap();
        assert_eq!(
            t.tls.mode,
            TlsMode::VerifyCa,
            "ssl-ca alone verifies, as the mysql client does"
        );
        assert!(Target::parse("postgres://u@h/db?sslmode=verify-identity").is_err());
        assert!(Target::parse("mysql://u@h/db?ssl-mode=verify-full").is_err());
        assert!(Target::parse("postgres://u@h/db?sslcert=/c.pem").is_err());
        assert!(Target::parse("postgres://u@h/db?sslrootcert=").is_err());
    }

    #[test]
    fn multi_host_urls() {
        let t = Target::parse(
            "postgres://u:pw@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write&sslmode=disable",
        )
        .unwrap();
        assert_eq!(
            t.hosts,
            vec![
                ("h1".to_string(), 5432),
                ("::1".to_string(), 5433),
                ("h3".to_string(), 5432)
            ]
        );
        assert_eq!(t.session_attrs, SessionAttrs::ReadWrite);
        assert_eq!(
            t.redacted,
            "postgres://u:***@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write&sslmode=disable"
        );
        let urls: Vec<String> = t.secret_urls().into_iter().map(|(_, u)| u).collect();
        assert_eq!(
            urls,
            [
                "postgres://u:pw@h1:5432/db",
                "postgres://u:pw@[::1]:5433/db",
                "postgres://u:pw@h3:5432/db"
            ]
        );
        let t = Target::parse("postgresql://u@a:1,b:2/db?target_session_attrs=primary").unwrap();
        assert_eq!(t.session_attrs, SessionAttrs::Primary);
        assert_eq!((t.host.as_deref(), t.port), (Some("a"), Some(1)));
        assert_eq!(
            Target::parse("postgres://u@a/db").unwrap().session_attrs,
            SessionAttrs::Any
        );
        for bad in [
            "postgres://u@a:1,b:x/db",
            "postgres://u@a:1,,b/db",
            "postgres://u@a/db?target_session_attrs=standby",
            "postgres://u@a/db?target_session_attrs=bogus",
            "mysql://u@a:1,b:2/db",
        ] {
            let e = Target::parse(bad).err().unwrap();
            assert!(e.is_config(), "{bad}: {e}");
        }
    }

    #[test]
    fn search_path_in_options() {
        let t = Target::parse("postgres://u@h/db?options=-csearch_path%3Dapp").unwrap();
        assert_eq!(t.search_path.as_deref(), Some("app"));
        assert_eq!(t.secret_url(), "postgres://u@h/db");
        let t = Target::parse(
            "postgres://u@h/db?options=-c%20search_path%3Dapp,public%20-c%20work_mem%3D8MB",
        )
        .unwrap();
        assert_eq!(t.search_path.as_deref(), Some("app,public"));
        assert_eq!(
            t.secret_url(),
            "postgres://u@h/db?options=-c+work_mem%3D8MB"
        );
        assert_eq!(
            Target::parse("postgres://u@h/db").unwrap().search_path,
            None
        );
        assert!(Target::parse("postgres://u@h/db?options=-csearch_path%3D").is_err());
    }

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
        assert_eq!(
            redact("postgres://u:pw@h/db?options=a@b&password=xyz"),
            "postgres://u:***@h/db?options=a@b&password=***"
        );
        assert_eq!(redact_url("mysql://u:pa ss@w@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact_url("mysql://u:pa/ss@w@h/db"), "mysql://***@h/db");
        assert_eq!(encode_component("ab%41c d/é"), "ab%2541c%20d%2F%C3%A9");
        assert_eq!(
            percent_decode("ab%2541c%20d%2F%C3%A9%zz%4"),
            "ab%41c d/é%zz%4"
        );
        let t = Target::parse("mysql://u@h:3306/a%20b/").unwrap();
        assert_eq!(
            (t.database.as_str(), t.secret_url()),
            ("a b", "mysql://u@h:3306/a%20b")
        );
        assert!(Target::parse("mysql://u@h:3306//db").is_err());
        assert!(Target::parse("mysql://u@h:3306/db/x").is_err());
    }
}
