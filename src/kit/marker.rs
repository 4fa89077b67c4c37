//! The marker: what an INSERT-shaped migration writes into each row's JSON `metadata`, so revert finds
//! its rows and no one else's: `{"source":"backfill", <group>: N, "migration": V, "run_id": "…"}`.
//! `source` (and the group) keep an app's own verification queries working; `migration` and `run_id`
//! make revert exact, since other writers may set `source = "backfill"` too.

use crate::db::{Dialect, Value};
use crate::kit::migration::Context;

/// The `metadata` JSON for a row written by this run; `group` is `(field, SQL expression)`.
pub fn json(d: Dialect, ctx: &Context, group: Option<(&str, &str)>) -> String {
    let version = ctx.version.to_string();
    let run = format!("'{}'", ctx.run_id);
    let mut pairs = vec![("source", "'backfill'")];
    if let Some(g) = group {
        pairs.push(g);
    }
    pairs.extend([("migration", version.as_str()), ("run_id", run.as_str())]);
    d.json_object(&pairs)
}

/// The condition "this row carries this migration's marker" on a JSON `column` (and, when
/// `ctx.group` is set, "of this group", read from `group_field`), with its parameters.
pub fn condition(
    d: Dialect,
    column: &str,
    ctx: &Context,
    group_field: Option<&str>,
) -> (String, Vec<Value>) {
    let mut sql = format!(
        "{} = 'backfill' AND {} = '{}'",
        exact_field(d, column, "source"),
        exact_field(d, column, "migration"),
        ctx.version
    );
    let mut params = Vec::new();
    if let (Some(g), Some(field)) = (ctx.group, group_field) {
        sql.push_str(&format!(" AND {} = ?", exact_field(d, column, field)));
        params.push(Value::Text(g.to_string()));
    }
    (sql, params)
}

/// A JSON field as text that compares byte for byte. MariaDB's string collations are PAD SPACE (even
/// `utf8mb4_bin`, which JSON_UNQUOTE returns): `'backfill ' = 'backfill'` is true there, so another
/// writer's `"source":"backfill "` would count as ours. A binary string compares its bytes, trailing
/// spaces and case included. PostgreSQL's `text` and SQLite's BINARY collation already compare exactly.
pub(crate) fn exact_field(d: Dialect, column: &str, key: &str) -> String {
    let text = d.json_text(column, key);
    match d {
        Dialect::Mysql => format!("CAST({text} AS BINARY)"),
        Dialect::Postgres | Dialect::Sqlite => text,
    }
}
