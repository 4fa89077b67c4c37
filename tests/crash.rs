//! kill -9 at random moments, on real processes: the rerun must end with exactly the rows of an
//! uninterrupted run, for apply and for revert, with audit counts that add up.

mod common;
use common::topology::Trials;
use common::{seed_generated, Kind, TestDb, V_COMPETENCY};

const TRIALS: usize = 10;

// The trials themselves live in tests/common/topology.rs: the topology tests run them through
// PgBouncer and across Galera nodes too.

/// A stage is a table per run (`kit::stage`): a runner killed mid-run leaves its own, and a stage
/// as a killed runner left it (here: made by hand, before the first trial) is dropped when a run
/// of its migration completes, so the trials end with none.
fn kill_during_apply(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("crash_apply_{}", kind as u8));
    seed_generated(&t, 250);
    t.exec(&format!(
        "CREATE TABLE backfill_stage_{V_COMPETENCY}_0123abcd (entity_id BIGINT PRIMARY KEY, scenario_id BIGINT)"
    ));
    assert_eq!(t.stage_tables(), 1);
    Trials::on(&t, TRIALS).kill_during_apply();
    assert_eq!(t.stage_tables(), 0, "stages dropped");
}

fn kill_during_revert(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("crash_revert_{}", kind as u8));
    seed_generated(&t, 250);
    Trials::on(&t, TRIALS).kill_during_revert();
}

/// The same trials with `--jobs 2`: kill -9 while two workers write in their chunks (or between
/// chunk creation and the first batch), then a parallel rerun that takes the chunks over.
fn kill_during_parallel_apply(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("crash_apply_jobs_{}", kind as u8));
    seed_generated(&t, 250);
    Trials::on(&t, TRIALS).kill_during_apply_with(&["--jobs", "2"]);
    assert_eq!(t.stage_tables(), 0, "stages dropped");
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_chunks"),
        0,
        "chunks folded"
    );
}

fn kill_during_parallel_revert(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("crash_revert_jobs_{}", kind as u8));
    seed_generated(&t, 250);
    Trials::on(&t, TRIALS).kill_during_revert_with(&["--jobs", "2"]);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_chunks"),
        0,
        "chunks folded"
    );
}

mod postgres {
    #[test]
    fn kill_during_parallel_apply() {
        super::kill_during_parallel_apply(super::Kind::Postgres)
    }
    #[test]
    fn kill_during_parallel_revert() {
        super::kill_during_parallel_revert(super::Kind::Postgres)
    }
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
    fn kill_during_parallel_apply() {
        super::kill_during_parallel_apply(super::Kind::Mariadb)
    }
    #[test]
    fn kill_during_parallel_revert() {
        super::kill_during_parallel_revert(super::Kind::Mariadb)
    }
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
