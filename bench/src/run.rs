//! One measured run: start the flood server, start the recorder on it, wait until the client has
//! answered the close frame (every message consumed), SIGTERM the recorder, reap it for CPU and
//! peak RSS, and check the recording.
//!
//! Throughput is N divided by the time from the first frame written to the client's close reply.
//! CPU and RSS are the recorder process's own, whole life included (startup and the drain after
//! SIGTERM).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::check::{self, CheckSummary};
use crate::payload::Payload;
use crate::recorder::{Exit, Process};
use crate::report::{ScenarioResult, si};
use crate::scenario::{PayloadKind, Scenario, Workload};
use crate::server::{
    ClientEnd, ClientTraffic, Encoded, FloodServer, ServerReport, measure_ceiling,
};

/// The stream name given to the recorder (`--name`) and expected in envelope lines.
pub const STREAM_NAME: &str = "bench";
/// How long the recorder may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of recorder output shown when a run fails.
const LOG_TAIL: usize = 30;

/// Everything a run needs besides the scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The recorder binary.
    pub wsrec: PathBuf,
    /// The bench binary, started in reaper mode to run the recorder (see
    /// [`crate::recorder::reap_main`]).
    pub launcher: PathBuf,
    /// Extra arguments appended to the recorder's command line.
    pub wsrec_args: Vec<OsString>,
    /// Directory under which each run gets its own scratch directory.
    pub work_dir: PathBuf,
    /// Limit for one run, from start to the client's close reply.
    pub timeout: Duration,
    /// Keep recordings of successful runs too (failed runs' are always kept).
    pub keep: bool,
}

/// Figures of one successful run.
#[derive(Debug, Clone, Serialize)]
pub struct RunMetrics {
    /// Messages per second, first frame to close reply.
    pub msgs_per_s: f64,
    /// Message payload MB (10^6 bytes) per second over the same time.
    pub mb_per_s: f64,
    /// Recorder user + system CPU per message, ns.
    pub cpu_ns_per_msg: f64,
    /// Recorder peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// Seconds from first frame to close reply.
    pub elapsed_s: f64,
    /// Recorder user CPU, seconds.
    pub user_s: f64,
    /// Recorder system CPU, seconds.
    pub system_s: f64,
    /// From SIGTERM to the recorder being reaped, ms.
    pub stop_ms: f64,
    /// Messages per second from the first frame to the recorder being reaped after SIGTERM:
    /// includes whatever it still had to write and flush after the close.
    pub msgs_per_s_until_exit: f64,
    /// Whether the client answered the close frame (`true`) or just closed TCP.
    pub close_replied: bool,
    /// Status code of the client's close frame, if it sent one.
    pub client_close_code: Option<u16>,
    /// Frames the client sent, close included.
    pub client_frames: u64,
    /// Pings the client sent (each answered).
    pub client_pings: u64,
    /// Text or binary frames the client sent (subscriptions).
    pub client_data_frames: u64,
    /// What the recording held.
    pub check: CheckSummary,
    /// Where the run's files are, if kept.
    pub kept_dir: Option<PathBuf>,
}

/// Waits until the server is done, the recorder dies, or the deadline passes.
fn wait_served(server: FloodServer, proc: &mut Process, deadline: Instant) -> Result<ServerReport> {
    loop {
        if server.is_finished() {
            return server
                .join()
                .with_context(|| format!("flood server failed\n{}", proc.log_tail(LOG_TAIL)));
        }
        if let Some(exit) = proc.try_wait()? {
            server.stop();
            let why = server
                .join()
                .err()
                .map(|e| format!(" ({e:#})"))
                .unwrap_or_default();
            bail!(
                "recorder ended before reading every message: {}{why}\n{}",
                exit.describe(),
                proc.log_tail(LOG_TAIL)
            );
        }
        if Instant::now() >= deadline {
            server.stop();
            bail!(
                "timed out: the recorder did not read every message in time\n{}",
                proc.log_tail(LOG_TAIL)
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends SIGTERM and reaps the recorder; fails unless it exits 0 within [`STOP_TIMEOUT`].
fn stop(proc: &mut Process) -> Result<(Exit, Duration)> {
    let sent = Instant::now();
    proc.signal(libc::SIGTERM);
    let Some(exit) = proc.wait_timeout(STOP_TIMEOUT)? else {
        proc.signal(libc::SIGKILL);
        bail!(
            "recorder did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
            proc.log_tail(LOG_TAIL)
        );
    };
    if !exit.success() {
        bail!(
            "recorder failed on SIGTERM: {}\n{}",
            exit.describe(),
            proc.log_tail(LOG_TAIL)
        );
    }
    Ok((exit, exit.at - sent))
}

/// A fresh scratch directory for one run.
fn scratch_dir(base: &Path, scenario: &str, run: usize) -> Result<PathBuf> {
    let dir = base.join(format!(
        "wsrec-bench-{}-{scenario}-{run}",
        std::process::id()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("out"))
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Runs `scenario` once with pre-encoded `frames` of `payload`. `run` numbers the run (from 1).
///
/// # Errors
/// The recorder fails, is too slow, exits non-zero, or the recording is not exactly what was sent.
/// The run's directory (recorder output and log) is kept then, and named in the error.
pub fn run_once(
    scenario: &Scenario,
    payload: &Payload,
    frames: &Arc<Encoded>,
    settings: &Settings,
    run: usize,
) -> Result<RunMetrics> {
    match scenario.workload {
        Workload::Flood => {}
    }
    let dir = scratch_dir(&settings.work_dir, scenario.name, run)?;
    let result = flood_once(scenario, payload, frames, settings, &dir);
    match result {
        Ok(mut m) if settings.keep => {
            m.kept_dir = Some(dir);
            Ok(m)
        }
        Ok(m) => {
            let _ = std::fs::remove_dir_all(&dir);
            Ok(m)
        }
        Err(e) => Err(e.context(format!("files kept in {}", dir.display()))),
    }
}

/// The [`Workload::Flood`] run.
fn flood_once(
    scenario: &Scenario,
    payload: &Payload,
    frames: &Arc<Encoded>,
    settings: &Settings,
    dir: &Path,
) -> Result<RunMetrics> {
    let out = dir.join("out");
    let deadline = Instant::now() + settings.timeout;
    let server = FloodServer::start(frames.clone(), deadline)?;
    let mut args = scenario.recorder.command(&server.url(), &out, STREAM_NAME);
    args.extend(settings.wsrec_args.iter().cloned());
    let mut proc = Process::spawn(
        &settings.launcher,
        &settings.wsrec,
        &args,
        &dir.join("recorder.log"),
    )?;
    let report = wait_served(server, &mut proc, deadline)?;
    let (exit, stop_time) = stop(&mut proc)?;
    let check = check::check_recording(
        &out,
        scenario.recorder.format(),
        STREAM_NAME,
        payload,
        frames.messages,
    )?;
    let elapsed = report.elapsed().as_secs_f64();
    let n = frames.messages as f64;
    let ClientTraffic {
        frames: client_frames,
        pings,
        data_frames,
        close_code,
        ..
    } = report.traffic;
    Ok(RunMetrics {
        msgs_per_s: n / elapsed,
        mb_per_s: frames.message_bytes as f64 / elapsed / 1e6,
        cpu_ns_per_msg: exit.cpu().as_nanos() as f64 / n,
        peak_rss_mib: exit.max_rss_kib as f64 / 1024.0,
        elapsed_s: elapsed,
        user_s: exit.user.as_secs_f64(),
        system_s: exit.system.as_secs_f64(),
        stop_ms: stop_time.as_secs_f64() * 1e3,
        msgs_per_s_until_exit: n / (exit.at - report.first_write).as_secs_f64(),
        close_replied: report.client_end == ClientEnd::CloseReply,
        client_close_code: close_code,
        client_frames,
        client_pings: pings,
        client_data_frames: data_frames,
        check,
        kept_dir: None,
    })
}

/// The payload of a scenario; the corpus is read from `corpus_dir`.
///
/// # Errors
/// The corpus cannot be read.
pub fn payload_for(kind: PayloadKind, corpus_dir: &Path) -> Result<Payload> {
    match kind {
        PayloadKind::Small { size } => Payload::small(size),
        PayloadKind::Corpus => Payload::load_corpus(corpus_dir),
    }
}

/// Runs `scenario` `runs` times with `n` messages each and collects the results. The first failed
/// run ends the scenario (its error is recorded). `progress` receives one line per step.
pub fn run_scenario(
    scenario: &Scenario,
    payload: &Payload,
    n: u64,
    runs: usize,
    settings: &Settings,
    mut progress: impl FnMut(&str),
) -> ScenarioResult {
    let frames = Arc::new(Encoded::new(payload, n));
    let mut result = ScenarioResult {
        scenario: scenario.clone(),
        messages: n,
        message_bytes: frames.message_bytes,
        server_ceiling_msgs_per_s: None,
        runs_wanted: runs,
        runs: Vec::new(),
        median: None,
        target_misses: Vec::new(),
        error: None,
    };
    match measure_ceiling(frames.clone(), settings.timeout) {
        Ok(r) => {
            let rate = n as f64 / r.elapsed().as_secs_f64();
            result.server_ceiling_msgs_per_s = Some(rate);
            progress(&format!(
                "{}: flood server alone: {} msg/s",
                scenario.name,
                si(rate)
            ));
        }
        Err(e) => progress(&format!(
            "{}: measuring the flood server alone failed: {e:#}",
            scenario.name
        )),
    }
    for run in 1..=runs {
        match run_once(scenario, payload, &frames, settings, run) {
            Ok(m) => {
                progress(&format!(
                    "{} run {run}/{runs}: {} msg/s, {:.1} MB/s, {:.1} ns CPU/msg, {:.1} MiB peak RSS, stop {:.0} ms",
                    scenario.name,
                    si(m.msgs_per_s),
                    m.mb_per_s,
                    m.cpu_ns_per_msg,
                    m.peak_rss_mib,
                    m.stop_ms
                ));
                result.runs.push(m);
            }
            Err(e) => {
                progress(&format!("{} run {run}/{runs} FAILED: {e:#}", scenario.name));
                result.error = Some(format!("run {run}: {e:#}"));
                break;
            }
        }
    }
    result.finish();
    result
}

/// Median of the values (mean of the middle two for an even count); NaN when empty.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median([]).is_nan());
    }
}
