//! What observes the recorder: the [`stats`] counters (shared atomics, written by every stage
//! through its typed events), the [`status`] socket and table, the [`metrics`] endpoint for
//! Prometheus, and the accept loop both servers share (`server`).

pub mod metrics;
pub(crate) mod server;
pub mod stats;
pub mod status;
