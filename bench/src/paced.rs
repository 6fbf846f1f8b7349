//! The paced server: many WebSocket connections on one `127.0.0.1:0` listener, each sent its
//! messages at a fixed rate, for the many-streams and steady-rate workloads.
//!
//! Every connection asks for `/<name>` (its stream's name). Once all have connected, the schedule
//! starts: message `k` of connection `i` is due `(k + i / connections) / rate` seconds after the
//! start, so the connections' sends are spread evenly instead of arriving in bursts. One thread
//! does everything with non-blocking sockets and `epoll`: every tick (about 1 ms) it encodes and
//! writes the frames that have become due, then waits for client frames until the next tick.
//! Pings are answered (the pong goes after the frames already queued), the close frame follows a
//! connection's last message (with the CPU window below, every connection's last message), and
//! the run is over when every client has answered it.
//!
//! With [`PacedSpec::gated`], the schedule waits after the connections until the run opens the
//! gate ([`PacedServer::open_gate`]): the spaced-beside-flood run starts the spaced messages once
//! the flood beside them is flowing.
//!
//! With [`PacedSpec::cpu_window`], the server also marks the steady CPU window
//! ([`crate::window`]): it waits for the recorder's CPU clock ([`PacedServer::watch_cpu`]),
//! reads it just before the schedule starts, and holds the close frames back until it has read
//! it again after the last message.
//!
//! The server reports how far behind the schedule it ever sent (`max_lag`): a large figure means
//! the machine could not keep the pace, not that the recorder was slow.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::payload::Payload;
use crate::server::{ClientEnd, ClientTraffic, POLL, check_alive, handshake};
use crate::window::{CpuClock, CpuWindow, Window};
use crate::ws;

/// Period of the sending schedule of most workloads ([`PacedSpec::tick`]).
pub const TICK: Duration = Duration::from_millis(1);
/// `epoll` user data marking the listener.
const LISTENER: u64 = u64::MAX;

/// What to send.
#[derive(Debug, Clone)]
pub struct PacedSpec {
    /// One stream name per connection; the client connects to `/<name>`.
    pub names: Vec<String>,
    /// Messages per connection: messages `0..per_connection` of the payload.
    pub per_connection: u64,
    /// Messages per second on each connection.
    pub rate: f64,
    /// How often the server looks for messages that have become due ([`TICK`], or finer for
    /// messages that must each go alone at their time).
    pub tick: Duration,
    /// Note the wall-clock time each message of the first connection was written (see
    /// [`PacedReport::send_ns`]).
    pub send_times: bool,
    /// Wait after the connections, before the CPU window and the schedule, until
    /// [`PacedServer::open_gate`] is called (or the server's handle drops the gate).
    pub gated: bool,
    /// Measure the steady CPU window: wait after the connections for the clock given to
    /// [`PacedServer::watch_cpu`] (or for the server's handle to drop it), and hold the close
    /// frames back until the window is closed (see [`crate::window`]).
    pub cpu_window: bool,
}

impl PacedSpec {
    /// Messages over all connections.
    pub fn total(&self) -> u64 {
        self.per_connection * self.names.len() as u64
    }
}

/// Timings and traffic of a paced run.
#[derive(Debug, Clone)]
pub struct PacedReport {
    /// Connections served.
    pub connections: usize,
    /// From the server's start until every connection had its handshake.
    pub connect_time: Duration,
    /// Start of the schedule (all connections up).
    pub first_write: Instant,
    /// When the last byte (a close frame) was handed to the kernel.
    pub all_written: Instant,
    /// When the last client's close reply (or EOF) arrived.
    pub client_done: Instant,
    /// Connections that answered the close frame (the others closed TCP).
    pub close_replies: usize,
    /// Client frames over all connections.
    pub traffic: ClientTraffic,
    /// Most a message was sent behind its scheduled time.
    pub max_lag: Duration,
    /// Most bytes waiting for one client to read them (it did not keep up).
    pub max_pending_bytes: usize,
    /// Connections after the expected ones (a client reconnected): accepted and closed at once.
    pub extra_connections: u64,
    /// With [`PacedSpec::send_times`]: for each message of the first connection, the wall-clock
    /// time (ns since the Unix epoch) just before the `write` that first tried to hand its frame
    /// to the kernel; empty otherwise.
    pub send_ns: Vec<u64>,
    /// With [`PacedSpec::cpu_window`] and a clock: the recorder's CPU in the steady window, or
    /// why it could not be read.
    pub cpu_window: Option<Result<CpuWindow, String>>,
    /// How long the close frames were held back after the last message for the window.
    pub close_hold: Duration,
}

impl PacedReport {
    /// From the start of the schedule to the last close reply, without the time the close frames
    /// were held back for the CPU window: the pace.
    pub fn elapsed(&self) -> Duration {
        (self.client_done - self.first_write).saturating_sub(self.close_hold)
    }
}

/// A paced server on its own thread.
pub struct PacedServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Hands the recorder's CPU clock to the server thread (see [`Self::watch_cpu`]).
    cpu_clock: Option<SyncSender<CpuClock>>,
    /// Lets the schedule start (see [`Self::open_gate`]).
    gate: Option<SyncSender<()>>,
    thread: Option<JoinHandle<Result<PacedReport>>>,
}

impl PacedServer {
    /// Binds `127.0.0.1:0` and serves `spec` with messages of `payload`. Gives up at `deadline`
    /// or when [`stop`](Self::stop) is called.
    ///
    /// # Errors
    /// The spec is empty or has duplicate names, binding fails, or the thread cannot start.
    pub fn start(spec: PacedSpec, payload: Payload, deadline: Instant) -> Result<Self> {
        ensure!(!spec.names.is_empty(), "no connections to serve");
        ensure!(spec.rate > 0.0, "the rate must be positive");
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = sync_channel(1);
        let (gate_tx, gate_rx) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("paced-server".into())
            .spawn(move || {
                let signals = Signals {
                    cpu_clock: rx,
                    gate: gate_rx,
                };
                serve(listener, &spec, &payload, &flag, deadline, &signals)
            })
            .context("spawning the paced server thread")?;
        Ok(Self {
            addr,
            stop,
            cpu_clock: Some(tx),
            gate: Some(gate_tx),
            thread: Some(thread),
        })
    }

    /// Gives the server the recorder's CPU clock for the steady window (with
    /// [`PacedSpec::cpu_window`]; otherwise it is not used). Only the first call counts. The
    /// server thread waits for it once every connection is up, so call it as soon as the
    /// recorder is started, or drop the server.
    pub fn watch_cpu(&mut self, clock: CpuClock) {
        if let Some(tx) = self.cpu_clock.take() {
            // The thread may have ended already; then nobody needs the clock.
            let _ = tx.send(clock);
        }
    }

    /// Lets the schedule start (with [`PacedSpec::gated`]; otherwise it is not waited for). Only
    /// the first call counts; the server thread waits for it once every connection is up.
    pub fn open_gate(&mut self) {
        if let Some(tx) = self.gate.take() {
            // The thread may have ended already; then nobody waits.
            let _ = tx.send(());
        }
    }

    /// The `ws://` URL of stream `name`.
    pub fn url(&self, name: &str) -> String {
        format!("ws://{}/{name}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the server thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the server thread to give up at its next tick.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the server thread and returns its report.
    ///
    /// # Errors
    /// Whatever went wrong while serving, or a panic of the server thread.
    pub fn join(mut self) -> Result<PacedReport> {
        // A thread still waiting for the gate or a CPU clock goes on without them.
        self.gate = None;
        self.cpu_clock = None;
        let thread = self.thread.take().context("server already joined")?;
        match thread.join() {
            Ok(result) => result,
            Err(_) => bail!("paced server thread panicked"),
        }
    }
}

impl Drop for PacedServer {
    fn drop(&mut self) {
        self.stop();
        self.gate = None;
        self.cpu_clock = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// Fraction of a message interval this connection's schedule is shifted by.
    phase: f64,
    /// Messages encoded so far.
    sent: u64,
    /// Whether the close frame has been queued.
    close_queued: bool,
    /// Bytes to write; `out[out_pos..]` is still pending.
    out: Vec<u8>,
    out_pos: usize,
    /// Client bytes not yet parsed.
    input: Vec<u8>,
    traffic: ClientTraffic,
    /// How and when the client ended the connection.
    end: Option<(Instant, ClientEnd)>,
}

impl Conn {
    /// Writes what is pending without blocking.
    fn flush(&mut self) -> std::io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Reads what the client sent without blocking and handles whole frames: pings are answered,
    /// a close frame or EOF ends the connection.
    fn read(&mut self, chunk: &mut [u8], now: Instant) -> Result<()> {
        let mut eof = false;
        loop {
            match self.stream.read(chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    eof = true;
                    break;
                }
                Err(e) => return Err(e).context("reading from a client"),
            }
        }
        let mut pos = 0;
        while let Some(h) = ws::parse_header(&self.input[pos..])? {
            let len = h.frame_len().context("client frame too long")?;
            if self.input.len() - pos < len {
                break;
            }
            self.traffic.frames += 1;
            let mut payload = self.input[pos + h.header_len..pos + len].to_vec();
            if let Some(key) = h.mask {
                ws::unmask(&mut payload, key);
            }
            pos += len;
            match h.opcode {
                ws::OP_CLOSE => {
                    self.traffic.close_code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    self.end = Some((now, ClientEnd::CloseReply));
                    break;
                }
                ws::OP_PING => {
                    self.traffic.pings += 1;
                    self.traffic.pongs_sent += 1;
                    ws::put_frame(&mut self.out, ws::OP_PONG, &payload, None);
                }
                ws::OP_PONG => self.traffic.pongs += 1,
                _ => self.traffic.data_frames += 1,
            }
        }
        self.input.drain(..pos);
        if eof && self.end.is_none() {
            self.end = Some((now, ClientEnd::Eof));
        }
        Ok(())
    }
}

/// An `epoll` instance.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> Result<Self> {
        // SAFETY: plain FFI call.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        ensure!(
            fd >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: libc::c_int, data: u64) -> Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        // SAFETY: valid descriptors and a valid pointer to a local.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut event) };
        ensure!(r == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        Ok(())
    }

    /// Waits up to `timeout` (to the microsecond with `epoll_pwait2`, Linux 5.11 and later;
    /// else rounded up to a millisecond); returns the user data of ready descriptors in `out`.
    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration, out: &mut Vec<u64>) {
        out.clear();
        let spec = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
        };
        // SAFETY: `events` is a valid writable buffer of the given length, `spec` a valid
        // timespec, and a null signal mask leaves the mask as it is.
        let mut n = unsafe {
            libc::epoll_pwait2(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                &spec,
                std::ptr::null(),
            )
        };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            // SAFETY: as above.
            n = unsafe {
                libc::epoll_wait(
                    self.0.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    ms,
                )
            };
        }
        // n < 0 is EINTR: nothing ready.
        for e in events.iter().take(usize::try_from(n).unwrap_or(0)) {
            out.push(e.u64);
        }
    }
}

/// Accepts and handshakes every expected connection; returns them indexed like `spec.names`.
fn accept_all(
    listener: &TcpListener,
    spec: &PacedSpec,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<Vec<Conn>> {
    let index: HashMap<String, usize> = spec
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("/{n}"), i))
        .collect();
    let n = spec.names.len();
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    let mut accepted = 0;
    listener.set_nonblocking(true)?;
    while accepted < n {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                check_alive(
                    stop,
                    deadline,
                    &format!("waiting for connections ({accepted} of {n} so far)"),
                )?;
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("accepting a client"),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(POLL))?;
        let (path, pending) = handshake(&mut stream, stop, deadline)?;
        let Some(&i) = index.get(&path) else {
            bail!("a client asked for {path:?}, which is no stream of this run");
        };
        ensure!(
            conns[i].is_none(),
            "{path} connected twice before the schedule started"
        );
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        conns[i] = Some(Conn {
            stream,
            phase: i as f64 / n as f64,
            sent: 0,
            close_queued: false,
            out: Vec::new(),
            out_pos: 0,
            input: pending,
            traffic: ClientTraffic::default(),
            end: None,
        });
        accepted += 1;
    }
    Ok(conns.into_iter().flatten().collect())
}

/// Now, in ns since the Unix epoch (the clock of wsrec's `ts`).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Waits for the recorder's CPU clock; `None` if the server's handle dropped its sender.
fn wait_for_clock(
    rx: &Receiver<CpuClock>,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<Option<CpuClock>> {
    loop {
        match rx.recv_timeout(POLL) {
            Ok(clock) => return Ok(Some(clock)),
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
            Err(RecvTimeoutError::Timeout) => {
                check_alive(stop, deadline, "waiting for the recorder's CPU clock")?;
            }
        }
    }
}

/// Waits until the gate is opened or its sender dropped.
fn wait_for_gate(rx: &Receiver<()>, stop: &AtomicBool, deadline: Instant) -> Result<()> {
    loop {
        match rx.recv_timeout(POLL) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
            Err(RecvTimeoutError::Timeout) => {
                check_alive(stop, deadline, "waiting for the schedule's gate to open")?;
            }
        }
    }
}

/// What the server thread receives from its handle while it runs.
struct Signals {
    /// The recorder's CPU clock ([`PacedServer::watch_cpu`]).
    cpu_clock: Receiver<CpuClock>,
    /// The schedule may start ([`PacedServer::open_gate`]).
    gate: Receiver<()>,
}

/// The whole paced run.
fn serve(
    listener: TcpListener,
    spec: &PacedSpec,
    payload: &Payload,
    stop: &AtomicBool,
    deadline: Instant,
    signals: &Signals,
) -> Result<PacedReport> {
    // This thread's timers to the microsecond, not the default 50 µs of slack: a fine tick
    // sends each message at its time.
    // SAFETY: plain FFI call that changes this thread's timer slack only.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let started = Instant::now();
    let mut conns = accept_all(&listener, spec, stop, deadline)?;
    let connect_time = started.elapsed();
    if spec.gated {
        wait_for_gate(&signals.gate, stop, deadline)?;
    }
    let mut window = if spec.cpu_window {
        wait_for_clock(&signals.cpu_clock, stop, deadline)?.map(|c| Window::open(c, spec.total()))
    } else {
        None
    };
    let epoll = Epoll::new()?;
    epoll.ctl(libc::EPOLL_CTL_ADD, listener.as_raw_fd(), LISTENER)?;
    for (i, c) in conns.iter().enumerate() {
        epoll.ctl(libc::EPOLL_CTL_ADD, c.stream.as_raw_fd(), i as u64)?;
    }
    let (rate, per) = (spec.rate, spec.per_connection);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut ready = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut msg = Vec::new();
    let mut open = conns.len();
    let mut extra_connections = 0;
    let mut max_lag = 0f64;
    let mut max_pending_bytes = 0;
    let mut all_written = None;
    let mut send_ns = Vec::new();
    let t0 = Instant::now();
    let mut next_tick = t0;
    while open > 0 {
        let now = Instant::now();
        if now >= next_tick {
            check_alive(stop, deadline, "sending at the set pace")?;
            let t = (now - t0).as_secs_f64();
            let data_left = conns
                .iter()
                .any(|c| c.end.is_none() && (c.sent < per || c.pending() > 0));
            let may_close = window.as_mut().is_none_or(|w| w.may_close(now, data_left));
            let mut unwritten = false;
            for (i, c) in conns.iter_mut().enumerate() {
                if c.end.is_some() {
                    continue;
                }
                if c.sent < per {
                    // Message k is due at (k + phase) / rate.
                    let due = ((t * rate - c.phase).floor() + 1.0).clamp(0.0, per as f64) as u64;
                    if due > c.sent {
                        max_lag = max_lag.max(t - (c.sent as f64 + c.phase) / rate);
                        if i == 0 && spec.send_times {
                            let at = wall_ns();
                            send_ns.extend((c.sent..due).map(|_| at));
                        }
                        for k in c.sent..due {
                            msg.clear();
                            payload.write_message(k, &mut msg);
                            ws::put_frame(&mut c.out, ws::OP_TEXT, &msg, None);
                        }
                        c.sent = due;
                    }
                }
                if c.sent == per && !c.close_queued && may_close {
                    ws::put_frame(
                        &mut c.out,
                        ws::OP_CLOSE,
                        &ws::close_payload(ws::CLOSE_NORMAL),
                        None,
                    );
                    c.close_queued = true;
                }
                if c.pending() > 0 {
                    c.flush().with_context(|| {
                        format!(
                            "writing to {}: the client went away after {} of {per} messages",
                            spec.names[i], c.sent
                        )
                    })?;
                    max_pending_bytes = max_pending_bytes.max(c.pending());
                }
                unwritten |= !c.close_queued || c.pending() > 0;
            }
            if !unwritten && all_written.is_none() {
                all_written = Some(Instant::now());
            }
            next_tick += spec.tick;
            if next_tick < now {
                // Fell behind (a descheduled thread): do not fire the missed ticks in a burst;
                // the next tick sends everything that became due meanwhile.
                next_tick = now + spec.tick;
            }
        }
        epoll.wait(
            &mut events,
            next_tick.saturating_duration_since(Instant::now()),
            &mut ready,
        );
        let now = Instant::now();
        for &data in &ready {
            if data == LISTENER {
                // A client reconnected: it lost its connection, which the check will show.
                if let Ok((extra, _)) = listener.accept() {
                    extra_connections += 1;
                    drop(extra);
                }
                continue;
            }
            let c = &mut conns[data as usize];
            if c.end.is_some() {
                continue;
            }
            c.read(&mut chunk, now)
                .with_context(|| format!("stream {}", spec.names[data as usize]))?;
            if let Some((_, how)) = c.end {
                ensure!(
                    c.close_queued || how == ClientEnd::CloseReply,
                    "stream {}: the client closed after {} of {per} messages, before the server's close",
                    spec.names[data as usize],
                    c.sent
                );
                epoll.ctl(libc::EPOLL_CTL_DEL, c.stream.as_raw_fd(), 0)?;
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                open -= 1;
            }
        }
    }
    let mut traffic = ClientTraffic::default();
    let mut close_replies = 0;
    let mut client_done = t0;
    for c in &conns {
        let t = &c.traffic;
        traffic.frames += t.frames;
        traffic.data_frames += t.data_frames;
        traffic.pings += t.pings;
        traffic.pongs += t.pongs;
        traffic.pongs_sent += t.pongs_sent;
        traffic.close_code = traffic.close_code.or(t.close_code);
        if let Some((at, how)) = c.end {
            client_done = client_done.max(at);
            close_replies += usize::from(how == ClientEnd::CloseReply);
        }
        ensure!(
            c.sent == per,
            "a client ended after {} of {per} messages",
            c.sent
        );
    }
    Ok(PacedReport {
        connections: conns.len(),
        connect_time,
        first_write: t0,
        all_written: all_written.unwrap_or(client_done),
        client_done,
        close_replies,
        traffic,
        max_lag: Duration::from_secs_f64(max_lag),
        max_pending_bytes,
        extra_connections,
        send_ns,
        close_hold: window.as_ref().map_or(Duration::ZERO, Window::held),
        cpu_window: window.map(Window::finish),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::Message;

    /// What one client got.
    struct Got {
        msgs: Vec<Vec<u8>>,
        /// When the first message and the close frame arrived.
        first_at: Option<Instant>,
        close_at: Instant,
    }

    /// `count` tungstenite clients, each on its own thread, read until the close frame and
    /// return their messages.
    fn clients(server: &PacedServer, names: &[String]) -> Vec<Got> {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let url = server.url(name);
                let addr = server.addr();
                std::thread::spawn(move || {
                    let tcp = TcpStream::connect(addr).unwrap();
                    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let (mut ws, _) = tungstenite::client::client(url, tcp).unwrap();
                    ws.send(Message::Ping(b"x".to_vec().into())).unwrap();
                    let mut msgs = Vec::new();
                    let mut first_at = None;
                    let close_at = loop {
                        match ws.read().unwrap() {
                            Message::Text(t) => {
                                first_at.get_or_insert_with(Instant::now);
                                msgs.push(t.as_bytes().to_vec());
                            }
                            Message::Pong(_) => {}
                            Message::Close(_) => break Instant::now(),
                            other => panic!("unexpected {other:?}"),
                        }
                    };
                    let _ = ws.flush();
                    Got {
                        msgs,
                        first_at,
                        close_at,
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn many_connections_get_their_messages_at_the_pace() {
        let names: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
        let spec = PacedSpec {
            names: names.clone(),
            per_connection: 20,
            rate: 100.0,
            tick: TICK,
            send_times: false,
            gated: false,
            cpu_window: false,
        };
        let payload = Payload::small(100).unwrap();
        let server = PacedServer::start(
            spec,
            payload.clone(),
            Instant::now() + Duration::from_secs(30),
        )
        .unwrap();
        let got = clients(&server, &names);
        let report = server.join().unwrap();
        for c in &got {
            assert_eq!(c.msgs.len(), 20);
            for (k, m) in c.msgs.iter().enumerate() {
                let mut want = Vec::new();
                payload.write_message(k as u64, &mut want);
                assert_eq!(m, &want);
            }
        }
        assert_eq!(report.connections, 40);
        assert_eq!(report.close_replies, 40);
        assert_eq!(report.traffic.pings, 40);
        assert_eq!(report.traffic.pongs_sent, 40);
        // 20 messages at 100/s: about 0.2 s, not a burst.
        let elapsed = report.elapsed();
        assert!(
            elapsed >= Duration::from_millis(190) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
    }

    #[test]
    fn the_cpu_window_spans_every_message_and_no_close_frame() {
        let names: Vec<String> = (0..20).map(|i| format!("s{i:02}")).collect();
        let spec = PacedSpec {
            names: names.clone(),
            per_connection: 10,
            rate: 100.0,
            tick: TICK,
            send_times: false,
            gated: false,
            cpu_window: true,
        };
        let mut server = PacedServer::start(
            spec,
            Payload::small(100).unwrap(),
            Instant::now() + Duration::from_secs(30),
        )
        .unwrap();
        // A clock that notes when it is read and says 1 ms more each time.
        let reads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = reads.clone();
        server.watch_cpu(Box::new(move || {
            let mut r = noted.lock().unwrap();
            r.push(Instant::now());
            Ok(crate::window::CpuReading {
                cpu: Duration::from_millis(r.len() as u64),
                resolution: Duration::from_nanos(1),
            })
        }));
        let got = clients(&server, &names);
        let report = server.join().unwrap();
        let reads = reads.lock().unwrap().clone();
        assert_eq!(reads.len(), 2, "one reading at each end");
        for c in &got {
            assert_eq!(c.msgs.len(), 10);
            assert!(reads[0] < c.first_at.unwrap(), "opened before any message");
            assert!(reads[1] < c.close_at, "closed before any close frame");
        }
        let w = report.cpu_window.clone().unwrap().unwrap();
        assert_eq!(w.messages, 200);
        assert_eq!(w.cpu, Duration::from_millis(1));
        assert!(w.wall >= Duration::from_millis(90), "{w:?}");
        // The close frames waited for the settle time; the pace leaves it out.
        assert!(report.close_hold >= crate::window::SETTLE);
        assert!(report.elapsed() < report.client_done - report.first_write);
    }

    #[test]
    fn without_a_clock_the_window_is_skipped() {
        let spec = PacedSpec {
            names: vec!["a".into()],
            per_connection: 3,
            rate: 100.0,
            tick: TICK,
            send_times: false,
            gated: false,
            cpu_window: true,
        };
        let server = PacedServer::start(
            spec,
            Payload::small(100).unwrap(),
            Instant::now() + Duration::from_secs(30),
        )
        .unwrap();
        let addr = server.addr();
        let url = server.url("a");
        let client = std::thread::spawn(move || {
            let tcp = TcpStream::connect(addr).unwrap();
            let (mut ws, _) = tungstenite::client::client(url, tcp).unwrap();
            let mut n = 0;
            while !matches!(ws.read().unwrap(), Message::Close(_)) {
                n += 1;
            }
            let _ = ws.flush();
            n
        });
        // Joining drops the clock's sender: the server goes on without a window.
        let report = server.join().unwrap();
        assert_eq!(client.join().unwrap(), 3);
        assert!(report.cpu_window.is_none());
        assert_eq!(report.close_hold, Duration::ZERO);
    }

    #[test]
    fn a_gated_schedule_starts_when_the_gate_opens() {
        let spec = PacedSpec {
            names: vec!["a".into()],
            per_connection: 5,
            rate: 1000.0,
            tick: TICK,
            send_times: false,
            gated: true,
            cpu_window: false,
        };
        let mut server = PacedServer::start(
            spec,
            Payload::small(100).unwrap(),
            Instant::now() + Duration::from_secs(30),
        )
        .unwrap();
        let (addr, url) = (server.addr(), server.url("a"));
        let (up_tx, up_rx) = std::sync::mpsc::channel();
        let client = std::thread::spawn(move || {
            let tcp = TcpStream::connect(addr).unwrap();
            let (mut ws, _) = tungstenite::client::client(url, tcp).unwrap();
            up_tx.send(()).unwrap();
            let (mut n, mut first_at) = (0, None);
            while !matches!(ws.read().unwrap(), Message::Close(_)) {
                first_at.get_or_insert_with(Instant::now);
                n += 1;
            }
            let _ = ws.flush();
            (n, first_at.unwrap())
        });
        // The handshake is done: only the gate holds the schedule back now.
        up_rx.recv().unwrap();
        let opened = Instant::now();
        server.open_gate();
        let report = server.join().unwrap();
        let (n, first_at) = client.join().unwrap();
        assert_eq!(n, 5);
        assert!(report.first_write >= opened && first_at > opened);
    }

    #[test]
    fn an_unknown_path_fails_the_run() {
        let spec = PacedSpec {
            names: vec!["a".into()],
            per_connection: 1,
            rate: 10.0,
            tick: TICK,
            send_times: false,
            gated: false,
            cpu_window: false,
        };
        let server = PacedServer::start(
            spec,
            Payload::small(100).unwrap(),
            Instant::now() + Duration::from_secs(10),
        )
        .unwrap();
        let tcp = TcpStream::connect(server.addr()).unwrap();
        let url = format!("ws://{}/b", server.addr());
        let _ = tungstenite::client::client(url, tcp);
        let e = server.join().unwrap_err();
        assert!(format!("{e:#}").contains("\"/b\""), "{e:#}");
    }
}
