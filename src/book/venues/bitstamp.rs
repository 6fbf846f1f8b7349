//! Bitstamp books (<https://www.bitstamp.net/websocket/v2/>): `order_book_{pair}` (the top 100
//! levels a side) and `detail_order_book_{pair}` (the same, order by order:
//! `[price, amount, order id]`) are the whole book in every message; `diff_order_book_{pair}`
//! carries changed levels only (`[price, amount]`, amount `0` removes), each message stamped
//! with `microtimestamp`, and the book before them comes from the REST order book
//! (<https://www.bitstamp.net/api/#tag/Order-book>, `GET /api/v2/order_book/{pair}/`, current to
//! its `microtimestamp`), which the recorder writes into the stream as a snapshot line.
//!
//! Bitstamp numbers nothing; its rule (the WebSocket page, and cryptofeed's
//! `cryptofeed/exchanges/bitstamp.py`: `_snapshot` then `_process_l2_book`, which skips the
//! changes older than the snapshot) is to apply the changes stamped after the snapshot. Here:
//! the differences that come before the snapshot line are kept (at most [`MAX_WAITING`] per
//! book; beyond that the oldest go), and when the snapshot line comes those with a
//! `microtimestamp` at or before it are dropped and the rest applied. A snapshot older than the
//! first waiting difference is too old (changes between them may be missing: the recorder
//! fetches again; or the bound dropped differences newer than it), so it is not used. After it, every difference must be stamped later than
//! the one before (`Link::Increasing`: Bitstamp stamps a channel's messages in order; every
//! channel of the corpus' recording does), which finds swapped messages; a lost message cannot
//! be seen (no numbering, no checksum). A removal of a level the book lacks is no break
//! (cryptofeed skips them too). A connection (or the recording) that ends with differences
//! still waiting for their snapshot is a `NoSnapshot` break at the first of them.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::coinbase::{apply, settle_levels};
use super::{RestAnswer, Rules, Venue};
use crate::book::level::{Book, Side, key};
use crate::book::track::{BreakKind, Key, Link, Msg, Position, Tracker};

/// Differences kept per book while it waits for its snapshot line.
pub(super) const MAX_WAITING: usize = 4096;

/// The REST order book's path, before the pair.
const REST_PATH: &str = "/api/v2/order_book/";

/// A level's first two elements (price and amount texts); more (an order id) are skipped.
struct Pair<'a>(&'a str, &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Pair<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Pair<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[price, amount, …]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Pair<'a>, A::Error> {
                let price: &'de str = s
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let amount: &'de str = s
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Pair(price, amount))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    data: Levels<'a>,
    channel: &'a str,
    event: &'a str,
}

#[derive(Deserialize)]
struct Levels<'a> {
    microtimestamp: &'a str,
    #[serde(borrow, default)]
    bids: Vec<Pair<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Pair<'a>>,
}

impl<'a> Levels<'a> {
    fn time(&self) -> Option<u64> {
        self.microtimestamp.parse().ok()
    }

    fn levels(&self) -> impl Iterator<Item = (Option<Side>, &'a str, &'a str)> + '_ {
        let bids = self.bids.iter().map(|p| (Some(Side::Bid), p.0, p.1));
        let asks = self.asks.iter().map(|p| (Some(Side::Ask), p.0, p.1));
        bids.chain(asks)
    }
}

/// A `diff_order_book` book on one connection.
#[derive(Debug)]
struct Diff {
    stream: Box<str>,
    conn: u64,
    pair: Box<str>,
    /// Differences waiting for the snapshot line: their text, line and receive time.
    waiting: VecDeque<(String, Position, u64)>,
    /// The snapshot line's `microtimestamp` once it came, and whether no difference has been
    /// applied since (older ones are dropped only then).
    snapshot: Option<(u64, bool)>,
}

/// Bitstamp's rules: the `diff_order_book` books and their waiting differences.
#[derive(Debug, Default)]
pub(super) struct Bitstamp {
    diffs: Vec<Diff>,
}

impl Bitstamp {
    fn diff(&mut self, stream: &str, conn: u64, pair: &str) -> usize {
        match self
            .diffs
            .iter()
            .position(|d| d.conn == conn && &*d.pair == pair && &*d.stream == stream)
        {
            Some(i) => i,
            None => {
                self.diffs.push(Diff {
                    stream: stream.into(),
                    conn,
                    pair: pair.into(),
                    waiting: VecDeque::new(),
                    snapshot: None,
                });
                self.diffs.len() - 1
            }
        }
    }

    /// Reports the differences of `d` that waited for a snapshot in vain.
    fn no_snapshot(t: &mut Tracker, d: &Diff) {
        let Some((_, at, ts)) = d.waiting.front() else {
            return;
        };
        let m = Msg {
            stream: &d.stream,
            conn: d.conn,
            ts: *ts,
            at,
        };
        let k = diff_key(&d.pair);
        t.broke(
            &m,
            &k,
            BreakKind::NoSnapshot,
            format!(
                "{} differences waited for the REST order book, which never came",
                d.waiting.len()
            ),
        );
    }
}

fn diff_key(pair: &str) -> Key<'_> {
    Key {
        venue: Venue::Bitstamp,
        channel: "diff_order_book",
        symbol: pair,
    }
}

/// Applies one difference (after the snapshot) to its book.
fn apply_diff(t: &mut Tracker, m: &Msg<'_>, d: &mut Diff, levels: &Levels<'_>) {
    let k = diff_key(&d.pair);
    let Some(time) = levels.time() else {
        t.broke(
            m,
            &k,
            BreakKind::BadMessage,
            format!("microtimestamp `{}`", levels.microtimestamp),
        );
        return;
    };
    if let Some((snapshot, true)) = d.snapshot {
        if time <= snapshot {
            return;
        }
        d.snapshot = Some((snapshot, false));
    }
    let Some(book) = t.update(m, &k, Link::Increasing(time)) else {
        return;
    };
    let applied = apply(book, false, levels.levels());
    settle_levels(t, m, &k, applied);
}

impl Rules for Bitstamp {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"data\":{\"timestamp\":\"")
            && super::starts_near(msg, 64, b"\"microtimestamp\":\"")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        if top.event != "data" {
            return false;
        }
        if let Some(pair) = top.channel.strip_prefix("diff_order_book_") {
            let i = self.diff(m.stream, m.conn, pair);
            let d = &mut self.diffs[i];
            if d.snapshot.is_some() {
                apply_diff(t, m, d, &top.data);
            } else {
                if d.waiting.len() == MAX_WAITING {
                    d.waiting.pop_front();
                }
                d.waiting.push_back((msg.to_owned(), m.at.clone(), m.ts));
            }
            return true;
        }
        let (channel, pair, detail) = if let Some(p) = top.channel.strip_prefix("order_book_") {
            ("order_book", p, false)
        } else if let Some(p) = top.channel.strip_prefix("detail_order_book_") {
            ("detail_order_book", p, true)
        } else {
            return false;
        };
        let k = Key {
            venue: Venue::Bitstamp,
            channel,
            symbol: pair,
        };
        let book = t.snapshot(m, &k, top.data.time());
        let applied = if detail {
            orders(book, &top.data)
        } else {
            apply(book, true, top.data.levels())
        };
        settle_levels(t, m, &k, applied);
        true
    }

    fn rest(&mut self, t: &mut Tracker, m: &Msg<'_>, answer: &RestAnswer<'_>) -> bool {
        let Some(path_at) = answer.url.find(REST_PATH) else {
            return false;
        };
        let pair = answer.url[path_at + REST_PATH.len()..]
            .split(['/', '?'])
            .next()
            .unwrap_or_default();
        let i = self.diff(m.stream, m.conn, pair);
        let d = &mut self.diffs[i];
        let k = diff_key(&d.pair);
        if d.snapshot.is_some() {
            // The book is already running from an earlier snapshot line.
            return true;
        }
        let Ok(body) = serde_json::from_str::<Levels<'_>>(answer.body) else {
            t.broke(
                m,
                &k,
                BreakKind::NoSnapshot,
                "the REST order book cannot be read".to_owned(),
            );
            return true;
        };
        let Some(time) = body.time() else {
            t.broke(
                m,
                &k,
                BreakKind::NoSnapshot,
                format!(
                    "the REST order book's microtimestamp `{}`",
                    body.microtimestamp
                ),
            );
            return true;
        };
        let first = d
            .waiting
            .front()
            .and_then(|(w, _, _)| serde_json::from_str::<Top<'_>>(w).ok())
            .and_then(|w| w.data.time());
        if first.is_none_or(|f| f > time) {
            // Older than the first difference (or no difference yet): changes between them
            // may be missing; the recorder fetches again.
            return true;
        }
        let book = t.snapshot(m, &k, Some(time));
        let applied = apply(book, true, body.levels());
        settle_levels(t, m, &k, applied);
        d.snapshot = Some((time, true));
        for (w, _, _) in std::mem::take(&mut d.waiting) {
            if let Ok(top) = serde_json::from_str::<Top<'_>>(&w) {
                apply_diff(t, m, d, &top.data);
            }
        }
        true
    }

    fn conn_ended(&mut self, t: &mut Tracker, stream: &str, conn: Option<u64>) {
        self.diffs.retain(|d| {
            let ends = &*d.stream == stream && conn.is_none_or(|c| c == d.conn);
            if ends {
                Self::no_snapshot(t, d);
            }
            !ends
        });
    }

    fn finish(&mut self, t: &mut Tracker) {
        for d in std::mem::take(&mut self.diffs) {
            Self::no_snapshot(t, &d);
        }
    }
}

/// A `detail_order_book` message: orders, several at a price; each level's amount is their
/// sum (exact, in the book's fixed-point units), written back as decimal text.
fn orders(book: &mut Book, data: &Levels<'_>) -> Result<(), (BreakKind, String)> {
    for (side, orders) in [(Side::Bid, &data.bids), (Side::Ask, &data.asks)] {
        for same in orders.chunk_by(|a, b| a.0 == b.0) {
            let mut sum: i128 = 0;
            for o in same {
                let amount = key(o.1).map_err(|e| (BreakKind::BadMessage, e.to_string()))?;
                sum = sum.checked_add(amount).ok_or_else(|| {
                    (
                        BreakKind::BadMessage,
                        format!("amounts at {} overflow", o.0),
                    )
                })?;
            }
            let text = decimal(sum);
            apply(
                book,
                true,
                std::iter::once((Some(side), same[0].0, text.as_str())),
            )?;
        }
    }
    Ok(())
}

/// A fixed-point amount (10⁻¹⁸ units) as decimal text, without trailing zeros (on the stack:
/// no allocation per level).
fn decimal(units: i128) -> Decimal {
    let mut d = Decimal {
        len: 0,
        bytes: [0; DECIMAL_MAX],
    };
    let scale = 10u128.pow(18);
    let u = units.unsigned_abs();
    let (int, mut frac) = (u / scale, u % scale);
    let sign = if units < 0 { "-" } else { "" };
    let _ = write!(d, "{sign}{int}");
    if frac != 0 {
        let mut digits = 18;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(d, ".{frac:0digits$}");
    }
    d
}

/// Longest text [`decimal`] writes: a sign, 21 integer digits, a point and 18 decimals.
const DECIMAL_MAX: usize = 48;

/// Decimal text on the stack.
struct Decimal {
    len: usize,
    bytes: [u8; DECIMAL_MAX],
}

impl Decimal {
    fn as_str(&self) -> &str {
        // Only `write_str` fills it, with whole `&str`s.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for Decimal {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let to = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::{Line, run_lines};
    use crate::book::venues::coinbase::{only_break, read_each};

    const CORPUS: &str =
        include_str!("../../../tests/fixtures/corpus/bitstamp_diff_order_book.jsonl");

    fn url(pair: &str) -> String {
        format!("https://www.bitstamp.net/api/v2/order_book/{pair}/")
    }

    /// The corpus' `ethusd` differences, on connection 1.
    fn ethusd() -> Vec<String> {
        CORPUS
            .lines()
            .filter(|l| {
                l.contains("\"channel\":\"diff_order_book_ethusd\"")
                    && l.contains("\"event\":\"data\"")
            })
            .map(str::to_owned)
            .collect()
    }

    fn time(l: &str) -> u64 {
        serde_json::from_str::<Top<'_>>(l)
            .unwrap()
            .data
            .time()
            .unwrap()
    }

    /// A REST order book at `time`, empty but for one far level a side (the differences then
    /// rebuild the part of the book they touch: a part of the real book, never crossed).
    fn rest(time: u64) -> Line {
        Line::Rest(
            1,
            "ethusd".into(),
            url("ethusd"),
            format!(
                r#"{{"timestamp":"{}","microtimestamp":"{time}","bids":[["1.00","2.5"]],"asks":[["1000000.00","1.0"]]}}"#,
                time / 1_000_000
            ),
        )
    }

    /// The differences with the snapshot line after the `before`th, taken just before the
    /// `at`th difference's time.
    fn feed(before: usize, at: usize) -> Vec<Line> {
        let diffs = ethusd();
        let mut lines: Vec<Line> = diffs[..before]
            .iter()
            .map(|l| Line::Msg(1, l.clone()))
            .collect();
        lines.push(rest(time(&diffs[at]) - 1));
        lines.extend(diffs[before..].iter().map(|l| Line::Msg(1, l.clone())));
        lines
    }

    #[test]
    fn waiting_differences_older_than_the_snapshot_are_dropped_and_the_rest_applied() {
        let diffs = ethusd();
        assert!(diffs.len() > 80);
        let (breaks, reports) = run_lines(&feed(10, 4));
        assert_eq!(breaks, []);
        let r = &reports[0];
        // Differences 4..10 waited and apply at the snapshot line, then the rest.
        assert_eq!(
            (r.snapshots, r.updates, r.unproven_updates),
            (1, diffs.len() as u64 - 4, 0)
        );
        assert_eq!(r.spans.len(), 1);
        assert_eq!((r.spans[0].from.line, r.spans[0].end), (11, SpanEnd::End));
        assert!(r.proven());
    }

    #[test]
    fn every_pair_of_the_corpus_rebuilds_from_its_snapshot_line() {
        let mut lines = Vec::new();
        let mut seen: Vec<(String, usize)> = Vec::new();
        for l in CORPUS.lines() {
            lines.push(Line::Msg(1, l.to_owned()));
            let Ok(top) = serde_json::from_str::<Top<'_>>(l) else {
                continue;
            };
            let Some(pair) = top.channel.strip_prefix("diff_order_book_") else {
                continue;
            };
            if top.event != "data" {
                continue;
            }
            match seen.iter_mut().find(|(p, _)| p == pair) {
                Some((_, n)) => *n += 1,
                None => seen.push((pair.to_owned(), 1)),
            }
            // The snapshot line after a pair's second difference, current to it.
            if seen.iter().any(|(p, n)| p == pair && *n == 2) {
                let time = top.data.time().unwrap();
                lines.push(Line::Rest(
                    1,
                    pair.to_owned(),
                    url(pair),
                    format!(r#"{{"timestamp":"1","microtimestamp":"{time}","bids":[],"asks":[]}}"#),
                ));
            }
        }
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 9, "{reports:#?}");
        let diffs: u64 = seen.iter().map(|(_, n)| *n as u64).sum();
        assert_eq!(diffs, 717);
        // Each pair's first two differences are in its snapshot.
        assert_eq!(reports.iter().map(|r| r.updates).sum::<u64>(), diffs - 18);
        assert!(reports.iter().all(|r| r.proven() && r.snapshots == 1));
    }

    #[test]
    fn a_snapshot_older_than_the_first_waiting_difference_is_not_used() {
        let diffs = ethusd();
        let mut lines: Vec<Line> = diffs[..3].iter().map(|l| Line::Msg(1, l.clone())).collect();
        lines.push(rest(time(&diffs[0]) - 1));
        lines.push(rest(time(&diffs[1])));
        lines.extend(diffs[3..].iter().map(|l| Line::Msg(1, l.clone())));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(
            (reports[0].snapshots, reports[0].spans[0].from.line),
            (1, 5)
        );
        assert_eq!(reports[0].updates, diffs.len() as u64 - 2);
    }

    #[test]
    fn two_swapped_differences_break() {
        let mut lines = feed(5, 2);
        lines.swap(20, 21);
        let (breaks, _) = run_lines(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(
            (breaks[0].kind, breaks[0].at.line),
            (BreakKind::SequenceGap, 22)
        );
    }

    #[test]
    fn a_connection_that_ends_with_differences_waiting_breaks() {
        let diffs = ethusd();
        let mut lines: Vec<Line> = diffs[..5].iter().map(|l| Line::Msg(1, l.clone())).collect();
        lines.push(Line::End(1));
        lines.extend(diffs[..3].iter().map(|l| Line::Msg(2, l.clone())));
        let (breaks, reports) = run_lines(&lines);
        // The first connection's at its end, the second's when the recording ends; each at
        // its first waiting difference.
        assert_eq!(breaks.len(), 2, "{breaks:#?}");
        assert_eq!(
            (breaks[0].kind, breaks[0].at.line),
            (BreakKind::NoSnapshot, 1)
        );
        assert_eq!(
            (breaks[1].kind, breaks[1].at.line),
            (BreakKind::NoSnapshot, 7)
        );
        assert_eq!((reports[0].breaks, reports[0].spans_total), (2, 0));
    }

    #[test]
    fn at_most_max_waiting_differences_wait() {
        let diff = |i: usize| {
            Line::Msg(
                1,
                format!(
                    r#"{{"data":{{"timestamp":"1","microtimestamp":"{}","bids":[["{i}.5","1"]],"asks":[]}},"channel":"diff_order_book_ethusd","event":"data"}}"#,
                    1000 + i
                ),
            )
        };
        let n = MAX_WAITING + 10;
        // The first ten went: a snapshot before the eleventh cannot be continued.
        let mut lines: Vec<Line> = (0..n).map(diff).collect();
        lines.push(rest(1000 + 9));
        lines.push(Line::End(1));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(
            (breaks[0].kind, breaks[0].at.line),
            (BreakKind::NoSnapshot, 11)
        );
        assert_eq!(reports[0].snapshots, 0);
        // A snapshot at the eleventh's time continues with the twelfth.
        lines.truncate(n);
        lines.push(rest(1000 + 10));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports[0].updates, MAX_WAITING as u64 - 1);
    }

    #[test]
    fn a_reconnect_makes_two_spans() {
        let mut lines = feed(3, 1);
        lines.push(Line::End(1));
        let again: Vec<Line> = feed(3, 1)
            .into_iter()
            .map(|l| match l {
                Line::Msg(_, t) => Line::Msg(2, t),
                Line::Rest(_, s, u, b) => Line::Rest(2, s, u, b),
                end => end,
            })
            .collect();
        lines.extend(again);
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].end, spans[1].conn), (SpanEnd::ConnectionEnded, 2));
    }

    /// A whole-book message of `channel`.
    fn whole(channel: &str, bids: &str, asks: &str) -> String {
        format!(
            r#"{{"data":{{"timestamp":"1641343691","microtimestamp":"1641343691244908","bids":[{bids}],"asks":[{asks}]}},"channel":"{channel}_btcusd","event":"data"}}"#
        )
    }

    #[test]
    fn whole_books_are_snapshots_and_orders_add_up_per_price() {
        let lines = [
            whole(
                "order_book",
                r#"["100.5","1.5"],["100","2"]"#,
                r#"["101","3"]"#,
            ),
            whole(
                "detail_order_book",
                r#"["100.5","0.1","11"],["100.5","0.25","12"],["100","2","13"]"#,
                r#"["101","3","14"]"#,
            ),
        ];
        let (mut books, read) = read_each(&[&lines[0], &lines[1]]);
        assert_eq!(read, [true, true]);
        let (_, _, book) = books
            .tracker
            .books_of("btcusd")
            .find(|(id, _, _)| id.channel == "detail_order_book")
            .unwrap();
        let bids: Vec<(String, String)> = book
            .bids()
            .map(|l| (l.price.to_string(), l.size.to_string()))
            .collect();
        assert_eq!(
            bids,
            [
                ("100.5".to_owned(), "0.35".to_owned()),
                ("100".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(books.take_breaks(), []);
        let crossed = vec![whole("order_book", r#"["102","1"]"#, r#"["101","3"]"#)];
        assert_eq!(only_break(&crossed), (BreakKind::Crossed, 1));
    }

    #[test]
    fn decimal_text_of_fixed_point_sums() {
        assert_eq!(decimal(key("0.35").unwrap()).as_str(), "0.35");
        assert_eq!(decimal(key("12").unwrap()).as_str(), "12");
        assert_eq!(
            decimal(key("-0.000000000000000001").unwrap()).as_str(),
            "-0.000000000000000001"
        );
    }
}
