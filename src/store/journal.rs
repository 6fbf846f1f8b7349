//! The journal: the lines the writer holds at an idle moment, kept in shared memory so that a
//! killed recorder loses none of them, while the files get them in a few large writes.
//!
//! Without it, the writer hands every file's new lines to the disk worker whenever its queue
//! runs empty, so a kill loses only the last moment: a `write(2)` (and an inode update) per
//! quiet message per file, the largest cost of a thousand quiet streams. With it, an idle
//! moment copies each file's new lines into this memory (no system call), and the files get
//! their lines when a buffer is full, every `flush_interval`, or when this memory runs out. A
//! killed recorder leaves the journal behind; the next start in the same output directory
//! completes the files from it ([`replay`]) before [`recover`](super::recover) seals them.
//!
//! # The file
//!
//! One file per recorder in the journal directory (`/dev/shm` by default: a tmpfs, memory that
//! outlives the process but not a reboot, as the page cache the files' own writes go to),
//! named `wsrec-<XXH3-64 of the output directory's canonical path>-<pid>.journal` and held
//! under an exclusive `flock` while the recorder runs: a journal that can be locked belongs to
//! a process that is gone. It is created new (never an existing file or link), readable by its
//! owner only, under a hidden name until it is locked and complete. Its space is reserved when it is created, so writing to it never
//! meets a full file system (which would kill the process with `SIGBUS`).
//!
//! Its first page names the output directory (canonical path). Then come two halves, used in
//! turn. Records go into the current half one after the other;
//! when the writer has handed every buffer to the disk worker (each `flush_interval`, or
//! because the half is full), it starts the other half, provided the disk worker has written
//! everything the other half held ([`Journal::switch`], acknowledged through
//! [`DiskOp::Released`](super::disk::DiskOp)). Each use of a half has a generation number, one
//! more than the one before.
//!
//! A record, 8-byte aligned, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | record length, padding included |
//! | 4..8 | CRC-32 of bytes 8.. to the end of the record |
//! | 8..16 | generation of the half |
//! | 16..24 | offset in the file where the lines go |
//! | 24..28 | length of the file's path |
//! | 28..32 | length of the lines |
//! | 32.. | the `.open` file's path relative to the output directory, then the lines, then zeros |
//!
//! A half's records are those from its start that have a valid CRC and its first record's
//! generation: a record torn by the kill, or one left from an earlier use of the half, ends
//! it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::Hasher as _;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of a record before its path.
const HEADER: usize = 32;
/// The journal's first page: [`MAGIC`], the length of the output directory's canonical path
/// (4 bytes) and the path, so that a journal whose output directory is gone can be removed.
const HEAD_PAGE: usize = 4096;
const MAGIC: &[u8; 8] = b"WSRECJ01";
/// The size of each half for a recorder of `streams` streams: 4 KiB per stream, at least
/// 128 KiB and at most 4 MiB. A half must hold what quiet streams send between two flush
/// ticks, or each time it fills every file gets a write: a thousand streams at 20 messages of
/// 250 bytes a second fill 4 MiB in about 0.8 s. The journal is shared memory held for the
/// whole run (both halves are reserved at start), counted in the recorder's resident memory
/// as its pages are used, so a recorder of a few streams keeps it small: a steady 50,000
/// messages a second fill 128 KiB about 100 times a second, each time one write per file.
pub fn half_bytes(streams: usize) -> usize {
    streams.saturating_mul(4 << 10).clamp(128 << 10, 4 << 20)
}

/// The writer's journal (see the module documentation).
pub struct Journal {
    path: PathBuf,
    /// Open, and locked, while the recorder runs.
    _file: File,
    map: memmap2::MmapMut,
    half: usize,
    /// The half records go to now (0 or 1).
    current: usize,
    /// Where the next record goes in the current half.
    pos: usize,
    /// The generation of each half's present use.
    generations: [u64; 2],
    /// The highest generation whose every line the disk worker has written (or counted lost).
    released: Arc<AtomicU64>,
    /// A record was ever written: dropped without [`Journal::remove`] (a writer that did not
    /// finish), the journal stays for the next start; one that never held a line (a start that
    /// failed after creating it) goes.
    written: bool,
}

impl Drop for Journal {
    fn drop(&mut self) {
        if !self.written
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "Cannot remove the journal.");
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("current", &self.current)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

/// The journal file name's prefix for recordings into `output_dir` (canonical):
/// `wsrec-<hash>-`.
fn name_prefix(canonical: &Path) -> String {
    let mut h = twox_hash::XxHash3_64::new();
    h.write(canonical.as_os_str().as_bytes());
    format!("wsrec-{:016x}-", h.finish())
}

impl Journal {
    /// Creates this process's journal for recordings into `output_dir` (which must exist) in
    /// `dir`, with halves of `half_bytes` each.
    ///
    /// # Errors
    /// The directory is missing or not writable, or has no room for the journal.
    pub fn create(dir: &Path, output_dir: &Path, half_bytes: usize) -> io::Result<Self> {
        let half = half_bytes.next_multiple_of(8).max(4096);
        let canonical = std::fs::canonicalize(output_dir)?;
        let named = canonical.as_os_str().as_bytes();
        if 12 + named.len() > HEAD_PAGE {
            return Err(io::Error::other("the output directory's path is too long"));
        }
        let name = format!("{}{}.journal", name_prefix(&canonical), std::process::id());
        let path = dir.join(&name);
        // Made under a name that replay does not look at, locked and filled in, then linked
        // to its own name: a journal that other recorders' starts can see is always locked
        // and complete. A new file only this user can read: the directory is shared
        // (`/dev/shm`), the lines may not be everyone's to read, and a name taken by someone
        // else (a file or a symbolic link put there) is refused rather than followed or
        // overwritten.
        let making = dir.join(format!(".{name}.tmp"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&making)?;
        let made = (|| {
            file.try_lock().map_err(io::Error::other)?;
            let len = HEAD_PAGE + 2 * half;
            // Reserve every page now: a store into a page the file system then has no room
            // for would be a SIGBUS.
            let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
            // SAFETY: a plain system call on a descriptor this function owns.
            let r = unsafe { libc::posix_fallocate(fd, 0, len as libc::off_t) };
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            // SAFETY: the file is this process's own (a name with its pid, locked); nothing
            // else changes it while it is mapped, and its length is fixed.
            let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }?;
            map[..8].copy_from_slice(MAGIC);
            map[8..12].copy_from_slice(&(named.len() as u32).to_le_bytes());
            map[12..12 + named.len()].copy_from_slice(named);
            std::fs::hard_link(&making, &path)?;
            Ok(map)
        })();
        let _ = std::fs::remove_file(&making);
        let map = made?;
        Ok(Journal {
            path,
            _file: file,
            map,
            half,
            current: 0,
            pos: 0,
            generations: [1, 0],
            released: Arc::new(AtomicU64::new(0)),
            written: false,
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the disk worker sets when it has written a half's lines
    /// ([`DiskOp::Released`](super::disk::DiskOp)).
    pub fn released(&self) -> Arc<AtomicU64> {
        self.released.clone()
    }

    /// Whether the current half holds any record.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Records that `lines` go to the file at `path` (relative to the output directory) at
    /// `offset`. False when the current half has no room left: the caller then hands the
    /// buffers on and [`switch`](Self::switch)es.
    pub fn append(&mut self, path: &[u8], offset: u64, lines: &[u8]) -> bool {
        let len = (HEADER + path.len() + lines.len()).next_multiple_of(8);
        if len > self.half - self.pos {
            return false;
        }
        let start = HEAD_PAGE + self.current * self.half + self.pos;
        let rec = &mut self.map[start..start + len];
        let (head, body) = rec.split_at_mut(HEADER);
        let (p, rest) = body.split_at_mut(path.len());
        p.copy_from_slice(path);
        let (l, pad) = rest.split_at_mut(lines.len());
        l.copy_from_slice(lines);
        pad.fill(0);
        head[8..16].copy_from_slice(&self.generations[self.current].to_le_bytes());
        head[16..24].copy_from_slice(&offset.to_le_bytes());
        head[24..28].copy_from_slice(&(path.len() as u32).to_le_bytes());
        head[28..32].copy_from_slice(&(lines.len() as u32).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head[8..]);
        crc.update(body);
        head[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        head[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        self.pos += len;
        self.written = true;
        true
    }

    /// Starts the other half, if the disk worker has written everything it held. Call it only
    /// once every buffer with lines in the current half has been handed to the disk worker;
    /// then queue `DiskOp::Released` with the generation returned (the half just left).
    pub fn switch(&mut self) -> Option<u64> {
        let other = 1 - self.current;
        if self.generations[other] > self.released.load(Ordering::Acquire) {
            return None;
        }
        let left = self.generations[self.current];
        self.generations[other] = left + 1;
        self.current = other;
        self.pos = 0;
        Some(left)
    }

    /// Removes the journal (as it is dropped): a clean stop, every line in its file.
    pub fn remove(mut self) {
        self.written = false;
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The generation of its half.
    pub generation: u64,
    /// Where its lines go in the file.
    pub offset: u64,
    /// The `.open` file's path, relative to the output directory.
    pub path: &'a [u8],
    /// The lines.
    pub lines: &'a [u8],
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default()) as usize
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// The valid records of one half, in order.
fn half_records(half: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut generation = None;
    while half.len() - pos >= HEADER {
        let rec = &half[pos..];
        let len = u32_at(rec, 0);
        if len < HEADER || !len.is_multiple_of(8) || len > rec.len() {
            break;
        }
        let rec = &rec[..len];
        let (path_len, lines_len) = (u32_at(rec, 24), u32_at(rec, 28));
        if HEADER + path_len + lines_len > len {
            break;
        }
        if crc32fast::hash(&rec[8..]) as usize != u32_at(rec, 4) {
            break;
        }
        let g = u64_at(rec, 8);
        if *generation.get_or_insert(g) != g {
            break;
        }
        out.push(Record {
            generation: g,
            offset: u64_at(rec, 16),
            path: &rec[HEADER..HEADER + path_len],
            lines: &rec[HEADER + path_len..HEADER + path_len + lines_len],
        });
        pos += len;
    }
    out
}

/// The output directory a journal's first page names.
fn output_dir_of(journal: &[u8]) -> Option<PathBuf> {
    if journal.len() < HEAD_PAGE || &journal[..8] != MAGIC {
        return None;
    }
    let n = u32_at(journal, 8);
    let named = journal.get(12..12 + n)?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(named)))
}

/// Every valid record of a journal (the file's bytes), older half first.
pub fn records(journal: &[u8]) -> Vec<Record<'_>> {
    let Some(body) = journal.get(HEAD_PAGE..) else {
        return Vec::new();
    };
    let half = body.len() / 2;
    let mut halves = [
        half_records(&body[..half]),
        half_records(&body[half..2 * half]),
    ];
    halves.sort_by_key(|h| h.first().map_or(0, |r| r.generation));
    let [a, b] = halves;
    a.into_iter().chain(b).collect()
}

/// What [`replay`] did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The `.open` file.
    pub path: PathBuf,
    /// Bytes the journal added to it.
    pub bytes: u64,
    /// Why the journal's records for it stopped short, if they did (the file differs from
    /// them: lines lost to a write error, or another file under that name).
    pub stopped: Option<String>,
}

/// Completes the `.open` files under `output_dir` from the journals that recorders killed
/// while recording into it left in `dir`, then removes those journals; also removes the
/// journals of killed recorders whose output directory no longer exists. Journals of running
/// recorders (locked) are left alone. Errors are logged; a journal that cannot be read is left
/// where it is.
pub fn replay(dir: &Path, output_dir: &Path) -> Vec<Completed> {
    let Ok(canonical) = std::fs::canonicalize(output_dir) else {
        return Vec::new();
    };
    let prefix = name_prefix(&canonical);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".wsrec-") && name.ends_with(".journal.tmp") {
            // One a recorder died making: it never held a line.
            if let Ok(f) = File::open(entry.path())
                && f.try_lock().is_ok()
            {
                let _ = std::fs::remove_file(entry.path());
            }
            continue;
        }
        if !name.starts_with("wsrec-") || !name.ends_with(".journal") {
            continue;
        }
        let path = entry.path();
        let ours = name.starts_with(&prefix);
        match replay_one(&path, ours.then_some(output_dir)) {
            Ok(Some(files)) => {
                for c in &files {
                    match &c.stopped {
                        None => {
                            tracing::warn!(journal = %path.display(), path = %c.path.display(), bytes = c.bytes, "Completed a file left open by a killed run from its journal.")
                        }
                        Some(why) => {
                            tracing::warn!(journal = %path.display(), path = %c.path.display(), bytes = c.bytes, reason = %why, "Completed a file left open by a killed run from its journal as far as it matched.")
                        }
                    }
                }
                done.extend(files);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(journal = %path.display(), error = %e, "Cannot remove a replayed journal.");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(journal = %path.display(), error = %e, "Cannot replay the journal of a killed run; it is left where it is.");
            }
        }
    }
    done
}

/// Replays one journal into `output_dir` (`None`: another directory's journal, only removed
/// when that directory is gone). `Ok(None)` when it is to be left alone: its recorder still
/// runs, or it belongs to a directory that still exists.
fn replay_one(path: &Path, output_dir: Option<&Path>) -> io::Result<Option<Vec<Completed>>> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    if file.try_lock().is_err() {
        return Ok(None);
    }
    let bytes = std::fs::read(path)?;
    let Some(output_dir) = output_dir else {
        return Ok(match output_dir_of(&bytes) {
            Some(named) if !named.exists() => Some(Vec::new()),
            _ => None,
        });
    };
    let mut by_file: HashMap<&[u8], Vec<Record<'_>>> = HashMap::new();
    let mut order = Vec::new();
    for r in records(&bytes) {
        let list = by_file.entry(r.path).or_default();
        if list.is_empty() {
            order.push(r.path);
        }
        list.push(r);
    }
    let mut done = Vec::new();
    for p in order {
        let target = output_dir.join(std::ffi::OsStr::from_bytes(p));
        let Ok(f) = OpenOptions::new().read(true).write(true).open(&target) else {
            // Closed (and renamed) since: every line of it was written.
            continue;
        };
        let (added, stopped) = complete(&f, &by_file[p])?;
        if added > 0 || stopped.is_some() {
            f.sync_data()?;
            done.push(Completed {
                path: target,
                bytes: added,
                stopped,
            });
        }
    }
    Ok(Some(done))
}

/// Appends to `f` what `records` have beyond its end, where they continue it exactly.
fn complete(f: &File, records: &[Record<'_>]) -> io::Result<(u64, Option<String>)> {
    let mut len = f.metadata()?.len();
    let mut added = 0;
    let mut have = Vec::new();
    for r in records {
        if r.offset > len {
            return Ok((
                added,
                Some(format!(
                    "the journal's lines at byte {} are past the file's end at {len}",
                    r.offset
                )),
            ));
        }
        let end = r.offset + r.lines.len() as u64;
        let overlap = (len.min(end) - r.offset) as usize;
        have.resize(overlap, 0);
        f.read_exact_at(&mut have, r.offset)?;
        if have != r.lines[..overlap] {
            return Ok((
                added,
                Some(format!(
                    "the file differs from the journal's lines at byte {}",
                    r.offset
                )),
            ));
        }
        let rest = &r.lines[overlap..];
        if !rest.is_empty() {
            f.write_all_at(rest, len)?;
            len += rest.len() as u64;
            added += rest.len() as u64;
        }
    }
    Ok((added, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path, out: &Path) -> Journal {
        Journal::create(dir, out, 4096).unwrap()
    }

    /// A temporary directory (the journal's) with an output directory `out` in it.
    fn with_output_dir() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        (t, out)
    }

    #[test]
    fn records_read_back_in_order_across_halves() {
        let (t, out) = with_output_dir();
        let mut j = journal(t.path(), &out);
        assert!(j.append(b"a.jsonl.open", 0, b"{\"n\":1}\n"));
        assert!(j.append(b"b.jsonl.open", 0, b"{\"n\":2}\n"));
        assert_eq!(j.switch(), Some(1));
        assert!(j.append(b"a.jsonl.open", 8, b"{\"n\":3}\n"));
        let bytes = std::fs::read(j.path()).unwrap();
        let got: Vec<(u64, &[u8], u64, &[u8])> = records(&bytes)
            .into_iter()
            .map(|r| (r.generation, r.path, r.offset, r.lines))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, &b"a.jsonl.open"[..], 0, &b"{\"n\":1}\n"[..]),
                (1, &b"b.jsonl.open"[..], 0, &b"{\"n\":2}\n"[..]),
                (2, &b"a.jsonl.open"[..], 8, &b"{\"n\":3}\n"[..]),
            ]
        );
    }

    #[test]
    fn a_half_is_not_reused_before_the_disk_worker_released_it() {
        let t = tempfile::tempdir().unwrap();
        let mut j = journal(t.path(), t.path());
        assert_eq!(j.switch(), Some(1), "the second half starts free");
        assert_eq!(
            j.switch(),
            None,
            "the first half's lines are not written yet"
        );
        j.released().store(1, Ordering::Release);
        assert_eq!(j.switch(), Some(2));
        assert_eq!(j.switch(), None, "nor the second half's");
        j.released().store(2, Ordering::Release);
        assert_eq!(j.switch(), Some(3));
    }

    #[test]
    fn a_full_half_refuses_and_a_torn_or_stale_record_ends_it() {
        let t = tempfile::tempdir().unwrap();
        let mut j = journal(t.path(), t.path());
        let line = [b'x'; 1000];
        let mut n = 0;
        while j.append(b"f.open", n * 1000, &line) {
            n += 1;
        }
        assert_eq!(n, 3, "three 1,040-byte records fit in 4,096 bytes");
        // Tear the second record: only the first reads back.
        let start = HEAD_PAGE + 1040 + 40;
        j.map[start] ^= 1;
        let bytes = std::fs::read(j.path()).unwrap();
        assert_eq!(records(&bytes).len(), 1);
        // The first half again after a switch round: its new first record, then the old
        // generation's records behind it are stale.
        j.map[start] ^= 1;
        j.released().store(1, Ordering::Release);
        assert_eq!(j.switch(), Some(1));
        assert_eq!(j.switch(), Some(2));
        assert!(j.append(b"f.open", 3000, &line));
        let bytes = std::fs::read(j.path()).unwrap();
        let got: Vec<u64> = records(&bytes).iter().map(|r| r.generation).collect();
        assert_eq!(
            got,
            vec![3],
            "generation 1's records behind generation 3's are stale"
        );
    }

    #[test]
    fn replay_completes_files_where_they_continue_and_stops_where_they_differ() {
        let (t, out) = with_output_dir();
        let mut j = journal(t.path(), &out);
        // a: the file has the first record and half of the second (a torn write).
        std::fs::write(out.join("a.open"), b"1111\n22").unwrap();
        assert!(j.append(b"a.open", 0, b"1111\n"));
        assert!(j.append(b"a.open", 5, b"2222\n"));
        assert!(j.append(b"a.open", 10, b"3333\n"));
        // b: lines lost to a write error: the file is short of the journal's offsets.
        std::fs::write(out.join("b.open"), b"xx\n").unwrap();
        assert!(j.append(b"b.open", 3, b"yy\n"));
        assert!(j.append(b"b.open", 9, b"zz\n"));
        // c: closed and renamed since.
        assert!(j.append(b"c.open", 0, b"cc\n"));
        // d: another file under the name.
        std::fs::write(out.join("d.open"), b"other\n").unwrap();
        assert!(j.append(b"d.open", 0, b"mine!\n"));
        let path = j.path().to_path_buf();
        // The recorder is killed: its lock goes with it, its journal stays.
        drop(j);
        let done = replay(t.path(), &out);
        assert!(!path.exists(), "a replayed journal is removed");
        assert_eq!(
            std::fs::read(out.join("a.open")).unwrap(),
            b"1111\n2222\n3333\n"
        );
        assert_eq!(std::fs::read(out.join("b.open")).unwrap(), b"xx\nyy\n");
        assert_eq!(std::fs::read(out.join("d.open")).unwrap(), b"other\n");
        assert!(!out.join("c.open").exists());
        let summary: Vec<(String, u64, bool)> = done
            .iter()
            .map(|c| {
                (
                    c.path.file_name().unwrap().to_string_lossy().into_owned(),
                    c.bytes,
                    c.stopped.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a.open".to_string(), 8, false),
                ("b.open".to_string(), 3, true),
                ("d.open".to_string(), 0, true),
            ]
        );
    }

    #[test]
    fn a_running_recorders_journal_is_left_alone() {
        let (t, out) = with_output_dir();
        let mut j = journal(t.path(), &out);
        std::fs::write(out.join("a.open"), b"").unwrap();
        assert!(j.append(b"a.open", 0, b"1\n"));
        assert!(replay(t.path(), &out).is_empty());
        assert!(j.path().exists());
        assert_eq!(std::fs::read(out.join("a.open")).unwrap(), b"");
        j.remove();
    }

    #[test]
    fn the_journal_of_a_directory_that_is_gone_is_removed_and_others_are_kept() {
        let t = tempfile::tempdir().unwrap();
        let (gone, other, mine) = (
            t.path().join("gone"),
            t.path().join("other"),
            t.path().join("mine"),
        );
        for d in [&gone, &other, &mine] {
            std::fs::create_dir(d).unwrap();
        }
        let jdir = t.path().join("j");
        std::fs::create_dir(&jdir).unwrap();
        let (mut a, mut b) = (journal(&jdir, &gone), journal(&jdir, &other));
        assert!(a.append(b"a.open", 0, b"1\n") && b.append(b"b.open", 0, b"2\n"));
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        // Killed: each journal stays behind.
        drop((a, b));
        assert!(pa.exists() && pb.exists());
        std::fs::remove_dir(&gone).unwrap();
        assert!(replay(&jdir, &mine).is_empty());
        assert!(!pa.exists(), "its directory is gone");
        assert!(
            pb.exists(),
            "its directory is still there, for its own next start"
        );
    }

    #[test]
    fn a_taken_name_is_refused_and_left_as_it_is_and_the_journal_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let t = tempfile::tempdir().unwrap();
        let j = journal(t.path(), t.path());
        let path = j.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(j);
        // Someone else's file, then a link to one, under the name this process would use.
        std::fs::write(&path, b"not yours").unwrap();
        assert!(Journal::create(t.path(), t.path(), 4096).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"not yours");
        std::fs::remove_file(&path).unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(Journal::create(t.path(), t.path(), 4096).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn a_journal_that_never_held_a_line_goes_with_its_recorder() {
        let t = tempfile::tempdir().unwrap();
        let j = journal(t.path(), t.path());
        let path = j.path().to_path_buf();
        drop(j);
        assert!(!path.exists(), "a start that failed leaves nothing behind");
        let mut j = journal(t.path(), t.path());
        assert!(j.append(b"a.open", 0, b"1\n"));
        j.remove();
        assert!(!path.exists(), "a clean stop removes it");
    }
}
