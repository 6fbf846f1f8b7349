//! The network side: everything that runs for a stream before its messages reach the queue.
//!
//! [`stream`] supervises a stream (one supervisor per shard): it owns the stream's shared
//! runtime state, keeps one [`connection`] task alive, reconnects with [`backoff`] and replaces
//! connections make-before-break. A connection dials and reads through [`transport`] (TCP,
//! proxy, TLS, WebSocket) and follows its venue's rules from [`venue`] (presets, subscribe
//! messages, acks, limits). What it reads leaves this module as a [`crate::batch::Batch`] on
//! the [`crate::queue`].

pub mod backoff;
pub mod connection;
pub mod stream;
pub mod transport;
pub mod venue;
