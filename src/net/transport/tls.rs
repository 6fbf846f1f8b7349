//! TLS: rustls with the aws-lc-rs provider, trusting Mozilla's roots (compiled in), the
//! system's store and a stream's `ca_file`; `insecure` swaps in a verifier that checks
//! signatures but not identity. Failures are put in words with their likely fix.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use url::Host;

use super::error::TransportError;
use super::stamp::Tcp;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Mozilla's roots plus the system's store (about 7 MiB resident once loaded, so this is only
/// done for a stream that needs it: see [`tls_config`]).
fn load_roots() -> rustls::RootCertStore {
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
}

/// The config every `wss://` stream without `ca_file` or `insecure` uses: built on first use
/// and shared, so 1,000 streams hold one root store, not 1,000 copies (~100 KB each).
fn default_config() -> Result<Arc<ClientConfig>, String> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let config = build_config(None, false)?;
    Ok(DEFAULT.get_or_init(|| config).clone())
}

/// The rustls config of a stream. Streams with neither `ca_file` nor `insecure` share one
/// config; the roots are loaded only when the first such config is built.
///
/// # Errors
/// The CA file cannot be read or holds no certificate.
pub fn tls_config(ca_file: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, String> {
    if ca_file.is_none() && !insecure {
        return default_config();
    }
    build_config(ca_file, insecure)
}

fn build_config(ca_file: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = load_roots();
        if let Some(path) = ca_file {
            for cert in read_ca_file(path)? {
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

/// The certificates of a `ca_file` (at least one).
///
/// # Errors
/// The file cannot be read, is not PEM, or holds no certificate.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
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
    Ok(certs)
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

pub(super) async fn connect(
    config: Option<&Arc<ClientConfig>>,
    host: &Host<String>,
    authority: &str,
    tcp: Tcp,
) -> Result<tokio_rustls::client::TlsStream<Tcp>, TransportError> {
    let name = match host {
        Host::Domain(d) => ServerName::try_from(d.clone())
            .map_err(|_| TransportError::Failed(format!("`{d}` is not a valid TLS server name")))?,
        Host::Ipv4(ip) => ServerName::from(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => ServerName::from(IpAddr::V6(*ip)),
    };
    let config = match config {
        Some(config) => config.clone(),
        None => tls_config(None, false).map_err(TransportError::Failed)?,
    };
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(authority, &e))
}

/// A TLS failure in words, with the likely fix: [`TransportError::Certificate`] for a rejected
/// certificate, [`TransportError::Failed`] for the rest.
fn tls_error(authority: &str, e: &io::Error) -> TransportError {
    use rustls::{CertificateError as C, Error as R};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<R>()) else {
        return TransportError::Failed(match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => format!(
                "TLS handshake with {authority} failed: the server closed the connection ({e}); \
                 is this port speaking TLS? For plain WebSocket use ws://"
            ),
            _ => format!("TLS handshake with {authority} failed: {e}"),
        });
    };
    let message = match tls {
        R::InvalidCertificate(C::UnknownIssuer) => format!(
            "TLS: the certificate of {authority} is issued by a CA wsrec does not trust ({tls}); \
             if the server uses a private CA, set ca_file to its PEM certificate"
        ),
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!(
            "TLS: the certificate of {authority} is not valid for that host name ({tls}); connect \
             with a name the certificate lists"
        ),
        R::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => format!(
            "TLS: the certificate of {authority} has expired ({tls}); the server must renew it, \
             or this machine's clock is wrong"
        ),
        R::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => format!(
            "TLS: the certificate of {authority} is not valid yet ({tls}); check this machine's \
             clock"
        ),
        R::InvalidCertificate(_) => {
            format!("TLS: the certificate of {authority} was rejected: {tls}")
        }
        R::InvalidMessage(_) => format!(
            "TLS handshake with {authority} failed: {tls}; is this port speaking TLS? For plain \
             WebSocket use ws://"
        ),
        other => format!("TLS handshake with {authority} failed: {other}"),
    };
    if matches!(tls, R::InvalidCertificate(_)) {
        TransportError::Certificate(message)
    } else {
        TransportError::Failed(message)
    }
}
