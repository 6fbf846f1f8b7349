//! `wsrec verify` proves a recording complete: each closed file's manifest names the file before
//! it in its stream (a chain per stream, format and recorder run), the files a clean stop closes
//! end the chain, and files that hold no wsrec record are problems. Recordings are made by the
//! in-process recorder from a real WebSocket server (tokio's paused time), then damaged on
//! purpose.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use common::*;
use wsrec::config::{Compress, Format};
use wsrec::read::discover;
use wsrec::tools::Progress;
use wsrec::tools::verify::{Report, Severity, VerifyOptions, verify};

/// 2026-11-24T11:00:10Z: clear of the hour boundary, so files rotate only on their line limit.
const T0: u64 = BASE_NS + 20_000_000_000;

fn run_verify(dir: &Path) -> Report {
    verify(
        discover(&[dir.to_owned()]).unwrap(),
        VerifyOptions::default(),
        &mut Progress::new(0, false),
    )
}

/// Problems of `kind` (its name in `--json`), as (file, detail).
fn problems(r: &Report, kind: &str) -> Vec<(String, String)> {
    r.issues
        .iter()
        .filter(|i| {
            serde_json::to_value(i.kind).unwrap() == kind && i.severity == Severity::Problem
        })
        .map(|i| (i.file.clone().unwrap_or_default(), i.detail.clone()))
        .collect()
}

/// One recorder run: `n` messages on stream `feed` (in `format`, rotating every 10 lines),
/// stopped cleanly; files compressed with `compress` (waited for).
async fn record_run(dir: &Path, n: usize, format: Format, compress: Compress, base_ns: u64) {
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.max_lines = 10;
    s.format = format;
    let mut cfg = config(dir, vec![s]);
    cfg.compress = compress;
    let rec = start(cfg, base_ns);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, n)).await;
    rec.wait_messages(n as u64).await;
    if compress != Compress::None {
        // Every file the line limit closed is compressed before the stop closes the last.
        let closed = n as u64 / 10;
        rec.wait_until(|s| s.files_compressed.load(Relaxed) >= closed)
            .await;
    }
    rec.stop().await;
}

/// The data files (not the events sidecars) under `dir`, in the order they were written.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files(dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains(".events."))
        .collect();
    // `x.jsonl`, `x.1.jsonl`, `x.2.jsonl`, ...: by part number.
    out.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let part: u32 = name
            .split('.')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        part
    });
    out
}

fn manifest_of(data: &Path) -> PathBuf {
    let name = data.to_string_lossy();
    wsrec::store::manifest::path_for(Path::new(wsrec::fsutil::strip_compressed(&name)))
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// An envelope recording of 35 messages in several files.
async fn rotated(dir: &Path) -> Vec<PathBuf> {
    record_run(dir, 35, Format::Envelope, Compress::None, T0).await;
    let data = data_files(dir);
    assert!(data.len() >= 4, "{data:?}");
    let before = run_verify(dir);
    assert!(before.ok, "{:#?}", before.issues);
    data
}

#[tokio::test(start_paused = true)]
async fn a_clean_recording_with_rotation_restart_and_compression_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    record_run(dir.path(), 35, Format::Envelope, Compress::Zstd, T0).await;
    // A restart: the new run's chain starts fresh, in the same directory.
    record_run(
        dir.path(),
        25,
        Format::Envelope,
        Compress::Zstd,
        T0 + 60_000_000_000,
    )
    .await;
    let data = data_files(dir.path());
    assert!(
        data.iter().any(|p| p.to_string_lossy().ends_with(".zst")),
        "{data:?}"
    );
    // Each run's first file says it is first; the others name a file that is there.
    let chains: Vec<serde_json::Value> = data
        .iter()
        .map(|d| serde_json::from_slice(&std::fs::read(manifest_of(d)).unwrap()).unwrap())
        .collect();
    let firsts = chains
        .iter()
        .filter(|m| m["chain"]["prev"].is_null())
        .count();
    assert_eq!(firsts, 2, "{chains:#?}");
    let ends = chains
        .iter()
        .filter(|m| m["chain"]["run_end"] == true)
        .count();
    assert_eq!(ends, 2, "{chains:#?}");
    let r = run_verify(dir.path());
    assert!(r.ok, "{:#?}", r.issues);
    assert_eq!(r.problems, 0);
}

#[tokio::test(start_paused = true)]
async fn a_raw_recording_chains_its_data_and_its_sidecar_and_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    record_run(dir.path(), 25, Format::Raw, Compress::None, T0).await;
    let data = data_files(dir.path());
    assert!(data.len() >= 3, "{data:?}");
    let r = run_verify(dir.path());
    assert!(r.ok, "{:#?}", r.issues);
    // Its first data file deleted: the chain of the raw data files shows it.
    std::fs::remove_file(&data[0]).unwrap();
    std::fs::remove_file(manifest_of(&data[0])).unwrap();
    let r = run_verify(dir.path());
    let missing = problems(&r, "missing_file");
    assert!(
        missing.iter().any(|(_, d)| d.contains(&name(&data[0]))),
        "{:#?}",
        r.issues
    );
}

/// Deletes the `k`th file of a rotated recording with its manifest, and checks that verify
/// names it, at the file after it.
async fn deleting_file_is_named(k: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = rotated(dir.path()).await;
    // The file and its manifest: nothing is left of it but the next file's word.
    std::fs::remove_file(&data[k]).unwrap();
    std::fs::remove_file(manifest_of(&data[k])).unwrap();
    let r = run_verify(dir.path());
    assert!(!r.ok);
    let missing = problems(&r, "missing_file");
    assert_eq!(missing.len(), 1, "{:#?}", r.issues);
    assert!(missing[0].0.ends_with(&name(&data[k + 1])), "{missing:?}");
    assert!(missing[0].1.contains(&name(&data[k])), "{missing:?}");
}

#[tokio::test(start_paused = true)]
async fn deleting_the_first_file_breaks_the_chain() {
    deleting_file_is_named(0).await;
}

#[tokio::test(start_paused = true)]
async fn deleting_a_middle_file_names_it() {
    // The `seq` gap shows it too; the chain names the file.
    deleting_file_is_named(1).await;
}

#[tokio::test(start_paused = true)]
async fn deleting_the_last_file_leaves_a_chain_without_a_close() {
    let dir = tempfile::tempdir().unwrap();
    let data = rotated(dir.path()).await;
    let last = data.last().unwrap();
    let before = &data[data.len() - 2];
    std::fs::remove_file(last).unwrap();
    std::fs::remove_file(manifest_of(last)).unwrap();
    let r = run_verify(dir.path());
    assert!(!r.ok);
    let ends = problems(&r, "no_close");
    assert_eq!(ends.len(), 1, "{:#?}", r.issues);
    assert!(ends[0].0.ends_with(&name(before)), "{ends:?}");
    assert!(
        ends[0]
            .1
            .contains("ends without a close: files missing after")
            && ends[0].1.contains(&name(before)),
        "{ends:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_manifest_without_its_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = rotated(dir.path()).await;
    // The last file goes, its manifest stays.
    let last = data.last().unwrap();
    std::fs::remove_file(last).unwrap();
    let r = run_verify(dir.path());
    assert!(!r.ok);
    let missing = problems(&r, "missing_file");
    assert_eq!(missing.len(), 1, "{:#?}", r.issues);
    assert!(
        missing[0].0.ends_with(&name(&manifest_of(last))),
        "{missing:?}"
    );
    assert!(
        missing[0].1.contains("a manifest without its file"),
        "{missing:?}"
    );
    assert_eq!(problems(&r, "no_close").len(), 1, "{:#?}", r.issues);
}

#[tokio::test(start_paused = true)]
async fn files_that_hold_no_record_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    rotated(dir.path()).await;
    std::fs::write(dir.path().join("foreign.jsonl"), "{\"a\":1}\n{\"a\":2}\n").unwrap();
    std::fs::write(
        dir.path().join("notes.jsonl"),
        "these are my notes\nnot a recording\n",
    )
    .unwrap();
    let r = run_verify(dir.path());
    assert!(!r.ok);
    let foreign = problems(&r, "not_recording");
    assert_eq!(foreign.len(), 2, "one each: {:#?}", r.issues);
    for f in ["foreign.jsonl", "notes.jsonl"] {
        assert!(foreign.iter().any(|(p, _)| p.ends_with(f)), "{foreign:?}");
    }
    assert!(
        foreign[0].1.contains("holds no wsrec record"),
        "{foreign:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_file_of_a_chain_verifies_alone() {
    // Part of a recording: its neighbours are on disk, not read; nothing is missing.
    let dir = tempfile::tempdir().unwrap();
    let data = rotated(dir.path()).await;
    let r = verify(
        discover(std::slice::from_ref(&data[1])).unwrap(),
        VerifyOptions::default(),
        &mut Progress::new(0, false),
    );
    assert!(r.ok, "{:#?}", r.issues);
}

#[tokio::test(start_paused = true)]
async fn manifests_without_a_chain_verify_as_before() {
    // A recording made before chains: its manifests have no `chain`.
    let dir = tempfile::tempdir().unwrap();
    let data = rotated(dir.path()).await;
    for d in &data {
        let m = manifest_of(d);
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
        assert!(v.as_object_mut().unwrap().remove("chain").is_some());
        std::fs::write(&m, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    let r = run_verify(dir.path());
    assert!(r.ok, "{:#?}", r.issues);
    assert_eq!(r.manifests_checked, data.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn a_killed_run_is_reported_once_not_as_a_missing_tail() {
    // As a kill leaves it: the last file still `.open`, without a manifest; the next start
    // recovers it (a recovered file has no place in a chain).
    let dir = tempfile::tempdir().unwrap();
    let data = rotated(dir.path()).await;
    let last = data.last().unwrap();
    std::fs::remove_file(manifest_of(last)).unwrap();
    let mut open = last.clone().into_os_string();
    open.push(".open");
    std::fs::rename(last, &open).unwrap();
    record_run(
        dir.path(),
        5,
        Format::Envelope,
        Compress::None,
        T0 + 60_000_000_000,
    )
    .await;
    assert!(
        !files(dir.path())
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".open")),
        "the second run recovered the file"
    );
    let r = run_verify(dir.path());
    assert!(problems(&r, "no_close").is_empty(), "{:#?}", r.issues);
    assert!(problems(&r, "missing_file").is_empty(), "{:#?}", r.issues);
}
