//! Checks a finished recording against what the flood server sent: exactly N messages, each equal
//! byte-for-byte to the one expected at its position, in order, across every `*.jsonl` file of
//! the output directory taken in file-name order.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::payload::Payload;

/// How the recorder writes each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"ts":…,"stream":…,"conn":…,"seq":…,"msg":<message>}` per line.
    Envelope,
    /// The message bytes alone per line.
    Raw,
}

impl Format {
    /// The value of `wsrec record --format`.
    pub fn as_arg(self) -> &'static str {
        match self {
            Self::Envelope => "envelope",
            Self::Raw => "raw",
        }
    }
}

/// One envelope line, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// A recorded message.
    Message {
        /// Receive time, ns since the epoch.
        ts: u64,
        /// Stream name, as written (still JSON-escaped).
        stream: &'a [u8],
        /// Connection number.
        conn: u64,
        /// Per-connection sequence number.
        seq: u64,
        /// The message bytes, verbatim.
        msg: &'a [u8],
    },
    /// A connection or recorder event line (`"event"` instead of `"msg"`); not a message.
    Event,
}

/// Parses one envelope line (without its line feed).
///
/// Keys before `"msg"` or `"event"` must have string or number values; `"msg"` must come last and
/// everything from its value to the final `}` is the message.
///
/// # Errors
/// Any other shape, or a message line missing one of `ts`, `stream`, `conn`, `seq`.
pub fn parse_envelope(line: &[u8]) -> Result<Envelope<'_>, String> {
    let mut pos = 1;
    if line.first() != Some(&b'{') {
        return Err("line does not start with '{'".into());
    }
    let (mut ts, mut stream, mut conn, mut seq) = (None, None, None, None);
    loop {
        // Key.
        if line.get(pos) != Some(&b'"') {
            return Err(format!("expected a key at byte {pos}"));
        }
        let key_end = memchr::memchr(b'"', &line[pos + 1..])
            .map(|i| pos + 1 + i)
            .ok_or("unterminated key")?;
        let key = &line[pos + 1..key_end];
        pos = key_end + 1;
        if line.get(pos) != Some(&b':') {
            return Err(format!("expected ':' at byte {pos}"));
        }
        pos += 1;
        match key {
            b"msg" => {
                let msg = line
                    .strip_suffix(b"}")
                    .and_then(|l| l.get(pos..))
                    .filter(|m| !m.is_empty())
                    .ok_or("\"msg\" is not followed by a value and a final '}'")?;
                return Ok(Envelope::Message {
                    ts: ts.ok_or("no \"ts\" before \"msg\"")?,
                    stream: stream.ok_or("no \"stream\" before \"msg\"")?,
                    conn: conn.ok_or("no \"conn\" before \"msg\"")?,
                    seq: seq.ok_or("no \"seq\" before \"msg\"")?,
                    msg,
                });
            }
            b"event" => return Ok(Envelope::Event),
            _ => {}
        }
        // Simple value: string or number.
        let start = pos;
        match line.get(pos) {
            Some(b'"') => {
                pos += 1;
                loop {
                    match line.get(pos) {
                        Some(b'\\') => pos += 2,
                        Some(b'"') => break,
                        Some(_) => pos += 1,
                        None => return Err("unterminated string value".into()),
                    }
                }
                pos += 1;
            }
            Some(b'-' | b'0'..=b'9') => {
                pos += 1;
                while line.get(pos).is_some_and(|b| {
                    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')
                }) {
                    pos += 1;
                }
            }
            _ => {
                return Err(format!(
                    "value of {:?} is neither a string nor a number",
                    String::from_utf8_lossy(key)
                ));
            }
        }
        let value = &line[start..pos];
        let int = || -> Result<u64, String> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    format!(
                        "{:?} is not an unsigned integer: {:?}",
                        String::from_utf8_lossy(key),
                        String::from_utf8_lossy(value)
                    )
                })
        };
        match key {
            b"ts" => ts = Some(int()?),
            b"conn" => conn = Some(int()?),
            b"seq" => seq = Some(int()?),
            b"stream" if value.len() >= 2 && value[0] == b'"' => {
                stream = Some(&value[1..value.len() - 1]);
            }
            b"stream" => return Err("\"stream\" is not a string".into()),
            _ => {}
        }
        match line.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return Err("line has neither \"msg\" nor \"event\"".into()),
            _ => return Err(format!("expected ',' at byte {pos}")),
        }
    }
}

/// Messages found on one connection (envelope format), in order of first appearance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ConnCount {
    /// The `conn` value.
    pub conn: u64,
    /// Message lines carrying it.
    pub messages: u64,
}

/// What was found in a recording that matched.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckSummary {
    /// Files read, relative to the output directory, in the order read (for a many-stream
    /// recording, only the first few; see `file_count`).
    pub files: Vec<String>,
    /// Number of files read.
    pub file_count: u64,
    /// Of those, zstd-compressed (`*.jsonl.zst`) files.
    pub compressed_files: u64,
    /// Messages found (equal to N when the check passed).
    pub messages: u64,
    /// Message bytes found.
    pub message_bytes: u64,
    /// Event lines skipped (envelope format).
    pub events: u64,
    /// Bytes of the recording files on disk (compressed size for `.zst` files).
    pub file_bytes: u64,
    /// Bytes of the recording files' content (decompressed).
    pub content_bytes: u64,
    /// Distinct connection numbers seen with messages (envelope format).
    pub connections: u64,
    /// Messages per connection in order of first appearance (envelope format; empty for a
    /// many-stream recording).
    pub per_connection: Vec<ConnCount>,
    /// Manifest sidecars (`*.manifest.json`) seen and ignored.
    pub manifests: u64,
    /// When send times were given: how late each message's `ts` is after its send time.
    pub receive_delay: Option<Delay>,
}

/// The distribution of `ts` - send time over the messages of a recording, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Delay {
    /// Messages measured.
    pub messages: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Delay {
    /// The distribution of `delays_ns` (sorted in place); `None` if empty.
    pub fn of(delays_ns: &mut [i64]) -> Option<Self> {
        delays_ns.sort_unstable();
        let n = delays_ns.len();
        let at = |q: f64| {
            let i = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
            delays_ns[i] as f64 / 1e3
        };
        (n > 0).then(|| Self {
            messages: n as u64,
            p50_us: at(0.5),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: delays_ns[n - 1] as f64 / 1e3,
        })
    }
}

impl CheckSummary {
    /// Adds another stream's summary to this one (for many-stream recordings): counts add up,
    /// the file list keeps its first few names, per-connection counts are dropped.
    pub fn absorb(&mut self, other: CheckSummary, prefix: &str) {
        const KEEP_FILES: usize = 10;
        for f in other.files {
            if self.files.len() < KEEP_FILES {
                self.files.push(format!("{prefix}/{f}"));
            }
        }
        self.file_count += other.file_count;
        self.compressed_files += other.compressed_files;
        self.messages += other.messages;
        self.message_bytes += other.message_bytes;
        self.events += other.events;
        self.file_bytes += other.file_bytes;
        self.content_bytes += other.content_bytes;
        self.connections += other.connections;
        self.manifests += other.manifests;
        self.per_connection.clear();
    }
}

/// Most problems listed in an error before the rest are only counted.
const MAX_PROBLEMS: usize = 8;

/// Collects problems, keeping the first few in full.
#[derive(Default)]
struct Problems {
    /// The first [`MAX_PROBLEMS`] descriptions.
    listed: Vec<String>,
    /// All problems, listed or not.
    count: u64,
}

impl Problems {
    fn add(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(what());
        }
    }
}

/// Counts of each kind of mismatch.
#[derive(Default)]
struct Tally {
    /// Messages never found.
    lost: u64,
    /// Messages found again after a later one (duplicates or reordering).
    repeated: u64,
    /// Messages found but not equal to any expected one nearby.
    altered: u64,
    /// Messages past the N-th.
    extra: u64,
}

/// How far around the expected position a corpus message is searched for when it does not match.
const LOOKAROUND: u64 = 64;

/// Index of the sent message that `msg` is, near position `next`: a small message says its own
/// index; a corpus frame is searched for within [`LOOKAROUND`] positions, ahead first.
fn locate(payload: &Payload, msg: &[u8], next: u64, n: u64, scratch: &mut Vec<u8>) -> Option<u64> {
    if let Some(seq) = payload.seq_of(msg) {
        return (seq < n && payload.matches(seq, msg, scratch)).then_some(seq);
    }
    let ahead =
        (next + 1..n.min(next + 1 + LOOKAROUND)).find(|&j| payload.matches(j, msg, scratch));
    ahead.or_else(|| {
        (next.saturating_sub(LOOKAROUND)..next.min(n))
            .rev()
            .find(|&j| payload.matches(j, msg, scratch))
    })
}

/// Shortened, printable view of bytes for error messages.
fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]).into_owned();
    if bytes.len() > MAX {
        format!("{text:?}… ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    }
}

/// Suffix of zstd-compressed recording files.
const ZST: &str = ".zst";

/// Order of recording files: by directory, then by name with a numeric part index before
/// `.jsonl` compared as a number, an unnumbered file first: `x.jsonl` < `x.2.jsonl` < `x.10.jsonl`
/// (wsrec names the parts of a rotated-by-size hour that way). A `.zst` suffix is ignored.
fn file_order(path: &Path) -> (PathBuf, String, u64) {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let name = name.strip_suffix(ZST).unwrap_or(&name);
    let stem = name.strip_suffix(".jsonl").unwrap_or(name);
    if let Some((base, part)) = stem.rsplit_once('.')
        && !part.is_empty()
        && part.bytes().all(|b| b.is_ascii_digit())
        && let Ok(part) = part.parse()
    {
        return (dir, base.to_owned(), part);
    }
    (dir, stem.to_owned(), 0)
}

/// What is under a recording directory.
#[derive(Debug, Default)]
pub struct Listing {
    /// Recording files (`*.jsonl`, `*.jsonl.zst`, not `*.events.jsonl[.zst]`), in recording order.
    pub files: Vec<PathBuf>,
    /// Manifest sidecars (`*.manifest.json`), ignored.
    pub manifests: u64,
}

/// Recording files under `dir`, recursively, in recording order (see [`file_order`]). Plain and
/// zstd-compressed files are both recording files; manifests (`*.manifest.json`), event
/// sidecars, compression temporaries and anything else are ignored.
///
/// # Errors
/// A file still named `*.open` (not closed cleanly) or `*.jsonl.gz` (a codec the checker does not
/// read), or the directory cannot be listed.
pub fn recording_files(dir: &Path) -> Result<Listing> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    let mut listing = Listing::default();
    for path in found {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".open") {
            bail!(
                "{} is still open: the recorder did not close it on SIGTERM",
                path.display()
            );
        }
        if name.ends_with(".jsonl.gz") && !name.ends_with(".events.jsonl.gz") {
            bail!(
                "{} is gzip-compressed; the checker reads plain and zstd files only",
                path.display()
            );
        }
        if name.ends_with(".manifest.json") {
            listing.manifests += 1;
            continue;
        }
        let plain = name.strip_suffix(ZST).unwrap_or(&name);
        if plain.ends_with(".jsonl") && !plain.ends_with(".events.jsonl") {
            listing.files.push(path);
        }
    }
    listing.files.sort_by_cached_key(|p| file_order(p));
    Ok(listing)
}

/// Size of the chunks a recording file is read in.
const READ_CHUNK: usize = 1 << 20;

/// Streams `reader` and calls `line(bytes)` for every line, without its line feed. A last line
/// without a line feed is passed too, and reported by returning `true` (torn write). Returns
/// the bytes read as well.
///
/// # Errors
/// A read error (for a `.zst` file: a corrupt or cut frame).
fn for_each_line(
    mut reader: impl Read,
    mut line: impl FnMut(&[u8]),
) -> std::io::Result<(u64, bool)> {
    let mut buf = vec![0u8; READ_CHUNK];
    // Unconsumed bytes are `buf[start..end]`.
    let (mut start, mut end, mut total) = (0, 0, 0u64);
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else {
                // One line longer than the buffer.
                buf.resize(buf.len() * 2, 0);
            }
        }
        let n = match reader.read(&mut buf[end..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        // Line feeds can only be in the new bytes.
        let mut scan = end;
        end += n;
        while let Some(i) = memchr::memchr(b'\n', &buf[scan..end]) {
            let nl = scan + i;
            line(&buf[start..nl]);
            start = nl + 1;
            scan = start;
        }
    }
    let torn = start < end;
    if torn {
        line(&buf[start..end]);
    }
    Ok((total, torn))
}

/// The comparison of a recording with what was sent, one line at a time.
struct Checker<'a> {
    format: Format,
    stream: &'a str,
    payload: &'a Payload,
    n: u64,
    summary: CheckSummary,
    problems: Problems,
    tally: Tally,
    /// Scratch buffer for expected messages.
    expected: Vec<u8>,
    /// Last `seq` per `conn`.
    last_seq: HashMap<u64, u64>,
    /// Index of the message expected next.
    next: u64,
    /// Send time of each message (ns since the epoch), if known.
    send_ns: Option<&'a [u64]>,
    /// `ts` - send time of each message found, with `send_ns`.
    delays: Vec<i64>,
}

impl Checker<'_> {
    /// Notes how late message `k` was received, if its send time is known.
    fn delay(&mut self, k: u64, ts: Option<u64>) {
        if let (Some(sent), Some(ts)) = (self.send_ns.and_then(|s| s.get(k as usize)), ts) {
            self.delays.push(ts as i64 - *sent as i64);
        }
    }

    /// Checks one line of file `rel`.
    fn line(&mut self, rel: &str, line_no: u64, line: &[u8]) {
        let mut ts = None;
        let msg = match self.format {
            Format::Raw => line,
            Format::Envelope => match parse_envelope(line) {
                Ok(Envelope::Event) => {
                    self.summary.events += 1;
                    return;
                }
                Ok(Envelope::Message {
                    ts: at,
                    stream: s,
                    conn,
                    seq,
                    msg,
                }) => {
                    ts = Some(at);
                    if s != self.stream.as_bytes() {
                        self.problems
                            .add(|| format!("{rel}:{line_no}: stream is {}", preview(s)));
                    }
                    match self.last_seq.insert(conn, seq) {
                        Some(prev) if seq <= prev => self.problems.add(|| {
                            format!("{rel}:{line_no}: conn {conn} seq {seq} after seq {prev}")
                        }),
                        Some(_) => {}
                        None => self
                            .summary
                            .per_connection
                            .push(ConnCount { conn, messages: 0 }),
                    }
                    // Usually the last one; search otherwise (connections interleave only in
                    // broken recordings).
                    let counts = &mut self.summary.per_connection;
                    if let Some(c) = counts.iter_mut().rev().find(|c| c.conn == conn) {
                        c.messages += 1;
                    }
                    msg
                }
                Err(e) => {
                    self.problems
                        .add(|| format!("{rel}:{line_no}: {e}: {}", preview(line)));
                    return;
                }
            },
        };
        self.summary.messages += 1;
        self.summary.message_bytes += msg.len() as u64;
        let (payload, n, next) = (self.payload, self.n, self.next);
        if next < n && payload.matches(next, msg, &mut self.expected) {
            self.delay(next, ts);
            self.next += 1;
            return;
        }
        match locate(payload, msg, next, n, &mut self.expected) {
            Some(j) if j > next => {
                self.tally.lost += j - next;
                self.problems.add(|| {
                    format!(
                        "{rel}:{line_no}: {} message(s) missing before it: expected message \
                         {next}, found message {j}",
                        j - next
                    )
                });
                self.next = j + 1;
            }
            Some(j) => {
                self.tally.repeated += 1;
                self.problems.add(|| {
                    format!(
                        "{rel}:{line_no}: message {j} again (duplicate or out of order) \
                         where message {next} was expected"
                    )
                });
            }
            None if next >= n => {
                self.tally.extra += 1;
                self.problems
                    .add(|| format!("{rel}:{line_no}: extra message {}", preview(msg)));
            }
            None => {
                self.tally.altered += 1;
                self.expected.clear();
                payload.write_message(next, &mut self.expected);
                let expected = &self.expected;
                self.problems.add(|| {
                    format!(
                        "{rel}:{line_no}: message {next} differs: got {}, expected {}",
                        preview(msg),
                        preview(expected)
                    )
                });
                self.next += 1;
            }
        }
    }

    /// Reads one recording file, plain or zstd, streaming.
    fn file(&mut self, dir: &Path, file: &Path) -> Result<()> {
        let rel = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        self.summary.file_bytes += f.metadata().map_or(0, |m| m.len());
        let compressed = file.to_string_lossy().ends_with(ZST);
        let mut line_no = 0u64;
        let mut each = |l: &[u8]| {
            line_no += 1;
            self.line(&rel, line_no, l);
        };
        let read = if compressed {
            zstd::stream::read::Decoder::new(f).and_then(|d| for_each_line(d, &mut each))
        } else {
            for_each_line(f, &mut each)
        };
        let (bytes, torn) = read.with_context(|| format!("reading {}", file.display()))?;
        if compressed {
            self.summary.compressed_files += 1;
        }
        self.summary.content_bytes += bytes;
        if torn {
            self.problems
                .add(|| format!("{rel}: last line has no line feed (torn write)"));
        }
        self.summary.file_count += 1;
        self.summary.files.push(rel);
        Ok(())
    }
}

/// Checks that the recording in `dir` holds exactly messages `0..n` of `payload`, in order,
/// reading every `*.jsonl` and `*.jsonl.zst` file except `*.events.jsonl[.zst]` in recording
/// order (manifests are ignored).
///
/// `stream` is the `--name` given to the recorder; envelope lines must carry it.
///
/// # Errors
/// Lists the first problems found: missing, extra, changed or reordered messages, malformed
/// lines, sequence numbers going backwards, files left open, unreadable compressed files.
pub fn check_recording(
    dir: &Path,
    format: Format,
    stream: &str,
    payload: &Payload,
    n: u64,
) -> Result<CheckSummary> {
    check_timed(dir, format, stream, payload, n, None)
}

/// [`check_recording`], and with `send_ns` (the send time of each message, ns since the epoch)
/// the distribution of `ts` - send time in [`CheckSummary::receive_delay`] (envelope format).
///
/// # Errors
/// As [`check_recording`].
pub fn check_timed(
    dir: &Path,
    format: Format,
    stream: &str,
    payload: &Payload,
    n: u64,
    send_ns: Option<&[u64]>,
) -> Result<CheckSummary> {
    let listing = recording_files(dir)?;
    if listing.files.is_empty() {
        bail!("no *.jsonl recording file under {}", dir.display());
    }
    let mut c = Checker {
        format,
        stream,
        payload,
        n,
        summary: CheckSummary {
            manifests: listing.manifests,
            ..CheckSummary::default()
        },
        problems: Problems::default(),
        tally: Tally::default(),
        expected: Vec::new(),
        last_seq: HashMap::new(),
        next: 0,
        send_ns,
        delays: Vec::new(),
    };
    for file in &listing.files {
        c.file(dir, file)?;
    }
    c.summary.receive_delay = Delay::of(&mut c.delays);
    c.summary.connections = c.last_seq.len() as u64;
    if c.next < n {
        let missing = n - c.next;
        c.tally.lost += missing;
        c.problems
            .add(|| format!("the last {missing} message(s) are missing"));
    }
    if c.problems.count > 0 {
        let mut text = format!(
            "recording in {} is wrong: {} message line(s) found, {n} sent; {} lost, {} repeated \
             or out of order, {} altered, {} extra",
            dir.display(),
            c.summary.messages,
            c.tally.lost,
            c.tally.repeated,
            c.tally.altered,
            c.tally.extra
        );
        for p in &c.problems.listed {
            let _ = write!(text, "\n  - {p}");
        }
        if c.problems.count > c.problems.listed.len() as u64 {
            let _ = write!(
                text,
                "\n  - … and {} more",
                c.problems.count - c.problems.listed.len() as u64
            );
        }
        bail!(text);
    }
    Ok(c.summary)
}

/// Checks that connection after connection carried `blocks` messages each, in order (the
/// reconnect workload: the server closes after every block and the recorder reconnects), given
/// a summary whose messages were already checked complete and in order.
///
/// # Errors
/// The per-connection counts are not `[every, every, …, rest]` or connection numbers do not
/// increase.
pub fn check_blocks(summary: &CheckSummary, blocks: &[u64]) -> Result<()> {
    let counts: Vec<u64> = summary.per_connection.iter().map(|c| c.messages).collect();
    if counts != blocks {
        bail!(
            "messages per connection are {counts:?}, expected {blocks:?} (one connection per \
             block the server sent)"
        );
    }
    if summary
        .per_connection
        .windows(2)
        .any(|w| w[1].conn <= w[0].conn)
    {
        bail!(
            "connection numbers do not increase: {:?}",
            summary.per_connection
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "wsrec-bench-check-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn envelope(seq: u64, msg: &[u8]) -> Vec<u8> {
        let mut l = format!(
            "{{\"ts\":{},\"stream\":\"bench\",\"conn\":0,\"seq\":{seq},\"msg\":",
            1_700_000_000_000_000_000u64 + seq
        )
        .into_bytes();
        l.extend_from_slice(msg);
        l.extend_from_slice(b"}\n");
        l
    }

    /// Writes messages given by index into `name` in the chosen format.
    fn write(dir: &Path, name: &str, format: Format, p: &Payload, ks: &[u64]) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(path).unwrap();
        for &k in ks {
            let mut m = Vec::new();
            p.write_message(k, &mut m);
            match format {
                Format::Raw => {
                    m.push(b'\n');
                    f.write_all(&m).unwrap();
                }
                Format::Envelope => f.write_all(&envelope(k + 1, &m)).unwrap(),
            }
        }
    }

    #[test]
    fn parses_envelopes() {
        let line = br#"{"ts":17,"stream":"bench","conn":2,"seq":5,"msg":{"a":"}"}}"#;
        assert_eq!(
            parse_envelope(line).unwrap(),
            Envelope::Message {
                ts: 17,
                stream: b"bench",
                conn: 2,
                seq: 5,
                msg: br#"{"a":"}"}"#,
            }
        );
        let event = br#"{"ts":17,"stream":"be\"nch","conn":2,"event":{"kind":"connected"}}"#;
        assert_eq!(parse_envelope(event).unwrap(), Envelope::Event);
        assert!(parse_envelope(br#"{"ts":1,"stream":"b","conn":0,"msg":1}"#).is_err());
        assert!(parse_envelope(br#"{"ts":1,"stream":"b","conn":0,"seq":1,"msg":}"#).is_err());
        assert!(parse_envelope(br#"{"ts":1,"x":[1],"msg":1}"#).is_err());
        assert!(parse_envelope(br#"{"ts":-1,"stream":"b","conn":0,"seq":1,"msg":1}"#).is_err());
        assert!(parse_envelope(b"[1]").is_err());
    }

    #[test]
    fn accepts_complete_recordings_across_files() {
        let p = Payload::small(64).unwrap();
        for format in [Format::Envelope, Format::Raw] {
            let d = TempDir::new();
            write(&d.0, "bench/a.jsonl", format, &p, &[0, 1, 2]);
            write(&d.0, "bench/b.jsonl", format, &p, &[3, 4]);
            std::fs::write(d.0.join("bench/a.events.jsonl"), "{}\n").unwrap();
            std::fs::write(d.0.join("notes.txt"), "x").unwrap();
            let s = check_recording(&d.0, format, "bench", &p, 5).unwrap();
            assert_eq!(s.messages, 5);
            assert_eq!(s.files, ["bench/a.jsonl", "bench/b.jsonl"]);
        }
    }

    #[test]
    fn orders_numbered_parts_after_their_base_file() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        write(&d.0, "b/h-10Z.jsonl", Format::Raw, &p, &[0, 1]);
        write(&d.0, "b/h-10Z.2.jsonl", Format::Raw, &p, &[2]);
        write(&d.0, "b/h-10Z.10.jsonl", Format::Raw, &p, &[3]);
        write(&d.0, "b/h-11Z.1.jsonl", Format::Raw, &p, &[4]);
        let s = check_recording(&d.0, Format::Raw, "bench", &p, 5).unwrap();
        assert_eq!(
            s.files,
            [
                "b/h-10Z.jsonl",
                "b/h-10Z.2.jsonl",
                "b/h-10Z.10.jsonl",
                "b/h-11Z.1.jsonl"
            ]
        );
    }

    #[test]
    fn skips_event_lines() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        let mut data = br#"{"ts":1,"stream":"bench","conn":0,"event":"connected"}"#.to_vec();
        data.push(b'\n');
        let mut m = Vec::new();
        p.write_message(0, &mut m);
        data.extend(envelope(1, &m));
        std::fs::write(d.0.join("x.jsonl"), data).unwrap();
        let s = check_recording(&d.0, Format::Envelope, "bench", &p, 1).unwrap();
        assert_eq!((s.messages, s.events, s.connections), (1, 1, 1));
    }

    fn check_err(format: Format, ks: &[u64], n: u64) -> String {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        write(&d.0, "r.jsonl", format, &p, ks);
        format!(
            "{:#}",
            check_recording(&d.0, format, "bench", &p, n).unwrap_err()
        )
    }

    #[test]
    fn reports_loss_duplicates_reordering_and_extras() {
        let e = check_err(Format::Raw, &[0, 1, 3, 4], 5);
        assert!(
            e.contains(
                "r.jsonl:3: 1 message(s) missing before it: expected message 2, found message 3"
            ),
            "{e}"
        );
        assert!(
            e.contains("1 lost, 0 repeated or out of order, 0 altered, 0 extra"),
            "{e}"
        );
        let e = check_err(Format::Envelope, &[0, 1, 1, 2], 3);
        assert!(e.contains("message 1 again"), "{e}");
        assert!(e.contains("0 lost, 1 repeated"), "{e}");
        let e = check_err(Format::Raw, &[0, 2, 1], 3);
        assert!(e.contains("1 lost, 1 repeated"), "{e}");
        let e = check_err(Format::Raw, &[], 3);
        assert!(e.contains("the last 3 message(s) are missing"), "{e}");
        let e = check_err(Format::Raw, &[0, 1, 2, 3], 3);
        assert!(
            e.contains("0 lost, 0 repeated or out of order, 0 altered, 1 extra"),
            "{e}"
        );
    }

    #[test]
    fn reports_altered_messages() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        let mut data = Vec::new();
        for k in 0..3 {
            p.write_message(k, &mut data);
            data.push(b'\n');
        }
        // Change one byte of the padding of message 1.
        let at = 64 + 1 + 40;
        data[at] = b'y';
        std::fs::write(d.0.join("x.jsonl"), &data).unwrap();
        let e = format!(
            "{:#}",
            check_recording(&d.0, Format::Raw, "bench", &p, 3).unwrap_err()
        );
        assert!(e.contains("x.jsonl:2: message 1 differs"), "{e}");
        assert!(
            e.contains("0 lost, 0 repeated or out of order, 1 altered"),
            "{e}"
        );
    }

    #[test]
    fn resynchronises_on_corpus_frames() {
        let lines: Vec<Vec<u8>> = (0..10)
            .map(|i| format!("{{\"f\":{i}}}").into_bytes())
            .collect();
        let p = Payload::Corpus {
            cycle_bytes: lines.iter().map(|l| l.len() as u64).sum(),
            lines,
        };
        let d = TempDir::new();
        write(
            &d.0,
            "r.jsonl",
            Format::Raw,
            &p,
            &[0, 1, 2, 5, 6, 7, 7, 8, 9, 10, 11],
        );
        let e = format!(
            "{:#}",
            check_recording(&d.0, Format::Raw, "bench", &p, 12).unwrap_err()
        );
        assert!(e.contains("expected message 3, found message 5"), "{e}");
        assert!(e.contains("message 7 again"), "{e}");
        assert!(
            e.contains("2 lost, 1 repeated or out of order, 0 altered, 0 extra"),
            "{e}"
        );
    }

    #[test]
    fn reports_wrong_stream_seq_and_torn_lines() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        let mut m = Vec::new();
        p.write_message(0, &mut m);
        let mut data = envelope(5, &m);
        m.clear();
        p.write_message(1, &mut m);
        data.extend(envelope(5, &m));
        std::fs::write(d.0.join("x.jsonl"), &data).unwrap();
        let e = check_recording(&d.0, Format::Envelope, "other", &p, 2).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("stream is \"bench\""), "{e}");
        assert!(e.contains("seq 5 after seq 5"), "{e}");

        data.pop();
        std::fs::write(d.0.join("x.jsonl"), &data).unwrap();
        let e = check_recording(&d.0, Format::Envelope, "bench", &p, 2).unwrap_err();
        assert!(format!("{e:#}").contains("no line feed"), "{e:#}");
    }

    #[test]
    fn refuses_open_and_gzip_files() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        std::fs::write(d.0.join("a.jsonl.open"), "").unwrap();
        let e = check_recording(&d.0, Format::Raw, "bench", &p, 0).unwrap_err();
        assert!(e.to_string().contains("still open"), "{e:#}");
        std::fs::remove_file(d.0.join("a.jsonl.open")).unwrap();
        std::fs::write(d.0.join("a.jsonl.gz"), "").unwrap();
        let e = check_recording(&d.0, Format::Raw, "bench", &p, 0).unwrap_err();
        assert!(e.to_string().contains("gzip"), "{e:#}");
        std::fs::remove_file(d.0.join("a.jsonl.gz")).unwrap();
        std::fs::write(d.0.join("a.jsonl.manifest.json"), "{}").unwrap();
        let e = check_recording(&d.0, Format::Raw, "bench", &p, 0).unwrap_err();
        assert!(e.to_string().contains("no *.jsonl"), "{e:#}");
    }

    /// Compresses `name` (written by [`write`]) to `name.zst` and removes the original.
    fn zstd_file(dir: &Path, name: &str) {
        let plain = dir.join(name);
        let data = std::fs::read(&plain).unwrap();
        let packed = zstd::encode_all(&data[..], 3).unwrap();
        std::fs::write(dir.join(format!("{name}.zst")), packed).unwrap();
        std::fs::remove_file(plain).unwrap();
    }

    #[test]
    fn reads_zstd_files_in_order_and_ignores_manifests() {
        let p = Payload::small(64).unwrap();
        for format in [Format::Envelope, Format::Raw] {
            let d = TempDir::new();
            write(&d.0, "b/h-10Z.jsonl", format, &p, &[0, 1, 2]);
            zstd_file(&d.0, "b/h-10Z.jsonl");
            write(&d.0, "b/h-10Z.1.jsonl", format, &p, &[3, 4]);
            zstd_file(&d.0, "b/h-10Z.1.jsonl");
            // The last file closed may still be plain when the recorder stops.
            write(&d.0, "b/h-10Z.2.jsonl", format, &p, &[5]);
            for m in ["b/h-10Z.jsonl", "b/h-10Z.1.jsonl", "b/h-10Z.2.jsonl"] {
                std::fs::write(d.0.join(format!("{m}.manifest.json")), "{\"lines\":1}").unwrap();
            }
            std::fs::write(d.0.join("b/h-10Z.events.jsonl.zst"), "not zstd").unwrap();
            std::fs::write(d.0.join("b/h-10Z.jsonl.zst.tmp"), "partial").unwrap();
            let s = check_recording(&d.0, format, "bench", &p, 6).unwrap();
            assert_eq!(s.messages, 6);
            assert_eq!(
                s.files,
                [
                    "b/h-10Z.jsonl.zst",
                    "b/h-10Z.1.jsonl.zst",
                    "b/h-10Z.2.jsonl"
                ]
            );
            assert_eq!((s.file_count, s.compressed_files, s.manifests), (3, 2, 3));
            assert!(s.content_bytes > s.file_bytes, "compressed on disk");
        }
    }

    #[test]
    fn finds_loss_and_torn_lines_inside_zstd_files() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        write(&d.0, "r.jsonl", Format::Raw, &p, &[0, 1, 3]);
        let mut data = std::fs::read(d.0.join("r.jsonl")).unwrap();
        data.pop();
        std::fs::write(d.0.join("r.jsonl"), &data).unwrap();
        zstd_file(&d.0, "r.jsonl");
        let e = format!(
            "{:#}",
            check_recording(&d.0, Format::Raw, "bench", &p, 4).unwrap_err()
        );
        assert!(e.contains("r.jsonl.zst:3: 1 message(s) missing"), "{e}");
        assert!(e.contains("r.jsonl.zst: last line has no line feed"), "{e}");
    }

    #[test]
    fn a_cut_zstd_file_is_an_error() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        write(
            &d.0,
            "r.jsonl",
            Format::Raw,
            &p,
            &(0..1000).collect::<Vec<_>>(),
        );
        zstd_file(&d.0, "r.jsonl");
        let path = d.0.join("r.jsonl.zst");
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data[..data.len() / 2]).unwrap();
        let e = check_recording(&d.0, Format::Raw, "bench", &p, 1000).unwrap_err();
        assert!(format!("{e:#}").contains("reading"), "{e:#}");
    }

    #[test]
    fn lines_longer_than_the_read_chunk_are_whole() {
        let long = vec![b'a'; READ_CHUNK * 2 + 17];
        let mut data = b"x\n".to_vec();
        data.extend_from_slice(&long);
        data.extend_from_slice(b"\ny\nlast");
        let mut lines = Vec::new();
        let (bytes, torn) = for_each_line(&data[..], |l| lines.push(l.len())).unwrap();
        assert_eq!(lines, [1, long.len(), 1, 4]);
        assert_eq!(bytes, data.len() as u64);
        assert!(torn);
        let (_, torn) = for_each_line(&b"a\n"[..], |_| {}).unwrap();
        assert!(!torn);
    }

    #[test]
    fn counts_messages_per_connection_and_checks_blocks() {
        let p = Payload::small(64).unwrap();
        let d = TempDir::new();
        let mut data = Vec::new();
        for (k, conn) in [(0, 1), (1, 1), (2, 3), (3, 3), (4, 4)] {
            let mut m = Vec::new();
            p.write_message(k, &mut m);
            let line = String::from_utf8(envelope(k, &m)).unwrap();
            data.extend(
                line.replace("\"conn\":0", &format!("\"conn\":{conn}"))
                    .into_bytes(),
            );
        }
        std::fs::write(d.0.join("x.jsonl"), &data).unwrap();
        let s = check_recording(&d.0, Format::Envelope, "bench", &p, 5).unwrap();
        assert_eq!(
            s.per_connection,
            [
                ConnCount {
                    conn: 1,
                    messages: 2
                },
                ConnCount {
                    conn: 3,
                    messages: 2
                },
                ConnCount {
                    conn: 4,
                    messages: 1
                }
            ]
        );
        assert_eq!(s.connections, 3);
        check_blocks(&s, &[2, 2, 1]).unwrap();
        let e = check_blocks(&s, &[2, 3]).unwrap_err();
        assert!(e.to_string().contains("[2, 2, 1]"), "{e:#}");
    }
}
