//! The checks a migration must pass on a seeded scratch database, as one list of failures: what
//! `backfill test` reports (one line each) and what the testkit asserts. Plan equals apply (in the
//! small batches the options give), a top-up writes nothing, `verify --data` finds nothing about it,
//! and revert restores every app table exactly (or is refused, exit 2, for an irreversible one).

use crate::db::admin::TableRows;
use crate::db::Session;
use crate::engine::runner::{self, Options, Selection};
use crate::error::Result;
use crate::kit::migration::Shape;

/// Every table but the ledger's, with its rows in key order: what an exact revert must give back,
/// wherever the migration wrote.
pub fn app_tables(session: &mut dyn Session) -> Result<Vec<TableRows>> {
    let mut tables = crate::db::admin::dump(session)?;
    tables.retain(|t| !t.name.starts_with("backfill_"));
    Ok(tables)
}

/// The first table that differs between two dumps, and its first differing rows, on one line.
pub(crate) fn first_difference(before: &[TableRows], after: &[TableRows]) -> Option<String> {
    let names = |d: &[TableRows]| d.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    if names(before) != names(after) {
        return Some(format!(
            "tables before: {:?}; after: {:?}",
            names(before),
            names(after)
        ));
    }
    let (b, a) = before.iter().zip(after).find(|(b, a)| b != a)?;
    if b.columns != a.columns {
        return Some(format!(
            "table `{}`: columns before {:?}, after {:?}",
            b.name, b.columns, a.columns
        ));
    }
    let at = (0..b.rows.len().max(a.rows.len()))
        .find(|&i| b.rows.get(i) != a.rows.get(i))
        .unwrap_or(0);
    Some(format!(
        "table `{}` ({} rows before, {} after), columns {:?}; first differing row: before {:?}, after {:?}",
        b.name,
        b.rows.len(),
        a.rows.len(),
        b.columns,
        b.rows.get(at),
        a.rows.get(at)
    ))
}

/// Runs migration `version` of `opts.catalog` through every check on `session` (seeded, no ledger
/// row for it yet); returns what failed, one line each. An error is a check that could not run.
pub(crate) fn check(
    session: &mut dyn Session,
    version: i64,
    opts: &Options,
    allow_empty: bool,
) -> Result<Vec<String>> {
    let reg = runner::find(&opts.catalog, version)?;
    let before = app_tables(session)?;
    let mut failures = applied_twice(session, version, opts, allow_empty)?;
    let found = crate::engine::inspect::verify(session, true, opts)?;
    let this = format!("V{version}__");
    failures.extend(
        found
            .ledger
            .iter()
            .chain(&found.drift)
            .filter(|d| d.starts_with(&this))
            .map(|d| format!("verify --data right after apply: {d}")),
    );
    let reverted = runner::revert(session, version, None, false, opts);
    match (reg.migration.shape(), reverted) {
        (Shape::Irreversible(_), Err(e)) if e.exit_code() == 2 => {}
        (Shape::Irreversible(_), other) => failures.push(format!(
            "an irreversible migration's revert must be refused with exit 2, got {other:?}"
        )),
        (_, Err(e)) => failures.push(format!("revert failed: {e}")),
        (_, Ok(_)) => {
            if let Some(diff) = first_difference(&before, &app_tables(session)?) {
                failures.push(format!(
                    "revert did not restore every table exactly: {diff}"
                ));
            }
        }
    }
    Ok(failures)
}

/// Plan, apply (which must write what the plan said, and something unless allowed), then a top-up
/// that must write nothing.
fn applied_twice(
    s: &mut dyn Session,
    version: i64,
    opts: &Options,
    allow_empty: bool,
) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    let planned = runner::plan(s, Some(version), opts)?;
    let planned = planned.first().map_or(0, |p| p.plan.total);
    let written: u64 = runner::apply(s, Selection::One(version), opts)?
        .iter()
        .map(|o| o.rows)
        .sum();
    if written != planned {
        failures.push(format!("plan said {planned} rows, apply wrote {written}"));
    }
    if written == 0 && !allow_empty {
        failures.push(format!(
            "V{version} wrote nothing on the seed data, so nothing it does was checked: seed rows it must change (or allow it: --allow-empty; the testkit's allow_empty())"
        ));
    }
    let twice: u64 = runner::apply(s, Selection::One(version), opts)?
        .iter()
        .map(|o| o.rows)
        .sum();
    if twice != 0 {
        failures.push(format!(
            "a second apply wrote {twice} rows; a migration must be idempotent"
        ));
    }
    Ok(failures)
}
