//! Startup recovery: files a previous run left open (crash, `kill -9`, power cut) are made
//! readable again before anything new is written.
//!
//! For every `*.open` file under the output directory: a torn last line (bytes after the last
//! `\n`) is cut off, keeping every complete line; a `recovered` event saying how many bytes were
//! cut, how many lines were kept and when the file was last written is appended (to the file
//! itself in envelope format, to the sidecar events file in raw format); the file is synced, gets
//! a manifest like a cleanly closed file, and is renamed to its final name (a free one if that is
//! taken), so it is then closed like any other file and picked up by the compressor and the
//! upload.
//!
//! # Which stream a file belongs to
//!
//! The `recovered` event and the manifest name the file's stream, never `""`. The name is, in
//! this order:
//!
//! 1. the stream of the file's first line, when that is an envelope record (envelope files and
//!    raw streams' sidecars): what the recorder itself wrote, so the event groups with the
//!    file's other records even if the configuration changed since;
//! 2. for a raw data file, the stream of its sidecar's first line;
//! 3. the configured stream whose path template gives this file's path (ignoring a part number
//!    `.N` and a sidecar's `.events`); this names the empty file of a recorder killed before
//!    its first flush;
//! 4. otherwise (the stream was renamed or removed from the configuration since) the name the
//!    file name suggests (`{stream}-…Z.jsonl`, `{stream}_{start_unix}.jsonl`, else the file's
//!    stem), with a warning.
//!
//! A name that no configured stream has is logged as a warning.
//!
//! # The manifest
//!
//! Rebuilt by reading the repaired file, `recovered` event included, so it agrees with the file
//! exactly (lines, bytes, XXH3-64) as `wsrec verify` checks it. Envelope lines give the
//! per-connection spans, gaps, events and disconnects as the writer counts them; a raw data
//! file's lines carry none of that, so its spans are empty. The interval start comes from the
//! path (template or file name), else from the first record, else from the file's last
//! modification. A raw data file's sidecar gets its manifest rebuilt after the event is added.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::hash::Hasher as _;
use std::io::{BufRead as _, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::format::{Parsed, StrftimeItems};

use crate::config::template::Placeholder;
use crate::config::{DEFAULT_ROTATE, Format, StreamConfig, Tags};
use crate::fsutil::OPEN_SUFFIX;
use crate::read::Entry;
use crate::store::manifest::FileKind;
use crate::store::manifest::{Manifest, ManifestBuilder};

/// What recovery did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The file's final name after recovery.
    pub path: PathBuf,
    /// The stream the file belongs to (never empty).
    pub stream: String,
    /// Bytes of a torn last line that were cut off.
    pub cut_bytes: u64,
    /// Complete lines kept.
    pub lines: u64,
}

/// Recovers every `.open` file under `dir`, naming each file's stream from its content or from
/// `streams` (the configuration now in effect). Errors on single files are logged and skipped
/// so one unreadable file does not stop the recorder.
pub fn recover_dir(dir: &Path, streams: &[StreamConfig], now_ns: u64) -> Vec<Recovered> {
    let mut open = Vec::new();
    crate::fsutil::files_under(dir, &mut open, |p| {
        p.to_string_lossy().ends_with(OPEN_SUFFIX)
    });
    // Sidecar events files first: a raw data file's recovery event is appended to its sidecar.
    open.sort_by_key(|p| {
        !crate::fsutil::is_events_name(crate::fsutil::strip_open_name(&p.to_string_lossy()))
    });
    let mut done = Vec::new();
    for path in open {
        match recover_file(dir, &path, streams, now_ns) {
            Ok(r) => {
                if r.cut_bytes > 0 {
                    tracing::warn!(path = %r.path.display(), stream = %r.stream, cut_bytes = r.cut_bytes, lines = r.lines, "Recovered a file left open by a previous run; its torn last line was cut.");
                } else {
                    tracing::warn!(path = %r.path.display(), stream = %r.stream, lines = r.lines, "Recovered a file left open by a previous run.");
                }
                done.push(r);
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "Cannot recover a file left open by a previous run; it is left as it is.");
            }
        }
    }
    done
}

/// Recovers one `.open` file under the output directory `dir`.
///
/// # Errors
/// The file cannot be read, cut, appended to or renamed, or its manifest cannot be written.
pub fn recover_file(
    dir: &Path,
    path: &Path,
    streams: &[StreamConfig],
    now_ns: u64,
) -> std::io::Result<Recovered> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let meta = file.metadata()?;
    let len = meta.len();
    let last_write_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let keep = complete_prefix_len(&mut file, len)?;
    // Always: besides cutting a torn line, this frees the space the disk worker had
    // reserved past the end.
    file.set_len(keep)?;
    let cut_bytes = len - keep;
    let first = first_line(&mut file, keep)?;
    let origin = Origin::of(dir, path, &first, streams);
    let final_path = free_final_path(path);
    let mut content = Content::new(origin.format != FileKind::Raw);
    content.read(&mut file, keep)?;
    let lines = content.lines;
    let event = recovered_event(
        now_ns,
        &origin.stream,
        &final_path,
        cut_bytes,
        lines,
        last_write_ns,
    );
    let interval = origin.interval_start(content.first_ts.or(last_write_ns));
    // A file that holds no `connected` event (a connection that began in an earlier file) has
    // the tags the config gives its stream now.
    let mut tags = streams
        .iter()
        .find(|s| s.name == origin.stream)
        .map(|s| s.tags.clone())
        .unwrap_or_default();
    if origin.format == FileKind::Raw {
        // Raw data: the mark goes to the sidecar events file (closed by now, or created),
        // whose manifest then changes with it.
        let sidecar = existing_events_path(&final_path);
        let mut side = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&sidecar)?;
        side.write_all(&event)?;
        side.sync_all()?;
        drop(side);
        // The raw lines hold no events: the data file's tags are those of its sidecar.
        tags = rebuild_manifest(&sidecar, &origin.stream, interval, &tags)?;
    } else {
        file.seek(SeekFrom::End(0))?;
        file.write_all(&event)?;
        content.line(&event[..event.len() - 1]);
    }
    file.sync_all()?;
    drop(file);
    let manifest = content.manifest(&final_path, &origin.stream, origin.format, interval, &tags);
    crate::store::manifest::write(&crate::store::manifest::path_for(&final_path), &manifest)?;
    std::fs::rename(path, &final_path)?;
    if let Some(dir) = final_path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(Recovered {
        path: final_path,
        stream: origin.stream,
        cut_bytes,
        lines,
    })
}

/// Whose file it is: stream, format and interval, as far as they can be told.
#[derive(Debug)]
struct Origin {
    stream: String,
    format: FileKind,
    /// The interval start the path gives.
    path_start_ns: Option<u64>,
    /// The stream's rotation interval (the default one if the stream is not configured).
    rotate_ns: u64,
}

impl Origin {
    /// Names the `.open` file `open` under `dir` whose first complete line is `first`.
    fn of(dir: &Path, open: &Path, first: &[u8], streams: &[StreamConfig]) -> Self {
        let base = crate::fsutil::strip_open(open);
        let rel = base
            .strip_prefix(dir)
            .unwrap_or(&base)
            .to_string_lossy()
            .into_owned();
        let sidecar = crate::fsutil::is_events_name(&rel);
        let configured = configured_stream(streams, &rel);
        let config_raw = configured.is_some_and(|(s, _)| s.format == Format::Raw);
        let format = if sidecar {
            FileKind::Events
        } else if first.is_empty() {
            if config_raw {
                FileKind::Raw
            } else {
                FileKind::Envelope
            }
        } else if !crate::read::looks_like_envelope(first) || config_raw {
            // The writer never writes a line that does not look like an envelope into an
            // envelope file; a raw stream's message may look like one.
            FileKind::Raw
        } else {
            FileKind::Envelope
        };
        let recorded = if format == FileKind::Raw {
            sidecar_stream(&existing_events_path(&base))
        } else {
            stream_name(first)
        };
        let hints = crate::read::RecordingFile::new(base.clone()).name_hints();
        let stream = match (recorded.filter(|s| !s.is_empty()), configured) {
            (Some(name), _) => {
                if !streams.iter().any(|s| s.name == name) {
                    tracing::warn!(path = %open.display(), stream = %name, "A file left open belongs to a stream that is not configured now; it is recovered under the name its records carry.");
                }
                name
            }
            (None, Some((s, _))) => s.name.clone(),
            (None, None) => {
                let name = Some(hints.stream.clone())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "unknown".to_owned());
                tracing::warn!(path = %open.display(), stream = %name, "A file left open names no stream and no configured stream's path template gives its path (a stream renamed or removed since?); it is recovered under the name its file name suggests.");
                name
            }
        };
        let rotate = configured
            .map(|(s, _)| s.rotate)
            .or_else(|| streams.iter().find(|s| s.name == stream).map(|s| s.rotate))
            .unwrap_or(DEFAULT_ROTATE);
        Self {
            stream,
            format,
            path_start_ns: configured.and_then(|(_, start)| start).or(hints.start_ns),
            rotate_ns: u64::try_from(rotate.as_nanos()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// The interval start for the manifest: the path's, else that of `ts` (the first record,
    /// or the file's last modification).
    fn interval_start(&self, ts: Option<u64>) -> u64 {
        self.path_start_ns
            .or_else(|| ts.map(|ts| crate::store::rotation::bucket_start(ts, self.rotate_ns)))
            .unwrap_or(0)
    }
}

/// The first configured stream whose template gives `rel` (relative to the output directory),
/// with the interval start the path encodes when it holds one.
fn configured_stream<'a>(
    streams: &'a [StreamConfig],
    rel: &str,
) -> Option<(&'a StreamConfig, Option<u64>)> {
    let data = crate::fsutil::events_data_name(rel).unwrap_or_else(|| rel.to_owned());
    let unparted = without_part(&data);
    let candidates = std::iter::once(data.as_str()).chain(unparted.as_deref());
    for candidate in candidates {
        for s in streams {
            if let Some(start) = template_match(&s.path, &s.name, &s.tags, candidate) {
                return Some((s, start));
            }
        }
    }
    None
}

/// `a/b.3.jsonl` -> `a/b.jsonl` (the inverse of [`crate::store::rotation::with_part`]); `None` when
/// the name has no part number.
fn without_part(rel: &str) -> Option<String> {
    let (stem, ext) = rel.rsplit_once('.')?;
    let (base, part) = stem.rsplit_once('.')?;
    let is_part = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (is_part && !base.ends_with('/')).then(|| format!("{base}.{ext}"))
}

/// Whether `template` renders `rel` for `stream` for some interval: `None` if not, else the
/// interval start the path encodes (`{start_unix}`, or its date and time fields; a missing
/// hour or minute counts as 0), if it encodes one.
fn template_match(template: &str, stream: &str, tags: &Tags, rel: &str) -> Option<Option<u64>> {
    // Names and tag values are literal text in the pattern; `{start_unix}` is the seconds field.
    let pattern = crate::config::template::expand(template, |p| match p {
        Placeholder::Stream => Ok(Cow::Owned(stream.replace('%', "%%"))),
        Placeholder::StartUnix => Ok(Cow::Borrowed("%s")),
        Placeholder::Tag(key) => tags
            .get(key)
            .map(|v| Cow::Owned(v.replace('%', "%%")))
            .ok_or_else(String::new),
    })
    .ok()?;
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, rel, StrftimeItems::new(&pattern)).ok()?;
    if parsed.timestamp().is_none() && parsed.year().is_some() {
        if parsed.hour_div_12().is_none() {
            let _ = parsed.set_hour(0);
        }
        if parsed.minute().is_none() {
            let _ = parsed.set_minute(0);
        }
    }
    let start = parsed
        .to_datetime_with_timezone(&chrono::Utc)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|ns| u64::try_from(ns).ok());
    Some(start)
}

/// The events sidecar of the raw data file `data` as found: the current name
/// (`x.events.ndjson`), else the name versions before wrote (`x.events.jsonl`) when that one
/// exists, closed or still open, so a recording made by one of them keeps one sidecar.
fn existing_events_path(data: &Path) -> PathBuf {
    let new = crate::store::rotation::events_path(data);
    let old = crate::fsutil::map_file_name(data, |name| {
        let stem = name.strip_suffix(crate::fsutil::DATA_EXT).unwrap_or(name);
        format!("{stem}{}", crate::fsutil::OLD_EVENTS_EXT)
    });
    let exists = |p: &Path| p.exists() || crate::fsutil::with_suffix(p, OPEN_SUFFIX).exists();
    if !exists(&new) && exists(&old) {
        old
    } else {
        new
    }
}

/// The stream named by the first line of a raw data file's sidecar (closed or still open).
fn sidecar_stream(sidecar: &Path) -> Option<String> {
    let mut open = sidecar.as_os_str().to_owned();
    open.push(OPEN_SUFFIX);
    [sidecar.to_owned(), PathBuf::from(open)]
        .iter()
        .find_map(|p| {
            let mut f = File::open(p).ok()?;
            let len = f.metadata().ok()?.len();
            stream_name(&first_line(&mut f, len).ok()?)
        })
        .filter(|s| !s.is_empty())
}

/// Reads a file's complete lines into a manifest.
struct Content {
    builder: ManifestBuilder,
    hash: twox_hash::XxHash3_64,
    bytes: u64,
    lines: u64,
    /// Lines are envelope records (their fields go into the manifest).
    envelope: bool,
    /// Receive time of the first record.
    first_ts: Option<u64>,
    /// The tags of the first `connected` event read (empty when it had none); `None` before
    /// one is read.
    tags: Option<Tags>,
}

impl Content {
    fn new(envelope: bool) -> Self {
        Self {
            builder: ManifestBuilder::default(),
            hash: twox_hash::XxHash3_64::new(),
            bytes: 0,
            lines: 0,
            envelope,
            first_ts: None,
            tags: None,
        }
    }

    /// Reads the first `len` bytes of `file` (complete lines).
    fn read(&mut self, file: &mut File, len: u64) -> std::io::Result<()> {
        file.seek(SeekFrom::Start(0))?;
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, file.take(len));
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            self.line(&line);
        }
    }

    /// One line, without its newline.
    fn line(&mut self, line: &[u8]) {
        self.hash.write(line);
        self.hash.write(b"\n");
        self.bytes += line.len() as u64 + 1;
        self.lines += 1;
        if !self.envelope {
            return;
        }
        match self.builder.line(line) {
            Some(Entry::Message(m)) => {
                self.first_ts.get_or_insert(m.ts);
            }
            Some(Entry::Snapshot(sn)) => {
                self.first_ts.get_or_insert(sn.ts);
            }
            // The repair's own mark is not a record of the interval.
            Some(Entry::Event(e)) if e.name != "recovered" => {
                self.first_ts.get_or_insert(e.ts);
                // The tags the run that wrote the file gave its stream (the config may have
                // changed since).
                if e.name == "connected" && self.tags.is_none() {
                    self.tags = Some(
                        crate::read::EventDetail::parse(line)
                            .tags
                            .unwrap_or_default(),
                    );
                }
            }
            Some(Entry::Event(_)) | None => {}
        }
    }

    /// The manifest of what was read, for the file `path` of `stream`; `tags` are the stream's
    /// when the file holds no `connected` event that says them.
    fn manifest(
        self,
        path: &Path,
        stream: &str,
        format: FileKind,
        interval: u64,
        tags: &Tags,
    ) -> Manifest {
        let spans = ManifestBuilder::new(path, stream, format.name(), interval);
        Manifest {
            lines: self.lines,
            bytes: self.bytes,
            xxh3_64: format!("{:016x}", self.hash.finish()),
            connections: self.builder.manifest.connections,
            seq_gaps: self.builder.manifest.seq_gaps,
            events: self.builder.manifest.events,
            snapshots: self.builder.manifest.snapshots,
            disconnects: self.builder.manifest.disconnects,
            recovered: true,
            tags: self.tags.unwrap_or_else(|| tags.clone()),
            ..spans.manifest
        }
    }
}

/// Writes the manifest of a raw stream's sidecar from its content, and returns the tags it
/// gives (those of its `connected` event, else `tags`).
fn rebuild_manifest(
    sidecar: &Path,
    stream: &str,
    interval: u64,
    tags: &Tags,
) -> std::io::Result<Tags> {
    let mut f = File::open(sidecar)?;
    let len = f.metadata()?.len();
    let mut content = Content::new(true);
    let keep = complete_prefix_len(&mut f, len)?;
    content.read(&mut f, keep)?;
    let m = content.manifest(sidecar, stream, FileKind::Events, interval, tags);
    crate::store::manifest::write(&crate::store::manifest::path_for(sidecar), &m)?;
    Ok(m.tags)
}

/// Length of the file up to and including its last `\n`.
fn complete_prefix_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn first_line(file: &mut File, len: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = vec![0u8; len.min(4096) as usize];
    file.read_exact(&mut head)?;
    if let Some(i) = memchr::memchr(b'\n', &head) {
        head.truncate(i);
    }
    Ok(head)
}

fn stream_name(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        stream: String,
    }
    serde_json::from_slice::<Head>(line).ok().map(|h| h.stream)
}

fn recovered_event(
    now_ns: u64,
    stream: &str,
    file: &Path,
    cut_bytes: u64,
    lines: u64,
    last_write_ns: Option<u64>,
) -> Vec<u8> {
    let mut line = Vec::new();
    let num = |line: &mut Vec<u8>, key: &[u8], value: u64| {
        line.extend_from_slice(key);
        line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    };
    num(&mut line, b"{\"ts\":", now_ns);
    line.extend_from_slice(b",\"stream\":");
    crate::json::write_json_string(stream.as_bytes(), &mut line);
    line.extend_from_slice(b",\"conn\":0,\"event\":\"recovered\",\"file\":");
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::json::write_json_string(name.as_bytes(), &mut line);
    num(&mut line, b",\"cut_bytes\":", cut_bytes);
    num(&mut line, b",\"lines\":", lines);
    if let Some(ns) = last_write_ns {
        num(&mut line, b",\"last_write_ts\":", ns);
    }
    line.extend_from_slice(b"}\n");
    line
}

/// The final name for an `.open` file: its name without the suffix, or a numbered part if a
/// file of that name (or its compressed form) already exists.
fn free_final_path(open: &Path) -> PathBuf {
    let base = crate::fsutil::strip_open(open);
    let mut part = 0;
    loop {
        let candidate = crate::store::rotation::with_part(&base, part);
        let taken = ["", ".zst", ".gz"].iter().any(|suffix| {
            let mut p = candidate.as_os_str().to_owned();
            p.push(suffix);
            Path::new(&p).exists()
        });
        if !taken {
            return candidate;
        }
        part += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> String {
        format!("{{\"ts\":1,\"stream\":\"s\",\"conn\":1,\"seq\":{seq},\"msg\":{{\"n\":{seq}}}}}\n")
    }

    /// The manifest recovery wrote for `data`, checked against the file's content.
    fn manifest_of(data: &Path) -> Manifest {
        let m: Manifest =
            serde_json::from_slice(&std::fs::read(crate::store::manifest::path_for(data)).unwrap())
                .unwrap();
        let body = std::fs::read(data).unwrap();
        assert_eq!(m.bytes, body.len() as u64, "{m:?}");
        assert_eq!(m.lines, memchr::memchr_iter(b'\n', &body).count() as u64);
        assert_eq!(
            m.xxh3_64,
            format!("{:016x}", twox_hash::XxHash3_64::oneshot(&body))
        );
        assert!(m.recovered);
        m
    }

    fn configured(name: &str, path: &str, format: Format) -> StreamConfig {
        let mut s: StreamConfig =
            toml::from_str(&format!("name = '{name}'\nurl = 'ws://h/'")).unwrap();
        s.path = path.to_owned();
        s.format = format;
        s
    }

    #[test]
    fn cuts_a_torn_line_and_marks_it() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("s/a.jsonl.open");
        std::fs::create_dir_all(open.parent().unwrap()).unwrap();
        let torn = format!("{}{}{{\"ts\":1,\"str", line(0), line(1));
        std::fs::write(&open, &torn).unwrap();
        let done = recover_dir(dir.path(), &[], 42);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].cut_bytes, 12);
        assert_eq!(done[0].lines, 2);
        assert_eq!(done[0].stream, "s");
        assert!(!open.exists());
        let data = dir.path().join("s/a.jsonl");
        let text = std::fs::read_to_string(&data).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let ev: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(ev["event"], "recovered");
        assert_eq!(ev["cut_bytes"], 12);
        assert_eq!(ev["lines"], 2);
        assert_eq!(ev["stream"], "s");
        assert_eq!(ev["file"], "a.jsonl");
        assert!(ev["last_write_ts"].as_u64().unwrap() > 0, "{ev}");
        let m = manifest_of(&data);
        assert_eq!((m.stream.as_str(), m.format.as_str()), ("s", "envelope"));
        assert_eq!((m.events, m.seq_gaps), (1, 0));
        assert_eq!(m.connections.len(), 1);
        assert_eq!(
            (m.connections[0].messages, m.connections[0].last_seq),
            (2, 1)
        );
        // No path template and no interval in the name: the first record's hour.
        assert_eq!(m.interval_start_ns, 0);
    }

    /// Issue 21: a recovered file's manifest names the tags its own `connected` event gave
    /// (the run that wrote it), whatever the config says now; a raw file takes its sidecar's.
    #[test]
    fn recovered_manifests_keep_the_tags_of_the_run_that_wrote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let connected = |stream: &str| {
            format!(
                "{{\"ts\":5,\"stream\":\"{stream}\",\"conn\":1,\"event\":\"connected\",\
                 \"tags\":{{\"region\":\"eu\"}}}}\n"
            )
        };
        let open = dir.path().join("s/a.jsonl.open");
        std::fs::create_dir_all(open.parent().unwrap()).unwrap();
        std::fs::write(&open, format!("{}{}", connected("s"), line(0))).unwrap();
        std::fs::write(dir.path().join("r_1795514400.jsonl.open"), "{}\n").unwrap();
        std::fs::write(
            dir.path().join("r_1795514400.events.ndjson.open"),
            connected("r"),
        )
        .unwrap();
        // A later file of the same connection holds no `connected` event: the config says.
        std::fs::write(dir.path().join("s/b.jsonl.open"), line(1)).unwrap();
        // A run without tags wrote this one: it stays without, whatever the config says now.
        std::fs::write(
            dir.path().join("s/c.jsonl.open"),
            format!(
                "{{\"ts\":5,\"stream\":\"s\",\"conn\":1,\"event\":\"connected\"}}\n{}",
                line(0)
            ),
        )
        .unwrap();
        let mut now = configured("s", "{stream}/a.jsonl", Format::Envelope);
        now.tags = [("region".to_owned(), "us".to_owned())].into();
        let us = now.tags.clone();
        assert_eq!(recover_dir(dir.path(), &[now], 1).len(), 5);
        let eu: Tags = [("region".to_owned(), "eu".to_owned())].into();
        for data in [
            "s/a.jsonl",
            "r_1795514400.jsonl",
            "r_1795514400.events.ndjson",
        ] {
            assert_eq!(manifest_of(&dir.path().join(data)).tags, eu, "{data}");
        }
        assert_eq!(manifest_of(&dir.path().join("s/b.jsonl")).tags, us);
        assert!(manifest_of(&dir.path().join("s/c.jsonl")).tags.is_empty());
    }

    #[test]
    fn space_reserved_past_the_end_is_given_back() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("r.jsonl.open");
        std::fs::write(&open, line(0)).unwrap();
        let file = OpenOptions::new().append(true).open(&open).unwrap();
        if crate::fsutil::reserve(&file, 0, 8 << 20).is_err() {
            eprintln!("this file system cannot reserve space; nothing to give back");
            return;
        }
        drop(file);
        assert!(std::fs::metadata(&open).unwrap().blocks() * 512 >= 8 << 20);
        let done = recover_dir(dir.path(), &[], 1);
        assert_eq!((done[0].cut_bytes, done[0].lines), (0, 1));
        let meta = std::fs::metadata(dir.path().join("r.jsonl")).unwrap();
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        let text = std::fs::read_to_string(dir.path().join("r.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(&line(0)));
    }

    #[test]
    fn an_empty_file_is_named_by_the_configured_template_and_gets_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let streams = [
            configured(
                "other",
                crate::config::DEFAULT_PATH_TEMPLATE,
                Format::Envelope,
            ),
            configured(
                "feed",
                crate::config::DEFAULT_PATH_TEMPLATE,
                Format::Envelope,
            ),
        ];
        let sub = dir.path().join("feed/2026-11-24");
        std::fs::create_dir_all(&sub).unwrap();
        // A recorder killed before its first flush, and a second file of the same hour.
        std::fs::write(sub.join("feed-20261124T100000Z.jsonl.open"), "").unwrap();
        std::fs::write(sub.join("feed-20261124T100000Z.2.jsonl.open"), line(0)).unwrap();
        let mut done = recover_dir(dir.path(), &streams, 7);
        done.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(done.len(), 2);
        let empty = &done[1];
        assert_eq!(empty.path, sub.join("feed-20261124T100000Z.jsonl"));
        assert_eq!((empty.stream.as_str(), empty.lines), ("feed", 0));
        let text = std::fs::read_to_string(&empty.path).unwrap();
        assert!(
            text.starts_with(r#"{"ts":7,"stream":"feed","conn":0,"event":"recovered""#),
            "{text}"
        );
        let m = manifest_of(&empty.path);
        assert_eq!((m.stream.as_str(), m.lines, m.events), ("feed", 1, 1));
        // 2026-11-24T10:00:00Z, from the path.
        assert_eq!(m.interval_start_ns, 1_795_514_400_000_000_000);
        // The file's own first line names the stream ("s"), whatever the config says.
        assert_eq!(done[0].stream, "s");
        let m = manifest_of(&done[0].path);
        assert_eq!(m.interval_start_ns, 1_795_514_400_000_000_000);
    }

    #[test]
    fn templates_are_matched_with_their_time() {
        let hour = Some(Some(1_795_514_400_000_000_000));
        let t = crate::config::DEFAULT_PATH_TEMPLATE;
        assert_eq!(
            template_match(
                t,
                "feed",
                &Tags::new(),
                "feed/2026-11-24/feed-20261124T100000Z.jsonl"
            ),
            hour
        );
        assert_eq!(
            template_match(
                t,
                "fee",
                &Tags::new(),
                "feed/2026-11-24/feed-20261124T100000Z.jsonl"
            ),
            None
        );
        assert_eq!(
            template_match(
                "{stream}_{start_unix}.jsonl",
                "t.BTC",
                &Tags::new(),
                "t.BTC_1795514400.jsonl"
            ),
            hour
        );
        assert_eq!(
            template_match(
                "%Y/%m/%d/{stream}-%H.jsonl",
                "a",
                &Tags::new(),
                "2026/11/24/a-10.jsonl"
            ),
            hour
        );
        assert_eq!(
            template_match("{stream}.jsonl", "a", &Tags::new(), "a.jsonl"),
            Some(None),
            "a match, but no time in the path"
        );
        // Issue 21: a tag in the path is matched by its value.
        let tags: Tags = [("region".to_owned(), "eu".to_owned())].into();
        let tagged = "{tag.region}/{stream}-%Y%m%dT%H.jsonl";
        assert_eq!(
            template_match(tagged, "a", &tags, "eu/a-20261124T10.jsonl"),
            hour
        );
        assert_eq!(
            template_match(tagged, "a", &tags, "us/a-20261124T10.jsonl"),
            None
        );
        assert_eq!(
            template_match(tagged, "a", &Tags::new(), "eu/a-20261124T10.jsonl"),
            None
        );
        let streams = [configured(
            "t.BTC",
            "{stream}_{start_unix}.jsonl",
            Format::Raw,
        )];
        for rel in [
            "t.BTC_1795514400.1.jsonl",
            "t.BTC_1795514400.events.jsonl",
            "t.BTC_1795514400.3.events.jsonl",
            "t.BTC_1795514400.events.ndjson",
            "t.BTC_1795514400.3.events.ndjson",
        ] {
            let (s, start) = configured_stream(&streams, rel).unwrap();
            assert_eq!((s.name.as_str(), Some(start)), ("t.BTC", hour), "{rel}");
        }
        assert!(configured_stream(&streams, "t.ETH_1795514400.jsonl").is_none());
    }

    #[test]
    fn raw_files_get_the_mark_in_their_sidecar_and_names_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t_1795514400.jsonl"), "old\n").unwrap();
        std::fs::write(
            dir.path().join("t_1795514400.jsonl.open"),
            "{\"a\":1}\n{\"a\"",
        )
        .unwrap();
        let done = recover_dir(dir.path(), &[], 1);
        let data = dir.path().join("t_1795514400.1.jsonl");
        assert_eq!(done[0].path, data);
        // No sidecar and no configuration: the file name tells the stream.
        assert_eq!(done[0].stream, "t");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("t_1795514400.jsonl")).unwrap(),
            "old\n"
        );
        assert_eq!(std::fs::read_to_string(&data).unwrap(), "{\"a\":1}\n");
        let side_path = dir.path().join("t_1795514400.1.events.ndjson");
        let side = std::fs::read_to_string(&side_path).unwrap();
        assert!(side.contains("\"event\":\"recovered\"") && side.contains("\"cut_bytes\":4"));
        let m = manifest_of(&data);
        assert_eq!((m.format.as_str(), m.lines, m.events), ("raw", 1, 0));
        assert_eq!(m.interval_start_ns, 1_795_514_400_000_000_000);
        let m = manifest_of(&side_path);
        assert_eq!((m.format.as_str(), m.stream.as_str()), ("events", "t"));
    }

    #[test]
    fn a_raw_pair_is_named_by_its_sidecar_and_both_manifests_match() {
        // The sidecar under its current name, and under the name older versions gave it (the
        // mark then goes to that one: a recording keeps one sidecar).
        for side_name in ["events.ndjson", "events.jsonl"] {
            raw_pair_recovers_with(side_name);
        }
    }

    fn raw_pair_recovers_with(side_name: &str) {
        let dir = tempfile::tempdir().unwrap();
        let streams = [configured("x", "{stream}_{start_unix}.jsonl", Format::Raw)];
        let connected = "{\"ts\":5,\"stream\":\"renamed\",\"conn\":1,\"event\":\"connected\"}\n";
        std::fs::write(
            dir.path()
                .join(format!("renamed_1795514400.{side_name}.open")),
            connected,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("renamed_1795514400.jsonl.open"),
            "{\"a\":1}\n[2]\n",
        )
        .unwrap();
        let done = recover_dir(dir.path(), &streams, 9);
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|r| r.stream == "renamed"), "{done:?}");
        let side = dir.path().join(format!("renamed_1795514400.{side_name}"));
        let m = manifest_of(&side);
        assert_eq!((m.lines, m.events), (3, 3), "connected and two marks");
        let m = manifest_of(&dir.path().join("renamed_1795514400.jsonl"));
        assert_eq!((m.lines, m.format.as_str()), (2, "raw"));
        assert_eq!(m.interval_start_ns, 1_795_514_400_000_000_000);
    }

    #[test]
    fn a_file_without_any_newline_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.jsonl.open"),
            "{\"ts\":1,\"stream\":\"s\"",
        )
        .unwrap();
        let done = recover_dir(dir.path(), &[], 1);
        assert_eq!(done[0].lines, 0);
        let text = std::fs::read_to_string(dir.path().join("d.jsonl")).unwrap();
        assert!(
            text.starts_with("{\"ts\":1,\"stream\":\"d\",\"conn\":0,\"event\":\"recovered\""),
            "named after the file, never \"\": {text}"
        );
    }
}
