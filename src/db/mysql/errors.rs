//! What a `mysql` error means for a run: its kind (exit code) and a hint.

use crate::db::{DbError, ErrorKind};

pub(super) fn map_err(e: mysql::Error) -> DbError {
    // A refused certificate arrives as an I/O error inside the codec error.
    let text = e.to_string();
    if let Some(at) = text.find("invalid peer certificate") {
        let reason = text[at..]
            .split(['`', '\''])
            .next()
            .unwrap_or("")
            .trim_end();
        return DbError::new(
            ErrorKind::Config,
            format!(
                "mysql: TLS handshake failed: {reason} (check ssl-mode/ssl-ca in the database URL)"
            ),
        );
    }
    match e {
        mysql::Error::MySqlError(ref m) => {
            let (kind, hint) = server_error(m.code);
            DbError::new(
                kind,
                format!("mysql: {} (error {}){hint}", m.message, m.code),
            )
        }
        mysql::Error::UrlError(u) => {
            DbError::new(ErrorKind::Config, format!("malformed mysql URL: {u}"))
        }
        mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => DbError::new(
            ErrorKind::Config,
            "mysql: the server does not support TLS (ssl-mode requires it; enable TLS on the server or use ssl-mode=PREFERRED)",
        ),
        mysql::Error::DriverError(d) => DbError::new(ErrorKind::Connection, format!("mysql: {d}")),
        mysql::Error::IoError(io) => DbError::new(ErrorKind::Connection, format!("mysql: {io}")),
        mysql::Error::CodecError(c) => {
            DbError::new(ErrorKind::Connection, format!("mysql: the connection broke ({c})"))
        }
        mysql::Error::TlsError(t) => DbError::new(
            ErrorKind::Config,
            format!("mysql: TLS handshake failed: {t} (check ssl-mode/ssl-ca in the database URL)"),
        ),
        other => DbError::query(format!("mysql: {other}")),
    }
}

/// What a server error code means for a run (its kind, so its exit code) and what to do about it.
fn server_error(code: u16) -> (ErrorKind, &'static str) {
    match code {
        // 1698: MariaDB answers a user it does not know with one of two denials, at random
        // (it fakes an authentication so that names cannot be probed).
        1045 | 1044 | 1698 => (
            ErrorKind::Config,
            " (check the user and password in the database URL)",
        ),
        1049 => (
            ErrorKind::Config,
            " (create the database or fix its name in the database URL)",
        ),
        1142 | 1143 | 1227 | 1370 => (
            ErrorKind::Config,
            " (this user lacks a privilege backfill needs here: grant it, or connect as the app's migration user)",
        ),
        1146 => (
            ErrorKind::Query,
            " (is the database URL the app's database, and have its schema migrations run?)",
        ),
        // Server shutting down, connection killed, server gone away, lost connection; a
        // Galera node that left the primary component ("WSREP has not yet prepared node").
        1053 | 1927 | 2006 | 2013 | 1047 => (ErrorKind::Connection, ""),
        // Deadlock, and Galera's certification failure, which reports as a deadlock. 1467:
        // InnoDB chose an `INSERT … SELECT` waiting for the table's AUTO-INC lock as the
        // deadlock victim (two batches, each holding gap locks the other's insert needs) and
        // rolled it back; it reports that as a failed auto-increment read, not as 1213.
        1213 | 1180 | 1467 => (ErrorKind::Conflict, ""),
        1040 | 1203 => (
            ErrorKind::Connection,
            " (the server has no connection left: lower --jobs, or raise max_connections / the user's max_user_connections)",
        ),
        1290 | 1792 => (
            ErrorKind::Config,
            " (the server or this transaction is read-only: connect to the primary, or as a user that may write)",
        ),
        1969 | 3024 | 1205 => (
            ErrorKind::Timeout,
            " (another session may hold a lock on a table it needs, or the batch is too big: check SHOW PROCESSLIST for blockers, then rerun, raise --statement-timeout or lower --batch-size)",
        ),
        _ => (ErrorKind::Query, ""),
    }
}
