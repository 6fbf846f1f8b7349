//! The command line, declared with clap, and the parsers of its values; no logic here (the
//! `commands` module turns these types into the options of the library and runs them).
//!
//! The Go JSONL streamer's single-dash flags (`-config`, `-debug`, `-status`) are accepted by
//! [`normalize_go_flags`], which rewrites them to their `--` forms before clap sees them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// wsrec: record WebSocket feeds into time-rotated JSONL files, losing nothing silently.
#[derive(Debug, Parser)]
#[command(name = "wsrec", version, about, long_about = None)]
pub struct Cli {
    /// What to do; with none, `record` (so the Go streamer's `wsrec -config x.json` works).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Config file for the bare `wsrec` (which records): wsrec TOML, or the Go JSONL streamer's
    /// JSON (also `-config`). `record` and `status` take it too; no other command reads one.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Debug logging (also `-debug`, `-v`).
    #[arg(short = 'v', long, visible_alias = "verbose", global = true)]
    pub debug: bool,
    /// No log lines on the console (errors are still printed; a `log_file` still gets them).
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// Print the running recorder's one-line status and exit (the Go streamer's `-status`).
    #[arg(long)]
    pub status: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to WebSocket feeds and record every message (the default command).
    #[command(
        args_override_self = true,
        after_help = "Examples:\n  wsrec record                                            Bybit linear publicTrade.BTCUSDT into ./data\n  wsrec record bybit-linear:publicTrade.BTCUSDT,orderbook.50.BTCUSDT -o data\n  wsrec record wss://example.com/ws --subscribe '{\"op\":\"subscribe\"}' --name feed\n  wsrec record -c wsrec.toml                              many streams from a config file\n  wsrec -config streamer.json                             the Go JSONL streamer's config, unchanged"
    )]
    Record(Box<RecordArgs>),
    /// Show a running recorder's counters, read from its status socket.
    Status(StatusArgs),
    /// Print the records (or only the messages) of recording files and directories.
    #[command(
        after_help = "Examples:\n  wsrec cat data | head\n  wsrec cat --msg -s bybit data                      the messages, byte for byte\n  wsrec cat --merge --from 2026-11-24T10:00:00Z --to 2026-11-24T11:00:00Z data\n  wsrec cat --from 1796459730s data                  Unix times take their unit"
    )]
    Cat(CatArgs),
    /// Write recordings into one Parquet file for DuckDB, polars, pandas: typed columns, every
    /// message byte-for-byte.
    #[command(
        after_help = "Columns: ts (timestamp, ns, UTC), stream, conn, seq, event, msg (the JSON text as received), text, bin, snapshot, detail.\n\nExamples:\n  wsrec export data -o data.parquet\n  wsrec export -s binance --from 2026-11-24 --to 2026-11-25 data -o day.parquet\n  duckdb -c \"SELECT stream, count(*) FROM 'data.parquet' GROUP BY stream\""
    )]
    Export(ExportArgs),
    /// Check a recording: bad lines, torn files, seq gaps, disconnects, exchange sequences,
    /// order books rebuilt and proven.
    #[command(
        after_help = "Examples:\n  wsrec verify data                  exit code 0 only if nothing is wrong\n  wsrec verify --json data | jq .books\n  wsrec verify --no-books data       skip rebuilding the order books"
    )]
    Verify(VerifyArgs),
    /// Per stream and hour: messages, bytes, rate, largest message, gaps.
    Stats(StatsArgs),
    /// Serve a recording as a WebSocket feed, at the original pace or faster.
    Replay(ReplayArgs),
    /// Record real exchange frames from an embedded feed (offline) and show the result.
    Demo(DemoArgs),
    /// List the venue presets: URLs, channels, keepalive, lifetime, limits and budgets.
    Venues(VenuesArgs),
    /// Combine recordings of the same feed by different recorders: fill gaps, drop duplicates.
    Merge(MergeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  wsrec completions bash > ~/.local/share/bash-completion/completions/wsrec\n  wsrec completions zsh > ~/.zfunc/_wsrec\n  wsrec completions fish > ~/.config/fish/completions/wsrec.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(
        after_help = "Examples:\n  wsrec man | man -l -\n  sudo wsrec man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),
    /// Rebuild an order book from a recording: print it at a time, or top-N rows every interval.
    #[command(
        after_help = "Examples:\n  wsrec book data/ --symbol BTC-USDT                  the book at the end of the recording\n  wsrec book data/ --symbol BTC-USDT --at 2026-12-05T10:00:00Z --depth 5\n  wsrec book data/ --symbol BTCUSDT --every 1s --depth 25 --format csv > btcusdt.csv"
    )]
    Book(BookArgs),
}

/// `wsrec completions` options.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `wsrec man` options.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `wsrec.1` and one `wsrec-COMMAND.1` per command into DIR instead of printing
    /// `wsrec.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `wsrec book` output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BookFormatArg {
    /// A table for people (the default without --every).
    Text,
    /// One JSON object per book and moment (the default with --every).
    Jsonl,
    /// One row per book and moment: ts, stream, venue, channel, symbol, bid_price_0, bid_size_0, …
    Csv,
}

/// `wsrec book` options.
#[derive(Debug, Args)]
pub struct BookArgs {
    /// Recording files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The symbol as the venue writes it (BTC-USDT, BTCUSDT, tBTCUSD, XBT/USD; any case).
    #[arg(long, value_name = "SYMBOL")]
    pub symbol: String,
    /// Only this stream (repeatable).
    #[arg(short = 's', long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// The book at TIME (RFC 3339, a UTC date, or Unix time with its unit: 1796459730s, …ms, …us, …ns); default: the end.
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time, conflicts_with = "every")]
    pub at: Option<u64>,
    /// Levels per side.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub depth: usize,
    /// Write the book at every multiple of this interval (1s, 100ms, 1m) through the recording.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<BookFormatArg>,
    /// With --every: only from TIME.
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub from: Option<u64>,
    /// Read only records received before TIME.
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub to: Option<u64>,
}

/// `wsrec venues` options.
#[derive(Debug, Default, Args)]
pub struct VenuesArgs {
    /// Show only this preset, in full, with the sources of its facts.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Print JSON: every preset (or NAME's) with its settings, budgets, notes and sources.
    #[arg(long)]
    pub json: bool,
}

/// Line format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line around each message (default).
    Envelope,
    /// The message bytes verbatim, one per line.
    Raw,
}

/// Receive-time source on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TsSourceArg {
    /// The recorder's clock when it reads the frame.
    Read,
    /// The kernel's receive time of the data (SO_TIMESTAMPING; default).
    Kernel,
}

/// When-full policy on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhenFullArg {
    /// Wait for room: nothing is lost.
    Block,
    /// Drop and count new messages while the queue is full.
    DropNewest,
}

/// fsync policy on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    /// Only when a file is closed.
    Never,
    /// At most --fsync-interval of data unsynced.
    Interval,
    /// After every write.
    Always,
}

/// Compression of closed files on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressArg {
    /// zstd (`.jsonl.zst`).
    Zstd,
    /// gzip (`.jsonl.gz`).
    Gzip,
    /// Keep plain `.jsonl`.
    None,
}

/// A duration that may be `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptDuration(pub Option<Duration>);

fn parse_opt_duration(s: &str) -> Result<OptDuration, String> {
    crate::config::parse_opt_duration(s).map(OptDuration)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_opt_duration(s)?
        .ok_or_else(|| format!("`{s}` cannot be off here; give a duration such as \"10s\""))
}

/// A path that may be empty (meaning "none").
fn parse_path(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    crate::config::tags::parse_tag_arg(s)
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::config::parse_byte_size(s)
}

/// `wsrec record` options.
#[derive(Debug, Default, Args)]
pub struct RecordArgs {
    /// Config file: wsrec TOML, or the Go JSONL streamer's JSON (also `-config`); the flags
    /// below override it.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Feed URL (ws:// or wss://), or a venue preset and its topics such as
    /// `bybit-linear:publicTrade.BTCUSDT,orderbook.50.BTCUSDT` (see `wsrec venues`); records one
    /// stream configured by the flags below.
    #[arg(value_name = "URL|VENUE:TOPICS")]
    pub url: Option<String>,
    /// Message sent after every connect, in order (repeatable). No short form: `-s` means
    /// `--stream` in every command that reads recordings.
    #[arg(long = "subscribe", value_name = "MSG")]
    pub subscribe: Vec<String>,
    /// Output directory [default: ./data].
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Stream name, used in file names [default: the URL's host].
    #[arg(long)]
    pub name: Option<String>,
    /// Line format [default: envelope].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Where `ts` comes from: the kernel's receive time of the data, or the recorder's clock
    /// when it reads the frame [default: kernel].
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub ts_source: Option<TsSourceArg>,
    /// Extra handshake header `Name: value` (repeatable; values never logged).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Path template under the output directory.
    #[arg(long, value_name = "TEMPLATE")]
    pub path: Option<String>,
    /// Tag of the stream, written into its `connected` events and manifests and usable in
    /// --path as `{tag.KEY}` (repeatable; KEY: a-z, 0-9, `_`).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Rotation interval, UTC-aligned [default: 1h].
    #[arg(long, value_parser = parse_duration)]
    pub rotate: Option<Duration>,
    /// Also rotate after this many lines.
    #[arg(long)]
    pub max_lines: Option<u64>,
    /// Also rotate after this many bytes (e.g. 512MiB).
    #[arg(long, value_parser = parse_size)]
    pub max_bytes: Option<u64>,
    /// Protocol ping interval, or `off` [default: 20s].
    #[arg(long, value_parser = parse_opt_duration)]
    pub ping_interval: Option<OptDuration>,
    /// Deadline for a pong or app-level reply, or `off` [default: 15s].
    #[arg(long, value_parser = parse_opt_duration)]
    pub pong_timeout: Option<OptDuration>,
    /// Reconnect after this long without a message, or `off` [default: 60s].
    #[arg(long, value_parser = parse_opt_duration)]
    pub silence_timeout: Option<OptDuration>,
    /// App-level ping message sent every --app-ping-interval.
    #[arg(long, value_name = "MSG")]
    pub app_ping: Option<String>,
    /// App-level ping interval [default: 20s].
    #[arg(long, value_parser = parse_opt_duration)]
    pub app_ping_interval: Option<OptDuration>,
    /// Text that marks a message as the reply to the app-level ping.
    #[arg(long, value_name = "TEXT")]
    pub app_pong_contains: Option<String>,
    /// Planned make-before-break reconnect after this connection age (e.g. 23h).
    #[arg(long, value_parser = parse_opt_duration)]
    pub max_connection_age: Option<OptDuration>,
    /// Handshake deadline [default: 15s].
    #[arg(long, value_parser = parse_duration)]
    pub handshake_timeout: Option<Duration>,
    /// Largest accepted message [default: 64MiB].
    #[arg(long, value_parser = parse_size)]
    pub max_message_size: Option<u64>,
    /// Extra PEM CA certificates to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify TLS certificates (dangerous; logged at every connect).
    #[arg(long)]
    pub insecure: bool,
    /// With a URL or preset: keep retrying when the first connection fails in a way retrying
    /// does not fix (a 4xx such as 401 or 404, a 301 or 308 redirect, a rejected TLS
    /// certificate), instead of exiting with code 2. A config file (-c) always retries.
    #[arg(long)]
    pub retry: bool,
    /// Status socket path, or `""` for none.
    #[arg(long, value_name = "PATH", value_parser = parse_path)]
    pub status_socket: Option<PathBuf>,
    /// Status log period, or `off` [default: 60s].
    #[arg(long, value_parser = parse_opt_duration)]
    pub status_interval: Option<OptDuration>,
    /// Serve Prometheus/OpenMetrics metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen_addr)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Threads for the connections and the writer [default: 1].
    #[arg(long)]
    pub threads: Option<usize>,
    /// How long an idle runtime thread waits before sleeping on the sockets, so one wake-up
    /// takes many quiet connections' messages (receive times of close messages then share a
    /// read's time), or `off` [default: off].
    #[arg(long, value_name = "DURATION", value_parser = parse_opt_duration)]
    pub wake_coalesce: Option<OptDuration>,
    /// Queue capacity between network and disk, in messages [default: 16384].
    #[arg(long)]
    pub queue_capacity: Option<usize>,
    /// What to do when the queue is full [default: block].
    #[arg(long, value_enum)]
    pub when_full: Option<WhenFullArg>,
    /// Longest time data sits in memory before it is written [default: 1s].
    #[arg(long, value_parser = parse_duration)]
    pub flush_interval: Option<Duration>,
    /// Directory of the journal that keeps idle moments' lines safe from a kill until they are
    /// written, or `""` for none [default: /dev/shm].
    #[arg(long, value_name = "DIR", value_parser = parse_path)]
    pub journal_dir: Option<PathBuf>,
    /// When written data is forced to disk [default: interval].
    #[arg(long, value_enum)]
    pub fsync: Option<FsyncArg>,
    /// With --fsync interval: the most time of data left unsynced [default: 1s].
    #[arg(long, value_parser = parse_duration)]
    pub fsync_interval: Option<Duration>,
    /// Compression of closed files [default: zstd].
    #[arg(long, value_enum)]
    pub compress: Option<CompressArg>,
    /// Log file (appended to).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

/// `wsrec status` options.
#[derive(Debug, Default, Args)]
pub struct StatusArgs {
    /// The recorder's output directory (its status socket is DIR/.wsrec.sock), or the socket.
    #[arg(value_name = "DIR", conflicts_with = "socket")]
    pub dir: Option<PathBuf>,
    /// Status socket to query [default: from DIR, --config, else ./data/.wsrec.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The recorder's config file, to find its status socket.
    #[arg(short = 'c', long, value_name = "FILE", conflicts_with_all = ["dir", "socket"])]
    pub config: Option<PathBuf>,
    /// Query again every INTERVAL (default 1s) until Ctrl-C.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s", value_parser = parse_duration)]
    pub watch: Option<Duration>,
    /// Print the raw JSON snapshot.
    #[arg(long)]
    pub json: bool,
}

/// `wsrec cat` options.
#[derive(Debug, Default, Args)]
pub struct CatArgs {
    /// Recording files (.jsonl, .jsonl.zst, .jsonl.gz, also .open) or directories of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print only the messages, byte-for-byte as received (binary decoded), no events; REST
    /// snapshots' bodies are printed too, in their place (see --no-snapshots).
    #[arg(long)]
    pub msg: bool,
    /// Leave out the snapshot lines (REST order-book snapshots the recorder fetched), which are
    /// printed by default, in receive order among the messages.
    #[arg(long)]
    pub no_snapshots: bool,
    /// Only this stream (repeatable).
    #[arg(short = 's', long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Only records received at or after TIME (RFC 3339, a UTC date, or Unix time with its unit: 1796459730s, …ms, …us, …ns).
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub from: Option<u64>,
    /// Only records received before TIME (exclusive).
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub to: Option<u64>,
    /// Merge all streams in receive-time order (default: file by file).
    #[arg(long)]
    pub merge: bool,
}

/// `wsrec export` options.
#[derive(Debug, Default, Args)]
pub struct ExportArgs {
    /// Recording files (.jsonl, .jsonl.zst, .jsonl.gz, also .open) or directories of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The Parquet file to write (new, unless --force).
    #[arg(short = 'o', long, value_name = "FILE", required = true)]
    pub output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Only this stream (repeatable).
    #[arg(short = 's', long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Only records received at or after TIME (RFC 3339, a UTC date, or Unix time with its unit: 1796459730s, …ms, …us, …ns).
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub from: Option<u64>,
    /// Only records received before TIME (exclusive).
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub to: Option<u64>,
    /// Rows of all streams in receive-time order (default: file by file).
    #[arg(long)]
    pub merge: bool,
    /// Leave out the snapshot records (REST order-book snapshots the recorder fetched).
    #[arg(long)]
    pub no_snapshots: bool,
}

/// `wsrec verify` options.
#[derive(Debug, Default, Args)]
pub struct VerifyArgs {
    /// Recording files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip the exchanges' own sequence checks (Binance, Bybit, Coinbase, OKX, Deribit).
    #[arg(long)]
    pub no_venue: bool,
    /// Skip rebuilding the order books (checked by default: every book proven from its
    /// snapshot through every update, checksums compared).
    #[arg(long)]
    pub no_books: bool,
}

/// `wsrec stats` options.
#[derive(Debug, Default, Args)]
pub struct StatsArgs {
    /// Recording files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only this stream (repeatable).
    #[arg(short = 's', long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
}

/// `wsrec replay --speed`: how fast to play.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpeedArg {
    /// The recorded gaps between messages divided by this factor (1 = original pace).
    Factor(f64),
    /// No waiting at all.
    Max,
}

/// Parses `--speed`: a factor such as `1`, `10`, `0.5` or `10x`, or `max`.
///
/// # Errors
/// A message showing the accepted forms.
pub fn parse_speed(s: &str) -> Result<SpeedArg, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(SpeedArg::Max);
    }
    match t.trim_end_matches(['x', 'X']).parse::<f64>() {
        Ok(k) if k.is_finite() && k > 0.0 => Ok(SpeedArg::Factor(k)),
        _ => Err(format!(
            "`{s}` is not a speed: give a factor above 0 (1 = original pace, 10 = ten times faster) or `max`"
        )),
    }
}

/// `wsrec replay` options.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Recording files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Address to serve on; clients connect to `ws://ADDR/` (all streams) or `ws://ADDR/<stream>`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: std::net::SocketAddr,
    /// Pace: a factor (1 = as recorded, 10 = ten times faster) or `max`.
    #[arg(long, value_name = "N|max", default_value = "1", value_parser = parse_speed, allow_negative_numbers = true)]
    pub speed: SpeedArg,
    /// Start over at the end instead of closing the connection.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Only this stream (repeatable).
    #[arg(short = 's', long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Only records received at or after TIME (RFC 3339, a UTC date, or Unix time with its unit: 1796459730s, …ms, …us, …ns).
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub from: Option<u64>,
    /// Only records received before TIME (exclusive).
    #[arg(long, value_name = "TIME", value_parser = crate::tools::parse_time)]
    pub to: Option<u64>,
}

impl Default for ReplayArgs {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9000)),
            speed: SpeedArg::Factor(1.0),
            looping: false,
            streams: Vec::new(),
            from: None,
            to: None,
        }
    }
}

/// `wsrec merge` options.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Recordings of the same feed by different recorders (directories or files), preferred
    /// first: where several have a message, the first one's copy is kept.
    #[arg(required = true, num_args = 2.., value_name = "PATH")]
    pub inputs: Vec<PathBuf>,
    /// Output directory: new or empty (see --force).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR", required = true)]
    pub output: PathBuf,
    /// Copies of one message received this far apart by two recorders are the same message.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub tolerance: Duration,
    /// Find duplicates by bytes only, not by the exchanges' sequence numbers.
    #[arg(long)]
    pub no_venue: bool,
    /// Write into a non-empty output directory (files of the same name are replaced).
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How long `wsrec demo` records by default.
pub const DEMO_DURATION: Duration = Duration::from_secs(5);
/// Where `wsrec demo` records by default.
pub const DEMO_DIR: &str = "./wsrec-demo";

/// `wsrec demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to record.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Where to record.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR", default_value = DEMO_DIR)]
    pub output_dir: PathBuf,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            duration: DEMO_DURATION,
            output_dir: PathBuf::from(DEMO_DIR),
        }
    }
}

/// Rewrites the Go streamer's single-dash long flags (`-config x`, `-config=x`, `-debug`,
/// `-status`) to the `--` forms clap understands; every other argument is left alone.
pub fn normalize_go_flags<I: IntoIterator<Item = std::ffi::OsString>>(
    args: I,
) -> Vec<std::ffi::OsString> {
    args.into_iter()
        .map(|a| {
            let Some(s) = a.to_str() else { return a };
            for flag in ["config", "debug", "status"] {
                let single = format!("-{flag}");
                if s == single {
                    return format!("--{flag}").into();
                }
                if let Some(v) = s.strip_prefix(&format!("{single}=")) {
                    return format!("--{flag}={v}").into();
                }
            }
            a
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Cli {
        let args = normalize_go_flags(args.iter().map(std::ffi::OsString::from));
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn go_flags_are_accepted() {
        let cli = parse(&["wsrec", "-config", "c.json", "-debug"]);
        assert_eq!(cli.config, Some(PathBuf::from("c.json")));
        assert!(cli.debug);
        assert!(cli.command.is_none());
        let cli = parse(&["wsrec", "-status", "-config=c.json"]);
        assert!(cli.status);
        assert_eq!(cli.config, Some(PathBuf::from("c.json")));
        let cli = parse(&["wsrec", "record", "-config", "c.json"]);
        let Some(Command::Record(args)) = cli.command else {
            panic!("not record: {cli:?}");
        };
        assert_eq!(args.config, Some(PathBuf::from("c.json")));
    }

    #[test]
    fn dash_s_means_stream_in_every_command_that_has_it() {
        for cmd in ["cat", "stats", "replay", "book", "export"] {
            let mut args = vec!["wsrec", cmd, "-s", "x", "dir"];
            if cmd == "book" {
                args.extend(["--symbol", "BTCUSDT"]);
            }
            if cmd == "export" {
                args.extend(["-o", "x.parquet"]);
            }
            let cli = parse(&args);
            let streams = match cli.command {
                Some(Command::Cat(a)) => a.streams,
                Some(Command::Stats(a)) => a.streams,
                Some(Command::Replay(a)) => a.streams,
                Some(Command::Book(a)) => a.streams,
                Some(Command::Export(a)) => a.streams,
                _ => unreachable!(),
            };
            assert_eq!(streams, ["x"], "{cmd}");
        }
        // `record` has no `-s` (it once meant --subscribe there).
        let args =
            normalize_go_flags(["wsrec", "record", "-s", "{}"].map(std::ffi::OsString::from));
        assert!(Cli::try_parse_from(args).is_err());
        let cli = parse(&["wsrec", "record", "--subscribe", "{}"]);
        let Some(Command::Record(r)) = cli.command else {
            unreachable!()
        };
        assert_eq!(r.subscribe, ["{}"]);
    }

    #[test]
    fn quiet_and_verbose_are_global() {
        for args in [
            &["wsrec", "-q", "record"][..],
            &["wsrec", "record", "--quiet"],
            &["wsrec", "cat", "-q", "d"],
        ] {
            assert!(parse(args).quiet, "{args:?}");
        }
        assert!(parse(&["wsrec", "verify", "-v", "d"]).debug);
        assert!(parse(&["wsrec", "--verbose", "record"]).debug);
        assert!(!parse(&["wsrec", "record"]).quiet);
    }

    #[test]
    fn speeds_parse() {
        assert_eq!(parse_speed("1"), Ok(SpeedArg::Factor(1.0)));
        assert_eq!(parse_speed("10x"), Ok(SpeedArg::Factor(10.0)));
        assert_eq!(parse_speed("0.5"), Ok(SpeedArg::Factor(0.5)));
        assert_eq!(parse_speed("MAX"), Ok(SpeedArg::Max));
        for bad in ["0", "-1", "fast", "inf", "NaN", ""] {
            assert!(parse_speed(bad).is_err(), "{bad}");
        }
        // A negative factor reaches the speed check instead of being taken for a flag.
        let e = Cli::try_parse_from(["wsrec", "replay", "d", "--speed", "-1"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("is not a speed"), "{e}");
    }

    #[test]
    fn one_line_mode_flags() {
        let cli = parse(&[
            "wsrec",
            "record",
            "wss://h/ws",
            "--subscribe",
            "a",
            "--subscribe",
            "b",
            "-o",
            "d",
            "--format",
            "raw",
            "--name",
            "n",
            "--ping-interval",
            "off",
        ]);
        let Some(Command::Record(r)) = cli.command else {
            panic!("not record")
        };
        assert_eq!(r.url.as_deref(), Some("wss://h/ws"));
        assert_eq!(r.subscribe, ["a", "b"]);
        assert_eq!(r.format, Some(FormatArg::Raw));
        assert_eq!(r.ping_interval, Some(OptDuration(None)));
    }
}
