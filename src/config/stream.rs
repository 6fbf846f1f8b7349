//! One `[[stream]]`: the feed, what to send, how its lines look and where they go, how the
//! connection is kept alive and retried, and the stream-level defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::tags::Tags;
use super::value::{byte_size, duration, opt_duration};
use super::{
    DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_FSYNC_INTERVAL,
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEALTHY_AFTER, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PATH_TEMPLATE, DEFAULT_PING_INTERVAL, DEFAULT_PONG_TIMEOUT, DEFAULT_RETRY_AFTER_MAX,
    DEFAULT_ROTATE, DEFAULT_SILENCE_TIMEOUT, OutMessage, ProxySetting, Secret, mask_url,
};

/// Where a message's receive time (`ts`) comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TsSource {
    /// The recorder's clock when it reads the frame off the socket.
    Read,
    /// The kernel's receive time of the TCP data that completed the frame (`SO_TIMESTAMPING`
    /// software receive stamps): scheduling delays of the recorder do not move it. The default:
    /// the bench measures no cost for it (README, "Receive times while the disk stalls").
    #[default]
    Kernel,
}

/// When written data is forced to disk (`fsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// Leave it to the OS (page cache only); files are still synced when closed.
    Never,
    /// At most `fsync_interval` of data unsynced (the default).
    #[default]
    Interval,
    /// After every write batch.
    Always,
}

/// How a stream's lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line with receive time, stream, connection and sequence around the
    /// message; lifecycle events are lines of the same file.
    #[default]
    Envelope,
    /// The message bytes verbatim plus `\n`; events go to a sidecar `.events.ndjson` file.
    Raw,
}

/// A stream's permessage-deflate setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Not offered: the server sends uncompressed frames.
    #[default]
    None,
    /// Offered (RFC 7692); used if the server agrees.
    Deflate,
}

/// One `[[stream]]`: a feed to connect to and record.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Name used in file names and records; letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// `ws://` or `wss://` URL; with `venue`, the preset's unless given.
    #[serde(default)]
    pub url: String,
    /// Venue preset (`wsrec venues` lists them): fills in the URL, subscribe messages,
    /// keepalive, liveness, lifetime and limits; any of those given here wins.
    #[serde(default)]
    pub venue: Option<String>,
    /// With `venue`: channels, each subscribed for every symbol in `symbols`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// With `venue`: symbols for `channels`.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// With `venue`: full topics in the venue's notation (e.g. `publicTrade.BTCUSDT`).
    #[serde(default)]
    pub topics: Vec<String>,
    /// A subscription that delivers no data for this long after subscribing is reported (ERROR
    /// log, status flag, `subscription_silent` event). Presets: `"2m"`; otherwise off.
    #[serde(default, deserialize_with = "opt_duration")]
    pub first_data_timeout: Option<Duration>,
    /// With `venue`: most topics on one connection; more topics open more connections.
    #[serde(default = "default_topics_limit")]
    pub max_topics_per_connection: usize,
    /// With `venue`: most topics in one subscribe message.
    #[serde(default = "default_topics_limit")]
    pub max_topics_per_message: usize,
    /// Least time between two connection attempts to the same venue (or host), whole process.
    #[serde(default, deserialize_with = "opt_duration")]
    pub connect_interval: Option<Duration>,
    /// Least time between two subscribe messages to the same venue (or host), whole process.
    #[serde(default, deserialize_with = "opt_duration")]
    pub subscribe_interval: Option<Duration>,
    /// Messages sent in order after every connect.
    #[serde(default)]
    pub subscribe: Vec<OutMessage>,
    /// Extra handshake headers; values are masked everywhere.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Line format.
    #[serde(default)]
    pub format: Format,
    /// Path template under the output directory: strftime fields (UTC, start of the interval),
    /// `{stream}`, `{start_unix}` and `{tag.KEY}`.
    #[serde(default = "default_path_template")]
    pub path: String,
    /// Static key/value text about the stream (region, role, …), written into each
    /// `connected` event and each manifest and usable in `path` as `{tag.KEY}`. The top-level
    /// `tags` apply too; the stream's own win (see [`Config::stream_tags`]).
    ///
    /// [`Config::stream_tags`]: super::Config::stream_tags
    #[serde(default, deserialize_with = "super::tags::tags")]
    pub tags: Tags,
    /// Rotation interval, aligned to the Unix epoch in UTC.
    #[serde(default = "default_rotate", deserialize_with = "duration")]
    pub rotate: Duration,
    /// Also rotate after this many lines (0: no limit).
    #[serde(default)]
    pub max_lines: u64,
    /// Also rotate after this many bytes (0: no limit).
    #[serde(default, deserialize_with = "byte_size")]
    pub max_bytes: u64,
    /// When written data is forced to disk.
    #[serde(default)]
    pub fsync: Fsync,
    /// With `fsync = "interval"`: at most this much time of data is left unsynced.
    #[serde(default = "default_fsync_interval", deserialize_with = "duration")]
    pub fsync_interval: Duration,
    /// Delete closed files older than this (by modification time); off by default.
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_age: Option<Duration>,
    /// Delete the oldest closed files while the stream's files exceed this size (0: no limit).
    #[serde(default, deserialize_with = "byte_size")]
    pub max_total_bytes: u64,
    /// Protocol ping interval; `"off"` disables.
    #[serde(default = "default_ping_interval", deserialize_with = "opt_duration")]
    pub ping_interval: Option<Duration>,
    /// Deadline for the pong (or the app-level reply); `"off"` disables.
    #[serde(default = "default_pong_timeout", deserialize_with = "opt_duration")]
    pub pong_timeout: Option<Duration>,
    /// App-level ping message (text or JSON), sent every `app_ping_interval`.
    #[serde(default)]
    pub app_ping: Option<OutMessage>,
    /// Interval of the app-level ping.
    #[serde(default = "default_ping_interval", deserialize_with = "opt_duration")]
    pub app_ping_interval: Option<Duration>,
    /// A message containing this text answers the app-level ping (for the reply deadline).
    #[serde(default)]
    pub app_pong_contains: Option<String>,
    /// No data message for this long forces a reconnect; `"off"` disables.
    #[serde(default = "default_silence_timeout", deserialize_with = "opt_duration")]
    pub silence_timeout: Option<Duration>,
    /// Deadline for TCP connect, TLS and the upgrade together.
    #[serde(default = "default_handshake_timeout", deserialize_with = "duration")]
    pub handshake_timeout: Duration,
    /// Largest accepted message; a larger one ends the connection with a logged reason.
    #[serde(default = "default_max_message_size", deserialize_with = "byte_size")]
    pub max_message_size: u64,
    /// Planned reconnect after this connection age, make-before-break; `"off"` by default.
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_connection_age: Option<Duration>,
    /// First reconnect delay.
    #[serde(default = "default_backoff_initial", deserialize_with = "duration")]
    pub backoff_initial: Duration,
    /// Cap of the reconnect delay.
    #[serde(default = "default_backoff_max", deserialize_with = "duration")]
    pub backoff_max: Duration,
    /// A connection that lasted this long resets the backoff.
    #[serde(default = "default_healthy_after", deserialize_with = "duration")]
    pub healthy_after: Duration,
    /// Extra PEM CA certificates to trust for `wss://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (logged loudly at every connect).
    #[serde(default)]
    pub insecure: bool,
    /// permessage-deflate (RFC 7692): `"none"` (default) or `"deflate"`, offered to the server
    /// and used if it agrees; the recording holds the decompressed messages either way.
    #[serde(default)]
    pub compression: Compression,
    /// With `compression = "deflate"`: ask the server to compress with a window of at most
    /// 2^bits bytes (9 to 15), which bounds the memory the inflater needs. Default: not asked,
    /// the server picks (usually 15, or 12 for Python `websockets`).
    #[serde(default)]
    pub deflate_server_max_window_bits: Option<u8>,
    /// With `compression = "deflate"`: ask the server to start every message with a fresh
    /// compression context (`server_no_context_takeover`): worse ratio, no state kept between
    /// messages. Default `false`.
    #[serde(default)]
    pub deflate_server_no_context_takeover: bool,
    /// HTTP CONNECT proxy: `"http://[user:password@]host:port"`, or `"env"` to take it from
    /// `https_proxy`/`HTTPS_PROXY` (`wss://`), `http_proxy` (`ws://`), `all_proxy`/`ALL_PROXY`
    /// and `no_proxy`/`NO_PROXY`. Default: none, the environment is ignored.
    #[serde(default)]
    pub proxy: Option<ProxySetting>,
    /// Longest `Retry-After` (sent with HTTP 429/503 refusals) that is honoured; a longer one is
    /// cut to this. Default `"1h"`.
    #[serde(default = "default_retry_after_max", deserialize_with = "duration")]
    pub retry_after_max: Duration,
    /// With a `[nats]` table: whether this stream's lines are published (default true).
    #[serde(default = "default_true")]
    pub nats: bool,
    /// Where `ts` comes from: `"kernel"` (default, the kernel's receive time of the data, see
    /// [`TsSource`]) or `"read"` (the recorder's clock when it reads the frame).
    #[serde(default)]
    pub ts_source: TsSource,
    /// With a venue that hands out a connect token by REST before each connect (KuCoin): the
    /// endpoint asked (`http://` or `https://`), through `proxy` and with the TLS settings of
    /// the stream. Set by the preset while `url` is the preset's own; a `url` of your own (a
    /// relay, a replay server) is dialled as it is unless you set `token_url` too.
    #[serde(default)]
    pub token_url: Option<String>,
    /// With a venue whose book channels start from a REST depth snapshot (Binance `depth`,
    /// Bitstamp `diff_order_book`): whether the recorder fetches one per symbol after each
    /// connection's first difference and writes it into the stream (default true).
    #[serde(default = "default_true")]
    pub snapshots: bool,
    /// The REST API base URL those snapshots are asked from (`http://` or `https://`), through
    /// `proxy` and with the stream's TLS settings. Set by the preset while `url` is the preset's
    /// own; with a `url` of your own (a relay, a replay server) no snapshot is fetched unless
    /// you set it too.
    #[serde(default)]
    pub snapshot_url: Option<String>,
    /// The depth asked for (the venue's `limit`), instead of the preset's.
    #[serde(default)]
    pub snapshot_depth: Option<u32>,
    /// A fresh snapshot of every symbol this often, as a resync anchor so a reader can start
    /// mid-file (default off: one per connection).
    #[serde(default, deserialize_with = "opt_duration")]
    pub snapshot_interval: Option<Duration>,
    /// Stop the recorder, instead of retrying, when an attempt fails in a way retrying does
    /// not fix (a 4xx other than 408 and 429, a 301 or 308 redirect, a rejected TLS
    /// certificate) before any connection of the stream has succeeded: [`Recorder::run`]
    /// then returns [`RunError::Refused`]. Once the stream has connected, every failure is
    /// retried. Set by `wsrec record URL` (one-line mode) unless `--retry`; not a config file
    /// key: a recorder run from a config file retries, as a daemon should. Default `false`.
    ///
    /// [`Recorder::run`]: crate::Recorder::run
    /// [`RunError::Refused`]: crate::RunError::Refused
    #[serde(skip)]
    pub stop_on_refusal: bool,
}

impl StreamConfig {
    /// A stream with every option at its default.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            venue: None,
            channels: Vec::new(),
            symbols: Vec::new(),
            topics: Vec::new(),
            first_data_timeout: None,
            max_topics_per_connection: default_topics_limit(),
            max_topics_per_message: default_topics_limit(),
            connect_interval: None,
            subscribe_interval: None,
            subscribe: Vec::new(),
            headers: BTreeMap::new(),
            format: Format::default(),
            path: default_path_template(),
            tags: Tags::new(),
            rotate: DEFAULT_ROTATE,
            max_lines: 0,
            max_bytes: 0,
            fsync: Fsync::default(),
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
            max_age: None,
            max_total_bytes: 0,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            pong_timeout: Some(DEFAULT_PONG_TIMEOUT),
            app_ping: None,
            app_ping_interval: Some(DEFAULT_PING_INTERVAL),
            app_pong_contains: None,
            silence_timeout: Some(DEFAULT_SILENCE_TIMEOUT),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_connection_age: None,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            healthy_after: DEFAULT_HEALTHY_AFTER,
            ca_file: None,
            insecure: false,
            compression: Compression::None,
            deflate_server_max_window_bits: None,
            deflate_server_no_context_takeover: false,
            proxy: None,
            retry_after_max: DEFAULT_RETRY_AFTER_MAX,
            nats: true,
            ts_source: TsSource::Kernel,
            token_url: None,
            snapshots: true,
            snapshot_url: None,
            snapshot_depth: None,
            snapshot_interval: None,
            stop_on_refusal: false,
        }
    }

    /// Adds a subscribe message (sent verbatim).
    pub fn subscribe(mut self, message: impl Into<String>) -> Self {
        self.subscribe.push(OutMessage(message.into()));
        self
    }

    /// The URL with user info and query values masked, for logs, status and records.
    pub fn masked_url(&self) -> String {
        mask_url(&self.url)
    }
}

/// Default of the boolean switches that are on unless turned off.
pub(super) fn default_true() -> bool {
    true
}
fn default_rotate() -> Duration {
    DEFAULT_ROTATE
}
pub(super) fn default_path_template() -> String {
    DEFAULT_PATH_TEMPLATE.to_owned()
}
fn default_topics_limit() -> usize {
    1000
}

fn default_ping_interval() -> Option<Duration> {
    Some(DEFAULT_PING_INTERVAL)
}
fn default_pong_timeout() -> Option<Duration> {
    Some(DEFAULT_PONG_TIMEOUT)
}
fn default_silence_timeout() -> Option<Duration> {
    Some(DEFAULT_SILENCE_TIMEOUT)
}
fn default_handshake_timeout() -> Duration {
    DEFAULT_HANDSHAKE_TIMEOUT
}
fn default_max_message_size() -> u64 {
    DEFAULT_MAX_MESSAGE_SIZE
}
fn default_backoff_initial() -> Duration {
    DEFAULT_BACKOFF_INITIAL
}
fn default_backoff_max() -> Duration {
    DEFAULT_BACKOFF_MAX
}
fn default_fsync_interval() -> Duration {
    DEFAULT_FSYNC_INTERVAL
}
fn default_healthy_after() -> Duration {
    DEFAULT_HEALTHY_AFTER
}
fn default_retry_after_max() -> Duration {
    DEFAULT_RETRY_AFTER_MAX
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;

    #[test]
    fn subscribe_accepts_text_and_json_values() {
        let c = parse(
            r#"
            [[stream]]
            name = "a"
            url = "ws://127.0.0.1:1/"
            subscribe = ['{"op":"subscribe"}', { op = "subscribe", args = ["x"] }, "ping"]
            "#,
        )
        .unwrap();
        let subs: Vec<&str> = c.streams[0].subscribe.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            subs,
            [
                r#"{"op":"subscribe"}"#,
                r#"{"op":"subscribe","args":["x"]}"#,
                "ping"
            ]
        );
    }
}
