//! SIGINT/SIGTERM: the first asks the runner to stop after the current batch commits; a second one
//! exits at once (the open transaction is rolled back by the database).
//!
//! A leaf: it depends on nothing of ours, so every layer (db, kit, engine, cli) and `error` may ask
//! whether the operator asked us to stop without reaching up.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

static RECEIVED: AtomicI32 = AtomicI32::new(0);

pub fn install() {
    let seen = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered before the flag setter, so it sees whether an earlier signal already arrived.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&seen));
        let _ = signal_hook::flag::register(sig, Arc::clone(&seen));
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        let _ = unsafe {
            signal_hook::low_level::register(sig, move || RECEIVED.store(sig, Ordering::SeqCst))
        };
    }
}

/// The signal that asked us to stop, if any.
pub fn requested() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Sleeps for `d` (`--pause-ms` between batches), waking early when a signal asks us to stop: a
/// long pause must not hold back the first SIGINT/SIGTERM.
pub fn pause(d: std::time::Duration) {
    let until = std::time::Instant::now() + d;
    while requested().is_none() {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
    }
}
