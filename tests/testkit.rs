//! The testkit fails what it must: a revert that leaves any table changed (named, with its rows),
//! and a migration that writes nothing on the seed.

use backfill::db::{Dialect, Session};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The shipped competency_versions backfill (INSERT-shaped; its revert deletes what it inserted).
const V_COMPETENCY: i64 = 202611230001;
/// The example that fills NULL effective dates (UPDATE-shaped).
const V_DATES: i64 = 202611300001;

/// The panic message of `f`, which must panic.
fn panic_of(f: impl FnOnce()) -> String {
    let caught = catch_unwind(AssertUnwindSafe(f)).expect_err("the testkit must fail this");
    caught
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| caught.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A trigger that copies every new competency version's id into `kit_log`, a table no revert
/// knows of: only a kit that compares every table sees it left behind.
fn log_inserts(s: &mut dyn Session) {
    let statements: &[&str] = match s.dialect() {
        Dialect::Postgres => &[
            "CREATE TABLE kit_log (id BIGINT PRIMARY KEY)",
            "CREATE FUNCTION kit_log_fn() RETURNS trigger LANGUAGE plpgsql AS \
             $$BEGIN INSERT INTO kit_log VALUES (NEW.id); RETURN NEW; END$$",
            "CREATE TRIGGER kit_log_t AFTER INSERT ON competency_versions \
             FOR EACH ROW EXECUTE FUNCTION kit_log_fn()",
        ],
        Dialect::Mysql => &[
            "CREATE TABLE kit_log (id BIGINT PRIMARY KEY)",
            "CREATE TRIGGER kit_log_t AFTER INSERT ON competency_versions \
             FOR EACH ROW INSERT INTO kit_log VALUES (NEW.id)",
        ],
        Dialect::Sqlite => &[
            "CREATE TABLE kit_log (id INTEGER PRIMARY KEY)",
            "CREATE TRIGGER kit_log_t AFTER INSERT ON competency_versions \
             BEGIN INSERT INTO kit_log VALUES (NEW.id); END",
        ],
    };
    for sql in statements {
        s.execute(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn revert_leaving_a_table_changed_is_named(on: Dialect) {
    let message = panic_of(|| {
        backfill::testkit::exercise(V_COMPETENCY, |s| {
            backfill::testkit::sample_data(s);
            if s.dialect() == on {
                log_inserts(s);
            }
        })
    });
    assert!(
        message.contains(&format!(
            "{on:?}: revert did not restore every table exactly"
        )) && message.contains("table `kit_log` (0 rows before")
            && message.contains("first differing row"),
        "{message}"
    );
}

#[test]
fn revert_leaving_a_table_changed_is_named_postgres() {
    revert_leaving_a_table_changed_is_named(Dialect::Postgres);
}

#[test]
fn revert_leaving_a_table_changed_is_named_mariadb() {
    revert_leaving_a_table_changed_is_named(Dialect::Mysql);
}

#[test]
fn revert_leaving_a_table_changed_is_named_sqlite() {
    revert_leaving_a_table_changed_is_named(Dialect::Sqlite);
}

/// The sample's effective dates are all set: the dates example has nothing to do there.
#[test]
fn a_migration_that_writes_nothing_fails_unless_allowed() {
    let message = panic_of(|| backfill::testkit::exercise(V_DATES, backfill::testkit::sample_data));
    assert!(
        message.contains("wrote nothing on the seed data")
            && message.contains("exercise_allowing_empty"),
        "{message}"
    );
    backfill::testkit::exercise_allowing_empty(V_DATES, backfill::testkit::sample_data);
}
