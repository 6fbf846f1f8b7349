//! Writing one merged output stream: envelope lines into hourly files under the staging
//! directory, each with its manifest, and the output connections' events.

use std::fs::File;
use std::hash::Hasher as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use twox_hash::XxHash3_64 as Xxh3;

use crate::store::manifest::{self, ManifestBuilder};
use crate::store::rotation;
use crate::tools::UsageError;

/// Output files cover one UTC hour each, like the recorder's default.
const HOUR_NS: u64 = 3_600_000_000_000;

pub(super) struct OutFile {
    rel: PathBuf,
    w: BufWriter<File>,
    hash: Xxh3,
    lines: u64,
    bytes: u64,
    manifest: ManifestBuilder,
    start_ns: u64,
}

/// One output stream: envelope lines into hourly files under the stage.
pub(super) struct Out {
    stage: PathBuf,
    stream: String,
    name_json: Vec<u8>,
    file: Option<OutFile>,
    pub(super) written: Vec<PathBuf>,
    line: Vec<u8>,
    seq: u64,
    /// Links the output files into the stream's chain (see [`manifest::Chain`]); made at the
    /// first close, with the first file's start as the chain's start, so the same merge gives
    /// the same files.
    chain: Option<manifest::Chainer>,
}

impl Out {
    pub(super) fn new(stage: &Path, stream: &str) -> Self {
        let mut name_json = Vec::new();
        crate::json::write_json_string(stream.as_bytes(), &mut name_json);
        Self {
            stage: stage.to_owned(),
            stream: stream.to_owned(),
            name_json,
            file: None,
            written: Vec::new(),
            line: Vec::new(),
            seq: 0,
            chain: None,
        }
    }

    /// Writes a message line; `frag` is its payload member.
    pub(super) fn message(&mut self, ts: u64, conn: u64, frag: &[u8]) -> anyhow::Result<()> {
        self.start(ts, conn);
        self.line.extend_from_slice(b",\"seq\":");
        self.line
            .extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        self.line.extend_from_slice(frag);
        self.line.extend_from_slice(b"}\n");
        let seq = self.seq;
        self.seq += 1;
        self.emit(ts, |m| m.message(conn, seq, ts))
    }

    /// Writes a snapshot line; `frag` is its `,"snapshot":{…}` and body members.
    pub(super) fn snapshot(&mut self, ts: u64, conn: u64, frag: &[u8]) -> anyhow::Result<()> {
        self.start(ts, conn);
        self.line.extend_from_slice(frag);
        self.line.extend_from_slice(b"}\n");
        self.emit(ts, ManifestBuilder::snapshot)
    }

    /// Writes an event line; `body` is `"event":"name",…`.
    pub(super) fn event(&mut self, ts: u64, conn: u64, body: &[u8]) -> anyhow::Result<()> {
        self.start(ts, conn);
        self.line.push(b',');
        self.line.extend_from_slice(body);
        self.line.extend_from_slice(b"}\n");
        self.emit(ts, |m| m.event(body))
    }

    fn start(&mut self, ts: u64, conn: u64) {
        self.line.clear();
        self.line.extend_from_slice(b"{\"ts\":");
        self.line
            .extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
        self.line.extend_from_slice(b",\"stream\":");
        self.line.extend_from_slice(&self.name_json);
        self.line.extend_from_slice(b",\"conn\":");
        self.line
            .extend_from_slice(itoa::Buffer::new().format(conn).as_bytes());
    }

    fn emit(&mut self, ts: u64, note: impl FnOnce(&mut ManifestBuilder)) -> anyhow::Result<()> {
        // Files only move forward in time: a line a little older than the current file's start
        // (another source's clock) stays in the current file.
        let next = match &self.file {
            Some(f) if ts < f.start_ns + HOUR_NS => false,
            Some(_) | None => true,
        };
        if next {
            self.close(false)?;
            self.open(rotation::bucket_start(ts, HOUR_NS))?;
        }
        let Some(f) = self.file.as_mut() else {
            anyhow::bail!("no output file open");
        };
        f.w.write_all(&self.line)?;
        f.hash.write(&self.line);
        f.lines += 1;
        f.bytes += self.line.len() as u64;
        note(&mut f.manifest);
        Ok(())
    }

    fn open(&mut self, start_ns: u64) -> anyhow::Result<()> {
        let base = rotation::render(
            crate::config::DEFAULT_PATH_TEMPLATE,
            &self.stream,
            &crate::config::Tags::new(),
            start_ns,
        )
        .map_err(|e| {
            UsageError(format!(
                "stream name `{}` cannot be used as a file name: {e}",
                self.stream
            ))
        })?;
        let mut part = 0;
        let rel = loop {
            let p = rotation::with_part(&base, part);
            if !self.stage.join(&p).exists() {
                break p;
            }
            part += 1;
        };
        let path = self.stage.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(&path)?;
        self.file = Some(OutFile {
            manifest: ManifestBuilder::new(&rel, &self.stream, "envelope", start_ns),
            rel,
            w: BufWriter::with_capacity(256 * 1024, file),
            hash: Xxh3::new(),
            lines: 0,
            bytes: 0,
            start_ns,
        });
        Ok(())
    }

    /// Syncs the current file and writes its manifest; `last` for the stream's last file, which
    /// ends its chain.
    pub(super) fn close(&mut self, last: bool) -> anyhow::Result<()> {
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        let file = f.w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let mut m = f.manifest.manifest;
        m.lines = f.lines;
        m.bytes = f.bytes;
        m.xxh3_64 = format!("{:016x}", f.hash.finish());
        self.chain
            .get_or_insert_with(|| manifest::Chainer::new(f.start_ns))
            .link(&mut m, &f.rel, last);
        let mut body = serde_json::to_vec(&m)?;
        body.push(b'\n');
        let mpath = self.stage.join(manifest::path_for(&f.rel));
        let mut mf = File::create(&mpath)?;
        mf.write_all(&body)?;
        mf.sync_all()?;
        self.written.push(f.rel);
        Ok(())
    }
}
