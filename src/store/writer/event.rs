//! The writer's telemetry: each thing that happens to the writer's files and to its view of the
//! disk is a [`WriterEvent`], and [`WriterEvent::emit`] is the one place that updates the
//! counters it touches and writes its log line. Per-line counters (lines written, lost below
//! `disk_stop`, raw lines that were not safe) stay on the line path, where they are plain adds.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use crate::observe::stats::{DiskLevel, Stats, StreamStats, UnmarkedLoss};

/// Something that happened in the writer, with what its log line and counters need.
pub(crate) enum WriterEvent<'a> {
    /// A file of a stream is being opened (`data`: the data file, not a `raw` sidecar).
    Opening {
        /// The stream's name.
        stream: &'a str,
        /// The stream's counters.
        counters: &'a StreamStats,
        /// The file's `.open` path.
        path: &'a Path,
        /// Whether it is the stream's data file (shown as its current file).
        data: bool,
    },
    /// A stream's files were handed on to be closed: it has no current file.
    Closed {
        /// The stream's counters.
        counters: &'a StreamStats,
    },
    /// The path template gave no file name (only an absurd clock gets here).
    Unnameable {
        /// The stream's name.
        stream: &'a str,
        /// Why.
        error: &'a str,
    },
    /// A batch named a stream index the writer does not have; it was dropped.
    UnknownStream {
        /// The index it named.
        stream: usize,
    },
    /// Lines lost to write errors at the end of the run, which no marker could report.
    UnmarkedAtEnd {
        /// The stream's name.
        stream: &'a str,
        /// What was lost.
        loss: UnmarkedLoss,
    },
    /// Free space fell below `disk_stop`: messages are no longer written.
    DiskStopped {
        /// The output directory.
        dir: &'a Path,
        /// Its free bytes.
        free: u64,
    },
    /// Free space came back above `disk_stop`, but is still below `disk_warn`.
    DiskResumed {
        /// The output directory.
        dir: &'a Path,
        /// Its free bytes.
        free: u64,
    },
    /// Free space fell below `disk_warn`.
    DiskLow {
        /// The output directory.
        dir: &'a Path,
        /// Its free bytes.
        free: u64,
    },
    /// Free space came back above every watermark.
    DiskEnough {
        /// The output directory.
        dir: &'a Path,
        /// Its free bytes.
        free: u64,
    },
    /// The journal went on in its other half, every file having been handed its lines.
    JournalHalf,
    /// The journal's half filled while the disk worker still had the other half's lines to
    /// write: idle moments hand lines to it directly until it has.
    JournalBehind,
}

impl WriterEvent<'_> {
    /// The event for free space moving from level `from` to level `to` (`None` when it stays).
    pub(super) fn disk_level(
        from: DiskLevel,
        to: DiskLevel,
        dir: &Path,
        free: u64,
    ) -> Option<WriterEvent<'_>> {
        Some(match (from, to) {
            _ if from == to => return None,
            (_, DiskLevel::Stopped) => WriterEvent::DiskStopped { dir, free },
            (DiskLevel::Stopped, DiskLevel::Low) => WriterEvent::DiskResumed { dir, free },
            (_, DiskLevel::Low) => WriterEvent::DiskLow { dir, free },
            (_, DiskLevel::Enough) => WriterEvent::DiskEnough { dir, free },
        })
    }

    /// Updates the counters the event touches and logs it.
    pub(crate) fn emit(self, stats: &Stats) {
        match self {
            Self::Opening {
                stream,
                counters,
                path,
                data,
            } => {
                if data {
                    counters.set_current_file(&path.display().to_string());
                }
                tracing::debug!(stream = %stream, path = %path.display(), "Opening file.");
            }
            Self::Closed { counters } => counters.set_current_file(""),
            Self::Unnameable { stream, error } => {
                tracing::error!(stream = %stream, error = %error, "Cannot name the output file.");
            }
            Self::UnknownStream { stream } => {
                tracing::error!(stream, "Batch for an unknown stream; dropped.");
            }
            Self::UnmarkedAtEnd { stream, loss } => {
                tracing::error!(stream = %stream, lost = loss.messages, lost_events = loss.events, dropped = loss.dropped, "Lines lost to write errors at the end of the run could not be marked in the data: the disk took no more lines. They are counted in lines_lost.");
            }
            Self::DiskStopped { dir, free } => {
                let dir = dir.display();
                tracing::error!(%dir, free, "Free space is below disk_stop: messages are no longer written; losses are counted and the gap will be marked when space returns.");
                stats.set_disk_level(DiskLevel::Stopped);
            }
            Self::DiskResumed { dir, free } => {
                let dir = dir.display();
                tracing::warn!(%dir, free, "Free space is back above disk_stop: writing again (still below disk_warn).");
                stats.set_disk_level(DiskLevel::Low);
            }
            Self::DiskLow { dir, free } => {
                let dir = dir.display();
                tracing::warn!(%dir, free, "Free space is below disk_warn.");
                stats.set_disk_level(DiskLevel::Low);
            }
            Self::DiskEnough { dir, free } => {
                let dir = dir.display();
                tracing::info!(%dir, free, "Free space is back above the watermarks.");
                stats.set_disk_level(DiskLevel::Enough);
            }
            Self::JournalHalf => {
                stats.journal_halves.fetch_add(1, Relaxed);
            }
            Self::JournalBehind => {
                stats.journal_fallbacks.fetch_add(1, Relaxed);
                tracing::debug!(
                    "The journal's other half is still being written: idle lines go to the disk worker until it is."
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DiskLevel::{Enough, Low, Stopped};

    #[test]
    fn crossing_a_watermark_is_one_event_that_sets_the_level() {
        let stats = Stats::new(vec![], 1);
        let dir = Path::new("/out");
        // Each crossing, in an order that visits every transition, and the level it leaves.
        let steps = [
            (Enough, Low),
            (Low, Stopped),
            (Stopped, Low),
            (Low, Enough),
            (Enough, Stopped),
            (Stopped, Enough),
        ];
        for (from, to) in steps {
            assert!(WriterEvent::disk_level(from, from, dir, 5).is_none());
            let event = WriterEvent::disk_level(from, to, dir, 5).expect("a crossing");
            let name = match event {
                WriterEvent::DiskStopped { .. } => "stopped",
                WriterEvent::DiskResumed { .. } => "resumed",
                WriterEvent::DiskLow { .. } => "low",
                WriterEvent::DiskEnough { .. } => "enough",
                _ => "other",
            };
            let want = match (from, to) {
                (_, Stopped) => "stopped",
                (Stopped, Low) => "resumed",
                (_, Low) => "low",
                _ => "enough",
            };
            assert_eq!(name, want, "{from:?} -> {to:?}");
            event.emit(&stats);
            assert_eq!(stats.disk_level(), to);
        }
    }
}
