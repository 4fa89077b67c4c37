//! The data-migration API: what a module in `data_migrations/` implements.
//!
//! A migration is a small object, as in Shopify's maintenance_tasks: the key it walks (a table's
//! integer column), a step over one key range `[lo, hi]`, a read-only `plan`, and its shape, which
//! says how it is undone. The runner owns everything else: the cursor and its checkpoint in the ledger
//! (committed with each batch), the bounds of each batch, batch sizing, locking, throttling, progress,
//! the undo journal of UPDATE-shaped migrations and the audit trail. `crate::kit` has the pieces a
//! step usually needs (marker, exact JSON fields, samples, the journaled update).

use crate::db::{DbResult, Tx, Value};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Where a run goes on from: the last key done (never an offset), so a resumed run with another batch
/// size neither skips nor repeats rows. Text in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor(pub(crate) String);

impl Cursor {
    pub(crate) fn from_id(id: i64) -> Self {
        Cursor(id.to_string())
    }
    /// The last id done; `None` when the cursor is not an integer (a damaged ledger).
    pub(crate) fn id(&self) -> Option<i64> {
        self.0.trim().parse().ok()
    }
}

/// Everything a step may need to know about its run.
#[derive(Debug, Clone)]
pub struct Context {
    /// The migration's version (its marker's `migration`).
    pub version: i64,
    /// The run's id, as in the audit table (its marker's `run_id`).
    pub run_id: uuid::Uuid,
    /// The run's UTC start date: every row of one run shares it, even across midnight.
    pub run_date: NaiveDate,
    /// `revert --group ID` (the migration's own word for it, e.g. `--scenario`): only this group.
    pub group: Option<i64>,
    /// Rows the ledger says this migration wrote and has not reverted (for `check`).
    pub ledger_rows: i64,
    /// The table [`DataMigration::stage`] filled for this apply run; `None` when the run has no
    /// stage (the migration stages nothing, or building it failed), and then `apply` must work
    /// without one.
    pub stage: Option<String>,
}

/// An integer key the runner walks in ranges: `table.column`, unique or not (a range takes every row
/// of its keys, so equal keys never straddle two batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The table the key is in.
    pub table: &'static str,
    /// Its integer column.
    pub column: &'static str,
}

/// The keys of one batch, both ends included. The first batch starts at `i64::MIN`: ids of 0 and
/// below are keys too, and `plan` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// The first key.
    pub lo: i64,
    /// The last key.
    pub hi: i64,
}

impl KeyRange {
    /// `[lo, hi]` as parameters, `times` times (a statement that repeats the range on several tables).
    pub fn params(&self, times: usize) -> Vec<Value> {
        (0..times)
            .flat_map(|_| [Value::Int(self.lo), Value::Int(self.hi)])
            .collect()
    }
}

/// How a migration is undone.
#[derive(Clone, Copy)]
pub enum Shape<'a> {
    /// It inserts rows marked with its identity (`kit::marker`); revert deletes exactly those with
    /// the given [`Revert`]. The variant cannot be written without one, so an INSERT-shaped migration
    /// cannot forget its revert (which would record `reverted` having deleted nothing):
    ///
    /// ```compile_fail
    /// # use backfill::kit::migration::Shape;
    /// # fn shape<'a>() -> Shape<'a> {
    /// Shape::Insert // no revert: error[E0308], expected `Shape<'_>`, found fn item
    /// # }
    /// ```
    Insert(&'a dyn Revert),
    /// It changes existing rows through `kit::update`, which journals each row's old and new values in
    /// the ledger (`backfill_undo`) in the batch's transaction; revert restores the old values and is
    /// the runner's own work.
    Update,
    /// It cannot be undone; `revert` refuses (exit 2) with this reason.
    Irreversible(&'static str),
}

impl<'a> Shape<'a> {
    /// The INSERT shape's revert; `None` for the others.
    pub(crate) fn insert_revert(self) -> Option<&'a dyn Revert> {
        match self {
            Shape::Insert(undo) => Some(undo),
            _ => None,
        }
    }
}

/// Shapes compare by kind: which revert an INSERT shape carries is the migration's own business.
impl PartialEq for Shape<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Shape::Irreversible(a), Shape::Irreversible(b)) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for Shape<'_> {}

impl std::fmt::Debug for Shape<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Insert(undo) => f.debug_tuple("Insert").field(&undo.revert_key()).finish(),
            Shape::Update => f.write_str("Update"),
            Shape::Irreversible(why) => f.debug_tuple("Irreversible").field(why).finish(),
        }
    }
}

/// How an INSERT-shaped migration deletes what it wrote: what [`Shape::Insert`] carries (usually
/// the migration itself, `Shape::Insert(self)`).
pub trait Revert: Sync {
    /// The key `revert` walks: the table it inserted into, or the ledger's record of its keys.
    fn revert_key(&self) -> Key;

    /// The first and last key of `revert_key` among the rows it wrote (only `ctx.group`'s if set),
    /// `None` when there are none; read once per revert. A revert with `--jobs` splits this span
    /// between its workers, so none of them is handed only the app's own rows. The default is the
    /// key's whole span; a migration that can find its rows cheaply (by key order) narrows it.
    fn revert_span(&self, tx: &mut dyn Tx, _ctx: &Context) -> DbResult<Option<(i64, i64)>> {
        crate::kit::bounds::span(tx, self.revert_key())
    }

    /// The table it inserts into.
    fn table(&self) -> &str {
        self.revert_key().table
    }

    /// Deletes the rows of one key range of `revert_key` that this migration marked (only those;
    /// only `ctx.group`'s if set); returns how many.
    fn revert(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64>;

    /// Ids of rows it wrote that were edited since (revert refuses them without `--force`).
    /// UPDATE-shaped migrations get this from the journal.
    fn edited_rows(&self, _tx: &mut dyn Tx, _ctx: &Context) -> DbResult<Vec<i64>> {
        Ok(Vec::new())
    }
}

/// A migration's own grouping of its rows (the HR migrations group by scenario): how plans count and
/// what `revert --group` (alias `--scenario`) selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grouping {
    /// The group's column in plans, e.g. `scenario_id`.
    pub column: &'static str,
    /// The word for one group in reports, e.g. `scenario`.
    pub label: &'static str,
}

/// One group of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The group's id (e.g. the scenario's); 0 when the migration does not group.
    pub key: i64,
    /// Rows `apply` would write in it.
    pub count: u64,
    /// A few rows as the migration describes them (any fields it chooses).
    pub samples: Vec<serde_json::Value>,
}

/// What `apply` would do on the data as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The grouping column, e.g. `scenario_id`; empty when the migration does not group.
    pub group_by: String,
    /// The word for one group, e.g. `scenario`.
    #[serde(default = "default_label")]
    pub group_label: String,
    /// Rows `apply` would write.
    pub total: u64,
    /// Rows that qualify but are left alone.
    pub skipped: u64,
    /// Why they are left alone, e.g. `already versioned`.
    #[serde(default)]
    pub skipped_because: String,
    /// The rows per group, in key order.
    pub groups: Vec<Group>,
}

fn default_label() -> String {
    "group".into()
}

impl Plan {
    /// A plan from `rows` of (group key, count), groups with nothing to write left out; `fill`
    /// adds their samples. Ungrouped (`grouping` is `None`), the one group's samples go to the
    /// plan's single group, as [`Plan::ungrouped`] lays it out.
    pub(crate) fn counted(
        grouping: Option<Grouping>,
        rows: &[Vec<Value>],
        fill: impl FnOnce(&mut [Group]) -> DbResult<()>,
    ) -> DbResult<Plan> {
        let mut groups: Vec<Group> = rows
            .iter()
            .filter(|r| int(r, 1) > 0)
            .map(|r| Group {
                key: int(r, 0),
                count: int(r, 1).max(0) as u64,
                samples: Vec::new(),
            })
            .collect();
        fill(&mut groups)?;
        let total = groups.iter().map(|g| g.count).sum();
        Ok(match grouping {
            Some(g) => Plan {
                group_by: g.column.into(),
                group_label: g.label.into(),
                total,
                skipped: 0,
                skipped_because: String::new(),
                groups,
            },
            None => {
                let samples = groups.pop().map(|g| g.samples).unwrap_or_default();
                Plan::ungrouped(total, 0, samples)
            }
        })
    }

    /// A plan without groups: one group, key 0, holding every row.
    pub fn ungrouped(total: u64, skipped: u64, samples: Vec<serde_json::Value>) -> Plan {
        Plan {
            group_by: String::new(),
            group_label: "all".into(),
            total,
            skipped,
            skipped_because: String::new(),
            groups: if total > 0 {
                vec![Group {
                    key: 0,
                    count: total,
                    samples,
                }]
            } else {
                Vec::new()
            },
        }
    }
}

/// A data migration. A module `data_migrations/V..__name.rs` exposes it as `pub static MIGRATION`.
pub trait DataMigration: Sync {
    /// How it is undone.
    fn shape(&self) -> Shape<'_>;

    /// The key `apply` walks.
    fn key(&self) -> Key;

    /// Its grouping of rows, if it has one.
    fn grouping(&self) -> Option<Grouping> {
        None
    }

    /// Read-only: what `apply` would write. Runs in a read-only transaction; its counts must equal
    /// what `apply` then writes on unchanged data.
    fn plan(&self, tx: &mut dyn Tx, ctx: &Context, samples: usize) -> DbResult<Plan>;

    /// Once per apply run, before its first batch, in a transaction of its own: fills the run's
    /// stage table `name` (`kit::stage`: create it, then fill it in one set-based pass) with what
    /// the batches then read by key range, and says whether it did. `false` (the default) runs
    /// without a stage. A stage is an optimisation: when building it fails, the run goes on
    /// without one, so `apply` must give the same rows either way (`ctx.stage` says which).
    fn stage(&self, _tx: &mut dyn Tx, _ctx: &Context, _name: &str) -> DbResult<bool> {
        Ok(false)
    }

    /// Writes the rows of one key range (marking or journaling them); returns how many.
    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64>;

    /// Post-apply assertions (`verify --data`): one line per finding.
    fn check(&self, _tx: &mut dyn Tx, _ctx: &Context) -> DbResult<Vec<String>> {
        Ok(Vec::new())
    }

    /// Touches every table the steps use, so a missing or locked table fails the run before the
    /// ledger records anything (the runner reads the key bounds itself).
    fn preflight(&self, _tx: &mut dyn Tx) -> DbResult<()> {
        Ok(())
    }

    /// Why it cannot run on this database (a file read at run time whose table, key or SQL is not
    /// right there), checked in a rolled-back transaction before a command writes anything; one
    /// line naming the file, the key and the fix. Compiled migrations are checked by their tests.
    fn unfit(&self, _tx: &mut dyn Tx) -> DbResult<Option<String>> {
        Ok(None)
    }
}

/// Reads a row's column as an integer, for migrations.
pub fn int(row: &[Value], i: usize) -> i64 {
    row.get(i).and_then(Value::as_i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_repeat_their_bounds() {
        let r = KeyRange { lo: -5, hi: 9 };
        assert_eq!(
            r.params(2),
            vec![Value::Int(-5), Value::Int(9), Value::Int(-5), Value::Int(9)]
        );
    }

    #[test]
    fn cursors_are_integer_keys_or_damage() {
        assert_eq!(Cursor::from_id(-5).id(), Some(-5));
        assert_eq!(Cursor("12x".into()).id(), None);
    }
}
