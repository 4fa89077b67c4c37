//! `backfill_control` (ledger schema V8): one row per migration, for its latest run. Operators'
//! commands write the request columns of the run they aim at; the runner reads them between batches
//! and writes the live columns (its progress) every few seconds. Every write names the run, so a
//! command meant for a run that has ended changes nothing, and a later run starts from a clean row.

use super::{in_transaction, insert_run, int, ledger_error, text, Action, Run};
use crate::db::{DbResult, Session, Value};
use crate::error::Result;
use serde::Serialize;

/// What an operator asked of a run, beyond its tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Requested {
    Pause,
    Cancel,
}

impl Requested {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Requested::Pause => "pause",
            Requested::Cancel => "cancel",
        }
    }

    fn from_stored(s: Option<&str>) -> Option<Requested> {
        match s {
            Some("pause") => Some(Requested::Pause),
            Some("cancel") => Some(Requested::Cancel),
            _ => None,
        }
    }
}

/// Values `backfill set` gave a running run; `None`: as its flags (or an earlier `set`) say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Tuning {
    pub batch_size: Option<u64>,
    pub batch_ms: Option<u64>,
    pub pause_ms: Option<u64>,
    pub max_replica_lag: Option<u64>,
    pub jobs: Option<u64>,
}

impl Tuning {
    /// The columns, in the order [`Tuning::values`] and [`Tuning::read`] use.
    const COLUMNS: [&'static str; 5] = [
        "batch_size",
        "batch_ms",
        "pause_ms",
        "max_replica_lag",
        "jobs",
    ];

    pub(crate) fn values(&self) -> [Option<u64>; 5] {
        [
            self.batch_size,
            self.batch_ms,
            self.pause_ms,
            self.max_replica_lag,
            self.jobs,
        ]
    }

    fn read(row: &[Value]) -> Tuning {
        let at = |i: usize| row[i].as_i64().and_then(|v| u64::try_from(v).ok());
        Tuning {
            batch_size: at(0),
            batch_ms: at(1),
            pause_ms: at(2),
            max_replica_lag: at(3),
            jobs: at(4),
        }
    }

    /// Each value set here over `older`'s.
    pub(crate) fn over(&self, older: &Tuning) -> Tuning {
        Tuning {
            batch_size: self.batch_size.or(older.batch_size),
            batch_ms: self.batch_ms.or(older.batch_ms),
            pause_ms: self.pause_ms.or(older.pause_ms),
            max_replica_lag: self.max_replica_lag.or(older.max_replica_lag),
            jobs: self.jobs.or(older.jobs),
        }
    }
}

/// The control row of a migration: the run it is for, what was asked of it, and what it reports.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Request {
    pub version: i64,
    pub run_id: String,
    pub action: String,
    pub requested: Option<Requested>,
    pub tuning: Tuning,
    pub requested_by: Option<String>,
    #[serde(flatten)]
    pub live: Live,
    pub host: String,
    pub pid: i64,
    /// Seconds since the run started, and since its last report, by the server's clock.
    pub running_seconds: i64,
    pub reported_seconds_ago: i64,
}

/// What a runner reports of itself, every few seconds and on each change of state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Live {
    /// `running`, `paused` or `throttled`.
    #[serde(rename = "live_state")]
    pub state: String,
    pub rows: u64,
    pub batches: u64,
    pub rows_per_second: Option<u64>,
    pub eta_seconds: Option<u64>,
    /// Thousandths of the keys done.
    pub permille: Option<u64>,
    /// The reviewed plan's row count, when the run has one (`--expect-plan`).
    pub rows_total: Option<u64>,
    pub workers: Option<u64>,
    pub chunks_done: Option<u64>,
    pub chunks_total: Option<u64>,
    pub throttle_reason: Option<String>,
}

const LIVE_COLUMNS: [&str; 11] = [
    "live_state",
    "rows_done",
    "batches",
    "rows_per_second",
    "eta_seconds",
    "permille_done",
    "rows_total",
    "workers",
    "chunks_done",
    "chunks_total",
    "throttle_reason",
];

fn opt(v: Option<u64>) -> Value {
    v.and_then(|v| i64::try_from(v).ok()).into()
}

impl Live {
    fn values(&self) -> Vec<Value> {
        vec![
            self.state.as_str().into(),
            opt(Some(self.rows)),
            opt(Some(self.batches)),
            opt(self.rows_per_second),
            opt(self.eta_seconds),
            opt(self.permille),
            opt(self.rows_total),
            opt(self.workers),
            opt(self.chunks_done),
            opt(self.chunks_total),
            self.throttle_reason.clone().into(),
        ]
    }

    fn read(row: &[Value]) -> Live {
        let at = |i: usize| row[i].as_i64().and_then(|v| u64::try_from(v).ok());
        Live {
            state: text(&row[0]).unwrap_or_default(),
            rows: at(1).unwrap_or(0),
            batches: at(2).unwrap_or(0),
            rows_per_second: at(3),
            eta_seconds: at(4),
            permille: at(5),
            rows_total: at(6),
            workers: at(7),
            chunks_done: at(8),
            chunks_total: at(9),
            throttle_reason: text(&row[10]),
        }
    }
}

fn assignments(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("{c} = ?"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run's row, fresh: no request, no tuning, its own host and pid (the row is reused across runs;
/// a run owns it from here on).
pub(crate) fn open(
    session: &mut dyn Session,
    version: i64,
    run_id: &str,
    action: Action,
    live: &Live,
) -> DbResult<()> {
    let now = session.dialect().epoch_now();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = Value::Int(i64::from(std::process::id()));
    let mut params: Vec<Value> = vec![run_id.into(), action.as_str().into(), host.into(), pid];
    params.extend(live.values());
    params.push(Value::Int(version));
    let update = format!(
        "UPDATE backfill_control SET run_id = ?, action = ?, host = ?, pid = ?, requested = NULL, \
         {}, requested_by = NULL, requested_at = NULL, started_at = {now}, reported_at = {now}, {} \
         WHERE version = ?",
        Tuning::COLUMNS.map(|c| format!("{c} = NULL")).join(", "),
        assignments(&LIVE_COLUMNS)
    );
    if session.execute(&update, &params)? == 1 {
        return Ok(());
    }
    let version = params.pop().unwrap_or(Value::Null);
    params.insert(0, version);
    let marks = vec!["?"; params.len()].join(", ");
    session.execute(
        &format!(
            "INSERT INTO backfill_control (version, run_id, action, host, pid, {}, started_at, reported_at) \
             VALUES ({marks}, {now}, {now})",
            LIVE_COLUMNS.join(", ")
        ),
        &params,
    )?;
    Ok(())
}

/// What was asked of a run, as the runner reads it between batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    pub requested: Option<Requested>,
    pub tuning: Tuning,
    pub by: Option<String>,
}

/// What the runner reads between batches: the request and tuning aimed at its run.
pub(crate) fn asked(
    session: &mut dyn Session,
    version: i64,
    run_id: &str,
) -> DbResult<Option<Asked>> {
    let rows = session.query(
        &format!(
            "SELECT requested, requested_by, {} FROM backfill_control WHERE version = ? AND run_id = ?",
            Tuning::COLUMNS.join(", ")
        ),
        &[Value::Int(version), run_id.into()],
    )?;
    Ok(rows.first().map(|r| Asked {
        requested: Requested::from_stored(text(&r[0]).as_deref()),
        tuning: Tuning::read(&r[2..]),
        by: text(&r[1]),
    }))
}

/// The runner's report of itself.
pub(crate) fn report(
    session: &mut dyn Session,
    version: i64,
    run_id: &str,
    live: &Live,
) -> DbResult<()> {
    let now = session.dialect().epoch_now();
    let mut params = live.values();
    params.extend([Value::Int(version), run_id.into()]);
    session.execute(
        &format!(
            "UPDATE backfill_control SET {}, reported_at = {now} WHERE version = ? AND run_id = ?",
            assignments(&LIVE_COLUMNS)
        ),
        &params,
    )?;
    Ok(())
}

/// Every control row, for `status`, `wait` and the commands; with `version`, only its row.
pub(crate) fn requests(session: &mut dyn Session, version: Option<i64>) -> Result<Vec<Request>> {
    let now = session.dialect().epoch_now();
    let mut sql = format!(
        "SELECT version, run_id, action, requested, requested_by, host, pid, {now} - started_at, \
         {now} - reported_at, {}, {} FROM backfill_control",
        Tuning::COLUMNS.join(", "),
        LIVE_COLUMNS.join(", ")
    );
    let mut params = Vec::new();
    if let Some(v) = version {
        sql.push_str(" WHERE version = ?");
        params.push(Value::Int(v));
    }
    let rows = session
        .query(&sql, &params)
        .map_err(|e| ledger_error("backfill_control", e))?;
    Ok(rows
        .iter()
        .map(|r| Request {
            version: int(&r[0]),
            run_id: text(&r[1]).unwrap_or_default(),
            action: text(&r[2]).unwrap_or_default(),
            requested: Requested::from_stored(text(&r[3]).as_deref()),
            requested_by: text(&r[4]),
            host: text(&r[5]).unwrap_or_default(),
            pid: int(&r[6]),
            running_seconds: int(&r[7]),
            reported_seconds_ago: int(&r[8]),
            tuning: Tuning::read(&r[9..14]),
            live: Live::read(&r[14..]),
        })
        .collect())
}

/// An operator's command on a run: its request (`Some(None)` clears a pause; `None` keeps what was
/// asked) and tuning (over what was set before) on the run's row, and its audit row, in one
/// transaction. `false`: the row is another run's now (the run ended meanwhile); nothing was written.
pub(crate) fn command(
    session: &mut dyn Session,
    target: (i64, &str),
    (requested, tuning): (Option<Option<Requested>>, &Tuning),
    audit: &Run,
) -> DbResult<bool> {
    let (version, run_id) = target;
    let now = session.dialect().epoch_now();
    let mut params: Vec<Value> = Vec::new();
    let ask = match requested {
        Some(r) => {
            params.push(r.map(Requested::as_str).into());
            "?"
        }
        None => "requested",
    };
    params.extend(tuning.values().map(opt));
    params.extend([
        audit.operator.as_str().into(),
        Value::Int(version),
        run_id.into(),
    ]);
    let tuned = Tuning::COLUMNS
        .map(|c| format!("{c} = COALESCE(?, {c})"))
        .join(", ");
    let sql = format!(
        "UPDATE backfill_control SET requested = {ask}, {tuned}, requested_by = ?, requested_at = {now} \
         WHERE version = ? AND run_id = ?"
    );
    let done = crate::engine::retry::conflicts(|| {
        in_transaction(session, |s| {
            if s.execute(&sql, &params)? != 1 {
                return Ok(None);
            }
            insert_run(s, audit)?;
            Ok(Some(()))
        })
    })?;
    Ok(done.is_some())
}
