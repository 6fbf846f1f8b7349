//! `wsrec cat`: prints the records of recording files and directories (or, with `--msg`, only
//! the messages, byte-for-byte as received), filtered by stream and receive time, file by file
//! or merged across streams in receive-time order.
//!
//! Snapshot lines (REST order-book snapshots the recorder fetched) are printed where they are,
//! in receive order, like every record; with `--msg` their body is printed like a message, so
//! the output is the book's start followed by its diffs (as tardis-machine's raw replay
//! interleaves its generated snapshots). `--no-snapshots` leaves them out.
//!
//! Lines that are not records are skipped with a warning on stderr naming file and line; the
//! torn last line of an `.open` file (the writer is mid-line) is skipped silently. A reader that
//! goes away (`wsrec cat … | head`) ends the command cleanly.

use std::io::{self, Write};

use anyhow::Context as _;

use std::path::PathBuf;

use super::{Filter, LineKind, MAX_SKIP_WARNINGS, Progress, find_files};
use crate::read::{Entry, Item, Order, RecordingFile, Scan};

/// What `cat` prints, and from what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatOptions {
    /// Which records.
    pub filter: Filter,
    /// Only the messages (text as received, binary decoded), no events.
    pub msg_only: bool,
    /// Merge all files by receive time instead of file by file.
    pub merge: bool,
    /// Leave snapshot lines out.
    pub no_snapshots: bool,
}

/// What `cat` saw besides the records it printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatSummary {
    /// Lines printed.
    pub printed: u64,
    /// Lines that are not records (skipped).
    pub invalid: u64,
    /// Torn last lines of closed files (skipped).
    pub torn: u64,
    /// Files that could not be opened or read to their end.
    pub unreadable: u64,
}

/// Runs `wsrec cat` on the recordings under `paths`.
///
/// # Errors
/// Bad arguments (usage), a file that could not be read, or a failed write to stdout; a
/// closed pipe is not an error.
pub fn run(paths: &[PathBuf], opts: &CatOptions) -> anyhow::Result<()> {
    opts.filter.validate()?;
    let files = super::select_streams(find_files(paths)?, &opts.filter);
    let total = crate::read::content_size(&files);
    let mut progress = Progress::new(total, super::stdout_is_file());
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut stderr = io::stderr().lock();
    let result = cat(files, opts, &mut out, &mut stderr, &mut progress)
        .and_then(|summary| out.flush().map(|()| summary));
    progress.finish();
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write to stdout"),
        Ok(s) if s.unreadable > 0 => Err(anyhow::anyhow!(
            "{} file(s) could not be read to the end; see the messages above",
            s.unreadable
        )),
        Ok(_) => Ok(()),
    }
}

/// Writes the selected records of `files` to `out`, warnings to `warn`.
///
/// # Errors
/// Writing to `out` failed (a broken pipe included: the caller decides what it means).
pub fn cat(
    files: Vec<RecordingFile>,
    opts: &CatOptions,
    out: &mut dyn Write,
    warn: &mut dyn Write,
    progress: &mut Progress,
) -> io::Result<CatSummary> {
    let order = if opts.merge {
        Order::Merged
    } else {
        Order::Files
    };
    let mut scan = Scan::new(files, order);
    let mut s = CatSummary::default();
    let filter = &opts.filter;
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
                    LineKind::TooLong => {
                        s.invalid += 1;
                        let _ = writeln!(
                            warn,
                            "wsrec: warning: {}:{}: line longer than {} bytes; skipped",
                            file.path.display(),
                            info.number,
                            crate::read::MAX_LINE
                        );
                        continue;
                    }
                    // An open file's last line is still being written: not a defect.
                    LineKind::Torn { open: true } => continue,
                    LineKind::Torn { open: false } => {
                        s.torn += 1;
                        let _ = writeln!(
                            warn,
                            "wsrec: warning: {}:{}: the last line has no newline ({} bytes): the file was cut short; skipped",
                            file.path.display(),
                            info.number,
                            bytes.len()
                        );
                        continue;
                    }
                    LineKind::Raw => {
                        // Raw lines carry no time: the file's interval start stands in for it.
                        let after_end =
                            matches!((raw_ts, filter.to), (Some(t), Some(to)) if t >= to);
                        if filter.stream_ok(raw_stream) && !after_end {
                            out.write_all(bytes)?;
                            out.write_all(b"\n")?;
                            s.printed += 1;
                        }
                        continue;
                    }
                    LineKind::Invalid(why) => {
                        s.invalid += 1;
                        if s.invalid <= MAX_SKIP_WARNINGS {
                            let _ = writeln!(
                                warn,
                                "wsrec: warning: {}:{}: not a record ({why}); skipped",
                                file.path.display(),
                                info.number
                            );
                        }
                        continue;
                    }
                    LineKind::Record(e) => e,
                };
                if !filter.stream_ok(entry.stream()) || !filter.time_ok(entry.ts()) {
                    continue;
                }
                if opts.no_snapshots && matches!(entry, Entry::Snapshot(_)) {
                    continue;
                }
                if opts.msg_only {
                    let payload = match entry {
                        Entry::Message(m) => m.payload,
                        Entry::Snapshot(sn) => sn.payload,
                        Entry::Event(_) => continue,
                    };
                    match payload.bytes() {
                        Ok(b) => out.write_all(&b)?,
                        Err(e) => {
                            s.invalid += 1;
                            let _ = writeln!(
                                warn,
                                "wsrec: warning: {}:{}: `bin` is not base64 ({e}); skipped",
                                file.path.display(),
                                info.number
                            );
                            continue;
                        }
                    }
                } else {
                    out.write_all(bytes)?;
                }
                out.write_all(b"\n")?;
                s.printed += 1;
            }
            Item::FileEnd { .. } => {}
            Item::Error(e) => {
                s.unreadable += 1;
                let _ = writeln!(warn, "wsrec: error: {e}");
            }
        }
        progress.update(scan.content_read());
    }
    super::warn_skipped_total(warn, s.invalid);
    Ok(s)
}
