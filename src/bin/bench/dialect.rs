//! The benchmark of one dialect: its database, and the runs in alternating order.

use crate::databases::{connect, BenchDb, Kind};
use crate::figures::{Figures, GrowthPoint, SweepPoint};
use crate::log;
use crate::measures::Batching;
use crate::process::{backfill, Proc};
use crate::reference::{floor_group_by, marker};
use crate::report::best_form;
use crate::stats::{secs, LoadWatch};
use crate::Args;
use anyhow::{anyhow, bail, Result};
use backfill::db::{Dialect, Session};
use backfill::fixtures::{self, Loaded, Shape};
use backfill::registry::Registered;
use std::path::Path;
use std::time::{Duration, Instant};

/// The bench's own table beside the app's: what the loaded data should make the migration write.
const LOADED: &str = "bench_loaded";

pub(crate) struct Bench<'a> {
    pub(crate) args: &'a Args,
    /// Competencies generated.
    pub(crate) size: u64,
    pub(crate) kind: Kind,
    pub(crate) binary: &'a Path,
    pub(crate) reg: &'static Registered,
    pub(crate) db: BenchDb,
    pub(crate) s: Box<dyn Session>,
    pub(crate) d: Dialect,
    pub(crate) version_text: String,
    /// The highest competency_versions id after loading: every row above it is the benchmark's own.
    pub(crate) baseline_id: i64,
}

impl<'a> Bench<'a> {
    pub(crate) fn new(
        args: &'a Args,
        size: u64,
        kind: Kind,
        binary: &'a Path,
        reg: &'static Registered,
    ) -> Result<Bench<'a>> {
        let db = BenchDb::create(args, kind)?;
        let s = connect(&db.url)?;
        let d = s.dialect();
        Ok(Bench {
            args,
            size,
            kind,
            binary,
            reg,
            db,
            s,
            d,
            version_text: reg.version.to_string(),
            baseline_id: 0,
        })
    }

    /// The server's version and the size of its page cache: a batch that fits in it and one that
    /// reads from disk differ by 3× at 5M on MariaDB (BENCHMARKS.md).
    pub(crate) fn server_version(&mut self) -> String {
        let sql = match self.kind {
            Kind::Sqlite => "SELECT 'SQLite ' || sqlite_version()",
            Kind::Postgres => "SELECT version() || ', shared_buffers ' || current_setting('shared_buffers')",
            Kind::Mariadb => {
                "SELECT CONCAT(version(), ', innodb_buffer_pool_size ', @@innodb_buffer_pool_size DIV 1048576, 'MB')"
            }
        };
        self.s
            .query_scalar(sql, &[])
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub(crate) fn exec(&mut self, sql: &str) -> Result<u64> {
        self.s.execute(sql, &[]).map_err(|e| anyhow!("{sql}: {e}"))
    }

    pub(crate) fn count(&mut self, sql: &str) -> Result<i64> {
        self.s
            .query_scalar(sql, &[])
            .map_err(|e| anyhow!("{sql}: {e}"))?
            .as_i64()
            .ok_or_else(|| anyhow!("{sql}: not a number"))
    }

    /// Pages the server has read so far: `(all, from outside its cache)` (MariaDB: the buffer
    /// pool's read requests and its reads from disk; PostgreSQL: this database's blocks hit and read,
    /// and read, outside shared buffers, perhaps from the OS cache). `None` on SQLite.
    pub(crate) fn pages_read(&mut self) -> Option<(i64, i64)> {
        let sql = match self.kind {
            Kind::Mariadb => {
                "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_READ_REQUESTS'), \
                 (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_READS')"
            }
            Kind::Postgres => {
                "SELECT blks_hit + blks_read, blks_read FROM pg_stat_database WHERE datname = current_database()"
            }
            Kind::Sqlite => return None,
        };
        let row = self.s.query(sql, &[]).ok()?.into_iter().next()?;
        let int = |i: usize| {
            let v = row.get(i)?;
            v.as_i64().or_else(|| v.as_str()?.parse().ok())
        };
        Some((int(0)?, int(1)?))
    }

    pub(crate) fn marked(&mut self) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM competency_versions WHERE {}",
            marker(self.d, self.reg.version)
        );
        self.count(&sql)
    }

    /// Between timed steps: let the server clean up after the previous one, so each step starts from
    /// the same state (PostgreSQL: vacuum and checkpoint; MariaDB: wait for purge to catch up).
    pub(crate) fn settle(&mut self) -> Result<()> {
        match self.kind {
            Kind::Postgres => {
                self.exec("VACUUM (ANALYZE) competency_versions")?;
                // The journal too, once it exists: each UPDATE-shaped run fills it and revert empties
                // it, and where autovacuum is off (these machines) nothing else would clear its dead
                // rows or its statistics from when it was empty.
                let journal = self.count("SELECT COUNT(to_regclass('backfill_undo'))")?;
                if journal > 0 {
                    self.exec("VACUUM (ANALYZE) backfill_undo")?;
                }
                self.exec("CHECKPOINT")?;
            }
            Kind::Mariadb => {
                // Purge of the previous step's deleted rows runs in the background and would compete
                // with the next step: wait for it to go idle (bounded: another session's long read
                // view can hold purge back indefinitely on a shared server).
                let started = Instant::now();
                loop {
                    let status = self
                        .s
                        .query("SHOW ENGINE INNODB STATUS", &[])
                        .ok()
                        .and_then(|rows| rows.into_iter().next())
                        .and_then(|r| r.into_iter().nth(2))
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let idle = status
                        .lines()
                        .find(|l| l.starts_with("Purge done"))
                        .is_none_or(|l| l.contains("idle"));
                    if idle {
                        break;
                    }
                    if started.elapsed() > Duration::from_secs(15) {
                        log("MariaDB purge still busy after 15 s (another session's transaction?); going on");
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            Kind::Sqlite => {}
        }
        Ok(())
    }

    pub(crate) fn run_backfill(&mut self, args: &[&str]) -> Result<Proc> {
        let mut full = vec!["--quiet"];
        full.extend_from_slice(args);
        backfill(self.binary, &self.db.url, &full, &[])
    }

    pub(crate) fn run(mut self) -> Result<(String, Option<GrowthPoint>)> {
        let label = self.kind.label();
        let server = self.server_version();
        let (loaded, load_secs) = if self.args.reuse {
            (self.counted()?, f64::NAN)
        } else {
            self.load()?
        };
        if self.args.load_only {
            self.run_backfill(&["status"])?;
            let report = format!(
                "## {label}: loaded {} ({} pending rows) in {}\n",
                self.db.url,
                loaded.pending_competency_versions,
                secs(load_secs)
            );
            return Ok((report, None));
        }
        // The ledger tables exist before anything is timed (a real database has them after its first
        // deploy); this also warms the caches for every side alike.
        self.run_backfill(&["status"])?;
        self.warm()?;
        self.baseline_id = self.count("SELECT COALESCE(MAX(id), 0) FROM competency_versions")?;
        let watch = LoadWatch::start();

        let expected = loaded.pending_competency_versions;
        let mut f = Figures {
            apply_rows: expected,
            ..Figures::default()
        };
        if self.args.update_shape_only {
            log(format!("{label}: the UPDATE shape only"));
            f.update = Some(self.update_shape()?);
            f.load = watch.finish();
            let mut report = format!("## {label} ({server}), {} competencies\n", self.size);
            if let Some(u) = &f.update {
                self.update_table(&mut report, u);
            }
            return Ok((report, None));
        }
        if self.args.fixed_batch_only {
            self.fixed_batches(&mut f, expected)?;
            f.load = watch.finish();
            let mut report = format!("## {label} ({server}), {} competencies\n\n", self.size);
            self.fixed_batch_lines(&mut report, &f);
            return Ok((report, None));
        }
        for r in 0..self.args.runs {
            let what = format!("{label}: run {}/{}", r + 1, self.args.runs);
            self.retrying(&mut f, &what, |b, f| b.one_run(f, r, expected))?;
        }
        let sweep = self.sweep(&mut f, expected)?;
        // Before the no-op: that leaves the migration applied, and an `apply` of an applied
        // migration walks every key writing nothing (a top-up), which is not a batch's cost.
        self.fixed_batches(&mut f, expected)?;
        if !self.args.no_update_shape {
            log(format!("{label}: the UPDATE shape"));
            f.update = Some(self.update_shape()?);
        }
        self.retrying(&mut f, &format!("{label}: no-op apply"), |b, f| b.noop(f))?;
        f.load = watch.finish();
        let report = self.report(&server, &loaded, load_secs, &f, &sweep);
        Ok((report, Some(self.growth_point(&f, expected))))
    }

    /// `--fixed-batch N`: one apply and one revert at N keys a batch.
    fn fixed_batches(&mut self, f: &mut Figures, expected: u64) -> Result<()> {
        if let Some(n) = self.args.fixed_batch {
            let what = format!(
                "{}: apply and revert at --batch-size {n}",
                self.kind.label()
            );
            self.retrying(f, &what, |b, f| b.fixed_batch(f, n, expected))?;
        }
        Ok(())
    }

    /// Loads the app's tables and the competencies, with fresh statistics; returns what was loaded
    /// and how long it took.
    fn load(&mut self) -> Result<(Loaded, f64)> {
        let label = self.kind.label();
        log(format!(
            "{label}: loading {} competencies into {}",
            self.size, self.db.url
        ));
        let t = Instant::now();
        fixtures::load_schema(self.s.as_mut()).map_err(|e| anyhow!("{e}"))?;
        let loaded = fixtures::generate(
            self.s.as_mut(),
            &Shape {
                competencies: self.size,
                seed: self.args.seed,
            },
        )
        .map_err(|e| anyhow!("{e}"))?;
        let load_secs = t.elapsed().as_secs_f64();
        log(format!(
            "{label}: loaded in {} ({} links, {} pending competency versions)",
            secs(load_secs),
            loaded.links,
            loaded.pending_competency_versions
        ));
        if self.kind == Kind::Postgres {
            // A table that has been live for a while has been vacuumed: its visibility map is set,
            // so index-only scans read no heap. Fresh tables get there whenever autovacuum comes by,
            // which would make the runs differ by when it did; vacuum once, before anything is timed.
            self.exec(&format!("VACUUM (ANALYZE) {}", fixtures::TABLES.join(", ")))?;
        }
        if self.kind == Kind::Mariadb {
            // Statistics for the fresh tables, as PostgreSQL's loader does with ANALYZE.
            for t in fixtures::TABLES {
                self.s
                    .query(&format!("ANALYZE TABLE {t}"), &[])
                    .map_err(|e| anyhow!("ANALYZE TABLE {t}: {e}"))?;
            }
        }
        self.remember_pending(loaded.pending_competency_versions)?;
        Ok((loaded, load_secs))
    }

    /// Keeps what the migration would write beside the data, for a later `--reuse`: counting it
    /// again is the single statement's whole join (14 minutes on MariaDB at 5M).
    fn remember_pending(&mut self, pending: u64) -> Result<()> {
        self.exec(&format!("DROP TABLE IF EXISTS {LOADED}"))?;
        self.exec(&format!("CREATE TABLE {LOADED} (pending BIGINT NOT NULL)"))?;
        self.exec(&format!(
            "INSERT INTO {LOADED} (pending) VALUES ({pending})"
        ))?;
        Ok(())
    }

    /// The count `remember_pending` kept, or the join counted again (a database loaded before it).
    fn pending_on_reuse(&mut self) -> Result<u64> {
        match self.count(&format!("SELECT MAX(pending) FROM {LOADED}")) {
            Ok(n) => Ok(n.max(0) as u64),
            Err(_) => self.reg_count_pending(),
        }
    }

    /// `--reuse`: what a kept database holds, counted (the figures the report shows), and a check
    /// that nothing of the migration is there yet.
    fn counted(&mut self) -> Result<Loaded> {
        if self.marked()? != 0 {
            bail!(
                "--reuse: {} already holds rows of the migration; revert it first",
                self.db.url
            );
        }
        let n = |b: &mut Self, sql: &str| b.count(sql).map(|v| v.max(0) as u64);
        let pending = self.pending_on_reuse()?;
        Ok(Loaded {
            competencies: n(self, "SELECT COUNT(*) FROM competencies")?,
            capabilities: n(self, "SELECT COUNT(*) FROM capabilities")?,
            undiscovered_capabilities: n(
                self,
                "SELECT COUNT(*) FROM capabilities WHERE discovered_in_scenario_id IS NULL",
            )?,
            links: n(self, "SELECT COUNT(*) FROM capability_competencies")?,
            scenarios: n(self, "SELECT COUNT(*) FROM scenarios")?,
            preexisting_versions: n(self, "SELECT COUNT(*) FROM competency_versions")?,
            pending_competency_versions: pending,
            ..Loaded::default()
        })
    }

    /// What the migration would write, from the floor's per-scenario count.
    fn reg_count_pending(&mut self) -> Result<u64> {
        let sql = floor_group_by(self.d);
        let rows = self.s.query(&sql, &[]).map_err(|e| anyhow!("{sql}: {e}"))?;
        Ok(rows
            .iter()
            .map(|r| r[1].as_i64().unwrap_or(0).max(0) as u64)
            .sum())
    }

    /// The batch-size sweep (in process): the default batching, each `--sweep` size and each
    /// `--sweep-ms` target.
    fn sweep(&mut self, f: &mut Figures, expected: u64) -> Result<Vec<SweepPoint>> {
        let label = self.kind.label();
        let mut sweep = Vec::new();
        let points: Vec<Batching> = if self.args.no_sweep {
            Vec::new()
        } else {
            let sizes = self.args.sweep.iter().map(|&n| Batching::Fixed(n));
            let targets = self.args.sweep_ms.iter().map(|&ms| Batching::Toward(ms));
            std::iter::once(Batching::Default)
                .chain(sizes)
                .chain(targets)
                .collect()
        };
        for batching in points {
            let mut p = SweepPoint {
                label: batching.to_string(),
                ..SweepPoint::default()
            };
            for _ in 0..self.args.sweep_runs.max(1) {
                let what = format!("{label}: sweep, {batching}");
                let (apply, revert) =
                    self.retrying(f, &what, |b, _| b.in_process(batching, expected))?;
                p.add(&apply, &revert);
            }
            sweep.push(p);
        }
        Ok(sweep)
    }

    /// This size's point in the growth table and plots.
    fn growth_point(&self, f: &Figures, expected: u64) -> GrowthPoint {
        let rss = [&f.rss_apply, &f.rss_apply_jobs, &f.rss_revert_jobs]
            .iter()
            .map(|s| s.max())
            .filter(|x| !x.is_nan())
            .fold(0.0, f64::max);
        GrowthPoint {
            kind: self.kind,
            size: self.size,
            rows: expected,
            statement: best_form(f).map_or(f64::NAN, |(_, s)| s.median()),
            apply: f.apply.median(),
            jobs: f.apply_jobs.median(),
            longest: f.longest_apply.max().max(f.longest_apply_jobs.max()),
            rss_kb: rss,
            timeline_apply: f.timeline_apply.clone(),
            timeline_jobs: f.timeline_jobs.clone(),
            load: (!f.load.is_empty()).then(|| f.load.median()),
            fixed: self.args.fixed_batch.map(|n| (n, f.fixed_apply.median())),
        }
    }

    /// One repetition of every paired measurement, in alternating order.
    pub(crate) fn one_run(&mut self, f: &mut Figures, r: usize, expected: u64) -> Result<()> {
        self.plan_pair(f, r % 2 == 1)?;
        if r.is_multiple_of(2) {
            self.forms_pair(f, expected)?;
            self.backfill_pair(f, r, expected)?;
        } else {
            self.backfill_pair(f, r, expected)?;
            self.forms_pair(f, expected)?;
        }
        if r < self.args.old_way_runs {
            self.old_way(f)?;
        }
        Ok(())
    }

    /// Runs `step`; if it fails (the servers are shared, and some test suites restart them), puts
    /// the database back in its loaded state and redoes the step from scratch, four times at most. The
    /// figures of a failed attempt are dropped, and the report lists every retry.
    pub(crate) fn retrying<T>(
        &mut self,
        f: &mut Figures,
        what: &str,
        mut step: impl FnMut(&mut Self, &mut Figures) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            log(what);
            let saved = f.clone();
            match step(self, f) {
                Ok(v) => return Ok(v),
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    let first = format!("{e:#}");
                    let first = first
                        .lines()
                        .find(|l| l.starts_with("error:"))
                        .unwrap_or(first.lines().next().unwrap_or_default());
                    log(format!(
                        "{what} failed ({first}); restoring the data and retrying"
                    ));
                    *f = saved;
                    f.retried.push(format!("{what}: {first}"));
                    self.restore()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the server, reconnects, and removes everything the benchmark wrote since loading
    /// (rows above the baseline id, the ledger's record of the migration).
    pub(crate) fn restore(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        self.s = loop {
            match connect(&self.db.url) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_secs(1)),
                Err(e) => return Err(e.context("the database did not come back within 180 s")),
            }
        };
        // A test suite that restarts the server usually does it several times in a row: wait until
        // it has been up for a while.
        let uptime = match self.kind {
            Kind::Postgres => {
                Some("SELECT CAST(EXTRACT(EPOCH FROM now() - pg_postmaster_start_time()) AS BIGINT)")
            }
            Kind::Mariadb => Some(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'",
            ),
            Kind::Sqlite => None,
        };
        if let Some(sql) = uptime {
            while Instant::now() < deadline {
                match self.s.query_scalar(sql, &[]).ok().and_then(|v| v.as_i64()) {
                    Some(up) if up >= 30 => break,
                    Some(_) => std::thread::sleep(Duration::from_secs(2)),
                    None => {
                        std::thread::sleep(Duration::from_secs(2));
                        if let Ok(s) = connect(&self.db.url) {
                            self.s = s;
                        }
                    }
                }
            }
        }
        self.exec(&format!(
            "DELETE FROM competency_versions WHERE id > {}",
            self.baseline_id
        ))?;
        // No ledger yet when the failed step ran before the first apply (a plan).
        if self
            .count("SELECT COUNT(*) FROM backfill_migrations")
            .is_ok()
        {
            self.exec("DELETE FROM backfill_migrations")?;
        }
        self.settle()?;
        // A restarted server has cold caches: warm them as before the first run.
        self.warm()?;
        Ok(())
    }

    /// Reads what every measured side reads (the floor's count), so no side pays for cold caches.
    pub(crate) fn warm(&mut self) -> Result<()> {
        self.count(&format!(
            "SELECT COUNT(*) FROM ({}) t",
            floor_group_by(self.d)
        ))
        .map(|_| ())
    }
}
