//! What can go wrong with the status socket, on either side, each error naming the socket
//! path and the fix; and the error line the server answers a bad request with.

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::QUERY_TIMEOUT;

/// Errors of the status socket, on the daemon side ([`StatusServer::bind`](super::StatusServer::bind)) and the client side
/// ([`query`](super::query)). Each names the socket path and what to do about it.
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

    /// The reply line did not end within [`MAX_REPLY_BYTES`](super::MAX_REPLY_BYTES).
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
pub(super) struct ErrorReply {
    /// What was wrong and what the server expected.
    pub(super) error: String,
}
