//! Bybit v5 order books: `orderbook.{depth}.{symbol}` on the spot, linear, inverse and option
//! streams (<https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook>).
//!
//! A `type":"snapshot` message first, then `delta`s; a new snapshot resets the book ("If you
//! receive a new snapshot message, you will have to reset your local orderbook"), and so does a
//! message with `u` = 1 ("a snapshot data due to the restart of the service"). Each delta's `u`
//! (the update ID) is the previous message's `u` + 1 (every delta of the corpus' real frames,
//! spot and linear, links so; the page calls `u` the update ID and does not spell the rule out);
//! `seq` is the cross sequence, shared across depths, and not checked. A size of `"0"` removes a
//! level. The book is `depth` deep: Bybit keeps the top `depth` levels and drops what falls
//! below without a message, so the rebuilt book is truncated to `depth` after every message.
//! Bybit sends no checksum. cryptofeed's Bybit book handler (bmoscon/cryptofeed,
//! `cryptofeed/exchanges/bybit.py`) resets the book on a snapshot and applies deltas the same way
//! (it does not check `u`). A delta removing a level the book lacks is not a break (cryptofeed
//! ignores it too; the page does not say it cannot happen).

use serde::Deserialize;

use super::shared::{self, Lvl};
use super::{Rules, Venue};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    topic: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    b: Vec<Lvl<'a>>,
    #[serde(borrow, default)]
    a: Vec<Lvl<'a>>,
    u: Option<u64>,
}

/// Bybit's rules (no state beyond the tracker's).
#[derive(Debug, Default)]
pub(super) struct Bybit;

impl Rules for Bybit {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"topic\":\"orderbook.")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        // `orderbook.200.BTCUSDT` → channel `orderbook.200`, depth 200, symbol `BTCUSDT`.
        let Some((channel, symbol)) = top.topic.rsplit_once('.') else {
            return false;
        };
        let Some(depth) = channel
            .strip_prefix("orderbook.")
            .and_then(|d| d.parse::<usize>().ok())
        else {
            return false;
        };
        let k = Key {
            venue: Venue::Bybit,
            channel,
            symbol,
        };
        let book = match (top.kind, top.data.u) {
            ("snapshot", u) | ("delta", u @ Some(1)) => Some(t.snapshot(m, &k, u)),
            ("delta", Some(u)) => t.update(m, &k, Link::Range { first: u, last: u }),
            ("delta", None) => t.update(m, &k, Link::None),
            _ => return false,
        };
        let Some(book) = book else { return true };
        if let Err(why) = shared::apply(book, &top.data.b, &top.data.a) {
            t.broke(m, &k, BreakKind::BadMessage, why);
            return true;
        }
        book.truncate(depth);
        t.settle(m, &k);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::{Line, run, run_lines};
    use crate::book::venues::shared::synth::book_after;

    const LINEAR: &str =
        include_str!("../../../tests/fixtures/corpus/bybit-linear_orderbook.jsonl");
    const SPOT: &str = include_str!("../../../tests/fixtures/corpus/bybit-spot_orderbook.jsonl");

    fn lines(corpus: &str) -> Vec<String> {
        corpus.lines().map(str::to_owned).collect()
    }

    /// The indexes of `topic`'s deltas.
    fn deltas(lines: &[String], topic: &str) -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| lines[i].contains(topic) && lines[i].contains("\"type\":\"delta\""))
            .collect()
    }

    #[test]
    fn every_real_frame_rebuilds_with_no_break() {
        for (corpus, books) in [(LINEAR, 4), (SPOT, 2)] {
            let lines = lines(corpus);
            let (breaks, reports) = run(&lines);
            assert_eq!(breaks, []);
            assert_eq!(reports.len(), books);
            assert!(reports.iter().all(|r| r.proven() && r.spans_total == 1));
            let snapshots: u64 = reports.iter().map(|r| r.snapshots).sum();
            let updates: u64 = reports.iter().map(|r| r.updates).sum();
            assert_eq!(snapshots, books as u64);
            assert_eq!(snapshots + updates, lines.len() as u64);
        }
    }

    #[test]
    fn the_book_is_kept_at_its_depth() {
        // Rebuilt by the test: every level of the snapshot and deltas, then the best 200.
        let lines = lines(LINEAR);
        let btc: Vec<&String> = lines.iter().filter(|l| l.contains(".BTCUSDT\"")).collect();
        let mut bids = std::collections::BTreeMap::new();
        for l in &btc {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            for lv in v["data"]["b"].as_array().unwrap() {
                let p: f64 = lv[0].as_str().unwrap().parse().unwrap();
                let key = (p * 100.0).round() as i64;
                match lv[1].as_str().unwrap() {
                    q if q.parse::<f64>().unwrap() == 0.0 => bids.remove(&key),
                    q => bids.insert(key, q.to_owned()),
                };
            }
            while bids.len() > 200 {
                bids.pop_first();
            }
        }
        let lines: Vec<String> = btc.iter().map(|l| l.to_string()).collect();
        let [got, _] = book_after(&lines, "BTCUSDT");
        assert_eq!(got.len(), 200);
        let got: Vec<&str> = got.iter().map(|(_, s)| s.as_str()).collect();
        let want: Vec<&str> = bids.values().rev().map(String::as_str).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_changed_size_breaks_the_book_where_it_crosses() {
        // Bybit sends no checksum: a changed size cannot be seen; a change shows only when it
        // makes the book inconsistent. A bid level moved above the best ask crosses the book at
        // that line.
        let mut lines = lines(LINEAR);
        let d = deltas(&lines, "BTCUSDT");
        // A delta whose first bid is not a removal.
        let i = *d[5..]
            .iter()
            .find(|&&i| {
                let v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
                v["data"]["b"][0][1].as_str().is_some_and(|q| q != "0")
            })
            .unwrap();
        lines[i] = lines[i].replacen("\"b\":[[\"", "\"b\":[[\"9", 1);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::Crossed);
        assert_eq!(breaks[0].at.line, i as u64 + 1);
    }

    #[test]
    fn a_deleted_update_breaks_the_book_at_the_next() {
        let mut lines = lines(SPOT);
        let d = deltas(&lines, "ETHUSDT");
        lines.remove(d[7]);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::SequenceGap);
        assert_eq!(breaks[0].at.line, d[8] as u64);
    }

    #[test]
    fn two_swapped_updates_break_the_book() {
        let mut lines = lines(LINEAR);
        let d = deltas(&lines, "SOLUSDT");
        lines.swap(d[3], d[4]);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::SequenceGap);
        assert_eq!(breaks[0].at.line, d[3] as u64 + 1);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let all = lines(SPOT);
        let btc: Vec<&String> = all.iter().filter(|l| l.contains(".BTCUSDT\"")).collect();
        let mut lines: Vec<Line> = btc[..30]
            .iter()
            .map(|l| Line::Msg(1, l.to_string()))
            .collect();
        lines.push(Line::End(1));
        lines.extend(btc.iter().map(|l| Line::Msg(2, l.to_string())));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2, "{spans:#?}");
        assert_eq!(
            (spans[0].end, spans[0].updates),
            (SpanEnd::ConnectionEnded, 29)
        );
        assert_eq!((spans[1].from.line, spans[1].end), (32, SpanEnd::End));
        assert_eq!(spans[1].updates, btc.len() as u64 - 1);
    }

    #[test]
    fn a_delta_with_u_1_resets_the_book() {
        let snap = r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[["100","1"]],"a":[["101","1"]],"u":500,"seq":1}}"#;
        let next = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":2,"data":{"s":"BTCUSDT","b":[["100.5","1"]],"a":[],"u":501,"seq":2}}"#;
        let restart = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":3,"data":{"s":"BTCUSDT","b":[["99","2"]],"a":[["102","1"]],"u":1,"seq":3}}"#;
        let after = r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":4,"data":{"s":"BTCUSDT","b":[],"a":[["101.5","1"]],"u":2,"seq":4}}"#;
        let (breaks, reports) = run(&[snap, next, restart, after].map(String::from));
        assert_eq!(breaks, []);
        assert_eq!((reports[0].snapshots, reports[0].updates), (2, 2));
    }
}
