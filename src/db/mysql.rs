//! MySQL / MariaDB driver (sync `mysql` crate).

use super::{DbError, DbResult, Dialect, ErrorKind, Row, Session, Target, Tx, Value};
use chrono::{Datelike, NaiveDate, Timelike};
use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};
use std::time::Duration;

mod ledger_schema {
    refinery::embed_migrations!("schema/ledger/mysql");
}

pub struct MySession {
    conn: Conn,
    lock_name: String,
    redacted: String,
    mariadb: bool,
}

fn map_err(e: mysql::Error) -> DbError {
    match e {
        mysql::Error::MySqlError(ref m) => {
            let (kind, hint) = match m.code {
                1045 | 1044 => (
                    ErrorKind::Config,
                    " (check the user and password in DATABASE_URL)",
                ),
                1049 => (
                    ErrorKind::Config,
                    " (create the database or fix its name in DATABASE_URL)",
                ),
                1969 | 3024 => (
                    ErrorKind::Timeout,
                    " (raise the statement timeout or lower --batch-size)",
                ),
                _ => (ErrorKind::Query, ""),
            };
            DbError::new(
                kind,
                format!("mysql: {} (error {}){hint}", m.message, m.code),
            )
        }
        mysql::Error::UrlError(u) => {
            DbError::new(ErrorKind::Config, format!("malformed mysql URL: {u}"))
        }
        mysql::Error::IoError(_) | mysql::Error::DriverError(_) => {
            DbError::new(ErrorKind::Connection, format!("mysql: {e}"))
        }
        other => DbError::query(format!("mysql: {other}")),
    }
}

fn to_mysql(v: &Value) -> mysql::Value {
    match v {
        Value::Null => mysql::Value::NULL,
        Value::Int(i) => mysql::Value::Int(*i),
        Value::Float(f) => mysql::Value::Double(*f),
        Value::Text(s) => mysql::Value::Bytes(s.clone().into_bytes()),
        Value::Date(d) => {
            mysql::Value::Date(d.year() as u16, d.month() as u8, d.day() as u8, 0, 0, 0, 0)
        }
        Value::Timestamp(t) => mysql::Value::Date(
            t.year() as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.and_utc().timestamp_subsec_micros(),
        ),
    }
}

fn from_mysql(v: mysql::Value, column: ColumnType) -> Value {
    match v {
        mysql::Value::NULL => Value::Null,
        mysql::Value::Int(i) => Value::Int(i),
        mysql::Value::UInt(u) => i64::try_from(u).map_or(Value::Float(u as f64), Value::Int),
        mysql::Value::Float(f) => Value::Float(f.into()),
        mysql::Value::Double(f) => Value::Float(f),
        mysql::Value::Bytes(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
        mysql::Value::Date(y, mo, d, h, mi, s, us) => {
            let date = NaiveDate::from_ymd_opt(y.into(), mo.into(), d.into());
            match (date, column) {
                (Some(date), ColumnType::MYSQL_TYPE_DATE) => Value::Date(date),
                (Some(date), _) => date
                    .and_hms_micro_opt(h.into(), mi.into(), s.into(), us)
                    .map_or(Value::Null, Value::Timestamp),
                // A zero date ('0000-00-00') has no calendar value.
                (None, _) => Value::Null,
            }
        }
        mysql::Value::Time(neg, d, h, mi, s, _) => Value::Text(format!(
            "{}{}:{mi:02}:{s:02}",
            if neg { "-" } else { "" },
            d * 24 + u32::from(h)
        )),
    }
}

impl MySession {
    pub fn connect(target: &Target) -> DbResult<Self> {
        let opts = Opts::from_url(target.secret_url())
            .map_err(|e| DbError::new(ErrorKind::Config, format!("malformed mysql URL: {e}")))?;
        let opts = OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(Duration::from_secs(10)));
        let conn = Conn::new(opts).map_err(|e| {
            let err = map_err(e);
            let kind = if err.kind == ErrorKind::Query {
                ErrorKind::Connection
            } else {
                err.kind
            };
            DbError::new(
                kind,
                format!("cannot connect to {}: {}", target.redacted, err.message),
            )
        })?;
        let mut session = MySession {
            conn,
            // GET_LOCK names are server-wide: scope ours to the database; they are capped at 64 chars.
            lock_name: format!("backfill:{}", target.database)
                .chars()
                .take(64)
                .collect(),
            redacted: target.redacted.clone(),
            mariadb: false,
        };
        let version = session.query_scalar("SELECT VERSION()", &[])?;
        session.mariadb = version.as_str().is_some_and(|v| v.contains("MariaDB"));
        // Our own timestamps are UTC; keep the server from shifting them.
        session
            .conn
            .query_drop("SET time_zone = '+00:00'")
            .map_err(map_err)?;
        Ok(session)
    }
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

    fn try_lock(&mut self) -> DbResult<bool> {
        let name = Value::Text(self.lock_name.clone());
        Ok(self
            .query_scalar("SELECT GET_LOCK(?, 0)", &[name])?
            .as_i64()
            == Some(1))
    }

    fn unlock(&mut self) -> DbResult<()> {
        let name = Value::Text(self.lock_name.clone());
        self.query("SELECT RELEASE_LOCK(?)", &[name]).map(|_| ())
    }

    fn lock_holder(&mut self) -> Option<String> {
        let name = Value::Text(self.lock_name.clone());
        let id = self
            .query_scalar("SELECT IS_USED_LOCK(?)", &[name])
            .ok()?
            .as_i64()?;
        let who = self
            .query(
                "SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = ?",
                &[Value::Int(id)],
            )
            .ok()
            .and_then(|rows| rows.into_iter().next())
            .map(|r| {
                format!(
                    " ({}@{})",
                    r[0].as_str().unwrap_or("?"),
                    r[1].as_str().unwrap_or("?")
                )
            })
            .unwrap_or_default();
        Some(format!("connection id {id}{who}"))
    }

    fn migrate_ledger(&mut self) -> DbResult<()> {
        let mut runner = ledger_schema::migrations::runner();
        runner.set_migration_table_name("backfill_schema_history");
        runner
            .run(&mut self.conn)
            .map(|_| ())
            .map_err(|e| DbError::query(format!("creating the ledger tables failed: {e}")))
    }

    fn set_statement_timeout(&mut self, timeout: Option<Duration>) -> DbResult<()> {
        let sql = match (self.mariadb, timeout) {
            (true, t) => format!(
                "SET SESSION max_statement_time = {}",
                t.map_or(0.0, |t| t.as_secs_f64())
            ),
            (false, t) => format!(
                "SET SESSION max_execution_time = {}",
                t.map_or(0, |t| t.as_millis())
            ),
        };
        self.conn.query_drop(sql).map_err(map_err)
    }

    fn describe(&self) -> String {
        self.redacted.clone()
    }
}
