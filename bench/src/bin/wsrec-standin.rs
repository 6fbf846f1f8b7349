//! `wsrec-standin`: a minimal single-connection recorder with the command line of
//! `wsrec record URL -o DIR --name NAME --format envelope|raw`, used to test the bench itself
//! (server, runner, checker) without the real recorder, and as a reference point:
//! `cargo run --release -p wsrec-bench -- --wsrec target/release/wsrec-standin`.
//!
//! It writes `DIR/NAME.jsonl` (messages) and `DIR/NAME.events.jsonl` (one "connected" event),
//! answers pings and the close frame, then exits 0 by itself. SIGTERM is ignored, so the bench's
//! SIGTERM after the close handshake cannot cut the final flush short.

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
    /// Record one ws:// URL until the server closes.
    Record {
        /// `ws://host:port/path`.
        url: String,
        /// Output directory.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// Stream name.
        #[arg(long)]
        name: String,
        /// Line format.
        #[arg(long, value_enum, default_value = "envelope")]
        format: LineFormat,
        /// Testing aid: leave out every Kth message, to show the checker catches loss.
        #[arg(long, hide = true)]
        drop_every: Option<u64>,
        /// Accepted for compatibility with `wsrec record`; the stand-in never compresses.
        #[arg(long, hide = true)]
        compress: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LineFormat {
    Envelope,
    Raw,
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
        output,
        name,
        format,
        drop_every,
        compress: _,
    } = Cli::parse().command;
    match record(&url, &output, &name, format, drop_every) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsrec-standin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn record(
    url: &str,
    dir: &std::path::Path,
    name: &str,
    format: LineFormat,
    drop_every: Option<u64>,
) -> Result<()> {
    let rest = url
        .strip_prefix("ws://")
        .with_context(|| format!("only ws:// URLs are supported: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut events = File::create(dir.join(format!("{name}.events.jsonl")))?;
    let mut out =
        BufWriter::with_capacity(1 << 20, File::create(dir.join(format!("{name}.jsonl")))?);

    let mut sock = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
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
        r#"{{"ts":{},"stream":"{name}","conn":0,"event":"connected"}}"#,
        now_ns()
    )?;

    let mut seq = 0u64;
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
                seq += 1;
                if drop_every.is_some_and(|k| seq.is_multiple_of(k)) {
                    continue;
                }
                if format == LineFormat::Envelope {
                    write!(
                        out,
                        r#"{{"ts":{},"stream":"{name}","conn":0,"seq":{seq},"msg":"#,
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
