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
//! Nothing fragile is persisted: after a confirmed upload a marker is written next to the file
//! (`X.jsonl.zst` -> `X.zst.uploaded`, with the key and hash, for people; markers named
//! `X.jsonl.zst.uploaded` by versions before count as well). At start [`sweep`] queues every sealed
//! file without a marker, and finishes what a crash interrupted (with
//! `delete_local_after_upload`: deleting local copies whose marker exists; removing markers
//! whose file is gone). With `delete_local_after_upload` the file and its manifest are removed
//! only after the confirmation, then the marker.
//!
//! # Failures and shutdown
//!
//! Failed requests are retried by `object_store` a few times, then by the uploader forever with
//! exponential backoff and jitter ([`Backoff`](crate::net::backoff::Backoff), `retry_initial` to
//! `retry_max`): a server that is down only grows the backlog (`upload_backlog` in status and
//! metrics); the first failure of a file is a WARN, the rest are counted (`upload_errors`). At
//! shutdown pending files are left for the next start's sweep; a multipart upload in flight is
//! aborted (S3 completes multipart uploads atomically, so a key never holds a partial object).
//!
//! Credentials come from `object_store`'s chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN`, web identity, ECS task role, EC2 instance metadata), or from code
//! ([`UploadConfig::credentials`]); they are never in the config file and never logged.
//!
//! The parts: this file (the queue, the uploader task and its concurrent jobs), `job` (one
//! file's upload, retried), `s3` (the client, the PUTs, the check, the metadata), `marker` (the
//! marker and the local deletion after an upload), `sweep` (what is queued at start) and
//! `event` (what happens to a job: its counters and log lines).

mod event;
mod job;
mod marker;
mod s3;
mod sweep;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use object_store::ObjectStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Tags;
use crate::error::ConfigError;
use crate::observe::stats::Stats;

pub use crate::config::upload::{
    Credentials, DEFAULT_CONCURRENCY, DEFAULT_KEY_TEMPLATE, DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE, DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX, KEY_FIELDS, MAX_PART_SIZE,
    MIN_PART_SIZE, UploadConfig, render_key,
};
pub use marker::marker_for;
pub use sweep::sweep;

/// Uploads of one file whose check failed before it is given up until the next start.
pub const MISMATCH_TRIES: u32 = 3;

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
    /// Each stream's tags in the config, for the key template's `{tag.KEY}` of files whose
    /// manifest lacks them.
    tags: HashMap<String, Tags>,
    output_dir: PathBuf,
    threshold: u64,
    part_size: u64,
    delete_local: bool,
    /// The first delay after a failure, and the longest.
    retry_initial: Duration,
    retry_max: Duration,
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
        tags: HashMap<String, Tags>,
        stats: Arc<Stats>,
    ) -> Result<(Uploader, UploadQueue), ConfigError> {
        cfg.validate()?;
        let (bucket, prefix) = cfg.bucket_and_prefix().map_err(|m| ConfigError::Invalid {
            field: "upload.url".to_owned(),
            message: m,
        })?;
        let store = s3::client(cfg, &bucket)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let ctx = Arc::new(Ctx {
            store,
            prefix,
            template: cfg.key.clone(),
            host: cfg.host.clone().unwrap_or_else(host_name),
            tags,
            output_dir: output_dir.to_owned(),
            threshold: cfg.multipart_threshold,
            part_size: cfg.part_size,
            delete_local: cfg.delete_local_after_upload,
            retry_initial: cfg.retry_initial,
            retry_max: cfg.retry_max,
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

/// Takes files from the queue and runs up to `concurrency` upload jobs at once (one per file).
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
                        job::upload_file(&ctx, &path).await;
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

impl Failure {
    /// A local read error: the file is gone, or it cannot be read.
    fn local(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::Gone
        } else {
            Failure::Local(e)
        }
    }
}

impl From<object_store::Error> for Failure {
    fn from(e: object_store::Error) -> Self {
        Failure::Remote(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The uploader's shared state for a job against `store`, without a task.
    pub(super) fn ctx(
        dir: &Path,
        store: Arc<dyn ObjectStore>,
        threshold: u64,
        delete: bool,
    ) -> Ctx {
        Ctx {
            store,
            prefix: "p".to_owned(),
            template: DEFAULT_KEY_TEMPLATE.to_owned(),
            host: "h".to_owned(),
            tags: HashMap::new(),
            output_dir: dir.to_owned(),
            threshold,
            part_size: MIN_PART_SIZE,
            delete_local: delete,
            retry_initial: Duration::from_millis(1),
            retry_max: Duration::from_millis(2),
            stats: Arc::new(Stats::new(vec![], 1)),
            stop: CancellationToken::new(),
        }
    }
}
