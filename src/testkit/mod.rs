//! The author's testkit (feature `testkit`, on for this crate's own tests): a migration's plan, apply,
//! top-up, check and revert against PostgreSQL, MariaDB and SQLite in one call, each on a database of
//! its own that is dropped even when the test fails.
//!
//! An app's crate builds a [`Kit`] from its own schema files and seed:
//!
//! ```ignore
//! use backfill::testkit::{Kit, Schema};
//!
//! #[test]
//! fn fills_capability_count() {
//!     Kit::new()
//!         .schema(Schema::laravel_dump("database/schema"))
//!         .seed_sql("tests/seed.sql")
//!         .catalog(my_app::catalog())
//!         .exercise(202612011200);
//! }
//! ```
//!
//! This crate's own migrations use the HR app's schema (`schema/app/`, loaded through the same
//! loader) and its generated sample: `exercise(version, sample_data)`.
//!
//! What it asserts, per dialect: `plan` counts exactly what `apply` writes (in small batches, so the
//! key ranges are exercised); a second `apply` writes nothing (idempotent); `verify --data` finds no
//! ledger problem; `revert` puts every table back exactly as it was (or, for an irreversible
//! migration, refuses with exit 2). Servers: `BACKFILL_TEST_POSTGRES`, `BACKFILL_TEST_MYSQL` (admin
//! URLs; the local defaults otherwise).

mod check;
mod kit;

pub use crate::db::schema_file::Schema;
pub use kit::Kit;

use crate::db::Session;

/// The default seed: the generated sample of the HR app (200 competencies, their links and
/// versions), for this crate's own migrations.
pub fn sample_data(session: &mut dyn Session) {
    let shape = crate::fixtures::Shape {
        competencies: 200,
        seed: 7,
    };
    crate::fixtures::generate(session, &shape).expect("generate sample data");
}

/// [`Kit`] with the HR app's schema (`schema/app`) and `seed`: runs migration `version` through
/// plan, apply, top-up, verify and revert on every dialect. Panics with what went wrong, also when
/// the migration writes nothing on the seed (an untouched scaffold passes nothing else).
pub fn exercise(version: i64, seed: impl Fn(&mut dyn Session)) {
    hr_app(&seed).exercise(version);
}

/// [`exercise`] for a migration that may rightly write nothing on this seed (say, a guard for data
/// that only old installs hold).
pub fn exercise_allowing_empty(version: i64, seed: impl Fn(&mut dyn Session)) {
    hr_app(&seed).allow_empty().exercise(version);
}

fn hr_app(seed: &dyn Fn(&mut dyn Session)) -> Kit<'_> {
    Kit::new().schema(crate::fixtures::schema()).seed(seed)
}
