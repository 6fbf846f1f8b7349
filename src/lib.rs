//! wsrec records WebSocket feeds: many streams in, one JSONL line per message out.
//!
//! # Data flow
//!
//! ```text
//!  net/ (tasks on the runtime: 1 thread by default)              store/
//!
//!  stream supervisor × shard ─► connection task ──Batch──► queue ──► writer task
//!   (net::stream: backoff,        (net::connection:         (bounded   (store::writer: lines,
//!    make-before-break)            transport, venue, clock)  in msgs)   rotation, json)
//!                                                                        │ DiskOp, bounded in
//!                                                                        ▼ bytes (disk_buffer)
//!                                                 disk worker (store::disk: blocking-pool task:
//!                                                  append, fsync, rename, manifest, retention)
//!                                                                        │ closed files
//!  ship/ (what leaves the machine)                                       ▼
//!  nats task ◄── encoded lines (never waits) ── writer    compressor thread (store::compress)
//!                                                                        │ sealed files
//!                                                                        ▼
//!                                                     upload tasks (ship::upload; hashing on
//!                                                      the blocking pool)
//!  observe/: typed events of each stage ─► stats (shared atomics) ─► status socket task,
//!            metrics HTTP task, status log
//!  signals: shutdown token ─► supervisors, then writer, disk, compressor, upload, nats in order
//! ```
//!
//! Each stream has a supervisor ([`net::stream`]) per shard that keeps one [`net::connection`]
//! task alive (reconnecting with [`net::backoff`], make-before-break at `max_connection_age` or
//! when the venue asks); a stream with `stop_on_refusal` (one-line mode) whose first connection
//! fails for good stops the recorder instead, in the same order as a shutdown. A stream with a
//! [`net::venue`] preset gets its URL, subscribe messages, keepalive and limits from the
//! preset, is split into shards (one connection each) when its topics exceed the venue's
//! per-connection limit, and its connections follow the venue's acks. A connection reads frames through [`net::transport`] (wsrec's own WebSocket client over TCP or TLS),
//! copies every ready frame into a [`batch::Batch`] with its receive time (the kernel's receive
//! stamp of the data by default, or [`clock`] when it reads the frame), and hands the batch to
//! the [`queue`], bounded in messages (when full: block, or drop and count; each stream also
//! has a room of its own there, so one stream over the disk's pace waits alone). One
//! [`store::writer`] task turns batches into lines (envelope or raw, validated with [`json`]),
//! picks files by UTC interval ([`store::rotation`]) and hands its buffers to the
//! [`store::disk`] worker when they are full or its queue runs empty, through a queue bounded in
//! bytes (`disk_buffer`) that absorbs disk stalls. The disk worker, a task on tokio's blocking
//! pool, does every blocking file operation (append, fsync, rename, [`store::manifest`]s) and
//! counts and describes what a write error loses for the writer to mark. So the network never
//! waits on the disk. With `[nats]`, the writer also offers each batch's encoded lines to the
//! [`ship::nats`] fan-out task without waiting (a full queue is counted and marked), which
//! publishes them to JetStream. Closed files go on to the [`store::compress`] thread and then,
//! with `[upload]`, to the [`ship::upload`] tasks, each over a queue that never blocks the stage
//! before it. The writer keeps the lines of its idle moments in a [`store::journal`] in shared
//! memory until the files get them; at start, a killed run's journal completes its files and
//! [`store::recover`] seals the files a crash left open. Each stage reports
//! what happens to it through typed events (`event.rs` in its folder) that update the
//! [`observe::stats`] counters and write the log line in one place; [`observe::status`] serves
//! the counters on a Unix socket, and [`observe::metrics`] over HTTP for Prometheus
//! (`metrics_listen`). The read side ([`read`], [`tools`]) works on finished recordings and
//! never on the recorder's queues; [`book`] rebuilds the order books in a recording.
//!
//! # Layout
//!
//! The folders follow the flow; imports form a tree (`python3 scripts/module-cycles.py`).
//!
//! - [`config`]: TOML and Go-streamer JSON config, defaults, validation, each stage's section
//!   (`[nats]`, `[upload]`); it imports nothing of the pipeline.
//! - [`cli`] (clap definitions) ◄ [`commands`] (runs each command) ► [`tools`]; `main.rs` only
//!   calls them.
//! - [`recorder`]: [`Recorder`], the library entry point: builder, wiring of the stages, ordered
//!   shutdown.
//! - [`net`]: the network side: [`net::stream`] (supervisor and the stream's runtime state),
//!   [`net::connection`] (dial, read loop, keepalive, venue tracking), [`net::transport`],
//!   [`net::backoff`], [`net::venue`] (presets, one module per protocol family in
//!   `net::venue::protocol`).
//! - [`batch`] and [`queue`]: what crosses from the network side to the file side.
//! - [`store`]: the file side: [`store::writer`], [`store::rotation`], [`store::disk`],
//!   [`store::journal`], [`store::manifest`], [`store::recover`], [`store::compress`].
//! - [`ship`]: what leaves the machine: [`ship::upload`] (S3-compatible storage) and
//!   [`ship::nats`] (live fan-out to JetStream).
//! - [`observe`]: [`observe::stats`], [`observe::status`], [`observe::metrics`].
//! - Shared by both sides: [`clock`] (time), [`json`] (validation and escaping), [`fsutil`]
//!   (directory walks and syncs, file suffixes, host name), [`fair`] (when busy tasks yield),
//!   [`error`].
//! - [`read`]: the read side: finding, opening (plain, zstd, gzip, `.open`) and streaming
//!   recording files, parsing envelope lines without re-serialising the message.
//! - [`book`]: the book engine of the read side: order books rebuilt from a recording alone
//!   (one shared L2 book, one module per venue rule set) and proven: snapshots, sequence links,
//!   checksums, spans and breaks.
//! - [`tools`]: the commands around a recording: `cat`, `export` (Parquet, cargo feature
//!   `parquet`), `verify`, `book`, `stats`, `replay`, `merge`, `demo`.

pub mod batch;
pub mod book;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod fair;
pub mod fsutil;
pub mod json;
pub mod net;
pub mod observe;
pub mod queue;
pub mod read;
pub mod recorder;
pub mod ship;
pub mod store;
pub mod tools;

pub use config::{Config, Format, StreamConfig, WhenFull};
pub use error::ConfigError;
pub use recorder::{Recorder, RecorderBuilder, RunError};
