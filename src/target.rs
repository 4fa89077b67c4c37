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
    if !path.is_file() {
        return Err(Error::Usage(format!(
            "env file {} does not exist; check the --env-file path",
            path.display()
        )));
    }
    let iter = dotenvy::from_path_iter(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read env file {}: {}",
            path.display(),
            one_line(&e)
        ))
    })?;
    let mut vars = HashMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| {
            Error::Usage(format!(
                "env file {} is malformed: {}; fix the line or quote the value",
                path.display(),
                one_line(&e)
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
        "sqlite" => return Ok(Target::parse(&format!("sqlite://{}", get("DB_DATABASE")))?),
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
    if !user_ok || !pass_ok {
        return Err(Error::Usage(format!(
            "{}: DB_USERNAME/DB_PASSWORD cannot be used in a URL",
            path.display()
        )));
    }
    Ok(Target::parse(url.as_str())?)
}
