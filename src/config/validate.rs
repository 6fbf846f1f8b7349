//! Validation: what serde cannot check (names, URLs, headers, templates, sizes, intervals and
//! how settings fit together), run before anything is opened or written.
//!
//! Two checks need the venue presets, which config does not know: the "did you mean" for a
//! mistyped preset name, and whether a venue takes a connect token. The caller passes them in
//! as a [`VenueCatalog`] (the `venue` module's `Catalog`), so config imports nothing of the
//! pipeline.

use std::time::Duration;

use super::{
    Compress, Compression, Config, MAX_THREADS, MAX_WAKE_COALESCE, MIN_DISK_BUFFER, ProxySetting,
    ProxyUrl, StreamConfig, Tags, mask_url,
};
use crate::error::ConfigError;

/// What validation asks of the venue presets.
pub trait VenueCatalog {
    /// The preset name closest to a mistyped `name` (a few letters off), for a "did you mean".
    fn closest(&self, name: &str) -> Option<&'static str>;
    /// Whether preset `name` asks a REST endpoint for a connect token before each connect.
    fn takes_token(&self, name: &str) -> bool;
    /// Whether preset `name` has book channels that start from a REST depth snapshot.
    fn takes_snapshots(&self, name: &str) -> bool;
}

/// A catalogue without presets, for checks of URLs that were validated already (or that never
/// name a venue): no "did you mean", no venue takes a connect token.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoVenues;

impl VenueCatalog for NoVenues {
    fn closest(&self, _name: &str) -> Option<&'static str> {
        None
    }

    fn takes_token(&self, _name: &str) -> bool {
        false
    }

    fn takes_snapshots(&self, _name: &str) -> bool {
        false
    }
}

impl Config {
    /// Checks everything serde cannot: at least one stream, names, URLs, headers, templates,
    /// sizes and intervals. Run it after the venue presets filled the streams; `venues` answers
    /// what only the preset table knows (`venue::Catalog`).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the stream, the field and the fix.
    pub fn validate(&self, venues: &dyn VenueCatalog) -> Result<(), ConfigError> {
        if self.streams.is_empty() {
            return Err(invalid(
                "config",
                "no streams: add at least one [[stream]] with a name and a url",
            ));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1"));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(invalid(
                "threads",
                &format!(
                    "must be 1 to {MAX_THREADS} (1, the default, suits up to ~3 M messages/s)"
                ),
            ));
        }
        if self.wake_coalesce.is_some_and(|d| d > MAX_WAKE_COALESCE) {
            return Err(invalid(
                "wake_coalesce",
                &format!(
                    "at most {}ms (the default is 1ms; \"off\" wakes for every message)",
                    MAX_WAKE_COALESCE.as_millis()
                ),
            ));
        }
        match (self.compress, self.compress_level) {
            (Compress::Zstd, Some(l)) if !(1..=22).contains(&l) => {
                return Err(invalid(
                    "compress_level",
                    "zstd levels are 1 to 22 (1 is the default)",
                ));
            }
            (Compress::Gzip, Some(l)) if !(0..=9).contains(&l) => {
                return Err(invalid(
                    "compress_level",
                    "gzip levels are 0 to 9 (6 is the default)",
                ));
            }
            _ => {}
        }
        if self.flush_interval.is_zero() {
            return Err(invalid("flush_interval", "must be greater than 0"));
        }
        if self.disk_buffer < MIN_DISK_BUFFER {
            return Err(invalid(
                "disk_buffer",
                &format!(
                    "{} bytes is too small: it must hold at least two of the writer's 512 KiB \
                     buffers; write e.g. \"1MiB\" or more (the default is \"64MiB\")",
                    self.disk_buffer
                ),
            ));
        }
        if usize::try_from(self.disk_buffer).is_err() {
            return Err(invalid(
                "disk_buffer",
                "is larger than this machine can address; write e.g. \"64MiB\"",
            ));
        }
        if let Some(u) = &self.upload {
            u.validate()?;
        }
        check_tags(&self.tags, "tags")?;
        let mut seen = std::collections::HashSet::new();
        for s in &self.streams {
            validate_name(&s.name)?;
            if !seen.insert(s.name.as_str()) {
                return Err(invalid(
                    &format!("stream `{}`", s.name),
                    "the name is used by more than one stream; names must be unique",
                ));
            }
            s.validate(self.streams.len(), &self.stream_tags(s), venues)?;
        }
        if let Some(u) = &self.upload {
            u.validate_tags(
                self.streams
                    .iter()
                    .map(|s| (s.name.as_str(), self.stream_tags(s))),
            )?;
        }
        if let Some(nats) = &self.nats {
            nats.validate(
                self.streams
                    .iter()
                    .filter(|s| s.nats)
                    .map(|s| (s.name.as_str(), self.stream_tags(s))),
            )?;
        }
        Ok(())
    }
}

impl StreamConfig {
    /// Checks one stream; `tags` are the ones in effect for it (its own over the top-level).
    fn validate(
        &self,
        stream_count: usize,
        tags: &Tags,
        venues: &dyn VenueCatalog,
    ) -> Result<(), ConfigError> {
        if self.url.is_empty() {
            return Err(invalid(
                &format!("stream `{}`: url", self.name),
                "is missing: give the feed's ws:// or wss:// URL, or a `venue` (see `wsrec venues`)",
            ));
        }
        let ctx = format!("stream `{}`", self.name);
        validate_url(&self.url, venues).map_err(|m| invalid(&format!("{ctx}: url"), &m))?;
        for (k, v) in &self.headers {
            let name_ok = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !name_ok {
                return Err(invalid(
                    &format!("{ctx}: headers"),
                    &format!("`{k}` is not a valid HTTP header name"),
                ));
            }
            if v.0.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(invalid(
                    &format!("{ctx}: headers.{k}"),
                    "the value contains a line break or NUL byte",
                ));
            }
        }
        check_tags(tags, &format!("{ctx}: tags"))?;
        super::template::validate_template(&self.path, tags)
            .map_err(|m| invalid(&format!("{ctx}: path"), &m))?;
        if stream_count > 1 && !self.path.contains("{stream}") {
            return Err(invalid(
                &format!("{ctx}: path"),
                "with several streams the path template must contain {stream}, or their files \
                 would collide",
            ));
        }
        if self.rotate < Duration::from_secs(1) {
            return Err(invalid(&format!("{ctx}: rotate"), "must be at least 1s"));
        }
        if self.max_message_size < 1024 {
            return Err(invalid(
                &format!("{ctx}: max_message_size"),
                "must be at least 1 KiB",
            ));
        }
        if self.max_message_size > u32::MAX as u64 {
            return Err(invalid(
                &format!("{ctx}: max_message_size"),
                "must be at most 4 GiB",
            ));
        }
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err(invalid(
                &format!("{ctx}: backoff_initial/backoff_max"),
                "backoff_initial must be > 0 and not above backoff_max",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(invalid(
                &format!("{ctx}: handshake_timeout"),
                "must be greater than 0",
            ));
        }
        if self.app_ping.is_some() && self.app_ping_interval.is_none() {
            return Err(invalid(
                &format!("{ctx}: app_ping_interval"),
                "app_ping is set but app_ping_interval is off; set an interval such as \"20s\"",
            ));
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return Err(invalid(
                &format!("{ctx}: ca_file"),
                &format!("{} is not a readable file", ca.display()),
            ));
        }
        self.validate_network(&ctx, venues)
    }

    /// Checks the compression, proxy and retry fields, and that `headers` leaves the upgrade's
    /// own headers to wsrec.
    fn validate_network(&self, ctx: &str, venues: &dyn VenueCatalog) -> Result<(), ConfigError> {
        const RESERVED: [&str; 5] = [
            "upgrade",
            "connection",
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-extensions",
        ];
        if let Some(k) = self
            .headers
            .keys()
            .find(|k| RESERVED.contains(&k.to_ascii_lowercase().as_str()))
        {
            return Err(invalid(
                &format!("{ctx}: headers"),
                &format!(
                    "`{k}` is set by wsrec for the WebSocket upgrade; remove it (extensions \
                     follow `compression`)"
                ),
            ));
        }
        let deflate_tuned = self.deflate_server_max_window_bits.is_some()
            || self.deflate_server_no_context_takeover;
        if deflate_tuned && self.compression != Compression::Deflate {
            return Err(invalid(
                &format!("{ctx}: compression"),
                "deflate_server_* settings are given but compression is \"none\"; set \
                 compression = \"deflate\" or remove them",
            ));
        }
        if let Some(bits) = self.deflate_server_max_window_bits
            && !(9..=15).contains(&bits)
        {
            return Err(invalid(
                &format!("{ctx}: deflate_server_max_window_bits"),
                &format!("{bits} is out of range; give 9 to 15"),
            ));
        }
        if let Some(ProxySetting::Url(url)) = &self.proxy {
            ProxyUrl::parse(url).map_err(|m| invalid(&format!("{ctx}: proxy"), &m))?;
        }
        if self.retry_after_max.is_zero() {
            return Err(invalid(
                &format!("{ctx}: retry_after_max"),
                "must be greater than 0",
            ));
        }
        if let Some(t) = &self.token_url {
            let takes_token = self.venue.as_deref().is_some_and(|v| venues.takes_token(v));
            if !takes_token {
                return Err(invalid(
                    &format!("{ctx}: token_url"),
                    "is only used by venues that hand out a connect token before each connect \
                     (kucoin-spot, kucoin-futures); remove it",
                ));
            }
            validate_http_url(t).map_err(|m| invalid(&format!("{ctx}: token_url"), &m))?;
        }
        let takes_snapshots = self
            .venue
            .as_deref()
            .is_some_and(|v| venues.takes_snapshots(v));
        for (key, set) in [
            ("snapshot_url", self.snapshot_url.is_some()),
            ("snapshot_depth", self.snapshot_depth.is_some()),
            ("snapshot_interval", self.snapshot_interval.is_some()),
        ] {
            if set && !takes_snapshots {
                return Err(invalid(
                    &format!("{ctx}: {key}"),
                    "is only used by venues whose book channels start from a REST depth \
                     snapshot (`wsrec venues NAME` says which); remove it",
                ));
            }
        }
        if let Some(u) = &self.snapshot_url {
            validate_http_url(u).map_err(|m| invalid(&format!("{ctx}: snapshot_url"), &m))?;
        }
        if self.snapshot_depth == Some(0) {
            return Err(invalid(
                &format!("{ctx}: snapshot_depth"),
                "must be at least 1 (the number of price levels per side the venue returns)",
            ));
        }
        if self
            .snapshot_interval
            .is_some_and(|i| i < Duration::from_secs(1))
        {
            return Err(invalid(
                &format!("{ctx}: snapshot_interval"),
                "must be at least 1s (each snapshot costs request weight of the venue's budget)",
            ));
        }
        Ok(())
    }
}

/// Checks an `http://` or `https://` URL with a host (a REST endpoint).
///
/// # Errors
/// A message naming what is wrong.
pub fn validate_http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!(
            "`{}` is not a valid URL ({e}); expected e.g. https://api.kucoin.com/api/v1/bullet-public",
            mask_url(text)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not supported here; the endpoint is an http:// or https:// URL",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(url)
}

/// Checks a set of tags; `field` names where they are (`tags`, or `stream `a`: tags`).
fn check_tags(tags: &Tags, field: &str) -> Result<(), ConfigError> {
    super::tags::validate_tags(tags).map_err(|(key, message)| match key {
        Some(k) => invalid(&format!("{field}.{k}"), &message),
        None => invalid(field, &message),
    })
}

fn invalid(field: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// Checks a stream name: it becomes part of file names and records.
///
/// # Errors
/// A message saying what is wrong and what is allowed.
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    let field = format!("stream name `{name}`");
    if name.is_empty() {
        return Err(invalid("stream name", "is empty; give every stream a name"));
    }
    if name.len() > 100 {
        return Err(invalid(&field, "is longer than 100 bytes"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(invalid(&field, "contains a path separator (`/` or `\\`)"));
    }
    if name.contains("..") {
        return Err(invalid(&field, "contains `..`"));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(invalid(&field, "must not start with `.` or `-`"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+'))
    {
        return Err(invalid(
            &field,
            "may contain only ASCII letters, digits and `.`, `_`, `-`, `@`, `+`",
        ));
    }
    Ok(())
}

/// Checks a feed URL: `ws://` or `wss://` with a host. Text that is no URL and looks like a
/// venue preset's one-line form gets a "did you mean" from `venues`.
///
/// # Errors
/// A message naming the problem.
pub fn validate_url(url: &str, venues: &dyn VenueCatalog) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| {
        format!(
            "`{}` is not a valid URL ({e}); expected ws://host/path or wss://host/path",
            mask_url(url)
        )
    })?;
    match parsed.scheme() {
        "ws" | "wss" => {}
        // `bybit-linaer:publicTrade.BTCUSDT`: a preset's one-line form with a typo.
        other if !url.contains("://") => {
            return Err(match venues.closest(other) {
                Some(name) => format!(
                    "unknown venue `{other}`; did you mean `{name}`? (`wsrec venues` lists the presets)"
                ),
                None => format!(
                    "`{other}` is neither a venue preset (`wsrec venues` lists them) nor a URL scheme; a feed URL starts with ws:// or wss://"
                ),
            });
        }
        other => {
            return Err(format!(
                "scheme `{other}` is not supported; use ws:// or wss://"
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::super::{DEFAULT_RETRY_AFTER_MAX, TsSource};
    use super::*;

    #[test]
    fn bad_configs_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "bogus = 1\n[[stream]]\nname='a'\nurl='ws://h/'",
                "unknown field `bogus`",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\npingg='1s'",
                "unknown field `pingg`",
            ),
            ("", "no streams"),
            ("[[stream]]\nname='a/b'\nurl='ws://h/'", "path separator"),
            ("[[stream]]\nname='..x'\nurl='ws://h/'", "`..`"),
            (
                "[[stream]]\nname='a'\nurl='http://h/'",
                "use ws:// or wss://",
            ),
            ("[[stream]]\nname='a'\nurl='not a url'", "not a valid URL"),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "must be unique",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nrotate='soon'",
                "not a duration",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nmax_message_size='3XB'",
                "unknown size unit",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nformat='csv'",
                "unknown variant `csv`",
            ),
            (
                "when_full='drop_oldest'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "drop_oldest",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\npath='x.jsonl'\n[[stream]]\nname='b'\nurl='ws://h/'\npath='x.jsonl'",
                "must contain {stream}",
            ),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\npath='../x'",
                "outside the output directory",
            ),
            ("[[stream]]\nname='a'\nurl='ws://h/'\npath='%Q'", "strftime"),
            (
                "[[stream]]\nname='a'\nurl='ws://h/'\nheaders={'Bad Name'='x'}",
                "not a valid HTTP header name",
            ),
            (
                "disk_buffer='64 bananas'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "unknown size unit",
            ),
            (
                "disk_buffer='512KiB'\n[[stream]]\nname='a'\nurl='ws://h/'",
                "disk_buffer: 524288 bytes is too small",
            ),
            (
                "disk_buffer=-1\n[[stream]]\nname='a'\nurl='ws://h/'",
                "disk_buffer",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(
                err.contains(want),
                "config {text:?}: error {err:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn compression_proxy_and_retry_fields() {
        let c = parse("[[stream]]\nname='a'\nurl='wss://h/'").unwrap();
        let s = &c.streams[0];
        assert_eq!(s.compression, Compression::None);
        assert_eq!(s.deflate_server_max_window_bits, None);
        assert!(!s.deflate_server_no_context_takeover);
        assert_eq!(s.proxy, None);
        assert_eq!(s.retry_after_max, DEFAULT_RETRY_AFTER_MAX);
        assert_eq!(s.ts_source, TsSource::Kernel);

        let c = parse(
            r#"
            [[stream]]
            name = "a"
            url = "wss://h/"
            ts_source = "read"
            compression = "deflate"
            deflate_server_max_window_bits = 10
            deflate_server_no_context_takeover = true
            proxy = "http://user:pw@127.0.0.1:3128"
            retry_after_max = "5m"
            [[stream]]
            name = "b"
            url = "ws://h/"
            proxy = "env"
            "#,
        )
        .unwrap();
        let s = &c.streams[0];
        assert_eq!(s.compression, Compression::Deflate);
        assert_eq!(s.ts_source, TsSource::Read);
        assert_eq!(s.deflate_server_max_window_bits, Some(10));
        assert!(s.deflate_server_no_context_takeover);
        assert_eq!(s.retry_after_max, Duration::from_secs(300));
        assert_eq!(c.streams[1].proxy, Some(ProxySetting::Env));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pw@"), "proxy password shown: {dbg}");

        let cases: &[(&str, &str)] = &[
            ("compression='gzip'", "unknown variant `gzip`"),
            ("ts_source='nic'", "expected `read` or `kernel`"),
            (
                "deflate_server_max_window_bits=10",
                "compression is \"none\"",
            ),
            (
                "compression='deflate'\ndeflate_server_max_window_bits=8",
                "9 to 15",
            ),
            ("proxy='socks5://h:1080'", "not supported"),
            ("proxy='http://h'", "no port"),
            ("proxy='http://u:topsecret@h:1/x'", "nothing after the port"),
            ("retry_after_max='off'", "cannot be off"),
            (
                "headers={'Sec-WebSocket-Extensions'='permessage-deflate'}",
                "set by wsrec",
            ),
        ];
        for (field, want) in cases {
            let text = format!("[[stream]]\nname='a'\nurl='ws://h/'\n{field}");
            let err = parse(&text).expect_err(field).to_string();
            assert!(err.contains(want), "{field}: {err:?} lacks {want:?}");
            assert!(!err.contains("topsecret"), "{err}");
        }
    }

    #[test]
    fn wake_coalescing_is_off_by_default_and_bounded() {
        use std::time::Duration;
        let stream = "[[stream]]\nname = \"a\"\nurl = \"ws://h/\"\n";
        // Off unless asked for: it would cost receive times their exactness.
        let c = parse(stream).unwrap();
        assert_eq!(c.wake_coalesce, None);
        assert_eq!(c.wake_coalesce_in_force(), Duration::ZERO);
        assert_eq!(Config::default().wake_coalesce_in_force(), Duration::ZERO);
        let c = parse(&format!("wake_coalesce = \"1ms\"\n{stream}")).unwrap();
        assert_eq!(c.wake_coalesce_in_force(), Duration::from_millis(1));
        let c = parse(&format!("wake_coalesce = \"off\"\n{stream}")).unwrap();
        assert_eq!(c.wake_coalesce_in_force(), Duration::ZERO);
        let c = parse(&format!("wake_coalesce = \"3ms\"\n{stream}")).unwrap();
        assert_eq!(c.wake_coalesce_in_force(), Duration::from_millis(3));
        // Receive times taken when the socket is read would be late by the linger: off.
        let c = parse(&format!(
            "wake_coalesce = \"1ms\"\n{stream}ts_source = \"read\"\n"
        ))
        .unwrap();
        assert_eq!(c.wake_coalesce_in_force(), Duration::ZERO);
        let err = parse(&format!("wake_coalesce = \"20ms\"\n{stream}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wake_coalesce") && err.contains("at most 10ms"),
            "{err}"
        );
    }

    #[test]
    fn threads_default_to_one_and_are_bounded() {
        let stream = "[[stream]]\nname = \"a\"\nurl = \"wss://example.com/ws\"\n";
        assert_eq!(parse(stream).unwrap().threads, 1);
        assert_eq!(parse(&format!("threads = 4\n{stream}")).unwrap().threads, 4);
        for bad in ["0", "257"] {
            let err = parse(&format!("threads = {bad}\n{stream}"))
                .expect_err(bad)
                .to_string();
            assert!(
                err.contains("threads") && err.contains("1 to 256"),
                "{bad}: {err}"
            );
        }
        let err = parse(&format!("threads = -1\n{stream}"))
            .expect_err("-1")
            .to_string();
        assert!(err.contains("threads"), "{err}");
    }
}
