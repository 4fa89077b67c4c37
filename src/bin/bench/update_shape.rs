//! The UPDATE shape: the example migration `V202611300001__version_effective_dates` (each version
//! without an effective date gets its creation date, journaled for an exact revert) over one version
//! row per competency, against one `UPDATE` with the same effect and one `UPDATE` that restores the
//! old values. Its rows are the bench's own: written before, deleted after.

use crate::databases::connect;
use crate::dialect::Bench;
use crate::stats::{secs, Samples};
use crate::timed::Timed;
use anyhow::{anyhow, bail, Result};
use backfill::engine::runner::{self, Options, Selection};
use std::time::Instant;

/// The example migration measured (compiled in with the `testkit` feature, which `bench` turns on).
pub(crate) const VERSION: i64 = 202611300001;

/// The same migration as a declarative file (`--migrations-dir`), the README's example.
const DECLARATIVE: (i64, &str, &str) = (
    202612070900,
    "V202612070900__fill_effective_from.toml",
    "shape = \"update\"\ntable = \"competency_versions\"\nkey = \"id\"\nwhere = \"t.effective_from IS NULL\"\n\
     [set]\neffective_from = \"date(t.created_at)\"\n",
);

/// What the UPDATE-shape runs measured.
#[derive(Default, Clone)]
pub(crate) struct UpdateFigures {
    pub(crate) rows: u64,
    /// The highest version id before the bench wrote its rows: theirs are above it.
    pub(crate) above: i64,
    pub(crate) update: Samples,
    pub(crate) restore: Samples,
    pub(crate) apply: Samples,
    pub(crate) apply_jobs: Samples,
    pub(crate) revert: Samples,
    pub(crate) revert_jobs: Samples,
    /// The declarative twin, 1 job.
    pub(crate) declarative_apply: Samples,
    pub(crate) declarative_revert: Samples,
}

const PENDING: &str = "SELECT COUNT(*) FROM competency_versions WHERE effective_from IS NULL";

impl Bench<'_> {
    /// Writes the rows, measures every side `--runs` times in alternating order, deletes the rows.
    pub(crate) fn update_shape(&mut self) -> Result<UpdateFigures> {
        let before = self.count("SELECT COALESCE(MAX(id), 0) FROM competency_versions")?;
        if self.count(PENDING)? != 0 {
            bail!("competency_versions already has rows without an effective date");
        }
        // Versions the app wrote without an effective date, one per competency, not ours.
        let written = self.exec(&format!(
            "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, created_at, updated_at) \
             SELECT organization_id, id, name, 'stable', {at}, {at} FROM competencies",
            at = "'2026-01-15 10:00:00'"
        ))?;
        let mut u = UpdateFigures {
            rows: written,
            above: before,
            ..UpdateFigures::default()
        };
        let dir = std::env::temp_dir().join(format!("bf-bench-declarative-{}", std::process::id()));
        let measured = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(dir.join(DECLARATIVE.1), DECLARATIVE.2))
            .map_err(|e| anyhow!("writing {}: {e}", dir.display()))
            .and_then(|_| (0..self.args.runs).try_for_each(|r| self.update_run(&mut u, r, &dir)))
            .and_then(|_| self.update_profile(&u));
        let _ = std::fs::remove_dir_all(&dir);
        let (compiled, declarative) = (VERSION, DECLARATIVE.0);
        let cleaned = [
            format!("DELETE FROM competency_versions WHERE id > {before}"),
            format!("DELETE FROM backfill_undo WHERE version IN ({compiled}, {declarative})"),
            // A later `apply` without the directory would not know the file's migration.
            format!("DELETE FROM backfill_migrations WHERE version = {declarative}"),
        ]
        .iter()
        .try_for_each(|sql| self.exec(sql).map(|_| ()));
        measured?;
        cleaned?;
        self.settle()?;
        Ok(u)
    }

    /// One run: the two statements, then `backfill` with 1 job and with `--jobs N` (the order of the
    /// sides alternating between runs).
    fn update_run(&mut self, u: &mut UpdateFigures, r: usize, dir: &std::path::Path) -> Result<()> {
        if r.is_multiple_of(2) {
            self.update_statements(u)?;
            self.update_backfill(u, r)?;
        } else {
            self.update_backfill(u, r)?;
            self.update_statements(u)?;
        }
        self.update_declarative(u, dir)
    }

    /// `--profile`: one apply and one revert in this process, 1 job, default batching, each
    /// statement timed (stderr): where the UPDATE shape's time goes.
    fn update_profile(&mut self, u: &UpdateFigures) -> Result<()> {
        if !self.args.profile {
            return Ok(());
        }
        let opts = Options {
            statement_timeout: Some(std::time::Duration::from_secs(300)),
            operator: "bench".into(),
            arguments: "[\"bench\"]".into(),
            ..Options::default()
        };
        let mut timed = Timed::new(connect(&self.db.url)?, true);
        self.settle()?;
        let t = Instant::now();
        runner::apply(&mut timed, Selection::One(VERSION), &opts)
            .map_err(|e| anyhow!("in-process apply: {e}"))?;
        let label = format!("UPDATE shape apply, {}", secs(t.elapsed().as_secs_f64()));
        log_parts(&label, &timed.take_parts(), timed.take().len());
        timed.report_profile(&label);
        self.settle()?;
        let t = Instant::now();
        runner::revert(&mut timed, VERSION, None, false, &opts)
            .map_err(|e| anyhow!("in-process revert: {e}"))?;
        let label = format!("UPDATE shape revert, {}", secs(t.elapsed().as_secs_f64()));
        log_parts(&label, &timed.take_parts(), timed.take().len());
        timed.report_profile(&label);
        if self.count(PENDING)?.max(0) as u64 != u.rows {
            bail!("the in-process revert did not restore every row");
        }
        Ok(())
    }

    /// The declarative twin, 1 job: apply and revert through `--migrations-dir`.
    fn update_declarative(&mut self, u: &mut UpdateFigures, dir: &std::path::Path) -> Result<()> {
        let (v, dir) = (DECLARATIVE.0.to_string(), dir.display().to_string());
        let with_dir = |cmd| ["--migrations-dir", dir.as_str(), cmd, v.as_str()];
        self.settle()?;
        let wall = self.run_backfill(&with_dir("apply"))?.wall;
        if self.count(PENDING)? != 0 {
            bail!("the declarative apply left rows without an effective date");
        }
        u.declarative_apply.push(wall);
        self.settle()?;
        let wall = self.run_backfill(&with_dir("revert"))?.wall;
        let back = self.count(PENDING)?.max(0) as u64;
        if back != u.rows {
            bail!(
                "the declarative revert restored {back} NULLs, expected {}",
                u.rows
            );
        }
        u.declarative_revert.push(wall);
        Ok(())
    }

    fn update_statements(&mut self, u: &mut UpdateFigures) -> Result<()> {
        let apply = "UPDATE competency_versions SET effective_from = date(created_at) WHERE effective_from IS NULL";
        let restore = format!(
            "UPDATE competency_versions SET effective_from = NULL WHERE id > {}",
            u.above
        );
        u.update.push(self.timed_statement(apply, u.rows)?);
        u.restore.push(self.timed_statement(&restore, u.rows)?);
        Ok(())
    }

    /// One statement in one transaction after the server settles: its wall time.
    fn timed_statement(&mut self, sql: &str, expected: u64) -> Result<f64> {
        self.settle()?;
        let t = Instant::now();
        self.s.begin(false).map_err(|e| anyhow!("{e}"))?;
        let rows = self
            .s
            .execute(sql, &[])
            .map_err(|e| anyhow!("{sql}: {e}"))?;
        self.s.commit().map_err(|e| anyhow!("{e}"))?;
        let wall = t.elapsed().as_secs_f64();
        if rows != expected {
            bail!("`{sql}` changed {rows} rows, expected {expected}");
        }
        Ok(wall)
    }

    fn update_backfill(&mut self, u: &mut UpdateFigures, r: usize) -> Result<()> {
        let (v, jobs) = (VERSION.to_string(), self.args.jobs.to_string());
        for parallel in [!r.is_multiple_of(2), r.is_multiple_of(2)] {
            let mut apply = vec!["apply", v.as_str()];
            let mut revert = vec!["revert", v.as_str()];
            if parallel {
                apply.extend(["--jobs", jobs.as_str()]);
                revert.extend(["--jobs", jobs.as_str()]);
            }
            self.settle()?;
            let wall = self.run_backfill(&apply)?.wall;
            if self.count(PENDING)? != 0 {
                bail!(
                    "backfill {} left rows without an effective date",
                    apply.join(" ")
                );
            }
            if parallel {
                &mut u.apply_jobs
            } else {
                &mut u.apply
            }
            .push(wall);
            self.settle()?;
            let wall = self.run_backfill(&revert)?.wall;
            let back = self.count(PENDING)?.max(0) as u64;
            if back != u.rows {
                bail!(
                    "backfill {} restored {back} NULLs, expected {}",
                    revert.join(" "),
                    u.rows
                );
            }
            if parallel {
                &mut u.revert_jobs
            } else {
                &mut u.revert
            }
            .push(wall);
        }
        Ok(())
    }
}

/// Each part of a profiled run: its time and round trips.
fn log_parts(label: &str, parts: &crate::timed::Profile, batches: usize) {
    crate::log(format!("profile {label}: {batches} batches"));
    for (part, (d, n)) in parts {
        crate::log(format!(
            "profile {label}: {:>9.1} ms {n:>6}x {}",
            d.as_secs_f64() * 1000.0,
            part.label()
        ));
    }
}
