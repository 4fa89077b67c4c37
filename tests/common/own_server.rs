//! Database servers a test starts for itself, in a temp dir on a free port, so the shared servers other
//! tests use are never reconfigured: a server-wide setting (TLS, the default time zone) is given to a
//! throwaway server instead. Included with `#[path = "common/own_server.rs"] mod own_server;` next to
//! `mod common;` (it uses `common::closed_port`).
#![allow(dead_code)] // each test crate uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a setup command; the test fails with its output if it does.
pub fn sh(cmd: &mut Command) {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Server daemons refuse to run as root unless told which user to be.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A MariaDB server of the test's own (mariadb-install-db in a temp dir), stopped and removed on drop
/// (the directory is kept when the test fails). Root has no password and only the Unix socket:
/// [`MariaServer::sql`] runs as root there, and a test creates the TCP user it connects as.
pub struct MariaServer {
    pub dir: PathBuf,
    pub port: u16,
    child: Child,
}

impl MariaServer {
    /// `prepare` runs in the server's fresh directory before the server starts (to write
    /// certificates, say) and returns the extra `mariadbd` options this test needs.
    pub fn start(name: &str, prepare: impl FnOnce(&Path) -> Vec<String>) -> MariaServer {
        let dir = std::env::temp_dir().join(format!("backfill-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("server dir");
        let extra = prepare(&dir);
        let data = dir.join("data");
        let user = if is_root() { "root" } else { "" };
        // Its own temporary directory, from the install on: a starting mariadbd deletes every `#sql*`
        // file in its tmpdir, and the machine's main server keeps its temporary tables in /tmp.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("server tmpdir");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if !user.is_empty() {
            install.arg(format!("--user={user}"));
        }
        sh(&mut install);
        let port = crate::common::closed_port();
        let mut server = Command::new("mariadbd");
        server
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}/mysqld.sock", dir.display()))
            .arg(format!("--pid-file={}/mysqld.pid", dir.display()))
            .arg(format!("--log-error={}/error.log", dir.display()))
            .args([
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
                "--skip-name-resolve",
            ])
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !user.is_empty() {
            server.arg(format!("--user={user}"));
        }
        let child = server.spawn().expect("start mariadbd");
        let srv = MariaServer { dir, port, child };
        let sock = srv.dir.join("mysqld.sock");
        wait_until("the test MariaDB server", || {
            Command::new("mariadb")
                .args(["--no-defaults", "-u", "root", "-S"])
                .arg(&sock)
                .args(["-e", "SELECT 1"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
        srv
    }

    /// Runs SQL as root over the server's socket.
    pub fn sql(&self, sql: &str) {
        sh(Command::new("mariadb")
            .args(["--no-defaults", "-u", "root", "-S"])
            .arg(self.dir.join("mysqld.sock"))
            .args(["-e", sql]));
    }

    /// Runs one query as root over the server's socket (a session in the server's default
    /// settings, as an app's) and returns its rows, tab-separated, without a header.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-u", "root", "-N", "-B", "-S"])
            .arg(self.dir.join("mysqld.sock"))
            .args(["-e", sql])
            .output()
            .unwrap_or_else(|e| panic!("mariadb -e {sql}: {e}"));
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A file in the server's directory.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for MariaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
