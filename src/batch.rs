//! The batch loop: each batch's writes, its checkpoint and its audit count commit in one transaction,
//! so a run stopped anywhere resumes from the last committed batch with no duplicate and no gap.

use crate::db::{DbError, ErrorKind, Session};
use crate::error::{Error, Result};
use crate::ledger::{self, Action};
use crate::lock::{self, Lease};
use crate::migration::{Batch, Context, Cursor, Step};
use crate::progress::Progress;
use crate::registry::Registered;
use crate::retry;
use crate::runner::Options;
use crate::signals;
use std::time::{Duration, Instant};

/// Test hooks, read from the environment: they let the test suite fail or kill a run at an exact batch.
struct Hooks {
    fail_at: Option<u64>,
    abort_at: Option<u64>,
    delay: Duration,
}

impl Hooks {
    fn from_env() -> Self {
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        Hooks {
            fail_at: num("BACKFILL_TEST_FAIL_AT_BATCH"),
            abort_at: num("BACKFILL_TEST_ABORT_AT_BATCH"),
            delay: Duration::from_millis(num("BACKFILL_TEST_BATCH_DELAY_MS").unwrap_or(0)),
        }
    }

    /// Runs between a batch's writes and its commit.
    fn before_commit(&self, batch: u64) -> crate::db::DbResult<()> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        if self.abort_at == Some(batch) {
            std::process::abort();
        }
        if self.fail_at == Some(batch) {
            return Err(DbError::query(format!(
                "injected failure at batch {batch} (BACKFILL_TEST_FAIL_AT_BATCH)"
            )));
        }
        Ok(())
    }
}

/// What the batch loop runs: one migration, one direction, one audited run.
pub(crate) struct Job<'a> {
    reg: &'a Registered,
    action: Action,
    ctx: &'a Context,
    run_id: &'a str,
    hooks: Hooks,
}

impl<'a> Job<'a> {
    pub(crate) fn new(
        reg: &'a Registered,
        action: Action,
        ctx: &'a Context,
        run_id: &'a str,
    ) -> Self {
        Job {
            reg,
            action,
            ctx,
            run_id,
            hooks: Hooks::from_env(),
        }
    }
}

/// The batch loop: each batch's writes, its checkpoint and its audit count commit together.
pub(crate) fn run_batches(
    session: &mut dyn Session,
    job: &Job,
    mut cursor: Option<Cursor>,
    opts: &Options,
    lease: &mut Lease,
    progress: &mut Progress,
) -> Result<(u64, u64)> {
    let mut size = BatchSize::new(opts.batch_size, opts.batch_target);
    let (mut rows, mut batches) = (0u64, 0u64);
    loop {
        if let Some(sig) = signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        lock::renew(session, lease)?;
        crate::throttle::wait_for_replicas(session, opts, progress)?;
        batches += 1;
        let started = Instant::now();
        let step = retry::conflicts(|| one_batch(session, job, cursor.as_ref(), size.now, batches))
            .map_err(|e| batch_error(job.reg, batches, e))?;
        let Some(step) = step else {
            return Err(Error::Busy(format!(
                "V{}__{} was taken over by another runner; this one stopped and rolled back its batch {batches} (nothing written twice); `backfill status` shows who runs it",
                job.reg.version, job.reg.name
            )));
        };
        let took = started.elapsed();
        tracing::debug!(
            "batch {batches}: {} keys, {} rows, {}ms",
            size.now,
            step.rows(),
            took.as_millis()
        );
        size.adapt(took);
        rows += step.rows();
        match step {
            Step::Done { .. } => break,
            Step::More { cursor: next, .. } => cursor = Some(next),
        }
        progress.update(rows, batches, cursor.as_ref().and_then(Cursor::id));
        if !opts.pause.is_zero() {
            std::thread::sleep(opts.pause);
        }
    }
    Ok((rows, batches))
}

/// How many keys the next batch takes. With a target (`--batch-ms`, the default) each batch is
/// resized toward the target from the last one's duration, at most halved or doubled per step:
/// the right size depends on the table, the server and its load, which a fixed number cannot know
/// (the benchmark's sweep at 1M rows: 20,000 keys take 0.24 s on PostgreSQL, 0.52 s on MariaDB). Without a
/// target (`--batch-size` alone) every batch has the given size. The size only bounds the next key
/// range; the cursor is always the last key written, so a resize never skips or repeats a key.
struct BatchSize {
    now: u64,
    target: Option<Duration>,
}

impl BatchSize {
    /// Bounds of an adaptive size: one key when a single row is slow, and few enough keys that one
    /// statement stays an ordinary one for the server when rows are fast.
    const MIN: u64 = 1;
    const MAX: u64 = 100_000;

    fn new(size: u64, target: Option<Duration>) -> Self {
        BatchSize { now: size, target }
    }

    fn adapt(&mut self, took: Duration) {
        let Some(target) = self.target else { return };
        let factor = target.as_secs_f64() / took.as_secs_f64().max(1e-6);
        let next = (self.now as f64 * factor.clamp(0.5, 2.0)).round() as u64;
        self.now = next.clamp(Self::MIN, Self::MAX);
    }
}

/// One batch transaction; `None` when the fence says another runner owns the migration now.
fn one_batch(
    session: &mut dyn Session,
    job: &Job,
    after: Option<&Cursor>,
    size: u64,
    number: u64,
) -> crate::db::DbResult<Option<Step>> {
    session.begin(false)?;
    let work = (|| {
        if !ledger::claim(session, job.reg.version, job.action, job.run_id, after)? {
            return Ok(None);
        }
        let batch = Batch {
            ctx: job.ctx,
            after,
            size,
        };
        let step = match job.action {
            Action::Revert => job.reg.migration.revert(session, &batch)?,
            _ => job.reg.migration.apply(session, &batch)?,
        };
        let next = match &step {
            Step::More { cursor, .. } => Some(cursor),
            Step::Done { .. } => None,
        };
        ledger::checkpoint(
            session,
            job.reg.version,
            job.action,
            job.run_id,
            next,
            step.rows(),
            size,
        )?;
        ledger::add_run_rows(session, job.run_id, step.rows())?;
        job.hooks.before_commit(number)?;
        Ok(Some(step))
    })();
    match work {
        Ok(Some(step)) => session.commit().map(|_| Some(step)),
        Ok(None) => session.rollback().map(|_| None),
        Err(e) => {
            let _ = session.rollback();
            Err(e)
        }
    }
}

fn batch_error(reg: &Registered, batch: u64, e: DbError) -> Error {
    let what = format!(
        "V{}__{} batch {batch} failed and was rolled back: {e}",
        reg.version, reg.name
    );
    match e.kind {
        ErrorKind::Conflict => Error::Runtime(format!("{what}; it kept conflicting with other writers (deadlock or certification) after {} attempts: rerun when the load is lower", retry::ATTEMPTS)),
        ErrorKind::Connection => Error::Runtime(format!("{what}; the database connection was lost, rerun to resume from the last committed batch")),
        _ => Error::Runtime(format!("{what}; fix the cause and rerun to resume from the last committed batch")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_size_never_changes() {
        let mut s = BatchSize::new(700, None);
        s.adapt(Duration::from_secs(30));
        s.adapt(Duration::from_millis(1));
        assert_eq!(s.now, 700);
    }

    #[test]
    fn adaptive_size_moves_toward_the_target_at_most_twofold() {
        let mut s = BatchSize::new(5_000, Some(Duration::from_millis(300)));
        s.adapt(Duration::from_millis(150));
        assert_eq!(s.now, 10_000);
        s.adapt(Duration::from_millis(10));
        assert_eq!(s.now, 20_000, "a fast batch at most doubles the size");
        s.adapt(Duration::from_millis(400));
        assert_eq!(s.now, 15_000);
        s.adapt(Duration::from_secs(9));
        assert_eq!(s.now, 7_500, "a slow batch at most halves it");
    }

    #[test]
    fn adaptive_size_stays_within_bounds() {
        let mut s = BatchSize::new(80_000, Some(Duration::from_millis(300)));
        s.adapt(Duration::from_millis(1));
        assert_eq!(s.now, BatchSize::MAX);
        let mut s = BatchSize::new(1, Some(Duration::from_millis(300)));
        s.adapt(Duration::from_secs(5));
        assert_eq!(s.now, BatchSize::MIN);
    }
}
