//! The HTTP/1.1 upgrade (RFC 6455 4.1): the request and the checks a client must make on the
//! answer (read by `head.rs`), including the permessage-deflate answer (RFC 7692 7.1) and
//! `Retry-After` (RFC 9110 10.2.3).

use std::time::Duration;

use base64::Engine as _;
use url::Host;

use super::error::TransportError;
use super::head::{ResponseHead, printable};
use super::spec::{ConnectSpec, DeflateOffer};
use crate::config::mask_url;

/// The GUID of RFC 6455 1.3, hashed with the key into `Sec-WebSocket-Accept`.
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The HTTP/1.1 upgrade request. A `Host` header from the config replaces the default one.
pub(super) fn upgrade_request(
    spec: &ConnectSpec,
    host: &Host<String>,
    port: u16,
    key: &str,
) -> String {
    let url = &spec.url;
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let mut r = format!("GET {target} HTTP/1.1\r\n");
    if !spec
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        r.push_str(&format!("Host: {}\r\n", host_value(url, host, port)));
    }
    r.push_str(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
    );
    r.push_str(key);
    r.push_str("\r\n");
    if let Some(offer) = &spec.deflate {
        r.push_str(&format!(
            "Sec-WebSocket-Extensions: {}\r\n",
            offer.header_value()
        ));
    }
    for (k, v) in &spec.headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// The `Host` header's value for `url`: the host, with the port when the URL names one.
pub(super) fn host_value(url: &url::Url, host: &Host<String>, port: u16) -> String {
    if url.port().is_some() {
        authority(host, port)
    } else {
        match host {
            Host::Ipv6(ip) => format!("[{ip}]"),
            other => other.to_string(),
        }
    }
}

/// `host:port` as written in `CONNECT` and `Host` (IPv6 in brackets).
pub(super) fn authority(host: &Host<String>, port: u16) -> String {
    match host {
        Host::Ipv6(ip) => format!("[{ip}]:{port}"),
        other => format!("{other}:{port}"),
    }
}

/// Checks the server's answer to the upgrade (RFC 6455 4.1) and returns the permessage-deflate
/// parameters in force, if any. `protocols` is the `Sec-WebSocket-Protocol` list the request
/// carried (from the stream's `headers`), if any: the server may pick one of those.
///
/// # Errors
/// [`TransportError::Redirected`] for a 3xx answer, [`TransportError::Refused`] for another
/// non-101 answer (with `Retry-After`), otherwise [`TransportError::Failed`] naming the header
/// at fault.
pub fn check_upgrade(
    head: &ResponseHead,
    key: &str,
    offer: Option<&DeflateOffer>,
    protocols: Option<&str>,
) -> Result<Option<String>, TransportError> {
    let failed = |m: String| Err(TransportError::Failed(m));
    match head.code {
        101 => {}
        300..=399 => {
            return Err(TransportError::Redirected {
                code: head.code,
                location: head
                    .value("location")
                    .filter(|l| !l.is_empty())
                    .map(|l| mask_url(&l)),
            });
        }
        code => {
            return Err(TransportError::Refused {
                code,
                reason: head.reason.clone(),
                retry_after: head
                    .value("retry-after")
                    .and_then(|v| parse_retry_after(&v)),
                body: String::new(),
            });
        }
    }
    let upgrade = head.value("upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return failed(format!(
            "server answered 101 without `Upgrade: websocket` (got {upgrade:?}); RFC 6455 4.1"
        ));
    }
    let connection = head.value("connection").unwrap_or_default();
    if !connection
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    {
        return failed(format!(
            "server answered 101 without `Connection: Upgrade` (got {connection:?}); RFC 6455 4.1"
        ));
    }
    let expected = accept_key(key);
    if head.value("sec-websocket-accept").as_deref() != Some(expected.as_str()) {
        return failed(
            "server's Sec-WebSocket-Accept does not match the key sent (RFC 6455 4.1); a proxy \
             or server is mangling the handshake"
                .to_owned(),
        );
    }
    if let Some(protocol) = head.value("sec-websocket-protocol") {
        let asked = protocols.is_some_and(|list| list.split(',').any(|p| p.trim() == protocol));
        if !asked {
            return failed(format!(
                "server chose subprotocol {protocol:?}, which was not asked for (RFC 6455 4.1); \
                 the stream's Sec-WebSocket-Protocol header is {}",
                protocols.map_or("not set".to_owned(), |p| format!("{p:?}"))
            ));
        }
    }
    let answers: Vec<String> = head
        .values("sec-websocket-extensions")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    negotiate_extensions(offer, &answers.join(",")).map_err(TransportError::Failed)
}

/// `base64(sha1(key + GUID))`, the `Sec-WebSocket-Accept` the server must send.
fn accept_key(key: &str) -> String {
    use sha1::Digest;
    let mut sha = sha1::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 10.2.3). A date in the past means
/// now; anything else unreadable is ignored.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now)).unwrap_or(0),
    ))
}

/// Checks the server's `Sec-WebSocket-Extensions` answer against the offer and returns the
/// permessage-deflate parameters in a canonical form (as the `connected` event records them), or `None`
/// when nothing was negotiated.
///
/// # Errors
/// The server enabled an extension or parameter that was not offered, or repeated one.
pub fn negotiate_extensions(
    offer: Option<&DeflateOffer>,
    answer: &str,
) -> Result<Option<String>, String> {
    let extensions: Vec<&str> = answer
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let Some(first) = extensions.first() else {
        return Ok(None);
    };
    let shown = printable(answer.as_bytes(), 120);
    if offer.is_none() {
        return Err(format!(
            "server enabled extension {shown:?} that wsrec did not offer (compression is off); \
             RFC 6455 9.1"
        ));
    }
    if extensions.len() > 1 {
        return Err(format!(
            "server answered with several extensions ({shown:?}); wsrec offered only \
             permessage-deflate"
        ));
    }
    let mut parts = first.split(';').map(str::trim);
    let name = parts.next().unwrap_or("");
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!(
            "server enabled extension {name:?}, which wsrec did not offer (it offered \
             permessage-deflate)"
        ));
    }
    let mut server_bits: Option<u8> = None;
    let mut client_bits: Option<u8> = None;
    let mut server_nct = false;
    let mut client_nct = false;
    let mut seen = Vec::new();
    for param in parts.filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let key = key.to_ascii_lowercase();
        if seen.contains(&key) {
            return Err(format!(
                "server repeated the permessage-deflate parameter `{key}` (RFC 7692 7.1)"
            ));
        }
        seen.push(key.clone());
        let bits = |v: Option<&str>| -> Result<u8, String> {
            v.and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b))
                .ok_or_else(|| {
                    format!(
                        "server gave `{key}` the value {v:?}; RFC 7692 7.1.2 wants 8 to 15",
                        v = v.unwrap_or("")
                    )
                })
        };
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => server_nct = true,
            ("client_no_context_takeover", None) => client_nct = true,
            ("server_max_window_bits", v) => server_bits = Some(bits(v)?),
            ("client_max_window_bits", v) => client_bits = Some(bits(v)?),
            _ => {
                return Err(format!(
                    "server answered permessage-deflate with the unknown or malformed parameter \
                     {param:?} (RFC 7692 7.1)"
                ));
            }
        }
    }
    // Canonical form. The window sizes only say how far back the server's messages may refer:
    // the inflater's 15-bit window reads them all (`frame.rs`).
    let mut out = String::from("permessage-deflate");
    if let Some(b) = server_bits {
        out.push_str(&format!("; server_max_window_bits={b}"));
    }
    if let Some(b) = client_bits {
        out.push_str(&format!("; client_max_window_bits={b}"));
    }
    if server_nct {
        out.push_str("; server_no_context_takeover");
    }
    if client_nct {
        out.push_str("; client_no_context_takeover");
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Compression, StreamConfig};
    use crate::net::transport::parse_head;

    #[test]
    fn deflate_answers_are_checked_and_canonicalised() {
        let offer = DeflateOffer::default();
        let ok: &[(&str, Option<&str>)] = &[
            ("", None),
            ("permessage-deflate", Some("permessage-deflate")),
            (
                "permessage-deflate;server_max_window_bits=12 ; client_max_window_bits=\"10\"",
                Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"),
            ),
            (
                "Permessage-Deflate; server_no_context_takeover; client_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                Some("permessage-deflate; server_max_window_bits=8"),
            ),
        ];
        for (answer, want) in ok {
            assert_eq!(
                negotiate_extensions(Some(&offer), answer)
                    .unwrap()
                    .as_deref(),
                *want,
                "{answer}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("x-webkit-deflate-frame", "did not offer"),
            ("permessage-deflate, permessage-deflate", "several"),
            ("permessage-deflate; server_max_window_bits=16", "8 to 15"),
            ("permessage-deflate; server_max_window_bits", "8 to 15"),
            ("permessage-deflate; foo=1", "unknown"),
            (
                "permessage-deflate; server_no_context_takeover=1",
                "unknown",
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "repeated",
            ),
        ];
        for (answer, want) in bad {
            let err = negotiate_extensions(Some(&offer), answer).unwrap_err();
            assert!(err.contains(want), "{answer}: {err}");
        }
        let err = negotiate_extensions(None, "permessage-deflate").unwrap_err();
        assert!(err.contains("compression is off"), "{err}");
    }

    #[test]
    fn deflate_offer_names_what_was_asked() {
        assert_eq!(
            DeflateOffer::default().header_value(),
            "permessage-deflate; client_max_window_bits"
        );
        let offer = DeflateOffer {
            server_max_window_bits: Some(10),
            server_no_context_takeover: true,
        };
        assert_eq!(
            offer.header_value(),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10; \
             server_no_context_takeover"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        let future = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT").unwrap();
        assert!(future > Duration::from_secs(365 * 86_400));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    fn head(text: &str) -> ResponseHead {
        parse_head(text.as_bytes()).unwrap().unwrap().head
    }

    #[test]
    fn upgrade_answer_is_checked_per_rfc_6455() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        // The example of RFC 6455 1.3.
        assert_eq!(accept_key(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\
                    Connection: keep-alive, Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check_upgrade(&head(good), key, None, None).unwrap(), None);

        let cases: &[(&str, &str)] = &[
            (
                "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                "Upgrade: websocket",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                "Connection: Upgrade",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
                "does not match",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
                "subprotocol",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                "did not offer",
            ),
            (
                "HTTP/1.1 301 Moved\r\nLocation: wss://other.example/ws?token=abc\r\n\r\n",
                "token=***",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                "HTTP 200 OK instead of 101",
            ),
        ];
        for (text, want) in cases {
            let err = check_upgrade(&head(text), key, None, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn subprotocol_must_be_one_asked_for() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let answer = head(
            "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: json\r\n\r\n",
        );
        assert!(check_upgrade(&answer, key, None, Some("msgpack, json")).is_ok());
        let err = check_upgrade(&answer, key, None, Some("msgpack"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"msgpack\""), "{err}");
    }

    #[test]
    fn refusals_carry_status_and_retry_after() {
        let h = head("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n");
        let err = check_upgrade(&h, "k", None, None).unwrap_err();
        assert_eq!(err.http_status(), Some(429));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        let text = err.to_string();
        assert!(
            text.contains("HTTP 429 Too Many Requests") && text.contains("Retry-After: 7s"),
            "{text}"
        );
        let h = head("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert_eq!(
            check_upgrade(&h, "k", None, None)
                .unwrap_err()
                .retry_after(),
            None
        );
    }

    #[test]
    fn redirects_carry_status_and_masked_location() {
        let h = head(
            "HTTP/1.1 301 Moved Permanently\r\nLocation: wss://b.example/ws?token=abc\r\n\r\n",
        );
        let err = check_upgrade(&h, "k", None, None).unwrap_err();
        assert_eq!(err.http_status(), Some(301));
        assert_eq!(err.location(), Some("wss://b.example/ws?token=***"));
        assert!(!err.to_string().contains("abc"), "{err}");
        let h = head("HTTP/1.1 307 Temporary Redirect\r\n\r\n");
        let err = check_upgrade(&h, "k", None, None).unwrap_err();
        assert_eq!(err.http_status(), Some(307));
        assert_eq!(err.location(), None);
        assert!(
            err.to_string().contains("without a Location header"),
            "{err}"
        );
    }

    #[test]
    fn upgrade_request_has_the_rfc_headers_and_config_headers() {
        let s = StreamConfig {
            headers: [("X-Key".to_owned(), crate::config::Secret("v".to_owned()))].into(),
            compression: Compression::Deflate,
            ..StreamConfig::new("a", "ws://[::1]:9000/feed?x=1#frag")
        };
        let spec = ConnectSpec::from_config(&s).unwrap();
        let host = spec.url.host().unwrap().to_owned();
        let r = upgrade_request(&spec, &host, 9000, "KEY");
        assert!(
            r.starts_with("GET /feed?x=1 HTTP/1.1\r\nHost: [::1]:9000\r\n"),
            "{r}"
        );
        for line in [
            "Upgrade: websocket\r\n",
            "Connection: Upgrade\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Key: KEY\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
            "X-Key: v\r\n",
        ] {
            assert!(r.contains(line), "{line:?} missing from {r}");
        }
        assert!(r.ends_with("\r\n\r\n"));
        assert!(!format!("{spec:?}").contains("\"v\""), "{spec:?}");
    }
}
