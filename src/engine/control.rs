//! Between batches, ask the ledger what to do: go on, pause, stop, or go on retuned. An operator
//! steers a run from anywhere by writing its control row (`backfill pause|resume|cancel|set`, see
//! `steer`); the runner reads that row at most once a second (one primary-key read) and reports its
//! own progress there every few seconds, for `status`. The run's window and budget (`budget`) are
//! asked here too, so the batch loops have one question to ask.

use crate::db::Session;
use crate::engine::batch::{Held, Job};
use crate::engine::budget::{Budget, Verdict};
use crate::engine::events::{Event, Events};
use crate::engine::ledger::{self, Live, Requested, Tuning};
use crate::engine::lock;
use crate::engine::progress::Progress;
use crate::engine::progress::Snapshot;
use crate::error::{Error, Result};
use crate::signals;
use std::time::{Duration, Instant};

/// How often the runner reads its control row: a command takes effect within a batch or this long.
const READ_EVERY: Duration = Duration::from_secs(1);

/// How often the runner writes its progress into the ledger.
const REPORT_EVERY: Duration = Duration::from_secs(3);

/// How long a held run sleeps between looks (a look reads the ledger at most every READ_EVERY).
const HOLD_POLL: Duration = Duration::from_millis(200);

/// New values from `backfill set`: all of them as they stand now, and those that changed since
/// the run last looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retune {
    pub now: Tuning,
    pub changed: Tuning,
}

impl Retune {
    pub(crate) fn pause(&self) -> Option<Duration> {
        self.changed.pause_ms.map(Duration::from_millis)
    }

    pub(crate) fn max_replica_lag(&self) -> Option<Duration> {
        self.changed.max_replica_lag.map(Duration::from_secs)
    }
}

/// What the batch loop does next.
#[derive(Debug)]
pub(crate) enum Look {
    /// Go on; with new values when `backfill set` changed them since the last look.
    Go(Option<Retune>),
    /// Start no batch; look again (the caller keeps its lease meanwhile). The reason is for the
    /// progress line and `status`.
    Hold(Hold),
    /// Stop at this checkpoint with this error (exit 6).
    Stop(Error),
}

/// Why a run holds: an operator paused it, or it waits for its window to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hold {
    Paused,
    Throttled(String),
}

/// The steering of one command's runs: the run under way, and the budget they share.
pub(crate) struct Steering {
    run: Option<Steered>,
    budget: Budget,
    /// Where `paused` and `resumed` go (`--notify-url`, `--notify-cmd`, `--metrics-addr`).
    events: Events,
    metrics: crate::engine::metrics::Metrics,
    /// Rows the command's finished runs wrote (toward `--limit`).
    written_before: u64,
}

/// The run under way.
struct Steered {
    version: i64,
    label: String,
    run_id: String,
    action: ledger::Action,
    read_at: Option<Instant>,
    /// The tuning as last read, to tell a new `set` from one already seen.
    seen: Tuning,
    /// A retune read while the run held (paused), for its next batch.
    pending: Option<Retune>,
    live: Live,
    reported_at: Option<Instant>,
    /// Set by a throttle (the watch's health checks) while it holds the run.
    throttle: Option<String>,
}

impl Steering {
    pub(crate) fn new(budget: Budget, opts: &crate::engine::options::Options) -> Steering {
        Steering {
            run: None,
            budget,
            events: opts.events.clone(),
            metrics: opts.metrics.clone(),
            written_before: 0,
        }
    }

    /// A run starts: its control row, fresh. A ledger that cannot take it (a read-only look has
    /// no business here) fails the run before any batch.
    pub(crate) fn begin(
        &mut self,
        session: &mut dyn Session,
        job: &Job,
        workers: usize,
    ) -> Result<()> {
        if let Some(done) = self.run.take() {
            self.written_before += done.live.rows;
        }
        let live = Live {
            state: "running".into(),
            workers: (workers > 1).then_some(workers as u64),
            ..Live::default()
        };
        let (version, run_id) = (job.reg.version, job.run_id);
        crate::engine::retry::conflicts(|| {
            ledger::control::open(session, version, run_id, job.action, &live)
        })
        .map_err(|e| Error::from_db(&e, format!("recording the run's control row failed: {e}")))?;
        self.run = Some(Steered {
            version,
            label: format!("V{}__{}", version, job.reg.name),
            run_id: run_id.to_string(),
            action: job.action,
            read_at: None,
            seen: Tuning::default(),
            pending: None,
            live,
            reported_at: Some(Instant::now()),
            throttle: None,
        });
        Ok(())
    }

    /// Between batches: what the operator asked, and what the window and budget allow. Reads the
    /// ledger at most once a second; in between, the last answer holds (a pause stays a pause).
    pub(crate) fn look(&mut self, session: &mut dyn Session, rows: u64) -> Look {
        let written = self.written_before + rows;
        let Some(run) = self.run.as_mut() else {
            return Look::Go(None);
        };
        let mut paused = run.live.state == "paused";
        if run.read_at.is_none_or(|t| t.elapsed() >= READ_EVERY) {
            run.read_at = Some(Instant::now());
            match ledger::control::asked(session, run.version, &run.run_id) {
                Ok(Some(ledger::control::Asked {
                    requested,
                    tuning,
                    by,
                })) => {
                    if requested == Some(Requested::Cancel) {
                        return Look::Stop(cancelled(run, by.as_deref()));
                    }
                    paused = requested == Some(Requested::Pause);
                    if tuning != run.seen {
                        let changed = changes(&run.seen, &tuning);
                        run.pending = Some(Retune {
                            now: tuning,
                            changed: changed
                                .over(&run.pending.map(|p| p.changed).unwrap_or_default()),
                        });
                        run.seen = tuning;
                    }
                }
                Ok(None) => paused = false,
                // A look that fails (a lost connection) fails the next batch anyway; steering is
                // asked again then.
                Err(e) => tracing::debug!("reading the control row failed: {e}"),
            }
        }
        if paused {
            return Look::Hold(Hold::Paused);
        }
        match self.budget.verdict(written, chrono::Utc::now()) {
            Verdict::Go => Look::Go(run.pending.take()),
            Verdict::Wait(reason) => Look::Hold(Hold::Throttled(reason)),
            Verdict::Halt(reason) => Look::Stop(Error::OnRequest {
                cancelled: false,
                message: format!(
                    "{} stopped on request at a checkpoint: {reason}; its committed batches stay, rerun `backfill {} {}` to go on",
                    run.label, run.action, run.version
                ),
            }),
        }
    }

    /// The state `status` shows: `paused`, `throttled` (with its reason) or `running`, written at
    /// once when it changes. `throttle`: a health check's reason, when one holds the run.
    pub(crate) fn show(&mut self, hold: Option<&Hold>) -> bool {
        let Some(run) = self.run.as_mut() else {
            return false;
        };
        let (state, reason) = match (hold, &run.throttle) {
            (Some(Hold::Paused), _) => ("paused", None),
            (Some(Hold::Throttled(why)), _) => ("throttled", Some(why.clone())),
            (None, Some(why)) => ("throttled", Some(why.clone())),
            (None, None) => ("running", None),
        };
        if run.live.state != state || run.live.throttle_reason != reason {
            match (run.live.state.as_str(), state) {
                (_, "paused") => self.events.emit(Event::Paused),
                ("paused", _) => self.events.emit(Event::Resumed),
                _ => {}
            }
            self.metrics.state(state);
            if run.live.state != state {
                tracing::info!(
                    "{} is {state}{}",
                    run.label,
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
            run.live.state = state.into();
            run.live.throttle_reason = reason;
            run.reported_at = None;
            return true;
        }
        false
    }

    /// The workers of a parallel run now (`backfill set --jobs`), for `status`.
    pub(crate) fn workers(&mut self, jobs: usize) {
        if let Some(run) = self.run.as_mut() {
            run.live.workers = Some(jobs as u64);
            run.reported_at = None;
        }
    }

    /// Rows the command may still write under `--limit`.
    pub(crate) fn room(&self, rows: u64) -> Option<u64> {
        self.budget.room(self.written_before + rows)
    }

    /// A health throttle holds the run (`Some(reason)`) or let it go (`None`): shown in `status`.
    pub(crate) fn throttled(&mut self, reason: Option<String>) {
        if let Some(run) = self.run.as_mut() {
            run.throttle = reason;
        }
    }

    /// Writes the run's progress into the ledger when a few seconds have passed (or its state
    /// changed); a parallel run's (`chunks`) with its chunks done and in all.
    pub(crate) fn report(&mut self, session: &mut dyn Session, now: &Snapshot, chunks: bool) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        run.live.rows = now.rows;
        run.live.batches = now.batches;
        if run.reported_at.is_some_and(|t| t.elapsed() < REPORT_EVERY) {
            return;
        }
        run.reported_at = Some(Instant::now());
        run.live.rows_per_second = Some(now.rows_per_second.round() as u64);
        run.live.permille = now.fraction.map(|f| (f * 1000.0).round() as u64);
        run.live.rows_total = now.planned;
        // A held run has no pace: no ETA until it goes on.
        let going = run.live.state == "running";
        run.live.eta_seconds = now.eta.filter(|_| going).map(|d| d.as_secs());
        if chunks {
            if let Ok(all) = ledger::chunks(session, run.version, run.action) {
                let done = all.iter().filter(|c| c.is_done()).count() as u64;
                (run.live.chunks_done, run.live.chunks_total) =
                    (Some(done), Some(all.len() as u64));
            }
        }
        if let Err(e) = ledger::control::report(session, run.version, &run.run_id, &run.live) {
            tracing::debug!("recording progress in the ledger failed: {e}");
        }
    }
}

/// The values of `new` that differ from `old`.
fn changes(old: &Tuning, new: &Tuning) -> Tuning {
    let pick = |a: Option<u64>, b: Option<u64>| b.filter(|_| a != b);
    Tuning {
        batch_size: pick(old.batch_size, new.batch_size),
        batch_ms: pick(old.batch_ms, new.batch_ms),
        pause_ms: pick(old.pause_ms, new.pause_ms),
        max_replica_lag: pick(old.max_replica_lag, new.max_replica_lag),
        jobs: pick(old.jobs, new.jobs),
    }
}

/// The single loop's question before each batch: blocks while the run is paused or outside its
/// window (holding no transaction, renewing the lease, stopping on a signal), then returns the new
/// values a `set` gave, or the stop (exit 6).
pub(crate) fn between(
    session: &mut dyn Session,
    held: &mut Held,
    progress: &mut Progress,
    rows: u64,
) -> Result<Option<Retune>> {
    loop {
        let look = held.steer.look(session, rows);
        let hold = match look {
            Look::Go(tuned) => {
                held.steer.show(None);
                held.steer.report(session, &progress.snapshot(), false);
                return Ok(tuned);
            }
            Look::Stop(e) => return Err(e),
            Look::Hold(hold) => hold,
        };
        if held.steer.show(Some(&hold)) {
            progress.note(&hold.to_string());
        }
        held.steer.report(session, &progress.snapshot(), false);
        if let Some(sig) = signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        lock::renew(session, &mut held.lease)?;
        signals::pause(HOLD_POLL);
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::Paused => f.write_str("paused, holding its lock; `backfill resume` goes on"),
            Hold::Throttled(why) => write!(f, "waiting: {why}"),
        }
    }
}

fn cancelled(run: &Steered, by: Option<&str>) -> Error {
    let v = run.version;
    let next = match run.action {
        ledger::Action::Revert => format!(
            "`backfill revert {v}` resumes the revert, `backfill apply {v}` puts back what it undid"
        ),
        _ => format!("`backfill apply {v}` resumes it, `backfill revert {v}` undoes it"),
    };
    Error::OnRequest {
        cancelled: true,
        message: format!(
            "{} cancelled by {} and stopped at a checkpoint; its committed batches stay: {next}",
            run.label,
            by.unwrap_or("an operator"),
        ),
    }
}
