//! What an upload leaves next to the file: the marker (`X.jsonl.zst` -> `X.zst.uploaded`, no
//! `.jsonl` in it so data globs never match it; versions before wrote `X.jsonl.zst.uploaded`,
//! still taken; written once the upload is confirmed, with the key and hash, for people) and, with `delete_local_after_upload`, the
//! removal of the file, its manifest and then the marker.

use std::path::{Path, PathBuf};

use object_store::path::Path as Key;

use super::s3::Digest;
use crate::fsutil::MARKER_SUFFIX;
use crate::store::manifest::paths_for_sealed;

/// The marker path of a sealed file (see [`crate::fsutil::marker_name`]).
pub fn marker_for(data: &Path) -> PathBuf {
    crate::fsutil::map_file_name(data, crate::fsutil::marker_name)
}

/// Both paths a sealed file's marker may have: the current one, then the one versions before
/// wrote (`X.jsonl.zst.uploaded`).
pub(super) fn marker_paths(data: &Path) -> [PathBuf; 2] {
    [
        marker_for(data),
        crate::fsutil::with_suffix(data, MARKER_SUFFIX),
    ]
}

/// Writes (and syncs) the marker of `path`, uploaded under `key` (its manifest under
/// `manifest_key`).
pub(super) fn write_marker(
    path: &Path,
    key: &Key,
    sent: Digest,
    manifest_key: Option<&Key>,
) -> std::io::Result<()> {
    use std::io::Write;
    let body = serde_json::json!({
        "key": key.as_ref(),
        "bytes": sent.bytes,
        "xxh3_64": sent.hash_hex(),
        "manifest_key": manifest_key.map(|k| k.as_ref().to_owned()),
    });
    let mut f = std::fs::File::create(marker_for(path))?;
    f.write_all(format!("{body}\n").as_bytes())?;
    f.sync_all()
}

/// Removes an uploaded file, then its manifest, then its marker (a crash in between is
/// finished by [`sweep`](super::sweep)).
pub(super) fn delete_local(path: &Path) {
    let [manifest, old_manifest] = paths_for_sealed(path);
    let [marker, old_marker] = marker_paths(path);
    for p in [path.to_owned(), manifest, old_manifest, marker, old_marker] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "Cannot delete an uploaded file.");
                return;
            }
        }
    }
}
