//! Events of a run (`--notify-url`, `--notify-cmd`): started, progress every `--notify-every`
//! seconds, throttled, paused, resumed, finished, failed, cancelled; each one JSON document with a
//! Slack-compatible `text` (README, "Events").
//!
//! `emit` never waits on the endpoint: the event goes on a bounded queue that one background thread
//! delivers (a POST with a timeout and retries, the command's stdin), so a slow or dead endpoint
//! costs a batch nothing; a full queue drops the event. Whatever fails is one warning per command.

use serde::Serialize;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events waiting for delivery; more are dropped (with one warning) rather than waited for.
const QUEUE: usize = 64;
/// One POST, connecting included.
const POST_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts of one POST, and the pause before each retry.
const RETRIES: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(1)];
/// How long `--notify-cmd` may take with one event before it is killed.
const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the end of a command waits for the last events to go out.
const FLUSH: Duration = Duration::from_secs(5);
/// `--notify-every` when not given.
pub(crate) const DEFAULT_EVERY: Duration = Duration::from_secs(60);

/// What happened to the run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    Started,
    Progress,
    /// A throttle began holding the run (its reason as the progress line says it).
    Throttled {
        reason: String,
    },
    /// Sent by the operator's controls (pause, resume, cancel: `engine::control`).
    Paused,
    Resumed,
    Finished {
        outcome: String,
    },
    Failed {
        error: String,
    },
    Cancelled,
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Started => "started",
            Event::Progress => "progress",
            Event::Throttled { .. } => "throttled",
            Event::Paused => "paused",
            Event::Resumed => "resumed",
            Event::Finished { .. } => "finished",
            Event::Failed { .. } => "failed",
            Event::Cancelled => "cancelled",
        }
    }
}

/// Where events go.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    pub url: Option<String>,
    /// For messages: the endpoint without its path (a webhook's path is its secret).
    pub url_name: String,
    pub cmd: Option<String>,
    pub every: Option<Duration>,
}

/// The run the events are about, and where it stands.
#[derive(Debug, Clone, Default)]
struct Standing {
    version: i64,
    migration: String,
    action: String,
    run_id: String,
    rows: u64,
    batches: u64,
    rate: f64,
    eta: Option<Duration>,
    fraction: Option<f64>,
}

/// The JSON document of one event (README, "Events").
#[derive(Debug, Serialize)]
struct Document<'a> {
    event: &'static str,
    version: i64,
    migration: &'a str,
    action: &'a str,
    run_id: &'a str,
    host: &'a str,
    pid: u32,
    operator: &'a str,
    at: String,
    rows: u64,
    batches: u64,
    rows_per_second: f64,
    eta_seconds: Option<u64>,
    fraction_done: Option<f64>,
    reason: Option<&'a str>,
    outcome: Option<&'a str>,
    error: Option<&'a str>,
    text: String,
}

struct Inner {
    queue: Mutex<Option<SyncSender<String>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    standing: Mutex<Standing>,
    last_progress: Mutex<Instant>,
    every: Duration,
    operator: String,
    host: String,
    dropped: std::sync::atomic::AtomicBool,
}

/// The command's events: off (the default, every call a no-op), or a queue to the delivering thread.
/// Clones share it.
#[derive(Clone, Default)]
pub struct Events(Option<Arc<Inner>>);

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Events(on)"
        } else {
            "Events(off)"
        })
    }
}

impl Events {
    /// Starts delivering to `sinks`; off when there is nowhere to deliver.
    pub fn start(sinks: Sinks, operator: &str) -> Events {
        if sinks.url.is_none() && sinks.cmd.is_none() {
            return Events(None);
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let every = sinks.every.unwrap_or(DEFAULT_EVERY);
        let thread = std::thread::spawn(move || deliver(rx, &sinks));
        Events(Some(Arc::new(Inner {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            standing: Mutex::new(Standing::default()),
            last_progress: Mutex::new(Instant::now()),
            every,
            operator: operator.to_string(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            dropped: std::sync::atomic::AtomicBool::new(false),
        })))
    }

    /// The run that starts now: what every later event is about; sends `started`.
    pub(crate) fn begin(&self, version: i64, migration: &str, action: &str, run_id: &str) {
        let Some(inner) = &self.0 else { return };
        if let Ok(mut s) = inner.standing.lock() {
            *s = Standing {
                version,
                migration: migration.to_string(),
                action: action.to_string(),
                run_id: run_id.to_string(),
                ..Standing::default()
            };
        }
        if let Ok(mut last) = inner.last_progress.lock() {
            *last = Instant::now();
        }
        self.emit(Event::Started);
    }

    /// Where the run stands (after each batch); sends `progress` every `--notify-every`.
    pub(crate) fn progress(
        &self,
        (rows, batches, rate): (u64, u64, f64),
        eta: Option<Duration>,
        fraction: Option<f64>,
    ) {
        let Some(inner) = &self.0 else { return };
        if let Ok(mut s) = inner.standing.lock() {
            (s.rows, s.batches, s.rate, s.eta, s.fraction) = (rows, batches, rate, eta, fraction);
        }
        let due = inner.last_progress.lock().map(|mut last| {
            let due = last.elapsed() >= inner.every;
            if due {
                *last = Instant::now();
            }
            due
        });
        if due.unwrap_or(false) {
            self.emit(Event::Progress);
        }
    }

    /// The run ended well: `finished`, with what it did.
    pub(crate) fn finished(&self, done: &crate::engine::runner::Outcome) {
        let outcome = format!(
            "{} {} in {}",
            done.verb,
            crate::engine::text::count(done.rows, "row"),
            crate::engine::text::count(done.batches, "batch")
        );
        self.emit(Event::Finished { outcome });
    }

    /// Queues one event; never waits (a full queue drops it, with one warning).
    pub(crate) fn emit(&self, event: Event) {
        let Some(inner) = &self.0 else { return };
        let body = inner.document(&event);
        let Ok(queue) = inner.queue.lock() else {
            return;
        };
        let Some(tx) = queue.as_ref() else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(body) {
            if !inner
                .dropped
                .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                tracing::warn!(
                    "events are dropped: the event endpoint takes longer than the run makes them"
                );
            }
        }
    }
}

/// The command is over (its last clone of the events dropped): the queued events go out, for at most
/// a few seconds.
impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(queue) = self.queue.get_mut() {
            queue.take(); // the thread ends once the queue is empty
        }
        let thread = self.thread.get_mut().ok().and_then(Option::take);
        if let Some(thread) = thread {
            let deadline = Instant::now() + FLUSH;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

impl Inner {
    fn document(&self, event: &Event) -> String {
        let s = self.standing.lock().map(|s| s.clone()).unwrap_or_default();
        let (reason, outcome, error) = match event {
            Event::Throttled { reason } => (Some(reason.as_str()), None, None),
            Event::Finished { outcome } => (None, Some(outcome.as_str()), None),
            Event::Failed { error } => (None, None, Some(error.as_str())),
            _ => (None, None, None),
        };
        let doc = Document {
            event: event.name(),
            version: s.version,
            migration: &s.migration,
            action: &s.action,
            run_id: &s.run_id,
            host: &self.host,
            pid: std::process::id(),
            operator: &self.operator,
            at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            rows: s.rows,
            batches: s.batches,
            rows_per_second: (s.rate * 10.0).round() / 10.0,
            eta_seconds: s.eta.map(|d| d.as_secs()),
            fraction_done: s.fraction.map(|f| (f * 1000.0).round() / 1000.0),
            reason,
            outcome,
            error,
            text: text(event, &s, &self.host),
        };
        serde_json::to_string(&doc).unwrap_or_default()
    }
}

/// The one line a chat shows: `backfill apply V202611230001__competency_versions on web-1:
/// throttled (waiting: VACUUM running on competencies), 1,200 rows so far`.
fn text(event: &Event, s: &Standing, host: &str) -> String {
    let what = format!(
        "backfill {} V{}__{} on {host}",
        s.action, s.version, s.migration
    );
    let rows = crate::engine::text::count(s.rows, "row");
    match event {
        Event::Started => format!("{what}: started"),
        Event::Progress => {
            let done = s
                .fraction
                .map_or_else(String::new, |f| format!("{:.0}% of keys, ", f * 100.0));
            let eta = s
                .eta
                .map_or_else(String::new, |d| format!(", ETA {}s", d.as_secs()));
            format!("{what}: {done}{rows} so far, {:.0} rows/s{eta}", s.rate)
        }
        Event::Throttled { reason } => format!("{what}: throttled ({reason}), {rows} so far"),
        Event::Paused => format!("{what}: paused, {rows} so far"),
        Event::Resumed => format!("{what}: resumed"),
        Event::Finished { outcome } => format!("{what}: finished, {outcome}"),
        Event::Failed { error } => format!("{what}: failed after {rows}: {error}"),
        Event::Cancelled => format!("{what}: cancelled after {rows}; rerun to resume"),
    }
}

/// The delivering thread: each event to each sink, in order; one warning per sink that fails.
fn deliver(rx: Receiver<String>, sinks: &Sinks) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(POST_TIMEOUT))
        .build()
        .into();
    let (mut url_warned, mut cmd_warned) = (false, false);
    for body in rx {
        if let Some(url) = &sinks.url {
            if let Err(e) = post(&agent, url, &body) {
                if !std::mem::replace(&mut url_warned, true) {
                    let e = crate::db::url::redact(&e.replace(url.as_str(), &sinks.url_name));
                    tracing::warn!("--notify-url {} did not take an event ({e}); the run goes on, and later events are still sent", sinks.url_name);
                }
            }
        }
        if let Some(cmd) = &sinks.cmd {
            if let Err(e) = run_cmd(cmd, &body) {
                if !std::mem::replace(&mut cmd_warned, true) {
                    tracing::warn!("--notify-cmd failed with an event ({e}); the run goes on");
                }
            }
        }
    }
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> std::result::Result<(), String> {
    let mut last = String::new();
    for pause in std::iter::once(Duration::ZERO).chain(RETRIES) {
        std::thread::sleep(pause);
        match agent
            .post(url)
            .header("content-type", "application/json")
            .send(body)
        {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// `sh -c CMD` with the event on stdin; killed after [`CMD_TIMEOUT`].
fn run_cmd(cmd: &str, body: &str) -> std::result::Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let deadline = Instant::now() + CMD_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("it exited with {status}")),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it ran longer than {}s and was killed",
                    CMD_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_json_document_with_a_chat_line() {
        let events = Events::start(
            Sinks {
                cmd: Some("true".into()),
                ..Sinks::default()
            },
            "ops",
        );
        let inner = events.0.as_ref().expect("on");
        events.begin(7, "fill", "apply", "run-1");
        let doc: serde_json::Value = serde_json::from_str(&inner.document(&Event::Throttled {
            reason: "waiting: VACUUM running on t".into(),
        }))
        .expect("json");
        assert_eq!(doc["event"], "throttled");
        assert_eq!(doc["version"], 7);
        assert_eq!(doc["reason"], "waiting: VACUUM running on t");
        assert_eq!(doc["operator"], "ops");
        let text = doc["text"].as_str().expect("text");
        assert!(text.starts_with("backfill apply V7__fill on "), "{text}");
        assert!(
            text.ends_with(": throttled (waiting: VACUUM running on t), 0 rows so far"),
            "{text}"
        );
    }
}
