//! Scanning many files: one after the other, or merged in receive-time order (one open file
//! per stream and a heap of their next timestamps), and probing a file's first and last time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::ReadError;
use super::entry::{Entry, looks_like_envelope, quick_ts};
use super::files::{NameHints, RecordingFile, SortKey};
use super::lines::{LineInfo, LineReader};
use crate::config::Format;

/// In which order a [`Scan`] delivers lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// File by file, in the order found.
    Files,
    /// By receive time across streams (each stream's files one after the other).
    Merged,
}

/// One thing a [`Scan`] delivers.
#[derive(Debug)]
pub enum Item<'a> {
    /// A line of a file.
    Line {
        /// The file.
        file: &'a RecordingFile,
        /// What its lines are.
        format: Format,
        /// Where the line is.
        info: LineInfo,
        /// The line, without newline.
        bytes: &'a [u8],
        /// Stream of the file, for raw-format lines (from the file name or the sidecar).
        raw_stream: &'a str,
        /// Interval start from the file name, for raw-format lines.
        raw_ts: Option<u64>,
    },
    /// A file was read to its end.
    FileEnd {
        /// The file.
        file: &'a RecordingFile,
        /// What its lines are.
        format: Format,
        /// Lines read.
        lines: u64,
    },
    /// A file could not be opened or read to its end.
    Error(&'a ReadError),
}

/// What a cursor has ready to deliver.
enum Pending {
    Line(LineInfo),
    FileEnd {
        file: usize,
        format: Format,
        lines: u64,
    },
    Error(ReadError),
}

/// One open file of a cursor.
struct Open {
    file: usize,
    reader: LineReader,
    format: Format,
    hints: NameHints,
}

/// Walks a list of files in order (one stream's files, or all files for [`Order::Files`]).
struct Cursor {
    files: Vec<RecordingFile>,
    next_file: usize,
    open: Option<Open>,
    pending: Option<Pending>,
    /// Latest receive time seen: the sort key of lines without one.
    last_ts: u64,
    /// The stream of raw-format files (from the sidecar), when known.
    raw_stream: Option<String>,
    /// A file that failed part way still gets its `FileEnd` (file, format, lines read).
    end_after_error: Option<(usize, Format, u64)>,
}

impl Cursor {
    fn new(files: Vec<RecordingFile>, raw_stream: Option<String>) -> Self {
        Self {
            files,
            next_file: 0,
            open: None,
            pending: None,
            last_ts: 0,
            raw_stream,
            end_after_error: None,
        }
    }

    /// Replaces the delivered item with the next one (none when the cursor is done).
    fn fill(&mut self, count: &Arc<AtomicU64>) {
        if let Some(Pending::FileEnd { .. }) = self.pending.take() {
            self.open = None;
        }
        if let Some((file, format, lines)) = self.end_after_error.take() {
            self.pending = Some(Pending::FileEnd {
                file,
                format,
                lines,
            });
            return;
        }
        if let Some(open) = &mut self.open {
            self.pending = Some(match open.reader.advance() {
                Ok(Some(info)) => Pending::Line(info),
                Ok(None) => Pending::FileEnd {
                    file: open.file,
                    format: open.format,
                    lines: open.reader.lines_read(),
                },
                Err(e) => {
                    self.end_after_error = Some((open.file, open.format, open.reader.lines_read()));
                    Pending::Error(e)
                }
            });
            return;
        }
        let Some(file) = self.files.get(self.next_file) else {
            return;
        };
        let idx = self.next_file;
        self.next_file += 1;
        let mut reader = match LineReader::open(file, Some(count.clone())) {
            Ok(r) => r,
            Err(e) => {
                self.pending = Some(Pending::Error(e));
                return;
            }
        };
        let first = match reader.advance() {
            Ok(first) => first,
            Err(e) => {
                self.end_after_error = Some((idx, Format::Envelope, reader.lines_read()));
                self.pending = Some(Pending::Error(e));
                return;
            }
        };
        let format = if file.is_events {
            Format::Envelope
        } else {
            match first {
                Some(info) if !info.torn => {
                    if looks_like_envelope(reader.line()) {
                        Format::Envelope
                    } else {
                        Format::Raw
                    }
                }
                // An empty file, or a single torn line: a torn envelope line still starts like
                // one.
                _ => {
                    if first.is_none() || reader.line().starts_with(b"{\"ts\":") {
                        Format::Envelope
                    } else {
                        Format::Raw
                    }
                }
            }
        };
        let hints = file.name_hints();
        if format == Format::Raw
            && let Some(start) = hints.start_ns
        {
            self.last_ts = self.last_ts.max(start);
        }
        self.pending = Some(match first {
            Some(info) => Pending::Line(info),
            None => Pending::FileEnd {
                file: idx,
                format,
                lines: 0,
            },
        });
        self.open = Some(Open {
            file: idx,
            reader,
            format,
            hints,
        });
    }

    /// Sort key of the pending item.
    fn key(&mut self) -> u64 {
        if let (Some(Pending::Line(info)), Some(open)) = (&self.pending, &self.open)
            && open.format == Format::Envelope
            && !info.torn
            && let Some(ts) = quick_ts(open.reader.line())
        {
            self.last_ts = self.last_ts.max(ts);
            return ts;
        }
        self.last_ts
    }
}

/// Reads many files as one sequence of [`Item`]s, in file order or merged by receive time.
///
/// ```no_run
/// # fn main() -> Result<(), wsrec::read::ReadError> {
/// use wsrec::read::{Item, Order, Scan, discover};
/// let files = discover(&["./data".into()])?;
/// let mut scan = Scan::new(files, Order::Merged);
/// while let Some(item) = scan.next_item() {
///     if let Item::Line { bytes, .. } = item {
///         println!("{}", String::from_utf8_lossy(bytes));
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Scan {
    cursors: Vec<Cursor>,
    /// (sort key, cursor) of cursors with a pending item.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    /// The cursor whose item was delivered last; it moves on at the next call.
    current: Option<usize>,
    count: Arc<AtomicU64>,
    total: u64,
    /// Bytes of the lines delivered (newlines included), as the files hold them uncompressed.
    delivered: u64,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("cursors", &self.cursors.len())
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Scan {
    /// A scan over `files` in `order`. For [`Order::Merged`], each file's first line is read
    /// here to group files by stream.
    pub fn new(files: Vec<RecordingFile>, order: Order) -> Self {
        let total = files.iter().map(|f| f.size).sum();
        let cursors = match order {
            Order::Files => vec![Cursor::new(files, None)],
            Order::Merged => chains(files)
                .into_iter()
                .map(|c| Cursor::new(c.files, c.raw_stream))
                .collect(),
        };
        let count = Arc::new(AtomicU64::new(0));
        let mut heap = BinaryHeap::new();
        let mut cursors = cursors;
        for (i, c) in cursors.iter_mut().enumerate() {
            c.fill(&count);
            if c.pending.is_some() {
                heap.push(Reverse((c.key(), i)));
            }
        }
        Self {
            cursors,
            heap,
            current: None,
            count,
            total,
            delivered: 0,
        }
    }

    /// Bytes of the lines delivered so far, uncompressed (what a progress bar over
    /// [`content_size`] measures).
    pub fn content_read(&self) -> u64 {
        self.delivered
    }

    /// Bytes read from disk so far (compressed size for compressed files).
    pub fn bytes_read(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Size on disk of all files.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// The next item, or `None` when every file is done.
    pub fn next_item(&mut self) -> Option<Item<'_>> {
        if let Some(i) = self.current.take() {
            let c = &mut self.cursors[i];
            c.fill(&self.count);
            if c.pending.is_some() {
                let key = c.key();
                self.heap.push(Reverse((key, i)));
            }
        }
        let Reverse((_, i)) = self.heap.pop()?;
        self.current = Some(i);
        let c = &self.cursors[i];
        match c.pending.as_ref()? {
            Pending::Error(e) => Some(Item::Error(e)),
            Pending::FileEnd {
                file,
                format,
                lines,
            } => Some(Item::FileEnd {
                file: &c.files[*file],
                format: *format,
                lines: *lines,
            }),
            Pending::Line(info) => {
                let open = c.open.as_ref()?;
                self.delivered += open.reader.line().len() as u64 + u64::from(!info.torn);
                Some(Item::Line {
                    file: &c.files[open.file],
                    format: open.format,
                    info: *info,
                    bytes: open.reader.line(),
                    raw_stream: c.raw_stream.as_deref().unwrap_or(&open.hints.stream),
                    raw_ts: open.hints.start_ns,
                })
            }
        }
    }
}

/// The uncompressed size of `files`: a compressed file's from its manifest (`bytes`), or, without
/// one, its size on disk times the ratio of the compressed files that have one (8 when none has);
/// a plain file's size on disk. Progress bars measure [`Scan::content_read`] against it, so a
/// recording of compressed files neither starts far along nor shows rates of the decompressed
/// read-ahead.
pub fn content_size(files: &[RecordingFile]) -> u64 {
    let compressed: Vec<(&RecordingFile, Option<u64>)> = files
        .iter()
        .filter(|f| f.codec != super::Codec::Plain)
        .map(|f| (f, manifest_bytes(&f.path)))
        .collect();
    let (known_disk, known_content) = compressed
        .iter()
        .filter_map(|(f, b)| b.map(|b| (f.size, b)))
        .fold((0u64, 0u64), |(d, c), (fd, fc)| (d + fd, c + fc));
    let ratio = if known_disk > 0 {
        known_content as f64 / known_disk as f64
    } else {
        8.0
    };
    let plain: u64 = files
        .iter()
        .filter(|f| f.codec == super::Codec::Plain)
        .map(|f| f.size)
        .sum();
    let packed: u64 = compressed
        .iter()
        .map(|(f, b)| b.unwrap_or((f.size as f64 * ratio) as u64))
        .sum();
    plain + packed
}

/// The `bytes` (uncompressed size) of the manifest of the sealed file `path`, under its name or
/// the one versions before wrote.
fn manifest_bytes(path: &Path) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Bytes {
        bytes: u64,
    }
    let plain = PathBuf::from(crate::fsutil::strip_compressed(&path.to_string_lossy()));
    [
        crate::fsutil::map_file_name(&plain, crate::fsutil::manifest_name),
        crate::fsutil::map_file_name(&plain, crate::fsutil::old_manifest_name),
    ]
    .iter()
    .find_map(|m| std::fs::read(m).ok())
    .and_then(|b| serde_json::from_slice::<Bytes>(&b).ok())
    .map(|b| b.bytes)
}

/// One stream's files in time order.
struct Chain {
    files: Vec<RecordingFile>,
    raw_stream: Option<String>,
}

/// What the first complete line of a file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// Stream of the first envelope record.
    pub stream: Option<String>,
    /// Receive time of the first envelope record.
    pub first_ts: Option<u64>,
    /// The first line is a raw message.
    pub raw: bool,
}

/// Reads a file's first complete line. Unreadable or empty files give an empty probe.
pub fn probe(file: &RecordingFile) -> Probe {
    let Ok(mut reader) = LineReader::open(file, None) else {
        return Probe::default();
    };
    match reader.advance() {
        Ok(Some(info)) if !info.torn => {
            let line = reader.line();
            if looks_like_envelope(line) || file.is_events {
                match Entry::parse(line) {
                    Ok(e) => Probe {
                        stream: Some(e.stream().to_owned()),
                        first_ts: Some(e.ts()),
                        raw: false,
                    },
                    Err(_) => Probe {
                        first_ts: quick_ts(line),
                        ..Probe::default()
                    },
                }
            } else {
                Probe {
                    raw: true,
                    ..Probe::default()
                }
            }
        }
        _ => Probe::default(),
    }
}

/// Groups files into per-stream chains ordered by time. A raw data file goes with its stream
/// as named by its sidecar (or its file name); a sidecar forms its own chain.
fn chains(files: Vec<RecordingFile>) -> Vec<Chain> {
    // (stream, is sidecar) -> files with their first ts.
    type Group = Vec<(u64, SortKey, RecordingFile)>;
    let mut groups: BTreeMap<(String, bool), Group> = BTreeMap::new();
    let mut sidecar_stream: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut probes = Vec::with_capacity(files.len());
    for f in files {
        let p = probe(&f);
        if f.is_events
            && let Some(s) = &p.stream
        {
            let data = crate::fsutil::events_data_name(&f.logical_name()).unwrap_or_default();
            let dir = f.path.parent().map(Path::to_owned).unwrap_or_default();
            sidecar_stream.insert(dir.join(data), s.clone());
        }
        probes.push((f, p));
    }
    let mut raw_streams: BTreeMap<String, String> = BTreeMap::new();
    for (f, p) in probes {
        let hints = f.name_hints();
        let (stream, raw) = match (&p.stream, p.raw) {
            (Some(s), _) => (s.clone(), false),
            (None, true) => {
                let dir = f.path.parent().map(Path::to_owned).unwrap_or_default();
                let s = sidecar_stream
                    .get(&dir.join(f.logical_name()))
                    .cloned()
                    .unwrap_or(hints.stream.clone());
                (s, true)
            }
            (None, false) => (hints.stream.clone(), false),
        };
        let ts = p.first_ts.or(hints.start_ns).unwrap_or(0);
        let key = (
            format!("{}{}", if raw { "raw:" } else { "" }, stream),
            f.is_events,
        );
        if raw {
            raw_streams.insert(key.0.clone(), stream);
        }
        let sort = f.sort_key();
        groups.entry(key).or_default().push((ts, sort, f));
    }
    groups
        .into_iter()
        .map(|(key, mut files)| {
            files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            Chain {
                raw_stream: raw_streams.get(&key.0).cloned(),
                files: files.into_iter().map(|(_, _, f)| f).collect(),
            }
        })
        .collect()
}
