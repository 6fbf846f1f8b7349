//! The recorder's configuration: the TOML file, the Go JSONL streamer's JSON file, and validation.
//!
//! Everything the pipeline needs is described here as plain data. Parsing is strict (unknown
//! fields are errors that name the field), every default is a named constant, and
//! [`Config::validate`] checks what serde cannot (names, URLs, templates) before anything is
//! opened or written, so a bad config never leaves a half-started recorder behind.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::ConfigError;

/// Default output directory.
pub const DEFAULT_OUTPUT_DIR: &str = "./data";
/// Default status socket file name, inside the output directory.
pub const DEFAULT_STATUS_SOCKET_NAME: &str = ".wsrec.sock";
/// Default period of the status log line.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(60);
/// Default capacity of the queue between connections and the writer, in messages.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// Default bound on the bytes waiting for the disk worker (`disk_buffer`): what the writer hands
/// on while a write or an `fsync` stalls, so the connections go on reading. 64 MiB holds about
/// 2 s of the bench's flood of 100,000 msg/s of 300-byte lines (30 MB/s), and about 20 s of a
/// busy feed of 10,000 msg/s; it is memory taken only while a stall lasts.
pub const DEFAULT_DISK_BUFFER: u64 = 64 << 20;
/// Least `disk_buffer`: two of the writer's full buffers, so one can wait while one is written.
pub const MIN_DISK_BUFFER: u64 = 2 * crate::fsutil::FLUSH_BYTES as u64;
/// Default bound on how long received data may sit in memory before it is handed to the OS.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default deadline for a graceful shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default rotation interval (UTC-aligned).
pub const DEFAULT_ROTATE: Duration = Duration::from_secs(3600);
/// Default path template, relative to the output directory.
pub const DEFAULT_PATH_TEMPLATE: &str = "{stream}/%Y-%m-%d/{stream}-%Y%m%dT%H%M%SZ.jsonl";
/// Default protocol ping interval.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Default deadline for a pong (or app-level reply) after a ping.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(15);
/// Default silence timeout: no data message for this long forces a reconnect.
pub const DEFAULT_SILENCE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default handshake timeout (TCP connect, TLS and the HTTP upgrade together).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default number of runtime threads. One thread carries every connection and the writer:
/// a batch is formatted on the core that received it, still in its cache, which costs ~15%
/// less CPU per message than two threads and records faster (the bench's small-envelope
/// scenario); the disk worker and the compressor still run beside it.
pub const DEFAULT_THREADS: usize = 1;
/// Most runtime threads accepted.
pub const MAX_THREADS: usize = 256;
/// Default maximum message size: above the 5 MB Coinbase order-book snapshots with room to spare.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 64 * 1024 * 1024;
/// Default first reconnect delay.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Default cap of the reconnect delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Default bound on unsynced data with `fsync = "interval"`.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Default free-space warning threshold.
pub const DEFAULT_DISK_WARN: Watermark = Watermark::Percent(5.0);
/// Default free-space stop threshold.
pub const DEFAULT_DISK_STOP: Watermark = Watermark::Percent(1.0);
/// A connection that lasted this long resets the backoff.
pub const DEFAULT_HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured by default: long enough for exchange rate-limit bans measured
/// in minutes, short enough that a bogus value cannot stop a stream for days.
pub const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// The whole recorder configuration (the TOML file's shape).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory all recordings go under.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Unix socket for `wsrec status`; default `<output_dir>/.wsrec.sock`; `""` turns it off.
    #[serde(default)]
    pub status_socket: Option<PathBuf>,
    /// Period of the status log line; `"off"` turns it off.
    #[serde(default = "default_status_interval", deserialize_with = "opt_duration")]
    pub status_interval: Option<Duration>,
    /// Address of the Prometheus/OpenMetrics endpoint (`GET /metrics`); off when absent.
    #[serde(default, deserialize_with = "opt_listen_addr")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Log file (appended to); none by default.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// Whether logs also go to stdout.
    #[serde(default = "default_true")]
    pub log_to_stdout: bool,
    /// Threads of the async runtime, which runs the connections and the writer (the disk
    /// worker and the compressor have threads of their own).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Capacity of the queue between connections and the writer, in messages.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// What a connection does when that queue is full.
    #[serde(default)]
    pub when_full: WhenFull,
    /// Longest time received data sits in memory before it is written to the OS.
    #[serde(default = "default_flush_interval", deserialize_with = "duration")]
    pub flush_interval: Duration,
    /// Most bytes of encoded lines waiting for the disk (a stalled write or `fsync`) before the
    /// writer waits and `when_full` applies.
    #[serde(default = "default_disk_buffer", deserialize_with = "byte_size")]
    pub disk_buffer: u64,
    /// Deadline for a graceful shutdown.
    #[serde(default = "default_shutdown_timeout", deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// Compression of closed files, in the background.
    #[serde(default)]
    pub compress: Codec,
    /// Compression level (zstd 1-22, default 1; gzip 0-9, default 6).
    #[serde(default)]
    pub compress_level: Option<i32>,
    /// Below this much free space in the output directory: a WARN log and a status flag.
    #[serde(default = "default_disk_warn")]
    pub disk_warn: Option<Watermark>,
    /// Below this much free space: stop writing messages (counted and marked) until space returns.
    #[serde(default = "default_disk_stop")]
    pub disk_stop: Option<Watermark>,
    /// Live fan-out of every recorded line to NATS JetStream; off when absent.
    #[serde(default)]
    pub nats: Option<crate::nats::NatsConfig>,
    /// Upload of sealed files to object storage (`[upload]`); off when absent.
    #[serde(default)]
    pub upload: Option<crate::upload::UploadConfig>,
    /// The streams to record.
    #[serde(default, rename = "stream")]
    pub streams: Vec<StreamConfig>,
}

/// What a connection does when the writer's queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: nothing is lost, but reading stalls (and the venue may disconnect).
    #[default]
    Block,
    /// Drop the incoming messages, count them and mark the gap in the data.
    DropNewest,
}

/// Where a message's receive time (`ts`) comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TsSource {
    /// The recorder's clock when it reads the frame off the socket (the default).
    #[default]
    Read,
    /// The kernel's receive time of the TCP data that completed the frame (`SO_TIMESTAMPING`
    /// software receive stamps): scheduling delays of the recorder do not move it.
    Kernel,
}

/// Compression codec of closed files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// zstd (`.jsonl.zst`), the default: fast and small.
    #[default]
    Zstd,
    /// gzip (`.jsonl.gz`), for tools that only know gzip.
    Gzip,
    /// Leave closed files as they are.
    None,
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

/// A free-space threshold: bytes, or a percentage of the filesystem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Watermark {
    /// Absolute free bytes.
    Bytes(u64),
    /// Percent of the filesystem's size.
    Percent(f64),
}

impl Watermark {
    /// The threshold in bytes for a filesystem of `total` bytes.
    pub fn bytes(&self, total: u64) -> u64 {
        match *self {
            Watermark::Bytes(b) => b,
            Watermark::Percent(p) => (total as f64 * p / 100.0) as u64,
        }
    }

    /// Parses `"5%"`, `"2GiB"`, `1000000` or `"off"`.
    pub fn parse(s: &str) -> Result<Option<Watermark>, String> {
        let t = s.trim();
        if matches!(t, "off" | "none") {
            return Ok(None);
        }
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage; write e.g. \"5%\""))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("`{s}` is not between 0% and 100%"));
            }
            return Ok(Some(Watermark::Percent(v)));
        }
        parse_byte_size(t).map(|b| Some(Watermark::Bytes(b)))
    }
}

impl<'de> Deserialize<'de> for Watermark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Some(Watermark::Bytes(n)),
            NumOrStr::Str(s) => Watermark::parse(&s).map_err(serde::de::Error::custom)?,
        };
        // "off" is handled by the Option around the field; a bare "off" here means zero.
        Ok(parsed.unwrap_or(Watermark::Bytes(0)))
    }
}

/// How a stream's lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line with receive time, stream, connection and sequence around the
    /// message; lifecycle events are lines of the same file.
    #[default]
    Envelope,
    /// The message bytes verbatim plus `\n`; events go to a sidecar `.events.jsonl` file.
    Raw,
}

/// A message sent to the server: raw text, or a JSON value written compactly.
#[derive(Clone, PartialEq, Eq)]
pub struct OutMessage(pub String);

impl OutMessage {
    /// The text sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OutMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<'de> Deserialize<'de> for OutMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(match value {
            serde_json::Value::String(s) => OutMessage(s),
            other => OutMessage(other.to_string()),
        })
    }
}

/// A header value that never shows up in logs, `Debug` output or status.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
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

/// Where a stream's HTTP CONNECT proxy comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum ProxySetting {
    /// From `https_proxy`/`http_proxy`/`all_proxy` and `no_proxy`, read at start.
    Env,
    /// This proxy URL, `http://[user:password@]host:port`.
    Url(String),
}

impl fmt::Debug for ProxySetting {
    /// The password of a proxy URL never shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Env => f.write_str("env"),
            ProxySetting::Url(url) => fmt::Debug::fmt(&mask_proxy_url(url), f),
        }
    }
}

/// A proxy URL for logs and errors: user and password masked, even when the URL does not parse
/// or lacks its `http://`.
pub fn mask_proxy_url(url: &str) -> String {
    let full = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    match url::Url::parse(&full) {
        Ok(_) => mask_url(&full),
        // Unparseable: keep only what follows the user info, which is where a password would be.
        Err(_) => match full.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => full,
        },
    }
}

impl<'de> Deserialize<'de> for ProxySetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(if text.trim() == "env" {
            ProxySetting::Env
        } else {
            ProxySetting::Url(text)
        })
    }
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
    /// `{stream}` and `{start_unix}`.
    #[serde(default = "default_path_template")]
    pub path: String,
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
    /// Where `ts` comes from: `"read"` (default, the recorder's clock when it reads the frame)
    /// or `"kernel"` (the kernel's receive time of the data, see [`TsSource`]).
    #[serde(default)]
    pub ts_source: TsSource,
    /// With a venue that hands out a connect token by REST before each connect (KuCoin): the
    /// endpoint asked (`http://` or `https://`), through `proxy` and with the TLS settings of
    /// the stream. Set by the preset while `url` is the preset's own; a `url` of your own (a
    /// relay, a replay server) is dialled as it is unless you set `token_url` too.
    #[serde(default)]
    pub token_url: Option<String>,
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
            ts_source: TsSource::Read,
            token_url: None,
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

impl Default for Config {
    fn default() -> Self {
        Self {
            output_dir: default_output_dir(),
            status_socket: None,
            status_interval: default_status_interval(),
            metrics_listen: None,
            log_file: None,
            log_to_stdout: true,
            threads: DEFAULT_THREADS,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            when_full: WhenFull::Block,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            disk_buffer: DEFAULT_DISK_BUFFER,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            compress: Codec::default(),
            compress_level: None,
            disk_warn: default_disk_warn(),
            disk_stop: default_disk_stop(),
            nats: None,
            upload: None,
            streams: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a config file: TOML, or the Go JSONL streamer's JSON (by `.json` extension or a
    /// leading `{`), then validates it.
    ///
    /// # Errors
    /// The file cannot be read, does not parse (the message names the field or line), or fails
    /// [`Config::validate`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        let config = if is_json {
            let go: GoConfig = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: format!(
                    "{e} (read as the Go JSONL streamer's JSON config; fields: output_dir, \
                         topic, ws_url, buffer_size, status_interval, log_file, log_to_stdout, \
                         status_socket)"
                ),
            })?;
            go.into_config()
        } else {
            Self::from_toml(&text).map_err(|e| match e {
                ConfigError::Parse { message, .. } => ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                },
                other => other,
            })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (without validating).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the problem and where it is.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: PathBuf::from("<config>"),
            message: e.to_string().trim_end().to_owned(),
        };
        let mut config: Config = toml::from_str(text).map_err(parse_error)?;
        // Which keys each [[stream]] set, so a venue preset fills in only the others.
        let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let given = table.get("stream").and_then(toml::Value::as_array);
        for (i, s) in config.streams.iter_mut().enumerate() {
            let keys: std::collections::BTreeSet<String> = given
                .and_then(|g| g.get(i))
                .and_then(toml::Value::as_table)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            crate::venue::apply(s, &keys)?;
        }
        Ok(config)
    }

    /// The status socket path in effect, `None` when turned off.
    pub fn status_socket_path(&self) -> Option<PathBuf> {
        match &self.status_socket {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
            None => Some(self.output_dir.join(DEFAULT_STATUS_SOCKET_NAME)),
        }
    }

    /// Checks everything serde cannot: at least one stream, names, URLs, headers, templates,
    /// sizes and intervals.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the stream, the field and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.streams.is_empty() {
            return Err(invalid(
                "config",
                "no streams: add at least one [[stream]] with a name and a url",
            ));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1"));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(invalid(
                "threads",
                &format!(
                    "must be 1 to {MAX_THREADS} (1, the default, suits up to ~3 M messages/s)"
                ),
            ));
        }
        match (self.compress, self.compress_level) {
            (Codec::Zstd, Some(l)) if !(1..=22).contains(&l) => {
                return Err(invalid(
                    "compress_level",
                    "zstd levels are 1 to 22 (1 is the default)",
                ));
            }
            (Codec::Gzip, Some(l)) if !(0..=9).contains(&l) => {
                return Err(invalid(
                    "compress_level",
                    "gzip levels are 0 to 9 (6 is the default)",
                ));
            }
            _ => {}
        }
        if self.flush_interval.is_zero() {
            return Err(invalid("flush_interval", "must be greater than 0"));
        }
        if self.disk_buffer < MIN_DISK_BUFFER {
            return Err(invalid(
                "disk_buffer",
                &format!(
                    "{} bytes is too small: it must hold at least two of the writer's 512 KiB \
                     buffers; write e.g. \"1MiB\" or more (the default is \"64MiB\")",
                    self.disk_buffer
                ),
            ));
        }
        if usize::try_from(self.disk_buffer).is_err() {
            return Err(invalid(
                "disk_buffer",
                "is larger than this machine can address; write e.g. \"64MiB\"",
            ));
        }
        if let Some(u) = &self.upload {
            u.validate()?;
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.streams {
            validate_name(&s.name)?;
            if !seen.insert(s.name.as_str()) {
                return Err(invalid(
                    &format!("stream `{}`", s.name),
                    "the name is used by more than one stream; names must be unique",
                ));
            }
            s.validate(self.streams.len())?;
        }
        if let Some(nats) = &self.nats {
            nats.validate(
                self.streams
                    .iter()
                    .filter(|s| s.nats)
                    .map(|s| s.name.as_str()),
            )?;
        }
        Ok(())
    }
}

impl StreamConfig {
    fn validate(&self, stream_count: usize) -> Result<(), ConfigError> {
        if self.url.is_empty() {
            return Err(invalid(
                &format!("stream `{}`: url", self.name),
                "is missing: give the feed's ws:// or wss:// URL, or a `venue` (see `wsrec venues`)",
            ));
        }
        let ctx = format!("stream `{}`", self.name);
        validate_url(&self.url).map_err(|m| invalid(&format!("{ctx}: url"), &m))?;
        for (k, v) in &self.headers {
            let name_ok = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !name_ok {
                return Err(invalid(
                    &format!("{ctx}: headers"),
                    &format!("`{k}` is not a valid HTTP header name"),
                ));
            }
            if v.0.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(invalid(
                    &format!("{ctx}: headers.{k}"),
                    "the value contains a line break or NUL byte",
                ));
            }
        }
        crate::rotation::validate_template(&self.path)
            .map_err(|m| invalid(&format!("{ctx}: path"), &m))?;
        if stream_count > 1 && !self.path.contains("{stream}") {
            return Err(invalid(
                &format!("{ctx}: path"),
                "with several streams the path template must contain {stream}, or their files \
                 would collide",
            ));
        }
        if self.rotate < Duration::from_secs(1) {
            return Err(invalid(&format!("{ctx}: rotate"), "must be at least 1s"));
        }
        if self.max_message_size < 1024 {
            return Err(invalid(
                &format!("{ctx}: max_message_size"),
                "must be at least 1 KiB",
            ));
        }
        if self.max_message_size > u32::MAX as u64 {
            return Err(invalid(
                &format!("{ctx}: max_message_size"),
                "must be at most 4 GiB",
            ));
        }
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err(invalid(
                &format!("{ctx}: backoff_initial/backoff_max"),
                "backoff_initial must be > 0 and not above backoff_max",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(invalid(
                &format!("{ctx}: handshake_timeout"),
                "must be greater than 0",
            ));
        }
        if self.app_ping.is_some() && self.app_ping_interval.is_none() {
            return Err(invalid(
                &format!("{ctx}: app_ping_interval"),
                "app_ping is set but app_ping_interval is off; set an interval such as \"20s\"",
            ));
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return Err(invalid(
                &format!("{ctx}: ca_file"),
                &format!("{} is not a readable file", ca.display()),
            ));
        }
        self.validate_network(&ctx)
    }

    /// Checks the compression, proxy and retry fields, and that `headers` leaves the upgrade's
    /// own headers to wsrec.
    fn validate_network(&self, ctx: &str) -> Result<(), ConfigError> {
        const RESERVED: [&str; 5] = [
            "upgrade",
            "connection",
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-extensions",
        ];
        if let Some(k) = self
            .headers
            .keys()
            .find(|k| RESERVED.contains(&k.to_ascii_lowercase().as_str()))
        {
            return Err(invalid(
                &format!("{ctx}: headers"),
                &format!(
                    "`{k}` is set by wsrec for the WebSocket upgrade; remove it (extensions \
                     follow `compression`)"
                ),
            ));
        }
        let deflate_tuned = self.deflate_server_max_window_bits.is_some()
            || self.deflate_server_no_context_takeover;
        if deflate_tuned && self.compression != Compression::Deflate {
            return Err(invalid(
                &format!("{ctx}: compression"),
                "deflate_server_* settings are given but compression is \"none\"; set \
                 compression = \"deflate\" or remove them",
            ));
        }
        if let Some(bits) = self.deflate_server_max_window_bits
            && !(9..=15).contains(&bits)
        {
            return Err(invalid(
                &format!("{ctx}: deflate_server_max_window_bits"),
                &format!("{bits} is out of range; give 9 to 15"),
            ));
        }
        if let Some(ProxySetting::Url(url)) = &self.proxy {
            crate::transport::HttpProxy::parse(url)
                .map_err(|m| invalid(&format!("{ctx}: proxy"), &m))?;
        }
        if self.retry_after_max.is_zero() {
            return Err(invalid(
                &format!("{ctx}: retry_after_max"),
                "must be greater than 0",
            ));
        }
        if let Some(t) = &self.token_url {
            let takes_token = self
                .venue
                .as_deref()
                .and_then(crate::venue::find)
                .is_some_and(|p| p.pre_connect.is_some());
            if !takes_token {
                return Err(invalid(
                    &format!("{ctx}: token_url"),
                    "is only used by venues that hand out a connect token before each connect \
                     (kucoin-spot, kucoin-futures); remove it",
                ));
            }
            validate_http_url(t).map_err(|m| invalid(&format!("{ctx}: token_url"), &m))?;
        }
        Ok(())
    }
}

/// Checks an `http://` or `https://` URL with a host (a REST endpoint).
///
/// # Errors
/// A message naming what is wrong.
pub fn validate_http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!(
            "`{}` is not a valid URL ({e}); expected e.g. https://api.kucoin.com/api/v1/bullet-public",
            mask_url(text)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not supported here; the endpoint is an http:// or https:// URL",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(url)
}

fn invalid(field: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// Checks a stream name: it becomes part of file names and records.
///
/// # Errors
/// A message saying what is wrong and what is allowed.
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    let field = format!("stream name `{name}`");
    if name.is_empty() {
        return Err(invalid("stream name", "is empty; give every stream a name"));
    }
    if name.len() > 100 {
        return Err(invalid(&field, "is longer than 100 bytes"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(invalid(&field, "contains a path separator (`/` or `\\`)"));
    }
    if name.contains("..") {
        return Err(invalid(&field, "contains `..`"));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(invalid(&field, "must not start with `.` or `-`"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+'))
    {
        return Err(invalid(
            &field,
            "may contain only ASCII letters, digits and `.`, `_`, `-`, `@`, `+`",
        ));
    }
    Ok(())
}

/// Checks a feed URL: `ws://` or `wss://` with a host.
///
/// # Errors
/// A message naming the problem.
pub fn validate_url(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| {
        format!(
            "`{}` is not a valid URL ({e}); expected ws://host/path or wss://host/path",
            mask_url(url)
        )
    })?;
    match parsed.scheme() {
        "ws" | "wss" => {}
        // `bybit-linaer:publicTrade.BTCUSDT`: a preset's one-line form with a typo.
        other if !url.contains("://") => {
            return Err(match crate::venue::closest(other) {
                Some(name) => format!(
                    "unknown venue `{other}`; did you mean `{name}`? (`wsrec venues` lists the presets)"
                ),
                None => format!(
                    "`{other}` is neither a venue preset (`wsrec venues` lists them) nor a URL scheme; a feed URL starts with ws:// or wss://"
                ),
            });
        }
        other => {
            return Err(format!(
                "scheme `{other}` is not supported; use ws:// or wss://"
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(parsed)
}

/// Masks the secret parts of a URL: user info and every query value.
pub fn mask_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Unparseable: show only the scheme and host-ish prefix, nothing that could be a token.
        return match url.find('?') {
            Some(i) => format!("{}?***", &url[..i]),
            None => url.to_owned(),
        };
    };
    if !parsed.username().is_empty() {
        let _ = parsed.set_username("***");
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<String> = parsed
            .query_pairs()
            .map(|(k, _)| format!("{k}=***"))
            .collect();
        parsed.set_query(Some(&pairs.join("&")));
    }
    parsed.to_string()
}

// ---------------------------------------------------------------------------------------------
// The Go JSONL streamer's config.

/// Default topic of the Go streamer (and of `wsrec record` with no arguments).
pub const GO_DEFAULT_TOPIC: &str = "publicTrade.BTCUSDT";
/// Default feed of the Go streamer: Bybit v5 public linear.
pub const GO_DEFAULT_WS_URL: &str = "wss://stream.bybit.com/v5/public/linear";
/// Default buffered-channel size of the Go streamer.
pub const GO_DEFAULT_BUFFER_SIZE: usize = 10_000;
/// Default status log period of the Go streamer.
pub const GO_DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(60);
/// Default status socket of the Go streamer.
pub const GO_DEFAULT_STATUS_SOCKET: &str = "/tmp/jsonl_streamer.sock";
/// The Go streamer's app-level ping and its interval.
pub const GO_PING: &str = r#"{"op":"ping"}"#;
/// Interval of [`GO_PING`].
pub const GO_PING_INTERVAL: Duration = Duration::from_secs(20);

/// The Go JSONL streamer's JSON config, accepted unchanged; every field optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoConfig {
    /// Directory of the hourly files.
    pub output_dir: Option<PathBuf>,
    /// Bybit topic; also the file name prefix.
    pub topic: Option<String>,
    /// Feed URL.
    pub ws_url: Option<String>,
    /// Channel capacity between network and disk.
    pub buffer_size: Option<usize>,
    /// Status log period: seconds, or a duration string such as `"30s"`.
    #[serde(default, deserialize_with = "opt_seconds_or_duration")]
    pub status_interval: Option<Duration>,
    /// Log file path; empty for none.
    pub log_file: Option<String>,
    /// Whether logs go to stdout.
    pub log_to_stdout: Option<bool>,
    /// Status socket path.
    pub status_socket: Option<String>,
}

impl GoConfig {
    /// The equivalent wsrec config: one stream in `raw` format, Go file layout
    /// `<output_dir>/<topic>_<unix-hour-start>.jsonl`, Bybit subscribe and `{"op":"ping"}` every 20 s.
    pub fn into_config(self) -> Config {
        let topic = self.topic.unwrap_or_else(|| GO_DEFAULT_TOPIC.to_owned());
        let mut stream = StreamConfig::new(
            topic.clone(),
            self.ws_url.unwrap_or_else(|| GO_DEFAULT_WS_URL.to_owned()),
        );
        stream.subscribe = vec![OutMessage(
            serde_json::json!({"op": "subscribe", "args": [topic]}).to_string(),
        )];
        stream.format = Format::Raw;
        stream.path = "{stream}_{start_unix}.jsonl".to_owned();
        stream.app_ping = Some(OutMessage(GO_PING.to_owned()));
        stream.app_ping_interval = Some(GO_PING_INTERVAL);
        Config {
            output_dir: self.output_dir.unwrap_or_else(default_output_dir),
            status_socket: Some(PathBuf::from(
                self.status_socket
                    .unwrap_or_else(|| GO_DEFAULT_STATUS_SOCKET.to_owned()),
            )),
            status_interval: Some(self.status_interval.unwrap_or(GO_DEFAULT_STATUS_INTERVAL)),
            log_file: self.log_file.filter(|s| !s.is_empty()).map(PathBuf::from),
            log_to_stdout: self.log_to_stdout.unwrap_or(true),
            queue_capacity: self.buffer_size.unwrap_or(GO_DEFAULT_BUFFER_SIZE).max(1),
            // The Go streamer leaves its hourly files as plain JSONL.
            compress: Codec::None,
            streams: vec![stream],
            ..Config::default()
        }
    }
}

/// The config `wsrec record` uses with no file and no URL: the Go streamer's default feed
/// (Bybit linear `publicTrade.BTCUSDT`) recorded in wsrec's envelope format into `./data`.
pub fn builtin_default() -> Config {
    let mut config = GoConfig::default().into_config();
    config.status_socket = None;
    let stream = &mut config.streams[0];
    stream.name = "bybit-linear".to_owned();
    stream.format = Format::Envelope;
    stream.path = default_path_template();
    config
}

// ---------------------------------------------------------------------------------------------
// Defaults and field parsers.

fn default_output_dir() -> PathBuf {
    PathBuf::from(DEFAULT_OUTPUT_DIR)
}
fn default_status_interval() -> Option<Duration> {
    Some(DEFAULT_STATUS_INTERVAL)
}
fn default_true() -> bool {
    true
}
fn default_threads() -> usize {
    DEFAULT_THREADS
}

fn default_queue_capacity() -> usize {
    DEFAULT_QUEUE_CAPACITY
}
fn default_disk_buffer() -> u64 {
    DEFAULT_DISK_BUFFER
}

fn default_flush_interval() -> Duration {
    DEFAULT_FLUSH_INTERVAL
}
fn default_shutdown_timeout() -> Duration {
    DEFAULT_SHUTDOWN_TIMEOUT
}
fn default_rotate() -> Duration {
    DEFAULT_ROTATE
}
fn default_path_template() -> String {
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
fn default_disk_warn() -> Option<Watermark> {
    Some(DEFAULT_DISK_WARN)
}
fn default_disk_stop() -> Option<Watermark> {
    Some(DEFAULT_DISK_STOP)
}
fn default_healthy_after() -> Duration {
    DEFAULT_HEALTHY_AFTER
}
fn default_retry_after_max() -> Duration {
    DEFAULT_RETRY_AFTER_MAX
}

/// Parses a duration such as `"500ms"`, `"20s"`, `"1h"` (humantime syntax) or `"off"`.
/// `"off"` and zero give `None`.
pub fn parse_opt_duration(s: &str) -> Result<Option<Duration>, String> {
    let t = s.trim();
    if matches!(t, "off" | "none" | "never" | "0") {
        return Ok(None);
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("`{s}` is not a duration ({e}); write e.g. \"500ms\", \"20s\", \"1h\" or \"off\"")
    })?;
    Ok((!d.is_zero()).then_some(d))
}

/// Parses a byte size: a number, or a number with `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB` or `B`.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 1048576, \"64MiB\" or \"500MB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}`; use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses the address of a listening socket: an IP address and a port (`127.0.0.1:9464`,
/// `[::1]:9464`; port 0 picks a free one).
pub fn parse_listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "`{s}` is not an address to listen on; write an IP address and a port, e.g. \
             \"127.0.0.1:9464\" (this host only), \"0.0.0.0:9464\" (every interface) or \
             \"[::1]:9464\""
        )
    })
}

fn opt_listen_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen_addr(&s).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "metrics_listen: {e}; or leave it out to turn metrics off"
        ))
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Num(u64),
    Str(String),
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(n) => Ok(Duration::from_secs(n)),
        NumOrStr::Str(s) => match parse_opt_duration(&s).map_err(serde::de::Error::custom)? {
            Some(d) => Ok(d),
            None => Err(serde::de::Error::custom(format!(
                "`{s}` turns this setting off, but it cannot be off; give a duration such as \"10s\""
            ))),
        },
    }
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(0) => Ok(None),
        NumOrStr::Num(n) => Ok(Some(Duration::from_secs(n))),
        NumOrStr::Str(s) => parse_opt_duration(&s).map_err(serde::de::Error::custom),
    }
}

fn opt_seconds_or_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    opt_duration(d)
}

pub(crate) fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(n) => Ok(n),
        NumOrStr::Str(s) => parse_byte_size(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let c = Config::from_toml(text)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn minimal_stream_gets_documented_defaults() {
        let c = parse("[[stream]]\nname = \"a\"\nurl = \"wss://example.com/ws\"\n").unwrap();
        assert_eq!(c.output_dir, PathBuf::from(DEFAULT_OUTPUT_DIR));
        assert_eq!(c.queue_capacity, DEFAULT_QUEUE_CAPACITY);
        assert_eq!(c.when_full, WhenFull::Block);
        let s = &c.streams[0];
        assert_eq!(s.format, Format::Envelope);
        assert_eq!(s.rotate, DEFAULT_ROTATE);
        assert_eq!(s.ping_interval, Some(DEFAULT_PING_INTERVAL));
        assert_eq!(s.max_message_size, DEFAULT_MAX_MESSAGE_SIZE);
        assert_eq!(
            c.status_socket_path(),
            Some(PathBuf::from("./data/.wsrec.sock"))
        );
    }

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

    #[test]
    fn durations_sizes_and_off() {
        let c = parse(
            r#"
            [[stream]]
            name = "a"
            url = "ws://h/"
            ping_interval = "off"
            silence_timeout = "90s"
            max_message_size = "16MiB"
            max_bytes = 1000
            rotate = "1m"
            "#,
        )
        .unwrap();
        let s = &c.streams[0];
        assert_eq!(s.ping_interval, None);
        assert_eq!(s.silence_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.max_message_size, 16 << 20);
        assert_eq!(s.max_bytes, 1000);
        assert_eq!(s.rotate, Duration::from_secs(60));
        assert_eq!(c.disk_buffer, DEFAULT_DISK_BUFFER);
        let c = parse("disk_buffer = \"256MiB\"\n[[stream]]\nname = \"a\"\nurl = \"ws://h/\"\n")
            .unwrap();
        assert_eq!(c.disk_buffer, 256 << 20);
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "bogus = 1\n[[stream]]\nname='a'\nurl='ws://h/'",
                "unknown field `bogus`",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\npingg='1s'",
                "unknown field `pingg`",
            ),
            ("", "no streams"),
            ("[[stream]]\nname='a/b'\nurl='ws://h/'", "path separator"),
            ("[[stream]]\nname='..x'\nurl='ws://h/'", "`..`"),
            (
                "[[stream]]\nname='a'\nurl='http://h/'",
                "use ws:// or wss://",
            ),
            ("[[stream]]\nname='a'\nurl='not a url'", "not a valid URL"),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "must be unique",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nrotate='soon'",
                "not a duration",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nmax_message_size='3XB'",
                "unknown size unit",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nformat='csv'",
                "unknown variant `csv`",
            ),
            (
                "when_full='drop_oldest'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "drop_oldest",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\npath='x.jsonl'\n[[stream]]\nname='b'\nurl='ws://h/'\npath='x.jsonl'",
                "must contain {stream}",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\npath='../x'",
                "outside the output directory",
            ),
            ("[[stream]]\nname='a'\nurl='ws://h/'\npath='%Q'", "strftime"),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nheaders={'Bad Name'='x'}",
                "not a valid HTTP header name",
            ),
            (
                "disk_buffer='64 bananas'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "unknown size unit",
            ),
            (
                "disk_buffer='512KiB'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "disk_buffer: 524288 bytes is too small",
            ),
            (
                "disk_buffer=-1\n[[stream]]\nname='a'\nurl='ws://h/'",
                "disk_buffer",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(
                err.contains(want),
                "config {text:?}: error {err:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn secrets_are_masked_in_debug_and_urls() {
        let c = parse(
            "[[stream]]\nname='a'\nurl='wss://user:pw@h/ws?token=abc&x=1'\nheaders={'X-Key'='s3cret'}",
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        let masked = c.streams[0].masked_url();
        assert!(
            !masked.contains("abc") && !masked.contains("pw"),
            "{masked}"
        );
        assert!(masked.contains("token=***"), "{masked}");
    }

    #[test]
    fn go_config_maps_to_go_layout() {
        let go: GoConfig = serde_json::from_str(
            r#"{"output_dir":"/tmp/x","topic":"orderbook.50.BTCUSDT","ws_url":"ws://127.0.0.1:9/",
                "buffer_size":5,"status_interval":30,"log_file":"","log_to_stdout":true,
                "status_socket":"/tmp/s.sock"}"#,
        )
        .unwrap();
        let c = go.into_config();
        c.validate().unwrap();
        let s = &c.streams[0];
        assert_eq!(s.name, "orderbook.50.BTCUSDT");
        assert_eq!(s.format, Format::Raw);
        assert_eq!(s.path, "{stream}_{start_unix}.jsonl");
        assert_eq!(
            s.subscribe[0].as_str(),
            r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}"#
        );
        assert_eq!(s.app_ping.as_ref().unwrap().as_str(), GO_PING);
        assert_eq!(c.queue_capacity, 5);
        assert_eq!(c.status_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.log_file, None);
        assert_eq!(c.status_socket_path(), Some(PathBuf::from("/tmp/s.sock")));
    }

    #[test]
    fn compression_proxy_and_retry_fields() {
        let c = parse("[[stream]]\nname='a'\nurl='wss://h/'").unwrap();
        let s = &c.streams[0];
        assert_eq!(s.compression, Compression::None);
        assert_eq!(s.deflate_server_max_window_bits, None);
        assert!(!s.deflate_server_no_context_takeover);
        assert_eq!(s.proxy, None);
        assert_eq!(s.retry_after_max, DEFAULT_RETRY_AFTER_MAX);
        assert_eq!(s.ts_source, TsSource::Read);

        let c = parse(
            r#"
            [[stream]]
            name = "a"
            url = "wss://h/"
            ts_source = "kernel"
            compression = "deflate"
            deflate_server_max_window_bits = 10
            deflate_server_no_context_takeover = true
            proxy = "http://user:pw@127.0.0.1:3128"
            retry_after_max = "5m"
            [[stream]]
            name = "b"
            url = "ws://h/"
            proxy = "env"
            "#,
        )
        .unwrap();
        let s = &c.streams[0];
        assert_eq!(s.compression, Compression::Deflate);
        assert_eq!(s.ts_source, TsSource::Kernel);
        assert_eq!(s.deflate_server_max_window_bits, Some(10));
        assert!(s.deflate_server_no_context_takeover);
        assert_eq!(s.retry_after_max, Duration::from_secs(300));
        assert_eq!(c.streams[1].proxy, Some(ProxySetting::Env));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pw@"), "proxy password shown: {dbg}");

        let cases: &[(&str, &str)] = &[
            ("compression='gzip'", "unknown variant `gzip`"),
            ("ts_source='nic'", "expected `read` or `kernel`"),
            (
                "deflate_server_max_window_bits=10",
                "compression is \"none\"",
            ),
            (
                "compression='deflate'\ndeflate_server_max_window_bits=8",
                "9 to 15",
            ),
            ("proxy='socks5://h:1080'", "not supported"),
            ("proxy='http://h'", "no port"),
            ("proxy='http://u:topsecret@h:1/x'", "nothing after the port"),
            ("retry_after_max='off'", "cannot be off"),
            (
                "headers={'Sec-WebSocket-Extensions'='permessage-deflate'}",
                "set by wsrec",
            ),
        ];
        for (field, want) in cases {
            let text = format!("[[stream]]\nname='a'\nurl='ws://h/'\n{field}");
            let err = parse(&text).expect_err(field).to_string();
            assert!(err.contains(want), "{field}: {err:?} lacks {want:?}");
            assert!(!err.contains("topsecret"), "{err}");
        }
    }

    #[test]
    fn threads_default_to_one_and_are_bounded() {
        let stream = "[[stream]]\nname = \"a\"\nurl = \"wss://example.com/ws\"\n";
        assert_eq!(parse(stream).unwrap().threads, 1);
        assert_eq!(parse(&format!("threads = 4\n{stream}")).unwrap().threads, 4);
        for bad in ["0", "257"] {
            let err = parse(&format!("threads = {bad}\n{stream}"))
                .expect_err(bad)
                .to_string();
            assert!(
                err.contains("threads") && err.contains("1 to 256"),
                "{bad}: {err}"
            );
        }
        let err = parse(&format!("threads = -1\n{stream}"))
            .expect_err("-1")
            .to_string();
        assert!(err.contains("threads"), "{err}");
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_names_itself_when_bad() {
        let stream = "[[stream]]\nname = \"a\"\nurl = \"wss://example.com/ws\"\n";
        assert_eq!(parse(stream).unwrap().metrics_listen, None);
        let c = parse(&format!("metrics_listen = \"127.0.0.1:9464\"\n{stream}")).unwrap();
        assert_eq!(c.metrics_listen, Some(([127, 0, 0, 1], 9464).into()));
        let c = parse(&format!("metrics_listen = \"[::]:0\"\n{stream}")).unwrap();
        assert_eq!(c.metrics_listen.unwrap().port(), 0);
        for bad in ["\"localhost:9464\"", "\"9464\"", "\"127.0.0.1\"", "9464"] {
            let err = parse(&format!("metrics_listen = {bad}\n{stream}"))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("metrics_listen"), "{bad}: {err}");
            if bad.starts_with('"') {
                assert!(err.contains("\"127.0.0.1:9464\""), "{bad}: {err}");
            }
        }
    }

    #[test]
    fn go_config_rejects_unknown_fields() {
        let err = serde_json::from_str::<GoConfig>(r#"{"topicc":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `topicc`"));
    }

    #[test]
    fn every_example_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let is_config = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("toml") | Some("json")
            );
            if is_config {
                Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 2, "expected example configs in {}", dir.display());
    }
}
