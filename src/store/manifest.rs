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
//! # The chain
//!
//! Each manifest also places its file in its stream's chain (`chain`): the name and XXH3-64 of
//! the file before it in the same stream and format (`prev`), or `prev: null` for the first file
//! a recorder run wrote for the stream, with the run's start (`run_start_ns`); the files a clean
//! stop closes, after the run's `disconnected` events, say `run_end: true`. So `wsrec verify`
//! sees a missing first or middle file (a `prev` no file answers), a missing last file (a chain
//! that stops without `run_end`), and a changed predecessor (its hash differs). Each recorder run
//! starts a chain of its own: a run that was deleted whole, files and manifests, leaves no trace
//! in the others. The names are the uncompressed ones, so compression keeps the chain. Manifests
//! written before chains have no `chain`, and are checked as before.
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
    /// The stream's tags (`tags` in the config, the top-level ones merged in) when the file was
    /// written; absent when it has none, and in manifests written before tags.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
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
    /// Where the file sits in its stream's chain; absent in manifests written before chains and
    /// in those of recovered files (the crash lost where they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Chain>,
}

/// A file's place in its stream's chain of files (one chain per stream, format and run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    /// When the recorder run that wrote the chain started (ns since the epoch); for a `merge`'s
    /// output, the start of its first file's interval (the same merge gives the same files).
    pub run_start_ns: u64,
    /// The file before this one in the chain; `None` (`null`) for the run's first file.
    pub prev: Option<PrevFile>,
    /// The file was closed by the clean end of its run, after the run's closing records: the
    /// chain ends here.
    #[serde(default, skip_serializing_if = "is_false")]
    pub run_end: bool,
}

/// The file before another in a chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrevFile {
    /// Its name (without directory), uncompressed form.
    pub file: String,
    /// Its XXH3-64, as in its own manifest.
    pub xxh3_64: String,
}

/// Links the files of one writer (a recorder run, a `merge`) into chains, one per stream and
/// format: each manifest handed to [`Chainer::link`] names the one linked before it.
#[derive(Debug)]
pub struct Chainer {
    run_start_ns: u64,
    /// Per stream and format: the last file linked (its final path) and its hash.
    last: std::collections::HashMap<(String, String), (PathBuf, String)>,
}

impl Chainer {
    /// Chains for a run that started at `run_start_ns`.
    pub fn new(run_start_ns: u64) -> Self {
        Self {
            run_start_ns,
            last: std::collections::HashMap::new(),
        }
    }

    /// Fills in the place in its chain of `m`, the manifest of the file at `path` (its final,
    /// uncompressed path; the hash must be final), and makes it the chain's last file;
    /// `run_end` when the run ends with it (the chain then starts over).
    pub fn link(&mut self, m: &mut Manifest, path: &Path, run_end: bool) {
        let key = (m.stream.clone(), m.format.clone());
        let before = if run_end {
            self.last.remove(&key)
        } else {
            self.last.insert(key, (path.to_owned(), m.xxh3_64.clone()))
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        m.chain = Some(Chain {
            run_start_ns: self.run_start_ns,
            prev: before.map(|(prev, xxh3_64)| PrevFile {
                file: relative(dir, &prev).to_string_lossy().into_owned(),
                xxh3_64,
            }),
            run_end,
        });
    }
}

/// `to` as a path relative to the directory `from` (`a/b`, `a/c/x` -> `../c/x`).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c);
    }
    out
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

/// The data file a manifest path belongs to (the inverse of [`path_for`]); `None` for a path
/// that is no manifest's. `X.manifest.json` belongs to `X.jsonl`, `X.events.manifest.json` to
/// the sidecar `X.events.ndjson`, and a manifest of earlier versions, `X.jsonl.manifest.json`, to
/// `X.jsonl`; a data file of another extension (`X.txt.manifest.json`) is taken when it exists.
pub fn data_for(manifest: &Path) -> Option<PathBuf> {
    use crate::fsutil::{DATA_EXT, EVENTS_EXT, exists_in_any_form};
    let name = manifest.file_name()?.to_str()?;
    let stem = name.strip_suffix(crate::fsutil::MANIFEST_SUFFIX)?;
    if stem.is_empty() || stem.starts_with('.') {
        return None;
    }
    if stem.ends_with(DATA_EXT) {
        return Some(manifest.with_file_name(stem));
    }
    let as_named = manifest.with_file_name(stem);
    if stem.contains('.') && !stem.ends_with(".events") && exists_in_any_form(&as_named) {
        return Some(as_named);
    }
    Some(match stem.strip_suffix(".events") {
        Some(base) => manifest.with_file_name(format!("{base}{EVENTS_EXT}")),
        None => manifest.with_file_name(format!("{stem}{DATA_EXT}")),
    })
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
        let data = Path::new("d/x.jsonl");
        assert_eq!(data_for(&path_for(data)).as_deref(), Some(data));
        let sidecar = Path::new("d/x.events.ndjson");
        assert_eq!(data_for(&path_for(sidecar)).as_deref(), Some(sidecar));
        assert_eq!(
            data_for(Path::new("d/x.jsonl.manifest.json")).as_deref(),
            Some(data)
        );
        assert_eq!(data_for(Path::new("d/x.jsonl")), None);
    }

    /// Issue 21: tags are written when a stream has some, and manifests from before tags
    /// still read.
    #[test]
    fn tags_are_optional_in_manifests() {
        let old = r#"{"file":"x.jsonl","stream":"s","format":"envelope","lines":1,"bytes":2,"xxh3_64":"00","interval_start_ns":0,"connections":[],"seq_gaps":0,"events":1,"disconnects":0}"#;
        let m: Manifest = serde_json::from_str(old).unwrap();
        assert!(m.tags.is_empty());
        assert!(!serde_json::to_string(&m).unwrap().contains("tags"));
        let tagged = Manifest {
            tags: [("region".to_owned(), "eu".to_owned())].into(),
            ..m
        };
        let text = serde_json::to_string(&tagged).unwrap();
        assert!(text.contains(r#""tags":{"region":"eu"}"#), "{text}");
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), tagged);
    }

    #[test]
    fn a_chain_names_each_predecessor_and_restarts_after_its_end() {
        let mut c = Chainer::new(9);
        let file = |name: &str, format: &str| Manifest {
            file: name.into(),
            stream: "s".into(),
            format: format.into(),
            xxh3_64: format!("{name}-hash"),
            ..Manifest::default()
        };
        let (mut a, mut e, mut b, mut z) = (
            file("a", "raw"),
            file("a.events", "events"),
            file("b", "raw"),
            file("c", "raw"),
        );
        c.link(&mut a, Path::new("d/a"), false);
        c.link(&mut e, Path::new("d/a.events"), false);
        c.link(&mut b, Path::new("d/b"), false);
        c.link(&mut z, Path::new("d/e/c"), true);
        let prev = |m: &Manifest| m.chain.as_ref().unwrap().prev.clone().map(|p| p.file);
        assert_eq!(prev(&a), None);
        assert_eq!(prev(&e), None, "each format has a chain of its own");
        assert_eq!(prev(&b).as_deref(), Some("a"));
        assert_eq!(
            b.chain.as_ref().unwrap().prev.as_ref().unwrap().xxh3_64,
            "a-hash"
        );
        assert_eq!(
            prev(&z).as_deref(),
            Some("../b"),
            "relative to its own directory"
        );
        assert!(z.chain.as_ref().unwrap().run_end);
        let mut next = file("d", "raw");
        c.link(&mut next, Path::new("d/d"), false);
        assert_eq!(prev(&next), None, "after its end a chain starts over");
        assert_eq!(next.chain.unwrap().run_start_ns, 9);
    }
}
