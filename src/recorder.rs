//! The recorder as a library: build it from a [`Config`] (or with [`RecorderBuilder`]) and
//! [`Recorder::run`] it until a shutdown token is cancelled.
//!
//! `run` first raises the soft open-file limit to the hard one and refuses to start when the
//! streams would still not fit in it ([`descriptors_needed`]). It wires the pipeline (see the
//! crate docs), then waits for shutdown and takes it down in order: connections close and drop
//! their queue senders, the writer drains what they queued and closes every file, the disk
//! thread finishes, the status socket is removed. All of it within the configured deadline; a
//! task that overruns is named in the error.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::compress::Compressor;
use crate::config::{Config, StreamConfig, WhenFull};
use crate::error::ConfigError;
use crate::stats::{Stats, StreamStats};
use crate::status::StatusServer;
use crate::stream::Policy;
use crate::stream::runtime::{StreamRuntime, VenueRuntime};
use crate::transport::ConnectSpec;
use crate::venue::pace::{Bucket, Pacer};
use crate::venue::presets::Counts;
use crate::writer::{StreamSink, Writer, WriterSettings};

/// Most messages a connection puts in one hand-off.
const BATCH_MAX: usize = 2048;

/// Descriptors a recorder needs besides its streams and uploads: stdio, the runtime's epoll and
/// wakers, the signal pipe, the log file, the status socket and a few clients, the metrics
/// endpoint and a few scrapers, the disk worker's manifest and directory syncs, the
/// compressor's input and output, the NATS connection, the resolver's and the TLS roots' files.
const FIXED_DESCRIPTORS: u64 = 64;
/// Descriptors per connection of a stream: its socket, and a second one for the
/// make-before-break replacement (or a reconnect's DNS lookup while the old socket closes).
const DESCRIPTORS_PER_CONNECTION: u64 = 2;
/// Descriptors per upload in flight: the file and the HTTP connections of its parts.
const DESCRIPTORS_PER_UPLOAD: u64 = 4;

/// Why the recorder could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The output directory cannot be created or written.
    #[error("output directory {}: {source}; check the path and its permissions", path.display())]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The status socket cannot be set up.
    #[error(transparent)]
    Status(#[from] crate::status::StatusError),
    /// The metrics endpoint cannot listen on its address.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A thread could not be started.
    #[error("cannot start the compressor thread: {0}")]
    Thread(std::io::Error),
    /// Shutdown did not finish within the deadline.
    #[error(
        "shutdown did not finish within {deadline:?}: still running: {laggards}; files left with the .open suffix will need recovery"
    )]
    ShutdownTimeout {
        /// The deadline.
        deadline: Duration,
        /// What was still running.
        laggards: String,
    },
}

/// A configured recorder, ready to run.
#[derive(Debug)]
pub struct Recorder {
    config: Config,
    clock: Clock,
    stats: Arc<Stats>,
}

/// Builds a [`Recorder`] from code.
///
/// ```no_run
/// use wsrec::{Recorder, StreamConfig};
/// # async fn example() -> Result<(), wsrec::RunError> {
/// let recorder = Recorder::builder()
///     .output_dir("./data")
///     .stream(
///         StreamConfig::new("bybit", "wss://stream.bybit.com/v5/public/linear")
///             .subscribe(r#"{"op":"subscribe","args":["publicTrade.BTCUSDT"]}"#),
///     )
///     .build()?;
/// let shutdown = tokio_util::sync::CancellationToken::new();
/// recorder.run(shutdown).await
/// # }
/// ```
#[derive(Debug, Default)]
pub struct RecorderBuilder {
    config: Config,
    clock: Option<Clock>,
}

impl RecorderBuilder {
    /// Directory the recordings go under (default `./data`).
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.output_dir = dir.into();
        self
    }

    /// Adds a stream.
    pub fn stream(mut self, stream: StreamConfig) -> Self {
        self.config.streams.push(stream);
        self
    }

    /// Queue capacity between connections and the writer, in messages.
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.config.queue_capacity = messages;
        self
    }

    /// What connections do when the queue is full.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.config.when_full = policy;
        self
    }

    /// Status socket path; `None` for no socket (the builder's default).
    pub fn status_socket(mut self, path: Option<PathBuf>) -> Self {
        self.config.status_socket = Some(path.unwrap_or_default());
        self
    }

    /// Serve Prometheus/OpenMetrics metrics on `addr` (port 0: a free port, published in
    /// [`Stats::metrics_addr`]); `None` for no endpoint (the default).
    pub fn metrics_listen(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.config.metrics_listen = addr;
        self
    }

    /// Bound on how long data sits in memory before it is written to the OS.
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.config.flush_interval = every;
        self
    }

    /// The clock for receive timestamps and rotation (tests use [`Clock::tokio`]).
    #[doc(hidden)]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn build(mut self) -> Result<Recorder, ConfigError> {
        if self.config.status_socket.is_none() {
            self.config.status_socket = Some(PathBuf::new());
        }
        self.config.status_interval = None;
        let r = Recorder::new(self.config)?;
        Ok(match self.clock {
            Some(c) => r.with_clock(c),
            None => r,
        })
    }
}

impl Recorder {
    /// A builder with no streams, no status socket and no status log.
    pub fn builder() -> RecorderBuilder {
        RecorderBuilder::default()
    }

    /// A recorder for a complete config.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn new(config: Config) -> Result<Recorder, ConfigError> {
        config.validate(&crate::venue::Catalog)?;
        let streams = config
            .streams
            .iter()
            .map(|s| Arc::new(StreamStats::new(&s.name, &s.masked_url())))
            .collect();
        let stats = Arc::new(Stats::new(streams, config.queue_capacity as u64));
        Ok(Recorder {
            config,
            clock: Clock::System,
            stats,
        })
    }

    /// Uses `clock` for receive timestamps and rotation (tests use [`Clock::tokio`]).
    #[doc(hidden)]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The live counters (what the status socket serves).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Records until `shutdown` is cancelled, then drains, closes every file and returns.
    ///
    /// # Errors
    /// Startup failures (config, open-file limit, output directory, status socket, metrics
    /// address) before anything is written, or a shutdown that overran its deadline.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunError> {
        let Recorder {
            config,
            clock,
            stats,
        } = self;
        raise_open_file_limit(descriptors_needed(&config), config.streams.len())?;
        std::fs::create_dir_all(&config.output_dir).map_err(|source| RunError::OutputDir {
            path: config.output_dir.clone(),
            source,
        })?;
        check_writable(&config.output_dir)?;
        // Files a crashed run left open are made readable and closed before anything new.
        crate::recover::recover_dir(&config.output_dir, &config.streams, clock.now_ns());

        // Everything that can fail on bad input is done before the first connection.
        let batch_max = BATCH_MAX.min(config.queue_capacity.div_ceil(4)).max(1);
        let pressure = Arc::new(crate::record::Pressure::default());
        let mut runtimes = Vec::new();
        let mut sinks = Vec::new();
        let mut pacers = Pacers::default();
        for (idx, (s, st)) in config.streams.iter().zip(&stats.streams).enumerate() {
            sinks.push(StreamSink::new(s, st.clone(), &config.output_dir));
            let shards = crate::venue::plan(s);
            if shards.len() > 1 {
                tracing::info!(stream = %s.name, topics = s.topics.len(), connections = shards.len(), "Topics split over several connections (max_topics_per_connection).");
            }
            let shared = Shared {
                stats: st.clone(),
                seq: Arc::default(),
                next_conn: Arc::new(AtomicU64::new(1)),
                pacer: pacers.get(s),
                clock,
                batch_max,
                pressure: pressure.clone(),
            };
            let count = shards.len();
            for (i, shard) in shards.into_iter().enumerate() {
                runtimes.push((runtime(idx, s, &shared, shard, (i + 1, count))?, policy(s)));
            }
        }
        let status = match config.status_socket_path() {
            Some(path) => Some(StatusServer::bind(&path)?),
            None => None,
        };
        let metrics = match config.metrics_listen {
            Some(addr) => Some(crate::metrics::MetricsServer::bind(addr).await?),
            None => None,
        };

        let (uploader, upload_queue) = match &config.upload {
            Some(u) => {
                let (up, q) = crate::upload::Uploader::spawn(u, &config.output_dir, stats.clone())?;
                // Before the compressor's sweep: what it finishes reaches the queue once.
                crate::upload::sweep(
                    &config.output_dir,
                    config.compress,
                    &q,
                    u.delete_local_after_upload,
                );
                (Some(up), Some(q))
            }
            None => (None, None),
        };
        let compressor = Compressor::spawn(
            config.compress,
            config.compress_level,
            stats.clone(),
            pressure.clone(),
            upload_queue.clone(),
        )
        .map_err(RunError::Thread)?;
        let (compressor, compress_queue) = match compressor {
            Some((c, q)) => (Some(c), Some(q)),
            None => (None, None),
        };
        crate::compress::sweep(&config.output_dir, config.compress, compress_queue.as_ref());
        let upload_queue = upload_queue.filter(|_| compress_queue.is_none());
        let disk = crate::disk::Disk::new(stats.clone(), compress_queue)
            .with_upload(upload_queue)
            .with_buffer(config.disk_buffer);
        let (queue_tx, queue_rx) = crate::record::queue(config.queue_capacity, config.when_full);
        let writer = Writer::new(
            WriterSettings {
                output_dir: config.output_dir.clone(),
                clock,
                flush_interval: config.flush_interval,
                disk_warn: config.disk_warn,
                disk_stop: config.disk_stop,
            },
            sinks,
            queue_rx,
            disk,
            stats.clone(),
        );
        let (writer, nats) = match &config.nats {
            Some(n) => {
                let (tx, sink) = crate::nats::channel(n, &config, stats.clone(), clock.now_ns());
                (writer.with_nats(tx), Some(crate::nats::spawn(sink)))
            }
            None => (writer, None),
        };
        let writer = tokio::spawn(writer.run());

        let streams = TaskTracker::new();
        for (rt, policy) in runtimes {
            streams.spawn(crate::stream::run(
                Arc::new(rt),
                policy,
                queue_tx.clone(),
                shutdown.clone(),
            ));
        }
        streams.close();
        // From here on only connections hold senders: when they are done, the writer drains.
        drop(queue_tx);

        let side = CancellationToken::new();
        let side_tasks = TaskTracker::new();
        if let Some(server) = status {
            side_tasks.spawn(server.run(stats.clone(), side.clone()));
        }
        if let Some(server) = metrics {
            side_tasks.spawn(server.run(stats.clone(), clock, side.clone()));
        }
        if let Some(every) = config.status_interval {
            side_tasks.spawn(status_log(stats.clone(), every, side.clone()));
        }
        side_tasks.close();
        tracing::info!(
            streams = config.streams.len(),
            output_dir = %config.output_dir.display(),
            "Recording."
        );

        shutdown.cancelled().await;
        // Pending uploads wait for the next start's sweep; none is begun while shutting down.
        if let Some(u) = &uploader {
            u.cancel();
        }
        tracing::info!(deadline = ?config.shutdown_timeout, "Shutting down: closing connections and writing what was received.");
        let started = tokio::time::Instant::now();
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            streams.wait().await;
            let _ = writer.await;
        })
        .await;
        // The writer has closed (and queued) every file; compress what time allows, and publish
        // what is still on its way to NATS.
        let remaining = config.shutdown_timeout.saturating_sub(started.elapsed());
        let compress = async {
            if let Some(c) = compressor {
                c.finish(remaining).await;
            }
        };
        tokio::join!(compress, crate::nats::finish(nats, remaining));
        if let Some(u) = uploader {
            u.stop().await;
        }
        side.cancel();
        side_tasks.wait().await;
        match drained {
            Ok(()) => {
                tracing::info!("Stopped; every file is closed.");
                Ok(())
            }
            Err(_) => {
                let laggards = if streams.is_empty() {
                    "the writer (files still being flushed)".to_owned()
                } else {
                    format!("{} stream task(s) and the writer", streams.len())
                };
                tracing::error!(%laggards, "Shutdown deadline passed.");
                Err(RunError::ShutdownTimeout {
                    deadline: config.shutdown_timeout,
                    laggards,
                })
            }
        }
    }
}

/// Open files (descriptors) a recorder of `config` may need at once, with a margin: for each
/// connection (a stream has one per shard) two sockets (make-before-break overlap), for each
/// stream its data file and, in the `raw` format, its events file, for each upload in flight
/// its file and connections, and what every recorder needs; plus a quarter for what is not
/// counted (more status or metrics clients, files briefly open at rotation).
pub fn descriptors_needed(config: &Config) -> u64 {
    let streams: u64 = config
        .streams
        .iter()
        .map(|s| {
            let connections = crate::venue::plan(s).len() as u64;
            let files = if s.format == crate::config::Format::Raw {
                2
            } else {
                1
            };
            connections * DESCRIPTORS_PER_CONNECTION + files
        })
        .sum();
    let uploads = config
        .upload
        .as_ref()
        .map_or(0, |u| u.concurrency as u64 * DESCRIPTORS_PER_UPLOAD);
    let base = FIXED_DESCRIPTORS + streams + uploads;
    base + base.div_ceil(4)
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard one, as far as the system
/// allows, and checks that `needed` descriptors fit in it.
///
/// # Errors
/// [`ConfigError::OpenFiles`] when they do not: the streams would fail to connect or to open
/// their files one after another.
fn raise_open_file_limit(needed: u64, streams: usize) -> Result<(), ConfigError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "Cannot read the open-file limit (RLIMIT_NOFILE); starting without checking it.");
        return Ok(());
    }
    let before = lim.rlim_cur;
    // The hard limit first; where the system refuses it (macOS caps an unlimited one), what is
    // needed.
    for target in [lim.rlim_max, needed.min(lim.rlim_max)] {
        if target <= lim.rlim_cur {
            continue;
        }
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = target;
            break;
        }
    }
    if lim.rlim_cur > before {
        tracing::info!(
            from = before,
            to = lim.rlim_cur,
            hard = lim.rlim_max,
            needed,
            "Raised the open-file limit (RLIMIT_NOFILE)."
        );
    }
    if lim.rlim_cur < needed {
        return Err(ConfigError::OpenFiles {
            streams,
            needed,
            limit: lim.rlim_cur,
            hard: lim.rlim_max,
        });
    }
    Ok(())
}

fn check_writable(dir: &std::path::Path) -> Result<(), RunError> {
    let probe = dir.join(format!(".wsrec-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| RunError::OutputDir {
            path: dir.to_owned(),
            source,
        })
}

/// What the shards of one stream share.
struct Shared {
    stats: Arc<StreamStats>,
    seq: Arc<AtomicU64>,
    next_conn: Arc<AtomicU64>,
    pacer: Option<Arc<Pacer>>,
    clock: Clock,
    batch_max: usize,
    pressure: Arc<crate::record::Pressure>,
}

/// One pacer per venue (or host) and spacing, shared by every stream that talks to it, and one
/// bucket per venue budget, shared by every pacer that draws on it.
#[derive(Default)]
struct Pacers {
    pacers: std::collections::HashMap<String, Arc<Pacer>>,
    buckets: std::collections::HashMap<&'static str, Arc<Bucket>>,
}

impl Pacers {
    /// The bucket of the preset's budget that counts `what`, if the venue has one.
    fn bucket(
        &mut self,
        preset: Option<&'static crate::venue::Preset>,
        what: Counts,
    ) -> Option<Arc<Bucket>> {
        let b = preset?.budgets().find(|b| b.counts == what)?;
        let bucket = self
            .buckets
            .entry(b.name)
            .or_insert_with(|| Arc::new(Bucket::for_budget(b)));
        Some(bucket.clone())
    }

    fn get(&mut self, s: &StreamConfig) -> Option<Arc<Pacer>> {
        if s.connect_interval.is_none() && s.subscribe_interval.is_none() {
            return None;
        }
        let target = match &s.venue {
            Some(v) => v.to_ascii_lowercase(),
            None => url::Url::parse(&s.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        let key = format!(
            "{target}|{:?}|{:?}",
            s.connect_interval, s.subscribe_interval
        );
        let preset = s.venue.as_deref().and_then(crate::venue::find);
        let connects = self.bucket(preset, Counts::Connects);
        let messages = self.bucket(preset, Counts::Messages);
        let pacer = self.pacers.entry(key).or_insert_with(|| {
            Arc::new(
                Pacer::new(
                    s.connect_interval.unwrap_or_default(),
                    s.subscribe_interval.unwrap_or_default(),
                )
                .with_budgets(connects, messages),
            )
        });
        Some(pacer.clone())
    }
}

fn runtime(
    idx: usize,
    s: &StreamConfig,
    shared: &Shared,
    shard: crate::venue::Shard,
    position: (usize, usize),
) -> Result<StreamRuntime, ConfigError> {
    let mut spec_source = s.clone();
    spec_source.url.clone_from(&shard.url);
    let preset = s.venue.as_deref().and_then(crate::venue::find);
    let venue = preset
        .filter(|_| !shard.topics.is_empty())
        .map(|p| VenueRuntime {
            family: p.family,
            requests: shard.requests.clone(),
            in_url: shard.topics[..shard.in_url].to_vec(),
            first_data_timeout: s.first_data_timeout,
            subscribe_after_connect: p.limits.subscribe_after_connect,
        });
    let token = match (&s.token_url, preset.and_then(|p| p.pre_connect.as_ref())) {
        (Some(url), Some(pc)) => Some(crate::venue::token::TokenStep::new(url, pc).map_err(
            |message| ConfigError::Invalid {
                field: format!("stream `{}`: token_url", s.name),
                message,
            },
        )?),
        _ => None,
    };
    Ok(StreamRuntime {
        idx,
        name: s.name.clone(),
        masked_url: crate::config::mask_url(&shard.url),
        spec: ConnectSpec::from_config(&spec_source)?,
        subscribe: shard.subscribe,
        ping_interval: s.ping_interval,
        pong_timeout: s.pong_timeout,
        app_ping: s.app_ping.as_ref().map(|m| m.0.clone()),
        app_ping_interval: s.app_ping_interval,
        app_pong_contains: s.app_pong_contains.as_ref().map(|t| t.as_bytes().to_vec()),
        silence_timeout: s.silence_timeout,
        insecure: s.insecure,
        seq: shared.seq.clone(),
        next_conn: shared.next_conn.clone(),
        shard: position,
        venue,
        pacer: shared.pacer.clone(),
        token,
        stats: shared.stats.clone(),
        clock: shared.clock,
        batch_max: shared.batch_max,
        pressure: shared.pressure.clone(),
    })
}

fn policy(s: &StreamConfig) -> Policy {
    Policy {
        backoff_initial: s.backoff_initial,
        backoff_max: s.backoff_max,
        healthy_after: s.healthy_after,
        max_connection_age: s.max_connection_age,
    }
}

/// Logs a line per stream and the Go streamer's total line every `every`.
async fn status_log(stats: Arc<Stats>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snap = stats.snapshot();
        for s in &snap.streams {
            tracing::info!(
                stream = %s.name,
                state = ?s.state,
                messages = s.messages,
                rate = format!("{:.1}/s", s.rate_per_sec),
                reconnects = s.reconnects,
                dropped = s.dropped,
                lost = s.lines_lost,
                file = %s.current_file,
                "Stream status."
            );
        }
        tracing::info!(queue_depth = snap.queue_depth, "{}", snap.go_line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_counted_per_connection_and_file_with_a_margin() {
        let needed = |streams: &str| {
            descriptors_needed(
                &crate::venue::resolve(
                    Config::parse_toml(&format!("output_dir = \"o\"\n{streams}")).unwrap(),
                )
                .unwrap(),
            )
        };
        let plain = "[[stream]]\nname = \"a\"\nurl = \"wss://h/\"\n";
        // Two sockets and a data file, the fixed 64, a quarter more.
        assert_eq!(needed(plain), 67 + 17);
        let raw = "[[stream]]\nname = \"b\"\nurl = \"wss://h/\"\nformat = \"raw\"\n";
        assert_eq!(
            needed(&format!("{plain}{raw}")),
            71 + 18,
            "raw: an events file too"
        );
        // 250 topics at Bybit's 100 per connection: three connections.
        let topics: Vec<String> = (0..250)
            .map(|i| format!("\"publicTrade.S{i}USDT\""))
            .collect();
        let venue = format!(
            "[[stream]]\nname = \"c\"\nvenue = \"bybit-linear\"\ntopics = [{}]\n",
            topics.join(",")
        );
        assert_eq!(needed(&venue), 64 + 6 + 1 + 18);
        let upload = "[upload]\nurl = \"s3://bucket\"\nconcurrency = 4\n";
        assert_eq!(needed(&format!("{upload}{plain}")), 67 + 16 + 21);
    }
}
