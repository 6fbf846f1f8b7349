//! REST depth snapshots for the book channels that start from one (Binance `depth`, Bitstamp
//! `diff_order_book`): one task per symbol and connection, started when the connection's first
//! difference of that symbol arrives, so the network path never waits for HTTP.
//!
//! The procedure is the venue's (Binance: subscribe, let the first difference come, then fetch
//! the snapshot; if it is older than that first difference, fetch again): the task asks the
//! preset's REST endpoint through the stream's proxy and TLS settings, within the process-wide
//! weight budget of that host ([`crate::net::venue::rest`]), and writes the answer into the
//! stream as a snapshot line, through the same queue as the connection's messages. A 429 or 418
//! pauses the host for its `Retry-After`; other failures are retried with backoff; after
//! [`ATTEMPTS`] the task gives up and records a `snapshot_failed` event. With
//! `snapshot_interval` it goes on fetching a fresh snapshot every interval while the connection
//! lives. The tasks end with their connection.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::batch::Batch;
use crate::net::backoff::Backoff;
use crate::net::stream::runtime::StreamRuntime;
use crate::net::transport::http::{self, Call};
use crate::net::venue::book::RestSnapshot;
use crate::queue::QueueTx;

/// Tries per snapshot before it is given up and `snapshot_failed` recorded.
pub const ATTEMPTS: u32 = 5;
/// Largest snapshot answer taken: Binance's `limit=5000` answers are several hundred KB.
pub const MAX_BODY: usize = 16 << 20;
/// Deadline for one request (connect, answer and body).
const TIMEOUT: Duration = Duration::from_secs(30);
/// First wait after a failed try; doubles up to [`RETRY_MAX`].
const RETRY_INITIAL: Duration = Duration::from_millis(500);
/// Longest wait between two tries (a 429's `Retry-After` pauses the host on top of it).
const RETRY_MAX: Duration = Duration::from_secs(30);

/// One snapshot task's orders.
pub(super) struct Job {
    pub rt: Arc<StreamRuntime>,
    pub conn: u64,
    pub queue: QueueTx,
    pub rest: &'static RestSnapshot,
    pub symbol: String,
    /// The first update the connection's first difference of this symbol covers.
    pub first_id: Option<u64>,
    /// Ends the task (the connection ended).
    pub cancel: CancellationToken,
}

/// How one fetch ended.
enum Fetched {
    /// The snapshot line was queued.
    Written,
    /// Every try failed; `snapshot_failed` was queued.
    Failed,
    /// The connection ended first.
    Cancelled,
}

impl Job {
    /// Fetches the snapshot, then (with `snapshot_interval`) a fresh one every interval, until
    /// the connection ends.
    pub(super) async fn run(self) {
        let Some(setup) = self.rt.snapshots.as_ref() else {
            return;
        };
        let limit = setup.depth.unwrap_or(self.rest.limit);
        let url = (self.rest.url)(&setup.base, &self.symbol, limit);
        let Ok(parsed) = url::Url::parse(&url) else {
            tracing::error!(stream = %self.rt.name, url = %crate::config::mask_url(&url), "The snapshot URL is not a URL; no snapshot is fetched.");
            return;
        };
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let budget = setup.budgets.for_host(&host);
        let weight = crate::net::venue::rest::rest_host(&host).map_or(1, |h| h.depth_weight(limit));
        let mut first_id = self.first_id;
        loop {
            match self.fetch(&parsed, &budget, weight, first_id).await {
                Fetched::Cancelled => return,
                Fetched::Written | Fetched::Failed => {}
            }
            let Some(every) = setup.interval else { return };
            // A resync anchor needs no first difference to be recent enough for.
            first_id = None;
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    async fn fetch(
        &self,
        url: &url::Url,
        budget: &crate::net::venue::rest::RestBudget,
        weight: u32,
        first_id: Option<u64>,
    ) -> Fetched {
        let rt = &*self.rt;
        let masked = shown(url);
        let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        let mut last_status = None;
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                let wait = backoff.next_delay();
                tokio::select! {
                    () = self.cancel.cancelled() => return Fetched::Cancelled,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            tokio::select! {
                () = self.cancel.cancelled() => return Fetched::Cancelled,
                _ = budget.acquire(weight) => {}
            }
            let call = Call {
                max_body: MAX_BODY,
                timeout: TIMEOUT,
                clock: rt.clock,
            };
            let answer = tokio::select! {
                () = self.cancel.cancelled() => return Fetched::Cancelled,
                a = http::get(&rt.spec, url, call) => a,
            };
            match answer {
                Ok(a) if a.code == 200 => {
                    let current = (self.rest.snapshot_id)(&a.body);
                    if let (Some(have), Some(need)) = (current, first_id)
                        && self.rest.is_stale(have, need)
                    {
                        tracing::info!(stream = %rt.name, conn = self.conn, symbol = %self.symbol, snapshot_id = have, first_id = need, attempt, "The depth snapshot is older than the first difference; fetching it again.");
                        last_status = Some(a.code);
                        last_error = format!(
                            "the snapshot (update {have}) was older than the first difference \
                             (update {need})"
                        );
                        continue;
                    }
                    let mut batch = Batch::new(rt.idx, self.conn);
                    batch.push_snapshot(
                        a.done_ns,
                        |f| {
                            f.str("symbol", &self.symbol)
                                .str("url", &masked)
                                .num("status", u64::from(a.code))
                                .num("sent_ts", a.sent_ns)
                                .num("attempts", u64::from(attempt));
                            if let Some(id) = first_id {
                                f.num("first_id", id);
                            }
                        },
                        &a.body,
                    );
                    rt.stats
                        .snapshots
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.send(batch).await;
                    return Fetched::Written;
                }
                Ok(a) => {
                    budget.answered(a.code, a.retry_after);
                    tracing::warn!(stream = %rt.name, conn = self.conn, symbol = %self.symbol, url = %masked, status = a.code, attempt, body = %a.quoted_body(), "The depth snapshot request was refused.");
                    last_status = Some(a.code);
                    last_error = format!("HTTP {} {}", a.code, a.reason);
                }
                Err(e) => {
                    tracing::warn!(stream = %rt.name, conn = self.conn, symbol = %self.symbol, url = %masked, error = %e, attempt, "The depth snapshot request failed.");
                    last_status = None;
                    last_error = e.to_string();
                }
            }
        }
        rt.stats
            .snapshot_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(stream = %rt.name, conn = self.conn, symbol = %self.symbol, url = %masked, error = %last_error, attempts = ATTEMPTS, "No depth snapshot: the book of this symbol cannot be rebuilt from this connection's differences until the next snapshot.");
        let mut batch = Batch::new(rt.idx, self.conn);
        batch.push_event(rt.clock.now_ns(), "snapshot_failed", |f| {
            f.str("symbol", &self.symbol).str("url", &masked);
            if let Some(code) = last_status {
                f.num("status", u64::from(code));
            }
            f.str("error", &last_error)
                .num("attempts", u64::from(ATTEMPTS));
        });
        self.send(batch).await;
        Fetched::Failed
    }

    async fn send(&self, batch: Batch) {
        let mut dropped = 0;
        // Snapshot lines and events are never dropped; a writer that is gone (shutdown) takes
        // nothing more.
        let _ = self.queue.send(batch, &mut dropped).await;
    }
}

/// The URL as recorded and logged: the query the preset built (symbol, depth) is kept, so a
/// reader knows what was asked; user info from a `snapshot_url` of the user's is masked.
fn shown(url: &url::Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username("***");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}
