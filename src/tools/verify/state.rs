//! What the verifier keeps while it reads: a place in the recording, the `seq` tracker, and
//! the state of each stream (runs, live connections, the open disconnect window) and of the file
//! being read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::tools::venue_seq;

use super::{MAX_HOLES, MAX_WINDOWS, REORDER_WINDOW, StreamReport, Window};

/// A place in the recording.
#[derive(Clone, Debug)]
pub(super) struct Where {
    pub(super) file: Arc<str>,
    pub(super) line: u64,
}

/// Follows one stream's `seq`: in order, ahead (a hole opens), back into a hole (it fills), or
/// back onto a number already seen (a duplicate).
#[derive(Debug, Default)]
pub(super) struct SeqTracker {
    pub(super) next: Option<u64>,
    /// Open holes: first missing -> (last missing, where it was noticed).
    pub(super) holes: BTreeMap<u64, (u64, Where)>,
}

/// What one `seq` was.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen {
    InOrder,
    Ahead,
    Filled,
    Duplicate,
}

impl SeqTracker {
    pub(super) fn observe(&mut self, seq: u64, at: &Where) -> Seen {
        let Some(next) = self.next else {
            self.next = Some(seq.saturating_add(1));
            return Seen::InOrder;
        };
        if seq == next {
            self.next = Some(seq.saturating_add(1));
            return Seen::InOrder;
        }
        if seq > next {
            self.holes.insert(next, (seq - 1, at.clone()));
            self.next = Some(seq.saturating_add(1));
            return Seen::Ahead;
        }
        let hole = self
            .holes
            .range(..=seq)
            .next_back()
            .map(|(&start, (end, w))| (start, *end, w.clone()));
        match hole {
            Some((start, end, w)) if seq <= end => {
                self.holes.remove(&start);
                if start < seq {
                    self.holes.insert(start, (seq - 1, w.clone()));
                }
                if seq < end {
                    self.holes.insert(seq + 1, (end, w));
                }
                Seen::Filled
            }
            _ => Seen::Duplicate,
        }
    }

    /// Holes that can no longer fill (too far behind, or too many), removed.
    pub(super) fn settled(&mut self) -> Vec<(u64, u64, Where)> {
        let mut out = Vec::new();
        let Some(next) = self.next else { return out };
        while let Some((&start, (end, _))) = self.holes.first_key_value() {
            if self.holes.len() > MAX_HOLES || next - end > REORDER_WINDOW {
                if let Some((start, (end, w))) = self.holes.pop_first() {
                    out.push((start, end, w));
                }
            } else {
                let _ = start;
                break;
            }
        }
        out
    }

    /// Every open hole, removed; the sequence starts over at `next`.
    pub(super) fn finish(&mut self, next: Option<u64>) -> Vec<(u64, u64, Where)> {
        self.next = next;
        std::mem::take(&mut self.holes)
            .into_iter()
            .map(|(s, (e, w))| (s, e, w))
            .collect()
    }
}

/// A window still open.
#[derive(Debug)]
pub(super) struct OpenWindow {
    pub(super) start_ns: u64,
    pub(super) reason: String,
    pub(super) conn: u64,
    pub(super) failed_attempts: u64,
    pub(super) at: Where,
}

/// What verify keeps per stream.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    pub(super) report: StreamReport,
    /// A raw-format stream: its `seq` lives only in the sidecar, so it is not checked.
    pub(super) raw: bool,
    pub(super) seq: SeqTracker,
    pub(super) live: BTreeSet<u64>,
    pub(super) max_conn: u64,
    pub(super) pid: Option<u64>,
    pub(super) window: Option<OpenWindow>,
    /// Dropped or unwritten messages not yet matched to a gap.
    pub(super) dropped_credit: u64,
    pub(super) venue: venue_seq::Checker,
    pub(super) last_at: Option<Where>,
    /// The stream's last line was a `recovered` event: the run it ends is already reported.
    pub(super) killed: bool,
}

/// The current file, for manifests and counts.
pub(super) struct FileState {
    pub(super) path: Arc<str>,
    pub(super) manifest: Option<Expected>,
    pub(super) hash: Option<Box<twox_hash::XxHash3_64>>,
    pub(super) bytes: u64,
    pub(super) hashable: bool,
    pub(super) failed: bool,
    /// Its manifest says it is a raw stream's data file.
    pub(super) raw_manifest: bool,
    /// Whether its lines may be raw messages (decided at its first raw line): a raw-format
    /// file is known by its manifest or its events sidecar.
    pub(super) raw_ok: Option<bool>,
}

/// A manifest's figures.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Expected {
    pub(super) lines: u64,
    pub(super) bytes: u64,
    pub(super) xxh3_64: String,
    #[serde(default)]
    pub(super) stream: String,
    #[serde(default)]
    pub(super) format: String,
    #[serde(default)]
    pub(super) recovered: bool,
    /// Absent in manifests written before chains.
    #[serde(default)]
    pub(super) chain: Option<crate::store::manifest::Chain>,
}

/// A closed file's place in its stream's chain, as its manifest states it.
#[derive(Debug)]
pub(super) struct Link {
    /// The file (as found).
    pub(super) path: Arc<str>,
    /// Its uncompressed path.
    pub(super) logical: std::path::PathBuf,
    pub(super) stream: String,
    pub(super) format: String,
    pub(super) chain: crate::store::manifest::Chain,
}

/// What the chain checks collect while the files are read.
#[derive(Debug, Default)]
pub(super) struct Chains {
    /// Every chained file read.
    pub(super) links: Vec<Link>,
    /// Uncompressed paths of every file read.
    pub(super) read: BTreeSet<std::path::PathBuf>,
    /// Streams with a file left open or recovered: their run was killed (reported on its own),
    /// or is still being written, so their chain may end without a close.
    pub(super) unfinished: BTreeSet<String>,
}

pub(super) fn close_window(r: &mut StreamReport, w: OpenWindow, end: u64) {
    let duration = end.saturating_sub(w.start_ns);
    r.disconnected_ns += duration;
    push_window(
        r,
        Window {
            start_ns: w.start_ns,
            end_ns: Some(end),
            duration_ns: Some(duration),
            reason: w.reason,
            conn: w.conn,
            failed_attempts: w.failed_attempts,
            file: w.at.file.to_string(),
            line: w.at.line,
        },
    );
}

pub(super) fn push_window(r: &mut StreamReport, w: Window) {
    if r.disconnects.len() < MAX_WINDOWS {
        r.disconnects.push(w);
    } else {
        r.disconnects_not_listed += 1;
    }
}

/// `path` with its `..` and `.` resolved lexically (`a/b/../c` -> `a/c`), so a predecessor named
/// relative to a file's directory compares equal to the path it was found under.
pub(super) fn lexical(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u64) -> Where {
        Where {
            file: Arc::from("f"),
            line,
        }
    }

    #[test]
    fn seq_tracker_tells_gaps_reorders_and_duplicates() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(5, &at(1)), Seen::InOrder);
        assert_eq!(t.observe(6, &at(2)), Seen::InOrder);
        assert_eq!(t.observe(9, &at(3)), Seen::Ahead);
        // Overlapping connections: 7 and 8 arrive late, and fill the hole.
        assert_eq!(t.observe(8, &at(4)), Seen::Filled);
        assert_eq!(t.observe(7, &at(5)), Seen::Filled);
        assert!(t.holes.is_empty());
        assert_eq!(t.observe(7, &at(6)), Seen::Duplicate);
        assert_eq!(t.observe(12, &at(7)), Seen::Ahead);
        assert_eq!(t.observe(11, &at(8)), Seen::Filled);
        let left = t.finish(None);
        assert_eq!(left.len(), 1);
        assert_eq!((left[0].0, left[0].1, left[0].2.line), (10, 10, 7));
    }

    #[test]
    fn old_holes_settle() {
        let mut t = SeqTracker::default();
        t.observe(0, &at(1));
        t.observe(5, &at(2));
        assert!(t.settled().is_empty());
        t.observe(5 + REORDER_WINDOW + 10, &at(3));
        let s = t.settled();
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].0, s[0].1), (1, 4));
    }
}
