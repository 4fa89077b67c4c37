//! backfill: versioned, resumable, revertible data migrations for PostgreSQL, MySQL/MariaDB and SQLite.

pub mod checksum;
pub mod db;
pub mod error;
pub mod ledger;
pub mod lock;
pub mod migration;
pub mod progress;
pub mod registry;
pub mod runner;
pub mod signals;
pub mod version_backfill;

pub use error::{Error, Result};
