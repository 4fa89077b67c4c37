//! Database access behind two small traits, one file per dialect (as in refinery_core).
//!
//! `Tx` is all a data migration sees: run SQL inside a transaction the runner owns. `Session` adds what
//! only the runner may do: transactions, the runner lock and the ledger's schema. SQL is written with
//! `?` placeholders everywhere; the PostgreSQL driver numbers them.

pub mod admin;
mod dialect;
mod journal_sql;
mod mysql;
mod postgres;
pub mod schema_file;
mod sqlite;
mod tls;
pub(crate) mod url;

use chrono::{NaiveDate, NaiveDateTime};
use std::time::Duration;

pub use self::dialect::Dialect;
pub(crate) use self::journal_sql::{INSERT_ENTRIES, SCRATCH};
pub use self::url::Target;

/// A value crossing the driver boundary, in either direction.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (a boolean reads as 0 or 1).
    Int(i64),
    /// A floating-point number; cast a decimal to text in the query to keep every digit.
    Float(f64),
    /// Text, and what the drivers read as text (JSON, UUIDs, MySQL's bytes).
    Text(String),
    /// A date without a time.
    Date(NaiveDate),
    /// Always UTC.
    Timestamp(NaiveDateTime),
}

/// One row of a query's result, in the statement's column order.
pub type Row = Vec<Value>;

impl Value {
    /// The value as an integer: an `Int`, an integral `Float`, or text that parses as one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    /// The text of a `Text` value; `None` for the others.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn into_json(self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Int(i) => J::from(i),
            Value::Float(f) => J::from(f),
            Value::Text(s) => J::from(s),
            Value::Date(d) => J::from(d.to_string()),
            Value::Timestamp(t) => J::from(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// What kind of failure a [`DbError`] is: it decides the exit code and whether a retry may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection settings are wrong (URL, credentials, database name): exit 2.
    Config,
    /// The server could not be reached or the connection dropped: exit 1, retry later.
    Connection,
    /// A statement failed.
    Query,
    /// A statement was cancelled because it ran past the statement timeout.
    Timeout,
    /// A deadlock, a serialization failure or a Galera certification conflict: the transaction was
    /// rolled back and running it again may succeed.
    Conflict,
    /// SIGINT/SIGTERM arrived while we waited on the server (connecting): exit 128 + signal.
    Interrupted,
}

/// How driver hints name the URL's setting; the CLI puts where it came from in its place
/// (`--database-url`, `DATABASE_URL`, the `.env`, `--replica-url`).
pub(crate) const URL_WORDS: &str = "the database URL";

/// A driver error reduced to one line. Drivers build it without the URL, so no password can leak.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// One line for the operator, without the URL or its password.
    pub message: String,
}

impl DbError {
    /// An error of `kind`; a message of several lines becomes one.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // Server messages can span lines (PostgreSQL DETAIL/HINT); operators get one line.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        DbError { kind, message }
    }
    /// A failed statement ([`ErrorKind::Query`]).
    pub fn query(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Query, message)
    }
    /// A failure while connecting: names the (redacted) target; a failed statement there means the
    /// server could not be reached, not a bad query.
    pub fn connecting(target: &Target, err: DbError) -> Self {
        let kind = if err.kind == ErrorKind::Query {
            ErrorKind::Connection
        } else {
            err.kind
        };
        DbError::new(
            kind,
            format!("cannot connect to {}: {}", target.redacted, err.message),
        )
    }

    pub(crate) fn is_config(&self) -> bool {
        self.kind == ErrorKind::Config
    }
    pub(crate) fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }
    /// The server refused a write: a read-only server or transaction (a hot standby), or a user
    /// without the privilege.
    pub(crate) fn is_denied(&self) -> bool {
        let m = self.message.to_lowercase();
        ["read-only", "read only", "readonly", "denied", "permission"]
            .iter()
            .any(|w| m.contains(w))
    }
}

/// Which database a session reached, as the server reports it (never the URL's text: a trailing
/// slash or a percent-encoded name reaches the same database).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The server's kind.
    pub dialect: Dialect,
    /// `current_database()`, `DATABASE()`, or the canonical SQLite path.
    pub database: String,
    /// What tells one server (or Galera cluster) from another: address and port, a cluster UUID,
    /// or the SQLite file's device and inode.
    pub server: String,
}

/// What every database call returns.
pub type DbResult<T> = Result<T, DbError>;

/// What a data migration may do: run statements inside the runner's transaction.
pub trait Tx {
    /// Which dialect the statements must be written in.
    fn dialect(&self) -> Dialect;
    /// Runs one statement; returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> DbResult<u64>;
    /// Runs one query; returns its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> DbResult<Vec<Row>>;

    /// The first column of the first row, if any.
    fn query_scalar(&mut self, sql: &str, params: &[Value]) -> DbResult<Value> {
        let rows = self.query(sql, params)?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or(Value::Null))
    }
}

/// A connection as the runner sees it.
pub trait Session: Tx {
    /// Starts a transaction. A read-only one also takes a consistent snapshot for all its reads.
    fn begin(&mut self, read_only: bool) -> DbResult<()>;
    /// Commits the open transaction.
    fn commit(&mut self) -> DbResult<()>;
    /// Rolls the open transaction back.
    fn rollback(&mut self) -> DbResult<()>;
    /// The database this session reached, as the server names it.
    fn identity(&mut self) -> DbResult<Identity>;
    /// Creates or upgrades the ledger tables (refinery, history table `backfill_schema_history`).
    fn migrate_ledger(&mut self) -> DbResult<()>;
    /// The ledger schema's statements that make `table` (see `ledger_statements`).
    fn ledger_ddl(&self, table: &str) -> String;
    /// Caps how long one statement may run, and how long it may wait for a row or table lock
    /// (`lock_wait`); `None` removes a cap. Holds for every later statement of the session, through
    /// a transaction-pooling PgBouncer too.
    fn set_timeouts(
        &mut self,
        statement: Option<Duration>,
        lock_wait: Option<Duration>,
    ) -> DbResult<()>;
    /// The target with any password replaced, for output and the audit table.
    fn describe(&self) -> String;
    /// How far the replicas this server knows of lag behind our writes; `None` when it has none or
    /// cannot say. Called between batches.
    fn replica_lag(&mut self) -> DbResult<Option<Duration>> {
        Ok(None)
    }
    /// PostgreSQL: where this session's ledger is, or would be created (`None` where a database is
    /// one schema: MySQL/MariaDB, SQLite).
    fn ledger_place(&mut self) -> DbResult<Option<LedgerPlace>> {
        Ok(None)
    }
    /// How many of this server's replicas [`Session::replica_lag`] cannot see the positions of (a
    /// PostgreSQL user without `pg_monitor`): their lag would read as none.
    fn hidden_replicas(&mut self) -> DbResult<i64> {
        Ok(0)
    }
    /// Where this server's writes are now, comparable with what its replicas report as
    /// [`ReplicaState::Applied`] (a WAL position, a Galera seqno); `None` when it has no such
    /// position.
    fn write_position(&mut self) -> DbResult<Option<i64>> {
        Ok(None)
    }
    /// Why this server's replicas would not get exactly the rows a migration writes here, as one
    /// line naming the setting to change; `None` when they would.
    fn replication_hazard(&mut self) -> DbResult<Option<String>> {
        Ok(None)
    }
    /// How many more connections the server (and this user) accepts now; `None` when it cannot say.
    fn connection_room(&mut self) -> DbResult<Option<ConnectionRoom>> {
        Ok(None)
    }
    /// MySQL/MariaDB: `Threads_running` now (`--max-threads-running`); `None` elsewhere.
    fn threads_running(&mut self) -> DbResult<Option<u64>> {
        Ok(None)
    }
    /// PostgreSQL: which of `tables` a VACUUM (autovacuum or manual) works on now.
    fn vacuuming(&mut self, _tables: &[&str]) -> DbResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// PostgreSQL: WAL segments waiting for the archiver; `None` when nothing is archived here.
    fn archive_backlog(&mut self) -> DbResult<Option<u64>> {
        Ok(None)
    }
    /// PostgreSQL: sessions waiting on a lock that a session of this process holds.
    fn waiting_on_us(&mut self) -> DbResult<u64> {
        Ok(0)
    }
    /// How far behind this server is, read on the server itself (a `--replica-url`).
    fn replica_state(&mut self) -> DbResult<ReplicaState> {
        Ok(ReplicaState::NotAReplica)
    }
}

/// How a transaction's work ends when it did not fail: what it wrote is kept, or undone (a fence
/// found another runner in charge, or there was nothing to keep); the value is returned either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish<T> {
    /// Keep what it wrote.
    Commit(T),
    /// Undo what it wrote.
    Rollback(T),
}

/// The transaction helpers every caller shares, so none rewrites begin/commit/rollback by hand (an
/// inherent impl rather than trait methods: generic methods would make `Session` unusable as `dyn`).
impl dyn Session + '_ {
    /// Runs `work` in one read-write transaction, committed or rolled back as `work` says, and
    /// rolled back when it fails (that error wins over any error rolling back).
    pub(crate) fn transaction<T, E: From<DbError>>(
        &mut self,
        work: impl FnOnce(&mut dyn Session) -> Result<Finish<T>, E>,
    ) -> Result<T, E> {
        self.begin(false)?;
        match work(self) {
            Ok(Finish::Commit(value)) => Ok(self.commit().map(|_| value)?),
            Ok(Finish::Rollback(value)) => Ok(self.rollback().map(|_| value)?),
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    /// Runs `work` in a read-only transaction, so all its reads see one snapshot; nothing is kept.
    pub(crate) fn snapshot<T, E: From<DbError>>(
        &mut self,
        work: impl FnOnce(&mut dyn Session) -> Result<T, E>,
    ) -> Result<T, E> {
        self.begin(true)?;
        let out = work(self);
        let _ = self.rollback();
        out
    }
}

/// The connections a server has left for us, and the limit that leaves no more (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRoom {
    /// How many more connections it accepts now.
    pub free: u64,
    /// `max_connections=10, 7 in use`, as the server names it.
    pub limit: String,
}

/// The schema a PostgreSQL session works in (the first schema of its `search_path` that exists),
/// how many of the app's tables are there, and which schemas of the database hold a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPlace {
    /// `current_database()`.
    pub database: String,
    /// `None`: no schema of the search_path exists.
    pub schema: Option<String>,
    /// Tables in `schema` other than the ledger's own.
    pub tables: i64,
    /// The other schemas of this database with a ledger (`backfill_schema_history`).
    pub ledgers: Vec<String>,
}

impl LedgerPlace {
    /// `schema app of database talent`.
    pub fn describe(&self) -> String {
        match &self.schema {
            Some(schema) => format!("schema {schema} of database {}", self.database),
            None => format!(
                "database {} (no schema of the search_path exists)",
                self.database
            ),
        }
    }
}

/// What a replica (`--replica-url`) says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaState {
    /// The server's own figure (MySQL/MariaDB `Seconds_Behind_Master`).
    Behind(Duration),
    /// It applies nothing now; why, in a few words.
    Stopped(String),
    /// The position it has applied, comparable with its primary's `write_position`.
    Applied(i64),
    /// Neither a replica nor a cluster node.
    NotAReplica,
}

/// Runs a dialect's embedded ledger migrations with our history table name.
/// The statements of the ledger schema that make `table` (its CREATE, index, rows, later columns),
/// in version order, as one line: what recreates it empty when it was dropped by hand. Refinery's
/// history cannot run them again (a later version only adds a column, and versions run once).
fn ledger_statements(runner: refinery::Runner, table: &str) -> String {
    let names = |stmt: &str| {
        stmt.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| word == table)
    };
    let statements: Vec<String> = runner
        .get_migrations()
        .iter()
        .filter_map(|m| m.sql())
        .flat_map(|sql| {
            let code: Vec<&str> = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect();
            code.join(" ")
                .split(';')
                .map(|stmt| stmt.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        })
        .filter(|stmt| names(stmt))
        .map(|stmt| format!("{stmt};"))
        .collect();
    statements.join(" ")
}

fn run_ledger_schema<C: refinery::Migrate>(
    mut runner: refinery::Runner,
    conn: &mut C,
) -> DbResult<()> {
    runner.set_migration_table_name("backfill_schema_history");
    runner.run(conn).map(|_| ()).map_err(|e| {
        let e = DbError::query(format!("creating the ledger tables failed: {e}"));
        if e.is_denied() {
            DbError::new(ErrorKind::Config, e.message)
        } else {
            e
        }
    })
}

/// Runs a driver's connect on a thread of its own and waits at most `limit`, polling for SIGINT and
/// SIGTERM: drivers bound the TCP connect, not a server that accepts and then never answers.
pub(crate) fn bounded_connect<T: Send + 'static>(
    limit: Duration,
    connect: impl FnOnce() -> T + Send + 'static,
) -> DbResult<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(connect());
    });
    let started = std::time::Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(v) => return Ok(v),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(DbError::new(
                    ErrorKind::Connection,
                    "the connection attempt failed",
                ))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(sig) = crate::signals::requested() {
            return Err(DbError::new(
                ErrorKind::Interrupted,
                format!("interrupted by signal {sig} while connecting"),
            ));
        }
        if started.elapsed() >= limit {
            return Err(DbError::new(
                ErrorKind::Connection,
                format!(
                    "the server accepted the connection but did not answer within {}s; check the host and port (is it the database server?)",
                    limit.as_secs()
                ),
            ));
        }
    }
}

/// Opens a session for the target.
pub fn connect(target: &Target) -> DbResult<Box<dyn Session>> {
    match target.dialect {
        Dialect::Postgres => Ok(Box::new(postgres::PgSession::connect(target)?)),
        Dialect::Mysql => Ok(Box::new(mysql::MySession::connect(target)?)),
        Dialect::Sqlite => Ok(Box::new(sqlite::SqliteSession::connect(target)?)),
    }
}

/// Turns `?` placeholders into `$1, $2, ...`, leaving quoted text, identifiers and comments alone.
pub(crate) fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut inside: Option<Skip> = None;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        let next = chars.peek().copied();
        match (inside, ch) {
            (None, '\'' | '"') => inside = Some(Skip::Quote(ch)),
            (None, '-') if next == Some('-') => inside = Some(Skip::LineComment),
            (None, '/') if next == Some('*') => {
                out.push_str("/*");
                chars.next();
                inside = Some(Skip::BlockComment);
                continue;
            }
            (None, '?') => {
                n += 1;
                out.push_str(&format!("${n}"));
                continue;
            }
            (Some(Skip::Quote(q)), c) if c == q => inside = None,
            (Some(Skip::LineComment), '\n') => inside = None,
            (Some(Skip::BlockComment), '*') if next == Some('/') => {
                out.push_str("*/");
                chars.next();
                inside = None;
                continue;
            }
            _ => {}
        }
        out.push(ch);
    }
    out
}

/// What `number_placeholders` is inside of, where a `?` is text and not a parameter.
#[derive(Clone, Copy)]
enum Skip {
    Quote(char),
    /// `-- …` up to the end of the line: an expression in a declarative file may carry one.
    LineComment,
    /// `/* … */`.
    BlockComment,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_skip_quoted_text() {
        assert_eq!(
            number_placeholders("SELECT '?', \"a?\" FROM t WHERE a = ? AND b = ?"),
            "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b = $2"
        );
    }

    #[test]
    fn placeholders_skip_comments() {
        assert_eq!(
            number_placeholders(
                "SELECT a -- why?\nFROM t /* b? */ WHERE a = ? /*?*/ AND b - -1 = ? /*/?*/"
            ),
            "SELECT a -- why?\nFROM t /* b? */ WHERE a = $1 /*?*/ AND b - -1 = $2 /*/?*/"
        );
    }
}
