//! The WebSocket client behind a small interface: dial (TCP, an optional HTTP CONNECT proxy,
//! TLS), upgrade, next frame, send text or ping, close.
//!
//! Everything wsrec knows about the WebSocket library (yawc) lives in this module (yawc itself
//! is named only in `dial.rs`, `socket.rs` and `error.rs`), so swapping it
//! (tokio-tungstenite is the fallback) touches one place. yawc does the framing, fragment
//! reassembly, UTF-8 checks, auto-pong and permessage-deflate. wsrec does the rest itself, each
//! for a reason found in yawc 0.5:
//!
//! - **The HTTP upgrade** ([`connect`]). yawc's handshake turns a refusal into a bare status
//!   code, so the `Retry-After` of a 429 or 503 would be lost, and it has no HTTP CONNECT proxy
//!   (only SOCKS5). wsrec writes the upgrade request, reads the response head (bounded in size,
//!   under the handshake timeout), checks it as RFC 6455 4.1 says a client must, and hands the
//!   stream to [`yawc::WebSocket::from_stream_with_extensions`].
//! - **The extension answer.** Only what was offered is accepted (RFC 6455 9.1, RFC 7692 7.1),
//!   and yawc gets the answer rewritten into the form its parser reads, because yawc silently
//!   treats an answer it cannot parse as "no compression" and would then fail on the first
//!   compressed frame.
//! - **A frame-header check on the raw bytes** ([`Wire`]). yawc drops the mask bit of incoming
//!   frames, so a masked frame's scrambled payload would be recorded as the message; RFC 6455 5.1
//!   says the client must fail the connection instead. The same check rejects a 64-bit length
//!   with its top bit set (5.2).
//! - **A ping-flood limit.** yawc queues one pong per ping and sends the queue only when reading
//!   would wait, so a server that pings nonstop grows that queue.
//! - **No compressed sends.** With deflate negotiated, wsrec still sends its few small messages
//!   (subscribe, app pings) uncompressed, which RFC 7692 allows: nothing to gain, and it stays
//!   clear of the compressed-send bug once reported against yawc (yawc#7).
//!
//! TLS is rustls with the aws-lc-rs provider, trusting Mozilla's roots (compiled in) plus the
//! system's store plus an optional per-stream CA file; `insecure` turns verification off.
//!
//! Layout, one purpose a file: `spec.rs` what a connection needs to dial, built from the
//! stream's config; `dial.rs` the connect sequence (TCP, proxy, TLS, upgrade) under the
//! handshake timeout; `socket.rs` the open WebSocket ([`Socket`]) (frames in, kernel receive times,
//! text, ping and close out); `error.rs` the errors, the dial phases a timeout names, and
//! yawc's errors in words; `handshake.rs` the HTTP upgrade, `proxy.rs` HTTP CONNECT, `tls.rs`
//! the rustls setup, `stamp.rs` the kernel receive times of the TCP socket, `wire.rs` the
//! checked byte stream under yawc, `http.rs` plain HTTP requests to a venue's REST
//! endpoints (a connect token, order-book snapshots): hyper's HTTP/1.1 client connection over
//! the same TCP, proxy and TLS path.

mod dial;
mod error;
mod handshake;
mod head;
pub mod http;
mod proxy;
mod socket;
mod spec;
mod stamp;
mod tls;
mod wire;

pub use dial::connect;
pub use error::TransportError;
pub use handshake::{check_upgrade, negotiate_extensions, parse_retry_after};
pub use head::{MAX_RESPONSE_HEAD, ParsedHead, ResponseHead, parse_head};
pub use proxy::{HttpProxy, no_proxy_matches, proxy_from_env};
pub use socket::{Incoming, MAX_PINGS_PER_WINDOW, Socket};
pub use spec::{ConnectSpec, DeflateOffer};
pub use tls::tls_config;
pub use wire::{FrameScan, ScanError, Wire};
