//! How each book channel of a preset starts, and the REST depth snapshot of the channels whose
//! feed sends differences only.
//!
//! A book channel's book comes either in the feed itself (a snapshot on subscribe and on every
//! reset: Bybit, OKX `books`, Kraken, Coinbase `level2`, Bitfinex, Deribit, BitMEX
//! `orderBookL2`, dYdX, Bitget `books`, Crypto.com), as full books in every message
//! (Hyperliquid `l2Book`, partial-depth streams), or from a REST snapshot that the differences
//! then continue (Binance `depth`, Bitstamp `diff_order_book`, Gate `order_book_update`, KuCoin
//! `level2`, MEXC `aggre.depth`). HTX `mbp.N` is the odd one: its start is asked for over the
//! WebSocket ([`BookStart::WsRequest`]). For REST starts the preset says how to ask for the
//! snapshot and how to tell whether it is recent enough for the first difference the
//! connection received; the recorder fetches it after that first difference and writes it into
//! the stream as a snapshot line.

use crate::net::venue::protocol::depth;

/// How a book channel's book starts.
#[derive(Clone, Copy, Debug)]
pub enum BookStart {
    /// The feed sends the book itself: a snapshot message first (and again after a reset),
    /// then updates.
    InFeed,
    /// The feed sends differences only; the book starts from a REST depth snapshot.
    Rest(&'static RestSnapshot),
    /// Every message is a whole book (top N levels): nothing to rebuild.
    Full,
    /// The feed sends differences only, and the book they start from is asked for over the
    /// same connection (HTX `req` on an `mbp.N` topic), which wsrec does not send: a recording
    /// of such a channel holds differences without their start.
    WsRequest,
}

/// A book channel of a preset and how its book starts.
#[derive(Clone, Copy, Debug)]
pub struct BookChannel {
    /// The channel as the preset lists it in `channels` (e.g. `depth@100ms`).
    pub channel: &'static str,
    /// How its book starts.
    pub start: BookStart,
    /// One sentence for `wsrec venues NAME`: what the book is and where it starts (which
    /// message is the snapshot, which field resets it, or which REST endpoint).
    pub note: &'static str,
}

/// The REST depth snapshot a difference channel starts from.
#[derive(Debug)]
pub struct RestSnapshot {
    /// The REST API's base URL (scheme and host, e.g. `https://api.binance.com`); a stream's
    /// `snapshot_url` replaces it (a relay or a test server).
    pub base: &'static str,
    /// The depth asked for by default (the venue's `limit`); a stream's `snapshot_depth`
    /// replaces it. 0: the endpoint takes no depth and answers the whole book (Bitstamp).
    pub limit: u32,
    /// The request URL for a symbol (as [`RestSnapshot::symbol`] gives it) at a depth, under a
    /// base URL.
    pub url: fn(base: &str, symbol: &str, limit: u32) -> String,
    /// The symbol to ask the REST API for, when `topic` is one of this channel's topics.
    pub symbol: fn(topic: &str) -> Option<String>,
    /// The first update a difference message covers (Binance `U`, Bitstamp `microtimestamp`).
    pub first_id: fn(message: &[u8]) -> Option<u64>,
    /// The update the snapshot is current to (Binance `lastUpdateId`, Bitstamp
    /// `microtimestamp`). A snapshot older than the first difference (by the venue's rule,
    /// [`RestSnapshot::stale`]) is fetched again.
    pub snapshot_id: fn(body: &[u8]) -> Option<u64>,
    /// The venue's rule for a snapshot too old for the first difference:
    /// [`RestSnapshot::too_old_covering`] for Binance (spot, USDⓈ-M, COIN-M) and Bitstamp,
    /// [`RestSnapshot::too_old`] for venues whose first difference may start right after the
    /// snapshot; ask through [`RestSnapshot::is_stale`].
    pub stale: fn(snapshot_id: u64, first_id: u64) -> bool,
    /// Where the procedure and the numbers come from.
    pub source: &'static str,
}

impl RestSnapshot {
    /// Whether a snapshot current to `snapshot_id` leaves a gap before a difference that starts
    /// at `first_id`: then the book cannot be continued from it, and it is fetched again. The
    /// rule where the first difference applied may start right after the snapshot
    /// (`U <= snapshot + 1 <= u`: Binance spot's rule until 2024, Gate's and KuCoin's today).
    pub fn too_old(snapshot_id: u64, first_id: u64) -> bool {
        snapshot_id.saturating_add(1) < first_id
    }

    /// The rule where a snapshot older than the first difference's start is fetched again
    /// (`snapshot < U`): Binance spot ("if the lastUpdateId from the snapshot is strictly less
    /// than the U from step 2, go back to step 3"), USDⓈ-M and COIN-M (the first event applied
    /// has `U <= lastUpdateId AND u >= lastUpdateId`), and Bitstamp (a time in µs: a snapshot
    /// taken before the first difference may miss changes made between them).
    pub fn too_old_covering(snapshot_id: u64, first_id: u64) -> bool {
        snapshot_id < first_id
    }

    /// Whether this venue's rule ([`RestSnapshot::stale`]) asks for a new snapshot: the one
    /// current to `snapshot_id` is older than the difference starting at `first_id`.
    pub fn is_stale(&self, snapshot_id: u64, first_id: u64) -> bool {
        (self.stale)(snapshot_id, first_id)
    }

    /// The request URL for `symbol` at the default depth under the default base.
    pub fn default_url(&self, symbol: &str) -> String {
        (self.url)(self.base, symbol, self.limit)
    }

    /// The default depth in words: `1000 levels`, or `the whole book`.
    fn depth_words(&self) -> String {
        match self.limit {
            0 => "the whole book".to_owned(),
            n => format!("{n} levels"),
        }
    }
}

impl BookStart {
    /// The kind in one word, for `--json`: `feed`, `rest`, `full` or `ws_request`.
    pub fn kind(&self) -> &'static str {
        match self {
            BookStart::InFeed => "feed",
            BookStart::Rest(_) => "rest",
            BookStart::Full => "full",
            BookStart::WsRequest => "ws_request",
        }
    }
}

impl BookChannel {
    /// One line for `wsrec venues NAME`: the channel, how its book starts, and the note.
    pub fn describe(&self) -> String {
        let how = match self.start {
            BookStart::InFeed => "snapshot in the feed".to_owned(),
            BookStart::Full => "full books (every message a whole book)".to_owned(),
            BookStart::WsRequest => {
                "differences only; the book is asked for over the connection, which wsrec does not do"
                    .to_owned()
            }
            BookStart::Rest(r) => format!(
                "REST snapshot after the first difference: {} ({} by default; procedure: {})",
                (r.url)(r.base, "SYMBOL", r.limit),
                r.depth_words(),
                r.source
            ),
        };
        format!("{}: {how}. {}", self.channel, self.note)
    }

    /// The book channel for `wsrec venues --json`.
    pub fn to_json(&self) -> serde_json::Value {
        let rest = match self.start {
            BookStart::Rest(r) => serde_json::json!({
                "base": r.base,
                "url_example": (r.url)(r.base, "SYMBOL", r.limit),
                "default_depth": r.limit,
                "source": r.source,
            }),
            _ => serde_json::Value::Null,
        };
        serde_json::json!({
            "channel": self.channel,
            "start": self.start.kind(),
            "note": self.note,
            "rest": rest,
        })
    }
}

/// `base` without a trailing `/`, so that a path can follow.
fn trim(base: &str) -> &str {
    base.trim_end_matches('/')
}

/// A Binance depth snapshot URL: `{base}{path}?symbol=S&limit=N`.
fn binance_url(base: &str, path: &str, symbol: &str, limit: u32) -> String {
    format!("{}{path}?symbol={symbol}&limit={limit}", trim(base))
}

/// What Binance's three depth snapshots share: the topics, the IDs and the rule (the first
/// difference applied covers `lastUpdateId`), limit 1000; each names its host, path and page.
const BINANCE: RestSnapshot = RestSnapshot {
    base: "",
    limit: 1000,
    url: |base, symbol, limit| binance_url(base, "/api/v3/depth", symbol, limit),
    symbol: depth::binance_symbol,
    first_id: depth::binance_first_id,
    snapshot_id: depth::binance_snapshot_id,
    stale: RestSnapshot::too_old_covering,
    source: "",
};

/// Binance spot diff depth (`depth`, `depth@100ms`): `GET /api/v3/depth`, limit 1000 (weight
/// 50 of 6,000 a minute; 5000 weighs 250).
pub static BINANCE_SPOT: RestSnapshot = RestSnapshot {
    base: "https://api.binance.com",
    source: "https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams#how-to-manage-a-local-order-book-correctly (buffer, note the first U, GET /api/v3/depth?symbol=BNBBTC&limit=5000; if lastUpdateId is strictly less than that U, fetch again; drop events with u <= lastUpdateId; the first left has lastUpdateId in [U;u])",
    ..BINANCE
};

/// Binance USDⓈ-M diff depth (`depth`, `depth@100ms`/`@250ms`/`@500ms`): `GET
/// /fapi/v1/depth`, limit 1000 (weight 20 of 2,400 a minute).
pub static BINANCE_USDM: RestSnapshot = RestSnapshot {
    base: "https://fapi.binance.com",
    url: |base, symbol, limit| binance_url(base, "/fapi/v1/depth", symbol, limit),
    source: "https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly (GET /fapi/v1/depth?symbol=BTCUSDT&limit=1000; drop events with u < lastUpdateId; the first event applied has U <= lastUpdateId AND u >= lastUpdateId; then each pu equals the previous u)",
    ..BINANCE
};

/// Binance COIN-M diff depth: `GET /dapi/v1/depth`, limit 1000 (weight 20 of 2,400 a minute).
pub static BINANCE_COINM: RestSnapshot = RestSnapshot {
    base: "https://dapi.binance.com",
    url: |base, symbol, limit| binance_url(base, "/dapi/v1/depth", symbol, limit),
    source: "https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly (GET /dapi/v1/depth?symbol=BTCUSD_200925&limit=1000; the first event applied has U <= lastUpdateId AND u >= lastUpdateId); weights: https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api/Order-Book (2 for 5-50, 5 for 100, 10 for 500, 20 for 1000)",
    ..BINANCE
};

/// Bitstamp `diff_order_book_PAIR`: `GET /api/v2/order_book/{pair}/`, the whole book, current
/// to its `microtimestamp`.
pub static BITSTAMP: RestSnapshot = RestSnapshot {
    base: "https://www.bitstamp.net",
    limit: 0,
    url: |base, symbol, _limit| format!("{}/api/v2/order_book/{symbol}/", trim(base)),
    symbol: depth::bitstamp_symbol,
    first_id: depth::bitstamp_first_id,
    snapshot_id: depth::bitstamp_snapshot_id,
    stale: RestSnapshot::too_old_covering,
    source: "https://www.bitstamp.net/websocket/v2/ (diff_order_book: changes only; a local book starts from the REST order book and applies the changes whose microtimestamp is after its own) and https://www.bitstamp.net/api/#tag/Order-book (GET /api/v2/order_book/{market_symbol}/: timestamp, microtimestamp, bids, asks); ccxt bitstamp watchOrderBook does the same",
};

/// Gate spot `spot.order_book_update`: `GET /api/v4/spot/order_book?with_id=true`, limit 100
/// (Gate's most), current to its `id`.
pub static GATE_SPOT: RestSnapshot = RestSnapshot {
    base: "https://api.gateio.ws",
    limit: 100,
    url: |base, symbol, limit| {
        format!(
            "{}/api/v4/spot/order_book?currency_pair={symbol}&limit={limit}&with_id=true",
            trim(base)
        )
    },
    symbol: depth::gate_spot_symbol,
    first_id: depth::gate_first_id,
    snapshot_id: depth::gate_snapshot_id,
    stale: RestSnapshot::too_old,
    source: "https://www.gate.com/docs/developers/apiv4/ws/en/ ('Changed order book levels': cache the notifications, GET /api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true and keep its id as baseID; start from the notification with U <= baseID+1 <= u; if baseID+1 < the first U, fetch again)",
};

/// Gate USDT-margined futures `futures.order_book_update`: `GET
/// /api/v4/futures/usdt/order_book?with_id=true`, limit 100, current to its `id`.
pub static GATE_FUTURES: RestSnapshot = RestSnapshot {
    url: |base, symbol, limit| {
        format!(
            "{}/api/v4/futures/usdt/order_book?contract={symbol}&limit={limit}&with_id=true",
            trim(base)
        )
    },
    symbol: depth::gate_futures_symbol,
    source: "https://www.gate.com/docs/developers/futures/ws/en/ ('Order book update' subscription, the same procedure: GET /api/v4/futures/usdt/order_book?contract=BTC_USDT&limit=100&with_id=true, start where U <= id+1 <= u)",
    ..GATE_SPOT
};

/// KuCoin spot `/market/level2`: the public `GET /api/v1/market/orderbook/level2_100` (20 or
/// 100 levels: the whole book needs an API key), current to its `sequence`.
pub static KUCOIN_SPOT: RestSnapshot = RestSnapshot {
    base: "https://api.kucoin.com",
    limit: 100,
    url: |base, symbol, limit| {
        format!(
            "{}/api/v1/market/orderbook/level2_{limit}?symbol={symbol}",
            trim(base)
        )
    },
    symbol: depth::kucoin_spot_symbol,
    first_id: depth::kucoin_spot_first_id,
    snapshot_id: depth::kucoin_sequence,
    stale: RestSnapshot::too_old,
    source: "https://www.kucoin.com/docs-new/ (WebSocket spot public channel 'Orderbook - Increment': cache the l2update messages, get the REST order book, drop changes up to its sequence, apply from sequenceStart <= sequence+1; REST 'Get Part OrderBook': level2_20 / level2_100, public; the full book needs an API key); crypto-rest-client asks level2_100 without a key",
};

/// KuCoin futures `/contractMarket/level2`: `GET /api/v1/level2/snapshot` (the whole book),
/// current to its `sequence`.
pub static KUCOIN_FUTURES: RestSnapshot = RestSnapshot {
    base: "https://api-futures.kucoin.com",
    limit: 0,
    url: |base, symbol, _limit| format!("{}/api/v1/level2/snapshot?symbol={symbol}", trim(base)),
    symbol: depth::kucoin_futures_symbol,
    first_id: depth::kucoin_sequence,
    snapshot_id: depth::kucoin_sequence,
    stale: RestSnapshot::too_old,
    source: "https://www.kucoin.com/docs-new/ (WebSocket futures public channel 'Orderbook - Increment': each message has one sequence, consecutive; start from the REST snapshot and apply the messages after its sequence; REST 'Get Full OrderBook': GET /api/v1/level2/snapshot, public); crypto-rest-client asks the same",
};

/// MEXC spot `aggre.depth`: `GET /api/v3/depth` (Binance's shape, current to its
/// `lastUpdateId`), limit 1000; the pushes are protobuf with `fromVersion`/`toVersion`.
pub static MEXC_SPOT: RestSnapshot = RestSnapshot {
    base: "https://api.mexc.com",
    limit: 1000,
    url: |base, symbol, limit| binance_url(base, "/api/v3/depth", symbol, limit),
    symbol: depth::mexc_symbol,
    first_id: depth::mexc_first_id,
    snapshot_id: depth::binance_snapshot_id,
    stale: RestSnapshot::too_old,
    source: "https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams (the aggregated diff depth stream; a local book starts from GET /api/v3/depth, Binance-shaped with lastUpdateId); field numbers: https://github.com/mexcdevelop/websocket-proto (PublicAggreDepthsV3Api: fromVersion 4, toVersion 5); consecutive pushes cover contiguous version ranges, so one starting at lastUpdateId+1 continues the snapshot (third-party measurements; the rule is not verified against MEXC's page)",
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The first line of a corpus file of real frames (tests/fixtures/corpus/) that holds `needle`.
    fn corpus_line(file: &str, needle: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/corpus/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{path} has no line with {needle}"))
            .to_owned()
    }

    /// Asserts the REST symbol `r` reads from each topic.
    fn symbols(r: &RestSnapshot, cases: &[(&str, Option<&str>)]) {
        for (topic, want) in cases {
            assert_eq!((r.symbol)(topic).as_deref(), *want, "{topic}");
        }
    }

    #[test]
    fn the_spot_rule_refetches_only_when_a_difference_is_missing_before_the_first() {
        // Gate, KuCoin: the first difference applied has U <= id + 1 <= u.
        assert!(!RestSnapshot::too_old(100, 101));
        assert!(!RestSnapshot::too_old(100, 90));
        assert!(RestSnapshot::too_old(100, 102));
    }

    #[test]
    fn the_covering_rule_refetches_a_snapshot_older_than_the_first_difference() {
        // Binance (spot since 2024, futures): lastUpdateId < U means fetch again.
        assert!(RestSnapshot::too_old_covering(100, 101));
        assert!(!RestSnapshot::too_old_covering(101, 101));
        assert!(!RestSnapshot::too_old_covering(150, 101));
        for r in [&BINANCE_SPOT, &BINANCE_USDM, &BINANCE_COINM, &BITSTAMP] {
            assert!(r.is_stale(100, 101), "{}", r.base);
            assert!(!r.is_stale(101, 101), "{}", r.base);
        }
        for r in [&GATE_SPOT, &GATE_FUTURES, &KUCOIN_SPOT, &KUCOIN_FUTURES] {
            assert!(!r.is_stale(100, 101), "{}", r.base);
            assert!(r.is_stale(100, 102), "{}", r.base);
        }
    }

    #[test]
    fn binance_diff_topics_name_their_rest_symbol_and_others_none() {
        for r in [&BINANCE_SPOT, &BINANCE_USDM, &BINANCE_COINM] {
            let symbol = r.symbol;
            assert_eq!(symbol("btcusdt@depth@100ms").as_deref(), Some("BTCUSDT"));
            assert_eq!(symbol("btcusdt@depth").as_deref(), Some("BTCUSDT"));
            assert_eq!(symbol("ethusdt@depth@250ms").as_deref(), Some("ETHUSDT"));
            assert_eq!(symbol("btcusdt@depth@500ms").as_deref(), Some("BTCUSDT"));
            assert_eq!(
                symbol("btcusd_perp@depth@100ms").as_deref(),
                Some("BTCUSD_PERP")
            );
            for other in [
                "btcusdt@depth20@100ms",
                "btcusdt@depth5",
                "btcusdt@aggTrade",
                "btcusdt@bookTicker",
                "btcusdt@depth@fast",
                "btcusdt@depth@ms",
                "!bookTicker",
                "@depth",
                "btcusdt",
            ] {
                assert_eq!(symbol(other), None, "{other}");
            }
        }
    }

    #[test]
    fn binance_first_ids_are_read_from_real_frames_wrapped_or_not() {
        // Real combined-stream frames: {"stream":..,"data":{..,"U":..}}.
        let spot = corpus_line("binance-spot_depthUpdate.jsonl", "depthUpdate");
        let usdm = corpus_line("binance-usdm_depthUpdate.jsonl", "depthUpdate");
        for (line, r) in [(&spot, &BINANCE_SPOT), (&usdm, &BINANCE_USDM)] {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let want = v["data"]["U"].as_u64().unwrap();
            assert_eq!((r.first_id)(line.as_bytes()), Some(want), "{line}");
            // The same event on a raw stream (/ws/..): not wrapped.
            let raw = v["data"].to_string();
            assert_eq!((r.first_id)(raw.as_bytes()), Some(want), "{raw}");
        }
        assert_eq!((BINANCE_SPOT.first_id)(spot.as_bytes()), Some(499_869_750));
        assert_eq!(
            (BINANCE_USDM.first_id)(usdm.as_bytes()),
            Some(600_859_599_090),
            "U, not u or pu"
        );
        // Not a difference: no first ID.
        assert_eq!((BINANCE_SPOT.first_id)(br#"{"result":null,"id":1}"#), None);
        assert_eq!((BINANCE_SPOT.first_id)(br#"{"e":"depthUpdate","U":"#), None);
    }

    #[test]
    fn binance_snapshot_ids_are_read_from_depth_bodies() {
        // GET /api/v3/depth and /fapi/v1/depth answers, as Binance documents them.
        let spot = br#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}"#;
        let futures = br#"{"lastUpdateId": 1027024, "E": 1589436922972, "T": 1589436922959, "bids": [["4.00000000", "431.00000000"]], "asks": [["4.00000200", "12.00000000"]]}"#;
        assert_eq!((BINANCE_SPOT.snapshot_id)(spot), Some(1_027_024));
        assert_eq!((BINANCE_USDM.snapshot_id)(futures), Some(1_027_024));
        assert_eq!((BINANCE_COINM.snapshot_id)(futures), Some(1_027_024));
        assert_eq!(
            (BINANCE_SPOT.snapshot_id)(br#"{"code":-1121,"msg":"Invalid symbol."}"#),
            None
        );
    }

    #[test]
    fn rest_urls_follow_the_base_symbol_and_depth() {
        assert_eq!(
            BINANCE_SPOT.default_url("BTCUSDT"),
            "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
        );
        assert_eq!(
            BINANCE_USDM.default_url("BTCUSDT"),
            "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
        );
        assert_eq!(
            (BINANCE_COINM.url)("http://127.0.0.1:9/", "BTCUSD_PERP", 500),
            "http://127.0.0.1:9/dapi/v1/depth?symbol=BTCUSD_PERP&limit=500",
            "a test server's base, a trailing slash dropped"
        );
        assert_eq!(
            BITSTAMP.default_url("btcusd"),
            "https://www.bitstamp.net/api/v2/order_book/btcusd/"
        );
        assert_eq!(
            GATE_SPOT.default_url("BTC_USDT"),
            "https://api.gateio.ws/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true"
        );
        assert_eq!(
            GATE_FUTURES.default_url("BTC_USDT"),
            "https://api.gateio.ws/api/v4/futures/usdt/order_book?contract=BTC_USDT&limit=100&with_id=true"
        );
        assert_eq!(
            KUCOIN_SPOT.default_url("BTC-USDT"),
            "https://api.kucoin.com/api/v1/market/orderbook/level2_100?symbol=BTC-USDT"
        );
        assert_eq!(
            KUCOIN_FUTURES.default_url("XBTUSDTM"),
            "https://api-futures.kucoin.com/api/v1/level2/snapshot?symbol=XBTUSDTM"
        );
        // Every REST host with a documented weight budget is one the lead's table knows.
        for r in [&BINANCE_SPOT, &BINANCE_USDM] {
            let host = r.base.trim_start_matches("https://");
            assert!(super::super::rest::rest_host(host).is_some(), "{host}");
        }
    }

    #[test]
    fn bitstamp_reads_real_diff_frames_and_order_book_bodies() {
        let line = corpus_line("bitstamp_diff_order_book.jsonl", r#""event":"data""#);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let want: u64 = v["data"]["microtimestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!((BITSTAMP.first_id)(line.as_bytes()), Some(want));
        assert_eq!(want, 1_641_343_691_244_908);
        let topic = v["channel"].as_str().unwrap();
        assert_eq!((BITSTAMP.symbol)(topic).as_deref(), Some("bateur"));
        // GET /api/v2/order_book/{pair}/: microtimestamp is a string of digits.
        let body = br#"{"timestamp": "1641343692", "microtimestamp": "1641343692001234", "bids": [["1.15979", "993.02588113"]], "asks": [["1.16601", "1200.00000000"]]}"#;
        assert_eq!((BITSTAMP.snapshot_id)(body), Some(1_641_343_692_001_234));
        for other in [
            "order_book_btcusd",
            "detail_order_book_btcusd",
            "live_trades_btcusd",
            "diff_order_book_",
        ] {
            assert_eq!((BITSTAMP.symbol)(other), None, "{other}");
        }
        // The subscription acknowledgement is no difference.
        let ack = corpus_line("bitstamp_diff_order_book.jsonl", "subscription_succeeded");
        assert_eq!((BITSTAMP.first_id)(ack.as_bytes()), None);
    }

    #[test]
    fn gate_reads_update_events_and_order_book_ids() {
        // Shapes from Gate's WebSocket v4 and REST v4 pages.
        let spot = br#"{"time":1606294781,"time_ms":1606294781236,"channel":"spot.order_book_update","event":"update","result":{"t":1606294781123,"e":"depthUpdate","E":1606294781,"s":"BTC_USDT","U":48776301,"u":48776306,"b":[["19137.74","0.0001"]],"a":[["19137.75","0.6135"]]}}"#;
        let futures = br#"{"time":1615366381,"time_ms":1615366381123,"channel":"futures.order_book_update","event":"update","result":{"t":1615366381417,"s":"BTC_USD","U":2517661101,"u":2517661113,"b":[{"p":"54672.1","s":0}],"a":[{"p":"54743.6","s":0}]}}"#;
        assert_eq!((GATE_SPOT.first_id)(spot), Some(48_776_301));
        assert_eq!((GATE_FUTURES.first_id)(futures), Some(2_517_661_101));
        let body = br#"{"id":123456,"current":1623898993123,"update":1623898993121,"asks":[["1.52","1.151"]],"bids":[["1.17","201.863"]]}"#;
        assert_eq!((GATE_SPOT.snapshot_id)(body), Some(123_456));
        symbols(
            &GATE_SPOT,
            &[
                ("spot.order_book_update:BTC_USDT:100ms", Some("BTC_USDT")),
                ("spot.order_book:BTC_USDT:20:100ms", None),
                ("futures.order_book_update:BTC_USDT:100ms", None),
            ],
        );
        symbols(
            &GATE_FUTURES,
            &[
                (
                    "futures.order_book_update:BTC_USDT:100ms:100",
                    Some("BTC_USDT"),
                ),
                ("spot.order_book_update:BTC_USDT:100ms", None),
            ],
        );
    }

    #[test]
    fn kucoin_reads_sequences_of_messages_and_snapshots() {
        // The spot frame tests/venues/kucoin.rs and the protocol tests use.
        let spot = br#"{"topic":"/market/level2:BTC-USDT","type":"message","subject":"trade.l2update","data":{"changes":{"asks":[["67993.3","1.21427407","11068004227252225"]],"bids":[]},"sequenceEnd":11068004227252226,"sequenceStart":11068004227252225,"symbol":"BTC-USDT","time":1729816425625}}"#;
        assert_eq!((KUCOIN_SPOT.first_id)(spot), Some(11_068_004_227_252_225));
        let spot_book = br#"{"code":"200000","data":{"time":1729816425625,"sequence":"11068004227252224","bids":[["67993.2","0.5"]],"asks":[["67993.3","1.2"]]}}"#;
        assert_eq!(
            (KUCOIN_SPOT.snapshot_id)(spot_book),
            Some(11_068_004_227_252_224)
        );
        let futures = br#"{"topic":"/contractMarket/level2:XBTUSDTM","type":"message","subject":"level2","sn":1709400450243,"data":{"sequence":1709400450243,"change":"90631.2,sell,2","timestamp":1709400450243}}"#;
        assert_eq!((KUCOIN_FUTURES.first_id)(futures), Some(1_709_400_450_243));
        let futures_book = br#"{"code":"200000","data":{"symbol":"XBTUSDTM","sequence":1709400450240,"asks":[[90631.2,2]],"bids":[[90631.1,5]],"ts":1709400450243000000}}"#;
        assert_eq!(
            (KUCOIN_FUTURES.snapshot_id)(futures_book),
            Some(1_709_400_450_240)
        );
        symbols(
            &KUCOIN_SPOT,
            &[
                ("/market/level2:BTC-USDT", Some("BTC-USDT")),
                ("/market/level2:BTC-USDT,ETH-USDT", None),
                ("/spotMarket/level2Depth5:BTC-USDT", None),
            ],
        );
        symbols(
            &KUCOIN_FUTURES,
            &[
                ("/contractMarket/level2:XBTUSDTM", Some("XBTUSDTM")),
                ("/contractMarket/level2Depth50:XBTUSDTM", None),
            ],
        );
    }

    /// An `aggre.depth` push as MEXC frames it (`PushDataV3ApiWrapper` with a
    /// `PublicAggreDepthsV3Api` body), the field numbers of MEXC's `.proto` files.
    #[derive(Clone, PartialEq, prost::Message)]
    struct MexcPush {
        #[prost(string, tag = "1")]
        channel: String,
        #[prost(string, optional, tag = "3")]
        symbol: Option<String>,
        #[prost(message, optional, tag = "313")]
        depths: Option<MexcDepths>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct MexcDepths {
        #[prost(message, repeated, tag = "1")]
        asks: Vec<MexcLevel>,
        #[prost(string, tag = "3")]
        event_type: String,
        #[prost(string, tag = "4")]
        from_version: String,
        #[prost(string, tag = "5")]
        to_version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct MexcLevel {
        #[prost(string, tag = "1")]
        price: String,
        #[prost(string, tag = "2")]
        quantity: String,
    }

    #[test]
    fn mexc_reads_the_first_version_of_protobuf_pushes() {
        let topic = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT";
        let push = MexcPush {
            channel: topic.to_owned(),
            symbol: Some("BTCUSDT".to_owned()),
            depths: Some(MexcDepths {
                asks: vec![MexcLevel {
                    price: "92877.58".to_owned(),
                    quantity: "0.00000000".to_owned(),
                }],
                event_type: "spot@public.aggre.depth.v3.api.pb@100ms".to_owned(),
                from_version: "36913293511".to_owned(),
                to_version: "36913293514".to_owned(),
            }),
        };
        let frame = prost::Message::encode_to_vec(&push);
        assert_eq!((MEXC_SPOT.first_id)(&frame), Some(36_913_293_511));
        // A JSON reply or a push of another body has no version.
        assert_eq!(
            (MEXC_SPOT.first_id)(
                br#"{"id":0,"code":0,"msg":"spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"}"#
            ),
            None
        );
        let other = MexcPush {
            depths: None,
            ..push
        };
        assert_eq!(
            (MEXC_SPOT.first_id)(&prost::Message::encode_to_vec(&other)),
            None
        );
        assert_eq!((MEXC_SPOT.symbol)(topic).as_deref(), Some("BTCUSDT"));
        assert_eq!(
            (MEXC_SPOT.symbol)("spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"),
            None
        );
        assert_eq!(
            (MEXC_SPOT.symbol)("spot@public.limit.depth.v3.api.pb@BTCUSDT@5"),
            None
        );
        assert_eq!(
            MEXC_SPOT.default_url("BTCUSDT"),
            "https://api.mexc.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
        );
        assert_eq!(
            (MEXC_SPOT.snapshot_id)(
                br#"{"lastUpdateId":36913293512,"bids":[["92877.57","0.1"]],"asks":[]}"#
            ),
            Some(36_913_293_512)
        );
        assert!(!MEXC_SPOT.is_stale(36_913_293_510, 36_913_293_511));
        assert!(MEXC_SPOT.is_stale(36_913_293_509, 36_913_293_511));
    }

    #[test]
    fn every_book_channel_is_one_of_its_presets_channels_and_rest_ones_read_its_example() {
        for p in crate::net::venue::PRESETS {
            for b in p.books {
                assert!(
                    p.channels.contains(&b.channel),
                    "{}: book channel {} is not in its channels",
                    p.name,
                    b.channel
                );
                assert!(b.note.ends_with('.'), "{}: {}", p.name, b.note);
                if let BookStart::Rest(r) = b.start {
                    assert!(r.source.starts_with("https://"), "{}", p.name);
                    // The preset's example topics include one of this channel, which names
                    // its REST symbol.
                    assert!(
                        p.example.split(", ").any(|t| (r.symbol)(t).is_some()),
                        "{}: no example topic of {} names a REST symbol ({})",
                        p.name,
                        b.channel,
                        p.example
                    );
                }
            }
        }
    }
}
