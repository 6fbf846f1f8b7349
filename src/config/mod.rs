//! The recorder's configuration: the TOML file, the Go JSONL streamer's JSON file, and validation.
//!
//! Everything the pipeline needs is described here as plain data. Parsing is strict (unknown
//! fields are errors that name the field), every default is a named constant, and
//! [`Config::validate`] checks what serde cannot (names, URLs, templates) before anything is
//! opened or written, so a bad config never leaves a half-started recorder behind.
//!
//! Config imports nothing of the pipeline: each stage's section sits here ([`nats`],
//! [`upload`]), and venue presets are applied by the caller that loads a config for the
//! recorder: [`Config::read`] gives the config as written with the keys each `[[stream]]` set
//! ([`Unresolved`]); the `venue` module fills the streams from their presets; then
//! [`Config::validate`] runs with the venue table as a [`VenueCatalog`].
//!
//! The parts: this file holds the `Config` schema and its reading; [`StreamConfig`] and its
//! enums are in `stream.rs`, validation in `validate.rs`, value parsers and secrets in
//! `value.rs`, the Go streamer's config in `go.rs`, the path template in [`template`], the
//! streams' static key/value [`tags`] in `tags.rs`.

mod go;
pub mod nats;
mod stream;
pub mod tags;
pub mod template;
pub mod upload;
mod validate;
mod value;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

pub use go::{
    GO_DEFAULT_BUFFER_SIZE, GO_DEFAULT_STATUS_INTERVAL, GO_DEFAULT_STATUS_SOCKET, GO_DEFAULT_TOPIC,
    GO_DEFAULT_WS_URL, GO_PING, GO_PING_INTERVAL, GoConfig, builtin_default,
};
pub use nats::NatsConfig;
pub use stream::{Compression, Format, Fsync, StreamConfig, TsSource};
use stream::{default_path_template, default_true};
pub use tags::Tags;
pub use upload::{Credentials, UploadConfig};
pub use validate::{NoVenues, VenueCatalog, validate_http_url, validate_name, validate_url};
pub use value::{
    OutMessage, ProxySetting, ProxyUrl, Secret, Watermark, mask_proxy_url, mask_url,
    parse_byte_size, parse_listen_addr, parse_opt_duration,
};
pub(crate) use value::{byte_size, duration};
use value::{opt_duration, opt_listen_addr};

/// Default output directory.
pub const DEFAULT_OUTPUT_DIR: &str = "./data";
/// Default status socket file name, inside the output directory.
pub const DEFAULT_STATUS_SOCKET_NAME: &str = ".wsrec.sock";
/// Default period of the status log line.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(60);
/// Default capacity of the queue between connections and the writer, in messages.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// Default bound on the bytes waiting for the disk worker (`disk_buffer`): what the writer hands
/// on while a write or an `fsync` stalls, so the connections go on reading. 64 MiB holds a
/// couple of seconds of the bench's flood and tens of seconds of a busy feed (bench/README.md);
/// it is memory taken only while a stall lasts.
pub const DEFAULT_DISK_BUFFER: u64 = 64 << 20;
/// Least `disk_buffer`: two of the writer's full buffers (512 KiB each), so one can wait while
/// one is written. The writer checks at compile time that its buffer size still matches.
pub const MIN_DISK_BUFFER: u64 = 2 * 512 * 1024;
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
/// a batch is formatted on the core that received it, still in its cache, which costs less
/// CPU per message than two threads and records faster (bench/README.md, the small-envelope
/// scenario); the disk worker and the compressor still run beside it.
pub const DEFAULT_THREADS: usize = 1;
/// Most runtime threads accepted.
pub const MAX_THREADS: usize = 256;
/// Default [`Config::journal_dir`]: shared memory, which outlives a killed process.
pub const DEFAULT_JOURNAL_DIR: &str = "/dev/shm";

/// Longest [`Config::wake_coalesce`] accepted: the socket buffers must hold what arrives
/// meanwhile, and the files get their lines that much later.
pub const MAX_WAKE_COALESCE: Duration = Duration::from_millis(10);
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
    /// Whether logs also go to the console: stderr (stdout for the Go streamer's JSON config,
    /// whose key this is).
    #[serde(default = "default_true")]
    pub log_to_stdout: bool,
    /// The console is stdout (the Go streamer's JSON config), not stderr.
    #[serde(skip)]
    pub log_console_stdout: bool,
    /// Threads of the async runtime, which runs the connections and the writer (the disk
    /// worker runs on tokio's blocking pool, the compressor on a thread of its own).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// How long a runtime thread that has run out of work waits before it sleeps on the
    /// sockets, so that one wake-up takes what many quiet connections sent meanwhile; `None`
    /// (`"off"`, the default) sleeps at once. Off by default because it costs receive times
    /// their exactness: the kernel gives one receive time per read, that of the last data the
    /// read returns, so the messages of a connection that arrive within the linger of each
    /// other share a read and the last one's time (a single stream at 3,000 msg/s: p90 of the
    /// delay 6 µs without, 706 µs with 1 ms; bench/README.md). It saves 5-15 % of the CPU of
    /// many quiet connections. Always off with a stream's `ts_source = "read"` (see
    /// [`Config::wake_coalesce_in_force`]).
    #[serde(default = "default_wake_coalesce", deserialize_with = "opt_duration")]
    pub wake_coalesce: Option<Duration>,
    /// Capacity of the queue between connections and the writer, in messages.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// What a connection does when that queue is full.
    #[serde(default)]
    pub when_full: WhenFull,
    /// Longest time received data sits in memory before it is written to the OS.
    #[serde(default = "default_flush_interval", deserialize_with = "duration")]
    pub flush_interval: Duration,
    /// Directory of the journal, where the writer keeps the lines of its idle moments until
    /// they are written to the files (see [`crate::store::journal`]): default `/dev/shm`
    /// (shared memory); `""` turns it off, and every idle moment then writes its lines to the
    /// files at once.
    #[serde(default)]
    pub journal_dir: Option<PathBuf>,
    /// Most bytes of encoded lines waiting for the disk (a stalled write or `fsync`) before the
    /// writer waits and `when_full` applies.
    #[serde(default = "default_disk_buffer", deserialize_with = "byte_size")]
    pub disk_buffer: u64,
    /// Deadline for a graceful shutdown.
    #[serde(default = "default_shutdown_timeout", deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// Compression of closed files, in the background.
    #[serde(default)]
    pub compress: Compress,
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
    pub nats: Option<NatsConfig>,
    /// Upload of sealed files to object storage (`[upload]`); off when absent.
    #[serde(default)]
    pub upload: Option<UploadConfig>,
    /// Tags of every stream (`tags = { region = "eu" }` at the top level); a stream's own tag
    /// of the same key wins ([`Config::stream_tags`]).
    #[serde(default, deserialize_with = "tags::tags")]
    pub tags: Tags,
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

/// Compression codec of closed files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compress {
    /// zstd (`.jsonl.zst`), the default: fast and small.
    #[default]
    Zstd,
    /// gzip (`.jsonl.gz`), for tools that only know gzip.
    Gzip,
    /// Leave closed files as they are.
    None,
}

/// A config as its file says it, before venue presets fill its streams: the caller applies
/// the presets (the `venue` module's `resolve`), then validates.
#[derive(Clone, Debug)]
pub struct Unresolved {
    /// The config as parsed.
    pub config: Config,
    /// For each `[[stream]]` in order, the keys its table set (a preset fills only the others);
    /// empty for the Go streamer's JSON config, which has no presets.
    pub stream_keys: Vec<BTreeSet<String>>,
    /// What the caller should tell the user (fields ignored), one sentence each.
    pub warnings: Vec<String>,
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
            log_console_stdout: false,
            threads: DEFAULT_THREADS,
            wake_coalesce: default_wake_coalesce(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            when_full: WhenFull::Block,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            journal_dir: None,
            disk_buffer: DEFAULT_DISK_BUFFER,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            compress: Compress::default(),
            compress_level: None,
            disk_warn: default_disk_warn(),
            disk_stop: default_disk_stop(),
            nats: None,
            upload: None,
            tags: Tags::new(),
            streams: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a config file: TOML, or the Go JSONL streamer's JSON (by `.json` extension or a
    /// leading `{`). Venue presets are not applied and nothing is validated: the caller fills
    /// the streams from their presets, then calls [`Config::validate`].
    ///
    /// # Errors
    /// The file cannot be read or does not parse (the message names the field or line).
    pub fn read(path: &Path) -> Result<Unresolved, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        if is_json {
            let go: GoConfig = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: format!(
                    "{e} (read as the Go JSONL streamer's JSON config; fields: output_dir, \
                         topic, ws_url, buffer_size, status_interval, log_file, log_to_stdout, \
                         status_socket)"
                ),
            })?;
            Ok(Unresolved {
                warnings: go.warnings(),
                config: go.into_config(),
                stream_keys: Vec::new(),
            })
        } else {
            Self::parse_toml(&text).map_err(|e| match e {
                ConfigError::Parse { message, .. } => ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                },
                other => other,
            })
        }
    }

    /// Parses TOML text (without presets and without validating).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the problem and where it is.
    pub fn parse_toml(text: &str) -> Result<Unresolved, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: PathBuf::from("<config>"),
            message: e.to_string().trim_end().to_owned(),
        };
        let config: Config = toml::from_str(text).map_err(parse_error)?;
        // Which keys each [[stream]] set, so a venue preset fills in only the others.
        let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let given = table.get("stream").and_then(toml::Value::as_array);
        let stream_keys = (0..config.streams.len())
            .map(|i| {
                given
                    .and_then(|g| g.get(i))
                    .and_then(toml::Value::as_table)
                    .map(|t| t.keys().cloned().collect())
                    .unwrap_or_default()
            })
            .collect();
        Ok(Unresolved {
            config,
            stream_keys,
            warnings: Vec::new(),
        })
    }

    /// The tags in effect for `stream`: the top-level `tags`, overridden key by key by the
    /// stream's own.
    pub fn stream_tags(&self, stream: &StreamConfig) -> Tags {
        tags::merged(&self.tags, &stream.tags)
    }

    /// Gives every stream the tags in effect for it ([`Config::stream_tags`]), so the stages
    /// read a stream's `tags` alone. Doing it twice changes nothing.
    pub fn apply_top_level_tags(&mut self) {
        let global = std::mem::take(&mut self.tags);
        for s in &mut self.streams {
            s.tags = tags::merged(&global, &s.tags);
        }
        self.tags = global;
    }

    /// The wake-up coalescing in force: [`Config::wake_coalesce`], or zero when it is off or
    /// a stream takes its receive times when it reads the socket (they would be late by as
    /// much).
    pub fn wake_coalesce_in_force(&self) -> Duration {
        let read_times = self
            .streams
            .iter()
            .any(|s| s.ts_source == stream::TsSource::Read);
        match self.wake_coalesce {
            Some(d) if !read_times => d,
            _ => Duration::ZERO,
        }
    }

    /// The journal directory in effect, `None` when turned off.
    pub fn journal_dir_path(&self) -> Option<PathBuf> {
        match &self.journal_dir {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(DEFAULT_JOURNAL_DIR)),
        }
    }

    /// The status socket path in effect, `None` when turned off.
    pub fn status_socket_path(&self) -> Option<PathBuf> {
        match &self.status_socket {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
            None => Some(self.output_dir.join(DEFAULT_STATUS_SOCKET_NAME)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults.

fn default_output_dir() -> PathBuf {
    PathBuf::from(DEFAULT_OUTPUT_DIR)
}
fn default_status_interval() -> Option<Duration> {
    Some(DEFAULT_STATUS_INTERVAL)
}
fn default_wake_coalesce() -> Option<Duration> {
    None
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
fn default_disk_warn() -> Option<Watermark> {
    Some(DEFAULT_DISK_WARN)
}
fn default_disk_stop() -> Option<Watermark> {
    Some(DEFAULT_DISK_STOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and validates TOML without venue presets (no test here names a venue).
    pub(crate) fn parse(text: &str) -> Result<Config, ConfigError> {
        let c = Config::parse_toml(text)?.config;
        c.validate(&NoVenues)?;
        Ok(c)
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field_and_the_form_it_takes() {
        for (line, field, form) in [
            (
                "rotate = true",
                "rotate",
                "expected a duration: seconds as a whole number, or a string such as \"500ms\"",
            ),
            (
                "flush_interval = [1]",
                "flush_interval",
                "expected a duration",
            ),
            (
                "disk_buffer = true",
                "disk_buffer",
                "expected a size: bytes as a whole number, or a string such as \"64KiB\"",
            ),
            ("disk_warn = 1.5", "disk_warn", "expected free space"),
            ("rotate = -1", "rotate", "expected a duration"),
        ] {
            let (top, stream) = if field == "rotate" {
                ("", line)
            } else {
                (line, "")
            };
            let text = format!("{top}\n[[stream]]\nname = \"a\"\nurl = \"wss://x\"\n{stream}\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(line), "{line}: {e}");
            assert!(e.contains(form), "{line}: {e}");
            assert!(!e.contains("untagged"), "{line}: {e}");
        }
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
}
