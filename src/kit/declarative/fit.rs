//! Whether a well-formed file runs on this database: its tables, columns and integer keys are
//! there, and its SQL prepares there (on no rows, in the rolled-back transaction `unfit` gets).
//! Each finding is one line naming the file's key and the fix.

use crate::db::{DbResult, Tx};
use crate::kit::insert_select::{InsertSelect, Unfit};
use crate::kit::inserted;
use crate::kit::migration::{DataMigration, Key};
use crate::kit::update::{Part, TunedUpdate};

/// `Ok(Some(why))`: the first thing that does not fit.
type Finding = DbResult<Option<String>>;

/// One check of a file against the database.
type Check<'a> = &'a dyn Fn(&mut dyn Tx) -> Finding;

/// An update's table and key, then its expressions.
pub(super) fn update(tx: &mut dyn Tx, u: &TunedUpdate) -> Finding {
    let Key { table, column } = u.key();
    if let Some(why) = table_there(tx, "table", table)? {
        return Ok(Some(why));
    }
    if let Some(why) = integer(tx, "key", table, column)? {
        return Ok(Some(why));
    }
    Ok(u.probe(tx).err().map(|(part, e)| {
        let key = match part {
            Part::Set(c) => format!("set.{c}"),
            Part::Only => "where".to_string(),
            Part::Skip => "skip_when".to_string(),
        };
        let dialect = dialect(tx);
        format!(
            "`{key}` does not run on {dialect}: {}; fix the SQL (the row is `t`; [{dialect}] overrides it for this dialect only)",
            e.message.trim_start_matches(&format!("{dialect}: "))
        )
    }))
}

/// An insert's table, key, walked key and columns, then its select, then `RETURNING`.
pub(super) fn insert(tx: &mut dyn Tx, i: &InsertSelect) -> Finding {
    // In order, each only once the ones before it passed: a probe of a missing table would only
    // say so less clearly (and a refused statement ends a PostgreSQL transaction).
    let checks: [Check; 7] = [
        &|tx| table_there(tx, "table", i.table),
        &|tx| integer(tx, "key", i.table, i.key),
        &|tx| table_there(tx, "walk", i.walk.table),
        &|tx| integer(tx, "walk", i.walk.table, i.walk.column),
        &|tx| columns_there(tx, i),
        &|tx| select_runs(tx, i),
        &|tx| {
            Ok(inserted::require_returning(tx, i.table)
                .err()
                .map(|e| format!("`shape` = \"insert\": {}", e.message)))
        },
    ];
    for check in checks {
        if let Some(why) = check(tx)? {
            return Ok(Some(why));
        }
    }
    Ok(None)
}

fn dialect(tx: &mut dyn Tx) -> String {
    format!("{:?}", tx.dialect()).to_lowercase()
}

fn table_there(tx: &mut dyn Tx, key: &str, table: &str) -> Finding {
    let there = !tx.query(&tx.dialect().columns_sql(table), &[])?.is_empty();
    Ok((!there).then(|| {
        format!("`{key}`: {table} is not a table of this database; fix the name, or run the app's schema migrations first")
    }))
}

/// `table.column` is an integer column.
fn integer(tx: &mut dyn Tx, key: &str, table: &str, column: &str) -> Finding {
    let d = tx.dialect();
    let ty = tx.query(&d.column_type_sql(table, column), &[])?;
    let ty = ty.first().and_then(|r| r.first()).and_then(|v| v.as_str());
    Ok(match ty {
        None => Some(format!(
            "`{key}`: {table} has no column {column}; name its integer key column"
        )),
        Some(ty) if !d.is_integer_type(ty) => Some(format!(
            "`{key}`: {table}.{column} is {ty}, not an integer; name an integer key column (backfill walks it in ranges)"
        )),
        Some(_) => None,
    })
}

/// Every column the insert writes is one of its table's.
fn columns_there(tx: &mut dyn Tx, i: &InsertSelect) -> Finding {
    let rows = tx.query(&tx.dialect().columns_sql(i.table), &[])?;
    let has = |c: &str| {
        rows.iter()
            .any(|r| r.first().and_then(|v| v.as_str()) == Some(c))
    };
    let missing = i.columns.iter().find(|c| !has(c));
    if let Some(c) = missing {
        return Ok(Some(format!(
            "`columns`: {} has no column {c}; name the table's own columns",
            i.table
        )));
    }
    let stamps = ["created_at", "updated_at"];
    Ok(stamps.iter().find(|c| i.timestamps && !has(c)).map(|c| {
        format!(
            "`timestamps`: {} has no column {c}; remove timestamps = true (the table has no Laravel timestamps)",
            i.table
        )
    }))
}

fn select_runs(tx: &mut dyn Tx, i: &InsertSelect) -> Finding {
    let dialect = dialect(tx);
    let key = match i.overrides.iter().any(|(d, _)| *d == tx.dialect()) {
        true => format!("{dialect}.select"),
        false => "select".to_string(),
    };
    Ok(match i.probe(tx)? {
        None => None,
        Some(Unfit::Sql(e)) => Some(format!(
            "`{key}` does not run on {dialect}: {}; fix the SQL (one field per column, in order; [{dialect}] select overrides it for this dialect only)",
            e.message.trim_start_matches(&format!("{dialect}: "))
        )),
        Some(Unfit::Fields(n)) => Some(format!(
            "`{key}` gives {n} fields for the {} columns; give one field per column of `columns`, in its order",
            i.columns.len()
        )),
    })
}
