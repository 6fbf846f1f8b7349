//! Making appended data durable when a file's `fsync_interval` is up: that file alone with
//! `fdatasync`, or, when many files on one file system are due together (a thousand quiet
//! streams each with a file of its own), all of them with one `syncfs`. One `syncfs` submits
//! the writeback of every file at once and flushes the device's cache once, where a thousand
//! `fdatasync`s flush it a thousand times: on the project's VM those were a fifth of the
//! recorder's CPU with 1,000 streams at 20 messages per second (bench/README.md).
//!
//! `syncfs` reports write-back errors only since Linux 5.8, so older kernels sync file by
//! file. When a `syncfs` fails, every file of the group is synced on its own, so that each
//! file's own `fdatasync` says which of them lost data (their error state is kept per file).

use std::collections::HashMap;
use std::os::fd::AsRawFd as _;
use std::sync::OnceLock;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::SyncPolicy;
use super::event::DiskEvent;
use super::open::OpenFile;
use crate::observe::stats::Stats;

/// At least this many files of one file system with unsynced data, one of them due, make a
/// `syncfs` worth it.
pub(super) const GROUP_SYNC_MIN: usize = 8;

/// Syncs file `id` if its policy says it is due; with [`GROUP_SYNC_MIN`] or more files with
/// unsynced data on its file system, syncs them all with one `syncfs`.
pub(super) fn sync_due(id: u64, files: &mut HashMap<u64, OpenFile>, stats: &Stats, now: Instant) {
    let Some(f) = files.get(&id) else { return };
    if !is_due(f, now) {
        return;
    }
    if matches!(f.sync, SyncPolicy::Interval(_)) && syncfs_reports_errors() {
        let dev = f.dev;
        let group = files.values().filter(|o| waits_in(o, dev)).count();
        if group >= GROUP_SYNC_MIN {
            let synced = f.file.as_ref().is_some_and(|file| {
                // SAFETY: `syncfs` takes any open descriptor of the file system and touches no
                // memory of ours.
                unsafe { libc::syncfs(file.as_raw_fd()) == 0 }
            });
            for o in files.values_mut().filter(|o| waits_in(o, dev)) {
                if synced {
                    o.dirty_since = None;
                    o.unsynced_lines = 0;
                } else {
                    sync_now(o, stats);
                }
            }
            if synced {
                stats.fs_syncs.fetch_add(1, Relaxed);
            }
            return;
        }
    }
    if let Some(f) = files.get_mut(&id) {
        sync_now(f, stats);
    }
}

/// Whether the file's unsynced data is due for a sync at `now`.
fn is_due(f: &OpenFile, now: Instant) -> bool {
    let (Some(_), Some(since)) = (&f.file, f.dirty_since) else {
        return false;
    };
    match f.sync {
        SyncPolicy::Never => false,
        SyncPolicy::Always => true,
        SyncPolicy::Interval(every) => now.saturating_duration_since(since) >= every,
    }
}

/// A file on file system `dev` whose unsynced data a `syncfs` would take along.
fn waits_in(f: &OpenFile, dev: u64) -> bool {
    f.dev == dev
        && f.file.is_some()
        && f.dirty_since.is_some()
        && matches!(f.sync, SyncPolicy::Interval(_))
}

/// `fdatasync` of one file.
fn sync_now(f: &mut OpenFile, stats: &Stats) {
    let Some(file) = &f.file else { return };
    match file.sync_data() {
        Ok(()) => {
            f.dirty_since = None;
            f.unsynced_lines = 0;
            stats.file_syncs.fetch_add(1, Relaxed);
        }
        Err(e) => sync_failed(f, &e, stats),
    }
}

/// Whether this kernel's `syncfs` reports write-back errors (Linux 5.8 and later).
fn syncfs_reports_errors() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        // SAFETY: `uname` fills the zeroed struct it is given.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut u) } != 0 {
            return false;
        }
        let release: Vec<u8> = u
            .release
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        kernel_at_least(&String::from_utf8_lossy(&release), (5, 8))
    })
}

/// Whether a kernel release string (`6.18.0-cloud-amd64`) is at least `min`.
fn kernel_at_least(release: &str, min: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= min,
        _ => false,
    }
}

/// A failed fsync (EIO) means the data since the last good sync may never reach the disk:
/// count those lines as lost, so the loss is reported and marked rather than silent.
pub(super) fn sync_failed(f: &mut OpenFile, e: &std::io::Error, stats: &Stats) {
    let lines = std::mem::take(&mut f.unsynced_lines);
    f.dirty_since = None;
    DiskEvent::SyncFailed {
        path: &f.path,
        stream: &f.stream,
        error: e,
        lines,
        first: !std::mem::replace(&mut f.failing, true),
    }
    .emit(stats);
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::observe::stats::StreamStats;
    use crate::store::manifest::FileKind;

    /// `n` files in `dir` with a line written, unsynced for `age`, synced every second.
    fn dirty_files(dir: &std::path::Path, n: u64, age: Duration) -> HashMap<u64, OpenFile> {
        use std::os::unix::fs::MetadataExt as _;
        let stream = Arc::new(StreamStats::new("s", "ws://x"));
        (0..n)
            .map(|id| {
                let path = dir.join(format!("{id}.jsonl"));
                let mut file = std::fs::File::create(&path).unwrap();
                file.write_all(b"{}\n").unwrap();
                let dev = file.metadata().unwrap().dev();
                let f = OpenFile {
                    path,
                    file: Some(file),
                    len: 3,
                    stream: stream.clone(),
                    sync: SyncPolicy::Interval(Duration::from_secs(1)),
                    dirty_since: Some(Instant::now() - age),
                    hash: twox_hash::XxHash3_64::new(),
                    failing: false,
                    unsynced_lines: 1,
                    reserved: 0,
                    no_reserve: false,
                    dev,
                    kind: FileKind::Envelope,
                    lines: 1,
                    lost_lines: 0,
                };
                (id, f)
            })
            .collect()
    }

    #[test]
    fn many_files_due_together_take_one_syncfs_and_few_take_their_own() {
        if !syncfs_reports_errors() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let stats = Stats::new(Vec::new(), 16);
        // Eight files with unsynced lines, one of them due: one syncfs for all of them.
        let mut files = dirty_files(dir.path(), GROUP_SYNC_MIN as u64, Duration::from_secs(5));
        files.get_mut(&1).unwrap().dirty_since = Some(Instant::now());
        sync_due(1, &mut files, &stats, Instant::now());
        assert_eq!(stats.fs_syncs.load(Relaxed), 0, "file 1 is not due yet");
        sync_due(0, &mut files, &stats, Instant::now());
        assert_eq!(stats.fs_syncs.load(Relaxed), 1);
        assert_eq!(stats.file_syncs.load(Relaxed), 0);
        assert!(
            files
                .values()
                .all(|f| f.dirty_since.is_none() && f.unsynced_lines == 0)
        );
        // One file fewer: each due file is synced on its own, the others keep waiting.
        let dir = tempfile::tempdir().unwrap();
        let mut files = dirty_files(
            dir.path(),
            GROUP_SYNC_MIN as u64 - 1,
            Duration::from_secs(5),
        );
        files.get_mut(&1).unwrap().dirty_since = Some(Instant::now());
        sync_due(0, &mut files, &stats, Instant::now());
        assert_eq!(stats.fs_syncs.load(Relaxed), 1);
        assert_eq!(stats.file_syncs.load(Relaxed), 1);
        assert!(files[&0].dirty_since.is_none());
        assert!(files[&1].dirty_since.is_some());
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(kernel_at_least("6.18.0-cloud-amd64", (5, 8)));
        assert!(kernel_at_least("5.8.0", (5, 8)));
        assert!(kernel_at_least("5.10.0-32-amd64", (5, 8)));
        assert!(!kernel_at_least("5.4.0-150-generic", (5, 8)));
        assert!(!kernel_at_least("4.19.0", (5, 8)));
        assert!(!kernel_at_least("junk", (5, 8)));
    }
}
