//! The book engine: order books rebuilt from a recording alone, and proven.
//!
//! [`level`] holds the shared L2 book (levels keep the venue's own text of price and size:
//! checksums are computed over that text), [`track`] what every venue shares (a live book per
//! stream, connection, venue, channel and symbol; snapshots, linked updates, checksums,
//! crossed books; the spans where each book is proven and every break, with file and line), and
//! [`venues`] one module per venue rule set. [`Books`] puts them together for the tools:
//! `wsrec verify` checks every book, `wsrec book` prints one.
//!
//! A book is proven from a snapshot (in the feed, a REST snapshot line the recorder wrote, or a
//! message that is the whole book) for as long as every update links to the one before it by
//! the venue's numbering, its checksums match and it is never crossed. A connection's end ends
//! its books' spans (the next connection starts from its own snapshot); a break the recorder
//! itself marked (messages dropped or not written) is explained, not a fault of the recording.
//!
//! Memory is bounded by the books' sizes, not the recording's: only live books and the per-book
//! reports (spans capped at [`track::MAX_SPANS`]) are kept.

pub mod level;
pub mod report;
pub mod track;
pub mod venues;

pub use level::{Book, Level, Side};
pub use track::{BookId, BookReport, Break, BreakKind, Msg, Position, Span, SpanEnd, Tracker};
pub use venues::{RestAnswer, Venue, Venues};

/// The tracker and the venues' rules together.
#[derive(Debug, Default)]
pub struct Books {
    /// The books.
    pub tracker: Tracker,
    venues: Venues,
}

impl Books {
    /// No book yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a received message; false if it is not a book message of a known venue.
    pub fn message(&mut self, m: &Msg<'_>, msg: &str) -> bool {
        self.venues.message(&mut self.tracker, m, msg)
    }

    /// Reads a REST snapshot line; false if no venue's rules know it.
    pub fn rest(&mut self, m: &Msg<'_>, answer: &RestAnswer<'_>) -> bool {
        self.venues.rest(&mut self.tracker, m, answer)
    }

    /// Connection `conn` of `stream` ended.
    pub fn conn_ended(&mut self, stream: &str, conn: u64) {
        self.venues
            .conn_ended(&mut self.tracker, stream, Some(conn));
    }

    /// Connection `conn` of `stream` carries on another's feed without its own snapshot (a
    /// merged recording switching input); see [`Tracker::conn_continues`].
    pub fn conn_continues(&mut self, stream: &str, conn: u64, why: String) {
        self.tracker.conn_continues(stream, conn, why);
    }

    /// Every connection of `stream` ended (a new recorder run begins).
    pub fn stream_ended(&mut self, stream: &str) {
        self.venues.conn_ended(&mut self.tracker, stream, None);
    }

    /// The recorder marked a gap in `stream`; the next break of each of its books is
    /// explained by `why`.
    pub fn recorder_gap(&mut self, stream: &str, why: String) {
        self.tracker.recorder_gap(stream, why);
    }

    /// The breaks found since the last call.
    pub fn take_breaks(&mut self) -> Vec<Break> {
        self.tracker.take_breaks()
    }

    /// The recording ended: every book's report, and the breaks the end brings (updates
    /// still waiting for a snapshot).
    pub fn finish(mut self) -> (Vec<BookReport>, Vec<Break>) {
        self.venues.finish(&mut self.tracker);
        let breaks = self.tracker.take_breaks();
        (self.tracker.finish(), breaks)
    }
}

/// What the venue modules' tests share: feeding lines through [`Books`] as one stream.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::{BookReport, Books, Break, Msg, Position};

    /// A line of a test recording: a message on a connection, a REST snapshot line, or the
    /// end of a connection.
    #[derive(Clone, Debug)]
    pub(crate) enum Line {
        /// A received message on connection `.0`.
        Msg(u64, String),
        /// A REST snapshot line on connection `.0`: symbol, URL, body.
        Rest(u64, String, String, String),
        /// Connection `.0` ended.
        End(u64),
    }

    /// Feeds `lines` (messages on connection 1) through a fresh [`Books`] as stream "s";
    /// line numbers count from 1.
    pub(crate) fn run(lines: &[String]) -> (Vec<Break>, Vec<BookReport>) {
        let lines: Vec<Line> = lines.iter().map(|l| Line::Msg(1, l.clone())).collect();
        run_lines(&lines)
    }

    /// Feeds `lines` through a fresh [`Books`] as stream "s"; line numbers count from 1.
    pub(crate) fn run_lines(lines: &[Line]) -> (Vec<Break>, Vec<BookReport>) {
        let mut books = Books::new();
        let file: Arc<str> = Arc::from("test.jsonl");
        let mut breaks = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let at = Position {
                file: file.clone(),
                line: i as u64 + 1,
            };
            let msg = |conn| Msg {
                stream: "s",
                conn,
                ts: i as u64 + 1,
                at: &at,
            };
            match line {
                Line::Msg(conn, text) => {
                    books.message(&msg(*conn), text);
                }
                Line::Rest(conn, symbol, url, body) => {
                    books.rest(&msg(*conn), &super::RestAnswer { symbol, url, body });
                }
                Line::End(conn) => books.conn_ended("s", *conn),
            }
            breaks.extend(books.take_breaks());
        }
        let (reports, last) = books.finish();
        breaks.extend(last);
        (breaks, reports)
    }
}
