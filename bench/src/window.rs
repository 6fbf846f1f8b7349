//! The steady window of a paced run: the recorder's CPU time from the start of the schedule to
//! just after its last message, with the connections' start and end left out.
//!
//! The paced server drives it ([`crate::paced`]): once every connection is up it waits
//! [`SETTLE`] (the recorder finishes its connection work) and reads the recorder's CPU clock, then
//! starts the schedule. Close frames are held back until every message has been handed to the
//! kernel and [`SETTLE`] more has passed (the recorder reads, writes and hands the last lines to
//! the disk), and the clock is read again before the first close frame goes out. So the window
//! holds every message's work and the recorder's timers meanwhile (file rotation and the
//! compression of rotated files included), but not starting the connections, closing them, or
//! what the recorder does at shutdown.

use std::time::{Duration, Instant};

use anyhow::Result;

/// How long the recorder is left alone before the window opens and after the last message before
/// it closes. Its work on a message takes well under a millisecond on an idle machine, and the
/// writer hands its last lines to the disk within about a millisecond of going idle; the rest of
/// this is room for a busy machine. Idle time inside the window costs only the recorder's
/// timers.
pub const SETTLE: Duration = Duration::from_millis(100);

/// One reading of the recorder's CPU clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuReading {
    /// User + system CPU time of the recorder processes so far, all threads.
    pub cpu: Duration,
    /// The smallest step of `cpu` (1 ns for a CPU-time clock, a clock tick for `/proc` ticks).
    pub resolution: Duration,
}

/// Reads the recorder's CPU time; called on the paced server's thread.
pub type CpuClock = Box<dyn FnMut() -> Result<CpuReading> + Send>;

/// What the window measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuWindow {
    /// Recorder CPU time in the window.
    pub cpu: Duration,
    /// Wall-clock length of the window.
    pub wall: Duration,
    /// Messages sent in the window (all of the run's).
    pub messages: u64,
    /// The coarser resolution of the two readings.
    pub resolution: Duration,
}

impl CpuWindow {
    /// CPU per message, ns.
    pub fn ns_per_msg(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.messages.max(1) as f64
    }
}

/// The window while the server runs.
pub struct Window {
    clock: CpuClock,
    /// The opening reading and when it was taken; `None` once closed.
    start: Option<(CpuReading, Instant)>,
    /// When every message had been handed to the kernel.
    data_done: Option<Instant>,
    messages: u64,
    /// The outcome, once closed.
    result: Option<Result<CpuWindow, String>>,
    /// How long close frames were held back after the last message was written.
    held: Duration,
}

impl Window {
    /// Waits [`SETTLE`] and opens the window on `messages` messages. A failed reading is kept as
    /// the outcome; the window is closed then and holds nothing back.
    pub fn open(mut clock: CpuClock, messages: u64) -> Self {
        std::thread::sleep(SETTLE);
        let (start, result) = match clock() {
            Ok(r) => (Some((r, Instant::now())), None),
            Err(e) => (None, Some(Err(format!("{e:#}")))),
        };
        Self {
            clock,
            start,
            data_done: None,
            messages,
            result,
            held: Duration::ZERO,
        }
    }

    /// Whether close frames may go out now. `data_left`: some message is not yet handed to the
    /// kernel. When the last one has been for [`SETTLE`], reads the clock and closes the window.
    pub fn may_close(&mut self, now: Instant, data_left: bool) -> bool {
        let Some((first, opened)) = self.start else {
            return true;
        };
        if data_left {
            return false;
        }
        let done = *self.data_done.get_or_insert(now);
        if now < done + SETTLE {
            return false;
        }
        let last = (self.clock)();
        let closed = Instant::now();
        self.held = closed.saturating_duration_since(done);
        self.start = None;
        self.result = Some(
            last.map(|end| CpuWindow {
                cpu: end.cpu.saturating_sub(first.cpu),
                wall: closed.saturating_duration_since(opened),
                messages: self.messages,
                resolution: end.resolution.max(first.resolution),
            })
            .map_err(|e| format!("{e:#}")),
        );
        true
    }

    /// How long close frames were held back after the last message was written.
    pub fn held(&self) -> Duration {
        self.held
    }

    /// The outcome; an error if the window never closed.
    pub fn finish(self) -> Result<CpuWindow, String> {
        self.result
            .unwrap_or_else(|| Err("the run ended before its last message was written".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock reading the CPU time in `ms`, in ms.
    fn fake(ms: &Arc<AtomicU64>) -> CpuClock {
        let ms = ms.clone();
        Box::new(move || {
            Ok(CpuReading {
                cpu: Duration::from_millis(ms.load(Ordering::SeqCst)),
                resolution: Duration::from_nanos(1),
            })
        })
    }

    #[test]
    fn closes_settle_after_the_last_message_and_count_only_the_window() {
        let ms = Arc::new(AtomicU64::new(500));
        let mut w = Window::open(fake(&ms), 1000);
        let t = Instant::now();
        ms.store(700, Ordering::SeqCst);
        assert!(!w.may_close(t, true), "messages are still going out");
        assert!(!w.may_close(t, false), "the settle time has not passed");
        assert!(!w.may_close(t + SETTLE / 2, false));
        ms.store(800, Ordering::SeqCst);
        assert!(w.may_close(t + SETTLE, false));
        // After closing, later work (the close handshakes) is outside.
        ms.store(5000, Ordering::SeqCst);
        assert!(w.may_close(t + SETTLE * 3, true));
        let r = w.finish().unwrap();
        assert_eq!(r.cpu, Duration::from_millis(300));
        assert_eq!(r.messages, 1000);
        assert_eq!(r.ns_per_msg(), 300_000.0);
        assert!(r.wall >= Duration::ZERO);
    }

    #[test]
    fn a_failed_reading_holds_nothing_back_and_says_why() {
        let mut w = Window::open(Box::new(|| anyhow::bail!("no such process")), 10);
        assert!(w.may_close(Instant::now(), true));
        assert_eq!(w.finish().unwrap_err(), "no such process");

        let calls = Arc::new(AtomicU64::new(0));
        let seen = calls.clone();
        let clock: CpuClock = Box::new(move || {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Ok(CpuReading {
                    cpu: Duration::ZERO,
                    resolution: Duration::from_millis(10),
                })
            } else {
                anyhow::bail!("gone")
            }
        });
        let mut w = Window::open(clock, 10);
        let t = Instant::now();
        assert!(!w.may_close(t, false));
        assert!(w.may_close(t + SETTLE, false));
        assert_eq!(w.finish().unwrap_err(), "gone");
    }

    #[test]
    fn a_window_never_closed_is_an_error() {
        let ms = Arc::new(AtomicU64::new(0));
        let w = Window::open(fake(&ms), 10);
        assert!(w.finish().is_err());
    }
}
