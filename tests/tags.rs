//! Per-stream tags (issue 21, "Per-stream `tags`") end to end: a real
//! recorder against real WebSocket servers on 127.0.0.1:0 writes the tags into `connected`
//! events and manifests and uses them in file paths; the messages stay byte-for-byte; the
//! tools read the result.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;

use common::*;
use serde_json::{Value, json};
use wsrec::Format;

/// 2026-11-24T11:00:10Z: clear of the hour boundary, so a short recording is one file.
const T0: u64 = BASE_NS + 20_000_000_000;

fn wsrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.env_remove("RUST_LOG");
    c
}

fn tags(pairs: &[(&str, &str)]) -> wsrec::config::Tags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn manifest(data: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(manifest_path(data)).unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn tags_go_into_connected_events_manifests_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let mut env_server = TestServer::start().await;
    let mut raw_server = TestServer::start().await;
    let template = "{tag.region}/{stream}/{tag.role}-%Y%m%dT%H%M%SZ.jsonl";
    let mut env = stream("feed", &env_server.url());
    env.path = template.to_owned();
    env.tags = tags(&[("role", "primary"), ("note", "rack 4, \"east\"")]);
    let mut raw = stream("rawfeed", &raw_server.url());
    raw.path = template.to_owned();
    raw.format = Format::Raw;
    let mut cfg = config(dir.path(), vec![env, raw]);
    // The top-level tags apply to both streams; the stream's own `role` wins.
    cfg.tags = tags(&[("region", "eu-west"), ("role", "backup")]);
    let rec = start(cfg, T0);

    let mut a = env_server.accept().await;
    let mut b = raw_server.accept().await;
    let sent = [r#"{"p":"1.10", "q" : 1e3}"#, r#"{"tags":{"x":1}}"#];
    for m in sent {
        a.send_text(m).await;
        b.send_text(m).await;
    }
    rec.wait_until(|s| {
        s.streams
            .iter()
            .all(|st| st.messages.load(Relaxed) >= sent.len() as u64)
    })
    .await;
    rec.stop().await;

    let out = dir.path();
    let env_file = out.join("eu-west/feed/primary-20261124T110000Z.jsonl");
    let raw_file = out.join("eu-west/rawfeed/backup-20261124T110000Z.jsonl");
    let raw_events = out.join("eu-west/rawfeed/backup-20261124T110000Z.events.ndjson");
    let found = files(out);
    for f in [&env_file, &raw_file, &raw_events] {
        assert!(found.contains(f), "{} not among {found:?}", f.display());
    }

    // The connected events carry the tags in effect, in key order, as one object.
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    let connected = env_text.lines().next().unwrap();
    assert!(
        connected
            .contains(r#""tags":{"note":"rack 4, \"east\"","region":"eu-west","role":"primary"}"#),
        "{connected}"
    );
    let raw_connected: Value = serde_json::from_str(
        std::fs::read_to_string(&raw_events)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw_connected["event"], "connected");
    assert_eq!(
        raw_connected["tags"],
        json!({"region": "eu-west", "role": "backup"})
    );

    // Tags go around messages, never into them: the lines hold the bytes as received.
    for m in sent {
        assert!(
            env_text
                .lines()
                .any(|l| l.ends_with(&format!(",\"msg\":{m}}}"))),
            "{env_text}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&raw_file).unwrap(),
        format!("{}\n{}\n", sent[0], sent[1])
    );

    // Every manifest names the stream's tags.
    assert_eq!(
        manifest(&env_file)["tags"],
        json!({"note": "rack 4, \"east\"", "region": "eu-west", "role": "primary"})
    );
    let backup = json!({"region": "eu-west", "role": "backup"});
    assert_eq!(manifest(&raw_file)["tags"], backup);
    assert_eq!(manifest(&raw_events)["tags"], backup);

    // The tools read the tagged recording: verify finds nothing wrong, cat shows the tags.
    let verify = wsrec().arg("verify").arg(out).output().unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let cat = wsrec()
        .args(["cat", "-s", "feed"])
        .arg(out)
        .output()
        .unwrap();
    assert!(cat.status.success());
    let cat = String::from_utf8(cat.stdout).unwrap();
    assert!(
        cat.lines().next().unwrap().contains(r#""role":"primary""#),
        "{cat}"
    );
}

/// A recording made without tags has none in its events and manifests (not even empty ones).
#[tokio::test(start_paused = true)]
async fn untagged_streams_write_no_tags() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(config(dir.path(), vec![stream("feed", &server.url())]), T0);
    let mut conn = server.accept().await;
    conn.send_text("{}").await;
    rec.wait_messages(1).await;
    rec.stop().await;
    let file = &files(dir.path())[0];
    let recs = records(dir.path());
    assert!(events(&recs, "connected")[0].get("tags").is_none());
    assert!(manifest(file).get("tags").is_none());
}

/// One-line mode: `--tag KEY=VALUE` (repeatable) tags the stream, and `--path` may use them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_flags_tag_a_one_line_recording() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let socket = d.join("wsrec.sock");
    let mut child = wsrec()
        .args(["record", &server.url(), "-o", "out", "--name", "feed"])
        .args([
            "--tag",
            "region=eu",
            "--tag",
            "role=a=b",
            "--tag",
            "region=us",
        ])
        .args(["--path", "{tag.region}/{stream}.jsonl", "--status-socket"])
        .arg(&socket)
        .current_dir(d)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut conn = server.accept().await;
    conn.send_text(r#"{"x":1}"#).await;
    // Wait (bounded) until the recorder counted the message, then stop it as a user would.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v = status_json(&socket).ok();
        if v.is_some_and(|v| v["total_messages"].as_u64() >= Some(1)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "message not counted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // SAFETY: kill(2) with the pid of our own child and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // The last --tag of a key wins; a value may hold `=`.
    let file = d.join("out/us/feed.jsonl.zst");
    let recs = records(&d.join("out"));
    assert_eq!(
        events(&recs, "connected")[0]["tags"],
        json!({"region": "us", "role": "a=b"})
    );
    assert_eq!(
        manifest(&file)["tags"],
        json!({"region": "us", "role": "a=b"})
    );
}

/// A path template that names a tag the stream does not have, or a bad `--tag`, stops the
/// recorder before it writes anything: exit 2 and a message naming the stream, the problem and
/// the fix.
#[test]
fn bad_tags_are_refused_at_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("tagpath.toml"),
        "output_dir = \"out\"\ntags = { role = \"a\" }\n[[stream]]\nname = \"feed\"\n\
         url = \"ws://127.0.0.1:1/\"\npath = \"{tag.region}/{stream}.jsonl\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("tagnum.toml"),
        "output_dir = \"out\"\n[[stream]]\nname = \"feed\"\nurl = \"ws://127.0.0.1:1/\"\n\
         tags = { shard = 3 }\n",
    )
    .unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["record", "-c", "tagpath.toml"],
            "stream `feed`: path: `{tag.region}` names a tag the stream does not have; add \
             `region = \"…\"` to the stream's `tags` (or to the top-level `tags`), or remove \
             the placeholder",
        ),
        (
            &["record", "-c", "tagnum.toml"],
            "tag values are strings, so quote numbers and booleans (shard = \"3\", not shard = 3)",
        ),
        (
            &[
                "record",
                "ws://127.0.0.1:1/",
                "-o",
                "out",
                "--tag",
                "Region=eu",
            ],
            "tags.Region: the key `Region` is not a tag key",
        ),
        (
            &[
                "record",
                "ws://127.0.0.1:1/",
                "-o",
                "out",
                "--tag",
                "region",
            ],
            "`region` is not KEY=VALUE; write e.g. --tag region=eu",
        ),
        (
            &["record", "-c", "tagpath.toml", "--tag", "region=eu"],
            "with a config file, set them in its [[stream]] entries",
        ),
    ];
    for (args, want) in cases {
        let out = wsrec().args(*args).current_dir(d).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr:?} lacks {want:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!d.join("out").exists(), "{args:?} wrote output");
    }
}
