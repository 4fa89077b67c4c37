//! The data-migration API: what a module in `data_migrations/` implements.
//!
//! A migration is a small object: a read-only `plan`, and `apply`/`revert` that each do one batch and
//! return where to continue. The runner owns everything else: transactions, the cursor checkpoint in the
//! ledger (committed with each batch), locking, throttling, progress and the audit trail.

use crate::db::{DbResult, Tx, Value};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Where a batch starts: a key (never an offset), so a resumed run with another batch size neither
/// skips nor repeats rows. Opaque text in the ledger; migrations keyed by an integer id use the helpers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor(pub String);

impl Cursor {
    pub fn from_id(id: i64) -> Self {
        Cursor(id.to_string())
    }
    /// The last id done; `None` when the cursor is not an integer (a corrupted ledger).
    pub fn id(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

/// Everything a batch may need to know about its run.
#[derive(Debug, Clone)]
pub struct Context {
    pub version: i64,
    pub run_id: uuid::Uuid,
    /// The run's UTC start date: every row of one run shares it, even across midnight.
    pub run_date: NaiveDate,
    /// `revert --scenario ID`: only this group.
    pub scenario: Option<i64>,
    /// Rows the ledger says this migration wrote and has not reverted (for `check`).
    pub ledger_rows: i64,
}

/// One batch of work.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    pub ctx: &'a Context,
    /// `None` on the first batch.
    pub after: Option<&'a Cursor>,
    pub size: u64,
}

impl Batch<'_> {
    /// The last integer id done; `None` before the first batch, which has no lower bound. Not 0: ids
    /// of 0 and below are valid keys (PostgreSQL and SQLite accept them, and a plan counts them), and a
    /// cursor starting at 0 would leave them unwritten while `plan` promised them.
    pub fn after_id(&self) -> DbResult<Option<i64>> {
        match self.after {
            None => Ok(None),
            Some(c) => c.id().map(Some).ok_or_else(|| {
                crate::db::DbError::query(format!("ledger checkpoint `{}` is not an id; run `backfill repair VERSION --mark-failed` and revert", c.0))
            }),
        }
    }

    /// The lowest id this batch may take, inclusive: `i64::MIN` on the first batch, the cursor + 1
    /// after it; `None` when the cursor is already the largest id there can be (nothing follows).
    /// An inclusive bound lets SQL express "no lower bound" with the same statement and parameters.
    pub fn first_id(&self) -> DbResult<Option<i64>> {
        Ok(match self.after_id()? {
            None => Some(i64::MIN),
            Some(last) => last.checked_add(1),
        })
    }
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More to do after `cursor`; `rows` were written (or deleted) by this batch.
    More { cursor: Cursor, rows: u64 },
    /// Nothing left; `rows` by this last batch.
    Done { rows: u64 },
}

impl Step {
    pub fn rows(&self) -> u64 {
        match self {
            Step::More { rows, .. } | Step::Done { rows } => *rows,
        }
    }
}

/// One group of a plan (for the first migrations: one scenario).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub key: i64,
    pub count: u64,
    pub samples: Vec<serde_json::Value>,
}

/// What `apply` would do on the data as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The name of the grouping key, e.g. `scenario_id`.
    pub group_by: String,
    pub total: u64,
    /// Rows that qualify but are left alone (e.g. already versioned).
    pub skipped: u64,
    pub groups: Vec<Group>,
}

/// A data migration. A module `data_migrations/V..__name.rs` exposes it as `pub static MIGRATION`.
pub trait DataMigration: Sync {
    /// Read-only: what `apply` would write. Runs in a read-only transaction; its counts must equal
    /// what `apply` then writes on unchanged data.
    fn plan(&self, tx: &mut dyn Tx, ctx: &Context, samples: usize) -> DbResult<Plan>;

    /// Writes one batch after `batch.after`, marking every row with the migration and run.
    fn apply(&self, tx: &mut dyn Tx, batch: &Batch) -> DbResult<Step>;

    /// Deletes one batch of rows this migration marked (only those; only `ctx.scenario` if set).
    fn revert(&self, tx: &mut dyn Tx, batch: &Batch) -> DbResult<Step>;

    /// Ids of rows this migration wrote that were edited since (revert refuses them without `--force`).
    fn edited_rows(&self, _tx: &mut dyn Tx, _ctx: &Context) -> DbResult<Vec<i64>> {
        Ok(Vec::new())
    }

    /// Post-apply assertions (`verify --data`): one line per problem found.
    fn check(&self, _tx: &mut dyn Tx, _ctx: &Context) -> DbResult<Vec<String>> {
        Ok(Vec::new())
    }

    /// The first and last integer key the batches will walk, for progress and ETA; `None` if unknown.
    /// Runs before the ledger records anything, so it should also touch every table the batches use:
    /// a missing or locked table then fails the run with the database unchanged.
    fn key_span(&self, _tx: &mut dyn Tx, _direction: Direction) -> DbResult<Option<(i64, i64)>> {
        Ok(None)
    }
}

/// Which way a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Apply,
    Revert,
}

/// Reads a row's column as an integer, for migrations.
pub fn int(row: &[Value], i: usize) -> i64 {
    row.get(i).and_then(Value::as_i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            version: 1,
            run_id: uuid::Uuid::nil(),
            run_date: NaiveDate::default(),
            scenario: None,
            ledger_rows: 0,
        }
    }

    fn batch<'a>(ctx: &'a Context, after: Option<&'a Cursor>) -> Batch<'a> {
        Batch {
            ctx,
            after,
            size: 10,
        }
    }

    #[test]
    fn the_first_batch_has_no_lower_bound() {
        let ctx = ctx();
        let first = batch(&ctx, None);
        assert_eq!(first.after_id().ok(), Some(None));
        assert_eq!(first.first_id().ok(), Some(Some(i64::MIN)));
        let negative = Cursor::from_id(-5);
        assert_eq!(batch(&ctx, Some(&negative)).first_id().ok(), Some(Some(-4)));
        let last = Cursor::from_id(i64::MAX);
        assert_eq!(batch(&ctx, Some(&last)).first_id().ok(), Some(None));
        let broken = Cursor("12x".into());
        assert!(batch(&ctx, Some(&broken)).first_id().is_err());
    }
}
