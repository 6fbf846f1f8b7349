//! The exchanges' own sequence numbers: which messages carry them, and whether a run of
//! messages skips or repeats any. Pure functions, no I/O; `verify` and `stats` feed them.
//!
//! Recognised (see `shared/venues.md`):
//!
//! | venue | messages | rule |
//! |---|---|---|
//! | Binance USDⓈ-M | diff `depthUpdate` with `pu` | `pu` = previous `u` of the symbol |
//! | Binance spot | `depthUpdate` (`U`, `u`) | `U` = previous `u` + 1 |
//! | Bybit v5 | `orderbook.*` deltas | `data.u` = previous `u` + 1 (snapshot or `u` = 1 restarts); `data.seq` increases |
//! | Coinbase Advanced Trade | every message with `sequence_num` | previous + 1, one counter per connection |
//! | OKX v5 | books with `seqId`/`prevSeqId` | `prevSeqId` = previous `seqId` (snapshot or -1 restarts) |
//! | Deribit | `book.*` with `change_id` | `prev_change_id` = previous `change_id` (snapshot restarts) |
//! | Bitfinex v2 | channel messages `[ID, …, SEQ]` (the `SEQ_ALL` flag wsrec sets) | previous + 1, one counter per connection |
//! | Kraken Futures | `book` deltas with `seq` | previous + 1 per product (the snapshot is not linked) |
//! | Gate v4 | `spot.order_book_update`, `futures.order_book_update` (`U`, `u`) | `U` = previous `u` + 1 |
//! | Bitget v2 | `books*` with `seq` | `seq` increases (a snapshot restarts) |
//! | Crypto.com v1 | `book.update` with `u`/`pu` | `pu` = previous `u` (the `book` snapshot restarts) |
//!
//! Gate's rule is the one cryptofeed applies to both markets (`cryptofeed/exchanges/gateio.py`,
//! `_check_update_id`, inherited by `gateio_futures.py`); Crypto.com's the one ccxt applies
//! (`ts/src/pro/cryptocom.ts`, `handleOrderBook`); Bitget documents `seq` as a number that grows
//! with every change of the book (<https://www.bitget.com/api-doc/contract/websocket/public/Order-Book-Channel>).
//!
//! Binance's partial-depth streams (`<symbol>@depth5`, `@depth10`, `@depth20`, at any speed) are
//! not checked: each frame is a whole top-of-book snapshot, and the `U`/`u`/`pu` it carries are
//! those of the diff events underneath. Binance documents `pu` linking only for the diff stream
//! ("How to manage a local order book correctly",
//! <https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly>),
//! and a partial stream pushed at its own speed (250 or 500 ms over 100 ms diff events, or with
//! no change in a window) carries a `pu` that need not be the previous frame's `u`; a missing
//! snapshot loses no state either. Only frames of a combined stream can be told apart by their
//! stream name; a bare frame from a `/ws/<symbol>@depth20` connection looks like a diff.
//!
//! Numbering restarts with every connection (a venue sends a new snapshot), so a [`Checker`]
//! keeps its state per connection and is told when one ends.
//!
//! [`points`] holds the rules of the venues whose messages are JSON objects, read into the shapes
//! of `shapes`; Gate's and Crypto.com's `result` data is read in `result`, Bitfinex's arrays in
//! `bitfinex`.

use std::collections::HashMap;

mod bitfinex;
mod result;
mod shapes;

use bitfinex::bitfinex_point;
use result::result_points;
use shapes::{BinanceDepth, BitgetBook, BybitBook, DeribitBook, DeribitParams, OkxBook, Top};

/// A venue whose sequence numbers are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Venue {
    /// Binance (spot and USDⓈ-M futures) `depthUpdate`.
    Binance,
    /// Bybit v5 order book.
    Bybit,
    /// Coinbase Advanced Trade `sequence_num`.
    Coinbase,
    /// OKX v5 books `seqId`/`prevSeqId`.
    Okx,
    /// Deribit book `change_id`/`prev_change_id`.
    Deribit,
    /// Bitfinex v2 public sequence numbers (`SEQ_ALL`).
    Bitfinex,
    /// Kraken Futures `book` `seq`.
    KrakenFutures,
    /// Gate v4 order book updates `U`/`u`.
    Gate,
    /// Bitget v2 books `seq`.
    Bitget,
    /// Crypto.com v1 book deltas `u`/`pu`.
    Cryptocom,
}

impl Venue {
    /// The venue numbers each connection's messages on its own (Coinbase `sequence_num`,
    /// Bitfinex `SEQ_ALL`): two connections' numbers do not name the same message.
    pub fn per_connection(self) -> bool {
        matches!(self, Venue::Coinbase | Venue::Bitfinex)
    }
}

impl std::fmt::Display for Venue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Venue::Binance => "Binance",
            Venue::Bybit => "Bybit",
            Venue::Coinbase => "Coinbase",
            Venue::Okx => "OKX",
            Venue::Deribit => "Deribit",
            Venue::Bitfinex => "Bitfinex",
            Venue::KrakenFutures => "Kraken Futures",
            Venue::Gate => "Gate",
            Venue::Bitget => "Bitget",
            Venue::Cryptocom => "Crypto.com",
        })
    }
}

/// How one message moves a sequence along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// (Re)starts the sequence at `last` (a snapshot).
    Reset {
        /// The number the sequence is at after this message.
        last: u64,
    },
    /// Names its predecessor: `prev` must be the last number seen; ends at `last`.
    Link {
        /// The number this message says came before it.
        prev: u64,
        /// This message's number.
        last: u64,
    },
    /// Covers `first..=last`: `first` must be one more than the last number seen.
    Range {
        /// First number covered.
        first: u64,
        /// Last number covered.
        last: u64,
    },
    /// Must be greater than the last number seen (numbers may skip).
    Increasing {
        /// This message's number.
        value: u64,
    },
}

/// One sequence fact carried by a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// The venue.
    pub venue: Venue,
    /// Which sequence within the connection (symbol, topic or channel; `field` names the number).
    pub key: String,
    /// Field name(s), for reports (`u`, `pu`, `seqId`, …).
    pub field: &'static str,
    /// What the message does to the sequence.
    pub step: Step,
}

/// A break in a venue's numbering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Numbers were skipped: the message expected `expected` to come before it (or to be its
    /// first number) but the sequence was elsewhere.
    Gap {
        /// What the message should have said.
        expected: u64,
        /// What it said.
        got: u64,
    },
    /// The message repeats or goes back behind numbers already seen.
    Backwards {
        /// The last number seen.
        last: u64,
        /// What the message said.
        got: u64,
    },
}

/// Cheap pre-check: only messages with one of these byte strings are parsed.
const MARKERS: [&[u8]; 6] = [
    b"\"u\":",
    b"\"sequence_num\":",
    b"\"seqId\":",
    b"\"change_id\":",
    b"\"feed\":\"book\"",
    b"\"seq\":",
];

/// The sequence facts a message carries (none for most messages), appended to `out`.
pub fn points(msg: &[u8], out: &mut Vec<Point>) {
    let first = msg.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        out.extend(bitfinex_point(msg));
        return;
    }
    if first != Some(&b'{')
        || !MARKERS
            .iter()
            .any(|m| memchr::memmem::find(msg, m).is_some())
    {
        return;
    }
    let Ok(top) = serde_json::from_slice::<Top<'_>>(msg) else {
        return;
    };
    // Coinbase Advanced Trade: one counter per connection over every channel.
    if let (Some(n), Some(_)) = (top.sequence_num, &top.channel) {
        out.push(Point {
            venue: Venue::Coinbase,
            key: String::new(),
            field: "sequence_num",
            step: if n == 0 {
                Step::Reset { last: 0 }
            } else {
                Step::Range { first: n, last: n }
            },
        });
        return;
    }
    // Kraken Futures book deltas: `seq` counts each product's book messages, one by one, as
    // cryptofeed's `KrakenFutures._book` checks it (`seq_no + 1 != seq` is a missing sequence
    // number). The snapshot's `seq` is not linked to the first delta there, nor here.
    if top.feed.as_deref() == Some("book")
        && let (Some(product), Some(seq)) = (&top.product_id, top.seq)
    {
        out.push(Point {
            venue: Venue::KrakenFutures,
            key: format!("book:{product}"),
            field: "seq",
            step: Step::Range {
                first: seq,
                last: seq,
            },
        });
        return;
    }
    // Bybit order book.
    if let (Some(topic), Some(data)) = (&top.topic, top.data)
        && topic.starts_with("orderbook.")
    {
        let Ok(book) = serde_json::from_str::<BybitBook>(data.get()) else {
            return;
        };
        let snapshot = top.kind.as_deref() == Some("snapshot");
        if let Some(u) = book.u {
            out.push(Point {
                venue: Venue::Bybit,
                key: topic.clone(),
                field: "u",
                step: if snapshot || u == 1 {
                    Step::Reset { last: u }
                } else {
                    Step::Range { first: u, last: u }
                },
            });
        }
        if let Some(seq) = book.seq {
            out.push(Point {
                venue: Venue::Bybit,
                key: format!("{topic} seq"),
                field: "seq",
                step: increasing(snapshot, seq),
            });
        }
        return;
    }
    // Bitget books: `arg` with the market's instType, `data` with `seq`.
    if let (Some(arg), Some(data)) = (&top.arg, top.data)
        && let Some(inst_type) = &arg.inst_type
    {
        let Ok(books) = serde_json::from_str::<Vec<BitgetBook>>(data.get()) else {
            return;
        };
        let key = format!(
            "{inst_type}/{}:{}",
            arg.channel.as_deref().unwrap_or(""),
            arg.inst_id.as_deref().unwrap_or("")
        );
        let snapshot = top.action.as_deref() == Some("snapshot");
        for seq in books.into_iter().filter_map(|b| b.seq) {
            out.push(Point {
                venue: Venue::Bitget,
                key: key.clone(),
                field: "seq",
                step: increasing(snapshot, seq),
            });
        }
        return;
    }
    // Gate order book updates, and Crypto.com books.
    if let Some(result) = top.result {
        result_points(top.channel.as_deref(), result, out);
        return;
    }
    // OKX books.
    if let (Some(arg), Some(data)) = (&top.arg, top.data) {
        let Ok(books) = serde_json::from_str::<Vec<OkxBook>>(data.get()) else {
            return;
        };
        let key = format!(
            "{}:{}",
            arg.channel.as_deref().unwrap_or(""),
            arg.inst_id.as_deref().unwrap_or("")
        );
        for b in books {
            let (Some(seq), Some(prev)) = (b.seq_id, b.prev_seq_id) else {
                continue;
            };
            let Ok(seq) = u64::try_from(seq) else {
                continue;
            };
            let step = match u64::try_from(prev) {
                Ok(prev) if top.action.as_deref() != Some("snapshot") => {
                    Step::Link { prev, last: seq }
                }
                _ => Step::Reset { last: seq },
            };
            out.push(Point {
                venue: Venue::Okx,
                key: key.clone(),
                field: "seqId/prevSeqId",
                step,
            });
        }
        return;
    }
    // Deribit subscription notifications.
    if top.method.as_deref() == Some("subscription")
        && let Some(params) = top.params
    {
        let Ok(p) = serde_json::from_str::<DeribitParams<'_>>(params.get()) else {
            return;
        };
        let (Some(channel), Some(data)) = (p.channel, p.data) else {
            return;
        };
        let Ok(book) = serde_json::from_str::<DeribitBook>(data.get()) else {
            return;
        };
        let Some(id) = book.change_id else { return };
        let step = match book.prev_change_id {
            Some(prev) if book.kind.as_deref() != Some("snapshot") => Step::Link { prev, last: id },
            _ => Step::Reset { last: id },
        };
        out.push(Point {
            venue: Venue::Deribit,
            key: channel,
            field: "change_id/prev_change_id",
            step,
        });
        return;
    }
    // Binance depthUpdate, combined ({"stream","data"}) or bare.
    let depth = match (&top.stream, top.data) {
        (Some(stream), Some(data)) => serde_json::from_str::<BinanceDepth>(data.get())
            .ok()
            .map(|d| (stream.clone(), d)),
        _ => Some((
            String::new(),
            BinanceDepth {
                e: top.e,
                s: top.s,
                first_update: top.first_update,
                u: top.u,
                pu: top.pu,
            },
        )),
    };
    if let Some((stream, d)) = depth
        && d.e.as_deref() == Some("depthUpdate")
        && !is_partial_depth(&stream)
        && let (Some(first), Some(last)) = (d.first_update, d.u)
    {
        let key = if stream.is_empty() {
            format!("{}@depth", d.s.unwrap_or_default().to_ascii_lowercase())
        } else {
            stream
        };
        let (field, step) = match d.pu {
            Some(prev) => ("pu", Step::Link { prev, last }),
            None => ("U", Step::Range { first, last }),
        };
        out.push(Point {
            venue: Venue::Binance,
            key,
            field,
            step,
        });
    }
}

/// A number that only increases: a snapshot restarts it at `seq`, anything else must pass it.
fn increasing(snapshot: bool, seq: u64) -> Step {
    if snapshot {
        Step::Reset { last: seq }
    } else {
        Step::Increasing { value: seq }
    }
}

/// Whether a Binance stream name is a partial-depth stream (`btcusdt@depth20@100ms`,
/// `ethusdt@depth5`): snapshots, not diffs.
fn is_partial_depth(stream: &str) -> bool {
    stream
        .split('@')
        .nth(1)
        .and_then(|kind| kind.strip_prefix("depth"))
        .is_some_and(|levels| !levels.is_empty() && levels.bytes().all(|b| b.is_ascii_digit()))
}

/// Follows every sequence of every connection and reports breaks.
#[derive(Debug, Default)]
pub struct Checker {
    /// Last number seen per (connection, venue, key).
    last: HashMap<(u64, Venue, String), u64>,
}

impl Checker {
    /// Applies `point` seen on connection `conn`; `Some` if it breaks the sequence.
    pub fn observe(&mut self, conn: u64, point: &Point) -> Option<Finding> {
        let slot = (conn, point.venue, point.key.clone());
        let (finding, new_last) = match (self.last.get(&slot).copied(), point.step) {
            (_, Step::Reset { last }) => (None, last),
            (None, Step::Link { last, .. } | Step::Range { last, .. }) => (None, last),
            (None, Step::Increasing { value }) => (None, value),
            (Some(l), Step::Link { prev, last }) => {
                let f = match prev.cmp(&l) {
                    std::cmp::Ordering::Equal => None,
                    std::cmp::Ordering::Greater => Some(Finding::Gap {
                        expected: l,
                        got: prev,
                    }),
                    std::cmp::Ordering::Less => Some(Finding::Backwards { last: l, got: prev }),
                };
                (f, last)
            }
            (Some(l), Step::Range { first, last }) => {
                let want = l.saturating_add(1);
                let f = match first.cmp(&want) {
                    std::cmp::Ordering::Equal => None,
                    std::cmp::Ordering::Greater => Some(Finding::Gap {
                        expected: want,
                        got: first,
                    }),
                    std::cmp::Ordering::Less => Some(Finding::Backwards {
                        last: l,
                        got: first,
                    }),
                };
                (f, last.max(l))
            }
            (Some(l), Step::Increasing { value }) => {
                let f = (value <= l).then_some(Finding::Backwards {
                    last: l,
                    got: value,
                });
                (f, value.max(l))
            }
        };
        self.last.insert(slot, new_last);
        finding
    }

    /// Forgets connection `conn` (it ended; the next one starts afresh).
    pub fn forget_conn(&mut self, conn: u64) {
        self.last.retain(|(c, _, _), _| *c != conn);
    }

    /// Forgets everything (a new recorder run).
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus");

    fn corpus(name: &str) -> Vec<String> {
        std::fs::read_to_string(format!("{CORPUS}/{name}"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn one(msg: &str) -> Option<Point> {
        let mut out = Vec::new();
        points(msg.as_bytes(), &mut out);
        out.into_iter().next()
    }

    /// Every finding over `msgs` on one connection, with the index of the message.
    fn findings(msgs: &[String]) -> Vec<(usize, Venue, String, Finding)> {
        let mut c = Checker::default();
        let mut out = Vec::new();
        let mut pts = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            pts.clear();
            points(m.as_bytes(), &mut pts);
            for p in &pts {
                if let Some(f) = c.observe(1, p) {
                    out.push((i, p.venue, p.key.clone(), f));
                }
            }
        }
        out
    }

    #[test]
    fn recognises_each_venue() {
        type Want = Option<(Venue, &'static str, Step)>;
        let table: [(&str, Want); 10] = [
            (
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12,"pu":9,"b":[],"a":[]}}"#,
                Some((
                    Venue::Binance,
                    "btcusdt@depth@100ms",
                    Step::Link { prev: 9, last: 12 },
                )),
            ),
            (
                r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12,"b":[],"a":[]}"#,
                Some((
                    Venue::Binance,
                    "btcusdt@depth",
                    Step::Range {
                        first: 10,
                        last: 12,
                    },
                )),
            ),
            (
                r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":7,"seq":100},"cts":1}"#,
                Some((
                    Venue::Bybit,
                    "orderbook.50.BTCUSDT",
                    Step::Range { first: 7, last: 7 },
                )),
            ),
            (
                r#"{"channel":"l2_data","timestamp":"x","sequence_num":5,"events":[]}"#,
                Some((Venue::Coinbase, "", Step::Range { first: 5, last: 5 })),
            ),
            (
                r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"ts":"1","checksum":0,"seqId":124,"prevSeqId":123}]}"#,
                Some((
                    Venue::Okx,
                    "books:BTC-USDT",
                    Step::Link {
                        prev: 123,
                        last: 124,
                    },
                )),
            ),
            (
                r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[],"bids":[],"seqId":123,"prevSeqId":-1}]}"#,
                Some((Venue::Okx, "books:BTC-USDT", Step::Reset { last: 123 })),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":11,"prev_change_id":10,"bids":[],"asks":[]}}}"#,
                Some((
                    Venue::Deribit,
                    "book.BTC-PERPETUAL.100ms",
                    Step::Link { prev: 10, last: 11 },
                )),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"snapshot","change_id":10,"bids":[],"asks":[]}}}"#,
                Some((
                    Venue::Deribit,
                    "book.BTC-PERPETUAL.100ms",
                    Step::Reset { last: 10 },
                )),
            ),
            // Trades, tickers, arrays, non-JSON: nothing.
            (r#"{"topic":"publicTrade.BTCUSDT","data":[{"u":1}]}"#, None),
            (r#"[1,{"u":2},"book-10","XBT/USD"]"#, None),
        ];
        for (msg, want) in table {
            let got = one(msg).map(|p| (p.venue, p.key.clone(), p.step));
            let want = want.map(|(v, k, s)| (v, k.to_owned(), s));
            assert_eq!(got, want, "{msg}");
        }
        // Bybit books also carry the cross sequence `seq`, which must increase.
        let mut out = Vec::new();
        points(table[2].0.as_bytes(), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].step, Step::Increasing { value: 100 });
        assert_eq!(one("not json"), None);
        assert_eq!(one(r#"{"u": "#), None);
    }

    #[test]
    fn kraken_futures_book_deltas_count_one_by_one_per_product() {
        // nautilus_trader's Kraken Futures test data (ws_futures_book_delta.json), numbered on.
        let delta = |product: &str, seq: u64| {
            format!(
                r#"{{"feed":"book","product_id":"{product}","side":"sell","seq":{seq},"price":34981,"qty":0,"timestamp":1612269953629}}"#
            )
        };
        assert_eq!(
            one(&delta("PI_XBTUSD", 326094134)).map(|p| (p.venue, p.key, p.step)),
            Some((
                Venue::KrakenFutures,
                "book:PI_XBTUSD".to_owned(),
                Step::Range {
                    first: 326094134,
                    last: 326094134
                }
            ))
        );
        // Snapshots, trades (`seq` too) and tickers carry no point.
        for msg in [
            r#"{"feed":"book_snapshot","product_id":"PI_XBTUSD","timestamp":1612269825817,"seq":326072249,"tickSize":null,"bids":[],"asks":[]}"#,
            r#"{"feed":"trade","product_id":"PI_XBTUSD","uid":"05af78ac-a774-478c-a50c-8b9c234e071e","side":"sell","type":"fill","seq":653355,"time":1612266317519,"qty":15000,"price":34969.5}"#,
        ] {
            assert_eq!(one(msg), None, "{msg}");
        }
        // Two products interleaved, each counting on its own; one delta lost is a gap.
        let msgs: Vec<String> = [
            delta("PI_XBTUSD", 10),
            delta("PF_ETHUSD", 500),
            delta("PI_XBTUSD", 11),
            delta("PF_ETHUSD", 501),
            delta("PI_XBTUSD", 13),
        ]
        .into();
        let f = findings(&msgs);
        assert_eq!(
            f,
            [(
                4,
                Venue::KrakenFutures,
                "book:PI_XBTUSD".to_owned(),
                Finding::Gap {
                    expected: 12,
                    got: 13
                }
            )]
        );
    }

    #[test]
    fn binance_usdm_corpus_is_continuous_and_a_removed_frame_is_a_gap() {
        let mut msgs = corpus("binance-usdm_depthUpdate.jsonl");
        assert_eq!(findings(&msgs), []);
        // Remove the 101st frame: the next frame of that symbol names a `pu` never seen.
        let removed = msgs.remove(100);
        let p = one(&removed).unwrap();
        let Step::Link { last, .. } = p.step else {
            panic!("{p:?}")
        };
        let f = findings(&msgs);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].2, p.key);
        let Finding::Gap { got, .. } = f[0].3 else {
            panic!("{f:?}")
        };
        assert_eq!(got, last, "the next frame's pu is the removed frame's u");
    }

    /// The USDⓈ-M corpus's diff frames (depth@100ms) as a partial-depth stream pushed every
    /// `every`-th event: the `pu` of each frame names a diff event that was never pushed on it.
    fn as_partial(stream: &str, every: usize) -> Vec<String> {
        corpus("binance-usdm_depthUpdate.jsonl")
            .into_iter()
            .step_by(every)
            .map(|m| m.replace("@depth@100ms", stream))
            .collect()
    }

    #[test]
    fn binance_partial_depth_frames_are_snapshots_not_checked() {
        for stream in ["@depth20@500ms", "@depth5", "@depth10@100ms"] {
            let msgs = as_partial(stream, 5);
            assert!(msgs[0].contains(stream));
            assert_eq!(findings(&msgs), [], "{stream}");
            assert_eq!(one(&msgs[0]), None, "{stream}: not a sequence point");
        }
        // The same frames as a diff stream: the skipped events are gaps.
        let diff = as_partial("@depth@100ms", 5);
        assert!(!findings(&diff).is_empty());
        // rpiDepth is a diff stream with `pu`: still checked.
        let rpi = as_partial("@rpiDepth@500ms", 1);
        assert!(matches!(
            one(&rpi[0]).map(|p| p.step),
            Some(Step::Link { .. })
        ));
        assert_eq!(findings(&rpi), []);
        assert!(!is_partial_depth("btcusdt@depth"));
        assert!(!is_partial_depth("btcusdt@depth@100ms"));
        assert!(is_partial_depth("btcusdt@depth20"));
    }

    #[test]
    fn binance_spot_corpus_is_continuous_and_a_removed_frame_is_a_gap() {
        let mut msgs = corpus("binance-spot_depthUpdate.jsonl");
        assert_eq!(findings(&msgs), []);
        msgs.remove(50);
        let f = findings(&msgs);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(matches!(f[0].3, Finding::Gap { .. }));
    }

    #[test]
    fn bybit_corpus_is_continuous_and_a_removed_delta_is_a_gap() {
        for name in ["bybit-linear_orderbook.jsonl", "bybit-spot_orderbook.jsonl"] {
            let mut msgs = corpus(name);
            assert_eq!(findings(&msgs), [], "{name}");
            msgs.remove(200);
            let f = findings(&msgs);
            assert_eq!(f.len(), 1, "{name}: {f:?}");
            assert!(matches!(f[0].3, Finding::Gap { .. }), "{f:?}");
            // A repeated delta goes backwards in both `u` and `seq`.
            let mut msgs = corpus(name);
            let again = msgs[200].clone();
            msgs.insert(201, again);
            let f = findings(&msgs);
            assert_eq!(f.len(), 2, "{name}: {f:?}");
            assert!(f.iter().all(|x| matches!(x.3, Finding::Backwards { .. })));
        }
    }

    #[test]
    fn coinbase_corpus_has_exactly_the_two_snapshots_it_left_out() {
        // The corpus splits one connection into files by channel and leaves out the two
        // multi-megabyte level2 snapshots (see tests/fixtures/corpus/SOURCES.md): merged back
        // in sequence order, the only breaks are those two frames.
        let mut all: Vec<(u64, String)> = [
            "coinbase-advanced_control.jsonl",
            "coinbase-advanced_level2.jsonl",
            "coinbase-advanced_market_trades.jsonl",
            "coinbase-advanced_ticker.jsonl",
        ]
        .iter()
        .flat_map(|f| corpus(f))
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m).unwrap();
            (v["sequence_num"].as_u64().unwrap(), m)
        })
        .collect();
        all.sort_by_key(|(n, _)| *n);
        let msgs: Vec<String> = all.into_iter().map(|(_, m)| m).collect();
        let f = findings(&msgs);
        let gaps: Vec<(u64, u64)> = f
            .iter()
            .map(|x| match x.3 {
                Finding::Gap { expected, got } => (expected, got),
                Finding::Backwards { .. } => panic!("{x:?}"),
            })
            .collect();
        assert_eq!(gaps, [(13, 14), (21, 22)]);
    }

    #[test]
    fn okx_and_deribit_links() {
        let okx = |seq: i64, prev: i64| {
            format!(
                r#"{{"arg":{{"channel":"books","instId":"BTC-USDT"}},"action":"{}","data":[{{"asks":[],"bids":[],"seqId":{seq},"prevSeqId":{prev}}}]}}"#,
                if prev < 0 { "snapshot" } else { "update" }
            )
        };
        // An unchanged book repeats its seqId with prevSeqId = seqId: that is no break.
        let msgs = vec![okx(100, -1), okx(107, 100), okx(107, 107), okx(120, 107)];
        assert_eq!(findings(&msgs), []);
        let msgs = vec![okx(100, -1), okx(107, 100), okx(130, 120)];
        let f = findings(&msgs);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].3,
            Finding::Gap {
                expected: 107,
                got: 120
            }
        );
        let deribit = |id: u64, prev: Option<u64>| match prev {
            Some(p) => format!(
                r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.ETH-PERPETUAL.100ms","data":{{"type":"change","change_id":{id},"prev_change_id":{p}}}}}}}"#
            ),
            None => format!(
                r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.ETH-PERPETUAL.100ms","data":{{"type":"snapshot","change_id":{id}}}}}}}"#
            ),
        };
        let msgs = vec![deribit(5, None), deribit(9, Some(5)), deribit(12, Some(9))];
        assert_eq!(findings(&msgs), []);
        let msgs = vec![deribit(5, None), deribit(12, Some(9))];
        assert_eq!(findings(&msgs).len(), 1);
    }

    #[test]
    fn gate_bitget_and_cryptocom_books_link_their_updates() {
        // Gate: U = previous u + 1, per channel and symbol (ccxt's quoted frames).
        let gate = |first: u64, last: u64| {
            format!(
                r#"{{"time":1650189272,"channel":"spot.order_book_update","event":"update","result":{{"t":1650189272515,"e":"depthUpdate","E":1650189272,"s":"GMT_USDT","U":{first},"u":{last},"b":[],"a":[]}}}}"#
            )
        };
        let msgs = vec![gate(100, 104), gate(105, 105), gate(106, 120)];
        assert_eq!(findings(&msgs), []);
        let f = findings(&[gate(100, 104), gate(107, 110)]);
        assert_eq!(
            f,
            [(
                1,
                Venue::Gate,
                "spot.order_book_update:GMT_USDT".to_owned(),
                Finding::Gap {
                    expected: 105,
                    got: 107
                }
            )]
        );
        // Bitget: seq increases; a snapshot restarts.
        let bitget = |action: &str, seq: u64| {
            format!(
                r#"{{"action":"{action}","arg":{{"instType":"USDT-FUTURES","channel":"books","instId":"BTCUSDT"}},"data":[{{"asks":[],"bids":[],"checksum":0,"seq":{seq},"ts":"1695716059516"}}],"ts":1695716059516}}"#
            )
        };
        let msgs = vec![
            bitget("snapshot", 50),
            bitget("update", 53),
            bitget("snapshot", 10),
            bitget("update", 11),
        ];
        assert_eq!(findings(&msgs), []);
        let f = findings(&[
            bitget("snapshot", 50),
            bitget("update", 53),
            bitget("update", 52),
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].1, Venue::Bitget);
        assert_eq!(f[0].2, "USDT-FUTURES/books:BTCUSDT");
        // Crypto.com: the book snapshot, then deltas whose pu is the previous u.
        let snapshot = |u: u64| {
            format!(
                r#"{{"id":-1,"method":"subscribe","code":0,"result":{{"instrument_name":"BTC_USDT","subscription":"book.BTC_USDT.50","channel":"book","depth":50,"data":[{{"asks":[],"bids":[],"t":1,"tt":1,"u":{u},"cs":0}}]}}}}"#
            )
        };
        let delta = |pu: u64, u: u64| {
            format!(
                r#"{{"id":-1,"method":"subscribe","code":0,"result":{{"instrument_name":"BTC_USDT","subscription":"book.BTC_USDT.50","channel":"book.update","depth":50,"data":[{{"update":{{"asks":[],"bids":[]}},"t":1,"tt":1,"u":{u},"pu":{pu},"cs":0}}]}}}}"#
            )
        };
        let msgs = vec![snapshot(100), delta(100, 130), delta(130, 131)];
        assert_eq!(findings(&msgs), []);
        let f = findings(&[snapshot(100), delta(100, 130), delta(140, 150)]);
        assert_eq!(
            f,
            [(
                2,
                Venue::Cryptocom,
                "book.BTC_USDT.50".to_owned(),
                Finding::Gap {
                    expected: 130,
                    got: 140
                }
            )]
        );
        // Their other data carries no sequence.
        assert_eq!(
            one(
                r#"{"time":1,"channel":"spot.book_ticker","event":"update","result":{"t":1,"u":9793320464,"s":"BTC_USDT","b":"1","B":"1","a":"1","A":"1"}}"#
            ),
            None
        );
        assert_eq!(
            one(
                r#"{"action":"snapshot","arg":{"instType":"SPOT","channel":"trade","instId":"BTCUSDT"},"data":[{"ts":"1","price":"1","size":"1","side":"buy","tradeId":"1"}],"ts":1}"#
            ),
            None
        );
    }

    #[test]
    fn bitfinex_sequence_numbers_run_over_every_channel_of_a_connection() {
        let msgs: Vec<String> = [
            r#"{"event":"conf","status":"OK","flags":196608}"#,
            "[17,[[65114,2,0.5],[65115,1,-0.3]],1]",
            "[18,\"hb\",2]",
            "[17,[65116,1,0.2],3]",
            "[17,\"cs\",-1285917431,4]",
            "[18,\"te\",[1680123456,1786310819680,0.004,65114],5]",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(findings(&msgs), []);
        assert_eq!(
            one("[18,\"hb\",2]").map(|p| (p.venue, p.step)),
            Some((Venue::Bitfinex, Step::Range { first: 2, last: 2 }))
        );
        // A message lost between 3 and 5.
        let mut lost = msgs.clone();
        lost.remove(4);
        assert_eq!(
            findings(&lost),
            [(
                4,
                Venue::Bitfinex,
                String::new(),
                Finding::Gap {
                    expected: 4,
                    got: 5
                }
            )]
        );
        // Without the flag nothing is numbered, checksums and Kraken v1 arrays included.
        for m in [
            "[17,[65116,1,0.2]]",
            "[17,\"cs\",1285917431]",
            "[17,\"hb\"]",
            "[17,\"te\",[1680123456,1786310819680,0.004,65114]]",
            r#"[336,{"a":["5541.3","1","1.0"]},"ticker","XBT/USD"]"#,
        ] {
            assert_eq!(one(m), None, "{m}");
        }
    }

    #[test]
    fn connections_are_independent() {
        let m = |n: u64| {
            let mut out = Vec::new();
            points(
                format!(r#"{{"channel":"heartbeats","sequence_num":{n}}}"#).as_bytes(),
                &mut out,
            );
            out.pop().unwrap()
        };
        let mut c = Checker::default();
        assert_eq!(c.observe(1, &m(1)), None);
        assert_eq!(c.observe(1, &m(2)), None);
        // A second connection has its own counter.
        assert_eq!(c.observe(2, &m(1)), None);
        assert_eq!(c.observe(1, &m(3)), None);
        c.forget_conn(1);
        assert_eq!(
            c.observe(1, &m(9)),
            None,
            "a forgotten connection starts afresh"
        );
        assert_eq!(
            c.observe(2, &m(4)),
            Some(Finding::Gap {
                expected: 2,
                got: 4
            })
        );
    }
}
