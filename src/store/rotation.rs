//! File naming and rotation arithmetic: receive time -> UTC-aligned interval -> file path.
//!
//! Pure functions; the writer decides when to call them. Intervals are aligned to the Unix epoch,
//! so an hourly file always covers `HH:00:00`–`HH:59:59.999…` UTC, whatever time the recorder
//! started, and intervals that divide a day line up with midnight. The path template itself
//! (placeholders, checking, rendering) belongs to the config and is re-exported here.

use std::path::{Path, PathBuf};

pub use crate::config::template::{is_contained, render, validate_template};

/// Start of the interval containing `ts_ns`.
#[inline]
pub fn bucket_start(ts_ns: u64, interval_ns: u64) -> u64 {
    ts_ns - ts_ns % interval_ns
}

/// `path` with `.N` inserted before its extension (`a/b.jsonl` -> `a/b.1.jsonl`), for a second
/// file in the same interval.
pub fn with_part(path: &Path, part: u32) -> PathBuf {
    if part == 0 {
        return path.to_owned();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new_name = match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{part}.{ext}"),
        None => format!("{name}.{part}"),
    };
    path.with_file_name(new_name)
}

/// The sidecar events file of a raw-format data file: `x.jsonl` -> `x.events.ndjson` (see
/// [`crate::fsutil::events_name`]).
pub fn events_path(data: &Path) -> PathBuf {
    crate::fsutil::map_file_name(data, crate::fsutil::events_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000_000_000;

    #[test]
    fn buckets_are_utc_aligned() {
        // 2026-11-24T10:27:09.5Z
        let ts = 1_795_516_029_500_000_000;
        let start = bucket_start(ts, HOUR);
        assert_eq!(start % HOUR, 0);
        assert!(start <= ts && ts < start + HOUR);
        assert_eq!(bucket_start(start, HOUR), start);
        assert_eq!(bucket_start(start + HOUR - 1, HOUR), start);
    }

    #[test]
    fn parts_and_sidecars() {
        let p = Path::new("a/b-1.jsonl");
        assert_eq!(with_part(p, 0), PathBuf::from("a/b-1.jsonl"));
        assert_eq!(with_part(p, 2), PathBuf::from("a/b-1.2.jsonl"));
        assert_eq!(events_path(p), PathBuf::from("a/b-1.events.ndjson"));
        assert_eq!(
            with_part(Path::new("t.BTC_1700000000.jsonl"), 1),
            PathBuf::from("t.BTC_1700000000.1.jsonl")
        );
    }
}
