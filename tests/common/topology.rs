//! Production topologies started by the test itself, on free 127.0.0.1 ports in temp dirs, each process
//! stopped by its pid on Drop (also when the test panics):
//! - [`PgBouncer`]: transaction (or session) pooling in front of the shared PostgreSQL at :5432.
//! - [`Galera`]: a multi-writer MariaDB Galera cluster of `mariadbd` nodes (rsync SST).
//! - [`Standby`]: a throwaway PostgreSQL primary and a hot standby made with `pg_basebackup -R`.
//! - [`MariaReplication`]: a throwaway MariaDB primary (binlog) and an asynchronous replica of it.
//! - [`HaProxy`]: HAProxy round-robin in front of a [`Galera`] cluster.
//!
//! Start-up times measured on the 2-core test machine (Debian 12, MariaDB 10.11, PostgreSQL 15,
//! PgBouncer 1.18), other tests running beside them: PgBouncer 0.1-0.3 s; Galera, 3 nodes installed
//! and all `Synced`, 13-17 s; primary (initdb) + standby (pg_basebackup) streaming, about 4 s. The
//! whole of tests/topology.rs takes about 40 s with `--test-threads=6`.
//!
//! Also here, because the topology tests run them too: racing runners and the kill -9 trials that
//! `concurrency.rs` and `crash.rs` run on a direct server.

use super::{bin, Rng, Run, TestDb, V_COMPETENCY};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------------- support

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `n` distinct ports on 127.0.0.1 that nothing listens on (all bound at once, then released). Taken
/// below the kernel's ephemeral range (32768-60999 here), so no client connection's own port, which
/// the kernel picks from that range, can take one before the server that should listen on it.
pub fn free_ports(n: usize) -> Vec<u16> {
    const LOW: u16 = 20000;
    const HIGH: u16 = 32000;
    // Never the same port twice in one test process: a port is free here until its server binds it,
    // seconds later for a Galera joiner's SST port, and a test starting meanwhile could take it (CI
    // saw a joiner's rsync daemon die with four clusters starting at once).
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = super::Rng::from_time();
    let mut held = Vec::new();
    for _ in 0..10_000 {
        if held.len() == n {
            break;
        }
        let port = rng.range(LOW as u64, HIGH as u64) as u16;
        if handed.contains(&port) {
            continue;
        }
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), n, "no {n} free ports in {LOW}..{HIGH}");
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect();
    handed.extend(&ports);
    ports
}

/// Runs a command to completion; panics with its output when it fails.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `program args…` as the `postgres` user when we are root (PostgreSQL and PgBouncer refuse root).
fn as_postgres(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

/// The last `lines` lines of a log file, for panic messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every process below `pid` (children, their children, …), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let ppid = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ")?
                        .1
                        .split(' ')
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                });
            if let Some(ppid) = ppid {
                parent_of.push((child, ppid));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state is `Z`.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// Sends `sig` to `pid`, waits up to `grace` for it to exit, then SIGKILLs it.
pub fn stop_pid(pid: u32, sig: &str, grace: Duration) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Polls `ready` every 200 ms until it is true; after `limit`, panics with `what` and `detail()`.
pub fn wait_for(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
    detail: impl Fn() -> String,
) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < limit,
            "{what} not ready after {limit:?}\n{}",
            detail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A temp directory (mode 0755, so servers that drop to another user can traverse it), removed on
/// Drop. Created last-dropped by its owners: declare it as the struct's last field.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("backfill-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chown(path: &Path, owner: &str) {
    if is_root() {
        sh(Command::new("chown").args(["-R", owner]).arg(path));
    }
}

// ------------------------------------------------------------------------------------------ PgBouncer

/// PgBouncer (run as `postgres`) in front of the shared PostgreSQL at 127.0.0.1:5432: every database
/// of that server through one port. Stopped by its pid on Drop.
pub struct PgBouncer {
    pub port: u16,
    pid: u32,
    log: PathBuf,
    dir: TempDir,
}

impl PgBouncer {
    /// Transaction pooling (`pool_mode = transaction`), 4 server connections per database.
    pub fn start() -> PgBouncer {
        PgBouncer::start_with("transaction", 4, "")
    }

    /// Session pooling: a client keeps its server connection until it disconnects.
    pub fn start_session() -> PgBouncer {
        PgBouncer::start_with("session", 4, "")
    }

    /// `pool_mode`, `default_pool_size = pool_size`, and `settings` (more `key = value` lines).
    pub fn start_with(pool_mode: &str, pool_size: u32, settings: &str) -> PgBouncer {
        let started = Instant::now();
        let dir = TempDir::new(&format!("pgbouncer-{pool_mode}"));
        let d = dir.path();
        let port = free_ports(1)[0];
        let ini = d.join("pgbouncer.ini");
        let log = d.join("pgbouncer.log");
        let pidfile = d.join("pgbouncer.pid");
        std::fs::write(d.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port=5432\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\n\
                 pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 200\n{settings}\
                 ignore_startup_parameters = extra_float_digits,options,statement_timeout,application_name\n\
                 logfile = {log}\npidfile = {pid}\n",
                users = d.join("userlist.txt").display(),
                log = log.display(),
                pid = pidfile.display(),
            ),
        )
        .unwrap();
        chown(d, "postgres:postgres");
        let mut cmd = if is_root() {
            let mut c = Command::new("su");
            c.args(["postgres", "-s", "/bin/sh", "-c"])
                .arg(format!("pgbouncer -d {}", ini.display()));
            c
        } else {
            let mut c = Command::new("pgbouncer");
            c.arg("-d").arg(&ini);
            c
        };
        sh(&mut cmd);
        let mut pid = 0;
        wait_for(
            "pgbouncer's pid file",
            Duration::from_secs(20),
            || {
                pid = std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                pid != 0
            },
            || tail(&log, 20),
        );
        let bouncer = PgBouncer {
            port,
            pid,
            log,
            dir,
        };
        wait_for(
            "pgbouncer",
            Duration::from_secs(20),
            || bouncer.psql("postgres", "SELECT 1").is_ok(),
            || tail(&bouncer.log, 20),
        );
        eprintln!(
            "pgbouncer ({pool_mode} pooling) on port {port} started in {:?}",
            started.elapsed()
        );
        bouncer
    }

    /// `postgres://postgres@127.0.0.1:PORT/dbname`, through the bouncer.
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }

    /// One statement through the bouncer with `psql` (simple query protocol); its output, or the error.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql(self.port, db, sql)
    }

    /// PgBouncer's own log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- pgbouncer log (tail)\n{}", self.log_tail());
        }
        // SIGINT: safe shutdown; it is killed if clients keep it up.
        stop_pid(self.pid, "INT", Duration::from_secs(3));
    }
}

/// `psql -tAc SQL` on 127.0.0.1:`port` as `postgres` (no password: the servers here trust it).
pub fn psql(port: u16, db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U"])
        .args([
            "postgres",
            "-p",
            &port.to_string(),
            "-d",
            db,
            "-tA",
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

// --------------------------------------------------------------------------------------------- Galera

const GALERA_PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
/// Per node: the start of `--wsrep-new-cluster` or a join with rsync SST.
const NODE_START_LIMIT: Duration = Duration::from_secs(120);

struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// `mariadb-install-db` into each of `datas` at once (each takes a few seconds); one that fails
/// (seen now and then with several at a time) is retried alone from an empty directory.
fn install_system_tables(datas: Vec<PathBuf>, user: Option<&'static str>) {
    let install = move |data: PathBuf| -> Result<(), String> {
        // A tmpdir of its own: a starting mariadbd deletes every `#sql*` file in its tmpdir, and the
        // machine's shared server (and other installs) keep their temporary tables in /tmp.
        let tmp = data.with_file_name("install-tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let mut c = Command::new("mariadb-install-db");
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .stdin(Stdio::null());
        if let Some(user) = user {
            c.arg(format!("--user={user}"));
            let owned = Command::new("chown")
                .args([&format!("{user}:{user}"), &tmp.display().to_string()])
                .status();
            if !owned.is_ok_and(|s| s.success()) {
                return Err(format!("chown {user} {}", tmp.display()));
            }
        }
        let out = c.output().map_err(|e| format!("mariadb-install-db: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "mariadb-install-db --datadir={} failed ({}):\n{}{}",
            data.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let runs: Vec<_> = datas
        .iter()
        .cloned()
        .map(|data| std::thread::spawn(move || install(data)))
        .collect();
    let results: Vec<_> = runs
        .into_iter()
        .map(|h| h.join().expect("mariadb-install-db thread"))
        .collect();
    for (data, result) in datas.into_iter().zip(results) {
        if let Err(first) = result {
            eprintln!("{first}\nretrying");
            let _ = std::fs::remove_dir_all(&data);
            if let Err(again) = install(data) {
                panic!("{again}");
            }
        }
    }
}

/// A MariaDB Galera cluster of `n` multi-writer nodes on 127.0.0.1, run as `mysql`; rsync SST.
/// Every node is SIGKILLed and the temp dir removed on Drop.
pub struct Galera {
    nodes: Vec<Node>,
    dir: TempDir,
}

impl Galera {
    pub fn start(n: usize) -> Galera {
        assert!(
            Path::new(GALERA_PROVIDER).exists(),
            "{GALERA_PROVIDER} is missing: run scripts/db-up.sh (installs galera-4)"
        );
        let started = Instant::now();
        let dir = TempDir::new("galera");
        // Per node: client port, group communication (G), IST (I), SST (S).
        let ports = free_ports(4 * n);
        let gcomm: Vec<String> = (0..n)
            .map(|i| format!("127.0.0.1:{}", ports[4 * i + 1]))
            .collect();
        let cluster_address = format!("gcomm://{}", gcomm.join(","));
        let mut nodes = Vec::new();
        for i in 0..n {
            let (port, g, ist, sst) = (
                ports[4 * i],
                ports[4 * i + 1],
                ports[4 * i + 2],
                ports[4 * i + 3],
            );
            let nd = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(nd.join("tmp")).unwrap();
            let p = |f: &str| nd.join(f).display().to_string();
            std::fs::write(
                nd.join("my.cnf"),
                format!(
                    "[mariadbd]\n\
                     datadir={data}\ntmpdir={tmp}\nport={port}\nbind-address=127.0.0.1\n\
                     socket={sock}\npid-file={pid}\nlog-error={err}\nuser=mysql\n\
                     skip-log-bin\nbinlog_format=ROW\ndefault_storage_engine=InnoDB\n\
                     innodb_autoinc_lock_mode=2\ninnodb_buffer_pool_size=32M\n\
                     innodb_flush_log_at_trx_commit=2\nmax_connections=100\n\
                     wsrep_on=ON\nwsrep_provider={GALERA_PROVIDER}\n\
                     wsrep_cluster_name=backfill_test_{pid_self}\n\
                     wsrep_cluster_address={cluster_address}\n\
                     wsrep_node_name=node{i}\nwsrep_node_address=127.0.0.1\n\
                     wsrep_node_incoming_address=127.0.0.1:{port}\n\
                     wsrep_provider_options=\"gmcast.listen_addr=tcp://127.0.0.1:{g};ist.recv_addr=127.0.0.1:{ist};gcache.size=32M\"\n\
                     wsrep_sst_method=rsync\nwsrep_sst_receive_address=127.0.0.1:{sst}\n",
                    data = p("data"),
                    tmp = p("tmp"),
                    sock = p("mysqld.sock"),
                    pid = p("mysqld.pid"),
                    err = p("error.log"),
                    pid_self = std::process::id(),
                ),
            )
            .unwrap();
            nodes.push(Node {
                port,
                dir: nd,
                child: None,
            });
        }
        // The system tables, every node at once (each takes a few seconds).
        install_system_tables(
            nodes.iter().map(|node| node.dir.join("data")).collect(),
            Some("mysql"),
        );
        chown(dir.path(), "mysql:mysql");
        let mut cluster = Galera { nodes, dir };
        for i in 0..n {
            cluster.start_node(i, i == 0);
            cluster.wait_synced(i, NODE_START_LIMIT);
        }
        let size = cluster.status(0, "wsrep_cluster_size");
        assert_eq!(
            size.as_deref(),
            Some(n.to_string().as_str()),
            "cluster size"
        );
        eprintln!(
            "galera: {n} nodes synced in {:?} (ports {:?})",
            started.elapsed(),
            cluster.nodes.iter().map(|n| n.port).collect::<Vec<_>>()
        );
        cluster
    }

    fn start_node(&mut self, i: usize, bootstrap: bool) {
        let node = &mut self.nodes[i];
        let mut cmd = Command::new("mariadbd");
        // --defaults-file first: the SST scripts read the node's options from it.
        cmd.arg(format!(
            "--defaults-file={}",
            node.dir.join("my.cnf").display()
        ));
        if bootstrap {
            cmd.arg("--wsrep-new-cluster");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        node.child = Some(cmd.spawn().expect("start mariadbd"));
    }

    /// Waits until node `i` says `Synced`; panics with its error log if it died or took too long.
    pub fn wait_synced(&mut self, i: usize, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Some(child) = self.nodes[i].child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "galera node {i} exited ({status}) while starting\n--- {}/error.log (tail)\n{}",
                        self.nodes[i].dir.display(),
                        self.error_log(i, 40)
                    );
                }
            }
            if self.status(i, "wsrep_local_state_comment").as_deref() == Some("Synced") {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "galera node {i} not Synced after {limit:?} (state {:?})\n--- {}/error.log (tail)\n{}",
                self.status(i, "wsrep_local_state_comment"),
                self.nodes[i].dir.display(),
                self.error_log(i, 40)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The tail of node `i`'s error log.
    pub fn error_log(&self, i: usize, lines: usize) -> String {
        tail(&self.nodes[i].dir.join("error.log"), lines)
    }

    /// A `SHOW STATUS` value of node `i`; `None` when it does not answer.
    pub fn status(&self, i: usize, name: &str) -> Option<String> {
        let out = self
            .try_exec(i, &format!("SHOW STATUS LIKE '{name}'"))
            .ok()?;
        out.split('\t').nth(1).map(|v| v.trim().to_string())
    }

    /// `mysql://root@127.0.0.1:PORT/db` of node `i`.
    pub fn url(&self, i: usize, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.nodes[i].port)
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    /// Runs SQL on node `i` with the `mariadb` client; its tab-separated output. Panics on error.
    pub fn exec(&self, i: usize, sql: &str) -> String {
        self.try_exec(i, sql)
            .unwrap_or_else(|e| panic!("galera node {i}: {sql}: {e}"))
    }

    pub fn try_exec(&self, i: usize, sql: &str) -> Result<String, String> {
        maria_sql(self.nodes[i].port, sql)
    }

    /// SIGKILLs node `i` (the others keep a primary component), and the SST helpers it started.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let helpers = descendants(child.id());
            let _ = child.kill();
            let _ = child.wait();
            for pid in helpers {
                stop_pid(pid, "KILL", Duration::from_secs(2));
            }
        }
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// Waits until every running node has applied everything committed anywhere before this call
    /// (`wsrep_sync_wait`), so a check on any node reads the latest rows.
    pub fn settle(&self) {
        for i in 0..self.nodes.len() {
            if self.is_running(i) {
                self.exec(i, "SET SESSION wsrep_sync_wait = 15; SELECT 1");
            }
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Galera {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for i in 0..self.nodes.len() {
            if panicking {
                eprintln!(
                    "--- galera node {i} error.log (tail)\n{}",
                    self.error_log(i, 15)
                );
            }
            self.kill_node(i);
        }
    }
}

// -------------------------------------------------------------------------------------------- HAProxy

/// Debian's HAProxy in TCP mode in front of every node of a [`Galera`] cluster, `balance roundrobin`
/// (each new connection goes to the next node), run in the foreground as a child and stopped by its
/// pid on Drop. No health checks: each would be an aborted handshake to MariaDB, and 100 of them
/// (`max_connect_errors`) block 127.0.0.1 there.
pub struct HaProxy {
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    dir: TempDir,
}

impl HaProxy {
    pub fn round_robin(g: &Galera) -> HaProxy {
        let dir = TempDir::new("haproxy");
        let port = free_ports(1)[0];
        let servers: String = (0..g.len())
            .map(|i| format!("    server n{i} 127.0.0.1:{}\n", g.port(i)))
            .collect();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(
            &cfg,
            format!(
                "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n\n\
                 listen galera\n    bind 127.0.0.1:{port}\n    balance roundrobin\n{servers}"
            ),
        )
        .unwrap();
        let log = dir.path().join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start haproxy (apt-get install haproxy)");
        let proxy = HaProxy {
            port,
            child: Some(child),
            log,
            dir,
        };
        wait_for(
            "haproxy",
            Duration::from_secs(20),
            || maria_sql(port, "SELECT 1").is_ok(),
            || tail(&proxy.log, 20),
        );
        proxy
    }

    /// `mysql://root@127.0.0.1:PORT/db`, through the proxy.
    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if std::thread::panicking() {
                eprintln!("--- haproxy log (tail)\n{}", tail(&self.log, 20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------- PostgreSQL server

/// The newest PostgreSQL server binaries installed (`/usr/lib/postgresql/<version>/bin`).
fn pg_bin() -> PathBuf {
    let version = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
        .expect("a PostgreSQL version");
    PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"))
}

/// `initdb` into `data` (its parent owned by `postgres`): trust authentication, listening on
/// 127.0.0.1:`port` only, its socket in the parent directory, ready to be a replication primary.
fn pg_initdb(bin: &Path, data: &Path, port: u16) {
    let parent = data.parent().expect("data dir has a parent");
    let data_s = data.to_str().expect("utf-8 path");
    sh(&mut as_postgres(
        bin.join("initdb"),
        &["-D", data_s, "-U", "postgres", "--auth=trust", "--no-sync"],
    ));
    let conf = format!(
        "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
         wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n\
         wal_receiver_status_interval = 1s\nfsync = off\nshared_buffers = 16MB\nmax_connections = 40\n",
        parent.display()
    );
    append(&data.join("postgresql.conf"), &conf);
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
    )
    .unwrap();
}

/// `pg_ctl -D data -l <parent>/<data's name>.log ARGS`; panics with the server log's tail on failure.
fn pg_ctl(bin: &Path, data: &Path, args: &[&str]) {
    let parent = data.parent().expect("data dir has a parent");
    let log = parent.join(format!(
        "{}.log",
        data.file_name().unwrap().to_string_lossy()
    ));
    let mut all = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = as_postgres(bin.join("pg_ctl"), &all)
        .stdin(Stdio::null())
        .output()
        .expect("pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl {args:?} {} failed: {}\n--- log (tail)\n{}",
        data.display(),
        String::from_utf8_lossy(&out.stderr),
        tail(&log, 30)
    );
}

/// Stops the postmaster of `data` by the pid in its `postmaster.pid`, if it runs.
fn stop_postmaster(data: &Path) {
    let pid = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok());
    if let Some(pid) = pid {
        // SIGQUIT: immediate shutdown (the postmaster takes its children down).
        stop_pid(pid, "QUIT", Duration::from_secs(10));
    }
}

/// One throwaway PostgreSQL server (initdb, run as `postgres`, trust authentication) on a free
/// 127.0.0.1 port in a temp dir: a test may restart it, which the shared server must never be.
/// Stopped by pid on Drop.
pub struct PgServer {
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
}

impl PgServer {
    pub fn start() -> PgServer {
        let dir = TempDir::new("pg");
        chown(dir.path(), "postgres:postgres");
        let s = PgServer {
            port: free_ports(1)[0],
            bin: pg_bin(),
            dir,
        };
        pg_initdb(&s.bin, &s.data(), s.port);
        pg_ctl(&s.bin, &s.data(), &["-w", "-t", "60", "start"]);
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `pg_ctl restart -m fast`: every connection is terminated; returns once it accepts them again.
    pub fn restart(&self) {
        pg_ctl(
            &self.bin,
            &self.data(),
            &["-w", "-t", "60", "-m", "fast", "restart"],
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn sql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql(self.port, db, sql)
    }

    pub fn create_database(&self, db: &str) {
        self.sql("postgres", &format!("CREATE DATABASE {db}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {db}: {e}"));
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- data.log (tail)\n{}",
                tail(&self.dir.path().join("data.log"), 15)
            );
        }
        stop_postmaster(&self.data());
    }
}

// -------------------------------------------------------------------------------------------- Standby

/// A throwaway PostgreSQL primary (initdb) and a hot standby of it (`pg_basebackup -R`), both run as
/// `postgres` on free ports with trust authentication. Both stopped by pid on Drop.
pub struct Standby {
    pub primary_port: u16,
    pub standby_port: u16,
    bin: PathBuf,
    dir: TempDir,
}

impl Standby {
    pub fn start() -> Standby {
        let started = Instant::now();
        let dir = TempDir::new("standby");
        chown(dir.path(), "postgres:postgres");
        let ports = free_ports(2);
        let cluster = Standby {
            primary_port: ports[0],
            standby_port: ports[1],
            bin: pg_bin(),
            dir,
        };
        let d = cluster.dir.path().to_path_buf();
        let primary = d.join("primary");
        let standby = d.join("standby");
        pg_initdb(&cluster.bin, &primary, cluster.primary_port);
        cluster.pg_ctl_start(&primary);
        cluster.run_pg(
            "pg_basebackup",
            &[
                "-D",
                standby.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.primary_port.to_string(),
                "-U",
                "postgres",
            ],
        );
        append(
            &standby.join("postgresql.conf"),
            &format!("port = {}\n", cluster.standby_port),
        );
        cluster.pg_ctl_start(&standby);
        wait_for(
            "the standby streaming from the primary",
            Duration::from_secs(60),
            || {
                cluster
                    .primary_sql(
                        "postgres",
                        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                    )
                    .is_ok_and(|n| n == "1")
            },
            || tail(&d.join("standby.log"), 20),
        );
        eprintln!(
            "postgres primary :{} and hot standby :{} started in {:?}",
            cluster.primary_port,
            cluster.standby_port,
            started.elapsed()
        );
        cluster
    }

    fn run_pg(&self, program: &str, args: &[&str]) -> String {
        sh(&mut as_postgres(self.bin.join(program), args))
    }

    fn pg_ctl_start(&self, data: &Path) {
        pg_ctl(&self.bin, data, &["-w", "-t", "60", "start"]);
    }

    pub fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary_port)
    }

    pub fn standby_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.standby_port)
    }

    pub fn primary_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql(self.primary_port, db, sql)
    }

    pub fn standby_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql(self.standby_port, db, sql)
    }

    /// Creates database `db` on the primary (it reaches the standby through WAL).
    pub fn create_database(&self, db: &str) {
        self.primary_sql("postgres", &format!("CREATE DATABASE {db}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {db}: {e}"));
    }

    pub fn pause_replay(&self) {
        self.standby_sql("postgres", "SELECT pg_wal_replay_pause()")
            .expect("pg_wal_replay_pause");
        wait_for(
            "replay paused",
            Duration::from_secs(20),
            || {
                self.standby_sql("postgres", "SELECT pg_get_wal_replay_pause_state()")
                    .is_ok_and(|s| s == "paused")
            },
            String::new,
        );
    }

    pub fn resume_replay(&self) {
        self.standby_sql("postgres", "SELECT pg_wal_replay_resume()")
            .expect("pg_wal_replay_resume");
    }

    /// Waits until the standby has replayed everything the primary wrote before this call.
    pub fn wait_caught_up(&self) {
        let lsn = self
            .primary_sql("postgres", "SELECT pg_current_wal_lsn()")
            .expect("pg_current_wal_lsn");
        wait_for(
            &format!("the standby replaying up to {lsn}"),
            Duration::from_secs(60),
            || {
                self.standby_sql(
                    "postgres",
                    &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
                )
                .is_ok_and(|s| s == "t")
            },
            || tail(&self.dir.path().join("standby.log"), 20),
        );
    }

    /// `replay_lag` of the standby as the primary sees it (text, may be empty).
    pub fn replay_lag(&self) -> String {
        self.primary_sql(
            "postgres",
            "SELECT COALESCE(replay_lag::text, '') FROM pg_stat_replication",
        )
        .unwrap_or_default()
    }

    /// Failover: the primary stopped hard (as `pg_ctl stop -m immediate`), the standby promoted;
    /// returns once the promoted standby accepts writes.
    pub fn fail_over(&self) {
        self.stop("primary");
        let standby = self.dir.path().join("standby");
        self.run_pg(
            "pg_ctl",
            &["-D", standby.to_str().unwrap(), "-w", "-t", "60", "promote"],
        );
        wait_for(
            "the promoted standby accepting writes",
            Duration::from_secs(30),
            || {
                self.standby_sql("postgres", "SELECT pg_is_in_recovery()")
                    .is_ok_and(|s| s == "f")
            },
            || tail(&self.dir.path().join("standby.log"), 20),
        );
    }

    /// `postgres://postgres@PRIMARY,STANDBY/db?target_session_attrs=ATTRS`: libpq's form for a pair.
    pub fn pair_url(&self, db: &str, attrs: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs={attrs}",
            self.primary_port, self.standby_port
        )
    }

    fn stop(&self, name: &str) {
        stop_postmaster(&self.dir.path().join(name));
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for Standby {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in ["primary", "standby"] {
                eprintln!(
                    "--- {name}.log (tail)\n{}",
                    tail(&self.dir.path().join(format!("{name}.log")), 15)
                );
            }
        }
        self.stop("standby");
        self.stop("primary");
    }
}

// ------------------------------------------------------------------------------- MariaDB replication

/// A MariaDB primary (`--log-bin`, ROW, server id 1) and an asynchronous replica of it (server id 2,
/// `MASTER_USE_GTID=slave_pos`), two throwaway `mariadbd` on free ports in one temp dir. Root has no
/// password over TCP from 127.0.0.1 on both (as `mariadb-install-db` makes it); the replica connects
/// as root too. Both stopped by pid on Drop.
pub struct MariaReplication {
    pub primary_port: u16,
    pub replica_port: u16,
    primary: Option<Child>,
    replica: Option<Child>,
    dir: TempDir,
}

impl MariaReplication {
    /// A primary logging rows (`binlog_format=ROW`) and its replica.
    pub fn start() -> MariaReplication {
        MariaReplication::start_logging("ROW")
    }

    /// A primary with `binlog_format` `format` (`ROW`, or MariaDB's default `MIXED`) and its replica.
    pub fn start_logging(format: &str) -> MariaReplication {
        let started = Instant::now();
        let dir = TempDir::new("mariarepl");
        let ports = free_ports(2);
        let datas: Vec<PathBuf> = ["primary", "replica"]
            .iter()
            .map(|name| {
                std::fs::create_dir_all(dir.path().join(name).join("tmp")).unwrap();
                dir.path().join(name).join("data")
            })
            .collect();
        install_system_tables(datas, is_root().then_some("root"));
        let mut r = MariaReplication {
            primary_port: ports[0],
            replica_port: ports[1],
            primary: None,
            replica: None,
            dir,
        };
        r.primary = Some(r.spawn_server(
            "primary",
            ports[0],
            &[
                "--server-id=1",
                "--log-bin=primary-bin",
                &format!("--binlog-format={format}"),
                "--sync-binlog=0",
            ],
        ));
        r.replica = Some(r.spawn_server(
            "replica",
            ports[1],
            &[
                "--server-id=2",
                "--skip-log-bin",
                "--relay-log=replica-relay-bin",
                "--skip-slave-start",
            ],
        ));
        for (name, port) in [("primary", ports[0]), ("replica", ports[1])] {
            wait_for(
                &format!("the MariaDB {name} on port {port}"),
                Duration::from_secs(60),
                || maria_sql(port, "SELECT 1").is_ok(),
                || r.log_tail(name),
            );
        }
        r.replica_sql(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', \
             MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos; START SLAVE",
            ports[0]
        ));
        wait_for(
            "the replica's IO and SQL threads running",
            Duration::from_secs(30),
            || {
                r.slave_status("Slave_IO_Running").as_deref() == Some("Yes")
                    && r.slave_status("Slave_SQL_Running").as_deref() == Some("Yes")
            },
            || format!("{:?}\n{}", r.slave_status_all(), r.log_tail("replica")),
        );
        eprintln!(
            "mariadb primary :{} and replica :{} replicating in {:?}",
            ports[0],
            ports[1],
            started.elapsed()
        );
        r
    }

    fn spawn_server(&self, name: &str, port: u16, extra: &[&str]) -> Child {
        spawn_mariadbd(
            &self.dir.path().join(name),
            port,
            is_root().then_some("root"),
            extra,
        )
    }

    /// `mysql://root@127.0.0.1:PORT/db` of the primary.
    pub fn primary_url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.primary_port)
    }

    /// `mysql://root@127.0.0.1:PORT/db` of the replica.
    pub fn replica_url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.replica_port)
    }

    /// SQL on the primary as root; its tab-separated output. Panics on error.
    pub fn primary_sql(&self, sql: &str) -> String {
        maria_sql(self.primary_port, sql).unwrap_or_else(|e| panic!("primary: {sql}: {e}"))
    }

    /// SQL on the replica as root; its tab-separated output. Panics on error.
    pub fn replica_sql(&self, sql: &str) -> String {
        maria_sql(self.replica_port, sql).unwrap_or_else(|e| panic!("replica: {sql}: {e}"))
    }

    /// Creates database `db` on the primary (it reaches the replica through the binlog).
    pub fn create_database(&self, db: &str) {
        maria_create_database(self.primary_port, db);
    }

    /// `STOP SLAVE SQL_THREAD`: the replica keeps receiving the binlog but applies nothing, and
    /// `Seconds_Behind_Master` is NULL.
    pub fn stop_sql_thread(&self) {
        self.replica_sql("STOP SLAVE SQL_THREAD");
        wait_for(
            "the replica's SQL thread stopped",
            Duration::from_secs(30),
            || self.slave_status("Slave_SQL_Running").as_deref() == Some("No"),
            || format!("{:?}", self.slave_status_all()),
        );
    }

    pub fn start_sql_thread(&self) {
        self.replica_sql("START SLAVE SQL_THREAD");
    }

    /// Waits until the replica has applied everything the primary wrote before this call.
    pub fn wait_caught_up(&self) {
        let pos = self.primary_sql("SELECT @@gtid_binlog_pos");
        let waited = self.replica_sql(&format!("SELECT MASTER_GTID_WAIT('{pos}', 60)"));
        assert_eq!(
            waited,
            "0",
            "the replica did not reach the primary's GTID {pos} in 60 s: {:?}\n{}",
            self.slave_status_all(),
            self.log_tail("replica")
        );
    }

    /// Every `SHOW SLAVE STATUS` field of the replica, in order; empty when it is no replica.
    pub fn slave_status_all(&self) -> Vec<(String, String)> {
        // Vertical output, with the field names (`-N` would drop them).
        let out = Command::new("mariadb")
            .args([
                "--no-defaults",
                "--protocol=TCP",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
            ])
            .args(["-P", &self.replica_port.to_string(), "--connect-timeout=5"])
            .args(["-e", "SHOW SLAVE STATUS\\G"])
            .stdin(Stdio::null())
            .output();
        let Ok(out) = out else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.trim().split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect()
    }

    /// One `SHOW SLAVE STATUS` field (`Seconds_Behind_Master`, `Slave_SQL_Running`, …).
    pub fn slave_status(&self, field: &str) -> Option<String> {
        self.slave_status_all()
            .into_iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v)
    }

    /// The tail of `primary`'s or `replica`'s error log.
    pub fn log_tail(&self, name: &str) -> String {
        tail(&self.dir.path().join(name).join("error.log"), 20)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for MariaReplication {
    fn drop(&mut self) {
        for (name, child) in [
            ("replica", self.replica.take()),
            ("primary", self.primary.take()),
        ] {
            if std::thread::panicking() {
                eprintln!("--- {name} error.log (tail)\n{}", self.log_tail(name));
            }
            if let Some(mut c) = child {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// `mariadbd` on 127.0.0.1:`port` with its data (`d/data`, installed), tmpdir, socket, pid file and
/// error log in `d`, run as `user` when we are root; `extra` options last.
fn spawn_mariadbd(d: &Path, port: u16, user: Option<&str>, extra: &[&str]) -> Child {
    let mut cmd = Command::new("mariadbd");
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", d.join("data").display()))
        .arg(format!("--tmpdir={}", d.join("tmp").display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--socket={}", d.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", d.join("error.log").display()))
        .args([
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-name-resolve",
            "--max-connections=100",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(user) = user.filter(|_| is_root()) {
        cmd.arg(format!("--user={user}"));
    }
    cmd.spawn().expect("start mariadbd")
}

/// `CREATE DATABASE db` in utf8mb4 on 127.0.0.1:`port` as root.
fn maria_create_database(port: u16, db: &str) {
    let sql = format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
    maria_sql(port, &sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

// ------------------------------------------------------------------------------------ MariaDB server

/// One throwaway `mariadbd` (mariadb-install-db, run as `mysql`) on a free 127.0.0.1 port in a temp
/// dir: a test may shut it down and start it again, which the shared server must never be. Root
/// has no password over TCP. Killed by pid on Drop.
pub struct MariaServer {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl MariaServer {
    pub fn start() -> MariaServer {
        let dir = TempDir::new("mariadb");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("server tmpdir");
        install_system_tables(vec![dir.path().join("data")], Some("mysql"));
        chown(dir.path(), "mysql:mysql");
        let mut s = MariaServer {
            port: free_ports(1)[0],
            child: None,
            dir,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        self.child = Some(spawn_mariadbd(
            self.dir.path(),
            self.port,
            Some("mysql"),
            &[],
        ));
        wait_for(
            &format!("the MariaDB server on port {}", self.port),
            Duration::from_secs(60),
            || maria_sql(self.port, "SELECT 1").is_ok(),
            || self.log_tail(),
        );
    }

    /// A clean `SHUTDOWN` (every connection is cut), then the same `mariadbd` on the same port and
    /// datadir again; returns once it accepts connections.
    pub fn restart(&mut self) {
        maria_sql(self.port, "SHUTDOWN").unwrap_or_else(|e| panic!("SHUTDOWN: {e}"));
        if let Some(mut old) = self.child.take() {
            let _ = old.wait();
        }
        self.launch();
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    pub fn create_database(&self, db: &str) {
        maria_create_database(self.port, db);
    }

    pub fn log_tail(&self) -> String {
        tail(&self.dir.path().join("error.log"), 20)
    }
}

impl Drop for MariaServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- error.log (tail)\n{}", self.log_tail());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One statement (or several, `;`-separated) on 127.0.0.1:`port` as root with the `mariadb` client;
/// its tab-separated output without a header, or the error.
pub fn maria_sql(port: u16, sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-u"])
        .args(["root", "-P", &port.to_string()])
        .args(["--connect-timeout=5", "-N", "-B", "-e", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("mariadb: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// A `mariadb` client session on 127.0.0.1:`port` as root that stays open (its stdin is kept), so
/// what it holds stays held: `FLUSH TABLES WITH READ LOCK` until [`MariaSession::send`] of
/// `UNLOCK TABLES` or the end of the session. Killed on Drop.
pub struct MariaSession {
    port: u16,
    child: Option<Child>,
    ready: String,
}

impl MariaSession {
    /// Opens a session and runs `sql` in it; returns once `sql` has completed (the session then takes
    /// a named lock that another connection sees).
    pub fn hold(port: u16, sql: &str) -> MariaSession {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let child = Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-u"])
            .args(["root", "-P", &port.to_string(), "-N", "-B"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mariadb client");
        let mut s = MariaSession {
            port,
            child: Some(child),
            ready: format!("bf_session_{}_{n}", std::process::id()),
        };
        // Statements run in order: once the named lock is taken, `sql` has completed.
        s.send(&format!("{sql};\nDO GET_LOCK('{}', 0)", s.ready));
        let probe = format!("SELECT IS_USED_LOCK('{}') IS NOT NULL", s.ready);
        let mut exited = None;
        wait_for(
            &format!("`{sql}` on port {port}"),
            Duration::from_secs(60),
            || {
                if let Ok(Some(status)) = s.child.as_mut().unwrap().try_wait() {
                    exited = Some(status);
                    return true;
                }
                maria_sql(port, &probe).as_deref() == Ok("1")
            },
            String::new,
        );
        if let Some(status) = exited {
            let out = s.child.take().unwrap().wait_with_output().expect("wait");
            panic!(
                "the session running `{sql}` on port {port} ended ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        s
    }

    /// Runs more statements in the session (`;` added); does not wait for them.
    pub fn send(&mut self, sql: &str) {
        use std::io::Write;
        let stdin = self
            .child
            .as_mut()
            .and_then(|c| c.stdin.as_mut())
            .expect("session open");
        writeln!(stdin, "{sql};").expect("write to the mariadb client");
        stdin.flush().expect("flush");
    }

    /// Runs `sql` in the session, then ends it; panics if any statement of the session failed.
    pub fn finish_with(mut self, sql: &str) {
        self.send(sql);
        let mut child = self.child.take().expect("session open");
        drop(child.stdin.take());
        let out = child
            .wait_with_output()
            .expect("wait for the mariadb client");
        assert!(
            out.status.success(),
            "the session on port {} failed: {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for MariaSession {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------- runners, races, kill -9

/// Starts the built binary on `url` with `args` and extra environment, its output piped.
pub fn spawn_runner(url: &str, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = bin();
    cmd.env("DATABASE_URL", url)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn backfill")
}

pub fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait"))
}

/// One runner per URL, all started at once with the same arguments; their results in that order.
pub fn race(urls: &[String], args: &[&str], env: &[(&str, &str)]) -> Vec<Run> {
    let children: Vec<Child> = urls.iter().map(|u| spawn_runner(u, args, env)).collect();
    children.into_iter().map(finish).collect()
}

/// A running binary whose stderr can be read while it runs; killed on Drop if still running.
pub struct Watched {
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Reads `pipe` into `buf` on a thread until it closes.
fn drain(
    mut pipe: impl Read + Send + 'static,
    buf: &Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    let buf = Arc::clone(buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    })
}

impl Watched {
    pub fn spawn(url: &str, args: &[&str], env: &[(&str, &str)]) -> Watched {
        let mut child = spawn_runner(url, args, env);
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            drain(child.stdout.take().unwrap(), &stdout),
            drain(child.stderr.take().unwrap(), &stderr),
        ];
        Watched {
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `Some(exit code)` once it has exited (-1 for a signal).
    pub fn exited(&mut self) -> Option<i32> {
        let status = self.child.as_mut()?.try_wait().expect("try_wait")?;
        Some(status.code().unwrap_or(-1))
    }

    /// Waits up to `limit` for it to exit; kills it and panics (with its output) after that.
    pub fn finish_within(mut self, limit: Duration) -> Run {
        let started = Instant::now();
        while self.exited().is_none() {
            if started.elapsed() > limit {
                let _ = self.child.as_mut().unwrap().kill();
                let _ = self.child.as_mut().unwrap().wait();
                panic!(
                    "backfill still running after {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = self.child.take().unwrap().wait().expect("wait");
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        };
        out
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asserts that of `runs` (racing `apply`s, all exit 0) exactly one did the work and the others found
/// nothing left to do.
pub fn assert_one_did_the_work(runs: &[Run]) {
    for r in runs {
        r.expect(0);
    }
    let workers = runs
        .iter()
        .filter(|r| r.stdout.contains("applied —"))
        .count();
    let idle = runs
        .iter()
        .filter(|r| r.stdout.contains("nothing to apply"))
        .count();
    let all: Vec<&str> = runs.iter().map(|r| r.stdout.as_str()).collect();
    assert_eq!(workers, 1, "exactly one runner does the work: {all:#?}");
    assert_eq!(idle, runs.len() - 1, "the others find nothing: {all:#?}");
}

/// `(competency_id, count)` for every competency with more than one `competency_versions` row.
pub fn duplicate_versions(t: &TestDb) -> Vec<(i64, i64)> {
    t.rows(
        "SELECT competency_id, COUNT(*) FROM competency_versions WHERE competency_id IS NOT NULL \
         GROUP BY competency_id HAVING COUNT(*) > 1",
    )
    .iter()
    .map(|r| (r[0].as_i64().unwrap_or(-1), r[1].as_i64().unwrap_or(-1)))
    .collect()
}

const BATCH_SIZES: [u64; 3] = [7, 10, 25];

/// One interrupted attempt on `t`'s URL: killed after a random delay, or aborted between a batch's
/// writes and its commit (`BACKFILL_TEST_ABORT_AT_BATCH`).
pub fn interrupted_attempt(t: &TestDb, rng: &mut Rng, args: &[&str], trial: usize) {
    let delay = if args[0] == "revert" { "20" } else { "8" };
    let batch = BATCH_SIZES[rng.range(0, 2) as usize].to_string();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--batch-size", &batch, "--quiet"]);
    let mut cmd = t.command(&full);
    cmd.env("BACKFILL_TEST_BATCH_DELAY_MS", delay)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if trial % 2 == 1 {
        // At most 6: a revert of the ~150 rows of 250 generated competencies in batches of 25 has 7.
        let k = rng.range(1, 6).to_string();
        cmd.env("BACKFILL_TEST_ABORT_AT_BATCH", &k);
        let status = cmd.status().expect("run");
        assert!(
            status.code().is_none(),
            "abort at batch {k} should kill the process: {status:?}"
        );
    } else {
        let mut child = cmd.spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(rng.range(30, 450)));
        let _ = child.kill(); // SIGKILL; it may have finished already, which is fine
        let _ = child.wait();
    }
}

pub fn count_runs(t: &TestDb, action: &str, state: &str) -> i64 {
    t.int(&format!(
        "SELECT COUNT(*) FROM backfill_runs WHERE action = '{action}' AND state = '{state}'"
    ))
}

/// Where kill -9 trials run: `nodes` are spellings of one database (one node each on a cluster; the
/// same one for a single server); trial k is killed on one node and resumed on the next. `settle`
/// runs before every check (a cluster waits until every node has applied every commit).
pub struct Trials<'a> {
    /// Where the rows, ledger and audit are checked (and reset between trials).
    pub check: &'a TestDb,
    pub nodes: Vec<&'a TestDb>,
    pub trials: usize,
    pub settle: &'a dyn Fn(),
}

impl<'a> Trials<'a> {
    pub fn on(t: &'a TestDb, trials: usize) -> Trials<'a> {
        Trials {
            check: t,
            nodes: vec![t],
            trials,
            settle: &|| {},
        }
    }

    fn pick(&self, trial: usize) -> (&'a TestDb, &'a TestDb) {
        let n = self.nodes.len();
        (self.nodes[trial % n], self.nodes[(trial + 1) % n])
    }

    /// kill -9 during `apply`, then a rerun: exactly the rows of an uninterrupted run, every time, with
    /// ledger and audit counts that add up. Returns how many attempts were cut mid-run.
    pub fn kill_during_apply(&self) -> usize {
        self.kill_during_apply_with(&[])
    }

    /// [`Trials::kill_during_apply`] with `extra` arguments (e.g. `--jobs 2`) on every attempt and rerun.
    pub fn kill_during_apply_with(&self, extra: &[&str]) -> usize {
        let t = self.check;
        let v = V_COMPETENCY.to_string();
        // Start over: remove this migration's rows and its ledger history.
        let reset = || {
            let d = t.session().dialect();
            t.exec(&format!(
                "DELETE FROM competency_versions WHERE {} = '{v}'",
                d.json_text("metadata", "migration")
            ));
            t.exec("DELETE FROM backfill_migrations");
            t.exec("DELETE FROM backfill_runs");
            (self.settle)();
        };
        if t.state(V_COMPETENCY).is_some() {
            reset();
        }
        let expected = t.expected_competencies();
        let others = t.int("SELECT COUNT(*) FROM competency_versions");
        let mut rng = Rng::from_time();
        let seed = rng.0;
        let mut interrupted = 0;
        for trial in 0..self.trials {
            let (attempt_on, rerun_on) = self.pick(trial);
            if trial > 0 {
                reset();
            }
            let attempt: Vec<&str> = ["apply", v.as_str()].iter().chain(extra).copied().collect();
            interrupted_attempt(attempt_on, &mut rng, &attempt, trial);
            (self.settle)();
            let finished = t.state(V_COMPETENCY).as_deref() == Some("applied");
            if !finished {
                interrupted += 1;
            }
            let size = rng.range(3, 40).to_string();
            let rerun: Vec<&str> = ["apply", &v, "--batch-size", &size, "--lock-timeout", "120"]
                .iter()
                .chain(extra)
                .copied()
                .collect();
            let rerun = rerun_on.run(&rerun);
            rerun.expect(0);
            (self.settle)();
            let ctx = format!("seed {seed} trial {trial}");
            assert_eq!(
                t.marked_competencies(),
                expected,
                "{ctx}: rows differ from an uninterrupted run"
            );
            assert_eq!(duplicate_versions(t), vec![], "{ctx}: duplicates");
            assert_eq!(
                t.int("SELECT COUNT(*) FROM competency_versions"),
                others + expected.len() as i64,
                "{ctx}"
            );
            assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("applied"), "{ctx}");
            assert_eq!(
                t.rows_applied(&v),
                expected.len() as i64,
                "{ctx}: ledger count"
            );
            let audited = t.int(
                "SELECT COALESCE(SUM(row_count), 0) FROM backfill_runs WHERE action = 'apply'",
            );
            assert_eq!(
                audited,
                expected.len() as i64,
                "{ctx}: audit counts must add up across attempts"
            );
            // An attempt that finished before the kill is followed by a top-up run (0 rows).
            assert_eq!(
                count_runs(t, "apply", "succeeded"),
                1 + i64::from(finished),
                "{ctx}"
            );
            assert_eq!(
                count_runs(t, "apply", "running"),
                0,
                "{ctx}: a dead run must be marked abandoned"
            );
            let runs = t.int("SELECT COUNT(*) FROM backfill_runs WHERE action = 'apply'");
            assert!(runs <= 2, "{ctx}: one run row per attempt, got {runs}");
        }
        assert!(
            interrupted >= self.trials / 2,
            "seed {seed}: only {interrupted} of {} attempts were cut mid-run",
            self.trials
        );
        interrupted
    }

    /// kill -9 during `revert`, then a rerun: every marked row gone, nobody else's row touched.
    pub fn kill_during_revert(&self) -> usize {
        self.kill_during_revert_with(&[])
    }

    /// [`Trials::kill_during_revert`] with `extra` arguments (e.g. `--jobs 2`) on every attempt and rerun.
    pub fn kill_during_revert_with(&self, extra: &[&str]) -> usize {
        let t = self.check;
        // Everyone else's rows (the migration may have been applied before).
        let before = t.int("SELECT COUNT(*) FROM competency_versions")
            - t.marked_competencies().len() as i64;
        let foreign_backfill = t.int(&format!(
            "SELECT COUNT(*) FROM competency_versions WHERE {} = 'backfill'",
            t.session().dialect().json_text("metadata", "source")
        ));
        assert!(
            foreign_backfill > 0,
            "the fixture must have another writer's source=backfill rows"
        );
        let mut rng = Rng::from_time();
        let seed = rng.0;
        let v = V_COMPETENCY.to_string();
        let mut interrupted = 0;
        for trial in 0..self.trials {
            let (attempt_on, rerun_on) = self.pick(trial);
            rerun_on
                .run(&["apply", &v, "--lock-timeout", "120"])
                .expect(0);
            (self.settle)();
            let written = t.marked_competencies().len() as i64;
            assert!(written > 0);
            t.exec("DELETE FROM backfill_runs");
            (self.settle)();
            let attempt: Vec<&str> = ["revert", v.as_str()]
                .iter()
                .chain(extra)
                .copied()
                .collect();
            interrupted_attempt(attempt_on, &mut rng, &attempt, trial);
            (self.settle)();
            if t.state(V_COMPETENCY).as_deref() != Some("reverted") {
                interrupted += 1;
                let size = rng.range(3, 40).to_string();
                let rerun: Vec<&str> =
                    ["revert", &v, "--batch-size", &size, "--lock-timeout", "120"]
                        .iter()
                        .chain(extra)
                        .copied()
                        .collect();
                rerun_on.run(&rerun).expect(0);
                (self.settle)();
            }
            let ctx = format!("seed {seed} trial {trial}");
            assert!(
                t.marked_competencies().is_empty(),
                "{ctx}: marked rows left"
            );
            assert_eq!(
                t.int("SELECT COUNT(*) FROM competency_versions"),
                before,
                "{ctx}: someone else's row was deleted"
            );
            assert_eq!(t.state(V_COMPETENCY).as_deref(), Some("reverted"), "{ctx}");
            let audited = t.int(
                "SELECT COALESCE(SUM(row_count), 0) FROM backfill_runs WHERE action = 'revert'",
            );
            assert_eq!(
                audited, written,
                "{ctx}: deleted counts must add up across attempts"
            );
            assert_eq!(count_runs(t, "revert", "running"), 0, "{ctx}");
        }
        assert!(
            interrupted >= self.trials / 2,
            "seed {seed}: only {interrupted} of {} attempts were cut mid-run",
            self.trials
        );
        interrupted
    }
}
