//! `wsrec stats`: per stream and per UTC hour, how many messages, how many bytes, the rate, the
//! largest message, `seq` gaps, disconnects and REST snapshots; as a terminal table, `--json` or
//! `--csv`.
//!
//! Bytes and sizes are of the messages as received (base64 decoded, text unescaped), not of
//! the lines. The rate is averaged over the time between a row's first and last message (at
//! least one second). Snapshot lines are counted apart: they are not messages, and their bodies
//! are in neither the bytes nor the largest message. Lines that are not records are counted and
//! left to `wsrec verify`.

use std::collections::BTreeMap;

use serde::Serialize;

use std::path::PathBuf;

use super::{Filter, LineKind, Progress, find_files, format_ts};
use crate::read::{Entry, EventDetail, Item, Order, RecordingFile, Scan};

const HOUR_NS: u64 = 3_600_000_000_000;

/// Figures for one stream in one hour (or in total).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    /// Start of the hour (ns); `None` for totals and for raw lines whose file name has no time.
    pub hour_start_ns: Option<u64>,
    /// Messages.
    pub messages: u64,
    /// Message bytes as received.
    pub bytes: u64,
    /// Messages per second between the first and last message (at least 1 s).
    pub rate_per_sec: f64,
    /// Largest message, bytes.
    pub largest: u64,
    /// `seq` numbers missing (messages lost before the writer).
    pub seq_gaps: u64,
    /// Disconnects (not counting planned ones and shutdown).
    pub disconnects: u64,
    /// Snapshot lines (REST order-book snapshots the recorder fetched).
    pub snapshots: u64,
    /// First receive time.
    pub first_ts: Option<u64>,
    /// Last receive time.
    pub last_ts: Option<u64>,
}

impl Row {
    fn add(&mut self, ts: Option<u64>, size: u64) {
        self.messages += 1;
        self.bytes += size;
        self.largest = self.largest.max(size);
        if let Some(ts) = ts {
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        }
    }

    fn merge(&mut self, o: &Row) {
        self.messages += o.messages;
        self.bytes += o.bytes;
        self.largest = self.largest.max(o.largest);
        self.seq_gaps += o.seq_gaps;
        self.disconnects += o.disconnects;
        self.snapshots += o.snapshots;
        for ts in [o.first_ts, o.last_ts].into_iter().flatten() {
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        }
    }

    fn finish_rate(&mut self) {
        let span_ns = match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => (b - a).max(1_000_000_000),
            _ => 1_000_000_000,
        };
        self.rate_per_sec = self.messages as f64 * 1e9 / span_ns as f64;
    }
}

/// One stream's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamStats {
    /// Stream name.
    pub stream: String,
    /// The whole recording.
    pub total: Row,
    /// Per hour, in time order.
    pub hours: Vec<Row>,
}

/// What `stats` found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsReport {
    /// Files read.
    pub files: u64,
    /// Lines that are not records (see `wsrec verify`).
    pub invalid_lines: u64,
    /// Files that could not be read to the end.
    pub unreadable_files: u64,
    /// Per stream, by name.
    pub streams: Vec<StreamStats>,
}

/// Per-stream accumulation.
#[derive(Default)]
struct Acc {
    hours: BTreeMap<Option<u64>, Row>,
    next_seq: Option<u64>,
    max_conn: u64,
}

/// How `wsrec stats` prints its figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsOutput {
    /// A table for people ([`render_table`]).
    Table,
    /// JSON ([`StatsReport`]).
    Json,
    /// CSV ([`render_csv`]).
    Csv,
}

/// Runs `wsrec stats` on the recordings under `paths`, only `streams` if any.
///
/// # Errors
/// Bad arguments, a failed write, or files that could not be read to the end (after the
/// figures are printed).
pub fn run(paths: &[PathBuf], streams: &[String], output: StatsOutput) -> anyhow::Result<()> {
    let filter = Filter {
        streams: streams.to_vec(),
        ..Filter::default()
    };
    let files = super::select_streams(find_files(paths)?, &filter);
    let total = crate::read::content_size(&files);
    let mut progress = Progress::new(total, true);
    let report = compute(files, &filter, &mut progress);
    progress.finish();
    let text = match output {
        StatsOutput::Csv => render_csv,
        StatsOutput::Table | StatsOutput::Json => render_table,
    };
    super::print_report(&report, output == StatsOutput::Json, text)?;
    if report.invalid_lines > 0 {
        super::to_stderr(&format!(
            "wsrec: warning: {} line(s) were not records and are not counted; `wsrec verify` lists them",
            report.invalid_lines
        ));
    }
    if report.unreadable_files > 0 {
        anyhow::bail!(
            "{} file(s) could not be read to the end; `wsrec verify` says which",
            report.unreadable_files
        );
    }
    Ok(())
}

/// Adds up `files`.
pub fn compute(files: Vec<RecordingFile>, filter: &Filter, progress: &mut Progress) -> StatsReport {
    let mut report = StatsReport::default();
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut scan = Scan::new(files, Order::Files);
    while let Some(item) = scan.next_item() {
        match item {
            Item::Line {
                file,
                format,
                info,
                bytes,
                raw_stream,
                raw_ts,
            } => {
                let entry = match LineKind::of(file, format, &info, bytes) {
                    LineKind::TooLong | LineKind::Torn { .. } => continue,
                    LineKind::Raw => {
                        if filter.stream_ok(raw_stream) {
                            let a = acc.entry(raw_stream.to_owned()).or_default();
                            let hour = raw_ts.map(|t| t - t % HOUR_NS);
                            a.hours
                                .entry(hour)
                                .or_insert_with(|| Row {
                                    hour_start_ns: hour,
                                    ..Row::default()
                                })
                                .add(None, bytes.len() as u64);
                        }
                        continue;
                    }
                    LineKind::Invalid(_) => {
                        report.invalid_lines += 1;
                        continue;
                    }
                    LineKind::Record(entry) => entry,
                };
                if !filter.stream_ok(entry.stream()) {
                    continue;
                }
                let ts = entry.ts();
                let hour = Some(ts - ts % HOUR_NS);
                let a = match acc.get_mut(entry.stream()) {
                    Some(a) => a,
                    None => acc.entry(entry.stream().to_owned()).or_default(),
                };
                let row = a.hours.entry(hour).or_insert_with(|| Row {
                    hour_start_ns: hour,
                    ..Row::default()
                });
                match entry {
                    Entry::Message(m) => {
                        row.add(Some(ts), m.payload.len() as u64);
                        if let Some(next) = a.next_seq
                            && m.seq > next
                        {
                            row.seq_gaps += m.seq - next;
                        }
                        if a.next_seq.is_none_or(|n| m.seq >= n) {
                            a.next_seq = Some(m.seq + 1);
                        }
                    }
                    Entry::Snapshot(_) => row.snapshots += 1,
                    Entry::Event(e) => match &*e.name {
                        "connected" | "connect_failed" => {
                            if e.conn <= a.max_conn {
                                // A new recorder run: seq starts again.
                                a.max_conn = 0;
                                a.next_seq = None;
                            }
                            if e.conn == 1 && a.max_conn == 0 {
                                a.next_seq = Some(0);
                            }
                            a.max_conn = a.max_conn.max(e.conn);
                        }
                        "disconnected" => {
                            let d = EventDetail::parse(bytes);
                            if !matches!(d.reason.as_deref(), Some("shutdown" | "replaced")) {
                                row.disconnects += 1;
                            }
                        }
                        _ => {}
                    },
                }
            }
            Item::FileEnd { .. } => report.files += 1,
            Item::Error(_) => report.unreadable_files += 1,
        }
        progress.update(scan.content_read());
    }
    report.streams = acc
        .into_iter()
        .map(|(stream, a)| {
            let mut total = Row::default();
            let mut hours: Vec<Row> = a.hours.into_values().collect();
            for h in &mut hours {
                total.merge(h);
                h.finish_rate();
            }
            total.finish_rate();
            StreamStats {
                stream,
                total,
                hours,
            }
        })
        .collect();
    report
}

/// `n` bytes as a short human size.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn hour_label(h: Option<u64>) -> String {
    match h {
        Some(ns) => format_ts(ns)[..13].to_owned() + ":00Z",
        None => "(unknown)".to_owned(),
    }
}

/// The figures as an aligned table.
pub fn render_table(r: &StatsReport) -> String {
    let header = [
        "stream",
        "hour (UTC)",
        "messages",
        "bytes",
        "msg/s",
        "largest",
        "gaps",
        "disconnects",
        "snapshots",
    ];
    let mut rows: Vec<[String; 9]> = Vec::new();
    for s in &r.streams {
        let mut line = |label: String, row: &Row| {
            rows.push([
                s.stream.clone(),
                label,
                row.messages.to_string(),
                human_bytes(row.bytes),
                format!("{:.1}", row.rate_per_sec),
                human_bytes(row.largest),
                row.seq_gaps.to_string(),
                row.disconnects.to_string(),
                row.snapshots.to_string(),
            ]);
        };
        for h in &s.hours {
            line(hour_label(h.hour_start_ns), h);
        }
        if s.hours.len() > 1 {
            line("total".to_owned(), &s.total);
        }
    }
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut o = String::new();
    let mut put = |cells: &[String]| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            // Names left-aligned, numbers right-aligned.
            if i < 2 {
                line.push_str(&format!("{cell:<w$}"));
            } else {
                line.push_str(&format!("{cell:>w$}"));
            }
        }
        o.push_str(line.trim_end());
        o.push('\n');
    };
    put(&header.map(str::to_owned));
    for row in &rows {
        put(row);
    }
    if r.streams.is_empty() {
        o.push_str("(no records)\n");
    }
    o
}

/// The figures as CSV, one row per stream and hour plus a `total` row per stream.
pub fn render_csv(r: &StatsReport) -> String {
    let mut o = String::from(
        "stream,hour_start,messages,bytes,rate_per_sec,largest_bytes,seq_gaps,disconnects,snapshots\n",
    );
    for s in &r.streams {
        let rows = s
            .hours
            .iter()
            .map(|h| (hour_label(h.hour_start_ns), h))
            .chain(std::iter::once(("total".to_owned(), &s.total)));
        for (label, row) in rows {
            o.push_str(&format!(
                "{},{label},{},{},{:.3},{},{},{},{}\n",
                csv_field(&s.stream),
                row.messages,
                row.bytes,
                row.rate_per_sec,
                row.largest,
                row.seq_gaps,
                row.disconnects,
                row.snapshots
            ));
        }
    }
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_labels() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(
            hour_label(Some(1_795_514_400_000_000_000)),
            "2026-11-24T10:00Z"
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
