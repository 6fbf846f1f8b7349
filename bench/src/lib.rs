//! `wsrec-bench`: how fast the `wsrec` binary records from a local WebSocket flood server, what it
//! costs in CPU and memory, and whether the recording is complete.
//!
//! Layout:
//! - [`ws`]: hand-written RFC 6455 pieces (handshake, frame headers).
//! - [`payload`]: message `k` of a workload as a pure function of `k` (small JSON or the corpus).
//! - [`server`]: the flood server, pre-encoded frames written in multi-MiB chunks.
//! - [`paced`]: the paced server (many streams, steady rates), which also marks the steady CPU
//!   window.
//! - [`recorder`]: building `wsrec`, running it as a child, SIGTERM, `wait4` for CPU and peak RSS.
//! - [`procfs`]: the running recorder's CPU time (its CPU-time clocks) and memory, from `/proc`.
//! - [`hog`]: a writer that keeps the recording's file system busy with `fsync`.
//! - [`check`]: reading the recording back and comparing it with what was sent.
//! - [`scenario`]: the catalogue of scenarios and their targets.
//! - [`run`]: one measured run and a scenario's repeated runs.
//! - [`report`]: medians, the table and the JSON file.
//! - [`window`]: the steady window of a paced run, in which the recorder's CPU is measured.
//!
//! Data flow: scenario -> payload -> encoded frames -> flood server -> recorder child -> files ->
//! checker; timings from the server, CPU and RSS from `wait4`, the CPU of the steady window (paced
//! workloads) from the recorder's CPU clock -> report.

pub mod check;
pub mod hog;
pub mod paced;
pub mod payload;
pub mod procfs;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod window;
pub mod ws;
