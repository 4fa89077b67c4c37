//! The audit trail a command leaves: its run row, from the start to how it ended, also when the
//! connection it started on is gone.

use crate::db::{DbError, Session};
use crate::engine::ledger::{self, Action, Event, Run, RunKey, RunState};
use crate::engine::options::Options;
use crate::error::Error;
use crate::registry::Registered;
use chrono::{NaiveDate, Utc};

/// A run's date: UTC, so every runner of one migration agrees on it.
pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A new run's audit row (not yet written).
pub(crate) fn new_run(action: Action, reg: Option<&Registered>, opts: &Options) -> Run {
    new_run_and_id(action, reg, opts).0
}

/// A new run's audit row and its id as the migration's steps see it (`Context::run_id`): one id,
/// so a row a step stamps with it names the audit row of the run that wrote it.
pub(crate) fn new_run_and_id(
    action: Action,
    reg: Option<&Registered>,
    opts: &Options,
) -> (Run, uuid::Uuid) {
    let id = uuid::Uuid::now_v7();
    let run = Run {
        run_id: id.to_string(),
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
    };
    (run, id)
}

pub(crate) fn audit_error(e: DbError) -> Error {
    let message = format!("writing the audit row failed: {e}");
    if e.is_config() {
        Error::Usage(message) // e.g. a read-only user: nothing was written
    } else {
        Error::Runtime(message)
    }
}

/// Records a refused run in the audit table and returns the refusal.
pub(crate) fn refuse(session: &mut dyn Session, mut run: Run, refusal: Error) -> Error {
    run.state = RunState::Refused;
    run.finished_at = Some(ledger::now());
    run.error = Some(refusal.to_string());
    match ledger::insert_run(session, &run) {
        Ok(()) => refusal,
        Err(e) => audit_error(e),
    }
}

/// Records how the run failed whenever the database still answers (see [`record_end`]). When it does
/// not, the next runner finds the `running` row and recovers; the returned error says so instead of a
/// second line on stderr.
pub(crate) fn record_failure(
    session: &mut dyn Session,
    opts: &Options,
    key: RunKey,
    err: Error,
) -> Error {
    let message = err.to_string();
    // A cancel is its own event; the end of a window or budget is neither a failure nor the end.
    let state = match err {
        Error::OnRequest {
            cancelled: true, ..
        } => {
            opts.events.emit(crate::engine::events::Event::Cancelled);
            "cancelled"
        }
        Error::OnRequest { .. } => "halted",
        _ => {
            opts.events.emit(crate::engine::events::Event::Failed {
                error: message.clone(),
            });
            "failed"
        }
    };
    opts.metrics.state(state);
    // Fenced on the run (`conclude`): a run that never started changes no row.
    let ended = |event| ledger::transition(Some(ledger::working(key.action)), event).ok();
    let failed = ended(Event::Fail);
    let (run_state, state) = match err {
        Error::Interrupted(_) => (RunState::Interrupted, failed),
        Error::OnRequest {
            cancelled: true, ..
        } => (RunState::Cancelled, ended(Event::Cancel)),
        Error::OnRequest { .. } => (RunState::Halted, ended(Event::Halt)),
        // Overtaken or raced: the migration is another run's now; only our audit row is ours.
        Error::Busy(_) => (RunState::Stopped, None),
        _ => (RunState::Failed, failed),
    };
    // A stop on request is how the run ended, not an error of it.
    let asked = matches!(err, Error::OnRequest { .. });
    let end = ledger::Ending {
        state,
        run_state,
        outcome: asked.then_some(message.as_str()),
        error: (!asked).then_some(message.as_str()),
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
        ledger::finish_run(s, run_id, &end.run_end())
    })
}
