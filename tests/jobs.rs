//! `--jobs N`: parallel workers on chunks of the key range. The rows they write (and revert) are
//! exactly those of one job, on every dialect; a parallel run stopped anywhere resumes exactly, with
//! any number of jobs; its counts reach the ledger and the audit table.

mod common;
use backfill::registry;
use common::{seed_generated, Kind, TestDb, V_COMPETENCY};

/// Columns that legitimately differ between two runs writing the same rows: keys the database
/// assigns in commit order, and times.
const VARYING: [&str; 3] = ["id", "created_at", "updated_at"];

/// Every row of the app's tables without the varying columns, UUIDs (random version groups, run ids
/// in markers) masked, sorted: equal for two databases holding the same rows.
fn content(t: &TestDb) -> Vec<String> {
    let mut out = Vec::new();
    for table in backfill::fixtures::TABLES {
        let columns_sql = match t.kind {
            Kind::Postgres => format!("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"),
            Kind::Mariadb => format!("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position"),
            Kind::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        };
        let columns: Vec<String> = t
            .rows(&columns_sql)
            .iter()
            .filter_map(|r| r[0].as_str().map(str::to_string))
            .filter(|c| !VARYING.contains(&c.as_str()))
            .collect();
        let mut rows: Vec<String> = t
            .rows(&format!("SELECT {} FROM {table}", columns.join(", ")))
            .iter()
            .map(|r| format!("{table} {}", mask_uuids(&format!("{r:?}"))))
            .collect();
        rows.sort();
        out.extend(rows);
    }
    out
}

/// Replaces every 8-4-4-4-12 hex UUID in `text` with `<uuid>`.
fn mask_uuids(text: &str) -> String {
    let b = text.as_bytes();
    let shape = [8, 4, 4, 4, 12];
    let is_uuid_at = |i: usize| -> bool {
        let mut p = i;
        for (n, len) in shape.iter().enumerate() {
            if n > 0 {
                if b.get(p) != Some(&b'-') {
                    return false;
                }
                p += 1;
            }
            for _ in 0..*len {
                if !b.get(p).is_some_and(u8::is_ascii_hexdigit) {
                    return false;
                }
                p += 1;
            }
        }
        true
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if is_uuid_at(i) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The group with the most rows in `version`'s plan, for a one-group revert; `None` when the
/// migration has no groups.
fn biggest_group(t: &TestDb, version: i64) -> Option<i64> {
    let reg = registry::find(version)?;
    reg.migration.grouping()?;
    let run = t.run(&["--format", "json", "plan", &version.to_string()]);
    run.expect(0);
    let doc = run.json();
    doc["plans"][0]["plan"]["groups"]
        .as_array()?
        .iter()
        .max_by_key(|g| g["count"].as_i64().unwrap_or(0))
        .and_then(|g| g["key"].as_i64())
}

/// Whether this dialect runs parallel jobs (SQLite runs them as 1).
fn parallel(kind: Kind) -> bool {
    kind != Kind::Sqlite
}

/// The audit outcome of the newest run of `version`'s `action`.
fn last_outcome(t: &TestDb, version: i64, action: &str) -> String {
    t.text(&format!(
        "SELECT outcome FROM backfill_runs WHERE version = {version} AND action = '{action}' ORDER BY started_at DESC, run_id DESC LIMIT 1"
    ))
    .unwrap_or_default()
}

/// Apply, a one-group revert and a full revert of every registered migration with 2 and 4 jobs
/// leave exactly the rows of 1 job; the ledger and audit counts match what is in the tables.
fn jobs_write_exactly_the_rows_of_one_job(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("jobs_same_{}", kind as u8));
    seed_generated(&t, 400);
    t.create_ledger();
    let before = content(&t);
    let groups: Vec<(i64, Option<i64>)> = registry::all()
        .iter()
        .map(|r| (r.version, biggest_group(&t, r.version)))
        .collect();
    let mut reference: Option<(Vec<String>, Vec<String>)> = None;
    for jobs in ["1", "2", "4"] {
        let batch = ["--jobs", jobs, "--batch-size", "7", "--lock-timeout", "30"];
        for (version, _) in &groups {
            let v = version.to_string();
            let mut args = vec!["apply", v.as_str()];
            args.extend(batch);
            t.run(&args).expect(0);
            let outcome = last_outcome(&t, *version, "apply");
            if jobs != "1" && parallel(kind) {
                assert!(
                    outcome.ends_with(&format!("{jobs} jobs")),
                    "--jobs {jobs}: the apply ran in parallel: {outcome}"
                );
            } else {
                assert!(
                    !outcome.contains("job"),
                    "--jobs {jobs} on {kind:?} runs as 1: {outcome}"
                );
            }
        }
        let applied = content(&t);
        assert_ne!(applied, before, "the migrations wrote rows");
        for (version, _) in &groups {
            let audited = t.int(&format!(
                "SELECT row_count FROM backfill_runs WHERE version = {version} AND action = 'apply' \
                 ORDER BY started_at DESC, run_id DESC LIMIT 1"
            ));
            let live =
                t.ledger_int(version, "rows_applied") - t.ledger_int(version, "rows_reverted");
            assert_eq!(live, audited, "--jobs {jobs}: V{version} ledger vs audit");
        }
        assert_eq!(
            t.rows_applied(V_COMPETENCY),
            t.marked_competencies().len() as i64,
            "--jobs {jobs}: the ledger counts what is in the table"
        );
        assert_eq!(t.int("SELECT COUNT(*) FROM backfill_chunks"), 0, "folded");
        for (version, group) in &groups {
            let Some(g) = group else { continue };
            let (v, g) = (version.to_string(), g.to_string());
            let mut args = vec!["revert", v.as_str(), "--group", g.as_str()];
            args.extend(batch);
            t.run(&args).expect(0);
        }
        let one_group_reverted = content(&t);
        assert_ne!(one_group_reverted, applied, "a group was reverted");
        match &reference {
            None => reference = Some((applied, one_group_reverted)),
            Some((a, g)) => {
                assert!(
                    *a == applied,
                    "--jobs {jobs}: apply wrote other rows than --jobs 1"
                );
                assert!(
                    *g == one_group_reverted,
                    "--jobs {jobs}: the one-group revert left other rows than --jobs 1"
                );
            }
        }
        for (version, _) in &groups {
            let v = version.to_string();
            let mut args = vec!["revert", v.as_str()];
            args.extend(batch);
            t.run(&args).expect(0);
            assert_eq!(t.state(*version).as_deref(), Some("reverted"));
        }
        assert!(
            content(&t) == before,
            "--jobs {jobs}: revert left other rows than there were before apply"
        );
        assert_eq!(t.int("SELECT COUNT(*) FROM backfill_chunks"), 0, "folded");
    }
}

/// A parallel apply that fails mid-run keeps its chunks; it resumes with any number of jobs (the
/// chunks are taken over; 1 job works them one at a time), and the counts add up across attempts.
fn parallel_apply_resumes_with_any_jobs(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("jobs_resume_{}", kind as u8));
    seed_generated(&t, 300);
    let expected = t.expected_competencies();
    let v = V_COMPETENCY.to_string();
    for (jobs, fail_at) in [("2", "5"), ("4", "3")] {
        let out = t.run_env(
            &["apply", &v, "--jobs", jobs, "--batch-size", "6"],
            &[("BACKFILL_TEST_FAIL_AT_BATCH", fail_at)],
        );
        let line = out.one_line_error(1).to_string();
        assert!(line.contains("injected failure"), "{line}");
        assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("failed"));
        let written = t.marked_competencies();
        assert!(written.len() < expected.len(), "stopped mid-run");
        if parallel(kind) {
            assert!(
                t.int("SELECT COUNT(*) FROM backfill_chunks") > 0,
                "chunks kept"
            );
        }
        let audited = t.int(&format!(
            "SELECT COALESCE(SUM(row_count), 0) FROM backfill_runs WHERE version = {V_COMPETENCY} AND action = 'apply'"
        ));
        assert_eq!(
            audited,
            written.len() as i64,
            "--jobs {jobs}: the failed runs' audit rows"
        );
    }
    t.run(&["apply", &v, "--jobs", "1", "--batch-size", "11"])
        .expect(0);
    assert_eq!(t.marked_competencies(), expected, "no duplicate, no gap");
    assert_eq!(t.rows_applied(V_COMPETENCY), expected.len() as i64);
    let audited = t.int(&format!(
        "SELECT COALESCE(SUM(row_count), 0) FROM backfill_runs WHERE version = {V_COMPETENCY} AND action = 'apply'"
    ));
    assert_eq!(
        audited,
        expected.len() as i64,
        "audit counts add up across attempts"
    );
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_chunks"),
        0,
        "chunks folded"
    );
    let resumed = last_outcome(&t, V_COMPETENCY, "apply");
    if parallel(kind) {
        assert!(
            resumed.ends_with("1 job"),
            "1 job took the chunks over: {resumed}"
        );
    }
}

/// A parallel revert that fails mid-run, then `apply` of the same migration (a fresh apply): the
/// revert's chunks are counted into the ledger before the apply starts, so the ledger's live count
/// equals the rows in the table, and verify agrees.
fn unfinished_parallel_revert_is_counted_by_the_next_apply(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("jobs_stale_{}", kind as u8));
    seed_generated(&t, 300);
    let expected = t.expected_competencies();
    let v = V_COMPETENCY.to_string();
    t.run(&["apply", &v, "--jobs", "2"]).expect(0);
    let out = t.run_env(
        &["revert", &v, "--jobs", "2", "--batch-size", "25"],
        &[("BACKFILL_TEST_FAIL_AT_BATCH", "6")],
    );
    out.one_line_error(1);
    let left = t.marked_competencies().len();
    assert!(
        left > 0 && left < expected.len(),
        "the revert stopped mid-run: {left} of {} left",
        expected.len()
    );
    t.run(&["apply", &v, "--jobs", "2"]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
    let live =
        t.ledger_int(V_COMPETENCY, "rows_applied") - t.ledger_int(V_COMPETENCY, "rows_reverted");
    assert_eq!(live, expected.len() as i64, "live rows in the ledger");
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_chunks"),
        0,
        "chunks folded"
    );
    t.run(&["verify", "--data", "--strict"]).expect(0);
}

/// The workers' `(worker, rows)` of every committed batch, from the debug log.
fn batches_by_worker(stderr: &str) -> Vec<(String, i64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let worker = l.split_once("worker ")?.1.split_once(' ')?.0.to_string();
            let rows = l
                .split_once(" committed, ")?
                .1
                .split_once(" rows")?
                .0
                .parse()
                .ok()?;
            Some((worker, rows))
        })
        .collect()
}

/// Sparse keys: one competency far above the others puts every other key in the first of two
/// equal-width chunks. The second worker finishes its near-empty chunk at once and then splits the
/// first one, so both write rows, and the rows are those of one job.
fn sparse_keys_leave_no_job_idle(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("jobs_sparse_{}", kind as u8));
    seed_generated(&t, 400);
    let far = 1_000_000_000_000_i64;
    let ts = "'2026-01-15 10:00:00'";
    t.exec(&format!(
        "INSERT INTO competencies (id, organization_id, name, description, status, created_at, updated_at) \
         VALUES ({far}, 1, 'far away', NULL, 'active', {ts}, {ts})"
    ));
    let (cap, scenario) = {
        let r = t.rows(
            "SELECT id, discovered_in_scenario_id FROM capabilities WHERE discovered_in_scenario_id IS NOT NULL ORDER BY id LIMIT 1",
        );
        (r[0][0].as_i64().unwrap_or(0), r[0][1].as_i64().unwrap_or(0))
    };
    t.exec(&format!(
        "INSERT INTO capability_competencies (scenario_id, capability_id, competency_id, required_level, created_at, updated_at) \
         VALUES ({scenario}, {cap}, {far}, 3, {ts}, {ts})"
    ));
    let expected = t.expected_competencies();
    let v = V_COMPETENCY.to_string();
    let out = t.run_env(
        &["apply", &v, "--jobs", "2", "--batch-size", "10"],
        &[
            ("RUST_LOG", "backfill=debug"),
            ("BACKFILL_TEST_BATCH_DELAY_MS", "10"),
        ],
    );
    out.expect(0);
    assert!(
        out.stderr.contains("split chunk"),
        "the idle worker split the busy chunk:\n{}",
        out.stderr
    );
    let mut writers: Vec<String> = batches_by_worker(&out.stderr)
        .into_iter()
        .filter(|(_, rows)| *rows > 0)
        .map(|(w, _)| w)
        .collect();
    writers.sort();
    writers.dedup();
    assert_eq!(writers.len(), 2, "both workers wrote rows:\n{}", out.stderr);
    assert_eq!(t.marked_competencies(), expected, "no duplicate, no gap");
    assert_eq!(t.rows_applied(V_COMPETENCY), expected.len() as i64);
}

/// The first chunks a parallel run logged: its span and each chunk's first key.
fn first_chunks(stderr: &str) -> (String, Vec<i64>) {
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("first chunks over the span ").map(|x| x.1))
        .unwrap_or_else(|| panic!("no first chunks in the log:\n{stderr}"));
    let (span, chunks) = line.split_once(": ").unwrap_or((line, ""));
    let los = chunks
        .split(", ")
        .filter_map(|c| c.split_once("..=")?.0.trim().parse().ok())
        .collect();
    (span.to_string(), los)
}

/// The app's own versions fill the low ids, below every row the migration wrote: a parallel revert
/// still splits the migration's rows between its workers (its span is theirs, not the table's), so
/// no worker is handed only the app's rows, and the revert deletes exactly what was written.
fn parallel_revert_splits_the_marked_rows(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("jobs_revert_span_{}", kind as u8));
    seed_generated(&t, 300);
    let ts = "'2026-01-15 10:00:00'";
    for _ in 0..6 {
        t.exec(&format!(
            "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, created_at, updated_at) \
             SELECT organization_id, NULL, name, 'stable', {ts}, {ts} FROM competencies"
        ));
    }
    let v = V_COMPETENCY.to_string();
    t.run(&["apply", &v]).expect(0);
    let app_rows =
        t.int("SELECT COUNT(*) FROM competency_versions") - t.marked_competencies().len() as i64;
    let (lowest, highest) = {
        let d = t.session().dialect();
        let r = t.rows(&format!(
            "SELECT MIN(id), MAX(id) FROM competency_versions WHERE {} = '{v}'",
            d.json_text("metadata", "migration")
        ));
        (r[0][0].as_i64().unwrap_or(0), r[0][1].as_i64().unwrap_or(0))
    };
    assert!(
        lowest > 1_800,
        "the app's rows lie below the marked ones ({lowest})"
    );
    let out = t.run_env(
        &["revert", &v, "--jobs", "2", "--batch-size", "50"],
        &[("RUST_LOG", "backfill=debug")],
    );
    out.expect(0);
    let (span, los) = first_chunks(&out.stderr);
    assert_eq!(
        span,
        format!("Some(({lowest}, {highest}))"),
        "{}",
        out.stderr
    );
    assert_eq!(los.len(), 2, "{}", out.stderr);
    assert!(
        lowest < los[1] && los[1] <= highest,
        "the second worker's chunk starts among the marked rows ({lowest}..={highest}), not at {}:\n{}",
        los[1],
        out.stderr
    );
    assert!(
        t.marked_competencies().is_empty(),
        "every marked row deleted"
    );
    assert_eq!(
        t.int("SELECT COUNT(*) FROM competency_versions"),
        app_rows,
        "the app's own rows untouched"
    );
}

/// `--help` of apply and revert documents --jobs, and that SQLite runs it as 1.
fn help_documents_jobs(_kind: Kind) {
    for command in ["apply", "revert"] {
        let out = common::bin()
            .args([command, "--help"])
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(text.contains("--jobs <N>"), "{command} --help: {text}");
        assert!(
            text.contains("SQLite runs as 1"),
            "{command} --help: {text}"
        );
    }
}

on_every_dialect!(
    jobs_write_exactly_the_rows_of_one_job,
    parallel_apply_resumes_with_any_jobs,
    unfinished_parallel_revert_is_counted_by_the_next_apply,
);

mod revert_span {
    #[test]
    fn postgres() {
        super::parallel_revert_splits_the_marked_rows(super::Kind::Postgres)
    }
    #[test]
    fn mariadb() {
        super::parallel_revert_splits_the_marked_rows(super::Kind::Mariadb)
    }
}

mod sparse {
    #[test]
    fn postgres() {
        super::sparse_keys_leave_no_job_idle(super::Kind::Postgres)
    }
    #[test]
    fn mariadb() {
        super::sparse_keys_leave_no_job_idle(super::Kind::Mariadb)
    }
}

#[test]
fn help_says_sqlite_runs_as_one_job() {
    help_documents_jobs(Kind::Sqlite);
}
