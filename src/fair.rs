//! Fairness on a busy runtime: a task that is always ready (a connection under a flood, the
//! writer behind it) lets the runtime poll its driver now and then.
//!
//! Tokio checks timers, signals and sockets when a worker runs out of tasks, or every 61 task
//! polls. With the connection and the writer handing batches to each other there is always a
//! task, so on one runtime thread the status socket, the metrics endpoint and SIGTERM would
//! wait for those 61 polls: seconds in a debug build on a loaded machine. `Slice::tick`
//! yields (tokio defers the task until the driver has been polled) once per time slice.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

/// Longest run between two yields.
const SLICE: Duration = Duration::from_millis(10);

/// When the task last yielded.
#[derive(Debug)]
pub(crate) struct Slice {
    since: Instant,
}

impl Slice {
    pub(crate) fn new() -> Self {
        Self {
            since: Instant::now(),
        }
    }

    /// Yields to the runtime if this task has run for a slice since the last yield.
    pub(crate) async fn tick(&mut self) {
        if self.since.elapsed() >= SLICE {
            tokio::task::yield_now().await;
            self.since = Instant::now();
        }
    }
}

/// How long after the recording path last fell behind the compressor keeps out of its way.
pub(crate) const YIELD_AFTER_BACKLOG: Duration = Duration::from_millis(50);
/// The recording path's signal to the compressor: connections mark when they found more frames
/// ready than one batch takes (the network is ahead of them), and the compressor pauses between
/// chunks while that happened within `YIELD_AFTER_BACKLOG`. A burst at the machine's limit
/// then leaves the CPU, caches and memory bandwidth to recording; the backlog catches up after.
#[derive(Debug, Default)]
pub struct Pressure {
    /// Nanoseconds since [`Pressure::epoch`] at the last mark, plus one (0: never).
    last_backlog: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
    /// Shutdown has begun: what is queued is finished at normal priority, without yielding.
    draining: AtomicBool,
    /// The compressor has left its idle priority.
    raised: AtomicBool,
}

impl Pressure {
    fn epoch(&self) -> Instant {
        *self.epoch.get_or_init(Instant::now)
    }

    /// Called by a connection whose batch was cut short by its limits: more frames were ready.
    #[inline]
    pub fn mark_backlog(&self) {
        let ns = self.epoch().elapsed().as_nanos() as u64 + 1;
        self.last_backlog.store(ns, Relaxed);
    }

    /// Whether a connection fell behind within `YIELD_AFTER_BACKLOG`.
    pub fn recent(&self) -> bool {
        let last = self.last_backlog.load(Relaxed);
        last != 0
            && (self.epoch().elapsed().as_nanos() as u64 + 1).saturating_sub(last)
                < YIELD_AFTER_BACKLOG.as_nanos() as u64
    }

    /// Shutdown has begun: recording is over, so the compressor (at `SCHED_IDLE`, which on a
    /// busy machine gets no CPU at all) takes normal priority to finish within the deadline.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Whether shutdown has begun.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// True on the first call only: the compressor leaves its idle priority once.
    pub(crate) fn first_raise(&self) -> bool {
        !self.raised.swap(true, Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn yields_only_after_a_slice() {
        let mut s = Slice::new();
        let before = s.since;
        s.tick().await;
        assert_eq!(s.since, before, "no yield within the slice");
        s.since = Instant::now() - SLICE;
        s.tick().await;
        assert!(s.since > before);
    }
}
