//! KuCoin spot and futures level 2 books.
//!
//! Spot `/market/level2:SYMBOL` (<https://www.kucoin.com/docs-new/websocket-api/spot-trading/public-channels/orderbook-increment>):
//! `trade.l2update` messages cover `sequenceStart..=sequenceEnd`; each change is
//! `["price", "size", "sequence"]`. The book starts from the REST snapshot line the recorder
//! wrote (`GET /api/v1/market/orderbook/level2_100`: `data.sequence`, a string), per KuCoin's
//! calibration procedure: cache the messages, take the snapshot's `sequence`, drop the messages
//! that end at or before it, start from the one with `sequenceStart <= sequence + 1`, and within
//! it skip the changes whose own sequence is at or before the snapshot's; then each message's
//! `sequenceStart` is the previous `sequenceEnd` + 1. A size of `"0"` removes a level. The
//! public REST book has 100 levels: deeper levels stay unknown until they change (a snapshot
//! line compared with a proven book checks only what it can: see [`rest_started::compare`](super::rest_started::compare)).
//!
//! Futures `/contractMarket/level2:SYMBOL` (<https://www.kucoin.com/docs-new/websocket-api/futures-trading/public-channels/orderbook-increment>):
//! each `level2` message is one change, `"price,side,size"`, with a `sequence` one more than
//! the previous; the book starts from `GET /api/v1/level2/snapshot` (`data.sequence`, a number)
//! and applies the messages after its sequence.
//!
//! Messages before the snapshot line and while the book is broken are held (bounded) and read
//! again when a snapshot line comes; a snapshot line for a proven book current to the same
//! sequence is compared with it, any other is ignored ([`rest_started::Held`](super::rest_started::Held), shared with Binance and
//! Gate).
//!
//! `/spotMarket/level2Depth5`, `/spotMarket/level2Depth50`, `/contractMarket/level2Depth5` and
//! `/contractMarket/level2Depth50` carry the whole top of the book in every message.
//!
//! cryptofeed's spot feed (bmoscon/cryptofeed, `cryptofeed/exchanges/kucoin.py`,
//! `_process_l2_book`) reads the same messages: a `sequenceStart` beyond its sequence + 1 is a
//! gap, a message starting before it is skipped (it applies every change of the first message
//! it keeps; re-applying changes already in the snapshot gives the same sizes, as a message's
//! changes are contiguous). Futures follow KuCoin's page; no client was checked for them.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::rest_started::{Diff, Held, RestVenue, Rule};
use super::shared::{self, Lvl, RestBook, text};
use super::{Venue, starts_near};
use crate::book::level::{Book, Side};
use crate::book::track::{Key, Msg, Tracker};

/// The difference channels (book names).
const SPOT: &str = "/market/level2";
const FUTURES: &str = "/contractMarket/level2";

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    topic: &'a str,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    changes: Option<Changes<'a>>,
    #[serde(rename = "sequenceStart")]
    sequence_start: Option<u64>,
    #[serde(rename = "sequenceEnd")]
    sequence_end: Option<u64>,
    sequence: Option<u64>,
    #[serde(borrow)]
    change: Option<&'a str>,
    #[serde(borrow, default)]
    bids: Vec<Lvl<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Lvl<'a>>,
}

#[derive(Deserialize)]
struct Changes<'a> {
    #[serde(borrow, default)]
    bids: Vec<Lvl<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Lvl<'a>>,
}

/// A REST answer: `{"code":"200000","data":{"sequence":…,"bids":…,"asks":…}}`.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    data: RestData<'a>,
}

#[derive(Deserialize)]
struct RestData<'a> {
    #[serde(borrow)]
    sequence: &'a RawValue,
    #[serde(borrow)]
    bids: Vec<Lvl<'a>>,
    #[serde(borrow)]
    asks: Vec<Lvl<'a>>,
}

/// KuCoin's rules.
#[derive(Debug, Default)]
pub(super) struct Kucoin;

impl RestVenue for Kucoin {
    fn claims(&self, msg: &[u8]) -> bool {
        starts_near(msg, 72, b"\"topic\":\"/") && starts_near(msg, 72, b"evel2")
    }

    fn message(&mut self, held: &mut Held, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        let Some((channel, symbol)) = top.topic.split_once(':') else {
            return false;
        };
        let k = Key {
            venue: Venue::Kucoin,
            channel,
            symbol,
        };
        let d = top.data;
        match channel {
            SPOT => {
                let (Some(first), Some(last), Some(changes)) =
                    (d.sequence_start, d.sequence_end, &d.changes)
                else {
                    return false;
                };
                let diff = Diff {
                    first,
                    last,
                    prev: None,
                };
                held.diff_with(t, m, &k, diff, msg, |book, floor| {
                    spot_changes(book, floor, changes)
                });
            }
            FUTURES => {
                let (Some(seq), Some(change)) = (d.sequence, d.change) else {
                    return false;
                };
                let diff = Diff {
                    first: seq,
                    last: seq,
                    prev: None,
                };
                held.diff_with(t, m, &k, diff, msg, |book, _| futures_change(book, change));
            }
            _ if channel.contains("/level2Depth") => {
                shared::whole_book(t, m, &k, d.sequence, &d.bids, &d.asks);
            }
            _ => return false,
        }
        true
    }

    const VENUE: Venue = Venue::Kucoin;

    fn rest_book(&self, url: &str) -> Option<(&'static str, Rule)> {
        if url.contains("/api/v1/market/orderbook/level2") {
            Some((SPOT, Rule::NextAfter))
        } else if url.contains("/api/v1/level2/snapshot") {
            Some((FUTURES, Rule::NextAfter))
        } else {
            None
        }
    }

    fn rest_body<'a>(&self, body: &'a str) -> Result<RestBook<'a>, String> {
        let data = serde_json::from_str::<Answer<'_>>(body)
            .map_err(|e| e.to_string())?
            .data;
        let id = text(data.sequence)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("`sequence` {} is not a number", data.sequence.get()))?;
        Ok(RestBook {
            id,
            bids: data.bids,
            asks: data.asks,
        })
    }
}

/// Applies a spot message's changes numbered after `floor`.
fn spot_changes(book: &mut Book, floor: u64, changes: &Changes<'_>) -> Result<(), String> {
    for (side, levels) in [(Side::Bid, &changes.bids), (Side::Ask, &changes.asks)] {
        for l in levels {
            let seq = l
                .third
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("change {} {} without a sequence", l.price, l.size))?;
            if seq <= floor {
                continue;
            }
            book.set(side, l.price, l.size)
                .map_err(|e| format!("change {} {}: {e}", l.price, l.size))?;
        }
    }
    Ok(())
}

/// Applies a futures change, `"price,side,size"`.
fn futures_change(book: &mut Book, change: &str) -> Result<(), String> {
    let mut parts = change.split(',');
    let (Some(price), Some(side), Some(size), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("change `{change}` is not price,side,size"));
    };
    let side = match side {
        "buy" => Side::Bid,
        "sell" => Side::Ask,
        other => return Err(format!("change `{change}`: side `{other}`")),
    };
    book.set(side, price, size)
        .map(|_| ())
        .map_err(|e| format!("change `{change}`: {e}"))
}

#[cfg(test)]
mod tests {
    use crate::book::level::Side;
    use crate::book::testing::{Line, run};
    use crate::book::track::BreakKind;
    use crate::book::venues::shared::synth::{Levels, Op, RestShape, rest_checks};

    /// Levels as JSON arrays: strings (`quoted`) or numbers.
    fn list(levels: &[(String, String)], quoted: bool) -> String {
        let q = if quoted { "\"" } else { "" };
        let v: Vec<String> = levels
            .iter()
            .map(|(p, s)| format!("[{q}{p}{q},{q}{s}{q}]"))
            .collect();
        v.join(",")
    }

    #[test]
    fn spot_updates_start_from_rest_lines_by_kucoins_calibration() {
        let update = |first: u64, last: u64, ops: &[Op]| {
            let changes = |side: Side| {
                let v: Vec<String> = ops
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.side == side)
                    .map(|(j, o)| {
                        let seq = (first + j as u64).min(last);
                        format!(r#"["{}","{}","{seq}"]"#, o.price, o.size)
                    })
                    .collect();
                v.join(",")
            };
            format!(
                r#"{{"topic":"/market/level2:BTC-USDT","type":"message","subject":"trade.l2update","data":{{"changes":{{"asks":[{}],"bids":[{}]}},"sequenceEnd":{last},"sequenceStart":{first},"symbol":"BTC-USDT","time":1}}}}"#,
                changes(Side::Ask),
                changes(Side::Bid)
            )
        };
        let rest = |conn: u64, id: u64, book: &Levels| {
            Line::Rest(
                conn,
                "BTC-USDT".into(),
                "https://api.kucoin.com/api/v1/market/orderbook/level2_100?symbol=BTC-USDT".into(),
                format!(
                    r#"{{"code":"200000","data":{{"time":1,"sequence":"{id}","bids":[{}],"asks":[{}]}}}}"#,
                    list(&book[0], true),
                    list(&book[1], true)
                ),
            )
        };
        rest_checks(
            &RestShape {
                update: &update,
                rest: &rest,
                single: false,
            },
            "BTC-USDT",
        );
    }

    #[test]
    fn futures_changes_start_from_rest_lines_one_sequence_each() {
        let update = |seq: u64, _: u64, ops: &[Op]| {
            let o = &ops[0];
            let side = if o.side == Side::Bid { "buy" } else { "sell" };
            format!(
                r#"{{"topic":"/contractMarket/level2:XBTUSDM","type":"message","subject":"level2","sn":{seq},"data":{{"sequence":{seq},"change":"{},{side},{}","timestamp":1}}}}"#,
                o.price, o.size
            )
        };
        let rest = |conn: u64, id: u64, book: &Levels| {
            Line::Rest(
                conn,
                "XBTUSDM".into(),
                "https://api-futures.kucoin.com/api/v1/level2/snapshot?symbol=XBTUSDM".into(),
                format!(
                    r#"{{"code":"200000","data":{{"symbol":"XBTUSDM","sequence":{id},"asks":[{}],"bids":[{}],"ts":1}}}}"#,
                    list(&book[1], false),
                    list(&book[0], false)
                ),
            )
        };
        rest_checks(
            &RestShape {
                update: &update,
                rest: &rest,
                single: true,
            },
            "XBTUSDM",
        );
    }

    #[test]
    fn depth_channels_are_whole_books() {
        let book = |bid: &str| {
            format!(
                r#"{{"type":"message","topic":"/spotMarket/level2Depth5:BTC-USDT","subject":"level2","data":{{"asks":[["100.5","2"]],"bids":[["{bid}","1"]],"timestamp":1}}}}"#
            )
        };
        let (breaks, reports) = run(&[book("99"), book("99.5"), book("100.5")]);
        assert_eq!(breaks.len(), 1);
        assert_eq!((breaks[0].kind, breaks[0].at.line), (BreakKind::Crossed, 3));
        assert_eq!(
            (reports[0].id.channel.as_str(), reports[0].snapshots),
            ("/spotMarket/level2Depth5", 3)
        );
    }
}
