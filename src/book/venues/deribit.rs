//! Deribit order books (<https://docs.deribit.com/#book-instrument_name-interval> and
//! <https://docs.deribit.com/#book-instrument_name-group-depth-interval>).
//!
//! `book.{instrument}.{interval}` (`raw`, `100ms`, `agg2`): the first notification
//! (`type":"snapshot`) holds every level as `["new", price, amount]`; every later one
//! (`type":"change`) holds `[action, price, amount]` entries, action `new`, `change` or
//! `delete`, and a `prev_change_id` that must be the previous notification's `change_id`
//! ("If prev_change_id is equal to the change_id of the previous message, this means that no
//! messages have been missed"). A `change` or `delete` of a level the book does not have, and a
//! `new` of one it has, are breaks (`MissingLevel`: the book and the venue disagree). A new
//! snapshot notification (after a resubscribe) resets the book.
//!
//! `book.{instrument}.{group}.{depth}.{interval}`: every notification is the whole (grouped) top
//! `depth` of the book, `[price, amount]` levels: a snapshot each time.
//!
//! Prices and amounts are JSON numbers: the book keeps their literal text. cryptofeed's
//! `_book_snapshot`/`_book_update` (bmoscon/cryptofeed, `cryptofeed/exchanges/deribit.py`) reads
//! the same shapes, takes a notification without `prev_change_id` for the snapshot (so does
//! this module, as well as `type":"snapshot`) and raises `MissingSequenceNumber` when
//! `prev_change_id` is not the last `change_id`; it does not check the actions against the book.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::shared::text;
use super::{Rules, Venue, starts_near};
use crate::book::level::{Book, Change, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    params: Params<'a>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow)]
    data: Data<'a>,
}

/// A notification of either channel: `book.{instrument}.{interval}` (`type`, `change_id`,
/// `prev_change_id`, `[action, price, amount]` entries) or the grouped
/// `book.{instrument}.{group}.{depth}.{interval}` (`change_id`, `[price, amount]` levels).
#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    change_id: Option<u64>,
    prev_change_id: Option<u64>,
    #[serde(borrow)]
    bids: Vec<Entry<'a>>,
    #[serde(borrow)]
    asks: Vec<Entry<'a>>,
}

/// `[action, price, amount]`, or `[price, amount]` in a grouped book (no action).
struct Entry<'a> {
    action: Option<&'a str>,
    price: &'a str,
    amount: &'a str,
}

impl<'de: 'a, 'a> Deserialize<'de> for Entry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[action, price, amount]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Entry<'a>, A::Error> {
                let bad = || serde::de::Error::custom("an entry needs a price and an amount");
                let first: &'de RawValue = a.next_element()?.ok_or_else(bad)?;
                // Prices are JSON numbers: a string first is the action.
                let (action, price) = if first.get().starts_with('"') {
                    let price: &'de RawValue = a.next_element()?.ok_or_else(bad)?;
                    (text(first), price)
                } else {
                    (None, first)
                };
                let amount: &'de RawValue = a.next_element()?.ok_or_else(bad)?;
                while a.next_element::<IgnoredAny>()?.is_some() {}
                match (text(price), text(amount)) {
                    (Some(price), Some(amount)) => Ok(Entry {
                        action,
                        price,
                        amount,
                    }),
                    _ => Err(serde::de::Error::custom(
                        "an entry's price or amount is not a number",
                    )),
                }
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Deribit's rules (no state beyond the tracker's).
#[derive(Debug, Default)]
pub(super) struct Deribit;

impl Rules for Deribit {
    fn claims(&self, msg: &[u8]) -> bool {
        starts_near(msg, 96, b"\"channel\":\"book.") && starts_near(msg, 64, b"\"subscription\"")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        // `book.BTC-PERPETUAL.100ms` or `book.BTC-PERPETUAL.none.10.100ms`.
        let channel = top.params.channel;
        let mut parts = channel.split('.');
        let (Some("book"), Some(symbol)) = (parts.next(), parts.next()) else {
            return false;
        };
        let k = Key {
            venue: Venue::Deribit,
            channel: &channel["book.".len() + symbol.len() + 1..],
            symbol,
        };
        let d = top.params.data;
        let grouped = parts.count() == 3;
        let book = match channel.split('.').count() {
            // The grouped top of the book: whole every time.
            5 => t.snapshot(m, &k, d.change_id),
            3 => match (d.kind, d.prev_change_id, d.change_id) {
                (Some("snapshot"), _, id) | (None, None, id) => t.snapshot(m, &k, id),
                (Some("change") | None, Some(prev), Some(last)) => {
                    match t.update(m, &k, Link::Prev { prev, last }) {
                        Some(book) => book,
                        None => return true,
                    }
                }
                _ => return false,
            },
            _ => return false,
        };
        if let Err((kind, why)) = apply(book, &d.bids, &d.asks, grouped) {
            t.broke(m, &k, kind, why);
            return true;
        }
        t.settle(m, &k);
        true
    }
}

/// Applies entries (`grouped`: levels without an action); a `change`/`delete` of a missing
/// level or a `new` of an existing one is a `MissingLevel` break, an unreadable number or a
/// missing action a `BadMessage`.
fn apply(
    book: &mut Book,
    bids: &[Entry<'_>],
    asks: &[Entry<'_>],
    grouped: bool,
) -> Result<(), (BreakKind, String)> {
    for (side, entries) in [(Side::Bid, bids), (Side::Ask, asks)] {
        for e in entries {
            let bad = |err: crate::book::level::NumberError| {
                (
                    BreakKind::BadMessage,
                    format!("{} {}: {err}", e.price, e.amount),
                )
            };
            let ok = match e.action.unwrap_or("") {
                // A grouped book's level.
                "" if grouped => {
                    book.set(side, e.price, e.amount).map_err(bad)?;
                    true
                }
                "delete" => book.remove(side, e.price).map_err(bad)?,
                "new" => book.set(side, e.price, e.amount).map_err(bad)? == Change::Inserted,
                "change" => matches!(
                    book.set(side, e.price, e.amount).map_err(bad)?,
                    Change::Updated | Change::Removed
                ),
                other => {
                    return Err((BreakKind::BadMessage, format!("unknown action `{other}`")));
                }
            };
            if !ok {
                let what = if e.action == Some("new") {
                    "a level the book already has"
                } else {
                    "a level the book does not have"
                };
                return Err((
                    BreakKind::MissingLevel,
                    format!(
                        "`{}` {side:?} {} for {what}",
                        e.action.unwrap_or(""),
                        e.price
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::testing::run;
    use crate::book::venues::shared::synth::{Kind, Op, Synth, book_after, sequence_checks};

    const CHANNEL: &str = "book.BTC-PERPETUAL.100ms";

    fn note(channel: &str, data: String) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{data}}}}}"#
        )
    }

    fn entries(ops: &[Op], side: Side) -> String {
        let list: Vec<String> = ops
            .iter()
            .filter(|o| o.side == side)
            .map(|o| {
                let action = match o.kind {
                    Kind::New => "new",
                    Kind::Change => "change",
                    Kind::Delete => "delete",
                };
                format!(r#"["{action}",{},{}]"#, o.price, o.size)
            })
            .collect();
        list.join(",")
    }

    /// A snapshot and `n` change notifications (change ids skip by 1..=3), the book after them.
    fn recording(n: usize) -> (Vec<String>, Synth) {
        let mut s = Synth::new(7);
        let snap = s.snapshot_ops();
        let mut id = 1000;
        let mut lines = vec![note(
            CHANNEL,
            format!(
                r#"{{"type":"snapshot","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":{id},"bids":[{}],"asks":[{}]}}"#,
                entries(&snap, Side::Bid),
                entries(&snap, Side::Ask)
            ),
        )];
        for i in 0..n {
            let ops = s.changes(1 + i % 4);
            let prev = id;
            id += 1 + (i as u64 % 3);
            lines.push(note(
                CHANNEL,
                format!(
                    r#"{{"type":"change","timestamp":2,"instrument_name":"BTC-PERPETUAL","prev_change_id":{prev},"change_id":{id},"bids":[{}],"asks":[{}]}}"#,
                    entries(&ops, Side::Bid),
                    entries(&ops, Side::Ask)
                ),
            ));
        }
        (lines, s)
    }

    #[test]
    fn a_whole_run_is_proven_and_rebuilds_the_book() {
        let (lines, synth) = recording(300);
        let got = book_after(&lines, "BTC-PERPETUAL");
        assert_eq!(got, [Side::Bid, Side::Ask].map(|side| synth.levels(side)));
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!((reports[0].snapshots, reports[0].updates), (1, 300));
        assert!(reports[0].proven());
        assert_eq!(reports[0].id.channel, "100ms");
    }

    #[test]
    fn a_level_the_venue_and_the_book_disagree_on_breaks_at_that_line() {
        // No checksum: a changed amount cannot be seen; a change of a missing level, a delete
        // of one, and a `new` of an existing level can.
        let (lines, _) = recording(50);
        let i = lines
            .iter()
            .position(|l| l.contains("[\"change\","))
            .unwrap();
        for (from, to) in [
            ("[\"change\",", "[\"change\",1"),
            ("[\"change\",", "[\"new\","),
        ] {
            let mut mutated = lines.clone();
            mutated[i] = mutated[i].replacen(from, to, 1);
            let (breaks, _) = run(&mutated);
            assert_eq!(breaks.len(), 1, "{to}: {breaks:#?}");
            assert_eq!(breaks[0].kind, BreakKind::MissingLevel);
            assert_eq!(breaks[0].at.line, i as u64 + 1);
        }
        let j = lines
            .iter()
            .position(|l| l.contains("[\"delete\","))
            .unwrap();
        let mut mutated = lines.clone();
        mutated[j] = mutated[j].replacen("[\"delete\",", "[\"delete\",1", 1);
        let (breaks, _) = run(&mutated);
        assert_eq!(
            (breaks[0].kind, breaks[0].at.line),
            (BreakKind::MissingLevel, j as u64 + 1)
        );
    }

    #[test]
    fn deleted_swapped_and_reconnected_updates() {
        sequence_checks(&recording(50).0);
    }

    #[test]
    fn grouped_books_are_whole_books() {
        let grouped = |id: u64, bid: &str| {
            note(
                "book.ETH-PERPETUAL.none.10.100ms",
                format!(
                    r#"{{"timestamp":1,"instrument_name":"ETH-PERPETUAL","change_id":{id},"bids":[[{bid},10.0]],"asks":[[2001.5,3]]}}"#
                ),
            )
        };
        let lines = [
            grouped(5, "2000.0"),
            grouped(9, "1999.5"),
            grouped(12, "2002"),
        ];
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks.len(), 1);
        assert_eq!((breaks[0].kind, breaks[0].at.line), (BreakKind::Crossed, 3));
        assert_eq!(reports[0].id.channel, "none.10.100ms");
        assert_eq!(reports[0].snapshots, 3);
    }
}
