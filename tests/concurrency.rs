//! Racing runners and signals, with real processes.

mod common;
use common::topology::{assert_one_did_the_work, finish, race, spawn_runner};
use common::{seed_generated, signal, Kind, TestDb, V_COMPETENCY};
use std::process::Child;
use std::time::{Duration, Instant};

fn spawn(t: &TestDb, args: &[&str], delay_ms: &str) -> Child {
    spawn_runner(&t.url, args, &[("BACKFILL_TEST_BATCH_DELAY_MS", delay_ms)])
}

fn four_runners_one_does_the_work(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("race_four_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let runs = race(
        &vec![t.url.clone(); 4],
        &["apply", "--batch-size", "10", "--lock-timeout", "60"],
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "15")],
    );
    assert_one_did_the_work(&runs);
    assert_eq!(t.marked_competencies(), expected, "no duplicate, no gap");
    let apply_runs = t.int(&format!(
        "SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply' AND version = {V_COMPETENCY}"
    ));
    assert_eq!(apply_runs, 1);
}

fn waiting_runner_times_out_with_exit_4(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("race_timeout_{}", kind as u8));
    seed_generated(&t, 250);
    t.run(&["status"]).expect(0);
    let expected = t.expected_competencies();
    let first = spawn(&t, &["apply", "--batch-size", "10"], "80");
    // Wait until the first runner holds the lock (its migration is running).
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.state(V_COMPETENCY).as_deref() != Some("running") {
        assert!(Instant::now() < deadline, "the first runner never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let second = t.run(&["apply", "--lock-timeout", "1"]);
    let line = second.one_line_error(4).to_string();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(8),
        "waited {waited:?}"
    );
    assert!(
        line.contains("held by"),
        "the message names the holder: {line}"
    );
    finish(first).expect(0);
    assert_eq!(t.marked_competencies(), expected);
}

/// First signal: finish and commit the batch, record `interrupted`, exit 128+signal; rerun resumes.
fn signal_stops_cleanly(kind: Kind, sig: &str, code: i32) {
    let t = TestDb::with_app(kind, &format!("signal_{sig}_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let child = spawn(&t, &["apply", "--batch-size", "10"], "40");
    // Signal once a batch has committed (a loaded machine may take a while to start the run).
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.marked_competencies().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(child.id(), sig);
    let out = finish(child);
    let line = out.one_line_error(code).to_string();
    assert!(
        line.contains("interrupted") && line.contains("resume"),
        "{line}"
    );
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("failed"));
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE state = 'interrupted'"),
        1
    );
    let written = t.marked_competencies();
    assert!(
        !written.is_empty() && written.len() < expected.len(),
        "stopped mid-run: {}",
        written.len()
    );
    assert_eq!(
        t.rows_applied(V_COMPETENCY),
        written.len() as i64,
        "the last batch committed with its checkpoint"
    );
    t.run(&["apply", "--batch-size", "13"]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
}

fn sigterm_stops_cleanly(kind: Kind) {
    signal_stops_cleanly(kind, "TERM", 143);
}

fn sigint_stops_cleanly(kind: Kind) {
    signal_stops_cleanly(kind, "INT", 130);
}

/// A second signal aborts at once: the open batch is rolled back, the checkpoint still matches.
fn second_signal_aborts(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("signal_twice_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let child = spawn(&t, &["apply", "--batch-size", "10"], "300");
    std::thread::sleep(Duration::from_millis(800));
    signal(child.id(), "TERM");
    std::thread::sleep(Duration::from_millis(50));
    signal(child.id(), "TERM");
    let started = Instant::now();
    let out = finish(child);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "the second signal must not wait for the batch"
    );
    let written = t.marked_competencies().len() as i64;
    assert_eq!(
        t.rows_applied(V_COMPETENCY),
        written,
        "no half-written batch"
    );
    t.run(&["apply"]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
}

on_every_dialect!(
    four_runners_one_does_the_work,
    waiting_runner_times_out_with_exit_4,
    sigterm_stops_cleanly,
    sigint_stops_cleanly,
    second_signal_aborts,
);
