//! Test hooks the suite sets in the environment: fail or kill a run at an exact batch, slow every
//! batch down, run without the runner lock. They exist only with the `testkit` feature (on for this
//! crate's own tests through its dev-dependency on itself): the shipped binary reads none of them,
//! so no setting left in an operator's environment can fail or unlock a real run.

use crate::db::DbResult;

/// What the suite asked of the batches of this run.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    #[cfg(feature = "testkit")]
    fail_at: Option<u64>,
    #[cfg(feature = "testkit")]
    abort_at: Option<u64>,
    #[cfg(feature = "testkit")]
    delay: std::time::Duration,
}

#[cfg(feature = "testkit")]
fn number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok())
}

impl Hooks {
    #[cfg(feature = "testkit")]
    pub(crate) fn from_env() -> Self {
        Hooks {
            fail_at: number("BACKFILL_TEST_FAIL_AT_BATCH"),
            abort_at: number("BACKFILL_TEST_ABORT_AT_BATCH"),
            delay: std::time::Duration::from_millis(
                number("BACKFILL_TEST_BATCH_DELAY_MS").unwrap_or(0),
            ),
        }
    }

    #[cfg(not(feature = "testkit"))]
    pub(crate) fn from_env() -> Self {
        Hooks::default()
    }

    /// Runs between a batch's writes and its commit; `batch` numbers the run's batches from 1.
    #[cfg(feature = "testkit")]
    pub(crate) fn before_commit(&self, batch: u64) -> DbResult<()> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        if self.abort_at == Some(batch) {
            std::process::abort();
        }
        if self.fail_at == Some(batch) {
            return Err(crate::db::DbError::query(format!(
                "injected failure at batch {batch} (BACKFILL_TEST_FAIL_AT_BATCH)"
            )));
        }
        Ok(())
    }

    #[cfg(not(feature = "testkit"))]
    pub(crate) fn before_commit(&self, _batch: u64) -> DbResult<()> {
        Ok(())
    }
}

/// `BACKFILL_TEST_NO_LOCK`: the suite proves that fencing alone keeps rows exact.
#[cfg(feature = "testkit")]
pub(crate) fn no_lock() -> bool {
    let off = std::env::var_os("BACKFILL_TEST_NO_LOCK").is_some();
    if off {
        tracing::warn!("BACKFILL_TEST_NO_LOCK is set: running without the runner lock");
    }
    off
}

#[cfg(not(feature = "testkit"))]
pub(crate) fn no_lock() -> bool {
    false
}
