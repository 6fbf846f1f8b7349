//! Wall-clock time for receive timestamps and rotation, injectable for tests.
//!
//! Production reads `CLOCK_REALTIME` directly (one vDSO call, no `SystemTime` conversions).
//! Tests use [`Clock::tokio`], a wall clock that advances with tokio's (possibly paused) time,
//! so rotation and timeouts can be driven with `tokio::time::advance`.

/// Source of "now" in nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The system's real-time clock.
    System,
    /// `base_ns` plus the tokio time elapsed since `start`; follows paused time in tests.
    Tokio {
        /// Wall time at `start`.
        base_ns: u64,
        /// The tokio instant that corresponds to `base_ns`.
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `base_ns` now and advances with tokio time.
    pub fn tokio(base_ns: u64) -> Self {
        Clock::Tokio {
            base_ns,
            start: tokio::time::Instant::now(),
        }
    }

    /// Nanoseconds since the Unix epoch.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match self {
            Clock::System => system_now_ns(),
            Clock::Tokio { base_ns, start } => base_ns + start.elapsed().as_nanos() as u64,
        }
    }
}

/// Reads `CLOCK_REALTIME` in nanoseconds.
#[inline]
pub fn system_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_REALTIME always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_agrees_with_std() {
        let std_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let ours = system_now_ns();
        assert!(ours.abs_diff(std_ns) < 1_000_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = Clock::tokio(1_000);
        assert_eq!(c.now_ns(), 1_000);
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert_eq!(c.now_ns(), 2_000_001_000);
    }
}
