//! The Go JSONL streamer's JSON config, accepted unchanged, and the config `wsrec record` uses
//! with no arguments (the Go streamer's default feed).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::value::opt_seconds_or_duration;
use super::{
    Compress, Config, Format, OutMessage, StreamConfig, default_output_dir, default_path_template,
};

/// Default topic of the Go streamer (and of `wsrec record` with no arguments).
pub const GO_DEFAULT_TOPIC: &str = "publicTrade.BTCUSDT";
/// Default feed of the Go streamer: Bybit v5 public linear.
pub const GO_DEFAULT_WS_URL: &str = "wss://stream.bybit.com/v5/public/linear";
/// Default buffered-channel size of the Go streamer.
pub const GO_DEFAULT_BUFFER_SIZE: usize = 10_000;
/// Default status log period of the Go streamer.
pub const GO_DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(60);
/// Default status socket of the Go streamer.
pub const GO_DEFAULT_STATUS_SOCKET: &str = "/tmp/jsonl_streamer.sock";
/// The Go streamer's app-level ping and its interval.
pub const GO_PING: &str = r#"{"op":"ping"}"#;
/// Interval of [`GO_PING`].
pub const GO_PING_INTERVAL: Duration = Duration::from_secs(20);

/// The fields of the Go streamer's config.
pub const GO_FIELDS: &[&str] = &[
    "output_dir",
    "topic",
    "ws_url",
    "buffer_size",
    "status_interval",
    "log_file",
    "log_to_stdout",
    "status_socket",
];

/// The Go JSONL streamer's JSON config, accepted unchanged; every field optional. Unknown
/// fields are kept aside (and warned about by [`GoConfig::warnings`]), as Go's `encoding/json`
/// ignores them.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GoConfig {
    /// Directory of the hourly files.
    pub output_dir: Option<PathBuf>,
    /// Bybit topic; also the file name prefix.
    pub topic: Option<String>,
    /// Feed URL.
    pub ws_url: Option<String>,
    /// Channel capacity between network and disk.
    pub buffer_size: Option<usize>,
    /// Status log period: seconds, or a duration string such as `"30s"`.
    #[serde(default, deserialize_with = "opt_seconds_or_duration")]
    pub status_interval: Option<Duration>,
    /// Log file path; empty for none.
    pub log_file: Option<String>,
    /// Whether logs go to stdout.
    pub log_to_stdout: Option<bool>,
    /// Status socket path.
    pub status_socket: Option<String>,
    /// Fields the Go streamer does not have.
    #[serde(flatten)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
}

impl GoConfig {
    /// One warning per unknown field, naming the closest known one when it looks like a typo.
    pub fn warnings(&self) -> Vec<String> {
        self.unknown
            .keys()
            .map(|k| {
                let close = GO_FIELDS
                    .iter()
                    .map(|f| (strsim::jaro_winkler(k, f), f))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, f)| format!("; did you mean `{f}`?"))
                    .unwrap_or_default();
                format!(
                    "the Go streamer's config has no field `{k}`: ignored, as the Go streamer ignores it{close} (fields: {})",
                    GO_FIELDS.join(", ")
                )
            })
            .collect()
    }

    /// The equivalent wsrec config: one stream in `raw` format, Go file layout
    /// `<output_dir>/<topic>_<unix-hour-start>.jsonl`, Bybit subscribe and `{"op":"ping"}` every 20 s.
    pub fn into_config(self) -> Config {
        let topic = self.topic.unwrap_or_else(|| GO_DEFAULT_TOPIC.to_owned());
        let mut stream = StreamConfig::new(
            topic.clone(),
            self.ws_url.unwrap_or_else(|| GO_DEFAULT_WS_URL.to_owned()),
        );
        stream.subscribe = vec![OutMessage(
            serde_json::json!({"op": "subscribe", "args": [topic]}).to_string(),
        )];
        stream.format = Format::Raw;
        stream.path = "{stream}_{start_unix}.jsonl".to_owned();
        stream.app_ping = Some(OutMessage(GO_PING.to_owned()));
        stream.app_ping_interval = Some(GO_PING_INTERVAL);
        Config {
            output_dir: self.output_dir.unwrap_or_else(default_output_dir),
            status_socket: Some(PathBuf::from(
                self.status_socket
                    .unwrap_or_else(|| GO_DEFAULT_STATUS_SOCKET.to_owned()),
            )),
            status_interval: Some(self.status_interval.unwrap_or(GO_DEFAULT_STATUS_INTERVAL)),
            log_file: self.log_file.filter(|s| !s.is_empty()).map(PathBuf::from),
            log_to_stdout: self.log_to_stdout.unwrap_or(true),
            log_console_stdout: true,
            queue_capacity: self.buffer_size.unwrap_or(GO_DEFAULT_BUFFER_SIZE).max(1),
            // The Go streamer leaves its hourly files as plain JSONL.
            compress: Compress::None,
            streams: vec![stream],
            ..Config::default()
        }
    }
}

/// The config `wsrec record` uses with no file and no URL: the Go streamer's default feed
/// (Bybit linear `publicTrade.BTCUSDT`) recorded in wsrec's envelope format into `./data`,
/// with wsrec's defaults (zstd for closed files, logs on stderr).
pub fn builtin_default() -> Config {
    let mut config = GoConfig::default().into_config();
    config.status_socket = None;
    // wsrec's own mode: the console log goes to stderr, closed files are compressed.
    config.log_console_stdout = false;
    config.compress = Compress::default();
    let stream = &mut config.streams[0];
    stream.name = "bybit-linear".to_owned();
    stream.format = Format::Envelope;
    stream.path = default_path_template();
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_config_maps_to_go_layout() {
        let go: GoConfig = serde_json::from_str(
            r#"{"output_dir":"/tmp/x","topic":"orderbook.50.BTCUSDT","ws_url":"ws://127.0.0.1:9/",
                "buffer_size":5,"status_interval":30,"log_file":"","log_to_stdout":true,
                "status_socket":"/tmp/s.sock"}"#,
        )
        .unwrap();
        let c = go.into_config();
        c.validate(&super::super::NoVenues).unwrap();
        let s = &c.streams[0];
        assert_eq!(s.name, "orderbook.50.BTCUSDT");
        assert_eq!(s.format, Format::Raw);
        assert_eq!(s.path, "{stream}_{start_unix}.jsonl");
        assert_eq!(
            s.subscribe[0].as_str(),
            r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}"#
        );
        assert_eq!(s.app_ping.as_ref().unwrap().as_str(), GO_PING);
        assert_eq!(c.queue_capacity, 5);
        assert_eq!(c.status_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.log_file, None);
        assert_eq!(c.status_socket_path(), Some(PathBuf::from("/tmp/s.sock")));
    }

    #[test]
    fn the_builtin_default_is_wsrecs_own_mode() {
        let c = builtin_default();
        assert_eq!(c.compress, Compress::Zstd);
        assert_eq!(c.streams[0].format, Format::Envelope);
        assert_eq!(c.streams[0].path, default_path_template());
        assert!(!c.log_console_stdout);
        // The Go streamer's own config keeps its plain files and stdout.
        let go = GoConfig::default().into_config();
        assert_eq!(go.compress, Compress::None);
        assert!(go.log_console_stdout);
    }

    #[test]
    fn go_config_ignores_unknown_fields_with_a_warning_each() {
        let go: GoConfig =
            serde_json::from_str(r#"{"topicc":"x","topic":"t","colour":true}"#).unwrap();
        assert_eq!(go.topic.as_deref(), Some("t"));
        let w = go.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("no field `colour`"), "{w:?}");
        assert!(!w[0].contains("did you mean"), "{w:?}");
        assert!(w[1].contains("no field `topicc`"), "{w:?}");
        assert!(w[1].contains("did you mean `topic`?"), "{w:?}");
        // The known fields still take their types.
        assert!(serde_json::from_str::<GoConfig>(r#"{"buffer_size":"x"}"#).is_err());
    }
}
