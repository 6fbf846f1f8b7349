//! Tags: static key/value text that describes a stream's recording (the region or host group
//! it runs in, its role), given per `[[stream]]` and for every stream at the top level. The
//! recorder writes them into each `connected` event and each manifest, and path templates use
//! them as `{tag.KEY}`; they go around messages, never into them.
//!
//! Keys are short identifiers (`[a-z0-9_]`), values text without control characters. A value a
//! path template uses becomes a path component, so it must also be a safe file name (the
//! characters of a stream name, [`check_place_value`]); so must one that an upload key or a NATS
//! subject uses.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};

/// A stream's tags, key to value, in key order (so events and manifests list them the same way
/// every time).
pub type Tags = BTreeMap<String, String>;

/// Most tags a stream may have (its own and the top-level ones together).
pub const MAX_TAGS: usize = 32;
/// Longest tag key, in bytes.
pub const MAX_KEY_LEN: usize = 64;
/// Longest tag value, in bytes.
pub const MAX_VALUE_LEN: usize = 256;

/// What a `tags` table must look like, for type errors.
const TAGS_FORM: &str = "a table of text values such as { region = \"eu\", role = \"primary\" }";

/// Deserializes a `tags` table, refusing values that are not strings with an error that shows
/// the form (`shard = "3"`, not `shard = 3`): a tag is text, and a number or boolean converted
/// by wsrec could read back differently from what was written (`1.0` or `1`).
pub(crate) fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Tags, D::Error> {
    d.deserialize_map(TagsVisitor)
}

struct TagsVisitor;

impl<'de> Visitor<'de> for TagsVisitor {
    type Value = Tags;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TAGS_FORM)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tags, A::Error> {
        let mut tags = Tags::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed(&key))?;
            tags.insert(key, value);
        }
        Ok(tags)
    }
}

/// Reads one tag's value: a string only.
struct ValueSeed<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "text for tag `{}`: tag values are strings, so quote numbers and booleans \
             ({} = \"3\", not {} = 3)",
            self.0, self.0, self.0
        )
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

/// Checks a set of tags: how many, and each key and value.
///
/// # Errors
/// The key the problem is about (`None` for the count) and a message naming it and the fix.
pub fn validate_tags(tags: &Tags) -> Result<(), (Option<&str>, String)> {
    if tags.len() > MAX_TAGS {
        return Err((
            None,
            format!(
                "{} tags are too many; a stream may have at most {MAX_TAGS} (its own and the \
                 top-level ones together)",
                tags.len()
            ),
        ));
    }
    for (k, v) in tags {
        check_key(k).map_err(|m| (Some(k.as_str()), m))?;
        check_value(v).map_err(|m| (Some(k.as_str()), m))?;
    }
    Ok(())
}

/// Checks a tag key: 1 to [`MAX_KEY_LEN`] bytes of `a-z`, `0-9` and `_`.
///
/// # Errors
/// A message saying what is allowed.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the key `{}` is not a tag key; use 1 to {MAX_KEY_LEN} lower-case letters, digits \
             and `_` (e.g. `region`, `host_group`)",
            key.escape_debug()
        ))
    }
}

/// Checks a tag value: at most [`MAX_VALUE_LEN`] bytes, no control characters (line breaks,
/// NUL, tabs), so it reads back as written in every record and log.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_LEN {
        return Err(format!(
            "the value is {} bytes long; at most {MAX_VALUE_LEN} are allowed",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "the value `{}` contains a control character (line break, tab, NUL); remove it",
            value.escape_debug()
        ));
    }
    Ok(())
}

/// Where a template puts a tag's value (`{tag.KEY}`): each place takes its own characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A stream's `path`: the value becomes a directory or file name.
    Path,
    /// `[upload] key`: a segment of an object key.
    UploadKey,
    /// `[nats] subject`: one token of a subject.
    Subject,
}

impl Place {
    /// The setting the template is, as error messages name it.
    pub fn setting(self) -> &'static str {
        match self {
            Place::Path => "path",
            Place::UploadKey => "upload.key",
            Place::Subject => "nats.subject",
        }
    }

    fn becomes(self) -> &'static str {
        match self {
            Place::Path => "a directory or file name",
            Place::UploadKey => "a segment of each object key",
            Place::Subject => "a token of each subject",
        }
    }
}

/// Checks a value that a template puts into a path, an object key or a subject (see [`Place`]):
/// one component made of the characters of a stream name (ASCII letters, digits, `.`, `_`,
/// `-`, `@`, `+`; no `.` in a subject, where it would split the token), not empty and not
/// starting with `.` or `-`. That keeps `/`, `..`, NUL and hidden names out of paths and keys,
/// wildcards and spaces out of subjects, and the names safe in shells.
///
/// # Errors
/// A message saying what is wrong and what is allowed.
pub fn check_place_value(value: &str, place: Place) -> Result<(), String> {
    let dot = place != Place::Subject;
    let problem = if value.is_empty() {
        Some("is empty")
    } else if value.starts_with('.') || value.starts_with('-') {
        Some("starts with `.` or `-`")
    } else if !value.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@' | b'+') || (dot && b == b'.')
    }) {
        Some(if dot {
            "has a character a path component may not have"
        } else {
            "has a character a subject token may not have"
        })
    } else {
        None
    };
    let allowed = if dot {
        "`.`, `_`, `-`, `@`, `+`"
    } else {
        "`_`, `-`, `@`, `+` (no `.`)"
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!(
            "the value `{}` {p}; a tag used in `{}` becomes {}, so it may contain only ASCII \
             letters, digits and {allowed}, and must not start with `.` or `-`",
            value.escape_debug(),
            place.setting(),
            place.becomes(),
        )),
    }
}

/// The tags in effect for a stream: the top-level `global` ones, overridden key by key by the
/// stream's `own`.
pub fn merged(global: &Tags, own: &Tags) -> Tags {
    let mut tags = global.clone();
    tags.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags
}

/// Parses a `--tag KEY=VALUE` argument (the key and value are checked by [`validate_tags`]).
///
/// # Errors
/// A message showing the form.
pub fn parse_tag_arg(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!(
            "`{arg}` is not KEY=VALUE; write e.g. --tag region=eu"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    const STREAM: &str = "[[stream]]\nname = \"a\"\nurl = \"wss://h/\"\n";

    /// Issue 21: `tags` per stream and at the top level, merged with the stream's winning.
    #[test]
    fn tags_parse_per_stream_and_at_the_top_level() {
        let c = parse(&format!(
            "tags = {{ region = \"eu\", role = \"backup\" }}\n{STREAM}\
             tags = {{ role = \"primary\", note = \"rack 4\" }}\n\
             path = \"{{tag.region}}/{{stream}}/%Y%m%dT%H.jsonl\"\n"
        ))
        .unwrap();
        assert_eq!(c.tags.len(), 2);
        let s = &c.streams[0];
        assert_eq!(s.tags.len(), 2, "the stream's own, until merged");
        let t = c.stream_tags(s);
        let pairs: Vec<_> = t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [("note", "rack 4"), ("region", "eu"), ("role", "primary")]
        );
        let mut merged = c.clone();
        merged.apply_top_level_tags();
        merged.apply_top_level_tags();
        assert_eq!(merged.streams[0].tags, t);
        assert!(parse(STREAM).unwrap().streams[0].tags.is_empty());
    }

    #[test]
    fn bad_tags_name_the_field_and_the_fix() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "",
                "tags = { shard = 3 }",
                "text for tag `shard`: tag values are strings, so quote numbers and booleans (shard = \"3\", not shard = 3)",
            ),
            ("", "tags = { on = true }", "quote numbers and booleans"),
            (
                "",
                "tags = [\"eu\"]",
                "expected a table of text values such as { region = \"eu\"",
            ),
            (
                "",
                "tags = { Region = \"eu\" }",
                "stream `a`: tags.Region: the key `Region` is not a tag key; use 1 to 64 lower-case letters",
            ),
            (
                "tags = { \"a-b\" = \"x\" }\n",
                "",
                "tags.a-b: the key `a-b` is not a tag key",
            ),
            (
                "",
                "tags = { note = \"a\\nb\" }",
                "stream `a`: tags.note: the value `a\\nb` contains a control character",
            ),
            (
                "",
                "path = \"{tag.region}/x.jsonl\"",
                "stream `a`: path: `{tag.region}` names a tag the stream does not have; add `region = \"…\"` to the stream's `tags` (or to the top-level `tags`), or remove the placeholder",
            ),
            (
                "",
                "tags = { region = \"../up\" }\npath = \"{tag.region}/x.jsonl\"",
                "stream `a`: path: `{tag.region}`: the value `../up` starts with `.`",
            ),
            (
                "",
                "tags = { region = \"eu/x\" }\npath = \"{tag.region}/x.jsonl\"",
                "may contain only ASCII letters",
            ),
        ];
        for (top, stream, want) in cases {
            let text = format!("{top}{STREAM}{stream}\n");
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
        }
        // A value not used in the path may hold what a path may not.
        let c = parse(&format!("{STREAM}tags = {{ site = \"eu/west 1\" }}\n")).unwrap();
        assert_eq!(c.streams[0].tags["site"], "eu/west 1");
    }

    #[test]
    fn keys_values_and_path_values_are_checked() {
        for good in ["region", "a", "host_group_2", &"k".repeat(MAX_KEY_LEN)] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Region",
            "a-b",
            "a.b",
            "é",
            &"k".repeat(MAX_KEY_LEN + 1),
        ] {
            assert!(check_key(bad).unwrap_err().contains("lower-case"), "{bad}");
        }
        for good in [
            "",
            "eu west 1",
            "ünïcode",
            "a/b",
            &"v".repeat(MAX_VALUE_LEN),
        ] {
            assert!(check_value(good).is_ok(), "{good}");
        }
        assert!(check_value("a\nb").unwrap_err().contains("control"));
        assert!(check_value("a\0b").unwrap_err().contains("control"));
        assert!(
            check_value(&"v".repeat(MAX_VALUE_LEN + 1))
                .unwrap_err()
                .contains("at most 256")
        );
        for good in ["eu", "eu-west-1", "a.b", "x@y+z_1"] {
            assert!(check_place_value(good, Place::Path).is_ok(), "{good}");
            assert!(check_place_value(good, Place::UploadKey).is_ok(), "{good}");
        }
        for bad in [
            "", ".", "..", ".hidden", "-x", "a/b", "a\\b", "a b", "a\0b", "é",
        ] {
            assert!(
                check_place_value(bad, Place::Path)
                    .unwrap_err()
                    .contains("used in `path`"),
                "{bad:?}"
            );
            assert!(
                check_place_value(bad, Place::UploadKey)
                    .unwrap_err()
                    .contains("used in `upload.key`"),
                "{bad:?}"
            );
            assert!(check_place_value(bad, Place::Subject).is_err(), "{bad:?}");
        }
        // A dot would split a subject's token in two.
        assert!(check_place_value("eu-west_1", Place::Subject).is_ok());
        assert!(
            check_place_value("a.b", Place::Subject)
                .unwrap_err()
                .contains("no `.`")
        );
    }

    #[test]
    fn the_stream_wins_over_the_top_level() {
        let global: Tags = [("region", "eu"), ("role", "backup")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let own: Tags = [("role".to_owned(), "primary".to_owned())].into();
        let m = merged(&global, &own);
        assert_eq!(m["region"], "eu");
        assert_eq!(m["role"], "primary");
        let many: Tags = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(validate_tags(&many).unwrap_err().1.contains("at most 32"));
    }

    #[test]
    fn tag_arguments_are_key_equals_value() {
        assert_eq!(
            parse_tag_arg("region=eu=1").unwrap(),
            ("region".to_owned(), "eu=1".to_owned())
        );
        assert_eq!(
            parse_tag_arg("role=").unwrap(),
            ("role".to_owned(), String::new())
        );
        for bad in ["region", "=eu", ""] {
            assert!(
                parse_tag_arg(bad).unwrap_err().contains("KEY=VALUE"),
                "{bad}"
            );
        }
    }
}
