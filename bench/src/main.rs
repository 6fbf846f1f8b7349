//! `cargo run --release -p wsrec-bench`: build `wsrec`, find or install websocat, run every
//! scenario, print a table and write `bench/results/latest.json`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;

use wsrec_bench::recorder::{REAP_ARG, REAP_MANY_ARG, build_wsrec, find_websocat, reap_main};
use wsrec_bench::report::{Host, RecorderInfo, Report, git_describe, loadavg};
use wsrec_bench::run::{Settings, payload_for, run_interleaved, run_scenario};
use wsrec_bench::scenario::{self, Sizes, catalogue};

/// Measures how fast `wsrec record` records from a local WebSocket server, its CPU per message
/// and peak RSS, compares it with websocat, and checks every recording is complete.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Every scenario at small sizes with one run: a smoke test in well under a minute
    /// (sizes given explicitly still apply).
    #[arg(long)]
    quick: bool,
    /// Messages per run of the flood scenarios (1, 2, 3, 4) and of the reconnect scenario [default: 1000000].
    #[arg(long)]
    messages: Option<u64>,
    /// Runs per scenario; the table shows medians [default: 3, 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Reconnect scenario: the server closes after this many messages [default: 100000].
    #[arg(long)]
    reconnect_every: Option<u64>,
    /// Many-streams scenario: streams, one connection each [default: 1000].
    #[arg(long)]
    streams: Option<usize>,
    /// Many-streams scenario: messages per second per stream [default: 20].
    #[arg(long)]
    stream_rate: Option<f64>,
    /// Many-streams scenario: seconds of sending [default: 30, 2 with --quick].
    #[arg(long, value_name = "SECONDS")]
    streams_duration: Option<f64>,
    /// Steady scenarios: messages per second [default: 50000].
    #[arg(long)]
    steady_rate: Option<f64>,
    /// Steady scenarios: seconds of sending [default: 10, 2 with --quick].
    #[arg(long, value_name = "SECONDS")]
    steady_duration: Option<f64>,
    /// Disk-hog scenario: messages per second [default: 100000].
    #[arg(long)]
    hog_rate: Option<f64>,
    /// Spaced scenario: messages per second, each sent alone [default: 3000].
    #[arg(long)]
    spaced_rate: Option<f64>,
    /// Spaced-beside-flood scenario: the flooded stream's messages per second at most, sent in
    /// bursts of about 1 MiB; 0 floods as fast as the recorder reads [default: 300000].
    #[arg(long)]
    flood_rate: Option<f64>,
    /// Scenario(s) to run: names, comma lists, or `all` (the default). Scenarios a selected one
    /// is compared with come along. See --list.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Recorder binary to measure; by default `cargo build --release -p wsrec` is run and its
    /// binary used.
    #[arg(long, value_name = "PATH")]
    wsrec: Option<PathBuf>,
    /// Extra argument for wsrec, appended after the scenario's own (repeatable). With a config
    /// file (many-streams, reconnect) only global flags are accepted by wsrec.
    #[arg(long = "wsrec-arg", value_name = "ARG", allow_hyphen_values = true)]
    wsrec_args: Vec<OsString>,
    /// websocat binary for the baseline scenarios; by default the copy in bench/target-tools,
    /// installed there with `cargo install` the first time.
    #[arg(long, value_name = "PATH")]
    websocat: Option<PathBuf>,
    /// Leave out the websocat scenarios.
    #[arg(long)]
    no_websocat: bool,
    /// Do not install websocat when it is missing (its scenarios are skipped).
    #[arg(long)]
    no_install: bool,
    /// Do not write and delete a recording-sized file before each flood or reconnect run (the
    /// page-cache warm-up; see bench/README.md).
    #[arg(long)]
    no_warm: bool,
    /// Where each run's scratch directory (recording and recorder log) is made.
    #[arg(long, value_name = "DIR", default_value_os_t = std::env::temp_dir())]
    work_dir: PathBuf,
    /// Keep the recordings of successful runs (failed runs' are always kept).
    #[arg(long)]
    keep: bool,
    /// Seconds one run may take before it fails.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// Directory of the corpus `*.jsonl` files.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Where the JSON results go.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

impl Args {
    /// The workload sizes: explicit flags, else `--quick`'s, else the full ones.
    fn sizes(&self) -> Sizes {
        let base = if self.quick {
            Sizes::QUICK
        } else {
            Sizes::FULL
        };
        Sizes {
            messages: self.messages.unwrap_or(base.messages),
            reconnect_every: self.reconnect_every.unwrap_or(base.reconnect_every),
            streams: self.streams.unwrap_or(base.streams),
            stream_rate: self.stream_rate.unwrap_or(base.stream_rate),
            streams_duration_s: self.streams_duration.unwrap_or(base.streams_duration_s),
            steady_rate: self.steady_rate.unwrap_or(base.steady_rate),
            steady_duration_s: self.steady_duration.unwrap_or(base.steady_duration_s),
            hog_rate: self.hog_rate.unwrap_or(base.hog_rate),
            hog_file_bytes: base.hog_file_bytes,
            spaced_rate: self.spaced_rate.unwrap_or(base.spaced_rate),
            flood_rate: self.flood_rate.unwrap_or(base.flood_rate),
        }
    }
}

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().collect();
    if let Some(mode) = raw.get(1)
        && (mode == REAP_ARG || mode == REAP_MANY_ARG)
    {
        return reap_main(mode, &raw[2..]);
    }
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft open-file limit to the hard one: the many-streams scenario holds thousands
/// of sockets on each side (the recorder inherits the limit).
fn raise_nofile_limit() {
    // SAFETY: plain FFI calls with a valid pointer to a local.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Runs the bench; `Ok(false)` when some scenario failed.
fn run(args: Args) -> Result<bool> {
    let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = bench_dir
        .parent()
        .context("bench has no parent")?
        .to_owned();
    if args.list {
        for s in catalogue() {
            println!("{:<22} {}", s.name, s.about);
        }
        return Ok(true);
    }
    let sizes = args.sizes();
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    anyhow::ensure!(sizes.messages > 0, "--messages must be at least 1");
    anyhow::ensure!(
        sizes.stream_rate > 0.0
            && sizes.steady_rate > 0.0
            && sizes.hog_rate > 0.0
            && sizes.spaced_rate > 0.0
            && sizes.flood_rate >= 0.0,
        "rates must be positive"
    );
    anyhow::ensure!(
        sizes.streams_duration_s > 0.0 && sizes.steady_duration_s > 0.0,
        "durations must be positive"
    );
    let scenarios = scenario::select(&args.scenarios, !args.no_websocat)?;
    raise_nofile_limit();
    let wsrec = match args.wsrec {
        Some(path) => path,
        None => build_wsrec(&workspace)?,
    };
    let websocat = if args.no_websocat {
        Err("--no-websocat".to_owned())
    } else if scenarios
        .iter()
        .any(|s| s.recorder == scenario::Recorder::Websocat)
    {
        find_websocat(
            &bench_dir.join("target-tools"),
            args.websocat.as_deref(),
            !args.no_install,
        )
    } else {
        Err("no websocat scenario selected".to_owned())
    };
    if let Err(why) = &websocat {
        eprintln!("websocat scenarios skipped: {why}");
    }
    let settings = Settings {
        wsrec: wsrec.clone(),
        launcher: std::env::current_exe().context("locating the bench binary")?,
        wsrec_args: args.wsrec_args.clone(),
        work_dir: args.work_dir,
        timeout: Duration::from_secs(args.timeout),
        keep: args.keep,
        websocat: websocat.clone(),
        warm_page_cache: !args.no_warm,
    };
    let corpus_dir = args
        .corpus
        .unwrap_or_else(|| workspace.join("tests/fixtures/corpus"));
    eprintln!(
        "recorder: {}; {} run(s) per scenario; sizes: {sizes:?}",
        wsrec.display(),
        runs
    );
    // Described now: the tree may change while the scenarios run (others commit).
    let git = git_describe(&workspace);
    let loadavg_before = loadavg();
    let started = Instant::now();
    let payloads: Vec<_> = scenarios
        .iter()
        .map(|s| payload_for(s.payload, &corpus_dir))
        .collect::<Result<_>>()?;
    let mut results = Vec::new();
    let mut i = 0;
    while i < scenarios.len() {
        // A scenario with a target on its ratio to the one before it (compression on vs off)
        // runs interleaved with it.
        let paired = scenarios.get(i + 1).is_some_and(|next| {
            next.compare
                .is_some_and(|c| c.min_msgs_ratio.is_some() && c.against == scenarios[i].name)
        });
        if paired {
            let group = [
                (&scenarios[i], &payloads[i]),
                (&scenarios[i + 1], &payloads[i + 1]),
            ];
            results.extend(run_interleaved(&group, &sizes, runs, &settings, |line| {
                eprintln!("{line}")
            }));
            i += 2;
        } else {
            results.push(run_scenario(
                &scenarios[i],
                &payloads[i],
                &sizes,
                runs,
                &settings,
                |line| eprintln!("{line}"),
            ));
            i += 1;
        }
    }
    let mut report = Report {
        generated_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        host: Host::detect(),
        recorder: RecorderInfo {
            path: wsrec,
            extra_args: args
                .wsrec_args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            git,
            websocat,
        },
        sizes,
        quick: args.quick,
        runs,
        warm_page_cache: !args.no_warm,
        loadavg_before,
        loadavg_after: loadavg(),
        scenarios: results,
    };
    report.compare();
    println!();
    print!("{}", report.table());
    println!();
    print!("{}", report.notes());
    let json = args
        .json
        .unwrap_or_else(|| bench_dir.join("results/latest.json"));
    report.write_json(&json)?;
    println!(
        "\nresults written to {} ({:.0} s)",
        json.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(report.scenarios.iter().all(|s| s.passed()))
}
