//! Key ranges: the runner's keyset iteration, and the same walk for `plan`'s samples.

use crate::db::{DbError, DbResult, ErrorKind, Tx, Value};
use crate::kit::migration::Key;

/// The last key of the next `size` keys of `key` from `from` on (inclusive), or `None` when there are
/// none. Keys, never offsets: a batch of another size resumes at the same place.
pub(crate) fn next_bound(tx: &mut dyn Tx, key: Key, from: i64, size: u64) -> DbResult<Option<i64>> {
    let sql = format!(
        "SELECT MAX(k) FROM (SELECT {c} AS k FROM {t} WHERE {c} >= ? ORDER BY {c} LIMIT ?) b",
        c = key.column,
        t = key.table
    );
    let top = tx.query_scalar(&sql, &[Value::Int(from), Value::Int(size.max(1) as i64)])?;
    walked(key, &top)
}

/// The first and last key, for progress and the ETA; `None` on an empty table.
pub(crate) fn span(tx: &mut dyn Tx, key: Key) -> DbResult<Option<(i64, i64)>> {
    let row = tx.query(
        &format!(
            "SELECT MIN({c}), MAX({c}) FROM {t}",
            c = key.column,
            t = key.table
        ),
        &[],
    )?;
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
