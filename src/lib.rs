//! backfill: versioned, resumable, revertible data migrations for PostgreSQL, MySQL/MariaDB and SQLite.

pub mod batch;
pub mod checksum;
pub mod cli;
pub mod db;
pub mod demo;
pub mod error;
pub mod fixtures;
pub mod inspect;
pub mod kit;
pub mod ledger;
pub mod lock;
pub mod migration;
pub mod planfile;
pub mod progress;
pub mod registry;
pub mod report;
pub mod retry;
pub mod runner;
pub mod scaffold;
pub mod signals;
pub mod target;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod throttle;
pub mod version_backfill;
pub mod when;

pub use error::{Error, Result};
