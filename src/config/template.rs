//! The path template of a stream's files (`path`): strftime fields and the `{stream}`,
//! `{start_unix}` and `{tag.KEY}` placeholders, checked when the config is validated and
//! rendered by the writer for each interval (the interval arithmetic is in `rotation`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use chrono::format::{Item, StrftimeItems};

use super::tags::{Place, Tags, check_key, check_place_value};

/// The opening of a tag placeholder: `{tag.region}` is the value of the tag `region`.
const TAG_OPEN: &str = "{tag.";

/// A `{…}` placeholder of a path template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder<'t> {
    /// `{stream}`: the stream's name.
    Stream,
    /// `{start_unix}`: the interval's start in seconds since the epoch.
    StartUnix,
    /// `{tag.KEY}`: the value of the stream's tag `KEY`.
    Tag(&'t str),
}

/// Replaces each placeholder of `template` by what `value` gives for it, in one pass (a value
/// that looks like a placeholder stays as it is). Strftime fields are left for the caller.
///
/// # Errors
/// An unknown placeholder (naming it and the known ones), or what `value` refuses.
pub fn expand<'t, 'v>(
    template: &'t str,
    mut value: impl FnMut(Placeholder<'t>) -> Result<Cow<'v, str>, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (placeholder, len) = if tail.starts_with("{stream}") {
            (Placeholder::Stream, "{stream}".len())
        } else if tail.starts_with("{start_unix}") {
            (Placeholder::StartUnix, "{start_unix}".len())
        } else if let Some(after) = tail.strip_prefix(TAG_OPEN)
            && let Some(end) = after.find('}')
        {
            (Placeholder::Tag(&after[..end]), TAG_OPEN.len() + end + 1)
        } else {
            return Err(format!(
                "`{template}` has an unknown placeholder at `{tail}`; known: {{stream}}, \
                 {{start_unix}}, {{tag.KEY}} (KEY a key of the stream's `tags`)"
            ));
        };
        out.push_str(&value(placeholder)?);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of `{tag.KEY}` where `place` puts it: the tag's value, checked to be a safe
/// component there (see [`check_place_value`]).
///
/// # Errors
/// The stream has no such tag, or its value cannot stand there; the message names the
/// placeholder and the fix.
pub fn tag_value<'v>(tags: &'v Tags, key: &str, place: Place) -> Result<&'v str, String> {
    check_key(key).map_err(|m| format!("`{{tag.{key}}}`: {m}"))?;
    let value = tags.get(key).ok_or_else(|| {
        format!(
            "`{{tag.{key}}}` names a tag the stream does not have; add `{key} = \"…\"` to the \
             stream's `tags` (or to the top-level `tags`), or remove the placeholder"
        )
    })?;
    check_place_value(value, place).map_err(|m| format!("`{{tag.{key}}}`: {m}"))?;
    Ok(value)
}

/// The keys of the `{tag.KEY}` placeholders of any template, in order.
pub fn tag_keys(template: &str) -> impl Iterator<Item = &str> {
    template.split(TAG_OPEN).skip(1).map(|after| {
        let end = after.find('}').unwrap_or(after.len());
        &after[..end]
    })
}

/// Replaces each `{tag.KEY}` of an upload key or subject template by the value of the tag
/// `KEY` ([`tag_value`]); the rest, other placeholders included, stays as it is. The values
/// hold no `{`, so what they bring in is never taken for a placeholder.
///
/// # Errors
/// What [`tag_value`] says, or a `{tag.` without its `}`.
pub fn fill_tags(template: &str, tags: &Tags, place: Place) -> Result<String, String> {
    let mut parts = template.split(TAG_OPEN);
    let mut out = String::with_capacity(template.len() + 16);
    out.push_str(parts.next().unwrap_or_default());
    for after in parts {
        let end = after
            .find('}')
            .ok_or_else(|| format!("`{template}` has a `{{tag.` without its closing `}}`"))?;
        out.push_str(tag_value(tags, &after[..end], place)?);
        out.push_str(&after[end + 1..]);
    }
    Ok(out)
}

/// Checks a path template against the stream's tags: valid strftime fields, known `{…}`
/// placeholders, tags the stream has (with values that can be part of a path), and a result
/// that stays inside the output directory.
///
/// # Errors
/// A message naming the problem.
pub fn validate_template(template: &str, tags: &Tags) -> Result<(), String> {
    if template.is_empty() {
        return Err("is empty".to_owned());
    }
    if StrftimeItems::new(template).any(|item| matches!(item, Item::Error)) {
        return Err(format!(
            "`{template}` has an invalid strftime field; use fields such as %Y %m %d %H %M %S"
        ));
    }
    let sample = render(template, "stream", tags, 0)?;
    if sample.file_name().is_none() || template.ends_with('/') {
        return Err(format!("`{template}` must end in a file name"));
    }
    Ok(())
}

/// The relative path of the file for `stream` (with `tags`) covering the interval that starts
/// at `start_ns`.
///
/// # Errors
/// The template has an invalid field or placeholder, names a missing tag, or the result would
/// leave the output directory.
pub fn render(template: &str, stream: &str, tags: &Tags, start_ns: u64) -> Result<PathBuf, String> {
    let secs = (start_ns / 1_000_000_000) as i64;
    let dt = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| format!("time {secs} is out of range"))?;
    // Placeholders first, their values escaped for strftime, which then fills in the time.
    let expanded = expand(template, |p| {
        let text = match p {
            Placeholder::Stream => Cow::Borrowed(stream),
            Placeholder::StartUnix => Cow::Owned(secs.to_string()),
            Placeholder::Tag(key) => Cow::Borrowed(tag_value(tags, key, Place::Path)?),
        };
        Ok(Cow::Owned(text.replace('%', "%%")))
    })?;
    let mut out = String::with_capacity(expanded.len() + 16);
    write!(out, "{}", dt.format(&expanded))
        .map_err(|_| format!("`{template}` has an invalid strftime field"))?;
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

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn renders_default_and_go_layouts() {
        // 2026-11-24T10:00:00Z
        let start = 1_795_514_400_000_000_000;
        let none = Tags::new();
        assert_eq!(
            render(super::super::DEFAULT_PATH_TEMPLATE, "bybit", &none, start).unwrap(),
            PathBuf::from("bybit/2026-11-24/bybit-20261124T100000Z.jsonl")
        );
        assert_eq!(
            render(
                "{stream}_{start_unix}.jsonl",
                "publicTrade.BTCUSDT",
                &none,
                start
            )
            .unwrap(),
            PathBuf::from(format!(
                "publicTrade.BTCUSDT_{}.jsonl",
                start / 1_000_000_000
            ))
        );
    }

    /// Issue 21: `{tag.KEY}` puts a tag's value into the path.
    #[test]
    fn tags_fill_their_placeholders() {
        let start = 1_795_514_400_000_000_000;
        let t = tags(&[("region", "eu-west"), ("role", "primary")]);
        assert_eq!(
            render(
                "{tag.region}/{stream}/%Y/{tag.role}-%H.jsonl",
                "s",
                &t,
                start
            )
            .unwrap(),
            PathBuf::from("eu-west/s/2026/primary-10.jsonl")
        );
        let err = validate_template("{tag.zone}/{stream}.jsonl", &t).unwrap_err();
        assert!(
            err.contains("`{tag.zone}` names a tag the stream does not have")
                && err.contains("add `zone = \"…\"`"),
            "{err}"
        );
        let bad = tags(&[("region", "..")]);
        let err = validate_template("{tag.region}/{stream}.jsonl", &bad).unwrap_err();
        assert!(err.contains("`{tag.region}`: the value `..`"), "{err}");
        // A value that looks like a placeholder or a strftime field is taken literally.
        let odd = tags(&[("a", "x")]);
        assert_eq!(
            expand("{tag.a}{stream}", |p| Ok(Cow::Owned(format!("{p:?}")))).unwrap(),
            "Tag(\"a\")Stream"
        );
        assert!(validate_template("{tag.a}.jsonl", &odd).is_ok());
        let err = validate_template("{tag.Region}.jsonl", &odd).unwrap_err();
        assert!(
            err.contains("`{tag.Region}`: the key `Region` is not a tag key"),
            "{err}"
        );
        assert!(
            validate_template("{tag.a.jsonl", &odd)
                .unwrap_err()
                .contains("unknown placeholder")
        );
    }

    #[test]
    fn templates_are_checked() {
        let none = Tags::new();
        assert!(validate_template(super::super::DEFAULT_PATH_TEMPLATE, &none).is_ok());
        assert!(
            validate_template("../x.jsonl", &none)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            validate_template("/abs/x.jsonl", &none)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            validate_template("%Q.jsonl", &none)
                .unwrap_err()
                .contains("strftime")
        );
        assert!(
            validate_template("{name}.jsonl", &none)
                .unwrap_err()
                .contains("placeholder")
        );
        assert!(validate_template("dir/", &none).is_err());
    }
}
