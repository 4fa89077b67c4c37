//! The testkit fails what it must: a revert that leaves any table changed (named, with its rows),
//! and a migration that writes nothing on the seed. Its builder takes an app's own schema (a
//! Laravel `schema:dump`, per-dialect files) and seed (SQL files, Rust), and names a bad schema file.

use backfill::db::{Dialect, Session};
use backfill::testkit::{Kit, Schema};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

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
        message.contains("wrote nothing on the seed data") && message.contains("allow_empty()"),
        "{message}"
    );
    backfill::testkit::exercise_allowing_empty(V_DATES, backfill::testkit::sample_data);
}

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn count(s: &mut dyn Session, sql: &str) -> i64 {
    let v = s
        .query_scalar(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    v.as_i64().unwrap_or_else(|| panic!("{sql}: {v:?}"))
}

/// A Laravel app's `schema:dump` of each dialect and a seed file: the dates example runs against
/// them on all three, the SQL seed before the Rust one, both after the dump (its `migrations`
/// rows are there).
#[test]
fn a_laravel_dump_and_seed_sql_exercise_a_migration_on_every_dialect() {
    let seen = RefCell::new(Vec::new());
    Kit::new()
        .schema(Schema::laravel_dump(data("laravel")))
        .seed_sql(data("laravel/seed.sql"))
        .seed(|s| {
            let undated = "SELECT COUNT(*) FROM competency_versions WHERE effective_from IS NULL";
            let laravel = count(s, "SELECT COUNT(*) FROM migrations");
            seen.borrow_mut()
                .push((s.dialect(), count(s, undated), laravel));
        })
        .exercise(V_DATES);
    assert_eq!(
        seen.into_inner(),
        vec![
            (Dialect::Postgres, 2, 11),
            (Dialect::Mysql, 2, 11),
            (Dialect::Sqlite, 2, 11)
        ]
    );
}

/// Without the seed the example has nothing to fill: refused, then allowed.
#[test]
fn a_laravel_dump_without_rows_to_change_needs_allow_empty() {
    let kit = Kit::new()
        .schema(Schema::laravel_dump(data("laravel")))
        .dialects(&[Dialect::Sqlite]);
    let message = panic_of(|| kit.exercise(V_DATES));
    assert!(
        message.starts_with("Sqlite: V202611300001 wrote nothing"),
        "{message}"
    );
    kit.allow_empty().exercise(V_DATES);
}

/// A schema file the server refuses: one panic line naming the dialect, the file, the line and the
/// statement.
fn bad_schema_file_is_named(dialect: Dialect, file: &str) {
    let dir = std::env::temp_dir().join(format!("bf-kit-bad-{file}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(file);
    let sql = "CREATE TABLE teams (id INTEGER PRIMARY KEY);\n-- a typo:\nCREATE TABEL people (id INTEGER);\n";
    std::fs::write(&path, sql).expect("write");
    let message = panic_of(|| Kit::new().schema(Schema::dir(&dir)).exercise(V_DATES));
    let _ = std::fs::remove_dir_all(&dir);
    let want = format!(
        "{dialect:?}: cannot load the schema: {}:3: ",
        path.display()
    );
    assert!(
        message.starts_with(&want)
            && message.contains("(statement: CREATE TABEL people (id INTEGER))")
            && !message.contains('\n'),
        "{message}"
    );
}

#[test]
fn bad_schema_file_is_named_postgres() {
    bad_schema_file_is_named(Dialect::Postgres, "postgres.sql");
}

#[test]
fn bad_schema_file_is_named_mariadb() {
    bad_schema_file_is_named(Dialect::Mysql, "mariadb.sql");
}

#[test]
fn bad_schema_file_is_named_sqlite() {
    bad_schema_file_is_named(Dialect::Sqlite, "sqlite.sql");
}

#[test]
fn a_kit_without_schema_or_with_a_dialect_it_lacks_says_so() {
    let none = panic_of(|| Kit::new().exercise(V_DATES));
    assert!(none.contains("no schema; give one with .schema("), "{none}");
    let pg_only = Schema::files([(Dialect::Postgres, data("laravel/pgsql-schema.sql"))]);
    let lacking = panic_of(|| {
        Kit::new()
            .schema(pg_only)
            .dialects(&[Dialect::Mysql])
            .exercise(V_DATES)
    });
    assert!(lacking.contains("has no SQL for Mysql"), "{lacking}");
}

/// This repository's HR schema is an app schema like any other: `schema/app/` read as a
/// `Schema::dir` folder runs the shipped competency backfill on the generated sample.
#[test]
fn schema_app_is_a_schema_folder_like_any_apps() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/app");
    let schema = Schema::dir(dir);
    assert_eq!(
        schema.dialects().expect("schema/app"),
        vec![Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite]
    );
    Kit::new()
        .schema(schema)
        .seed(backfill::testkit::sample_data)
        .dialects(&[Dialect::Sqlite])
        .exercise(V_COMPETENCY);
}
