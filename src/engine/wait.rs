//! `backfill wait VERSION`: a deploy gate (as GitLab's `ensure_batched_background_migration_is_finished`).
//! It only reads the ledger, once a second, until the migration is applied (exit 0), ends where only
//! an operator moves it on (failed, cancelled, reverted: exit 1), or `--timeout` passes (exit 4). A
//! migration not started yet, running, paused or halted at the end of a window is still on its way.

use crate::db::Session;
use crate::engine::known::find;
use crate::engine::ledger::{self, Entry, State};
use crate::error::{Error, Result};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_secs(1);

pub(crate) fn wait(
    session: &mut dyn Session,
    catalog: &crate::registry::Catalog,
    version: i64,
    timeout: Option<Duration>,
) -> Result<String> {
    let reg = find(catalog, version)?;
    let name = format!("V{version}__{}", reg.name);
    let started = Instant::now();
    loop {
        let entry = ledger::read_if_any(session, |s| ledger::entry(s, version))?;
        if let Some(done) = ended(&name, entry.as_ref())? {
            return Ok(done);
        }
        if let Some(limit) = timeout.filter(|t| started.elapsed() >= *t) {
            let now = entry.map_or_else(|| "not started".to_string(), |e| e.state.to_string());
            return Err(Error::Busy(format!(
                "{name} is still {now} after {}s; wait again, or raise --timeout",
                limit.as_secs()
            )));
        }
        if let Some(sig) = crate::signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        crate::signals::pause(
            timeout.map_or(POLL, |t| POLL.min(t.saturating_sub(started.elapsed()))),
        );
    }
}

/// `Some(line)` once applied; an error (exit 1) where only an operator moves it on; `None` meanwhile.
fn ended(name: &str, entry: Option<&Entry>) -> Result<Option<String>> {
    let Some(e) = entry else {
        return Ok(None);
    };
    match e.state {
        State::Applied => Ok(Some(format!("{name} is applied ({} rows)\n", e.live_rows()))),
        State::Failed | State::Cancelled | State::Reverted => Err(Error::Runtime(format!(
            "{name} is {}{}: it will not finish on its own; `backfill status` and `backfill log {}` say why",
            e.state,
            e.last_error.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(),
            e.version
        ))),
        State::Running | State::Reverting | State::Halted => Ok(None),
    }
}
