//! `wsrec-standin`: a minimal recorder with the command line of
//! `wsrec record URL -o DIR --name NAME --format envelope|raw` (or `wsrec record -c CONFIG` for
//! the config files the bench writes), used to test the bench itself (servers, runner, checker)
//! without the real recorder, and as a reference point:
//! `cargo run --release -p wsrec-bench -- --wsrec target/release/wsrec-standin`.
//!
//! It writes `DIR/NAME.jsonl` (messages) and `DIR/NAME.events.jsonl` (a "connected" event per
//! connection), one thread per stream, answers pings and the close frame, then exits 0 by
//! itself; a stream configured with `backoff_initial` reconnects after each close until the
//! server refuses. With `--single-thread` it records every stream on one thread instead, reading
//! whichever sockets `epoll` says are ready: what an event-driven recorder costs at the least
//! (no JSON check, no kernel receive times, no rotation, no journal, no fsync), the floor that
//! wsrec's many-streams and steady figures are measured against. SIGTERM is ignored, so the bench's SIGTERM after the close handshake cannot
//! cut the final flush short.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};

use wsrec_bench::ws;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Record one ws:// URL (or the streams of a config file) until the server closes.
    /// A repeated option takes its last value, as with `wsrec record`.
    #[command(args_override_self = true)]
    Record {
        /// `ws://host:port/path`.
        url: Option<String>,
        /// Config file as wsrec-bench writes it: `output_dir` and `[[stream]]` entries with
        /// `name`, `url`, `format`; a stream with `backoff_initial` reconnects after every close
        /// until the server refuses (the reconnect workload). Files go to
        /// `output_dir/NAME/NAME.jsonl`.
        #[arg(short = 'c', long)]
        config: Option<PathBuf>,
        /// Output directory.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Stream name.
        #[arg(long)]
        name: Option<String>,
        /// Line format.
        #[arg(long, value_enum, default_value = "envelope")]
        format: LineFormat,
        /// Record every stream on one thread with one `epoll` (no reconnects), instead of a
        /// thread per stream: the floor of an event-driven recorder (`--wsrec-arg
        /// --single-thread`).
        #[arg(long)]
        single_thread: bool,
        /// Testing aid: leave out every Kth message, to show the checker catches loss.
        #[arg(long, hide = true)]
        drop_every: Option<u64>,
        /// Accepted for compatibility with `wsrec record`; the stand-in never compresses.
        #[arg(long, hide = true)]
        compress: Option<String>,
        /// Accepted for compatibility with `wsrec record`; the stand-in never rotates.
        #[arg(long, hide = true)]
        rotate: Option<String>,
        /// Accepted for compatibility with `wsrec record`; the stand-in never rotates.
        #[arg(long, hide = true)]
        max_bytes: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineFormat {
    Envelope,
    Raw,
}

/// The part of a wsrec config the stand-in reads (other fields are ignored).
#[derive(Debug, serde::Deserialize)]
struct Config {
    output_dir: PathBuf,
    #[serde(default)]
    stream: Vec<StreamConfig>,
}

#[derive(Debug, serde::Deserialize)]
struct StreamConfig {
    name: String,
    url: String,
    #[serde(default = "envelope")]
    format: LineFormat,
    backoff_initial: Option<String>,
}

fn envelope() -> LineFormat {
    LineFormat::Envelope
}

/// One stream to record.
#[derive(Debug, Clone)]
struct Job {
    url: String,
    /// Directory of its files.
    dir: PathBuf,
    name: String,
    format: LineFormat,
    /// Reconnect after every close until the server refuses.
    reconnect: bool,
}

/// Mask key for the frames this client sends; any value is valid.
const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

fn main() -> ExitCode {
    // SAFETY: setting a signal disposition to SIG_IGN before any thread exists.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let Cmd::Record {
        url,
        config,
        output,
        name,
        format,
        drop_every,
        single_thread,
        ..
    } = Cli::parse().command;
    let result = jobs(url, config, output, name, format).and_then(|jobs| {
        if single_thread {
            return record_on_one_thread(&jobs, drop_every);
        }
        let threads: Vec<_> = jobs
            .into_iter()
            .map(|job| std::thread::spawn(move || record(&job, drop_every)))
            .collect();
        for t in threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a recording thread panicked"))??;
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsrec-standin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The streams to record, from the command line or the config file.
fn jobs(
    url: Option<String>,
    config: Option<PathBuf>,
    output: Option<PathBuf>,
    name: Option<String>,
    format: LineFormat,
) -> Result<Vec<Job>> {
    if let Some(path) = config {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return Ok(config
            .stream
            .into_iter()
            .map(|s| Job {
                dir: config.output_dir.join(&s.name),
                url: s.url,
                name: s.name,
                format: s.format,
                reconnect: s.backoff_initial.is_some(),
            })
            .collect());
    }
    let (Some(url), Some(dir), Some(name)) = (url, output, name) else {
        bail!("give URL, -o DIR and --name NAME, or -c CONFIG");
    };
    Ok(vec![Job {
        url,
        dir,
        name,
        format,
        reconnect: false,
    }])
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `host:port` and path of a `ws://` URL.
fn host_and_path(url: &str) -> Result<(&str, &str)> {
    let rest = url
        .strip_prefix("ws://")
        .with_context(|| format!("only ws:// URLs are supported: {url}"))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// A stream's files: its messages (buffered) and its connection events.
struct Files {
    out: BufWriter<File>,
    events: File,
}

impl Files {
    fn create(job: &Job, buffer: usize) -> Result<Self> {
        let name = &job.name;
        std::fs::create_dir_all(&job.dir)
            .with_context(|| format!("creating {}", job.dir.display()))?;
        Ok(Self {
            events: File::create(job.dir.join(format!("{name}.events.jsonl")))?,
            out: BufWriter::with_capacity(
                buffer,
                File::create(job.dir.join(format!("{name}.jsonl")))?,
            ),
        })
    }
}

/// Records one stream on a thread of its own: one connection, or (reconnecting) connections
/// until the server refuses.
fn record(job: &Job, drop_every: Option<u64>) -> Result<()> {
    let (host, path) = host_and_path(&job.url)?;
    let mut files = Files::create(job, 1 << 20)?;
    let mut seq = 0u64;
    for conn in 1u64.. {
        let mut sock = match TcpStream::connect(host) {
            Ok(sock) => sock,
            Err(e) if conn > 1 && e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Err(e) => return Err(e).with_context(|| format!("connecting to {host}")),
        };
        let mut session = Session::open(
            &mut sock,
            (host, path),
            Lines {
                name: &job.name,
                conn,
                format: job.format,
                drop_every,
            },
            1 << 20,
            &mut files.events,
        )?;
        while session.drain(&mut sock, &mut seq, &mut files.out)? == Step::More {
            let n = sock.read(session.room())?;
            ensure!(n > 0, "server closed the connection without a close frame");
            session.filled(n);
        }
        // Wait for the server to close TCP, as a client should.
        let mut rest = [0u8; 512];
        while sock.read(&mut rest).is_ok_and(|n| n > 0) {}
        files.out.flush()?;
        if !job.reconnect {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

/// Records every stream on this one thread, the way an event-driven recorder does: one
/// connection each, all waited on with one level-triggered `epoll`, one `read` per ready
/// socket per wake-up. Streams do not reconnect.
fn record_on_one_thread(jobs: &[Job], drop_every: Option<u64>) -> Result<()> {
    /// Read buffer per connection to begin with (it grows for a larger frame).
    const READ_BUFFER: usize = 64 << 10;
    struct Conn<'a> {
        sock: TcpStream,
        session: Session<'a>,
        files: Files,
        seq: u64,
        closed: bool,
    }
    if let Some(job) = jobs.iter().find(|j| j.reconnect) {
        bail!(
            "stream {}: --single-thread does not reconnect; leave it out for the reconnect workload",
            job.name
        );
    }
    // SAFETY: plain system call; the descriptor is owned below.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    ensure!(
        epoll >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a descriptor just created and owned by nothing else.
    let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
    let mut conns = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let (host, path) = host_and_path(&job.url)?;
        let mut files = Files::create(job, 64 << 10)?;
        let mut sock = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
        let session = Session::open(
            &mut sock,
            (host, path),
            Lines {
                name: &job.name,
                conn: 1,
                format: job.format,
                drop_every,
            },
            READ_BUFFER,
            &mut files.events,
        )?;
        sock.set_nonblocking(true)?;
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: valid descriptors and a live event.
        let r = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                sock.as_raw_fd(),
                &raw mut event,
            )
        };
        ensure!(r == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        conns.push(Conn {
            sock,
            session,
            files,
            seq: 0,
            closed: false,
        });
    }
    let mut open = conns.len();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    while open > 0 {
        // SAFETY: `events` has room for the count given.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                -1,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("epoll_wait");
        }
        for event in &events[..n as usize] {
            let c = &mut conns[event.u64 as usize];
            match c.sock.read(c.session.room()) {
                Ok(0) => {
                    // The server closed TCP: after its close frame, the end of the stream.
                    ensure!(
                        c.closed,
                        "stream {}: server closed the connection without a close frame",
                        c.session.lines.name
                    );
                    c.files.out.flush()?;
                    // SAFETY: valid descriptors; a null event is allowed for a delete.
                    unsafe {
                        libc::epoll_ctl(
                            epoll.as_raw_fd(),
                            libc::EPOLL_CTL_DEL,
                            c.sock.as_raw_fd(),
                            std::ptr::null_mut(),
                        );
                    }
                    open -= 1;
                }
                Ok(n) if !c.closed => {
                    c.session.filled(n);
                    if c.session.drain(&mut c.sock, &mut c.seq, &mut c.files.out)? == Step::Closed {
                        c.closed = true;
                    }
                }
                // Bytes after the close frame are not looked at.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("stream {}", c.session.lines.name));
                }
            }
        }
    }
    Ok(())
}

/// What the lines of one connection say besides the message.
struct Lines<'a> {
    name: &'a str,
    conn: u64,
    format: LineFormat,
    /// Testing aid (`--drop-every`).
    drop_every: Option<u64>,
}

/// What [`Session::drain`] found.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Every complete frame is written; the next needs more bytes.
    More,
    /// The server's close frame came and was answered.
    Closed,
}

/// One connection past its handshake: the bytes read and not yet parsed.
struct Session<'a> {
    lines: Lines<'a>,
    buf: Vec<u8>,
    /// Parsed up to here.
    start: usize,
    /// Read up to here.
    end: usize,
    /// A pong or close frame being sent.
    reply: Vec<u8>,
}

impl<'a> Session<'a> {
    /// Upgrades `sock` to WebSocket, reading with a buffer of `buffer` bytes, and notes the
    /// connection in `events`.
    fn open(
        sock: &mut TcpStream,
        (host, path): (&str, &str),
        lines: Lines<'a>,
        buffer: usize,
        events: &mut impl Write,
    ) -> Result<Self> {
        sock.set_nodelay(true)?;
        let key = "c3RhbmQtaW4ta2V5LTEyMzQ=";
        sock.write_all(ws::upgrade_request(host, path, key).as_bytes())?;
        let mut buf = vec![0u8; buffer];
        let mut end = 0;
        let start = loop {
            if end == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = sock.read(&mut buf[end..])?;
            ensure!(n > 0, "server closed during the handshake");
            end += n;
            if let Some(head) = ws::parse_upgrade_response(&buf[..end], key)? {
                break head;
            }
        };
        writeln!(
            events,
            r#"{{"ts":{},"stream":"{}","conn":{},"event":"connected"}}"#,
            now_ns(),
            lines.name,
            lines.conn
        )?;
        Ok(Self {
            lines,
            buf,
            start,
            end,
            reply: Vec::new(),
        })
    }

    /// Where the next read goes: the partial frame moved to the front (the buffer grown if the
    /// frame cannot fit), and the room after it.
    fn room(&mut self) -> &mut [u8] {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let need = match ws::parse_header(&self.buf[..self.end]) {
            Ok(Some(h)) => h.frame_len().unwrap_or(0),
            _ => 0,
        };
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        } else if self.end == self.buf.len() {
            // A header split at the very end of a full buffer.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` more bytes were read into [`Self::room`].
    fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// Writes a line for every complete message frame read, answers pings and the close frame.
    fn drain(&mut self, sock: &mut TcpStream, seq: &mut u64, out: &mut impl Write) -> Result<Step> {
        let Lines {
            name,
            conn,
            format,
            drop_every,
        } = self.lines;
        loop {
            let Some(h) = ws::parse_header(&self.buf[self.start..self.end])? else {
                return Ok(Step::More);
            };
            let len = h.frame_len().context("frame too long")?;
            if self.end - self.start < len {
                return Ok(Step::More);
            }
            let payload = &self.buf[self.start + h.header_len..self.start + len];
            self.start += len;
            match h.opcode {
                ws::OP_TEXT | ws::OP_BINARY => {
                    ensure!(h.fin, "fragmented messages are not supported");
                    ensure!(h.mask.is_none(), "server frame is masked");
                    *seq += 1;
                    if drop_every.is_some_and(|k| seq.is_multiple_of(k)) {
                        continue;
                    }
                    if format == LineFormat::Envelope {
                        write!(
                            out,
                            r#"{{"ts":{},"stream":"{name}","conn":{conn},"seq":{seq},"msg":"#,
                            now_ns()
                        )?;
                        out.write_all(payload)?;
                        out.write_all(b"}\n")?;
                    } else {
                        out.write_all(payload)?;
                        out.write_all(b"\n")?;
                    }
                }
                ws::OP_PING => {
                    self.reply.clear();
                    ws::put_frame(&mut self.reply, ws::OP_PONG, payload, Some(MASK));
                    sock.write_all(&self.reply)?;
                }
                ws::OP_PONG => {}
                ws::OP_CLOSE => {
                    out.flush()?;
                    self.reply.clear();
                    let code = payload.get(..2).unwrap_or(&[0x03, 0xE8]);
                    ws::put_frame(&mut self.reply, ws::OP_CLOSE, code, Some(MASK));
                    sock.write_all(&self.reply)?;
                    return Ok(Step::Closed);
                }
                op => bail!("unexpected opcode {op:#x}"),
            }
        }
    }
}
