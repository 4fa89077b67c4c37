//! "One version row per entity that appears in a scenario": the shape shared by the app's
//! `competency_versions` and `role_versions` backfills. A migration module describes its tables; this
//! type does plan/apply/revert/check with set-based SQL per batch in every dialect.

use crate::db::{DbResult, Dialect, Tx, Value};
use crate::migration::{int, Batch, Context, Cursor, DataMigration, Direction, Group, Plan, Step};

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

    /// Eligible entities that have no version yet: what apply writes, as a FROM clause whose columns
    /// are used unqualified (`id`, `organization_id`, `name`, `description`, `scenario_id`). Ranged, it
    /// takes the range `[lo, hi]` three times (six parameters, the same pair each time): the range is
    /// repeated on every table although the joins imply it, because planners do not carry a range
    /// across a GROUP BY or into a materialized NOT EXISTS, and a batch would cost O(table).
    fn pending_from(&self, d: Dialect, ranged: bool) -> String {
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
        match d {
            // MariaDB has no hash join: its best plan walks each entity's links by index, and for a
            // grouped derived table over a large share of the table its optimizer switches to
            // scanning every link of every scenario. A lowest-scenario subquery per entity keeps the
            // per-entity walk at every batch size (and as one statement it is faster too).
            Dialect::Mysql => format!(
                "FROM (SELECT e.id, e.organization_id, e.name, e.description, \
                 (SELECT MIN({s}) FROM {link} WHERE {le} = e.id{link_range}) AS scenario_id \
                 FROM {entity} e WHERE {not_versioned}{entity_range}) p WHERE p.scenario_id IS NOT NULL",
                s = self.link_scenario,
                link = self.link,
                le = self.link_entity,
                link_range = range(self.link_entity),
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
    pub fn insert_sql(&self, d: Dialect, ranged: bool, version: i64, run_id: &str) -> String {
        let metadata = d.json_object(&[
            ("source", "'backfill'"),
            ("scenario_id", "scenario_id"),
            ("migration", &version.to_string()),
            ("run_id", &format!("'{run_id}'")),
        ]);
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
            from = self.pending_from(d, ranged),
        )
    }

    /// Per scenario, what apply writes and what it skips (already versioned), in one pass over the
    /// eligible entities: about the cost of the count alone. MariaDB gets the per-entity form, for the
    /// reason given in `pending_from`.
    fn plan_counts_sql(&self, d: Dialect) -> String {
        let (entity, versions, fk) = (self.entity, self.versions, self.fk);
        match d {
            Dialect::Mysql => format!(
                "SELECT scenario_id, SUM(1 - versioned), SUM(versioned) FROM (SELECT \
                 (SELECT MIN({s}) FROM {link} WHERE {le} = e.id) AS scenario_id, \
                 EXISTS (SELECT 1 FROM {versions} v WHERE v.{fk} = e.id) AS versioned FROM {entity} e) p \
                 WHERE scenario_id IS NOT NULL GROUP BY scenario_id ORDER BY scenario_id",
                s = self.link_scenario,
                link = self.link,
                le = self.link_entity,
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
            self.pending_from(d, false)
        )
    }

    /// Rows this migration marked (and, with a scenario, only that scenario's). Every field is
    /// compared exactly: see [`exact_field`].
    fn marker(&self, d: Dialect, ctx: &Context) -> (String, Vec<Value>) {
        let mut sql = format!(
            "{} = 'backfill' AND {} = '{}'",
            exact_field(d, "source"),
            exact_field(d, "migration"),
            ctx.version
        );
        let mut params = Vec::new();
        if let Some(s) = ctx.scenario {
            sql.push_str(&format!(" AND {} = ?", exact_field(d, "scenario_id")));
            params.push(Value::Text(s.to_string()));
        }
        (sql, params)
    }

    /// The last id of the next `size` ids of `table` from `from` on (inclusive), or `None` when there
    /// are none.
    fn next_bound(tx: &mut dyn Tx, table: &str, from: i64, size: u64) -> DbResult<Option<i64>> {
        let sql = format!(
            "SELECT MAX(id) FROM (SELECT id FROM {table} WHERE id >= ? ORDER BY id LIMIT ?) t"
        );
        Ok(tx
            .query_scalar(&sql, &[Value::Int(from), Value::Int(size as i64)])?
            .as_i64())
    }

    /// The parameters of a ranged statement: the range `[from, hi]` once per table it is repeated on.
    fn range_params(from: i64, hi: i64) -> Vec<Value> {
        let mut params = Vec::with_capacity(6);
        for _ in 0..3 {
            params.extend([Value::Int(from), Value::Int(hi)]);
        }
        params
    }

    /// Fills each group with its first `samples` pending entities by id: the same rows as a
    /// `ROW_NUMBER() OVER (PARTITION BY scenario ORDER BY id)` over everything, but read with apply's
    /// ranged query from the lowest ids up, stopping as soon as every group has its samples (usually
    /// after the first range, instead of sorting every pending row).
    fn sample(&self, tx: &mut dyn Tx, groups: &mut [Group], samples: usize) -> DbResult<()> {
        const FIRST_RANGE: u64 = 2_000;
        const MAX_RANGE: u64 = 50_000;
        let short = |groups: &[Group]| {
            groups
                .iter()
                .any(|g| g.samples.len() < samples.min(g.count as usize))
        };
        let sql = format!(
            "SELECT scenario_id, id, organization_id, name {} ORDER BY id",
            self.pending_from(tx.dialect(), true)
        );
        // From the lowest key there can be, as apply starts: ids of 0 and below are keys too.
        let (mut from, mut span) = (Some(i64::MIN), FIRST_RANGE);
        while let (true, Some(lo)) = (short(groups), from) {
            let Some(hi) = Self::next_bound(tx, self.entity, lo, span)? else {
                break;
            };
            for row in tx.query(&sql, &Self::range_params(lo, hi))? {
                let key = int(&row, 0);
                if let Some(g) = groups.iter_mut().find(|g| g.key == key) {
                    if g.samples.len() < samples {
                        let mut it = row.into_iter().skip(1);
                        let mut next = || it.next().unwrap_or(Value::Null).into_json();
                        g.samples.push(
                            serde_json::json!({ "id": next(), "organization_id": next(), "name": next() }),
                        );
                    }
                }
            }
            from = hi.checked_add(1);
            span = (span * 2).min(MAX_RANGE);
        }
        Ok(())
    }

    fn count(tx: &mut dyn Tx, sql: &str, params: &[Value]) -> DbResult<u64> {
        Ok(tx.query_scalar(sql, params)?.as_i64().unwrap_or(0).max(0) as u64)
    }
}

/// A `metadata` field as text that compares byte for byte. MariaDB's string collations are PAD SPACE
/// (even `utf8mb4_bin`, which JSON_UNQUOTE returns): `'backfill ' = 'backfill'` is true there, so
/// another writer's `"source":"backfill "` would count as ours and be deleted by revert. A binary
/// string compares its bytes, trailing spaces and case included. PostgreSQL's `text` and SQLite's
/// default BINARY collation already compare exactly.
fn exact_field(d: Dialect, key: &str) -> String {
    let text = d.json_text("metadata", key);
    match d {
        Dialect::Mysql => format!("CAST({text} AS BINARY)"),
        Dialect::Postgres | Dialect::Sqlite => text,
    }
}

impl DataMigration for VersionBackfill {
    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, samples: usize) -> DbResult<Plan> {
        let counts = tx.query(&self.plan_counts_sql(tx.dialect()), &[])?;
        let skipped = counts.iter().map(|r| int(r, 2).max(0) as u64).sum();
        let mut groups: Vec<Group> = counts
            .iter()
            .filter(|r| int(r, 1) > 0)
            .map(|r| Group {
                key: int(r, 0),
                count: int(r, 1) as u64,
                samples: Vec::new(),
            })
            .collect();
        self.sample(tx, &mut groups, samples)?;
        let total = groups.iter().map(|g| g.count).sum();
        Ok(Plan {
            group_by: "scenario_id".into(),
            total,
            skipped,
            groups,
        })
    }

    fn apply(&self, tx: &mut dyn Tx, batch: &Batch) -> DbResult<Step> {
        let Some(from) = batch.first_id()? else {
            return Ok(Step::Done { rows: 0 });
        };
        let Some(hi) = Self::next_bound(tx, self.entity, from, batch.size)? else {
            return Ok(Step::Done { rows: 0 });
        };
        let sql = self.insert_sql(
            tx.dialect(),
            true,
            batch.ctx.version,
            &batch.ctx.run_id.to_string(),
        );
        let date = Value::Text(batch.ctx.run_date.format("%Y-%m-%d").to_string());
        let mut params = vec![date];
        params.extend(Self::range_params(from, hi));
        let rows = tx.execute(&sql, &params)?;
        Ok(Step::More {
            cursor: Cursor::from_id(hi),
            rows,
        })
    }

    fn revert(&self, tx: &mut dyn Tx, batch: &Batch) -> DbResult<Step> {
        let Some(from) = batch.first_id()? else {
            return Ok(Step::Done { rows: 0 });
        };
        let Some(hi) = Self::next_bound(tx, self.versions, from, batch.size)? else {
            return Ok(Step::Done { rows: 0 });
        };
        let (marker, extra) = self.marker(tx.dialect(), batch.ctx);
        let sql = format!(
            "DELETE FROM {} WHERE id >= ? AND id <= ? AND {marker}",
            self.versions
        );
        let mut params = vec![Value::Int(from), Value::Int(hi)];
        params.extend(extra);
        let rows = tx.execute(&sql, &params)?;
        Ok(Step::More {
            cursor: Cursor::from_id(hi),
            rows,
        })
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

    fn check(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Vec<String>> {
        let mut problems = Vec::new();
        let (marker, _) = self.marker(
            tx.dialect(),
            &Context {
                scenario: None,
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
        let pending = format!("SELECT COUNT(*) {}", self.pending_from(tx.dialect(), false));
        let missing = Self::count(tx, &pending, &[])?;
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

    fn key_span(&self, tx: &mut dyn Tx, direction: Direction) -> DbResult<Option<(i64, i64)>> {
        let table = match direction {
            Direction::Apply => self.entity,
            Direction::Revert => self.versions,
        };
        // Reading one row of each table proves they exist and are not locked against us. One scalar
        // subquery per table: MariaDB materializes a whole UNION ALL before applying its LIMIT, which
        // read every row of the three tables (3 s per apply and per revert at 1M competencies).
        let probe = format!(
            "SELECT (SELECT 1 FROM {} LIMIT 1), (SELECT 1 FROM {} LIMIT 1), (SELECT 1 FROM {} LIMIT 1)",
            self.entity, self.versions, self.link
        );
        tx.query(&probe, &[])?;
        let row = tx.query(&format!("SELECT MIN(id), MAX(id) FROM {table}"), &[])?;
        Ok(row
            .first()
            .and_then(|r| Some((r.first()?.as_i64()?, r.get(1)?.as_i64()?))))
    }
}
