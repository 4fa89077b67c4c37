//! Runs data migrations: which ones, under the lock, with state transitions and the audit trail.
//! The batch transaction and loop are in `batch` (and `parallel` for `--jobs`); `revert` and
//! `planning` are the other commands that write; status, verify and repair are in `inspect`. No
//! dialect-specific SQL here: that lives in `db/` and in the migrations.

use crate::db::{DbError, Session};
use crate::engine::audit::{audit_error, new_run_and_id, record_failure, today};
use crate::engine::batch::{run_batches, Held, Job, Walk};
use crate::engine::known::{refuse_drift, refuse_unfit, refused};
use crate::engine::ledger::{self, Action, Entry, Event, Run, RunKey, RunState, Start, State};
use crate::engine::lock;
use crate::engine::parallel::{prepare, run_parallel, Crew, Engine};
use crate::engine::planning::gate_plan;
use crate::engine::progress::Progress;
use crate::engine::staging;
use crate::engine::text::count;
use crate::engine::throttle::Gauge;
use crate::error::{Error, Result};
use crate::kit::migration::{Context, Cursor, Shape};
use crate::registry::{Catalog, Registered};
use serde::Serialize;
use std::time::{Duration, Instant};

// The commands' public paths stay `runner::…` for the CLI, the testkit and the benchmark.
pub(crate) use crate::engine::known::find;
pub use crate::engine::options::Options;
pub(crate) use crate::engine::planfile::PlanReport;
pub(crate) use crate::engine::planning::plan;
pub use crate::engine::revert::revert;

/// What one apply or revert of one migration did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The migration's version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// Apply or revert.
    pub action: Action,
    /// The migration's state in the ledger afterwards.
    pub state: State,
    /// Rows this run wrote (or deleted, or restored).
    pub rows: u64,
    /// What was done to the rows: wrote, updated, deleted, restored.
    pub(crate) verb: String,
    /// Batches this run committed.
    pub batches: u64,
    /// The run's id in the audit table (`backfill_runs`).
    pub run_id: String,
    /// Wall time of the run.
    pub seconds: f64,
    /// e.g. "resumed after a runner died".
    pub note: Option<String>,
}

/// Which migrations `apply` runs.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    /// Every pending migration (deploys).
    Pending,
    /// Pending migrations up to and including this version.
    UpTo(i64),
    /// This one, whatever its state (an operator re-applying a reverted migration).
    One(i64),
}

/// Makes sure the ledger tables exist, creating them if they do not (safe when first runs race).
/// Call it only once the command is known to go ahead: a refused command creates nothing.
pub(crate) fn prepare_ledger(session: &mut dyn Session, _lock_timeout: Duration) -> Result<()> {
    if ledger::check_schema(session)? {
        return Ok(());
    }
    ledger::migrate(session)
}

/// Refuses unknown versions before anything touches the database.
fn validate(catalog: &Catalog, selection: Selection) -> Result<()> {
    match selection {
        Selection::One(v) | Selection::UpTo(v) => find(catalog, v).map(|_| ()),
        Selection::Pending => Ok(()),
    }
}

/// Whether a deploy's `apply` should run this migration. Reverts in progress and reverted migrations
/// belong to an operator, so a deploy leaves them alone.
fn is_pending(entry: Option<&Entry>) -> bool {
    ledger::transition(entry.map(Entry::status), Event::Deploy).is_ok()
}

pub(crate) fn selected(
    catalog: &Catalog,
    entries: &[Entry],
    selection: Selection,
) -> Result<Vec<&'static Registered>> {
    let entry = |v: i64| entries.iter().find(|e| e.version == v);
    Ok(match selection {
        // Named: run it whatever its state. On an applied migration this is a top-up: every migration
        // is idempotent, so it writes only what became eligible since (or what a scenario revert took).
        Selection::One(v) => vec![find(catalog, v)?],
        Selection::UpTo(v) => {
            find(catalog, v)?;
            catalog
                .all()
                .iter()
                .filter(|m| m.version <= v && is_pending(entry(m.version)))
                .collect()
        }
        Selection::Pending => catalog
            .all()
            .iter()
            .filter(|m| is_pending(entry(m.version)))
            .collect(),
    })
}

/// `apply`: runs the selected migrations in version order under the runner lock. Returns nothing when
/// there was nothing to do (also when another runner did it while we waited).
pub fn apply(
    session: &mut dyn Session,
    selection: Selection,
    opts: &Options,
) -> Result<Vec<Outcome>> {
    validate(&opts.catalog, selection)?;
    refuse_unfit(session, opts.catalog.all())?;
    if let Some(hazard) = session.replication_hazard()? {
        return Err(Error::Usage(hazard));
    }
    // Replicas are checked before the ledger is created: a wrong --replica-url changes nothing.
    let gauge = Gauge::open(opts, session)?;
    if !ledger::check_schema(session)? {
        // First run here: whatever is selected will run, so check its tables before creating the
        // ledger; a run that cannot start leaves the database as it was.
        ledger::check_place(session, true)?;
        let entries = Vec::new();
        for reg in selected(&opts.catalog, &entries, selection)? {
            preflight(session, reg)?;
        }
    }
    prepare_ledger(session, opts.lock_timeout)?;
    let entries = ledger::entries(session)?;
    refuse_drift(&opts.catalog, &entries)?;
    if selected(&opts.catalog, &entries, selection)?.is_empty() {
        return Ok(Vec::new());
    }
    let lease = lock::acquire(session, opts.lock_timeout)?;
    let mut held = Held::new(lease, gauge, opts);
    let result = apply_locked(session, selection, opts, &mut held);
    lock::release(session, held.lease);
    result.map_err(|e| held.tally.report(e))
}

fn apply_locked(
    session: &mut dyn Session,
    selection: Selection,
    opts: &Options,
    held: &mut Held,
) -> Result<Vec<Outcome>> {
    // Look again: the runner we waited for may have done it all.
    let entries = ledger::entries(session)?;
    refuse_drift(&opts.catalog, &entries)?;
    let todo = selected(&opts.catalog, &entries, selection)?;
    let mut plans = vec![None; todo.len()];
    if let Some(file) = &opts.expect_plan {
        // Every migration this run would write is checked before the first write: a refusal
        // leaves the database as it was.
        for (reg, plan) in todo.iter().zip(&mut plans) {
            *plan = gate_plan(session, reg, file, opts)?;
        }
    }
    let mut outcomes = Vec::new();
    for (reg, plan) in todo.into_iter().zip(plans) {
        if let Some(sig) = crate::signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        outcomes.push(apply_one(session, reg, plan, opts, held)?);
    }
    Ok(outcomes)
}

/// Applies `reg`; `plan`: the plan `--expect-plan` checked, for its audit row.
fn apply_one(
    session: &mut dyn Session,
    reg: &Registered,
    plan: Option<String>,
    opts: &Options,
    held: &mut Held,
) -> Result<Outcome> {
    let entry = ledger::entry(session, reg.version)?;
    let resume = entry.as_ref().filter(|e| is_pending(Some(e)));
    // A resumed migration keeps the date it started with, so all its rows share one effective date.
    let run_date = resume
        .and_then(|e| e.started_at)
        .map_or_else(today, |t| t.date());
    let status = entry.as_ref().map(Entry::status);
    let state = ledger::transition(status, Event::Apply).map_err(|r| refused(reg, r))?;
    let (mut run, id) = new_run_and_id(Action::Apply, Some(reg), opts);
    run.plan_summary = plan;
    let ctx = Context {
        version: reg.version,
        run_id: id,
        run_date,
        group: None,
        ledger_rows: 0,
        stage: None,
    };
    let one = OneRun {
        reg,
        walk: Walk::Apply,
        run,
        ctx,
        state,
        entry: entry.as_ref(),
        fresh: resume.is_none(),
        cursor: resume.and_then(|e| e.apply_cursor.clone()),
    };
    run_one(session, one, opts, held)
}

fn cannot_start(reg: &Registered, e: DbError) -> Error {
    let message = format!("V{}__{} cannot start: {e}", reg.version, reg.name);
    if e.is_config() {
        Error::Usage(message)
    } else {
        Error::Runtime(message)
    }
}

/// Touches the migration's tables and reads its key's span, so a missing or locked table fails the
/// run before anything is written.
fn preflight(session: &mut dyn Session, reg: &Registered) -> Result<Option<(i64, i64)>> {
    reg.migration
        .preflight(session)
        .and_then(|_| crate::kit::bounds::span(session, reg.migration.key()))
        .map_err(|e| cannot_start(reg, e))
}

/// One apply or revert about to run.
pub(crate) struct OneRun<'a> {
    pub reg: &'a Registered,
    pub walk: Walk,
    pub run: Run,
    /// Built once per run, with the run's own id.
    pub ctx: Context,
    /// What [`ledger::transition`] made of the row for this run: `running` or `reverting`.
    pub state: State,
    /// The ledger row as read before deciding (the start is a compare-and-set on it).
    pub entry: Option<&'a Entry>,
    /// Start over (reset this direction's cursor) rather than resume from `cursor`.
    pub fresh: bool,
    pub cursor: Option<Cursor>,
}

/// The common part of apply and revert: audit row, ledger start, batches, final state.
pub(crate) fn run_one(
    session: &mut dyn Session,
    one: OneRun,
    opts: &Options,
    held: &mut Held,
) -> Result<Outcome> {
    let started = Instant::now();
    let reg = one.reg;
    let mut one = one;
    // The tables are touched and the key range read before anything is written: it feeds the ETA,
    // and it fails here, with the ledger untouched, when the app's tables are missing.
    let own = preflight(session, reg)?;
    let span = one
        .walk
        .span(session, reg, &one.ctx, own)
        .map_err(|e| cannot_start(reg, e))?;
    one.ctx.stage = staging::build(session, reg, &one.ctx, one.walk);
    // A stage that took longer than the lease's lifetime may have let another runner in: then
    // this one stops here, before its first batch, rather than at that batch's fence.
    let result = crate::engine::lock::renew(session, &mut held.lease)
        .and_then(|_| run_staged(session, &one, opts, held, (started, span)));
    if result.is_err() {
        staging::discard(session, one.ctx.stage.as_deref());
    }
    result
}

/// `run_one` once its tables are checked and its stage built.
fn run_staged(
    session: &mut dyn Session,
    one: &OneRun,
    opts: &Options,
    held: &mut Held,
    (started, span): (Instant, Option<(i64, i64)>),
) -> Result<Outcome> {
    let reg = one.reg;
    let job = Job::new(reg, one.walk, &one.ctx, &one.run.run_id)?;
    let key = job.ledger_key();
    held.gauge
        .watch_tables(crate::engine::health::tables_of(reg));
    let note = open_run(session, one, key, opts)?;
    let workers = workers(session, opts);
    let final_state = start(session, one, key, opts)?;
    let label = format!("{} V{}__{}", key.action.as_str(), reg.version, reg.name);
    let mut progress = Progress::new(label, opts.quiet, span)
        .planned(planned_rows(opts, reg, key.action))
        .watched(opts);
    opts.events
        .begin(reg.version, reg.name, key.action.as_str(), key.run);
    opts.metrics.begin(reg.version, key.action.as_str());
    let engine = match prepare(
        session,
        &job,
        one.fresh,
        (one.cursor.as_ref(), span),
        workers,
    ) {
        Ok(engine) => engine,
        Err(e) => return Err(record_failure(session, opts, key, e)),
    };
    let crew = if engine == Engine::Parallel {
        workers
    } else {
        1
    };
    if let Err(e) = held.steer.begin(session, &job, crew) {
        return Err(record_failure(session, opts, key, e));
    }
    let result = match (&opts.connect, engine) {
        (_, Engine::Single) => {
            run_batches(session, &job, one.cursor.clone(), opts, held, &mut progress)
        }
        (Some(connect), Engine::Parallel) => {
            let crew = Crew {
                jobs: workers,
                connect,
            };
            run_parallel(session, &job, crew, span, opts, held, &mut progress)
        }
        (None, Engine::Parallel) => Err(Error::Usage(format!(
            "V{}__{} was left mid-way by a parallel run (--jobs); resume it with the backfill command, which opens a connection per job",
            reg.version, reg.name
        ))),
    };
    held.tally.push(progress.finish());
    // Before the run's end is recorded: a runner killed from here on leaves the migration in
    // progress, and the run that completes it drops what is left. A run that failed drops its
    // own stage in `run_one`.
    if result.is_ok() {
        staging::completed(session, reg.version);
    }
    match result {
        Ok((rows, batches)) => {
            let walked = Walked {
                rows,
                batches,
                jobs: (engine == Engine::Parallel).then_some(workers),
                state: final_state,
            };
            succeed(session, one, walked, note, started).inspect(|o| {
                opts.events.finished(o);
                opts.metrics.state("finished");
            })
        }
        Err(err) => Err(record_failure(session, opts, key, err)),
    }
}

/// Writes the run's audit row and ends the runs that died: we hold the lock, so any apply or revert
/// still marked running is a process that died. Returns the outcome's note on what this run resumes.
fn open_run(
    session: &mut dyn Session,
    one: &OneRun,
    key: RunKey,
    opts: &Options,
) -> Result<Option<String>> {
    crate::engine::retry::conflicts(|| ledger::insert_run(session, &one.run))
        .map_err(audit_error)?;
    let dead = match crate::engine::retry::conflicts(|| {
        ledger::abandon_dead_runs(session, key.version, key.run)
    }) {
        Ok(n) => n,
        Err(e) => {
            let err = audit_error(e);
            return Err(record_failure(session, opts, key, err));
        }
    };
    Ok(match one.entry {
        Some(e) if e.state.in_progress() => {
            tracing::info!(
                "V{} was left {} by a runner that died; resuming",
                key.version,
                e.state
            );
            Some(format!("resumed after a runner died while {}", e.state))
        }
        Some(e) if !one.fresh => Some(format!("resumed from the checkpoint of a {} run", e.state)),
        _ if dead > 0 => Some("a previous runner died before its first batch".into()),
        _ => None,
    })
}

/// Marks the migration started in the ledger (a failure is recorded as the run's end); returns the
/// state it ends in when its batches succeed.
fn start(session: &mut dyn Session, one: &OneRun, key: RunKey, opts: &Options) -> Result<State> {
    let start = Start {
        version: one.reg.version,
        name: one.reg.name,
        checksum: one.reg.checksum,
        action: key.action,
        state: one.state,
        run_id: key.run,
        fresh: one.fresh,
        scenario: one.ctx.group,
        seen: one.entry,
    };
    let succeed = match one.ctx.group {
        Some(_) => Event::SucceedGroup,
        None => Event::Succeed,
    };
    let working = ledger::Status {
        state: one.state,
        last: key.action,
    };
    // Asked before the start is written, so a refused end never leaves a started row.
    let success = ledger::transition(Some(working), succeed).map_err(|r| refused(one.reg, r))?;
    if let Err(e) = ledger::start(session, &start) {
        return Err(record_failure(session, opts, key, e));
    }
    Ok(success)
}

/// What a run's batches did, once they all committed.
struct Walked {
    rows: u64,
    batches: u64,
    /// The workers of a parallel run.
    jobs: Option<usize>,
    /// The migration's state now.
    state: State,
}

/// A run whose batches all committed: its end in the ledger, and its outcome.
fn succeed(
    session: &mut dyn Session,
    one: &OneRun,
    walked: Walked,
    note: Option<String>,
    started: Instant,
) -> Result<Outcome> {
    let reg = one.reg;
    let outcome = outcome_text(one, &walked);
    let end = ledger::Ending {
        state: Some(walked.state),
        run_state: RunState::Succeeded,
        outcome: Some(&outcome),
        error: None,
    };
    let done = ledger::conclude(session, reg.version, &one.run.run_id, &end);
    done.map_err(|e| {
        Error::Runtime(format!(
            "the work is done but recording it failed: {e}; rerun to record it"
        ))
    })?;
    Ok(Outcome {
        version: reg.version,
        name: reg.name.into(),
        action: one.run.action,
        state: walked.state,
        rows: walked.rows,
        verb: past_tense(one.walk, reg).into(),
        batches: walked.batches,
        run_id: one.run.run_id.clone(),
        seconds: started.elapsed().as_secs_f64(),
        note,
    })
}

/// `wrote 1,000 rows of scenario 7 in 3 batches, 4 jobs`, for the audit row and the deploy log.
fn outcome_text(one: &OneRun, walked: &Walked) -> String {
    let jobs = walked
        .jobs
        .map(|n| format!(", {}", count(n as u64, "job")))
        .unwrap_or_default();
    // A one-group revert says which group, in the migration's word.
    let of_group = match (one.ctx.group, one.reg.migration.grouping()) {
        (Some(g), Some(grouping)) => format!(" of {} {g}", grouping.label),
        (Some(g), None) => format!(" of group {g}"),
        _ => String::new(),
    };
    format!(
        "{} {}{of_group} in {}{jobs}",
        past_tense(one.walk, one.reg),
        count(walked.rows, "row"),
        count(walked.batches, "batch")
    )
}

/// How many workers a run gets: `--jobs`, except on SQLite (one writer at a time: more connections
/// would only queue for the file's write lock) and for callers that give no way to open connections.
fn workers(session: &mut dyn Session, opts: &Options) -> usize {
    if opts.jobs <= 1 {
        return 1;
    }
    if session.dialect() == crate::db::Dialect::Sqlite {
        tracing::info!(
            "SQLite has one writer at a time: --jobs {} runs as 1",
            opts.jobs
        );
        return 1;
    }
    if opts.connect.is_none() {
        tracing::warn!(
            "--jobs {} needs a connection per job, and this caller gives none: running as 1",
            opts.jobs
        );
        return 1;
    }
    within_connections(session, opts.jobs)
}

/// `jobs` workers, or as many as the server has connections left for (each worker opens one; the
/// coordinator's is already open), with a warning.
fn within_connections(session: &mut dyn Session, jobs: usize) -> usize {
    let room = match session.connection_room() {
        Ok(Some(room)) => room,
        Ok(None) => return jobs,
        Err(e) => {
            tracing::debug!("could not read the server's connection limit: {e}");
            return jobs;
        }
    };
    let free = usize::try_from(room.free).unwrap_or(usize::MAX);
    if free >= jobs {
        return jobs;
    }
    let fewer = free.max(1);
    tracing::warn!(
        "--jobs {jobs} needs {jobs} more connections and the server has room for {free} ({}): running {}",
        room.limit,
        if fewer == 1 { "as 1 job on this connection".to_string() } else { format!("--jobs {fewer}") }
    );
    fewer
}

fn past_tense(walk: Walk, reg: &Registered) -> &'static str {
    match (walk, reg.migration.shape()) {
        (Walk::Apply, Shape::Update) => "updated",
        (Walk::Apply, _) => "wrote",
        (Walk::DeleteMarked, _) => "deleted",
        (Walk::Restore { .. }, _) => "restored",
    }
}

/// The reviewed plan's row count for an apply run with `--expect-plan` (the ETA's measure).
fn planned_rows(opts: &Options, reg: &Registered, action: Action) -> Option<u64> {
    let file = opts
        .expect_plan
        .as_ref()
        .filter(|_| action == Action::Apply)?;
    let reviewed = file.migrations.iter().find(|m| m.version == reg.version)?;
    Some(reviewed.total)
}
