//! The `wsrec status` side of the socket: one request, one reply line, under timeouts.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::error::{ErrorReply, StatusError};
use super::{MAX_REPLY_BYTES, QUERY_TIMEOUT, STATUS_REQUEST};
use crate::observe::stats::Snapshot;

/// Asks the recorder listening at `path` for its counters.
///
/// # Errors
///
/// [`StatusError::NoSocket`] if nothing is at `path`, [`StatusError::Refused`] for a stale socket,
/// [`StatusError::NotASocket`], [`StatusError::PermissionDenied`], [`StatusError::Connect`],
/// [`StatusError::Timeout`] (5 s to connect, 5 s more for the reply), [`StatusError::Io`],
/// [`StatusError::NoReply`], [`StatusError::ReplyTooLong`], [`StatusError::BadReply`], or
/// [`StatusError::Server`] when the recorder answers with an error line.
pub async fn query(path: &Path) -> Result<Snapshot, StatusError> {
    let mut stream = match tokio::time::timeout(QUERY_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(connect_error(path, e)),
        Err(_elapsed) => {
            return Err(StatusError::Timeout {
                path: path.to_owned(),
                stage: "accept the connection",
            });
        }
    };
    let line = match tokio::time::timeout(QUERY_TIMEOUT, exchange(&mut stream)).await {
        Ok(Ok(line)) => line,
        Ok(Err(source)) => {
            return Err(StatusError::Io {
                path: path.to_owned(),
                source,
            });
        }
        Err(_elapsed) => {
            return Err(StatusError::Timeout {
                path: path.to_owned(),
                stage: "reply",
            });
        }
    };
    if line.is_empty() {
        return Err(StatusError::NoReply {
            path: path.to_owned(),
        });
    }
    if line.last() != Some(&b'\n') && line.len() >= MAX_REPLY_BYTES {
        return Err(StatusError::ReplyTooLong {
            path: path.to_owned(),
            limit: MAX_REPLY_BYTES,
        });
    }
    match serde_json::from_slice::<Snapshot>(&line) {
        Ok(snapshot) => Ok(snapshot),
        Err(source) => match serde_json::from_slice::<ErrorReply>(&line) {
            Ok(reply) => Err(StatusError::Server {
                path: path.to_owned(),
                message: reply.error,
            }),
            Err(_) => Err(StatusError::BadReply {
                path: path.to_owned(),
                source,
            }),
        },
    }
}

/// Sends the request and reads the reply line (at most [`MAX_REPLY_BYTES`]).
async fn exchange(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    stream
        .write_all(format!("{STATUS_REQUEST}\n").as_bytes())
        .await?;
    let mut reader = BufReader::new(stream.take(MAX_REPLY_BYTES as u64));
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).await?;
    Ok(line)
}

/// Turns a failed connect into the error that tells the user what is going on.
fn connect_error(path: &Path, source: io::Error) -> StatusError {
    let path = path.to_owned();
    match source.kind() {
        io::ErrorKind::NotFound => StatusError::NoSocket { path },
        // Linux also refuses connections to files that are not sockets; say which case it is.
        io::ErrorKind::ConnectionRefused => match std::fs::symlink_metadata(&path) {
            Ok(meta) if !meta.file_type().is_socket() => StatusError::NotASocket { path },
            _ => StatusError::Refused { path },
        },
        io::ErrorKind::PermissionDenied => StatusError::PermissionDenied { path },
        _ => StatusError::Connect { path, source },
    }
}
