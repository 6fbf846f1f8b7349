//! The path template of a stream's files (`path`): strftime fields and the `{stream}` and
//! `{start_unix}` placeholders, checked when the config is validated and rendered by the
//! writer for each interval (the interval arithmetic is in `rotation`).

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use chrono::format::{Item, StrftimeItems};

/// Placeholders the path template knows besides strftime fields.
const PLACEHOLDERS: [&str; 2] = ["{stream}", "{start_unix}"];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_default_and_go_layouts() {
        // 2026-11-24T10:00:00Z
        let start = 1_795_514_400_000_000_000;
        assert_eq!(
            render(super::super::DEFAULT_PATH_TEMPLATE, "bybit", start).unwrap(),
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
        assert!(validate_template(super::super::DEFAULT_PATH_TEMPLATE).is_ok());
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
}
