//! The runner lock: one runner per database. Taken by polling a non-blocking primitive, so the wait is
//! bounded by `--lock-timeout` exactly and never queues behind other sessions' DDL (Flyway #1654,
//! golang-migrate #269).

use crate::db::Session;
use crate::error::{Error, Result};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(100);

pub fn acquire(session: &mut dyn Session, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut announced = false;
    loop {
        if session.try_lock()? {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= timeout {
            let holder = session
                .lock_holder()
                .map(|h| format!(" (held by {h})"))
                .unwrap_or_default();
            return Err(Error::Busy(format!(
                "another backfill runner holds the lock on {}{holder}; gave up after {}s; retry later or raise --lock-timeout",
                session.describe(),
                timeout.as_secs_f64()
            )));
        }
        if !announced {
            tracing::info!(
                "waiting up to {}s for another runner to finish",
                timeout.as_secs_f64()
            );
            announced = true;
        }
        std::thread::sleep(POLL.min(timeout - waited));
    }
}

pub fn release(session: &mut dyn Session) {
    if let Err(e) = session.unlock() {
        // The lock dies with the connection, which is usually why this failed: nothing to report.
        tracing::debug!("releasing the runner lock failed: {e}");
    }
}
