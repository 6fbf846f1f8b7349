//! Kraken Futures `book` (<https://docs.kraken.com/api/docs/futures-api/websocket/book>;
//! cryptofeed `cryptofeed/exchanges/kraken_futures.py`, `KrakenFutures._book`;
//! nautilus_trader `crates/adapters/kraken/src/websocket/futures`, its book snapshot and delta
//! parsers).
//!
//! A `book_snapshot` (every level of both sides, `{"price": number, "qty": number}`), then one
//! `book` delta per level change (`side` `buy` or `sell`, `price`, `qty`; a `qty` of 0 removes
//! the level), each with the product's `seq`, which counts the subscription's messages: each
//! delta's must be the previous delta's + 1 (cryptofeed's check, and `verify`'s in
//! `src/tools/venue_seq`). The docs do not say how the snapshot's `seq` relates to the first
//! delta's, and cryptofeed does not link them: the first delta after a snapshot is taken as it
//! comes. Numbers are JSON numbers, kept as their literal text. Kraken Futures sends no
//! checksum, and the book is not cut at a depth.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::kraken::Level;
use super::kraken_v1::literal;
use super::{Rules, Venue};
use crate::book::level::{Book, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

#[derive(Deserialize)]
struct Message<'a> {
    feed: &'a str,
    product_id: &'a str,
    seq: Option<u64>,
    side: Option<&'a str>,
    #[serde(borrow)]
    price: Option<&'a RawValue>,
    #[serde(borrow)]
    qty: Option<&'a RawValue>,
    #[serde(borrow, default)]
    bids: Vec<Level<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Level<'a>>,
}

/// Kraken Futures' rules (no state beyond the tracker's).
#[derive(Debug, Default)]
pub(super) struct KrakenFutures;

impl Rules for KrakenFutures {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"feed\":\"book")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(msg) = serde_json::from_str::<Message<'_>>(msg) else {
            return false;
        };
        let k = Key {
            venue: Venue::KrakenFutures,
            channel: "book",
            symbol: msg.product_id,
        };
        match msg.feed {
            "book_snapshot" => {
                let book = t.snapshot(m, &k, None);
                let mut result = Ok(());
                for (side, levels) in [(Side::Bid, &msg.bids), (Side::Ask, &msg.asks)] {
                    for l in levels {
                        result = result.and_then(|()| set(book, side, l.price, l.qty));
                    }
                }
                finish(t, m, &k, result);
            }
            "book" => {
                let link = msg
                    .seq
                    .map_or(Link::None, |s| Link::Range { first: s, last: s });
                let Some(book) = t.update(m, &k, link) else {
                    return true;
                };
                let result = match (msg.side, msg.price, msg.qty) {
                    (Some("buy"), Some(p), Some(q)) => set(book, Side::Bid, p, q),
                    (Some("sell"), Some(p), Some(q)) => set(book, Side::Ask, p, q),
                    _ => Err("a delta without `side` buy or sell, `price` and `qty`".to_owned()),
                };
                finish(t, m, &k, result);
            }
            _ => return false,
        }
        true
    }
}

/// Sets one level from its number literals.
fn set(book: &mut Book, side: Side, price: &RawValue, qty: &RawValue) -> Result<(), String> {
    let (Some(p), Some(q)) = (literal(price), literal(qty)) else {
        return Err(format!("a level without price and qty: {price} {qty}"));
    };
    book.set(side, p, q).map(drop).map_err(|e| e.to_string())
}

/// The end of a message: a break for an unreadable level, else the crossed check.
fn finish(t: &mut Tracker, m: &Msg<'_>, k: &Key<'_>, result: Result<(), String>) {
    match result {
        Ok(()) => t.settle(m, k),
        Err(why) => t.broke(m, k, BreakKind::BadMessage, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::testing::run;
    use crate::book::venues::kraken_v1::testing::{
        assert_one_break, assert_reconnect as reconnect,
    };

    /// A snapshot of 20 levels a side at `seq` 326072249, then `n` deltas numbered on; every
    /// fifth delta takes the best bid up to the best ask's price (an ask removal first).
    fn session(n: usize) -> Vec<String> {
        let level = |p: f64, q: u64| format!(r#"{{"price":{p},"qty":{q}}}"#);
        let bids: Vec<String> = (0..20)
            .map(|i| level(34892.5 - i as f64 * 0.5, 6385 + i))
            .collect();
        let asks: Vec<String> = (0..20)
            .map(|i| level(34911.5 + i as f64 * 0.5, 20598 - i))
            .collect();
        let mut out = vec![format!(
            r#"{{"feed":"book_snapshot","product_id":"PF_XBTUSD","timestamp":1612269825817,"seq":326072249,"tickSize":null,"bids":[{}],"asks":[{}]}}"#,
            bids.join(","),
            asks.join(",")
        )];
        for (i, seq) in (0..n).zip(326072250u64..) {
            let (side, price, qty) = match i % 4 {
                0 => ("buy", 34893.0 + (i / 4) as f64 * 0.5, 100 + i),
                1 => ("sell", 34911.0 - (i / 4) as f64 * 0.5, 200 + i),
                2 => ("buy", 34892.5, 7000 + i),
                _ => ("sell", 34911.5 + (i % 7) as f64 * 0.5, 0),
            };
            out.push(format!(
                r#"{{"feed":"book","product_id":"PF_XBTUSD","side":"{side}","seq":{seq},"price":{price},"qty":{qty},"timestamp":1612269953629}}"#
            ));
        }
        out
    }

    #[test]
    fn a_whole_session_is_proven() {
        let lines = session(40);
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        let r = &reports[0];
        assert_eq!(
            (&*r.id.symbol, r.snapshots, r.updates),
            ("PF_XBTUSD", 1, 40)
        );
        assert_eq!((r.spans.len(), r.spans[0].to.line), (1, 41));
        assert!(r.proven());
    }

    #[test]
    fn a_delta_that_crosses_the_book_breaks_it_at_that_line() {
        let mut lines = session(20);
        // Delta 8 raises a bid; above the best ask (34910.5 by then) the book is crossed.
        let above = "\"price\":34911.5,";
        lines[9] = lines[9].replacen("\"price\":34894,", above, 1);
        assert!(lines[9].contains(above), "{}", lines[9]);
        assert_one_break(&lines, BreakKind::Crossed, 10);
    }

    #[test]
    fn a_deleted_delta_breaks_the_book_at_the_next() {
        let mut lines = session(20);
        lines.remove(6);
        let b = assert_one_break(&lines, BreakKind::SequenceGap, 7);
        assert_eq!(b.detail, "first 326072256, expected 326072255");
    }

    #[test]
    fn two_swapped_deltas_break_the_book() {
        let mut lines = session(20);
        lines.swap(4, 5);
        assert_one_break(&lines, BreakKind::SequenceGap, 5);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let s = session(10);
        reconnect(&s, &s[..5], 11, 13, 10 + 4);
    }
}
