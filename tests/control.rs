//! Steering a running backfill through the ledger (issue 23): pause, resume, set and cancel from a
//! second process against a running `apply --jobs 2`, on every dialect and through PgBouncer in
//! transaction pooling; kill -9 while paused, then resume exact; windows, `--limit` and `wait`.
//! A run lasts long enough to steer through small batches and `--pause-ms`; every wait polls the
//! ledger (or `status`) for the state it waits for.

mod common;
use common::topology::{wait_for, PgBouncer};
use common::{run_url, seed_generated, Kind, Run, TestDb, V_COMPETENCY};
use std::process::{Child, Stdio};
use std::time::Duration;

const V: &str = "202611230001";
const LIMIT: Duration = Duration::from_secs(60);

/// `apply V` with `args`, in the background against `url`, its logs at debug level.
fn spawn_apply(url: &str, args: &[&str]) -> Child {
    common::bin()
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "backfill=debug")
        .args(["apply", V])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apply")
}

/// `status --format json`'s entry for V.
fn status_of(url: &str) -> serde_json::Value {
    let run = run_url(url, &["status", "--format", "json"]);
    run.expect(0);
    run.json()["migrations"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["version"] == V_COMPETENCY).cloned())
        .unwrap_or_default()
}

/// Polls `status` until V's live state is `state`; returns that status.
fn until_live(url: &str, state: &str) -> serde_json::Value {
    let last = std::cell::RefCell::new(serde_json::Value::Null);
    wait_for(
        &format!("live state {state}"),
        LIMIT,
        || {
            *last.borrow_mut() = status_of(url);
            last.borrow()["live"]["live_state"] == state
        },
        || format!("{:#}", last.borrow()),
    );
    last.into_inner()
}

/// Rows the migration wrote so far, counted by their marks in the app's table.
fn written(t: &TestDb) -> usize {
    t.marked_competencies().len()
}

/// Open transactions of this test's database (none while paused: no transaction, no row lock).
fn open_transactions(t: &TestDb) -> i64 {
    match t.kind {
        Kind::Postgres => t.int(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
        ),
        Kind::Mariadb => t.int(
            "SELECT COUNT(*) FROM information_schema.innodb_trx x JOIN information_schema.processlist p \
             ON p.id = x.trx_mysql_thread_id WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID()",
        ),
        Kind::Sqlite => 0,
    }
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("apply ends"))
}

/// `set --jobs N` on a running parallel apply: polls until `status` shows N workers, then until
/// they have written a few more rows.
fn set_jobs(t: &TestDb, url: &str, jobs: u64) {
    run_url(url, &["set", V, "--jobs", &jobs.to_string()]).expect(0);
    let workers = || status_of(url)["live"]["workers"] == jobs;
    wait_for(&format!("{jobs} workers"), LIMIT, workers, String::new);
    let at = written(t);
    let more = || written(t) >= at + 3 * jobs as usize;
    wait_for(
        &format!("batches with {jobs} workers"),
        LIMIT,
        more,
        String::new,
    );
}

/// `pause`: the run stops between batches, writes nothing, holds no transaction, keeps its lease.
fn pause_holds_nothing(t: &TestDb, url: &str) {
    run_url(url, &["pause", V]).expect(0);
    let paused = until_live(url, "paused");
    assert_eq!(paused["state"], "paused", "status shows it paused");
    assert_eq!(paused["live"]["requested_by"], "tester");
    let before = written(t);
    let reported = |s: &serde_json::Value| {
        s["live"]["running_seconds"].as_i64().unwrap_or(0)
            - s["live"]["reported_seconds_ago"].as_i64().unwrap_or(0)
    };
    let first = reported(&paused);
    // Two reports later, still paused: nothing written meanwhile, no transaction open, lease kept.
    wait_for(
        "two reports while paused",
        LIMIT,
        || reported(&status_of(url)) >= first + 4,
        String::new,
    );
    assert_eq!(written(t), before, "a paused run writes nothing");
    assert_eq!(open_transactions(t), 0, "a paused run holds no transaction");
    assert!(
        t.text("SELECT owner_id FROM backfill_lease").is_some(),
        "it keeps its lease"
    );
}

/// `set` while paused, `resume`, and (parallel) `set --jobs` up and down.
fn retune(t: &TestDb, url: &str, parallel: bool) {
    let set = run_url(url, &["set", V, "--batch-size", "3", "--pause-ms", "250"]);
    set.expect(0);
    assert!(
        set.stdout.contains("batch_size as started → 3"),
        "{}",
        set.stdout
    );
    run_url(url, &["resume", V]).expect(0);
    until_live(url, "running");
    let resumed_at = written(t);
    wait_for(
        "batches after the resume",
        LIMIT,
        || written(t) >= resumed_at + 6,
        String::new,
    );
    if parallel {
        // A third worker, then back to one: the others take the retired workers' chunks.
        set_jobs(t, url, 3);
        set_jobs(t, url, 1);
    } else {
        let refused = run_url(url, &["set", V, "--jobs", "3"]);
        assert!(
            refused.one_line_error(2).contains("runs as one job"),
            "{}",
            refused.stderr
        );
    }
}

/// `cancel`: the runner exits 6 at its next checkpoint, having run the retuned batches.
fn cancel(url: &str, child: Child, parallel: bool) {
    run_url(url, &["cancel", V]).expect(0);
    let out = finish(child);
    let line = out.stderr.lines().last().unwrap_or_default().to_string();
    out.expect(6);
    assert!(line.contains("cancelled by tester"), "{line}");
    let asked = if parallel {
        " 3 keys asked"
    } else {
        ": 3 keys, "
    };
    assert!(
        out.stderr.contains(asked),
        "the set batch size ran:\n{}",
        out.stderr
    );
    if parallel {
        assert!(
            out.stderr.contains("DEBUG worker 2 chunk"),
            "a third worker wrote:\n{}",
            out.stderr
        );
        assert_eq!(
            out.stderr.matches(" retired, chunk ").count(),
            2,
            "{}",
            out.stderr
        );
    }
}

/// The whole steering story against one running `apply --jobs 2`, commands sent through `url`.
fn steer_story(t: &TestDb, url: &str) {
    let expected = t.expected_competencies();
    let child = spawn_apply(
        url,
        &["--jobs", "2", "--batch-size", "2", "--pause-ms", "150"],
    );
    let parallel = t.kind != Kind::Sqlite;
    let live = until_live(url, "running");
    assert_eq!(
        live["live"]["workers"].as_u64().is_some(),
        parallel,
        "{live:#}"
    );

    pause_holds_nothing(t, url);
    retune(t, url, parallel);
    cancel(url, child, parallel);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("cancelled"));
    let audit = t.int(&format!(
        "SELECT COUNT(*) FROM backfill_runs WHERE version = {V} AND operator_name = 'tester' \
         AND action IN ('pause', 'resume', 'set', 'cancel')"
    ));
    assert_eq!(
        audit,
        if parallel { 6 } else { 4 },
        "each command is an audit row"
    );
    assert_eq!(
        t.text(&format!(
            "SELECT state FROM backfill_runs WHERE version = {V} AND action = 'apply'"
        ))
        .as_deref(),
        Some("cancelled")
    );
    let again = run_url(url, &["pause", V]);
    assert!(again
        .one_line_error(2)
        .contains("is not running (it is cancelled)"));

    // A deploy leaves a cancelled migration alone; the operator's apply resumes it, exactly.
    run_url(url, &["apply", "--to", V]).expect(0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("cancelled"));
    run_url(url, &["apply", V]).expect(0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(
        t.marked_competencies(),
        expected,
        "exact after pause, set, cancel, resume"
    );
}

fn steer_a_parallel_apply(kind: Kind) {
    let t = TestDb::with_app(kind, "steer");
    seed_generated(&t, 300);
    steer_story(&t, &t.url);
}

/// kill -9 while paused: the next apply resumes from the last checkpoint, row-exact; the dead run's
/// control row steers nothing.
fn kill_while_paused(kind: Kind) {
    let t = TestDb::with_app(kind, "killpaused");
    seed_generated(&t, 200);
    let expected = t.expected_competencies();
    let mut child = spawn_apply(
        &t.url,
        &["--jobs", "2", "--batch-size", "3", "--pause-ms", "100"],
    );
    until_live(&t.url, "running");
    t.run(&["pause", V]).expect(0);
    until_live(&t.url, "paused");
    child.kill().expect("kill -9");
    let _ = child.wait();
    let gone = t.run(&["resume", V]);
    assert!(
        gone.one_line_error(2).contains("its runner is gone"),
        "{}",
        gone.stderr
    );
    t.run(&["apply", V]).expect(0);
    assert_eq!(
        t.marked_competencies(),
        expected,
        "exact after kill -9 while paused"
    );
}

/// `--limit N` writes about N rows and stops with exit 6; the next apply goes on from there.
fn limit_is_a_canary(kind: Kind) {
    let t = TestDb::with_app(kind, "limit");
    seed_generated(&t, 120);
    let expected = t.expected_competencies();
    let canary = t.run(&["apply", V, "--limit", "10", "--batch-size", "4"]);
    let line = canary.one_line_error(6).to_string();
    assert!(line.contains("--limit 10 reached"), "{line}");
    let n = written(&t);
    assert!((10..=12).contains(&n), "about 10 rows, wrote {n}");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("halted"));
    // A deploy's apply goes on from a halted migration.
    t.run(&["apply", "--to", V]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
}

fn wait_is_a_deploy_gate(kind: Kind) {
    let t = TestDb::with_app(kind, "wait");
    seed_generated(&t, 150);
    let timed_out = t.run(&["wait", V, "--timeout", "1"]);
    assert!(
        timed_out.one_line_error(4).contains("still not started"),
        "{}",
        timed_out.stderr
    );
    let child = spawn_apply(&t.url, &["--batch-size", "5", "--pause-ms", "50"]);
    let waited = t.run(&["wait", V, "--timeout", "120"]);
    waited.expect(0);
    assert!(waited.stdout.contains("is applied"), "{}", waited.stdout);
    finish(child).expect(0);
    t.run(&["revert", V]).expect(0);
    let reverted = t.run(&["wait", V, "--timeout", "120"]);
    assert!(
        reverted.one_line_error(1).contains("is reverted"),
        "{}",
        reverted.stderr
    );
    // Waiting while it runs, then an operator cancels it: exit 1 once the runner has stopped.
    let child = spawn_apply(&t.url, &["--batch-size", "2", "--pause-ms", "200"]);
    until_live(&t.url, "running");
    let waiter = common::bin()
        .env("DATABASE_URL", &t.url)
        .args(["wait", V, "--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wait");
    t.run(&["cancel", V]).expect(0);
    finish(child).expect(6);
    let waited = finish(waiter);
    assert!(
        waited.one_line_error(1).contains("is cancelled"),
        "{}",
        waited.stderr
    );
}

/// A window that closes mid-run stops the run at a checkpoint with exit 6; with
/// `--wait-for-window` it waits (throttled, in `status`) instead.
fn window_closes_mid_run(kind: Kind) {
    let t = TestDb::with_app(kind, "window");
    seed_generated(&t, 200);
    let now = chrono::Utc::now();
    // Open now, closing at the next whole minute: the run cannot finish before it closes.
    let close = now + chrono::Duration::seconds(60 - i64::from(chrono::Timelike::second(&now)));
    let close = chrono::Timelike::with_nanosecond(&close, 0).unwrap_or(close);
    let spec = format!(
        "{}-{} UTC",
        (now - chrono::Duration::minutes(1)).format("%H:%M"),
        close.format("%H:%M")
    );
    let out = t.run(&[
        "apply",
        V,
        "--quiet",
        "--window",
        &spec,
        "--batch-size",
        "1",
        "--pause-ms",
        "400",
    ]);
    let line = out.one_line_error(6).to_string();
    assert!(line.contains("outside --window"), "{line}");
    assert!(
        chrono::Utc::now() >= close,
        "stopped when the window closed: {line}"
    );
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("halted"));
    let closed = format!(
        "{}-{} UTC",
        (close + chrono::Duration::hours(2)).format("%H:%M"),
        (close + chrono::Duration::hours(3)).format("%H:%M")
    );
    let child = spawn_apply(&t.url, &["--window", &closed, "--wait-for-window"]);
    let held = until_live(&t.url, "throttled");
    assert!(
        held["live"]["throttle_reason"]
            .as_str()
            .unwrap_or("")
            .contains("outside --window"),
        "{held:#}"
    );
    t.run(&["cancel", V]).expect(0);
    finish(child).expect(6);
}

/// With a reviewed plan (`--expect-plan`), the live row counts against the plan's total and the
/// ETA is measured in rows to write; without one it stays the key fraction (the other tests).
fn eta_counts_planned_rows(kind: Kind) {
    let t = TestDb::with_app(kind, "eta_plan");
    seed_generated(&t, 150);
    let dir = common::topology::TempDir::new("eta_plan");
    let plan = dir.0.join("plan.json");
    let plan_arg = plan.to_string_lossy().into_owned();
    t.run(&["plan", V, "--out", &plan_arg]).expect(0);
    let planned = t.expected_competencies().len() as u64;
    let child = spawn_apply(
        &t.url,
        &[
            "--expect-plan",
            &plan_arg,
            "--batch-size",
            "2",
            "--pause-ms",
            "150",
        ],
    );
    let last = std::cell::RefCell::new(serde_json::Value::Null);
    wait_for(
        "an ETA against the plan",
        LIMIT,
        || {
            *last.borrow_mut() = status_of(&t.url);
            last.borrow()["live"]["eta_seconds"].as_u64().is_some()
        },
        || format!("{:#}", last.borrow()),
    );
    let live = last.into_inner();
    assert_eq!(
        live["live"]["rows_total"].as_u64(),
        Some(planned),
        "{live:#}"
    );
    let text = t.run(&["status"]);
    let shown = format!("/{planned} planned rows");
    assert!(text.stdout.contains(&shown), "{}", text.stdout);
    t.run(&["cancel", V]).expect(0);
    finish(child).expect(6);
}

on_every_dialect!(
    eta_counts_planned_rows,
    steer_a_parallel_apply,
    kill_while_paused,
    limit_is_a_canary,
    wait_is_a_deploy_gate,
    window_closes_mid_run
);

/// The same story through PgBouncer in transaction pooling: the runner's reads and the operator's
/// commands hold no session state, so any pooled connection serves them.
#[test]
fn steer_through_pgbouncer() {
    let bouncer = PgBouncer::start();
    let t = TestDb::with_app(Kind::Postgres, "steer_pgb");
    seed_generated(&t, 300);
    steer_story(&t, &bouncer.url(t.db_name()));
}
