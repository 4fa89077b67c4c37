//! A run's stage around its batches (`kit::stage`): built once an apply run's tables are known to be
//! there, before its first batch; dropped when the run ends, whatever the end (with those of runners
//! of the same migration that died, when the run completed). Building it is an
//! optimisation, so a failure to build it runs the batches without one (they give the same rows).

use crate::db::{Finish, Session};
use crate::engine::batch::Walk;
use crate::kit::migration::Context;
use crate::kit::stage;
use crate::registry::Registered;
use std::time::Instant;

/// Builds the stage of an apply run when its migration has one, and returns its table.
pub(crate) fn build(
    session: &mut dyn Session,
    reg: &Registered,
    ctx: &Context,
    walk: Walk,
) -> Option<String> {
    if walk != Walk::Apply {
        return None;
    }
    let name = stage::name(ctx);
    let started = Instant::now();
    let built = session.transaction(|s| {
        reg.migration
            .stage(s, ctx, &name)
            .map(|staged| match staged {
                true => Finish::Commit(true),
                false => Finish::Rollback(false),
            })
    });
    match built {
        Ok(true) => {
            tracing::info!(
                "V{}__{}: staged in {:.2}s ({name})",
                reg.version,
                reg.name,
                started.elapsed().as_secs_f64()
            );
            Some(name)
        }
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(
                "V{}__{}: running without its stage, whose build failed: {e}",
                reg.version,
                reg.name
            );
            discard(session, Some(&name));
            None
        }
    }
}

/// After a run did all its batches: drops every stage of its migration, its own and those of
/// runners that died (the others are fenced out by now).
pub(crate) fn completed(session: &mut dyn Session, version: i64) {
    if let Err(e) = stage::sweep(session, version) {
        tracing::warn!(
            "could not drop the stages of V{version} (the next completed run will): {e}"
        );
    }
}

/// Drops the stage of a run that did not complete; one that cannot be dropped now is dropped
/// when a run of its migration next completes.
pub(crate) fn discard(session: &mut dyn Session, name: Option<&str>) {
    if let Some(name) = name {
        if let Err(e) = stage::drop_table(session, name) {
            // Quietly: it fails when the connection is gone, and the run's error line says so.
            tracing::debug!(
                "could not drop the run's stage {name} (the next completed run will): {e}"
            );
        }
    }
}
