//! Key ranges: the runner's keyset iteration, public for steps that sample or scan the same way.

use crate::db::{DbResult, Tx, Value};
use crate::migration::Key;

/// The last key of the next `size` keys of `key` from `from` on (inclusive), or `None` when there are
/// none. Keys, never offsets: a batch of another size resumes at the same place.
pub fn next_bound(tx: &mut dyn Tx, key: Key, from: i64, size: u64) -> DbResult<Option<i64>> {
    let sql = format!(
        "SELECT MAX(k) FROM (SELECT {c} AS k FROM {t} WHERE {c} >= ? ORDER BY {c} LIMIT ?) b",
        c = key.column,
        t = key.table
    );
    Ok(tx
        .query_scalar(&sql, &[Value::Int(from), Value::Int(size.max(1) as i64)])?
        .as_i64())
}

/// The first and last key, for progress and the ETA; `None` on an empty table.
pub fn span(tx: &mut dyn Tx, key: Key) -> DbResult<Option<(i64, i64)>> {
    let row = tx.query(
        &format!(
            "SELECT MIN({c}), MAX({c}) FROM {t}",
            c = key.column,
            t = key.table
        ),
        &[],
    )?;
    Ok(row
        .first()
        .and_then(|r| Some((r.first()?.as_i64()?, r.get(1)?.as_i64()?))))
}
