//! What the bench reads of the recorder processes while they run: a `/proc/PID/stat` line (the
//! parent, the CPU ticks), the children of the reaper, their summed Pss, and their CPU time now.
//!
//! The CPU time is read from each process's CPU-time clock (`clock_getcpuclockid` and
//! `clock_gettime`): the kernel's scheduler accounting of every thread of the process, the exited
//! ones included, to the nanosecond. Where that clock cannot be had, `utime + stime` of
//! `/proc/PID/stat` (fields 14 and 15) stands in, in clock ticks (10 ms at the usual 100 Hz:
//! fine over a window of seconds, and said in the results).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// The fields of a `/proc/PID/stat` line the bench uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Parent pid (field 4).
    pub ppid: libc::pid_t,
    /// User CPU time in clock ticks (field 14), threads that ended included.
    pub utime_ticks: u64,
    /// System CPU time in clock ticks (field 15), threads that ended included.
    pub stime_ticks: u64,
}

/// Parses a `/proc/PID/stat` line: `pid (comm) state ppid … utime stime …`, where `comm` may hold
/// spaces and parentheses (so the fields are counted from the last `)`).
pub fn parse_stat(line: &str) -> Option<Stat> {
    let (_, rest) = line.rsplit_once(')')?;
    // After the `)`: field 3 (state) is the first, so field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Stat {
        ppid: field(4)?.parse().ok()?,
        utime_ticks: field(14)?.parse().ok()?,
        stime_ticks: field(15)?.parse().ok()?,
    })
}

/// The `/proc/PID/stat` fields of `pid`, if it exists.
pub fn stat(pid: libc::pid_t) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The pids whose parent is `parent`, in no particular order.
pub fn children(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

/// The `Pss:` figure of a `/proc/PID/smaps_rollup` text, KiB.
fn parse_pss_kib(rollup: &str) -> Option<u64> {
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Sum of the proportional set size (`Pss` of `/proc/PID/smaps_rollup`) of the children of
/// `parent`, in KiB; `None` when it has none. Unlike a sum of RSS, pages shared between the
/// processes (a program's text, its libraries) are counted once in total.
pub fn children_pss_kib(parent: libc::pid_t) -> Option<u64> {
    let mut total = None;
    for pid in children(parent) {
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        if let Some(kib) = parse_pss_kib(&rollup) {
            total = Some(total.unwrap_or(0) + kib);
        }
    }
    total
}

/// How a [`ProcessCpu`] reads CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuSource {
    /// Every process through its CPU-time clock: nanoseconds.
    Clock,
    /// At least one process through `/proc/PID/stat`: clock ticks.
    Ticks,
}

/// One process being watched.
#[derive(Debug, Clone, Copy)]
enum Watched {
    Clock(libc::pid_t, libc::clockid_t),
    Stat(libc::pid_t),
}

/// The summed CPU time (user + system, all threads) of a set of running processes, read as
/// often as wanted.
#[derive(Debug, Clone)]
pub struct ProcessCpu {
    watched: Vec<Watched>,
    /// Length of a clock tick.
    tick: Duration,
}

impl ProcessCpu {
    /// Watches `pids`, each through its CPU-time clock where the kernel gives one.
    ///
    /// # Errors
    /// `pids` is empty.
    pub fn new(pids: &[libc::pid_t]) -> Result<Self> {
        if pids.is_empty() {
            bail!("no process to watch");
        }
        // SAFETY: plain FFI call.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let tick = Duration::from_secs(1) / u32::try_from(hz).unwrap_or(100).max(1);
        let watched = pids
            .iter()
            .map(|&pid| {
                let mut id: libc::clockid_t = 0;
                // SAFETY: valid pointer to a local.
                let r = unsafe { libc::clock_getcpuclockid(pid, &mut id) };
                if r == 0 {
                    Watched::Clock(pid, id)
                } else {
                    Watched::Stat(pid)
                }
            })
            .collect();
        Ok(Self { watched, tick })
    }

    /// Watches the children of `parent` (the recorder processes under the reaper).
    ///
    /// # Errors
    /// `parent` has no children.
    pub fn children_of(parent: libc::pid_t) -> Result<Self> {
        Self::new(&children(parent))
            .with_context(|| format!("process {parent} has no children to measure"))
    }

    /// How the time is read: nanoseconds, or ticks for at least one process.
    pub fn source(&self) -> CpuSource {
        if self.watched.iter().all(|w| matches!(w, Watched::Clock(..))) {
            CpuSource::Clock
        } else {
            CpuSource::Ticks
        }
    }

    /// The resolution of [`read`](Self::read): 1 ns, or one clock tick.
    pub fn resolution(&self) -> Duration {
        match self.source() {
            CpuSource::Clock => Duration::from_nanos(1),
            CpuSource::Ticks => self.tick,
        }
    }

    /// The processes' CPU time so far, summed.
    ///
    /// # Errors
    /// A process has gone.
    pub fn read(&self) -> Result<Duration> {
        let mut total = Duration::ZERO;
        for w in &self.watched {
            total += match *w {
                Watched::Clock(pid, id) => {
                    // SAFETY: timespec is plain old data; all-zero is a valid value.
                    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
                    // SAFETY: valid pointer to a local.
                    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
                        bail!(
                            "reading the CPU clock of process {pid}: {}",
                            std::io::Error::last_os_error()
                        );
                    }
                    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
                }
                Watched::Stat(pid) => {
                    let s = stat(pid).with_context(|| format!("process {pid} has gone"))?;
                    self.tick * u32::try_from(s.utime_ticks + s.stime_ticks).unwrap_or(u32::MAX)
                }
            };
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        // A real line of /proc/PID/stat (kernel 6.x), with a comm holding spaces and a ')'.
        let line = "4242 (wsrec) x (1)) S 4241 4242 17 0 -1 4194560 1051 0 0 0 \
                    731 264 0 0 20 0 3 0 123456 23891968 2410 18446744073709551615 1 1 0 0 0 0 \
                    0 4096 17922 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 4241,
                utime_ticks: 731,
                stime_ticks: 264,
            })
        );
        assert_eq!(parse_stat("4242 (cut) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(parse_stat("1 (x) S notapid 1 1 1 1 1 1 1 1 1 1 1 1"), None);
    }

    #[test]
    fn own_stat_names_the_parent() {
        let me = std::process::id() as libc::pid_t;
        // SAFETY: plain FFI call.
        let parent = unsafe { libc::getppid() };
        assert_eq!(stat(me).map(|s| s.ppid), Some(parent));
    }

    #[test]
    fn pss_line_is_read_in_kib() {
        let rollup = "00400000-7ffd [rollup]\nRss:    9000 kB\nPss:    4321 kB\nPss_Anon: 12 kB\n";
        assert_eq!(parse_pss_kib(rollup), Some(4321));
        assert_eq!(parse_pss_kib("Rss: 1 kB\n"), None);
    }

    #[test]
    fn a_child_busy_for_a_while_shows_that_cpu_to_the_nanosecond() {
        // A child that spins until told to stop: its clock must advance by about the spin.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let cpu = ProcessCpu::new(&[pid]).unwrap();
        assert_eq!(cpu.source(), CpuSource::Clock);
        assert_eq!(cpu.resolution(), Duration::from_nanos(1));
        let first = cpu.read().unwrap();
        // Wait on the child's own progress, not on a timer: until it has used 20 ms more.
        let mut later = first;
        while later < first + Duration::from_millis(20) {
            std::thread::yield_now();
            later = cpu.read().unwrap();
        }
        // Killed but not yet reaped: both figures are frozen and can be compared.
        child.kill().unwrap();
        // SAFETY: siginfo_t is plain old data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a local; the pid is our own unreaped child.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(r, 0);
        let end = cpu.read().unwrap();
        let ticks = stat(pid).unwrap();
        child.wait().unwrap();
        assert!(end >= later && later >= first + Duration::from_millis(20));
        // The ticks count the same scheduler time, each of the two truncated to a tick.
        let tick_time = cpu.tick * (ticks.utime_ticks + ticks.stime_ticks) as u32;
        assert!(
            tick_time <= end && end - tick_time < 2 * cpu.tick,
            "{tick_time:?} {end:?}"
        );
        // Reaped: the clock is gone with the process.
        assert!(cpu.read().is_err());
    }

    #[test]
    fn stat_fallback_reads_ticks() {
        let me = std::process::id() as libc::pid_t;
        let cpu = ProcessCpu {
            watched: vec![Watched::Stat(me)],
            tick: Duration::from_millis(10),
        };
        assert_eq!(cpu.source(), CpuSource::Ticks);
        assert_eq!(cpu.resolution(), Duration::from_millis(10));
        let t = cpu.read().unwrap();
        assert_eq!(t.as_nanos() % 10_000_000, 0);
        let bad = ProcessCpu {
            watched: vec![Watched::Stat(-5)],
            tick: Duration::from_millis(10),
        };
        assert!(bad.read().is_err());
        assert!(ProcessCpu::new(&[]).is_err());
    }
}
