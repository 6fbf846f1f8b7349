//! Value types and parsers of the config: durations (`"500ms"`, `"off"`), byte sizes
//! (`"64MiB"`), listen addresses, free-space watermarks, messages to send, secrets that never
//! show, proxy URLs, and the masking of URLs for logs and errors.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A free-space threshold: bytes, or a percentage of the filesystem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Watermark {
    /// Absolute free bytes.
    Bytes(u64),
    /// Percent of the filesystem's size.
    Percent(f64),
}

impl Watermark {
    /// The threshold in bytes for a filesystem of `total` bytes.
    pub fn bytes(&self, total: u64) -> u64 {
        match *self {
            Watermark::Bytes(b) => b,
            Watermark::Percent(p) => (total as f64 * p / 100.0) as u64,
        }
    }

    /// Parses `"5%"`, `"2GiB"`, `1000000` or `"off"`.
    pub fn parse(s: &str) -> Result<Option<Watermark>, String> {
        let t = s.trim();
        if matches!(t, "off" | "none") {
            return Ok(None);
        }
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage; write e.g. \"5%\""))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("`{s}` is not between 0% and 100%"));
            }
            return Ok(Some(Watermark::Percent(v)));
        }
        parse_byte_size(t).map(|b| Some(Watermark::Bytes(b)))
    }
}

impl<'de> Deserialize<'de> for Watermark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match NumOrStr::read(d, WATERMARK_FORM)? {
            NumOrStr::Num(n) => Some(Watermark::Bytes(n)),
            NumOrStr::Str(s) => Watermark::parse(&s).map_err(serde::de::Error::custom)?,
        };
        // "off" is handled by the Option around the field; a bare "off" here means zero.
        Ok(parsed.unwrap_or(Watermark::Bytes(0)))
    }
}

/// A message sent to the server: raw text, or a JSON value written compactly.
#[derive(Clone, PartialEq, Eq)]
pub struct OutMessage(pub String);

impl OutMessage {
    /// The text sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OutMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<'de> Deserialize<'de> for OutMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(match value {
            serde_json::Value::String(s) => OutMessage(s),
            other => OutMessage(other.to_string()),
        })
    }
}

/// A header value that never shows up in logs, `Debug` output or status.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Where a stream's HTTP CONNECT proxy comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum ProxySetting {
    /// From `https_proxy`/`http_proxy`/`all_proxy` and `no_proxy`, read at start.
    Env,
    /// This proxy URL, `http://[user:password@]host:port`.
    Url(String),
}

impl fmt::Debug for ProxySetting {
    /// The password of a proxy URL never shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Env => f.write_str("env"),
            ProxySetting::Url(url) => fmt::Debug::fmt(&mask_proxy_url(url), f),
        }
    }
}

/// A proxy URL for logs and errors: user and password masked, even when the URL does not parse
/// or lacks its `http://`.
pub fn mask_proxy_url(url: &str) -> String {
    let full = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    match url::Url::parse(&full) {
        Ok(_) => mask_url(&full),
        // Unparseable: keep only what follows the user info, which is where a password would be.
        Err(_) => match full.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => full,
        },
    }
}

impl<'de> Deserialize<'de> for ProxySetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(if text.trim() == "env" {
            ProxySetting::Env
        } else {
            ProxySetting::Url(text)
        })
    }
}

/// A proxy URL as parsed: `http://[user:password@]host:port` (the `http://` may be left out,
/// as in the usual proxy environment variables). Its `Debug` output is the masked URL.
#[derive(Clone)]
pub struct ProxyUrl {
    /// Proxy host.
    pub host: url::Host<String>,
    /// Proxy port.
    pub port: u16,
    /// User and password (percent-decoded) when the URL has user info.
    pub credentials: Option<(String, String)>,
    /// The URL with its password masked, for logs and errors.
    pub masked: String,
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.masked, f)
    }
}

impl ProxyUrl {
    /// Parses `http://[user:password@]host:port`.
    ///
    /// # Errors
    /// A message naming what is wrong, with the password masked.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let masked = mask_proxy_url(text);
        let full = if text.contains("://") {
            text.trim().to_owned()
        } else {
            format!("http://{}", text.trim())
        };
        let url = url::Url::parse(&full).map_err(|e| {
            format!("`{masked}` is not a valid proxy URL ({e}); expected http://host:port")
        })?;
        if url.scheme() != "http" {
            return Err(format!(
                "proxy scheme `{}` is not supported; wsrec uses HTTP CONNECT through an http:// \
                 proxy, e.g. http://proxy.example:3128",
                url.scheme()
            ));
        }
        let host = url
            .host()
            .map(|h| h.to_owned())
            .ok_or_else(|| format!("proxy URL `{masked}` has no host"))?;
        let port = url.port().ok_or_else(|| {
            format!("proxy URL `{masked}` has no port; write it out, e.g. http://proxy:3128")
        })?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "proxy URL `{masked}` must be http://[user:password@]host:port with nothing after \
                 the port"
            ));
        }
        let credentials = (!url.username().is_empty()).then(|| {
            (
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or("")),
            )
        });
        Ok(ProxyUrl {
            host,
            port,
            credentials,
            masked,
        })
    }
}

/// Decodes `%XX` escapes of a URL's user info; anything malformed is kept as is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Masks the secret parts of a URL: user info and every query value.
pub fn mask_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Unparseable: show only the scheme and host-ish prefix, nothing that could be a token.
        return match url.find('?') {
            Some(i) => format!("{}?***", &url[..i]),
            None => url.to_owned(),
        };
    };
    if !parsed.username().is_empty() {
        let _ = parsed.set_username("***");
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<String> = parsed
            .query_pairs()
            .map(|(k, _)| format!("{k}=***"))
            .collect();
        parsed.set_query(Some(&pairs.join("&")));
    }
    parsed.to_string()
}

/// Parses a duration such as `"500ms"`, `"20s"`, `"1h"` (humantime syntax) or `"off"`.
/// `"off"` and zero give `None`.
pub fn parse_opt_duration(s: &str) -> Result<Option<Duration>, String> {
    let t = s.trim();
    if matches!(t, "off" | "none" | "never" | "0") {
        return Ok(None);
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("`{s}` is not a duration ({e}); write e.g. \"500ms\", \"20s\", \"1h\" or \"off\"")
    })?;
    Ok((!d.is_zero()).then_some(d))
}

/// Parses a byte size: a number, or a number with `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB` or `B`.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 1048576, \"64MiB\" or \"500MB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}`; use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses the address of a listening socket: an IP address and a port (`127.0.0.1:9464`,
/// `[::1]:9464`; port 0 picks a free one).
pub fn parse_listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "`{s}` is not an address to listen on; write an IP address and a port, e.g. \
             \"127.0.0.1:9464\" (this host only), \"0.0.0.0:9464\" (every interface) or \
             \"[::1]:9464\""
        )
    })
}

pub(super) fn opt_listen_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen_addr(&s).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "metrics_listen: {e}; or leave it out to turn metrics off"
        ))
    })
}

/// A number or a string (durations, sizes, watermarks take both).
enum NumOrStr {
    Num(u64),
    Str(String),
}

/// What a [`NumOrStr`] setting takes, for the error of a value of another type.
const DURATION_FORM: &str =
    "a duration: seconds as a whole number, or a string such as \"500ms\", \"10s\", \"1h\"";
const SIZE_FORM: &str =
    "a size: bytes as a whole number, or a string such as \"64KiB\", \"100MB\", \"1GiB\"";
const WATERMARK_FORM: &str =
    "free space: bytes as a whole number, or a string such as \"5GiB\" or \"10%\"";

impl NumOrStr {
    /// Reads a number or a string; anything else is an error that says `expected`.
    fn read<'de, D: Deserializer<'de>>(d: D, expected: &'static str) -> Result<Self, D::Error> {
        struct V(&'static str);
        impl serde::de::Visitor<'_> for V {
            type Value = NumOrStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<NumOrStr, E> {
                Ok(NumOrStr::Num(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<NumOrStr, E> {
                u64::try_from(n)
                    .map(NumOrStr::Num)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<NumOrStr, E> {
                Ok(NumOrStr::Str(s.to_owned()))
            }
        }
        d.deserialize_any(V(expected))
    }
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumOrStr::read(d, DURATION_FORM)? {
        NumOrStr::Num(n) => Ok(Duration::from_secs(n)),
        NumOrStr::Str(s) => match parse_opt_duration(&s).map_err(serde::de::Error::custom)? {
            Some(d) => Ok(d),
            None => Err(serde::de::Error::custom(format!(
                "`{s}` turns this setting off, but it cannot be off; give a duration such as \"10s\""
            ))),
        },
    }
}

pub(super) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match NumOrStr::read(d, DURATION_FORM)? {
        NumOrStr::Num(0) => Ok(None),
        NumOrStr::Num(n) => Ok(Some(Duration::from_secs(n))),
        NumOrStr::Str(s) => parse_opt_duration(&s).map_err(serde::de::Error::custom),
    }
}

pub(super) fn opt_seconds_or_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    opt_duration(d)
}

pub(crate) fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrStr::read(d, SIZE_FORM)? {
        NumOrStr::Num(n) => Ok(n),
        NumOrStr::Str(s) => parse_byte_size(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::super::DEFAULT_DISK_BUFFER;
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn durations_sizes_and_off() {
        let c = parse(
            r#"
            [[stream]]
            name = "a"
            url = "ws://h/"
            ping_interval = "off"
            silence_timeout = "90s"
            max_message_size = "16MiB"
            max_bytes = 1000
            rotate = "1m"
            "#,
        )
        .unwrap();
        let s = &c.streams[0];
        assert_eq!(s.ping_interval, None);
        assert_eq!(s.silence_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.max_message_size, 16 << 20);
        assert_eq!(s.max_bytes, 1000);
        assert_eq!(s.rotate, Duration::from_secs(60));
        assert_eq!(c.disk_buffer, DEFAULT_DISK_BUFFER);
        let c = parse("disk_buffer = \"256MiB\"\n[[stream]]\nname = \"a\"\nurl = \"ws://h/\"\n")
            .unwrap();
        assert_eq!(c.disk_buffer, 256 << 20);
    }

    #[test]
    fn secrets_are_masked_in_debug_and_urls() {
        let c = parse(
            "[[stream]]\nname='a'\nurl='wss://user:pw@h/ws?token=abc&x=1'\nheaders={'X-Key'='s3cret'}",
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        let masked = c.streams[0].masked_url();
        assert!(
            !masked.contains("abc") && !masked.contains("pw"),
            "{masked}"
        );
        assert!(masked.contains("token=***"), "{masked}");
    }
}
