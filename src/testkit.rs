//! The author's testkit (feature `testkit`, on for this crate's own tests): a migration's plan, apply,
//! top-up, check and revert against PostgreSQL, MariaDB and SQLite in one call, each on a database of
//! its own that is dropped even when the test fails.
//!
//! ```ignore
//! #[test]
//! fn fills_capability_count() {
//!     backfill::testkit::exercise(202612011200, backfill::testkit::sample_data);
//! }
//! ```
//!
//! What it asserts, per dialect: `plan` counts exactly what `apply` writes (in small batches, so the
//! key ranges are exercised); a second `apply` writes nothing (idempotent); `verify --data` finds no
//! ledger problem; `revert` puts every app table back exactly as it was (or, for an irreversible
//! migration, refuses with exit 2). Servers: `BACKFILL_TEST_POSTGRES`, `BACKFILL_TEST_MYSQL` (admin
//! URLs; the local defaults otherwise).

use crate::db::admin::{Scratch, TableRows};
use crate::db::{connect, Dialect, Session, Target};
use crate::engine::runner::{self, Options, Selection};
use crate::kit::migration::Shape;

/// Every dialect the kit runs on.
pub(crate) const DIALECTS: [Dialect; 3] = [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite];

/// A scratch database with the app's tables, and a session on it.
pub(crate) struct AppDb {
    pub(crate) db: Scratch,
    pub(crate) session: Box<dyn Session>,
}

impl AppDb {
    /// Creates database `name` (dropped with the value) and loads the app's schema mirror.
    pub(crate) fn new(dialect: Dialect, name: &str) -> AppDb {
        let db = Scratch::create(dialect, name).unwrap_or_else(|e| {
            panic!("cannot create test database {name}: {e} (is the server up? `make db`)")
        });
        let mut session = connect(&Target::parse(&db.url).expect("scratch url"))
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", db.url));
        crate::fixtures::load_schema(session.as_mut()).expect("load the app schema");
        AppDb { db, session }
    }

    /// Every table but the ledger's, with its rows in key order: what an exact revert must give
    /// back, wherever the migration wrote (not only the tables it was meant to touch).
    pub(crate) fn dump(&mut self) -> Vec<TableRows> {
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

/// The default seed: the generated sample of the app (200 competencies, their links and versions).
pub fn sample_data(session: &mut dyn Session) {
    let shape = crate::fixtures::Shape {
        competencies: 200,
        seed: 7,
    };
    crate::fixtures::generate(session, &shape).expect("generate sample data");
}

fn options() -> Options {
    Options {
        batch_size: 17,
        batch_target: None,
        operator: "testkit".into(),
        ..Options::default()
    }
}

/// Runs migration `version` through plan, apply, top-up, verify and revert on every dialect, after
/// `seed` filled the app's tables. Panics with what went wrong, also when the migration writes
/// nothing on the seed (an untouched scaffold passes nothing else): seed rows it must change.
pub fn exercise(version: i64, seed: impl Fn(&mut dyn Session)) {
    run_everywhere(version, seed, false);
}

/// [`exercise`] for a migration that may rightly write nothing on this seed (say, a guard for data
/// that only old installs hold).
pub fn exercise_allowing_empty(version: i64, seed: impl Fn(&mut dyn Session)) {
    run_everywhere(version, seed, true);
}

fn run_everywhere(version: i64, seed: impl Fn(&mut dyn Session), allow_empty: bool) {
    for dialect in DIALECTS {
        // The process and a count: two tests, or two CI jobs on one server, never share a database.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "bf_kit_{}_{version}_{}_{n}",
            dialect_tag(dialect),
            std::process::id()
        );
        let mut app = AppDb::new(dialect, &name);
        seed(app.session.as_mut());
        check_one(&mut app, version, dialect, allow_empty);
    }
}

fn dialect_tag(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "pg",
        Dialect::Mysql => "my",
        Dialect::Sqlite => "lite",
    }
}

fn check_one(app: &mut AppDb, version: i64, dialect: Dialect, allow_empty: bool) {
    let opts = options();
    let reg = runner::find(&opts.catalog, version).unwrap_or_else(|e| panic!("{e}"));
    let before = app.dump();
    let s = app.session.as_mut();
    let planned =
        runner::plan(s, Some(version), &opts).unwrap_or_else(|e| panic!("{dialect:?}: plan: {e}"));
    let planned = planned.first().map_or(0, |p| p.plan.total);
    let done = runner::apply(s, Selection::One(version), &opts)
        .unwrap_or_else(|e| panic!("{dialect:?}: apply: {e}"));
    let written: u64 = done.iter().map(|o| o.rows).sum();
    assert_eq!(
        written, planned,
        "{dialect:?}: plan said {planned}, apply wrote {written}"
    );
    assert!(
        written > 0 || allow_empty,
        "{dialect:?}: V{version} wrote nothing on the seed data, so nothing it does was checked: seed \
         rows it must change (or use exercise_allowing_empty if writing nothing is right here)"
    );
    let again = runner::apply(s, Selection::One(version), &opts)
        .unwrap_or_else(|e| panic!("{dialect:?}: top-up: {e}"));
    let twice: u64 = again.iter().map(|o| o.rows).sum();
    assert_eq!(
        twice, 0,
        "{dialect:?}: a second apply wrote {twice} rows; a migration must be idempotent"
    );
    // Only this migration's findings: the others are simply not applied here.
    let found = crate::engine::inspect::verify(s, true, &opts)
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
    match reg.migration.shape() {
        Shape::Irreversible(_) => {
            let refused = runner::revert(s, version, None, false, &opts);
            assert!(
                matches!(&refused, Err(e) if e.exit_code() == 2),
                "{dialect:?}: an irreversible migration's revert must be refused with exit 2, got {refused:?}"
            );
        }
        _ => {
            runner::revert(s, version, None, false, &opts)
                .unwrap_or_else(|e| panic!("{dialect:?}: revert: {e}"));
            if let Some(diff) = first_difference(&before, &app.dump()) {
                panic!("{dialect:?}: revert did not restore every table exactly: {diff}");
            }
        }
    }
}
