//! The undo journal of UPDATE-shaped migrations (`backfill_undo`): one entry per changed row and
//! migration, holding the values the row had before we wrote it and what it held right after.
//!
//! Values are the dialect's exact text ([`Dialect::exact_text`], `value_format = 'text'`). Entries
//! an older backfill wrote hold driver values as JSON (`'json'`) and are restored the old way.
//!
//! A row the app changed after our write is no longer ours:
//! - revert refuses it (its values are not what we wrote) unless `--force`;
//! - a top-up that writes it again takes the app's value of each column it had changed as that
//!   column's old value, so revert then restores what the app wrote, never what was there before.

use crate::db::{DbError, DbResult, Dialect, Tx, Value, INSERT_ENTRIES, SCRATCH};
use crate::kit::migration::{Context, Key, KeyRange};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;

/// One row's change: its values before and after (exact text or NULL, column by column).
pub(crate) struct Change {
    pub(crate) key: i64,
    pub(crate) old: Vec<Value>,
    pub(crate) new: Vec<Value>,
}

/// The journal, as the runner walks it on revert.
pub(crate) const JOURNAL_KEY: Key = Key {
    table: "backfill_undo",
    column: "id",
};

/// Rows a journal statement reads, writes or restores at once: a round trip per row was most of an
/// UPDATE-shaped batch's time; 500 keys keep every statement far below the dialects' parameter limits.
const KEYS_PER_STATEMENT: usize = 500;

/// How many rows can be listed in a refusal.
const MAX_LISTED: usize = 100;

/// Entries in exact text; anything else is an older backfill's driver values.
const EXACT: &str = "text";

struct Entry {
    id: i64,
    table: String,
    key_column: String,
    key: i64,
    exact: bool,
    old: Map<String, Json>,
    new: Map<String, Json>,
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

fn object(columns: &[&str], values: &[Value]) -> Map<String, Json> {
    columns
        .iter()
        .map(|c| c.to_string())
        .zip(values.iter().cloned().map(Value::into_json))
        .collect()
}

fn parse_object(text: &str) -> DbResult<Map<String, Json>> {
    match serde_json::from_str(text) {
        Ok(Json::Object(m)) => Ok(m),
        _ => Err(damaged("old or new values are not a JSON object")),
    }
}

/// Reads the entries of `version` that `filter` (a condition, with its parameters) selects. The
/// version is checked here, and in the SQL only where the filter names it: reading a batch by id
/// range, `version = ?` let PostgreSQL AND a bitmap of every entry of the version into each read
/// when its statistics predated the journal (1M entries: 244 ms of a 252 ms read, every batch, so a
/// revert cost O(journal) a batch).
fn read_entries(
    tx: &mut dyn Tx,
    version: i64,
    filter: &str,
    params: &[Value],
) -> DbResult<Vec<Entry>> {
    let sql = format!(
        "SELECT id, table_name, key_column, row_key, old_values, new_values, value_format, version \
         FROM backfill_undo WHERE {filter} ORDER BY id"
    );
    tx.query(&sql, params)?
        .into_iter()
        .filter(|r| r.get(7).and_then(Value::as_i64) == Some(version))
        .map(|r| {
            let text = |i: usize| r.get(i).and_then(Value::as_str).unwrap_or_default();
            Ok(Entry {
                id: r.first().and_then(Value::as_i64).unwrap_or(0),
                table: identifier(text(1))?.to_string(),
                key_column: identifier(text(2))?.to_string(),
                key: r.get(3).and_then(Value::as_i64).unwrap_or(0),
                exact: text(6) == EXACT,
                old: parse_object(text(4))?,
                new: parse_object(text(5))?,
            })
        })
        .collect()
}

/// Journals `changes` of `table` (keys within `range`) in the batch's transaction: a new entry per
/// row, or, for a row this migration changed before (a top-up), its new values, and as old values
/// the app's for each column the app changed since our write.
pub(crate) fn journal(
    tx: &mut dyn Tx,
    ctx: &Context,
    table: &str,
    key_column: &str,
    columns: &[&str],
    range: KeyRange,
    changes: &[Change],
) -> DbResult<()> {
    let known: HashMap<i64, Entry> = read_entries(
        tx,
        ctx.version,
        "version = ? AND table_name = ? AND row_key >= ? AND row_key <= ?",
        &[
            Value::Int(ctx.version),
            table.into(),
            Value::Int(range.lo),
            Value::Int(range.hi),
        ],
    )?
    .into_iter()
    .map(|e| (e.key, e))
    .collect();
    let run = ctx.run_id.to_string();
    let mut again = 0;
    let mut fresh = Vec::new();
    for c in changes {
        let new = object(columns, &c.new);
        let old = object(columns, &c.old);
        match known.get(&c.key) {
            Some(e) => {
                tx.execute(
                    "UPDATE backfill_undo SET old_values = ?, new_values = ?, run_id = ? WHERE id = ?",
                    &[
                        Json::Object(merged_old(e, old)?).to_string().into(),
                        Json::Object(new).to_string().into(),
                        run.as_str().into(),
                        Value::Int(e.id),
                    ],
                )?;
                again += 1;
            }
            None => fresh.push(vec![
                Value::Int(ctx.version),
                run.as_str().into(),
                table.into(),
                key_column.into(),
                Value::Int(c.key),
                Json::Object(old).to_string().into(),
                Json::Object(new).to_string().into(),
                EXACT.into(),
            ]),
        }
    }
    insert_entries(tx, fresh)?;
    uncount(tx, ctx.version, again)
}

/// Whether this migration journaled a row of `table` in `range` before (a top-up's batch): such a
/// batch merges with its entries row by row (`journal`); any other is journaled on the server
/// (`record_old`, `record_new`), its values never crossing to the client.
pub(crate) fn has_entries(
    tx: &mut dyn Tx,
    version: i64,
    table: &str,
    range: KeyRange,
) -> DbResult<bool> {
    // COUNT, not LIMIT 1: with LIMIT, PostgreSQL may walk the primary key hoping to meet a row
    // soon, and when there is none (every first apply) reads the whole journal (25 ms a batch at
    // 100k entries, on the busy machine).
    let found = tx.query_scalar(
        "SELECT COUNT(*) FROM backfill_undo WHERE version = ? AND table_name = ? AND row_key >= ? AND row_key <= ?",
        &in_range(version, table, range),
    )?;
    Ok(found.as_i64().unwrap_or(0) > 0)
}

fn in_range(version: i64, table: &str, range: KeyRange) -> [Value; 4] {
    [
        Value::Int(version),
        table.into(),
        Value::Int(range.lo),
        Value::Int(range.hi),
    ]
}

/// Journals the rows `select` reads (`k`, the key, and `o`, the old values as
/// [`Dialect::exact_json`]; `params` its parameters): their old values, their new ones to follow
/// (`record_new`). Returns how many. Only for a range with no entry of the migration yet.
pub(crate) fn record_old(
    tx: &mut dyn Tx,
    ctx: &Context,
    table: &str,
    key_column: &str,
    select: &str,
    params: &[Value],
) -> DbResult<u64> {
    // The version inline: PostgreSQL types an untyped parameter in a select list as text.
    let sql = format!(
        "{INSERT_ENTRIES} SELECT {}, ?, ?, ?, c.k, c.o, '{{}}', '{EXACT}' FROM ({select}) c",
        ctx.version
    );
    let mut all = entry_params(ctx, table, key_column).to_vec();
    all.extend_from_slice(params);
    tx.execute(&sql, &all)
}

/// The parameters naming a new entry's run, table and key column.
pub(crate) fn entry_params(ctx: &Context, table: &str, key_column: &str) -> [Value; 3] {
    [
        Value::Text(ctx.run_id.to_string()),
        table.into(),
        key_column.into(),
    ]
}

/// The rows of `t` in `range` this migration has entries for, as a condition (over `t`, keyed by
/// `key`) and its parameters.
pub(crate) fn journaled_rows(
    version: i64,
    table: &str,
    key: &str,
    range: KeyRange,
) -> (String, [Value; 4]) {
    (
        format!(
            "t.{key} IN (SELECT row_key FROM backfill_undo WHERE version = ? AND table_name = ? AND row_key >= ? AND row_key <= ?)"
        ),
        in_range(version, table, range),
    )
}

/// Completes the entries `record_old` wrote with what their rows' `columns` hold now: the column's
/// type has the last word (a decimal's scale, a padded CHAR, a non-deterministic expression).
pub(crate) fn record_new(
    tx: &mut dyn Tx,
    version: i64,
    table: &str,
    key: &str,
    columns: &[&str],
    range: KeyRange,
) -> DbResult<()> {
    // A correlated subquery, not a join: MariaDB's multi-table UPDATE of the journal deadlocked
    // two `--jobs` workers (the bench at 100k, every retry), locking entries beyond its range.
    let json = tx.dialect().exact_json(columns);
    let sql = format!(
        "UPDATE backfill_undo SET new_values = (SELECT {json} FROM {table} t WHERE t.{key} = backfill_undo.row_key) \
         WHERE version = ? AND table_name = ? AND row_key >= ? AND row_key <= ?"
    );
    tx.execute(&sql, &in_range(version, table, range))?;
    Ok(())
}

/// An entry for every row of the session's scratch table ([`Dialect::journal_scratch`]): its old
/// values from there, and what its row of `table` holds now (the column's type has the last word, as
/// in `record_new`).
pub(crate) fn record_from_scratch(
    tx: &mut dyn Tx,
    ctx: &Context,
    table: &str,
    key: &str,
    columns: &[&str],
) -> DbResult<()> {
    let sql = format!(
        "{INSERT_ENTRIES} SELECT {version}, ?, ?, ?, o.k, o.o, {json}, '{EXACT}' \
         FROM {SCRATCH} o JOIN {table} t ON t.{key} = o.k",
        version = ctx.version,
        json = tx.dialect().exact_json(columns),
    );
    tx.execute(&sql, &entry_params(ctx, table, key))?;
    Ok(())
}

/// New entries, many rows per statement: one statement per changed row made the journal's round
/// trips the cost of an UPDATE-shaped batch (BENCHMARKS.md, "UPDATE shape").
fn insert_entries(tx: &mut dyn Tx, entries: Vec<Vec<Value>>) -> DbResult<()> {
    for part in entries.chunks(KEYS_PER_STATEMENT) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; part.len()].join(", ");
        let sql = format!("{INSERT_ENTRIES} VALUES {rows}");
        let params: Vec<Value> = part.iter().flatten().cloned().collect();
        tx.execute(&sql, &params)?;
    }
    Ok(())
}

/// A row written again is still one row in place: the batch's checkpoint counts it as written by
/// this run, so the migration's total takes it back (rows applied minus reverted stays the number of
/// rows holding our values, one journal entry each).
fn uncount(tx: &mut dyn Tx, version: i64, again: i64) -> DbResult<()> {
    if again == 0 {
        return Ok(());
    }
    tx.execute(
        "UPDATE backfill_migrations SET rows_applied = rows_applied - ? WHERE version = ?",
        &[Value::Int(again), Value::Int(version)],
    )?;
    Ok(())
}

/// An entry's old values after the row is written again: a column still holding our value keeps
/// its value from before the migration; a column the app changed since takes the app's value.
fn merged_old(e: &Entry, now: Map<String, Json>) -> DbResult<Map<String, Json>> {
    if !e.exact {
        return Err(DbError::query(format!(
            "{} row {} was journaled by an older backfill, whose journal is not exact; revert the migration with this backfill, then apply it again",
            e.table, e.key
        )));
    }
    Ok(now
        .into_iter()
        .map(|(column, current)| {
            let ours = e.new.get(&column) == Some(&current);
            match e.old.get(&column) {
                Some(before) if ours => (column, before.clone()),
                _ => (column, current),
            }
        })
        .collect())
}

/// The rows' current values of each entry's columns, as the entry holds them (`None` where the row
/// is gone), in the entries' order. One statement per table and up to 500 keys, not one per entry:
/// a round trip per row was most of an UPDATE-shaped revert's time.
fn currents(
    tx: &mut dyn Tx,
    entries: &[Entry],
    lock: bool,
) -> DbResult<Vec<Option<Map<String, Json>>>> {
    let all: Vec<&Entry> = entries.iter().collect();
    // One entry per table and row (the journal's unique key), so (table, key) finds its values.
    let mut found: HashMap<(&str, i64), Map<String, Json>> = HashMap::new();
    for (first, group) in shapes(&all) {
        for part in group.chunks(KEYS_PER_STATEMENT) {
            let keys: Vec<i64> = part.iter().map(|e| e.key).collect();
            for (key, now) in current_rows(tx, first, &keys, lock)? {
                found.insert((first.table.as_str(), key), now);
            }
        }
    }
    Ok(entries
        .iter()
        .map(|e| found.remove(&(e.table.as_str(), e.key)))
        .collect())
}

/// The current values of `e`'s columns in the rows of `keys` (of `e`'s table), by key.
fn current_rows(
    tx: &mut dyn Tx,
    e: &Entry,
    keys: &[i64],
    lock: bool,
) -> DbResult<Vec<(i64, Map<String, Json>)>> {
    let d = tx.dialect();
    let columns: Vec<&str> = e
        .new
        .keys()
        .map(|c| identifier(c))
        .collect::<DbResult<_>>()?;
    let shown: Vec<String> = columns
        .iter()
        .map(|c| {
            if e.exact {
                d.exact_text(c)
            } else {
                c.to_string()
            }
        })
        .collect();
    let sql = format!(
        "SELECT {k}, {} FROM {} WHERE {k} IN ({}){}",
        shown.join(", "),
        e.table,
        vec!["?"; keys.len()].join(", "),
        if lock { d.for_update() } else { "" },
        k = e.key_column,
    );
    let params: Vec<Value> = keys.iter().map(|k| Value::Int(*k)).collect();
    Ok(tx
        .query(&sql, &params)?
        .into_iter()
        .map(|r| {
            let mut it = r.into_iter();
            let key = it.next().and_then(|v| v.as_i64()).unwrap_or(0);
            let now = columns
                .iter()
                .map(|c| c.to_string())
                .zip(it.map(Value::into_json))
                .collect();
            (key, now)
        })
        .collect())
}

/// Whether the row still holds what we wrote. Exact entries compare text for text; an older
/// backfill's compare numbers by value (an integer column read back as a float is the same value).
fn ours(e: &Entry, now: &Map<String, Json>) -> bool {
    if e.exact {
        return *now == e.new;
    }
    now.len() == e.new.len()
        && now.iter().all(|(k, v)| match (v, e.new.get(k)) {
            (Json::Number(x), Some(Json::Number(y))) => x.as_f64() == y.as_f64(),
            (x, Some(y)) => x == y,
            (_, None) => false,
        })
}

/// An older backfill's journal value as a parameter.
fn legacy_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Int(i64::from(*b)),
        Json::Number(n) => n
            .as_i64()
            .map_or(Value::Float(n.as_f64().unwrap_or(0.0)), Value::Int),
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// Journal ids `edited` reads at once: a range read on the server costs little per entry, and a
/// round trip per thousand entries was half of an UPDATE-shaped revert (BENCHMARKS.md).
const EDITED_CHUNK: u64 = 20_000;

/// Keys of rows this migration changed that were edited since (their values are no longer ours), up to
/// a listable number, read through the journal in chunks.
pub(crate) fn edited(tx: &mut dyn Tx, version: i64) -> DbResult<Vec<i64>> {
    let mut found = Vec::new();
    let mut from = i64::MIN;
    while let Some(hi) = crate::kit::bounds::next_bound(tx, JOURNAL_KEY, from, EDITED_CHUNK)? {
        let range = KeyRange { lo: from, hi };
        if let Some(keys) = edited_in_place(tx, version, range, MAX_LISTED - found.len())? {
            found.extend(keys);
            if found.len() >= MAX_LISTED {
                return Ok(found);
            }
            let Some(next) = hi.checked_add(1) else { break };
            from = next;
            continue;
        }
        let batch = entries(tx, version, range)?;
        for (e, now) in batch.iter().zip(currents(tx, &batch, false)?) {
            if now.is_some_and(|now| !ours(e, &now)) {
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

fn entries(tx: &mut dyn Tx, version: i64, range: KeyRange) -> DbResult<Vec<Entry>> {
    read_entries(
        tx,
        version,
        "id >= ? AND id <= ?",
        &[Value::Int(range.lo), Value::Int(range.hi)],
    )
}

/// Puts the entry's old values back into its row.
fn put_back(tx: &mut dyn Tx, e: &Entry) -> DbResult<()> {
    let d: Dialect = tx.dialect();
    let (from, uses) = if e.exact { d.from_exact() } else { ("?", 1) };
    let sets: Vec<String> = e
        .old
        .keys()
        .map(|c| identifier(c).map(|c| format!("{c} = {from}")))
        .collect::<DbResult<_>>()?;
    let mut params: Vec<Value> = e
        .old
        .values()
        .map(|v| match (e.exact, v) {
            (true, Json::String(s)) => Ok(Value::Text(s.clone())),
            (true, Json::Null) => Ok(Value::Null),
            (true, _) => Err(damaged("an exact value is neither text nor null")),
            (false, v) => Ok(legacy_value(v)),
        })
        .collect::<DbResult<Vec<_>>>()?
        .into_iter()
        .flat_map(|v| std::iter::repeat_n(v, uses))
        .collect();
    params.push(Value::Int(e.key));
    let sql = format!(
        "UPDATE {} SET {} WHERE {} = ?",
        e.table,
        sets.join(", "),
        e.key_column
    );
    tx.execute(&sql, &params)?;
    Ok(())
}

/// Restores the old values of the journal entries in `range` and drops them; returns how many rows
/// were restored. A row edited since (values not ours) fails the batch unless `force`; a row deleted
/// since has nothing to restore and only its entry goes.
pub(crate) fn restore(
    tx: &mut dyn Tx,
    version: i64,
    range: KeyRange,
    force: bool,
) -> DbResult<u64> {
    if let Some(one) = uniform(tx, version, range)? {
        if let Some(restored) = restore_in_place(tx, &one, force)? {
            return Ok(restored);
        }
    }
    let batch = entries(tx, version, range)?;
    let mut present = Vec::new();
    for (e, now) in batch.iter().zip(currents(tx, &batch, true)?) {
        if let Some(now) = now {
            if !force && !ours(e, &now) {
                return Err(DbError::query(format!(
                    "{} row {} was edited after this migration changed it; review it, then rerun with --force to restore its old values anyway",
                    e.table, e.key
                )));
            }
            present.push(e);
        }
    }
    let (exact, legacy): (Vec<&Entry>, Vec<&Entry>) = present.iter().partition(|e| e.exact);
    for e in &legacy {
        put_back(tx, e)?;
    }
    for (_, group) in shapes(&exact) {
        for part in group.chunks(KEYS_PER_STATEMENT) {
            put_back_many(tx, part)?;
        }
    }
    drop_entries(tx, &batch)?;
    Ok(present.len() as u64)
}

/// Entries grouped by what one statement can serve: the same table, key column, columns and format.
fn shapes<'e>(entries: &[&'e Entry]) -> Vec<(&'e Entry, Vec<&'e Entry>)> {
    let mut groups: Vec<(&Entry, Vec<&Entry>)> = Vec::new();
    for e in entries {
        match groups.iter_mut().find(|(o, _)| same_shape(e, o)) {
            Some((_, g)) => g.push(e),
            None => groups.push((e, vec![e])),
        }
    }
    groups
}

fn same_shape(e: &Entry, o: &Entry) -> bool {
    e.table == o.table
        && e.key_column == o.key_column
        && e.exact == o.exact
        && e.old.keys().eq(o.old.keys())
        && e.new.keys().eq(o.new.keys())
}

/// Puts the old values of several exact entries of one shape back in one statement: each column
/// set to `CASE key WHEN k THEN <its old value> … END`, the value read from its exact text as
/// `put_back` reads it (on PostgreSQL cast to the column's own type, which an untyped parameter
/// took in `put_back`: the same input function).
fn put_back_many(tx: &mut dyn Tx, part: &[&Entry]) -> DbResult<()> {
    let [first, ..] = part else { return Ok(()) };
    let d = tx.dialect();
    let (from, uses) = d.from_exact();
    let types: HashMap<String, String> = match d.column_types_sql() {
        Some(sql) => tx
            .query(sql, &[first.table.as_str().into()])?
            .into_iter()
            .filter_map(|r| Some((r.first()?.as_str()?.into(), r.get(1)?.as_str()?.into())))
            .collect(),
        None => HashMap::new(),
    };
    let key = identifier(&first.key_column)?;
    let mut sets = Vec::new();
    let mut params = Vec::new();
    for column in first.old.keys() {
        let column = identifier(column)?;
        let whens = vec![format!("WHEN ? THEN {from}"); part.len()].join(" ");
        let case = format!("CASE {key} {whens} END");
        sets.push(match types.get(column) {
            Some(ty) => format!("{column} = CAST(({case}) AS {ty})"),
            None => format!("{column} = {case}"),
        });
        for e in part {
            params.push(Value::Int(e.key));
            let v = exact_value(e.old.get(column))?;
            params.extend(std::iter::repeat_n(v, uses));
        }
    }
    params.extend(part.iter().map(|e| Value::Int(e.key)));
    let sql = format!(
        "UPDATE {} SET {} WHERE {key} IN ({})",
        first.table,
        sets.join(", "),
        vec!["?"; part.len()].join(", ")
    );
    tx.execute(&sql, &params)?;
    Ok(())
}

/// An exact entry's value as a parameter: its text, or NULL.
fn exact_value(v: Option<&Json>) -> DbResult<Value> {
    match v {
        Some(Json::String(s)) => Ok(Value::Text(s.clone())),
        Some(Json::Null) => Ok(Value::Null),
        _ => Err(damaged("an exact value is neither text nor null")),
    }
}

/// Drops restored entries, many a statement.
fn drop_entries(tx: &mut dyn Tx, entries: &[Entry]) -> DbResult<()> {
    for part in entries.chunks(KEYS_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM backfill_undo WHERE id IN ({})",
            vec!["?"; part.len()].join(", ")
        );
        let ids: Vec<Value> = part.iter().map(|e| Value::Int(e.id)).collect();
        tx.execute(&sql, &ids)?;
    }
    Ok(())
}

/// Journal entries per migration, for `status`.
pub(crate) fn sizes(tx: &mut dyn Tx) -> DbResult<Vec<(i64, i64)>> {
    Ok(tx
        .query(
            "SELECT version, COUNT(*) FROM backfill_undo GROUP BY version",
            &[],
        )?
        .iter()
        .map(|r| {
            (
                crate::kit::migration::int(r, 0),
                crate::kit::migration::int(r, 1),
            )
        })
        .collect())
}

/// `backfill forget VERSION`: drops a migration's journal; it cannot be reverted afterwards.
pub(crate) fn forget(tx: &mut dyn Tx, version: i64) -> DbResult<u64> {
    tx.execute(
        "DELETE FROM backfill_undo WHERE version = ?",
        &[Value::Int(version)],
    )
}

/// Entries of one migration in an id range that one statement can serve: exact, of one table and
/// key column, all with `columns` (checked per row by [`Uniform::same_columns`]).
struct Uniform {
    version: i64,
    range: KeyRange,
    table: String,
    key_column: String,
    columns: Vec<String>,
}

/// The shape the entries of `version` in `range` are restored as on the server: what the first of
/// them names, when it is exact. `None` for none, or an older backfill's first entry. Entries of
/// another shape in the range (another table, an older backfill's) are found by the statements
/// that use it ([`Uniform::others`]), which then leave the range to the reading path: grouping the
/// range's entries to find them first was 8% of a revert at 1M on MariaDB.
fn uniform(tx: &mut dyn Tx, version: i64, range: KeyRange) -> DbResult<Option<Uniform>> {
    let first = tx.query_scalar(
        "SELECT MIN(id) FROM backfill_undo WHERE id >= ? AND id <= ? AND version + 0 = ?",
        &[
            Value::Int(range.lo),
            Value::Int(range.hi),
            Value::Int(version),
        ],
    )?;
    let Some(first) = first.as_i64() else {
        return Ok(None);
    };
    let first = entries(
        tx,
        version,
        KeyRange {
            lo: first,
            hi: first,
        },
    )?;
    let Some(e) = first.first() else {
        return Ok(None);
    };
    if !e.exact || !e.old.keys().eq(e.new.keys()) || e.new.is_empty() {
        return Ok(None);
    }
    let columns = e
        .new
        .keys()
        .map(|c| identifier(c).map(String::from))
        .collect::<DbResult<_>>()?;
    Ok(Some(Uniform {
        version,
        range,
        table: e.table.clone(),
        key_column: e.key_column.clone(),
        columns,
    }))
}

impl Uniform {
    fn columns(&self) -> Vec<&str> {
        self.columns.iter().map(String::as_str).collect()
    }

    /// The entries (aliased `u`), as a condition, and its parameters. `version + 0`: an id range
    /// read alone; with an index usable on the version, PostgreSQL ANDed a bitmap of every entry of
    /// the version into each batch when its statistics predated the journal (`read_entries`).
    fn entries(&self) -> (String, [Value; 5]) {
        (
            format!(
                "u.id >= ? AND u.id <= ? AND u.version + 0 = ? AND u.table_name = ? AND u.key_column = ? \
                 AND u.value_format = '{EXACT}'"
            ),
            [
                Value::Int(self.range.lo),
                Value::Int(self.range.hi),
                Value::Int(self.version),
                self.table.as_str().into(),
                self.key_column.as_str().into(),
            ],
        )
    }

    /// Whether the range holds entries of the migration of another table, key column or format.
    fn others(&self, tx: &mut dyn Tx) -> DbResult<bool> {
        let (_, params) = self.entries();
        let found = tx.query_scalar(
            &format!(
                "SELECT COUNT(*) FROM backfill_undo WHERE id >= ? AND id <= ? AND version + 0 = ? \
                 AND NOT (table_name = ? AND key_column = ? AND value_format = '{EXACT}')"
            ),
            &params,
        )?;
        Ok(found.as_i64().unwrap_or(0) > 0)
    }

    /// The entries joined to the rows still there (aliased `t`).
    fn joined(&self) -> (String, [Value; 5]) {
        let (entries, params) = self.entries();
        (
            format!(
                "FROM backfill_undo u JOIN {} t ON t.{} = u.row_key WHERE {entries}",
                self.table, self.key_column
            ),
            params,
        )
    }

    /// The row `t` still holds what entry `u` says we wrote, text for text. First the whole entry
    /// against the object an apply writes ([`Dialect::exact_json`]), built from the row's values
    /// now: one comparison, where parsing the entry per column was 60% of a revert's checks on
    /// MariaDB at 1M. An entry written otherwise (a top-up's, from the client) is compared column
    /// by column. The text matching also says the entry's new values are of this shape's columns.
    fn ours(&self, d: Dialect) -> String {
        format!("({} OR {})", self.written(d), self.ours_by_column(d))
    }

    fn written(&self, d: Dialect) -> String {
        d.same_bytes("u.new_values", &d.exact_json(&self.columns()))
    }

    fn ours_by_column(&self, d: Dialect) -> String {
        let each: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let now = d.exact_text(&format!("t.{c}"));
                let wrote = d.json_exact("u.new_values", c);
                format!("NOT {}", d.distinct(&now, &wrote))
            })
            .collect();
        format!("({})", each.join(" AND "))
    }

    /// Entry `u`'s JSON column `json` holds exactly this shape's columns.
    fn has_columns(&self, d: Dialect, json: &str) -> String {
        d.json_has_keys(json, &self.columns())
    }

    /// Entry `u` holds exactly this shape's columns, old and new.
    fn same_columns(&self, d: Dialect) -> String {
        format!(
            "({} AND {})",
            self.has_columns(d, "u.old_values"),
            self.has_columns(d, "u.new_values")
        )
    }

    /// The restoring write's guard: the entry holds this shape's columns, and its row still holds
    /// what the apply wrote (its text first, else column by column), or with `force` holds anything.
    /// The new values' columns are checked only where the entry's text did not already say so.
    fn guard(&self, d: Dialect, force: bool) -> String {
        let new_keys = self.has_columns(d, "u.new_values");
        let otherwise = if force {
            new_keys
        } else {
            format!("({} AND {new_keys})", self.ours_by_column(d))
        };
        format!(
            "({} AND ({} OR {otherwise}))",
            self.has_columns(d, "u.old_values"),
            self.written(d)
        )
    }
}

/// [`restore`] on the server: the old values put back from the journal in one statement, guarded
/// by "still ours" and "of the same columns", and the entries dropped in another; no value crosses
/// to the client. When as many rows were restored as entries dropped, every entry's row was ours
/// and nothing else is read (a count of the rows joined to the entries was 8% of a revert at 1M
/// on PostgreSQL). Every entry of the migration in the range is dropped, whatever its shape, so one
/// the statement could not restore (another table's, an older backfill's) makes the counts differ
/// too. Otherwise both are undone and the entries checked on the server: a row edited since fails
/// the batch (without `force`), entries of another shape or other columns return `None` for the
/// reading path, and rows deleted since (nothing to restore) let the batch run again, counted
/// against the rows still there. No row is locked before the write (on PostgreSQL a lock writes
/// every row once more): the guarded write skips a row changed since it was checked, and the
/// counts tell.
fn restore_in_place(tx: &mut dyn Tx, u: &Uniform, force: bool) -> DbResult<Option<u64>> {
    let d = tx.dialect();
    let guard = u.guard(d, force);
    tx.execute("SAVEPOINT backfill_restore", &[])?;
    let restored = put_back_in_place(tx, u, &guard)?;
    if restored == drop_uniform(tx, u)? {
        tx.execute("RELEASE SAVEPOINT backfill_restore", &[])?;
        return Ok(Some(restored));
    }
    tx.execute("ROLLBACK TO SAVEPOINT backfill_restore", &[])?;
    if u.others(tx)? {
        return Ok(None);
    }
    let (from, params) = u.joined();
    let sql = format!(
        "SELECT MIN(CASE WHEN NOT {} THEN u.row_key END), MIN(CASE WHEN {} THEN 1 ELSE 0 END) {from}",
        u.ours(d),
        u.same_columns(d),
    );
    let found = tx.query(&sql, &params)?;
    let cell = |i: usize| found.first().and_then(|r| r.get(i)).and_then(Value::as_i64);
    match (force, cell(0), cell(1)) {
        (_, _, Some(0)) => return Ok(None),
        (false, Some(key), _) => {
            return Err(DbError::query(format!(
                "{} row {key} was edited after this migration changed it; review it, then rerun with --force to restore its old values anyway",
                u.table
            )))
        }
        _ => {}
    }
    // Rows deleted since: restore the others, then check that every row still there was.
    let restored = put_back_in_place(tx, u, &guard)?;
    let present = tx.query_scalar(&format!("SELECT COUNT(*) {from}"), &params)?;
    if restored != present.as_i64().unwrap_or(0).max(0) as u64 {
        // A row changed or went between the write and the count: the batch again decides.
        return Err(DbError::query(format!(
            "a row of {} changed while this revert restored it; rerun the revert",
            u.table
        )));
    }
    drop_uniform(tx, u)?;
    Ok(Some(restored))
}

/// Drops the migration's entries in `u`'s range, of any shape; returns how many.
fn drop_uniform(tx: &mut dyn Tx, u: &Uniform) -> DbResult<u64> {
    tx.execute(
        "DELETE FROM backfill_undo WHERE id >= ? AND id <= ? AND version + 0 = ?",
        &[
            Value::Int(u.range.lo),
            Value::Int(u.range.hi),
            Value::Int(u.version),
        ],
    )
}

/// Every entry's row that `guard` (over `t` and `u`) holds for set to its old values, read from the
/// journal on the server as `put_back` reads a parameter (on PostgreSQL cast to the column's own
/// type). Returns how many rows were restored.
fn put_back_in_place(tx: &mut dyn Tx, u: &Uniform, guard: &str) -> DbResult<u64> {
    let d = tx.dialect();
    let types: HashMap<String, String> = match d.column_types_sql() {
        Some(sql) => tx
            .query(sql, &[u.table.as_str().into()])?
            .into_iter()
            .filter_map(|r| Some((r.first()?.as_str()?.into(), r.get(1)?.as_str()?.into())))
            .collect(),
        None => HashMap::new(),
    };
    let sets: Vec<(&str, String)> = u
        .columns
        .iter()
        .map(|c| {
            let old = d.json_exact("u.old_values", c);
            (
                c.as_str(),
                d.value_of_exact(&old, types.get(c).map(String::as_str)),
            )
        })
        .collect();
    let (entries, params) = u.entries();
    let cond = format!("{entries} AND {guard}");
    let on = format!("t.{} = u.row_key", u.key_column);
    tx.execute(&d.update_from_journal(&u.table, &sets, &on, &cond), &params)
}

/// [`edited`] for one id range on the server: the keys of rows whose values are no longer ours, up
/// to `limit`. `None` when the range's entries are not [`uniform`].
fn edited_in_place(
    tx: &mut dyn Tx,
    version: i64,
    range: KeyRange,
    limit: usize,
) -> DbResult<Option<Vec<i64>>> {
    let Some(u) = uniform(tx, version, range)? else {
        return Ok(None);
    };
    if u.others(tx)? {
        return Ok(None);
    }
    let d = tx.dialect();
    let (from, params) = u.joined();
    // The columns are checked on the rows found only: an entry of other columns that looks ours
    // here is checked again by its batch, which falls back to reading it when its columns differ.
    let sql = format!(
        "SELECT u.row_key, CASE WHEN {} THEN 1 ELSE 0 END {from} AND NOT {} ORDER BY u.id",
        u.same_columns(d),
        u.ours(d)
    );
    let rows = tx.query(&sql, &params)?;
    if rows
        .iter()
        .any(|r| r.get(1).and_then(Value::as_i64) != Some(1))
    {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .filter_map(|r| r.first().and_then(Value::as_i64))
            .take(limit)
            .collect(),
    ))
}
