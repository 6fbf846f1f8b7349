//! Disk stalls: while the disk worker is stuck (held by its test-only pause, as on a disk that
//! does not answer a write or an `fsync`), the connection goes on reading into the disk buffer
//! (`disk_buffer`), so receive times stay true and nothing is lost; a stall longer than the
//! buffer holds makes the writer wait, the message queue fill and `when_full` apply.
//!
//! Real time, a multi-thread runtime and real sockets and files throughout: the stall is a
//! blocked OS thread, which paused tokio time would wait on.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use wsrec::observe::stats::Stats;
use wsrec::{Config, WhenFull};

/// Messages per second of the paced sender.
const RATE: u64 = 50_000;
/// Messages sent every tick of the sender.
const PER_TICK: u64 = 500;
/// The sender's tick: `PER_TICK` messages every 10 ms is `RATE` a second.
const TICK: Duration = Duration::from_millis(1000 * PER_TICK / RATE);

/// Message `n`: about 100 bytes (so a second of them is about 8.5 MB of envelope lines), with
/// its send time in ns.
fn message(n: u64) -> String {
    let sent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(r#"{{"n":{n},"t":{sent},"pad":"{}"}}"#, "x".repeat(60))
}

/// Sends messages `from..to` at [`RATE`], in [`PER_TICK`] batches; returns how long it took.
async fn paced(conn: &mut ServerConn, from: u64, to: u64) -> Duration {
    let started = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    let mut n = from;
    while n < to {
        tick.tick().await;
        let end = (n + PER_TICK).min(to);
        conn.send_all((n..end).map(message)).await;
        n = end;
    }
    started.elapsed()
}

/// The `n` of every message record, in file order.
fn numbers(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .filter_map(|r| r.get("msg").map(|m| m["n"].as_u64().unwrap()))
        .collect()
}

/// Lets the disk worker go on when dropped, so a failing test does not leave it stuck (the
/// runtime waits for it when it shuts down).
struct Stalled(Arc<Stats>);

impl Stalled {
    fn release(&self) {
        self.0.disk_pause.release();
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.release();
    }
}

/// A recorder (config changed by `tweak`) connected to a server and recording into `dir`,
/// whose disk worker is then held and stuck in the pause (its next operation comes at the
/// writer's next hand-off, within a millisecond of the next message). Returns the recorder,
/// the server's side of the connection, the pause, and the number of the next message.
async fn stalled_recording(
    dir: &Path,
    tweak: impl FnOnce(&mut Config),
) -> (Running, ServerConn, Stalled, u64) {
    let mut server = TestServer::start().await;
    let mut cfg = config(dir, vec![stream("feed", &server.url())]);
    tweak(&mut cfg);
    // Twenty seconds past the hour: no rotation during the test.
    let rec = start(cfg, BASE_NS + 30_000_000_000);
    let mut conn = server.accept().await;
    let next = 100;
    conn.send_all((0..next).map(message)).await;
    rec.wait_messages(next).await;
    let (stalled, next) = hold_disk(&rec, &mut conn, next).await;
    (rec, conn, stalled, next)
}

/// Holds the disk worker, which gets stuck in the pause at its next operation: that comes at
/// the writer's next hand-off (the next flush tick, or when the journal's half is full), so
/// `conn` sends ten messages from `next` on every 5 ms until then. Returns the pause and the
/// number of the next message.
async fn hold_disk(rec: &Running, conn: &mut ServerConn, mut next: u64) -> (Stalled, u64) {
    let stalled = Stalled(rec.stats.clone());
    rec.stats.disk_pause.hold();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rec.stats.disk_pause.waiting() {
        assert!(Instant::now() < deadline, "the disk worker never paused");
        conn.send_all((next..next + 10).map(message)).await;
        next += 10;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (stalled, next)
}

/// Sends messages `from..to` as fast as the recorder takes them, from a task of its own
/// (when the recorder stops reading, it waits); gives the connection back when done.
fn flood(mut conn: ServerConn, from: u64, to: u64) -> tokio::task::JoinHandle<ServerConn> {
    tokio::spawn(async move {
        let mut n = from;
        while n < to {
            let end = (n + 1000).min(to);
            conn.send_all((n..end).map(message)).await;
            n = end;
        }
        conn
    })
}

/// Waits until the disk buffer is full: the writer waits for an operation that does not fit,
/// at most a full 512 KiB buffer and a line.
async fn wait_disk_buffer_full(rec: &Running) {
    let capacity = rec.stats.disk_buffer_capacity.load(Relaxed);
    rec.wait_until(|s| s.disk_buffer_bytes.load(Relaxed) + (576 << 10) > capacity)
        .await;
}

/// Messages stream `stream` (0: the only one, in most of these tests) has read.
fn messages_in(stats: &Stats, stream: usize) -> u64 {
    stats.streams[stream].messages.load(Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_goes_on_through_a_two_second_disk_stall_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, mut conn, stalled, next) = stalled_recording(dir.path(), |_| {}).await;
    let stall_started = Instant::now();
    let total = next + 2 * RATE;
    // The sender is a task of its own: when the recorder stops reading, it waits.
    let sender = tokio::spawn(async move {
        let took = paced(&mut conn, next, total).await;
        (conn, took)
    });
    // Every message sent while the disk is stuck is read off the socket (the counter counts
    // what the connection read and handed on), with the worker still stuck: the connection
    // never waited for the disk. With room for only one buffer between the writer and the
    // disk, reading stopped within milliseconds and this never held.
    rec.wait_until(|s| messages_in(s, 0) >= total).await;
    let (_conn, took) = sender.await.unwrap();
    assert!(
        rec.stats.disk_pause.waiting(),
        "the disk worker went on during the stall"
    );
    let stalled_for = stall_started.elapsed();
    assert!(took >= Duration::from_millis(1900), "sent in {took:?}");
    // The operation the worker is stuck on shows while it lasts.
    let so_far = rec.stats.disk_stall_max();
    assert!(
        so_far >= stalled_for,
        "{so_far:?} of a {stalled_for:?} stall"
    );
    // What finished before the stall was quick.
    let before = Duration::from_nanos(rec.stats.disk_stall_max_ns.load(Relaxed));
    assert!(before < stalled_for / 2, "{before:?} before the stall");
    assert_eq!(rec.stats.streams[0].dropped.load(Relaxed), 0);
    let buffered = rec.stats.disk_buffer_bytes.load(Relaxed);
    assert!(
        buffered >= 2 * RATE * 100,
        "{buffered} bytes wait for the disk after {} messages",
        2 * RATE
    );
    assert!(buffered <= rec.stats.disk_buffer_capacity.load(Relaxed));

    stalled.release();
    // The buffer drains, and its memory with it.
    rec.wait_until(|s| s.disk_buffer_bytes.load(Relaxed) == 0)
        .await;
    let longest = Duration::from_nanos(rec.stats.disk_stall_max_ns.load(Relaxed));
    assert!(
        longest >= stalled_for,
        "longest disk operation {longest:?}, stall {stalled_for:?}"
    );
    let snap = rec.stats.snapshot();
    assert!(snap.disk_buffer_peak_bytes >= buffered, "{snap:?}");
    assert!(snap.disk_stall_max_secs >= stalled_for.as_secs_f64());
    rec.stop().await;

    let recs = records(dir.path());
    assert_eq!(numbers(&recs), (0..total).collect::<Vec<_>>());
    assert!(events(&recs, "dropped").is_empty());
    // For information (timing on a shared machine is no assertion): how late the receive
    // times are, from the least of (receive time - send time) on (the recorder's test clock
    // has an offset of its own).
    let mut late: Vec<i128> = recs
        .iter()
        .filter_map(|r| {
            let m = r.get("msg")?;
            Some(i128::from(r["ts"].as_u64()?) - i128::from(m["t"].as_u64()?))
        })
        .collect();
    late.sort_unstable();
    let at = |q: f64| (late[((late.len() - 1) as f64 * q) as usize] - late[0]) as f64 / 1e6;
    eprintln!(
        "receive times late by p50 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms over a \
         {stalled_for:?} stall",
        at(0.5),
        at(0.999),
        at(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_longer_than_the_disk_buffer_holds_drops_newest_and_marks_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, mut conn, stalled, next) = stalled_recording(dir.path(), |cfg| {
        cfg.disk_buffer = 4 << 20;
        cfg.queue_capacity = 1024;
        cfg.when_full = WhenFull::DropNewest;
    })
    .await;
    // Lines of about 85 bytes against a 4 MiB disk buffer and a queue of 1,024 messages: sent
    // until the disk buffer is full and messages are dropped. (A busy machine may drop some
    // sooner, while the writer waits for a core and the small queue fills.)
    let capacity = rec.stats.disk_buffer_capacity.load(Relaxed);
    assert_eq!(capacity, 4 << 20);
    let mut total = next;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (dropped, peak) = loop {
        let to = total + RATE / 10;
        paced(&mut conn, total, to).await;
        total = to;
        rec.wait_until(|s| messages_in(s, 0) >= total).await;
        let dropped = rec.stats.streams[0].dropped.load(Relaxed);
        let peak = rec.stats.disk_buffer_peak.load(Relaxed);
        // The writer waits only for an operation that does not fit: at most a full 512 KiB
        // buffer (and a line) short of the bound.
        if dropped > 0 && peak + (576 << 10) > capacity {
            break (dropped, peak);
        }
        assert!(
            Instant::now() < deadline,
            "the disk buffer never filled: {:?}",
            rec.stats.snapshot()
        );
    };
    assert!(rec.stats.disk_pause.waiting());
    assert!(peak <= capacity, "peak {peak} of {capacity}");
    assert_eq!(rec.stats.streams[0].lines_lost.load(Relaxed), 0);

    stalled.release();
    rec.wait_until(|s| s.disk_buffer_bytes.load(Relaxed) == 0 && s.queue_depth.load(Relaxed) == 0)
        .await;
    // The next messages, accepted again, carry the mark of the gap in front of them.
    let after = total + 10;
    conn.send_all((total..after).map(message)).await;
    rec.wait_messages(after).await;
    rec.stop().await;

    let recs = records(dir.path());
    let got = numbers(&recs);
    assert_eq!(got.len() as u64 + dropped, after, "{dropped} dropped");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert_eq!(got.last(), Some(&(after - 1)));
    let marks = events(&recs, "dropped");
    let marked: u64 = marks.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(marked, dropped, "{marks:?}");
    // Each mark sits where its gap is: right before the first message after it.
    for mark in marks {
        let at = recs.iter().position(|r| r == mark).unwrap();
        let before = recs[..at].iter().rev().find_map(|r| r.get("msg"));
        let after = recs[at..].iter().find_map(|r| r.get("msg"));
        let (Some(b), Some(a)) = (before, after) else {
            panic!("a mark at the edge of the recording: {mark}");
        };
        assert!(
            a["n"].as_u64().unwrap() > b["n"].as_u64().unwrap() + 1,
            "{mark}"
        );
    }
    assert!(events(&recs, "write_error_gap").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_longer_than_the_disk_buffer_holds_blocks_reading_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, conn, stalled, next) =
        stalled_recording(dir.path(), |cfg| cfg.disk_buffer = 1 << 20).await;
    // About 20 MB of messages, sent as fast as the recorder takes them: far more than the
    // recorder's buffers hold (the 1 MiB disk buffer, a writer buffer, the queue's 256 KiB).
    let total = next + 200_000;
    let sender = flood(conn, next, total);
    wait_disk_buffer_full(&rec).await;
    // The writer waits for room, the queue fills, and under `block` the connection waits
    // rather than drop: reading stops until the disk goes on (what was not read waits in the
    // sockets, or in the sender).
    assert!(messages_in(&rec.stats, 0) < total);
    assert!(rec.stats.disk_pause.waiting());
    stalled.release();
    let _conn = sender.await.unwrap();
    rec.wait_messages(total).await;
    let capacity = rec.stats.disk_buffer_capacity.load(Relaxed);
    let peak = rec.stats.disk_buffer_peak.load(Relaxed);
    assert!(peak <= capacity, "peak {peak} of {capacity}");
    assert_eq!(rec.stats.streams[0].dropped.load(Relaxed), 0);
    assert_eq!(rec.stats.streams[0].lines_lost.load(Relaxed), 0);
    rec.stop().await;

    let recs = records(dir.path());
    assert_eq!(numbers(&recs), (0..total).collect::<Vec<_>>());
    assert!(events(&recs, "dropped").is_empty());
}

/// The journal's fall-back: while the disk worker is stuck, the journal's halves fill and the
/// half it would start next still holds lines the disk has not written, so the idle moments
/// hand their lines to the disk worker directly, as without a journal (counted in
/// `journal_fallbacks`). When the disk comes back the journal starts its other half again, and
/// every message is in the file, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_whose_halves_fill_during_a_stall_falls_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = tempfile::tempdir().unwrap();
    let (rec, mut conn, stalled, mut next) = stalled_recording(dir.path(), |cfg| {
        cfg.journal_dir = Some(journal.path().to_owned());
        // No flush tick during the test: only the idle moments move lines, so what reaches
        // the disk worker while the journal is stuck went there by the fall-back.
        cfg.flush_interval = Duration::from_secs(3600);
    })
    .await;
    assert!(
        rec.stats.journal_bytes.load(Relaxed) > 0,
        "the journal is in use"
    );
    assert_eq!(rec.stats.journal_fallbacks.load(Relaxed), 0);
    // Small bursts with pauses between them, so the writer has idle moments, each of which
    // copies its lines into the journal: about 1,600 lines of ~170 bytes fill both 128 KiB
    // halves; the second cannot be followed by the first, which the stuck disk has not written.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rec.stats.journal_fallbacks.load(Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the journal never fell back");
        conn.send_all((next..next + 50).map(message)).await;
        next += 50;
        rec.wait_messages(next).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        rec.stats.disk_pause.waiting(),
        "the disk worker went on during the stall"
    );
    // Falling back: the lines of the next idle moments wait for the disk worker.
    let waiting = rec.stats.disk_buffer_bytes.load(Relaxed);
    conn.send_all((next..next + 100).map(message)).await;
    next += 100;
    rec.wait_until(|s| s.disk_buffer_bytes.load(Relaxed) > waiting)
        .await;
    let halves = rec.stats.journal_halves.load(Relaxed);
    stalled.release();
    // The disk writes what it held; at the next idle moment the journal starts its other half
    // again.
    rec.wait_until(|s| s.disk_buffer_bytes.load(Relaxed) == 0)
        .await;
    conn.send_all((next..next + 10).map(message)).await;
    next += 10;
    rec.wait_messages(next).await;
    rec.wait_until(|s| s.journal_halves.load(Relaxed) > halves)
        .await;
    let snap = rec.stats.snapshot();
    assert!(snap.journal_fallbacks >= 1, "{snap:?}");
    assert_eq!(rec.stats.streams[0].dropped.load(Relaxed), 0);
    rec.stop().await;

    let recs = records(dir.path());
    assert_eq!(numbers(&recs), (0..next).collect::<Vec<_>>());
    assert!(events(&recs, "dropped").is_empty());
    assert!(events(&recs, "write_error_gap").is_empty());
}

/// A stream that sends faster than the disk writes holds up no other. With the disk worker
/// held and a 1 MiB disk buffer, a flood on one stream fills the disk buffer, the writer
/// waits, the flood fills the shared queue and its connection waits too; the other stream
/// goes on reading into its own room in the queue, message after message, while the disk is
/// still stuck. When the disk comes back both are complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_disk_cannot_keep_up_with_holds_up_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut busy_server = TestServer::start().await;
    let mut quiet_server = TestServer::start().await;
    let mut cfg = config(
        dir.path(),
        vec![
            stream("busy", &busy_server.url()),
            stream("quiet", &quiet_server.url()),
        ],
    );
    cfg.disk_buffer = 1 << 20;
    // A small shared room, which the flood fills at once when the writer waits.
    cfg.queue_capacity = 64;
    let rec = start(cfg, BASE_NS + 30_000_000_000);
    let mut busy = busy_server.accept().await;
    let mut quiet = quiet_server.accept().await;
    quiet.send_all([message(0)]).await;
    rec.wait_until(|s| messages_in(s, 1) == 1).await;
    let next = 100;
    busy.send_all((0..next).map(message)).await;
    rec.wait_messages(next).await;
    let (stalled, next) = hold_disk(&rec, &mut busy, next).await;
    // About 20 MB, far more than the disk buffer, a writer buffer and the queue hold.
    let total = next + 200_000;
    let sender = flood(busy, next, total);
    wait_disk_buffer_full(&rec).await;
    // The writer waits for the disk; the flood takes what the queue has left. The quiet
    // stream's messages are each read while the disk is stuck: one at a time, each waited
    // for (a connection waiting for room would read no second one).
    for n in 1..=20 {
        quiet.send_all([message(n)]).await;
        rec.wait_until(|s| messages_in(s, 1) == n + 1).await;
    }
    assert!(rec.stats.disk_pause.waiting());
    assert!(
        messages_in(&rec.stats, 0) < total,
        "the flood was never held up"
    );
    stalled.release();
    let _busy = sender.await.unwrap();
    rec.wait_until(|s| messages_in(s, 0) == total).await;
    assert_eq!(rec.stats.streams[1].dropped.load(Relaxed), 0);
    rec.stop().await;

    let mut by_stream: [Vec<u64>; 2] = Default::default();
    for r in records(dir.path()) {
        let Some(m) = r.get("msg") else { continue };
        let i = usize::from(r["stream"] == "quiet");
        by_stream[i].push(m["n"].as_u64().unwrap());
    }
    assert_eq!(by_stream[0], (0..total).collect::<Vec<_>>());
    assert_eq!(by_stream[1], (0..=20).collect::<Vec<_>>());
}
