//! The per-file manifest: a small JSON sidecar written when a file is closed, so a file can be
//! trusted without re-reading it (and checked cheaply by `wsrec verify`).
//!
//! `X.jsonl` gets `X.manifest.json` (versions before wrote `X.jsonl.manifest.json`, which
//! readers still take) with its line and byte counts, an XXH3-64 of its content, the first and
//! last `seq` and receive time of every connection in it, and how many sequence gaps and
//! disconnects it holds. The figures describe the uncompressed content, so they stay valid after
//! `X.jsonl` becomes `X.jsonl.zst`. A raw stream's sidecar `X.events.ndjson` gets
//! `X.events.manifest.json`. No side file has `.jsonl` in its name, so data globs never match
//! one (see [`crate::fsutil`]).
//!
//! The writer fills a manifest line by line as it writes ([`ManifestBuilder`]); startup recovery
//! (the `recover` module) rebuilds one by reading a file a crash left open, and marks it
//! `recovered`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One connection's messages within a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnSpan {
    /// Connection number.
    pub conn: u64,
    /// Messages of this connection in the file.
    pub messages: u64,
    /// First stream `seq`.
    pub first_seq: u64,
    /// Last stream `seq`.
    pub last_seq: u64,
    /// First receive time (ns).
    pub first_ts: u64,
    /// Last receive time (ns).
    pub last_ts: u64,
}

/// The manifest of one closed file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// File name (without directory), uncompressed form.
    pub file: String,
    /// Stream name.
    pub stream: String,
    /// `envelope`, `raw` or `events` (a raw stream's sidecar).
    pub format: String,
    /// Lines in the file.
    pub lines: u64,
    /// Bytes in the file.
    pub bytes: u64,
    /// XXH3-64 of the file's content (`xxhsum -H3`), 16 lower-case hex digits. A fast
    /// integrity check, not a cryptographic one: SHA-256 would cost about 150 ns of CPU per
    /// message at full speed.
    pub xxh3_64: String,
    /// Start of the rotation interval the file covers (ns since the epoch).
    pub interval_start_ns: u64,
    /// Per connection: first/last seq and receive time.
    pub connections: Vec<ConnSpan>,
    /// Places where `seq` jumps forward (messages dropped before the writer).
    pub seq_gaps: u64,
    /// Event lines in the file (envelope) or that belong to it (raw data files: none here).
    pub events: u64,
    /// `disconnected` events in the file.
    pub disconnects: u64,
    /// Snapshot lines (REST order-book snapshots) in the file; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub snapshots: u64,
    /// Lines received for this file that a write error kept out of it (counted and marked by a
    /// `write_error_gap` event); the other figures describe the lines in the file.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost_lines: u64,
    /// The file was left open by a recorder that did not stop cleanly, and this manifest was
    /// rebuilt from its content at the next start. The figures match the file as it is; a raw
    /// data file's `connections` are then empty (its lines carry no `conn`, `seq` or time).
    #[serde(default, skip_serializing_if = "is_false")]
    pub recovered: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a file's lines are: what a line lost to a write error stood for depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Envelope records: messages and events.
    Envelope,
    /// A raw stream's data file: one message per line, nothing around it.
    Raw,
    /// A raw stream's sidecar: envelope records of events and of messages raw cannot hold.
    Events,
}

impl FileKind {
    /// The name the manifest gives the format.
    pub fn name(self) -> &'static str {
        match self {
            Self::Envelope => "envelope",
            Self::Raw => "raw",
            Self::Events => "events",
        }
    }
}

/// The manifest path of a data file (`X.jsonl` -> `X.manifest.json`, see
/// [`crate::fsutil::manifest_name`]).
pub fn path_for(data: &Path) -> PathBuf {
    crate::fsutil::map_file_name(data, crate::fsutil::manifest_name)
}

/// The manifest path of a sealed data file, compressed or not (`X.jsonl.zst` and `X.jsonl` both
/// have `X.manifest.json`).
pub fn path_for_sealed(data: &Path) -> PathBuf {
    path_for(&uncompressed(data))
}

/// Both paths a sealed data file's manifest may have: the current one, then the one versions
/// before it wrote (`X.jsonl.manifest.json`). Readers look for both, cleaners remove both.
pub fn paths_for_sealed(data: &Path) -> [PathBuf; 2] {
    let plain = uncompressed(data);
    [
        path_for(&plain),
        crate::fsutil::map_file_name(&plain, crate::fsutil::old_manifest_name),
    ]
}

/// The manifest of a sealed data file as found on disk: the current name, else the old one,
/// else (neither exists) the current name.
pub fn existing_for_sealed(data: &Path) -> PathBuf {
    let [new, old] = paths_for_sealed(data);
    if !new.exists() && old.exists() {
        old
    } else {
        new
    }
}

fn uncompressed(data: &Path) -> PathBuf {
    PathBuf::from(crate::fsutil::strip_compressed(&data.to_string_lossy()))
}

/// Builds a [`Manifest`] line by line in the writer.
#[derive(Debug, Default)]
pub struct ManifestBuilder {
    /// The manifest being filled (counts and hash are filled in at close).
    pub manifest: Manifest,
    /// Index of the span updated last (messages come in runs of one connection).
    last: usize,
    /// The last `seq` written, over all connections.
    last_seq: Option<u64>,
}

impl ManifestBuilder {
    /// A builder for a file of `stream` in `format` covering the interval at `interval_start_ns`.
    pub fn new(file: &Path, stream: &str, format: &str, interval_start_ns: u64) -> Self {
        Self {
            manifest: Manifest {
                file: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                stream: stream.to_owned(),
                format: format.to_owned(),
                interval_start_ns,
                ..Manifest::default()
            },
            last: 0,
            last_seq: None,
        }
    }

    /// Records a message line.
    #[inline]
    pub fn message(&mut self, conn: u64, seq: u64, ts: u64) {
        // `seq` is shared by a stream's connections: a jump forward means messages were dropped;
        // going back only happens while two connections overlap.
        if let Some(last) = self.last_seq
            && seq > last + 1
        {
            self.manifest.seq_gaps += 1;
        }
        self.last_seq = Some(self.last_seq.map_or(seq, |l| l.max(seq)));
        let spans = &mut self.manifest.connections;
        let i = if spans.get(self.last).is_some_and(|s| s.conn == conn) {
            self.last
        } else if let Some(i) = spans.iter().position(|s| s.conn == conn) {
            i
        } else {
            spans.push(ConnSpan {
                conn,
                messages: 0,
                first_seq: seq,
                last_seq: seq,
                first_ts: ts,
                last_ts: ts,
            });
            spans.len() - 1
        };
        self.last = i;
        let span = &mut spans[i];
        span.last_seq = seq;
        span.last_ts = ts;
        span.messages += 1;
    }

    /// Records an envelope line read back from a file (a message, an event or a snapshot) and returns it
    /// parsed; a line that is no envelope record is not recorded, and `None`.
    pub fn line<'a>(&mut self, line: &'a [u8]) -> Option<crate::read::Entry<'a>> {
        use crate::read::Entry;
        let entry = Entry::parse(line).ok()?;
        match &entry {
            Entry::Message(m) => self.message(m.conn, m.seq, m.ts),
            Entry::Event(e) => self.count_event(e.name == "disconnected"),
            Entry::Snapshot(_) => self.snapshot(),
        }
        Some(entry)
    }

    /// Records a snapshot line.
    pub fn snapshot(&mut self) {
        self.manifest.snapshots += 1;
    }

    /// Records an event line (`body` starts with `"event":"<name>"`).
    pub fn event(&mut self, body: &[u8]) {
        self.count_event(body.starts_with(b"\"event\":\"disconnected\""));
    }

    /// Records an event line, a `disconnected` one when `disconnected`.
    pub fn count_event(&mut self, disconnected: bool) {
        self.manifest.events += 1;
        if disconnected {
            self.manifest.disconnects += 1;
        }
    }
}

/// Writes a manifest under a temporary name, syncs it, and renames it into place, so a reader
/// never sees half of one.
///
/// # Errors
/// The temporary file cannot be written or synced, or the rename fails.
pub fn write(path: &Path, m: &Manifest) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut body = serde_json::to_vec(m).map_err(std::io::Error::other)?;
    body.push(b'\n');
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_gaps_and_events() {
        let mut b = ManifestBuilder::new(Path::new("d/x.jsonl"), "s", "envelope", 7);
        b.event(br#""event":"connected","url":"x""#);
        for (conn, seq) in [(1, 0), (1, 1), (1, 3), (2, 4), (1, 5), (2, 5)] {
            b.message(conn, seq, seq * 10);
        }
        b.event(br#""event":"disconnected","reason":"x""#);
        // A snapshot line read back (startup recovery) is counted as one, not as a message.
        let line = br#"{"ts":70,"stream":"s","conn":2,"snapshot":{"symbol":"X"},"text":"<b>"}"#;
        assert!(matches!(
            b.line(line),
            Some(crate::read::Entry::Snapshot(_))
        ));
        let m = b.manifest;
        assert_eq!(m.snapshots, 1);
        assert_eq!(m.file, "x.jsonl");
        assert_eq!(m.events, 2);
        assert_eq!(m.disconnects, 1);
        assert_eq!(m.seq_gaps, 1, "only 1 -> 3 skips numbers");
        assert_eq!(
            m.connections,
            [
                ConnSpan {
                    conn: 1,
                    messages: 4,
                    first_seq: 0,
                    last_seq: 5,
                    first_ts: 0,
                    last_ts: 50
                },
                ConnSpan {
                    conn: 2,
                    messages: 2,
                    first_seq: 4,
                    last_seq: 5,
                    first_ts: 40,
                    last_ts: 50
                },
            ]
        );
        assert_eq!(
            path_for(Path::new("d/x.jsonl")),
            PathBuf::from("d/x.manifest.json")
        );
        assert_eq!(
            paths_for_sealed(Path::new("d/x.jsonl.zst")),
            [
                PathBuf::from("d/x.manifest.json"),
                PathBuf::from("d/x.jsonl.manifest.json")
            ]
        );
    }
}
