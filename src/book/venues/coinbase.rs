//! Coinbase books: Advanced Trade `level2` and Coinbase Exchange `level2`/`level2_batch`.
//!
//! Advanced Trade (<https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels>,
//! Level2 channel): every message is `{"channel":..,"timestamp":..,"sequence_num":N,
//! "events":[..]}`, and `sequence_num` counts every message of the connection, whatever its
//! channel (heartbeats, tickers, trades, subscription acks): the corpus' recording of one
//! connection (`tests/fixtures/corpus/coinbase-advanced_*.jsonl`) numbers its messages of every
//! channel 0, 1, 2, … with no other hole than its two left-out snapshots, and wsrec's
//! `tools::venue_seq` and nautilus_trader's `nautilus_coinbase` (`websocket/messages.rs`: the
//! envelope) read it the same way. A skip in it means a message of the connection was
//! lost, so every book of that connection breaks, at the message where the skip shows
//! ([`ConnSeq`], fed by every Advanced Trade message: [`Rules::claims`] takes them all, and
//! [`Rules::message`] answers true only for `l2_data`). An `l2_data` event of `type`
//! `snapshot` is the whole book; `update` events carry absolute quantities per level
//! (`side` `bid` or `offer`, `price_level`, `new_quantity`; `0` removes). Advanced Trade also
//! sends removals of levels the book does not have (the corpus' frames, with every
//! `sequence_num` present, remove some levels twice), so such a removal is no break here;
//! cryptofeed's `cryptofeed/exchanges/coinbase.py` (`_pair_level2_update`, which reads the
//! same shapes) skips them too. Nothing checks a size (no checksum).
//!
//! Coinbase Exchange (<https://docs.cdp.coinbase.com/exchange/websocket-feed/channels>,
//! `level2_batch`): a `snapshot` message (`bids`, `asks`: `[price, size]`) then `l2update`s
//! (`changes`: `[side, price, size]`, side `buy` or `sell`, size `0` removes). These messages
//! carry no sequence: only a removal of a level the book lacks (a `MissingLevel` break: the
//! snapshot is the whole book, and cryptofeed's Coinbase Pro handler, `_pair_level2_update`
//! before its 2024 move to Advanced Trade, deleted such levels unconditionally) and a crossed
//! book can show a lost or reordered update.

use serde::Deserialize;

use super::{Rules, Venue};
use crate::book::level::{Book, Change, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

/// The channel name the Advanced Trade books are reported under (the subscription's name).
const ADVANCED_CHANNEL: &str = "level2";

/// The channel name the Coinbase Exchange books are reported under.
const EXCHANGE_CHANNEL: &str = "level2";

/// A per-connection message number and the books it covers: with `contiguous` it must count
/// up by one (Coinbase Advanced Trade `sequence_num`), otherwise only grow (dYdX v4
/// `message_id` of data messages); a number that breaks the rule breaks every book of the
/// connection.
#[derive(Debug)]
pub(super) struct ConnSeq {
    contiguous: bool,
    conns: Vec<ConnState>,
}

/// One connection's number and books.
#[derive(Debug)]
struct ConnState {
    stream: Box<str>,
    conn: u64,
    /// The last number seen.
    last: Option<u64>,
    books: Vec<(Box<str>, Box<str>)>,
}

impl ConnSeq {
    /// No connection yet; numbers must count up by one (`contiguous`) or only grow.
    pub(super) fn new(contiguous: bool) -> Self {
        Self {
            contiguous,
            conns: Vec::new(),
        }
    }

    fn state(&mut self, m: &Msg<'_>) -> &mut ConnState {
        let i = match self
            .conns
            .iter()
            .position(|c| c.conn == m.conn && &*c.stream == m.stream)
        {
            Some(i) => i,
            None => {
                self.conns.push(ConnState {
                    stream: m.stream.into(),
                    conn: m.conn,
                    last: None,
                    books: Vec::new(),
                });
                self.conns.len() - 1
            }
        };
        &mut self.conns[i]
    }

    /// The connection's message numbered `n`: a number that skips (when contiguous) or does not
    /// grow breaks every book of `venue` the connection carried, at this message.
    pub(super) fn see(&mut self, t: &mut Tracker, m: &Msg<'_>, venue: Venue, field: &str, n: u64) {
        let contiguous = self.contiguous;
        let c = self.state(m);
        let Some(last) = c.last.replace(n) else {
            return;
        };
        let wrong = if contiguous {
            (n != last.wrapping_add(1)).then(|| {
                format!(
                    "`{field}` {n}, expected {}: a message of the connection is missing",
                    last.wrapping_add(1)
                )
            })
        } else {
            (n <= last).then(|| format!("`{field}` {n} after {last}: out of order"))
        };
        let Some(why) = wrong else { return };
        for (channel, symbol) in &c.books {
            let k = Key {
                venue,
                channel,
                symbol,
            };
            t.broke(m, &k, BreakKind::SequenceGap, why.clone());
        }
    }

    /// Notes that the connection carries the book `channel`/`symbol`.
    pub(super) fn book(&mut self, m: &Msg<'_>, channel: &str, symbol: &str) {
        let books = &mut self.state(m).books;
        if !books.iter().any(|(c, s)| &**c == channel && &**s == symbol) {
            books.push((channel.into(), symbol.into()));
        }
    }

    /// A connection (`None`: every connection) of `stream` ended.
    pub(super) fn ended(&mut self, stream: &str, conn: Option<u64>) {
        self.conns
            .retain(|c| !(&*c.stream == stream && conn.is_none_or(|n| n == c.conn)));
    }
}

/// The unsigned integer after `"name":` in the first `within` bytes of `msg`.
pub(super) fn number_near(msg: &[u8], within: usize, name: &[u8]) -> Option<u64> {
    let head = &msg[..msg.len().min(within)];
    let at = memchr::memmem::find(head, name)? + name.len();
    let digits = msg[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n: u64 = 0;
    let mut any = false;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

#[derive(Deserialize)]
struct Advanced<'a> {
    #[serde(borrow)]
    events: Vec<AdvancedEvent<'a>>,
}

#[derive(Deserialize)]
struct AdvancedEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    product_id: &'a str,
    #[serde(borrow, default)]
    updates: Vec<AdvancedLevel<'a>>,
}

#[derive(Deserialize)]
struct AdvancedLevel<'a> {
    side: &'a str,
    price_level: &'a str,
    new_quantity: &'a str,
}

/// Coinbase Advanced Trade's rules: the per-connection `sequence_num`.
#[derive(Debug)]
pub(super) struct Coinbase {
    seq: ConnSeq,
}

impl Default for Coinbase {
    fn default() -> Self {
        Self {
            seq: ConnSeq::new(true),
        }
    }
}

/// How far into a message its `sequence_num` is looked for.
const SEQ_WITHIN: usize = 160;

impl Rules for Coinbase {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"channel\":\"")
            && super::starts_near(msg, SEQ_WITHIN, b"\"sequence_num\":")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let bytes = msg.as_bytes();
        if let Some(n) = number_near(bytes, SEQ_WITHIN, b"\"sequence_num\":") {
            self.seq.see(t, m, Venue::Coinbase, "sequence_num", n);
        }
        if !bytes.starts_with(b"{\"channel\":\"l2_data\"") {
            return false;
        }
        let Ok(top) = serde_json::from_str::<Advanced<'_>>(msg) else {
            return false;
        };
        for e in &top.events {
            let k = Key {
                venue: Venue::Coinbase,
                channel: ADVANCED_CHANNEL,
                symbol: e.product_id,
            };
            self.seq.book(m, ADVANCED_CHANNEL, e.product_id);
            let book = match e.kind {
                "snapshot" => Some(t.snapshot(m, &k, None)),
                "update" => t.update(m, &k, Link::None),
                other => {
                    t.broke(
                        m,
                        &k,
                        BreakKind::BadMessage,
                        format!("an l2_data event of type `{other}`"),
                    );
                    continue;
                }
            };
            let Some(book) = book else { continue };
            let levels = e.updates.iter().map(|l| {
                let side = match l.side {
                    "bid" => Some(Side::Bid),
                    "offer" | "ask" => Some(Side::Ask),
                    _ => None,
                };
                (side, l.price_level, l.new_quantity)
            });
            let applied = apply(book, false, levels);
            settle_levels(t, m, &k, applied);
        }
        true
    }

    fn conn_ended(&mut self, _t: &mut Tracker, stream: &str, conn: Option<u64>) {
        self.seq.ended(stream, conn);
    }
}

/// Applies levels (side, price, absolute size; an unknown side is `None`); with `strict`
/// (the book holds every level of the venue's book) a removal of a level it does not have is
/// an error.
pub(super) fn apply<'a>(
    book: &mut Book,
    strict: bool,
    levels: impl Iterator<Item = (Option<Side>, &'a str, &'a str)>,
) -> Result<(), (BreakKind, String)> {
    for (side, price, size) in levels {
        let Some(side) = side else {
            return Err((
                BreakKind::BadMessage,
                format!("a level of no known side at {price}"),
            ));
        };
        match book.set(side, price, size) {
            Ok(Change::RemovedMissing) if strict => {
                return Err((
                    BreakKind::MissingLevel,
                    format!("{side:?} {price} removed, the book has no such level"),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err((BreakKind::BadMessage, e.to_string())),
        }
    }
    Ok(())
}

/// After a message's levels: the break they found, or the crossed-book check.
pub(super) fn settle_levels(
    t: &mut Tracker,
    m: &Msg<'_>,
    k: &Key<'_>,
    applied: Result<(), (BreakKind, String)>,
) {
    match applied {
        Ok(()) => t.settle(m, k),
        Err((kind, why)) => t.broke(m, k, kind, why),
    }
}

#[derive(Deserialize)]
struct Exchange<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    product_id: &'a str,
    #[serde(borrow, default)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow, default)]
    asks: Vec<[&'a str; 2]>,
    #[serde(borrow, default)]
    changes: Vec<[&'a str; 3]>,
}

/// Coinbase Exchange's rules (no numbering: nothing beyond the tracker's state).
#[derive(Debug, Default)]
pub(super) struct CoinbaseExchange;

impl Rules for CoinbaseExchange {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"type\":\"l2update\"")
            || msg.starts_with(b"{\"type\":\"snapshot\",\"product_id\"")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Exchange<'_>>(msg) else {
            return false;
        };
        let k = Key {
            venue: Venue::CoinbaseExchange,
            channel: EXCHANGE_CHANNEL,
            symbol: top.product_id,
        };
        match top.kind {
            "snapshot" => {
                let book = t.snapshot(m, &k, None);
                let bids = top.bids.iter().map(|[p, s]| (Some(Side::Bid), *p, *s));
                let asks = top.asks.iter().map(|[p, s]| (Some(Side::Ask), *p, *s));
                let applied = apply(book, true, bids.chain(asks));
                settle_levels(t, m, &k, applied);
            }
            "l2update" => {
                let Some(book) = t.update(m, &k, Link::None) else {
                    return true;
                };
                let levels = top.changes.iter().map(|[side, p, s]| {
                    let side = match *side {
                        "buy" => Some(Side::Bid),
                        "sell" => Some(Side::Ask),
                        _ => None,
                    };
                    (side, *p, *s)
                });
                let applied = apply(book, true, levels);
                settle_levels(t, m, &k, applied);
            }
            _ => return false,
        }
        true
    }
}

/// Reads `lines` as messages of connection 1 through fresh books: the books, and whether each
/// was read as a book message.
#[cfg(test)]
pub(super) fn read_each(lines: &[&str]) -> (crate::book::Books, Vec<bool>) {
    let mut books = crate::book::Books::new();
    let at = crate::book::Position {
        file: "f".into(),
        line: 1,
    };
    let m = Msg {
        stream: "s",
        conn: 1,
        ts: 1,
        at: &at,
    };
    let read = lines.iter().map(|l| books.message(&m, l)).collect();
    (books, read)
}

/// The one break `lines` (messages on one connection) make: its kind and line.
#[cfg(test)]
pub(super) fn only_break(lines: &[String]) -> (BreakKind, u64) {
    let (breaks, _) = crate::book::testing::run(lines);
    assert_eq!(breaks.len(), 1, "{breaks:#?}");
    (breaks[0].kind, breaks[0].at.line)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use serde_json::{Value, json};

    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::{Line, run, run_lines};

    /// Every Advanced Trade frame of the corpus' connection (all four files: `sequence_num`
    /// counts them all), in `sequence_num` order.
    fn advanced_frames() -> Vec<String> {
        let mut lines: Vec<(u64, String)> = [
            include_str!("../../../tests/fixtures/corpus/coinbase-advanced_level2.jsonl"),
            include_str!("../../../tests/fixtures/corpus/coinbase-advanced_control.jsonl"),
            include_str!("../../../tests/fixtures/corpus/coinbase-advanced_ticker.jsonl"),
            include_str!("../../../tests/fixtures/corpus/coinbase-advanced_market_trades.jsonl"),
        ]
        .iter()
        .flat_map(|f| f.lines())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["sequence_num"].as_u64().unwrap(), l.to_owned())
        })
        .collect();
        lines.sort_by_key(|(n, _)| *n);
        lines.into_iter().map(|(_, l)| l).collect()
    }

    /// The corpus left out the two initial snapshots (numbers 13 and 21, too big); the test
    /// writes them back, empty: the rebuilt book then holds the levels the updates set, a part
    /// of the real book (which is never crossed), and Advanced Trade's removals of levels the
    /// book lacks are no break.
    fn advanced_with_snapshots() -> Vec<String> {
        let frames = advanced_frames();
        let mut out: Vec<(u64, String)> = [(13u64, "BTC-USD"), (21, "ETH-USD")]
            .iter()
            .map(|&(n, product)| {
                let snapshot = json!({
                    "channel": "l2_data", "timestamp": "2026-08-09T21:05:48Z",
                    "sequence_num": n,
                    "events": [{"type": "snapshot", "product_id": product, "updates": []}]
                });
                (n, snapshot.to_string())
            })
            .collect();
        let mut lines = Vec::new();
        for l in frames {
            let n = serde_json::from_str::<Value>(&l).unwrap()["sequence_num"]
                .as_u64()
                .unwrap();
            if let Some(i) = out.iter().position(|(s, _)| *s < n) {
                lines.push(out.remove(i).1);
            }
            lines.push(l);
        }
        lines
    }

    fn is_update(l: &str, product: &str) -> bool {
        l.starts_with("{\"channel\":\"l2_data\"")
            && l.contains("\"type\":\"update\"")
            && l.contains(&format!("\"product_id\":\"{product}\""))
    }

    #[test]
    fn the_real_advanced_trade_frames_rebuild_with_no_break() {
        let lines = advanced_with_snapshots();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 2, "{reports:#?}");
        for r in &reports {
            let updates = lines.iter().filter(|l| is_update(l, &r.id.symbol)).count() as u64;
            assert!(updates > 100, "{updates}");
            assert_eq!(
                (r.snapshots, r.updates, r.unproven_updates),
                (1, updates, 0)
            );
            assert_eq!(r.spans.len(), 1);
            assert_eq!(r.spans[0].end, SpanEnd::End);
            assert_eq!(r.spans[0].updates, updates);
            assert!(r.proven());
        }
    }

    #[test]
    fn a_bid_changed_into_an_offer_crosses_the_book_at_that_line() {
        let mut lines = advanced_with_snapshots();
        // A late update (the book has many levels by then) whose first level is a bid.
        let i = 400
            + lines[400..]
                .iter()
                .position(|l| {
                    is_update(l, "BTC-USD")
                        && l.contains("\"updates\":[{\"side\":\"bid\"")
                        && !l.contains("\"new_quantity\":\"0\"")
                })
                .unwrap();
        lines[i] = lines[i].replacen("\"side\":\"bid\"", "\"side\":\"offer\"", 1);
        assert_eq!(only_break(&lines), (BreakKind::Crossed, i as u64 + 1));
    }

    #[test]
    fn a_deleted_message_of_any_channel_breaks_every_book_at_the_next() {
        let lines = advanced_with_snapshots();
        let after_both = lines.iter().position(|l| is_update(l, "ETH-USD")).unwrap() + 10;
        for pick in [
            |l: &String| l.starts_with("{\"channel\":\"ticker\""),
            |l: &String| is_update(l, "BTC-USD"),
        ] {
            let mut lines = lines.clone();
            let i = after_both + lines[after_both..].iter().position(pick).unwrap();
            lines.remove(i);
            let (breaks, reports) = run(&lines);
            assert_eq!(breaks.len(), 2, "{breaks:#?}");
            for b in &breaks {
                assert_eq!(b.kind, BreakKind::SequenceGap);
                assert_eq!(b.at.line, i as u64 + 1);
            }
            assert!(reports.iter().all(|r| r.spans[0].end == SpanEnd::Break));
        }
    }

    #[test]
    fn two_swapped_messages_break_the_books() {
        let mut lines = advanced_with_snapshots();
        let i = lines.iter().position(|l| is_update(l, "ETH-USD")).unwrap() + 20;
        lines.swap(i, i + 1);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 2, "{breaks:#?}");
        assert!(breaks.iter().all(|b| b.at.line == i as u64 + 1));
    }

    #[test]
    fn a_reconnect_ends_the_spans_and_new_snapshots_start_new_ones() {
        let lines = advanced_with_snapshots();
        let first = &lines[..200];
        let mut feed: Vec<Line> = first.iter().map(|l| Line::Msg(1, l.clone())).collect();
        feed.push(Line::End(1));
        // The new connection counts from its own first message again.
        feed.extend(first.iter().map(|l| Line::Msg(2, l.clone())));
        let (breaks, reports) = run_lines(&feed);
        assert_eq!(breaks, []);
        for r in &reports {
            assert_eq!(r.spans.len(), 2, "{r:#?}");
            assert_eq!(
                (r.spans[0].end, r.spans[0].conn),
                (SpanEnd::ConnectionEnded, 1)
            );
            assert_eq!((r.spans[1].end, r.spans[1].conn), (SpanEnd::End, 2));
            assert!(r.spans[1].from.line > 201);
            assert!(r.proven());
        }
    }

    #[test]
    fn claims_every_advanced_trade_message_and_reads_only_books() {
        let c = Coinbase::default();
        for l in advanced_frames() {
            assert!(c.claims(l.as_bytes()), "{l}");
        }
        let hb = r#"{"channel":"heartbeats","client_id":"","timestamp":"2026-08-09T21:05:48Z","sequence_num":7,"events":[{"current_time":"x","heartbeat_counter":3}]}"#;
        assert!(c.claims(hb.as_bytes()));
        assert_eq!(
            number_near(hb.as_bytes(), SEQ_WITHIN, b"\"sequence_num\":"),
            Some(7)
        );
        assert_eq!(read_each(&[hb]).1, [false]);
    }

    const EXCHANGE: &str =
        include_str!("../../../tests/fixtures/corpus/coinbase-exchange_l2update.jsonl");

    /// In the corpus' Coinbase Exchange lines: a line `i` whose one change adds a level the
    /// book lacks, and the later line `j` (not the next) that removes it, with no change of
    /// that level between.
    fn exchange_pair(lines: &[String]) -> (usize, usize) {
        let mut book: HashSet<String> = HashSet::new();
        let mut added: HashMap<String, usize> = HashMap::new();
        for (n, l) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(l).unwrap();
            let product = v["product_id"].as_str().unwrap();
            if v["type"] == "snapshot" {
                for (side, levels) in [("buy", &v["bids"]), ("sell", &v["asks"])] {
                    for lv in levels.as_array().unwrap() {
                        book.insert(format!("{product} {side} {}", lv[0].as_str().unwrap()));
                    }
                }
                continue;
            }
            let changes = v["changes"].as_array().unwrap();
            for c in changes {
                let key = format!(
                    "{product} {} {}",
                    c[0].as_str().unwrap(),
                    c[1].as_str().unwrap()
                );
                let zero = crate::book::level::is_zero(c[2].as_str().unwrap());
                let was = added.remove(&key);
                if zero {
                    book.remove(&key);
                    if let Some(i) = was.filter(|&i| n > i + 1) {
                        return (i, n);
                    }
                } else if book.insert(key.clone()) && changes.len() == 1 {
                    added.insert(key, n);
                }
            }
        }
        panic!("no level added then removed");
    }

    fn exchange_lines() -> Vec<String> {
        EXCHANGE.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_real_coinbase_exchange_frames_rebuild_with_no_break() {
        let lines = exchange_lines();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 10, "{reports:#?}");
        let updates = lines.iter().filter(|l| l.contains("l2update")).count() as u64;
        assert_eq!(reports.iter().map(|r| r.updates).sum::<u64>(), updates);
        assert!(reports.iter().all(|r| r.proven() && r.snapshots == 1));
    }

    #[test]
    fn coinbase_exchange_mutations_break() {
        let lines = exchange_lines();
        let (i, j) = exchange_pair(&lines);
        // The level's size set to zero where it is added: a removal of a missing level.
        let mut changed = lines.clone();
        let v: Value = serde_json::from_str(&lines[i]).unwrap();
        let size = v["changes"][0][2].as_str().unwrap();
        changed[i] = lines[i].replacen(&format!("\"{size}\"]"), "\"0\"]", 1);
        assert_eq!(
            only_break(&changed),
            (BreakKind::MissingLevel, i as u64 + 1)
        );
        // The update that adds it deleted: its removal breaks.
        let mut deleted = lines.clone();
        deleted.remove(i);
        assert_eq!(only_break(&deleted), (BreakKind::MissingLevel, j as u64));
        // The two swapped: the removal comes first.
        let mut swapped = lines.clone();
        swapped.swap(i, j);
        let (breaks, _) = run(&swapped);
        assert_eq!(breaks[0].kind, BreakKind::MissingLevel);
        assert_eq!(breaks[0].at.line, i as u64 + 1);
    }

    #[test]
    fn a_coinbase_exchange_reconnect_makes_two_spans() {
        let lines = exchange_lines();
        let mut feed: Vec<Line> = lines[..300]
            .iter()
            .map(|l| Line::Msg(1, l.clone()))
            .collect();
        feed.push(Line::End(1));
        feed.extend(lines[..300].iter().map(|l| Line::Msg(2, l.clone())));
        let (breaks, reports) = run_lines(&feed);
        assert_eq!(breaks, []);
        for r in &reports {
            assert_eq!(r.spans.len(), 2, "{r:#?}");
            assert_eq!(r.spans[0].end, SpanEnd::ConnectionEnded);
            assert_eq!(r.spans[1].conn, 2);
        }
    }
}
