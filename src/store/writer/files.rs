//! The writer's files: opening a stream's file at its rotation bucket (under a free name),
//! handing a file's buffered lines to the disk worker, and closing files when they rotate or
//! the writer stops.

use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use super::event::WriterEvent;
use super::{Output, Writer};
use crate::config::Format;
use crate::fsutil::{FLUSH_BYTES, OPEN_SUFFIX};
use crate::store::disk::DiskOp;
use crate::store::manifest::{FileKind, ManifestBuilder};
use crate::store::rotation;

impl Writer {
    /// Makes sure the stream has the right file open for a line received at `ts`.
    pub(super) async fn ensure_open(&mut self, idx: usize, ts: u64, events: bool) {
        let state = &self.streams[idx];
        let current = state.data.as_ref().or(state.events.as_ref());
        let rotate_ns = state.sink.rotate_ns;
        match current {
            Some(o) if ts < o.end_ns => {}
            Some(_) => self.close_stream(idx, false).await,
            None => {}
        }
        let state = &self.streams[idx];
        let have = if events {
            state.events.is_some()
        } else {
            state.data.is_some()
        };
        if have {
            return;
        }
        // The interval: the one of `ts`, never one before the floor, and the one already open
        // (for the sidecar of an open data file or the other way round).
        let open_bucket = state
            .data
            .as_ref()
            .or(state.events.as_ref())
            .map(|o| o.bucket);
        let bucket =
            open_bucket.unwrap_or_else(|| rotation::bucket_start(ts, rotate_ns).max(state.floor));
        let data_path = match state.pair.clone() {
            Some(p) => p,
            None => match self.free_path(idx, bucket) {
                Some(p) => {
                    self.streams[idx].pair = Some(p.clone());
                    p
                }
                None => return,
            },
        };
        let final_path = if events {
            rotation::events_path(&data_path)
        } else {
            data_path
        };
        let id = self.next_id;
        self.next_id += 1;
        let mut open_path = final_path.clone().into_os_string();
        open_path.push(OPEN_SUFFIX);
        let open_path = PathBuf::from(open_path);
        let journal_name: Box<[u8]> = open_path
            .strip_prefix(&self.output_dir)
            .unwrap_or(&open_path)
            .as_os_str()
            .as_bytes()
            .into();
        let state = &mut self.streams[idx];
        WriterEvent::Opening {
            stream: &state.sink.name,
            counters: &state.sink.stats,
            path: &open_path,
            data: !events,
        }
        .emit(&self.stats);
        let kind = match (state.sink.format, events) {
            (Format::Envelope, _) => FileKind::Envelope,
            (Format::Raw, false) => FileKind::Raw,
            (Format::Raw, true) => FileKind::Events,
        };
        let op = DiskOp::Open {
            id,
            path: open_path,
            stream: state.sink.stats.clone(),
            sync: state.sink.sync,
            kind,
        };
        let mut manifest = ManifestBuilder::new(&final_path, &state.sink.name, kind.name(), bucket);
        manifest.manifest.tags = state.sink.tags.clone();
        let out = Output {
            id,
            bucket,
            end_ns: bucket.saturating_add(rotate_ns),
            final_path,
            lines: 0,
            bytes: 0,
            buf: self.disk.take_buffer().unwrap_or_default(),
            buf_lines: 0,
            handed_at: 0,
            listed: false,
            journal_name,
            journaled: 0,
            manifest,
        };
        if events {
            state.events = Some(out);
        } else {
            state.data = Some(out);
        }
        self.rotation_stale = true;
        self.send(op).await;
    }

    /// A final path for a new data file in `bucket` that no file (open, closed or compressed)
    /// uses yet, so a restart or a limit-driven rotation never overwrites anything.
    pub(super) fn free_path(&mut self, idx: usize, bucket: u64) -> Option<PathBuf> {
        let state = &mut self.streams[idx];
        let rel = match rotation::render(
            &state.sink.template,
            &state.sink.name,
            &state.sink.tags,
            bucket,
        ) {
            Ok(p) => p,
            Err(e) => {
                // validate() rendered this template already; only an absurd clock gets here.
                WriterEvent::Unnameable {
                    stream: &state.sink.name,
                    error: &e,
                }
                .emit(&self.stats);
                return None;
            }
        };
        let base = self.output_dir.join(rel);
        let mut part = if state.last_part.0 == bucket {
            state.last_part.1 + 1
        } else {
            0
        };
        loop {
            let candidate = rotation::with_part(&base, part);
            let events = rotation::events_path(&candidate);
            let taken = [&candidate, &events]
                .iter()
                .any(|p| crate::fsutil::exists_in_any_form(p));
            if !taken {
                state.last_part = (bucket, part);
                return Some(candidate);
            }
            part += 1;
        }
    }

    pub(super) async fn flush_output(&mut self, idx: usize, events: bool) {
        if let Some(op) = self.take_output(idx, events) {
            self.send(op).await;
        }
    }

    /// The write of a file's buffered lines, its buffer replaced by a fresh one; `None` when
    /// it has none.
    pub(super) fn take_output(&mut self, idx: usize, events: bool) -> Option<DiskOp> {
        let out = self.streams[idx].output(events)?;
        if out.buf.is_empty() {
            return None;
        }
        // Room for what the stream wrote last time plus a quarter, so a busy stream fills a
        // buffer to FLUSH_BYTES without regrowing it (doubling past it would touch twice the
        // memory) and a quiet one keeps a small buffer.
        let want = out.buf.len().min(FLUSH_BYTES);
        let fresh = self
            .disk
            .take_buffer()
            .unwrap_or_else(|| Vec::with_capacity(want + want / 4));
        let buf = std::mem::replace(&mut out.buf, fresh);
        out.journaled = 0;
        out.handed_at = self.clock.now_ns();
        Some(DiskOp::Write {
            id: out.id,
            buf,
            lines: std::mem::take(&mut out.buf_lines),
        })
    }

    /// Flushes and closes both files of a stream; `run_end` when the run ends (a clean stop,
    /// its closing records written): the files end the stream's chain.
    pub(super) async fn close_stream(&mut self, idx: usize, run_end: bool) {
        for events in [false, true] {
            self.flush_output(idx, events).await;
            let state = &mut self.streams[idx];
            let out = if events {
                state.events.take()
            } else {
                state.data.take()
            };
            if let Some(out) = out {
                self.rotation_stale = true;
                state.floor = state.floor.max(out.bucket);
                let mut manifest = out.manifest.manifest;
                manifest.lines = out.lines;
                let retention = state.sink.retention.clone();
                self.send(DiskOp::Close {
                    id: out.id,
                    final_path: out.final_path,
                    manifest: Some(Box::new(manifest)),
                    retention,
                    run_end,
                })
                .await;
            }
        }
        self.streams[idx].pair = None;
        WriterEvent::Closed {
            counters: &self.streams[idx].sink.stats,
        }
        .emit(&self.stats);
    }

    /// Closes every file whose interval has ended (the rotation timer fired).
    pub(super) async fn close_due(&mut self) {
        let now = self.clock.now_ns();
        for idx in 0..self.streams.len() {
            let state = &self.streams[idx];
            let due = state
                .data
                .as_ref()
                .or(state.events.as_ref())
                .map(|o| (o.end_ns, o.bucket));
            if let Some((end_ns, _)) = due
                && end_ns <= now
            {
                self.close_stream(idx, false).await;
                let state = &mut self.streams[idx];
                state.floor = state.floor.max(end_ns);
            }
        }
    }

    pub(super) async fn close_all(&mut self) {
        for idx in 0..self.streams.len() {
            self.close_stream(idx, true).await;
        }
    }

    pub(super) async fn send(&mut self, op: DiskOp) {
        self.disk.submit(op).await;
    }
}
