//! The disk watermarks: the writer checks the free space of the output file system and
//! raises or lowers the [`DiskLevel`] (an event: counted and logged) as it crosses the configured watermarks; and
//! it notes lines the disk worker lost to write errors, to be marked in the stream.

use std::sync::atomic::Ordering::Relaxed;

use super::Writer;
use super::event::WriterEvent;
use crate::observe::stats::DiskLevel;

impl Writer {
    /// Picks up lines the disk worker lost to write errors, to be marked at the front of the
    /// stream's next batch.
    pub(super) fn note_io_loss(&mut self, idx: usize) {
        let state = &mut self.streams[idx];
        let loss = state.sink.stats.take_unmarked();
        state.io_pending.merge(&loss);
    }

    /// Reads the free space of the output directory and applies the watermarks.
    pub(super) fn check_disk(&mut self) {
        let (warn, stop) = self.watermarks;
        if warn.is_none() && stop.is_none() {
            return;
        }
        let Some((free, total)) = free_space(&self.output_dir) else {
            return;
        };
        self.stats.disk_free.store(free, Relaxed);
        let level = if stop.is_some_and(|w| free < w.bytes(total)) {
            DiskLevel::Stopped
        } else if warn.is_some_and(|w| free < w.bytes(total)) {
            DiskLevel::Low
        } else {
            DiskLevel::Enough
        };
        if let Some(event) = WriterEvent::disk_level(self.disk_level, level, &self.output_dir, free)
        {
            event.emit(&self.stats);
            self.disk_level = level;
        }
    }
}

/// Free and total bytes of the filesystem holding `dir`.
fn free_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `st` a writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let unit = st.f_frsize as u64;
    Some((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}
