//! The INSERT shape for a table with no marker column: insert one row per row of a SELECT over a
//! walked key range, recording the new rows' keys in the ledger (`kit::inserted`) so revert deletes
//! exactly them. The marker shape (`version_backfill`) stays for tables with a JSON `metadata` column.
//!
//! Every field is a plain string, so a migration can be a `static` and a file read at run time can
//! fill one (with leaked strings).

use crate::db::{DbError, DbResult, Dialect, Tx};
use crate::kit::inserted::{self, Target};
use crate::kit::migration::{Context, DataMigration, Grouping, Key, KeyRange, Plan, Revert, Shape};

/// An INSERT-shaped migration described by its tables and SQL.
pub struct InsertBackfill {
    /// The table rows are inserted into, e.g. `scenario_capabilities`.
    pub table: &'static str,
    /// Its integer key column (recorded for revert), e.g. `id`.
    pub key: &'static str,
    /// The columns written, in order.
    pub columns: &'static [&'static str],
    /// One SQL expression per column over `source`'s tables: the value (or default) it gets.
    pub values: &'static [&'static str],
    /// Laravel's timestamps: `created_at` and `updated_at` get the run's UTC now, and revert refuses
    /// rows whose `updated_at` has moved past `created_at` since (edited by the app) without `--force`.
    pub timestamps: bool,
    /// `FROM … WHERE …`: one row per row to insert, only those still missing (the migration is
    /// idempotent: a second apply must find nothing). The walked range is appended with `AND`.
    pub source: &'static str,
    /// The key apply walks, e.g. `capabilities.id`.
    pub walk: Key,
    /// The walked key as `source` names it, e.g. `c.id`.
    pub range: &'static str,
    /// The group: its column must be one of `columns` (e.g. `scenario_id`, label `scenario`).
    pub grouping: Option<Grouping>,
}

impl InsertBackfill {
    fn target(&self) -> Target<'static> {
        Target {
            table: self.table,
            key: self.key,
        }
    }

    /// The group's value expression (from `values`), or `0` without groups.
    fn group_value(&self) -> DbResult<&'static str> {
        let Some(g) = self.grouping else {
            return Ok("0");
        };
        let at = self.columns.iter().position(|c| *c == g.column);
        at.and_then(|i| self.values.get(i).copied()).ok_or_else(|| {
            DbError::query(format!(
                "the migration groups by {} but writes no such column into {}; add it to columns and values",
                g.column, self.table
            ))
        })
    }

    /// The rows to insert within the walked range: `SELECT <fields> <source> AND <range>`.
    fn ranged(&self, fields: &str) -> String {
        format!(
            "SELECT {fields} {} AND {r} >= ? AND {r} <= ?",
            self.source,
            r = self.range
        )
    }

    /// The statement that writes one range (without its RETURNING clause); parameters: the range.
    fn insert_sql(&self, d: Dialect) -> DbResult<String> {
        if self.columns.len() != self.values.len() || self.columns.is_empty() {
            return Err(DbError::query(format!(
                "the migration into {} names {} columns and {} values; give one value per column",
                self.table,
                self.columns.len(),
                self.values.len()
            )));
        }
        let (mut columns, mut values) = (self.columns.to_vec(), self.values.to_vec());
        if self.timestamps {
            columns.extend(["created_at", "updated_at"]);
            values.extend([d.utc_now(), d.utc_now()]);
        }
        Ok(format!(
            "INSERT INTO {} ({}) {} ORDER BY {}",
            self.table,
            columns.join(", "),
            self.ranged(&values.join(", ")),
            self.range
        ))
    }

    fn count(tx: &mut dyn Tx, sql: &str) -> DbResult<u64> {
        Ok(tx.query_scalar(sql, &[])?.as_i64().unwrap_or(0).max(0) as u64)
    }
}

impl DataMigration for InsertBackfill {
    fn shape(&self) -> Shape<'_> {
        Shape::Insert(self)
    }

    fn key(&self) -> Key {
        self.walk
    }

    fn grouping(&self) -> Option<Grouping> {
        self.grouping
    }

    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, samples: usize) -> DbResult<Plan> {
        let group = self.group_value()?;
        let sql = match self.grouping {
            Some(_) => format!(
                "SELECT {group}, COUNT(*) {} GROUP BY {group} ORDER BY 1",
                self.source
            ),
            None => format!("SELECT 0, COUNT(*) {}", self.source),
        };
        let rows = tx.query(&sql, &[])?;
        let sample = self.ranged(&format!("{group}, {}", self.values.join(", ")));
        let sample = format!("{sample} ORDER BY {}", self.range);
        Plan::counted(self.grouping, &rows, |groups| {
            crate::kit::samples::fill(tx, self.walk, groups, samples, &sample, 1, self.columns)
        })
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        let sql = self.insert_sql(tx.dialect())?;
        let group = self.grouping.map(|g| g.column);
        let params = range.params(1);
        inserted::insert_recording(tx, ctx, self.target(), group, (&sql, &params))
    }

    fn check(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Vec<String>> {
        let mut problems = inserted::check(tx, ctx, self.target(), self.timestamps)?;
        let missing = Self::count(tx, &format!("SELECT COUNT(*) {}", self.source))?;
        if missing > 0 {
            problems.push(format!("{}: {missing} rows are still missing", self.table));
        }
        Ok(problems)
    }

    fn preflight(&self, tx: &mut dyn Tx) -> DbResult<()> {
        self.group_value()?;
        self.insert_sql(tx.dialect())?;
        let probe = format!(
            "SELECT (SELECT 1 FROM {} LIMIT 1), (SELECT 1 FROM {} LIMIT 1)",
            self.table, self.walk.table
        );
        tx.query(&probe, &[])?;
        inserted::require_returning(tx, self.table)
    }
}

impl Revert for InsertBackfill {
    fn revert_key(&self) -> Key {
        inserted::INSERTED_KEY
    }

    fn table(&self) -> &str {
        self.table
    }

    fn revert(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        inserted::delete_recorded(tx, ctx, self.target(), range)
    }

    fn revert_span(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Option<(i64, i64)>> {
        inserted::recorded_span(tx, ctx, self.target())
    }

    fn edited_rows(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Vec<i64>> {
        if !self.timestamps {
            return Ok(Vec::new());
        }
        inserted::edited(tx, ctx, self.target())
    }
}
