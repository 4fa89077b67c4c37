//! The author's kit: what a migration's steps usually need, public so that shipped migrations, the
//! benchmark and the tests use one copy of each.
//!
//! - [`bounds`]: the key ranges the runner walks (also for sampling).
//! - [`marker`]: the identity an INSERT-shaped migration writes into each row, and the exact test for it.
//! - [`samples`]: a few rows per group for `plan`, read with the step's own ranged query.
//! - [`update`]: the UPDATE shape: a journaled, exactly revertible update of existing rows.

pub mod bounds;
pub mod marker;
pub mod samples;
pub mod update;
