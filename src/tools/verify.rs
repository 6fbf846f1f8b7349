//! `wsrec verify`: reads a recording end to end and reports everything that is wrong with it,
//! and every disconnect window, as a report for people or (`--json`) for machines.
//!
//! Problems (exit code 1): lines that are not records, torn last lines of closed files, files
//! that cannot be read to their end, `seq` gaps and duplicates, messages dropped under
//! `when_full = "drop_newest"` or not written (disk full, write errors), breaks in an exchange's
//! own sequence numbers (see [`super::venue_seq`]), manifests that do not match their file, and a
//! recorder run that was killed or crashed: what it received in its last moments was never
//! written. Such a run is reported once per stream: by the `recovered` event of the file it left
//! open (with the file, when it was last written and how many bytes were cut; an empty file
//! means the run wrote nothing to it at all), or, when no such event is there, as an unclean
//! stop when the next run starts without the previous one's `disconnected` events. Warnings
//! (exit code 0): the torn tail of an `.open` file (it may still be being written), and further
//! files the same stop left open (a raw stream's sidecar, a file closing at the kill).
//!
//! The text report lists problems and warnings under headings of their own.
//!
//! Per stream it follows the recorder's runs (a new run restarts `conn` and `seq`), the set of
//! live connections (a disconnect window opens when the last one ends and closes at the next
//! `connected`), and `seq`, allowing the small reordering that overlapping connections cause.
//! Memory stays bounded: listed issues and windows are capped, everything is counted.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher as _;
use std::io::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::venue_seq::{self, Finding, Point};
use super::{Progress, find_files, format_duration_ns, format_ts};
use crate::read::{Entry, EventDetail, Format, Item, Order, Payload, RecordingFile, Scan};

/// Issues listed in the report (all are counted).
pub const MAX_LISTED: usize = 1000;
/// Disconnect windows listed per stream (all are counted and timed).
pub const MAX_WINDOWS: usize = 1000;
/// A missing `seq` may still arrive this many numbers later (overlapping connections).
const REORDER_WINDOW: u64 = 1 << 16;
/// Open `seq` holes tracked per stream before the oldest are settled as gaps.
const MAX_HOLES: usize = 4096;

/// `wsrec verify` found problems (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("verification failed: {problems} problem(s); see the report above")]
pub struct VerifyFailed {
    /// Problems found.
    pub problems: u64,
}

/// What to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Check the exchanges' own sequence numbers.
    pub venue: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { venue: true }
    }
}

/// How bad an issue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something is wrong with the recording.
    Problem,
    /// Worth knowing, not wrong.
    Warning,
}

/// What kind of issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A line that is not a record.
    InvalidLine,
    /// A line over [`crate::read::MAX_LINE`].
    LineTooLong,
    /// The last line has no newline.
    TornLine,
    /// A file cannot be opened or read to its end.
    Unreadable,
    /// `seq` numbers missing.
    SeqGap,
    /// A `seq` number seen twice.
    SeqDuplicate,
    /// Messages dropped by the recorder (`dropped` event).
    Dropped,
    /// Lines the recorder could not write (`disk_full_gap`, `write_error_gap` events).
    NotWritten,
    /// A file a killed or crashed run left open, repaired at the next start (`recovered`
    /// event): the run's last messages were not written.
    Recovered,
    /// The exchange's own numbering skips.
    VenueGap,
    /// The exchange's own numbering repeats or goes back.
    VenueBackwards,
    /// A manifest that does not match its file, or cannot be read.
    Manifest,
    /// A recorder run ended without `disconnected` events (killed or crashed).
    UncleanStop,
}

/// One issue, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// What.
    pub kind: IssueKind,
    /// How bad.
    pub severity: Severity,
    /// The file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// What is wrong, in words.
    pub detail: String,
}

/// A time without a live connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// When the last connection ended (ns).
    pub start_ns: u64,
    /// When the next one was up (ns); `None` if the recording ends first.
    pub end_ns: Option<u64>,
    /// `end - start`.
    pub duration_ns: Option<u64>,
    /// Why the connection ended (the `disconnected` event's `reason`).
    pub reason: String,
    /// The connection that ended.
    pub conn: u64,
    /// Connection attempts that failed in between.
    pub failed_attempts: u64,
    /// Where the window starts.
    pub file: String,
    /// Line in `file`.
    pub line: u64,
}

/// What was found about one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamReport {
    /// Stream name.
    pub stream: String,
    /// `envelope` or `raw`.
    pub format: &'static str,
    /// Messages.
    pub messages: u64,
    /// Event lines.
    pub events: u64,
    /// First receive time.
    pub first_ts: Option<u64>,
    /// Last receive time.
    pub last_ts: Option<u64>,
    /// Recorder runs seen (each restarts `conn` and `seq`).
    pub runs: u64,
    /// Successful connections.
    pub connections: u64,
    /// Failed connection attempts.
    pub connect_failures: u64,
    /// Smallest `seq`.
    pub seq_first: Option<u64>,
    /// Largest `seq`.
    pub seq_last: Option<u64>,
    /// `seq` gaps (ranges).
    pub seq_gaps: u64,
    /// `seq` numbers missing in all gaps.
    pub seq_missing: u64,
    /// `seq` numbers seen more than once.
    pub seq_duplicates: u64,
    /// Messages the recorder marked as dropped.
    pub dropped: u64,
    /// Lines the recorder marked as not written (disk full, write errors).
    pub not_written: u64,
    /// Recorder runs that were killed or crashed (files left open, or no `disconnected`).
    pub unclean_stops: u64,
    /// Breaks in the exchange's own numbering.
    pub venue_breaks: u64,
    /// Messages whose exchange numbering was checked.
    pub venue_checked: u64,
    /// Disconnect windows (the first [`MAX_WINDOWS`]).
    pub disconnects: Vec<Window>,
    /// Windows beyond the list.
    pub disconnects_not_listed: u64,
    /// Total time without a connection (closed windows).
    pub disconnected_ns: u64,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// No problems.
    pub ok: bool,
    /// Files read.
    pub files: u64,
    /// Of which `.open`.
    pub open_files: u64,
    /// Of which compressed.
    pub compressed_files: u64,
    /// Lines read.
    pub lines: u64,
    /// Message lines.
    pub messages: u64,
    /// Event lines.
    pub events: u64,
    /// Manifests compared with their file.
    pub manifests_checked: u64,
    /// Problems found.
    pub problems: u64,
    /// Warnings.
    pub warnings: u64,
    /// Per stream, by name.
    pub streams: Vec<StreamReport>,
    /// Issues (the first [`MAX_LISTED`]).
    pub issues: Vec<Issue>,
    /// Issues beyond the list.
    pub issues_not_listed: u64,
}

/// Runs `wsrec verify` on the recordings under `paths`; the report as JSON if `json`.
///
/// # Errors
/// Bad arguments, or [`VerifyFailed`] when problems were found (after printing the report).
pub fn run(paths: &[std::path::PathBuf], opts: VerifyOptions, json: bool) -> anyhow::Result<()> {
    let files = find_files(paths)?;
    let total = files.iter().map(|f| f.size).sum();
    let mut progress = Progress::new(total, true);
    let report = verify(files, opts, &mut progress);
    progress.finish();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(&report))?;
    }
    out.flush()?;
    if report.problems > 0 {
        return Err(VerifyFailed {
            problems: report.problems,
        }
        .into());
    }
    Ok(())
}

/// Checks `files` and returns the report.
pub fn verify(files: Vec<RecordingFile>, opts: VerifyOptions, progress: &mut Progress) -> Report {
    let mut v = Verifier::new(opts);
    let mut scan = Scan::new(files, Order::Files);
    while let Some(item) = scan.next_item() {
        v.item(item);
        progress.update(scan.bytes_read());
    }
    v.finish()
}

/// A place in the recording.
#[derive(Clone, Debug)]
struct Where {
    file: Arc<str>,
    line: u64,
}

/// Follows one stream's `seq`: in order, ahead (a hole opens), back into a hole (it fills), or
/// back onto a number already seen (a duplicate).
#[derive(Debug, Default)]
struct SeqTracker {
    next: Option<u64>,
    /// Open holes: first missing -> (last missing, where it was noticed).
    holes: BTreeMap<u64, (u64, Where)>,
}

/// What one `seq` was.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    InOrder,
    Ahead,
    Filled,
    Duplicate,
}

impl SeqTracker {
    fn observe(&mut self, seq: u64, at: &Where) -> Seen {
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
    fn settled(&mut self) -> Vec<(u64, u64, Where)> {
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
    fn finish(&mut self, next: Option<u64>) -> Vec<(u64, u64, Where)> {
        self.next = next;
        std::mem::take(&mut self.holes)
            .into_iter()
            .map(|(s, (e, w))| (s, e, w))
            .collect()
    }
}

/// A window still open.
#[derive(Debug)]
struct OpenWindow {
    start_ns: u64,
    reason: String,
    conn: u64,
    failed_attempts: u64,
    at: Where,
}

/// What verify keeps per stream.
#[derive(Debug, Default)]
struct StreamState {
    report: StreamReport,
    /// A raw-format stream: its `seq` lives only in the sidecar, so it is not checked.
    raw: bool,
    seq: SeqTracker,
    live: BTreeSet<u64>,
    max_conn: u64,
    pid: Option<u64>,
    window: Option<OpenWindow>,
    /// Dropped or unwritten messages not yet matched to a gap.
    dropped_credit: u64,
    venue: venue_seq::Checker,
    last_at: Option<Where>,
    /// The stream's last line was a `recovered` event: the run it ends is already reported.
    killed: bool,
}

/// The current file, for manifests and counts.
struct FileState {
    path: Arc<str>,
    manifest: Option<Expected>,
    hash: Option<Box<twox_hash::XxHash3_64>>,
    bytes: u64,
    hashable: bool,
    failed: bool,
}

/// A manifest's figures.
#[derive(Debug, serde::Deserialize)]
struct Expected {
    lines: u64,
    bytes: u64,
    xxh3_64: String,
}

struct Verifier {
    opts: VerifyOptions,
    report: Report,
    streams: BTreeMap<String, StreamState>,
    file: Option<FileState>,
    points: Vec<Point>,
}

impl Verifier {
    fn new(opts: VerifyOptions) -> Self {
        Self {
            opts,
            report: Report::default(),
            streams: BTreeMap::new(),
            file: None,
            points: Vec::new(),
        }
    }

    fn issue(
        &mut self,
        kind: IssueKind,
        severity: Severity,
        at: Option<&Where>,
        stream: Option<&str>,
        detail: String,
    ) {
        match severity {
            Severity::Problem => self.report.problems += 1,
            Severity::Warning => self.report.warnings += 1,
        }
        if self.report.issues.len() >= MAX_LISTED {
            self.report.issues_not_listed += 1;
            return;
        }
        self.report.issues.push(Issue {
            kind,
            severity,
            file: at.map(|w| w.file.to_string()),
            line: at.map(|w| w.line).filter(|&l| l > 0),
            stream: stream.map(str::to_owned),
            detail,
        });
    }

    /// Starts following `file` if it is not the current one.
    fn enter(&mut self, file: &RecordingFile) -> Arc<str> {
        let path = file.path.to_string_lossy();
        if let Some(f) = &self.file
            && *f.path == *path
        {
            return f.path.clone();
        }
        let path: Arc<str> = Arc::from(path.as_ref());
        let mut manifest = None;
        if !file.is_open {
            let m = file
                .path
                .with_file_name(format!("{}.manifest.json", file.logical_name()));
            if let Ok(bytes) = std::fs::read(&m) {
                match serde_json::from_slice::<Expected>(&bytes) {
                    Ok(e) => manifest = Some(e),
                    Err(e) => self.issue(
                        IssueKind::Manifest,
                        Severity::Problem,
                        Some(&Where {
                            file: path.clone(),
                            line: 0,
                        }),
                        None,
                        format!(
                            "its manifest {} cannot be read ({e}); the file cannot be checked against it",
                            m.display()
                        ),
                    ),
                }
            }
        }
        let hash = manifest
            .as_ref()
            .map(|_| Box::<twox_hash::XxHash3_64>::default());
        self.file = Some(FileState {
            path: path.clone(),
            manifest,
            hash,
            bytes: 0,
            hashable: true,
            failed: false,
        });
        path
    }

    fn item(&mut self, item: Item<'_>) {
        match item {
            Item::Line {
                file,
                format,
                info,
                bytes,
                raw_stream,
                ..
            } => {
                let path = self.enter(file);
                self.report.lines += 1;
                if let Some(f) = &mut self.file {
                    if info.too_long {
                        f.hashable = false;
                    }
                    f.bytes += bytes.len() as u64 + u64::from(!info.torn);
                    if let Some(h) = &mut f.hash {
                        h.write(bytes);
                        if !info.torn {
                            h.write(b"\n");
                        }
                    }
                }
                let at = Where {
                    file: path,
                    line: info.number,
                };
                if info.too_long {
                    self.issue(
                        IssueKind::LineTooLong,
                        Severity::Problem,
                        Some(&at),
                        None,
                        format!("line longer than {} bytes; not read", crate::read::MAX_LINE),
                    );
                } else if info.torn {
                    if file.is_open {
                        self.issue(
                            IssueKind::TornLine,
                            Severity::Warning,
                            Some(&at),
                            None,
                            format!(
                                "last line incomplete ({} bytes): the file is still being written, or a crash left it (`wsrec record` recovers it at its next start)",
                                bytes.len()
                            ),
                        );
                    } else {
                        self.issue(
                            IssueKind::TornLine,
                            Severity::Problem,
                            Some(&at),
                            None,
                            format!(
                                "torn last line ({} bytes, no newline): the file was cut short",
                                bytes.len()
                            ),
                        );
                    }
                } else if format == Format::Raw {
                    self.raw_line(raw_stream, bytes, &at);
                } else {
                    match Entry::parse(bytes) {
                        Ok(entry) => self.entry(entry, bytes, file, &at),
                        Err(why) => self.issue(
                            IssueKind::InvalidLine,
                            Severity::Problem,
                            Some(&at),
                            None,
                            format!("not a record: {why}"),
                        ),
                    }
                }
            }
            Item::FileEnd { file, lines, .. } => {
                let path = self.enter(file);
                self.report.files += 1;
                if file.is_open {
                    self.report.open_files += 1;
                }
                if file.codec != crate::read::Codec::Plain {
                    self.report.compressed_files += 1;
                }
                if let Some(f) = self.file.take() {
                    self.check_manifest(f, lines, path);
                }
            }
            Item::Error(e) => {
                if let Some(f) = &mut self.file {
                    f.failed = true;
                }
                let file = match e {
                    crate::read::ReadError::Stream { path, line, .. } => Some(Where {
                        file: Arc::from(path.to_string_lossy().as_ref()),
                        line: *line,
                    }),
                    _ => None,
                };
                self.issue(
                    IssueKind::Unreadable,
                    Severity::Problem,
                    file.as_ref(),
                    None,
                    e.to_string(),
                );
            }
        }
    }

    fn check_manifest(&mut self, f: FileState, lines: u64, path: Arc<str>) {
        let (Some(m), Some(hash)) = (f.manifest, f.hash) else {
            return;
        };
        if f.failed {
            return;
        }
        self.report.manifests_checked += 1;
        let at = Where {
            file: path,
            line: 0,
        };
        let mut wrong = Vec::new();
        if m.lines != lines {
            wrong.push(format!("{lines} lines, the manifest says {}", m.lines));
        }
        if m.bytes != f.bytes {
            wrong.push(format!("{} bytes, the manifest says {}", f.bytes, m.bytes));
        }
        if f.hashable {
            let got = format!("{:016x}", hash.finish());
            if !got.eq_ignore_ascii_case(&m.xxh3_64) {
                wrong.push(format!("XXH3-64 {got}, the manifest says {}", m.xxh3_64));
            }
        }
        if !wrong.is_empty() {
            self.issue(
                IssueKind::Manifest,
                Severity::Problem,
                Some(&at),
                None,
                format!(
                    "does not match its manifest: {}; the file changed after it was closed",
                    wrong.join("; ")
                ),
            );
        }
    }

    fn stream(&mut self, name: &str) -> &mut StreamState {
        if !self.streams.contains_key(name) {
            let mut s = StreamState::default();
            s.report.stream = name.to_owned();
            s.report.format = "envelope";
            self.streams.insert(name.to_owned(), s);
        }
        // Inserted just above when missing.
        self.streams.get_mut(name).expect("stream state exists")
    }

    fn raw_line(&mut self, stream: &str, bytes: &[u8], at: &Where) {
        self.report.messages += 1;
        let venue = self.opts.venue;
        let mut points = std::mem::take(&mut self.points);
        let s = self.stream(stream);
        s.raw = true;
        s.report.format = "raw";
        s.report.messages += 1;
        s.last_at = Some(at.clone());
        points.clear();
        if venue {
            venue_seq::points(bytes, &mut points);
        }
        self.venue_points(stream, 0, &points, at);
        self.points = points;
    }

    fn venue_points(&mut self, stream: &str, conn: u64, points: &[Point], at: &Where) {
        for p in points {
            let s = self.stream(stream);
            s.report.venue_checked += 1;
            let Some(f) = s.venue.observe(conn, p) else {
                continue;
            };
            s.report.venue_breaks += 1;
            let (kind, detail) = match f {
                Finding::Gap { expected, got } => (
                    IssueKind::VenueGap,
                    format!(
                        "{} {} `{}` skips: expected {expected}, got {got} (messages missing at the exchange or in the recording)",
                        p.venue,
                        if p.key.is_empty() { "feed" } else { &p.key },
                        p.field
                    ),
                ),
                Finding::Backwards { last, got } => (
                    IssueKind::VenueBackwards,
                    format!(
                        "{} {} `{}` goes back: {got} after {last} (a repeated or reordered message)",
                        p.venue,
                        if p.key.is_empty() { "feed" } else { &p.key },
                        p.field
                    ),
                ),
            };
            self.issue(kind, Severity::Problem, Some(at), Some(stream), detail);
        }
    }

    fn entry(&mut self, entry: Entry<'_>, line: &[u8], file: &RecordingFile, at: &Where) {
        let name = match entry.stream() {
            // Repairs before the stream was named from the configuration wrote `""`.
            "" => Some(file.name_hints().stream)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".to_owned()),
            s => s.to_owned(),
        };
        let ts = entry.ts();
        let conn = entry.conn();
        let recovered = matches!(&entry, Entry::Event(e) if e.name == "recovered");
        let after_kill = {
            let s = self.stream(&name);
            if file.is_events {
                s.raw = true;
                s.report.format = "raw";
            }
            if s.report.runs == 0 {
                s.report.runs = 1;
            }
            if recovered {
                s.killed
            } else {
                std::mem::take(&mut s.killed)
            }
        };
        match entry {
            Entry::Message(m) => {
                self.report.messages += 1;
                let s = self.stream(&name);
                s.report.messages += 1;
                s.last_at = Some(at.clone());
                if !s.live.contains(&conn) {
                    if let Some(w) = s.window.take() {
                        // The `connected` line is missing; the message shows the connection was up.
                        close_window(&mut s.report, w, ts);
                    }
                    s.live.insert(conn);
                    s.max_conn = s.max_conn.max(conn);
                }
                if !s.raw {
                    s.report.seq_first = Some(s.report.seq_first.map_or(m.seq, |f| f.min(m.seq)));
                    s.report.seq_last = Some(s.report.seq_last.map_or(m.seq, |l| l.max(m.seq)));
                    let seen = s.seq.observe(m.seq, at);
                    if seen == Seen::Duplicate {
                        s.report.seq_duplicates += 1;
                        self.issue(
                            IssueKind::SeqDuplicate,
                            Severity::Problem,
                            Some(at),
                            Some(&name),
                            format!("seq {} appears again (a duplicated line)", m.seq),
                        );
                    } else if seen == Seen::Ahead {
                        let settled = self.stream(&name).seq.settled();
                        self.gaps(&name, settled);
                    }
                }
                if self.opts.venue
                    && let Payload::Json(text) = m.payload
                {
                    let mut points = std::mem::take(&mut self.points);
                    points.clear();
                    venue_seq::points(text.as_bytes(), &mut points);
                    self.venue_points(&name, conn, &points, at);
                    self.points = points;
                }
            }
            Entry::Event(e) => {
                self.report.events += 1;
                let detail = EventDetail::parse(line);
                self.stream(&name).report.events += 1;
                match &*e.name {
                    "connected" | "connect_failed" => {
                        let s = self.stream(&name);
                        // After a `recovered` event, the next connection is a new run's even
                        // when the killed run's file held none of its records.
                        let new_run = after_kill
                            || conn <= s.max_conn
                            || (e.name == "connected"
                                && matches!((s.pid, detail.pid), (Some(a), Some(b)) if a != b));
                        if new_run {
                            self.new_run(&name, ts, conn, after_kill);
                        } else if s.max_conn == 0 && conn == 1 && s.report.messages == 0 {
                            // The very start of a run: seq starts at 0.
                            s.seq.next = Some(0);
                        }
                        let s = self.stream(&name);
                        s.max_conn = s.max_conn.max(conn);
                        if e.name == "connected" {
                            s.report.connections += 1;
                            if detail.pid.is_some() {
                                s.pid = detail.pid;
                            }
                            s.live.insert(conn);
                            if let Some(w) = s.window.take() {
                                close_window(&mut s.report, w, ts);
                            }
                        } else {
                            s.report.connect_failures += 1;
                            match &mut s.window {
                                Some(w) => w.failed_attempts += 1,
                                None if s.live.is_empty() => {
                                    s.window = Some(OpenWindow {
                                        start_ns: ts,
                                        reason: "connect_failed".to_owned(),
                                        conn,
                                        failed_attempts: 1,
                                        at: at.clone(),
                                    });
                                }
                                None => {}
                            }
                        }
                    }
                    "disconnected" => {
                        let s = self.stream(&name);
                        s.live.remove(&conn);
                        s.venue.forget_conn(conn);
                        if s.live.is_empty() && s.window.is_none() {
                            s.window = Some(OpenWindow {
                                start_ns: ts,
                                reason: detail.reason.unwrap_or_else(|| "unknown".to_owned()),
                                conn,
                                failed_attempts: 0,
                                at: at.clone(),
                            });
                        }
                    }
                    "dropped" => {
                        let count = detail.count.unwrap_or(0);
                        let s = self.stream(&name);
                        s.report.dropped += count;
                        s.dropped_credit += count;
                        self.issue(
                            IssueKind::Dropped,
                            Severity::Problem,
                            Some(at),
                            Some(&name),
                            format!(
                                "{count} message(s) dropped by the recorder (when_full = \"drop_newest\": the disk or the writer could not keep up)"
                            ),
                        );
                    }
                    "disk_full_gap" | "write_error_gap" => {
                        let lost = detail.lost.unwrap_or(0);
                        // A write error can also take event lines and the marks of drops.
                        let dropped = detail.dropped.unwrap_or(0);
                        let s = self.stream(&name);
                        s.report.not_written += lost;
                        s.dropped_credit += lost + dropped;
                        let why = match (detail.from_ts, detail.to_ts) {
                            (Some(a), Some(b)) if e.name == "disk_full_gap" => format!(
                                "free disk space was below disk_stop from {} to {}",
                                format_ts(a),
                                format_ts(b)
                            ),
                            _ if e.name == "disk_full_gap" => {
                                "free disk space was below disk_stop".to_owned()
                            }
                            (Some(a), Some(b)) => format!(
                                "writing failed (disk full or I/O error) for lines received from {} to {}",
                                format_ts(a),
                                format_ts(b)
                            ),
                            _ => "writing failed (disk full or I/O error)".to_owned(),
                        };
                        let mut also = String::new();
                        if let Some(n) = detail.lost_events.filter(|&n| n > 0) {
                            also.push_str(&format!(", and {n} event line(s)"));
                        }
                        if dropped > 0 {
                            also.push_str(&format!(
                                ", and the mark of {dropped} message(s) dropped under drop_newest"
                            ));
                        }
                        self.issue(
                            IssueKind::NotWritten,
                            Severity::Problem,
                            Some(at),
                            Some(&name),
                            format!("{lost} message(s){also} not written by the recorder: {why}"),
                        );
                    }
                    "recovered" => {
                        self.recovered(&name, ts, &detail, after_kill, at);
                        // Written at the repair, not when the data came: it says nothing about
                        // when the stream was last seen.
                        return;
                    }
                    _ => {}
                }
            }
        }
        // After the event is handled: a new run's window starts at the previous record.
        let s = self.stream(&name);
        s.report.first_ts = Some(s.report.first_ts.map_or(ts, |f| f.min(ts)));
        s.report.last_ts = Some(s.report.last_ts.map_or(ts, |l| l.max(ts)));
    }

    /// A `recovered` event at `at`, written at `ts` when the next start repaired a file of
    /// `name` that a killed or crashed run left open. The first of a stop is the problem that
    /// reports the run; further files the same stop left open (`again`) are warnings.
    fn recovered(&mut self, name: &str, ts: u64, d: &EventDetail, again: bool, at: &Where) {
        let s = self.stream(name);
        s.killed = true;
        let cut = match d.cut_bytes.unwrap_or(0) {
            0 => "no bytes cut".to_owned(),
            n => format!("{n} bytes of an unfinished last line cut off"),
        };
        let repaired = format!("repaired at the next start, {}: {cut}", format_ts(ts));
        let file = d
            .file
            .as_deref()
            .map_or_else(|| "this file".to_owned(), |f| format!("`{f}`"));
        if again {
            self.issue(
                IssueKind::Recovered,
                Severity::Warning,
                Some(at),
                Some(name),
                format!("{file} was also left open by the same stop; {repaired}"),
            );
            return;
        }
        s.report.unclean_stops += 1;
        let when = |word: &str| {
            d.last_write_ts
                .map(|t| format!(" {word} {}", format_ts(t)))
                .unwrap_or_default()
        };
        let detail = if d.lines == Some(0) {
            format!(
                "the recorder was killed or crashed before it wrote anything to {file}: nothing that run received for this stream{} was written ({repaired})",
                when("after")
            )
        } else {
            format!(
                "the recorder was killed or crashed while writing {file}: what that run received for this stream after its last write{} was not written ({repaired})",
                when("at")
            )
        };
        self.issue(
            IssueKind::Recovered,
            Severity::Problem,
            Some(at),
            Some(name),
            detail,
        );
    }

    /// A new recorder run of `name` starts with connection `conn` at `ts`; `reported`: the
    /// previous run's end was reported already (by a `recovered` event).
    fn new_run(&mut self, name: &str, ts: u64, conn: u64, reported: bool) {
        let s = self.stream(name);
        let holes = s.seq.finish(if conn == 1 { Some(0) } else { None });
        self.gaps(name, holes);
        let s = self.stream(name);
        s.report.runs += 1;
        s.max_conn = 0;
        s.pid = None;
        s.venue.clear();
        if !s.live.is_empty() {
            s.live.clear();
            let last = s.report.last_ts.unwrap_or(ts);
            let at = s.last_at.clone();
            // The previous run never wrote its `disconnected` events.
            let w = OpenWindow {
                start_ns: last.min(ts),
                reason: "recorder stopped without closing (killed or crashed)".to_owned(),
                conn: 0,
                failed_attempts: 0,
                at: at.clone().unwrap_or(Where {
                    file: Arc::from(""),
                    line: 0,
                }),
            };
            if s.window.is_none() {
                s.window = Some(w);
            }
            if reported {
                return;
            }
            s.report.unclean_stops += 1;
            self.issue(
                IssueKind::UncleanStop,
                Severity::Problem,
                at.as_ref(),
                Some(name),
                format!(
                    "the recorder stopped without closing its connections after {} (killed or crashed); messages received just before may be missing",
                    format_ts(last)
                ),
            );
        }
    }

    /// Reports settled `seq` holes, first as far as `dropped` events explain them.
    fn gaps(&mut self, name: &str, holes: Vec<(u64, u64, Where)>) {
        for (start, end, at) in holes {
            let missing = end - start + 1;
            let s = self.stream(name);
            let explained = missing.min(s.dropped_credit);
            s.dropped_credit -= explained;
            s.report.seq_gaps += 1;
            s.report.seq_missing += missing;
            if explained == missing {
                continue;
            }
            let range = if start == end {
                format!("seq {start} is missing")
            } else {
                format!("seq {start}..={end} are missing ({missing} messages)")
            };
            let marked = if explained > 0 {
                format!(", {explained} of them marked as dropped")
            } else {
                String::new()
            };
            self.issue(
                IssueKind::SeqGap,
                Severity::Problem,
                Some(&at),
                Some(name),
                format!("{range}{marked}: lines were lost or removed"),
            );
        }
    }

    fn finish(mut self) -> Report {
        let names: Vec<String> = self.streams.keys().cloned().collect();
        for name in names {
            let s = self.stream(&name);
            let holes = s.seq.finish(None);
            self.gaps(&name, holes);
            let s = self.stream(&name);
            if let Some(w) = s.window.take()
                && w.reason != "shutdown"
            {
                push_window(
                    &mut s.report,
                    Window {
                        start_ns: w.start_ns,
                        end_ns: None,
                        duration_ns: None,
                        reason: w.reason,
                        conn: w.conn,
                        failed_attempts: w.failed_attempts,
                        file: w.at.file.to_string(),
                        line: w.at.line,
                    },
                );
            }
        }
        self.report.streams = std::mem::take(&mut self.streams)
            .into_values()
            .map(|s| s.report)
            .collect();
        self.report.ok = self.report.problems == 0;
        self.report
    }
}

fn close_window(r: &mut StreamReport, w: OpenWindow, end: u64) {
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

fn push_window(r: &mut StreamReport, w: Window) {
    if r.disconnects.len() < MAX_WINDOWS {
        r.disconnects.push(w);
    } else {
        r.disconnects_not_listed += 1;
    }
}

/// The report as text for people.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let mut kinds = Vec::new();
    if r.open_files > 0 {
        kinds.push(format!("{} still open", r.open_files));
    }
    if r.compressed_files > 0 {
        kinds.push(format!("{} compressed", r.compressed_files));
    }
    let kinds = if kinds.is_empty() {
        String::new()
    } else {
        format!(" ({})", kinds.join(", "))
    };
    let _ = writeln!(
        o,
        "Read {} file(s){kinds}, {} lines: {} messages, {} events; {} manifest(s) checked.",
        r.files, r.lines, r.messages, r.events, r.manifests_checked
    );
    for s in &r.streams {
        let _ = writeln!(o);
        let span = match (s.first_ts, s.last_ts) {
            (Some(a), Some(b)) => format!(", {} to {}", format_ts(a), format_ts(b)),
            _ => String::new(),
        };
        let seq = match (s.seq_first, s.seq_last) {
            (Some(a), Some(b)) => format!(", seq {a}..={b}"),
            _ if s.format == "raw" => ", raw format (seq not checked)".to_owned(),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "{}: {} messages{span}{seq}, {} connection(s) in {} run(s)",
            s.stream, s.messages, s.connections, s.runs
        );
        let mut facts = Vec::new();
        if s.connect_failures > 0 {
            facts.push(format!(
                "{} failed connection attempt(s)",
                s.connect_failures
            ));
        }
        if s.seq_gaps > 0 {
            facts.push(format!(
                "{} seq gap(s), {} missing",
                s.seq_gaps, s.seq_missing
            ));
        }
        if s.seq_duplicates > 0 {
            facts.push(format!("{} duplicate seq", s.seq_duplicates));
        }
        if s.dropped > 0 {
            facts.push(format!("{} dropped", s.dropped));
        }
        if s.not_written > 0 {
            facts.push(format!("{} not written", s.not_written));
        }
        if s.unclean_stops > 0 {
            facts.push(format!("{} run(s) killed or crashed", s.unclean_stops));
        }
        if s.venue_checked > 0 {
            facts.push(format!(
                "exchange sequence checked on {} message(s), {} break(s)",
                s.venue_checked, s.venue_breaks
            ));
        }
        if !facts.is_empty() {
            let _ = writeln!(o, "  {}", facts.join("; "));
        }
        if s.disconnects.is_empty() {
            let _ = writeln!(o, "  no disconnect windows");
        } else {
            let _ = writeln!(
                o,
                "  {} disconnect window(s), {} in total:",
                s.disconnects.len() as u64 + s.disconnects_not_listed,
                format_duration_ns(s.disconnected_ns)
            );
        }
        for w in &s.disconnects {
            let attempts = if w.failed_attempts > 0 {
                format!(", {} failed attempt(s)", w.failed_attempts)
            } else {
                String::new()
            };
            let until = match w.duration_ns {
                Some(d) => format!("for {}", format_duration_ns(d)),
                None => "until the end of the recording".to_owned(),
            };
            let _ = writeln!(
                o,
                "    {} {until} ({}{attempts}) at {}:{}",
                format_ts(w.start_ns),
                w.reason,
                w.file,
                w.line
            );
        }
        if s.disconnects_not_listed > 0 {
            let _ = writeln!(o, "    … and {} more", s.disconnects_not_listed);
        }
    }
    // Each severity under its own heading, so a note is never read as a failure.
    for (sev, heading, n) in [
        (Severity::Problem, "Problems", r.problems),
        (Severity::Warning, "Warnings (not problems)", r.warnings),
    ] {
        if n == 0 {
            continue;
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "{heading}: {n}");
        let mut listed = 0u64;
        for i in r.issues.iter().filter(|i| i.severity == sev) {
            listed += 1;
            let place = match (&i.file, i.line) {
                (Some(f), Some(l)) => format!("{f}:{l}: "),
                (Some(f), None) => format!("{f}: "),
                _ => String::new(),
            };
            let stream = i
                .stream
                .as_deref()
                .map(|s| format!("[{s}] "))
                .unwrap_or_default();
            let _ = writeln!(o, "  {place}{stream}{}", i.detail);
        }
        if n > listed {
            let _ = writeln!(
                o,
                "  … and {} more not listed (`--json` has the same cap)",
                n - listed
            );
        }
    }
    let _ = writeln!(o);
    match (r.problems, r.warnings) {
        (0, 0) => {
            let _ = writeln!(o, "OK: no problems found.");
        }
        (0, w) => {
            let _ = writeln!(o, "OK: no problems found ({w} warning(s)).");
        }
        (p, _) => {
            let _ = writeln!(o, "FAILED: {p} problem(s).");
        }
    }
    o
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
    fn problems_and_warnings_are_listed_under_their_own_headings() {
        let issue = |severity, detail: &str| Issue {
            kind: IssueKind::Recovered,
            severity,
            file: Some("f".to_owned()),
            line: Some(1),
            stream: Some("s".to_owned()),
            detail: detail.to_owned(),
        };
        // Three problems and a warning, two of the problems beyond the list.
        let r = Report {
            problems: 3,
            warnings: 1,
            issues: vec![
                issue(Severity::Warning, "a note"),
                issue(Severity::Problem, "a failure"),
            ],
            issues_not_listed: 2,
            ..Report::default()
        };
        let text = render(&r);
        let problems = text.find("\nProblems: 3\n").expect(&text);
        let warnings = text.find("\nWarnings (not problems): 1\n").expect(&text);
        let (under_problems, under_warnings) = (&text[problems..warnings], &text[warnings..]);
        assert!(under_problems.contains("a failure"), "{text}");
        assert!(under_problems.contains("… and 2 more not listed"), "{text}");
        assert!(!under_problems.contains("a note"), "{text}");
        assert!(under_warnings.contains("a note"), "{text}");
        assert!(!under_warnings.contains("more not listed"), "{text}");
        assert!(text.ends_with("\nFAILED: 3 problem(s).\n"), "{text}");
        let ok = render(&Report {
            warnings: 1,
            issues: vec![issue(Severity::Warning, "a note")],
            ..Report::default()
        });
        assert!(!ok.contains("Problems"), "{ok}");
        assert!(
            ok.ends_with("OK: no problems found (1 warning(s)).\n"),
            "{ok}"
        );
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
