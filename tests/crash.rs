//! kill -9 at random moments, on real processes: the rerun must end with exactly the rows of an
//! uninterrupted run, for apply and for revert, with audit counts that add up.

mod common;
use common::{seed_generated, Kind, Rng, TestDb, V_COMPETENCY};
use std::process::Stdio;
use std::time::Duration;

const TRIALS: usize = 10;
const BATCH_SIZES: [u64; 3] = [7, 10, 25];

/// One interrupted attempt: killed after a random delay, or aborted between a batch's writes and its
/// commit; the seed is printed so a failure can be replayed.
fn interrupted_attempt(t: &TestDb, rng: &mut Rng, args: &[&str], trial: usize) {
    let delay = if args[0] == "revert" { "20" } else { "8" };
    let batch = BATCH_SIZES[rng.range(0, 2) as usize].to_string();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--batch-size", &batch, "--quiet"]);
    let mut cmd = t.command(&full);
    cmd.env("BACKFILL_TEST_BATCH_DELAY_MS", delay)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if trial % 2 == 1 {
        let k = rng.range(1, 9).to_string();
        cmd.env("BACKFILL_TEST_ABORT_AT_BATCH", &k);
        let status = cmd.status().expect("run");
        assert!(
            status.code().is_none(),
            "abort at batch {k} should kill the process: {status:?}"
        );
    } else {
        let mut child = cmd.spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(rng.range(30, 450)));
        let _ = child.kill(); // SIGKILL; it may have finished already, which is fine
        let _ = child.wait();
    }
}

fn count_runs(t: &TestDb, action: &str, state: &str) -> i64 {
    t.int(&format!(
        "SELECT COUNT(*) FROM backfill_runs WHERE action = '{action}' AND state = '{state}'"
    ))
}

fn kill_during_apply(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("crash_apply_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let others = t.int("SELECT COUNT(*) FROM competency_versions");
    let mut rng = Rng::from_time();
    let seed = rng.0;
    let v = V_COMPETENCY.to_string();
    let mut interrupted = 0;
    for trial in 0..TRIALS {
        if trial > 0 {
            // Start over: remove this migration's rows and its ledger history.
            let d = t.session().dialect();
            t.exec(&format!(
                "DELETE FROM competency_versions WHERE {} = '{v}'",
                d.json_text("metadata", "migration")
            ));
            t.exec("DELETE FROM backfill_migrations");
            t.exec("DELETE FROM backfill_runs");
        }
        interrupted_attempt(&t, &mut rng, &["apply", &v], trial);
        if t.state(V_COMPETENCY).as_deref() != Some("applied") {
            interrupted += 1;
        }
        let rerun = t.run(&["apply", &v, "--batch-size", &rng.range(3, 40).to_string()]);
        rerun.expect(0);
        let ctx = format!("seed {seed} trial {trial}");
        assert_eq!(
            t.marked_competencies(),
            expected,
            "{ctx}: rows differ from an uninterrupted run"
        );
        assert_eq!(
            t.int("SELECT COUNT(*) FROM competency_versions"),
            others + expected.len() as i64,
            "{ctx}"
        );
        assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"), "{ctx}");
        assert_eq!(
            t.rows_applied(&v),
            expected.len() as i64,
            "{ctx}: ledger count"
        );
        let audited =
            t.int("SELECT COALESCE(SUM(row_count), 0) FROM backfill_runs WHERE action = 'apply'");
        assert_eq!(
            audited,
            expected.len() as i64,
            "{ctx}: audit counts must add up across attempts"
        );
        assert_eq!(count_runs(&t, "apply", "succeeded"), 1, "{ctx}");
        assert_eq!(
            count_runs(&t, "apply", "running"),
            0,
            "{ctx}: a dead run must be marked abandoned"
        );
        let runs = t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply'");
        assert!(runs <= 2, "{ctx}: one run row per attempt, got {runs}");
    }
    assert!(
        interrupted >= TRIALS / 2,
        "seed {seed}: only {interrupted} of {TRIALS} attempts were cut mid-run"
    );
}

fn kill_during_revert(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("crash_revert_{}", kind as u8));
    seed_generated(&t, 250);
    let before = t.int("SELECT COUNT(*) FROM competency_versions");
    let foreign_backfill = t.int(&format!(
        "SELECT COUNT(*) FROM competency_versions WHERE {} = 'backfill'",
        t.session().dialect().json_text("metadata", "source")
    ));
    assert!(
        foreign_backfill > 0,
        "the fixture must have another writer's source=backfill rows"
    );
    let mut rng = Rng::from_time();
    let seed = rng.0;
    let v = V_COMPETENCY.to_string();
    let mut interrupted = 0;
    for trial in 0..TRIALS {
        t.run(&["apply", &v]).expect(0);
        let written = t.marked_competencies().len() as i64;
        assert!(written > 0);
        t.exec("DELETE FROM backfill_runs");
        interrupted_attempt(&t, &mut rng, &["revert", &v], trial);
        if t.state(V_COMPETENCY).as_deref() != Some("reverted") {
            interrupted += 1;
            t.run(&["revert", &v, "--batch-size", &rng.range(3, 40).to_string()])
                .expect(0);
        }
        let ctx = format!("seed {seed} trial {trial}");
        assert!(
            t.marked_competencies().is_empty(),
            "{ctx}: marked rows left"
        );
        assert_eq!(
            t.int("SELECT COUNT(*) FROM competency_versions"),
            before,
            "{ctx}: someone else's row was deleted"
        );
        assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("reverted"), "{ctx}");
        let audited =
            t.int("SELECT COALESCE(SUM(row_count), 0) FROM backfill_runs WHERE action = 'revert'");
        assert_eq!(
            audited, written,
            "{ctx}: deleted counts must add up across attempts"
        );
        assert_eq!(count_runs(&t, "revert", "running"), 0, "{ctx}");
    }
    assert!(
        interrupted >= TRIALS / 2,
        "seed {seed}: only {interrupted} of {TRIALS} attempts were cut mid-run"
    );
}

mod postgres {
    #[test]
    fn kill_during_apply() {
        super::kill_during_apply(super::Kind::Postgres)
    }
    #[test]
    fn kill_during_revert() {
        super::kill_during_revert(super::Kind::Postgres)
    }
}

mod mariadb {
    #[test]
    fn kill_during_apply() {
        super::kill_during_apply(super::Kind::Mariadb)
    }
    #[test]
    fn kill_during_revert() {
        super::kill_during_revert(super::Kind::Mariadb)
    }
}

mod sqlite {
    #[test]
    fn kill_during_apply() {
        super::kill_during_apply(super::Kind::Sqlite)
    }
    #[test]
    fn kill_during_revert() {
        super::kill_during_revert(super::Kind::Sqlite)
    }
}
