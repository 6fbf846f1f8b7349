//! Pacing of connects and subscribe messages to one venue, shared by every stream and shard of
//! the process that talks to it, so a large symbol list never trips the venue's rate limits.
//!
//! Two things hold a connect or a subscribe message back: the preset's spacing (a [`Pacer`]
//! per venue, so a burst is spread out) and the venue's per-IP budget (a [`Bucket`] per
//! budget of [`super::presets::BUDGETS`], shared by every preset that draws on it), so however
//! many shards reconnect after a blip, no window of the venue's sees more than wsrec's share of
//! its limit. Both run on tokio's clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::presets::{BUDGET_SHARE_PERCENT, Budget};

/// Spaces connection attempts and subscribe messages at least their intervals apart, and takes
/// each from the venue's budgets, if it has any.
#[derive(Debug)]
pub struct Pacer {
    connect_every: Duration,
    message_every: Duration,
    next_connect: Mutex<Option<Instant>>,
    next_message: Mutex<Option<Instant>>,
    connects: Option<Arc<Bucket>>,
    messages: Option<Arc<Bucket>>,
}

impl Pacer {
    /// A pacer with these minimum spacings and no budget.
    pub fn new(connect_every: Duration, message_every: Duration) -> Self {
        Self {
            connect_every,
            message_every,
            next_connect: Mutex::new(None),
            next_message: Mutex::new(None),
            connects: None,
            messages: None,
        }
    }

    /// The same pacer, drawing connects and messages from these budgets too.
    #[must_use]
    pub fn with_budgets(
        mut self,
        connects: Option<Arc<Bucket>>,
        messages: Option<Arc<Bucket>>,
    ) -> Self {
        self.connects = connects;
        self.messages = messages;
        self
    }

    /// Waits for this caller's connect slot; returns how long the venue's connection budget
    /// held it back (beyond the spacing).
    pub async fn connect(&self) -> Duration {
        tokio::time::sleep_until(reserve(&self.next_connect, self.connect_every)).await;
        match &self.connects {
            Some(b) => b.take().await,
            None => Duration::ZERO,
        }
    }

    /// Waits for this caller's subscribe-message slot.
    pub async fn message(&self) {
        tokio::time::sleep_until(reserve(&self.next_message, self.message_every)).await;
        if let Some(b) = &self.messages {
            b.take().await;
        }
    }

    /// The venue reports that only `left` connects remain in its own window (BitMEX's welcome
    /// message): the connection budget lets no more than its share of those through.
    pub fn connects_left(&self, left: u64) {
        if let Some(b) = &self.connects {
            b.at_most(left);
        }
    }

    /// The connection budget, if the venue has one.
    pub fn connect_budget(&self) -> Option<&Bucket> {
        self.connects.as_deref()
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

/// A venue budget in wsrec's hands: at most `size` takes in any window of length `per`. Each
/// token taken comes back exactly `per` later, so unlike a bucket refilled at a steady rate
/// (which lets its size through at the end of one window and again at the start of the next)
/// no window ever sees more than `size`. Callers are served in order.
#[derive(Debug)]
pub struct Bucket {
    name: &'static str,
    size: usize,
    per: Duration,
    /// When the last `size` tokens were (or are to be) taken, in order.
    taken: Mutex<VecDeque<Instant>>,
}

impl Bucket {
    /// A bucket of `size` tokens that come back `per` after they are taken.
    pub fn new(name: &'static str, size: u32, per: Duration) -> Self {
        let size = size.max(1) as usize;
        Self {
            name,
            size,
            per,
            taken: Mutex::new(VecDeque::with_capacity(size)),
        }
    }

    /// The bucket for a venue budget: its allowed share per window.
    pub fn for_budget(b: &Budget) -> Self {
        Self::new(b.name, b.allowed(), b.per)
    }

    /// The budget's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Takes a token, waiting until one is free; returns how long it waited.
    pub async fn take(&self) -> Duration {
        let now = Instant::now();
        let at = {
            let mut q = self.lock();
            let mut at = q.back().map_or(now, |last| (*last).max(now));
            if q.len() >= self.size {
                at = at.max(q[q.len() - self.size] + self.per);
            }
            self.push(&mut q, at);
            at
        };
        tokio::time::sleep_until(at).await;
        at.saturating_duration_since(now)
    }

    /// The venue has only `left` takes for us in its current window (which may end any time
    /// in the next `per`): for a whole `per` from now, let no more than
    /// [`BUDGET_SHARE_PERCENT`] of `left` through. Tokens that come back before then do not
    /// count as held; the shortfall is taken now.
    pub fn at_most(&self, left: u64) {
        let now = Instant::now();
        let keep = usize::try_from(left.saturating_mul(u64::from(BUDGET_SHARE_PERCENT)) / 100)
            .unwrap_or(usize::MAX);
        let hold = self.size.saturating_sub(keep);
        let mut q = self.lock();
        let held = q.iter().filter(|t| **t >= now).count();
        for _ in held..hold {
            let at = q.back().map_or(now, |last| (*last).max(now));
            self.push(&mut q, at);
        }
    }

    fn push(&self, q: &mut VecDeque<Instant>, at: Instant) {
        q.push_back(at);
        while q.len() > self.size {
            q.pop_front();
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Instant>> {
        self.taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The most takes in any window of `per` among these instants.
    fn busiest(at: &[Duration], per: Duration) -> usize {
        at.iter()
            .map(|&t| at.iter().filter(|&&u| u >= t && u < t + per).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_of_the_budget_sees_more_than_its_share() {
        // Bybit: 500 connects per 5 min, wsrec takes 400; paced 200 ms apart as the preset is.
        let budget = super::super::find("bybit-linear")
            .unwrap()
            .budgets()
            .next()
            .unwrap();
        let bucket = Arc::new(Bucket::for_budget(budget));
        let pacer = Arc::new(
            Pacer::new(Duration::from_millis(200), Duration::ZERO)
                .with_budgets(Some(bucket.clone()), None),
        );
        let start = Instant::now();
        // 250 shards connect, and all try again after each of four blips 60 s apart.
        let mut tasks = Vec::new();
        for blip in 0..5u64 {
            for _ in 0..250 {
                let p = pacer.clone();
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep_until(start + Duration::from_secs(60 * blip)).await;
                    let w = p.connect().await;
                    (Instant::now(), w)
                }));
            }
        }
        let mut at = Vec::new();
        let mut waited = Vec::new();
        for t in tasks {
            let (when, w) = t.await.unwrap();
            at.push(when - start);
            waited.push(w);
        }
        assert_eq!(at.len(), 1250);
        assert_eq!(busiest(&at, Duration::from_secs(300)), 400);
        // The first 250 go 200 ms apart, 150 more after the first blip; the 401st waits for
        // the first token to come back.
        at.sort();
        assert_eq!(at[249], Duration::from_millis(249 * 200));
        assert_eq!(at[399], Duration::from_millis(60_000 + 149 * 200));
        assert_eq!(at[400], Duration::from_secs(300));
        assert!(waited.iter().any(|w| *w > Duration::from_secs(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_venues_own_count_of_what_is_left_holds_connects_back() {
        // BitMEX: 60 an hour, wsrec takes 48; a welcome message says 5 are left.
        let b = Bucket::new("test", 48, Duration::from_secs(3600));
        let start = Instant::now();
        b.take().await;
        b.at_most(5);
        // 80 % of 5: four more now, the next when the hour of the taken ones is over.
        for _ in 0..4 {
            assert_eq!(b.take().await, Duration::ZERO);
        }
        b.take().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3600));
        // Told again later, it holds the next connect back for a whole window again, however
        // soon the tokens of the first window come back.
        tokio::time::sleep(Duration::from_secs(10)).await;
        b.at_most(1);
        let t0 = Instant::now();
        b.take().await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(3600));
        // A venue with more left than wsrec's share changes nothing.
        let b = Bucket::new("test", 3, Duration::from_secs(60));
        b.at_most(100);
        for _ in 0..3 {
            assert_eq!(b.take().await, Duration::ZERO);
        }
    }
}
