//! One file's upload job: the key from its manifest (or from its place and modification time),
//! the file and then its manifest sent and checked, the marker, the local deletion; retried
//! with backoff until it works, the file is gone, or shutdown.

use std::path::Path;

use bytes::Bytes;
use object_store::path::Path as Key;

use super::event::UploadEvent;
use super::marker::{delete_local, write_marker};
use super::s3::{put_bytes, put_multipart, put_single};
use super::{Ctx, Failure, MISMATCH_TRIES, render_key};
use crate::config::tags::{Place, Tags, check_place_value};
use crate::config::template::{fill_tags, tag_keys};
use crate::net::backoff::Backoff;
use crate::store::manifest::Manifest;
use crate::store::manifest::existing_for_sealed as manifest_for;

/// Uploads one file and its manifest until it works, the file is gone, or shutdown.
pub(super) async fn upload_file(ctx: &Ctx, path: &Path) {
    let mut backoff = Backoff::new(ctx.retry_initial, ctx.retry_max);
    let mut mismatches = 0;
    loop {
        match attempt(ctx, path).await {
            Ok(bytes) => {
                UploadEvent::Uploaded {
                    path,
                    bytes,
                    failures: backoff.attempts(),
                }
                .emit(&ctx.stats);
                return;
            }
            Err(Failure::Gone | Failure::Stopped) => return,
            Err(Failure::Local(e)) => {
                UploadEvent::Unreadable { path, error: &e }.emit(&ctx.stats);
                return;
            }
            Err(Failure::Mismatch(why)) => {
                mismatches += 1;
                let given_up = mismatches >= MISMATCH_TRIES;
                UploadEvent::Mismatch {
                    path,
                    why: &why,
                    tries: mismatches,
                    given_up,
                }
                .emit(&ctx.stats);
                if given_up {
                    return;
                }
            }
            Err(Failure::Remote(e)) => UploadEvent::Failed {
                path,
                error: &e,
                failures: backoff.attempts(),
            }
            .emit(&ctx.stats),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.stop.cancelled() => return,
        }
    }
}

/// Where a file comes from, for its key.
struct Origin {
    stream: String,
    interval_start_ns: u64,
    /// The stream's tags as the file's manifest recorded them (none without a manifest).
    tags: Tags,
}

/// What stands in for a tag of the key template that a file's stream cannot be given.
const UNKNOWN_TAG: &str = "unknown";

/// The key template with each `{tag.KEY}` filled for the file at `path`: the tag as its
/// manifest recorded it, else as the config gives it to the file's stream (a file written
/// before the tag was set), else [`UNKNOWN_TAG`], logged (a stream gone from the config).
fn key_template(ctx: &Ctx, path: &Path, origin: &Origin) -> Result<String, Failure> {
    let configured = ctx.tags.get(&origin.stream);
    let usable = |tags: Option<&Tags>, key: &str| {
        tags.and_then(|t| t.get(key))
            .filter(|v| check_place_value(v, Place::UploadKey).is_ok())
            .cloned()
    };
    let mut tags = Tags::new();
    for key in tag_keys(&ctx.template) {
        let value = usable(Some(&origin.tags), key)
            .or_else(|| usable(configured, key))
            .unwrap_or_else(|| {
                UploadEvent::UntaggedKey {
                    path,
                    stream: &origin.stream,
                    tag: key,
                }
                .emit(&ctx.stats);
                UNKNOWN_TAG.to_owned()
            });
        tags.insert(key.to_owned(), value);
    }
    fill_tags(&ctx.template, &tags, Place::UploadKey)
        .map_err(|m| Failure::Local(std::io::Error::other(m)))
}

/// One try: the file, its manifest, the checks, the marker, the local deletion. Returns the
/// bytes uploaded.
async fn attempt(ctx: &Ctx, path: &Path) -> Result<u64, Failure> {
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Failure::Gone),
        Err(e) => return Err(Failure::Local(e)),
    };
    let manifest_path = manifest_for(path);
    let manifest: Option<(Manifest, Bytes)> = match tokio::fs::read(&manifest_path).await {
        Ok(body) => serde_json::from_slice(&body)
            .ok()
            .map(|m| (m, Bytes::from(body))),
        Err(_) => None,
    };
    let origin = match &manifest {
        Some((m, _)) => Origin {
            stream: m.stream.clone(),
            interval_start_ns: m.interval_start_ns,
            tags: m.tags.clone(),
        },
        None => fallback_origin(ctx, path, &meta),
    };
    let template = key_template(ctx, path, &origin)?;
    let key_for = |file: &Path| -> Result<Key, Failure> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = render_key(
            &template,
            &origin.stream,
            origin.interval_start_ns,
            &ctx.host,
            &name,
        );
        let full = if ctx.prefix.is_empty() {
            rel
        } else {
            format!("{}/{rel}", ctx.prefix)
        };
        Key::parse(&full).map_err(|e| {
            Failure::Local(std::io::Error::other(format!(
                "key `{full}` is invalid: {e}"
            )))
        })
    };
    let key = key_for(path)?;
    let sent = if meta.len() >= ctx.threshold {
        put_multipart(ctx, path, &key).await?
    } else {
        put_single(ctx, path, &key).await?
    };
    let mut total = sent.bytes;
    let mut manifest_key = None;
    if let Some((_, body)) = manifest {
        let k = key_for(&manifest_path)?;
        total += put_bytes(ctx, &k, body).await?.bytes;
        manifest_key = Some(k);
    }
    write_marker(path, &key, sent, manifest_key.as_ref()).map_err(Failure::Local)?;
    if ctx.delete_local {
        delete_local(path);
    }
    Ok(total)
}

/// Stream name and interval of a file without a (readable) manifest: the first directory
/// under the output directory, and the file's modification time.
fn fallback_origin(ctx: &Ctx, path: &Path, meta: &std::fs::Metadata) -> Origin {
    let stream = path
        .strip_prefix(&ctx.output_dir)
        .ok()
        .and_then(|rel| rel.components().next())
        .filter(|_| path.parent() != Some(ctx.output_dir.as_path()))
        .map_or_else(
            || "unknown".to_owned(),
            |c| c.as_os_str().to_string_lossy().into_owned(),
        );
    let ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Origin {
        stream,
        interval_start_ns: ns,
        tags: Tags::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    use object_store::{Attribute, GetOptions, ObjectStore};

    use super::*;
    use crate::ship::upload::marker::marker_for;
    use crate::ship::upload::s3::META_HASH;
    use crate::ship::upload::tests::ctx;

    /// `s/x.jsonl.zst` of `len` bytes and its manifest (stream `s`, 2026-11-24T10:59:50Z).
    /// A sealed `s/x.jsonl.zst` with its manifest under the current name, or (`old`) under the
    /// name versions before wrote.
    fn sealed_file(dir: &Path, len: usize, old: bool) -> (PathBuf, Vec<u8>) {
        std::fs::create_dir_all(dir.join("s")).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let path = dir.join("s/x.jsonl.zst");
        std::fs::write(&path, &data).unwrap();
        let m = Manifest {
            file: "x.jsonl".into(),
            stream: "s".into(),
            interval_start_ns: 1_795_517_990_000_000_000,
            ..Manifest::default()
        };
        let [new_name, old_name] = crate::store::manifest::paths_for_sealed(&path);
        let m_path = if old { old_name } else { new_name };
        std::fs::write(m_path, serde_json::to_vec(&m).unwrap()).unwrap();
        (path, data)
    }

    #[tokio::test]
    async fn a_file_goes_up_single_or_in_parts_checked_marked_then_deleted() {
        for (len, threshold, delete, old) in [
            (1000, 1 << 20, false, false),
            (6 << 20, 0, true, false),
            (1000, 1 << 20, true, true),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (path, data) = sealed_file(dir.path(), len, old);
            let store = Arc::new(object_store::memory::InMemory::new());
            let c = ctx(dir.path(), store.clone(), threshold, delete);
            upload_file(&c, &path).await;
            assert_eq!(c.stats.files_uploaded.load(Relaxed), 1);
            assert_eq!(c.stats.upload_errors.load(Relaxed), 0);
            let key = Key::from("p/s/2026-11-24/h/x.jsonl.zst");
            let got = store.get_opts(&key, GetOptions::default()).await.unwrap();
            let hash = got.attributes.get(&Attribute::Metadata(META_HASH.into()));
            assert_eq!(
                hash.map(|v| v.as_ref().to_owned()),
                Some(format!("{:016x}", twox_hash::XxHash3_64::oneshot(&data)))
            );
            assert_eq!(got.bytes().await.unwrap(), data);
            // A manifest goes up under the name it has on disk.
            let manifest_key = Key::from(if old {
                "p/s/2026-11-24/h/x.jsonl.manifest.json"
            } else {
                "p/s/2026-11-24/h/x.manifest.json"
            });
            assert!(
                store
                    .get_opts(&manifest_key, GetOptions::default())
                    .await
                    .is_ok()
            );
            assert_eq!(path.exists(), !delete);
            assert_eq!(marker_for(&path).exists(), !delete);
            assert_eq!(manifest_for(&path).exists(), !delete);
        }
    }

    /// `{tag.KEY}` in the key: the tag as the manifest recorded it, else as the config gives
    /// the stream, else `unknown`; a recorded value that cannot be a key segment is passed
    /// over the same way.
    #[tokio::test]
    async fn tags_in_the_key_come_from_the_manifest_then_the_config() {
        let tags = |pairs: &[(&str, &str)]| -> Tags {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        for (recorded, configured, want) in [
            (
                tags(&[("region", "eu")]),
                Some(tags(&[("region", "us")])),
                "eu",
            ),
            (Tags::new(), Some(tags(&[("region", "us")])), "us"),
            (
                tags(&[("region", "a/b")]),
                Some(tags(&[("region", "us")])),
                "us",
            ),
            (tags(&[("role", "x")]), None, "unknown"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (path, _) = sealed_file(dir.path(), 100, false);
            let manifest_path = manifest_for(&path);
            let mut m: Manifest =
                serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
            m.tags = recorded.clone();
            std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
            let store = Arc::new(object_store::memory::InMemory::new());
            let mut c = ctx(dir.path(), store.clone(), 1 << 20, false);
            c.template = "{tag.region}/{stream}/{file}".to_owned();
            c.tags.extend(configured.map(|t| ("s".to_owned(), t)));
            upload_file(&c, &path).await;
            assert_eq!(c.stats.files_uploaded.load(Relaxed), 1, "{recorded:?}");
            let mut keys: Vec<String> =
                futures::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.location.to_string())
                    .collect();
            keys.sort();
            assert_eq!(
                keys,
                [
                    format!("p/{want}/s/x.jsonl.zst"),
                    format!("p/{want}/s/x.manifest.json")
                ],
                "{recorded:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_vanished_file_is_dropped_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        let c = ctx(dir.path(), store, 1 << 20, false);
        upload_file(&c, &dir.path().join("s/gone.jsonl.zst")).await;
        assert_eq!(c.stats.files_uploaded.load(Relaxed), 0);
        assert_eq!(c.stats.upload_errors.load(Relaxed), 0);
    }
}
