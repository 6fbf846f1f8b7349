//! Binance spot, USDⓈ-M and COIN-M books.
//!
//! Diff depth (`SYMBOL@depth`, `@depth@100ms`, …: `depthUpdate` events covering `U..=u`,
//! futures also `pu`, the previous event's `u`) starts from the REST snapshot line the recorder
//! wrote (`/api/v3/depth` spot, `/fapi/v1/depth` USDⓈ-M, `/dapi/v1/depth` COIN-M: a body
//! `{"lastUpdateId":N,"bids":[["p","q"],…],"asks":…}`), as Binance's "How to manage a local
//! order book correctly" says for each market:
//!
//! - spot (<https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams#how-to-manage-a-local-order-book-correctly>):
//!   events with `u <= lastUpdateId` are dropped; the first applied has
//!   `U <= lastUpdateId + 1 <= u`; each next one has `U` = the previous `u` + 1. (The page's
//!   step 5 says the first event left "should have lastUpdateId within its `[U;u]` range", one
//!   stricter when `U = lastUpdateId + 1`; its step 7 only rejects `U > lastUpdateId + 1`, and
//!   an event starting right after the snapshot continues it exactly: that one is accepted.
//!   The current page's wording was not re-read for this module: the rule is the one
//!   `src/net/venue/book.rs` cites, and cryptofeed's);
//! - USDⓈ-M (<https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly>)
//!   and COIN-M (<https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly>):
//!   events with `u < lastUpdateId` are dropped; the first applied has
//!   `U <= lastUpdateId <= u`; each next one has `pu` = the previous `u`.
//!
//! A size of zero removes a level; removing a level the book lacks "can happen and is normal"
//! (the futures pages), so it is no break. Events that arrive before the snapshot line, or while
//! the book is broken, are kept (the newest [`rest_started::HELD`](super::rest_started::HELD) per book) and read again when a
//! snapshot line comes: the recorder fetches one on each new connection, when one is stale,
//! and every `snapshot_interval`, so a broken book resumes at the next. A snapshot line for a
//! book already proven is compared with it when the book's last `u` equals its `lastUpdateId`
//! (see [`rest_started::compare`](super::rest_started::compare): every snapshot level the book has must have the snapshot's size,
//! every book level within the snapshot's price range must be in it); otherwise it is ignored
//! (the book and the snapshot are not at the same update, nothing exact can be said).
//!
//! Partial depth (`@depth5`, `@depth10`, `@depth20`, with or without a speed) is the whole top
//! of the book in every message: spot sends `{"lastUpdateId","bids","asks"}` (no symbol: the
//! combined stream's name gives it, a bare frame's book has the symbol `""`), futures send
//! `depthUpdate` events with `pu`, told from diff events only by the combined stream's name (a
//! bare futures partial-depth frame is read as a difference).
//!
//! The same rules as cryptofeed's `_check_update_id` (bmoscon/cryptofeed,
//! `cryptofeed/exchanges/binance.py`: spot skips `u <= id`, starts at `U <= id + 1 <= u`, then
//! wants `U == id + 1`; `cryptofeed/exchanges/binance_futures.py`: skips `u < id`, starts at
//! `U <= id <= u`, then wants `pu == id`).

use serde::Deserialize;

use super::rest_started::{Diff, Held, RestVenue, Rule};
use super::shared::{self, Depth};
use super::{Venue, starts_near};
use crate::book::track::{Key, Msg, Tracker};

/// The channel name of every diff-depth book (all speeds start alike from the REST snapshot).
const DIFF: &str = "depth";

/// The channel name of a spot partial-depth book read from bare frames (no stream name).
const BARE_PARTIAL: &str = "depthN";

/// A combined-stream frame.
#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    stream: &'a str,
    #[serde(borrow)]
    data: Depth<'a>,
}

/// Binance's rules: the diff books held for their REST snapshots.
#[derive(Debug, Default)]
pub(super) struct Binance;

impl RestVenue for Binance {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"e\":\"depthUpdate\"")
            || msg.starts_with(b"{\"lastUpdateId\":")
            || (msg.starts_with(b"{\"stream\":\"") && starts_near(msg, 64, b"@depth"))
    }

    fn message(&mut self, held: &mut Held, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let (stream, body) = if msg.starts_with("{\"stream\"") {
            match serde_json::from_str::<Wrapped<'_>>(msg) {
                Ok(w) => (Some(w.stream), w.data),
                Err(_) => return false,
            }
        } else {
            match serde_json::from_str::<Depth<'_>>(msg) {
                Ok(b) => (None, b),
                Err(_) => return false,
            }
        };
        // `btcusdt@depth20@100ms` → (`btcusdt`, `depth20`).
        let (topic_symbol, topic) = stream
            .and_then(|s| s.split_once('@'))
            .map_or(("", DIFF), |(sym, rest)| {
                (sym, rest.split('@').next().unwrap_or(rest))
            });
        if !topic.starts_with(DIFF) {
            return false;
        }
        let partial = topic != DIFF;
        if let Some(last) = body.last_update_id {
            // Spot partial depth.
            let k = Key {
                venue: Venue::Binance,
                channel: if stream.is_some() {
                    topic
                } else {
                    BARE_PARTIAL
                },
                symbol: topic_symbol,
            };
            shared::whole_book(t, m, &k, Some(last), &body.bids, &body.asks);
            return true;
        }
        let (Some("depthUpdate"), Some(symbol), Some(first), Some(last)) =
            (body.e, body.s, body.first, body.u)
        else {
            return false;
        };
        if partial {
            let k = Key {
                venue: Venue::Binance,
                channel: topic,
                symbol,
            };
            shared::whole_book(t, m, &k, Some(last), &body.b, &body.a);
            return true;
        }
        let k = Key {
            venue: Venue::Binance,
            channel: DIFF,
            symbol,
        };
        let d = Diff {
            first,
            last,
            prev: body.pu,
        };
        held.diff_levels(t, m, &k, d, msg, &body.b, &body.a);
        true
    }

    const VENUE: Venue = Venue::Binance;

    fn rest_book(&self, url: &str) -> Option<(&'static str, Rule)> {
        if url.contains("/api/v3/depth") && !url.contains("mexc") {
            Some((DIFF, Rule::NextAfter))
        } else if url.contains("/fapi/v1/depth") || url.contains("/dapi/v1/depth") {
            Some((DIFF, Rule::Covering))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::book::SpanEnd;
    use crate::book::testing::{Line, run_lines};
    use crate::book::track::BreakKind;

    const SPOT: &str =
        include_str!("../../../tests/fixtures/corpus/binance-spot_depthUpdate.jsonl");
    const USDM: &str =
        include_str!("../../../tests/fixtures/corpus/binance-usdm_depthUpdate.jsonl");
    const SPOT_URL: &str = "https://api.binance.com/api/v3/depth?symbol=";
    const USDM_URL: &str = "https://fapi.binance.com/fapi/v1/depth?symbol=";

    /// A number field of a frame (the test's own reading, not the module's).
    fn field(line: &str, name: &str) -> u64 {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["data"][name].as_u64().unwrap()
    }

    fn symbol(line: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["data"]["s"].as_str().unwrap().to_owned()
    }

    /// A REST line for `sym` current to `id`, with one far level a side (never crossed by the
    /// real frames).
    fn rest(conn: u64, url: &str, sym: &str, id: u64) -> Line {
        Line::Rest(
            conn,
            sym.to_owned(),
            format!("{url}{sym}&limit=1000"),
            format!(
                r#"{{"lastUpdateId":{id},"bids":[["0.00000001","1.00000000"]],"asks":[["99999.00000000","1.00000000"]]}}"#
            ),
        )
    }

    /// Every frame on connection 1, each symbol's REST line after its `hold`-th frame (held
    /// until then), current to a number its first frame starts from by `rule`.
    fn recording(corpus: &str, url: &str, rule: Rule, hold: usize) -> Vec<Line> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut firsts: HashMap<String, u64> = HashMap::new();
        let mut lines = Vec::new();
        for l in corpus.lines() {
            let s = symbol(l);
            let n = seen.entry(s.clone()).or_default();
            if *n == 0 {
                let id = match rule {
                    Rule::NextAfter => field(l, "U") - 1,
                    Rule::Covering => field(l, "U"),
                };
                firsts.insert(s.clone(), id);
            }
            *n += 1;
            lines.push(Line::Msg(1, l.to_owned()));
            if *n == hold {
                lines.push(rest(1, url, &s, firsts[&s]));
            }
        }
        // Symbols with fewer frames than `hold` get theirs at the end.
        for (s, n) in &seen {
            if *n < hold {
                lines.push(rest(1, url, s, firsts[s]));
            }
        }
        lines
    }

    fn frames(lines: &[Line]) -> usize {
        lines.iter().filter(|l| matches!(l, Line::Msg(..))).count()
    }

    #[test]
    fn real_spot_frames_rebuild_from_rest_lines_with_held_updates() {
        let lines = recording(SPOT, SPOT_URL, Rule::NextAfter, 3);
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 4, "{reports:#?}");
        assert!(reports.iter().all(|r| r.proven() && r.spans_total == 1));
        let updates: u64 = reports.iter().map(|r| r.updates).sum();
        assert_eq!(updates, frames(&lines) as u64);
        assert_eq!(reports.iter().map(|r| r.snapshots).sum::<u64>(), 4);
    }

    #[test]
    fn real_usdm_frames_rebuild_by_pu() {
        let lines = recording(USDM, USDM_URL, Rule::Covering, 5);
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 4);
        assert!(reports.iter().all(|r| r.proven()), "{reports:#?}");
        let updates: u64 = reports.iter().map(|r| r.updates).sum();
        assert_eq!(updates, frames(&lines) as u64);
    }

    #[test]
    fn updates_older_than_the_snapshot_are_dropped_by_each_markets_rule() {
        // Spot: the snapshot at the 2nd frame's u drops the first two; USDⓈ-M: at the 2nd's u
        // drops only the first (u < lastUpdateId), the 2nd covers it.
        for (corpus, url, dropped) in [(SPOT, SPOT_URL, 2), (USDM, USDM_URL, 1)] {
            let sym = symbol(corpus.lines().next().unwrap());
            let mine: Vec<&str> = corpus.lines().filter(|l| symbol(l) == sym).collect();
            let id = field(mine[1], "u");
            let mut lines: Vec<Line> = mine[..4]
                .iter()
                .map(|l| Line::Msg(1, l.to_string()))
                .collect();
            lines.push(rest(1, url, &sym, id));
            lines.extend(mine[4..].iter().map(|l| Line::Msg(1, l.to_string())));
            let (breaks, reports) = run_lines(&lines);
            assert_eq!(breaks, [], "{url}");
            assert_eq!(reports[0].updates, (mine.len() - dropped) as u64, "{url}");
        }
    }

    /// The book after `frames`, rebuilt by the test itself: price text → size text a side.
    fn rebuilt(frames: &[&str]) -> [HashMap<String, String>; 2] {
        let mut sides = [HashMap::new(), HashMap::new()];
        for f in frames {
            let v: serde_json::Value = serde_json::from_str(f).unwrap();
            for (i, side) in ["b", "a"].iter().enumerate() {
                for l in v["data"][side].as_array().unwrap() {
                    let (p, q) = (l[0].as_str().unwrap(), l[1].as_str().unwrap());
                    if q.parse::<f64>().unwrap() == 0.0 {
                        sides[i].remove(p);
                    } else {
                        sides[i].insert(p.to_owned(), q.to_owned());
                    }
                }
            }
        }
        sides
    }

    /// A REST body of a whole book.
    fn body(id: u64, sides: &[HashMap<String, String>; 2]) -> String {
        let list = |m: &HashMap<String, String>| {
            m.iter()
                .map(|(p, q)| format!(r#"["{p}","{q}"]"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"lastUpdateId":{id},"bids":[{}],"asks":[{}]}}"#,
            list(&sides[0]),
            list(&sides[1])
        )
    }

    /// USDⓈ-M SUSHIUSDT from an empty snapshot at its first frame's U, the first `n` frames,
    /// then a REST line current to the n-th frame's u holding the true book; `mutate` changes
    /// the frames the engine reads (not the true book).
    fn checked_against_rest(
        n: usize,
        mutate: impl Fn(&mut Vec<String>),
    ) -> (Vec<crate::book::Break>, Vec<crate::book::BookReport>, usize) {
        let mine: Vec<&str> = USDM
            .lines()
            .filter(|l| l.contains("\"SUSHIUSDT\""))
            .take(n)
            .collect();
        let first = field(mine[0], "U");
        let last = field(mine[n - 1], "u");
        let truth = body(last, &rebuilt(&mine));
        let mut fed: Vec<String> = mine.iter().map(|l| l.to_string()).collect();
        mutate(&mut fed);
        let mut lines = vec![Line::Rest(
            1,
            "SUSHIUSDT".into(),
            format!("{USDM_URL}SUSHIUSDT"),
            format!(r#"{{"lastUpdateId":{first},"bids":[],"asks":[]}}"#),
        )];
        lines.extend(fed.into_iter().map(|l| Line::Msg(1, l)));
        lines.push(Line::Rest(
            1,
            "SUSHIUSDT".into(),
            format!("{USDM_URL}SUSHIUSDT"),
            truth,
        ));
        let at = lines.len();
        let (breaks, reports) = run_lines(&lines);
        (breaks, reports, at)
    }

    #[test]
    fn a_rest_snapshot_at_the_books_update_checks_every_level() {
        let (breaks, reports, _) = checked_against_rest(60, |_| {});
        assert_eq!(breaks, []);
        assert_eq!(reports[0].checksums_checked, 1);
        assert_eq!(reports[0].updates, 60);
    }

    #[test]
    fn a_changed_size_breaks_at_the_next_rest_snapshot_at_that_update() {
        // Binance sends no checksum: a changed size shows when a REST snapshot current to the
        // same update is compared.
        let (breaks, reports, at) = checked_against_rest(60, |fed| {
            // The last frame with bids: no later frame changes its level back.
            let f = fed.iter().rposition(|l| l.contains("\"b\":[[")).unwrap();
            let i = fed[f].find("\"b\":[[\"").unwrap() + 7;
            let size = fed[f][i..].find("\",\"").unwrap() + i + 3;
            fed[f].insert(size, '9');
        });
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::ChecksumMismatch);
        assert_eq!(breaks[0].at.line, at as u64);
        assert_eq!(reports[0].checksums_failed, 1);
    }

    /// For each market: every frame from its REST lines, `mutate` given the lines and the
    /// indexes of the first symbol's frames; the breaks and those indexes.
    fn mutated(
        mutate: impl Fn(&mut Vec<Line>, &[usize]),
    ) -> Vec<(&'static str, Vec<crate::book::Break>, Vec<usize>)> {
        [
            (SPOT, SPOT_URL, Rule::NextAfter),
            (USDM, USDM_URL, Rule::Covering),
        ]
        .into_iter()
        .map(|(corpus, url, rule)| {
            let mut lines = recording(corpus, url, rule, 1);
            let sym = symbol(corpus.lines().next().unwrap());
            let of_sym: Vec<usize> = (0..lines.len())
                .filter(|&i| matches!(&lines[i], Line::Msg(_, t) if symbol(t) == sym))
                .collect();
            mutate(&mut lines, &of_sym);
            (url, run_lines(&lines).0, of_sym)
        })
        .collect()
    }

    #[test]
    fn a_deleted_update_breaks_the_book_at_the_next() {
        for (url, breaks, of_sym) in mutated(|lines, of_sym| {
            lines.remove(of_sym[10]);
        }) {
            assert_eq!(breaks.len(), 1, "{url}: {breaks:#?}");
            assert_eq!(breaks[0].kind, BreakKind::SequenceGap);
            assert_eq!(breaks[0].at.line, of_sym[11] as u64, "{url}");
        }
    }

    #[test]
    fn two_swapped_updates_break_the_book() {
        for (url, breaks, of_sym) in mutated(|lines, of_sym| lines.swap(of_sym[10], of_sym[11])) {
            assert_eq!(breaks.len(), 1, "{url}: {breaks:#?}");
            assert_eq!(breaks[0].at.line, of_sym[10] as u64 + 1, "{url}");
        }
    }

    #[test]
    fn a_broken_book_resumes_from_the_next_rest_snapshot_with_the_updates_held_since() {
        let mine: Vec<&str> = USDM
            .lines()
            .filter(|l| l.contains("\"SUSHIUSDT\""))
            .collect();
        let mut lines = vec![rest(1, USDM_URL, "SUSHIUSDT", field(mine[0], "U"))];
        lines.extend(mine[..10].iter().map(|l| Line::Msg(1, l.to_string())));
        // The 11th is lost: the 12th breaks the book; 12th..40th are held.
        lines.extend(mine[11..40].iter().map(|l| Line::Msg(1, l.to_string())));
        // A snapshot current to the 20th frame (fetched on `snapshot_interval`).
        lines.push(rest(1, USDM_URL, "SUSHIUSDT", field(mine[19], "u")));
        lines.extend(mine[40..].iter().map(|l| Line::Msg(1, l.to_string())));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!(breaks[0].kind, BreakKind::SequenceGap);
        assert_eq!(breaks[0].at.line, 12);
        let r = &reports[0];
        assert_eq!(r.spans_total, 2, "{r:#?}");
        assert_eq!((r.spans[1].from.line, r.spans[1].end), (41, SpanEnd::End));
        // 10 before the break; from the snapshot, the 20th..40th held (21) and the rest.
        assert_eq!(r.updates, 10 + 21 + (mine.len() - 40) as u64);
    }

    #[test]
    fn a_reconnect_ends_a_span_and_the_next_snapshot_starts_one() {
        let mine: Vec<&str> = SPOT.lines().filter(|l| l.contains("\"NKNUSDT\"")).collect();
        let mut lines = vec![rest(1, SPOT_URL, "NKNUSDT", field(mine[0], "U") - 1)];
        lines.extend(mine[..50].iter().map(|l| Line::Msg(1, l.to_string())));
        lines.push(Line::End(1));
        lines.extend(mine[60..63].iter().map(|l| Line::Msg(2, l.to_string())));
        lines.push(rest(2, SPOT_URL, "NKNUSDT", field(mine[60], "u")));
        lines.extend(mine[63..].iter().map(|l| Line::Msg(2, l.to_string())));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        let spans = &reports[0].spans;
        assert_eq!(spans.len(), 2, "{spans:#?}");
        assert_eq!(
            (spans[0].end, spans[0].conn, spans[0].updates),
            (SpanEnd::ConnectionEnded, 1, 50)
        );
        assert_eq!(
            (spans[1].end, spans[1].conn, spans[1].from.line),
            (SpanEnd::End, 2, 56)
        );
        assert_eq!(spans[1].updates, (mine.len() - 61) as u64);
        assert!(reports[0].proven());
    }

    #[test]
    fn updates_that_never_get_a_snapshot_are_reported_when_the_connection_ends() {
        let mine: Vec<&str> = SPOT.lines().filter(|l| l.contains("\"NKNUSDT\"")).collect();
        let mut lines: Vec<Line> = mine[..5]
            .iter()
            .map(|l| Line::Msg(1, l.to_string()))
            .collect();
        lines.push(Line::End(1));
        lines.extend(mine[5..8].iter().map(|l| Line::Msg(2, l.to_string())));
        let (breaks, reports) = run_lines(&lines);
        let kinds: Vec<(BreakKind, u64)> = breaks.iter().map(|b| (b.kind, b.at.line)).collect();
        // The connection's end, then the recording's end (at the last waiting update).
        assert_eq!(
            kinds,
            [(BreakKind::NoSnapshot, 5), (BreakKind::NoSnapshot, 9)]
        );
        assert_eq!((reports[0].breaks, reports[0].spans_total), (2, 0));
        assert!(!reports[0].proven());
    }

    #[test]
    fn held_updates_are_bounded_and_the_newest_are_kept() {
        // 3,000 updates of ~1 KiB: more than the 2 MiB held per book (all the same size).
        let levels: Vec<String> = (0..40)
            .map(|i| format!(r#"["{i}.5","1.00000000"]"#))
            .collect();
        let update = |n: u64| {
            Line::Msg(
                1,
                format!(
                    r#"{{"stream":"abcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"ABCUSDT","U":{n},"u":{n},"b":[{}],"a":[]}}}}"#,
                    levels.join(",")
                ),
            )
        };
        let mut lines: Vec<Line> = (10_001..=13_000).map(update).collect();
        let size = match &lines[2999] {
            Line::Msg(_, t) => t.len(),
            _ => unreachable!(),
        };
        let kept = (super::super::rest_started::HELD_BYTES / size) as u64;
        assert!(kept < 3000);
        let oldest = 13_001 - kept;
        // A snapshot one older than the oldest kept can start nothing: passed over, as the
        // recorder fetches again; one current to just before it starts the book.
        lines.push(rest(1, SPOT_URL, "ABCUSDT", oldest - 2));
        lines.push(rest(1, SPOT_URL, "ABCUSDT", oldest - 1));
        lines.push(update(13_001));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!((reports[0].snapshots, reports[0].spans_total), (1, 1));
        assert_eq!(reports[0].spans[0].from.line, 3002);
        assert_eq!(reports[0].updates, kept + 1);
    }

    #[test]
    fn a_snapshot_older_than_the_held_updates_is_passed_over_not_a_break() {
        let mine: Vec<&str> = SPOT.lines().filter(|l| l.contains("\"NKNUSDT\"")).collect();
        let mut lines: Vec<Line> = mine[..5]
            .iter()
            .map(|l| Line::Msg(1, l.to_string()))
            .collect();
        // Too old for the first held (U - 2): the recorder asks again.
        lines.push(rest(1, SPOT_URL, "NKNUSDT", field(mine[0], "U") - 2));
        lines.push(rest(1, SPOT_URL, "NKNUSDT", field(mine[2], "u")));
        lines.extend(mine[5..].iter().map(|l| Line::Msg(1, l.to_string())));
        let (breaks, reports) = run_lines(&lines);
        assert_eq!(breaks, []);
        assert_eq!(
            (reports[0].snapshots, reports[0].spans[0].from.line),
            (1, 7)
        );
        assert_eq!(reports[0].updates, mine.len() as u64 - 3);
    }

    #[test]
    fn partial_depth_is_a_whole_book_every_message() {
        let spot = r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}}"#;
        let futures = r#"{"stream":"btcusdt@depth5","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":390,"u":400,"pu":389,"b":[["7403.89","0.002"]],"a":[["7405.96","3.340"]]}}"#;
        let bare = r#"{"lastUpdateId":161,"bids":[["0.0025","10"]],"asks":[["0.0024","100"]]}"#;
        let lines: Vec<Line> = [spot, futures, spot, bare]
            .iter()
            .map(|l| Line::Msg(1, l.to_string()))
            .collect();
        let (breaks, reports) = run_lines(&lines);
        // The bare frame is crossed.
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!((breaks[0].kind, breaks[0].at.line), (BreakKind::Crossed, 4));
        let snaps: Vec<(&str, &str, u64)> = reports
            .iter()
            .map(|r| (r.id.channel.as_str(), r.id.symbol.as_str(), r.snapshots))
            .collect();
        assert_eq!(
            snaps,
            [
                ("depth5", "BTCUSDT", 1),
                ("depth5", "btcusdt", 2),
                ("depthN", "", 1)
            ]
        );
    }
}
