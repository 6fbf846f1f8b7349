//! The catalogue of scenarios. A scenario is a payload, a workload shape (how the server feeds
//! the recorder), the recorder invocation, the target it is judged against, and the scenarios it
//! is compared with (websocat, or the same run without compression).
//!
//! To add a scenario, add an entry to [`catalogue`]; a new shape of traffic needs a [`Workload`]
//! variant, its [`Plan`] and its arm in [`crate::run::run_once`]; another recorder needs a
//! [`Recorder`] variant and its command line in [`crate::run`].

use anyhow::{Result, bail};
use serde::Serialize;

use crate::check::Format;

/// Size of the "small" messages.
pub const SMALL_SIZE: usize = 200;

/// Which messages are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// `{"seq":k,"pad":"xxx…"}` of exactly `size` bytes.
    Small {
        /// Exact message length.
        size: usize,
    },
    /// The exchange frames of `tests/fixtures/corpus/*.jsonl`, cycled.
    Corpus,
    /// The corpus with big book objects mixed in: ~64 KB every 256th frame, ~700 KB every
    /// 2048th (about 1 KB per message on average).
    Large,
}

/// How the server feeds the recorder. The sizes come from [`Sizes`] (flags), see [`Plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// One connection, all N messages as fast as the recorder reads them, then close.
    Flood,
    /// Like `Flood`, but the server closes (1000) after every `reconnect_every` messages and
    /// serves the next block to the recorder's next connection.
    Reconnect,
    /// `streams` connections, one stream each, `stream_rate` messages per second on each for
    /// `streams_duration` seconds, sends spread evenly (wsrec gets a config file).
    ManyStreams,
    /// One connection at `steady_rate` messages per second for `steady_duration` seconds.
    Steady,
    /// One connection at `hog_rate` messages per second for `steady_duration` seconds, while
    /// another writer fills the same file system with `fsync`ed files (see
    /// [`crate::hog::DiskHog`]); the receive delay of every message (`ts` - send time) is
    /// measured.
    DiskHog,
    /// One connection at `spaced_rate` messages per second for `steady_duration` seconds, each
    /// message written alone at its time (not in bursts of a millisecond's worth): the receive
    /// delay of every message (`ts` - send time) is measured, which shows whether each
    /// message's kernel receive time is its own.
    Spaced,
    /// `Spaced`'s connection (stream `bench`) beside a second connection of the same recorder
    /// (stream `flood`, one config file) that is sent messages at `flood_rate` in bursts of about
    /// 1 MiB (or as fast as the recorder reads them) from before the first spaced message until
    /// the spaced stream has been served (see
    /// [`crate::server::EndlessFlood`]): the receive delay of every spaced message shows whether
    /// its receive time is still its own while the recorder is busy with another socket, and the
    /// flood's every message must be recorded too.
    SpacedBesideFlood,
}

/// The sizes of the workloads, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sizes {
    /// Messages per run of the flood and reconnect workloads.
    pub messages: u64,
    /// Reconnect workload: messages per connection.
    pub reconnect_every: u64,
    /// Many-streams workload: connections (one stream each).
    pub streams: usize,
    /// Many-streams workload: messages per second per stream.
    pub stream_rate: f64,
    /// Many-streams workload: seconds of sending.
    pub streams_duration_s: f64,
    /// Steady workload: messages per second.
    pub steady_rate: f64,
    /// Steady workload: seconds of sending.
    pub steady_duration_s: f64,
    /// Disk-hog workload: messages per second.
    pub hog_rate: f64,
    /// Disk-hog workload: bytes of each file the other writer writes and `fsync`s.
    pub hog_file_bytes: u64,
    /// Spaced workload: messages per second, each sent alone.
    pub spaced_rate: f64,
    /// Spaced-beside-flood workload: the flooded stream's messages per second at most (sent in
    /// bursts of about 1 MiB), 0 for as fast as the recorder reads.
    pub flood_rate: f64,
}

impl Sizes {
    /// The full benchmark, as the speed issue describes it.
    pub const FULL: Self = Self {
        messages: 1_000_000,
        reconnect_every: 100_000,
        streams: 1000,
        stream_rate: 20.0,
        streams_duration_s: 30.0,
        steady_rate: 50_000.0,
        steady_duration_s: 10.0,
        hog_rate: 100_000.0,
        hog_file_bytes: 512 << 20,
        spaced_rate: 3_000.0,
        flood_rate: 300_000.0,
    };

    /// `--quick`: every scenario at a size that runs in seconds (a smoke test, not a measure); 200
    /// streams, because starting 1,000 websocat processes alone takes half a minute.
    pub const QUICK: Self = Self {
        messages: 100_000,
        reconnect_every: 20_000,
        streams: 200,
        stream_rate: 20.0,
        streams_duration_s: 2.0,
        steady_rate: 50_000.0,
        steady_duration_s: 2.0,
        hog_rate: 100_000.0,
        hog_file_bytes: 64 << 20,
        spaced_rate: 3_000.0,
        flood_rate: 300_000.0,
    };
}

/// What a workload amounts to with given sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Plan {
    /// Connections the server serves (in parallel for paced workloads, one after the other for
    /// the reconnect workload).
    pub connections: usize,
    /// Messages on each connection (the last block of a reconnect run may be shorter).
    pub per_connection: u64,
    /// Messages in the whole run (spaced-beside-flood: the spaced stream's; the flood's count is
    /// whatever the recorder reads meanwhile).
    pub messages: u64,
    /// Messages per second per connection, for paced workloads.
    pub rate: Option<f64>,
    /// Disk-hog workload: bytes of each file the other writer writes and `fsync`s.
    pub hog_file_bytes: Option<u64>,
    /// Spaced-beside-flood workload: the flooded stream's messages per second at most, `None`
    /// for as fast as the recorder reads.
    pub flood_rate: Option<f64>,
}

impl Workload {
    /// The plan of this workload with `sizes`.
    pub fn plan(self, sizes: &Sizes) -> Plan {
        let paced = |connections: usize, rate: f64, seconds: f64| {
            let per_connection = ((rate * seconds).round() as u64).max(1);
            Plan {
                connections,
                per_connection,
                messages: per_connection * connections as u64,
                rate: Some(rate),
                hog_file_bytes: None,
                flood_rate: None,
            }
        };
        match self {
            Self::Flood => Plan {
                connections: 1,
                per_connection: sizes.messages,
                messages: sizes.messages,
                rate: None,
                hog_file_bytes: None,
                flood_rate: None,
            },
            Self::Reconnect => {
                let every = sizes.reconnect_every.clamp(1, sizes.messages.max(1));
                Plan {
                    connections: sizes.messages.div_ceil(every) as usize,
                    per_connection: every,
                    messages: sizes.messages,
                    rate: None,
                    hog_file_bytes: None,
                    flood_rate: None,
                }
            }
            Self::ManyStreams => paced(
                sizes.streams.max(1),
                sizes.stream_rate,
                sizes.streams_duration_s,
            ),
            Self::Steady => paced(1, sizes.steady_rate, sizes.steady_duration_s),
            Self::DiskHog => Plan {
                hog_file_bytes: Some(sizes.hog_file_bytes),
                ..paced(1, sizes.hog_rate, sizes.steady_duration_s)
            },
            Self::Spaced => paced(1, sizes.spaced_rate, sizes.steady_duration_s),
            Self::SpacedBesideFlood => Plan {
                connections: 2,
                flood_rate: (sizes.flood_rate > 0.0).then_some(sizes.flood_rate),
                ..paced(1, sizes.spaced_rate, sizes.steady_duration_s)
            },
        }
    }

    /// Whether the server sends at a set pace (throughput is then the pace, and the figures
    /// that matter are CPU and memory). Not spaced-beside-flood: its throughput and CPU are
    /// mostly the flood's, and its figure is the spaced stream's receive delay.
    pub fn paced(self) -> bool {
        matches!(
            self,
            Self::ManyStreams | Self::Steady | Self::DiskHog | Self::Spaced
        )
    }
}

impl Plan {
    /// Messages per connection of the reconnect workload, in order.
    pub fn blocks(&self) -> Vec<u64> {
        let mut left = self.messages;
        let mut out = Vec::new();
        while left > 0 {
            let b = left.min(self.per_connection);
            out.push(b);
            left -= b;
        }
        out
    }
}

/// The program that records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recorder {
    /// `wsrec record URL -o DIR --name NAME --format FORMAT --compress none ARGS…`, or with a
    /// config file for the workloads that need one (many streams, short reconnect backoff).
    Wsrec {
        /// Output format.
        format: Format,
        /// The scenario's own extra arguments, after the bench's and before `--wsrec-arg`s.
        args: &'static [&'static str],
    },
    /// `websocat -n -U -B 1048576 ws://… > FILE`: raw lines, one process per connection.
    Websocat,
}

impl Recorder {
    /// The line format the recording will be in.
    pub fn format(self) -> Format {
        match self {
            Self::Wsrec { format, .. } => format,
            Self::Websocat => Format::Raw,
        }
    }

    /// Short name for the table.
    pub fn label(self) -> &'static str {
        match self {
            Self::Wsrec { .. } => "wsrec",
            Self::Websocat => "websocat",
        }
    }
}

/// Goals a scenario is judged against (2-core machine), each optional.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    /// Lowest acceptable median throughput.
    pub min_msgs_per_s: Option<f64>,
    /// Highest acceptable median CPU (user + system) per message, the recorder's whole life.
    pub max_cpu_ns_per_msg: Option<f64>,
    /// Paced workloads: highest acceptable median CPU per message in the steady window.
    pub max_steady_cpu_ns_per_msg: Option<f64>,
    /// Highest acceptable median peak RSS.
    pub max_rss_mib: Option<f64>,
    /// Highest acceptable median 99th percentile of the receive delay (`ts` - send time), µs,
    /// for the workloads that measure it.
    pub max_delay_p99_us: Option<f64>,
}

/// Target for the default (envelope) format, one stream.
pub const TARGET_ENVELOPE: Target = Target {
    min_msgs_per_s: Some(2.0e6),
    max_cpu_ns_per_msg: Some(400.0),
    max_steady_cpu_ns_per_msg: None,
    max_rss_mib: Some(12.0),
    max_delay_p99_us: None,
};

/// Target for the raw format, one stream.
pub const TARGET_RAW: Target = Target {
    min_msgs_per_s: Some(3.0e6),
    max_cpu_ns_per_msg: Some(400.0),
    max_steady_cpu_ns_per_msg: None,
    max_rss_mib: Some(12.0),
    max_delay_p99_us: None,
};

/// Target for the corpus frames, one stream.
pub const TARGET_CORPUS: Target = Target {
    min_msgs_per_s: Some(1.5e6),
    max_cpu_ns_per_msg: None,
    max_steady_cpu_ns_per_msg: None,
    max_rss_mib: Some(12.0),
    max_delay_p99_us: None,
};

/// Target of one stream at a set pace: memory only (the disk-hog scenario).
pub const TARGET_ONE_STREAM_RSS: Target = Target {
    min_msgs_per_s: None,
    max_cpu_ns_per_msg: None,
    max_steady_cpu_ns_per_msg: None,
    max_rss_mib: Some(12.0),
    max_delay_p99_us: None,
};

/// Target of one stream at a steady 50,000 msg/s (issue 22): at most 1 µs of CPU per message in
/// the steady window.
pub const TARGET_STEADY: Target = Target {
    min_msgs_per_s: None,
    max_cpu_ns_per_msg: None,
    max_steady_cpu_ns_per_msg: Some(1000.0),
    max_rss_mib: Some(12.0),
    max_delay_p99_us: None,
};

/// Target for 1,000 streams (issue 22): at most 4 µs of CPU per message in the steady window.
pub const TARGET_MANY_STREAMS: Target = Target {
    min_msgs_per_s: None,
    max_cpu_ns_per_msg: None,
    max_steady_cpu_ns_per_msg: Some(4000.0),
    max_rss_mib: Some(100.0),
    max_delay_p99_us: None,
};

/// Target of one stream whose messages come one by one (the spaced scenario): each message's
/// receive time its own, within 100 µs of its sending at the 99th percentile.
pub const TARGET_SPACED: Target = Target {
    min_msgs_per_s: None,
    max_cpu_ns_per_msg: None,
    max_steady_cpu_ns_per_msg: None,
    max_rss_mib: Some(12.0),
    max_delay_p99_us: Some(100.0),
};

/// Target of the spaced stream beside a flooded one: the same receive delay limit as
/// [`TARGET_SPACED`], since the kernel stamps a message when it arrives however busy the recorder
/// is, and the stamp is late only when the recorder reads the socket after the next message has
/// arrived too (one stamp per read, the newest data's): a recorder that reads every socket at
/// least once per interval (333 µs) keeps every stamp its own. No memory limit: the other stream
/// lasts as long as the spaced one, and with `--flood-rate 0` (as fast as the recorder reads;
/// 10 s, about 18 M messages, 5 GB of lines) the recorder's disk buffer fills as in any flood the
/// disk does not keep up with (scenario 1 with 4 M messages peaks at about 76 MiB too), so the
/// peak RSS is that buffer's, not the spaced stream's.
pub const TARGET_SPACED_BESIDE_FLOOD: Target = Target {
    min_msgs_per_s: None,
    max_cpu_ns_per_msg: None,
    max_steady_cpu_ns_per_msg: None,
    max_rss_mib: None,
    max_delay_p99_us: Some(100.0),
};

/// A comparison of a scenario's medians with another scenario's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Compare {
    /// The other scenario.
    pub against: &'static str,
    /// Lowest acceptable ratio of this scenario's msg/s to the other's, if it is a target.
    pub min_msgs_ratio: Option<f64>,
}

/// One benchmark scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Name used with `--scenario` and in the results.
    pub name: &'static str,
    /// One-line description.
    pub about: &'static str,
    /// Which messages.
    pub payload: PayloadKind,
    /// How they are fed.
    pub workload: Workload,
    /// Who records them.
    pub recorder: Recorder,
    /// What counts as good enough.
    pub target: Option<Target>,
    /// Scenarios this one is compared with.
    pub compare: Option<Compare>,
}

/// Arguments of the rotation scenarios: files close every 50 MB (a 1-minute rotation alone
/// would close nothing during a run of a second).
const ROTATE_NONE: &[&str] = &[
    "--rotate",
    "1m",
    "--max-bytes",
    "50MB",
    "--compress",
    "none",
];
const ROTATE_ZSTD: &[&str] = &[
    "--rotate",
    "1m",
    "--max-bytes",
    "50MB",
    "--compress",
    "zstd",
];

/// Arguments of the steady scenarios: "compression included", so a file closes about every
/// second (10 MB at 50,000 envelope lines of ~250 bytes per second) and is compressed with
/// zstd while the stream goes on.
const STEADY_ZSTD: &[&str] = &["--max-bytes", "10MB", "--compress", "zstd"];

const SMALL: PayloadKind = PayloadKind::Small { size: SMALL_SIZE };
const ENVELOPE: Recorder = Recorder::Wsrec {
    format: Format::Envelope,
    args: &[],
};
const RAW: Recorder = Recorder::Wsrec {
    format: Format::Raw,
    args: &[],
};

/// Compared with a websocat scenario, no target on the ratio.
const fn vs(against: &'static str) -> Option<Compare> {
    Some(Compare {
        against,
        min_msgs_ratio: None,
    })
}

/// Every scenario, in the order they run by default (a compared scenario right after or before
/// the one it is compared with, so both see the same machine).
pub fn catalogue() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "small-envelope",
            about: "1. 200-byte JSON messages, one connection, envelope (default) format",
            payload: SMALL,
            workload: Workload::Flood,
            recorder: ENVELOPE,
            target: Some(TARGET_ENVELOPE),
            compare: None,
        },
        Scenario {
            name: "small-raw",
            about: "2. 200-byte JSON messages, one connection, raw format",
            payload: SMALL,
            workload: Workload::Flood,
            recorder: RAW,
            target: Some(TARGET_RAW),
            compare: vs("websocat-small"),
        },
        Scenario {
            name: "websocat-small",
            about: "websocat on scenario 2 (raw lines)",
            payload: SMALL,
            workload: Workload::Flood,
            recorder: Recorder::Websocat,
            target: None,
            compare: None,
        },
        Scenario {
            name: "corpus-envelope",
            about: "3. real exchange frames (tests/fixtures/corpus) cycled, one connection, envelope format",
            payload: PayloadKind::Corpus,
            workload: Workload::Flood,
            recorder: ENVELOPE,
            target: Some(TARGET_CORPUS),
            compare: None,
        },
        Scenario {
            name: "corpus-raw",
            about: "3. the same in raw format (to compare with websocat)",
            payload: PayloadKind::Corpus,
            workload: Workload::Flood,
            recorder: RAW,
            target: Some(TARGET_CORPUS),
            compare: vs("websocat-corpus"),
        },
        Scenario {
            name: "websocat-corpus",
            about: "websocat on scenario 3 (raw lines)",
            payload: PayloadKind::Corpus,
            workload: Workload::Flood,
            recorder: Recorder::Websocat,
            target: None,
            compare: None,
        },
        Scenario {
            name: "large-envelope",
            about: "3b. large-frame mix (corpus frames, a ~64 KB book every 256th, a ~700 KB book every 2048th; ~1 KB average), envelope",
            payload: PayloadKind::Large,
            workload: Workload::Flood,
            recorder: ENVELOPE,
            target: None,
            compare: None,
        },
        Scenario {
            name: "large-raw",
            about: "3b. the same in raw format",
            payload: PayloadKind::Large,
            workload: Workload::Flood,
            recorder: RAW,
            target: None,
            compare: None,
        },
        Scenario {
            name: "rotate-none",
            about: "4. baseline: scenario 1 with --rotate 1m --max-bytes 50MB, no compression",
            payload: SMALL,
            workload: Workload::Flood,
            recorder: Recorder::Wsrec {
                format: Format::Envelope,
                args: ROTATE_NONE,
            },
            target: None,
            compare: None,
        },
        Scenario {
            name: "rotate-zstd",
            about: "4. the same with zstd compression of every closed file (--compress zstd)",
            payload: SMALL,
            workload: Workload::Flood,
            recorder: Recorder::Wsrec {
                format: Format::Envelope,
                args: ROTATE_ZSTD,
            },
            target: None,
            compare: Some(Compare {
                against: "rotate-none",
                min_msgs_ratio: Some(0.9),
            }),
        },
        Scenario {
            name: "corpus-rotate-none",
            about: "4. baseline with real frames: scenario 3 with --rotate 1m --max-bytes 50MB, no compression",
            payload: PayloadKind::Corpus,
            workload: Workload::Flood,
            recorder: Recorder::Wsrec {
                format: Format::Envelope,
                args: ROTATE_NONE,
            },
            target: None,
            compare: None,
        },
        Scenario {
            name: "corpus-rotate-zstd",
            about: "4. the same with zstd compression of every closed file (real frames compress ~6x, padding ~70x)",
            payload: PayloadKind::Corpus,
            workload: Workload::Flood,
            recorder: Recorder::Wsrec {
                format: Format::Envelope,
                args: ROTATE_ZSTD,
            },
            target: None,
            compare: Some(Compare {
                against: "corpus-rotate-none",
                min_msgs_ratio: Some(0.9),
            }),
        },
        Scenario {
            name: "many-streams",
            about: "5. 1,000 streams on 1,000 connections, 20 msg/s each for 30 s, envelope (config file)",
            payload: SMALL,
            workload: Workload::ManyStreams,
            recorder: ENVELOPE,
            target: Some(TARGET_MANY_STREAMS),
            compare: vs("websocat-many-streams"),
        },
        Scenario {
            name: "websocat-many-streams",
            about: "websocat on scenario 5: one process per connection (CPU and RSS summed)",
            payload: SMALL,
            workload: Workload::ManyStreams,
            recorder: Recorder::Websocat,
            target: None,
            compare: None,
        },
        Scenario {
            name: "reconnect",
            about: "6. scenario 1 with the server closing (1000) after every 100k messages; the recorder reconnects",
            payload: SMALL,
            workload: Workload::Reconnect,
            recorder: ENVELOPE,
            target: None,
            compare: Some(Compare {
                against: "small-envelope",
                min_msgs_ratio: None,
            }),
        },
        Scenario {
            name: "reconnect-raw",
            about: "6. the same in raw format (to compare with websocat)",
            payload: SMALL,
            workload: Workload::Reconnect,
            recorder: RAW,
            target: None,
            compare: vs("websocat-reconnect"),
        },
        Scenario {
            name: "websocat-reconnect",
            about: "websocat (autoreconnect: overlay) on scenario 6 (raw lines)",
            payload: SMALL,
            workload: Workload::Reconnect,
            recorder: Recorder::Websocat,
            target: None,
            compare: None,
        },
        Scenario {
            name: "steady-envelope",
            about: "7. one connection at a steady 50k msg/s for 10 s, envelope format, files of 10 MB compressed with zstd as they close",
            payload: SMALL,
            workload: Workload::Steady,
            recorder: Recorder::Wsrec {
                format: Format::Envelope,
                args: STEADY_ZSTD,
            },
            target: Some(TARGET_STEADY),
            compare: None,
        },
        Scenario {
            name: "steady-raw",
            about: "7. the same in raw format (to compare with websocat)",
            payload: SMALL,
            workload: Workload::Steady,
            recorder: Recorder::Wsrec {
                format: Format::Raw,
                args: STEADY_ZSTD,
            },
            target: Some(TARGET_STEADY),
            compare: vs("websocat-steady"),
        },
        Scenario {
            name: "steady-disk-hog",
            about: "8. one connection at a steady 100k msg/s for 10 s while another writer fills the same file system with fsynced 512 MiB files; receive delay (ts - send time) per message",
            payload: SMALL,
            workload: Workload::DiskHog,
            recorder: ENVELOPE,
            target: Some(TARGET_ONE_STREAM_RSS),
            compare: None,
        },
        Scenario {
            name: "spaced-envelope",
            about: "9. one connection at 3,000 msg/s for 10 s, each message sent alone at its time (every 333 us); receive delay (ts - send time) per message: is each message's receive time its own?",
            payload: SMALL,
            workload: Workload::Spaced,
            recorder: ENVELOPE,
            target: Some(TARGET_SPACED),
            compare: None,
        },
        Scenario {
            name: "spaced-beside-flood",
            about: "10. scenario 9's stream beside another stream of the same recorder sent 300k msg/s in bursts of 1 MiB (200-byte messages, config file with 2 streams; --flood-rate 0: as fast as it reads): is each quiet message's receive time still its own?",
            payload: SMALL,
            workload: Workload::SpacedBesideFlood,
            recorder: ENVELOPE,
            target: Some(TARGET_SPACED_BESIDE_FLOOD),
            compare: None,
        },
        Scenario {
            name: "websocat-steady",
            about: "websocat on scenario 7 (raw lines)",
            payload: SMALL,
            workload: Workload::Steady,
            recorder: Recorder::Websocat,
            target: None,
            compare: None,
        },
    ]
}

/// Scenarios of the speed issue that websocat cannot run, and why (shown in the report).
pub const WEBSOCAT_NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "small-envelope, corpus-envelope, steady-envelope",
        "websocat writes each message as a raw line and has no envelope (time, stream, sequence); it is compared with wsrec's raw format instead",
    ),
    (
        "rotate-*, corpus-rotate-*",
        "websocat writes one stream to stdout: no file rotation, no compression of closed files",
    ),
    (
        "reconnect",
        "websocat (autoreconnect: overlay) is compared with reconnect-raw; its output has no connection boundaries, so only the whole sequence is checked, not each connection's share",
    ),
];

/// Resolves `--scenario` values (names, comma lists, or `all`) to scenarios in catalogue order,
/// adding the scenarios the selected ones are compared with. Without `websocat`, websocat
/// scenarios are left out.
///
/// # Errors
/// An unknown name; the message lists the known ones.
pub fn select(names: &[String], websocat: bool) -> Result<Vec<Scenario>> {
    let all = catalogue();
    let mut wanted: Vec<&str> = names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for name in &wanted {
        if *name != "all" && !all.iter().any(|s| s.name == *name) {
            let known: Vec<_> = all.iter().map(|s| s.name).collect();
            bail!("unknown scenario {name:?}; known: {}", known.join(", "));
        }
    }
    let everything = wanted.is_empty() || wanted.contains(&"all");
    if !everything {
        // Add what the selected scenarios are compared with (one level is all there is).
        let extra: Vec<&str> = all
            .iter()
            .filter(|s| wanted.contains(&s.name))
            .filter_map(|s| s.compare.map(|c| c.against))
            .collect();
        wanted.extend(extra);
    }
    Ok(all
        .into_iter()
        .filter(|s| everything || wanted.contains(&s.name))
        .filter(|s| websocat || s.recorder != Recorder::Websocat)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str], websocat: bool) -> Vec<&'static str> {
        let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        select(&v, websocat)
            .unwrap()
            .iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn selects_by_name_list_and_all() {
        assert_eq!(names(&[], true).len(), catalogue().len());
        assert_eq!(names(&["all"], true).len(), catalogue().len());
        assert_eq!(
            names(&["corpus-envelope,small-envelope"], true),
            ["small-envelope", "corpus-envelope"]
        );
        assert!(select(&["nope".to_string()], true).is_err());
    }

    #[test]
    fn compared_scenarios_come_along_unless_websocat_is_off() {
        assert_eq!(names(&["small-raw"], true), ["small-raw", "websocat-small"]);
        assert_eq!(names(&["small-raw"], false), ["small-raw"]);
        assert_eq!(
            names(&["rotate-zstd"], false),
            ["rotate-none", "rotate-zstd"]
        );
        assert!(names(&[], false).iter().all(|n| !n.starts_with("websocat")));
    }

    #[test]
    fn names_are_unique_and_comparisons_exist() {
        let all = catalogue();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for s in &all {
            if let Some(c) = s.compare {
                let other = all.iter().find(|o| o.name == c.against).unwrap();
                assert_eq!(other.payload, s.payload, "{}", s.name);
            }
        }
    }

    #[test]
    fn plans_follow_the_sizes() {
        let full = Sizes::FULL;
        let many = Workload::ManyStreams.plan(&full);
        assert_eq!(
            (many.connections, many.per_connection, many.messages),
            (1000, 600, 600_000)
        );
        let steady = Workload::Steady.plan(&full);
        assert_eq!((steady.connections, steady.messages), (1, 500_000));
        let r = Workload::Reconnect.plan(&full);
        assert_eq!(r.connections, 10);
        assert_eq!(r.blocks(), vec![100_000; 10]);
        let odd = Sizes {
            messages: 250,
            reconnect_every: 100,
            ..full
        };
        assert_eq!(Workload::Reconnect.plan(&odd).blocks(), [100, 100, 50]);
        assert_eq!(Workload::Flood.plan(&odd).messages, 250);
        let spaced = Workload::Spaced.plan(&full);
        let beside = Workload::SpacedBesideFlood.plan(&full);
        assert_eq!((spaced.connections, spaced.messages), (1, 30_000));
        assert_eq!((beside.connections, beside.messages), (2, 30_000));
        assert_eq!(beside.rate, Some(3_000.0));
        assert!(!Workload::SpacedBesideFlood.paced());
    }
}
