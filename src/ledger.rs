//! The ledger: `backfill_migrations` (one row per version ever started) and `backfill_runs` (append-only
//! audit). Portable SQL only; the schema itself comes from `schema/ledger/<dialect>/` via refinery.

use crate::db::{Session, Value};
use crate::error::{Error, Result};
use crate::migration::Cursor;
use chrono::{NaiveDateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The newest ledger schema version this binary knows (the highest `V<n>__` under `schema/ledger/`).
const LEDGER_SCHEMA: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Applied,
    Failed,
    Reverting,
    Reverted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Applied => "applied",
            State::Failed => "failed",
            State::Reverting => "reverting",
            State::Reverted => "reverted",
        }
    }
    /// Work was in progress: either a live runner holds the lock, or the runner died.
    pub fn in_progress(self) -> bool {
        matches!(self, State::Running | State::Reverting)
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "running" => State::Running,
            "applied" => State::Applied,
            "failed" => State::Failed,
            "reverting" => State::Reverting,
            "reverted" => State::Reverted,
            other => return Err(other.to_string()),
        })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Plan,
    Apply,
    Revert,
    Repair,
    Forget,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Plan => "plan",
            Action::Apply => "apply",
            Action::Revert => "revert",
            Action::Repair => "repair",
            Action::Forget => "forget",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub state: State,
    pub last_action: String,
    pub apply_cursor: Option<Cursor>,
    pub revert_cursor: Option<Cursor>,
    pub revert_scenario: Option<i64>,
    pub batch_size: Option<i64>,
    pub rows_applied: i64,
    pub rows_reverted: i64,
    pub batches: i64,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    pub last_run_id: Option<String>,
    pub last_error: Option<String>,
}

impl Entry {
    /// Rows this migration wrote that are still in place.
    pub fn live_rows(&self) -> i64 {
        self.rows_applied - self.rows_reverted
    }
}

pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        other => Some(
            other
                .clone()
                .into_json()
                .to_string()
                .trim_matches('"')
                .to_string(),
        ),
    }
}

fn timestamp(v: &Value) -> Option<NaiveDateTime> {
    match v {
        Value::Timestamp(t) => Some(*t),
        Value::Text(s) => NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok(),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn ledger_error(what: &str, e: crate::db::DbError) -> Error {
    match e.kind {
        // The SQL itself failed: the table is not what this binary created (a dropped or renamed
        // column, a missing table). Rerunning cannot help; someone must repair the ledger.
        crate::db::ErrorKind::Query => Error::Ledger(format!(
            "the ledger table {what} is not as this binary expects ({e}); restore it from a backup or recreate it as in schema/ledger/ (ledger schema V{LEDGER_SCHEMA})"
        )),
        crate::db::ErrorKind::Config => Error::Usage(format!("reading the ledger ({what}) failed: {e}")),
        _ => Error::Runtime(format!("reading the ledger ({what}) failed: {e}")),
    }
}

/// The ledger schema version in the database; `None` when there is no ledger yet.
fn schema_version(session: &mut dyn Session) -> Option<i64> {
    session
        .query_scalar("SELECT MAX(version) FROM backfill_schema_history", &[])
        .ok()
        .and_then(|v| v.as_i64())
}

/// True when the ledger tables exist at the schema version this binary expects.
pub fn is_current(session: &mut dyn Session) -> bool {
    schema_version(session) == Some(LEDGER_SCHEMA)
}

/// Whether there is a ledger to read (read-only commands never create one: they must work on a hot
/// standby, and a refused or read-only look changes nothing).
pub fn readable(session: &mut dyn Session) -> Result<bool> {
    check_schema(session)?;
    Ok(schema_version(session).is_some())
}

/// Creates or upgrades the ledger when it can; on a server or for a user that may not write (a hot
/// standby, a SELECT-only CI user), goes on read-only with whatever ledger is there. For commands that
/// only look: `status`, `verify`, `log`, `plan`. Returns whether there is a ledger to read.
pub fn prepare_or_read(session: &mut dyn Session) -> Result<bool> {
    if check_schema(session)? {
        return Ok(true);
    }
    match session.migrate_ledger() {
        Ok(()) => Ok(true),
        Err(e) if e.is_denied() => {
            tracing::debug!("not creating the ledger (read-only here): {e}");
            readable(session)
        }
        Err(_) => migrate(session).map(|_| true),
    }
}

/// `Ok(true)`: the ledger is current; `Ok(false)`: absent or older (create or upgrade it). A ledger
/// written by a newer backfill is refused (exit 3): this binary would misread it.
pub fn check_schema(session: &mut dyn Session) -> Result<bool> {
    match schema_version(session) {
        Some(v) if v > LEDGER_SCHEMA => Err(Error::Ledger(format!(
            "the ledger schema is V{v}, newer than this binary knows (V{LEDGER_SCHEMA}): a newer backfill wrote it; run that version (or newer) of backfill"
        ))),
        Some(v) => Ok(v == LEDGER_SCHEMA),
        None => Ok(false),
    }
}

/// Creates or upgrades the ledger tables. The lock lives in them, so this cannot run under it: first
/// runs may race. Every statement is idempotent (IF NOT EXISTS, INSERT IGNORE), and a runner that
/// loses the race on refinery's history table (a duplicate key, a certification conflict, PostgreSQL's
/// catalog unique index) finds the schema current when it looks again.
pub fn migrate(session: &mut dyn Session) -> Result<()> {
    let mut n = 1;
    loop {
        match session.migrate_ledger() {
            Ok(()) => return Ok(()),
            Err(_) if is_current(session) => return Ok(()),
            Err(e) if n < crate::retry::ATTEMPTS && e.kind != crate::db::ErrorKind::Config => {
                tracing::debug!("creating the ledger raced with another runner, retrying: {e}");
                std::thread::sleep(crate::retry::pause(n));
                n += 1;
            }
            Err(e) if e.is_config() => {
                return Err(Error::Usage(format!(
                    "{e}; backfill needs a user that may create its ledger tables (backfill_*) on first use"
                )))
            }
            Err(e) => {
                return Err(Error::Runtime(format!(
                    "{e}; check that the user may create tables"
                )))
            }
        }
    }
}

const ENTRY_COLUMNS: &str = "version, name, checksum, state, last_action, apply_cursor, revert_cursor, revert_scenario, \
    batch_size, rows_applied, rows_reverted, batches, started_at, finished_at, updated_at, last_run_id, last_error";

fn parse_entry(row: &[Value]) -> Result<Entry> {
    let version = int(&row[0]);
    let raw_state = text(&row[3]).unwrap_or_default();
    let state = raw_state.parse().map_err(|bad| {
        Error::Ledger(format!(
            "ledger row for version {version} has unknown state `{bad}` (expected running, applied, failed, reverting or reverted); it was edited by hand or written by another backfill version: set backfill_migrations.state by hand, then run `backfill verify`"
        ))
    })?;
    Ok(Entry {
        version,
        name: text(&row[1]).unwrap_or_default(),
        checksum: text(&row[2]).unwrap_or_default(),
        state,
        last_action: text(&row[4]).unwrap_or_default(),
        apply_cursor: text(&row[5]).map(Cursor),
        revert_cursor: text(&row[6]).map(Cursor),
        revert_scenario: row[7].as_i64(),
        batch_size: row[8].as_i64(),
        rows_applied: int(&row[9]),
        rows_reverted: int(&row[10]),
        batches: int(&row[11]),
        started_at: timestamp(&row[12]),
        finished_at: timestamp(&row[13]),
        updated_at: timestamp(&row[14]),
        last_run_id: text(&row[15]),
        last_error: text(&row[16]),
    })
}

pub fn entries(session: &mut dyn Session) -> Result<Vec<Entry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM backfill_migrations ORDER BY version");
    let rows = session
        .query(&sql, &[])
        .map_err(|e| ledger_error("backfill_migrations", e))?;
    rows.iter().map(|r| parse_entry(r)).collect()
}

pub fn entry(session: &mut dyn Session, version: i64) -> Result<Option<Entry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM backfill_migrations WHERE version = ?");
    let rows = session
        .query(&sql, &[Value::Int(version)])
        .map_err(|e| ledger_error("backfill_migrations", e))?;
    rows.first().map(|r| parse_entry(r)).transpose()
}

/// What a run start does to the migration's ledger row.
pub struct Start<'a> {
    pub version: i64,
    pub name: &'a str,
    pub checksum: &'a str,
    pub action: Action,
    pub run_id: &'a str,
    /// Start from the beginning (reset the cursor for this direction) rather than resume.
    pub fresh: bool,
    pub scenario: Option<i64>,
    /// The row as the caller read it: the start is a compare-and-set on it, so a runner that decided
    /// from a stale read (another runner moved on meanwhile) starts nothing.
    pub seen: Option<&'a Entry>,
}

/// Appends `col = ?` (or `col IS NULL`) to a WHERE clause.
fn same(sql: &mut String, params: &mut Vec<Value>, col: &str, v: Option<&str>) {
    match v {
        Some(v) => {
            sql.push_str(&format!(" AND {col} = ?"));
            params.push(v.into());
        }
        None => sql.push_str(&format!(" AND {col} IS NULL")),
    }
}

fn raced(version: i64) -> Error {
    Error::Busy(format!(
        "another runner started V{version} at the same moment; this one did nothing; rerun to check that it finished"
    ))
}

/// Marks a migration `running`/`reverting` (creating its row on first use). Autocommit: the state
/// must be visible even if the first batch never commits.
pub fn start(session: &mut dyn Session, s: &Start) -> Result<()> {
    let (state, cursor_col) = match s.action {
        Action::Revert => (State::Reverting, "revert_cursor"),
        _ => (State::Running, "apply_cursor"),
    };
    let now = Value::Timestamp(now());
    let result = if s.seen.is_none() {
        session.execute(
            "INSERT INTO backfill_migrations (version, name, checksum, state, last_action, rows_applied, rows_reverted, \
             batches, started_at, updated_at, last_run_id) VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?)",
            &[
                Value::Int(s.version),
                s.name.into(),
                s.checksum.into(),
                state.as_str().into(),
                s.action.as_str().into(),
                now.clone(),
                now,
                s.run_id.into(),
            ],
        )
    } else {
        // Counts stay true across partial reverts: rows_applied - rows_reverted is what is in place, and
        // a fresh apply starts from that.
        let reset = match (s.fresh, s.action) {
            (true, Action::Apply) => format!(
                ", {cursor_col} = NULL, rows_applied = rows_applied - rows_reverted, rows_reverted = 0, batches = 0, started_at = ?"
            ),
            (true, _) => format!(", {cursor_col} = NULL"),
            (false, _) => String::new(),
        };
        let mut sql = format!(
            "UPDATE backfill_migrations SET state = ?, last_action = ?, revert_scenario = ?, finished_at = NULL, \
             last_error = NULL, updated_at = ?, last_run_id = ?{reset} WHERE version = ?"
        );
        let mut params = vec![
            state.as_str().into(),
            s.action.as_str().into(),
            s.scenario.into(),
            now.clone(),
            s.run_id.into(),
        ];
        if s.fresh && s.action == Action::Apply {
            params.push(now);
        }
        params.push(Value::Int(s.version));
        if let Some(seen) = s.seen {
            same(
                &mut sql,
                &mut params,
                "last_run_id",
                seen.last_run_id.as_deref(),
            );
            same(&mut sql, &mut params, "state", Some(seen.state.as_str()));
            let cursor = |c: &Option<Cursor>| c.as_ref().map(|c| c.0.clone());
            same(
                &mut sql,
                &mut params,
                "apply_cursor",
                cursor(&seen.apply_cursor).as_deref(),
            );
            same(
                &mut sql,
                &mut params,
                "revert_cursor",
                cursor(&seen.revert_cursor).as_deref(),
            );
        }
        crate::retry::conflicts(|| session.execute(&sql, &params))
    };
    match result {
        Ok(1) => return Ok(()),
        Ok(_) => return Err(raced(s.version)),
        // Our INSERT lost to another runner's (a duplicate key) or a certification conflict.
        Err(_) if s.seen.is_none() && matches!(entry(session, s.version), Ok(Some(_))) => {
            return Err(raced(s.version))
        }
        Err(_) => {}
    }
    result.map(|_| ()).map_err(|e| {
        let message = format!("recording the start in the ledger failed: {e}");
        if e.is_config() {
            Error::Usage(message)
        } else {
            Error::Runtime(message)
        }
    })
}

fn cursor_column(action: Action) -> &'static str {
    match action {
        Action::Revert => "revert_cursor",
        _ => "apply_cursor",
    }
}

/// The fence: the first statement of every batch transaction. A compare-and-set on (migration, owning
/// run, the cursor the batch starts from) that locks the checkpoint row, so a second writer waits (or,
/// on Galera, fails certification) before it writes anything. `false`: another runner took the
/// migration over or moved its cursor; the batch must roll back.
pub fn claim(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: &str,
    from: Option<&Cursor>,
) -> crate::db::DbResult<bool> {
    let mut sql =
        "UPDATE backfill_migrations SET batches = batches WHERE version = ? AND last_run_id = ?"
            .to_string();
    let mut params = vec![Value::Int(version), run_id.into()];
    same(
        &mut sql,
        &mut params,
        cursor_column(action),
        from.map(|c| c.0.as_str()),
    );
    Ok(session.execute(&sql, &params)? == 1)
}

/// Records one batch's progress. Must run inside the batch's transaction, after `claim`.
pub fn checkpoint(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: &str,
    cursor: Option<&Cursor>,
    rows: u64,
    batch_size: u64,
) -> crate::db::DbResult<()> {
    let cursor_col = cursor_column(action);
    let rows_col = match action {
        Action::Revert => "rows_reverted",
        _ => "rows_applied",
    };
    let keep_cursor = if cursor.is_some() { "?" } else { cursor_col };
    let sql = format!(
        "UPDATE backfill_migrations SET {cursor_col} = {keep_cursor}, {rows_col} = {rows_col} + ?, batches = batches + 1, \
         batch_size = ?, updated_at = ? WHERE version = ? AND last_run_id = ?"
    );
    let mut params = Vec::new();
    if let Some(c) = cursor {
        params.push(Value::Text(c.0.clone()));
    }
    params.extend([
        Value::Int(rows as i64),
        Value::Int(batch_size as i64),
        Value::Timestamp(now()),
        Value::Int(version),
        run_id.into(),
    ]);
    session.execute(&sql, &params).map(|_| ())
}

/// Sets the final state of a migration (and its error, if any). With `run_id`, only while that run
/// still owns the migration: a runner that was overtaken must not overwrite its successor's state.
pub fn finish(
    session: &mut dyn Session,
    version: i64,
    run_id: Option<&str>,
    state: State,
    error: Option<&str>,
) -> crate::db::DbResult<()> {
    let finished = if matches!(state, State::Applied | State::Reverted) {
        Value::Timestamp(now())
    } else {
        Value::Null
    };
    let mut sql = "UPDATE backfill_migrations SET state = ?, finished_at = ?, last_error = ?, updated_at = ? WHERE version = ?".to_string();
    let mut params = vec![
        state.as_str().into(),
        finished,
        error.into(),
        Value::Timestamp(now()),
        Value::Int(version),
    ];
    if let Some(run) = run_id {
        same(&mut sql, &mut params, "last_run_id", Some(run));
    }
    crate::retry::conflicts(|| session.execute(&sql, &params)).map(|_| ())
}

pub fn set_checksum(
    session: &mut dyn Session,
    version: i64,
    checksum: &str,
) -> crate::db::DbResult<()> {
    session
        .execute(
            "UPDATE backfill_migrations SET checksum = ?, updated_at = ? WHERE version = ?",
            &[
                checksum.into(),
                Value::Timestamp(now()),
                Value::Int(version),
            ],
        )
        .map(|_| ())
}

/// Whether `backfill forget` dropped this migration's undo journal (it is irreversible since).
pub fn forgotten(session: &mut dyn Session, version: i64) -> Result<bool> {
    let n = session
        .query_scalar(
            "SELECT COUNT(*) FROM backfill_runs WHERE version = ? AND action = 'forget' AND state = 'succeeded'",
            &[Value::Int(version)],
        )
        .map_err(|e| ledger_error("backfill_runs", e))?;
    Ok(n.as_i64().unwrap_or(0) > 0)
}

/// One row of `backfill_runs`.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run_id: String,
    pub version: Option<i64>,
    pub action: String,
    pub state: String,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub operator: String,
    pub host: String,
    pub tool_version: String,
    pub checksum: Option<String>,
    /// JSON text, secrets redacted.
    pub arguments: String,
    /// JSON text of the plan, when the run computed one.
    pub plan_summary: Option<String>,
    pub row_count: i64,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

pub fn insert_run(session: &mut dyn Session, run: &Run) -> crate::db::DbResult<()> {
    session
        .execute(
            "INSERT INTO backfill_runs (run_id, version, action, state, started_at, finished_at, operator_name, host, \
             tool_version, checksum, arguments, plan_summary, row_count, outcome, error_message) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                run.run_id.as_str().into(),
                run.version.into(),
                run.action.as_str().into(),
                run.state.as_str().into(),
                run.started_at.map_or(Value::Null, Value::Timestamp),
                run.finished_at.map_or(Value::Null, Value::Timestamp),
                run.operator.as_str().into(),
                run.host.as_str().into(),
                run.tool_version.as_str().into(),
                run.checksum.clone().into(),
                run.arguments.as_str().into(),
                run.plan_summary.clone().into(),
                Value::Int(run.row_count),
                run.outcome.clone().into(),
                run.error.clone().into(),
            ],
        )
        .map(|_| ())
}

/// Adds a batch's rows to its run. Inside the batch transaction, so the audit count is exact too.
pub fn add_run_rows(session: &mut dyn Session, run_id: &str, rows: u64) -> crate::db::DbResult<()> {
    session
        .execute(
            "UPDATE backfill_runs SET row_count = row_count + ? WHERE run_id = ?",
            &[Value::Int(rows as i64), run_id.into()],
        )
        .map(|_| ())
}

pub fn finish_run(
    session: &mut dyn Session,
    run_id: &str,
    state: &str,
    outcome: Option<&str>,
    error: Option<&str>,
    plan_summary: Option<&str>,
) -> crate::db::DbResult<()> {
    session
        .execute(
            "UPDATE backfill_runs SET state = ?, finished_at = ?, outcome = ?, error_message = ?, \
             plan_summary = COALESCE(?, plan_summary) WHERE run_id = ?",
            &[
                state.into(),
                Value::Timestamp(now()),
                outcome.into(),
                error.into(),
                plan_summary.into(),
                run_id.into(),
            ],
        )
        .map(|_| ())
}

/// Marks runs left `running` by a process that died (the caller holds the lock, so none is alive).
pub fn abandon_dead_runs(
    session: &mut dyn Session,
    version: i64,
    by_run: &str,
) -> crate::db::DbResult<u64> {
    session.execute(
        "UPDATE backfill_runs SET state = 'abandoned', finished_at = ?, outcome = ? \
         WHERE version = ? AND state = 'running' AND action IN ('apply', 'revert') AND run_id <> ?",
        &[
            Value::Timestamp(now()),
            format!("the process died mid-run; resumed from the last checkpoint by run {by_run}")
                .into(),
            Value::Int(version),
            by_run.into(),
        ],
    )
}

const RUN_COLUMNS: &str =
    "run_id, version, action, state, started_at, finished_at, operator_name, host, tool_version, \
    checksum, arguments, plan_summary, row_count, outcome, error_message";

pub fn runs(
    session: &mut dyn Session,
    version: Option<i64>,
    since: Option<NaiveDateTime>,
) -> Result<Vec<Run>> {
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM backfill_runs WHERE 1 = 1");
    let mut params = Vec::new();
    if let Some(v) = version {
        sql.push_str(" AND version = ?");
        params.push(Value::Int(v));
    }
    if let Some(t) = since {
        sql.push_str(" AND started_at >= ?");
        params.push(Value::Timestamp(t));
    }
    sql.push_str(" ORDER BY started_at, run_id");
    let rows = session
        .query(&sql, &params)
        .map_err(|e| ledger_error("backfill_runs", e))?;
    Ok(rows
        .iter()
        .map(|r| Run {
            run_id: text(&r[0]).unwrap_or_default(),
            version: r[1].as_i64(),
            action: text(&r[2]).unwrap_or_default(),
            state: text(&r[3]).unwrap_or_default(),
            started_at: timestamp(&r[4]),
            finished_at: timestamp(&r[5]),
            operator: text(&r[6]).unwrap_or_default(),
            host: text(&r[7]).unwrap_or_default(),
            tool_version: text(&r[8]).unwrap_or_default(),
            checksum: text(&r[9]),
            arguments: text(&r[10]).unwrap_or_default(),
            plan_summary: text(&r[11]),
            row_count: int(&r[12]),
            outcome: text(&r[13]),
            error: text(&r[14]),
        })
        .collect())
}
