//! The framework core on every dialect: ledger, ordering, idempotence, drift, locking, failure and
//! resume, revert, and connection errors. Every test drives the real binary against a real database.

mod common;
use common::{seed_edge_cases, seed_generated, Kind, TestDb, V_COMPETENCY, V_ROLE};

fn name(kind: Kind, test: &str) -> String {
    format!("fw_{test}_{}", kind as u8)
}

fn ledger_created_from_nothing(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "ledger"));
    let run = t.run(&["--format", "json", "status"]);
    run.expect(0);
    let doc = run.json();
    let states: Vec<&str> = doc["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), backfill::registry::all().len());
    assert!(states.iter().all(|s| *s == "pending"), "{states:?}");
    // A look creates no ledger (issue 19); the first write does, at the schema version this binary
    // knows.
    assert!(
        t.session()
            .query_scalar("SELECT COUNT(*) FROM backfill_schema_history", &[])
            .is_err(),
        "status created a ledger"
    );
    t.create_ledger();
    assert_eq!(t.int("SELECT COUNT(*) FROM backfill_migrations"), 0);
    let schema = t.int("SELECT MAX(version) FROM backfill_schema_history");
    assert!(schema >= 2, "ledger schema V{schema}");
    let history = t.int("SELECT COUNT(*) FROM backfill_schema_history");
    // Running again finds the ledger in place.
    t.run(&["plan"]).expect(0);
    t.run(&["status"]).expect(0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_schema_history"),
        history
    );
}

fn applies_in_version_order_then_noop(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "order"));
    seed_edge_cases(&t);
    let out = t.run(&["apply"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("V202611230001__competency_versions: applied"),
        "{}",
        out.stdout
    );
    let order = t.rows(
        "SELECT version FROM backfill_runs WHERE action = 'apply' ORDER BY started_at, run_id",
    );
    let order: Vec<i64> = order.iter().map(|r| r[0].as_i64().unwrap()).collect();
    let registered: Vec<i64> = backfill::registry::all()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(
        order, registered,
        "every registered migration, in version order"
    );
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(t.state(V_ROLE).as_deref(), Some("applied"));
    let before = t.int("SELECT COUNT(*) FROM competency_versions");
    let again = t.run(&["apply"]);
    again.expect(0);
    assert!(
        again.stdout.contains("nothing to apply"),
        "{}",
        again.stdout
    );
    assert_eq!(t.int("SELECT COUNT(*) FROM competency_versions"), before);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply'"),
        registered.len() as i64,
        "the second apply ran nothing"
    );
    let doc = t.run(&["--format", "json", "status"]).json();
    for m in doc["migrations"].as_array().unwrap() {
        assert_eq!(m["state"], "applied");
        assert_eq!(m["checksum_ok"], true);
    }
    let rows = |v: i64| {
        doc["migrations"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["version"] == v))
            .map(|m| m["rows_applied"].clone())
    };
    assert_eq!(rows(V_COMPETENCY), Some(3.into()));
    assert_eq!(rows(V_ROLE), Some(1.into()));
}

fn checksum_drift_blocks_until_repair(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "drift"));
    seed_edge_cases(&t);
    t.run(&["apply", &V_COMPETENCY.to_string()]).expect(0);
    t.exec(&format!("UPDATE backfill_migrations SET checksum = 'deadbeefdeadbeef' WHERE version = {V_COMPETENCY}"));
    let verify = t.run(&["verify"]);
    verify.expect(3);
    assert!(
        verify
            .stdout
            .contains("repair 202611230001 --accept-checksum"),
        "{}",
        verify.stdout
    );
    let apply = t.run(&["apply"]);
    let line = apply.one_line_error(5);
    assert!(line.contains("--accept-checksum"), "{line}");
    assert_eq!(
        t.state(V_ROLE),
        None,
        "a blocked apply must not run anything"
    );
    t.run(&["repair", &V_COMPETENCY.to_string(), "--accept-checksum"])
        .expect(0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'repair'"),
        1
    );
    t.run(&["verify"]).expect(0);
    t.run(&["apply"]).expect(0);
    assert_eq!(t.state(V_ROLE).as_deref(), Some("applied"));
}

fn unknown_version_in_ledger_fails_verify(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "unknown"));
    t.create_ledger();
    t.exec(
        "INSERT INTO backfill_migrations (version, name, checksum, state, last_action, rows_applied, rows_reverted, batches, started_at, updated_at) \
         VALUES (199901010001, 'ghost', 'abc', 'applied', 'apply', 0, 0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    );
    let verify = t.run(&["verify"]);
    verify.expect(3);
    assert!(
        verify
            .stdout
            .contains("V199901010001__ghost is in the ledger"),
        "{}",
        verify.stdout
    );
    let json = t.run(&["--format", "json", "verify"]);
    json.expect(3);
    assert_eq!(json.json()["ok"], false);
}

fn held_lock_makes_apply_exit_4(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "lock"));
    seed_edge_cases(&t);
    t.create_ledger();
    let mut holder = t.session();
    let lease = backfill::engine::lock::acquire(holder.as_mut(), std::time::Duration::from_secs(5))
        .expect("the test could not take the lock");
    let started = std::time::Instant::now();
    let run = t.run(&["apply", "--lock-timeout", "1"]);
    let line = run.one_line_error(4).to_string();
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "gave up too early: {waited:?}"
    );
    assert!(
        waited < std::time::Duration::from_secs(10),
        "ignored its timeout: {waited:?}"
    );
    assert!(line.contains("--lock-timeout"), "{line}");
    assert_eq!(
        t.int("SELECT COUNT(*) FROM competency_versions"),
        1,
        "nothing may be written without the lock"
    );
    backfill::engine::lock::release(holder.as_mut(), lease);
    drop(holder);
    t.run(&["apply", "--lock-timeout", "5"]).expect(0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
}

fn failure_mid_way_keeps_batches_and_resumes(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "fail"));
    seed_generated(&t, 120);
    let expected = t.expected_competencies();
    assert!(expected.len() > 40, "fixture too small: {}", expected.len());
    let v = V_COMPETENCY.to_string();
    let failed = t.run_env(
        &["apply", &v, "--batch-size", "10"],
        &[("BACKFILL_TEST_FAIL_AT_BATCH", "4")],
    );
    let line = failed.one_line_error(1).to_string();
    assert!(line.contains("batch 4") && line.contains("rerun"), "{line}");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("failed"));
    let written = t.marked_competencies();
    // Exactly the first three batches (competency ids 1..=30) are kept.
    let first_three: std::collections::BTreeSet<_> =
        expected.iter().filter(|(c, _)| *c <= 30).copied().collect();
    assert_eq!(written, first_three);
    assert_eq!(t.rows_applied(&v), written.len() as i64);
    assert_eq!(
        t.text(&format!(
            "SELECT apply_cursor FROM backfill_migrations WHERE version = {v}"
        ))
        .as_deref(),
        Some("30")
    );
    let failed_runs = t.int(
        "SELECT COUNT(*) FROM backfill_runs WHERE state = 'failed' AND error_message IS NOT NULL",
    );
    assert_eq!(failed_runs, 1);
    let resumed = t.run(&["apply", &v, "--batch-size", "7"]);
    resumed.expect(0);
    assert!(resumed.stdout.contains("resumed"), "{}", resumed.stdout);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.rows_applied(&v), expected.len() as i64);
    let run_rows = t.int(&format!(
        "SELECT SUM(row_count) FROM backfill_runs WHERE version = {v} AND action = 'apply'"
    ));
    assert_eq!(
        run_rows,
        expected.len() as i64,
        "audit row counts must add up"
    );
}

/// `--batch-ms` resizes batches from their real duration (here stretched by a test delay) while the
/// cursor stays the last key written: shrinking and growing mid-run skips and repeats nothing.
fn adaptive_batches_shrink_and_grow_without_gaps(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "adapt"));
    seed_generated(&t, 120);
    let expected = t.expected_competencies();
    let v = V_COMPETENCY.to_string();
    let batches = || t.ledger_int(&v, "batches");
    let size = || t.ledger_int(&v, "batch_size");

    // Every batch takes >= 30 ms against a 10 ms target: 32, 16, 8, 4, 2, then one key at a time.
    t.run_env(
        &["apply", &v, "--batch-size", "32", "--batch-ms", "10"],
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "30")],
    )
    .expect(0);
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.rows_applied(&v), expected.len() as i64);
    assert_eq!(size(), 1, "slow batches must shrink to one key");
    let shrinking = batches();
    assert!(
        shrinking > 60,
        "32 fixed would take 5 batches; shrinking took {shrinking}"
    );

    t.run(&["revert", &v, "--batch-size", "1000"]).expect(0);
    // Fast batches against a minute's target: 1, 2, 4, ... 64 keys cover the 120 ids (a fresh
    // apply counts its batches from zero).
    t.run(&["apply", &v, "--batch-size", "1", "--batch-ms", "60000"])
        .expect(0);
    assert_eq!(t.marked_competencies(), expected);
    let growing = batches();
    assert!(
        (7..=9).contains(&growing),
        "1 fixed would take 121 batches, doubling 7 or 8; growing took {growing}"
    );
    assert!(size() >= 64, "fast batches must grow, last size {}", size());
}

fn revert_undoes_apply(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "revert"));
    seed_edge_cases(&t);
    let before = t.int("SELECT COUNT(*) FROM competency_versions");
    t.run(&["apply"]).expect(0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM competency_versions"),
        before + 3
    );
    let v = V_COMPETENCY.to_string();
    let out = t.run(&["revert", &v, "--batch-size", "1"]);
    out.expect(0);
    assert!(out.stdout.contains("reverted"), "{}", out.stdout);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM competency_versions"),
        before,
        "the foreign backfill row must survive"
    );
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("reverted"));
    let doc = t.run(&["--format", "json", "status"]).json();
    assert_eq!(doc["migrations"][0]["state"], "reverted");
    assert_eq!(doc["migrations"][1]["state"], "applied");
    // A deploy's apply leaves an operator's revert alone; naming the version re-applies it.
    t.run(&["apply"]).expect(0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("reverted"));
    t.run(&["apply", &v]).expect(0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(
        t.marked_competencies(),
        [(1, 3), (2, 5), (6, 5)].into_iter().collect()
    );
}

on_every_dialect!(
    ledger_created_from_nothing,
    applies_in_version_order_then_noop,
    checksum_drift_blocks_until_repair,
    unknown_version_in_ledger_fails_verify,
    held_lock_makes_apply_exit_4,
    failure_mid_way_keeps_batches_and_resumes,
    adaptive_batches_shrink_and_grow_without_gaps,
    revert_undoes_apply,
);

mod connection_errors {
    use super::common::{bin, run_url};

    fn one_line(args: &[&str], url: &str, code: i32) -> String {
        run_url(url, args)
            .one_line_error_hiding(code, "hunter2")
            .to_string()
    }

    #[test]
    fn malformed_url() {
        let line = one_line(&["status"], "postgres://user:hunter2@:99999999/x", 2);
        assert!(line.contains("URL"), "{line}");
    }

    #[test]
    fn unknown_scheme() {
        let line = one_line(&["status"], "oracle://user:hunter2@localhost/x", 2);
        assert!(line.contains("oracle://"), "{line}");
    }

    #[test]
    fn wrong_password_postgres() {
        // A role that needs a password: created here; trust auth on 127.0.0.1 would accept any password,
        // so connect over a user that does not exist to get an authentication failure instead.
        let line = one_line(
            &["status"],
            "postgres://no_such_user_bf:hunter2@127.0.0.1:5432/postgres",
            2,
        );
        assert!(
            line.contains("cannot connect") && line.contains("***"),
            "{line}"
        );
    }

    #[test]
    fn wrong_password_mariadb() {
        let line = one_line(&["status"], "mysql://root:hunter2@127.0.0.1:3306/mysql", 2);
        assert!(
            line.contains("Access denied") && line.contains("password"),
            "{line}"
        );
    }

    #[test]
    fn unreachable_host() {
        let line = one_line(&["status"], "postgres://u:hunter2@127.0.0.1:9/db", 1);
        assert!(line.contains("cannot connect"), "{line}");
        let line = one_line(&["status"], "mysql://u:hunter2@127.0.0.1:9/db", 1);
        assert!(line.contains("cannot connect"), "{line}");
    }

    #[test]
    fn missing_sqlite_file() {
        let line = one_line(&["status"], "sqlite:///nonexistent/dir/app.db", 2);
        assert!(line.contains("no SQLite database"), "{line}");
        assert!(!std::path::Path::new("/nonexistent/dir/app.db").exists());
    }

    #[test]
    fn no_database_given() {
        let out = bin().args(["status"]).output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
    }
}
