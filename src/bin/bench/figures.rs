//! What one dialect's runs measured, and the points the growth table and plots take.

use crate::databases::Kind;
use crate::measures::InProcess;
use crate::stats::{max_secs, Samples};
use crate::timed::Profile;
use crate::update_shape::UpdateFigures;

#[derive(Default, Clone)]
pub(crate) struct Figures {
    pub(crate) plan: Samples,
    pub(crate) group_by: Samples,
    /// Every single-statement form of the apply, in `single_statements` order.
    pub(crate) forms: Vec<(String, Samples)>,
    pub(crate) delete: Samples,
    pub(crate) apply: Samples,
    pub(crate) revert: Samples,
    pub(crate) apply_jobs: Samples,
    pub(crate) revert_jobs: Samples,
    pub(crate) apply_rows: u64,
    /// Per run: the longest batch transaction of each process run, from its debug log.
    pub(crate) longest_apply: Samples,
    pub(crate) longest_revert: Samples,
    pub(crate) longest_apply_jobs: Samples,
    pub(crate) longest_revert_jobs: Samples,
    /// Per run: the median batch of `apply` (1 job), and how many batches it took.
    pub(crate) median_batch: Samples,
    pub(crate) batches: u64,
    /// Over all runs: batches of `apply --jobs N` / `revert --jobs N`, and the attempts that
    /// conflicts (deadlocks between the workers) rolled back and retried.
    pub(crate) jobs_batches: u64,
    pub(crate) jobs_retries: u64,
    /// The batches of the first run's `apply` and `apply --jobs N`, for the plot.
    pub(crate) timeline_apply: Vec<BatchEvent>,
    pub(crate) timeline_jobs: Vec<BatchEvent>,
    pub(crate) old_way_rate: Samples,
    pub(crate) old_way_rows: u64,
    pub(crate) old_way_capabilities: u64,
    pub(crate) old_way_seconds: f64,
    pub(crate) old_way_load: f64,
    pub(crate) rss_apply: Samples,
    pub(crate) rss_revert: Samples,
    pub(crate) rss_apply_jobs: Samples,
    pub(crate) rss_revert_jobs: Samples,
    pub(crate) rss_plan: Samples,
    pub(crate) rss_noop: Samples,
    pub(crate) noop: Samples,
    /// Steps that failed (e.g. a shared server restarted under us) and were redone from a clean state.
    pub(crate) retried: Vec<String>,
    /// The 1-minute load average while measuring.
    pub(crate) load: Samples,
    /// `--fixed-batch N`: every committed batch of one `apply` and one `revert` at N keys (seconds).
    pub(crate) fixed_apply: Samples,
    pub(crate) fixed_revert: Samples,
    /// Pages read per fixed batch, apply then revert: `(all, from outside the server's cache)`.
    pub(crate) fixed_pages: Vec<(f64, f64)>,
    /// How long each `apply` (1 job and `--jobs N`) took to build its run's stage, before its first
    /// batch (`kit::stage`; from its log; empty where the migration stages nothing).
    pub(crate) stage: Samples,
    /// The UPDATE shape's figures (absent with `--no-update-shape`).
    pub(crate) update: Option<UpdateFigures>,
}

/// The seconds a `backfill --log-format json` process spent building its run's stage, from its
/// `…: staged in 1.23s (…)` line; `None` when it built none.
pub(crate) fn stage_secs(stderr: &str) -> Option<f64> {
    stderr.lines().find_map(|line| {
        let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
        let msg = v["fields"]["message"].as_str()?;
        let after = msg.split_once(": staged in ")?.1;
        after.split_once('s')?.0.parse().ok()
    })
}

/// One committed batch of a `backfill` process, from its debug log: when it ended (seconds since the
/// first batch began), how long it took, and which worker ran it (0 with one job).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BatchEvent {
    pub(crate) end: f64,
    pub(crate) secs: f64,
    pub(crate) worker: usize,
    /// 1, or more when deadlocks or certification conflicts rolled earlier attempts back.
    pub(crate) attempts: u32,
}

/// The batches a `backfill --log-format json` process logged at debug level (`batch N: …, Tms` with
/// one job, `worker W chunk C batch N: …, Tms` with several).
pub(crate) fn batch_events(stderr: &str) -> Vec<BatchEvent> {
    let mut raw = Vec::new();
    for line in stderr.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(msg), Some(at)) = (v["fields"]["message"].as_str(), v["timestamp"].as_str())
        else {
            continue;
        };
        let worker = match msg.strip_prefix("worker ") {
            Some(rest) => rest.split(' ').next().and_then(|w| w.parse().ok()),
            None => msg.starts_with("batch ").then_some(0),
        };
        let ms = msg
            .rsplit(", ")
            .next()
            .and_then(|t| t.strip_suffix("ms"))
            .and_then(|t| t.parse::<f64>().ok());
        let at = chrono::DateTime::parse_from_rfc3339(at).ok();
        let attempts = msg
            .split(", ")
            .find_map(|part| part.strip_suffix(" attempts"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        if let (Some(worker), Some(ms), Some(at)) = (worker, ms, at) {
            raw.push((at, ms / 1000.0, worker, attempts));
        }
    }
    let micros = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(0) as f64 / 1e6;
    let Some(first) = raw
        .iter()
        .map(|(at, secs, ..)| *at - chrono::TimeDelta::microseconds((secs * 1e6) as i64))
        .min()
    else {
        return Vec::new();
    };
    raw.into_iter()
        .map(|(at, secs, worker, attempts)| BatchEvent {
            end: micros(at - first),
            secs,
            worker,
            attempts,
        })
        .collect()
}

/// One dialect at one size, for the growth table and the plots (also saved as `growth.json` beside
/// the plots, which `--replot` draws again).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct GrowthPoint {
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) rows: u64,
    /// Medians, seconds: the best single statement, `apply`, `apply --jobs N`.
    pub(crate) statement: f64,
    pub(crate) apply: f64,
    pub(crate) jobs: f64,
    /// The longest batch transaction of `apply` and `apply --jobs N` (seconds), and the highest peak
    /// RSS of any `backfill` process (KiB).
    pub(crate) longest: f64,
    pub(crate) rss_kb: f64,
    pub(crate) timeline_apply: Vec<BatchEvent>,
    pub(crate) timeline_jobs: Vec<BatchEvent>,
    /// The median 1-minute load average while measuring (absent from runs before it was recorded).
    #[serde(default)]
    pub(crate) load: Option<f64>,
    /// `--fixed-batch N`: N and the median apply batch at N keys (seconds).
    #[serde(default)]
    pub(crate) fixed: Option<(u64, f64)>,
}

#[derive(Default, Clone)]
pub(crate) struct SweepPoint {
    pub(crate) label: String,
    pub(crate) apply: Samples,
    pub(crate) revert: Samples,
    pub(crate) longest_apply: Samples,
    pub(crate) longest_revert: Samples,
    pub(crate) batches: u64,
    /// `--profile`: the first run's apply and revert, with their walls and batches.
    pub(crate) profile: Option<[(Profile, f64, u64); 2]>,
}

impl SweepPoint {
    pub(crate) fn add(&mut self, apply: &InProcess, revert: &InProcess) {
        if self.profile.is_none() && !apply.parts.is_empty() {
            let batches = |p: &InProcess| p.batches.len() as u64;
            self.profile = Some([
                (apply.parts.clone(), apply.wall, batches(apply)),
                (revert.parts.clone(), revert.wall, batches(revert)),
            ]);
        }
        self.apply.push(apply.wall);
        self.revert.push(revert.wall);
        self.longest_apply.push(max_secs(&apply.batches));
        self.longest_revert.push(max_secs(&revert.batches));
        self.batches = apply.batches.len() as u64;
    }
}
