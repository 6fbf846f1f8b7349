//! The disk worker's telemetry: each thing that happens to a file on disk (a failed open,
//! write, sync or close, a close that worked, writing working again...) is a [`DiskEvent`],
//! and [`DiskEvent::emit`] is the one place that updates the counters it touches and writes
//! its log line. The queue's gauges (fill level, peak, longest operation) are plain stores in
//! the worker loop: they have no log line.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use crate::observe::stats::{Stats, StreamStats, UnmarkedLoss};

/// Something that happened to a file on the disk worker, with what its log line and counters
/// need.
pub(crate) enum DiskEvent<'a> {
    /// A file could not be created: its lines will be counted as lost.
    OpenFailed {
        /// The `.open` path.
        path: &'a Path,
        /// The stream's counters.
        stream: &'a StreamStats,
        /// Why.
        error: &'a std::io::Error,
    },
    /// Space could not be reserved ahead of the writes: the file goes on without.
    NoReserve {
        /// The file.
        path: &'a Path,
        /// Why.
        error: &'a std::io::Error,
    },
    /// A write worked after failed ones.
    WriteWorks {
        /// The file.
        path: &'a Path,
    },
    /// A write failed; what fit was kept and the lines that did not are counted as lost.
    WriteFailed {
        /// The file.
        path: &'a Path,
        /// The stream's counters.
        stream: &'a StreamStats,
        /// Why.
        error: &'a std::io::Error,
        /// Lines lost.
        lines: u64,
        /// Lines of the same buffer that reached the file.
        kept_lines: u64,
        /// The first failure since the file last worked (only that one is logged).
        first: bool,
    },
    /// A failed write could not be cut back to its last complete line.
    CutFailed {
        /// The file.
        path: &'a Path,
        /// Why.
        error: &'a std::io::Error,
    },
    /// An fsync failed: the lines written since the last good one count as lost.
    SyncFailed {
        /// The file.
        path: &'a Path,
        /// The stream's counters.
        stream: &'a StreamStats,
        /// Why.
        error: &'a std::io::Error,
        /// Lines written since the last good sync.
        lines: u64,
        /// The first failure since the file last worked (only that one is logged).
        first: bool,
    },
    /// The space reserved ahead could not be given back at close.
    UnreserveFailed {
        /// The file.
        path: &'a Path,
        /// Why.
        error: &'a std::io::Error,
    },
    /// A file was closed under its final name.
    Closed {
        /// The final name.
        path: &'a Path,
        /// Its length.
        bytes: u64,
    },
    /// A file could not be closed: it keeps its `.open` name.
    CloseFailed {
        /// The `.open` path.
        path: &'a Path,
        /// The name it should have had.
        final_path: &'a Path,
        /// Why.
        error: &'a std::io::Error,
    },
    /// A file that lost lines could not be read back for its manifest.
    ReadBackFailed {
        /// The file.
        path: &'a Path,
        /// Why.
        error: &'a std::io::Error,
    },
}

impl DiskEvent<'_> {
    /// Updates the counters the event touches and logs it.
    pub(crate) fn emit(self, stats: &Stats) {
        match self {
            Self::OpenFailed {
                path,
                stream,
                error: e,
            } => {
                stats.write_errors.fetch_add(1, Relaxed);
                stream.set_last_error(&format!("cannot create {}: {e}", path.display()));
                tracing::error!(path = %path.display(), error = %e, "Cannot create output file; its lines will be counted as lost.");
            }
            Self::NoReserve { path, error } => {
                tracing::debug!(path = %path.display(), error = %error, "Cannot reserve disk space ahead; writing without.");
            }
            Self::WriteWorks { path } => {
                tracing::info!(path = %path.display(), "Writing works again.");
            }
            Self::WriteFailed {
                path,
                stream,
                error: e,
                lines,
                kept_lines,
                first,
            } => {
                stats.write_errors.fetch_add(1, Relaxed);
                if first {
                    stream.set_last_error(&format!("write to {} failed: {e}", path.display()));
                    tracing::error!(path = %path.display(), error = %e, lines, kept_lines, "Write failed; what fit is kept, the file is cut back to its last complete line, the lost lines are counted and marked in the data once writing works again.");
                }
            }
            Self::CutFailed { path, error } => {
                tracing::error!(path = %path.display(), error = %error, "Cannot cut a failed write back to its last complete line.");
            }
            Self::SyncFailed {
                path,
                stream,
                error: e,
                lines,
                first,
            } => {
                stats.write_errors.fetch_add(1, Relaxed);
                // Which of them were events is not known any more: the buffers are gone.
                let loss = UnmarkedLoss {
                    messages: lines,
                    ..UnmarkedLoss::default()
                };
                count_lost(stream, lines, &loss);
                if first {
                    stream.set_last_error(&format!("fsync of {} failed: {e}", path.display()));
                    tracing::error!(path = %path.display(), error = %e, lines, "fsync failed: the lines written since the last good sync are counted as lost.");
                }
            }
            Self::UnreserveFailed { path, error } => {
                // Only space is at stake: the length does not change.
                tracing::warn!(path = %path.display(), error = %error, "Cannot give back the disk space reserved ahead of the writes.");
            }
            Self::Closed { path, bytes } => {
                stats.files_closed.fetch_add(1, Relaxed);
                tracing::debug!(path = %path.display(), bytes, "File closed.");
            }
            Self::CloseFailed {
                path,
                final_path,
                error,
            } => {
                stats.write_errors.fetch_add(1, Relaxed);
                tracing::error!(path = %path.display(), final_path = %final_path.display(), error = %error, "Cannot close output file; it keeps its .open name.");
            }
            Self::ReadBackFailed { path, error } => {
                tracing::warn!(path = %path.display(), error = %error, "Cannot read a file back to count what reached it; its manifest keeps what was received.");
            }
        }
    }
}

/// Counts `lines` that did not reach their file (`loss`: what they stood for) against the
/// stream, and hands `loss` to the writer's next marker. Not logged: a loss is logged once per
/// failing file, by the event of the failure.
pub(super) fn count_lost(stream: &StreamStats, lines: u64, loss: &UnmarkedLoss) {
    stream.lines_lost.fetch_add(lines, Relaxed);
    stream.io_lost.fetch_add(lines, Relaxed);
    stream.add_unmarked(loss);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sync_counts_every_time_but_reports_its_error_once() {
        let stream = StreamStats::new("s", "ws://x");
        let stats = Stats::new(vec![], 1);
        let path = Path::new("/out/s/a.jsonl.open");
        let error = std::io::Error::other("EIO");
        for (lines, first) in [(3, true), (2, false)] {
            DiskEvent::SyncFailed {
                path,
                stream: &stream,
                error: &error,
                lines,
                first,
            }
            .emit(&stats);
            if first {
                // The next failure must not overwrite this one.
                stream.set_last_error("");
            }
        }
        assert_eq!(stats.write_errors.load(Relaxed), 2);
        assert_eq!(stream.lines_lost.load(Relaxed), 5);
        assert_eq!(stream.io_lost.load(Relaxed), 5);
        assert_eq!(stream.take_unmarked().messages, 5);
        assert_eq!(*stream.last_error.lock().unwrap(), "");
    }

    #[test]
    fn a_close_counts_only_when_it_worked() {
        let stats = Stats::new(vec![], 1);
        let path = Path::new("/out/s/a.jsonl");
        DiskEvent::Closed { path, bytes: 10 }.emit(&stats);
        DiskEvent::CloseFailed {
            path,
            final_path: path,
            error: &std::io::Error::other("ENOSPC"),
        }
        .emit(&stats);
        assert_eq!(stats.files_closed.load(Relaxed), 1);
        assert_eq!(stats.write_errors.load(Relaxed), 1);
    }
}
