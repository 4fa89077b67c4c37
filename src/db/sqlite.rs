//! SQLite driver (rusqlite, bundled). The runner lock is the ledger's lease row, as on the servers:
//! it lives in the database file itself, so every path that reaches the file (a symlink, `..`) meets
//! the same lock, and no sidecar file is left behind.

use super::{DbError, DbResult, Dialect, ErrorKind, Identity, Row, Session, Target, Tx, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::time::Duration;

mod ledger_schema {
    refinery::embed_migrations!("schema/ledger/sqlite");
}

pub(crate) struct SqliteSession {
    conn: Connection,
    path: PathBuf,
}

fn map_err(e: rusqlite::Error) -> DbError {
    let kind = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::OperationInterrupted | rusqlite::ErrorCode::DatabaseBusy) => {
            ErrorKind::Timeout
        }
        Some(
            rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::NotADatabase
            | rusqlite::ErrorCode::ReadOnly
            | rusqlite::ErrorCode::PermissionDenied,
        ) => ErrorKind::Config,
        _ => ErrorKind::Query,
    };
    let text = e.to_string();
    let hint = if text.contains("no such table") {
        " (is the database URL the app's database, and have its schema migrations run?)"
    } else if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
        " (the file the database URL names is not an SQLite database: check the path)"
    } else if kind == ErrorKind::Timeout {
        " (another process holds a write lock on the database file: wait for it, or raise --statement-timeout)"
    } else {
        ""
    };
    DbError::new(kind, format!("sqlite: {text}{hint}"))
}

fn to_sqlite(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Float(f) => SqlValue::Real(*f),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Date(d) => SqlValue::Text(d.format("%Y-%m-%d").to_string()),
        // Whole seconds as Laravel and `utc_now()` write them, so text comparisons of equal times hold.
        Value::Timestamp(t) if t.and_utc().timestamp_subsec_micros() == 0 => {
            SqlValue::Text(t.format("%Y-%m-%d %H:%M:%S").to_string())
        }
        Value::Timestamp(t) => SqlValue::Text(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
    }
}

fn from_sqlite(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Int(i),
        SqlValue::Real(f) => Value::Float(f),
        SqlValue::Text(s) => Value::Text(s),
        SqlValue::Blob(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

impl SqliteSession {
    pub(super) fn connect(target: &Target) -> DbResult<Self> {
        let path = target.sqlite_path.clone().unwrap_or_default();
        if !path.is_file() {
            return Err(DbError::new(
                ErrorKind::Config,
                format!(
                    "no SQLite database at {}; check the path in the database URL",
                    path.display()
                ),
            ));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(map_err)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(map_err)?;
        // Laravel turns foreign keys on for its SQLite connections; so do we, so ON DELETE holds.
        // Reading schema_version reads the file header: a file that is not a database fails here, at
        // connect, as a configuration error, for every command.
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA schema_version")
            .map_err(map_err)?;
        Ok(SqliteSession { conn, path })
    }
}

impl Tx for SqliteSession {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> DbResult<u64> {
        let params: Vec<SqlValue> = params.iter().map(to_sqlite).collect();
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params))
            .map_err(map_err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> DbResult<Vec<Row>> {
        let params: Vec<SqlValue> = params.iter().map(to_sqlite).collect();
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |row| {
                (0..width)
                    .map(|i| row.get::<_, SqlValue>(i).map(from_sqlite))
                    .collect::<Result<Row, _>>()
            })
            .map_err(map_err)?;
        rows.collect::<Result<Vec<Row>, _>>().map_err(map_err)
    }
}

impl Session for SqliteSession {
    fn begin(&mut self, read_only: bool) -> DbResult<()> {
        // IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        let sql = if read_only {
            "PRAGMA query_only = ON; BEGIN DEFERRED"
        } else {
            "BEGIN IMMEDIATE"
        };
        self.conn.execute_batch(sql).map_err(map_err)
    }

    fn commit(&mut self) -> DbResult<()> {
        self.conn
            .execute_batch("COMMIT; PRAGMA query_only = OFF")
            .map_err(map_err)
    }

    fn rollback(&mut self) -> DbResult<()> {
        self.conn
            .execute_batch("ROLLBACK; PRAGMA query_only = OFF")
            .map_err(map_err)
    }

    fn identity(&mut self) -> DbResult<Identity> {
        use std::os::unix::fs::MetadataExt;
        let canonical = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let server = std::fs::metadata(&canonical)
            .map(|m| format!("dev {} inode {}", m.dev(), m.ino()))
            .unwrap_or_default();
        Ok(Identity {
            dialect: Dialect::Sqlite,
            database: canonical.display().to_string(),
            server,
        })
    }

    fn ledger_ddl(&self, table: &str) -> String {
        super::ledger_statements(ledger_schema::migrations::runner(), table)
    }

    fn migrate_ledger(&mut self) -> DbResult<()> {
        // Our own read first: a file that is not a database fails here with its proper kind.
        self.query("SELECT COUNT(*) FROM sqlite_master", &[])?;
        // Grouped: every pending step and its history row in one transaction (SQLite's DDL is
        // transactional). Ungrouped, refinery commits a step before its history row, and a runner
        // killed in between left `ADD COLUMN value_format` done but unrecorded: every later run
        // failed on "duplicate column name" (tests/declarative.rs, kill_9_during_apply, seen once).
        let runner = ledger_schema::migrations::runner().set_grouped(true);
        super::run_ledger_schema(runner, &mut self.conn)
    }

    fn set_timeouts(&mut self, _: Option<Duration>, lock_wait: Option<Duration>) -> DbResult<()> {
        // SQLite runs in this process; the batch size bounds each statement. What can stall us is
        // another process's write transaction (the app's): wait for it at most this long.
        self.conn
            .busy_timeout(lock_wait.unwrap_or(Duration::from_secs(30)))
            .map_err(map_err)
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}
