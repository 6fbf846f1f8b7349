//! dYdX v4 indexer `v4_orderbook` (<https://docs.dydx.xyz/interaction/data/feeds>, Orderbooks;
//! the message shapes in dydxprotocol/v4-chain
//! `indexer/services/comlink/public/websocket-documentation.md`, Orderbooks).
//!
//! The `subscribed` answer carries the book in `contents` (`bids`/`asks` of
//! `{"price":..,"size":..}`), then `channel_data` updates carry changed levels (`contents`
//! `{"bids":[[price, size]],"asks":..}`, size `0` removes) and `channel_batch_data` (a batched
//! subscription) a list of those.
//!
//! Every message carries the connection's `message_id`, but it is not a gap-free sequence on
//! the wire (the indexer's socks service, dydxprotocol/v4-chain
//! `indexer/services/socks/src/websocket/index.ts` and `src/lib/subscription.ts`: a subscribe
//! takes its number when it arrives and its `subscribed` answer is sent after the initial
//! fetch, while data of other subscriptions goes out with later numbers; error answers reuse
//! the current number). Data messages (`channel_data`, `channel_batch_data`) take theirs as
//! they are sent (`src/lib/message-forwarder.ts`, `forwardToClient` and
//! `forwardToClientBatch`: the number goes up by one and the message is sent at once), so
//! those must only grow, per connection: one that does not breaks every book
//! of the connection ([`ConnSeq`], fed by the data messages of every channel: [`Rules::claims`]
//! takes every dYdX message, [`Rules::message`] answers true only for `v4_orderbook`). A lost
//! message cannot be told from a number a late `subscribed` answer took, so it is not seen.
//!
//! Crossed books: dYdX documents that its indexer's book can be crossed for a while (orders
//! reach the indexer from many validators, out of order; "Uncrossing the orderbook" in
//! <https://docs.dydx.xyz/interaction/data/watch-orderbook>), and clients uncross it
//! themselves (QuantConnect's dYdX brokerage `UncrossOrderBook`; cryptofeed's `dydx.py` is v3
//! and drops stale levels by `offset`). A crossed book is therefore no break here: the book is
//! kept as the venue sent it, not uncrossed (uncrossing would remove levels the venue later
//! changes, and the engine proves the recording, not a trading view). For the same reason a
//! removal of a level the book lacks is no break.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::coinbase::{ConnSeq, apply, number_near};
use super::{Rules, Venue};
use crate::book::level::Side;
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

/// The channel.
const CHANNEL: &str = "v4_orderbook";

/// How far into a message its `message_id` is looked for.
const ID_WITHIN: usize = 120;

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    channel: Option<&'a str>,
    id: Option<&'a str>,
    #[serde(borrow)]
    contents: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Snapshot<'a> {
    #[serde(borrow, default)]
    bids: Vec<Named<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Named<'a>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    price: &'a str,
    size: &'a str,
}

#[derive(Deserialize)]
struct Update<'a> {
    #[serde(borrow, default)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow, default)]
    asks: Vec<[&'a str; 2]>,
}

/// dYdX's rules: the per-connection `message_id` of data messages.
#[derive(Debug)]
pub(super) struct Dydx {
    seq: ConnSeq,
}

impl Default for Dydx {
    fn default() -> Self {
        Self {
            seq: ConnSeq::new(false),
        }
    }
}

impl Rules for Dydx {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"type\":\"")
            && super::starts_near(msg, ID_WITHIN, b"\"connection_id\":\"")
            && super::starts_near(msg, ID_WITHIN, b"\"message_id\":")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        if msg.starts_with("{\"type\":\"channel_")
            && let Some(n) = number_near(msg.as_bytes(), ID_WITHIN, b"\"message_id\":")
        {
            self.seq.see(t, m, Venue::Dydx, "message_id", n);
        }
        if !super::starts_near(msg.as_bytes(), 200, b"\"channel\":\"v4_orderbook\"") {
            return false;
        }
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        let (Some(CHANNEL), Some(symbol), Some(contents)) = (top.channel, top.id, top.contents)
        else {
            return false;
        };
        let k = Key {
            venue: Venue::Dydx,
            channel: CHANNEL,
            symbol,
        };
        self.seq.book(m, CHANNEL, symbol);
        let read = match top.kind {
            "subscribed" => serde_json::from_str::<Snapshot<'_>>(contents.get())
                .map_err(|e| e.to_string())
                .map(|s| {
                    let book = t.snapshot(m, &k, None);
                    let bids = s.bids.iter().map(|l| (Some(Side::Bid), l.price, l.size));
                    let asks = s.asks.iter().map(|l| (Some(Side::Ask), l.price, l.size));
                    apply(book, false, bids.chain(asks))
                }),
            "channel_data" => serde_json::from_str::<Update<'_>>(contents.get())
                .map_err(|e| e.to_string())
                .map(|u| match t.update(m, &k, Link::None) {
                    Some(book) => apply(book, false, levels(&u)),
                    None => Ok(()),
                }),
            "channel_batch_data" => serde_json::from_str::<Vec<Update<'_>>>(contents.get())
                .map_err(|e| e.to_string())
                .map(|batch| match t.update(m, &k, Link::None) {
                    Some(book) => batch.iter().try_for_each(|u| apply(book, false, levels(u))),
                    None => Ok(()),
                }),
            _ => return false,
        };
        match read {
            Ok(Ok(())) => {}
            Ok(Err((kind, why))) => t.broke(m, &k, kind, why),
            Err(why) => t.broke(m, &k, BreakKind::BadMessage, why),
        }
        true
    }

    fn conn_ended(&mut self, _t: &mut Tracker, stream: &str, conn: Option<u64>) {
        self.seq.ended(stream, conn);
    }
}

/// An update's levels, bids then asks.
fn levels<'u, 'a: 'u>(
    u: &'u Update<'a>,
) -> impl Iterator<Item = (Option<Side>, &'a str, &'a str)> + 'u {
    let bids = u.bids.iter().map(|[p, s]| (Some(Side::Bid), *p, *s));
    let asks = u.asks.iter().map(|[p, s]| (Some(Side::Ask), *p, *s));
    bids.chain(asks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::{Line, run, run_lines};
    use crate::book::venues::coinbase::only_break;

    fn connected(id: u64) -> String {
        format!(r#"{{"type":"connected","connection_id":"c0","message_id":{id}}}"#)
    }

    fn subscribed(id: u64, market: &str) -> String {
        format!(
            r#"{{"type":"subscribed","connection_id":"c0","message_id":{id},"channel":"v4_orderbook","id":"{market}","contents":{{"bids":[{{"price":"100","size":"1.5"}},{{"price":"99","size":"2"}}],"asks":[{{"price":"101","size":"1"}},{{"price":"102","size":"3"}}]}}}}"#
        )
    }

    fn update(id: u64, market: &str, side: &str, price: &str, size: &str) -> String {
        format!(
            r#"{{"type":"channel_data","connection_id":"c0","message_id":{id},"id":"{market}","channel":"v4_orderbook","version":"1.0.0","contents":{{"{side}":[["{price}","{size}"]]}}}}"#
        )
    }

    fn trades(id: u64) -> String {
        format!(
            r#"{{"type":"channel_data","connection_id":"c0","message_id":{id},"id":"BTC-USD","channel":"v4_trades","version":"1.1.0","contents":{{"trades":[]}}}}"#
        )
    }

    /// A connection: connected, two books, updates to both and a trades message between.
    fn feed() -> Vec<String> {
        vec![
            connected(0),
            subscribed(1, "BTC-USD"),
            subscribed(2, "ETH-USD"),
            update(3, "BTC-USD", "bids", "100", "0"),
            trades(4),
            update(5, "ETH-USD", "asks", "101", "2.5"),
            update(6, "BTC-USD", "asks", "100.5", "1"),
            update(7, "ETH-USD", "bids", "98", "4"),
            update(8, "BTC-USD", "bids", "99", "3"),
        ]
    }

    #[test]
    fn a_whole_connection_rebuilds_with_no_break() {
        let (breaks, reports) = run(&feed());
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 2);
        for (r, updates) in reports.iter().zip([3, 2]) {
            assert_eq!((r.snapshots, r.updates), (1, updates), "{r:#?}");
            assert_eq!(r.spans.len(), 1);
            assert!(r.proven());
        }
    }

    #[test]
    fn a_late_subscribed_answer_and_a_reused_number_are_no_break() {
        // The ETH subscribe took number 2 on arrival; data went out with 3.. before its answer.
        let lines = vec![
            connected(0),
            subscribed(1, "BTC-USD"),
            update(3, "BTC-USD", "bids", "100", "0"),
            trades(4),
            subscribed(2, "ETH-USD"),
            format!(
                r#"{{"type":"error","message":"Invalid subscribe message: already subscribed","connection_id":"c0","message_id":4}}"#
            ),
            update(5, "ETH-USD", "asks", "101", "2.5"),
            update(6, "BTC-USD", "asks", "100.5", "1"),
        ];
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert!(reports.iter().all(|r| r.proven()));
    }

    #[test]
    fn two_swapped_messages_break() {
        let mut lines = feed();
        lines.swap(5, 6);
        let (breaks, _) = run(&lines);
        // Number 5 after 6: both books break there.
        assert_eq!(breaks.len(), 2, "{breaks:#?}");
        assert!(
            breaks
                .iter()
                .all(|b| b.kind == BreakKind::SequenceGap && b.at.line == 7)
        );
    }

    #[test]
    fn a_crossed_book_is_no_break_and_a_bad_level_is() {
        let mut lines = feed();
        lines.push(update(9, "BTC-USD", "bids", "105", "1"));
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert!(reports.iter().all(|r| r.proven()));
        lines.push(update(10, "BTC-USD", "bids", "1.0.0", "1"));
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1);
        assert_eq!(
            (breaks[0].kind, breaks[0].at.line),
            (BreakKind::BadMessage, 11)
        );
    }

    #[test]
    fn batched_updates_apply_in_order() {
        let lines = vec![
            connected(0),
            subscribed(1, "BTC-USD"),
            r#"{"type":"channel_batch_data","connection_id":"c0","message_id":2,"id":"BTC-USD","channel":"v4_orderbook","version":"1.0.0","contents":[{"bids":[["100","0"]]},{"bids":[["1x","1"]]}]}"#.to_owned(),
        ];
        assert_eq!(only_break(&lines), (BreakKind::BadMessage, 3));
    }

    #[test]
    fn a_reconnect_makes_two_spans() {
        let mut lines: Vec<Line> = feed().into_iter().map(|l| Line::Msg(1, l)).collect();
        lines.push(Line::End(1));
        lines.extend(feed().into_iter().map(|l| Line::Msg(2, l)));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        for r in &reports {
            assert_eq!(r.spans.len(), 2);
            assert_eq!(r.spans[0].end, SpanEnd::ConnectionEnded);
            assert_eq!((r.spans[1].conn, r.spans[1].end), (2, SpanEnd::End));
        }
    }
}
