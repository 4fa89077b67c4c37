//! The two version backfills (competency and role versions) on every dialect, asserted on the exact rows they write.

mod common;
use backfill::fixtures::TABLES;
use common::{seed_edge_cases, seed_generated, Kind, TestDb, V_COMPETENCY, V_ROLE};
use std::collections::BTreeSet;

fn name(kind: Kind, test: &str) -> String {
    format!("mig_{test}_{}", kind as u8)
}

fn set(pairs: &[(i64, i64)]) -> BTreeSet<(i64, i64)> {
    pairs.iter().copied().collect()
}

fn edge_cases_write_exact_rows(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "edges"));
    seed_edge_cases(&t);
    let v = V_COMPETENCY.to_string();
    let plan = t.run(&["--format", "json", "plan", &v]);
    plan.expect(0);
    let p = &plan.json()["plans"][0]["plan"];
    assert_eq!(p["total"], 3);
    assert_eq!(p["skipped"], 1, "competency 3 already has a version");
    let groups: Vec<(i64, i64)> = p["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_i64().unwrap(), g["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        groups,
        [(3, 1), (5, 2)],
        "sorted per scenario; competency 1 counted once, under scenario 3"
    );
    t.run(&["apply", &v]).expect(0);
    // 1: scenarios 7 and 3 -> 3. 2: org 2, NULL description. 3: skipped. 4: NULL scenario only. 5: no link.
    assert_eq!(t.marked_competencies(), set(&[(1, 3), (2, 5), (6, 5)]));
    let rows = t.rows(&format!(
        "SELECT competency_id, organization_id, name, description, evolution_state, created_by, version_group_id, \
         CAST(effective_from AS CHAR(10)) FROM competency_versions WHERE {} = '{v}' ORDER BY competency_id",
        t.session().dialect().json_text("metadata", "migration")
    ));
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let expect = [
        (1, 1, "Négociation « interculturelle »", Some("d1")),
        (2, 2, "O'Brien \"quoted\" skill", None),
        (6, 2, "数据 分析 — ünïcode", Some("d6")),
    ];
    let mut groups = BTreeSet::new();
    for (row, (id, org, name, desc)) in rows.iter().zip(expect) {
        assert_eq!(row[0].as_i64(), Some(id));
        assert_eq!(
            row[1].as_i64(),
            Some(org),
            "organization copied from the competency"
        );
        assert_eq!(row[2].as_str(), Some(name));
        assert_eq!(row[3].as_str(), desc);
        assert_eq!(row[4].as_str(), Some("new_embryo"));
        assert_eq!(row[5], backfill::db::Value::Null, "created_by");
        let uuid =
            uuid::Uuid::parse_str(row[6].as_str().expect("version_group_id")).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        let text = row[6].as_str().unwrap_or_default();
        assert_eq!(text, text.to_lowercase(), "Laravel's Str::uuid() form");
        groups.insert(uuid);
        assert_eq!(row[7].as_str(), Some(today.as_str()));
    }
    assert_eq!(rows.len(), 3);
    assert_eq!(groups.len(), 3, "a fresh version_group_id per row");
    let meta = t
        .text("SELECT metadata FROM competency_versions WHERE competency_id = 1")
        .unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["source"], "backfill");
    assert_eq!(meta["scenario_id"], 3, "scenario_id is a JSON number");
    assert_eq!(meta["migration"], V_COMPETENCY);
    assert!(uuid::Uuid::parse_str(meta["run_id"].as_str().unwrap()).is_ok());
    // role_versions: role 1 in scenarios 4 and 2 -> 2; role 2 already versioned; role 3 in none.
    t.run(&["apply"]).expect(0);
    assert_eq!(t.marked("role_versions", "role_id", V_ROLE), set(&[(1, 2)]));
}

fn runbook_verification_queries(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "runbook"));
    seed_edge_cases(&t);
    t.run(&["apply"]).expect(0);
    let sql = match kind {
        Kind::Postgres => "SELECT COUNT(*) FROM competency_versions WHERE (metadata->>'source') = 'backfill'",
        Kind::Mariadb => {
            // The runbook's MySQL query, verbatim. MariaDB compares JSON_EXTRACT's result as a JSON
            // scalar, so it counts nothing, not even the app's own rows: the query is wrong, not the data.
            let verbatim = "SELECT COUNT(*) FROM competency_versions WHERE JSON_EXTRACT(metadata, '$.source') = '\"backfill\"'";
            assert_eq!(t.int(verbatim), 0);
            "SELECT COUNT(*) FROM competency_versions WHERE JSON_UNQUOTE(JSON_EXTRACT(metadata, '$.source')) = 'backfill'"
        }
        Kind::Sqlite => "SELECT COUNT(*) FROM competency_versions WHERE json_extract(metadata, '$.source') = 'backfill'",
    };
    assert_eq!(
        t.int(sql),
        4,
        "3 backfilled + 1 from the app's other writer"
    );
    let scenario_5 = match kind {
        Kind::Postgres => "SELECT COUNT(*) FROM competency_versions WHERE (metadata->>'scenario_id')::int = 5",
        Kind::Mariadb => "SELECT COUNT(*) FROM competency_versions WHERE JSON_EXTRACT(metadata, '$.scenario_id') = 5",
        Kind::Sqlite => "SELECT COUNT(*) FROM competency_versions WHERE json_extract(metadata, '$.scenario_id') = 5",
    };
    assert_eq!(t.int(scenario_5), 2, "per-scenario check of the runbook");
}

fn empty_database(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "empty"));
    let plan = t.run(&["--format", "json", "plan"]);
    plan.expect(0);
    assert_eq!(plan.json()["plans"][0]["plan"]["total"], 0);
    let out = t.run(&["--format", "json", "apply"]);
    out.expect(0);
    assert_eq!(out.json()["results"][0]["rows"], 0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(t.int("SELECT COUNT(*) FROM competency_versions"), 0);
}

fn plan_equals_apply_on_generated_data(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "plan_apply"));
    seed_generated(&t, 400);
    let expected = t.expected_competencies();
    let multi = t.int(
        "SELECT COUNT(*) FROM (SELECT l.competency_id FROM capability_competencies l JOIN capabilities c ON c.id = l.capability_id \
         WHERE c.discovered_in_scenario_id IS NOT NULL GROUP BY l.competency_id HAVING COUNT(DISTINCT c.discovered_in_scenario_id) > 1) m",
    );
    assert!(
        multi > 0,
        "the fixture must have competencies in two different scenarios"
    );
    let v = V_COMPETENCY.to_string();
    let plan = t.run(&["--format", "json", "plan", &v]).json();
    let p = &plan["plans"][0]["plan"];
    let planned: BTreeSet<(i64, i64)> = p["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_i64().unwrap(), g["count"].as_i64().unwrap()))
        .collect();
    for g in p["groups"].as_array().unwrap() {
        assert!(g["samples"].as_array().unwrap().len() <= 5);
    }
    t.run(&["apply", &v, "--batch-size", "37"]).expect(0);
    let written = t.marked_competencies();
    assert_eq!(written, expected);
    let mut per_scenario = std::collections::BTreeMap::new();
    for (_, s) in &written {
        *per_scenario.entry(*s).or_insert(0i64) += 1;
    }
    let applied: BTreeSet<(i64, i64)> = per_scenario.into_iter().collect();
    assert_eq!(
        planned, applied,
        "plan per scenario == rows written per scenario"
    );
    assert_eq!(p["total"].as_i64().unwrap(), written.len() as i64);
    t.run(&["verify", "--data"]).expect(0);
}

fn plan_writes_nothing(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "readonly"));
    seed_edge_cases(&t);
    // Looks create no ledger: the first run's would.
    t.create_ledger();
    t.run(&["plan"]).expect(0);
    let dump = |t: &TestDb| {
        let mut all = Vec::new();
        for table in TABLES.iter().chain(&["backfill_migrations"]) {
            all.push(format!(
                "{table}: {:?}",
                t.rows(&format!("SELECT * FROM {table} ORDER BY 1")).len()
            ));
            all.push(format!(
                "{:?}",
                t.rows(&format!("SELECT * FROM {table} ORDER BY 1"))
            ));
        }
        all
    };
    let before = dump(&t);
    t.run(&["plan"]).expect(0);
    assert_eq!(dump(&t), before);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'plan'"),
        2 * backfill::registry::all().len() as i64,
        "plans are audited"
    );
}

fn revert_spares_foreign_rows_then_reapply_matches(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "reapply"));
    seed_generated(&t, 300);
    let v = V_COMPETENCY.to_string();
    let foreign = t.int("SELECT COUNT(*) FROM competency_versions");
    t.run(&["apply", &v]).expect(0);
    let first = t.marked_competencies();
    assert!(!first.is_empty());
    t.run(&["revert", &v, "--batch-size", "50"]).expect(0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM competency_versions"),
        foreign,
        "only marked rows deleted"
    );
    t.run(&["apply", &v]).expect(0);
    assert_eq!(t.marked_competencies(), first);
    t.run(&["verify", "--data"]).expect(0);
}

fn revert_one_scenario(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "scenario"));
    seed_edge_cases(&t);
    let v = V_COMPETENCY.to_string();
    t.run(&["apply", &v]).expect(0);
    t.run(&["revert", &v, "--scenario", "5"]).expect(0);
    assert_eq!(t.marked_competencies(), set(&[(1, 3)]));
    assert_eq!(
        t.state(V_COMPETENCY).as_deref(),
        Some("applied"),
        "a one-scenario revert leaves the rest applied"
    );
    // The deploy log says which scenario was reverted.
    let log = t.run(&["--format", "markdown", "log", &v]);
    log.expect(0);
    assert!(
        log.stdout.contains("deleted 2 rows of scenario 5"),
        "{}",
        log.stdout
    );
    // The ledger agrees with the table; the data check reports the gap the operator made.
    // Data drift, not ledger damage: reported, and an error only under --strict.
    let drift = "data drift: V202611230001__competency_versions: competency_versions: 2 eligible competencies still have no version";
    let gap = t.run(&["verify", "--data"]);
    gap.expect(0);
    assert!(gap.stdout.contains(drift), "{}", gap.stdout);
    let gap = t.run(&["verify", "--data", "--strict"]);
    gap.expect(3);
    assert!(gap.stdout.contains(drift), "{}", gap.stdout);
    // A deploy leaves the gap alone; naming the version fills it again.
    t.run(&["apply"]).expect(0);
    assert_eq!(t.marked_competencies(), set(&[(1, 3)]));
    t.run(&["apply", &v]).expect(0);
    assert_eq!(t.marked_competencies(), set(&[(1, 3), (2, 5), (6, 5)]));
    t.run(&["verify", "--data"]).expect(0);
    t.run(&["revert", &v]).expect(0);
    assert!(t.marked_competencies().is_empty());
    let ledger = t.rows(&format!(
        "SELECT rows_applied, rows_reverted FROM backfill_migrations WHERE version = {v}"
    ));
    assert_eq!(
        ledger[0][0].as_i64(),
        ledger[0][1].as_i64(),
        "everything written was reverted: {ledger:?}"
    );
}

fn revert_refuses_edited_rows(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "edited"));
    seed_edge_cases(&t);
    let v = V_COMPETENCY.to_string();
    t.run(&["apply", &v]).expect(0);
    let id = t.int("SELECT id FROM competency_versions WHERE competency_id = 2");
    t.exec(&format!("UPDATE competency_versions SET description = 'edited by hand', updated_at = '2030-01-01 00:00:00' WHERE id = {id}"));
    let out = t.run(&["revert", &v]);
    let line = out.one_line_error(5).to_string();
    assert!(
        line.contains(&format!("ids: {id}")) && line.contains("--force"),
        "{line}"
    );
    assert_eq!(t.marked_competencies().len(), 3, "nothing deleted");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE state = 'refused'"),
        1
    );
    t.run(&["revert", &v, "--force"]).expect(0);
    assert!(t.marked_competencies().is_empty());
}

fn verify_data_catches_a_deleted_row(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "check"));
    seed_edge_cases(&t);
    t.run(&["apply"]).expect(0);
    t.run(&["verify", "--data"]).expect(0);
    t.exec("DELETE FROM competency_versions WHERE competency_id = 6");
    let out = t.run(&["verify", "--data", "--strict"]);
    out.expect(3);
    assert!(
        out.stdout.contains("2 rows carry migration"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("1 eligible competencies still have no version"),
        "{}",
        out.stdout
    );
}

/// Keys of 0 and below: PostgreSQL and SQLite accept them (MySQL's `bigint unsigned` ids refuse
/// negatives, and take 0 only under NO_AUTO_VALUE_ON_ZERO). The first batch must start below every key,
/// so plan == apply, and revert walks version ids the same way.
fn keys_at_or_below_zero(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "nonpositive"));
    let mut s = t.session();
    let mut exec = |sql: &str| {
        s.execute(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
    };
    let ids: &[i64] = if kind == Kind::Mariadb {
        exec("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')");
        &[0, 1]
    } else {
        &[-5, 0, 1]
    };
    const TS: &str = "'2026-01-15 10:00:00'";
    for sc in [2, 3] {
        exec(&format!("INSERT INTO scenarios (id, organization_id, name, created_at, updated_at) VALUES ({sc}, 1, 's{sc}', {TS}, {TS})"));
    }
    exec(&format!("INSERT INTO capabilities (id, organization_id, name, discovered_in_scenario_id, created_at, updated_at) VALUES (1, 1, 'cap', 3, {TS}, {TS})"));
    for (n, id) in ids.iter().enumerate() {
        exec(&format!("INSERT INTO competencies (id, organization_id, name, description, status, created_at, updated_at) VALUES ({id}, 1, 'c{id}', 'd{id}', 'active', {TS}, {TS})"));
        exec(&format!("INSERT INTO capability_competencies (id, scenario_id, capability_id, competency_id, created_at, updated_at) VALUES ({}, 3, 1, {id}, {TS}, {TS})", n + 1));
        exec(&format!("INSERT INTO roles (id, organization_id, name, description, created_at, updated_at) VALUES ({id}, 1, 'r{id}', NULL, {TS}, {TS})"));
        exec(&format!("INSERT INTO scenario_roles (id, scenario_id, role_id, created_at, updated_at) VALUES ({}, 2, {id}, {TS}, {TS})", n + 1));
    }
    match kind {
        Kind::Mariadb => {
            let refused = s.execute(&format!("INSERT INTO competencies (id, organization_id, name, status, created_at, updated_at) VALUES (-5, 1, 'neg', 'active', {TS}, {TS})"), &[]);
            assert!(refused.is_err(), "MySQL's unsigned ids refuse -5");
        }
        // Version rows with ids below zero too, ours and another writer's, so revert's walk must
        // start below them: another app writer's version of an unrelated entity at -8, and ours from
        // -7 on (SQLite's AUTOINCREMENT continues after the larger of the table's largest id and its
        // sqlite_sequence entry).
        Kind::Postgres | Kind::Sqlite => {
            for (table, fk) in [
                ("competency_versions", "competency_id"),
                ("role_versions", "role_id"),
            ] {
                s.execute(&format!("INSERT INTO {table} (id, organization_id, {fk}, name, metadata, created_at, updated_at) \
                    VALUES (-8, 1, NULL, 'other writer', '{{\"source\":\"backfill\",\"scenario_id\":3}}', {TS}, {TS})"), &[]).expect("foreign row");
                let next = match kind {
                    Kind::Postgres => {
                        format!("ALTER SEQUENCE {table}_id_seq MINVALUE -100 RESTART WITH -7")
                    }
                    _ => format!("UPDATE sqlite_sequence SET seq = -8 WHERE name = '{table}'"),
                };
                s.execute(&next, &[]).expect("next id -7");
            }
        }
    }
    drop(s);
    let expected: BTreeSet<(i64, i64)> = ids.iter().map(|&id| (id, 3)).collect();
    assert_eq!(t.expected_competencies(), expected);
    let plan = t.run(&["--format", "json", "plan"]);
    plan.expect(0);
    let plans = plan.json()["plans"].clone();
    for (i, version) in [V_COMPETENCY, V_ROLE].into_iter().enumerate() {
        let p = &plans[i]["plan"];
        assert_eq!(p["total"], ids.len(), "{version}: {p}");
        let sampled: Vec<i64> = p["groups"][0]["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .filter_map(|s| s["id"].as_i64())
            .collect();
        assert_eq!(sampled, ids, "{version}: samples start at the lowest key");
    }
    // One key per batch: every batch boundary sits on a key at or below zero.
    t.run(&["apply", "--batch-size", "1"]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
    let roles: BTreeSet<(i64, i64)> = ids.iter().map(|&id| (id, 2)).collect();
    assert_eq!(t.marked("role_versions", "role_id", V_ROLE), roles);
    assert_eq!(t.rows_applied(V_COMPETENCY), ids.len() as i64);
    if kind != Kind::Mariadb {
        assert!(
            t.int("SELECT MIN(id) FROM competency_versions WHERE competency_id IS NOT NULL") <= 0,
            "version ids at or below zero too"
        );
    }
    t.run(&["verify", "--data"]).expect(0);
    for v in [V_COMPETENCY, V_ROLE] {
        t.run(&["revert", &v.to_string(), "--batch-size", "1"])
            .expect(0);
    }
    assert!(t.marked_competencies().is_empty());
    assert!(t.marked("role_versions", "role_id", V_ROLE).is_empty());
    let foreign = i64::from(kind != Kind::Mariadb);
    for table in ["competency_versions", "role_versions"] {
        let left = t.rows(&format!("SELECT id FROM {table}"));
        assert_eq!(
            left.len() as i64,
            foreign,
            "{table}: only the other writer's row is left"
        );
        if foreign == 1 {
            assert_eq!(left[0][0].as_i64(), Some(-8));
        }
    }
}

/// Rows another writer marked almost like ours, differing only in trailing spaces (MariaDB's PAD SPACE
/// collations call `'backfill ' = 'backfill'` equal): never counted, listed or deleted as ours.
fn marker_compares_exactly(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "padspace"));
    seed_edge_cases(&t);
    let v = V_COMPETENCY.to_string();
    t.run(&["apply", &v]).expect(0);
    let run_id = t
        .text(&format!(
            "SELECT last_run_id FROM backfill_migrations WHERE version = {v}"
        ))
        .expect("run id");
    // Our migration and run in scenario 5 (which `revert --scenario 5` targets), one field padded
    // each, and edited since: revert's guard would refuse if it took them for ours.
    let insert = |meta: &str| {
        t.exec(&format!(
            "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, metadata, created_at, updated_at) \
             VALUES (1, 5, 'look-alike', 'new_embryo', '{meta}', '2026-01-15 10:00:00', '2026-02-01 10:00:00')"
        ))
    };
    insert(&format!(
        r#"{{"source":"backfill ","scenario_id":5,"migration":{v},"run_id":"{run_id}"}}"#
    ));
    insert(&format!(
        r#"{{"source":"backfill","scenario_id":5,"migration":"{v} ","run_id":"{run_id}"}}"#
    ));
    let lookalikes = "SELECT COUNT(*) FROM competency_versions WHERE name = 'look-alike'";
    // Counted as ours, they would make the table disagree with the ledger's 3 rows.
    t.run(&["verify", "--data"]).expect(0);
    // Ours by source and migration, but not of scenario 5: `--scenario 5` neither lists nor deletes it.
    insert(&format!(
        r#"{{"source":"backfill","scenario_id":"5 ","migration":{v},"run_id":"{run_id}"}}"#
    ));
    let padded_scenario = t.int("SELECT MAX(id) FROM competency_versions");
    t.run(&["revert", &v, "--scenario", "5"]).expect(0);
    assert_eq!(t.int(lookalikes), 3, "a scenario revert leaves them");
    assert_eq!(t.ledger_int(V_COMPETENCY, "rows_reverted"), 2);
    // Ours by source and migration after all: out of the way before the full revert.
    t.exec(&format!(
        "DELETE FROM competency_versions WHERE id = {padded_scenario}"
    ));
    t.run(&["revert", &v]).expect(0);
    assert_eq!(t.int(lookalikes), 2, "a full revert leaves them");
    assert_eq!(t.ledger_int(V_COMPETENCY, "rows_reverted"), 3);
    // The app's other writer's row and the look-alikes are all that is left.
    assert_eq!(t.int("SELECT COUNT(*) FROM competency_versions"), 3);
}

on_every_dialect!(
    edge_cases_write_exact_rows,
    runbook_verification_queries,
    empty_database,
    plan_equals_apply_on_generated_data,
    plan_writes_nothing,
    revert_spares_foreign_rows_then_reapply_matches,
    revert_one_scenario,
    revert_refuses_edited_rows,
    verify_data_catches_a_deleted_row,
    keys_at_or_below_zero,
    marker_compares_exactly,
);
