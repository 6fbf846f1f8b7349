//! Upbit `orderbook` (<https://docs.upbit.com/kr/reference/websocket-orderbook>; the DEFAULT
//! format wsrec asks for): every message is the whole book, `{"type":"orderbook","code":..,
//! "orderbook_units":[{"ask_price":..,"bid_price":..,"ask_size":..,"bid_size":..}],
//! "stream_type":"SNAPSHOT"|"REALTIME",..}`, one unit per depth (the best first), prices and
//! sizes as JSON numbers (their literal text is kept). Every message is a snapshot; what is
//! checked is that its levels read and the book is not crossed. Nothing links one message to
//! the next, so a lost or reordered message cannot be seen. ccxt's `ts/src/pro/upbit.ts`
//! (`handleOrderBook`: "the REALTIME deltas are not incremental", the units replace the book
//! each message) reads it the same way.
//!
//! Upbit sends its JSON in binary frames, which wsrec records as received (`bin`, base64): the
//! engine sees them only when the reader hands it their text.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::coinbase::{apply, settle_levels};
use super::{Rules, Venue};
use crate::book::level::Side;
use crate::book::track::{Key, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    timestamp: Option<u64>,
    #[serde(borrow)]
    orderbook_units: Vec<Unit<'a>>,
}

#[derive(Deserialize)]
struct Unit<'a> {
    #[serde(borrow)]
    ask_price: &'a RawValue,
    #[serde(borrow)]
    bid_price: &'a RawValue,
    #[serde(borrow)]
    ask_size: &'a RawValue,
    #[serde(borrow)]
    bid_size: &'a RawValue,
}

/// Upbit's rules (whole books: no state).
#[derive(Debug, Default)]
pub(super) struct Upbit;

impl Rules for Upbit {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"type\":\"orderbook\"")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        if top.kind != "orderbook" {
            return false;
        }
        let k = Key {
            venue: Venue::Upbit,
            channel: "orderbook",
            symbol: top.code,
        };
        let book = t.snapshot(m, &k, top.timestamp);
        let bids = top
            .orderbook_units
            .iter()
            .map(|u| (Some(Side::Bid), u.bid_price.get(), u.bid_size.get()));
        let asks = top
            .orderbook_units
            .iter()
            .map(|u| (Some(Side::Ask), u.ask_price.get(), u.ask_size.get()));
        // A thin book pads its units with zero sizes: no level, no break.
        let applied = apply(book, false, bids.chain(asks));
        settle_levels(t, m, &k, applied);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::book::testing::{Line, run, run_lines};
    use crate::book::venues::coinbase::{only_break, read_each};
    use crate::book::{BreakKind, SpanEnd};

    /// A venue-shaped message: units at `bid` and `ask` stepping 1000 apart.
    fn book(bid: u64, ask: u64) -> String {
        let units: Vec<String> = (0..3)
            .map(|i| {
                format!(
                    r#"{{"ask_price":{}.0,"bid_price":{},"ask_size":0.1062386{i},"bid_size":1.5E-4}}"#,
                    ask + 1000 * i,
                    bid - 1000 * i
                )
            })
            .collect();
        format!(
            r#"{{"type":"orderbook","code":"KRW-BTC","timestamp":1746601573804,"total_ask_size":4.79158413,"total_bid_size":2.65609625,"orderbook_units":[{}],"stream_type":"REALTIME","level":0}}"#,
            units.join(",")
        )
    }

    #[test]
    fn every_message_is_the_book_with_its_own_number_text() {
        let lines = vec![
            book(137_001_000, 137_002_000),
            book(137_000_000, 137_003_000),
        ];
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!((reports[0].snapshots, reports[0].spans.len()), (2, 1));
        let (books, read) = read_each(&[&lines[0]]);
        assert_eq!(read, [true]);
        let (_, _, b) = books.tracker.books_of("KRW-BTC").next().unwrap();
        let best = b.asks().next().unwrap();
        assert_eq!(
            (best.price.as_str(), best.size.as_str()),
            ("137002000.0", "0.10623860")
        );
        assert_eq!(b.bids().next().unwrap().size.as_str(), "1.5E-4");
    }

    #[test]
    fn a_crossed_message_breaks_and_a_reconnect_makes_two_spans() {
        assert_eq!(
            only_break(&[book(137_003_000, 137_002_000)]),
            (BreakKind::Crossed, 1)
        );
        let lines = vec![
            Line::Msg(1, book(1_001_000, 1_002_000)),
            Line::End(1),
            Line::Msg(2, book(1_001_000, 1_002_000)),
        ];
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        let spans = &reports[0].spans;
        assert_eq!(
            (spans.len(), spans[0].end, spans[1].conn),
            (2, SpanEnd::ConnectionEnded, 2)
        );
    }
}
