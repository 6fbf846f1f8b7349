//! The JSON shapes of the venues' messages, as far as the sequence rules need them: the top
//! level every message is read into, and the book data of Binance, Bybit, OKX, Deribit and
//! Bitget.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
pub(super) struct Top<'a> {
    // Binance combined streams: {"stream":…,"data":{…}}; Bybit, OKX: "data" too.
    pub(super) stream: Option<String>,
    #[serde(borrow)]
    pub(super) data: Option<&'a RawValue>,
    // Binance bare event.
    pub(super) e: Option<String>,
    pub(super) s: Option<String>,
    #[serde(rename = "U")]
    pub(super) first_update: Option<u64>,
    pub(super) u: Option<u64>,
    pub(super) pu: Option<u64>,
    // Bybit.
    pub(super) topic: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    // Coinbase Advanced Trade.
    pub(super) sequence_num: Option<u64>,
    pub(super) channel: Option<String>,
    // OKX.
    pub(super) arg: Option<OkxArg>,
    pub(super) action: Option<String>,
    // Deribit.
    pub(super) method: Option<String>,
    #[serde(borrow)]
    pub(super) params: Option<&'a RawValue>,
    // Kraken Futures.
    pub(super) feed: Option<String>,
    pub(super) product_id: Option<String>,
    pub(super) seq: Option<u64>,
    // Gate, Crypto.com.
    #[serde(borrow)]
    pub(super) result: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct BitgetBook {
    pub(super) seq: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct BinanceDepth {
    pub(super) e: Option<String>,
    pub(super) s: Option<String>,
    #[serde(rename = "U")]
    pub(super) first_update: Option<u64>,
    pub(super) u: Option<u64>,
    pub(super) pu: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct BybitBook {
    pub(super) u: Option<u64>,
    pub(super) seq: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct OkxArg {
    pub(super) channel: Option<String>,
    #[serde(rename = "instId")]
    pub(super) inst_id: Option<String>,
    /// Bitget's args name the market; OKX's book args do not.
    #[serde(rename = "instType")]
    pub(super) inst_type: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct OkxBook {
    #[serde(rename = "seqId")]
    pub(super) seq_id: Option<i64>,
    #[serde(rename = "prevSeqId")]
    pub(super) prev_seq_id: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct DeribitParams<'a> {
    pub(super) channel: Option<String>,
    #[serde(borrow)]
    pub(super) data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct DeribitBook {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) change_id: Option<u64>,
    pub(super) prev_change_id: Option<u64>,
}
