//! One module per venue rule set: each reads its venue's book messages (and, for venues whose
//! book starts from a REST answer, the recorder's snapshot lines) and drives the
//! [`Tracker`] with snapshots, linked updates, checksums and breaks.
//!
//! A venue module implements [`Rules`]: [`Rules::claims`] looks at a message's first bytes
//! (cheap: every message of a recording passes through it), [`Rules::message`] reads a claimed
//! message. [`Venues`] asks the module that claimed the stream's last book message first.

use super::track::{Msg, Tracker};

mod binance;
mod bitfinex;
mod bitget;
mod bitmex;
mod bitstamp;
mod bybit;
mod coinbase;
mod cryptocom;
mod deribit;
mod dydx;
mod gate;
mod htx;
mod hyperliquid;
mod kraken;
mod kraken_checksum;
mod kraken_futures;
mod kraken_v1;
mod kucoin;
mod okx;
mod rest_started;
mod shared;
mod upbit;

/// The venue rule sets the book engine knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Venue {
    /// Binance spot, USDⓈ-M and COIN-M diff depth (REST snapshot) and partial depth.
    Binance,
    /// Bybit v5 `orderbook.*`.
    Bybit,
    /// OKX v5 `books`, `books5`, `bbo-tbt`, `books-l2-tbt`, `books50-l2-tbt`.
    Okx,
    /// Coinbase Advanced Trade `level2`.
    Coinbase,
    /// Coinbase Exchange `level2_batch`/`level2`.
    CoinbaseExchange,
    /// Kraken spot v2 `book`.
    Kraken,
    /// Kraken spot v1 `book-N` (the corpus' frames).
    KrakenV1,
    /// Kraken Futures `book`.
    KrakenFutures,
    /// Bitfinex v2 `book` (P0..P4).
    Bitfinex,
    /// Deribit `book.*`.
    Deribit,
    /// BitMEX `orderBookL2`, `orderBookL2_25`.
    Bitmex,
    /// Hyperliquid `l2Book`.
    Hyperliquid,
    /// Bitstamp `order_book`, `diff_order_book` (REST snapshot), `detail_order_book`.
    Bitstamp,
    /// Gate v4 spot and futures books.
    Gate,
    /// KuCoin spot and futures level 2.
    Kucoin,
    /// MEXC spot depth.
    Mexc,
    /// Bitget v2 `books`, `books5`.
    Bitget,
    /// Crypto.com v1 `book`.
    Cryptocom,
    /// HTX `depth.step0`.
    Htx,
    /// Upbit `orderbook`.
    Upbit,
    /// dYdX v4 `v4_orderbook`.
    Dydx,
}

impl std::fmt::Display for Venue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Venue::Binance => "Binance",
            Venue::Bybit => "Bybit",
            Venue::Okx => "OKX",
            Venue::Coinbase => "Coinbase",
            Venue::CoinbaseExchange => "Coinbase Exchange",
            Venue::Kraken => "Kraken",
            Venue::KrakenV1 => "Kraken v1",
            Venue::KrakenFutures => "Kraken Futures",
            Venue::Bitfinex => "Bitfinex",
            Venue::Deribit => "Deribit",
            Venue::Bitmex => "BitMEX",
            Venue::Hyperliquid => "Hyperliquid",
            Venue::Bitstamp => "Bitstamp",
            Venue::Gate => "Gate",
            Venue::Kucoin => "KuCoin",
            Venue::Mexc => "MEXC",
            Venue::Bitget => "Bitget",
            Venue::Cryptocom => "Crypto.com",
            Venue::Htx => "HTX",
            Venue::Upbit => "Upbit",
            Venue::Dydx => "dYdX",
        })
    }
}

/// A REST snapshot line the recorder wrote: which symbol, from where, the body.
#[derive(Clone, Copy, Debug)]
pub struct RestAnswer<'a> {
    /// The symbol the recorder fetched it for.
    pub symbol: &'a str,
    /// The request URL (its path tells the venue).
    pub url: &'a str,
    /// The response body.
    pub body: &'a str,
}

/// A venue's book rules.
pub trait Rules: std::fmt::Debug {
    /// Whether `msg` looks like one of this venue's book messages (a cheap look at its
    /// first bytes; [`Rules::message`] reads it).
    fn claims(&self, msg: &[u8]) -> bool;

    /// Reads a claimed message into `t`. Returns false if it turned out not to be a book
    /// message of this venue.
    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool;

    /// Reads a REST snapshot line; false if it is not this venue's.
    fn rest(&mut self, _t: &mut Tracker, _m: &Msg<'_>, _answer: &RestAnswer<'_>) -> bool {
        false
    }

    /// A connection of `stream` ended (`conn` `None`: all of them): state kept per connection
    /// goes, and updates still waiting for a snapshot are reported.
    fn conn_ended(&mut self, _t: &mut Tracker, _stream: &str, _conn: Option<u64>) {}

    /// The recording ended: updates still waiting for a snapshot are reported.
    fn finish(&mut self, _t: &mut Tracker) {}
}

/// Every venue's rules, and which one each stream used last.
#[derive(Debug)]
pub struct Venues {
    rules: Vec<Box<dyn Rules + Send>>,
    last: std::collections::HashMap<String, usize>,
}

impl Default for Venues {
    fn default() -> Self {
        Self {
            rules: vec![
                Box::new(okx::Okx::default()),
                Box::new(kraken::Kraken::default()),
                Box::new(kraken_v1::KrakenV1),
                Box::new(kraken_futures::KrakenFutures),
                Box::new(bitfinex::Bitfinex::default()),
                Box::new(bitget::Bitget::default()),
                Box::new(rest_started::RestStarted::<binance::Binance>::default()),
                Box::new(bybit::Bybit),
                Box::new(deribit::Deribit),
                Box::new(cryptocom::Cryptocom),
                Box::new(rest_started::RestStarted::<gate::Gate>::default()),
                Box::new(rest_started::RestStarted::<kucoin::Kucoin>::default()),
                Box::new(coinbase::Coinbase::default()),
                Box::new(coinbase::CoinbaseExchange),
                Box::new(hyperliquid::Hyperliquid),
                Box::new(dydx::Dydx::default()),
                Box::new(bitmex::Bitmex::default()),
                Box::new(bitstamp::Bitstamp::default()),
                Box::new(upbit::Upbit),
                Box::new(htx::Htx),
            ],
            last: std::collections::HashMap::new(),
        }
    }
}

impl Venues {
    /// Reads one message; false if no venue's rules took it.
    pub fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let bytes = msg.as_bytes();
        if let Some(&i) = self.last.get(m.stream)
            && self.rules[i].claims(bytes)
        {
            return self.rules[i].message(t, m, msg);
        }
        for i in 0..self.rules.len() {
            if self.rules[i].claims(bytes) && self.rules[i].message(t, m, msg) {
                self.last.insert(m.stream.to_owned(), i);
                return true;
            }
        }
        false
    }

    /// Reads one REST snapshot line; false if no venue's rules took it.
    pub fn rest(&mut self, t: &mut Tracker, m: &Msg<'_>, answer: &RestAnswer<'_>) -> bool {
        self.rules.iter_mut().any(|r| r.rest(t, m, answer))
    }

    /// A connection (or, with `None`, every connection) of `stream` ended.
    pub fn conn_ended(&mut self, t: &mut Tracker, stream: &str, conn: Option<u64>) {
        for r in &mut self.rules {
            r.conn_ended(t, stream, conn);
        }
        match conn {
            Some(c) => t.conn_ended(stream, c),
            None => t.stream_ended(stream),
        }
    }
}

impl Venues {
    /// The recording ended.
    pub fn finish(&mut self, t: &mut Tracker) {
        for r in &mut self.rules {
            r.finish(t);
        }
    }
}

/// Whether `needle` occurs in the first `within` bytes of `msg`.
pub(crate) fn starts_near(msg: &[u8], within: usize, needle: &[u8]) -> bool {
    memchr::memmem::find(&msg[..msg.len().min(within)], needle).is_some()
}
