//! MySQL / MariaDB driver (sync `mysql` crate).

mod errors;
mod values;

use super::url::{RootCerts, Tls, TlsMode};
use super::{DbError, DbResult, Dialect, ErrorKind, Identity, Row, Session, Target, Tx, Value};
use errors::map_err;
use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, SslOpts};
use std::time::Duration;
use values::{from_mysql, to_mysql};

mod ledger_schema {
    refinery::embed_migrations!("schema/ledger/mysql");
}

pub(crate) struct MySession {
    conn: Conn,
    redacted: String,
    mariadb: bool,
    /// Since when Galera's flow control has been pausing the cluster, as this session saw it.
    flow_control_since: Option<std::time::Instant>,
    /// Whether the server is a Galera node (`wsrep_on`), once asked.
    galera: Option<bool>,
}

/// The mysql crate's TLS options for an `ssl-mode` (`None`: plain TCP).
fn ssl_opts(tls: &Tls) -> Option<SslOpts> {
    let root = match &tls.roots {
        Some(RootCerts::File(path)) => Some(path.clone()),
        _ => None,
    };
    let opts = SslOpts::default().with_root_cert_path(root);
    match tls.mode {
        TlsMode::Disable => None,
        // Encrypted, certificate not checked (the mysql client's PREFERRED and REQUIRED).
        TlsMode::Prefer | TlsMode::Require => Some(
            opts.with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        TlsMode::VerifyCa => Some(opts.with_danger_skip_domain_validation(true)),
        TlsMode::VerifyFull => Some(opts),
    }
}

fn open(opts: OptsBuilder, target: &Target) -> DbResult<Conn> {
    // The driver would move a loopback connection to the server's Unix socket, holding two server
    // connections while it does (a run's connection budget counts one per session: with
    // max_connections=10, 9 workers connecting at once failed with "Too many connections"), and a
    // socket carries no TLS. Stay on the address the URL names.
    let opts = opts.prefer_socket(false);
    if let Some(RootCerts::File(path)) = &target.tls.roots {
        if !path.is_file() {
            return Err(DbError::new(
                ErrorKind::Config,
                format!("ssl-ca {} is not a readable file; give the PEM file of the CA that signed the server's certificate", path.display()),
            ));
        }
    }
    let tls = ssl_opts(&target.tls);
    let secure = opts.clone().ssl_opts(tls.clone());
    let result = match Conn::new(secure) {
        // PREFERRED: plain when the server offers no TLS.
        Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported))
            if target.tls.mode == TlsMode::Prefer =>
        {
            Conn::new(opts.ssl_opts(None))
        }
        other => other,
    };
    result.map_err(|e| DbError::connecting(target, map_err(e)))
}

/// How long a socket read or write may block: past the longest statement timeout we set.
const SOCKET_LIMIT: Duration = Duration::from_secs(24 * 3600 + 60);

impl MySession {
    pub(super) fn connect(target: &Target) -> DbResult<Self> {
        // The mysql crate's rustls connector uses the process-wide crypto provider.
        let _ = super::tls::provider();
        let opts = Opts::from_url(target.secret_url())
            .map_err(|e| DbError::new(ErrorKind::Config, format!("malformed mysql URL: {e}")))?;
        // Socket timeouts: a server that stops answering fails the run instead of hanging it. Longer
        // than any statement may run (its own timeout cancels it first, server-side).
        let opts = OptsBuilder::from_opts(opts)
            .tcp_connect_timeout(Some(Duration::from_secs(10)))
            .read_timeout(Some(SOCKET_LIMIT))
            .write_timeout(Some(SOCKET_LIMIT))
            // An UPDATE counts the rows it matched, as on PostgreSQL and SQLite: a compare-and-set
            // that rewrites a value with itself still says it matched.
            .additional_capabilities(mysql::consts::CapabilityFlags::CLIENT_FOUND_ROWS);
        let first = Self::open_session(opts.clone(), target)?;
        let session = pin_node(first, target, || Self::open_session(opts.clone(), target))?;
        // No `SET time_zone`: the session keeps the server's default zone, the one the app (Laravel,
        // no timezone in its database config) writes in. The app's `timestamp` columns are converted
        // through the session zone, so only in that zone does a UTC wall-clock string written here
        // (`UTC_TIMESTAMP()`, zone-independent) read back as the app's own do, and only then does
        // revert's `updated_at > created_at` guard compare like with like. The ledger is unaffected:
        // its columns are DATETIME(6) (never converted) and it binds its UTC times from Rust.
        Ok(session)
    }

    fn open_session(opts: OptsBuilder, target: &Target) -> DbResult<Self> {
        let owned = target.clone();
        let conn = super::bounded_connect(Duration::from_secs(15), move || open(opts, &owned))??;
        let mut session = MySession {
            conn,
            redacted: target.redacted.clone(),
            mariadb: false,
            flow_control_since: None,
            galera: None,
        };
        // The server's default (`autocommit=0`) or an `init_connect` may leave every statement
        // inside an implicit transaction that never ends: ledger reads would see an old snapshot
        // forever, row locks would stay held, and `START TRANSACTION READ ONLY` would fail (1568).
        // Each transaction here is explicit, so the session autocommits between them.
        session
            .conn
            .query_drop("SET SESSION autocommit = 1")
            .map_err(|e| DbError::connecting(target, map_err(e)))?;
        let version = session.query_scalar("SELECT VERSION()", &[])?;
        session.mariadb = version.as_str().is_some_and(|v| v.contains("MariaDB"));
        Ok(session)
    }

    /// The Galera node this session reached (`wsrep_gcomm_uuid`, with its `wsrep_node_name` for
    /// messages); `None` off Galera.
    fn galera_node(&mut self) -> DbResult<Option<(String, String)>> {
        if !self.mariadb {
            return Ok(None);
        }
        let Some(uuid) = self.wsrep_status("WSREP_GCOMM_UUID")? else {
            return Ok(None);
        };
        let name = self.query_scalar("SELECT @@wsrep_node_name", &[])?;
        Ok(Some((uuid, name.as_str().unwrap_or_default().to_string())))
    }
}

/// How many connections per cluster node a session may open to land on its run's pinned node.
const PIN_TRIES_PER_NODE: usize = 10;

/// The Galera node each database URL's sessions are pinned to in this process.
static PINNED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Keeps every session of this process to one URL on one Galera node. Behind a load balancer
/// (HAProxy round-robin) a run's connections would land on different nodes: a worker would read
/// the chunks the coordinator just wrote before its node applied them (a false takeover, a ledger
/// table that does not exist yet there), and the workers' writes would conflict at certification
/// (1213) instead of waiting on row locks. A session that lands elsewhere is replaced by a new
/// connection, several times round the cluster; when the pinned node is no longer reachable through
/// this URL (it left the cluster), the run moves to the node reached now.
fn pin_node(
    mut session: MySession,
    target: &Target,
    reopen: impl Fn() -> DbResult<MySession>,
) -> DbResult<MySession> {
    let Some((node, _)) = session.galera_node()? else {
        return Ok(session);
    };
    let key = target.secret_url().to_string();
    let pinned = |node: &str| {
        let mut pins = PINNED.lock().unwrap_or_else(|p| p.into_inner());
        match pins.iter().find(|(k, _)| *k == key) {
            Some((_, n)) => n == node,
            None => {
                pins.push((key.clone(), node.to_string()));
                true
            }
        }
    };
    if pinned(&node) {
        return Ok(session);
    }
    let size = session
        .wsrep_status("WSREP_CLUSTER_SIZE")?
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(3);
    drop(session);
    let mut elsewhere = None;
    // Many tries, each after a random pause: the balancer's rotation is shared with every other
    // connecting client, and runners that reconnect in step can miss one node every time (two
    // racing `--jobs 4` runs missed it 6 times in a row here).
    for _ in 0..PIN_TRIES_PER_NODE * size.max(1) {
        let jitter = uuid::Uuid::new_v4().as_u128() % 20;
        std::thread::sleep(std::time::Duration::from_millis(1 + jitter as u64));
        let mut again = reopen()?;
        match again.galera_node()? {
            Some(n) if !pinned(&n.0) => elsewhere = Some((again, n)),
            _ => return Ok(again),
        }
    }
    let Some((session, (node, name))) = elsewhere else {
        return reopen();
    };
    tracing::warn!(
        "the Galera node this run started on is not reachable through {} any more: going on on node {name}",
        target.redacted
    );
    let mut pins = PINNED.lock().unwrap_or_else(|p| p.into_inner());
    pins.retain(|(k, _)| *k != key);
    pins.push((key, node));
    Ok(session)
}

impl Tx for MySession {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> DbResult<u64> {
        let params: Vec<mysql::Value> = params.iter().map(to_mysql).collect();
        self.conn.exec_drop(sql, params).map_err(map_err)?;
        Ok(self.conn.affected_rows())
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> DbResult<Vec<Row>> {
        let params: Vec<mysql::Value> = params.iter().map(to_mysql).collect();
        let rows: Vec<mysql::Row> = self.conn.exec(sql, params).map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let types: Vec<ColumnType> =
                    row.columns_ref().iter().map(|c| c.column_type()).collect();
                row.unwrap()
                    .into_iter()
                    .zip(types)
                    .map(|(v, t)| from_mysql(v, t))
                    .collect()
            })
            .collect())
    }
}

impl Session for MySession {
    fn begin(&mut self, read_only: bool) -> DbResult<()> {
        let sql = if read_only {
            "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT"
        } else {
            "START TRANSACTION"
        };
        self.conn.query_drop(sql).map_err(map_err)
    }

    fn commit(&mut self) -> DbResult<()> {
        self.conn.query_drop("COMMIT").map_err(map_err)
    }

    fn rollback(&mut self) -> DbResult<()> {
        self.conn.query_drop("ROLLBACK").map_err(map_err)
    }

    fn identity(&mut self) -> DbResult<Identity> {
        // A Galera cluster is one server for us, whichever node we reached.
        let row = self.query(
            "SELECT DATABASE(), CONCAT(@@hostname, ':', @@port), \
             (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATE_UUID')",
            &[],
        )?;
        let cell = |i: usize| {
            row.first()
                .and_then(|r| r.get(i))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(Identity {
            dialect: Dialect::Mysql,
            database: cell(0).unwrap_or_default(),
            server: cell(2)
                .map(|c| format!("galera:{c}"))
                .or_else(|| cell(1))
                .unwrap_or_default(),
        })
    }

    fn ledger_ddl(&self, table: &str) -> String {
        super::ledger_statements(ledger_schema::migrations::runner(), table)
    }

    fn migrate_ledger(&mut self) -> DbResult<()> {
        super::run_ledger_schema(ledger_schema::migrations::runner(), &mut self.conn)
    }

    fn set_timeouts(
        &mut self,
        statement: Option<Duration>,
        lock_wait: Option<Duration>,
    ) -> DbResult<()> {
        let statement = match (self.mariadb, statement) {
            (true, t) => format!(
                "max_statement_time = {}",
                t.map_or(0.0, |t| t.as_secs_f64())
            ),
            (false, t) => format!("max_execution_time = {}", t.map_or(0, |t| t.as_millis())),
        };
        // Row locks (InnoDB) and table/metadata locks each have their own wait; 0 is not "none" here.
        let wait = lock_wait.map_or(31_536_000, |t| t.as_secs().max(1));
        let sql = format!(
            "SET SESSION {statement}, SESSION innodb_lock_wait_timeout = {wait}, SESSION lock_wait_timeout = {wait}"
        );
        self.conn.query_drop(sql).map_err(map_err)
    }

    fn describe(&self) -> String {
        self.redacted.clone()
    }

    fn replica_lag(&mut self) -> DbResult<Option<Duration>> {
        // A Galera node that falls behind makes the whole cluster pause (flow control): how long
        // that has lasted is how long the cluster has been behind our writes.
        let active = self.wsrep_status("WSREP_FLOW_CONTROL_ACTIVE")?;
        let Some(active) = active else {
            return Ok(None); // not a Galera node
        };
        let paused = matches!(active.to_ascii_lowercase().as_str(), "true" | "on" | "1");
        self.flow_control_since = match (paused, self.flow_control_since) {
            (false, _) => None,
            (true, None) => Some(std::time::Instant::now()),
            (true, since) => since,
        };
        Ok(Some(
            self.flow_control_since
                .map_or(Duration::ZERO, |t| t.elapsed()),
        ))
    }

    fn write_position(&mut self) -> DbResult<Option<i64>> {
        Ok(self
            .wsrep_status("WSREP_LAST_COMMITTED")?
            .and_then(|s| s.parse().ok()))
    }

    fn replication_hazard(&mut self) -> DbResult<Option<String>> {
        // Only what this session would log counts: its own binlog_format and sql_log_bin.
        let row = self.query(
            "SELECT @@log_bin, @@SESSION.sql_log_bin, @@SESSION.binlog_format",
            &[],
        )?;
        let cell = |i| {
            row.first()
                .and_then(|r| r.get(i))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let logged = cell(0).as_i64() == Some(1) && cell(1).as_i64() == Some(1);
        let format = cell(2).as_str().unwrap_or_default().to_ascii_uppercase();
        Ok((logged && format == "STATEMENT").then(|| {
            "the server logs statements for its replicas (binlog_format=STATEMENT), and a migration's rows take random values (UUID, RAND()) that a replica would replay differently; set binlog_format to MIXED or ROW (SET GLOBAL binlog_format = 'MIXED', or in the server's config), then rerun".to_string()
        }))
    }

    fn threads_running(&mut self) -> DbResult<Option<u64>> {
        let n = self.query_scalar(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_RUNNING'",
            &[],
        )?;
        Ok(n.as_i64().and_then(|n| u64::try_from(n).ok()))
    }

    fn connection_room(&mut self) -> DbResult<Option<super::ConnectionRoom>> {
        let row = self.query(
            "SELECT @@max_connections, \
             (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED'), \
             @@SESSION.max_user_connections, \
             (SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1))",
            &[],
        )?;
        let cell = |i| row.first().and_then(|r| r.get(i)).and_then(Value::as_i64);
        let (Some(max), Some(used)) = (cell(0), cell(1)) else {
            return Ok(None);
        };
        // One is left for whoever else connects meanwhile (a closing connection of ours, the app).
        let server = super::ConnectionRoom {
            free: u64::try_from(max - used - 1).unwrap_or(0),
            limit: format!("max_connections={max}, {used} in use, 1 left for others"),
        };
        // The user's own cap (0: none); PROCESSLIST shows this user's connections to every user.
        let room = match (cell(2), cell(3)) {
            (Some(cap), Some(mine)) if cap > 0 && cap - mine < max - used => {
                super::ConnectionRoom {
                    free: u64::try_from(cap - mine - 1).unwrap_or(0),
                    limit: format!(
                        "max_user_connections={cap}, {mine} in use by this user, 1 left for others"
                    ),
                }
            }
            _ => server,
        };
        Ok(Some(room))
    }

    fn replica_state(&mut self) -> DbResult<super::ReplicaState> {
        if let Some(state) = self.async_replica_state()? {
            return Ok(state);
        }
        let Some(ready) = self.wsrep_status("WSREP_READY")? else {
            return Ok(super::ReplicaState::NotAReplica);
        };
        if !ready.eq_ignore_ascii_case("ON") {
            let state = self
                .wsrep_status("WSREP_LOCAL_STATE_COMMENT")?
                .unwrap_or_default();
            return Ok(super::ReplicaState::Stopped(format!(
                "the Galera node is not ready ({state})"
            )));
        }
        Ok(match self.write_position()? {
            Some(seqno) => super::ReplicaState::Applied(seqno),
            None => super::ReplicaState::Stopped("the Galera node reports no seqno".into()),
        })
    }
}

impl MySession {
    /// A `wsrep_*` status variable; `None` on a server that is not a Galera node (MariaDB has them
    /// all, with wsrep off).
    fn wsrep_status(&mut self, name: &str) -> DbResult<Option<String>> {
        if self.galera.is_none() {
            let on = self.query_scalar(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'WSREP_ON'",
                &[],
            )?;
            self.galera = Some(on.as_str().is_some_and(|v| v.eq_ignore_ascii_case("ON")));
        }
        if self.galera == Some(false) {
            return Ok(None);
        }
        let value = self.query_scalar(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?",
            &[name.into()],
        )?;
        Ok(value.as_str().map(str::to_string))
    }

    /// `SHOW REPLICA STATUS` (`SHOW SLAVE STATUS` before MariaDB 10.5 and MySQL 8.0.22); `None` when
    /// this server replicates from no primary.
    fn async_replica_state(&mut self) -> DbResult<Option<super::ReplicaState>> {
        let rows: Vec<mysql::Row> = match self.conn.query("SHOW REPLICA STATUS") {
            Ok(rows) => rows,
            Err(mysql::Error::MySqlError(e)) if e.code == 1064 => {
                self.conn.query("SHOW SLAVE STATUS").map_err(map_err)?
            }
            Err(e) => return Err(map_err(e)),
        };
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let sql = status_column(row, &["Slave_SQL_Running", "Replica_SQL_Running"]);
        let io = status_column(row, &["Slave_IO_Running", "Replica_IO_Running"]);
        let behind = status_column(row, &["Seconds_Behind_Master", "Seconds_Behind_Source"]);
        let state = match (sql.as_deref(), behind.and_then(|s| s.parse::<u64>().ok())) {
            (Some("Yes"), Some(s)) => super::ReplicaState::Behind(Duration::from_secs(s)),
            (Some("Yes"), None) => super::ReplicaState::Stopped(format!(
                "it is not connected to its primary (IO thread: {})",
                io.unwrap_or_default()
            )),
            _ => super::ReplicaState::Stopped("its SQL thread is stopped".into()),
        };
        Ok(Some(state))
    }
}

/// A `SHOW … STATUS` column by the first of its names this server uses, as text.
fn status_column(row: &mysql::Row, names: &[&str]) -> Option<String> {
    let at = row
        .columns_ref()
        .iter()
        .position(|c| names.contains(&c.name_str().as_ref()))?;
    match row.as_ref(at)? {
        mysql::Value::NULL => None,
        mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        v => Some(v.as_sql(true).trim_matches('\'').to_string()),
    }
}
