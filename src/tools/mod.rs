//! The commands around a recording, after the fact: [`cat`] prints it, `export` writes it as
//! Parquet (cargo feature `parquet`, on by default), [`verify`] checks it
//! (order books included, through [`crate::book`]), [`book`] prints a rebuilt order book,
//! [`summary`] sums it up (`wsrec stats`), [`replay`] serves it as a WebSocket feed again, [`merge`] combines
//! recordings of one feed by redundant recorders, and [`demo`] records
//! embedded real exchange frames through the whole pipeline, offline. All of them read through
//! [`crate::read`], so plain, compressed and still-open files alike, in constant memory.
//!
//! This module holds what they share: the record filter (`--stream`, `--from`, `--to`), the
//! sorting of the lines read ([`LineKind`]: every tool meets bad lines in the same order), time
//! parsing and printing, the usage error (exit code 2) and the progress bar.

pub mod book;
pub mod cat;
pub mod demo;
#[cfg(feature = "parquet")]
pub mod export;
pub mod interrupt;
pub mod merge;
pub mod replay;
pub mod summary;
pub mod venue_seq;
pub mod verify;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::Format;
use crate::read::{self, Entry, LineInfo, RecordingFile};

/// Bad input on the command line (a path, a time, a combination of flags): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Which records a command looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these streams (all when empty).
    pub streams: Vec<String>,
    /// Only records received at or after this time (ns).
    pub from: Option<u64>,
    /// Only records received before this time (ns).
    pub to: Option<u64>,
}

impl Filter {
    /// Whether records of `stream` pass.
    pub fn stream_ok(&self, stream: &str) -> bool {
        self.streams.is_empty() || self.streams.iter().any(|s| s == stream)
    }

    /// Whether a record received at `ts` passes.
    pub fn time_ok(&self, ts: u64) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.to.is_none_or(|t| ts < t)
    }

    /// Checks `--from` is before `--to`.
    ///
    /// # Errors
    /// The range is empty.
    pub fn validate(&self) -> Result<(), UsageError> {
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f >= t
        {
            return Err(UsageError(format!(
                "--from ({}) must be before --to ({}); --to is exclusive",
                format_ts(f),
                format_ts(t)
            )));
        }
        Ok(())
    }
}

/// What a line read from a recording is. Every tool sorts its lines the same way, in this order,
/// and only decides what to do with each kind (warn, count, list as an issue, or skip).
#[derive(Debug)]
pub enum LineKind<'a> {
    /// Longer than [`read::MAX_LINE`]: not read.
    TooLong,
    /// The last line has no newline. `open`: the file is still being written (or a crash left
    /// it), so the writer may be mid-line; otherwise the file was cut short.
    Torn {
        /// The file still has its `.open` suffix.
        open: bool,
    },
    /// A line of a raw-format file: a message verbatim, not an envelope.
    Raw,
    /// Not a record, and why.
    Invalid(String),
    /// A record.
    Record(Entry<'a>),
}

impl<'a> LineKind<'a> {
    /// Sorts line `bytes` of `file` (in `format`), as [`read::Scan`] described it in `info`.
    pub fn of(file: &RecordingFile, format: Format, info: &LineInfo, bytes: &'a [u8]) -> Self {
        if info.too_long {
            Self::TooLong
        } else if info.torn {
            Self::Torn { open: file.is_open }
        } else if format == Format::Raw {
            Self::Raw
        } else {
            match Entry::parse(bytes) {
                Ok(entry) => Self::Record(entry),
                Err(why) => Self::Invalid(why),
            }
        }
    }
}

/// Parses a time for `--from`/`--to`/`--at`: RFC 3339 (`2026-11-24T10:00:00Z`, any offset), a
/// UTC date (`2026-11-24`), a Unix time with its unit (`1796459730s`, `1796459730123ms`,
/// `…us`, `…ns`; seconds may have a fraction), or a bare integer of 19 digits or more:
/// nanoseconds, as the records' `ts`. A shorter bare integer is ambiguous (seconds?
/// milliseconds?) and refused with the forms that say it.
///
/// # Errors
/// A message showing the accepted forms.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() < 19 {
            return Err(format!(
                "`{s}` is ambiguous: say its unit, `{s}s` (seconds), `{s}ms`, `{s}us` or `{s}ns` since the Unix epoch, or give a time such as 2026-11-24T10:00:00Z (a bare integer is read as nanoseconds only with 19 digits or more, as in the records' `ts`)"
            ));
        }
        return s
            .parse()
            .map_err(|_| format!("`{s}` is too large for nanoseconds since the epoch"));
    }
    if let Some(ns) = unix_with_unit(s) {
        return ns
            .ok_or_else(|| format!("`{s}` is outside the range of recordings (1970 to 2554)"));
    }
    let ns = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp_nanos_opt()
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
    } else {
        return Err(format!(
            "`{s}` is not a time: use RFC 3339 (2026-11-24T10:00:00Z), a UTC date (2026-11-24) or nanoseconds since the epoch"
        ));
    };
    ns.and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| format!("`{s}` is outside the range of recordings (1970 to 2554)"))
}

/// A Unix time with a unit suffix (`s`, `ms`, `us`, `ns`) in nanoseconds: `None` if `s` is not
/// of that form, `Some(None)` if it is out of range.
fn unix_with_unit(s: &str) -> Option<Option<u64>> {
    let (number, scale) = [
        ("ns", 1u64),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
    ]
    .into_iter()
    .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n, scale)))?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (number.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let whole: u64 = match whole.parse() {
        Ok(w) => w,
        Err(_) => return Some(None),
    };
    // The fraction, in units of `scale`: at most nanosecond resolution.
    let mut frac_ns = 0u64;
    let mut unit = scale;
    for b in fraction.bytes() {
        unit /= 10;
        frac_ns += u64::from(b - b'0') * unit;
    }
    Some(
        whole
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac_ns)),
    )
}

/// `ns` as RFC 3339 UTC with milliseconds (`2026-11-24T10:59:50.123Z`).
pub fn format_ts(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = (ns % 1_000_000_000) as u32;
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ns.to_string(),
    }
}

/// A duration in ns as a short human string (`1.502 s`, `3 min 20 s`, `2 h 5 min`).
pub fn format_duration_ns(ns: u64) -> String {
    let ms = ns / 1_000_000;
    if ms < 60_000 {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

/// The recording files under `paths`; a usage error when a path does not exist or holds none.
///
/// # Errors
/// A path is missing or has no recordings (usage), or a directory cannot be listed.
pub fn find_files(paths: &[PathBuf]) -> anyhow::Result<Vec<RecordingFile>> {
    match read::discover(paths) {
        Ok(files) if files.is_empty() => Err(UsageError(format!(
            "no recording files (.jsonl or .events.ndjson, maybe .zst or .gz, maybe .open) under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
        Ok(files) => Ok(files),
        Err(e @ read::ReadError::NotFound { .. }) => Err(UsageError(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

/// Drops the files whose records belong to streams `filter` does not want (each file holds one
/// stream; its first line tells which). Files whose stream cannot be told are kept.
pub fn select_streams(files: Vec<RecordingFile>, filter: &Filter) -> Vec<RecordingFile> {
    if filter.streams.is_empty() {
        return files;
    }
    files
        .into_iter()
        .filter(|f| {
            let p = read::probe(f);
            match p.stream {
                Some(s) => filter.stream_ok(&s),
                None if p.raw => filter.stream_ok(&f.name_hints().stream) || f.is_events,
                None => true,
            }
        })
        .collect()
}

/// Prints a command's report to stdout: pretty JSON if `json`, else the text `render` makes.
///
/// # Errors
/// Writing to stdout failed (a closed pipe included: see [`is_broken_pipe`]).
pub fn print_report<T: serde::Serialize>(
    report: &T,
    json: bool,
    render: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(report))?;
    }
    out.flush()?;
    Ok(())
}

/// `cat` and `export` warn about the first this many lines they skip, then sum up the rest.
pub(crate) const MAX_SKIP_WARNINGS: u64 = 20;

/// The closing warning of a read that skipped more lines than it warned about one by one.
pub(crate) fn warn_skipped_total(warn: &mut dyn std::io::Write, skipped: u64) {
    if skipped > MAX_SKIP_WARNINGS {
        let _ = writeln!(
            warn,
            "wsrec: warning: {skipped} lines were not records and were skipped ({MAX_SKIP_WARNINGS} shown above); `wsrec verify` lists them all"
        );
    }
}

/// True if `e` (anywhere in its chain) is a broken pipe: the reader went away (`| head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == pipe)
            // serde_json's writer errors hide the io::Error they wrap.
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(pipe))
    })
}

/// Writes `line` and a newline to stderr; a closed stderr (`wsrec … 2>&1 | head -1`) is not an
/// error: there is no one left to tell.
pub fn to_stderr(line: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(line.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}

/// Runs longer than this get a progress bar.
pub const LONG_RUN: Duration = Duration::from_secs(1);

/// A progress bar over bytes read, drawn on stderr only when stderr is a terminal and the run
/// has lasted [`LONG_RUN`]; otherwise it costs a clock read now and then.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    total: u64,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
    calls: u32,
}

impl Progress {
    /// A progress tracker for `total` bytes; shown only if `wanted` and stderr is a terminal.
    pub fn new(total: u64, wanted: bool) -> Self {
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            total,
            started: Instant::now(),
            bar: None,
            calls: 0,
        }
    }

    /// Reports `done` bytes; cheap enough to call per line.
    pub fn update(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        self.calls = self.calls.wrapping_add(1);
        if !self.calls.is_multiple_of(1024) {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() >= LONG_RUN {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(self.total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            // Start the rate and ETA from here, not from the bytes read before the bar.
            bar.set_position(done);
            bar.reset_eta();
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Removes the bar, if one was drawn.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether stdout is a regular file (`wsrec cat … > out.jsonl`): then `cat` may show progress.
pub fn stdout_is_file() -> bool {
    use std::os::fd::AsFd as _;
    std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_accepted_form() {
        let ns = 1_795_517_990_000_000_000;
        assert_eq!(parse_time("2026-11-24T10:59:50Z"), Ok(ns));
        assert_eq!(parse_time("2026-11-24T11:59:50+01:00"), Ok(ns));
        assert_eq!(parse_time("1795517990000000000"), Ok(ns));
        assert_eq!(parse_time("2026-11-24"), Ok(1_795_478_400_000_000_000));
        assert_eq!(
            parse_time("2026-11-24T10:59:50.123456789Z"),
            Ok(ns + 123_456_789)
        );
        assert_eq!(parse_time("1795517990s"), Ok(ns));
        assert_eq!(parse_time("1795517990.25s"), Ok(ns + 250_000_000));
        assert_eq!(parse_time("1795517990000ms"), Ok(ns));
        assert_eq!(parse_time("1795517990000000us"), Ok(ns));
        assert_eq!(parse_time("1795517990000000000ns"), Ok(ns));
        for bad in [
            "yesterday",
            "",
            "2026-13-01",
            "1969-12-31T00:00:00Z",
            "s",
            "1.s",
            "99999999999999999999s",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        // Seconds or milliseconds without a unit are refused, saying how to write them.
        let e = parse_time("1796459730").unwrap_err();
        assert!(e.contains("`1796459730s` (seconds)"), "{e}");
        assert!(
            parse_time("1796459730123")
                .unwrap_err()
                .contains("ambiguous")
        );
        assert_eq!(format_ts(ns + 123_456_789), "2026-11-24T10:59:50.123Z");
    }

    #[test]
    fn filter_is_half_open() {
        let f = Filter {
            streams: vec!["a".into()],
            from: Some(10),
            to: Some(20),
        };
        assert!(f.stream_ok("a") && !f.stream_ok("b"));
        assert!(f.time_ok(10) && f.time_ok(19) && !f.time_ok(20) && !f.time_ok(9));
        assert!(Filter::default().stream_ok("x"));
        assert!(
            Filter {
                from: Some(5),
                to: Some(5),
                ..Filter::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration_ns(1_502_000_000), "1.502 s");
        assert_eq!(format_duration_ns(200_000_000_000), "3 min 20 s");
        assert_eq!(format_duration_ns(7_500_000_000_000), "2 h 5 min");
    }
}
