//! How a connection attempt or an open connection fails: [`TransportError`] with its messages,
//! the dial phases a handshake timeout names, and I/O errors put into words.

use std::time::Duration;

/// Why a connection attempt or an open connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The handshake did not finish in time.
    #[error(
        "handshake timed out after {after:?} {phase}; raise handshake_timeout if the server is just slow"
    )]
    Timeout {
        /// The deadline.
        after: Duration,
        /// What was being waited for.
        phase: &'static str,
    },
    /// The server answered the upgrade with an HTTP status other than 101 or a redirect (3xx).
    #[error("{}", refusal_message(*.code, .reason, *.retry_after, .body))]
    Refused {
        /// HTTP status code.
        code: u16,
        /// Reason phrase from the status line.
        reason: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// The start of the response body, printable characters only.
        body: String,
    },
    /// The server answered the upgrade with a redirect (3xx). wsrec does not follow it: the
    /// config names the endpoint to record.
    #[error("{}", redirect_message(*.code, .location.as_deref()))]
    Redirected {
        /// HTTP status code.
        code: u16,
        /// The `Location` header, secrets masked, if there was one.
        location: Option<String>,
    },
    /// A message was larger than `max_message_size`.
    #[error(
        "message larger than max_message_size ({0} bytes); raise max_message_size to accept it"
    )]
    TooLarge(usize),
    /// The server's TLS certificate was rejected (unknown CA, wrong name, expired, not valid
    /// yet, or otherwise invalid): the message says which, and the fix.
    #[error("{0}")]
    Certificate(String),
    /// Any other failure: DNS, TCP, proxy, TLS, HTTP upgrade, protocol or I/O.
    #[error("{0}")]
    Failed(String),
}

impl TransportError {
    /// The wait the server asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of an upgrade answered with anything but 101 (a refusal or a redirect).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TransportError::Refused { code, .. } | TransportError::Redirected { code, .. } => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// Whether the attempt failed in a way that retrying does not change until someone changes
    /// something (the URL, the credentials, the certificate): the server refused the upgrade
    /// with a 4xx other than 408 (Request Timeout) and 429 (Too Many Requests), redirected it
    /// for good (301, 308: wsrec never follows a redirect), or its certificate was rejected.
    /// Not permanent: a name that does not resolve, a refused or reset TCP connection, a
    /// timeout, a 5xx, a temporary redirect: those come and go.
    pub fn is_permanent(&self) -> bool {
        match self {
            TransportError::Refused { code, .. } => {
                (400..=499).contains(code) && !matches!(code, 408 | 429)
            }
            TransportError::Redirected { code, .. } => matches!(code, 301 | 308),
            TransportError::Certificate(_) => true,
            _ => false,
        }
    }

    /// Where a redirect pointed (secrets masked).
    pub fn location(&self) -> Option<&str> {
        match self {
            TransportError::Redirected { location, .. } => location.as_deref(),
            _ => None,
        }
    }
}

fn redirect_message(code: u16, location: Option<&str>) -> String {
    match location {
        Some(to) => format!("server redirected (HTTP {code}) to {to}; record that URL instead"),
        None => format!(
            "server answered HTTP {code} (a redirect) without a Location header; check the URL"
        ),
    }
}

fn refusal_message(code: u16, reason: &str, retry_after: Option<Duration>, body: &str) -> String {
    let mut m = format!("server answered HTTP {code}");
    if !reason.is_empty() {
        m.push(' ');
        m.push_str(reason);
    }
    m.push_str(" instead of 101 Switching Protocols");
    if let Some(wait) = retry_after {
        m.push_str(&format!(" (Retry-After: {}s)", wait.as_secs()));
    }
    let hint = match code {
        200 => "; the URL is served by a plain web server, not a WebSocket endpoint",
        400 => "; the server rejected the request: check the URL and headers",
        401 | 403 => "; check the URL's credentials and the headers (API key, token)",
        404 => "; check the URL path",
        426 => "; the server wants another protocol version",
        429 => "; rate limited: wsrec waits as asked before reconnecting",
        400..=499 if code != 408 => "; check the URL and the headers",
        502..=504 => "; the server or a gateway in front of it is unavailable",
        _ => "",
    };
    m.push_str(hint);
    if !body.is_empty() {
        m.push_str(&format!("; body: {body:?}"));
    }
    m
}

/// What [`connect`] is doing, for the timeout message.
#[derive(Clone, Copy)]
#[repr(u8)]
pub(super) enum Phase {
    Tcp,
    Proxy,
    Tls,
    Upgrade,
}

impl Phase {
    pub(super) const ALL: [Phase; 4] = [Phase::Tcp, Phase::Proxy, Phase::Tls, Phase::Upgrade];

    pub(super) fn describe(self) -> &'static str {
        match self {
            Phase::Tcp => "while connecting over TCP",
            Phase::Proxy => "waiting for the proxy's answer to CONNECT",
            Phase::Tls => "in the TLS handshake",
            Phase::Upgrade => "waiting for the server's answer to the WebSocket upgrade request",
        }
    }
}

/// An I/O error in words: the reason itself when it wraps one (rustls errors arrive as
/// `io::Error`s holding the TLS alert or certificate problem).
pub(super) fn describe_io(e: &std::io::Error) -> String {
    match e.get_ref() {
        Some(inner) => format!("{inner}"),
        None => format!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u16) -> TransportError {
        TransportError::Refused {
            code,
            reason: String::new(),
            retry_after: None,
            body: String::new(),
        }
    }

    fn redirected(code: u16) -> TransportError {
        TransportError::Redirected {
            code,
            location: None,
        }
    }

    #[test]
    fn permanent_failures_are_4xx_but_408_and_429_permanent_redirects_and_certificates() {
        for code in [400, 401, 403, 404, 405, 410, 426, 451, 499] {
            assert!(refused(code).is_permanent(), "{code}");
        }
        for code in [200, 408, 429, 500, 502, 503, 504] {
            assert!(!refused(code).is_permanent(), "{code}");
        }
        assert!(redirected(301).is_permanent());
        assert!(redirected(308).is_permanent());
        for code in [300, 302, 303, 307] {
            assert!(!redirected(code).is_permanent(), "{code}");
        }
        assert!(TransportError::Certificate("expired".to_owned()).is_permanent());
        let timeout = TransportError::Timeout {
            after: Duration::from_secs(1),
            phase: "x",
        };
        assert!(!timeout.is_permanent());
        assert!(!TransportError::Failed("DNS: no such host".to_owned()).is_permanent());
    }

    #[test]
    fn every_permanent_4xx_names_a_fix() {
        for code in [400, 401, 402, 403, 404, 405, 410, 426, 451] {
            let text = refused(code).to_string();
            assert!(text.contains("; "), "{code}: {text}");
        }
        assert_eq!(
            refused(408).to_string(),
            "server answered HTTP 408 instead of 101 Switching Protocols"
        );
    }
}
