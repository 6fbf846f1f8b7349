//! Bitfinex v2 `book` (<https://docs.bitfinex.com/reference/ws-public-books>, the checksum
//! <https://docs.bitfinex.com/docs/ws-websocket-checksum>, the flags
//! <https://docs.bitfinex.com/docs/ws-general#configuration>; bitfinex-api-node
//! `lib/transports/ws2.js` (`_handleOBMessage`, `_validateMessageSeq`) with
//! `lib/models/order_book.js` (`checksum`, `updateWith`); cryptofeed
//! `cryptofeed/exchanges/bitfinex.py`, `Bitfinex._book` and `_check_checksum`).
//!
//! A connection's `{"event":"subscribed","channel":"book","chanId":N,"symbol":…,"prec":…,
//! "len":…}` names the channel; its first message `[N, [[price, count, amount], …], SEQ]` is
//! the snapshot, then `[N, [price, count, amount], SEQ]` per level: `amount` > 0 a bid, < 0 an
//! ask (the level keeps the signed amount as its size), `count` 0 removes the level (from the
//! bids for `amount` 1, the asks for -1). The book is kept to `len` levels a side. `[N, "cs",
//! CHECKSUM, SEQ]` (the `OB_CHECKSUM` flag wsrec sets) carries the CRC32, as a signed 32-bit
//! integer, of the top 25 bids and asks interleaved,
//! `bidPrice:bidAmount:askPrice:askAmount:…` (the deeper side's remaining levels alone), ask
//! amounts negative: OKX's interleaving. Numbers are JSON numbers, and bitfinex-api-node joins
//! them as JavaScript prints the parsed numbers (`Array.join` of `Number`s; the price first
//! rounded to 5 significant digits by `preparePrice`, which Bitfinex's prices already are), so
//! each level's literal text is written here as JavaScript's `Number.prototype.toString` would
//! (`0.50000000` → `0.5`, `0.0000001` → `1e-7`); a literal of more than 17 significant digits
//! is not a JavaScript number's and is taken digit for digit.
//!
//! With `SEQ_ALL` (which wsrec also sets) every channel message of a connection ends with one
//! counter over all its channels (heartbeats, checksums and trades included): a number that is
//! not the previous + 1 means a message of the connection is missing or out of order, and every
//! book of the connection breaks there (the missing message may have been any of theirs; wsrec
//! writes every message it receives, so in its recordings the counter has no holes of its
//! own). Without `SEQ_ALL` the `cs` checksums alone prove the books.
//! `src/tools/venue_seq` checks the same counter for `verify`. Raw books (`R0`, levels by order
//! id) and funding books (`fUSD`, levels `[rate, period, count, amount]`) are not followed.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::bitget::compare;
use super::kraken_v1::Head;
use super::okx::CHECKSUM_LEVELS;
use super::{Rules, Venue};
use crate::book::level::{Book, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

/// Book depth when the `subscribed` event gives none (Bitfinex's default).
const DEFAULT_LEN: usize = 25;

#[derive(Deserialize)]
struct Event<'a> {
    event: &'a str,
    channel: Option<&'a str>,
    #[serde(rename = "chanId")]
    chan_id: Option<u64>,
    symbol: Option<&'a str>,
    prec: Option<&'a str>,
    #[serde(borrow)]
    len: Option<&'a RawValue>,
}

/// A book channel of a connection.
#[derive(Debug)]
struct Chan {
    /// `book/` and the precision (`book/P0`).
    channel: String,
    symbol: String,
    len: usize,
}

/// What one connection has said.
#[derive(Debug, Default)]
struct Conn {
    books: HashMap<u64, Chan>,
    /// The last `SEQ_ALL` number.
    seq: Option<u64>,
}

/// Bitfinex's rules: each connection's book channels and sequence number.
#[derive(Debug, Default)]
pub(super) struct Bitfinex {
    /// By `stream\0conn`.
    conns: HashMap<String, Conn>,
    key: String,
}

impl Rules for Bitfinex {
    fn claims(&self, msg: &[u8]) -> bool {
        (msg.first() == Some(&b'[')
            && msg.get(1).is_some_and(u8::is_ascii_digit)
            && !msg.ends_with(b"\"]"))
            || msg.starts_with(b"{\"event\":\"subscribed\",\"channel\":\"book\"")
            || msg.starts_with(b"{\"event\":\"unsubscribed\"")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        self.key.clear();
        let _ = write!(self.key, "{}\u{0}{}", m.stream, m.conn);
        if msg.starts_with('{') {
            self.event(msg);
            return false;
        }
        let Ok(items) = serde_json::from_str::<Head<'_, 4>>(msg) else {
            return false;
        };
        let [Some(id), Some(payload), third, fourth] = items.0 else {
            return false;
        };
        let Ok(id) = id.get().parse::<u64>() else {
            return false;
        };
        let checksum_msg = payload.get() == "\"cs\"";
        // `SEQ_ALL`: the number that ends the message (after the checksum in a `cs` message).
        let seq = if checksum_msg {
            fourth
        } else {
            fourth.or(third)
        }
        .and_then(|v| v.get().parse::<u64>().ok());
        let Some(conn) = self.conns.get_mut(self.key.as_str()) else {
            return false;
        };
        if let Some(seq) = seq {
            let last = conn.seq.replace(seq);
            if let Some(last) = last
                && seq != last.wrapping_add(1)
            {
                for chan in conn.books.values() {
                    let k = key(chan);
                    t.broke(
                        m,
                        &k,
                        BreakKind::SequenceGap,
                        format!(
                            "the connection's SEQ_ALL number {seq} after {last}: a message is missing or out of order"
                        ),
                    );
                }
            }
        }
        let Some(chan) = conn.books.get(&id) else {
            return false;
        };
        let k = key(chan);
        if checksum_msg {
            let Some(expected) = third.and_then(|v| v.get().parse::<i64>().ok()) else {
                t.broke(
                    m,
                    &k,
                    BreakKind::BadMessage,
                    "a `cs` message without its checksum".to_owned(),
                );
                return true;
            };
            compare(t, m, &k, expected, "cs", checksum);
            return true;
        }
        let body = payload.get();
        if !body.starts_with('[') {
            // A heartbeat.
            return true;
        }
        let snapshot = body[1..].trim_start().starts_with(['[', ']']);
        let result = if snapshot {
            let Ok(levels) = serde_json::from_str::<Vec<Head<'_, 3>>>(body) else {
                t.broke(
                    m,
                    &k,
                    BreakKind::BadMessage,
                    "an unreadable snapshot".to_owned(),
                );
                return true;
            };
            let book = t.snapshot(m, &k, seq);
            levels.iter().try_for_each(|l| apply(book, l))
        } else {
            let Ok(level) = serde_json::from_str::<Head<'_, 3>>(body) else {
                t.broke(
                    m,
                    &k,
                    BreakKind::BadMessage,
                    "an unreadable update".to_owned(),
                );
                return true;
            };
            let link = seq.map_or(Link::None, Link::Increasing);
            let Some(book) = t.update(m, &k, link) else {
                return true;
            };
            apply(book, &level)
        };
        match result {
            Ok(()) => {
                if let Some(book) = t.proven(m, &k) {
                    book.truncate(chan.len);
                }
                t.settle(m, &k);
            }
            Err(why) => t.broke(m, &k, BreakKind::BadMessage, why),
        }
        true
    }

    fn conn_ended(&mut self, _t: &mut Tracker, stream: &str, conn: Option<u64>) {
        match conn {
            Some(c) => {
                self.conns.remove(&format!("{stream}\u{0}{c}"));
            }
            None => {
                let prefix = format!("{stream}\u{0}");
                self.conns.retain(|k, _| !k.starts_with(&prefix));
            }
        }
    }
}

impl Bitfinex {
    /// A `subscribed` or `unsubscribed` event on the connection under `self.key`.
    fn event(&mut self, msg: &str) {
        let Ok(e) = serde_json::from_str::<Event<'_>>(msg) else {
            return;
        };
        let Some(id) = e.chan_id else { return };
        let conn = self.conns.entry(self.key.clone()).or_default();
        match (e.event, e.channel, e.symbol, e.prec) {
            // Trading pairs only: funding books (`f…`) have four-number levels.
            ("subscribed", Some("book"), Some(symbol), Some(prec))
                if !prec.starts_with('R') && symbol.starts_with('t') =>
            {
                // `len` comes as a string ("25"); a number is read too.
                let len = e
                    .len
                    .and_then(|v| v.get().trim_matches('"').parse().ok())
                    .unwrap_or(DEFAULT_LEN);
                conn.books.insert(
                    id,
                    Chan {
                        channel: format!("book/{prec}"),
                        symbol: symbol.to_owned(),
                        len,
                    },
                );
            }
            ("unsubscribed", ..) => {
                conn.books.remove(&id);
            }
            _ => {}
        }
    }
}

/// The tracker's key of a channel.
fn key(chan: &Chan) -> Key<'_> {
    Key {
        venue: Venue::Bitfinex,
        channel: &chan.channel,
        symbol: &chan.symbol,
    }
}

/// Applies one `[price, count, amount]` level.
fn apply(book: &mut Book, l: &Head<'_, 3>) -> Result<(), String> {
    let (Some(price), Some(count), Some(amount)) = (l.text(0), l.text(1), l.text(2)) else {
        return Err(format!("a level without price, count and amount: {l:?}"));
    };
    let side = if amount.starts_with('-') {
        Side::Ask
    } else {
        Side::Bid
    };
    if count == "0" {
        book.remove(side, price).map_err(|e| e.to_string())?;
    } else {
        book.set(side, price, amount).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Bitfinex's checksum of `book`: the top 25 levels interleaved, bid then ask,
/// `price:amount` in JavaScript's number text, joined with ':'; CRC32 as a signed integer.
fn checksum(book: &Book) -> i32 {
    let mut h = crc32fast::Hasher::new();
    let mut bids = book.bids().take(CHECKSUM_LEVELS);
    let mut asks = book.asks().take(CHECKSUM_LEVELS);
    let mut first = true;
    let mut buf = [0u8; 64];
    loop {
        let (b, a) = (bids.next(), asks.next());
        if b.is_none() && a.is_none() {
            break;
        }
        for l in [b, a].into_iter().flatten() {
            for text in [l.price.as_str(), l.size.as_str()] {
                if !first {
                    h.update(b":");
                }
                first = false;
                h.update(js_number(text, &mut buf));
            }
        }
    }
    h.finalize() as i32
}

/// Decimal `text` as JavaScript's `Number.prototype.toString` prints the number it parses to
/// (ECMA-262 `Number::toString`: the shortest digits, a point within 21 integer digits, `e`
/// notation below 10⁻⁶), written into `buf`. The text's own digits are taken as the shortest.
fn js_number<'b>(text: &str, buf: &'b mut [u8; 64]) -> &'b [u8] {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    // The digits without leading and trailing zeros, and `n`: the value is 0.DIGITS × 10ⁿ.
    let mut digits = [0u8; 40];
    let mut k = 0;
    let mut n = exponent;
    let mut point = false;
    for &c in mantissa.as_bytes() {
        match c {
            b'.' => point = true,
            b'0'..=b'9' => {
                if k == 0 && c == b'0' {
                    if point {
                        n -= 1;
                    }
                    continue;
                }
                if !point {
                    n += 1;
                }
                if k < digits.len() {
                    digits[k] = c;
                    k += 1;
                }
            }
            _ => {}
        }
    }
    while k > 0 && digits[k - 1] == b'0' {
        k -= 1;
    }
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let end = (len + bytes.len()).min(buf.len());
        buf[len..end].copy_from_slice(&bytes[..end - len]);
        len = end;
    };
    if k == 0 {
        put(b"0");
        return &buf[..len];
    }
    if negative {
        put(b"-");
    }
    let d = &digits[..k];
    let k = k as i64;
    if k <= n && n <= 21 {
        put(d);
        for _ in k..n {
            put(b"0");
        }
    } else if 0 < n && n <= 21 {
        put(&d[..n as usize]);
        put(b".");
        put(&d[n as usize..]);
    } else if -6 < n && n <= 0 {
        put(b"0.");
        for _ in n..0 {
            put(b"0");
        }
        put(d);
    } else {
        put(&d[..1]);
        if k > 1 {
            put(b".");
            put(&d[1..]);
        }
        let e = n - 1;
        put(if e < 0 { b"e-" } else { b"e+" });
        let mut num = [0u8; 20];
        let mut i = num.len();
        let mut v = e.unsigned_abs();
        loop {
            i -= 1;
            num[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        put(&num[i..]);
    }
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::testing::run;
    use crate::book::venues::kraken_v1::testing::{
        TestBook, assert_one_break, assert_reconnect as reconnect, crc32,
    };

    /// A connection: `subscribed` for a trades and a book channel, a 25-level snapshot, then
    /// `n` rounds of an update (insert, change or removal), a `cs` message and now and then a
    /// trade or heartbeat, every channel message numbered by `SEQ_ALL`.
    fn session(n: usize) -> Vec<String> {
        let mut seq = 0u64;
        let mut next = || {
            seq += 1;
            seq
        };
        let mut out = vec![
            r#"{"event":"info","version":2,"serverId":"x","platform":{"status":1}}"#.to_owned(),
            r#"{"event":"conf","status":"OK","flags":196608}"#.to_owned(),
            r#"{"event":"subscribed","channel":"trades","chanId":5,"symbol":"tBTCUSD","pair":"BTCUSD"}"#.to_owned(),
            r#"{"event":"subscribed","channel":"book","chanId":17,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#.to_owned(),
        ];
        let mut model = TestBook::new(25);
        let mut levels = Vec::new();
        for i in 0..25 {
            let (bp, ap) = (format!("{}", 97000 - i * 3), format!("{}", 97001 + i * 2));
            let (ba, aa) = (
                format!("{}", 0.25 + i as f64 * 0.5),
                format!("-{}", 1.5 + i as f64 * 0.125),
            );
            model.set(false, &bp, &ba);
            model.set(true, &ap, &aa);
            levels.push(format!("[{bp},2,{ba}]"));
            levels.push(format!("[{ap},1,{aa}]"));
        }
        out.push(format!("[17,[{}],{}]", levels.join(","), next()));
        for i in 0..n {
            let ask = i % 2 == 1;
            let (price, count, amount) = match i % 3 {
                0 => {
                    let best = if ask {
                        model.asks[0].0 + 0.5
                    } else {
                        model.bids[0].0 - 0.5
                    };
                    let a = 0.01 * (i + 1) as f64;
                    (
                        format!("{best}"),
                        3,
                        if ask { format!("-{a}") } else { format!("{a}") },
                    )
                }
                1 => {
                    let l = if ask { &model.asks[2] } else { &model.bids[2] };
                    let a = 7.5 + i as f64;
                    (
                        l.1.clone(),
                        4,
                        if ask { format!("-{a}") } else { format!("{a}") },
                    )
                }
                _ => {
                    let l = if ask { &model.asks[1] } else { &model.bids[1] };
                    (
                        l.1.clone(),
                        0,
                        if ask { "-1".to_owned() } else { "1".to_owned() },
                    )
                }
            };
            model.set(ask, &price, if count == 0 { "0" } else { &amount });
            out.push(format!("[17,[{price},{count},{amount}],{}]", next()));
            out.push(format!("[17,\"cs\",{},{}]", model.interleaved(), next()));
            if i % 4 == 0 {
                out.push(format!(
                    "[5,\"te\",[{},1733425200000,0.01,97000],{}]",
                    1000 + i,
                    next()
                ));
            }
            if i % 7 == 0 {
                out.push(format!("[17,\"hb\",{}]", next()));
            }
        }
        out
    }

    fn report_lines(lines: &[String], text: &str) -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| lines[i].starts_with(text))
            .collect()
    }

    #[test]
    fn numbers_are_written_as_javascript_prints_them() {
        // Expected texts: what node prints for `String(Number(literal))`.
        let cases = [
            ("97000", "97000"),
            ("97000.0", "97000"),
            ("0.50000000", "0.5"),
            ("-1.25000000", "-1.25"),
            ("-0.0001", "-0.0001"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("0.00000012", "1.2e-7"),
            ("1.5e-8", "1.5e-8"),
            ("2E+3", "2000"),
            ("1e21", "1e+21"),
            ("12000000000000000000000", "1.2e+22"),
            ("0", "0"),
            ("-0.0", "0"),
            // 21 digits: more than a double holds (node prints 123456789012345680000); taken
            // digit for digit.
            ("123456789012345678901", "123456789012345678901"),
        ];
        let mut buf = [0u8; 64];
        for (literal, js) in cases {
            let got = std::str::from_utf8(js_number(literal, &mut buf))
                .unwrap()
                .to_owned();
            if literal == "123456789012345678901" {
                // 21 digits: more than a double holds; taken digit for digit.
                assert_eq!(got, "123456789012345678901");
                continue;
            }
            assert_eq!(got, js, "{literal}");
        }
    }

    #[test]
    fn amounts_with_trailing_zeros_check_as_javascript_numbers() {
        // One level a side, written with zeros JavaScript drops and a price it writes in e
        // notation.
        let lines = [
            r#"{"event":"subscribed","channel":"book","chanId":3,"symbol":"tXYZUSD","prec":"P0","freq":"F0","len":"25","pair":"XYZUSD"}"#.to_owned(),
            "[3,[[0.0000001,1,12.50000000],[0.00000012,2,-3.0]],1]".to_owned(),
            format!(
                "[3,\"cs\",{},2]",
                crc32(b"1e-7:12.5:1.2e-7:-3") as i32
            ),
        ];
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports[0].checksums_checked, 1);
    }

    #[test]
    fn a_whole_session_is_proven_checksum_by_checksum() {
        let lines = session(40);
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!((&*r.id.channel, &*r.id.symbol), ("book/P0", "tBTCUSD"));
        assert_eq!((r.snapshots, r.updates, r.checksums_checked), (1, 40, 40));
        assert_eq!((r.spans.len(), r.spans[0].from.line), (1, 5));
        assert!(r.proven());
    }

    #[test]
    fn a_changed_amount_breaks_at_the_next_checksum() {
        let mut lines = session(30);
        let updates = report_lines(&lines, "[17,[");
        // Update 10 (after the snapshot) changes a level's amount (i % 3 == 1): one more
        // digit.
        let i = updates[11];
        lines[i] = lines[i].replacen(",4,", ",4,9", 1);
        assert_one_break(&lines, BreakKind::ChecksumMismatch, i as u64 + 2);
    }

    #[test]
    fn a_deleted_update_breaks_the_book_at_the_next_message() {
        let mut lines = session(30);
        let i = report_lines(&lines, "[17,[")[8];
        lines.remove(i);
        assert_one_break(&lines, BreakKind::SequenceGap, i as u64 + 1);
    }

    #[test]
    fn two_swapped_updates_break_the_book() {
        let mut lines = session(30);
        let updates = report_lines(&lines, "[17,[");
        let i = updates[6];
        lines.swap(i, updates[7]);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].at.line, i as u64 + 1);
    }

    #[test]
    fn without_seq_all_the_checksums_still_prove_the_book() {
        // Strip the trailing numbers: `[17,[p,c,a]]`, `[17,"cs",c]`.
        let strip = |l: &str| -> String {
            if l.starts_with('[') {
                let cut = l.rfind(',').unwrap();
                format!("{}]", &l[..cut])
            } else {
                l.to_owned()
            }
        };
        let lines: Vec<String> = session(20).iter().map(|l| strip(l)).collect();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports[0].checksums_checked, 20);
        let mut changed = lines.clone();
        let i = report_lines(&changed, "[17,[")[5];
        changed.remove(i);
        let (breaks, _) = run(&changed);
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let s = session(10);
        // The new connection starts again: its numbers from 1, the same channel ids.
        let updates = report_lines(&s, "[17,[");
        let again = report_lines(&s[..12], "[17,[").len() as u64 - 1;
        let to = *updates.last().unwrap() as u64 + 1;
        let from = s.len() as u64 + 2 + 4;
        reconnect(&s, &s[..12], to, from, 10 + again);
    }

    #[test]
    fn raw_and_funding_books_are_not_followed() {
        for (prec, symbol) in [("R0", "tBTCUSD"), ("P0", "fUSD")] {
            let lines: Vec<String> = session(3)
                .iter()
                .map(|l| {
                    l.replace("\"prec\":\"P0\"", &format!("\"prec\":\"{prec}\""))
                        .replace(
                            "\"symbol\":\"tBTCUSD\",\"prec",
                            &format!("\"symbol\":\"{symbol}\",\"prec"),
                        )
                })
                .collect();
            assert!(
                lines[3].contains(prec) && lines[3].contains(symbol),
                "{}",
                lines[3]
            );
            let (breaks, reports) = run(&lines);
            assert_eq!((breaks.len(), reports.len()), (0, 0), "{prec} {symbol}");
        }
    }

    #[test]
    fn a_book_message_before_its_subscribed_event_is_not_taken() {
        let s = session(3);
        let (breaks, reports) = run(&s[4..]);
        assert_eq!((breaks.len(), reports.len()), (0, 0));
    }
}
