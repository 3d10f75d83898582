//! The one place that chooses between std and loom synchronisation.
//!
//! Built with `RUSTFLAGS="--cfg chat_loom"`, the shared state uses loom's
//! `Mutex`, so loom can explore every interleaving of the threads
//! that touch it. A cfg of our own is used because tokio reacts to plain
//! `--cfg loom` by leaving out `tokio::net`.

#[cfg(chat_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(chat_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, going on when an earlier holder panicked: every critical
/// section leaves the state valid, so poisoning carries no information.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
