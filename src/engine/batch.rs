//! The batch transaction and the single batch loop. Each batch's writes, its checkpoint and its audit
//! count commit in one transaction, so a run stopped anywhere resumes from the last committed batch
//! with no duplicate and no gap. The `--jobs` workers (`parallel`) run the same transaction on chunks.

use crate::db::{DbError, DbResult, ErrorKind, Finish, Session};
use crate::engine::hooks::Hooks;
use crate::engine::ledger::{self, Action};
use crate::engine::lock::{self, Lease};
use crate::engine::options::Options;
use crate::engine::progress::Progress;
use crate::engine::retry;
use crate::error::{Error, Result};
use crate::kit::bounds;
use crate::kit::migration::{Context, Cursor, Key, KeyRange, Revert};
use crate::registry::Registered;
use crate::signals;
use std::time::{Duration, Instant};

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

impl Walk {
    /// The key the walk's batches range over: fixed by the migration and the walk.
    pub(crate) fn key(self, reg: &Registered) -> Result<Key> {
        Ok(match self {
            Walk::Apply => reg.migration.key(),
            Walk::Restore { .. } => crate::kit::journal::JOURNAL_KEY,
            Walk::DeleteMarked => insert_revert(reg)
                .map(|undo| undo.revert_key())
                .map_err(|e| Error::Usage(e.message))?,
        })
    }

    /// The first and last key the walk's batches range over, read once per run (for the ETA and
    /// the chunks); `own`: the migration's own key's span, already read. A revert that deletes
    /// marked rows spans only those (`Revert::revert_span`): its workers split them evenly, where
    /// the whole key's span handed one worker nothing but the app's own rows.
    pub(crate) fn span(
        self,
        session: &mut dyn Session,
        reg: &Registered,
        ctx: &Context,
        own: Option<(i64, i64)>,
    ) -> DbResult<Option<(i64, i64)>> {
        match self {
            Walk::Apply => Ok(own),
            Walk::Restore { .. } => bounds::span(session, crate::kit::journal::JOURNAL_KEY),
            Walk::DeleteMarked => insert_revert(reg)?.revert_span(session, ctx),
        }
    }
}

/// What the batch loop runs: one migration, one walk, one audited run.
pub(crate) struct Job<'a> {
    pub(crate) reg: &'a Registered,
    pub(crate) action: Action,
    walk: Walk,
    /// The key the walk's batches range over: fixed by the migration and the walk.
    pub(crate) key: Key,
    ctx: &'a Context,
    pub(crate) run_id: &'a str,
    hooks: Hooks,
}

impl<'a> Job<'a> {
    pub(crate) fn new(
        reg: &'a Registered,
        walk: Walk,
        ctx: &'a Context,
        run_id: &'a str,
    ) -> Result<Self> {
        let key = walk.key(reg)?;
        Ok(Job {
            reg,
            action: if walk == Walk::Apply {
                Action::Apply
            } else {
                Action::Revert
            },
            walk,
            key,
            ctx,
            run_id,
            hooks: Hooks::from_env(),
        })
    }

    /// What this run's ledger writes are keyed on.
    pub(crate) fn ledger_key(&self) -> ledger::RunKey<'a> {
        ledger::RunKey {
            version: self.reg.version,
            action: self.action,
            run: self.run_id,
        }
    }

    fn step(&self, tx: &mut dyn Session, range: KeyRange) -> DbResult<u64> {
        let m = self.reg.migration;
        match self.walk {
            Walk::Apply => m.apply(tx, self.ctx, range),
            Walk::DeleteMarked => insert_revert(self.reg)?.revert(tx, self.ctx, range),
            Walk::Restore { force } => {
                crate::kit::journal::restore(tx, self.ctx.version, range, force)
            }
        }
    }
}

/// `Walk::DeleteMarked` is chosen only for `Shape::Insert`, which always carries its revert; the error
/// is for a walk built by hand.
fn insert_revert(reg: &Registered) -> DbResult<&'static dyn Revert> {
    reg.migration.shape().insert_revert().ok_or_else(|| {
        DbError::query(format!(
            "V{}__{} is not INSERT-shaped: it has no rows of its own to delete",
            reg.version, reg.name
        ))
    })
}

/// What a command's runs hold while they write: the lease, the replicas they watch, and what each
/// run committed (for the error line after a signal).
pub(crate) struct Held {
    pub lease: Lease,
    pub(crate) gauge: crate::engine::throttle::Gauge,
    pub(crate) tally: crate::engine::progress::Tally,
    /// What operators ask of the runs, and the command's window and budget.
    pub(crate) steer: crate::engine::control::Steering,
}

impl Held {
    pub(crate) fn new(lease: Lease, gauge: crate::engine::throttle::Gauge, opts: &Options) -> Held {
        Held {
            lease,
            gauge,
            tally: crate::engine::progress::Tally::default(),
            steer: crate::engine::control::Steering::new(opts.budget.clone(), opts),
        }
    }
}

/// Where a batch is fenced and checkpointed.
#[derive(Clone, Copy)]
pub(crate) enum Place<'c> {
    /// The migration's ledger row (the single loop). `holds`: its cursor as the ledger wrote it, which
    /// the fence compares as text.
    Migration { holds: Option<&'c Cursor> },
    /// One chunk's row (a `--jobs` worker).
    Chunk(&'c ledger::Chunk),
}

/// One batch to run: where, after which key, and how many keys it asks for.
#[derive(Clone, Copy)]
pub(crate) struct Batch<'c> {
    pub place: Place<'c>,
    /// The last key done; `None` before the place's first batch.
    pub after: Option<i64>,
    pub size: u64,
}

/// What one batch did.
pub(crate) enum Batched {
    /// Wrote `rows` over keys up to `cursor`; `done`: the chunk is finished (a chunk's last key).
    More { rows: u64, cursor: i64, done: bool },
    /// No key left after the cursor.
    Done,
    /// The fence failed: another runner owns the migration (or the chunk) now.
    Overtaken,
}

/// One batch transaction, the same for the single loop and the `--jobs` workers: the fence first (a
/// compare-and-set on the place's cursor, so a batch that another runner overtook rolls back), then
/// the next key range's writes, its checkpoint and (single loop) the run's row count, committed
/// together. `number` names the batch for the test hooks once it has written.
pub(crate) fn fenced_batch(
    session: &mut dyn Session,
    job: &Job,
    batch: Batch,
    number: &mut dyn FnMut() -> u64,
) -> DbResult<Batched> {
    if matches!(batch.place, Place::Migration { .. }) && next_key(batch.after).is_none() {
        return Ok(Batched::Done); // the cursor is the last key there can be: nothing to fence
    }
    session.transaction(|s| {
        let Some(last) = fence(s, job, batch)? else {
            return Ok(Finish::Rollback(Batched::Overtaken));
        };
        let Some(range) = next_range(s, job.key, batch, last)? else {
            return nothing_left(s, job, batch);
        };
        let rows = job.step(s, range)?;
        let done = range.hi >= last;
        checkpoint(s, job, batch, (range.hi, rows, done))?;
        job.hooks.before_commit(number())?;
        Ok(Finish::Commit(Batched::More {
            rows,
            cursor: range.hi,
            done,
        }))
    })
}

/// The fence: `Some(the last key the place may walk)` while this run still owns it. A chunk's row
/// holds its last key, which a split may have lowered.
fn fence(s: &mut dyn Session, job: &Job, batch: Batch) -> DbResult<Option<i64>> {
    match batch.place {
        Place::Migration { holds } => {
            Ok(ledger::claim(s, job.ledger_key(), holds)?.then_some(i64::MAX))
        }
        Place::Chunk(chunk) => ledger::fence_chunk(s, job.ledger_key(), chunk.lo, batch.after),
    }
}

/// The next range of `batch.size` keys after the cursor, up to `last`; `None` when no key is left. In
/// a chunk, when fewer keys than asked are left, the batch takes the rest of the chunk and finishes
/// it, so no batch is spent only on finding the chunk empty.
fn next_range(
    s: &mut dyn Session,
    key: Key,
    batch: Batch,
    last: i64,
) -> DbResult<Option<KeyRange>> {
    let Place::Chunk(chunk) = batch.place else {
        let Some(lo) = next_key(batch.after) else {
            return Ok(None);
        };
        return Ok(bounds::next_bound(s, key, lo, batch.size)?.map(|hi| KeyRange { lo, hi }));
    };
    let lo = match batch.after {
        None => chunk.lo,
        Some(c) if c >= last => return Ok(None),
        Some(c) => c + 1,
    };
    let (top, found) = bounds::next_bound_within(s, key, (lo, last), batch.size)?;
    let rest = found < batch.size.max(1);
    Ok(top.map(|top| KeyRange {
        lo,
        hi: if rest { last } else { top },
    }))
}

/// No key left: the single loop's look wrote nothing and rolls back; a chunk is marked done, so no
/// worker takes it again.
fn nothing_left(s: &mut dyn Session, job: &Job, batch: Batch) -> DbResult<Finish<Batched>> {
    let Place::Chunk(chunk) = batch.place else {
        return Ok(Finish::Rollback(Batched::Done));
    };
    let mark = ledger::ChunkMark {
        cursor: None,
        rows: 0,
        done: true,
    };
    ledger::checkpoint_chunk(s, job.ledger_key(), chunk.lo, mark)?;
    Ok(Finish::Commit(Batched::Done))
}

/// The batch's checkpoint: the last key done (the only place the cursor becomes the ledger's text),
/// the rows, and whether the chunk is finished.
fn checkpoint(
    s: &mut dyn Session,
    job: &Job,
    batch: Batch,
    (hi, rows, done): (i64, u64, bool),
) -> DbResult<()> {
    match batch.place {
        Place::Migration { .. } => {
            let cursor = Cursor::from_id(hi);
            ledger::checkpoint(s, job.ledger_key(), Some(&cursor), rows, batch.size)?;
            ledger::add_run_rows(s, job.run_id, rows)
        }
        Place::Chunk(chunk) => {
            let mark = ledger::ChunkMark {
                cursor: Some(hi),
                rows,
                done,
            };
            ledger::checkpoint_chunk(s, job.ledger_key(), chunk.lo, mark)
        }
    }
}

/// The batch loop: each batch's writes, its checkpoint and its audit count commit together.
pub(crate) fn run_batches(
    session: &mut dyn Session,
    job: &Job,
    cursor: Option<Cursor>,
    opts: &Options,
    held: &mut Held,
    progress: &mut Progress,
) -> Result<(u64, u64)> {
    let mut size = BatchSize::new(opts.batch_size, opts.batch_target);
    let mut pause = opts.pause;
    let (mut rows, mut batches) = (0u64, 0u64);
    let mut after = last_done(job, cursor.as_ref())?;
    // The fence compares the cursor as the ledger holds it: as it was read, then as we wrote it.
    let mut holds = cursor;
    loop {
        between_batches(session, held, progress)?;
        if let Some(tuned) = crate::engine::control::between(session, held, progress, rows)? {
            size.retune(&tuned);
            pause = tuned.pause().unwrap_or(pause);
            held.gauge.retune(tuned.max_replica_lag());
        }
        batches += 1;
        let place = Place::Migration {
            holds: holds.as_ref(),
        };
        let room = held.steer.room(rows);
        let batch = Batch {
            place,
            after,
            size: room.map_or(size.now, |r| size.now.min(r)),
        };
        let (step, took, tries) = attempts(|| fenced_batch(session, job, batch, &mut || batches))
            .map_err(|e| batch_error(job.reg, batches, e))?;
        let (done, next) = match step {
            Batched::Overtaken => return Err(overtaken(job, Some(batches))),
            Batched::Done => {
                batches -= 1; // the look that found nothing left wrote nothing
                break;
            }
            Batched::More { rows, cursor, .. } => (rows, cursor),
        };
        tracing::debug!(
            "batch {batches}: {} keys, {done} rows{}, {}ms",
            size.now,
            retried(tries),
            took.as_millis()
        );
        size.adapt(took);
        opts.metrics.batch_took(took);
        rows += done;
        (after, holds) = (Some(next), Some(Cursor::from_id(next)));
        progress.update(rows, batches, after);
        if !pause.is_zero() {
            signals::pause(pause);
        }
    }
    Ok((rows, batches))
}

/// What the single loop does before each batch: stop on a signal, renew the lease, wait while a
/// throttle holds the run.
fn between_batches(
    session: &mut dyn Session,
    held: &mut Held,
    progress: &mut Progress,
) -> Result<()> {
    if let Some(sig) = signals::requested() {
        return Err(Error::Interrupted(sig));
    }
    lock::renew(session, &mut held.lease)?;
    crate::engine::throttle::wait_while_throttled(
        session,
        &mut held.gauge,
        &mut held.lease,
        progress,
        &mut held.steer,
    )
}

/// One batch with its conflict retries (`retry::conflicts`). The duration is the committed attempt's
/// transaction, BEGIN to COMMIT: what the server held locks for, what the batch size adapts to (the
/// attempts a conflict rolled back, and the back-off between them, are not the batch's size at fault).
pub(crate) fn attempts<T>(mut work: impl FnMut() -> DbResult<T>) -> DbResult<(T, Duration, u32)> {
    let (mut tries, mut last) = (0u32, Duration::ZERO);
    let out = retry::conflicts(|| {
        tries += 1;
        let started = Instant::now();
        let result = work();
        last = started.elapsed();
        result
    })?;
    Ok((out, last, tries))
}

/// ", 3 attempts" in a batch's debug line when conflicts made it retry.
pub(crate) fn retried(tries: u32) -> String {
    if tries > 1 {
        format!(", {tries} attempts")
    } else {
        String::new()
    }
}

/// How many keys the next batch takes. With a target (`--batch-ms`, the default) each batch is
/// resized toward the target from the last one's duration, at most halved or doubled per step:
/// the right size depends on the table, the server and its load, which a fixed number cannot know
/// (BENCHMARKS.md, the sweep of sizes: the same key count takes twice as long on one server as on the other). Without a
/// target (`--batch-size` alone) every batch has the given size. The size only bounds the next key
/// range; the cursor is always the last key written, so a resize never skips or repeats a key.
#[derive(Clone)]
pub(crate) struct BatchSize {
    pub(crate) now: u64,
    target: Option<Duration>,
}

impl BatchSize {
    /// Bounds of an adaptive size: one key when a single row is slow, and few enough keys that one
    /// statement stays an ordinary one for the server when rows are fast.
    const MIN: u64 = 1;
    const MAX: u64 = 100_000;

    pub(crate) fn new(size: u64, target: Option<Duration>) -> Self {
        BatchSize { now: size, target }
    }

    /// `backfill set` on a running run: `--batch-size N` alone fixes the size at N (as the flag
    /// alone does), `--batch-ms` resizes toward a new target from the size now. The cursor is the
    /// last key written whatever the size, so a retune never skips or repeats a key.
    pub(crate) fn retune(&mut self, tuned: &crate::engine::control::Retune) {
        if let Some(n) = tuned.changed.batch_size {
            self.now = n;
            self.target = tuned.now.batch_ms.map(Duration::from_millis);
        }
        if let Some(ms) = tuned.changed.batch_ms {
            self.target = Some(Duration::from_millis(ms));
        }
    }

    pub(crate) fn adapt(&mut self, took: Duration) {
        let Some(target) = self.target else { return };
        let factor = target.as_secs_f64() / took.as_secs_f64().max(1e-6);
        let next = (self.now as f64 * factor.clamp(0.5, 2.0)).round() as u64;
        self.now = next.clamp(Self::MIN, Self::MAX);
    }
}

/// `open`: the number of the batch whose transaction the fence rolled back, when this run had numbered
/// it; a parallel run learns it was overtaken at a fence before numbering, or at its end, and then
/// names no batch rather than one that committed.
pub(crate) fn overtaken(job: &Job, open: Option<u64>) -> Error {
    let stopped = match open {
        Some(n) => format!("stopped and rolled back its batch {n}"),
        None => "stopped before writing another batch".into(),
    };
    Error::Busy(format!(
        "V{}__{} was taken over by another runner; this one {stopped} (its committed batches stay, nothing is written twice); `backfill status` shows who runs it",
        job.reg.version, job.reg.name
    ))
}

/// The last key done, from the ledger's checkpoint (its text, read once per run). A cursor that is
/// not a key is ledger damage (exit 3), with the fix.
pub(crate) fn last_done(job: &Job, cursor: Option<&Cursor>) -> Result<Option<i64>> {
    let Some(c) = cursor else {
        return Ok(None);
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
    Ok(Some(id))
}

/// The first key after `after`; `None` when `after` is the last key there can be.
pub(crate) fn next_key(after: Option<i64>) -> Option<i64> {
    after.map_or(Some(i64::MIN), |c| c.checked_add(1))
}

pub(crate) fn batch_error(reg: &Registered, batch: u64, e: DbError) -> Error {
    let what = format!(
        "V{}__{} batch {batch} failed and was rolled back: {e}",
        reg.version, reg.name
    );
    match e.kind {
        ErrorKind::Conflict => Error::Runtime(format!("{what}; it kept conflicting with other writers (deadlock or certification) after {} attempts: rerun when the load is lower", retry::ATTEMPTS)),
        ErrorKind::Connection => Error::Runtime(format!("{what}; the database connection was lost, rerun to resume from the last committed batch")),
        // A missing privilege, a read-only server, a key the walk cannot hold: the operator's (exit 2).
        ErrorKind::Config => Error::Usage(format!("{what}; fix the cause and rerun to resume from the last committed batch")),
        _ => Error::Runtime(format!("{what}; fix the cause and rerun to resume from the last committed batch")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_key_follows_the_cursor_and_stops_at_the_last_key() {
        assert_eq!(next_key(None), Some(i64::MIN));
        assert_eq!(next_key(Some(41)), Some(42));
        assert_eq!(next_key(Some(i64::MAX)), None);
    }

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
