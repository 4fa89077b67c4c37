//! Work stealing for parallel runs: a worker with no pending chunk takes the upper half of a busy one,
//! so a sparse key range never leaves a job idle while another still has a dense one.

use crate::db::{DbResult, Session, Value};
use crate::engine::batch::Job;
use crate::engine::ledger;
use crate::engine::parallel::Shared;
use crate::kit::migration::Key;

/// A worker with no pending chunk left takes the upper half of the running chunk (of its run) with
/// the widest range of keys left, split at a key, so it never idles while another worker still has
/// much to do. Chunks with fewer than two batches' worth of key values left are not split: their
/// worker finishes them sooner than a split would pay. `None`: nothing worth splitting.
pub(crate) fn steal(
    session: &mut dyn Session,
    job: &Job,
    shared: &Shared,
    size: u64,
) -> DbResult<Option<ledger::Chunk>> {
    let Some((_, last_key)) = shared.span else {
        return Ok(None);
    };
    let min_width = i128::from(size.max(1)) * 2;
    for _ in 0..8 {
        if shared.stopping() {
            return Ok(None);
        }
        let Some((from, to, chunk)) = widest(session, job, last_key, min_width)? else {
            return Ok(None);
        };
        let Some(at) = split_point(session, job.key, (from, to), chunk.hi, min_width)? else {
            return Ok(None);
        };
        if let Some(mine) =
            ledger::split_chunk(session, job.ledger_key(), (chunk.lo, chunk.hi), at)?
        {
            tracing::debug!(
                "split chunk {} at {at}: keys {at}..={} are this worker's now",
                chunk.lo,
                chunk.hi
            );
            return Ok(Some(mine));
        }
        // Its worker committed past the split point meanwhile: look again.
    }
    Ok(None)
}

/// The running chunk of this run with the most key values left (at least `min_width`), and those keys
/// `[from, to]`: the open-ended last chunk ends at the last key the run started with.
fn widest(
    session: &mut dyn Session,
    job: &Job,
    last_key: i64,
    min_width: i128,
) -> DbResult<Option<(i64, i64, ledger::Chunk)>> {
    let widest = ledger::running_chunks(session, job.ledger_key())?
        .into_iter()
        .map(|c| {
            let from = c.cursor.map_or(c.lo, |k| k.saturating_add(1));
            let to = c.hi.min(last_key);
            (i128::from(to) - i128::from(from) + 1, from, to, c)
        })
        .filter(|(width, ..)| *width >= min_width)
        .max_by_key(|(width, ..)| *width);
    Ok(widest.map(|(_, from, to, chunk)| (from, to, chunk)))
}

/// Where to split the keys left `[from, to]` of a chunk that ends at `hi`: the first key of the upper
/// half of the values; when the upper half holds no key, of the upper half of the lower half, and so
/// on (one index probe each), while the range is still worth splitting. `None`: no split point.
fn split_point(
    session: &mut dyn Session,
    key: Key,
    (from, mut to): (i64, i64),
    hi: i64,
    min_width: i128,
) -> DbResult<Option<i64>> {
    let probe = format!(
        "SELECT MIN({c}) FROM {t} WHERE {c} >= ? AND {c} <= ?",
        c = key.column,
        t = key.table
    );
    while i128::from(to) - i128::from(from) + 1 >= min_width {
        let mid = i64::try_from((i128::from(from) + i128::from(to)) / 2 + 1).unwrap_or(to);
        let found = session
            .query_scalar(&probe, &[Value::Int(mid), Value::Int(hi)])?
            .as_i64();
        if found.is_some() {
            return Ok(found);
        }
        to = mid - 1;
    }
    Ok(None)
}
