//! The REST request budget of the whole process, one per REST host: every request to a venue's
//! REST API (order-book snapshots) takes its weight from its host's [`RestBudget`] first, so
//! however many streams reconnect at once, wsrec stays under the venue's per-IP limit.
//!
//! A budget is a sliding window on tokio's clock: at most [`RestBudget::allowed`] weight in any
//! window of [`RestBudget::per`]. Each request reserves its slot when it asks
//! ([`RestBudget::acquire`]), after every earlier one, so requests go in the order they asked
//! (a heavy request is never overtaken by a stream of light ones). A 429 or 418 answer
//! ([`RestBudget::answered`]) pauses the whole host: no request goes before the pause ends, and
//! the requests waiting keep their order and spacing behind it.
//!
//! The venues' figures ([`REST_HOSTS`]) are per IP address and per minute; wsrec uses
//! [`REST_HEADROOM_PERCENT`] of them. A host not listed gets no weight limit, but its pauses
//! still hold.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// The share of a venue's REST weight limit wsrec uses, in percent. Half: the limit is per IP
/// address, and whatever else runs on the machine (another recorder, a trading bot, a
/// `curl` by hand) draws on the same budget unseen; Binance answers a spent budget with 429 and
/// repeated 429s with a ban (418) of 2 minutes to 3 days, which would cost every snapshot of
/// the process, so wsrec keeps well clear rather than close.
pub const REST_HEADROOM_PERCENT: u32 = 50;

/// How long a 429 without `Retry-After` pauses its host: one window of the venue's count
/// (Binance counts weight per minute).
pub const PAUSE_429: Duration = Duration::from_secs(60);

/// The shortest pause a 418 (Binance: the IP is banned for sending on after 429s) imposes,
/// whatever its `Retry-After` says: Binance's bans last 2 minutes to 3 days.
pub const BAN_MIN: Duration = Duration::from_secs(120);

/// The longest pause taken: a `Retry-After` beyond a year is a broken header (and a year is as
/// good as forever to a recorder); it must not overflow the clock.
pub const PAUSE_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// A venue's REST host and its per-IP request weight limit.
#[derive(Debug)]
pub struct RestHost {
    /// The host name requests go to.
    pub host: &'static str,
    /// The venue's weight limit per minute per IP address.
    pub weight_per_minute: u32,
    /// The weight of a depth snapshot by its `limit`: (largest limit of the step, weight), in
    /// increasing order ([`RestHost::depth_weight`]).
    pub depth_weights: &'static [(u32, u32)],
    /// Where the figures come from (official page first).
    pub sources: &'static [&'static str],
}

/// The budget of a host whose limit wsrec does not know (Bitstamp, Gate, KuCoin, MEXC, a
/// relay): requests of weight 1 each, 600 a minute before headroom (300 after it, 5 a second).
/// Well under what those venues allow per IP for public market data, so a reconnect of 300
/// symbols spreads its snapshots over a minute instead of asking for them all at once.
pub const UNKNOWN_HOST_PER_MINUTE: u32 = 600;

/// Every REST host with a documented weight limit.
pub static REST_HOSTS: &[RestHost] = &[
    RestHost {
        host: "api.binance.com",
        weight_per_minute: 6000,
        depth_weights: &[(100, 5), (500, 25), (1000, 50), (5000, 250)],
        sources: &[
            "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits (REQUEST_WEIGHT 6,000 per minute per IP, as exchangeInfo's rateLimits say; 429, then 418 bans of 2 minutes to 3 days; Retry-After)",
            "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints (GET /api/v3/depth: weight 5 for limit 1-100, 25 for 101-500, 50 for 501-1000, 250 for 1001-5000)",
            "ccxt ts/src/binance.ts (public depth byLimit [100, 5], [500, 25], [1000, 50], [5000, 250])",
        ],
    },
    RestHost {
        host: "fapi.binance.com",
        weight_per_minute: 2400,
        depth_weights: &[(50, 2), (100, 5), (500, 10), (1000, 20)],
        sources: &[
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info (REQUEST_WEIGHT 2,400 per minute per IP, as /fapi/v1/exchangeInfo's rateLimits say)",
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Order-Book (GET /fapi/v1/depth: weight 2 for limit 5-50, 5 for 100, 10 for 500, 20 for 1000)",
            "ccxt ts/src/binance.ts (fapiPublic depth byLimit [50, 2], [100, 5], [500, 10], [1000, 20])",
        ],
    },
    RestHost {
        host: "dapi.binance.com",
        weight_per_minute: 2400,
        depth_weights: &[(50, 2), (100, 5), (500, 10), (1000, 20)],
        sources: &[
            "https://developers.binance.com/docs/derivatives/coin-margined-futures/general-info (REQUEST_WEIGHT per minute per IP as /dapi/v1/exchangeInfo's rateLimits say; the figure used is USDⓈ-M's, not checked against a stored copy of this page)",
            "nautilus_trader nautilus_binance::common::consts::BINANCE_DAPI_RATE_LIMITS (COIN-M futures REST limits, shared with USD-M futures)",
            "https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api/Order-Book (GET /dapi/v1/depth: the weights per limit taken as USDⓈ-M's 2/5/10/20, unverified; if COIN-M's are higher the 50 % headroom absorbs up to twice them)",
        ],
    },
];

impl RestHost {
    /// The weight of a depth snapshot of `limit` levels (a limit above the last step weighs as
    /// the last step: the venue caps it there).
    pub fn depth_weight(&self, limit: u32) -> u32 {
        self.depth_weights
            .iter()
            .find(|(up_to, _)| limit <= *up_to)
            .or(self.depth_weights.last())
            .map_or(1, |(_, w)| *w)
    }
}

/// The REST host named `host` (any case), if its limits are known.
pub fn rest_host(host: &str) -> Option<&'static RestHost> {
    REST_HOSTS
        .iter()
        .find(|h| h.host.eq_ignore_ascii_case(host))
}

/// The process's REST budgets, one per host, shared by every stream that asks that host.
#[derive(Debug, Default)]
pub struct RestBudgets {
    hosts: Mutex<HashMap<String, Arc<RestBudget>>>,
}

impl RestBudgets {
    /// The budget of `host` (created on first use: [`REST_HOSTS`]'s figure, or
    /// [`UNKNOWN_HOST_PER_MINUTE`] for a host not listed, at [`REST_HEADROOM_PERCENT`]).
    pub fn for_host(&self, host: &str) -> Arc<RestBudget> {
        let host = host.to_ascii_lowercase();
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts
            .entry(host.clone())
            .or_insert_with(|| {
                let per_minute = REST_HOSTS
                    .iter()
                    .find(|h| h.host == host)
                    .map_or(UNKNOWN_HOST_PER_MINUTE, |h| h.weight_per_minute);
                let allowed =
                    (u64::from(per_minute) * u64::from(REST_HEADROOM_PERCENT) / 100).max(1) as u32;
                Arc::new(RestBudget::new(host, allowed, Duration::from_secs(60)))
            })
            .clone()
    }
}

/// One host's budget: at most `allowed` weight in any window of `per`, and the host's pause.
#[derive(Debug)]
pub struct RestBudget {
    host: String,
    allowed: u32,
    per: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Reserved requests in the order they asked, each with when it goes (never earlier than
    /// the one before) and its weight; dropped once out of the window.
    taken: VecDeque<(Instant, u32)>,
    /// The number of the request at the front of `taken` (requests are numbered in order).
    front: u64,
    /// No request goes before this.
    paused_until: Option<Instant>,
}

impl RestBudget {
    /// A budget of `allowed` weight per `per` for `host` (its name in logs).
    pub fn new(host: impl Into<String>, allowed: u32, per: Duration) -> Self {
        Self {
            host: host.into(),
            allowed: allowed.max(1),
            per,
            state: Mutex::new(State::default()),
        }
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The weight let through per window.
    pub fn allowed(&self) -> u32 {
        self.allowed
    }

    /// The window.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Waits until a request of `weight` fits in the budget (after every request that asked
    /// before it, and after any pause), and counts it; returns how long it waited. A weight
    /// above [`Self::allowed`] counts as `allowed`: it waits for an empty window.
    pub async fn acquire(&self, weight: u32) -> Duration {
        let now = Instant::now();
        let (number, mut at) = self.reserve(weight.clamp(1, self.allowed), now);
        // A pause that came meanwhile moves the slot later: wake, look again.
        loop {
            tokio::time::sleep_until(at).await;
            match self.slot(number) {
                Some(later) if later > at => at = later,
                _ => return at.saturating_duration_since(now),
            }
        }
    }

    /// The venue answered `code` with `retry_after`: a 429 pauses the host for the wait it asks
    /// (or [`PAUSE_429`]), a 418 for at least [`BAN_MIN`]. Returns the pause, if any.
    pub fn answered(&self, code: u16, retry_after: Option<Duration>) -> Option<Duration> {
        let wait = match code {
            429 => retry_after.unwrap_or(PAUSE_429),
            418 => retry_after.unwrap_or(BAN_MIN).max(BAN_MIN),
            _ => return None,
        }
        .min(PAUSE_MAX);
        tracing::warn!(
            host = %self.host,
            status = code,
            pause_s = wait.as_secs_f64(),
            "REST host answered {code}: every request to it waits until the pause is over."
        );
        self.pause_until(Instant::now() + wait);
        Some(wait)
    }

    /// No request to this host goes before `until`; requests already waiting keep their order
    /// and spacing behind it. A shorter pause than one in force changes nothing.
    pub fn pause_until(&self, until: Instant) {
        let now = Instant::now();
        let mut s = self.lock();
        if s.paused_until.is_some_and(|p| p >= until) {
            return;
        }
        s.paused_until = Some(until);
        // The requests not gone yet move together, so their spacing (and with it every
        // window's weight) stays as it was, and the first of them goes when the pause ends.
        if let Some(first) = s.taken.iter().map(|(at, _)| *at).find(|at| *at > now)
            && first < until
        {
            let shift = until - first;
            for (at, _) in s.taken.iter_mut().filter(|(at, _)| *at > now) {
                *at += shift;
            }
        }
    }

    /// Reserves the next slot for `weight`: returns the request's number and when it goes.
    fn reserve(&self, weight: u32, now: Instant) -> (u64, Instant) {
        let mut s = self.lock();
        while s.taken.front().is_some_and(|(at, _)| *at + self.per <= now) {
            s.taken.pop_front();
            s.front += 1;
        }
        let mut at = s.taken.back().map_or(now, |(last, _)| (*last).max(now));
        if let Some(p) = s.paused_until {
            at = at.max(p);
        }
        // The weight still in the window at `at`; while it leaves no room, move `at` to when
        // the oldest request in it leaves the window.
        let mut oldest = s.taken.partition_point(|(t, _)| *t + self.per <= at);
        let mut held: u64 = s.taken.range(oldest..).map(|(_, w)| u64::from(*w)).sum();
        while held + u64::from(weight) > u64::from(self.allowed) {
            let (t, w) = s.taken[oldest];
            at = at.max(t + self.per);
            held -= u64::from(w);
            oldest += 1;
        }
        s.taken.push_back((at, weight));
        (s.front + s.taken.len() as u64 - 1, at)
    }

    /// When request `number` goes now (a pause may have moved it); `None` once it left the
    /// window.
    fn slot(&self, number: u64) -> Option<Instant> {
        let s = self.lock();
        let i = usize::try_from(number.checked_sub(s.front)?).ok()?;
        s.taken.get(i).map(|(at, _)| *at)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most weight in any window of `per` among these (time, weight) requests.
    fn busiest(at: &[(Duration, u32)], per: Duration) -> u32 {
        at.iter()
            .map(|&(t, _)| {
                at.iter()
                    .filter(|&&(u, _)| u >= t && u < t + per)
                    .map(|&(_, w)| w)
                    .sum::<u32>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Starts one task per weight, in this order (each asks before the next starts); returns
    /// the tasks, which yield when each request went (since `start`) and its weight.
    async fn ask(
        budget: &Arc<RestBudget>,
        weights: &[u32],
        start: Instant,
    ) -> Vec<tokio::task::JoinHandle<(Duration, u32)>> {
        let mut tasks = Vec::new();
        for &w in weights {
            let b = budget.clone();
            tasks.push(tokio::spawn(async move {
                b.acquire(w).await;
                (Instant::now() - start, w)
            }));
            // Let it take its place in line before the next one asks.
            tokio::task::yield_now().await;
        }
        tasks
    }

    async fn times(tasks: Vec<tokio::task::JoinHandle<(Duration, u32)>>) -> Vec<(Duration, u32)> {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn three_hundred_snapshots_take_the_time_the_budget_says_and_no_more_weight() {
        // Binance spot: 6,000 weight a minute, wsrec takes half; limit=1000 snapshots weigh 50.
        let budgets = RestBudgets::default();
        let b = budgets.for_host("API.binance.com");
        assert_eq!(b.allowed(), 3000);
        let spot = rest_host("api.binance.com").unwrap();
        assert_eq!(spot.depth_weight(1000), 50);
        assert_eq!(
            [1, 100, 101, 500, 5000, 9999].map(|l| spot.depth_weight(l)),
            [5, 5, 25, 25, 250, 250]
        );
        let usdm = rest_host("FAPI.binance.com").unwrap();
        assert_eq!(
            [5, 50, 100, 500, 1000].map(|l| usdm.depth_weight(l)),
            [2, 2, 5, 10, 20]
        );
        let start = Instant::now();
        let went = times(ask(&b, &[50; 300], start).await).await;
        // 60 requests a minute: the first 60 at once, the last 60 four minutes later.
        let last = went.iter().map(|(t, _)| *t).max().unwrap();
        assert_eq!(last, Duration::from_secs(240));
        assert_eq!(
            went.iter().filter(|(t, _)| t.is_zero()).count(),
            60,
            "the first window's share goes at once"
        );
        assert!(busiest(&went, Duration::from_secs(60)) <= 3000);
        assert_eq!(busiest(&went, Duration::from_secs(60)), 3000);
        // USDⓈ-M has a budget of its own; an unknown host none.
        assert_eq!(budgets.for_host("fapi.binance.com").allowed(), 1200);
        assert_eq!(budgets.for_host("www.bitstamp.net").allowed(), 300);
        assert!(Arc::ptr_eq(&b, &budgets.for_host("api.binance.com")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_waiting_request_and_keeps_the_windows() {
        let b = Arc::new(RestBudget::new("h", 100, Duration::from_secs(60)));
        let start = Instant::now();
        // Ten requests of 40: two a minute (0, 0, 60, 60, 120, ...).
        let tasks = ask(&b, &[40; 10], start).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        // At 10 s the venue says 429, wait 100 s: nothing goes before 110 s.
        assert_eq!(
            b.answered(429, Some(Duration::from_secs(100))),
            Some(Duration::from_secs(100))
        );
        // A shorter pause afterwards does not cut it short.
        b.pause_until(Instant::now() + Duration::from_secs(5));
        let late = ask(&b, &[40], start).await;
        let went = times(tasks.into_iter().chain(late).collect()).await;
        let after: Vec<Duration> = went[2..].iter().map(|(t, _)| *t).collect();
        assert!(
            after.iter().all(|t| *t >= Duration::from_secs(110)),
            "{after:?}"
        );
        assert_eq!(after[0], Duration::from_secs(110), "{after:?}");
        assert!(busiest(&went, Duration::from_secs(60)) <= 100, "{went:?}");
        // In order, the last one after every earlier one.
        assert!(went.windows(2).all(|w| w[0].0 <= w[1].0), "{went:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ban_pauses_at_least_as_long_as_it_says() {
        let b = RestBudget::new("h", 100, Duration::from_secs(60));
        assert_eq!(b.answered(503, Some(Duration::from_secs(9))), None);
        assert_eq!(
            b.answered(418, Some(Duration::from_secs(600))),
            Some(Duration::from_secs(600))
        );
        let t0 = Instant::now();
        b.acquire(1).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(600));
        // A ban without Retry-After, or with a short one, lasts Binance's shortest ban; a 429
        // without one, a window.
        assert_eq!(b.answered(418, Some(Duration::from_secs(1))), Some(BAN_MIN));
        assert_eq!(b.answered(418, None), Some(BAN_MIN));
        assert_eq!(b.answered(429, None), Some(PAUSE_429));
        let t0 = Instant::now();
        b.acquire(1).await;
        assert_eq!(Instant::now() - t0, BAN_MIN);
        // A Retry-After past any sense is capped, not an overflow.
        let huge = crate::net::transport::parse_retry_after("99999999999999999999999");
        assert_eq!(b.answered(429, huge), Some(PAUSE_MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_go_in_the_order_they_asked_and_a_heavy_one_is_not_starved() {
        let b = Arc::new(RestBudget::new("h", 100, Duration::from_secs(60)));
        let start = Instant::now();
        // 60 in the window, then a request of 90 that must wait, then a stream of light ones
        // that would fit at once: they wait behind it.
        let mut weights = vec![60, 90];
        weights.extend([5; 20]);
        let went = times(ask(&b, &weights, start).await).await;
        assert_eq!(went[0].0, Duration::ZERO);
        assert_eq!(went[1].0, Duration::from_secs(60), "{went:?}");
        assert!(went[2..].iter().all(|(t, _)| *t >= went[1].0), "{went:?}");
        assert!(went.windows(2).all(|w| w[0].0 <= w[1].0), "{went:?}");
        assert!(busiest(&went, Duration::from_secs(60)) <= 100, "{went:?}");
        // A request heavier than the whole budget waits for an empty window, then goes.
        let t0 = Instant::now();
        b.acquire(1000).await;
        assert!(Instant::now() - t0 <= Duration::from_secs(120));
    }
}
