//! The recorder under test as a child process: building and locating `wsrec`, starting it with
//! its output going to files, stopping it with SIGTERM, and getting its own CPU time and peak RSS
//! from `wait4`, through a small reaper process (see [`reap_main`] for why).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
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
/// Reaper mode for several children described in a JSON file (see [`reap_main`]).
pub const REAP_MANY_ARG: &str = "__reap-many";

/// Most children one reaper runs.
pub const MAX_CHILDREN: usize = 4096;

/// Pids of the reaper's children, once started; read by the signal handler.
static REAP_CHILDREN: [AtomicI32; MAX_CHILDREN] = [const { AtomicI32::new(0) }; MAX_CHILDREN];
/// How many entries of [`REAP_CHILDREN`] are filled.
static REAP_COUNT: AtomicUsize = AtomicUsize::new(0);
/// A signal that arrived before every child existed, to forward once they do.
static REAP_PENDING: AtomicI32 = AtomicI32::new(0);

/// Reaper signal handler: forwards the signal to the children (async-signal-safe: atomics and
/// kill).
extern "C" fn forward_signal(signal: libc::c_int) {
    REAP_PENDING.store(signal, Ordering::SeqCst);
    let count = REAP_COUNT.load(Ordering::SeqCst);
    for slot in &REAP_CHILDREN[..count] {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe; pid is our child, not yet reaped (a slot is
            // cleared before its child is reaped, see `reap`).
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

/// Blocking `wait4` on `pid` (-1: any child), retried on EINTR; returns the pid, wait status
/// and rusage.
fn wait4_blocking(pid: libc::pid_t) -> std::io::Result<(libc::pid_t, libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; we only wait for our own children.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r > 0 {
            return Ok((r, status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Waits until some child has ended and returns its pid, leaving it unreaped (`WNOWAIT`).
fn wait_any_exited() -> std::io::Result<libc::pid_t> {
    loop {
        // SAFETY: siginfo_t is plain old data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a local; we only wait for our own children.
        let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            // SAFETY: waitid filled in a child's status, so si_pid is the valid field.
            return Ok(unsafe { info.si_pid() });
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One program the reaper starts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChildSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// File its stdout goes to (created); `None`: the reaper's stdout (the log).
    pub stdout: Option<PathBuf>,
}

/// Reaper mode: `wsrec-bench __reap REPORT PROGRAM [ARGS…]`, or
/// `wsrec-bench __reap-many REPORT SPEC.json` for a JSON list of [`ChildSpec`].
///
/// Why it exists: Linux carries a process's peak-RSS high-water mark across `fork` and `exec`
/// (`exec` keeps the old address space's peak in `ru_maxrss`), so a recorder started straight
/// from the bench, which holds hundreds of MiB of pre-encoded frames, would report the bench's
/// peak as its own. The reaper is a fresh small process (a few MiB) that starts the recorder,
/// forwards SIGTERM/SIGINT/SIGHUP to it, reaps it with `wait4`, and writes
/// `code signal user_ns system_ns maxrss_kib` to REPORT (-1 for an absent code or signal).
/// The recorder is killed if the reaper dies (`PR_SET_PDEATHSIG`).
///
/// With several children (websocat, one process per connection) CPU times and peak RSS are
/// summed over the children (the sum of peaks counts pages shared between them, such as the
/// program's text, once per process: an upper bound); the code is 0 if every child exited 0,
/// otherwise the first failure's.
pub fn reap_main(mode: &OsString, args: &[OsString]) -> ExitCode {
    let (report, children) = if mode == REAP_MANY_ARG {
        let [report, spec] = args else {
            eprintln!("usage: wsrec-bench {REAP_MANY_ARG} REPORT SPEC.json");
            return ExitCode::from(2);
        };
        let parsed = std::fs::read(spec)
            .map_err(anyhow::Error::from)
            .and_then(|d| Ok(serde_json::from_slice::<Vec<ChildSpec>>(&d)?));
        match parsed {
            Ok(children) => (report, children),
            Err(e) => {
                eprintln!("wsrec-bench: reading {}: {e:#}", Path::new(spec).display());
                return ExitCode::from(2);
            }
        }
    } else {
        let [report, program, rest @ ..] = args else {
            eprintln!("usage: wsrec-bench {REAP_ARG} REPORT PROGRAM [ARGS...]");
            return ExitCode::from(2);
        };
        let child = ChildSpec {
            program: PathBuf::from(program),
            args: rest.to_vec(),
            stdout: None,
        };
        (report, vec![child])
    };
    if children.is_empty() || children.len() > MAX_CHILDREN {
        eprintln!(
            "wsrec-bench: between 1 and {MAX_CHILDREN} children, not {}",
            children.len()
        );
        return ExitCode::from(2);
    }
    match reap(&children) {
        Ok(line) => match std::fs::write(report, line) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wsrec-bench: writing {}: {e}", Path::new(report).display());
                ExitCode::from(125)
            }
        },
        Err((code, message)) => {
            eprintln!("wsrec-bench: {message}");
            ExitCode::from(code)
        }
    }
}

/// Starts `children`, forwards signals, reaps them all; returns the report line or an exit code
/// and message.
fn reap(children: &[ChildSpec]) -> Result<String, (u8, String)> {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installing an async-signal-safe handler; the process is single-threaded.
        unsafe {
            libc::signal(signal, forward_signal as *const () as libc::sighandler_t);
        }
    }
    for (i, spec) in children.iter().enumerate() {
        let mut command = Command::new(&spec.program);
        command.args(&spec.args);
        if let Some(path) = &spec.stdout {
            let file = File::create(path)
                .map_err(|e| (125, format!("creating {}: {e}", path.display())))?;
            command.stdout(file);
        }
        // SAFETY: the closure only calls prctl, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            // The PDEATHSIG of the children already started takes them down with us.
            (127, format!("cannot start {}: {e}", spec.program.display()))
        })?;
        let pid = libc::pid_t::try_from(child.id()).map_err(|_| (125, "pid".to_owned()))?;
        REAP_CHILDREN[i].store(pid, Ordering::SeqCst);
        REAP_COUNT.store(i + 1, Ordering::SeqCst);
    }
    let pending = REAP_PENDING.load(Ordering::SeqCst);
    if pending != 0 {
        for slot in &REAP_CHILDREN[..children.len()] {
            // SAFETY: plain FFI call on our unreaped child.
            unsafe {
                libc::kill(slot.load(Ordering::SeqCst), pending);
            }
        }
    }
    let (mut code, mut signal) = (0, -1);
    let (mut user, mut system, mut rss) = (Duration::ZERO, Duration::ZERO, 0i64);
    for _ in 0..children.len() {
        // Learn which child ended without reaping it, retire its pid so the signal handler no
        // longer uses it, then reap it: a reaped pid may be reused at once.
        let pid = wait_any_exited().map_err(|e| (125, format!("waitid: {e}")))?;
        for slot in &REAP_CHILDREN[..children.len()] {
            let _ = slot.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
        let (_, status, usage) = wait4_blocking(pid).map_err(|e| (125, format!("wait4: {e}")))?;
        user += timeval(usage.ru_utime);
        system += timeval(usage.ru_stime);
        rss += usage.ru_maxrss;
        if libc::WIFEXITED(status) {
            if code == 0 {
                code = libc::WEXITSTATUS(status);
            }
        } else if libc::WIFSIGNALED(status) && signal < 0 {
            signal = libc::WTERMSIG(status);
            if code == 0 {
                code = -1;
            }
        }
    }
    Ok(format!(
        "{code} {signal} {} {} {rss}\n",
        user.as_nanos(),
        system.as_nanos()
    ))
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
        let mut all: Vec<OsString> = vec![REAP_ARG.into(), program.into()];
        all.extend(args.iter().cloned());
        // The report path goes between the mode and the program.
        Self::spawn_reaper(launcher, &all, log)
    }

    /// Starts several programs under one reaper (`launcher REAP_MANY_ARG`), described in
    /// `spec` (written here); their stderr, and stdout where a child has no file of its own, go
    /// to `log`. CPU and peak RSS are then sums over the children (see [`reap_main`]).
    ///
    /// # Errors
    /// The spec or log cannot be written, or the reaper cannot be started.
    pub fn spawn_many(
        launcher: &Path,
        children: &[ChildSpec],
        spec: &Path,
        log: &Path,
    ) -> Result<Self> {
        let text = serde_json::to_vec(children)?;
        std::fs::write(spec, text).with_context(|| format!("writing {}", spec.display()))?;
        Self::spawn_reaper(launcher, &[REAP_MANY_ARG.into(), spec.into()], log)
    }

    /// Starts the reaper with `args` after its report path.
    fn spawn_reaper(launcher: &Path, args: &[OsString], log: &Path) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let report = log.with_extension("rusage");
        let _ = std::fs::remove_file(&report);
        let child = Command::new(launcher)
            .arg(&args[0])
            .arg(&report)
            .args(&args[1..])
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

    /// Pid of the reaper (the recorder processes are its children).
    pub fn pid(&self) -> libc::pid_t {
        self.pid
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

/// The websocat release the bench installs.
pub const WEBSOCAT_VERSION: &str = "1.14.1";

/// A usable websocat: its path and `--version` line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Websocat {
    /// The binary.
    pub path: PathBuf,
    /// What `websocat --version` printed.
    pub version: String,
}

/// Runs `path --version`; the websocat it is, or why not.
fn probe_websocat(path: &Path) -> Result<Websocat, String> {
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !version.starts_with("websocat") {
        return Err(format!(
            "{} --version did not say websocat ({}): {version}",
            path.display(),
            out.status
        ));
    }
    Ok(Websocat {
        path: path.to_path_buf(),
        version,
    })
}

/// Finds websocat: `explicit` if given, else the copy cached under `tools` (`tools/bin/websocat`),
/// else, when `install` is set, builds it once there with
/// `cargo install websocat --version WEBSOCAT_VERSION --locked --root TOOLS` (a few minutes).
///
/// # Errors
/// Why there is no websocat to measure; the websocat scenarios are then skipped with this text.
pub fn find_websocat(
    tools: &Path,
    explicit: Option<&Path>,
    install: bool,
) -> Result<Websocat, String> {
    if let Some(path) = explicit {
        return probe_websocat(path);
    }
    let cached = tools.join("bin/websocat");
    if cached.exists() {
        return probe_websocat(&cached);
    }
    if !install {
        return Err(format!(
            "websocat is not installed in {} and --no-install was given",
            tools.display()
        ));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    eprintln!(
        "installing websocat {WEBSOCAT_VERSION} into {} (once; it takes a few minutes): \
         cargo install websocat --version {WEBSOCAT_VERSION} --locked --root {}",
        tools.display(),
        tools.display()
    );
    let status = Command::new(&cargo)
        .args([
            "install",
            "websocat",
            "--version",
            WEBSOCAT_VERSION,
            "--locked",
            "--root",
        ])
        .arg(tools)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run cargo to install websocat: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo install websocat --version {WEBSOCAT_VERSION} --locked` failed ({status}); \
             pass --websocat PATH to use another copy"
        ));
    }
    probe_websocat(&cached)
}
