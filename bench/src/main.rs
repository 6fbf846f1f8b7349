//! `cargo run --release -p wsrec-bench`: build `wsrec`, run every scenario, print a table and
//! write `bench/results/latest.json`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;

use wsrec_bench::recorder::{REAP_ARG, build_wsrec, reap_main};
use wsrec_bench::report::{Host, RecorderInfo, Report, git_describe};
use wsrec_bench::run::{Settings, payload_for, run_scenario};
use wsrec_bench::scenario::{self, catalogue};

/// Measures how fast `wsrec record` records from a local WebSocket flood server, its CPU per
/// message and peak RSS, and checks the recording is complete.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Messages per run.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Runs per scenario; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Scenario(s) to run: names, comma lists, or `all` (the default). See --list.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Recorder binary to measure; by default `cargo build --release -p wsrec` is run and its
    /// binary used.
    #[arg(long, value_name = "PATH")]
    wsrec: Option<PathBuf>,
    /// Extra argument for the recorder, appended after the scenario's own (repeatable).
    #[arg(long = "wsrec-arg", value_name = "ARG", allow_hyphen_values = true)]
    wsrec_args: Vec<OsString>,
    /// Where each run's scratch directory (recording and recorder log) is made.
    #[arg(long, value_name = "DIR", default_value_os_t = std::env::temp_dir())]
    work_dir: PathBuf,
    /// Keep the recordings of successful runs (failed runs' are always kept).
    #[arg(long)]
    keep: bool,
    /// Seconds one run may take before it fails.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Directory of the corpus `*.jsonl` files.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Where the JSON results go.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == REAP_ARG) {
        return reap_main(&raw[2..]);
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

/// Runs the bench; `Ok(false)` when some scenario failed.
fn run(args: Args) -> Result<bool> {
    let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = bench_dir
        .parent()
        .context("bench has no parent")?
        .to_owned();
    if args.list {
        for s in catalogue() {
            println!("{:<16} {}", s.name, s.about);
        }
        return Ok(true);
    }
    let scenarios = scenario::select(&args.scenarios)?;
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(args.messages > 0, "--messages must be at least 1");
    let wsrec = match args.wsrec {
        Some(path) => path,
        None => build_wsrec(&workspace)?,
    };
    let settings = Settings {
        wsrec: wsrec.clone(),
        launcher: std::env::current_exe().context("locating the bench binary")?,
        wsrec_args: args.wsrec_args.clone(),
        work_dir: args.work_dir,
        timeout: Duration::from_secs(args.timeout),
        keep: args.keep,
    };
    let corpus_dir = args
        .corpus
        .unwrap_or_else(|| workspace.join("tests/fixtures/corpus"));
    eprintln!(
        "recorder: {}; {} message(s) x {} run(s) per scenario",
        wsrec.display(),
        args.messages,
        args.runs
    );
    let mut results = Vec::new();
    for s in &scenarios {
        let payload = payload_for(s.payload, &corpus_dir)?;
        results.push(run_scenario(
            s,
            &payload,
            args.messages,
            args.runs,
            &settings,
            |line| eprintln!("{line}"),
        ));
    }
    let report = Report {
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
            git: git_describe(&workspace),
        },
        messages: args.messages,
        runs: args.runs,
        scenarios: results,
    };
    println!();
    print!("{}", report.table());
    for s in &report.scenarios {
        if let Some(e) = &s.error {
            println!("\n{} failed: {e}", s.scenario.name);
        }
    }
    let json = args
        .json
        .unwrap_or_else(|| bench_dir.join("results/latest.json"));
    report.write_json(&json)?;
    println!("\nresults written to {}", json.display());
    Ok(report.scenarios.iter().all(|s| s.passed()))
}
