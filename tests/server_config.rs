//! MariaDB as operators configure it (issue 19), on one throwaway `mariadbd` started with every
//! setting at once: `autocommit=0` as the server default and `init_connect='SET autocommit=0'`, a
//! statement-based binary log, a latin1 server character set, and a low `max_connections`. One
//! server for the four checks (each on a database of its own, in this order, changing a global
//! setting only where a check needs it): starting it costs more than the checks.

mod common;
#[path = "common/own_server.rs"]
mod own_server;

use common::topology::Watched;
use common::{seed_generated, signal, TestDb, V_COMPETENCY, V_ROLE};
use own_server::MariaServer;
use std::time::{Duration, Instant};

/// The app's user: no SUPER, so `init_connect` applies to it (as to an app's user in production).
const USER: &str = "bf_app";
const PASSWORD: &str = "app-secret";

fn server() -> MariaServer {
    let srv = MariaServer::start("srvcfg", |dir| {
        vec![
            "--autocommit=0".into(),
            "--init-connect=SET autocommit=0".into(),
            format!("--log-bin={}", dir.join("bin").display()),
            "--server-id=1".into(),
            "--binlog-format=STATEMENT".into(),
            "--character-set-server=latin1".into(),
            "--collation-server=latin1_swedish_ci".into(),
            "--max-connections=40".into(),
        ]
    });
    srv.sql(&format!(
        "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
         GRANT ALL PRIVILEGES ON `cfg\\_%`.* TO '{USER}'@'%'; COMMIT;"
    ));
    srv
}

/// A database with the server's defaults (latin1 here), the app's tables and `n` competencies.
fn app_db(srv: &MariaServer, name: &str, n: u64) -> common::ForeignDb {
    srv.sql(&format!("CREATE DATABASE {name}; COMMIT;"));
    let url = format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{name}", srv.port);
    let t = TestDb::wrap_for_seeding(&url);
    backfill::fixtures::load_schema(t.session().as_mut()).expect("app schema");
    seed_generated(&t, n);
    t
}

#[test]
fn mariadb_server_configurations() {
    let srv = server();
    assert_eq!(
        srv.query("SELECT @@GLOBAL.autocommit, @@GLOBAL.binlog_format, @@character_set_server"),
        "0\tSTATEMENT\tlatin1"
    );
    statement_binlog_is_refused(&srv);
    srv.sql("SET GLOBAL binlog_format = 'MIXED'");
    autocommit_off(&srv);
    latin1_server(&srv);
    connection_budget(&srv);
}

/// Item 7: with a statement-based binary log, `apply` refuses before writing anything (exit 2, one
/// line naming binlog_format); MIXED (and ROW) are fine.
fn statement_binlog_is_refused(srv: &MariaServer) {
    let t = app_db(srv, "cfg_binlog", 40);
    let before = common::dump_all(&t);
    let line = t
        .run(&["apply"])
        .one_line_error_hiding(2, PASSWORD)
        .to_string();
    eprintln!("statement binlog: {line}");
    assert!(line.contains("binlog_format=STATEMENT"), "{line}");
    assert!(line.contains("MIXED or ROW"), "{line}");
    assert_eq!(
        common::dump_all(&t),
        before,
        "the refused apply wrote something"
    );
    assert!(!t.has_table("backfill_migrations"), "a ledger was created");
    // The same server logging MIXED for new sessions: the apply runs, and every row is there.
    srv.sql("SET GLOBAL binlog_format = 'MIXED'");
    let expected = t.expected_competencies();
    t.run(&["apply", &V_COMPETENCY.to_string()]).expect(0);
    assert_eq!(t.marked_competencies(), expected);
    srv.sql("SET GLOBAL binlog_format = 'STATEMENT'");
}

/// Item 1: the server's default `autocommit=0` and `init_connect='SET autocommit=0'` for a user
/// without SUPER. `apply --jobs 2` finishes (it hung: a worker re-read the chunks from an old
/// snapshot, or failed with error 1568), the ledger is true, and the first SIGTERM stops a
/// parallel run within seconds with one clear line.
fn autocommit_off(srv: &MariaServer) {
    let t = app_db(srv, "cfg_autocommit", 400);
    assert_eq!(t.int("SELECT @@SESSION.autocommit"), 1, "our session");
    let expected = t.expected_competencies();
    let v = V_COMPETENCY.to_string();
    let run = Watched::spawn(
        &t.url,
        &["apply", &v, "--jobs", "2", "--batch-size", "20"],
        &[],
    )
    .finish_within(Duration::from_secs(120));
    run.expect(0);
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_eq!(t.rows_applied(V_COMPETENCY), expected.len() as i64);
    t.run(&["verify"]).expect(0);
    // The first SIGTERM, to a parallel run and to a single one, each pausing 20 s between batches:
    // it stops within seconds (the pause wakes up), exit 143; a rerun finishes.
    let roles = t.int("SELECT COUNT(DISTINCT role_id) FROM scenario_roles");
    assert!(roles > 20, "fixture too small: {roles} roles");
    let expected_roles = t.expected_roles();
    for jobs in ["2", "1"] {
        stops_on_first_signal(&t, jobs);
    }
    t.run(&["apply", &V_ROLE.to_string(), "--jobs", "2"])
        .expect(0);
    assert_eq!(t.marked("role_versions", "role_id", V_ROLE), expected_roles);
}

/// `apply V_ROLE --jobs N --pause-ms 20000`, SIGTERM once a batch more than before has committed.
fn stops_on_first_signal(t: &TestDb, jobs: &str) {
    let written = || {
        t.int(&format!(
            "SELECT COUNT(*) FROM role_versions WHERE {} = '{V_ROLE}'",
            mig_json()
        ))
    };
    let before = written();
    let args = [
        "apply",
        &V_ROLE.to_string(),
        "--jobs",
        jobs,
        "--batch-size",
        "3",
        "--pause-ms",
        "20000",
    ];
    let mut run = Watched::spawn(&t.url, &args, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while written() == before {
        assert!(
            run.exited().is_none(),
            "ended early: {}",
            run.stderr_so_far()
        );
        assert!(
            Instant::now() < deadline,
            "no batch within 60 s: {}",
            run.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(run.pid(), "TERM");
    let signalled = Instant::now();
    let out = run.finish_within(Duration::from_secs(60));
    let took = signalled.elapsed();
    eprintln!(
        "SIGTERM to --jobs {jobs}: exit {} after {took:?}: {}",
        out.code,
        out.stderr.trim()
    );
    out.expect(143);
    assert!(
        out.stderr.contains("interrupted by SIGTERM"),
        "{}",
        out.stderr
    );
    assert!(
        took < Duration::from_secs(5),
        "the first SIGTERM took {took:?} (a 20 s pause)"
    );
}

fn mig_json() -> String {
    backfill::db::Dialect::Mysql.json_text("metadata", "migration")
}

/// Item 8: on a latin1 server, in a latin1 database, every ledger table and text column is utf8mb4
/// with a binary collation (V6 converts what V1-V5 created in the database's default).
fn latin1_server(srv: &MariaServer) {
    let t = app_db(srv, "cfg_latin1", 30);
    t.run(&["apply", &V_COMPETENCY.to_string()]).expect(0);
    let tables = srv.query(
        "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = 'cfg_latin1' AND TABLE_NAME LIKE 'backfill%' ORDER BY 1",
    );
    assert_eq!(tables.lines().count(), 8, "{tables}"); // V7 backfill_inserted, V8 backfill_control
    for line in tables.lines() {
        assert!(line.ends_with("\tutf8mb4_bin"), "{line}");
    }
    let columns = srv.query(
        "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, ' ', COLLATION_NAME) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'cfg_latin1' AND TABLE_NAME LIKE 'backfill%' AND COLLATION_NAME IS NOT NULL \
         AND COLLATION_NAME <> 'utf8mb4_bin'",
    );
    assert_eq!(columns, "", "ledger columns not utf8mb4_bin");
    // Text outside Latin-1 goes into the ledger and comes back as it was.
    let name = "Zoë Łukasz 日本";
    t.run_env(&["apply", &V_ROLE.to_string(), "--operator", name], &[])
        .expect(0);
    assert_eq!(
        t.text(&format!(
            "SELECT operator_name FROM backfill_runs WHERE version = {V_ROLE} AND action = 'apply'"
        ))
        .as_deref(),
        Some(name)
    );
}

/// Item 9: with fewer connections left than `--jobs` needs, the run goes on with as many workers as
/// fit, saying so with the server's limit; it wrote every row.
fn connection_budget(srv: &MariaServer) {
    let t = app_db(srv, "cfg_budget", 300);
    let expected = t.expected_competencies();
    srv.sql("SET GLOBAL max_connections = 10");
    let run = t.run(&[
        "apply",
        &V_COMPETENCY.to_string(),
        "--jobs",
        "12",
        "--batch-size",
        "20",
    ]);
    srv.sql("SET GLOBAL max_connections = 40");
    run.expect(0);
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("max_connections=10"))
        .unwrap_or_else(|| panic!("no line naming the limit:\n{}", run.stderr));
    eprintln!("connection budget: {warning}");
    assert!(warning.contains("--jobs 12"), "{warning}");
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
}
