//! The recorder's side of the status socket: binding it owner-only (replacing a stale socket,
//! never a live one), serving each client in a task of its own under timeouts, and removing
//! the socket file at shutdown if it is still ours.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::error::{ErrorReply, StatusError};
use super::{
    MAX_CLIENTS, MAX_REQUEST_BYTES, REPLY_TIMEOUT, REQUEST_TIMEOUT, SOCKET_MODE, STATUS_REQUEST,
};
use crate::observe::server::{Listener, accept_loop};
use crate::observe::stats::Stats;

/// The status server of a running recorder: a bound Unix socket, not yet accepting.
///
/// Binding is separate from [`StatusServer::run`] so that a recorder can refuse to start (socket in
/// use, bad path) before it opens any connection or file.
#[derive(Debug)]
pub struct StatusServer {
    /// The listening socket.
    listener: UnixListener,
    /// The socket file, removed when the server stops, provided it is still the one we created.
    socket: SocketFile,
}

impl StatusServer {
    /// Binds the status socket at `path`, owner-only.
    ///
    /// A socket already at `path` is probed: if a process answers, another recorder owns it and
    /// this is an error; if the connection is refused, it is a stale socket of a dead process and
    /// is replaced. Anything that is not a socket is left untouched and reported. The parent
    /// directory must exist.
    ///
    /// The socket is made mode 0600 right after `bind`. Setting a restrictive umask around `bind`
    /// would close the window in between, but the umask is process-wide and other threads (the
    /// writer creating data files) would inherit it, so it is not done. The window is narrow and
    /// mostly harmless: connecting needs write permission, which the usual 022 umask already
    /// denies to group and others, and the counters carry no secrets. Put the socket in a
    /// directory only the recorder's user can write to if that matters.
    ///
    /// Two recorders started at the same instant on the same stale socket can race (each removes
    /// the stale file, one then unlinks the other's fresh socket); starting them one at a time, or
    /// with different `status_socket` paths, avoids it.
    ///
    /// # Errors
    ///
    /// [`StatusError::NoParentDir`], [`StatusError::InUse`], [`StatusError::NotASocket`],
    /// [`StatusError::Probe`], [`StatusError::RemoveStale`], [`StatusError::PathTooLong`],
    /// [`StatusError::Bind`] or [`StatusError::Permissions`], each naming the path.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime with I/O enabled, like [`UnixListener::bind`].
    pub fn bind(path: &Path) -> Result<StatusServer, StatusError> {
        check_parent_dir(path)?;
        clear_stale_socket(path)?;

        let listener = UnixListener::bind(path).map_err(|source| match source.kind() {
            // Something appeared at the path since the probe: most likely a recorder starting at
            // the same moment.
            io::ErrorKind::AddrInUse => StatusError::InUse {
                path: path.to_owned(),
            },
            // std checks the length (and NUL bytes) before calling bind(2).
            io::ErrorKind::InvalidInput => StatusError::PathTooLong {
                path: path.to_owned(),
            },
            _ => StatusError::Bind {
                path: path.to_owned(),
                source,
            },
        })?;

        let meta = std::fs::symlink_metadata(path).map_err(|source| {
            // We just created this file; do not leave it behind world-connectable.
            let _ = std::fs::remove_file(path);
            StatusError::Permissions {
                path: path.to_owned(),
                source,
            }
        })?;
        // From here on the guard removes the file on any early return.
        let socket = SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(
            |source| StatusError::Permissions {
                path: path.to_owned(),
                source,
            },
        )?;

        Ok(StatusServer { listener, socket })
    }

    /// The socket path, for log lines.
    pub fn path(&self) -> &Path {
        &self.socket.path
    }

    /// Serves status requests until `shutdown` is cancelled, then removes the socket file (if it is
    /// still ours) and returns once every client task has ended.
    ///
    /// Each client gets its own task, so a slow client never delays another one or the recorder.
    /// Client tasks also watch `shutdown`, so returning does not wait out their timeouts.
    pub async fn run(self, stats: Arc<Stats>, shutdown: CancellationToken) {
        tracing::info!(path = %self.socket.path.display(), "Status socket listening.");
        // Dropping the server at the end of the loop closes the listener, then removes the
        // socket file (fields drop in order), before the last clients are waited for.
        accept_loop(self, MAX_CLIENTS, &shutdown, |stream| {
            let stats = Arc::clone(&stats);
            async move { serve_client(stream, &stats).await }
        })
        .await;
        tracing::info!("Status socket closed.");
    }
}

impl Listener for StatusServer {
    type Stream = UnixStream;

    async fn accept(&self) -> io::Result<UnixStream> {
        self.listener.accept().await.map(|(stream, _addr)| stream)
    }

    fn accept_failed(&self, error: &io::Error) {
        tracing::warn!(
            path = %self.socket.path.display(),
            %error,
            "Status socket accept failed."
        );
    }

    fn turn_away(&self, stream: UnixStream) {
        // Best effort and non-blocking: the accept loop must not wait on this client.
        let _ = stream.try_write(&error_line("too many status clients at once; retry"));
        tracing::debug!("Status client dropped: too many clients.");
    }
}

/// The socket file a server created, identified by device and inode.
///
/// Dropping it removes the file only if it is still that same inode: if an operator deleted it and
/// another recorder bound the same path since, that recorder's socket must survive our shutdown.
/// Removal on drop also covers a server that is bound but never run, or whose task is aborted.
#[derive(Debug)]
struct SocketFile {
    /// Where the socket was bound.
    path: PathBuf,
    /// Device of the socket file at bind time.
    dev: u64,
    /// Inode of the socket file at bind time.
    ino: u64,
}

impl SocketFile {
    /// Whether the file at `path` is still the socket we bound.
    fn is_ours(&self) -> bool {
        std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino)
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if !self.is_ours() {
            tracing::debug!(path = %self.path.display(), "Status socket was replaced; leaving it.");
            return;
        }
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "Could not remove status socket.");
        }
    }
}

/// Fails unless the directory that will hold `path` exists.
fn check_parent_dir(path: &Path) -> Result<(), StatusError> {
    let dir = match path.parent() {
        // A bare file name lives in the current directory, which exists.
        Some(dir) if dir.as_os_str().is_empty() => return Ok(()),
        Some(dir) => dir,
        // `/` or empty: let bind report it.
        None => return Ok(()),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(StatusError::NoParentDir {
            path: path.to_owned(),
            dir: dir.to_owned(),
        })
    }
}

/// Makes way for a new socket at `path`: nothing there is fine, a stale socket is removed, and
/// anything else (a live socket, a file) is an error.
fn clear_stale_socket(path: &Path) -> Result<(), StatusError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StatusError::Probe {
                path: path.to_owned(),
                source,
            });
        }
    };
    // `symlink_metadata` does not follow links, so a symlink is "not a socket" too: replacing it
    // could remove something outside the configured path.
    if !meta.file_type().is_socket() {
        return Err(StatusError::NotASocket {
            path: path.to_owned(),
        });
    }
    // A blocking connect is fine here: a Unix socket connect completes at once (accepted into the
    // backlog or refused); it could only wait if a live server's backlog were full.
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(StatusError::InUse {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            match std::fs::remove_file(path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "Replaced stale status socket.");
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StatusError::RemoveStale {
                    path: path.to_owned(),
                    source,
                }),
            }
        }
        // Gone between stat and connect: nothing to clear.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StatusError::Probe {
            path: path.to_owned(),
            source,
        }),
    }
}

/// What came of reading a client's request.
enum Request {
    /// A complete request line, without its line ending.
    Line(Vec<u8>),
    /// The client closed without sending anything.
    Empty,
    /// No newline within [`MAX_REQUEST_BYTES`].
    TooLong,
}

/// Reads one request and answers it. Errors end the connection quietly: the client is gone or
/// misbehaving, and the recorder has nothing to do about either.
async fn serve_client(mut stream: UnixStream, stats: &Stats) {
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => {
            tracing::debug!(%error, "Status client read failed.");
            return;
        }
        Err(_elapsed) => {
            tracing::debug!("Status client sent no request in time; dropped.");
            return;
        }
    };
    let reply = match request {
        Request::Line(line) => respond(&line, stats),
        Request::Empty => return,
        Request::TooLong => error_line(&format!(
            "request longer than {MAX_REQUEST_BYTES} bytes, expected \"{STATUS_REQUEST}\""
        )),
    };
    let write = async {
        stream.write_all(&reply).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(REPLY_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "Status reply failed."),
        Err(_elapsed) => tracing::debug!("Status client did not read its reply in time; dropped."),
    }
}

/// Reads up to the first newline, at most [`MAX_REQUEST_BYTES`]. A request ended by EOF instead of
/// a newline is accepted too, so `printf status | nc -U -N sock` works.
async fn read_request(stream: &mut UnixStream) -> io::Result<Request> {
    let mut reader = BufReader::new(stream.take(MAX_REQUEST_BYTES as u64));
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).await?;
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() >= MAX_REQUEST_BYTES {
        return Ok(Request::TooLong);
    } else if line.is_empty() {
        return Ok(Request::Empty);
    }
    Ok(Request::Line(line))
}

/// The reply line (newline included) to one request line.
fn respond(request: &[u8], stats: &Stats) -> Vec<u8> {
    let request = request.trim_ascii();
    if request == STATUS_REQUEST.as_bytes() {
        match serde_json::to_vec(&stats.snapshot()) {
            Ok(mut line) => {
                line.push(b'\n');
                line
            }
            // Cannot happen for a struct of strings and numbers, but a reply beats a panic.
            Err(e) => error_line(&format!("cannot encode status: {e}")),
        }
    } else {
        let shown: String = String::from_utf8_lossy(request).chars().take(64).collect();
        error_line(&format!(
            "unknown request {shown:?}, expected \"{STATUS_REQUEST}\""
        ))
    }
}

/// `{"error":"..."}` plus a newline, with the message JSON-escaped.
fn error_line(message: &str) -> Vec<u8> {
    let reply = ErrorReply {
        error: message.to_owned(),
    };
    // Serialising a one-string struct cannot fail; fall back to a fixed line regardless.
    let mut line = serde_json::to_vec(&reply).unwrap_or_else(|_| br#"{"error":"error"}"#.to_vec());
    line.push(b'\n');
    line
}
