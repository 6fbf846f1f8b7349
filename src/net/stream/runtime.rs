//! The per-stream settings and shared state ([`StreamRuntime`], called `rt` everywhere) that the
//! stream's supervisor owns and every connection of the stream reads: how to dial, what to
//! subscribe to, keepalive and liveness limits, venue tracking, the stream's sequence and
//! connection counters, its stats, and where backpressure is reported.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::clock::Clock;
use crate::net::transport::ConnectSpec;
use crate::observe::stats::StreamStats;

/// Per-stream settings and shared state every connection of the stream uses.
#[derive(Debug)]
pub struct StreamRuntime {
    /// Index of the stream in the config (and in the writer).
    pub idx: usize,
    /// Stream name, for logs.
    pub name: String,
    /// The URL with secrets masked, for logs and records.
    pub masked_url: String,
    /// The stream's tags (the top-level ones merged in), for each `connected` event.
    pub tags: crate::config::Tags,
    /// How to dial.
    pub spec: ConnectSpec,
    /// Subscribe messages, sent in order after every connect.
    pub subscribe: Vec<String>,
    /// Protocol ping interval.
    pub ping_interval: Option<Duration>,
    /// Deadline for a pong or app-level reply.
    pub pong_timeout: Option<Duration>,
    /// App-level ping text.
    pub app_ping: Option<String>,
    /// App-level ping interval.
    pub app_ping_interval: Option<Duration>,
    /// Bytes whose presence in a message marks it as the app-level reply.
    pub app_pong_contains: Option<Vec<u8>>,
    /// No data for this long forces a reconnect.
    pub silence_timeout: Option<Duration>,
    /// TLS verification is off (warned about at every connect).
    pub insecure: bool,
    /// Stream sequence counter, shared by overlapping connections and by the stream's shards.
    pub seq: Arc<AtomicU64>,
    /// Next connection number of the stream, shared by its shards.
    pub next_conn: Arc<AtomicU64>,
    /// This runtime's shard (a venue stream whose topics need several connections has one
    /// runtime per shard).
    pub shard: ShardPosition,
    /// Venue preset streams: what each subscribe message asks for, to follow acks and data.
    pub venue: Option<VenueRuntime>,
    /// Spacing of connects and subscribe messages, shared with every stream of the same venue.
    pub pacer: Option<Arc<crate::net::venue::pace::Pacer>>,
    /// The REST call made before every connect for the URL to dial (KuCoin's connect token);
    /// without it the stream dials `spec.url`.
    pub token: Option<crate::net::venue::token::TokenStep>,
    /// REST depth snapshots for the book channels that start from one (none when the stream
    /// has no such channel or `snapshots = false`).
    pub snapshots: Option<SnapshotSetup>,
    /// The stream's counters.
    pub stats: Arc<StreamStats>,
    /// Receive-time clock.
    pub clock: Clock,
    /// Most messages in one batch (never more than the queue can hold).
    pub batch_max: usize,
    /// Told when a batch was cut short with more frames ready, so background compression
    /// keeps out of the way while the network is ahead of us.
    pub pressure: Arc<crate::fair::Pressure>,
}

/// What a connection needs to start snapshot tasks.
#[derive(Debug)]
pub struct SnapshotSetup {
    /// The base URL asked (the preset's REST API, or the stream's `snapshot_url`).
    pub base: String,
    /// The depth asked for, instead of each channel's default.
    pub depth: Option<u32>,
    /// A fresh snapshot this often while the connection lives.
    pub interval: Option<Duration>,
    /// The preset whose book channels say which topics need a snapshot and how to fetch it.
    pub preset: &'static crate::net::venue::Preset,
    /// The process-wide request budgets, one per REST host.
    pub budgets: Arc<crate::net::venue::rest::RestBudgets>,
}

/// Which shard of its stream a runtime is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardPosition {
    /// 1-based number of this shard.
    pub number: usize,
    /// How many shards the stream has (1 for a stream that is not split).
    pub count: usize,
}

/// What a venue stream's connections follow.
#[derive(Debug)]
pub struct VenueRuntime {
    /// The protocol family.
    pub family: crate::net::venue::Family,
    /// Per subscribe message: topics and request id (the topics named in the URL first, if
    /// any, without id).
    pub requests: Vec<(Vec<crate::net::venue::Topic>, Option<u64>)>,
    /// Topics the connection URL names itself (no subscribe message), for the `subscribed`
    /// event.
    pub in_url: Vec<crate::net::venue::Topic>,
    /// How long a topic may go without data before it is reported.
    pub first_data_timeout: Option<Duration>,
    /// How long to wait after the handshake before the first subscribe message (the preset's
    /// `subscribe_after_connect`).
    pub subscribe_after_connect: Duration,
}
