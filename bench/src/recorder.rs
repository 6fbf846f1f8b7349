//! The recorder under test as a child process: building and locating `wsrec`, starting it with
//! its output going to files, stopping it with SIGTERM, and getting its own CPU time and peak RSS
//! from `wait4`, through a small reaper process (see [`reap_main`] for why).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Builds `wsrec` in release mode with the cargo that runs this bench and returns its path.
///
/// # Errors
/// cargo cannot be started, the build fails, or cargo reports no `wsrec` executable.
pub fn build_wsrec(workspace: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    eprintln!("building wsrec: cargo build --release -p wsrec --bin wsrec");
    let mut child = Command::new(&cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "-p",
            "wsrec",
            "--bin",
            "wsrec",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", cargo.to_string_lossy()))?;
    let mut exe = None;
    // Piped above, so present.
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "wsrec"
            && let Some(path) = msg["executable"].as_str()
        {
            exe = Some(PathBuf::from(path));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "`cargo build --release -p wsrec --bin wsrec` failed ({status}); pass --wsrec PATH to use another binary"
        );
    }
    exe.context("cargo built no `wsrec` executable")
}

/// How a reaped child ended and what it cost.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Terminating signal, if it was killed.
    pub signal: Option<i32>,
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub system: Duration,
    /// Peak resident set size in KiB (`ru_maxrss` on Linux).
    pub max_rss_kib: u64,
    /// When it was reaped.
    pub at: Instant,
}

impl Exit {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// User plus system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }

    /// `exit code N` or `killed by signal N`.
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (_, Some(sig)) => format!("killed by signal {sig}"),
            _ => "unknown status".into(),
        }
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000)
}

/// First argument that switches the bench binary into reaper mode (see [`reap_main`]).
pub const REAP_ARG: &str = "__reap";

/// Pid of the reaper's child, once started; read by the signal handler.
static REAP_CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived before the child existed, to forward once it does.
static REAP_PENDING: AtomicI32 = AtomicI32::new(0);

/// Reaper signal handler: forwards the signal to the child (async-signal-safe: atomics and kill).
extern "C" fn forward_signal(signal: libc::c_int) {
    let pid = REAP_CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our child, not yet reaped.
        unsafe {
            libc::kill(pid, signal);
        }
    } else {
        REAP_PENDING.store(signal, Ordering::SeqCst);
    }
}

/// Blocking `wait4` on `pid`, retried on EINTR; returns the wait status and rusage.
fn wait4_blocking(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaper mode: `wsrec-bench __reap REPORT PROGRAM [ARGS…]`.
///
/// Why it exists: Linux carries a process's peak-RSS high-water mark across `fork` and `exec`
/// (`exec` keeps the old address space's peak in `ru_maxrss`), so a recorder started straight
/// from the bench, which holds hundreds of MiB of pre-encoded frames, would report the bench's
/// peak as its own. The reaper is a fresh small process (a few MiB) that starts the recorder,
/// forwards SIGTERM/SIGINT/SIGHUP to it, reaps it with `wait4`, and writes
/// `code signal user_ns system_ns maxrss_kib` to REPORT (-1 for an absent code or signal).
/// The recorder is killed if the reaper dies (`PR_SET_PDEATHSIG`).
pub fn reap_main(args: &[OsString]) -> ExitCode {
    let [report, program, rest @ ..] = args else {
        eprintln!("usage: wsrec-bench {REAP_ARG} REPORT PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installing an async-signal-safe handler; the process is single-threaded.
        unsafe {
            libc::signal(signal, forward_signal as *const () as libc::sighandler_t);
        }
    }
    let mut command = Command::new(program);
    command.args(rest);
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "wsrec-bench: cannot start {}: {e}",
                Path::new(program).display()
            );
            return ExitCode::from(127);
        }
    };
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return ExitCode::from(125);
    };
    REAP_CHILD.store(pid, Ordering::SeqCst);
    let pending = REAP_PENDING.swap(0, Ordering::SeqCst);
    if pending != 0 {
        // SAFETY: plain FFI call on our unreaped child.
        unsafe {
            libc::kill(pid, pending);
        }
    }
    let (status, usage) = match wait4_blocking(pid) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wsrec-bench: wait4: {e}");
            return ExitCode::from(125);
        }
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let signal = if libc::WIFSIGNALED(status) {
        libc::WTERMSIG(status)
    } else {
        -1
    };
    let line = format!(
        "{code} {signal} {} {} {}\n",
        timeval(usage.ru_utime).as_nanos(),
        timeval(usage.ru_stime).as_nanos(),
        usage.ru_maxrss
    );
    match std::fs::write(report, line) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsrec-bench: writing {}: {e}", Path::new(report).display());
            ExitCode::from(125)
        }
    }
}

/// Parses the reaper's report line.
fn parse_report(text: &str, at: Instant) -> Option<Exit> {
    let f: Vec<i64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [code, signal, user, system, rss] = f[..] else {
        return None;
    };
    Some(Exit {
        code: (code >= 0).then_some(code as i32),
        signal: (signal >= 0).then_some(signal as i32),
        user: Duration::from_nanos(user.max(0) as u64),
        system: Duration::from_nanos(system.max(0) as u64),
        max_rss_kib: rss.max(0) as u64,
        at,
    })
}

/// A running recorder, started through the reaper (see [`reap_main`]). Dropping it kills and
/// reaps the process if it is still running.
pub struct Process {
    /// Pid of the reaper, the process this bench waits for and signals.
    pid: libc::pid_t,
    /// The recorder's stdout and stderr file.
    log: PathBuf,
    /// Where the reaper writes the recorder's exit status and rusage.
    report: PathBuf,
    exit: Option<Exit>,
}

impl Process {
    /// Starts `program args…` under the reaper `launcher REAP_ARG`, with stdin closed and
    /// stdout and stderr going to `log`.
    ///
    /// # Errors
    /// The log cannot be created or the reaper cannot be started.
    pub fn spawn(launcher: &Path, program: &Path, args: &[OsString], log: &Path) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let report = log.with_extension("rusage");
        let _ = std::fs::remove_file(&report);
        let child = Command::new(launcher)
            .arg(REAP_ARG)
            .arg(&report)
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", launcher.display()))?;
        // std's Child is dropped without waiting; this type reaps the pid itself with wait4.
        let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
        Ok(Self {
            pid,
            log: log.to_path_buf(),
            report,
            exit: None,
        })
    }

    /// Reaps the recorder if it has ended, without blocking.
    ///
    /// # Errors
    /// `wait4` fails, or the reaper ended without a report.
    pub fn try_wait(&mut self) -> Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        let mut status = 0;
        loop {
            // SAFETY: valid pointer to a local; pid is our own unreaped child.
            let r =
                unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, std::ptr::null_mut()) };
            if r == 0 {
                return Ok(None);
            }
            if r == self.pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).context("wait4 on the recorder's reaper");
            }
        }
        let at = Instant::now();
        let text = std::fs::read_to_string(&self.report).unwrap_or_default();
        let exit = match parse_report(&text, at) {
            Some(exit) => exit,
            None => {
                // The reaper itself failed (it says why in the log) or was killed.
                Exit {
                    code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
                    signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
                    user: Duration::ZERO,
                    system: Duration::ZERO,
                    max_rss_kib: 0,
                    at,
                }
            }
        };
        self.exit = Some(exit);
        Ok(Some(exit))
    }

    /// Polls until the child ends or `timeout` passes.
    ///
    /// # Errors
    /// `wait4` fails.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<Exit>> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(Some(exit));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends `signal` to the reaper, which forwards it to the recorder (SIGKILL kills the reaper,
    /// and the recorder with it). Nothing is sent once reaped (the pid may be reused then).
    pub fn signal(&self, signal: libc::c_int) {
        if self.exit.is_none() {
            // SAFETY: plain FFI call; the pid is our unreaped child, so it cannot be reused.
            unsafe {
                libc::kill(self.pid, signal);
            }
        }
    }

    /// The last `lines` lines of the child's output, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        if tail.is_empty() {
            format!("(no output in {})", self.log.display())
        } else {
            format!("output ({}):\n{tail}", self.log.display())
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.wait_timeout(Duration::from_secs(5));
        }
    }
}
