//! `backfill new NAME`: a new data-migration module, and its test, from templates that compile and
//! change nothing until written.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const TEMPLATE: &str = r#"//! __NAME__: say what this backfill changes, for which rows, and why.
//!
//! Made by `backfill new`. As scaffolded it changes nothing (each value is set to itself), so it is
//! safe to build and deploy; its test fails until it changes rows of the seed. Pick a shape (README,
//! "Writing a migration"):
//! - UPDATE-shaped (this template): the table, its integer key, the columns and the SQL of their new
//!   values over the row `t`; the runner walks the key in batches, journals old values and revert
//!   restores them exactly.
//! - INSERT-shaped: describe it with `backfill::kit::insert::InsertBackfill` (the ledger records the
//!   keys it inserts), or, into a table with a JSON `metadata` column, implement `DataMigration` and
//!   `Revert` marking rows with `backfill::kit::marker::json` (see backfill's `kit::version_backfill`).
//! - Irreversible: `Shape::Irreversible("why")` (see backfill's `examples/data_migrations/`).
//!
//! Its test is `tests/__TEST__`: plan == apply, idempotent, verify clean, exact revert, on every dialect.

use backfill::kit::update::UpdateBackfill;

pub static MIGRATION: UpdateBackfill = UpdateBackfill {
    table: "__TABLE__",
    key: "id",
    columns: &["__COLUMN__"],
    // The value each column should have, over the row `t`. As scaffolded: its current value.
    values: &["t.__COLUMN__"],
    // Only rows matching this condition over `t`; `None`: every row.
    only: None,
    // Rows left alone, with the reason `plan` gives: `Some(("reason", "condition over t"))`.
    skip: None,
};
"#;

const TEST_TEMPLATE: &str = r#"//! __FILE__ on PostgreSQL, MariaDB and SQLite: plan == apply, a second apply writes
//! nothing, verify finds nothing, revert restores the app's tables exactly.

#[test]
fn plan_apply_revert_on_every_dialect() {
    // Seed what your migration needs on top of (or instead of) the generated sample.
    backfill::testkit::exercise(__VERSION__, backfill::testkit::sample_data);
}
"#;

const TOML_TEMPLATE: &str = r#"# __NAME__: say what this backfill changes, for which rows, and why.
#
# Made by `backfill new --toml`. As scaffolded it changes nothing (the column is set to itself), so it
# is safe to deploy; `backfill test` reports that it writes nothing until you write it. Every key:
# README, "Data migrations without Rust".
shape = "update"            # journaled: revert restores old values exactly; or "irreversible" + reason
table = "competencies"      # the table; its row is `t` in every expression
key = "id"                  # its integer key, walked in batches
# where = "t.description IS NULL"             # only these rows
# skip_when = "LENGTH({new.description}) > 80" # rows left alone, counted by plan...
# skipped_because = "too long"                 # ...with this reason

[set]
description = "t.description" # column = SQL expression over `t`: its new value

# [mysql.set]                 # what MySQL/MariaDB run instead ([postgres.set], [sqlite.set] too)
# description = "CONCAT(t.name, '!')"

# To insert rows instead, replace every key above with the insert form: an INSERT … SELECT whose
# new rows' keys the ledger records, so revert deletes exactly those.
# shape = "insert"
# table = "scenario_capabilities"  # the table rows go into
# key = "id"                       # its integer key
# walk = "capabilities.id"         # table.column: the integer key walked in batches
# columns = ["scenario_id", "capability_id"]
# select = """
# SELECT s.id, c.id FROM capabilities c JOIN scenarios s ON s.id = c.discovered_in_scenario_id
# WHERE c.id BETWEEN :lo AND :hi   -- the batch's range of the walked key
#   AND NOT EXISTS (SELECT 1 FROM scenario_capabilities p
#                   WHERE p.scenario_id = s.id AND p.capability_id = c.id) -- only rows still missing
# """
# group = "scenario_id"            # optional, one of columns: revert --group N deletes that group's
# timestamps = true                # optional: created_at/updated_at = now; revert refuses rows edited since
"#;

fn valid_name(name: &str) -> bool {
    name.len() <= 100
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
}

/// Checks `name`, and picks the version of a new `dir/V<version>__<name>.<ext>`: this UTC minute,
/// or the next free one.
fn next_version(dir: &Path, name: &str, ext: &str) -> Result<String> {
    if !valid_name(name) {
        return Err(Error::Usage(format!(
            "`{name}` is not a valid migration name; use snake_case: lowercase letters, digits and single underscores, starting with a letter"
        )));
    }
    let existing: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if let Some(clash) = existing
        .iter()
        .find(|f| f.ends_with(&format!("__{name}.{ext}")))
    {
        return Err(Error::Usage(format!(
            "a migration named `{name}` already exists: {clash}; pick another name"
        )));
    }
    let now = chrono::Utc::now();
    (0..1440)
        .map(|m| {
            (now + chrono::Duration::minutes(m))
                .format("%Y%m%d%H%M")
                .to_string()
        })
        .find(|v| !existing.iter().any(|f| f.starts_with(&format!("V{v}__"))))
        .ok_or_else(|| Error::Usage("no free version in the next 24 hours".into()))
}

/// Writes `dir/V<UTC yyyymmddHHMM>__<name>.toml`, a declarative migration that changes nothing
/// until edited, creating `dir` if needed; returns the path written.
pub(crate) fn create_toml(dir: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let version = next_version(dir, name, "toml")?;
    let path = dir.join(format!("V{version}__{name}.toml"));
    write(&path, &TOML_TEMPLATE.replace("__NAME__", name))
}

/// Writes `dir/V<UTC yyyymmddHHMM>__<name>.rs` (the next free minute if this one is taken) and its test
/// `tests/migration_v<version>_<name>.rs` beside `dir`; returns the paths written. In an app's crate
/// (`app`, made by `backfill init`) the template names the table `init` wrote, and the crate's
/// `tests/migrations.rs` already exercises every migration.
pub(crate) fn create(dir: &Path, name: &str, app: Option<&str>) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() && valid_name(name) {
        return Err(Error::Usage(format!(
            "no {} directory here; run `backfill new` from the project root",
            dir.display()
        )));
    }
    let version = next_version(dir, name, "rs")?;
    let file = format!("V{version}__{name}.rs");
    let (test, table, column) = match app {
        Some(_) => ("migrations.rs".to_string(), "customers", "email"),
        None => (
            format!("migration_v{version}_{name}.rs"),
            "competencies",
            "description",
        ),
    };
    let text = TEMPLATE
        .replace("__NAME__", name)
        .replace("__TEST__", &test)
        .replace("__TABLE__", table)
        .replace("__COLUMN__", column);
    let mut written = vec![write(&dir.join(&file), &text)?];
    let tests = dir.parent().unwrap_or(Path::new(".")).join("tests");
    if tests.is_dir() && app.is_none() {
        // The file's stem first: `V__VERSION____NAME__` would lose the `__` between the two.
        let text = TEST_TEMPLATE
            .replace("__FILE__", file.trim_end_matches(".rs"))
            .replace("__VERSION__", &version);
        written.push(write(&tests.join(&test), &text)?);
    }
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<PathBuf> {
    std::fs::write(path, text)
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}
