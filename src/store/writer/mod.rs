//! The writer task: turns batches into lines (messages, events, and REST snapshots: a snapshot
//! line carries the request's `snapshot` object and the body as a message's payload is written,
//! takes no `seq`, and goes to a raw stream's events sidecar; below `disk_stop` it is still
//! written, as events are), decides which file each line goes to, and hands
//! buffers to the disk worker: full ones at once, the rest every `flush_interval`. Whenever its
//! queue runs empty, the lines it holds go to the [journal](crate::store::journal) (shared
//! memory that a kill leaves behind for the next start), so a kill loses only the last
//! moment's lines; without a journal, they go to the disk worker then (at most once per
//! `IDLE_HANDOFF_GAP` per file).
//!
//! Lines the disk worker loses to write errors come back as a count to mark: a
//! `write_error_gap` event at the front of the stream's next batch, or of an empty batch at
//! the next flush tick.
//!
//! It owns every open file of the recorder (as handles on the disk worker), so rotation,
//! limits and shutdown are decided in one place without locks. It is stopped by the queue
//! closing, not by the shutdown token: when every connection has dropped its sender,
//! everything already received has been queued, and the writer drains it, closes every file
//! and only then returns.
//!
//! Rotation is UTC-aligned and timer-driven: a quiet stream's file is closed at the interval's
//! end even if no further message arrives.
//!
//! The parts: this file (the loop, and encoding batches into lines), `sink` (what the writer
//! knows of a stream, its retention scope included), `files` (opening, handing on and closing
//! files), `watermark` (free disk space, lines lost to write errors), `event` (the writer's
//! telemetry: counters and log lines) and `decimal` (number text reused from line to line).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use base64::Engine as _;
use tokio::time::{Instant, MissedTickBehavior};

use crate::batch::{Batch, Kind};
use crate::clock::Clock;
use crate::config::{Format, Watermark};
use crate::fsutil::FLUSH_BYTES;
use crate::observe::stats::{DiskLevel, Stats, UnmarkedLoss};
use crate::queue::QueueRx;
use crate::store::disk::{Disk, DiskOp, SyncPolicy};
use crate::store::journal::Journal;
use crate::store::manifest::ManifestBuilder;

mod decimal;
mod event;
mod files;
mod sink;
mod watermark;

use decimal::Decimal;
use event::WriterEvent;
pub use sink::StreamSink;

// The least `disk_buffer` the config accepts is two of the writer's full buffers.
const _: () = assert!(crate::config::MIN_DISK_BUFFER == 2 * FLUSH_BYTES as u64);

/// Without a journal, the writer hands a file's lines to the disk worker when its queue runs
/// empty, but not
/// sooner than this after the file's last hand-off (full buffers included): lines that come
/// sooner wait for the next idle moment after it, or its timer. So a kill loses at most about
/// this long of data (far less than with buffers handed on only when full or once a second),
/// and a busy file is not handed on in pieces at every short pause of a burst. Each hand-off
/// costs a write(2) and may wake the disk worker: a steady stream arriving in bursts a
/// millisecond apart costs clearly more CPU per message than with hand-offs only when full or
/// once a second (figures in bench/README.md).
const IDLE_HANDOFF_GAP: Duration = Duration::from_micros(500);
/// A file whose lines have come faster than this (bytes per second) since its last hand-off
/// is busy (once it holds 16 KiB: a few lines just after a hand-off say nothing of the rate):
/// at an idle moment its lines go to the disk worker (at most once per
/// [`IDLE_HANDOFF_GAP`]), as without a journal, rather than through the journal. Such a file
/// fills its buffers quickly anyway, and copying a flood into the journal (and starting its
/// halves over and over) cost more than the writes it saved (200-byte flood: about 40 ns more
/// per message); a steady 50,000 messages a second (12.5 MB/s) still goes through the journal.
const BUSY_RATE: u64 = 32_000_000;
/// Batches taken in one go before timers get a look in.
const BATCHES_PER_TURN: usize = 64;

/// One open output file.
#[derive(Debug)]
struct Output {
    /// The file's handle on the disk worker.
    id: u64,
    /// Start of the interval this file covers (ns).
    bucket: u64,
    /// End of that interval (ns).
    end_ns: u64,
    /// Name the file gets when closed.
    final_path: PathBuf,
    /// Lines written, for `max_lines`.
    lines: u64,
    /// Bytes written, for `max_bytes`.
    bytes: u64,
    /// Encoded lines not yet handed to the disk worker.
    buf: Vec<u8>,
    /// Lines in `buf`.
    buf_lines: u64,
    /// When `buf` was last handed to the disk worker (clock ns; 0: never).
    handed_at: u64,
    /// On the writer's list of files to hand on (or journal) at an idle moment.
    listed: bool,
    /// The `.open` path relative to the output directory, as the journal names the file.
    journal_name: Box<[u8]>,
    /// Bytes at the front of `buf` already in the journal.
    journaled: usize,
    /// What the file's manifest will say.
    manifest: ManifestBuilder,
}

/// A stream's files.
#[derive(Debug)]
struct StreamState {
    sink: StreamSink,
    /// The data file (in `envelope` format also the events).
    data: Option<Output>,
    /// The `raw` format's sidecar events file, opened and closed with the data file.
    events: Option<Output>,
    /// No record goes to an interval before this one (set when a file is closed on time, so a
    /// late record never reopens a closed interval).
    floor: u64,
    /// `(bucket, part)` of the last file opened, so a limit-driven rotation gets the next part.
    last_part: (u64, u32),
    /// Final data path of the open pair (data file and its sidecar share it).
    pair: Option<PathBuf>,
    /// Messages not written because the disk was below `disk_stop`, not yet marked in the data.
    disk_lost: u64,
    /// Receive time of the first of those.
    disk_lost_from: u64,
    /// Receive time of the last of those.
    disk_lost_to: u64,
    /// Lines lost to write errors, to be marked at the front of the next batch.
    io_pending: UnmarkedLoss,
}

impl StreamState {
    /// The data file, or the raw format's sidecar (`events`), when open.
    fn output(&mut self, events: bool) -> Option<&mut Output> {
        if events {
            self.events.as_mut()
        } else {
            self.data.as_mut()
        }
    }
}

/// Recorder-wide settings of the writer.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Directory every path is relative to.
    pub output_dir: PathBuf,
    /// Clock for timer-driven rotation.
    pub clock: Clock,
    /// Longest time encoded lines wait before going to the disk worker.
    pub flush_interval: Duration,
    /// Free-space warning threshold.
    pub disk_warn: Option<Watermark>,
    /// Free-space stop threshold.
    pub disk_stop: Option<Watermark>,
}

/// The writer task's state.
pub struct Writer {
    output_dir: PathBuf,
    streams: Vec<StreamState>,
    rx: QueueRx,
    disk: Disk,
    clock: Clock,
    flush_interval: Duration,
    stats: Arc<Stats>,
    next_id: u64,
    /// Reused for the per-batch `,"stream":…,"conn":N` prefix.
    prefix: Vec<u8>,
    /// Free-space thresholds: warn, stop.
    watermarks: (Option<Watermark>, Option<Watermark>),
    /// Free space against the watermarks at the last check.
    disk_level: DiskLevel,
    /// The NATS fan-out's queue, when configured.
    nats: Option<crate::ship::nats::NatsTx>,
    /// Files (stream, sidecar or not) whose buffer took lines since it was last handed on;
    /// may name a file twice or one flushed since.
    unflushed: Vec<(usize, bool)>,
    /// A file opened or closed since the next rotation deadline was last worked out (finding
    /// it looks at every stream: not once per batch with a thousand streams).
    rotation_stale: bool,
    /// The idle hand-off's writes, gathered to be queued at once (kept for its allocation).
    handoff_ops: Vec<DiskOp>,
    /// Where idle moments put the new lines instead of handing them on, when there is one.
    journal: Option<Journal>,
    /// The journal's half is full and the other one not yet written: idle moments hand lines
    /// on as without a journal until the disk worker has written it.
    journal_stuck: bool,
}

impl Writer {
    /// A writer for `sinks` (in stream-index order) reading from `rx`.
    pub fn new(
        settings: WriterSettings,
        sinks: Vec<StreamSink>,
        rx: QueueRx,
        disk: Disk,
        stats: Arc<Stats>,
    ) -> Self {
        let streams = sinks
            .into_iter()
            .map(|sink| StreamState {
                sink,
                data: None,
                events: None,
                floor: 0,
                last_part: (u64::MAX, 0),
                pair: None,
                disk_lost: 0,
                disk_lost_from: 0,
                disk_lost_to: 0,
                io_pending: UnmarkedLoss::default(),
            })
            .collect();
        Self {
            output_dir: settings.output_dir,
            streams,
            rx,
            disk,
            clock: settings.clock,
            flush_interval: settings.flush_interval,
            stats,
            next_id: 0,
            prefix: Vec::with_capacity(128),
            watermarks: (settings.disk_warn, settings.disk_stop),
            disk_level: DiskLevel::Enough,
            nats: None,
            unflushed: Vec::new(),
            rotation_stale: true,
            handoff_ops: Vec::new(),
            journal: None,
            journal_stuck: false,
        }
    }

    /// Puts the lines of idle moments into `journal` instead of handing them on at once
    /// (the disk worker gets them every `flush_interval`, or when a buffer or the journal is
    /// full; see [`crate::store::journal`]).
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Also hands a copy of every line to the NATS fan-out (never waiting for it).
    pub fn with_nats(mut self, nats: crate::ship::nats::NatsTx) -> Self {
        self.nats = Some(nats);
        self
    }

    /// A NATS gap of the stream can be marked now.
    fn nats_gap_due(&self, idx: usize) -> bool {
        self.nats.as_ref().is_some_and(|n| n.gap_due(idx))
    }

    /// Runs until the queue closes, then flushes and closes every file and stops the disk worker.
    pub async fn run(mut self) {
        let mut flush = tokio::time::interval(self.flush_interval);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        flush.tick().await;
        let rotation = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(rotation);
        let mut deadline = None;
        let mut slice = crate::fair::Slice::new();
        // Lines held back after an idle moment because the last hand-off was too recent go on
        // when this fires, unless an idle moment hands them on first.
        let handoff = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(handoff);
        let mut handoff_armed = false;
        let mut unchecked = false;
        loop {
            let next = if std::mem::take(&mut self.rotation_stale) {
                self.next_rotation_ns()
            } else {
                deadline
            };
            if next != deadline {
                deadline = next;
                let at = match next {
                    Some(ns) => {
                        Instant::now()
                            + Duration::from_nanos(ns.saturating_sub(self.clock.now_ns()))
                    }
                    None => Instant::now() + Duration::from_secs(86_400),
                };
                rotation.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                batch = self.rx.recv() => {
                    let Some(batch) = batch else { break };
                    self.write_batch(batch).await;
                    let mut idle = false;
                    for _ in 0..BATCHES_PER_TURN {
                        match self.rx.try_recv() {
                            Some(b) => self.write_batch(b).await,
                            None => {
                                idle = true;
                                break;
                            }
                        }
                    }
                    if idle {
                        handoff_armed = self.on_idle(handoff.as_mut()).await;
                    }
                    // A turn that ended on its limit, not on an empty queue, looks again.
                    unchecked = !idle;
                    self.stats.queue_depth.store(self.rx.depth() as u64, Relaxed);
                    slice.tick().await;
                }
                // The queue is empty now (the branch above was not ready): an idle moment
                // that the last turn, ended by its limit, did not see.
                () = std::future::ready(()), if unchecked => {
                    unchecked = false;
                    handoff_armed = self.on_idle(handoff.as_mut()).await;
                }
                () = &mut handoff, if handoff_armed => {
                    handoff_armed = self.hand_off_idle(handoff.as_mut()).await;
                }
                () = &mut rotation => {
                    self.close_due().await;
                    // An elapsed sleep stays ready: force a reset to whatever comes next
                    // (0 is never a real deadline).
                    deadline = Some(0);
                    self.rotation_stale = true;
                }
                _ = flush.tick() => {
                    self.check_disk();
                    self.flush_all().await;
                    self.switch_journal().await;
                }
            }
        }
        // Losses not yet marked get their mark before the files close.
        self.disk.finish().await;
        for idx in 0..self.streams.len() {
            self.note_io_loss(idx);
            if !self.streams[idx].io_pending.is_empty() || self.nats_gap_due(idx) {
                self.write_batch(Batch::new(idx, 0)).await;
            }
        }
        self.close_all().await;
        self.disk.finish().await;
        // Every line is in its file, closed: the journal has nothing left to give.
        if let Some(journal) = self.journal.take() {
            journal.remove();
        }
        for state in &self.streams {
            let left = state.sink.stats.take_unmarked();
            if !left.is_empty() {
                WriterEvent::UnmarkedAtEnd {
                    stream: &state.sink.name,
                    loss: left,
                }
                .emit(&self.stats);
            }
        }
    }

    fn next_rotation_ns(&self) -> Option<u64> {
        self.streams
            .iter()
            .filter_map(|s| s.data.as_ref().or(s.events.as_ref()).map(|o| o.end_ns))
            .min()
    }

    async fn write_batch(&mut self, mut batch: Batch) {
        let idx = batch.stream;
        let Some(state) = self.streams.get_mut(idx) else {
            WriterEvent::UnknownStream { stream: idx }.emit(&self.stats);
            self.rx.release_batch(batch);
            return;
        };
        if !state.io_pending.is_empty() {
            let lost = std::mem::take(&mut state.io_pending);
            let clock = self.clock;
            let ts = batch.items.first().map_or_else(|| clock.now_ns(), |i| i.ts);
            batch.prepend_event(ts, "write_error_gap", |f| {
                f.num("lost", lost.messages);
                if lost.events > 0 {
                    f.num("lost_events", lost.events);
                }
                if lost.dropped > 0 {
                    f.num("dropped", lost.dropped);
                }
                if lost.from_ts > 0 {
                    f.num("from_ts", lost.from_ts).num("to_ts", lost.to_ts);
                }
            });
        }
        if self.disk_level != DiskLevel::Stopped && state.disk_lost > 0 {
            let (lost, from, to) = (state.disk_lost, state.disk_lost_from, state.disk_lost_to);
            state.disk_lost = 0;
            batch.prepend_event(to, "disk_full_gap", |f| {
                f.num("lost", lost).num("from_ts", from).num("to_ts", to);
            });
        }
        let clock = self.clock;
        let mut copy = self
            .nats
            .as_ref()
            .and_then(|n| n.begin(idx, &mut batch, clock));
        self.prefix.clear();
        self.prefix.extend_from_slice(b",\"stream\":");
        self.prefix.extend_from_slice(&state.sink.name_json);
        self.prefix.extend_from_slice(b",\"conn\":");
        self.prefix
            .extend_from_slice(itoa::Buffer::new().format(batch.conn).as_bytes());

        let format = state.sink.format;
        let mut seq = batch.first_seq;
        let mut lines = 0u64;
        let mut ts_text = Decimal::default();
        let mut seq_text = Decimal::default();
        let stopped = self.disk_level == DiskLevel::Stopped;
        for (item, bytes) in batch.iter() {
            if stopped && item.kind.is_message() {
                // Below disk_stop: count and remember the gap instead of writing.
                let state = &mut self.streams[idx];
                if state.disk_lost == 0 {
                    state.disk_lost_from = item.ts;
                }
                state.disk_lost += 1;
                state.disk_lost_to = item.ts;
                state.sink.stats.lines_lost.fetch_add(1, Relaxed);
                seq += 1;
                continue;
            }
            // Pick (and if needed rotate) the file this line goes to.
            let to_events = format == Format::Raw
                && match item.kind {
                    Kind::Line => false,
                    Kind::Text => memchr::memchr2(b'\n', b'\r', bytes).is_some(),
                    _ => true,
                };
            let ready = {
                let st = &self.streams[idx];
                let o = if to_events { &st.events } else { &st.data };
                matches!(o, Some(o) if item.ts < o.end_ns)
            };
            if !ready {
                self.ensure_open(idx, item.ts, to_events).await;
            }
            let state = &mut self.streams[idx];
            let out = if to_events {
                state.events.as_mut()
            } else {
                state.data.as_mut()
            };
            // `ensure_open` just opened the file this line needs.
            let Some(out) = out else { continue };
            let start = out.buf.len();
            if format == Format::Raw && !to_events {
                out.buf.extend_from_slice(bytes);
                out.buf.push(b'\n');
            } else {
                if format == Format::Raw && item.kind.is_message() {
                    state.sink.stats.raw_unsafe.fetch_add(1, Relaxed);
                }
                let buf = &mut out.buf;
                buf.extend_from_slice(b"{\"ts\":");
                buf.extend_from_slice(ts_text.of(item.ts));
                buf.extend_from_slice(&self.prefix);
                match item.kind {
                    Kind::Event => {
                        buf.push(b',');
                        buf.extend_from_slice(bytes);
                    }
                    Kind::Text | Kind::Line | Kind::Binary => {
                        buf.extend_from_slice(b",\"seq\":");
                        buf.extend_from_slice(seq_text.of(seq));
                        if item.kind == Kind::Binary {
                            push_base64(buf, bytes);
                        } else {
                            push_text(buf, bytes);
                        }
                    }
                    Kind::Snapshot { .. } => {
                        let (fields, body) = item.kind.snapshot_parts(bytes).unwrap_or_default();
                        // A body that is not UTF-8 (a binary error page) cannot be text.
                        buf.extend_from_slice(b",\"snapshot\":{");
                        buf.extend_from_slice(fields.strip_prefix(b",").unwrap_or(fields));
                        buf.push(b'}');
                        if std::str::from_utf8(body).is_ok() {
                            push_text(buf, body);
                        } else {
                            push_base64(buf, body);
                        }
                    }
                }
                buf.extend_from_slice(b"}\n");
            }
            if let Some(c) = &mut copy {
                c.push(&out.buf[start..out.buf.len() - 1], item.ts);
            }
            match item.kind {
                Kind::Event => out.manifest.event(bytes),
                Kind::Snapshot { .. } => out.manifest.snapshot(),
                Kind::Text | Kind::Line | Kind::Binary => {
                    out.manifest.message(batch.conn, seq, item.ts);
                    seq += 1;
                }
            }
            out.lines += 1;
            out.bytes += (out.buf.len() - start) as u64;
            if !out.listed {
                out.listed = true;
                self.unflushed.push((idx, to_events));
            }
            out.buf_lines += 1;
            lines += 1;
            let over_limit = (state.sink.max_lines > 0 && out.lines >= state.sink.max_lines)
                || (state.sink.max_bytes > 0 && out.bytes >= state.sink.max_bytes);
            let full = out.buf.len() >= FLUSH_BYTES;
            if over_limit && !to_events {
                self.close_stream(idx, false).await;
            } else if full {
                self.flush_output(idx, to_events).await;
            }
        }
        let state = &self.streams[idx];
        state.sink.stats.lines_written.fetch_add(lines, Relaxed);
        if let (Some(n), Some(c)) = (&self.nats, copy) {
            n.finish(c);
        }
        self.rx.release_batch(batch);
    }

    /// The queue is empty: the files whose buffer was last handed on at least
    /// [`IDLE_HANDOFF_GAP`] ago go to the disk worker now, so that a killed process loses only
    /// what it received in the last moments; the others wait for the next idle moment or for
    /// `timer`, set to when the first of them is due. Returns whether `timer` is set. While a
    /// burst keeps the queue busy, buffers fill up to [`FLUSH_BYTES`] instead.
    async fn hand_off_idle(&mut self, timer: std::pin::Pin<&mut tokio::time::Sleep>) -> bool {
        let now = self.clock.now_ns();
        let gap = IDLE_HANDOFF_GAP.as_nanos() as u64;
        let mut list = std::mem::take(&mut self.unflushed);
        let mut next_due: Option<u64> = None;
        let mut kept = 0;
        // Handed on together: one wake-up of the disk worker for every quiet file due.
        let mut ops = std::mem::take(&mut self.handoff_ops);
        for i in 0..list.len() {
            let (idx, events) = list[i];
            let Some(out) = self.streams[idx].output(events) else {
                continue;
            };
            if !out.listed {
                // Listed again under a later entry (the file was closed and reopened).
                continue;
            }
            if out.buf_lines == 0 {
                out.listed = false;
                continue;
            }
            let due = out.handed_at.saturating_add(gap);
            if due <= now {
                out.listed = false;
                ops.extend(self.take_output(idx, events));
            } else {
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
                list[kept] = (idx, events);
                kept += 1;
            }
        }
        list.truncate(kept);
        self.disk.submit_all(&mut ops).await;
        self.handoff_ops = ops;
        // Flushing queues nothing new, so the list is still empty; keep the allocation.
        list.append(&mut self.unflushed);
        self.unflushed = list;
        match next_due {
            Some(due) => {
                timer.reset(Instant::now() + Duration::from_nanos(due - now));
                true
            }
            None => false,
        }
    }

    /// The queue is empty: the lines taken since the last idle moment go to the journal, or
    /// without one to the disk worker ([`Self::hand_off_idle`], whose timer may be set:
    /// returns whether it was).
    async fn on_idle(&mut self, timer: std::pin::Pin<&mut tokio::time::Sleep>) -> bool {
        if self.unflushed.is_empty() {
            return false;
        }
        // Every line of the full half was handed on when it filled: the other half can be
        // started as soon as the disk worker has written what it held.
        if self.journal_stuck && self.start_journal_half().await {
            self.journal_stuck = false;
        }
        if self.journal.is_some() && !self.journal_stuck {
            self.journal_idle().await;
        }
        // Without a journal every listed file, with one the busy files it left listed.
        if self.unflushed.is_empty() {
            return false;
        }
        self.hand_off_idle(timer).await
    }

    /// The queue is empty: each listed file's lines since it last went to the journal go to
    /// it now (a copy, no system call), so a killed process loses none of them; the files get
    /// them with the next flush tick, or sooner when a buffer or the journal is full. A
    /// stream with `fsync = "always"` hands its lines on at once instead, and a busy file
    /// ([`BUSY_RATE`]) stays listed for [`Self::hand_off_idle`]. When the journal's
    /// half is full, every buffer is handed on and the other half started, if the disk worker
    /// is done with it; if not, idle moments hand lines on as without a journal until it is.
    async fn journal_idle(&mut self) {
        let mut list = std::mem::take(&mut self.unflushed);
        let mut busy = 0;
        let now = self.clock.now_ns();
        for i in 0..list.len() {
            let (idx, events) = list[i];
            let state = &mut self.streams[idx];
            let always = matches!(state.sink.sync, SyncPolicy::Always);
            let Some(out) = state.output(events) else {
                continue;
            };
            if !out.listed {
                continue;
            }
            let since = now.saturating_sub(out.handed_at).max(1);
            let held = out.buf.len() as u64;
            if held >= 16 << 10 && held * 1_000_000_000 / since >= BUSY_RATE {
                list[busy] = (idx, events);
                busy += 1;
                continue;
            }
            out.listed = false;
            if out.buf.len() == out.journaled {
                continue;
            }
            if always {
                self.flush_output(idx, events).await;
                continue;
            }
            let Some(journal) = self.journal.as_mut() else {
                break;
            };
            let offset = out.bytes - (out.buf.len() - out.journaled) as u64;
            if journal.append(&out.journal_name, offset, &out.buf[out.journaled..]) {
                let kept = out.buf.len() - out.journaled;
                self.stats.journal_bytes.fetch_add(kept as u64, Relaxed);
                out.journaled = out.buf.len();
                continue;
            }
            // The half is full. This file's lines, and the rest of the list's, go with all
            // the others.
            for idx in 0..self.streams.len() {
                self.flush_output(idx, false).await;
                self.flush_output(idx, true).await;
            }
            if !self.start_journal_half().await {
                self.journal_stuck = true;
                WriterEvent::JournalBehind.emit(&self.stats);
            }
            // Every buffer went: no file is left to list, busy or not.
            for &(idx, events) in &list {
                if let Some(out) = self.streams[idx].output(events) {
                    out.listed = false;
                }
            }
            busy = 0;
            break;
        }
        // The busy files stay listed; journaling queues nothing new, so the writer's list is
        // still empty (keep the allocation).
        list.truncate(busy);
        list.append(&mut self.unflushed);
        self.unflushed = list;
    }

    /// After a flush tick handed every buffer on: the journal starts its other half, so the
    /// one it leaves can be used again once the disk worker has written it.
    async fn switch_journal(&mut self) {
        let Some(journal) = &self.journal else {
            return;
        };
        if (!journal.is_empty() || self.journal_stuck) && self.start_journal_half().await {
            self.journal_stuck = false;
        }
    }

    /// Starts the journal's other half (every buffer handed on just before); false when the
    /// disk worker has not yet written what that half held.
    async fn start_journal_half(&mut self) -> bool {
        let Some(journal) = self.journal.as_mut() else {
            return false;
        };
        let Some(generation) = journal.switch() else {
            return false;
        };
        let released = journal.released();
        self.send(DiskOp::Released {
            generation,
            released,
        })
        .await;
        WriterEvent::JournalHalf.emit(&self.stats);
        true
    }

    async fn flush_all(&mut self) {
        // Every buffer is handed on below: forget which took lines.
        for (idx, events) in std::mem::take(&mut self.unflushed) {
            if let Some(out) = self.streams[idx].output(events) {
                out.listed = false;
            }
        }
        for idx in 0..self.streams.len() {
            self.note_io_loss(idx);
            // A loss is marked at once, not with the stream's next message: a quiet stream may
            // send none for a long time, and a marker lost again comes back here merged.
            if !self.streams[idx].io_pending.is_empty() || self.nats_gap_due(idx) {
                self.write_batch(Batch::new(idx, 0)).await;
            }
            self.flush_output(idx, false).await;
            self.flush_output(idx, true).await;
            if matches!(self.streams[idx].sink.sync, SyncPolicy::Interval(_)) {
                let state = &self.streams[idx];
                let ids: Vec<u64> = [&state.data, &state.events]
                    .into_iter()
                    .flatten()
                    .map(|o| o.id)
                    .collect();
                for id in ids {
                    self.send(DiskOp::SyncDue { id }).await;
                }
            }
        }
    }
}

/// Appends a text payload's member: `,"msg":` and the bytes verbatim when they are one line of
/// valid JSON, else `,"text":` and a JSON string.
#[inline]
fn push_text(buf: &mut Vec<u8>, bytes: &[u8]) {
    if crate::json::is_single_line_json(bytes) {
        buf.extend_from_slice(b",\"msg\":");
        buf.extend_from_slice(bytes);
    } else {
        buf.extend_from_slice(b",\"text\":");
        crate::json::write_json_string(bytes, buf);
    }
}

/// Appends a binary payload's member: `,"bin":` and the bytes in base64.
#[inline]
fn push_base64(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(b",\"bin\":\"");
    let at = buf.len();
    buf.resize(at + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut buf[at..])
        .unwrap_or(0);
    buf.truncate(at + written);
    buf.push(b'"');
}
