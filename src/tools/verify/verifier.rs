//! The verifier's walk over a recording: entering files, sorting each line (raw, too long, torn,
//! not a record, a record), checking manifests, the exchanges' sequences, and the final report.

use std::collections::BTreeMap;
use std::hash::Hasher as _;
use std::sync::Arc;

use super::state::{Chains, Expected, FileState, Link, StreamState, Where, lexical, push_window};
use super::{Issue, IssueKind, MAX_LISTED, Report, Severity, VerifyOptions, Window};
use crate::book::{Books, BreakKind, Msg, Position};
use crate::read::{Item, RecordingFile};
use crate::tools::LineKind;
use crate::tools::venue_seq::{self, Finding, Point};

pub(super) struct Verifier {
    pub(super) opts: VerifyOptions,
    pub(super) report: Report,
    pub(super) streams: BTreeMap<String, StreamState>,
    pub(super) file: Option<FileState>,
    pub(super) points: Vec<Point>,
    /// The rebuilt order books (`None` with `--no-books`).
    pub(super) books: Option<Books>,
    /// The exchange-sequence check flagged the message being read (a book's sequence break on
    /// it is the same finding: counted in the book's report, not listed twice).
    pub(super) venue_flagged: bool,
    /// What the chain checks need, collected file by file.
    pub(super) chains: Chains,
}

impl Verifier {
    pub(super) fn new(opts: VerifyOptions) -> Self {
        Self {
            opts,
            report: Report::default(),
            streams: BTreeMap::new(),
            file: None,
            points: Vec::new(),
            books: opts.books.then(Books::new),
            venue_flagged: false,
            chains: Chains::default(),
        }
    }

    pub(super) fn issue(
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
    pub(super) fn enter(&mut self, file: &RecordingFile) -> Arc<str> {
        let path = file.path.to_string_lossy();
        if let Some(f) = &self.file
            && *f.path == *path
        {
            return f.path.clone();
        }
        let path: Arc<str> = Arc::from(path.as_ref());
        let logical = lexical(&file.path.with_file_name(file.logical_name()));
        self.chains.read.insert(logical.clone());
        if file.is_open {
            // Its stream by name, for an open file with no complete line yet (its first line
            // tells the stream when there is one).
            self.chains.unfinished.insert(file.name_hints().stream);
        }
        let mut manifest = None;
        if !file.is_open {
            let m = crate::store::manifest::existing_for_sealed(&file.path);
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
        if let Some(m) = &manifest {
            if m.recovered {
                self.chains.unfinished.insert(m.stream.clone());
            }
            if let Some(chain) = &m.chain {
                self.chains.links.push(Link {
                    path: path.clone(),
                    logical,
                    stream: m.stream.clone(),
                    format: m.format.clone(),
                    chain: chain.clone(),
                });
            }
        }
        let hash = manifest
            .as_ref()
            .map(|_| Box::<twox_hash::XxHash3_64>::default());
        self.file = Some(FileState {
            path: path.clone(),
            raw_manifest: manifest.as_ref().is_some_and(|m| m.format == "raw"),
            manifest,
            hash,
            bytes: 0,
            hashable: true,
            failed: false,
            raw_ok: None,
        });
        path
    }

    /// Whether the raw lines of `file` belong to a raw-format recording: its manifest says so,
    /// or its events sidecar is beside it. Otherwise the file holds no wsrec record, a problem
    /// said once (at its first line that is no record).
    fn raw_allowed(&mut self, file: &crate::read::RecordingFile, at: &Where) -> bool {
        let Some(f) = &mut self.file else {
            return true;
        };
        if let Some(ok) = f.raw_ok {
            return ok;
        }
        let sidecar =
            crate::store::rotation::events_path(&file.path.with_file_name(file.logical_name()));
        let ok = f.raw_manifest || crate::fsutil::exists_in_any_form(&sidecar);
        f.raw_ok = Some(ok);
        if !ok {
            self.issue(
                IssueKind::NotRecording,
                Severity::Problem,
                Some(at),
                None,
                format!(
                    "holds no wsrec record: this line is not an envelope record, and the file is no raw-format recording (no manifest of format raw, no events sidecar {}); move files that are not recordings out of the recording's directory",
                    sidecar.display()
                ),
            );
        }
        ok
    }

    /// Notes the stream of a file still `.open` (being written, or left by a kill): its chain
    /// may end before it without a close.
    fn note_open(&mut self, file: &crate::read::RecordingFile, line: u64, stream: &str) {
        if file.is_open && line == 1 {
            self.chains.unfinished.insert(stream.to_owned());
        }
    }

    pub(super) fn item(&mut self, item: Item<'_>) {
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
                match LineKind::of(file, format, &info, bytes) {
                    LineKind::TooLong => self.issue(
                        IssueKind::LineTooLong,
                        Severity::Problem,
                        Some(&at),
                        None,
                        format!("line longer than {} bytes; not read", crate::read::MAX_LINE),
                    ),
                    LineKind::Torn { open: true } => {
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
                    }
                    LineKind::Torn { open: false } => {
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
                    LineKind::Raw => {
                        if self.raw_allowed(file, &at) {
                            self.note_open(file, info.number, raw_stream);
                            self.raw_line(raw_stream, bytes, &at);
                        }
                    }
                    LineKind::Invalid(why) => self.issue(
                        IssueKind::InvalidLine,
                        Severity::Problem,
                        Some(&at),
                        None,
                        format!("not a record: {why}"),
                    ),
                    LineKind::Record(entry) => {
                        self.note_open(file, info.number, entry.stream());
                        self.entry(entry, bytes, file, &at);
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

    pub(super) fn check_manifest(&mut self, f: FileState, lines: u64, path: Arc<str>) {
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

    pub(super) fn stream(&mut self, name: &str) -> &mut StreamState {
        if !self.streams.contains_key(name) {
            let mut s = StreamState::default();
            s.report.stream = name.to_owned();
            s.report.format = "envelope";
            self.streams.insert(name.to_owned(), s);
        }
        // Inserted just above when missing.
        self.streams.get_mut(name).expect("stream state exists")
    }

    pub(super) fn raw_line(&mut self, stream: &str, bytes: &[u8], at: &Where) {
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
        self.venue_flagged = false;
        self.venue_points(stream, 0, &points, at);
        self.points = points;
        // Raw lines carry no connection or time: one connection, numbered 0.
        if let Ok(text) = std::str::from_utf8(bytes) {
            self.book_message(stream, 0, 0, at, text);
        }
    }

    pub(super) fn venue_points(&mut self, stream: &str, conn: u64, points: &[Point], at: &Where) {
        for p in points {
            let s = self.stream(stream);
            s.report.venue_checked += 1;
            let Some(f) = s.venue.observe(conn, p) else {
                continue;
            };
            s.report.venue_breaks += 1;
            self.venue_flagged = true;
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

    /// Hands a message to the books.
    pub(super) fn book_message(
        &mut self,
        stream: &str,
        conn: u64,
        ts: u64,
        at: &Where,
        text: &str,
    ) {
        let Some(books) = &mut self.books else {
            return;
        };
        let position = Position {
            file: at.file.clone(),
            line: at.line,
        };
        books.message(
            &Msg {
                stream,
                conn,
                ts,
                at: &position,
            },
            text,
        );
        self.book_breaks();
    }

    /// Lists the books' new breaks: unexplained ones as problems, updates that never got a
    /// snapshot as warnings, explained ones only counted (in the book's report).
    pub(super) fn book_breaks(&mut self) {
        let Some(books) = &mut self.books else {
            return;
        };
        let breaks = books.take_breaks();
        self.list_breaks(breaks);
    }

    fn list_breaks(&mut self, breaks: Vec<crate::book::Break>) {
        for b in breaks {
            if b.explained.is_some() || (b.kind == BreakKind::SequenceGap && self.venue_flagged) {
                continue;
            }
            let at = Where {
                file: b.at.file.clone(),
                line: b.at.line,
            };
            let severity = if b.kind == BreakKind::NoSnapshot {
                Severity::Warning
            } else {
                Severity::Problem
            };
            let after = if b.kind == BreakKind::NoSnapshot {
                "; the book was never rebuilt on that connection (is `snapshots` off, or did the fetch fail?)"
            } else {
                "; not proven from here until its next snapshot"
            };
            self.issue(
                IssueKind::BookBreak,
                severity,
                Some(&at),
                Some(&b.book.stream),
                format!(
                    "{} {} {} book: {}: {}{after}",
                    b.book.venue,
                    b.book.channel,
                    b.book.symbol,
                    b.kind.describe(),
                    b.detail
                ),
            );
        }
    }

    pub(super) fn finish(mut self) -> Report {
        self.check_chains();
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
        if let Some(books) = self.books.take() {
            let (reports, breaks) = books.finish();
            self.list_breaks(breaks);
            self.report.books_proven = reports.iter().filter(|r| r.proven()).count() as u64;
            self.report.checksums_checked = reports.iter().map(|r| r.checksums_checked).sum();
            self.report.checksums_failed = reports.iter().map(|r| r.checksums_failed).sum();
            self.report.books = reports;
        }
        self.report.streams = std::mem::take(&mut self.streams)
            .into_values()
            .map(|s| s.report)
            .collect();
        self.report.ok = self.report.problems == 0;
        self.report
    }
}
