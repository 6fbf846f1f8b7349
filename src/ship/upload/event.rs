//! What happens to an upload job, as typed events: [`UploadEvent::emit`] updates the counters
//! in [`Stats`] and writes the log line of each, in one place.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use crate::observe::stats::Stats;

/// One thing that happened to the upload of a file.
#[derive(Debug)]
pub(crate) enum UploadEvent<'a> {
    /// The file (and its manifest) went up and were checked; `bytes` of both.
    Uploaded {
        path: &'a Path,
        bytes: u64,
        /// Failed attempts before this one.
        failures: u32,
    },
    /// The local file cannot be read: kept for the next start.
    Unreadable {
        path: &'a Path,
        error: &'a std::io::Error,
    },
    /// The object does not match the file (or the file changed while read).
    Mismatch {
        path: &'a Path,
        why: &'a str,
        /// Mismatches of this file so far.
        tries: u32,
        /// The file is given up until the next start.
        given_up: bool,
    },
    /// The key template names a tag that neither the file's manifest nor the config gives its
    /// stream (a stream gone from the config, recorded before the tag was set): `unknown`
    /// stands in for it.
    UntaggedKey {
        path: &'a Path,
        stream: &'a str,
        tag: &'a str,
    },
    /// A request failed; the job retries with backoff.
    Failed {
        path: &'a Path,
        error: &'a object_store::Error,
        /// Failed attempts before this one.
        failures: u32,
    },
}

impl UploadEvent<'_> {
    /// Counts the event in `stats` and logs it.
    pub(crate) fn emit(self, stats: &Stats) {
        match self {
            UploadEvent::Uploaded {
                path,
                bytes,
                failures,
            } => {
                stats.files_uploaded.fetch_add(1, Relaxed);
                stats.bytes_uploaded.fetch_add(bytes, Relaxed);
                if failures > 0 {
                    tracing::info!(path = %path.display(), failures, "Uploaded after retries.");
                } else {
                    tracing::debug!(path = %path.display(), bytes, "Uploaded.");
                }
            }
            UploadEvent::UntaggedKey { path, stream, tag } => {
                tracing::warn!(
                    path = %path.display(),
                    stream,
                    tag,
                    "Uploading under `unknown` for `{{tag.{tag}}}` of the key: neither the file's \
                     manifest nor the config gives its stream that tag."
                );
            }
            UploadEvent::Unreadable { path, error } => {
                stats.upload_errors.fetch_add(1, Relaxed);
                tracing::error!(path = %path.display(), error = %error, "Cannot read a file to upload; it is kept and tried again at the next start.");
            }
            UploadEvent::Mismatch {
                path,
                why,
                tries,
                given_up,
            } => {
                stats.upload_errors.fetch_add(1, Relaxed);
                if given_up {
                    tracing::error!(path = %path.display(), %why, tries, "Uploaded object does not match the file; the file is kept and tried again at the next start.");
                }
            }
            UploadEvent::Failed {
                path,
                error,
                failures,
            } => {
                stats.upload_errors.fetch_add(1, Relaxed);
                if failures == 0 {
                    tracing::warn!(path = %path.display(), error = %error, "Upload failed; retrying with backoff until it works (see upload_backlog).");
                } else {
                    tracing::debug!(path = %path.display(), error = %error, attempt = failures + 1, "Upload failed again.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_updates_its_counters() {
        let stats = Stats::new(vec![], 1);
        let path = Path::new("s/x.jsonl.zst");
        UploadEvent::Uploaded {
            path,
            bytes: 10,
            failures: 0,
        }
        .emit(&stats);
        UploadEvent::Uploaded {
            path,
            bytes: 5,
            failures: 2,
        }
        .emit(&stats);
        assert_eq!(stats.files_uploaded.load(Relaxed), 2);
        assert_eq!(stats.bytes_uploaded.load(Relaxed), 15);
        assert_eq!(stats.upload_errors.load(Relaxed), 0);
        let io = std::io::Error::other("denied");
        UploadEvent::Unreadable { path, error: &io }.emit(&stats);
        // Every mismatch counts, not only the one that gives up.
        for tries in 1..=2 {
            UploadEvent::Mismatch {
                path,
                why: "size",
                tries,
                given_up: tries == 2,
            }
            .emit(&stats);
        }
        let remote = object_store::Error::Generic {
            store: "S3",
            source: "unreachable".into(),
        };
        UploadEvent::Failed {
            path,
            error: &remote,
            failures: 0,
        }
        .emit(&stats);
        assert_eq!(stats.upload_errors.load(Relaxed), 4);
        assert_eq!(stats.files_uploaded.load(Relaxed), 2);
    }
}
