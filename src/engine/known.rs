//! The migrations this binary knows, held against what the ledger says of them: an unknown version,
//! code that changed since it ran, a state change the ledger refuses. The runner and `inspect` share
//! these checks and their words.

use crate::db::Session;
use crate::engine::ledger::{Action, Entry, Refusal, State};
use crate::error::{Error, Result};
use crate::registry::{Catalog, Registered};

pub(crate) fn find(catalog: &Catalog, version: i64) -> Result<&'static Registered> {
    catalog.find(version).ok_or_else(|| {
        Error::Usage(format!(
            "unknown version {version}; `backfill status` lists the versions this binary knows"
        ))
    })
}

/// Refuses (exit 2) the first of `migrations` that cannot run on this database as written (a file
/// read at run time, see `DataMigration::unfit`), before the command writes anything: its checks run
/// in a read-only transaction that is rolled back.
pub(crate) fn refuse_unfit<'a>(
    session: &mut dyn Session,
    migrations: impl IntoIterator<Item = &'a Registered>,
) -> Result<()> {
    session.snapshot(|s| {
        for reg in migrations {
            if let Some(why) = reg.migration.unfit(s)? {
                return Err(Error::Usage(why));
            }
        }
        Ok(())
    })
}

pub(crate) fn drifted(entry: &Entry, reg: &Registered) -> bool {
    entry.state != State::Reverted && entry.checksum != reg.checksum
}

pub(crate) fn drift_error(entry: &Entry, reg: &Registered) -> Error {
    Error::Refused(format!(
        "V{}__{} changed since it ran (ledger checksum {}…, code {}…); run `backfill repair {} --accept-checksum` if this edit is intended",
        reg.version,
        reg.name,
        &entry.checksum.get(..12).unwrap_or(&entry.checksum),
        &reg.checksum[..12],
        reg.version
    ))
}

pub(crate) fn refuse_drift(catalog: &Catalog, entries: &[Entry]) -> Result<()> {
    for entry in entries {
        if let Some(reg) = catalog.find(entry.version) {
            if drifted(entry, reg) {
                return Err(drift_error(entry, reg));
            }
        }
    }
    Ok(())
}

pub(crate) fn never_applied(reg: &Registered) -> Error {
    Error::Usage(format!(
        "V{}__{} was never applied; nothing to revert",
        reg.version, reg.name
    ))
}

/// What a refused transition tells the user (the one-group revert's refusal is [`unfinished`]).
pub(crate) fn refused(reg: &Registered, refusal: Refusal) -> Error {
    match refusal {
        Refusal::NeverApplied => never_applied(reg),
        Refusal::AlreadyReverted => Error::Usage(format!(
            "V{}__{} is already reverted; nothing to do",
            reg.version, reg.name
        )),
        other => Error::Runtime(format!(
            "V{}__{}: the ledger refused a state change ({other:?}); this is a bug in backfill",
            reg.version, reg.name
        )),
    }
}

/// A one-group revert of unfinished work (a failed or killed apply, an interrupted full revert)
/// would end `applied` and hide that work from deploys and `verify`.
pub(crate) fn unfinished(reg: &Registered, entry: &Entry) -> Error {
    let finish = if entry.last_action == Action::Revert {
        format!(
            "finish the full revert first: `backfill revert {}`",
            reg.version
        )
    } else {
        format!("finish the apply first: `backfill apply {}`", reg.version)
    };
    Error::Usage(format!(
        "V{}__{} is {} after an unfinished {}; a one-group revert needs a completed apply: {finish}",
        reg.version, reg.name, entry.state, entry.last_action
    ))
}
