//! The INSERT shape written as one whole `SELECT` (a declarative file's `shape = "insert"`): the
//! rows still missing, one field per column, with `:lo` and `:hi` bounding the walked key
//! (`kit::placeholders`). Like [`InsertBackfill`](crate::kit::insert::InsertBackfill), whose
//! ledger record it shares (`kit::inserted`), it inserts with `RETURNING` and records the new keys,
//! revert deletes exactly those (one group's with `--group`), and with `timestamps` it refuses rows
//! the app edited since. The SELECT is wrapped as `WITH bf_rows (columns) AS (…)`, so plan, samples
//! and apply read the very same rows, and a SELECT whose fields do not match the columns is refused.

use crate::db::{DbError, DbResult, Dialect, Row, Tx};
use crate::kit::inserted::{self, Target};
use crate::kit::migration::{
    int, Context, DataMigration, Grouping, Key, KeyRange, Plan, Revert, Shape,
};
use crate::kit::placeholders::Ranged;

/// Every key, for `plan` and `verify --data`, which count over the whole walk.
const EVERY_KEY: KeyRange = KeyRange {
    lo: i64::MIN,
    hi: i64::MAX,
};

/// No key at all, for probing the SQL on no rows.
const NO_KEY: KeyRange = KeyRange { lo: 1, hi: 0 };

/// An INSERT … SELECT over a walked key range.
pub struct InsertSelect {
    /// The table rows are inserted into.
    pub table: &'static str,
    /// Its integer key column (recorded for revert).
    pub key: &'static str,
    /// The columns written, in the SELECT's order.
    pub columns: &'static [&'static str],
    /// The rows still missing (a second apply must find none), one field per column, with `:lo`
    /// and `:hi` where the walked key's range goes.
    pub select: &'static str,
    /// What one dialect runs instead of `select`.
    pub overrides: &'static [(Dialect, &'static str)],
    /// Laravel's timestamps: `created_at` and `updated_at` get the run's UTC now, and revert refuses
    /// rows whose `updated_at` has moved past `created_at` since, without `--force`.
    pub timestamps: bool,
    /// The key the runner walks, e.g. `capabilities.id`.
    pub walk: Key,
    /// The group: its column must be one of `columns`.
    pub grouping: Option<Grouping>,
}

/// What went wrong when the SQL was probed.
pub enum Unfit {
    /// The dialect refused the SQL.
    Sql(DbError),
    /// The SELECT gives this many fields, not one per column.
    Fields(usize),
}

impl InsertSelect {
    fn target(&self) -> Target<'static> {
        Target {
            table: self.table,
            key: self.key,
        }
    }

    /// The SELECT dialect `d` runs, placeholders read.
    fn ranged(&self, d: Dialect) -> DbResult<Ranged> {
        let select = self
            .overrides
            .iter()
            .find(|(o, _)| *o == d)
            .map_or(self.select, |(_, sql)| sql);
        Ranged::parse(select)
            .map_err(|e| DbError::query(format!("the SELECT inserting into {} {e}", self.table)))
    }

    /// `WITH bf_rows (columns) AS (select) <then>`: the rows as named columns.
    fn over_rows(&self, ranged: &Ranged, then: &str) -> String {
        format!(
            "WITH bf_rows ({}) AS ({}\n) {then}",
            self.columns.join(", "),
            ranged.sql
        )
    }

    /// The group's column, or `0` without groups.
    fn group(&self) -> &'static str {
        self.grouping.map_or("0", |g| g.column)
    }

    /// Runs a statement over the rows of `range`.
    fn query(&self, tx: &mut dyn Tx, then: &str, range: KeyRange) -> DbResult<Vec<Row>> {
        let ranged = self.ranged(tx.dialect())?;
        tx.query(&self.over_rows(&ranged, then), &ranged.params(range))
    }

    /// The statement that inserts one range (without its RETURNING clause).
    fn insert_sql(&self, d: Dialect, ranged: &Ranged) -> String {
        let (mut columns, mut fields) = (self.columns.to_vec(), self.columns.to_vec());
        if self.timestamps {
            columns.extend(["created_at", "updated_at"]);
            fields.extend([d.utc_now(), d.utc_now()]);
        }
        let select = format!("SELECT {} FROM bf_rows", fields.join(", "));
        format!(
            "INSERT INTO {} ({}) {}",
            self.table,
            columns.join(", "),
            self.over_rows(ranged, &select)
        )
    }

    /// Runs the SQL on no rows: the dialect's error, or a SELECT whose fields are not one per
    /// column (PostgreSQL takes a SELECT with more fields than the column list names).
    pub fn probe(&self, tx: &mut dyn Tx) -> DbResult<Option<Unfit>> {
        let ranged = self.ranged(tx.dialect())?;
        let every = "SELECT bf_rows.* FROM (SELECT 1 AS bf_one) bf_one LEFT JOIN bf_rows ON 1 = 1";
        let rows = match tx.query(&self.over_rows(&ranged, every), &ranged.params(NO_KEY)) {
            Ok(rows) => rows,
            Err(e) => return Ok(Some(Unfit::Sql(e))),
        };
        let fields = rows.first().map_or(self.columns.len(), Vec::len);
        if fields != self.columns.len() {
            return Ok(Some(Unfit::Fields(fields)));
        }
        Ok(self.plan_rows(tx, NO_KEY).err().map(Unfit::Sql))
    }

    /// `(group, count)` of the rows to insert in `range`.
    fn plan_rows(&self, tx: &mut dyn Tx, range: KeyRange) -> DbResult<Vec<Row>> {
        let then = match self.grouping {
            Some(g) => format!(
                "SELECT {g}, COUNT(*) FROM bf_rows GROUP BY {g} ORDER BY 1",
                g = g.column
            ),
            None => "SELECT 0, COUNT(*) FROM bf_rows".to_string(),
        };
        self.query(tx, &then, range)
    }
}

impl DataMigration for InsertSelect {
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
        let rows = self.plan_rows(tx, EVERY_KEY)?;
        let ranged = self.ranged(tx.dialect())?;
        let fields = format!(
            "SELECT {}, {} FROM bf_rows",
            self.group(),
            self.columns.join(", ")
        );
        let sample = self.over_rows(&ranged, &fields);
        let params = |range: KeyRange| ranged.params(range);
        Plan::counted(self.grouping, &rows, |groups| {
            crate::kit::samples::fill_with(
                tx,
                self.walk,
                groups,
                samples,
                &sample,
                &params,
                self.columns,
            )
        })
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        let ranged = self.ranged(tx.dialect())?;
        let sql = self.insert_sql(tx.dialect(), &ranged);
        let group = self.grouping.map(|g| g.column);
        let params = ranged.params(range);
        inserted::insert_recording(tx, ctx, self.target(), group, (&sql, &params))
    }

    fn check(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Vec<String>> {
        let mut problems = inserted::check(tx, ctx, self.target(), self.timestamps)?;
        let rows = self.query(tx, "SELECT COUNT(*) FROM bf_rows", EVERY_KEY)?;
        let missing = rows.first().map_or(0, |r| int(r, 0));
        if missing > 0 {
            problems.push(format!("{}: {missing} rows are still missing", self.table));
        }
        Ok(problems)
    }

    fn preflight(&self, tx: &mut dyn Tx) -> DbResult<()> {
        self.plan_rows(tx, NO_KEY)?;
        inserted::require_returning(tx, self.table)
    }
}

impl Revert for InsertSelect {
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
