//! Reading an HTTP/1.x response head, bounded in size: the upgrade answer, a proxy's answer to
//! CONNECT and the answer of a plain HTTP request all start with one.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::TransportError;

/// Largest HTTP response head (status line and headers) taken from a server or proxy. Real ones
/// are a few hundred bytes; this bounds what a hostile peer can make wsrec buffer.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most header lines in a response head.
const MAX_RESPONSE_HEADERS: usize = 64;
/// Most bytes of a refusal's body quoted in the error (the body often says why).
pub(super) const MAX_QUOTED_BODY: usize = 200;

/// A parsed HTTP response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub code: u16,
    /// Reason phrase (printable part).
    pub reason: String,
    /// Header names (as sent) and values.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// Every value of header `name` (case-insensitive), in order.
    pub(super) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name`, as text (lossy).
    pub(super) fn value(&self, name: &str) -> Option<String> {
        self.values(name)
            .next()
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    }
}

/// A response head parsed from the start of a buffer ([`parse_head`]).
#[derive(Debug)]
pub struct ParsedHead {
    /// The head.
    pub head: ResponseHead,
    /// Its length in bytes, up to and including the blank line.
    pub len: usize,
}

/// A response head read from a peer ([`read_head`]) and what came after it.
pub(super) struct Reply {
    /// The head.
    pub(super) head: ResponseHead,
    /// The bytes read past the head (the start of the body or of the WebSocket frames).
    pub(super) leftover: Bytes,
}

/// Parses a complete response head at the start of `buf`: `Ok(None)` if more bytes are needed,
/// else the head and its length.
///
/// # Errors
/// The bytes are not an HTTP/1.x response head, or have too many headers.
pub fn parse_head(buf: &[u8]) -> Result<Option<ParsedHead>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => {
            let code = response.code.unwrap_or(0);
            let reason = printable(response.reason.unwrap_or("").as_bytes(), 100);
            let headers = response
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                .collect();
            Ok(Some(ParsedHead {
                head: ResponseHead {
                    code,
                    reason,
                    headers,
                },
                len,
            }))
        }
        Err(httparse::Error::TooManyHeaders) => Err(format!(
            "answered with more than {MAX_RESPONSE_HEADERS} headers"
        )),
        Err(e) => Err(format!(
            "did not answer with HTTP ({e}): {:?}",
            printable(&buf[..buf.len().min(60)], 60)
        )),
    }
}

/// Reads a response head (bounded by [`MAX_RESPONSE_HEAD`]); returns it and the bytes read past
/// it. `who` names the peer in errors.
pub(super) async fn read_head<S: AsyncRead + Unpin>(
    io: &mut S,
    who: &str,
) -> Result<Reply, TransportError> {
    let mut buf = BytesMut::with_capacity(4096);
    // Only parse once the blank line has arrived: keeps a byte-by-byte trickle linear.
    let mut searched: usize = 0;
    loop {
        if buf.len() >= MAX_RESPONSE_HEAD {
            return Err(TransportError::Failed(format!(
                "{who} sent a response head larger than {MAX_RESPONSE_HEAD} bytes"
            )));
        }
        let n = io
            .read_buf(&mut buf)
            .await
            .map_err(|e| TransportError::Failed(format!("reading the answer of {who}: {e}")))?;
        if n == 0 {
            return Err(TransportError::Failed(if buf.is_empty() {
                format!("{who} closed the connection without answering the request")
            } else {
                format!(
                    "{who} closed the connection in the middle of its answer: {:?}",
                    printable(&buf[..buf.len().min(60)], 60)
                )
            }));
        }
        let from = searched.saturating_sub(3);
        if memchr::memmem::find(&buf[from..], b"\r\n\r\n").is_none() {
            searched = buf.len();
            continue;
        }
        searched = buf.len();
        match parse_head(&buf) {
            Ok(None) => continue,
            Ok(Some(ParsedHead { head, len })) => {
                buf.advance(len);
                return Ok(Reply {
                    head,
                    leftover: buf.freeze(),
                });
            }
            Err(m) => return Err(TransportError::Failed(format!("{who} {m}"))),
        }
    }
}

/// Printable ASCII of `bytes`, at most `max` characters; anything else becomes `.`.
pub(super) fn printable(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_are_bounded_and_named() {
        assert!(parse_head(b"HTTP/1.1 101 Switching").unwrap().is_none());
        let err = parse_head(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").unwrap_err();
        assert!(err.contains("did not answer with HTTP"), "{err}");
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let err = parse_head(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()).unwrap_err();
        assert!(err.contains("more than 64 headers"), "{err}");
    }
}
