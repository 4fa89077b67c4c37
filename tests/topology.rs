//! Where production databases live (issue 11): PgBouncer in front of PostgreSQL, a 3-node MariaDB
//! Galera cluster, a PostgreSQL hot standby; the lock switched off (fencing alone must keep rows exact);
//! the lock's identity under other spellings of one database's URL; and nothing hangs.
//!
//! Each test starts what it needs (tests/common/topology.rs) on free 127.0.0.1 ports in temp dirs and
//! stops it by pid, even when it fails; its databases are its own. Filter by prefix: `pgbouncer_`,
//! `galera_`, `standby_`, `mariadb_replica_`, `replica_url_`, `fencing_`, `lock_identity_`, `hang_`.

mod common;
use common::topology::{
    assert_one_did_the_work, duplicate_versions, psql, race, Galera, HaProxy, MariaReplication,
    MariaSession, PgBouncer, Standby, TempDir, Trials, Watched,
};
use common::{
    closed_port, dump_all, run_url, seed_generated, signal, Kind, Run, TestDb, V_COMPETENCY, V_ROLE,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SLOW: (&str, &str) = ("BACKFILL_TEST_BATCH_DELAY_MS", "15");

fn v() -> String {
    V_COMPETENCY.to_string()
}

/// Waits until `t` (read directly) records V_COMPETENCY as `running` with at least one batch done.
fn wait_running(t: &TestDb, runner: &mut Watched) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if t.state(V_COMPETENCY).as_deref() == Some("running")
            && t.int(&format!(
                "SELECT COALESCE(MAX(batches), 0) FROM backfill_migrations WHERE version = {V_COMPETENCY}"
            )) > 0
        {
            return;
        }
        if let Some(code) = runner.exited() {
            panic!(
                "the runner exited ({code}) before it was seen running\n{}",
                runner.stderr_so_far()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the runner never started: {}",
            runner.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The rows are exactly those of one uninterrupted run, and no competency has two versions.
fn assert_rows_exact(t: &TestDb, expected: &std::collections::BTreeSet<(i64, i64)>, ctx: &str) {
    assert_eq!(&t.marked_competencies(), expected, "{ctx}: rows");
    assert_eq!(duplicate_versions(t), vec![], "{ctx}: duplicate versions");
    assert_eq!(
        t.rows_applied(V_COMPETENCY),
        expected.len() as i64,
        "{ctx}: ledger rows_applied"
    );
}

fn no_prepared_statement_errors(r: &Run) {
    for out in [&r.stdout, &r.stderr] {
        assert!(
            !out.contains("prepared statement"),
            "a named prepared statement went through the pooler: {out}"
        );
    }
}

// ----------------------------------------------------------------------------------------- PgBouncer

/// Every command through PgBouncer, on a database made on the direct server.
fn every_command_through(bouncer: &PgBouncer, test: &str) {
    let t = TestDb::with_app(Kind::Postgres, test);
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let b = TestDb::wrap_for_seeding(&bouncer.url(t.db_name()));
    let v = v();
    let run = |args: &[&str], code: i32| -> Run {
        let r = b.run(args);
        no_prepared_statement_errors(&r);
        r.expect(code);
        r
    };
    run(&["status"], 0);
    let plan = run(&["--format", "json", "plan", &v], 0);
    assert_eq!(
        plan.json()["plans"][0]["plan"]["total"],
        expected.len() as i64,
        "plan through the pooler"
    );
    run(&["apply", "--batch-size", "10"], 0);
    assert_rows_exact(&t, &expected, "apply");
    assert_eq!(t.state(V_ROLE).as_deref(), Some("applied"));
    run(&["verify"], 0);
    run(&["verify", "--data"], 0);
    let log = run(&["--format", "markdown", "log"], 0);
    assert!(log.stdout.contains(&v), "{}", log.stdout);
    run(&["log", &v], 0);
    let status = run(&["--format", "json", "status"], 0).json();
    assert_eq!(status["migrations"][0]["state"], "applied", "{status}");

    run(&["revert", &v, "--batch-size", "10"], 0);
    assert!(t.marked_competencies().is_empty(), "revert left rows");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("reverted"));

    // Killed mid-run through the pooler, cleared with repair --mark-failed, then resumed.
    let mut cmd = b.command(&["apply", &v, "--batch-size", "10", "--quiet"]);
    cmd.env("BACKFILL_TEST_ABORT_AT_BATCH", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    assert!(cmd.status().expect("run").code().is_none(), "aborted");
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("running"));
    run(&["repair", &v, "--mark-failed"], 0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("failed"));
    run(&["apply", &v, "--batch-size", "10"], 0);
    assert_rows_exact(&t, &expected, "resume after repair --mark-failed");

    // Checksum drift: verify fails through the pooler, repair --accept-checksum clears it.
    t.exec(&format!(
        "UPDATE backfill_migrations SET checksum = 'deadbeefdeadbeef' WHERE version = {v}"
    ));
    run(&["verify"], 3);
    run(&["repair", &v, "--accept-checksum"], 0);
    run(&["verify"], 0);
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'repair'"),
        2
    );
}

#[test]
fn pgbouncer_every_command() {
    let bouncer = PgBouncer::start();
    every_command_through(&bouncer, "pgb_cmds");
}

#[test]
fn pgbouncer_session_pooling_every_command_and_race() {
    let bouncer = PgBouncer::start_session();
    every_command_through(&bouncer, "pgb_session_cmds");
    let t = TestDb::with_app(Kind::Postgres, "pgb_session_race");
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let url = bouncer.url(t.db_name());
    let runs = race(
        &vec![url; 4],
        &["apply", "--batch-size", "10", "--lock-timeout", "120"],
        &[SLOW],
    );
    assert_one_did_the_work(&runs);
    assert_rows_exact(&t, &expected, "4 runners, session pooling");
}

/// 4 deploys at once on a fresh database through transaction pooling: the ledger is created once,
/// one runner does the work, the rows are exact.
#[test]
fn pgbouncer_four_racing_runners() {
    let bouncer = PgBouncer::start();
    let t = TestDb::with_app(Kind::Postgres, "pgb_race");
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    let url = bouncer.url(t.db_name());
    let runs = race(
        &vec![url; 4],
        &["apply", "--batch-size", "10", "--lock-timeout", "120"],
        &[SLOW],
    );
    runs.iter().for_each(no_prepared_statement_errors);
    assert_one_did_the_work(&runs);
    assert_rows_exact(&t, &expected, "4 runners through PgBouncer");
    assert_eq!(
        t.int(&format!(
            "SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply' AND version = {V_COMPETENCY}"
        )),
        1,
        "one apply run recorded"
    );
}

/// kill -9 (and abort between a batch's writes and its commit) through transaction pooling, resumed
/// through it: exact rows every time; then the same for revert.
#[test]
fn pgbouncer_kill9_trials() {
    let bouncer = PgBouncer::start();
    let t = TestDb::with_app(Kind::Postgres, "pgb_kill9");
    seed_generated(&t, 250);
    let b = TestDb::wrap_for_seeding(&bouncer.url(t.db_name()));
    let trials = Trials {
        check: &t,
        nodes: vec![&b],
        trials: 6,
        settle: &|| {},
    };
    let cut = trials.kill_during_apply();
    let trials = Trials {
        trials: 4,
        ..trials
    };
    let cut_revert = trials.kill_during_revert();
    eprintln!("pgbouncer: {cut} apply and {cut_revert} revert attempts cut mid-run");
}

/// The app holds PgBouncer's only server connection for the database (`BEGIN; SELECT pg_sleep(60)`
/// through the bouncer); returns once the server shows it running.
fn hold_the_pool(bouncer: &PgBouncer, t: &TestDb) -> Holder {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &bouncer.port.to_string(), "-d", t.db_name()]);
    let holder = hold(cmd, "BEGIN;\nSELECT pg_sleep(60);\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.int("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(60)%'") == 0
    {
        assert!(Instant::now() < deadline, "the app never held the pool");
        std::thread::sleep(Duration::from_millis(50));
    }
    holder
}

/// A full pool (issue 19 item 4): the app holds PgBouncer's only server connection. The run says it
/// waits for a server connection from the pooler; gives up at our --statement-timeout (with
/// --lock-timeout 3 --jobs 4); stops within a second or two of SIGTERM; and when the pooler gives up
/// first (query_wait_timeout = 8), its own reason is the error. Nothing is written. Then
/// `pool_mode = statement`: exit 2 naming the pooling mode, which cannot run transactions.
#[test]
fn pgbouncer_full_pool_and_statement_mode() {
    let bouncer = PgBouncer::start_with("transaction", 1, "query_wait_timeout = 8\n");
    let t = TestDb::with_app(Kind::Postgres, "pgb_full_pool");
    seed_generated(&t, 100);
    let url = bouncer.url(t.db_name());
    let before = dump_all(&t);
    let _app = hold_the_pool(&bouncer, &t);

    let started = Instant::now();
    let args = [
        "apply",
        "--jobs",
        "4",
        "--lock-timeout",
        "3",
        "--statement-timeout",
        "5",
    ];
    let r = Watched::spawn(&url, &args, &[]).finish_within(Duration::from_secs(60));
    let took = started.elapsed();
    eprintln!(
        "full pool, --statement-timeout 5: exit {} after {took:?}\n{}",
        r.code, r.stderr
    );
    assert!(
        r.stderr
            .contains("waiting for a server connection from the pooler"),
        "the run says what it waits for: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("within 5s (--statement-timeout)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(took < Duration::from_secs(15), "gave up after {took:?}");

    let mut runner = Watched::spawn(&url, &["apply"], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !runner
        .stderr_so_far()
        .contains("waiting for a server connection")
    {
        assert_eq!(runner.exited(), None, "{}", runner.stderr_so_far());
        assert!(
            Instant::now() < deadline,
            "no waiting line: {}",
            runner.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let signalled = Instant::now();
    signal(runner.pid(), "TERM");
    let r = runner.finish_within(Duration::from_secs(30));
    let took = signalled.elapsed();
    eprintln!("full pool, SIGTERM: exit {} after {took:?}", r.code);
    assert_eq!(r.code, 143, "{}", r.stderr);
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM honoured after {took:?}"
    );

    let r = Watched::spawn(&url, &["apply", "--statement-timeout", "60"], &[])
        .finish_within(Duration::from_secs(60));
    eprintln!(
        "full pool, the pooler gives up: exit {}\n{}",
        r.code, r.stderr
    );
    assert!(
        r.stderr.contains("query_wait_timeout"),
        "the pooler's reason: {}",
        r.stderr
    );
    assert_ne!(r.code, 0);
    assert_eq!(dump_all(&t), before, "a run that never got a server wrote");
    drop(_app);

    let statement = PgBouncer::start_with("statement", 4, "");
    let url = statement.url(t.db_name());
    for args in [&["status"][..], &["apply"]] {
        let r = run_url(&url, args);
        let line = r.one_line_error(2);
        assert!(
            line.contains("pool_mode = statement") && line.contains("transaction"),
            "{args:?}: {line}"
        );
    }
    assert_eq!(
        dump_all(&t),
        before,
        "statement pooling: something was written"
    );
}

/// The app's tables in schema `app` (issue 19 item 5). Reached with `options=-csearch_path=app`,
/// `--schema app` or the `.env`'s DB_SEARCH_PATH/DB_SCHEMA, every command works there, through a
/// transaction-pooling PgBouncer too (which drops `options`); a look creates no ledger and says so.
/// Reached without it (schema `public`, empty): no command creates a ledger there; each says where
/// the ledger is, exit 2.
#[test]
fn pgbouncer_search_path_schema() {
    let t = TestDb::new(Kind::Postgres, "search_path");
    t.exec("CREATE SCHEMA app");
    let in_app = format!("{}?options=-csearch_path%3Dapp", t.url);
    let app = TestDb::wrap_for_seeding(&in_app);
    backfill::fixtures::load_schema(app.session().as_mut()).expect("load app schema in app");
    seed_generated(&app, 60);
    let expected = app.expected_competencies();
    let ledgers = |schema: &str| {
        t.int(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}' AND tablename LIKE 'backfill%'"
        ))
    };
    let db = t.db_name().to_string();

    // A look before any run: nothing created, and it says so.
    let r = run_url(&in_app, &["status"]);
    r.expect(0);
    eprintln!("status before any run:\n{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("no ledger in schema app of database {db}")),
        "{}",
        r.stdout
    );
    for args in [&["plan"][..], &["verify"], &["log"]] {
        run_url(&in_app, args).expect(0);
    }
    assert_eq!(
        (ledgers("app"), ledgers("public")),
        (0, 0),
        "a look created a ledger"
    );
    // Without the search_path, public has none of the app's tables: apply creates nothing there.
    let r = run_url(&t.url, &["apply"]);
    let line = r.one_line_error(2);
    eprintln!("apply in the empty public schema: {line}");
    assert!(
        line.contains("none of the app's tables are there"),
        "{line}"
    );
    assert_eq!(ledgers("public"), 0, "apply created a ledger in public");

    run_url(&in_app, &["apply", &v()]).expect(0);
    assert!(ledgers("app") > 0 && ledgers("public") == 0);
    assert_eq!(app.marked_competencies(), expected);

    // Without the search_path: every command names where the ledger is, creates nothing.
    for args in [
        &["status"][..],
        &["verify"],
        &["log"],
        &["plan"],
        &["apply"],
    ] {
        let r = run_url(&t.url, args);
        let line = r.one_line_error(2);
        eprintln!("{args:?} without the search_path: {line}");
        assert!(
            line.contains(&format!("no ledger in schema public of database {db}"))
                && line.contains("schema app has one")
                && line.contains("--schema app"),
            "{args:?}: {line}"
        );
    }
    assert_eq!(ledgers("public"), 0, "a command created a ledger in public");

    let status = run_url(&t.url, &["--schema", "app", "status"]);
    status.expect(0);
    eprintln!("status --schema app:\n{}", status.stdout);
    assert!(
        status
            .stdout
            .lines()
            .next()
            .unwrap_or("")
            .ends_with("(schema app)"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("applied"), "{}", status.stdout);
    let dir = TempDir::new("search-path-env");
    for (key, value) in [("DB_SEARCH_PATH", "app, public"), ("DB_SCHEMA", "app")] {
        let env = dir.path().join(format!("{key}.env"));
        std::fs::write(
            &env,
            format!(
                "DB_CONNECTION=pgsql\nDB_HOST=127.0.0.1\nDB_PORT=5432\nDB_DATABASE={db}\nDB_USERNAME=postgres\n{key}=\"{value}\"\n"
            ),
        )
        .unwrap();
        let r = Run::from(
            common::bin()
                .env_remove("DATABASE_URL")
                .args(["--env-file", env.to_str().unwrap(), "verify"])
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{key}={value}: {}", r.stderr);
    }

    // Through transaction pooling, which drops `options`: SET LOCAL in every transaction.
    let bouncer = PgBouncer::start();
    let pooled = format!("{}?options=-csearch_path%3Dapp", bouncer.url(&db));
    run_url(&pooled, &["verify"]).expect(0);
    run_url(&pooled, &["revert", &v()]).expect(0);
    assert!(
        app.marked_competencies().is_empty(),
        "revert through the pooler"
    );
    run_url(&bouncer.url(&db), &["--schema", "app", "apply", &v()]).expect(0);
    assert_eq!(app.marked_competencies(), expected);
    assert_eq!(ledgers("public"), 0);
}

// -------------------------------------------------------------------------------------------- Galera

/// One 3-node cluster, several phases: 4 runners racing across the nodes on a fresh database; kill -9
/// trials killed on one node and resumed on the next; the node a runner is connected to killed
/// mid-run, resumed on another node.
#[test]
fn galera_cluster() {
    let mut g = Galera::start(3);
    let db = "bf_galera";
    g.exec(
        0,
        &format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    );
    let nodes: Vec<_> = (0..3)
        .map(|i| TestDb::wrap_for_seeding(&g.url(i, db)))
        .collect();
    backfill::fixtures::load_schema(nodes[0].session().as_mut()).expect("load app schema");
    seed_generated(&nodes[0], 250);
    g.settle();
    let expected = nodes[0].expected_competencies();
    assert!(expected.len() > 100, "{}", expected.len());

    // Phase 1: one runner per node plus one more, at once, on a database with no ledger yet.
    let started = Instant::now();
    let urls: Vec<String> = [0, 1, 2, 0].iter().map(|&i| g.url(i, db)).collect();
    let runs = race(
        &urls,
        &["apply", "--batch-size", "10", "--lock-timeout", "180"],
        &[SLOW],
    );
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(
            r.code,
            0,
            "runner {i} (node {}) exit code\n--- stdout\n{}\n--- stderr\n{}",
            [0, 1, 2, 0][i],
            r.stdout,
            r.stderr
        );
    }
    g.settle();
    for (i, n) in nodes.iter().enumerate() {
        assert_rows_exact(n, &expected, &format!("4 runners, read on node {i}"));
    }
    assert_one_did_the_work(&runs);
    eprintln!("galera phase 1 (race) {:?}", started.elapsed());

    // Phase 2: kill -9 trials across nodes.
    let started = Instant::now();
    {
        let settle = || g.settle();
        let trials = Trials {
            check: &nodes[0],
            nodes: nodes.iter().map(|n| &**n).collect(),
            trials: 6,
            settle: &settle,
        };
        let cut = trials.kill_during_apply();
        let trials = Trials {
            trials: 4,
            ..trials
        };
        let cut_revert = trials.kill_during_revert();
        eprintln!("galera: {cut} apply and {cut_revert} revert attempts cut mid-run");
    }
    eprintln!("galera phase 2 (kill -9) {:?}", started.elapsed());

    // Phase 3: the node the runner is connected to dies mid-run; resume on another node.
    let started = Instant::now();
    assert_eq!(nodes[0].state(V_COMPETENCY).as_deref(), Some("reverted"));
    let v = v();
    let mut runner = Watched::spawn(
        &g.url(2, db),
        &["apply", &v, "--batch-size", "5"],
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "100")],
    );
    wait_running(&nodes[0], &mut runner);
    g.kill_node(2);
    let lost = runner.finish_within(Duration::from_secs(60));
    assert_ne!(
        lost.code, 0,
        "the runner whose node died cannot succeed: {}",
        lost.stdout
    );
    let line = lost.one_line_error(lost.code).to_string();
    eprintln!("runner on the killed node: exit {} {line}", lost.code);
    // The survivors notice the loss after their suspect timeout (about 5 s) and go on as two.
    let deadline = Instant::now() + Duration::from_secs(60);
    while g.status(0, "wsrep_cluster_size").as_deref() != Some("2") {
        assert!(
            Instant::now() < deadline,
            "the cluster did not shrink to 2 nodes: {:?}\n{}",
            g.status(0, "wsrep_cluster_size"),
            g.error_log(0, 20)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    nodes[0]
        .run(&["apply", &v, "--lock-timeout", "180"])
        .expect(0);
    g.settle();
    for i in [0, 1] {
        assert_rows_exact(&nodes[i], &expected, &format!("resumed, read on node {i}"));
        assert_eq!(nodes[i].state(V_COMPETENCY).as_deref(), Some("applied"));
    }
    nodes[1].run(&["verify"]).expect(0);
    nodes[1].run(&["verify", "--data"]).expect(0);
    assert_eq!(
        nodes[0].int("SELECT COUNT(*) FROM backfill_runs WHERE state = 'running'"),
        0,
        "the dead run is recorded as abandoned"
    );
    eprintln!("galera phase 3 (node kill) {:?}", started.elapsed());
}

// ------------------------------------------------------------------------------------------- Standby

fn standby_with_data(s: &Standby, db: &str) -> std::collections::BTreeSet<(i64, i64)> {
    s.create_database(db);
    let p = TestDb::wrap_for_seeding(&s.primary_url(db));
    backfill::fixtures::load_schema(p.session().as_mut()).expect("load app schema");
    seed_generated(&p, 250);
    // The standby must have the database before a command names it in --replica-url: the primary's
    // CREATE DATABASE reaches it by WAL, and a command run first met "does not exist" (CI, once).
    s.wait_caught_up();
    p.expected_competencies()
}

/// After an apply on the primary, the read-only commands work against the hot standby.
#[test]
fn standby_read_only_commands() {
    let s = Standby::start();
    let db = "bf_standby_ro";
    let expected = standby_with_data(&s, db);
    let primary = s.primary_url(db);
    let standby = s.standby_url(db);
    // --replica-url must name a replica: the primary itself is refused before anything is written.
    let r = run_url(
        &primary,
        &["apply", "--max-replica-lag", "5", "--replica-url", &primary],
    );
    assert!(
        r.one_line_error(2).contains("not a replica"),
        "{}",
        r.stderr
    );
    run_url(
        &primary,
        &["apply", "--max-replica-lag", "5", "--replica-url", &standby],
    )
    .expect(0);
    s.wait_caught_up();
    let st = TestDb::wrap_for_seeding(&standby);
    assert_eq!(st.marked_competencies(), expected, "replicated");
    for args in [
        &["status"][..],
        &["--format", "json", "status"],
        &["plan"],
        &["--format", "json", "plan"],
        &["verify"],
        &["verify", "--data"],
        &["log"],
        &["--format", "markdown", "log"],
    ] {
        let r = run_url(&standby, args);
        assert_eq!(
            r.code, 0,
            "{args:?} on the standby\n--- stdout\n{}\n--- stderr\n{}",
            r.stdout, r.stderr
        );
        r.expect(0);
    }
    let status = run_url(&standby, &["--format", "json", "status"]).json();
    assert_eq!(status["migrations"][0]["state"], "applied", "{status}");
    let plan = run_url(&standby, &["--format", "json", "plan", &v()]).json();
    assert_eq!(plan["plans"][0]["plan"]["total"], 0, "{plan}");
    // Writing on a standby is refused in one line.
    let r = run_url(&standby, &["revert", &v()]);
    assert_ne!(r.code, 0, "revert on a read-only standby: {}", r.stdout);
    r.one_line_error(r.code);
}

/// `apply --max-replica-lag 1` on the primary waits while the standby's replay is paused (and says
/// so), then finishes once replay resumes.
#[test]
fn standby_replica_lag_throttles_apply() {
    let s = Standby::start();
    let db = "bf_standby_lag";
    let expected = standby_with_data(&s, db);
    let primary = s.primary_url(db);
    let p = TestDb::wrap_for_seeding(&primary);
    p.create_ledger();
    s.wait_caught_up();
    s.pause_replay();
    // WAL the standby does not replay, and time for the lag to pass the limit.
    p.exec("CREATE TABLE lag_marker (id INT PRIMARY KEY)");
    p.exec("INSERT INTO lag_marker VALUES (1)");
    std::thread::sleep(Duration::from_millis(2500));
    let mut runner = Watched::spawn(
        &primary,
        &["apply", "--max-replica-lag", "1", "--batch-size", "10"],
        // Unthrottled, the run takes about 2.5 s: long enough to pass the limit on its own clock.
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "100")],
    );
    std::thread::sleep(Duration::from_secs(7));
    let so_far = runner.stderr_so_far();
    assert_eq!(
        runner.exited(),
        None,
        "apply finished while the replica lagged (replay_lag {:?}); stderr:\n{so_far}",
        s.replay_lag()
    );
    assert!(
        so_far.to_lowercase().contains("lag"),
        "the runner says why it waits: {so_far:?}"
    );
    let written = p.marked_competencies().len();
    assert!(
        written < expected.len(),
        "throttled: {written} of {} rows written while the replica lagged",
        expected.len()
    );
    s.resume_replay();
    let started = Instant::now();
    let done = runner.finish_within(Duration::from_secs(120));
    done.expect(0);
    eprintln!(
        "apply finished {:?} after replay resumed",
        started.elapsed()
    );
    assert_eq!(p.marked_competencies(), expected);
    s.wait_caught_up();
    assert_eq!(
        TestDb::wrap_for_seeding(&s.standby_url(db)).marked_competencies(),
        expected
    );
    standby_replica_url_throttles_revert(&s, db);
}

/// `revert --replica-url` to the standby, run as a user that cannot see `pg_stat_replication`'s
/// positions (no `pg_monitor`): the standby's own replayed position is then the only lag source, and
/// the runner waits while replay is paused, naming the standby.
fn standby_replica_url_throttles_revert(s: &Standby, db: &str) {
    let p = TestDb::wrap_for_seeding(&s.primary_url(db));
    p.exec("CREATE ROLE bf_app LOGIN");
    p.exec("GRANT ALL ON ALL TABLES IN SCHEMA public TO bf_app");
    p.exec("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO bf_app");
    let app_url = format!("postgres://bf_app@127.0.0.1:{}/{db}", s.primary_port);
    s.wait_caught_up();
    s.pause_replay();
    p.exec("INSERT INTO lag_marker VALUES (2)");
    let standby = format!("127.0.0.1:{}", s.standby_port);
    // Without --replica-url this user's lag source would be pg_stat_replication, whose positions it
    // cannot see: refused, nothing reverted (it used to run unthrottled).
    let before = p.marked_competencies();
    let r = run_url(&app_url, &["revert", &v(), "--max-replica-lag", "1"]);
    let line = r.one_line_error(2);
    assert!(
        line.contains("pg_monitor") && line.contains("--replica-url"),
        "{line}"
    );
    assert_eq!(p.marked_competencies(), before, "a refused revert wrote");
    let mut runner = spawn_throttled(&app_url, &["revert", &v()], &s.standby_url(db));
    std::thread::sleep(Duration::from_secs(7));
    let so_far = runner.stderr_so_far();
    assert_eq!(
        runner.exited(),
        None,
        "revert finished while replay was paused:\n{so_far}"
    );
    assert!(
        so_far.contains(&format!("replica {standby}")),
        "the runner names the standby it waits for: {so_far:?}"
    );
    assert!(
        !p.marked_competencies().is_empty(),
        "throttled: revert deleted every row"
    );
    s.resume_replay();
    runner.finish_within(Duration::from_secs(120)).expect(0);
    assert!(p.marked_competencies().is_empty(), "revert left rows");
}

/// libpq's multi-host URL over a primary and its standby: `read-write` and `primary` reach the primary
/// whichever host comes first, `any` the first host, and a standby-only list is refused in one line.
/// Then the failover: the primary stopped hard mid `apply --jobs 2`, the standby promoted, the same URL
/// run again: it reaches the promoted standby and finishes; rows exact, ledger, `verify` and `log` true.
#[test]
fn standby_failover_pair_url() {
    let s = Standby::start();
    let db = "bf_failover";
    let expected = standby_with_data(&s, db);
    let pair = s.pair_url(db, "read-write");
    let reversed = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}",
        s.standby_port, s.primary_port
    );
    // The standby first: read-write and primary skip it, any takes it (status works read-only there).
    for attrs in ["read-write", "primary"] {
        let url = format!("{reversed}?target_session_attrs={attrs}");
        let r = run_url(
            &url,
            &[
                "apply",
                &v(),
                "--batch-size",
                "1000000",
                "--lock-timeout",
                "5",
            ],
        );
        assert_eq!(r.code, 0, "{attrs}: {}", r.stderr);
        run_url(&url, &["revert", &v()]).expect(0);
    }
    let only_standby = format!(
        "postgres://postgres@127.0.0.1:{}/{db}?target_session_attrs=read-write",
        s.standby_port
    );
    let line = run_url(&only_standby, &["status"])
        .one_line_error(1)
        .to_string();
    assert!(
        line.contains("is a standby") && line.contains("read-write"),
        "{line}"
    );
    // any: the first host that answers, here the standby, which refuses the write.
    let r = run_url(
        &format!("{reversed}?target_session_attrs=any"),
        &["apply", &v()],
    );
    let line = r.one_line_error(r.code);
    assert!(line.contains("read-only"), "{line}");

    let p = TestDb::wrap_for_seeding(&s.primary_url(db));
    let mut runner = Watched::spawn(
        &pair,
        &["apply", &v(), "--jobs", "2", "--batch-size", "5"],
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "200")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.marked_competencies().is_empty() {
        assert_eq!(runner.exited(), None, "{}", runner.stderr_so_far());
        assert!(Instant::now() < deadline, "no batch committed within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.fail_over();
    let died = runner.finish_within(Duration::from_secs(60));
    assert_eq!(died.code, 1, "the run whose primary died: {}", died.stderr);
    eprintln!("the run whose primary died said: {}", died.stderr.trim());
    let again = run_url(&pair, &["apply", &v(), "--lock-timeout", "90"]);
    assert_eq!(again.code, 0, "rerun after failover: {}", again.stderr);
    let promoted = TestDb::wrap_for_seeding(&s.standby_url(db));
    assert_rows_exact(&promoted, &expected, "after failover");
    assert_eq!(promoted.state(V_COMPETENCY).as_deref(), Some("applied"));
    run_url(&pair, &["verify"]).expect(0);
    let log = run_url(&pair, &["--format", "json", "log", &v()]).json();
    let runs = log["runs"].as_array().cloned().unwrap_or_default();
    let last_revert = runs.iter().rposition(|r| r["action"] == "revert");
    let since: Vec<_> = runs[last_revert.map_or(0, |i| i + 1)..].to_vec();
    assert_eq!(
        since.last().map(|r| r["state"].clone()),
        Some("succeeded".into()),
        "log: the rerun succeeded: {log}"
    );
    let written: i64 = since.iter().filter_map(|r| r["row_count"].as_i64()).sum();
    assert_eq!(
        written,
        expected.len() as i64,
        "log: the interrupted run and the rerun wrote every row once: {log}"
    );
}

// ------------------------------------------------------------------------------------- --replica-url

/// How long a throttled runner is watched before it is checked: unthrottled, 25 batches 100 ms
/// apart take about 2.5 s.
const THROTTLED_FOR: Duration = Duration::from_secs(7);
const BATCH_DELAY_100: (&str, &str) = ("BACKFILL_TEST_BATCH_DELAY_MS", "100");
const LAG_SECRET: &str = "Lag-Secret-9";

/// `args` plus `--max-replica-lag 1 --replica-url REPLICA --batch-size 10`, each batch held 100 ms.
fn spawn_throttled(url: &str, args: &[&str], replica: &str) -> Watched {
    let mut all = args.to_vec();
    all.extend([
        "--max-replica-lag",
        "1",
        "--replica-url",
        replica,
        "--batch-size",
        "10",
    ]);
    Watched::spawn(url, &all, &[BATCH_DELAY_100])
}

/// The runner is still running after [`THROTTLED_FOR`], has said why on stderr, and (per
/// `unfinished`, read on the primary) has not done all its work. `premise` explains the lag.
fn assert_held_back(runner: &mut Watched, unfinished: impl Fn() -> bool, premise: &str) {
    std::thread::sleep(THROTTLED_FOR);
    let so_far = runner.stderr_so_far();
    assert_eq!(
        runner.exited(),
        None,
        "the run finished while the replica lagged ({premise}); stderr:\n{so_far}"
    );
    let lower = so_far.to_lowercase();
    assert!(
        lower.contains("lag") || lower.contains("replica"),
        "the runner says why it waits ({premise}): {so_far:?}"
    );
    assert!(
        unfinished(),
        "throttled: the run did all its work while the replica lagged ({premise})"
    );
}

/// A MariaDB primary and async replica: `apply --replica-url` waits while the replica's SQL thread is
/// stopped (`Seconds_Behind_Master` NULL) and finishes once it runs again; then `revert
/// --replica-url` waits while the replica's SQL thread is held up by a lock (`Seconds_Behind_Master`
/// a growing number) and finishes once the lock is released. Rows exact on both servers.
#[test]
fn mariadb_replica_lag_throttles_apply() {
    let r = MariaReplication::start();
    let db = "bf_mariarepl_lag";
    r.create_database(db);
    let primary = r.primary_url(db);
    let replica_url = r.replica_url(db);
    let p = TestDb::wrap_for_seeding(&primary);
    backfill::fixtures::load_schema(p.session().as_mut()).expect("load app schema");
    seed_generated(&p, 250);
    let expected = p.expected_competencies();
    assert!(expected.len() > 100, "{}", expected.len());
    p.create_ledger(); // the ledger, replicated before the lag starts
                       // The replica is watched as a user that may only read replication status (and the database
                       // it names), with a password that must never reach the audit table.
    r.primary_sql(&format!(
        "CREATE USER 'bf_lag'@'127.0.0.1' IDENTIFIED BY '{LAG_SECRET}'; \
         GRANT SLAVE MONITOR ON *.* TO 'bf_lag'@'127.0.0.1'; \
         GRANT SELECT ON {db}.* TO 'bf_lag'@'127.0.0.1'"
    ));
    let watch_url = format!(
        "mysql://bf_lag:{LAG_SECRET}@127.0.0.1:{}/{db}",
        r.replica_port
    );
    r.wait_caught_up();
    let replica = TestDb::wrap_for_seeding(&replica_url);
    assert_eq!(
        replica.expected_competencies(),
        expected,
        "the seeded data reached the replica"
    );
    assert_eq!(
        r.slave_status("Seconds_Behind_Master").as_deref(),
        Some("0")
    );

    // Phase 1: apply, the replica's SQL thread stopped.
    r.stop_sql_thread();
    assert_eq!(
        r.slave_status("Seconds_Behind_Master").as_deref(),
        Some("NULL"),
        "{:?}",
        r.slave_status_all()
    );
    let v = v();
    let mut runner = spawn_throttled(&primary, &["apply"], &watch_url);
    assert_held_back(
        &mut runner,
        || p.marked_competencies().len() < expected.len(),
        "SQL thread stopped, Seconds_Behind_Master NULL",
    );
    eprintln!(
        "apply held back with {} of {} rows written",
        p.marked_competencies().len(),
        expected.len()
    );
    assert_eq!(
        replica.marked_competencies().len(),
        0,
        "the stopped replica applied nothing"
    );
    r.start_sql_thread();
    let started = Instant::now();
    let done = runner.finish_within(Duration::from_secs(120));
    done.expect(0);
    eprintln!(
        "apply finished {:?} after the SQL thread started",
        started.elapsed()
    );
    assert_rows_exact(&p, &expected, "apply, read on the primary");
    assert_eq!(p.state(V_COMPETENCY).as_deref(), Some("applied"));
    let audited = p
        .text("SELECT arguments FROM backfill_runs WHERE action = 'apply'")
        .unwrap_or_default();
    assert!(
        audited.contains("--replica-url") && !audited.contains(LAG_SECRET),
        "the audit row records --replica-url, its password redacted: {audited}"
    );
    r.wait_caught_up();
    assert_rows_exact(&replica, &expected, "apply, read on the replica");
    assert_eq!(replica.state(V_COMPETENCY).as_deref(), Some("applied"));

    // Phase 2: revert, the replica's SQL thread blocked by a read lock on the replica (it runs, so
    // Seconds_Behind_Master is a number, growing with the age of the event it waits on).
    let lock = MariaSession::hold(r.replica_port, "FLUSH TABLES WITH READ LOCK");
    p.exec("CREATE TABLE lag_marker (id INT PRIMARY KEY)");
    p.exec("INSERT INTO lag_marker VALUES (1)");
    std::thread::sleep(Duration::from_secs(3));
    let behind = r.slave_status("Seconds_Behind_Master");
    assert!(
        behind
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s >= 2),
        "the blocked replica is seconds behind: {behind:?} {:?}",
        r.slave_status_all()
    );
    let mut runner = spawn_throttled(&primary, &["revert", &v], &replica_url);
    assert_held_back(
        &mut runner,
        || !p.marked_competencies().is_empty(),
        &format!("SQL thread blocked, Seconds_Behind_Master {behind:?}"),
    );
    eprintln!(
        "revert held back with {} of {} rows left",
        p.marked_competencies().len(),
        expected.len()
    );
    lock.finish_with("UNLOCK TABLES");
    let started = Instant::now();
    runner.finish_within(Duration::from_secs(120)).expect(0);
    eprintln!("revert finished {:?} after the unlock", started.elapsed());
    assert!(p.marked_competencies().is_empty(), "revert left rows");
    assert_eq!(p.state(V_COMPETENCY).as_deref(), Some("reverted"));
    r.wait_caught_up();
    assert!(
        replica.marked_competencies().is_empty(),
        "the replica still has reverted rows"
    );
    assert_eq!(replica.state(V_COMPETENCY).as_deref(), Some("reverted"));
}

/// An UPDATE-shaped declarative migration on a primary logging in MariaDB's default `MIXED` format:
/// its batches journal through a temporary table of their session, which the binlog must not need on
/// the replica. After `apply --jobs 2` and after `revert --jobs 2`, the replica (its SQL thread never
/// stopped by an error) holds exactly the primary's rows and journal.
#[test]
fn mariadb_replica_update_shape_mixed_binlog() {
    let r = MariaReplication::start_logging("MIXED");
    let db = "bf_mariarepl_update";
    r.create_database(db);
    let p = TestDb::wrap_for_seeding(&r.primary_url(db));
    let replica = TestDb::wrap_for_seeding(&r.replica_url(db));
    let dir = notes_with_fill(&p, 500, 4, "202612070951");
    let dir_arg = dir.0.to_str().expect("a UTF-8 temp dir");
    let notes = "SELECT id, COALESCE(note, '<null>') FROM notes ORDER BY id";
    let journal = "SELECT row_key, old_values, new_values FROM backfill_undo ORDER BY row_key";
    let original = p.rows(notes);
    let same_on_replica = |when: &str| {
        r.wait_caught_up();
        assert_eq!(
            r.slave_status("Slave_SQL_Running").as_deref(),
            Some("Yes"),
            "{when}: {:?}",
            r.slave_status_all()
        );
        assert_eq!(replica.rows(notes), p.rows(notes), "{when}: rows");
        assert_eq!(replica.rows(journal), p.rows(journal), "{when}: journal");
    };
    for cmd in ["apply", "revert"] {
        let args = [cmd, "202612070951", "--jobs", "2", "--batch-size", "40"];
        let mut all = args.to_vec();
        all.extend(["--migrations-dir", dir_arg]);
        p.run(&all).expect(0);
        if cmd == "apply" {
            assert_eq!(
                p.int("SELECT COUNT(*) FROM backfill_undo"),
                375,
                "one entry per NULL note"
            );
        }
        same_on_replica(cmd);
    }
    assert_eq!(p.rows(notes), original, "revert restored every note");
    assert_eq!(p.int("SELECT COUNT(*) FROM backfill_undo"), 0);
}

/// A 3-node Galera cluster, the runner on node 0 and `--replica-url` node 1: while a session on
/// node 1 holds `FLUSH TABLES WITH READ LOCK` (node 1 desyncs and stops applying; flow control does
/// not hold node 0 back), the runner waits; `UNLOCK TABLES` lets it finish.
#[test]
fn galera_replica_url_throttles_apply() {
    let g = Galera::start(3);
    let db = "bf_galera_replica";
    g.exec(
        0,
        &format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    );
    let n0 = TestDb::wrap_for_seeding(&g.url(0, db));
    let n1 = TestDb::wrap_for_seeding(&g.url(1, db));
    backfill::fixtures::load_schema(n0.session().as_mut()).expect("load app schema");
    seed_generated(&n0, 250);
    n0.create_ledger();
    g.settle();
    let expected = n0.expected_competencies();
    assert!(expected.len() > 100, "{}", expected.len());

    let lock = MariaSession::hold(g.port(1), "FLUSH TABLES WITH READ LOCK");
    let state = g.status(1, "wsrep_local_state_comment");
    assert_eq!(
        state.as_deref(),
        Some("Donor/Desynced"),
        "FTWRL desyncs node 1"
    );
    let committed = |i: usize| -> i64 {
        g.status(i, "wsrep_last_committed")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("wsrep_last_committed of node {i}"))
    };
    let (n0_before, n1_before) = (committed(0), committed(1));
    let replica_url = g.url(1, db);
    let mut runner = spawn_throttled(&g.url(0, db), &["apply"], &replica_url);
    assert_held_back(
        &mut runner,
        || n0.marked_competencies().len() < expected.len(),
        "node 1 under FLUSH TABLES WITH READ LOCK",
    );
    let (n0_after, n1_after) = (committed(0), committed(1));
    eprintln!(
        "apply held back with {} of {} rows written; wsrep_last_committed node 0 {n0_before} -> \
         {n0_after}, node 1 {n1_before} -> {n1_after}",
        n0.marked_competencies().len(),
        expected.len()
    );
    assert!(n0_after > n0_before, "the runner committed on node 0");
    assert_eq!(
        n1_after, n1_before,
        "node 1 applied nothing under the read lock"
    );
    lock.finish_with("UNLOCK TABLES");
    let started = Instant::now();
    runner.finish_within(Duration::from_secs(120)).expect(0);
    eprintln!("apply finished {:?} after the unlock", started.elapsed());
    g.settle();
    for (i, n) in [&n0, &n1].into_iter().enumerate() {
        assert_rows_exact(n, &expected, &format!("read on node {i}"));
        assert_eq!(n.state(V_COMPETENCY).as_deref(), Some("applied"));
    }
    assert_eq!(
        g.status(1, "wsrep_local_state_comment").as_deref(),
        Some("Synced")
    );
}

/// Galera behind HAProxy round-robin (issue 19, item 6): each new connection lands on the next node,
/// so a run's coordinator and workers would be spread over the cluster. Two `apply --jobs 4` racing
/// through the proxy on a database with no ledger yet, then `revert --jobs 4` and `apply --jobs 4`
/// alone: every one exits 0 (before: exit 1 after 8 attempts of 1213, a false "taken over" exit 4,
/// `Table 'backfill_chunks' doesn't exist`), the rows are exact on every node, and the ledger says
/// what was done. Then an UPDATE-shaped migration through the proxy (`update_shape_through`).
#[test]
fn galera_haproxy_round_robin() {
    let g = Galera::start(3);
    let proxy = HaProxy::round_robin(&g);
    let db = format!("bf_galera_haproxy{}", common::suite());
    g.exec(
        0,
        &format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    );
    // The premise: three connections through the proxy reach three nodes.
    let reached: std::collections::BTreeSet<String> = (0..3)
        .map(|_| {
            common::topology::maria_sql(proxy.port, "SELECT @@wsrep_node_name")
                .expect("through haproxy")
        })
        .collect();
    assert_eq!(reached.len(), 3, "round-robin reached {reached:?}");
    let nodes: Vec<_> = (0..3)
        .map(|i| TestDb::wrap_for_seeding(&g.url(i, &db)))
        .collect();
    backfill::fixtures::load_schema(nodes[0].session().as_mut()).expect("load app schema");
    seed_generated(&nodes[0], 800);
    g.settle();
    let expected = nodes[0].expected_competencies();
    assert!(expected.len() > 300, "{}", expected.len());
    let url = proxy.url(&db);
    let v = v();
    let jobs = ["--jobs", "4", "--batch-size", "10", "--lock-timeout", "120"];
    let runs = race(
        &[url.clone(), url.clone()],
        &[&["apply"][..], &jobs[..]].concat(),
        &[SLOW],
    );
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(
            r.code, 0,
            "racer {i}\n--- stdout\n{}\n--- stderr\n{}",
            r.stdout, r.stderr
        );
    }
    assert_one_did_the_work(&runs);
    let check = |what: &str, state: &str, rows: &std::collections::BTreeSet<(i64, i64)>| {
        g.settle();
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(
                &n.marked_competencies(),
                rows,
                "{what}: rows read on node {i}"
            );
            assert_eq!(
                duplicate_versions(n),
                vec![],
                "{what}: duplicates on node {i}"
            );
            assert_eq!(
                n.state(V_COMPETENCY).as_deref(),
                Some(state),
                "{what}: node {i}"
            );
            assert_eq!(
                n.int("SELECT COUNT(*) FROM backfill_chunks"),
                0,
                "{what}: chunks left"
            );
        }
        if state == "applied" {
            assert_eq!(
                nodes[0].rows_applied(V_COMPETENCY),
                expected.len() as i64,
                "{what}"
            );
        }
        run_url(&url, &["verify"]).expect(0);
    };
    check("two racers", "applied", &expected);
    // Unpinned, about one run in two failed here: three rounds.
    for round in 1..=3 {
        let revert = run_url(&url, &[&["revert", &v][..], &jobs[..]].concat());
        revert.expect(0);
        check(
            &format!("revert --jobs 4, round {round}"),
            "reverted",
            &Default::default(),
        );
        let again = run_url(&url, &[&["apply", &v][..], &jobs[..]].concat());
        again.expect(0);
        eprintln!("apply --jobs 4 through haproxy: {}", again.stdout.trim());
        check(
            &format!("apply --jobs 4 alone, round {round}"),
            "applied",
            &expected,
        );
    }
    // On the same cluster (one more would start in parallel with the other Galera tests').
    update_shape_through(&g, &proxy, &db);
}

/// `notes(id, name, note)` in `t` with `rows` rows, every `kept`-th with its note already (the others
/// NULL), and a migrations directory holding `V{version}__fill_notes.toml`, an UPDATE-shaped migration
/// that sets each NULL note to its `name` and '!'.
fn notes_with_fill(t: &TestDb, rows: i64, kept: i64, version: &str) -> TempDir {
    t.exec("CREATE TABLE notes (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL, note VARCHAR(60) NULL)");
    let values: Vec<String> = (1..=rows)
        .map(|i| match i % kept {
            0 => format!("({i}, 'n{i}', 'kept {i}')"),
            _ => format!("({i}, 'n{i}', NULL)"),
        })
        .collect();
    t.exec(&format!("INSERT INTO notes VALUES {}", values.join(", ")));
    let dir = TempDir::new("bf_fill_notes");
    std::fs::write(
        dir.0.join(format!("V{version}__fill_notes.toml")),
        "shape = \"update\"\ntable = \"notes\"\nkey = \"id\"\nwhere = \"t.note IS NULL\"\n\
         [set]\nnote = \"CONCAT(t.name, '!')\"\n",
    )
    .expect("write the migration");
    dir
}

/// An UPDATE-shaped declarative migration through `proxy` into `db` (a database of `g` with no such
/// table yet): each `--jobs 4` worker's batches journal through a temporary table of its own session
/// (MariaDB's apply never reads the journal by range while writing), on whichever node its connection
/// reached. Every node then holds the new values and one journal entry per changed row, and
/// `revert --jobs 4` puts back exactly what was there, the NULLs included, on every node.
fn update_shape_through(g: &Galera, proxy: &HaProxy, db: &str) {
    let nodes: Vec<_> = (0..3)
        .map(|i| TestDb::wrap_for_seeding(&g.url(i, db)))
        .collect();
    // Every third row has its note already; the others are NULL, and get `name` + '!'.
    let dir = notes_with_fill(&nodes[0], 600, 3, "202612070950");
    g.settle();
    let read = |n: &TestDb| -> Vec<(i64, Option<String>)> {
        n.rows("SELECT id, note FROM notes ORDER BY id")
            .into_iter()
            .map(|r| (r[0].as_i64().expect("id"), r[1].as_str().map(String::from)))
            .collect()
    };
    let before = read(&nodes[0]);
    let url = proxy.url(db);
    let dir_arg = dir.0.to_str().expect("a UTF-8 temp dir");
    let args = |cmd: &'static str| {
        vec![
            cmd,
            "202612070950",
            "--jobs",
            "4",
            "--batch-size",
            "25",
            "--migrations-dir",
            dir_arg,
        ]
    };
    run_url(&url, &args("apply")).expect(0);
    g.settle();
    let after: Vec<(i64, Option<String>)> = before
        .iter()
        .map(|(id, note)| (*id, Some(note.clone().unwrap_or(format!("n{id}!")))))
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(read(n), after, "node {i} after apply");
        assert_eq!(
            n.int("SELECT COUNT(*) FROM backfill_undo WHERE version = 202612070950"),
            400,
            "node {i}: one journal entry per changed row"
        );
    }
    run_url(&url, &args("revert")).expect(0);
    g.settle();
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(read(n), before, "node {i} after revert");
        assert_eq!(
            n.int("SELECT COUNT(*) FROM backfill_undo WHERE version = 202612070950"),
            0,
            "node {i}"
        );
    }
}

/// `--replica-url` without `--max-replica-lag` is a usage error; an unreachable replica fails the
/// command in one line naming it (never its password) before anything is written.
#[test]
fn replica_url_bad_input() {
    let t = TestDb::with_app(Kind::Mariadb, "replica_url_bad");
    seed_generated(&t, 250);
    t.create_ledger();
    let v = v();
    // A reachable server: only the missing limit is wrong.
    let reachable = t.url.clone();
    let port = closed_port();
    let secret = "Repl1caPassw0rd";
    let unreachable = format!(
        "mysql://bf_replica:{secret}@127.0.0.1:{port}/{}",
        t.db_name()
    );
    let nothing_written = |before: &[String], ctx: &str| {
        assert!(dump_all(&t) == before, "{ctx}: something was written");
    };

    let before = dump_all(&t);
    for args in [
        vec!["apply", "--replica-url", &reachable],
        vec![
            "apply",
            &v,
            "--replica-url",
            &reachable,
            "--batch-size",
            "10",
        ],
        vec!["revert", &v, "--replica-url", &reachable],
    ] {
        let r = t.run(&args);
        let line = r.one_line_error(2);
        eprintln!("{args:?}: {line}");
        assert!(
            line.contains("--max-replica-lag") && !line.contains("unexpected argument"),
            "{args:?}: the usage error names what is missing: {line}"
        );
        nothing_written(&before, &format!("{args:?}"));
    }

    let r = t.run(&[
        "apply",
        "--max-replica-lag",
        "1",
        "--replica-url",
        &unreachable,
    ]);
    assert_ne!(r.code, 0, "apply with an unreachable replica: {}", r.stdout);
    let line = r.one_line_error_hiding(r.code, secret).to_string();
    eprintln!("apply, unreachable replica: exit {} {line}", r.code);
    assert!(
        line.contains(&format!("127.0.0.1:{port}")),
        "the error names the replica: {line}"
    );
    nothing_written(&before, "apply with an unreachable replica");
    assert!(t.marked_competencies().is_empty());

    // Revert: applied first (no replica), then nothing may be deleted.
    t.run(&["apply", &v]).expect(0);
    let applied = t.marked_competencies();
    assert!(!applied.is_empty());
    let before = dump_all(&t);
    let r = t.run(&[
        "revert",
        &v,
        "--max-replica-lag",
        "1",
        "--replica-url",
        &unreachable,
    ]);
    assert_ne!(
        r.code, 0,
        "revert with an unreachable replica: {}",
        r.stdout
    );
    let line = r.one_line_error_hiding(r.code, secret).to_string();
    eprintln!("revert, unreachable replica: exit {} {line}", r.code);
    assert!(
        line.contains(&format!("127.0.0.1:{port}")),
        "the error names the replica: {line}"
    );
    nothing_written(&before, "revert with an unreachable replica");
    assert_eq!(t.marked_competencies(), applied);
}

// ------------------------------------------------------------------------------------------- Fencing

const NO_LOCK: (&str, &str) = ("BACKFILL_TEST_NO_LOCK", "1");

/// Checks racing runners without the lock: none panics, a failure is one `error:` line (besides the
/// no-lock warning), at least one finishes; their exit codes.
fn no_lock_outcomes(runs: &[Run]) -> Vec<i32> {
    for r in runs {
        assert!(!r.stderr.contains("panicked"), "panic: {}", r.stderr);
        let lines: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("BACKFILL_TEST_NO_LOCK"))
            .collect();
        if r.code != 0 {
            // A runner that lost the compare-and-set stops with one clear line.
            assert!(
                lines.len() == 1 && lines[0].starts_with("error: "),
                "exit {}: expected one error line, got:\n{}",
                r.code,
                r.stderr
            );
        }
    }
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    let stderrs: Vec<&str> = runs.iter().map(|r| r.stderr.as_str()).collect();
    assert!(
        codes.contains(&0),
        "at least one runner finishes: {codes:?}\n{stderrs:#?}"
    );
    codes
}

/// With the runner lock switched off (BACKFILL_TEST_NO_LOCK=1), 4 runners: the fenced checkpoints
/// alone must keep every row exact, none written twice. Once all started at the same moment, once
/// joining a run already in its batches.
fn fencing_without_lock(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("fence_nolock_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    assert_eq!(
        duplicate_versions(&t),
        vec![],
        "the fixture has no duplicates"
    );
    t.create_ledger();
    let args = ["apply", "--batch-size", "5", "--lock-timeout", "60"];

    // All at once.
    let runs = race(
        &vec![t.url.clone(); 4],
        &args,
        &[NO_LOCK, ("BACKFILL_TEST_BATCH_DELAY_MS", "5")],
    );
    let codes = no_lock_outcomes(&runs);
    eprintln!("{kind:?}: started together without the lock, exit codes {codes:?}");
    assert_eq!(
        duplicate_versions(&t),
        vec![],
        "a competency versioned twice"
    );
    assert_eq!(t.marked_competencies(), expected, "rows exact");
    t.run(&["apply"]).expect(0);
    assert_rows_exact(&t, &expected, "after the race without a lock");
    t.run(&["verify"]).expect(0);

    // More runners join a run that is already writing batches.
    let d = t.session().dialect();
    t.exec(&format!(
        "DELETE FROM competency_versions WHERE {} = '{}'",
        d.json_text("metadata", "migration"),
        V_COMPETENCY
    ));
    t.exec("DELETE FROM backfill_migrations");
    t.exec("DELETE FROM backfill_runs");
    // --pause-ms: between its batches the first runner holds no row lock, so a joiner can start the
    // migration over it (without the lock nothing stops that) and both run batches; the first one's
    // next checkpoint must then fail its compare-and-set. 25 batches of 10 keys, 1 s apart.
    let first_args = [
        "apply",
        "--batch-size",
        "10",
        "--lock-timeout",
        "60",
        "--pause-ms",
        "1000",
    ];
    let mut first = Watched::spawn(
        &t.url,
        &first_args,
        &[NO_LOCK, ("BACKFILL_TEST_BATCH_DELAY_MS", "5")],
    );
    wait_running(&t, &mut first);
    // Three at once; again while none of them got in (one that did exits 0: the first is fenced).
    let mut runs = Vec::new();
    for _wave in 0..4 {
        let wave = race(
            &vec![t.url.clone(); 3],
            &args,
            &[NO_LOCK, ("BACKFILL_TEST_BATCH_DELAY_MS", "5")],
        );
        let got_in = wave.iter().any(|r| r.code == 0);
        runs.extend(wave);
        if got_in || first.exited().is_some() {
            break;
        }
    }
    runs.insert(0, first.finish_within(Duration::from_secs(120)));
    let codes = no_lock_outcomes(&runs);
    let batches_by = t.rows(
        "SELECT state, COALESCE(row_count, 0) FROM backfill_runs WHERE action = 'apply' ORDER BY started_at",
    );
    eprintln!(
        "{kind:?}: joined mid-run without the lock, exit codes {codes:?}, runs {batches_by:?}"
    );
    for r in &runs {
        eprintln!(
            "  exit {}: {}",
            r.code,
            r.stderr.trim().replace('\n', " | ")
        );
    }
    assert!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply' AND state = 'stopped' AND row_count > 0")
            >= 1,
        "no runner was overtaken after writing batches: the fenced checkpoint was not exercised ({batches_by:?})"
    );
    assert_eq!(
        duplicate_versions(&t),
        vec![],
        "a competency versioned twice"
    );
    assert_eq!(t.marked_competencies(), expected, "rows exact");
    t.run(&["apply"]).expect(0);
    assert_rows_exact(&t, &expected, "after joining without a lock");
    t.run(&["verify"]).expect(0);
}

#[test]
fn fencing_no_lock_postgres() {
    fencing_without_lock(Kind::Postgres);
}

#[test]
fn fencing_no_lock_mariadb() {
    fencing_without_lock(Kind::Mariadb);
}

#[test]
fn fencing_no_lock_sqlite() {
    fencing_without_lock(Kind::Sqlite);
}

// ------------------------------------------------------------------------------------ Lock identity

/// While a slow `apply` runs on `t.url`, `revert --force --lock-timeout 1` on each other spelling of
/// the same database must find the lock busy (exit 4); nothing may be deleted.
fn lock_holds_across_spellings(t: &TestDb, spellings: &[String], refused_ok: &[String]) {
    seed_generated(t, 250);
    let expected = t.expected_competencies();
    t.create_ledger();
    let v = v();
    let mut runner = Watched::spawn(
        &t.url,
        &["apply", "--batch-size", "5"],
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "250")],
    );
    wait_running(t, &mut runner);
    for url in spellings.iter().chain(refused_ok) {
        let r = run_url(url, &["revert", &v, "--force", "--lock-timeout", "1"]);
        assert!(
            runner.exited().is_none(),
            "the apply finished before {url} was tried: make it slower"
        );
        if refused_ok.contains(url) && r.code == 2 {
            r.one_line_error(2); // refused before touching anything: as safe as busy
            continue;
        }
        let line = r.one_line_error(4).to_string();
        assert!(line.contains("lock"), "{url}: {line}");
    }
    let done = runner.finish_within(Duration::from_secs(120));
    done.expect(0);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    assert_rows_exact(t, &expected, "nothing reverted under a running apply");
}

/// `bf_…` with its first letter percent-encoded (`%62f_…`).
fn percent_encoded(db: &str) -> String {
    let mut chars = db.chars();
    let first = chars.next().expect("a name");
    format!("%{:02X}{}", first as u32, chars.as_str())
}

#[test]
fn lock_identity_mariadb_url_spellings() {
    let t = TestDb::with_app(Kind::Mariadb, "lockid");
    let base = "mysql://root@127.0.0.1:3306";
    let db = t.db_name();
    // The spellings reach the same database (checked, so the test means what it says).
    for url in [
        format!("{base}/{db}/"),
        format!("{base}/{}", percent_encoded(db)),
    ] {
        run_url(&url, &["status"]).expect(0);
    }
    lock_holds_across_spellings(
        &t,
        &[
            format!("{base}/{db}/"),
            format!("{base}/{}", percent_encoded(db)),
            format!("mariadb://root@127.0.0.1:3306/{db}"),
            format!("mysql://root@localhost:3306/{db}"),
        ],
        &[format!("{base}/{db}/x")],
    );
}

/// Lock names cut to a length must not make two long database names sharing a prefix one lock.
#[test]
fn lock_identity_mariadb_long_names_do_not_collide() {
    // MariaDB allows 64 characters; `bf_my_` + 58 (less the BF_TEST_SUITE tag that joins `bf_my`).
    let full = "long_database_name_shared_prefix_for_lock_identity_abcd_";
    let stem = &full[common::suite().len()..];
    let a = TestDb::with_app(Kind::Mariadb, &format!("{stem}a1"));
    let b = TestDb::with_app(Kind::Mariadb, &format!("{stem}b2"));
    assert_eq!(a.db_name().len(), 64, "{}", a.db_name());
    seed_generated(&a, 250);
    seed_generated(&b, 250);
    let expected_b = b.expected_competencies();
    let mut runner = Watched::spawn(
        &a.url,
        &["apply", "--batch-size", "5"],
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "100")],
    );
    wait_running(&a, &mut runner);
    let other = b.run(&["apply", "--lock-timeout", "1"]);
    assert!(runner.exited().is_none(), "make the first apply slower");
    other.expect(0);
    assert_rows_exact(&b, &expected_b, "the other database");
    runner.finish_within(Duration::from_secs(120)).expect(0);
}

#[test]
fn lock_identity_sqlite_symlink() {
    let t = TestDb::with_app(Kind::Sqlite, "lockid");
    let file = t.sqlite_path().expect("sqlite path").clone();
    let links = TempDir::new("sqlite-links");
    let file_link = links.path().join("linked.db");
    std::os::unix::fs::symlink(&file, &file_link).expect("symlink the file");
    let dir_link = links.path().join("dir");
    std::os::unix::fs::symlink(file.parent().unwrap(), &dir_link).expect("symlink the dir");
    let via_dir = dir_link.join(file.file_name().unwrap());
    lock_holds_across_spellings(
        &t,
        &[
            format!("sqlite://{}", file_link.display()),
            format!("sqlite://{}", via_dir.display()),
        ],
        &[],
    );
}

#[test]
fn lock_identity_postgres_url_spellings() {
    let t = TestDb::with_app(Kind::Postgres, "lockid");
    let base = "postgres://postgres@127.0.0.1:5432";
    let db = t.db_name();
    let encoded = format!("{base}/{}", percent_encoded(db));
    run_url(&encoded, &["status"]).expect(0);
    let mut spellings = vec![
        encoded,
        format!("postgresql://postgres@127.0.0.1:5432/{db}"),
        format!("postgres://postgres@localhost:5432/{db}"),
    ];
    // A trailing slash names another database for libpq-style parsers; if this one accepts it, it
    // must be the same lock too.
    let slash = format!("{base}/{db}/");
    let probe = run_url(&slash, &["status"]);
    if probe.code == 0 {
        spellings.push(slash);
    } else {
        let line = probe.one_line_error(probe.code);
        eprintln!("postgres: trailing slash refused ({}): {line}", probe.code);
    }
    lock_holds_across_spellings(&t, &spellings, &[]);
}

// ------------------------------------------------------------------------------------ Nothing hangs

/// A TCP listener that accepts and never answers.
fn silent_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn); // never read, never written, never closed
        }
    });
    port
}

fn silent_server(url: &str) {
    // On its own, `status` gives up within a bounded time, in one line.
    let started = Instant::now();
    let r = Watched::spawn(url, &["status"], &[]).finish_within(Duration::from_secs(60));
    let took = started.elapsed();
    assert_ne!(r.code, 0, "status against a silent server: {}", r.stdout);
    let line = r.one_line_error(r.code).to_string();
    eprintln!("{url}: gave up after {took:?}: {line}");
    assert!(
        took < Duration::from_secs(20),
        "status waited {took:?} on a server that never answers"
    );
    // SIGTERM while connecting ends it at once.
    let runner = Watched::spawn(url, &["status"], &[]);
    std::thread::sleep(Duration::from_millis(1000));
    signal(runner.pid(), "TERM");
    let sent = Instant::now();
    let r = runner.finish_within(Duration::from_secs(60));
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "SIGTERM while connecting took {took:?} to end status"
    );
    assert_eq!(r.code, 143, "stderr: {}", r.stderr);
}

#[test]
fn hang_silent_listener_postgres() {
    let port = silent_listener();
    silent_server(&format!("postgres://postgres@127.0.0.1:{port}/app"));
}

#[test]
fn hang_silent_listener_mysql() {
    let port = silent_listener();
    silent_server(&format!("mysql://root@127.0.0.1:{port}/app"));
}

/// A client session holding a lock on the ledger table; killed on Drop.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hold(mut cmd: Command, script: &str) -> Holder {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start client");
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(script.as_bytes())
        .expect("write to client");
    Holder(child) // stdin stays open: the session stays
}

fn status_gives_up_on_locked_ledger(t: &TestDb) {
    let started = Instant::now();
    let r = Watched::spawn(&t.url, &["status", "--lock-timeout", "2"], &[])
        .finish_within(Duration::from_secs(120));
    let took = started.elapsed();
    assert_ne!(
        r.code, 0,
        "status read a table locked exclusively: {}",
        r.stdout
    );
    let line = r.one_line_error(r.code).to_string();
    eprintln!("{:?}: status gave up after {took:?}: {line}", t.kind);
    assert!(
        took < Duration::from_secs(30),
        "status waited {took:?} on a locked ledger table"
    );
}

#[test]
fn hang_locked_ledger_table_postgres() {
    let t = TestDb::with_app(Kind::Postgres, "hang_locked");
    t.run(&["apply"]).expect(0); // creates the ledger
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-q",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        t.db_name(),
    ]);
    let _holder = hold(
        cmd,
        "BEGIN;\nLOCK TABLE backfill_migrations IN ACCESS EXCLUSIVE MODE;\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while psql(
        5432,
        t.db_name(),
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'backfill_migrations' AND l.mode = 'AccessExclusiveLock' AND l.granted",
    )
    .as_deref()
        != Ok("1")
    {
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    status_gives_up_on_locked_ledger(&t);
}

#[test]
fn hang_locked_ledger_table_mariadb() {
    let t = TestDb::with_app(Kind::Mariadb, "hang_locked");
    t.run(&["apply"]).expect(0);
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-u", "root", t.db_name()]);
    let _holder = hold(
        cmd,
        "LOCK TABLES backfill_migrations WRITE;\nSELECT SLEEP(600);\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("mariadb")
            .args([
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-N",
                "-B",
                t.db_name(),
                "-e",
            ])
            .arg("SHOW OPEN TABLES WHERE `Table` = 'backfill_migrations' AND In_use > 0")
            .output()
            .expect("mariadb");
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    status_gives_up_on_locked_ledger(&t);
}

/// SIGTERM while waiting for another runner's lock: exits 143 at once, starts nothing.
#[test]
fn hang_sigterm_while_waiting_for_lock() {
    let t = TestDb::with_app(Kind::Postgres, "hang_lockwait");
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    t.create_ledger();
    let mut first = Watched::spawn(
        &t.url,
        &["apply", "--batch-size", "10"],
        &[("BACKFILL_TEST_BATCH_DELAY_MS", "80")],
    );
    wait_running(&t, &mut first);
    let second = Watched::spawn(&t.url, &["apply", "--lock-timeout", "60"], &[]);
    std::thread::sleep(Duration::from_millis(1000));
    signal(second.pid(), "TERM");
    let sent = Instant::now();
    let r = second.finish_within(Duration::from_secs(60));
    let took = sent.elapsed();
    assert!(first.exited().is_none(), "make the first apply slower");
    assert_eq!(r.code, 143, "stderr: {}", r.stderr);
    assert!(took < Duration::from_secs(3), "TERM took {took:?}");
    first.finish_within(Duration::from_secs(120)).expect(0);
    assert_rows_exact(&t, &expected, "after a TERM in the lock wait");
    assert_eq!(t.state(V_ROLE).as_deref(), Some("applied"));
    assert_eq!(
        t.int("SELECT COUNT(*) FROM backfill_runs WHERE state <> 'succeeded'"),
        0,
        "the interrupted waiter started nothing"
    );
}
