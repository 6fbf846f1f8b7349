//! The disk worker: every blocking file operation of the recorder happens here.
//!
//! The writer task encodes lines into buffers and submits [`DiskOp`]s to a short queue; a
//! worker on tokio's blocking pool opens, appends, syncs, closes and renames, in order. A slow
//! or failing disk therefore stalls only that worker (and, once the queue is full, the writer),
//! never a connection.
//!
//! Failures never panic and never go unnoticed: a failed open or write is logged once per file
//! with its path, the lines it held are counted as lost, and a partly written buffer is cut
//! back to the last complete line so no file is left with a torn line.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::stats::{Stats, StreamStats};

/// An operation for the disk thread.
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
    /// Sync, close and rename the file to its final name.
    Close {
        /// File handle.
        id: u64,
        /// The final name.
        final_path: PathBuf,
    },
}

struct OpenFile {
    path: PathBuf,
    /// `None` after a failure: further writes are counted as lost.
    file: Option<File>,
    /// Bytes known to be fully written.
    len: u64,
    stream: Arc<StreamStats>,
}

/// Operations that may wait for the disk; with ~256 KiB buffers this bounds memory to a few MiB.
const DISK_QUEUE: usize = 4;
/// Emptied buffers kept for reuse.
const POOL: usize = 4;

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
}

struct State {
    ops: VecDeque<DiskOp>,
    running: bool,
    /// Open files; taken by the worker while it runs.
    files: Option<HashMap<u64, OpenFile>>,
    pool: Vec<Vec<u8>>,
}

impl Disk {
    /// A disk worker (started on demand).
    pub fn new(stats: Arc<Stats>) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ops: VecDeque::new(),
                    running: false,
                    files: Some(HashMap::new()),
                    pool: Vec::new(),
                }),
                progress: Notify::new(),
                stats,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The worker never panics while holding the lock (it only moves values in and out).
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an operation, waiting while [`DISK_QUEUE`] are already waiting.
    pub async fn submit(&self, op: DiskOp) {
        let mut op = Some(op);
        loop {
            let progressed = self.shared.progress.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            {
                let mut st = self.lock();
                if st.ops.len() < DISK_QUEUE {
                    // `op` is Some until pushed, and we return right after pushing.
                    st.ops.extend(op.take());
                    if !st.running {
                        st.running = true;
                        let shared = self.shared.clone();
                        tokio::task::spawn_blocking(move || work(&shared));
                    }
                    return;
                }
            }
            progressed.await;
        }
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
    let mut files = lock().files.take().unwrap_or_default();
    loop {
        let op = {
            let mut st = lock();
            match st.ops.pop_front() {
                Some(op) => op,
                None => {
                    st.running = false;
                    st.files = Some(files);
                    drop(st);
                    shared.progress.notify_waiters();
                    return;
                }
            }
        };
        shared.progress.notify_waiters();
        if let Some(buf) = apply(op, &mut files, &shared.stats) {
            let mut st = lock();
            if st.pool.len() < POOL {
                st.pool.push(buf);
            }
        }
    }
}

/// Carries out one operation; returns an emptied buffer for reuse.
fn apply(op: DiskOp, files: &mut HashMap<u64, OpenFile>, stats: &Stats) -> Option<Vec<u8>> {
    match op {
        DiskOp::Open { id, path, stream } => {
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
                },
            );
            None
        }
        DiskOp::Write { id, mut buf, lines } => {
            if let Some(f) = files.get_mut(&id) {
                write(f, &buf, lines, stats);
            }
            buf.clear();
            Some(buf)
        }
        DiskOp::Close { id, final_path } => {
            if let Some(f) = files.remove(&id) {
                close(f, &final_path, stats);
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
        f.stream.lines_lost.fetch_add(lines, Relaxed);
        return;
    };
    match file.write_all(buf) {
        Ok(()) => f.len += buf.len() as u64,
        Err(e) => {
            // Cut a partial write back to the last complete line, then stop using the file.
            let _ = file.set_len(f.len);
            stats.write_errors.fetch_add(1, Relaxed);
            f.stream.lines_lost.fetch_add(lines, Relaxed);
            f.stream
                .set_last_error(&format!("write to {} failed: {e}", f.path.display()));
            tracing::error!(path = %f.path.display(), error = %e, lines, "Write failed; the file is closed at its last complete line and further lines for it are counted as lost.");
            f.file = None;
        }
    }
}

fn close(f: OpenFile, final_path: &Path, stats: &Stats) {
    let Some(file) = f.file else {
        // Keep what was written before the failure under its final name.
        if f.path.exists() {
            let _ = std::fs::rename(&f.path, final_path);
        }
        return;
    };
    let result = file
        .sync_all()
        .and_then(|()| std::fs::rename(&f.path, final_path))
        .and_then(|()| sync_dir(final_path));
    match result {
        Ok(()) => {
            stats.files_closed.fetch_add(1, Relaxed);
            tracing::debug!(path = %final_path.display(), bytes = f.len, "File closed.");
        }
        Err(e) => {
            stats.write_errors.fetch_add(1, Relaxed);
            tracing::error!(path = %f.path.display(), final_path = %final_path.display(), error = %e, "Cannot close output file; it keeps its .open name.");
        }
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}
