//! The example migrations, one per shape beside the shipped INSERT-shaped ones (feature `testkit`,
//! `examples/data_migrations/`): through the testkit on every dialect, and through the real binary
//! with kill -9 trials, the edited-row guard, `forget`, and the irreversible refusal.

mod common;

use common::{seed_generated, Kind, TestDb};

const V_DATES: i64 = 202611300001;
const V_TRIM: i64 = 202611300002;

/// Versions without an effective date (all but every fifth), as the app's older code wrote them.
fn null_some_dates(s: &mut dyn backfill::db::Session) {
    s.execute(
        "UPDATE competency_versions SET effective_from = NULL WHERE id % 5 <> 0",
        &[],
    )
    .expect("null some effective dates");
}

/// Role names with blanks around them, as an old import left them.
fn pad_some_names(s: &mut dyn backfill::db::Session) {
    s.execute(
        "UPDATE roles SET name = CONCAT(' ', name, '  ') WHERE id % 3 = 0",
        &[],
    )
    .expect("pad some role names");
}

#[test]
fn update_shape_through_the_testkit() {
    backfill::testkit::exercise(V_DATES, |s| {
        backfill::testkit::sample_data(s);
        null_some_dates(s);
    });
}

#[test]
fn irreversible_shape_through_the_testkit() {
    backfill::testkit::exercise(V_TRIM, |s| {
        backfill::testkit::sample_data(s);
        pad_some_names(s);
    });
}

fn nulls(t: &TestDb) -> i64 {
    t.int("SELECT COUNT(*) FROM competency_versions WHERE effective_from IS NULL AND created_at IS NOT NULL")
}

/// kill -9 mid-apply at several batches, resume, then the journal restores exactly what was there.
fn update_shape_survives_kill_and_reverts_exactly(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("ex_update_{}", kind as u8));
    seed_generated(&t, 500);
    null_some_dates(t.session().as_mut());
    let before = common::dump_all(&t);
    let pending = nulls(&t);
    assert!(pending > 10, "fixture too small: {pending}");
    let v = V_DATES.to_string();
    for abort_at in ["2", "4"] {
        let run = t.run_env(
            &["apply", &v, "--batch-size", "5"],
            &[("BACKFILL_TEST_ABORT_AT_BATCH", abort_at)],
        );
        assert_ne!(run.code, 0, "the run was meant to die at batch {abort_at}");
    }
    t.run(&["apply", &v, "--batch-size", "7"]).expect(0);
    assert_eq!(nulls(&t), 0, "every date filled after the resume");
    assert_eq!(
        t.int(&format!(
            "SELECT COUNT(*) FROM backfill_undo WHERE version = {v}"
        )),
        pending,
        "one journal entry per changed row, none twice"
    );
    assert_eq!(t.rows_applied(V_DATES), pending);
    // An edit after the backfill is refused, listed, and restored only with --force.
    t.exec("UPDATE competency_versions SET effective_from = '2001-01-01' WHERE id = (SELECT MIN(id) FROM backfill_undo WHERE version = 202611300001)");
    let edited_id = t.int(&format!(
        "SELECT MIN(row_key) FROM backfill_undo WHERE version = {v}"
    ));
    let refused = t.run(&["revert", &v]);
    let line = refused.one_line_error(5).to_string();
    assert!(
        line.contains(&edited_id.to_string()) && line.contains("--force"),
        "{line}"
    );
    let status = t.run(&["status"]);
    assert!(
        status.stdout.contains(&pending.to_string()),
        "status shows the journal: {}",
        status.stdout
    );
    t.run(&["revert", &v, "--force", "--batch-size", "4"])
        .expect(0);
    assert_eq!(
        common::dump_all(&t)
            .iter()
            .filter(|l| l.starts_with("competency_versions"))
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|l| l.starts_with("competency_versions"))
            .collect::<Vec<_>>(),
        "revert restored every old value"
    );
    assert_eq!(
        t.int(&format!(
            "SELECT COUNT(*) FROM backfill_undo WHERE version = {v}"
        )),
        0
    );
}

/// `forget` drops the journal (audited) and makes the migration irreversible.
fn forget_makes_it_final(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("ex_forget_{}", kind as u8));
    seed_generated(&t, 60);
    null_some_dates(t.session().as_mut());
    let v = V_DATES.to_string();
    t.run(&["apply", &v]).expect(0);
    assert!(t.int("SELECT COUNT(*) FROM backfill_undo") > 0);
    t.run(&["forget", &v]).expect(0);
    assert_eq!(t.int("SELECT COUNT(*) FROM backfill_undo"), 0);
    assert_eq!(
        t.int(&format!(
            "SELECT COUNT(*) FROM backfill_runs WHERE action = 'forget' AND version = {v}"
        )),
        1,
        "forget is audited"
    );
    let line = t.run(&["revert", &v]).one_line_error(2).to_string();
    assert!(line.contains("forget"), "{line}");
    // Forgetting an INSERT-shaped migration's journal makes no sense: refused.
    let shipped = backfill::registry::all().iter().find(|r| {
        matches!(
            r.migration.shape(),
            backfill::kit::migration::Shape::Insert(_)
        )
    });
    if let Some(reg) = shipped {
        t.run(&["apply", &reg.version.to_string()]).expect(0);
        t.run(&["forget", &reg.version.to_string()])
            .one_line_error(2);
    }
}

/// kill -9 mid-apply, resume: every name trimmed exactly once; revert is refused with the reason.
fn irreversible_shape_survives_kill_and_refuses_revert(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("ex_irrev_{}", kind as u8));
    seed_generated(&t, 150);
    pad_some_names(t.session().as_mut());
    let untrimmed = "SELECT COUNT(*) FROM roles WHERE LENGTH(name) <> LENGTH(TRIM(name))";
    let pending = t.int(untrimmed);
    assert!(pending > 3, "fixture too small: {pending}");
    let v = V_TRIM.to_string();
    let run = t.run_env(
        &["apply", &v, "--batch-size", "3"],
        &[("BACKFILL_TEST_ABORT_AT_BATCH", "2")],
    );
    assert_ne!(run.code, 0);
    t.run(&["apply", &v]).expect(0);
    assert_eq!(t.int(untrimmed), 0);
    assert_eq!(
        t.rows_applied(V_TRIM),
        pending,
        "each row counted once across the kill"
    );
    let before = common::dump_all(&t);
    let line = t.run(&["revert", &v]).one_line_error(2).to_string();
    assert!(
        line.contains("cannot be reverted") && line.contains("blanks"),
        "{line}"
    );
    assert_eq!(
        common::dump_all(&t),
        before,
        "a refused revert changes nothing"
    );
}

/// Example migrations are test-only: a deploy's `apply` never runs them, status does not list them.
fn examples_run_only_when_named(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("ex_named_{}", kind as u8));
    seed_generated(&t, 40);
    null_some_dates(t.session().as_mut());
    t.run(&["apply"]).expect(0);
    assert!(nulls(&t) > 0, "a deploy's apply ran an example");
    assert!(!t
        .run(&["status"])
        .stdout
        .contains("version_effective_dates"));
}

/// Batches wider than one journal statement (500 rows a statement, since the journal writes and
/// reads many rows per round trip): one batch journals every row, the edited-row guard still finds
/// the last one, and revert restores every old value in one batch.
fn update_shape_in_batches_wider_than_one_statement(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("ex_wide_{}", kind as u8));
    seed_generated(&t, 12_000);
    null_some_dates(t.session().as_mut());
    let before = common::dump_all(&t);
    let pending = nulls(&t);
    assert!(
        pending > 500,
        "fixture too small for two statements: {pending}"
    );
    let v = V_DATES.to_string();
    t.run(&["apply", &v, "--batch-size", "1000000"]).expect(0);
    assert_eq!(nulls(&t), 0, "every date filled in one batch");
    let entries = format!("SELECT COUNT(*) FROM backfill_undo WHERE version = {v}");
    assert_eq!(t.int(&entries), pending, "one entry per changed row");
    let last = t.int(&format!(
        "SELECT MAX(row_key) FROM backfill_undo WHERE version = {v}"
    ));
    t.exec(&format!(
        "UPDATE competency_versions SET effective_from = '2001-01-01' WHERE id = {last}"
    ));
    let refused = t.run(&["revert", &v, "--batch-size", "1000000"]);
    let line = refused.one_line_error(5).to_string();
    assert!(line.contains(&last.to_string()), "{line}");
    t.run(&["revert", &v, "--force", "--batch-size", "1000000"])
        .expect(0);
    let versions = |dump: Vec<String>| -> Vec<String> {
        dump.into_iter()
            .filter(|l| l.starts_with("competency_versions"))
            .collect()
    };
    assert_eq!(
        versions(common::dump_all(&t)),
        versions(before),
        "revert restored every old value"
    );
    assert_eq!(t.int(&entries), 0, "every entry dropped");
}

on_every_dialect!(
    update_shape_in_batches_wider_than_one_statement,
    update_shape_survives_kill_and_reverts_exactly,
    forget_makes_it_final,
    irreversible_shape_survives_kill_and_refuses_revert,
    examples_run_only_when_named,
);
