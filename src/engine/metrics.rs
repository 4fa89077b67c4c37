//! Prometheus metrics of a command's runs (`--metrics-addr HOST:PORT`), served at `GET /metrics` in
//! the OpenMetrics text format (`prometheus-client`) for as long as the command runs: rows written and
//! reverted, batches, batch durations, seconds throttled by reason, replica lag, ETA and the run's
//! state (README, "Metrics").
//!
//! The server is one thread on a std `TcpListener`: a scrape reads atomics, never the database, and
//! takes no lock a batch waits on.

use crate::error::{Error, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Labels = Vec<(&'static str, String)>;

/// The run states `backfill_state` has a series for (1 for the current one, 0 for the others).
const STATES: [&str; 7] = [
    "running",
    "throttled",
    "paused",
    "finished",
    "failed",
    "cancelled",
    "halted",
];
/// How often the server looks for a connection, and for the end of the command.
const POLL: Duration = Duration::from_millis(20);
/// The longest the end of a command waits for a scrape of its last figures.
const LAST_SCRAPE: Duration = Duration::from_secs(15);

/// The families, registered once.
struct Families {
    registry: Registry,
    rows: Family<Labels, Counter>,
    batches: Family<Labels, Counter>,
    duration: Family<Labels, Histogram>,
    throttled: Family<Labels, Counter<f64, AtomicU64>>,
    lag: Gauge<f64, AtomicU64>,
    eta: Family<Labels, Gauge>,
    state: Family<Labels, Gauge>,
}

fn duration_histogram() -> Histogram {
    // 5 ms to about 40 s: a batch aims at 300 ms by default.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Families {
    fn new() -> Families {
        let mut f = Families {
            registry: Registry::default(),
            rows: Family::default(),
            batches: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            throttled: Family::default(),
            lag: Gauge::default(),
            eta: Family::default(),
            state: Family::default(),
        };
        let r = &mut f.registry;
        r.register(
            "backfill_rows",
            "Rows written (action=apply) or reverted (action=revert)",
            f.rows.clone(),
        );
        r.register("backfill_batches", "Batches committed", f.batches.clone());
        r.register(
            "backfill_batch_duration_seconds",
            "Batch transactions, BEGIN to COMMIT",
            f.duration.clone(),
        );
        r.register(
            "backfill_throttled_seconds",
            "Seconds a throttle held the run, by reason",
            f.throttled.clone(),
        );
        r.register(
            "backfill_replica_lag_seconds",
            "The worst replica lag at the last look (--max-replica-lag)",
            f.lag.clone(),
        );
        r.register(
            "backfill_eta_seconds",
            "Estimated seconds left in the run",
            f.eta.clone(),
        );
        r.register(
            "backfill_state",
            "1 for the run's current state",
            f.state.clone(),
        );
        f
    }
}

/// What the server thread and the runs share.
struct Shared {
    families: Families,
    /// The run under way: its labels, and the totals already counted.
    run: Mutex<(Labels, u64, u64)>,
    stop: AtomicBool,
    /// Scrapes served: the end of a command waits for one more.
    scrapes: AtomicU64,
    /// When the last two scrapes came: the scrape interval, as the scraper keeps it.
    times: Mutex<(Option<Instant>, Option<Instant>)>,
}

struct Server {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The command's metrics: off (the default, every call a no-op), or served. Clones share them.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Server>>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Metrics(on)"
        } else {
            "Metrics(off)"
        })
    }
}

impl Metrics {
    /// Serves the metrics at `addr` until the command ends. An address that cannot be listened on is
    /// the operator's to fix (exit 2), before anything is written.
    pub fn serve(addr: &str) -> Result<Metrics> {
        let listener = TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| Error::Usage(format!("--metrics-addr {addr}: cannot listen there ({e}); give a free HOST:PORT, e.g. 127.0.0.1:9187")))?;
        let shared = Arc::new(Shared {
            families: Families::new(),
            run: Mutex::new((Vec::new(), 0, 0)),
            stop: AtomicBool::new(false),
            scrapes: AtomicU64::new(0),
            times: Mutex::new((None, None)),
        });
        let serving = Arc::clone(&shared);
        let thread = std::thread::spawn(move || listen(&listener, &serving));
        Ok(Metrics(Some(Arc::new(Server {
            shared,
            thread: Some(thread),
        }))))
    }

    fn shared(&self) -> Option<&Shared> {
        self.0.as_ref().map(|s| s.shared.as_ref())
    }

    /// The run that starts now: the labels of its series.
    pub(crate) fn begin(&self, version: i64, action: &str) {
        let Some(s) = self.shared() else { return };
        let labels = vec![
            ("version", version.to_string()),
            ("action", action.to_string()),
        ];
        // Every series of the run exists from its start, at zero: a scrape before the first batch
        // shows the run, and rate() has a first sample.
        let f = &s.families;
        f.rows.get_or_create(&labels).inc_by(0);
        f.batches.get_or_create(&labels).inc_by(0);
        let _created = f.duration.get_or_create(&labels);
        f.eta.get_or_create(&labels).set(-1);
        if let Ok(mut run) = s.run.lock() {
            *run = (labels, 0, 0);
        }
        self.state("running");
    }

    /// The run's totals so far and its ETA (after each batch, or each tick of a parallel run).
    pub(crate) fn progress(&self, rows: u64, batches: u64, eta: Option<Duration>) {
        let Some(s) = self.shared() else { return };
        let Ok(mut run) = s.run.lock() else { return };
        let f = &s.families;
        f.rows
            .get_or_create(&run.0)
            .inc_by(rows.saturating_sub(run.1));
        f.batches
            .get_or_create(&run.0)
            .inc_by(batches.saturating_sub(run.2));
        (run.1, run.2) = (run.1.max(rows), run.2.max(batches));
        let eta = eta.map_or(-1, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        f.eta.get_or_create(&run.0).set(eta);
    }

    /// One committed batch's transaction time.
    pub(crate) fn batch_took(&self, took: Duration) {
        let Some(s) = self.shared() else { return };
        let labels = s.run.lock().map(|r| r.0.clone()).unwrap_or_default();
        s.families
            .duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Seconds a throttle (`reason`: its metric label) held the run.
    pub(crate) fn throttled(&self, reason: &str, held: Duration) {
        let Some(s) = self.shared() else { return };
        let labels = vec![("reason", reason.to_string())];
        s.families
            .throttled
            .get_or_create(&labels)
            .inc_by(held.as_secs_f64());
    }

    pub(crate) fn replica_lag(&self, lag: Duration) {
        if let Some(s) = self.shared() {
            s.families.lag.set(lag.as_secs_f64());
        }
    }

    /// The run's state now: one of [`STATES`].
    pub(crate) fn state(&self, now: &str) {
        let Some(s) = self.shared() else { return };
        let labels = s.run.lock().map(|r| r.0.clone()).unwrap_or_default();
        for state in STATES {
            let mut one = labels.clone();
            one.push(("state", state.to_string()));
            s.families
                .state
                .get_or_create(&one)
                .set(i64::from(state == now));
        }
    }
}

/// The end of the command: once something scrapes the metrics, it gets the last figures too (one more
/// scrape, waited for at most two scrape intervals), then the server stops.
impl Drop for Server {
    fn drop(&mut self) {
        let s = &self.shared;
        let interval = s
            .times
            .lock()
            .ok()
            .and_then(|t| Some(t.1?.duration_since(t.0?)));
        if let Some(interval) = interval {
            let seen = s.scrapes.load(Ordering::SeqCst);
            let deadline = Instant::now() + (interval * 2).min(LAST_SCRAPE);
            while s.scrapes.load(Ordering::SeqCst) == seen && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        s.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn listen(listener: &TcpListener, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, shared) {
                    tracing::debug!("a metrics request failed: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::debug!("accepting a metrics request failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// One request: `GET /metrics` gets the text format, anything else 404.
fn answer(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut stream = stream;
    let mut parts = request.split_whitespace();
    let wanted = parts.next() == Some("GET")
        && parts
            .next()
            .is_some_and(|p| p == "/metrics" || p.starts_with("/metrics?"));
    if !wanted {
        let body = "only GET /metrics is served here\n";
        return write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    }
    let mut body = String::new();
    encode(&mut body, &shared.families.registry).map_err(std::io::Error::other)?;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    shared.scrapes.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut times) = shared.times.lock() {
        *times = (times.1, Some(Instant::now()));
    }
    Ok(())
}
