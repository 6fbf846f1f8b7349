//! BitMEX `orderBookL2` and `orderBookL2_25` (<https://www.bitmex.com/app/wsAPI>, Subscriptions
//! and "Table" semantics): a table kept by the server, keyed by `symbol`, `id` and `side`.
//! `action":"partial` is the whole table (the snapshot; messages of the table before it are to
//! be dropped, so they are no break), then `insert` (a new level: `id`, `side`, `price`,
//! `size`), `update` (`id`, `side`, `size`) and `delete` (`id`, `side`). The `id` names a price
//! level (BitMEX: "a composite of price and symbol, always unique for any given price level"),
//! so the price of an update or delete is the level's; when one carries a `price` too (deletes
//! do since 2023: ccxt/ccxt#17355), it must be that one. An update or delete of an (`id`,
//! `side`) the book does not have, or an insert of one it has, is a `MissingLevel` break. The
//! (id, side) → price text of every level is kept per book here (cleared when its connection
//! ends).
//! Prices and sizes are JSON numbers: their literal text is kept.
//!
//! `orderBookL2_25` is the same table limited to the best 25 levels a side: the server sends
//! the `delete` of a level that leaves the top 25 and the `insert` of one that enters it
//! (table semantics: the client's table is the server's), so the book is not truncated here;
//! truncating would turn those deletes into deletes of unknown ids. A book deeper than 25 for
//! a moment (an insert before the matching delete) is not a break.
//!
//! cryptofeed's `cryptofeed/exchanges/bitmex.py` (`_book`: drops messages before `partial`,
//! keeps `order_id[pair][side][id] = price`, reads the price of `update`/`delete` from it)
//! rebuilds the book the same way.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Rules, Venue};
use crate::book::level::{Book, Side, Text, key};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    table: &'a str,
    action: &'a str,
    #[serde(borrow, default)]
    data: Vec<Row<'a>>,
    #[serde(borrow)]
    filter: Option<Filter<'a>>,
}

#[derive(Deserialize)]
struct Filter<'a> {
    symbol: Option<&'a str>,
}

#[derive(Deserialize)]
struct Row<'a> {
    symbol: &'a str,
    id: u64,
    side: Option<&'a str>,
    #[serde(borrow)]
    size: Option<&'a RawValue>,
    #[serde(borrow)]
    price: Option<&'a RawValue>,
}

/// The levels of one book by id and side (BitMEX's table key: an id names a price, the same
/// on both sides): the price text.
type Ids = HashMap<(u64, Side), Text>;

/// BitMEX's rules: every live book's levels by id.
#[derive(Debug, Default)]
pub(super) struct Bitmex {
    /// By `stream\0conn\0table\0symbol`; present once the book's `partial` came.
    ids: HashMap<String, Ids>,
    key: String,
}

impl Bitmex {
    fn set_key(&mut self, m: &Msg<'_>, table: &str, symbol: &str) {
        self.key.clear();
        let _ = write!(self.key, "{}\0{}\0{table}\0{symbol}", m.stream, m.conn);
    }
}

impl Rules for Bitmex {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"table\":\"orderBookL2")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        if !top.table.starts_with("orderBookL2") {
            return false;
        }
        let partial = top.action == "partial";
        if !partial && !matches!(top.action, "insert" | "update" | "delete") {
            return false;
        }
        let mut snapshotted: Vec<&str> = Vec::new();
        if partial
            && let Some(symbol) = top.filter.and_then(|f| f.symbol)
            && !top.data.iter().any(|r| r.symbol == symbol)
        {
            // An empty table of this symbol.
            self.start(t, m, top.table, symbol);
        }
        for run in top.data.chunk_by(|a, b| a.symbol == b.symbol) {
            let symbol = run[0].symbol;
            let k = Key {
                venue: Venue::Bitmex,
                channel: top.table,
                symbol,
            };
            self.set_key(m, top.table, symbol);
            let book = if partial && !snapshotted.contains(&symbol) {
                snapshotted.push(symbol);
                self.start(t, m, top.table, symbol);
                t.proven(m, &k)
            } else if partial {
                t.proven(m, &k)
            } else if self.ids.contains_key(&self.key) {
                t.update(m, &k, Link::None)
            } else {
                // Before this connection's partial of the book: dropped, as BitMEX says.
                continue;
            };
            let (Some(book), Some(ids)) = (book, self.ids.get_mut(&self.key)) else {
                continue;
            };
            let action = if partial { "insert" } else { top.action };
            let applied = run.iter().try_for_each(|row| apply(book, ids, action, row));
            match applied {
                Ok(()) => t.settle(m, &k),
                Err((kind, why)) => t.broke(m, &k, kind, why),
            }
        }
        true
    }

    fn conn_ended(&mut self, _t: &mut Tracker, stream: &str, conn: Option<u64>) {
        let prefix = match conn {
            Some(c) => format!("{stream}\0{c}\0"),
            None => format!("{stream}\0"),
        };
        self.ids.retain(|k, _| !k.starts_with(&prefix));
    }
}

impl Bitmex {
    /// The book's partial: proven from here, its ids forgotten.
    fn start(&mut self, t: &mut Tracker, m: &Msg<'_>, table: &str, symbol: &str) {
        let k = Key {
            venue: Venue::Bitmex,
            channel: table,
            symbol,
        };
        t.snapshot(m, &k, None);
        self.set_key(m, table, symbol);
        self.ids.entry(self.key.clone()).or_default().clear();
    }
}

/// A side as BitMEX writes it.
fn side(row: &Row<'_>) -> Result<Side, (BreakKind, String)> {
    match row.side {
        Some("Buy") => Ok(Side::Bid),
        Some("Sell") => Ok(Side::Ask),
        other => Err((
            BreakKind::BadMessage,
            format!("id {}: side {other:?}, not Buy or Sell", row.id),
        )),
    }
}

/// Applies one row of an `insert`, `update` or `delete`.
fn apply(
    book: &mut Book,
    ids: &mut Ids,
    action: &str,
    row: &Row<'_>,
) -> Result<(), (BreakKind, String)> {
    let bad =
        |e: crate::book::level::NumberError| (BreakKind::BadMessage, format!("id {}: {e}", row.id));
    let side = side(row)?;
    let missing = |what: &str| {
        (
            BreakKind::MissingLevel,
            format!("{what}: id {} {side:?}", row.id),
        )
    };
    let size = || {
        row.size
            .map(RawValue::get)
            .ok_or((BreakKind::BadMessage, format!("id {}: no size", row.id)))
    };
    if action == "insert" {
        if ids.contains_key(&(row.id, side)) {
            return Err(missing("an insert of a level the book has"));
        }
        let Some(price) = row.price.map(RawValue::get) else {
            return Err((
                BreakKind::BadMessage,
                format!("id {}: an insert without a price", row.id),
            ));
        };
        book.set(side, price, size()?).map_err(bad)?;
        ids.insert((row.id, side), Text::new(price).map_err(bad)?);
        return Ok(());
    }
    let Some(&price) = ids.get(&(row.id, side)) else {
        return Err(missing(&format!("an {action} of a level the book lacks")));
    };
    // Updates may carry the price too: it must be the level's.
    if let Some(said) = row.price.map(RawValue::get)
        && key(said).map_err(bad)? != key(price.as_str()).map_err(bad)?
    {
        return Err((
            BreakKind::MissingLevel,
            format!(
                "id {} {side:?} is at {price}; the {action} says {said}",
                row.id
            ),
        ));
    }
    if action == "update" {
        book.set(side, price.as_str(), size()?).map_err(bad)?;
        return Ok(());
    }
    ids.remove(&(row.id, side));
    if !book.remove(side, price.as_str()).map_err(bad)? {
        return Err(missing("a delete of a price the book lacks"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::{Line, run, run_lines};
    use crate::book::venues::coinbase::only_break;

    const T: &str = "orderBookL2_25";

    /// BitMEX's id of a price (tick 0.5): `100000000 * index - price / tick`, index 88.
    fn id(price: f64) -> u64 {
        8_800_000_000 - (price * 2.0) as u64
    }

    fn msg(action: &str, rows: &[(f64, &str, u64)], with_price: bool) -> String {
        let rows: Vec<String> = rows
            .iter()
            .map(|&(price, side, size)| {
                let mut r = format!(r#"{{"symbol":"XBTUSD","id":{},"side":"{side}""#, id(price));
                if action != "delete" {
                    let _ = write!(r, r#","size":{size}"#);
                }
                if with_price {
                    let _ = write!(r, r#","price":{price:.1}"#);
                }
                r.push_str(r#","timestamp":"2026-01-01T00:00:00.000Z"}"#);
                r
            })
            .collect();
        format!(
            r#"{{"table":"{T}","action":"{action}","data":[{}]}}"#,
            rows.join(",")
        )
    }

    fn partial() -> String {
        msg(
            "partial",
            &[
                (100.5, "Sell", 10),
                (100.0, "Sell", 20),
                (99.5, "Buy", 30),
                (99.0, "Buy", 40),
            ],
            true,
        )
        .replacen(
            "\"data\"",
            r#""keys":["symbol","id","side"],"filter":{"symbol":"XBTUSD"},"data""#,
            1,
        )
    }

    /// An update before the partial (dropped), the partial, then one of each action.
    fn feed() -> Vec<String> {
        vec![
            msg("update", &[(99.5, "Buy", 31)], false),
            partial(),
            msg("insert", &[(98.5, "Buy", 5)], true),
            msg("update", &[(100.0, "Sell", 25), (98.5, "Buy", 6)], false),
            msg("delete", &[(99.0, "Buy", 0)], false),
            msg("update", &[(98.5, "Buy", 7)], false),
            msg("insert", &[(101.0, "Sell", 1)], true),
        ]
    }

    #[test]
    fn updates_before_the_partial_are_dropped_and_the_rest_rebuilds() {
        let (breaks, reports) = run(&feed());
        assert_eq!(breaks, []);
        let r = &reports[0];
        assert_eq!((r.snapshots, r.updates, r.unproven_updates), (1, 5, 0));
        assert_eq!((r.spans[0].from.line, r.spans[0].to.line), (2, 7));
        assert!(r.proven());
    }

    #[test]
    fn an_update_of_an_unknown_id_breaks_at_its_line() {
        let mut lines = feed();
        lines[3] = lines[3].replacen(&id(100.0).to_string(), &id(98.0).to_string(), 1);
        assert_eq!(only_break(&lines), (BreakKind::MissingLevel, 4));
    }

    #[test]
    fn a_deleted_insert_breaks_at_the_next_update_of_its_level() {
        let mut lines = feed();
        lines.remove(2);
        assert_eq!(only_break(&lines), (BreakKind::MissingLevel, 3));
    }

    #[test]
    fn an_update_swapped_before_its_insert_breaks() {
        let mut lines = feed();
        lines.swap(2, 3);
        assert_eq!(only_break(&lines), (BreakKind::MissingLevel, 3));
    }

    #[test]
    fn an_insert_of_a_level_the_book_has_breaks() {
        let mut lines = feed();
        lines.push(msg("insert", &[(100.5, "Sell", 1)], true));
        assert_eq!(only_break(&lines), (BreakKind::MissingLevel, 8));
    }

    #[test]
    fn an_update_at_another_price_than_its_level_breaks() {
        let mut lines = feed();
        lines.push(msg("update", &[(100.5, "Sell", 1)], true));
        let (breaks, _) = run(&lines);
        assert_eq!(breaks, []);
        let last = lines.len() - 1;
        lines[last] = lines[last].replacen("\"price\":100.5", "\"price\":100.0", 1);
        assert_eq!(only_break(&lines), (BreakKind::MissingLevel, 8));
    }

    #[test]
    fn a_crossing_insert_breaks() {
        let mut lines = feed();
        lines.push(msg("insert", &[(100.0, "Buy", 1)], true));
        assert_eq!(only_break(&lines), (BreakKind::Crossed, 8));
    }

    #[test]
    fn a_reconnect_forgets_the_ids_and_makes_two_spans() {
        let mut lines: Vec<Line> = feed().into_iter().map(|l| Line::Msg(1, l)).collect();
        lines.push(Line::End(1));
        lines.extend(feed().into_iter().map(|l| Line::Msg(2, l)));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].end, spans[0].to.line),
            (SpanEnd::ConnectionEnded, 7)
        );
        assert_eq!((spans[1].conn, spans[1].from.line), (2, 10));
    }
}
