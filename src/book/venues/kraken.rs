//! Kraken spot WebSocket v2 `book` (<https://docs.kraken.com/api/docs/websocket-v2/book>, the
//! checksum guide <https://docs.kraken.com/api/docs/guides/spot-ws-book-v2>; nautilus_trader
//! `crates/adapters/kraken/src/websocket/spot_v2`, its book checksum; cryptofeed
//! `cryptofeed/exchanges/kraken.py`, `Kraken._book`).
//!
//! A `type":"snapshot` message (the subscribed depth of each side), then `update`s; both carry
//! `checksum`, the CRC32 (unsigned) of the top 10 asks (best first) then the top 10 bids, each
//! level's `price` and `qty` with the decimal point removed and leading zeros stripped. A `qty`
//! of 0 removes a level; after each message the book is truncated to the subscribed depth (the
//! docs: no `qty` 0 comes for a level pushed out of it), so when the depth is known from the
//! subscribe acknowledgement a removal of a level the book does not have is a missing level.
//! Nothing numbers the messages: the checksums are the proof.
//!
//! Numbers: v2 sends `price` and `qty` as JSON numbers "containing full precision" (the guide:
//! parse them with a decimal decoder), so the checksum is computed over each number's literal
//! text, trailing zeros included. A literal that is shorter than the pair's precision (a `qty`
//! written `0.1` where the pair has 8 decimals, a price with no fraction) would give a different
//! string than Kraken's: when the recording holds the `instrument` channel's `pairs`
//! (`price_precision`, `qty_precision`), the fraction is padded with zeros to that precision
//! (as nautilus_trader formats with the instrument's precision); without it the literal is used
//! as it is. An exponent (`1e-05`) is expanded. The subscribed depth comes from the subscribe
//! acknowledgement (`result.depth`); without one it is the smallest depth Kraken offers (10,
//! 25, 100, 500, 1000) that holds the snapshot.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::kraken_checksum::checksum;
use super::kraken_v1::{literal, set_level};
use super::{Rules, Venue, starts_near};
use crate::book::level::{Book, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

/// The depths Kraken's `book` channel offers.
const DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];

#[derive(Deserialize)]
struct Top<'a> {
    channel: Option<&'a str>,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    method: Option<&'a str>,
    #[serde(borrow)]
    result: Option<Ack<'a>>,
    success: Option<bool>,
}

/// A subscribe acknowledgement's `result`.
#[derive(Deserialize)]
struct Ack<'a> {
    channel: Option<&'a str>,
    depth: Option<usize>,
    symbol: Option<&'a str>,
}

#[derive(Deserialize)]
struct Data<'a> {
    symbol: &'a str,
    #[serde(borrow, default)]
    bids: Vec<Level<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Level<'a>>,
    checksum: Option<u32>,
}

/// A level of Kraken's JSON books (spot v2 and Futures): two numbers.
#[derive(Deserialize, Debug)]
pub(super) struct Level<'a> {
    #[serde(borrow)]
    pub(super) price: &'a RawValue,
    #[serde(borrow)]
    pub(super) qty: &'a RawValue,
}

#[derive(Deserialize)]
struct Instruments<'a> {
    #[serde(borrow, default)]
    pairs: Vec<Pair<'a>>,
}

#[derive(Deserialize)]
struct Pair<'a> {
    symbol: &'a str,
    price_precision: Option<u32>,
    qty_precision: Option<u32>,
}

/// Kraken v2's rules: the subscribed depths and the pairs' precisions seen.
#[derive(Debug, Default)]
pub(super) struct Kraken {
    /// Depth by stream, connection and symbol (`stream\0conn\0symbol`), and whether the
    /// subscribe acknowledgement said it (else the snapshot's size suggested it).
    depths: HashMap<String, (usize, bool)>,
    /// (price, qty) decimals by symbol, from the `instrument` channel.
    precision: HashMap<String, (u32, u32)>,
    key: String,
}

impl Kraken {
    fn depth_key(&mut self, stream: &str, conn: u64, symbol: &str) -> &str {
        self.key.clear();
        let _ = write!(self.key, "{stream}\u{0}{conn}\u{0}{symbol}");
        &self.key
    }
}

impl Rules for Kraken {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"channel\":\"book\"")
            || msg.starts_with(b"{\"channel\":\"instrument\"")
            || (msg.starts_with(b"{\"method\":\"subscribe\"")
                && starts_near(msg, 64, b"\"channel\":\"book\""))
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        if top.method == Some("subscribe") {
            if let (Some(ack), Some(true)) = (top.result, top.success)
                && ack.channel == Some("book")
                && let (Some(depth), Some(symbol)) = (ack.depth, ack.symbol)
            {
                let key = self.depth_key(m.stream, m.conn, symbol).to_owned();
                self.depths.insert(key, (depth, true));
            }
            return false;
        }
        let Some(data) = top.data else { return false };
        match top.channel {
            Some("instrument") => {
                if let Ok(i) = serde_json::from_str::<Instruments<'_>>(data.get()) {
                    for p in i.pairs {
                        if let (Some(price), Some(qty)) = (p.price_precision, p.qty_precision) {
                            self.precision.insert(p.symbol.to_owned(), (price, qty));
                        }
                    }
                }
                false
            }
            Some(channel @ "book") => {
                let Ok(books) = serde_json::from_str::<Vec<Data<'_>>>(data.get()) else {
                    return false;
                };
                for d in &books {
                    self.book(t, m, channel, top.kind == Some("snapshot"), d);
                }
                true
            }
            _ => false,
        }
    }

    fn conn_ended(&mut self, _t: &mut Tracker, stream: &str, conn: Option<u64>) {
        let prefix = match conn {
            Some(c) => format!("{stream}\u{0}{c}\u{0}"),
            None => format!("{stream}\u{0}"),
        };
        self.depths.retain(|k, _| !k.starts_with(&prefix));
    }
}

impl Kraken {
    /// One symbol's snapshot or update.
    fn book(&mut self, t: &mut Tracker, m: &Msg<'_>, channel: &str, snapshot: bool, d: &Data) {
        let k = Key {
            venue: Venue::Kraken,
            channel,
            symbol: d.symbol,
        };
        self.depth_key(m.stream, m.conn, d.symbol);
        let mut depth = self.depths.get(self.key.as_str()).copied();
        let book = if snapshot {
            if depth.is_none() {
                let most = d.bids.len().max(d.asks.len());
                let fits = DEPTHS.into_iter().find(|&n| n >= most).unwrap_or(most);
                self.depths.insert(self.key.clone(), (fits, false));
                depth = Some((fits, false));
            }
            Some(t.snapshot(m, &k, None))
        } else {
            t.update(m, &k, Link::None)
        };
        let Some(book) = book else { return };
        // With the depth acknowledged the book holds exactly what Kraken's does: a removal
        // of a level it does not have is a missing level.
        let strict = depth.is_some_and(|(_, acked)| acked);
        if let Err((kind, why)) = apply(book, &d.bids, &d.asks, strict) {
            t.broke(m, &k, kind, why);
            return;
        }
        if let Some((depth, _)) = depth {
            book.truncate(depth);
        }
        t.settle(m, &k);
        if let Some(expected) = d.checksum
            && let Some(book) = t.proven(m, &k)
        {
            let precision = self.precision.get(d.symbol).copied();
            let got = checksum(book, precision);
            t.checksum(m, &k, got == expected, || {
                format!("`checksum` {expected}, the rebuilt book's {got}")
            });
        }
    }
}

/// Applies v2 levels (`{"price": number, "qty": number}`); `strict`: see [`set_level`].
fn apply(
    book: &mut Book,
    bids: &[Level<'_>],
    asks: &[Level<'_>],
    strict: bool,
) -> Result<(), (BreakKind, String)> {
    for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
        for l in levels {
            let (Some(price), Some(qty)) = (literal(l.price), literal(l.qty)) else {
                let why = format!("a level without price and qty: {l:?}");
                return Err((BreakKind::BadMessage, why));
            };
            set_level(book, side, price, qty, strict)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::testing::run;
    use crate::book::venues::kraken_v1::testing::{
        TestBook, assert_one_break, assert_reconnect as reconnect, crc32,
    };

    /// Kraken's checksum as the guide spells it, over texts padded to `decimals`.
    fn kraken_checksum(model: &TestBook, decimals: (usize, usize)) -> u32 {
        let fmt = |t: &str, d: usize| {
            let v: f64 = t.parse().unwrap();
            format!("{v:.d$}")
                .replace('.', "")
                .trim_start_matches('0')
                .to_owned()
        };
        let mut s = String::new();
        for (_, p, q) in model.asks.iter().take(10).chain(model.bids.iter().take(10)) {
            s.push_str(&fmt(p, decimals.0));
            s.push_str(&fmt(q, decimals.1));
        }
        crc32(s.as_bytes())
    }

    /// A v2 book message: levels as bare JSON numbers written as given.
    fn message(
        kind: &str,
        symbol: &str,
        bids: &[(&str, &str)],
        asks: &[(&str, &str)],
        c: u32,
    ) -> String {
        let side = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(p, q)| format!(r#"{{"price":{p},"qty":{q}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":[{}],"asks":[{}],"checksum":{c},"timestamp":"2026-12-05T19:00:00.000000Z"}}]}}"#,
            side(bids),
            side(asks)
        )
    }

    fn view(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    /// A synthetic BTC/USD session: depth-10 snapshot, then `n` updates (price 1 decimal,
    /// qty 8, both written in full), checksums from the model.
    fn session(n: usize) -> Vec<String> {
        let mut model = TestBook::new(10);
        let mut bids = Vec::new();
        let mut asks = Vec::new();
        for i in 0..10 {
            bids.push((
                format!("{:.1}", 45283.5 - i as f64 * 0.7),
                format!("{:.8}", 0.1 + i as f64 * 0.013),
            ));
            asks.push((
                format!("{:.1}", 45285.2 + i as f64 * 0.9),
                format!("{:.8}", 0.00100000 + i as f64 * 0.21),
            ));
        }
        for (p, q) in &bids {
            model.set(false, p, q);
        }
        for (p, q) in &asks {
            model.set(true, p, q);
        }
        let mut out = vec![
            r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2026-12-05T19:00:00.000000Z","time_out":"2026-12-05T19:00:00.000100Z"}"#.to_owned(),
            message("snapshot", "BTC/USD", &view(&bids), &view(&asks), kraken_checksum(&model, (1, 8))),
        ];
        for i in 0..n {
            let bid = i % 2 == 0;
            // Inserts inside the book (pushing a level out), changes and removals in turn.
            let (price, qty) = match i % 3 {
                0 => {
                    let base = if bid {
                        model.bids[0].1.clone()
                    } else {
                        model.asks[0].1.clone()
                    };
                    let v: f64 = base.parse().unwrap();
                    let p = if bid { v - 0.1 } else { v + 0.1 };
                    (format!("{p:.1}"), format!("{:.8}", 1.5 + i as f64 * 0.001))
                }
                1 => {
                    let side = if bid { &model.bids } else { &model.asks };
                    (
                        side[3].1.clone(),
                        format!("{:.8}", 2.25 + i as f64 * 0.0001),
                    )
                }
                _ => {
                    let side = if bid { &model.bids } else { &model.asks };
                    (side[1].1.clone(), "0.00000000".to_owned())
                }
            };
            model.set(!bid, &price, &qty);
            let level = [(price.as_str(), qty.as_str())];
            let none: &[(&str, &str)] = &[];
            let (b, a) = if bid {
                (&level[..], none)
            } else {
                (none, &level[..])
            };
            out.push(message(
                "update",
                "BTC/USD",
                b,
                a,
                kraken_checksum(&model, (1, 8)),
            ));
        }
        out
    }

    #[test]
    fn the_guides_example_level_gives_its_string() {
        let mut book = Book::new();
        book.set(Side::Ask, "45285.2", "0.00100000").unwrap();
        assert_eq!(
            checksum(&book, None),
            crc32(b"452852100000"),
            "the guide: 45285.2 and 0.00100000 make 452852100000"
        );
        // A literal shorter than the pair's precision is padded; an exponent is expanded.
        let mut short = Book::new();
        short.set(Side::Ask, "45285", "1e-3").unwrap();
        assert_eq!(checksum(&short, Some((1, 8))), crc32(b"452850100000"));
    }

    /// Two real frames (ALGO/USD, 2024-10-03, depth 10), as a public project's README quotes
    /// them: the literals keep their trailing zeros (`0.12290`, `9705.60000000`).
    const REAL: [&str; 2] = [
        r#"{"channel":"book","type":"snapshot","data":[{"symbol":"ALGO/USD","bids":[{"price":0.12291,"qty":27039.62776299},{"price":0.12290,"qty":8136.33288180},{"price":0.12287,"qty":10984.20817349},{"price":0.12283,"qty":28027.05025639},{"price":0.12280,"qty":9705.60000000},{"price":0.12279,"qty":15215.53522714},{"price":0.12275,"qty":4067.00000000},{"price":0.12274,"qty":30639.39949109},{"price":0.12268,"qty":2531.96119986},{"price":0.12267,"qty":16299.00000000}],"asks":[{"price":0.12307,"qty":600.00000000},{"price":0.12308,"qty":4042.11919517},{"price":0.12312,"qty":10284.53891000},{"price":0.12314,"qty":16155.08885299},{"price":0.12315,"qty":5186.05778473},{"price":0.12316,"qty":32828.24000000},{"price":0.12317,"qty":7751.65718582},{"price":0.12318,"qty":32298.82000000},{"price":0.12319,"qty":1864.66899600},{"price":0.12322,"qty":4718.99755630}],"checksum":2375857985}]}"#,
        r#"{"channel":"book","type":"update","data":[{"symbol":"ALGO/USD","bids":[{"price":0.12275,"qty":6597.51731160}],"asks":[],"checksum":1100635717,"timestamp":"2024-10-03T02:46:57.050170Z"}]}"#,
    ];

    #[test]
    fn the_checksums_of_real_frames_verify_over_the_literals() {
        let lines: Vec<String> = REAL.iter().map(|l| l.to_string()).collect();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!((reports[0].checksums_checked, reports[0].updates), (2, 1));
        // Parsed as floats and printed back, the zeros go and the snapshot fails.
        let floats = lines[0].replace("0.12290", "0.1229");
        assert_one_break(&[floats], BreakKind::ChecksumMismatch, 1);
    }

    #[test]
    fn a_whole_synthetic_session_is_proven() {
        let lines = session(60);
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!((r.snapshots, r.updates, r.checksums_checked), (1, 60, 61));
        assert_eq!(r.spans.len(), 1);
        assert_eq!((r.spans[0].from.line, r.spans[0].to.line), (2, 62));
        assert!(r.proven());
    }

    #[test]
    fn short_literals_verify_once_the_instrument_precision_is_known() {
        // Kraken's own text is full precision; a literal without trailing zeros only
        // verifies with the pair's precision from the instrument channel.
        let lines: Vec<String> = session(9)
            .into_iter()
            .map(|l| l.replace("0000,", ",").replace("0000}", "}"))
            .collect();
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        let instrument = r#"{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8,"qty_increment":0.00000001,"price_precision":1,"cost_precision":5,"marginable":true,"has_index":true,"cost_min":0.5,"tick_size":0.1,"price_increment":0.1,"qty_min":0.0001}]}}"#;
        let mut with = vec![instrument.to_owned()];
        with.extend(lines);
        let (breaks, reports) = run(&with);
        assert_eq!(breaks, []);
        assert_eq!(reports[0].checksums_checked, 10);
    }

    #[test]
    fn removing_a_missing_level_breaks_a_book_of_acknowledged_depth() {
        let mut lines = session(10);
        // A removal that changes nothing Kraken checks, after update 2.
        let at = lines[4].find("\"checksum\":").unwrap() + 11;
        let c: u32 = lines[4][at..].split(',').next().unwrap().parse().unwrap();
        let none: &[(&str, &str)] = &[];
        let gone = [("45000.1", "0.00000000")];
        lines.insert(5, message("update", "BTC/USD", &gone, none, c));
        let b = assert_one_break(&lines, BreakKind::MissingLevel, 6);
        assert_eq!(
            b.detail,
            "Bid 45000.1 removed, but the book has no level there"
        );
        // Without the acknowledgement the depth is a guess: the removal is let pass.
        let (breaks, reports) = run(&lines[1..]);
        assert_eq!(breaks, []);
        assert_eq!(reports[0].checksums_checked, 12);
    }

    #[test]
    fn a_changed_qty_breaks_the_checksum_at_that_line() {
        let mut lines = session(30);
        lines[12] = lines[12].replacen("\"qty\":", "\"qty\":9", 1);
        assert_one_break(&lines, BreakKind::ChecksumMismatch, 13);
    }

    #[test]
    fn a_deleted_update_breaks_the_book_at_the_next() {
        let mut lines = session(30);
        lines.remove(10);
        assert_one_break(&lines, BreakKind::ChecksumMismatch, 11);
    }

    #[test]
    fn two_swapped_updates_break_the_book() {
        let mut lines = session(30);
        lines.swap(14, 15);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].at.line, 15);
    }

    #[test]
    fn without_truncation_to_the_depth_the_book_would_not_verify() {
        // Depth 10 from the acknowledgement, and from the snapshot's size without it.
        for skip in [0, 1] {
            let lines: Vec<String> = session(30).into_iter().skip(skip).collect();
            let (breaks, _) = run(&lines);
            assert_eq!(breaks, []);
        }
        // Asked for 25: the levels pushed out stay, and the checksums fail.
        let mut lines = session(30);
        lines[0] = lines[0].replace("\"depth\":10", "\"depth\":25");
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1);
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let s = session(20);
        reconnect(&s, &s[..12], 22, 25, 20 + 10);
    }
}
