//! PostgreSQL driver (`tokio-postgres`, each request driven to its end on the session's own
//! single-threaded runtime).

mod errors;
mod health;
mod io;
mod ledger_schema;
mod values;

use super::url::{SessionAttrs, TlsMode};
use super::{
    number_placeholders, DbError, DbResult, Dialect, ErrorKind, Identity, Row, Session, Target, Tx,
    Value,
};
use errors::{map_err, with_causes};
use io::Io;
use postgres::types::Type;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use values::{PgCell, PgParam};

/// No named prepared statement and no session state is ever used, so every command works through a
/// transaction- or statement-pooling PgBouncer (1.18 has no prepared statements in transaction mode:
/// "s1" lands on another server connection). Each statement goes out as the unnamed statement with
/// its parameters as untyped text, in one round trip: the server infers every parameter's type from
/// the SQL, exactly as for a prepared statement, and parses the text with that type's input function.
pub(crate) struct PgSession {
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

impl PgSession {
    /// Connects to the first host of the URL that answers and has the `target_session_attrs` asked
    /// for, in the URL's order, as libpq does.
    pub(super) fn connect(target: &Target) -> DbResult<Self> {
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
        let mut config = driver_config(url)?;
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
        // Without parameters a `?` is SQL (jsonb's operator, a quoted body), never a placeholder.
        let sql = if params.is_empty() {
            sql.to_string()
        } else {
            number_placeholders(sql)
        };
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

/// The driver's settings for one host's URL, with our bounds on a server that stops answering.
fn driver_config(url: &str) -> DbResult<tokio_postgres::Config> {
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
    config.application_name(application_name());
    Ok(config)
}

/// How each session of this process names itself, so it can tell its own sessions from others.
fn application_name() -> String {
    format!("backfill pid {}", std::process::id())
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
        // A write transaction is a batch (or a short ledger write): one key range, whose estimated
        // cost still passes `jit_above_cost`, so the server compiled each batch's expressions anew,
        // 27–74 ms a batch at 1M competencies, for a statement that runs a few hundred ms
        // (BENCHMARKS.md, "JIT"). Reads (plan, verify) keep the server's setting. `jit` is 11+.
        let begin = if read_only {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            "BEGIN;SET LOCAL jit = off"
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
        ledger_schema::ddl(table)
    }

    fn migrate_ledger(&mut self) -> DbResult<()> {
        ledger_schema::migrate(self)
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

    fn vacuuming(&mut self, tables: &[&str]) -> DbResult<Vec<String>> {
        health::vacuuming(self, tables)
    }

    fn archive_backlog(&mut self) -> DbResult<Option<u64>> {
        health::archive_backlog(self)
    }

    fn waiting_on_us(&mut self) -> DbResult<u64> {
        health::waiting_on_us(self, &application_name())
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
