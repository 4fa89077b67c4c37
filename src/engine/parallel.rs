//! Parallel runs (`--jobs N`): workers on disjoint key ranges (chunks), each with its own connection,
//! each batch the same fenced transaction as the single loop (`batch::fenced_batch`). This thread, on
//! the command's session, coordinates: it renews the lease, reads replica lag and draws the progress.

use crate::db::{DbError, Session};
use crate::engine::batch::{
    attempts, batch_error, fenced_batch, last_done, next_key, overtaken, retried, Batch, BatchSize,
    Batched, Held, Job, Place,
};
use crate::engine::ledger;
use crate::engine::lock::{self, Lease};
use crate::engine::options::{Connector, Options};
use crate::engine::progress::Progress;
use crate::engine::retry;
use crate::engine::steal::steal;
use crate::error::{Error, Result};
use crate::kit::migration::Cursor;
use crate::signals;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the coordinator looks at the workers, renews the lease and redraws the progress.
const TICK: Duration = Duration::from_millis(50);

/// How often the coordinator reads replica lag for the whole run (`--max-replica-lag`).
const LAG_EVERY: Duration = Duration::from_millis(500);

/// Which loop a run uses, decided once it owns the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// The plain batch loop on the command's session.
    Single,
    /// Workers on chunks (new ones, or those an earlier parallel run left).
    Parallel,
}

/// Settles the chunks of a run that has just started (`ledger::start`): it takes over the chunks an
/// earlier parallel run of the same action left (a resume), or, with more than one worker, records
/// new ones over the keys after `after` (split over `span`, the run's key span). A runner that took
/// the migration over meanwhile is exit 4.
pub(crate) fn prepare(
    session: &mut dyn Session,
    job: &Job,
    fresh: bool,
    (after, span): (Option<&Cursor>, Option<(i64, i64)>),
    workers: usize,
) -> Result<Engine> {
    let (version, action) = (job.reg.version, job.action);
    // New chunks only when none wait to be resumed, which the transaction checks again.
    let left = retry::conflicts(|| ledger::chunks(session, version, action))
        .map_err(|e| chunk_error(job, e))?;
    let ranges = if workers > 1 && (fresh || left.is_empty()) {
        let from = next_key(last_done(job, after)?).unwrap_or(i64::MAX);
        let ranges = first_chunks(from, span, workers);
        let shown: Vec<String> = ranges
            .iter()
            .map(|(lo, hi)| format!("{lo}..={hi}"))
            .collect();
        tracing::debug!("first chunks over the span {span:?}: {}", shown.join(", "));
        Some(ranges)
    } else {
        None
    };
    let prepared = retry::conflicts(|| {
        ledger::prepare_chunks(session, job.ledger_key(), fresh, ranges.as_deref())
    })
    .map_err(|e| chunk_error(job, e))?;
    match prepared {
        ledger::Prepared::Overtaken => Err(overtaken(job, None)),
        ledger::Prepared::TookOver => {
            ledger::chunk_gap(session, version, action)?;
            Ok(Engine::Parallel)
        }
        ledger::Prepared::Created => Ok(Engine::Parallel),
        ledger::Prepared::Single => Ok(Engine::Single),
    }
}

/// The first chunks of a parallel run over the keys from `from` on: one per worker, of equal width
/// between `from` (or the first key, when `from` is below it) and the last key, the last one open to
/// the largest key there can be (keys added later are in a chunk too). No pass over the keys: the
/// key distribution is followed as the run goes, by splitting (`steal`): a worker that finds no
/// pending chunk splits the upper part off the chunk with the most keys left, so a sparse range
/// never leaves a job idle while another still has a dense one.
pub(crate) fn first_chunks(from: i64, span: Option<(i64, i64)>, jobs: usize) -> Vec<(i64, i64)> {
    let Some((first, last)) = span.filter(|(_, last)| *last >= from) else {
        return vec![(from, i64::MAX)];
    };
    let base = i128::from(from.max(first));
    let width = i128::from(last) - base + 1;
    let n = i128::try_from(jobs.max(1)).unwrap_or(1).min(width.max(1));
    let mut ranges = Vec::new();
    let mut lo = from;
    for i in 1..n {
        let top = i64::try_from(base + width * i / n - 1).unwrap_or(i64::MAX);
        if top < lo {
            continue;
        }
        ranges.push((lo, top));
        lo = top + 1;
    }
    ranges.push((lo, i64::MAX));
    ranges
}

fn chunk_error(job: &Job, e: DbError) -> Error {
    Error::Runtime(format!(
        "V{}__{} could not record its chunks in the ledger: {e}; rerun to resume",
        job.reg.version, job.reg.name
    ))
}

/// The workers of a parallel run: how many, and how each opens its session.
pub(crate) struct Crew<'a> {
    pub jobs: usize,
    pub connect: &'a Connector,
}

/// A parallel run over the chunks `prepare` settled: `crew.jobs` workers take chunks and run fenced
/// batches in them while this thread coordinates. `span`: the run's key span, as read when it
/// started. On success the chunks are folded into the ledger. Returns the rows and batches of this run.
pub(crate) fn run_parallel(
    session: &mut dyn Session,
    job: &Job,
    crew: Crew,
    span: Option<(i64, i64)>,
    opts: &Options,
    held: &mut Held,
    progress: &mut Progress,
) -> Result<(u64, u64)> {
    let shared = Shared::new(span, opts);
    // What earlier runs already did counts toward the fraction of keys done.
    let resumed =
        ledger::chunks(session, job.reg.version, job.action).map_err(|e| chunk_error(job, e))?;
    shared.count_resumed(&resumed);
    let Held {
        lease,
        gauge,
        steer,
        ..
    } = held;
    let mut lag = ReplicaGate::new(gauge);
    lag.check(session, &shared, progress);
    let roll = Roll::new();
    std::thread::scope(|scope| {
        let workers = std::cell::RefCell::new(Vec::new());
        // A worker more, now or when `backfill set --jobs` asks for more.
        let hire = |w: usize| {
            let (shared, roll, connect) = (&shared, &roll, crew.connect);
            roll.live.fetch_add(1, Ordering::SeqCst);
            let worker = scope.spawn(move || work(w, connect, job, opts, shared, roll));
            workers.borrow_mut().push(worker);
        };
        (0..crew.jobs.max(1)).for_each(hire);
        let mut coordinator = Coordinator {
            lease,
            lag: &mut lag,
            progress: &mut *progress,
            steer,
            hire: &hire,
            hired: crew.jobs.max(1),
        };
        coordinator.watch(session, &shared, &roll);
        for w in workers.into_inner() {
            if w.join().is_err() {
                shared.fail(Error::Runtime(format!(
                    "a worker of V{}__{} stopped unexpectedly; rerun to resume from the last committed batches",
                    job.reg.version, job.reg.name
                )));
            }
        }
    });
    conclude(session, job, &shared, &roll, progress)
}

/// A parallel run's end, once every worker has stopped: its error, or its chunks folded into the
/// ledger.
fn conclude(
    session: &mut dyn Session,
    job: &Job,
    shared: &Shared,
    roll: &Roll,
    progress: &mut Progress,
) -> Result<(u64, u64)> {
    let (version, action) = (job.reg.version, job.action);
    let (rows, batches) = (
        shared.rows.load(Ordering::SeqCst),
        shared.batches.load(Ordering::SeqCst),
    );
    progress.update(rows, batches, shared.position());
    if roll.connected.load(Ordering::SeqCst) == 0 {
        if let Some(e) = roll.refused.lock().ok().and_then(|mut e| e.take()) {
            shared.fail(Error::Runtime(format!(
                "no worker of V{version}__{} could connect: {e}",
                job.reg.name
            )));
        }
    }
    let failed = shared.error.lock().ok().and_then(|mut e| e.take());
    if let Some(e) = failed {
        // Its rows go to its audit row now; its chunks stay for the run that resumes them.
        if let Err(settle) = retry::conflicts(|| ledger::settle_run_rows(session, job.ledger_key()))
        {
            tracing::debug!("could not count this run's rows in its audit row yet: {settle}");
        }
        return Err(e);
    }
    // Every chunk is done: a hole among them (a row deleted meanwhile) must not end `applied`, nor
    // may a key the chunks cannot hold (added above i64::MAX meanwhile), which no chunk walked: the
    // key span is read again for that alone.
    ledger::chunk_gap(session, version, action)?;
    crate::kit::bounds::span(session, job.key).map_err(|e| batch_error(job.reg, batches, e))?;
    match retry::conflicts(|| ledger::fold_chunks(session, job.ledger_key()))
        .map_err(|e| chunk_error(job, e))?
    {
        Some(_) => Ok((rows, batches)),
        None => Err(overtaken(job, None)),
    }
}

/// How the workers of a run stand, for the coordinator.
struct Roll {
    /// Workers still running. Each wakes the coordinator when it ends, so the run ends when its last
    /// batch does.
    live: AtomicU64,
    connected: AtomicU64,
    /// The first worker's connection error: the run's when no worker connected.
    refused: Mutex<Option<DbError>>,
    coordinator: std::thread::Thread,
}

impl Roll {
    fn new() -> Self {
        Roll {
            live: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            refused: Mutex::new(None),
            coordinator: std::thread::current(),
        }
    }
}

/// One worker's thread: its session, then its chunks.
fn work(w: usize, connect: &Connector, job: &Job, opts: &Options, shared: &Shared, roll: &Roll) {
    // Counted out even if the worker panics, so the coordinator never waits on it.
    let _ended = Ended(&roll.live, roll.coordinator.clone());
    let result = match connect.open() {
        Ok(mut s) => {
            roll.connected.fetch_add(1, Ordering::SeqCst);
            let worker = Worker {
                number: w,
                job,
                opts,
                shared,
            };
            worker.run(s.as_mut())
        }
        // The workers claim chunks as they go: one that cannot connect (the server's connections
        // taken since the budget was read) leaves its share to the others. Only a run none of whose
        // workers connected fails.
        Err(e) => {
            tracing::warn!(
                "a worker of V{}__{} could not connect ({e}): the other workers take its chunks",
                job.reg.version,
                job.reg.name
            );
            if let Ok(mut first) = roll.refused.lock() {
                first.get_or_insert(e);
            }
            Ok(())
        }
    };
    if let Err(e) = result {
        shared.fail(e);
    }
}

/// A worker's end: one fewer live worker, and the coordinator woken to see it.
struct Ended<'a>(&'a AtomicU64, std::thread::Thread);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.unpark();
    }
}

/// The coordinator's part of a run, on the command's session.
struct Coordinator<'c, 'g> {
    lease: &'c mut Lease,
    lag: &'c mut ReplicaGate<'g>,
    progress: &'c mut Progress,
    steer: &'c mut crate::engine::control::Steering,
    /// Starts worker number N (`backfill set --jobs` more); `hired`: how many were started.
    hire: &'c dyn Fn(usize),
    hired: usize,
}

impl Coordinator<'_, '_> {
    /// Until the last worker ends: stop them all on a signal or a lost lease, hold them while
    /// replicas lag, and draw the progress.
    fn watch(&mut self, session: &mut dyn Session, shared: &Shared, roll: &Roll) {
        while roll.live.load(Ordering::SeqCst) > 0 {
            if !shared.stopping() {
                if let Some(sig) = signals::requested() {
                    shared.fail(Error::Interrupted(sig));
                } else if let Err(e) = lock::renew(session, self.lease) {
                    shared.fail(e);
                } else {
                    self.lag.check(session, shared, self.progress);
                    self.steer.throttled(self.lag.gauge.reason());
                    self.steer(session, shared, roll);
                }
            }
            self.progress.update(
                shared.rows.load(Ordering::Relaxed),
                shared.batches.load(Ordering::Relaxed),
                shared.position(),
            );
            self.steer.report(session, &self.progress.snapshot(), true);
            std::thread::park_timeout(TICK);
        }
    }
}

impl Coordinator<'_, '_> {
    /// Between the workers' batches: what the operator asked (`control`), for every worker.
    fn steer(&mut self, session: &mut dyn Session, shared: &Shared, roll: &Roll) {
        use crate::engine::control::Look;
        let rows = shared.rows.load(Ordering::SeqCst);
        let hold = match self.steer.look(session, rows) {
            Look::Go(tuned) => {
                if let Some(tuned) = tuned {
                    shared.retune(&tuned);
                    self.lag.gauge.retune(tuned.max_replica_lag());
                    if let Some(jobs) = tuned.changed.jobs {
                        self.staff(shared, roll, usize::try_from(jobs).unwrap_or(1).max(1));
                    }
                }
                None
            }
            Look::Hold(hold) => Some(hold),
            Look::Stop(e) => return shared.fail(e),
        };
        shared.paused.store(hold.is_some(), Ordering::SeqCst);
        if self.steer.show(hold.as_ref()) {
            if let Some(hold) = &hold {
                self.progress.note(&hold.to_string());
            }
        }
    }
}

impl Coordinator<'_, '_> {
    /// `backfill set --jobs N`: as many workers as asked, hiring new ones (they claim pending chunks
    /// or split busy ones) or retiring some after their current batch (their chunks go back to
    /// pending, cursors kept, for the others).
    fn staff(&mut self, shared: &Shared, roll: &Roll, jobs: usize) {
        let running = usize::try_from(roll.live.load(Ordering::SeqCst)).unwrap_or(0);
        let retiring = shared.retire.load(Ordering::SeqCst);
        let staying = running.saturating_sub(retiring);
        if jobs < staying {
            shared.retire.fetch_add(staying - jobs, Ordering::SeqCst);
        } else {
            let kept = shared.unretire(jobs - staying);
            for _ in 0..(jobs - staying - kept) {
                (self.hire)(self.hired);
                self.hired += 1;
            }
        }
        self.steer.workers(jobs);
        tracing::info!("--jobs {jobs} from now on ({staying} were working)");
    }
}

/// One worker: takes pending chunks of its run, then splits busy ones, until no work is left, running
/// fenced batches in each.
struct Worker<'a> {
    number: usize,
    job: &'a Job<'a>,
    opts: &'a Options,
    shared: &'a Shared,
}

impl Worker<'_> {
    fn run(&self, session: &mut dyn Session) -> Result<()> {
        let (job, shared) = (self.job, self.shared);
        let mut size = BatchSize::new(self.opts.batch_size, self.opts.batch_target);
        while !shared.stopping() {
            let chunk = retry::conflicts(|| ledger::claim_chunk(session, job.ledger_key()))
                .and_then(|c| match c {
                    Some(c) => Ok(Some(c)),
                    None => steal(session, job, shared, size.now),
                })
                .map_err(|e| batch_error(job.reg, shared.numbered.load(Ordering::SeqCst), e))?;
            let Some(chunk) = chunk else {
                return Ok(());
            };
            // Each chunk starts from the first size again: a size grown on a sparse chunk (few rows
            // per key) would make the first batch of a dense one many times the target (measured:
            // 100,000 keys, 1.9 s, on MariaDB at 1M).
            size = shared.first_size();
            if self.walk(session, &chunk, &mut size)? {
                let key = job.ledger_key();
                retry::conflicts(|| ledger::release_chunk(session, key, chunk.lo))
                    .map_err(|e| chunk_error(job, e))?;
                tracing::debug!(
                    "worker {} retired, chunk {} back to pending",
                    self.number,
                    chunk.lo
                );
                return Ok(());
            }
        }
        Ok(())
    }

    /// The batches of one chunk, until it is done or the run stops; `true`: this worker retires
    /// (`backfill set --jobs` fewer) and leaves the chunk unfinished.
    fn walk(
        &self,
        session: &mut dyn Session,
        chunk: &ledger::Chunk,
        size: &mut BatchSize,
    ) -> Result<bool> {
        let mut cursor = chunk.cursor;
        let mut tuned = self.shared.tuned.load(Ordering::SeqCst);
        loop {
            if let Some(sig) = signals::requested() {
                return Err(Error::Interrupted(sig));
            }
            while self.shared.holds() && !self.shared.stopping() {
                std::thread::sleep(TICK);
            }
            tuned = self.shared.retuned(tuned, size);
            if self.shared.stopping() {
                return Ok(false);
            }
            if self.shared.retiring() {
                return Ok(true);
            }
            let Some((next, done)) = self.batch(session, chunk, cursor, size)? else {
                return Ok(false);
            };
            cursor = Some(next);
            if done {
                return Ok(false);
            }
            let pause = self.shared.pause();
            if !pause.is_zero() {
                signals::pause(pause);
            }
        }
    }

    /// One fenced batch in `chunk` after `cursor`, with its conflict retries; the last key it wrote
    /// and whether the chunk is finished, or `None` when the chunk had no key left.
    fn batch(
        &self,
        session: &mut dyn Session,
        chunk: &ledger::Chunk,
        cursor: Option<i64>,
        size: &mut BatchSize,
    ) -> Result<Option<(i64, bool)>> {
        let (job, counter) = (self.job, &self.shared.numbered);
        let batch = Batch {
            place: Place::Chunk(chunk),
            after: cursor,
            size: size.now,
        };
        // Numbered across the workers when it writes (a look that finds the chunk empty is no
        // batch), once for all its attempts: the test hooks stop "the Nth batch of the run".
        let mut numbered = None;
        let (step, took, tries) = attempts(|| {
            let mut number =
                || *numbered.get_or_insert_with(|| counter.fetch_add(1, Ordering::SeqCst) + 1);
            fenced_batch(session, job, batch, &mut number)
        })
        .map_err(|e| {
            let n = numbered.unwrap_or_else(|| counter.load(Ordering::SeqCst) + 1);
            batch_error(job.reg, n, e)
        })?;
        let (rows, next, done) = match step {
            Batched::Overtaken => return Err(overtaken(job, numbered)),
            Batched::Done => return Ok(None),
            Batched::More { rows, cursor, done } => (rows, cursor, done),
        };
        let number = numbered.unwrap_or_else(|| counter.load(Ordering::SeqCst));
        let lo = cursor.map_or(chunk.lo, |c| c.saturating_add(1));
        // After the commit: the test suite reads these lines to prove that no key range was
        // written by two workers or two runs.
        tracing::debug!(
            "worker {} chunk {} batch {number}: keys {lo}..={next} committed, {rows} rows, {} keys asked{}, {}ms",
            self.number,
            chunk.lo,
            size.now,
            retried(tries),
            took.as_millis()
        );
        size.adapt(took);
        self.opts.metrics.batch_took(took);
        let shared = self.shared;
        shared
            .keys_done
            .fetch_add(shared.width(lo, next), Ordering::Relaxed);
        shared.rows.fetch_add(rows, Ordering::SeqCst);
        shared.batches.fetch_add(1, Ordering::SeqCst);
        Ok(Some((next, done)))
    }
}

/// What the workers and the coordinator of one parallel run share.
pub(crate) struct Shared {
    /// Set on the first error (or signal): every worker stops after its current batch.
    stop: AtomicBool,
    /// A throttle holds the run (replica lag, a health check): no worker starts a batch.
    held: AtomicBool,
    rows: AtomicU64,
    batches: AtomicU64,
    /// Batch numbers across the workers, for the test hooks ("the Nth batch of the run").
    numbered: AtomicU64,
    /// Keys of the span covered by committed batches, for the progress fraction.
    keys_done: AtomicU64,
    pub(crate) span: Option<(i64, i64)>,
    error: Mutex<Option<Error>>,
    /// An operator paused the run (`backfill pause`): no worker starts a batch.
    paused: AtomicBool,
    /// Workers to retire after their current batch (`backfill set --jobs` fewer).
    retire: std::sync::atomic::AtomicUsize,
    /// What `backfill set` changed, for the workers: bumped on each change.
    tuned: AtomicU64,
    tuning: Mutex<Tuned>,
}

/// The batch sizing and pause the workers use now: the flags', then as `backfill set` changed them.
struct Tuned {
    first: BatchSize,
    pause: Duration,
    last: Option<crate::engine::control::Retune>,
}

impl Shared {
    fn new(span: Option<(i64, i64)>, opts: &Options) -> Self {
        Shared {
            paused: AtomicBool::new(false),
            retire: std::sync::atomic::AtomicUsize::new(0),
            tuned: AtomicU64::new(0),
            tuning: Mutex::new(Tuned {
                first: BatchSize::new(opts.batch_size, opts.batch_target),
                pause: opts.pause,
                last: None,
            }),
            stop: AtomicBool::new(false),
            held: AtomicBool::new(false),
            rows: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            numbered: AtomicU64::new(0),
            keys_done: AtomicU64::new(0),
            span,
            error: Mutex::new(None),
        }
    }

    /// Counts the keys earlier runs did in `chunks` as done.
    fn count_resumed(&self, chunks: &[ledger::Chunk]) {
        let done_before: u64 = chunks
            .iter()
            .map(|c| match (c.is_done(), c.cursor) {
                (true, _) => self.width(c.lo, c.hi),
                (false, Some(cursor)) => self.width(c.lo, cursor),
                (false, None) => 0,
            })
            .sum();
        self.keys_done.store(done_before, Ordering::Relaxed);
    }

    /// Held by lagging replicas or paused by an operator: no batch starts.
    fn holds(&self) -> bool {
        self.held.load(Ordering::SeqCst) || self.paused.load(Ordering::SeqCst)
    }

    /// The coordinator's: new values from `backfill set`, for every worker's next batch.
    fn retune(&self, tuned: &crate::engine::control::Retune) {
        if let Ok(mut t) = self.tuning.lock() {
            t.first.retune(tuned);
            t.pause = tuned.pause().unwrap_or(t.pause);
            t.last = Some(*tuned);
        }
        self.tuned.fetch_add(1, Ordering::SeqCst);
    }

    /// A worker's: applies to its `size` a retune made since `seen`; returns the one it saw.
    fn retuned(&self, seen: u64, size: &mut BatchSize) -> u64 {
        let now = self.tuned.load(Ordering::SeqCst);
        if now != seen {
            if let Some(last) = self.tuning.lock().ok().and_then(|t| t.last) {
                size.retune(&last);
            }
        }
        now
    }

    /// A worker's: whether it is one of those to retire (it takes one retirement if so).
    fn retiring(&self) -> bool {
        let take = |n: usize| n.checked_sub(1);
        self.retire
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
            .is_ok()
    }

    /// Cancels up to `n` retirements not yet taken; returns how many.
    fn unretire(&self, n: usize) -> usize {
        let mut kept = 0;
        let _ = self
            .retire
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                kept = r.min(n);
                Some(r - kept)
            });
        kept
    }

    /// A new chunk's first batch size.
    fn first_size(&self) -> BatchSize {
        match self.tuning.lock() {
            Ok(t) => t.first.clone(),
            Err(_) => BatchSize::new(crate::engine::options::DEFAULT_BATCH_SIZE, None),
        }
    }

    fn pause(&self) -> Duration {
        self.tuning.lock().map_or(Duration::ZERO, |t| t.pause)
    }

    fn fail(&self, e: Error) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut first) = self.error.lock() {
            first.get_or_insert(e);
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Keys of `[lo, hi]` inside the span (what the progress fraction counts).
    fn width(&self, lo: i64, hi: i64) -> u64 {
        let Some((first, last)) = self.span else {
            return 0;
        };
        let (lo, hi) = (i128::from(lo.max(first)), i128::from(hi.min(last)));
        u64::try_from((hi - lo + 1).max(0)).unwrap_or(u64::MAX)
    }

    /// The progress bar's cursor: the span's first key plus the keys done.
    fn position(&self) -> Option<i64> {
        let (first, _) = self.span?;
        let done = i64::try_from(self.keys_done.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        Some(first.saturating_add(done).saturating_sub(1))
    }
}

/// The throttles of a parallel run: the coordinator reads the lag and the health for the whole run (one
/// look, not one per worker) and holds every worker before its next batch while it is too high.
struct ReplicaGate<'g> {
    pub(crate) gauge: &'g mut crate::engine::throttle::Gauge,
    last: Option<Instant>,
}

impl<'g> ReplicaGate<'g> {
    fn new(gauge: &'g mut crate::engine::throttle::Gauge) -> Self {
        ReplicaGate { gauge, last: None }
    }

    fn check(&mut self, session: &mut dyn Session, shared: &Shared, progress: &mut Progress) {
        if !self.gauge.active() || self.last.is_some_and(|t| t.elapsed() < LAG_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        match self.gauge.over(session) {
            Ok(Some(hold)) => {
                if !shared.held.swap(true, Ordering::SeqCst) {
                    tracing::info!("{}", hold.long());
                }
                progress.note(&hold.short());
            }
            Ok(None) => {
                if shared.held.swap(false, Ordering::SeqCst) {
                    tracing::info!("no throttle holds the run now: going on");
                }
            }
            Err(e) => shared.fail(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_chunks_split_the_key_range_evenly_and_end_open() {
        assert_eq!(
            first_chunks(i64::MIN, Some((1, 100)), 2),
            vec![(i64::MIN, 50), (51, i64::MAX)]
        );
        assert_eq!(
            first_chunks(60, Some((1, 100)), 2),
            vec![(60, 79), (80, i64::MAX)],
            "a resumed run splits the keys after its cursor"
        );
        assert_eq!(first_chunks(i64::MIN, None, 4), vec![(i64::MIN, i64::MAX)]);
        assert_eq!(
            first_chunks(i64::MIN, Some((5, 5)), 4),
            vec![(i64::MIN, i64::MAX)],
            "one key: one chunk; idle workers split it if it is worth it"
        );
        assert_eq!(first_chunks(200, Some((1, 100)), 2), vec![(200, i64::MAX)]);
        let many = first_chunks(i64::MIN, Some((i64::MIN + 1, i64::MAX - 1)), 3);
        assert_eq!(many.len(), 3, "the whole i64 range does not overflow");
        for w in many.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0, "contiguous");
        }
    }
}
