//! Runs data migrations: selection, locking, the batch loop with its checkpoint, state transitions and
//! the audit trail. No dialect-specific SQL here: that lives in `db/` and in the migrations.

use crate::db::{DbError, ErrorKind, Session};
use crate::error::{Error, Result};
use crate::ledger::{self, Action, Entry, Run, Start, State};
use crate::migration::{Batch, Context, Cursor, Direction, Plan, Step};
use crate::progress::Progress;
use crate::registry::{self, Registered};
use crate::{lock, signals};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How a command runs; filled from the CLI.
#[derive(Debug, Clone)]
pub struct Options {
    pub batch_size: u64,
    pub pause: Duration,
    pub lock_timeout: Duration,
    pub statement_timeout: Option<Duration>,
    pub operator: String,
    /// The command line, secrets redacted, as JSON text for the audit table.
    pub arguments: String,
    pub quiet: bool,
    pub samples: usize,
    /// Shrink the batch when one takes longer than this (and grow it back, up to `batch_size`).
    pub max_batch: Option<Duration>,
    /// `apply --expect-plan`: refuse unless the plan now equals the reviewed one.
    pub expect_plan: Option<crate::planfile::PlanFile>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 5_000,
            pause: Duration::ZERO,
            lock_timeout: Duration::from_secs(60),
            statement_timeout: None,
            operator: "unknown".into(),
            arguments: "[]".into(),
            quiet: true,
            samples: 5,
            max_batch: None,
            expect_plan: None,
        }
    }
}

/// What one apply or revert of one migration did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub version: i64,
    pub name: String,
    pub action: Action,
    pub state: State,
    pub rows: u64,
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

/// Makes sure the ledger tables exist, creating them under the runner lock if they do not.
pub fn prepare_ledger(session: &mut dyn Session, lock_timeout: Duration) -> Result<()> {
    if ledger::is_current(session) {
        return Ok(());
    }
    lock::acquire(session, lock_timeout)?;
    let result = ledger::migrate(session);
    lock::release(session);
    result
}

fn drifted(entry: &Entry, reg: &Registered) -> bool {
    entry.state != State::Reverted && entry.checksum != reg.checksum
}

fn drift_error(entry: &Entry, reg: &Registered) -> Error {
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
    match entry {
        None => true,
        Some(e) => {
            e.last_action == Action::Apply.as_str()
                && matches!(e.state, State::Running | State::Failed)
        }
    }
}

fn selected(entries: &[Entry], selection: Selection) -> Result<Vec<&'static Registered>> {
    let entry = |v: i64| entries.iter().find(|e| e.version == v);
    Ok(match selection {
        Selection::One(v) => {
            let reg = find(v)?;
            match entry(v) {
                // Applied in full: nothing to do. After a one-scenario revert, naming it fills the gap.
                Some(e) if e.state == State::Applied && e.rows_reverted == 0 => Vec::new(),
                _ => vec![reg],
            }
        }
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
    prepare_ledger(session, opts.lock_timeout)?;
    let entries = ledger::entries(session)?;
    refuse_drift(&entries)?;
    if selected(&entries, selection)?.is_empty() {
        return Ok(Vec::new());
    }
    lock::acquire(session, opts.lock_timeout)?;
    let result = apply_locked(session, selection, opts);
    lock::release(session);
    result
}

fn apply_locked(
    session: &mut dyn Session,
    selection: Selection,
    opts: &Options,
) -> Result<Vec<Outcome>> {
    // Look again: the runner we waited for may have done it all.
    let entries = ledger::entries(session)?;
    refuse_drift(&entries)?;
    let mut outcomes = Vec::new();
    for reg in selected(&entries, selection)? {
        outcomes.push(apply_one(session, reg, opts)?);
    }
    Ok(outcomes)
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn new_run(action: Action, reg: Option<&Registered>, opts: &Options) -> Run {
    Run {
        run_id: uuid::Uuid::now_v7().to_string(),
        version: reg.map(|r| r.version),
        action: action.as_str().into(),
        state: "running".into(),
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

fn audit_error(e: DbError) -> Error {
    let message = format!("writing the audit row failed: {e}");
    if e.is_config() {
        Error::Usage(message) // e.g. a read-only user: nothing was written
    } else {
        Error::Runtime(message)
    }
}

fn apply_one(session: &mut dyn Session, reg: &Registered, opts: &Options) -> Result<Outcome> {
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
        scenario: None,
        ledger_rows: 0,
    };
    let mut run = new_run(Action::Apply, Some(reg), opts);
    // Planning costs a full read of the data, so apply plans only when told to compare with a review;
    // `log` pairs an apply with the plan run before it otherwise.
    if let Some(file) = &opts.expect_plan {
        let plan = compute_plan(session, reg, &ctx, opts)?;
        let now = crate::planfile::reviewed(reg.version, reg.name, reg.checksum, &plan);
        if let Err(refusal) = crate::planfile::gate(file, &now) {
            return Err(refuse(session, run, refusal));
        }
        run.plan_summary = serde_json::to_string(&plan).ok();
    }
    run_one(
        session,
        reg,
        run,
        ctx,
        entry.as_ref(),
        resume.is_none(),
        cursor,
        opts,
    )
}

/// Records a refused run in the audit table and returns the refusal.
fn refuse(session: &mut dyn Session, mut run: Run, refusal: Error) -> Error {
    run.state = "refused".into();
    run.finished_at = Some(ledger::now());
    run.error = Some(refusal.to_string());
    match ledger::insert_run(session, &run) {
        Ok(()) => refusal,
        Err(e) => audit_error(e),
    }
}

/// The plan as of now, in a read-only transaction.
fn compute_plan(
    session: &mut dyn Session,
    reg: &Registered,
    ctx: &Context,
    opts: &Options,
) -> Result<Plan> {
    session.begin(true)?;
    let plan = reg.migration.plan(session, ctx, opts.samples);
    let _ = session.rollback();
    plan.map_err(|e| {
        Error::Runtime(format!(
            "planning V{}__{} failed: {e}",
            reg.version, reg.name
        ))
    })
}

/// The common part of apply and revert: audit row, ledger start, batches, final state.
#[allow(clippy::too_many_arguments)]
fn run_one(
    session: &mut dyn Session,
    reg: &Registered,
    run: Run,
    mut ctx: Context,
    entry: Option<&Entry>,
    fresh: bool,
    cursor: Option<Cursor>,
    opts: &Options,
) -> Result<Outcome> {
    let started = Instant::now();
    let action = if run.action == Action::Revert.as_str() {
        Action::Revert
    } else {
        Action::Apply
    };
    ctx.run_id = uuid::Uuid::parse_str(&run.run_id).unwrap_or_else(|_| uuid::Uuid::now_v7());
    // The key range is read before anything is written: it feeds the ETA, and it fails here, with the
    // ledger untouched, when the app's tables are missing.
    let direction = if action == Action::Revert {
        Direction::Revert
    } else {
        Direction::Apply
    };
    let span = reg
        .migration
        .key_span(session, direction)
        .map_err(|e| Error::Runtime(format!("V{}__{} cannot start: {e}", reg.version, reg.name)))?;
    ledger::insert_run(session, &run).map_err(audit_error)?;
    // We hold the lock, so any apply/revert still marked running is a process that died.
    let dead = ledger::abandon_dead_runs(session, reg.version, &run.run_id).map_err(audit_error)?;
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
    let start = Start {
        version: reg.version,
        name: reg.name,
        checksum: reg.checksum,
        action,
        run_id: &run.run_id,
        fresh,
        scenario: ctx.scenario,
    };
    ledger::start(session, &start)?;
    let final_state = match (action, ctx.scenario) {
        (Action::Revert, None) => State::Reverted,
        _ => State::Applied,
    };
    let job = Job {
        reg,
        action,
        ctx: &ctx,
        run_id: &run.run_id,
        hooks: Hooks::from_env(),
    };
    let label = format!("{} V{}__{}", action.as_str(), reg.version, reg.name);
    let mut progress = Progress::new(label, opts.quiet, span);
    let result = run_batches(session, &job, cursor, opts, &mut progress);
    progress.finish();
    match result {
        Ok((rows, batches)) => {
            let outcome = format!("{} {rows} rows in {batches} batches", past_tense(action));
            let done = ledger::finish(session, reg.version, final_state, None).and_then(|_| {
                ledger::finish_run(
                    session,
                    &run.run_id,
                    "succeeded",
                    Some(&outcome),
                    None,
                    None,
                )
            });
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
                batches,
                run_id: run.run_id,
                seconds: started.elapsed().as_secs_f64(),
                note,
            })
        }
        Err(err) => Err(record_failure(session, reg.version, &run.run_id, err)),
    }
}

fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Revert => "deleted",
        _ => "wrote",
    }
}

/// Best effort: if the connection is gone, the next runner finds the `running` row and recovers; the
/// returned error says so instead of a second line on stderr.
fn record_failure(session: &mut dyn Session, version: i64, run_id: &str, err: Error) -> Error {
    let message = err.to_string();
    let run_state = if matches!(err, Error::Interrupted(_)) {
        "interrupted"
    } else {
        "failed"
    };
    let recorded = ledger::finish(session, version, State::Failed, Some(&message))
        .and_then(|_| ledger::finish_run(session, run_id, run_state, None, Some(&message), None));
    match (recorded, err) {
        (Ok(()), err) => err,
        (Err(_), Error::Runtime(m)) => Error::Runtime(format!(
            "{m} (the ledger still says running; the next run recovers it)"
        )),
        (Err(_), err) => err,
    }
}

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
struct Job<'a> {
    reg: &'a Registered,
    action: Action,
    ctx: &'a Context,
    run_id: &'a str,
    hooks: Hooks,
}

/// The batch loop: each batch's writes, its checkpoint and its audit count commit together.
fn run_batches(
    session: &mut dyn Session,
    job: &Job,
    mut cursor: Option<Cursor>,
    opts: &Options,
    progress: &mut Progress,
) -> Result<(u64, u64)> {
    session.set_statement_timeout(opts.statement_timeout)?;
    let mut size = BatchSize::new(opts.batch_size, opts.max_batch);
    let (mut rows, mut batches) = (0u64, 0u64);
    loop {
        if let Some(sig) = signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        batches += 1;
        let started = Instant::now();
        let step = one_batch(session, job, cursor.as_ref(), size.now, batches)
            .map_err(|e| batch_error(job.reg, batches, e))?;
        size.adapt(started.elapsed());
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

/// `--max-batch-ms`: halve the batch while batches run long, double it back while they run short;
/// never above `--batch-size`, never below 1/64th of it.
struct BatchSize {
    now: u64,
    max: u64,
    min: u64,
    limit: Option<Duration>,
}

impl BatchSize {
    fn new(size: u64, limit: Option<Duration>) -> Self {
        BatchSize {
            now: size,
            max: size,
            min: (size / 64).max(1),
            limit,
        }
    }

    fn adapt(&mut self, took: Duration) {
        let Some(limit) = self.limit else { return };
        if took > limit && self.now > self.min {
            self.now = (self.now / 2).max(self.min);
            tracing::info!(
                "batch took {}ms, over --max-batch-ms; batch size now {}",
                took.as_millis(),
                self.now
            );
        } else if took < limit / 4 && self.now < self.max {
            self.now = (self.now * 2).min(self.max);
        }
    }
}

fn one_batch(
    session: &mut dyn Session,
    job: &Job,
    after: Option<&Cursor>,
    size: u64,
    number: u64,
) -> crate::db::DbResult<Step> {
    session.begin(false)?;
    let work = (|| {
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
            next,
            step.rows(),
            size,
        )?;
        ledger::add_run_rows(session, job.run_id, step.rows())?;
        job.hooks.before_commit(number)?;
        Ok(step)
    })();
    match work {
        Ok(step) => session.commit().map(|_| step),
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
        ErrorKind::Connection => Error::Runtime(format!("{what}; the database connection was lost, rerun to resume from the last committed batch")),
        _ => Error::Runtime(format!("{what}; fix the cause and rerun to resume from the last committed batch")),
    }
}

/// `revert VERSION [--scenario ID]`.
pub fn revert(
    session: &mut dyn Session,
    version: i64,
    scenario: Option<i64>,
    force: bool,
    opts: &Options,
) -> Result<Outcome> {
    let reg = find(version)?;
    prepare_ledger(session, opts.lock_timeout)?;
    lock::acquire(session, opts.lock_timeout)?;
    let result = revert_locked(session, reg, scenario, force, opts);
    lock::release(session);
    result
}

fn revert_locked(
    session: &mut dyn Session,
    reg: &Registered,
    scenario: Option<i64>,
    force: bool,
    opts: &Options,
) -> Result<Outcome> {
    let v = reg.version;
    let entry = ledger::entry(session, v)?.ok_or_else(|| {
        Error::Usage(format!(
            "V{v}__{} was never applied; nothing to revert",
            reg.name
        ))
    })?;
    if entry.state == State::Reverted {
        return Err(Error::Usage(format!(
            "V{v}__{} is already reverted; nothing to do",
            reg.name
        )));
    }
    if drifted(&entry, reg) {
        return Err(drift_error(&entry, reg));
    }
    let ctx = Context {
        version: v,
        run_id: uuid::Uuid::nil(),
        run_date: today(),
        scenario,
        ledger_rows: entry.live_rows(),
    };
    if !force {
        refuse_edited(session, reg, &ctx, opts)?;
    }
    let resuming = entry.last_action == Action::Revert.as_str()
        && matches!(entry.state, State::Reverting | State::Failed)
        && entry.revert_scenario == scenario;
    let cursor = if resuming {
        entry.revert_cursor.clone()
    } else {
        None
    };
    let run = new_run(Action::Revert, Some(reg), opts);
    run_one(
        session,
        reg,
        run,
        ctx,
        Some(&entry),
        !resuming,
        cursor,
        opts,
    )
}

/// Rule 4: rows edited after the backfill are someone's work; refuse unless `--force`.
fn refuse_edited(
    session: &mut dyn Session,
    reg: &Registered,
    ctx: &Context,
    opts: &Options,
) -> Result<()> {
    session.begin(true)?;
    let edited = reg.migration.edited_rows(session, ctx);
    let _ = session.rollback();
    let edited = edited?;
    if edited.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = edited.iter().map(i64::to_string).collect();
    let message = format!(
        "refusing to revert V{}__{}: {} row(s) it wrote were edited after the backfill (ids: {}); review them, then rerun with --force to delete them anyway",
        reg.version,
        reg.name,
        edited.len(),
        ids.join(", ")
    );
    Err(refuse(
        session,
        new_run(Action::Revert, Some(reg), opts),
        Error::Refused(message),
    ))
}

/// One migration's plan, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub run_id: String,
    pub plan: Plan,
}

/// `plan [VERSION]`: read-only; the pending migrations by default.
pub fn plan(
    session: &mut dyn Session,
    version: Option<i64>,
    opts: &Options,
) -> Result<Vec<PlanReport>> {
    prepare_ledger(session, opts.lock_timeout)?;
    let migrations = match version {
        Some(v) => vec![find(v)?],
        None => selected(&ledger::entries(session)?, Selection::Pending)?,
    };
    migrations
        .into_iter()
        .map(|reg| plan_one(session, reg, opts))
        .collect()
}

fn plan_one(session: &mut dyn Session, reg: &Registered, opts: &Options) -> Result<PlanReport> {
    let run = new_run(Action::Plan, Some(reg), opts);
    // The audit row is best effort: a read-only user may still plan.
    let audited = ledger::insert_run(session, &run).is_ok();
    let ctx = Context {
        version: reg.version,
        run_id: uuid::Uuid::nil(),
        run_date: today(),
        scenario: None,
        ledger_rows: 0,
    };
    let plan = compute_plan(session, reg, &ctx, opts)?;
    if audited {
        let summary = serde_json::to_string(&plan).unwrap_or_default();
        let outcome = format!("would write {} rows", plan.total);
        if let Err(e) = ledger::finish_run(
            session,
            &run.run_id,
            "succeeded",
            Some(&outcome),
            None,
            Some(&summary),
        ) {
            tracing::warn!("could not record the plan in the audit table: {e}");
        }
    }
    Ok(PlanReport {
        version: reg.version,
        name: reg.name.into(),
        checksum: reg.checksum.into(),
        run_id: run.run_id,
        plan,
    })
}

/// One line of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusLine {
    pub version: i64,
    pub name: String,
    /// A ledger state, or `pending` (never started) or `unknown` (not in this binary).
    pub state: String,
    pub checksum_ok: bool,
    pub rows_applied: i64,
    pub rows_reverted: i64,
    pub updated_at: Option<String>,
    pub last_error: Option<String>,
}

pub fn status(session: &mut dyn Session, opts: &Options) -> Result<Vec<StatusLine>> {
    prepare_ledger(session, opts.lock_timeout)?;
    let entries = ledger::entries(session)?;
    let mut lines: Vec<StatusLine> = registry::all()
        .iter()
        .map(
            |reg| match entries.iter().find(|e| e.version == reg.version) {
                None => StatusLine {
                    version: reg.version,
                    name: reg.name.into(),
                    state: "pending".into(),
                    checksum_ok: true,
                    rows_applied: 0,
                    rows_reverted: 0,
                    updated_at: None,
                    last_error: None,
                },
                Some(e) => status_line(e, !drifted(e, reg), e.state.as_str()),
            },
        )
        .collect();
    for e in entries
        .iter()
        .filter(|e| registry::find(e.version).is_none())
    {
        lines.push(status_line(e, false, "unknown"));
    }
    lines.sort_by_key(|l| l.version);
    Ok(lines)
}

fn status_line(e: &Entry, checksum_ok: bool, state: &str) -> StatusLine {
    StatusLine {
        version: e.version,
        name: e.name.clone(),
        state: state.into(),
        checksum_ok,
        rows_applied: e.rows_applied,
        rows_reverted: e.rows_reverted,
        updated_at: e
            .updated_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        last_error: e.last_error.clone(),
    }
}

/// `verify [--data]`: every inconsistency as one line; empty when all is well.
pub fn verify(session: &mut dyn Session, data: bool, opts: &Options) -> Result<Vec<String>> {
    prepare_ledger(session, opts.lock_timeout)?;
    let entries = match ledger::entries(session) {
        Err(Error::Ledger(problem)) => return Ok(vec![problem]),
        other => other?,
    };
    let mut problems = Vec::new();
    for e in &entries {
        match registry::find(e.version) {
            None => problems.push(format!(
                "V{}__{} is in the ledger ({}) but not in this binary; deploy the build that has it, or check you are on the right database",
                e.version, e.name, e.state
            )),
            Some(reg) if drifted(e, reg) => problems.push(drift_error(e, reg).to_string()),
            Some(_) => {}
        }
        match e.state {
            State::Failed => problems.push(format!(
                "V{}__{} is failed ({}); rerun `backfill apply {}` to resume or `backfill revert {}`",
                e.version,
                e.name,
                e.last_error.as_deref().unwrap_or("no error recorded"),
                e.version,
                e.version
            )),
            State::Running | State::Reverting => problems.push(format!(
                "V{}__{} is {}: a runner is at work or died; rerun the same command to resume",
                e.version, e.name, e.state
            )),
            _ => {}
        }
    }
    let newest_applied = entries
        .iter()
        .filter(|e| e.state == State::Applied)
        .map(|e| e.version)
        .max();
    for reg in registry::all() {
        let started = entries.iter().any(|e| e.version == reg.version);
        if !started && newest_applied.is_some_and(|n| reg.version < n) {
            problems.push(format!(
                "V{}__{} is pending but older than applied V{}; run `backfill apply {}` (it was probably merged late)",
                reg.version,
                reg.name,
                newest_applied.unwrap_or(0),
                reg.version
            ));
        }
    }
    if data {
        problems.extend(check_data(session, &entries)?);
    }
    Ok(problems)
}

fn check_data(session: &mut dyn Session, entries: &[Entry]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for e in entries.iter().filter(|e| e.state == State::Applied) {
        let Some(reg) = registry::find(e.version) else {
            continue;
        };
        let ctx = Context {
            version: e.version,
            run_id: uuid::Uuid::nil(),
            run_date: today(),
            scenario: None,
            ledger_rows: e.live_rows(),
        };
        session.begin(true)?;
        let found = reg.migration.check(session, &ctx);
        let _ = session.rollback();
        let found = found
            .map_err(|err| Error::Runtime(format!("checking V{} failed: {err}", e.version)))?;
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("V{}__{}: {p}", e.version, e.name)),
        );
    }
    Ok(problems)
}

/// `repair VERSION --accept-checksum`: the edit was intended; record the new checksum.
pub fn repair_checksum(session: &mut dyn Session, version: i64, opts: &Options) -> Result<String> {
    repair(session, version, opts, |session, reg, entry| {
        if !drifted(entry, reg) {
            return Err(Error::Usage(format!(
                "V{version} has no checksum drift; nothing to repair"
            )));
        }
        ledger::set_checksum(session, version, reg.checksum)?;
        Ok(format!(
            "accepted checksum {}… for V{version} (was {}…)",
            &reg.checksum[..12],
            entry.checksum.get(..12).unwrap_or("")
        ))
    })
}

/// `repair VERSION --mark-failed`: a run that is recorded as in progress but is not (we hold the lock).
pub fn repair_mark_failed(
    session: &mut dyn Session,
    version: i64,
    opts: &Options,
) -> Result<String> {
    repair(session, version, opts, |session, _reg, entry| {
        if !entry.state.in_progress() {
            return Err(Error::Usage(format!(
                "V{version} is {}, not running or reverting; --mark-failed only clears an interrupted run",
                entry.state
            )));
        }
        ledger::finish(
            session,
            version,
            State::Failed,
            Some("marked failed by repair"),
        )?;
        Ok(format!("marked V{version} failed (was {}); `backfill apply {version}` or `backfill revert {version}` resumes", entry.state))
    })
}

fn repair(
    session: &mut dyn Session,
    version: i64,
    opts: &Options,
    fix: impl FnOnce(&mut dyn Session, &Registered, &Entry) -> Result<String>,
) -> Result<String> {
    let reg = find(version)?;
    prepare_ledger(session, opts.lock_timeout)?;
    lock::acquire(session, opts.lock_timeout)?;
    let result = (|| {
        let entry = ledger::entry(session, version)?
            .ok_or_else(|| Error::Usage(format!("V{version} was never run; nothing to repair")))?;
        let outcome = fix(session, reg, &entry)?;
        let mut run = new_run(Action::Repair, Some(reg), opts);
        run.state = "succeeded".into();
        run.finished_at = Some(ledger::now());
        run.outcome = Some(outcome.clone());
        ledger::insert_run(session, &run).map_err(audit_error)?;
        Ok(outcome)
    })();
    lock::release(session);
    result
}
