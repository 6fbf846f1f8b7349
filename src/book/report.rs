//! What the book engine reports: each book's id, the spans where it is proven, its breaks and
//! counts; [`super::track`] fills them in.

use std::sync::Arc;

use serde::Serialize;

use super::venues::Venue;

/// Spans listed per book (all are counted).
pub const MAX_SPANS: usize = 100;

/// Where a line is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    /// The file.
    pub file: Arc<str>,
    /// Line number, from 1.
    pub line: u64,
}

/// A book in the report: stream, venue, channel and symbol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BookId {
    /// Stream name.
    pub stream: String,
    /// The venue's rules.
    pub venue: Venue,
    /// The channel.
    pub channel: String,
    /// The symbol.
    pub symbol: String,
}

/// Why a book stopped being proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The venue's numbering skips or goes back.
    SequenceGap,
    /// The venue's checksum does not match the rebuilt book.
    ChecksumMismatch,
    /// An update changes or removes a level the book does not have.
    MissingLevel,
    /// After an update, the best bid is at or above the best ask.
    Crossed,
    /// An update before any snapshot on its connection.
    BeforeSnapshot,
    /// The message's levels cannot be read (not a number, wrong shape).
    BadMessage,
    /// The connection ended (or the recording did) while updates waited for a REST snapshot
    /// that never came.
    NoSnapshot,
}

impl BreakKind {
    /// Words for reports.
    pub fn describe(self) -> &'static str {
        match self {
            BreakKind::SequenceGap => "sequence gap",
            BreakKind::ChecksumMismatch => "checksum mismatch",
            BreakKind::MissingLevel => "update for a missing level",
            BreakKind::Crossed => "crossed book",
            BreakKind::BeforeSnapshot => "update before any snapshot",
            BreakKind::BadMessage => "unreadable book message",
            BreakKind::NoSnapshot => "no snapshot",
        }
    }
}

/// One break of a book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The book.
    pub book: Arc<BookId>,
    /// Why.
    pub kind: BreakKind,
    /// The line that broke it.
    pub at: Position,
    /// Its receive time.
    pub ts: u64,
    /// What exactly (expected and got).
    pub detail: String,
    /// Set when something the recorder marked explains the break (its own gap, a dropped
    /// message): not a problem of the recording's books.
    pub explained: Option<String>,
}

/// How a span ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanEnd {
    /// The recording ends with the book still proven.
    End,
    /// The connection ended (a disconnect, a planned reconnect, the recorder's stop).
    ConnectionEnded,
    /// A break (see the book's breaks).
    Break,
}

/// A stretch of the recording where a book is proven: from a snapshot to a break, the end of
/// its connection, or the end of the recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    /// The snapshot's line.
    pub from: Position,
    /// The snapshot's receive time.
    pub from_ts: u64,
    /// The last line of the span (the break's line for a break).
    pub to: Position,
    /// Its receive time.
    pub to_ts: u64,
    /// How it ended.
    pub end: SpanEnd,
    /// The connection.
    pub conn: u64,
    /// Updates applied in the span.
    pub updates: u64,
}

/// What was found for one book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BookReport {
    /// Which book.
    #[serde(flatten)]
    pub id: Arc<BookId>,
    /// Snapshots read (in the feed, REST or whole-book messages).
    pub snapshots: u64,
    /// Updates applied to a proven book.
    pub updates: u64,
    /// Updates that could not be applied (before a snapshot, after a break).
    pub unproven_updates: u64,
    /// Level changes applied (each level of a snapshot or an update).
    pub level_changes: u64,
    /// Checksums compared.
    pub checksums_checked: u64,
    /// Checksums that did not match.
    pub checksums_failed: u64,
    /// Breaks (explained ones included).
    pub breaks: u64,
    /// Breaks that something the recorder marked explains.
    pub explained_breaks: u64,
    /// The proven spans (the first [`MAX_SPANS`]).
    pub spans: Vec<Span>,
    /// Spans in all.
    pub spans_total: u64,
}

impl BookReport {
    pub(super) fn new(id: Arc<BookId>) -> Self {
        Self {
            id,
            snapshots: 0,
            updates: 0,
            unproven_updates: 0,
            level_changes: 0,
            checksums_checked: 0,
            checksums_failed: 0,
            breaks: 0,
            explained_breaks: 0,
            spans: Vec::new(),
            spans_total: 0,
        }
    }

    /// Whether the book was proven from a snapshot to the end of every connection that
    /// carried it, with no unexplained break.
    pub fn proven(&self) -> bool {
        self.spans_total > 0 && self.breaks == self.explained_breaks
    }
}
