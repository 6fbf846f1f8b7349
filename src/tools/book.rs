//! `wsrec book`: an order book rebuilt from a recording alone ([`crate::book`]), printed at a
//! time (`--at`, or the end of the recording), or written every interval (`--every 1s`) as
//! top-N rows in JSON lines or CSV: what a backtest starts from.
//!
//! The recording is read once, merged across streams in receive-time order, in constant
//! memory: every book message goes to the engine (a venue's numbering counts all its books),
//! and only proven books are printed: a book that is broken or waits for its snapshot at that
//! moment has no row. Prices and sizes are the venue's own text.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::{Filter, LineKind, Progress, UsageError, find_files, format_ts};
use crate::book::{Book, BookId, Books, Msg, Position, RestAnswer};
use crate::read::{Entry, Item, Order, Payload, Scan, SnapshotDetail};

/// How `wsrec book` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookFormat {
    /// A table for people.
    Text,
    /// One JSON object per book and moment.
    Jsonl,
    /// One CSV row per book and moment, `bid_price_0,bid_size_0,…` columns.
    Csv,
}

/// What `wsrec book` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookOptions {
    /// The symbol, as the venue writes it (case does not matter).
    pub symbol: String,
    /// Streams and time range read.
    pub filter: Filter,
    /// The moment to print (ns); the end of what is read when `None`.
    pub at: Option<u64>,
    /// Levels per side.
    pub depth: usize,
    /// Write the book at every multiple of this interval.
    pub every: Option<Duration>,
    /// Output format.
    pub format: BookFormat,
}

/// Runs `wsrec book`.
///
/// # Errors
/// Bad arguments (usage), unreadable files, no proven book of the symbol at the moment asked,
/// or a failed write to stdout (a closed pipe ends the command cleanly).
pub fn run(paths: &[PathBuf], opts: &BookOptions) -> anyhow::Result<()> {
    opts.filter.validate()?;
    if opts.depth == 0 {
        return Err(UsageError("--depth must be at least 1".to_owned()).into());
    }
    if opts.every.is_some_and(|d| d.is_zero()) {
        return Err(
            UsageError("--every must be longer than zero (e.g. 1s, 100ms)".to_owned()).into(),
        );
    }
    let files = super::select_streams(find_files(paths)?, &opts.filter);
    let total = crate::read::content_size(&files);
    let mut progress = Progress::new(total, super::stdout_is_file());
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let result = book(
        Scan::new(files, Order::Merged),
        opts,
        &mut out,
        &mut progress,
    );
    let flushed = out.flush();
    progress.finish();
    match result.and_then(|r| flushed.map(|()| r)) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write to stdout"),
        Ok(Outcome {
            rows: 0,
            unreadable,
            seen,
        }) => {
            let when = match (opts.every, opts.at) {
                (Some(_), _) => "at any interval".to_owned(),
                (None, Some(t)) => format!("at {}", format_ts(t)),
                (None, None) => "at the end of the recording".to_owned(),
            };
            let known = if seen.is_empty() {
                "no book of a venue wsrec knows was read by then".to_owned()
            } else {
                format!("books found: {}", seen.join(", "))
            };
            Err(anyhow::anyhow!(
                "no proven book of `{}` {when} ({known}{}); `wsrec verify` says where books break",
                opts.symbol,
                if unreadable > 0 {
                    format!("; {unreadable} file(s) could not be read to the end")
                } else {
                    String::new()
                }
            ))
        }
        Ok(o) if o.unreadable > 0 => Err(anyhow::anyhow!(
            "{} file(s) could not be read to the end; the books printed stop there",
            o.unreadable
        )),
        Ok(_) => Ok(()),
    }
}

/// What a run of [`book`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Books printed (rows, or tables).
    pub rows: u64,
    /// Files that could not be read to their end.
    pub unreadable: u64,
    /// Symbols of the books seen, when none matched (for the error message).
    pub seen: Vec<String>,
}

/// Reads `scan` into the book engine and writes the books of `opts.symbol` to `out`.
///
/// # Errors
/// Writing to `out` failed.
pub fn book(
    mut scan: Scan,
    opts: &BookOptions,
    out: &mut dyn Write,
    progress: &mut Progress,
) -> io::Result<Outcome> {
    let mut books = Books::new();
    let mut outcome = Outcome::default();
    let mut max_conn: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let every = opts
        .every
        .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
    let mut next_tick: Option<u64> = None;
    if opts.format == BookFormat::Csv {
        write_csv_header(out, opts.depth)?;
    }
    let mut last_ts = 0;
    // Connections that ended, applied once time moves past their end: the book at the end of
    // a recording whose recorder stopped cleanly is the book it had when it stopped.
    let mut ended: Vec<(String, u64, u64)> = Vec::new();
    while let Some(item) = scan.next_item() {
        let (file, info, bytes, raw_stream, raw_ts, entry) = match item {
            Item::Line {
                file,
                format,
                info,
                bytes,
                raw_stream,
                raw_ts,
            } => match LineKind::of(file, format, &info, bytes) {
                LineKind::Record(e) => (file, info, bytes, raw_stream, raw_ts, Some(e)),
                LineKind::Raw => (file, info, bytes, raw_stream, raw_ts, None),
                _ => continue,
            },
            Item::FileEnd { .. } => continue,
            Item::Error(_) => {
                outcome.unreadable += 1;
                continue;
            }
        };
        let (stream, ts) = match &entry {
            Some(e) => (e.stream(), e.ts()),
            // Raw lines carry no time: the file's interval start stands in for it.
            None => (raw_stream, raw_ts.unwrap_or(0)),
        };
        let stream = stream.to_owned();
        if !opts.filter.stream_ok(&stream) || opts.filter.to.is_some_and(|t| ts >= t) {
            continue;
        }
        if opts.at.is_some_and(|at| ts > at) {
            break;
        }
        last_ts = last_ts.max(ts);
        end_before(&mut books, &mut ended, ts);
        if let Some(step) = every {
            let mut tick = *next_tick.get_or_insert_with(|| {
                ts.max(opts.filter.from.unwrap_or(0))
                    .div_ceil(step)
                    .saturating_mul(step)
            });
            // The books as they stand before this record, at every tick up to it.
            while tick <= ts && tick != u64::MAX {
                end_before(&mut books, &mut ended, tick);
                outcome.rows += emit(&books, opts, tick, out)?;
                tick = tick.saturating_add(step);
            }
            next_tick = Some(tick);
        }
        let position = Position {
            file: std::sync::Arc::from(file.path.to_string_lossy().as_ref()),
            line: info.number,
        };
        match entry {
            None => {
                if let Ok(text) = std::str::from_utf8(bytes) {
                    let m = Msg {
                        stream: &stream,
                        conn: 0,
                        ts,
                        at: &position,
                    };
                    books.message(&m, text);
                }
            }
            Some(Entry::Message(msg)) => {
                if let Some(text) = msg.payload.content_text() {
                    let m = Msg {
                        stream: &stream,
                        conn: msg.conn,
                        ts,
                        at: &position,
                    };
                    books.message(&m, &text);
                }
            }
            Some(Entry::Snapshot(snap)) => {
                if let Payload::Json(body) = snap.payload {
                    let d = SnapshotDetail::parse(snap.request);
                    let m = Msg {
                        stream: &stream,
                        conn: snap.conn,
                        ts,
                        at: &position,
                    };
                    books.rest(
                        &m,
                        &RestAnswer {
                            symbol: d.symbol.as_deref().unwrap_or(""),
                            url: d.url.as_deref().unwrap_or(""),
                            body,
                        },
                    );
                }
            }
            Some(Entry::Event(e)) => match &*e.name {
                "disconnected" => ended.push((stream.clone(), e.conn, ts)),
                "connected" => {
                    let last = max_conn.entry(stream.clone()).or_insert(0);
                    // A connection number not above the last: a new recorder run.
                    if e.conn <= *last {
                        ended.retain(|(s, _, _)| *s != stream);
                        books.stream_ended(&stream);
                    }
                    *last = e.conn;
                }
                "recovered" => {
                    ended.retain(|(s, _, _)| *s != stream);
                    books.stream_ended(&stream);
                }
                _ => {}
            },
        }
        // Breaks are `wsrec verify`'s business; here only proven books are printed.
        books.take_breaks();
        progress.update(scan.content_read());
    }
    if every.is_none() {
        outcome.rows += emit(&books, opts, opts.at.unwrap_or(last_ts), out)?;
    }
    if outcome.rows == 0 {
        let (reports, _) = books.finish();
        let mut seen: Vec<String> = reports
            .iter()
            .map(|r| format!("{} ({} {})", r.id.symbol, r.id.venue, r.id.channel))
            .collect();
        seen.dedup();
        seen.truncate(20);
        outcome.seen = seen;
    }
    Ok(outcome)
}

/// Ends the connections in `ended` that ended before `ts`.
fn end_before(books: &mut Books, ended: &mut Vec<(String, u64, u64)>, ts: u64) {
    ended.retain(|(stream, conn, at)| {
        if *at < ts {
            books.conn_ended(stream, *conn);
            false
        } else {
            true
        }
    });
}

/// Writes every proven book of the symbol as it stands (the newest connection's, when
/// connections overlap); returns how many.
fn emit(books: &Books, opts: &BookOptions, ts: u64, out: &mut dyn Write) -> io::Result<u64> {
    let mut found: Vec<(&BookId, u64, &Book)> = Vec::new();
    for (id, conn, book) in books.tracker.books_of(&opts.symbol) {
        match found.iter_mut().find(|(i, _, _)| *i == id) {
            Some(f) if f.1 < conn => *f = (id, conn, book),
            Some(_) => {}
            None => found.push((id, conn, book)),
        }
    }
    found.sort_by(|a, b| a.0.cmp(b.0));
    for (id, conn, book) in &found {
        match opts.format {
            BookFormat::Text => write_text(out, id, *conn, book, ts, opts.depth)?,
            BookFormat::Jsonl => write_json(out, id, *conn, book, ts, opts.depth)?,
            BookFormat::Csv => write_csv(out, id, book, ts, opts.depth)?,
        }
    }
    Ok(found.len() as u64)
}

fn write_text(
    out: &mut dyn Write,
    id: &BookId,
    conn: u64,
    book: &Book,
    ts: u64,
    depth: usize,
) -> io::Result<()> {
    writeln!(
        out,
        "[{}] {} {} {} (connection {conn}) at {}",
        id.stream,
        id.venue,
        id.channel,
        id.symbol,
        format_ts(ts)
    )?;
    writeln!(
        out,
        "{:>20} {:>16} | {:<16} ask size",
        "bid size", "bid price", "ask price"
    )?;
    let mut bids = book.bids().take(depth);
    let mut asks = book.asks().take(depth);
    loop {
        let (b, a) = (bids.next(), asks.next());
        if b.is_none() && a.is_none() {
            break;
        }
        let (bs, bp) = b.map_or(("", ""), |l| (l.size.as_str(), l.price.as_str()));
        let (ap, as_) = a.map_or(("", ""), |l| (l.price.as_str(), l.size.as_str()));
        let row = format!("{bs:>20} {bp:>16} | {ap:<16} {as_}");
        writeln!(out, "{}", row.trim_end())?;
    }
    let (nb, na) = book.depth();
    writeln!(out, "({nb} bid and {na} ask levels in all)")?;
    writeln!(out)
}

fn write_json(
    out: &mut dyn Write,
    id: &BookId,
    conn: u64,
    book: &Book,
    ts: u64,
    depth: usize,
) -> io::Result<()> {
    let side = |levels: Vec<[&str; 2]>| serde_json::to_string(&levels).unwrap_or_default();
    let bids = side(
        book.bids()
            .take(depth)
            .map(|l| [l.price.as_str(), l.size.as_str()])
            .collect(),
    );
    let asks = side(
        book.asks()
            .take(depth)
            .map(|l| [l.price.as_str(), l.size.as_str()])
            .collect(),
    );
    let head = serde_json::json!({
        "ts": ts,
        "stream": id.stream,
        "venue": id.venue,
        "channel": id.channel,
        "symbol": id.symbol,
        "conn": conn,
    })
    .to_string();
    // `{…}` without its closing brace, then the sides.
    writeln!(
        out,
        "{},\"bids\":{bids},\"asks\":{asks}}}",
        &head[..head.len() - 1]
    )
}

fn write_csv_header(out: &mut dyn Write, depth: usize) -> io::Result<()> {
    write!(out, "ts,stream,venue,channel,symbol")?;
    for side in ["bid", "ask"] {
        for i in 0..depth {
            write!(out, ",{side}_price_{i},{side}_size_{i}")?;
        }
    }
    writeln!(out)
}

fn write_csv(
    out: &mut dyn Write,
    id: &BookId,
    book: &Book,
    ts: u64,
    depth: usize,
) -> io::Result<()> {
    let venue = serde_json::to_value(id.venue).ok();
    let venue = venue.as_ref().and_then(|v| v.as_str()).unwrap_or("");
    write!(
        out,
        "{ts},{},{venue},{},{}",
        csv_field(&id.stream),
        csv_field(&id.channel),
        csv_field(&id.symbol)
    )?;
    for side in [
        book.bids().take(depth).collect::<Vec<_>>(),
        book.asks().take(depth).collect(),
    ] {
        for i in 0..depth {
            match side.get(i) {
                Some(l) => write!(out, ",{},{}", l.price, l.size)?,
                None => write!(out, ",,")?,
            }
        }
    }
    writeln!(out)
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}
