//! Shared test support: a database of its own per test on real PostgreSQL, MariaDB or SQLite, and the
//! built binary run as a process against it.
#![allow(dead_code)]

use backfill::db::{self, Session, Target, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

pub mod live;
pub mod topology;

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MY_ADMIN: &str = "mysql://root@127.0.0.1:3306/mysql";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Mariadb,
    Sqlite,
}

pub const V_COMPETENCY: i64 = 202611230001;
pub const V_ROLE: i64 = 202611230002;

/// A fresh, empty database that is dropped when the test ends, even when it fails (the library's
/// `db::admin::Scratch`, which the testkit uses too).
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    name: String,
    /// `None` for a database the test does not own (`wrap_for_seeding`): nothing to drop.
    db: Option<backfill::db::admin::Scratch>,
}

fn admin(kind: Kind) -> Box<dyn Session> {
    let url = if kind == Kind::Postgres {
        PG_ADMIN
    } else {
        MY_ADMIN
    };
    db::connect(&Target::parse(url).expect("admin url"))
        .expect("the test database server must be running (make test starts it)")
}

/// `BF_TEST_SUITE` (letters and digits, optional): a tag in every database and user name a test
/// creates, so two suites from two worktrees can run against the same servers at once.
pub fn suite() -> String {
    std::env::var("BF_TEST_SUITE")
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_lowercase()
}

impl TestDb {
    pub fn new(kind: Kind, test: &str) -> TestDb {
        let (tag, dialect) = match kind {
            Kind::Postgres => ("pg", db::Dialect::Postgres),
            Kind::Mariadb => ("my", db::Dialect::Mysql),
            Kind::Sqlite => ("lite", db::Dialect::Sqlite),
        };
        let name = format!("bf_{tag}{}_{test}", suite()).to_lowercase();
        let db = backfill::db::admin::Scratch::create(dialect, &name).unwrap_or_else(|e| {
            panic!("cannot create {name}: {e} (the test database servers must be running: make test starts them)")
        });
        TestDb {
            kind,
            url: db.url.clone(),
            name,
            db: Some(db),
        }
    }

    /// A fresh database with the app's tables.
    pub fn with_app(kind: Kind, test: &str) -> TestDb {
        let t = TestDb::new(kind, test);
        backfill::fixtures::load_schema(t.session().as_mut()).expect("load app schema");
        t
    }

    /// Creates the ledger as the first write would (looks create none).
    pub fn create_ledger(&self) {
        backfill::engine::ledger::migrate(self.session().as_mut()).expect("create the ledger");
    }

    pub fn session(&self) -> Box<dyn Session> {
        db::connect(&Target::parse(&self.url).expect("url")).expect("connect to test database")
    }

    pub fn sqlite_path(&self) -> Option<&PathBuf> {
        self.db.as_ref().and_then(|d| d.sqlite_path())
    }

    pub fn exec(&self, sql: &str) {
        self.session()
            .execute(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn int(&self, sql: &str) -> i64 {
        let v = self
            .session()
            .query_scalar(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        v.as_i64()
            .unwrap_or_else(|| panic!("{sql}: not an integer: {v:?}"))
    }

    /// Whether a table exists (a query on it succeeds).
    pub fn has_table(&self, table: &str) -> bool {
        self.session()
            .query(&format!("SELECT 1 FROM {table} WHERE 1 = 0"), &[])
            .is_ok()
    }

    /// How many runs' stages (`backfill_stage_*` tables) the database holds.
    pub fn stage_tables(&self) -> i64 {
        let like = "LIKE 'backfill!_stage!_%' ESCAPE '!'";
        self.int(&match self.kind {
            Kind::Postgres => format!("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename {like}"),
            Kind::Mariadb => format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name {like}"),
            Kind::Sqlite => format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name {like}"),
        })
    }

    pub fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        self.session()
            .query(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn text(&self, sql: &str) -> Option<String> {
        match self
            .session()
            .query_scalar(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
        {
            Value::Text(s) => Some(s),
            Value::Null => None,
            other => Some(format!("{other:?}")),
        }
    }

    /// Runs the built binary against this database.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run backfill"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.env("DATABASE_URL", &self.url).args(args);
        cmd
    }

    /// (competency_id, scenario_id) of every row this migration marked, from the table itself.
    pub fn marked_competencies(&self) -> BTreeSet<(i64, i64)> {
        self.marked("competency_versions", "competency_id", V_COMPETENCY)
    }

    pub fn marked(&self, table: &str, fk: &str, version: i64) -> BTreeSet<(i64, i64)> {
        let d = self.session().dialect();
        let sql = format!(
            "SELECT {fk}, {} FROM {table} WHERE {} = '{version}'",
            d.json_text("metadata", "scenario_id"),
            d.json_text("metadata", "migration")
        );
        let rows = self.rows(&sql);
        let set: BTreeSet<(i64, i64)> = rows
            .iter()
            .map(|r| (r[0].as_i64().unwrap_or(-1), r[1].as_i64().unwrap_or(-1)))
            .collect();
        assert_eq!(
            set.len(),
            rows.len(),
            "{table}: a {fk} was versioned twice by one migration"
        );
        set
    }

    /// What the competency backfill must produce, computed in Rust from the raw tables (not from the
    /// migration's SQL): each competency linked to a capability with a scenario, no version before,
    /// with the lowest such scenario.
    pub fn expected_competencies(&self) -> BTreeSet<(i64, i64)> {
        let links = self.rows(
            "SELECT l.competency_id, c.discovered_in_scenario_id FROM capability_competencies l \
             JOIN capabilities c ON c.id = l.capability_id",
        );
        let versioned: BTreeSet<i64> = self
            .rows("SELECT competency_id FROM competency_versions WHERE competency_id IS NOT NULL")
            .iter()
            .filter_map(|r| r[0].as_i64())
            .collect();
        lowest_per_entity(&links, &versioned)
    }

    pub fn expected_roles(&self) -> BTreeSet<(i64, i64)> {
        let links = self.rows("SELECT role_id, scenario_id FROM scenario_roles");
        let versioned: BTreeSet<i64> = self
            .rows("SELECT role_id FROM role_versions WHERE role_id IS NOT NULL")
            .iter()
            .filter_map(|r| r[0].as_i64())
            .collect();
        lowest_per_entity(&links, &versioned)
    }

    /// One integer column of `version`'s ledger row (`rows_applied`, `batches`, `batch_size`, …).
    pub fn ledger_int(&self, version: impl std::fmt::Display, column: &str) -> i64 {
        self.int(&format!(
            "SELECT {column} FROM backfill_migrations WHERE version = {version}"
        ))
    }

    /// The ledger's `rows_applied` for `version`.
    pub fn rows_applied(&self, version: impl std::fmt::Display) -> i64 {
        self.ledger_int(version, "rows_applied")
    }

    /// The migration's ledger state; `None` when it never started (or the ledger does not exist yet).
    pub fn state(&self, version: i64) -> Option<String> {
        let sql = format!("SELECT state FROM backfill_migrations WHERE version = {version}");
        match self.session().query_scalar(&sql, &[]) {
            Ok(Value::Text(s)) => Some(s),
            _ => None,
        }
    }
}

fn lowest_per_entity(links: &[Vec<Value>], versioned: &BTreeSet<i64>) -> BTreeSet<(i64, i64)> {
    let mut lowest = std::collections::BTreeMap::new();
    for r in links {
        let (Some(entity), Some(scenario)) = (r[0].as_i64(), r[1].as_i64()) else {
            continue;
        };
        if versioned.contains(&entity) {
            continue;
        }
        let e = lowest.entry(entity).or_insert(scenario);
        *e = (*e).min(scenario);
    }
    lowest.into_iter().collect()
}

/// Runs the built binary against `url`, a database no `TestDb` stands for.
pub fn run_url(url: &str, args: &[&str]) -> Run {
    Run::from(
        bin()
            .env("DATABASE_URL", url)
            .args(args)
            .output()
            .expect("run backfill"),
    )
}

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backfill"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("USER", "tester");
    cmd
}

/// A finished process, with the checks every test wants.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, printing the output when it differs.
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        assert!(
            !self.stderr.contains("RUST_BACKTRACE"),
            "backtrace hint: {}",
            self.stderr
        );
        self
    }

    /// Asserts a failure reported as exactly one line on stderr.
    pub fn one_line_error(&self, code: i32) -> &str {
        self.expect(code);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        lines[0]
    }

    /// [`Run::one_line_error`], and on neither stream `secret` (a password), a panic or a backtrace.
    pub fn one_line_error_hiding(&self, code: i32, secret: &str) -> &str {
        let line = self.one_line_error(code);
        for (what, out) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            assert!(!out.contains(secret), "password leaked on {what}: {out}");
            assert!(
                !out.contains("panicked") && !out.to_lowercase().contains("backtrace"),
                "panic on {what}: {out}"
            );
        }
        line
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Generates one #[test] per dialect for each listed function `fn name(kind: Kind)`.
#[macro_export]
macro_rules! on_every_dialect {
    ($($name:ident),* $(,)?) => {
        mod postgres { $( #[test] fn $name() { super::$name($crate::common::Kind::Postgres) } )* }
        mod mariadb { $( #[test] fn $name() { super::$name($crate::common::Kind::Mariadb) } )* }
        mod sqlite { $( #[test] fn $name() { super::$name($crate::common::Kind::Sqlite) } )* }
    };
}

const TS: &str = "'2026-01-15 10:00:00'";

/// A small hand-built data set with every edge case the first migrations must get right.
pub fn seed_edge_cases(t: &TestDb) {
    for s in 1..=8 {
        t.exec(&format!("INSERT INTO scenarios (id, organization_id, name, created_at, updated_at) VALUES ({s}, 1, 'scenario {s}', {TS}, {TS})"));
    }
    let competencies = [
        (1, 1, "Négociation « interculturelle »", Some("'d1'")),
        (2, 2, "O''Brien \"quoted\" skill", None),
        (3, 1, "already versioned", Some("'d3'")),
        (
            4,
            1,
            "only on a capability whose scenario was deleted",
            Some("'d4'"),
        ),
        (5, 1, "on no capability", Some("'d5'")),
        (6, 2, "数据 分析 — ünïcode", Some("'d6'")),
    ];
    for (id, org, name, desc) in competencies {
        t.exec(&format!(
            "INSERT INTO competencies (id, organization_id, name, description, status, created_at, updated_at) VALUES ({id}, {org}, '{name}', {}, 'active', {TS}, {TS})",
            desc.unwrap_or("NULL")
        ));
    }
    // capability id -> discovered_in_scenario_id
    for (id, scenario) in [(1, "7"), (2, "3"), (3, "5"), (4, "NULL")] {
        t.exec(&format!(
            "INSERT INTO capabilities (id, organization_id, name, discovered_in_scenario_id, created_at, updated_at) VALUES ({id}, 1, 'cap {id}', {scenario}, {TS}, {TS})"
        ));
    }
    // (link id, scenario_id, capability, competency)
    for (id, scenario, cap, comp) in [
        (1, 7, 1, 1),
        (2, 3, 2, 1),
        (3, 5, 3, 2),
        (4, 7, 1, 3),
        (5, 1, 4, 4),
        (6, 5, 3, 6),
        (7, 2, 4, 6),
    ] {
        t.exec(&format!(
            "INSERT INTO capability_competencies (id, scenario_id, capability_id, competency_id, required_level, created_at, updated_at) VALUES ({id}, {scenario}, {cap}, {comp}, 3, {TS}, {TS})"
        ));
    }
    // Another part of the app writes `source = backfill` too; revert must never touch this row.
    t.exec(&format!(
        "INSERT INTO competency_versions (organization_id, competency_id, version_group_id, name, evolution_state, metadata, created_at, updated_at) \
         VALUES (1, 3, '0b7e7f52-6a43-4c6b-9a9e-2f1f0c1d2e3f', 'already versioned', 'stable', '{{\"source\":\"backfill\",\"scenario_id\":7}}', {TS}, {TS})"
    ));
    for (id, org) in [(1, 1), (2, 1), (3, 2)] {
        t.exec(&format!("INSERT INTO roles (id, organization_id, name, description, created_at, updated_at) VALUES ({id}, {org}, 'role {id}', NULL, {TS}, {TS})"));
    }
    for (id, scenario, role) in [(1, 4, 1), (2, 2, 1), (3, 6, 2)] {
        t.exec(&format!("INSERT INTO scenario_roles (id, scenario_id, role_id, role_change, created_at, updated_at) VALUES ({id}, {scenario}, {role}, 'new', {TS}, {TS})"));
    }
    t.exec(&format!(
        "INSERT INTO role_versions (organization_id, role_id, name, evolution_state, created_at, updated_at) VALUES (1, 2, 'role 2', 'stable', {TS}, {TS})"
    ));
}

/// A generated data set of `n` competencies (see `backfill::fixtures`).
pub fn seed_generated(t: &TestDb, n: u64) {
    let shape = backfill::fixtures::Shape {
        competencies: n,
        seed: 7,
    };
    backfill::fixtures::generate(t.session().as_mut(), &shape).expect("generate fixtures");
}

/// A small deterministic generator for test randomness (seed printed by the tests that use it).
pub struct Rng(pub u64);

impl Rng {
    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(nanos)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Sends a signal to a process by pid (the `kill` command; no libc binding needed).
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

// ---- bad input, least privilege, env files, TLS (tests/bad_input.rs, tests/operator.rs) ----

/// Every table of the test database with its columns and all its rows, in a stable order: two dumps
/// are equal exactly when nothing was written (rows, or the shape of a table).
pub fn dump_all(t: &TestDb) -> Vec<String> {
    let tables = backfill::db::admin::dump(t.session().as_mut()).expect("dump every table");
    let mut out = Vec::new();
    for table in tables {
        out.push(format!("{} {:?}", table.name, table.columns));
        out.extend(table.rows.iter().map(|r| format!("  {r:?}")));
    }
    out
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A login (PostgreSQL role / MariaDB user) made for one test, dropped when the test ends.
pub struct TestUser {
    pub kind: Kind,
    pub name: String,
    pub password: String,
    db: String,
}

impl TestUser {
    /// A user with `password` that may only read (SELECT) the test database `t`.
    pub fn read_only(t: &TestDb, name: &str, password: &str) -> TestUser {
        let user = TestUser::create(t, name, password);
        let name = &user.name;
        match t.kind {
            Kind::Postgres => {
                t.exec(&format!(
                    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}"
                ));
            }
            Kind::Mariadb => {
                admin(Kind::Mariadb)
                    .execute(
                        &format!("GRANT SELECT ON {}.* TO '{name}'@'%'", t.name),
                        &[],
                    )
                    .expect("grant select");
            }
            Kind::Sqlite => unreachable!("SQLite has no users"),
        }
        user
    }

    /// A MariaDB user with `password` and only `privileges` (e.g. `SELECT, INSERT`) on the test
    /// database `t`.
    pub fn granted(t: &TestDb, name: &str, password: &str, privileges: &str) -> TestUser {
        assert_eq!(t.kind, Kind::Mariadb, "privileges by name are MariaDB's");
        let user = TestUser::create(t, name, password);
        admin(Kind::Mariadb)
            .execute(
                &format!("GRANT {privileges} ON {}.* TO '{}'@'%'", t.name, user.name),
                &[],
            )
            .expect("grant");
        user
    }

    /// A user with `password` and every privilege on the test database `t`.
    pub fn owner(t: &TestDb, name: &str, password: &str) -> TestUser {
        let user = TestUser::create(t, name, password);
        let name = &user.name;
        match t.kind {
            Kind::Postgres => {
                t.exec(&format!(
                    "GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}"
                ));
                t.exec(&format!("GRANT ALL ON SCHEMA public TO {name}"));
            }
            Kind::Mariadb => {
                admin(Kind::Mariadb)
                    .execute(&format!("GRANT ALL ON {}.* TO '{name}'@'%'", t.name), &[])
                    .expect("grant all");
            }
            Kind::Sqlite => unreachable!("SQLite has no users"),
        }
        user
    }

    fn create(t: &TestDb, name: &str, password: &str) -> TestUser {
        let name = &format!("{name}{}", suite());
        let kind = t.kind;
        let mut a = admin(kind);
        match kind {
            Kind::Postgres => {
                drop_pg_role(a.as_mut(), &t.name, name);
                a.execute(
                    &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
                    &[],
                )
                .expect("create role");
            }
            Kind::Mariadb => {
                let _ = a.execute(&format!("DROP USER IF EXISTS '{name}'@'%'"), &[]);
                a.execute(
                    &format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"),
                    &[],
                )
                .expect("create user");
            }
            Kind::Sqlite => unreachable!("SQLite has no users"),
        }
        TestUser {
            kind,
            name: name.into(),
            password: password.into(),
            db: t.name.clone(),
        }
    }

    /// `url` (the test database's) with this user and password instead of the admin.
    pub fn url(&self, t: &TestDb) -> String {
        let host = match self.kind {
            Kind::Postgres => "postgres://postgres@",
            _ => "mysql://root@",
        };
        let rest = t.url.strip_prefix(host).expect("admin url");
        let scheme = host.split("://").next().unwrap_or("");
        format!("{scheme}://{}:{}@{rest}", self.name, self.password)
    }
}

fn drop_pg_role(a: &mut dyn Session, db_name: &str, name: &str) {
    // A role that was granted anything in a database must give it up there first.
    if let Ok(mut s) = db::connect(
        &Target::parse(&format!("postgres://postgres@127.0.0.1:5432/{db_name}")).expect("url"),
    ) {
        let _ = s.execute(&format!("DROP OWNED BY {name}"), &[]);
    }
    let _ = a.execute(&format!("DROP ROLE IF EXISTS {name}"), &[]);
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let mut a = admin(self.kind);
        match self.kind {
            Kind::Postgres => drop_pg_role(a.as_mut(), &self.db, &self.name),
            Kind::Mariadb => {
                let _ = a.execute(&format!("DROP USER IF EXISTS '{}'@'%'", self.name), &[]);
            }
            Kind::Sqlite => {}
        }
    }
}

impl TestDb {
    /// Runs the built binary with raw (possibly non-UTF-8) arguments and extra environment.
    pub fn run_os(&self, args: &[std::ffi::OsString], env: &[(&str, &std::ffi::OsStr)]) -> Run {
        let mut cmd = bin();
        cmd.env("DATABASE_URL", &self.url).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run backfill"))
    }

    /// The database's own name (`bf_...`).
    pub fn db_name(&self) -> &str {
        &self.name
    }
}

/// Runs one statement as the server's admin (users, grants).
pub fn admin_exec(kind: Kind, sql: &str) {
    admin(kind)
        .execute(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The `TestDb` helpers on a database this test does not own (on a server the test started itself):
/// nothing is ever dropped through it.
pub struct ForeignDb(std::mem::ManuallyDrop<TestDb>);

impl std::ops::Deref for ForeignDb {
    type Target = TestDb;
    fn deref(&self) -> &TestDb {
        &self.0
    }
}

impl TestDb {
    pub fn wrap_for_seeding(url: &str) -> ForeignDb {
        let kind = match Target::parse(url).expect("url").dialect {
            db::Dialect::Postgres => Kind::Postgres,
            db::Dialect::Mysql => Kind::Mariadb,
            db::Dialect::Sqlite => Kind::Sqlite,
        };
        ForeignDb(std::mem::ManuallyDrop::new(TestDb {
            kind,
            url: url.to_string(),
            name: String::new(),
            db: None,
        }))
    }
}
