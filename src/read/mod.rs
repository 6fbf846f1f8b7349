//! The read side of a recording, shared by `cat`, `verify`, `stats` and `replay`: finding the
//! recording files under the paths given, opening plain, zstd and gzip files alike (also `.open`
//! files still being written), streaming their lines in constant memory, and parsing envelope
//! lines without re-serialising the message.
//!
//! Nothing here panics or gives up on bad input: a line that is not a record is handed to the
//! caller as such (with its file and line number), the last line of a file that has no newline
//! yet is marked *torn* (normal for an `.open` file, damage for a closed one), and a file that
//! cannot be read to its end yields an error item after the lines that could be read.
//!
//! [`Scan`] walks the files either one after the other or merged in receive-time order: files
//! of one stream follow each other in time (that is how the writer makes them), so a merge keeps
//! one open file per stream and a heap of their next timestamps.
//!
//! The parts: `files` (finding and classifying files), `lines` (decoding a file into lines),
//! `entry` (parsing a line) and `scan` (one file after the other, or merged).

use std::io;
use std::path::PathBuf;

mod entry;
mod files;
mod lines;
mod scan;

pub use entry::{
    Entry, Event, EventDetail, MAX_INFLATED, Message, Payload, Snapshot, SnapshotDetail,
    looks_like_envelope, quick_ts,
};
pub use files::{Codec, NameHints, RecordingFile, discover};
pub use lines::{LineInfo, LineReader};
pub use scan::{Item, Order, Probe, Scan, content_size, probe};

/// A longer line is skipped and reported rather than buffered (a file without newlines must
/// not take all memory). Far above the largest message the recorder accepts by default
/// (64 MiB, base64-encoded in the envelope).
pub const MAX_LINE: usize = 512 * 1024 * 1024;

/// Buffer size of the readers.
const READ_BUF: usize = 256 * 1024;

/// Why a file could not be found, opened or read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A path given on the command line does not exist.
    #[error(
        "{}: no such file or directory; give recording files (.jsonl, .jsonl.zst, .jsonl.gz) or directories that hold them",
        path.display()
    )]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A file or directory could not be opened or listed.
    #[error("cannot open {}: {source}; check that it exists and is readable", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading stopped part way (I/O error, or compressed data that is damaged or cut short).
    #[error(
        "{}: cannot read past line {line}: {source}{hint}; the lines before it were read",
        path.display(),
        hint = if *compressed { " (the compressed data is damaged or cut short)" } else { "" }
    )]
    Stream {
        /// The file.
        path: PathBuf,
        /// Lines read before the failure.
        line: u64,
        /// Whether the file is compressed.
        compressed: bool,
        /// Why.
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::files::name_hints;
    use super::*;

    use std::path::Path;

    fn reader(bytes: &'static [u8]) -> LineReader {
        LineReader::from_reader("t.jsonl".into(), Codec::Plain, Box::new(bytes)).unwrap()
    }

    fn lines(mut r: LineReader) -> Vec<(String, LineInfo)> {
        let mut out = Vec::new();
        while let Some(info) = r.advance().unwrap() {
            out.push((String::from_utf8_lossy(r.line()).into_owned(), info));
        }
        out
    }

    #[test]
    fn lines_and_torn_tail() {
        let got = lines(reader(b"a\nbb\n\nccc"));
        let text: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(text, ["a", "bb", "", "ccc"]);
        assert!(!got[2].1.torn);
        assert!(got[3].1.torn);
        assert_eq!(got[3].1.number, 4);
        assert!(lines(reader(b"")).is_empty());
        let got = lines(reader(b"x\n"));
        assert_eq!(got.len(), 1);
        assert!(!got[0].1.torn);
    }

    #[test]
    fn compressed_readers_give_the_same_lines() {
        let text = b"{\"a\":1}\n{\"b\":2}\n";
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text).unwrap();
        let gz = gz.finish().unwrap();
        for (codec, bytes) in [(Codec::Zstd, zst), (Codec::Gzip, gz)] {
            let r =
                LineReader::from_reader("t".into(), codec, Box::new(std::io::Cursor::new(bytes)))
                    .unwrap();
            let got: Vec<String> = lines(r).into_iter().map(|(s, _)| s).collect();
            assert_eq!(got, ["{\"a\":1}", "{\"b\":2}"], "{codec:?}");
        }
    }

    #[test]
    fn truncated_zstd_is_an_error_after_the_good_lines() {
        // Incompressible enough to span many zstd blocks.
        let mut x: u64 = 1;
        let text: Vec<u8> = (0..50_000)
            .flat_map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                format!("{{\"n\":{x}}}\n").into_bytes()
            })
            .collect();
        let mut zst = zstd::encode_all(&text[..], 3).unwrap();
        zst.truncate(zst.len() / 2);
        let mut r = LineReader::from_reader(
            "t.jsonl.zst".into(),
            Codec::Zstd,
            Box::new(std::io::Cursor::new(zst)),
        )
        .unwrap();
        let mut n = 0;
        let err = loop {
            match r.advance() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("a cut zstd stream must not end cleanly"),
                Err(e) => break e,
            }
        };
        assert!(n > 0);
        let msg = err.to_string();
        assert!(msg.contains("t.jsonl.zst: cannot read past line"), "{msg}");
        assert!(msg.contains("damaged or cut short"), "{msg}");
    }

    #[test]
    fn envelope_lines_parse_without_touching_the_message() {
        let line = br#"{"ts":5,"stream":"s","conn":2,"seq":7,"msg":{"b":1.50, "a" : [1e3]}}"#;
        let Entry::Message(m) = Entry::parse(line).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(m.payload, Payload::Json(r#"{"b":1.50, "a" : [1e3]}"#));
        assert_eq!((m.ts, m.conn, m.seq, &*m.stream), (5, 2, 7, "s"));
        let line = br#"{"ts":5,"stream":"s","conn":2,"seq":8,"text":"a\nb"}"#;
        let Entry::Message(m) = Entry::parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(m.payload.bytes().unwrap().as_ref(), b"a\nb");
        let line = br#"{"ts":5,"stream":"s","conn":2,"seq":9,"bin":"AAEC/w=="}"#;
        let Entry::Message(m) = Entry::parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(m.payload.bytes().unwrap().as_ref(), [0, 1, 2, 255]);
        assert_eq!(m.payload.len(), 4);
        let line = br#"{"ts":6,"stream":"s","conn":2,"event":"disconnected","reason":"error","detail":"x","messages":3,"duration_ms":10}"#;
        let Entry::Event(e) = Entry::parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(e.name, "disconnected");
        let d = EventDetail::parse(line);
        assert_eq!(d.reason.as_deref(), Some("error"));
        assert_eq!(d.duration_ms, Some(10));
    }

    #[test]
    fn snapshot_lines_parse_with_their_request_and_body() {
        let line = br#"{"ts":9,"stream":"s","conn":3,"snapshot":{"symbol":"BTCUSDT","status":200,"attempts":2,"new_key":[1]},"msg":{"lastUpdateId": 5}}"#;
        let Entry::Snapshot(sn) = Entry::parse(line).unwrap() else {
            panic!("not a snapshot")
        };
        assert_eq!((sn.ts, sn.conn, &*sn.stream), (9, 3, "s"));
        assert_eq!(sn.payload, Payload::Json(r#"{"lastUpdateId": 5}"#));
        let d = SnapshotDetail::parse(sn.request);
        assert_eq!(d.symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(
            (d.status, d.attempts, d.first_id),
            (Some(200), Some(2), None)
        );
        let line = br#"{"ts":9,"stream":"s","conn":3,"snapshot":{},"text":"<html>"}"#;
        let Entry::Snapshot(sn) = Entry::parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(sn.payload.bytes().unwrap().as_ref(), b"<html>");
        let e = Entry::parse(br#"{"ts":9,"stream":"s","conn":3,"snapshot":1,"msg":1}"#);
        assert!(e.unwrap_err().contains("not an object"));
        let e = Entry::parse(br#"{"ts":9,"stream":"s","conn":3,"snapshot":{}}"#);
        assert!(e.unwrap_err().contains("no `msg`"));
        let line = br#"{"ts":9,"stream":"s","conn":3,"event":"snapshot_failed","symbol":"ETHUSDT","url":"https://x/depth?symbol=ETHUSDT","status":429,"error":"rate limited","attempts":5}"#;
        let d = EventDetail::parse(line);
        assert_eq!(d.symbol.as_deref(), Some("ETHUSDT"));
        assert_eq!((d.status, d.attempts), (Some(429), Some(5)));
        assert_eq!(d.error.as_deref(), Some("rate limited"));
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for (line, want) in [
            (
                &b"{\"ts\":1,\"stream\":\"s\",\"conn\":1,\"seq\":0,\"msg\":{\"a\""[..],
                "EOF",
            ),
            (b"{\"ts\":1,\"stream\":\"s\",\"conn\":1}", "neither"),
            (
                b"{\"ts\":1,\"stream\":\"s\",\"conn\":1,\"seq\":1}",
                "no `msg`",
            ),
            (b"garbage", "expected value"),
            (b"", "EOF"),
            (
                b"{\"ts\":-1,\"stream\":\"s\",\"conn\":1,\"seq\":1,\"msg\":1}",
                "invalid",
            ),
        ] {
            let e = Entry::parse(line).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("line 1"), "{e}");
        }
    }

    #[test]
    fn quick_ts_reads_the_prefix() {
        assert_eq!(quick_ts(b"{\"ts\":123,\"stream\":\"a\"}"), Some(123));
        assert_eq!(quick_ts(b"{\"ts\":,"), None);
        assert_eq!(quick_ts(b"{\"a\":1}"), None);
    }

    #[test]
    fn names_are_classified() {
        let f = RecordingFile::new("d/s-20261124T100000Z.1.jsonl.zst.open".into());
        assert_eq!(f.codec, Codec::Zstd);
        assert!(f.is_open);
        assert!(!f.is_events);
        assert_eq!(f.logical_name(), "s-20261124T100000Z.1.jsonl");
        let h = f.name_hints();
        assert_eq!(h.stream, "s");
        assert_eq!(h.start_ns, Some(1_795_514_400_000_000_000));
        let h = name_hints("publicTrade.BTCUSDT_1795514400.jsonl");
        assert_eq!(h.stream, "publicTrade.BTCUSDT");
        assert_eq!(h.start_ns, Some(1_795_514_400_000_000_000));
        assert_eq!(name_hints("plain.jsonl").stream, "plain");
        assert!(RecordingFile::new("x.events.jsonl.gz".into()).is_events);
        assert!(RecordingFile::new("x.events.ndjson.zst".into()).is_events);
        for (name, yes) in [
            ("a.jsonl", true),
            ("a.jsonl.zst", true),
            ("a.jsonl.gz.open", true),
            ("a.jsonl.open", true),
            ("a.jsonl.zst.tmp", false),
            ("a.jsonl.manifest.json", false),
            ("a.manifest.json", false),
            ("a.events.manifest.json", false),
            ("a.events.ndjson", true),
            ("a.events.ndjson.zst.open", true),
            ("a.events.jsonl", true),
            (".hidden.jsonl", false),
            ("notes.txt", false),
        ] {
            assert_eq!(RecordingFile::is_recording_name(name), yes, "{name}");
        }
    }

    #[test]
    fn discovery_orders_parts_and_skips_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [
            "s-20261124T100000Z.jsonl",
            "s-20261124T100000Z.1.jsonl",
            "s-20261124T100000Z.2.jsonl.zst",
            "s-20261124T110000Z.jsonl.open",
            "s-20261124T090000Z.jsonl",
            "s-20261124T090000Z.jsonl.zst",
            "s-20261124T090000Z.jsonl.manifest.json",
            "s-20261124T100000Z.manifest.json",
            "s-20261124T100000Z.events.ndjson",
            "s-20261124T100000Z.events.manifest.json",
            "notes.txt",
        ] {
            std::fs::write(d.join(name), b"").unwrap();
        }
        let files = discover(&[d.to_owned()]).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "s-20261124T090000Z.jsonl",
                "s-20261124T100000Z.jsonl",
                "s-20261124T100000Z.events.ndjson",
                "s-20261124T100000Z.1.jsonl",
                "s-20261124T100000Z.2.jsonl.zst",
                "s-20261124T110000Z.jsonl.open",
            ]
        );
        let err = discover(&[d.join("missing")]).unwrap_err().to_string();
        assert!(err.contains("missing: no such file or directory"), "{err}");
    }

    fn write(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    fn rec(ts: u64, stream: &str, seq: u64) -> String {
        format!(r#"{{"ts":{ts},"stream":"{stream}","conn":1,"seq":{seq},"msg":{{"n":{seq}}}}}"#)
    }

    fn collect(scan: &mut Scan) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(item) = scan.next_item() {
            match item {
                Item::Line { bytes, .. } => out.push(String::from_utf8_lossy(bytes).into_owned()),
                Item::FileEnd { .. } => out.push("END".to_owned()),
                Item::Error(e) => out.push(format!("ERR {e}")),
            }
        }
        out
    }

    #[test]
    fn merged_scan_interleaves_streams_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a-1.jsonl"), &[rec(1, "a", 0), rec(4, "a", 1)]);
        write(&d.join("a-2.jsonl"), &[rec(6, "a", 2), rec(9, "a", 3)]);
        write(
            &d.join("b-1.jsonl"),
            &[rec(2, "b", 0), rec(5, "b", 1), rec(7, "b", 2)],
        );
        let files = discover(&[d.to_owned()]).unwrap();
        let got: Vec<u64> = collect(&mut Scan::new(files.clone(), Order::Merged))
            .iter()
            .filter_map(|l| quick_ts(l.as_bytes()))
            .collect();
        assert_eq!(got, [1, 2, 4, 5, 6, 7, 9]);
        let got = collect(&mut Scan::new(files, Order::Files));
        assert_eq!(got.iter().filter(|l| *l == "END").count(), 3);
        assert_eq!(got.len(), 10);
    }

    #[test]
    fn unreadable_files_are_items_not_failures() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a.jsonl"), &[rec(1, "a", 0)]);
        std::fs::write(d.join("b.jsonl.zst"), b"not zstd at all").unwrap();
        write(&d.join("c.jsonl"), &[rec(3, "c", 0)]);
        let files = discover(&[d.to_owned()]).unwrap();
        let got = collect(&mut Scan::new(files, Order::Files));
        assert_eq!(got.len(), 6, "{got:?}");
        assert!(got[2].starts_with("ERR "), "{got:?}");
        assert!(got[2].contains("b.jsonl.zst"), "{got:?}");
        assert_eq!(got[3], "END");
        assert!(got[4].contains("\"stream\":\"c\""));
    }

    #[test]
    fn progress_counts_uncompressed_bytes_against_the_uncompressed_size() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let lines =
            |stream: &str| -> Vec<String> { (0..2000).map(|i| rec(i, stream, i)).collect() };
        // A plain file, a compressed one with its manifest, a compressed one without.
        write(&d.join("a.jsonl"), &lines("a"));
        let mut content = 0;
        for (name, manifest) in [("b", true), ("c", false)] {
            let mut text = lines(name).join("\n");
            text.push('\n');
            content += text.len() as u64;
            std::fs::write(
                d.join(format!("{name}.jsonl.zst")),
                zstd::encode_all(text.as_bytes(), 3).unwrap(),
            )
            .unwrap();
            if manifest {
                std::fs::write(
                    d.join(format!("{name}.manifest.json")),
                    format!(
                        r#"{{"file":"{name}.jsonl","lines":2000,"bytes":{}}}"#,
                        text.len()
                    ),
                )
                .unwrap();
            }
        }
        let plain = std::fs::metadata(d.join("a.jsonl")).unwrap().len();
        let files = discover(&[d.to_owned()]).unwrap();
        let on_disk: u64 = files.iter().map(|f| f.size).sum();
        let total = content_size(&files);
        // The file without a manifest is estimated from the other's ratio: the same content
        // compresses alike, so the estimate is close.
        let want = plain + content;
        assert!(total.abs_diff(want) * 50 < want, "{total} against {want}");
        // Sizes on disk (what the bar measured before) are far from it.
        assert!(on_disk * 3 < want * 2, "{on_disk} on disk against {want}");
        let mut scan = Scan::new(files, Order::Merged);
        collect(&mut scan);
        assert_eq!(scan.content_read(), want);
    }
}
