//! End to end: the bench's runner, servers and checker against `wsrec-standin`, a minimal
//! recorder with `wsrec record`'s command line, as a child process over 127.0.0.1; and against
//! websocat when the bench has installed it (`bench/target-tools/bin/websocat`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use wsrec_bench::check::Format;
use wsrec_bench::recorder::{Process, find_websocat};
use wsrec_bench::run::{Settings, payload_for, run_interleaved, run_scenario};
use wsrec_bench::scenario::{Recorder, Sizes, Workload, catalogue};

/// Small sizes for every workload: 4 reconnects, 20 paced streams.
const SIZES: Sizes = Sizes {
    messages: 20_000,
    reconnect_every: 6_000,
    streams: 20,
    stream_rate: 200.0,
    streams_duration_s: 0.5,
    steady_rate: 20_000.0,
    steady_duration_s: 0.5,
    hog_rate: 20_000.0,
    hog_file_bytes: 8 << 20,
    spaced_rate: 2_000.0,
    flood_rate: 0.0,
};

fn settings(wsrec: &Path, args: &[&str], tag: &str) -> Settings {
    let work_dir =
        std::env::temp_dir().join(format!("wsrec-bench-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&work_dir).unwrap();
    Settings {
        wsrec: wsrec.to_path_buf(),
        launcher: PathBuf::from(env!("CARGO_BIN_EXE_wsrec-bench")),
        wsrec_args: args.iter().map(Into::into).collect(),
        work_dir,
        timeout: Duration::from_secs(60),
        keep: false,
        websocat: Err("not used in this test".into()),
        warm_page_cache: true,
    }
}

fn standin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsrec-standin"))
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus")
}

#[test]
fn every_scenario_passes_with_the_standin() {
    let settings = settings(&standin(), &[], "ok");
    // A large bench process must not leak into the recorder's peak RSS (see `reap_main`).
    let ballast = vec![1u8; 256 << 20];
    for scenario in catalogue() {
        let payload = payload_for(scenario.payload, &corpus()).unwrap();
        let mut lines = Vec::new();
        let result = run_scenario(&scenario, &payload, &SIZES, 2, &settings, |l| {
            lines.push(l.to_owned())
        });
        if scenario.recorder == Recorder::Websocat {
            assert!(
                result.skipped.is_some() && result.passed(),
                "{}",
                scenario.name
            );
            continue;
        }
        assert!(
            result.passed(),
            "{}: {:?}\n{lines:#?}",
            scenario.name,
            result.error
        );
        let m = result.median.unwrap();
        assert!(m.msgs_per_s > 0.0 && m.cpu_ns_per_msg > 0.0 && m.peak_rss_mib > 0.0);
        assert!(
            m.peak_rss_mib < 64.0,
            "stand-in peak RSS {} MiB",
            m.peak_rss_mib
        );
        let envelope = scenario.recorder.format() == Format::Envelope;
        for run in &result.runs {
            assert!(run.close_replied, "{}", scenario.name);
            // Paced runs measure the recorder's CPU in the steady window, to the nanosecond:
            // some, and no more than its whole life's.
            let paced = scenario.workload.paced();
            assert_eq!(run.steady_cpu_ns_per_msg.is_some(), paced, "{run:?}");
            if paced {
                let cpu = run.steady_cpu_s.unwrap();
                assert!(cpu > 0.0 && cpu <= run.user_s + run.system_s, "{run:?}");
                assert_eq!(run.steady_cpu_resolution_ns, Some(1));
                assert!(
                    run.steady_window_s.unwrap() > run.elapsed_s * 0.9,
                    "{run:?}"
                );
                assert!(m.steady_cpu_ns_per_msg.is_some());
            }
            match scenario.workload {
                Workload::Flood => {
                    assert_eq!(run.check.messages, 20_000);
                    assert_eq!(run.check.files, ["bench.jsonl"]);
                    assert_eq!(run.check.message_bytes, payload.total_bytes(20_000));
                    if envelope {
                        assert_eq!(run.check.connections, 1);
                    }
                }
                Workload::Reconnect => {
                    assert_eq!(run.check.messages, 20_000);
                    assert_eq!(run.connections, 4, "{}", scenario.name);
                    assert!(run.reconnect_gap_ms.is_some());
                    if envelope {
                        let counts: Vec<u64> = run
                            .check
                            .per_connection
                            .iter()
                            .map(|c| c.messages)
                            .collect();
                        assert_eq!(counts, [6000, 6000, 6000, 2000]);
                    }
                }
                Workload::ManyStreams => {
                    assert_eq!(run.check.messages, 20 * 100);
                    assert_eq!(run.check.file_count, 20);
                    assert_eq!(run.connections, 20);
                    assert_eq!(run.extra_connections, Some(0));
                }
                Workload::Steady | Workload::DiskHog => {
                    assert_eq!(run.check.messages, 10_000);
                    // 10,000 messages at 20,000/s: about half a second, not a burst.
                    assert!(run.elapsed_s > 0.45, "{}", run.elapsed_s);
                    // Every message's receive delay was measured (send times of one connection,
                    // receive times in the envelope).
                    let delay = run.check.receive_delay;
                    assert_eq!(delay.is_some(), envelope, "{}", scenario.name);
                    if let Some(d) = delay {
                        assert_eq!(d.messages, 10_000);
                        assert!(d.p50_us > 0.0 && d.p50_us <= d.max_us, "{d:?}");
                    }
                    let hog = run.disk_hog;
                    assert_eq!(hog.is_some(), scenario.workload == Workload::DiskHog);
                    assert!(hog.is_none_or(|h| h.bytes > 0 && h.fsyncs > 0), "{hog:?}");
                }
                Workload::Spaced => {
                    // 1,000 messages at 2,000/s, each sent alone: half a second.
                    assert_eq!(run.check.messages, 1_000);
                    assert!(run.elapsed_s > 0.45, "{}", run.elapsed_s);
                    let d = run.check.receive_delay.expect("the delay of each message");
                    assert_eq!(d.messages, 1_000);
                    assert!(m.delay_p99_us.is_some());
                }
                Workload::SpacedBesideFlood => {
                    // Scenario 9's 1,000 spaced messages, each with its receive delay, beside a
                    // flood that ran from before the first of them to after the last, every
                    // message of it recorded in order (the check passed on the count it sent).
                    let f = run.flood_beside.expect("the flood's figures");
                    assert!(f.messages > 1_000 && f.lead_ms >= 0.0, "{f:?}");
                    assert!(f.seconds > 0.45, "{f:?}");
                    assert_eq!(run.check.messages, 1_000 + f.messages);
                    assert_eq!(
                        run.check.message_bytes,
                        payload.total_bytes(1_000) + payload.total_bytes(f.messages)
                    );
                    assert_eq!(run.check.file_count, 2);
                    assert_eq!(run.connections, 2);
                    assert_eq!(run.extra_connections, Some(0));
                    let d = run.check.receive_delay.expect("the delay of each message");
                    assert_eq!(d.messages, 1_000);
                    assert!(d.p50_us > 0.0 && d.p50_us <= d.max_us, "{d:?}");
                    assert!(m.delay_p99_us.is_some());
                    // Throughput and CPU per message are over both streams' messages.
                    assert!(run.msgs_per_s > 1_000.0 / run.elapsed_s, "{run:?}");
                }
            }
        }
        assert_eq!(
            result.server_ceiling_msgs_per_s.is_some(),
            scenario.workload == Workload::Flood
        );
        if scenario.workload == Workload::SpacedBesideFlood {
            // The table's messages are the runs' (both streams), not the spaced plan's.
            let counts = result.runs.iter().map(|r| r.check.messages);
            let (lo, hi) = (counts.clone().min().unwrap(), counts.max().unwrap());
            assert!(
                lo > 1_000 && (lo..=hi).contains(&result.messages),
                "{lo} {hi}"
            );
        }
    }
    assert_eq!(
        ballast.iter().map(|&b| u64::from(b)).sum::<u64>(),
        256 << 20
    );
    // Successful runs leave nothing behind.
    assert_eq!(std::fs::read_dir(&settings.work_dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&settings.work_dir).unwrap();
}

#[test]
fn compared_scenarios_can_run_interleaved() {
    let settings = settings(&standin(), &[], "interleaved");
    let all = catalogue();
    let pick = |name: &str| all.iter().find(|s| s.name == name).unwrap().clone();
    let (a, b) = (pick("rotate-none"), pick("rotate-zstd"));
    let payload = payload_for(a.payload, &corpus()).unwrap();
    let mut lines = Vec::new();
    let results = run_interleaved(
        &[(&a, &payload), (&b, &payload)],
        &SIZES,
        2,
        &settings,
        |l| lines.push(l.to_owned()),
    );
    assert!(results.iter().all(|r| r.passed() && r.runs.len() == 2));
    let order: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains(" run "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "rotate-none run 1/2",
            "rotate-zstd run 1/2",
            "rotate-none run 2/2",
            "rotate-zstd run 2/2"
        ]
    );
    std::fs::remove_dir_all(&settings.work_dir).unwrap();
}

#[test]
fn websocat_scenarios_pass_when_websocat_is_installed() {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-tools");
    let websocat = match find_websocat(&tools, None, false) {
        Ok(w) => w,
        Err(why) => {
            eprintln!("SKIPPED: {why} (run the bench once to install it)");
            return;
        }
    };
    let mut settings = settings(&standin(), &[], "websocat");
    settings.websocat = Ok(websocat);
    for scenario in catalogue()
        .into_iter()
        .filter(|s| s.recorder == Recorder::Websocat)
    {
        let payload = payload_for(scenario.payload, &corpus()).unwrap();
        let mut lines = Vec::new();
        let result = run_scenario(&scenario, &payload, &SIZES, 1, &settings, |l| {
            lines.push(l.to_owned())
        });
        assert!(
            result.passed() && result.skipped.is_none(),
            "{}: {:?}\n{lines:#?}",
            scenario.name,
            result.error
        );
        let run = &result.runs[0];
        assert_eq!(run.check.messages, scenario.workload.plan(&SIZES).messages);
        if scenario.workload == Workload::ManyStreams {
            assert_eq!(run.processes, 20);
        }
    }
    std::fs::remove_dir_all(&settings.work_dir).unwrap();
}

#[test]
fn the_single_thread_standin_records_every_workload_that_does_not_reconnect() {
    let settings = settings(&standin(), &["--single-thread"], "single");
    let all = catalogue();
    for name in [
        "small-envelope",
        "large-raw",
        "many-streams",
        "steady-envelope",
        "reconnect",
    ] {
        let scenario = all.iter().find(|s| s.name == name).unwrap();
        let payload = payload_for(scenario.payload, &corpus()).unwrap();
        let mut lines = Vec::new();
        let result = run_scenario(scenario, &payload, &SIZES, 1, &settings, |l| {
            lines.push(l.to_owned())
        });
        if scenario.workload == Workload::Reconnect {
            let error = result.error.unwrap_or_default();
            assert!(
                error.contains("--single-thread does not reconnect"),
                "{error}"
            );
            continue;
        }
        assert!(result.passed(), "{name}: {:?}\n{lines:#?}", result.error);
        let run = &result.runs[0];
        assert!(run.close_replied, "{name}");
        assert_eq!(run.check.messages, scenario.workload.plan(&SIZES).messages);
        if scenario.workload == Workload::Flood {
            // Frames of up to 700 KB grow the read buffer of 64 KiB.
            assert_eq!(
                run.check.message_bytes,
                payload.total_bytes(20_000),
                "{name}"
            );
        }
    }
    std::fs::remove_dir_all(&settings.work_dir).unwrap();
}

#[test]
fn lost_messages_fail_the_run_and_keep_the_files() {
    let settings = settings(&standin(), &["--drop-every", "1000"], "drop");
    let scenario = &catalogue()[0];
    let payload = payload_for(scenario.payload, &corpus()).unwrap();
    let sizes = Sizes {
        messages: 5_000,
        ..SIZES
    };
    let result = run_scenario(scenario, &payload, &sizes, 3, &settings, |_| {});
    assert!(!result.passed());
    assert!(
        result.runs.is_empty(),
        "the first failure ends the scenario"
    );
    let error = result.error.unwrap();
    assert!(error.contains("5 lost, 0 repeated"), "{error}");
    assert!(
        error.contains("expected message 999, found message 1000"),
        "{error}"
    );
    assert!(error.contains("files kept in"), "{error}");
    std::fs::remove_dir_all(&settings.work_dir).unwrap();
}

#[test]
fn loss_on_the_stream_flooded_beside_the_spaced_one_fails_the_run() {
    // The spaced stream has 1,000 messages: only the flood loses any.
    let settings = settings(&standin(), &["--drop-every", "5000"], "drop-beside");
    let all = catalogue();
    let scenario = all
        .iter()
        .find(|s| s.workload == Workload::SpacedBesideFlood)
        .unwrap();
    let payload = payload_for(scenario.payload, &corpus()).unwrap();
    let result = run_scenario(scenario, &payload, &SIZES, 1, &settings, |_| {});
    assert!(!result.passed());
    let error = result.error.unwrap();
    assert!(error.contains("stream flood: recording in"), "{error}");
    assert!(
        error.contains("expected message 4999, found message 5000"),
        "{error}"
    );
    std::fs::remove_dir_all(&settings.work_dir).unwrap();
}

#[test]
fn a_recorder_that_exits_early_fails_with_its_output() {
    // `sh record ws://…` fails at once: "record" is no script file.
    let settings = settings(Path::new("/bin/sh"), &[], "early");
    let scenario = &catalogue()[1];
    let payload = payload_for(scenario.payload, &corpus()).unwrap();
    let sizes = Sizes {
        messages: 100,
        ..SIZES
    };
    let result = run_scenario(scenario, &payload, &sizes, 1, &settings, |_| {});
    let error = result.error.unwrap();
    assert!(
        error.contains("recorder ended before reading every message: exit code"),
        "{error}"
    );
    assert!(
        error.contains("record"),
        "the recorder's output is shown: {error}"
    );
    std::fs::remove_dir_all(&settings.work_dir).unwrap();
}

fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsrec-bench"))
}

#[test]
fn the_reaper_forwards_sigterm_and_reports_the_signal() {
    let dir = std::env::temp_dir().join(format!("wsrec-bench-reap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut proc = Process::spawn(
        &launcher(),
        Path::new("/bin/sleep"),
        &["30".into()],
        &dir.join("term.log"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    proc.signal(libc::SIGTERM);
    let exit = proc.wait_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(exit.signal, Some(libc::SIGTERM), "{}", exit.describe());
    assert!(exit.max_rss_kib > 0 && exit.max_rss_kib < 16 * 1024);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killing_the_reaper_kills_the_recorder() {
    let dir = std::env::temp_dir().join(format!("wsrec-bench-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("pid");
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let mut proc = Process::spawn(
        &launcher(),
        Path::new("/bin/sh"),
        &["-c".into(), script.into()],
        &dir.join("kill.log"),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    };
    proc.signal(libc::SIGKILL);
    proc.wait_timeout(Duration::from_secs(10)).unwrap().unwrap();
    let gone = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        // Gone, or a zombie waiting for init to reap it.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(gone, "recorder {pid} survived its reaper");
    std::fs::remove_dir_all(&dir).unwrap();
}
