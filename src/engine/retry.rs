//! Deadlocks, serialization failures and Galera certification conflicts roll a transaction back; the
//! same work may then succeed. They are retried a bounded number of times with back-off, never turned
//! into a failed run on their own.

use crate::db::DbResult;
use std::time::Duration;

pub(crate) const ATTEMPTS: u32 = 8;

/// Back-off before attempt `n` (1-based): grows, with jitter so racing runners drift apart.
pub(crate) fn pause(n: u32) -> Duration {
    let base = 20u64 << n.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % base.max(1);
    Duration::from_millis(base + jitter)
}

/// Runs `work` (one statement or one whole transaction) again while it fails with a conflict.
pub(crate) fn conflicts<T>(mut work: impl FnMut() -> DbResult<T>) -> DbResult<T> {
    let mut n = 1;
    loop {
        match work() {
            Err(e) if e.is_conflict() && n < ATTEMPTS => {
                tracing::debug!("conflict, retrying (attempt {n}): {e}");
                std::thread::sleep(pause(n));
                n += 1;
            }
            other => return other,
        }
    }
}
