//! Health throttles (issue 23): each one induced for real on a real server, seen holding the run
//! (its reason on the progress line, no batch written meanwhile), and the run going on to the exact
//! rows once the condition ends.

mod common;
use common::live::Live;
use common::{seed_generated, Kind, TestDb, V_COMPETENCY};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(90);

fn apply(t: &TestDb, extra: &[&str], delay_ms: &str) -> Live {
    let v = V_COMPETENCY.to_string();
    let mut args = vec![
        "apply",
        v.as_str(),
        "--batch-size",
        "20",
        "--throttle-every",
        "100",
    ];
    args.extend_from_slice(extra);
    let mut cmd = t.command(&args);
    cmd.env("BACKFILL_TEST_BATCH_DELAY_MS", delay_ms);
    Live::spawn(cmd)
}

/// The run ended well and wrote exactly the rows the migration owed when it started (`want`).
fn finished_exact(t: &TestDb, live: Live, want: std::collections::BTreeSet<(i64, i64)>) {
    live.finish(LONG).expect(0);
    assert_eq!(t.marked_competencies(), want);
}

fn written(t: &TestDb) -> usize {
    t.marked_competencies().len()
}

/// `--throttle-sql`: a true first column holds the run before its first batch; false lets it go.
fn throttle_sql_holds_until_false(kind: Kind) {
    let t = TestDb::with_app(kind, "health_sql");
    seed_generated(&t, 60);
    let want = t.expected_competencies();
    common::live::hold(&t);
    let mut live = apply(&t, &["--throttle-sql", common::live::HOLD_SQL], "0");
    // Held before any batch: still nothing written after several looks.
    live.wait_for_lines("waiting: --throttle-sql says wait", 3, LONG);
    assert_eq!(written(&t), 0, "a held run wrote rows");
    common::live::release(&t);
    finished_exact(&t, live, want);
}

/// A --throttle-sql that cannot run is exit 2 in one line, before the ledger exists.
fn bad_throttle_sql_is_refused_before_writing(kind: Kind) {
    let t = TestDb::with_app(kind, "health_badsql");
    seed_generated(&t, 10);
    let before = common::dump_all(&t);
    let v = V_COMPETENCY.to_string();
    let run = t.run(&["apply", &v, "--throttle-sql", "SELECT FROM nowhere_at_all"]);
    let line = run.one_line_error(2);
    assert!(line.contains("--throttle-sql failed"), "{line}");
    assert_eq!(
        common::dump_all(&t),
        before,
        "a refused run changed the database"
    );
}

on_every_dialect!(
    throttle_sql_holds_until_false,
    bad_throttle_sql_is_refused_before_writing
);

#[test]
fn threads_running_burst_holds_mariadb() {
    let t = TestDb::with_app(Kind::Mariadb, "health_threads");
    seed_generated(&t, 60);
    let want = t.expected_competencies();
    let tag = format!("bf_burst_{}", std::process::id());
    // 40 connections each running a long SLEEP: Threads_running climbs past 25 for real.
    let sleepers: Vec<_> = (0..40)
        .map(|_| {
            let (url, tag) = (t.url.clone(), tag.clone());
            std::thread::spawn(move || {
                let target = backfill::db::Target::parse(&url).expect("url");
                let mut s = backfill::db::connect(&target).expect("connect");
                // Ends early when the test kills the query; the error is expected then.
                let _ = s.query(&format!("SELECT /* {tag} */ SLEEP(120)"), &[]);
            })
        })
        .collect();
    let running = || {
        t.int(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%/* {tag} */%' AND INFO NOT LIKE '%PROCESSLIST%'"
        ))
    };
    while running() < 40 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut live = apply(&t, &["--max-threads-running", "25"], "0");
    let line = live.wait_for("waiting: Threads_running", LONG);
    assert!(line.contains("> --max-threads-running 25"), "{line}");
    assert_eq!(written(&t), 0, "a held run wrote rows");
    let ids = t.rows(&format!(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%/* {tag} */%' AND INFO NOT LIKE '%PROCESSLIST%'"
    ));
    for id in ids {
        let id = id[0].as_i64().expect("id");
        let _ = t.session().execute(&format!("KILL QUERY {id}"), &[]);
    }
    for s in sleepers {
        s.join().expect("sleeper");
    }
    finished_exact(&t, live, want);
}

#[test]
fn vacuum_on_a_walked_table_holds_postgres() {
    let t = TestDb::with_app(Kind::Postgres, "health_vacuum");
    seed_generated(&t, 3000);
    let want = t.expected_competencies();
    // A manual VACUUM slowed to a crawl by its own cost limit: pg_stat_progress_vacuum shows it for
    // as long as the test needs, then the test cancels it.
    let url = t.url.clone();
    let vacuum = std::thread::spawn(move || {
        let target = backfill::db::Target::parse(&url).expect("url");
        let mut s = backfill::db::connect(&target).expect("connect");
        s.execute("SET vacuum_cost_delay = 100", &[]).expect("set");
        s.execute("SET vacuum_cost_limit = 1", &[]).expect("set");
        let _ = s.execute("VACUUM competencies", &[]);
    });
    let vacuuming = "SELECT COUNT(*) FROM pg_stat_progress_vacuum v JOIN pg_class c ON c.oid = v.relid WHERE c.relname = 'competencies' AND v.datname = current_database()";
    while t.int(vacuuming) == 0 {
        assert!(!vacuum.is_finished(), "the VACUUM ended before it was seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut live = apply(&t, &["--throttle-vacuum"], "0");
    live.wait_for("waiting: VACUUM running on competencies", LONG);
    assert_eq!(written(&t), 0, "a held run wrote rows");
    t.exec("SELECT pg_cancel_backend(pid) FROM pg_stat_progress_vacuum WHERE datname = current_database()");
    vacuum.join().expect("vacuum thread");
    finished_exact(&t, live, want);
}

#[test]
fn sessions_waiting_on_our_batch_hold_the_next_postgres() {
    let t = TestDb::with_app(Kind::Postgres, "health_locks");
    seed_generated(&t, 60);
    let want = t.expected_competencies();
    // Each batch holds its locks for 400 ms before it commits; another session asks for a lock
    // that conflicts with the batch's row-exclusive lock, and waits for it.
    let mut live = apply(&t, &["--throttle-lock-waits"], "400");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = t.url.clone();
    let flag = std::sync::Arc::clone(&stop);
    let locker = std::thread::spawn(move || {
        let target = backfill::db::Target::parse(&url).expect("url");
        let mut s = backfill::db::connect(&target).expect("connect");
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            s.begin(false).expect("begin");
            s.execute("LOCK TABLE competency_versions IN SHARE MODE", &[])
                .expect("lock");
            s.commit().expect("commit");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let line = live.wait_for("waited on our batch's locks", LONG);
    assert!(line.contains("waiting: 1 session waited"), "{line}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    locker.join().expect("locker");
    finished_exact(&t, live, want);
}

#[test]
fn a_throttle_for_another_server_is_refused() {
    let t = TestDb::with_app(Kind::Sqlite, "health_wrong");
    let v = V_COMPETENCY.to_string();
    let line = t
        .run(&["apply", &v, "--max-threads-running", "5"])
        .one_line_error(2)
        .to_string();
    assert!(
        line.contains("--max-threads-running is for MySQL/MariaDB"),
        "{line}"
    );
    let line = t
        .run(&["apply", &v, "--throttle-vacuum"])
        .one_line_error(2)
        .to_string();
    assert!(
        line.contains("--throttle-vacuum is for PostgreSQL"),
        "{line}"
    );
    assert!(
        !t.has_table("backfill_migrations"),
        "a refused run created the ledger"
    );
}

/// `--max-wal-pending`: on a server of its own whose archive_command fails, finished WAL segments
/// pile up for real (`pg_switch_wal`); once the archiver works again the run goes on.
#[test]
fn wal_waiting_for_the_archiver_holds_postgres() {
    let server = common::topology::PgServer::start();
    let admin = |sql: &str| {
        server
            .sql("postgres", sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    admin("ALTER SYSTEM SET archive_mode = on");
    admin("ALTER SYSTEM SET archive_command = 'false'");
    server.restart();
    server.create_database("bf_wal");
    let t = TestDb::wrap_for_seeding(&server.url("bf_wal"));
    backfill::fixtures::load_schema(t.session().as_mut()).expect("load app schema");
    seed_generated(&t, 60);
    let want = t.expected_competencies();
    t.exec("CREATE TABLE wal_filler (x INTEGER)");
    for _ in 0..5 {
        t.exec("INSERT INTO wal_filler SELECT generate_series(1, 1000)");
        t.exec("SELECT pg_switch_wal()");
    }
    let mut live = apply(&t, &["--max-wal-pending", "2"], "0");
    let line = live.wait_for("WAL segments not archived > --max-wal-pending 2", LONG);
    assert!(line.contains("waiting: "), "{line}");
    assert_eq!(written(&t), 0, "a held run wrote rows");
    admin("ALTER SYSTEM SET archive_command = 'true'");
    admin("SELECT pg_reload_conf()");
    finished_exact(&t, live, want);
}

/// A parallel run: the coordinator reads the health for the whole run and holds every worker.
fn throttle_sql_holds_every_worker(kind: Kind) {
    let t = TestDb::with_app(kind, "health_jobs");
    seed_generated(&t, 120);
    let want = t.expected_competencies();
    common::live::hold(&t);
    let mut live = common::live::held_apply(&t, &["--jobs", "2"], "0");
    live.wait_for_lines("waiting: --throttle-sql says wait", 3, LONG);
    assert_eq!(written(&t), 0, "a held worker wrote rows");
    common::live::release(&t);
    finished_exact(&t, live, want);
}

#[test]
fn throttle_sql_holds_every_worker_postgres() {
    throttle_sql_holds_every_worker(Kind::Postgres);
}

#[test]
fn throttle_sql_holds_every_worker_mariadb() {
    throttle_sql_holds_every_worker(Kind::Mariadb);
}
