//! Rows written as the app itself writes them, and checkable as the README says: UTC wall-clock
//! timestamps in the app's session time zone (a MariaDB server at +05:00 of the test's own), encrypted
//! role descriptions copied as ciphertext, and the README's verification SQL, read from README.md,
//! run against an applied database of each dialect.

mod common;
#[path = "common/own_server.rs"]
mod own_server;

use backfill::db::{self, Dialect, Target, Value};
use chrono::{Duration, NaiveDateTime, Timelike, Utc};
use common::{seed_edge_cases, seed_generated, Kind, TestDb, V_COMPETENCY, V_ROLE};
use own_server::MariaServer;
use std::collections::{BTreeMap, BTreeSet};

fn name(kind: Kind, test: &str) -> String {
    format!("fid_{test}_{}", kind as u8)
}

fn dialect(t: &TestDb) -> Dialect {
    t.session().dialect()
}

/// `WHERE` condition: rows marked by migration `version` (the tests' own reading, not the tool's).
fn ours(t: &TestDb, version: i64) -> String {
    format!(
        "{} = '{version}'",
        dialect(t).json_text("metadata", "migration")
    )
}

// ---------------------------------------------------------------- timestamps

/// Now in UTC, whole seconds (the app's columns have no fraction).
fn utc_now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    now.with_nanosecond(0).unwrap_or(now)
}

fn sql_text(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A timestamp column as read back: a timestamp from the server drivers, text from SQLite.
fn timestamp(v: &Value) -> NaiveDateTime {
    match v {
        Value::Timestamp(t) => *t,
        Value::Text(s) => NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("timestamp text {s:?}: {e}")),
        other => panic!("not a timestamp: {other:?}"),
    }
}

/// Applies the competency backfill and checks that every row it wrote reads back (in this
/// session's zone, as the app reads it) as the UTC wall-clock time of the apply.
fn apply_and_check_times(t: &TestDb) -> (NaiveDateTime, NaiveDateTime) {
    let before = utc_now();
    t.run(&["apply", &V_COMPETENCY.to_string()]).expect(0);
    let after = utc_now() + Duration::seconds(1);
    let rows = t.rows(&format!(
        "SELECT created_at, updated_at FROM competency_versions WHERE {}",
        ours(t, V_COMPETENCY)
    ));
    assert!(!rows.is_empty());
    for r in &rows {
        let (created, updated) = (timestamp(&r[0]), timestamp(&r[1]));
        assert!(
            before <= created && created <= after,
            "created_at {created} is not the UTC time of the apply ({before} .. {after})"
        );
        assert_eq!(created, updated, "nothing edited yet");
    }
    (before, after)
}

fn timestamps_are_utc_wall_clock(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "utc"));
    seed_edge_cases(&t);
    apply_and_check_times(&t);
}

/// A MariaDB server whose default time zone is +05:00. The app (Laravel, no `timezone` in its
/// database config) writes UTC wall-clock strings into `timestamp` columns in that session zone; the
/// rows `backfill` writes must read back the same way, and an app edit made within the five hours
/// must still trip revert's edited-row guard. The app's writes and reads go through the `mariadb`
/// client in the server's default settings, never through backfill's driver.
#[test]
fn mariadb_server_in_another_time_zone() {
    let srv = MariaServer::start("tz-my", |_| vec!["--default-time-zone=+05:00".to_string()]);
    srv.sql(
        "CREATE USER 'bf_tz'@'%' IDENTIFIED BY 'tz-secret'; GRANT ALL ON *.* TO 'bf_tz'@'%'; \
         CREATE DATABASE bf_tz CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
    );
    let app = |sql: &str| srv.query(&format!("USE bf_tz; {sql}"));
    assert_eq!(app("SELECT @@session.time_zone"), "+05:00");
    let url = format!("mysql://bf_tz:tz-secret@127.0.0.1:{}/bf_tz", srv.port);
    let mut s = db::connect(&Target::parse(&url).expect("url")).expect("connect");
    backfill::fixtures::load_schema(s.as_mut()).expect("app schema");
    drop(s);
    let t = TestDb::wrap_for_seeding(&url);
    seed_edge_cases(&t);
    // A row the app writes at this moment: Carbon's UTC now as text, in the server's zone.
    let app_now = sql_text(utc_now());
    app(&format!(
        "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, created_at, updated_at) \
         VALUES (1, 5, 'written by the app', 'stable', '{app_now}', '{app_now}')"
    ));
    let before = utc_now();
    let v = V_COMPETENCY.to_string();
    t.run(&["apply", &v]).expect(0);
    let after = utc_now() + Duration::seconds(1);
    // As the app reads them: the UTC wall-clock time of the apply, created_at = updated_at.
    let ours_sql = ours(&t, V_COMPETENCY);
    let read = app(&format!(
        "SELECT created_at, updated_at FROM competency_versions WHERE {ours_sql}"
    ));
    assert_eq!(read.lines().count(), 3, "{read}");
    for line in read.lines() {
        let (created, updated) = line.split_once('\t').expect("two columns");
        let created = NaiveDateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|e| panic!("{created}: {e}"));
        assert!(
            before <= created && created <= after,
            "the app reads created_at {created}, not the UTC time of the apply ({before} .. {after})"
        );
        assert_eq!(created.format("%Y-%m-%d %H:%M:%S").to_string(), updated);
    }
    // Stored alike, too: the same instant as the app's row, to within the apply's duration.
    let gap: i64 = app(&format!(
        "SELECT MAX(ABS(UNIX_TIMESTAMP(v.created_at) - UNIX_TIMESTAMP(a.created_at))) \
         FROM competency_versions v JOIN competency_versions a ON a.name = 'written by the app' WHERE {}",
        ours_sql.replace("metadata", "v.metadata")
    ))
    .parse()
    .expect("seconds");
    assert!(
        gap <= (after - before).num_seconds() + 1,
        "stored {gap} s apart from the app's row"
    );
    // backfill's own sessions keep the server's zone, as the app's do.
    assert_eq!(
        t.text("SELECT @@session.time_zone").as_deref(),
        Some("+05:00")
    );
    // The ledger's own times are DATETIME, written in UTC from the client: no zone moves them.
    let started = t.rows("SELECT started_at FROM backfill_runs WHERE action = 'apply'");
    let started = timestamp(&started[0][0]);
    assert!(
        before - Duration::seconds(1) <= started && started <= after,
        "ledger started_at {started} ({before} .. {after})"
    );
    // The app edits one of our rows an hour later (within the five hours of offset).
    let id = t.int("SELECT id FROM competency_versions WHERE competency_id = 2");
    let edited_at = sql_text(utc_now() + Duration::hours(1));
    app(&format!(
        "UPDATE competency_versions SET description = 'edited in the app', updated_at = '{edited_at}' WHERE id = {id}"
    ));
    let refused = t.run(&["revert", &v]);
    let line = refused.one_line_error(5);
    assert!(line.contains(&format!("ids: {id}")), "{line}");
    let count = format!("SELECT COUNT(*) FROM competency_versions WHERE {ours_sql}");
    assert_eq!(t.int(&count), 3, "nothing deleted");
    t.run(&["revert", &v, "--force"]).expect(0);
    assert_eq!(t.int(&count), 0);
    assert_eq!(
        app("SELECT COUNT(*) FROM competency_versions WHERE name = 'written by the app'"),
        "1"
    );
}

// ---------------------------------------------------------------- encrypted role descriptions

/// Standard base64 (with padding) decoded; `None` when `s` is not base64.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in body.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Whether `s` is a Laravel Crypt payload: base64 of `{"iv","value","mac","tag"}` with a 16-byte IV
/// and a ciphertext of whole AES blocks.
fn is_laravel_payload(s: &str) -> bool {
    let Some(json) = base64_decode(s) else {
        return false;
    };
    let Ok(p) = serde_json::from_slice::<serde_json::Value>(&json) else {
        return false;
    };
    let field = |k: &str| p[k].as_str().and_then(base64_decode);
    let (Some(iv), Some(value)) = (field("iv"), field("value")) else {
        return false;
    };
    let mac_ok = p["mac"]
        .as_str()
        .is_some_and(|m| m.len() == 64 && m.bytes().all(|b| b.is_ascii_hexdigit()));
    iv.len() == 16
        && !value.is_empty()
        && value.len().is_multiple_of(16)
        && mac_ok
        && p["tag"].is_string()
}

fn role_descriptions_stay_encrypted(kind: Kind) {
    let t = TestDb::with_app(kind, &name(kind, "crypt"));
    seed_generated(&t, 300);
    let roles: BTreeMap<i64, Option<String>> = t
        .rows("SELECT id, description FROM roles")
        .into_iter()
        .map(|r| (r[0].as_i64().expect("id"), r[1].as_str().map(String::from)))
        .collect();
    let encrypted = roles
        .values()
        .flatten()
        .filter(|d| is_laravel_payload(d))
        .count();
    assert!(
        encrypted > 0 && roles.values().flatten().count() == encrypted,
        "the mirror stores every role description as a Crypt payload"
    );
    // The app's own earlier backfill left decrypted text in role_versions: the plaintexts.
    let plaintexts: BTreeSet<String> = t
        .rows("SELECT description FROM role_versions WHERE description IS NOT NULL")
        .into_iter()
        .filter_map(|r| r[0].as_str().map(String::from))
        .filter(|d| !is_laravel_payload(d))
        .collect();
    assert!(
        !plaintexts.is_empty(),
        "the fixture models the old command's plaintext rows"
    );
    t.run(&["apply", &V_ROLE.to_string()]).expect(0);
    let written = t.rows(&format!(
        "SELECT role_id, description FROM role_versions WHERE {}",
        ours(&t, V_ROLE)
    ));
    assert!(!written.is_empty());
    let mut copied = 0;
    for r in &written {
        let role = r[0].as_i64().expect("role_id");
        let description = r[1].as_str();
        assert_eq!(
            description,
            roles[&role].as_deref(),
            "role {role}: the description is copied as stored"
        );
        if let Some(d) = description {
            assert!(is_laravel_payload(d), "role {role}: plaintext written: {d}");
            assert!(!plaintexts.iter().any(|p| d.contains(p.as_str())));
            copied += 1;
        }
    }
    assert!(copied > 0);
    // Byte for byte in the database too (MariaDB: as binary, so case and trailing spaces count).
    let same = match kind {
        Kind::Postgres => "v.description IS NOT DISTINCT FROM r.description",
        Kind::Mariadb => "CAST(v.description AS BINARY) <=> CAST(r.description AS BINARY)",
        Kind::Sqlite => "v.description IS r.description",
    };
    let differ = t.int(&format!(
        "SELECT COUNT(*) FROM role_versions v JOIN roles r ON r.id = v.role_id WHERE {} AND NOT ({same})",
        ours(&t, V_ROLE).replace("metadata", "v.metadata")
    ));
    assert_eq!(differ, 0);
}

// ---------------------------------------------------------------- the README's verification SQL

const README: &str = include_str!("../README.md");

/// The README's queries for `kind`, each with its `-- [check]` label.
fn readme_queries(kind: Kind) -> Vec<(String, String)> {
    let section = README
        .split("\n## Verifying by hand\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a `## Verifying by hand` section");
    let label = match kind {
        Kind::Postgres => "-- PostgreSQL",
        Kind::Mariadb => "-- MySQL / MariaDB",
        Kind::Sqlite => "-- SQLite",
    };
    let block = section
        .split("```sql\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .find(|b| b.lines().next() == Some(label))
        .unwrap_or_else(|| panic!("README.md: no ```sql block starting `{label}`"));
    block
        .split(';')
        .filter_map(|stmt| {
            let sql: Vec<&str> = stmt
                .lines()
                .filter(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
                .collect();
            if sql.is_empty() {
                return None;
            }
            let key = stmt
                .lines()
                .find_map(|l| l.trim().strip_prefix("-- [")?.strip_suffix(']'))
                .unwrap_or_else(|| panic!("README.md: unlabelled query {stmt}"));
            Some((key.to_string(), sql.join("\n")))
        })
        .collect()
}

/// What each README check must count, from the table's rows read and parsed here.
struct Expected {
    backfill_rows: i64,
    written: i64,
    per_scenario: BTreeMap<i64, i64>,
    missing: i64,
    doubled: i64,
    no_group: i64,
}

fn expected(t: &TestDb) -> Expected {
    let rows = t.rows("SELECT competency_id, metadata, version_group_id FROM competency_versions");
    let mut e = Expected {
        backfill_rows: 0,
        written: 0,
        per_scenario: BTreeMap::new(),
        missing: t.expected_competencies().len() as i64,
        doubled: 0,
        no_group: 0,
    };
    let mut per_competency: BTreeMap<i64, i64> = BTreeMap::new();
    for r in rows {
        let Some(meta) = r[1]
            .as_str()
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        else {
            continue;
        };
        if meta["source"] != "backfill" {
            continue;
        }
        e.backfill_rows += 1;
        if meta["migration"] != V_COMPETENCY {
            continue;
        }
        e.written += 1;
        *e.per_scenario
            .entry(meta["scenario_id"].as_i64().expect("scenario_id"))
            .or_default() += 1;
        *per_competency
            .entry(r[0].as_i64().expect("competency_id"))
            .or_default() += 1;
        e.no_group += i64::from(r[2] == Value::Null);
    }
    e.doubled = per_competency.values().filter(|&&n| n > 1).count() as i64;
    e
}

fn readme_verification_sql(kind: Kind) {
    let queries = readme_queries(kind);
    let keys: BTreeSet<&str> = queries.iter().map(|(k, _)| k.as_str()).collect();
    let all = [
        "backfill-rows",
        "written",
        "per-scenario",
        "missing",
        "doubled",
        "no-group",
    ];
    assert_eq!(keys, all.into_iter().collect(), "README.md, {kind:?}");
    let t = TestDb::with_app(kind, &name(kind, "readme"));
    seed_generated(&t, 300);
    let v = V_COMPETENCY;
    // Another writer's look-alike: `source` with a trailing space is not `backfill`.
    t.exec(&format!(
        "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, metadata, created_at, updated_at) \
         VALUES (1, NULL, 'look-alike', 'stable', '{{\"source\":\"backfill \",\"scenario_id\":1,\"migration\":{v}}}', \
         '2026-01-15 10:00:00', '2026-01-15 10:00:00')"
    ));
    t.run(&["apply", &v.to_string()]).expect(0);
    let applied = expected(&t);
    assert_eq!(applied.written, t.rows_applied(v));
    assert_eq!(
        (applied.missing, applied.doubled, applied.no_group),
        (0, 0, 0)
    );
    // Something for each check to find: one competency's version deleted, another's doubled
    // without a version group.
    let first = t.int(&format!(
        "SELECT MIN(competency_id) FROM competency_versions WHERE {}",
        ours(&t, v)
    ));
    let last = t.int(&format!(
        "SELECT MAX(competency_id) FROM competency_versions WHERE {}",
        ours(&t, v)
    ));
    t.exec(&format!(
        "DELETE FROM competency_versions WHERE competency_id = {first}"
    ));
    t.exec(&format!(
        "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, metadata, created_at, updated_at) \
         SELECT organization_id, competency_id, name, evolution_state, metadata, created_at, updated_at \
         FROM competency_versions WHERE competency_id = {last}"
    ));
    let e = expected(&t);
    assert_eq!((e.missing, e.doubled, e.no_group), (1, 1, 1));
    assert!(e.backfill_rows > e.written, "the app's other writers' rows");
    for (key, sql) in &queries {
        let what = format!("README.md {kind:?} [{key}]: {sql}");
        if key == "per-scenario" {
            let got: BTreeMap<i64, i64> = t
                .rows(sql)
                .iter()
                .map(|r| {
                    (
                        r[0].as_i64().expect("scenario"),
                        r[1].as_i64().expect("count"),
                    )
                })
                .collect();
            assert_eq!(got, e.per_scenario, "{what}");
            continue;
        }
        let want = match key.as_str() {
            "backfill-rows" => e.backfill_rows,
            "written" => e.written,
            "missing" => e.missing,
            "doubled" => e.doubled,
            "no-group" => e.no_group,
            other => panic!("README.md: unknown check [{other}]"),
        };
        assert_eq!(t.int(sql), want, "{what}");
    }
    // verify --data finds the same problems (as data drift: exit 3 only with --strict).
    let out = t.run(&["verify", "--data", "--strict"]);
    out.expect(3);
    for line in [
        "1 eligible competencies still have no version",
        "1 competencies have more than one backfilled version",
        "1 backfilled rows lack version_group_id",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
}

on_every_dialect!(
    timestamps_are_utc_wall_clock,
    role_descriptions_stay_encrypted,
    readme_verification_sql,
);
