//! Recovery after a kill, end to end with the real binary: a recorder killed before its first
//! flush leaves empty `.open` files; the next start names each file's stream, gives it a
//! manifest and hands it to the compressor, and `wsrec verify` reports the killed run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A recorder of one stream `name` into `dir/out`, its status socket at `dir/<name>.sock`, its
/// output in `dir/<name>.log`.
///
/// The rotation is a day, so a run's files stay open until it is killed.
fn spawn(url: &str, dir: &Path, name: &str, extra: &[&str]) -> Child {
    // The log goes to stdout, errors to stderr: both into `<name>.log`.
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_wsrec"))
        .args(["record", url, "-o", "out", "--name", name])
        .arg("--status-socket")
        .arg(socket(dir, name))
        .args(["--rotate", "24h"])
        .args(["--status-interval", "off"])
        .args(extra)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn socket(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child with a valid signal.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Polls `cond` until it holds (30 s at most: a busy machine is slow, not stuck).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the recorder behind `sock` has received `n` messages.
async fn wait_received(sock: &Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = wsrec::observe::status::query(sock).await
            && s.streams[0].messages >= n
        {
            return;
        }
        assert!(Instant::now() < deadline, "{n} messages never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn open_files(out: &Path) -> Vec<PathBuf> {
    all_files(out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".open"))
        .collect()
}

/// Records 300 messages into `dir/out`, kills the recorder, and leaves its `.open` files as a
/// kill before the writer's first idle moment leaves them: empty, with nothing to complete
/// them from. (The writer puts its lines in the journal, or without one hands them on, as soon
/// as it goes idle, so a real kill hits that moment only by chance; the test records without
/// a journal and cuts the files instead, which is all such a kill leaves on disk.)
async fn killed_before_the_first_flush(
    server: &mut TestServer,
    dir: &Path,
    extra: &[&str],
) -> Vec<PathBuf> {
    let extra = [extra, &["--journal-dir", ""]].concat();
    let mut first = spawn(&server.url(), dir, "feed", &extra);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 300)).await;
    wait_received(&socket(dir, "feed"), 300).await;
    // Wait until the 300 messages and the `connected` event are in the files (data file and,
    // in raw format, its sidecar), so the files exist when the kill comes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: usize = open_files(&dir.join("out"))
            .iter()
            .map(|p| {
                std::fs::read(p)
                    .unwrap()
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
            })
            .sum();
        if lines >= 301 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lines never reached the files"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&first, libc::SIGKILL);
    first.wait().unwrap();
    let left = open_files(&dir.join("out"));
    assert!(!left.is_empty(), "the run opened its files");
    for p in &left {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    left
}

/// The final name recovery gives an `.open` file, as the compressor leaves it.
fn compressed(open: &Path) -> PathBuf {
    let s = open.to_string_lossy();
    PathBuf::from(format!("{}.zst", s.strip_suffix(".open").unwrap()))
}

/// `wsrec verify` on `dir`: exit code, stdout.
fn verify(dir: &Path, json: bool) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.arg("verify").env_remove("RUST_LOG");
    if json {
        c.arg("--json");
    }
    let out = c.arg(dir).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

/// (kind, severity, stream) of every issue in a `verify --json` report.
fn issues(v: &Value) -> Vec<(String, String, String)> {
    v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or("").to_owned();
            (s("kind"), s("severity"), s("stream"))
        })
        .collect()
}

/// The `(name, manifest)` of every closed recording file under `out` (plain or compressed,
/// named as found): each must have one.
fn manifests(out: &Path) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for p in all_files(out) {
        let s = p.to_string_lossy().into_owned();
        let Some(data) = s
            .strip_suffix(".zst")
            .or(Some(s.as_str()).filter(|s| s.ends_with(".jsonl") || s.ends_with(".ndjson")))
        else {
            continue;
        };
        let m = manifest_path(Path::new(data));
        let body = std::fs::read(&m).unwrap_or_else(|_| panic!("{s} has no manifest"));
        found.push((s, serde_json::from_slice(&body).unwrap()));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_before_the_first_flush_is_named_manifested_and_reported_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let left = killed_before_the_first_flush(&mut server, d, &[]).await;
    assert_eq!(left.len(), 1, "{left:?}");

    // The next start recovers the file, then records on.
    let mut second = spawn(&server.url(), d, "feed", &["--flush-interval", "20ms"]);
    let mut conn = server.accept().await;
    conn.send_all(numbered(300, 5)).await;
    wait_received(&socket(d, "feed"), 5).await;
    // The compressor takes the recovered file like any closed one.
    let done = compressed(&left[0]);
    eventually("the recovered file compressed", || done.exists()).await;
    signal(&second, libc::SIGTERM);
    assert_eq!(second.wait().unwrap().code(), Some(0));
    let out = d.join("out");
    assert!(open_files(&out).is_empty());

    let recs = records(&out);
    let marks = events(&recs, "recovered");
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(marks[0]["stream"], "feed", "named from the configuration");
    assert_eq!(marks[0]["lines"], 0);
    assert!(marks[0]["last_write_ts"].as_u64().is_some(), "{}", marks[0]);

    let all = manifests(&out);
    assert_eq!(
        all.len(),
        2,
        "the recovered file and the second run's: {all:?}"
    );
    let name = done.file_name().unwrap().to_string_lossy().into_owned();
    let (_, m) = all.iter().find(|(p, _)| p.ends_with(&name)).unwrap();
    assert_eq!(m["stream"], "feed");
    assert_eq!(m["format"], "envelope");
    assert_eq!(m["recovered"], true);
    assert_eq!(
        (m["lines"].as_u64(), m["events"].as_u64()),
        (Some(1), Some(1))
    );

    let (code, text) = verify(&out, true);
    assert_eq!(code, Some(1), "the killed run is a problem: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["manifests_checked"], 2, "{v:#}");
    assert_eq!(
        issues(&v),
        [("recovered".into(), "problem".into(), "feed".into())],
        "one problem, no manifest mismatch: {v:#}"
    );
    let issue = &v["issues"][0];
    assert!(issue["file"].as_str().unwrap().ends_with(&name), "{issue}");
    let detail = issue["detail"].as_str().unwrap();
    assert!(
        detail.contains("before it wrote anything") && detail.contains("no bytes cut"),
        "{detail}"
    );
    let streams: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(streams, ["feed"], "no stream named \"\"");
    assert_eq!(v["streams"][0]["runs"], 2, "the killed run counts");
    assert_eq!(v["streams"][0]["unclean_stops"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_raw_stream_gets_both_files_manifested_and_verify_files_notes_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let raw = ["--format", "raw"];
    let left = killed_before_the_first_flush(&mut server, d, &raw).await;
    assert_eq!(left.len(), 2, "data file and sidecar: {left:?}");

    let mut second = spawn(
        &server.url(),
        d,
        "feed",
        &["--format", "raw", "--flush-interval", "20ms"],
    );
    let _conn = server.accept().await;
    for p in &left {
        let done = compressed(p);
        eventually("the recovered files compressed", || done.exists()).await;
    }
    signal(&second, libc::SIGTERM);
    assert_eq!(second.wait().unwrap().code(), Some(0));
    let out = d.join("out");

    let all = manifests(&out);
    for p in &left {
        let name = compressed(p).to_string_lossy().into_owned();
        let (_, m) = all
            .iter()
            .find(|(p, _)| *p == name)
            .unwrap_or_else(|| panic!("no manifest for {name}: {all:?}"));
        assert_eq!(m["stream"], "feed", "{m}");
        assert_eq!(m["recovered"], true);
        let sidecar = name.contains(".events.");
        assert_eq!(m["format"], if sidecar { "events" } else { "raw" });
    }

    let (code, text) = verify(&out, true);
    assert_eq!(code, Some(1), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        issues(&v),
        [
            ("recovered".into(), "problem".into(), "feed".into()),
            ("recovered".into(), "warning".into(), "feed".into()),
        ],
        "the stop once as a problem, the second file it left open as a warning: {v:#}"
    );

    // The text report: each severity under its own heading.
    let (code, text) = verify(&out, false);
    assert_eq!(code, Some(1), "{text}");
    let problems = text.find("\nProblems: 1\n").expect(&text);
    let warnings = text.find("\nWarnings (not problems): 1\n").expect(&text);
    assert!(problems < warnings, "{text}");
    let under_problems = &text[problems..warnings];
    let under_warnings = &text[warnings..];
    assert!(under_problems.contains("killed or crashed"), "{text}");
    assert!(!under_problems.contains("also left open"), "{text}");
    assert!(under_warnings.contains("also left open"), "{text}");
    assert!(!under_warnings.contains("killed or crashed"), "{text}");
    assert!(text.ends_with("FAILED: 1 problem(s).\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_a_stream_no_longer_configured_keeps_its_name_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let left = killed_before_the_first_flush(&mut server, d, &[]).await;

    // The stream is renamed before the next start.
    let mut second = spawn(&server.url(), d, "renamed", &["--compress", "none"]);
    let _conn = server.accept().await;
    let done = PathBuf::from(left[0].to_string_lossy().strip_suffix(".open").unwrap());
    eventually("the file recovered", || done.exists()).await;
    signal(&second, libc::SIGTERM);
    assert_eq!(second.wait().unwrap().code(), Some(0));

    let text = read_text(&done);
    let mark: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(mark["stream"], "feed", "the name its path holds: {mark}");
    let m: Value = serde_json::from_slice(&std::fs::read(manifest_path(&done)).unwrap()).unwrap();
    assert_eq!(m["stream"], "feed");
    let log = std::fs::read_to_string(d.join("renamed.log")).unwrap();
    assert!(
        log.contains("no configured stream's path template gives its path"),
        "{log}"
    );
}
