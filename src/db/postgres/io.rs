//! Driving one request to its end on the session's runtime, and giving up a wait for a pooler.

use super::errors::map_err;
use crate::db::{DbError, DbResult, ErrorKind};
use std::future::Future;
use std::time::{Duration, Instant};

/// How requests wait. The driver's own blocking client checks its connection before the request, so
/// a pooler's last words (PgBouncer's `query_wait_timeout`, "transaction blocks not allowed in
/// statement pooling mode") were lost as "connection closed", and a request waiting in a full pool
/// could not be given up: here each request is polled itself, on a runtime of the session's own.
pub(super) struct Io {
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) redacted: String,
    /// How long a transaction may wait to start: the statement timeout.
    pub(super) start_limit: Option<Duration>,
    /// Set once a wait was given up: the connection may still sit in a pooler's queue, so nothing
    /// more is sent on it.
    pub(super) abandoned: Option<DbError>,
    /// The server's or pooler's last words (a FATAL error) before it closed the connection: what a
    /// later "connection closed" really means, when a caller took the first error as "no ledger".
    pub(super) fatal: Option<DbError>,
}

/// How often a waiting request looks at the signals and the clock.
const TICK: Duration = Duration::from_millis(100);
/// A signal gives up a transaction's start that has waited this long.
const SIGNAL_AFTER: Duration = Duration::from_millis(500);
/// After this long without a server for a new transaction, the run says it is waiting for one.
const POOL_NOTE: Duration = Duration::from_secs(3);

impl Io {
    /// Drives one request to its end. One that starts a transaction (or runs outside one) may wait in
    /// a pooler's queue for a server connection (PgBouncer's pool full), where the server's own
    /// timeouts cannot act: it says so after a few seconds, gives up at the statement timeout, and
    /// on SIGINT/SIGTERM. Inside a transaction the server's timeouts bound it, and a signal lets the
    /// batch finish.
    pub(super) fn wait<T>(
        &mut self,
        starting: bool,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> DbResult<T> {
        if let Some(e) = &self.abandoned {
            return Err(e.clone());
        }
        let (limit, redacted) = (self.start_limit, self.redacted.as_str());
        let outcome = self.rt.block_on(async {
            let mut request = std::pin::pin!(request);
            let started = Instant::now();
            let mut noted = false;
            loop {
                match tokio::time::timeout(TICK, request.as_mut()).await {
                    Ok(done) => return Ok(done),
                    Err(_) if !starting => continue,
                    Err(_) => {}
                }
                let waited = started.elapsed();
                if let Some(e) = given_up(waited, limit, redacted) {
                    return Err(e);
                }
                if !noted && waited >= POOL_NOTE {
                    noted = true;
                    tracing::warn!(
                        "no answer from {redacted} for {}s: waiting for a server connection from the pooler (its pool is full) or for a busy server; giving up after {}",
                        waited.as_secs(),
                        limit.map_or("the pooler's own timeout".into(), |l| format!("{}s (--statement-timeout)", l.as_secs()))
                    );
                }
            }
        });
        match outcome {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(self.closed_by(e)),
            Err(e) => {
                self.abandoned = Some(e.clone());
                Err(e)
            }
        }
    }
}

impl Io {
    pub(super) fn closed_by(&mut self, e: tokio_postgres::Error) -> DbError {
        let fatal = e
            .as_db_error()
            .is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"));
        let closed = e.is_closed();
        let mapped = map_err(e);
        if fatal {
            self.fatal = Some(mapped.clone());
        }
        match &self.fatal {
            Some(last_words) if closed => last_words.clone(),
            _ => mapped,
        }
    }
}

/// Why a request waiting to start is given up, if it is: a signal, or the statement timeout.
fn given_up(waited: Duration, limit: Option<Duration>, redacted: &str) -> Option<DbError> {
    // A transaction that starts at once is let be: the runner records how the run ended with it.
    if let Some(sig) = crate::signals::requested().filter(|_| waited >= SIGNAL_AFTER) {
        return Some(DbError::new(
            ErrorKind::Interrupted,
            format!("interrupted by signal {sig} while waiting for a server connection"),
        ));
    }
    let limit = limit.filter(|l| waited >= *l)?;
    Some(DbError::new(
        ErrorKind::Timeout,
        format!(
            "postgres: no server connection from {redacted} within {}s (--statement-timeout): a pooler in front of the server (PgBouncer) has no free server connection for this database; retry when the app's load drops, or raise the pool's size (default_pool_size)",
            limit.as_secs()
        ),
    ))
}
