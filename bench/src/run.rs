//! One measured run: start the server (flood, reconnect blocks, or paced), start the recorder on
//! it, wait until the client has answered every close frame (every message consumed), SIGTERM the
//! recorder, reap it for CPU and peak RSS, and check the recording.
//!
//! Throughput is N divided by the time from the first frame written to the client's close reply
//! (for the reconnect workload, the sum of those times over the connections; for paced workloads,
//! from the start of the schedule to the last close reply, which is the pace). CPU and RSS are the
//! recorder process's own, whole life included (startup and the drain after SIGTERM); paced
//! workloads also measure the recorder's CPU in the steady window alone (see [`crate::window`]).
//!
//! The spaced-beside-flood workload runs two servers for one recorder (a config file with two
//! streams): an [`EndlessFlood`] that floods stream `flood` as fast as the recorder reads, and a
//! gated [`PacedServer`] for the spaced stream `bench`, whose schedule starts once the flood is
//! flowing. When every spaced message has been read (the spaced stream's close reply), the flood
//! is ended (its close frame follows the piece being written) and its close reply waited for; then
//! both recordings are checked, the flood's against the count it sent. Its throughput and CPU per
//! message are over both streams' messages, from the flood's first frame to the last close reply.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::check::{self, CheckSummary, Format};
use crate::hog::{DiskHog, HogReport};
use crate::paced::{PacedReport, PacedServer, PacedSpec, TICK};
use crate::payload::Payload;
use crate::procfs::{ProcessCpu, children_pss_kib};
use crate::recorder::{ChildSpec, Exit, Process, Websocat};
use crate::report::{ScenarioResult, si};
use crate::scenario::{PayloadKind, Plan, Recorder, Scenario, Sizes, Workload};
use crate::server::{
    ClientEnd, ClientTraffic, Encoded, EndlessFlood, EndlessReport, FloodServer, ServerReport,
    measure_ceiling,
};
use crate::window::{CpuClock, CpuReading, CpuWindow};

/// The stream name given to the recorder (`--name`) and expected in envelope lines, for the
/// single-stream workloads.
pub const STREAM_NAME: &str = "bench";
/// The stream flooded beside the spaced one (spaced-beside-flood workload).
pub const FLOOD_STREAM_NAME: &str = "flood";
/// How long the recorder may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a recorder that exits by itself after the close (websocat) is given to do so before
/// it gets SIGTERM.
const SELF_EXIT_WAIT: Duration = Duration::from_secs(5);
/// Lines of recorder output shown when a run fails.
const LOG_TAIL: usize = 30;
/// Reconnect delays wsrec is configured with in the reconnect workload (its defaults, 500 ms
/// doubling per short-lived connection, would make the run mostly waiting).
const RECONNECT_BACKOFF: (&str, &str) = ("5ms", "20ms");
/// websocat's largest message (`-B`): its default, 64 KiB, would split the corpus's largest
/// frames (79 KB).
const WEBSOCAT_BUFFER: &str = "1048576";

/// Everything a run needs besides the scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The recorder binary.
    pub wsrec: PathBuf,
    /// The bench binary, started in reaper mode to run the recorder (see
    /// [`crate::recorder::reap_main`]).
    pub launcher: PathBuf,
    /// Extra arguments appended to wsrec's command line.
    pub wsrec_args: Vec<OsString>,
    /// Directory under which each run gets its own scratch directory.
    pub work_dir: PathBuf,
    /// Limit for one run, from start to the client's close reply.
    pub timeout: Duration,
    /// Keep recordings of successful runs too (failed runs' are always kept).
    pub keep: bool,
    /// The websocat to measure, or why there is none (its scenarios are skipped then).
    pub websocat: Result<Websocat, String>,
    /// Before each flood or reconnect run, write and delete a file as large as the recording
    /// will be (see [`warm_page_cache`]).
    pub warm_page_cache: bool,
}

/// Figures of one successful run.
#[derive(Debug, Clone, Serialize)]
pub struct RunMetrics {
    /// Messages per second, first frame to close reply.
    pub msgs_per_s: f64,
    /// Message payload MB (10^6 bytes) per second over the same time.
    pub mb_per_s: f64,
    /// Recorder user + system CPU per message, ns: the whole process life (start, connections,
    /// shutdown) over the run's messages.
    pub cpu_ns_per_msg: f64,
    /// Paced workloads: recorder CPU per message in the steady window (from the start of the
    /// schedule, all connections up, to just after the last message; see `src/window.rs`), ns.
    pub steady_cpu_ns_per_msg: Option<f64>,
    /// Paced workloads: the steady window's length, seconds.
    pub steady_window_s: Option<f64>,
    /// Paced workloads: recorder CPU in the steady window, seconds.
    pub steady_cpu_s: Option<f64>,
    /// Paced workloads: resolution of the CPU readings, ns (1 from the processes' CPU-time
    /// clocks; a clock tick, usually 10 ms, from `/proc/PID/stat`).
    pub steady_cpu_resolution_ns: Option<u64>,
    /// Paced workloads: why the steady window has no figure.
    pub steady_cpu_error: Option<String>,
    /// Recorder peak RSS, MiB. With several processes (websocat, one per connection): the
    /// largest sum of their Pss sampled every second, which counts shared pages once (see
    /// `rss_sum_of_peaks_mib` for the sum of each process's peak RSS).
    pub peak_rss_mib: f64,
    /// The recorder processes' peak RSS (`ru_maxrss`) summed: with several processes an upper
    /// bound that counts shared pages once per process.
    pub rss_sum_of_peaks_mib: f64,
    /// Seconds from first frame to close reply (summed over connections for the reconnect
    /// workload).
    pub elapsed_s: f64,
    /// Recorder user CPU, seconds.
    pub user_s: f64,
    /// Recorder system CPU, seconds.
    pub system_s: f64,
    /// From SIGTERM to the recorder being reaped, ms.
    pub stop_ms: f64,
    /// Messages per second from the first frame to the recorder being reaped after SIGTERM:
    /// includes whatever it still had to write and flush after the close (and, for the
    /// reconnect workload, the gaps between connections).
    pub msgs_per_s_until_exit: f64,
    /// Connections the server served.
    pub connections: u64,
    /// Recorder processes measured (websocat: one per connection).
    pub processes: u64,
    /// Whether every connection was ended by the client's close reply (`false`: some client
    /// just closed TCP).
    pub close_replied: bool,
    /// Status code of a client close frame, if one was sent.
    pub client_close_code: Option<u16>,
    /// Frames the clients sent, close included.
    pub client_frames: u64,
    /// Pings the clients sent (each answered).
    pub client_pings: u64,
    /// Text or binary frames the clients sent (subscriptions).
    pub client_data_frames: u64,
    /// Reconnect workload: messages per second from the first frame to the last close reply,
    /// the reconnect gaps included.
    pub msgs_per_s_with_gaps: Option<f64>,
    /// Reconnect workload: median time from a close reply to the next connection's first frame
    /// (the recorder's backoff, TCP connect and handshake), ms.
    pub reconnect_gap_ms: Option<f64>,
    /// Paced workloads: most a message was sent behind its scheduled time, ms (large means the
    /// machine could not hold the pace).
    pub max_send_lag_ms: Option<f64>,
    /// Paced workloads: seconds until every connection was up.
    pub connect_s: Option<f64>,
    /// Paced workloads: most bytes one client left unread (it fell behind).
    pub max_pending_bytes: Option<u64>,
    /// Paced workloads: connections beyond the expected ones (a recorder reconnected).
    pub extra_connections: Option<u64>,
    /// MB written and deleted just before the run to warm the page cache (see
    /// `warm_page_cache` in `src/run.rs`), if that was done.
    pub page_cache_warmed_mb: Option<f64>,
    /// Disk-hog workload: what the other writer did meanwhile.
    pub disk_hog: Option<HogReport>,
    /// Spaced-beside-flood workload: what the flooded stream carried meanwhile.
    pub flood_beside: Option<FloodBeside>,
    /// What the recording held (spaced-beside-flood: both streams; the receive delay is the
    /// spaced stream's).
    pub check: CheckSummary,
    /// Where the run's files are, if kept.
    pub kept_dir: Option<PathBuf>,
}

/// What the stream flooded beside the spaced one carried (spaced-beside-flood workload).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FloodBeside {
    /// Messages sent on it, every one of them recorded (else the run failed).
    pub messages: u64,
    /// From its first frame to its close reply, seconds.
    pub seconds: f64,
    /// `messages / seconds`: how fast the recorder read it beside the spaced stream.
    pub msgs_per_s: f64,
    /// How long it had been flowing when the spaced schedule started, ms.
    pub lead_ms: f64,
}

/// The traffic of a scenario, prepared once for all its runs.
pub enum Traffic {
    /// One connection, pre-encoded frames.
    Flood(Arc<Encoded>),
    /// One connection per block, one after the other.
    Blocks(Vec<Arc<Encoded>>),
    /// Paced connections.
    Paced(PacedSpec),
    /// One paced (gated, spaced) connection beside an [`EndlessFlood`] of the same payload.
    Beside(PacedSpec, Option<f64>),
}

/// A quarter of the time between two messages of `rate` per second, at most [`TICK`]: each
/// message goes alone, near its time, without waking the server much more often than that.
fn spaced_tick(rate: f64) -> Duration {
    Duration::from_secs_f64(0.25 / rate).min(TICK)
}

impl Traffic {
    /// Encodes (or describes) the traffic of `plan` for `workload`.
    pub fn new(workload: Workload, plan: &Plan, payload: &Payload) -> Self {
        match workload {
            Workload::Flood => Self::Flood(Arc::new(Encoded::new(payload, plan.messages))),
            Workload::Reconnect => {
                let mut first = 0;
                let blocks = plan
                    .blocks()
                    .into_iter()
                    .map(|n| {
                        let block = Arc::new(Encoded::range(payload, first, n));
                        first += n;
                        block
                    })
                    .collect();
                Self::Blocks(blocks)
            }
            Workload::ManyStreams | Workload::Steady | Workload::DiskHog | Workload::Spaced => {
                let names = if plan.connections == 1 {
                    vec![STREAM_NAME.to_owned()]
                } else {
                    let width = (plan.connections - 1).to_string().len().max(4);
                    (0..plan.connections)
                        .map(|i| format!("s{i:0width$}"))
                        .collect()
                };
                Self::Paced(PacedSpec {
                    names,
                    per_connection: plan.per_connection,
                    rate: plan.rate.unwrap_or(1.0),
                    tick: if workload == Workload::Spaced {
                        spaced_tick(plan.rate.unwrap_or(1.0))
                    } else {
                        TICK
                    },
                    send_times: plan.connections == 1,
                    gated: false,
                    cpu_window: true,
                })
            }
            Workload::SpacedBesideFlood => Self::Beside(
                PacedSpec {
                    names: vec![STREAM_NAME.to_owned()],
                    per_connection: plan.per_connection,
                    rate: plan.rate.unwrap_or(1.0),
                    tick: spaced_tick(plan.rate.unwrap_or(1.0)),
                    send_times: true,
                    // The schedule starts once the flood is flowing.
                    gated: true,
                    // The recorder's CPU is mostly the flood's, whose messages in the window are
                    // not counted: no steady figure.
                    cpu_window: false,
                },
                plan.flood_rate,
            ),
        }
    }

    /// Messages in one run (beside a flood: the spaced ones; the flood's are counted as it goes).
    pub fn messages(&self) -> u64 {
        match self {
            Self::Flood(f) => f.messages,
            Self::Blocks(b) => b.iter().map(|f| f.messages).sum(),
            Self::Paced(p) | Self::Beside(p, _) => p.total(),
        }
    }

    /// Message payload bytes in one run (beside a flood: of the spaced messages).
    pub fn message_bytes(&self, payload: &Payload) -> u64 {
        match self {
            Self::Flood(f) => f.message_bytes,
            Self::Blocks(b) => b.iter().map(|f| f.message_bytes).sum(),
            Self::Paced(p) | Self::Beside(p, _) => {
                payload.total_bytes(p.per_connection) * p.names.len() as u64
            }
        }
    }
}

/// A server the runner waits for.
trait Served {
    type Report;
    fn finished(&self) -> bool;
    fn halt(&self);
    fn finish(self) -> Result<Self::Report>;
}

impl Served for FloodServer {
    type Report = Vec<ServerReport>;
    fn finished(&self) -> bool {
        self.is_finished()
    }
    fn halt(&self) {
        self.stop();
    }
    fn finish(self) -> Result<Vec<ServerReport>> {
        self.join_all()
    }
}

impl Served for EndlessFlood {
    type Report = EndlessReport;
    fn finished(&self) -> bool {
        self.is_finished()
    }
    fn halt(&self) {
        self.stop();
    }
    fn finish(self) -> Result<EndlessReport> {
        self.join()
    }
}

impl Served for PacedServer {
    type Report = PacedReport;
    fn finished(&self) -> bool {
        self.is_finished()
    }
    fn halt(&self) {
        self.stop();
    }
    fn finish(self) -> Result<PacedReport> {
        self.join()
    }
}

/// Samples the summed Pss of the recorder processes now and then (several processes only).
struct PssSampler {
    /// Next sample due.
    next: Instant,
    /// Largest sum seen, KiB.
    max_kib: Option<u64>,
}

impl PssSampler {
    /// How often to sample.
    const PERIOD: Duration = Duration::from_secs(1);

    fn new() -> Self {
        Self {
            next: Instant::now() + Self::PERIOD,
            max_kib: None,
        }
    }

    fn poll(&mut self, proc: &Process) {
        if Instant::now() < self.next {
            return;
        }
        if let Some(kib) = children_pss_kib(proc.pid()) {
            self.max_kib = Some(self.max_kib.unwrap_or(0).max(kib));
        }
        self.next = Instant::now() + Self::PERIOD;
    }
}

/// Waits until the server is done, the recorder dies, or the deadline passes. A recorder that
/// exits by itself once the server has closed (websocat) is fine if the server then finishes.
fn wait_served<S: Served>(
    server: S,
    proc: &mut Process,
    deadline: Instant,
    mut pss: Option<&mut PssSampler>,
) -> Result<S::Report> {
    loop {
        if let Some(p) = pss.as_deref_mut() {
            p.poll(proc);
        }
        if server.finished() {
            return server
                .finish()
                .with_context(|| format!("server failed\n{}", proc.log_tail(LOG_TAIL)));
        }
        if let Some(exit) = proc.try_wait()? {
            // It may have exited right after its close reply, before the server thread noted
            // it: give the server a moment.
            let grace = Instant::now() + Duration::from_secs(2);
            while !server.finished() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(1));
            }
            if server.finished() && exit.success() {
                return server
                    .finish()
                    .with_context(|| format!("server failed\n{}", proc.log_tail(LOG_TAIL)));
            }
            server.halt();
            let why = server
                .finish()
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
            server.halt();
            bail!(
                "timed out: the recorder did not read every message in time\n{}",
                proc.log_tail(LOG_TAIL)
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Stops the recorder and reaps it; fails unless it exits 0 within [`STOP_TIMEOUT`] of SIGTERM.
/// websocat is first given [`SELF_EXIT_WAIT`] to exit by itself (it does after the close, except
/// with its autoreconnect: overlay), and SIGTERM, which it does not handle, counts as a normal
/// end for it.
fn stop(proc: &mut Process, recorder: Recorder, workload: Workload) -> Result<(Exit, Duration)> {
    let websocat = recorder == Recorder::Websocat;
    if websocat && workload != Workload::Reconnect {
        proc.wait_timeout(SELF_EXIT_WAIT)?;
    }
    let sent = Instant::now();
    proc.signal(libc::SIGTERM);
    let Some(exit) = proc.wait_timeout(STOP_TIMEOUT)? else {
        proc.signal(libc::SIGKILL);
        bail!(
            "recorder did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
            proc.log_tail(LOG_TAIL)
        );
    };
    let websocat_killed = websocat && exit.signal == Some(libc::SIGTERM);
    if !exit.success() && !websocat_killed {
        bail!(
            "recorder failed on SIGTERM: {}\n{}",
            exit.describe(),
            proc.log_tail(LOG_TAIL)
        );
    }
    Ok((exit, exit.at.saturating_duration_since(sent)))
}

/// Waits until `flood` has handed its first piece to the kernel (the recorder has data of it to
/// read from then on), the recorder dies, or the deadline passes.
fn wait_flowing(flood: &EndlessFlood, proc: &mut Process, deadline: Instant) -> Result<()> {
    while flood.sent() == 0 {
        if flood.is_finished() {
            bail!(
                "the flood ended before it was flowing\n{}",
                proc.log_tail(LOG_TAIL)
            );
        }
        if let Some(exit) = proc.try_wait()? {
            bail!(
                "recorder ended before the flood was flowing: {}\n{}",
                exit.describe(),
                proc.log_tail(LOG_TAIL)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out: the recorder did not start reading the flood\n{}",
                proc.log_tail(LOG_TAIL)
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
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

/// A TOML basic string (JSON string escapes are valid TOML).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Writes the wsrec config file of a run: one `[[stream]]` per `(name, url)`.
fn write_config(
    path: &Path,
    out: &Path,
    streams: &[(String, String)],
    format: Format,
    reconnect: bool,
) -> Result<()> {
    let mut text = format!(
        "# Written by wsrec-bench for one run.\noutput_dir = {}\ncompress = \"none\"\n",
        toml_str(&out.to_string_lossy())
    );
    for (name, url) in streams {
        text.push_str(&format!(
            "\n[[stream]]\nname = {}\nurl = {}\nformat = \"{}\"\n",
            toml_str(name),
            toml_str(url),
            format.as_arg()
        ));
        if reconnect {
            text.push_str(&format!(
                "backoff_initial = \"{}\"\nbackoff_max = \"{}\"\n",
                RECONNECT_BACKOFF.0, RECONNECT_BACKOFF.1
            ));
        }
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Starts the scenario's recorder on `streams` (`(name, url)`), writing under `out`.
fn start_recorder(
    scenario: &Scenario,
    settings: &Settings,
    dir: &Path,
    out: &Path,
    streams: &[(String, String)],
) -> Result<Process> {
    let log = dir.join("recorder.log");
    match scenario.recorder {
        Recorder::Wsrec { format, args } => {
            let config = streams.len() > 1 || scenario.workload == Workload::Reconnect;
            let mut argv: Vec<OsString> = vec!["record".into()];
            if config {
                let path = dir.join("wsrec.toml");
                write_config(
                    &path,
                    out,
                    streams,
                    format,
                    scenario.workload == Workload::Reconnect,
                )?;
                argv.extend(["-c".into(), path.into()]);
            } else {
                let (name, url) = &streams[0];
                argv.extend([
                    url.into(),
                    "-o".into(),
                    out.into(),
                    "--name".into(),
                    name.into(),
                    "--format".into(),
                    format.as_arg().into(),
                    // The default is zstd; the rotation scenarios turn it back on (a later
                    // --compress wins).
                    "--compress".into(),
                    "none".into(),
                ]);
            }
            argv.extend(args.iter().map(OsString::from));
            argv.extend(settings.wsrec_args.iter().cloned());
            Process::spawn(&settings.launcher, &settings.wsrec, &argv, &log)
        }
        Recorder::Websocat => {
            let websocat = settings
                .websocat
                .as_ref()
                .map_err(|why| anyhow::anyhow!("no websocat: {why}"))?;
            let mut children = Vec::with_capacity(streams.len());
            for (name, url) in streams {
                let file = if streams.len() == 1 {
                    out.join(format!("{name}.jsonl"))
                } else {
                    let d = out.join(name);
                    std::fs::create_dir_all(&d)?;
                    d.join(format!("{name}.jsonl"))
                };
                // -n: no close on stdin EOF; -U: only server-to-stdout; -B: message size.
                let mut args: Vec<OsString> = ["-n", "-U", "-B", WEBSOCAT_BUFFER]
                    .into_iter()
                    .map(OsString::from)
                    .collect();
                if scenario.workload == Workload::Reconnect {
                    // Advanced mode, stdio to an autoreconnect: overlay (reconnects 20 ms after
                    // any end of the connection).
                    args.extend(["-".into(), format!("autoreconnect:{url}").into()]);
                } else {
                    args.push(url.into());
                }
                children.push(ChildSpec {
                    program: websocat.path.clone(),
                    args,
                    stdout: Some(file),
                });
            }
            Process::spawn_many(
                &settings.launcher,
                &children,
                &dir.join("children.json"),
                &log,
            )
        }
    }
}

/// Runs `scenario` once with the prepared `traffic` of `payload`. `run` numbers the run (from 1).
///
/// # Errors
/// The recorder fails, is too slow, exits non-zero, or the recording is not exactly what was sent.
/// The run's directory (recorder output and log) is kept then, and named in the error.
pub fn run_once(
    scenario: &Scenario,
    plan: &Plan,
    payload: &Payload,
    traffic: &Traffic,
    settings: &Settings,
    run: usize,
) -> Result<RunMetrics> {
    let dir = scratch_dir(&settings.work_dir, scenario.name, run)?;
    let result = run_in(scenario, plan, payload, traffic, settings, &dir);
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

/// What the server saw, in a form common to all workloads.
struct ServedFigures {
    /// First frame written.
    first_write: Instant,
    /// Last close reply.
    client_done: Instant,
    /// Seconds of sending that count for throughput.
    elapsed_s: f64,
    /// Messages that count for throughput and CPU per message.
    messages: u64,
    /// Their payload bytes.
    message_bytes: u64,
    connections: u64,
    close_replied: bool,
    traffic: ClientTraffic,
}

/// Sums client traffic.
fn add_traffic(total: &mut ClientTraffic, t: &ClientTraffic) {
    total.frames += t.frames;
    total.data_frames += t.data_frames;
    total.pings += t.pings;
    total.pongs += t.pongs;
    total.pongs_sent += t.pongs_sent;
    total.close_code = total.close_code.or(t.close_code);
}

/// One run in `dir`.
fn run_in(
    scenario: &Scenario,
    plan: &Plan,
    payload: &Payload,
    traffic: &Traffic,
    settings: &Settings,
    dir: &Path,
) -> Result<RunMetrics> {
    let out = dir.join("out");
    let deadline = Instant::now() + settings.timeout;
    let format = scenario.recorder.format();
    let n = traffic.messages();
    let single = |url: String| vec![(STREAM_NAME.to_owned(), url)];
    let mut extra = Extra::default();
    let (served, proc_exit, check) = match traffic {
        Traffic::Flood(_) | Traffic::Blocks(_) => {
            let blocks = match traffic {
                Traffic::Flood(f) => vec![f.clone()],
                Traffic::Blocks(b) => b.clone(),
                Traffic::Paced(_) | Traffic::Beside(..) => unreachable!(),
            };
            let counts: Vec<u64> = blocks.iter().map(|b| b.messages).collect();
            if settings.warm_page_cache {
                // Envelope lines add about 90 bytes to a message, raw lines one.
                let per_line = if format == Format::Envelope { 100 } else { 1 };
                let bytes = traffic.message_bytes(payload) + n * per_line;
                warm_page_cache(dir, bytes)?;
                extra.page_cache_warmed_mb = Some(bytes as f64 / 1e6);
            }
            let server = FloodServer::start_blocks(blocks, deadline)?;
            let mut proc = start_recorder(scenario, settings, dir, &out, &single(server.url()))?;
            let reports = wait_served(server, &mut proc, deadline, None)?;
            let stopped = stop(&mut proc, scenario.recorder, scenario.workload)?;
            let check = check::check_recording(&out, format, STREAM_NAME, payload, n)?;
            if reports.len() > 1 && format == Format::Envelope {
                check::check_blocks(&check, &counts)?;
            }
            let mut t = ClientTraffic::default();
            for r in &reports {
                add_traffic(&mut t, &r.traffic);
            }
            let (first, last) = (&reports[0], &reports[reports.len() - 1]);
            if reports.len() > 1 {
                let gaps: Vec<f64> = reports
                    .windows(2)
                    .map(|w| (w[1].first_write - w[0].client_done).as_secs_f64() * 1e3)
                    .collect();
                extra.reconnect_gap_ms = Some(median(gaps));
                extra.msgs_per_s_with_gaps =
                    Some(n as f64 / (last.client_done - first.first_write).as_secs_f64());
            }
            let served = ServedFigures {
                first_write: first.first_write,
                client_done: last.client_done,
                elapsed_s: reports.iter().map(|r| r.elapsed().as_secs_f64()).sum(),
                messages: n,
                message_bytes: traffic.message_bytes(payload),
                connections: reports.len() as u64,
                close_replied: reports
                    .iter()
                    .all(|r| r.client_end == ClientEnd::CloseReply),
                traffic: t,
            };
            (served, stopped, check)
        }
        Traffic::Paced(spec) => {
            let mut server = PacedServer::start(spec.clone(), payload.clone(), deadline)?;
            let streams: Vec<(String, String)> = spec
                .names
                .iter()
                .map(|name| (name.clone(), server.url(name)))
                .collect();
            let mut proc = start_recorder(scenario, settings, dir, &out, &streams)?;
            server.watch_cpu(recorder_cpu_clock(proc.pid()));
            let several = scenario.recorder == Recorder::Websocat && streams.len() > 1;
            let mut sampler = several.then(PssSampler::new);
            // Beside the recording's directory: the same file system.
            let hog = plan
                .hog_file_bytes
                .map(|bytes| DiskHog::start(&dir.join("hog"), bytes))
                .transpose()?;
            let report = wait_served(server, &mut proc, deadline, sampler.as_mut())?;
            if let Some(h) = hog {
                extra.hog = Some(h.stop()?);
            }
            extra.pss_sum_mib = sampler
                .and_then(|s| s.max_kib)
                .map(|kib| kib as f64 / 1024.0);
            let stopped = stop(&mut proc, scenario.recorder, scenario.workload)?;
            let check = if spec.names.len() == 1 {
                let sent = spec.send_times.then_some(report.send_ns.as_slice());
                check::check_timed(&out, format, &spec.names[0], payload, n, sent)?
            } else {
                let mut all = CheckSummary::default();
                for name in &spec.names {
                    let one = check::check_recording(
                        &out.join(name),
                        format,
                        name,
                        payload,
                        spec.per_connection,
                    )
                    .with_context(|| format!("stream {name}"))?;
                    all.absorb(one, name);
                }
                all
            };
            extra.max_send_lag_ms = Some(report.max_lag.as_secs_f64() * 1e3);
            extra.connect_s = Some(report.connect_time.as_secs_f64());
            extra.max_pending_bytes = Some(report.max_pending_bytes as u64);
            extra.extra_connections = Some(report.extra_connections);
            extra.cpu_window = report.cpu_window.clone();
            let served = ServedFigures {
                first_write: report.first_write,
                client_done: report.client_done,
                elapsed_s: report.elapsed().as_secs_f64(),
                messages: n,
                message_bytes: traffic.message_bytes(payload),
                connections: report.connections as u64,
                close_replied: report.close_replies == report.connections,
                traffic: report.traffic,
            };
            (served, stopped, check)
        }
        Traffic::Beside(spec, flood_rate) => {
            let spaced = &spec.names[0];
            let flood = EndlessFlood::start(payload.clone(), deadline, *flood_rate)?;
            let mut server = PacedServer::start(spec.clone(), payload.clone(), deadline)?;
            let streams = vec![
                (spaced.clone(), server.url(spaced)),
                (FLOOD_STREAM_NAME.to_owned(), flood.url()),
            ];
            let mut proc = start_recorder(scenario, settings, dir, &out, &streams)?;
            wait_flowing(&flood, &mut proc, deadline)?;
            server.open_gate();
            // Every spaced message has been read once its stream's close reply is in; the
            // flood goes on until then.
            let report = wait_served(server, &mut proc, deadline, None)?;
            flood.end();
            let flooded = wait_served(flood, &mut proc, deadline, None)?;
            let stopped = stop(&mut proc, scenario.recorder, scenario.workload)?;
            let sent = spec.send_times.then_some(report.send_ns.as_slice());
            let spaced_check =
                check::check_timed(&out.join(spaced), format, spaced, payload, n, sent)
                    .with_context(|| format!("stream {spaced}"))?;
            let flood_check = check::check_recording(
                &out.join(FLOOD_STREAM_NAME),
                format,
                FLOOD_STREAM_NAME,
                payload,
                flooded.messages,
            )
            .with_context(|| format!("stream {FLOOD_STREAM_NAME}"))?;
            let mut check = CheckSummary::default();
            let delay = spaced_check.receive_delay;
            check.absorb(spaced_check, spaced);
            check.absorb(flood_check, FLOOD_STREAM_NAME);
            check.receive_delay = delay;
            extra.max_send_lag_ms = Some(report.max_lag.as_secs_f64() * 1e3);
            extra.connect_s = Some(report.connect_time.as_secs_f64());
            extra.max_pending_bytes = Some(report.max_pending_bytes as u64);
            extra.extra_connections = Some(report.extra_connections);
            let fc = &flooded.connection;
            let seconds = fc.elapsed().as_secs_f64();
            extra.flood_beside = Some(FloodBeside {
                messages: flooded.messages,
                seconds,
                msgs_per_s: flooded.messages as f64 / seconds,
                lead_ms: report
                    .first_write
                    .saturating_duration_since(fc.first_write)
                    .as_secs_f64()
                    * 1e3,
            });
            let mut t = report.traffic.clone();
            add_traffic(&mut t, &fc.traffic);
            let (first_write, client_done) = (
                fc.first_write.min(report.first_write),
                fc.client_done.max(report.client_done),
            );
            let served = ServedFigures {
                first_write,
                client_done,
                elapsed_s: (client_done - first_write).as_secs_f64(),
                messages: n + flooded.messages,
                message_bytes: traffic.message_bytes(payload) + flooded.message_bytes,
                connections: report.connections as u64 + 1,
                close_replied: report.close_replies == report.connections
                    && fc.client_end == ClientEnd::CloseReply,
                traffic: t,
            };
            (served, stopped, check)
        }
    };
    let (exit, stop_time) = proc_exit;
    let nf = served.messages as f64;
    let processes = match scenario.recorder {
        Recorder::Websocat => served.connections.max(1),
        Recorder::Wsrec { .. } => 1,
    };
    let until_exit = exit.at.max(served.client_done) - served.first_write;
    let steady = extra
        .cpu_window
        .as_ref()
        .and_then(|w| w.as_ref().ok().copied());
    Ok(RunMetrics {
        msgs_per_s: nf / served.elapsed_s,
        mb_per_s: served.message_bytes as f64 / served.elapsed_s / 1e6,
        cpu_ns_per_msg: exit.cpu().as_nanos() as f64 / nf,
        steady_cpu_ns_per_msg: steady.map(|w| w.ns_per_msg()),
        steady_window_s: steady.map(|w| w.wall.as_secs_f64()),
        steady_cpu_s: steady.map(|w| w.cpu.as_secs_f64()),
        steady_cpu_resolution_ns: steady.map(|w| w.resolution.as_nanos() as u64),
        steady_cpu_error: extra.cpu_window.and_then(Result::err),
        peak_rss_mib: extra
            .pss_sum_mib
            .unwrap_or(exit.max_rss_kib as f64 / 1024.0),
        rss_sum_of_peaks_mib: exit.max_rss_kib as f64 / 1024.0,
        elapsed_s: served.elapsed_s,
        user_s: exit.user.as_secs_f64(),
        system_s: exit.system.as_secs_f64(),
        stop_ms: stop_time.as_secs_f64() * 1e3,
        msgs_per_s_until_exit: nf / until_exit.as_secs_f64(),
        connections: served.connections,
        processes,
        close_replied: served.close_replied,
        client_close_code: served.traffic.close_code,
        client_frames: served.traffic.frames,
        client_pings: served.traffic.pings,
        client_data_frames: served.traffic.data_frames,
        msgs_per_s_with_gaps: extra.msgs_per_s_with_gaps,
        reconnect_gap_ms: extra.reconnect_gap_ms,
        max_send_lag_ms: extra.max_send_lag_ms,
        connect_s: extra.connect_s,
        max_pending_bytes: extra.max_pending_bytes,
        extra_connections: extra.extra_connections,
        page_cache_warmed_mb: extra.page_cache_warmed_mb,
        disk_hog: extra.hog,
        flood_beside: extra.flood_beside,
        check,
        kept_dir: None,
    })
}

/// Workload-specific figures of a run.
#[derive(Default)]
struct Extra {
    msgs_per_s_with_gaps: Option<f64>,
    reconnect_gap_ms: Option<f64>,
    max_send_lag_ms: Option<f64>,
    connect_s: Option<f64>,
    max_pending_bytes: Option<u64>,
    extra_connections: Option<u64>,
    pss_sum_mib: Option<f64>,
    page_cache_warmed_mb: Option<f64>,
    hog: Option<HogReport>,
    flood_beside: Option<FloodBeside>,
    cpu_window: Option<Result<CpuWindow, String>>,
}

/// The CPU clock of the recorder processes, the children of the reaper `reaper`. They are looked
/// up at the first reading (the schedule's start: every connection is up, so every recorder
/// process exists).
fn recorder_cpu_clock(reaper: libc::pid_t) -> CpuClock {
    let mut watched: Option<ProcessCpu> = None;
    Box::new(move || {
        let cpu = match &mut watched {
            Some(cpu) => cpu,
            none => none.insert(ProcessCpu::children_of(reaper)?),
        };
        Ok(CpuReading {
            cpu: cpu.read()?,
            resolution: cpu.resolution(),
        })
    })
}

/// Largest warm-up file.
const WARM_MAX: u64 = 1 << 30;

/// Writes `bytes` (at most [`WARM_MAX`]) to a file in `dir` and deletes it, unsynced.
///
/// Why: on a VM with free page reporting (virtio-balloon) or DAMON reclaim, like the project's,
/// memory freed for a few seconds goes back to the host, and the next write into the page cache
/// that lands on such a page costs a host fault: writing 2 GB into "cold" memory runs at about
/// 600 MB/s, into memory just freed at about 4 GB/s. A recorder's `write` calls would then cost 3
/// to 6 times more system time in the first run of a scenario than in the next ones (which reuse
/// the pages of the previous run's deleted recording). The pages this file takes are freed when
/// it is deleted and reused at once by the recorder's writes, so every run measures the same,
/// warm, state: that of a recorder whose page cache recycles pages it already used.
fn warm_page_cache(dir: &Path, bytes: u64) -> Result<()> {
    use std::io::Write as _;
    let path = dir.join("warm-up");
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes.min(WARM_MAX);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])
            .with_context(|| format!("writing {}", path.display()))?;
        left -= n as u64;
    }
    drop(f);
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))
}

/// The payload of a scenario; the corpus is read from `corpus_dir`.
///
/// # Errors
/// The corpus cannot be read.
pub fn payload_for(kind: PayloadKind, corpus_dir: &Path) -> Result<Payload> {
    match kind {
        PayloadKind::Small { size } => Payload::small(size),
        PayloadKind::Corpus => Payload::load_corpus(corpus_dir),
        PayloadKind::Large => Payload::load_large(corpus_dir),
    }
}

/// One progress line for a run.
fn describe(name: &str, run: usize, runs: usize, m: &RunMetrics) -> String {
    let mut line = format!(
        "{name} run {run}/{runs}: {} msg/s, {:.1} MB/s, {:.1} ns CPU/msg, {:.1} MiB peak RSS, stop {:.0} ms",
        si(m.msgs_per_s),
        m.mb_per_s,
        m.cpu_ns_per_msg,
        m.peak_rss_mib,
        m.stop_ms
    );
    if let Some(gap) = m.reconnect_gap_ms {
        line.push_str(&format!(
            ", {} connections, reconnect gap {gap:.1} ms, {} msg/s with gaps",
            m.connections,
            si(m.msgs_per_s_with_gaps.unwrap_or(0.0))
        ));
    }
    if let Some(steady) = m.steady_cpu_ns_per_msg {
        line.push_str(&format!(
            ", steady {steady:.1} ns CPU/msg over {:.1} s",
            m.steady_window_s.unwrap_or(0.0)
        ));
    }
    if let Some(why) = &m.steady_cpu_error {
        line.push_str(&format!(", no steady CPU figure: {why}"));
    }
    if let Some(lag) = m.max_send_lag_ms {
        line.push_str(&format!(
            ", {} connections up in {:.2} s, server lag <= {lag:.1} ms",
            m.connections,
            m.connect_s.unwrap_or(0.0)
        ));
    }
    if let Some(f) = &m.flood_beside {
        line.push_str(&format!(
            ", beside a flood of {} messages on another stream ({} msg/s over {:.1} s, {:.0} ms before the first spaced message)",
            f.messages,
            si(f.msgs_per_s),
            f.seconds,
            f.lead_ms
        ));
    }
    if m.check.compressed_files > 0 {
        line.push_str(&format!(
            ", {} files ({} zstd, {:.1}x smaller)",
            m.check.file_count,
            m.check.compressed_files,
            m.check.content_bytes as f64 / m.check.file_bytes.max(1) as f64
        ));
    }
    line
}

/// A scenario ready to run: its traffic encoded, its results so far.
pub struct Prepared<'a> {
    scenario: &'a Scenario,
    payload: &'a Payload,
    /// `None` when skipped.
    traffic: Option<Traffic>,
    result: ScenarioResult,
}

impl<'a> Prepared<'a> {
    /// Encodes the traffic of `scenario` with `sizes` and measures the flood server alone (flood
    /// workload). A websocat scenario without a websocat is marked skipped.
    pub fn new(
        scenario: &'a Scenario,
        payload: &'a Payload,
        sizes: &Sizes,
        runs: usize,
        settings: &Settings,
        mut progress: impl FnMut(&str),
    ) -> Self {
        let plan = scenario.workload.plan(sizes);
        let mut result = ScenarioResult {
            scenario: scenario.clone(),
            plan,
            messages: plan.messages,
            message_bytes: 0,
            server_ceiling_msgs_per_s: None,
            runs_wanted: runs,
            runs: Vec::new(),
            median: None,
            target_misses: Vec::new(),
            comparison: None,
            skipped: None,
            error: None,
        };
        if scenario.recorder == Recorder::Websocat
            && let Err(why) = &settings.websocat
        {
            progress(&format!("{}: skipped: {why}", scenario.name));
            result.skipped = Some(why.clone());
            return Self {
                scenario,
                payload,
                traffic: None,
                result,
            };
        }
        let traffic = Traffic::new(scenario.workload, &plan, payload);
        result.message_bytes = traffic.message_bytes(payload);
        if let Traffic::Flood(frames) = &traffic {
            match measure_ceiling(frames.clone(), settings.timeout) {
                Ok(r) => {
                    let rate = plan.messages as f64 / r.elapsed().as_secs_f64();
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
        }
        Self {
            scenario,
            payload,
            traffic: Some(traffic),
            result,
        }
    }

    /// Whether another run is due: not skipped, not failed, fewer runs than wanted.
    pub fn wants_run(&self) -> bool {
        self.traffic.is_some()
            && self.result.error.is_none()
            && self.result.runs.len() < self.result.runs_wanted
    }

    /// Does the next run; a failure ends the scenario (its error is recorded).
    pub fn run_next(&mut self, settings: &Settings, mut progress: impl FnMut(&str)) {
        let Some(traffic) = &self.traffic else {
            return;
        };
        let (run, runs, name) = (
            self.result.runs.len() + 1,
            self.result.runs_wanted,
            self.scenario.name,
        );
        match run_once(
            self.scenario,
            &self.result.plan,
            self.payload,
            traffic,
            settings,
            run,
        ) {
            Ok(m) => {
                progress(&describe(name, run, runs, &m));
                self.result.runs.push(m);
            }
            Err(e) => {
                progress(&format!("{name} run {run}/{runs} FAILED: {e:#}"));
                self.result.error = Some(format!("run {run}: {e:#}"));
            }
        }
    }

    /// The results, medians and target misses filled in.
    pub fn finish(mut self) -> ScenarioResult {
        self.result.finish();
        self.result
    }
}

/// Runs `scenario` `runs` times with the sizes of `sizes` and collects the results. The first
/// failed run ends the scenario (its error is recorded). `progress` receives one line per step.
/// A websocat scenario without a websocat is skipped.
pub fn run_scenario(
    scenario: &Scenario,
    payload: &Payload,
    sizes: &Sizes,
    runs: usize,
    settings: &Settings,
    mut progress: impl FnMut(&str),
) -> ScenarioResult {
    let mut p = Prepared::new(scenario, payload, sizes, runs, settings, &mut progress);
    while p.wants_run() {
        p.run_next(settings, &mut progress);
    }
    p.finish()
}

/// Runs several scenarios with their runs interleaved (A1 B1 A2 B2 …), so that a ratio between
/// them is not skewed by the machine's state drifting between the two series.
pub fn run_interleaved(
    group: &[(&Scenario, &Payload)],
    sizes: &Sizes,
    runs: usize,
    settings: &Settings,
    mut progress: impl FnMut(&str),
) -> Vec<ScenarioResult> {
    let mut prepared: Vec<Prepared<'_>> = group
        .iter()
        .map(|(s, p)| Prepared::new(s, p, sizes, runs, settings, &mut progress))
        .collect();
    while prepared.iter().any(Prepared::wants_run) {
        for p in prepared.iter_mut().filter(|p| p.wants_run()) {
            p.run_next(settings, &mut progress);
        }
    }
    prepared.into_iter().map(Prepared::finish).collect()
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
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median([]).is_nan());
    }

    #[test]
    fn config_file_has_every_stream_and_the_short_backoff() {
        let dir = std::env::temp_dir().join(format!("wsrec-bench-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        let streams = vec![
            ("s0".to_owned(), "ws://127.0.0.1:1/s0".to_owned()),
            ("s1".to_owned(), "ws://127.0.0.1:1/s1".to_owned()),
        ];
        write_config(
            &path,
            Path::new("/tmp/a \"b\""),
            &streams,
            Format::Raw,
            true,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("[[stream]]").count(), 2);
        assert!(text.contains(r#"output_dir = "/tmp/a \"b\"""#), "{text}");
        assert!(text.contains("backoff_max = \"20ms\""), "{text}");
        assert!(text.contains("format = \"raw\""), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
