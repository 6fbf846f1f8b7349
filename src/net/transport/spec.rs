//! What a connection needs to dial ([`ConnectSpec`]), built from a stream's config, and the
//! permessage-deflate offer it makes ([`DeflateOffer`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::proxy::{HttpProxy, proxy_from_env};
#[cfg(doc)]
use super::socket::Socket;
use super::tls::{self, tls_config};
use crate::config::{Compression, ProxySetting, StreamConfig, TsSource, mask_url};
use crate::error::ConfigError;

/// What a connection needs to dial.
#[derive(Clone)]
pub struct ConnectSpec {
    /// The feed URL.
    pub url: url::Url,
    /// Extra handshake headers (values are secrets: never logged).
    pub headers: Vec<(String, String)>,
    /// TLS settings for `wss://` and an `https://` token endpoint (`None` for a plain `ws://`
    /// stream: no root store is loaded for it).
    pub tls: Option<Arc<ClientConfig>>,
    /// Deadline for TCP connect, proxy, TLS and upgrade together.
    pub handshake_timeout: Duration,
    /// Largest accepted message.
    pub max_message_size: usize,
    /// The permessage-deflate offer, if compression is on.
    pub deflate: Option<DeflateOffer>,
    /// The HTTP CONNECT proxy to dial through, if any.
    pub proxy: Option<HttpProxy>,
    /// Longest `Retry-After` honoured.
    pub retry_after_max: Duration,
    /// Take receive times from the kernel (`ts_source = "kernel"`, see [`Socket::stamp`]).
    pub kernel_ts: bool,
}

impl fmt::Debug for ConnectSpec {
    /// Header values and proxy credentials never show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSpec")
            .field("url", &mask_url(self.url.as_str()))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("deflate", &self.deflate)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl ConnectSpec {
    /// The dialling part of a stream's config: URL, headers, TLS, compression offer and proxy
    /// (`proxy = "env"` reads the environment here, once).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the stream and field: a bad URL, CA file or proxy.
    pub fn from_config(s: &StreamConfig) -> Result<ConnectSpec, ConfigError> {
        let field = |f: &str, message: String| ConfigError::Invalid {
            field: format!("stream `{}`: {f}", s.name),
            message,
        };
        let url = crate::config::validate_url(&s.url, &crate::config::NoVenues)
            .map_err(|m| field("url", m))?;
        // An https:// connect token endpoint (KuCoin) takes the stream's TLS settings too.
        // So does an https:// REST API that order-book snapshots are asked from.
        let https_token = [&s.token_url, &s.snapshot_url]
            .iter()
            .any(|u| u.as_deref().is_some_and(|t| t.starts_with("https://")));
        let tls = if url.scheme() == "wss" || https_token {
            Some(tls_config(s.ca_file.as_deref(), s.insecure).map_err(|m| field("ca_file", m))?)
        } else {
            // Still say at startup that a configured CA file is unusable.
            if let Some(path) = &s.ca_file {
                tls::read_ca_file(path).map_err(|m| field("ca_file", m))?;
            }
            None
        };
        let proxy = match &s.proxy {
            None => None,
            Some(ProxySetting::Url(u)) => Some(HttpProxy::parse(u).map_err(|m| field("proxy", m))?),
            Some(ProxySetting::Env) => {
                proxy_from_env(&url, |k| std::env::var(k).ok()).map_err(|m| field("proxy", m))?
            }
        };
        let deflate = (s.compression == Compression::Deflate).then_some(DeflateOffer {
            server_max_window_bits: s.deflate_server_max_window_bits,
            server_no_context_takeover: s.deflate_server_no_context_takeover,
        });
        Ok(ConnectSpec {
            url,
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
            tls,
            handshake_timeout: s.handshake_timeout,
            max_message_size: usize::try_from(s.max_message_size).unwrap_or(usize::MAX),
            deflate,
            proxy,
            retry_after_max: s.retry_after_max,
            kernel_ts: s.ts_source == TsSource::Kernel,
        })
    }
}

/// What wsrec asks for in its permessage-deflate offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateOffer {
    /// `server_max_window_bits=N`, if set.
    pub server_max_window_bits: Option<u8>,
    /// `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
}

impl DeflateOffer {
    /// The `Sec-Socket-Extensions` request value. `client_max_window_bits` (no value) tells
    /// the server it may limit our window; we never compress, so any limit is fine.
    pub(crate) fn header_value(&self) -> String {
        let mut v = String::from("permessage-deflate; client_max_window_bits");
        if let Some(bits) = self.server_max_window_bits {
            v.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if self.server_no_context_takeover {
            v.push_str("; server_no_context_takeover");
        }
        v
    }
}
