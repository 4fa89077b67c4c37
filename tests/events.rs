//! Events (issue 23): a run's events reach a local HTTP server this test starts, and a shell command;
//! an endpoint that refuses or never answers costs one warning and no batch time.

mod common;
use common::live::Live;
use common::{seed_generated, Kind, TestDb, V_COMPETENCY};
use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(90);

/// A local HTTP server taking POSTs: each body parsed as JSON comes out of the receiver, with the
/// request line (method and path).
fn hook_server() -> (u16, Receiver<(String, Json)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let Some(request) = read_request(stream) else {
                continue;
            };
            if tx.send(request).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

fn read_request(mut stream: TcpStream) -> Option<(String, Json)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let json = serde_json::from_slice(&body).ok()?;
    Some((request_line.trim().to_string(), json))
}

/// Events until `last` arrives (failing the test after a while).
fn events_until(rx: &Receiver<(String, Json)>, last: &str) -> Vec<(String, Json)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + LONG;
    while Instant::now() < deadline {
        let Ok(event) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let done = event.1["event"] == last;
        got.push(event);
        if done {
            return got;
        }
    }
    panic!("no {last} event; got {got:?}");
}

fn names(events: &[(String, Json)]) -> Vec<String> {
    events
        .iter()
        .map(|(_, e)| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Started, throttled (with the throttle's reason), progress, finished: each a JSON POST with the
/// run's identity and a Slack `text`; the webhook's path never reaches the audit row.
fn events_reach_a_local_http_server(kind: Kind) {
    let t = TestDb::with_app(kind, "events_http");
    seed_generated(&t, 60);
    common::live::hold(&t);
    let (port, rx) = hook_server();
    let url = format!("http://127.0.0.1:{port}/hooks/T0/s3cr3tpath");
    let extra = ["--notify-url", url.as_str(), "--notify-every", "1"];
    let live = common::live::held_apply(&t, &extra, "150");
    let first = events_until(&rx, "throttled");
    assert_eq!(names(&first), ["started", "throttled"]);
    let (request, throttled) = &first[1];
    assert_eq!(request, "POST /hooks/T0/s3cr3tpath HTTP/1.1");
    assert_eq!(throttled["reason"], "waiting: --throttle-sql says wait");
    assert_eq!(throttled["version"], V_COMPETENCY);
    assert_eq!(throttled["action"], "apply");
    assert_eq!(throttled["migration"], "competency_versions");
    let text = throttled["text"].as_str().expect("a text field");
    assert!(
        text.contains("throttled (waiting: --throttle-sql says wait)"),
        "{text}"
    );
    common::live::release(&t);
    let rest = events_until(&rx, "finished");
    live.finish(LONG).expect(0);
    let rest_names = names(&rest);
    assert!(
        rest_names.contains(&"progress".to_string()),
        "{rest_names:?}"
    );
    let finished = &rest.last().expect("finished").1;
    let rows = t.marked_competencies().len() as u64;
    assert_eq!(finished["rows"], rows);
    assert_eq!(finished["run_id"], throttled["run_id"]);
    let outcome = finished["outcome"].as_str().expect("outcome");
    assert!(
        outcome.starts_with(&format!("wrote {rows} rows in ")),
        "{outcome}"
    );
    let arguments = t.text("SELECT arguments FROM backfill_runs WHERE action = 'apply'");
    let arguments = arguments.expect("arguments recorded");
    assert!(!arguments.contains("s3cr3tpath"), "{arguments}");
}

on_every_dialect!(events_reach_a_local_http_server);

#[test]
fn notify_cmd_gets_each_event_on_stdin() {
    let t = TestDb::with_app(Kind::Sqlite, "events_cmd");
    seed_generated(&t, 30);
    let dir = std::env::temp_dir().join(format!("bf_events_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("events.jsonl");
    let v = V_COMPETENCY.to_string();
    let cmd = format!("cat >> '{}'", file.display());
    t.run(&["apply", &v, "--notify-cmd", &cmd]).expect(0);
    let lines = std::fs::read_to_string(&file).expect("events written");
    let _ = std::fs::remove_dir_all(&dir);
    let events: Vec<Json> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per event"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["started", "finished"]);
}

#[test]
fn an_unreachable_endpoint_is_one_warning() {
    let t = TestDb::with_app(Kind::Sqlite, "events_refused");
    seed_generated(&t, 60);
    let want = t.expected_competencies();
    let url = format!(
        "http://127.0.0.1:{}/hooks/s3cr3tpath",
        common::closed_port()
    );
    let v = V_COMPETENCY.to_string();
    let run = t.run(&[
        "apply",
        &v,
        "--batch-size",
        "10",
        "--notify-url",
        &url,
        "--notify-every",
        "1",
    ]);
    run.expect(0);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("--notify-url"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(!run.stderr.contains("s3cr3tpath"), "{}", run.stderr);
    assert_eq!(t.marked_competencies(), want);
}

/// An endpoint that accepts and never answers: every POST waits out its timeout on the delivering
/// thread, while the batches go on back to back. Measured from the batches' own log timestamps: the
/// time between one batch's commit and the next one's start stays far below one POST's timeout.
#[test]
fn a_silent_endpoint_does_not_slow_batches() {
    let t = TestDb::with_app(Kind::Sqlite, "events_silent");
    seed_generated(&t, 200);
    let want = t.expected_competencies();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // never read, never answered
        }
    });
    let url = format!("http://127.0.0.1:{port}/hook");
    let v = V_COMPETENCY.to_string();
    let mut cmd = t.command(&[
        "--log-format",
        "json",
        "apply",
        &v,
        "--batch-size",
        "5",
        "--notify-url",
        &url,
        "--notify-every",
        "1",
    ]);
    cmd.env("RUST_LOG", "backfill=debug")
        .env("BACKFILL_TEST_BATCH_DELAY_MS", "40");
    let started = Instant::now();
    let run = Live::spawn(cmd).finish(LONG);
    let took = started.elapsed();
    run.expect(0);
    assert_eq!(t.marked_competencies(), want);
    let gaps = gaps_between_batches(&run.stderr);
    assert!(
        gaps.len() > 20,
        "too few batches to measure: {}",
        gaps.len()
    );
    let worst = gaps.iter().copied().fold(0.0f64, f64::max);
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "silent endpoint: {} gaps between batches, median {:.1} ms, worst {:.1} ms",
        gaps.len(),
        sorted[sorted.len() / 2] * 1000.0,
        worst * 1000.0
    );
    // A POST on the batch path would cost its 3 s timeout here.
    assert!(
        worst < 1.0,
        "a batch waited {worst:.3}s after the previous one: {gaps:?}"
    );
    // The end waits a bounded time (5 s) for the events still queued.
    let batches: f64 = batch_ms(&run.stderr).iter().sum::<f64>() / 1000.0;
    assert!(took.as_secs_f64() < batches + 15.0, "the run took {took:?}");
}

/// Each `batch N: … Xms` debug line: (its timestamp in seconds, the batch's own duration in seconds).
fn batch_lines(stderr: &str) -> Vec<(f64, f64)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter_map(|j| {
            let message = j["fields"]["message"].as_str()?.to_string();
            let rest = message.strip_prefix("batch ")?;
            let ms: f64 = rest.rsplit(", ").next()?.strip_suffix("ms")?.parse().ok()?;
            let at = chrono::DateTime::parse_from_rfc3339(j["timestamp"].as_str()?).ok()?;
            Some((at.timestamp_micros() as f64 / 1e6, ms / 1000.0))
        })
        .collect()
}

fn batch_ms(stderr: &str) -> Vec<f64> {
    batch_lines(stderr)
        .iter()
        .map(|(_, took)| took * 1000.0)
        .collect()
}

/// From one batch's commit to the next one's start: the next line's time less its batch's duration.
fn gaps_between_batches(stderr: &str) -> Vec<f64> {
    batch_lines(stderr)
        .windows(2)
        .map(|w| (w[1].0 - w[1].1) - w[0].0)
        .collect()
}

#[test]
fn a_notify_url_that_is_not_http_is_refused() {
    let t = TestDb::with_app(Kind::Sqlite, "events_badurl");
    let v = V_COMPETENCY.to_string();
    for bad in ["ftp://example.com/hook", "not a url", "http://"] {
        let run = t.run(&["apply", &v, "--notify-url", bad]);
        let line = run.one_line_error(2);
        assert!(
            line.contains("--notify-url takes an http:// or https:// URL"),
            "{line}"
        );
    }
    assert!(
        !t.has_table("backfill_migrations"),
        "a refused run created the ledger"
    );
}
