//! A test hook: a pause of the disk worker, as on a disk that does not answer.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};

/// A test-only pause of the disk worker: while it is held, the worker waits before its next
/// operation, as on a disk that does not answer. The wait counts as that operation's time.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct DiskPause {
    /// Set while held (read without the lock before every operation).
    on: AtomicBool,
    /// Held, under the lock the worker waits on.
    held: Mutex<bool>,
    released: Condvar,
    /// The worker is waiting in the pause now.
    waiting: AtomicBool,
}

impl DiskPause {
    /// Holds the worker before its next operation.
    pub fn hold(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.on.store(true, Relaxed);
    }

    /// Lets the worker go on.
    pub fn release(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.on.store(false, Relaxed);
        self.released.notify_all();
    }

    /// Whether the worker is waiting in the pause now.
    pub fn waiting(&self) -> bool {
        self.waiting.load(Relaxed)
    }

    /// Waits while the pause is held.
    pub(crate) fn wait(&self) {
        if !self.on.load(Relaxed) {
            return;
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        self.waiting.store(*held, Relaxed);
        while *held {
            held = self.released.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        self.waiting.store(false, Relaxed);
    }
}
