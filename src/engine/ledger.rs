//! The ledger: `backfill_migrations` (one row per version ever started) and `backfill_runs` (append-only
//! audit). Portable SQL only; the schema itself comes from `schema/ledger/<dialect>/` via refinery.

use crate::db::{ErrorKind, Session, Value};
use crate::error::{Error, Result};
use crate::kit::migration::Cursor;
use chrono::{NaiveDateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The newest ledger schema version this binary knows (the highest `V<n>__` under `schema/ledger/`).
const LEDGER_SCHEMA: i64 = 6;

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

/// What a run ended as (or is): the `state` column of `backfill_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    /// Refused for safety (exit 5) before writing anything.
    Refused,
    /// Its process died; the next runner recorded it so.
    Abandoned,
    /// Stopped by SIGINT/SIGTERM after its last committed batch.
    Interrupted,
    /// Overtaken by another runner (fencing); its open batch rolled back.
    Stopped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Refused => "refused",
            RunState::Abandoned => "abandoned",
            RunState::Interrupted => "interrupted",
            RunState::Stopped => "stopped",
        }
    }
}

impl FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Refused,
            RunState::Abandoned,
            RunState::Interrupted,
            RunState::Stopped,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| s.to_string())
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [
            Action::Plan,
            Action::Apply,
            Action::Revert,
            Action::Repair,
            Action::Forget,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| s.to_string())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    pub last_action: Action,
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

/// The ledger schema version in the database; `None` when there is no ledger yet. A lost connection
/// or a refusal (a pooler that cannot run transactions) is an error, not "no ledger".
fn schema_version(session: &mut dyn Session) -> Result<Option<i64>> {
    match session.query_scalar("SELECT MAX(version) FROM backfill_schema_history", &[]) {
        Ok(v) => Ok(v.as_i64()),
        Err(e) if matches!(e.kind, ErrorKind::Query | ErrorKind::Timeout) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// True when the ledger tables exist at the schema version this binary expects.
pub fn is_current(session: &mut dyn Session) -> bool {
    schema_version(session).is_ok_and(|v| v == Some(LEDGER_SCHEMA))
}

/// Whether there is a ledger to read (read-only commands never create one: they must work on a hot
/// standby, and a refused or read-only look changes nothing).
pub fn readable(session: &mut dyn Session) -> Result<bool> {
    check_schema(session)?;
    Ok(schema_version(session)?.is_some())
}

/// For commands that only look: `status`, `verify`, `log`, `plan`. They never create a ledger (a
/// look must not leave an empty one where the app's tables are not, and must work on a hot standby);
/// they upgrade an older one when they can, and go on read-only with it where they may not write (a
/// standby, a SELECT-only CI user). Returns whether there is a ledger to read.
pub fn prepare_or_read(session: &mut dyn Session) -> Result<bool> {
    if check_schema(session)? {
        return Ok(true);
    }
    if schema_version(session)?.is_none() {
        check_place(session, false)?;
        return Ok(false);
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

/// For commands that only look: [`prepare_or_read`], then `read` the ledger if there is one; with
/// none (a standby before any run), what an empty ledger holds.
pub fn read_if_any<T: Default>(
    session: &mut dyn Session,
    read: impl FnOnce(&mut dyn Session) -> Result<T>,
) -> Result<T> {
    if prepare_or_read(session)? {
        read(session)
    } else {
        Ok(T::default())
    }
}

/// Where there is no ledger, refuses a schema that is not the app's (PostgreSQL): another schema of
/// this database holds the ledger (the connection's search_path misses the app's schema), or, to
/// create one (`creating`), this schema has none of the app's tables.
pub fn check_place(session: &mut dyn Session, creating: bool) -> Result<()> {
    let Some(place) = session.ledger_place()? else {
        return Ok(());
    };
    let here = place.describe();
    let how = "pass --schema, or set the search_path in the database URL (options=-csearch_path%3DSCHEMA) or DB_SEARCH_PATH in the .env";
    if let Some(other) = place.ledgers.first() {
        return Err(Error::Usage(format!(
            "no ledger in {here}, but schema {other} has one: the app's tables are there; {}",
            how.replace("--schema", &format!("--schema {other}"))
        )));
    }
    if creating && place.tables == 0 {
        return Err(Error::Usage(format!(
            "no ledger in {here}, and none of the app's tables are there: backfill keeps its ledger beside them; {how} with the app's schema"
        )));
    }
    Ok(())
}

/// A line for a look at a database without a ledger (`None` where a database is one schema).
pub fn no_ledger_note(session: &mut dyn Session) -> Result<Option<String>> {
    if schema_version(session)?.is_some() {
        return Ok(None);
    }
    Ok(session
        .ledger_place()?
        .map(|p| format!("no ledger in {}: nothing has run here yet", p.describe())))
}

/// `Ok(true)`: the ledger is current; `Ok(false)`: absent or older (create or upgrade it). A ledger
/// written by a newer backfill is refused (exit 3): this binary would misread it.
pub fn check_schema(session: &mut dyn Session) -> Result<bool> {
    match schema_version(session)? {
        Some(v) if v > LEDGER_SCHEMA => Err(Error::Ledger(format!(
            "the ledger schema is V{v}, newer than this binary knows (V{LEDGER_SCHEMA}): a newer backfill wrote it; run that version (or newer) of backfill"
        ))),
        Some(LEDGER_SCHEMA) => check_tables(session).map(|()| true),
        Some(_) | None => Ok(false),
    }
}

/// Every table a current ledger has. Refinery's history says they were made; a hand may have dropped
/// one since, and every command would then fail on it with an error that rerunning cannot fix.
const TABLES: [&str; 5] = [
    "backfill_migrations",
    "backfill_runs",
    "backfill_lease",
    "backfill_undo",
    "backfill_chunks",
];

/// A current ledger must have all its tables and the lease row; without that row no runner could ever
/// take the lock, and every runner would wait and report a busy lock forever.
fn check_tables(session: &mut dyn Session) -> Result<()> {
    let probes = TABLES.map(|t| format!("SELECT 1 FROM {t} WHERE 1 = 0"));
    let lease = format!(
        "SELECT COUNT(*) FROM backfill_lease WHERE name = 'runner' AND NOT EXISTS ({})",
        probes.join(" UNION ALL ")
    );
    match session.query_scalar(&lease, &[]) {
        Ok(n) if n.as_i64() == Some(0) => Err(Error::Ledger(
            "the ledger's lock row is missing from backfill_lease (deleted by hand?), so no runner could ever take the lock; restore it: INSERT INTO backfill_lease (name) VALUES ('runner')".into(),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind == crate::db::ErrorKind::Query => Err(missing_table(session, e)),
        // A locked or unreachable table is not damage: the command's own statement names it.
        Err(e) => {
            tracing::debug!("checking the ledger's tables failed: {e}");
            Ok(())
        }
    }
}

/// Names the first ledger table that cannot be read.
fn missing_table(session: &mut dyn Session, e: crate::db::DbError) -> Error {
    let missing = TABLES.into_iter().find(|t| {
        session
            .query(&format!("SELECT 1 FROM {t} WHERE 1 = 0"), &[])
            .is_err()
    });
    match missing {
        Some(t) => Error::Ledger(format!(
            "the ledger table {t} is missing (dropped by hand?); restore it from a backup, or recreate it empty: {}",
            session.ledger_ddl(t)
        )),
        None => ledger_error("backfill_lease", e),
    }
}

/// Creates or upgrades the ledger tables. The lock lives in them, so this cannot run under it: first
/// runs may race. Every statement is idempotent (IF NOT EXISTS, INSERT IGNORE), and a runner that
/// loses the race on refinery's history table (a duplicate key, a certification conflict, PostgreSQL's
/// catalog unique index) finds the schema current when it looks again.
pub fn migrate(session: &mut dyn Session) -> Result<()> {
    if schema_version(session)?.is_none() {
        check_place(session, true)?;
    }
    let mut n = 1;
    loop {
        match session.migrate_ledger() {
            Ok(()) => return Ok(()),
            Err(_) if is_current(session) => return Ok(()),
            Err(e) if n < crate::engine::retry::ATTEMPTS && e.kind != crate::db::ErrorKind::Config => {
                tracing::debug!("creating the ledger raced with another runner, retrying: {e}");
                std::thread::sleep(crate::engine::retry::pause(n));
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
        last_action: parsed(version, "last_action", text(&row[4]).unwrap_or_default())?,
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

/// A ledger column's text as its enum; anything else is damage (exit 3) with the fix.
fn parsed<T: FromStr<Err = String>>(version: i64, column: &str, raw: String) -> Result<T> {
    raw.parse().map_err(|bad| {
        Error::Ledger(format!(
            "the ledger row for version {version} has `{bad}` in {column}, which this backfill does not know; it was edited by hand or written by another version: fix it by hand, then run `backfill verify`"
        ))
    })
}

pub fn entries(session: &mut dyn Session) -> Result<Vec<Entry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM backfill_migrations ORDER BY version");
    let rows = session
        .query(&sql, &[])
        .map_err(|e| ledger_error("backfill_migrations", e))?;
    let mut entries = rows
        .iter()
        .map(|r| parse_entry(r))
        .collect::<Result<Vec<_>>>()?;
    add_chunk_progress(session, &mut entries)?;
    Ok(entries)
}

pub fn entry(session: &mut dyn Session, version: i64) -> Result<Option<Entry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM backfill_migrations WHERE version = ?");
    let rows = session
        .query(&sql, &[Value::Int(version)])
        .map_err(|e| ledger_error("backfill_migrations", e))?;
    let mut entry: Vec<Entry> = rows
        .first()
        .map(|r| parse_entry(r))
        .transpose()?
        .into_iter()
        .collect();
    add_chunk_progress(session, &mut entry)?;
    Ok(entry.pop())
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
        crate::engine::retry::conflicts(|| session.execute(&sql, &params))
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
    session.execute(&sql, &params).map(|_| ())
}

/// How a run ended, for [`conclude`].
pub struct Ending<'a> {
    /// The migration's new state; `None` leaves the ledger row alone (it is another run's now).
    pub state: Option<State>,
    pub run_state: RunState,
    pub outcome: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Records the end of a run: the migration's state and the run's audit row in one transaction (and
/// retried whole on a conflict), so no kill between them leaves an applied migration whose run still
/// says `running`.
pub fn conclude(
    session: &mut dyn Session,
    version: i64,
    run_id: &str,
    end: &Ending,
) -> crate::db::DbResult<()> {
    crate::engine::retry::conflicts(|| {
        in_transaction(session, |s| {
            if let Some(state) = end.state {
                finish(s, version, Some(run_id), state, end.error)?;
            }
            finish_run(s, run_id, end.run_state, end.outcome, end.error, None)?;
            Ok(Some(()))
        })
    })
    .map(|_| ())
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
    pub action: Action,
    pub state: RunState,
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
    state: RunState,
    outcome: Option<&str>,
    error: Option<&str>,
    plan_summary: Option<&str>,
) -> crate::db::DbResult<()> {
    session
        .execute(
            "UPDATE backfill_runs SET state = ?, finished_at = ?, outcome = ?, error_message = ?, \
             plan_summary = COALESCE(?, plan_summary) WHERE run_id = ?",
            &[
                state.as_str().into(),
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
            format!("it ended without recording how (its process died, or lost the database mid-run); resumed from the last checkpoint by run {by_run}")
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
    rows.iter()
        .map(|r| {
            let version = r[1].as_i64();
            let at = version.unwrap_or(0);
            Ok(Run {
                run_id: text(&r[0]).unwrap_or_default(),
                version,
                action: parsed(at, "backfill_runs.action", text(&r[2]).unwrap_or_default())?,
                state: parsed(at, "backfill_runs.state", text(&r[3]).unwrap_or_default())?,
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
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Chunks of a parallel run (`--jobs N`, ledger schema V4: `backfill_chunks`).
//
// A parallel run splits its key range into chunks; each worker takes a pending chunk with a
// compare-and-set and runs batches inside it. Every batch is fenced on its chunk row (owning run, the
// chunk's cursor) and commits its writes with the chunk's checkpoint, so the workers never wait on one
// hot row. A later run takes the chunks over in one statement (the old run's workers then fail their
// next fence), and the finished run folds the chunks' counts into `backfill_migrations` and into the
// audit rows of the runs that wrote them, then deletes them, in one transaction.

/// One key range of a parallel run, named by its first key (chunks never overlap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// First key of the range (inclusive).
    pub lo: i64,
    /// Last key of the range (inclusive); a split lowers it, so a worker reads it in each batch.
    pub hi: i64,
    /// The last key done in this chunk; `None` before its first batch.
    pub cursor: Option<i64>,
    /// `pending` (no worker), `running` (one worker of its owner run), `done`.
    pub state: String,
    pub rows: i64,
    pub batches: i64,
}

impl Chunk {
    pub fn is_done(&self) -> bool {
        self.state == CHUNK_DONE
    }
}

const CHUNK_PENDING: &str = "pending";
const CHUNK_RUNNING: &str = "running";
const CHUNK_DONE: &str = "done";

const CHUNK_COLUMNS: &str = "lo_key, hi_key, cursor_key, state, row_count, batches";

fn parse_chunk(r: &[Value]) -> Chunk {
    Chunk {
        lo: int(&r[0]),
        hi: int(&r[1]),
        cursor: r[2].as_i64(),
        state: text(&r[3]).unwrap_or_default(),
        rows: int(&r[4]),
        batches: int(&r[5]),
    }
}

/// The chunks of `version`'s `action`, in key order; empty when no parallel run left any.
pub fn chunks(
    session: &mut dyn Session,
    version: i64,
    action: Action,
) -> crate::db::DbResult<Vec<Chunk>> {
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM backfill_chunks WHERE version = ? AND action = ? ORDER BY lo_key"
    );
    let rows = session.query(&sql, &[Value::Int(version), action.as_str().into()])?;
    Ok(rows.iter().map(|r| parse_chunk(r)).collect())
}

/// Keys no chunk of `version`'s `action` covers, when chunks are left. A parallel run's chunks tile
/// the keys from just after the migration's cursor (unchanged while they exist) to the largest key
/// there can be, and splits keep them so: a hole means a chunk row was deleted, and its keys would
/// never be walked while the run still ended `applied`. Ledger damage (exit 3), with the fix.
pub fn chunk_gap(session: &mut dyn Session, version: i64, action: Action) -> Result<()> {
    let left = chunks(session, version, action).map_err(|e| ledger_error("backfill_chunks", e))?;
    if left.is_empty() {
        return Ok(());
    }
    let cursor = entry(session, version)?.and_then(|e| match action {
        Action::Revert => e.revert_cursor,
        _ => e.apply_cursor,
    });
    let mut next = match cursor {
        None => Some(i64::MIN),
        // A cursor that is not a key is named by the run itself.
        Some(c) => match c.id() {
            Some(id) => id.checked_add(1),
            None => return Ok(()),
        },
    };
    for c in &left {
        match next {
            Some(n) if c.lo > n => return Err(hole(version, action, n, c.lo - 1)),
            Some(n) if c.hi >= n => next = c.hi.checked_add(1),
            _ => {}
        }
    }
    match next {
        Some(n) => Err(hole(version, action, n, i64::MAX)),
        None => Ok(()),
    }
}

fn hole(version: i64, action: Action, lo: i64, hi: i64) -> Error {
    Error::Ledger(format!(
        "the ledger's chunks of V{version}'s {action} do not cover keys {lo} to {hi} (a backfill_chunks row was deleted?): those keys may never have been walked; put them back as a pending chunk, and the next `backfill {action} {version}` walks them: INSERT INTO backfill_chunks (version, action, lo_key, hi_key, cursor_key, state, owner_run, row_count, owner_rows, batches) VALUES ({version}, '{action}', {lo}, {hi}, NULL, 'pending', 'restored', 0, 0, 0)"
    ))
}

/// The fence on the migration row, inside a transaction: this run still owns the migration. Locks the
/// row until the transaction ends, so a runner starting meanwhile waits for us.
fn own_migration(
    session: &mut dyn Session,
    version: i64,
    run_id: &str,
) -> crate::db::DbResult<bool> {
    Ok(session.execute(
        "UPDATE backfill_migrations SET batches = batches WHERE version = ? AND last_run_id = ?",
        &[Value::Int(version), run_id.into()],
    )? == 1)
}

/// Runs `work` in one transaction, committing on `Ok(Some(_))` and rolling back otherwise.
fn in_transaction<T>(
    session: &mut dyn Session,
    work: impl FnOnce(&mut dyn Session) -> crate::db::DbResult<Option<T>>,
) -> crate::db::DbResult<Option<T>> {
    session.begin(false)?;
    match work(session) {
        Ok(Some(v)) => session.commit().map(|_| Some(v)),
        Ok(None) => session.rollback().map(|_| None),
        Err(e) => {
            let _ = session.rollback();
            Err(e)
        }
    }
}

/// How a run found the chunks of its action once it owned the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// Another runner took the migration over first: do nothing.
    Overtaken,
    /// An earlier parallel run's chunks, now this run's (resume them, whatever `--jobs`).
    TookOver,
    /// New chunks, from the given ranges.
    Created,
    /// No chunks: the plain batch loop.
    Single,
}

/// Settles the chunks of `version`'s `action` for a run that has just started it (`ledger::start`), in
/// one transaction fenced on the migration row (so never from a stale read: a runner that lost the
/// start touches no chunk):
/// - chunks of the other action (an abandoned parallel run): folded into the counts and dropped;
/// - chunks left by another run, and this run resumes: it takes them over, in one statement, so a
///   worker of the run it replaces fails its next fence and writes nothing more (what the replaced
///   runs wrote goes to their audit rows first);
/// - chunks left, and this run starts over (`fresh`): they are folded into the counts and dropped;
/// - then, with `ranges`, new chunks owned by this run.
pub fn prepare_chunks(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: &str,
    fresh: bool,
    ranges: Option<&[(i64, i64)]>,
) -> crate::db::DbResult<Prepared> {
    let prepared = in_transaction(session, |s| {
        if !own_migration(s, version, run_id)? {
            return Ok(Some(Prepared::Overtaken));
        }
        // Chunks of the other action are an abandoned parallel run's (this run owns the migration
        // now): count what they wrote and drop them.
        let other = match action {
            Action::Revert => Action::Apply,
            _ => Action::Revert,
        };
        let undone = fold_locked(s, version, other, None)?;
        if fresh && action == Action::Apply && undone.is_some_and(|f| f.rows > 0) {
            // `start` already turned what was reverted into fewer applied rows; the revert chunks
            // folded just now are more of the same, or a fresh apply would count them twice.
            s.execute(
                "UPDATE backfill_migrations SET rows_applied = rows_applied - rows_reverted, rows_reverted = 0 WHERE version = ?",
                &[Value::Int(version)],
            )?;
        }
        let lock = s.dialect().for_update();
        let left = s.query(
            &format!("SELECT lo_key FROM backfill_chunks WHERE version = ? AND action = ?{lock}"),
            &[Value::Int(version), action.as_str().into()],
        )?;
        if !left.is_empty() {
            if !fresh {
                settle_owner_rows(s, version, action, Runs::Except(run_id))?;
                s.execute(
                    &format!(
                        "UPDATE backfill_chunks SET owner_run = ?, state = '{CHUNK_PENDING}' \
                         WHERE version = ? AND action = ? AND state <> '{CHUNK_DONE}'"
                    ),
                    &[run_id.into(), Value::Int(version), action.as_str().into()],
                )?;
                return Ok(Some(Prepared::TookOver));
            }
            fold_locked(s, version, action, None)?;
        }
        let Some(ranges) = ranges.filter(|r| !r.is_empty()) else {
            return Ok(Some(Prepared::Single));
        };
        // One row per job: one statement.
        let mut sql = String::from(
            "INSERT INTO backfill_chunks (version, action, lo_key, hi_key, cursor_key, state, owner_run, \
             row_count, owner_rows, batches) VALUES ",
        );
        let mut params = Vec::with_capacity(ranges.len() * 5);
        for (i, (lo, hi)) in ranges.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?, ?, ?, ?, NULL, '{CHUNK_PENDING}', ?, 0, 0, 0)"
            ));
            params.extend([
                Value::Int(version),
                action.as_str().into(),
                Value::Int(*lo),
                Value::Int(*hi),
                run_id.into(),
            ]);
        }
        s.execute(&sql, &params)?;
        Ok(Some(Prepared::Created))
    })?;
    Ok(prepared.unwrap_or(Prepared::Overtaken))
}

/// Whose rows `settle_owner_rows` moves to the audit table.
#[derive(Clone, Copy)]
enum Runs<'a> {
    All,
    Except(&'a str),
    Only(&'a str),
}

/// A parallel run that stops early (failed, interrupted, overtaken) moves what it wrote to its own
/// audit row, so `backfill log` counts it now; its chunks stay for the run that resumes them.
pub fn settle_run_rows(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: &str,
) -> crate::db::DbResult<()> {
    in_transaction(session, |s| {
        settle_owner_rows(s, version, action, Runs::Only(run_id)).map(Some)
    })
    .map(|_| ())
}

/// Adds what other runs wrote in these chunks (`owner_rows`) to their audit rows and zeroes it, so each
/// run's `row_count` holds exactly its committed batches however it ended. Inside a transaction.
fn settle_owner_rows(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    runs: Runs,
) -> crate::db::DbResult<()> {
    let lock = session.dialect().for_update();
    let mut sql = "SELECT owner_run, owner_rows FROM backfill_chunks WHERE version = ? AND action = ? AND owner_rows <> 0"
        .to_string();
    let mut params = vec![Value::Int(version), action.as_str().into()];
    let only = match runs {
        Runs::All => "",
        Runs::Except(_) => " AND owner_run <> ?",
        Runs::Only(_) => " AND owner_run = ?",
    };
    if let Runs::Except(run) | Runs::Only(run) = runs {
        sql.push_str(only);
        params.push(run.into());
    }
    sql.push_str(lock);
    let mut per_run: std::collections::BTreeMap<String, i64> = Default::default();
    for r in session.query(&sql, &params)? {
        *per_run.entry(text(&r[0]).unwrap_or_default()).or_default() += int(&r[1]);
    }
    for (run, rows) in &per_run {
        session.execute(
            "UPDATE backfill_runs SET row_count = row_count + ? WHERE run_id = ?",
            &[Value::Int(*rows), run.as_str().into()],
        )?;
    }
    if !per_run.is_empty() {
        let sql = format!(
            "UPDATE backfill_chunks SET owner_rows = 0 WHERE version = ? AND action = ? AND owner_rows <> 0{only}"
        );
        session.execute(&sql, &params)?;
    }
    Ok(())
}

/// One worker takes the next pending chunk of its run (a compare-and-set; two workers never get the
/// same chunk). `None`: no pending chunk is left for this run.
pub fn claim_chunk(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: &str,
) -> crate::db::DbResult<Option<Chunk>> {
    let pick = format!(
        "SELECT {CHUNK_COLUMNS} FROM backfill_chunks WHERE version = ? AND action = ? AND owner_run = ? \
         AND state = '{CHUNK_PENDING}' ORDER BY lo_key LIMIT 1"
    );
    let take = format!(
        "UPDATE backfill_chunks SET state = '{CHUNK_RUNNING}' WHERE version = ? AND action = ? AND lo_key = ? \
         AND owner_run = ? AND state = '{CHUNK_PENDING}'"
    );
    loop {
        let rows = session.query(
            &pick,
            &[Value::Int(version), action.as_str().into(), run_id.into()],
        )?;
        let Some(mut chunk) = rows.first().map(|r| parse_chunk(r)) else {
            return Ok(None);
        };
        let params = [
            Value::Int(version),
            action.as_str().into(),
            Value::Int(chunk.lo),
            run_id.into(),
        ];
        if session.execute(&take, &params)? == 1 {
            chunk.state = CHUNK_RUNNING.into();
            return Ok(Some(chunk));
        }
        // Another worker took it between the look and the take: look again.
    }
}

/// The fence of a batch in a chunk: the first statement of its transaction. A compare-and-set on
/// (chunk, owning run, the cursor the batch starts from) that locks the chunk row, then the chunk's
/// last key as it is now (another worker of the run may have split the upper part off, which it
/// can only do while no batch holds the row). `None`: the run was taken over (or the chunk moved
/// on); the batch must roll back.
pub fn fence_chunk(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    lo: i64,
    run_id: &str,
    from: Option<i64>,
) -> crate::db::DbResult<Option<i64>> {
    let mut sql = format!(
        "UPDATE backfill_chunks SET batches = batches WHERE version = ? AND action = ? AND lo_key = ? \
         AND owner_run = ? AND state = '{CHUNK_RUNNING}'"
    );
    let mut params = vec![
        Value::Int(version),
        action.as_str().into(),
        Value::Int(lo),
        run_id.into(),
    ];
    match from {
        Some(c) => {
            sql.push_str(" AND cursor_key = ?");
            params.push(Value::Int(c));
        }
        None => sql.push_str(" AND cursor_key IS NULL"),
    }
    if session.execute(&sql, &params)? != 1 {
        return Ok(None);
    }
    Ok(session
        .query_scalar(
            "SELECT hi_key FROM backfill_chunks WHERE version = ? AND action = ? AND lo_key = ?",
            &[Value::Int(version), action.as_str().into(), Value::Int(lo)],
        )?
        .as_i64())
}

/// A batch's checkpoint in its chunk (inside the batch transaction, after `fence_chunk`): the last key
/// done, the rows written, and whether the chunk is finished. `cursor: None` keeps the cursor (a look
/// that found no key left).
#[allow(clippy::too_many_arguments)]
pub fn checkpoint_chunk(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    lo: i64,
    run_id: &str,
    cursor: Option<i64>,
    rows: u64,
    done: bool,
) -> crate::db::DbResult<()> {
    let state = if done { CHUNK_DONE } else { CHUNK_RUNNING };
    let (set_cursor, counted) = match cursor {
        Some(_) => ("cursor_key = ?, ", ", batches = batches + 1"),
        None => ("", ""),
    };
    let sql = format!(
        "UPDATE backfill_chunks SET {set_cursor}row_count = row_count + ?, owner_rows = owner_rows + ?, \
         state = '{state}'{counted} WHERE version = ? AND action = ? AND lo_key = ? AND owner_run = ?"
    );
    let mut params = Vec::new();
    if let Some(c) = cursor {
        params.push(Value::Int(c));
    }
    params.extend([
        Value::Int(rows as i64),
        Value::Int(rows as i64),
        Value::Int(version),
        action.as_str().into(),
        Value::Int(lo),
        run_id.into(),
    ]);
    session.execute(&sql, &params).map(|_| ())
}

/// Splits the upper part `[at, hi]` off this run's running chunk that starts at `lo` and ends at
/// `hi`, as a new running chunk for the calling worker: a compare-and-set on the chunk's last key and
/// on its cursor being below `at`, so a batch of its worker is never cut (the row is locked while a
/// batch runs, and a batch that committed past `at` makes the split fail). `None`: the chunk moved
/// on; look again.
pub fn split_chunk(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: &str,
    (lo, hi): (i64, i64),
    at: i64,
) -> crate::db::DbResult<Option<Chunk>> {
    if at <= lo || at > hi {
        return Ok(None);
    }
    in_transaction(session, |s| {
        let shrunk = s.execute(
            &format!(
                "UPDATE backfill_chunks SET hi_key = ? WHERE version = ? AND action = ? AND lo_key = ? \
                 AND owner_run = ? AND state = '{CHUNK_RUNNING}' AND hi_key = ? \
                 AND (cursor_key IS NULL OR cursor_key < ?)"
            ),
            &[
                Value::Int(at - 1),
                Value::Int(version),
                action.as_str().into(),
                Value::Int(lo),
                run_id.into(),
                Value::Int(hi),
                Value::Int(at),
            ],
        )?;
        if shrunk != 1 {
            return Ok(None);
        }
        s.execute(
            &format!(
                "INSERT INTO backfill_chunks (version, action, lo_key, hi_key, cursor_key, state, owner_run, \
                 row_count, owner_rows, batches) VALUES (?, ?, ?, ?, NULL, '{CHUNK_RUNNING}', ?, 0, 0, 0)"
            ),
            &[
                Value::Int(version),
                action.as_str().into(),
                Value::Int(at),
                Value::Int(hi),
                run_id.into(),
            ],
        )?;
        Ok(Some(Chunk {
            lo: at,
            hi,
            cursor: None,
            state: CHUNK_RUNNING.into(),
            rows: 0,
            batches: 0,
        }))
    })
}

/// This run's running chunks, for a worker that found none pending and looks for one to split.
pub fn running_chunks(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: &str,
) -> crate::db::DbResult<Vec<Chunk>> {
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM backfill_chunks WHERE version = ? AND action = ? AND owner_run = ? \
         AND state = '{CHUNK_RUNNING}' ORDER BY lo_key"
    );
    let rows = session.query(
        &sql,
        &[Value::Int(version), action.as_str().into(), run_id.into()],
    )?;
    Ok(rows.iter().map(|r| parse_chunk(r)).collect())
}

/// What folding a parallel run's chunks into the ledger found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    /// Rows of every chunk (every run that worked on them).
    pub rows: i64,
    pub batches: i64,
    /// Rows written by the folding run itself.
    pub own_rows: i64,
}

/// Ends the chunks of `version`'s `action`, in one transaction: each run's rows go to its audit row,
/// the chunks' totals to `backfill_migrations`, and the chunks are deleted.
///
/// With `run_id` it is the end of that run's parallel work: fenced on the migration row (`None` when
/// another runner took over), refused while a chunk is unfinished, and the migration's cursor becomes
/// the last key done. Without, it settles what an abandoned parallel run left before another kind of
/// run starts (the cursors stay: the new run resets its own).
pub fn fold_chunks(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: Option<&str>,
) -> crate::db::DbResult<Option<Folded>> {
    in_transaction(session, |s| {
        if let Some(run) = run_id {
            if !own_migration(s, version, run)? {
                return Ok(None);
            }
        }
        fold_locked(s, version, action, run_id)
    })
}

/// The fold itself, inside the caller's transaction; `None` (with `run_id`) while a chunk is
/// unfinished.
fn fold_locked(
    s: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: Option<&str>,
) -> crate::db::DbResult<Option<Folded>> {
    let lock = s.dialect().for_update();
    let rows = s.query(
        &format!(
            "SELECT owner_run, owner_rows, row_count, batches, cursor_key, state FROM backfill_chunks \
             WHERE version = ? AND action = ?{lock}"
        ),
        &[Value::Int(version), action.as_str().into()],
    )?;
    // The end of a run: every chunk done. None at all means another runner folded them (it took the
    // migration over and started afresh): not ours to finish.
    if run_id.is_some()
        && (rows.is_empty()
            || rows
                .iter()
                .any(|r| text(&r[5]).as_deref() != Some(CHUNK_DONE)))
    {
        return Ok(None);
    }
    if rows.is_empty() {
        return Ok(Some(Folded::default()));
    }
    let mut folded = Folded::default();
    let mut last: Option<i64> = None;
    for r in &rows {
        if run_id.is_some_and(|run| text(&r[0]).as_deref() == Some(run)) {
            folded.own_rows += int(&r[1]);
        }
        folded.rows += int(&r[2]);
        folded.batches += int(&r[3]);
        last = last.max(r[4].as_i64());
    }
    settle_owner_rows(s, version, action, Runs::All)?;
    let rows_col = match action {
        Action::Revert => "rows_reverted",
        _ => "rows_applied",
    };
    let mut sql = format!(
        "UPDATE backfill_migrations SET {rows_col} = {rows_col} + ?, batches = batches + ?, updated_at = ?"
    );
    let mut params = vec![
        Value::Int(folded.rows),
        Value::Int(folded.batches),
        Value::Timestamp(now()),
    ];
    if let (Some(_), Some(key)) = (run_id, last) {
        sql.push_str(&format!(", {} = ?", cursor_column(action)));
        params.push(Value::Text(key.to_string()));
    }
    sql.push_str(" WHERE version = ?");
    params.push(Value::Int(version));
    s.execute(&sql, &params)?;
    s.execute(
        "DELETE FROM backfill_chunks WHERE version = ? AND action = ?",
        &[Value::Int(version), action.as_str().into()],
    )?;
    Ok(Some(folded))
}

/// Adds the rows and batches of unfinished parallel runs (still in their chunks) to the entries, so
/// `status` and `verify` count what is already written. Nothing on a ledger older than V4.
fn add_chunk_progress(session: &mut dyn Session, entries: &mut [Entry]) -> Result<()> {
    if entries.is_empty() || schema_version(session)?.is_none_or(|v| v < 4) {
        return Ok(());
    }
    let rows = session
        .query(
            "SELECT version, action, SUM(row_count), SUM(batches) FROM backfill_chunks GROUP BY version, action",
            &[],
        )
        .map_err(|e| ledger_error("backfill_chunks", e))?;
    for r in rows {
        let Some(e) = entries.iter_mut().find(|e| e.version == int(&r[0])) else {
            continue;
        };
        let (rows, batches) = (int(&r[2]), int(&r[3]));
        if text(&r[1]).as_deref() == Some(Action::Revert.as_str()) {
            e.rows_reverted += rows;
        } else {
            e.rows_applied += rows;
        }
        e.batches += batches;
    }
    Ok(())
}
