//! What `exercise` asserts on one scratch database: plan equals apply, a top-up writes nothing,
//! `verify --data` is clean, and revert restores every table (or is refused, for an irreversible
//! migration).

use crate::db::admin::{Scratch, TableRows};
use crate::db::{Dialect, Session};
use crate::engine::runner::{self, Options, Selection};
use crate::kit::migration::Shape;
use crate::registry::Catalog;

/// A scratch database with the app's tables, and a session on it.
pub(super) struct AppDb {
    pub(super) db: Scratch,
    pub(super) session: Box<dyn Session>,
}

impl AppDb {
    /// Every table but the ledger's, with its rows in key order: what an exact revert must give
    /// back, wherever the migration wrote (not only the tables it was meant to touch).
    fn dump(&mut self) -> Vec<TableRows> {
        let mut tables = crate::db::admin::dump(self.session.as_mut())
            .unwrap_or_else(|e| panic!("cannot read the tables of {}: {e}", self.db.name));
        tables.retain(|t| !t.name.starts_with("backfill_"));
        tables
    }
}

/// The first table that differs between two dumps, and its first differing rows, in a few lines.
fn first_difference(before: &[TableRows], after: &[TableRows]) -> Option<String> {
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
        "table `{}` ({} rows before, {} after), columns {:?}; first differing row:\n  before: {:?}\n  after:  {:?}",
        b.name,
        b.rows.len(),
        a.rows.len(),
        b.columns,
        b.rows.get(at),
        a.rows.get(at)
    ))
}

/// Small batches, so the key ranges are exercised.
fn options(catalog: Catalog) -> Options {
    Options {
        batch_size: 17,
        batch_target: None,
        operator: "testkit".into(),
        catalog,
        ..Options::default()
    }
}

/// Every check of `exercise` for migration `version` of `catalog` on `app`, seeded.
pub(super) fn check_one(
    app: &mut AppDb,
    version: i64,
    catalog: Catalog,
    dialect: Dialect,
    allow_empty: bool,
) {
    let opts = options(catalog);
    let reg = runner::find(&opts.catalog, version).unwrap_or_else(|e| panic!("{e}"));
    let before = app.dump();
    let s = app.session.as_mut();
    apply_twice(s, version, &opts, dialect, allow_empty);
    verify_clean(s, version, &opts, dialect);
    if let Shape::Irreversible(_) = reg.migration.shape() {
        let refused = runner::revert(s, version, None, false, &opts);
        assert!(
            matches!(&refused, Err(e) if e.exit_code() == 2),
            "{dialect:?}: an irreversible migration's revert must be refused with exit 2, got {refused:?}"
        );
        return;
    }
    runner::revert(s, version, None, false, &opts)
        .unwrap_or_else(|e| panic!("{dialect:?}: revert: {e}"));
    if let Some(diff) = first_difference(&before, &app.dump()) {
        panic!("{dialect:?}: revert did not restore every table exactly: {diff}");
    }
}

/// Plan, apply (which must write what the plan said, and something unless allowed), then a top-up
/// that must write nothing.
fn apply_twice(s: &mut dyn Session, version: i64, opts: &Options, dialect: Dialect, empty: bool) {
    let planned =
        runner::plan(s, Some(version), opts).unwrap_or_else(|e| panic!("{dialect:?}: plan: {e}"));
    let planned = planned.first().map_or(0, |p| p.plan.total);
    let done = runner::apply(s, Selection::One(version), opts)
        .unwrap_or_else(|e| panic!("{dialect:?}: apply: {e}"));
    let written: u64 = done.iter().map(|o| o.rows).sum();
    assert_eq!(
        written, planned,
        "{dialect:?}: plan said {planned}, apply wrote {written}"
    );
    assert!(
        written > 0 || empty,
        "{dialect:?}: V{version} wrote nothing on the seed data, so nothing it does was checked: seed \
         rows it must change (or call allow_empty() if writing nothing is right here)"
    );
    let again = runner::apply(s, Selection::One(version), opts)
        .unwrap_or_else(|e| panic!("{dialect:?}: top-up: {e}"));
    let twice: u64 = again.iter().map(|o| o.rows).sum();
    assert_eq!(
        twice, 0,
        "{dialect:?}: a second apply wrote {twice} rows; a migration must be idempotent"
    );
}

/// `verify --data` right after apply finds nothing about this migration (the others are simply not
/// applied here).
fn verify_clean(s: &mut dyn Session, version: i64, opts: &Options, dialect: Dialect) {
    let found = crate::engine::inspect::verify(s, true, opts)
        .unwrap_or_else(|e| panic!("{dialect:?}: verify: {e}"));
    let this = format!("V{version}__");
    let mine: Vec<&String> = found
        .ledger
        .iter()
        .chain(&found.drift)
        .filter(|d| d.starts_with(&this))
        .collect();
    assert!(
        mine.is_empty(),
        "{dialect:?}: verify --data right after apply: {mine:?}"
    );
}
