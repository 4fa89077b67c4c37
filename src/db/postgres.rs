//! PostgreSQL driver (sync `postgres` crate).

use super::url::TlsMode;
use super::{
    number_placeholders, DbError, DbResult, Dialect, ErrorKind, Row, Session, Target, Tx, Value,
};
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use postgres::config::SslMode;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::str::FromStr;
use std::time::Duration;

mod ledger_schema {
    refinery::embed_migrations!("schema/ledger/postgres");
}

/// "backfill" in ASCII: the advisory lock key, per database.
const LOCK_KEY: i64 = 0x6261_636b_6669_6c6c;

pub struct PgSession {
    client: Client,
    statements: HashMap<String, Statement>,
    redacted: String,
}

/// An error with its causes: `postgres::Error` prints only its kind ("error connecting to server").
fn with_causes(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn map_err(e: postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let kind = match code {
            "28P01" | "28000" | "3D000" | "42501" => ErrorKind::Config,
            "57014" | "55P03" => ErrorKind::Timeout,
            "57P01" | "57P02" | "57P03" => ErrorKind::Connection,
            _ => ErrorKind::Query,
        };
        let hint = match code {
            "28P01" | "28000" => " (check the user and password in DATABASE_URL)",
            "3D000" => " (create the database or fix its name in DATABASE_URL)",
            "42501" => " (this user lacks a privilege backfill needs here: grant it, or connect as the app's migration user)",
            "42P01" => " (is DATABASE_URL the app's database, and have its schema migrations run?)",
            "57014" | "55P03" => " (another session may hold a lock on a table it needs, or the batch is too big: check pg_stat_activity for blockers, then rerun, raise --statement-timeout or lower --batch-size)",
            _ => "",
        };
        return DbError::new(kind, format!("postgres: {}{hint}", db.message()));
    }
    let text = with_causes(&e);
    let kind = if text.starts_with("error performing TLS handshake") {
        ErrorKind::Config
    } else if e.is_closed() || StdError::source(&e).is_some_and(|s| s.is::<std::io::Error>()) {
        ErrorKind::Connection
    } else {
        ErrorKind::Query
    };
    let hint = if kind == ErrorKind::Config {
        " (check sslmode/sslrootcert in DATABASE_URL)"
    } else {
        ""
    };
    DbError::new(kind, format!("postgres: {text}{hint}"))
}

impl PgSession {
    pub fn connect(target: &Target) -> DbResult<Self> {
        let mut config = postgres::Config::from_str(target.secret_url()).map_err(|e| {
            DbError::new(
                ErrorKind::Config,
                format!("malformed postgres URL: {}", with_causes(&e)),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name(&format!("backfill pid {}", std::process::id()));
        let connected = match super::tls::pg_client_config(&target.tls)? {
            None => config.ssl_mode(SslMode::Disable).connect(NoTls),
            Some(tls) => {
                let mode = if target.tls.mode == TlsMode::Prefer {
                    SslMode::Prefer
                } else {
                    SslMode::Require
                };
                config
                    .ssl_mode(mode)
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
            }
        };
        let client = connected.map_err(|e| DbError::connecting(target, map_err(e)))?;
        Ok(PgSession {
            client,
            statements: HashMap::new(),
            redacted: target.redacted.clone(),
        })
    }

    fn statement(&mut self, sql: &str) -> DbResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self
            .client
            .prepare(&number_placeholders(sql))
            .map_err(map_err)?;
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

/// Sends our `Value` as whatever type the server inferred for the parameter.
#[derive(Debug)]
struct PgParam<'a>(&'a Value);

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Float(f) => f.to_sql(ty, out),
            Value::Text(s) => match *ty {
                Type::JSON | Type::JSONB => {
                    serde_json::from_str::<serde_json::Value>(s)?.to_sql(ty, out)
                }
                Type::UUID => uuid::Uuid::parse_str(s)?.to_sql(ty, out),
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                Type::DATE => NaiveDate::parse_from_str(s, "%Y-%m-%d")?.to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Value::Date(d) => d.to_sql(ty, out),
            Value::Timestamp(t) => match *ty {
                Type::TIMESTAMPTZ => Utc.from_utc_datetime(t).to_sql(ty, out),
                _ => t.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// Decodes PostgreSQL's binary NUMERIC (base-10000 digits), as SUM() returns it: an integer when it
/// has no fractional part, else a float.
fn numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |i: usize| -> Result<i16, BoxError> {
        let b = raw.get(i..i + 2).ok_or("truncated numeric")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign) = (word(0)?, word(2)?, word(4)? as u16);
    if sign == 0xC000 {
        return Ok(Value::Null); // NaN
    }
    let mut value = 0f64;
    for i in 0..ndigits.max(0) as usize {
        let digit = f64::from(word(8 + 2 * i)?);
        value += digit * 10000f64.powi(i32::from(weight) - i as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    Ok(if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::Int(value as i64)
    } else {
        Value::Float(value)
    })
}

/// Reads any column we use into our `Value`.
struct PgCell(Value);

impl<'a> FromSql<'a> for PgCell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let v = match *ty {
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
            Type::JSON | Type::JSONB => {
                Value::Text(serde_json::Value::from_sql(ty, raw)?.to_string())
            }
            Type::UUID => Value::Text(uuid::Uuid::from_sql(ty, raw)?.to_string()),
            Type::DATE => Value::Date(NaiveDate::from_sql(ty, raw)?),
            Type::TIMESTAMP => Value::Timestamp(NaiveDateTime::from_sql(ty, raw)?),
            Type::TIMESTAMPTZ => Value::Timestamp(DateTime::<Utc>::from_sql(ty, raw)?.naive_utc()),
            Type::NUMERIC => numeric(raw)?,
            _ if <String as FromSql>::accepts(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => {
                return Err(format!(
                    "column type {ty} is not supported; cast it to text or bigint in the query"
                )
                .into())
            }
        };
        Ok(PgCell(v))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(PgCell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl Tx for PgSession {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> DbResult<u64> {
        let stmt = self.statement(sql)?;
        let wrapped: Vec<PgParam> = params.iter().map(PgParam).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.client.execute(&stmt, &refs).map_err(map_err)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> DbResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let wrapped: Vec<PgParam> = params.iter().map(PgParam).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&stmt, &refs).map_err(map_err)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, PgCell>(i).map(|c| c.0).map_err(map_err))
                    .collect()
            })
            .collect()
    }
}

impl Session for PgSession {
    fn begin(&mut self, read_only: bool) -> DbResult<()> {
        let sql = if read_only {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            "BEGIN"
        };
        self.client.batch_execute(sql).map_err(map_err)
    }

    fn commit(&mut self) -> DbResult<()> {
        self.client.batch_execute("COMMIT").map_err(map_err)
    }

    fn rollback(&mut self) -> DbResult<()> {
        self.client.batch_execute("ROLLBACK").map_err(map_err)
    }

    fn try_lock(&mut self) -> DbResult<bool> {
        let v = self.query_scalar(
            "SELECT CAST(pg_try_advisory_lock(?) AS INT)",
            &[Value::Int(LOCK_KEY)],
        )?;
        Ok(v.as_i64() == Some(1))
    }

    fn unlock(&mut self) -> DbResult<()> {
        self.execute("SELECT pg_advisory_unlock(?)", &[Value::Int(LOCK_KEY)])
            .map(|_| ())
    }

    fn lock_holder(&mut self) -> Option<String> {
        let sql = "SELECT a.pid, COALESCE(a.application_name, ''), COALESCE(CAST(a.client_addr AS TEXT), 'local') \
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                   WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                   AND CAST(l.classid AS BIGINT) = ? AND CAST(l.objid AS BIGINT) = ?";
        let (hi, lo) = (LOCK_KEY >> 32, LOCK_KEY & 0xffff_ffff);
        let rows = self.query(sql, &[Value::Int(hi), Value::Int(lo)]).ok()?;
        let row = rows.into_iter().next()?;
        Some(format!(
            "server pid {} ({}, from {})",
            row[0].as_i64().unwrap_or(0),
            row[1].as_str().unwrap_or(""),
            row[2].as_str().unwrap_or("?")
        ))
    }

    fn migrate_ledger(&mut self) -> DbResult<()> {
        super::run_ledger_schema(ledger_schema::migrations::runner(), &mut self.client)
    }

    fn set_statement_timeout(&mut self, timeout: Option<Duration>) -> DbResult<()> {
        let ms = timeout.map_or(0, |t| t.as_millis());
        self.client
            .batch_execute(&format!("SET statement_timeout = {ms}"))
            .map_err(map_err)
    }

    fn describe(&self) -> String {
        self.redacted.clone()
    }
}
