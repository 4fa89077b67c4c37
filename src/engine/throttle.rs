//! `--max-replica-lag`: between batches, wait while a replica is further behind than allowed (as
//! gh-ost's and pt-online-schema-change's `--max-lag`), so a backfill never leaves the app's read
//! replicas serving stale data for long.

use crate::db::Session;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::progress::Progress;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(500);

pub fn wait_for_replicas(
    session: &mut dyn Session,
    opts: &Options,
    lease: &mut crate::lock::Lease,
    progress: &mut Progress,
) -> Result<()> {
    let Some(limit) = opts.max_replica_lag else {
        return Ok(());
    };
    let mut waiting = false;
    loop {
        let lag = session
            .replica_lag()
            .map_err(|e| Error::Runtime(format!("reading replica lag failed: {e}")))?;
        match lag {
            Some(lag) if lag > limit => {
                if !waiting {
                    tracing::info!(
                        "replica lag {:.1}s is over --max-replica-lag {}s: waiting",
                        lag.as_secs_f64(),
                        limit.as_secs()
                    );
                }
                progress.note(&format!(
                    "waiting: replica lag {:.0}s > {}s",
                    lag.as_secs_f64(),
                    limit.as_secs()
                ));
                waiting = true;
            }
            _ => {
                if waiting {
                    tracing::info!("replicas caught up: going on");
                }
                return Ok(());
            }
        }
        if let Some(sig) = crate::signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        // A long wait must not cost the lease: it expires after a minute without renewal.
        crate::lock::renew(session, lease)?;
        std::thread::sleep(POLL);
    }
}

/// One look at replica lag for a parallel run's coordinator: `Some(lag)` when a replica is further
/// behind than `limit`. The coordinator holds every worker meanwhile, instead of each worker polling.
pub fn lag_over(session: &mut dyn Session, limit: Duration) -> Result<Option<Duration>> {
    let lag = session
        .replica_lag()
        .map_err(|e| Error::Runtime(format!("reading replica lag failed: {e}")))?;
    Ok(lag.filter(|lag| *lag > limit))
}
