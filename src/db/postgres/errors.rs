//! What a `tokio_postgres` error means for a run: its kind (exit code) and a hint.

use crate::db::{DbError, ErrorKind};
use std::error::Error as StdError;

/// What PgBouncer's own errors mean for a run.
fn pooler_hint(message: &str) -> &'static str {
    if message.contains("statement pooling mode") {
        " (the pooler runs pool_mode = statement, which cannot run transactions, and every batch is one: connect through a pool in pool_mode = transaction or session, or to the server directly)"
    } else if message.contains("query_wait_timeout") {
        " (the pooler gave up waiting for a free server connection: its pool for this database is full; retry when the app's load drops, or raise default_pool_size)"
    } else {
        ""
    }
}

/// An error with its causes: `postgres::Error` prints only its kind ("error connecting to server").
pub(super) fn with_causes(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

pub(super) fn map_err(e: tokio_postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let kind = match code {
            "28P01" | "28000" | "3D000" | "42501" => ErrorKind::Config,
            "57014" | "55P03" => ErrorKind::Timeout,
            "40001" | "40P01" => ErrorKind::Conflict,
            "25006" => ErrorKind::Config,
            "57P01" | "57P02" | "57P03" => ErrorKind::Connection,
            _ => ErrorKind::Query,
        };
        let hint = match code {
            "28P01" | "28000" => " (check the user and password in the database URL)",
            "3D000" => " (create the database or fix its name in the database URL)",
            "42501" => " (this user lacks a privilege backfill needs here: grant it, or connect as the app's migration user)",
            "25006" => " (the server or this user's default transaction is read-only: connect to the primary, or as a user that may write)",
            "42P01" => " (is the database URL the app's database, and have its schema migrations run?)",
            "57014" | "55P03" => " (another session may hold a lock on a table it needs, or the batch is too big: check pg_stat_activity for blockers, then rerun, raise --statement-timeout or lower --batch-size)",
            _ => pooler_hint(db.message()),
        };
        let kind = if db.message().contains("statement pooling mode") {
            ErrorKind::Config
        } else {
            kind
        };
        return DbError::new(kind, format!("postgres: {}{hint}", db.message()));
    }
    let text = with_causes(&e);
    let kind = if text.starts_with("error performing TLS handshake") {
        ErrorKind::Config
    } else if e.is_closed() || StdError::source(&e).is_some_and(|s| s.is::<std::io::Error>()) {
        ErrorKind::Connection
    } else {
        ErrorKind::Query
    };
    let hint = if kind == ErrorKind::Config {
        " (check sslmode/sslrootcert in the database URL)"
    } else {
        ""
    };
    DbError::new(kind, format!("postgres: {text}{hint}"))
}
