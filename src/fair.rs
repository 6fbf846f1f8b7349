//! Fairness on a busy runtime: a task that is always ready (a connection under a flood, the
//! writer behind it) lets the runtime poll its driver now and then.
//!
//! Tokio checks timers, signals and sockets when a worker runs out of tasks, or every 61 task
//! polls. With the connection and the writer handing batches to each other there is always a
//! task, so on one runtime thread the status socket, the metrics endpoint and SIGTERM would
//! wait for those 61 polls: seconds in a debug build on a loaded machine. [`Slice::tick`]
//! yields (tokio defers the task until the driver has been polled) once per time slice.

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
