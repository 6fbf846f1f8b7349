//! A file the disk worker holds open, and what it knows about it.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::SyncPolicy;
use crate::observe::stats::StreamStats;
use crate::store::manifest::FileKind;

pub(super) struct OpenFile {
    pub(super) path: PathBuf,
    /// `None` after a failure: further writes are counted as lost.
    pub(super) file: Option<File>,
    /// Bytes known to be fully written.
    pub(super) len: u64,
    pub(super) stream: Arc<StreamStats>,
    pub(super) sync: SyncPolicy,
    /// When the oldest unsynced write happened; `None` when all is synced.
    pub(super) dirty_since: Option<std::time::Instant>,
    /// XXH3-64 of what was written, for the manifest.
    pub(super) hash: twox_hash::XxHash3_64,
    /// The last write failed (logged once until a write works again).
    pub(super) failing: bool,
    /// Lines written since the last successful sync: lost if the sync fails (EIO).
    pub(super) unsynced_lines: u64,
    /// Where the disk space reserved ahead of the writes ends (0: none reserved).
    pub(super) reserved: u64,
    /// Reserving failed once (no fallocate here, or no room): the file goes on without.
    pub(super) no_reserve: bool,
    /// What its lines are.
    pub(super) kind: FileKind,
    /// Complete lines in the file.
    pub(super) lines: u64,
    /// The file system it is on (`st_dev`), for syncing many files at once.
    pub(super) dev: u64,
    /// Lines that did not reach the file (write errors): the writer's manifest counted them,
    /// so the manifest is rebuilt from the file at close.
    pub(super) lost_lines: u64,
}
