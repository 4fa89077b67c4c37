//! Health throttles: hold the next batch while the server is busy with something a backfill should
//! not compete with (GitLab's batched migrations and gh-ost's `--max-load` do the same): too many
//! running threads (MySQL/MariaDB), a VACUUM on a table the migration walks or writes, WAL waiting
//! for the archiver, sessions queued behind our batches' locks (PostgreSQL), or the operator's own
//! `--throttle-sql`.
//!
//! One thread per run looks, on a connection of its own, at most every `--throttle-every` ms; the
//! batch loops only read what it last found, so a look never lengthens a batch.

use crate::db::{Dialect, Session, Value};
use crate::engine::options::Connector;
use crate::error::{Error, Result};
use crate::registry::Registered;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How often the health is read when `--throttle-every` is not given.
pub(crate) const DEFAULT_EVERY: Duration = Duration::from_secs(1);

/// The health throttles asked for (`--max-threads-running`, `--throttle-vacuum`,
/// `--max-wal-pending`, `--throttle-lock-waits`, `--throttle-sql`); all off by default.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_threads_running: Option<u64>,
    pub vacuum: bool,
    pub max_wal_pending: Option<u64>,
    pub lock_waits: bool,
    pub sql: Option<String>,
    pub every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_threads_running: None,
            vacuum: false,
            max_wal_pending: None,
            lock_waits: false,
            sql: None,
            every: DEFAULT_EVERY,
        }
    }
}

/// What holds the run now: a metric label (`kind`) and the words for the progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub kind: &'static str,
    pub text: String,
}

impl Found {
    fn new(kind: &'static str, text: String) -> Self {
        Found { kind, text }
    }
}

impl Limits {
    fn any(&self) -> bool {
        self.max_threads_running.is_some()
            || self.vacuum
            || self.max_wal_pending.is_some()
            || self.lock_waits
            || self.sql.is_some()
    }

    /// A throttle this server cannot have is a mistake to say, not one to ignore.
    fn refuse_elsewhere(&self, dialect: Dialect) -> Result<()> {
        let postgres = [
            (self.vacuum, "--throttle-vacuum"),
            (self.max_wal_pending.is_some(), "--max-wal-pending"),
            (self.lock_waits, "--throttle-lock-waits"),
        ];
        let mysql = [(self.max_threads_running.is_some(), "--max-threads-running")];
        let wrong = match dialect {
            Dialect::Postgres => mysql.iter().find(|(on, _)| *on),
            Dialect::Mysql => postgres.iter().find(|(on, _)| *on),
            Dialect::Sqlite => postgres.iter().chain(mysql.iter()).find(|(on, _)| *on),
        };
        match wrong {
            Some((_, flag)) => Err(Error::Usage(format!(
                "{flag} is for {}, and this database is {dialect:?}; leave it out",
                if mysql.iter().any(|(_, f)| f == flag) {
                    "MySQL/MariaDB"
                } else {
                    "PostgreSQL"
                }
            ))),
            None => Ok(()),
        }
    }

    /// One look: the first thing that should hold the run, if any.
    fn look(&self, s: &mut dyn Session, tables: &[String]) -> Result<Option<Found>> {
        if let Some(max) = self.max_threads_running {
            let running = s
                .threads_running()
                .map_err(|e| failed("Threads_running", e))?;
            if let Some(n) = running.filter(|n| *n > max) {
                let text = format!("Threads_running {n} > --max-threads-running {max}");
                return Ok(Some(Found::new("threads_running", text)));
            }
        }
        if self.vacuum {
            let names: Vec<&str> = tables.iter().map(String::as_str).collect();
            let busy = s.vacuuming(&names).map_err(|e| failed("VACUUM", e))?;
            if !busy.is_empty() {
                let text = format!("VACUUM running on {}", busy.join(", "));
                return Ok(Some(Found::new("vacuum", text)));
            }
        }
        if let Some(max) = self.max_wal_pending {
            let pending = s
                .archive_backlog()
                .map_err(|e| failed("WAL archiving", e))?;
            if let Some(n) = pending.filter(|n| *n > max) {
                let text = format!("{n} WAL segments not archived > --max-wal-pending {max}");
                return Ok(Some(Found::new("wal_archive", text)));
            }
        }
        if self.lock_waits {
            let n = s.waiting_on_us().map_err(|e| failed("lock waits", e))?;
            if n > 0 {
                let text = format!("{} waited on our batch's locks", sessions(n));
                return Ok(Some(Found::new("lock_waits", text)));
            }
        }
        match &self.sql {
            Some(sql) if throttle_sql(s, sql)? => Ok(Some(Found::new(
                "throttle_sql",
                "--throttle-sql says wait".into(),
            ))),
            _ => Ok(None),
        }
    }
}

fn sessions(n: u64) -> String {
    crate::engine::text::count(n, "session")
}

fn failed(what: &str, e: crate::db::DbError) -> Error {
    Error::from_db(
        &e,
        format!("reading {what} for the health throttles failed: {e}; grant this user pg_monitor (PostgreSQL) or PROCESS (MySQL/MariaDB), or leave the flag out"),
    )
}

/// `--throttle-sql`: its first row's first column, true (non-zero, `t`, `true`, `yes`) to wait.
fn throttle_sql(s: &mut dyn Session, sql: &str) -> Result<bool> {
    let rows = s.query(sql, &[]).map_err(|e| {
        let text = format!("--throttle-sql failed: {e}; give a SELECT whose first column is true while the run should wait");
        // A query the server refuses is the operator's to fix (exit 2), as a bad flag is.
        match e.kind {
            crate::db::ErrorKind::Connection => Error::Runtime(text),
            _ => Error::Usage(text),
        }
    })?;
    Ok(match rows.first().and_then(|r| r.first()) {
        Some(Value::Int(n)) => *n != 0,
        Some(Value::Float(f)) => *f != 0.0,
        Some(Value::Text(t)) => matches!(
            t.trim().to_ascii_lowercase().as_str(),
            "t" | "true" | "1" | "yes" | "on"
        ),
        _ => false,
    })
}

/// The tables a run of `reg` walks or writes, as far as the migration says: the key it walks and,
/// for an INSERT shape, the table its revert walks (the one it writes).
pub(crate) fn tables_of(reg: &Registered) -> Vec<String> {
    let mut tables = vec![reg.migration.key().table.to_string()];
    if let Some(undo) = reg.migration.shape().insert_revert() {
        tables.push(undo.revert_key().table.to_string());
    }
    tables.dedup();
    tables
}

/// What the watching thread and the batch loops share.
#[derive(Default)]
struct Seen {
    found: Mutex<Option<Found>>,
    /// The run's tables, and how many times they were set.
    tables: Mutex<(Vec<String>, u64)>,
    /// The `tables` setting the last finished look used.
    looked: std::sync::atomic::AtomicU64,
    stop: AtomicBool,
}

/// The watching thread of one command; stopped when dropped.
pub(crate) struct Health {
    seen: Arc<Seen>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Health {
    /// Starts watching when any throttle is asked for. The first look happens before this returns,
    /// so a bad `--throttle-sql` or a missing privilege stops the command before it writes.
    pub(crate) fn start(
        limits: &Limits,
        connect: Option<&Connector>,
        dialect: Dialect,
    ) -> Result<Option<Health>> {
        if !limits.any() {
            return Ok(None);
        }
        limits.refuse_elsewhere(dialect)?;
        let connect = connect.cloned().ok_or_else(|| {
            Error::Usage(
                "the health throttles need a connection of their own, and this caller gives none"
                    .into(),
            )
        })?;
        let seen = Arc::new(Seen::default());
        let (first_tx, first_rx) = mpsc::channel();
        let (limits, shared) = (limits.clone(), Arc::clone(&seen));
        let thread = std::thread::spawn(move || watch(&limits, &connect, &shared, first_tx));
        let health = Health {
            seen,
            thread: Some(thread),
        };
        match first_rx.recv() {
            Ok(Ok(())) => Ok(Some(health)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Runtime(
                "the health throttles' thread stopped before its first look".into(),
            )),
        }
    }

    /// The tables of the run that starts now (a VACUUM on any of them holds it).
    /// Returns once a look with them has finished, so the run's first batch cannot slip past a
    /// VACUUM that was already running.
    pub(crate) fn watch_tables(&self, tables: Vec<String>) {
        let Ok(mut t) = self.seen.tables.lock() else {
            return;
        };
        *t = (tables, t.1 + 1);
        let wanted = t.1;
        drop(t);
        let Some(thread) = &self.thread else { return };
        thread.thread().unpark();
        // A look is bounded by its statement timeout (10 s).
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while self.seen.looked.load(Ordering::SeqCst) < wanted
            && !thread.is_finished()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What holds the run now, as the last look found.
    pub(crate) fn found(&self) -> Option<Found> {
        self.seen.found.lock().ok().and_then(|f| f.clone())
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.seen.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The watching thread: its own session (sessions never cross threads), one look per interval. A
/// look that fails holds the run (a health nobody can read must not pass for good health), and the
/// next look reconnects.
fn watch(limits: &Limits, connect: &Connector, seen: &Seen, first: mpsc::Sender<Result<()>>) {
    let mut session: Option<Box<dyn Session>> = None;
    let mut first = Some(first);
    while !seen.stop.load(Ordering::SeqCst) {
        let (tables, setting) = seen.tables.lock().map(|t| t.clone()).unwrap_or_default();
        let looked = look_once(limits, connect, &mut session, &tables);
        if let Some(first) = first.take() {
            // The first look's failure is the command's, before it writes anything.
            let (looked, answer) = match looked {
                Ok(found) => (found, Ok(())),
                Err(e) => (None, Err(e)),
            };
            let stop = answer.is_err();
            let _ = first.send(answer);
            if stop {
                return;
            }
            store(seen, looked, setting);
            std::thread::park_timeout(limits.every);
            continue;
        }
        let found = looked.unwrap_or_else(|e| {
            session = None;
            Some(Found::new(
                "health_unknown",
                format!("cannot read the server's health ({e})"),
            ))
        });
        store(seen, found, setting);
        std::thread::park_timeout(limits.every);
    }
}

fn store(seen: &Seen, found: Option<Found>, setting: u64) {
    if let Ok(mut f) = seen.found.lock() {
        *f = found;
    }
    seen.looked.store(setting, Ordering::SeqCst);
}

fn look_once(
    limits: &Limits,
    connect: &Connector,
    session: &mut Option<Box<dyn Session>>,
    tables: &[String],
) -> Result<Option<Found>> {
    if session.is_none() {
        let mut fresh = connect.open()?;
        // A look is short; one that hangs on a busy server must not hold the run for minutes.
        fresh.set_timeouts(Some(Duration::from_secs(10)), Some(Duration::from_secs(5)))?;
        *session = Some(fresh);
    }
    let Some(s) = session.as_mut() else {
        return Ok(None);
    };
    // A read-only transaction: the session's schema applies, and --throttle-sql cannot write.
    s.as_mut().snapshot(|s| limits.look(s, tables))
}
