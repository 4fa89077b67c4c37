//! "One version row per entity that appears in a scenario": the shape shared by the app's
//! `competency_versions` and `role_versions` backfills. A migration module describes its tables; this
//! type does plan/apply/revert/check with set-based SQL per batch in every dialect.

use crate::db::{DbResult, Dialect, Tx, Value};
use crate::kit::migration::{
    int, Context, DataMigration, Group, Grouping, Key, KeyRange, Plan, Revert, Shape,
};
use crate::kit::{bounds, marker, stage};
use std::collections::BTreeMap;

/// One version row per entity linked to a scenario, marked with the lowest such scenario.
pub struct VersionBackfill {
    /// The entity table, e.g. `competencies` (columns id, organization_id, name, description).
    pub entity: &'static str,
    /// FROM clause linking entities to scenarios, e.g. `capability_competencies l JOIN capabilities c ON ...`.
    pub link: &'static str,
    /// The entity id column within `link`.
    pub link_entity: &'static str,
    /// The scenario id column within `link` (rows where it is NULL are ignored).
    pub link_scenario: &'static str,
    /// The versions table, e.g. `competency_versions`.
    pub versions: &'static str,
    /// The versions table's column pointing at the entity.
    pub fk: &'static str,
}

const MAX_LISTED: i64 = 100;

/// Entities per statement of a read over all of them on MariaDB (`VersionBackfill::chunks`).
const WHOLE_READ_CHUNK: u64 = 100_000;

impl VersionBackfill {
    /// Entities linked to a scenario with the lowest scenario id each, optionally for ids in [lo, hi].
    fn eligible(&self, ranged: bool) -> String {
        let range = if ranged {
            format!(" AND {0} >= ? AND {0} <= ?", self.link_entity)
        } else {
            String::new()
        };
        format!(
            "(SELECT {e} AS entity_id, MIN({s}) AS scenario_id FROM {link} WHERE {s} IS NOT NULL{range} GROUP BY {e})",
            e = self.link_entity,
            s = self.link_scenario,
            link = self.link
        )
    }

    /// The lowest scenario of the entity `e`, reached from `e.id` through the link's index:
    /// `SELECT MIN(scenario) AS scenario_id …`, with `range` (a condition on the link's entity column,
    /// or nothing) appended.
    fn lowest_scenario(&self, range: &str) -> String {
        format!(
            "SELECT MIN({s}) AS scenario_id FROM {link} WHERE {le} = e.id{range}",
            s = self.link_scenario,
            link = self.link,
            le = self.link_entity,
        )
    }

    /// Eligible entities that have no version yet: what apply writes, as a FROM clause whose columns
    /// are used unqualified (`id`, `organization_id`, `name`, `description`, `scenario_id`). Ranged, it
    /// takes the range `[lo, hi]` three times (six parameters, the same pair each time): the range is
    /// repeated on every table although the joins imply it, because planners do not carry a range
    /// across a GROUP BY or into a materialized NOT EXISTS, and a batch would cost O(table).
    ///
    /// Ranged (one batch), every dialect walks the range's entities and reaches their links and the
    /// links' tables by index, so a batch costs O(batch) at any table size. PostgreSQL needs the
    /// per-entity form for that too: given the grouped form, it hashes the whole joined table
    /// (`capabilities`) for every batch, because at any size it costs a full scan below thousands of
    /// index probes (BENCHMARKS.md, "O(batch)"). Unranged (one statement over everything), that
    /// hash is the fastest plan, so the grouped form stays.
    ///
    /// Ranged with a stage (`staged`, the run's table of `stage`), it reads the range of the stage
    /// instead of reaching the links' tables.
    fn pending_from(&self, d: Dialect, ranged: bool, staged: Option<&str>) -> String {
        let range = |col: &str| {
            if ranged {
                format!(" AND {col} >= ? AND {col} <= ?")
            } else {
                String::new()
            }
        };
        let (entity, versions, fk) = (self.entity, self.versions, self.fk);
        let not_versioned = format!(
            "NOT EXISTS (SELECT 1 FROM {versions} v WHERE v.{fk} = e.id{})",
            range(&format!("v.{fk}"))
        );
        match (d, staged) {
            // The run's stage holds each eligible entity's lowest scenario (`stage`): the batch
            // reads its range of it and of the entities, and checks the versions live.
            (_, Some(stage)) if ranged => format!(
                "FROM (SELECT e.id, e.organization_id, e.name, e.description, s.scenario_id \
                 FROM {stage} s JOIN {entity} e ON e.id = s.entity_id \
                 WHERE {not_versioned}{stage_range}{entity_range}) p",
                stage_range = range("s.entity_id"),
                entity_range = range("e.id"),
            ),
            // LATERAL, not a scalar subquery in the select list: PostgreSQL would run that once for
            // the value and again for the `IS NOT NULL` filter.
            (Dialect::Postgres, _) if ranged => format!(
                "FROM {entity} e CROSS JOIN LATERAL ({lowest}) s \
                 WHERE s.scenario_id IS NOT NULL AND {not_versioned}{entity_range}",
                lowest = self.lowest_scenario(&range(self.link_entity)),
                entity_range = range("e.id"),
            ),
            // MariaDB has no hash join: its best plan walks each entity's links by index, and for a
            // grouped derived table over a large share of the table its optimizer switches to
            // scanning every link of every scenario. A lowest-scenario subquery per entity keeps the
            // per-entity walk at every batch size (and as one statement it is faster too).
            (Dialect::Mysql, _) => format!(
                "FROM (SELECT e.id, e.organization_id, e.name, e.description, ({lowest}) AS scenario_id \
                 FROM {entity} e WHERE {not_versioned}{entity_range}) p WHERE p.scenario_id IS NOT NULL",
                lowest = self.lowest_scenario(&range(self.link_entity)),
                entity_range = range("e.id"),
            ),
            _ => format!(
                "FROM {eligible} s JOIN {entity} e ON e.id = s.entity_id WHERE {not_versioned}{entity_range}",
                eligible = self.eligible(ranged),
                entity_range = range("e.id"),
            ),
        }
    }

    /// The statement that writes the versions, without its parameters: the date, then (ranged) the
    /// id range three times. Public for the benchmark's floor, which is this statement unranged.
    pub fn insert_sql(&self, d: Dialect, ranged: bool, ctx: &Context) -> String {
        let metadata = marker::json(d, ctx, Some(("scenario_id", "scenario_id")));
        format!(
            "INSERT INTO {versions} (organization_id, {fk}, version_group_id, name, description, effective_from, \
             evolution_state, metadata, created_by, created_at, updated_at) \
             SELECT organization_id, id, {uuid}, name, description, {date}, 'new_embryo', {metadata}, NULL, {now}, {now} \
             {from} ORDER BY id",
            versions = self.versions,
            fk = self.fk,
            uuid = d.uuid_v4(),
            date = d.date_param(),
            now = d.utc_now(),
            from = self.pending_from(d, ranged, ctx.stage.as_deref().filter(|_| ranged)),
        )
    }

    /// Per scenario, what apply writes and what it skips (already versioned), in one pass over the
    /// eligible entities: about the cost of the count alone. MariaDB gets the per-entity form, for the
    /// reason given in `pending_from`.
    /// On MariaDB over the entities of one id range (two parameters), read in `chunks`.
    fn plan_counts_sql(&self, d: Dialect) -> String {
        let (entity, versions, fk) = (self.entity, self.versions, self.fk);
        match d {
            Dialect::Mysql => format!(
                "SELECT scenario_id, SUM(1 - versioned), SUM(versioned) FROM (SELECT ({lowest}) AS scenario_id, \
                 EXISTS (SELECT 1 FROM {versions} v WHERE v.{fk} = e.id) AS versioned FROM {entity} e \
                 WHERE e.id >= ? AND e.id <= ?) p \
                 WHERE scenario_id IS NOT NULL GROUP BY scenario_id ORDER BY scenario_id",
                lowest = self.lowest_scenario(""),
            ),
            _ => format!(
                "SELECT s.scenario_id, SUM(CASE WHEN e.id IS NOT NULL AND v.entity_id IS NULL THEN 1 ELSE 0 END), \
                 COUNT(v.entity_id) FROM {eligible} s LEFT JOIN {entity} e ON e.id = s.entity_id \
                 LEFT JOIN (SELECT DISTINCT {fk} AS entity_id FROM {versions}) v ON v.entity_id = s.entity_id \
                 GROUP BY s.scenario_id ORDER BY s.scenario_id",
                eligible = self.eligible(false),
            ),
        }
    }

    /// What apply would write, counted per scenario in one statement (the benchmark's plan floor).
    pub fn count_by_scenario_sql(&self, d: Dialect) -> String {
        format!(
            "SELECT scenario_id, COUNT(*) {} GROUP BY scenario_id ORDER BY scenario_id",
            self.pending_from(d, false, None)
        )
    }

    /// Rows this migration marked (and, with a group, only that scenario's), compared exactly.
    fn marker(&self, d: Dialect, ctx: &Context) -> (String, Vec<Value>) {
        marker::condition(d, "metadata", ctx, Some("scenario_id"))
    }

    /// Fills each group with its first `samples` pending entities by id, read with apply's ranged query.
    fn sample(&self, tx: &mut dyn Tx, groups: &mut [Group], samples: usize) -> DbResult<()> {
        let sql = format!(
            "SELECT scenario_id, id, organization_id, name {} ORDER BY id",
            self.pending_from(tx.dialect(), true, None)
        );
        let fields = ["id", "organization_id", "name"];
        crate::kit::samples::fill(tx, self.key(), groups, samples, &sql, 3, &fields)
    }

    /// How a read over every entity is split: on MariaDB into ranges of `WHOLE_READ_CHUNK` entities
    /// (`Some`, found as the runner finds a batch's), elsewhere one statement (`None`). MariaDB has
    /// no hash join, so such a read walks every entity's links by index; at 5M competencies one
    /// statement outlasted the default `--statement-timeout` (300 s, BENCHMARKS.md). The caller's
    /// transaction keeps one snapshot over the ranges.
    fn chunks(&self, tx: &mut dyn Tx) -> DbResult<Vec<Option<KeyRange>>> {
        if tx.dialect() != Dialect::Mysql {
            return Ok(vec![None]);
        }
        let mut ranges = Vec::new();
        let mut lo = i64::MIN;
        while let Some(hi) = bounds::next_bound(tx, self.key(), lo, WHOLE_READ_CHUNK)? {
            ranges.push(Some(KeyRange { lo, hi }));
            match hi.checked_add(1) {
                Some(next) => lo = next,
                None => break,
            }
        }
        Ok(ranges)
    }

    fn count(tx: &mut dyn Tx, sql: &str, params: &[Value]) -> DbResult<u64> {
        Ok(tx.query_scalar(sql, params)?.as_i64().unwrap_or(0).max(0) as u64)
    }
}

impl DataMigration for VersionBackfill {
    fn shape(&self) -> Shape<'_> {
        Shape::Insert(self)
    }

    fn key(&self) -> Key {
        Key {
            table: self.entity,
            column: "id",
        }
    }

    fn grouping(&self) -> Option<Grouping> {
        Some(Grouping {
            column: "scenario_id",
            label: "scenario",
        })
    }

    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, samples: usize) -> DbResult<Plan> {
        let sql = self.plan_counts_sql(tx.dialect());
        // Per scenario: rows to write, rows skipped; summed over the chunks.
        let mut counts: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        for range in self.chunks(tx)? {
            for r in tx.query(&sql, &range.map(|r| r.params(1)).unwrap_or_default())? {
                let c = counts.entry(int(&r, 0)).or_default();
                c.0 += int(&r, 1).max(0) as u64;
                c.1 += int(&r, 2).max(0) as u64;
            }
        }
        let skipped = counts.values().map(|c| c.1).sum();
        let mut groups: Vec<Group> = counts
            .iter()
            .filter(|(_, c)| c.0 > 0)
            .map(|(&key, c)| Group {
                key,
                count: c.0,
                samples: Vec::new(),
            })
            .collect();
        self.sample(tx, &mut groups, samples)?;
        let total = groups.iter().map(|g| g.count).sum();
        Ok(Plan {
            group_by: "scenario_id".into(),
            group_label: "scenario".into(),
            total,
            skipped,
            skipped_because: "already versioned".into(),
            groups,
        })
    }

    /// PostgreSQL only: there a batch reaches each entity's lowest scenario through about 1.6 index
    /// probes of `capabilities` per key, which one hash join over the whole link does once
    /// (BENCHMARKS.md, issue 24). MariaDB has no hash join: its grouped pass is no faster than the
    /// per-entity walk its batches already do, and SQLite's batches are cheap already.
    fn stage(&self, tx: &mut dyn Tx, _ctx: &Context, name: &str) -> DbResult<bool> {
        if tx.dialect() != Dialect::Postgres {
            return Ok(false);
        }
        let eligible = self.eligible(false);
        // In key order: the batches read the stage by key ranges, each then a few adjacent pages.
        let select = format!("SELECT entity_id, scenario_id FROM {eligible} s ORDER BY entity_id");
        stage::fill(tx, name, "entity_id", &select)?;
        Ok(true)
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        let sql = self.insert_sql(tx.dialect(), true, ctx);
        let mut params = vec![Value::Text(ctx.run_date.format("%Y-%m-%d").to_string())];
        params.extend(range.params(3));
        tx.execute(&sql, &params)
    }

    fn check(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Vec<String>> {
        let mut problems = Vec::new();
        let (marker, _) = self.marker(
            tx.dialect(),
            &Context {
                group: None,
                ..ctx.clone()
            },
        );
        let marked = Self::count(
            tx,
            &format!("SELECT COUNT(*) FROM {} WHERE {marker}", self.versions),
            &[],
        )?;
        if marked as i64 != ctx.ledger_rows {
            problems.push(format!(
                "{}: {marked} rows carry migration {} but the ledger says it wrote {}",
                self.versions, ctx.version, ctx.ledger_rows
            ));
        }
        let mut missing = 0;
        for range in self.chunks(tx)? {
            let pending = self.pending_from(tx.dialect(), range.is_some(), None);
            let params = range.map(|r| r.params(3)).unwrap_or_default();
            missing += Self::count(tx, &format!("SELECT COUNT(*) {pending}"), &params)?;
        }
        if missing > 0 {
            problems.push(format!(
                "{}: {missing} eligible {} still have no version",
                self.versions, self.entity
            ));
        }
        let doubled = Self::count(
            tx,
            &format!(
                "SELECT COUNT(*) FROM (SELECT {fk} FROM {v} WHERE {marker} GROUP BY {fk} HAVING COUNT(*) > 1) d",
                fk = self.fk,
                v = self.versions
            ),
            &[],
        )?;
        if doubled > 0 {
            problems.push(format!(
                "{}: {doubled} {} have more than one backfilled version",
                self.versions, self.entity
            ));
        }
        let no_group = Self::count(
            tx,
            &format!(
                "SELECT COUNT(*) FROM {} WHERE {marker} AND version_group_id IS NULL",
                self.versions
            ),
            &[],
        )?;
        if no_group > 0 {
            problems.push(format!(
                "{}: {no_group} backfilled rows lack version_group_id",
                self.versions
            ));
        }
        Ok(problems)
    }

    fn preflight(&self, tx: &mut dyn Tx) -> DbResult<()> {
        // Reading one row of each table proves they exist and are not locked against us. One scalar
        // subquery per table: MariaDB materializes a whole UNION ALL before applying its LIMIT, which
        // read every row of the three tables, seconds per apply and per revert (BENCHMARKS.md).
        let probe = format!(
            "SELECT (SELECT 1 FROM {} LIMIT 1), (SELECT 1 FROM {} LIMIT 1), (SELECT 1 FROM {} LIMIT 1)",
            self.entity, self.versions, self.link
        );
        tx.query(&probe, &[]).map(|_| ())
    }
}

impl Revert for VersionBackfill {
    fn revert_key(&self) -> Key {
        Key {
            table: self.versions,
            column: "id",
        }
    }

    fn revert(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        let (marker, extra) = self.marker(tx.dialect(), ctx);
        let sql = format!(
            "DELETE FROM {} WHERE id >= ? AND id <= ? AND {marker}",
            self.versions
        );
        let mut params = range.params(1);
        params.extend(extra);
        tx.execute(&sql, &params)
    }

    fn revert_span(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Option<(i64, i64)>> {
        // Each end walks the primary key to the first marked row (`bounds::span_where`): the app's
        // own rows below the first one are read, not the whole table.
        let (marker, params) = self.marker(tx.dialect(), ctx);
        bounds::span_where(tx, self.revert_key(), &marker, &params)
    }

    fn edited_rows(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Vec<i64>> {
        let (marker, params) = self.marker(tx.dialect(), ctx);
        let sql = format!(
            // The cheap column comparison first: MariaDB evaluates conditions in the order written,
            // and parsing every row's JSON first made this scan several times slower.
            "SELECT id FROM {} WHERE updated_at > created_at AND {marker} ORDER BY id LIMIT {MAX_LISTED}",
            self.versions
        );
        Ok(tx.query(&sql, &params)?.iter().map(|r| int(r, 0)).collect())
    }
}
