//! Which database to work on: `--database-url` > `DATABASE_URL` > `--env-file` (Laravel's `.env`).

use crate::db::Target;
use crate::error::{Error, Result};
use std::path::Path;

// Beside this file, not in src/target/: .gitignore's `target/` would hide that directory.
#[path = "dotenv.rs"]
pub mod dotenv;

/// Resolves the target from the flag/env value or the app's env file.
pub fn resolve(url: Option<&str>, env_file: Option<&Path>) -> Result<Target> {
    if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
        return Ok(Target::parse(url)?);
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
/// (`ab%41c` stays `ab%41c`).
pub fn from_env_file(path: &Path) -> Result<Target> {
    let vars = read_env_file(path)?;
    if let Some(url) = vars
        .env("DATABASE_URL")
        .filter(|u| !u.is_empty())
        .or_else(|| vars.env("DB_URL").filter(|u| !u.is_empty()))
    {
        return Ok(Target::parse(&url)?);
    }
    let get = |k: &str| vars.env(k).unwrap_or_default();
    let connection = get("DB_CONNECTION");
    let (scheme, default_port) = match connection.as_str() {
        "pgsql" | "postgres" | "postgresql" => ("postgres", "5432"),
        "mysql" | "mariadb" => ("mysql", "3306"),
        "sqlite" => {
            let file = get("DB_DATABASE");
            if file.is_empty() {
                return Err(Error::Usage(format!(
                    "{} has DB_CONNECTION=sqlite but no DB_DATABASE; set it to the database file",
                    path.display()
                )));
            }
            let target = Target::parse(&format!("sqlite://{file}"))?;
            if !Path::new(&file).is_file() {
                return Err(Error::Usage(format!(
                    "no SQLite database at {file}; check DB_DATABASE in {}",
                    path.display()
                )));
            }
            return Ok(target);
        }
        "" => return Err(Error::Usage(format!("{} sets no DB_CONNECTION; expected pgsql, mysql, mariadb or sqlite", path.display()))),
        other => {
            return Err(Error::Usage(format!(
                "{} has DB_CONNECTION={other}, which backfill does not support; expected pgsql, mysql, mariadb or sqlite",
                path.display()
            )))
        }
    };
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
    // Laravel's own TLS settings: DB_SSLMODE (pgsql), MYSQL_ATTR_SSL_CA (mysql).
    match scheme {
        "postgres" if !get("DB_SSLMODE").is_empty() => {
            url.query_pairs_mut()
                .append_pair("sslmode", &get("DB_SSLMODE"));
        }
        "mysql" if !get("MYSQL_ATTR_SSL_CA").is_empty() => {
            url.query_pairs_mut()
                .append_pair("ssl-ca", &get("MYSQL_ATTR_SSL_CA"));
        }
        _ => {}
    }
    Ok(Target::parse(url.as_str())?)
}
