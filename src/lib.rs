//! backfill: versioned, resumable, revertible data migrations for PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! - [`kit`]: the author's API: a migration's key, step, plan and shape, and the pieces steps use.
//! - [`engine`]: runs migrations: lock and fence, batches, ledger, plans, progress, throttling.
//! - [`db`]: one file per driver behind two small traits; dialect fragments; scratch databases.
//! - [`cli`]: the command line: arguments, reports, the demo, the scaffold, where the database is.
//! - [`registry`]: the migrations a binary runs; [`include_migrations!`] compiles a crate's own in.
//!
//! An app keeps its migrations in its own crate (`backfill init` makes one): its `build.rs` calls
//! `backfill_build::migrations().generate()`, its `src/lib.rs` says `backfill::include_migrations!();`
//! and its `src/main.rs` hands `catalog()` to [`cli::main`]. This crate's binary is built the same way.

// The public surface is what authors and embedders use; each item says what it is for.
#![warn(missing_docs)]

// Generated registries and scaffolded migrations say `::backfill::…` wherever they are compiled,
// this crate included.
extern crate self as backfill;

pub mod cli;
pub mod db;
pub mod engine;
pub mod kit;

pub mod error;
/// The generated sample of the app's data (the demo, `sample-data`, tests and the benchmark).
pub mod fixtures;
pub mod registry;
/// SIGINT/SIGTERM: a leaf every layer may ask whether to stop.
pub(crate) mod signals;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, Result};

// The author's two paths that compiled migrations spell (`crate::migration`,
// `crate::version_backfill`): a migration's text is its checksum, so these stay as long as applied
// migrations name them. Internal code uses the real paths.
pub use kit::{migration, version_backfill};

/// Compiles in the migrations the crate's `build.rs` registered with `backfill_build`: one module per
/// `data_migrations/V<version>__<name>.rs`, and `MIGRATIONS`, `EXAMPLES`, `APP` (the crate's name,
/// version and commit) and `catalog()`, which [`cli::main`] and the testkit take.
///
/// ```ignore
/// // src/lib.rs of an app's crate
/// backfill::include_migrations!();
/// ```
#[macro_export]
macro_rules! include_migrations {
    () => {
        include!(concat!(env!("OUT_DIR"), "/backfill_migrations.rs"));
    };
}
