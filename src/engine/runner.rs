//! Runs data migrations: which ones, under the lock, with state transitions and the audit trail.
//! The batch loop itself is in `batch`; status, verify and repair in `inspect`. No dialect-specific
//! SQL here: that lives in `db/` and in the migrations.

use crate::db::{DbError, Session};
use crate::engine::batch::{run_batches, Held, Job, Walk};
use crate::engine::ledger::{
    self, Action, Entry, Event, Refusal, Run, RunKey, RunState, Start, State,
};
use crate::engine::lock;
pub use crate::engine::options::{Connector, Options, Replica};
use crate::engine::parallel::{prepare, run_parallel, Crew, Engine};
pub use crate::engine::planfile::PlanReport;
use crate::engine::progress::{Progress, Tally};
use crate::engine::throttle::Gauge;
use crate::error::{Error, Result};
use crate::kit::migration::{Context, Cursor, Plan, Shape};
use crate::registry::{self, Registered};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What one apply or revert of one migration did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub version: i64,
    pub name: String,
    pub action: Action,
    pub state: State,
    pub rows: u64,
    /// What was done to the rows: wrote, updated, deleted, restored.
    pub verb: String,
    pub batches: u64,
    pub run_id: String,
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

pub fn find(version: i64) -> Result<&'static Registered> {
    registry::find(version).ok_or_else(|| {
        Error::Usage(format!(
            "unknown version {version}; `backfill status` lists the versions this binary knows"
        ))
    })
}

/// Makes sure the ledger tables exist, creating them if they do not (safe when first runs race).
/// Call it only once the command is known to go ahead: a refused command creates nothing.
pub fn prepare_ledger(session: &mut dyn Session, _lock_timeout: Duration) -> Result<()> {
    if ledger::check_schema(session)? {
        return Ok(());
    }
    ledger::migrate(session)
}

/// Refuses unknown versions before anything touches the database.
fn validate(selection: Selection) -> Result<()> {
    match selection {
        Selection::One(v) | Selection::UpTo(v) => find(v).map(|_| ()),
        Selection::Pending => Ok(()),
    }
}

pub(crate) fn drifted(entry: &Entry, reg: &Registered) -> bool {
    entry.state != State::Reverted && entry.checksum != reg.checksum
}

pub(crate) fn drift_error(entry: &Entry, reg: &Registered) -> Error {
    Error::Refused(format!(
        "V{}__{} changed since it ran (ledger checksum {}…, code {}…); run `backfill repair {} --accept-checksum` if this edit is intended",
        reg.version,
        reg.name,
        &entry.checksum.get(..12).unwrap_or(&entry.checksum),
        &reg.checksum[..12],
        reg.version
    ))
}

fn refuse_drift(entries: &[Entry]) -> Result<()> {
    for entry in entries {
        if let Some(reg) = registry::find(entry.version) {
            if drifted(entry, reg) {
                return Err(drift_error(entry, reg));
            }
        }
    }
    Ok(())
}

/// Whether a deploy's `apply` should run this migration. Reverts in progress and reverted migrations
/// belong to an operator, so a deploy leaves them alone.
fn is_pending(entry: Option<&Entry>) -> bool {
    ledger::transition(entry.map(Entry::status), Event::Deploy).is_ok()
}

fn selected(entries: &[Entry], selection: Selection) -> Result<Vec<&'static Registered>> {
    let entry = |v: i64| entries.iter().find(|e| e.version == v);
    Ok(match selection {
        // Named: run it whatever its state. On an applied migration this is a top-up: every migration
        // is idempotent, so it writes only what became eligible since (or what a scenario revert took).
        Selection::One(v) => vec![find(v)?],
        Selection::UpTo(v) => {
            find(v)?;
            registry::all()
                .iter()
                .filter(|m| m.version <= v && is_pending(entry(m.version)))
                .collect()
        }
        Selection::Pending => registry::all()
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
    validate(selection)?;
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
        for reg in selected(&entries, selection)? {
            preflight(session, reg, reg.migration.key())?;
        }
    }
    prepare_ledger(session, opts.lock_timeout)?;
    let entries = ledger::entries(session)?;
    refuse_drift(&entries)?;
    if selected(&entries, selection)?.is_empty() {
        return Ok(Vec::new());
    }
    let lease = lock::acquire(session, opts.lock_timeout)?;
    let mut held = Held {
        lease,
        gauge,
        tally: Tally::default(),
    };
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
    refuse_drift(&entries)?;
    let todo = selected(&entries, selection)?;
    if let Some(file) = &opts.expect_plan {
        // Every migration this run would write is checked before the first write: a refusal
        // leaves the database as it was.
        for reg in &todo {
            gate_plan(session, reg, file, opts)?;
        }
    }
    let mut outcomes = Vec::new();
    for reg in todo {
        if let Some(sig) = crate::signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        outcomes.push(apply_one(session, reg, opts, held)?);
    }
    Ok(outcomes)
}

pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

pub(crate) fn new_run(action: Action, reg: Option<&Registered>, opts: &Options) -> Run {
    Run {
        run_id: uuid::Uuid::now_v7().to_string(),
        version: reg.map(|r| r.version),
        action,
        state: RunState::Running,
        started_at: Some(ledger::now()),
        finished_at: None,
        operator: opts.operator.clone(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        checksum: reg.map(|r| r.checksum.to_string()),
        arguments: opts.arguments.clone(),
        plan_summary: None,
        row_count: 0,
        outcome: None,
        error: None,
    }
}

pub(crate) fn audit_error(e: DbError) -> Error {
    let message = format!("writing the audit row failed: {e}");
    if e.is_config() {
        Error::Usage(message) // e.g. a read-only user: nothing was written
    } else {
        Error::Runtime(message)
    }
}

fn apply_one(
    session: &mut dyn Session,
    reg: &Registered,
    opts: &Options,
    held: &mut Held,
) -> Result<Outcome> {
    let entry = ledger::entry(session, reg.version)?;
    let resume = entry.as_ref().filter(|e| is_pending(Some(e)));
    let cursor = resume.and_then(|e| e.apply_cursor.clone());
    // A resumed migration keeps the date it started with, so all its rows share one effective date.
    let run_date = resume
        .and_then(|e| e.started_at)
        .map_or_else(today, |t| t.date());
    let ctx = Context {
        version: reg.version,
        run_id: uuid::Uuid::nil(),
        run_date,
        group: None,
        ledger_rows: 0,
    };
    let status = entry.as_ref().map(Entry::status);
    let state = ledger::transition(status, Event::Apply).map_err(|r| refused(reg, r))?;
    let one = OneRun {
        reg,
        walk: Walk::Apply,
        run: new_run(Action::Apply, Some(reg), opts),
        ctx,
        state,
        entry: entry.as_ref(),
        fresh: resume.is_none(),
        cursor,
    };
    run_one(session, one, opts, held)
}

/// `--expect-plan`: the plan as of now must equal the reviewed one. Planning costs a full read of the
/// data, so apply plans only when told to compare with a review; `log` pairs an apply with the plan
/// run before it otherwise.
fn gate_plan(
    session: &mut dyn Session,
    reg: &Registered,
    file: &crate::engine::planfile::PlanFile,
    opts: &Options,
) -> Result<()> {
    let plan = compute_plan(session, reg, opts)?;
    let now = crate::engine::planfile::reviewed(reg.version, reg.name, reg.checksum, &plan);
    match crate::engine::planfile::gate(file, &now, &plan.group_label) {
        Ok(()) => Ok(()),
        Err(refusal) => {
            let mut run = new_run(Action::Apply, Some(reg), opts);
            run.plan_summary = serde_json::to_string(&plan).ok();
            Err(refuse(session, run, refusal))
        }
    }
}

/// Records a refused run in the audit table and returns the refusal.
fn refuse(session: &mut dyn Session, mut run: Run, refusal: Error) -> Error {
    run.state = RunState::Refused;
    run.finished_at = Some(ledger::now());
    run.error = Some(refusal.to_string());
    match ledger::insert_run(session, &run) {
        Ok(()) => refusal,
        Err(e) => audit_error(e),
    }
}

/// The plan as of now, in a read-only transaction.
fn compute_plan(session: &mut dyn Session, reg: &Registered, opts: &Options) -> Result<Plan> {
    let ctx = Context {
        version: reg.version,
        run_id: uuid::Uuid::nil(),
        run_date: today(),
        group: None,
        ledger_rows: 0,
    };
    let plan = session.snapshot(|s| reg.migration.plan(s, &ctx, opts.samples));
    // A missing privilege is the operator's to grant (exit 2), as for every other command.
    plan.map_err(|e| {
        let message = format!("planning V{}__{} failed: {e}", reg.version, reg.name);
        Error::from_db(&e, message)
    })
}

fn cannot_start(reg: &Registered, e: DbError) -> Error {
    let message = format!("V{}__{} cannot start: {e}", reg.version, reg.name);
    if e.is_config() {
        Error::Usage(message)
    } else {
        Error::Runtime(message)
    }
}

/// Touches the migration's tables and reads its key, so a missing or locked table fails the run
/// before anything is written. Returns the key span of `walk` (the key a run's batches range over;
/// read once per run, for the ETA and the chunks), read again only when it is another key.
fn preflight(
    session: &mut dyn Session,
    reg: &Registered,
    walk: crate::kit::migration::Key,
) -> Result<Option<(i64, i64)>> {
    let own = reg.migration.key();
    reg.migration
        .preflight(session)
        .and_then(|_| crate::kit::bounds::span(session, own))
        .and_then(|span| match walk == own {
            true => Ok(span),
            false => crate::kit::bounds::span(session, walk),
        })
        .map_err(|e| cannot_start(reg, e))
}

/// One apply or revert about to run.
struct OneRun<'a> {
    reg: &'a Registered,
    walk: Walk,
    run: Run,
    ctx: Context,
    /// What [`ledger::transition`] made of the row for this run: `running` or `reverting`.
    state: State,
    /// The ledger row as read before deciding (the start is a compare-and-set on it).
    entry: Option<&'a Entry>,
    /// Start over (reset this direction's cursor) rather than resume from `cursor`.
    fresh: bool,
    cursor: Option<Cursor>,
}

/// The common part of apply and revert: audit row, ledger start, batches, final state.
fn run_one(
    session: &mut dyn Session,
    one: OneRun,
    opts: &Options,
    held: &mut Held,
) -> Result<Outcome> {
    let OneRun {
        reg,
        walk,
        run,
        mut ctx,
        state,
        entry,
        fresh,
        cursor,
    } = one;
    let started = Instant::now();
    let action = if walk == Walk::Apply {
        Action::Apply
    } else {
        Action::Revert
    };
    ctx.run_id = uuid::Uuid::parse_str(&run.run_id).unwrap_or_else(|_| uuid::Uuid::now_v7());
    let job = Job::new(reg, walk, &ctx, &run.run_id)?;
    let key = RunKey {
        version: reg.version,
        action,
        run: &run.run_id,
    };
    // The tables are touched and the key range read before anything is written: it feeds the ETA,
    // and it fails here, with the ledger untouched, when the app's tables are missing.
    let span = preflight(session, reg, job.key)?;
    crate::engine::retry::conflicts(|| ledger::insert_run(session, &run)).map_err(audit_error)?;
    // We hold the lock, so any apply/revert still marked running is a process that died.
    let dead = match crate::engine::retry::conflicts(|| {
        ledger::abandon_dead_runs(session, reg.version, &run.run_id)
    }) {
        Ok(n) => n,
        Err(e) => {
            let err = audit_error(e);
            return Err(record_failure(session, opts, key, err));
        }
    };
    let note = match entry {
        Some(e) if e.state.in_progress() => {
            tracing::info!(
                "V{} was left {} by a runner that died; resuming",
                reg.version,
                e.state
            );
            Some(format!("resumed after a runner died while {}", e.state))
        }
        Some(e) if !fresh => Some(format!("resumed from the checkpoint of a {} run", e.state)),
        _ if dead > 0 => Some("a previous runner died before its first batch".into()),
        _ => None,
    };
    let workers = workers(session, opts);
    let start = Start {
        version: reg.version,
        name: reg.name,
        checksum: reg.checksum,
        action,
        state,
        run_id: &run.run_id,
        fresh,
        scenario: ctx.group,
        seen: entry,
    };
    if let Err(e) = ledger::start(session, &start) {
        return Err(record_failure(session, opts, key, e));
    }
    let succeed = match ctx.group {
        Some(_) => Event::SucceedGroup,
        None => Event::Succeed,
    };
    let working = ledger::Status {
        state,
        last: action,
    };
    let final_state = ledger::transition(Some(working), succeed).map_err(|r| refused(reg, r))?;
    let label = format!("{} V{}__{}", action.as_str(), reg.version, reg.name);
    let mut progress = Progress::new(label, opts.quiet, span);
    let engine = match prepare(session, &job, fresh, (cursor.as_ref(), span), workers) {
        Ok(engine) => engine,
        Err(e) => return Err(record_failure(session, opts, key, e)),
    };
    let parallel = engine == Engine::Parallel;
    let result = match (&opts.connect, engine) {
        (_, Engine::Single) => run_batches(session, &job, cursor, opts, held, &mut progress),
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
    match result {
        Ok((rows, batches)) => {
            let jobs = if parallel {
                format!(", {}", count(workers as u64, "job"))
            } else {
                String::new()
            };
            // A one-group revert says which group, in the migration's word, for the deploy log.
            let of_group = match (ctx.group, reg.migration.grouping()) {
                (Some(g), Some(grouping)) => format!(" of {} {g}", grouping.label),
                (Some(g), None) => format!(" of group {g}"),
                _ => String::new(),
            };
            let outcome = format!(
                "{} {}{of_group} in {}{jobs}",
                past_tense(walk, reg),
                count(rows, "row"),
                count(batches, "batch")
            );
            let end = ledger::Ending {
                state: Some(final_state),
                run_state: RunState::Succeeded,
                outcome: Some(&outcome),
                error: None,
            };
            let done = ledger::conclude(session, reg.version, &run.run_id, &end);
            done.map_err(|e| {
                Error::Runtime(format!(
                    "the work is done but recording it failed: {e}; rerun to record it"
                ))
            })?;
            Ok(Outcome {
                version: reg.version,
                name: reg.name.into(),
                action,
                state: final_state,
                rows,
                verb: past_tense(walk, reg).into(),
                batches,
                run_id: run.run_id,
                seconds: started.elapsed().as_secs_f64(),
                note,
            })
        }
        Err(err) => Err(record_failure(session, opts, key, err)),
    }
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

/// "1 row", "2 rows", "1 batch", "3 batches".
pub fn count(n: u64, noun: &str) -> String {
    match (n, noun.ends_with(['s', 'h'])) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        _ => format!("{n} {noun}s"),
    }
}

/// Records how the run failed whenever the database still answers (see [`record_end`]). When it does
/// not, the next runner finds the `running` row and recovers; the returned error says so instead of a
/// second line on stderr.
fn record_failure(session: &mut dyn Session, opts: &Options, key: RunKey, err: Error) -> Error {
    let message = err.to_string();
    // Fenced on the run (`conclude`): a run that never started changes no row.
    let failed = ledger::transition(Some(ledger::working(key.action)), Event::Fail).ok();
    let (run_state, state) = match err {
        Error::Interrupted(_) => (RunState::Interrupted, failed),
        // Overtaken or raced: the migration is another run's now; only our audit row is ours.
        Error::Busy(_) => (RunState::Stopped, None),
        _ => (RunState::Failed, failed),
    };
    let end = ledger::Ending {
        state,
        run_state,
        outcome: None,
        error: Some(&message),
    };
    let recorded = record_end(session, opts.connect.as_ref(), key, &end);
    match (recorded, err) {
        (Ok(()), err) => err,
        (Err(_), Error::Runtime(m)) => Error::Runtime(format!(
            "{m} (the ledger still says running; the next run recovers it)"
        )),
        (Err(_), err) => err,
    }
}

/// Records a failed run's end. On this connection if it answers, else on a new one (the old one was
/// lost, a pooler restarted). When the migration's row stays locked (a stalled runner's batch holds
/// it), the audit row alone still says how the run ended and why: the migration's `running` row is
/// then recovered by the next runner, without passing this run off as a process that died.
fn record_end(
    session: &mut dyn Session,
    connect: Option<&crate::engine::options::Connector>,
    key: RunKey,
    end: &ledger::Ending,
) -> crate::db::DbResult<()> {
    let (version, run_id) = (key.version, key.run);
    let mut reopened;
    let s: &mut dyn Session = match ledger::conclude(session, version, run_id, end) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind == crate::db::ErrorKind::Connection => {
            match connect.map(crate::engine::options::Connector::open) {
                Some(Ok(fresh)) => {
                    reopened = fresh;
                    reopened.as_mut()
                }
                _ => return Err(e),
            }
        }
        Err(e) => {
            tracing::debug!("recording the end with the migration's row failed: {e}");
            session
        }
    };
    ledger::conclude(s, version, run_id, end).or_else(|e| {
        tracing::debug!("recording the end failed ({e}); recording the audit row alone");
        ledger::finish_run(s, run_id, end.run_state, end.outcome, end.error, None)
    })
}

/// `revert VERSION [--group ID]`.
pub fn revert(
    session: &mut dyn Session,
    version: i64,
    group: Option<i64>,
    force: bool,
    opts: &Options,
) -> Result<Outcome> {
    let reg = find(version)?;
    let walk = revert_walk(reg, group, force)?;
    if !ledger::check_schema(session)? {
        return Err(never_applied(reg));
    }
    let gauge = Gauge::open(opts, session)?;
    let lease = lock::acquire(session, opts.lock_timeout)?;
    let mut held = Held {
        lease,
        gauge,
        tally: Tally::default(),
    };
    let result = revert_locked(session, reg, (walk, force), group, opts, &mut held);
    lock::release(session, held.lease);
    result.map_err(|e| held.tally.report(e))
}

/// How this migration is undone, or why it cannot be; checked before anything is touched.
fn revert_walk(reg: &Registered, group: Option<i64>, force: bool) -> Result<Walk> {
    let name = format!("V{}__{}", reg.version, reg.name);
    match (reg.migration.shape(), reg.migration.grouping(), group) {
        (Shape::Irreversible(why), _, _) => {
            Err(Error::Usage(format!("{name} cannot be reverted: {why}")))
        }
        (_, None, Some(_)) => Err(Error::Usage(format!(
            "{name} has no groups; revert it whole, without --group/--scenario"
        ))),
        (Shape::Update, _, Some(_)) => Err(Error::Usage(format!(
            "{name} is UPDATE-shaped: its journal restores rows, not groups; revert it whole"
        ))),
        (Shape::Update, _, None) => Ok(Walk::Restore { force }),
        (Shape::Insert(_), _, _) => Ok(Walk::DeleteMarked),
    }
}

fn revert_locked(
    session: &mut dyn Session,
    reg: &Registered,
    (walk, force): (Walk, bool),
    group: Option<i64>,
    opts: &Options,
    held: &mut Held,
) -> Result<Outcome> {
    let v = reg.version;
    let entry = ledger::entry(session, v)?.ok_or_else(|| never_applied(reg))?;
    // A reverted migration never drifts, so "already reverted" still comes first.
    if drifted(&entry, reg) {
        return Err(drift_error(&entry, reg));
    }
    let event = match group {
        Some(g) => Event::RevertGroup {
            same: entry.revert_scenario == Some(g),
        },
        None => Event::Revert,
    };
    let state = match ledger::transition(Some(entry.status()), event) {
        Ok(state) => state,
        Err(Refusal::Unfinished) => return Err(unfinished(reg, &entry)),
        Err(r) => return Err(refused(reg, r)),
    };
    if matches!(walk, Walk::Restore { .. }) && ledger::forgotten(session, v)? {
        return Err(Error::Usage(format!(
            "V{v}__{} cannot be reverted: its undo journal was dropped by `backfill forget {v}`",
            reg.name
        )));
    }
    let ctx = Context {
        version: v,
        run_id: uuid::Uuid::nil(),
        run_date: today(),
        group,
        ledger_rows: entry.live_rows(),
    };
    if !force {
        refuse_edited(session, reg, &ctx, opts)?;
    }
    let resuming = entry.last_action == Action::Revert
        && matches!(entry.state, State::Reverting | State::Failed)
        && entry.revert_scenario == group;
    let one = OneRun {
        reg,
        walk,
        run: new_run(Action::Revert, Some(reg), opts),
        ctx,
        state,
        entry: Some(&entry),
        fresh: !resuming,
        cursor: entry.revert_cursor.clone().filter(|_| resuming),
    };
    run_one(session, one, opts, held)
}

fn never_applied(reg: &Registered) -> Error {
    Error::Usage(format!(
        "V{}__{} was never applied; nothing to revert",
        reg.version, reg.name
    ))
}

/// What a refused transition tells the user (the one-group revert's refusal is [`unfinished`]).
fn refused(reg: &Registered, refusal: Refusal) -> Error {
    match refusal {
        Refusal::NeverApplied => never_applied(reg),
        Refusal::AlreadyReverted => Error::Usage(format!(
            "V{}__{} is already reverted; nothing to do",
            reg.version, reg.name
        )),
        other => Error::Runtime(format!(
            "V{}__{}: the ledger refused a state change ({other:?}); this is a bug in backfill",
            reg.version, reg.name
        )),
    }
}

/// A one-group revert of unfinished work (a failed or killed apply, an interrupted full revert)
/// would end `applied` and hide that work from deploys and `verify`.
fn unfinished(reg: &Registered, entry: &Entry) -> Error {
    let finish = if entry.last_action == Action::Revert {
        format!(
            "finish the full revert first: `backfill revert {}`",
            reg.version
        )
    } else {
        format!("finish the apply first: `backfill apply {}`", reg.version)
    };
    Error::Usage(format!(
        "V{}__{} is {} after an unfinished {}; a one-group revert needs a completed apply: {finish}",
        reg.version, reg.name, entry.state, entry.last_action
    ))
}

/// Rule 4: rows edited after the backfill are someone's work; refuse unless `--force`.
fn refuse_edited(
    session: &mut dyn Session,
    reg: &Registered,
    ctx: &Context,
    opts: &Options,
) -> Result<()> {
    let edited = session.snapshot(|s| match reg.migration.shape() {
        Shape::Update => crate::kit::journal::edited(s, ctx.version),
        Shape::Insert(undo) => undo.edited_rows(s, ctx),
        Shape::Irreversible(_) => Ok(Vec::new()),
    })?;
    if edited.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = edited.iter().map(i64::to_string).collect();
    let message = format!(
        "refusing to revert V{}__{}: {} row(s) it wrote were edited after the backfill (ids: {}); review them, then rerun with --force to {} them anyway",
        reg.version,
        reg.name,
        edited.len(),
        ids.join(", "),
        if reg.migration.shape() == Shape::Update { "restore" } else { "delete" }
    );
    Err(refuse(
        session,
        new_run(Action::Revert, Some(reg), opts),
        Error::Refused(message),
    ))
}

/// `plan [VERSION]`: read-only; the pending migrations by default.
pub fn plan(
    session: &mut dyn Session,
    version: Option<i64>,
    opts: &Options,
) -> Result<Vec<PlanReport>> {
    if let Some(v) = version {
        find(v)?;
    }
    // The ledger is made here for the audit row; on a read-only server (a standby) plan anyway.
    let entries = ledger::read_if_any(session, ledger::entries)?;
    let migrations = match version {
        Some(v) => vec![find(v)?],
        None => selected(&entries, Selection::Pending)?,
    };
    migrations
        .into_iter()
        .map(|reg| {
            let state = entries
                .iter()
                .find(|e| e.version == reg.version && e.state == State::Applied)
                .map(|e| e.state.to_string());
            plan_one(session, reg, opts).map(|r| PlanReport { state, ..r })
        })
        .collect()
}

fn plan_one(session: &mut dyn Session, reg: &Registered, opts: &Options) -> Result<PlanReport> {
    let run = new_run(Action::Plan, Some(reg), opts);
    // The audit row is best effort: a read-only user may still plan.
    let audited = ledger::insert_run(session, &run).is_ok();
    let plan = match compute_plan(session, reg, opts) {
        Ok(plan) => plan,
        Err(e) if audited => return Err(record_plan_failure(session, &run.run_id, e)),
        Err(e) => return Err(e),
    };
    if audited {
        let summary = serde_json::to_string(&plan).unwrap_or_default();
        let outcome = format!("would write {}", count(plan.total, "row"));
        if let Err(e) = ledger::finish_run(
            session,
            &run.run_id,
            RunState::Succeeded,
            Some(&outcome),
            None,
            Some(&summary),
        ) {
            tracing::warn!("could not record the plan in the audit table: {e}");
        }
    }
    Ok(PlanReport {
        state: None,
        version: reg.version,
        name: reg.name.into(),
        checksum: reg.checksum.into(),
        run_id: run.run_id,
        plan,
    })
}

/// A plan that failed says so in its audit row, rather than staying `running` forever.
fn record_plan_failure(session: &mut dyn Session, run_id: &str, err: Error) -> Error {
    let message = err.to_string();
    let failed = ledger::finish_run(
        session,
        run_id,
        RunState::Failed,
        None,
        Some(&message),
        None,
    );
    if let Err(e) = failed {
        tracing::warn!("could not record the failed plan in the audit table: {e}");
    }
    err
}
