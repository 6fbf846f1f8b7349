//! Results: per-scenario medians, the comparison with targets, the stdout table and the JSON file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::run::{RunMetrics, median};
use crate::scenario::{Scenario, Target};

/// Medians over a scenario's successful runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Medians {
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Message MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Recorder CPU per message, ns.
    pub cpu_ns_per_msg: f64,
    /// Recorder peak RSS, MiB.
    pub peak_rss_mib: f64,
}

impl Medians {
    /// Medians of each figure taken separately; `None` without runs.
    pub fn of(runs: &[RunMetrics]) -> Option<Self> {
        (!runs.is_empty()).then(|| Self {
            msgs_per_s: median(runs.iter().map(|r| r.msgs_per_s)),
            mb_per_s: median(runs.iter().map(|r| r.mb_per_s)),
            cpu_ns_per_msg: median(runs.iter().map(|r| r.cpu_ns_per_msg)),
            peak_rss_mib: median(runs.iter().map(|r| r.peak_rss_mib)),
        })
    }

    /// The target's limits these medians miss, as short texts; empty when all are met.
    pub fn misses(&self, target: &Target) -> Vec<String> {
        let mut misses = Vec::new();
        if self.msgs_per_s < target.min_msgs_per_s {
            misses.push(format!("msg/s < {}", si(target.min_msgs_per_s)));
        }
        if self.cpu_ns_per_msg > target.max_cpu_ns_per_msg {
            misses.push(format!("CPU > {} ns", target.max_cpu_ns_per_msg));
        }
        if self.peak_rss_mib > target.max_rss_mib {
            misses.push(format!("RSS > {} MiB", target.max_rss_mib));
        }
        misses
    }
}

/// Everything about one scenario's runs.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario as defined.
    pub scenario: Scenario,
    /// Messages per run.
    pub messages: u64,
    /// Message bytes per run.
    pub message_bytes: u64,
    /// Throughput of the flood server alone against a discarding client.
    pub server_ceiling_msgs_per_s: Option<f64>,
    /// Runs asked for.
    pub runs_wanted: usize,
    /// Successful runs, in order.
    pub runs: Vec<RunMetrics>,
    /// Medians of the successful runs.
    pub median: Option<Medians>,
    /// Target limits missed by the medians.
    pub target_misses: Vec<String>,
    /// The failure that ended the scenario early, if any.
    pub error: Option<String>,
}

impl ScenarioResult {
    /// Fills in medians and target misses from `runs`.
    pub fn finish(&mut self) {
        self.median = Medians::of(&self.runs);
        self.target_misses = match (&self.median, &self.scenario.target) {
            (Some(m), Some(t)) => m.misses(t),
            _ => Vec::new(),
        };
    }

    /// Whether every run succeeded.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.runs.len() == self.runs_wanted
    }
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Logical CPUs available.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// Kernel release.
    pub kernel: Option<String>,
}

impl Host {
    /// Reads what Linux tells about this machine.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned()),
        }
    }
}

/// The recorder that was measured.
#[derive(Debug, Clone, Serialize)]
pub struct RecorderInfo {
    /// Binary path.
    pub path: PathBuf,
    /// Extra arguments given with `--wsrec-arg`.
    pub extra_args: Vec<String>,
    /// `git describe --always --dirty` of the workspace, when available.
    pub git: Option<String>,
}

/// `git describe --always --dirty` in `dir`, if git works there.
pub fn git_describe(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The whole result file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seconds since the Unix epoch when the bench finished.
    pub generated_unix_s: u64,
    /// The machine.
    pub host: Host,
    /// The recorder.
    pub recorder: RecorderInfo,
    /// Messages per run.
    pub messages: u64,
    /// Runs per scenario.
    pub runs: usize,
    /// Per-scenario results.
    pub scenarios: Vec<ScenarioResult>,
}

impl Report {
    /// Writes the report as pretty JSON, creating the parent directory.
    ///
    /// # Errors
    /// The directory or file cannot be written.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<16} {:>10} {:>10} {:>8} {:>11} {:>9} {:>5} {:>11}  vs target",
            "scenario", "messages", "msg/s", "MB/s", "CPU ns/msg", "RSS MiB", "runs", "server max"
        );
        for s in &self.scenarios {
            let runs = format!("{}/{}", s.runs.len(), s.runs_wanted);
            let ceiling = s.server_ceiling_msgs_per_s.map_or("-".into(), si);
            let verdict = if !s.passed() {
                "FAILED".to_owned()
            } else if s.scenario.target.is_none() {
                "-".to_owned()
            } else if s.target_misses.is_empty() {
                "ok".to_owned()
            } else {
                s.target_misses.join(", ")
            };
            match &s.median {
                Some(m) => {
                    let _ = writeln!(
                        t,
                        "{:<16} {:>10} {:>10} {:>8.1} {:>11.1} {:>9.1} {:>5} {:>11}  {verdict}",
                        s.scenario.name,
                        s.messages,
                        si(m.msgs_per_s),
                        m.mb_per_s,
                        m.cpu_ns_per_msg,
                        m.peak_rss_mib,
                        runs,
                        ceiling
                    );
                }
                None => {
                    let _ = writeln!(
                        t,
                        "{:<16} {:>10} {:>10} {:>8} {:>11} {:>9} {:>5} {:>11}  {verdict}",
                        s.scenario.name, s.messages, "-", "-", "-", "-", runs, ceiling
                    );
                }
            }
        }
        t
    }
}

/// `1.23 M`-style rendering of a rate.
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::TARGET_RAW;

    #[test]
    fn misses_name_each_limit() {
        let m = Medians {
            msgs_per_s: 2.5e6,
            mb_per_s: 0.0,
            cpu_ns_per_msg: 450.0,
            peak_rss_mib: 10.0,
        };
        assert_eq!(m.misses(&TARGET_RAW), ["msg/s < 3.00 M", "CPU > 400 ns"]);
    }

    #[test]
    fn si_formats() {
        assert_eq!(si(2_345_678.0), "2.35 M");
        assert_eq!(si(12_345.0), "12.3 k");
        assert_eq!(si(12.0), "12");
    }
}
