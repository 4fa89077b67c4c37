//! The engine: what runs migrations. `runner` picks and runs them (apply, and the run both apply and
//! `revert` share) under the `lock` (a lease) with the `ledger`'s state transitions; `batch` is the
//! one fenced batch transaction and the single loop, `parallel` the `--jobs` workers on chunks
//! (`steal` splits busy ones); `retry` and `throttle` keep it going under conflicts and replica lag,
//! and `health` holds it while the server is busy;
//! `planning` is `plan`, and `planfile` gates an apply on a reviewed plan; `inspect` is status,
//! verify, repair and forget; `known` and `audit` are the checks and the audit row the commands
//! share; `progress` and `text` talk to the operator; `hooks` exist only for the test suite
//! (SIGINT/SIGTERM are the crate-root `signals` leaf, so db can see them too).

mod audit;
pub(crate) mod batch;
pub(crate) mod budget;
pub(crate) mod control;
pub(crate) mod events;
pub mod exercise;
pub(crate) mod health;
mod hooks;
pub(crate) mod inspect;
mod known;
pub mod ledger;
pub mod lock;
pub(crate) mod metrics;
pub(crate) mod options;
mod parallel;
pub(crate) mod planfile;
pub(crate) mod planning;
pub(crate) mod progress;
pub(crate) mod retry;
mod revert;
pub mod runner;
mod staging;
mod steal;
pub(crate) mod steer;
pub(crate) mod text;
pub(crate) mod throttle;
pub(crate) mod wait;
