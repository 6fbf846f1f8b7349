//! OKX v5 order books (<https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel>).
//!
//! `books`, `books-l2-tbt`, `books50-l2-tbt`: an `action":"snapshot"` message, then `update`s
//! whose `prevSeqId` is the previous message's `seqId` (an update with `seqId` equal to
//! `prevSeqId` changes nothing); a level of size `"0"` is removed. Every message carries
//! `checksum`: the CRC32 (as a signed 32-bit integer) of the top 25 levels interleaved,
//! `bid1price:bid1size:ask1price:ask1size:…`, the deeper side's remaining levels following
//! alone, all as the venue's own text. `books5` and `bbo-tbt` send the whole top of the book in
//! every message, without an action.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Rules, Venue, starts_near};
use crate::book::level::{Book, NumberError, Side};
use crate::book::track::{BreakKind, Key, Link, Msg, Tracker};

/// Levels in OKX's checksum, per side.
pub(super) const CHECKSUM_LEVELS: usize = 25;

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    arg: Arg<'a>,
    action: Option<&'a str>,
    #[serde(borrow)]
    data: Vec<Data<'a>>,
}

#[derive(Deserialize)]
struct Arg<'a> {
    channel: &'a str,
    #[serde(rename = "instId")]
    inst_id: Option<&'a str>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    asks: Vec<Quote<'a>>,
    #[serde(borrow, default)]
    bids: Vec<Quote<'a>>,
    checksum: Option<i64>,
    #[serde(rename = "seqId")]
    seq_id: Option<i64>,
    #[serde(rename = "prevSeqId")]
    prev_seq_id: Option<i64>,
}

/// One level: `[price, size, "0" (deprecated), orders]`, all strings.
#[derive(Deserialize)]
struct Quote<'a>(&'a str, &'a str, IgnoredAny, IgnoredAny);

/// OKX's rules; `buf` holds the text a checksum is computed over.
#[derive(Debug, Default)]
pub(super) struct Okx {
    buf: Vec<u8>,
}

impl Rules for Okx {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"arg\":{\"channel\":\"b") && starts_near(msg, 48, b"\"channel\":\"b")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        let channel = top.arg.channel;
        let full = matches!(channel, "books5" | "bbo-tbt");
        if !full && !channel.starts_with("books") {
            return false;
        }
        let Some(symbol) = top.arg.inst_id else {
            return false;
        };
        let k = Key {
            venue: Venue::Okx,
            channel,
            symbol,
        };
        for d in &top.data {
            let snapshot = full || top.action == Some("snapshot");
            let seq = d.seq_id.and_then(|s| u64::try_from(s).ok());
            let book = if snapshot {
                Some(t.snapshot(m, &k, seq))
            } else {
                let link = match (d.prev_seq_id.and_then(|p| u64::try_from(p).ok()), seq) {
                    (Some(prev), Some(last)) => Link::Prev { prev, last },
                    _ => Link::None,
                };
                t.update(m, &k, link)
            };
            let Some(book) = book else { continue };
            if let Err(e) = apply(book, &d.bids, &d.asks) {
                t.broke(m, &k, BreakKind::BadMessage, e.to_string());
                continue;
            }
            t.settle(m, &k);
            if let (Some(expected), false) = (d.checksum, full)
                && let Some(book) = t.proven(m, &k)
            {
                let got = checksum(book, &mut self.buf);
                t.checksum(m, &k, i64::from(got) == expected, || {
                    format!("`checksum` {expected}, the rebuilt book's {got}")
                });
            }
        }
        true
    }
}

/// Applies OKX levels.
fn apply(book: &mut Book, bids: &[Quote<'_>], asks: &[Quote<'_>]) -> Result<(), NumberError> {
    for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
        for l in levels {
            book.set(side, l.0, l.1)?;
        }
    }
    Ok(())
}

/// The text OKX's checksum covers: the top 25 levels of each side interleaved,
/// `bid:size:ask:size:…`, the deeper side's remaining levels following alone.
pub(crate) fn checksum_text(book: &Book, levels: usize, buf: &mut Vec<u8>) {
    buf.clear();
    let mut bids = book.bids().take(levels);
    let mut asks = book.asks().take(levels);
    let put = |buf: &mut Vec<u8>, l: &crate::book::Level| {
        if !buf.is_empty() {
            buf.push(b':');
        }
        buf.extend_from_slice(l.price.as_str().as_bytes());
        buf.push(b':');
        buf.extend_from_slice(l.size.as_str().as_bytes());
    };
    loop {
        let (b, a) = (bids.next(), asks.next());
        if b.is_none() && a.is_none() {
            break;
        }
        if let Some(l) = b {
            put(buf, l);
        }
        if let Some(l) = a {
            put(buf, l);
        }
    }
}

/// OKX's checksum of `book` (signed, as OKX sends it); `buf` is scratch space.
pub(crate) fn checksum(book: &Book, buf: &mut Vec<u8>) -> i32 {
    checksum_text(book, CHECKSUM_LEVELS, buf);
    crc32fast::hash(buf) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::{Line, run, run_lines};

    const CORPUS: &str = include_str!("../../../tests/fixtures/corpus/okx_books.jsonl");

    #[test]
    fn every_checksum_of_the_real_okx_frames_verifies() {
        let lines: Vec<String> = CORPUS.lines().map(str::to_owned).collect();
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        let checked: u64 = reports.iter().map(|r| r.checksums_checked).sum();
        let books: u64 = lines.iter().filter(|l| l.contains("\"checksum\"")).count() as u64;
        assert_eq!(checked, books, "{reports:#?}");
        assert!(reports.iter().all(|r| r.proven()), "{reports:#?}");
        // Every level of every frame was applied once.
        let levels: usize = lines.iter().map(|l| l.matches("\",\"0\",\"").count()).sum();
        let applied: u64 = reports.iter().map(|r| r.level_changes).sum();
        assert_eq!(applied, levels as u64);
    }

    #[test]
    fn a_changed_size_breaks_the_checksum_at_that_line() {
        let mut lines: Vec<String> = CORPUS.lines().map(str::to_owned).collect();
        let i = lines
            .iter()
            .position(|l| l.contains("\"action\":\"update\"") && l.contains("BTC-USDT\""))
            .unwrap();
        // The first size of the update's first level, one more digit.
        let at = lines[i]
            .find("\"bids\":[[\"")
            .or(lines[i].find("\"asks\":[[\""))
            .unwrap();
        let size_at = lines[i][at + 10..].find("\",\"").unwrap() + at + 13;
        lines[i].insert(size_at, '9');
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
        assert_eq!(breaks[0].at.line, i as u64 + 1);
    }

    #[test]
    fn a_deleted_update_breaks_the_book_at_the_next() {
        let mut lines: Vec<String> = CORPUS.lines().map(str::to_owned).collect();
        let updates: Vec<usize> = (0..lines.len())
            .filter(|&i| {
                lines[i].contains("\"action\":\"update\"") && lines[i].contains("BTC-USDT\"")
            })
            .collect();
        lines.remove(updates[3]);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        // These frames (2022) predate `seqId`: the checksum finds it.
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
        let next = updates[4] - 1;
        assert_eq!(breaks[0].at.line, next as u64 + 1);
    }

    #[test]
    fn two_swapped_updates_break_the_book() {
        let mut lines: Vec<String> = CORPUS.lines().map(str::to_owned).collect();
        let updates: Vec<usize> = (0..lines.len())
            .filter(|&i| {
                lines[i].contains("\"action\":\"update\"") && lines[i].contains("BTC-USDT\"")
            })
            .collect();
        lines.swap(updates[5], updates[6]);
        let (breaks, _) = run(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].at.line, updates[5] as u64 + 1);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let corpus: Vec<&str> = CORPUS.lines().collect();
        let btc: Vec<&str> = corpus
            .iter()
            .copied()
            .filter(|l| l.contains("\"BTC-USDT\""))
            .collect();
        let mut lines: Vec<Line> = btc[..20]
            .iter()
            .map(|l| Line::Msg(1, l.to_string()))
            .collect();
        lines.push(Line::End(1));
        // An update on the new connection before its snapshot would break; the snapshot first.
        lines.extend(btc[..10].iter().map(|l| Line::Msg(2, l.to_string())));
        lines.push(Line::Rest(
            2,
            "BTC-USDT".into(),
            "http://x/unknown".into(),
            "{}".into(),
        ));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 1);
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2, "{spans:#?}");
        assert_eq!(
            (spans[0].end, spans[0].conn, spans[0].to.line),
            (SpanEnd::ConnectionEnded, 1, 20)
        );
        assert_eq!(
            (spans[1].end, spans[1].conn, spans[1].from.line),
            (SpanEnd::End, 2, 22)
        );
        assert_eq!(reports[0].updates, 19 + 9);
        assert!(reports[0].proven());
    }
}
