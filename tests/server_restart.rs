//! The database server restarts mid-run: `backfill` exits 1 with one clear line, the next run resumes
//! and finishes exactly. Each test restarts a throwaway server of its own (tests/common/topology.rs),
//! never the shared ones other suites and benchmarks are connected to.

mod common;
use common::topology::{MariaServer, PgServer};
use common::{seed_generated, Run, TestDb, V_COMPETENCY};
use std::process::Stdio;
use std::time::{Duration, Instant};

const DB: &str = "bf_restart";

/// Loads the app's tables and generated data into `url`, runs `apply` slowly, calls `restart` once
/// the run has committed a batch, then checks the cut and the exact resume.
fn restart_mid_run(url: &str, restart: impl FnOnce()) {
    let t = TestDb::wrap_for_seeding(url);
    backfill::fixtures::load_schema(t.session().as_mut()).expect("load app schema");
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    t.create_ledger();
    let mut cmd = t.command(&["apply", "--batch-size", "10"]);
    cmd.env("BACKFILL_TEST_BATCH_DELAY_MS", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Restarted once a batch is committed, so the rerun has a checkpoint to resume from.
    while t.marked_competencies().is_empty() {
        assert!(Instant::now() < deadline, "the run never wrote a batch");
        std::thread::sleep(Duration::from_millis(20));
    }
    restart();
    let out = Run::from(child.wait_with_output().expect("wait"));
    let line = out.one_line_error(1).to_string();
    assert!(
        line.contains("connection") || line.contains("terminat"),
        "a clear connection error: {line}"
    );
    assert!(line.contains("rerun"), "{line}");
    let written = t.marked_competencies();
    assert!(
        written.len() < expected.len(),
        "the restart must have cut the run"
    );
    let again = t.run(&["apply"]);
    again.expect(0);
    assert!(again.stdout.contains("resumed"), "{}", again.stdout);
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    let audited = t.int(&format!(
        "SELECT SUM(row_count) FROM backfill_runs WHERE action = 'apply' AND version = {V_COMPETENCY}"
    ));
    assert_eq!(audited, t.rows_applied(V_COMPETENCY));
}

#[test]
fn postgres_restart_mid_run() {
    let server = PgServer::start();
    server.create_database(DB);
    restart_mid_run(&server.url(DB), || server.restart());
}

#[test]
fn mariadb_restart_mid_run() {
    let mut server = MariaServer::start();
    server.create_database(DB);
    let url = server.url(DB);
    restart_mid_run(&url, || server.restart());
}
