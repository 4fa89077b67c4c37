//! The app's original per-row command, and the no-op apply.

use crate::databases::{connect, prepare_per_statement};
use crate::dialect::Bench;
use crate::figures::Figures;
use crate::measures::WholeSeconds;
use crate::stats::secs;
use anyhow::{anyhow, bail, Context as _, Result};
use backfill::db::{Dialect, Row, Session, Value};
use std::time::{Duration, Instant};

impl Bench<'_> {
    /// The app's original command, statement by statement as Eloquent sends them, in autocommit:
    /// every capability with a scenario; per capability its competencies; per competency whether a
    /// version exists; one INSERT per missing version. Stops after `--old-way-rows` rows (or
    /// `--old-way-seconds`), then deletes what it wrote.
    pub(crate) fn old_way(&mut self, f: &mut Figures) -> Result<()> {
        self.settle()?;
        let before = self
            .count("SELECT COALESCE(MAX(id), 0) FROM competency_versions")
            .context("old way")?;
        let returning = self.d == Dialect::Postgres;
        let insert = insert_sql(returning);
        let budget = Duration::from_secs(self.args.old_way_seconds);
        let limit = self.args.old_way_rows.max(1);
        let mut own = connect(&prepare_per_statement(self.d, &self.db.url))?;
        let s = own.as_mut();
        let t = Instant::now();
        let capabilities = q(
            s,
            "SELECT * FROM capabilities WHERE discovered_in_scenario_id IS NOT NULL",
            &[],
        )?;
        let load = t.elapsed().as_secs_f64();
        let (mut written, mut visited) = (0u64, 0u64);
        'outer: for cap in &capabilities {
            let cap_id = cap[0].clone();
            let scenario = cap[3].as_i64().unwrap_or(0);
            visited += 1;
            let competencies = q(
                s,
                "SELECT competencies.*, capability_competencies.capability_id AS pivot_capability_id, \
                 capability_competencies.competency_id AS pivot_competency_id FROM competencies \
                 INNER JOIN capability_competencies ON competencies.id = capability_competencies.competency_id \
                 WHERE capability_competencies.capability_id = ?",
                &[cap_id],
            )?;
            for c in competencies {
                if !write_if_missing(s, &insert, returning, &c, scenario)? {
                    continue;
                }
                written += 1;
                if written >= limit || t.elapsed() >= budget {
                    break 'outer;
                }
            }
            if t.elapsed() >= budget {
                break;
            }
        }
        let elapsed = t.elapsed().as_secs_f64();
        if written == 0 {
            bail!("the old way wrote nothing in {}", secs(elapsed));
        }
        record(f, load, elapsed, written, visited);
        self.exec(&format!(
            "DELETE FROM competency_versions WHERE id > {before}"
        ))?;
        Ok(())
    }

    /// Everything applied, then `backfill apply` with nothing pending, `--noop-runs` times.
    pub(crate) fn noop(&mut self, f: &mut Figures) -> Result<()> {
        self.settle()?;
        self.run_backfill(&["apply", &self.version_text.clone()])?;
        self.run_backfill(&["apply"])?;
        for _ in 0..self.args.noop_runs.max(1) {
            let p = self.run_backfill(&["apply"])?;
            if !p.stdout.contains("nothing to apply") {
                bail!("the no-op apply did something:\n{}", p.stdout);
            }
            f.noop.push(p.wall);
            if let Some(kb) = p.max_rss_kb {
                f.rss_noop.push(kb);
            }
        }
        if self.args.reuse {
            self.revert_applied()?;
        }
        Ok(())
    }

    /// Reverts every applied migration, newest first: a kept database is left as it was loaded,
    /// ready for the next `--reuse`.
    fn revert_applied(&mut self) -> Result<()> {
        let sql =
            "SELECT version FROM backfill_migrations WHERE state = 'applied' ORDER BY version DESC";
        let rows = self.s.query(sql, &[]).map_err(|e| anyhow!("{sql}: {e}"))?;
        for version in rows.iter().filter_map(|r| r.first()?.as_i64()) {
            self.run_backfill(&["revert", &version.to_string()])?;
        }
        Ok(())
    }
}

/// The app's INSERT of one version, with `RETURNING id` where its driver asks for the new id.
fn insert_sql(returning: bool) -> String {
    let returning = if returning { " RETURNING id" } else { "" };
    format!(
        "INSERT INTO competency_versions (organization_id, competency_id, version_group_id, name, description, \
         effective_from, evolution_state, metadata, created_by, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){returning}"
    )
}

fn q(s: &mut dyn Session, sql: &str, p: &[Value]) -> Result<Vec<Row>> {
    s.query(sql, p).map_err(|e| anyhow!("old way: {sql}: {e}"))
}

/// What the command does for one competency `c` of a capability discovered in `scenario`: whether
/// a version exists, and if not, one INSERT (with `RETURNING id` where the app's driver asks for
/// it). Returns whether it wrote.
fn write_if_missing(
    s: &mut dyn Session,
    insert: &str,
    returns_id: bool,
    c: &Row,
    scenario: i64,
) -> Result<bool> {
    let exists = q(
        s,
        "SELECT EXISTS(SELECT * FROM competency_versions WHERE competency_id = ?) AS e",
        &[c[0].clone()],
    )?;
    if exists
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .unwrap_or(0)
        != 0
    {
        return Ok(false);
    }
    let now = Value::Timestamp(chrono::Utc::now().naive_utc().with_nanosecond0());
    let params = [
        c[1].clone(),
        c[0].clone(),
        Value::Text(uuid::Uuid::new_v4().to_string()),
        c[2].clone(),
        c[3].clone(),
        Value::Date(chrono::Utc::now().date_naive()),
        Value::Text("new_embryo".into()),
        Value::Text(format!(
            r#"{{"source":"backfill","scenario_id":{scenario}}}"#
        )),
        Value::Null,
        now.clone(),
        now,
    ];
    if returns_id {
        q(s, insert, &params)?;
    } else {
        s.execute(insert, &params)
            .map_err(|e| anyhow!("old way insert: {e}"))?;
    }
    Ok(true)
}

/// The old way's figures: its rate projected to every pending row, and the subset it ran on.
fn record(f: &mut Figures, load: f64, elapsed: f64, written: u64, visited: u64) {
    // The command loads every capability once, then pays per row: the rate of the whole run is
    // projected from the subset's per-row cost, with the load counted once, not once per subset.
    let per_row = (elapsed - load) / written as f64;
    let pending = f.apply_rows as f64;
    f.old_way_rate.push(pending / (load + per_row * pending));
    f.old_way_load = load;
    f.old_way_rows = written;
    f.old_way_capabilities = visited;
    f.old_way_seconds = elapsed;
}
