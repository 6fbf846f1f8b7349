//! Hyperliquid `l2Book` (<https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions>,
//! `WsBook`): every message is the whole book (up to 20 levels a side),
//! `{"channel":"l2Book","data":{"coin":..,"time":..,"levels":[[bids],[asks]]}}`, each level
//! `{"px":..,"sz":..,"n":..}` with price and size as strings. Every message is a snapshot; what
//! is checked is that its levels read and the book is not crossed. Nothing links one message
//! to the next (no numbering, no checksum), so a lost or reordered message cannot be seen.
//! ccxt's `ts/src/pro/hyperliquid.ts` (`handleOrderBook`: `orderbook.reset` with each
//! message's levels) reads the book the same way.

use serde::Deserialize;

use super::coinbase::{apply, settle_levels};
use super::{Rules, Venue};
use crate::book::level::Side;
use crate::book::track::{Key, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    channel: &'a str,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    coin: &'a str,
    time: Option<u64>,
    #[serde(borrow)]
    levels: [Vec<Level<'a>>; 2],
}

#[derive(Deserialize)]
struct Level<'a> {
    px: &'a str,
    sz: &'a str,
}

/// Hyperliquid's rules (whole books: no state).
#[derive(Debug, Default)]
pub(super) struct Hyperliquid;

impl Rules for Hyperliquid {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"channel\":\"l2Book\"")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        if top.channel != "l2Book" {
            return false;
        }
        let k = Key {
            venue: Venue::Hyperliquid,
            channel: "l2Book",
            symbol: top.data.coin,
        };
        let [bids, asks] = &top.data.levels;
        let book = t.snapshot(m, &k, top.data.time);
        let bids = bids.iter().map(|l| (Some(Side::Bid), l.px, l.sz));
        let asks = asks.iter().map(|l| (Some(Side::Ask), l.px, l.sz));
        let applied = apply(book, true, bids.chain(asks));
        settle_levels(t, m, &k, applied);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::book::testing::{Line, run, run_lines};
    use crate::book::{BreakKind, SpanEnd};

    /// A venue-shaped `l2Book` message: best bid `bid`, best ask `ask`, three levels a side.
    fn book(coin: &str, time: u64, bid: u32, ask: u32) -> String {
        let side = |start: u32, step: i64| {
            (0..3)
                .map(|i| {
                    let px = i64::from(start) + step * i;
                    format!(r#"{{"px":"{px}.5","sz":"0.{}1","n":{}}}"#, i + 1, i + 2)
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"channel":"l2Book","data":{{"coin":"{coin}","time":{time},"levels":[[{}],[{}]]}}}}"#,
            side(bid, -1),
            side(ask, 1)
        )
    }

    #[test]
    fn every_message_is_the_book() {
        let lines: Vec<String> = (0..5)
            .map(|i| book("BTC", 1_700_000_000_000 + i, 100 + i as u32, 102 + i as u32))
            .collect();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!((r.snapshots, r.updates), (5, 0));
        assert_eq!(r.spans.len(), 1);
        assert_eq!((r.spans[0].from.line, r.spans[0].to.line), (1, 5));
        assert!(r.proven());
    }

    #[test]
    fn a_crossed_message_breaks_at_its_line_and_the_next_starts_a_span() {
        let lines = vec![
            book("ETH", 1, 100, 102),
            book("ETH", 2, 103, 102),
            book("ETH", 3, 100, 102),
        ];
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!((breaks[0].kind, breaks[0].at.line), (BreakKind::Crossed, 2));
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].end, spans[1].from.line), (SpanEnd::Break, 3));
    }

    #[test]
    fn an_unreadable_level_breaks() {
        let lines = vec![book("SOL", 1, 100, 102).replacen("\"100.5\"", "\"1x0\"", 1)];
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::BadMessage);
    }

    #[test]
    fn a_reconnect_makes_two_spans() {
        let lines = vec![
            Line::Msg(1, book("BTC", 1, 100, 102)),
            Line::Msg(1, book("BTC", 2, 100, 102)),
            Line::End(1),
            Line::Msg(2, book("BTC", 3, 100, 102)),
        ];
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].end, spans[0].to.line),
            (SpanEnd::ConnectionEnded, 2)
        );
        assert_eq!((spans[1].conn, spans[1].from.line), (2, 4));
    }
}
