//! The batch loop: each batch's writes, its checkpoint and its audit count commit in one transaction,
//! so a run stopped anywhere resumes from the last committed batch with no duplicate and no gap.

use crate::db::{DbError, ErrorKind, Session};
use crate::error::{Error, Result};
use crate::ledger::{self, Action};
use crate::lock::{self, Lease};
use crate::migration::{Context, Cursor, Key, KeyRange};
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

/// What a run walks and what each batch does with its key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// The migration's key, its apply step.
    Apply,
    /// INSERT shape: the migration's revert key, its revert step (delete what it marked).
    DeleteMarked,
    /// UPDATE shape: the undo journal, restoring old values (`force`: even over later edits).
    Restore { force: bool },
}

/// What the batch loop runs: one migration, one walk, one audited run.
pub(crate) struct Job<'a> {
    reg: &'a Registered,
    action: Action,
    walk: Walk,
    ctx: &'a Context,
    run_id: &'a str,
    hooks: Hooks,
}

impl<'a> Job<'a> {
    pub(crate) fn new(
        reg: &'a Registered,
        walk: Walk,
        ctx: &'a Context,
        run_id: &'a str,
    ) -> Result<Self> {
        let job = Job {
            reg,
            action: if walk == Walk::Apply {
                Action::Apply
            } else {
                Action::Revert
            },
            walk,
            ctx,
            run_id,
            hooks: Hooks::from_env(),
        };
        job.key()?;
        Ok(job)
    }

    pub(crate) fn key(&self) -> Result<Key> {
        match self.walk {
            Walk::Apply => Ok(self.reg.migration.key()),
            Walk::Restore { .. } => Ok(crate::kit::update::JOURNAL_KEY),
            Walk::DeleteMarked => self.reg.migration.revert_key().ok_or_else(|| {
                Error::Usage(format!(
                    "V{}__{} is INSERT-shaped but names no revert key; its author must add `revert_key`",
                    self.reg.version, self.reg.name
                ))
            }),
        }
    }

    fn step(&self, tx: &mut dyn Session, range: KeyRange) -> crate::db::DbResult<u64> {
        let m = self.reg.migration;
        match self.walk {
            Walk::Apply => m.apply(tx, self.ctx, range),
            Walk::DeleteMarked => m.revert(tx, self.ctx, range),
            Walk::Restore { force } => {
                crate::kit::update::restore(tx, self.ctx.version, range, force)
            }
        }
    }
}

/// What one batch did.
enum Batched {
    /// Wrote `rows` over keys up to `cursor`.
    More { rows: u64, cursor: Cursor },
    /// No keys left after the cursor.
    Done,
    /// The fence failed: another runner owns the migration now.
    Overtaken,
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
    let key = job.key()?;
    start_of(job, cursor.as_ref())?;
    loop {
        if let Some(sig) = signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        lock::renew(session, lease)?;
        crate::throttle::wait_for_replicas(session, opts, progress)?;
        batches += 1;
        let started = Instant::now();
        let step =
            retry::conflicts(|| one_batch(session, job, key, cursor.as_ref(), size.now, batches))
                .map_err(|e| batch_error(job.reg, batches, e))?;
        let (done, next) = match step {
            Batched::Overtaken => return Err(overtaken(job, batches)),
            Batched::Done => {
                batches -= 1; // the look that found nothing left wrote nothing
                break;
            }
            Batched::More { rows, cursor } => (rows, cursor),
        };
        let took = started.elapsed();
        tracing::debug!(
            "batch {batches}: {} keys, {done} rows, {}ms",
            size.now,
            took.as_millis()
        );
        size.adapt(took);
        rows += done;
        cursor = Some(next);
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

fn overtaken(job: &Job, batch: u64) -> Error {
    Error::Busy(format!(
        "V{}__{} was taken over by another runner; this one stopped and rolled back its batch {batch} (nothing written twice); `backfill status` shows who runs it",
        job.reg.version, job.reg.name
    ))
}

/// The first key after the cursor; `None` when the cursor is the last key there can be. A cursor that
/// is not a key is ledger damage (exit 3), with the fix.
fn start_of(job: &Job, after: Option<&Cursor>) -> Result<Option<i64>> {
    let Some(c) = after else {
        return Ok(Some(i64::MIN));
    };
    let id = c.id().ok_or_else(|| {
        let column = if job.action == Action::Revert {
            "revert_cursor"
        } else {
            "apply_cursor"
        };
        Error::Ledger(format!(
            "the ledger's checkpoint for V{} is damaged ({column} = `{}` is not a key); set it to the last key done, or to NULL to start over (every migration is idempotent): UPDATE backfill_migrations SET {column} = NULL WHERE version = {}",
            job.reg.version, c.0, job.reg.version
        ))
    })?;
    Ok(id.checked_add(1))
}

/// One batch transaction: the fence first, then the next key range's writes, its checkpoint and its
/// audit count.
fn one_batch(
    session: &mut dyn Session,
    job: &Job,
    key: Key,
    after: Option<&Cursor>,
    size: u64,
    number: u64,
) -> crate::db::DbResult<Batched> {
    let Ok(Some(lo)) = start_of(job, after) else {
        return Ok(Batched::Done);
    };
    session.begin(false)?;
    let work = (|| {
        if !ledger::claim(session, job.reg.version, job.action, job.run_id, after)? {
            return Ok(Batched::Overtaken);
        }
        let Some(hi) = crate::kit::bounds::next_bound(session, key, lo, size)? else {
            return Ok(Batched::Done);
        };
        let rows = job.step(session, KeyRange { lo, hi })?;
        let cursor = Cursor::from_id(hi);
        ledger::checkpoint(
            session,
            job.reg.version,
            job.action,
            job.run_id,
            Some(&cursor),
            rows,
            size,
        )?;
        ledger::add_run_rows(session, job.run_id, rows)?;
        job.hooks.before_commit(number)?;
        Ok(Batched::More { rows, cursor })
    })();
    match work {
        Ok(Batched::More { rows, cursor }) => {
            session.commit().map(|_| Batched::More { rows, cursor })
        }
        Ok(other) => session.rollback().map(|_| other),
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
