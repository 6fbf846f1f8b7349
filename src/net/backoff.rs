//! Reconnect delays: exponential growth with jitter and a cap over attempts that fail, and a
//! fresh start after a healthy connection.
//!
//! Pure arithmetic; the caller sleeps (racing shutdown).

use std::time::Duration;

/// The reconnect delay state of one stream.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First delay.
    initial: Duration,
    /// Largest delay.
    max: Duration,
    /// Failures since the last healthy connection.
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// Forgets past failures (call when a connection proved healthy).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt, without jitter: `initial * 2^attempt`, capped.
    pub fn base_delay(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next delay with "equal jitter" (uniform in `[d/2, d]`, so synchronised clients spread
    /// out but never retry immediately), and counts the attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.base_delay();
        self.attempt = self.attempt.saturating_add(1);
        equal_jitter(d)
    }

    /// The delay after a healthy connection: past failures are forgotten and the next attempt
    /// waits the initial delay with equal jitter, without counting as a failure (so if it
    /// fails, the one after it waits the initial delay again, then the delay doubles).
    /// Repeated healthy connections never make the delay grow; the jitter spreads out the
    /// streams a server drops all at once, and a server that drops every connection right
    /// after some data is dialled at most about twice per initial delay.
    pub fn after_healthy(&mut self) -> Duration {
        self.reset();
        equal_jitter(self.initial)
    }

    /// Failures counted since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// Uniform in `[d/2, d]`.
fn equal_jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut bases = vec![];
        for _ in 0..6 {
            bases.push(b.base_delay());
            let d = b.next_delay();
            let base = *bases.last().unwrap();
            assert!(
                d >= base / 2 && d <= base,
                "{d:?} outside [{:?}, {base:?}]",
                base / 2
            );
        }
        assert_eq!(
            bases,
            [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        b.reset();
        assert_eq!(b.base_delay(), Duration::from_millis(100));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn a_healthy_connection_starts_over_at_the_initial_delay() {
        let initial = Duration::from_millis(100);
        let mut b = Backoff::new(initial, Duration::from_secs(10));
        for _ in 0..5 {
            b.next_delay();
        }
        for _ in 0..20 {
            let d = b.after_healthy();
            assert!(d >= initial / 2 && d <= initial, "{d:?}");
            assert_eq!(b.attempts(), 0, "not counted as a failure");
        }
        // A failure after it waits the initial delay again, then grows.
        assert_eq!(b.base_delay(), initial);
        b.next_delay();
        assert_eq!(b.base_delay(), initial * 2);
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(60));
        }
    }
}
