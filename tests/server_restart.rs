//! The database server restarts mid-run: `backfill` exits 1 with one clear line, the next run resumes
//! and finishes exactly. These tests restart the shared local servers, so they run one at a time in
//! their own test binary (cargo runs test binaries one after another).

mod common;
use common::{seed_generated, Kind, Run, TestDb, V_COMPETENCY};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
const MARIADB_PID: &str = "/run/mysqld/mysqld.pid";

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_until(what: &str, check: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !sh(check) {
        assert!(Instant::now() < deadline, "{what} did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn restart(kind: Kind) {
    match kind {
        Kind::Postgres => {
            assert!(sh("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -1) main restart -m fast"));
            wait_until(
                "PostgreSQL",
                "psql -h 127.0.0.1 -U postgres -tAc 'SELECT 1'",
            );
        }
        _ => {
            let pid = std::fs::read_to_string(MARIADB_PID).expect("MariaDB pid file");
            assert!(sh("mariadb-admin -h 127.0.0.1 -u root shutdown"));
            // The process must be gone, or start-stop-daemon --oknodo sees it and starts nothing.
            wait_until("MariaDB to exit", &format!("! kill -0 {}", pid.trim()));
            assert!(sh(&format!(
                "start-stop-daemon --start --oknodo --background --pidfile {MARIADB_PID} --exec /usr/sbin/mariadbd"
            )));
            wait_until("MariaDB", "mariadb -h 127.0.0.1 -u root -e 'SELECT 1'");
        }
    }
}

fn restart_mid_run(kind: Kind) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = TestDb::with_app(kind, &format!("restart_{}", kind as u8));
    seed_generated(&t, 250);
    let expected = t.expected_competencies();
    t.run(&["status"]).expect(0);
    let mut cmd = t.command(&["apply", "--batch-size", "10"]);
    cmd.env("BACKFILL_TEST_BATCH_DELAY_MS", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply'") == 0 {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    restart(kind);
    let out = Run::from(child.wait_with_output().expect("wait"));
    let line = out.one_line_error(1).to_string();
    assert!(
        line.contains("connection") || line.contains("terminat"),
        "a clear connection error: {line}"
    );
    assert!(line.contains("rerun"), "{line}");
    let written = t.marked_competencies();
    assert!(
        written.len() < expected.len(),
        "the restart must have cut the run"
    );
    let again = t.run(&["apply"]);
    again.expect(0);
    assert!(again.stdout.contains("resumed"), "{}", again.stdout);
    assert_eq!(t.marked_competencies(), expected);
    assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"));
    let audited = t.int("SELECT SUM(row_count) FROM backfill_runs WHERE action = 'apply' AND version = 202611230001");
    assert_eq!(audited, t.rows_applied(V_COMPETENCY));
}

#[test]
fn postgres_restart_mid_run() {
    restart_mid_run(Kind::Postgres);
}

#[test]
fn mariadb_restart_mid_run() {
    restart_mid_run(Kind::Mariadb);
}
