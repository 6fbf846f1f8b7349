//! The sweep at start: queues the sealed files not uploaded yet, and finishes what a crash
//! interrupted after an upload (markers whose file is gone, local copies to delete).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::UploadQueue;
use super::marker::{delete_local, marker_paths};
use crate::config::Compress;
use crate::fsutil::MARKER_SUFFIX;
use crate::store::manifest::paths_for_sealed;

/// Whether `path` is a sealed file in its final form for `codec`. Compressed files always are
/// (also after the codec was changed to `none`); plain `.jsonl` files only without compression.
fn is_final(path: &Path, codec: Compress) -> bool {
    let name = path.to_string_lossy();
    let plain = crate::fsutil::strip_compressed(&name);
    crate::fsutil::is_recorded_name(plain) && (plain.len() < name.len() || codec == Compress::None)
}

/// At start: queues every sealed file in its final form that has no marker, and finishes what
/// a crash interrupted (markers whose file is gone are removed; with `delete_local`, uploaded
/// files still there are deleted). Run it before the compressor's sweep, so files that
/// compressor then finishes reach the queue only once.
pub fn sweep(dir: &Path, codec: Compress, queue: &UploadQueue, delete_local_after: bool) {
    let (markers, mut files): (Vec<PathBuf>, Vec<PathBuf>) = crate::fsutil::closed_files_under(dir)
        .into_iter()
        .partition(|p| p.to_string_lossy().ends_with(MARKER_SUFFIX));
    files.sort();
    // Markers not claimed by a file below belong to files that are gone.
    let mut unclaimed: BTreeSet<PathBuf> = markers.into_iter().collect();
    let mut queued = 0;
    for path in files {
        let name = path.to_string_lossy();
        if !crate::fsutil::is_recorded_name(crate::fsutil::strip_compressed(&name)) {
            continue;
        }
        let mut marked = false;
        for m in marker_paths(&path) {
            marked |= unclaimed.remove(&m);
        }
        if marked {
            if delete_local_after {
                delete_local(&path);
            }
        } else if is_final(&path, codec) {
            queue.push(path);
            queued += 1;
        }
    }
    for marker in unclaimed {
        let _ = std::fs::remove_file(&marker);
        if delete_local_after {
            for m in paths_for_sealed(&marked_file(&marker)) {
                let _ = std::fs::remove_file(m);
            }
        }
    }
    if queued > 0 {
        tracing::info!(files = queued, "Queued files not uploaded yet.");
    }
}

/// A sealed file the marker `marker` may belong to, good for finding its manifests: the old
/// form names the file (`X.jsonl.zst.uploaded`); the current one its stem (`X.zst.uploaded` ->
/// `X.jsonl`, `X.events.zst.uploaded` -> `X.events.jsonl`, whose manifests are those of
/// `X.events.ndjson`).
fn marked_file(marker: &Path) -> PathBuf {
    let name = marker.to_string_lossy();
    let named = name.strip_suffix(MARKER_SUFFIX).unwrap_or(&name);
    let plain = crate::fsutil::strip_compressed(named);
    if crate::fsutil::is_recorded_name(plain) {
        PathBuf::from(named)
    } else {
        PathBuf::from(format!("{plain}{}", crate::fsutil::DATA_EXT))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    use tokio::sync::mpsc;

    use super::*;
    use crate::observe::stats::Stats;

    #[tokio::test]
    async fn sweep_queues_unmarked_files_and_finishes_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("s");
        std::fs::create_dir_all(&d).unwrap();
        for f in [
            "a.jsonl.zst",
            "a.manifest.json",
            "b.jsonl.zst",
            "b.jsonl.zst.uploaded",
            "b.jsonl.manifest.json",
            "c.jsonl.zst.uploaded",
            "c.manifest.json",
            "c.jsonl.manifest.json",
            "d.jsonl",
            "e.jsonl.open",
            "f.jsonl.zst.tmp",
            "g.events.ndjson.zst",
            "h.events.ndjson",
            // Markers under the current names: uploaded, not yet deleted; and files gone.
            "i.jsonl.zst",
            "i.zst.uploaded",
            "i.manifest.json",
            "j.zst.uploaded",
            "j.manifest.json",
            "k.events.gz.uploaded",
            "k.events.manifest.json",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let stats = Arc::new(Stats::new(vec![], 1));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let q = UploadQueue {
            tx,
            stats: stats.clone(),
        };
        sweep(dir.path(), Compress::Zstd, &q, true);
        drop(q);
        let mut queued = vec![];
        while let Some(p) = rx.recv().await {
            queued.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
        // Only the compressed, unmarked files (a sidecar too); `d.jsonl` and `h.events.ndjson`
        // are the compressor's.
        assert_eq!(queued, ["a.jsonl.zst", "g.events.ndjson.zst"]);
        assert_eq!(stats.upload_backlog.load(Relaxed), 2);
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // b and i were uploaded but not yet deleted; c's, j's and k's files were deleted but not
        // their manifests (both names: the current one and the one older versions wrote).
        assert_eq!(
            left,
            [
                "a.jsonl.zst",
                "a.manifest.json",
                "d.jsonl",
                "e.jsonl.open",
                "f.jsonl.zst.tmp",
                "g.events.ndjson.zst",
                "h.events.ndjson"
            ]
        );
    }

    #[tokio::test]
    async fn files_marked_under_either_name_are_not_uploaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let names = [
            "a.jsonl.zst",
            "a.zst.uploaded",
            "b.jsonl.zst",
            "b.jsonl.zst.uploaded",
            "c.jsonl.zst",
            "e.events.ndjson.zst",
            "e.events.zst.uploaded",
        ];
        for f in names {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let stats = Arc::new(Stats::new(vec![], 1));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let q = UploadQueue { tx, stats };
        sweep(d, Compress::Zstd, &q, false);
        drop(q);
        let mut queued = vec![];
        while let Some(p) = rx.recv().await {
            queued.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(queued, ["c.jsonl.zst"]);
        for f in names {
            assert!(d.join(f).exists(), "{f} is kept");
        }
    }
}
