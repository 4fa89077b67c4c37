//! Metrics (issue 23): `--metrics-addr` scraped by a real Prometheus (Debian's `prometheus`, which
//! scripts/db-up.sh installs) started by the test on free ports in a temp dir, and queried through
//! its HTTP API.

mod common;
use common::{seed_generated, Kind, TestDb, V_COMPETENCY};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    common::closed_port()
}

/// A Prometheus of the test's own, scraping `target` every 200 ms; killed and removed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "bf_prometheus_{}_{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\nscrape_configs:\n  - job_name: backfill\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("config");
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus must be installed (scripts/db-up.sh installs it)");
        let p = Prometheus { child, port, dir };
        let deadline = Instant::now() + LONG;
        while get(&format!("http://127.0.0.1:{port}/-/ready")).is_none() {
            assert!(Instant::now() < deadline, "prometheus never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// An instant query's single value, if it has one.
    fn value(&self, query: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let body = ureq::get(&url)
            .query("query", query)
            .call()
            .ok()?
            .into_body()
            .read_to_string()
            .ok()?;
        let json: Json = serde_json::from_str(&body).ok()?;
        json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `query` returns `want` (Prometheus ingests each scrape at once).
    fn wait_for(&self, query: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.value(query);
            if got == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "{query}: {got:?}, want {want}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn get(url: &str) -> Option<String> {
    ureq::get(url)
        .call()
        .ok()?
        .into_body()
        .read_to_string()
        .ok()
}

#[test]
fn a_real_prometheus_scrapes_rows_written() {
    let t = TestDb::with_app(Kind::Postgres, "metrics_prom");
    seed_generated(&t, 200);
    let rows = t.expected_competencies().len() as f64;
    common::live::hold(&t);
    let addr = format!("127.0.0.1:{}", free_port());
    let prometheus = Prometheus::start(&addr);
    let mut live = common::live::held_apply(&t, &["--metrics-addr", &addr], "50");
    live.wait_for("waiting: --throttle-sql says wait", LONG);
    // Held: Prometheus sees the state, and the seconds held grow.
    prometheus.wait_for(r#"backfill_state{state="throttled"}"#, 1.0);
    let text = get(&format!("http://{addr}/metrics")).expect("GET /metrics");
    assert!(text.contains("# TYPE backfill_rows counter"), "{text}");
    assert!(
        text.contains("# TYPE backfill_batch_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(
        get(&format!("http://{addr}/other")),
        None,
        "only /metrics is served"
    );
    common::live::release(&t);
    live.finish(LONG).expect(0);
    assert_eq!(t.marked_competencies().len() as f64, rows);
    // The last figures were scraped before the command exited.
    let q =
        |m: &str| format!("max_over_time({m}{{action=\"apply\",version=\"{V_COMPETENCY}\"}}[5m])");
    prometheus.wait_for(&q("backfill_rows_total"), rows);
    prometheus.wait_for(
        r#"max_over_time(backfill_state{state="finished"}[5m])"#,
        1.0,
    );
    let batches = prometheus
        .value(&q("backfill_batches_total"))
        .expect("batches");
    let observed = prometheus
        .value(&q("backfill_batch_duration_seconds_count"))
        .expect("durations");
    assert!(
        batches > 0.0 && observed == batches,
        "{batches} batches, {observed} durations"
    );
    let held = prometheus
        .value(r#"max_over_time(backfill_throttled_seconds_total{reason="throttle_sql"}[5m])"#)
        .expect("throttled seconds");
    assert!(held > 0.0, "{held}");
}

#[test]
fn a_metrics_addr_that_cannot_listen_is_refused() {
    let t = TestDb::with_app(Kind::Sqlite, "metrics_busy");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let v = V_COMPETENCY.to_string();
    for bad in [addr.as_str(), "not-an-address"] {
        let run = t.run(&["apply", &v, "--metrics-addr", bad]);
        let line = run.one_line_error(2);
        assert!(
            line.contains("--metrics-addr") && line.contains("cannot listen"),
            "{line}"
        );
    }
    assert!(
        !t.has_table("backfill_migrations"),
        "a refused run created the ledger"
    );
}
