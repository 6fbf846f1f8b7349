//! The status socket: the recorder serves its live counters on a Unix socket, and `wsrec status`
//! asks for them.
//!
//! The protocol is one line each way, so it can be driven by hand
//! (`echo status | nc -U wsrec.sock`) as well as by [`query`]:
//!
//! - the client sends `status\n` (at most [`MAX_REQUEST_BYTES`], newline included);
//! - the server answers one line, the JSON of [`Stats::snapshot`], or `{"error":"..."}` for a
//!   request it does not understand, then closes.
//!
//! The daemon side ([`StatusServer`]) only ever reads atomics through [`Stats::snapshot`], so a
//! slow or hostile client can cost a little CPU but can never stall the recorder: every client is
//! served in its own task, under read and write timeouts. The socket file is owner-only (0600)
//! because the counters, though free of secrets, are nobody else's business.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::server::{Listener, accept_loop};
use crate::stats::{Snapshot, Stats, go_duration};

/// The one request the server understands.
const STATUS_REQUEST: &str = "status";

/// Longest request line the server reads, newline included. The only valid request is 7 bytes;
/// the limit only has to stop a client from making the server buffer without bound.
pub const MAX_REQUEST_BYTES: usize = 1024;

/// Longest reply line the client reads, newline included. A snapshot is a few hundred bytes per
/// stream, so this allows tens of thousands of streams while still bounding a confused peer.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// How long the server waits for a client's request line. A client that connects and says nothing
/// is dropped after this, so idle connections cannot pile up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server spends writing a reply to a client that does not read it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`query`] waits to connect, and then again for the reply.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Clients served at once. Beyond this a new client is told the server is busy and dropped, so the
/// accept loop never waits and a burst of clients cannot grow memory without bound.
const MAX_CLIENTS: usize = 64;

/// Mode of the socket file: only the recorder's user may connect.
const SOCKET_MODE: u32 = 0o600;

/// Errors of the status socket, on the daemon side ([`StatusServer::bind`]) and the client side
/// ([`query`]). Each names the socket path and what to do about it.
#[derive(thiserror::Error, Debug)]
pub enum StatusError {
    /// The socket's directory is missing; the server does not create directories on its own,
    /// since a mistyped path would otherwise silently create a tree somewhere unexpected.
    #[error(
        "cannot create status socket {path}: directory {dir} does not exist (or is not a \
         directory); create it or choose another `status_socket` path"
    )]
    NoParentDir {
        /// The socket path.
        path: PathBuf,
        /// Its parent directory.
        dir: PathBuf,
    },

    /// Another live process answers on the socket.
    #[error(
        "status socket {path} is in use: another running wsrec answers on it; stop that recorder \
         or give this one a different `status_socket` path"
    )]
    InUse {
        /// The socket path.
        path: PathBuf,
    },

    /// Something other than a socket sits at the path; it is never removed, since it may be data.
    #[error(
        "{path} exists and is not a Unix socket, so it is not a wsrec status socket; refusing to \
         touch it: remove it or choose another `status_socket` path"
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },

    /// A socket exists at the path but probing it failed in a way that says neither "live" nor
    /// "stale", so it is left alone.
    #[error(
        "cannot tell whether status socket {path} is still in use ({source}); if no wsrec is \
         running, remove it, or choose another `status_socket` path"
    )]
    Probe {
        /// The socket path.
        path: PathBuf,
        /// Why connecting to it failed.
        source: io::Error,
    },

    /// A stale socket could not be removed.
    #[error(
        "cannot remove stale status socket {path} ({source}); remove it by hand or choose another \
         `status_socket` path"
    )]
    RemoveStale {
        /// The socket path.
        path: PathBuf,
        /// Why removal failed.
        source: io::Error,
    },

    /// The path does not fit in a Unix socket address (about 107 bytes on Linux, 103 on macOS).
    #[error(
        "status socket path {path} is too long for a Unix socket (or contains a NUL byte); \
         choose a shorter `status_socket` path"
    )]
    PathTooLong {
        /// The socket path.
        path: PathBuf,
    },

    /// Binding failed for another reason (permissions on the directory, read-only file system...).
    #[error(
        "cannot create status socket {path}: {source}; check that the directory is writable or \
         choose another `status_socket` path"
    )]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why `bind` failed.
        source: io::Error,
    },

    /// The socket was created but could not be made owner-only; it is removed again rather than
    /// left open to other users.
    #[error("cannot restrict status socket {path} to its owner (mode 0600): {source}")]
    Permissions {
        /// The socket path.
        path: PathBuf,
        /// Why `chmod` or `stat` failed.
        source: io::Error,
    },

    /// Nothing at the path the client was given.
    #[error(
        "no status socket at {path}: is `wsrec record` running, and is this the `status_socket` it \
         was started with?"
    )]
    NoSocket {
        /// The socket path.
        path: PathBuf,
    },

    /// A socket file exists but nobody listens: its recorder died without removing it.
    #[error(
        "status socket {path} refused the connection: the recorder that created it is no longer \
         running (stale socket); start `wsrec record` again, which replaces it"
    )]
    Refused {
        /// The socket path.
        path: PathBuf,
    },

    /// The socket belongs to another user (it is created 0600).
    #[error(
        "permission denied on status socket {path}: it is owner-only; run `wsrec status` as the \
         user that runs the recorder"
    )]
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
    },

    /// Connecting failed for another reason.
    #[error("cannot connect to status socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why `connect` failed.
        source: io::Error,
    },

    /// The recorder did not accept or answer in time.
    #[error(
        "status socket {path} did not {stage} within {}s: the recorder may be stuck or overloaded; \
         check its log",
        QUERY_TIMEOUT.as_secs()
    )]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// What did not happen in time: "accept the connection" or "reply".
        stage: &'static str,
    },

    /// The connection broke during the exchange.
    #[error("lost the connection to status socket {path}: {source}; retry")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// The server closed without a reply: it is shutting down, or it is busy.
    #[error(
        "status socket {path} closed the connection without replying: the recorder may be \
         shutting down or busy; retry"
    )]
    NoReply {
        /// The socket path.
        path: PathBuf,
    },

    /// The reply line did not end within [`MAX_REPLY_BYTES`].
    #[error(
        "status socket {path} sent a reply longer than {limit} bytes: is it really a wsrec status \
         socket?"
    )]
    ReplyTooLong {
        /// The socket path.
        path: PathBuf,
        /// The limit, in bytes.
        limit: usize,
    },

    /// The reply was not a snapshot.
    #[error(
        "status socket {path} sent a reply that is not a status snapshot ({source}): is the \
         recorder running the same wsrec version as this client?"
    )]
    BadReply {
        /// The socket path.
        path: PathBuf,
        /// Why the reply did not parse.
        source: serde_json::Error,
    },

    /// The server understood the connection but answered with an error.
    #[error("the recorder at status socket {path} answered with an error: {message}")]
    Server {
        /// The socket path.
        path: PathBuf,
        /// The server's message.
        message: String,
    },
}

/// The reply to a request the server cannot serve.
#[derive(Debug, Serialize, Deserialize)]
struct ErrorReply {
    /// What was wrong and what the server expected.
    error: String,
}

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

/// A plain-text table of `s`, one row per stream, then a summary line and the Go streamer's total
/// line ([`Snapshot::go_line`]).
///
/// `now_ns` (ns since the epoch) is passed in rather than read, so that the last-message age, and
/// with it the whole output, is a function of the arguments; callers pass the current time.
pub fn render_table(s: &Snapshot, now_ns: u64) -> String {
    /// Column headers, and whether the column is numeric (right-aligned so magnitudes line up).
    const COLUMNS: [(&str, bool); 9] = [
        ("STREAM", false),
        ("STATE", false),
        ("MSGS", true),
        ("RATE/s", true),
        ("RECONN", true),
        ("DROPPED", true),
        ("LOST", true),
        ("LAST MSG AGE", true),
        ("FILE", false),
    ];

    let rows: Vec<[String; 9]> = s
        .streams
        .iter()
        .map(|st| {
            [
                st.name.clone(),
                if st.subscriptions_failed > 0 {
                    format!(
                        "{}, {} subs failing",
                        st.state.name(),
                        st.subscriptions_failed
                    )
                } else {
                    st.state.name().to_owned()
                },
                st.messages.to_string(),
                format!("{:.2}", st.rate_per_sec),
                st.reconnects.to_string(),
                st.dropped.to_string(),
                st.lines_lost.to_string(),
                message_age(st.last_message_ns, now_ns),
                if st.current_file.is_empty() {
                    "-".to_owned()
                } else {
                    st.current_file.clone()
                },
            ]
        })
        .collect();

    let mut widths = COLUMNS.map(|(header, _)| header.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    let headers = COLUMNS.map(|(header, _)| header.to_owned());
    for row in std::iter::once(&headers).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if COLUMNS[i].1 {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }

    for st in s.streams.iter().filter(|st| !st.last_error.is_empty()) {
        out.push_str(&format!("{}: last error: {}\n", st.name, st.last_error));
    }

    out.push_str(&format!(
        "pid {} | uptime {} | queue {}/{} | files closed {} | write errors {}\n",
        s.pid,
        go_duration(s.uptime_secs),
        s.queue_depth,
        s.queue_capacity,
        s.files_closed,
        s.write_errors,
    ));
    if s.disk_buffer_peak_bytes > 0 || s.disk_stall_max_secs > 0.0 {
        out.push_str(&format!(
            "disk buffer: {}/{} bytes (peak {}) | longest disk operation {:.3}s\n",
            s.disk_buffer_bytes,
            s.disk_buffer_capacity,
            s.disk_buffer_peak_bytes,
            s.disk_stall_max_secs
        ));
    }
    if s.compress_backlog > 0 || s.files_compressed > 0 || s.compress_errors > 0 {
        out.push_str(&format!(
            "compression: {} done, {} waiting, {} failed\n",
            s.files_compressed, s.compress_backlog, s.compress_errors
        ));
    }
    if let Some(n) = &s.nats {
        out.push_str(&format!(
            "nats: {} | published {} | dropped {} | in flight {} | queued {}\n",
            n.state.name(),
            n.published,
            n.dropped,
            n.in_flight,
            n.queued
        ));
    }
    if s.upload_backlog > 0 || s.files_uploaded > 0 || s.upload_errors > 0 {
        out.push_str(&format!(
            "upload: {} done ({} bytes), {} waiting, {} failed attempts\n",
            s.files_uploaded, s.bytes_uploaded, s.upload_backlog, s.upload_errors
        ));
    }
    if s.disk_stopped {
        out.push_str(&format!(
            "DISK FULL: {} bytes free, below disk_stop: messages are counted as lost, not written\n",
            s.disk_free
        ));
    } else if s.disk_low {
        out.push_str(&format!(
            "disk low: {} bytes free, below disk_warn\n",
            s.disk_free
        ));
    }
    out.push_str(&s.go_line());
    out.push('\n');
    out
}

/// How long ago the last message arrived: `-` if none yet, `250ms`, `4.2s`, then `12m34s`.
/// A last message "in the future" (clock stepped back) shows as `0ms`.
fn message_age(last_ns: u64, now_ns: u64) -> String {
    if last_ns == 0 {
        return "-".to_owned();
    }
    let age = Duration::from_nanos(now_ns.saturating_sub(last_ns));
    if age < Duration::from_secs(1) {
        format!("{}ms", age.as_millis())
    } else if age < Duration::from_secs(60) {
        format!("{:.1}s", age.as_secs_f64())
    } else {
        go_duration(age.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ConnState;

    use std::sync::atomic::Ordering::Relaxed;

    use tokio::task::JoinHandle;

    use crate::stats::{StreamSnapshot, StreamStats};

    /// Generous bound on anything a test awaits, so a bug fails the test instead of hanging it.
    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// Stats with one stream "a" whose counters are set to known values.
    fn sample_stats() -> Arc<Stats> {
        let a = Arc::new(StreamStats::new("a", "ws://x/"));
        a.messages.store(42, Relaxed);
        a.bytes.store(4200, Relaxed);
        a.connections.store(3, Relaxed);
        a.dropped.store(7, Relaxed);
        a.last_message_ns.store(1_700_000_000_000_000_000, Relaxed);
        a.set_state(ConnState::Connected);
        a.set_current_file("/data/a/2024-01-01T00.jsonl");
        let stats = Arc::new(Stats::new(vec![a], 10));
        stats.queue_depth.store(2, Relaxed);
        stats.files_closed.store(5, Relaxed);
        stats
    }

    /// Binds at `path` and runs the server in a task.
    fn start(path: &Path, stats: Arc<Stats>) -> (CancellationToken, JoinHandle<()>) {
        let server = StatusServer::bind(path).expect("bind status socket");
        let token = CancellationToken::new();
        let handle = tokio::spawn(server.run(stats, token.clone()));
        (token, handle)
    }

    async fn stop(token: CancellationToken, handle: JoinHandle<()>) {
        token.cancel();
        tokio::time::timeout(TEST_TIMEOUT, handle)
            .await
            .expect("run returns after cancel")
            .expect("run does not panic");
    }

    /// Sends raw bytes and reads everything the server sends until it closes. A reset after the
    /// reply counts as a close: Linux resets a Unix stream whose peer closed with unread input.
    async fn raw_exchange(path: &Path, request: &[u8]) -> Vec<u8> {
        let mut stream = UnixStream::connect(path).await.expect("connect");
        stream.write_all(request).await.expect("send request");
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(TEST_TIMEOUT, stream.read(&mut buf))
                .await
                .expect("server closes in time")
            {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
        reply
    }

    #[tokio::test]
    async fn query_round_trips_the_snapshot() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let stats = sample_stats();
        let (token, handle) = start(&path, Arc::clone(&stats));

        let got = query(&path).await?;
        let expected = stats.snapshot();
        assert_eq!(got.pid, expected.pid);
        assert_eq!(got.total_messages, 42);
        assert_eq!(got.queue_capacity, 10);
        assert_eq!(got.queue_depth, 2);
        assert_eq!(got.files_closed, 5);
        assert_eq!(got.streams.len(), 1);
        let (g, e) = (&got.streams[0], &expected.streams[0]);
        // Rates and uptime move between the two snapshots; everything else must match exactly.
        assert_eq!(
            StreamSnapshot {
                rate_per_sec: 0.0,
                ..g.clone()
            },
            StreamSnapshot {
                rate_per_sec: 0.0,
                ..e.clone()
            }
        );
        assert_eq!(g.name, "a");
        assert_eq!(g.url, "ws://x/");
        assert_eq!(g.state, ConnState::Connected);
        assert_eq!(
            (g.messages, g.bytes, g.reconnects, g.dropped),
            (42, 4200, 2, 7)
        );

        stop(token, handle).await;
        Ok(())
    }

    #[tokio::test]
    async fn socket_is_owner_only() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let _server = StatusServer::bind(&path)?;
        let mode = std::fs::symlink_metadata(&path)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode is {mode:o}");
        Ok(())
    }

    #[tokio::test]
    async fn stale_socket_is_replaced() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        drop(std::os::unix::net::UnixListener::bind(&path)?);
        assert!(std::fs::symlink_metadata(&path)?.file_type().is_socket());
        assert!(matches!(
            query(&path).await,
            Err(StatusError::Refused { .. })
        ));

        let (token, handle) = start(&path, sample_stats());
        assert_eq!(query(&path).await?.total_messages, 42);
        stop(token, handle).await;
        Ok(())
    }

    #[tokio::test]
    async fn live_socket_is_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let (token, handle) = start(&path, sample_stats());

        let err = StatusServer::bind(&path).expect_err("second bind must fail");
        assert!(matches!(err, StatusError::InUse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("status_socket"), "{msg}");

        // The first server is unharmed.
        assert_eq!(query(&path).await?.total_messages, 42);
        stop(token, handle).await;
        Ok(())
    }

    #[tokio::test]
    async fn regular_file_is_refused_and_left_alone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        std::fs::write(&path, "precious")?;

        let err = StatusServer::bind(&path).expect_err("bind over a file must fail");
        assert!(matches!(err, StatusError::NotASocket { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("remove it or choose another `status_socket`"),
            "{msg}"
        );
        assert_eq!(std::fs::read_to_string(&path)?, "precious");

        // The client says the same rather than "stale socket".
        let err = query(&path).await.expect_err("query of a file must fail");
        assert!(matches!(err, StatusError::NotASocket { .. }), "{err:?}");
        Ok(())
    }

    #[tokio::test]
    async fn missing_parent_dir_is_named() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let parent = dir.path().join("nope");
        let path = parent.join("status.sock");
        let err = StatusServer::bind(&path).expect_err("bind without parent must fail");
        assert!(matches!(err, StatusError::NoParentDir { .. }), "{err:?}");
        assert!(err.to_string().contains(&parent.display().to_string()));
        assert!(!parent.exists(), "bind must not create directories");
        Ok(())
    }

    #[tokio::test]
    async fn too_long_path_is_reported() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s".repeat(200));
        let err = StatusServer::bind(&path).expect_err("bind with a long path must fail");
        assert!(matches!(err, StatusError::PathTooLong { .. }), "{err:?}");
        Ok(())
    }

    #[tokio::test]
    async fn idle_client_does_not_block_others() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let (token, handle) = start(&path, sample_stats());

        let _idle = UnixStream::connect(&path).await?;
        // Well under the 5 s request timeout: the query must not wait for the idle client.
        let snap = tokio::time::timeout(Duration::from_secs(3), query(&path)).await??;
        assert_eq!(snap.total_messages, 42);

        // Shutdown does not wait for the idle client's timeout either.
        stop(token, handle).await;
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn silent_client_is_dropped_after_timeout() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let (token, handle) = start(&path, sample_stats());

        let mut idle = UnixStream::connect(&path).await?;
        let started = tokio::time::Instant::now();
        let mut buf = Vec::new();
        // With the clock paused, Tokio advances it to the server's timer once all is idle.
        let n = idle.read_to_end(&mut buf).await?;
        assert_eq!(n, 0, "no reply to a client that sent nothing");
        assert!(started.elapsed() >= REQUEST_TIMEOUT);

        stop(token, handle).await;
        Ok(())
    }

    #[tokio::test]
    async fn oversized_request_gets_an_error_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let (token, handle) = start(&path, sample_stats());

        let reply = raw_exchange(&path, &[b'x'; 2 * MAX_REQUEST_BYTES]).await;
        assert_eq!(reply.last(), Some(&b'\n'), "one full line: {reply:?}");
        let reply: serde_json::Value = serde_json::from_slice(&reply)?;
        let error = reply["error"].as_str().expect("an error field");
        assert!(error.contains("longer than 1024 bytes"), "{error}");

        stop(token, handle).await;
        Ok(())
    }

    #[tokio::test]
    async fn unknown_request_gets_an_error_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let (token, handle) = start(&path, sample_stats());

        let reply = raw_exchange(&path, b"stats\n").await;
        let reply: serde_json::Value = serde_json::from_slice(&reply)?;
        assert_eq!(
            reply,
            serde_json::json!({"error": "unknown request \"stats\", expected \"status\""})
        );

        // A request typed in a terminal that sends CRLF is still understood.
        let reply = raw_exchange(&path, b"status\r\n").await;
        assert_eq!(
            serde_json::from_slice::<Snapshot>(&reply)?.total_messages,
            42
        );

        stop(token, handle).await;
        Ok(())
    }

    #[tokio::test]
    async fn shutdown_removes_the_socket() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let (token, handle) = start(&path, sample_stats());
        assert!(path.exists());

        stop(token, handle).await;
        assert!(!path.exists(), "socket file removed on shutdown");
        assert!(matches!(
            query(&path).await,
            Err(StatusError::NoSocket { .. })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn shutdown_leaves_a_replaced_socket_alone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("status.sock");
        let (token, handle) = start(&path, sample_stats());

        // Someone removes our socket and another server takes the path.
        std::fs::remove_file(&path)?;
        let (token2, handle2) = start(&path, sample_stats());

        stop(token, handle).await;
        assert!(path.exists(), "the other server's socket survives");
        assert_eq!(query(&path).await?.total_messages, 42);

        stop(token2, handle2).await;
        assert!(!path.exists());
        Ok(())
    }

    #[tokio::test]
    async fn missing_socket_error_says_what_to_check() {
        let path = Path::new("/nonexistent-wsrec-dir/status.sock");
        let err = query(path).await.expect_err("no socket there");
        assert!(matches!(err, StatusError::NoSocket { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no status socket at /nonexistent-wsrec-dir/status.sock: is `wsrec record` running, \
             and is this the `status_socket` it was started with?"
        );
    }

    fn table_snapshot() -> Snapshot {
        let stream = |name: &str, state, messages, last_message_ns, file: &str| StreamSnapshot {
            name: name.to_owned(),
            url: "wss://example/".to_owned(),
            state,
            messages,
            bytes: messages * 100,
            rate_per_sec: messages as f64 / 754.0,
            connections: 2,
            reconnects: 1,
            connect_failures: 0,
            dropped: 0,
            raw_unsafe: 0,
            lines_lost: 0,
            subscriptions_failed: 0,
            last_message_ns,
            current_file: file.to_owned(),
            last_error: String::new(),
        };
        let mut quiet = stream("binance-btcusdt", ConnState::Backoff, 0, 0, "");
        quiet.last_error = "connection reset".to_owned();
        quiet.lines_lost = 12;
        Snapshot {
            pid: 4321,
            uptime_secs: 754.0,
            total_messages: 152_340,
            rate_per_min: 7260.123,
            queue_capacity: 1024,
            queue_depth: 3,
            files_closed: 9,
            write_errors: 0,
            compress_backlog: 0,
            files_compressed: 0,
            compress_errors: 0,
            upload_backlog: 0,
            files_uploaded: 0,
            bytes_uploaded: 0,
            upload_errors: 0,
            disk_free: 0,
            disk_low: false,
            disk_stopped: false,
            disk_buffer_bytes: 1_048_576,
            disk_buffer_peak_bytes: 2_097_152,
            disk_buffer_capacity: 67_108_864,
            disk_stall_max_secs: 1.25,
            nats: None,
            streams: vec![
                stream(
                    "a",
                    ConnState::Connected,
                    152_340,
                    1_000_000_000_000,
                    "/data/a.jsonl",
                ),
                quiet,
            ],
        }
    }

    #[test]
    fn table_shows_streams_summary_and_go_line() {
        let now_ns = 1_000_000_000_000 + 1_500_000_000; // 1.5 s after a's last message
        let table = render_table(&table_snapshot(), now_ns);
        let expected = "\
STREAM           STATE        MSGS  RATE/s  RECONN  DROPPED  LOST  LAST MSG AGE  FILE
a                connected  152340  202.04       1        0     0          1.5s  /data/a.jsonl
binance-btcusdt  backoff         0    0.00       1        0    12             -  -
binance-btcusdt: last error: connection reset
pid 4321 | uptime 12m34s | queue 3/1024 | files closed 9 | write errors 0
disk buffer: 1048576/67108864 bytes (peak 2097152) | longest disk operation 1.250s
Uptime: 12m34s | Total Msgs: 152340 | Rate: 7260.12 msg/min
";
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn message_age_formats() {
        assert_eq!(message_age(0, 5), "-");
        assert_eq!(message_age(10, 5), "0ms");
        assert_eq!(message_age(1, 1 + 250_000_000), "250ms");
        assert_eq!(message_age(1, 1 + 754_000_000_000), "12m34s");
    }
}
