//! One batch of a shipped migration reads only its key range (issue 24): the server's own plan of the
//! batch statement, on generated data large enough that a planner prefers a full scan where the
//! statement allows one, names no full scan of any table. Plans, never timings: a plan is the cause
//! of a batch's cost growing with the table, and the same on a busy machine as on an idle one.

mod common;

use backfill::db::{Dialect, Session, Value};
use backfill::kit::migration::{Context, DataMigration};
use backfill::kit::version_backfill::VersionBackfill;
use backfill::registry::generated::v202611230001__competency_versions::MIGRATION as COMPETENCIES;
use backfill::registry::generated::v202611230002__role_versions::MIGRATION as ROLES;
use common::{Kind, TestDb};

/// Enough rows that PostgreSQL hashes a whole table rather than probe it by key for a batch's range.
const COMPETENCIES_GENERATED: u64 = 20_000;
/// A batch in the middle of the key range.
const RANGE: (i64, i64) = (10_001, 10_500);

fn context(version: i64, stage: Option<&str>) -> Context {
    Context {
        version,
        run_id: uuid::Uuid::nil(),
        run_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 6).expect("a date"),
        group: None,
        ledger_rows: 0,
        stage: stage.map(str::to_string),
    }
}

/// The plan of one apply batch of `m` over `RANGE` (reading the run's `stage`, if given), one line
/// per row the server returned.
fn batch_plan(
    s: &mut dyn Session,
    m: &VersionBackfill,
    version: i64,
    stage: Option<&str>,
) -> Vec<String> {
    let d = s.dialect();
    let explain = match d {
        Dialect::Sqlite => "EXPLAIN QUERY PLAN",
        _ => "EXPLAIN",
    };
    let sql = format!(
        "{explain} {}",
        m.insert_sql(d, true, &context(version, stage))
    );
    let mut params = vec![Value::Text("2026-12-06".into())];
    for _ in 0..3 {
        params.extend([Value::Int(RANGE.0), Value::Int(RANGE.1)]);
    }
    let rows = s
        .query(&sql, &params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .map(|row| {
            let cells: Vec<String> = row
                .into_iter()
                .map(|v| v.as_str().map_or_else(|| format!("{v:?}"), str::to_string))
                .collect();
            cells.join(" | ")
        })
        .collect()
}

/// The lines of `plan` that read a whole table (or a whole index).
fn full_scans(kind: Kind, plan: &[String]) -> Vec<String> {
    match kind {
        // A scan node without a condition on its index reads all of it.
        Kind::Postgres => {
            let mut out = Vec::new();
            for (i, line) in plan.iter().enumerate() {
                let node = line.trim_start().trim_start_matches("->  ");
                let indexed = ["Index Scan", "Index Only Scan", "Bitmap Index Scan"]
                    .iter()
                    .any(|n| node.starts_with(n));
                let conditioned = plan[i + 1..]
                    .iter()
                    .take_while(|l| !l.contains("->"))
                    .any(|l| l.contains("Index Cond"));
                if node.starts_with("Seq Scan") || (indexed && !conditioned) {
                    out.push(line.clone());
                }
            }
            out
        }
        // `type` (the fourth column) ALL is a table scan, `index` a full index scan; a derived
        // table of the batch's own rows is not one of the app's tables.
        Kind::Mariadb => plan
            .iter()
            .filter(|l| {
                let cols: Vec<&str> = l.split(" | ").collect();
                let table = cols.get(2).copied().unwrap_or("");
                let access = cols.get(3).copied().unwrap_or("");
                !table.starts_with("<derived") && (access == "ALL" || access == "index")
            })
            .cloned()
            .collect(),
        // `SCAN x` reads all of x; `SEARCH x USING …` reads by key. A subquery's materialized
        // rows (`SCAN s`, `SCAN p`) are the batch's own.
        Kind::Sqlite => plan
            .iter()
            .filter(|l| {
                let detail = l.rsplit(" | ").next().unwrap_or("");
                let scanned = detail.strip_prefix("SCAN ").unwrap_or("");
                !scanned.is_empty() && !matches!(scanned.split(' ').next(), Some("s" | "p"))
            })
            .cloned()
            .collect(),
    }
}

fn loaded(kind: Kind, test: &str) -> TestDb {
    let t = TestDb::with_app(kind, test);
    common::seed_generated(&t, COMPETENCIES_GENERATED);
    // Statistics as a live table has them (autovacuum / InnoDB's own sampling on a real server).
    match kind {
        Kind::Postgres => t.exec("ANALYZE"),
        Kind::Mariadb => {
            for table in backfill::fixtures::TABLES {
                t.rows(&format!("ANALYZE TABLE {table}"));
            }
        }
        Kind::Sqlite => t.exec("ANALYZE"),
    }
    t
}

fn assert_batches_read_their_range(kind: Kind, test: &str) {
    let t = loaded(kind, test);
    let mut s = t.session();
    for (m, version) in [
        (&COMPETENCIES, common::V_COMPETENCY),
        (&ROLES, common::V_ROLE),
    ] {
        // A run's stage, as apply builds it: PostgreSQL's batches read it instead of the links.
        let name = format!("backfill_stage_{version}_test");
        let staged = m
            .stage(s.as_mut(), &context(version, None), &name)
            .unwrap_or_else(|e| panic!("{kind:?}: staging V{version}: {e}"));
        assert_eq!(
            staged,
            kind == Kind::Postgres,
            "{kind:?}: V{version} staged"
        );
        let mut stages = vec![None];
        if staged {
            stages.push(Some(name.as_str()));
        }
        for stage in stages {
            let plan = batch_plan(s.as_mut(), m, version, stage);
            let scans = full_scans(kind, &plan);
            assert!(
                scans.is_empty(),
                "{kind:?}: one batch of V{version} ({}, stage {stage:?}) reads a whole table: {scans:#?}\nplan:\n{}",
                m.entity,
                plan.join("\n")
            );
        }
    }
}

#[test]
fn postgres_batch_reads_only_its_range() {
    assert_batches_read_their_range(Kind::Postgres, "batch_plan");
}

#[test]
fn mariadb_batch_reads_only_its_range() {
    assert_batches_read_their_range(Kind::Mariadb, "batch_plan");
}

#[test]
fn sqlite_batch_reads_only_its_range() {
    assert_batches_read_their_range(Kind::Sqlite, "batch_plan");
}

/// The UPDATE shape's one statement on PostgreSQL (write and journal a batch) joins nothing the
/// planner could get wrong: the rows were written after the table's statistics were taken (an
/// import the app just ran), so it expects one row where a batch has thousands, and a join of the
/// statement's two CTEs went quadratic (a nested loop, 25 s for a batch of 20,000 rows at 1M).
#[test]
fn postgres_update_batch_with_stale_statistics_joins_no_ctes() {
    use backfill::kit::update::UpdateBackfill;
    let t = TestDb::new(Kind::Postgres, "batch_plan_update");
    t.exec("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, tidy TEXT NULL)");
    t.exec(
        "INSERT INTO notes SELECT i, 'note ' || i, 'NOTE ' || i FROM generate_series(1, 1000) i",
    );
    t.exec("ANALYZE notes"); // no row without a tidy body: the planner expects none
    t.exec("INSERT INTO notes SELECT i, 'note ' || i, NULL FROM generate_series(1001, 21000) i");
    t.create_ledger();
    let m = UpdateBackfill {
        table: "notes",
        key: "id",
        columns: &["tidy"],
        values: &["upper(t.body)"],
        only: Some("t.tidy IS NULL"),
        skip: None,
    };
    let mut s = t.session();
    let sql = m
        .journaled_batch_sql(s.as_mut(), 202612070001)
        .expect("the statement")
        .expect("PostgreSQL writes and journals in one statement");
    let mut params: Vec<Value> = [1, 21_000, 1, 21_000].map(Value::Int).to_vec();
    params.extend(["00000000-0000-0000-0000-000000000000", "notes", "id"].map(Value::from));
    let plan: Vec<String> = s
        .query(&format!("EXPLAIN {sql}"), &params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|r| r.first().and_then(|v| v.as_str().map(str::to_string)))
        .collect();
    let text = plan.join("\n");
    let ctes_scanned = plan.iter().filter(|l| l.contains("CTE Scan")).count();
    assert!(
        !text.contains("Join Filter") && ctes_scanned == 2,
        "a batch's plan joins its CTEs:\n{text}"
    );
    // The statement does what it says: every row written, one entry each.
    s.begin(false).expect("begin");
    assert_eq!(s.execute(&sql, &params).expect("the batch"), 20_000);
    s.commit().expect("commit");
    assert_eq!(
        t.int("SELECT COUNT(*) FROM notes WHERE tidy = upper(body)"),
        21_000
    );
    assert_eq!(t.int("SELECT COUNT(*) FROM backfill_undo"), 20_000);
}

/// `kit::stage::fill` on every dialect: the table holds the select's rows, keyed (a second row of
/// one key is refused). The shipped migrations stage on PostgreSQL only; an app's may elsewhere.
fn stage_fill_builds_a_keyed_table(kind: Kind) {
    let t = TestDb::with_app(kind, "stage_fill");
    common::seed_generated(&t, 300);
    let mut s = t.session();
    let name = "backfill_stage_1_fill";
    let select =
        "SELECT id AS entity_id, organization_id AS scenario_id FROM competencies ORDER BY id";
    backfill::kit::stage::fill(s.as_mut(), name, "entity_id", select)
        .unwrap_or_else(|e| panic!("{kind:?}: fill: {e}"));
    assert_eq!(
        t.int(&format!("SELECT COUNT(*) FROM {name}")),
        t.int("SELECT COUNT(*) FROM competencies")
    );
    let twice =
        format!("INSERT INTO {name} (entity_id, scenario_id) SELECT MIN(entity_id), 0 FROM {name}");
    assert!(
        s.execute(&twice, &[]).is_err(),
        "{kind:?}: the stage has no key"
    );
    assert_eq!(t.stage_tables(), 1);
}

on_every_dialect!(stage_fill_builds_a_keyed_table);
