//! Results: per-scenario medians, the comparison with targets, the stdout table and the JSON file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::recorder::Websocat;
use crate::run::{RunMetrics, median};
use crate::scenario::{Plan, Scenario, Sizes, Target, WEBSOCAT_NOT_APPLICABLE, Workload};

/// Medians over a scenario's successful runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Medians {
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Message MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Recorder CPU per message, ns, its whole life.
    pub cpu_ns_per_msg: f64,
    /// Paced workloads: recorder CPU per message in the steady window, ns (median of the runs
    /// that have the figure).
    pub steady_cpu_ns_per_msg: Option<f64>,
    /// Recorder peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// 99th percentile of the receive delay, µs (median of the runs that measured it).
    pub delay_p99_us: Option<f64>,
}

impl Medians {
    /// Medians of each figure taken separately; `None` without runs.
    pub fn of(runs: &[RunMetrics]) -> Option<Self> {
        (!runs.is_empty()).then(|| Self {
            msgs_per_s: median(runs.iter().map(|r| r.msgs_per_s)),
            mb_per_s: median(runs.iter().map(|r| r.mb_per_s)),
            cpu_ns_per_msg: median(runs.iter().map(|r| r.cpu_ns_per_msg)),
            steady_cpu_ns_per_msg: {
                let steady: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.steady_cpu_ns_per_msg)
                    .collect();
                (!steady.is_empty()).then(|| median(steady))
            },
            peak_rss_mib: median(runs.iter().map(|r| r.peak_rss_mib)),
            delay_p99_us: {
                let p99: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.check.receive_delay.map(|d| d.p99_us))
                    .collect();
                (!p99.is_empty()).then(|| median(p99))
            },
        })
    }

    /// The target's limits these medians miss, as short texts; empty when all are met.
    pub fn misses(&self, target: &Target) -> Vec<String> {
        let mut misses = Vec::new();
        if let Some(min) = target.min_msgs_per_s
            && self.msgs_per_s < min
        {
            misses.push(format!("msg/s < {}", si(min)));
        }
        if let Some(max) = target.max_cpu_ns_per_msg
            && self.cpu_ns_per_msg > max
        {
            misses.push(format!("CPU > {max} ns"));
        }
        if let Some(max) = target.max_steady_cpu_ns_per_msg {
            match self.steady_cpu_ns_per_msg {
                Some(steady) if steady > max => misses.push(format!("steady CPU > {max} ns")),
                Some(_) => {}
                None => misses.push("no steady CPU figure".to_owned()),
            }
        }
        if let Some(max) = target.max_rss_mib
            && self.peak_rss_mib > max
        {
            misses.push(format!("RSS > {max} MiB"));
        }
        if let Some(max) = target.max_delay_p99_us {
            match self.delay_p99_us {
                Some(p99) if p99 > max => misses.push(format!("delay p99 > {max} us")),
                Some(_) => {}
                None => misses.push("no receive delay figure".to_owned()),
            }
        }
        misses
    }
}

/// A scenario's medians relative to another scenario's (this / other).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The other scenario.
    pub against: String,
    /// msg/s ratio (above 1: this one is faster).
    pub msgs_per_s_ratio: f64,
    /// CPU per message ratio (below 1: this one uses less CPU).
    pub cpu_ratio: f64,
    /// Steady-window CPU per message ratio, when both have the figure (paced workloads).
    pub steady_cpu_ratio: Option<f64>,
    /// Peak RSS ratio (below 1: this one uses less memory).
    pub rss_ratio: f64,
    /// Lowest acceptable msg/s ratio, if it is a target.
    pub min_msgs_ratio: Option<f64>,
}

/// Everything about one scenario's runs.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario as defined.
    pub scenario: Scenario,
    /// Connections and messages with the sizes of this run.
    pub plan: Plan,
    /// Messages per run (spaced-beside-flood: the median of the runs' messages over both
    /// streams, once there are runs; the flood is as long as the recorder reads).
    pub messages: u64,
    /// Message bytes per run (likewise).
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
    /// The medians compared with another scenario's, when both ran.
    pub comparison: Option<Comparison>,
    /// Why the scenario was not run (websocat unavailable).
    pub skipped: Option<String>,
    /// The failure that ended the scenario early, if any.
    pub error: Option<String>,
}

impl ScenarioResult {
    /// Fills in medians and target misses from `runs`.
    pub fn finish(&mut self) {
        if self.scenario.workload == Workload::SpacedBesideFlood && !self.runs.is_empty() {
            let runs = &self.runs;
            self.messages = median(runs.iter().map(|r| r.check.messages as f64)) as u64;
            self.message_bytes = median(runs.iter().map(|r| r.check.message_bytes as f64)) as u64;
        }
        self.median = Medians::of(&self.runs);
        self.target_misses = match (&self.median, &self.scenario.target) {
            (Some(m), Some(t)) => m.misses(t),
            _ => Vec::new(),
        };
    }

    /// Whether every run succeeded (a skipped scenario did not fail).
    pub fn passed(&self) -> bool {
        self.skipped.is_some() || (self.error.is_none() && self.runs.len() == self.runs_wanted)
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
    /// The websocat measured as a baseline, or why none was.
    pub websocat: Result<Websocat, String>,
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
    /// The sizes the workloads were run with.
    pub sizes: Sizes,
    /// Whether `--quick` was given (sizes for a smoke test, not for figures).
    pub quick: bool,
    /// Runs per scenario.
    pub runs: usize,
    /// Whether the page cache was warmed before each flood run (no `--no-warm`).
    pub warm_page_cache: bool,
    /// Load average (1, 5, 15 min) before and after the run: other work on the machine.
    pub loadavg_before: Option<String>,
    /// Load average after the run.
    pub loadavg_after: Option<String>,
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

    /// Fills in each scenario's comparison with the scenario it names, when both have medians,
    /// and adds a missed ratio target to its misses.
    pub fn compare(&mut self) {
        let medians: Vec<(&'static str, Option<Medians>)> = self
            .scenarios
            .iter()
            .map(|s| (s.scenario.name, s.median))
            .collect();
        for s in &mut self.scenarios {
            let (Some(c), Some(mine)) = (s.scenario.compare, s.median) else {
                continue;
            };
            let Some(theirs) = medians
                .iter()
                .find(|(n, _)| *n == c.against)
                .and_then(|(_, m)| *m)
            else {
                continue;
            };
            let cmp = Comparison {
                against: c.against.to_owned(),
                msgs_per_s_ratio: mine.msgs_per_s / theirs.msgs_per_s,
                cpu_ratio: mine.cpu_ns_per_msg / theirs.cpu_ns_per_msg,
                steady_cpu_ratio: mine
                    .steady_cpu_ns_per_msg
                    .zip(theirs.steady_cpu_ns_per_msg)
                    .map(|(a, b)| a / b),
                rss_ratio: mine.peak_rss_mib / theirs.peak_rss_mib,
                min_msgs_ratio: c.min_msgs_ratio,
            };
            if let Some(min) = c.min_msgs_ratio
                && cmp.msgs_per_s_ratio < min
            {
                s.target_misses
                    .push(format!("msg/s < {min:.2}x {}", c.against));
            }
            s.comparison = Some(cmp);
        }
    }

    /// The table printed at the end, then the comparisons.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<22} {:>9} {:>10} {:>7} {:>10} {:>10} {:>8} {:>4} {:>10}  vs target",
            "scenario",
            "messages",
            "msg/s",
            "MB/s",
            "CPU ns/msg",
            "steady CPU",
            "RSS MiB",
            "runs",
            "server max"
        );
        for s in &self.scenarios {
            let runs = format!("{}/{}", s.runs.len(), s.runs_wanted);
            let ceiling = s.server_ceiling_msgs_per_s.map_or("-".into(), si);
            let judged = s.scenario.target.is_some()
                || s.scenario
                    .compare
                    .is_some_and(|c| c.min_msgs_ratio.is_some());
            let verdict = if s.skipped.is_some() {
                "skipped".to_owned()
            } else if !s.passed() {
                "FAILED".to_owned()
            } else if !judged {
                "-".to_owned()
            } else if s.target_misses.is_empty() {
                "ok".to_owned()
            } else {
                s.target_misses.join(", ")
            };
            let _ = match &s.median {
                Some(m) => writeln!(
                    t,
                    "{:<22} {:>9} {:>10} {:>7.1} {:>10.1} {:>10} {:>8.1} {:>4} {:>10}  {verdict}",
                    s.scenario.name,
                    s.messages,
                    si(m.msgs_per_s),
                    m.mb_per_s,
                    m.cpu_ns_per_msg,
                    m.steady_cpu_ns_per_msg
                        .map_or("-".to_owned(), |v| format!("{v:.1}")),
                    m.peak_rss_mib,
                    runs,
                    ceiling
                ),
                None => writeln!(
                    t,
                    "{:<22} {:>9} {:>10} {:>7} {:>10} {:>10} {:>8} {:>4} {:>10}  {verdict}",
                    s.scenario.name, s.messages, "-", "-", "-", "-", "-", runs, ceiling
                ),
            };
        }
        let compared: Vec<&ScenarioResult> = self
            .scenarios
            .iter()
            .filter(|s| s.scenario.compare.is_some())
            .collect();
        if !compared.is_empty() {
            let _ = writeln!(
                t,
                "\n{:<46} {:>7} {:>10} {:>10} {:>8}",
                "ratio (this / other)", "msg/s", "CPU/msg", "steady CPU", "RSS"
            );
        }
        for s in compared {
            let Some(c) = s.scenario.compare else {
                continue;
            };
            let pair = format!("{} / {}", s.scenario.name, c.against);
            let _ = match &s.comparison {
                Some(r) => {
                    // The msg/s of a paced run is the pace: its ratio says nothing.
                    let msgs = if s.scenario.workload.paced() {
                        "(paced)".to_owned()
                    } else {
                        format!("{:.2}", r.msgs_per_s_ratio)
                    };
                    let goal = c.min_msgs_ratio.map_or(String::new(), |min| {
                        let ok = if r.msgs_per_s_ratio >= min {
                            "ok"
                        } else {
                            "MISSED"
                        };
                        format!("  target msg/s >= {min:.2}: {ok}")
                    });
                    let steady = r
                        .steady_cpu_ratio
                        .map_or("-".to_owned(), |v| format!("{v:.2}"));
                    writeln!(
                        t,
                        "{pair:<46} {msgs:>7} {:>10.2} {steady:>10} {:>8.2}{goal}",
                        r.cpu_ratio, r.rss_ratio
                    )
                }
                None => writeln!(t, "{pair:<46} {:>7} (one of the two has no figures)", "-"),
            };
        }
        self.delays(&mut t);
        t
    }

    /// The receive delay (`ts` - send time) of each run that measured it, with what the disk hog
    /// or the flood beside the spaced stream did meanwhile.
    fn delays(&self, t: &mut String) {
        let mut header = false;
        for s in &self.scenarios {
            for (i, r) in s.runs.iter().enumerate() {
                let Some(d) = r.check.receive_delay else {
                    continue;
                };
                if !header {
                    let _ = writeln!(
                        t,
                        "\n{:<22} {:>4} {:>10} {:>10} {:>10} {:>10}  meanwhile",
                        "receive delay (us)", "run", "p50", "p99", "p99.9", "max"
                    );
                    header = true;
                }
                let hog = r.disk_hog.map_or(String::new(), |h| {
                    format!(
                        "another writer: {} MB in {} fsynced files, longest fsync {:.0} ms",
                        h.bytes / 1_000_000,
                        h.fsyncs,
                        h.max_fsync_ms
                    )
                });
                let meanwhile = r.flood_beside.map_or(hog, |f| {
                    format!(
                        "another stream flooded: {} messages, {} msg/s",
                        f.messages,
                        si(f.msgs_per_s)
                    )
                });
                let _ = writeln!(
                    t,
                    "{:<22} {:>4} {:>10.0} {:>10.0} {:>10.0} {:>10.0}  {meanwhile}",
                    s.scenario.name,
                    i + 1,
                    d.p50_us,
                    d.p99_us,
                    d.p999_us,
                    d.max_us
                );
            }
        }
    }

    /// Notes printed under the table: skipped scenarios, where websocat does not apply, the
    /// machine's load, failures.
    pub fn notes(&self) -> String {
        let mut t = String::new();
        match &self.recorder.websocat {
            Ok(w) => {
                let _ = writeln!(t, "baseline: {} ({})", w.version, w.path.display());
            }
            Err(why) => {
                let _ = writeln!(t, "baseline: no websocat: {why}");
            }
        }
        let _ = writeln!(t, "websocat does not apply to:");
        for (names, why) in WEBSOCAT_NOT_APPLICABLE {
            let _ = writeln!(t, "  {names}: {why}");
        }
        if let (Some(a), Some(b)) = (&self.loadavg_before, &self.loadavg_after) {
            let _ = writeln!(
                t,
                "load average before: {a}; after: {b} ({} CPUs)",
                self.host.cpus
            );
        }
        if !self.warm_page_cache {
            let _ = writeln!(
                t,
                "--no-warm: flood runs wrote into cold page-cache memory (slower on this kind of VM)"
            );
        }
        if self.quick {
            let _ = writeln!(
                t,
                "--quick: small sizes and one run, a smoke test; the figures are not comparable"
            );
        }
        for s in &self.scenarios {
            if let Some(e) = &s.error {
                let _ = writeln!(t, "\n{} failed: {e}", s.scenario.name);
            }
        }
        t
    }
}

/// The 1, 5 and 15 minute load averages, from /proc/loadavg.
pub fn loadavg() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
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
    use crate::scenario::{
        TARGET_MANY_STREAMS, TARGET_RAW, TARGET_SPACED, TARGET_SPACED_BESIDE_FLOOD, TARGET_STEADY,
    };

    #[test]
    fn misses_name_each_limit() {
        let m = Medians {
            msgs_per_s: 2.5e6,
            mb_per_s: 0.0,
            cpu_ns_per_msg: 450.0,
            steady_cpu_ns_per_msg: None,
            peak_rss_mib: 10.0,
            delay_p99_us: None,
        };
        assert_eq!(m.misses(&TARGET_RAW), ["msg/s < 3.00 M", "CPU > 400 ns"]);
        assert_eq!(m.misses(&TARGET_MANY_STREAMS), ["no steady CPU figure"]);
        assert_eq!(m.misses(&TARGET_SPACED), ["no receive delay figure"]);
        let late = Medians {
            delay_p99_us: Some(700.0),
            ..m
        };
        assert_eq!(late.misses(&TARGET_SPACED), ["delay p99 > 100 us"]);
        let exact = Medians {
            delay_p99_us: Some(12.0),
            ..m
        };
        assert!(exact.misses(&TARGET_SPACED).is_empty());
        // Beside a flood only the delay is judged: the disk buffer's RSS is not.
        let flooded = Medians {
            peak_rss_mib: 78.0,
            ..exact
        };
        assert_eq!(flooded.misses(&TARGET_SPACED), ["RSS > 12 MiB"]);
        assert!(flooded.misses(&TARGET_SPACED_BESIDE_FLOOD).is_empty());
        assert_eq!(
            late.misses(&TARGET_SPACED_BESIDE_FLOOD),
            ["delay p99 > 100 us"]
        );
    }

    #[test]
    fn paced_targets_judge_the_steady_window_not_the_whole_life() {
        // The whole-life figure is far above the limits, the steady one within: ok.
        let mut m = Medians {
            msgs_per_s: 20_000.0,
            mb_per_s: 4.0,
            cpu_ns_per_msg: 15_000.0,
            steady_cpu_ns_per_msg: Some(3_900.0),
            peak_rss_mib: 50.0,
            delay_p99_us: None,
        };
        assert!(m.misses(&TARGET_MANY_STREAMS).is_empty());
        assert_eq!(
            m.misses(&TARGET_STEADY),
            ["steady CPU > 1000 ns", "RSS > 12 MiB"]
        );
        m.steady_cpu_ns_per_msg = Some(4_100.0);
        assert_eq!(m.misses(&TARGET_MANY_STREAMS), ["steady CPU > 4000 ns"]);
        m.steady_cpu_ns_per_msg = Some(900.0);
        m.peak_rss_mib = 10.0;
        assert!(m.misses(&TARGET_STEADY).is_empty());
    }

    #[test]
    fn si_formats() {
        assert_eq!(si(2_345_678.0), "2.35 M");
        assert_eq!(si(12_345.0), "12.3 k");
        assert_eq!(si(12.0), "12");
    }
}
