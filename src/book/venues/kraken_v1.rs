//! Kraken spot WebSocket v1 `book-N` arrays
//! (<https://docs.kraken.com/api/docs/guides/spot-ws-book-v1>; cryptofeed
//! `cryptofeed/exchanges/kraken.py`, `Kraken._book`, with the checksum of its `order_book`
//! C extension, `kraken_checksum`).
//!
//! A book message is `[CHANNEL_ID, {…}, ({…},) "book-N", "PAIR"]`. The first message of a
//! subscription holds `as` and `bs`, the snapshot (N levels a side); later ones hold `a` and/or
//! `b` (one object each, or both in one), levels `[price, volume, timestamp]` with a fourth
//! element `"r"` for a level republished because it came back into the subscribed depth. A
//! volume of zero removes the level (one the book does not have is a missing level); the book
//! is truncated to N after each message (Kraken sends no removal for a level pushed out of the
//! depth). Updates carry `"c"` (in the last object): the
//! CRC32 of the top 10 asks (best first) then the top 10 bids, each level's price and volume
//! with the decimal point removed and leading zeros stripped, as an unsigned decimal string.
//! Snapshots carry no checksum and nothing numbers the messages: the checksums are the proof.

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::kraken_checksum::checksum;
use super::{Rules, Venue};
use crate::book::level::{Book, Change, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

/// How far from the end of a message its `"book-` channel name may start.
const TAIL: usize = 48;

/// The first `N` elements of a JSON array (its level), borrowed; the rest is skipped.
#[derive(Debug)]
pub(super) struct Head<'a, const N: usize>(pub(super) [Option<&'a RawValue>; N]);

impl<'a, const N: usize> Head<'a, N> {
    /// Element `i`'s number text (a JSON string without its quotes, or a number literal).
    pub(super) fn text(&self, i: usize) -> Option<&'a str> {
        self.0.get(i).copied().flatten().and_then(literal)
    }
}

impl<'de: 'a, 'a, const N: usize> Deserialize<'de> for Head<'a, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, const N: usize>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const N: usize> Visitor<'de> for V<'a, N> {
            type Value = Head<'a, N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a level array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut v = [None; N];
                for slot in &mut v {
                    match s.next_element::<&'de RawValue>()? {
                        Some(x) => *slot = Some(x),
                        None => return Ok(Head(v)),
                    }
                }
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Head(v))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A number's text: a JSON string without its quotes (venues' number strings have no
/// escapes), or a number literal as written.
pub(super) fn literal(v: &RawValue) -> Option<&str> {
    let s = v.get();
    if s.starts_with('"') {
        s.strip_prefix('"')?.strip_suffix('"')
    } else {
        Some(s)
    }
}

/// One object of a v1 book array.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, rename = "as")]
    snapshot_asks: Option<Vec<Head<'a, 2>>>,
    #[serde(borrow, rename = "bs")]
    snapshot_bids: Option<Vec<Head<'a, 2>>>,
    #[serde(borrow)]
    a: Option<Vec<Head<'a, 2>>>,
    #[serde(borrow)]
    b: Option<Vec<Head<'a, 2>>>,
    c: Option<&'a str>,
}

/// Kraken v1's rules (no state beyond the tracker's).
#[derive(Debug, Default)]
pub(super) struct KrakenV1;

impl Rules for KrakenV1 {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.first() == Some(&b'[')
            && msg.ends_with(b"\"]")
            && memchr::memmem::rfind(&msg[msg.len().saturating_sub(TAIL)..], b",\"book-").is_some()
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(msg) else {
            return false;
        };
        let n = items.len();
        if !(4..=5).contains(&n) {
            return false;
        }
        let (Ok(channel), Ok(symbol)) = (
            serde_json::from_str::<&str>(items[n - 2].get()),
            serde_json::from_str::<&str>(items[n - 1].get()),
        ) else {
            return false;
        };
        let Some(depth) = channel
            .strip_prefix("book-")
            .and_then(|d| d.parse::<usize>().ok())
        else {
            return false;
        };
        let k = Key {
            venue: Venue::KrakenV1,
            channel,
            symbol,
        };
        let mut parts = Vec::with_capacity(2);
        for item in &items[1..n - 2] {
            match serde_json::from_str::<Part<'_>>(item.get()) {
                Ok(p) => parts.push(p),
                Err(e) => {
                    t.broke(m, &k, BreakKind::BadMessage, format!("a book object: {e}"));
                    return true;
                }
            }
        }
        let snapshot = parts
            .iter()
            .any(|p| p.snapshot_asks.is_some() || p.snapshot_bids.is_some());
        let book = if snapshot {
            Some(t.snapshot(m, &k, None))
        } else {
            t.update(m, &k, Link::None)
        };
        let Some(book) = book else { return true };
        if let Err((kind, why)) = apply(book, &parts, depth) {
            t.broke(m, &k, kind, why);
            return true;
        }
        t.settle(m, &k);
        if let Some(expected) = parts.iter().rev().find_map(|p| p.c)
            && let Some(book) = t.proven(m, &k)
        {
            let got = checksum(book, None);
            t.checksum(m, &k, expected.parse() == Ok(got), || {
                format!("`c` {expected}, the rebuilt book's {got}")
            });
        }
        true
    }
}

/// Applies a message's levels in order, then keeps the subscribed depth. A removal of a level
/// the book does not have is a [`BreakKind::MissingLevel`]: the book holds exactly the
/// subscribed depth, and Kraken removes only levels within it (none of the corpus' 353
/// removals misses).
fn apply(book: &mut Book, parts: &[Part<'_>], depth: usize) -> Result<(), (BreakKind, String)> {
    for p in parts {
        for (side, levels) in [
            (Side::Ask, &p.snapshot_asks),
            (Side::Bid, &p.snapshot_bids),
            (Side::Ask, &p.a),
            (Side::Bid, &p.b),
        ] {
            for l in levels.iter().flatten() {
                let (Some(price), Some(volume)) = (l.text(0), l.text(1)) else {
                    let why = format!("a level without price and volume: {l:?}");
                    return Err((BreakKind::BadMessage, why));
                };
                set_level(book, side, price, volume, true)?;
            }
        }
    }
    book.truncate(depth);
    Ok(())
}

/// Sets one level; with `strict`, removing a level the book does not have is a
/// [`BreakKind::MissingLevel`].
pub(super) fn set_level(
    book: &mut Book,
    side: Side,
    price: &str,
    size: &str,
    strict: bool,
) -> Result<(), (BreakKind, String)> {
    match book.set(side, price, size) {
        Ok(Change::RemovedMissing) if strict => Err((
            BreakKind::MissingLevel,
            format!("{side:?} {price} removed, but the book has no level there"),
        )),
        Ok(_) => Ok(()),
        Err(e) => Err((BreakKind::BadMessage, e.to_string())),
    }
}

/// What these venue modules' tests share: an independent CRC32 and book, a reconnect.
#[cfg(test)]
pub(crate) mod testing {
    use crate::book::testing::{Line, run, run_lines};
    use crate::book::{Break, BreakKind, SpanEnd};

    /// Feeds `lines` (connection 1) and checks they break one book once, for `kind`, at line
    /// `line`; returns the break.
    pub(crate) fn assert_one_break(lines: &[String], kind: BreakKind, line: u64) -> Break {
        let (mut breaks, _) = run(lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(
            (breaks[0].kind, breaks[0].at.line),
            (kind, line),
            "{breaks:#?}"
        );
        breaks.remove(0)
    }

    /// Feeds `first` on connection 1, its end, then `second` on connection 2, and checks the
    /// one book: no break, a span on connection 1 to line `to` ended by the connection's end,
    /// one on connection 2 from line `from` to the end of the recording, `updates` applied.
    pub(crate) fn assert_reconnect(
        first: &[String],
        second: &[String],
        to: u64,
        from: u64,
        updates: u64,
    ) {
        let mut lines: Vec<Line> = first.iter().map(|l| Line::Msg(1, l.clone())).collect();
        lines.push(Line::End(1));
        lines.extend(second.iter().map(|l| Line::Msg(2, l.clone())));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 1, "{reports:#?}");
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2, "{spans:#?}");
        assert_eq!(
            (spans[0].end, spans[0].conn, spans[0].to.line),
            (SpanEnd::ConnectionEnded, 1, to)
        );
        assert_eq!(
            (spans[1].end, spans[1].conn, spans[1].from.line),
            (SpanEnd::End, 2, from)
        );
        assert_eq!(reports[0].updates, updates);
        assert!(reports[0].proven());
    }

    /// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: not the code
    /// under test's table-driven crate.
    pub(crate) fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// The tests' own book: (value, price text, size text) per side, best first, `keep`
    /// levels a side.
    #[derive(Clone, Debug)]
    pub(crate) struct TestBook {
        pub(crate) bids: Vec<(f64, String, String)>,
        pub(crate) asks: Vec<(f64, String, String)>,
        keep: usize,
    }

    impl TestBook {
        /// An empty book that keeps `keep` levels a side.
        pub(crate) fn new(keep: usize) -> Self {
            Self {
                bids: Vec::new(),
                asks: Vec::new(),
                keep,
            }
        }

        /// Sets a level; a size of zero removes it.
        pub(crate) fn set(&mut self, ask: bool, price: &str, size: &str) {
            let v: f64 = price.parse().unwrap();
            let side = if ask { &mut self.asks } else { &mut self.bids };
            side.retain(|l| l.0 != v);
            if size.parse::<f64>().unwrap() != 0.0 {
                side.push((v, price.to_owned(), size.to_owned()));
            }
            side.sort_by(|a, b| {
                if ask {
                    a.0.total_cmp(&b.0)
                } else {
                    b.0.total_cmp(&a.0)
                }
            });
            side.truncate(self.keep);
        }

        /// OKX's, Bitfinex's and Bitget's checksum as their docs spell it: for each of the
        /// top 25, the bid's then the ask's `price:size`, all joined with ':'; CRC32 signed.
        pub(crate) fn interleaved(&self) -> i32 {
            let mut parts = Vec::new();
            for i in 0..25 {
                for l in [self.bids.get(i), self.asks.get(i)].into_iter().flatten() {
                    parts.push(l.1.clone());
                    parts.push(l.2.clone());
                }
            }
            crc32(parts.join(":").as_bytes()) as i32
        }
    }

    #[test]
    fn the_bitwise_crc32_gives_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::run;

    const CORPUS: &str = include_str!("../../../tests/fixtures/corpus/kraken-v1_book.jsonl");

    fn lines() -> Vec<String> {
        CORPUS.lines().map(str::to_owned).collect()
    }

    /// The lines of `pair`'s updates whose checksum differs from the one before (the top 10
    /// changed).
    fn changing_updates(lines: &[String], pair: &str) -> Vec<usize> {
        let mut last = String::new();
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if !l.ends_with(&format!("\"{pair}\"]")) {
                continue;
            }
            if let Some(at) = l.find("\"c\":\"") {
                let c = &l[at + 5..][..l[at + 5..].find('"').unwrap()];
                if c != last {
                    out.push(i);
                }
                last = c.to_owned();
            }
        }
        out
    }

    #[test]
    fn every_checksum_of_the_real_kraken_v1_frames_verifies() {
        let lines = lines();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        let checked: u64 = reports.iter().map(|r| r.checksums_checked).sum();
        let sent = lines.iter().filter(|l| l.contains("\"c\":\"")).count() as u64;
        assert_eq!((checked, sent), (990, 990));
        assert_eq!(reports.len(), 10);
        assert!(reports.iter().all(|r| r.proven() && r.snapshots == 1));
        let xmr = reports.iter().find(|r| r.id.symbol == "XMR/USD").unwrap();
        assert_eq!((xmr.updates, xmr.spans_total), (199, 1));
        assert_eq!(xmr.spans[0].end, SpanEnd::End);
    }

    #[test]
    fn a_changed_volume_breaks_the_checksum_at_that_line() {
        let mut lines = lines();
        let i = changing_updates(&lines, "XMR/USD")[3];
        // The first volume of the update, one more digit.
        let at = lines[i].find("\",\"").unwrap() + 3;
        lines[i].insert(at, '9');
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
        assert_eq!(breaks[0].at.line, i as u64 + 1);
        assert_eq!(breaks[0].book.symbol, "XMR/USD");
        assert_eq!(reports.iter().filter(|r| r.proven()).count(), 9);
    }

    #[test]
    fn a_deleted_update_breaks_the_book_at_the_next() {
        let mut lines = lines();
        let changing = changing_updates(&lines, "XMR/USD");
        lines.remove(changing[4]);
        let next = (changing[4]..lines.len())
            .find(|&i| lines[i].ends_with("\"XMR/USD\"]"))
            .unwrap();
        testing::assert_one_break(&lines, BreakKind::ChecksumMismatch, next as u64 + 1);
    }

    #[test]
    fn two_swapped_updates_break_the_book() {
        let mut lines = lines();
        let changing = changing_updates(&lines, "XMR/USD");
        lines.swap(changing[5], changing[6]);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].at.line, changing[5] as u64 + 1);
    }

    #[test]
    fn removing_a_level_the_book_does_not_have_breaks_it() {
        let mut lines = lines();
        let i = lines
            .iter()
            .position(|l| l.starts_with("[992,{\"b\":[[\"354.12000000\",\"0.00000000\""))
            .unwrap();
        lines[i] = lines[i].replace("354.12000000", "354.12500000");
        let b = testing::assert_one_break(&lines, BreakKind::MissingLevel, i as u64 + 1);
        assert_eq!(
            b.detail,
            "Bid 354.12500000 removed, but the book has no level there"
        );
    }

    #[test]
    fn both_sides_in_one_array_and_republished_levels_are_read() {
        // A three-level book, then one array with an ask and a bid object, the ask removing
        // one level and a republished one coming back into depth 3.
        let snapshot = r#"[7,{"as":[["5.10","1.00","1"],["5.20","2.00","1"],["5.30","3.00","1"]],"bs":[["5.00","1.50","1"],["4.90","2.50","1"],["4.80","3.50","1"]]},"book-3","X/Y"]"#;
        let asks = [("5.20", "2.00"), ("5.30", "3.00"), ("5.40", "4.00")];
        let bids = [("5.05", "0.50"), ("5.00", "1.50"), ("4.90", "2.50")];
        let mut s = String::new();
        for (p, v) in asks.iter().chain(&bids) {
            for text in [p, v] {
                s.push_str(text.replace('.', "").trim_start_matches('0'));
            }
        }
        let c = testing::crc32(s.as_bytes());
        let update = format!(
            r#"[7,{{"a":[["5.10","0.00","2"],["5.40","4.00","2","r"]]}},{{"b":[["5.05","0.50","2"]],"c":"{c}"}},"book-3","X/Y"]"#
        );
        let (breaks, reports) = run(&[snapshot.to_owned(), update.clone()]);
        assert_eq!(breaks, []);
        assert_eq!(
            (reports[0].checksums_checked, reports[0].updates),
            (1, 1),
            "{reports:#?}"
        );
        // Without truncation to 3 the fourth bid (4.80) would stay in the checksum's top 10.
        let wrong = update.replace(&format!("\"c\":\"{c}\""), "\"c\":\"1\"");
        let (breaks, _) = run(&[snapshot.to_owned(), wrong]);
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let xmr: Vec<String> = lines()
            .into_iter()
            .filter(|l| l.ends_with("\"XMR/USD\"]"))
            .collect();
        testing::assert_reconnect(&xmr[..30], &xmr[..10], 30, 32, 29 + 9);
    }
}
