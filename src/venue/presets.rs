//! The preset table: each venue's URL, keepalive, lifetime and limits.
//!
//! Sources: the venues' API documentation (keepalive rules, idle cuts, connection lifetimes, rate
//! limits), cited next to the facts and listed in each preset's `sources` (official pages first,
//! then maintained clients), which `wsrec venues NAME` shows. Where a venue documents no limit,
//! the figure here is a conservative choice and says so in its note.

use std::time::Duration;

use super::Family;

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
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

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
        max_connection_age: Some(secs(23 * 3600 + 1800)),
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
        },
        combine: binance,
        route: same_url,
        notes: BINANCE_NOTES_SPOT,
        sources: &["https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams"],
    },
    Preset {
        name: "binance-usdm",
        title: "Binance USDⓈ-M futures (routed /public and /market streams)",
        family: Family::Binance,
        url: "wss://fstream.binance.com/market/stream",
        channels: BINANCE_FUTURES_CHANNELS,
        example: "btcusdt@aggTrade, btcusdt@depth@100ms",
        keepalive: BINANCE_KEEPALIVE,
        max_connection_age: Some(secs(23 * 3600 + 1800)),
        limits: Limits {
            topics_per_connection: 1024,
            topics_per_message: 100,
            connect_interval: secs(1),
            // 10 incoming messages per second, pings and pongs included
            // (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams):
            // at most 4 subscribe messages per second leaves room for a pong and a ping.
            subscribe_interval: ms(250),
        },
        combine: binance,
        route: binance_usdm_route,
        notes: BINANCE_NOTES_USDM,
        sources: &[
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams",
            "https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice",
            "https://github.com/ccxt/ccxt/blob/master/ts/src/pro/binance.ts",
        ],
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
    },
    Preset {
        name: "deribit",
        title: "Deribit public (JSON-RPC)",
        family: Family::Deribit,
        url: "wss://www.deribit.com/ws/api/v2",
        channels: &["trades", "book", "ticker", "book.none.10.100ms"],
        example: "trades.BTC-PERPETUAL.100ms, book.BTC-PERPETUAL.100ms",
        keepalive: Keepalive {
            ping_interval: Some(secs(30)),
            pong_timeout: secs(10),
            app_ping: None,
            app_ping_interval: None,
            app_pong_contains: None,
            silence_timeout: Some(secs(75)),
        },
        max_connection_age: None,
        limits: Limits {
            topics_per_connection: 500,
            topics_per_message: 50,
            connect_interval: ms(500),
            subscribe_interval: ms(350),
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
    },
    Preset {
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
        max_connection_age: Some(secs(23 * 3600 + 1800)),
        limits: Limits {
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
            assert!(
                k.app_ping.is_some() || k.ping_interval.is_some(),
                "{}: no keepalive",
                p.name
            );
            assert!(p.limits.topics_per_connection >= p.limits.topics_per_message);
            for t in p.example.split(", ") {
                super::super::wire::parse_topic(p.family, t)
                    .unwrap_or_else(|e| panic!("{}: {t}: {e}", p.name));
            }
            // Every budget names presets that exist; a preset has at most one of each kind.
            for kind in [Counts::Connects, Counts::Messages] {
                assert!(p.budgets().filter(|b| b.counts == kind).count() <= 1);
            }
            // Every listed channel makes a topic the venue accepts (`channels` × `symbols`).
            for c in p.channels {
                let t = (p.combine)(c, "SYM");
                super::super::wire::parse_topic(p.family, &t)
                    .unwrap_or_else(|e| panic!("{}: channel {c} gives {t}: {e}", p.name));
            }
        }
    }
}
