//! `plan`: what a migration would write, read in one snapshot and recorded in the audit table; and
//! `--expect-plan`, which holds an apply to the plan a reviewer saw.

use crate::db::Session;
use crate::engine::audit::{new_run_and_id, refuse, today};
use crate::engine::known::{find, refuse_unfit};
use crate::engine::ledger::{self, Action, RunState, State};
use crate::engine::options::Options;
use crate::engine::planfile::PlanReport;
use crate::engine::runner::{selected, Selection};
use crate::engine::text::count;
use crate::error::{Error, Result};
use crate::kit::migration::{Context, Plan};
use crate::registry::Registered;

/// `plan [VERSION]`: read-only; the pending migrations by default.
pub(crate) fn plan(
    session: &mut dyn Session,
    version: Option<i64>,
    opts: &Options,
) -> Result<Vec<PlanReport>> {
    if let Some(v) = version {
        find(&opts.catalog, v)?;
    }
    refuse_unfit(session, opts.catalog.all())?;
    // The ledger is made here for the audit row; on a read-only server (a standby) plan anyway.
    let entries = ledger::read_if_any(session, ledger::entries)?;
    let migrations = match version {
        Some(v) => vec![find(&opts.catalog, v)?],
        None => selected(&opts.catalog, &entries, Selection::Pending)?,
    };
    migrations
        .into_iter()
        .map(|reg| {
            let state = entries
                .iter()
                .find(|e| e.version == reg.version && e.state == State::Applied)
                .map(|e| e.state.to_string());
            plan_one(session, reg, opts).map(|r| PlanReport { state, ..r })
        })
        .collect()
}

fn plan_one(session: &mut dyn Session, reg: &Registered, opts: &Options) -> Result<PlanReport> {
    let (run, id) = new_run_and_id(Action::Plan, Some(reg), opts);
    // The audit row is best effort: a read-only user may still plan.
    let audited = ledger::insert_run(session, &run).is_ok();
    let plan = match compute_plan(session, reg, id, opts) {
        Ok(plan) => plan,
        Err(e) if audited => return Err(record_plan_failure(session, &run.run_id, e)),
        Err(e) => return Err(e),
    };
    if audited {
        let summary = serde_json::to_string(&plan).unwrap_or_default();
        let outcome = format!("would write {}", count(plan.total, "row"));
        let end = ledger::RunEnd {
            state: RunState::Succeeded,
            outcome: Some(&outcome),
            error: None,
            plan_summary: Some(&summary),
        };
        if let Err(e) = ledger::finish_run(session, &run.run_id, &end) {
            tracing::warn!("could not record the plan in the audit table: {e}");
        }
    }
    Ok(PlanReport {
        state: None,
        version: reg.version,
        name: reg.name.into(),
        checksum: reg.checksum.into(),
        run_id: run.run_id,
        plan,
    })
}

/// What each migration of the catalog would write on this database now, each planned in a read-only
/// snapshot, without the ledger or an audit row (`sample-data`'s summary of the rows it loaded). A
/// migration that cannot plan here (one read at run time, for another app's tables) says why.
pub(crate) fn would_write(
    session: &mut dyn Session,
    opts: &Options,
) -> Vec<(&'static Registered, Result<u64>)> {
    let quiet = Options {
        samples: 0,
        ..opts.clone()
    };
    let plan = |s: &mut dyn Session, reg| compute_plan(s, reg, uuid::Uuid::now_v7(), &quiet);
    let all = opts.catalog.all().iter();
    all.map(|reg| (reg, plan(session, reg).map(|p| p.total)))
        .collect()
}

/// A plan that failed says so in its audit row, rather than staying `running` forever.
fn record_plan_failure(session: &mut dyn Session, run_id: &str, err: Error) -> Error {
    let message = err.to_string();
    let end = ledger::RunEnd {
        state: RunState::Failed,
        outcome: None,
        error: Some(&message),
        plan_summary: None,
    };
    let failed = ledger::finish_run(session, run_id, &end);
    if let Err(e) = failed {
        tracing::warn!("could not record the failed plan in the audit table: {e}");
    }
    err
}

/// `--expect-plan`: the plan as of now must equal the reviewed one. Planning costs a full read of the
/// data, so apply plans only when told to compare with a review; `log` pairs an apply with the plan
/// run before it otherwise. Returns the plan as the apply's audit row keeps it: the review may have
/// been planned where no audit row was written (a read-only user), so `log` has it from the apply.
pub(crate) fn gate_plan(
    session: &mut dyn Session,
    reg: &Registered,
    file: &crate::engine::planfile::PlanFile,
    opts: &Options,
) -> Result<Option<String>> {
    let (mut run, id) = new_run_and_id(Action::Apply, Some(reg), opts);
    let plan = compute_plan(session, reg, id, opts)?;
    let now = crate::engine::planfile::reviewed(reg.version, reg.name, reg.checksum, &plan);
    run.plan_summary = serde_json::to_string(&plan).ok();
    match crate::engine::planfile::gate(file, &now, &plan.group_label) {
        Ok(()) => Ok(run.plan_summary),
        Err(refusal) => Err(refuse(session, run, refusal)),
    }
}

/// The plan as of now, in a read-only transaction.
fn compute_plan(
    session: &mut dyn Session,
    reg: &Registered,
    run_id: uuid::Uuid,
    opts: &Options,
) -> Result<Plan> {
    let ctx = Context {
        version: reg.version,
        run_id,
        run_date: today(),
        group: None,
        ledger_rows: 0,
        stage: None,
    };
    let plan = session.snapshot(|s| reg.migration.plan(s, &ctx, opts.samples));
    // A missing privilege is the operator's to grant (exit 2), as for every other command.
    plan.map_err(|e| {
        let message = format!("planning V{}__{} failed: {e}", reg.version, reg.name);
        Error::from_db(&e, message)
    })
}
