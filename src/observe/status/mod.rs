//! The status socket: the recorder serves its live counters on a Unix socket, and `wsrec status`
//! asks for them.
//!
//! The protocol is one line each way, so it can be driven by hand
//! (`echo status | nc -U wsrec.sock`) as well as by [`query`]:
//!
//! - the client sends `status\n` (at most [`MAX_REQUEST_BYTES`], newline included);
//! - the server answers one line, the JSON of [`Stats::snapshot`](crate::observe::stats::Stats::snapshot), or `{"error":"..."}` for a
//!   request it does not understand, then closes.
//!
//! The daemon side ([`StatusServer`]) only ever reads atomics through [`Stats::snapshot`](crate::observe::stats::Stats::snapshot), so a
//! slow or hostile client can cost a little CPU but can never stall the recorder: every client is
//! served in its own task, under read and write timeouts. The socket file is owner-only (0600)
//! because the counters, though free of secrets, are nobody else's business.
//!
//! The parts: `daemon` (binding and serving, [`StatusServer`]), `client` ([`query`]), `table`
//! ([`render_table`], for people) and `error` ([`StatusError`]); the protocol's limits are here.

use std::time::Duration;

mod client;
mod daemon;
mod error;
mod table;

pub use client::query;
pub use daemon::StatusServer;
pub use error::StatusError;
pub use table::render_table;

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

#[cfg(test)]
mod tests {
    use super::table::message_age;
    use super::*;

    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;
    use tokio::task::JoinHandle;
    use tokio_util::sync::CancellationToken;

    use crate::observe::stats::{ConnState, Snapshot, Stats, StreamSnapshot, StreamStats};

    /// Generous bound on anything a test awaits, so a bug fails the test instead of hanging it.
    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// Stats with one stream "a" whose counters are set to known values.
    fn sample_stats() -> Arc<Stats> {
        let a = Arc::new(
            StreamStats::new("a", "ws://x/").with_tags([("region".to_owned(), "eu".to_owned())]),
        );
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
        assert_eq!(g.tags.get("region").map(String::as_str), Some("eu"));

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
            snapshots: 0,
            snapshot_failures: 0,
            last_message_ns,
            current_file: file.to_owned(),
            last_error: String::new(),
            tags: Default::default(),
        };
        let mut quiet = stream("binance-btcusdt", ConnState::Backoff, 0, 0, "");
        quiet.last_error = "connection reset".to_owned();
        quiet.lines_lost = 12;
        quiet.tags = [("region", "eu"), ("role", "backup")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
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
            journal_bytes: 3_145_728,
            journal_halves: 12,
            journal_fallbacks: 1,
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
binance-btcusdt: tags: region=eu role=backup
binance-btcusdt: last error: connection reset
pid 4321 | uptime 12m34s | queue 3/1024 | files closed 9 | write errors 0
disk buffer: 1048576/67108864 bytes (peak 2097152) | longest disk operation 1.250s
journal: 3145728 bytes kept | 12 halves | behind the disk 1 times
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
