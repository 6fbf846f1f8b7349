//! `wsrec verify`: reads a recording end to end and reports everything that is wrong with it,
//! and every disconnect window, as a report for people or (`--json`) for machines.
//!
//! Snapshot lines (REST order-book snapshots the recorder fetched) are counted, per stream and in
//! total; they take no `seq` and are not checked against the exchange's numbering.
//!
//! Problems (exit code 1): files that hold no wsrec record (lines that are not envelope records
//! in a file that is no raw-format recording: a raw stream's data file is known by its manifest
//! or its events sidecar), lines that are not records, torn last lines of closed files, files
//! that cannot be read to their end, `seq` gaps and duplicates, messages dropped under
//! `when_full = "drop_newest"` or not written (disk full, write errors), breaks in an exchange's
//! own sequence numbers (see [`super::venue_seq`]), manifests that do not match their file, and a
//! recorder run that was killed or crashed: what it received in its last moments was never
//! written. Such a run is reported once per stream: by the `recovered` event of the file it left
//! open (with the file, when it was last written and how many bytes were cut; an empty file
//! means the run wrote nothing to it at all), or, when no such event is there, as an unclean
//! stop when the next run starts without the previous one's `disconnected` events. Warnings
//! (exit code 0): the torn tail of an `.open` file (it may still be being written), further
//! files the same stop left open (a raw stream's sidecar, a file closing at the kill), and
//! snapshots the recorder could not fetch (`snapshot_failed` events: the book cannot be rebuilt
//! from that connection's diffs until the next snapshot).
//!
//! Completeness (the manifests' chains, [`crate::store::manifest::Chain`]): a file a manifest
//! names as the one before it in its stream that is not there (deleted or moved), or that is
//! not the file it followed (another hash); a chain that stops at a file not closed by a clean
//! stop, with no file of the stream left open or recovered ("ends without a close: files
//! missing after X, or the recorder was killed"); and a manifest beside the files read whose
//! file is gone. Manifests written before chains say nothing of this and are checked as before.
//! The end of a chain is judged from the files read: verify a whole recording, not one file or
//! one directory of a date-split layout, to check its ends.
//!
//! Order books (unless `--no-books`): every book message of a venue [`crate::book`] knows is
//! applied to its rebuilt book; per book (stream, venue, channel, symbol) the report gives the
//! spans where it is proven (from a snapshot to a break, the end of its connection, or the end
//! of the recording) and every break with file:line and why (problems), checksums compared and
//! failed. A break that follows a gap the recorder marked (messages dropped or not written, a
//! `seq` gap: problems of their own) is explained and counted, not listed again; a connection's
//! end only ends its books' spans (the next connection starts from its own snapshot). Updates
//! that never got a REST snapshot are a warning. A book's sequence break on a message whose
//! exchange numbering the sequence check flagged already is the same finding: counted in the
//! book's report, listed once.
//!
//! The text report lists problems and warnings under headings of their own.
//!
//! Per stream it follows the recorder's runs (a new run restarts `conn` and `seq`), the set of
//! live connections (a disconnect window opens when the last one ends and closes at the next
//! `connected`), and `seq`, allowing the small reordering that overlapping connections cause.
//! Memory stays bounded: listed issues and windows are capped, everything is counted.
//!
//! This module holds the report's types and [`verify`]; `verifier` walks the files and lines,
//! `records` says what each record means, `state` keeps the per-stream and per-file state (and
//! the `seq` tracker), and [`render`] writes the text report.

use serde::Serialize;

use super::{Progress, find_files};
use crate::read::{Order, RecordingFile, Scan};

mod chain;
mod records;
mod render;
mod state;
mod verifier;

pub use render::render;
use verifier::Verifier;

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
    /// Rebuild every order book and prove it ([`crate::book`]).
    pub books: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            venue: true,
            books: true,
        }
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
    /// A file of the recording is missing: a manifest names it as the file before another in
    /// its stream, or a manifest is there without its file.
    MissingFile,
    /// A stream's chain of files stops at a file that was not closed by a clean stop, with no
    /// file left open or recovered after it: files are missing after it, or the recorder was
    /// killed.
    NoClose,
    /// A file that holds no wsrec record: not envelope records, and not a raw-format stream's
    /// data file (no raw manifest, no events sidecar).
    NotRecording,
    /// A recorder run ended without `disconnected` events (killed or crashed).
    UncleanStop,
    /// The recorder could not fetch a REST snapshot (`snapshot_failed` event).
    SnapshotFailed,
    /// A rebuilt order book stops being proven: a sequence gap, a checksum mismatch, an update
    /// for a missing level, a crossed book, an update before any snapshot (a problem); or
    /// updates that never got their REST snapshot (a warning).
    BookBreak,
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
    /// Snapshot lines.
    pub snapshots: u64,
    /// `snapshot_failed` events.
    pub snapshot_failures: u64,
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
    /// Snapshot lines.
    pub snapshots: u64,
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
    /// Order books rebuilt (empty with `--no-books`).
    pub books: Vec<crate::book::BookReport>,
    /// Books proven everywhere they were recorded (no unexplained break).
    pub books_proven: u64,
    /// Checksums compared, in all books.
    pub checksums_checked: u64,
    /// Checksums that did not match.
    pub checksums_failed: u64,
}

/// Runs `wsrec verify` on the recordings under `paths`; the report as JSON if `json`.
///
/// # Errors
/// Bad arguments, or [`VerifyFailed`] when problems were found (after printing the report).
pub fn run(paths: &[std::path::PathBuf], opts: VerifyOptions, json: bool) -> anyhow::Result<()> {
    let files = find_files(paths)?;
    let total = crate::read::content_size(&files);
    let mut progress = Progress::new(total, true);
    let report = verify(files, opts, &mut progress);
    progress.finish();
    // A reader that went away (`wsrec verify DIR | head -1`) still gets the right exit code.
    if let Err(e) = super::print_report(&report, json, render)
        && !super::is_broken_pipe(&e)
    {
        return Err(e);
    }
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
        progress.update(scan.content_read());
    }
    v.finish()
}
