//! Finding recording files: classifying a file by its name (codec, `.open`, sidecar, the
//! stream and time its name suggests) and walking the paths given for them, in stream order.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::ReadError;
use crate::fsutil::OPEN_SUFFIX;

/// How a file's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Plain text.
    Plain,
    /// zstd (`.zst`).
    Zstd,
    /// gzip (`.gz`).
    Gzip,
}

/// One recording file, classified by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingFile {
    /// The path as found.
    pub path: PathBuf,
    /// How it is stored.
    pub codec: Codec,
    /// It ends in `.open`: still being written, or left by a recorder that did not stop cleanly.
    pub is_open: bool,
    /// It is a raw-format stream's sidecar (`X.events.ndjson`, before `X.events.jsonl`): events
    /// and unsafe messages.
    pub is_events: bool,
    /// Size on disk when found (for progress).
    pub size: u64,
}

impl RecordingFile {
    /// Classifies `path` by its name (`x.jsonl`, `x.jsonl.zst`, `x.jsonl.gz`, each maybe `.open`).
    pub fn new(path: PathBuf) -> Self {
        let name = file_name(&path);
        let (rest, is_open) = match name.strip_suffix(OPEN_SUFFIX) {
            Some(r) => (r, true),
            None => (name.as_str(), false),
        };
        let codec = if rest.ends_with(".zst") {
            Codec::Zstd
        } else if rest.ends_with(".gz") {
            Codec::Gzip
        } else {
            Codec::Plain
        };
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let is_events = crate::fsutil::is_events_name(logical_name(&name));
        Self {
            path,
            codec,
            is_open,
            is_events,
            size,
        }
    }

    /// True for names a directory walk picks up: `*.jsonl` and `*.events.ndjson`, each maybe
    /// compressed (`.zst`, `.gz`) and maybe with `.open`; never hidden files, temporaries or
    /// manifests.
    pub fn is_recording_name(name: &str) -> bool {
        let logical = logical_name(name);
        !name.starts_with('.') && crate::fsutil::is_recorded_name(logical)
    }

    /// The file name without `.open` and compression suffix (`x.jsonl.zst.open` -> `x.jsonl`).
    pub fn logical_name(&self) -> String {
        logical_name(&file_name(&self.path)).to_owned()
    }

    /// The stream name and interval start the file name suggests, for raw-format files whose
    /// lines carry neither: the default template (`{stream}-%Y%m%dT%H%M%SZ.jsonl`) and the Go
    /// streamer's (`{stream}_{start_unix}.jsonl`) are recognised; otherwise the name's stem.
    pub fn name_hints(&self) -> NameHints {
        name_hints(&self.logical_name())
    }

    /// Ordering within a directory: by base name, then part number (`x.jsonl` before
    /// `x.1.jsonl` before `x.2.jsonl`), data before sidecar.
    pub(super) fn sort_key(&self) -> SortKey {
        let parent = self.path.parent().map(Path::to_owned).unwrap_or_default();
        let logical = self.logical_name();
        let (base, part) = split_part(&logical);
        (
            parent,
            base.to_owned(),
            part,
            self.is_events,
            self.path.clone(),
        )
    }
}

/// Directory, base name, part number, sidecar flag, path.
pub(super) type SortKey = (PathBuf, String, u32, bool, PathBuf);

/// What a file name says about its content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameHints {
    /// Stream name.
    pub stream: String,
    /// Start of the file's interval (ns), when the name holds it.
    pub start_ns: Option<u64>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn logical_name(name: &str) -> &str {
    crate::fsutil::strip_compressed(crate::fsutil::strip_open_name(name))
}

/// `x.3.jsonl` -> (`x`, 3); `x.jsonl` -> (`x`, 0); `x.events.ndjson` and `x.events.jsonl` ->
/// (`x`, 0).
fn split_part(logical: &str) -> (&str, u32) {
    let stem = logical
        .strip_suffix(crate::fsutil::EVENTS_EXT)
        .or_else(|| logical.strip_suffix(crate::fsutil::OLD_EVENTS_EXT))
        .or_else(|| logical.strip_suffix(crate::fsutil::DATA_EXT))
        .unwrap_or(logical);
    if let Some((base, n)) = stem.rsplit_once('.')
        && !n.is_empty()
        && n.len() < 10
        && n.bytes().all(|b| b.is_ascii_digit())
        && let Ok(part) = n.parse()
    {
        return (base, part);
    }
    (stem, 0)
}

pub(super) fn name_hints(logical: &str) -> NameHints {
    let (base, _) = split_part(logical);
    // `{stream}-YYYYmmddTHHMMSSZ`
    if base.len() > 16 && base.is_char_boundary(base.len() - 16) {
        let (head, time) = base.split_at(base.len() - 16);
        if let Some(head) = head.strip_suffix('-')
            && let Ok(t) = chrono::NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%SZ")
            && let Some(ns) = t.and_utc().timestamp_nanos_opt()
        {
            return NameHints {
                stream: head.to_owned(),
                start_ns: u64::try_from(ns).ok(),
            };
        }
    }
    // `{stream}_{start_unix}`
    if let Some((head, secs)) = base.rsplit_once('_')
        && !head.is_empty()
        && (9..=11).contains(&secs.len())
        && secs.bytes().all(|b| b.is_ascii_digit())
        && let Ok(secs) = secs.parse::<u64>()
    {
        return NameHints {
            stream: head.to_owned(),
            start_ns: secs.checked_mul(1_000_000_000),
        };
    }
    NameHints {
        stream: base.to_owned(),
        start_ns: None,
    }
}

/// The recording files under `paths`: files as given (whatever their name), directories
/// walked recursively for recording names. Sorted by directory, then time order within each
/// directory; a file present both plain and compressed (the compressor's last step) is taken
/// once.
///
/// # Errors
/// A path does not exist, or a directory cannot be listed.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<RecordingFile>, ReadError> {
    let mut found = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ReadError::NotFound { path: p.clone() }
            } else {
                ReadError::Open {
                    path: p.clone(),
                    source,
                }
            }
        })?;
        if meta.is_dir() {
            let mut in_dir = Vec::new();
            walk(p, &mut in_dir)?;
            in_dir.sort_by_key(RecordingFile::sort_key);
            found.extend(in_dir);
        } else {
            found.push(RecordingFile::new(p.clone()));
        }
    }
    // The same logical file twice (given twice, or plain and compressed side by side): keep the
    // first form in the order plain, zstd, gzip, open.
    let rank = |f: &RecordingFile| match (f.is_open, f.codec) {
        (false, Codec::Plain) => 0,
        (false, Codec::Zstd) => 1,
        (false, Codec::Gzip) => 2,
        (true, _) => 3,
    };
    let mut best: BTreeMap<(PathBuf, String), (u8, usize)> = BTreeMap::new();
    for (i, f) in found.iter().enumerate() {
        let key = (
            f.path.parent().map(Path::to_owned).unwrap_or_default(),
            f.logical_name(),
        );
        let r = rank(f);
        best.entry(key)
            .and_modify(|e| {
                if r < e.0 {
                    *e = (r, i);
                }
            })
            .or_insert((r, i));
    }
    let keep: std::collections::BTreeSet<usize> = best.values().map(|v| v.1).collect();
    Ok(found
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, f)| f)
        .collect())
}

/// The recording files under `dir` (hidden directories left out), in walk order.
fn walk(dir: &Path, out: &mut Vec<RecordingFile>) -> Result<(), ReadError> {
    crate::fsutil::entries_under(dir, &mut |path, name| {
        if RecordingFile::is_recording_name(name) {
            out.push(RecordingFile::new(path));
        }
    })
    .map_err(|e| ReadError::Open {
        path: e.dir,
        source: e.source,
    })
}
