//! The WebSocket client behind a small interface: connect (TCP, TLS, upgrade), next frame,
//! send text or ping, close.
//!
//! Everything wsrec knows about the WebSocket library (yawc) lives in this module, so swapping
//! it (tokio-tungstenite is the fallback) touches one file. TLS is rustls with the aws-lc-rs
//! provider, trusting Mozilla's roots (compiled in) plus the system's store plus an optional
//! per-stream CA file; `insecure` turns verification off.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use yawc::{Frame, OpCode, Options, TcpWebSocket, WebSocket};

/// Size of the socket read buffer: large enough to take a burst of frames per read.
const READ_BUFFER: usize = 64 * 1024;

/// What a connection needs to dial.
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    /// The feed URL.
    pub url: url::Url,
    /// Extra handshake headers (values are secrets: never logged).
    pub headers: Vec<(String, String)>,
    /// TLS settings for `wss://`.
    pub tls: Arc<ClientConfig>,
    /// Deadline for TCP connect, TLS and upgrade together.
    pub handshake_timeout: Duration,
    /// Largest accepted message.
    pub max_message_size: usize,
}

/// Why a connection attempt or an open connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The handshake did not finish in time.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// A message was larger than `max_message_size`.
    #[error(
        "message larger than max_message_size ({0} bytes); raise max_message_size to accept it"
    )]
    TooLarge(usize),
    /// Any other failure: DNS, TCP, TLS, HTTP upgrade, protocol or I/O.
    #[error("{0}")]
    Failed(String),
}

/// A frame as the recorder sees it.
#[derive(Debug)]
pub enum Incoming {
    /// A complete text message (UTF-8 checked).
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping from the server (already answered).
    Ping,
    /// A pong from the server.
    Pong,
    /// The server closed the connection.
    Close {
        /// Close code, if the frame had one.
        code: Option<u16>,
        /// Close reason text.
        reason: String,
    },
}

/// An open WebSocket connection.
pub struct Connection {
    ws: TcpWebSocket,
    max_message_size: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// Dials, negotiates TLS and upgrades, all within the handshake timeout.
///
/// # Errors
/// [`TransportError::Timeout`] or [`TransportError::Failed`] with the cause.
pub async fn connect(spec: &ConnectSpec) -> Result<Connection, TransportError> {
    let options = Options::default()
        .with_utf8()
        .with_no_delay()
        .with_max_payload_read(spec.max_message_size.saturating_add(1))
        .with_max_read_buffer(spec.max_message_size.saturating_add(1))
        .with_read_buffer_capacity(READ_BUFFER);
    let mut request = yawc::HttpRequestBuilder::new();
    for (k, v) in &spec.headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let builder = WebSocket::connect(spec.url.clone())
        .with_options(options)
        .with_connector(tokio_rustls::TlsConnector::from(spec.tls.clone()))
        .with_request(request);
    match tokio::time::timeout(spec.handshake_timeout, builder).await {
        Err(_) => Err(TransportError::Timeout(spec.handshake_timeout)),
        Ok(Err(e)) => Err(TransportError::Failed(describe(&e))),
        Ok(Ok(ws)) => Ok(Connection {
            ws,
            max_message_size: spec.max_message_size,
        }),
    }
}

impl Connection {
    /// Polls for the next frame.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, TransportError>> {
        match self.ws.poll_next_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(frame)) => Poll::Ready(Ok(convert(frame))),
            Poll::Ready(Err(yawc::WebSocketError::FrameTooLarge)) => {
                Poll::Ready(Err(TransportError::TooLarge(self.max_message_size)))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(TransportError::Failed(describe(&e)))),
        }
    }

    /// The next frame.
    pub async fn next(&mut self) -> Result<Incoming, TransportError> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// A frame if one can be had without waiting (already buffered or readable now).
    pub fn try_next(&mut self) -> Option<Result<Incoming, TransportError>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_next(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        let frame = Frame::text(Bytes::copy_from_slice(text.as_bytes()));
        self.ws
            .send(frame)
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))
    }

    /// Sends a protocol ping.
    pub async fn send_ping(&mut self) -> Result<(), TransportError> {
        self.ws
            .send(Frame::ping(Bytes::from_static(b"wsrec")))
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))
    }

    /// After the server's close frame: lets the library send the close reply it queued, and
    /// waits (up to `wait`) for the server to end the connection.
    pub async fn finish_close(&mut self, wait: Duration) {
        let _ = tokio::time::timeout(wait, async { while self.next().await.is_ok() {} }).await;
    }

    /// Sends a close frame (code 1000 or 1001) and gives the peer up to `wait` to take it.
    pub async fn close(&mut self, going_away: bool, reason: &str, wait: Duration) {
        let code = if going_away {
            yawc::close::CloseCode::Away
        } else {
            yawc::close::CloseCode::Normal
        };
        let _ = tokio::time::timeout(wait, self.ws.send(Frame::close(code, reason))).await;
    }
}

fn convert(frame: Frame) -> Incoming {
    match frame.opcode() {
        OpCode::Text => Incoming::Text(frame.into_payload()),
        OpCode::Binary => Incoming::Binary(frame.into_payload()),
        OpCode::Ping => Incoming::Ping,
        OpCode::Pong => Incoming::Pong,
        OpCode::Close => Incoming::Close {
            code: frame.close_code().map(u16::from),
            reason: frame
                .close_reason()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned(),
        },
        // `WebSocket` reassembles fragments, so a bare continuation never reaches us.
        OpCode::Continuation => Incoming::Binary(frame.into_payload()),
    }
}

fn describe(e: &yawc::WebSocketError) -> String {
    use yawc::WebSocketError as E;
    match e {
        E::InvalidStatusCode(code) => {
            format!("server answered HTTP {code} instead of 101 Switching Protocols")
        }
        E::Redirected {
            status_code,
            location,
        } => format!(
            "server redirected (HTTP {status_code}) to {}; put that URL in the config",
            crate::config::mask_url(location)
        ),
        E::ConnectionClosed => "connection closed".to_owned(),
        E::IoError(io) => match io.get_ref() {
            // rustls errors arrive wrapped in io::Error; show the TLS reason itself.
            Some(inner) => format!("{inner}"),
            None => format!("{io}"),
        },
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// TLS.

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Mozilla's roots plus the system's store, loaded once.
fn base_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(
            system_roots = added,
            errors = native.errors.len(),
            "Loaded TLS roots."
        );
        roots
    })
}

/// The rustls config of a stream.
///
/// # Errors
/// The CA file cannot be read or holds no certificate.
pub fn tls_config(ca_file: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = base_roots().clone();
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ca_file {} is not valid PEM: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "ca_file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!(
                        "ca_file {} has an unusable certificate: {e}",
                        path.display()
                    )
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any certificate: the `insecure` opt-out. Signatures are still checked so the
/// handshake itself is sound; only the identity is not.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
