//! The UPDATE shape: set columns of existing rows to computed values, exactly revertibly.
//!
//! Each batch reads its rows' old and new values (locking the rows), journals both in the ledger's
//! `backfill_undo` in the same transaction, then writes the new values. One journal entry per row and
//! migration: a top-up updates the entry's new values and keeps the first old ones, so revert always
//! restores what was there before the migration. Revert is the runner's: it walks the journal,
//! refuses rows whose current values are no longer what we wrote (someone edited them) unless
//! `--force`, restores the old values and drops the entries. Values travel as JSON: integers, text,
//! floats, dates and times (as text) restore exactly.

use crate::db::{DbError, DbResult, Dialect, Tx, Value};
use crate::migration::{Context, DataMigration, Key, KeyRange, Plan, Shape};

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
}

impl UpdateBackfill {
    /// Rows in `[lo, hi]` (or all) whose value would change: key, old values, new values.
    fn changing(&self, d: Dialect, ranged: bool, lock: bool) -> String {
        let old: Vec<String> = self.columns.iter().map(|c| format!("t.{c}")).collect();
        let new: Vec<String> = self.values.iter().map(|v| format!("({v})")).collect();
        let differs: Vec<String> = old
            .iter()
            .zip(&new)
            .map(|(o, n)| d.distinct(o, n))
            .collect();
        // Aliased: MySQL refuses a derived table (the plan's count) with two columns of one name,
        // as `t.description, (t.description)` would be.
        let select: Vec<String> = std::iter::once(format!("t.{} AS k", self.key))
            .chain(old.iter().enumerate().map(|(i, o)| format!("{o} AS o{i}")))
            .chain(new.iter().enumerate().map(|(i, n)| format!("{n} AS n{i}")))
            .collect();
        let mut sql = format!(
            "SELECT {} FROM {} t WHERE ({})",
            select.join(", "),
            self.table,
            differs.join(" OR "),
        );
        if let Some(only) = self.only {
            sql.push_str(&format!(" AND ({only})"));
        }
        if ranged {
            sql.push_str(&format!(" AND t.{0} >= ? AND t.{0} <= ?", self.key));
        }
        sql.push_str(&format!(" ORDER BY t.{}", self.key));
        if lock {
            sql.push_str(d.for_update());
        }
        sql
    }
}

impl DataMigration for UpdateBackfill {
    fn shape(&self) -> Shape {
        Shape::Update
    }

    fn key(&self) -> Key {
        Key {
            table: self.table,
            column: self.key,
        }
    }

    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, samples: usize) -> DbResult<Plan> {
        let count = format!(
            "SELECT COUNT(*) FROM ({}) c",
            self.changing(tx.dialect(), false, false)
        );
        let total = tx.query_scalar(&count, &[])?.as_i64().unwrap_or(0).max(0) as u64;
        let mut plan = Plan::ungrouped(total, 0, Vec::new());
        let fields = sample_fields(self.key, self.columns);
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let mut sql = self.changing(tx.dialect(), true, false);
        // The sampler wants the group first: one group, 0.
        sql = format!("SELECT 0, s.* FROM ({sql}) s");
        crate::kit::samples::fill(tx, self.key(), &mut plan.groups, samples, &sql, 1, &fields)?;
        Ok(plan)
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        let sql = self.changing(tx.dialect(), true, true);
        let rows = tx.query(&sql, &range.params(1))?;
        let n = self.columns.len();
        let changes: Vec<Change> = rows
            .into_iter()
            .map(|row| {
                let mut it = row.into_iter();
                let key = it.next().and_then(|v| v.as_i64()).unwrap_or(0);
                let old: Vec<Value> = it.by_ref().take(n).collect();
                let new: Vec<Value> = it.collect();
                Change { key, old, new }
            })
            .collect();
        journal(tx, ctx, self.table, self.key, self.columns, range, &changes)?;
        let sets: Vec<String> = self.columns.iter().map(|c| format!("{c} = ?")).collect();
        let update = format!(
            "UPDATE {} SET {} WHERE {} = ?",
            self.table,
            sets.join(", "),
            self.key
        );
        for c in &changes {
            let mut params = c.new.clone();
            params.push(Value::Int(c.key));
            tx.execute(&update, &params)?;
        }
        Ok(changes.len() as u64)
    }
}

/// Sample fields: the key, then `old_<col>` and `new_<col>` per column.
fn sample_fields(key: &str, columns: &[&str]) -> Vec<String> {
    let mut fields = vec![key.to_string()];
    fields.extend(columns.iter().map(|c| format!("old_{c}")));
    fields.extend(columns.iter().map(|c| format!("new_{c}")));
    fields
}

/// One row's change.
pub struct Change {
    pub key: i64,
    pub old: Vec<Value>,
    pub new: Vec<Value>,
}

fn as_object(columns: &[&str], values: &[Value]) -> String {
    crate::kit::samples::object(columns, values.iter().cloned()).to_string()
}

/// Journals `changes` of `table` (keys within `range`) in the batch's transaction: a new entry per
/// row, or, for a row this migration changed before (a top-up), its new values only.
pub fn journal(
    tx: &mut dyn Tx,
    ctx: &Context,
    table: &str,
    key_column: &str,
    columns: &[&str],
    range: KeyRange,
    changes: &[Change],
) -> DbResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let known: std::collections::HashSet<i64> = tx
        .query(
            "SELECT row_key FROM backfill_undo WHERE version = ? AND table_name = ? AND row_key >= ? AND row_key <= ?",
            &[Value::Int(ctx.version), table.into(), Value::Int(range.lo), Value::Int(range.hi)],
        )?
        .iter()
        .filter_map(|r| r.first().and_then(Value::as_i64))
        .collect();
    let run = ctx.run_id.to_string();
    for c in changes {
        let new = as_object(columns, &c.new);
        if known.contains(&c.key) {
            tx.execute(
                "UPDATE backfill_undo SET new_values = ?, run_id = ? WHERE version = ? AND table_name = ? AND row_key = ?",
                &[new.into(), run.as_str().into(), Value::Int(ctx.version), table.into(), Value::Int(c.key)],
            )?;
        } else {
            tx.execute(
                "INSERT INTO backfill_undo (version, run_id, table_name, key_column, row_key, old_values, new_values) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                &[
                    Value::Int(ctx.version),
                    run.as_str().into(),
                    table.into(),
                    key_column.into(),
                    Value::Int(c.key),
                    as_object(columns, &c.old).into(),
                    new.into(),
                ],
            )?;
        }
    }
    Ok(())
}

/// The journal, as the runner walks it on revert.
pub const JOURNAL_KEY: Key = Key {
    table: "backfill_undo",
    column: "id",
};

/// How many rows can be listed in a refusal.
const MAX_LISTED: usize = 100;

struct Entry {
    id: i64,
    table: String,
    key_column: String,
    key: i64,
    old: serde_json::Map<String, serde_json::Value>,
    new: serde_json::Map<String, serde_json::Value>,
}

fn damaged(what: &str) -> DbError {
    DbError::query(format!(
        "the undo journal (backfill_undo) has a damaged entry: {what}; it was edited by hand; restore it from a backup"
    ))
}

/// Journal entries may only name plain identifiers: they become SQL.
fn identifier(name: &str) -> DbResult<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(damaged(&format!("`{name}` is not a table or column name")))
    }
}

fn entries(tx: &mut dyn Tx, version: i64, range: KeyRange) -> DbResult<Vec<Entry>> {
    let rows = tx.query(
        "SELECT id, table_name, key_column, row_key, old_values, new_values FROM backfill_undo \
         WHERE version = ? AND id >= ? AND id <= ? ORDER BY id",
        &[
            Value::Int(version),
            Value::Int(range.lo),
            Value::Int(range.hi),
        ],
    )?;
    rows.into_iter()
        .map(|r| {
            let text = |i: usize| r.get(i).and_then(Value::as_str).unwrap_or_default();
            let object = |i: usize| match serde_json::from_str(text(i)) {
                Ok(serde_json::Value::Object(m)) => Ok(m),
                _ => Err(damaged("old or new values are not a JSON object")),
            };
            Ok(Entry {
                id: r.first().and_then(Value::as_i64).unwrap_or(0),
                table: identifier(text(1))?.to_string(),
                key_column: identifier(text(2))?.to_string(),
                key: r.get(3).and_then(Value::as_i64).unwrap_or(0),
                old: object(4)?,
                new: object(5)?,
            })
        })
        .collect()
}

/// The row's current values of the entry's columns; `None` when the row is gone.
fn current(
    tx: &mut dyn Tx,
    e: &Entry,
    lock: bool,
) -> DbResult<Option<serde_json::Map<String, serde_json::Value>>> {
    let columns: Vec<&str> = e
        .new
        .keys()
        .map(|c| identifier(c))
        .collect::<DbResult<_>>()?;
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = ?{}",
        columns.join(", "),
        e.table,
        e.key_column,
        if lock { tx.dialect().for_update() } else { "" }
    );
    let row = tx.query(&sql, &[Value::Int(e.key)])?.into_iter().next();
    Ok(row.map(|r| {
        columns
            .iter()
            .map(|c| c.to_string())
            .zip(r.into_iter().map(Value::into_json))
            .collect()
    }))
}

/// Equal as the journal stores them: numbers compare by value (an integer column read back as a
/// float, or the other way, is the same value).
fn same(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| match (v, b.get(k)) {
            (serde_json::Value::Number(x), Some(serde_json::Value::Number(y))) => {
                x.as_f64() == y.as_f64()
            }
            (x, Some(y)) => x == y,
            (_, None) => false,
        })
}

fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Int(i64::from(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or(Value::Float(n.as_f64().unwrap_or(0.0)), Value::Int),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// Keys of rows this migration changed that were edited since (their values are no longer ours), up to
/// a listable number, read through the journal in chunks.
pub fn edited(tx: &mut dyn Tx, version: i64) -> DbResult<Vec<i64>> {
    let mut found = Vec::new();
    let mut from = i64::MIN;
    while let Some(hi) = crate::kit::bounds::next_bound(tx, JOURNAL_KEY, from, 1_000)? {
        for e in entries(tx, version, KeyRange { lo: from, hi })? {
            if current(tx, &e, false)?.is_some_and(|now| !same(&now, &e.new)) {
                found.push(e.key);
                if found.len() >= MAX_LISTED {
                    return Ok(found);
                }
            }
        }
        let Some(next) = hi.checked_add(1) else { break };
        from = next;
    }
    Ok(found)
}

/// Restores the old values of the journal entries in `range` and drops them; returns how many rows
/// were restored. A row edited since (values not ours) fails the batch unless `force`; a row deleted
/// since has nothing to restore and only its entry goes.
pub fn restore(tx: &mut dyn Tx, version: i64, range: KeyRange, force: bool) -> DbResult<u64> {
    let mut restored = 0;
    for e in entries(tx, version, range)? {
        if let Some(now) = current(tx, &e, true)? {
            if !force && !same(&now, &e.new) {
                return Err(DbError::query(format!(
                    "{} row {} was edited after this migration changed it; review it, then rerun with --force to restore its old values anyway",
                    e.table, e.key
                )));
            }
            let sets: Vec<String> = e
                .old
                .keys()
                .map(|c| identifier(c).map(|c| format!("{c} = ?")))
                .collect::<DbResult<_>>()?;
            let mut params: Vec<Value> = e.old.values().map(to_value).collect();
            params.push(Value::Int(e.key));
            tx.execute(
                &format!(
                    "UPDATE {} SET {} WHERE {} = ?",
                    e.table,
                    sets.join(", "),
                    e.key_column
                ),
                &params,
            )?;
            restored += 1;
        }
        tx.execute(
            "DELETE FROM backfill_undo WHERE id = ?",
            &[Value::Int(e.id)],
        )?;
    }
    Ok(restored)
}

/// Journal entries per migration, for `status`.
pub fn sizes(tx: &mut dyn Tx) -> DbResult<Vec<(i64, i64)>> {
    Ok(tx
        .query(
            "SELECT version, COUNT(*) FROM backfill_undo GROUP BY version",
            &[],
        )?
        .iter()
        .map(|r| (crate::migration::int(r, 0), crate::migration::int(r, 1)))
        .collect())
}

/// `backfill forget VERSION`: drops a migration's journal; it cannot be reverted afterwards.
pub fn forget(tx: &mut dyn Tx, version: i64) -> DbResult<u64> {
    tx.execute(
        "DELETE FROM backfill_undo WHERE version = ?",
        &[Value::Int(version)],
    )
}
