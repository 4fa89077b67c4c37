//! Samples for `plan`: the first few pending rows of each group by key, read with the step's own
//! ranged query from the lowest keys up, stopping as soon as every group has its samples (usually
//! after the first range, instead of sorting every pending row).

use crate::db::{DbResult, Tx, Value};
use crate::kit::migration::{Group, Key, KeyRange};

/// Fills `groups` with up to `samples` rows each. `sql` is a ranged query whose parameters are the
/// range `[lo, hi]` repeated `range_times` times, returning the group key first, then one column per
/// name in `fields`; each sample is a JSON object of those fields.
pub fn fill(
    tx: &mut dyn Tx,
    key: Key,
    groups: &mut [Group],
    samples: usize,
    sql: &str,
    range_times: usize,
    fields: &[&str],
) -> DbResult<()> {
    let params = |range: KeyRange| range.params(range_times);
    fill_with(tx, key, groups, samples, sql, &params, fields)
}

/// [`fill`] for a query whose parameters are not the range repeated: `params` gives them for a
/// range (e.g. `:lo` and `:hi` wherever the author wrote them).
pub fn fill_with(
    tx: &mut dyn Tx,
    key: Key,
    groups: &mut [Group],
    samples: usize,
    sql: &str,
    params: &dyn Fn(KeyRange) -> Vec<Value>,
    fields: &[&str],
) -> DbResult<()> {
    const FIRST_RANGE: u64 = 2_000;
    const MAX_RANGE: u64 = 50_000;
    let short = |groups: &[Group]| {
        groups
            .iter()
            .any(|g| g.samples.len() < samples.min(g.count as usize))
    };
    let (mut from, mut span) = (Some(i64::MIN), FIRST_RANGE);
    while let (true, Some(lo)) = (short(groups), from) {
        let Some(hi) = super::bounds::next_bound(tx, key, lo, span)? else {
            break;
        };
        for row in tx.query(sql, &params(KeyRange { lo, hi }))? {
            let group = row.first().and_then(Value::as_i64).unwrap_or(0);
            if let Some(g) = groups.iter_mut().find(|g| g.key == group) {
                if g.samples.len() < samples {
                    g.samples.push(object(fields, row.into_iter().skip(1)));
                }
            }
        }
        from = hi.checked_add(1);
        span = (span * 2).min(MAX_RANGE);
    }
    Ok(())
}

/// A JSON object of `fields` and values, in order.
pub(crate) fn object(fields: &[&str], values: impl Iterator<Item = Value>) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|f| f.to_string())
        .zip(values.map(Value::into_json))
        .collect();
    serde_json::Value::Object(map)
}
