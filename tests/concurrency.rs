//! Racing runners and signals, with real processes.

mod common;
use common::topology::{assert_one_did_the_work, duplicate_versions, finish, race, spawn_runner};
use common::{seed_generated, signal, Kind, TestDb, V_COMPETENCY};
use std::collections::BTreeSet;
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
    t.create_ledger();
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

/// Returns once the runner has committed a batch: a loaded machine may take a while to start a run.
fn wait_for_a_batch(t: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.marked_competencies().is_empty() {
        assert!(Instant::now() < deadline, "no batch committed within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rows a stopped run left: some, not all.
fn stopped_mid_run(t: &TestDb, expected: &BTreeSet<(i64, i64)>) -> BTreeSet<(i64, i64)> {
    let written = t.marked_competencies();
    assert!(
        !written.is_empty() && written.len() < expected.len(),
        "stopped mid-run: {}",
        written.len()
    );
    written
}

/// First signal: finish and commit the batch, record `interrupted`, exit 128+signal; rerun resumes.
fn signal_stops_cleanly(kind: Kind, sig: &str, code: i32) {
    let t = TestDb::with_app(kind, &format!("signal_{sig}_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let child = spawn(&t, &["apply", "--batch-size", "10"], "40");
    wait_for_a_batch(&t);
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
    let written = stopped_mid_run(&t, &expected);
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
    // Into the batch after the first committed one (each batch holds its transaction 300 ms).
    wait_for_a_batch(&t);
    std::thread::sleep(Duration::from_millis(100));
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

/// Every key range a parallel run committed, from its debug log (`keys LO..=HI committed, N rows`).
fn committed_ranges(stderr: &str) -> Vec<(i64, i64, i64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split_once(": keys ")?.1;
            let (range, rest) = rest.split_once(" committed, ")?;
            let (lo, hi) = range.split_once("..=")?;
            let rows = rest.split_once(" rows")?.0;
            Some((lo.parse().ok()?, hi.parse().ok()?, rows.parse().ok()?))
        })
        .collect()
}

/// Four parallel runners (two jobs each) race with the lock off: fencing alone (the chunk row's owner
/// and cursor) must keep every committed key range to one worker of one run, and the rows exact.
fn four_parallel_runners_without_the_lock_share_no_key_range(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("race_jobs_nolock_{}", kind as u8));
    seed_generated(&t, 250);
    t.create_ledger();
    let expected = t.expected_competencies();
    let v = V_COMPETENCY.to_string();
    // Started 150 ms apart, so each later runner finds the migration running and takes over the
    // chunks of the one before, while that one's workers are mid-batch. Each batch lasts 60 ms or
    // more, so the run (50 batches on 2 workers) outlasts the four starts even on a loaded machine,
    // where a runner's start alone can take longer than 15 ms batches did in all.
    let children: Vec<Child> = (0..4)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(150));
            }
            spawn_runner(
                &t.url,
                &[
                    "apply",
                    &v,
                    "--jobs",
                    "2",
                    "--batch-size",
                    "5",
                    "--lock-timeout",
                    "60",
                ],
                &[
                    ("BACKFILL_TEST_NO_LOCK", "1"),
                    ("BACKFILL_TEST_BATCH_DELAY_MS", "60"),
                    ("RUST_LOG", "backfill=debug"),
                ],
            )
        })
        .collect();
    let runs: Vec<_> = children.into_iter().map(finish).collect();
    for r in &runs {
        assert!(
            r.code == 0 || r.code == 4,
            "a racing runner ends done or overtaken (exit 4):\n{}",
            r.stderr
        );
    }
    let per_run: Vec<(i32, usize)> = runs
        .iter()
        .map(|r| (r.code, committed_ranges(&r.stderr).len()))
        .collect();
    // Shown with --nocapture: (exit code, batches committed) per runner, how much they overlapped.
    println!("racing runners: {per_run:?}");
    assert!(
        per_run.iter().filter(|(_, batches)| *batches > 0).count() >= 2,
        "a later runner took chunks over from an earlier one: {per_run:?}"
    );
    let mut ranges: Vec<(i64, i64, i64)> = runs
        .iter()
        .flat_map(|r| committed_ranges(&r.stderr))
        .collect();
    assert!(
        !ranges.is_empty(),
        "the runners logged their committed ranges: {:#?}",
        runs.iter().map(|r| &r.stderr).collect::<Vec<_>>()
    );
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(
            w[0].1 < w[1].0,
            "key ranges {:?} and {:?} were both committed: a chunk was done twice",
            w[0],
            w[1]
        );
    }
    let logged: i64 = ranges.iter().map(|r| r.2).sum();
    assert_eq!(
        logged,
        expected.len() as i64,
        "rows of the committed batches"
    );
    assert_eq!(t.marked_competencies(), expected, "no duplicate, no gap");
    assert_eq!(duplicate_versions(&t), vec![]);
    // The last runner standing may have been overtaken itself: one more run finishes the migration.
    t.run(&["apply", &v, "--jobs", "2"]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(t.rows_applied(V_COMPETENCY), expected.len() as i64);
    let audited = t.int(&format!(
        "SELECT COALESCE(SUM(row_count), 0) FROM backfill_runs WHERE action = 'apply' AND version = {V_COMPETENCY}"
    ));
    assert_eq!(
        audited,
        expected.len() as i64,
        "each row counted by the run that wrote it"
    );
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_chunks"),
        0,
        "chunks folded"
    );
}

/// SIGTERM stops every worker of a parallel run after its batch: exit 143, the run recorded
/// interrupted with the rows it wrote, the chunks kept; a rerun with another --jobs finishes exactly.
fn sigterm_stops_a_parallel_run_cleanly(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("signal_jobs_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let child = spawn(&t, &["apply", "--jobs", "2", "--batch-size", "10"], "40");
    wait_for_a_batch(&t);
    signal(child.id(), "TERM");
    let out = finish(child);
    let line = out.one_line_error(143).to_string();
    assert!(line.contains("interrupted"), "{line}");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("failed"));
    let written = stopped_mid_run(&t, &expected);
    assert_eq!(
        t.int("SELECT row_count FROM backfill_runs WHERE state = 'interrupted'"),
        written.len() as i64,
        "the interrupted run's audit row counts its committed batches"
    );
    if kind != Kind::Sqlite {
        assert!(
            t.int("SELECT COUNT(*) FROM backfill_chunks") > 0,
            "chunks kept"
        );
    }
    let status = t.run(&["--format", "json", "status"]);
    status.expect(0);
    let rows = status.json()["migrations"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["version"].as_i64() == Some(V_COMPETENCY))
        })
        .and_then(|m| m["rows_applied"].as_i64());
    assert_eq!(
        rows,
        Some(written.len() as i64),
        "status counts the chunks' rows"
    );
    t.run(&["apply", "--jobs", "3", "--batch-size", "13"])
        .expect(0);
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.rows_applied(V_COMPETENCY), expected.len() as i64);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_chunks"),
        0,
        "chunks folded"
    );
}

mod parallel {
    mod postgres {
        #[test]
        fn four_parallel_runners_without_the_lock_share_no_key_range() {
            super::super::four_parallel_runners_without_the_lock_share_no_key_range(
                super::super::Kind::Postgres,
            )
        }
    }
    mod mariadb {
        #[test]
        fn four_parallel_runners_without_the_lock_share_no_key_range() {
            super::super::four_parallel_runners_without_the_lock_share_no_key_range(
                super::super::Kind::Mariadb,
            )
        }
    }
}

on_every_dialect!(
    four_runners_one_does_the_work,
    waiting_runner_times_out_with_exit_4,
    sigterm_stops_cleanly,
    sigint_stops_cleanly,
    second_signal_aborts,
    sigterm_stops_a_parallel_run_cleanly,
);
