//! The read side of a recording, shared by `cat`, `verify`, `stats` and `replay`: finding the
//! recording files under the paths given, opening plain, zstd and gzip files alike (also `.open`
//! files still being written), streaming their lines in constant memory, and parsing envelope
//! lines without re-serialising the message.
//!
//! Nothing here panics or gives up on bad input: a line that is not a record is handed to the
//! caller as such (with its file and line number), the last line of a file that has no newline
//! yet is marked *torn* (normal for an `.open` file, damage for a closed one), and a file that
//! cannot be read to its end yields an error item after the lines that could be read.
//!
//! [`Scan`] walks the files either one after the other or merged in receive-time order: files
//! of one stream follow each other in time (that is how the writer makes them), so a merge keeps
//! one open file per stream and a heap of their next timestamps.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::fsutil::OPEN_SUFFIX;

/// A longer line is skipped and reported rather than buffered (a file without newlines must
/// not take all memory). Far above the largest message the recorder accepts by default
/// (64 MiB, base64-encoded in the envelope).
pub const MAX_LINE: usize = 512 * 1024 * 1024;

/// Buffer size of the readers.
const READ_BUF: usize = 256 * 1024;

/// Why a file could not be found, opened or read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A path given on the command line does not exist.
    #[error(
        "{}: no such file or directory; give recording files (.jsonl, .jsonl.zst, .jsonl.gz) or directories that hold them",
        path.display()
    )]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A file or directory could not be opened or listed.
    #[error("cannot open {}: {source}; check that it exists and is readable", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading stopped part way (I/O error, or compressed data that is damaged or cut short).
    #[error(
        "{}: cannot read past line {line}: {source}{hint}; the lines before it were read",
        path.display(),
        hint = if *compressed { " (the compressed data is damaged or cut short)" } else { "" }
    )]
    Stream {
        /// The file.
        path: PathBuf,
        /// Lines read before the failure.
        line: u64,
        /// Whether the file is compressed.
        compressed: bool,
        /// Why.
        source: io::Error,
    },
}

/// How a file's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Plain text.
    Plain,
    /// zstd (`.zst`).
    Zstd,
    /// gzip (`.gz`).
    Gzip,
}

/// What the lines of a file are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Envelope records (`{"ts":…,"stream":…}`), as in the default format and in sidecars.
    Envelope,
    /// One message per line, verbatim (`format = "raw"`); no time or stream in the line.
    Raw,
}

/// One recording file, classified by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingFile {
    /// The path as found.
    pub path: PathBuf,
    /// How it is stored.
    pub codec: Codec,
    /// It ends in `.open`: still being written, or left by a recorder that did not stop cleanly.
    pub is_open: bool,
    /// It is a raw-format stream's sidecar (`X.events.jsonl`): events and unsafe messages.
    pub is_events: bool,
    /// Size on disk when found (for progress).
    pub size: u64,
}

impl RecordingFile {
    /// Classifies `path` by its name (`x.jsonl`, `x.jsonl.zst`, `x.jsonl.gz`, each maybe `.open`).
    pub fn new(path: PathBuf) -> Self {
        let name = file_name(&path);
        let (rest, is_open) = match name.strip_suffix(OPEN_SUFFIX) {
            Some(r) => (r, true),
            None => (name.as_str(), false),
        };
        let codec = if rest.ends_with(".zst") {
            Codec::Zstd
        } else if rest.ends_with(".gz") {
            Codec::Gzip
        } else {
            Codec::Plain
        };
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let is_events = logical_name(&name).ends_with(".events.jsonl");
        Self {
            path,
            codec,
            is_open,
            is_events,
            size,
        }
    }

    /// True for names a directory walk picks up: `*.jsonl`, `*.jsonl.zst`, `*.jsonl.gz`, each
    /// maybe with `.open`; never hidden files or temporaries.
    pub fn is_recording_name(name: &str) -> bool {
        !name.starts_with('.') && logical_name(name).ends_with(".jsonl")
    }

    /// The file name without `.open` and compression suffix (`x.jsonl.zst.open` -> `x.jsonl`).
    pub fn logical_name(&self) -> String {
        logical_name(&file_name(&self.path)).to_owned()
    }

    /// The stream name and interval start the file name suggests, for raw-format files whose
    /// lines carry neither: the default template (`{stream}-%Y%m%dT%H%M%SZ.jsonl`) and the Go
    /// streamer's (`{stream}_{start_unix}.jsonl`) are recognised; otherwise the name's stem.
    pub fn name_hints(&self) -> NameHints {
        name_hints(&self.logical_name())
    }

    /// Ordering within a directory: by base name, then part number (`x.jsonl` before
    /// `x.1.jsonl` before `x.2.jsonl`), data before sidecar.
    fn sort_key(&self) -> SortKey {
        let parent = self.path.parent().map(Path::to_owned).unwrap_or_default();
        let logical = self.logical_name();
        let (base, part) = split_part(&logical);
        (
            parent,
            base.to_owned(),
            part,
            self.is_events,
            self.path.clone(),
        )
    }
}

/// Directory, base name, part number, sidecar flag, path.
type SortKey = (PathBuf, String, u32, bool, PathBuf);

/// What a file name says about its content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameHints {
    /// Stream name.
    pub stream: String,
    /// Start of the file's interval (ns), when the name holds it.
    pub start_ns: Option<u64>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn logical_name(name: &str) -> &str {
    crate::fsutil::strip_compressed(crate::fsutil::strip_open_name(name))
}

/// `x.3.jsonl` -> (`x`, 3); `x.jsonl` -> (`x`, 0); `x.events.jsonl` -> (`x`, 0).
fn split_part(logical: &str) -> (&str, u32) {
    let stem = logical.strip_suffix(".jsonl").unwrap_or(logical);
    let stem = stem.strip_suffix(".events").unwrap_or(stem);
    if let Some((base, n)) = stem.rsplit_once('.')
        && !n.is_empty()
        && n.len() < 10
        && n.bytes().all(|b| b.is_ascii_digit())
        && let Ok(part) = n.parse()
    {
        return (base, part);
    }
    (stem, 0)
}

fn name_hints(logical: &str) -> NameHints {
    let (base, _) = split_part(logical);
    // `{stream}-YYYYmmddTHHMMSSZ`
    if base.len() > 16 && base.is_char_boundary(base.len() - 16) {
        let (head, time) = base.split_at(base.len() - 16);
        if let Some(head) = head.strip_suffix('-')
            && let Ok(t) = chrono::NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%SZ")
            && let Some(ns) = t.and_utc().timestamp_nanos_opt()
        {
            return NameHints {
                stream: head.to_owned(),
                start_ns: u64::try_from(ns).ok(),
            };
        }
    }
    // `{stream}_{start_unix}`
    if let Some((head, secs)) = base.rsplit_once('_')
        && !head.is_empty()
        && (9..=11).contains(&secs.len())
        && secs.bytes().all(|b| b.is_ascii_digit())
        && let Ok(secs) = secs.parse::<u64>()
    {
        return NameHints {
            stream: head.to_owned(),
            start_ns: secs.checked_mul(1_000_000_000),
        };
    }
    NameHints {
        stream: base.to_owned(),
        start_ns: None,
    }
}

/// The recording files under `paths`: files as given (whatever their name), directories
/// walked recursively for recording names. Sorted by directory, then time order within each
/// directory; a file present both plain and compressed (the compressor's last step) is taken
/// once.
///
/// # Errors
/// A path does not exist, or a directory cannot be listed.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<RecordingFile>, ReadError> {
    let mut found = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ReadError::NotFound { path: p.clone() }
            } else {
                ReadError::Open {
                    path: p.clone(),
                    source,
                }
            }
        })?;
        if meta.is_dir() {
            let mut in_dir = Vec::new();
            walk(p, &mut in_dir)?;
            in_dir.sort_by_key(RecordingFile::sort_key);
            found.extend(in_dir);
        } else {
            found.push(RecordingFile::new(p.clone()));
        }
    }
    // The same logical file twice (given twice, or plain and compressed side by side): keep the
    // first form in the order plain, zstd, gzip, open.
    let rank = |f: &RecordingFile| match (f.is_open, f.codec) {
        (false, Codec::Plain) => 0,
        (false, Codec::Zstd) => 1,
        (false, Codec::Gzip) => 2,
        (true, _) => 3,
    };
    let mut best: BTreeMap<(PathBuf, String), (u8, usize)> = BTreeMap::new();
    for (i, f) in found.iter().enumerate() {
        let key = (
            f.path.parent().map(Path::to_owned).unwrap_or_default(),
            f.logical_name(),
        );
        let r = rank(f);
        best.entry(key)
            .and_modify(|e| {
                if r < e.0 {
                    *e = (r, i);
                }
            })
            .or_insert((r, i));
    }
    let keep: std::collections::BTreeSet<usize> = best.values().map(|v| v.1).collect();
    Ok(found
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, f)| f)
        .collect())
}

/// The recording files under `dir` (hidden directories left out), in walk order.
fn walk(dir: &Path, out: &mut Vec<RecordingFile>) -> Result<(), ReadError> {
    crate::fsutil::entries_under(dir, &mut |path, name| {
        if RecordingFile::is_recording_name(name) {
            out.push(RecordingFile::new(path));
        }
    })
    .map_err(|e| ReadError::Open {
        path: e.dir,
        source: e.source,
    })
}

/// Counts the bytes read from a file (before decompression), for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

/// Where the current line of a [`LineReader`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// 1-based line number.
    pub number: u64,
    /// The line has no newline: the file ends in the middle of it.
    pub torn: bool,
    /// The line was longer than [`MAX_LINE`] and was skipped; [`LineReader::line`] is empty.
    pub too_long: bool,
}

/// Reads one file line by line into one reused buffer.
pub struct LineReader {
    path: PathBuf,
    compressed: bool,
    inner: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    number: u64,
    failed: bool,
}

impl std::fmt::Debug for LineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineReader")
            .field("path", &self.path)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl LineReader {
    /// Opens `file`; `count` (if any) is advanced by the bytes read from disk.
    ///
    /// An `.open` file renamed to its final name since it was found (the recorder closed it)
    /// is opened under that name.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(file: &RecordingFile, count: Option<Arc<AtomicU64>>) -> Result<Self, ReadError> {
        let opened = match File::open(&file.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && file.is_open => {
                File::open(crate::fsutil::strip_open(&file.path))
            }
            r => r,
        };
        let f = opened.map_err(|source| ReadError::Open {
            path: file.path.clone(),
            source,
        })?;
        let raw: Box<dyn Read + Send> = match count {
            Some(count) => Box::new(Counting { inner: f, count }),
            None => Box::new(f),
        };
        Self::from_reader(file.path.clone(), file.codec, raw)
    }

    /// A reader over any byte source (tests, embedded data).
    ///
    /// # Errors
    /// A zstd decoder cannot be set up.
    pub fn from_reader(
        path: PathBuf,
        codec: Codec,
        raw: Box<dyn Read + Send>,
    ) -> Result<Self, ReadError> {
        let inner: Box<dyn BufRead + Send> = match codec {
            Codec::Plain => Box::new(BufReader::with_capacity(READ_BUF, raw)),
            Codec::Zstd => {
                let d =
                    zstd::stream::read::Decoder::new(raw).map_err(|source| ReadError::Open {
                        path: path.clone(),
                        source,
                    })?;
                Box::new(BufReader::with_capacity(READ_BUF, d))
            }
            Codec::Gzip => Box::new(BufReader::with_capacity(
                READ_BUF,
                flate2::read::MultiGzDecoder::new(BufReader::new(raw)),
            )),
        };
        Ok(Self {
            path,
            compressed: codec != Codec::Plain,
            inner,
            buf: Vec::new(),
            number: 0,
            failed: false,
        })
    }

    /// Reads the next line; `Ok(None)` at the end of the file (or after an error).
    ///
    /// # Errors
    /// Reading failed part way; the lines before were delivered.
    pub fn advance(&mut self) -> Result<Option<LineInfo>, ReadError> {
        self.buf.clear();
        if self.failed {
            return Ok(None);
        }
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.failed = true;
                    return Err(ReadError::Stream {
                        path: self.path.clone(),
                        line: self.number,
                        compressed: self.compressed,
                        source,
                    });
                }
            };
            if chunk.is_empty() {
                if !any {
                    return Ok(None);
                }
                self.number += 1;
                return Ok(Some(LineInfo {
                    number: self.number,
                    torn: true,
                    too_long,
                }));
            }
            any = true;
            let (take, newline) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_LINE {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.inner.consume(take + usize::from(newline));
            if newline {
                self.number += 1;
                return Ok(Some(LineInfo {
                    number: self.number,
                    torn: false,
                    too_long,
                }));
            }
        }
    }

    /// The current line, without its newline.
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.number
    }
}

/// True if `line` is an envelope record rather than a raw message: every envelope line starts
/// with `{"ts":` and names its stream.
pub fn looks_like_envelope(line: &[u8]) -> bool {
    line.starts_with(b"{\"ts\":") && memchr::memmem::find(line, b",\"stream\":").is_some()
}

/// The `ts` of an envelope line, read from its first bytes without parsing the rest.
pub fn quick_ts(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"ts\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    if end == 0 || end > 20 {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// A parsed envelope line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A received message.
    Message(Message<'a>),
    /// A lifecycle event; [`EventDetail::parse`] reads its fields.
    Event(Event<'a>),
}

/// A message record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Receive time, ns since the epoch.
    pub ts: u64,
    /// Stream name.
    pub stream: Cow<'a, str>,
    /// Connection number.
    pub conn: u64,
    /// Stream sequence number.
    pub seq: u64,
    /// The message.
    pub payload: Payload<'a>,
}

/// An event record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// When it happened, ns since the epoch.
    pub ts: u64,
    /// Stream name.
    pub stream: Cow<'a, str>,
    /// Connection number.
    pub conn: u64,
    /// `connected`, `subscribed`, `disconnected`, `connect_failed`, `dropped`, ….
    pub name: Cow<'a, str>,
}

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// `msg`: the message text exactly as received (valid JSON).
    Json(&'a str),
    /// `text`: a text message that is not one line of JSON, decoded.
    Text(Cow<'a, str>),
    /// `bin`: a binary message, still base64.
    Binary(Cow<'a, str>),
}

impl Payload<'_> {
    /// The message bytes as received (binary decoded).
    ///
    /// # Errors
    /// `bin` is not valid base64.
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>, base64::DecodeError> {
        use base64::Engine as _;
        Ok(match self {
            Payload::Json(s) => Cow::Borrowed(s.as_bytes()),
            Payload::Text(s) => Cow::Borrowed(s.as_bytes()),
            Payload::Binary(b) => {
                Cow::Owned(base64::engine::general_purpose::STANDARD.decode(b.as_bytes())?)
            }
        })
    }

    /// The message's size in bytes as received, without decoding base64.
    pub fn len(&self) -> usize {
        match self {
            Payload::Json(s) => s.len(),
            Payload::Text(s) => s.len(),
            Payload::Binary(b) => {
                let pad = b.bytes().rev().take_while(|&c| c == b'=').count();
                (b.len() / 4 * 3).saturating_sub(pad)
            }
        }
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Deserialize)]
struct Wire<'a> {
    ts: u64,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    conn: u64,
    seq: Option<u64>,
    #[serde(borrow)]
    msg: Option<&'a RawValue>,
    text: Option<String>,
    bin: Option<String>,
    event: Option<String>,
}

impl<'a> Entry<'a> {
    /// Parses one envelope line.
    ///
    /// # Errors
    /// A message naming what is wrong (JSON error with column, or a missing field).
    pub fn parse(line: &'a [u8]) -> Result<Entry<'a>, String> {
        let w: Wire<'a> = serde_json::from_slice(line).map_err(|e| {
            let what = e.to_string();
            // serde_json counts the line as 1; the caller knows the real one.
            match what.rsplit_once(" at line 1 column ") {
                Some((m, col)) => format!("{m} at column {col}"),
                None => what,
            }
        })?;
        if let Some(name) = w.event {
            return Ok(Entry::Event(Event {
                ts: w.ts,
                stream: w.stream,
                conn: w.conn,
                name: Cow::Owned(name),
            }));
        }
        let Some(seq) = w.seq else {
            return Err("has neither `seq` nor `event`".to_owned());
        };
        let payload = match (w.msg, w.text, w.bin) {
            (Some(m), None, None) => Payload::Json(m.get()),
            (None, Some(t), None) => Payload::Text(Cow::Owned(t)),
            (None, None, Some(b)) => Payload::Binary(Cow::Owned(b)),
            (None, None, None) => return Err("has no `msg`, `text` or `bin`".to_owned()),
            _ => return Err("has more than one of `msg`, `text` and `bin`".to_owned()),
        };
        Ok(Entry::Message(Message {
            ts: w.ts,
            stream: w.stream,
            conn: w.conn,
            seq,
            payload,
        }))
    }

    /// Receive time.
    pub fn ts(&self) -> u64 {
        match self {
            Entry::Message(m) => m.ts,
            Entry::Event(e) => e.ts,
        }
    }

    /// Stream name.
    pub fn stream(&self) -> &str {
        match self {
            Entry::Message(m) => &m.stream,
            Entry::Event(e) => &e.stream,
        }
    }

    /// Connection number.
    pub fn conn(&self) -> u64 {
        match self {
            Entry::Message(m) => m.conn,
            Entry::Event(e) => e.conn,
        }
    }
}

/// The fields of an event line that the tools use.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct EventDetail {
    /// `disconnected`: why.
    pub reason: Option<String>,
    /// `disconnected`: close code sent by the server.
    pub code: Option<u64>,
    /// `disconnected`: connection lifetime.
    pub duration_ms: Option<u64>,
    /// `dropped`: messages dropped.
    pub count: Option<u64>,
    /// `connected`: recorder process id.
    pub pid: Option<u64>,
    /// `connected`: the connection this one replaces (planned reconnect).
    pub replaces: Option<u64>,
    /// `connect_failed`: why.
    pub error: Option<String>,
    /// `disk_full_gap`, `write_error_gap`: lines not written.
    pub lost: Option<u64>,
    /// `write_error_gap`: event lines not written (markers of losses not included).
    pub lost_events: Option<u64>,
    /// `write_error_gap`: messages the when-full policy dropped whose `dropped` marker was
    /// lost to a write error.
    pub dropped: Option<u64>,
    /// `disk_full_gap`: first receive time not written.
    pub from_ts: Option<u64>,
    /// `disk_full_gap`: last receive time not written.
    pub to_ts: Option<u64>,
    /// `recovered`: bytes of an unfinished last line cut off when a crash's file was repaired.
    pub cut_bytes: Option<u64>,
    /// `recovered`: the repaired file's name.
    pub file: Option<String>,
    /// `recovered`: complete lines the repaired file held (0: nothing was written to it).
    pub lines: Option<u64>,
    /// `recovered`: when the file was last written before the crash (its modification time).
    pub last_write_ts: Option<u64>,
}

impl EventDetail {
    /// Reads the fields of an event line; unknown or mistyped fields are left out.
    pub fn parse(line: &[u8]) -> Self {
        serde_json::from_slice(line).unwrap_or_default()
    }
}

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
        }
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
            let data = f
                .logical_name()
                .strip_suffix(".events.jsonl")
                .map(|stem| format!("{stem}.jsonl"))
                .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> LineReader {
        LineReader::from_reader("t.jsonl".into(), Codec::Plain, Box::new(bytes)).unwrap()
    }

    fn lines(mut r: LineReader) -> Vec<(String, LineInfo)> {
        let mut out = Vec::new();
        while let Some(info) = r.advance().unwrap() {
            out.push((String::from_utf8_lossy(r.line()).into_owned(), info));
        }
        out
    }

    #[test]
    fn lines_and_torn_tail() {
        let got = lines(reader(b"a\nbb\n\nccc"));
        let text: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(text, ["a", "bb", "", "ccc"]);
        assert!(!got[2].1.torn);
        assert!(got[3].1.torn);
        assert_eq!(got[3].1.number, 4);
        assert!(lines(reader(b"")).is_empty());
        let got = lines(reader(b"x\n"));
        assert_eq!(got.len(), 1);
        assert!(!got[0].1.torn);
    }

    #[test]
    fn compressed_readers_give_the_same_lines() {
        let text = b"{\"a\":1}\n{\"b\":2}\n";
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text).unwrap();
        let gz = gz.finish().unwrap();
        for (codec, bytes) in [(Codec::Zstd, zst), (Codec::Gzip, gz)] {
            let r =
                LineReader::from_reader("t".into(), codec, Box::new(std::io::Cursor::new(bytes)))
                    .unwrap();
            let got: Vec<String> = lines(r).into_iter().map(|(s, _)| s).collect();
            assert_eq!(got, ["{\"a\":1}", "{\"b\":2}"], "{codec:?}");
        }
    }

    #[test]
    fn truncated_zstd_is_an_error_after_the_good_lines() {
        // Incompressible enough to span many zstd blocks.
        let mut x: u64 = 1;
        let text: Vec<u8> = (0..50_000)
            .flat_map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                format!("{{\"n\":{x}}}\n").into_bytes()
            })
            .collect();
        let mut zst = zstd::encode_all(&text[..], 3).unwrap();
        zst.truncate(zst.len() / 2);
        let mut r = LineReader::from_reader(
            "t.jsonl.zst".into(),
            Codec::Zstd,
            Box::new(std::io::Cursor::new(zst)),
        )
        .unwrap();
        let mut n = 0;
        let err = loop {
            match r.advance() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("a cut zstd stream must not end cleanly"),
                Err(e) => break e,
            }
        };
        assert!(n > 0);
        let msg = err.to_string();
        assert!(msg.contains("t.jsonl.zst: cannot read past line"), "{msg}");
        assert!(msg.contains("damaged or cut short"), "{msg}");
    }

    #[test]
    fn envelope_lines_parse_without_touching_the_message() {
        let line = br#"{"ts":5,"stream":"s","conn":2,"seq":7,"msg":{"b":1.50, "a" : [1e3]}}"#;
        let Entry::Message(m) = Entry::parse(line).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(m.payload, Payload::Json(r#"{"b":1.50, "a" : [1e3]}"#));
        assert_eq!((m.ts, m.conn, m.seq, &*m.stream), (5, 2, 7, "s"));
        let line = br#"{"ts":5,"stream":"s","conn":2,"seq":8,"text":"a\nb"}"#;
        let Entry::Message(m) = Entry::parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(m.payload.bytes().unwrap().as_ref(), b"a\nb");
        let line = br#"{"ts":5,"stream":"s","conn":2,"seq":9,"bin":"AAEC/w=="}"#;
        let Entry::Message(m) = Entry::parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(m.payload.bytes().unwrap().as_ref(), [0, 1, 2, 255]);
        assert_eq!(m.payload.len(), 4);
        let line = br#"{"ts":6,"stream":"s","conn":2,"event":"disconnected","reason":"error","detail":"x","messages":3,"duration_ms":10}"#;
        let Entry::Event(e) = Entry::parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(e.name, "disconnected");
        let d = EventDetail::parse(line);
        assert_eq!(d.reason.as_deref(), Some("error"));
        assert_eq!(d.duration_ms, Some(10));
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for (line, want) in [
            (
                &b"{\"ts\":1,\"stream\":\"s\",\"conn\":1,\"seq\":0,\"msg\":{\"a\""[..],
                "EOF",
            ),
            (b"{\"ts\":1,\"stream\":\"s\",\"conn\":1}", "neither"),
            (
                b"{\"ts\":1,\"stream\":\"s\",\"conn\":1,\"seq\":1}",
                "no `msg`",
            ),
            (b"garbage", "expected value"),
            (b"", "EOF"),
            (
                b"{\"ts\":-1,\"stream\":\"s\",\"conn\":1,\"seq\":1,\"msg\":1}",
                "invalid",
            ),
        ] {
            let e = Entry::parse(line).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("line 1"), "{e}");
        }
    }

    #[test]
    fn quick_ts_reads_the_prefix() {
        assert_eq!(quick_ts(b"{\"ts\":123,\"stream\":\"a\"}"), Some(123));
        assert_eq!(quick_ts(b"{\"ts\":,"), None);
        assert_eq!(quick_ts(b"{\"a\":1}"), None);
    }

    #[test]
    fn names_are_classified() {
        let f = RecordingFile::new("d/s-20261124T100000Z.1.jsonl.zst.open".into());
        assert_eq!(f.codec, Codec::Zstd);
        assert!(f.is_open);
        assert!(!f.is_events);
        assert_eq!(f.logical_name(), "s-20261124T100000Z.1.jsonl");
        let h = f.name_hints();
        assert_eq!(h.stream, "s");
        assert_eq!(h.start_ns, Some(1_795_514_400_000_000_000));
        let h = name_hints("publicTrade.BTCUSDT_1795514400.jsonl");
        assert_eq!(h.stream, "publicTrade.BTCUSDT");
        assert_eq!(h.start_ns, Some(1_795_514_400_000_000_000));
        assert_eq!(name_hints("plain.jsonl").stream, "plain");
        assert!(RecordingFile::new("x.events.jsonl.gz".into()).is_events);
        for (name, yes) in [
            ("a.jsonl", true),
            ("a.jsonl.zst", true),
            ("a.jsonl.gz.open", true),
            ("a.jsonl.open", true),
            ("a.jsonl.zst.tmp", false),
            ("a.jsonl.manifest.json", false),
            (".hidden.jsonl", false),
            ("notes.txt", false),
        ] {
            assert_eq!(RecordingFile::is_recording_name(name), yes, "{name}");
        }
    }

    #[test]
    fn discovery_orders_parts_and_skips_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [
            "s-20261124T100000Z.jsonl",
            "s-20261124T100000Z.1.jsonl",
            "s-20261124T100000Z.2.jsonl.zst",
            "s-20261124T110000Z.jsonl.open",
            "s-20261124T090000Z.jsonl",
            "s-20261124T090000Z.jsonl.zst",
            "s-20261124T090000Z.jsonl.manifest.json",
            "notes.txt",
        ] {
            std::fs::write(d.join(name), b"").unwrap();
        }
        let files = discover(&[d.to_owned()]).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "s-20261124T090000Z.jsonl",
                "s-20261124T100000Z.jsonl",
                "s-20261124T100000Z.1.jsonl",
                "s-20261124T100000Z.2.jsonl.zst",
                "s-20261124T110000Z.jsonl.open",
            ]
        );
        let err = discover(&[d.join("missing")]).unwrap_err().to_string();
        assert!(err.contains("missing: no such file or directory"), "{err}");
    }

    fn write(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    fn rec(ts: u64, stream: &str, seq: u64) -> String {
        format!(r#"{{"ts":{ts},"stream":"{stream}","conn":1,"seq":{seq},"msg":{{"n":{seq}}}}}"#)
    }

    fn collect(scan: &mut Scan) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(item) = scan.next_item() {
            match item {
                Item::Line { bytes, .. } => out.push(String::from_utf8_lossy(bytes).into_owned()),
                Item::FileEnd { .. } => out.push("END".to_owned()),
                Item::Error(e) => out.push(format!("ERR {e}")),
            }
        }
        out
    }

    #[test]
    fn merged_scan_interleaves_streams_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a-1.jsonl"), &[rec(1, "a", 0), rec(4, "a", 1)]);
        write(&d.join("a-2.jsonl"), &[rec(6, "a", 2), rec(9, "a", 3)]);
        write(
            &d.join("b-1.jsonl"),
            &[rec(2, "b", 0), rec(5, "b", 1), rec(7, "b", 2)],
        );
        let files = discover(&[d.to_owned()]).unwrap();
        let got: Vec<u64> = collect(&mut Scan::new(files.clone(), Order::Merged))
            .iter()
            .filter_map(|l| quick_ts(l.as_bytes()))
            .collect();
        assert_eq!(got, [1, 2, 4, 5, 6, 7, 9]);
        let got = collect(&mut Scan::new(files, Order::Files));
        assert_eq!(got.iter().filter(|l| *l == "END").count(), 3);
        assert_eq!(got.len(), 10);
    }

    #[test]
    fn unreadable_files_are_items_not_failures() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a.jsonl"), &[rec(1, "a", 0)]);
        std::fs::write(d.join("b.jsonl.zst"), b"not zstd at all").unwrap();
        write(&d.join("c.jsonl"), &[rec(3, "c", 0)]);
        let files = discover(&[d.to_owned()]).unwrap();
        let got = collect(&mut Scan::new(files, Order::Files));
        assert_eq!(got.len(), 6, "{got:?}");
        assert!(got[2].starts_with("ERR "), "{got:?}");
        assert!(got[2].contains("b.jsonl.zst"), "{got:?}");
        assert_eq!(got[3], "END");
        assert!(got[4].contains("\"stream\":\"c\""));
    }
}
