//! PostgreSQL driver (`tokio-postgres`, each request driven to its end on the session's own
//! single-threaded runtime).

use super::url::{SessionAttrs, TlsMode};
use super::{
    number_placeholders, DbError, DbResult, Dialect, ErrorKind, Identity, Row, Session, Target, Tx,
    Value,
};
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use postgres::types::{Format, FromSql, IsNull, ToSql, Type};
use std::error::Error as StdError;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

mod ledger_schema {
    refinery::embed_migrations!("schema/ledger/postgres");
}

/// No named prepared statement and no session state is ever used, so every command works through a
/// transaction- or statement-pooling PgBouncer (1.18 has no prepared statements in transaction mode:
/// "s1" lands on another server connection). Each statement goes out as the unnamed statement with
/// its parameters as untyped text, in one round trip: the server infers every parameter's type from
/// the SQL, exactly as for a prepared statement, and parses the text with that type's input function.
pub struct PgSession {
    io: Io,
    client: Client,
    /// `SET LOCAL` lines that start every transaction (search_path, timeouts): a plain `SET` would
    /// stay on whichever pooled server connection ran it.
    locals: String,
    /// `SET LOCAL search_path = …;` for the target's schemas, or empty.
    search_path: String,
    in_tx: bool,
    /// (when, WAL position) after our batches, for replica lag: how long ago the oldest write that a
    /// replica has not replayed was made.
    wal_marks: std::collections::VecDeque<(std::time::Instant, i64)>,
}

/// How requests wait. The driver's own blocking client checks its connection before the request, so
/// a pooler's last words (PgBouncer's `query_wait_timeout`, "transaction blocks not allowed in
/// statement pooling mode") were lost as "connection closed", and a request waiting in a full pool
/// could not be given up: here each request is polled itself, on a runtime of the session's own.
struct Io {
    rt: tokio::runtime::Runtime,
    redacted: String,
    /// How long a transaction may wait to start: the statement timeout.
    start_limit: Option<Duration>,
    /// Set once a wait was given up: the connection may still sit in a pooler's queue, so nothing
    /// more is sent on it.
    abandoned: Option<DbError>,
    /// The server's or pooler's last words (a FATAL error) before it closed the connection: what a
    /// later "connection closed" really means, when a caller took the first error as "no ledger".
    fatal: Option<DbError>,
}

/// How often a waiting request looks at the signals and the clock.
const TICK: Duration = Duration::from_millis(100);
/// A signal gives up a transaction's start that has waited this long.
const SIGNAL_AFTER: Duration = Duration::from_millis(500);
/// After this long without a server for a new transaction, the run says it is waiting for one.
const POOL_NOTE: Duration = Duration::from_secs(3);

impl Io {
    /// Drives one request to its end. One that starts a transaction (or runs outside one) may wait in
    /// a pooler's queue for a server connection (PgBouncer's pool full), where the server's own
    /// timeouts cannot act: it says so after a few seconds, gives up at the statement timeout, and
    /// on SIGINT/SIGTERM. Inside a transaction the server's timeouts bound it, and a signal lets the
    /// batch finish.
    fn wait<T>(
        &mut self,
        starting: bool,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> DbResult<T> {
        if let Some(e) = &self.abandoned {
            return Err(e.clone());
        }
        let (limit, redacted) = (self.start_limit, self.redacted.as_str());
        let outcome = self.rt.block_on(async {
            let mut request = std::pin::pin!(request);
            let started = Instant::now();
            let mut noted = false;
            loop {
                match tokio::time::timeout(TICK, request.as_mut()).await {
                    Ok(done) => return Ok(done),
                    Err(_) if !starting => continue,
                    Err(_) => {}
                }
                let waited = started.elapsed();
                if let Some(e) = given_up(waited, limit, redacted) {
                    return Err(e);
                }
                if !noted && waited >= POOL_NOTE {
                    noted = true;
                    tracing::warn!(
                        "no answer from {redacted} for {}s: waiting for a server connection from the pooler (its pool is full) or for a busy server; giving up after {}",
                        waited.as_secs(),
                        limit.map_or("the pooler's own timeout".into(), |l| format!("{}s (--statement-timeout)", l.as_secs()))
                    );
                }
            }
        });
        match outcome {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(self.closed_by(e)),
            Err(e) => {
                self.abandoned = Some(e.clone());
                Err(e)
            }
        }
    }
}

impl Io {
    fn closed_by(&mut self, e: tokio_postgres::Error) -> DbError {
        let fatal = e
            .as_db_error()
            .is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"));
        let closed = e.is_closed();
        let mapped = map_err(e);
        if fatal {
            self.fatal = Some(mapped.clone());
        }
        match &self.fatal {
            Some(last_words) if closed => last_words.clone(),
            _ => mapped,
        }
    }
}

/// Why a request waiting to start is given up, if it is: a signal, or the statement timeout.
fn given_up(waited: Duration, limit: Option<Duration>, redacted: &str) -> Option<DbError> {
    // A transaction that starts at once is let be: the runner records how the run ended with it.
    if let Some(sig) = crate::signals::requested().filter(|_| waited >= SIGNAL_AFTER) {
        return Some(DbError::new(
            ErrorKind::Interrupted,
            format!("interrupted by signal {sig} while waiting for a server connection"),
        ));
    }
    let limit = limit.filter(|l| waited >= *l)?;
    Some(DbError::new(
        ErrorKind::Timeout,
        format!(
            "postgres: no server connection from {redacted} within {}s (--statement-timeout): a pooler in front of the server (PgBouncer) has no free server connection for this database; retry when the app's load drops, or raise the pool's size (default_pool_size)",
            limit.as_secs()
        ),
    ))
}

/// What PgBouncer's own errors mean for a run.
fn pooler_hint(message: &str) -> &'static str {
    if message.contains("statement pooling mode") {
        " (the pooler runs pool_mode = statement, which cannot run transactions, and every batch is one: connect through a pool in pool_mode = transaction or session, or to the server directly)"
    } else if message.contains("query_wait_timeout") {
        " (the pooler gave up waiting for a free server connection: its pool for this database is full; retry when the app's load drops, or raise default_pool_size)"
    } else {
        ""
    }
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

fn map_err(e: tokio_postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let kind = match code {
            "28P01" | "28000" | "3D000" | "42501" => ErrorKind::Config,
            "57014" | "55P03" => ErrorKind::Timeout,
            "40001" | "40P01" => ErrorKind::Conflict,
            "25006" => ErrorKind::Config,
            "57P01" | "57P02" | "57P03" => ErrorKind::Connection,
            _ => ErrorKind::Query,
        };
        let hint = match code {
            "28P01" | "28000" => " (check the user and password in the database URL)",
            "3D000" => " (create the database or fix its name in the database URL)",
            "42501" => " (this user lacks a privilege backfill needs here: grant it, or connect as the app's migration user)",
            "25006" => " (the server or this user's default transaction is read-only: connect to the primary, or as a user that may write)",
            "42P01" => " (is the database URL the app's database, and have its schema migrations run?)",
            "57014" | "55P03" => " (another session may hold a lock on a table it needs, or the batch is too big: check pg_stat_activity for blockers, then rerun, raise --statement-timeout or lower --batch-size)",
            _ => pooler_hint(db.message()),
        };
        let kind = if db.message().contains("statement pooling mode") {
            ErrorKind::Config
        } else {
            kind
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
        " (check sslmode/sslrootcert in the database URL)"
    } else {
        ""
    };
    DbError::new(kind, format!("postgres: {text}{hint}"))
}

impl PgSession {
    /// Connects to the first host of the URL that answers and has the `target_session_attrs` asked
    /// for, in the URL's order, as libpq does.
    pub fn connect(target: &Target) -> DbResult<Self> {
        let urls = target.secret_urls();
        let mut refused = Vec::new();
        let mut kind = ErrorKind::Connection;
        for (place, url) in &urls {
            let found = Self::connect_one(target, url).and_then(|mut s| {
                let unfit = s.unfit(target.session_attrs)?;
                Ok((s, unfit))
            });
            match found {
                Ok((s, None)) => return Ok(s),
                Ok((_, Some(why))) => refused.push(format!("{place} {why}")),
                Err(e) if urls.len() == 1 || e.kind == ErrorKind::Interrupted => {
                    return Err(DbError::connecting(target, e))
                }
                Err(e) => {
                    // A wrong password or database name is wrong on every host.
                    kind = e.kind;
                    refused.push(format!("{place}: {}", e.message));
                }
            }
        }
        let wanted = match target.session_attrs {
            SessionAttrs::ReadWrite => " accepts writes (target_session_attrs=read-write)",
            SessionAttrs::Primary => " is a primary (target_session_attrs=primary)",
            SessionAttrs::Any => " answers",
        };
        Err(DbError::new(
            if kind == ErrorKind::Config {
                kind
            } else {
                ErrorKind::Connection
            },
            format!(
                "cannot connect to {}: no host{wanted}: {}",
                target.redacted,
                refused.join("; ")
            ),
        ))
    }

    /// Why this server is not one `attrs` accepts (`None`: it is).
    fn unfit(&mut self, attrs: SessionAttrs) -> DbResult<Option<&'static str>> {
        if attrs == SessionAttrs::Any {
            return Ok(None);
        }
        let row = self.query(
            "SELECT CAST(pg_is_in_recovery() AS INT), current_setting('default_transaction_read_only')",
            &[],
        )?;
        let cell = |i: usize| row.first().and_then(|r| r.get(i)).cloned();
        if cell(0).and_then(|v| v.as_i64()) == Some(1) {
            return Ok(Some("is a standby (in recovery)"));
        }
        let read_only = cell(1).and_then(|v| v.as_str().map(|v| v == "on")) == Some(true);
        Ok((attrs == SessionAttrs::ReadWrite && read_only)
            .then_some("is read-only (default_transaction_read_only = on)"))
    }

    fn connect_one(target: &Target, url: &str) -> DbResult<Self> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            DbError::new(
                ErrorKind::Config,
                format!("malformed postgres URL: {}", with_causes(&e)),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A server (or a network) that stops answering must fail a run, not hang it.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .tcp_user_timeout(Duration::from_secs(60));
        config.application_name(format!("backfill pid {}", std::process::id()));
        let tls = super::tls::pg_client_config(&target.tls)?;
        let mode = match (&tls, target.tls.mode) {
            (None, _) => SslMode::Disable,
            (Some(_), TlsMode::Prefer) => SslMode::Prefer,
            (Some(_), _) => SslMode::Require,
        };
        config.ssl_mode(mode);
        // The driver bounds the TCP connect only; a listener that accepts and never answers would
        // hold the startup handshake forever. Connect on a thread and stop waiting, on time or on
        // SIGINT/SIGTERM.
        let connected = super::bounded_connect(CONNECT_LIMIT, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| DbError::new(ErrorKind::Connection, format!("postgres: {e}")))?;
            // The connection runs as a task of the runtime, whenever a request is driven on it.
            let client = match tls {
                None => rt
                    .block_on(config.connect(NoTls))
                    .map(|(client, connection)| {
                        rt.spawn(connection);
                        client
                    }),
                Some(tls) => rt
                    .block_on(config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
                    .map(|(client, connection)| {
                        rt.spawn(connection);
                        client
                    }),
            };
            client.map(|c| (rt, c)).map_err(map_err)
        });
        let (rt, client) = connected??;
        Ok(PgSession {
            io: Io {
                rt,
                redacted: target.redacted.clone(),
                start_limit: None,
                abandoned: None,
                fatal: None,
            },
            client,
            locals: search_path_sql(target.search_path.as_deref()),
            search_path: search_path_sql(target.search_path.as_deref()),
            in_tx: false,
            wal_marks: std::collections::VecDeque::new(),
        })
    }

    /// Runs one statement as the unnamed statement; outside a transaction, inside a short one of its
    /// own when timeouts are set, so they hold through a pooler too.
    fn run<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        read: impl FnOnce(Vec<tokio_postgres::Row>, u64) -> DbResult<T>,
    ) -> DbResult<T> {
        let wrap = !self.in_tx && !self.locals.is_empty();
        if wrap {
            self.begin(false)?;
        }
        let typed: Vec<(PgParam, Type)> =
            params.iter().map(|v| (PgParam(v), Type::UNKNOWN)).collect();
        let sql = number_placeholders(sql);
        let client = &self.client;
        let request = async move {
            use futures_util::TryStreamExt;
            let stream = client.query_typed_raw(&sql, typed).await?;
            let mut stream = std::pin::pin!(stream);
            let mut rows = Vec::new();
            while let Some(row) = stream.try_next().await? {
                rows.push(row);
            }
            Ok((rows, stream.rows_affected().unwrap_or(0)))
        };
        let result = self
            .io
            .wait(!self.in_tx, request)
            .and_then(|(rows, affected)| read(rows, affected));
        if wrap {
            match &result {
                Ok(_) => self.commit()?,
                Err(_) => {
                    let _ = self.rollback();
                }
            }
        }
        result
    }
}

impl PgSession {
    /// Statements in the simple query protocol, no rows back.
    fn batch(&mut self, sql: &str) -> DbResult<()> {
        self.io.wait(!self.in_tx, self.client.batch_execute(sql))
    }
}

/// `SET LOCAL search_path = "app", "public";` for a search_path as the URL, the `.env` or `--schema`
/// give it: each name quoted (an unquoted one lowercased, as the server reads it).
fn search_path_sql(path: Option<&str>) -> String {
    let Some(path) = path else {
        return String::new();
    };
    let names: Vec<String> = path
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let inner = n.strip_prefix('"').and_then(|n| n.strip_suffix('"'));
            match inner {
                Some(i) if !i.replace("\"\"", "").contains('"') => n.to_string(),
                _ => format!("\"{}\"", n.to_lowercase().replace('"', "\"\"")),
            }
        })
        .collect();
    format!("SET LOCAL search_path = {};", names.join(", "))
}

/// How long connecting (TCP, TLS and the startup handshake) may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// Sends our `Value` as whatever type the server inferred for the parameter.
#[derive(Debug)]
struct PgParam<'a>(&'a Value);

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for PgParam<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let text = match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(s) => s.clone(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            // UTC: a timestamptz reads the zone, a timestamp ignores it.
            Value::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string(),
        };
        out.extend_from_slice(text.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
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
        self.run(sql, params, |_, affected| Ok(affected))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> DbResult<Vec<Row>> {
        let rows = self.run(sql, params, |rows, _| Ok(rows))?;
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
        let begin = if read_only {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            "BEGIN"
        };
        self.batch(&format!("{begin};{}", self.locals))?;
        self.in_tx = true;
        Ok(())
    }

    fn commit(&mut self) -> DbResult<()> {
        let done = self.batch("COMMIT");
        self.in_tx = false;
        done
    }

    fn rollback(&mut self) -> DbResult<()> {
        let done = self.batch("ROLLBACK");
        self.in_tx = false;
        done
    }

    fn identity(&mut self) -> DbResult<Identity> {
        // The cluster's system identifier names it however it is reached (127.0.0.1, ::1, a Unix
        // socket, PgBouncer). Where a user may not read it, the address the server reports
        // (through PgBouncer, the server PgBouncer reached).
        let cluster = self
            .query_scalar(
                "SELECT 'cluster ' || CAST(system_identifier AS TEXT) FROM pg_control_system()",
                &[],
            )
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        let row = self.query(
            "SELECT current_database(), COALESCE(?, COALESCE(host(inet_server_addr()), 'local') || ':' || \
             COALESCE(CAST(inet_server_port() AS TEXT), '')) || '/' || \
             CAST((SELECT oid FROM pg_database WHERE datname = current_database()) AS TEXT)",
            &[cluster.into()],
        )?;
        let cell = |i: usize| {
            row.first()
                .and_then(|r| r.get(i))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Identity {
            dialect: Dialect::Postgres,
            database: cell(0),
            server: cell(1),
        })
    }

    fn ledger_ddl(&self, table: &str) -> String {
        super::ledger_statements(ledger_schema::migrations::runner(), table)
    }

    fn migrate_ledger(&mut self) -> DbResult<()> {
        super::run_ledger_schema(
            ledger_schema::migrations::runner(),
            &mut SimpleProtocol(self),
        )
    }

    fn set_timeouts(
        &mut self,
        statement: Option<Duration>,
        lock_wait: Option<Duration>,
    ) -> DbResult<()> {
        self.io.start_limit = statement;
        let ms = |t: Option<Duration>| t.map_or(0, |t| t.as_millis().max(1));
        self.locals = format!(
            "{}SET LOCAL statement_timeout = {};SET LOCAL lock_timeout = {}",
            self.search_path,
            ms(statement),
            ms(lock_wait)
        );
        Ok(())
    }

    fn describe(&self) -> String {
        self.io.redacted.clone()
    }

    fn replica_lag(&mut self) -> DbResult<Option<Duration>> {
        // replay_lag alone is measured only when replay passes a point, so it does not grow while a
        // standby is paused or stuck: compare positions too, aging the positions after our batches.
        // Before our first batch there is no position of ours to age, so the server's replay_lag (as
        // last measured) counts as well: a standby already far behind is waited for at once.
        let rows = self.query(
            "SELECT CAST(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS BIGINT), \
             CAST(MIN(pg_wal_lsn_diff(replay_lsn, '0/0')) AS BIGINT), \
             CAST(COALESCE(EXTRACT(EPOCH FROM MAX(replay_lag)) * 1000, 0) AS BIGINT) FROM pg_stat_replication",
            &[],
        )?;
        let cell = |i: usize| rows.first().and_then(|r| r.get(i)).and_then(Value::as_i64);
        let (Some(now), Some(replayed)) = (cell(0), cell(1)) else {
            return Ok(None); // no replicas, or not allowed to see their positions
        };
        self.wal_marks.push_back((std::time::Instant::now(), now));
        while self
            .wal_marks
            .front()
            .is_some_and(|(_, lsn)| *lsn <= replayed)
        {
            self.wal_marks.pop_front();
        }
        let ours = self
            .wal_marks
            .front()
            .map_or(Duration::ZERO, |(at, _)| at.elapsed());
        let reported = Duration::from_millis(cell(2).unwrap_or(0).max(0) as u64);
        Ok(Some(ours.max(reported)))
    }

    fn ledger_place(&mut self) -> DbResult<Option<super::LedgerPlace>> {
        let row = self.query(
            "SELECT current_database(), current_schema(), \
             (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE 'backfill%'), \
             (SELECT string_agg(n.nspname, ',' ORDER BY n.nspname) FROM pg_class c \
              JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relname = 'backfill_schema_history' AND c.relkind IN ('r', 'p') \
              AND n.nspname IS DISTINCT FROM current_schema())",
            &[],
        )?;
        let cell = |i: usize| row.first().and_then(|r| r.get(i)).cloned();
        let text = |i: usize| cell(i).and_then(|v| v.as_str().map(str::to_string));
        Ok(Some(super::LedgerPlace {
            database: text(0).unwrap_or_default(),
            schema: text(1),
            tables: cell(2).and_then(|v| v.as_i64()).unwrap_or(0),
            ledgers: text(3)
                .map(|l| l.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        }))
    }

    fn hidden_replicas(&mut self) -> DbResult<i64> {
        // Without pg_read_all_stats (pg_monitor has it) every column but the pid is NULL.
        let n = self.query_scalar(
            "SELECT count(*) FROM pg_stat_replication WHERE state IS NULL",
            &[],
        )?;
        Ok(n.as_i64().unwrap_or(0))
    }

    fn write_position(&mut self) -> DbResult<Option<i64>> {
        let at = self.query_scalar(
            "SELECT CASE WHEN pg_is_in_recovery() THEN NULL \
             ELSE CAST(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS BIGINT) END",
            &[],
        )?;
        Ok(at.as_i64())
    }

    fn replica_state(&mut self) -> DbResult<super::ReplicaState> {
        let rows = self.query(
            "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END, \
             CAST(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0') AS BIGINT)",
            &[],
        )?;
        let row = rows.first();
        let standby = row.and_then(|r| r.first()).and_then(Value::as_i64) == Some(1);
        Ok(match row.and_then(|r| r.get(1)).and_then(Value::as_i64) {
            _ if !standby => super::ReplicaState::NotAReplica,
            Some(replayed) => super::ReplicaState::Applied(replayed),
            None => super::ReplicaState::Stopped("the standby has replayed no WAL".into()),
        })
    }
}

/// refinery's own PostgreSQL driver reads its history table with a named prepared statement, which
/// fails through a transaction-pooling PgBouncer; this one uses only the simple query protocol, each
/// statement in a transaction that starts with the session's `SET LOCAL`s.
struct SimpleProtocol<'a>(&'a mut PgSession);

impl refinery_core::traits::sync::Transaction for SimpleProtocol<'_> {
    type Error = DbError;

    fn execute<'a, T: Iterator<Item = &'a str>>(&mut self, queries: T) -> DbResult<usize> {
        let session = &mut *self.0;
        session.begin(false)?;
        let mut count = 0;
        for query in queries {
            if let Err(e) = session.batch(query) {
                let _ = session.rollback();
                return Err(e);
            }
            count += 1;
        }
        session.commit()?;
        Ok(count)
    }
}

impl refinery_core::traits::sync::Query<Vec<refinery::Migration>> for SimpleProtocol<'_> {
    fn query(&mut self, query: &str) -> DbResult<Vec<refinery::Migration>> {
        use tokio_postgres::SimpleQueryMessage;
        let session = &mut *self.0;
        session.begin(true)?;
        let messages = session.io.wait(false, session.client.simple_query(query));
        let _ = session.rollback();
        let bad = |what: &str| DbError::query(format!("backfill_schema_history has a bad {what}"));
        let mut applied = Vec::new();
        for message in messages? {
            let SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            let cell = |i: usize| row.get(i).unwrap_or_default();
            let version = cell(0).parse().map_err(|_| bad("version"))?;
            let on = time::OffsetDateTime::parse(
                cell(2),
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| bad("applied_on"))?;
            let checksum = cell(3).parse().map_err(|_| bad("checksum"))?;
            applied.push(refinery::Migration::applied(
                version,
                cell(1).to_string(),
                on,
                checksum,
            ));
        }
        Ok(applied)
    }
}

impl refinery::Migrate for SimpleProtocol<'_> {}
