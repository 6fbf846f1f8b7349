//! Upload to object storage, for real: each test starts its own `moto_server` (PyPI
//! `moto[server]`, a third-party S3 implementation, installed pinned by `scripts/test.sh`) on a
//! free loopback port, and checks what a recording puts in it: the sealed files and manifests
//! under their templated keys with identical bytes, multipart for a large file, restarts with
//! files still queued, a server that is down and comes back, and local copies deleted only after
//! the upload. Without moto these tests fail, saying how to install it.
//!
//! Real time throughout (the storage is another process); every wait is bounded.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use wsrec::config::Compress;
use wsrec::ship::upload::{Credentials, UploadConfig};

/// What `scripts/test.sh` installs.
const MOTO: &str = "moto[server]==5.2.5";
const BUCKET: &str = "wsrec-test";
const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

/// A Python that has moto; the test fails when it is missing.
fn python() -> Command {
    python_with(
        "moto.server",
        MOTO,
        "for the upload tests (a real S3 server on loopback)",
    )
}

/// A port nothing listens on right now (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `moto_server` on `127.0.0.1:port`, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts moto, waits until it answers (bounded), and creates the test bucket.
    fn start(port: u16) -> Moto {
        let child = python()
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .spawn()
            .expect("cannot start python -m moto.server");
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!("moto_server exited at start ({status}); is {MOTO} installed?");
            }
            if let Ok(status) = moto.request("PUT", &format!("/{BUCKET}")) {
                assert_eq!(status, 200, "creating the bucket");
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One plain HTTP request (moto takes unsigned bucket operations); the status code.
    fn request(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            tcp,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut head = String::new();
        tcp.read_to_string(&mut head)?;
        head.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn credentials() -> Credentials {
    Credentials {
        key_id: "AKIDTESTTESTTEST".to_owned(),
        secret_key: "test-secret".to_owned(),
        token: None,
    }
}

/// The upload settings of the tests: moto on `port`, prefix `rec`, host `testhost`, fast retries.
fn upload(port: u16) -> UploadConfig {
    let mut u = UploadConfig::new(&format!("s3://{BUCKET}/rec"));
    u.endpoint = Some(format!("http://127.0.0.1:{port}"));
    u.allow_http = true;
    u.region = Some("us-east-1".to_owned());
    u.host = Some("testhost".to_owned());
    u.retry_initial = Duration::from_millis(50);
    u.retry_max = Duration::from_millis(500);
    u.credentials = Some(credentials());
    u
}

/// A client of the test bucket, to look at what arrived.
fn bucket(port: u16) -> AmazonS3 {
    let c = credentials();
    AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(BUCKET)
        .with_access_key_id(c.key_id)
        .with_secret_access_key(c.secret_key)
        .build()
        .unwrap()
}

/// Every object in the bucket: key → bytes.
async fn objects(store: &AmazonS3) -> BTreeMap<String, Vec<u8>> {
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut out = BTreeMap::new();
    for m in metas {
        let body = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.insert(m.location.to_string(), body.to_vec());
    }
    out
}

/// The key a local file gets: `rec/{stream}/{date}/testhost/{file}`.
fn key_of(path: &FsPath) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    format!("rec/feed/2026-11-24/testhost/{name}")
}

/// The manifest of a sealed data file.
fn manifest_of(path: &FsPath) -> PathBuf {
    manifest_path(path)
}

/// Local sealed data files (compressed or plain, no manifests or markers).
fn sealed(dir: &FsPath) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.ends_with(".jsonl.zst") || s.ends_with(".jsonl")
        })
        .collect()
}

/// Asserts the bucket holds `files` and their manifests, byte for byte, and nothing else but
/// complete copies of other local files (an upload cut short by a shutdown, before its
/// manifest and marker: the next start uploads it again under the same key).
async fn assert_bucket_holds(store: &AmazonS3, dir: &FsPath, files: &[PathBuf]) {
    let mut got = objects(store).await;
    for f in files {
        for p in [f.clone(), manifest_of(f)] {
            let k = key_of(&p);
            let body = got.remove(&k).unwrap_or_else(|| panic!("{k} is missing"));
            assert!(body == std::fs::read(&p).unwrap(), "{k} differs from {p:?}");
        }
    }
    for (k, body) in got {
        let local = sealed(dir)
            .into_iter()
            .find(|p| key_of(p) == k)
            .unwrap_or_else(|| panic!("{k} is no local file"));
        assert!(!files.contains(&local));
        assert!(
            body == std::fs::read(&local).unwrap(),
            "{k} is not complete"
        );
    }
}

/// 10:30:00Z, half an hour from a boundary of the default hourly rotation: a recorder started
/// at this time with `rotate = "1h"` closes files only at shutdown.
const MID_HOUR_NS: u64 = BASE_NS - 1_790_000_000_000;

/// Stream `feed` rotating every `rotate`, zstd, uploading to moto on `port`.
fn feed_config(dir: &FsPath, url: &str, port: u16, rotate: Duration) -> wsrec::Config {
    let mut s = stream("feed", url);
    s.rotate = rotate;
    let mut cfg = config(dir, vec![s]);
    cfg.compress = Compress::Zstd;
    cfg.upload = Some(upload(port));
    cfg
}

/// Sends `n` messages and waits until the recorder has them all.
async fn feed(rec: &Running, conn: &mut ServerConn, from: usize, n: usize) {
    conn.send_all(numbered(from, n)).await;
    rec.wait_messages((from + n) as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_files_and_manifests_arrive_under_templated_keys() {
    let port = free_port();
    let _moto = Moto::start(port);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(
        feed_config(dir.path(), &server.url(), port, SECOND),
        BASE_NS,
    );
    let mut conn = server.accept().await;
    feed(&rec, &mut conn, 0, 200).await;
    rec.wait_until(|s| s.files_uploaded.load(Relaxed) >= 1)
        .await;
    feed(&rec, &mut conn, 200, 200).await;
    rec.wait_until(|s| s.files_uploaded.load(Relaxed) >= 2)
        .await;
    assert_eq!(rec.stats.upload_errors.load(Relaxed), 0);
    assert!(rec.stats.bytes_uploaded.load(Relaxed) > 0);
    let snapshot = rec.stats.snapshot();
    let stats = rec.stats.clone();
    rec.stop().await;
    let uploaded = stats.files_uploaded.load(Relaxed);
    // What was uploaded carries a marker; the file closed at shutdown waits for the next start.
    let marked: Vec<PathBuf> = sealed(dir.path())
        .into_iter()
        .filter(|p| wsrec::ship::upload::marker_for(p).exists())
        .collect();
    assert_eq!(marked.len() as u64, uploaded, "{marked:?}");
    assert!(marked.len() >= 2, "{marked:?}");
    assert!(
        marked
            .iter()
            .all(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
    );
    assert_bucket_holds(&bucket(port), dir.path(), &marked).await;
    // Markers and manifests lie next to the data, and none has `.jsonl` in its name: a data glob
    // (`**/*.jsonl*`) finds the data files alone.
    let all = all_files(dir.path());
    let named = |end: &str| {
        all.iter()
            .filter(|p| p.to_string_lossy().ends_with(end))
            .count()
    };
    assert_eq!(named(".uploaded"), marked.len(), "{all:?}");
    assert!(named(".manifest.json") >= marked.len(), "{all:?}");
    let mut with_jsonl: Vec<PathBuf> = all
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".jsonl"))
        .cloned()
        .collect();
    with_jsonl.sort();
    let mut data = sealed(dir.path());
    data.sort();
    assert_eq!(with_jsonl, data);
    let shown = wsrec::observe::status::render_table(&snapshot, 0);
    assert!(shown.contains("upload: "), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_uploads_what_was_left_exactly_once() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    // The storage is not there yet: files are sealed, retried, and left at shutdown.
    let rec = start(
        feed_config(dir.path(), &server.url(), port, SECOND),
        BASE_NS,
    );
    let mut conn = server.accept().await;
    feed(&rec, &mut conn, 0, 100).await;
    rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 1 && s.upload_errors.load(Relaxed) >= 1)
        .await;
    feed(&rec, &mut conn, 100, 100).await;
    rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 2)
        .await;
    assert_eq!(rec.stats.files_uploaded.load(Relaxed), 0);
    assert!(rec.stats.upload_backlog.load(Relaxed) >= 1);
    rec.stop().await;
    drop(conn);
    let files = sealed(dir.path());
    assert!(files.len() >= 2, "{files:?}");
    assert!(
        files
            .iter()
            .all(|p| !wsrec::ship::upload::marker_for(p).exists())
    );

    // The storage is up; a new recorder on the same directory finds the files and uploads them.
    // It records too (its `connected` event), into a file closed only at shutdown.
    let moto = Moto::start(port);
    let rec = start(
        feed_config(dir.path(), &server.url(), port, HOUR),
        MID_HOUR_NS,
    );
    let n = files.len() as u64;
    rec.wait_until(|s| s.files_uploaded.load(Relaxed) >= n && s.upload_backlog.load(Relaxed) == 0)
        .await;
    assert_eq!(rec.stats.files_uploaded.load(Relaxed), n, "each file once");
    rec.stop().await;
    assert_bucket_holds(&bucket(moto.port), dir.path(), &files).await;

    // A third start uploads only what the second one recorded (its `connected` event, closed at
    // shutdown): markers keep the rest from going up twice.
    let unmarked: Vec<PathBuf> = sealed(dir.path())
        .into_iter()
        .filter(|p| !wsrec::ship::upload::marker_for(p).exists())
        .collect();
    assert_eq!(unmarked.len(), 1, "{unmarked:?}");
    let rec = start(
        feed_config(dir.path(), &server.url(), port, HOUR),
        MID_HOUR_NS,
    );
    rec.wait_until(|s| s.files_uploaded.load(Relaxed) >= 1 && s.upload_backlog.load(Relaxed) == 0)
        .await;
    assert_eq!(rec.stats.files_uploaded.load(Relaxed), 1);
    rec.stop().await;
    let mut all = files.clone();
    all.extend(unmarked);
    all.sort();
    assert_bucket_holds(&bucket(moto.port), dir.path(), &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_wait_for_a_server_that_is_down_and_delete_local_copies_only_after() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut cfg = feed_config(dir.path(), &server.url(), port, SECOND);
    cfg.upload.as_mut().unwrap().delete_local_after_upload = true;
    let rec = start(cfg, BASE_NS);
    let mut conn = server.accept().await;
    feed(&rec, &mut conn, 0, 100).await;
    // Down: sealed files are kept; attempts fail and are retried with backoff.
    rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 1 && s.upload_errors.load(Relaxed) >= 3)
        .await;
    let files = sealed(dir.path());
    assert!(!files.is_empty());
    let copies: Vec<(Vec<u8>, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                std::fs::read(f).unwrap(),
                std::fs::read(manifest_of(f)).unwrap(),
            )
        })
        .collect();
    assert_eq!(rec.stats.files_uploaded.load(Relaxed), 0);
    assert!(rec.stats.upload_backlog.load(Relaxed) >= files.len() as u64);

    // Back: the retries go through, then the local copies go.
    let moto = Moto::start(port);
    let n = files.len() as u64;
    rec.wait_until(|s| s.files_uploaded.load(Relaxed) >= n)
        .await;
    let got = objects(&bucket(moto.port)).await;
    for (f, (data, manifest)) in files.iter().zip(&copies) {
        assert!(!f.exists(), "{f:?}: the local copy is removed after upload");
        assert!(!manifest_of(f).exists());
        assert!(!wsrec::ship::upload::marker_for(f).exists());
        assert!(got[&key_of(f)] == *data, "{f:?}");
        assert!(got[&key_of(&manifest_of(f))] == *manifest, "{f:?}");
    }
    rec.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_plain_file_goes_up_in_parts() {
    let port = free_port();
    let moto = Moto::start(port);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.max_bytes = 6 << 20;
    let mut cfg = config(dir.path(), vec![s]);
    cfg.compress = Compress::None;
    let mut u = upload(port);
    u.multipart_threshold = 1 << 20;
    u.part_size = 5 << 20;
    cfg.upload = Some(u);
    let rec = start(cfg, MID_HOUR_NS);
    let mut conn = server.accept().await;
    let pad = "x".repeat(1000);
    let big: Vec<String> = (0..7000)
        .map(|i| format!(r#"{{"n":{i},"pad":"{pad}"}}"#))
        .collect();
    for chunk in big.chunks(500) {
        conn.send_all(chunk.to_vec()).await;
    }
    rec.wait_messages(7000).await;
    rec.wait_until(|s| s.files_uploaded.load(Relaxed) >= 1)
        .await;
    rec.stop().await;
    let first = sealed(dir.path())
        .into_iter()
        .filter(|p| wsrec::ship::upload::marker_for(p).exists())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("an uploaded file");
    let len = std::fs::metadata(&first).unwrap().len();
    assert!(len > 5 << 20, "{len} bytes: above one part");
    let store = bucket(moto.port);
    let key = Path::from(key_of(&first));
    let head = store.head(&key).await.unwrap();
    assert_eq!(head.size, len);
    let etag = head.e_tag.unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-2"), "two parts: {etag}");
    let body = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert!(body == std::fs::read(&first).unwrap(), "identical bytes");
}

/// `{tag.KEY}` in the key template: a tagged stream's files go up under its tag's value, the
/// manifest saying the same tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_in_the_key_template_places_the_files() {
    let port = free_port();
    let _moto = Moto::start(port);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut cfg = feed_config(dir.path(), &server.url(), port, SECOND);
    cfg.streams[0]
        .tags
        .insert("region".to_owned(), "eu-west-1".to_owned());
    if let Some(u) = cfg.upload.as_mut() {
        u.key = "{tag.region}/{stream}/{file}".to_owned();
    }
    let rec = start(cfg, BASE_NS);
    let mut conn = server.accept().await;
    feed(&rec, &mut conn, 0, 100).await;
    rec.wait_until(|s| s.files_uploaded.load(Relaxed) >= 1)
        .await;
    rec.stop().await;
    let marked: Vec<PathBuf> = sealed(dir.path())
        .into_iter()
        .filter(|p| wsrec::ship::upload::marker_for(p).exists())
        .collect();
    assert!(!marked.is_empty());
    let mut got = objects(&bucket(port)).await;
    for f in &marked {
        for p in [f.clone(), manifest_of(f)] {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let key = format!("rec/eu-west-1/feed/{name}");
            let body = got
                .remove(&key)
                .unwrap_or_else(|| panic!("{key} is missing"));
            assert!(body == std::fs::read(&p).unwrap(), "{key} differs");
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(manifest_of(f)).unwrap()).unwrap();
        assert_eq!(manifest["tags"]["region"], "eu-west-1");
    }
    // Anything else is a file cut short by the shutdown, under the same layout.
    assert!(
        got.keys().all(|k| k.starts_with("rec/eu-west-1/feed/")),
        "{:?}",
        got.keys()
    );
}
