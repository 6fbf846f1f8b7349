//! wsrec records WebSocket feeds: many streams in, one JSONL line per message out.
//!
//! # Data flow
//!
//! ```text
//!  NETWORK SIDE (tasks on the runtime: 1 thread by default)      FILE SIDE
//!
//!  stream supervisor × shard ─► connection task ──Batch──► queue ──► writer task
//!   (stream: backoff,             (connection: transport,  (record:    (writer: lines,
//!    make-before-break)            venue tracker, clock)    bounded)    rotation, json)
//!                                                                        │ DiskOp, bounded in
//!                                                                        ▼ bytes (disk_buffer)
//!                                                      disk worker (disk: blocking-pool task:
//!                                                       append, fsync, rename, manifest)
//!                                                                        │ closed files
//!  WHAT LEAVES THE MACHINE                                               ▼
//!  nats task ◄── encoded lines (never waits) ── writer    compressor thread (compress)
//!                                                                        │ sealed files
//!                                                                        ▼
//!                                                          upload tasks (upload; hashing on
//!                                                           the blocking pool)
//!  OBSERVING: stats (shared atomics) ─► status socket task, metrics HTTP task, status log
//!  SIGNALS: shutdown token ─► supervisors, then writer, disk, compressor, upload, nats in order
//! ```
//!
//! Each stream has a supervisor ([`stream`]) per shard that keeps one [`connection`] task alive
//! (reconnecting with [`backoff`], make-before-break at `max_connection_age` or when the venue
//! asks). A stream with a [`venue`] preset gets its URL, subscribe messages, keepalive and limits
//! from the preset, is split into shards (one connection each) when its topics exceed the
//! venue's per-connection limit, and its connections follow the venue's acks. A connection
//! reads frames through [`transport`] (yawc over TCP or TLS), copies every ready frame into a
//! [`record::Batch`] with its receive time ([`clock`], or the kernel's receive stamp with
//! `ts_source = "kernel"`), and queues the batch on a queue bounded in messages
//! ([`record::queue`], when full: block or drop and count). One [`writer`] task turns batches
//! into lines (envelope or raw, validated with [`json`]), picks files by UTC interval
//! ([`rotation`]) and hands its buffers to the [`disk`] worker when they are full or its queue
//! runs empty, through a queue bounded in bytes (`disk_buffer`) that absorbs disk stalls. The
//! disk worker, a task on tokio's blocking pool, does every blocking file operation (append,
//! fsync, rename, [`manifest`]s) and counts and describes what a write error loses for the
//! writer to mark. So the network never waits on the disk. With `[nats]`, the writer also
//! offers each batch's encoded lines to the [`nats`] fan-out task without waiting (a full queue
//! is counted and marked), which publishes them to JetStream. Closed files go on to the
//! [`compress`] thread and then, with `[upload]`, to the [`upload`] tasks, each over a queue that
//! never blocks the stage before it. At start, [`recover`] seals the files a crash left open.
//! [`stats`] counters are shared atomics; [`status`] serves them on a Unix socket, and
//! [`metrics`] over HTTP for Prometheus (`metrics_listen`). The read side ([`read`], [`tools`])
//! works on finished recordings and never on the recorder's queues.
//!
//! # Layout
//!
//! - [`config`]: TOML and Go-streamer JSON config, defaults, validation, each stage's section
//!   (`[nats]`, `[upload]`); it imports nothing of the pipeline.
//! - [`cli`] (clap definitions) ◄ [`commands`] (runs each command) ► [`tools`]; `main.rs` only
//!   calls them.
//! - [`recorder`]: [`Recorder`], the library entry point, wiring and ordered shutdown.
//! - [`stream`], [`connection`], [`transport`], [`backoff`]: the network side.
//! - [`venue`]: venue presets: URLs, subscribe messages, keepalive, limits, ack recognition,
//!   one module per protocol family in `venue::protocol`.
//! - [`record`]: batches, events and the bounded queue between the two sides.
//! - [`writer`], [`rotation`], [`disk`], [`json`], [`manifest`]: the file side.
//! - [`recover`] (files a crash left open), [`compress`] (closed files, in the background).
//! - [`upload`]: sealed files (compressed when compression is on) and their manifests to
//!   S3-compatible object storage, on tokio tasks of their own, resumed at start by a sweep.
//! - [`stats`], [`status`], [`clock`], [`error`]: counters, status socket, time, errors;
//!   `fair`: the time slice after which the busy connection and writer tasks yield, so
//!   signals, timers and the status socket are served under a flood.
//! - [`metrics`]: the Prometheus/OpenMetrics endpoint.
//! - [`nats`]: the optional live fan-out of every line to NATS JetStream, fed by the writer
//!   without ever waiting on it.
//! - [`read`]: the read side: finding, opening (plain, zstd, gzip, `.open`) and streaming
//!   recording files, parsing envelope lines without re-serialising the message.
//! - [`tools`]: the commands around a recording: `cat`, `verify`, `stats`, `replay`, `merge`,
//!   `demo`.

pub mod backoff;
pub mod batch;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compress;
pub mod config;
pub mod connection;
pub mod disk;
pub mod error;
pub mod fair;
pub mod fsutil;
pub mod json;
pub mod manifest;
pub mod metrics;
pub mod nats;
pub mod queue;
pub mod read;
pub mod recorder;
pub mod recover;
pub mod rotation;
mod server;
pub mod stats;
pub mod status;
pub mod stream;
pub mod tools;
pub mod transport;
pub mod upload;
pub mod venue;
pub mod writer;

pub use config::{Config, Format, StreamConfig, WhenFull};
pub use error::ConfigError;
pub use recorder::{Recorder, RecorderBuilder, RunError};
