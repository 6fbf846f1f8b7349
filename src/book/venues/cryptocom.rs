//! Crypto.com Exchange v1 order books, `book.{instrument_name}.{depth}` subscribed with
//! `book_subscription_type` `SNAPSHOT_AND_UPDATE`
//! (<https://exchange-docs.crypto.com/exchange/v1/rest-ws/index.html#book-instrument_name-depth>).
//!
//! A `channel":"book` message is the snapshot (`data[0]`: `bids`, `asks` as
//! `["price", "size", "count"]`, `u` its update number); `channel":"book.update` messages carry
//! `data[0].update.{bids,asks}` with `u` and `pu`, which must be the previous message's `u`
//! (otherwise the venue says to resubscribe). A size of `"0"` removes a level; a new snapshot
//! resets the book. The book is `depth` deep: it is truncated to the subscription's depth after
//! every message (levels pushed out by better ones get no message of their own; ccxt's
//! `cryptocom.handleOrderBook` keeps a book counted to the same `depth`). Crypto.com sends no
//! checksum. ccxt (`ts/src/pro/cryptocom.ts`, `handleOrderBook`) checks `pu` against the last
//! `u` the same way.

use serde::Deserialize;

use super::shared::{self, Lvl};
use super::{Rules, Venue, starts_near};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    result: Res<'a>,
}

#[derive(Deserialize)]
struct Res<'a> {
    #[serde(borrow)]
    instrument_name: &'a str,
    #[serde(borrow)]
    subscription: &'a str,
    #[serde(borrow)]
    channel: &'a str,
    depth: Option<usize>,
    #[serde(borrow)]
    data: Vec<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    bids: Vec<Lvl<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Lvl<'a>>,
    #[serde(borrow)]
    update: Option<Sides<'a>>,
    u: Option<u64>,
    pu: Option<u64>,
}

#[derive(Deserialize)]
struct Sides<'a> {
    #[serde(borrow, default)]
    bids: Vec<Lvl<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Lvl<'a>>,
}

/// Crypto.com's rules (no state beyond the tracker's).
#[derive(Debug, Default)]
pub(super) struct Cryptocom;

impl Rules for Cryptocom {
    fn claims(&self, msg: &[u8]) -> bool {
        starts_near(msg, 160, b"\"subscription\":\"book.")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        let r = top.result;
        // The channel is the subscription (`book.BTC_USDT.50`): one book per depth.
        let k = Key {
            venue: Venue::Cryptocom,
            channel: r.subscription,
            symbol: r.instrument_name,
        };
        let depth_text = r.subscription.rsplit('.').next().unwrap_or("");
        let depth = r.depth.or_else(|| depth_text.parse().ok());
        for d in &r.data {
            let (book, bids, asks) = match (r.channel, &d.update) {
                ("book", _) => (Some(t.snapshot(m, &k, d.u)), &d.bids, &d.asks),
                ("book.update", Some(up)) => {
                    let link = match (d.pu, d.u) {
                        (Some(prev), Some(last)) => Link::Prev { prev, last },
                        _ => Link::None,
                    };
                    (t.update(m, &k, link), &up.bids, &up.asks)
                }
                _ => return false,
            };
            let Some(book) = book else { continue };
            if let Err(why) = shared::apply(book, bids, asks) {
                t.broke(m, &k, BreakKind::BadMessage, why);
                continue;
            }
            if let Some(n) = depth {
                book.truncate(n);
            }
            t.settle(m, &k);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::level::Side;
    use crate::book::testing::run;
    use crate::book::venues::shared::synth::{Op, Synth, book_after, sequence_checks};

    fn levels(ops: &[Op], side: Side) -> String {
        let list: Vec<String> = ops
            .iter()
            .filter(|o| o.side == side)
            .map(|o| {
                format!(
                    r#"["{}","{}","{}"]"#,
                    o.price,
                    o.size,
                    1 + o.price.len() % 3
                )
            })
            .collect();
        list.join(",")
    }

    fn message(channel: &str, data: String) -> String {
        format!(
            r#"{{"id":-1,"method":"subscribe","code":0,"result":{{"instrument_name":"BTC_USDT","subscription":"book.BTC_USDT.50","channel":"{channel}","depth":50,"data":[{data}]}}}}"#
        )
    }

    /// A snapshot and `n` updates (`u` skipping by 1..=3), the book after them.
    fn recording(n: usize) -> (Vec<String>, Synth) {
        let mut s = Synth::new(11);
        let snap: Vec<Op> = s.snapshot_ops();
        let mut u = 5000;
        let mut lines = vec![message(
            "book",
            format!(
                r#"{{"bids":[{}],"asks":[{}],"t":1,"tt":1,"u":{u}}}"#,
                levels(&snap, Side::Bid),
                levels(&snap, Side::Ask)
            ),
        )];
        for i in 0..n {
            let ops = s.changes(1 + i % 4);
            let pu = u;
            u += 1 + i as u64 % 3;
            lines.push(message(
                "book.update",
                format!(
                    r#"{{"update":{{"bids":[{}],"asks":[{}]}},"t":2,"tt":2,"u":{u},"pu":{pu}}}"#,
                    levels(&ops, Side::Bid),
                    levels(&ops, Side::Ask)
                ),
            ));
        }
        (lines, s)
    }

    #[test]
    fn a_whole_run_is_proven_and_rebuilds_the_book() {
        let (lines, synth) = recording(300);
        assert_eq!(
            book_after(&lines, "BTC_USDT"),
            [Side::Bid, Side::Ask].map(|side| synth.levels(side))
        );
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!((reports[0].snapshots, reports[0].updates), (1, 300));
        assert!(reports[0].proven());
    }

    #[test]
    fn a_changed_level_shows_only_when_it_crosses_the_book() {
        // No checksum: a changed size cannot be seen. A bid moved above the asks crosses.
        let (mut lines, _) = recording(30);
        let i = lines
            .iter()
            .position(|l| l.contains("\"bids\":[[\"9"))
            .unwrap();
        lines[i] = lines[i].replacen("\"bids\":[[\"9", "\"bids\":[[\"19", 1);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(
            (breaks[0].kind, breaks[0].at.line),
            (BreakKind::Crossed, i as u64 + 1)
        );
    }

    #[test]
    fn deleted_swapped_and_reconnected_updates() {
        sequence_checks(&recording(50).0);
    }

    #[test]
    fn the_book_is_kept_at_its_depth() {
        let snap = message(
            "book",
            r#"{"bids":[["99","1","1"],["98","1","1"]],"asks":[["101","1","1"]],"t":1,"tt":1,"u":1}"#.into(),
        )
        .replace("\"depth\":50", "\"depth\":2");
        let up = message(
            "book.update",
            r#"{"update":{"bids":[["99.5","2","1"]],"asks":[]},"t":2,"tt":2,"u":2,"pu":1}"#.into(),
        )
        .replace("\"depth\":50", "\"depth\":2");
        let [bids, _] = book_after(&[snap, up], "BTC_USDT");
        let prices: Vec<&str> = bids.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(prices, ["99.5", "99"]);
    }
}
