//! Hand-damaged ledgers and runs that end (issue 18, items 5–10): damage is exit 3 with its fix from
//! every command and from `verify`, never a busy lock or "rerun" forever; every run that ends says how.

mod common;

use common::{seed_generated, Kind, TestDb, V_COMPETENCY};

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
    let t = TestDb::with_app(kind, &format!("damage_lease_{}", kind as u8));
    seed_generated(&t, 40);
    t.run(&["apply", &v(), "--batch-size", "10"]).expect(0);
    t.exec("DELETE FROM backfill_lease");
    every_command_names(&t, "INSERT INTO backfill_lease (name) VALUES ('runner')");
    t.exec("INSERT INTO backfill_lease (name) VALUES ('runner')");
    t.run(&["verify"]).expect(0);
    t.run(&["revert", &v()]).expect(0);
    assert!(t.marked_competencies().is_empty());
}

/// The audit table dropped by hand: not exit 1 "rerun to resume" forever: exit 3 naming the table and
/// the fix; the fix recreates it (empty) and keeps the rest of the ledger.
fn missing_runs_table_is_named(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("damage_runs_{}", kind as u8));
    seed_generated(&t, 40);
    t.run(&["apply", &v(), "--batch-size", "10"]).expect(0);
    let marked = t.marked_competencies();
    t.exec("DROP TABLE backfill_runs");
    every_command_names(&t, "backfill_runs is missing");
    assert!(
        !t.has_table("backfill_runs"),
        "nothing recreated it unasked"
    );
    t.exec("DELETE FROM backfill_schema_history");
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

on_every_dialect!(missing_lease_row_is_named, missing_runs_table_is_named);
