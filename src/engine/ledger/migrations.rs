//! `backfill_migrations`: one row per version ever started, its state, cursors and counts.

use super::runs::{finish_run, RunEnd};
use super::{cursor_column, int, ledger_error, now, parsed, same, schema_version, text, timestamp};
use super::{in_transaction, Action, RunKey, RunState, State, Status};
use crate::db::{Session, Value};
use crate::error::{Error, Result};
use crate::kit::migration::Cursor;
use chrono::NaiveDateTime;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Entry {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub state: State,
    pub last_action: Action,
    pub apply_cursor: Option<Cursor>,
    pub(crate) revert_cursor: Option<Cursor>,
    pub(crate) revert_scenario: Option<i64>,
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
    pub(crate) fn live_rows(&self) -> i64 {
        self.rows_applied - self.rows_reverted
    }

    /// Where the row stands, for [`super::transition`].
    pub(crate) fn status(&self) -> Status {
        Status {
            state: self.state,
            last: self.last_action,
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
            "ledger row for version {version} has unknown state `{bad}` (expected running, applied, failed, reverting, reverted, cancelled or halted); it was edited by hand or written by another backfill version: set backfill_migrations.state by hand, then run `backfill verify`"
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

pub(crate) fn entries(session: &mut dyn Session) -> Result<Vec<Entry>> {
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

pub(crate) fn entry(session: &mut dyn Session, version: i64) -> Result<Option<Entry>> {
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

/// What a run start does to the migration's ledger row.
pub(crate) struct Start<'a> {
    pub version: i64,
    pub name: &'a str,
    pub checksum: &'a str,
    pub action: Action,
    /// What [`super::transition`] made of the row: `running` or `reverting`.
    pub state: State,
    pub run_id: &'a str,
    /// Start from the beginning (reset the cursor for this direction) rather than resume.
    pub fresh: bool,
    pub scenario: Option<i64>,
    /// The row as the caller read it: the start is a compare-and-set on it, so a runner that decided
    /// from a stale read (another runner moved on meanwhile) starts nothing.
    pub seen: Option<&'a Entry>,
}

fn raced(version: i64) -> Error {
    Error::Busy(format!(
        "another runner started V{version} at the same moment; this one did nothing; rerun to check that it finished"
    ))
}

/// Marks a migration `running`/`reverting` (creating its row on first use). Autocommit: the state
/// must be visible even if the first batch never commits.
pub(crate) fn start(session: &mut dyn Session, s: &Start) -> Result<()> {
    let result = match s.seen {
        None => insert_start(session, s),
        Some(seen) => update_start(session, s, seen),
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

/// The first start of a migration: its row.
fn insert_start(session: &mut dyn Session, s: &Start) -> crate::db::DbResult<u64> {
    let now = Value::Timestamp(now());
    session.execute(
        "INSERT INTO backfill_migrations (version, name, checksum, state, last_action, rows_applied, rows_reverted, \
         batches, started_at, updated_at, last_run_id) VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?)",
        &[
            Value::Int(s.version),
            s.name.into(),
            s.checksum.into(),
            s.state.as_str().into(),
            s.action.as_str().into(),
            now.clone(),
            now,
            s.run_id.into(),
        ],
    )
}

/// A later start: a compare-and-set on the row as `seen`.
fn update_start(session: &mut dyn Session, s: &Start, seen: &Entry) -> crate::db::DbResult<u64> {
    let cursor_col = cursor_column(s.action);
    let now = Value::Timestamp(now());
    // Counts stay true across partial reverts: rows_applied - rows_reverted is what is in place, and
    // a fresh apply starts from that.
    let reset = match (s.fresh, s.action) {
        // The code that runs now is what the row vouches for: a migration edited while reverted
        // (no drift then) would otherwise look drifted once applied again.
        (true, Action::Apply) => format!(
            ", {cursor_col} = NULL, rows_applied = rows_applied - rows_reverted, rows_reverted = 0, batches = 0, started_at = ?, checksum = ?"
        ),
        (true, _) => format!(", {cursor_col} = NULL"),
        (false, _) => String::new(),
    };
    let mut sql = format!(
        "UPDATE backfill_migrations SET state = ?, last_action = ?, revert_scenario = ?, finished_at = NULL, \
         last_error = NULL, updated_at = ?, last_run_id = ?{reset} WHERE version = ?"
    );
    let mut params = vec![
        s.state.as_str().into(),
        s.action.as_str().into(),
        s.scenario.into(),
        now.clone(),
        s.run_id.into(),
    ];
    if s.fresh && s.action == Action::Apply {
        params.push(now);
        params.push(s.checksum.into());
    }
    params.push(Value::Int(s.version));
    let (sql, params) = (&mut sql, &mut params);
    same(sql, params, "last_run_id", seen.last_run_id.as_deref());
    same(sql, params, "state", Some(seen.state.as_str()));
    let cursor = |c: &Option<Cursor>| c.as_ref().map(|c| c.0.clone());
    same(
        sql,
        params,
        "apply_cursor",
        cursor(&seen.apply_cursor).as_deref(),
    );
    same(
        sql,
        params,
        "revert_cursor",
        cursor(&seen.revert_cursor).as_deref(),
    );
    crate::engine::retry::conflicts(|| session.execute(sql, params))
}

/// The fence: the first statement of every batch transaction. A compare-and-set on (migration, owning
/// run, the cursor the batch starts from) that locks the checkpoint row, so a second writer waits (or,
/// on Galera, fails certification) before it writes anything. `false`: another runner took the
/// migration over or moved its cursor; the batch must roll back.
pub(crate) fn claim(
    session: &mut dyn Session,
    key: RunKey,
    from: Option<&Cursor>,
) -> crate::db::DbResult<bool> {
    let RunKey {
        version,
        action,
        run: run_id,
    } = key;
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
pub(crate) fn checkpoint(
    session: &mut dyn Session,
    key: RunKey,
    cursor: Option<&Cursor>,
    rows: u64,
    batch_size: u64,
) -> crate::db::DbResult<()> {
    let RunKey {
        version,
        action,
        run: run_id,
    } = key;
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
pub(crate) fn finish(
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
pub(crate) struct Ending<'a> {
    /// The migration's new state; `None` leaves the ledger row alone (it is another run's now).
    pub state: Option<State>,
    pub(crate) run_state: RunState,
    pub outcome: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl<'a> Ending<'a> {
    /// What the run's audit row records of it.
    pub(crate) fn run_end(&self) -> RunEnd<'a> {
        RunEnd {
            state: self.run_state,
            outcome: self.outcome,
            error: self.error,
            plan_summary: None,
        }
    }
}

/// Records the end of a run: the migration's state and the run's audit row in one transaction (and
/// retried whole on a conflict), so no kill between them leaves an applied migration whose run still
/// says `running`.
pub(crate) fn conclude(
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
            finish_run(s, run_id, &end.run_end())?;
            Ok(Some(()))
        })
    })
    .map(|_| ())
}

/// The fence on the migration row, inside a transaction: this run still owns the migration. Locks the
/// row until the transaction ends, so a runner starting meanwhile waits for us.
pub(super) fn own_migration(
    session: &mut dyn Session,
    version: i64,
    run_id: &str,
) -> crate::db::DbResult<bool> {
    Ok(session.execute(
        "UPDATE backfill_migrations SET batches = batches WHERE version = ? AND last_run_id = ?",
        &[Value::Int(version), run_id.into()],
    )? == 1)
}

pub(crate) fn set_checksum(
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
