//! A run's stage: a ledger-owned scratch table a migration fills once per apply run, in one
//! set-based pass, and its batches then read by key range.
//!
//! Why: some steps need, per key, a value that lives behind a join the key's order does not follow
//! (the lowest scenario of a competency sits on `capabilities`, reached through its links). Per
//! batch, the only O(batch) plan probes that table once per link, a random read each; one pass over
//! the whole join hashes it once. The stage keeps both: the pass is done once, the batches stay
//! O(batch) on the stage's primary key (BENCHMARKS.md, issue 24).
//!
//! What a run stages is the data as the run starts: a batch still reads the rows it writes and the
//! rows that would make them duplicates live, but a link added after the start is left to the next
//! apply (a top-up), and `verify --data` names it until then. A stage is dropped when its run ends;
//! one whose runner died is dropped when a run of its migration next completes. Unlogged on
//! PostgreSQL: a server crash empties it, and the run it belonged to is over by then anyway.

use crate::db::{DbResult, Dialect, Session, Tx};
use crate::kit::migration::Context;

const PREFIX: &str = "backfill_stage_";

/// The stage table of a run: its version and its run id, so two runs never share one.
pub(crate) fn name(ctx: &Context) -> String {
    format!("{PREFIX}{}_{}", ctx.version, ctx.run_id.simple())
}

/// Creates the stage table `name` from `select` in one statement, then its primary key on `key`
/// (built by one sort of the filled table: 1.6× faster than filling a keyed table on PostgreSQL), and
/// its statistics, so the batches read it by key. Unlogged on PostgreSQL: a stage needs no crash
/// safety, and skipping the WAL is most of its cost.
pub fn fill(tx: &mut dyn Tx, name: &str, key: &str, select: &str) -> DbResult<()> {
    match tx.dialect() {
        Dialect::Postgres => {
            tx.execute(&format!("CREATE UNLOGGED TABLE {name} AS {select}"), &[])?;
            tx.execute(&format!("ALTER TABLE {name} ADD PRIMARY KEY ({key})"), &[])?;
            tx.execute(&format!("ANALYZE {name}"), &[])?;
        }
        // One statement: Galera replicates a table only with its primary key.
        Dialect::Mysql => {
            tx.execute(
                &format!("CREATE TABLE {name} (PRIMARY KEY ({key})) {select}"),
                &[],
            )?;
        }
        Dialect::Sqlite => {
            tx.execute(&format!("CREATE TABLE {name} AS {select}"), &[])?;
            tx.execute(
                &format!("CREATE UNIQUE INDEX {name}_key ON {name} ({key})"),
                &[],
            )?;
        }
    }
    Ok(())
}

/// Drops every stage of `version`: its finished run's and those of its runs that died. Called once
/// a run of `version` has done all its batches: every other runner of it has been fenced out by then
/// (a batch holds its place's row from its fence to its commit), so none is reading one.
pub(crate) fn sweep(s: &mut dyn Session, version: i64) -> DbResult<()> {
    let prefix = format!("{PREFIX}{version}_");
    let tables = s.query(s.dialect().tables_sql(), &[])?;
    for t in tables.iter().filter_map(|r| r.first()?.as_str()) {
        let run = t.strip_prefix(&prefix).unwrap_or_default();
        if !run.is_empty() && run.chars().all(|c| c.is_ascii_alphanumeric()) {
            drop_table(s, t)?;
        }
    }
    Ok(())
}

/// Drops one stage table, if it is there.
pub(crate) fn drop_table(s: &mut dyn Session, name: &str) -> DbResult<()> {
    s.execute(&format!("DROP TABLE IF EXISTS {name}"), &[])
        .map(|_| ())
}
