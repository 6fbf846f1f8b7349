//! `wsrec export`: recordings to one Parquet file, for DuckDB, polars, pandas or Spark, which
//! cannot read the JSONL as it is (Binance's `e` and `E` are one name to DuckDB's `read_json`;
//! the messages of one file have no common struct type for polars' `scan_ndjson`).
//!
//! One row per record: typed envelope columns (`ts` as a UTC nanosecond timestamp, `stream`,
//! `conn`, `seq`, `event`) and the message as received, never re-serialised: `msg` holds the
//! JSON text byte-for-byte, `text` a text message that is not JSON, `bin` a binary message's
//! bytes. Events keep their whole line in `detail`, snapshots their request in `snapshot`.
//! See [`schema`].
//!
//! The file is written streaming: rows gather in Arrow builders of at most [`BATCH_ROWS`] rows
//! or [`BATCH_BYTES`] bytes, which go to the Parquet writer; a row group is closed at
//! [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] encoded bytes, so memory stays bounded
//! whatever the recording's size. Columns are zstd-compressed. The file is written under a
//! hidden temporary name next to the output, synced, and renamed into place only when it is
//! complete, so a failed export leaves no half file. SIGINT, SIGTERM and SIGHUP stop it at the
//! next record and remove the temporary; one left by a killed export (`kill -9`, a crash) is
//! removed by the next export to the same output, once its process is gone.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use arrow_array::builder::{
    BinaryBuilder, Int64Builder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{Filter, LineKind, MAX_SKIP_WARNINGS, Progress, UsageError, find_files, interrupt};
use crate::read::{Entry, Item, Order, Payload, RecordingFile, Scan};

/// Rows gathered before they go to the Parquet writer.
pub const BATCH_ROWS: usize = 64 * 1024;
/// Payload bytes gathered before they go to the Parquet writer (a few large messages make a
/// batch on their own).
pub const BATCH_BYTES: usize = 8 << 20;
/// Rows of a row group: DuckDB and polars scan row groups in parallel and skip them by their
/// `ts` and `stream` statistics.
pub const ROW_GROUP_ROWS: usize = 1 << 20;
/// Encoded bytes at which a row group is closed before it has [`ROW_GROUP_ROWS`] rows (large
/// messages): what the writer holds in memory.
pub const ROW_GROUP_BYTES: usize = 32 << 20;
/// The batch and row-group bounds (the constants above; smaller in tests).
#[derive(Clone, Copy, Debug)]
struct Limits {
    batch_rows: usize,
    batch_bytes: usize,
    group_rows: usize,
    group_bytes: usize,
    /// Set when the export is to stop at the next record ([`interrupt::INTERRUPTED`]).
    stop: &'static AtomicBool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch_rows: BATCH_ROWS,
            batch_bytes: BATCH_BYTES,
            group_rows: ROW_GROUP_ROWS,
            group_bytes: ROW_GROUP_BYTES,
            stop: &interrupt::INTERRUPTED,
        }
    }
}

/// zstd level of every column: 1 makes files as small as 3 does here (pages of 1 MiB are
/// compressed one by one) and exports faster (`cargo bench --bench export`: 76.8 against
/// 77.5 MB, 175 against 168 MB/s).
const ZSTD_LEVEL: i32 = 1;
/// What `export` writes, and from what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Which records.
    pub filter: Filter,
    /// Rows in receive-time order across streams instead of file by file.
    pub merge: bool,
    /// Leave snapshot records out.
    pub no_snapshots: bool,
    /// Replace an existing output file.
    pub force: bool,
}

/// What an export wrote and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Of them, messages (envelope or raw lines).
    pub messages: u64,
    /// Of them, events.
    pub events: u64,
    /// Of them, snapshots.
    pub snapshots: u64,
    /// Row groups written.
    pub row_groups: u64,
    /// Lines that are not records (skipped).
    pub invalid: u64,
    /// Torn last lines of closed files (skipped).
    pub torn: u64,
    /// Files that could not be opened or read to their end.
    pub unreadable: u64,
}

/// The Parquet file's columns, in order. `ts` is null only for lines of raw-format files
/// (which carry no time), `conn` too; `seq` only for messages; `event` and `detail` only for
/// events; `snapshot` only for snapshots. Of `msg`, `text` and `bin`, a message or snapshot
/// has exactly one, an event none.
pub fn schema() -> SchemaRef {
    let utc = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("ts", utc, true),
        Field::new("stream", DataType::Utf8, false),
        Field::new("conn", DataType::Int64, true),
        Field::new("seq", DataType::Int64, true),
        Field::new("event", DataType::Utf8, true),
        Field::new("msg", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("bin", DataType::Binary, true),
        Field::new("snapshot", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, true),
    ]))
}

/// Zstd everywhere; dictionaries and statistics only where they pay: `stream`, `event` and
/// `snapshot` repeat, `ts`, `stream`, `conn` and `seq` are what queries filter on. Messages are
/// mostly distinct, so a dictionary would only be built to be given up.
fn properties(limits: Limits) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_created_by(format!("wsrec {}", env!("CARGO_PKG_VERSION")))
        // ZSTD_LEVEL is within zstd's 1..=22: try_new cannot fail.
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default(),
        ))
        .set_max_row_group_size(limits.group_rows);
    for col in ["msg", "text", "bin", "detail"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(col), false)
            .set_column_statistics_enabled(ColumnPath::from(col), EnabledStatistics::None);
    }
    b.set_column_statistics_enabled(ColumnPath::from("snapshot"), EnabledStatistics::None)
        .build()
}

/// Arrow builders of the rows not yet handed to the writer.
struct Columns {
    ts: TimestampNanosecondBuilder,
    stream: StringBuilder,
    conn: Int64Builder,
    seq: Int64Builder,
    event: StringBuilder,
    msg: StringBuilder,
    text: StringBuilder,
    bin: BinaryBuilder,
    snapshot: StringBuilder,
    detail: StringBuilder,
    /// Rows gathered.
    rows: usize,
    /// Payload bytes gathered.
    bytes: usize,
}

/// One row, borrowed from the line it comes from.
#[derive(Default)]
struct Row<'a> {
    ts: Option<i64>,
    stream: &'a str,
    conn: Option<i64>,
    seq: Option<i64>,
    event: Option<&'a str>,
    msg: Option<&'a str>,
    text: Option<&'a str>,
    bin: Option<&'a [u8]>,
    snapshot: Option<&'a str>,
    detail: Option<&'a str>,
}

impl Columns {
    fn new() -> Self {
        Self {
            ts: TimestampNanosecondBuilder::new(),
            stream: StringBuilder::new(),
            conn: Int64Builder::new(),
            seq: Int64Builder::new(),
            event: StringBuilder::new(),
            msg: StringBuilder::new(),
            text: StringBuilder::new(),
            bin: BinaryBuilder::new(),
            snapshot: StringBuilder::new(),
            detail: StringBuilder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    fn push(&mut self, r: &Row<'_>) {
        self.ts.append_option(r.ts);
        self.stream.append_value(r.stream);
        self.conn.append_option(r.conn);
        self.seq.append_option(r.seq);
        self.event.append_option(r.event);
        self.msg.append_option(r.msg);
        self.text.append_option(r.text);
        self.bin.append_option(r.bin);
        self.snapshot.append_option(r.snapshot);
        self.detail.append_option(r.detail);
        self.rows += 1;
        self.bytes += r.stream.len()
            + [r.msg, r.text, r.snapshot, r.detail]
                .iter()
                .flatten()
                .map(|s| s.len())
                .sum::<usize>()
            + r.bin.map_or(0, <[u8]>::len);
    }

    fn is_full(&self, limits: Limits) -> bool {
        self.rows >= limits.batch_rows || self.bytes >= limits.batch_bytes
    }

    /// The gathered rows as a batch of `schema`; the builders start over.
    fn finish(&mut self, schema: &SchemaRef) -> parquet::errors::Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.stream.finish()),
            Arc::new(self.conn.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.event.finish()),
            Arc::new(self.msg.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.bin.finish()),
            Arc::new(self.snapshot.finish()),
            Arc::new(self.detail.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// A Parquet file being written: rows in, batches and row groups out.
struct Sink<W: Write + Send> {
    schema: SchemaRef,
    columns: Columns,
    writer: ArrowWriter<W>,
    limits: Limits,
}

impl<W: Write + Send> Sink<W> {
    fn new(out: W, limits: Limits) -> parquet::errors::Result<Self> {
        let schema = schema();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(properties(limits)))?;
        Ok(Self {
            schema,
            columns: Columns::new(),
            writer,
            limits,
        })
    }

    fn push(&mut self, row: &Row<'_>) -> parquet::errors::Result<()> {
        self.columns.push(row);
        if self.columns.is_full(self.limits) {
            self.write_batch()?;
        }
        Ok(())
    }

    fn write_batch(&mut self) -> parquet::errors::Result<()> {
        if self.columns.rows == 0 {
            return Ok(());
        }
        let batch = self.columns.finish(&self.schema)?;
        self.writer.write(&batch)?;
        if self.writer.in_progress_size() >= self.limits.group_bytes {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Writes what is left and the footer; returns the output and the row groups written.
    fn close(mut self) -> parquet::errors::Result<(W, u64)> {
        self.write_batch()?;
        self.writer.flush()?;
        let groups = self.writer.flushed_row_groups().len() as u64;
        Ok((self.writer.into_inner()?, groups))
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The Parquet encoder failed (or the file under it: its error is said by the encoder's).
    #[error("Parquet encoder: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Writing the output failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A signal stopped the export.
    #[error(transparent)]
    Interrupted(#[from] interrupt::Interrupted),
}

/// Runs `wsrec export`: the recordings under `paths` into the Parquet file `output`, and a
/// one-line summary on stdout.
///
/// # Errors
/// Bad arguments or an existing output without `force` (usage); a file that could not be read
/// to its end (the output is still written, with the lines before the damage); the output could
/// not be written (then it does not exist).
pub fn run(paths: &[PathBuf], output: &Path, opts: &ExportOptions) -> anyhow::Result<()> {
    opts.filter.validate()?;
    check_output(output, opts.force)?;
    let files = super::select_streams(find_files(paths)?, &opts.filter);
    let mut progress = Progress::new(crate::read::content_size(&files), true);
    remove_stale_temporaries(output);
    interrupt::catch();
    let tmp = temporary_name(output);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut stderr = io::stderr().lock();
    let written = export(
        files,
        opts,
        BufWriter::with_capacity(1 << 20, file),
        &mut stderr,
        &mut progress,
    )
    .map_err(anyhow::Error::from)
    .and_then(|(out, summary)| {
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, output)?;
        crate::fsutil::sync_parent(output)?;
        Ok(summary)
    });
    progress.finish();
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context(format!("cannot write {}", output.display())));
        }
    };
    let size = std::fs::metadata(output).map_or(0, |m| m.len());
    // A closed stdout is not a failure of the export: the caller sees a broken pipe as success.
    let said = writeln!(
        io::stdout().lock(),
        "wsrec: {} rows ({} messages, {} events, {} snapshots) in {} row group(s), {} bytes, written to {}",
        summary.rows,
        summary.messages,
        summary.events,
        summary.snapshots,
        summary.row_groups,
        size,
        output.display()
    )
    .context("cannot write to stdout");
    if summary.unreadable > 0 {
        anyhow::bail!(
            "{} file(s) could not be read to the end; see the messages above ({} holds the lines read before the damage)",
            summary.unreadable,
            output.display()
        );
    }
    said
}

/// Refuses an output that is a directory, in a directory that does not exist, or that exists
/// without `force`.
fn check_output(output: &Path, force: bool) -> Result<(), UsageError> {
    if output.as_os_str().is_empty() || output.file_name().is_none() {
        return Err(UsageError(format!(
            "`{}` is not a file name; give the Parquet file to write, e.g. -o out.parquet",
            output.display()
        )));
    }
    let dir = output.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir
        && !dir.is_dir()
    {
        return Err(UsageError(format!(
            "{} is not a directory; create it first, or write the output elsewhere",
            dir.display()
        )));
    }
    match std::fs::metadata(output) {
        Ok(m) if m.is_dir() => Err(UsageError(format!(
            "{} is a directory; give the Parquet file to write, e.g. -o {}",
            output.display(),
            output.join("export.parquet").display()
        ))),
        Ok(_) if !force => Err(UsageError(format!(
            "{} exists; give a new file name, or --force to replace it",
            output.display()
        ))),
        _ => Ok(()),
    }
}

/// `.NAME.PID.tmp` next to `output`: hidden, so no glob for `*.parquet` meets it half written.
fn temporary_name(output: &Path) -> PathBuf {
    output.with_file_name(format!(
        ".{}.{}.tmp",
        output_name(output),
        std::process::id()
    ))
}

fn output_name(output: &Path) -> String {
    output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes the temporaries of earlier exports to `output` whose process is gone (killed before
/// it could remove its own), saying so on stderr. A temporary whose process still runs (or
/// whose number another process took since) is left alone.
fn remove_stale_temporaries(output: &Path) {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(".{}.", output_name(output));
    interrupt::remove_left_behind(dir, &prefix, ".tmp", "an export", |p| {
        std::fs::remove_file(p)
    });
}

/// Writes the selected records of `files` as Parquet to `out`, warnings to `warn`; returns
/// `out` (complete: the footer is written) and what was written.
///
/// # Errors
/// Encoding or writing to `out` failed.
pub fn export<W: Write + Send>(
    files: Vec<RecordingFile>,
    opts: &ExportOptions,
    out: W,
    warn: &mut dyn Write,
    progress: &mut Progress,
) -> Result<(W, ExportSummary), ExportError> {
    export_with(files, opts, out, warn, progress, Limits::default())
}

/// [`export`] within `limits`.
fn export_with<W: Write + Send>(
    files: Vec<RecordingFile>,
    opts: &ExportOptions,
    out: W,
    warn: &mut dyn Write,
    progress: &mut Progress,
    limits: Limits,
) -> Result<(W, ExportSummary), ExportError> {
    let order = if opts.merge {
        Order::Merged
    } else {
        Order::Files
    };
    let mut scan = Scan::new(files, order);
    let mut sink = Sink::new(out, limits)?;
    let mut s = ExportSummary::default();
    let filter = &opts.filter;
    let mut scratch = Vec::new();
    while let Some(item) = scan.next_item() {
        interrupt::check(limits.stop)?;
        match item {
            Item::Line {
                file,
                format,
                info,
                bytes,
                raw_stream,
                raw_ts,
            } => match LineKind::of(file, format, &info, bytes) {
                LineKind::TooLong => skip_line(
                    warn,
                    &mut s,
                    file,
                    info.number,
                    &format!("line longer than {} bytes", crate::read::MAX_LINE),
                ),
                LineKind::Torn { open: true } => {}
                LineKind::Torn { open: false } => {
                    s.torn += 1;
                    let _ = writeln!(
                        warn,
                        "wsrec: warning: {}:{}: the last line has no newline ({} bytes): the file was cut short; skipped",
                        file.path.display(),
                        info.number,
                        bytes.len()
                    );
                }
                LineKind::Raw => {
                    // Raw lines carry no time: the file's interval start stands in for `--to`.
                    let after_end = matches!((raw_ts, filter.to), (Some(t), Some(to)) if t >= to);
                    if filter.stream_ok(raw_stream) && !after_end {
                        sink.push(&raw_row(raw_stream, bytes))?;
                        s.rows += 1;
                        s.messages += 1;
                    }
                }
                LineKind::Invalid(why) => {
                    skip_line(
                        warn,
                        &mut s,
                        file,
                        info.number,
                        &format!("not a record ({why})"),
                    );
                }
                LineKind::Record(entry) => {
                    if !filter.stream_ok(entry.stream()) || !filter.time_ok(entry.ts()) {
                        continue;
                    }
                    if opts.no_snapshots && matches!(entry, Entry::Snapshot(_)) {
                        continue;
                    }
                    match record_row(&entry, bytes, &mut scratch) {
                        Ok(row) => {
                            sink.push(&row)?;
                            s.rows += 1;
                            match entry {
                                Entry::Message(_) => s.messages += 1,
                                Entry::Event(_) => s.events += 1,
                                Entry::Snapshot(_) => s.snapshots += 1,
                            }
                        }
                        Err(why) => skip_line(warn, &mut s, file, info.number, &why),
                    }
                }
            },
            Item::FileEnd { .. } => {}
            Item::Error(e) => {
                s.unreadable += 1;
                let _ = writeln!(warn, "wsrec: error: {e}");
            }
        }
        progress.update(scan.content_read());
    }
    super::warn_skipped_total(warn, s.invalid);
    interrupt::check(limits.stop)?;
    let (out, groups) = sink.close()?;
    s.row_groups = groups;
    Ok((out, s))
}

/// Counts a line that is not exported, with a warning for the first [`MAX_SKIP_WARNINGS`].
fn skip_line(
    warn: &mut dyn Write,
    s: &mut ExportSummary,
    file: &RecordingFile,
    line: u64,
    what: &str,
) {
    s.invalid += 1;
    if s.invalid <= MAX_SKIP_WARNINGS {
        let _ = writeln!(
            warn,
            "wsrec: warning: {}:{line}: {what}; skipped",
            file.path.display()
        );
    }
}

/// The row of a raw-format line: the message verbatim in `msg` when it is JSON, else in `text`
/// (UTF-8) or `bin`; no time, connection or sequence number.
fn raw_row<'a>(stream: &'a str, line: &'a [u8]) -> Row<'a> {
    let mut row = Row {
        stream,
        ..Row::default()
    };
    match std::str::from_utf8(line) {
        Ok(t) if crate::json::is_single_line_json(line) => row.msg = Some(t),
        Ok(t) => row.text = Some(t),
        Err(_) => row.bin = Some(line),
    }
    row
}

/// The row of an envelope record; `line` is the record as written (an event's `detail`), and
/// `scratch` takes a binary message's decoded bytes.
///
/// # Errors
/// A number beyond Parquet's Int64, `bin` that is not base64, or a line that is not UTF-8.
fn record_row<'a>(
    entry: &'a Entry<'a>,
    line: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Result<Row<'a>, String> {
    let int = |name: &str, v: u64| {
        i64::try_from(v).map_err(|_| format!("`{name}` {v} is beyond Parquet's Int64"))
    };
    let mut row = Row {
        ts: Some(int("ts", entry.ts())?),
        stream: entry.stream(),
        conn: Some(int("conn", entry.conn())?),
        ..Row::default()
    };
    let payload = match entry {
        Entry::Message(m) => {
            row.seq = Some(int("seq", m.seq)?);
            &m.payload
        }
        Entry::Snapshot(sn) => {
            row.snapshot = Some(sn.request);
            &sn.payload
        }
        Entry::Event(e) => {
            row.event = Some(&e.name);
            row.detail =
                Some(std::str::from_utf8(line).map_err(|_| "the line is not UTF-8".to_owned())?);
            return Ok(row);
        }
    };
    match payload {
        Payload::Json(j) => row.msg = Some(j),
        Payload::Text(t) => row.text = Some(t),
        Payload::Binary(b64) => {
            use base64::Engine as _;
            scratch.clear();
            base64::engine::general_purpose::STANDARD
                .decode_vec(b64.as_bytes(), scratch)
                .map_err(|e| format!("`bin` is not base64 ({e})"))?;
            let decoded: &'a Vec<u8> = scratch;
            row.bin = Some(decoded);
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A recording of `n` messages of `size` bytes each, in one file under a new directory.
    fn recording(n: usize, size: usize) -> (tempfile::TempDir, Vec<RecordingFile>) {
        let dir = tempfile::tempdir().unwrap();
        let pad = "x".repeat(size.saturating_sub(10));
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!(
                "{{\"ts\":{},\"stream\":\"s\",\"conn\":1,\"seq\":{i},\"msg\":{{\"p\":\"{pad}\"}}}}\n",
                1_795_517_990_000_000_000u64 + i as u64
            ));
        }
        let path = dir.path().join("s-20261124T100000Z.jsonl");
        std::fs::write(&path, text).unwrap();
        let files = crate::read::discover(&[dir.path().to_owned()]).unwrap();
        (dir, files)
    }

    /// Exports `files` within `limits` into memory.
    fn export_in_memory(
        files: Vec<RecordingFile>,
        limits: Limits,
    ) -> Result<(Vec<u8>, ExportSummary), ExportError> {
        export_with(
            files,
            &ExportOptions::default(),
            Vec::new(),
            &mut io::sink(),
            &mut Progress::new(0, false),
            limits,
        )
    }

    /// Exports `files` within `limits`; returns the rows per row group and every `seq`.
    fn export_groups(files: Vec<RecordingFile>, limits: Limits) -> (Vec<i64>, Vec<i64>) {
        let (out, s) = export_in_memory(files, limits).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out)).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups.len() as u64, s.row_groups);
        let mut seqs = Vec::new();
        for batch in reader.build().unwrap() {
            let b = batch.unwrap();
            let seq = b.column(3);
            let seq = seq
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            seqs.extend(seq.values().iter().copied());
        }
        (groups, seqs)
    }

    #[test]
    fn row_groups_close_at_their_row_bound_and_batches_at_theirs() {
        let (_dir, files) = recording(100, 50);
        let limits = Limits {
            batch_rows: 7,
            batch_bytes: usize::MAX,
            group_rows: 25,
            group_bytes: usize::MAX,
            ..Limits::default()
        };
        let (groups, seqs) = export_groups(files, limits);
        assert_eq!(groups, [25, 25, 25, 25]);
        assert_eq!(seqs, (0..100).collect::<Vec<i64>>());
    }

    #[test]
    fn large_messages_close_row_groups_by_size() {
        // 40 messages of 64 KiB: a batch is full at its fourth message (past 200 KiB), and a
        // row group closes after every batch (any encoded size passes 1 byte).
        let (_dir, files) = recording(40, 64 << 10);
        let limits = Limits {
            batch_rows: usize::MAX,
            batch_bytes: 200 << 10,
            group_rows: usize::MAX,
            group_bytes: 1,
            ..Limits::default()
        };
        let (groups, seqs) = export_groups(files, limits);
        assert_eq!(groups, [4; 10]);
        assert_eq!(seqs, (0..40).collect::<Vec<i64>>());
    }

    #[test]
    fn a_stop_ends_the_export_with_an_error() {
        static STOP: AtomicBool = AtomicBool::new(true);
        let (_dir, files) = recording(10, 50);
        let limits = Limits {
            stop: &STOP,
            ..Limits::default()
        };
        let e = export_in_memory(files, limits).expect_err("a stopped export fails");
        assert!(matches!(e, ExportError::Interrupted(_)), "{e}");
    }

    #[test]
    fn temporaries_of_gone_exports_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.parquet");
        let gone = interrupt::ended_process();
        let stale = dir.path().join(format!(".out.parquet.{gone}.tmp"));
        let live = dir
            .path()
            .join(format!(".out.parquet.{}.tmp", std::process::id()));
        let other = dir.path().join(format!(".other.parquet.{gone}.tmp"));
        for p in [&stale, &live, &other] {
            std::fs::write(p, b"PAR1").unwrap();
        }
        remove_stale_temporaries(&output);
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(other.exists());
    }
}
