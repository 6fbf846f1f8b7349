//! HTTP CONNECT proxies: the `proxy` setting or the environment (`proxy = "env"`), `no_proxy`,
//! and the tunnel itself.

use std::fmt;

use base64::Engine as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use url::Host;

use super::error::TransportError;
use super::head::{Reply, read_head};
use crate::config::ProxyUrl;

/// An HTTP proxy reached with `CONNECT host:port`.
#[derive(Clone)]
pub struct HttpProxy {
    /// Proxy host.
    pub(super) host: Host<String>,
    /// Proxy port.
    pub(super) port: u16,
    /// `Proxy-Authorization` value (Basic), from the URL's user info.
    authorization: Option<String>,
    /// The URL with its password masked, for logs and errors.
    pub(super) masked: String,
}

impl fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.masked, f)
    }
}

impl HttpProxy {
    /// Parses `http://[user:password@]host:port` (the `http://` may be left out, as in the
    /// usual proxy environment variables).
    ///
    /// # Errors
    /// A message naming what is wrong, with the password masked.
    pub fn parse(text: &str) -> Result<HttpProxy, String> {
        let parsed = ProxyUrl::parse(text)?;
        let authorization = parsed.credentials.map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        Ok(HttpProxy {
            host: parsed.host,
            port: parsed.port,
            authorization,
            masked: parsed.masked,
        })
    }
}

/// The proxy the environment names for `url`, honouring `no_proxy`, like curl: `https_proxy`
/// or `HTTPS_PROXY` for `wss://`, `http_proxy` for `ws://` (lower case only: upper-case
/// `HTTP_PROXY` can be set by a CGI client, the "httpoxy" problem), then `all_proxy` or
/// `ALL_PROXY`. `lookup` reads a variable (injected for tests).
///
/// # Errors
/// The variable holds something that is not an http:// proxy URL.
pub fn proxy_from_env(
    url: &url::Url,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<HttpProxy>, String> {
    let names: &[&str] = if url.scheme() == "wss" {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "all_proxy", "ALL_PROXY"]
    };
    let Some((name, value)) = names
        .iter()
        .find_map(|n| lookup(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
    else {
        return Ok(None);
    };
    let no_proxy = lookup("no_proxy")
        .or_else(|| lookup("NO_PROXY"))
        .unwrap_or_default();
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(0);
    if no_proxy_matches(&no_proxy, host, port) {
        return Ok(None);
    }
    HttpProxy::parse(&value)
        .map(Some)
        .map_err(|m| format!("{name} from the environment: {m}"))
}

/// Whether a `no_proxy` list (comma-separated host names, domain suffixes such as
/// `.example.com` or `example.com`, optional `:port`, or `*`) covers `host:port`. IP ranges
/// (CIDR) are not supported: list the addresses.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return true;
        }
        let entry = split_host_port(entry);
        if entry.port.is_some_and(|p| p != port) {
            continue;
        }
        let pattern = entry
            .pattern
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .to_ascii_lowercase();
        if pattern.is_empty() {
            continue;
        }
        if host == pattern
            || host
                .strip_suffix(&pattern)
                .is_some_and(|rest| rest.ends_with('.'))
        {
            return true;
        }
    }
    false
}

/// A `NO_PROXY` entry's host pattern and the port it is limited to, if any.
struct NoProxyEntry<'a> {
    /// Host, domain suffix or IP address (IPv6 without brackets).
    pattern: &'a str,
    /// The port, when the entry names one.
    port: Option<u16>,
}

/// `host:port`, `[v6]:port`, `[v6]`, bare IPv6 or bare host.
fn split_host_port(entry: &str) -> NoProxyEntry<'_> {
    let (pattern, port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        }
    } else {
        match entry.rsplit_once(':') {
            // One colon: host:port. More: a bare IPv6 address.
            Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
            _ => (entry, None),
        }
    };
    NoProxyEntry { pattern, port }
}

/// Asks the proxy for a tunnel to `authority` and checks its answer.
pub(super) async fn tunnel(
    mut tcp: TcpStream,
    proxy: &HttpProxy,
    authority: &str,
) -> Result<TcpStream, TransportError> {
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    let failed = |what: String| TransportError::Failed(format!("proxy {}: {what}", proxy.masked));
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| failed(format!("sending CONNECT failed: {e}")))?;
    let Reply { head, leftover } = read_head(&mut tcp, "the proxy")
        .await
        .map_err(|e| match e {
            TransportError::Failed(m) => failed(m),
            other => other,
        })?;
    match head.code {
        200..=299 => {}
        407 => {
            return Err(failed(format!(
                "HTTP 407 {}: the proxy wants credentials; give them as \
                 http://user:password@host:port",
                head.reason
            )));
        }
        code => {
            return Err(failed(format!(
                "refused to CONNECT to {authority}: HTTP {code} {}; check that the proxy allows \
                 CONNECT to this host and port",
                head.reason
            )));
        }
    }
    if !leftover.is_empty() {
        return Err(failed(format!(
            "sent {} unexpected bytes after its 200 answer to CONNECT",
            leftover.len()
        )));
    }
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_with_credentials_masked() {
        let p = HttpProxy::parse("http://user:p%40ss@127.0.0.1:3128").unwrap();
        assert_eq!(p.port, 3128);
        let expected = base64::engine::general_purpose::STANDARD.encode("user:p@ss");
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {expected}").as_str())
        );
        assert!(!format!("{p:?}").contains("p%40ss"), "{p:?}");
        let p = HttpProxy::parse("proxy.internal:8080").unwrap();
        assert_eq!(
            (p.host.to_string().as_str(), p.port),
            ("proxy.internal", 8080)
        );
        for (text, want) in [
            ("socks5://h:1080", "not supported"),
            ("https://h:443", "not supported"),
            ("http://h", "no port"),
            ("http://h:1/path", "nothing after the port"),
            ("http://user:secret@", "not a valid proxy URL"),
        ] {
            let err = HttpProxy::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn proxy_env_follows_scheme_and_no_proxy() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let wss = url::Url::parse("wss://stream.example.com/ws").unwrap();
        let ws = url::Url::parse("ws://127.0.0.1:9000/").unwrap();
        let vars: &[(&str, &str)] = &[
            ("HTTPS_PROXY", "http://p:3128"),
            ("HTTP_PROXY", "http://cgi-injected:1"),
        ];
        assert!(proxy_from_env(&wss, env(vars)).unwrap().is_some());
        // Upper-case HTTP_PROXY is never used (httpoxy).
        assert!(proxy_from_env(&ws, env(vars)).unwrap().is_none());
        let vars: &[(&str, &str)] = &[("all_proxy", "p:3128"), ("no_proxy", "localhost,127.0.0.1")];
        assert!(proxy_from_env(&wss, env(vars)).unwrap().is_some());
        assert!(proxy_from_env(&ws, env(vars)).unwrap().is_none());
        let vars: &[(&str, &str)] = &[("https_proxy", "ftp://p:1")];
        let err = proxy_from_env(&wss, env(vars)).unwrap_err();
        assert!(err.contains("https_proxy from the environment"), "{err}");
    }

    #[test]
    fn no_proxy_matching() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("*", "anything", 1, true),
            ("example.com", "example.com", 443, true),
            ("example.com", "stream.example.com", 443, true),
            (".example.com", "stream.example.com", 443, true),
            ("*.example.com", "stream.example.com", 443, true),
            ("example.com", "badexample.com", 443, false),
            ("example.com:8443", "example.com", 443, false),
            ("example.com:443", "example.com", 443, true),
            ("127.0.0.1", "127.0.0.1", 80, true),
            ("::1", "[::1]", 80, true),
            ("[::1]:80", "[::1]", 80, true),
            (" a.org , , b.org ", "b.org", 1, true),
            ("", "example.com", 443, false),
        ];
        for (list, host, port, want) in cases {
            assert_eq!(
                no_proxy_matches(list, host, *port),
                *want,
                "{list:?} {host}:{port}"
            );
        }
    }
}
