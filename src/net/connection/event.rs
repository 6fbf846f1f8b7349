//! What the network side of a stream counts and logs, as typed events: each variant of
//! [`ConnectionEvent`] is one thing that happens to a connection (or to its stream's supervisor,
//! which waits before the next one), and [`ConnectionEvent::emit`] is the one place that updates
//! the stream's counters and writes the log line for it, so the two cannot drift apart.
//!
//! The events a connection records into the data (`connected`, `disconnected`, `dropped`, ...
//! pushed into its batches) are data, not telemetry: they are written where they happen.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::net::stream::runtime::StreamRuntime;
use crate::net::venue::Topic;
use crate::observe::stats::ConnState;

/// One thing that happened on a stream's connections, with what its log line and counters need.
#[derive(Debug)]
pub(crate) enum ConnectionEvent<'a> {
    /// A connect attempt failed (the token step, the dial, TLS or the handshake).
    ConnectFailed {
        /// Connection number.
        conn: u64,
        /// The URL (masked) that failed.
        url: &'a str,
        /// The step that failed, when it was not the WebSocket dial itself.
        step: Option<&'static str>,
        /// What went wrong.
        error: &'a str,
    },
    /// The handshake succeeded.
    Connected {
        /// Connection number.
        conn: u64,
        /// The URL (masked) dialled.
        url: &'a str,
        /// The extensions the server accepted (empty: none).
        extensions: &'a str,
    },
    /// A connection that had connected ended.
    Disconnected {
        /// Connection number.
        conn: u64,
        /// Why, as recorded in the `disconnected` event.
        reason: &'static str,
        /// Why, in words.
        detail: &'a str,
        /// Messages it received.
        messages: u64,
        /// We ended it on purpose (shutdown, or a newer connection took over): not counted as
        /// a disconnect nor reported as an error.
        planned: bool,
    },
    /// The queue was full under `drop_newest`: messages of one batch were dropped.
    Dropped {
        /// Connection number.
        conn: u64,
        /// Messages dropped.
        count: u64,
        /// They start a gap (nothing dropped since the last `dropped` record): logged once per
        /// gap, not once per batch.
        first: bool,
    },
    /// The venue refused a subscription.
    SubscriptionRejected {
        /// Connection number.
        conn: u64,
        /// The refused topics (empty: the venue did not say which).
        topics: &'a [Topic],
        /// The venue's words.
        reason: &'a str,
    },
    /// Subscriptions delivered nothing within `first_data_timeout`.
    SubscriptionsSilent {
        /// Connection number.
        conn: u64,
        /// Topics the venue acknowledged that stayed silent.
        acked: &'a [Topic],
        /// Topics neither acknowledged nor delivering.
        unacked: &'a [Topic],
        /// How long they were given.
        after: Duration,
    },
    /// A subscription reported as failing delivers data now.
    SubscriptionLive {
        /// Connection number.
        conn: u64,
        /// The topic.
        topic: &'a str,
    },
    /// The venue is in maintenance.
    VenueMaintenance {
        /// Connection number.
        conn: u64,
        /// The venue's words.
        reason: &'a str,
        /// Its longest duration.
        at_most: Duration,
    },
    /// The venue asked this connection to reconnect (a replacement is opened first).
    ReconnectRequested {
        /// Connection number.
        conn: u64,
        /// The venue's words.
        reason: &'a str,
    },
    /// The venue said how many more connects it allows in its current window.
    ConnectsLeft {
        /// Connection number.
        conn: u64,
        /// Connects left.
        left: u64,
    },
    /// The stream has no connection and waits `delay` before the next one.
    Reconnecting {
        /// The wait.
        delay: Duration,
        /// Failures counted since the last healthy connection.
        attempt: u32,
        /// The connection that ended had received data.
        productive: bool,
        /// What the wait is.
        wait: ReconnectWait,
    },
    /// The stream's first connection failed for good and the stream stops instead of
    /// retrying (`stop_on_refusal`, one-line mode).
    GaveUp {
        /// Connection number of the failed attempt.
        conn: u64,
        /// The URL it dialled (masked).
        url: &'a str,
    },
}

/// What decided a reconnect delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReconnectWait {
    /// The server's `Retry-After` (or the rest of a venue maintenance), longer than the backoff.
    ServerAsked,
    /// The connection was healthy: the backoff starts over.
    Healthy,
    /// The backoff after a failure.
    Backoff,
}

impl ConnectionEvent<'_> {
    /// Updates the stream's counters and writes the log line for this event.
    pub(crate) fn emit(self, rt: &StreamRuntime) {
        let stats = &rt.stats;
        match self {
            ConnectionEvent::ConnectFailed {
                conn,
                url,
                step,
                error,
            } => {
                stats.connect_failures.fetch_add(1, Relaxed);
                stats.set_last_error(error);
                tracing::warn!(stream = %rt.name, conn, url = %url, step = step.unwrap_or("connect"), error = %error, "Connection attempt failed.");
            }
            ConnectionEvent::Connected {
                conn,
                url,
                extensions,
            } => {
                stats.connections.fetch_add(1, Relaxed);
                stats.set_state(ConnState::Connected);
                if rt.insecure {
                    tracing::warn!(stream = %rt.name, url = %rt.masked_url, "TLS CERTIFICATE VERIFICATION IS OFF (insecure = true): this connection can be intercepted.");
                }
                tracing::info!(stream = %rt.name, conn, url = %url, extensions, "Connected.");
                if rt.spec.deflate.is_some() && extensions.is_empty() {
                    tracing::info!(stream = %rt.name, conn, "The server declined permessage-deflate; receiving uncompressed.");
                }
            }
            ConnectionEvent::Disconnected {
                conn,
                reason,
                detail,
                messages,
                planned,
            } => {
                if planned {
                    tracing::info!(stream = %rt.name, conn, reason, messages, "Disconnected: {detail}.");
                } else {
                    stats.disconnects.fetch_add(1, Relaxed);
                    stats.set_last_error(detail);
                    tracing::warn!(stream = %rt.name, conn, reason, messages, "Disconnected: {detail}.");
                }
            }
            ConnectionEvent::Dropped { conn, count, first } => {
                stats.dropped.fetch_add(count, Relaxed);
                if first {
                    tracing::warn!(stream = %rt.name, conn, "Queue full: dropping messages (when_full = drop_newest); the gap is marked in the data.");
                }
            }
            ConnectionEvent::SubscriptionRejected {
                conn,
                topics,
                reason,
            } => {
                tracing::error!(stream = %rt.name, conn, topics = ?topics, reason, "The venue refused a subscription.");
                stats.set_last_error(&format!("subscription refused: {reason}"));
            }
            ConnectionEvent::SubscriptionsSilent {
                conn,
                acked,
                unacked,
                after,
            } => {
                tracing::error!(stream = %rt.name, conn, acknowledged = ?acked, not_acknowledged = ?unacked, after = ?after,
                    "Subscriptions deliver no data (first_data_timeout). A quiet market explains it for some channels; a wrong URL for the channel (e.g. Binance USDⓈ-M market streams on the legacy root URL) or a refused subscription for others.");
                stats.set_last_error(&format!(
                    "{} subscriptions without data after {after:?}",
                    acked.len() + unacked.len()
                ));
            }
            ConnectionEvent::SubscriptionLive { conn, topic } => {
                tracing::info!(stream = %rt.name, conn, topic, "A subscription reported as failing delivers data now.");
            }
            ConnectionEvent::VenueMaintenance {
                conn,
                reason,
                at_most,
            } => {
                tracing::warn!(stream = %rt.name, conn, reason, at_most = ?at_most,
                    "The venue is in maintenance: keeping the connection, and no reconnect until the venue says it is over (or it has lasted as long as it may).");
                stats.set_last_error(&format!("venue maintenance: {reason}"));
            }
            ConnectionEvent::ReconnectRequested { conn, reason } => {
                tracing::info!(stream = %rt.name, conn, reason = %reason, "The venue asked for a reconnect: opening a replacement before closing this connection.");
            }
            ConnectionEvent::ConnectsLeft { conn, left } => {
                tracing::debug!(stream = %rt.name, conn, left, "The venue counts the connects it still allows.");
            }
            ConnectionEvent::Reconnecting {
                delay,
                attempt,
                productive,
                wait,
            } => {
                stats.set_state(ConnState::Backoff);
                let delay_ms = delay.as_millis() as u64;
                match wait {
                    ReconnectWait::ServerAsked => {
                        tracing::info!(stream = %rt.name, delay_ms, attempt, "Reconnecting after the delay the server asked for (Retry-After, or the rest of a venue maintenance).");
                    }
                    ReconnectWait::Healthy => {
                        tracing::info!(stream = %rt.name, delay_ms, productive, "Reconnecting: the connection was healthy, so the backoff starts over.");
                    }
                    ReconnectWait::Backoff => {
                        tracing::info!(stream = %rt.name, delay_ms, attempt, "Reconnecting after a delay.");
                    }
                }
            }
            ConnectionEvent::GaveUp { conn, url } => {
                stats.set_state(ConnState::Stopped);
                tracing::error!(stream = %rt.name, conn, url = %url, "Giving up: the stream's first connection failed in a way retrying does not fix, so the recorder stops instead of retrying.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::net::stream::runtime::ShardPosition;
    use crate::observe::stats::StreamStats;

    /// A runtime for the stream `s` of `toml` (one `[[stream]]` table's keys).
    fn runtime(toml: &str) -> StreamRuntime {
        let config = crate::config::Config::parse_toml(&format!(
            "[[stream]]\nname = \"s\"\nurl = \"wss://h/\"\n{toml}"
        ))
        .unwrap()
        .config;
        let s = &config.streams[0];
        StreamRuntime {
            idx: 0,
            name: s.name.clone(),
            masked_url: s.url.clone(),
            tags: s.tags.clone(),
            spec: crate::net::transport::ConnectSpec::from_config(s).unwrap(),
            subscribe: Vec::new(),
            ping_interval: None,
            pong_timeout: None,
            app_ping: None,
            app_ping_interval: None,
            app_pong_contains: None,
            silence_timeout: None,
            insecure: s.insecure,
            seq: Arc::default(),
            next_conn: Arc::default(),
            shard: ShardPosition {
                number: 1,
                count: 1,
            },
            venue: None,
            pacer: None,
            token: None,
            snapshots: None,
            stats: Arc::new(StreamStats::new(&s.name, &s.url)),
            clock: crate::clock::Clock::System,
            batch_max: 1,
            pressure: Arc::default(),
        }
    }

    /// The log lines (no time, no colours) that `events` write, one string per line.
    fn emitted(rt: &StreamRuntime, events: Vec<ConnectionEvent<'_>>) -> Vec<String> {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Writer(sink.clone()))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for e in events {
                e.emit(rt);
            }
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    /// Appends what the subscriber writes to a shared buffer.
    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_connect_is_counted_and_logged_with_its_warnings() {
        let rt = runtime("insecure = true\ncompression = \"deflate\"\n");
        let lines = emitted(
            &rt,
            vec![ConnectionEvent::Connected {
                conn: 7,
                url: "wss://h/",
                extensions: "",
            }],
        );
        assert_eq!(rt.stats.connections.load(Relaxed), 1);
        assert_eq!(rt.stats.state(), ConnState::Connected);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].starts_with(" WARN TLS CERTIFICATE VERIFICATION IS OFF"),
            "{lines:#?}"
        );
        assert_eq!(
            lines[1],
            " INFO Connected. stream=s conn=7 url=wss://h/ extensions=\"\""
        );
        assert!(
            lines[2].starts_with(" INFO The server declined permessage-deflate"),
            "{lines:#?}"
        );
        // Accepted compression, verified TLS: one line.
        let rt = runtime("compression = \"deflate\"\n");
        let lines = emitted(
            &rt,
            vec![ConnectionEvent::Connected {
                conn: 8,
                url: "wss://h/",
                extensions: "permessage-deflate",
            }],
        );
        assert_eq!(lines.len(), 1, "{lines:#?}");
    }

    #[test]
    fn only_unplanned_ends_and_failed_connects_count_as_errors() {
        let rt = runtime("");
        let lines = emitted(
            &rt,
            vec![
                ConnectionEvent::Disconnected {
                    conn: 1,
                    reason: "replaced",
                    detail: "planned reconnect",
                    messages: 5,
                    planned: true,
                },
                ConnectionEvent::Disconnected {
                    conn: 2,
                    reason: "silence_timeout",
                    detail: "no message for 1s",
                    messages: 6,
                    planned: false,
                },
                ConnectionEvent::ConnectFailed {
                    conn: 3,
                    url: "wss://h/",
                    step: None,
                    error: "refused",
                },
            ],
        );
        assert_eq!(
            lines,
            [
                " INFO Disconnected: planned reconnect. stream=s conn=1 reason=\"replaced\" messages=5",
                " WARN Disconnected: no message for 1s. stream=s conn=2 reason=\"silence_timeout\" messages=6",
                " WARN Connection attempt failed. stream=s conn=3 url=wss://h/ step=\"connect\" error=refused",
            ]
        );
        assert_eq!(rt.stats.disconnects.load(Relaxed), 1);
        assert_eq!(rt.stats.connect_failures.load(Relaxed), 1);
        assert_eq!(*rt.stats.last_error.lock().unwrap(), "refused");
    }

    #[test]
    fn drops_are_all_counted_and_logged_once_per_gap() {
        let rt = runtime("");
        let drop = |count, first| ConnectionEvent::Dropped {
            conn: 1,
            count,
            first,
        };
        let lines = emitted(&rt, vec![drop(3, true), drop(4, false), drop(2, true)]);
        assert_eq!(rt.stats.dropped.load(Relaxed), 9);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines.iter().all(|l| l.starts_with(" WARN Queue full")));
    }

    #[test]
    fn a_reconnect_wait_sets_the_backoff_state_and_says_what_decided_it() {
        let rt = runtime("");
        let wait = |wait| ConnectionEvent::Reconnecting {
            delay: Duration::from_millis(1500),
            attempt: 2,
            productive: true,
            wait,
        };
        let lines = emitted(
            &rt,
            vec![
                wait(ReconnectWait::ServerAsked),
                wait(ReconnectWait::Healthy),
                wait(ReconnectWait::Backoff),
            ],
        );
        assert_eq!(rt.stats.state(), ConnState::Backoff);
        assert_eq!(
            lines,
            [
                " INFO Reconnecting after the delay the server asked for (Retry-After, or the rest of a venue maintenance). stream=s delay_ms=1500 attempt=2",
                " INFO Reconnecting: the connection was healthy, so the backoff starts over. stream=s delay_ms=1500 productive=true",
                " INFO Reconnecting after a delay. stream=s delay_ms=1500 attempt=2",
            ]
        );
    }

    #[test]
    fn venue_refusals_silence_and_maintenance_become_the_last_error() {
        let rt = runtime("");
        let topics = ["trades.A".to_owned()];
        let lines = emitted(
            &rt,
            vec![ConnectionEvent::SubscriptionRejected {
                conn: 1,
                topics: &topics,
                reason: "unknown",
            }],
        );
        assert_eq!(
            lines,
            [
                "ERROR The venue refused a subscription. stream=s conn=1 topics=[\"trades.A\"] reason=\"unknown\""
            ]
        );
        assert_eq!(
            *rt.stats.last_error.lock().unwrap(),
            "subscription refused: unknown"
        );
        emitted(
            &rt,
            vec![ConnectionEvent::SubscriptionsSilent {
                conn: 1,
                acked: &topics,
                unacked: &topics,
                after: Duration::from_secs(30),
            }],
        );
        assert_eq!(
            *rt.stats.last_error.lock().unwrap(),
            "2 subscriptions without data after 30s"
        );
        emitted(
            &rt,
            vec![ConnectionEvent::VenueMaintenance {
                conn: 1,
                reason: "upgrade",
                at_most: Duration::from_secs(60),
            }],
        );
        assert_eq!(
            *rt.stats.last_error.lock().unwrap(),
            "venue maintenance: upgrade"
        );
    }
}
