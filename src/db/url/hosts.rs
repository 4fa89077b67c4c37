//! libpq multi-host URLs (`postgres://u@h1:5432,h2:5433/db`): one host for the URL parser, the
//! whole list for the target.

use super::config_error;
use crate::db::{DbResult, Dialect};

/// A libpq multi-host URL (`postgres://u@h1:5432,h2:5433/db`): the URL with its first host only, for
/// the URL parser, and the whole host list as written.
pub(super) fn split_hosts(raw: &str, dialect: Dialect) -> DbResult<(String, Option<String>)> {
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
pub(super) fn host_list(list: &str, default_port: u16) -> DbResult<Vec<(String, u16)>> {
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
pub(super) fn with_host_list(redacted: &str, list: Option<&str>) -> String {
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

/// Every host of the URL with its port: the list of a multi-host URL, or the one host `parsed` names.
pub(super) fn hosts_of(
    dialect: Dialect,
    parsed: &::url::Url,
    more_hosts: Option<&str>,
) -> DbResult<Vec<(String, u16)>> {
    let default_port = if dialect == Dialect::Postgres {
        5432
    } else {
        3306
    };
    match more_hosts {
        Some(list) => host_list(list, default_port),
        None => Ok(vec![(
            parsed.host_str().unwrap_or_default().to_string(),
            parsed.port().unwrap_or(default_port),
        )]),
    }
}
