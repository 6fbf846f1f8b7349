//! The preset table: each venue's URL, keepalive, lifetime and limits.
//!
//! Sources: the venues' API documentation (keepalive rules, idle cuts, connection lifetimes, rate
//! limits), cited next to the facts and listed in each preset's `sources` (official pages first,
//! then maintained clients), which `wsrec venues NAME` shows. Where a venue documents no limit,
//! the figure here is a conservative choice and says so in its note.

use std::time::Duration;

use super::Family;
use super::book::{self, BookChannel, BookStart, RestSnapshot};
use super::token::PreConnect;

/// How a preset keeps its connections alive and decides they are dead.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    /// Protocol ping interval (`None`: no protocol pings).
    pub ping_interval: Option<Duration>,
    /// Deadline for a pong or the app-level reply.
    pub pong_timeout: Duration,
    /// App-level ping text.
    pub app_ping: Option<&'static str>,
    /// App-level ping interval.
    pub app_ping_interval: Option<Duration>,
    /// Text that marks the app-level reply.
    pub app_pong_contains: Option<&'static str>,
    /// No message for this long: reconnect. Every message counts, heartbeats and pongs included.
    pub silence_timeout: Option<Duration>,
}

impl Keepalive {
    /// One line for `wsrec venues`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(p), Some(every)) = (self.app_ping, self.app_ping_interval) {
            parts.push(format!(
                "sends {p} every {}",
                humantime::format_duration(every)
            ));
        }
        if let Some(every) = self.ping_interval {
            parts.push(format!(
                "protocol ping every {}",
                humantime::format_duration(every)
            ));
        }
        parts.push(format!(
            "reply within {}",
            humantime::format_duration(self.pong_timeout)
        ));
        match self.silence_timeout {
            Some(d) => parts.push(format!(
                "reconnects after {} without a message",
                humantime::format_duration(d)
            )),
            None => parts.push("quiet feeds are fine (liveness by ping replies)".to_owned()),
        }
        parts.join("; ")
    }
}

/// How subscriptions are spread and paced.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most topics on one connection.
    pub topics_per_connection: usize,
    /// Most topics in one subscribe message.
    pub topics_per_message: usize,
    /// Least time between two connection attempts to the venue (whole process).
    pub connect_interval: Duration,
    /// Least time between two subscribe messages to the venue (whole process).
    pub subscribe_interval: Duration,
    /// How long a new connection waits before its first subscribe message (Crypto.com asks
    /// for 1 s, as its rate limits count per calendar second); zero for most venues.
    pub subscribe_after_connect: Duration,
}

/// One venue preset.
#[derive(Debug)]
pub struct Preset {
    /// Name used in `venue = "…"` and `wsrec record NAME:topics`.
    pub name: &'static str,
    /// Human name.
    pub title: &'static str,
    /// Protocol family.
    pub family: Family,
    /// Default URL.
    pub url: &'static str,
    /// Channels, for `wsrec venues`.
    pub channels: &'static [&'static str],
    /// Example topics.
    pub example: &'static str,
    /// Keepalive and liveness.
    pub keepalive: Keepalive,
    /// Planned make-before-break reconnect, before the venue's own cut.
    pub max_connection_age: Option<Duration>,
    /// Limits.
    pub limits: Limits,
    /// Builds a topic from a channel and a symbol (`channels` × `symbols` in the config).
    pub combine: fn(&str, &str) -> String,
    /// The URL a topic is served on, given the preset's URL.
    pub route: fn(&str, &str) -> String,
    /// What else to know.
    pub notes: &'static [&'static str],
    /// Where the facts above come from: the venue's official documentation pages first, then
    /// maintained clients and reports (`wsrec venues NAME` and `--json` show them).
    pub sources: &'static [&'static str],
    /// A REST call before every connect that yields the URL to dial (KuCoin's connect token),
    /// if the venue needs one ([`super::token`]).
    pub pre_connect: Option<super::token::PreConnect>,
    /// The preset's book channels and how each book starts ([`super::book`]).
    pub books: &'static [super::book::BookChannel],
}

impl Preset {
    /// The REST depth snapshot of the preset's first book channel that starts from one (the
    /// preset's channels that do share one REST API).
    pub fn rest_snapshot(&self) -> Option<&'static super::book::RestSnapshot> {
        self.books.iter().find_map(|b| match b.start {
            super::book::BookStart::Rest(r) => Some(r),
            _ => None,
        })
    }

    /// The REST depth snapshot for `topic`, when it is a topic of a channel that starts from
    /// one, with the symbol to ask for.
    pub fn rest_snapshot_for(
        &self,
        topic: &str,
    ) -> Option<(&'static super::book::RestSnapshot, String)> {
        self.books.iter().find_map(|b| match b.start {
            super::book::BookStart::Rest(r) => (r.symbol)(topic).map(|s| (r, s)),
            _ => None,
        })
    }
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// The planned replacement for a venue that ends every connection after 24 hours: half an hour
/// before its cut, make-before-break.
const BEFORE_A_DAY: Option<Duration> = Some(secs(23 * 3600 + 1800));

fn same_url(url: &str, _topic: &str) -> String {
    url.to_owned()
}

fn dot(channel: &str, symbol: &str) -> String {
    format!("{channel}.{symbol}")
}

fn colon(channel: &str, symbol: &str) -> String {
    format!("{channel}:{symbol}")
}

fn binance(channel: &str, symbol: &str) -> String {
    format!("{}@{channel}", symbol.to_ascii_lowercase())
}

fn bitstamp(channel: &str, symbol: &str) -> String {
    format!(
        "{}_{}",
        channel.trim_end_matches('_'),
        symbol.to_ascii_lowercase()
    )
}

/// Bitfinex candles are keyed `trade:TIMEFRAME:SYMBOL`: the channel `candles` alone gives the
/// 1-minute candles of the symbol; `candles:trade:5m` (or any key prefix) is used as given.
fn bitfinex(channel: &str, symbol: &str) -> String {
    if channel == "candles" {
        format!("candles:trade:1m:{symbol}")
    } else {
        colon(channel, symbol)
    }
}

fn deribit(channel: &str, symbol: &str) -> String {
    // `book.none.10.100ms`-style channels carry their own suffix after the instrument.
    match channel.split_once('.') {
        Some((name, rest)) => format!("{name}.{symbol}.{rest}"),
        None => format!("{channel}.{symbol}.100ms"),
    }
}

/// KuCoin topics are `channel:SYMBOL`; candle channels carry their interval after `_`
/// (`/market/candles_1min` gives `/market/candles:BTC-USDT_1min`, KuCoin's own spelling).
fn kucoin(channel: &str, symbol: &str) -> String {
    match channel.rsplit_once('_') {
        Some((base, interval)) if base.ends_with("andles") || base.ends_with("Candle") => {
            format!("{base}:{symbol}_{interval}")
        }
        _ => colon(channel, symbol),
    }
}

/// dYdX topics are `channel:ID`; candle channels carry their resolution after a dot
/// (`v4_candles.1MIN` gives `v4_candles:BTC-USD/1MIN`, the indexer's id), and the market-wide
/// channels (`v4_markets`, `v4_block_height`) take no id.
fn dydx(channel: &str, symbol: &str) -> String {
    if matches!(channel, "v4_markets" | "v4_block_height") {
        return channel.to_owned();
    }
    match channel.split_once('.') {
        Some((base, resolution)) => format!("{base}:{symbol}/{resolution}"),
        None => colon(channel, symbol),
    }
}

/// KuCoin's keepalive: its JSON ping every `pingInterval` of the token answer (18 s; wsrec
/// follows a shorter one it is given), answered with a pong.
const KUCOIN_KEEPALIVE: Keepalive = Keepalive {
    ping_interval: None,
    pong_timeout: secs(10),
    app_ping: Some(r#"{"id":"1","type":"ping"}"#),
    app_ping_interval: Some(secs(18)),
    app_pong_contains: Some(r#""type":"pong""#),
    silence_timeout: Some(secs(60)),
};

/// KuCoin's limits: 100 symbols per subscribe message (one channel each), 300 topics per
/// connection, 100 messages from the client per 10 s per connection (subscribe messages 200 ms
/// apart, at most 50 per 10 s, leave room for the pings).
const KUCOIN_LIMITS: Limits = Limits {
    subscribe_after_connect: Duration::ZERO,
    topics_per_connection: 300,
    topics_per_message: 100,
    connect_interval: ms(500),
    subscribe_interval: ms(200),
};

const KUCOIN_NOTES: &[&str] = &[
    "Before every connect (reconnects and planned replacements too) wsrec POSTs the bullet-public endpoint (token_url) for a connect token and the server to dial; the token shows only masked (token=***). A failed token request is a failed connect attempt, retried with backoff.",
    "KuCoin wants a JSON ping every pingInterval of the token answer (18 s): wsrec pings that often, or more often if the preset says so.",
    "Tokens last 24 h and KuCoin ends connections after 24 h: wsrec replaces them after 23 h 30 min, make-before-break, with a fresh token.",
    "Up to 100 symbols per subscribe message (one channel each), 300 topics per connection (KuCoin's spot figure, used for futures too), 100 client messages per 10 s: subscribe messages go 200 ms apart; past a limit KuCoin answers error 509.",
    "An error naming the token (\"token is expired\") triggers a reconnect with a fresh token.",
    "Candle channels carry the interval: /market/candles_1min with symbols gives /market/candles:BTC-USDT_1min.",
    "This is KuCoin's classic WebSocket API; the Unified (Pro) API's token-less push servers are not used.",
];

/// KuCoin's sources: the WebSocket introduction (token, welcome, ping, subscribe, ack), the
/// public token page, the rate limits (public REST pool, which the token request draws on),
/// then maintained clients (ccxt: the token answer's ping interval and `token is expired`;
/// crypto-ws-client: 100 topics per message and 100 messages per 10 s; a ccxt issue quoting the
/// rate-limit page's "300 topics per connection" for spot and its 509 error).
const KUCOIN_SOURCES: &[&str] = &[
    "https://www.kucoin.com/docs-new/websocket-api/base-info/introduction",
    "https://www.kucoin.com/docs-new/websocket-api/base-info/get-public-token-spot-margin",
    "https://www.kucoin.com/docs-new/websocket-api/base-info/get-public-token-futures",
    "https://www.kucoin.com/docs-new/rate-limit",
    "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/kucoin.ts",
    "https://docs.rs/crate/crypto-ws-client/latest/source/src/clients/kucoin/utils.rs",
    "https://github.com/ccxt/ccxt/issues/25450",
];

/// Binance USDⓈ-M routes streams by kind since 2026-04-23: the high-frequency ones (`depth*`,
/// `rpiDepth*`, `bookTicker`, `trade`, and `!bookTicker` for all symbols) on `/public`, the
/// others (`aggTrade`, `markPrice`, `kline_*`, `ticker`, `forceOrder`, `!forceOrder@arr`,
/// `!markPrice@arr`, …) on `/market`; on the wrong path a stream is acknowledged and then
/// silent. Sources: Binance's "Important WebSocket Change Notice" and each stream's "URL PATH"
/// (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice),
/// ccxt `binance` pro `getFutureWsCategory` (depth, rpiDepth, bookTicker, trade → public).
fn binance_usdm_route(url: &str, topic: &str) -> String {
    // The stream's kind: `depth20` in `btcusdt@depth20@100ms`, `forceOrder` in `!forceOrder@arr`.
    let name = match topic.strip_prefix('!') {
        Some(all_market) => all_market,
        None => topic.split_once('@').map_or(topic, |(_, c)| c),
    };
    let kind = name.split('@').next().unwrap_or(name);
    let public = kind.starts_with("depth")
        || kind.starts_with("rpiDepth")
        || kind == "bookTicker"
        || kind == "trade";
    let base = url.trim_end_matches("/stream").trim_end_matches("/market");
    format!("{base}/{}/stream", if public { "public" } else { "market" })
}

/// OKX serves candles of every kind (`candle*`, `mark-price-candle*`, `index-candle*`),
/// `trades-all` and the public block-trading channels on `/business`, the rest on `/public`
/// (each channel's "URL Path" in https://www.okx.com/docs-v5/en/#public-data-websocket; the
/// move: https://www.okx.com/help/changes-to-v5-api-websocket-subscription-parameter-and-url).
fn okx_route(url: &str, topic: &str) -> String {
    let channel = topic.split_once(':').map_or(topic, |(c, _)| c);
    let business = channel.contains("candle")
        || matches!(
            channel,
            "trades-all" | "public-block-trades" | "block-tickers"
        );
    if business {
        url.replace("/ws/v5/public", "/ws/v5/business")
    } else {
        url.to_owned()
    }
}

/// Bybit options: trades are subscribed per base coin (`publicTrade.BTC`, "option uses
/// baseCoin", https://bybit-exchange.github.io/docs/v5/websocket/public/trade), the other
/// channels per option symbol (`orderbook.25.BTC-27DEC26-100000-C`); a symbol given for
/// `publicTrade` is cut to its base coin, so `channels` × option `symbols` gives the right topics.
fn bybit_option(channel: &str, symbol: &str) -> String {
    if channel == "publicTrade" {
        let base = symbol.split('-').next().unwrap_or(symbol);
        dot(channel, base)
    } else {
        dot(channel, symbol)
    }
}

const BYBIT_KEEPALIVE: Keepalive = Keepalive {
    ping_interval: None,
    pong_timeout: secs(10),
    app_ping: Some(r#"{"op":"ping"}"#),
    app_ping_interval: Some(secs(20)),
    app_pong_contains: Some(r#""pong""#),
    silence_timeout: Some(secs(60)),
};

/// Binance's server pings (spot every 20 s, USDⓈ-M every 3 min) are answered; wsrec pings too,
/// every 30 s, so a dead connection shows within 40 s; no silence limit (quiet symbols).
const BINANCE_KEEPALIVE: Keepalive = Keepalive {
    ping_interval: Some(secs(30)),
    pong_timeout: secs(10),
    app_ping: None,
    app_ping_interval: None,
    app_pong_contains: None,
    silence_timeout: None,
};

const BYBIT_LIMITS: Limits = Limits {
    topics_per_connection: 100,
    topics_per_message: 10,
    connect_interval: ms(200),
    subscribe_interval: ms(100),
    subscribe_after_connect: Duration::ZERO,
};

/// Bybit derivatives (linear, inverse) channels; `allLiquidation` stays last (see
/// [`BYBIT_SPOT_CHANNELS`]).
const BYBIT_CHANNELS: &[&str] = &[
    "publicTrade",
    "orderbook.1",
    "orderbook.50",
    "orderbook.200",
    "orderbook.1000",
    "tickers",
    "kline.1",
    "allLiquidation",
];

/// Bybit spot channels: the derivatives ones without `allLiquidation`, which covers USDT, USDC
/// and inverse contracts only (https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation).
const BYBIT_SPOT_CHANNELS: &[&str] = BYBIT_CHANNELS.split_at(BYBIT_CHANNELS.len() - 1).0;

const BYBIT_NOTES: &[&str] = &[
    "Bybit cuts a connection after about 10 minutes without a JSON ping (protocol pings do not count).",
    "10 topics per subscribe message (the spot limit); 100 per connection is a conservative choice.",
];

/// Bybit's sources: the WebSocket IP limit (see [`BUDGETS`]), then what spot lacks.
const BYBIT_SOURCES: &[&str] = &[
    "https://bybit-exchange.github.io/docs/v5/rate-limit",
    "https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation",
];

/// Channels of Binance's futures (USDⓈ-M and COIN-M name their streams alike).
const BINANCE_FUTURES_CHANNELS: &[&str] = &[
    "aggTrade",
    "markPrice@1s",
    "bookTicker",
    "depth@100ms",
    "depth20@100ms",
    "kline_1m",
    "forceOrder",
    "ticker",
];

const BINANCE_NOTES_SPOT: &[&str] = &[
    "The server pings every 20 s and closes connections after 24 h; wsrec replaces them after 23 h 30 min, make-before-break.",
    "Streams go in the connection URL (/stream?streams=a/b/c, no subscribe message) up to a 4 KiB URL; the rest of a connection's streams are subscribed 600 ms apart, as Binance closes connections past 5 incoming messages per second (pings and pongs included) and bans IPs that keep doing it.",
    "serverShutdown events trigger a make-before-break reconnect.",
];

const BINANCE_NOTES_USDM: &[&str] = &[
    "Streams go to the path that serves them (since 2026-04-23): depth*, rpiDepth*, bookTicker, trade and !bookTicker to /public, the others (aggTrade, markPrice, kline_*, ticker, forceOrder, !forceOrder@arr, !markPrice@arr, ...) to /market; on the wrong path a stream stays silent, which wsrec reports.",
    "All-market streams are written as Binance names them, e.g. !forceOrder@arr, !markPrice@arr@1s.",
    "The server pings every 3 min and closes connections after 24 h; wsrec replaces them after 23 h 30 min.",
    "Streams go in the connection URL up to a 4 KiB URL; the rest are subscribed 250 ms apart (10 incoming messages per second, pings and pongs included).",
];

/// HTX spot topics: `market.SYMBOL.CHANNEL`, the symbol lowercase as HTX spot writes it
/// (`market.btcusdt.trade.detail`).
fn htx_spot(channel: &str, symbol: &str) -> String {
    format!("market.{}.{channel}", symbol.to_ascii_lowercase())
}

/// HTX swap topics: `market.CONTRACT.CHANNEL`, the contract code as given (`BTC-USDT`).
fn htx_swap(channel: &str, symbol: &str) -> String {
    format!("market.{symbol}.{channel}")
}

/// HTX spot serves the incremental order book (`market.SYMBOL.mbp.LEVELS`) on `/feed`, the
/// rest on `/ws` (ccxt `htx` pro: `getUrlByMarketType(…, isFeed)` for every spot `mbp`
/// subscription).
fn htx_spot_route(url: &str, topic: &str) -> String {
    let mut parts = topic.split('.');
    if parts.nth(2) == Some("mbp") {
        url.trim_end_matches("/ws").to_owned() + "/feed"
    } else {
        url.to_owned()
    }
}

/// HTX's server pings every 5 s and closes a connection after two unanswered: wsrec answers
/// each (the family's `{"pong":N}` reply) and sends none of its own; 20 s without any frame
/// (four missed server pings) means the connection is dead.
const HTX_KEEPALIVE: Keepalive = Keepalive {
    ping_interval: None,
    pong_timeout: secs(10),
    app_ping: None,
    app_ping_interval: None,
    app_pong_contains: None,
    silence_timeout: Some(secs(20)),
};

/// HTX documents no per-connection topic count or per-IP connect limit for market data that
/// could be found; these are conservative choices.
const HTX_LIMITS: Limits = Limits {
    topics_per_connection: 50,
    topics_per_message: 1,
    connect_interval: secs(1),
    subscribe_interval: ms(200),
    subscribe_after_connect: Duration::ZERO,
};

const HTX_NOTES: &[&str] = &[
    "Every frame HTX sends is gzip-compressed binary, recorded as received (`bin`, base64); wsrec inflates only small frames (pings, acks) and, while a topic waits for its first data, the start of a frame to read its channel.",
    "The server sends {\"ping\":N} every 5 s and closes the connection after two unanswered: wsrec answers {\"pong\":N} at once, and reconnects after 20 s without a frame.",
    "One sub per topic; 50 topics per connection, 200 ms between subscribe messages and 1 s between connects are conservative choices (HTX documents no figure for market data).",
];

const HTX_SOURCES: &[&str] = &[
    "https://huobiapi.github.io/docs/spot/v1/en/",
    "https://huobiapi.github.io/docs/usdt_swap/v1/en/",
    "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/htx.ts",
];

/// MEXC spot stream names from a short channel and a symbol: `aggre.deals@100ms` gives
/// `spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT` (aggregated streams put their interval
/// before the symbol), `limit.depth@5` gives `spot@public.limit.depth.v3.api.pb@BTCUSDT@5` and
/// `kline@Min1` `spot@public.kline.v3.api.pb@BTCUSDT@Min1` (the others put their parameter
/// after it), as https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams
/// names each stream.
fn mexc(channel: &str, symbol: &str) -> String {
    let sym = symbol.to_ascii_uppercase();
    match channel.split_once('@') {
        Some((name, p)) if name.starts_with("aggre.") => {
            format!("spot@public.{name}.v3.api.pb@{p}@{sym}")
        }
        Some((name, p)) => format!("spot@public.{name}.v3.api.pb@{sym}@{p}"),
        None => format!("spot@public.{channel}.v3.api.pb@{sym}"),
    }
}

// Book channels: how each preset's order books start (see [`super::book`]). Facts from the
// venue's page named in each note; the REST ones in [`super::book`]'s statics.

/// A book channel whose book comes in the feed.
const fn in_feed(channel: &'static str, note: &'static str) -> BookChannel {
    BookChannel {
        channel,
        start: BookStart::InFeed,
        note,
    }
}

/// A book channel whose every message is a whole book.
const fn full(channel: &'static str, note: &'static str) -> BookChannel {
    BookChannel {
        channel,
        start: BookStart::Full,
        note,
    }
}

/// A difference channel that starts from a REST snapshot.
const fn rest(channel: &'static str, r: &'static RestSnapshot, note: &'static str) -> BookChannel {
    BookChannel {
        channel,
        start: BookStart::Rest(r),
        note,
    }
}

const BYBIT_BOOK_NOTE: &str = "A `type\":\"snapshot` message first, then `delta`s (`u` the update ID, `seq` the cross sequence); a new snapshot, or a delta with `u` = 1, resets the book (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook).";

/// Bybit spot, linear and inverse order books (depth 1, 50, 200, 1000).
const BYBIT_BOOKS: &[BookChannel] = &[
    in_feed("orderbook.1", BYBIT_BOOK_NOTE),
    in_feed("orderbook.50", BYBIT_BOOK_NOTE),
    in_feed("orderbook.200", BYBIT_BOOK_NOTE),
    in_feed("orderbook.1000", BYBIT_BOOK_NOTE),
];

/// Bybit options order books (depth 25, 100).
const BYBIT_OPTION_BOOKS: &[BookChannel] = &[
    in_feed("orderbook.25", BYBIT_BOOK_NOTE),
    in_feed("orderbook.100", BYBIT_BOOK_NOTE),
];

const BINANCE_DIFF_NOTE: &str = "depthUpdate messages carry changes only (`U`..`u`; futures also `pu`, the previous `u`); `depth`, `depth@100ms` and the other speeds of the same stream start alike.";

const BINANCE_SPOT_BOOKS: &[BookChannel] = &[
    rest("depth@100ms", &book::BINANCE_SPOT, BINANCE_DIFF_NOTE),
    full(
        "depth20@100ms",
        "Partial book depth: the top 20 levels in every message, with `lastUpdateId` (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams#partial-book-depth-streams).",
    ),
];

const BINANCE_PARTIAL_FUTURES_NOTE: &str = "Partial book depth: the top 20 levels in every message (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Partial-Book-Depth-Streams; COIN-M alike).";

const BINANCE_USDM_BOOKS: &[BookChannel] = &[
    rest("depth@100ms", &book::BINANCE_USDM, BINANCE_DIFF_NOTE),
    full("depth20@100ms", BINANCE_PARTIAL_FUTURES_NOTE),
];

const BINANCE_COINM_BOOKS: &[BookChannel] = &[
    rest("depth@100ms", &book::BINANCE_COINM, BINANCE_DIFF_NOTE),
    full("depth20@100ms", BINANCE_PARTIAL_FUTURES_NOTE),
];

const OKX_BOOKS: &[BookChannel] = &[
    in_feed(
        "books",
        "An `action\":\"snapshot` message (400 levels) first, then `update`s chained by `seqId`/`prevSeqId` with a CRC32 `checksum`; a new snapshot resets the book (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel).",
    ),
    full("books5", "The top 5 levels in every message (same page)."),
    full("bbo-tbt", "The top level, every tick (same page)."),
];

const COINBASE_BOOKS: &[BookChannel] = &[in_feed(
    "level2",
    "An `l2_data` message whose event has `type\":\"snapshot` first, then `update` events; a new snapshot (after a resubscribe) resets the book; `sequence_num` counts per connection (https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels, Level2 channel).",
)];

const KRAKEN_BOOK_NOTE: &str = "A `type\":\"snapshot` message first (the depth asked for), then `update`s with a CRC32 `checksum` of the top 10 levels; a new snapshot resets the book (https://docs.kraken.com/api/docs/websocket-v2/book).";

const KRAKEN_BOOKS: &[BookChannel] = &[
    in_feed("book", KRAKEN_BOOK_NOTE),
    in_feed("book.25", KRAKEN_BOOK_NOTE),
];

const BITSTAMP_BOOKS: &[BookChannel] = &[
    full(
        "order_book",
        "The top 100 levels of each side in every message (https://www.bitstamp.net/websocket/v2/).",
    ),
    rest(
        "diff_order_book",
        &book::BITSTAMP,
        "Changed levels only, stamped with `microtimestamp`; the book before them comes from the REST order book.",
    ),
    full(
        "detail_order_book",
        "The top 100 levels with their order IDs in every message (https://www.bitstamp.net/websocket/v2/).",
    ),
];

const BITFINEX_BOOKS: &[BookChannel] = &[in_feed(
    "book",
    "The first message after `subscribed` is the snapshot (an array of [price, count, amount] levels), then one level per update; count 0 removes a level; a resubscribe sends a new snapshot (https://docs.bitfinex.com/reference/ws-public-books).",
)];

const DERIBIT_BOOKS: &[BookChannel] = &[
    in_feed(
        "book",
        "`book.INSTRUMENT.INTERVAL` (or `.raw`): a notification with `type\":\"snapshot` first, then `change`s chained by `prev_change_id` to `change_id` (https://docs.deribit.com/, subscription book.{instrument_name}.{interval}).",
    ),
    full(
        "book.none.10.100ms",
        "`book.INSTRUMENT.GROUP.DEPTH.INTERVAL`: the top 10 (grouped) levels in every notification (https://docs.deribit.com/, subscription book.{instrument_name}.{group}.{depth}.{interval}).",
    ),
];

const BITMEX_BOOK_NOTE: &str = "An `action\":\"partial` message (the whole table) first, then `insert`, `update` and `delete`; data before the partial is to be dropped (https://www.bitmex.com/app/wsAPI#Subscriptions).";

const BITMEX_BOOKS: &[BookChannel] = &[
    in_feed("orderBookL2_25", BITMEX_BOOK_NOTE),
    in_feed("orderBookL2", BITMEX_BOOK_NOTE),
];

const HYPERLIQUID_BOOKS: &[BookChannel] = &[full(
    "l2Book",
    "Every message is the book: up to 20 levels a side (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions).",
)];

const KUCOIN_SPOT_BOOKS: &[BookChannel] = &[
    rest(
        "/market/level2",
        &book::KUCOIN_SPOT,
        "`trade.l2update` messages carry changes between `sequenceStart` and `sequenceEnd`; the public REST book has 100 levels at most, so levels deeper than it stay unknown until they change.",
    ),
    full(
        "/spotMarket/level2Depth5",
        "The top 5 levels in every message (https://www.kucoin.com/docs-new/, WebSocket spot public channel 'Orderbook - Level 5').",
    ),
    full(
        "/spotMarket/level2Depth50",
        "The top 50 levels in every message (https://www.kucoin.com/docs-new/, WebSocket spot public channel 'Orderbook - Level 50').",
    ),
];

const KUCOIN_FUTURES_BOOKS: &[BookChannel] = &[
    rest(
        "/contractMarket/level2",
        &book::KUCOIN_FUTURES,
        "`level2` messages carry one change each (`change` \"price,side,size\") with a consecutive `sequence`.",
    ),
    full(
        "/contractMarket/level2Depth5",
        "The top 5 levels in every message (https://www.kucoin.com/docs-new/, WebSocket futures public channel 'Orderbook - Level 5').",
    ),
    full(
        "/contractMarket/level2Depth50",
        "The top 50 levels in every message (https://www.kucoin.com/docs-new/, WebSocket futures public channel 'Orderbook - Level 50').",
    ),
];

const DYDX_BOOKS: &[BookChannel] = &[in_feed(
    "v4_orderbook",
    "The `subscribed` message carries the book in `contents`, then `channel_data` updates (size 0 removes a level); a resubscribe sends it again (https://docs.dydx.xyz/interaction/data/feeds, Orderbooks).",
)];

const GATE_SPOT_BOOKS: &[BookChannel] = &[
    rest(
        "spot.order_book_update:100ms",
        &book::GATE_SPOT,
        "`update` events carry changes between `U` and `u`.",
    ),
    full(
        "spot.order_book:20:100ms",
        "The top 20 levels in every message, with `lastUpdateId` (https://www.gate.com/docs/developers/apiv4/ws/en/, 'Limited-level full order book snapshot').",
    ),
];

const GATE_FUTURES_BOOKS: &[BookChannel] = &[rest(
    "futures.order_book_update:100ms:100",
    &book::GATE_FUTURES,
    "`update` events carry changes between `U` and `u`.",
)];

const BITGET_BOOK_NOTE: &str = "An `action\":\"snapshot` message first, then `update`s with `seq` and a CRC32 `checksum`; a new snapshot resets the book (https://www.bitget.com/api-doc/contract/websocket/public/Order-Book-Channel; spot alike).";
const BITGET_TOP5_NOTE: &str =
    "books5 is always a snapshot: the top 5 levels in every message (same pages).";

const BITGET_BOOKS: &[BookChannel] = &[
    in_feed("SPOT/books", BITGET_BOOK_NOTE),
    full("SPOT/books5", BITGET_TOP5_NOTE),
    in_feed("USDT-FUTURES/books", BITGET_BOOK_NOTE),
    full("USDT-FUTURES/books5", BITGET_TOP5_NOTE),
];

const CRYPTOCOM_BOOK_NOTE: &str = "wsrec subscribes with `book_subscription_type` SNAPSHOT_AND_UPDATE: a `book` snapshot (the depth asked for) first, then `book.update` deltas chained by `u`/`pu`; a new snapshot resets the book (https://exchange-docs.crypto.com/exchange/v1/rest-ws/index.html#book-instrument_name-depth).";

const CRYPTOCOM_BOOKS: &[BookChannel] = &[
    in_feed("book.50", CRYPTOCOM_BOOK_NOTE),
    in_feed("book.10", CRYPTOCOM_BOOK_NOTE),
];

const HTX_DEPTH_NOTE: &str = "The top 150 levels (step0: not merged) in every message (https://huobiapi.github.io/docs/spot/v1/en/, 'Market Depth'; swaps: https://huobiapi.github.io/docs/usdt_swap/v1/en/, 'Subscribe Market Depth Data').";

const HTX_SPOT_BOOKS: &[BookChannel] = &[
    full("depth.step0", HTX_DEPTH_NOTE),
    BookChannel {
        channel: "mbp.150",
        start: BookStart::WsRequest,
        note: "Incremental by price with `seqNum`/`prevSeqNum`; the starting book is sent only in answer to a `req` on the same topic (https://huobiapi.github.io/docs/spot/v1/en/, 'Market By Price (incremental update)': 'req' for the refresh), and wsrec does not send it: use depth.step0 to rebuild.",
    },
];

const HTX_LINEAR_BOOKS: &[BookChannel] = &[full("depth.step0", HTX_DEPTH_NOTE)];

const MEXC_BOOKS: &[BookChannel] = &[
    rest(
        "aggre.depth@100ms",
        &book::MEXC_SPOT,
        "Protobuf pushes of changed levels covering `fromVersion`..`toVersion`.",
    ),
    full(
        "limit.depth@5",
        "The top 5 levels in every message, with a `version` (https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams, 'Partial Book Depth Streams').",
    ),
];

const UPBIT_BOOKS: &[BookChannel] = &[full(
    "orderbook",
    "Every message is the whole book (its `orderbook_units`), SNAPSHOT or REALTIME by `stream_type` (https://docs.upbit.com/kr/reference/websocket-guide, orderbook).",
)];

const KRAKEN_FUTURES_BOOKS: &[BookChannel] = &[in_feed(
    "book",
    "A `book_snapshot` message first, then `book` deltas with a per-product `seq`; a resubscribe sends a new snapshot (https://docs.kraken.com/api/docs/guides/futures-websockets, book).",
)];

const COINBASE_EXCHANGE_BOOKS: &[BookChannel] = &[in_feed(
    "level2_batch",
    "A `snapshot` message first, then `l2update`s every 50 ms (no sequence); a resubscribe sends a new snapshot (https://docs.cdp.coinbase.com/exchange/websocket-feed/channels, level2_batch).",
)];

/// Every preset.
pub static PRESETS: &[Preset] = &[
    Preset {
        name: "bybit-spot",
        title: "Bybit v5 spot",
        family: Family::Bybit,
        url: "wss://stream.bybit.com/v5/public/spot",
        channels: BYBIT_SPOT_CHANNELS,
        example: "publicTrade.BTCUSDT, orderbook.50.BTCUSDT",
        keepalive: BYBIT_KEEPALIVE,
        max_connection_age: None,
        limits: BYBIT_LIMITS,
        combine: dot,
        route: same_url,
        notes: BYBIT_NOTES,
        sources: BYBIT_SOURCES,
        pre_connect: None,
        books: BYBIT_BOOKS,
    },
    Preset {
        name: "bybit-linear",
        title: "Bybit v5 USDT/USDC perpetuals and futures",
        family: Family::Bybit,
        url: "wss://stream.bybit.com/v5/public/linear",
        channels: BYBIT_CHANNELS,
        example: "publicTrade.BTCUSDT, orderbook.50.BTCUSDT",
        keepalive: BYBIT_KEEPALIVE,
        max_connection_age: None,
        limits: BYBIT_LIMITS,
        combine: dot,
        route: same_url,
        notes: BYBIT_NOTES,
        sources: BYBIT_SOURCES,
        pre_connect: None,
        books: BYBIT_BOOKS,
    },
    Preset {
        name: "bybit-inverse",
        title: "Bybit v5 inverse contracts",
        family: Family::Bybit,
        url: "wss://stream.bybit.com/v5/public/inverse",
        channels: BYBIT_CHANNELS,
        example: "publicTrade.BTCUSD, orderbook.50.BTCUSD",
        keepalive: BYBIT_KEEPALIVE,
        max_connection_age: None,
        limits: BYBIT_LIMITS,
        combine: dot,
        route: same_url,
        notes: BYBIT_NOTES,
        sources: BYBIT_SOURCES,
        pre_connect: None,
        books: BYBIT_BOOKS,
    },
    Preset {
        name: "binance-spot",
        title: "Binance spot (combined streams)",
        family: Family::Binance,
        url: "wss://stream.binance.com:9443/stream",
        channels: &[
            "trade",
            "aggTrade",
            "bookTicker",
            "depth@100ms",
            "depth20@100ms",
            "kline_1m",
            "ticker",
            "miniTicker",
        ],
        example: "btcusdt@aggTrade, btcusdt@depth@100ms",
        keepalive: BINANCE_KEEPALIVE,
        max_connection_age: BEFORE_A_DAY,
        limits: Limits {
            topics_per_connection: 1024,
            topics_per_message: 100,
            connect_interval: secs(1),
            // Binance closes a connection with 1008 past 5 incoming messages per second, pings
            // and pongs included, and bans IPs that keep doing it
            // (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams); a
            // measured client was closed at 250 ms spacing and held at 500 ms. Most streams go in
            // the URL (no message at all); the rest are subscribed 600 ms apart: at most 2 per
            // second, leaving room for a pong and wsrec's own ping.
            subscribe_interval: ms(600),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: binance,
        route: same_url,
        notes: BINANCE_NOTES_SPOT,
        sources: &["https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams"],
        pre_connect: None,
        books: BINANCE_SPOT_BOOKS,
    },
    Preset {
        name: "binance-usdm",
        title: "Binance USDⓈ-M futures (routed /public and /market streams)",
        family: Family::Binance,
        url: "wss://fstream.binance.com/market/stream",
        channels: BINANCE_FUTURES_CHANNELS,
        example: "btcusdt@aggTrade, btcusdt@depth@100ms",
        keepalive: BINANCE_KEEPALIVE,
        max_connection_age: BEFORE_A_DAY,
        limits: Limits {
            topics_per_connection: 1024,
            topics_per_message: 100,
            connect_interval: secs(1),
            // 10 incoming messages per second, pings and pongs included
            // (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams):
            // at most 4 subscribe messages per second leaves room for a pong and a ping.
            subscribe_interval: ms(250),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: binance,
        route: binance_usdm_route,
        notes: BINANCE_NOTES_USDM,
        sources: &[
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams",
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice",
            "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/binance.ts",
        ],
        pre_connect: None,
        books: BINANCE_USDM_BOOKS,
    },
    Preset {
        name: "okx",
        title: "OKX v5 public",
        family: Family::Okx,
        // The default port: OKX stopped accepting WebSocket connections on port 8443 on
        // 2026-10-31 (colocation on 2026-11-16). Official place for such notices: the API change
        // log, https://www.okx.com/docs-v5/log_en/ (no stored copy with this entry was at hand);
        // the dates are from siebly.hashnode.dev, "OKX WebSocket port 8443 is retired" (2026-11).
        // Port 443 serves the same /ws/v5/public and /ws/v5/business paths.
        url: "wss://ws.okx.com/ws/v5/public",
        channels: &[
            "trades",
            "books",
            "books5",
            "bbo-tbt",
            "tickers",
            "funding-rate",
            "candle1m",
            "trades-all",
        ],
        example: "books:BTC-USDT, trades:BTC-USDT",
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(10),
            app_ping: Some("ping"),
            app_ping_interval: Some(secs(20)),
            app_pong_contains: Some("pong"),
            silence_timeout: Some(secs(60)),
        },
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 200,
            topics_per_message: 50,
            connect_interval: ms(400),
            subscribe_interval: ms(200),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: colon,
        route: okx_route,
        notes: &[
            "OKX closes a connection that received nothing for 30 s: wsrec sends `ping` every 20 s.",
            "Notice 64008 (service upgrade) triggers a make-before-break reconnect.",
            "Candles of every kind (candle*, mark-price-candle*, index-candle*) and trades-all are served on /ws/v5/business and routed there.",
            "books-l2-tbt and books50-l2-tbt need a login and a VIP tier, so they are not listed (an anonymous subscription is refused).",
        ],
        sources: &[
            "https://www.okx.com/docs-v5/en/#overview-websocket-connect",
            "https://www.okx.com/docs-v5/en/#public-data-websocket",
            "https://www.okx.com/help/changes-to-v5-api-websocket-subscription-parameter-and-url",
            "https://www.okx.com/docs-v5/log_en/",
            "https://siebly.hashnode.dev",
        ],
        pre_connect: None,
        books: OKX_BOOKS,
    },
    Preset {
        name: "coinbase",
        title: "Coinbase Advanced Trade",
        family: Family::Coinbase,
        url: "wss://advanced-trade-ws.coinbase.com",
        channels: &[
            "level2",
            "market_trades",
            "ticker",
            "ticker_batch",
            "candles",
            "status",
        ],
        example: "level2:BTC-USD, market_trades:BTC-USD",
        keepalive: Keepalive {
            ping_interval: Some(secs(30)),
            pong_timeout: secs(10),
            app_ping: None,
            app_ping_interval: None,
            app_pong_contains: None,
            silence_timeout: Some(secs(15)),
        },
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 100,
            topics_per_message: 100,
            connect_interval: ms(200),
            subscribe_interval: ms(200),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: colon,
        route: same_url,
        notes: &[
            "wsrec also subscribes to `heartbeats` (1 per second): without it Coinbase closes quiet channels within 60-90 s, and it is the liveness signal.",
            "A level2 snapshot is one frame of several MB (5.1 MB for BTC-USD): max_message_size must stay well above that.",
        ],
        // The channels page: most channels close within 60-90 s without updates; `heartbeats`
        // (1 per second) keeps them open.
        sources: &[
            "https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels",
            "https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-rate-limits",
        ],
        pre_connect: None,
        books: COINBASE_BOOKS,
    },
    Preset {
        name: "kraken",
        title: "Kraken spot v2",
        family: Family::Kraken,
        url: "wss://ws.kraken.com/v2",
        channels: &["book", "book.25", "trade", "ticker", "ohlc.1", "instrument"],
        example: "book:BTC/USD, trade:BTC/USD",
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(10),
            app_ping: Some(r#"{"method":"ping"}"#),
            app_ping_interval: Some(secs(30)),
            app_pong_contains: Some(r#""pong""#),
            silence_timeout: Some(secs(15)),
        },
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 200,
            topics_per_message: 50,
            connect_interval: ms(500),
            subscribe_interval: ms(100),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: colon,
        route: same_url,
        notes: &[
            "Kraken sends a heartbeat every second; books can be silent for 4-26 s on healthy connections, so liveness uses the heartbeat.",
            "book.N sets the depth (10, 25, 100, 500 or 1000; plain `book` is 10).",
        ],
        // Kraken's v2 reference (endpoints) and its WebSocket introduction (ping, heartbeat).
        sources: &[
            "https://docs.kraken.com/exchange/api-reference/spot-websocket",
            "https://docs.kraken.com/exchange/guides/websockets/introduction",
        ],
        pre_connect: None,
        books: KRAKEN_BOOKS,
    },
    Preset {
        name: "bitstamp",
        title: "Bitstamp v2",
        family: Family::Bitstamp,
        url: "wss://ws.bitstamp.net",
        channels: &[
            "live_trades",
            "live_orders",
            "order_book",
            "diff_order_book",
            "detail_order_book",
        ],
        example: "live_trades_btcusd, diff_order_book_btcusd",
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(10),
            app_ping: Some(r#"{"event":"bts:heartbeat"}"#),
            app_ping_interval: Some(secs(20)),
            app_pong_contains: Some("bts:heartbeat"),
            silence_timeout: Some(secs(60)),
        },
        max_connection_age: Some(secs(89 * 86_400)),
        limits: Limits {
            topics_per_connection: 100,
            topics_per_message: 1,
            connect_interval: ms(500),
            subscribe_interval: ms(100),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: bitstamp,
        route: same_url,
        notes: &[
            "bts:request_reconnect triggers a make-before-break reconnect; connections are replaced before the 90-day limit.",
            "Topics are channel_pair, e.g. live_trades_btcusd.",
        ],
        // Bitstamp's WebSocket v2 documentation (heartbeat, bts:request_reconnect, channels), the
        // page maintained clients (crypto-ws-client, ccxws) cite.
        sources: &["https://www.bitstamp.net/websocket/v2/"],
        pre_connect: None,
        books: BITSTAMP_BOOKS,
    },
    Preset {
        name: "bitfinex",
        title: "Bitfinex v2 public",
        family: Family::Bitfinex,
        url: "wss://api-pub.bitfinex.com/ws/2",
        channels: &["trades", "book", "ticker", "candles"],
        example: "trades:tBTCUSD, book:tBTCUSD",
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(10),
            app_ping: Some(r#"{"event":"ping","cid":1}"#),
            app_ping_interval: Some(secs(20)),
            app_pong_contains: Some(r#""pong""#),
            silence_timeout: Some(secs(40)),
        },
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 25,
            topics_per_message: 1,
            connect_interval: secs(3),
            subscribe_interval: ms(100),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: bitfinex,
        route: same_url,
        notes: &[
            "25 channels per connection and 20 connections per minute: large lists are split and connects paced 3 s apart.",
            "Info 20051 (restart) and 20061 (end of maintenance) trigger a make-before-break reconnect; on 20060 (maintenance) the connection is kept, and one lost before 20061 is replaced only after the maintenance (120 s at most).",
            "wsrec sends conf flags SEQ_ALL | OB_CHECKSUM (196608) first: every channel message ends with a sequence number, and books send checksum messages (\"cs\").",
            "candles take a key as symbol, e.g. candles:trade:5m:tBTCUSD; the channel `candles` with symbols gives 1-minute candles.",
        ],
        sources: &["https://docs.bitfinex.com/docs/ws-public"],
        pre_connect: None,
        books: BITFINEX_BOOKS,
    },
    Preset {
        name: "deribit",
        title: "Deribit public (JSON-RPC)",
        family: Family::Deribit,
        url: "wss://www.deribit.com/ws/api/v2",
        channels: &["trades", "book", "ticker", "book.none.10.100ms"],
        example: "trades.BTC-PERPETUAL.100ms, book.BTC-PERPETUAL.100ms",
        keepalive: PING_30S,
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 500,
            topics_per_message: 50,
            connect_interval: ms(500),
            subscribe_interval: ms(350),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: deribit,
        route: same_url,
        notes: &[
            "wsrec sends public/set_heartbeat (30 s) first and answers every test_request with public/test, as Deribit requires.",
            "Unauthenticated clients get the 100ms channels, not .raw.",
        ],
        // public/set_heartbeat: the server sends test_request, and closes the connection at once
        // unless it is answered with public/test.
        sources: &[
            "https://docs.deribit.com/api-reference/session-management/public-set_heartbeat",
        ],
        pre_connect: None,
        books: DERIBIT_BOOKS,
    },
    Preset {
        name: "bitmex",
        title: "BitMEX realtime",
        family: Family::Bitmex,
        url: "wss://ws.bitmex.com/realtime",
        channels: &[
            "trade",
            "orderBookL2_25",
            "orderBookL2",
            "quote",
            "instrument",
            "liquidation",
        ],
        example: "trade:XBTUSD, orderBookL2_25:XBTUSD",
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(5),
            app_ping: Some("ping"),
            app_ping_interval: Some(secs(5)),
            app_pong_contains: Some("pong"),
            silence_timeout: Some(secs(30)),
        },
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 100,
            topics_per_message: 10,
            connect_interval: secs(1),
            subscribe_interval: ms(100),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: colon,
        route: same_url,
        notes: &[
            "BitMEX expects a `ping` after 5 s of silence and answers `pong`; wsrec pings every 5 s.",
        ],
        sources: &[
            "https://www.bitmex.com/app/wsAPI",
            "https://blog.bitmex.com/api_announcement/updates-to-rate-limits/",
        ],
        pre_connect: None,
        books: BITMEX_BOOKS,
    },
    Preset {
        name: "hyperliquid",
        title: "Hyperliquid",
        family: Family::Hyperliquid,
        url: "wss://api.hyperliquid.xyz/ws",
        channels: &["trades", "l2Book", "bbo", "candle.1m", "activeAssetCtx"],
        example: "trades:BTC, l2Book:BTC",
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(10),
            app_ping: Some(r#"{"method":"ping"}"#),
            app_ping_interval: Some(secs(30)),
            app_pong_contains: Some(r#""pong""#),
            silence_timeout: Some(secs(75)),
        },
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 100,
            topics_per_message: 1,
            connect_interval: secs(2),
            subscribe_interval: ms(50),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: colon,
        route: same_url,
        notes: &[
            "Hyperliquid closes a connection it has sent nothing on for 60 s: wsrec pings every 30 s.",
            "30 new connections per minute: connects are paced 2 s apart.",
            "candle.INTERVAL (1m, 5m, 1h, …) is required: Hyperliquid refuses a candle subscription without one.",
        ],
        sources: &[
            "https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits",
        ],
        pre_connect: None,
        books: HYPERLIQUID_BOOKS,
    },
    Preset {
        name: "kucoin-spot",
        title: "KuCoin spot (classic API; connect token from REST)",
        family: Family::Kucoin,
        // The server the token answer names (the dialled URL is the answer's endpoint).
        url: "wss://ws-api-spot.kucoin.com/",
        channels: &[
            "/market/match",
            "/market/level2",
            "/market/ticker",
            "/spotMarket/level1",
            "/spotMarket/level2Depth5",
            "/spotMarket/level2Depth50",
            "/market/snapshot",
            "/market/candles_1min",
        ],
        example: "/market/match:BTC-USDT, /market/level2:BTC-USDT",
        keepalive: KUCOIN_KEEPALIVE,
        max_connection_age: BEFORE_A_DAY,
        limits: KUCOIN_LIMITS,
        combine: kucoin,
        route: same_url,
        notes: KUCOIN_NOTES,
        sources: KUCOIN_SOURCES,
        pre_connect: Some(PreConnect {
            url: "https://api.kucoin.com/api/v1/bullet-public",
            read: super::protocol::kucoin_read_bullet,
        }),
        books: KUCOIN_SPOT_BOOKS,
    },
    Preset {
        name: "kucoin-futures",
        title: "KuCoin futures (classic API; connect token from REST)",
        family: Family::Kucoin,
        url: "wss://ws-api-futures.kucoin.com/",
        channels: &[
            "/contractMarket/execution",
            "/contractMarket/level2",
            "/contractMarket/tickerV2",
            "/contractMarket/ticker",
            "/contractMarket/level2Depth5",
            "/contractMarket/level2Depth50",
            "/contract/instrument",
            "/contractMarket/limitCandle_1min",
        ],
        example: "/contractMarket/execution:XBTUSDTM, /contractMarket/level2:XBTUSDTM",
        keepalive: KUCOIN_KEEPALIVE,
        max_connection_age: BEFORE_A_DAY,
        limits: KUCOIN_LIMITS,
        combine: kucoin,
        route: same_url,
        notes: KUCOIN_NOTES,
        sources: KUCOIN_SOURCES,
        // Futures tokens come from the futures host and cannot be mixed with spot ones.
        pre_connect: Some(PreConnect {
            url: "https://api-futures.kucoin.com/api/v1/bullet-public",
            read: super::protocol::kucoin_read_bullet,
        }),
        books: KUCOIN_FUTURES_BOOKS,
    },
    Preset {
        name: "dydx",
        title: "dYdX v4 indexer",
        family: Family::Dydx,
        url: "wss://indexer.dydx.trade/v4/ws",
        channels: &[
            "v4_trades",
            "v4_orderbook",
            "v4_candles.1MIN",
            "v4_markets",
            "v4_block_height",
        ],
        example: "v4_trades:BTC-USD, v4_orderbook:BTC-USD",
        // The indexer pings every 30 s and cuts a connection whose pong is 10 s late (wsrec
        // answers at once); wsrec's own pings check the other direction. No silence limit:
        // quiet markets have quiet trades.
        keepalive: Keepalive {
            ping_interval: Some(secs(30)),
            pong_timeout: secs(10),
            app_ping: None,
            app_ping_interval: None,
            app_pong_contains: None,
            silence_timeout: None,
        },
        max_connection_age: None,
        limits: Limits {
            subscribe_after_connect: Duration::ZERO,
            // 32 subscriptions per channel per connection (V4_*_CHANNEL_LIMIT in the socks
            // service's config.ts): 32 topics per connection never passes it.
            topics_per_connection: 32,
            topics_per_message: 1,
            connect_interval: secs(1),
            subscribe_interval: ms(100),
        },
        combine: dydx,
        route: same_url,
        notes: &[
            "The indexer pings every 30 s and closes a connection that has not answered within 10 s: wsrec answers every ping at once, and pings every 30 s itself.",
            "At most 32 subscriptions per channel on one connection: topics are split 32 per connection.",
            "Each subscription is answered with the channel's initial contents (recent trades, the order book, candles, markets), recorded like every message; updates follow unbatched as channel_data, each with the connection's message_id.",
            "v4_candles take a resolution (v4_candles:BTC-USD/1MIN; channel v4_candles.1MIN with symbols); v4_markets and v4_block_height cover every market and take no id.",
            "No per-IP connection limit is documented: connects are paced 1 s apart as a conservative choice. Breaking the subscribe limits gets a connection closed and new ones refused with HTTP 429 for 30 s.",
        ],
        sources: &[
            "https://docs.dydx.exchange/api_integration-indexer/indexer_websocket",
            "https://docs.dydx.xyz/interaction/data/feeds",
            "https://github.com/dydxprotocol/v4-chain/blob/main/indexer/services/socks/src/config.ts",
            "https://github.com/dydxprotocol/v4-chain/blob/main/indexer/services/socks/src/lib/subscription.ts",
        ],
        pre_connect: None,
        books: DYDX_BOOKS,
    },
    Preset {
        pre_connect: None,
        books: GATE_SPOT_BOOKS,
        name: "gate-spot",
        title: "Gate spot (API v4)",
        family: Family::Gate,
        url: "wss://api.gateio.ws/ws/v4/",
        channels: &[
            "spot.trades",
            "spot.book_ticker",
            "spot.order_book_update:100ms",
            "spot.order_book:20:100ms",
            "spot.tickers",
            "spot.candlesticks:1m",
        ],
        example: "spot.trades:BTC_USDT, spot.order_book_update:BTC_USDT:100ms",
        keepalive: gate_keepalive(r#"{"time":0,"channel":"spot.ping"}"#, r#""spot.pong""#),
        max_connection_age: None,
        limits: GATE_LIMITS,
        combine: gate,
        route: same_url,
        notes: GATE_NOTES,
        sources: GATE_SOURCES,
    },
    Preset {
        pre_connect: None,
        books: GATE_FUTURES_BOOKS,
        name: "gate-futures",
        title: "Gate USDT-margined perpetual futures (API v4)",
        family: Family::Gate,
        url: "wss://fx-ws.gateio.ws/v4/ws/usdt",
        channels: &[
            "futures.trades",
            "futures.book_ticker",
            "futures.order_book_update:100ms:100",
            "futures.tickers",
            "futures.candlesticks:1m",
        ],
        example: "futures.trades:BTC_USDT, futures.order_book_update:BTC_USDT:100ms:100",
        keepalive: gate_keepalive(
            r#"{"time":0,"channel":"futures.ping"}"#,
            r#""futures.pong""#,
        ),
        max_connection_age: None,
        limits: GATE_LIMITS,
        combine: gate,
        route: same_url,
        notes: GATE_NOTES,
        sources: GATE_SOURCES,
    },
    Preset {
        pre_connect: None,
        books: BITGET_BOOKS,
        name: "bitget",
        title: "Bitget v2 public (spot and futures)",
        family: Family::Bitget,
        url: "wss://ws.bitget.com/v2/ws/public",
        channels: &[
            "SPOT/trade",
            "SPOT/books",
            "SPOT/books5",
            "SPOT/ticker",
            "SPOT/candle1m",
            "USDT-FUTURES/trade",
            "USDT-FUTURES/books",
            "USDT-FUTURES/books5",
            "USDT-FUTURES/ticker",
            "USDT-FUTURES/candle1m",
        ],
        example: "SPOT/trade:BTCUSDT, USDT-FUTURES/books:BTCUSDT",
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(10),
            // A string `ping` every 30 s, answered `pong`; Bitget cuts a connection that sent
            // none for 2 minutes.
            app_ping: Some("ping"),
            app_ping_interval: Some(secs(30)),
            app_pong_contains: Some("pong"),
            silence_timeout: Some(secs(75)),
        },
        // Bitget cuts every connection after 24 h.
        max_connection_age: BEFORE_A_DAY,
        limits: Limits {
            // Bitget allows 1000 channels per connection but recommends at most 50 for
            // stability, and counts 240 subscribe requests per connection per hour: 50 topics
            // in one message make one request per connection.
            topics_per_connection: 50,
            topics_per_message: 50,
            connect_interval: ms(500),
            // 10 messages per second per connection, the string pings included.
            subscribe_interval: ms(200),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: colon,
        route: same_url,
        notes: &[
            "Topics are INSTTYPE/channel:instId, e.g. SPOT/trade:BTCUSDT, USDT-FUTURES/books5:BTCUSDT, COIN-FUTURES/ticker:BTCUSD, USDC-FUTURES/trade:BTCPERP; channels are listed with their instType (SPOT/books, ...).",
            "wsrec sends the string ping every 30 s (Bitget cuts a connection without one for 2 min) and replaces connections after 23 h 30 min, before Bitget's 24 h cut.",
            "50 topics per connection (Bitget recommends no more, of 1000 allowed), all in one subscribe message (240 subscribe requests per connection per hour); messages at most 5 per second (10 allowed, pings included).",
            "Bitget allows at most 100 connections per IP at a time: 5,000 topics per IP at 50 per connection (wsrec does not count open connections; split larger lists over IPs).",
            "Books carry seq and checksum (verify checks that seq increases); books is a snapshot then updates, books1/5/15 are snapshots.",
        ],
        sources: &[
            "https://www.bitget.com/api-doc/common/websocket-intro",
            "https://www.bitget.com/api-doc/spot/websocket/public/Trades-Channel",
            "https://www.bitget.com/api-doc/contract/websocket/public/Order-Book-Channel",
            "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/bitget.ts",
        ],
    },
    Preset {
        pre_connect: None,
        books: CRYPTOCOM_BOOKS,
        name: "cryptocom",
        title: "Crypto.com Exchange v1 market data",
        family: Family::Cryptocom,
        url: "wss://stream.crypto.com/exchange/v1/market",
        channels: &["trade", "ticker", "book.50", "book.10", "candlestick.1m"],
        example: "trade.BTCUSD-PERP, book.BTCUSD-PERP.50",
        // Liveness: the venue's heartbeat every 30 s (answered at once, see the notes) keeps
        // messages coming; protocol pings besides.
        keepalive: PING_30S,
        max_connection_age: None,
        limits: Limits {
            // Crypto.com caps subscriptions per market data connection (400 is the figure
            // reported); 200 is a conservative choice.
            topics_per_connection: 200,
            topics_per_message: 50,
            connect_interval: ms(500),
            // 100 requests per second on market data connections: wsrec sends at most 10.
            subscribe_interval: ms(100),
            // The documentation asks for a 1 s pause between connecting and the first request,
            // as rate limits are counted per calendar second.
            subscribe_after_connect: secs(1),
        },
        combine: cryptocom,
        route: same_url,
        notes: &[
            "wsrec answers every public/heartbeat (every 30 s) with public/respond-heartbeat and its id, as Crypto.com closes a connection that does not within 5 s.",
            "The first subscribe message goes 1 s after connecting, as Crypto.com asks.",
            "Topics are Crypto.com's channel names: trade.INSTRUMENT, ticker.INSTRUMENT, book.INSTRUMENT.DEPTH (10 or 50), candlestick.INTERVAL.INSTRUMENT; the channel `book` with symbols gives depth 50.",
            "Books are subscribed SNAPSHOT_AND_UPDATE: a snapshot, then book.update deltas whose pu links to the previous u (verify checks the links).",
            "No per-IP connection limit is documented: connects go 500 ms apart, a conservative choice.",
        ],
        sources: &[
            "https://exchange-docs.crypto.com/exchange/v1/rest-ws/index.html",
            "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/cryptocom.ts",
            "https://github.com/tardis-dev/tardis-node/blob/master/src/realtimefeeds/cryptocom.ts",
        ],
    },
    Preset {
        pre_connect: None,
        books: HTX_SPOT_BOOKS,
        name: "htx-spot",
        title: "HTX (Huobi) spot market data",
        family: Family::Htx,
        url: "wss://api.huobi.pro/ws",
        channels: &[
            "trade.detail",
            "depth.step0",
            "mbp.150",
            "kline.1min",
            "bbo",
            "detail",
        ],
        example: "market.btcusdt.trade.detail, market.btcusdt.depth.step0",
        keepalive: HTX_KEEPALIVE,
        max_connection_age: None,
        limits: HTX_LIMITS,
        combine: htx_spot,
        route: htx_spot_route,
        notes: &[
            HTX_NOTES[0],
            HTX_NOTES[1],
            HTX_NOTES[2],
            "mbp.LEVELS (incremental book, seqNum/prevSeqNum) is served on /feed and routed there; the rest on /ws. api-aws.huobi.pro serves the same paths (closer to AWS).",
        ],
        sources: HTX_SOURCES,
    },
    Preset {
        pre_connect: None,
        books: HTX_LINEAR_BOOKS,
        name: "htx-linear",
        title: "HTX USDT-margined swaps market data",
        family: Family::Htx,
        url: "wss://api.hbdm.com/linear-swap-ws",
        channels: &["trade.detail", "depth.step0", "kline.1min", "bbo", "detail"],
        example: "market.BTC-USDT.trade.detail, market.BTC-USDT.depth.step0",
        keepalive: HTX_KEEPALIVE,
        max_connection_age: None,
        limits: HTX_LIMITS,
        combine: htx_swap,
        route: same_url,
        notes: HTX_NOTES,
        sources: HTX_SOURCES,
    },
    Preset {
        pre_connect: None,
        books: MEXC_BOOKS,
        name: "mexc-spot",
        title: "MEXC spot v3 (protobuf streams)",
        family: Family::Mexc,
        url: "wss://wbs-api.mexc.com/ws",
        channels: &[
            "aggre.deals@100ms",
            "aggre.depth@100ms",
            "aggre.bookTicker@100ms",
            "limit.depth@5",
            "kline@Min1",
        ],
        example: "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT, spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        // MEXC closes a connection without a valid subscription after 30 s and one without
        // data after a minute; a PING keeps it open and is answered {"id":0,"code":0,"msg":"PONG"}.
        keepalive: Keepalive {
            ping_interval: None,
            pong_timeout: secs(10),
            app_ping: Some(r#"{"method":"PING"}"#),
            app_ping_interval: Some(secs(20)),
            app_pong_contains: Some("PONG"),
            silence_timeout: Some(secs(60)),
        },
        // Connections live at most 24 hours.
        max_connection_age: BEFORE_A_DAY,
        limits: Limits {
            topics_per_connection: 30,
            topics_per_message: 10,
            connect_interval: secs(1),
            subscribe_interval: ms(200),
            subscribe_after_connect: Duration::ZERO,
        },
        combine: mexc,
        route: same_url,
        notes: &[
            "Data comes as protobuf (PushDataV3ApiWrapper) in binary frames, recorded as received (`bin`, base64); wsrec reads the stream name (field 1) of a frame only while a topic waits for its first data. Acks and pongs are JSON text.",
            "At most 30 subscriptions per connection; connections live 24 h (wsrec replaces them after 23 h 30 min, make-before-break); wsrec sends {\"method\":\"PING\"} every 20 s, as MEXC cuts a connection without data after a minute.",
            "Channels are short names: aggre.deals@100ms (or @10ms), aggre.depth@100ms, aggre.bookTicker@100ms, limit.depth@5 (10, 20), kline@Min1 (Min5, Min15, Min30, Min60, Hour4, Day1, ...); topics are MEXC's full stream names.",
            "10 streams per subscribe message, 200 ms between them and 1 s between connects are conservative choices (MEXC documents no figure for them).",
        ],
        sources: &[
            "https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams",
            "https://github.com/mexcdevelop/websocket-proto",
            "https://github.com/mexcdevelop/apidocs/pull/264",
            "https://github.com/thrasher-corp/gocryptotrader/tree/master/exchanges/mexc",
        ],
    },
    Preset {
        pre_connect: None,
        books: UPBIT_BOOKS,
        name: "upbit",
        title: "Upbit quotation (KRW, BTC and USDT markets)",
        family: Family::Upbit,
        url: "wss://api.upbit.com/websocket/v1",
        channels: &["trade", "orderbook", "ticker", "candle.1m"],
        example: "trade:KRW-BTC, orderbook:KRW-BTC",
        // Upbit closes a connection idle for about 120 s and answers protocol pings (since
        // 2019-03-27): a ping every 30 s keeps quiet markets open and shows a dead connection,
        // with no silence limit: the same rule as Binance's.
        keepalive: BINANCE_KEEPALIVE,
        max_connection_age: None,
        limits: Limits {
            subscribe_after_connect: Duration::ZERO,
            topics_per_connection: 100,
            topics_per_message: 100,
            // 5 connects per second per IP: at most 3 (and 100 per minute: see BUDGETS).
            connect_interval: ms(350),
            subscribe_interval: ms(350),
        },
        combine: colon,
        route: same_url,
        notes: &[
            "Data is JSON in binary frames, recorded as received (`bin`, base64); wsrec reads them as text (a substring test per frame in steady state).",
            "All of a connection's topics go in one request ([{ticket},{type,codes},...,{format:DEFAULT}]): a new request replaces a connection's subscriptions, so topics_per_message is always topics_per_connection (100, a conservative choice: Upbit documents no figure).",
            "Upbit sends no acknowledgement; errors ({\"error\":{\"name\":...}}) are reported. orderbook:KRW-BTC.5 asks for 5 units (1, 5, 15 or 30); candle.1s, candle.3m ... candle.240m as well.",
            "wsrec pings every 30 s (Upbit cuts connections idle for 120 s); connects at most 5 per second and 100 per minute per IP; wsrec sends no Origin header (Upbit holds requests with one to 1 per 10 s).",
        ],
        sources: &[
            "https://docs.upbit.com/kr/reference/websocket-guide",
            "https://docs.upbit.com/reference/connection",
            "https://docs.upbit.com/kr/reference/rate-limits",
            "https://docs-e.upbit.com/docs/user-request-guide",
            "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/upbit.ts",
        ],
    },
    Preset {
        pre_connect: None,
        books: BINANCE_COINM_BOOKS,
        name: "binance-coinm",
        title: "Binance COIN-M futures (combined streams)",
        family: Family::Binance,
        // One host, no routed paths: the USDⓈ-M split into /public and /market (2026-04-23)
        // does not apply to COIN-M, whose streams are all served at dstream.binance.com/stream
        // (https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams,
        // whose base URL and examples have no routed path; Binance's market-data overview lists
        // COIN-M at wss://dstream.binance.com and calls USD-M, which routes by path, "the
        // exception": https://developers.binance.com/zh-CN/docs/products/caas/market-data-streams).
        url: "wss://dstream.binance.com/stream",
        channels: BINANCE_FUTURES_CHANNELS,
        example: "btcusd_perp@aggTrade, btcusd_perp@depth@100ms",
        keepalive: BINANCE_KEEPALIVE,
        max_connection_age: BEFORE_A_DAY,
        limits: Limits {
            subscribe_after_connect: Duration::ZERO,
            // The COIN-M page says 1024 streams per connection on developers.binance.com and
            // 200 on its developers.binance.me mirror; the lower figure, as nautilus_trader
            // uses for Binance futures.
            topics_per_connection: 200,
            topics_per_message: 100,
            connect_interval: secs(1),
            // 10 incoming messages per second, pings and pongs included: at most 4 subscribe
            // messages per second leaves room for a pong and a ping.
            subscribe_interval: ms(250),
        },
        combine: binance,
        route: same_url,
        notes: &[
            "One path for every stream (dstream.binance.com/stream): COIN-M has no /public and /market split.",
            "Symbols are contracts (btcusd_perp, btcusd_261225); index price streams take the pair (btcusd@indexPrice@1s) and go in `topics`.",
            "The server pings every 3 min and closes connections after 24 h; wsrec replaces them after 23 h 30 min, make-before-break.",
            "200 streams per connection (the lower of the two figures Binance publishes); streams go in the connection URL up to a 4 KiB URL, the rest are subscribed 250 ms apart (10 incoming messages per second, pings and pongs included).",
            "Binance documents no connect budget for COIN-M: wsrec uses spot's (300 per 5 min per IP) as a conservative choice.",
        ],
        sources: &[
            "https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams",
            "https://developers.binance.me/docs/derivatives/coin-margined-futures/websocket-market-streams",
            "https://developers.binance.com/zh-CN/docs/products/caas/market-data-streams",
            "https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams",
            "https://nautilustrader.io/docs/core-latest/nautilus_binance/futures/websocket/client/index.html",
        ],
    },
    Preset {
        pre_connect: None,
        books: BYBIT_OPTION_BOOKS,
        name: "bybit-option",
        title: "Bybit v5 USDC options",
        family: Family::Bybit,
        url: "wss://stream.bybit.com/v5/public/option",
        // Options have trades (per base coin), books of 25 and 100 levels, and tickers; no
        // klines, no liquidations (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook).
        channels: &["publicTrade", "orderbook.25", "orderbook.100", "tickers"],
        example: "publicTrade.BTC, orderbook.25.BTC-27DEC26-100000-C",
        keepalive: BYBIT_KEEPALIVE,
        max_connection_age: None,
        limits: Limits {
            subscribe_after_connect: Duration::ZERO,
            // Bybit caps the args of options (and linear, inverse) subscriptions by length, not
            // count: 21,000 characters per connection. 200 option topics of ~45 characters stay
            // under half of it.
            topics_per_connection: 200,
            topics_per_message: 50,
            connect_interval: ms(200),
            subscribe_interval: ms(100),
        },
        combine: bybit_option,
        route: same_url,
        notes: &[
            "Trades are per base coin (publicTrade.BTC); books (orderbook.25, orderbook.100) and tickers per option symbol. With `channels` × `symbols`, publicTrade takes each symbol's base coin.",
            "Bybit cuts a connection after about 10 minutes without a JSON ping; the option stream answers it with {\"op\":\"pong\",\"args\":[...]}.",
            "Subscriptions are answered with a COMMAND_RESP message listing successTopics and failTopics; failed topics are reported as refused.",
            "Shares stream.bybit.com's connection budget with the spot, linear and inverse presets.",
        ],
        sources: &[
            "https://bybit-exchange.github.io/docs/v5/ws/connect",
            "https://bybit-exchange.github.io/docs/v5/rate-limit",
            "https://bybit-exchange.github.io/docs/v5/websocket/public/trade",
            "https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook",
        ],
    },
    Preset {
        pre_connect: None,
        books: KRAKEN_FUTURES_BOOKS,
        name: "kraken-futures",
        title: "Kraken Futures (derivatives) v1",
        family: Family::KrakenFutures,
        url: "wss://futures.kraken.com/ws/v1",
        channels: &["book", "trade", "ticker", "ticker_lite"],
        example: "book:PF_XBTUSD, trade:PF_XBTUSD",
        // Kraken Futures closes a connection that sent no ping for 60 s; maintained clients send
        // protocol pings every 30 s (python-kraken-sdk's websockets ping_interval=30,
        // nautilus_trader's "WebSocket ping frames, not text messages"), as wsrec does for
        // Binance. The heartbeat feed (subscribed on every connection) keeps a quiet connection
        // talking; its interval is not documented (a client measured 10 s), so 90 s of silence.
        keepalive: Keepalive {
            silence_timeout: Some(secs(90)),
            ..BINANCE_KEEPALIVE
        },
        max_connection_age: None,
        limits: Limits {
            subscribe_after_connect: Duration::ZERO,
            // Kraken documents no per-connection or per-message figure: conservative choices.
            topics_per_connection: 100,
            topics_per_message: 50,
            connect_interval: secs(1),
            subscribe_interval: ms(100),
        },
        combine: colon,
        route: same_url,
        notes: &[
            "wsrec sends a protocol ping every 30 s (Kraken Futures closes a connection without one for 60 s) and subscribes to the heartbeat feed on every connection, the liveness signal of quiet books.",
            "Topics are feed:PRODUCT (book:PF_XBTUSD); a feed's first message is its snapshot (book_snapshot, trade_snapshot) and counts for the feed. `verify` checks the book deltas' `seq` (previous + 1 per product).",
            "Kraken documents no connection, subscription or message limits for this feed: 100 products per connection, 50 per message and connects 1 s apart are conservative choices.",
        ],
        sources: &[
            "https://docs.kraken.com/exchange/api-reference/futures-websocket",
            "https://docs.kraken.com/api/docs/guides/futures-websockets",
            "https://docs.kraken.com/exchange/api-reference/futures-websocket/heartbeat",
            "https://docs.kraken.com/exchange/api-reference/futures-websocket/book",
            "https://github.com/btschwertfeger/python-kraken-sdk/blob/master/kraken/futures/websocket/__init__.py",
            "https://github.com/nautechsystems/nautilus_trader/tree/develop/crates/adapters/kraken/src/websocket/futures",
            "https://github.com/bmoscon/cryptofeed/blob/master/cryptofeed/exchanges/kraken_futures.py",
        ],
    },
    Preset {
        pre_connect: None,
        books: COINBASE_EXCHANGE_BOOKS,
        name: "coinbase-exchange",
        title: "Coinbase Exchange (classic ws-feed)",
        family: Family::CoinbaseExchange,
        url: "wss://ws-feed.exchange.coinbase.com",
        // Anonymous channels: full, level2, level3, user and rfq_matches need authentication
        // (https://docs.cdp.coinbase.com/exchange/websocket-feed/authentication); auction only
        // speaks while a product is in auction, so it is not listed (it would be reported silent).
        channels: &[
            "matches",
            "ticker",
            "ticker_batch",
            "level2_batch",
            "heartbeat",
            "status",
        ],
        example: "matches:BTC-USD, level2_batch:BTC-USD",
        // Protocol pings every 30 s (as for Binance); the heartbeat channel, subscribed for every
        // product, sends one message a second.
        keepalive: Keepalive {
            silence_timeout: Some(secs(30)),
            ..BINANCE_KEEPALIVE
        },
        max_connection_age: None,
        limits: Limits {
            subscribe_after_connect: Duration::ZERO,
            // No documented figure per connection or message: conservative choices.
            topics_per_connection: 100,
            topics_per_message: 50,
            // 8 connection requests a second per IP (bursts of 20).
            connect_interval: ms(200),
            // 100 client messages a second per IP.
            subscribe_interval: ms(100),
        },
        combine: colon,
        route: same_url,
        notes: &[
            "wsrec subscribes the heartbeat channel (one message a second per product) for every product of a connection: the liveness signal of quiet products. Coinbase disconnects a connection that has not subscribed within 5 s; wsrec subscribes at once.",
            "full, level2, level3, user and rfq_matches need authentication and are not listed; level2_batch is the anonymous book (snapshot, then l2update every 50 ms).",
            "ticker and ticker_batch both deliver `ticker` messages: a product on both is one subscription to wsrec's checks. status lists every product in each message and is subscribed once per connection.",
            "ticker, matches and heartbeat messages carry a per-product `sequence` (l2update has none).",
            "Coinbase refuses a whole subscribe message for one unknown product: wsrec names the unknown product as refused and reports the other products of that message silent.",
            "Coinbase counts at most 10 subscriptions per product and channel: never run more than a few recorders of the same product and channel.",
        ],
        sources: &[
            "https://docs.cdp.coinbase.com/exchange/websocket-feed",
            "https://docs.cdp.coinbase.com/exchange/websocket-feed/channels",
            "https://docs.cdp.coinbase.com/exchange/websocket-feed/rate-limits",
            "https://docs.cdp.coinbase.com/exchange/websocket-feed/authentication",
            "https://docs.rs/barter-data/latest/src/barter_data/exchange/coinbase/subscription.rs.html",
        ],
    },
];

/// The preset called `name`.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// What a per-IP budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// New connections (WebSocket handshakes).
    Connects,
    /// Messages sent to the venue: subscribe messages draw on it, pings use the share left.
    Messages,
}

/// A venue's published limit on what one IP address may do in a window. Every stream of the
/// process that talks to the venue draws on it, through one bucket per budget
/// ([`super::pace::Bucket`]), which lets [`Budget::allowed`] through per window.
#[derive(Debug)]
pub struct Budget {
    /// Its name in logs and `wsrec venues`: the host it applies to and what it counts.
    pub name: &'static str,
    /// The presets that draw on it (one budget may span several, e.g. Bybit's markets).
    pub presets: &'static [&'static str],
    /// What it counts.
    pub counts: Counts,
    /// The venue's figure, per IP address.
    pub limit: u32,
    /// The window it applies to.
    pub per: Duration,
    /// Where the figure comes from (official page first).
    pub source: &'static str,
}

/// The share of a venue's budget wsrec uses, in percent: the rest is headroom, so reconnects
/// after a blip never reach the venue's limit (and a second process on the same IP has room).
pub const BUDGET_SHARE_PERCENT: u32 = 80;

impl Budget {
    /// How many wsrec lets through per window: [`BUDGET_SHARE_PERCENT`] of the venue's figure.
    pub fn allowed(&self) -> u32 {
        (self.limit * BUDGET_SHARE_PERCENT / 100).max(1)
    }
}

impl Preset {
    /// The per-IP budgets this preset draws on.
    pub fn budgets(&self) -> impl Iterator<Item = &'static Budget> + use<> {
        let name = self.name;
        BUDGETS.iter().filter(move |b| b.presets.contains(&name))
    }
}

/// Every venue's per-IP budget. Venues not listed document none that a recorder could reach
/// (Kraken's and Bitstamp's message limits are per connection and load-dependent; Deribit's are
/// per request credit).
pub static BUDGETS: &[Budget] = &[
    Budget {
        name: "stream.bybit.com connects",
        presets: &[
            "bybit-spot",
            "bybit-linear",
            "bybit-inverse",
            "bybit-option",
        ],
        counts: Counts::Connects,
        limit: 500,
        per: secs(300),
        source: "https://bybit-exchange.github.io/docs/v5/rate-limit (WebSocket IP limit: no more than 500 connections within a 5-minute window, counted over all of stream.bybit.com)",
    },
    Budget {
        name: "stream.binance.com connects",
        presets: &["binance-spot"],
        counts: Counts::Connects,
        limit: 300,
        per: secs(300),
        source: "https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams (a limit of 300 connections per attempt every 5 minutes per IP)",
    },
    Budget {
        name: "fstream.binance.com connects",
        presets: &["binance-usdm"],
        counts: Counts::Connects,
        limit: 300,
        per: secs(300),
        source: "not documented for USDⓈ-M (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams); spot's figure, as a conservative choice",
    },
    Budget {
        name: "ws.okx.com connects",
        presets: &["okx"],
        counts: Counts::Connects,
        limit: 3,
        per: secs(1),
        source: "https://www.okx.com/docs-v5/en/#overview-websocket-connect (connection limit: 3 requests per second, based on IP)",
    },
    Budget {
        name: "advanced-trade-ws.coinbase.com connects",
        presets: &["coinbase"],
        counts: Counts::Connects,
        limit: 8,
        per: secs(1),
        source: "https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-rate-limits (connections: 8 per second per IP address)",
    },
    Budget {
        name: "advanced-trade-ws.coinbase.com messages",
        presets: &["coinbase"],
        counts: Counts::Messages,
        limit: 8,
        per: secs(1),
        source: "https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-rate-limits (unauthenticated messages: 8 per second per IP address)",
    },
    Budget {
        name: "api-pub.bitfinex.com connects",
        presets: &["bitfinex"],
        counts: Counts::Connects,
        limit: 20,
        per: secs(60),
        source: "https://docs.bitfinex.com/docs/ws-public (the rate limit for wss://api-pub.bitfinex.com/ is 20 connections per minute)",
    },
    Budget {
        name: "ws.bitmex.com connects",
        presets: &["bitmex"],
        counts: Counts::Connects,
        limit: 60,
        per: secs(3600),
        source: "https://blog.bitmex.com/api_announcement/updates-to-rate-limits/ (WebSocket connections: 60 per hour); each welcome message's limit.remaining tightens it further",
    },
    Budget {
        name: "api.hyperliquid.xyz connects",
        presets: &["hyperliquid"],
        counts: Counts::Connects,
        limit: 30,
        per: secs(60),
        source: "30 new connections per minute per IP, as the maintained SDKs list it (e.g. guilder-client-hyperliquid, df-hyperliquid-core); https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits caps 100 connections and 1000 subscriptions at a time",
    },
    Budget {
        name: "api.hyperliquid.xyz messages",
        presets: &["hyperliquid"],
        counts: Counts::Messages,
        limit: 2000,
        per: secs(60),
        source: "https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits (2000 messages sent to Hyperliquid per minute across all websocket connections)",
    },
    Budget {
        name: "ws.bitget.com connects",
        presets: &["bitget"],
        counts: Counts::Connects,
        limit: 300,
        per: secs(300),
        source: "https://www.bitget.com/api-doc/common/websocket-intro (connection limit: 300 connection requests per IP per 5 minutes, at most 100 connections per IP)",
    },
    Budget {
        name: "kucoin.com public REST pool (connect token requests)",
        presets: &["kucoin-spot", "kucoin-futures"],
        counts: Counts::Connects,
        limit: 200,
        per: secs(30),
        source: "https://www.kucoin.com/docs-new/rate-limit (the Public resource pool: 2000 weight per 30 s per IP) and https://www.kucoin.com/docs-new/websocket-api/base-info/get-public-token-spot-margin (weight 10 per token request): 200 connects per 30 s, one token request each",
    },
    Budget {
        name: "api.upbit.com connects",
        presets: &["upbit"],
        counts: Counts::Connects,
        limit: 100,
        per: secs(60),
        source: "https://docs-e.upbit.com/docs/user-request-guide (WebSocket connection request: 5 times/sec, 100 times/min, per IP without authentication, as https://docs.upbit.com/kr/reference/rate-limits measures it)",
    },
    Budget {
        name: "dstream.binance.com connects",
        presets: &["binance-coinm"],
        counts: Counts::Connects,
        limit: 300,
        per: secs(300),
        source: "not documented for COIN-M (https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams); spot's figure (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams), as a conservative choice",
    },
    Budget {
        name: "ws-feed.exchange.coinbase.com connects",
        presets: &["coinbase-exchange"],
        counts: Counts::Connects,
        limit: 8,
        per: secs(1),
        source: "https://docs.cdp.coinbase.com/exchange/websocket-feed/rate-limits (requests per second per IP: 8, up to 20 in bursts)",
    },
    Budget {
        name: "ws-feed.exchange.coinbase.com messages",
        presets: &["coinbase-exchange"],
        counts: Counts::Messages,
        limit: 100,
        per: secs(1),
        source: "https://docs.cdp.coinbase.com/exchange/websocket-feed/rate-limits (messages sent by the client every second per IP: 100)",
    },
];

/// Protocol pings every 30 s, and a reconnect after 75 s without a message: for venues whose
/// own heartbeat requests (Deribit's `test_request`, Crypto.com's `public/heartbeat`) come at
/// least every 30 s.
const PING_30S: Keepalive = Keepalive {
    ping_interval: Some(secs(30)),
    pong_timeout: secs(10),
    app_ping: None,
    app_ping_interval: None,
    app_pong_contains: None,
    silence_timeout: Some(secs(75)),
};

/// Gate topics are `channel:SYMBOL[:param...]`: a channel given with parameters
/// (`spot.order_book_update:100ms`) takes the symbol before them.
fn gate(channel: &str, symbol: &str) -> String {
    match channel.split_once(':') {
        Some((name, params)) => format!("{name}:{symbol}:{params}"),
        None => colon(channel, symbol),
    }
}

/// Crypto.com channel names: the instrument goes after the channel (`trade.SYM`), before a
/// book's depth (`book.50` gives `book.SYM.50`; `book` alone, depth 50) and after a candle's
/// interval (`candlestick.1m` gives `candlestick.1m.SYM`; `candlestick` alone, 1 minute).
fn cryptocom(channel: &str, symbol: &str) -> String {
    match channel.split_once('.') {
        Some(("book", depth)) => format!("book.{symbol}.{depth}"),
        None if channel == "book" => format!("book.{symbol}.50"),
        None if channel == "candlestick" => format!("candlestick.1m.{symbol}"),
        _ => dot(channel, symbol),
    }
}

/// Gate closes a connection on which neither side sent a message for a minute (Gate's
/// maintainer, https://github.com/gateio/gatews/issues/34); its own client sends the market's
/// app ping every 10 s. wsrec sends it every 20 s and expects its pong; its `time` is set when
/// it is sent (see `protocol::stamp`), as for every Gate request.
const fn gate_keepalive(ping: &'static str, pong: &'static str) -> Keepalive {
    Keepalive {
        ping_interval: None,
        pong_timeout: secs(10),
        app_ping: Some(ping),
        app_ping_interval: Some(secs(20)),
        app_pong_contains: Some(pong),
        silence_timeout: Some(secs(60)),
    }
}

/// Gate documents no WebSocket connection or message limits: conservative choices.
const GATE_LIMITS: Limits = Limits {
    topics_per_connection: 100,
    topics_per_message: 20,
    connect_interval: ms(500),
    subscribe_interval: ms(200),
    subscribe_after_connect: Duration::ZERO,
};

const GATE_NOTES: &[&str] = &[
    "Topics are channel:SYMBOL with the channel's parameters after the symbol: spot.trades:BTC_USDT, spot.order_book_update:BTC_USDT:100ms, spot.order_book:BTC_USDT:20:100ms, futures.order_book_update:BTC_USDT:100ms:100, spot.candlesticks:BTC_USDT:1m (sent as Gate's payload, e.g. [\"1m\",\"BTC_USDT\"]).",
    "Gate closes a connection quiet for a minute in both directions: wsrec sends the market's app ping (spot.ping, futures.ping) every 20 s; requests and pings carry the time they are sent at (`time`, in seconds), as Gate asks.",
    "Gate documents no WebSocket limits: 100 topics per connection, 20 symbols per subscribe message, connects 500 ms and messages 200 ms apart are conservative choices.",
    "Order book updates carry U and u (first and last update id): verify checks that U follows the previous u.",
];

const GATE_SOURCES: &[&str] = &[
    "https://www.gate.com/docs/developers/apiv4/ws/en/",
    "https://www.gate.com/docs/developers/futures/ws/en/",
    "https://github.com/gateio/gatews/issues/34",
    "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/gate.ts",
    "https://github.com/bmoscon/cryptofeed/blob/master/cryptofeed/exchanges/gateio.py",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_combine_the_venue_way() {
        assert_eq!(dot("publicTrade", "BTCUSDT"), "publicTrade.BTCUSDT");
        assert_eq!(binance("aggTrade", "BTCUSDT"), "btcusdt@aggTrade");
        assert_eq!(bitstamp("live_trades", "BTCUSD"), "live_trades_btcusd");
        assert_eq!(
            deribit("trades", "BTC-PERPETUAL"),
            "trades.BTC-PERPETUAL.100ms"
        );
        assert_eq!(
            deribit("book.none.10.100ms", "ETH-PERPETUAL"),
            "book.ETH-PERPETUAL.none.10.100ms"
        );
        assert_eq!(bitfinex("candles", "tBTCUSD"), "candles:trade:1m:tBTCUSD");
        assert_eq!(
            bitfinex("candles:trade:5m", "tBTCUSD"),
            "candles:trade:5m:tBTCUSD"
        );
        assert_eq!(bitfinex("book", "tBTCUSD"), "book:tBTCUSD");
    }

    #[test]
    fn bybit_option_trades_take_the_base_coin() {
        assert_eq!(
            bybit_option("publicTrade", "BTC-27DEC26-100000-C"),
            "publicTrade.BTC"
        );
        assert_eq!(bybit_option("publicTrade", "ETH"), "publicTrade.ETH");
        assert_eq!(
            bybit_option("orderbook.25", "BTC-27DEC26-100000-C"),
            "orderbook.25.BTC-27DEC26-100000-C"
        );
        // Options share stream.bybit.com's connect budget with the other Bybit markets.
        let option = find("bybit-option").unwrap().budgets().next().unwrap();
        assert!(std::ptr::eq(
            option,
            find("bybit-linear").unwrap().budgets().next().unwrap()
        ));
        // COIN-M serves every stream on one path.
        let coinm = find("binance-coinm").unwrap();
        for topic in [
            "btcusd_perp@aggTrade",
            "btcusd_perp@depth@100ms",
            "!bookTicker",
        ] {
            assert_eq!((coinm.route)(coinm.url, topic), coinm.url, "{topic}");
        }
    }

    #[test]
    fn routed_urls() {
        let u = "wss://fstream.binance.com/market/stream";
        assert_eq!(
            binance_usdm_route(u, "btcusdt@aggTrade"),
            "wss://fstream.binance.com/market/stream"
        );
        assert_eq!(
            binance_usdm_route(u, "btcusdt@depth@100ms"),
            "wss://fstream.binance.com/public/stream"
        );
        assert_eq!(
            binance_usdm_route(u, "btcusdt@bookTicker"),
            "wss://fstream.binance.com/public/stream"
        );
        let public = "wss://fstream.binance.com/public/stream";
        let market = "wss://fstream.binance.com/market/stream";
        for (topic, want) in [
            ("btcusdt@trade", public),
            ("btcusdt@rpiDepth@500ms", public),
            ("btcusdt@depth20@100ms", public),
            ("!bookTicker", public),
            ("btcusdt@markPrice@1s", market),
            ("btcusdt@kline_1m", market),
            ("!forceOrder@arr", market),
            ("!markPrice@arr@1s", market),
            ("!ticker@arr", market),
            ("!contractInfo", market),
        ] {
            assert_eq!(binance_usdm_route(u, topic), want, "{topic}");
        }
        let o = "wss://ws.okx.com/ws/v5/public";
        assert_eq!(okx_route(o, "books:BTC-USDT"), o);
        let business = "wss://ws.okx.com/ws/v5/business";
        for topic in [
            "candle1m:BTC-USDT",
            "mark-price-candle1m:BTC-USDT-SWAP",
            "index-candle1H:BTC-USD",
            "trades-all:BTC-USDT",
        ] {
            assert_eq!(okx_route(o, topic), business, "{topic}");
        }
        for topic in [
            "mark-price:BTC-USDT-SWAP",
            "index-tickers:BTC-USD",
            "tickers:BTC-USDT",
        ] {
            assert_eq!(okx_route(o, topic), o, "{topic}");
        }
    }

    #[test]
    fn htx_spot_incremental_books_go_to_the_feed_path() {
        let u = "wss://api.huobi.pro/ws";
        assert_eq!(
            htx_spot_route(u, "market.btcusdt.mbp.150"),
            "wss://api.huobi.pro/feed"
        );
        for topic in ["market.btcusdt.trade.detail", "market.btcusdt.depth.step0"] {
            assert_eq!(htx_spot_route(u, topic), u, "{topic}");
        }
        assert_eq!(
            htx_spot("trade.detail", "BTCUSDT"),
            "market.btcusdt.trade.detail"
        );
        assert_eq!(htx_swap("bbo", "BTC-USDT"), "market.BTC-USDT.bbo");
    }

    #[test]
    fn mexc_streams_put_the_symbol_where_mexc_does() {
        assert_eq!(
            mexc("aggre.deals@100ms", "btcusdt"),
            "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
        );
        assert_eq!(
            mexc("limit.depth@5", "BTCUSDT"),
            "spot@public.limit.depth.v3.api.pb@BTCUSDT@5"
        );
        assert_eq!(
            mexc("kline@Min1", "BTCUSDT"),
            "spot@public.kline.v3.api.pb@BTCUSDT@Min1"
        );
    }

    #[test]
    fn okx_is_dialled_on_the_default_port() {
        // OKX no longer accepts WebSocket connections on port 8443 (see the preset).
        let okx = find("okx").unwrap();
        for topic in ["books:BTC-USDT", "candle1m:BTC-USDT"] {
            let routed = url::Url::parse(&(okx.route)(okx.url, topic)).unwrap();
            assert_eq!(routed.port(), None, "{routed}");
            assert_eq!(routed.port_or_known_default(), Some(443));
        }
    }

    #[test]
    fn presets_list_only_what_an_anonymous_connection_can_subscribe() {
        let spot = find("bybit-spot").unwrap();
        assert!(!spot.channels.contains(&"allLiquidation"));
        assert!(
            find("bybit-linear")
                .unwrap()
                .channels
                .contains(&"allLiquidation")
        );
        let okx = find("okx").unwrap();
        for login_only in ["books-l2-tbt", "books50-l2-tbt"] {
            assert!(!okx.channels.contains(&login_only), "{login_only}");
        }
    }

    #[test]
    fn budgets_name_known_presets_and_keep_headroom() {
        for b in BUDGETS {
            for p in b.presets {
                assert!(find(p).is_some(), "{}: unknown preset {p}", b.name);
            }
            assert!(b.allowed() < b.limit || b.limit == 1, "{}", b.name);
            assert!(b.source.contains("https://"), "{}: cite the source", b.name);
        }
        let bybit = find("bybit-linear").unwrap().budgets().next().unwrap();
        assert_eq!(bybit.allowed(), 400);
        // Spot, linear and inverse share stream.bybit.com's budget.
        assert!(std::ptr::eq(
            find("bybit-spot").unwrap().budgets().next().unwrap(),
            bybit
        ));
        assert_eq!(find("kraken").unwrap().budgets().count(), 0);
    }

    #[test]
    fn every_preset_cites_its_sources_official_page_first() {
        for p in PRESETS {
            let first = p.sources.first();
            assert!(
                first.is_some_and(|u| u.starts_with("https://") && !u.contains("github.com")),
                "{}: the first source must be the venue's own page: {:?}",
                p.name,
                p.sources
            );
            for u in p.sources {
                let parsed = url::Url::parse(u).unwrap_or_else(|e| panic!("{}: {u}: {e}", p.name));
                assert_eq!(parsed.scheme(), "https", "{}: {u}", p.name);
                assert!(!u.contains(' '), "{}: one URL per entry: {u}", p.name);
            }
            // Every page a budget's figure comes from is among the preset's sources.
            for b in p.budgets() {
                for word in b.source.split(['(', ')', ' ', ';', ',']) {
                    if word.starts_with("https://") {
                        assert!(
                            p.sources.contains(&word),
                            "{}: {word} not in sources",
                            p.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_preset_is_consistent() {
        let mut names = std::collections::HashSet::new();
        for p in PRESETS {
            assert!(names.insert(p.name), "duplicate {}", p.name);
            assert!(p.url.starts_with("wss://"), "{}", p.name);
            let k = &p.keepalive;
            assert_eq!(
                k.app_ping.is_some(),
                k.app_ping_interval.is_some(),
                "{}",
                p.name
            );
            // HTX pings itself and its family answers every ping; a dead connection shows
            // by its silence.
            let answers_server_pings = p.family == Family::Htx && k.silence_timeout.is_some();
            assert!(
                k.app_ping.is_some() || k.ping_interval.is_some() || answers_server_pings,
                "{}: no keepalive",
                p.name
            );
            assert!(p.limits.topics_per_connection >= p.limits.topics_per_message);
            for t in p.example.split(", ") {
                super::super::protocol::parse_topic(p.family, t)
                    .unwrap_or_else(|e| panic!("{}: {t}: {e}", p.name));
            }
            // Every budget names presets that exist; a preset has at most one of each kind.
            for kind in [Counts::Connects, Counts::Messages] {
                assert!(p.budgets().filter(|b| b.counts == kind).count() <= 1);
            }
            // Every listed channel makes a topic the venue accepts (`channels` × `symbols`).
            for c in p.channels {
                let t = (p.combine)(c, "SYM");
                super::super::protocol::parse_topic(p.family, &t)
                    .unwrap_or_else(|e| panic!("{}: channel {c} gives {t}: {e}", p.name));
            }
        }
    }

    #[test]
    fn gate_and_cryptocom_topics_put_the_symbol_where_the_venue_wants_it() {
        assert_eq!(gate("spot.trades", "BTC_USDT"), "spot.trades:BTC_USDT");
        assert_eq!(
            gate("spot.order_book:20:100ms", "BTC_USDT"),
            "spot.order_book:BTC_USDT:20:100ms"
        );
        assert_eq!(
            gate("futures.candlesticks:1m", "BTC_USDT"),
            "futures.candlesticks:BTC_USDT:1m"
        );
        assert_eq!(cryptocom("trade", "BTCUSD-PERP"), "trade.BTCUSD-PERP");
        assert_eq!(cryptocom("book", "BTCUSD-PERP"), "book.BTCUSD-PERP.50");
        assert_eq!(cryptocom("book.10", "BTC_USDT"), "book.BTC_USDT.10");
        assert_eq!(
            cryptocom("candlestick.5m", "BTC_USDT"),
            "candlestick.5m.BTC_USDT"
        );
        assert_eq!(
            cryptocom("candlestick", "BTC_USDT"),
            "candlestick.1m.BTC_USDT"
        );
        // Crypto.com waits 1 s after connecting; the others do not wait.
        assert_eq!(
            find("cryptocom").unwrap().limits.subscribe_after_connect,
            secs(1)
        );
        assert_eq!(
            find("bybit-spot").unwrap().limits.subscribe_after_connect,
            Duration::ZERO
        );
    }

    #[test]
    fn kucoin_and_dydx_topics_and_token_endpoints() {
        assert_eq!(
            kucoin("/market/match", "BTC-USDT"),
            "/market/match:BTC-USDT"
        );
        assert_eq!(
            kucoin("/market/candles_1min", "BTC-USDT"),
            "/market/candles:BTC-USDT_1min"
        );
        assert_eq!(
            kucoin("/contractMarket/limitCandle_1hour", "XBTUSDTM"),
            "/contractMarket/limitCandle:XBTUSDTM_1hour"
        );
        assert_eq!(
            kucoin("/spotMarket/level2Depth5", "BTC-USDT"),
            "/spotMarket/level2Depth5:BTC-USDT"
        );
        assert_eq!(dydx("v4_trades", "BTC-USD"), "v4_trades:BTC-USD");
        assert_eq!(
            dydx("v4_candles.1MIN", "BTC-USD"),
            "v4_candles:BTC-USD/1MIN"
        );
        assert_eq!(dydx("v4_markets", "BTC-USD"), "v4_markets");
        // Spot and futures tokens come from their own hosts and cannot be mixed.
        let spot = find("kucoin-spot").unwrap().pre_connect.unwrap();
        let futures = find("kucoin-futures").unwrap().pre_connect.unwrap();
        assert_eq!(spot.url, "https://api.kucoin.com/api/v1/bullet-public");
        assert_eq!(
            futures.url,
            "https://api-futures.kucoin.com/api/v1/bullet-public"
        );
        assert!(
            PRESETS
                .iter()
                .filter(|p| p.pre_connect.is_some())
                .all(|p| p.family == Family::Kucoin)
        );
        // Both draw on one budget of token requests, with headroom.
        let b = find("kucoin-futures").unwrap().budgets().next().unwrap();
        assert_eq!((b.limit, b.allowed(), b.per), (200, 160, secs(30)));
        assert!(std::ptr::eq(
            b,
            find("kucoin-spot").unwrap().budgets().next().unwrap()
        ));
    }
}
