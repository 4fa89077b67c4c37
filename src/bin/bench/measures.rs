//! The paired measurements: plan vs a count, backfill vs the single statements, batch sizes.

use crate::databases::connect;
use crate::dialect::Bench;
use crate::figures::{batch_events, BatchEvent, Figures};
use crate::process::{backfill, Proc};
use crate::reference::{floor_delete, floor_group_by, single_statements, today};
use crate::stats::{secs, Samples};
use crate::timed::{Profile, Timed};
use anyhow::{anyhow, bail, Result};
use backfill::db::Value;
use backfill::engine::runner::{self, Options, Selection};
use std::time::{Duration, Instant};

/// Pages read per batch: `(all, from outside the server's cache)`.
type Pages = (f64, f64);

impl Bench<'_> {
    /// `backfill plan V` vs one GROUP BY count in a read-only transaction.
    pub(crate) fn plan_pair(&mut self, f: &mut Figures, binary_first: bool) -> Result<()> {
        let version = self.version_text.clone();
        for step in 0..2 {
            if (step == 0) == binary_first {
                let p = self.run_backfill(&["plan", &version])?;
                if !p.stdout.contains(&f.apply_rows.to_string()) {
                    bail!(
                        "plan does not show the expected {} rows:\n{}",
                        f.apply_rows,
                        p.stdout
                    );
                }
                f.plan.push(p.wall);
                if let Some(kb) = p.max_rss_kb {
                    f.rss_plan.push(kb);
                }
            } else {
                let sql = floor_group_by(self.d);
                let t = Instant::now();
                self.s.begin(true).map_err(|e| anyhow!("{e}"))?;
                let rows = self.s.query(&sql, &[]).map_err(|e| anyhow!("{sql}: {e}"))?;
                self.s.rollback().map_err(|e| anyhow!("{e}"))?;
                f.group_by.push(t.elapsed().as_secs_f64());
                let total: i64 = rows.iter().map(|r| r[1].as_i64().unwrap_or(0)).sum();
                if total as u64 != f.apply_rows {
                    bail!("GROUP BY counted {total}, expected {}", f.apply_rows);
                }
            }
        }
        Ok(())
    }

    /// Every single-statement form: one INSERT … SELECT, then one DELETE by marker, each in one
    /// transaction.
    pub(crate) fn forms_pair(&mut self, f: &mut Figures, expected: u64) -> Result<()> {
        let run_id = uuid::Uuid::now_v7().to_string();
        let forms = single_statements(self.d, self.reg.version, &run_id);
        if f.forms.len() != forms.len() {
            f.forms = forms
                .iter()
                .map(|form| (form.label.to_string(), Samples::default()))
                .collect();
        }
        for (i, form) in forms.iter().enumerate() {
            self.settle()?;
            let t = Instant::now();
            self.s.begin(false).map_err(|e| anyhow!("{e}"))?;
            let rows = self
                .s
                .execute(&form.sql, &[Value::Text(today())])
                .map_err(|e| anyhow!("{}: {}: {e}", form.label, form.sql))?;
            self.s.commit().map_err(|e| anyhow!("{e}"))?;
            f.forms[i].1.push(t.elapsed().as_secs_f64());
            if rows != expected {
                bail!(
                    "single statement `{}` wrote {rows} rows, expected {expected}",
                    form.label
                );
            }
            self.settle()?;
            let sql = floor_delete(self.d, self.reg.version);
            let t = Instant::now();
            self.s.begin(false).map_err(|e| anyhow!("{e}"))?;
            let rows = self
                .s
                .execute(&sql, &[])
                .map_err(|e| anyhow!("{sql}: {e}"))?;
            self.s.commit().map_err(|e| anyhow!("{e}"))?;
            f.delete.push(t.elapsed().as_secs_f64());
            if rows != expected {
                bail!("DELETE deleted {rows} rows, expected {expected}");
            }
        }
        Ok(())
    }

    /// `backfill apply V` then `backfill revert V`, as processes, with 1 job and with `--jobs N` (in
    /// alternating order), each logging its batches (debug, JSON) for the longest batch and the plot.
    pub(crate) fn backfill_pair(&mut self, f: &mut Figures, r: usize, expected: u64) -> Result<()> {
        let version = self.version_text.clone();
        let jobs = self.args.jobs.to_string();
        let order: [bool; 2] = if r.is_multiple_of(2) {
            [false, true]
        } else {
            [true, false]
        };
        for parallel in order {
            let mut apply = vec!["apply", version.as_str()];
            let mut revert = vec!["revert", version.as_str()];
            if parallel {
                apply.extend(["--jobs", jobs.as_str()]);
                revert.extend(["--jobs", jobs.as_str()]);
            }
            let (p, events, longest) = self.run_batches(&apply, parallel, f)?;
            if let Some(secs) = crate::figures::stage_secs(&p.stderr) {
                f.stage.push(secs);
            }
            record_apply(f, parallel, r == 0, &p, events, longest);
            let marked = self.marked()?;
            if marked as u64 != expected {
                bail!(
                    "backfill {} wrote {marked} rows, expected {expected}",
                    apply.join(" ")
                );
            }
            let (p, _, longest) = self.run_batches(&revert, parallel, f)?;
            record_revert(f, parallel, &p, longest);
            let left = self.marked()?;
            if left != 0 {
                bail!("backfill {} left {left} rows", revert.join(" "));
            }
        }
        Ok(())
    }

    /// `backfill ARGS` with its batches logged (debug level, JSON lines on stderr, one per batch).
    /// One apply or revert as a process, after the server settles: the process, its batches (from
    /// its debug log) and the longest one; a parallel run's batches and conflict retries are added
    /// to the `--jobs` totals.
    pub(crate) fn run_batches(
        &mut self,
        args: &[&str],
        parallel: bool,
        f: &mut Figures,
    ) -> Result<(Proc, Vec<BatchEvent>, f64)> {
        self.settle()?;
        let p = self.run_logged(args)?;
        let events = batch_events(&p.stderr);
        let longest = events.iter().map(|e| e.secs).fold(0.0, f64::max);
        if parallel {
            f.jobs_batches += events.len() as u64;
            f.jobs_retries += events
                .iter()
                .map(|e| u64::from(e.attempts - 1))
                .sum::<u64>();
        }
        Ok((p, events, longest))
    }

    pub(crate) fn run_logged(&mut self, args: &[&str]) -> Result<Proc> {
        let mut full = vec!["--quiet", "--log-format", "json"];
        full.extend_from_slice(args);
        backfill(
            self.binary,
            &self.db.url,
            &full,
            &[("RUST_LOG", "backfill=debug")],
        )
    }

    /// `apply` then `revert` as processes with every batch `n` keys: their batches' durations.
    pub(crate) fn fixed_batch(&mut self, f: &mut Figures, n: u64, expected: u64) -> Result<()> {
        let (version, size) = (self.version_text.clone(), n.to_string());
        let apply = ["apply", version.as_str(), "--batch-size", size.as_str()];
        match self.marked()? {
            0 => {}
            there => bail!("{there} rows are there before `backfill {}`: it would time a top-up that writes nothing", apply.join(" ")),
        }
        f.fixed_pages.clear();
        let (events, pages) = self.paged_batches(&apply, f)?;
        f.fixed_pages.extend(pages);
        f.fixed_apply = Samples::now(events.iter().map(|e| e.secs).collect());
        let marked = self.marked()?;
        if marked as u64 != expected {
            bail!(
                "backfill {} wrote {marked} rows, expected {expected}",
                apply.join(" ")
            );
        }
        let revert = ["revert", version.as_str(), "--batch-size", size.as_str()];
        let (events, pages) = self.paged_batches(&revert, f)?;
        f.fixed_pages.extend(pages);
        f.fixed_revert = Samples::now(events.iter().map(|e| e.secs).collect());
        match self.marked()? {
            0 => Ok(()),
            left => bail!("backfill {} left {left} rows", revert.join(" ")),
        }
    }

    /// `run_batches` of `args`, with the pages the server read per batch meanwhile (none on SQLite):
    /// a batch that does O(batch) work can still wait on the disk once the tables outgrow the cache.
    fn paged_batches(
        &mut self,
        args: &[&str],
        f: &mut Figures,
    ) -> Result<(Vec<BatchEvent>, Option<Pages>)> {
        // Settled first, so the server's own cleanup is not counted (`run_batches` settles again:
        // by then there is little left to do).
        self.settle()?;
        let before = self.pages_read();
        let (_, events, _) = self.run_batches(args, false, f)?;
        let n = events.len().max(1) as f64;
        let pages = match (before, self.pages_read()) {
            (Some(b), Some(a)) => Some(((a.0 - b.0) as f64 / n, (a.1 - b.1) as f64 / n)),
            _ => None,
        };
        Ok((events, pages))
    }

    /// The runner in this process, through the timing session: apply then revert.
    pub(crate) fn in_process(
        &mut self,
        batching: Batching,
        expected: u64,
    ) -> Result<(InProcess, InProcess)> {
        let defaults = Options::default();
        let batch_label = batching.to_string();
        let (batch_size, batch_target) = match batching {
            Batching::Default => (defaults.batch_size, defaults.batch_target),
            Batching::Fixed(n) => (n, None),
            Batching::Toward(ms) => (defaults.batch_size, Some(Duration::from_millis(ms))),
        };
        let opts = Options {
            batch_size,
            batch_target,
            statement_timeout: Some(Duration::from_secs(300)),
            operator: "bench".into(),
            arguments: "[\"bench\"]".into(),
            ..Options::default()
        };
        let mut timed = Timed::new(connect(&self.db.url)?, self.args.profile);
        self.settle()?;
        let t = Instant::now();
        let done = runner::apply(&mut timed, Selection::One(self.reg.version), &opts)
            .map_err(|e| anyhow!("in-process apply: {e}"))?;
        let apply = InProcess {
            wall: t.elapsed().as_secs_f64(),
            batches: timed.take(),
            parts: timed.take_parts(),
        };
        timed.report_profile(&format!("apply batch {batch_label}, {}", secs(apply.wall)));
        let rows: u64 = done.iter().map(|o| o.rows).sum();
        if rows != expected {
            bail!("in-process apply wrote {rows} rows, expected {expected}");
        }
        self.settle()?;
        let t = Instant::now();
        let done = runner::revert(&mut timed, self.reg.version, None, false, &opts)
            .map_err(|e| anyhow!("in-process revert: {e}"))?;
        let revert = InProcess {
            wall: t.elapsed().as_secs_f64(),
            batches: timed.take(),
            parts: timed.take_parts(),
        };
        timed.report_profile(&format!(
            "revert batch {batch_label}, {}",
            secs(revert.wall)
        ));
        if done.rows != expected {
            bail!(
                "in-process revert deleted {} rows, expected {expected}",
                done.rows
            );
        }
        Ok((apply, revert))
    }
}

/// One apply's figures, with 1 job or `--jobs N`; the first run's batches are the plots' timeline.
fn record_apply(
    f: &mut Figures,
    parallel: bool,
    first_run: bool,
    p: &Proc,
    events: Vec<BatchEvent>,
    longest: f64,
) {
    if parallel {
        f.apply_jobs.push(p.wall);
        f.longest_apply_jobs.push(longest);
        if let Some(kb) = p.max_rss_kb {
            f.rss_apply_jobs.push(kb);
        }
        if first_run {
            f.timeline_jobs = events;
        }
    } else {
        f.apply.push(p.wall);
        f.longest_apply.push(longest);
        if let Some(kb) = p.max_rss_kb {
            f.rss_apply.push(kb);
        }
        let all = Samples::of(events.iter().map(|e| e.secs).collect());
        f.median_batch.push(all.median());
        f.batches = events.len() as u64;
        if first_run {
            f.timeline_apply = events;
        }
    }
}

/// One revert's figures, with 1 job or `--jobs N`.
fn record_revert(f: &mut Figures, parallel: bool, p: &Proc, longest: f64) {
    if parallel {
        f.revert_jobs.push(p.wall);
        f.longest_revert_jobs.push(longest);
        if let Some(kb) = p.max_rss_kb {
            f.rss_revert_jobs.push(kb);
        }
    } else {
        f.revert.push(p.wall);
        f.longest_revert.push(longest);
        if let Some(kb) = p.max_rss_kb {
            f.rss_revert.push(kb);
        }
    }
}

/// How the in-process runs size their batches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Batching {
    /// What `backfill` does without `--batch-size`.
    Default,
    /// `--batch-size N`: every batch N keys.
    Fixed(u64),
    /// `--batch-ms MS`: from the default first size, resized toward MS per batch.
    Toward(u64),
}

impl std::fmt::Display for Batching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Batching::Default => write!(f, "default"),
            Batching::Fixed(n) => write!(f, "{n}"),
            Batching::Toward(ms) => write!(f, "toward {ms} ms"),
        }
    }
}

pub(crate) struct InProcess {
    pub(crate) wall: f64,
    pub(crate) batches: Vec<Duration>,
    /// `--profile`: where the time went.
    pub(crate) parts: Profile,
}

/// Laravel writes timestamps without fractional seconds.
pub(crate) trait WholeSeconds {
    fn with_nanosecond0(self) -> Self;
}

impl WholeSeconds for chrono::NaiveDateTime {
    fn with_nanosecond0(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap_or(self)
    }
}
