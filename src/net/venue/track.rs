//! Per connection: which subscriptions the venue confirmed, refused or left silent, and what
//! the venue asks of us (a reconnect, an answer to a heartbeat request).
//!
//! The connection feeds every text message to [`Tracker::on_message`], every binary one to
//! [`Tracker::on_binary`] (read as its family reads binary frames), and calls
//! [`Tracker::on_deadline`] when [`Tracker::deadline`] passes; all three append [`Outcome`]s for the
//! connection to log, record and act on.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::protocol::{self, Signal};
use super::{Family, Topic};

/// What the connection must do about the venue's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The venue refused these topics (empty: it did not say which).
    Rejected {
        /// The refused topics.
        topics: Vec<Topic>,
        /// The venue's words.
        reason: String,
    },
    /// These topics delivered nothing within `first_data_timeout`.
    Silent {
        /// Topics the venue acknowledged and that stayed silent.
        acked: Vec<Topic>,
        /// Topics neither acknowledged nor delivering.
        unacked: Vec<Topic>,
        /// How long they were given.
        after: Duration,
    },
    /// A topic reported silent delivers after all.
    Live(Topic),
    /// A topic delivered its first data on this connection (reported only by a tracker made
    /// with [`Tracker::report_first_data`]: the start of a REST depth snapshot).
    FirstData(Topic),
    /// The venue asked for a reconnect.
    Reconnect(String),
    /// Send this message now.
    Reply(String),
    /// The venue allows this many more connects in its current window (BitMEX's welcome).
    ConnectsLeft(u64),
    /// The venue is in maintenance for at most `at_most`, or until it asks for a reconnect.
    Maintenance {
        /// The venue's words.
        reason: String,
        /// Its longest duration.
        at_most: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Sent,
    Acked,
    Live,
    Rejected,
    /// Reported silent; may still go live.
    Silent,
}

#[derive(Debug)]
struct Entry {
    topic: Topic,
    state: State,
}

/// Subscription state of one connection.
#[derive(Debug)]
pub struct Tracker {
    family: Family,
    /// By topic key.
    entries: HashMap<String, Entry>,
    /// Topic keys each request id asked for.
    requests: HashMap<u64, Vec<String>>,
    /// Bitfinex channel ids.
    channels: HashMap<i64, String>,
    /// Topics not yet delivering, rejected or reported.
    waiting: usize,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    /// Topics counted in the stream's failed-subscriptions gauge by this connection.
    flagged: u64,
    /// Report each topic's first data ([`Outcome::FirstData`]).
    first_data: bool,
}

impl Tracker {
    /// A tracker for a connection that sent `requests` (topics and request id per message) and
    /// gives each topic `first_data_timeout` from now to deliver.
    pub fn new(
        family: Family,
        requests: &[(Vec<Topic>, Option<u64>)],
        first_data_timeout: Option<Duration>,
    ) -> Self {
        let mut entries = HashMap::new();
        let mut ids = HashMap::new();
        for (topics, id) in requests {
            let keys: Vec<String> = topics
                .iter()
                .map(|t| protocol::topic_key(family, t))
                .collect();
            for (k, t) in keys.iter().zip(topics) {
                entries.insert(
                    k.clone(),
                    Entry {
                        topic: t.clone(),
                        state: State::Sent,
                    },
                );
            }
            if let Some(id) = id {
                ids.insert(*id, keys);
            }
        }
        Self {
            family,
            waiting: entries.len(),
            entries,
            requests: ids,
            channels: HashMap::new(),
            deadline: first_data_timeout.map(|t| Instant::now() + t),
            timeout: first_data_timeout,
            flagged: 0,
            first_data: false,
        }
    }

    /// Reports each topic's first data on this connection ([`Outcome::FirstData`]), before any
    /// other outcome of that message.
    #[must_use]
    pub fn report_first_data(mut self) -> Self {
        self.first_data = true;
        self
    }

    /// When [`on_deadline`](Self::on_deadline) is due, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.waiting > 0)
    }

    /// Topics this connection reported as rejected or silent and that are still so.
    pub fn flagged(&self) -> u64 {
        self.flagged
    }

    /// Whether every message is read: a topic waits for its first data, or one reported as
    /// failing may yet deliver.
    fn looking(&self) -> bool {
        self.waiting > 0 || self.entries.values().any(|e| e.state == State::Silent)
    }

    /// Reads one text message.
    pub fn on_message(&mut self, msg: &[u8], out: &mut Vec<Outcome>) {
        if !self.looking() && !protocol::needs_look(self.family, msg) {
            return;
        }
        self.on_signal(protocol::classify(self.family, msg), out);
    }

    /// Reads one binary message (as the family reads binary frames, [`protocol::binary`]), also
    /// when `first` (the connection has had no data yet, so whether this is data matters);
    /// returns whether it is data. A frame the family does not read is data.
    pub fn on_binary(&mut self, frame: &[u8], first: bool, out: &mut Vec<Outcome>) -> bool {
        let signal = match protocol::binary(self.family, frame, first || self.looking()) {
            protocol::Binary::Data => return true,
            protocol::Binary::Signal(s) => s,
            protocol::Binary::Text(text) => {
                if !first && !self.looking() && !protocol::needs_look(self.family, &text) {
                    return true;
                }
                protocol::classify(self.family, &text)
            }
        };
        let data = signal.is_data();
        self.on_signal(signal, out);
        data
    }

    /// Acts on what a message means.
    fn on_signal(&mut self, signal: Signal, out: &mut Vec<Outcome>) {
        match signal {
            Signal::Data(Some(key)) => self.data(&key, out),
            Signal::DataOf(keys) => {
                for k in &keys {
                    self.data(k, out);
                }
            }
            Signal::DataOfPrefix(prefix) => {
                let keys: Vec<String> = self
                    .entries
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .cloned()
                    .collect();
                for k in &keys {
                    self.data(k, out);
                }
            }
            Signal::Data(None) | Signal::Other => {}
            Signal::Ack { id, keys, complete } => self.ack(id, &keys, complete, out),
            Signal::Reject { id, keys, reason } => {
                let mut named: Vec<String> = keys;
                if named.is_empty()
                    && let Some(k) = id.and_then(|i| self.requests.get(&i))
                {
                    named.clone_from(k);
                }
                self.reject(&named, reason, out);
            }
            Signal::Channel { id, key } if key.is_empty() => {
                if let Some(k) = self.channels.get(&id).cloned() {
                    self.data(&k, out);
                }
            }
            Signal::Channel { id, key } => {
                self.channels.insert(id, key.clone());
                self.ack(None, &[key], false, out);
            }
            Signal::Reconnect(why) => out.push(Outcome::Reconnect(why)),
            Signal::Reply(text) => out.push(Outcome::Reply(text)),
            Signal::ConnectsLeft(n) => out.push(Outcome::ConnectsLeft(n)),
            Signal::Maintenance { reason, at_most } => {
                out.push(Outcome::Maintenance { reason, at_most });
            }
        }
    }

    fn data(&mut self, key: &str, out: &mut Vec<Outcome>) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if e.state != State::Live && self.first_data {
            out.push(Outcome::FirstData(e.topic.clone()));
        }
        match e.state {
            State::Sent | State::Acked => {
                e.state = State::Live;
                self.waiting -= 1;
            }
            State::Silent | State::Rejected => {
                e.state = State::Live;
                self.flagged = self.flagged.saturating_sub(1);
                out.push(Outcome::Live(e.topic.clone()));
            }
            State::Live => {}
        }
    }

    fn ack(&mut self, id: Option<u64>, keys: &[String], complete: bool, out: &mut Vec<Outcome>) {
        let asked: Vec<String> = match id.and_then(|i| self.requests.get(&i)) {
            Some(k) => k.clone(),
            None => Vec::new(),
        };
        // An ack by id alone (Bybit, Binance) confirms everything the request asked for.
        let confirmed: Vec<String> = if keys.is_empty() {
            asked.clone()
        } else {
            keys.to_vec()
        };
        for k in &confirmed {
            if let Some(e) = self.entries.get_mut(k)
                && e.state == State::Sent
            {
                e.state = State::Acked;
            }
        }
        if complete {
            let refused: Vec<String> = asked
                .into_iter()
                .filter(|k| !confirmed.contains(k))
                .collect();
            if !refused.is_empty() {
                self.reject(
                    &refused,
                    "not in the venue's confirmation of the request".to_owned(),
                    out,
                );
            }
        }
    }

    fn reject(&mut self, keys: &[String], reason: String, out: &mut Vec<Outcome>) {
        let mut topics = Vec::new();
        for k in keys {
            if let Some(e) = self.entries.get_mut(k) {
                match e.state {
                    State::Sent | State::Acked => {
                        self.waiting -= 1;
                        self.flagged += 1;
                    }
                    State::Silent => {}
                    State::Rejected | State::Live => continue,
                }
                e.state = State::Rejected;
                topics.push(e.topic.clone());
            }
        }
        if topics.is_empty() && !keys.is_empty() {
            // The venue named topics this connection did not ask for: report its words anyway.
            topics = keys.to_vec();
        }
        out.push(Outcome::Rejected { topics, reason });
    }

    /// Reports the topics still without data once the deadline has passed.
    pub fn on_deadline(&mut self, now: Instant, out: &mut Vec<Outcome>) {
        if self.deadline.is_none_or(|d| d > now) || self.waiting == 0 {
            return;
        }
        self.deadline = None;
        let (mut acked, mut unacked) = (Vec::new(), Vec::new());
        for e in self.entries.values_mut() {
            match e.state {
                State::Acked => acked.push(e.topic.clone()),
                State::Sent => unacked.push(e.topic.clone()),
                _ => continue,
            }
            e.state = State::Silent;
        }
        acked.sort();
        unacked.sort();
        self.flagged += (acked.len() + unacked.len()) as u64;
        self.waiting = 0;
        out.push(Outcome::Silent {
            acked,
            unacked,
            after: self.timeout.unwrap_or_default(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[&str]) -> Vec<Topic> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn binance_acked_but_silent_is_reported_and_recovers() {
        let reqs = vec![(t(&["btcusdt@aggTrade", "btcusdt@bookTicker"]), Some(1))];
        let mut tr = Tracker::new(Family::Binance, &reqs, Some(Duration::from_secs(60)));
        let mut out = Vec::new();
        tr.on_message(br#"{"result":null,"id":1}"#, &mut out);
        tr.on_message(
            br#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT"}}"#,
            &mut out,
        );
        assert!(out.is_empty());
        let at = tr.deadline().unwrap();
        tokio::time::sleep_until(at).await;
        tr.on_deadline(Instant::now(), &mut out);
        assert_eq!(
            out,
            [Outcome::Silent {
                acked: t(&["btcusdt@aggTrade"]),
                unacked: vec![],
                after: Duration::from_secs(60)
            }]
        );
        assert_eq!(tr.flagged(), 1);
        assert_eq!(tr.deadline(), None);
        out.clear();
        tr.on_message(
            br#"{"stream":"btcusdt@aggTrade","data":{"a":1,"s":"BTCUSDT"}}"#,
            &mut out,
        );
        assert_eq!(out, [Outcome::Live("btcusdt@aggTrade".to_owned())]);
        assert_eq!(tr.flagged(), 0);
    }

    #[test]
    fn rejections_by_id_by_topic_and_by_omission() {
        let mut out = Vec::new();
        let reqs = vec![(t(&["publicTrade.BTCUSDT", "foo.BAR"]), Some(1))];
        let mut tr = Tracker::new(Family::Bybit, &reqs, None);
        tr.on_message(
            br#"{"success":false,"ret_msg":"error:handler not found,topic:foo.BAR","req_id":"1","op":"subscribe"}"#,
            &mut out,
        );
        assert_eq!(
            out,
            [Outcome::Rejected {
                topics: t(&["foo.BAR"]),
                reason: "error:handler not found,topic:foo.BAR".to_owned()
            }]
        );
        assert_eq!(tr.flagged(), 1);

        out.clear();
        let reqs = vec![
            (vec![], Some(1)),
            (
                t(&["trades.BTC-PERPETUAL.100ms", "trades.NOPE.100ms"]),
                Some(2),
            ),
        ];
        let mut tr = Tracker::new(Family::Deribit, &reqs, None);
        tr.on_message(
            br#"{"jsonrpc":"2.0","id":2,"result":["trades.BTC-PERPETUAL.100ms"]}"#,
            &mut out,
        );
        assert!(
            matches!(&out[..], [Outcome::Rejected { topics, .. }] if topics == &t(&["trades.NOPE.100ms"]))
        );
        out.clear();
        tr.on_message(
            br#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
            &mut out,
        );
        assert!(matches!(&out[..], [Outcome::Reply(_)]));
    }

    fn gzip(text: &str) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn binary_frames_are_read_for_acks_pings_and_first_data() {
        // HTX: every frame gzip-compressed binary.
        let reqs = vec![
            (t(&["market.btcusdt.trade.detail"]), Some(1)),
            (t(&["market.nope.bbo"]), Some(2)),
        ];
        let mut tr = Tracker::new(Family::Htx, &reqs, Some(Duration::from_secs(60)));
        let mut out = Vec::new();
        let ack = gzip(r#"{"id":"1","status":"ok","subbed":"market.btcusdt.trade.detail","ts":1}"#);
        assert!(!tr.on_binary(&ack, true, &mut out), "an ack is no data");
        let refused = gzip(
            r#"{"status":"error","err-code":"bad-request","err-msg":"invalid symbol nope","id":"2"}"#,
        );
        assert!(!tr.on_binary(&refused, true, &mut out));
        assert!(
            matches!(&out[..], [Outcome::Rejected { topics, .. }] if topics == &t(&["market.nope.bbo"]))
        );
        out.clear();
        let trade = gzip(
            r#"{"ch":"market.btcusdt.trade.detail","ts":1,"tick":{"id":1,"ts":1,"data":[{"id":1,"ts":1,"tradeId":1,"amount":0.1,"price":9150.01,"direction":"sell"}]}}"#,
        );
        assert!(tr.on_binary(&trade, true, &mut out));
        assert_eq!(tr.deadline(), None, "the only topic left delivers");
        // Steady state: pings are still answered, with their own number.
        let ping = gzip(r#"{"ping":1492420473027}"#);
        assert!(!tr.on_binary(&ping, false, &mut out));
        assert_eq!(
            out,
            [Outcome::Reply(r#"{"pong":1492420473027}"#.to_owned())]
        );
        out.clear();
        assert!(tr.on_binary(&trade, false, &mut out));
        assert!(out.is_empty());
        // Families whose binary frames are all data.
        let mut tr = Tracker::new(Family::Bybit, &[], None);
        assert!(tr.on_binary(b"\x00\x01", true, &mut out));
    }

    #[test]
    fn bitfinex_data_is_told_by_channel_id_and_requests_pass_in_steady_state() {
        let reqs = vec![(t(&["trades:tBTCUSD"]), None)];
        let mut tr = Tracker::new(Family::Bitfinex, &reqs, Some(Duration::from_secs(5)));
        let mut out = Vec::new();
        tr.on_message(
            br#"{"event":"subscribed","channel":"trades","chanId":42,"symbol":"tBTCUSD"}"#,
            &mut out,
        );
        assert!(tr.deadline().is_some());
        tr.on_message(br#"[42,"hb"]"#, &mut out);
        assert_eq!(tr.deadline(), None, "the only topic delivers");
        tr.on_message(
            br#"{"event":"info","code":20051,"msg":"restart"}"#,
            &mut out,
        );
        assert!(matches!(&out[..], [Outcome::Reconnect(_)]));
        out.clear();
        tr.on_message(
            br#"{"event":"info","code":20060,"msg":"maintenance"}"#,
            &mut out,
        );
        assert!(matches!(&out[..], [Outcome::Maintenance { .. }]));
    }
}
