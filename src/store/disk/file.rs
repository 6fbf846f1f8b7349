//! What the disk worker does to one file: open, append (reserving space ahead for a busy
//! file), sync when due, close (read back and manifest, rename, sync the directory, hand on to
//! compression) and, when a write fails, count what was lost and cut back to the last complete
//! line.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::Hasher as _;
use std::io::Write;
use std::path::Path;

use super::event::{DiskEvent, count_lost};
use super::open::OpenFile;
use super::sync::{self, sync_failed};
use super::{DiskOp, Shared, apply_retention};
use crate::fsutil::{FLUSH_BYTES, reserve};
use crate::observe::stats::{Stats, UnmarkedLoss};
use crate::store::manifest::{FileKind, Manifest};

/// A busy file gets its disk space reserved this far ahead of its writes (16 full buffers).
///
/// ext4 otherwise reserves and accounts every 4 KiB block inside `write(2)`
/// (delayed allocation); with the space already allocated (`fallocate` with `KEEP_SIZE`, so
/// the file's length and what readers see do not change), a write only copies into the page
/// cache, which costs measurably less system time per line (bench/README.md). The unused rest is given back when the file is closed (or recovered after a crash).
pub(super) const RESERVE_STEP: u64 = 16 * FLUSH_BYTES as u64;
/// Only a write at least this large reserves ahead: a full buffer or nearly, so a busy
/// stream. A quiet stream (buffers flushed by the timer) never holds reserved space, which
/// keeps the disk space held by a thousand idle files at zero.
pub(super) const RESERVE_FROM: usize = 64 << 10;

/// Carries out one operation; returns an emptied buffer for reuse.
pub(super) fn apply(
    op: DiskOp,
    files: &mut HashMap<u64, OpenFile>,
    shared: &Shared,
    now: std::time::Instant,
) -> Option<Vec<u8>> {
    let stats = &*shared.stats;
    match op {
        DiskOp::Open {
            id,
            path,
            stream,
            sync,
            kind,
        } => {
            use std::os::unix::fs::MetadataExt as _;
            let file = match open_new(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    DiskEvent::OpenFailed {
                        path: &path,
                        stream: &stream,
                        error: &e,
                    }
                    .emit(stats);
                    None
                }
            };
            let dev = file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.dev());
            files.insert(
                id,
                OpenFile {
                    path,
                    file,
                    len: 0,
                    stream,
                    sync,
                    dirty_since: None,
                    hash: twox_hash::XxHash3_64::new(),
                    failing: false,
                    unsynced_lines: 0,
                    reserved: 0,
                    no_reserve: false,
                    dev,
                    kind,
                    lines: 0,
                    lost_lines: 0,
                },
            );
            None
        }
        DiskOp::Write { id, mut buf, lines } => {
            if let Some(f) = files.get_mut(&id) {
                write(f, &buf, lines, stats);
            }
            sync::sync_due(id, files, stats, now);
            buf.clear();
            Some(buf)
        }
        DiskOp::SyncDue { id } => {
            sync::sync_due(id, files, stats, now);
            None
        }
        DiskOp::Released {
            generation,
            released,
        } => {
            released.fetch_max(generation, std::sync::atomic::Ordering::Release);
            None
        }
        DiskOp::Close {
            id,
            final_path,
            manifest,
            retention,
            run_end,
        } => {
            if let Some(f) = files.remove(&id)
                && close(f, &final_path, manifest, run_end, shared)
            {
                if let Some(q) = &shared.compress {
                    q.push(final_path);
                } else if let Some(u) = &shared.upload {
                    u.push(final_path);
                }
            }
            if let Some(r) = retention {
                apply_retention(&r);
            }
            None
        }
    }
}

fn open_new(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().append(true).create_new(true).open(path)
}

fn write(f: &mut OpenFile, buf: &[u8], lines: u64, stats: &Stats) {
    let Some(file) = &mut f.file else {
        lose(f, buf);
        return;
    };
    if buf.len() >= RESERVE_FROM && f.len + buf.len() as u64 > f.reserved && !f.no_reserve {
        match reserve(file, f.len, RESERVE_STEP) {
            Ok(()) => f.reserved = f.len + RESERVE_STEP,
            Err(e) => {
                f.no_reserve = true;
                DiskEvent::NoReserve {
                    path: &f.path,
                    error: &e,
                }
                .emit(stats);
            }
        }
    }
    let (written, error) = write_some(file, buf);
    let Some(e) = error else {
        wrote(f, buf, lines);
        if f.failing {
            f.failing = false;
            DiskEvent::WriteWorks { path: &f.path }.emit(stats);
        }
        return;
    };
    // Keep the complete lines that fit (a nearly full disk takes part of a buffer) and cut a
    // partial line back, so the file ends on a line; the rest is lost, counted and marked.
    // Cutting also frees any space reserved ahead. The next buffer tries again.
    let keep = memchr::memrchr(b'\n', &buf[..written]).map_or(0, |i| i + 1);
    let kept = &buf[..keep];
    if let Err(cut) = file.set_len(f.len + keep as u64) {
        DiskEvent::CutFailed {
            path: &f.path,
            error: &cut,
        }
        .emit(stats);
    }
    f.reserved = 0;
    if !kept.is_empty() {
        wrote(f, kept, memchr::memchr_iter(b'\n', kept).count() as u64);
    }
    let lost = lose(f, &buf[keep..]);
    DiskEvent::WriteFailed {
        path: &f.path,
        stream: &f.stream,
        error: &e,
        lines: lost,
        kept_lines: lines - lost,
        first: !std::mem::replace(&mut f.failing, true),
    }
    .emit(stats);
}

/// Writes as much of `buf` as the file takes: the bytes written, and the error that stopped it.
fn write_some(file: &mut File, buf: &[u8]) -> (usize, Option<std::io::Error>) {
    let mut done = 0;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => return (done, Some(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// Accounts complete lines that reached the file.
fn wrote(f: &mut OpenFile, bytes: &[u8], lines: u64) {
    f.len += bytes.len() as u64;
    f.hash.write(bytes);
    f.dirty_since.get_or_insert_with(std::time::Instant::now);
    f.unsynced_lines += lines;
    f.lines += lines;
}

/// Counts complete lines that did not reach the file, and hands what they stood for to the
/// writer's next marker. Returns how many lines they were.
fn lose(f: &mut OpenFile, lost: &[u8]) -> u64 {
    let loss = lost_lines(f.kind, lost);
    let lines = memchr::memchr_iter(b'\n', lost).count() as u64;
    f.lost_lines += lines;
    count_lost(&f.stream, lines, &loss);
    lines
}

/// What complete lines of a file of `kind` stood for: messages, events, and the losses that
/// lost markers reported (taken over, so a lost marker is never a loss of its own).
fn lost_lines(kind: FileKind, lost: &[u8]) -> UnmarkedLoss {
    use crate::read::{Entry, EventDetail};
    let mut loss = UnmarkedLoss::default();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', lost) {
        let line = &lost[start..end];
        start = end + 1;
        if kind == FileKind::Raw {
            loss.messages += 1;
            continue;
        }
        match Entry::parse(line) {
            Ok(Entry::Message(m)) => {
                loss.messages += 1;
                loss.saw(m.ts);
            }
            // A snapshot line is no message: counted with the other non-message lines.
            Ok(Entry::Snapshot(sn)) => {
                loss.events += 1;
                loss.saw(sn.ts);
            }
            Ok(Entry::Event(e)) => {
                loss.saw(e.ts);
                let d = EventDetail::parse(line);
                match &*e.name {
                    "write_error_gap" | "disk_full_gap" => {
                        loss.merge(&UnmarkedLoss {
                            messages: d.lost.unwrap_or(0),
                            events: d.lost_events.unwrap_or(0),
                            dropped: d.dropped.unwrap_or(0),
                            from_ts: d.from_ts.unwrap_or(0),
                            to_ts: d.to_ts.unwrap_or(0),
                        });
                    }
                    "dropped" => loss.dropped += d.count.unwrap_or(0),
                    _ => loss.events += 1,
                }
            }
            // The writer only writes records it can read back; count anything else as a message.
            Err(_) => loss.messages += 1,
        }
    }
    loss
}

/// Syncs and renames a file; true if it is now closed under its final name.
fn close(
    mut f: OpenFile,
    final_path: &Path,
    manifest: Option<Box<Manifest>>,
    run_end: bool,
    shared: &Shared,
) -> bool {
    let stats = &*shared.stats;
    let Some(file) = f.file.take() else {
        // Keep what was written before the failure under its final name.
        if f.path.exists() {
            let _ = std::fs::rename(&f.path, final_path);
        }
        return false;
    };
    if f.reserved > f.len
        && let Err(e) = file.set_len(f.len)
    {
        DiskEvent::UnreserveFailed {
            path: &f.path,
            error: &e,
        }
        .emit(stats);
    }
    if let Err(e) = file.sync_all() {
        sync_failed(&mut f, &e, stats);
    }
    let digest = f.hash.finish();
    let result = crate::fsutil::sync_parent(&f.path)
        .and_then(|()| match manifest {
            Some(mut m) => {
                if f.lost_lines > 0 {
                    read_back(&f, &mut m, stats);
                }
                m.lines = f.lines;
                m.bytes = f.len;
                m.xxh3_64 = format!("{digest:016x}");
                shared
                    .chains
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .link(&mut m, final_path, run_end);
                crate::store::manifest::write(&crate::store::manifest::path_for(final_path), &m)
            }
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&f.path, final_path))
        .and_then(|()| crate::fsutil::sync_parent(final_path));
    match result {
        Ok(()) => {
            DiskEvent::Closed {
                path: final_path,
                bytes: f.len,
            }
            .emit(stats);
            true
        }
        Err(e) => {
            DiskEvent::CloseFailed {
                path: &f.path,
                final_path,
                error: &e,
            }
            .emit(stats);
            false
        }
    }
}

/// Rebuilds what the writer's manifest said about lines from the lines in the file, after
/// some did not reach it. Envelope records say everything the manifest needs; a raw data file
/// keeps the writer's per-connection spans (its lines carry no `seq`), with the lines it lost
/// stated beside them.
fn read_back(f: &OpenFile, m: &mut Manifest, stats: &Stats) {
    m.lost_lines = f.lost_lines;
    if f.kind == FileKind::Raw {
        return;
    }
    let file = match File::open(&f.path) {
        Ok(file) => file,
        Err(e) => {
            DiskEvent::ReadBackFailed {
                path: &f.path,
                error: &e,
            }
            .emit(stats);
            return;
        }
    };
    let mut builder = crate::store::manifest::ManifestBuilder::new(
        Path::new(&m.file),
        &m.stream,
        &m.format,
        m.interval_start_ns,
    );
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                // A line that is no record still counts, as an event of no name.
                if builder
                    .line(line.strip_suffix(b"\n").unwrap_or(&line))
                    .is_none()
                {
                    builder.count_event(false);
                }
            }
            Err(e) => {
                DiskEvent::ReadBackFailed {
                    path: &f.path,
                    error: &e,
                }
                .emit(stats);
                return;
            }
        }
    }
    let lost_lines = m.lost_lines;
    *m = builder.manifest;
    m.lost_lines = lost_lines;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_snapshot_line_is_no_lost_message() {
        let lost = concat!(
            r#"{"ts":5,"stream":"s","conn":1,"seq":0,"msg":{}}"#,
            "\n",
            r#"{"ts":6,"stream":"s","conn":1,"snapshot":{"symbol":"X"},"msg":{"lastUpdateId":1}}"#,
            "\n",
            r#"{"ts":7,"stream":"s","conn":1,"event":"disconnected","reason":"error"}"#,
            "\n"
        );
        let loss = lost_lines(FileKind::Envelope, lost.as_bytes());
        assert_eq!((loss.messages, loss.events), (1, 2));
        assert_eq!((loss.from_ts, loss.to_ts), (5, 7));
    }
}
