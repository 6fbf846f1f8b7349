//! Bitget v2 public order books (spot <https://www.bitget.com/api-doc/spot/websocket/public/Depth-Channel>,
//! futures <https://www.bitget.com/api-doc/contract/websocket/public/Order-Book-Channel>; ccxt
//! `ts/src/pro/bitget.ts`, `handleOrderBook` with its checksum).
//!
//! `books`: an `action":"snapshot` message, then `update`s; a level of size `"0"` is removed; a
//! new snapshot resets the book. Every message carries `seq`, which grows with every change of
//! the book (the docs promise no step of one, so each update must only be above the last) and
//! `checksum`: the CRC32, as a signed 32-bit integer, of the top 25 levels interleaved
//! `bid1price:bid1size:ask1price:ask1size:…` (the deeper side's remaining levels alone) over the
//! venue's own strings: OKX's rule, so [`super::okx::checksum`] computes it. `books1`, `books5`
//! and `books15` send that many levels a side as a snapshot in every message: each is a whole
//! book (their checksums are not compared). The book's key is `instType/channel`
//! (`SPOT/books`), as the presets name it. Bitget's full `books` is not documented as cut at a
//! depth, so nothing is truncated.

use std::fmt::Write as _;

use serde::Deserialize;

use super::kraken_v1::Head;
use super::okx::checksum;
use super::{Rules, Venue, starts_near};
use crate::book::level::{Book, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    action: Option<&'a str>,
    #[serde(borrow)]
    arg: Arg<'a>,
    #[serde(borrow, default)]
    data: Vec<Data<'a>>,
}

#[derive(Deserialize)]
struct Arg<'a> {
    #[serde(rename = "instType")]
    inst_type: &'a str,
    channel: &'a str,
    #[serde(rename = "instId")]
    inst_id: &'a str,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    asks: Vec<Head<'a, 2>>,
    #[serde(borrow, default)]
    bids: Vec<Head<'a, 2>>,
    checksum: Option<i64>,
    seq: Option<u64>,
}

/// Bitget's rules (a buffer for the books' channel names).
#[derive(Debug, Default)]
pub(super) struct Bitget {
    channel: String,
}

impl Rules for Bitget {
    fn claims(&self, msg: &[u8]) -> bool {
        (msg.starts_with(b"{\"action\":\"") || msg.starts_with(b"{\"arg\":{\"instType\":\""))
            && starts_near(msg, 96, b"\"channel\":\"books")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        let full = match top.arg.channel {
            "books" => false,
            "books1" | "books5" | "books15" => true,
            _ => return false,
        };
        self.channel.clear();
        let _ = write!(self.channel, "{}/{}", top.arg.inst_type, top.arg.channel);
        let k = Key {
            venue: Venue::Bitget,
            channel: &self.channel,
            symbol: top.arg.inst_id,
        };
        for d in &top.data {
            let book = if full || top.action == Some("snapshot") {
                Some(t.snapshot(m, &k, d.seq))
            } else {
                t.update(m, &k, d.seq.map_or(Link::None, Link::Increasing))
            };
            let Some(book) = book else { continue };
            match apply(book, &d.bids, &d.asks) {
                Err(why) => t.broke(m, &k, BreakKind::BadMessage, why),
                Ok(()) => {
                    t.settle(m, &k);
                    if let (Some(expected), false) = (d.checksum, full) {
                        compare(t, m, &k, expected, "checksum", |b| {
                            checksum(b, &mut Vec::new())
                        });
                    }
                }
            }
        }
        true
    }
}

/// Compares a checksum sent in `field` with `sum` of the proven book (OKX's interleaved
/// CRC32 for Bitget, Bitfinex's).
pub(super) fn compare(
    t: &mut Tracker,
    m: &Msg<'_>,
    k: &Key<'_>,
    expected: i64,
    field: &str,
    sum: fn(&Book) -> i32,
) {
    if let Some(book) = t.proven(m, k) {
        let got = sum(book);
        t.checksum(m, k, i64::from(got) == expected, || {
            format!("`{field}` {expected}, the rebuilt book's {got}")
        });
    }
}

/// Applies Bitget levels (`[price, size]`, strings).
fn apply(book: &mut Book, bids: &[Head<'_, 2>], asks: &[Head<'_, 2>]) -> Result<(), String> {
    for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
        for l in levels {
            let (Some(price), Some(size)) = (l.text(0), l.text(1)) else {
                return Err(format!("a level without price and size: {l:?}"));
            };
            book.set(side, price, size).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::testing::run;
    use crate::book::venues::kraken_v1::testing::{
        TestBook, assert_one_break, assert_reconnect as reconnect,
    };

    fn side(levels: &[(String, String)]) -> String {
        levels
            .iter()
            .map(|(p, s)| format!("[\"{p}\",\"{s}\"]"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn message(
        action: &str,
        channel: &str,
        bids: &[(String, String)],
        asks: &[(String, String)],
        checksum: i32,
        seq: u64,
    ) -> String {
        format!(
            r#"{{"action":"{action}","arg":{{"instType":"SPOT","channel":"{channel}","instId":"BTCUSDT"}},"data":[{{"asks":[{}],"bids":[{}],"checksum":{checksum},"seq":{seq},"ts":"1733425200000"}}],"ts":1733425200001}}"#,
            side(asks),
            side(bids)
        )
    }

    /// A `books` snapshot of 30 levels a side, then `n` updates (inserts, changes, removals,
    /// both sides at once every third), `seq` growing by 1 to 3, checksums from the model.
    fn session(n: usize) -> Vec<String> {
        let mut model = TestBook::new(usize::MAX);
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for i in 0..30 {
            bids.push((
                format!("{:.2}", 96000.0 - i as f64 * 1.5),
                format!("{:.4}", 0.5 + i as f64 * 0.1),
            ));
            asks.push((
                format!("{:.2}", 96001.0 + i as f64 * 1.25),
                format!("{:.4}", 0.25 + i as f64 * 0.2),
            ));
        }
        for (p, s) in &bids {
            model.set(false, p, s);
        }
        for (p, s) in &asks {
            model.set(true, p, s);
        }
        let mut seq = 1000;
        let mut out = vec![message(
            "snapshot",
            "books",
            &bids,
            &asks,
            model.interleaved(),
            seq,
        )];
        for i in 0..n {
            let mut b = Vec::new();
            let mut a = Vec::new();
            let size = format!("{:.4}", 1.0 + i as f64 * 0.01);
            match i % 3 {
                0 => {
                    b.push((format!("{:.2}", model.bids[0].0 - 0.25), size.clone()));
                    a.push((model.asks[4].1.clone(), "0".to_owned()));
                }
                1 => a.push((format!("{:.2}", model.asks[0].0 + 0.5), size)),
                _ => b.push((model.bids[2].1.clone(), size)),
            }
            for (p, s) in &b {
                model.set(false, p, s);
            }
            for (p, s) in &a {
                model.set(true, p, s);
            }
            seq += 1 + (i as u64 % 3);
            out.push(message("update", "books", &b, &a, model.interleaved(), seq));
        }
        out
    }

    #[test]
    fn a_whole_session_is_proven() {
        let lines = session(50);
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        let r = &reports[0];
        assert_eq!((&*r.id.channel, &*r.id.symbol), ("SPOT/books", "BTCUSDT"));
        assert_eq!((r.snapshots, r.updates, r.checksums_checked), (1, 50, 51));
        assert_eq!((r.spans.len(), r.spans[0].to.line), (1, 51));
        assert!(r.proven());
    }

    #[test]
    fn a_changed_size_breaks_the_checksum_at_that_line() {
        let mut lines = session(30);
        // Update 8 sets a bid's size to 1.0800.
        let changed = lines[9].replace("\"1.0800\"", "\"1.0900\"");
        assert_ne!(changed, lines[9]);
        lines[9] = changed;
        assert_one_break(&lines, BreakKind::ChecksumMismatch, 10);
    }

    #[test]
    fn a_deleted_update_breaks_the_book_at_the_next() {
        let mut lines = session(30);
        lines.remove(7);
        assert_one_break(&lines, BreakKind::ChecksumMismatch, 8);
    }

    #[test]
    fn two_swapped_updates_break_the_book_by_their_seq() {
        let mut lines = session(30);
        lines.swap(11, 12);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        // The later update first: its checksum fails; alone, its seq is still above the last.
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
        assert_eq!(breaks[0].at.line, 12);
        // With checksums that cannot tell, the going back of `seq` breaks the book.
        let blind: Vec<String> = lines
            .iter()
            .map(|l| {
                let at = l.find("\"checksum\":").unwrap();
                let end = at + l[at..].find(',').unwrap();
                format!("{}\"checksum\":null{}", &l[..at], &l[end..])
            })
            .collect();
        assert_one_break(&blind, BreakKind::SequenceGap, 13);
    }

    #[test]
    fn spot_and_futures_books_of_one_symbol_are_kept_apart() {
        let spot = session(12);
        let futures: Vec<String> = session(12)
            .iter()
            .map(|l| l.replace("\"instType\":\"SPOT\"", "\"instType\":\"USDT-FUTURES\""))
            .collect();
        // Interleaved line by line: two books, each with its own checksums.
        let lines: Vec<String> = spot
            .into_iter()
            .zip(futures)
            .flat_map(|(a, b)| [a, b])
            .collect();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        let books: Vec<(&str, u64)> = reports
            .iter()
            .map(|r| (&*r.id.channel, r.checksums_checked))
            .collect();
        assert_eq!(books, [("SPOT/books", 13), ("USDT-FUTURES/books", 13)]);
    }

    #[test]
    fn top_n_channels_are_whole_books() {
        let five = |seq: u64, bid: &str| {
            let bids = vec![(bid.to_owned(), "1.5".to_owned())];
            let asks = vec![("96001.00".to_owned(), "2".to_owned())];
            message("snapshot", "books5", &bids, &asks, 0, seq)
        };
        let lines = vec![
            five(1, "96000.00"),
            five(2, "95999.50"),
            five(3, "96000.00"),
        ];
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        let r = &reports[0];
        assert_eq!(
            (&*r.id.channel, r.snapshots, r.checksums_checked),
            ("SPOT/books5", 3, 0)
        );
        // A crossed top is still found.
        let (breaks, _) = run(&[five(1, "96002.00")]);
        assert_eq!(breaks[0].kind, BreakKind::Crossed);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let s = session(20);
        reconnect(&s, &s[..8], 21, 23, 20 + 7);
    }
}
