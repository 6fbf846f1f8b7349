//! Ctrl-C for the tools that write their output under a temporary name (`export`, `merge`):
//! SIGINT, SIGTERM and SIGHUP set a flag that the tool looks at between records, so it stops,
//! removes what it staged and exits with an error instead of dying with a half-written hidden
//! file left behind. What a tool killed outright (`kill -9`) leaves carries its process number,
//! and the next run removes it once that process is gone.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Set by SIGINT, SIGTERM or SIGHUP once [`catch`] ran.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What a tool returns when a signal stopped it.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by a signal; what was staged was removed and nothing was written")]
pub struct Interrupted;

/// `Err(Interrupted)` once `stop` ([`INTERRUPTED`], or a test's own flag) is set: what a tool
/// calls before each record.
pub(crate) fn check(stop: &AtomicBool) -> Result<(), Interrupted> {
    if stop.load(Relaxed) {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Relaxed);
}

/// Makes SIGINT, SIGTERM and SIGHUP set [`INTERRUPTED`] instead of ending the process.
pub(crate) fn catch() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: an all-zero sigaction is a valid value of this plain C struct; the handler
        // only stores to an atomic, which is async-signal-safe; SA_RESTART lets a read the
        // signal cut carry on, and the flag is looked at before the next record.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Removes the entries of `dir` named `prefix`, a process number, `suffix` whose process is
/// gone (killed before it could remove its own) with `remove`, saying on stderr that `tool`
/// (`an export`) left them.
pub(crate) fn remove_left_behind(
    dir: &std::path::Path,
    prefix: &str,
    suffix: &str,
    tool: &str,
    remove: fn(&std::path::Path) -> std::io::Result<()>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| process_gone(n, prefix, suffix)) else {
            continue;
        };
        if remove(&entry.path()).is_ok() {
            super::to_stderr(&format!(
                "wsrec: removed {}, left by {tool} (process {pid}) that was killed",
                entry.path().display()
            ));
        }
    }
}

/// The process number in `name` between `prefix` and `suffix` (`.out.parquet.` `1234` `.tmp`),
/// when that process no longer exists. A number that another process took since counts as
/// alive: what it names is left alone.
pub(crate) fn process_gone(name: &str, prefix: &str, suffix: &str) -> Option<libc::pid_t> {
    let pid = name
        .strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse::<libc::pid_t>()
        .ok()
        .filter(|&pid| pid > 0)?;
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let gone = unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    gone.then_some(pid)
}

/// The number of a process that has ended and was reaped: it names no process now.
#[cfg(test)]
pub(crate) fn ended_process() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ended_processes_are_gone() {
        let ended = ended_process();
        let me = std::process::id();
        assert_eq!(
            process_gone(&format!(".x.{ended}.tmp"), ".x.", ".tmp"),
            Some(ended as libc::pid_t)
        );
        assert_eq!(process_gone(&format!(".x.{me}.tmp"), ".x.", ".tmp"), None);
        assert_eq!(
            process_gone(&format!(".y.{ended}.tmp"), ".x.", ".tmp"),
            None
        );
        assert_eq!(process_gone(".x.0.tmp", ".x.", ".tmp"), None);
        assert_eq!(process_gone(".x.abc.tmp", ".x.", ".tmp"), None);
    }
}
