//! What `exercise` asserts on one scratch database: the library's checks (`engine::exercise`, which
//! `backfill test` runs too), each failure a test's panic.

use crate::db::admin::Scratch;
use crate::db::{Dialect, Session};
use crate::engine::runner::Options;
use crate::registry::Catalog;

/// A scratch database with the app's tables, and a session on it.
pub(super) struct AppDb {
    /// Held for its Drop, which drops the database.
    pub(super) db: Scratch,
    pub(super) session: Box<dyn Session>,
}

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
    let failures =
        crate::engine::exercise::check(app.session.as_mut(), version, &opts, allow_empty)
            .unwrap_or_else(|e| panic!("{dialect:?}: V{version} in {}: {e}", app.db.name));
    if !failures.is_empty() {
        panic!("{dialect:?}: {}", failures.join("; "));
    }
}
