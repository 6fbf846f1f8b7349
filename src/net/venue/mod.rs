//! Venue presets: record an exchange feed with one line, with that venue's rules.
//!
//! A preset ([`Preset`], the table in [`presets`]) knows a venue's URL, how its subscribe
//! messages look ([`protocol`]), how it keeps connections alive, how long they may live, how many
//! subscriptions fit on one connection and one message, and how fast connects and subscribes may
//! come ([`pace`]): spaced per venue, and held to 80% of the venue's per-IP budgets
//! ([`presets::BUDGETS`]) by buckets every stream of the process shares. [`apply`] fills a `[[stream]]` from a preset, leaving every field the user
//! set alone; [`plan`] splits the stream's topics over as many connections ("shards") as the
//! venue's limits need. On each connection a [`track::Tracker`] reads the venue's acks, errors,
//! reconnect requests and heartbeat requests, and reports subscriptions that were rejected or
//! that stay silent.
//!
//! A venue that hands out a connect token over REST (KuCoin) is asked for one before every
//! connect ([`token`]); the answer names the server to dial and how often to ping it. Requests
//! to a venue's REST API are held to its per-IP weight budget, one per host for the whole
//! process ([`rest`]).
//!
//! Topics are written the venue's own way, e.g. `publicTrade.BTCUSDT` (Bybit), `btcusdt@aggTrade`
//! (Binance), `books:BTC-USDT` (OKX), `level2:BTC-USD` (Coinbase); `channels` × `symbols` in
//! the config are combined into such topics by the preset.
//!
//! `wsrec venues` prints the table ([`describe_all`]), one preset with the sources of its facts
//! ([`describe_one`]), or either as JSON ([`to_json`]).

pub mod book;
pub mod pace;
pub mod presets;
pub mod protocol;
pub mod rest;
pub mod token;
pub mod track;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::{Config, OutMessage, StreamConfig, Unresolved, VenueCatalog};
use crate::error::ConfigError;

pub use presets::{PRESETS, Preset, find};

/// The protocol family of a venue: how its messages are built and recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Bybit v5 public streams (spot, linear, inverse, option).
    Bybit,
    /// Binance spot, USDⓈ-M and COIN-M combined streams.
    Binance,
    /// OKX v5.
    Okx,
    /// Coinbase Advanced Trade.
    Coinbase,
    /// Kraken spot v2.
    Kraken,
    /// Bitstamp v2.
    Bitstamp,
    /// Bitfinex v2.
    Bitfinex,
    /// Deribit JSON-RPC.
    Deribit,
    /// BitMEX realtime.
    Bitmex,
    /// Hyperliquid.
    Hyperliquid,
    /// Gate API v4 (spot and futures).
    Gate,
    /// Bitget v2 public.
    Bitget,
    /// Crypto.com Exchange v1 market data.
    Cryptocom,
    /// HTX (Huobi) market data: gzip-compressed binary frames, `{"ping":N}` answered.
    Htx,
    /// MEXC spot v3: JSON acks, protobuf data in binary frames.
    Mexc,
    /// KuCoin classic spot and futures (a connect token from REST before each connect).
    Kucoin,
    /// dYdX v4 indexer.
    Dydx,
    /// Upbit quotation: one request for every topic, JSON data in binary frames.
    Upbit,
    /// Kraken Futures (derivatives) v1.
    KrakenFutures,
    /// Coinbase Exchange, the classic feed.
    CoinbaseExchange,
}

/// One subscription in the venue's own notation, as written in the config or on the command line.
pub type Topic = String;

/// Stream fields a preset sets; the user's own value for any of them wins.
pub const PRESET_FIELDS: &[&str] = &[
    "url",
    "ping_interval",
    "pong_timeout",
    "app_ping",
    "app_ping_interval",
    "app_pong_contains",
    "silence_timeout",
    "max_connection_age",
    "first_data_timeout",
    "max_topics_per_connection",
    "max_topics_per_message",
    "connect_interval",
    "subscribe_interval",
    "token_url",
    "snapshot_url",
];

/// Fills `s` from its `venue` preset: every field of [`PRESET_FIELDS`] that is not in `set` (the
/// keys the user gave) takes the preset's value. Topics from `channels` × `symbols` are added to
/// `topics`. A stream without `venue` is left alone.
///
/// # Errors
/// An unknown venue, a venue stream without topics (and without its own `subscribe`), or
/// topics that do not fit the venue's notation.
pub fn apply(s: &mut StreamConfig, set: &BTreeSet<String>) -> Result<(), ConfigError> {
    let ctx = format!("stream `{}`", s.name);
    let Some(name) = s.venue.clone() else {
        if !s.channels.is_empty() || !s.symbols.is_empty() || !s.topics.is_empty() {
            return Err(invalid(
                &format!("{ctx}: topics/channels/symbols"),
                "need a `venue` to turn them into subscribe messages; set venue (see `wsrec venues`) or write the messages in `subscribe`",
            ));
        }
        return Ok(());
    };
    let preset = find(&name).ok_or_else(|| invalid(&format!("{ctx}: venue"), &unknown(&name)))?;
    let keep = |f: &str| set.contains(f);
    if !keep("url") {
        preset.url.clone_into(&mut s.url);
    }
    let k = &preset.keepalive;
    if !keep("ping_interval") {
        s.ping_interval = k.ping_interval;
    }
    if !keep("pong_timeout") {
        s.pong_timeout = Some(k.pong_timeout);
    }
    if !keep("app_ping") {
        s.app_ping = k.app_ping.map(|m| OutMessage(m.to_owned()));
    }
    if !keep("app_ping_interval") {
        s.app_ping_interval = k.app_ping_interval;
    }
    if !keep("app_pong_contains") {
        s.app_pong_contains = k.app_pong_contains.map(str::to_owned);
    }
    if !keep("silence_timeout") {
        s.silence_timeout = k.silence_timeout;
    }
    if !keep("max_connection_age") {
        s.max_connection_age = preset.max_connection_age;
    }
    if !keep("first_data_timeout") {
        s.first_data_timeout = Some(DEFAULT_FIRST_DATA_TIMEOUT);
    }
    let l = &preset.limits;
    if !keep("max_topics_per_connection") {
        s.max_topics_per_connection = l.topics_per_connection;
    }
    if !keep("max_topics_per_message") {
        s.max_topics_per_message = l.topics_per_message;
    }
    if !keep("connect_interval") {
        s.connect_interval = Some(l.connect_interval);
    }
    if !keep("subscribe_interval") {
        s.subscribe_interval = Some(l.subscribe_interval);
    }
    // The token endpoint belongs to the venue's own servers: a URL of the user's own (a relay,
    // a replay server) is dialled as it is.
    if !keep("token_url") && s.url == preset.url {
        s.token_url = preset.pre_connect.map(|p| p.url.to_owned());
    }
    // Likewise the REST API snapshots are asked from.
    if !keep("snapshot_url") && s.url == preset.url {
        s.snapshot_url = preset.rest_snapshot().map(|r| r.base.to_owned());
    }
    for c in &s.channels {
        for sym in &s.symbols {
            let t = (preset.combine)(c, sym);
            if !s.topics.contains(&t) {
                s.topics.push(t);
            }
        }
    }
    if s.channels.is_empty() != s.symbols.is_empty() {
        return Err(invalid(
            &format!("{ctx}: channels/symbols"),
            "give both `channels` and `symbols` (every channel is subscribed for every symbol), or list full topics in `topics`",
        ));
    }
    if s.topics.is_empty() && s.subscribe.is_empty() {
        return Err(invalid(
            &format!("{ctx}: topics"),
            &format!(
                "venue `{name}` needs something to subscribe to: `channels` and `symbols`, or `topics` such as {}",
                preset.example
            ),
        ));
    }
    for t in &s.topics {
        protocol::parse_topic(preset.family, t).map_err(|m| {
            invalid(
                &format!("{ctx}: topic `{t}`"),
                &format!("{m} (example for {name}: {})", preset.example),
            )
        })?;
    }
    Ok(())
}

/// Fills every `[[stream]]` of a config as read ([`Unresolved`]) from its preset, in file
/// order, each with the keys it set itself kept (see [`apply`]).
///
/// # Errors
/// The first stream [`apply`] refuses.
pub fn resolve(read: Unresolved) -> Result<Config, ConfigError> {
    let Unresolved {
        mut config,
        stream_keys,
        ..
    } = read;
    for (s, keys) in config.streams.iter_mut().zip(&stream_keys) {
        apply(s, keys)?;
    }
    Ok(config)
}

/// The preset table as config validation asks it (a "did you mean", connect tokens).
#[derive(Clone, Copy, Debug, Default)]
pub struct Catalog;

impl VenueCatalog for Catalog {
    fn closest(&self, name: &str) -> Option<&'static str> {
        closest(name)
    }

    fn takes_token(&self, name: &str) -> bool {
        find(name).is_some_and(|p| p.pre_connect.is_some())
    }

    fn takes_snapshots(&self, name: &str) -> bool {
        find(name).is_some_and(|p| p.rest_snapshot().is_some())
    }
}

/// How long a subscription may stay without data before it is reported, for presets.
pub const DEFAULT_FIRST_DATA_TIMEOUT: Duration = Duration::from_secs(120);

/// One connection's share of a stream: where to connect and what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The URL this shard connects to.
    pub url: String,
    /// Messages sent after every connect, in order.
    pub subscribe: Vec<String>,
    /// The topics this shard subscribes to (empty for a stream without a venue).
    pub topics: Vec<Topic>,
    /// The topics named in `url` itself (without request id), if any, then for each message in
    /// `subscribe`: the topics it asks for and its request id.
    pub requests: Vec<(Vec<Topic>, Option<u64>)>,
    /// How many of `topics`, from the front, `url` names itself (Binance combined streams).
    pub in_url: usize,
}

/// Splits a stream over connections: one shard for a plain stream (its own `subscribe`), as
/// many as the venue's limits need for a preset stream. Where the venue takes streams in the
/// connection URL (Binance), a shard's URL names as many of its topics as fit
/// ([`protocol::url_streams`]) and only the rest go in subscribe messages.
pub fn plan(s: &StreamConfig) -> Vec<Shard> {
    let preset = s.venue.as_deref().and_then(find);
    let (Some(preset), false) = (preset, s.topics.is_empty() || !s.subscribe.is_empty()) else {
        return vec![Shard {
            url: s.url.clone(),
            subscribe: s.subscribe.iter().map(|m| m.0.clone()).collect(),
            topics: Vec::new(),
            requests: vec![(Vec::new(), None); s.subscribe.len()],
            in_url: 0,
        }];
    };
    // Topics go to the URL the venue serves them on, unless the user set the URL.
    let url_set = s.url != preset.url;
    let mut by_url: Vec<(String, Vec<Topic>)> = Vec::new();
    for t in &s.topics {
        let url = if url_set {
            s.url.clone()
        } else {
            (preset.route)(preset.url, t)
        };
        match by_url.iter_mut().find(|(u, _)| *u == url) {
            Some((_, ts)) => ts.push(t.clone()),
            None => by_url.push((url, vec![t.clone()])),
        }
    }
    let per_conn = s.max_topics_per_connection.max(1);
    let per_msg = s.max_topics_per_message.max(1);
    let mut shards = Vec::new();
    for (url, topics) in by_url {
        for chunk in topics.chunks(per_conn) {
            let mut ids = 1u64;
            let (conn_url, named) = protocol::url_streams(preset.family, &url, chunk);
            let built =
                protocol::subscribe_messages(preset.family, &chunk[named..], per_msg, &mut ids);
            let mut requests = Vec::new();
            if named > 0 {
                requests.push((chunk[..named].to_vec(), None));
            }
            requests.extend(built.iter().map(|m| (m.topics.clone(), m.id)));
            shards.push(Shard {
                url: conn_url,
                subscribe: built.into_iter().map(|m| m.text).collect(),
                requests,
                topics: chunk.to_vec(),
                in_url: named,
            });
        }
    }
    shards
}

fn invalid(field: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// Splits `venue:topic,topic` (the one-line form of `wsrec record`) when the part before the
/// colon names a preset; `None` for anything else (such as a URL).
pub fn split_spec(spec: &str) -> Option<(&'static Preset, Vec<Topic>)> {
    if spec.contains("://") {
        return None;
    }
    let (venue, topics) = spec.split_once(':').unwrap_or((spec, ""));
    let preset = find(venue)?;
    let topics = topics
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    Some((preset, topics))
}

/// The preset name closest to a mistyped `name` (a few letters off), for a "did you mean".
pub fn closest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let limit = (name.len() / 4).max(2);
    PRESETS
        .iter()
        .map(|p| (strsim::damerau_levenshtein(&name, p.name), p.name))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// What to say about a venue name that is no preset: the closest preset, if one is a few
/// letters off, and the known ones.
pub fn unknown(name: &str) -> String {
    let hint = closest(name).map_or(String::new(), |c| format!("did you mean `{c}`? "));
    format!(
        "unknown venue `{name}`; {hint}known: {} (`wsrec venues` lists them)",
        PRESETS
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The text of `wsrec venues`: every preset with its URL, channels and rules.
pub fn describe_all() -> String {
    let mut out = String::new();
    for p in PRESETS {
        out.push_str(&describe(p, false));
        out.push('\n');
    }
    out.push_str(OVERRIDE_HINT);
    out.push_str("`wsrec venues NAME` shows one preset with its sources; `--json` prints them for machines.\n");
    out
}

/// The text of `wsrec venues NAME`: the preset as [`describe_all`] lists it, with its sources.
pub fn describe_one(p: &Preset) -> String {
    let mut out = describe(p, true);
    out.push('\n');
    out.push_str(OVERRIDE_HINT);
    out
}

const OVERRIDE_HINT: &str = "Every preset field can be overridden in the [[stream]] (url, ping and liveness settings, \
     max_connection_age, first_data_timeout, max_topics_per_connection, \
     max_topics_per_message, connect_interval, subscribe_interval, token_url).\n";

/// How a budget names what it counts.
fn counts_name(c: presets::Counts) -> &'static str {
    match c {
        presets::Counts::Connects => "connects",
        presets::Counts::Messages => "messages",
    }
}

/// One preset: URL, channels, topics, keepalive, lifetime, limits, budgets, notes, and with
/// `sources` how each book channel's book starts and the pages its facts come from.
fn describe(p: &Preset, sources: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}  ({})", p.name, p.title);
    let _ = writeln!(out, "  url:        {}", p.url);
    let _ = writeln!(out, "  channels:   {}", p.channels.join(", "));
    let _ = writeln!(
        out,
        "  topics:     {}  (one line: wsrec record {}:{})",
        p.example,
        p.name,
        p.example.split(", ").next().unwrap_or("")
    );
    let _ = writeln!(out, "  keepalive:  {}", p.keepalive.describe());
    let age = p.max_connection_age.map_or("no limit".to_owned(), |d| {
        format!("replaced after {}", humantime::format_duration(d))
    });
    let _ = writeln!(out, "  lifetime:   {age}");
    if let Some(pc) = &p.pre_connect {
        let _ = writeln!(
            out,
            "  connect:    asks {} (POST) for a connect token and the server to dial before every connect",
            pc.url
        );
    }
    let l = &p.limits;
    let _ = writeln!(
        out,
        "  limits:     {} topics per connection, {} per subscribe message, connects {} apart, subscribe messages {} apart",
        l.topics_per_connection,
        l.topics_per_message,
        humantime::format_duration(l.connect_interval),
        humantime::format_duration(l.subscribe_interval)
    );
    if !l.subscribe_after_connect.is_zero() {
        let _ = writeln!(
            out,
            "  settle:     first subscribe message {} after the connection opens",
            humantime::format_duration(l.subscribe_after_connect)
        );
    }
    for b in p.budgets() {
        let what = counts_name(b.counts);
        let host = b.name.split(' ').next().unwrap_or(b.name);
        let shared = if b.presets.len() > 1 {
            format!("; shared by {}", b.presets.join(", "))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  budget:     {} {what} per {} ({}% of the {} per IP that {host} allows{shared})",
            b.allowed(),
            humantime::format_duration(b.per),
            presets::BUDGET_SHARE_PERCENT,
            b.limit,
        );
    }
    for n in p.notes {
        let _ = writeln!(out, "  note:       {n}");
    }
    if sources {
        for b in p.books {
            let _ = writeln!(out, "  book:       {}", b.describe());
        }
        for u in p.sources {
            let _ = writeln!(out, "  source:     {u}");
        }
    }
    out
}

/// A duration in milliseconds, for `--json`.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One preset for `wsrec venues --json`: every fact [`describe_one`] shows, durations in
/// milliseconds (`null`: none).
pub fn to_json(p: &Preset) -> serde_json::Value {
    let k = &p.keepalive;
    let l = &p.limits;
    let budgets: Vec<serde_json::Value> = p
        .budgets()
        .map(|b| {
            serde_json::json!({
                "name": b.name,
                "counts": counts_name(b.counts),
                "limit": b.limit,
                "per_ms": millis(b.per),
                "allowed": b.allowed(),
                "presets": b.presets,
                "source": b.source,
            })
        })
        .collect();
    serde_json::json!({
        "name": p.name,
        "title": p.title,
        "url": p.url,
        "channels": p.channels,
        "example_topics": p.example.split(", ").collect::<Vec<_>>(),
        "keepalive": {
            "ping_interval_ms": k.ping_interval.map(millis),
            "pong_timeout_ms": millis(k.pong_timeout),
            "app_ping": k.app_ping,
            "app_ping_interval_ms": k.app_ping_interval.map(millis),
            "app_pong_contains": k.app_pong_contains,
            "silence_timeout_ms": k.silence_timeout.map(millis),
            "summary": k.describe(),
        },
        "max_connection_age_ms": p.max_connection_age.map(millis),
        "token_url": p.pre_connect.map(|pc| pc.url),
        "limits": {
            "topics_per_connection": l.topics_per_connection,
            "topics_per_message": l.topics_per_message,
            "connect_interval_ms": millis(l.connect_interval),
            "subscribe_interval_ms": millis(l.subscribe_interval),
            "subscribe_after_connect_ms": millis(l.subscribe_after_connect),
        },
        "budget_share_percent": presets::BUDGET_SHARE_PERCENT,
        "budgets": budgets,
        "notes": p.notes,
        "books": p.books.iter().map(book::BookChannel::to_json).collect::<Vec<_>>(),
        "sources": p.sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn stream(toml: &str) -> StreamConfig {
        let c = Config::parse_toml(&format!("[[stream]]\nname = \"s\"\n{toml}\n"))
            .and_then(resolve)
            .unwrap();
        c.streams.into_iter().next().unwrap()
    }

    #[test]
    fn a_mistyped_venue_is_matched_to_the_closest_preset() {
        assert_eq!(closest("bybit-linaer"), Some("bybit-linear"));
        assert_eq!(closest("BINANCE-USDN"), Some("binance-usdm"));
        assert_eq!(closest("okk"), Some("okx"));
        assert_eq!(closest("nasdaq-totalview"), None);
        let err = Config::parse_toml(
            "[[stream]]\nname = \"s\"\nvenue = \"bybit-linaer\"\ntopics = [\"publicTrade.BTCUSDT\"]\n",
        )
        .and_then(resolve)
        .unwrap_err()
        .to_string();
        assert!(err.contains("did you mean `bybit-linear`?"), "{err}");
    }

    #[test]
    fn user_fields_win_over_the_preset() {
        let s = stream(
            "venue = \"okx\"\ntopics = [\"books:BTC-USDT\"]\napp_ping_interval = \"10s\"\nmax_connection_age = \"6h\"",
        );
        assert_eq!(s.url, "wss://ws.okx.com/ws/v5/public");
        assert_eq!(s.app_ping.as_ref().unwrap().as_str(), "ping");
        assert_eq!(s.app_ping_interval, Some(Duration::from_secs(10)));
        assert_eq!(s.max_connection_age, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(s.silence_timeout, Some(Duration::from_secs(60)));
        assert_eq!(s.first_data_timeout, Some(DEFAULT_FIRST_DATA_TIMEOUT));
        // A plain stream keeps the generic defaults.
        let plain = stream("url = \"wss://h/\"");
        assert_eq!(plain.first_data_timeout, None);
        assert_eq!(plain.connect_interval, None);
    }

    #[test]
    fn topics_are_routed_and_split_by_the_venue_limits() {
        let s = stream(
            "venue = \"binance-usdm\"\nchannels = [\"aggTrade\", \"depth@100ms\"]\nsymbols = [\"BTCUSDT\", \"ETHUSDT\", \"SOLUSDT\"]\nmax_topics_per_connection = 2",
        );
        let shards = plan(&s);
        let summary: Vec<(String, Vec<Topic>)> = shards
            .iter()
            .map(|sh| {
                let base = sh.url.split_once('?').map_or(sh.url.as_str(), |(b, _)| b);
                (base.to_owned(), sh.topics.clone())
            })
            .collect();
        let market = "wss://fstream.binance.com/market/stream".to_owned();
        let public = "wss://fstream.binance.com/public/stream".to_owned();
        let t = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            summary,
            [
                (market.clone(), t(&["btcusdt@aggTrade", "ethusdt@aggTrade"])),
                (market, t(&["solusdt@aggTrade"])),
                (
                    public.clone(),
                    t(&["btcusdt@depth@100ms", "ethusdt@depth@100ms"])
                ),
                (public, t(&["solusdt@depth@100ms"])),
            ]
        );
        // Binance takes the streams in the URL: no subscribe message.
        assert_eq!(
            shards[0].url,
            "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade"
        );
        assert!(shards.iter().all(|sh| sh.subscribe.is_empty()));
        assert_eq!(
            shards[0].requests,
            [(t(&["btcusdt@aggTrade", "ethusdt@aggTrade"]), None)]
        );
        // With the URL set by the user, everything goes there.
        let s = stream(
            "venue = \"binance-usdm\"\nurl = \"wss://fstream.binance.com/ws\"\ntopics = [\"btcusdt@aggTrade\", \"btcusdt@bookTicker\"]",
        );
        let shards = plan(&s);
        assert_eq!(shards.len(), 1);
        assert_eq!(shards[0].url, "wss://fstream.binance.com/ws");
        // Not a combined-stream URL: the streams go in a subscribe message.
        assert_eq!(
            shards[0].subscribe,
            [r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@bookTicker"],"id":1}"#]
        );
    }

    #[test]
    fn binance_streams_fill_the_url_and_only_the_rest_are_subscribed() {
        let symbols: Vec<String> = (0..300).map(|i| format!("\"S{i:03}USDT\"")).collect();
        let s = stream(&format!(
            "venue = \"binance-spot\"\nchannels = [\"aggTrade\", \"depth@100ms\"]\nsymbols = [{}]",
            symbols.join(", ")
        ));
        let shards = plan(&s);
        assert_eq!(shards.len(), 1, "600 topics fit one connection (1024)");
        let sh = &shards[0];
        assert!(sh.url.len() <= protocol::MAX_URL_LEN, "{}", sh.url.len());
        let (base, streams) = sh.url.split_once("?streams=").unwrap();
        assert_eq!(base, "wss://stream.binance.com:9443/stream");
        let named: Vec<&str> = streams.split('/').collect();
        assert!(named.len() > 150, "{} streams in the URL", named.len());
        assert_eq!(named[0], "s000usdt@aggTrade");
        // The URL is full: one more stream would not have fitted.
        let next = &s.topics[named.len()];
        assert!(sh.url.len() + 1 + next.len() > protocol::MAX_URL_LEN);
        // The rest, in order, go in subscribe messages of at most 100 streams.
        let rest = 600 - named.len();
        assert_eq!(sh.subscribe.len(), rest.div_ceil(100));
        assert_eq!(sh.requests.len(), 1 + sh.subscribe.len());
        assert_eq!(sh.requests[0].0.len(), named.len());
        assert_eq!(sh.requests[0].1, None);
        assert_eq!(sh.requests[1].0[0], *next);
        assert_eq!(sh.requests[1].1, Some(1));
        let asked: usize = sh.requests.iter().map(|(t, _)| t.len()).sum();
        assert_eq!(asked, 600);
        // Binance's limits: 5 incoming messages per second, so subscribe messages go at most 2
        // per second.
        assert!(s.subscribe_interval.unwrap() >= Duration::from_millis(500));
    }

    #[test]
    fn a_token_venue_asks_its_endpoint_only_while_dialling_its_own_url() {
        let s = stream("venue = \"kucoin-spot\"\ntopics = [\"/market/match:BTC-USDT\"]");
        assert_eq!(s.url, "wss://ws-api-spot.kucoin.com/");
        assert_eq!(
            s.token_url.as_deref(),
            Some("https://api.kucoin.com/api/v1/bullet-public")
        );
        assert_eq!(s.app_ping_interval, Some(Duration::from_secs(18)));
        // A URL of the user's own (a relay, a replay server) is dialled as it is...
        let s = stream(
            "venue = \"kucoin-spot\"\nurl = \"ws://127.0.0.1:9/\"\ntopics = [\"/market/match:BTC-USDT\"]",
        );
        assert_eq!(s.token_url, None);
        // ...unless the token endpoint is given too.
        let s = stream(
            "venue = \"kucoin-futures\"\nurl = \"ws://127.0.0.1:9/\"\ntoken_url = \"http://127.0.0.1:9/api/v1/bullet-public\"\ntopics = [\"/contractMarket/execution:XBTUSDTM\"]",
        );
        assert_eq!(
            s.token_url.as_deref(),
            Some("http://127.0.0.1:9/api/v1/bullet-public")
        );
        // Other venues have no token step, and say so when given one.
        assert_eq!(
            stream("venue = \"okx\"\ntopics = [\"books:BTC-USDT\"]").token_url,
            None
        );
        for (toml, says) in [
            (
                "venue = \"okx\"\ntopics = [\"books:BTC-USDT\"]\ntoken_url = \"https://x/\"",
                "only used by venues",
            ),
            (
                "venue = \"kucoin-spot\"\ntopics = [\"/market/match:BTC-USDT\"]\ntoken_url = \"wss://x/\"",
                "http:// or https://",
            ),
        ] {
            let c = Config::parse_toml(&format!("[[stream]]\nname = \"s\"\n{toml}\n"))
                .and_then(resolve)
                .unwrap();
            let e = c.validate(&Catalog).unwrap_err().to_string();
            assert!(e.contains("token_url") && e.contains(says), "{e}");
        }
        let one = describe_one(find("kucoin-spot").unwrap());
        assert!(
            one.contains("asks https://api.kucoin.com/api/v1/bullet-public (POST)"),
            "{one}"
        );
        assert_eq!(
            to_json(find("dydx").unwrap())["token_url"],
            serde_json::Value::Null
        );
    }
}
