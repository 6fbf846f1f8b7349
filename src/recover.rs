//! Startup recovery: files a previous run left open (crash, `kill -9`, power cut) are made
//! readable again before anything new is written.
//!
//! For every `*.open` file under the output directory: a torn last line (bytes after the last
//! `\n`) is cut off, keeping every complete line; a `recovered` event saying how many bytes were
//! cut is appended (to the file itself in envelope format, to the sidecar events file in raw
//! format); the file is synced and renamed to its final name (a free one if that is taken), so it
//! is then closed like any other file and picked up by the compressor.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::config::OPEN_SUFFIX;

/// What recovery did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The file's final name after recovery.
    pub path: PathBuf,
    /// Bytes of a torn last line that were cut off.
    pub cut_bytes: u64,
    /// Complete lines kept.
    pub lines: u64,
}

/// Recovers every `.open` file under `dir`. Errors on single files are logged and skipped so one
/// unreadable file does not stop the recorder.
pub fn recover_dir(dir: &Path, now_ns: u64) -> Vec<Recovered> {
    let mut open = Vec::new();
    collect_open(dir, &mut open);
    // Sidecar events files first: a raw data file's recovery event is appended to its sidecar.
    open.sort_by_key(|p| !p.to_string_lossy().ends_with(".events.jsonl.open"));
    let mut done = Vec::new();
    for path in open {
        match recover_file(&path, now_ns) {
            Ok(r) => {
                if r.cut_bytes > 0 {
                    tracing::warn!(path = %r.path.display(), cut_bytes = r.cut_bytes, lines = r.lines, "Recovered a file left open by a previous run; its torn last line was cut.");
                } else {
                    tracing::info!(path = %r.path.display(), lines = r.lines, "Recovered a file left open by a previous run.");
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

fn collect_open(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_open(&path, out),
            Ok(t) if t.is_file() && path.to_string_lossy().ends_with(OPEN_SUFFIX) => {
                out.push(path);
            }
            _ => {}
        }
    }
}

/// Recovers one `.open` file.
///
/// # Errors
/// The file cannot be read, cut, appended to or renamed.
pub fn recover_file(path: &Path, now_ns: u64) -> std::io::Result<Recovered> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let keep = complete_prefix_len(&mut file, len)?;
    // Always: besides cutting a torn line, this frees the space the disk worker had
    // reserved past the end.
    file.set_len(keep)?;
    let cut_bytes = len - keep;
    let lines = count_lines(&mut file, keep)?;
    let first_line = first_line(&mut file, keep)?;
    let final_path = free_final_path(path);
    let envelope = looks_like_envelope(&first_line);
    let stream = stream_name(&first_line).unwrap_or_default();
    let event = recovered_event(now_ns, &stream, &final_path, cut_bytes, lines);
    if envelope {
        file.seek(SeekFrom::End(0))?;
        file.write_all(&event)?;
    } else {
        // Raw data: the mark goes to the sidecar events file (closed by now, or created).
        let sidecar = crate::rotation::events_path(&final_path);
        let mut side = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&sidecar)?;
        side.write_all(&event)?;
        side.sync_all()?;
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(path, &final_path)?;
    if let Some(dir) = final_path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(Recovered {
        path: final_path,
        cut_bytes,
        lines,
    })
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

fn count_lines(file: &mut File, len: u64) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file.take(len));
    let mut lines = 0u64;
    loop {
        let buf = std::io::BufRead::fill_buf(&mut reader)?;
        if buf.is_empty() {
            return Ok(lines);
        }
        lines += memchr::memchr_iter(b'\n', buf).count() as u64;
        let n = buf.len();
        std::io::BufRead::consume(&mut reader, n);
    }
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

/// Envelope lines start `{"ts":<digits>,"stream":"`; a raw message practically never does.
fn looks_like_envelope(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"{\"ts\":") else {
        return line.is_empty();
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && rest[digits..].starts_with(b",\"stream\":\"")
}

fn stream_name(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        stream: String,
    }
    serde_json::from_slice::<Head>(line).ok().map(|h| h.stream)
}

fn recovered_event(now_ns: u64, stream: &str, file: &Path, cut_bytes: u64, lines: u64) -> Vec<u8> {
    let mut line = Vec::new();
    line.extend_from_slice(b"{\"ts\":");
    line.extend_from_slice(itoa::Buffer::new().format(now_ns).as_bytes());
    line.extend_from_slice(b",\"stream\":");
    crate::json::write_json_string(stream.as_bytes(), &mut line);
    line.extend_from_slice(b",\"conn\":0,\"event\":\"recovered\",\"file\":");
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::json::write_json_string(name.as_bytes(), &mut line);
    line.extend_from_slice(b",\"cut_bytes\":");
    line.extend_from_slice(itoa::Buffer::new().format(cut_bytes).as_bytes());
    line.extend_from_slice(b",\"lines\":");
    line.extend_from_slice(itoa::Buffer::new().format(lines).as_bytes());
    line.extend_from_slice(b"}\n");
    line
}

/// The final name for an `.open` file: its name without the suffix, or a numbered part if a
/// file of that name (or its compressed form) already exists.
fn free_final_path(open: &Path) -> PathBuf {
    let s = open.to_string_lossy();
    let base = PathBuf::from(s.strip_suffix(OPEN_SUFFIX).unwrap_or(&s));
    let mut part = 0;
    loop {
        let candidate = crate::rotation::with_part(&base, part);
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

    #[test]
    fn cuts_a_torn_line_and_marks_it() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("s/a.jsonl.open");
        std::fs::create_dir_all(open.parent().unwrap()).unwrap();
        let torn = format!("{}{}{{\"ts\":1,\"str", line(0), line(1));
        std::fs::write(&open, &torn).unwrap();
        let done = recover_dir(dir.path(), 42);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].cut_bytes, 12);
        assert_eq!(done[0].lines, 2);
        assert!(!open.exists());
        let text = std::fs::read_to_string(dir.path().join("s/a.jsonl")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let ev: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(ev["event"], "recovered");
        assert_eq!(ev["cut_bytes"], 12);
        assert_eq!(ev["stream"], "s");
        assert_eq!(ev["file"], "a.jsonl");
    }

    #[test]
    fn space_reserved_past_the_end_is_given_back() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("r.jsonl.open");
        std::fs::write(&open, line(0)).unwrap();
        let file = OpenOptions::new().append(true).open(&open).unwrap();
        if crate::disk::reserve(&file, 0, 8 << 20).is_err() {
            eprintln!("this file system cannot reserve space; nothing to give back");
            return;
        }
        drop(file);
        assert!(std::fs::metadata(&open).unwrap().blocks() * 512 >= 8 << 20);
        let done = recover_dir(dir.path(), 1);
        assert_eq!((done[0].cut_bytes, done[0].lines), (0, 1));
        let meta = std::fs::metadata(dir.path().join("r.jsonl")).unwrap();
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        let text = std::fs::read_to_string(dir.path().join("r.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(&line(0)));
    }

    #[test]
    fn intact_and_empty_files_are_closed_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.jsonl.open"), line(0)).unwrap();
        std::fs::write(dir.path().join("c.jsonl.open"), "").unwrap();
        let mut done = recover_dir(dir.path(), 1);
        done.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(done[0].cut_bytes, 0);
        assert_eq!(done[0].lines, 1);
        assert_eq!(done[1].lines, 0);
        assert!(dir.path().join("b.jsonl").exists() && dir.path().join("c.jsonl").exists());
    }

    #[test]
    fn raw_files_get_the_mark_in_their_sidecar_and_names_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t_1.jsonl"), "old\n").unwrap();
        std::fs::write(dir.path().join("t_1.jsonl.open"), "{\"a\":1}\n{\"a\"").unwrap();
        let done = recover_dir(dir.path(), 1);
        assert_eq!(done[0].path, dir.path().join("t_1.1.jsonl"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("t_1.jsonl")).unwrap(),
            "old\n"
        );
        assert_eq!(
            std::fs::read_to_string(&done[0].path).unwrap(),
            "{\"a\":1}\n"
        );
        let side = std::fs::read_to_string(dir.path().join("t_1.1.events.jsonl")).unwrap();
        assert!(side.contains("\"event\":\"recovered\"") && side.contains("\"cut_bytes\":4"));
    }

    #[test]
    fn a_file_without_any_newline_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.jsonl.open"),
            "{\"ts\":1,\"stream\":\"s\"",
        )
        .unwrap();
        let done = recover_dir(dir.path(), 1);
        assert_eq!(done[0].lines, 0);
        let text = std::fs::read_to_string(dir.path().join("d.jsonl")).unwrap();
        assert!(
            text.starts_with("{\"ts\":1,\"stream\":\"\",\"conn\":0,\"event\":\"recovered\""),
            "{text}"
        );
    }
}
