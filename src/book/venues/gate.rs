//! Gate v4 order books.
//!
//! `spot.order_book_update` (<https://www.gate.com/docs/developers/apiv4/ws/en/>, "Changed order
//! book levels") and `futures.order_book_update`
//! (<https://www.gate.com/docs/developers/futures/ws/en/>, "Order book update"): `update` events
//! whose `result` covers `U..=u` (spot levels `["price","size"]`, futures `{"p":…,"s":…}`) start
//! from the REST snapshot line the recorder wrote (`GET /api/v4/spot/order_book?…&with_id=true`,
//! `GET /api/v4/futures/usdt/order_book?…&with_id=true`; the body's `id` is the book's update
//! ID). Per the pages: cache the notifications, take the snapshot's `id` as `baseID`, drop the
//! notifications with `u < baseID + 1`, start from the one with `U <= baseID + 1 <= u`; then
//! each notification's `U` is the previous one's `u` + 1, else the book is fetched again. A size
//! of zero removes a level. Notifications before the snapshot line and while the book is broken
//! are held (bounded) and read again when a snapshot line comes; a snapshot line for a proven
//! book current to the same update is compared with it, any other is ignored (see
//! [`super::binance`], which shares this through [`rest_started::Held`](super::rest_started::Held)).
//!
//! `spot.order_book` (the limited-level snapshot, top 5/10/20/50/100) is the whole top of the
//! book in every message (`bids`, `asks`, `lastUpdateId`).
//!
//! The same procedure as cryptofeed's Gate spot feed (bmoscon/cryptofeed,
//! `cryptofeed/exchanges/gateio.py`, `_check_update_id`: REST `with_id`, skip `u <= id`, start at
//! `U <= id + 1 <= u`, then `U == id + 1`). Futures follow the futures page; no client was
//! checked for them.

use serde::Deserialize;

use super::rest_started::{Diff, Held, RestVenue, Rule};
use super::shared::{self, Depth};
use super::{Venue, starts_near};
use crate::book::track::{Key, Msg, Tracker};

/// The difference channels (book names) of spot and futures.
const SPOT: &str = "spot.order_book_update";
const FUTURES: &str = "futures.order_book_update";

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow)]
    event: &'a str,
    #[serde(borrow)]
    result: Depth<'a>,
}

/// Gate's rules: the difference books held for their REST snapshots.
#[derive(Debug, Default)]
pub(super) struct Gate;

impl RestVenue for Gate {
    fn claims(&self, msg: &[u8]) -> bool {
        starts_near(msg, 112, b".order_book")
            && (starts_near(msg, 112, b"\"channel\":\"spot.")
                || starts_near(msg, 112, b"\"channel\":\"futures."))
    }

    fn message(&mut self, held: &mut Held, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        let r = top.result;
        let Some(symbol) = r.s else { return false };
        let k = Key {
            venue: Venue::Gate,
            channel: top.channel,
            symbol,
        };
        match (top.channel, top.event) {
            ("spot.order_book", "update") => {
                shared::whole_book(t, m, &k, r.last_update_id, &r.bids, &r.asks);
            }
            (SPOT | FUTURES, "update") => {
                let (Some(first), Some(last)) = (r.first, r.u) else {
                    return false;
                };
                let d = Diff {
                    first,
                    last,
                    prev: None,
                };
                held.diff_levels(t, m, &k, d, msg, &r.b, &r.a);
            }
            _ => return false,
        }
        true
    }

    const VENUE: Venue = Venue::Gate;

    fn rest_book(&self, url: &str) -> Option<(&'static str, Rule)> {
        if url.contains("/api/v4/spot/order_book") {
            Some((SPOT, Rule::NextAfter))
        } else if url.contains("/api/v4/futures/") && url.contains("/order_book") {
            Some((FUTURES, Rule::NextAfter))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::book::level::Side;
    use crate::book::testing::{Line, run};
    use crate::book::track::BreakKind;
    use crate::book::venues::shared::synth::{Levels, Op, RestShape, rest_checks};

    fn spot_levels(ops: &[Op], side: Side) -> String {
        let v: Vec<String> = ops
            .iter()
            .filter(|o| o.side == side)
            .map(|o| format!(r#"["{}","{}"]"#, o.price, o.size))
            .collect();
        v.join(",")
    }

    fn futures_levels(ops: &[Op], side: Side) -> String {
        let v: Vec<String> = ops
            .iter()
            .filter(|o| o.side == side)
            .map(|o| format!(r#"{{"p":"{}","s":{}}}"#, o.price, o.size))
            .collect();
        v.join(",")
    }

    /// `levels` as `Op`s of one kind (a REST body's levels).
    fn ops(levels: &Levels) -> Vec<Op> {
        [Side::Bid, Side::Ask]
            .iter()
            .zip(levels)
            .flat_map(|(&side, l)| {
                l.iter().map(move |(price, size)| Op {
                    side,
                    price: price.clone(),
                    size: size.clone(),
                    kind: crate::book::venues::shared::synth::Kind::New,
                })
            })
            .collect()
    }

    /// [`rest_checks`] for one market: its channel, REST URL and level writer.
    fn market(channel: &str, url: &str, levels: fn(&[Op], Side) -> String) {
        let update = |first: u64, last: u64, o: &[Op]| {
            format!(
                r#"{{"id":null,"time":1,"time_ms":1,"channel":"{channel}","event":"update","result":{{"t":1,"e":"depthUpdate","E":1,"s":"BTC_USDT","U":{first},"u":{last},"b":[{}],"a":[{}]}}}}"#,
                levels(o, Side::Bid),
                levels(o, Side::Ask)
            )
        };
        let rest = |conn: u64, id: u64, book: &Levels| {
            let o = ops(book);
            Line::Rest(
                conn,
                "BTC_USDT".into(),
                url.into(),
                format!(
                    r#"{{"id":{id},"current":1,"update":1,"asks":[{}],"bids":[{}]}}"#,
                    levels(&o, Side::Ask),
                    levels(&o, Side::Bid)
                ),
            )
        };
        rest_checks(
            &RestShape {
                update: &update,
                rest: &rest,
                single: false,
            },
            "BTC_USDT",
        );
    }

    #[test]
    fn spot_updates_start_from_rest_lines_by_gates_rule() {
        market(
            "spot.order_book_update",
            "https://api.gateio.ws/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true",
            spot_levels,
        );
    }

    #[test]
    fn futures_updates_start_from_rest_lines_by_gates_rule() {
        market(
            "futures.order_book_update",
            "https://api.gateio.ws/api/v4/futures/usdt/order_book?contract=BTC_USDT&limit=100&with_id=true",
            futures_levels,
        );
    }

    #[test]
    fn limited_level_books_are_whole_books() {
        let book = |id: u64, bid: &str| {
            format!(
                r#"{{"time":1,"time_ms":1,"channel":"spot.order_book","event":"update","result":{{"t":1,"lastUpdateId":{id},"s":"BTC_USDT","bids":[["{bid}","1"]],"asks":[["100.5","2"]]}}}}"#
            )
        };
        let (breaks, reports) = run(&[book(1, "99"), book(5, "99.5"), book(9, "101")]);
        assert_eq!(breaks.len(), 1);
        assert_eq!((breaks[0].kind, breaks[0].at.line), (BreakKind::Crossed, 3));
        assert_eq!(
            (reports[0].id.channel.as_str(), reports[0].snapshots),
            ("spot.order_book", 3)
        );
    }
}
