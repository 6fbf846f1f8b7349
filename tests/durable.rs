//! Durability: crash recovery under SIGKILL, background compression, manifests, retention,
//! free-space watermarks, and write errors on a real full filesystem and a real failed one.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use wsrec::config::Compress;

fn spawn_recorder(url: &str, dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wsrec"))
        .args([
            "record",
            url,
            "-o",
            "out",
            "--name",
            "feed",
            "--status-socket",
            "",
        ])
        .args(["--flush-interval", "20ms", "--status-interval", "off"])
        .args(extra)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child with a valid signal.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

async fn wait_exit(child: &mut Child) -> Option<i32> {
    for _ in 0..3000 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = child.kill();
    panic!("wsrec did not exit");
}

/// xorshift, so the kill points differ between iterations but the test needs no extra crate.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_never_leaves_a_torn_or_duplicated_recording() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let url = server.url();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let started = Instant::now();
    let mut iterations = 0;
    let mut conn_no = 0u64;
    // Many kills, bounded in time.
    while iterations < 12 && started.elapsed() < Duration::from_secs(20) {
        iterations += 1;
        let mut child = spawn_recorder(&url, d, &[]);
        let Ok(mut conn) = tokio::time::timeout(Duration::from_secs(15), server.accept()).await
        else {
            let _ = child.kill();
            panic!(
                "the recorder did not connect: {}",
                std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default()
            );
        };
        let c = conn_no;
        conn_no += 1;
        let sender = tokio::spawn(async move {
            let mut i = 0usize;
            loop {
                let batch: Vec<String> = (i..i + 50)
                    .map(|n| format!(r#"{{"c":{c},"n":{n},"pad":"{}"}}"#, "x".repeat(n % 40)))
                    .collect();
                if conn.try_send_all(batch).await.is_err() {
                    return;
                }
                i += 50;
                tokio::task::yield_now().await;
            }
        });
        let delay = 30 + next_rand(&mut rng) % 250;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        signal(&child, libc::SIGKILL);
        let _ = wait_exit(&mut child).await;
        sender.abort();
    }
    // A last, graceful run recovers what the final kill left and closes everything.
    let mut child = spawn_recorder(&url, d, &["--compress", "none"]);
    let _conn = server.accept().await;
    let out = d.join("out");
    for _ in 0..500 {
        if !all_files(&out)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".open"))
            || started.elapsed() > Duration::from_secs(60)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child).await, Some(0));

    let leftovers: Vec<PathBuf> = all_files(&out)
        .into_iter()
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".open") || n.ends_with(".tmp")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Every line of every file parses (records() panics otherwise), compressed or not.
    let recs = records(&out);
    let mut per_conn: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in &recs {
        if let Some(m) = r.get("msg") {
            per_conn
                .entry(m["c"].as_u64().unwrap())
                .or_default()
                .push(m["n"].as_u64().unwrap());
        }
    }
    let mut total = 0;
    for (c, ns) in &per_conn {
        let want: Vec<u64> = (0..ns.len() as u64).collect();
        assert_eq!(
            ns, &want,
            "connection {c}: not a gapless prefix of what was sent"
        );
        total += ns.len();
    }
    assert!(total > 0, "nothing was recorded in {iterations} runs");
    assert!(
        !events(&recs, "recovered").is_empty() || iterations == 0,
        "files left open by kill -9 are recovered and marked"
    );
}

#[tokio::test(start_paused = true)]
async fn closed_files_are_compressed_with_a_matching_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut cfg = config(dir.path(), vec![stream("feed", &server.url())]);
    cfg.compress = Compress::Zstd;
    let rec = start(cfg, BASE_NS);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 300)).await;
    rec.wait_messages(300).await;
    // Cross the hour: the file closes on the timer and is compressed in the background.
    tokio::time::advance(Duration::from_secs(15)).await;
    rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 1)
        .await;
    let files_now = files(dir.path());
    assert_eq!(files_now.len(), 1, "{files_now:?}");
    let zst = &files_now[0];
    assert!(
        zst.to_string_lossy()
            .ends_with("feed-20261124T100000Z.jsonl.zst"),
        "{zst:?}"
    );
    let text = read_text(zst);
    let m: Value = serde_json::from_slice(&std::fs::read(manifest_path(zst)).unwrap()).unwrap();
    assert_eq!(m["file"], "feed-20261124T100000Z.jsonl");
    assert_eq!(m["stream"], "feed");
    assert_eq!(m["lines"], text.lines().count() as u64);
    assert_eq!(m["bytes"], text.len() as u64);
    let hash = format!("{:016x}", twox_hash::XxHash3_64::oneshot(text.as_bytes()));
    assert_eq!(m["xxh3_64"], hash.as_str());
    assert_eq!(m["connections"][0]["conn"], 1);
    assert_eq!(m["connections"][0]["messages"], 300);
    assert_eq!(m["connections"][0]["first_seq"], 0);
    assert_eq!(m["connections"][0]["last_seq"], 299);
    assert_eq!(m["seq_gaps"], 0);
    rec.stop().await;
}

#[tokio::test(start_paused = true)]
async fn startup_cleans_temporaries_and_compresses_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("feed/old")).unwrap();
    std::fs::write(d.join("feed/old/a.jsonl"), "{\"x\":1}\n").unwrap();
    std::fs::write(d.join("feed/old/b.jsonl.zst.tmp"), "half a file").unwrap();
    std::fs::write(
        d.join("feed/old/c.jsonl.open"),
        "{\"ts\":1,\"stream\":\"feed\"}\n{\"ts\"",
    )
    .unwrap();
    let server = TestServer::start().await;
    let mut cfg = config(d, vec![stream("feed", &server.url())]);
    cfg.compress = Compress::Gzip;
    let rec = start(cfg, BASE_NS);
    rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 2)
        .await;
    rec.stop().await;
    let mut names: Vec<String> = std::fs::read_dir(d.join("feed/old"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The recovered file got its manifest like a cleanly closed one.
    assert_eq!(names, ["a.jsonl.gz", "c.jsonl.gz", "c.manifest.json"]);
    let recovered = read_text(&d.join("feed/old/c.jsonl.gz"));
    assert!(recovered.contains(r#""event":"recovered""#), "{recovered}");
    assert!(recovered.contains(r#""cut_bytes":5"#), "{recovered}");
}

#[tokio::test(start_paused = true)]
async fn retention_deletes_the_oldest_closed_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old_dir = d.join("feed/2026-01-01");
    std::fs::create_dir_all(&old_dir).unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(90 * 86_400);
    for (i, name) in ["feed-1.jsonl", "feed-2.jsonl"].iter().enumerate() {
        let p = old_dir.join(name);
        std::fs::write(&p, "x".repeat(10_000)).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(long_ago + Duration::from_secs(i as u64))
            .unwrap();
    }
    // Its manifest under the name older versions gave it, and under the current one.
    std::fs::write(old_dir.join("feed-1.jsonl.manifest.json"), "{}").unwrap();
    std::fs::write(old_dir.join("feed-1.manifest.json"), "{}").unwrap();
    // Another stream's files are out of scope.
    std::fs::create_dir_all(d.join("other")).unwrap();
    std::fs::write(d.join("other/x.jsonl"), "y".repeat(50_000)).unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.max_total_bytes = 12_000;
    let rec = start(config(d, vec![s]), BASE_NS);
    let mut conn = server.accept().await;
    conn.send_text(r#"{"a":1}"#).await;
    rec.wait_messages(1).await;
    tokio::time::advance(Duration::from_secs(15)).await;
    rec.wait_until(|s| s.files_closed.load(Relaxed) >= 1).await;
    rec.stop().await;
    assert!(
        !old_dir.join("feed-1.jsonl").exists(),
        "the oldest goes first"
    );
    assert!(
        !old_dir.join("feed-1.jsonl.manifest.json").exists()
            && !old_dir.join("feed-1.manifest.json").exists(),
        "with its manifest"
    );
    assert!(
        old_dir.join("feed-2.jsonl").exists(),
        "only as much as needed"
    );
    assert!(d.join("other/x.jsonl").exists());
    assert_eq!(
        files(&d.join("feed/2026-11-24")).len(),
        2,
        "this run's files stay"
    );
}

/// A small tmpfs mounted for the test; unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => SmallFs { dir },
            Ok(o) => panic!(
                "this test needs a small tmpfs to fill up (run as root, or with CAP_SYS_ADMIN): mount failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("this test needs `mount` to create a small tmpfs: {e}"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_disk_stop_losses_are_counted_and_the_gap_is_marked() {
    let fs = SmallFs::mount("4m");
    let out = fs.path().join("out");
    let mut server = TestServer::start().await;
    let mut cfg = config(&out, vec![stream("feed", &server.url())]);
    cfg.flush_interval = Duration::from_millis(10);
    cfg.disk_warn = Some(wsrec::config::Watermark::Bytes(3 << 20));
    cfg.disk_stop = Some(wsrec::config::Watermark::Bytes(2 << 20));
    let rec = start(cfg, wsrec::clock::system_now_ns());
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 10)).await;
    // In the file (not only received: a batch still on its way to the writer when the
    // level drops would be counted as lost).
    wait_for_lines(&rec, &out, 10).await;
    // Eat the space: below disk_stop.
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).unwrap();
    rec.wait_until(|s| s.disk_level.load(Relaxed) == 2).await;
    conn.send_all(numbered(10, 20)).await;
    rec.wait_messages(30).await;
    rec.wait_until(|s| s.streams[0].lines_lost.load(Relaxed) == 20)
        .await;
    // Space returns: writing resumes on its own and the gap is marked.
    std::fs::remove_file(&filler).unwrap();
    rec.wait_until(|s| s.disk_level.load(Relaxed) == 0).await;
    conn.send_all(numbered(30, 5)).await;
    rec.wait_messages(35).await;
    rec.stop().await;
    let recs = records(&out);
    let mut want = numbered(0, 10);
    want.extend(numbered(30, 5));
    assert_eq!(messages(&recs), want);
    let gap = events(&recs, "disk_full_gap");
    assert_eq!(gap.len(), 1);
    assert_eq!(gap[0]["lost"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_loses_no_line_silently_and_leaves_no_torn_line() {
    // 212 KiB left; removing the filler frees more than all the lines, so whatever is still
    // queued for the disk then cannot fill it again before the last line.
    let fs = SmallFs::mount("2m");
    let out = fs.path().join("out");
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; (2048 - 212) << 10]).unwrap();
    let mut server = TestServer::start().await;
    let mut cfg = config(&out, vec![stream("feed", &server.url())]);
    cfg.flush_interval = Duration::from_millis(10);
    let rec = start(cfg, wsrec::clock::system_now_ns());
    let mut conn = server.accept().await;
    // About 700 KB into the 212 KiB left.
    let total = 3000;
    let sent: Vec<String> = (0..total)
        .map(|i| format!(r#"{{"n":{i},"pad":"{}"}}"#, "p".repeat(150)))
        .collect();
    conn.send_all(sent).await;
    rec.wait_messages(total as u64).await;
    rec.wait_until(|s| s.streams[0].io_lost.load(Relaxed) > 0)
        .await;
    // Space returns; writing goes on in a new file that starts with the mark.
    std::fs::remove_file(&filler).unwrap();
    conn.send_text(r#"{"after":1}"#).await;
    rec.wait_messages(total as u64 + 1).await;
    rec.wait_until(|s| s.streams[0].lines_written.load(Relaxed) > 0)
        .await;
    let stats = rec.stats.clone();
    rec.stop().await;
    // Read after the stop: buffers still queued for the disk when the last message arrived are
    // counted as lost only once the disk worker has tried them.
    let lost = stats.streams[0].lines_lost.load(Relaxed);
    let errors = stats.write_errors.load(Relaxed);
    assert!(errors >= 1);
    // Every line in the files parses (records() checks), the kept messages are sent ones in
    // order, nothing is lost without being counted, and the loss is marked.
    let recs = records(&out);
    let got = messages(&recs);
    assert_eq!(got.last().map(String::as_str), Some(r#"{"after":1}"#));
    let ns: Vec<u64> = recs
        .iter()
        .filter_map(|r| {
            r.get("msg")
                .and_then(|m| m.get("n"))
                .and_then(Value::as_u64)
        })
        .collect();
    assert!(
        ns.windows(2).all(|w| w[0] < w[1]),
        "kept messages stay in order"
    );
    assert!(
        ns.len() as u64 + lost >= total as u64,
        "kept {} + lost {lost} < sent {total}",
        ns.len()
    );
    let gaps = events(&recs, "write_error_gap");
    assert!(!gaps.is_empty(), "the loss is marked in the data");
}

/// An ext4 filesystem on a loop device (its image on a tmpfs with room to spare, so it never
/// fills) that the test makes fail at a moment of its choosing with [`FailingFs::fail`].
struct FailingFs {
    /// Holds the image; unmounted (on drop) after the ext4 on it.
    _back: SmallFs,
    mnt: tempfile::TempDir,
    image: PathBuf,
}

impl FailingFs {
    fn mount() -> FailingFs {
        let back = SmallFs::mount("40m");
        let image = back.path().join("disk.img");
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                out.status.success(),
                "this test needs loop devices and mkfs.ext4 to make a failing disk ({what}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            Command::new("truncate").args(["-s", "32M"]).arg(&image),
            "truncate",
        );
        run(
            Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image),
            "mkfs.ext4",
        );
        let mnt = tempfile::tempdir().unwrap();
        run(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(mnt.path()),
            "mount -o loop",
        );
        FailingFs {
            _back: back,
            mnt,
            image,
        }
    }

    /// Fails the filesystem as if its disk went away right after a sync: ext4 syncs
    /// everything written so far, then shuts down (`EXT4_IOC_SHUTDOWN`,
    /// `EXT4_GOING_FLAGS_DEFAULT`). From then on the kernel answers every write, fsync, open,
    /// truncate, fallocate and rename on it with EIO, whatever the load.
    ///
    /// Not the shutdown without the sync (`EXT4_GOING_FLAGS_NOLOGFLUSH`, a pulled disk): an
    /// fsync under way as the journal aborts then sometimes reports success for data that
    /// never reaches the image (seen in 4 runs out of 30), so what survives would depend on
    /// timing. Nor a device-mapper `error` target under ext4: ext4 then answers writes with
    /// EIO or EROFS depending on whether its journal has aborted yet, and some kernels (minimal
    /// VM kernels) have no device-mapper.
    fn fail(&self) {
        use std::os::fd::AsRawFd as _;
        // <linux/ext4.h>: EXT4_IOC_SHUTDOWN is _IOR('X', 125, __u32); the u32 says how.
        const SHUTDOWN: libc::Ioctl = libc::_IOR::<u32>(b'X' as u32, 125);
        const SYNC_FIRST: u32 = 0;
        let root = std::fs::File::open(self.mnt.path()).unwrap();
        let how = SYNC_FIRST;
        // SAFETY: `root` is open for the whole call; the kernel reads one u32 from `&how`.
        let r = unsafe { libc::ioctl(root.as_raw_fd(), SHUTDOWN, &raw const how) };
        assert_eq!(
            r,
            0,
            "this test needs to shut down an ext4 filesystem (root, Linux 4.10 or later): {}",
            std::io::Error::last_os_error()
        );
    }

    /// After the disk works again: unmount, repair and mount again, as an operator would.
    fn repair(&self) {
        let ok = |cmd: &mut Command| {
            cmd.output()
                .is_ok_and(|o| o.status.success() || o.status.code() == Some(1))
        };
        // Another process walking a path under the mount at that moment (a file manager, an
        // indexer, a recorder starting elsewhere that looks at a journal's directory) makes
        // umount fail with EBUSY for that moment: try again, as an operator would, and say
        // what held it if it never lets go.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("umount")
                .arg(self.mnt.path())
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline {
                let holders = Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "ls -l /proc/[0-9]*/fd 2>/dev/null | grep -F '{}'",
                        self.mnt.path().display()
                    ))
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                panic!(
                    "umount: {}; open under the mount: {holders}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            ok(Command::new("e2fsck").args(["-fy"]).arg(&self.image)),
            "e2fsck"
        );
        assert!(
            ok(Command::new("mount")
                .args(["-o", "loop"])
                .arg(&self.image)
                .arg(self.mnt.path())),
            "mount again"
        );
    }
}

impl Drop for FailingFs {
    fn drop(&mut self) {
        // The loop device goes with the mount (mount -o loop sets it to clear itself).
        unmount(self.mnt.path());
    }
}

/// Unmounts `dir`; if it is still in use (a test that failed while the recorder still held
/// files there), detaches it now and lets the kernel release it when the last file closes.
fn unmount(dir: &Path) {
    let done = Command::new("umount")
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !done {
        let _ = Command::new("umount").arg("--lazy").arg(dir).status();
    }
}

/// Waits until the files under `dir` hold at least `n` complete message lines (written by the
/// disk worker, though perhaps not yet synced).
async fn wait_for_lines(rec: &Running, dir: &Path, n: usize) {
    let complete = |dir: &Path| -> usize {
        all_files(dir)
            .iter()
            .map(|f| {
                let data = std::fs::read(f).unwrap_or_default();
                data.split_inclusive(|&b| b == b'\n')
                    .filter(|l| l.ends_with(b"\n") && l.windows(6).any(|w| w == b"\"msg\":"))
                    .count()
            })
            .sum()
    };
    rec.wait_until(|_| dir.exists() && complete(dir) >= n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eio_is_counted_logged_and_marked_without_a_panic() {
    let fs = FailingFs::mount();
    let out = fs.mnt.path().join("out");
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.fsync = wsrec::config::Fsync::Always;
    let mut cfg = config(&out, vec![s]);
    cfg.flush_interval = Duration::from_millis(10);
    // A minute past the hour: no rotation during the test.
    let rec = start(cfg, BASE_NS + 70_000_000_000);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 100)).await;
    wait_for_lines(&rec, &out, 100).await;
    fs.fail();
    // Every line from now on meets EIO.
    conn.send_all(numbered(100, 100)).await;
    rec.wait_until(|s| s.streams[0].io_lost.load(Relaxed) >= 100)
        .await;
    assert!(rec.stats.write_errors.load(Relaxed) >= 1);
    let last_error = rec.stats.streams[0].last_error.lock().unwrap().clone();
    assert!(
        last_error.contains("os error 5"),
        "EIO expected: {last_error}"
    );
    // The recorder keeps running through the error and stops cleanly (its files stay open
    // on the failed disk: their rename fails too).
    conn.send_text(r#"{"after":1}"#).await;
    rec.wait_messages(201).await;
    let stats = rec.stats.clone();
    rec.stop().await;
    // Read after the stop: every buffer has been tried by then.
    let lost = stats.streams[0].lines_lost.load(Relaxed);
    assert!(lost >= 101, "every line after the failure is lost: {lost}");
    // The disk works again; after the operator's repair the next run recovers the file the
    // error left open and marks it in the data.
    fs.repair();
    let next = start(
        config(&out, vec![stream("feed", &server.url())]),
        BASE_NS + 130_000_000_000,
    );
    let _conn = server.accept().await;
    next.stop().await;
    let recs = records(&out);
    assert!(
        !events(&recs, "recovered").is_empty(),
        "the interrupted file is marked"
    );
    assert!(
        recs.iter().all(|r| r.get("ts").is_some()),
        "every line of every file parses"
    );
    // What survived is everything written before the failure, in order; the rest is counted.
    assert_eq!(messages(&recs), numbered(0, 100));
}

/// Free bytes of the file system holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` writable.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}

/// A disk with less room than one writer buffer (512 KiB) and no `disk_stop` to stop writing
/// before it is full: what fits is written, every message that did not fit is in a
/// `write_error_gap` marker that reaches the file once space returns (a marker lost on the
/// full disk is merged into the next one), and every manifest describes the lines in its file.
async fn a_nearly_full_disk_marks_every_lost_message(rate: usize, format: wsrec::Format) {
    // Larger than all the test sends (2 s at `rate`, at most 20 MB): the lines the disk thread
    // has not yet tried when space returns (on a busy machine it can be seconds behind) then
    // fit, instead of filling the disk again before the files can close.
    let fs = SmallFs::mount("32m");
    let out = fs.path().join("out");
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.format = format;
    let mut cfg = config(&out, vec![s]);
    cfg.flush_interval = Duration::from_millis(10);
    let rec = start(cfg, wsrec::clock::system_now_ns());
    let mut conn = server.accept().await;
    rec.wait_until(|s| s.streams[0].lines_written.load(Relaxed) > 0)
        .await;
    // Leave about 400 KB: less than one full buffer.
    let filler = fs.path().join("filler");
    let room = 400 << 10;
    std::fs::write(&filler, vec![0u8; (free_bytes(fs.path()) - room) as usize]).unwrap();
    // Two seconds of 200-byte messages at `rate` per second: far more than fits.
    let total = rate * 2;
    let line = |i: usize| format!(r#"{{"n":{i},"pad":"{}"}}"#, "p".repeat(180));
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let per_tick = rate / 1000;
    let mut sent = 0;
    while sent < total {
        tick.tick().await;
        conn.send_all((sent..sent + per_tick).map(line)).await;
        sent += per_tick;
    }
    rec.wait_messages(total as u64).await;
    rec.wait_until(|s| s.streams[0].io_lost.load(Relaxed) > 0)
        .await;
    // Space returns: the stream goes on, and the markers of every loss reach the file (at the
    // next flush, or at the latest before the files close).
    std::fs::remove_file(&filler).unwrap();
    conn.send_all((total..total + 10).map(line)).await;
    rec.wait_messages(total as u64 + 10).await;
    let last_error = rec.stats.streams[0]
        .last_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    rec.stop().await;

    let recs = records(&out);
    let ns: Vec<u64> = recs
        .iter()
        .filter_map(|r| r.get("msg").unwrap_or(r)["n"].as_u64())
        .collect();
    assert!(ns.windows(2).all(|w| w[0] < w[1]), "no message twice");
    let kept = ns.len() as u64;
    let gaps = events(&recs, "write_error_gap");
    let marked: u64 = gaps.iter().map(|g| g["lost"].as_u64().unwrap()).sum();
    assert!(
        kept > 0,
        "what fit was written: nothing in {:?}; markers {gaps:?}; last error {last_error:?}; \
         {} records",
        files(&out),
        recs.len()
    );
    assert!(marked > 0, "the loss is marked: {gaps:?}");
    assert_eq!(
        kept + marked,
        total as u64 + 10,
        "messages in the files ({kept}) + marked lost ({marked}) = received; markers {gaps:?}"
    );
    // Every event lost with the data is counted in a marker.
    let lost_events: u64 = gaps.iter().filter_map(|g| g["lost_events"].as_u64()).sum();
    assert_eq!(
        events(&recs, "connected").len() as u64 + lost_events,
        1,
        "the connected event is in the file or counted in a marker"
    );
    // Every manifest describes its file: `wsrec verify` finds the losses, but no manifest
    // mismatch and no sequence gap that the markers do not explain.
    let verify = Command::new(env!("CARGO_BIN_EXE_wsrec"))
        .args(["verify", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(
        report["manifests_checked"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let kinds = issue_kinds(&report);
    assert!(
        kinds.iter().all(|k| *k == "not_written"),
        "only the marked losses are problems: {report}"
    );
    assert_eq!(
        report["streams"][0]["not_written"].as_u64(),
        Some(marked),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_at_5000_msg_per_s_marks_every_lost_message() {
    a_nearly_full_disk_marks_every_lost_message(5_000, wsrec::Format::Envelope).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_at_50000_msg_per_s_marks_every_lost_message() {
    a_nearly_full_disk_marks_every_lost_message(50_000, wsrec::Format::Envelope).await;
}

/// Raw format: the markers go to the sidecar events file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_in_raw_format_marks_every_lost_message_in_the_sidecar() {
    a_nearly_full_disk_marks_every_lost_message(50_000, wsrec::Format::Raw).await;
}

/// [`spawn_recorder`] with `flush_interval` at an hour (no timer hands lines on during a
/// test), no compression, and the journal in `journal_dir` (`""`: none).
fn spawn_paced_recorder(url: &str, dir: &Path, journal_dir: &str, extra: &[&str]) -> Child {
    let paced = [
        "--flush-interval",
        "1h",
        "--compress",
        "none",
        "--journal-dir",
        journal_dir,
    ];
    spawn_recorder(url, dir, &[&paced[..], extra].concat())
}

/// [`spawn_paced_recorder`] with its journal in `DIR/journal` and its status socket at
/// `DIR/status.sock` (both returned), `extra` after.
fn spawn_journal_recorder(url: &str, dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf, Child) {
    let jdir = dir.join("journal");
    std::fs::create_dir(&jdir).unwrap();
    let socket = dir.join("status.sock");
    let status = ["--status-socket", socket.to_str().unwrap()];
    let child = spawn_paced_recorder(url, dir, jdir.to_str().unwrap(), &[&status, extra].concat());
    (jdir, socket, child)
}

/// A quiet stream's lines go to the journal at each idle moment, not to the file: no `write(2)`
/// per message (the files get them every `flush_interval`, an hour here, or at the stop), and
/// the status counts the bytes kept there. A clean stop writes them all and removes the
/// journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_lines_wait_in_the_journal_and_a_clean_stop_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let mut server = TestServer::start().await;
    let (jdir, socket, mut child) = spawn_journal_recorder(&server.url(), d, &[]);
    let mut conn = server.accept().await;
    for n in 0..10u64 {
        conn.send_all([format!(r#"{{"r":0,"n":{n}}}"#)]).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while safe_messages_of_run(&out, &jdir, 0) <= n {
            assert!(
                Instant::now() < deadline,
                "message {n} never reached the journal"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(
        lines_of_run(&out, 0),
        0,
        "the file got a write before its flush tick"
    );
    let status = status_json(&socket).unwrap();
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child).await, Some(0));
    assert_eq!(lines_of_run(&out, 0), 10, "a clean stop writes every line");
    // Every message line went through the journal (with the connection's event lines, and
    // without what the stop itself wrote).
    let texts = complete_texts(&out);
    let messages: usize = texts
        .iter()
        .flat_map(|t| t.split_inclusive(|&b| b == b'\n'))
        .filter(|l| l.windows(6).any(|w| w == br#""r":0,"#))
        .map(<[u8]>::len)
        .sum();
    let all: usize = texts.iter().map(Vec::len).sum();
    let kept = status["journal_bytes"].as_u64().unwrap() as usize;
    assert!(
        (messages..all).contains(&kept),
        "journal_bytes {kept}, message lines {messages} bytes, files {all} bytes"
    );
    assert_eq!(status["journal_fallbacks"], 0);
    let left: Vec<_> = std::fs::read_dir(&jdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "a clean stop removes its journal: {left:?}"
    );
}

/// A flush tick hands the files their lines and the journal goes on in its other half (so
/// the one it leaves can be used again), which the status counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_tick_writes_the_journaled_lines_and_starts_the_other_half() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let mut server = TestServer::start().await;
    let (_jdir, socket, mut child) =
        spawn_journal_recorder(&server.url(), d, &["--flush-interval", "50ms"]);
    let mut conn = server.accept().await;
    // A message now and then until a tick has found lines in the journal (a tick that comes
    // between a line and the writer's next idle moment hands it on unjournaled).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    let status = loop {
        let status = status_json(&socket).unwrap();
        if status["journal_halves"].as_u64().unwrap() >= 1 {
            break status;
        }
        assert!(Instant::now() < deadline, "no half started: {status}");
        conn.send_all([format!(r#"{{"r":0,"n":{sent}}}"#)]).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // A half is started only when the journal holds lines, and after the files were handed
    // them.
    assert!(status["journal_bytes"].as_u64().unwrap() > 0, "{status}");
    while lines_of_run(&out, 0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the journaled lines never reached the file"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child).await, Some(0));
    assert_eq!(lines_of_run(&out, 0), sent);
}

/// The complete lines (up to the last `\n`) of every recording file under `out`, `.open` files
/// included (read as they are on disk).
fn complete_texts(out: &Path) -> Vec<Vec<u8>> {
    if !out.exists() {
        return Vec::new();
    }
    all_files(out)
        .iter()
        .filter(|p| !p.to_string_lossy().ends_with(".manifest.json"))
        .map(|p| {
            let mut text = std::fs::read(p).unwrap_or_default();
            text.truncate(text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
            text
        })
        .collect()
}

/// Lines of run `run` (messages `{"r":run,...}`) in the complete lines of every file under `out`.
fn lines_of_run(out: &Path, run: u64) -> u64 {
    let needle = format!(r#""r":{run},"#);
    complete_texts(out)
        .iter()
        .flat_map(|text| text.split(|&b| b == b'\n'))
        .filter(|l| l.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .count() as u64
}

/// A steady flow (20 messages every millisecond) that pauses is safe from a kill during the
/// pause, long before any timer: the writer copies its lines into the journal whenever its
/// queue runs empty (or, without a journal, hands them to the OS), not once a buffer is full
/// or `flush_interval` (an hour here) has passed. So a SIGKILL in a pause loses nothing. Each
/// run waits for the lines to be safe (in the journal's complete records, or in the file: an
/// event, with a deadline far below the hour the timer would take), then kills; the next start
/// completes the files from the journal. How much a kill in the middle of the flow loses
/// depends on scheduling, so the bench measures it (bench/README.md, `IDLE_HANDOFF_GAP`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_the_flow_pauses_loses_nothing_and_waits_for_no_timer() {
    a_kill_after_the_flow_pauses_loses_nothing(true).await;
}

/// The same without a journal: the lines are in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_journal_a_kill_after_the_flow_pauses_loses_nothing_either() {
    a_kill_after_the_flow_pauses_loses_nothing(false).await;
}

/// The messages of run `run` (`{"r":run,"n":N,...}`) that a kill cannot lose: in the complete
/// lines of the files under `out`, or in the complete records of the journals in `journals`
/// (a full buffer goes to its file at once, the rest of an idle moment's lines to the journal).
fn safe_messages_of_run(out: &Path, journals: &Path, run: u64) -> u64 {
    let needle = format!(r#"{{"r":{run},"n":"#);
    let mut texts = complete_texts(out);
    for e in std::fs::read_dir(journals).unwrap().flatten() {
        let bytes = std::fs::read(e.path()).unwrap_or_default();
        for r in wsrec::store::journal::records(&bytes) {
            texts.push(r.lines.to_vec());
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for text in &texts {
        for line in text.split(|&b| b == b'\n') {
            let Some(at) = line
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            else {
                continue;
            };
            let digits = &line[at + needle.len()..];
            let end = digits
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(digits.len());
            if let Ok(n) = std::str::from_utf8(&digits[..end])
                .unwrap_or("")
                .parse::<u64>()
            {
                seen.insert(n);
            }
        }
    }
    seen.len() as u64
}

async fn a_kill_after_the_flow_pauses_loses_nothing(journal: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let jdir = d.join("journal");
    std::fs::create_dir(&jdir).unwrap();
    let journal_arg = if journal { jdir.to_str().unwrap() } else { "" };
    let mut server = TestServer::start().await;
    let url = server.url();
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let mut sent = Vec::new();
    for run in 0..3u64 {
        let mut child = spawn_paced_recorder(&url, d, journal_arg, &[]);
        let Ok(mut conn) = tokio::time::timeout(Duration::from_secs(15), server.accept()).await
        else {
            let _ = child.kill();
            panic!("the recorder did not connect");
        };
        // 20 messages of about 200 bytes every millisecond, for 50 to 250 ms: a count that is
        // no multiple of what fills a buffer.
        let ticks = 50 + next_rand(&mut rng) % 200;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let pad = "k".repeat(170);
        for t in 0..ticks {
            tick.tick().await;
            let n0 = t * 20;
            conn.send_all((n0..n0 + 20).map(|n| format!(r#"{{"r":{run},"n":{n},"p":"{pad}"}}"#)))
                .await;
        }
        let total = ticks * 20;
        // The flow pauses (the connection stays open): everything reaches the journal, or
        // without one the file.
        let safe = |run| {
            if journal {
                safe_messages_of_run(&out, &jdir, run)
            } else {
                lines_of_run(&out, run)
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while safe(run) < total {
            assert!(
                Instant::now() < deadline,
                "run {run}: {} of {total} lines were safe within 60 s of the pause",
                safe(run)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        signal(&child, libc::SIGKILL);
        let _ = wait_exit(&mut child).await;
        drop(conn);
        sent.push(total);
    }
    // A graceful run completes and recovers what the last kill left open.
    let mut child = spawn_recorder(
        &url,
        d,
        &["--compress", "none", "--journal-dir", journal_arg],
    );
    let _conn = server.accept().await;
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child).await, Some(0));

    let recs = records(&out);
    let mut recorded = vec![0u64; sent.len()];
    for r in &recs {
        if let Some(run) = r.get("msg").and_then(|m| m["r"].as_u64()) {
            recorded[run as usize] += 1;
        }
    }
    assert_eq!(
        recorded, sent,
        "messages of each run in the files against those sent"
    );
    let journals: Vec<_> = std::fs::read_dir(&jdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(journals.is_empty(), "replayed and removed: {journals:?}");
}
