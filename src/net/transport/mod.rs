//! The WebSocket client behind a small interface: dial (TCP, an optional HTTP CONNECT proxy,
//! TLS), upgrade, next frame, send text or ping, close.
//!
//! The WebSocket protocol itself is wsrec's own, in two small parts: the HTTP upgrade
//! ([`connect`]) and the frames (`frame.rs`, [`Socket`]). Libraries were tried and outgrown,
//! each for a reason found in yawc 0.5, which did the framing until December 2026:
//!
//! - **The HTTP upgrade.** A library handshake turns a refusal into a bare status code, so the
//!   `Retry-After` of a 429 or 503 would be lost, and yawc had no HTTP CONNECT proxy (only
//!   SOCKS5). wsrec writes the upgrade request, reads the response head (bounded in size, under
//!   the handshake timeout) and checks it as RFC 6455 4.1 says a client must.
//! - **The extension answer.** Only what was offered is accepted (RFC 6455 9.1, RFC 7692 7.1);
//!   yawc silently treated an answer it could not parse as "no compression" and then failed on
//!   the first compressed frame.
//! - **The frames.** yawc dropped the mask bit of incoming frames, so a masked frame's
//!   scrambled payload would have been recorded as the message (RFC 6455 5.1 says the client
//!   must fail the connection); it queued one pong per ping, so a server pinging nonstop grew
//!   that queue; and it handed each message out in a buffer of its own, which with its framing
//!   cost ~28 % of the CPU of a flood of small messages. `frame.rs` cuts messages straight out
//!   of the read buffer, checks every header (mask bit, 2^63 lengths, reserved bits, opcodes,
//!   control-frame rules, fragments, UTF-8, close codes), inflates permessage-deflate with
//!   flate2 (zlib-rs) within `max_message_size`, and answers pings (the latest one, with a
//!   ping-flood limit) and close frames.
//! - **No compressed sends.** With deflate negotiated, wsrec still sends its few small messages
//!   (subscribe, app pings) uncompressed, which RFC 7692 allows: nothing to gain.
//!
//! TLS is rustls with the aws-lc-rs provider, trusting Mozilla's roots (compiled in) plus the
//! system's store plus an optional per-stream CA file; `insecure` turns verification off.
//!
//! Layout, one purpose a file: `spec.rs` what a connection needs to dial, built from the
//! stream's config; `dial.rs` the connect sequence (TCP, proxy, TLS, upgrade) under the
//! handshake timeout; `socket.rs` the open WebSocket ([`Socket`]) (frames in, kernel receive times,
//! text, ping and close out); `frame.rs` frames read and written, without I/O; `error.rs` the
//! errors, the dial phases a timeout names, and I/O errors in words; `handshake.rs` the HTTP
//! upgrade, `proxy.rs` HTTP CONNECT, `tls.rs` the rustls setup, `stamp.rs` the kernel receive
//! times of the TCP socket, `wire.rs` the byte stream (TCP or TLS), `http.rs` plain HTTP requests to a venue's REST
//! endpoints (a connect token, order-book snapshots): hyper's HTTP/1.1 client connection over
//! the same TCP, proxy and TLS path.

mod dial;
mod error;
pub mod frame;
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
pub use stamp::Stamp;
pub use tls::tls_config;
