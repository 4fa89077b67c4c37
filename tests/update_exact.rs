//! UPDATE-shaped migrations are exact (issue 18, items 1-4), through the real binary on every
//! dialect: every column type each dialect has round-trips through apply and revert to the last
//! digit, byte and microsecond (`V202612060001__exact_values`); a case-only or trailing-space change
//! is a change on MariaDB too; an app edit is never taken back by a top-up and never overwritten by
//! revert (`V202612060002__lowercase_emails`).

mod common;

use common::{Kind, TestDb};

const V_VALUES: &str = "202612060001";
const V_EMAILS: &str = "202612060002";

/// `exact_values` with each dialect's column types, and rows at their edges.
fn create_values(t: &TestDb) {
    let statements: &[&str] = match t.kind {
        Kind::Postgres => &[
            // The session zone must not move a timestamptz (the issue saw 07:08 come back as 11:08).
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'America/New_York'); END $$",
            "CREATE TYPE exact_mood AS ENUM ('calm', 'glad', 'sad')",
            "CREATE TABLE exact_values (id BIGINT PRIMARY KEY, num NUMERIC, dnum NUMERIC(30,9), big BIGINT, mon MONEY, \
             ts TIMESTAMP(6), tstz TIMESTAMPTZ, tm TIME(6), dt DATE, iv INTERVAL, js JSON, jb JSONB, bin BYTEA, u UUID, \
             b BOOLEAN, e exact_mood, arr INT[], tarr TEXT[], tx TEXT, vc VARCHAR(20), ne TEXT)",
            "INSERT INTO exact_values VALUES (1, 12345678901234567.123456789, 123456789012345678901.123456789, 9223372036854775807, \
             12345.67, '2026-03-01 07:08:09.654321', '2026-03-01 07:08:09.654321+00', '23:59:58.123456', '2026-02-28', \
             '1 year 2 mons 3 days 04:05:06.789', '{\"a\":1,   \"b\":[1,2.50]}', '{\"k\": \"v\"}', '\\xdeadbeef00', \
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, 'calm', '{1,2,3}', '{\"x y\",\"\"}', 'hello  ', 'Alice', NULL)",
            "INSERT INTO exact_values VALUES (2, 2.123456789012345678, -0.000000001, -9223372036854775807, -0.01, \
             '1999-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999-08', '00:00:00.000001', '0001-01-01', '-1 days +00:00:00.000001', \
             '[]', '[]', '\\x', '00000000-0000-0000-0000-000000000000', false, 'glad', '{}', '{}', '', 'b', '')",
            "INSERT INTO exact_values (id, num) VALUES (3, 'NaN')",
            "INSERT INTO exact_values (id, num) VALUES (4, 'Infinity')",
            "INSERT INTO exact_values (id, num) VALUES (5, '-Infinity')",
            "INSERT INTO exact_values (id, num) VALUES (6, 123456789012345678901234567890.5)",
        ],
        Kind::Mariadb => &[
            "CREATE TABLE exact_values (id BIGINT PRIMARY KEY, num DECIMAL(65,30), big BIGINT, ubig BIGINT UNSIGNED, dbl DOUBLE, \
             ts TIMESTAMP(6) NULL DEFAULT NULL, dtm DATETIME(6), tm TIME(6), dt DATE, yr YEAR, js JSON, bl BLOB, vb VARBINARY(16), \
             u UUID, b BOOLEAN, e ENUM('calm','glad','sad'), st SET('a','b','c'), tx VARCHAR(50), \
             lat VARCHAR(50) CHARACTER SET latin1, ne TEXT)",
            "INSERT INTO exact_values VALUES (1, 12345678901234567.123456789, 9223372036854775807, 18446744073709551615, 0.1, \
             '2026-03-01 07:08:09.654321', '2026-03-01 07:08:09.654321', '-838:59:58.123456', '2026-02-28', 2026, \
             '{\"a\":1,   \"b\":[1,2.50]}', UNHEX('DEADBEEF00'), UNHEX('00'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1, 'calm', 'a,b', \
             'hello  ', CONCAT('caf', CHAR(233)), NULL)",
            "INSERT INTO exact_values VALUES (2, -0.000000000000000000000000000001, -9223372036854775807, 1, 4.9406564584124654e-324, \
             '1999-12-31 23:59:59.999999', '1000-01-01 00:00:00.000001', '00:00:00.000001', '1000-01-01', 1901, \
             '[]', UNHEX(''), UNHEX(''), '00000000-0000-0000-0000-000000000000', 0, 'glad', '', '', '', '')",
            "INSERT INTO exact_values (id, num) VALUES (3, 12345678901234567890123456789012345.123456789012345678901234567891)",
        ],
        Kind::Sqlite => &[
            "CREATE TABLE exact_values (id INTEGER PRIMARY KEY, num NUMERIC, big INTEGER, r REAL, ts TEXT, js TEXT, bl BLOB, \
             anyv, b BOOLEAN, tx TEXT, ne TEXT)",
            "INSERT INTO exact_values VALUES (1, 12.5, 9223372036854775807, 0.1, '2026-03-01 07:08:09.654321', \
             '{\"a\":1,   \"b\":[1,2.50]}', x'deadbeef00ff80', 7, 1, 'hello  ', NULL)",
            "INSERT INTO exact_values VALUES (2, '12345678901234567.123456789x', -9223372036854775807, 1e308, '', '[]', x'', 0.30000000000000004, 0, '', '')",
            "INSERT INTO exact_values VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, '007', NULL, NULL, NULL)",
            "INSERT INTO exact_values VALUES (4, NULL, NULL, NULL, NULL, NULL, NULL, x'c3', NULL, NULL, NULL)",
        ],
    };
    for s in statements {
        t.exec(s);
    }
}

/// The columns of `exact_values`, in the test's own exact rendering (not the code under test's).
fn value_columns(kind: Kind) -> Vec<String> {
    let names: &[&str] = match kind {
        Kind::Postgres => &[
            "num", "dnum", "big", "mon", "ts", "tstz", "tm", "dt", "iv", "js", "jb", "bin", "u",
            "b", "e", "arr", "tarr", "tx", "vc", "ne",
        ],
        Kind::Mariadb => &[
            "num", "big", "ubig", "dbl", "ts", "dtm", "tm", "dt", "yr", "js", "bl", "vb", "u", "b",
            "e", "st", "tx", "lat", "ne",
        ],
        Kind::Sqlite => &["num", "big", "r", "ts", "js", "bl", "anyv", "b", "tx", "ne"],
    };
    names
        .iter()
        .map(|c| match kind {
            // Text of the instant in UTC: independent of the session zone.
            Kind::Postgres if *c == "tstz" => {
                format!("to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
            }
            Kind::Postgres => format!("CAST({c} AS TEXT)"),
            Kind::Mariadb => format!("CONCAT(CAST({c} AS CHAR), '|', HEX({c}))"),
            Kind::Sqlite => format!("typeof({c}) || ':' || hex({c})"),
        })
        .collect()
}

/// Every row of `table`, each column in exact text, by key.
fn exact_rows(t: &TestDb, table: &str, columns: &[String]) -> Vec<Vec<Option<String>>> {
    let sql = format!("SELECT {} FROM {table} ORDER BY id", columns.join(", "));
    t.rows(&sql)
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.as_str().map(String::from))
                .collect()
        })
        .collect()
}

fn cell(t: &TestDb, sql: &str) -> String {
    t.text(sql).unwrap_or_else(|| panic!("{sql}: NULL"))
}

/// The plan's first sample, as JSON.
fn first_sample(t: &TestDb, version: &str) -> serde_json::Value {
    let plan = t
        .run(&["plan", version, "--format", "json"])
        .expect(0)
        .json();
    plan["plans"][0]["plan"]["groups"][0]["samples"][0].clone()
}

/// Apply writes the true new values, and revert puts back every old value exactly.
fn every_type_round_trips(kind: Kind) {
    let t = TestDb::new(kind, "exact_types");
    create_values(&t);
    let columns = value_columns(kind);
    let before = exact_rows(&t, "exact_values", &columns);
    let rows = before.len() as u64;
    let sample = first_sample(&t, V_VALUES);
    t.run(&["apply", V_VALUES, "--batch-size", "2"]).expect(0);
    let after = |sql: &str| cell(&t, &format!("SELECT {sql} FROM exact_values WHERE id = 1"));
    match kind {
        Kind::Postgres => {
            assert_eq!(
                sample["new_num"], "12345678901234568.123456789",
                "plan: {sample}"
            );
            assert_eq!(after("CAST(num AS TEXT)"), "12345678901234568.123456789");
            assert_eq!(
                cell(
                    &t,
                    "SELECT CAST(num AS TEXT) FROM exact_values WHERE id = 2"
                ),
                "3.123456789012345678"
            );
            assert_eq!(
                after("to_char(tstz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"),
                "2026-03-02 07:08:09.654321"
            );
            assert_eq!(after("CAST(ts AS TEXT)"), "2026-03-02 07:08:09.654321");
        }
        Kind::Mariadb => {
            assert_eq!(
                sample["new_num"], "12345678901234568.123456789000000000000000000000",
                "plan: {sample}"
            );
            assert_eq!(after("CAST(ubig AS CHAR)"), "18446744073709551614");
            assert_eq!(after("CAST(dtm AS CHAR)"), "2026-03-02 07:08:09.654321");
            assert_eq!(after("HEX(bl)"), "DEADBEEF0000FF");
        }
        Kind::Sqlite => {
            assert_eq!(after("hex(bl)"), "00FF10");
            assert_eq!(after("typeof(anyv)"), "text");
        }
    }
    let entries = t.int(&format!(
        "SELECT COUNT(*) FROM backfill_undo WHERE version = {V_VALUES}"
    ));
    assert_eq!(entries as u64, rows, "one journal entry per changed row");
    t.run(&["revert", V_VALUES, "--batch-size", "3"]).expect(0);
    let restored = exact_rows(&t, "exact_values", &columns);
    for (b, r) in before.iter().zip(&restored) {
        for ((name, b), r) in columns.iter().zip(b).zip(r) {
            assert_eq!(b, r, "{name} came back changed");
        }
    }
    assert_eq!(before, restored);
}

/// `exact_emails`, its columns in a collation that calls a case-only change and a trailing space
/// no change (MariaDB's default; SQLite's NOCASE and RTRIM; a nondeterministic ICU one on PostgreSQL).
fn create_emails(t: &TestDb) {
    let (email, note) = match t.kind {
        Kind::Postgres => {
            t.exec("CREATE COLLATION exact_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)");
            (
                "VARCHAR(100) COLLATE exact_ci",
                "VARCHAR(100) COLLATE exact_ci",
            )
        }
        Kind::Mariadb => ("VARCHAR(100)", "VARCHAR(100)"),
        Kind::Sqlite => ("VARCHAR(100) COLLATE NOCASE", "VARCHAR(100) COLLATE RTRIM"),
    };
    t.exec(&format!(
        "CREATE TABLE exact_emails (id BIGINT PRIMARY KEY, email {email}, note {note})"
    ));
    // 1: only the case differs; 2: only a trailing space; 3: nothing to do.
    t.exec(
        "INSERT INTO exact_emails VALUES (1, 'Alice@Example.COM', 'n1'), (2, 'bob@example.com', 'n2 '), \
         (3, 'carol@example.com', 'n3')",
    );
}

fn email_rows(t: &TestDb) -> Vec<Vec<Option<String>>> {
    exact_rows(t, "exact_emails", &["email".into(), "note".into()])
}

/// Entries `V_EMAILS` has in the journal.
fn journal_entries(t: &TestDb) -> i64 {
    t.int(&format!(
        "SELECT COUNT(*) FROM backfill_undo WHERE version = {V_EMAILS}"
    ))
}

fn row(email: &str, note: &str) -> Vec<Option<String>> {
    vec![Some(email.into()), Some(note.into())]
}

/// A case-only change and a trimmed trailing space are changes, whatever the collation: plan
/// counts them, apply writes them, revert restores them.
fn case_and_trailing_space_are_changes(kind: Kind) {
    let t = TestDb::new(kind, "exact_case");
    create_emails(&t);
    let before = email_rows(&t);
    let plan = t
        .run(&["plan", V_EMAILS, "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(plan["plans"][0]["plan"]["total"], 2, "{plan}");
    t.run(&["apply", V_EMAILS]).expect(0);
    assert_eq!(t.rows_applied(V_EMAILS), 2);
    assert_eq!(
        email_rows(&t),
        vec![
            row("alice@example.com", "n1"),
            row("bob@example.com", "n2"),
            row("carol@example.com", "n3")
        ]
    );
    let again = t
        .run(&["plan", V_EMAILS, "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(again["plans"][0]["plan"]["total"], 0, "{again}");
    t.run(&["revert", V_EMAILS]).expect(0);
    assert_eq!(email_rows(&t), before);
}

/// An app edit after apply: revert refuses the row (exit 5, nothing changed); a top-up that writes
/// the row again journals the app's value, so revert restores the app's value, not the one from
/// before the migration; columns the app left alone get their original back; counters stay true.
fn app_edit_survives_top_up(kind: Kind) {
    let t = TestDb::new(kind, "exact_topup");
    create_emails(&t);
    t.run(&["apply", V_EMAILS]).expect(0);
    t.exec("UPDATE exact_emails SET email = 'ALICE@New.Example' WHERE id = 1");
    let edited = email_rows(&t);
    let line = t.run(&["revert", V_EMAILS]).one_line_error(5).to_string();
    assert!(line.contains("--force"), "{line}");
    assert_eq!(email_rows(&t), edited, "a refused revert changes nothing");
    t.run(&["apply", V_EMAILS]).expect(0);
    assert_eq!(email_rows(&t)[0], row("alice@new.example", "n1"));
    assert_eq!(t.rows_applied(V_EMAILS), 2, "two rows hold our values");
    t.run(&["revert", V_EMAILS]).expect(0);
    assert_eq!(
        email_rows(&t),
        vec![
            row("ALICE@New.Example", "n1"),
            row("bob@example.com", "n2 "),
            row("carol@example.com", "n3")
        ],
        "revert restores what the app wrote, and the originals of what it did not touch"
    );
    assert_eq!(t.rows_applied(V_EMAILS), 2);
    assert_eq!(t.ledger_int(V_EMAILS, "rows_reverted"), 2);
    assert_eq!(journal_entries(&t), 0);
    // An edit the migration would leave as it is (already in lower case): a top-up does not touch
    // it, and revert still refuses it.
    t.run(&["apply", V_EMAILS]).expect(0);
    t.exec("UPDATE exact_emails SET email = 'dave@example.com' WHERE id = 1");
    t.run(&["apply", V_EMAILS]).expect(0);
    assert_eq!(email_rows(&t)[0], row("dave@example.com", "n1"));
    let line = t.run(&["revert", V_EMAILS]).one_line_error(5).to_string();
    assert!(
        line.contains("ids: 1") && line.contains("--force"),
        "{line}"
    );
    t.run(&["revert", V_EMAILS, "--force"]).expect(0);
    assert_eq!(email_rows(&t)[0], row("ALICE@New.Example", "n1"));
}

/// A row the app deleted after apply has nothing to restore: revert restores the others, drops
/// every entry, and counts only the rows it restored.
fn rows_deleted_since_are_skipped(kind: Kind) {
    let t = TestDb::new(kind, "exact_deleted");
    create_emails(&t);
    t.run(&["apply", V_EMAILS]).expect(0);
    t.exec("DELETE FROM exact_emails WHERE id = 2");
    t.run(&["revert", V_EMAILS]).expect(0);
    assert_eq!(
        email_rows(&t),
        vec![
            row("Alice@Example.COM", "n1"),
            row("carol@example.com", "n3")
        ]
    );
    assert_eq!(t.ledger_int(V_EMAILS, "rows_reverted"), 1);
    assert_eq!(journal_entries(&t), 0);
}

/// One batch holding an exact entry first and an older backfill's after it: both rows come back
/// exactly (the server restores neither alone), and the journal is empty.
fn exact_and_older_entries_in_one_batch(kind: Kind) {
    let t = TestDb::new(kind, "exact_mixed");
    create_emails(&t);
    let before = email_rows(&t);
    t.run(&["apply", V_EMAILS]).expect(0);
    t.exec(
        "UPDATE backfill_undo SET value_format = 'json', \
         old_values = '{\"email\":\"bob@example.com\",\"note\":\"n2 \"}', \
         new_values = '{\"email\":\"bob@example.com\",\"note\":\"n2\"}' WHERE row_key = 2",
    );
    t.run(&["revert", V_EMAILS]).expect(0);
    assert_eq!(email_rows(&t), before);
    assert_eq!(journal_entries(&t), 0);
}

/// Journal entries an older backfill wrote (driver values as JSON, `value_format` 'json') are restored
/// the old way; a top-up that would write such a row again stops with one line and writes nothing.
fn older_journal_entries(kind: Kind) {
    let t = TestDb::new(kind, "exact_legacy");
    create_emails(&t);
    t.run(&["apply", V_EMAILS]).expect(0);
    for (key, email, old_note, new_note) in [
        (1, "Alice@Example.COM", "n1", "n1"),
        (2, "bob@example.com", "n2 ", "n2"),
    ] {
        let lower = email.to_lowercase();
        t.exec(&format!(
            "UPDATE backfill_undo SET value_format = 'json', \
             old_values = '{{\"email\":\"{email}\",\"note\":\"{old_note}\"}}', \
             new_values = '{{\"email\":\"{lower}\",\"note\":\"{new_note}\"}}' WHERE row_key = {key}"
        ));
    }
    t.exec("UPDATE exact_emails SET email = 'Eve@Example.COM' WHERE id = 1");
    let before = email_rows(&t);
    let line = t.run(&["apply", V_EMAILS]).one_line_error(1).to_string();
    assert!(
        line.contains("older backfill") && line.contains("revert"),
        "{line}"
    );
    assert_eq!(email_rows(&t), before, "the refused top-up wrote nothing");
    t.run(&["revert", V_EMAILS, "--force"]).expect(0);
    assert_eq!(
        email_rows(&t),
        vec![
            row("Alice@Example.COM", "n1"),
            row("bob@example.com", "n2 "),
            row("carol@example.com", "n3")
        ]
    );
}

/// What each `exact_emails` row must hold, and what the journal must keep for it, as the rules say.
#[derive(Default)]
struct Oracle {
    rows: Vec<[String; 2]>,
    /// Per row: (old, new) of its journal entry.
    journal: Vec<Option<([String; 2], [String; 2])>>,
}

impl Oracle {
    fn normalised(v: &[String; 2]) -> [String; 2] {
        [v[0].to_lowercase(), v[1].trim_matches(' ').to_string()]
    }

    /// A (top-up) apply: rows whose bytes would change are written; an entry keeps, per column,
    /// its old value where the row still held ours, the app's value where the app changed it.
    fn apply(&mut self) {
        for (row, entry) in self.rows.iter_mut().zip(&mut self.journal) {
            let new = Self::normalised(row);
            if new == *row {
                continue;
            }
            let old = match entry.take() {
                Some((old, ours)) => [0, 1].map(|c| {
                    if row[c] == ours[c] {
                        old[c].clone()
                    } else {
                        row[c].clone()
                    }
                }),
                None => row.clone(),
            };
            *entry = Some((old, new.clone()));
            *row = new;
        }
    }

    /// A revert: refused (5) when a journaled row no longer holds our values, unless forced.
    fn revert(&mut self, force: bool) -> i32 {
        let edited = self
            .rows
            .iter()
            .zip(&self.journal)
            .any(|(row, e)| e.as_ref().is_some_and(|(_, ours)| ours != row));
        if edited && !force {
            return 5;
        }
        for (row, entry) in self.rows.iter_mut().zip(&mut self.journal) {
            if let Some((old, _)) = entry.take() {
                *row = old;
            }
        }
        0
    }

    fn entries(&self) -> i64 {
        self.journal.iter().flatten().count() as i64
    }
}

/// Random sequences of apply (top-ups, small batches, `--jobs 2`, kill -9 then resume), app edits and
/// revert (with and without `--force`), each checked against the oracle: the rows byte for byte, the
/// exit codes, the journal's size and the counters.
fn random_sequences_match_the_oracle(kind: Kind) {
    let mut rng = common::Rng::from_time();
    println!("seed {}", rng.0);
    let t = TestDb::new(kind, "exact_random");
    create_emails(&t);
    t.exec("DELETE FROM exact_emails");
    // The ledger, before the first step looks at it.
    t.create_ledger();
    let words = [
        "Ann@X.org",
        "ann@x.org",
        "BOB@y.COM",
        "bob@y.com",
        "c@z.io",
        "Dé@x.eu",
    ];
    let notes = ["n", "n ", " n", "N  ", "", " "];
    let mut oracle = Oracle::default();
    for id in 1..=10u64 {
        let row = [
            words[rng.range(0, 5) as usize].to_string(),
            notes[rng.range(0, 5) as usize].to_string(),
        ];
        t.exec(&format!(
            "INSERT INTO exact_emails VALUES ({id}, '{}', '{}')",
            row[0], row[1]
        ));
        oracle.rows.push(row);
        oracle.journal.push(None);
    }
    let steps = if kind == Kind::Sqlite { 24 } else { 12 };
    for step in 0..steps {
        let batch = rng.range(1, 4).to_string();
        let what = match rng.range(0, 5) {
            0 | 1 => {
                let mut args = vec!["apply", V_EMAILS, "--batch-size", &batch];
                if kind != Kind::Sqlite && rng.range(0, 1) == 1 {
                    args.extend(["--jobs", "2"]);
                }
                t.run(&args).expect(0);
                oracle.apply();
                format!("apply {args:?}")
            }
            2 => {
                let killed = t.run_env(
                    &["apply", V_EMAILS, "--batch-size", &batch],
                    &[("BACKFILL_TEST_ABORT_AT_BATCH", "2")],
                );
                t.run(&["apply", V_EMAILS]).expect(0);
                oracle.apply();
                format!("kill -9 at batch 2 (exit {}) and resume", killed.code)
            }
            3 => {
                let id = rng.range(1, 10) as usize;
                let column = rng.range(0, 1) as usize;
                let value = if column == 0 {
                    words[rng.range(0, 5) as usize]
                } else {
                    notes[rng.range(0, 5) as usize]
                };
                let name = ["email", "note"][column];
                t.exec(&format!(
                    "UPDATE exact_emails SET {name} = '{value}' WHERE id = {id}"
                ));
                oracle.rows[id - 1][column] = value.to_string();
                format!("app sets {name} of {id} to {value:?}")
            }
            _ if oracle.entries() == 0 => "nothing to revert".to_string(),
            _ => {
                let force = rng.range(0, 1) == 1;
                let mut args = vec!["revert", V_EMAILS, "--batch-size", &batch];
                if force {
                    args.push("--force");
                }
                let code = oracle.revert(force);
                t.run(&args).expect(code);
                format!("revert {args:?} -> {code}")
            }
        };
        let want: Vec<Vec<Option<String>>> = oracle
            .rows
            .iter()
            .map(|r| r.iter().map(|v| Some(v.clone())).collect())
            .collect();
        assert_eq!(email_rows(&t), want, "step {step}: {what}");
        let entries = journal_entries(&t);
        assert_eq!(
            entries,
            oracle.entries(),
            "step {step}: {what}: journal entries"
        );
        if t.int(&format!(
            "SELECT COUNT(*) FROM backfill_migrations WHERE version = {V_EMAILS}"
        )) > 0
        {
            let in_place = t.rows_applied(V_EMAILS) - t.ledger_int(V_EMAILS, "rows_reverted");
            assert_eq!(in_place, entries, "step {step}: {what}: applied - reverted");
        }
    }
}

on_every_dialect!(
    every_type_round_trips,
    case_and_trailing_space_are_changes,
    app_edit_survives_top_up,
    random_sequences_match_the_oracle,
    older_journal_entries,
    rows_deleted_since_are_skipped,
    exact_and_older_entries_in_one_batch,
);
