//! How each book channel of a preset starts, and the REST depth snapshot of the channels whose
//! feed sends differences only.
//!
//! A book channel's book comes either in the feed itself (a snapshot on subscribe and on every
//! reset: Bybit, OKX, Kraken, Coinbase `level2`, Bitfinex, Deribit, BitMEX `orderBookL2`), as
//! full books in every message (Hyperliquid `l2Book`, partial-depth streams), or from a REST
//! snapshot that the differences then continue (Binance `depth`, Bitstamp `diff_order_book`).
//! For the last kind the preset says how to ask for the snapshot and how to tell whether it is
//! recent enough for the first difference the connection received; the recorder fetches it
//! after that first difference and writes it into the stream as a snapshot line.

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
    /// replaces it.
    pub limit: u32,
    /// The request URL for a symbol (as [`RestSnapshot::symbol`] gives it) at a depth, under a
    /// base URL.
    pub url: fn(base: &str, symbol: &str, limit: u32) -> String,
    /// The symbol to ask the REST API for, when `topic` is one of this channel's topics.
    pub symbol: fn(topic: &str) -> Option<String>,
    /// The first update a difference message covers (Binance `U`, Bitstamp `microtimestamp`).
    pub first_id: fn(message: &[u8]) -> Option<u64>,
    /// The update the snapshot is current to (Binance `lastUpdateId`, Bitstamp
    /// `microtimestamp`). A snapshot older than the first difference (`snapshot_id + 1 <
    /// first_id`, so that a difference is missing between them) is fetched again.
    pub snapshot_id: fn(body: &[u8]) -> Option<u64>,
    /// Where the procedure and the numbers come from.
    pub source: &'static str,
}

impl RestSnapshot {
    /// Whether a snapshot current to `snapshot_id` leaves a gap before a difference that starts
    /// at `first_id`: then the book cannot be continued from it, and it is fetched again.
    pub fn too_old(snapshot_id: u64, first_id: u64) -> bool {
        snapshot_id.saturating_add(1) < first_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_too_old_only_when_a_difference_is_missing_before_the_first() {
        // Binance: first event U <= lastUpdateId + 1.
        assert!(!RestSnapshot::too_old(100, 101));
        assert!(!RestSnapshot::too_old(100, 90));
        assert!(RestSnapshot::too_old(100, 102));
    }
}
