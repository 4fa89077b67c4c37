//! What PostgreSQL says about its own health, for the runner's health throttles: a VACUUM on one of
//! the migration's tables, WAL waiting for the archiver, sessions queued behind our batches' locks.

use super::super::{DbResult, Tx, Value};

/// Which of `tables` (in the session's schemas) a VACUUM, autovacuum or manual, works on now. An
/// autovacuum worker is visible only to a superuser or a member of pg_read_all_stats (pg_monitor).
pub(super) fn vacuuming(tx: &mut dyn Tx, tables: &[&str]) -> DbResult<Vec<String>> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; tables.len()].join(", ");
    let sql = format!(
        "SELECT c.relname FROM pg_stat_progress_vacuum v JOIN pg_class c ON c.oid = v.relid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE v.datname = current_database() AND n.nspname = ANY(current_schemas(false)) \
         AND c.relname IN ({marks}) ORDER BY 1"
    );
    let params: Vec<Value> = tables.iter().map(|t| Value::from(*t)).collect();
    let rows = tx.query(&sql, &params)?;
    Ok(rows
        .iter()
        .filter_map(|r| r.first().and_then(Value::as_str).map(str::to_string))
        .collect())
}

/// WAL segments complete but not archived yet (`pg_stat_archiver` against the segment being
/// written); `None` when archiving is off or this is a standby.
pub(super) fn archive_backlog(tx: &mut dyn Tx) -> DbResult<Option<u64>> {
    let rows = tx.query(
        "SELECT current_setting('archive_mode'), pg_is_in_recovery()::int, \
         CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END, \
         a.last_archived_wal, a.last_failed_wal, \
         pg_size_bytes(current_setting('wal_segment_size')) FROM pg_stat_archiver a",
        &[],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let text = |i: usize| row.get(i).and_then(Value::as_str);
    let standby = row.get(1).and_then(Value::as_i64) == Some(1);
    let segment = row.get(5).and_then(Value::as_i64).unwrap_or(0);
    if text(0).is_none_or(|mode| mode == "off") || standby || segment <= 0 {
        return Ok(None);
    }
    let per_log = (1i64 << 32) / segment;
    let number = |i: usize| text(i).and_then(|name| segment_number(name, per_log));
    let Some(current) = number(2) else {
        return Ok(None);
    };
    // The oldest segment not archived: after the last one archived, else the one that failed.
    let oldest = match (number(3), number(4)) {
        (Some(done), _) => done + 1,
        (None, Some(failed)) => failed,
        (None, None) => current,
    };
    Ok(Some(u64::try_from(current - oldest).unwrap_or(0)))
}

/// The segment's number from its file name (timeline, log, segment: 8 hex digits each); `None` for
/// a history or backup file.
fn segment_number(name: &str, per_log: i64) -> Option<i64> {
    let hex = |range: std::ops::Range<usize>| {
        name.get(range)
            .and_then(|h| i64::from_str_radix(h, 16).ok())
    };
    if name.len() < 24 || !name.as_bytes()[..24].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(hex(8..16)?.checked_mul(per_log)? + hex(16..24)?)
}

/// Sessions of this database, other than this process's own, that wait on a lock held by a session
/// of this process (each names itself `backfill pid N`).
pub(super) fn waiting_on_us(tx: &mut dyn Tx, ours: &str) -> DbResult<u64> {
    let n = tx.query_scalar(
        "SELECT count(*) FROM pg_stat_activity w WHERE w.datname = current_database() \
         AND w.application_name IS DISTINCT FROM ? \
         AND pg_blocking_pids(w.pid) && ARRAY(SELECT pid FROM pg_stat_activity WHERE application_name = ?)",
        &[ours.into(), ours.into()],
    )?;
    Ok(n.as_i64().and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::segment_number;

    #[test]
    fn segment_numbers_count_across_logs() {
        let per_log = (1i64 << 32) / (16 << 20);
        assert_eq!(segment_number("000000010000000000000003", per_log), Some(3));
        assert_eq!(
            segment_number("0000000100000002000000FF", per_log),
            Some(2 * 256 + 255)
        );
        assert_eq!(segment_number("00000002.history", per_log), None);
        assert_eq!(
            segment_number("000000010000000000000003.partial", per_log),
            Some(3)
        );
    }
}
