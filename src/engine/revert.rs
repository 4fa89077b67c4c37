//! `revert VERSION [--group ID]`: how a migration is undone, what refuses it (edited rows, a dropped
//! journal, unfinished work), then the same run as an apply (`runner::run_one`).

use crate::db::Session;
use crate::engine::audit::{new_run, new_run_and_id, refuse, today};
use crate::engine::batch::{Held, Walk};
use crate::engine::known::{
    drift_error, drifted, find, never_applied, refuse_unfit, refused, unfinished,
};
use crate::engine::ledger::{self, Action, Event, Refusal, State};
use crate::engine::lock;
use crate::engine::options::Options;
use crate::engine::runner::{run_one, OneRun, Outcome};
use crate::engine::throttle::Gauge;
use crate::error::{Error, Result};
use crate::kit::migration::{Context, Shape};
use crate::registry::Registered;

/// `revert VERSION [--group ID]`.
pub fn revert(
    session: &mut dyn Session,
    version: i64,
    group: Option<i64>,
    force: bool,
    opts: &Options,
) -> Result<Outcome> {
    let reg = find(&opts.catalog, version)?;
    let walk = revert_walk(reg, group, force)?;
    refuse_unfit(session, [reg])?;
    if !ledger::check_schema(session)? {
        return Err(never_applied(reg));
    }
    let gauge = Gauge::open(opts, session)?;
    let lease = lock::acquire(session, opts.lock_timeout)?;
    let mut held = Held::new(lease, gauge, opts);
    let result = revert_locked(session, reg, (walk, force), group, opts, &mut held);
    lock::release(session, held.lease);
    result.map_err(|e| held.tally.report(e))
}

/// How this migration is undone, or why it cannot be; checked before anything is touched.
fn revert_walk(reg: &Registered, group: Option<i64>, force: bool) -> Result<Walk> {
    let name = format!("V{}__{}", reg.version, reg.name);
    match (reg.migration.shape(), reg.migration.grouping(), group) {
        (Shape::Irreversible(why), _, _) => {
            Err(Error::Usage(format!("{name} cannot be reverted: {why}")))
        }
        (_, None, Some(_)) => Err(Error::Usage(format!(
            "{name} has no groups; revert it whole, without --group/--scenario"
        ))),
        (Shape::Update, _, Some(_)) => Err(Error::Usage(format!(
            "{name} is UPDATE-shaped: its journal restores rows, not groups; revert it whole"
        ))),
        (Shape::Update, _, None) => Ok(Walk::Restore { force }),
        (Shape::Insert(_), _, _) => Ok(Walk::DeleteMarked),
    }
}

fn revert_locked(
    session: &mut dyn Session,
    reg: &Registered,
    (walk, force): (Walk, bool),
    group: Option<i64>,
    opts: &Options,
    held: &mut Held,
) -> Result<Outcome> {
    let v = reg.version;
    let entry = ledger::entry(session, v)?.ok_or_else(|| never_applied(reg))?;
    // A reverted migration never drifts, so "already reverted" still comes first.
    if drifted(&entry, reg) {
        return Err(drift_error(&entry, reg));
    }
    let event = match group {
        Some(g) => Event::RevertGroup {
            same: entry.revert_scenario == Some(g),
        },
        None => Event::Revert,
    };
    let state = match ledger::transition(Some(entry.status()), event) {
        Ok(state) => state,
        Err(Refusal::Unfinished) => return Err(unfinished(reg, &entry)),
        Err(r) => return Err(refused(reg, r)),
    };
    if matches!(walk, Walk::Restore { .. }) && ledger::forgotten(session, v)? {
        return Err(Error::Usage(format!(
            "V{v}__{} cannot be reverted: its undo journal was dropped by `backfill forget {v}`",
            reg.name
        )));
    }
    let (run, id) = new_run_and_id(Action::Revert, Some(reg), opts);
    let ctx = Context {
        version: v,
        run_id: id,
        run_date: today(),
        group,
        ledger_rows: entry.live_rows(),
        stage: None,
    };
    if !force {
        refuse_edited(session, reg, &ctx, opts)?;
    }
    let resuming = entry.last_action == Action::Revert
        && matches!(
            entry.state,
            State::Reverting | State::Failed | State::Cancelled | State::Halted
        )
        && entry.revert_scenario == group;
    let one = OneRun {
        reg,
        walk,
        run,
        ctx,
        state,
        entry: Some(&entry),
        fresh: !resuming,
        cursor: entry.revert_cursor.clone().filter(|_| resuming),
    };
    run_one(session, one, opts, held)
}

/// Rule 4: rows edited after the backfill are someone's work; refuse unless `--force`.
fn refuse_edited(
    session: &mut dyn Session,
    reg: &Registered,
    ctx: &Context,
    opts: &Options,
) -> Result<()> {
    let edited = session.snapshot(|s| match reg.migration.shape() {
        Shape::Update => crate::kit::journal::edited(s, ctx.version),
        Shape::Insert(undo) => undo.edited_rows(s, ctx),
        Shape::Irreversible(_) => Ok(Vec::new()),
    })?;
    if edited.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = edited.iter().map(i64::to_string).collect();
    let message = format!(
        "refusing to revert V{}__{}: {} row(s) it wrote were edited after the backfill (ids: {}); review them, then rerun with --force to {} them anyway",
        reg.version,
        reg.name,
        edited.len(),
        ids.join(", "),
        if reg.migration.shape() == Shape::Update { "restore" } else { "delete" }
    );
    Err(refuse(
        session,
        new_run(Action::Revert, Some(reg), opts),
        Error::Refused(message),
    ))
}
