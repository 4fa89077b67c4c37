//! `backfill_chunks`: the key ranges of a parallel run (`--jobs N`, ledger schema V4).
//!
//! A parallel run splits its key range into chunks; each worker takes a pending chunk with a
//! compare-and-set and runs batches inside it. Every batch is fenced on its chunk row (owning run, the
//! chunk's cursor) and commits its writes with the chunk's checkpoint, so the workers never wait on one
//! hot row. A later run takes the chunks over in one statement (the old run's workers then fail their
//! next fence), and the finished run folds the chunks' counts into `backfill_migrations` and into the
//! audit rows of the runs that wrote them, then deletes them, in one transaction.

use super::migrations::{entry, own_migration};
use super::{cursor_column, in_transaction, int, ledger_error, now, text};
use super::{Action, ChunkState, RunKey};
use crate::db::{Session, Value};
use crate::error::{Error, Result};

/// One key range of a parallel run, named by its first key (chunks never overlap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// First key of the range (inclusive).
    pub lo: i64,
    /// Last key of the range (inclusive); a split lowers it, so a worker reads it in each batch.
    pub hi: i64,
    /// The last key done in this chunk; `None` before its first batch.
    pub cursor: Option<i64>,
    pub state: ChunkState,
    pub rows: i64,
    pub batches: i64,
}

impl Chunk {
    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

// The stored words, spelled once, for the SQL that filters on them.
const CHUNK_PENDING: &str = ChunkState::Pending.as_str();
const CHUNK_RUNNING: &str = ChunkState::Running.as_str();
const CHUNK_DONE: &str = ChunkState::Done.as_str();

const CHUNK_COLUMNS: &str = "lo_key, hi_key, cursor_key, state, row_count, batches";

fn parse_chunk(r: &[Value]) -> Chunk {
    Chunk {
        lo: int(&r[0]),
        hi: int(&r[1]),
        cursor: r[2].as_i64(),
        state: ChunkState::from_stored(text(&r[3]).as_deref()),
        rows: int(&r[4]),
        batches: int(&r[5]),
    }
}

/// The chunks of `version`'s `action`, in key order; empty when no parallel run left any.
pub(crate) fn chunks(
    session: &mut dyn Session,
    version: i64,
    action: Action,
) -> crate::db::DbResult<Vec<Chunk>> {
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM backfill_chunks WHERE version = ? AND action = ? ORDER BY lo_key"
    );
    let rows = session.query(&sql, &[Value::Int(version), action.as_str().into()])?;
    Ok(rows.iter().map(|r| parse_chunk(r)).collect())
}

/// Keys no chunk of `version`'s `action` covers, when chunks are left. A parallel run's chunks tile
/// the keys from just after the migration's cursor (unchanged while they exist) to the largest key
/// there can be, and splits keep them so: a hole means a chunk row was deleted, and its keys would
/// never be walked while the run still ended `applied`. Ledger damage (exit 3), with the fix.
pub(crate) fn chunk_gap(session: &mut dyn Session, version: i64, action: Action) -> Result<()> {
    let left = chunks(session, version, action).map_err(|e| ledger_error("backfill_chunks", e))?;
    if left.is_empty() {
        return Ok(());
    }
    let cursor = entry(session, version)?.and_then(|e| match action {
        Action::Revert => e.revert_cursor,
        _ => e.apply_cursor,
    });
    let mut next = match cursor {
        None => Some(i64::MIN),
        // A cursor that is not a key is named by the run itself.
        Some(c) => match c.id() {
            Some(id) => id.checked_add(1),
            None => return Ok(()),
        },
    };
    for c in &left {
        match next {
            Some(n) if c.lo > n => return Err(hole(version, action, n, c.lo - 1)),
            Some(n) if c.hi >= n => next = c.hi.checked_add(1),
            _ => {}
        }
    }
    match next {
        Some(n) => Err(hole(version, action, n, i64::MAX)),
        None => Ok(()),
    }
}

fn hole(version: i64, action: Action, lo: i64, hi: i64) -> Error {
    Error::Ledger(format!(
        "the ledger's chunks of V{version}'s {action} do not cover keys {lo} to {hi} (a backfill_chunks row was deleted?): those keys may never have been walked; put them back as a pending chunk, and the next `backfill {action} {version}` walks them: INSERT INTO backfill_chunks (version, action, lo_key, hi_key, cursor_key, state, owner_run, row_count, owner_rows, batches) VALUES ({version}, '{action}', {lo}, {hi}, NULL, 'pending', 'restored', 0, 0, 0)"
    ))
}

/// How a run found the chunks of its action once it owned the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Another runner took the migration over first: do nothing.
    Overtaken,
    /// An earlier parallel run's chunks, now this run's (resume them, whatever `--jobs`).
    TookOver,
    /// New chunks, from the given ranges.
    Created,
    /// No chunks: the plain batch loop.
    Single,
}

/// Settles the chunks of `version`'s `action` for a run that has just started it (`ledger::start`), in
/// one transaction fenced on the migration row (so never from a stale read: a runner that lost the
/// start touches no chunk):
/// - chunks of the other action (an abandoned parallel run): folded into the counts and dropped;
/// - chunks left by another run, and this run resumes: it takes them over, in one statement, so a
///   worker of the run it replaces fails its next fence and writes nothing more (what the replaced
///   runs wrote goes to their audit rows first);
/// - chunks left, and this run starts over (`fresh`): they are folded into the counts and dropped;
/// - then, with `ranges`, new chunks owned by this run.
pub(crate) fn prepare_chunks(
    session: &mut dyn Session,
    key: RunKey,
    fresh: bool,
    ranges: Option<&[(i64, i64)]>,
) -> crate::db::DbResult<Prepared> {
    let prepared = in_transaction(session, |s| {
        if !own_migration(s, key.version, key.run)? {
            return Ok(Some(Prepared::Overtaken));
        }
        fold_other_action(s, key, fresh)?;
        if take_over_or_fold(s, key, fresh)? {
            return Ok(Some(Prepared::TookOver));
        }
        match ranges.filter(|r| !r.is_empty()) {
            Some(ranges) => insert_pending(s, key, ranges).map(|()| Some(Prepared::Created)),
            None => Ok(Some(Prepared::Single)),
        }
    })?;
    Ok(prepared.unwrap_or(Prepared::Overtaken))
}

/// Chunks of the other action are an abandoned parallel run's (this run owns the migration now):
/// count what they wrote and drop them.
fn fold_other_action(s: &mut dyn Session, key: RunKey, fresh: bool) -> crate::db::DbResult<()> {
    let other = match key.action {
        Action::Revert => Action::Apply,
        _ => Action::Revert,
    };
    let undone = fold_locked(s, key.version, other, None)?;
    if fresh && key.action == Action::Apply && undone.is_some_and(|f| f.rows > 0) {
        // `start` already turned what was reverted into fewer applied rows; the revert chunks
        // folded just now are more of the same, or a fresh apply would count them twice.
        s.execute(
            "UPDATE backfill_migrations SET rows_applied = rows_applied - rows_reverted, rows_reverted = 0 WHERE version = ?",
            &[Value::Int(key.version)],
        )?;
    }
    Ok(())
}

/// Chunks of this action that an earlier run left: a resume takes them over (`true`), a fresh start
/// folds them into the counts and drops them.
fn take_over_or_fold(s: &mut dyn Session, key: RunKey, fresh: bool) -> crate::db::DbResult<bool> {
    let lock = s.dialect().for_update();
    let left = s.query(
        &format!("SELECT lo_key FROM backfill_chunks WHERE version = ? AND action = ?{lock}"),
        &[Value::Int(key.version), key.action.as_str().into()],
    )?;
    if left.is_empty() {
        return Ok(false);
    }
    if fresh {
        fold_locked(s, key.version, key.action, None)?;
        return Ok(false);
    }
    settle_owner_rows(s, key.version, key.action, Runs::Except(key.run))?;
    s.execute(
        &format!(
            "UPDATE backfill_chunks SET owner_run = ?, state = '{CHUNK_PENDING}' \
             WHERE version = ? AND action = ? AND state <> '{CHUNK_DONE}'"
        ),
        &[
            key.run.into(),
            Value::Int(key.version),
            key.action.as_str().into(),
        ],
    )?;
    Ok(true)
}

/// New pending chunks owned by this run, one row per range, in one statement.
fn insert_pending(
    s: &mut dyn Session,
    key: RunKey,
    ranges: &[(i64, i64)],
) -> crate::db::DbResult<()> {
    let mut sql = String::from(
        "INSERT INTO backfill_chunks (version, action, lo_key, hi_key, cursor_key, state, owner_run, \
         row_count, owner_rows, batches) VALUES ",
    );
    let mut params = Vec::with_capacity(ranges.len() * 5);
    for (i, (lo, hi)) in ranges.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(?, ?, ?, ?, NULL, '{CHUNK_PENDING}', ?, 0, 0, 0)"
        ));
        params.extend([
            Value::Int(key.version),
            key.action.as_str().into(),
            Value::Int(*lo),
            Value::Int(*hi),
            key.run.into(),
        ]);
    }
    s.execute(&sql, &params).map(|_| ())
}

/// Whose rows `settle_owner_rows` moves to the audit table.
#[derive(Clone, Copy)]
enum Runs<'a> {
    All,
    Except(&'a str),
    Only(&'a str),
}

/// A parallel run that stops early (failed, interrupted, overtaken) moves what it wrote to its own
/// audit row, so `backfill log` counts it now; its chunks stay for the run that resumes them.
pub(crate) fn settle_run_rows(session: &mut dyn Session, key: RunKey) -> crate::db::DbResult<()> {
    in_transaction(session, |s| {
        settle_owner_rows(s, key.version, key.action, Runs::Only(key.run)).map(Some)
    })
    .map(|_| ())
}

/// Adds what other runs wrote in these chunks (`owner_rows`) to their audit rows and zeroes it, so each
/// run's `row_count` holds exactly its committed batches however it ended. Inside a transaction.
fn settle_owner_rows(
    session: &mut dyn Session,
    version: i64,
    action: Action,
    runs: Runs,
) -> crate::db::DbResult<()> {
    let lock = session.dialect().for_update();
    let mut sql = "SELECT owner_run, owner_rows FROM backfill_chunks WHERE version = ? AND action = ? AND owner_rows <> 0"
        .to_string();
    let mut params = vec![Value::Int(version), action.as_str().into()];
    let only = match runs {
        Runs::All => "",
        Runs::Except(_) => " AND owner_run <> ?",
        Runs::Only(_) => " AND owner_run = ?",
    };
    if let Runs::Except(run) | Runs::Only(run) = runs {
        sql.push_str(only);
        params.push(run.into());
    }
    sql.push_str(lock);
    let mut per_run: std::collections::BTreeMap<String, i64> = Default::default();
    for r in session.query(&sql, &params)? {
        *per_run.entry(text(&r[0]).unwrap_or_default()).or_default() += int(&r[1]);
    }
    for (run, rows) in &per_run {
        session.execute(
            "UPDATE backfill_runs SET row_count = row_count + ? WHERE run_id = ?",
            &[Value::Int(*rows), run.as_str().into()],
        )?;
    }
    if !per_run.is_empty() {
        let sql = format!(
            "UPDATE backfill_chunks SET owner_rows = 0 WHERE version = ? AND action = ? AND owner_rows <> 0{only}"
        );
        session.execute(&sql, &params)?;
    }
    Ok(())
}

/// One worker takes the next pending chunk of its run (a compare-and-set; two workers never get the
/// same chunk). `None`: no pending chunk is left for this run.
pub(crate) fn claim_chunk(
    session: &mut dyn Session,
    key: RunKey,
) -> crate::db::DbResult<Option<Chunk>> {
    let RunKey {
        version,
        action,
        run: run_id,
    } = key;
    let take = format!(
        "UPDATE backfill_chunks SET state = '{CHUNK_RUNNING}' WHERE version = ? AND action = ? AND lo_key = ? \
         AND owner_run = ? AND state = '{CHUNK_PENDING}'"
    );
    loop {
        let Some(mut chunk) = chunks_of_run(session, key, CHUNK_PENDING, " LIMIT 1")?.pop() else {
            return Ok(None);
        };
        let params = [
            Value::Int(version),
            action.as_str().into(),
            Value::Int(chunk.lo),
            run_id.into(),
        ];
        if session.execute(&take, &params)? == 1 {
            chunk.state = ChunkState::Running;
            return Ok(Some(chunk));
        }
        // Another worker took it between the look and the take: look again.
    }
}

/// A retired worker's chunk (`backfill set --jobs` fewer) back to pending, its cursor kept, for
/// another worker of the run to claim.
pub(crate) fn release_chunk(
    session: &mut dyn Session,
    key: RunKey,
    lo: i64,
) -> crate::db::DbResult<()> {
    session.execute(
        &format!(
            "UPDATE backfill_chunks SET state = '{CHUNK_PENDING}' WHERE version = ? AND action = ? \
             AND lo_key = ? AND owner_run = ? AND state = '{CHUNK_RUNNING}'"
        ),
        &[
            Value::Int(key.version),
            key.action.as_str().into(),
            Value::Int(lo),
            key.run.into(),
        ],
    )?;
    Ok(())
}

/// The fence of a batch in a chunk: the first statement of its transaction. A compare-and-set on
/// (chunk, owning run, the cursor the batch starts from) that locks the chunk row, then the chunk's
/// last key as it is now (another worker of the run may have split the upper part off, which it
/// can only do while no batch holds the row). `None`: the run was taken over (or the chunk moved
/// on); the batch must roll back.
pub(crate) fn fence_chunk(
    session: &mut dyn Session,
    key: RunKey,
    lo: i64,
    from: Option<i64>,
) -> crate::db::DbResult<Option<i64>> {
    let RunKey {
        version,
        action,
        run: run_id,
    } = key;
    let mut sql = format!(
        "UPDATE backfill_chunks SET batches = batches WHERE version = ? AND action = ? AND lo_key = ? \
         AND owner_run = ? AND state = '{CHUNK_RUNNING}'"
    );
    let mut params = vec![
        Value::Int(version),
        action.as_str().into(),
        Value::Int(lo),
        run_id.into(),
    ];
    match from {
        Some(c) => {
            sql.push_str(" AND cursor_key = ?");
            params.push(Value::Int(c));
        }
        None => sql.push_str(" AND cursor_key IS NULL"),
    }
    if session.execute(&sql, &params)? != 1 {
        return Ok(None);
    }
    Ok(session
        .query_scalar(
            "SELECT hi_key FROM backfill_chunks WHERE version = ? AND action = ? AND lo_key = ?",
            &[Value::Int(version), action.as_str().into(), Value::Int(lo)],
        )?
        .as_i64())
}

/// What one batch did in its chunk, for [`checkpoint_chunk`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkMark {
    /// The last key done; `None` keeps the cursor (a look that found no key left).
    pub cursor: Option<i64>,
    pub rows: u64,
    /// The chunk is finished.
    pub done: bool,
}

/// A batch's checkpoint in its chunk (inside the batch transaction, after `fence_chunk`): the last key
/// done, the rows written, and whether the chunk is finished.
pub(crate) fn checkpoint_chunk(
    session: &mut dyn Session,
    key: RunKey,
    lo: i64,
    mark: ChunkMark,
) -> crate::db::DbResult<()> {
    let RunKey {
        version,
        action,
        run: run_id,
    } = key;
    let ChunkMark { cursor, rows, done } = mark;
    let state = if done { CHUNK_DONE } else { CHUNK_RUNNING };
    let (set_cursor, counted) = match cursor {
        Some(_) => ("cursor_key = ?, ", ", batches = batches + 1"),
        None => ("", ""),
    };
    let sql = format!(
        "UPDATE backfill_chunks SET {set_cursor}row_count = row_count + ?, owner_rows = owner_rows + ?, \
         state = '{state}'{counted} WHERE version = ? AND action = ? AND lo_key = ? AND owner_run = ?"
    );
    let mut params = Vec::new();
    if let Some(c) = cursor {
        params.push(Value::Int(c));
    }
    params.extend([
        Value::Int(rows as i64),
        Value::Int(rows as i64),
        Value::Int(version),
        action.as_str().into(),
        Value::Int(lo),
        run_id.into(),
    ]);
    session.execute(&sql, &params).map(|_| ())
}

/// Splits the upper part `[at, hi]` off this run's running chunk that starts at `lo` and ends at
/// `hi`, as a new running chunk for the calling worker: a compare-and-set on the chunk's last key and
/// on its cursor being below `at`, so a batch of its worker is never cut (the row is locked while a
/// batch runs, and a batch that committed past `at` makes the split fail). `None`: the chunk moved
/// on; look again.
pub(crate) fn split_chunk(
    session: &mut dyn Session,
    key: RunKey,
    (lo, hi): (i64, i64),
    at: i64,
) -> crate::db::DbResult<Option<Chunk>> {
    let RunKey {
        version,
        action,
        run: run_id,
    } = key;
    if at <= lo || at > hi {
        return Ok(None);
    }
    in_transaction(session, |s| {
        let shrunk = s.execute(
            &format!(
                "UPDATE backfill_chunks SET hi_key = ? WHERE version = ? AND action = ? AND lo_key = ? \
                 AND owner_run = ? AND state = '{CHUNK_RUNNING}' AND hi_key = ? \
                 AND (cursor_key IS NULL OR cursor_key < ?)"
            ),
            &[
                Value::Int(at - 1),
                Value::Int(version),
                action.as_str().into(),
                Value::Int(lo),
                run_id.into(),
                Value::Int(hi),
                Value::Int(at),
            ],
        )?;
        if shrunk != 1 {
            return Ok(None);
        }
        s.execute(
            &format!(
                "INSERT INTO backfill_chunks (version, action, lo_key, hi_key, cursor_key, state, owner_run, \
                 row_count, owner_rows, batches) VALUES (?, ?, ?, ?, NULL, '{CHUNK_RUNNING}', ?, 0, 0, 0)"
            ),
            &[
                Value::Int(version),
                action.as_str().into(),
                Value::Int(at),
                Value::Int(hi),
                run_id.into(),
            ],
        )?;
        Ok(Some(Chunk {
            lo: at,
            hi,
            cursor: None,
            state: ChunkState::Running,
            rows: 0,
            batches: 0,
        }))
    })
}

/// This run's running chunks, for a worker that found none pending and looks for one to split.
pub(crate) fn running_chunks(
    session: &mut dyn Session,
    key: RunKey,
) -> crate::db::DbResult<Vec<Chunk>> {
    chunks_of_run(session, key, CHUNK_RUNNING, "")
}

/// The run's chunks in one state, lowest keys first (`limit`: e.g. " LIMIT 1", or "").
fn chunks_of_run(
    session: &mut dyn Session,
    key: RunKey,
    state: &str,
    limit: &str,
) -> crate::db::DbResult<Vec<Chunk>> {
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM backfill_chunks WHERE version = ? AND action = ? AND owner_run = ? \
         AND state = '{state}' ORDER BY lo_key{limit}"
    );
    let params = [
        Value::Int(key.version),
        key.action.as_str().into(),
        key.run.into(),
    ];
    let rows = session.query(&sql, &params)?;
    Ok(rows.iter().map(|r| parse_chunk(r)).collect())
}

/// What folding a parallel run's chunks into the ledger found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Folded {
    /// Rows of every chunk (every run that worked on them).
    pub rows: i64,
    pub batches: i64,
    /// Rows written by the folding run itself.
    pub(crate) own_rows: i64,
}

/// Ends a run's parallel work, in one transaction: each run's rows go to its audit row, the chunks'
/// totals to `backfill_migrations`, the migration's cursor becomes the last key done, and the chunks
/// are deleted. Fenced on the migration row (`None` when another runner took over), and refused
/// (`None`) while a chunk is unfinished.
pub(crate) fn fold_chunks(
    session: &mut dyn Session,
    key: RunKey,
) -> crate::db::DbResult<Option<Folded>> {
    in_transaction(session, |s| {
        if !own_migration(s, key.version, key.run)? {
            return Ok(None);
        }
        fold_locked(s, key.version, key.action, Some(key.run))
    })
}

/// The fold itself, inside the caller's transaction; `None` (with `run_id`) while a chunk is
/// unfinished. Without `run_id`, it settles what an abandoned parallel run left before another kind
/// of run starts (the cursors stay: the new run resets its own).
fn fold_locked(
    s: &mut dyn Session,
    version: i64,
    action: Action,
    run_id: Option<&str>,
) -> crate::db::DbResult<Option<Folded>> {
    let lock = s.dialect().for_update();
    let rows = s.query(
        &format!(
            "SELECT owner_run, owner_rows, row_count, batches, cursor_key, state FROM backfill_chunks \
             WHERE version = ? AND action = ?{lock}"
        ),
        &[Value::Int(version), action.as_str().into()],
    )?;
    // The end of a run: every chunk done. None at all means another runner folded them (it took the
    // migration over and started afresh): not ours to finish.
    if run_id.is_some()
        && (rows.is_empty()
            || rows
                .iter()
                .any(|r| ChunkState::from_stored(text(&r[5]).as_deref()) != ChunkState::Done))
    {
        return Ok(None);
    }
    if rows.is_empty() {
        return Ok(Some(Folded::default()));
    }
    let mut folded = Folded::default();
    let mut last: Option<i64> = None;
    for r in &rows {
        if run_id.is_some_and(|run| text(&r[0]).as_deref() == Some(run)) {
            folded.own_rows += int(&r[1]);
        }
        folded.rows += int(&r[2]);
        folded.batches += int(&r[3]);
        last = last.max(r[4].as_i64());
    }
    settle_owner_rows(s, version, action, Runs::All)?;
    add_to_migration(
        s,
        (version, action),
        &folded,
        last.filter(|_| run_id.is_some()),
    )?;
    s.execute(
        "DELETE FROM backfill_chunks WHERE version = ? AND action = ?",
        &[Value::Int(version), action.as_str().into()],
    )?;
    Ok(Some(folded))
}

/// Adds the folded chunks' totals to the migration's row; with `cursor` (the end of a run), the
/// migration's cursor becomes the last key done.
fn add_to_migration(
    s: &mut dyn Session,
    (version, action): (i64, Action),
    folded: &Folded,
    cursor: Option<i64>,
) -> crate::db::DbResult<()> {
    let rows_col = match action {
        Action::Revert => "rows_reverted",
        _ => "rows_applied",
    };
    let mut sql = format!(
        "UPDATE backfill_migrations SET {rows_col} = {rows_col} + ?, batches = batches + ?, updated_at = ?"
    );
    let mut params = vec![
        Value::Int(folded.rows),
        Value::Int(folded.batches),
        Value::Timestamp(now()),
    ];
    if let Some(key) = cursor {
        sql.push_str(&format!(", {} = ?", cursor_column(action)));
        params.push(Value::Text(key.to_string()));
    }
    sql.push_str(" WHERE version = ?");
    params.push(Value::Int(version));
    s.execute(&sql, &params).map(|_| ())
}
