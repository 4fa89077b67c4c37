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

use crate::db::admin::Scratch;
use crate::db::{connect, Dialect, Session, Target};
use crate::migration::Shape;
use crate::runner::{self, Options, Selection};

/// Every dialect the kit runs on.
pub const DIALECTS: [Dialect; 3] = [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite];

/// A scratch database with the app's tables, and a session on it.
pub struct AppDb {
    pub db: Scratch,
    pub session: Box<dyn Session>,
}

impl AppDb {
    /// Creates database `name` (dropped with the value) and loads the app's schema mirror.
    pub fn new(dialect: Dialect, name: &str) -> AppDb {
        let db = Scratch::create(dialect, name).unwrap_or_else(|e| {
            panic!("cannot create test database {name}: {e} (is the server up? `make db`)")
        });
        let mut session = connect(&Target::parse(&db.url).expect("scratch url"))
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", db.url));
        crate::fixtures::load_schema(session.as_mut()).expect("load the app schema");
        AppDb { db, session }
    }

    /// Every row of every app table, in key order: what an exact revert must give back.
    pub fn dump(&mut self) -> Vec<String> {
        crate::fixtures::TABLES
            .iter()
            .map(|t| {
                let rows = self
                    .session
                    .query(&format!("SELECT * FROM {t} ORDER BY 1"), &[])
                    .unwrap_or_else(|e| panic!("dump {t}: {e}"));
                format!("{t}: {rows:?}")
            })
            .collect()
    }
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
/// `seed` filled the app's tables. Panics with what went wrong.
pub fn exercise(version: i64, seed: impl Fn(&mut dyn Session)) {
    for dialect in DIALECTS {
        let name = format!("bf_kit_{}_{version}", dialect_tag(dialect));
        let mut app = AppDb::new(dialect, &name);
        seed(app.session.as_mut());
        check_one(&mut app, version, dialect);
    }
}

fn dialect_tag(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "pg",
        Dialect::Mysql => "my",
        Dialect::Sqlite => "lite",
    }
}

fn check_one(app: &mut AppDb, version: i64, dialect: Dialect) {
    let reg = runner::find(version).unwrap_or_else(|e| panic!("{e}"));
    let opts = options();
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
    let again = runner::apply(s, Selection::One(version), &opts)
        .unwrap_or_else(|e| panic!("{dialect:?}: top-up: {e}"));
    let twice: u64 = again.iter().map(|o| o.rows).sum();
    assert_eq!(
        twice, 0,
        "{dialect:?}: a second apply wrote {twice} rows; a migration must be idempotent"
    );
    // Only this migration's findings: the others are simply not applied here.
    let found = crate::inspect::verify(s, true, &opts)
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
            assert!(
                app.dump() == before,
                "{dialect:?}: revert did not restore the app's tables exactly"
            );
        }
    }
}
