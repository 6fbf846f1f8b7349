//! The metrics endpoint: the recorder's counters over HTTP for Prometheus and other OpenMetrics
//! scrapers, when `metrics_listen` is set.
//!
//! `GET /metrics` answers with every counter of [`Stats`], read at scrape time: the hot path
//! only bumps the atomics it always bumps, and a scrape costs one pass over them. The body is
//! OpenMetrics 1.0 text (ending in `# EOF`) when the request's `Accept` header asks for
//! `application/openmetrics-text`, else the Prometheus text format 0.0.4.
//!
//! Names start with `wsrec_`, counters end in `_total`, units are in the names (`_bytes`,
//! `_seconds`), and the only labels are `stream` (the configured name) and, for
//! `wsrec_stream_state`, `state`: a handful of series per stream, never one per URL or
//! connection. A metric is one entry in `FAMILIES`.
//!
//! The HTTP side is deliberately small: one request per connection (`Connection: close`),
//! `GET` and `HEAD` only, a bounded request ([`MAX_REQUEST_BYTES`]) read under a timeout, `404`
//! for any path but [`PATH`]. Like the status socket, every client is served in its own task
//! under timeouts with a cap on concurrent clients, so a slow or hostile client can never stall
//! the recorder.
//!
//! The parts: this file (the metric families and rendering them) and `http` (the endpoint,
//! [`MetricsServer`]).

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::observe::stats::{ConnState, DiskLevel, Stats, StreamStats};

mod http;

pub use http::MetricsServer;

/// The one path served.
pub const PATH: &str = "/metrics";

/// Content type of an OpenMetrics 1.0 reply.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Content type of a Prometheus text format 0.0.4 reply.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prefix of every metric name.
const PREFIX: &str = "wsrec_";

/// Longest request head (request line and headers) read. Scrapers send a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Most request headers parsed.
const MAX_HEADERS: usize = 64;

/// How long a client has to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server spends writing a reply to a client that does not read it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Clients served at once; beyond this a new connection is closed at once.
const MAX_CLIENTS: usize = 32;

/// The metrics endpoint cannot listen on its address.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Another socket listens on the address.
    #[error(
        "cannot serve metrics on {addr}: the address is in use (another wsrec or another \
         program listens there); choose another `metrics_listen` address (--metrics-listen), or \
         leave it out to turn the metrics endpoint off"
    )]
    InUse {
        /// The configured address.
        addr: SocketAddr,
    },
    /// Binding failed for another reason (not a local address, a privileged port...).
    #[error(
        "cannot serve metrics on {addr}: {source}; give an address of this host (e.g. \
         127.0.0.1:9464, or 0.0.0.0:9464 for every interface) and a port this user may use, in \
         `metrics_listen` (--metrics-listen)"
    )]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why `bind` or `listen` failed.
        source: io::Error,
    },
}

// ---------------------------------------------------------------------------------------------
// Exposition.

/// The text format of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposition {
    /// Prometheus text format 0.0.4 (the default).
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Exposition {
    /// The format an `Accept` header asks for: OpenMetrics when it lists
    /// `application/openmetrics-text` with a non-zero quality, else Prometheus text.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .is_some_and(|q| q.trim().parse::<f64>().is_ok_and(|q| q <= 0.0))
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants_openmetrics {
            Exposition::OpenMetrics
        } else {
            Exposition::Prometheus
        }
    }

    /// The `Content-Type` of a reply in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Exposition::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// The times a scrape is rendered at, in the recorder's clock.
#[derive(Clone, Copy, Debug)]
pub struct Scrape {
    /// Now, in ns since the Unix epoch.
    pub now_ns: u64,
    /// When the recorder started, in ns since the Unix epoch.
    pub start_ns: u64,
}

/// A metric's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    /// OpenMetrics `info` (a gauge named `…_info` in Prometheus text): labels, value 1.
    Info,
}

/// A sample value.
#[derive(Clone, Copy, Debug)]
enum Value {
    Int(u64),
    Float(f64),
}

/// Where a family's samples come from. `None` from a getter leaves the sample out: it has no
/// meaningful value yet (never a made-up one).
#[derive(Clone, Copy)]
enum Source {
    /// One sample for the whole recorder.
    Global(fn(&Stats, &Scrape) -> Option<Value>),
    /// One sample per stream, labelled `stream`.
    Stream(fn(&StreamStats, &Scrape) -> Option<Value>),
    /// Per stream, one sample per connection state, labelled `stream` and `state`: 1 for the
    /// current state, 0 for the others.
    StreamState,
    /// The build: a `version` label, value 1.
    Build,
    /// Per stream with tags: `stream` and one `tag_KEY` label per tag, value 1.
    StreamTags,
}

/// A metric family.
struct Family {
    /// Name without the `wsrec_` prefix and without the `_total` / `_info` suffix.
    name: &'static str,
    kind: Kind,
    /// OpenMetrics unit, which the name ends with; empty for none.
    unit: &'static str,
    /// One line, no backslashes, quotes or newlines.
    help: &'static str,
    source: Source,
}

const fn counter(
    name: &'static str,
    unit: &'static str,
    help: &'static str,
    source: Source,
) -> Family {
    Family {
        name,
        kind: Kind::Counter,
        unit,
        help,
        source,
    }
}

const fn gauge(
    name: &'static str,
    unit: &'static str,
    help: &'static str,
    source: Source,
) -> Family {
    Family {
        name,
        kind: Kind::Gauge,
        unit,
        help,
        source,
    }
}

fn int(counter: &AtomicU64) -> Option<Value> {
    Some(Value::Int(counter.load(Relaxed)))
}

fn seconds(ns: u64) -> Value {
    Value::Float(ns as f64 / 1e9)
}

/// Every metric, in exposition order. Adding one is one line here (upload and NATS fan-out
/// counters go here once `Stats` has them, e.g.
/// `counter("files_uploaded", "", "…", Source::Global(|s, _| int(&s.files_uploaded)))`).
#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    Family { name: "build", kind: Kind::Info, unit: "", help: "The wsrec version; always 1.", source: Source::Build },
    gauge("start_time_seconds", "seconds", "When the recorder started, in seconds since the Unix epoch.",
        Source::Global(|_, t| Some(seconds(t.start_ns)))),
    gauge("uptime_seconds", "seconds", "Seconds since the recorder started.",
        Source::Global(|_, t| Some(seconds(t.now_ns.saturating_sub(t.start_ns))))),
    // Per stream.
    counter("messages", "", "Messages received and handed to the writer.",
        Source::Stream(|s, _| int(&s.messages))),
    counter("message_bytes", "bytes", "Payload bytes of the messages received.",
        Source::Stream(|s, _| int(&s.bytes))),
    counter("connections", "", "Connections opened, the first one included.",
        Source::Stream(|s, _| int(&s.connections))),
    counter("reconnects", "", "Connections opened after the first one.",
        Source::Stream(|s, _| Some(Value::Int(s.connections.load(Relaxed).saturating_sub(1))))),
    counter("disconnects", "", "Connections that ended for any reason other than shutdown.",
        Source::Stream(|s, _| int(&s.disconnects))),
    counter("connect_failures", "", "Failed connection attempts (dial, TLS, handshake, timeout).",
        Source::Stream(|s, _| int(&s.connect_failures))),
    counter("dropped_messages", "", "Messages dropped because the queue was full (when_full = drop_newest).",
        Source::Stream(|s, _| int(&s.dropped))),
    counter("raw_diverted_messages", "", "Messages that raw format could not write verbatim and wrote to the events file.",
        Source::Stream(|s, _| int(&s.raw_unsafe))),
    counter("lines_written", "", "Lines written to files, messages and events.",
        Source::Stream(|s, _| int(&s.lines_written))),
    counter("lines_lost", "", "Lines not written because of write errors or a full disk.",
        Source::Stream(|s, _| int(&s.lines_lost))),
    counter("io_lost_lines", "", "The part of lines_lost due to I/O errors (ENOSPC, EIO, permissions).",
        Source::Stream(|s, _| int(&s.io_lost))),
    gauge("last_message_age_seconds", "seconds", "Seconds since the stream's last message; absent before its first.",
        Source::Stream(|s, t| match s.last_message_ns.load(Relaxed) {
            0 => None,
            last => Some(seconds(t.now_ns.saturating_sub(last))),
        })),
    gauge("last_message_timestamp_seconds", "seconds", "Receive time of the stream's last message, in seconds since the Unix epoch; absent before its first.",
        Source::Stream(|s, _| match s.last_message_ns.load(Relaxed) {
            0 => None,
            last => Some(seconds(last)),
        })),
    Family { name: "stream_tags", kind: Kind::Info, unit: "", help: "The stream's tags, one tag_KEY label each; always 1. Absent for a stream without tags.",
        source: Source::StreamTags },
    gauge("stream_state", "", "The stream's connection state: 1 for the current one of connecting, connected, backoff, stopped.",
        Source::StreamState),
    gauge("subscriptions_failing", "", "Venue streams: subscriptions refused, or without data for first_data_timeout, on the open connections.",
        Source::Stream(|s, _| int(&s.subscriptions_failed))),
    counter("snapshots", "", "REST depth snapshots fetched and written into the stream (book channels that start from one).",
        Source::Stream(|s, _| int(&s.snapshots))),
    counter("snapshot_failures", "", "REST depth snapshots given up after every try (a snapshot_failed event in the data each).",
        Source::Stream(|s, _| int(&s.snapshot_failures))),
    // The queue between the connections and the writer.
    gauge("queue_depth_messages", "", "Messages waiting in the queue between the connections and the writer (the streams' own rooms included, so up to the capacity plus those rooms).",
        Source::Global(|s, _| int(&s.queue_depth))),
    gauge("queue_capacity_messages", "", "Capacity of that queue, in messages.",
        Source::Global(|s, _| Some(Value::Int(s.queue_capacity)))),
    // The NATS fan-out (absent without [nats]).
    counter("nats_published_lines", "", "Lines published to NATS JetStream and acked.",
        Source::Global(|s, _| s.nats.snapshot().map(|n| Value::Int(n.published)))),
    counter("nats_dropped_lines", "", "Lines not published to NATS (queue full, outage, refused, missed by the server, shutdown); the files have them.",
        Source::Global(|s, _| s.nats.snapshot().map(|n| Value::Int(n.dropped)))),
    gauge("nats_in_flight", "", "NATS publishes whose ack is outstanding.",
        Source::Global(|s, _| s.nats.snapshot().map(|n| Value::Int(n.in_flight)))),
    gauge("nats_queued_lines", "", "Lines accepted for NATS and not yet acked (queue and in-flight window).",
        Source::Global(|s, _| s.nats.snapshot().map(|n| Value::Int(n.queued)))),
    gauge("nats_connected", "", "1 while publishing to NATS works, 0 while it is unreachable.",
        Source::Global(|s, _| s.nats.snapshot().map(|n| Value::Int(u64::from(n.state == crate::observe::stats::NatsState::Connected))))),
    // Files.
    counter("files_closed", "", "Recording files closed (renamed to their final name).",
        Source::Global(|s, _| int(&s.files_closed))),
    counter("write_errors", "", "Write errors seen by the writer.",
        Source::Global(|s, _| int(&s.write_errors))),
    counter("files_compressed", "", "Closed files compressed.",
        Source::Global(|s, _| int(&s.files_compressed))),
    counter("compress_errors", "", "Closed files the compressor failed on (kept uncompressed).",
        Source::Global(|s, _| int(&s.compress_errors))),
    gauge("compress_backlog_files", "", "Closed files waiting for the compressor.",
        Source::Global(|s, _| int(&s.compress_backlog))),
    counter("files_uploaded", "", "Sealed files uploaded to object storage and checked.",
        Source::Global(|s, _| int(&s.files_uploaded))),
    counter("uploaded_bytes", "bytes", "Bytes uploaded to object storage (files and manifests).",
        Source::Global(|s, _| int(&s.bytes_uploaded))),
    counter("upload_errors", "", "Failed upload attempts (retried with backoff).",
        Source::Global(|s, _| int(&s.upload_errors))),
    gauge("upload_backlog_files", "", "Sealed files waiting for upload or being uploaded.",
        Source::Global(|s, _| int(&s.upload_backlog))),
    // Disk space. Measured only with a disk_warn or disk_stop watermark; 0 bytes free while not
    // stopped means "not measured yet", so the sample is left out rather than alarming.
    gauge("disk_free_bytes", "bytes", "Free bytes in the output directory at the last check; absent when disk_warn and disk_stop are off.",
        Source::Global(|s, _| {
            let free = s.disk_free.load(Relaxed);
            (free > 0 || s.disk_level() == DiskLevel::Stopped).then_some(Value::Int(free))
        })),
    // The disk buffer: what waits for the disk worker while a write or an fsync stalls.
    gauge("disk_buffer_bytes", "bytes", "Bytes waiting for the disk worker (data of queued writes plus 256 per queued operation); near 0 unless the disk stalls.",
        Source::Global(|s, _| int(&s.disk_buffer_bytes))),
    gauge("disk_buffer_peak_bytes", "bytes", "The most bytes that have waited for the disk worker since start.",
        Source::Global(|s, _| int(&s.disk_buffer_peak))),
    gauge("disk_buffer_capacity_bytes", "bytes", "The bound on those bytes (disk_buffer): at it the writer waits and when_full applies.",
        Source::Global(|s, _| int(&s.disk_buffer_capacity))),
    gauge("disk_stall_max_seconds", "seconds", "The longest time the disk worker spent on one operation (append, sync, or close) since start, the one under way included.",
        Source::Global(|s, _| Some(Value::Float(s.disk_stall_max().as_secs_f64())))),
    counter("file_syncs", "", "Files synced one by one (fdatasync) as their fsync_interval was up.",
        Source::Global(|s, _| int(&s.file_syncs))),
    counter("filesystem_syncs", "", "Syncs of the whole file system (syncfs) in place of many files' syncs due together.",
        Source::Global(|s, _| int(&s.fs_syncs))),
    // The journal: lines of idle moments kept in shared memory until the files have them.
    counter("journal_bytes", "bytes", "Bytes of lines copied into the journal at the writer's idle moments (lines a kill would not lose before the files had them); 0 without a journal.",
        Source::Global(|s, _| int(&s.journal_bytes))),
    counter("journal_halves", "", "Journal halves started (each after every file was handed its lines).",
        Source::Global(|s, _| int(&s.journal_halves))),
    counter("journal_fallbacks", "", "Times a journal half filled before the disk worker had written the other half's lines; until then idle lines went to the disk worker directly.",
        Source::Global(|s, _| int(&s.journal_fallbacks))),
    gauge("disk_level", "", "Free space in the output directory: 0 enough or not checked, 1 below disk_warn, 2 below disk_stop (messages not written).",
        Source::Global(|s, _| Some(Value::Int(u64::from(s.disk_level().as_u8()))))),
];

/// Every connection state, in the order of the `wsrec_stream_state` samples.
const STATES: [ConnState; 4] = [
    ConnState::Connecting,
    ConnState::Connected,
    ConnState::Backoff,
    ConnState::Stopped,
];

/// Renders every metric of `stats` in `format`.
pub fn render(stats: &Stats, scrape: &Scrape, format: Exposition) -> String {
    let mut out = String::with_capacity(4096 + 2048 * stats.streams.len());
    for family in FAMILIES {
        family.render(stats, scrape, format, &mut out);
    }
    if format == Exposition::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

impl Family {
    fn render(&self, stats: &Stats, scrape: &Scrape, format: Exposition, out: &mut String) {
        let (type_name, suffix) = match (self.kind, format) {
            (Kind::Counter, _) => ("counter", "_total"),
            (Kind::Gauge, _) => ("gauge", ""),
            (Kind::Info, Exposition::OpenMetrics) => ("info", "_info"),
            (Kind::Info, Exposition::Prometheus) => ("gauge", "_info"),
        };
        let (name, help) = (self.name, self.help);
        // Writing to a String cannot fail.
        let _ = match format {
            // OpenMetrics names the family; its samples add the type's suffix.
            Exposition::OpenMetrics => {
                let _ = writeln!(out, "# TYPE {PREFIX}{name} {type_name}");
                if !self.unit.is_empty() {
                    let _ = writeln!(out, "# UNIT {PREFIX}{name} {}", self.unit);
                }
                writeln!(out, "# HELP {PREFIX}{name} {help}")
            }
            // Prometheus text names the samples.
            Exposition::Prometheus => writeln!(
                out,
                "# HELP {PREFIX}{name}{suffix} {help}\n# TYPE {PREFIX}{name}{suffix} {type_name}"
            ),
        };
        let mut sample = |labels: &[(&str, &str)], value: Value| {
            out.push_str(PREFIX);
            out.push_str(name);
            out.push_str(suffix);
            write_labels(out, labels);
            out.push(' ');
            write_value(out, value);
            out.push('\n');
        };
        match self.source {
            Source::Global(get) => {
                if let Some(v) = get(stats, scrape) {
                    sample(&[], v);
                }
            }
            Source::Stream(get) => {
                for s in &stats.streams {
                    if let Some(v) = get(s, scrape) {
                        sample(&[("stream", &s.name)], v);
                    }
                }
            }
            Source::StreamState => {
                for s in &stats.streams {
                    let current = s.state();
                    for state in STATES {
                        let labels = [("stream", s.name.as_str()), ("state", state.name())];
                        sample(&labels, Value::Int(u64::from(state == current)));
                    }
                }
            }
            Source::Build => sample(&[("version", env!("CARGO_PKG_VERSION"))], Value::Int(1)),
            Source::StreamTags => {
                for s in stats.streams.iter().filter(|s| !s.tags.is_empty()) {
                    // Tag keys are `[a-z0-9_]`; the prefix makes each a label name (which may
                    // not start with a digit) that no other label can be.
                    let names: Vec<String> = s.tags.keys().map(|k| format!("tag_{k}")).collect();
                    let mut labels = vec![("stream", s.name.as_str())];
                    labels.extend(
                        names
                            .iter()
                            .map(String::as_str)
                            .zip(s.tags.values().map(String::as_str)),
                    );
                    sample(&labels, Value::Int(1));
                }
            }
        }
    }
}

/// `{a="x",b="y"}` with values escaped as both formats require; nothing for no labels.
fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn write_value(out: &mut String, value: Value) {
    let _ = match value {
        Value::Int(n) => write!(out, "{n}"),
        Value::Float(f) if f.is_nan() => write!(out, "NaN"),
        Value::Float(f) if f.is_infinite() => write!(out, "{}Inf", if f > 0.0 { '+' } else { '-' }),
        // Display never uses an exponent and round-trips.
        Value::Float(f) => write!(out, "{f}"),
    };
}

// ---------------------------------------------------------------------------------------------
// HTTP.

#[cfg(test)]
mod tests {
    use super::http::reply;
    use super::*;
    use std::sync::Arc;

    fn stats() -> Stats {
        let a = Arc::new(StreamStats::new("a", "wss://a/"));
        let b = Arc::new(StreamStats::new("b.x-1", "wss://b/"));
        a.messages.store(7, Relaxed);
        a.bytes.store(700, Relaxed);
        a.connections.store(3, Relaxed);
        a.last_message_ns.store(1_000_000_000_000, Relaxed);
        a.set_state(ConnState::Connected);
        b.set_state(ConnState::Backoff);
        let s = Stats::new(vec![a, b], 100);
        s.queue_depth.store(5, Relaxed);
        s.files_closed.store(2, Relaxed);
        s.disk_buffer_bytes.store(4096, Relaxed);
        s.disk_buffer_peak.store(8192, Relaxed);
        s.disk_buffer_capacity.store(1 << 20, Relaxed);
        s.disk_stall_max_ns.store(1_500_000_000, Relaxed);
        s.journal_bytes.store(65_536, Relaxed);
        s.journal_halves.store(4, Relaxed);
        s
    }

    const SCRAPE: Scrape = Scrape {
        now_ns: 1_000_500_000_000,
        start_ns: 999_000_000_000,
    };

    fn assert_line(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }

    #[test]
    fn tags_are_labels_of_an_info_sample_per_stream_that_has_any() {
        let tagged = StreamStats::new("a", "wss://a/").with_tags([
            ("1d".to_owned(), "x\"y".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
        ]);
        let plain = StreamStats::new("b", "wss://b/");
        let s = Stats::new(vec![Arc::new(tagged), Arc::new(plain)], 1);
        let line = r#"wsrec_stream_tags_info{stream="a",tag_1d="x\"y",tag_region="eu"} 1"#;
        for format in [Exposition::Prometheus, Exposition::OpenMetrics] {
            let text = render(&s, &SCRAPE, format);
            assert_line(&text, line);
            assert!(!text.contains("stream_tags_info{stream=\"b\""), "{text}");
        }
    }

    #[test]
    fn prometheus_text_names_samples_and_labels_streams() {
        let text = render(&stats(), &SCRAPE, Exposition::Prometheus);
        for line in [
            "# HELP wsrec_messages_total Messages received and handed to the writer.",
            "# TYPE wsrec_messages_total counter",
            "wsrec_messages_total{stream=\"a\"} 7",
            "wsrec_messages_total{stream=\"b.x-1\"} 0",
            "wsrec_message_bytes_total{stream=\"a\"} 700",
            "wsrec_reconnects_total{stream=\"a\"} 2",
            "wsrec_reconnects_total{stream=\"b.x-1\"} 0",
            "wsrec_last_message_age_seconds{stream=\"a\"} 0.5",
            "wsrec_last_message_timestamp_seconds{stream=\"a\"} 1000",
            "wsrec_stream_state{stream=\"a\",state=\"connected\"} 1",
            "wsrec_stream_state{stream=\"a\",state=\"backoff\"} 0",
            "wsrec_stream_state{stream=\"b.x-1\",state=\"backoff\"} 1",
            "# TYPE wsrec_build_info gauge",
            &format!(
                "wsrec_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "wsrec_uptime_seconds 1.5",
            "wsrec_queue_depth_messages 5",
            "wsrec_queue_capacity_messages 100",
            "wsrec_files_closed_total 2",
            "wsrec_disk_level 0",
            "wsrec_disk_buffer_bytes 4096",
            "wsrec_disk_buffer_peak_bytes 8192",
            "wsrec_disk_buffer_capacity_bytes 1048576",
            "wsrec_disk_stall_max_seconds 1.5",
            "wsrec_journal_bytes_total 65536",
            "wsrec_journal_halves_total 4",
            "wsrec_journal_fallbacks_total 0",
        ] {
            assert_line(&text, line);
        }
        // No message yet on b: no age, rather than a made-up one; disk never measured.
        assert!(!text.contains("wsrec_last_message_age_seconds{stream=\"b.x-1\"}"));
        assert!(!text.contains("\nwsrec_disk_free_bytes "));
        assert!(!text.contains("# EOF"));
        assert!(!text.contains("# UNIT"));
    }

    #[test]
    fn openmetrics_names_families_and_ends_with_eof() {
        let text = render(&stats(), &SCRAPE, Exposition::OpenMetrics);
        for line in [
            "# TYPE wsrec_messages counter",
            "wsrec_messages_total{stream=\"a\"} 7",
            "# TYPE wsrec_message_bytes counter",
            "# UNIT wsrec_message_bytes bytes",
            "# TYPE wsrec_build info",
            "# UNIT wsrec_uptime_seconds seconds",
        ] {
            assert_line(&text, line);
        }
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert!(!text.contains("\n\n"));
    }

    #[test]
    fn families_follow_the_naming_rules() {
        let mut seen = std::collections::HashSet::new();
        for f in FAMILIES {
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert!(
                f.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                f.name
            );
            assert!(!f.name.ends_with("_total") && !f.name.ends_with("_info"));
            assert!(f.unit.is_empty() || f.name.ends_with(&format!("_{}", f.unit)));
            assert!(!f.help.contains(['\\', '"', '\n']), "{}", f.name);
        }
    }

    #[test]
    fn disk_free_is_shown_once_measured() {
        let s = stats();
        s.disk_free.store(123, Relaxed);
        let text = render(&s, &SCRAPE, Exposition::Prometheus);
        assert_line(&text, "wsrec_disk_free_bytes 123");
        s.disk_free.store(0, Relaxed);
        s.set_disk_level(DiskLevel::Stopped);
        let text = render(&s, &SCRAPE, Exposition::Prometheus);
        assert_line(&text, "wsrec_disk_free_bytes 0");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        write_labels(&mut out, &[("stream", "a\"b\\c\nd")]);
        assert_eq!(out, r#"{stream="a\"b\\c\nd"}"#);
    }

    #[test]
    fn values_use_exposition_spelling() {
        let spell = |v| {
            let mut s = String::new();
            write_value(&mut s, v);
            s
        };
        assert_eq!(spell(Value::Int(u64::MAX)), "18446744073709551615");
        assert_eq!(spell(Value::Float(0.25)), "0.25");
        assert_eq!(spell(Value::Float(1e-7)), "0.0000001");
        assert_eq!(spell(Value::Float(f64::INFINITY)), "+Inf");
        assert_eq!(spell(Value::Float(f64::NAN)), "NaN");
    }

    #[test]
    fn accept_header_picks_the_format() {
        use Exposition::*;
        assert_eq!(Exposition::negotiate(None), Prometheus);
        assert_eq!(Exposition::negotiate(Some("*/*")), Prometheus);
        assert_eq!(
            Exposition::negotiate(Some("text/plain;version=0.0.4")),
            Prometheus
        );
        // What Prometheus itself sends.
        assert_eq!(
            Exposition::negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;\
                 version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
            )),
            OpenMetrics
        );
        assert_eq!(
            Exposition::negotiate(Some("Application/OpenMetrics-Text")),
            OpenMetrics
        );
        assert_eq!(
            Exposition::negotiate(Some("application/openmetrics-text; q=0, text/plain")),
            Prometheus
        );
    }

    #[test]
    fn replies_are_complete_http_responses() {
        let r = String::from_utf8(reply(404, "Not Found", &[], "nope\n", true)).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
        assert!(r.contains("\r\nContent-Length: 5\r\n"));
        assert!(r.contains("\r\nConnection: close\r\n"));
        assert!(r.ends_with("\r\n\r\nnope\n"));
        let head = String::from_utf8(reply(200, "OK", &[], "body", false)).unwrap();
        assert!(head.ends_with(
            "Content-Length: 4\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        ));
    }
}
