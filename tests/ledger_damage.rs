//! Hand-damaged ledgers and runs that end (issue 18, items 5–10): damage is exit 3 with its fix from
//! every command and from `verify`, never a busy lock or "rerun" forever; every run that ends says how.

mod common;

use common::{seed_generated, Kind, TestDb, V_COMPETENCY};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn v() -> String {
    V_COMPETENCY.to_string()
}

/// Every command that reads the ledger, as an operator or a deploy would run it.
fn every_command() -> Vec<Vec<String>> {
    [
        vec!["apply", "--lock-timeout", "1"],
        vec!["apply", &v(), "--lock-timeout", "1"],
        vec!["revert", &v(), "--lock-timeout", "1"],
        vec!["status"],
        vec!["plan", &v()],
        vec!["log"],
        vec!["repair", &v(), "--accept-checksum", "--lock-timeout", "1"],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect()
}

/// Runs every command: each exits 3 with one line holding `fix`; `verify` too, on stdout.
fn every_command_names(t: &TestDb, fix: &str) {
    for cmd in every_command() {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let run = t.run(&args);
        let line = run.one_line_error(3);
        assert!(line.contains(fix), "{}: {line}", cmd.join(" "));
    }
    let verify = t.run(&["verify"]);
    verify.expect(3);
    assert!(
        verify.stdout.contains(fix) || verify.stderr.contains(fix),
        "verify: {}{}",
        verify.stdout,
        verify.stderr
    );
}

/// The lease row deleted by hand: not "another runner holds the lock" (exit 4) forever, and not a
/// clean `verify`: exit 3 naming the row and the statement that restores it; then all runs again.
fn missing_lease_row_is_named(kind: Kind) {
    let t = seeded(kind, "lease", 40);
    t.run(&["apply", &v(), "--batch-size", "10"]).expect(0);
    t.exec("DELETE FROM backfill_lease");
    every_command_names(&t, "INSERT INTO backfill_lease (name) VALUES ('runner')");
    t.exec("INSERT INTO backfill_lease (name) VALUES ('runner')");
    t.run(&["verify"]).expect(0);
    t.run(&["revert", &v()]).expect(0);
    assert!(t.marked_competencies().is_empty());
}

/// The audit table dropped by hand: not exit 1 "rerun to resume" forever: exit 3 naming the table and
/// the statements that recreate it (empty); run as given, they restore a ledger that works again with
/// every other row kept.
fn missing_runs_table_is_named(kind: Kind) {
    let t = seeded(kind, "runs", 40);
    t.run(&["apply", &v(), "--batch-size", "10"]).expect(0);
    let marked = t.marked_competencies();
    t.exec("DROP TABLE backfill_runs");
    every_command_names(&t, "backfill_runs is missing");
    assert!(
        !t.has_table("backfill_runs"),
        "nothing recreated it unasked"
    );
    let line = t.run(&["status"]).one_line_error(3).to_string();
    let fix = line
        .split("recreate it empty: ")
        .nth(1)
        .expect("the statements that recreate it");
    assert!(
        fix.starts_with("CREATE TABLE IF NOT EXISTS backfill_runs"),
        "{line}"
    );
    for statement in fix.split(';').filter(|s| !s.trim().is_empty()) {
        t.exec(statement);
    }
    t.run(&["verify"]).expect(0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(t.marked_competencies(), marked);
    t.run(&["revert", &v()]).expect(0);
    assert!(t.marked_competencies().is_empty());
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'revert'"),
        1
    );
}

/// The undo journal dropped by hand: its statements include the column a later ledger version added.
fn missing_undo_table_is_recreated_whole(kind: Kind) {
    let t = seeded(kind, "undo", 10);
    t.create_ledger();
    t.exec("DROP TABLE backfill_undo");
    let line = t.run(&["verify"]);
    line.expect(3);
    let fix = line
        .stdout
        .split("recreate it empty: ")
        .nth(1)
        .and_then(|f| f.lines().next())
        .unwrap_or_default()
        .to_string();
    for statement in fix.split(';').filter(|s| !s.trim().is_empty()) {
        t.exec(statement);
    }
    t.run(&["verify"]).expect(0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_undo WHERE value_format = 'text'"),
        0
    );
}

/// Polls `done` until it holds; fails the test, naming `what`, after 60 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The binary running in the background, its stderr in a file that the test reads while it runs.
struct Logged {
    child: std::process::Child,
    log: PathBuf,
}

impl Logged {
    fn spawn(t: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Logged {
        let log =
            std::env::temp_dir().join(format!("bf-{}-{}.log", t.db_name(), std::process::id()));
        let file = std::fs::File::create(&log).expect("stderr file");
        let mut cmd = t.command(args);
        cmd.envs(env.iter().copied()).stderr(file);
        Logged {
            child: cmd.spawn().expect("spawn backfill"),
            log,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the exit: its code and all it wrote on stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("wait for backfill");
        let stderr = self.stderr();
        let _ = std::fs::remove_file(&self.log);
        (status.code(), stderr)
    }
}

/// A database of the app's for this test, with `n` generated competencies.
fn seeded(kind: Kind, test: &str, n: u64) -> TestDb {
    let t = TestDb::with_app(kind, &format!("damage_{test}_{}", kind as u8));
    seed_generated(&t, n);
    t
}

/// No run was passed off as a dead process: each recorded its own end.
fn none_abandoned(t: &TestDb) {
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE state = 'abandoned'"),
        0,
        "a run that said how it ended was passed off as a dead process"
    );
}

/// The audit rows of `action` that never recorded their end.
fn unfinished_runs(t: &TestDb, action: &str) -> i64 {
    t.int(&format!(
        "SELECT COUNT(*) FROM backfill_runs WHERE action = '{action}' AND (state = 'running' OR finished_at IS NULL)"
    ))
}

/// A plan that fails (here: a table of the migration renamed away) records `failed` and why in its
/// audit row before the process exits, instead of staying `running` forever.
fn failed_plan_records_why(kind: Kind) {
    let t = seeded(kind, "plan", 30);
    t.create_ledger();
    t.exec("ALTER TABLE capabilities RENAME TO capabilities_gone");
    let run = t.run(&["plan", &v()]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        unfinished_runs(&t, "plan"),
        0,
        "the failed plan still says running"
    );
    let error = t
        .text("SELECT error_message FROM backfill_runs WHERE action = 'plan' AND state = 'failed'")
        .unwrap_or_default();
    assert!(error.contains("capabilities"), "{error}");
    let log = t.run(&["log"]);
    log.expect(0);
    assert!(log.stdout.contains("failed"), "{}", log.stdout);
}

/// A runner whose start waits on the migration's row, held by a stalled runner's open batch, fails on
/// the database's lock wait (exit 1). It records its own end before exiting: the audit row says
/// `failed` and why; the next run does not take it for a process that died.
fn lock_wait_failure_is_recorded(kind: Kind) {
    let t = seeded(kind, "wait", 40);
    t.run(&["apply", &v()]).expect(0);
    let mut holder = t.session();
    holder.begin(false).expect("begin");
    holder
        .execute(
            &format!(
                "UPDATE backfill_migrations SET batches = batches WHERE version = {V_COMPETENCY}"
            ),
            &[],
        )
        .expect("hold the migration's row");
    let stalled = t.run(&["apply", &v(), "--lock-timeout", "2"]);
    holder.rollback().expect("release");
    stalled.one_line_error(1);
    assert_eq!(unfinished_runs(&t, "apply"), 0, "{}", stalled.stderr);
    let error = t
        .text("SELECT error_message FROM backfill_runs WHERE action = 'apply' AND state = 'failed'")
        .unwrap_or_default();
    assert!(error.contains("lock"), "{error}");
    t.run(&["apply", &v()]).expect(0);
    none_abandoned(&t);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    t.run(&["verify"]).expect(0);
}

/// `--lock-timeout 0` (give up at once on another runner's lock) must not become the database's lock
/// wait: the workers of `--jobs 4` wait on each other's chunk rows for the length of a batch.
fn lock_timeout_zero_with_jobs(kind: Kind) {
    let t = seeded(kind, "zero", 3000);
    let expected = t.expected_competencies();
    let jobs = ["--jobs", "4", "--batch-size", "40", "--lock-timeout", "0"];
    for _ in 0..2 {
        t.run(&[&["apply", &v()][..], &jobs].concat()).expect(0);
        assert_eq!(t.marked_competencies(), expected);
        t.run(&[&["revert", &v()][..], &jobs].concat()).expect(0);
        assert!(t.marked_competencies().is_empty());
    }
}

on_every_dialect!(
    missing_lease_row_is_named,
    missing_runs_table_is_named,
    missing_undo_table_is_recreated_whole,
    failed_plan_records_why,
    signal_while_waiting_claims_no_batch,
);

/// The runner's connection is killed mid-run (as when a pooler in front of the server dies) while the
/// database itself still answers: the run exits 1, and its audit row says `failed` and why, written
/// on a new connection; the next run resumes it without calling it a dead process.
fn lost_connection_is_recorded(kind: Kind) {
    let t = seeded(kind, "lost", 200);
    let expected = t.expected_competencies();
    let run = Logged::spawn(
        &t,
        &["apply", &v(), "--batch-size", "5", "--pause-ms", "300"],
        &[],
    );
    let batches = format!(
        "SELECT COALESCE(MAX(batches), 0) FROM backfill_migrations WHERE version = {V_COMPETENCY}"
    );
    wait_until("no batch committed", || {
        t.has_table("backfill_migrations") && t.int(&batches) >= 2
    });
    let others = match kind {
        Kind::Postgres => "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        _ => "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()",
    };
    for row in t.rows(others) {
        let id = row[0].as_i64().expect("a connection id");
        let kill = match kind {
            Kind::Postgres => format!("SELECT pg_terminate_backend({id})"),
            _ => format!("KILL CONNECTION {id}"),
        };
        let _ = t.session().execute(&kill, &[]);
    }
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(unfinished_runs(&t, "apply"), 0, "{stderr}");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("failed"));
    t.run(&["apply"]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
    none_abandoned(&t);
}

/// A user that may not read one of the migration's tables: `plan` exits 2 (a privilege to grant, as
/// the README says) and its audit row says `failed` and why.
fn plan_without_select(kind: Kind) {
    let t = seeded(kind, "nosel", 30);
    // A plan creates no ledger (issue 19): it records its audit row in the one a run made.
    t.create_ledger();
    let user = common::TestUser::owner(&t, "bf_damage_nosel", "s3cret-nosel");
    t.exec(&format!("REVOKE SELECT ON capabilities FROM {}", user.name));
    let url = user.url(&t);
    let line = common::run_url(&url, &["plan", &v()])
        .one_line_error_hiding(2, "s3cret-nosel")
        .to_string();
    assert!(line.contains("capabilities"), "{line}");
    assert_eq!(
        unfinished_runs(&t, "plan"),
        0,
        "the failed plan still says running"
    );
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'plan' AND state = 'failed'"),
        1
    );
}

/// Above i64::MAX: MariaDB's `BIGINT UNSIGNED` ids the app's schema uses.
const HUGE: &str = "9223372036854775900";

/// A competency keyed above i64::MAX: `apply` (single and `--jobs 2`) refuses with exit 2 before
/// writing anything, naming the key, where it used to write all but that row and say `applied`.
fn add_huge_competency(t: &TestDb) {
    t.exec(&format!(
        "INSERT INTO competencies (id, organization_id, name, status, created_at, updated_at) VALUES ({HUGE}, 1, 'huge id', 'active', '2026-01-15 10:00:00', '2026-01-15 10:00:00')"
    ));
    t.exec(&format!(
        "INSERT INTO capability_competencies (scenario_id, capability_id, competency_id, created_at, updated_at) SELECT c.discovered_in_scenario_id, c.id, {HUGE}, '2026-01-15 10:00:00', '2026-01-15 10:00:00' FROM capabilities c WHERE c.discovered_in_scenario_id IS NOT NULL ORDER BY c.id LIMIT 1"
    ));
}

fn remove_huge_competency(t: &TestDb) {
    t.exec(&format!(
        "DELETE FROM capability_competencies WHERE competency_id = {HUGE}"
    ));
    t.exec(&format!("DELETE FROM competencies WHERE id = {HUGE}"));
}

fn apply_refuses_keys_above_i64(t: &TestDb) {
    add_huge_competency(t);
    let before = common::dump_all(t);
    for jobs in ["1", "2"] {
        let line = t
            .run(&["apply", &v(), "--jobs", jobs])
            .one_line_error(2)
            .to_string();
        assert!(
            line.contains("competencies.id") && line.contains("9223372036854775807"),
            "{line}"
        );
        assert_eq!(
            common::dump_all(t),
            before,
            "--jobs {jobs}: a refusal wrote"
        );
    }
    t.exec(&format!(
        "DELETE FROM capability_competencies WHERE competency_id = {HUGE}"
    ));
    t.exec(&format!("DELETE FROM competencies WHERE id = {HUGE}"));
}

/// A competency keyed above i64::MAX added while `apply` runs (one job, then two): the run stops with
/// exit 2 naming the key, and never ends `applied` with that row skipped.
fn apply_stops_at_a_key_above_i64(t: &TestDb, jobs: &str) {
    let args = [
        "apply",
        &v(),
        "--jobs",
        jobs,
        "--batch-size",
        "5",
        "--pause-ms",
        "100",
    ];
    let run = Logged::spawn(t, &args, &[]);
    wait_until("the run wrote nothing", || {
        !t.marked_competencies().is_empty()
    });
    add_huge_competency(t);
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(2), "--jobs {jobs}: {stderr}");
    assert!(stderr.contains("competencies.id"), "{stderr}");
    assert_ne!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    remove_huge_competency(t);
}

/// A version row keyed above i64::MAX (the app's AUTO_INCREMENT went there) among the marked rows:
/// `revert` refuses with exit 2 and deletes nothing, where it used to skip that row and say done.
fn revert_refuses_keys_above_i64(t: &TestDb) {
    let marked = t.marked_competencies();
    let row = t.int(&format!(
        "SELECT MAX(id) FROM competency_versions WHERE {} = '{V_COMPETENCY}'",
        "JSON_UNQUOTE(JSON_EXTRACT(metadata, '$.migration'))"
    ));
    t.exec(&format!(
        "UPDATE competency_versions SET id = {HUGE} WHERE id = {row}"
    ));
    let line = t.run(&["revert", &v()]).one_line_error(2).to_string();
    assert!(line.contains("competency_versions.id"), "{line}");
    assert_eq!(
        t.marked_competencies(),
        marked,
        "a refused revert deleted rows"
    );
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
}

/// A parallel apply stops with its chunks left; one chunk row is then deleted. The next run must not
/// walk the others and say `applied` (the deleted keys never walked): exit 3 naming the keys and the
/// statement that puts them back, `verify` too; with the row back, the run finishes exactly.
fn deleted_chunk_is_named(kind: Kind) {
    let t = seeded(kind, "chunk", 400);
    let expected = t.expected_competencies();
    t.run_env(
        &["apply", &v(), "--jobs", "2", "--batch-size", "10"],
        &[("BACKFILL_TEST_FAIL_AT_BATCH", "6")],
    )
    .one_line_error(1);
    let chunks = format!(
        "SELECT lo_key, hi_key FROM backfill_chunks WHERE version = {V_COMPETENCY} AND action = 'apply' ORDER BY lo_key"
    );
    let left = t.rows(&chunks);
    assert!(
        left.len() >= 2,
        "the stopped run left {} chunk(s)",
        left.len()
    );
    let last = left.last().and_then(|r| r[0].as_i64()).expect("a chunk");
    t.exec(&format!(
        "DELETE FROM backfill_chunks WHERE version = {V_COMPETENCY} AND lo_key = {last}"
    ));
    let named = format!("do not cover keys {last} to {}", i64::MAX);
    for cmd in [
        vec!["apply"],
        vec!["apply", &v()],
        vec!["apply", &v(), "--jobs", "2"],
    ] {
        let line = t.run(&cmd).one_line_error(3).to_string();
        assert!(
            line.contains(&named) && line.contains("INSERT INTO backfill_chunks"),
            "{}: {line}",
            cmd.join(" ")
        );
    }
    let verify = t.run(&["verify"]);
    verify.expect(3);
    assert!(verify.stdout.contains(&named), "{}", verify.stdout);
    t.exec(&format!(
        "INSERT INTO backfill_chunks (version, action, lo_key, hi_key, cursor_key, state, owner_run, row_count, owner_rows, batches) VALUES ({V_COMPETENCY}, 'apply', {last}, {}, NULL, 'pending', 'restored', 0, 0, 0)",
        i64::MAX
    ));
    t.run(&["apply"]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    t.run(&["verify"]).expect(0);
}

/// `--replica-url` with a wrong password, then as a user that may not read replication status: exit 2
/// as for `--database-url`, one line, no password, nothing written.
fn replica_url_config_errors_exit_2(t: &TestDb) {
    common::seed_edge_cases(t);
    let user = common::TestUser::read_only(t, "bf_damage_repl", "s3cret-repl");
    let before = common::dump_all(t);
    let good = user.url(t);
    let wrong = good.replacen(":s3cret-repl@", ":not-s3cret-repl@", 1);
    for (url, needle) in [(&wrong, "Access denied"), (&good, "privilege")] {
        let args = [
            "apply",
            "--max-replica-lag",
            "5",
            "--replica-url",
            url.as_str(),
        ];
        let line = t
            .run(&args)
            .one_line_error_hiding(2, "s3cret-repl")
            .to_string();
        assert!(
            line.contains("--replica-url") && line.contains(needle),
            "{line}"
        );
        assert_eq!(common::dump_all(t), before, "a refused run wrote");
    }
}

/// `sample-data` as a role that may only read: exit 2 (a privilege to grant), one line, no password,
/// nothing created.
fn sample_data_read_only_exits_2(kind: Kind) {
    let t = TestDb::new(kind, &format!("damage_ro_{}", kind as u8));
    let user = common::TestUser::read_only(&t, "bf_damage_ro", "s3cret-ro");
    let line = common::run_url(&user.url(&t), &["sample-data", "--size", "10"])
        .one_line_error_hiding(2, "s3cret-ro")
        .to_string();
    assert!(
        line.contains("privilege") || line.contains("denied"),
        "{line}"
    );
    assert!(
        common::dump_all(&t).is_empty(),
        "a refused load created tables"
    );
}

/// A `revert --jobs 2` killed mid-way (its chunks left), then `apply V`: the counters say what is in
/// place, as after the same sequence on one job (it said APPLIED 2604 / REVERTED 850 for 1754 rows).
fn counters_after_killed_parallel_revert(kind: Kind) {
    let t = seeded(kind, "count", 400);
    t.run(&["apply", &v()]).expect(0);
    let killed = t.run_env(
        &["revert", &v(), "--jobs", "2", "--batch-size", "10"],
        &[("BACKFILL_TEST_ABORT_AT_BATCH", "6")],
    );
    assert_ne!(killed.code, 0, "{}", killed.stderr);
    assert!(
        t.int(&format!(
            "SELECT COUNT(*) FROM backfill_chunks WHERE version = {V_COMPETENCY}"
        )) > 0,
        "the killed revert left no chunks"
    );
    t.run(&["apply", &v()]).expect(0);
    let live = t.marked_competencies().len() as i64;
    let status = t.run(&["--format", "json", "status"]);
    status.expect(0);
    let line = status.json()["migrations"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["version"] == V_COMPETENCY).cloned())
        .expect("the migration in status");
    assert_eq!(
        (
            line["rows_applied"].as_i64(),
            line["rows_reverted"].as_i64()
        ),
        (Some(live), Some(0)),
        "{line}"
    );
}

/// SIGTERM while waiting for another runner's lock: no batch ran, so the line must not say that the
/// last batch was committed.
fn signal_while_waiting_claims_no_batch(kind: Kind) {
    let t = seeded(kind, "sigwait", 20);
    t.create_ledger();
    t.exec("UPDATE backfill_lease SET owner_id = 'another-runner', host = 'another-host', pid = 1, acquired_at = 0, heartbeat_at = 0, expires_at = 99999999999 WHERE name = 'runner'");
    let run = Logged::spawn(
        &t,
        &["apply", "--lock-timeout", "60"],
        &[("RUST_LOG", "info")],
    );
    wait_until("the runner never waited for the lock", || {
        run.stderr().contains("waiting up to")
    });
    common::signal(run.child.id(), "TERM");
    let (code, stderr) = run.finish();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(!stderr.contains("last batch was committed"), "{stderr}");
    assert!(
        t.marked_competencies().is_empty(),
        "it wrote without the lock"
    );
}

/// A `--jobs 2` runner overtaken by another (the lock switched off, so only fencing decides): its line
/// may name a rolled-back batch, never one its own debug log shows committed.
fn overtaken_parallel_run_names_no_committed_batch(kind: Kind) {
    let t = seeded(kind, "overtaken", 600);
    let expected = t.expected_competencies();
    let args = [
        "apply",
        &v(),
        "--jobs",
        "2",
        "--batch-size",
        "5",
        "--pause-ms",
        "100",
    ];
    let first = Logged::spawn(
        &t,
        &args,
        &[
            ("BACKFILL_TEST_NO_LOCK", "1"),
            ("RUST_LOG", "backfill=debug"),
        ],
    );
    let done = format!(
        "SELECT COALESCE(SUM(batches), 0) FROM backfill_chunks WHERE version = {V_COMPETENCY}"
    );
    wait_until("the first runner committed no batches", || {
        t.has_table("backfill_chunks") && t.int(&done) >= 4
    });
    t.run_env(
        &["apply", &v(), "--jobs", "2"],
        &[("BACKFILL_TEST_NO_LOCK", "1")],
    )
    .expect(0);
    let (code, stderr) = first.finish();
    assert_eq!(code, Some(4), "{stderr}");
    let committed: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("committed,"))
        .filter_map(|l| {
            l.split(" batch ")
                .nth(1)?
                .split(':')
                .next()
                .map(String::from)
        })
        .collect();
    assert!(
        !committed.is_empty(),
        "no committed batch in the debug log: {stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("an error line");
    if let Some(n) = line.split("rolled back its batch ").nth(1) {
        let n: String = n.chars().take_while(char::is_ascii_digit).collect();
        assert!(!committed.contains(&n), "batch {n} committed, yet: {line}");
    }
    assert_eq!(t.marked_competencies(), expected);
}

mod servers {
    use super::*;
    #[test]
    fn overtaken_parallel_run_names_no_committed_batch_postgres() {
        overtaken_parallel_run_names_no_committed_batch(Kind::Postgres)
    }
    #[test]
    fn counters_after_killed_parallel_revert_postgres() {
        counters_after_killed_parallel_revert(Kind::Postgres)
    }
    #[test]
    fn counters_after_killed_parallel_revert_mariadb() {
        counters_after_killed_parallel_revert(Kind::Mariadb)
    }
    #[test]
    fn sample_data_read_only_exits_2_postgres() {
        sample_data_read_only_exits_2(Kind::Postgres)
    }
    #[test]
    fn sample_data_read_only_exits_2_mariadb() {
        sample_data_read_only_exits_2(Kind::Mariadb)
    }
    #[test]
    fn replica_url_config_errors_exit_2_mariadb() {
        // PostgreSQL here trusts every password: MariaDB checks it.
        let t = TestDb::with_app(Kind::Mariadb, "damage_repl");
        replica_url_config_errors_exit_2(&t);
    }
    #[test]
    fn deleted_chunk_is_named_postgres() {
        deleted_chunk_is_named(Kind::Postgres)
    }
    #[test]
    fn deleted_chunk_is_named_mariadb() {
        deleted_chunk_is_named(Kind::Mariadb)
    }

    /// Only MariaDB/MySQL have unsigned 64-bit keys.
    #[test]
    fn keys_above_i64_are_refused_mariadb() {
        let t = TestDb::with_app(Kind::Mariadb, "damage_huge");
        seed_generated(&t, 30);
        let expected = t.expected_competencies();
        apply_refuses_keys_above_i64(&t);
        t.run(&["apply", &v()]).expect(0);
        assert_eq!(t.marked_competencies(), expected);
        revert_refuses_keys_above_i64(&t);
    }
    #[test]
    fn keys_above_i64_added_mid_run_mariadb() {
        let t = seeded(Kind::Mariadb, "hugemid", 300);
        let expected = t.expected_competencies();
        for jobs in ["1", "2"] {
            apply_stops_at_a_key_above_i64(&t, jobs);
            t.run(&["apply", &v()]).expect(0);
            assert_eq!(t.marked_competencies(), expected, "--jobs {jobs}");
            t.run(&["revert", &v()]).expect(0);
        }
    }
    #[test]
    fn plan_without_select_postgres() {
        // MariaDB cannot revoke one table from a database-wide grant.
        plan_without_select(Kind::Postgres)
    }
    #[test]
    fn lock_wait_failure_is_recorded_mariadb() {
        // PostgreSQL skips a row whose visible version the ending does not match, so only InnoDB
        // made the failed run's ending wait behind the held row.
        lock_wait_failure_is_recorded(Kind::Mariadb)
    }
    #[test]
    fn lock_timeout_zero_with_jobs_postgres() {
        // MariaDB's row-lock wait cannot go below 1 s, which covered the workers' waits there.
        lock_timeout_zero_with_jobs(Kind::Postgres)
    }
    #[test]
    fn lost_connection_is_recorded_postgres() {
        lost_connection_is_recorded(Kind::Postgres)
    }
    #[test]
    fn lost_connection_is_recorded_mariadb() {
        lost_connection_is_recorded(Kind::Mariadb)
    }
}
