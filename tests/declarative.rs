//! Declarative migrations (issue 22): `V…__name.toml` files read from `--migrations-dir`, run by the
//! real binary on every dialect exactly like compiled ones: plan == apply, top-up, verify, exact
//! revert, status naming the file, drift after an edit, kill -9 and `--jobs 2` (updates and
//! inserts); and every bad file refused with one line before anything is written.

mod common;

use common::topology::interrupted_attempt;
use common::{seed_generated, Kind, Rng, TestDb, V_COMPETENCY};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The issue's UPDATE form, verbatim.
const ISSUE_UPDATE: &str = r#"shape = "update"                      # journaled: revert restores old values exactly
table = "competency_versions"
key = "id"                            # integer key the runner walks
where = "t.effective_from IS NULL"    # optional; the row is `t`
[set]
effective_from = "date(t.created_at)" # column = SQL expression over `t`
"#;

const V_ISSUE: &str = "202612070900";
const V_NOTES: &str = "202612070901";

/// A migrations directory of the test's own, removed when the test ends, even when it fails.
struct Dir(PathBuf);

impl Dir {
    fn new(t: &TestDb, test: &str) -> Dir {
        let tag = format!("{:?}", t.kind).to_lowercase();
        let path = std::env::temp_dir().join(format!(
            "bf_decl_{}_{tag}_{test}_{}",
            common::suite(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the migrations dir");
        Dir(path)
    }

    fn write(&self, file: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).expect("write a migration file");
        path
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp dir")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `args` with `--migrations-dir dir` after them.
fn run(t: &TestDb, dir: &Dir, args: &[&str]) -> common::Run {
    run_in(t, dir.arg(), args)
}

fn run_in(t: &TestDb, dir: &str, args: &[&str]) -> common::Run {
    let mut all = args.to_vec();
    all.extend(["--migrations-dir", dir]);
    t.run(&all)
}

/// `notes(id, name, description)`: `rows` rows, every third with a description already right.
fn notes(kind: Kind, test: &str, rows: i64) -> TestDb {
    let t = TestDb::new(kind, test);
    t.exec("CREATE TABLE notes (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL, description VARCHAR(50) NULL)");
    let values: Vec<String> = (1..=rows)
        .map(|i| {
            let name = if i == 3 {
                "a name far too long".to_string()
            } else {
                format!("n{i}")
            };
            let description = if i % 3 == 0 && i != 3 {
                format!("'{name}!'")
            } else {
                "NULL".into()
            };
            format!("({i}, '{name}', {description})")
        })
        .collect();
    for part in values.chunks(200) {
        t.exec(&format!("INSERT INTO notes VALUES {}", part.join(", ")));
    }
    t
}

/// `description = name || '!'`, spelled per dialect (MariaDB's `||` is OR), skipping the rows whose
/// new value would be longer than 12 characters.
const NOTES_UPDATE: &str = r#"shape = "update"
table = "notes"
key = "id"
where = "t.id > 0 /* every note? yes */ -- a line comment ends where the expression does"
skip_when = "LENGTH({new.description}) > 12"
skipped_because = "too long for the listing"
[set]
description = "t.name || '!' -- excited"
[mysql.set]
description = """
CONCAT(t.name, -- the name
  '!')"""
"#;

fn notes_rows(t: &TestDb) -> Vec<(i64, Option<String>)> {
    t.rows("SELECT id, description FROM notes ORDER BY id")
        .into_iter()
        .map(|r| (r[0].as_i64().expect("id"), r[1].as_str().map(String::from)))
        .collect()
}

/// Values a server builds the journal's JSON from and reads it back: quotes, backslashes, control
/// characters, non-ASCII text, NULL, a decimal's every digit, dates.
fn awkward(kind: Kind) -> TestDb {
    let t = TestDb::new(kind, "decl_awkward");
    t.exec("CREATE TABLE awkward (id BIGINT PRIMARY KEY, tx TEXT NULL, amount DECIMAL(30,9) NULL, day DATE NULL)");
    let (chr, cat) = match kind {
        Kind::Postgres => ("chr", "||"),
        Kind::Mariadb => ("CHAR", ","),
        Kind::Sqlite => ("char", "||"),
    };
    let controls = [9, 10, 13, 1, 92, 34]
        .map(|c| format!("{chr}({c})"))
        .join(&format!(" {cat} "));
    let controls = match kind {
        Kind::Mariadb => format!("CONCAT('a', {controls}, 'b')"),
        _ => format!("'a' || {controls} || 'b'"),
    };
    // MariaDB: CHAR(n) is binary; the column is utf8mb4.
    let controls = if kind == Kind::Mariadb {
        format!("CONVERT({controls} USING utf8mb4)")
    } else {
        controls
    };
    for row in [
        r#"(1, 'say "hi" \ it''s {"x": [1]}', 123456789012345678901.123456789, '2026-01-02')"#
            .to_string(),
        "(2, 'naïve café 日本 🎉', NULL, NULL)".into(),
        "(3, NULL, -0.000000001, '1999-12-31')".into(),
        "(4, '', 0, '0001-01-01')".into(),
        format!("(5, {controls}, 1.5, '2000-02-29')"),
    ] {
        t.exec(&format!("INSERT INTO awkward VALUES {row}"));
    }
    t
}

const AWKWARD_UPDATE: &str = r#"shape = "update"
table = "awkward"
key = "id"
[set]
tx = "'replaced'"
amount = "7"
day = "NULL"
"#;

/// A MariaDB user without CREATE TEMPORARY TABLES (every other privilege a deploy needs): its
/// UPDATE-shaped batches cannot journal through the scratch table, and send their values through
/// the client instead; apply with two jobs and revert are exact all the same.
#[test]
fn mariadb_update_without_temporary_tables() {
    let t = notes(Kind::Mariadb, "decl_notemp", 300);
    let original = notes_rows(&t);
    let dir = Dir::new(&t, "notemp");
    dir.write(&format!("V{V_NOTES}__describe_notes.toml"), NOTES_UPDATE);
    let user = common::TestUser::granted(
        &t,
        "bf_notemp",
        "notemp-pw",
        "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX",
    );
    let url = user.url(&t);
    let target = backfill::db::Target::parse(&url).expect("the user's url");
    let refused = backfill::db::connect(&target)
        .expect("connect as the user")
        .execute("CREATE TEMPORARY TABLE premise (a INT)", &[])
        .expect_err("the premise: this user may not create temporary tables");
    assert!(refused.to_string().contains("denied"), "{refused}");
    let as_user = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--migrations-dir", dir.arg()]);
        common::run_url(&url, &all)
    };
    as_user(&["apply", V_NOTES, "--jobs", "2", "--batch-size", "20"]).expect(0);
    let changed = original
        .iter()
        .filter(|(id, d)| *id != 3 && d.is_none())
        .count() as i64;
    for (id, description) in notes_rows(&t) {
        let was = &original[(id - 1) as usize].1;
        let want = match was {
            None if id != 3 => Some(format!("n{id}!")),
            _ => was.clone(),
        };
        assert_eq!(description, want, "row {id}");
    }
    assert_eq!(
        t.int(&format!(
            "SELECT COUNT(*) FROM backfill_undo WHERE version = {V_NOTES}"
        )),
        changed
    );
    as_user(&["revert", V_NOTES, "--jobs", "2"]).expect(0);
    assert_eq!(notes_rows(&t), original);
}

/// The journal the servers build (JSON of each value's exact text) restores every value exactly,
/// and holds what `kit::journal` parses: one object per entry, each value text or null.
fn awkward_values_round_trip(kind: Kind) {
    let t = awkward(kind);
    let read =
        "SELECT id, tx, CAST(amount AS CHAR(40)), CAST(day AS CHAR(10)) FROM awkward ORDER BY id";
    let read = if kind == Kind::Postgres {
        read.replace("AS CHAR(40)", "AS TEXT")
            .replace("AS CHAR(10)", "AS TEXT")
    } else {
        read.to_string()
    };
    let before = t.rows(&read);
    let dir = Dir::new(&t, "awkward");
    dir.write(&format!("V{V_NOTES}__awkward.toml"), AWKWARD_UPDATE);
    run(&t, &dir, &["apply", V_NOTES, "--batch-size", "2"]).expect(0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM awkward WHERE tx = 'replaced'"),
        5
    );
    for r in t.rows("SELECT old_values, new_values FROM backfill_undo ORDER BY row_key") {
        for v in &r {
            let text = v.as_str().expect("journal values are text");
            let json: serde_json::Value =
                serde_json::from_str(text).expect("the journal's JSON parses");
            let object = json.as_object().expect("an object per entry");
            assert_eq!(object.len(), 3, "{text}");
            assert!(
                object.values().all(|v| v.is_string() || v.is_null()),
                "{text}"
            );
        }
    }
    if kind == Kind::Postgres {
        let old = t
            .text("SELECT old_values FROM backfill_undo WHERE row_key = 2")
            .expect("entry 2");
        let json: serde_json::Value = serde_json::from_str(&old).expect("parses");
        assert_eq!(json["tx"], "naïve café 日本 🎉");
        assert_eq!(json["amount"], serde_json::Value::Null);
    }
    run(&t, &dir, &["revert", V_NOTES, "--batch-size", "3"]).expect(0);
    assert_eq!(t.rows(&read), before, "every value back as it was");
    assert_eq!(t.int("SELECT COUNT(*) FROM backfill_undo"), 0);
}

fn issue_update_with_a_compiled_migration_in_one_apply(kind: Kind) {
    let t = TestDb::with_app(kind, "decl_issue");
    seed_generated(&t, 40);
    t.exec("UPDATE competency_versions SET effective_from = NULL WHERE id % 3 = 0");
    let nulls = t.int("SELECT COUNT(*) FROM competency_versions WHERE effective_from IS NULL");
    assert!(nulls > 0, "the seed has versions to fill");
    let last = t.int("SELECT MAX(id) FROM competency_versions");
    let before = format!(
        "SELECT id, effective_from FROM competency_versions WHERE id <= {last} ORDER BY id"
    );
    let original = t.rows(&before);
    let dir = Dir::new(&t, "issue");
    dir.write(
        &format!("V{V_ISSUE}__fill_effective_from.toml"),
        ISSUE_UPDATE,
    );

    let status = run(&t, &dir, &["status"]).expect(0).stdout.clone();
    assert!(
        status.contains(&format!(
            "file: {}",
            dir.0
                .join(format!("V{V_ISSUE}__fill_effective_from.toml"))
                .display()
        )),
        "{status}"
    );
    let markdown = run(&t, &dir, &["status", "--format", "markdown"])
        .expect(0)
        .stdout
        .clone();
    let row = markdown
        .lines()
        .find(|l| l.contains(V_ISSUE))
        .unwrap_or_default();
    assert!(row.contains("fill_effective_from.toml` |"), "{markdown}");
    assert!(
        markdown.contains("| `data_migrations/V202611230001__competency_versions.rs` |"),
        "{markdown}"
    );
    let plan = run(&t, &dir, &["plan", V_ISSUE, "--format", "json"]).json();
    assert_eq!(
        plan["plans"][0]["plan"]["total"].as_i64(),
        Some(nulls),
        "{plan}"
    );

    let applied = run(&t, &dir, &["apply", "--quiet"])
        .expect(0)
        .stdout
        .clone();
    assert_eq!(
        t.state(V_COMPETENCY).as_deref(),
        Some("applied"),
        "{applied}"
    );
    assert_eq!(t.rows_applied(V_ISSUE), nulls, "{applied}");
    let compiled_at = applied
        .find("competency_versions")
        .expect("the compiled one ran");
    assert!(
        applied.find("fill_effective_from").expect("the file ran") > compiled_at,
        "version order: {applied}"
    );
    assert_eq!(
        t.int("SELECT COUNT(*) FROM competency_versions WHERE effective_from IS NULL"),
        0
    );
    assert_eq!(
        t.int(&format!("SELECT COUNT(*) FROM competency_versions WHERE id <= {last} AND effective_from <> date(created_at) AND id % 3 = 0")),
        0
    );

    run(&t, &dir, &["apply", V_ISSUE, "--quiet"]).expect(0);
    assert_eq!(t.rows_applied(V_ISSUE), nulls, "a top-up writes nothing");
    run(&t, &dir, &["verify", "--data", "--strict"]).expect(0);
    run(&t, &dir, &["revert", V_ISSUE, "--quiet"]).expect(0);
    assert_eq!(
        t.rows(&before),
        original,
        "revert restores every NULL it filled, and only those"
    );
    assert_eq!(
        t.state(V_COMPETENCY).as_deref(),
        Some("applied"),
        "the compiled one stays"
    );
}

fn overrides_skip_and_the_new_value(kind: Kind) {
    let t = notes(kind, "decl_over", 9);
    let original = notes_rows(&t);
    let dir = Dir::new(&t, "over");
    dir.write(&format!("V{V_NOTES}__describe_notes.toml"), NOTES_UPDATE);
    let plan = run(&t, &dir, &["plan", V_NOTES, "--format", "json"]).json();
    let p = &plan["plans"][0]["plan"];
    // Rows 1, 2, 4, 5, 7, 8 change; 3 would be too long; 6 and 9 are right already.
    assert_eq!(p["total"].as_i64(), Some(6), "{plan}");
    assert_eq!(p["skipped"].as_i64(), Some(1), "{plan}");
    assert_eq!(
        p["skipped_because"].as_str(),
        Some("too long for the listing")
    );
    run(&t, &dir, &["apply", V_NOTES, "--quiet"]).expect(0);
    let now = notes_rows(&t);
    for (id, description) in &now {
        let want = match id {
            3 => None,
            _ => Some(format!("n{id}!")),
        };
        assert_eq!(description, &want, "row {id} on {kind:?}");
    }
    assert_eq!(t.rows_applied(V_NOTES), 6);
    run(&t, &dir, &["revert", V_NOTES, "--quiet"]).expect(0);
    assert_eq!(notes_rows(&t), original);
}

fn irreversible_shape(kind: Kind) {
    let t = notes(kind, "decl_irr", 6);
    let dir = Dir::new(&t, "irr");
    let text = NOTES_UPDATE.replace(
        "shape = \"update\"",
        "shape = \"irreversible\"\nreason = \"the old descriptions are not kept\"",
    );
    dir.write(&format!("V{V_NOTES}__describe_notes.toml"), text);
    run(&t, &dir, &["apply", V_NOTES, "--quiet"]).expect(0);
    assert_eq!(t.rows_applied(V_NOTES), 4);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_undo"),
        0,
        "no journal for an irreversible update"
    );
    let written = notes_rows(&t);
    let line = run(&t, &dir, &["revert", V_NOTES])
        .one_line_error(2)
        .to_string();
    assert!(line.contains("the old descriptions are not kept"), "{line}");
    assert_eq!(notes_rows(&t), written);
}

/// The name bad files are written under when their name is not the point.
const BAD: &str = "V202612070900__x.toml";

/// Each bad file on its own, on a database with no ledger yet: exit 2, one line naming the file and
/// the key, and nothing written (not even the ledger).
fn bad_files_are_refused_before_anything_is_written(kind: Kind) {
    let t = TestDb::with_app(kind, "decl_bad");
    let edits: &[(&str, &str, &[&str])] = &[
        ("where =", "wher =", &["line 4", "unknown field `wher`"]),
        (
            "key = \"id\"",
            "key = \"nope\"",
            &["`key`", "no column nope"],
        ),
        (
            "key = \"id\"",
            "key = \"name\"",
            &["`key`", "not an integer"],
        ),
        ("\"competency_versions\"", "\"nope\"", &["`table`", "nope"]),
        (
            "date(t.created_at)",
            "date(t.created_at",
            &["`set.effective_from`"],
        ),
        (
            "t.effective_from IS NULL",
            "t.effective_fro IS NULL",
            &["`where`"],
        ),
        (
            "shape = \"update\"",
            "shape = \"irreversible\"",
            &["`reason` is missing"],
        ),
        (
            "t.effective_from IS NULL\"",
            "t.effective_from IS NULL AND t.name ? 'x'\"",
            &["`where`", "has a `?`", "jsonb_exists"],
        ),
        (
            "[set]",
            "select = \"SELECT 1\"\n[set]",
            &["`select` is not a key of shape = \"update\""],
        ),
    ];
    for (from, to, words) in edits {
        refused(&t, BAD, ISSUE_UPDATE.replace(from, to), words);
    }
    let whole: Vec<(String, Vec<u8>, &[&str])> = vec![
        (
            BAD.into(),
            format!("{ISSUE_UPDATE}[postgres.set]\nname = \"t.name\"\n").into(),
            &["`postgres.set.name`", "add `name` to [set]"],
        ),
        (
            "V2026120709__x.toml".into(),
            ISSUE_UPDATE.into(),
            &["V<12 digits>__<snake_name>.toml"],
        ),
        (
            BAD.into(),
            b"shape = \"update\"\ntable = \"caf\xe9\"\n".to_vec(),
            &["not UTF-8"],
        ),
        (
            format!("V{V_COMPETENCY}__twin.toml"),
            ISSUE_UPDATE.into(),
            &["used twice", "V202611230001__competency_versions.rs"],
        ),
    ];
    for (file, text, words) in whole {
        refused(&t, &file, text, words);
    }
}

/// The insert form's bad files, each an edit of the HR example.
fn bad_insert_files_are_refused_before_anything_is_written(kind: Kind) {
    let t = TestDb::with_app(kind, "decl_badins");
    let example = std::fs::read_to_string(format!(
        "{EXAMPLES}/V{V_CAPS_FILE}__scenario_capabilities.toml"
    ))
    .expect("the insert example");
    let edits: &[(&str, &str, &[&str])] = &[
        (
            "timestamps = true",
            "where = \"t.id > 0\"\ntimestamps = true",
            &["`where` is not a key of shape = \"insert\""],
        ),
        (
            "select = \"\"\"",
            "selct = \"\"\"",
            &["unknown field `selct`"],
        ),
        ("BETWEEN :lo AND :hi", ">= :lo", &["`select` lacks :hi"]),
        (
            "AND NOT EXISTS",
            "AND 1 = ? AND NOT EXISTS",
            &["`select`", "`?`"],
        ),
        ("3, FALSE", "3", &["`select`"]),
        ("3, FALSE", "3, FALSE, 0", &["`select`"]),
        (
            "FROM capabilities c",
            "FROM capabilitiez c",
            &["`select` does not run on"],
        ),
        (
            "group = \"scenario_id\"",
            "group = \"organization_id\"",
            &["`group`", "not one of columns"],
        ),
        (
            "\"rationale\"",
            "\"rationale_x\"",
            &["`columns`", "no column rationale_x"],
        ),
        (
            "\"rationale\"",
            "\"created_at\"",
            &["`columns`", "timestamps = true writes"],
        ),
        (
            "walk = \"capabilities.id\"",
            "walk = \"capabilities\"",
            &["`walk`", "table.column"],
        ),
        (
            "walk = \"capabilities.id\"",
            "walk = \"capabilities.name\"",
            &["`walk`", "not an integer"],
        ),
        (
            "walk = \"capabilities.id\"",
            "walk = \"capabilitiez.id\"",
            &["`walk`", "capabilitiez is not a table"],
        ),
    ];
    for (from, to, words) in edits {
        assert_eq!(
            example.matches(from).count(),
            1,
            "the example has {from} once"
        );
        refused(&t, BAD, example.replace(from, to), words);
    }
    let set = format!("{example}[postgres.set]\nscenario_id = \"s.id\"\n");
    refused(
        &t,
        BAD,
        set,
        &["`postgres.set` is not a key of shape = \"insert\""],
    );
}

/// Numbers the refusal tests' directories: tests of one dialect run at once in one process.
static REFUSALS: AtomicUsize = AtomicUsize::new(0);

/// `file` holding `text` is refused by `apply` and `plan` with exit 2 and one line naming the file
/// and `words`, before the ledger exists.
fn refused(t: &TestDb, file: &str, text: impl AsRef<[u8]>, words: &[&str]) {
    let dir = Dir::new(
        t,
        &format!("bad_{}", REFUSALS.fetch_add(1, Ordering::Relaxed)),
    );
    dir.write(file, text);
    for command in ["apply", "plan"] {
        let r = run(t, &dir, &[command]);
        let line = r.one_line_error(2);
        assert!(line.contains(file), "{command} {file}: {line}");
        for w in words {
            assert!(line.contains(w), "{command} {file}: {line} lacks {w}");
        }
        assert!(
            !t.has_table("backfill_migrations"),
            "{command} {file} wrote the ledger: {line}"
        );
    }
}

fn drift_after_editing_an_applied_file(kind: Kind) {
    let t = notes(kind, "decl_drift", 6);
    let dir = Dir::new(&t, "drift");
    let file = dir.write(&format!("V{V_NOTES}__describe_notes.toml"), NOTES_UPDATE);
    run(&t, &dir, &["apply", V_NOTES, "--quiet"]).expect(0);
    edit(&file, "# edited after it ran\n");
    let line = run(&t, &dir, &["apply"]).one_line_error(5).to_string();
    assert!(
        line.contains("changed since it ran") && line.contains(V_NOTES),
        "{line}"
    );
    run(&t, &dir, &["verify"]).expect(3);
    assert!(run(&t, &dir, &["status"])
        .expect(0)
        .stdout
        .contains("CHANGED"));
    // Line endings and trailing spaces are not an edit (a top-up runs).
    std::fs::write(&file, NOTES_UPDATE.replace('\n', "  \r\n")).expect("rewrite");
    run(&t, &dir, &["apply", V_NOTES, "--quiet"]).expect(0);
    assert!(checksum_ok(&t, &dir));
    // Edited while reverted, then applied again: what runs now is what the ledger vouches for.
    run(&t, &dir, &["revert", V_NOTES, "--quiet"]).expect(0);
    edit(&file, "# edited while reverted\n");
    run(&t, &dir, &["apply", V_NOTES, "--quiet"]).expect(0);
    assert!(checksum_ok(&t, &dir));
}

fn checksum_ok(t: &TestDb, dir: &Dir) -> bool {
    let status = run(t, dir, &["status", "--format", "json"]).json();
    let lines = status["migrations"].as_array().expect("migrations");
    let line = lines
        .iter()
        .find(|l| l["version"].as_i64().map(|v| v.to_string()).as_deref() == Some(V_NOTES))
        .expect("the file's line");
    line["checksum_ok"].as_bool().expect("checksum_ok")
}

fn edit(file: &Path, line: &str) {
    let mut text = std::fs::read_to_string(file).expect("read");
    text.push_str(line);
    std::fs::write(file, text).expect("edit");
}

/// kill -9 at random moments during apply (with `extra`, e.g. `--jobs 2`), then a rerun: every row
/// right once, the journal holding each changed row once; then revert restores the table exactly.
fn killed_applies(kind: Kind, extra: &[&str], test: &str) {
    let t = notes(kind, test, 400);
    let original = notes_rows(&t);
    let dir = Dir::new(&t, test);
    dir.write(&format!("V{V_NOTES}__describe_notes.toml"), NOTES_UPDATE);
    let changed = original
        .iter()
        .filter(|(id, d)| *id != 3 && d.is_none())
        .count() as i64;
    let mut rng = Rng::from_time();
    let seed = rng.0;
    for trial in 0..4 {
        let mut attempt = vec!["apply", V_NOTES, "--migrations-dir", dir.arg()];
        attempt.extend(extra);
        interrupted_attempt(&t, &mut rng, &attempt, trial);
        let mut rerun = attempt.clone();
        rerun.push("--quiet");
        t.run(&rerun).expect(0);
        let now = notes_rows(&t);
        for (id, description) in &now {
            let want = if *id == 3 {
                None
            } else {
                Some(format!("n{id}!"))
            };
            assert_eq!(description, &want, "row {id}, trial {trial}, seed {seed}");
        }
        assert_eq!(
            t.rows_applied(V_NOTES),
            changed,
            "trial {trial}, seed {seed}"
        );
        assert_eq!(
            t.int(&format!(
                "SELECT COUNT(*) FROM backfill_undo WHERE version = {V_NOTES}"
            )),
            changed,
            "trial {trial}, seed {seed}"
        );
        run(&t, &dir, &["revert", V_NOTES, "--quiet"]).expect(0);
        assert_eq!(notes_rows(&t), original, "trial {trial}, seed {seed}");
    }
}

/// A copy of each note, by an insert file whose keys the ledger records.
const NOTES_INSERT: &str = r#"shape = "insert"
table = "note_copies"
key = "id"
walk = "notes.id"
group = "batch_id"
columns = ["note_id", "name", "batch_id"]
select = """
SELECT n.id, n.name, n.id % 3
FROM notes n
WHERE n.id BETWEEN :lo AND :hi -- the batch
  AND NOT EXISTS (SELECT 1 FROM note_copies c WHERE c.note_id = n.id)
"""
"#;

/// kill -9 at random moments during an insert file's apply (with `extra`), then a rerun: every note
/// copied exactly once and each copy's key recorded once; then revert deletes every copy.
fn killed_inserts(kind: Kind, extra: &[&str], test: &str) {
    let t = notes(kind, test, 400);
    let serial = match kind {
        Kind::Postgres => "BIGSERIAL PRIMARY KEY",
        Kind::Mariadb => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        Kind::Sqlite => "INTEGER PRIMARY KEY",
    };
    t.exec(&format!("CREATE TABLE note_copies (id {serial}, note_id BIGINT NOT NULL, name VARCHAR(50) NOT NULL, batch_id BIGINT NOT NULL)"));
    let dir = Dir::new(&t, test);
    dir.write(&format!("V{V_NOTES}__copy_notes.toml"), NOTES_INSERT);
    let copies = "SELECT COUNT(*), COUNT(DISTINCT note_id) FROM note_copies";
    let mut rng = Rng::from_time();
    let seed = rng.0;
    for trial in 0..3 {
        let mut attempt = vec!["apply", V_NOTES, "--migrations-dir", dir.arg()];
        attempt.extend(extra);
        interrupted_attempt(&t, &mut rng, &attempt, trial);
        let mut rerun = attempt.clone();
        rerun.push("--quiet");
        t.run(&rerun).expect(0);
        let counted = t.rows(copies);
        let counted: Vec<i64> = counted[0]
            .iter()
            .map(|v| v.as_i64().unwrap_or(-1))
            .collect();
        assert_eq!(counted, vec![400, 400], "trial {trial}, seed {seed}");
        assert_eq!(t.rows_applied(V_NOTES), 400, "trial {trial}, seed {seed}");
        assert_eq!(
            t.int("SELECT COUNT(DISTINCT row_key) FROM backfill_inserted"),
            400,
            "trial {trial}, seed {seed}"
        );
        run(&t, &dir, &["revert", V_NOTES, "--group", "1", "--quiet"]).expect(0);
        assert_eq!(
            t.int("SELECT COUNT(*) FROM note_copies WHERE batch_id = 1"),
            0,
            "trial {trial}, seed {seed}"
        );
        assert_eq!(
            t.int("SELECT COUNT(*) FROM note_copies"),
            266,
            "trial {trial}, seed {seed}"
        );
        run(&t, &dir, &["revert", V_NOTES, "--quiet"]).expect(0);
        assert_eq!(
            t.int("SELECT COUNT(*) FROM note_copies"),
            0,
            "trial {trial}, seed {seed}"
        );
    }
}

/// `backfill new --toml NAME` writes a file that plans and applies nothing until edited.
fn new_toml_changes_nothing_until_edited(kind: Kind) {
    let t = TestDb::with_app(kind, "decl_new");
    seed_generated(&t, 10);
    let dir = Dir::new(&t, "new");
    let made = common::bin()
        .args([
            "new",
            "--toml",
            "fill_levels",
            "--migrations-dir",
            dir.arg(),
        ])
        .output()
        .expect("run backfill new");
    let made = common::Run::from(made);
    let path = made
        .expect(0)
        .stdout
        .trim()
        .strip_prefix("created ")
        .expect("created PATH")
        .to_string();
    let file = Path::new(&path)
        .file_name()
        .and_then(|f| f.to_str())
        .expect("a file name")
        .to_string();
    let version = file.get(1..13).expect("V<12 digits>").to_string();
    let before = t.rows("SELECT id, description FROM competencies ORDER BY id");
    let plan = run(&t, &dir, &["plan", &version, "--format", "json"]).json();
    assert_eq!(
        plan["plans"][0]["plan"]["total"].as_i64(),
        Some(0),
        "{plan}"
    );
    run(&t, &dir, &["apply", &version, "--quiet"]).expect(0);
    assert_eq!(t.rows_applied(&version), 0);
    assert_eq!(
        t.rows("SELECT id, description FROM competencies ORDER BY id"),
        before
    );
    let again = common::bin()
        .args([
            "new",
            "--toml",
            "fill_levels",
            "--migrations-dir",
            dir.arg(),
        ])
        .output()
        .expect("run backfill new");
    let line = common::Run::from(again).one_line_error(2).to_string();
    assert!(
        line.contains("already exists") && line.contains(&file),
        "{line}"
    );
}

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/declarative");
const APP_SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/app");
const V_HR_FILE: &str = "202612070003";
const V_HR_RUST: &str = "202612060003";
const V_CAPS_FILE: &str = "202612070004";
const V_CAPS_RUST: &str = "202612060004";

/// The pivot rows as the app reads them (their keys and times aside).
const PIVOT: &str =
    "SELECT scenario_id, capability_id, strategic_role, strategic_weight, priority, \
                     rationale, required_level, is_critical FROM scenario_capabilities \
                     ORDER BY scenario_id, capability_id";

/// The app's tables with the examples' seed.
fn with_example_seed(kind: Kind, test: &str) -> TestDb {
    let t = TestDb::with_app(kind, test);
    let seed = std::fs::read_to_string(format!("{EXAMPLES}/seed.sql")).expect("the example's seed");
    backfill::db::schema_file::load_sql(t.session().as_mut(), "seed.sql", &seed).expect("seed");
    t
}

fn pivot_pairs(t: &TestDb) -> Vec<(i64, i64)> {
    t.rows("SELECT scenario_id, capability_id FROM scenario_capabilities ORDER BY 1, 2")
        .iter()
        .map(|r| {
            (
                r[0].as_i64().expect("scenario"),
                r[1].as_i64().expect("capability"),
            )
        })
        .collect()
}

/// The HR app's scenario_id backfill as a file and as Rust leave the same rows.
fn both_forms_give_the_same_rows(kind: Kind) {
    let t = with_example_seed(kind, "decl_forms");
    let rows = "SELECT id, scenario_id FROM scenario_generations ORDER BY id";
    run_in(&t, EXAMPLES, &["apply", V_HR_RUST, "--quiet"]).expect(0);
    let by_rust = t.rows(rows);
    run_in(&t, EXAMPLES, &["revert", V_HR_RUST, "--quiet"]).expect(0);
    run_in(&t, EXAMPLES, &["apply", V_HR_FILE, "--quiet"]).expect(0);
    assert_eq!(t.rows(rows), by_rust);
    let ids: Vec<(i64, Option<i64>)> = by_rust
        .iter()
        .map(|r| (r[0].as_i64().expect("id"), r[1].as_i64()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (1, Some(11)),
            (2, Some(13)),
            (3, None),
            (4, Some(14)),
            (5, None)
        ]
    );
    let plan = run_in(&t, EXAMPLES, &["plan", V_HR_FILE, "--format", "json"]).json();
    assert_eq!(
        plan["plans"][0]["plan"]["total"].as_i64(),
        Some(0),
        "{plan}"
    );
}

/// The insert example: plan == apply in batches of 2 keys on 2 workers, a second apply writes
/// nothing, verify is clean, `revert --scenario` deletes only that scenario's rows, a row the app
/// edited since is refused without `--force`, and revert leaves the pivot as it was (the row the
/// app chose too).
fn insert_file_plans_applies_and_reverts_by_scenario(kind: Kind) {
    let t = with_example_seed(kind, "decl_ins");
    let original = t.rows(PIVOT);
    let plan = run_in(&t, EXAMPLES, &["plan", V_CAPS_FILE, "--format", "json"]).json();
    let p = &plan["plans"][0]["plan"];
    assert_eq!(p["total"].as_i64(), Some(4), "{plan}");
    let groups: Vec<(i64, i64)> = p["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["key"].as_i64().expect("key"),
                g["count"].as_i64().expect("count"),
            )
        })
        .collect();
    assert_eq!(groups, vec![(11, 2), (13, 1), (14, 1)], "{plan}");

    let apply = [
        "apply",
        V_CAPS_FILE,
        "--batch-size",
        "2",
        "--jobs",
        "2",
        "--quiet",
    ];
    run_in(&t, EXAMPLES, &apply).expect(0);
    assert_eq!(t.rows_applied(V_CAPS_FILE), 4);
    let all = vec![(11, 21), (11, 23), (11, 26), (13, 22), (14, 25)];
    assert_eq!(pivot_pairs(&t), all);
    assert_eq!(t.int("SELECT COUNT(*) FROM backfill_inserted"), 4);
    run_in(&t, EXAMPLES, &apply).expect(0);
    assert_eq!(
        t.rows_applied(V_CAPS_FILE),
        4,
        "a second apply writes nothing"
    );
    assert_eq!(pivot_pairs(&t), all);
    // The other migrations are pending (this one ran out of order): verify names them, and nothing
    // about this one's rows. How many there are depends on what ships (an app adds its own).
    let verify = run_in(&t, EXAMPLES, &["verify", "--data"]);
    let (pending, findings): (Vec<&str>, Vec<&str>) = verify
        .stdout
        .lines()
        .partition(|l| l.contains("is pending but older than applied"));
    assert!(findings.is_empty(), "{}", verify.stdout);
    assert!(!pending.is_empty(), "{}", verify.stdout);
    let found = format!("verify found {} problem(s)", pending.len());
    assert!(verify.stderr.contains(&found), "{}", verify.stderr);

    let by_scenario = ["revert", V_CAPS_FILE, "--scenario", "11", "--quiet"];
    run_in(&t, EXAMPLES, &by_scenario).expect(0);
    assert_eq!(pivot_pairs(&t), vec![(11, 23), (13, 22), (14, 25)]);
    t.exec("UPDATE scenario_capabilities SET updated_at = '2030-01-01 00:00:00' WHERE capability_id = 22");
    run_in(&t, EXAMPLES, &["revert", V_CAPS_FILE, "--quiet"]).expect(5);
    assert_eq!(pivot_pairs(&t), vec![(11, 23), (13, 22), (14, 25)]);
    run_in(&t, EXAMPLES, &["revert", V_CAPS_FILE, "--force", "--quiet"]).expect(0);
    assert_eq!(t.rows(PIVOT), original);
    assert_eq!(t.int("SELECT COUNT(*) FROM backfill_inserted"), 0);
}

/// The scenario_capabilities backfill as a file and as Rust leave the same rows, both stamped.
fn both_insert_forms_give_the_same_rows(kind: Kind) {
    let t = with_example_seed(kind, "decl_insforms");
    let stamped = "SELECT COUNT(*) FROM scenario_capabilities WHERE created_at IS NOT NULL \
                   AND created_at = updated_at";
    run_in(&t, EXAMPLES, &["apply", V_CAPS_RUST, "--quiet"]).expect(0);
    let by_rust = t.rows(PIVOT);
    assert_eq!(t.int(stamped), 4);
    run_in(&t, EXAMPLES, &["revert", V_CAPS_RUST, "--quiet"]).expect(0);
    assert_eq!(pivot_pairs(&t), vec![(11, 23)]);
    run_in(&t, EXAMPLES, &["apply", V_CAPS_FILE, "--quiet"]).expect(0);
    assert_eq!(t.rows(PIVOT), by_rust);
    assert_eq!(t.int(stamped), 4);
    assert_eq!(by_rust.len(), 5);
    let plan = run_in(&t, EXAMPLES, &["plan", V_CAPS_RUST, "--format", "json"]).json();
    assert_eq!(
        plan["plans"][0]["plan"]["total"].as_i64(),
        Some(0),
        "{plan}"
    );
}

/// `backfill test` from the command line: the HR example passes on every dialect.
#[test]
fn backfill_test_passes_the_hr_example_on_every_dialect() {
    let seed = format!("{EXAMPLES}/seed.sql");
    let r = common::Run::from(
        common::bin()
            .args([
                "test",
                "--migrations-dir",
                EXAMPLES,
                "--schema",
                APP_SCHEMA,
                "--seed",
                &seed,
            ])
            .args([
                "--dialects",
                "sqlite,postgres,mysql",
                "--admin-url",
                common::PG_ADMIN,
                "--admin-url",
                common::MY_ADMIN,
            ])
            .output()
            .expect("run backfill test"),
    );
    r.expect(0);
    for d in ["sqlite", "postgres", "mysql"] {
        for file in [
            format!("V{V_HR_FILE}__scenario_generation_scenario_ids"),
            format!("V{V_CAPS_FILE}__scenario_capabilities"),
        ] {
            assert!(
                r.stdout.contains(&format!("ok   {file} on {d}")),
                "{}",
                r.stdout
            );
        }
    }
}

/// `backfill test` fails (exit 1, one line per failure naming the table) on a migration whose revert
/// leaves a row behind (a trigger it did not know of) and on one that writes nothing; it passes the
/// latter with --allow-empty; its scratch SQLite files are gone either way.
#[test]
fn backfill_test_fails_on_a_wrong_revert_and_on_nothing_written() {
    let t = TestDb::new(Kind::Sqlite, "decl_kit");
    let dir = Dir::new(&t, "kit");
    let schema = dir.write(
        "schema.sql",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, description VARCHAR(50));\n\
         CREATE TABLE notes_audit (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL);\n\
         CREATE TRIGGER notes_audited AFTER UPDATE ON notes BEGIN INSERT INTO notes_audit (note_id) VALUES (NEW.id); END;\n",
    );
    let seed = dir.write(
        "seed.sql",
        "INSERT INTO notes VALUES (1, 'a', NULL), (2, 'b', NULL);\n",
    );
    let files = Dir::new(&t, "kit_files");
    files.write(&format!("V{V_NOTES}__describe_notes.toml"), NOTES_UPDATE);
    let kit = |extra: &[&str]| {
        let mut cmd = common::bin();
        cmd.args(["test", "--migrations-dir", files.arg(), "--schema"])
            .arg(&schema)
            .arg("--seed")
            .arg(&seed)
            .args(extra);
        common::Run::from(cmd.output().expect("run backfill test"))
    };
    let r = kit(&[]);
    r.expect(1);
    let fail = r
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_default()
        .to_string();
    assert!(
        fail.contains("table `notes_audit`") && fail.contains("on sqlite"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("1 check(s) failed"), "{}", r.stderr);

    std::fs::write(
        files.0.join(format!("V{V_NOTES}__describe_notes.toml")),
        NOTES_UPDATE.replace("t.name || '!'", "t.description"),
    )
    .expect("rewrite");
    let r = kit(&[]);
    r.expect(1);
    assert!(
        r.stdout.contains("wrote nothing on the seed data"),
        "{}",
        r.stdout
    );
    kit(&["--allow-empty"]).expect(0);
    let scratch = std::env::temp_dir().join("backfill-tests");
    let left: Vec<String> = std::fs::read_dir(&scratch)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|f| f.starts_with("bf_test_") && f.contains(V_NOTES)),
        "{left:?}"
    );
}

/// `backfill test`'s scratch databases carry `BF_TEST_SUITE`'s tag on every dialect, as the
/// harness's own databases do: a trigger records each scratch database's name in a row that revert
/// leaves behind, and the failure shows it.
#[test]
fn backfill_test_names_its_scratch_databases_with_the_suite_tag() {
    let t = TestDb::new(Kind::Sqlite, "decl_tag");
    let dir = Dir::new(&t, "tag");
    let audit = "CREATE TABLE notes (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL, description VARCHAR(50));\n";
    dir.write("postgres.sql", format!("{audit}\
        CREATE TABLE notes_audit (id BIGSERIAL PRIMARY KEY, db TEXT NOT NULL);\n\
        CREATE FUNCTION audited() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO notes_audit (db) VALUES (current_database()); RETURN NEW; END $$;\n\
        CREATE TRIGGER notes_audited AFTER UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION audited();\n"));
    dir.write("mysql.sql", format!("{audit}\
        CREATE TABLE notes_audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, db TEXT NOT NULL);\n\
        CREATE TRIGGER notes_audited AFTER UPDATE ON notes FOR EACH ROW INSERT INTO notes_audit (db) VALUES (DATABASE());\n"));
    dir.write("sqlite.sql", format!("{audit}\
        CREATE TABLE notes_audit (id INTEGER PRIMARY KEY, db TEXT NOT NULL);\n\
        CREATE TRIGGER notes_audited AFTER UPDATE ON notes BEGIN INSERT INTO notes_audit (db) SELECT file FROM pragma_database_list WHERE name = 'main'; END;\n"));
    let seed = dir.write("seed.sql", "INSERT INTO notes VALUES (1, 'a', NULL);\n");
    let files = Dir::new(&t, "tag_files");
    files.write(&format!("V{V_NOTES}__describe_notes.toml"), NOTES_UPDATE);
    let tag = match common::suite() {
        s if s.is_empty() => "kit".to_string(),
        s => s,
    };
    let r = common::Run::from(
        common::bin()
            .env("BF_TEST_SUITE", &tag)
            .args([
                "test",
                "--migrations-dir",
                files.arg(),
                "--schema",
                dir.arg(),
                "--seed",
            ])
            .arg(&seed)
            .args(["--dialects", "sqlite,postgres,mysql"])
            .args([
                "--admin-url",
                common::PG_ADMIN,
                "--admin-url",
                common::MY_ADMIN,
            ])
            .output()
            .expect("run backfill test"),
    );
    r.expect(1);
    for d in ["sqlite", "postgres", "mysql"] {
        let fail = r
            .stdout
            .lines()
            .find(|l| l.starts_with("FAIL") && l.contains(&format!(" on {d}: ")))
            .unwrap_or_default();
        assert!(fail.contains("table `notes_audit`"), "{d}: {}", r.stdout);
        assert!(
            fail.contains(&format!("bf_test_{tag}_")),
            "{d}: {}",
            r.stdout
        );
    }
}

/// `#[test] fn NAME() { super::NAME(kind) }` for each name.
macro_rules! tests {
    ($kind:expr; $($test:ident),*) => {$(
        #[test]
        fn $test() {
            super::$test($kind)
        }
    )*};
}

macro_rules! on_every_dialect {
    ($($module:ident => $kind:expr),*) => {$(
        mod $module {
            tests!($kind;
                issue_update_with_a_compiled_migration_in_one_apply,
                overrides_skip_and_the_new_value,
                irreversible_shape,
                bad_files_are_refused_before_anything_is_written,
                bad_insert_files_are_refused_before_anything_is_written,
                insert_file_plans_applies_and_reverts_by_scenario,
                both_insert_forms_give_the_same_rows,
                drift_after_editing_an_applied_file,
                new_toml_changes_nothing_until_edited,
                both_forms_give_the_same_rows
            );
            #[test]
            fn awkward_values_round_trip() {
                super::awkward_values_round_trip($kind)
            }
            #[test]
            fn kill_9_during_apply() {
                super::killed_applies($kind, &[], "decl_kill")
            }
            #[test]
            fn kill_9_during_apply_with_two_jobs() {
                super::killed_applies($kind, &["--jobs", "2"], "decl_jobs")
            }
            #[test]
            fn kill_9_during_an_insert_with_two_jobs() {
                super::killed_inserts($kind, &["--jobs", "2"], "decl_killins")
            }
        }
    )*};
}

on_every_dialect!(postgres => super::Kind::Postgres, mariadb => super::Kind::Mariadb, sqlite => super::Kind::Sqlite);
