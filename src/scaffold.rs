//! `backfill new NAME`: a new data-migration module from a template that compiles.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const TEMPLATE: &str = r#"//! __NAME__: say what this backfill writes, for which rows, and why.
//!
//! How the runner calls this module:
//! - `plan` runs in a read-only transaction and must count exactly what `apply` will write.
//! - `apply` is called batch by batch, each batch in its own transaction committed together with the
//!   checkpoint: handle the keys after `batch.after_id()` (at most `batch.size` of them) with set-based
//!   SQL, and return `Step::More { cursor, rows }` with the last key handled, or `Step::Done` when none
//!   are left. A crash resumes from the last committed cursor, so never use offsets.
//! - Mark every row you write with `{"source":"backfill","migration":<ctx.version>,"run_id":...}` so
//!   that `revert` can delete exactly those rows, in batches, and only those.
//! - Never open a transaction, never touch the ledger, never take locks: the runner does all of that.
//! See `src/version_backfill.rs` for a complete example.

use crate::db::{DbError, DbResult, Tx};
use crate::migration::{Batch, Context, DataMigration, Plan, Step};

pub struct Backfill;

pub static MIGRATION: Backfill = Backfill;

fn unwritten() -> DbError {
    DbError::query("data_migrations/__FILE__ is a scaffold: write plan, apply and revert before running it")
}

impl DataMigration for Backfill {
    /// Counts per group of what `apply` would write on the data as it is now.
    fn plan(&self, _tx: &mut dyn Tx, _ctx: &Context, _samples: usize) -> DbResult<Plan> {
        Err(unwritten())
    }

    /// Writes one batch of rows after `batch.after_id()`.
    fn apply(&self, _tx: &mut dyn Tx, _batch: &Batch) -> DbResult<Step> {
        Err(unwritten())
    }

    /// Deletes one batch of the rows this migration marked (only those of `ctx.scenario` when set).
    fn revert(&self, _tx: &mut dyn Tx, _batch: &Batch) -> DbResult<Step> {
        Err(unwritten())
    }
}
"#;

fn valid_name(name: &str) -> bool {
    name.len() <= 100
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
}

/// Writes `dir/V<UTC yyyymmddHHMM><nn>__<name>.rs` and returns its path.
pub fn create(dir: &Path, name: &str) -> Result<PathBuf> {
    if !valid_name(name) {
        return Err(Error::Usage(format!(
            "`{name}` is not a valid migration name; use snake_case: lowercase letters, digits and single underscores, starting with a letter"
        )));
    }
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "no {} directory here; run `backfill new` from the project root",
            dir.display()
        )));
    }
    let existing: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if let Some(clash) = existing
        .iter()
        .find(|f| f.ends_with(&format!("__{name}.rs")))
    {
        return Err(Error::Usage(format!(
            "a migration named `{name}` already exists: {clash}; pick another name"
        )));
    }
    let minute = chrono::Utc::now().format("%Y%m%d%H%M").to_string();
    let version = (1..100)
        .map(|n| format!("{minute}{n:02}"))
        .find(|v| !existing.iter().any(|f| f.starts_with(&format!("V{v}__"))))
        .ok_or_else(|| {
            Error::Usage("99 migrations created this minute already; wait a minute".into())
        })?;
    let file = format!("V{version}__{name}.rs");
    let path = dir.join(&file);
    let text = TEMPLATE
        .replace("__NAME__", name)
        .replace("__FILE__", &file);
    std::fs::write(&path, text)
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}
