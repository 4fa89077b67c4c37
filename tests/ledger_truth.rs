//! The ledger never lies (issue 12): unfinished work stays visibly unfinished, refused commands change
//! nothing, repair commits with its audit row, a plan gate refuses before the first write, a newer or
//! damaged ledger is named, and an applied migration tops up what the app made eligible since.

mod common;

use common::{dump_all, seed_edge_cases, seed_generated, Kind, TestDb, V_COMPETENCY};
use std::time::{Duration, Instant};

fn v() -> String {
    V_COMPETENCY.to_string()
}

/// A failed apply, then a scenario revert: refused (exit 2), the migration stays failed, `verify`
/// says so, and a deploy's `apply` finishes it.
fn failed_apply_then_scenario_revert_stays_unfinished(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("truth_failed_{}", kind as u8));
    seed_generated(&t, 200);
    let expected = t.expected_competencies();
    let failed = t.run_env(
        &["apply", &v(), "--batch-size", "20"],
        &[("BACKFILL_TEST_FAIL_AT_BATCH", "3")],
    );
    failed.one_line_error(1);
    let scenario = expected.iter().next().map(|(_, s)| *s).expect("a scenario");
    let line = t
        .run(&["revert", &v(), "--scenario", &scenario.to_string()])
        .one_line_error(2)
        .to_string();
    assert!(line.contains(&format!("backfill apply {}", v())), "{line}");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("failed"));
    t.run(&["verify"]).expect(3);
    t.run(&["apply"]).expect(0);
    assert_eq!(t.marked_competencies(), expected, "the deploy finished it");
    t.run(&["verify"]).expect(0);
}

/// A full revert killed mid-way: a scenario revert is refused, the full revert resumes.
fn killed_full_revert_stays_unfinished(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("truth_killrev_{}", kind as u8));
    seed_generated(&t, 200);
    t.run(&["apply", &v()]).expect(0);
    let killed = t.run_env(
        &["revert", &v(), "--batch-size", "15"],
        &[("BACKFILL_TEST_ABORT_AT_BATCH", "2")],
    );
    assert_ne!(killed.code, 0);
    let line = t
        .run(&["revert", &v(), "--scenario", "1"])
        .one_line_error(2)
        .to_string();
    assert!(line.contains(&format!("backfill revert {}", v())), "{line}");
    t.run(&["verify"]).expect(3);
    t.run(&["revert", &v()]).expect(0);
    assert!(t.marked_competencies().is_empty());
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("reverted"));
}

/// Every refused command on a fresh database creates nothing, not even the ledger.
fn refused_commands_create_nothing(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("truth_refused_{}", kind as u8));
    seed_edge_cases(&t);
    let before = dump_all(&t);
    for args in [
        vec!["revert", "202611230001"],
        vec!["apply", "999999999999"],
        vec!["plan", "999999999999"],
        vec!["apply", "--to", "5"],
        vec!["repair", "202611230001", "--accept-checksum"],
    ] {
        t.run(&args).one_line_error(2);
        assert_eq!(
            dump_all(&t),
            before,
            "`{}` changed the database",
            args.join(" ")
        );
        assert!(
            !t.has_table("backfill_migrations"),
            "`{}` created the ledger",
            args.join(" ")
        );
    }
}

/// `--expect-plan` with a plan of one migration while two are pending: refused before any write.
fn expect_plan_checks_everything_before_writing(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("truth_gate_{}", kind as u8));
    seed_edge_cases(&t);
    let plan = std::env::temp_dir().join(format!(
        "truth-gate-{}-{}.json",
        kind as u8,
        std::process::id()
    ));
    let plan_s = plan.display().to_string();
    t.run(&["plan", &v(), "--out", &plan_s]).expect(0);
    let before = t.int("SELECT COUNT(*) FROM competency_versions");
    let line = t
        .run(&["apply", "--expect-plan", &plan_s])
        .one_line_error(5)
        .to_string();
    assert!(line.contains("not in the reviewed plan"), "{line}");
    assert_eq!(
        t.int("SELECT COUNT(*) FROM competency_versions"),
        before,
        "a refusal writes nothing"
    );
    assert_eq!(t.int("SELECT COUNT(*) FROM backfill_migrations"), 0);
    let _ = std::fs::remove_file(&plan);
}

/// A ledger written by a newer backfill, and a damaged checkpoint: exit 3, one line, the fix named.
fn newer_or_damaged_ledger_is_named(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("truth_newer_{}", kind as u8));
    seed_generated(&t, 60);
    t.run(&["apply", &v(), "--batch-size", "10"]).expect(0);
    t.exec(&format!(
        "UPDATE backfill_migrations SET state = 'failed', apply_cursor = '12x' WHERE version = {}",
        v()
    ));
    let line = t.run(&["apply", &v()]).one_line_error(3).to_string();
    assert!(
        line.contains("apply_cursor") && line.contains("UPDATE backfill_migrations"),
        "{line}"
    );
    t.exec(&format!(
        "UPDATE backfill_migrations SET apply_cursor = NULL WHERE version = {}",
        v()
    ));
    t.run(&["apply", &v()]).expect(0);
    t.exec(
        "INSERT INTO backfill_schema_history (version, name, applied_on, checksum) VALUES (99, 'future', '2030-01-01T00:00:00Z', '1')",
    );
    for cmd in [
        vec!["apply"],
        vec!["revert", "202611230001"],
        vec!["status"],
    ] {
        let line = t.run(&cmd).one_line_error(3).to_string();
        assert!(line.contains("newer"), "{}: {line}", cmd.join(" "));
    }
}

/// After a full apply the app adds an eligible competency: plan says applied and shows the top-up,
/// `verify` stays 0, `verify --data` reports the drift, `apply V` writes exactly it, and all is clean.
fn top_up_after_app_activity(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("truth_topup_{}", kind as u8));
    seed_edge_cases(&t);
    t.run(&["apply"]).expect(0);
    let before = t.marked_competencies().len();
    t.exec("INSERT INTO competencies (id, organization_id, name, status, created_at, updated_at) VALUES (900, 1, 'new one', 'active', '2026-01-15 10:00:00', '2026-01-15 10:00:00')");
    t.exec("INSERT INTO capability_competencies (id, scenario_id, capability_id, competency_id, created_at, updated_at) VALUES (900, 3, 2, 900, '2026-01-15 10:00:00', '2026-01-15 10:00:00')");
    let plan = t.run(&["plan", &v()]);
    plan.expect(0);
    assert!(
        plan.stdout.contains("1 row to write") && plan.stdout.contains("applied"),
        "{}",
        plan.stdout
    );
    t.run(&["verify"]).expect(0);
    let data = t.run(&["verify", "--data"]);
    data.expect(0);
    assert!(data.stdout.contains("data drift"), "{}", data.stdout);
    t.run(&["apply"]).expect(0);
    assert_eq!(
        t.marked_competencies().len(),
        before,
        "a deploy leaves an applied migration alone"
    );
    let topped = t.run(&["apply", &v()]);
    topped.expect(0);
    assert!(topped.stdout.contains("wrote 1 row"), "{}", topped.stdout);
    assert_eq!(t.marked_competencies().len(), before + 1);
    let clean = t.run(&["verify", "--data", "--strict"]);
    clean.expect(0);
    assert_eq!(
        t.int(&format!(
            "SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply' AND version = {}",
            v()
        )),
        2,
        "the top-up is an audited run of its own"
    );
}

on_every_dialect!(
    failed_apply_then_scenario_revert_stays_unfinished,
    killed_full_revert_stays_unfinished,
    refused_commands_create_nothing,
    expect_plan_checks_everything_before_writing,
    newer_or_damaged_ledger_is_named,
    top_up_after_app_activity,
);

/// `repair` killed while the audit table is locked: neither the fix nor the audit row lands.
#[test]
fn repair_commits_with_its_audit_row_or_not_at_all() {
    let t = TestDb::with_app(Kind::Postgres, "truth_repair");
    seed_edge_cases(&t);
    t.run(&["apply", &v()]).expect(0);
    t.exec(&format!(
        "UPDATE backfill_migrations SET checksum = 'deadbeef' WHERE version = {}",
        v()
    ));
    let mut holder = t.session();
    holder.begin(false).expect("begin");
    holder
        .execute("LOCK TABLE backfill_runs IN ACCESS EXCLUSIVE MODE", &[])
        .expect("lock the audit table");
    let mut child = t
        .command(&["repair", &v(), "--accept-checksum", "--lock-timeout", "30"])
        .spawn()
        .expect("spawn repair");
    // Wait until the repair is blocked on the audit table, then kill it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    while t.int(waiting) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        t.int(waiting) > 0,
        "the repair never reached the locked audit table"
    );
    common::signal(child.id(), "KILL");
    let _ = child.wait();
    holder.rollback().expect("release");
    assert_eq!(
        t.text(&format!(
            "SELECT checksum FROM backfill_migrations WHERE version = {}",
            v()
        ))
        .as_deref(),
        Some("deadbeef"),
        "the fix landed without its audit row"
    );
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'repair'"),
        0
    );
    // Run to the end, both land together.
    t.run(&["repair", &v(), "--accept-checksum"]).expect(0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'repair'"),
        1
    );
    t.run(&["verify"]).expect(0);
}

/// The audit trail names who ran each command when nobody said: `$USER`, else `$LOGNAME`, else
/// the process's user as the system names it (a container's job often sets neither variable).
#[test]
fn operator_without_user_is_the_login_name() {
    let t = TestDb::with_app(Kind::Sqlite, "truth_operator");
    seed_edge_cases(&t);
    t.create_ledger();
    let whoami = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    let whoami = String::from_utf8_lossy(&whoami.stdout).trim().to_string();
    assert!(!whoami.is_empty());
    let operator_of = |env: &[(&str, &str)], action: &str| {
        let mut cmd = t.command(&[action, &v()]);
        cmd.env_remove("USER")
            .env_remove("LOGNAME")
            .env_remove("BACKFILL_OPERATOR");
        for (k, val) in env {
            cmd.env(k, val);
        }
        common::Run::from(cmd.output().expect("run backfill")).expect(0);
        t.text(&format!(
            "SELECT operator_name FROM backfill_runs WHERE action = '{action}' ORDER BY started_at DESC, run_id DESC LIMIT 1"
        ))
    };
    assert_eq!(operator_of(&[], "plan").as_deref(), Some(whoami.as_str()));
    assert_eq!(
        operator_of(&[("LOGNAME", "cron-ops")], "apply").as_deref(),
        Some("cron-ops")
    );
    assert_eq!(
        operator_of(&[("USER", "deploy"), ("LOGNAME", "cron-ops")], "revert").as_deref(),
        Some("deploy")
    );
}
