//! The first ten minutes (issue 15): the demo tells the story, `--version` says which binary and
//! which migrations, sample data loads into an empty database of every dialect (and refuses one with
//! app rows), help lists what applies, errors name where the database setting came from, and the
//! small things (`1 row`, JSON's last newline, `sqlite:/abs/path`, a relative SQLite `DB_DATABASE`,
//! no lock files, the log's plan beside each apply).

mod common;
use common::{bin, seed_edge_cases, Kind, Run, TestDb, V_COMPETENCY, V_ROLE};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join("backfill-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Run {
    Run::from(bin().args(args).output().unwrap())
}

// ---- the demo ----

/// The demo's path, from its "Kept PATH. Try next:" line.
fn kept_path(stdout: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Kept "))
        .unwrap_or_else(|| panic!("no `Kept` line:\n{stdout}"));
    let path = line
        .trim_start_matches("Kept ")
        .trim_end_matches(". Try next:");
    PathBuf::from(path)
}

#[test]
fn demo_tells_the_story_in_two_screens() {
    let mut child = bin()
        .args(["demo", "--keep"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line comes at once, before any work.
    let started = Instant::now();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "first line after {:?}",
        started.elapsed()
    );
    assert!(first.starts_with("backfill demo:"), "{first}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{first}{rest}\n--- stderr\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let out = format!("{first}{rest}");

    // It says what the migrations do and what a scenario is.
    assert!(out.contains("scenarios (what-if plans)"), "{out}");
    for m in backfill::registry::all() {
        assert!(
            out.contains(&format!("V{}__{}", m.version, m.name)),
            "{out}"
        );
    }
    // Each step, in order: sample data, plan, a refused --expect-plan, a kill and the resume, a
    // scenario revert, the audit trail.
    let steps = [
        "$ backfill sample-data --size 300",
        &format!("$ backfill plan {V_COMPETENCY} --samples 0 --out plan.json"),
        &format!("$ backfill apply {V_COMPETENCY} --expect-plan plan.json\n"),
        "(exit 5: refused, nothing written",
        &format!("$ backfill apply {V_COMPETENCY} --expect-plan plan.json \\\n    --batch-size 20 --pause-ms 150"),
        "killed -9 after ",
        &format!("$ backfill apply {V_COMPETENCY}\n"),
        "(resumed after a runner died",
        "$ backfill verify --data",
        &format!("$ backfill revert {V_COMPETENCY} --scenario "),
        &format!("$ backfill log {V_COMPETENCY}"),
        "abandoned",
        "Try next:",
    ];
    let mut at = 0;
    for step in steps {
        let found = out[at..]
            .find(step)
            .unwrap_or_else(|| panic!("`{step}` missing or out of order:\n{out}"));
        at += found + step.len();
    }
    // The kill happened mid-apply: the ledger and the table agree on what was committed, and the
    // resume wrote exactly the planned rows, each competency once.
    let killed = out.lines().find(|l| l.starts_with("killed")).unwrap();
    assert!(killed.contains("the ledger says running"), "{killed}");
    let check = out
        .lines()
        .find(|l| l.starts_with("check: ") && l.contains("as planned"))
        .unwrap();
    let nums: Vec<&str> = check
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(
        nums.len() == 3 && nums.iter().all(|n| *n == nums[0]),
        "{check}"
    );
    // The audit trail's columns line up (the action and state are padded).
    let starts: std::collections::BTreeSet<Option<usize>> = out
        .lines()
        .filter(|l| l.starts_with("20") && l.contains(" V"))
        .map(|l| l.find(" V"))
        .collect();
    assert_eq!(starts.len(), 1, "{out}");
    // About two screens of 80 columns.
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() <= 90, "{} lines:\n{out}", lines.len());
    for l in &lines {
        assert!(l.chars().count() <= 80, "wider than 80 columns: {l}");
    }
    assert!(
        !out.contains("1 rows") && !out.contains("1 batches"),
        "{out}"
    );

    // It ends with the kept database and three commands that work on it.
    let db = kept_path(&out);
    assert!(db.is_file(), "{}", db.display());
    let tail: Vec<&str> = lines.iter().rev().take(4).rev().copied().collect();
    assert_eq!(
        tail[0],
        format!("  export DATABASE_URL=sqlite://{}", db.display())
    );
    for cmd in &tail[1..] {
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        let ran = Run::from(
            bin()
                .env("DATABASE_URL", format!("sqlite://{}", db.display()))
                .args(&args)
                .output()
                .unwrap(),
        );
        ran.expect(0);
        assert!(!ran.stdout.is_empty(), "{cmd}");
    }
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn demo_without_keep_leaves_nothing() {
    let child = bin()
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let folder = std::env::temp_dir().join(format!("backfill-demo-{}", child.id()));
    let out = Run::from(child.wait_with_output().unwrap());
    out.expect(0);
    assert!(
        out.stdout.contains(&folder.display().to_string()),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Kept "), "{}", out.stdout);
    assert!(out.stdout.contains("demo --keep"), "{}", out.stdout);
    assert!(!folder.exists(), "left behind: {}", folder.display());
}

// ---- --version ----

#[test]
fn version_names_the_commit_and_every_migration_checksum() {
    let out = run(&["--version"]);
    out.expect(0);
    let first = out.stdout.lines().next().unwrap();
    assert_eq!(first, format!("backfill {}", env!("CARGO_PKG_VERSION")));
    assert!(
        out.stdout.lines().any(|l| l.starts_with("commit ")),
        "{}",
        out.stdout
    );
    for m in backfill::registry::all() {
        let line = format!("V{}__{}", m.version, m.name);
        let found = out
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&line))
            .unwrap_or_else(|| panic!("{line} missing:\n{}", out.stdout));
        assert!(found.ends_with(m.checksum), "{found}");
        assert_eq!(m.checksum.len(), 64);
    }
    let short = run(&["-V"]);
    short.expect(0);
    assert_eq!(short.stdout.lines().count(), 1, "{}", short.stdout);
    assert!(short.stdout.contains("(commit "), "{}", short.stdout);
}

// ---- sample data on every dialect ----

fn sample_data_loads_once(kind: Kind) {
    let t = TestDb::new(kind, &format!("sample_{}", kind as u8));
    let out = t.run(&["--format", "json", "sample-data", "--size", "60"]);
    out.expect(0);
    assert!(out.stdout.ends_with("}\n"), "{}", out.stdout);
    let doc = out.json();
    assert_eq!(doc["loaded"]["competencies"], 60);
    assert_eq!(t.int("SELECT COUNT(*) FROM competencies"), 60);
    // What it says the backfills will write is what the plan finds.
    let plan = t.run(&["--format", "json", "plan"]).expect(0).json();
    // Every migration of the binary, by name, whichever ship.
    let pending = doc["pending"].as_object().unwrap();
    let names: Vec<&str> = backfill::registry::all().iter().map(|m| m.name).collect();
    let listed: Vec<&str> = pending.keys().map(String::as_str).collect();
    assert_eq!(listed.len(), names.len(), "{doc}");
    assert!(names.iter().all(|n| listed.contains(n)), "{doc}");
    for (name, count) in pending {
        let total = plan["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name.as_str())
            .map(|p| &p["plan"]["total"]);
        assert_eq!(total, Some(count), "{name}: {plan}");
    }
    // A second load finds app rows: refused, exit 5, nothing added.
    let before = common::dump_all(&t);
    let again = t.run(&["sample-data"]);
    let line = again.one_line_error(5);
    assert!(
        line.contains("already has app rows") && line.contains("competencies: 60"),
        "{line}"
    );
    assert_eq!(common::dump_all(&t), before);
}

/// The app's tables already there and empty (the app migrated, nothing in it yet): filled.
fn sample_data_fills_empty_app_tables(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("sample_empty_{}", kind as u8));
    t.run(&["sample-data", "--size", "20"]).expect(0);
    assert_eq!(t.int("SELECT COUNT(*) FROM competencies"), 20);
}

on_every_dialect!(sample_data_loads_once, sample_data_fills_empty_app_tables);

#[test]
fn sample_data_refuses_a_database_with_some_app_tables() {
    let t = TestDb::new(Kind::Sqlite, "sample_partial");
    t.exec("CREATE TABLE competencies (id INTEGER PRIMARY KEY)");
    let line = t.run(&["sample-data"]).one_line_error(2).to_string();
    assert!(line.contains("not scenarios"), "{line}");
    t.exec("INSERT INTO competencies (id) VALUES (1)");
    t.run(&["sample-data"]).one_line_error(5);
}

#[test]
fn sample_data_creates_a_new_sqlite_file() {
    let d = dir("bf_sample_new");
    let db = d.join("new.db");
    let out = Run::from(
        bin()
            .args(["sample-data", "--size", "10", "--database-url"])
            .arg(format!("sqlite:{}", db.display()))
            .output()
            .unwrap(),
    );
    out.expect(0);
    assert!(db.is_file());
    let _ = std::fs::remove_dir_all(&d);
}

// ---- help ----

#[test]
fn help_lists_global_flags_once_and_only_where_they_apply() {
    let top = run(&["--help"]);
    top.expect(0);
    for flag in [
        "--database-url <URL>",
        "--env-file <PATH>",
        "--format <FORMAT>",
        "--quiet",
        "--operator <NAME>",
        "--log-format",
    ] {
        assert_eq!(
            top.stdout.matches(flag).count(),
            1,
            "{flag}:\n{}",
            top.stdout
        );
    }
    let env_file = top
        .stdout
        .lines()
        .find(|l| l.contains("--env-file <PATH>"))
        .unwrap();
    assert!(
        env_file.contains("DB_URL") && env_file.contains("DB_SSLMODE"),
        "{env_file}"
    );
    for sub in ["new", "demo"] {
        let help = run(&[sub, "--help"]);
        help.expect(0);
        for flag in ["--database-url", "--env-file", "--format", "--operator"] {
            assert!(!help.stdout.contains(flag), "{sub} --help: {}", help.stdout);
        }
    }
    // A database command names the global flags that apply, and describes only its own.
    let status = run(&["status", "--help"]);
    status.expect(0);
    assert!(
        status
            .stdout
            .contains("Global options (--database-url, --env-file"),
        "{}",
        status.stdout
    );
    assert!(
        !status.stdout.contains("--database-url <URL>"),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("--quiet"), "{}", status.stdout);
    // They still work before or after the command.
    let t = TestDb::new(Kind::Sqlite, "help_positions");
    Run::from(
        bin()
            .args(["status", "--database-url", &t.url, "-q"])
            .output()
            .unwrap(),
    )
    .expect(0);
    Run::from(
        bin()
            .args(["--database-url", &t.url, "--format", "json", "status"])
            .output()
            .unwrap(),
    )
    .expect(0);
    // new and demo refuse a database given to them, instead of ignoring it.
    let line = run(&["demo", "--database-url", &t.url])
        .one_line_error(2)
        .to_string();
    assert!(line.contains("sample-data"), "{line}");
}

#[test]
fn every_argument_has_a_one_line_description_with_its_default() {
    let cmd = backfill::cli::command();
    let mut missing = Vec::new();
    for sub in cmd.get_subcommands() {
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values())
                || arg.get_action().takes_values();
            let has_default = !arg.get_default_values().is_empty()
                || arg.get_env().is_some()
                || help.contains("default")
                || arg.is_required_set();
            if help.is_empty() || help.contains('\n') || (takes_value && !has_default) {
                missing.push(format!("{} {id}: {help:?}", sub.get_name()));
            }
        }
    }
    for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        if help.is_empty() || help.contains('\n') {
            missing.push(format!("global {}: {help:?}", arg.get_id()));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

// ---- where a value came from ----

/// `status --env-file FILE`'s one error line (exit 2).
fn status_with_env_file(file: &Path) -> String {
    let out = Run::from(
        bin()
            .arg("--env-file")
            .arg(file)
            .arg("status")
            .output()
            .unwrap(),
    );
    out.one_line_error(2).to_string()
}

#[test]
fn errors_name_where_the_database_came_from() {
    let d = dir("bf_origin");
    let missing = d.join("missing.db");
    let url = format!("sqlite://{}", missing.display());
    let flag = Run::from(
        bin()
            .args(["status", "--database-url", &url])
            .output()
            .unwrap(),
    );
    let line = flag.one_line_error(2).to_string();
    assert!(line.contains("check the path in --database-url"), "{line}");
    let env = Run::from(
        bin()
            .env("DATABASE_URL", &url)
            .arg("status")
            .output()
            .unwrap(),
    );
    let line = env.one_line_error(2).to_string();
    assert!(line.contains("check the path in DATABASE_URL"), "{line}");
    std::fs::write(&missing, "not a database, just text\n".repeat(100)).unwrap();
    let not_db = Run::from(
        bin()
            .args(["status", "--database-url", &url])
            .output()
            .unwrap(),
    );
    let line = not_db.one_line_error(2).to_string();
    assert!(line.contains("the file --database-url names"), "{line}");
    std::fs::remove_file(&missing).unwrap();
    let bad = Run::from(
        bin()
            .env("DATABASE_URL", "db.internal/app")
            .arg("status")
            .output()
            .unwrap(),
    );
    let line = bad.one_line_error(2).to_string();
    assert!(line.contains("came from DATABASE_URL"), "{line}");

    let env_file = d.join(".env");
    std::fs::write(&env_file, "DB_URL=db.internal/app\n").unwrap();
    let line = status_with_env_file(&env_file);
    assert!(
        line.contains(&format!("came from DB_URL in {}", env_file.display())),
        "{line}"
    );
    std::fs::write(
        &env_file,
        "DB_CONNECTION=sqlite\nDB_DATABASE=database/app.sqlite\n",
    )
    .unwrap();
    let line = status_with_env_file(&env_file);
    assert!(
        line.contains(&format!("check DB_DATABASE in {}", env_file.display())),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Laravel resolves a relative SQLite DB_DATABASE from the app's folder, where its .env is: so do we,
/// whatever the current directory.
#[test]
fn relative_sqlite_database_in_env_file_is_from_its_folder() {
    let t = TestDb::with_app(Kind::Sqlite, "env_relative");
    let app = dir("bf_env_relative_app");
    std::fs::create_dir_all(app.join("database")).unwrap();
    std::fs::copy(t.sqlite_path().unwrap(), app.join("database/app.sqlite")).unwrap();
    std::fs::write(
        app.join(".env"),
        "DB_CONNECTION=sqlite\nDB_DATABASE=database/app.sqlite\n",
    )
    .unwrap();
    let elsewhere = dir("bf_env_relative_cwd");
    let out = Run::from(
        bin()
            .current_dir(&elsewhere)
            .env_remove("DB_DATABASE")
            .env_remove("DB_CONNECTION")
            .arg("--env-file")
            .arg(app.join(".env"))
            .arg("status")
            .output()
            .unwrap(),
    );
    out.expect(0);
    let first = out.stdout.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "target: sqlite://{}",
            app.join("database/app.sqlite").display()
        )
    );
    let _ = std::fs::remove_dir_all(&app);
    let _ = std::fs::remove_dir_all(&elsewhere);
}

#[test]
fn sqlite_url_with_one_slash_is_accepted() {
    let t = TestDb::with_app(Kind::Sqlite, "one_slash");
    let path = t.sqlite_path().unwrap();
    let out = Run::from(
        bin()
            .env("DATABASE_URL", format!("sqlite:{}", path.display()))
            .arg("status")
            .output()
            .unwrap(),
    );
    out.expect(0);
    assert!(
        out.stdout
            .starts_with(&format!("target: sqlite://{}\n", path.display())),
        "{}",
        out.stdout
    );
}

// ---- small things ----

#[test]
fn json_output_ends_with_a_newline() {
    let t = TestDb::with_app(Kind::Sqlite, "json_newline");
    seed_edge_cases(&t);
    for args in [
        &["--format", "json", "status"][..],
        &["--format", "json", "plan"],
        &["--format", "json", "apply"],
        &["--format", "json", "verify"],
        &["--format", "json", "log"],
        &["--format", "json", "revert", "202611230002"],
    ] {
        let out = t.run(args);
        out.expect(0);
        assert!(out.stdout.ends_with("}\n"), "{args:?}: {:?}", out.stdout);
        out.json();
    }
}

#[test]
fn one_row_is_one_row() {
    let t = TestDb::with_app(Kind::Sqlite, "one_row");
    seed_edge_cases(&t);
    // The role migration writes one row (scenarios of one row each), in one batch.
    for args in [&["plan"][..], &["plan", "--samples", "0"], &["apply"]] {
        let out = t.run(args);
        out.expect(0);
        assert!(out.stdout.contains(" 1 row"), "{args:?}: {}", out.stdout);
        for bad in [" 1 rows", " 1 batches"] {
            assert!(!out.stdout.contains(bad), "{args:?}: {}", out.stdout);
        }
    }
    let log = t.run(&["log", "202611230002"]);
    log.expect(0);
    assert!(log.stdout.contains(" 1 row "), "{}", log.stdout);
    assert!(
        log.stdout.contains("wrote 1 row in 1 batch"),
        "{}",
        log.stdout
    );
}

/// `status` fits 80 columns after a deploy: the reverted-rows column only once rows were reverted,
/// times to the minute; JSON keeps every field.
#[test]
fn status_fits_80_columns() {
    let t = TestDb::with_app(Kind::Sqlite, "status_width");
    t.run(&["sample-data", "--size", "100"]).expect(0);
    // The HR migrations only: whatever else ships stays pending, as in a real deploy's status.
    t.run(&["apply", "--to", &V_ROLE.to_string()]).expect(0);
    let widest = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let status = t.run(&["status"]);
    status.expect(0);
    assert!(widest(&status.stdout) <= 80, "{}", status.stdout);
    assert!(!status.stdout.contains("REVERTED"), "{}", status.stdout);
    let json = t.run(&["--format", "json", "status"]).json();
    assert_eq!(json["migrations"][0]["rows_reverted"], 0, "{json}");
    let updated = json["migrations"][0]["updated_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(updated.len(), 19, "JSON keeps the seconds: {json}");
    assert!(status.stdout.contains(&updated[..16]), "{}", status.stdout);
    assert!(
        !status.stdout.contains(&updated),
        "to the minute: {}",
        status.stdout
    );
    let scenario = t.int(
        "SELECT MIN(json_extract(metadata, '$.scenario_id')) FROM competency_versions \
         WHERE json_extract(metadata, '$.migration') = 202611230001",
    );
    let v = V_COMPETENCY.to_string();
    t.run(&["revert", &v, "--scenario", &scenario.to_string()])
        .expect(0);
    let status = t.run(&["status"]);
    assert!(status.stdout.contains("REVERTED"), "{}", status.stdout);
}

#[test]
fn no_lock_file_beside_a_sqlite_database() {
    let t = TestDb::with_app(Kind::Sqlite, "no_lock_file");
    seed_edge_cases(&t);
    t.run(&["apply"]).expect(0);
    t.run(&["revert", "202611230001"]).expect(0);
    let path = t.sqlite_path().unwrap();
    let dir = path.parent().unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().to_string();
    let beside: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&stem) && n != &stem)
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
    let ignore =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitignore")).unwrap();
    assert!(!ignore.contains("backfill-lock"), "{ignore}");
}

/// The README says: a fresh `apply` computes no plan; the log pairs it with the plan run before it.
#[test]
fn log_pairs_an_apply_with_the_plan_before_it() {
    let t = TestDb::with_app(Kind::Sqlite, "log_pairs");
    seed_edge_cases(&t);
    t.run(&["apply", "202611230002"]).expect(0);
    t.run(&["plan", "202611230001"]).expect(0);
    t.run(&["apply", "202611230001"]).expect(0);
    let log = t.run(&["--format", "markdown", "log"]);
    log.expect(0);
    let rows: Vec<&str> = log
        .stdout
        .lines()
        .filter(|l| l.contains("| apply |"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", log.stdout);
    let role = rows.iter().find(|r| r.contains("202611230002")).unwrap();
    let competency = rows.iter().find(|r| r.contains("202611230001")).unwrap();
    // Unplanned: `-`; planned: the plan's counts per scenario.
    assert!(role.contains("| - |"), "{role}");
    assert!(competency.contains("| 3 (3: 1, 5: 2) |"), "{competency}");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        !readme.contains("first computes the plan"),
        "README still says so"
    );
}

// ---- shipping ----

/// The shipped binary has no debug info and no symbol table; `make dist` (run by
/// `make_dist_ships_a_stripped_binary_and_its_sum`) builds it with this profile.
#[test]
fn release_profile_ships_no_debug_info() {
    let manifest = toml_lite::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    assert_eq!(
        manifest.get("profile.release", "debug").as_deref(),
        Some("0")
    );
    assert_eq!(
        manifest.get("profile.release", "strip").as_deref(),
        Some("true")
    );
}

/// A few lines of TOML as `section -> key -> raw value`; enough for Cargo.toml's profile.
mod toml_lite {
    use std::collections::HashMap;
    use std::path::Path;

    pub struct Doc(HashMap<(String, String), String>);

    pub fn read(path: impl AsRef<Path>) -> Doc {
        let text = std::fs::read_to_string(path).unwrap();
        let mut section = String::new();
        let mut map = HashMap::new();
        for line in text.lines().map(str::trim) {
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_string();
            } else if let Some((k, v)) = line.split_once('=') {
                if !line.starts_with('#') {
                    map.insert(
                        (section.clone(), k.trim().to_string()),
                        v.trim().to_string(),
                    );
                }
            }
        }
        Doc(map)
    }

    impl Doc {
        pub fn get(&self, section: &str, key: &str) -> Option<String> {
            self.0.get(&(section.to_string(), key.to_string())).cloned()
        }
    }
}
