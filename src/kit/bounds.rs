//! Key ranges: the runner's keyset iteration, and the same walk for `plan`'s samples.

use crate::db::{DbError, DbResult, ErrorKind, Tx, Value};
use crate::kit::migration::Key;

/// The last key of the next `size` keys of `key` from `from` on (inclusive), or `None` when there are
/// none. Keys, never offsets: a batch of another size resumes at the same place.
pub(crate) fn next_bound(tx: &mut dyn Tx, key: Key, from: i64, size: u64) -> DbResult<Option<i64>> {
    let sql = format!("SELECT MAX(k) FROM {}", next_keys(key, ""));
    let top = tx.query_scalar(&sql, &[Value::Int(from), Value::Int(size.max(1) as i64)])?;
    walked(key, &top)
}

/// [`next_bound`] within `[from, to]`, and how many keys that is (fewer than `size`: the range holds
/// no more keys). A parallel run's chunk ends at `to`; an unbounded walk must still meet the keys
/// above the signed 64-bit range (`walked` refuses them), so it keeps [`next_bound`].
pub(crate) fn next_bound_within(
    tx: &mut dyn Tx,
    key: Key,
    (from, to): (i64, i64),
    size: u64,
) -> DbResult<(Option<i64>, u64)> {
    let sql = format!(
        "SELECT MAX(k), COUNT(*) FROM {}",
        next_keys(key, &format!(" AND {} <= ?", key.column))
    );
    let params = [
        Value::Int(from),
        Value::Int(to),
        Value::Int(size.max(1) as i64),
    ];
    let rows = tx.query(&sql, &params)?;
    let row = rows.first();
    let top = row
        .and_then(|r| r.first())
        .map_or(Ok(None), |v| walked(key, v))?;
    let n = row
        .and_then(|r| r.get(1))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Ok((top, n.max(0) as u64))
}

/// The keyset both walks read: the next keys from a `?` on (`and`: a further bound), `LIMIT ?`.
fn next_keys(key: Key, and: &str) -> String {
    format!(
        "(SELECT {c} AS k FROM {t} WHERE {c} >= ?{and} ORDER BY {c} LIMIT ?) b",
        c = key.column,
        t = key.table
    )
}

/// The first and last key, for progress and the ETA; `None` on an empty table.
pub(crate) fn span(tx: &mut dyn Tx, key: Key) -> DbResult<Option<(i64, i64)>> {
    span_where(tx, key, "", &[])
}

/// [`span`] of the rows `cond` (a condition on `key.table`, with its `params`) selects, or of them
/// all when `cond` is empty; `None` when there are none. With a condition, each end is its own
/// `ORDER BY … LIMIT 1`, which walks the key's index from that end to the first row that matches:
/// MariaDB reads the whole table for a `MIN`/`MAX` with a `WHERE` (seconds at 5M rows).
pub(crate) fn span_where(
    tx: &mut dyn Tx,
    key: Key,
    cond: &str,
    params: &[Value],
) -> DbResult<Option<(i64, i64)>> {
    let (c, t) = (key.column, key.table);
    let (sql, params) = match cond {
        "" => (format!("SELECT MIN({c}), MAX({c}) FROM {t}"), Vec::new()),
        cond => {
            let end =
                |dir: &str| format!("(SELECT {c} FROM {t} WHERE {cond} ORDER BY {c}{dir} LIMIT 1)");
            let both = [params, params].concat();
            (format!("SELECT {}, {}", end(""), end(" DESC")), both)
        }
    };
    let row = tx.query(&sql, &params)?;
    let Some(r) = row.first() else {
        return Ok(None);
    };
    let lowest = r.first().map_or(Ok(None), |v| walked(key, v))?;
    let highest = r.get(1).map_or(Ok(None), |v| walked(key, v))?;
    Ok(lowest.zip(highest))
}

/// A key as the runner walks it: a signed 64-bit integer. A key outside that range (a MySQL
/// `BIGINT UNSIGNED` above 9223372036854775807 arrives rounded through a float) is refused before
/// anything is written: walked as i64 it would be skipped or rounded, and its row silently missed.
pub(crate) fn walked(key: Key, v: &Value) -> DbResult<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(*i)),
        Value::Text(s) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
        _ => Err(DbError::new(
            ErrorKind::Config,
            format!(
                "{t}.{c} holds a key outside the signed 64-bit range backfill walks (above 9223372036854775807 or not an integer); refusing to run rather than skip those rows: renumber them at or below 9223372036854775807",
                t = key.table,
                c = key.column
            ),
        )),
    }
}
