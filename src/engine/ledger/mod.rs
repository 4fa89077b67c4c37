//! The ledger: `backfill_migrations` (one row per version ever started), `backfill_runs` (append-only
//! audit) and `backfill_chunks` (a parallel run's key ranges), one file per table. Portable SQL only;
//! the schema itself comes from `schema/ledger/<dialect>/` via refinery. The stored state words are
//! spelled once, in `states`; what a migration's state may become is asked of `transition`.

mod chunks;
pub(crate) mod control;
mod migrations;
mod runs;
mod states;
mod transition;

pub(crate) use chunks::chunks;
pub(crate) use chunks::{
    checkpoint_chunk, chunk_gap, claim_chunk, fence_chunk, fold_chunks, prepare_chunks,
    release_chunk, running_chunks, settle_run_rows, split_chunk, Chunk, ChunkMark, Prepared,
};
pub(crate) use control::{Live, Request, Requested, Tuning};
pub(crate) use migrations::{checkpoint, entries, entry, finish, start, Start};
pub(crate) use migrations::{claim, conclude, set_checksum, Ending, Entry};
pub(crate) use runs::{abandon_dead_runs, add_run_rows, finish_run, forgotten, insert_run, RunEnd};
pub(crate) use runs::{runs, Run};
pub(crate) use states::{Action, ChunkState, RunState, State};
pub(crate) use transition::{transition, working, Event, Refusal, Status};

/// One run's work on one migration in one direction: what every fenced write of a run is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunKey<'a> {
    pub version: i64,
    pub action: Action,
    pub run: &'a str,
}

use crate::db::{ErrorKind, Session, Value};
use crate::error::{Error, Result};
use chrono::{NaiveDateTime, Utc};
use std::str::FromStr;

/// The newest ledger schema version this binary knows (the highest `V<n>__` under `schema/ledger/`).
const LEDGER_SCHEMA: i64 = 8;

pub(crate) fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        other => Some(
            other
                .clone()
                .into_json()
                .to_string()
                .trim_matches('"')
                .to_string(),
        ),
    }
}

fn timestamp(v: &Value) -> Option<NaiveDateTime> {
    match v {
        Value::Timestamp(t) => Some(*t),
        Value::Text(s) => NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok(),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn ledger_error(what: &str, e: crate::db::DbError) -> Error {
    match e.kind {
        // The SQL itself failed: the table is not what this binary created (a dropped or renamed
        // column, a missing table). Rerunning cannot help; someone must repair the ledger.
        crate::db::ErrorKind::Query => Error::Ledger(format!(
            "the ledger table {what} is not as this binary expects ({e}); restore it from a backup or recreate it as in schema/ledger/ (ledger schema V{LEDGER_SCHEMA})"
        )),
        crate::db::ErrorKind::Config => Error::Usage(format!("reading the ledger ({what}) failed: {e}")),
        _ => Error::Runtime(format!("reading the ledger ({what}) failed: {e}")),
    }
}

/// The ledger schema version in the database; `None` when there is no ledger yet. A lost connection
/// or a refusal (a pooler that cannot run transactions) is an error, not "no ledger".
fn schema_version(session: &mut dyn Session) -> Result<Option<i64>> {
    match session.query_scalar("SELECT MAX(version) FROM backfill_schema_history", &[]) {
        Ok(v) => Ok(v.as_i64()),
        Err(e) if matches!(e.kind, ErrorKind::Query | ErrorKind::Timeout) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// True when the ledger tables exist at the schema version this binary expects.
pub(crate) fn is_current(session: &mut dyn Session) -> bool {
    schema_version(session).is_ok_and(|v| v == Some(LEDGER_SCHEMA))
}

/// Whether there is a ledger to read (read-only commands never create one: they must work on a hot
/// standby, and a refused or read-only look changes nothing).
pub(crate) fn readable(session: &mut dyn Session) -> Result<bool> {
    check_schema(session)?;
    Ok(schema_version(session)?.is_some())
}

/// For commands that only look: `status`, `verify`, `log`, `plan`. They never create a ledger (a
/// look must not leave an empty one where the app's tables are not, and must work on a hot standby);
/// they upgrade an older one when they can, and go on read-only with it where they may not write (a
/// standby, a SELECT-only CI user). Returns whether there is a ledger to read.
pub(crate) fn prepare_or_read(session: &mut dyn Session) -> Result<bool> {
    if check_schema(session)? {
        return Ok(true);
    }
    if schema_version(session)?.is_none() {
        check_place(session, false)?;
        return Ok(false);
    }
    match session.migrate_ledger() {
        Ok(()) => Ok(true),
        Err(e) if e.is_denied() => {
            tracing::debug!("not creating the ledger (read-only here): {e}");
            readable(session)
        }
        Err(_) => migrate(session).map(|_| true),
    }
}

/// For commands that only look: [`prepare_or_read`], then `read` the ledger if there is one; with
/// none (a standby before any run), what an empty ledger holds.
pub(crate) fn read_if_any<T: Default>(
    session: &mut dyn Session,
    read: impl FnOnce(&mut dyn Session) -> Result<T>,
) -> Result<T> {
    if prepare_or_read(session)? {
        read(session)
    } else {
        Ok(T::default())
    }
}

/// Where there is no ledger, refuses a schema that is not the app's (PostgreSQL): another schema of
/// this database holds the ledger (the connection's search_path misses the app's schema), or, to
/// create one (`creating`), this schema has none of the app's tables.
pub(crate) fn check_place(session: &mut dyn Session, creating: bool) -> Result<()> {
    let Some(place) = session.ledger_place()? else {
        return Ok(());
    };
    let here = place.describe();
    let how = "pass --schema, or set the search_path in the database URL (options=-csearch_path%3DSCHEMA) or DB_SEARCH_PATH in the .env";
    if let Some(other) = place.ledgers.first() {
        return Err(Error::Usage(format!(
            "no ledger in {here}, but schema {other} has one: the app's tables are there; {}",
            how.replace("--schema", &format!("--schema {other}"))
        )));
    }
    if creating && place.tables == 0 {
        return Err(Error::Usage(format!(
            "no ledger in {here}, and none of the app's tables are there: backfill keeps its ledger beside them; {how} with the app's schema"
        )));
    }
    Ok(())
}

/// A line for a look at a database without a ledger (`None` where a database is one schema).
pub(crate) fn no_ledger_note(session: &mut dyn Session) -> Result<Option<String>> {
    if schema_version(session)?.is_some() {
        return Ok(None);
    }
    Ok(session
        .ledger_place()?
        .map(|p| format!("no ledger in {}: nothing has run here yet", p.describe())))
}

/// `Ok(true)`: the ledger is current; `Ok(false)`: absent or older (create or upgrade it). A ledger
/// written by a newer backfill is refused (exit 3): this binary would misread it.
pub(crate) fn check_schema(session: &mut dyn Session) -> Result<bool> {
    match schema_version(session)? {
        Some(v) if v > LEDGER_SCHEMA => Err(Error::Ledger(format!(
            "the ledger schema is V{v}, newer than this binary knows (V{LEDGER_SCHEMA}): a newer backfill wrote it; run that version (or newer) of backfill"
        ))),
        Some(LEDGER_SCHEMA) => check_tables(session).map(|()| true),
        Some(_) | None => Ok(false),
    }
}

/// Every table a current ledger has. Refinery's history says they were made; a hand may have dropped
/// one since, and every command would then fail on it with an error that rerunning cannot fix.
const TABLES: [&str; 7] = [
    "backfill_migrations",
    "backfill_runs",
    "backfill_lease",
    "backfill_undo",
    "backfill_chunks",
    "backfill_inserted",
    "backfill_control",
];

/// A current ledger must have all its tables and the lease row; without that row no runner could ever
/// take the lock, and every runner would wait and report a busy lock forever.
fn check_tables(session: &mut dyn Session) -> Result<()> {
    let probes = TABLES.map(|t| format!("SELECT 1 FROM {t} WHERE 1 = 0"));
    let lease = format!(
        "SELECT COUNT(*) FROM backfill_lease WHERE name = 'runner' AND NOT EXISTS ({})",
        probes.join(" UNION ALL ")
    );
    match session.query_scalar(&lease, &[]) {
        Ok(n) if n.as_i64() == Some(0) => Err(Error::Ledger(
            "the ledger's lock row is missing from backfill_lease (deleted by hand?), so no runner could ever take the lock; restore it: INSERT INTO backfill_lease (name) VALUES ('runner')".into(),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind == crate::db::ErrorKind::Query => Err(missing_table(session, e)),
        // A locked or unreachable table is not damage: the command's own statement names it.
        Err(e) => {
            tracing::debug!("checking the ledger's tables failed: {e}");
            Ok(())
        }
    }
}

/// Names the first ledger table that cannot be read.
fn missing_table(session: &mut dyn Session, e: crate::db::DbError) -> Error {
    let missing = TABLES.into_iter().find(|t| {
        session
            .query(&format!("SELECT 1 FROM {t} WHERE 1 = 0"), &[])
            .is_err()
    });
    match missing {
        Some(t) => Error::Ledger(format!(
            "the ledger table {t} is missing (dropped by hand?); restore it from a backup, or recreate it empty: {}",
            session.ledger_ddl(t)
        )),
        None => ledger_error("backfill_lease", e),
    }
}

/// Creates or upgrades the ledger tables. The lock lives in them, so this cannot run under it: first
/// runs may race. Every statement is idempotent (IF NOT EXISTS, INSERT IGNORE), and a runner that
/// loses the race on refinery's history table (a duplicate key, a certification conflict, PostgreSQL's
/// catalog unique index) finds the schema current when it looks again.
pub fn migrate(session: &mut dyn Session) -> Result<()> {
    if schema_version(session)?.is_none() {
        check_place(session, true)?;
    }
    let mut n = 1;
    loop {
        match session.migrate_ledger() {
            Ok(()) => return Ok(()),
            Err(_) if is_current(session) => return Ok(()),
            Err(e) if n < crate::engine::retry::ATTEMPTS && e.kind != crate::db::ErrorKind::Config => {
                tracing::debug!("creating the ledger raced with another runner, retrying: {e}");
                std::thread::sleep(crate::engine::retry::pause(n));
                n += 1;
            }
            Err(e) if e.is_config() => {
                return Err(Error::Usage(format!(
                    "{e}; backfill needs a user that may create its ledger tables (backfill_*) on first use"
                )))
            }
            Err(e) => {
                return Err(Error::Runtime(format!(
                    "{e}; check that the user may create tables"
                )))
            }
        }
    }
}

/// A ledger column's text as its enum; anything else is damage (exit 3) with the fix.
fn parsed<T: FromStr<Err = String>>(version: i64, column: &str, raw: String) -> Result<T> {
    raw.parse().map_err(|bad| {
        Error::Ledger(format!(
            "the ledger row for version {version} has `{bad}` in {column}, which this backfill does not know; it was edited by hand or written by another version: fix it by hand, then run `backfill verify`"
        ))
    })
}

/// Appends `col = ?` (or `col IS NULL`) to a WHERE clause.
fn same(sql: &mut String, params: &mut Vec<Value>, col: &str, v: Option<&str>) {
    match v {
        Some(v) => {
            sql.push_str(&format!(" AND {col} = ?"));
            params.push(v.into());
        }
        None => sql.push_str(&format!(" AND {col} IS NULL")),
    }
}

fn cursor_column(action: Action) -> &'static str {
    match action {
        Action::Revert => "revert_cursor",
        _ => "apply_cursor",
    }
}

/// Runs `work` in one transaction, committing on `Ok(Some(_))` and rolling back otherwise.
fn in_transaction<T>(
    session: &mut dyn Session,
    work: impl FnOnce(&mut dyn Session) -> crate::db::DbResult<Option<T>>,
) -> crate::db::DbResult<Option<T>> {
    use crate::db::Finish;
    session
        .transaction(|s| Ok(work(s)?.map_or(Finish::Rollback(None), |v| Finish::Commit(Some(v)))))
}
