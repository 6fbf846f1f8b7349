//! The disk worker: every blocking file operation of the recorder happens here.
//!
//! The writer task encodes lines into buffers and submits [`DiskOp`]s to a queue bounded in
//! bytes (`disk_buffer`, 64 MiB by default); a worker on tokio's blocking pool opens, appends,
//! syncs, closes and renames, in order. A slow or failing disk therefore stalls only that
//! worker: the writer goes on handing it buffers, and the connections go on reading (and
//! taking receive times that stay true), until the queue holds `disk_buffer` bytes. Only then
//! does the writer wait, its message queue fill and `when_full` apply. No `fsync` ever runs on
//! the writer's side: syncs and closes are operations in the queue like the writes, and
//! [`Disk::submit`] waits only for room in it. The memory a stall takes is given back after it:
//! buffers beyond a small pool are freed once written, and the queue shrinks when it empties.
//! [`Stats`] shows the queue's fill level and peak and the longest time one operation took
//! (the one under way included).
//!
//! Failures never panic and never go unnoticed: a failed open or write is logged once per file
//! with its path, the lines it held are counted as lost, and a partly written buffer is cut
//! back to the last complete line so no file is left with a torn line.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::hash::Hasher as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::compress::CompressQueue;
use crate::fsutil::OPEN_SUFFIX;
use crate::fsutil::{FLUSH_BYTES, reserve};
use crate::manifest::FileKind;
use crate::manifest::Manifest;
use crate::stats::{Stats, StreamStats, UnmarkedLoss};

/// When data written to a file is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Only at close.
    Never,
    /// When the data written since the last sync is older than this.
    Interval(std::time::Duration),
    /// After every write.
    Always,
}

/// Which closed files of a stream retention may delete, and when.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Directory to search (recursively).
    pub root: PathBuf,
    /// Only paths (relative to the output directory) starting with this belong to the stream.
    pub prefix: String,
    /// The output directory.
    pub output_dir: PathBuf,
    /// Delete files older than this.
    pub max_age: Option<std::time::Duration>,
    /// Delete the oldest files while the total is above this (0: no limit).
    pub max_total_bytes: u64,
}

/// An operation for the disk worker.
#[derive(Debug)]
pub enum DiskOp {
    /// Create `path` (and its directory); later ops name it by `id`.
    Open {
        /// Handle chosen by the writer.
        id: u64,
        /// The `.open` path.
        path: PathBuf,
        /// The stream's counters, for loss accounting.
        stream: Arc<StreamStats>,
        /// When to sync.
        sync: SyncPolicy,
        /// What its lines are.
        kind: FileKind,
    },
    /// Append whole lines.
    Write {
        /// File handle.
        id: u64,
        /// Complete lines.
        buf: Vec<u8>,
        /// How many lines `buf` holds.
        lines: u64,
    },
    /// Sync the file if it has unsynced data older than its interval.
    SyncDue {
        /// File handle.
        id: u64,
    },
    /// Sync, write the manifest, rename the file to its final name, queue it for compression,
    /// then apply retention.
    Close {
        /// File handle.
        id: u64,
        /// The final name.
        final_path: PathBuf,
        /// The manifest (checksum and byte count are filled in here).
        manifest: Option<Box<Manifest>>,
        /// Retention to apply after the close.
        retention: Option<Arc<Retention>>,
    },
}

impl DiskOp {
    /// What the operation counts against the queue's bound: the bytes of data it carries, plus
    /// [`OP_BYTES`] for the operation itself.
    fn bytes(&self) -> usize {
        OP_BYTES
            + match self {
                Self::Write { buf, .. } => buf.len(),
                _ => 0,
            }
    }
}

struct OpenFile {
    path: PathBuf,
    /// `None` after a failure: further writes are counted as lost.
    file: Option<File>,
    /// Bytes known to be fully written.
    len: u64,
    stream: Arc<StreamStats>,
    sync: SyncPolicy,
    /// When the oldest unsynced write happened; `None` when all is synced.
    dirty_since: Option<std::time::Instant>,
    /// XXH3-64 of what was written, for the manifest.
    hash: twox_hash::XxHash3_64,
    /// The last write failed (logged once until a write works again).
    failing: bool,
    /// Lines written since the last successful sync: lost if the sync fails (EIO).
    unsynced_lines: u64,
    /// Where the disk space reserved ahead of the writes ends (0: none reserved).
    reserved: u64,
    /// Reserving failed once (no fallocate here, or no room): the file goes on without.
    no_reserve: bool,
    /// What its lines are.
    kind: FileKind,
    /// Complete lines in the file.
    lines: u64,
    /// Lines that did not reach the file (write errors): the writer's manifest counted them,
    /// so the manifest is rebuilt from the file at close.
    lost_lines: u64,
}

/// A busy file gets its disk space reserved this far ahead of its writes (16 full buffers).
///
/// ext4 otherwise reserves and accounts every 4 KiB block inside `write(2)`
/// (delayed allocation); with the space already allocated (`fallocate` with `KEEP_SIZE`, so
/// the file's length and what readers see do not change), a write only copies into the page
/// cache. Measured on ext4 with 256 KiB writes: 64 -> 49 ns of system time per 300-byte
/// line. The unused rest is given back when the file is closed (or recovered after a crash).
const RESERVE_STEP: u64 = 16 * FLUSH_BYTES as u64;
/// Only a write at least this large reserves ahead: a full buffer or nearly, so a busy
/// stream. A quiet stream (buffers flushed by the timer) never holds reserved space, which
/// keeps the disk space held by a thousand idle files at zero.
const RESERVE_FROM: usize = 64 << 10;

/// What each queued operation counts against the queue's bound besides its data: about what
/// it holds in memory (the operation, a path or a manifest), so that operations without data,
/// or a thousand quiet streams' small writes, are bounded too.
const OP_BYTES: usize = 256;
/// Room for operations the queue keeps when it empties: more, taken during a stall, is given
/// back.
const QUEUE_KEEP: usize = 64;
/// Emptied buffers kept for reuse: at flood rate one is being filled, one waits and one is
/// written, and the writer must find a returned one whenever it hands one over, or it maps
/// and faults in a fresh one (with one pooled buffer: 5,000 page faults per million
/// 200-byte messages instead of 270).
const POOL: usize = 2;

/// Handle to the disk worker.
///
/// Operations queue up in order; whenever there are some and no worker is running, one is
/// started on tokio's blocking pool and drains the queue. Using the blocking pool (rather than
/// a thread of our own) also tells tokio's paused test clock that work is in progress, so
/// tests with paused time do not jump ahead while a file is being synced.
#[derive(Clone)]
pub struct Disk {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever the worker takes an operation or goes idle.
    progress: Notify,
    stats: Arc<Stats>,
    /// Where closed files go for compression.
    compress: Option<CompressQueue>,
    /// Where closed files go for upload when they are not compressed.
    upload: Option<crate::upload::UploadQueue>,
}

struct State {
    ops: VecDeque<DiskOp>,
    /// What the operations in `ops` count against the bound ([`DiskOp::bytes`]).
    queued_bytes: usize,
    /// Most bytes that may wait (`disk_buffer`).
    bound: usize,
    running: bool,
    /// Open files; taken by the worker while it runs.
    files: Option<HashMap<u64, OpenFile>>,
    pool: Vec<Vec<u8>>,
}

impl State {
    /// Whether an operation counting `bytes` may join the queue now. Any operation may join an
    /// empty queue (so a buffer larger than the bound still goes, alone). While the disk keeps
    /// up, the queue holds one full buffer's worth ([`SMOOTH_BYTES`]): the writer then waits
    /// for the worker and reuses its buffers, as at flood rate. Only while the worker is
    /// `stalled` (on one operation for [`STALL_AFTER`] or longer) does it take up to the bound.
    fn has_room(&self, bytes: usize, stalled: bool) -> bool {
        self.ops.is_empty()
            || self.queued_bytes + bytes <= SMOOTH_BYTES
            || (stalled && self.queued_bytes + bytes <= self.bound)
    }
}

/// What may wait for a disk that keeps up: one full writer buffer besides the one being
/// written. Letting the writer run further ahead at flood rate, when the disk thread is only
/// briefly behind (descheduled on a busy machine), took 3-5 MiB more peak RSS in fresh
/// buffers (bench small-envelope 10.7 -> 15.7 MiB) for no gain.
const SMOOTH_BYTES: usize = FLUSH_BYTES + 4 * OP_BYTES;
/// An operation that has taken this long means the disk stalls: from then on the queue takes
/// up to its bound, so the network side goes on reading. Shorter waits are absorbed by the
/// message queue in front of the writer (16,384 messages: 160 ms at 100,000 msg/s).
const STALL_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

impl Disk {
    /// A disk worker (started on demand) that hands closed files to `compress`, with a queue
    /// of the default bound ([`DEFAULT_DISK_BUFFER`](crate::config::DEFAULT_DISK_BUFFER)).
    pub fn new(stats: Arc<Stats>, compress: Option<CompressQueue>) -> Self {
        let bound = crate::config::DEFAULT_DISK_BUFFER as usize;
        stats.disk_buffer_capacity.store(bound as u64, Relaxed);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ops: VecDeque::new(),
                    queued_bytes: 0,
                    bound,
                    running: false,
                    files: Some(HashMap::new()),
                    pool: Vec::new(),
                }),
                progress: Notify::new(),
                stats,
                compress,
                upload: None,
            }),
        }
    }

    /// Hands closed files to `upload` when there is no compressor (which hands them on itself).
    /// Call before the first clone.
    pub fn with_upload(mut self, upload: Option<crate::upload::UploadQueue>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.upload = upload;
        }
        self
    }

    /// Lets at most `bytes` wait for the disk (`disk_buffer`; see [`DiskOp::bytes`]).
    pub fn with_buffer(self, bytes: u64) -> Self {
        let bound = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.lock().bound = bound;
        self.shared.stats.disk_buffer_capacity.store(bytes, Relaxed);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The worker never panics while holding the lock (it only moves values in and out).
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an operation, waiting only while the queue has no room for it (the bound,
    /// `disk_buffer`, is reached; an operation always goes into an empty queue). It never waits
    /// for an operation to be carried out, so never for an `fsync`.
    pub async fn submit(&self, op: DiskOp) {
        let bytes = op.bytes();
        let mut op = Some(op);
        loop {
            let progressed = self.shared.progress.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            {
                let mut st = self.lock();
                if st.has_room(bytes, self.stalled_for() >= STALL_AFTER) {
                    // `op` is Some until pushed, and we return right after pushing.
                    st.ops.extend(op.take());
                    st.queued_bytes += bytes;
                    let stats = &self.shared.stats;
                    stats
                        .disk_buffer_bytes
                        .store(st.queued_bytes as u64, Relaxed);
                    stats
                        .disk_buffer_peak
                        .fetch_max(st.queued_bytes as u64, Relaxed);
                    if !st.running {
                        st.running = true;
                        let shared = self.shared.clone();
                        tokio::task::spawn_blocking(move || work(&shared));
                    }
                    return;
                }
            }
            // Wake up when the worker moves on, or when its operation turns into a stall.
            let until_stall = STALL_AFTER
                .saturating_sub(self.stalled_for())
                .max(std::time::Duration::from_millis(1));
            tokio::select! {
                () = progressed => {}
                () = tokio::time::sleep(until_stall) => {}
            }
        }
    }

    /// How long the worker has been on its current operation (zero when it is on none).
    fn stalled_for(&self) -> std::time::Duration {
        self.shared.stats.disk_op_running_for()
    }

    /// A cleared buffer from the pool, if one is there.
    pub fn take_buffer(&self) -> Option<Vec<u8>> {
        self.lock().pool.pop()
    }

    /// Waits until every queued operation is done.
    pub async fn finish(&self) {
        loop {
            let progressed = self.shared.progress.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            {
                let st = self.lock();
                if st.ops.is_empty() && !st.running {
                    return;
                }
            }
            progressed.await;
        }
    }
}

/// Drains the queue on a blocking-pool thread.
fn work(shared: &Shared) {
    let lock = || shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let stats = &*shared.stats;
    let mut files = lock().files.take().unwrap_or_default();
    loop {
        let op = {
            let mut st = lock();
            match st.ops.pop_front() {
                Some(op) => {
                    st.queued_bytes -= op.bytes();
                    stats
                        .disk_buffer_bytes
                        .store(st.queued_bytes as u64, Relaxed);
                    op
                }
                None => {
                    st.running = false;
                    st.files = Some(files);
                    // Give back the room a stall took.
                    st.ops.shrink_to(QUEUE_KEEP);
                    drop(st);
                    shared.progress.notify_waiters();
                    return;
                }
            }
        };
        shared.progress.notify_waiters();
        let started = std::time::Instant::now();
        stats.disk_op(true);
        stats.disk_pause.wait();
        let done = apply(op, &mut files, shared);
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        stats.disk_stall_max_ns.fetch_max(took, Relaxed);
        stats.disk_op(false);
        if let Some(buf) = done {
            let mut st = lock();
            if st.pool.len() < POOL {
                st.pool.push(buf);
            }
        }
    }
}

/// Carries out one operation; returns an emptied buffer for reuse.
fn apply(op: DiskOp, files: &mut HashMap<u64, OpenFile>, shared: &Shared) -> Option<Vec<u8>> {
    let stats = &*shared.stats;
    match op {
        DiskOp::Open {
            id,
            path,
            stream,
            sync,
            kind,
        } => {
            let file = match open_new(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    stats.write_errors.fetch_add(1, Relaxed);
                    stream.set_last_error(&format!("cannot create {}: {e}", path.display()));
                    tracing::error!(path = %path.display(), error = %e, "Cannot create output file; its lines will be counted as lost.");
                    None
                }
            };
            files.insert(
                id,
                OpenFile {
                    path,
                    file,
                    len: 0,
                    stream,
                    sync,
                    dirty_since: None,
                    hash: twox_hash::XxHash3_64::new(),
                    failing: false,
                    unsynced_lines: 0,
                    reserved: 0,
                    no_reserve: false,
                    kind,
                    lines: 0,
                    lost_lines: 0,
                },
            );
            None
        }
        DiskOp::Write { id, mut buf, lines } => {
            if let Some(f) = files.get_mut(&id) {
                write(f, &buf, lines, stats);
                sync_if_due(f, stats);
            }
            buf.clear();
            Some(buf)
        }
        DiskOp::SyncDue { id } => {
            if let Some(f) = files.get_mut(&id) {
                sync_if_due(f, stats);
            }
            None
        }
        DiskOp::Close {
            id,
            final_path,
            manifest,
            retention,
        } => {
            if let Some(f) = files.remove(&id)
                && close(f, &final_path, manifest, stats)
            {
                if let Some(q) = &shared.compress {
                    q.push(final_path);
                } else if let Some(u) = &shared.upload {
                    u.push(final_path);
                }
            }
            if let Some(r) = retention {
                apply_retention(&r);
            }
            None
        }
    }
}

fn open_new(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().append(true).create_new(true).open(path)
}

fn write(f: &mut OpenFile, buf: &[u8], lines: u64, stats: &Stats) {
    let Some(file) = &mut f.file else {
        lose(f, buf);
        return;
    };
    if buf.len() >= RESERVE_FROM && f.len + buf.len() as u64 > f.reserved && !f.no_reserve {
        match reserve(file, f.len, RESERVE_STEP) {
            Ok(()) => f.reserved = f.len + RESERVE_STEP,
            Err(e) => {
                f.no_reserve = true;
                tracing::debug!(path = %f.path.display(), error = %e, "Cannot reserve disk space ahead; writing without.");
            }
        }
    }
    let (written, error) = write_some(file, buf);
    let Some(e) = error else {
        wrote(f, buf, lines);
        if f.failing {
            f.failing = false;
            tracing::info!(path = %f.path.display(), "Writing works again.");
        }
        return;
    };
    // Keep the complete lines that fit (a nearly full disk takes part of a buffer) and cut a
    // partial line back, so the file ends on a line; the rest is lost, counted and marked.
    // Cutting also frees any space reserved ahead. The next buffer tries again.
    let keep = memchr::memrchr(b'\n', &buf[..written]).map_or(0, |i| i + 1);
    let kept = &buf[..keep];
    if let Err(cut) = file.set_len(f.len + keep as u64) {
        tracing::error!(path = %f.path.display(), error = %cut, "Cannot cut a failed write back to its last complete line.");
    }
    f.reserved = 0;
    if !kept.is_empty() {
        wrote(f, kept, memchr::memchr_iter(b'\n', kept).count() as u64);
    }
    stats.write_errors.fetch_add(1, Relaxed);
    let lost = lose(f, &buf[keep..]);
    if !f.failing {
        f.failing = true;
        f.stream
            .set_last_error(&format!("write to {} failed: {e}", f.path.display()));
        tracing::error!(path = %f.path.display(), error = %e, lines = lost, kept_lines = lines - lost, "Write failed; what fit is kept, the file is cut back to its last complete line, the lost lines are counted and marked in the data once writing works again.");
    }
}

/// Writes as much of `buf` as the file takes: the bytes written, and the error that stopped it.
fn write_some(file: &mut File, buf: &[u8]) -> (usize, Option<std::io::Error>) {
    let mut done = 0;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => return (done, Some(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// Accounts complete lines that reached the file.
fn wrote(f: &mut OpenFile, bytes: &[u8], lines: u64) {
    f.len += bytes.len() as u64;
    f.hash.write(bytes);
    f.dirty_since.get_or_insert_with(std::time::Instant::now);
    f.unsynced_lines += lines;
    f.lines += lines;
}

/// Counts complete lines that did not reach the file, and hands what they stood for to the
/// writer's next marker. Returns how many lines they were.
fn lose(f: &mut OpenFile, lost: &[u8]) -> u64 {
    let loss = lost_lines(f.kind, lost);
    let lines = memchr::memchr_iter(b'\n', lost).count() as u64;
    f.lost_lines += lines;
    f.stream.lines_lost.fetch_add(lines, Relaxed);
    f.stream.io_lost.fetch_add(lines, Relaxed);
    f.stream.add_unmarked(&loss);
    lines
}

/// What complete lines of a file of `kind` stood for: messages, events, and the losses that
/// lost markers reported (taken over, so a lost marker is never a loss of its own).
fn lost_lines(kind: FileKind, lost: &[u8]) -> UnmarkedLoss {
    use crate::read::{Entry, EventDetail};
    let mut loss = UnmarkedLoss::default();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', lost) {
        let line = &lost[start..end];
        start = end + 1;
        if kind == FileKind::Raw {
            loss.messages += 1;
            continue;
        }
        match Entry::parse(line) {
            Ok(Entry::Message(m)) => {
                loss.messages += 1;
                loss.saw(m.ts);
            }
            Ok(Entry::Event(e)) => {
                loss.saw(e.ts);
                let d = EventDetail::parse(line);
                match &*e.name {
                    "write_error_gap" | "disk_full_gap" => {
                        loss.merge(&UnmarkedLoss {
                            messages: d.lost.unwrap_or(0),
                            events: d.lost_events.unwrap_or(0),
                            dropped: d.dropped.unwrap_or(0),
                            from_ts: d.from_ts.unwrap_or(0),
                            to_ts: d.to_ts.unwrap_or(0),
                        });
                    }
                    "dropped" => loss.dropped += d.count.unwrap_or(0),
                    _ => loss.events += 1,
                }
            }
            // The writer only writes records it can read back; count anything else as a message.
            Err(_) => loss.messages += 1,
        }
    }
    loss
}

fn sync_if_due(f: &mut OpenFile, stats: &Stats) {
    let (Some(file), Some(since)) = (&f.file, f.dirty_since) else {
        return;
    };
    let due = match f.sync {
        SyncPolicy::Never => false,
        SyncPolicy::Always => true,
        SyncPolicy::Interval(every) => since.elapsed() >= every,
    };
    if !due {
        return;
    }
    match file.sync_data() {
        Ok(()) => {
            f.dirty_since = None;
            f.unsynced_lines = 0;
        }
        Err(e) => sync_failed(f, &e, stats),
    }
}

/// A failed fsync (EIO) means the data since the last good sync may never reach the disk:
/// count those lines as lost, so the loss is reported and marked rather than silent.
fn sync_failed(f: &mut OpenFile, e: &std::io::Error, stats: &Stats) {
    stats.write_errors.fetch_add(1, Relaxed);
    let lines = std::mem::take(&mut f.unsynced_lines);
    f.dirty_since = None;
    f.stream.lines_lost.fetch_add(lines, Relaxed);
    f.stream.io_lost.fetch_add(lines, Relaxed);
    // Which of them were events is not known any more: the buffers are gone.
    f.stream.add_unmarked(&UnmarkedLoss {
        messages: lines,
        ..UnmarkedLoss::default()
    });
    if !f.failing {
        f.failing = true;
        f.stream
            .set_last_error(&format!("fsync of {} failed: {e}", f.path.display()));
        tracing::error!(path = %f.path.display(), error = %e, lines, "fsync failed: the lines written since the last good sync are counted as lost.");
    }
}

/// Syncs and renames a file; true if it is now closed under its final name.
fn close(
    mut f: OpenFile,
    final_path: &Path,
    manifest: Option<Box<Manifest>>,
    stats: &Stats,
) -> bool {
    let Some(file) = f.file.take() else {
        // Keep what was written before the failure under its final name.
        if f.path.exists() {
            let _ = std::fs::rename(&f.path, final_path);
        }
        return false;
    };
    if f.reserved > f.len
        && let Err(e) = file.set_len(f.len)
    {
        // Only space is at stake: the length does not change.
        tracing::warn!(path = %f.path.display(), error = %e, "Cannot give back the disk space reserved ahead of the writes.");
    }
    if let Err(e) = file.sync_all() {
        sync_failed(&mut f, &e, stats);
    }
    let digest = f.hash.finish();
    let result = crate::fsutil::sync_parent(&f.path)
        .and_then(|()| match manifest {
            Some(mut m) => {
                if f.lost_lines > 0 {
                    read_back(&f, &mut m);
                }
                m.lines = f.lines;
                m.bytes = f.len;
                m.xxh3_64 = format!("{digest:016x}");
                crate::manifest::write(&crate::manifest::path_for(final_path), &m)
            }
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&f.path, final_path))
        .and_then(|()| crate::fsutil::sync_parent(final_path));
    match result {
        Ok(()) => {
            stats.files_closed.fetch_add(1, Relaxed);
            tracing::debug!(path = %final_path.display(), bytes = f.len, "File closed.");
            true
        }
        Err(e) => {
            stats.write_errors.fetch_add(1, Relaxed);
            tracing::error!(path = %f.path.display(), final_path = %final_path.display(), error = %e, "Cannot close output file; it keeps its .open name.");
            false
        }
    }
}

/// Rebuilds what the writer's manifest said about lines from the lines in the file, after
/// some did not reach it. Envelope records say everything the manifest needs; a raw data file
/// keeps the writer's per-connection spans (its lines carry no `seq`), with the lines it lost
/// stated beside them.
fn read_back(f: &OpenFile, m: &mut Manifest) {
    m.lost_lines = f.lost_lines;
    if f.kind == FileKind::Raw {
        return;
    }
    let file = match File::open(&f.path) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(path = %f.path.display(), error = %e, "Cannot read a file back to count what reached it; its manifest keeps what was received.");
            return;
        }
    };
    let mut builder = crate::manifest::ManifestBuilder::new(
        Path::new(&m.file),
        &m.stream,
        &m.format,
        m.interval_start_ns,
    );
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                // A line that is no record still counts, as an event of no name.
                if builder
                    .line(line.strip_suffix(b"\n").unwrap_or(&line))
                    .is_none()
                {
                    builder.count_event(false);
                }
            }
            Err(e) => {
                tracing::warn!(path = %f.path.display(), error = %e, "Cannot read a file back to count what reached it; its manifest keeps what was received.");
                return;
            }
        }
    }
    let lost_lines = m.lost_lines;
    *m = builder.manifest;
    m.lost_lines = lost_lines;
}

/// Deletes a stream's oldest closed files past `max_age` or `max_total_bytes`; never an open
/// file or a temporary. A data file's manifest goes with it.
pub fn apply_retention(r: &Retention) {
    let mut files = Vec::new();
    crate::fsutil::files_under(&r.root, &mut files, |_| true);
    let now = std::time::SystemTime::now();
    let mut candidates: Vec<(std::time::SystemTime, u64, PathBuf)> = files
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            !(name.ends_with(OPEN_SUFFIX)
                || name.ends_with(".tmp")
                || name.ends_with(crate::fsutil::MANIFEST_SUFFIX)
                || name.ends_with(crate::fsutil::MARKER_SUFFIX))
                && p.strip_prefix(&r.output_dir)
                    .is_ok_and(|rel| rel.to_string_lossy().starts_with(&r.prefix))
        })
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((meta.modified().ok()?, meta.len(), p))
        })
        .collect();
    candidates.sort();
    let mut total: u64 = candidates.iter().map(|c| c.1).sum();
    for (modified, len, path) in candidates {
        let too_old = r
            .max_age
            .is_some_and(|age| now.duration_since(modified).is_ok_and(|d| d > age));
        let too_big = r.max_total_bytes > 0 && total > r.max_total_bytes;
        if !(too_old || too_big) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total -= len;
                let _ = std::fs::remove_file(crate::manifest::path_for_sealed(&path));
                tracing::info!(path = %path.display(), bytes = len, reason = if too_old { "max_age" } else { "max_total_bytes" }, "Retention deleted a file.");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Retention could not delete a file.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    /// Bytes the file system has allocated to `path`.
    fn allocated(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    /// Whether the file system under `dir` can reserve space (tmpfs, ext4, XFS and btrfs can).
    fn can_reserve(dir: &Path) -> bool {
        let probe = File::create(dir.join("probe")).unwrap();
        reserve(&probe, 0, 4096).is_ok()
    }

    #[tokio::test]
    async fn a_busy_file_reserves_space_ahead_and_gives_the_rest_back_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("s/a.jsonl.open");
        let done = dir.path().join("s/a.jsonl");
        let stream = Arc::new(StreamStats::new("s", "ws://x"));
        let stats = Arc::new(Stats::new(vec![stream.clone()], 16));
        let disk = Disk::new(stats.clone(), None);
        disk.submit(DiskOp::Open {
            id: 1,
            path: open.clone(),
            stream: stream.clone(),
            sync: SyncPolicy::Never,
            kind: FileKind::Envelope,
        })
        .await;
        let line = b"{\"n\":1}\n";
        let buf: Vec<u8> = line.repeat(RESERVE_FROM / line.len() + 1);
        let lines = (buf.len() / line.len()) as u64;
        for _ in 0..3 {
            disk.submit(DiskOp::Write {
                id: 1,
                buf: buf.clone(),
                lines,
            })
            .await;
        }
        disk.finish().await;
        let written = 3 * buf.len() as u64;
        assert_eq!(std::fs::metadata(&open).unwrap().len(), written);
        if can_reserve(dir.path()) {
            assert!(
                allocated(&open) >= RESERVE_STEP,
                "{} bytes allocated after {written} written",
                allocated(&open)
            );
        } else {
            eprintln!("this file system cannot reserve space; only the close is checked");
        }
        disk.submit(DiskOp::Close {
            id: 1,
            final_path: done.clone(),
            manifest: None,
            retention: None,
        })
        .await;
        disk.finish().await;
        let data = std::fs::read(&done).unwrap();
        assert_eq!(data.len() as u64, written);
        assert!(data.chunks(line.len()).all(|l| l == line));
        // What is left allocated is the data, rounded up to whole blocks.
        assert!(
            allocated(&done) < written + (1 << 20),
            "{} bytes still allocated for {written} bytes of data",
            allocated(&done)
        );
        assert_eq!(stream.lines_lost.load(Relaxed), 0);
    }

    #[test]
    fn the_queue_holds_its_bound_in_bytes_counting_every_operation() {
        let mut st = State {
            ops: VecDeque::new(),
            queued_bytes: 0,
            bound: 4 * FLUSH_BYTES,
            running: true,
            files: None,
            pool: Vec::new(),
        };
        let write = |n: usize| DiskOp::Write {
            id: 1,
            buf: vec![b'\n'; n],
            lines: n as u64,
        };
        let push = |st: &mut State, op: DiskOp| {
            st.queued_bytes += op.bytes();
            st.ops.push_back(op);
        };
        // Anything goes into an empty queue, even a buffer larger than the bound.
        assert!(st.has_room(write(5 * FLUSH_BYTES).bytes(), true));
        push(&mut st, write(5 * FLUSH_BYTES));
        assert!(!st.has_room(DiskOp::SyncDue { id: 1 }.bytes(), true));
        st.ops.clear();
        st.queued_bytes = 0;
        // A disk that keeps up: one full buffer waits, not two.
        push(&mut st, write(FLUSH_BYTES));
        assert!(!st.has_room(write(FLUSH_BYTES).bytes(), false));
        assert!(st.has_room(write(FLUSH_BYTES).bytes(), true));
        st.ops.clear();
        st.queued_bytes = 0;
        // A stalled disk: full buffers up to the bound, less what each operation counts
        // besides its data.
        for _ in 0..3 {
            assert!(st.has_room(write(FLUSH_BYTES).bytes(), true));
            push(&mut st, write(FLUSH_BYTES));
        }
        assert!(
            !st.has_room(write(FLUSH_BYTES).bytes(), true),
            "the fourth does not fit"
        );
        assert!(st.has_room(write(FLUSH_BYTES - 4 * OP_BYTES).bytes(), true));
        // Operations without data count too: a flood of them is bounded.
        st.ops.clear();
        st.queued_bytes = 0;
        let fit = st.bound / OP_BYTES;
        for _ in 0..fit {
            assert!(st.has_room(OP_BYTES, true));
            push(&mut st, DiskOp::SyncDue { id: 1 });
        }
        assert!(!st.has_room(DiskOp::SyncDue { id: 1 }.bytes(), true));
    }

    #[tokio::test]
    async fn a_stalled_worker_never_makes_submit_wait_below_the_bound() {
        use futures::FutureExt as _;
        let dir = tempfile::tempdir().unwrap();
        let stream = Arc::new(StreamStats::new("s", "ws://x"));
        let stats = Arc::new(Stats::new(vec![stream.clone()], 16));
        let bound = (6 * FLUSH_BYTES + 16 * OP_BYTES) as u64;
        let disk = Disk::new(stats.clone(), None).with_buffer(bound);
        assert_eq!(stats.disk_buffer_capacity.load(Relaxed), bound);
        stats.disk_pause.hold();
        let open = |id: u64| DiskOp::Open {
            id,
            path: dir.path().join(format!("{id}.jsonl.open")),
            stream: stream.clone(),
            sync: SyncPolicy::Always,
            kind: FileKind::Raw,
        };
        disk.submit(open(1)).await;
        while !stats.disk_pause.waiting() {
            tokio::task::yield_now().await;
        }
        // Stuck for STALL_AFTER: a stall, so the queue takes up to its bound.
        std::thread::sleep(STALL_AFTER);
        // The worker is stuck on the open: writes, syncs and a close all go in at once.
        let line = b"0123456789abcde\n";
        let buf = line.repeat(FLUSH_BYTES / line.len());
        for _ in 0..6 {
            let op = DiskOp::Write {
                id: 1,
                buf: buf.clone(),
                lines: (FLUSH_BYTES / line.len()) as u64,
            };
            assert!(disk.submit(op).now_or_never().is_some(), "a write waited");
            let op = DiskOp::SyncDue { id: 1 };
            assert!(disk.submit(op).now_or_never().is_some(), "a sync waited");
        }
        disk.submit(open(2)).now_or_never().expect("an open waited");
        let close = DiskOp::Close {
            id: 2,
            final_path: dir.path().join("2.jsonl"),
            manifest: None,
            retention: None,
        };
        disk.submit(close).now_or_never().expect("a close waited");
        let queued = stats.disk_buffer_bytes.load(Relaxed);
        assert!(queued >= 6 * buf.len() as u64, "{queued}");
        assert_eq!(stats.disk_buffer_peak.load(Relaxed), queued);
        // Past the bound the writer waits, until the worker goes on.
        let more = DiskOp::Write {
            id: 1,
            buf: buf.clone(),
            lines: (FLUSH_BYTES / line.len()) as u64,
        };
        let waiting = disk.submit(more);
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        std::thread::sleep(std::time::Duration::from_millis(50));
        stats.disk_pause.release();
        waiting.await;
        disk.finish().await;
        assert_eq!(stats.disk_buffer_bytes.load(Relaxed), 0);
        assert!(
            stats.disk_stall_max_ns.load(Relaxed) >= 50_000_000,
            "the pause counts as the open's time"
        );
        assert_eq!(
            std::fs::metadata(dir.path().join("1.jsonl.open"))
                .unwrap()
                .len(),
            7 * buf.len() as u64
        );
        assert!(dir.path().join("2.jsonl").exists());
        assert_eq!(stream.lines_lost.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn a_quiet_file_reserves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("q.jsonl.open");
        let stream = Arc::new(StreamStats::new("q", "ws://x"));
        let disk = Disk::new(Arc::new(Stats::new(vec![stream.clone()], 16)), None);
        disk.submit(DiskOp::Open {
            id: 7,
            path: open.clone(),
            stream,
            sync: SyncPolicy::Never,
            kind: FileKind::Envelope,
        })
        .await;
        for _ in 0..100 {
            disk.submit(DiskOp::Write {
                id: 7,
                buf: b"{\"quiet\":true}\n".to_vec(),
                lines: 1,
            })
            .await;
        }
        disk.finish().await;
        assert_eq!(std::fs::metadata(&open).unwrap().len(), 1500);
        assert!(allocated(&open) < 1 << 20, "{}", allocated(&open));
    }
}
