//! End to end: the bench's runner, flood server and checker against `wsrec-standin`, a minimal
//! recorder with `wsrec record`'s command line, as a child process over 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wsrec_bench::recorder::Process;
use wsrec_bench::run::{Settings, payload_for, run_scenario};
use wsrec_bench::scenario::catalogue;

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
        let result = run_scenario(&scenario, &payload, 20_000, 2, &settings, |l| {
            lines.push(l.to_owned())
        });
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
        assert!(result.server_ceiling_msgs_per_s.is_some());
        for run in &result.runs {
            assert_eq!(run.check.messages, 20_000);
            assert_eq!(run.check.files, ["bench.jsonl"]);
            assert!(run.close_replied);
            assert_eq!(run.check.message_bytes, payload.total_bytes(20_000));
        }
        if scenario.recorder.format() == wsrec_bench::check::Format::Envelope {
            assert_eq!(result.runs[0].check.connections, 1);
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
fn lost_messages_fail_the_run_and_keep_the_files() {
    let settings = settings(&standin(), &["--drop-every", "1000"], "drop");
    let scenario = &catalogue()[0];
    let payload = payload_for(scenario.payload, &corpus()).unwrap();
    let result = run_scenario(scenario, &payload, 5_000, 3, &settings, |_| {});
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
fn a_recorder_that_exits_early_fails_with_its_output() {
    // `sh record ws://…` fails at once: "record" is no script file.
    let settings = settings(Path::new("/bin/sh"), &[], "early");
    let scenario = &catalogue()[1];
    let payload = payload_for(scenario.payload, &corpus()).unwrap();
    let result = run_scenario(scenario, &payload, 100, 1, &settings, |_| {});
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
