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
//!
//! The parts: this file (operations, the bounded queue, the worker loop), `file` (what an
//! operation does to one file) and `retention` (deleting a stream's oldest closed files).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::fsutil::FLUSH_BYTES;
use crate::observe::stats::{Stats, StreamStats};
use crate::store::compress::CompressQueue;
use crate::store::manifest::FileKind;
use crate::store::manifest::Manifest;

mod event;
mod file;
mod open;
mod retention;
mod sync;

use file::apply;
use open::OpenFile;
pub use retention::{Retention, apply_retention};

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
        /// The recorder run ends with this file (a clean stop closes it after the run's
        /// closing records): its manifest ends the stream's chain.
        run_end: bool,
    },
    /// Every line of the journal's half of this generation has been queued before this
    /// operation: once it is done, they are written (or counted lost), and the writer's
    /// journal may use the half again ([`Journal::switch`](crate::store::journal::Journal::switch)).
    Released {
        /// The half's generation.
        generation: u64,
        /// The journal's record of it.
        released: Arc<std::sync::atomic::AtomicU64>,
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

/// What each queued operation counts against the queue's bound besides its data: about what
/// it holds in memory (the operation, a path or a manifest), so that operations without data,
/// or a thousand quiet streams' small writes, are bounded too.
const OP_BYTES: usize = 256;
/// Room for operations the queue keeps when it empties: more, taken during a stall, is given
/// back.
const QUEUE_KEEP: usize = 64;
/// Emptied buffers kept for reuse: at flood rate one is being filled, one waits and one is
/// written, and the writer must find a returned one whenever it hands one over, or it maps
/// and faults in a fresh one (one pooled buffer took many times the page faults;
/// bench/README.md).
const POOL: usize = 2;

/// Handle to the disk worker.
///
/// Operations queue up in order; whenever there are some and no worker is running, one is
/// started on tokio's blocking pool and drains the queue. Using the blocking pool (rather than
/// a thread of our own) also tells tokio's paused test clock that work is in progress, so
/// tests with paused time do not jump ahead while a file is being synced. A worker that has
/// drained the queue waits parked for more (`WORKER_LINGER`, 5 ms) before it ends: at steady
/// rates (hand-offs a millisecond apart) the next hand-off then costs one wake-up of a parked
/// thread, not a task handed to the blocking pool (whose lock and condition variable took
/// five or six futex calls per hand-off, two of them on a contended lock).
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
    upload: Option<crate::ship::upload::UploadQueue>,
    /// The chains the closed files' manifests form (one per stream and format), for this run.
    chains: Mutex<crate::store::manifest::Chainer>,
}

struct State {
    ops: VecDeque<DiskOp>,
    /// What the operations in `ops` count against the bound ([`DiskOp::bytes`]).
    queued_bytes: usize,
    /// Most bytes that may wait (`disk_buffer`).
    bound: usize,
    running: bool,
    /// The running worker's thread while it is parked with the queue drained (see
    /// [`WORKER_LINGER`]): whoever queues an operation takes it and unparks it.
    parked: Option<std::thread::Thread>,
    /// How long a drained worker lingers ([`WORKER_LINGER`]; tests change it).
    linger: std::time::Duration,
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

/// How long a worker that has drained the queue waits, parked, for the next operation before
/// it ends. Longer than the gap between hand-offs of a steady stream (bursts a millisecond
/// apart) or of many quiet ones (`wake_coalesce`), so at those rates it never ends; short, so
/// an idle recorder holds no busy blocking thread and tests with tokio's paused clock (which
/// does not jump ahead while a blocking task runs) wait at most this long, in real time, for
/// it to jump.
const WORKER_LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// What may wait for a disk that keeps up: one full writer buffer besides the one being
/// written. Letting the writer run further ahead at flood rate, when the disk worker is only
/// briefly behind (descheduled on a busy machine), took more peak RSS in fresh buffers
/// (bench/README.md) for no gain.
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
                    parked: None,
                    linger: WORKER_LINGER,
                    files: Some(HashMap::new()),
                    pool: Vec::new(),
                }),
                progress: Notify::new(),
                stats,
                compress,
                upload: None,
                chains: Mutex::new(crate::store::manifest::Chainer::new(
                    crate::clock::system_now_ns(),
                )),
            }),
        }
    }

    /// Hands closed files to `upload` when there is no compressor (which hands them on itself).
    /// Call before the first clone.
    pub fn with_upload(mut self, upload: Option<crate::ship::upload::UploadQueue>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.upload = upload;
        }
        self
    }

    /// Lets at most `bytes` wait for the disk (`disk_buffer`; see `DiskOp::bytes`).
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
            let wake = {
                let mut st = self.lock();
                if st.has_room(bytes, self.stalled_for() >= STALL_AFTER) {
                    // `op` is Some until pushed, and we return right after pushing.
                    if let Some(op) = op.take() {
                        self.push(&mut st, op);
                    }
                    Some(self.wake(&mut st))
                } else {
                    None
                }
            };
            if let Some(wake) = wake {
                self.start(wake);
                return;
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

    /// Queues `ops` in order (leaving `ops` empty), taking the lock and waking the worker once
    /// for all that fit; the rest go as [`Disk::submit`] sends them.
    pub async fn submit_all(&self, ops: &mut Vec<DiskOp>) {
        let mut rest = ops.drain(..).peekable();
        let wake = {
            let mut st = self.lock();
            let stalled = self.stalled_for() >= STALL_AFTER;
            while let Some(op) = rest.next_if(|op| st.has_room(op.bytes(), stalled)) {
                self.push(&mut st, op);
            }
            self.wake(&mut st)
        };
        self.start(wake);
        for op in rest {
            self.submit(op).await;
        }
    }

    /// Puts `op` in the queue (the caller checked the room).
    fn push(&self, st: &mut State, op: DiskOp) {
        st.queued_bytes += op.bytes();
        st.ops.push_back(op);
        let stats = &self.shared.stats;
        stats
            .disk_buffer_bytes
            .store(st.queued_bytes as u64, Relaxed);
        stats
            .disk_buffer_peak
            .fetch_max(st.queued_bytes as u64, Relaxed);
    }

    /// What it takes to get the queued operations carried out (the lock held): nothing while
    /// the worker is busy, unparking it while it lingers, or a new worker. [`Disk::start`]
    /// does it once the lock is released, so the woken worker does not wait for the lock.
    fn wake(&self, st: &mut State) -> Wake {
        if st.ops.is_empty() {
            Wake::Nothing
        } else if !st.running {
            st.running = true;
            Wake::Spawn
        } else if let Some(thread) = st.parked.take() {
            Wake::Unpark(thread)
        } else {
            Wake::Nothing
        }
    }

    /// Carries out what [`Disk::wake`] decided.
    fn start(&self, wake: Wake) {
        match wake {
            Wake::Nothing => {}
            Wake::Spawn => {
                let shared = self.shared.clone();
                tokio::task::spawn_blocking(move || work(&shared));
            }
            Wake::Unpark(thread) => thread.unpark(),
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
        // A parked worker has carried out everything it took.
        self.wait_until(|st| st.ops.is_empty() && (!st.running || st.parked.is_some()))
            .await;
    }

    /// Waits until `done` holds of the queue's state, looking again whenever the worker takes
    /// an operation, parks or ends.
    async fn wait_until(&self, done: impl Fn(&State) -> bool) {
        loop {
            let progressed = self.shared.progress.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            if done(&self.lock()) {
                return;
            }
            progressed.await;
        }
    }
}

/// What [`Disk::start`] does once the lock is released.
enum Wake {
    Nothing,
    Spawn,
    Unpark(std::thread::Thread),
}

/// Drains the queue on a blocking-pool thread, then lingers parked for [`WORKER_LINGER`]
/// before it ends.
fn work(shared: &Shared) {
    let lock = || shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let stats = &*shared.stats;
    let mut files = lock().files.take().unwrap_or_default();
    let mut idle_since: Option<std::time::Instant> = None;
    loop {
        let op = {
            let mut st = lock();
            match st.ops.pop_front() {
                Some(op) => {
                    st.queued_bytes -= op.bytes();
                    stats
                        .disk_buffer_bytes
                        .store(st.queued_bytes as u64, Relaxed);
                    idle_since = None;
                    // Whoever parked us may have been beaten to the queue by us.
                    st.parked = None;
                    op
                }
                None => {
                    let now = std::time::Instant::now();
                    let since = *idle_since.get_or_insert(now);
                    let left = st.linger.saturating_sub(now.duration_since(since));
                    if left.is_zero() {
                        st.running = false;
                        st.parked = None;
                        st.files = Some(files);
                        // Give back the room a stall took.
                        st.ops.shrink_to(QUEUE_KEEP);
                        drop(st);
                        shared.progress.notify_waiters();
                        return;
                    }
                    let first = st.parked.is_none();
                    st.parked = Some(std::thread::current());
                    drop(st);
                    if first {
                        // Idle: whoever waits in `finish` may go on.
                        shared.progress.notify_waiters();
                    }
                    std::thread::park_timeout(left);
                    continue;
                }
            }
        };
        shared.progress.notify_waiters();
        // The one clock reading at the start serves the stall mark and the sync check.
        let started = std::time::Instant::now();
        stats.disk_op_began(started);
        stats.disk_pause.wait();
        let done = apply(op, &mut files, shared, started);
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        stats.disk_stall_max_ns.fetch_max(took, Relaxed);
        stats.disk_op_ended();
        if let Some(buf) = done {
            let mut st = lock();
            if st.pool.len() < POOL {
                st.pool.push(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file::{RESERVE_FROM, RESERVE_STEP};
    use super::*;
    use std::fs::File;
    use std::os::unix::fs::MetadataExt as _;
    use std::path::Path;

    use crate::fsutil::reserve;

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
            run_end: false,
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

    /// A worker that drained the queue parks: the next hand-off unparks it (no new worker),
    /// `finish` does not wait for it to end, and once its linger is over it ends, giving the
    /// open files back. (The linger is set long, then to zero, so no step depends on timing.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_drained_worker_parks_takes_the_next_hand_off_and_then_ends() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("s/a.jsonl.open");
        let stream = Arc::new(StreamStats::new("s", "ws://x"));
        let stats = Arc::new(Stats::new(vec![stream.clone()], 16));
        let disk = Disk::new(stats, None);
        disk.lock().linger = std::time::Duration::from_secs(3600);
        disk.submit(DiskOp::Open {
            id: 1,
            path: open.clone(),
            stream,
            sync: SyncPolicy::Never,
            kind: FileKind::Envelope,
        })
        .await;
        let write = |n: u8| DiskOp::Write {
            id: 1,
            buf: format!("{{\"n\":{n}}}\n").into_bytes(),
            lines: 1,
        };
        let parked = || {
            let st = disk.lock();
            assert!(st.running, "a parked worker still runs");
            st.parked.clone().map(|t| t.id())
        };
        disk.submit(write(1)).await;
        disk.finish().await;
        assert_eq!(std::fs::read(&open).unwrap(), b"{\"n\":1}\n");
        let first = parked().expect("the worker parks once the queue is drained");
        let mut ops = vec![write(2), write(3)];
        disk.submit_all(&mut ops).await;
        disk.finish().await;
        assert_eq!(
            std::fs::read(&open).unwrap(),
            b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"
        );
        assert_eq!(
            parked(),
            Some(first),
            "the parked worker took them, not a new one"
        );
        // Its linger over, it ends and gives the open files back.
        let thread = {
            let mut st = disk.lock();
            st.linger = std::time::Duration::ZERO;
            st.parked.take().expect("still parked")
        };
        thread.unpark();
        disk.wait_until(|st| !st.running).await;
        {
            let st = disk.lock();
            assert!(st.parked.is_none());
            assert_eq!(st.files.as_ref().map(HashMap::len), Some(1));
        }
        // A new worker takes the next operation, with the file still open.
        disk.submit(write(4)).await;
        disk.finish().await;
        assert!(
            std::fs::read(&open)
                .unwrap()
                .ends_with(b"{\"n\":3}\n{\"n\":4}\n")
        );
    }

    #[test]
    fn the_queue_holds_its_bound_in_bytes_counting_every_operation() {
        let mut st = State {
            ops: VecDeque::new(),
            queued_bytes: 0,
            bound: 4 * FLUSH_BYTES,
            running: true,
            parked: None,
            linger: WORKER_LINGER,
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
            run_end: false,
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
