//! Inserted keys: how an INSERT-shaped migration finds its rows in a table with no marker column.
//!
//! Each batch inserts with `RETURNING` and records the new rows' keys (and groups) in the ledger's
//! `backfill_inserted`, in the batch's own transaction: a rolled-back batch records nothing, a
//! committed one exactly its rows, and fencing stays the batch's. Revert walks those entries, deletes
//! the rows they name (only those, only the group's with `--group`) and forgets them. The key is the
//! row's own: a row the app deleted and wrote again under the same natural key is not ours.

use crate::db::{DbError, DbResult, Tx, Value};
use crate::kit::migration::{int, Context, Key, KeyRange};

/// The entries, as the runner walks them on revert.
pub(crate) const INSERTED_KEY: Key = Key {
    table: "backfill_inserted",
    column: "id",
};

/// How many keys one statement carries (parameters stay far below every driver's limit).
const KEYS_PER_STATEMENT: usize = 500;

/// How many edited rows a refusal lists.
const MAX_LISTED: usize = 100;

/// The table a migration inserts into and its integer key column (plain identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub table: &'a str,
    pub key: &'a str,
}

/// Refuses a server without `INSERT … RETURNING` before anything is written, naming the fix.
pub fn require_returning(tx: &mut dyn Tx, table: &str) -> DbResult<()> {
    let d = tx.dialect();
    let version = tx.query_scalar(d.version_sql(), &[])?;
    let version = version.as_str().unwrap_or_default().to_string();
    if d.has_returning(&version) {
        return Ok(());
    }
    Err(DbError::new(
        crate::db::ErrorKind::Config,
        format!(
            "{table} has no marker column, so backfill records the keys it inserts through INSERT … RETURNING, which this server ({version}) lacks; use PostgreSQL, SQLite 3.35+ or MariaDB 10.5+, or give {table} a JSON metadata column"
        ),
    ))
}

/// Runs `insert` (an INSERT … SELECT without its RETURNING clause) and records the keys of the rows
/// it wrote, with their group read from `group_column`; returns how many rows it wrote.
pub fn insert_recording(
    tx: &mut dyn Tx,
    ctx: &Context,
    target: Target,
    group_column: Option<&str>,
    (insert, params): (&str, &[Value]),
) -> DbResult<u64> {
    let returning = match group_column {
        Some(g) => format!(" RETURNING {}, {g}", target.key),
        None => format!(" RETURNING {}, NULL", target.key),
    };
    let rows = tx.query(&format!("{insert}{returning}"), params)?;
    let run = ctx.run_id.to_string();
    for part in rows.chunks(KEYS_PER_STATEMENT) {
        let tuples = vec!["(?, ?, ?, ?, ?)"; part.len()].join(", ");
        let sql = format!(
            "INSERT INTO backfill_inserted (version, run_id, table_name, row_key, group_key) VALUES {tuples}"
        );
        let mut values = Vec::with_capacity(part.len() * 5);
        for row in part {
            let group = row
                .get(1)
                .and_then(Value::as_i64)
                .map_or(Value::Null, Value::Int);
            values.extend([
                Value::Int(ctx.version),
                run.as_str().into(),
                target.table.into(),
                Value::Int(int(row, 0)),
                group,
            ]);
        }
        tx.execute(&sql, &values)?;
    }
    Ok(rows.len() as u64)
}

/// The condition on entries `b` "recorded by this migration for this table (and `ctx.group`)", with
/// its parameters.
fn ours(ctx: &Context, target: Target) -> (String, Vec<Value>) {
    let mut sql = "b.version = ? AND b.table_name = ?".to_string();
    let mut params = vec![Value::Int(ctx.version), target.table.into()];
    if let Some(g) = ctx.group {
        sql.push_str(" AND b.group_key = ?");
        params.push(Value::Int(g));
    }
    (sql, params)
}

/// The first and last entry (`backfill_inserted.id`) recorded by this migration for this table (and
/// `ctx.group`): what a revert walks, so its workers split only this migration's entries.
pub fn recorded_span(
    tx: &mut dyn Tx,
    ctx: &Context,
    target: Target,
) -> DbResult<Option<(i64, i64)>> {
    let (cond, params) = ours(ctx, target);
    // `ours` names the entries `b`.
    let aliased = Key {
        table: "backfill_inserted b",
        column: "b.id",
    };
    crate::kit::bounds::span_where(tx, aliased, &cond, &params)
}

/// Deletes the rows recorded by the entries in `range` (of `backfill_inserted.id`) and forgets those
/// entries; returns how many rows it deleted. A row the app deleted since leaves only its entry.
/// The keys are read first and deleted by key: O(batch) on every dialect, where MariaDB would walk
/// the whole table for a DELETE … IN (subquery).
pub fn delete_recorded(
    tx: &mut dyn Tx,
    ctx: &Context,
    target: Target,
    range: KeyRange,
) -> DbResult<u64> {
    let (cond, mut params) = ours(ctx, target);
    params.extend(range.params(1));
    let entries = tx.query(
        &format!("SELECT b.id, b.row_key FROM backfill_inserted b WHERE {cond} AND b.id >= ? AND b.id <= ?"),
        &params,
    )?;
    let mut deleted = 0;
    for part in entries.chunks(KEYS_PER_STATEMENT) {
        let list = vec!["?"; part.len()].join(", ");
        let keys: Vec<Value> = part.iter().map(|r| Value::Int(int(r, 1))).collect();
        deleted += tx.execute(
            &format!(
                "DELETE FROM {} WHERE {} IN ({list})",
                target.table, target.key
            ),
            &keys,
        )?;
        let ids: Vec<Value> = part.iter().map(|r| Value::Int(int(r, 0))).collect();
        tx.execute(
            &format!("DELETE FROM backfill_inserted WHERE id IN ({list})"),
            &ids,
        )?;
    }
    Ok(deleted)
}

/// Keys of recorded rows (of `ctx.group`, if set) the app edited since: Laravel's `updated_at`
/// moved past `created_at`, which the insert set alike. Up to a listable number.
pub fn edited(tx: &mut dyn Tx, ctx: &Context, target: Target) -> DbResult<Vec<i64>> {
    let (cond, params) = ours(ctx, target);
    let sql = format!(
        "SELECT t.{k} FROM {table} t JOIN backfill_inserted b ON b.row_key = t.{k} \
         WHERE {cond} AND t.updated_at > t.created_at ORDER BY t.{k} LIMIT {MAX_LISTED}",
        k = target.key,
        table = target.table,
    );
    Ok(tx.query(&sql, &params)?.iter().map(|r| int(r, 0)).collect())
}

/// `verify --data`: entries that disagree with the ledger's count, whose rows are gone, or (with
/// `timestamps`) whose rows were edited since. One line each.
pub fn check(
    tx: &mut dyn Tx,
    ctx: &Context,
    target: Target,
    timestamps: bool,
) -> DbResult<Vec<String>> {
    let ctx = Context {
        group: None,
        ..ctx.clone()
    };
    let (cond, params) = ours(&ctx, target);
    let (table, k, v) = (target.table, target.key, ctx.version);
    let count = |tx: &mut dyn Tx, sql: String| -> DbResult<i64> {
        Ok(tx.query_scalar(&sql, &params)?.as_i64().unwrap_or(0))
    };
    let mut problems = Vec::new();
    let recorded = count(
        tx,
        format!("SELECT COUNT(*) FROM backfill_inserted b WHERE {cond}"),
    )?;
    if recorded != ctx.ledger_rows {
        problems.push(format!(
            "{table}: the ledger recorded {recorded} keys migration {v} inserted but says it wrote {}",
            ctx.ledger_rows
        ));
    }
    let gone = count(
        tx,
        format!(
            "SELECT COUNT(*) FROM backfill_inserted b WHERE {cond} \
             AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{k} = b.row_key)"
        ),
    )?;
    if gone > 0 {
        problems.push(format!(
            "{table}: {gone} rows migration {v} inserted are gone (deleted since)"
        ));
    }
    if timestamps {
        let edited = count(
            tx,
            format!(
                "SELECT COUNT(*) FROM {table} t JOIN backfill_inserted b ON b.row_key = t.{k} \
                 WHERE {cond} AND t.updated_at > t.created_at"
            ),
        )?;
        if edited > 0 {
            problems.push(format!(
                "{table}: {edited} rows migration {v} inserted were edited since (revert refuses them without --force)"
            ));
        }
    }
    Ok(problems)
}
