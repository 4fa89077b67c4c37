//! The UPDATE shape: set columns of existing rows to computed values, exactly revertibly.
//!
//! Each batch reads its rows' old and new values (locking the rows), writes the new values, reads back
//! what the columns now hold, and journals both in the ledger's `backfill_undo` in the same
//! transaction (`kit::journal`). Values never pass through a float or a driver's idea of a type: they
//! cross as the dialect's exact text (`Dialect::exact_text`), so a 30-digit decimal, NaN, a
//! timestamp's microseconds and zone, or a blob come back as they were.

use crate::db::{DbError, DbResult, Dialect, Tx, Value, SCRATCH};
use crate::kit::migration::{Context, DataMigration, Key, KeyRange, Plan, Shape};
use std::collections::HashMap;

use crate::kit::journal::{self, journal, Change};

/// An UPDATE-shaped migration described by its table and SQL: see `examples/`.
pub struct UpdateBackfill {
    /// The table, aliased `t` in the expressions.
    pub table: &'static str,
    /// Its integer key column (one row per key).
    pub key: &'static str,
    /// The columns to set.
    pub columns: &'static [&'static str],
    /// One SQL expression per column, over `t`: the value it should have.
    pub values: &'static [&'static str],
    /// Only rows matching this condition over `t` (e.g. `t.status = 'active'`); `None`: every row.
    pub only: Option<&'static str>,
    /// Rows left alone for a reason the plan reports: `(reason, condition over t)`, e.g.
    /// `("scenario already held by another generation", "EXISTS (…)")`. Rows that would change and
    /// match the condition are counted as skipped, never written. The condition must be true or
    /// false, never NULL (a NULL would write the row).
    pub skip: Option<(&'static str, &'static str)>,
}

/// An [`UpdateBackfill`] whose expressions differ on some dialects, or that keeps no journal.
/// In `only` and the skip condition, `{new.COLUMN}` stands for the column's new-value expression
/// (on every shape), so a condition on the value need not repeat it.
pub struct TunedUpdate {
    /// The expressions every dialect runs unless overridden.
    pub update: UpdateBackfill,
    /// What one dialect runs instead.
    pub overrides: &'static [Override],
    /// `Some(reason)`: no undo journal is kept and `revert` refuses with the reason.
    pub irreversible: Option<&'static str>,
}

/// One expression of an [`UpdateBackfill`] replaced on one dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    /// The dialect that runs `sql` instead.
    pub dialect: Dialect,
    /// The expression it replaces.
    pub part: Part,
    /// The replacement, over `t` as the others.
    pub sql: &'static str,
}

/// Which expression an [`Override`] replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The new value of this column.
    Set(&'static str),
    /// `only`.
    Only,
    /// The skip condition.
    Skip,
}

impl UpdateBackfill {
    /// The statements' pieces on dialect `d`: `overrides` applied, `{new.COLUMN}` spelled out.
    fn on(&self, d: Dialect, overrides: &[Override], journaled: bool) -> Sql {
        let pick = |part: Part, base: &'static str| {
            overrides
                .iter()
                .find(|o| o.dialect == d && o.part == part)
                .map_or(base, |o| o.sql)
        };
        let values: Vec<&str> = self
            .columns
            .iter()
            .zip(self.values)
            .map(|(c, v)| pick(Part::Set(c), v))
            .collect();
        let spell = |cond: &str| {
            self.columns
                .iter()
                .zip(&values)
                .fold(cond.to_string(), |acc, (c, v)| {
                    acc.replace(&format!("{{new.{c}}}"), &format!("({v})"))
                })
        };
        Sql {
            table: self.table,
            key: self.key,
            columns: self.columns,
            only: self.only.map(|o| spell(pick(Part::Only, o))),
            skip: self.skip.map(|(why, s)| (why, spell(pick(Part::Skip, s)))),
            values: values.into_iter().map(String::from).collect(),
            journaled,
        }
    }
}

/// An [`UpdateBackfill`] resolved for one dialect: what the statements are built from.
struct Sql {
    table: &'static str,
    key: &'static str,
    columns: &'static [&'static str],
    values: Vec<String>,
    only: Option<String>,
    skip: Option<(&'static str, String)>,
    journaled: bool,
}

impl Sql {
    /// Each new value as its column will hold it. Where the dialect needs it (PostgreSQL), cast to
    /// the column's declared type, so `round(x, 2)` into a `numeric(10,4)` holding 1.2300 is no
    /// change, and the plan shows what will be stored.
    fn targets(&self, tx: &mut dyn Tx) -> DbResult<Vec<String>> {
        let values = self.values.iter().map(|v| format!("({v})"));
        let Some(sql) = tx.dialect().column_types_sql() else {
            return Ok(values.collect());
        };
        let types: HashMap<String, String> = tx
            .query(sql, &[self.table.into()])?
            .into_iter()
            .filter_map(|r| Some((r.first()?.as_str()?.into(), r.get(1)?.as_str()?.into())))
            .collect();
        self.columns
            .iter()
            .zip(values)
            .map(|(c, v)| match types.get(*c) {
                Some(ty) => Ok(format!("CAST({v} AS {ty})")),
                None => Err(DbError::query(format!(
                    "{} has no column {c}; fix the migration's columns",
                    self.table
                ))),
            })
            .collect()
    }

    /// Rows whose value would change: key, old values (and for a plan, new values).
    fn changing(&self, d: Dialect, targets: &[String], purpose: Purpose) -> String {
        let old: Vec<String> = self.columns.iter().map(|c| format!("t.{c}")).collect();
        let differs: Vec<String> = old
            .iter()
            .zip(targets)
            .map(|(o, n)| d.distinct(o, n))
            .collect();
        // Aliased: MySQL refuses a derived table (the plan's count) with two columns of one name.
        let mut select = vec![format!("t.{} AS k", self.key)];
        if purpose == Purpose::Journal {
            select.push(format!("{} AS o", d.exact_json(self.columns)));
        } else if purpose == Purpose::Apply {
            select.extend(
                old.iter()
                    .enumerate()
                    .map(|(i, o)| format!("{} AS o{i}", d.exact_text(o))),
            );
        } else {
            let readable = old.iter().chain(targets).map(|v| d.readable_text(v));
            select.extend(readable.enumerate().map(|(i, v)| format!("{v} AS v{i}")));
        }
        let mut sql = format!(
            "SELECT {} FROM {} t WHERE ({})",
            select.join(", "),
            self.table,
            differs.join(" OR "),
        );
        if let Some(only) = &self.only {
            sql.push_str(&format!(" AND ({only})"));
        }
        match (&self.skip, purpose) {
            (Some((_, skip)), Purpose::Skipped) => sql.push_str(&format!(" AND ({skip})")),
            (Some((_, skip)), _) => sql.push_str(&format!(" AND NOT ({skip})")),
            (None, _) => {}
        }
        if matches!(purpose, Purpose::Sample | Purpose::Apply | Purpose::Journal) {
            sql.push_str(&format!(" AND t.{0} >= ? AND t.{0} <= ?", self.key));
        }
        sql.push_str(&format!(" ORDER BY t.{}", self.key));
        if matches!(purpose, Purpose::Apply | Purpose::Journal) {
            sql.push_str(d.for_update());
        }
        sql
    }

    /// How many rows a whole-table query of `purpose` selects.
    fn count(&self, tx: &mut dyn Tx, targets: &[String], purpose: Purpose) -> DbResult<u64> {
        let sql = self.changing(tx.dialect(), targets, purpose);
        let n = tx.query_scalar(&format!("SELECT COUNT(*) FROM ({sql}) c"), &[])?;
        Ok(n.as_i64().unwrap_or(0).max(0) as u64)
    }

    /// Sets the changed rows' columns to their values, computed on the server, a few hundred keys
    /// per statement.
    fn write(&self, tx: &mut dyn Tx, changes: &[Change]) -> DbResult<()> {
        const KEYS_PER_STATEMENT: usize = 500;
        let d = tx.dialect();
        let values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        for part in changes.chunks(KEYS_PER_STATEMENT) {
            let sql = d.update_rows(self.table, self.key, self.columns, &values, part.len());
            let keys: Vec<Value> = part.iter().map(|c| Value::Int(c.key)).collect();
            tx.execute(&sql, &keys)?;
        }
        Ok(())
    }

    /// What the rows of `range` hold now, as exact text, by key.
    fn stored(&self, tx: &mut dyn Tx, range: KeyRange) -> DbResult<HashMap<i64, Vec<Value>>> {
        let d = tx.dialect();
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| d.exact_text(&format!("t.{c}")))
            .collect();
        let sql = format!(
            "SELECT t.{k}, {} FROM {} t WHERE t.{k} >= ? AND t.{k} <= ?",
            columns.join(", "),
            self.table,
            k = self.key
        );
        Ok(split(tx.query(&sql, &range.params(1))?)
            .into_iter()
            .map(|c| (c.key, c.old))
            .collect())
    }
}

/// What a query of the changing rows is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The plan's count: every row, shown readably.
    Count,
    /// The plan's skipped count: the rows that would change but match `skip`.
    Skipped,
    /// The plan's samples: a key range, old and new values shown readably.
    Sample,
    /// A batch: a key range, rows locked, old values in exact text.
    Apply,
    /// A batch journaled on the server: as `Apply`, the old values as one JSON object.
    Journal,
}

/// Rows of `key, values…` as changes holding those values as old ones.
fn split(rows: Vec<Vec<Value>>) -> Vec<Change> {
    rows.into_iter()
        .map(|row| {
            let mut it = row.into_iter();
            let key = it.next().and_then(|v| v.as_i64()).unwrap_or(0);
            Change {
                key,
                old: it.collect(),
                new: Vec::new(),
            }
        })
        .collect()
}

impl UpdateBackfill {
    /// The one statement that writes and journals a batch no run journaled before, where the
    /// dialect has one (PostgreSQL; `None` elsewhere), for reading the server's plan of it. Its
    /// parameters: the range's ends twice, then the run id, the table and the key column.
    pub fn journaled_batch_sql(&self, tx: &mut dyn Tx, version: i64) -> DbResult<Option<String>> {
        let d = tx.dialect();
        let sql = self.on(d, &[], true);
        let targets = sql.targets(tx)?;
        let select = sql.changing(d, &targets, Purpose::Journal);
        Ok(sql.journaled_sql(d, &select, version))
    }
}

impl DataMigration for UpdateBackfill {
    fn shape(&self) -> Shape<'_> {
        Shape::Update
    }

    fn key(&self) -> Key {
        Key {
            table: self.table,
            column: self.key,
        }
    }

    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, samples: usize) -> DbResult<Plan> {
        self.on(tx.dialect(), &[], true).plan(tx, samples)
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        self.on(tx.dialect(), &[], true).apply(tx, ctx, range)
    }
}

impl TunedUpdate {
    fn sql(&self, d: Dialect) -> Sql {
        self.update
            .on(d, self.overrides, self.irreversible.is_none())
    }

    /// Prepares every statement an apply runs on an empty key range, so SQL that does not parse
    /// or names what is not there fails here: the dialect's error, naming which part failed.
    pub fn probe(&self, tx: &mut dyn Tx) -> std::result::Result<(), (Part, DbError)> {
        self.sql(tx.dialect()).probe(tx)
    }
}

impl DataMigration for TunedUpdate {
    fn shape(&self) -> Shape<'_> {
        match self.irreversible {
            Some(why) => Shape::Irreversible(why),
            None => Shape::Update,
        }
    }

    fn key(&self) -> Key {
        self.update.key()
    }

    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, samples: usize) -> DbResult<Plan> {
        self.sql(tx.dialect()).plan(tx, samples)
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        self.sql(tx.dialect()).apply(tx, ctx, range)
    }
}

impl Sql {
    fn key(&self) -> Key {
        Key {
            table: self.table,
            column: self.key,
        }
    }

    /// Each expression on its own (so a failure names it), then the batch's whole query, on no
    /// rows.
    fn probe(&self, tx: &mut dyn Tx) -> std::result::Result<(), (Part, DbError)> {
        let from = format!("FROM {} t WHERE 1 = 0", self.table);
        for (c, v) in self.columns.iter().zip(&self.values) {
            let sql = format!("SELECT t.{c}, ({v}) {from}");
            tx.query(&sql, &[]).map_err(|e| (Part::Set(c), e))?;
        }
        let conditions = [
            (Part::Only, self.only.as_deref()),
            (Part::Skip, self.skip.as_ref().map(|s| s.1.as_str())),
        ];
        for (part, cond) in conditions {
            if let Some(cond) = cond {
                let sql = format!("SELECT 1 {from} AND ({cond})");
                tx.query(&sql, &[]).map_err(|e| (part, e))?;
            }
        }
        let targets = self.targets(tx).map_err(|e| (Part::Only, e))?;
        let sql = self.changing(tx.dialect(), &targets, Purpose::Sample);
        let empty = KeyRange { lo: 1, hi: 0 };
        tx.query(&sql, &empty.params(1))
            .map_err(|e| (Part::Only, e))?;
        Ok(())
    }

    fn plan(&self, tx: &mut dyn Tx, samples: usize) -> DbResult<Plan> {
        let d = tx.dialect();
        let targets = self.targets(tx)?;
        let total = self.count(tx, &targets, Purpose::Count)?;
        let mut plan = match &self.skip {
            Some((why, _)) => {
                let skipped = self.count(tx, &targets, Purpose::Skipped)?;
                let mut plan = Plan::ungrouped(total, skipped, Vec::new());
                plan.skipped_because = why.to_string();
                plan
            }
            None => Plan::ungrouped(total, 0, Vec::new()),
        };
        let fields = sample_fields(self.key, self.columns);
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let sql = self.changing(d, &targets, Purpose::Sample);
        // The sampler wants the group first: one group, 0.
        let sql = format!("SELECT 0, s.* FROM ({sql}) s");
        crate::kit::samples::fill(tx, self.key(), &mut plan.groups, samples, &sql, 1, &fields)?;
        Ok(plan)
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        let d = tx.dialect();
        let targets = self.targets(tx)?;
        if self.journaled && !journal::has_entries(tx, ctx.version, self.table, range)? {
            if let Some(n) = self.apply_in_place(tx, ctx, &targets, range)? {
                return Ok(n);
            }
        }
        let sql = self.changing(d, &targets, Purpose::Apply);
        let mut changes = split(tx.query(&sql, &range.params(1))?);
        if changes.is_empty() {
            return Ok(0);
        }
        self.write(tx, &changes)?;
        if !self.journaled {
            return Ok(changes.len() as u64);
        }
        // What the columns hold, not what the expressions gave: the column's type has the last
        // word (a decimal's scale, a padded CHAR, a non-deterministic expression).
        let mut stored = self.stored(tx, range)?;
        for c in &mut changes {
            if let Some(now) = stored.remove(&c.key) {
                c.new = now;
            }
        }
        journal(tx, ctx, self.table, self.key, self.columns, range, &changes)?;
        Ok(changes.len() as u64)
    }
}

impl Sql {
    /// [`Dialect::update_journaled`] of this update over its changing rows (`select`, as
    /// [`Purpose::Journal`] reads them): `None` where the dialect has no such statement.
    fn journaled_sql(&self, d: Dialect, select: &str, version: i64) -> Option<String> {
        let values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        d.update_journaled(select, self.table, self.key, self.columns, &values, version)
    }

    /// A batch no run of this migration journaled before, all on the server: the changing rows'
    /// old values into the journal (rows locked; on MySQL/MariaDB into a scratch table first), the
    /// rows written from their keys, then what they hold into the journal. Nothing of a row crosses
    /// to the client. `None`: the user may not create the scratch table this dialect needs (nothing
    /// was done).
    fn apply_in_place(
        &self,
        tx: &mut dyn Tx,
        ctx: &Context,
        targets: &[String],
        range: KeyRange,
    ) -> DbResult<Option<u64>> {
        let d = tx.dialect();
        let select = self.changing(d, targets, Purpose::Journal);
        if let Some(sql) = self.journaled_sql(d, &select, ctx.version) {
            let mut params = range.params(2);
            params.extend(journal::entry_params(ctx, self.table, self.key));
            return tx.execute(&sql, &params).map(Some);
        }
        let values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        if let Some(scratch) = d.journal_scratch() {
            return self.apply_through_scratch(tx, ctx, &select, &values, &scratch, range);
        }
        let n = journal::record_old(tx, ctx, self.table, self.key, &select, &range.params(1))?;
        if n == 0 {
            return Ok(Some(0));
        }
        let (rows, params) = journal::journaled_rows(ctx.version, self.table, self.key, range);
        let sql = d.update_where(self.table, self.key, self.columns, &values, &rows);
        tx.execute(&sql, &params)?;
        journal::record_new(tx, ctx.version, self.table, self.key, self.columns, range)?;
        Ok(Some(n))
    }

    /// [`Sql::apply_in_place`] through the session's scratch table (`scratch`, its drop and create):
    /// the changing rows' (`select`) keys and old values into it (rows locked), the rows written from
    /// its keys to their `values`, then an entry per row. The journal is only inserted into, never
    /// read while writing. `None` for a user without the privilege (MySQL's CREATE TEMPORARY
    /// TABLES): its batches send their values through the client, as before the scratch table.
    fn apply_through_scratch(
        &self,
        tx: &mut dyn Tx,
        ctx: &Context,
        select: &str,
        values: &[&str],
        scratch: &[String; 2],
        range: KeyRange,
    ) -> DbResult<Option<u64>> {
        for sql in scratch {
            match tx.execute(sql, &[]) {
                Err(e) if e.is_denied() => {
                    tracing::debug!(
                        "no scratch table ({e}): the batch's values go through the client"
                    );
                    return Ok(None);
                }
                done => done?,
            };
        }
        let n = tx.execute(
            &format!("INSERT INTO {SCRATCH} (k, o) {select}"),
            &range.params(1),
        )?;
        if n > 0 {
            let cond = format!(
                "t.{0} >= ? AND t.{0} <= ? AND t.{0} IN (SELECT k FROM {SCRATCH})",
                self.key
            );
            let sql = tx
                .dialect()
                .update_where(self.table, self.key, self.columns, values, &cond);
            tx.execute(&sql, &range.params(1))?;
            journal::record_from_scratch(tx, ctx, self.table, self.key, self.columns)?;
        }
        tx.execute(&scratch[0], &[])?;
        Ok(Some(n))
    }
}

/// Sample fields: the key, then `old_<col>` and `new_<col>` per column.
fn sample_fields(key: &str, columns: &[&str]) -> Vec<String> {
    let mut fields = vec![key.to_string()];
    fields.extend(columns.iter().map(|c| format!("old_{c}")));
    fields.extend(columns.iter().map(|c| format!("new_{c}")));
    fields
}
