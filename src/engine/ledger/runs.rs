//! `backfill_runs`: the append-only audit, one row per command that ran (or was refused).

use super::{int, ledger_error, now, parsed, text, timestamp, Action, RunState};
use crate::db::{Session, Value};
use crate::error::Result;
use chrono::NaiveDateTime;
use serde::Serialize;

/// Whether `backfill forget` dropped this migration's undo journal (it is irreversible since).
pub(crate) fn forgotten(session: &mut dyn Session, version: i64) -> Result<bool> {
    let n = session
        .query_scalar(
            "SELECT COUNT(*) FROM backfill_runs WHERE version = ? AND action = ? AND state = ?",
            &[
                Value::Int(version),
                Action::Forget.as_str().into(),
                RunState::Succeeded.as_str().into(),
            ],
        )
        .map_err(|e| ledger_error("backfill_runs", e))?;
    Ok(n.as_i64().unwrap_or(0) > 0)
}

/// One row of `backfill_runs`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    pub run_id: String,
    pub version: Option<i64>,
    pub action: Action,
    pub state: RunState,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub operator: String,
    pub host: String,
    pub(crate) tool_version: String,
    pub checksum: Option<String>,
    /// JSON text, secrets redacted.
    pub arguments: String,
    /// JSON text of the plan, when the run computed one.
    pub plan_summary: Option<String>,
    pub row_count: i64,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

pub(crate) fn insert_run(session: &mut dyn Session, run: &Run) -> crate::db::DbResult<()> {
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
pub(crate) fn add_run_rows(
    session: &mut dyn Session,
    run_id: &str,
    rows: u64,
) -> crate::db::DbResult<()> {
    session
        .execute(
            "UPDATE backfill_runs SET row_count = row_count + ? WHERE run_id = ?",
            &[Value::Int(rows as i64), run_id.into()],
        )
        .map(|_| ())
}

/// How a run ended, for [`finish_run`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunEnd<'a> {
    pub state: RunState,
    pub outcome: Option<&'a str>,
    pub error: Option<&'a str>,
    /// JSON text of the plan, when the run computed one; `None` keeps what the row has.
    pub plan_summary: Option<&'a str>,
}

pub(crate) fn finish_run(
    session: &mut dyn Session,
    run_id: &str,
    end: &RunEnd,
) -> crate::db::DbResult<()> {
    let RunEnd {
        state,
        outcome,
        error,
        plan_summary,
    } = *end;
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
pub(crate) fn abandon_dead_runs(
    session: &mut dyn Session,
    version: i64,
    by_run: &str,
) -> crate::db::DbResult<u64> {
    session.execute(
        "UPDATE backfill_runs SET state = ?, finished_at = ?, outcome = ? \
         WHERE version = ? AND state = ? AND action IN (?, ?) AND run_id <> ?",
        &[
            RunState::Abandoned.as_str().into(),
            Value::Timestamp(now()),
            format!("it ended without recording how (its process died, or lost the database mid-run); resumed from the last checkpoint by run {by_run}")
                .into(),
            Value::Int(version),
            RunState::Running.as_str().into(),
            Action::Apply.as_str().into(),
            Action::Revert.as_str().into(),
            by_run.into(),
        ],
    )
}

const RUN_COLUMNS: &str =
    "run_id, version, action, state, started_at, finished_at, operator_name, host, tool_version, \
    checksum, arguments, plan_summary, row_count, outcome, error_message";

pub(crate) fn runs(
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
