//! Glue between the command line and the library: runs a subcommand and picks the exit code.
//! `record` turns the `record` flags into a [`Config`] and runs the recorder; `tools` turns
//! the flags of the commands around a recording into the options of [`crate::tools`] and runs
//! them. The commands here are the only place that sees both the clap types of [`crate::cli`]
//! and the library: the tools take plain option structs of their own.

mod record;
mod tools;

pub use record::{build_config, load_config};

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{Cli, Command, RecordArgs, StatusArgs, VenuesArgs};
use crate::config::Config;
use crate::error::ConfigError;
use crate::recorder::RunError;

/// Exit code for bad input (config, URL, flag, an output directory that cannot be one, a
/// metrics address that cannot be bound): nothing was written. Also a one-line recording
/// whose first connection failed for good (a 404, a 401, a rejected certificate): the URL is
/// wrong; its files are closed.
pub const EXIT_USAGE: u8 = 2;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        _ if cli.status => status(&cli.config, &StatusArgs::default(), true),
        Some(Command::Status(ref args)) => {
            config_once(&cli, &args.config).and_then(|c| status(&c, args, false))
        }
        Some(Command::Record(ref args)) => {
            config_once(&cli, &args.config).and_then(|c| record::record(&cli, c.as_deref(), args))
        }
        Some(ref other) if cli.config.is_some() => Err(crate::tools::UsageError(format!(
            "`-c/--config` is read only by `record` and `status`; `wsrec {}` takes no config \
             file: leave it out",
            command_name(other)
        ))
        .into()),
        Some(Command::Cat(ref args)) => tools::cat(args),
        Some(Command::Export(ref args)) => tools::export(args),
        Some(Command::Verify(ref args)) => tools::verify(args),
        Some(Command::Book(ref args)) => tools::book(args),
        Some(Command::Stats(ref args)) => tools::stats(args),
        Some(Command::Replay(ref args)) => tools::replay(args),
        Some(Command::Demo(ref args)) => tools::demo(args),
        Some(Command::Venues(ref args)) => venues(args),
        Some(Command::Merge(ref args)) => tools::merge(args),
        Some(Command::Completions(ref args)) => completions(args),
        Some(Command::Man(ref args)) => man(args),
        None => record::record(&cli, cli.config.as_deref(), &RecordArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`wsrec cat … | head`): nothing more to say to it.
        Err(e) if crate::tools::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            crate::tools::to_stderr(&format!("wsrec: error: {}", describe(&e)));
            let usage = e.chain().any(|c| {
                c.is::<ConfigError>()
                    || c.is::<crate::tools::UsageError>()
                    || matches!(
                        c.downcast_ref::<RunError>(),
                        Some(
                            RunError::Config(_)
                                | RunError::OutputDir { .. }
                                | RunError::Journal { .. }
                                | RunError::Metrics(_)
                                | RunError::Refused(_)
                        )
                    )
            });
            ExitCode::from(if usage { EXIT_USAGE } else { 1 })
        }
    }
}

/// The config file of `record` or `status`, given before the command (`wsrec -c F record`) or
/// after it (`wsrec record -c F`), but not both.
fn config_once(cli: &Cli, after: &Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    match (&cli.config, after) {
        (Some(a), Some(b)) if a != b => Err(crate::tools::UsageError(format!(
            "two config files given ({} before the command, {} after it): give one",
            a.display(),
            b.display()
        ))
        .into()),
        (a, b) => Ok(b.clone().or_else(|| a.clone())),
    }
}

/// The name a subcommand is called by on the command line.
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Record(_) => "record",
        Command::Status(_) => "status",
        Command::Cat(_) => "cat",
        Command::Verify(_) => "verify",
        Command::Stats(_) => "stats",
        Command::Replay(_) => "replay",
        Command::Demo(_) => "demo",
        Command::Venues(_) => "venues",
        Command::Merge(_) => "merge",
        Command::Completions(_) => "completions",
        Command::Man(_) => "man",
        Command::Book(_) => "book",
        Command::Export(_) => "export",
    }
}

/// `wsrec completions SHELL`: the shell's completion script on stdout.
fn completions(args: &crate::cli::CompletionsArgs) -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "wsrec", &mut out);
    write_stdout(&out)
}

/// `wsrec man [--dir DIR]`: `wsrec.1` on stdout, or every command's page written into DIR.
fn man(args: &crate::cli::ManArgs) -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    let cmd = Cli::command();
    let Some(dir) = &args.dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return write_stdout(&out);
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the man page directory {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    Ok(())
}

/// Writes `bytes` to stdout.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::io::stdout()
        .write_all(bytes)
        .context("cannot write to stdout")
}

/// An error and its causes in one line, each cause said once: a message that already quotes its
/// cause (`output directory x: Not a directory (os error 20); …`) is not followed by it again.
fn describe(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `wsrec venues [NAME] [--json]`: every preset, or NAME's in full with its sources; an
/// unknown NAME is bad input (exit 2) and names the closest preset.
fn venues(args: &VenuesArgs) -> anyhow::Result<()> {
    use crate::net::venue::{PRESETS, describe_all, describe_one, find, to_json, unknown};
    use std::io::Write as _;
    let preset = match &args.name {
        Some(name) => Some(find(name).ok_or_else(|| crate::tools::UsageError(unknown(name)))?),
        None => None,
    };
    let text = match (preset, args.json) {
        (Some(p), true) => format!("{:#}\n", to_json(p)),
        (None, true) => {
            let all: Vec<_> = PRESETS.iter().map(to_json).collect();
            format!("{:#}\n", serde_json::json!({ "presets": all }))
        }
        (Some(p), false) => describe_one(p),
        (None, false) => describe_all(),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    Ok(())
}

/// The multi-thread tokio runtime every command runs on, with `threads` workers.
/// The recorder's runtime: `threads` workers that coalesce their wake-ups as
/// [`Config::wake_coalesce`] says (see [`linger_before_park`]).
fn recorder_runtime(config: &Config) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let linger = config.wake_coalesce_in_force();
    if !linger.is_zero() {
        builder
            .on_thread_park(move || linger_before_park(linger))
            .on_thread_unpark(|| WAKE.with(|w| w.set((w.get().0, std::time::Instant::now()))));
    }
    builder
        .worker_threads(config.threads)
        .thread_name("wsrec")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

thread_local! {
    /// A runtime thread's last park and unpark.
    static WAKE: std::cell::Cell<(std::time::Instant, std::time::Instant)> = {
        let now = std::time::Instant::now();
        std::cell::Cell::new((now, now))
    };
}

/// A turn shorter than this found little to do (a message or two).
const SHORT_TURN: std::time::Duration = std::time::Duration::from_micros(50);

/// Called when a runtime thread has run out of work, right before it waits on epoll: waits
/// `linger` first when [`should_linger`] says so.
fn linger_before_park(linger: std::time::Duration) {
    WAKE.with(|w| {
        let (parked, unparked) = w.get();
        let now = std::time::Instant::now();
        if should_linger(parked, unparked, now, linger) {
            std::thread::sleep(linger);
        }
        // The park counts from when the work ran out, linger included: the wait that follows
        // a linger is short only because the linger took most of it.
        w.set((now, unparked));
    });
}

/// Whether a thread that last ran out of work at `parked` (before any linger), woke at
/// `unparked` and runs out of work at `now` should wait `linger` before it parks again: when
/// its wake-ups come thick (the last came less than half of `linger` after it ran out of work)
/// and each finds little to do (the turn was shorter than [`SHORT_TURN`]), as with many quiet
/// connections, so the next wake-up takes what they all sent meanwhile. A flood (long turns)
/// and a steady stream whose bursts come about `linger` apart or further never wait: a stream
/// in bursts 1 ms apart lingered at every burst with a 1 ms linger and gained nothing by it
/// (steady 50,000 msg/s: 8 % more CPU per message than with `wake_coalesce = "off"`). After a
/// linger the next turn counts the linger in its wait, so many quiet connections linger at
/// every other wake-up.
fn should_linger(
    parked: std::time::Instant,
    unparked: std::time::Instant,
    now: std::time::Instant,
    linger: std::time::Duration,
) -> bool {
    now.saturating_duration_since(unparked) < SHORT_TURN
        && unparked.saturating_duration_since(parked) < linger / 2
}

fn tokio_runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("wsrec")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn status(config_path: &Option<PathBuf>, args: &StatusArgs, go_line: bool) -> anyhow::Result<()> {
    let socket = match (&args.socket, &args.dir, config_path) {
        (Some(p), _, _) => p.clone(),
        (None, Some(d), _) if d.is_dir() => d.join(crate::config::DEFAULT_STATUS_SOCKET_NAME),
        (None, Some(d), _) => d.clone(),
        (None, None, Some(c)) => load_config(c)?
            .status_socket_path()
            .context("the config turns the status socket off (status_socket = \"\")")?,
        (None, None, None) => Config::default()
            .status_socket_path()
            .context("no status socket configured")?,
    };
    let runtime = tokio_runtime(1)?;
    let show = |clear: bool| -> anyhow::Result<()> {
        let snapshot = runtime.block_on(crate::observe::status::query(&socket))?;
        let text = if go_line {
            format!("{}\n", snapshot.go_line())
        } else if args.json {
            format!("{}\n", serde_json::to_string_pretty(&snapshot)?)
        } else {
            crate::observe::status::render_table(&snapshot, crate::clock::system_now_ns())
        };
        // On a terminal each round replaces the last; elsewhere they follow each other.
        let text = if clear {
            format!("\x1b[2J\x1b[H{text}")
        } else {
            text
        };
        write_stdout(text.as_bytes())
    };
    let Some(every) = args.watch else {
        return show(false);
    };
    let clear = std::io::IsTerminal::is_terminal(&std::io::stdout()) && !args.json;
    loop {
        show(clear)?;
        let stop = runtime.block_on(async {
            tokio::select! {
                () = tokio::time::sleep(every) => false,
                _ = tokio::signal::ctrl_c() => true,
            }
        });
        if stop {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_turns_of_frequent_wake_ups_linger() {
        use std::time::{Duration, Instant};
        let ms = Duration::from_millis(1);
        let t0 = Instant::now();
        let us = |n| t0 + Duration::from_micros(n);
        // Woken 50 us after parking, done 10 us later: many quiet connections.
        assert!(super::should_linger(t0, us(50), us(60), ms));
        // A long turn (a flood, or what a linger gathered).
        assert!(!super::should_linger(t0, us(50), us(400), ms));
        // Wake-ups further apart than the linger (bursts 2 ms apart).
        assert!(!super::should_linger(t0, us(2_000), us(2_010), ms));
        // Bursts about a linger apart (a steady stream sent every millisecond): lingering
        // would gather no more than waiting does.
        assert!(!super::should_linger(t0, us(960), us(990), ms));
        // Under half a linger apart: still thick.
        assert!(super::should_linger(t0, us(400), us(420), ms));
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from_raw_os_error(20);
        let e: anyhow::Error = RunError::OutputDir {
            path: "/tmp/f/sub".into(),
            source: io,
        }
        .into();
        let line = describe(&e);
        assert_eq!(line.matches("Not a directory").count(), 1, "{line}");
        assert!(
            line.starts_with("output directory /tmp/f/sub: Not a directory"),
            "{line}"
        );
        // Causes a message does not quote still follow it.
        let e = anyhow::Error::from(std::io::Error::from_raw_os_error(2)).context("cannot read x");
        assert_eq!(
            describe(&e),
            format!("cannot read x: {}", std::io::Error::from_raw_os_error(2))
        );
    }
}
