//! The `[upload]` table: upload of sealed files to S3-compatible object storage (the uploader
//! itself is the `upload` module of the pipeline), with its key template.

use std::fmt;
use std::time::Duration;

use object_store::path::Path as Key;
use serde::Deserialize;

use super::tags::{Place, Tags, check_key};
use super::template::{fill_tags, tag_keys};
use super::{byte_size, duration};
use crate::error::ConfigError;

/// Default key template.
pub const DEFAULT_KEY_TEMPLATE: &str = "{stream}/{date}/{host}/{file}";
/// The fields a key template may use (`{tag.KEY}` for any tag key).
pub const KEY_FIELDS: &[&str] = &[
    "{stream}",
    "{date}",
    "{hour}",
    "{host}",
    "{file}",
    "{tag.KEY}",
];
/// Default size from which a file is uploaded in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 << 20;
/// Default part size of a multipart upload (memory per upload in flight).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's largest part, and largest single PUT.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// Default number of files uploaded at once.
pub const DEFAULT_CONCURRENCY: usize = 2;
/// Default first delay after a failed upload.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(1);
/// Default cap of that delay.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(300);

/// The `[upload]` table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadConfig {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// Endpoint of an S3-compatible service (MinIO, R2, GCS, moto); AWS when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region; from the environment (`AWS_DEFAULT_REGION`/`AWS_REGION`) or `us-east-1` when
    /// absent.
    #[serde(default)]
    pub region: Option<String>,
    /// Allow an `http://` endpoint (tests, a MinIO on the same host).
    #[serde(default)]
    pub allow_http: bool,
    /// Key template under the URL's prefix.
    #[serde(default = "default_key")]
    pub key: String,
    /// The value of `{host}`; the host name when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Remove the local file (and its manifest) once its upload is confirmed.
    #[serde(default)]
    pub delete_local_after_upload: bool,
    /// Files of this size or more are uploaded in parts.
    #[serde(
        default = "default_multipart_threshold",
        deserialize_with = "byte_size"
    )]
    pub multipart_threshold: u64,
    /// Size of each part (5 MiB to 5 GiB).
    #[serde(default = "default_part_size", deserialize_with = "byte_size")]
    pub part_size: u64,
    /// Files uploaded at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// First delay after a failed upload.
    #[serde(default = "default_retry_initial", deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Largest delay between retries (they go on until the upload works).
    #[serde(default = "default_retry_max", deserialize_with = "duration")]
    pub retry_max: Duration,
    /// Credentials given from code (never from the config file); `None`: the environment's.
    #[serde(skip)]
    pub credentials: Option<Credentials>,
}

/// Static credentials for code that embeds the recorder (and tests).
#[derive(Clone)]
pub struct Credentials {
    /// Access key id.
    pub key_id: String,
    /// Secret access key.
    pub secret_key: String,
    /// Session token, if any.
    pub token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl fmt::Debug for UploadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadConfig")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("key", &self.key)
            .field("host", &self.host)
            .field("delete_local_after_upload", &self.delete_local_after_upload)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("concurrency", &self.concurrency)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

fn default_key() -> String {
    DEFAULT_KEY_TEMPLATE.to_owned()
}
fn default_multipart_threshold() -> u64 {
    DEFAULT_MULTIPART_THRESHOLD
}
fn default_part_size() -> u64 {
    DEFAULT_PART_SIZE
}
fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}
fn default_retry_initial() -> Duration {
    DEFAULT_RETRY_INITIAL
}
fn default_retry_max() -> Duration {
    DEFAULT_RETRY_MAX
}

impl UploadConfig {
    /// An upload to `url` (`s3://bucket/prefix`) with every default.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            endpoint: None,
            region: None,
            allow_http: false,
            key: default_key(),
            host: None,
            delete_local_after_upload: false,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            credentials: None,
        }
    }

    /// The bucket and the key prefix (no leading or trailing `/`) of [`url`](Self::url).
    ///
    /// # Errors
    /// The URL is not `s3://bucket[/prefix]`; the message says what to write.
    pub fn bucket_and_prefix(&self) -> Result<(String, String), String> {
        let hint = "write s3://bucket or s3://bucket/prefix";
        let u = url::Url::parse(&self.url)
            .map_err(|e| format!("`{}` is not a URL ({e}); {hint}", self.url))?;
        if u.scheme() != "s3" {
            return Err(format!(
                "`{}` has scheme `{}`; {hint} (endpoint = \"...\" selects MinIO, R2 or GCS)",
                self.url,
                u.scheme()
            ));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!(
                "holds credentials; {hint} and give credentials through the environment \
                 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or an instance role"
            ));
        }
        if u.query().is_some() || u.fragment().is_some() || u.port().is_some() {
            return Err(format!(
                "`{}` has a port, query or fragment; {hint}",
                self.url
            ));
        }
        let bucket = u.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(format!("`{}` names no bucket; {hint}", self.url));
        }
        let prefix = u.path().trim_matches('/').to_owned();
        if !prefix.is_empty() && Key::parse(&prefix).is_err() {
            return Err(format!(
                "the prefix `{prefix}` has an empty or `..` segment"
            ));
        }
        Ok((bucket, prefix))
    }

    /// Checks what serde cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `upload.` field and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| ConfigError::Invalid {
            field: format!("upload.{field}"),
            message,
        };
        self.bucket_and_prefix().map_err(|m| bad("url", m))?;
        if let Some(ep) = &self.endpoint {
            let u = url::Url::parse(ep).map_err(|e| {
                bad(
                    "endpoint",
                    format!("`{ep}` is not a URL ({e}); write e.g. \"https://minio.example:9000\""),
                )
            })?;
            match u.scheme() {
                "https" => {}
                "http" if self.allow_http => {}
                "http" => {
                    return Err(bad(
                        "endpoint",
                        format!(
                            "`{ep}` is plain http: set allow_http = true to allow it (test \
                             servers, a MinIO on this host), or use https"
                        ),
                    ));
                }
                other => {
                    return Err(bad(
                        "endpoint",
                        format!("scheme `{other}` is not http or https"),
                    ));
                }
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(bad(
                    "endpoint",
                    "holds credentials; give them through the environment".to_owned(),
                ));
            }
        }
        check_key_template(&self.key).map_err(|m| bad("key", m))?;
        if let Some(h) = &self.host
            && (h.is_empty() || h.contains('/') || h == "." || h == "..")
        {
            return Err(bad(
                "host",
                format!("`{h}` must be non-empty, without `/`, and not `.` or `..`"),
            ));
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(bad(
                "part_size",
                format!(
                    "{} bytes is outside S3's part sizes: write 5MiB to 5GiB (default 8MiB)",
                    self.part_size
                ),
            ));
        }
        if self.multipart_threshold > MAX_PART_SIZE {
            return Err(bad(
                "multipart_threshold",
                "is above 5GiB, S3's largest single upload; write at most \"5GiB\" \
                 (default 16MiB)"
                    .to_owned(),
            ));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(bad("concurrency", "must be 1 to 64 (default 2)".to_owned()));
        }
        if self.retry_initial.is_zero() {
            return Err(bad(
                "retry_initial",
                "must be greater than 0 (default \"1s\")".to_owned(),
            ));
        }
        if self.retry_max < self.retry_initial {
            return Err(bad(
                "retry_max",
                "must be at least retry_initial (default \"5m\")".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks the key template against each stream's tags (all streams' files are uploaded):
    /// each `{tag.KEY}` must be a tag of the stream, with a value that can be a key segment.
    ///
    /// # Errors
    /// `upload.key`, naming the stream, the placeholder and the fix.
    pub fn validate_tags<'a>(
        &self,
        streams: impl IntoIterator<Item = (&'a str, Tags)>,
    ) -> Result<(), ConfigError> {
        if tag_keys(&self.key).next().is_none() {
            return Ok(());
        }
        for (name, tags) in streams {
            fill_tags(&self.key, &tags, Place::UploadKey).map_err(|m| ConfigError::Invalid {
                field: "upload.key".to_owned(),
                message: format!("stream `{name}`: {m}"),
            })?;
        }
        Ok(())
    }
}

fn check_key_template(t: &str) -> Result<(), String> {
    if !t.contains("{file}") {
        return Err(format!(
            "`{t}` lacks {{file}}: without it files of one stream and hour share a key; \
             e.g. \"{DEFAULT_KEY_TEMPLATE}\""
        ));
    }
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let field = after.find('}').map(|c| &after[..=c]).unwrap_or(after);
        if let Some(key) = field
            .strip_prefix("{tag.")
            .and_then(|k| k.strip_suffix('}'))
        {
            check_key(key).map_err(|m| format!("`{t}`: `{field}`: {m}"))?;
        } else if !KEY_FIELDS.contains(&field) {
            return Err(format!(
                "`{t}` has the unknown field `{field}`; the fields are {}",
                KEY_FIELDS.join(", ")
            ));
        }
        rest = &after[field.len()..];
    }
    // Every tag as a plain segment: what the streams' values may be is checked with the streams.
    let sample_tags: Tags = tag_keys(t)
        .map(|k| (k.to_owned(), "t".to_owned()))
        .collect();
    let sample = render_key(
        &fill_tags(t, &sample_tags, Place::UploadKey)?,
        "s",
        0,
        "h",
        "f.jsonl",
    );
    if t.starts_with('/') || t.ends_with('/') || Key::parse(&sample).is_err() {
        return Err(format!(
            "`{t}` makes keys with a leading or trailing `/`, an empty or a `..` segment"
        ));
    }
    Ok(())
}

/// Fills a key template's fields other than `{tag.KEY}` (see
/// [`fill_tags`], which goes first).
pub fn render_key(
    template: &str,
    stream: &str,
    interval_ns: u64,
    host: &str,
    file: &str,
) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(interval_ns as i64);
    template
        .replace("{stream}", stream)
        .replace("{date}", &t.format("%Y-%m-%d").to_string())
        .replace("{hour}", &t.format("%H").to_string())
        .replace("{host}", host)
        .replace("{file}", file)
}

#[cfg(test)]
mod tests {
    use super::super::{Config, NoVenues};
    use super::*;

    #[test]
    fn keys_follow_the_template() {
        // 2026-11-24T10:59:50Z
        let ns = 1_795_517_990_000_000_000;
        assert_eq!(
            render_key(DEFAULT_KEY_TEMPLATE, "feed", ns, "box-1", "a.jsonl.zst"),
            "feed/2026-11-24/box-1/a.jsonl.zst"
        );
        assert_eq!(
            render_key("{host}/{stream}/{date}T{hour}/{file}", "f", ns, "h", "x"),
            "h/f/2026-11-24T10/x"
        );
    }

    #[test]
    fn validation_names_the_field_and_the_fix() {
        let err = |f: &dyn Fn(&mut UploadConfig)| {
            let mut c = UploadConfig::new("s3://bucket/pre/fix");
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(UploadConfig::new("s3://b").validate().is_ok());
        assert_eq!(
            UploadConfig::new("s3://b/x/y/")
                .bucket_and_prefix()
                .unwrap(),
            ("b".to_owned(), "x/y".to_owned())
        );
        let e = err(&|c| c.url = "https://b/x".into());
        assert!(e.contains("upload.url") && e.contains("s3://bucket"), "{e}");
        let e = err(&|c| c.url = "s3://AKIA:secret@b/x".into());
        assert!(e.contains("credentials") && !e.contains("secret@"), "{e}");
        let e = err(&|c| c.endpoint = Some("http://127.0.0.1:9000".into()));
        assert!(
            e.contains("upload.endpoint") && e.contains("allow_http"),
            "{e}"
        );
        let e = err(&|c| c.key = "{stream}/{date}".into());
        assert!(e.contains("upload.key") && e.contains("{file}"), "{e}");
        let e = err(&|c| c.key = "{stream}/{day}/{file}".into());
        assert!(e.contains("unknown field `{day}`"), "{e}");
        let e = err(&|c| c.key = "{stream}//{file}".into());
        assert!(e.contains("empty"), "{e}");
        let e = err(&|c| c.key = "{tag.Region}/{file}".into());
        assert!(
            e.contains("`{tag.Region}`") && e.contains("lower-case"),
            "{e}"
        );
        let e = err(&|c| c.key = "{tag.region/{file}".into());
        assert!(e.contains("upload.key"), "{e}");
        let e = err(&|c| c.part_size = 1 << 20);
        assert!(e.contains("upload.part_size") && e.contains("5MiB"), "{e}");
        let e = err(&|c| c.concurrency = 0);
        assert!(e.contains("upload.concurrency"), "{e}");
        let e = err(&|c| c.retry_max = Duration::from_millis(1));
        assert!(e.contains("upload.retry_max"), "{e}");
        let mut ok = UploadConfig::new("s3://b");
        ok.endpoint = Some("http://127.0.0.1:9000".into());
        ok.allow_http = true;
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn the_upload_table_parses_with_sizes_durations_and_defaults() {
        let c = Config::parse_toml(
            r#"
            [upload]
            url = "s3://b/p"
            endpoint = "http://127.0.0.1:9000"
            allow_http = true
            part_size = "6MiB"
            multipart_threshold = 1048576
            retry_max = "30s"
            [[stream]]
            name = "a"
            url = "wss://h/"
            "#,
        )
        .unwrap()
        .config;
        c.validate(&NoVenues).unwrap();
        let u = c.upload.unwrap();
        assert_eq!(u.part_size, 6 << 20);
        assert_eq!(u.multipart_threshold, 1 << 20);
        assert_eq!(u.retry_max, Duration::from_secs(30));
        assert_eq!(u.retry_initial, DEFAULT_RETRY_INITIAL);
        assert_eq!(u.key, DEFAULT_KEY_TEMPLATE);
        assert_eq!(u.concurrency, DEFAULT_CONCURRENCY);
        assert!(!u.delete_local_after_upload);
        let e = Config::parse_toml("[upload]\nurl = \"s3://b\"\naccess_key = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("access_key"), "{e}");
        let bad = Config::parse_toml(
            "[upload]\nurl = \"s3://b\"\nconcurrency = 0\n[[stream]]\nname = \"a\"\nurl = \"wss://h/\"\n",
        )
        .unwrap()
        .config;
        let e = bad.validate(&NoVenues).unwrap_err().to_string();
        assert!(e.contains("upload.concurrency"), "{e}");
    }

    /// `{tag.KEY}` in the key: every stream must have the tag, with a value that can be a key
    /// segment; the error names the stream.
    #[test]
    fn tags_in_the_key_are_checked_against_every_stream() {
        let config = |tags_a: &str, tags_b: &str| {
            Config::parse_toml(&format!(
                "tags = {{ region = \"eu\" }}\n\
                 [upload]\nurl = \"s3://b\"\nkey = \"{{tag.region}}/{{stream}}/{{file}}\"\n\
                 [[stream]]\nname = \"a\"\nurl = \"wss://h/\"\n{tags_a}\
                 [[stream]]\nname = \"b\"\nurl = \"wss://h/\"\n{tags_b}"
            ))
            .unwrap()
            .config
            .validate(&NoVenues)
            .map_err(|e| e.to_string())
        };
        assert!(config("", "tags = { region = \"us-east-1\" }\n").is_ok());
        let e = config("", "tags = { region = \"us east\" }\n").unwrap_err();
        assert!(
            e.contains("upload.key") && e.contains("stream `b`") && e.contains("segment"),
            "{e}"
        );
        let untagged = Config::parse_toml(
            "[upload]\nurl = \"s3://b\"\nkey = \"{tag.region}/{file}\"\n\
             [[stream]]\nname = \"a\"\nurl = \"wss://h/\"\n",
        )
        .unwrap()
        .config;
        let e = untagged.validate(&NoVenues).unwrap_err().to_string();
        assert!(
            e.contains("upload.key") && e.contains("stream `a`") && e.contains("does not have"),
            "{e}"
        );
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let mut c = UploadConfig::new("s3://b");
        c.credentials = Some(Credentials {
            key_id: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI".into(),
            token: Some("tok".into()),
        });
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("AKIDEXAMPLE") && !shown.contains("wJalr") && !shown.contains("tok\"")
        );
        assert!(shown.contains("***"));
    }
}
