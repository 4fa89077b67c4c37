//! Irreversible example: role names lose the leading and trailing blanks an old import left. The
//! blanks were noise, so this migration keeps no journal and `revert` refuses it (exit 2).
//! Written against the trait directly, to show a step in full.

use crate::db::{DbResult, Tx};
use crate::migration::{Context, DataMigration, Key, KeyRange, Plan, Shape};

pub struct TrimRoleNames;

pub static MIGRATION: TrimRoleNames = TrimRoleNames;

/// Byte lengths, not `<>`: MariaDB's PAD SPACE collations call 'a ' and 'a' equal.
const UNTRIMMED: &str = "LENGTH(name) <> LENGTH(TRIM(name))";

impl DataMigration for TrimRoleNames {
    fn shape(&self) -> Shape<'_> {
        Shape::Irreversible("the blanks it removes are not kept anywhere")
    }

    fn key(&self) -> Key {
        Key {
            table: "roles",
            column: "id",
        }
    }

    fn plan(&self, tx: &mut dyn Tx, _ctx: &Context, _samples: usize) -> DbResult<Plan> {
        let sql = format!("SELECT COUNT(*) FROM roles WHERE {UNTRIMMED}");
        let total = tx.query_scalar(&sql, &[])?.as_i64().unwrap_or(0).max(0) as u64;
        Ok(Plan::ungrouped(total, 0, Vec::new()))
    }

    fn apply(&self, tx: &mut dyn Tx, _ctx: &Context, range: KeyRange) -> DbResult<u64> {
        let sql =
            format!("UPDATE roles SET name = TRIM(name) WHERE id >= ? AND id <= ? AND {UNTRIMMED}");
        tx.execute(&sql, &range.params(1))
    }
}
