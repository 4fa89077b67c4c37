//! Which database to work on: `--database-url` > `DATABASE_URL` > `--env-file` (Laravel's `.env`).

use crate::db::Target;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

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

fn read_env_file(path: &Path) -> Result<HashMap<String, String>> {
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
    // Read it ourselves first: an unreadable file (permissions) is a clear I/O error here.
    let text = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("cannot read env file {shown}: {}", one_line(&e))))?;
    let text = String::from_utf8(text).map_err(|_| {
        Error::Usage(format!(
            "env file {shown} is not UTF-8 text; save it as UTF-8"
        ))
    })?;
    let mut vars = HashMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (k, v) = item.map_err(|e| {
            // dotenvy's message quotes the whole line, which may hold a password: name only the key.
            let detail = match &e {
                dotenvy::Error::LineParse(line, _) => {
                    let key = line.split('=').next().unwrap_or("").trim();
                    let first = line.lines().next().unwrap_or("").trim();
                    let number = text
                        .lines()
                        .position(|l| !first.is_empty() && l.trim() == first)
                        .map(|n| format!("line {} ", n + 1))
                        .unwrap_or_default();
                    format!("cannot parse {number}(`{key}=…`)")
                }
                other => one_line(other).split(':').next().unwrap_or("").to_string(),
            };
            Error::Usage(format!(
                "env file {shown} is malformed: {detail}; fix the line (quote values with spaces or #, close every quote)"
            ))
        })?;
        vars.insert(k, v);
    }
    Ok(vars)
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds a URL from Laravel's `DB_*` settings (or uses `DB_URL`/`DATABASE_URL` when the file sets one).
pub fn from_env_file(path: &Path) -> Result<Target> {
    let vars = read_env_file(path)?;
    if let Some(url) = vars
        .get("DATABASE_URL")
        .or_else(|| vars.get("DB_URL"))
        .filter(|u| !u.is_empty())
    {
        return Ok(Target::parse(url)?);
    }
    let get = |k: &str| vars.get(k).map(String::as_str).unwrap_or("");
    let connection = get("DB_CONNECTION");
    let (scheme, default_port) = match connection {
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
            if !Path::new(file).is_file() {
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
        .unwrap_or("127.0.0.1");
    let port = Some(get("DB_PORT"))
        .filter(|p| !p.is_empty())
        .unwrap_or(default_port);
    let mut url = url::Url::parse(&format!("{scheme}://{host}:{port}/")).map_err(|e| {
        Error::Usage(format!(
            "{}: DB_HOST/DB_PORT do not form a valid address ({e})",
            path.display()
        ))
    })?;
    url.set_path(get("DB_DATABASE"));
    let user_ok = url.set_username(get("DB_USERNAME")).is_ok();
    let password = get("DB_PASSWORD");
    let pass_ok = password.is_empty() || url.set_password(Some(password)).is_ok();
    // Laravel's own TLS settings: DB_SSLMODE (pgsql), MYSQL_ATTR_SSL_CA (mysql).
    match scheme {
        "postgres" if !get("DB_SSLMODE").is_empty() => {
            url.query_pairs_mut()
                .append_pair("sslmode", get("DB_SSLMODE"));
        }
        "mysql" if !get("MYSQL_ATTR_SSL_CA").is_empty() => {
            url.query_pairs_mut()
                .append_pair("ssl-ca", get("MYSQL_ATTR_SSL_CA"));
        }
        _ => {}
    }
    if !user_ok || !pass_ok {
        return Err(Error::Usage(format!(
            "{}: DB_USERNAME/DB_PASSWORD cannot be used in a URL",
            path.display()
        )));
    }
    Ok(Target::parse(url.as_str())?)
}
