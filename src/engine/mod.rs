//! The engine: what runs migrations. `runner` picks and runs them under the `lock` (a lease) with
//! the `ledger`'s state transitions; `batch` is the fenced batch loop (and `--jobs` workers); `retry`
//! and `throttle` keep it going under conflicts and replica lag; `planfile` gates an apply on a
//! reviewed plan; `inspect` is status, verify, repair and forget; `progress` talks to the operator
//! (SIGINT/SIGTERM are the crate-root `signals` leaf, so db can see them too).

pub mod batch;
mod hooks;
pub mod inspect;
pub mod ledger;
pub mod lock;
pub mod options;
mod parallel;
pub mod planfile;
pub mod progress;
pub mod retry;
pub mod runner;
mod steal;
pub mod throttle;
