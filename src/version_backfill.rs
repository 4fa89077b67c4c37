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
    /// Entities linked to a scenario with the lowest scenario id each, optionally for ids in (lo, hi].
    fn eligible(&self, ranged: bool) -> String {
        let range = if ranged {
            format!(" AND {0} > ? AND {0} <= ?", self.link_entity)
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

    /// Eligible entities that have no version yet: what apply writes.
    fn pending_from(&self, ranged: bool) -> String {
        format!(
            "FROM {eligible} s JOIN {entity} e ON e.id = s.entity_id \
             WHERE NOT EXISTS (SELECT 1 FROM {versions} v WHERE v.{fk} = e.id)",
            eligible = self.eligible(ranged),
            entity = self.entity,
            versions = self.versions,
            fk = self.fk
        )
    }

    /// Rows this migration marked (and, with a scenario, only that scenario's).
    fn marker(&self, d: Dialect, ctx: &Context) -> (String, Vec<Value>) {
        let mut sql = format!(
            "{} = 'backfill' AND {} = '{}'",
            d.json_text("metadata", "source"),
            d.json_text("metadata", "migration"),
            ctx.version
        );
        let mut params = Vec::new();
        if let Some(s) = ctx.scenario {
            sql.push_str(&format!(
                " AND {} = ?",
                d.json_text("metadata", "scenario_id")
            ));
            params.push(Value::Text(s.to_string()));
        }
        (sql, params)
    }

    /// The last id of the next `size` ids of `table` after `after`, or `None` when there are none.
    fn next_bound(tx: &mut dyn Tx, table: &str, after: i64, size: u64) -> DbResult<Option<i64>> {
        let sql = format!(
            "SELECT MAX(id) FROM (SELECT id FROM {table} WHERE id > ? ORDER BY id LIMIT ?) t"
        );
        Ok(tx
            .query_scalar(&sql, &[Value::Int(after), Value::Int(size as i64)])?
            .as_i64())
    }

    fn count(tx: &mut dyn Tx, sql: &str, params: &[Value]) -> DbResult<u64> {
        Ok(tx.query_scalar(sql, params)?.as_i64().unwrap_or(0).max(0) as u64)
    }
}

impl DataMigration for VersionBackfill {
    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, samples: usize) -> DbResult<Plan> {
        let counts = tx.query(
            &format!(
                "SELECT s.scenario_id, COUNT(*) {} GROUP BY s.scenario_id ORDER BY s.scenario_id",
                self.pending_from(false)
            ),
            &[],
        )?;
        let mut groups: Vec<Group> = counts
            .iter()
            .map(|r| Group {
                key: int(r, 0),
                count: int(r, 1) as u64,
                samples: Vec::new(),
            })
            .collect();
        let sample_sql = format!(
            "SELECT scenario_id, id, organization_id, name FROM (SELECT s.scenario_id, e.id, e.organization_id, e.name, \
             ROW_NUMBER() OVER (PARTITION BY s.scenario_id ORDER BY e.id) AS rn {}) t WHERE rn <= ? ORDER BY scenario_id, id",
            self.pending_from(false)
        );
        for row in tx.query(&sample_sql, &[Value::Int(samples as i64)])? {
            let key = int(&row, 0);
            if let Some(g) = groups.iter_mut().find(|g| g.key == key) {
                let mut it = row.into_iter().skip(1);
                let mut next = || it.next().unwrap_or(Value::Null).into_json();
                g.samples.push(
                    serde_json::json!({ "id": next(), "organization_id": next(), "name": next() }),
                );
            }
        }
        let skipped = Self::count(
            tx,
            &format!(
                "SELECT COUNT(*) FROM {} s WHERE EXISTS (SELECT 1 FROM {} v WHERE v.{} = s.entity_id)",
                self.eligible(false),
                self.versions,
                self.fk
            ),
            &[],
        )?;
        let total = groups.iter().map(|g| g.count).sum();
        Ok(Plan {
            group_by: "scenario_id".into(),
            total,
            skipped,
            groups,
        })
    }

    fn apply(&self, tx: &mut dyn Tx, batch: &Batch) -> DbResult<Step> {
        let after = batch.after_id()?;
        let Some(hi) = Self::next_bound(tx, self.entity, after, batch.size)? else {
            return Ok(Step::Done { rows: 0 });
        };
        let d = tx.dialect();
        let metadata = d.json_object(&[
            ("source", "'backfill'"),
            ("scenario_id", "s.scenario_id"),
            ("migration", &batch.ctx.version.to_string()),
            ("run_id", &format!("'{}'", batch.ctx.run_id)),
        ]);
        let sql = format!(
            "INSERT INTO {versions} (organization_id, {fk}, version_group_id, name, description, effective_from, \
             evolution_state, metadata, created_by, created_at, updated_at) \
             SELECT e.organization_id, e.id, {uuid}, e.name, e.description, {date}, 'new_embryo', {metadata}, NULL, {now}, {now} \
             {from} ORDER BY e.id",
            versions = self.versions,
            fk = self.fk,
            uuid = d.uuid_v4(),
            date = d.date_param(),
            now = d.utc_now(),
            from = self.pending_from(true),
        );
        let date = Value::Text(batch.ctx.run_date.format("%Y-%m-%d").to_string());
        let rows = tx.execute(&sql, &[date, Value::Int(after), Value::Int(hi)])?;
        Ok(Step::More {
            cursor: Cursor::from_id(hi),
            rows,
        })
    }

    fn revert(&self, tx: &mut dyn Tx, batch: &Batch) -> DbResult<Step> {
        let after = batch.after_id()?;
        let Some(hi) = Self::next_bound(tx, self.versions, after, batch.size)? else {
            return Ok(Step::Done { rows: 0 });
        };
        let (marker, extra) = self.marker(tx.dialect(), batch.ctx);
        let sql = format!(
            "DELETE FROM {} WHERE id > ? AND id <= ? AND {marker}",
            self.versions
        );
        let mut params = vec![Value::Int(after), Value::Int(hi)];
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
            "SELECT id FROM {} WHERE {marker} AND updated_at > created_at ORDER BY id LIMIT {MAX_LISTED}",
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
        let missing = Self::count(
            tx,
            &format!("SELECT COUNT(*) {}", self.pending_from(false)),
            &[],
        )?;
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
        let row = tx.query(&format!("SELECT MIN(id), MAX(id) FROM {table}"), &[])?;
        Ok(row
            .first()
            .and_then(|r| Some((r.first()?.as_i64()?, r.get(1)?.as_i64()?))))
    }
}
