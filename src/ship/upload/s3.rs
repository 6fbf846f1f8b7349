//! The S3 request side: the client (signed requests, signed bodies, `object_store`'s own
//! retries), the PUT of a small file, the multipart upload of a large one (hashed twice: before,
//! for the metadata, and while its parts are read), the HEAD that checks the object, and the
//! metadata sent with it.

use std::hash::Hasher as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    RetryConfig,
};
use tokio::io::AsyncReadExt;

use super::{Ctx, Failure, UploadConfig};
use crate::error::ConfigError;

/// Object metadata holding the XXH3-64 of the object's bytes.
pub(super) const META_HASH: &str = "xxh3-64";
/// Object metadata holding the byte count.
const META_BYTES: &str = "bytes";
/// How long an abort of a multipart upload may take at shutdown.
const ABORT_TIMEOUT: Duration = Duration::from_secs(2);

/// What was sent: the byte count and the XXH3-64 of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Digest {
    pub(super) bytes: u64,
    pub(super) hash: u64,
}

impl Digest {
    /// The digest of `body`.
    pub(super) fn of(body: &[u8]) -> Self {
        Digest {
            bytes: body.len() as u64,
            hash: twox_hash::XxHash3_64::oneshot(body),
        }
    }

    /// The hash as written in metadata and markers: 16 hex digits.
    pub(super) fn hash_hex(self) -> String {
        format!("{:016x}", self.hash)
    }
}

/// The S3 client for `bucket` (credentials from the environment unless given).
///
/// # Errors
/// The client cannot be built from the configuration.
pub(super) fn client(
    cfg: &UploadConfig,
    bucket: &str,
) -> Result<Arc<dyn ObjectStore>, ConfigError> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
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
    Ok(Arc::new(store))
}

/// A body in memory (a small file, a manifest): one PUT, then the check.
pub(super) async fn put_bytes(ctx: &Ctx, key: &Key, body: Bytes) -> Result<Digest, Failure> {
    let d = Digest::of(&body);
    stoppable(
        ctx,
        ctx.store.put_opts(key, body.into(), put_options(key, d)),
    )
    .await??;
    check(ctx, key, d).await?;
    Ok(d)
}

/// A file below the multipart threshold: one PUT of its bytes.
pub(super) async fn put_single(ctx: &Ctx, path: &Path, key: &Key) -> Result<Digest, Failure> {
    let body = Bytes::from(tokio::fs::read(path).await.map_err(Failure::local)?);
    put_bytes(ctx, key, body).await
}

/// A large file: hashed first (for the metadata), then sent in parts read one at a time.
pub(super) async fn put_multipart(ctx: &Ctx, path: &Path, key: &Key) -> Result<Digest, Failure> {
    let owned = path.to_owned();
    let d = tokio::task::spawn_blocking(move || hash_file(&owned))
        .await
        .map_err(|e| Failure::Local(std::io::Error::other(e)))?
        .map_err(Failure::local)?;
    let mut file = tokio::fs::File::open(path).await.map_err(Failure::local)?;
    let opts = PutMultipartOptions {
        attributes: attributes(key, d),
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
                .map_err(Failure::local)?;
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
        if sent == d.bytes && hasher.finish() == d.hash {
            Ok(())
        } else {
            Err(Failure::Mismatch(format!(
                "the file changed while it was uploaded ({} bytes before, {sent} read)",
                d.bytes
            )))
        }
    });
    if let Err(e) = result {
        // Best effort: an upload left behind expires by the bucket's lifecycle rules.
        let _ = tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await;
        return Err(e);
    }
    stoppable(ctx, upload.complete()).await??;
    check(ctx, key, d).await?;
    Ok(d)
}

fn hash_file(path: &Path) -> std::io::Result<Digest> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = twox_hash::XxHash3_64::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            return Ok(Digest {
                bytes: n,
                hash: hasher.finish(),
            });
        }
        hasher.write(&buf[..r]);
        n += r as u64;
    }
}

/// The check after an upload: a HEAD of the key shows our size and hash.
pub(super) async fn check(ctx: &Ctx, key: &Key, sent: Digest) -> Result<(), Failure> {
    let opts = GetOptions {
        head: true,
        ..GetOptions::default()
    };
    let got = stoppable(ctx, ctx.store.get_opts(key, opts)).await??;
    let want = sent.hash_hex();
    let stored = got
        .attributes
        .get(&Attribute::Metadata(META_HASH.into()))
        .map(|v| v.as_ref().to_owned());
    if got.meta.size != sent.bytes || stored.as_deref() != Some(want.as_str()) {
        return Err(Failure::Mismatch(format!(
            "{key}: stored {} bytes with hash {stored:?}, sent {} bytes with hash {want}",
            got.meta.size, sent.bytes
        )));
    }
    Ok(())
}

pub(super) fn put_options(key: &Key, d: Digest) -> PutOptions {
    PutOptions {
        attributes: attributes(key, d),
        ..PutOptions::default()
    }
}

fn attributes(key: &Key, d: Digest) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::Metadata(META_HASH.into()), d.hash_hex().into());
    a.insert(
        Attribute::Metadata(META_BYTES.into()),
        d.bytes.to_string().into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::upload::tests::ctx;

    #[tokio::test]
    async fn the_check_refuses_an_object_that_is_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        let c = ctx(dir.path(), store.clone(), 1 << 20, false);
        let key = Key::from("k");
        let body = Bytes::from_static(b"abc");
        let d = Digest::of(&body);
        assert_eq!(d.bytes, 3);
        store
            .put_opts(&key, body.clone().into(), put_options(&key, d))
            .await
            .unwrap();
        assert!(check(&c, &key, d).await.is_ok());
        let other_hash = Digest {
            hash: d.hash ^ 1,
            ..d
        };
        assert!(matches!(
            check(&c, &key, other_hash).await,
            Err(Failure::Mismatch(_))
        ));
        let other_size = Digest { bytes: 4, ..d };
        assert!(matches!(
            check(&c, &key, other_size).await,
            Err(Failure::Mismatch(_))
        ));
        // No metadata (written by something else): not ours.
        store
            .put_opts(&key, body.into(), PutOptions::default())
            .await
            .unwrap();
        assert!(matches!(
            check(&c, &key, d).await,
            Err(Failure::Mismatch(_))
        ));
    }
}
