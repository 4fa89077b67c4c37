//! Reading and fixing the ledger: `status`, `verify [--data]` and `repair`.

use crate::db::{Finish, Session};
use crate::engine::audit::{audit_error, new_run, today};
use crate::engine::known::{drift_error, drifted, find};
use crate::engine::ledger::{self, Action, Entry, State};
use crate::engine::lock;
use crate::engine::options::Options;
use crate::error::{Error, Result};
use crate::kit::migration::Context;
use crate::registry::{Catalog, Registered};
use serde::Serialize;

/// One line of `status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusLine {
    pub version: i64,
    pub name: String,
    /// A ledger state, or `pending` (never started) or `unknown` (not in this binary).
    pub state: String,
    pub checksum_ok: bool,
    pub rows_applied: i64,
    pub rows_reverted: i64,
    /// UPDATE-shaped migrations: entries in the undo journal (`backfill forget` drops them).
    pub(crate) journal_rows: Option<i64>,
    pub updated_at: Option<String>,
    pub last_error: Option<String>,
    /// The file it came from (`data_migrations/V…__name.rs`, a declarative `.toml`); `None` when
    /// this binary does not know it.
    pub origin: Option<String>,
    /// A run under way: its runner, progress and what was asked of it (`backfill_control`).
    pub(crate) live: Option<ledger::Request>,
}

/// The ledger's rows (creating the ledger where this user may), or none on a read-only server that
/// has no ledger yet.
pub(crate) fn status(session: &mut dyn Session, opts: &Options) -> Result<Vec<StatusLine>> {
    let catalog = &opts.catalog;
    let entries = ledger::read_if_any(session, ledger::entries)?;
    let mut lines: Vec<StatusLine> = catalog
        .all()
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
                    journal_rows: None,
                    updated_at: None,
                    last_error: None,
                    origin: None,
                    live: None,
                },
                Some(e) => status_line(e, !drifted(e, reg), e.state.as_str()),
            },
        )
        .collect();
    for e in entries
        .iter()
        .filter(|e| !catalog.all().iter().any(|r| r.version == e.version))
    {
        // An example migration run by name is listed as it stands; anything else is unknown here.
        match catalog.find(e.version) {
            Some(reg) => lines.push(status_line(e, !drifted(e, reg), e.state.as_str())),
            None => lines.push(status_line(e, false, "unknown")),
        }
    }
    // The journal is in ledger V3; a read-only look at an older ledger has none.
    let sizes = crate::kit::journal::sizes(session).unwrap_or_default();
    for l in &mut lines {
        let update_shaped = catalog
            .find(l.version)
            .is_some_and(|r| r.migration.shape() == crate::kit::migration::Shape::Update);
        let size = sizes.iter().find(|(v, _)| *v == l.version).map(|(_, n)| *n);
        if update_shaped || size.is_some() {
            l.journal_rows = Some(size.unwrap_or(0));
        }
        l.origin = catalog.find(l.version).map(|r| r.origin.to_string());
    }
    lines.sort_by_key(|l| l.version);
    add_live(session, &entries, &mut lines)?;
    Ok(lines)
}

/// The runs under way, live: the state their runner reports (`paused`, `throttled`) in place of
/// the ledger's `running` (a revert shows `reverting` while it runs). Nothing on a ledger older than
/// V8 (a read-only look).
fn add_live(session: &mut dyn Session, entries: &[Entry], lines: &mut [StatusLine]) -> Result<()> {
    if !ledger::is_current(session) || !entries.iter().any(|e| e.state.in_progress()) {
        return Ok(());
    }
    let requests = ledger::control::requests(session, None)?;
    for live in crate::engine::steer::live(session, entries, requests)? {
        let Some(line) = lines.iter_mut().find(|l| l.version == live.version) else {
            continue;
        };
        if live.live.state != "running" {
            line.state = live.live.state.clone();
        }
        line.live = Some(live);
    }
    Ok(())
}

fn status_line(e: &Entry, checksum_ok: bool, state: &str) -> StatusLine {
    StatusLine {
        version: e.version,
        name: e.name.clone(),
        state: state.into(),
        checksum_ok,
        rows_applied: e.rows_applied,
        rows_reverted: e.rows_reverted,
        journal_rows: None,
        updated_at: e
            .updated_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        last_error: e.last_error.clone(),
        origin: None,
        live: None,
    }
}

/// What `verify` found, one line each.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Verification {
    /// The ledger disagrees with itself or with this binary: exit 3.
    pub ledger: Vec<String>,
    /// `--data`: the data moved since the backfill (ordinary app activity): reported; exit 3 only
    /// with `--strict`. A top-up (`apply VERSION`) makes it clean again.
    pub drift: Vec<String>,
}

/// `verify [--data]`.
pub(crate) fn verify(
    session: &mut dyn Session,
    data: bool,
    opts: &Options,
) -> Result<Verification> {
    let catalog = &opts.catalog;
    let entries = match ledger::read_if_any(session, ledger::entries) {
        Err(Error::Ledger(problem)) => {
            return Ok(Verification {
                ledger: vec![problem],
                drift: Vec::new(),
            })
        }
        other => other?,
    };
    let mut problems: Vec<String> = entries
        .iter()
        .flat_map(|e| entry_problems(catalog, e))
        .collect();
    problems.extend(chunk_holes(session, &entries));
    problems.extend(merged_late(catalog, &entries));
    let drift = if data {
        check_data(session, catalog, &entries)?
    } else {
        Vec::new()
    };
    Ok(Verification {
        ledger: problems,
        drift,
    })
}

/// What one ledger row says is wrong: not in this binary, drifted, failed, or left in progress.
fn entry_problems(catalog: &Catalog, e: &Entry) -> Vec<String> {
    let mut problems = Vec::new();
    match catalog.find(e.version) {
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
    problems
}

/// Keys that the chunks of an unfinished parallel run no longer cover.
fn chunk_holes(session: &mut dyn Session, entries: &[Entry]) -> Vec<String> {
    // Chunks came with ledger V4: a read-only look at an older ledger has none.
    if !ledger::is_current(session) {
        return Vec::new();
    }
    entries
        .iter()
        .filter(|e| e.state != State::Applied)
        .filter_map(|e| ledger::chunk_gap(session, e.version, e.last_action).err())
        .map(|hole| hole.to_string())
        .collect()
}

/// Migrations never started that are older than one applied: probably merged late.
fn merged_late(catalog: &Catalog, entries: &[Entry]) -> Vec<String> {
    // Deployed migrations only: an example run by name says nothing about the deploy order.
    let newest_applied = entries
        .iter()
        .filter(|e| {
            e.state == State::Applied && catalog.all().iter().any(|r| r.version == e.version)
        })
        .map(|e| e.version)
        .max();
    let Some(newest) = newest_applied else {
        return Vec::new();
    };
    catalog.all()
        .iter()
        .filter(|reg| reg.version < newest && !entries.iter().any(|e| e.version == reg.version))
        .map(|reg| format!(
            "V{}__{} is pending but older than applied V{newest}; run `backfill apply {}` (it was probably merged late)",
            reg.version, reg.name, reg.version
        ))
        .collect()
}

fn check_data(
    session: &mut dyn Session,
    catalog: &Catalog,
    entries: &[Entry],
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for e in entries.iter().filter(|e| e.state == State::Applied) {
        let Some(reg) = catalog.find(e.version) else {
            continue;
        };
        let ctx = Context {
            version: e.version,
            run_id: uuid::Uuid::nil(),
            run_date: today(),
            group: None,
            ledger_rows: e.live_rows(),
            stage: None,
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
pub(crate) fn repair_checksum(
    session: &mut dyn Session,
    version: i64,
    opts: &Options,
) -> Result<String> {
    repair(
        session,
        version,
        opts,
        Action::Repair,
        |session, reg, entry| {
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
        },
    )
}

/// `repair VERSION --mark-failed`: a run that is recorded as in progress but is not (we hold the lock).
pub(crate) fn repair_mark_failed(
    session: &mut dyn Session,
    version: i64,
    opts: &Options,
) -> Result<String> {
    repair(
        session,
        version,
        opts,
        Action::Repair,
        |session, _reg, entry| {
            let Ok(failed) = ledger::transition(Some(entry.status()), ledger::Event::MarkFailed)
            else {
                return Err(Error::Usage(format!(
                "V{version} is {}, not running or reverting; --mark-failed only clears an interrupted run",
                entry.state
            )));
            };
            let marked = Some("marked failed by repair");
            ledger::finish(session, version, None, failed, marked)?;
            Ok(format!("marked V{version} failed (was {}); `backfill apply {version}` or `backfill revert {version}` resumes", entry.state))
        },
    )
}

/// `forget VERSION`: drops an UPDATE-shaped migration's undo journal; it is irreversible since.
pub(crate) fn forget(session: &mut dyn Session, version: i64, opts: &Options) -> Result<String> {
    repair(
        session,
        version,
        opts,
        Action::Forget,
        |session, reg, entry| {
            if reg.migration.shape() != crate::kit::migration::Shape::Update {
                return Err(Error::Usage(format!(
                "V{version}__{} keeps no undo journal (only UPDATE-shaped migrations do); nothing to forget",
                reg.name
            )));
            }
            if entry.state.in_progress() {
                return Err(Error::Usage(format!(
                    "V{version} is {}; finish it before forgetting its journal",
                    entry.state
                )));
            }
            let dropped = crate::kit::journal::forget(session, version)?;
            Ok(format!(
            "dropped the undo journal of V{version}__{} ({dropped} entries); it can no longer be reverted",
            reg.name
        ))
        },
    )
}

fn repair(
    session: &mut dyn Session,
    version: i64,
    opts: &Options,
    action: Action,
    fix: impl FnOnce(&mut dyn Session, &Registered, &Entry) -> Result<String>,
) -> Result<String> {
    let reg = find(&opts.catalog, version)?;
    let never = || Error::Usage(format!("V{version} was never run; nothing to repair"));
    if !ledger::check_schema(session)? {
        return Err(never());
    }
    let lease = lock::acquire(session, opts.lock_timeout)?;
    // The fix and its audit row commit together or not at all.
    let result = session.transaction(|s| {
        let entry = ledger::entry(s, version)?.ok_or_else(never)?;
        let outcome = fix(s, reg, &entry)?;
        let mut run = new_run(action, Some(reg), opts);
        run.state = ledger::RunState::Succeeded;
        run.finished_at = Some(ledger::now());
        run.outcome = Some(outcome.clone());
        ledger::insert_run(s, &run).map_err(audit_error)?;
        Ok(Finish::Commit(outcome))
    });
    lock::release(session, lease);
    result
}
