//! Background compression of closed files, on one thread of its own, far from the network and
//! writing paths.
//!
//! A closed `X.jsonl` becomes `X.jsonl.zst` (or `.gz`): written under `X.zst.tmp`,
//! synced, checked (it must decompress to the same lines and bytes), renamed, and only then is
//! the original removed. A crash at any point leaves either the original or a verified compressed
//! file (or both, which the startup sweep resolves); never a half-written file under a final name.
//!
//! At startup [`sweep`] removes leftover temporaries and queues closed files that were never
//! compressed. One thread means the compressor never takes more than one core; when it falls
//! behind, the backlog shows in status and recording goes on.
//!
//! The thread runs at the lowest CPU priority the OS offers (`SCHED_IDLE` on Linux, else nice
//! 19): it only gets a core nothing else wants, so on a busy machine the network and writing
//! paths are never slowed by it; the backlog takes the burst instead. At shutdown, when recording
//! has stopped, it returns to normal priority to finish within the deadline. Measured with
//! `wsrec-bench`'s `corpus-rotate-zstd` against `corpus-rotate-none` (see the README).

use std::fs::File;
use std::hash::Hasher;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::config::Compress;
use crate::fair::Pressure;
use crate::observe::stats::Stats;

/// One wait of the compressor while the recording path is behind.
const YIELD_STEP: Duration = Duration::from_millis(10);
/// Longest the compressor waits before its next chunk, so it still makes progress (about one
/// chunk a second) on a machine that records at its limit all the time.
const YIELD_MAX: Duration = Duration::from_secs(1);

/// Waits while `pressure` is [`recent`](Pressure::recent), at most [`YIELD_MAX`] or until
/// `stop`. Called by the compressor before each chunk; once draining, it raises the
/// compressor's priority.
fn wait_calm(pressure: &Pressure, stop: &AtomicBool) {
    if pressure.draining() {
        if pressure.first_raise() {
            normal_priority();
        }
        return;
    }
    let start = Instant::now();
    while pressure.recent() && !stop.load(Relaxed) && start.elapsed() < YIELD_MAX {
        std::thread::sleep(YIELD_STEP);
    }
}

/// Puts the calling thread back at normal priority (Linux lets a thread leave `SCHED_IDLE`
/// without privileges; undoing nice 19 may be refused, which only costs time).
fn normal_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_OTHER.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "Could not restore the compressor's CPU policy.");
        }
    }
    // SAFETY: as in `lower_priority`.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "Could not restore the compressor's nice value.");
    }
}

/// Puts the calling thread at the lowest CPU priority: `SCHED_IDLE` on Linux (it runs only when
/// a core would otherwise idle), nice 19 elsewhere or when that is refused.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_IDLE.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
    }
    // SAFETY: setpriority only reads its integer arguments; `who` 0 is the calling thread on
    // Linux and the calling process elsewhere.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "Could not lower the compressor's CPU priority.");
    }
}

/// zstd level when none is configured: on the corpus's real frames level 1 compresses as well
/// as level 3, and faster (figures in bench/README.md), which keeps the compressor's share
/// of the CPU small.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Chunk size for reading and checking: 192 KiB less than the former 256 KiB, with CPU per
/// message unchanged within noise in the bench (zstd works in 128 KiB blocks anyway).
const CHUNK: usize = 64 * 1024;
/// zstd window: matches reach back 128 KiB instead of level 1's 512 KiB. On the corpus as
/// envelope lines the output is hardly larger (figures in bench/README.md), and the
/// compressor's and the check's buffers are 0.75 MiB smaller together.
const ZSTD_WINDOW_LOG: u32 = 17;

/// The compressor's telemetry: what happened to a file, with what its log line and counters
/// need; [`CompressEvent::emit`] is the one place that counts it and logs it.
enum CompressEvent<'a> {
    /// A file was compressed and checked; the original is gone.
    Compressed {
        /// The compressed file.
        path: &'a Path,
    },
    /// Compression failed: the uncompressed file is kept.
    Failed {
        /// The uncompressed file.
        path: &'a Path,
        /// Why.
        error: &'a std::io::Error,
    },
}

impl CompressEvent<'_> {
    /// Updates the counter the event touches and logs it.
    fn emit(self, stats: &Stats) {
        match self {
            Self::Compressed { path } => {
                stats.files_compressed.fetch_add(1, Relaxed);
                tracing::debug!(path = %path.display(), "File compressed.");
            }
            Self::Failed { path, error: e } => {
                stats.compress_errors.fetch_add(1, Relaxed);
                tracing::error!(path = %path.display(), error = %e, "Compression failed; the uncompressed file is kept.");
            }
        }
    }
}

/// Handle to the compressor thread.
#[derive(Debug)]
pub struct Compressor {
    tx: Option<std::sync::mpsc::Sender<PathBuf>>,
    stop: Arc<AtomicBool>,
    pressure: Arc<Pressure>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A cloneable way to queue closed files.
#[derive(Debug, Clone)]
pub struct CompressQueue {
    tx: std::sync::mpsc::Sender<PathBuf>,
    backlog: Arc<Stats>,
}

impl CompressQueue {
    /// Queues a closed file.
    pub fn push(&self, path: PathBuf) {
        self.backlog.compress_backlog.fetch_add(1, Relaxed);
        if self.tx.send(path).is_err() {
            self.backlog.compress_backlog.fetch_sub(1, Relaxed);
        }
    }
}

/// The compressed file's extension for a codec.
pub fn extension(codec: Compress) -> Option<&'static str> {
    match codec {
        Compress::Zstd => Some(".zst"),
        Compress::Gzip => Some(".gz"),
        Compress::None => None,
    }
}

impl Compressor {
    /// Starts the thread; `None` when compression is off. Compressed files go on to `upload`.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn spawn(
        codec: Compress,
        level: Option<i32>,
        stats: Arc<Stats>,
        pressure: Arc<Pressure>,
        upload: Option<crate::ship::upload::UploadQueue>,
    ) -> std::io::Result<Option<(Compressor, CompressQueue)>> {
        if codec == Compress::None {
            return Ok(None);
        }
        let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread_stats = stats.clone();
        let thread_pressure = pressure.clone();
        let thread = std::thread::Builder::new()
            .name("wsrec-compress".to_owned())
            .spawn(move || {
                lower_priority();
                while let Ok(path) = rx.recv() {
                    if thread_stop.load(Relaxed) {
                        break;
                    }
                    match compress_file(&path, codec, level, &thread_stop, &thread_pressure) {
                        Ok(Some(out)) => {
                            CompressEvent::Compressed { path: &out }.emit(&thread_stats);
                            if let Some(u) = &upload {
                                u.push(out);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => CompressEvent::Failed {
                            path: &path,
                            error: &e,
                        }
                        .emit(&thread_stats),
                    }
                    thread_stats.compress_backlog.fetch_sub(1, Relaxed);
                }
            })?;
        let queue = CompressQueue {
            tx: tx.clone(),
            backlog: stats,
        };
        Ok(Some((
            Compressor {
                tx: Some(tx),
                stop,
                pressure,
                thread: Some(thread),
            },
            queue,
        )))
    }

    /// Finishes the queued files within `deadline`, at normal priority; what is left then is
    /// abandoned (its temporary removed) for the next start's sweep.
    pub async fn finish(mut self, deadline: std::time::Duration) {
        self.pressure.drain();
        drop(self.tx.take());
        let Some(thread) = self.thread.take() else {
            return;
        };
        let stop = self.stop.clone();
        let joined = tokio::task::spawn_blocking(move || thread.join());
        tokio::pin!(joined);
        if tokio::time::timeout(deadline, &mut joined).await.is_err() {
            tracing::warn!(
                "Compression did not finish before the shutdown deadline; the rest is compressed at the next start."
            );
            stop.store(true, Relaxed);
            let _ = joined.await;
        }
    }
}

/// Removes leftover temporaries under `dir` and, when compression is on, queues closed,
/// uncompressed files.
pub fn sweep(dir: &Path, codec: Compress, queue: Option<&CompressQueue>) {
    let mut files = crate::fsutil::closed_files_under(dir);
    files.sort();
    for path in files {
        let name = path.to_string_lossy();
        if name.ends_with(".zst.tmp") || name.ends_with(".gz.tmp") {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "Cannot remove a leftover temporary file.");
            }
            continue;
        }
        if !crate::fsutil::is_recorded_name(&name) {
            continue;
        }
        // A compressed copy under its final name was verified before the rename, so an
        // original next to it outlived a crash between rename and delete: finish the job,
        // whatever codec is configured now (compression may have been turned off since).
        let compressed = [Compress::Zstd, Compress::Gzip]
            .into_iter()
            .filter_map(extension)
            .any(|ext| {
                let mut done = path.clone().into_os_string();
                done.push(ext);
                Path::new(&done).exists()
            });
        if compressed {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "Cannot remove a file that was already compressed.");
            }
        } else if let (Some(_), Some(queue)) = (extension(codec), queue) {
            queue.push(path);
        }
    }
}

/// Lines, bytes and a content hash of a stream of bytes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Digest {
    lines: u64,
    bytes: u64,
    hash: u64,
}

#[derive(Default)]
struct DigestBuilder {
    lines: u64,
    bytes: u64,
    /// XXH3, as the manifests use: SipHash (std's `DefaultHasher`) took more of the
    /// compressor's time than zstd itself, hashing every byte twice (read and checked back).
    hasher: twox_hash::XxHash3_64,
}

impl DigestBuilder {
    fn update(&mut self, chunk: &[u8]) {
        self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
        self.bytes += chunk.len() as u64;
        self.hasher.write(chunk);
    }

    fn finish(self) -> Digest {
        Digest {
            lines: self.lines,
            bytes: self.bytes,
            hash: self.hasher.finish(),
        }
    }
}

fn digest(mut reader: impl Read) -> std::io::Result<Digest> {
    let mut d = DigestBuilder::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(d.finish());
        }
        d.update(&buf[..n]);
    }
}

/// The temporary a compression of the file named `name` is written under, `ext` its codec's
/// extension: `x.jsonl` -> `x.zst.tmp`, `x.events.ndjson` -> `x.events.zst.tmp`. No `.jsonl` in
/// it, so data globs (`**/*.jsonl*`) never pick up a half-written file; versions before used
/// `x.jsonl.zst.tmp`, which [`sweep`] removes as well.
fn tmp_name(name: &str, ext: &str) -> String {
    format!("{}{ext}.tmp", crate::fsutil::side_stem(name))
}

/// Compresses one file; `Ok(None)` if it was abandoned because of `stop` or is gone.
fn compress_file(
    path: &Path,
    codec: Compress,
    level: Option<i32>,
    stop: &AtomicBool,
    pressure: &Pressure,
) -> std::io::Result<Option<PathBuf>> {
    let Some(ext) = extension(codec) else {
        return Ok(None);
    };
    let input = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = path.as_os_str().to_owned();
    out.push(ext);
    let out = PathBuf::from(out);
    let tmp = crate::fsutil::map_file_name(path, |name| tmp_name(name, ext));

    let written = write_compressed(input, &tmp, codec, level, stop, pressure);
    let original = match written {
        Ok(Some(d)) => d,
        Ok(None) => {
            let _ = std::fs::remove_file(&tmp);
            return Ok(None);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // Check: the compressed file must give back exactly what was read.
    let check = {
        let f = File::open(&tmp)?;
        match codec {
            Compress::Zstd => digest(zstd::stream::read::Decoder::new(f)?)?,
            Compress::Gzip => digest(flate2::read::MultiGzDecoder::new(BufReader::new(f)))?,
            Compress::None => return Ok(None),
        }
    };
    if check != original {
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::other(format!(
            "the compressed copy does not match ({} lines/{} bytes read, {} lines/{} bytes after decompression)",
            original.lines, original.bytes, check.lines, check.bytes
        )));
    }
    std::fs::rename(&tmp, &out)?;
    crate::fsutil::sync_parent(&out)?;
    std::fs::remove_file(path)?;
    crate::fsutil::sync_parent(path)?;
    Ok(Some(out))
}

fn write_compressed(
    input: File,
    tmp: &Path,
    codec: Compress,
    level: Option<i32>,
    stop: &AtomicBool,
    pressure: &Pressure,
) -> std::io::Result<Option<Digest>> {
    let file = File::create(tmp)?;
    let mut reader = BufReader::with_capacity(CHUNK, input);
    let mut d = DigestBuilder::default();
    macro_rules! pump {
        ($enc:expr) => {{
            let mut enc = $enc;
            loop {
                wait_calm(pressure, stop);
                if stop.load(Relaxed) {
                    return Ok(None);
                }
                let chunk = reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                enc.write_all(chunk)?;
                d.update(chunk);
                let n = chunk.len();
                reader.consume(n);
            }
            enc
        }};
    }
    let file = match codec {
        Compress::Zstd => {
            let mut enc =
                zstd::stream::write::Encoder::new(file, level.unwrap_or(DEFAULT_ZSTD_LEVEL))?;
            enc.window_log(ZSTD_WINDOW_LOG)?;
            pump!(enc).finish()?
        }
        Compress::Gzip => {
            let level = flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32);
            let enc = flate2::write::GzEncoder::new(file, level);
            pump!(enc).finish()?
        }
        Compress::None => return Ok(None),
    };
    file.sync_all()?;
    Ok(Some(d.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check after compressing: the digest does not depend on how the bytes are cut into
    /// reads, and one changed byte (same length, same lines) changes it.
    #[test]
    fn the_digest_sees_a_changed_byte_whatever_the_reads() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"seq\":{i},\"pad\":\"xyz\"}}\n").into_bytes())
            .collect();
        let whole = digest(&text[..]).unwrap();
        assert_eq!(whole.lines, 20_000);
        assert_eq!(whole.bytes, text.len() as u64);
        for cut in [1, 7, 4096, 65_537] {
            let mut d = DigestBuilder::default();
            text.chunks(cut).for_each(|c| d.update(c));
            assert_eq!(d.finish(), whole, "reads of {cut} bytes");
        }
        let mut changed = text.clone();
        let at = changed.len() / 2;
        changed[at] ^= 0x01;
        let other = digest(&changed[..]).unwrap();
        assert_eq!((other.lines, other.bytes), (whole.lines, whole.bytes));
        assert_ne!(other, whole);
    }

    #[test]
    fn each_file_is_counted_as_compressed_or_failed() {
        let stats = Stats::new(vec![], 1);
        let path = Path::new("/out/a.jsonl");
        CompressEvent::Compressed { path }.emit(&stats);
        CompressEvent::Compressed { path }.emit(&stats);
        CompressEvent::Failed {
            path,
            error: &std::io::Error::other("ENOSPC"),
        }
        .emit(&stats);
        assert_eq!(stats.files_compressed.load(Relaxed), 2);
        assert_eq!(stats.compress_errors.load(Relaxed), 1);
    }

    fn stats() -> Arc<Stats> {
        Arc::new(Stats::new(vec![], 1))
    }

    fn corpus_sample() -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
        let mut all = Vec::new();
        for name in ["bybit-linear_orderbook.jsonl", "okx_books.jsonl"] {
            all.extend(std::fs::read(dir.join(name)).unwrap());
        }
        all
    }

    #[test]
    fn zstd_and_gzip_round_trip_and_replace_the_original() {
        let data = corpus_sample();
        for (codec, ext) in [(Compress::Zstd, ".zst"), (Compress::Gzip, ".gz")] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("a.jsonl");
            std::fs::write(&path, &data).unwrap();
            let out = compress_file(
                &path,
                codec,
                None,
                &AtomicBool::new(false),
                &Pressure::default(),
            )
            .unwrap()
            .unwrap();
            assert_eq!(out, dir.path().join(format!("a.jsonl{ext}")));
            assert!(!path.exists(), "the original is removed after the check");
            let mut back = Vec::new();
            let f = File::open(&out).unwrap();
            match codec {
                Compress::Zstd => zstd::stream::read::Decoder::new(f)
                    .unwrap()
                    .read_to_end(&mut back),
                _ => flate2::read::MultiGzDecoder::new(f).read_to_end(&mut back),
            }
            .unwrap();
            assert_eq!(back, data);
            assert!(std::fs::metadata(&out).unwrap().len() < data.len() as u64 / 3);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_compressor_priority_is_idle() {
        let policy = std::thread::spawn(|| {
            lower_priority();
            // SAFETY: pid 0 is the calling thread.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
        // SAFETY: as above; this (test) thread keeps its normal policy.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn draining_raises_the_compressor_to_normal_priority() {
        let (before, after) = std::thread::spawn(|| {
            let p = Pressure::default();
            lower_priority();
            // SAFETY: pid 0 is the calling thread.
            let before = unsafe { libc::sched_getscheduler(0) };
            p.drain();
            wait_calm(&p, &AtomicBool::new(false));
            // SAFETY: as above.
            (before, unsafe { libc::sched_getscheduler(0) })
        })
        .join()
        .unwrap();
        assert_eq!((before, after), (libc::SCHED_IDLE, libc::SCHED_OTHER));
    }

    #[test]
    fn the_compressor_waits_only_just_after_a_backlog() {
        let p = Pressure::default();
        assert!(!p.recent(), "no mark yet");
        p.mark_backlog();
        assert!(p.recent());
        // A stop ends the wait at once.
        let t = Instant::now();
        wait_calm(&p, &AtomicBool::new(true));
        assert!(t.elapsed() < crate::fair::YIELD_AFTER_BACKLOG);
        // Otherwise it lasts until the mark is old, not to the cap.
        wait_calm(&p, &AtomicBool::new(false));
        assert!(!p.recent());
        assert!(t.elapsed() >= crate::fair::YIELD_AFTER_BACKLOG && t.elapsed() < YIELD_MAX);
    }

    #[test]
    fn a_stop_abandons_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, corpus_sample()).unwrap();
        let got = compress_file(
            &path,
            Compress::Zstd,
            None,
            &AtomicBool::new(true),
            &Pressure::default(),
        )
        .unwrap();
        assert_eq!(got, None);
        assert!(path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporaries_never_hold_jsonl() {
        assert_eq!(tmp_name("a.jsonl", ".zst"), "a.zst.tmp");
        assert_eq!(tmp_name("a.events.ndjson", ".gz"), "a.events.gz.tmp");
        assert_eq!(tmp_name("a.txt", ".zst"), "a.txt.zst.tmp");
    }

    #[test]
    fn sweep_finishes_a_cut_compression_even_with_compression_off() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.jsonl"), "{}\n").unwrap();
        std::fs::write(d.join("a.jsonl.zst"), "verified earlier").unwrap();
        std::fs::write(d.join("b.jsonl"), "{}\n").unwrap();
        std::fs::write(d.join("b.jsonl.gz"), "verified earlier").unwrap();
        std::fs::write(d.join("c.jsonl"), "{}\n").unwrap();
        std::fs::write(d.join("c.jsonl.zst.tmp"), "half").unwrap();
        sweep(d, Compress::None, None);
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.jsonl.zst", "b.jsonl.gz", "c.jsonl"]);
    }

    #[tokio::test]
    async fn sweep_cleans_temporaries_and_queues_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("s")).unwrap();
        std::fs::write(d.join("s/old.jsonl"), "{}\n").unwrap();
        std::fs::write(d.join("s/half.jsonl.zst.tmp"), "junk").unwrap();
        std::fs::write(d.join("s/cut.zst.tmp"), "junk").unwrap();
        std::fs::write(d.join("s/open.jsonl.open"), "{}\n").unwrap();
        std::fs::write(d.join("s/done.jsonl"), "{}\n").unwrap();
        std::fs::write(d.join("s/done.jsonl.zst"), "verified earlier").unwrap();
        let stats = stats();
        let (compressor, queue) =
            Compressor::spawn(Compress::Zstd, None, stats.clone(), Arc::default(), None)
                .unwrap()
                .unwrap();
        sweep(d, Compress::Zstd, Some(&queue));
        drop(queue);
        compressor.finish(std::time::Duration::from_secs(30)).await;
        let mut names: Vec<String> = std::fs::read_dir(d.join("s"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["done.jsonl.zst", "old.jsonl.zst", "open.jsonl.open"]
        );
        assert_eq!(stats.files_compressed.load(Relaxed), 1);
        assert_eq!(stats.compress_backlog.load(Relaxed), 0);
    }
}
