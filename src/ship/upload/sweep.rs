//! The sweep at start: queues the sealed files not uploaded yet, and finishes what a crash
//! interrupted after an upload (markers whose file is gone, local copies to delete).

use std::path::Path;

use super::UploadQueue;
use super::marker::{delete_local, marker_for};
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
    let mut files = crate::fsutil::closed_files_under(dir);
    files.sort();
    let mut queued = 0;
    for path in files {
        let name = path.to_string_lossy();
        if let Some(data) = name.strip_suffix(MARKER_SUFFIX) {
            let data = Path::new(data);
            if !data.exists() {
                let _ = std::fs::remove_file(&path);
                if delete_local_after {
                    for m in paths_for_sealed(data) {
                        let _ = std::fs::remove_file(m);
                    }
                }
            } else if delete_local_after {
                delete_local(data);
            }
            continue;
        }
        if is_final(&path, codec) && !marker_for(&path).exists() {
            queue.push(path);
            queued += 1;
        }
    }
    if queued > 0 {
        tracing::info!(files = queued, "Queued files not uploaded yet.");
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
        // b was uploaded but not yet deleted; c's file was deleted but not its manifests (both
        // names: the current one and the one older versions wrote).
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
}
