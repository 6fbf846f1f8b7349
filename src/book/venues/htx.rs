//! HTX (Huobi) `market.$symbol.depth.step0` (spot, <https://huobiapi.github.io/docs/spot/v1/en/>,
//! "Market Depth"; USDT-margined swaps, <https://huobiapi.github.io/docs/usdt_swap/v1/en/>,
//! "Subscribe Market Depth Data"): every message is the top 150 levels of the book,
//! `{"ch":"market.btcusdt.depth.step0","ts":…,"tick":{"bids":[[price,size],…],"asks":…,
//! "version":…}}`, prices and sizes as JSON numbers (their literal text is kept). HTX sends every
//! frame gzip-compressed; the recording keeps it as received (`bin`), and the read side inflates
//! it before the book engine sees it. Each message is a snapshot: what is checked is that its
//! levels read and the book is not crossed; `version` grows, but a whole book needs no link.
//! ccxt's `ts/src/pro/htx.ts` (`handleOrderBookSnapshot` for `depth.step0`: the book reset
//! from each `tick`) reads it the same way. `mbp.150` (incremental) starts only from a `req`
//! wsrec does not send, and is not rebuilt.

use serde::Deserialize;

use super::shared::{Lvl, whole_book};
use super::{Rules, Venue, starts_near};
use crate::book::track::{Key, Msg, Tracker};

#[derive(Deserialize)]
struct Top<'a> {
    ch: &'a str,
    #[serde(borrow)]
    tick: Tick<'a>,
}

#[derive(Deserialize)]
struct Tick<'a> {
    #[serde(borrow, default)]
    bids: Vec<Lvl<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Lvl<'a>>,
    version: Option<u64>,
}

/// HTX's rules (whole books: no state).
#[derive(Debug, Default)]
pub(super) struct Htx;

impl Rules for Htx {
    fn claims(&self, msg: &[u8]) -> bool {
        msg.starts_with(b"{\"ch\":\"market.") && starts_near(msg, 80, b".depth.step")
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        let Ok(top) = serde_json::from_str::<Top<'_>>(msg) else {
            return false;
        };
        // `market.<symbol>.depth.<step>`.
        let mut parts = top.ch.splitn(3, '.');
        let (Some("market"), Some(symbol), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if !rest.starts_with("depth.") {
            return false;
        }
        let k = Key {
            venue: Venue::Htx,
            channel: rest,
            symbol,
        };
        whole_book(t, m, &k, top.tick.version, &top.tick.bids, &top.tick.asks);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::book::BreakKind;
    use crate::book::testing::run;

    fn depth(symbol: &str, version: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> String {
        let side = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(p, q)| format!("[{p},{q}]"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"ch":"market.{symbol}.depth.step0","ts":1630983549503,"tick":{{"bids":[{}],"asks":[{}],"version":{version},"ts":1630983549500}}}}"#,
            side(bids),
            side(asks)
        )
    }

    #[test]
    fn every_depth_message_is_the_whole_book_and_a_crossed_one_breaks() {
        let lines = vec![
            depth(
                "btcusdt",
                1,
                &[("52690.69", "0.36281"), ("52690.68", "1.0")],
                &[("52690.7", "2")],
            ),
            depth(
                "btcusdt",
                2,
                &[("52690.60", "0.5")],
                &[("52690.7", "2"), ("52691", "1e-5")],
            ),
            depth("ethusdt", 7, &[("3900.1", "3")], &[("3900.2", "4")]),
        ];
        let (breaks, reports) = run(&lines);
        assert_eq!(breaks, []);
        assert_eq!(reports.len(), 2);
        let btc = reports.iter().find(|r| r.id.symbol == "btcusdt").unwrap();
        assert_eq!((btc.snapshots, btc.level_changes), (2, 6));
        assert_eq!(btc.id.channel, "depth.step0");
        assert!(reports.iter().all(|r| r.proven()));
        // A bid above the best ask: crossed, at that line.
        let mut bad = lines.clone();
        bad.push(depth("btcusdt", 3, &[("52700", "1")], &[("52690.7", "2")]));
        let (breaks, _) = run(&bad);
        assert_eq!(breaks.len(), 1, "{breaks:#?}");
        assert_eq!((breaks[0].kind, breaks[0].at.line), (BreakKind::Crossed, 4));
    }

    #[test]
    fn other_htx_messages_are_not_books() {
        for other in [
            r#"{"ch":"market.btcusdt.trade.detail","ts":1,"tick":{"data":[]}}"#,
            r#"{"ping":1630983549503}"#,
            r#"{"id":"1","status":"ok","subbed":"market.btcusdt.depth.step0","ts":1}"#,
        ] {
            let (breaks, reports) = run(&[other.to_owned()]);
            assert_eq!((breaks.len(), reports.len()), (0, 0), "{other}");
        }
    }
}
