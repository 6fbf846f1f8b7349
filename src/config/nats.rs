//! The `[nats]` table: live fan-out of every recorded line to NATS JetStream (the sink itself
//! is the `nats` module of the pipeline).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::tags::{Place, Tags};
use super::template::fill_tags;
use super::{Secret, WhenFull, byte_size, duration, mask_url};
use crate::error::ConfigError;

/// The `[nats]` table: where and how recorded lines are published. Its `Debug` output masks
/// the URL's user info; token and password are [`Secret`]s.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), `nats://host:4222` (`tls://` for TLS); several separated by commas.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Token authentication.
    #[serde(default)]
    pub token: Option<Secret>,
    /// User name, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, with `user`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Subject template; `{stream}` becomes the stream name.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Create (or reuse) a JetStream stream of this name covering the subjects.
    #[serde(default)]
    pub stream_name: Option<String>,
    /// Publishes whose ack is outstanding, at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Lines accepted and not yet acked, at most (queue and in-flight window).
    #[serde(default = "default_queue_messages")]
    pub queue_messages: usize,
    /// Bytes of those lines, at most.
    #[serde(default = "default_queue_bytes", deserialize_with = "byte_size")]
    pub queue_bytes: u64,
    /// What the sink does while NATS is unreachable (the writer never waits either way).
    #[serde(default = "default_when_full")]
    pub when_full: WhenFull,
    /// How long a publish ack may take before the publish counts as failed and is retried.
    #[serde(default = "default_ack_timeout", deserialize_with = "duration")]
    pub ack_timeout: Duration,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.url.split(',').map(|u| mask_url(u.trim())).collect();
        f.debug_struct("NatsConfig")
            .field("url", &urls.join(","))
            .field("credentials_file", &self.credentials_file)
            .field("token", &self.token)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("subject", &self.subject)
            .field("stream_name", &self.stream_name)
            .field("max_in_flight", &self.max_in_flight)
            .field("queue_messages", &self.queue_messages)
            .field("queue_bytes", &self.queue_bytes)
            .field("when_full", &self.when_full)
            .field("ack_timeout", &self.ack_timeout)
            .finish()
    }
}

fn default_subject() -> String {
    "wsrec.{stream}".to_owned()
}
fn default_max_in_flight() -> usize {
    1024
}
fn default_queue_messages() -> usize {
    100_000
}
fn default_queue_bytes() -> u64 {
    64 << 20
}
fn default_when_full() -> WhenFull {
    WhenFull::DropNewest
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(5)
}

impl NatsConfig {
    /// A config for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            credentials_file: None,
            token: None,
            user: None,
            password: None,
            subject: default_subject(),
            stream_name: None,
            max_in_flight: default_max_in_flight(),
            queue_messages: default_queue_messages(),
            queue_bytes: default_queue_bytes(),
            when_full: default_when_full(),
            ack_timeout: default_ack_timeout(),
        }
    }

    /// The subject of the lines of `stream`, whose tags are `tags`.
    ///
    /// # Errors
    /// A `{tag.KEY}` of the template names a tag the stream does not have, or one whose value
    /// cannot be a subject token ([`NatsConfig::validate`] checks every publishing stream).
    pub fn subject_for(&self, stream: &str, tags: &Tags) -> Result<String, String> {
        Ok(fill_tags(&self.subject, tags, Place::Subject)?.replace("{stream}", stream))
    }

    /// Checks what serde cannot; `streams` are the names and tags of the streams that publish.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `nats.` field and the fix.
    pub fn validate<'a>(
        &self,
        streams: impl IntoIterator<Item = (&'a str, Tags)>,
    ) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            field: format!("nats.{field}"),
            message,
        };
        let urls: Vec<&str> = self.url.split(',').map(str::trim).collect();
        if self.url.trim().is_empty() {
            return Err(invalid("url", "is empty: give nats://host:4222".into()));
        }
        for u in &urls {
            if let Err(e) = u.parse::<async_nats::ServerAddr>() {
                return Err(invalid(
                    "url",
                    format!(
                        "`{}` is not a NATS server address ({e}); expected nats://host:4222",
                        mask_url(u)
                    ),
                ));
            }
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(invalid(
                "user",
                "user and password go together: give both or neither".into(),
            ));
        }
        let methods = [
            self.credentials_file.is_some(),
            self.token.is_some(),
            self.user.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(invalid(
                "credentials_file",
                "give one of credentials_file, token, or user and password".into(),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(invalid("max_in_flight", "must be at least 1".into()));
        }
        if self.queue_messages < self.max_in_flight {
            return Err(invalid(
                "queue_messages",
                format!(
                    "must be at least max_in_flight ({}): in-flight lines count in the queue",
                    self.max_in_flight
                ),
            ));
        }
        if self.queue_bytes < 64 * 1024 {
            return Err(invalid("queue_bytes", "must be at least 65536".into()));
        }
        if self.ack_timeout.is_zero() {
            return Err(invalid("ack_timeout", "must be greater than 0".into()));
        }
        if let Some(name) = &self.stream_name
            && (name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(invalid(
                "stream_name",
                format!(
                    "`{name}`: a JetStream stream name takes ASCII letters, digits, `_` and `-`"
                ),
            ));
        }
        if !self.subject.contains("{stream}") {
            return Err(invalid(
                "subject",
                "must contain {stream}, so each stream gets its own subject".into(),
            ));
        }
        for (s, tags) in streams {
            let subject = self
                .subject_for(s, &tags)
                .map_err(|m| invalid("subject", format!("stream `{s}`: {m}")))?;
            let ok = !subject.split('.').any(|t| {
                t.is_empty() || t == "*" || t == ">" || t.bytes().any(|b| b.is_ascii_whitespace())
            });
            if !ok {
                return Err(invalid(
                    "subject",
                    format!(
                        "`{subject}` (stream `{s}`) is not a valid NATS subject: no empty tokens, \
                         wildcards or spaces"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const STREAMS: &str = "[[stream]]\nname = 'a'\nurl = 'wss://h/ws'\n[[stream]]\nname = 'b'\nurl = 'wss://h/ws'\nnats = false\n";

    fn parse(nats: &str) -> Result<Config, ConfigError> {
        super::super::tests::parse(&format!("{STREAMS}[nats]\n{nats}"))
    }

    #[test]
    fn defaults_and_per_stream_opt_out() {
        let c = parse("url = 'nats://127.0.0.1:4222'").unwrap();
        let n = c.nats.as_ref().unwrap();
        assert_eq!(n.subject_for("a", &Tags::new()).unwrap(), "wsrec.a");
        assert_eq!(n.when_full, WhenFull::DropNewest);
        assert_eq!(n.max_in_flight, 1024);
        assert_eq!(n.ack_timeout, Duration::from_secs(5));
        assert_eq!(n.queue_bytes, 64 << 20);
        let sized = parse("url = 'nats://h:4222'\nqueue_bytes = '1MiB'").unwrap();
        assert_eq!(sized.nats.unwrap().queue_bytes, 1 << 20);
        assert!(c.streams[0].nats);
        assert!(!c.streams[1].nats);
        let none = Config::parse_toml(STREAMS).unwrap().config;
        assert!(none.nats.is_none());
    }

    #[test]
    fn invalid_settings_name_the_field() {
        for (toml, field) in [
            ("url = 'nats://h:4222'\nuser = 'u'", "nats.user"),
            (
                "url = 'nats://h:4222'\ntoken = 't'\nuser = 'u'\npassword = 'p'",
                "nats.credentials_file",
            ),
            ("url = 'nats://h:4222'\nsubject = 'wsrec'", "nats.subject"),
            (
                "url = 'nats://h:4222'\nsubject = 'wsrec.{stream}.>'",
                "nats.subject",
            ),
            (
                "url = 'nats://h:4222'\nstream_name = 'a.b'",
                "nats.stream_name",
            ),
            (
                "url = 'nats://h:4222'\nmax_in_flight = 0",
                "nats.max_in_flight",
            ),
            (
                "url = 'nats://h:4222'\nmax_in_flight = 10\nqueue_messages = 5",
                "nats.queue_messages",
            ),
            ("url = ''", "nats.url"),
        ] {
            match parse(toml) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{toml}"),
                other => panic!("{toml}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("url = 'nats://h:4222'\nsubjekt = 'x'"),
            Err(ConfigError::Parse { .. })
        ));
    }

    /// A tag in the subject: each stream's own value, checked to be one token.
    #[test]
    fn tags_fill_the_subject() {
        let streams = "tags = { region = 'eu' }\n\
                       [[stream]]\nname = 'a'\nurl = 'wss://h/ws'\n\
                       [[stream]]\nname = 'b'\nurl = 'wss://h/ws'\ntags = { region = 'us-east' }\n";
        let nats = "[nats]\nurl = 'nats://h:4222'\nsubject = 'md.{tag.region}.{stream}'\n";
        let c = super::super::tests::parse(&format!("{streams}{nats}")).unwrap();
        let n = c.nats.as_ref().unwrap();
        let subjects: Vec<String> = c
            .streams
            .iter()
            .map(|s| n.subject_for(&s.name, &c.stream_tags(s)).unwrap())
            .collect();
        assert_eq!(subjects, ["md.eu.a", "md.us-east.b"]);
        // A stream without the tag, or with a value that would split the token.
        for (tags, want) in [
            ("", "a tag the stream does not have"),
            ("tags = { region = 'eu.west' }\n", "no `.`"),
            ("tags = { region = 'eu west' }\n", "subject token"),
        ] {
            let toml = format!("{tags}[[stream]]\nname = 'a'\nurl = 'wss://h/ws'\n{nats}");
            match super::super::tests::parse(&toml) {
                Err(ConfigError::Invalid { field, message }) => {
                    assert_eq!(field, "nats.subject", "{toml}");
                    assert!(
                        message.contains("stream `a`") && message.contains(want),
                        "{message}"
                    );
                }
                other => panic!("{toml}: {other:?}"),
            }
        }
        // A stream that does not publish need not have the tag.
        let toml = format!(
            "[[stream]]\nname = 'a'\nurl = 'wss://h/ws'\nnats = false\n\
             [[stream]]\nname = 'b'\nurl = 'wss://h/ws'\ntags = {{ region = 'x' }}\n{nats}"
        );
        assert!(super::super::tests::parse(&toml).is_ok());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = parse(
            "url = 'nats://me:hunter2@h:4222,nats://h2:4222'\nuser = 'u'\npassword = 'pw-s3cret'",
        )
        .unwrap();
        let dbg = format!("{:?}", c.nats.unwrap());
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("pw-s3cret"), "{dbg}");
        let c = parse("url = 'nats://h:4222'\ntoken = 'tok-s3cret'").unwrap();
        assert!(!format!("{c:?}").contains("tok-s3cret"));
    }
}
