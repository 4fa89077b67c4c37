//! SQLite driver (rusqlite, bundled). The runner lock is an OS file lock on a sidecar file, so it is
//! released when the process dies, however it dies.

use super::{DbError, DbResult, Dialect, ErrorKind, Row, Session, Target, Tx, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::Duration;

mod ledger_schema {
    refinery::embed_migrations!("schema/ledger/sqlite");
}

pub struct SqliteSession {
    conn: Connection,
    path: PathBuf,
    lock: Option<File>,
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
        " (is DATABASE_URL the app's database, and have its schema migrations run?)"
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
    pub fn connect(target: &Target) -> DbResult<Self> {
        let path = target.sqlite_path.clone().unwrap_or_default();
        if !path.is_file() {
            return Err(DbError::new(
                ErrorKind::Config,
                format!(
                    "no SQLite database at {}; check the path in DATABASE_URL",
                    path.display()
                ),
            ));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(map_err)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(map_err)?;
        // Laravel turns foreign keys on for its SQLite connections; so do we, so ON DELETE holds.
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(map_err)?;
        Ok(SqliteSession {
            conn,
            path,
            lock: None,
        })
    }

    fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".backfill-lock");
        PathBuf::from(p)
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

    fn try_lock(&mut self) -> DbResult<bool> {
        let path = self.lock_path();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                DbError::new(
                    ErrorKind::Config,
                    format!("cannot open lock file {}: {e}", path.display()),
                )
            })?;
        match file.try_lock() {
            Ok(()) => {
                let host = gethostname::gethostname().to_string_lossy().into_owned();
                let _ = file.set_len(0);
                let _ = file.rewind();
                let _ = write!(file, "pid {} on {host}", std::process::id());
                self.lock = Some(file);
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(DbError::query(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    fn unlock(&mut self) -> DbResult<()> {
        self.lock = None;
        Ok(())
    }

    fn lock_holder(&mut self) -> Option<String> {
        let mut text = String::new();
        File::open(self.lock_path())
            .ok()?
            .read_to_string(&mut text)
            .ok()?;
        Some(text).filter(|t| !t.is_empty())
    }

    fn migrate_ledger(&mut self) -> DbResult<()> {
        super::run_ledger_schema(ledger_schema::migrations::runner(), &mut self.conn)
    }

    fn set_statement_timeout(&mut self, timeout: Option<Duration>) -> DbResult<()> {
        // SQLite runs in this process; the batch size bounds each statement. What can stall us is
        // another process's write transaction (the app's): wait for it at most this long.
        self.conn
            .busy_timeout(timeout.unwrap_or(Duration::from_secs(30)))
            .map_err(map_err)
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}
