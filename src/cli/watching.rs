//! The flags of apply and revert that hold a run on the server's health (`engine::health`).

use crate::engine::health::{Limits, DEFAULT_EVERY};
use crate::engine::options::Options;
use clap::Args;
use std::time::Duration;

const HEALTH: &str = "Health throttles (each holds the next batch while it says so)";

#[derive(Debug, Args)]
pub(crate) struct Watching {
    /// MySQL/MariaDB: wait while the server's Threads_running is above N (gh-ost's --max-load).
    #[arg(long, value_name = "N", help_heading = HEALTH, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) max_threads_running: Option<u64>,
    /// PostgreSQL: wait while a VACUUM (autovacuum or manual) runs on a table the migration walks or
    /// writes. Seeing autovacuum needs pg_monitor.
    #[arg(long, help_heading = HEALTH)]
    pub(crate) throttle_vacuum: bool,
    /// PostgreSQL: wait while more than N WAL segments wait for the archiver (pg_stat_archiver).
    #[arg(long, value_name = "N", help_heading = HEALTH, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub(crate) max_wal_pending: Option<u64>,
    /// PostgreSQL: after a batch that other sessions had to wait for (its row or table locks), let
    /// them through before the next batch.
    #[arg(long, help_heading = HEALTH)]
    pub(crate) throttle_lock_waits: bool,
    /// Wait while this query's first column is true (non-zero, t, true); run read-only.
    ///
    /// e.g. --throttle-sql "SELECT count(*) > 50 FROM pg_stat_activity WHERE state = 'active'".
    /// A query that fails at the start is exit 2; one that fails later holds the run until it answers.
    #[arg(long, value_name = "SQL", help_heading = HEALTH)]
    pub(crate) throttle_sql: Option<String>,
    /// Read the health at most every MS milliseconds, on a connection of its own (default 1000).
    #[arg(long, value_name = "MS", help_heading = HEALTH, value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    pub(crate) throttle_every: Option<u64>,
}

impl Watching {
    /// The throttles into `opts`; a bad combination is refused once the database's kind is known.
    pub(crate) fn fill(&self, opts: &mut Options) {
        opts.health = Limits {
            max_threads_running: self.max_threads_running,
            vacuum: self.throttle_vacuum,
            max_wal_pending: self.max_wal_pending,
            lock_waits: self.throttle_lock_waits,
            sql: self.throttle_sql.clone(),
            every: self
                .throttle_every
                .map_or(DEFAULT_EVERY, Duration::from_millis),
        };
    }
}
