//! What the writer needs to know about one stream: its sink (name, format, path template,
//! rotation and limits, sync policy, counters), made from the stream's config, with the
//! retention scope of its files.

use std::borrow::Cow;
use std::sync::Arc;

use crate::config::template::Placeholder;
use crate::config::{Format, Fsync, StreamConfig};
use crate::observe::stats::StreamStats;
use crate::store::disk::{Retention, SyncPolicy};

/// What the writer needs to know about one stream.
#[derive(Debug)]
pub struct StreamSink {
    /// The stream's name.
    pub name: String,
    /// The name as a JSON string literal, quotes included.
    pub(super) name_json: Vec<u8>,
    /// Line format.
    pub format: Format,
    /// Path template.
    pub template: String,
    /// The stream's tags (all of them: the top-level ones were merged in), for `{tag.KEY}` and
    /// the manifests.
    pub tags: crate::config::Tags,
    /// Rotation interval in ns.
    pub rotate_ns: u64,
    /// Line limit per file (0: none).
    pub max_lines: u64,
    /// Byte limit per file (0: none).
    pub max_bytes: u64,
    /// The stream's counters.
    pub stats: Arc<StreamStats>,
    /// When written data is synced.
    pub sync: SyncPolicy,
    /// What retention may delete after each close.
    pub retention: Option<Arc<Retention>>,
}

impl StreamSink {
    /// The writer's view of a stream config.
    pub fn new(
        config: &StreamConfig,
        stats: Arc<StreamStats>,
        output_dir: &std::path::Path,
    ) -> Self {
        let mut name_json = Vec::new();
        crate::json::write_json_string(config.name.as_bytes(), &mut name_json);
        Self {
            name: config.name.clone(),
            name_json,
            format: config.format,
            template: config.path.clone(),
            tags: config.tags.clone(),
            rotate_ns: config.rotate.as_nanos().max(1) as u64,
            max_lines: config.max_lines,
            max_bytes: config.max_bytes,
            stats,
            sync: match config.fsync {
                Fsync::Never => SyncPolicy::Never,
                Fsync::Interval => SyncPolicy::Interval(config.fsync_interval),
                Fsync::Always => SyncPolicy::Always,
            },
            retention: retention(config, output_dir),
        }
    }
}

/// The retention scope of a stream: the part of its path template before the first field that
/// changes over time, rendered for this stream (`bybit/` for the default layout, `topic_` for the
/// Go layout).
fn retention(config: &StreamConfig, output_dir: &std::path::Path) -> Option<Arc<Retention>> {
    if config.max_age.is_none() && config.max_total_bytes == 0 {
        return None;
    }
    let t = &config.path;
    let cut = [t.find('%'), t.find("{start_unix}")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(t.len());
    // validate() rendered the whole template with these tags; the part before the first time
    // field expands the same way (no `{start_unix}` is left in it).
    let prefix = crate::config::template::expand(&t[..cut], |p| match p {
        Placeholder::Stream => Ok(Cow::Borrowed(config.name.as_str())),
        Placeholder::Tag(key) => {
            crate::config::template::tag_value(&config.tags, key, crate::config::tags::Place::Path)
                .map(Cow::Borrowed)
        }
        Placeholder::StartUnix => Err("unreachable: cut before it".to_owned()),
    })
    .unwrap_or_else(|_| t[..cut].to_owned());
    let dir = match prefix.rfind('/') {
        Some(i) => output_dir.join(&prefix[..i]),
        None => output_dir.to_owned(),
    };
    Some(Arc::new(Retention {
        root: dir,
        prefix,
        output_dir: output_dir.to_owned(),
        max_age: config.max_age,
        max_total_bytes: config.max_total_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: the retention scope of a tagged path is the directory the tag names.
    #[test]
    fn retention_scope_expands_tags() {
        let mut s = StreamConfig::new("feed", "ws://h/");
        s.max_age = Some(std::time::Duration::from_secs(60));
        s.path = "{tag.region}/{stream}/%Y/{stream}-%H.jsonl".to_owned();
        s.tags = [("region".to_owned(), "eu".to_owned())].into();
        let out = std::path::Path::new("/data");
        let r = retention(&s, out).unwrap();
        assert_eq!(r.prefix, "eu/feed/");
        assert_eq!(r.root, out.join("eu/feed"));
        s.path = "{tag.region}-{stream}_{start_unix}.jsonl".to_owned();
        let r = retention(&s, out).unwrap();
        assert_eq!((r.prefix.as_str(), r.root.as_path()), ("eu-feed_", out));
    }
}
