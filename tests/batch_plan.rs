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
