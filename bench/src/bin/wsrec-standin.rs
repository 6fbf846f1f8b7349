//! `wsrec-standin`: a minimal recorder with the command line of
//! `wsrec record URL -o DIR --name NAME --format envelope|raw` (or `wsrec record -c CONFIG` for
//! the config files the bench writes), used to test the bench itself (servers, runner, checker)
//! without the real recorder, and as a reference point:
//! `cargo run --release -p wsrec-bench -- --wsrec target/release/wsrec-standin`.
//!
//! It writes `DIR/NAME.jsonl` (messages) and `DIR/NAME.events.jsonl` (a "connected" event per
//! connection), one thread per stream, answers pings and the close frame, then exits 0 by
//! itself; a stream configured with `backoff_initial` reconnects after each close until the
//! server refuses. SIGTERM is ignored, so the bench's SIGTERM after the close handshake cannot
//! cut the final flush short.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
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
        ..
    } = Cli::parse().command;
    let result = jobs(url, config, output, name, format).and_then(|jobs| {
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

/// Records one stream: one connection, or (reconnecting) connections until the server refuses.
fn record(job: &Job, drop_every: Option<u64>) -> Result<()> {
    let rest = job
        .url
        .strip_prefix("ws://")
        .with_context(|| format!("only ws:// URLs are supported: {}", job.url))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let name = job.name.as_str();
    std::fs::create_dir_all(&job.dir).with_context(|| format!("creating {}", job.dir.display()))?;
    let mut events = File::create(job.dir.join(format!("{name}.events.jsonl")))?;
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(job.dir.join(format!("{name}.jsonl")))?,
    );
    let mut seq = 0u64;
    for conn in 1u64.. {
        let sock = match TcpStream::connect(host) {
            Ok(sock) => sock,
            Err(e) if conn > 1 && e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Err(e) => return Err(e).with_context(|| format!("connecting to {host}")),
        };
        let c = Connection {
            name,
            conn,
            format: job.format,
            drop_every,
        };
        c.record(sock, host, path, &mut seq, &mut out, &mut events)?;
        out.flush()?;
        if !job.reconnect {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

/// One connection of a stream.
struct Connection<'a> {
    name: &'a str,
    conn: u64,
    format: LineFormat,
    drop_every: Option<u64>,
}

impl Connection<'_> {
    /// Handshakes and records until the server's close; `seq` goes on across connections.
    fn record(
        &self,
        mut sock: TcpStream,
        host: &str,
        path: &str,
        seq: &mut u64,
        out: &mut impl Write,
        events: &mut impl Write,
    ) -> Result<()> {
        let (name, conn, format, drop_every) = (self.name, self.conn, self.format, self.drop_every);
        sock.set_nodelay(true)?;
        let key = "c3RhbmQtaW4ta2V5LTEyMzQ=";
        sock.write_all(ws::upgrade_request(host, path, key).as_bytes())?;
        let mut buf = vec![0u8; 1 << 20];
        let mut end = 0;
        let mut start = loop {
            let n = sock.read(&mut buf[end..])?;
            ensure!(n > 0, "server closed during the handshake");
            end += n;
            if let Some(head) = ws::parse_upgrade_response(&buf[..end], key)? {
                break head;
            }
        };
        writeln!(
            events,
            r#"{{"ts":{},"stream":"{name}","conn":{conn},"event":"connected"}}"#,
            now_ns()
        )?;

        let mut reply = Vec::new();
        loop {
            let frame = match ws::parse_header(&buf[start..end])? {
                Some(h) => {
                    let len = h.frame_len().context("frame too long")?;
                    (end - start >= len).then_some((h, len))
                }
                None => None,
            };
            let Some((h, len)) = frame else {
                // Need more bytes: move the partial frame to the front, grow if it cannot fit.
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
                if let Some(Some(len)) = ws::parse_header(&buf[..end])?.map(|h| h.frame_len())
                    && len > buf.len()
                {
                    buf.resize(len, 0);
                }
                let n = sock.read(&mut buf[end..])?;
                ensure!(n > 0, "server closed the connection without a close frame");
                end += n;
                continue;
            };
            let payload = &buf[start + h.header_len..start + len];
            start += len;
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
                    reply.clear();
                    ws::put_frame(&mut reply, ws::OP_PONG, payload, Some(MASK));
                    sock.write_all(&reply)?;
                }
                ws::OP_PONG => {}
                ws::OP_CLOSE => {
                    out.flush()?;
                    reply.clear();
                    let code = payload.get(..2).unwrap_or(&[0x03, 0xE8]);
                    ws::put_frame(&mut reply, ws::OP_CLOSE, code, Some(MASK));
                    sock.write_all(&reply)?;
                    // Wait for the server to close TCP, as a client should.
                    let mut rest = [0u8; 512];
                    while sock.read(&mut rest).is_ok_and(|n| n > 0) {}
                    return Ok(());
                }
                op => bail!("unexpected opcode {op:#x}"),
            }
        }
    }
}
