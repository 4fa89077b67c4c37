//! The runner lock: a lease row in the ledger (`backfill_lease`), authoritative on every topology.
//!
//! Taken with a conditional UPDATE in its own short transaction, it conflicts through row locks on one
//! server and through certification on a Galera cluster, and it needs no session state, so it holds
//! through a transaction-pooling PgBouncer, where a session advisory lock stays on whichever pooled
//! connection ran it. It lives in the database itself, so the lock's identity is the database the
//! server selected, however the URL spelled it. Waiting polls, so `--lock-timeout` is exact and a
//! waiter never queues behind other sessions' DDL (Flyway #1654, golang-migrate #269).
//!
//! A lock is an optimisation; the guarantee is the fenced checkpoint (`ledger::claim`): a runner that
//! lost its lease cannot commit a batch.

use crate::db::{DbError, DbResult, Session, Value};
use crate::error::{Error, Result};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(100);

/// A holder that stops renewing (killed, lost its node, its host died) loses the lease after this
/// long. A holder on this host whose process is gone loses it at once.
const TTL_SECS: i64 = 60;

/// How often a holder renews: well inside the TTL.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// A lease we hold.
pub struct Lease {
    owner: String,
    /// Only the test suite turns the lock off (`hooks::no_lock`).
    disabled: bool,
    renewed: Instant,
}

fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Waits up to `timeout` for the lease, polling; exit 4 (`Error::Busy`) when it stays taken.
pub fn acquire(session: &mut dyn Session, timeout: Duration) -> Result<Lease> {
    let owner = uuid::Uuid::now_v7().to_string();
    let lease = Lease {
        owner,
        disabled: crate::engine::hooks::no_lock(),
        renewed: Instant::now(),
    };
    if lease.disabled {
        return Ok(lease);
    }
    let started = Instant::now();
    let mut announced = false;
    loop {
        if let Some(sig) = crate::signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        match try_take(session, &lease.owner) {
            Ok(true) => return Ok(lease),
            Ok(false) => {}
            // Another runner's take won certification, or its batch holds the row (or, on SQLite,
            // the file's write lock) past our lock wait: still taken, keep polling.
            Err(e) if e.is_conflict() || e.kind == crate::db::ErrorKind::Timeout => {}
            Err(e) => return Err(lock_error(e)),
        }
        let waited = started.elapsed();
        if waited >= timeout {
            let holder = holder(session)
                .map(|h| format!(" (held by {h})"))
                .unwrap_or_default();
            return Err(Error::Busy(format!(
                "another backfill runner holds the lock on {}{holder}; gave up after {}s; retry later or raise --lock-timeout",
                session.describe(),
                timeout.as_secs_f64()
            )));
        }
        if !announced {
            tracing::info!(
                "waiting up to {}s for another runner to finish",
                timeout.as_secs_f64()
            );
            announced = true;
        }
        std::thread::sleep(POLL.min(timeout - waited));
    }
}

fn lock_error(e: DbError) -> Error {
    let message = format!("taking the runner lock failed: {e}");
    if e.is_config() {
        Error::Usage(message)
    } else {
        Error::Runtime(message)
    }
}

/// One attempt: a free or expired lease, or one whose holder on this host is a dead process.
fn try_take(session: &mut dyn Session, owner: &str) -> DbResult<bool> {
    let now = session.dialect().epoch_now();
    let take = format!(
        "UPDATE backfill_lease SET owner_id = ?, host = ?, pid = ?, acquired_at = {now}, heartbeat_at = {now}, \
         expires_at = {now} + {TTL_SECS} WHERE name = 'runner'"
    );
    let mine = [
        Value::from(owner),
        host().into(),
        Value::Int(i64::from(std::process::id())),
    ];
    let free = format!("{take} AND (owner_id IS NULL OR expires_at < {now})");
    if session.execute(&free, &mine)? == 1 {
        return Ok(true);
    }
    let Some(h) = read_holder(session)? else {
        return Ok(false);
    };
    if h.host != host() || h.pid == i64::from(std::process::id()) || process_alive(h.pid) {
        return Ok(false);
    }
    // Compare-and-set on the holder we saw, so two waiters cannot both take over.
    let over = format!("{take} AND owner_id = ? AND pid = ?");
    let mut params = mine.to_vec();
    params.extend([Value::from(h.owner.as_str()), Value::Int(h.pid)]);
    let taken = session.execute(&over, &params)? == 1;
    if taken {
        tracing::info!(
            "took over the runner lock from pid {} on this host, which is no longer running",
            h.pid
        );
    }
    Ok(taken)
}

struct Holder {
    owner: String,
    host: String,
    pid: i64,
    age: i64,
}

fn read_holder(session: &mut dyn Session) -> DbResult<Option<Holder>> {
    let now = session.dialect().epoch_now();
    let rows = session.query(
        &format!(
            "SELECT owner_id, host, pid, {now} - heartbeat_at FROM backfill_lease \
             WHERE name = 'runner' AND owner_id IS NOT NULL"
        ),
        &[],
    )?;
    Ok(rows.into_iter().next().map(|r| Holder {
        owner: r[0].as_str().unwrap_or_default().to_string(),
        host: r[1].as_str().unwrap_or_default().to_string(),
        pid: r[2].as_i64().unwrap_or(0),
        age: r[3].as_i64().unwrap_or(0),
    }))
}

/// The host and pid of the runner that holds the lease now (unexpired): whether a run recorded as
/// theirs is alive.
pub(crate) fn live_holder(session: &mut dyn Session) -> DbResult<Option<(String, i64)>> {
    let now = session.dialect().epoch_now();
    let rows = session.query(
        &format!(
            "SELECT host, pid FROM backfill_lease WHERE name = 'runner' AND owner_id IS NOT NULL \
             AND expires_at >= {now}"
        ),
        &[],
    )?;
    let holder = rows.into_iter().next().map(|r| {
        let host = r[0].as_str().unwrap_or_default().to_string();
        (host, r[1].as_i64().unwrap_or(0))
    });
    // A holder on this host whose process is gone holds nothing (the next runner takes it at once).
    Ok(holder.filter(|(h, pid)| *h != host() || process_alive(*pid)))
}

/// Who holds the lock, for the "busy" message.
pub(crate) fn holder(session: &mut dyn Session) -> Option<String> {
    let h = read_holder(session).ok()??;
    Some(format!(
        "pid {} on {}, lock {}, last heartbeat {}s ago",
        h.pid, h.host, h.owner, h.age
    ))
}

/// Whether a process of this host still runs (a zombie does not count: it was killed and awaits its
/// parent). Unknown means alive: the lease then expires on its own.
fn process_alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    let proc_dir = std::path::Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return true;
    }
    match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| !matches!(state, "Z" | "X")),
        Err(_) => false,
    }
}

/// Extends the lease; between batches. A lease found in another's hands stops the run (exit 4).
pub(crate) fn renew(session: &mut dyn Session, lease: &mut Lease) -> Result<()> {
    if lease.disabled || lease.renewed.elapsed() < RENEW_EVERY {
        return Ok(());
    }
    let now = session.dialect().epoch_now();
    let sql = format!(
        "UPDATE backfill_lease SET heartbeat_at = {now}, expires_at = {now} + {TTL_SECS} \
         WHERE name = 'runner' AND owner_id = ?"
    );
    let kept =
        crate::engine::retry::conflicts(|| session.execute(&sql, &[lease.owner.as_str().into()]))
            .map_err(lock_error)?;
    if kept != 1 {
        let by = holder(session).unwrap_or_else(|| "nobody".into());
        return Err(Error::Busy(format!(
            "this runner lost the lock (it went {}s without renewing; now held by {by}); stopped after its last committed batch, rerun to go on",
            lease.renewed.elapsed().as_secs()
        )));
    }
    lease.renewed = Instant::now();
    Ok(())
}

/// Gives the lease back. If this fails (the connection is gone), it expires on its own, or at once
/// for a runner on this host once this process exits.
pub fn release(session: &mut dyn Session, lease: Lease) {
    if lease.disabled {
        return;
    }
    // Every column back to NULL: a command that took the lock and then refused leaves no trace.
    let sql =
        "UPDATE backfill_lease SET owner_id = NULL, host = NULL, pid = NULL, acquired_at = NULL, \
               heartbeat_at = NULL, expires_at = NULL WHERE name = 'runner' AND owner_id = ?";
    if let Err(e) =
        crate::engine::retry::conflicts(|| session.execute(sql, &[lease.owner.as_str().into()]))
    {
        tracing::debug!("releasing the runner lock failed: {e}");
    }
}
