//! The operator's side of steering a run (`control` is the runner's): `backfill pause`, `resume`,
//! `cancel` and `set` write the request into the control row of the run under way, with an audit row
//! (who, when, old -> new), from any host. They aim at a live run only: a migration that is not
//! running is exit 2, one line.

use crate::db::Session;
use crate::engine::audit::{audit_error, new_run};
use crate::engine::known::find;
use crate::engine::ledger::{self, Action, Entry, Request, Requested, Tuning};
use crate::engine::options::Options;
use crate::error::{Error, Result};
use crate::registry::Registered;

/// What an operator asks of a running migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Pause,
    Resume,
    Cancel,
    Set(TuningArgs),
}

/// `backfill set`'s values; at least one is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TuningArgs {
    pub(crate) batch_size: Option<u64>,
    pub(crate) batch_ms: Option<u64>,
    pub(crate) pause_ms: Option<u64>,
    pub(crate) max_replica_lag: Option<u64>,
    pub(crate) jobs: Option<u64>,
}

impl TuningArgs {
    fn tuning(self) -> Tuning {
        Tuning {
            batch_size: self.batch_size,
            batch_ms: self.batch_ms,
            pause_ms: self.pause_ms,
            max_replica_lag: self.max_replica_lag,
            jobs: self.jobs,
        }
    }
}

impl Command {
    fn action(self) -> Action {
        match self {
            Command::Pause => Action::Pause,
            Command::Resume => Action::Resume,
            Command::Cancel => Action::Cancel,
            Command::Set(_) => Action::Set,
        }
    }
}

/// Sends `command` to the run of `version` under way; returns the line to print.
pub(crate) fn steer(
    session: &mut dyn Session,
    version: i64,
    command: Command,
    opts: &Options,
) -> Result<String> {
    let reg = find(&opts.catalog, version)?;
    let name = format!("V{version}__{}", reg.name);
    let (entry, request) = live_run(session, reg)?;
    let (requested, tuning, change) = decide(command, &request, &entry, &name)?;
    let Some(change) = change else {
        return Ok(format!("{name}: {}\n", requested_already(command)));
    };
    let mut audit = new_run(command.action(), Some(reg), opts);
    audit.state = ledger::RunState::Succeeded;
    audit.finished_at = Some(ledger::now());
    audit.outcome = Some(format!("{change} (run {})", request.run_id));
    let sent = ledger::control::command(
        session,
        (version, &request.run_id),
        (requested, &tuning),
        &audit,
    )
    .map_err(audit_error)?;
    if !sent {
        return Err(not_running(&name, "its run ended just now"));
    }
    Ok(format!("{name}: {change}; {}\n", when(command)))
}

/// The ledger row and control row of `reg`'s run under way, or exit 2 when none is.
fn live_run(session: &mut dyn Session, reg: &Registered) -> Result<(Entry, Request)> {
    let name = format!("V{}__{}", reg.version, reg.name);
    if !ledger::is_current(session) {
        return Err(not_running(
            &name,
            "nothing has run here with this backfill yet",
        ));
    }
    let Some(entry) = ledger::entry(session, reg.version)? else {
        return Err(not_running(&name, "it never ran"));
    };
    if !entry.state.in_progress() {
        return Err(not_running(&name, &format!("it is {}", entry.state)));
    }
    let requests = ledger::control::requests(session, Some(reg.version))?;
    match live(session, std::slice::from_ref(&entry), requests)?.pop() {
        Some(request) => Ok((entry, request)),
        None => Err(not_running(
            &name,
            &format!(
                "it is recorded {}, but its runner is gone; rerun it to resume",
                entry.state
            ),
        )),
    }
}

/// The control rows of the runs under way among `entries`: the migration's latest run, in progress,
/// whose runner holds the lock now (a runner that died leaves a row that speaks for no one).
pub(crate) fn live(
    session: &mut dyn Session,
    entries: &[Entry],
    requests: Vec<Request>,
) -> Result<Vec<Request>> {
    let holder = crate::engine::lock::live_holder(session)
        .map_err(|e| Error::from_db(&e, format!("reading the runner lock failed: {e}")))?;
    let Some((host, pid)) = holder else {
        return Ok(Vec::new());
    };
    Ok(requests
        .into_iter()
        .filter(|r| r.host == host && r.pid == pid)
        .filter(|r| {
            entries.iter().any(|e| {
                e.version == r.version
                    && e.state.in_progress()
                    && e.last_run_id.as_ref() == Some(&r.run_id)
            })
        })
        .collect())
}

fn not_running(name: &str, why: &str) -> Error {
    Error::Usage(format!(
        "{name} is not running ({why}); pause, resume, cancel and set steer a running apply or revert: `backfill status` shows what runs"
    ))
}

/// What the command writes: the request (`None`: unchanged), the tuning, and its audit words
/// (`None`: it was asked already, nothing to write).
fn decide(
    command: Command,
    now: &Request,
    entry: &Entry,
    name: &str,
) -> Result<(Option<Option<Requested>>, Tuning, Option<String>)> {
    let asked = now.requested;
    let none = Tuning::default();
    let state = if asked == Some(Requested::Pause) {
        "paused"
    } else {
        "running"
    };
    Ok(match command {
        _ if asked == Some(Requested::Cancel) => (None, none, None),
        Command::Pause if asked == Some(Requested::Pause) => (None, none, None),
        Command::Resume if asked.is_none() => (None, none, None),
        Command::Pause => (
            Some(Some(Requested::Pause)),
            none,
            Some("running → paused".into()),
        ),
        Command::Resume => (Some(None), none, Some("paused → running".into())),
        Command::Cancel => (
            Some(Some(Requested::Cancel)),
            none,
            Some(format!("{state} → cancelled")),
        ),
        Command::Set(args) => {
            let tuning = args.tuning();
            check_jobs(&tuning, now, entry, name)?;
            (None, tuning, Some(changes(&now.tuning, &tuning)))
        }
    })
}

/// `--jobs` changes the workers of a parallel run; a run of one job walks one cursor, which more
/// workers cannot share.
fn check_jobs(tuning: &Tuning, now: &Request, entry: &Entry, name: &str) -> Result<()> {
    if tuning.jobs.is_some() && now.live.workers.is_none() {
        return Err(Error::Usage(format!(
            "{name} runs as one job (started without --jobs, or on SQLite), which walks one cursor: --jobs applies to runs started with --jobs 2 or more; cancel it and rerun `backfill {} {} --jobs N` to resume with more",
            entry.last_action, entry.version
        )));
    }
    Ok(())
}

/// `batch_size 5000 → 200, pause_ms as started → 100`: each value this `set` changes.
fn changes(old: &Tuning, new: &Tuning) -> String {
    let names = [
        "batch_size",
        "batch_ms",
        "pause_ms",
        "max_replica_lag",
        "jobs",
    ];
    names
        .iter()
        .zip(old.values().iter().zip(new.values()))
        .filter_map(|(name, (was, now))| {
            let now = now?;
            let was = was.map_or_else(|| "as started".to_string(), |v| v.to_string());
            Some(format!("{name} {was} → {now}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn requested_already(command: Command) -> &'static str {
    match command {
        Command::Pause => "already paused; nothing to do",
        Command::Resume => "not paused; nothing to do",
        _ => "a cancel is already under way; it stops at its next checkpoint",
    }
}

fn when(command: Command) -> &'static str {
    match command {
        Command::Pause => "the runner pauses after its current batch (within a batch or 2 s), keeping its lock; `backfill resume` goes on",
        Command::Resume => "the runner goes on within 2 s",
        Command::Cancel => "the runner stops at its next checkpoint (exit 6); its committed batches stay",
        Command::Set(_) => "the runner takes the new values from its next batch (within a batch or 2 s)",
    }
}
