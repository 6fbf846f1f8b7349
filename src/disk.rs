//! The disk thread: every blocking file operation of the recorder happens here.
//!
//! The writer task encodes lines into buffers and sends [`DiskOp`]s over a bounded channel; this
//! plain OS thread opens, appends, syncs, closes and renames. A slow or failing disk therefore
//! stalls only this thread (and, once the channel is full, the writer), never a connection.
//!
//! Failures never panic and never go unnoticed: a failed open or write is logged once per file
//! with its path, the lines it held are counted as lost, and a partly written buffer is cut
//! back to the last complete line so no file is left with a torn line.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::mpsc;

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

/// Handle to the running disk thread.
pub struct Disk {
    /// Where the writer sends operations.
    pub tx: mpsc::Sender<DiskOp>,
    /// Emptied buffers coming back for reuse.
    pub recycled: std::sync::mpsc::Receiver<Vec<u8>>,
    /// The thread; joined at shutdown.
    pub thread: std::thread::JoinHandle<()>,
}

/// Operations that may wait in the channel; with ~256 KiB buffers this bounds memory to a few MiB.
const DISK_QUEUE: usize = 8;

/// Starts the disk thread.
///
/// # Errors
/// The OS refused to create a thread.
pub fn spawn(stats: Arc<Stats>) -> std::io::Result<Disk> {
    let (tx, rx) = mpsc::channel(DISK_QUEUE);
    let (recycle_tx, recycled) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("wsrec-disk".to_owned())
        .spawn(move || run(rx, recycle_tx, stats))?;
    Ok(Disk {
        tx,
        recycled,
        thread,
    })
}

fn run(
    mut rx: mpsc::Receiver<DiskOp>,
    recycle: std::sync::mpsc::Sender<Vec<u8>>,
    stats: Arc<Stats>,
) {
    let mut files: HashMap<u64, OpenFile> = HashMap::new();
    while let Some(op) = rx.blocking_recv() {
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
            }
            DiskOp::Write { id, buf, lines } => {
                if let Some(f) = files.get_mut(&id) {
                    write(f, &buf, lines, &stats);
                }
                let mut buf = buf;
                buf.clear();
                // The writer may be gone at shutdown; then the buffer is simply freed.
                let _ = recycle.send(buf);
            }
            DiskOp::Close { id, final_path } => {
                if let Some(f) = files.remove(&id) {
                    close(f, &final_path, &stats);
                }
            }
        }
    }
    // The writer closes every file before it stops; anything left here was never closed
    // because of an error path, so sync what can be synced.
    for (_, f) in files.drain() {
        if let Some(file) = &f.file {
            let _ = file.sync_all();
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
