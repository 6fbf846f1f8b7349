//! Retention: a stream's oldest closed files deleted past `max_age` or `max_total_bytes`, with
//! their manifests; never an open file or a temporary. Applied by the disk worker after a close.

use std::path::PathBuf;

use crate::fsutil::OPEN_SUFFIX;

/// Which closed files of a stream retention may delete, and when.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Directory to search (recursively).
    pub root: PathBuf,
    /// Only paths (relative to the output directory) starting with this belong to the stream.
    pub prefix: String,
    /// The output directory.
    pub output_dir: PathBuf,
    /// Delete files older than this.
    pub max_age: Option<std::time::Duration>,
    /// Delete the oldest files while the total is above this (0: no limit).
    pub max_total_bytes: u64,
}

/// Deletes a stream's oldest closed files past `max_age` or `max_total_bytes`; never an open
/// file or a temporary. A data file's manifest goes with it.
pub fn apply_retention(r: &Retention) {
    let mut files = Vec::new();
    crate::fsutil::files_under(&r.root, &mut files, |_| true);
    let now = std::time::SystemTime::now();
    let mut candidates: Vec<(std::time::SystemTime, u64, PathBuf)> = files
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            !(name.ends_with(OPEN_SUFFIX)
                || name.ends_with(".tmp")
                || name.ends_with(crate::fsutil::MANIFEST_SUFFIX)
                || name.ends_with(crate::fsutil::MARKER_SUFFIX))
                && p.strip_prefix(&r.output_dir)
                    .is_ok_and(|rel| rel.to_string_lossy().starts_with(&r.prefix))
        })
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((meta.modified().ok()?, meta.len(), p))
        })
        .collect();
    candidates.sort();
    let mut total: u64 = candidates.iter().map(|c| c.1).sum();
    for (modified, len, path) in candidates {
        let too_old = r
            .max_age
            .is_some_and(|age| now.duration_since(modified).is_ok_and(|d| d > age));
        let too_big = r.max_total_bytes > 0 && total > r.max_total_bytes;
        if !(too_old || too_big) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total -= len;
                for m in crate::store::manifest::paths_for_sealed(&path) {
                    let _ = std::fs::remove_file(m);
                }
                tracing::info!(path = %path.display(), bytes = len, reason = if too_old { "max_age" } else { "max_total_bytes" }, "Retention deleted a file.");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Retention could not delete a file.");
            }
        }
    }
}
