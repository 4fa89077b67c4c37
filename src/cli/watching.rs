//! The flags of apply and revert that watch a run: the health throttles (`engine::health`) and
//! the events (`engine::events`).

use crate::engine::events::{Events, Sinks};
use crate::engine::health::{Limits, DEFAULT_EVERY};
use crate::engine::metrics::Metrics;
use crate::engine::options::Options;
use crate::error::{Error, Result};
use clap::Args;
use std::time::Duration;

const HEALTH: &str = "Health throttles (each holds the next batch while it says so)";
const EVENTS: &str = "Events and metrics (README: Events, Metrics)";

#[derive(Debug, Args)]
pub(crate) struct Watching {
    /// MySQL/MariaDB: wait while the server's Threads_running is above N (gh-ost's --max-load;
    /// default: no limit).
    #[arg(long, value_name = "N", help_heading = HEALTH, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) max_threads_running: Option<u64>,
    /// PostgreSQL: wait while a VACUUM (autovacuum or manual) runs on a table the migration walks or
    /// writes. Seeing autovacuum needs pg_monitor.
    #[arg(long, help_heading = HEALTH)]
    pub(crate) throttle_vacuum: bool,
    /// PostgreSQL: wait while more than N WAL segments wait for the archiver (pg_stat_archiver;
    /// default: no limit).
    #[arg(long, value_name = "N", help_heading = HEALTH, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub(crate) max_wal_pending: Option<u64>,
    /// PostgreSQL: after a batch that other sessions had to wait for (its row or table locks), let
    /// them through before the next batch.
    #[arg(long, help_heading = HEALTH)]
    pub(crate) throttle_lock_waits: bool,
    /// Wait while this query's first column is true (non-zero, t, true), run read-only (default:
    /// none).
    ///
    /// e.g. --throttle-sql "SELECT count(*) > 50 FROM pg_stat_activity WHERE state = 'active'".
    /// A query that fails at the start is exit 2; one that fails later holds the run until it answers.
    #[arg(long, value_name = "SQL", help_heading = HEALTH)]
    pub(crate) throttle_sql: Option<String>,
    /// Read the health at most every MS milliseconds, on a connection of its own (default 1000).
    #[arg(long, value_name = "MS", help_heading = HEALTH, value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    pub(crate) throttle_every: Option<u64>,
    /// POST each event of the run (started, progress, throttled, finished, failed, …) as JSON to this
    /// http(s) URL, e.g. a Slack incoming webhook (default: none).
    ///
    /// Sent from a background thread with a 3 s timeout and 2 retries: a slow or unreachable endpoint
    /// never holds a batch up, and costs one warning. Messages name only its scheme, host and port.
    #[arg(long, value_name = "URL", help_heading = EVENTS)]
    pub(crate) notify_url: Option<String>,
    /// Run this shell command (sh -c) for each event, the event's JSON on its stdin (default: none).
    #[arg(long, value_name = "CMD", help_heading = EVENTS)]
    pub(crate) notify_cmd: Option<String>,
    /// Seconds between progress events (default 60).
    #[arg(long, value_name = "S", help_heading = EVENTS, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) notify_every: Option<u64>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the command runs (default: none).
    ///
    /// Rows written and reverted, batches, batch durations, seconds throttled by reason, replica lag,
    /// ETA and the run's state (README: Metrics). Once scraped, the command waits for one more scrape
    /// of its last figures before it exits (at most two scrape intervals, 15 s).
    #[arg(long, value_name = "HOST:PORT", help_heading = EVENTS)]
    pub(crate) metrics_addr: Option<String>,
}

impl Watching {
    /// The throttles and the events into `opts`; a throttle for another kind of server is refused
    /// once the database's kind is known.
    pub(crate) fn fill(&self, opts: &mut Options) -> Result<()> {
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
        let sinks = Sinks {
            url_name: self
                .notify_url
                .as_deref()
                .map(endpoint)
                .transpose()?
                .unwrap_or_default(),
            url: self.notify_url.clone(),
            cmd: self.notify_cmd.clone(),
            every: self.notify_every.map(Duration::from_secs),
        };
        opts.events = Events::start(sinks, &opts.operator);
        if let Some(addr) = &self.metrics_addr {
            opts.metrics = Metrics::serve(addr)?;
        }
        Ok(())
    }
}

/// `https://hooks.example.com:443` from a webhook URL: what messages may show of it (its path and
/// query are its secret). Anything but an http(s) URL with a host is refused (exit 2).
fn endpoint(url: &str) -> Result<String> {
    let refused = || {
        Error::Usage(
            "--notify-url takes an http:// or https:// URL, e.g. https://hooks.slack.com/services/…".into(),
        )
    };
    let parsed = url::Url::parse(url.trim()).map_err(|_| refused())?;
    let host = parsed
        .host_str()
        .filter(|_| matches!(parsed.scheme(), "http" | "https"));
    let host = host.ok_or_else(refused)?;
    let port = parsed.port_or_known_default().unwrap_or(0);
    Ok(format!("{}://{host}:{port}", parsed.scheme()))
}
