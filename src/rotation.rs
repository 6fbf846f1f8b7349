//! File naming and rotation arithmetic: receive time -> UTC-aligned interval -> file path.
//!
//! Pure functions; the writer decides when to call them. Intervals are aligned to the Unix epoch,
//! so an hourly file always covers `HH:00:00`–`HH:59:59.999…` UTC, whatever time the recorder
//! started, and intervals that divide a day line up with midnight.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use chrono::format::{Item, StrftimeItems};

/// Placeholders the path template knows besides strftime fields.
const PLACEHOLDERS: [&str; 2] = ["{stream}", "{start_unix}"];

/// Start of the interval containing `ts_ns`.
#[inline]
pub fn bucket_start(ts_ns: u64, interval_ns: u64) -> u64 {
    ts_ns - ts_ns % interval_ns
}

/// Checks a path template: valid strftime fields, known `{…}` placeholders, and a result that
/// stays inside the output directory.
///
/// # Errors
/// A message naming the problem.
pub fn validate_template(template: &str) -> Result<(), String> {
    if template.is_empty() {
        return Err("is empty".to_owned());
    }
    if StrftimeItems::new(template).any(|item| matches!(item, Item::Error)) {
        return Err(format!(
            "`{template}` has an invalid strftime field; use fields such as %Y %m %d %H %M %S"
        ));
    }
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
            Some(p) => rest = &tail[p.len()..],
            None => {
                return Err(format!(
                    "`{template}` has an unknown placeholder at `{tail}`; known: {{stream}}, {{start_unix}}"
                ));
            }
        }
    }
    let sample = render(template, "stream", 0)?;
    if sample.file_name().is_none() || template.ends_with('/') {
        return Err(format!("`{template}` must end in a file name"));
    }
    Ok(())
}

/// The relative path of the file for `stream` covering the interval that starts at `start_ns`.
///
/// # Errors
/// The template has an invalid field or the result would leave the output directory.
pub fn render(template: &str, stream: &str, start_ns: u64) -> Result<PathBuf, String> {
    let secs = (start_ns / 1_000_000_000) as i64;
    let dt = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| format!("time {secs} is out of range"))?;
    let mut out = String::with_capacity(template.len() + 32);
    write!(out, "{}", dt.format(template))
        .map_err(|_| format!("`{template}` has an invalid strftime field"))?;
    let out = out
        .replace("{stream}", stream)
        .replace("{start_unix}", &secs.to_string());
    let path = PathBuf::from(out);
    if !is_contained(&path) {
        return Err(format!(
            "`{template}` leads outside the output directory; use a relative path without `..`"
        ));
    }
    Ok(path)
}

/// True if a relative path cannot leave the directory it is joined to.
pub fn is_contained(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
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

/// The sidecar events file of a raw-format data file: `x.jsonl` -> `x.events.jsonl`.
pub fn events_path(data: &Path) -> PathBuf {
    let name = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new_name = match name.strip_suffix(".jsonl") {
        Some(stem) => format!("{stem}.events.jsonl"),
        None => format!("{name}.events.jsonl"),
    };
    data.with_file_name(new_name)
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
    fn renders_default_and_go_layouts() {
        let start = bucket_start(1_795_516_029_500_000_000, HOUR);
        assert_eq!(
            render(crate::config::DEFAULT_PATH_TEMPLATE, "bybit", start).unwrap(),
            PathBuf::from("bybit/2026-11-24/bybit-20261124T100000Z.jsonl")
        );
        assert_eq!(
            render("{stream}_{start_unix}.jsonl", "publicTrade.BTCUSDT", start).unwrap(),
            PathBuf::from(format!(
                "publicTrade.BTCUSDT_{}.jsonl",
                start / 1_000_000_000
            ))
        );
    }

    #[test]
    fn templates_are_checked() {
        assert!(validate_template(crate::config::DEFAULT_PATH_TEMPLATE).is_ok());
        assert!(
            validate_template("../x.jsonl")
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            validate_template("/abs/x.jsonl")
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            validate_template("%Q.jsonl")
                .unwrap_err()
                .contains("strftime")
        );
        assert!(
            validate_template("{name}.jsonl")
                .unwrap_err()
                .contains("placeholder")
        );
        assert!(validate_template("dir/").is_err());
    }

    #[test]
    fn parts_and_sidecars() {
        let p = Path::new("a/b-1.jsonl");
        assert_eq!(with_part(p, 0), PathBuf::from("a/b-1.jsonl"));
        assert_eq!(with_part(p, 2), PathBuf::from("a/b-1.2.jsonl"));
        assert_eq!(events_path(p), PathBuf::from("a/b-1.events.jsonl"));
        assert_eq!(
            with_part(Path::new("t.BTC_1700000000.jsonl"), 1),
            PathBuf::from("t.BTC_1700000000.1.jsonl")
        );
    }
}
