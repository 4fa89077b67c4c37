//! The query parameters backfill takes out of the URL for itself (`options=-csearch_path=…`,
//! `target_session_attrs`, TLS); the drivers get the rest.

use super::{config_error, RootCerts, SessionAttrs, Tls, TlsMode};
use crate::db::{DbResult, Dialect};
use std::path::PathBuf;

/// Takes `search_path` out of libpq's `options` (`-c search_path=app`, `-csearch_path=app`,
/// `--search_path=app`); the other options stay for the server.
pub(super) fn split_search_path(
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
pub(super) fn with_query(parsed: &::url::Url, pairs: Vec<(String, String)>) -> ::url::Url {
    let mut url = parsed.clone();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url
}

/// Takes libpq's `target_session_attrs` out of the query: backfill picks the host itself.
pub(super) fn split_session_attrs(
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
pub(super) fn split_tls(dialect: Dialect, parsed: &::url::Url) -> DbResult<(Tls, String)> {
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

pub(super) fn parse_tls_mode(dialect: Dialect, key: &str, value: &str) -> DbResult<TlsMode> {
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
