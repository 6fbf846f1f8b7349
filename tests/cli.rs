//! The `wsrec` binary as a user runs it: exit codes and messages for bad input, SIGTERM
//! draining, the Go streamer's config and `-status`, and `wsrec status`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn wsrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.env_remove("RUST_LOG");
    c
}

fn run(args: &[&str], cwd: &Path) -> Output {
    wsrec().args(args).current_dir(cwd).output().unwrap()
}

/// Starts `wsrec` with output to files in `dir` (pipes could fill up and block it).
fn spawn(args: &[&str], dir: &Path) -> Child {
    spawn_with(wsrec(), args, dir)
}

/// Starts `cmd` (a `wsrec` command) like [`spawn`].
fn spawn_with(mut cmd: Command, args: &[&str], dir: &Path) -> Child {
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
}

/// Waits for the child to exit (bounded), returning its exit code.
async fn wait_exit(mut child: Child, dir: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "wsrec did not exit; stderr: {}",
                std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `wsrec status --json` until `cond` holds on the snapshot (bounded).
async fn wait_status(socket: &Path, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = wsrec()
            .args(["status", "--json", "--socket"])
            .arg(socket)
            .output()
            .unwrap();
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            if cond(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "status condition not reached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn bad_input_names_the_problem_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("unknown.toml"),
        "output_dir = \"out\"\n[[stream]]\nname = \"a\"\nurl = \"ws://h/\"\nsilence = \"1s\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("badname.toml"),
        "output_dir = \"out\"\n[[stream]]\nname = \"../a\"\nurl = \"ws://h/\"\n",
    )
    .unwrap();
    // An unknown field is ignored with a warning (as Go's encoding/json ignores it); the bad
    // URL then stops the run.
    std::fs::write(
        d.join("go.json"),
        r#"{"output_dir":"out","topicc":"x","ws_url":"http://h/"}"#,
    )
    .unwrap();
    for (file, body) in [
        ("venue.toml", "venue = \"nope\"\ntopics = [\"a.B\"]"),
        ("half.toml", "venue = \"okx\"\nchannels = [\"books\"]"),
        ("novenue.toml", "url = \"ws://h/\"\ntopics = [\"a.B\"]"),
    ] {
        std::fs::write(
            d.join(file),
            format!("output_dir = \"out\"\n[[stream]]\nname = \"a\"\n{body}\n"),
        )
        .unwrap();
    }
    let cases: &[(&[&str], &str)] = &[
        (&["record", "-c", "unknown.toml"], "unknown field `silence`"),
        (&["record", "-c", "badname.toml"], "path separator"),
        (
            &["-config", "go.json"],
            "go.json: the Go streamer's config has no field `topicc`: ignored, as the Go streamer ignores it; did you mean `topic`?",
        ),
        (&["record", "-c", "missing.toml"], "cannot read config file"),
        (
            &["record", "http://example.com/", "-o", "out"],
            "use ws:// or wss://",
        ),
        (&["record", "wss://h/", "-c", "unknown.toml"], "not both"),
        (
            &["record", "wss://h/", "-o", "out", "--rotate", "soon"],
            "not a duration",
        ),
        (&["record", "--bogus"], "--bogus"),
        (
            &["record", "bybit-linear", "-o", "out"],
            "needs something to subscribe to",
        ),
        (
            &["record", "bybit-linear:publicTrade", "-o", "out"],
            "expected channel.SYMBOL",
        ),
        (&["record", "-c", "venue.toml"], "unknown venue `nope`"),
        (
            &["record", "bybit-linaer:publicTrade.BTCUSDT", "-o", "out"],
            "unknown venue `bybit-linaer`; did you mean `bybit-linear`?",
        ),
        (
            &["record", "nasdaq:AAPL", "-o", "out"],
            "neither a venue preset",
        ),
        (
            &["record", "-c", "half.toml"],
            "give both `channels` and `symbols`",
        ),
        (&["record", "-c", "novenue.toml"], "need a `venue`"),
        (
            &["record", "wss://h/", "-o", "out", "--threads", "0"],
            "threads: must be 1 to 256",
        ),
        // `-c` belongs to the commands that read a config: before the command or after it.
        (&["-c", "unknown.toml", "record"], "unknown field `silence`"),
        (&["-c", "unknown.toml"], "unknown field `silence`"),
        (
            &["-c", "a.toml", "record", "-c", "b.toml"],
            "two config files given",
        ),
        (
            &["-c", "unknown.toml", "cat", "out"],
            "`wsrec cat` takes no config file",
        ),
        (
            &["verify", "-c", "unknown.toml", "out"],
            "unexpected argument '-c'",
        ),
        (
            &["status", "-c", "unknown.toml", "--socket", "s"],
            "cannot be used with",
        ),
    ];
    for (args, want) in cases {
        let out = run(args, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr:?} lacks {want:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!d.join("out").exists(), "{args:?} wrote output");
    }

    // An output directory that cannot be one is bad input too, its cause said once.
    std::fs::write(d.join("afile"), "").unwrap();
    let out = run(&["record", "ws://127.0.0.1:1/", "-o", "afile/sub"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("output directory afile/sub: "), "{stderr}");
    assert_eq!(stderr.matches("(os error 20)").count(), 1, "{stderr}");

    // So is a journal directory that cannot hold the journal; the default one, missing,
    // would only be warned about.
    let out = run(
        &[
            "record",
            "ws://127.0.0.1:1/",
            "-o",
            "out",
            "--journal-dir",
            "afile",
        ],
        d,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("journal_dir afile: "), "{stderr}");
    assert!(stderr.contains("or \"\" to record without one"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn venues_are_listed_and_one_line_builds_the_preset_stream() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["venues"], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "bybit-spot",
        "bybit-linear",
        "bybit-inverse",
        "binance-spot",
        "binance-usdm",
        "okx",
        "coinbase",
        "kraken",
        "bitstamp",
        "bitfinex",
        "deribit",
        "bitmex",
        "hyperliquid",
    ] {
        assert!(
            text.contains(&format!("\n{name}  (")) || text.starts_with(&format!("{name}  (")),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("wsrec record bybit-linear:publicTrade.BTCUSDT"));
    assert!(text.contains("  budget:     400 connects per 5m (80% of the 500 per IP"));
    // The list stays short: sources are for `wsrec venues NAME`.
    assert!(!text.contains("  source:"), "{text}");

    // The one-line form: the preset, then the flags given on top.
    let args = wsrec::cli::RecordArgs {
        url: Some("bybit-linear:publicTrade.BTCUSDT,orderbook.50.BTCUSDT".to_owned()),
        silence_timeout: Some(wsrec::cli::OptDuration(Some(Duration::from_secs(90)))),
        ..Default::default()
    };
    let config = wsrec::commands::build_config(None, &args).unwrap();
    let s = &config.streams[0];
    assert_eq!(s.name, "bybit-linear");
    assert_eq!(s.url, "wss://stream.bybit.com/v5/public/linear");
    assert_eq!(s.app_ping.as_ref().unwrap().as_str(), r#"{"op":"ping"}"#);
    assert_eq!(s.app_ping_interval, Some(Duration::from_secs(20)));
    assert_eq!(
        s.silence_timeout,
        Some(Duration::from_secs(90)),
        "the flag wins"
    );
    let shards = wsrec::net::venue::plan(s);
    assert_eq!(shards.len(), 1);
    assert_eq!(
        shards[0].subscribe,
        [
            r#"{"req_id":"1","op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.50.BTCUSDT"]}"#
        ]
    );
}

#[test]
fn venues_json_lists_every_preset_with_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["venues", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("venues --json is JSON");
    let presets = doc["presets"].as_array().expect("a presets array");
    let names: Vec<&str> = presets.iter().filter_map(|p| p["name"].as_str()).collect();
    let want: Vec<&str> = wsrec::net::venue::PRESETS.iter().map(|p| p.name).collect();
    assert_eq!(names, want, "every preset, in order");
    for p in presets {
        let name = p["name"].as_str().unwrap();
        let sources = p["sources"].as_array().unwrap();
        let first = sources.first().and_then(Value::as_str).unwrap_or_default();
        assert!(first.starts_with("https://"), "{name}: sources {sources:?}");
        assert!(p["url"].as_str().unwrap().starts_with("wss://"), "{name}");
        assert!(!p["channels"].as_array().unwrap().is_empty(), "{name}");
        assert!(
            !p["example_topics"].as_array().unwrap().is_empty(),
            "{name}"
        );
        assert!(
            p["keepalive"]["pong_timeout_ms"].as_u64().unwrap() > 0,
            "{name}"
        );
        assert!(
            p["limits"]["topics_per_connection"].as_u64().unwrap() > 0,
            "{name}"
        );
        assert!(p["budgets"].is_array() && p["notes"].is_array(), "{name}");
    }
    // The budget table's figures, as the venue gives them and as wsrec uses them.
    let bybit = &presets[names.iter().position(|n| *n == "bybit-linear").unwrap()];
    let budget = &bybit["budgets"][0];
    assert_eq!(budget["counts"], "connects");
    assert_eq!(budget["limit"], 500);
    assert_eq!(budget["per_ms"], 300_000);
    assert_eq!(budget["allowed"], 400);

    // One preset in full, by name.
    let out = run(&["venues", "okx", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let okx: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(okx["name"], "okx");
    assert_eq!(okx["url"], "wss://ws.okx.com/ws/v5/public");
}

#[test]
fn one_venue_is_shown_in_full_and_a_typo_names_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["venues", "okx"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("okx  (OKX v5 public)\n"), "{text}");
    assert!(
        text.contains("url:        wss://ws.okx.com/ws/v5/public"),
        "{text}"
    );
    assert!(
        text.contains("channels:   trades, books, books5, bbo-tbt"),
        "{text}"
    );
    assert!(text.contains("budget:     2 connects per 1s"), "{text}");
    let okx = wsrec::net::venue::find("okx").unwrap();
    let cited: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  source:     "))
        .collect();
    assert_eq!(cited, okx.sources, "{text}");
    assert!(
        cited[0].starts_with("https://www.okx.com/docs-v5/"),
        "official page first"
    );
    // Only okx: no other preset's block.
    assert!(!text.contains("bybit"), "{text}");

    let out = run(&["venues", "bybit-linaer"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown venue `bybit-linaer`; did you mean `bybit-linear`?"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = run(&["venues", "nasdaq", "--json"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown venue `nasdaq`; known: bybit-spot"),
        "{stderr}"
    );
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["--help"], dir.path());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("record"));
    let out = run(&["record", "--help"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--subscribe"));
    let out = run(&["--version"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("wsrec "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_writes_everything_received() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let socket = d.join("wsrec.sock");
    let child = spawn(
        &[
            "record",
            &server.url(),
            "-o",
            "out",
            "--name",
            "feed",
            "--subscribe",
            r#"{"op":"subscribe"}"#,
            "--status-socket",
            socket.to_str().unwrap(),
        ],
        d,
    );
    let mut conn = server.accept().await;
    assert_eq!(conn.recv_text().await, r#"{"op":"subscribe"}"#);
    // Keep sending while the recorder is told to stop.
    let sender = tokio::spawn(async move {
        let mut i = 0;
        loop {
            if conn.try_send_all(numbered(i, 100)).await.is_err() {
                break;
            }
            i += 100;
            if i >= 2_000_000 {
                break;
            }
        }
    });
    wait_status(&socket, |v| v["total_messages"].as_u64().unwrap() >= 20_000).await;
    // The human table is served too.
    let table = wsrec()
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("feed") && table.contains("connected"),
        "{table}"
    );
    sigterm(&child);
    assert_eq!(wait_exit(child, d).await, 0);
    sender.abort();

    let out = d.join("out");
    no_open_files(&out);
    assert!(!socket.exists(), "the status socket is removed on exit");
    let recs = records(&out);
    let got = messages(&recs);
    assert!(got.len() >= 20_000);
    assert_eq!(
        got,
        numbered(0, got.len()),
        "a gapless prefix of what was sent"
    );
    let disc = events(&recs, "disconnected");
    assert_eq!(disc.len(), 1);
    assert_eq!(disc[0]["reason"], "shutdown");
    assert_eq!(
        disc[0]["messages"].as_u64().unwrap(),
        got.len() as u64,
        "every message the connection received is in the file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_streamer_config_is_a_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let socket = d.join("go.sock");
    let config = serde_json::json!({
        "output_dir": d.join("data"),
        "topic": "publicTrade.BTCUSDT",
        "ws_url": server.url(),
        "buffer_size": 1000,
        "status_interval": 1,
        "log_file": d.join("streamer.log"),
        "log_to_stdout": false,
        "status_socket": socket,
    });
    std::fs::write(d.join("config.json"), config.to_string()).unwrap();
    let child = spawn(&["-config", "config.json"], d);
    let mut conn = server.accept().await;
    assert_eq!(
        conn.recv_text().await,
        r#"{"op":"subscribe","args":["publicTrade.BTCUSDT"]}"#
    );
    let sent = [
        r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[]}"#,
        r#"{"success":true,"ret_msg":"pong","op":"ping"}"#,
        "{ \"spaced\" : 1 }",
    ];
    for m in sent {
        conn.send_text(m).await;
    }
    wait_status(&socket, |v| v["total_messages"] == 3).await;
    let out = run(&["-status", "-config", "config.json"], d);
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let line = line.trim_end();
    let (uptime, rest) = line.split_once(" | ").unwrap();
    assert!(
        uptime.starts_with("Uptime: ") && uptime.ends_with('s'),
        "{line}"
    );
    let (total, rate) = rest.split_once(" | ").unwrap();
    assert_eq!(total, "Total Msgs: 3");
    let rate = rate
        .strip_prefix("Rate: ")
        .unwrap()
        .strip_suffix(" msg/min")
        .unwrap();
    assert_eq!(rate.split_once('.').unwrap().1.len(), 2, "{line}");
    sigterm(&child);
    assert_eq!(wait_exit(child, d).await, 0);

    let data = d.join("data");
    no_open_files(&data);
    let names: Vec<String> = files(&data)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let hour = names
        .iter()
        .find_map(|n| {
            n.strip_prefix("publicTrade.BTCUSDT_")?
                .strip_suffix(".jsonl")?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no Go-layout file in {names:?}"));
    assert_eq!(hour % 3600, 0, "the file is named after the hour's start");
    let content =
        std::fs::read_to_string(data.join(format!("publicTrade.BTCUSDT_{hour}.jsonl"))).unwrap();
    assert_eq!(
        content,
        sent.map(|m| format!("{m}\n")).concat(),
        "verbatim lines"
    );
    assert!(names.contains(&format!("publicTrade.BTCUSDT_{hour}.events.ndjson")));
    let log = std::fs::read_to_string(d.join("streamer.log")).unwrap();
    assert!(log.contains("Connected."), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in the log file");
    let stdout = std::fs::read_to_string(d.join("stdout.log")).unwrap();
    assert!(stdout.is_empty(), "log_to_stdout = false: {stdout}");
}

#[test]
fn status_without_a_running_recorder_explains() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["status", "--socket", "nope.sock"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nope.sock") && stderr.contains("wsrec record"),
        "{stderr}"
    );
}

/// `wsrec` with its open-file limit (`RLIMIT_NOFILE`) set to `soft` and `hard`, as `prlimit`
/// or `ulimit -n` would.
fn wsrec_with_open_files(soft: u64, hard: u64) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = wsrec();
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: between fork and exec the child only calls setrlimit, which is async-signal-safe,
    // on a struct copied into the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd
}

/// Writes `config.toml` in `dir`: `n` streams on `url`, recording into `out`, with a status
/// socket; returns the parsed config.
fn many_streams(dir: &Path, n: usize, url: &str) -> wsrec::Config {
    let mut text = format!(
        "output_dir = \"out\"\nstatus_socket = \"{}\"\n",
        dir.join("wsrec.sock").display()
    );
    for i in 0..n {
        text.push_str(&format!("[[stream]]\nname = \"s{i}\"\nurl = \"{url}\"\n"));
    }
    std::fs::write(dir.join("config.toml"), &text).unwrap();
    wsrec::net::venue::resolve(wsrec::Config::parse_toml(&text).unwrap()).unwrap()
}

/// The hard open-file limit of this (test) process.
fn hard_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit.rlim_max
}

/// Kills the child it holds when dropped, so a failing test leaves no recorder running.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Soft and hard open-file limits of a running process, from /proc/<pid>/limits.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-file limit in {text}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// Streams that cannot fit in the open-file limit, soft and hard, are refused at start (exit 2,
/// nothing written) with how many descriptors they need and how to get them, instead of
/// recording some streams and failing the others with "Too many open files".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_open_file_limit_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = many_streams(d, 40, "ws://127.0.0.1:9/");
    let needed = wsrec::recorder::descriptors_needed(&config);
    assert!(needed > 3 * 40, "{needed} descriptors for 40 streams");
    let child = spawn_with(
        wsrec_with_open_files(64, 64),
        &["record", "-c", "config.toml"],
        d,
    );
    // A recorder that starts anyway runs until the deadline, is killed and fails the test.
    let code = wait_exit(child, d).await;
    let stderr = std::fs::read_to_string(d.join("stderr.log")).unwrap();
    assert_eq!(code, 2, "{stderr}");
    for want in [
        &format!("40 stream(s) need about {needed} open files"),
        "may open only 64",
        "hard limit 64",
        &format!("ulimit -n {needed}"),
        &format!("LimitNOFILE={needed}"),
    ] {
        assert!(stderr.contains(want), "{stderr:?} lacks {want:?}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!d.join("out").exists(), "wrote output");
}

/// A soft open-file limit too low for the streams, under a hard one that is high enough, is
/// raised to the hard one (logged), and every stream records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_soft_open_file_limit_is_raised_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let streams = 40;
    let config = many_streams(d, streams, &server.url());
    let needed = wsrec::recorder::descriptors_needed(&config);
    let hard = hard_open_file_limit().min(4096);
    assert!(
        hard >= needed && needed > 64,
        "this test needs a hard open-file limit of at least {needed} (ulimit -Hn: {hard})"
    );
    let mut child = Reaper(Some(spawn_with(
        wsrec_with_open_files(64, hard),
        &["record", "-c", "config.toml"],
        d,
    )));
    let mut conns = Vec::new();
    for i in 0..streams {
        let mut conn = server.accept().await;
        conn.send_text(&format!(r#"{{"n":{i}}}"#)).await;
        conns.push(conn);
    }
    wait_status(&d.join("wsrec.sock"), |v| {
        v["total_messages"].as_u64() == Some(streams as u64)
    })
    .await;
    let pid = child.0.as_ref().unwrap().id();
    assert_eq!(
        open_file_limits(pid),
        (hard, hard),
        "the soft limit is raised to the hard one"
    );
    let child = child.0.take().unwrap();
    sigterm(&child);
    assert_eq!(wait_exit(child, d).await, 0);
    drop(conns);

    // wsrec's own mode logs on stderr; stdout stays for data.
    let log = std::fs::read_to_string(d.join("stderr.log")).unwrap();
    assert_eq!(std::fs::read_to_string(d.join("stdout.log")).unwrap(), "");
    let raised = log
        .lines()
        .find(|l| l.contains("Raised the open-file limit"))
        .unwrap_or_else(|| panic!("no log line about the open-file limit: {log}"));
    assert!(
        raised.contains("INFO")
            && raised.contains("from=64")
            && raised.contains(&format!("to={hard}")),
        "{raised}"
    );
    let out = d.join("out");
    no_open_files(&out);
    let mut got = messages(&records(&out));
    got.sort();
    let mut want: Vec<String> = (0..streams).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    want.sort();
    assert_eq!(got, want, "every stream recorded");
}

/// Now, in ns since the Unix epoch.
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Every record under `dir`, open files included.
fn records_so_far(dir: &Path) -> Vec<Value> {
    all_files(dir)
        .iter()
        .filter(|f| {
            let name = f.to_string_lossy();
            (name.contains(".jsonl") || name.contains(".events.ndjson"))
                && !name.ends_with(".manifest.json")
        })
        .flat_map(|f| {
            read_text(f)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One message sent while the recorder is stopped (SIGSTOP): its `ts`, the time just before it
/// was sent, the time the recorder's kernel had acknowledged it (all of it received, so
/// stamped), and the time the recorder was let go on (SIGCONT).
#[derive(Debug)]
struct Held {
    ts: u64,
    sent: u64,
    acked: u64,
    resumed: u64,
}

/// Sends message `n` on `conn` while the recorder `pid` is stopped, lets it go on, and waits
/// until it has written the message under `dir`.
async fn send_while_stopped(conn: &mut ServerConn, pid: i32, n: u64, dir: &Path) -> Held {
    use std::os::fd::AsRawFd;
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let sent = wall_ns();
    conn.send_text(&format!(r#"{{"n":{n}}}"#)).await;
    // The recorder's kernel has taken every byte once the send queue is empty (acknowledged):
    // the data was received, and stamped, by then.
    let fd = conn.ws.get_ref().as_raw_fd();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) on a TCP socket writes one int.
        assert_eq!(
            unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &raw mut queued) },
            0
        );
        if queued == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the message was never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked = wall_ns();
    let resumed = wall_ns();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let ts = loop {
        let recs = records_so_far(dir);
        if let Some(m) = recs
            .iter()
            .find(|r| r.get("msg").is_some_and(|m| m["n"] == n))
        {
            break m["ts"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "message {n} was never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Held {
        ts,
        sent,
        acked,
        resumed,
    }
}

/// Records with `ts_source` (`None`: the default, kernel); `rounds` decides after each message sent
/// while the recorder is stopped whether to send another. Returns the `connected` event.
async fn record_while_stopped(
    ts_source: Option<&str>,
    mut rounds: impl FnMut(Held) -> bool,
) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let url = server.url();
    let mut args = vec![
        "record",
        &url,
        "-o",
        "out",
        "--name",
        "t",
        "--compress",
        "none",
    ];
    if let Some(source) = ts_source {
        args.extend(["--ts-source", source]);
    }
    let child = spawn(&args, tmp.path());
    let mut conn = server.accept().await;
    let dir = tmp.path().join("out");
    let mut n = 0;
    while rounds(send_while_stopped(&mut conn, child.id() as i32, n, &dir).await) {
        n += 1;
    }
    sigterm(&child);
    assert_eq!(wait_exit(child, tmp.path()).await, 0);
    let recs = records(&dir);
    events(&recs, "connected")[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_receive_times_stay_true_while_the_recorder_cannot_read() {
    // Kernel stamps (the default): the time the data arrived, although the recorder read it only after
    // SIGCONT. Linux turns receive stamping on for the machine a moment after the first socket
    // asks (a deferred work item), so the first messages may come unstamped: they get read times,
    // never a stale stamp. Messages are sent until one carries its arrival time, which read
    // times never can (the recorder reads only after it was let go on, after the ack).
    let mut held = Vec::new();
    let connected = record_while_stopped(None, |h| {
        let stamped = h.ts <= h.acked;
        assert!(
            h.sent <= h.ts && (stamped || h.ts >= h.resumed),
            "neither the arrival time nor the read time: {h:?}"
        );
        held.push(h);
        !stamped && held.len() < 200
    })
    .await;
    assert_eq!(connected["ts_source"], "kernel", "{connected}");
    let last = held.last().unwrap();
    assert!(
        last.sent <= last.ts && last.ts <= last.acked,
        "no message of {} carried its arrival time: {held:?}",
        held.len()
    );
    // Read times: the time the recorder got to read it.
    let connected = record_while_stopped(Some("read"), |h| {
        assert!(
            h.ts >= h.resumed && h.resumed >= h.acked,
            "read ts before the recorder was let go on: {h:?}"
        );
        false
    })
    .await;
    assert_eq!(connected["ts_source"], "read", "{connected}");
}

/// Whether a preset channel carries an order book, by its name: books, depth, level 2, market
/// by price; not the best-bid-and-offer tickers (`bookTicker`, `book_ticker`).
fn is_book_channel(channel: &str) -> bool {
    let c = channel.to_ascii_lowercase();
    !c.contains("ticker")
        && ["book", "depth", "level2", "mbp"]
            .iter()
            .any(|w| c.contains(w))
}

#[test]
fn venues_name_how_every_book_channel_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    let mut rest = Vec::new();
    for p in wsrec::net::venue::PRESETS {
        let books: Vec<&str> = p
            .channels
            .iter()
            .copied()
            .filter(|c| is_book_channel(c))
            .collect();
        if books.is_empty() {
            continue;
        }
        let out = run(&["venues", p.name], dir.path());
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let json = run(&["venues", p.name, "--json"], dir.path());
        let doc: Value = serde_json::from_slice(&json.stdout).expect("venues NAME --json is JSON");
        for channel in books {
            seen += 1;
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("  book:       {channel}: ")))
                .unwrap_or_else(|| panic!("{}: no book line for {channel}:\n{text}", p.name));
            let entry = doc["books"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["channel"] == channel)
                .unwrap_or_else(|| panic!("{}: --json lacks {channel}", p.name));
            match entry["start"].as_str().unwrap() {
                "feed" => assert!(line.starts_with("snapshot in the feed. "), "{line}"),
                "full" => assert!(line.starts_with("full books"), "{line}"),
                "ws_request" => assert!(line.contains("wsrec does not do"), "{line}"),
                "rest" => {
                    let url = entry["rest"]["url_example"].as_str().unwrap();
                    assert!(url.starts_with("https://"), "{url}");
                    assert!(
                        line.starts_with(&format!(
                            "REST snapshot after the first difference: {url} ("
                        )),
                        "{line}"
                    );
                    rest.push(format!("{} {channel}", p.name));
                }
                other => panic!("{}: {channel} starts {other:?}", p.name),
            }
        }
    }
    assert!(seen >= 50, "only {seen} book channels found");
    // The difference feeds the issue names start from REST snapshots.
    for want in [
        "binance-spot depth@100ms",
        "binance-usdm depth@100ms",
        "binance-coinm depth@100ms",
        "bitstamp diff_order_book",
    ] {
        assert!(rest.iter().any(|r| r == want), "{want} not REST: {rest:?}");
    }
    let binance = run(&["venues", "binance-spot"], dir.path());
    let text = String::from_utf8_lossy(&binance.stdout);
    assert!(
        text.contains("  book:       depth@100ms: REST snapshot after the first difference: https://api.binance.com/api/v3/depth?symbol=SYMBOL&limit=1000 (1000 levels by default; procedure: https://developers.binance.com/"),
        "{text}"
    );
    // The list of all presets stays short.
    let all = run(&["venues"], dir.path());
    assert!(!String::from_utf8_lossy(&all.stdout).contains("\n  book:       "));
}

#[test]
fn completions_load_in_bash_and_man_pages_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(&["completions", "bash"], d);
    assert!(out.status.success());
    std::fs::write(d.join("wsrec.bash"), &out.stdout).unwrap();
    // Bash itself loads the script and registers the completion.
    let check = Command::new("bash")
        .args(["-c", "source ./wsrec.bash && complete -p wsrec"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("_wsrec"),
        "{check:?}"
    );
    for (shell, mark) in [("zsh", "#compdef wsrec"), ("fish", "complete -c wsrec")] {
        let out = run(&["completions", shell], d);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(mark) && text.contains("verify"), "{shell}");
    }
    let out = run(&["completions", "tcsh"], d);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["man"], d);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") && page.contains(".TH wsrec 1"),
        "{page}"
    );
    let out = run(&["man", "--dir", "man1"], d);
    assert!(out.status.success(), "{out:?}");
    for cmd in [
        "record", "cat", "export", "verify", "book", "stats", "replay", "merge", "demo", "venues",
    ] {
        let page = std::fs::read_to_string(d.join(format!("man1/wsrec-{cmd}.1"))).unwrap();
        assert!(page.contains(&format!(".TH wsrec-{cmd} 1")), "{cmd}");
    }
    let verify = std::fs::read_to_string(d.join("man1/wsrec-verify.1")).unwrap();
    assert!(verify.contains("no\\-books"), "{verify}");
}

#[tokio::test]
async fn status_takes_the_output_directory_and_watches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = TestServer::start().await;
    let child = spawn(&["record", &server.url(), "-o", "out", "--name", "feed"], d);
    let mut conn = server.accept().await;
    conn.send_text(r#"{"n":1}"#).await;
    // The default socket lives in the output directory: `status out` finds it.
    wait_status(&d.join("out/.wsrec.sock"), |v| v["total_messages"] == 1).await;
    let out = run(&["status", "out"], d);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("feed"), "{table}");
    // So does a config whose output directory it is, given after `status` or before it.
    std::fs::write(
        d.join("cfg.toml"),
        "output_dir = \"out\"\n[[stream]]\nname = \"x\"\nurl = \"ws://h/\"\n",
    )
    .unwrap();
    for args in [&["status", "-c", "cfg.toml"], &["-c", "cfg.toml", "status"]] {
        let out = run(args, d);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("feed"),
            "{out:?}"
        );
    }
    // --watch repeats until stopped: wait for a second table in its output.
    let watch = spawn(&["status", "out", "--watch", "50ms", "--json"], d);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(d.join("stdout.log")).unwrap_or_default();
        if text.matches("\"total_messages\"").count() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no second status: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigterm(&watch);
    let _ = wait_exit(watch, d).await;
    sigterm(&child);
    assert_eq!(wait_exit(child, d).await, 0);
    drop(conn);
}
