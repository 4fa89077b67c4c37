//! The author's kit: the migration API ([`migration`]) and what a migration's steps usually need.
//! What an author calls is public (the benchmark and the tests use the same copy); `bounds` and
//! `journal` serve only the engine and the kit's own shapes, so they stay inside the crate.
//!
//! - `bounds`: the key ranges the runner walks (also for sampling).
//! - [`marker`]: the identity an INSERT-shaped migration writes into each row, and the exact test for it.
//! - [`samples`]: a few rows per group for `plan`, read with the step's own ranged query.
//! - [`insert`]: the INSERT shape for a table without a marker column; `inserted`: the keys it
//!   inserted, recorded in the ledger in the batch's transaction, which revert deletes;
//!   [`insert_select`]: the same shape written as one whole SELECT (a declarative file's insert),
//!   its range's ends written `:lo` and `:hi` ([`placeholders`]).
//! - [`stage`]: a run's scratch table, filled once per apply run and read by its batches by range.
//! - [`update`]: the UPDATE shape: a journaled, exactly revertible update of existing rows.
//! - `journal`: its undo journal, in exact text, and the rule for rows the app changed since. It
//!   lives here, not in the engine, because the update shape writes it inside its own step (the rows'
//!   old and new values are known only there); the engine reads, restores and forgets it through
//!   this module, an arrow pointing down.

pub(crate) mod bounds;
/// Migrations read at run time from `V…__name.toml` files (`--migrations-dir`).
pub(crate) mod declarative;
pub mod insert;
pub mod insert_select;
pub(crate) mod inserted;
pub(crate) mod journal;
pub mod marker;
pub mod migration;
pub mod placeholders;
pub mod samples;
pub mod stage;
pub mod update;
/// "One version row per entity that appears in a scenario": the INSERT shape both shipped
/// migrations use.
pub mod version_backfill;
