//! Live counters of a running recorder, shared between the hot path and the status side.
//!
//! Connection tasks and the writer bump plain atomics (`Relaxed`: each counter is independent and
//! read only for reporting). The status server and the periodic status log take a [`Snapshot`],
//! a plain serialisable copy, so nothing on the reporting side ever holds a lock the hot path needs.
//!
//! The parts: this file (the recorder's and each stream's counters, snapshots), `nats` (the
//! NATS sink's counters) and `pause` (a test hook that holds the disk worker).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod nats;
mod pause;

pub use nats::{NatsSnapshot, NatsState, NatsStats};
pub use pause::DiskPause;

/// Where a stream's connection stands, as shown in status output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    /// Dialling or in the WebSocket handshake.
    Connecting,
    /// Handshake done, receiving.
    Connected,
    /// Waiting out a reconnect backoff.
    Backoff,
    /// Shut down; no further connections.
    Stopped,
}

impl ConnState {
    /// The state as the lower-case word the JSON uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Backoff => "backoff",
            Self::Stopped => "stopped",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Connecting,
            1 => Self::Connected,
            2 => Self::Backoff,
            _ => Self::Stopped,
        }
    }
}

/// Lines lost to write errors that no marker in the data accounts for yet.
///
/// The disk worker fills it from the lines it could not write (reading them, on this rare
/// path, to tell messages from events and to take over the counts of lost markers); the
/// writer turns it into a `write_error_gap` event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnmarkedLoss {
    /// Messages not in the data: lost message lines, plus the `lost` of lost gap markers.
    pub messages: u64,
    /// Event lines lost (`connected`, `disconnected`, …), markers of losses not included.
    pub events: u64,
    /// The `count` of lost `dropped` markers: messages the when-full policy dropped.
    pub dropped: u64,
    /// Earliest receive time among the lost lines (0: unknown).
    pub from_ts: u64,
    /// Latest receive time among the lost lines (0: unknown).
    pub to_ts: u64,
}

impl UnmarkedLoss {
    /// Nothing to mark.
    pub fn is_empty(&self) -> bool {
        self.messages == 0 && self.events == 0 && self.dropped == 0
    }

    /// Widens the time span to include `ts` (0: unknown, ignored).
    pub fn saw(&mut self, ts: u64) {
        if ts == 0 {
            return;
        }
        self.from_ts = if self.from_ts == 0 {
            ts
        } else {
            self.from_ts.min(ts)
        };
        self.to_ts = self.to_ts.max(ts);
    }

    /// Adds `other` to this one.
    pub fn merge(&mut self, other: &UnmarkedLoss) {
        self.messages += other.messages;
        self.events += other.events;
        self.dropped += other.dropped;
        self.saw(other.from_ts);
        self.saw(other.to_ts);
    }
}

/// Counters of one stream.
#[derive(Debug)]
pub struct StreamStats {
    /// The stream's configured name.
    pub name: String,
    /// The stream's URL with credentials and query values masked.
    pub url_masked: String,
    state: AtomicU8,
    /// Messages received and handed to the writer.
    pub messages: AtomicU64,
    /// Payload bytes of those messages.
    pub bytes: AtomicU64,
    /// Connections opened successfully (the first one included).
    pub connections: AtomicU64,
    /// Connections that ended for any reason other than shutdown.
    pub disconnects: AtomicU64,
    /// Failed connection attempts (dial, TLS or handshake errors, timeouts).
    pub connect_failures: AtomicU64,
    /// Messages lost to the `drop_newest` when-full policy.
    pub dropped: AtomicU64,
    /// Messages that `raw` format could not write verbatim and wrote to the events file instead.
    pub raw_unsafe: AtomicU64,
    /// Receive time (ns since the epoch) of the last message, 0 if none yet.
    pub last_message_ns: AtomicU64,
    /// Lines written to files by the writer (messages and events).
    pub lines_written: AtomicU64,
    /// Lines lost: not written because of write errors or a full disk.
    pub lines_lost: AtomicU64,
    /// The part of `lines_lost` due to I/O errors (ENOSPC, EIO, permissions), which the writer
    /// marks in the data once writing works again.
    pub io_lost: AtomicU64,
    /// What the disk worker lost to write errors and no line in the data says yet: the writer
    /// takes it for its next `write_error_gap` marker, and gets it back, merged, if that marker
    /// is lost too.
    pub io_unmarked: Mutex<UnmarkedLoss>,
    /// Subscriptions the venue refused or that deliver nothing (see `first_data_timeout`),
    /// counted over the stream's open connections.
    pub subscriptions_failed: AtomicU64,
    /// REST depth snapshots fetched and handed to the writer.
    pub snapshots: AtomicU64,
    /// REST depth snapshots given up after every try (a `snapshot_failed` event each).
    pub snapshot_failures: AtomicU64,
    /// The file currently written for this stream, empty when none is open.
    pub current_file: Mutex<String>,
    /// The last connection error or close reason, empty when none.
    pub last_error: Mutex<String>,
    /// The stream's tags, key to value; empty when it has none.
    pub tags: std::collections::BTreeMap<String, String>,
}

impl StreamStats {
    /// Fresh counters for a stream.
    pub fn new(name: &str, url_masked: &str) -> Self {
        Self {
            name: name.to_owned(),
            url_masked: url_masked.to_owned(),
            state: AtomicU8::new(0),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            raw_unsafe: AtomicU64::new(0),
            last_message_ns: AtomicU64::new(0),
            lines_written: AtomicU64::new(0),
            lines_lost: AtomicU64::new(0),
            io_lost: AtomicU64::new(0),
            io_unmarked: Mutex::new(UnmarkedLoss::default()),
            subscriptions_failed: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            snapshot_failures: AtomicU64::new(0),
            current_file: Mutex::new(String::new()),
            last_error: Mutex::new(String::new()),
            tags: std::collections::BTreeMap::new(),
        }
    }

    /// The same with the stream's tags (key, value).
    #[must_use]
    pub fn with_tags(mut self, tags: impl IntoIterator<Item = (String, String)>) -> Self {
        self.tags = tags.into_iter().collect();
        self
    }

    /// Records the connection state.
    pub fn set_state(&self, state: ConnState) {
        self.state.store(state as u8, Relaxed);
    }

    /// The connection state.
    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.state.load(Relaxed))
    }

    /// Remembers the last error for status output.
    pub fn set_last_error(&self, err: &str) {
        // A poisoned lock only means another thread panicked mid-store of a String; the value is
        // still a valid String, so keep using it.
        let mut guard = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        guard.clear();
        guard.push_str(err);
    }

    /// Adds lines lost to a write error to what the next marker must say.
    pub fn add_unmarked(&self, loss: &UnmarkedLoss) {
        self.io_unmarked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(loss);
    }

    /// Takes what the next `write_error_gap` marker must say (empty if nothing is unmarked).
    pub fn take_unmarked(&self) -> UnmarkedLoss {
        std::mem::take(&mut *self.io_unmarked.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Remembers the file being written.
    pub fn set_current_file(&self, path: &str) {
        let mut guard = self.current_file.lock().unwrap_or_else(|e| e.into_inner());
        guard.clear();
        guard.push_str(path);
    }

    fn snapshot(&self, uptime: Duration) -> StreamSnapshot {
        let messages = self.messages.load(Relaxed);
        StreamSnapshot {
            name: self.name.clone(),
            url: self.url_masked.clone(),
            state: self.state(),
            messages,
            bytes: self.bytes.load(Relaxed),
            rate_per_sec: rate(messages, uptime),
            connections: self.connections.load(Relaxed),
            reconnects: self.connections.load(Relaxed).saturating_sub(1),
            connect_failures: self.connect_failures.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            raw_unsafe: self.raw_unsafe.load(Relaxed),
            lines_lost: self.lines_lost.load(Relaxed),
            subscriptions_failed: self.subscriptions_failed.load(Relaxed),
            snapshots: self.snapshots.load(Relaxed),
            snapshot_failures: self.snapshot_failures.load(Relaxed),
            last_message_ns: self.last_message_ns.load(Relaxed),
            current_file: self
                .current_file
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            tags: self.tags.clone(),
        }
    }
}

/// How much free space the output directory has, against the `disk_warn` and `disk_stop`
/// watermarks. Kept in [`Stats::disk_level`] as its number (`wsrec_disk_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskLevel {
    /// Enough space, or no watermark configured (0).
    Enough,
    /// Below `disk_warn` (1).
    Low,
    /// Below `disk_stop`: messages are not written (2).
    Stopped,
}

impl DiskLevel {
    /// Its number, as stored and shown by the metrics.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Enough => 0,
            Self::Low => 1,
            Self::Stopped => 2,
        }
    }

    /// The level a stored number stands for (only [`Self::as_u8`]'s values are ever stored;
    /// anything above counts as stopped).
    pub const fn from_u8(n: u8) -> Self {
        match n {
            0 => Self::Enough,
            1 => Self::Low,
            _ => Self::Stopped,
        }
    }
}

/// Counters of the whole recorder.
#[derive(Debug)]
pub struct Stats {
    /// When the recorder started, for uptime and average rates.
    pub started: Instant,
    /// One entry per configured stream, in config order.
    pub streams: Vec<std::sync::Arc<StreamStats>>,
    /// Capacity of the queue between connections and the writer, in messages.
    pub queue_capacity: u64,
    /// Messages currently waiting in that queue.
    pub queue_depth: AtomicU64,
    /// Files closed (renamed to their final name) since start.
    pub files_closed: AtomicU64,
    /// Write errors seen by the writer.
    pub write_errors: AtomicU64,
    /// Closed files waiting for the compressor.
    pub compress_backlog: AtomicU64,
    /// Files compressed since start.
    pub files_compressed: AtomicU64,
    /// Files the compressor failed on (kept uncompressed).
    pub compress_errors: AtomicU64,
    /// Sealed files waiting for upload or being uploaded.
    pub upload_backlog: AtomicU64,
    /// Files uploaded (and checked) since start.
    pub files_uploaded: AtomicU64,
    /// Bytes of those files and their manifests.
    pub bytes_uploaded: AtomicU64,
    /// Upload attempts that failed (retried) and files given up until the next start.
    pub upload_errors: AtomicU64,
    /// Free bytes in the output directory at the last check.
    pub disk_free: AtomicU64,
    /// The [`DiskLevel`] as its number ([`DiskLevel::as_u8`]); read it with
    /// [`Stats::disk_level`].
    pub disk_level: AtomicU8,
    /// Bytes waiting for the disk worker: the data of queued writes, plus a small fixed charge
    /// per queued operation (see the `disk` module). Near 0 unless the disk stalls.
    pub disk_buffer_bytes: AtomicU64,
    /// The most `disk_buffer_bytes` has been since start.
    pub disk_buffer_peak: AtomicU64,
    /// Its bound (`disk_buffer`): at it, the writer waits and `when_full` applies.
    pub disk_buffer_capacity: AtomicU64,
    /// The longest time (ns) the disk worker spent on one finished operation since start: an
    /// append, a sync, or a file's close (sync, manifest, rename, retention). While one lasts,
    /// lines pile up in the disk buffer. [`Stats::disk_stall_max`] counts the one under way too.
    pub disk_stall_max_ns: AtomicU64,
    /// Files synced one by one (`fdatasync`) when their `fsync_interval` was up, or after each
    /// write with `fsync = "always"`.
    pub file_syncs: AtomicU64,
    /// Syncs of a whole file system (`syncfs`) that took the place of many files' syncs due
    /// together (see the `disk` module).
    pub fs_syncs: AtomicU64,
    /// Bytes of lines the writer copied into its journal at idle moments (`store::journal`):
    /// lines a kill would not lose although the files did not have them yet.
    pub journal_bytes: AtomicU64,
    /// Journal halves started: each time one filled or a flush tick came, every file was
    /// handed its lines and the writer went on in the other half.
    pub journal_halves: AtomicU64,
    /// Times a journal half filled before the disk worker had written what the other held:
    /// until it had, idle moments handed lines to the disk worker, as without a journal.
    pub journal_fallbacks: AtomicU64,
    /// When the operation the disk worker is on began, in ns since `started` plus 1; 0 while
    /// it is idle.
    pub disk_op_since: AtomicU64,
    /// A test-only pause of the disk worker.
    #[doc(hidden)]
    pub disk_pause: DiskPause,
    /// Where the metrics endpoint listens, once it is bound (it is off unless `metrics_listen`
    /// is set; with port 0 this is how to learn the port).
    pub metrics_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// The NATS fan-out's counters (state `off` without `[nats]`).
    pub nats: NatsStats,
}

impl Stats {
    /// Counters for the given streams.
    pub fn new(streams: Vec<std::sync::Arc<StreamStats>>, queue_capacity: u64) -> Self {
        Self {
            started: Instant::now(),
            streams,
            queue_capacity,
            queue_depth: AtomicU64::new(0),
            files_closed: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            compress_backlog: AtomicU64::new(0),
            files_compressed: AtomicU64::new(0),
            compress_errors: AtomicU64::new(0),
            upload_backlog: AtomicU64::new(0),
            files_uploaded: AtomicU64::new(0),
            bytes_uploaded: AtomicU64::new(0),
            upload_errors: AtomicU64::new(0),
            disk_free: AtomicU64::new(0),
            disk_level: AtomicU8::new(DiskLevel::Enough.as_u8()),
            disk_buffer_bytes: AtomicU64::new(0),
            disk_buffer_peak: AtomicU64::new(0),
            disk_buffer_capacity: AtomicU64::new(0),
            disk_stall_max_ns: AtomicU64::new(0),
            file_syncs: AtomicU64::new(0),
            fs_syncs: AtomicU64::new(0),
            journal_bytes: AtomicU64::new(0),
            journal_halves: AtomicU64::new(0),
            journal_fallbacks: AtomicU64::new(0),
            disk_op_since: AtomicU64::new(0),
            disk_pause: DiskPause::default(),
            metrics_addr: std::sync::OnceLock::new(),
            nats: NatsStats::default(),
        }
    }

    /// The free-space level at the last check.
    pub fn disk_level(&self) -> DiskLevel {
        DiskLevel::from_u8(self.disk_level.load(Relaxed))
    }

    /// Records the free-space level (the writer, when a watermark is crossed).
    pub(crate) fn set_disk_level(&self, level: DiskLevel) {
        self.disk_level.store(level.as_u8(), Relaxed);
    }

    /// The longest time the disk worker has spent on one operation since start, the one it is
    /// on now included (so a disk that hangs shows while it hangs, not only once it answers).
    pub fn disk_stall_max(&self) -> Duration {
        let done = Duration::from_nanos(self.disk_stall_max_ns.load(Relaxed));
        done.max(self.disk_op_running_for())
    }

    /// How long the disk worker has been on the operation it is on now (zero when on none).
    pub(crate) fn disk_op_running_for(&self) -> Duration {
        match self.disk_op_since.load(Relaxed) {
            0 => Duration::ZERO,
            since => {
                let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(elapsed.saturating_sub(since - 1))
            }
        }
    }

    /// Marks that a disk operation began `at` (read by its caller, who also times the
    /// operation with it), for [`Stats::disk_stall_max`].
    pub(crate) fn disk_op_began(&self, at: Instant) {
        let since = at.saturating_duration_since(self.started).as_nanos();
        let since = u64::try_from(since).unwrap_or(u64::MAX - 1) + 1;
        self.disk_op_since.store(since, Relaxed);
    }

    /// Marks the end of the disk operation under way.
    pub(crate) fn disk_op_ended(&self) {
        self.disk_op_since.store(0, Relaxed);
    }

    /// A consistent-enough copy of every counter, for status output.
    pub fn snapshot(&self) -> Snapshot {
        let uptime = self.started.elapsed();
        let streams: Vec<StreamSnapshot> =
            self.streams.iter().map(|s| s.snapshot(uptime)).collect();
        let total_messages = streams.iter().map(|s| s.messages).sum();
        Snapshot {
            pid: std::process::id(),
            uptime_secs: uptime.as_secs_f64(),
            total_messages,
            rate_per_min: rate(total_messages, uptime) * 60.0,
            queue_capacity: self.queue_capacity,
            queue_depth: self.queue_depth.load(Relaxed),
            files_closed: self.files_closed.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            compress_backlog: self.compress_backlog.load(Relaxed),
            files_compressed: self.files_compressed.load(Relaxed),
            compress_errors: self.compress_errors.load(Relaxed),
            upload_backlog: self.upload_backlog.load(Relaxed),
            files_uploaded: self.files_uploaded.load(Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Relaxed),
            upload_errors: self.upload_errors.load(Relaxed),
            disk_free: self.disk_free.load(Relaxed),
            disk_low: self.disk_level() >= DiskLevel::Low,
            disk_stopped: self.disk_level() == DiskLevel::Stopped,
            disk_buffer_bytes: self.disk_buffer_bytes.load(Relaxed),
            disk_buffer_peak_bytes: self.disk_buffer_peak.load(Relaxed),
            disk_buffer_capacity: self.disk_buffer_capacity.load(Relaxed),
            disk_stall_max_secs: self.disk_stall_max().as_secs_f64(),
            journal_bytes: self.journal_bytes.load(Relaxed),
            journal_halves: self.journal_halves.load(Relaxed),
            journal_fallbacks: self.journal_fallbacks.load(Relaxed),
            nats: self.nats.snapshot(),
            streams,
        }
    }
}

fn rate(count: u64, over: Duration) -> f64 {
    let secs = over.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        count as f64 / secs
    }
}

/// Everything `wsrec status` shows, as sent over the status socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Process id of the recorder.
    pub pid: u32,
    /// Seconds since the recorder started.
    pub uptime_secs: f64,
    /// Messages received over all streams.
    pub total_messages: u64,
    /// Average messages per minute since start (the Go streamer's `Rate`).
    pub rate_per_min: f64,
    /// Queue capacity in messages.
    pub queue_capacity: u64,
    /// Messages waiting in the queue.
    pub queue_depth: u64,
    /// Files closed since start.
    pub files_closed: u64,
    /// Write errors since start.
    pub write_errors: u64,
    /// Closed files waiting for compression (a growing number means it falls behind).
    #[serde(default)]
    pub compress_backlog: u64,
    /// Files compressed since start.
    #[serde(default)]
    pub files_compressed: u64,
    /// Files that could not be compressed.
    #[serde(default)]
    pub compress_errors: u64,
    /// Sealed files waiting for upload (a growing number means the storage is down or slow).
    #[serde(default)]
    pub upload_backlog: u64,
    /// Files uploaded since start.
    #[serde(default)]
    pub files_uploaded: u64,
    /// Bytes uploaded since start (files and manifests).
    #[serde(default)]
    pub bytes_uploaded: u64,
    /// Failed upload attempts since start.
    #[serde(default)]
    pub upload_errors: u64,
    /// Free bytes in the output directory at the last check.
    #[serde(default)]
    pub disk_free: u64,
    /// Free space is below `disk_warn`.
    #[serde(default)]
    pub disk_low: bool,
    /// Free space is below `disk_stop`: messages are counted as lost, not written.
    #[serde(default)]
    pub disk_stopped: bool,
    /// Bytes waiting for the disk worker now (near 0 unless the disk stalls).
    #[serde(default)]
    pub disk_buffer_bytes: u64,
    /// The most bytes that have waited for it since start.
    #[serde(default)]
    pub disk_buffer_peak_bytes: u64,
    /// The bound on those bytes (`disk_buffer`).
    #[serde(default)]
    pub disk_buffer_capacity: u64,
    /// The longest time in seconds the disk worker spent on one operation since start, the one
    /// under way included.
    #[serde(default)]
    pub disk_stall_max_secs: f64,
    /// Bytes of lines kept in the journal since start (0 without one).
    #[serde(default)]
    pub journal_bytes: u64,
    /// Journal halves started since start.
    #[serde(default)]
    pub journal_halves: u64,
    /// Times a journal half filled before the disk had the other half's lines.
    #[serde(default)]
    pub journal_fallbacks: u64,
    /// The NATS fan-out, when configured.
    #[serde(default)]
    pub nats: Option<NatsSnapshot>,
    /// Per-stream counters.
    pub streams: Vec<StreamSnapshot>,
}

/// One stream's counters in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamSnapshot {
    /// Stream name.
    pub name: String,
    /// URL with secrets masked.
    pub url: String,
    /// Connection state.
    pub state: ConnState,
    /// Messages received.
    pub messages: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Average messages per second since start.
    pub rate_per_sec: f64,
    /// Connections opened.
    pub connections: u64,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// Failed connection attempts.
    pub connect_failures: u64,
    /// Messages dropped by the when-full policy.
    pub dropped: u64,
    /// Messages `raw` format diverted to the events file.
    pub raw_unsafe: u64,
    /// Subscriptions refused or silent (venue streams).
    #[serde(default)]
    pub subscriptions_failed: u64,
    /// REST depth snapshots fetched.
    #[serde(default)]
    pub snapshots: u64,
    /// REST depth snapshots given up.
    #[serde(default)]
    pub snapshot_failures: u64,
    /// Lines lost to write errors.
    #[serde(default)]
    pub lines_lost: u64,
    /// Receive time of the last message (ns since the epoch), 0 if none.
    pub last_message_ns: u64,
    /// File being written.
    pub current_file: String,
    /// Last error or close reason.
    pub last_error: String,
    /// The stream's tags, key to value; absent when it has none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Snapshot {
    /// The Go JSONL streamer's one-line status:
    /// `Uptime: 12m34s | Total Msgs: 152340 | Rate: 7260.12 msg/min`.
    pub fn go_line(&self) -> String {
        format!(
            "Uptime: {} | Total Msgs: {} | Rate: {:.2} msg/min",
            go_duration(self.uptime_secs),
            self.total_messages,
            self.rate_per_min
        )
    }
}

/// Formats whole seconds the way Go's `time.Duration.Round(time.Second).String()` does
/// (`45s`, `12m34s`, `3h0m5s`).
pub fn go_duration(secs: f64) -> String {
    let total = secs.round().max(0.0) as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_level_is_stored_as_the_number_the_metrics_show() {
        let s = Stats::new(vec![], 1);
        assert_eq!(s.disk_level(), DiskLevel::Enough);
        for (level, n) in [
            (DiskLevel::Enough, 0),
            (DiskLevel::Low, 1),
            (DiskLevel::Stopped, 2),
        ] {
            s.set_disk_level(level);
            assert_eq!(s.disk_level.load(Relaxed), n);
            assert_eq!(s.disk_level(), level);
            let snap = s.snapshot();
            assert_eq!(snap.disk_low, level != DiskLevel::Enough);
            assert_eq!(snap.disk_stopped, level == DiskLevel::Stopped);
        }
    }

    #[test]
    fn go_duration_matches_go_formatting() {
        assert_eq!(go_duration(0.0), "0s");
        assert_eq!(go_duration(45.4), "45s");
        assert_eq!(go_duration(754.0), "12m34s");
        assert_eq!(go_duration(3605.0), "1h0m5s");
    }

    #[test]
    fn go_line_has_the_go_shape() {
        let snap = Snapshot {
            pid: 1,
            uptime_secs: 754.0,
            total_messages: 152_340,
            rate_per_min: 7260.123,
            queue_capacity: 10,
            queue_depth: 0,
            files_closed: 0,
            write_errors: 0,
            compress_backlog: 0,
            files_compressed: 0,
            compress_errors: 0,
            upload_backlog: 0,
            files_uploaded: 0,
            bytes_uploaded: 0,
            upload_errors: 0,
            disk_free: 0,
            disk_low: false,
            disk_stopped: false,
            disk_buffer_bytes: 0,
            disk_buffer_peak_bytes: 0,
            disk_buffer_capacity: 0,
            disk_stall_max_secs: 0.0,
            journal_bytes: 0,
            journal_halves: 0,
            journal_fallbacks: 0,
            nats: None,
            streams: vec![],
        };
        assert_eq!(
            snap.go_line(),
            "Uptime: 12m34s | Total Msgs: 152340 | Rate: 7260.12 msg/min"
        );
    }
}
