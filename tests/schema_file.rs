//! The schema-file loader on real servers: a Laravel `schema:dump` of each dialect loads faithfully
//! (pg_dump's settings, `\restrict`, `COPY` data, functions; mysqldump's conditional comments and
//! `DELIMITER` bodies), and a bad file fails naming the file, the line and the statement, leaving
//! nothing behind where the dialect allows.

mod common;

use backfill::db::schema_file::Schema;
use common::{Kind, TestDb};
use std::path::PathBuf;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn laravel_dump_loads(kind: Kind) {
    let t = TestDb::new(kind, "schema_file_laravel");
    let mut s = t.session();
    Schema::laravel_dump(data("laravel"))
        .load(s.as_mut())
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    // On the same session, unqualified names resolve again (pg_dump emptied search_path).
    let migrations = s
        .query_scalar("SELECT COUNT(*) FROM migrations WHERE batch = 2", &[])
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    assert_eq!(migrations.as_i64(), Some(2), "{kind:?}");
    // The tables of the dump (the HR app's when it was made), not of today's fixtures.
    let dumped = [
        "scenarios",
        "competencies",
        "capabilities",
        "capability_competencies",
        "competency_versions",
        "roles",
        "scenario_roles",
        "role_versions",
        "scenario_generations",
    ];
    for table in dumped {
        assert!(t.has_table(table), "{kind:?}: {table} missing");
    }
    let last = t.text("SELECT migration FROM migrations ORDER BY id DESC LIMIT 1");
    assert_eq!(
        last.as_deref(),
        Some("2026_02_10_120000_add_scenario_id_to_scenario_generations")
    );
    // The dump's sequences and defaults work: a row gets the next id.
    t.exec("INSERT INTO migrations (migration, batch) VALUES ('next', 3)");
    assert_eq!(t.int("SELECT MAX(id) FROM migrations"), 12, "{kind:?}");
}

/// What apps add by hand beside their tables (a function) came through too.
fn app_function_loads(kind: Kind) -> TestDb {
    let t = TestDb::new(kind, "schema_file_objects");
    Schema::laravel_dump(data("laravel"))
        .load(t.session().as_mut())
        .expect("load");
    let label = t.text("SELECT scenario_label(7)");
    assert_eq!(label.as_deref(), Some("Scenario 7"), "{kind:?}");
    t
}

#[test]
fn laravel_pgsql_dump_loads_on_postgres() {
    laravel_dump_loads(Kind::Postgres);
    let t = app_function_loads(Kind::Postgres);
    let comment = t.text("SELECT col_description('competency_versions'::regclass, 10)");
    assert!(comment.is_some_and(|c| c.contains("; the app's own writers")));
}

#[test]
fn laravel_mysql_dump_loads_on_mariadb() {
    laravel_dump_loads(Kind::Mariadb);
    app_function_loads(Kind::Mariadb).exec("CALL purge_embryo_versions(1)");
}

#[test]
fn laravel_sqlite_dump_loads_on_sqlite() {
    laravel_dump_loads(Kind::Sqlite);
}

/// The second statement fails: the message names the file, its line and the statement, and on
/// PostgreSQL and SQLite the first statement's table is gone again.
fn bad_file_is_named(kind: Kind) {
    let dir = tempdir(kind);
    let file = dir.join("app.sql");
    let sql = "-- the app's tables\nCREATE TABLE teams (id INT PRIMARY KEY);\n\n\
               INSERT INTO teams (id, nmae) VALUES (1, 'a typo; in a column name');\n";
    std::fs::write(&file, sql).expect("write");
    let t = TestDb::new(kind, "schema_file_bad");
    let err = Schema::file(&file)
        .load(t.session().as_mut())
        .expect_err("a bad schema must fail");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}:4: ", file.display()))
            && message.contains("(statement: INSERT INTO teams (id, nmae)")
            && !message.contains('\n'),
        "{kind:?}: {message}"
    );
    if kind != Kind::Mariadb {
        assert!(!t.has_table("teams"), "{kind:?}: the load was not undone");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir(kind: Kind) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bf-schema-file-{}-{kind:?}-{}",
        common::suite(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn bad_file_is_named_postgres() {
    bad_file_is_named(Kind::Postgres);
}

#[test]
fn bad_file_is_named_mariadb() {
    bad_file_is_named(Kind::Mariadb);
}

#[test]
fn bad_file_is_named_sqlite() {
    bad_file_is_named(Kind::Sqlite);
}

#[test]
fn a_missing_folder_or_dialect_is_a_usage_error() {
    let t = TestDb::new(Kind::Sqlite, "schema_file_missing");
    let missing = Schema::dir(data("no_such_folder"))
        .load(t.session().as_mut())
        .expect_err("missing folder");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let only_pg = Schema::files([(
        backfill::db::Dialect::Postgres,
        data("laravel/pgsql-schema.sql"),
    )]);
    let none = only_pg
        .load(t.session().as_mut())
        .expect_err("no sqlite file");
    assert!(none.to_string().contains("has no SQL for Sqlite"), "{none}");
    assert_eq!(
        only_pg.dialects().expect("dialects"),
        vec![backfill::db::Dialect::Postgres]
    );
}
