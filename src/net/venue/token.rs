//! A REST call before every connect: venues such as KuCoin hand out a connect token (and the
//! server to dial, and the ping interval they want) from a REST endpoint, and refuse a
//! connection without a fresh one.
//!
//! A preset that needs one names it in [`super::Preset::pre_connect`]; the stream's `token_url`
//! (set from the preset while the stream dials the preset's own URL) says where to ask. Before
//! each connect, reconnects and planned replacements included, the connection asks
//! ([`TokenStep::fetch`]) through the stream's proxy and TLS settings, within `handshake_timeout`. A
//! failure is a failed connect attempt like any other: logged, counted, recorded as a
//! `connect_failed` event (with `step = "connect_token"`), and retried with backoff (a
//! `Retry-After` on a 429 or 503 is honoured). The token itself is a secret: it is only ever
//! shown masked (`token=***`).

use std::time::Duration;

use crate::net::transport::{self, ConnectSpec, TransportError};

/// How a venue hands out the URL to dial.
#[derive(Debug, Clone, Copy)]
pub struct PreConnect {
    /// The REST endpoint asked (POST) before each connect; the stream's `token_url` overrides
    /// it.
    pub url: &'static str,
    /// Reads the endpoint's answer (the body of a 2xx), given a connection id unique to this
    /// connect: the URL to dial, or what is wrong with the answer.
    pub read: fn(body: &[u8], connect_id: &str) -> Result<Dial, String>,
}

/// What the REST call yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// The WebSocket URL to dial, token included.
    pub url: url::Url,
    /// The ping interval the venue asks for, if it says (the stream pings at least this often).
    pub ping_interval: Option<Duration>,
}

/// A failed REST call: what went wrong, and the HTTP status and `Retry-After` if the endpoint
/// answered with an error.
#[derive(Debug)]
pub struct TokenError {
    /// The cause, naming the endpoint (masked) and the fix where there is one.
    pub message: String,
    /// The HTTP status of a non-2xx answer.
    pub http_status: Option<u16>,
    /// The endpoint's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl From<(&str, TransportError)> for TokenError {
    fn from((masked, e): (&str, TransportError)) -> Self {
        Self {
            message: format!("asking {masked} for a connect token failed: {e}"),
            http_status: None,
            retry_after: None,
        }
    }
}

/// The REST call of one stream: where to ask and how to read the answer.
#[derive(Debug)]
pub struct TokenStep {
    /// The endpoint (the stream's `token_url`).
    pub url: url::Url,
    /// `url` with its secrets masked, for logs and records.
    pub masked: String,
    /// Reads the answer ([`PreConnect::read`]).
    pub read: fn(&[u8], &str) -> Result<Dial, String>,
}

impl TokenStep {
    /// The step for a stream asking `url` with the preset's `pre_connect`.
    ///
    /// # Errors
    /// `url` is not an `http://` or `https://` URL.
    pub fn new(url: &str, pre_connect: &PreConnect) -> Result<Self, String> {
        Ok(Self {
            url: crate::config::validate_http_url(url)?,
            masked: crate::config::mask_url(url),
            read: pre_connect.read,
        })
    }

    /// Asks the endpoint for the URL to dial, over `spec`'s proxy and TLS settings.
    /// `connect_id` is unique to this connect (KuCoin's `connectId`).
    ///
    /// # Errors
    /// The endpoint could not be reached, answered with an error status, or with a body the
    /// venue's reader cannot use.
    pub async fn fetch(&self, spec: &ConnectSpec, connect_id: &str) -> Result<Dial, TokenError> {
        let masked = self.masked.as_str();
        let call = transport::http::Call {
            max_body: transport::http::MAX_BODY,
            timeout: spec.handshake_timeout,
            clock: crate::clock::Clock::System,
        };
        let answer = transport::http::post(spec, &self.url, "{}", call)
            .await
            .map_err(|e| TokenError::from((masked, e)))?;
        if !(200..300).contains(&answer.code) {
            let mut message = format!(
                "{masked} answered HTTP {} {} to the connect token request",
                answer.code, answer.reason
            );
            let body = answer.quoted_body();
            if !body.is_empty() {
                message.push_str(&format!("; body: {body:?}"));
            }
            return Err(TokenError {
                message,
                http_status: Some(answer.code),
                retry_after: answer.retry_after,
            });
        }
        (self.read)(&answer.body, connect_id).map_err(|m| TokenError {
            message: format!("{masked} gave no usable connect token: {m}"),
            http_status: None,
            retry_after: None,
        })
    }
}
