//! Following books through a recording: one live book per (stream, connection, venue, channel,
//! symbol), the checks every venue shares (is there a snapshot, does the numbering link, is the
//! book crossed, does a checksum match), and what is reported per book: the spans where it is
//! proven and every break, with file and line.
//!
//! Venue modules ([`super::venues`]) read the messages and call [`Tracker::snapshot`],
//! [`Tracker::update`], [`Tracker::checksum`], [`Tracker::broke`] and [`Tracker::settle`]; the
//! caller drains [`Tracker::take_breaks`] as it goes and takes the reports at the end.

use std::collections::HashMap;
use std::sync::Arc;

use super::level::Book;
pub use super::report::{BookId, BookReport, Break, BreakKind, MAX_SPANS, Position, Span, SpanEnd};
use super::venues::Venue;

/// The message being read: whose it is, when and where.
#[derive(Clone, Copy, Debug)]
pub struct Msg<'a> {
    /// Stream name.
    pub stream: &'a str,
    /// Connection number.
    pub conn: u64,
    /// Receive time, ns since the epoch.
    pub ts: u64,
    /// Where the line is.
    pub at: &'a Position,
}

/// Which book a message is about, as a venue module names it.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    /// The venue's rules.
    pub venue: Venue,
    /// The channel (`books`, `orderbook.50`, `depth`, …).
    pub channel: &'a str,
    /// The symbol as the venue writes it.
    pub symbol: &'a str,
}

/// How an update links to what came before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Not numbered.
    None,
    /// Names its predecessor (`prev` must be the last number seen); ends at `last`.
    Prev {
        /// The number this update says came before it.
        prev: u64,
        /// This update's number.
        last: u64,
    },
    /// Covers `first..=last`: `first` must be one more than the last number seen.
    Range {
        /// First number covered.
        first: u64,
        /// Last number covered.
        last: u64,
    },
    /// Covers `first..=last`, which must include the number after the last seen (the first
    /// update after a REST snapshot).
    Covers {
        /// First number covered.
        first: u64,
        /// Last number covered.
        last: u64,
    },
    /// Must be greater than the last number seen (numbers may skip).
    Increasing(u64),
}

/// Where a live book stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No snapshot yet on this connection.
    Waiting,
    /// Rebuilt from a snapshot, every update applied.
    Proven,
    /// Broken; waits for the next snapshot.
    Broken,
}

/// The open span of a live book.
#[derive(Clone, Debug)]
struct Open {
    from: Position,
    from_ts: u64,
    to: Position,
    to_ts: u64,
    updates: u64,
}

/// One book on one connection.
#[derive(Debug)]
struct Live {
    report: usize,
    stream: Box<str>,
    conn: u64,
    book: Book,
    state: State,
    last: Option<u64>,
    open: Option<Open>,
    /// The stream's gap count when this book last moved (a higher count at a break explains it).
    gaps_seen: u64,
}

/// Gaps the recorder marked on a stream (dropped messages, lines not written, seq gaps).
#[derive(Debug, Default)]
struct Gaps {
    count: u64,
    why: String,
}

/// Every book of a recording, as far as it has been read.
#[derive(Debug, Default)]
pub struct Tracker {
    live: HashMap<String, Live>,
    reports: Vec<BookReport>,
    report_index: HashMap<Arc<BookId>, usize>,
    breaks: Vec<Break>,
    gaps: HashMap<String, Gaps>,
    /// Connections that continue another's feed without a snapshot of their own (a merged
    /// recording switching input): why, for their books' first break.
    continuing: HashMap<(String, u64), String>,
    key: String,
}

impl Tracker {
    /// Nothing tracked yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn live_key(&mut self, m: &Msg<'_>, k: &Key<'_>) {
        let key = &mut self.key;
        key.clear();
        key.push_str(m.stream);
        key.push('\u{0}');
        key.push_str(itoa::Buffer::new().format(m.conn));
        key.push('\u{0}');
        key.push_str(itoa::Buffer::new().format(k.venue as u8));
        key.push('\u{0}');
        key.push_str(k.channel);
        key.push('\u{0}');
        key.push_str(k.symbol);
    }

    fn live(&mut self, m: &Msg<'_>, k: &Key<'_>) -> &mut Live {
        self.live_key(m, k);
        if !self.live.contains_key(self.key.as_str()) {
            let id = BookId {
                stream: m.stream.to_owned(),
                venue: k.venue,
                channel: k.channel.to_owned(),
                symbol: k.symbol.to_owned(),
            };
            let report = match self.report_index.get(&id) {
                Some(&i) => i,
                None => {
                    let id = Arc::new(id);
                    self.reports.push(BookReport::new(id.clone()));
                    self.report_index.insert(id, self.reports.len() - 1);
                    self.reports.len() - 1
                }
            };
            let gaps_seen = self.gaps.get(m.stream).map_or(0, |g| g.count);
            self.live.insert(
                self.key.clone(),
                Live {
                    report,
                    stream: m.stream.into(),
                    conn: m.conn,
                    book: Book::new(),
                    state: State::Waiting,
                    last: None,
                    open: None,
                    gaps_seen,
                },
            );
        }
        // Inserted just above when missing.
        self.live
            .get_mut(self.key.as_str())
            .expect("live book exists")
    }

    /// A snapshot of the book (in the feed, a REST answer, or a whole-book message): the book
    /// is cleared and proven from here; `last` is the snapshot's number, if it has one. Returns
    /// the empty book to fill.
    pub fn snapshot(&mut self, m: &Msg<'_>, k: &Key<'_>, last: Option<u64>) -> &mut Book {
        let gaps = self.gaps.get(m.stream).map_or(0, |g| g.count);
        let live = self.live(m, k);
        let report = live.report;
        live.book.clear();
        live.last = last;
        live.state = State::Proven;
        live.gaps_seen = gaps;
        match &mut live.open {
            Some(open) => {
                open.to = m.at.clone();
                open.to_ts = m.ts;
            }
            None => {
                live.open = Some(Open {
                    from: m.at.clone(),
                    from_ts: m.ts,
                    to: m.at.clone(),
                    to_ts: m.ts,
                    updates: 0,
                });
            }
        }
        self.reports[report].snapshots += 1;
        &mut self
            .live
            .get_mut(self.key.as_str())
            .expect("live book exists")
            .book
    }

    /// An update: checks it links to the last number seen and returns the book to apply it
    /// to, or `None` when the book is not proven (no snapshot yet, or broken: the update is
    /// counted as unproven; the first update before any snapshot is a break).
    pub fn update(&mut self, m: &Msg<'_>, k: &Key<'_>, link: Link) -> Option<&mut Book> {
        let live = self.live(m, k);
        let report = live.report;
        match live.state {
            State::Waiting => {
                self.reports[report].unproven_updates += 1;
                self.break_live(
                    m,
                    BreakKind::BeforeSnapshot,
                    "no snapshot on this connection before it".to_owned(),
                );
                return None;
            }
            State::Broken => {
                self.reports[report].unproven_updates += 1;
                return None;
            }
            State::Proven => {}
        }
        let last = live.last;
        let wrong = match (link, last) {
            (Link::None, _) => None,
            (Link::Prev { prev, last: new }, Some(seen)) => {
                live.last = Some(new);
                (prev != seen).then(|| format!("`prev` {prev}, the last number seen {seen}"))
            }
            (Link::Range { first, last: new }, Some(seen)) => {
                live.last = Some(new);
                (first != seen.wrapping_add(1))
                    .then(|| format!("first {first}, expected {}", seen.wrapping_add(1)))
            }
            (Link::Covers { first, last: new }, Some(seen)) => {
                live.last = Some(new);
                let next = seen.wrapping_add(1);
                (!(first <= next && next <= new))
                    .then(|| format!("{first}..={new} does not cover {next}"))
            }
            (Link::Increasing(v), Some(seen)) => {
                live.last = Some(v);
                (v <= seen).then(|| format!("{v} after {seen}"))
            }
            (
                Link::Prev { last, .. } | Link::Range { last, .. } | Link::Covers { last, .. },
                None,
            )
            | (Link::Increasing(last), None) => {
                live.last = Some(last);
                None
            }
        };
        if let Some(why) = wrong {
            self.reports[report].unproven_updates += 1;
            self.break_live(m, BreakKind::SequenceGap, why);
            return None;
        }
        let live = self
            .live
            .get_mut(self.key.as_str())
            .expect("live book exists");
        if let Some(open) = &mut live.open {
            open.to = m.at.clone();
            open.to_ts = m.ts;
            open.updates += 1;
        }
        self.reports[report].updates += 1;
        Some(&mut live.book)
    }

    /// The proven book, to read (a checksum) or to change (a venue that numbers nothing);
    /// `None` when it is not proven.
    pub fn proven(&mut self, m: &Msg<'_>, k: &Key<'_>) -> Option<&mut Book> {
        let live = self.live(m, k);
        (live.state == State::Proven).then_some(&mut live.book)
    }

    /// Sets the book's last number without a check (venues whose snapshot number arrives
    /// apart from it).
    pub fn set_last(&mut self, m: &Msg<'_>, k: &Key<'_>, last: u64) {
        self.live(m, k).last = Some(last);
    }

    /// The book's last number.
    pub fn last(&mut self, m: &Msg<'_>, k: &Key<'_>) -> Option<u64> {
        self.live(m, k).last
    }

    /// The venue's checksum compared with the rebuilt book: counted, and a break if `ok` is
    /// false (`detail` says what was expected). Only proven books are compared.
    pub fn checksum(
        &mut self,
        m: &Msg<'_>,
        k: &Key<'_>,
        ok: bool,
        detail: impl FnOnce() -> String,
    ) {
        let live = self.live(m, k);
        if live.state != State::Proven {
            return;
        }
        let report = live.report;
        self.reports[report].checksums_checked += 1;
        if !ok {
            self.reports[report].checksums_failed += 1;
            self.break_live(m, BreakKind::ChecksumMismatch, detail());
        }
    }

    /// The end of a message's changes to a book: a proven book must not be crossed.
    pub fn settle(&mut self, m: &Msg<'_>, k: &Key<'_>) {
        let live = self.live(m, k);
        if live.state != State::Proven {
            return;
        }
        if let Some((bid, ask)) = live.book.crossed() {
            self.break_live(
                m,
                BreakKind::Crossed,
                format!("best bid {bid} at or above best ask {ask}"),
            );
        }
    }

    /// A break the venue module found (a missing level, an unreadable message). A book that
    /// is not proven takes no further break.
    pub fn broke(&mut self, m: &Msg<'_>, k: &Key<'_>, kind: BreakKind, detail: String) {
        if self.live(m, k).state != State::Proven && kind != BreakKind::NoSnapshot {
            return;
        }
        self.break_live(m, kind, detail);
    }

    /// Records a break of the live book under `self.key` and ends its span.
    fn break_live(&mut self, m: &Msg<'_>, kind: BreakKind, detail: String) {
        let Some(live) = self.live.get_mut(self.key.as_str()) else {
            return;
        };
        let gaps = self.gaps.get(m.stream);
        let explained = gaps
            .filter(|g| g.count > live.gaps_seen)
            .map(|g| g.why.clone())
            .or_else(|| {
                (kind == BreakKind::BeforeSnapshot)
                    .then(|| {
                        self.continuing
                            .get(&(m.stream.to_owned(), live.conn))
                            .cloned()
                    })
                    .flatten()
            });
        live.state = State::Broken;
        let open = live.open.take();
        let report = &mut self.reports[live.report];
        report.breaks += 1;
        if explained.is_some() {
            report.explained_breaks += 1;
        }
        if let Some(open) = open {
            push_span(report, open, m.at.clone(), m.ts, SpanEnd::Break, live.conn);
        }
        self.breaks.push(Break {
            book: report.id.clone(),
            kind,
            at: m.at.clone(),
            ts: m.ts,
            detail,
            explained,
        });
    }

    /// The recorder marked a gap in `stream` (messages dropped or not written, a `seq`
    /// gap): the next break of each of its books is explained by `why`.
    pub fn recorder_gap(&mut self, stream: &str, why: String) {
        let g = self.gaps.entry(stream.to_owned()).or_default();
        g.count += 1;
        g.why = why;
    }

    /// Connection `conn` of `stream` carries on another connection's feed without a snapshot of
    /// its own (a merged recording switching input): its books wait for their next snapshot, and
    /// an update before it is explained by `why`, not a fault.
    pub fn conn_continues(&mut self, stream: &str, conn: u64, why: String) {
        self.continuing.insert((stream.to_owned(), conn), why);
    }

    /// Connection `conn` of `stream` ended: its books' spans end there.
    pub fn conn_ended(&mut self, stream: &str, conn: u64) {
        self.end_where(
            |l| &*l.stream == stream && l.conn == conn,
            SpanEnd::ConnectionEnded,
        );
    }

    /// Every connection of `stream` ended (a new recorder run starts).
    pub fn stream_ended(&mut self, stream: &str) {
        self.end_where(|l| &*l.stream == stream, SpanEnd::ConnectionEnded);
    }

    fn end_where(&mut self, which: impl Fn(&Live) -> bool, end: SpanEnd) {
        let keys: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| which(l))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let Some(mut live) = self.live.remove(&k) else {
                continue;
            };
            self.reports[live.report].level_changes += live.book.changes();
            if let Some(open) = live.open.take() {
                let (to, to_ts) = (open.to.clone(), open.to_ts);
                push_span(
                    &mut self.reports[live.report],
                    open,
                    to,
                    to_ts,
                    end,
                    live.conn,
                );
            }
        }
    }

    /// The breaks found since the last call.
    pub fn take_breaks(&mut self) -> Vec<Break> {
        std::mem::take(&mut self.breaks)
    }

    /// The proven books of `symbol` (any stream, venue, channel, connection; case does not
    /// matter), with their ids.
    pub fn books_of<'s>(
        &'s self,
        symbol: &'s str,
    ) -> impl Iterator<Item = (&'s BookId, u64, &'s Book)> + 's {
        self.live
            .values()
            .filter(move |l| {
                l.state == State::Proven
                    && self.reports[l.report]
                        .id
                        .symbol
                        .eq_ignore_ascii_case(symbol)
            })
            .map(|l| (&*self.reports[l.report].id, l.conn, &l.book))
    }

    /// Ends every span (the recording ends) and returns the reports, ordered by book.
    pub fn finish(mut self) -> Vec<BookReport> {
        self.end_where(|_| true, SpanEnd::End);
        let mut reports = self.reports;
        reports.sort_by(|a, b| a.id.cmp(&b.id));
        reports
    }
}

fn push_span(
    report: &mut BookReport,
    open: Open,
    to: Position,
    to_ts: u64,
    end: SpanEnd,
    conn: u64,
) {
    report.spans_total += 1;
    if report.spans.len() < MAX_SPANS {
        report.spans.push(Span {
            from: open.from,
            from_ts: open.from_ts,
            to,
            to_ts,
            end,
            conn,
            updates: open.updates,
        });
    }
}
