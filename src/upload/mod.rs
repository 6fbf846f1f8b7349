//! Upload of sealed files to S3-compatible object storage (AWS S3, MinIO, R2, GCS through its S3
//! API), with the `object_store` crate, on tokio tasks of their own.
//!
//! # What and when
//!
//! A file is uploaded once it has its final form: the compressed `X.jsonl.zst` (or `.gz`) after
//! the compressor's verify and rename, or the plain closed `X.jsonl` when compression is off.
//! The compressor (or the disk worker) hands the path to an [`UploadQueue`], an unbounded
//! channel whose `push` never blocks, so neither the network nor the writing path ever waits
//! for the storage. Its manifest sidecar goes up right after it, so a manifest in the bucket
//! means its data file is there and complete. Keys follow a template (see
//! [`DEFAULT_KEY_TEMPLATE`]) under the URL's prefix; the same file always gets the same key, so
//! an upload repeated after a crash overwrites identical bytes.
//!
//! # Checksum
//!
//! While a file is read the uploader hashes it (XXH3-64, the hash the manifests use, several
//! GB/s) and sends the hash and the byte count as object metadata (`x-amz-meta-xxh3-64`,
//! `x-amz-meta-bytes`). After the upload a HEAD of the key must show the same size and the same
//! hash: the object under the key is this file, complete (not an older or partial one). The
//! bytes themselves are checked by the server: requests are signed with the SHA-256 of their
//! body (SigV4, `object_store`'s default, forced on here: unsigned payloads are never used), and
//! S3 refuses a body that does not match. A multipart file is hashed once before the upload (for
//! the metadata) and again while its parts are read; a difference means the file changed and the
//! upload is retried. Re-reading the object would double the traffic; ETags are MD5 only for
//! single-part uploads without KMS, so they are not relied on. A mismatch is retried
//! ([`MISMATCH_TRIES`] times), then counted, logged and the file kept for the next start.
//!
//! # Restarts
//!
//! Nothing fragile is persisted: after a confirmed upload an `X.uploaded` marker is written
//! next to the file (with the key and hash, for people). At start [`sweep`] queues every sealed
//! file without a marker, and finishes what a crash interrupted (with
//! `delete_local_after_upload`: deleting local copies whose marker exists; removing markers
//! whose file is gone). With `delete_local_after_upload` the file and its manifest are removed
//! only after the confirmation, then the marker.
//!
//! # Failures and shutdown
//!
//! Failed requests are retried by `object_store` a few times, then by the uploader forever with
//! exponential backoff and jitter ([`Backoff`], `retry_initial` to `retry_max`): a server that
//! is down only grows the backlog (`upload_backlog` in status and metrics); the first failure of
//! a file is a WARN, the rest are counted (`upload_errors`). At shutdown pending files are left
//! for the next start's sweep; a multipart upload in flight is aborted (S3 completes multipart
//! uploads atomically, so a key never holds a partial object).
//!
//! Credentials come from `object_store`'s chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN`, web identity, ECS task role, EC2 instance metadata), or from code
//! ([`UploadConfig::credentials`]); they are never in the config file and never logged.

use std::collections::HashSet;
use std::hash::Hasher as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    RetryConfig,
};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::Codec;
use crate::error::ConfigError;
use crate::fsutil::MARKER_SUFFIX;
use crate::manifest::Manifest;
use crate::manifest::path_for_sealed as manifest_for;
use crate::stats::Stats;

pub use crate::config::upload::{
    Credentials, DEFAULT_CONCURRENCY, DEFAULT_KEY_TEMPLATE, DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE, DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX, KEY_FIELDS, MAX_PART_SIZE,
    MIN_PART_SIZE, UploadConfig, render_key,
};

/// Uploads of one file whose check failed before it is given up until the next start.
pub const MISMATCH_TRIES: u32 = 3;
/// Object metadata holding the XXH3-64 of the object's bytes.
const META_HASH: &str = "xxh3-64";
/// Object metadata holding the byte count.
const META_BYTES: &str = "bytes";
/// How long an abort of a multipart upload may take at shutdown.
const ABORT_TIMEOUT: Duration = Duration::from_secs(2);

/// The host name as used in keys: characters other than letters, digits, `.`, `_` and `-`
/// become `_`.
pub fn host_name() -> String {
    let clean: String = crate::fsutil::host_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        "unknown-host".to_owned()
    } else {
        clean
    }
}

/// The marker path of a sealed file.
pub fn marker_for(data: &Path) -> PathBuf {
    crate::fsutil::with_suffix(data, MARKER_SUFFIX)
}

/// Whether `path` is a sealed file in its final form for `codec`. Compressed files always are
/// (also after the codec was changed to `none`); plain `.jsonl` files only without compression.
fn is_final(path: &Path, codec: Codec) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".jsonl.zst")
        || name.ends_with(".jsonl.gz")
        || (codec == Codec::None && name.ends_with(".jsonl"))
}

/// A cloneable way to queue sealed files; `push` never blocks.
#[derive(Debug, Clone)]
pub struct UploadQueue {
    tx: mpsc::UnboundedSender<PathBuf>,
    stats: Arc<Stats>,
}

impl UploadQueue {
    /// Queues a sealed file in its final form.
    pub fn push(&self, path: PathBuf) {
        self.stats.upload_backlog.fetch_add(1, Relaxed);
        if self.tx.send(path).is_err() {
            self.stats.upload_backlog.fetch_sub(1, Relaxed);
        }
    }
}

/// Handle to the uploader task.
#[derive(Debug)]
pub struct Uploader {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// What the upload jobs share.
struct Ctx {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    template: String,
    host: String,
    output_dir: PathBuf,
    threshold: u64,
    part_size: u64,
    delete_local: bool,
    retry: (Duration, Duration),
    stats: Arc<Stats>,
    stop: CancellationToken,
}

impl Uploader {
    /// Builds the client (credentials from the environment unless given) and starts the task.
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    /// The configuration is invalid or the client cannot be built from it.
    pub fn spawn(
        cfg: &UploadConfig,
        output_dir: &Path,
        stats: Arc<Stats>,
    ) -> Result<(Uploader, UploadQueue), ConfigError> {
        cfg.validate()?;
        let (bucket, prefix) = cfg.bucket_and_prefix().map_err(|m| ConfigError::Invalid {
            field: "upload.url".to_owned(),
            message: m,
        })?;
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_allow_http(cfg.allow_http)
            // Whatever AWS_* says: requests signed, bodies with them (the server checks them).
            .with_skip_signature(false)
            .with_unsigned_payload(false)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            });
        if let Some(ep) = &cfg.endpoint {
            b = b.with_endpoint(ep);
        }
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(c) = &cfg.credentials {
            b = b
                .with_access_key_id(&c.key_id)
                .with_secret_access_key(&c.secret_key);
            if let Some(t) = &c.token {
                b = b.with_token(t);
            }
        }
        let store = b.build().map_err(|e| ConfigError::Invalid {
            field: "upload".to_owned(),
            message: format!("cannot set up the S3 client: {e}"),
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let ctx = Arc::new(Ctx {
            store: Arc::new(store),
            prefix,
            template: cfg.key.clone(),
            host: cfg.host.clone().unwrap_or_else(host_name),
            output_dir: output_dir.to_owned(),
            threshold: cfg.multipart_threshold,
            part_size: cfg.part_size,
            delete_local: cfg.delete_local_after_upload,
            retry: (cfg.retry_initial, cfg.retry_max),
            stats: stats.clone(),
            stop: stop.clone(),
        });
        let task = tokio::spawn(run(ctx, rx, cfg.concurrency));
        Ok((Uploader { stop, task }, UploadQueue { tx, stats }))
    }

    /// Takes no more files and abandons the uploads in flight (a multipart one is aborted);
    /// returns at once. Files queued from now on wait for the next start.
    pub fn cancel(&self) {
        self.stop.cancel();
    }

    /// [`cancel`](Self::cancel)s and waits until the uploader's tasks are done.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(ctx: Arc<Ctx>, mut rx: mpsc::UnboundedReceiver<PathBuf>, concurrency: usize) {
    let mut jobs = tokio::task::JoinSet::new();
    let mut in_flight: HashSet<PathBuf> = HashSet::new();
    let mut open = true;
    // Until shutdown, or until every queue handle is gone and the last job is done.
    while open || !jobs.is_empty() {
        tokio::select! {
            biased;
            () = ctx.stop.cancelled() => break,
            Some(done) = jobs.join_next(), if !jobs.is_empty() => {
                if let Ok(path) = done {
                    in_flight.remove(&path);
                }
                ctx.stats.upload_backlog.fetch_sub(1, Relaxed);
            }
            next = rx.recv(), if open && jobs.len() < concurrency => match next {
                Some(path) if in_flight.insert(path.clone()) => {
                    let ctx = ctx.clone();
                    jobs.spawn(async move {
                        upload_file(&ctx, &path).await;
                        path
                    });
                }
                Some(_) => {
                    ctx.stats.upload_backlog.fetch_sub(1, Relaxed);
                }
                None => open = false,
            },
        }
    }
    // Jobs see the cancellation too (and abort their multipart uploads); wait for them.
    while jobs.join_next().await.is_some() {}
}

/// Why an attempt failed.
enum Failure {
    /// The local file is gone (retention, or someone else): nothing to do.
    Gone,
    /// Reading the local file failed.
    Local(std::io::Error),
    /// The storage refused or could not be reached.
    Remote(object_store::Error),
    /// The object does not match what was sent, or the file changed while read.
    Mismatch(String),
    /// Shutdown.
    Stopped,
}

impl From<object_store::Error> for Failure {
    fn from(e: object_store::Error) -> Self {
        Failure::Remote(e)
    }
}

/// Uploads one file and its manifest until it works, the file is gone, or shutdown.
async fn upload_file(ctx: &Ctx, path: &Path) {
    let mut backoff = Backoff::new(ctx.retry.0, ctx.retry.1);
    let mut mismatches = 0;
    loop {
        match attempt(ctx, path).await {
            Ok(bytes) => {
                ctx.stats.files_uploaded.fetch_add(1, Relaxed);
                ctx.stats.bytes_uploaded.fetch_add(bytes, Relaxed);
                if backoff.attempts() > 0 {
                    tracing::info!(path = %path.display(), failures = backoff.attempts(), "Uploaded after retries.");
                } else {
                    tracing::debug!(path = %path.display(), bytes, "Uploaded.");
                }
                return;
            }
            Err(Failure::Gone | Failure::Stopped) => return,
            Err(Failure::Local(e)) => {
                ctx.stats.upload_errors.fetch_add(1, Relaxed);
                tracing::error!(path = %path.display(), error = %e, "Cannot read a file to upload; it is kept and tried again at the next start.");
                return;
            }
            Err(Failure::Mismatch(why)) => {
                ctx.stats.upload_errors.fetch_add(1, Relaxed);
                mismatches += 1;
                if mismatches >= MISMATCH_TRIES {
                    tracing::error!(path = %path.display(), %why, tries = mismatches, "Uploaded object does not match the file; the file is kept and tried again at the next start.");
                    return;
                }
            }
            Err(Failure::Remote(e)) => {
                ctx.stats.upload_errors.fetch_add(1, Relaxed);
                if backoff.attempts() == 0 {
                    tracing::warn!(path = %path.display(), error = %e, "Upload failed; retrying with backoff until it works (see upload_backlog).");
                } else {
                    tracing::debug!(path = %path.display(), error = %e, attempt = backoff.attempts() + 1, "Upload failed again.");
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = ctx.stop.cancelled() => return,
        }
    }
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
    let (stream, interval_ns) = match &manifest {
        Some((m, _)) => (m.stream.clone(), m.interval_start_ns),
        None => fallback_fields(ctx, path, &meta),
    };
    let key_for = |file: &Path| -> Result<Key, Failure> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = render_key(&ctx.template, &stream, interval_ns, &ctx.host, &name);
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
    let (bytes, hash) = if meta.len() >= ctx.threshold {
        put_multipart(ctx, path, &key).await?
    } else {
        put_single(ctx, path, &key).await?
    };
    let mut total = bytes;
    let mut manifest_key = None;
    if let Some((_, body)) = manifest {
        let k = key_for(&manifest_path)?;
        let (n, h) = (body.len() as u64, twox_hash::XxHash3_64::oneshot(&body));
        stoppable(
            ctx,
            ctx.store.put_opts(&k, body.into(), put_options(&k, n, h)),
        )
        .await??;
        check(ctx, &k, n, h).await?;
        total += n;
        manifest_key = Some(k);
    }
    write_marker(path, &key, bytes, hash, manifest_key.as_ref()).map_err(Failure::Local)?;
    if ctx.delete_local {
        delete_local(path);
    }
    Ok(total)
}

/// Stream name and interval of a file without a (readable) manifest: the first directory
/// under the output directory, and the file's modification time.
fn fallback_fields(ctx: &Ctx, path: &Path, meta: &std::fs::Metadata) -> (String, u64) {
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
    (stream, ns)
}

fn put_options(key: &Key, bytes: u64, hash: u64) -> PutOptions {
    PutOptions {
        attributes: attributes(key, bytes, hash),
        ..PutOptions::default()
    }
}

fn attributes(key: &Key, bytes: u64, hash: u64) -> Attributes {
    let mut a = Attributes::new();
    a.insert(
        Attribute::Metadata(META_HASH.into()),
        format!("{hash:016x}").into(),
    );
    a.insert(
        Attribute::Metadata(META_BYTES.into()),
        bytes.to_string().into(),
    );
    let name = key.as_ref();
    let content_type = if name.ends_with(".zst") {
        "application/zstd"
    } else if name.ends_with(".gz") {
        "application/gzip"
    } else if name.ends_with(".json") {
        "application/json"
    } else {
        "application/x-ndjson"
    };
    a.insert(Attribute::ContentType, content_type.into());
    a
}

/// Runs `f` unless shutdown comes first.
async fn stoppable<T>(ctx: &Ctx, f: impl std::future::Future<Output = T>) -> Result<T, Failure> {
    tokio::select! {
        v = f => Ok(v),
        () = ctx.stop.cancelled() => Err(Failure::Stopped),
    }
}

fn local(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::NotFound {
        Failure::Gone
    } else {
        Failure::Local(e)
    }
}

/// A file below the multipart threshold: one PUT of its bytes.
async fn put_single(ctx: &Ctx, path: &Path, key: &Key) -> Result<(u64, u64), Failure> {
    let body = Bytes::from(tokio::fs::read(path).await.map_err(local)?);
    let (n, h) = (body.len() as u64, twox_hash::XxHash3_64::oneshot(&body));
    stoppable(
        ctx,
        ctx.store.put_opts(key, body.into(), put_options(key, n, h)),
    )
    .await??;
    check(ctx, key, n, h).await?;
    Ok((n, h))
}

/// A large file: hashed first (for the metadata), then sent in parts read one at a time.
async fn put_multipart(ctx: &Ctx, path: &Path, key: &Key) -> Result<(u64, u64), Failure> {
    let owned = path.to_owned();
    let (n, h) = tokio::task::spawn_blocking(move || hash_file(&owned))
        .await
        .map_err(|e| Failure::Local(std::io::Error::other(e)))?
        .map_err(local)?;
    let mut file = tokio::fs::File::open(path).await.map_err(local)?;
    let opts = PutMultipartOptions {
        attributes: attributes(key, n, h),
        ..PutMultipartOptions::default()
    };
    let mut upload = stoppable(ctx, ctx.store.put_multipart_opts(key, opts)).await??;
    let mut hasher = twox_hash::XxHash3_64::new();
    let mut sent = 0u64;
    let result: Result<(), Failure> = async {
        loop {
            let mut part = Vec::with_capacity(ctx.part_size as usize);
            let read = (&mut file)
                .take(ctx.part_size)
                .read_to_end(&mut part)
                .await
                .map_err(local)?;
            if read == 0 && sent > 0 {
                return Ok(());
            }
            hasher.write(&part);
            sent += read as u64;
            stoppable(ctx, upload.put_part(PutPayload::from(part))).await??;
            if (read as u64) < ctx.part_size {
                return Ok(());
            }
        }
    }
    .await;
    let result = result.and_then(|()| {
        if sent == n && hasher.finish() == h {
            Ok(())
        } else {
            Err(Failure::Mismatch(format!(
                "the file changed while it was uploaded ({n} bytes before, {sent} read)"
            )))
        }
    });
    if let Err(e) = result {
        // Best effort: an upload left behind expires by the bucket's lifecycle rules.
        let _ = tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await;
        return Err(e);
    }
    stoppable(ctx, upload.complete()).await??;
    check(ctx, key, n, h).await?;
    Ok((n, h))
}

fn hash_file(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = twox_hash::XxHash3_64::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            return Ok((n, hasher.finish()));
        }
        hasher.write(&buf[..r]);
        n += r as u64;
    }
}

/// The check after an upload: a HEAD of the key shows our size and hash.
async fn check(ctx: &Ctx, key: &Key, bytes: u64, hash: u64) -> Result<(), Failure> {
    let opts = GetOptions {
        head: true,
        ..GetOptions::default()
    };
    let got = stoppable(ctx, ctx.store.get_opts(key, opts)).await??;
    let want = format!("{hash:016x}");
    let stored = got
        .attributes
        .get(&Attribute::Metadata(META_HASH.into()))
        .map(|v| v.as_ref().to_owned());
    if got.meta.size != bytes || stored.as_deref() != Some(want.as_str()) {
        return Err(Failure::Mismatch(format!(
            "{key}: stored {} bytes with hash {stored:?}, sent {bytes} bytes with hash {want}",
            got.meta.size
        )));
    }
    Ok(())
}

fn write_marker(
    path: &Path,
    key: &Key,
    bytes: u64,
    hash: u64,
    manifest_key: Option<&Key>,
) -> std::io::Result<()> {
    use std::io::Write;
    let body = serde_json::json!({
        "key": key.as_ref(),
        "bytes": bytes,
        "xxh3_64": format!("{hash:016x}"),
        "manifest_key": manifest_key.map(|k| k.as_ref().to_owned()),
    });
    let mut f = std::fs::File::create(marker_for(path))?;
    f.write_all(format!("{body}\n").as_bytes())?;
    f.sync_all()
}

/// Removes an uploaded file, then its manifest, then its marker (a crash in between is
/// finished by [`sweep`]).
fn delete_local(path: &Path) {
    for p in [path.to_owned(), manifest_for(path), marker_for(path)] {
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

/// At start: queues every sealed file in its final form that has no marker, and finishes what
/// a crash interrupted (markers whose file is gone are removed; with `delete_local`, uploaded
/// files still there are deleted). Run it before the compressor's sweep, so files that
/// compressor then finishes reach the queue only once.
pub fn sweep(dir: &Path, codec: Codec, queue: &UploadQueue, delete_local_after: bool) {
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
                    let _ = std::fs::remove_file(manifest_for(data));
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
    use super::*;

    fn ctx(dir: &Path, store: Arc<dyn ObjectStore>, threshold: u64, delete: bool) -> Ctx {
        Ctx {
            store,
            prefix: "p".to_owned(),
            template: DEFAULT_KEY_TEMPLATE.to_owned(),
            host: "h".to_owned(),
            output_dir: dir.to_owned(),
            threshold,
            part_size: MIN_PART_SIZE,
            delete_local: delete,
            retry: (Duration::from_millis(1), Duration::from_millis(2)),
            stats: Arc::new(Stats::new(vec![], 1)),
            stop: CancellationToken::new(),
        }
    }

    /// `s/x.jsonl.zst` of `len` bytes and its manifest (stream `s`, 2026-11-24T10:59:50Z).
    fn sealed_file(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
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
        std::fs::write(manifest_for(&path), serde_json::to_vec(&m).unwrap()).unwrap();
        (path, data)
    }

    #[tokio::test]
    async fn a_file_goes_up_single_or_in_parts_checked_marked_then_deleted() {
        for (len, threshold, delete) in [(1000, 1 << 20, false), (6 << 20, 0, true)] {
            let dir = tempfile::tempdir().unwrap();
            let (path, data) = sealed_file(dir.path(), len);
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
            let manifest_key = Key::from("p/s/2026-11-24/h/x.jsonl.manifest.json");
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

    #[tokio::test]
    async fn the_check_refuses_an_object_that_is_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        let c = ctx(dir.path(), store.clone(), 1 << 20, false);
        let key = Key::from("k");
        let body = Bytes::from_static(b"abc");
        let h = twox_hash::XxHash3_64::oneshot(&body);
        store
            .put_opts(&key, body.clone().into(), put_options(&key, 3, h))
            .await
            .unwrap();
        assert!(check(&c, &key, 3, h).await.is_ok());
        assert!(matches!(
            check(&c, &key, 3, h ^ 1).await,
            Err(Failure::Mismatch(_))
        ));
        assert!(matches!(
            check(&c, &key, 4, h).await,
            Err(Failure::Mismatch(_))
        ));
        // No metadata (written by something else): not ours.
        store
            .put_opts(&key, body.into(), PutOptions::default())
            .await
            .unwrap();
        assert!(matches!(
            check(&c, &key, 3, h).await,
            Err(Failure::Mismatch(_))
        ));
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

    #[tokio::test]
    async fn sweep_queues_unmarked_files_and_finishes_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("s");
        std::fs::create_dir_all(&d).unwrap();
        for f in [
            "a.jsonl.zst",
            "a.jsonl.manifest.json",
            "b.jsonl.zst",
            "b.jsonl.zst.uploaded",
            "b.jsonl.manifest.json",
            "c.jsonl.zst.uploaded",
            "c.jsonl.manifest.json",
            "d.jsonl",
            "e.jsonl.open",
            "f.jsonl.zst.tmp",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let stats = Arc::new(Stats::new(vec![], 1));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let q = UploadQueue {
            tx,
            stats: stats.clone(),
        };
        sweep(dir.path(), Codec::Zstd, &q, true);
        drop(q);
        let mut queued = vec![];
        while let Some(p) = rx.recv().await {
            queued.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
        // Only the compressed, unmarked file; `d.jsonl` is the compressor's.
        assert_eq!(queued, ["a.jsonl.zst"]);
        assert_eq!(stats.upload_backlog.load(Relaxed), 1);
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // b was uploaded but not yet deleted; c's file was deleted but not its manifest.
        assert_eq!(
            left,
            [
                "a.jsonl.manifest.json",
                "a.jsonl.zst",
                "d.jsonl",
                "e.jsonl.open",
                "f.jsonl.zst.tmp"
            ]
        );
    }
}
