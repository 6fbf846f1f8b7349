//! Pacing of connects and subscribe messages to one venue, shared by every stream and shard of
//! the process that talks to it, so a large symbol list never trips the venue's rate limits.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces connection attempts and subscribe messages at least their intervals apart.
#[derive(Debug)]
pub struct Pacer {
    connect_every: Duration,
    message_every: Duration,
    next_connect: Mutex<Option<Instant>>,
    next_message: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer with these minimum spacings.
    pub fn new(connect_every: Duration, message_every: Duration) -> Self {
        Self {
            connect_every,
            message_every,
            next_connect: Mutex::new(None),
            next_message: Mutex::new(None),
        }
    }

    /// Waits for this caller's connect slot.
    pub async fn connect(&self) {
        tokio::time::sleep_until(reserve(&self.next_connect, self.connect_every)).await;
    }

    /// Waits for this caller's subscribe-message slot.
    pub async fn message(&self) {
        tokio::time::sleep_until(reserve(&self.next_message, self.message_every)).await;
    }
}

/// Takes the next free slot and moves the free slot `every` past it.
fn reserve(next: &Mutex<Option<Instant>>, every: Duration) -> Instant {
    let now = Instant::now();
    let mut next = next
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let at = next.map_or(now, |n| n.max(now));
    *next = Some(at + every);
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn callers_are_spaced_and_an_idle_pacer_does_not_delay() {
        let p = Arc::new(Pacer::new(
            Duration::from_secs(3),
            Duration::from_millis(100),
        ));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                p.connect().await;
                Instant::now()
            }));
        }
        let mut at: Vec<Duration> = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap() - start);
        }
        at.sort();
        assert_eq!(
            at,
            [0, 3, 6, 9].map(Duration::from_secs),
            "four connects, 3 s apart"
        );
        // Long after, the next one goes at once; messages have their own spacing.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let t0 = Instant::now();
        p.connect().await;
        p.message().await;
        p.message().await;
        assert_eq!(Instant::now() - t0, Duration::from_millis(100));
    }
}
