//! A writer that keeps a file system busy with `fsync`: what a recorder shares its disk with on
//! a real machine (a database checkpoint, a backup, another recorder compressing), and what
//! makes a `write` or `fsync` of the recorder's own take tens or hundreds of milliseconds.
//!
//! On a thread of its own, [`DiskHog`] writes files of a set size (512 MiB in the full bench)
//! in 1 MiB `write` calls, `fsync`s each, deletes it and starts the next, until it is stopped or
//! has written [`ROUNDS`] files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Files written at most.
pub const ROUNDS: u32 = 4;
/// Bytes per `write` call.
const CHUNK: usize = 1 << 20;

/// What the hog did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct HogReport {
    /// Bytes written.
    pub bytes: u64,
    /// Files written and `fsync`ed.
    pub fsyncs: u32,
    /// Longest `fsync`, ms.
    pub max_fsync_ms: f64,
}

/// The running writer.
pub struct DiskHog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<HogReport>>>,
}

impl DiskHog {
    /// Starts writing files of `file_bytes` under `dir` (created if missing), which should be on
    /// the recording's file system.
    ///
    /// # Errors
    /// The directory cannot be created or the thread cannot start.
    pub fn start(dir: &Path, file_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let dir = dir.to_owned();
        let thread = std::thread::Builder::new()
            .name("disk-hog".into())
            .spawn(move || write_files(&dir, file_bytes, &flag))
            .context("spawning the disk hog thread")?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops it after its current `write` or `fsync` and returns what it did.
    ///
    /// # Errors
    /// A write failed (e.g. the disk is full), or the thread panicked.
    pub fn stop(mut self) -> Result<HogReport> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => anyhow::bail!("disk hog thread panicked"),
            None => Ok(HogReport::default()),
        }
    }
}

impl Drop for DiskHog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_files(dir: &Path, file_bytes: u64, stop: &AtomicBool) -> Result<HogReport> {
    let chunk = vec![0x5au8; CHUNK];
    let mut report = HogReport::default();
    for round in 0..ROUNDS {
        let path: PathBuf = dir.join(format!("hog-{round}.bin"));
        let mut f =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut written = 0;
        while written < file_bytes && !stop.load(Ordering::Relaxed) {
            f.write_all(&chunk)
                .with_context(|| format!("writing {}", path.display()))?;
            written += CHUNK as u64;
        }
        let started = Instant::now();
        f.sync_all()
            .with_context(|| format!("fsync of {}", path.display()))?;
        let took: Duration = started.elapsed();
        report.max_fsync_ms = report.max_fsync_ms.max(took.as_secs_f64() * 1e3);
        report.bytes += written;
        report.fsyncs += 1;
        drop(f);
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(report)
}
