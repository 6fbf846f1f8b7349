//! `wsrec record` (also the default command): turns its flags and the config file into a
//! [`Config`], sets up logging and signals, and runs the [`Recorder`] until a signal.

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, CompressArg, FormatArg, FsyncArg, RecordArgs, TsSourceArg, WhenFullArg};
use crate::config::{self, Config, Format, Secret, StreamConfig, TsSource, WhenFull};
use crate::error::ConfigError;
use crate::recorder::{Recorder, RunError};

/// Runs `wsrec record` (and the bare `wsrec`) until SIGINT or SIGTERM.
///
/// # Errors
/// Bad flags or config (usage), or the recorder failed.
pub(super) fn record(
    cli: &Cli,
    config_path: Option<&std::path::Path>,
    args: &RecordArgs,
) -> anyhow::Result<()> {
    let mut config = build_config(config_path, args)?;
    if cli.quiet {
        config.log_to_stdout = false;
    }
    let recorder = Recorder::new(config)?;
    init_logging(recorder.config(), cli.debug)?;
    let ran = super::recorder_runtime(recorder.config())?.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(on_signals(shutdown.clone()));
        recorder.run(shutdown).await
    });
    match ran {
        Err(e @ RunError::Refused(_)) => Err(RetryHint(e).into()),
        other => Ok(other?),
    }
}

/// A one-line recording that stopped at its first connection, with the flag that keeps it
/// retrying instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}; to keep retrying anyway, add --retry")]
struct RetryHint(#[source] RunError);

/// Cancels `shutdown` on the first SIGINT or SIGTERM; a second one exits at once.
async fn on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!(
            "Cannot install signal handlers; stop wsrec with SIGKILL only as a last resort."
        );
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Signal received: shutting down (send it again to exit at once).");
    shutdown.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::error!("Second signal: exiting without draining; open files keep their .open suffix.");
    std::process::exit(130);
}

/// Reads a config file (TOML or the Go streamer's JSON), fills its streams from their venue
/// presets, then validates it: what `-c` loads for the recorder.
///
/// # Errors
/// The file cannot be read, does not parse (the message names the field or line), a preset
/// refuses a stream, or it fails [`Config::validate`].
pub fn load_config(path: &std::path::Path) -> Result<Config, ConfigError> {
    let read = Config::read(path)?;
    // Before logging starts (it is configured by this file): straight to stderr.
    for w in &read.warnings {
        crate::tools::to_stderr(&format!("wsrec: warning: {}: {w}", path.display()));
    }
    let config = crate::net::venue::resolve(read)?;
    config.validate(&crate::net::venue::Catalog)?;
    Ok(config)
}

/// The config from a file, a URL with flags, or the built-in default, with flags applied.
///
/// # Errors
/// Conflicting or invalid arguments, or a bad config file.
pub fn build_config(
    config_path: Option<&std::path::Path>,
    args: &RecordArgs,
) -> Result<Config, ConfigError> {
    let usage = |message: &str| ConfigError::Invalid {
        field: "command line".to_owned(),
        message: message.to_owned(),
    };
    let mut config = match (config_path, &args.url) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "give either a config file (-c) or a URL, not both; put the URL in the config as a [[stream]]",
            ));
        }
        (Some(path), None) => {
            if has_stream_flags(args) {
                return Err(usage(
                    "stream options on the command line apply to a URL; with a config file, set them in its [[stream]] entries",
                ));
            }
            load_config(path)?
        }
        (None, Some(spec)) if let Some((preset, topics)) = crate::net::venue::split_spec(spec) => {
            let name = args.name.clone().unwrap_or_else(|| preset.name.to_owned());
            let mut stream = StreamConfig::new(name, "");
            stream.venue = Some(preset.name.to_owned());
            stream.topics = topics;
            // The preset first; the flags given then override it.
            crate::net::venue::apply(&mut stream, &std::collections::BTreeSet::new())?;
            let mut config = Config::default();
            config.streams.push(stream);
            config
        }
        (None, Some(url)) => {
            let parsed = config::validate_url(url, &crate::net::venue::Catalog).map_err(|m| {
                ConfigError::Invalid {
                    field: "URL".to_owned(),
                    message: m,
                }
            })?;
            let name = args.name.clone().unwrap_or_else(|| {
                parsed
                    .host_str()
                    .unwrap_or("stream")
                    .trim_matches(|c| c == '[' || c == ']')
                    .replace(':', "-")
            });
            let mut config = Config::default();
            config.streams.push(StreamConfig::new(name, url.clone()));
            config
        }
        (None, None) => {
            if !args.subscribe.is_empty() {
                return Err(usage("--subscribe needs a URL to subscribe to"));
            }
            config::builtin_default()
        }
    };
    if config_path.is_none() {
        apply_stream_flags(&mut config.streams[0], args)?;
    }
    // One-line mode: a URL (or preset) that is refused for good at once is a typo to report,
    // not a feed to wait for. A config file, and the built-in default feed (the Go streamer's
    // drop-in, run as a daemon), retry.
    if args.url.is_some() {
        config.streams[0].stop_on_refusal = !args.retry;
    }
    if let Some(dir) = &args.output_dir {
        config.output_dir = dir.clone();
    }
    if let Some(p) = &args.status_socket {
        config.status_socket = Some(p.clone());
    }
    if let Some(p) = &args.journal_dir {
        config.journal_dir = Some(p.clone());
    }
    if let Some(i) = args.status_interval {
        config.status_interval = i.0;
    }
    if let Some(addr) = args.metrics_listen {
        config.metrics_listen = Some(addr);
    }
    if let Some(t) = args.threads {
        config.threads = t;
    }
    if let Some(w) = args.wake_coalesce {
        config.wake_coalesce = w.0;
    }
    if let Some(c) = args.queue_capacity {
        config.queue_capacity = c;
    }
    if let Some(w) = args.when_full {
        config.when_full = match w {
            WhenFullArg::Block => WhenFull::Block,
            WhenFullArg::DropNewest => WhenFull::DropNewest,
        };
    }
    if let Some(f) = args.flush_interval {
        config.flush_interval = f;
    }
    if let Some(c) = args.compress {
        config.compress = match c {
            CompressArg::Zstd => config::Compress::Zstd,
            CompressArg::Gzip => config::Compress::Gzip,
            CompressArg::None => config::Compress::None,
        };
    }
    if let Some(l) = &args.log_file {
        config.log_file = Some(l.clone());
    }
    config.validate(&crate::net::venue::Catalog)?;
    Ok(config)
}

fn has_stream_flags(a: &RecordArgs) -> bool {
    !a.subscribe.is_empty()
        || !a.headers.is_empty()
        || a.name.is_some()
        || a.format.is_some()
        || a.ts_source.is_some()
        || a.path.is_some()
        || !a.tags.is_empty()
        || a.rotate.is_some()
        || a.max_lines.is_some()
        || a.max_bytes.is_some()
        || a.ping_interval.is_some()
        || a.pong_timeout.is_some()
        || a.silence_timeout.is_some()
        || a.app_ping.is_some()
        || a.app_ping_interval.is_some()
        || a.app_pong_contains.is_some()
        || a.max_connection_age.is_some()
        || a.handshake_timeout.is_some()
        || a.max_message_size.is_some()
        || a.ca_file.is_some()
        || a.fsync.is_some()
        || a.fsync_interval.is_some()
        || a.insecure
}

fn apply_stream_flags(s: &mut StreamConfig, a: &RecordArgs) -> Result<(), ConfigError> {
    if !a.subscribe.is_empty() {
        s.subscribe = a
            .subscribe
            .iter()
            .map(|m| config::OutMessage(m.clone()))
            .collect();
    }
    for h in &a.headers {
        let (k, v) = h.split_once(':').ok_or_else(|| ConfigError::Invalid {
            field: "--header".to_owned(),
            message: format!(
                "`{}` is not `Name: value`",
                h.split(':').next().unwrap_or("")
            ),
        })?;
        s.headers
            .insert(k.trim().to_owned(), Secret(v.trim().to_owned()));
    }
    if let Some(n) = &a.name {
        s.name = n.clone();
    }
    if let Some(f) = a.format {
        s.format = match f {
            FormatArg::Envelope => Format::Envelope,
            FormatArg::Raw => Format::Raw,
        };
    }
    if let Some(t) = a.ts_source {
        s.ts_source = match t {
            TsSourceArg::Read => TsSource::Read,
            TsSourceArg::Kernel => TsSource::Kernel,
        };
    }
    if let Some(p) = &a.path {
        s.path = p.clone();
    }
    s.tags.extend(a.tags.iter().cloned());
    if let Some(r) = a.rotate {
        s.rotate = r;
    }
    if let Some(n) = a.max_lines {
        s.max_lines = n;
    }
    if let Some(n) = a.max_bytes {
        s.max_bytes = n;
    }
    if let Some(d) = a.ping_interval {
        s.ping_interval = d.0;
    }
    if let Some(d) = a.pong_timeout {
        s.pong_timeout = d.0;
    }
    if let Some(d) = a.silence_timeout {
        s.silence_timeout = d.0;
    }
    if let Some(m) = &a.app_ping {
        s.app_ping = Some(config::OutMessage(m.clone()));
    }
    if let Some(d) = a.app_ping_interval {
        s.app_ping_interval = d.0;
    }
    if let Some(t) = &a.app_pong_contains {
        s.app_pong_contains = Some(t.clone());
    }
    if let Some(d) = a.max_connection_age {
        s.max_connection_age = d.0;
    }
    if let Some(d) = a.handshake_timeout {
        s.handshake_timeout = d;
    }
    if let Some(n) = a.max_message_size {
        s.max_message_size = n;
    }
    if let Some(f) = a.fsync {
        s.fsync = match f {
            FsyncArg::Never => config::Fsync::Never,
            FsyncArg::Interval => config::Fsync::Interval,
            FsyncArg::Always => config::Fsync::Always,
        };
    }
    if let Some(d) = a.fsync_interval {
        s.fsync_interval = d;
    }
    if let Some(c) = &a.ca_file {
        s.ca_file = Some(c.clone());
    }
    if a.insecure {
        s.insecure = true;
    }
    Ok(())
}

/// Logs to the console and/or a file, at INFO (DEBUG with `--debug`; `RUST_LOG` overrides).
/// The console is stderr, or stdout for the Go streamer's JSON config (its `log_to_stdout`);
/// colour only on a terminal, and never with `NO_COLOR` set or `TERM=dumb`. The NATS client
/// logs each of its connection events at INFO (every reconnect attempt during an outage); the
/// fan-out logs the outage itself, so the client is kept to WARN unless `--debug`.
fn init_logging(config: &Config, debug: bool) -> anyhow::Result<()> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt as _};
    let level = if debug {
        "debug"
    } else {
        "info,async_nats=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let file = match &config.log_file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| ConfigError::Invalid {
                    field: "log_file".to_owned(),
                    message: format!("cannot open {}: {source}", path.display()),
                })?,
        ),
        None => None,
    };
    let on_stdout = config.log_console_stdout;
    let console_is_terminal = if on_stdout {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    };
    let console = match (config.log_to_stdout, on_stdout) {
        (false, _) => None,
        (true, true) => Some(BoxMakeWriter::new(std::io::stdout)),
        (true, false) => Some(BoxMakeWriter::new(std::io::stderr)),
    };
    let ansi = file.is_none()
        && console.is_some()
        && colour_wanted(
            console_is_terminal,
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        );
    let writer = match (console, file) {
        (Some(c), Some(f)) => BoxMakeWriter::new(c.and(std::sync::Mutex::new(f))),
        (None, Some(f)) => BoxMakeWriter::new(std::sync::Mutex::new(f)),
        (Some(c), None) => c,
        (None, None) => BoxMakeWriter::new(std::io::sink),
    };
    // A second init (tests, library use) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer)
        .try_init();
    Ok(())
}

/// Whether log lines get ANSI colour: only on a terminal, never with `NO_COLOR` set to
/// anything but the empty string (<https://no-color.org>), nor with `TERM=dumb`.
fn colour_wanted(
    terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_or_a_dumb_term() {
        use std::ffi::OsStr;
        assert!(colour_wanted(
            true,
            None,
            Some(OsStr::new("xterm-256color"))
        ));
        assert!(colour_wanted(true, Some(OsStr::new("")), None));
        assert!(!colour_wanted(false, None, None));
        assert!(!colour_wanted(true, Some(OsStr::new("1")), None));
        assert!(!colour_wanted(true, None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn every_example_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let is_config = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("toml") | Some("json")
            );
            if is_config {
                load_config(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 2, "expected example configs in {}", dir.display());
    }
}
