//! File helpers shared by the file side and the read side: the recursive directory walk, the
//! directory sync that makes a create or rename durable, the suffixes a recording's file names
//! carry (`.open`, `.zst`/`.gz`, `.uploaded`), the names of the side files written next to a
//! data file (its manifest, a raw stream's events sidecar) and this machine's host name as it
//! appears in upload keys, message ids and events.
//!
//! Side files never have `.jsonl` in their names, so the globs people write for data
//! (`*.jsonl`, `**/*.jsonl*`, `<topic>_*.jsonl`) match only data files: `X.jsonl` has the manifest
//! `X.manifest.json` and (raw format) the sidecar `X.events.ndjson`, whose manifest is
//! `X.events.manifest.json`. Recordings made before used `X.jsonl.manifest.json` and
//! `X.events.jsonl`; readers still take those names.
//!
//! A leaf: it imports nothing of the crate, so every stage can use it.

use std::fs::{File, FileType};
use std::path::{Path, PathBuf};

/// Suffix of a file that is still being written.
pub const OPEN_SUFFIX: &str = ".open";
/// Suffix of the marker left next to a file once it is uploaded.
pub const MARKER_SUFFIX: &str = ".uploaded";
/// Extension of a data file.
pub const DATA_EXT: &str = ".jsonl";
/// Ending of a raw-format stream's events sidecar (`X.jsonl` -> `X.events.ndjson`).
pub const EVENTS_EXT: &str = ".events.ndjson";
/// Ending of an events sidecar written by versions before `EVENTS_EXT` (`X.events.jsonl`).
pub const OLD_EVENTS_EXT: &str = ".events.jsonl";
/// Ending of a file's manifest (`X.jsonl` -> `X.manifest.json`; before: `X.jsonl.manifest.json`).
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Suffixes of the compressed forms of a file, zstd first.
pub const COMPRESSED_SUFFIXES: [&str; 2] = [".zst", ".gz"];

/// A writer's buffer is handed to the disk worker once it holds this much, so it is the size
/// of most writes to a data file. At flood rate, while the disk keeps up, about five exist
/// (filled, queued, written, two pooled: 2.5 MiB); while it stalls, up to `disk_buffer` of them
/// wait for it, freed once written. Each hand-off may wake the disk worker, and wake-ups are
/// dear on a VM, so the buffers are large (bench/README.md has the measurements). The disk
/// worker's space reservation and the least `disk_buffer` are sized from it.
pub const FLUSH_BYTES: usize = 512 * 1024;

/// True if the file `path` names exists in any of the forms a recording file takes: as it is,
/// still `.open`, or compressed (`.zst`, `.gz`).
pub fn exists_in_any_form(path: &Path) -> bool {
    [
        "",
        OPEN_SUFFIX,
        COMPRESSED_SUFFIXES[0],
        COMPRESSED_SUFFIXES[1],
    ]
    .iter()
    .any(|suffix| with_suffix(path, suffix).exists())
}

/// `name` without its `.open` suffix, if it has one.
pub fn strip_open_name(name: &str) -> &str {
    name.strip_suffix(OPEN_SUFFIX).unwrap_or(name)
}

/// `x.jsonl.open` -> `x.jsonl`; a path without `.open` comes back as it is.
pub fn strip_open(path: &Path) -> PathBuf {
    PathBuf::from(strip_open_name(&path.to_string_lossy()))
}

/// `name` without one compression suffix (`.zst` or `.gz`), if it has one.
pub fn strip_compressed(name: &str) -> &str {
    COMPRESSED_SUFFIXES
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name)
}

/// The events sidecar's name of the raw data file named `data` (`x.jsonl` -> `x.events.ndjson`;
/// a name without `.jsonl` keeps it whole: `x.txt` -> `x.txt.events.ndjson`).
pub fn events_name(data: &str) -> String {
    format!(
        "{}{EVENTS_EXT}",
        data.strip_suffix(DATA_EXT).unwrap_or(data)
    )
}

/// Whether `logical` (a name without `.open` and compression suffix) is a file wsrec records
/// into: a data file (`x.jsonl`) or an events sidecar (`x.events.ndjson`, or before
/// `x.events.jsonl`, which ends in `.jsonl` too); never a manifest.
pub fn is_recorded_name(logical: &str) -> bool {
    logical.ends_with(DATA_EXT) || logical.ends_with(EVENTS_EXT)
}

/// Whether `logical` (a name without `.open` and compression suffix) is an events sidecar's,
/// new (`x.events.ndjson`) or old (`x.events.jsonl`).
pub fn is_events_name(logical: &str) -> bool {
    logical.ends_with(EVENTS_EXT) || logical.ends_with(OLD_EVENTS_EXT)
}

/// The data file's name of the events sidecar named `logical` (`x.events.ndjson` and
/// `x.events.jsonl` -> `x.jsonl`); `None` for a name that is not a sidecar's.
pub fn events_data_name(logical: &str) -> Option<String> {
    let stem = logical
        .strip_suffix(EVENTS_EXT)
        .or_else(|| logical.strip_suffix(OLD_EVENTS_EXT))?;
    Some(format!("{stem}{DATA_EXT}"))
}

/// The manifest's name of the file named `file` (uncompressed, without `.open`): its `.jsonl`
/// or `.ndjson` extension replaced by `.manifest.json` (`x.jsonl` -> `x.manifest.json`,
/// `x.events.ndjson` -> `x.events.manifest.json`); a name with neither keeps it whole.
pub fn manifest_name(file: &str) -> String {
    format!("{}{MANIFEST_SUFFIX}", side_stem(file))
}

/// The stem side files of the file named `file` (uncompressed) are named from: `file` without
/// its `.jsonl` or `.ndjson` extension (`x.jsonl` -> `x`, `x.events.ndjson` -> `x.events`); a
/// name with neither comes back whole.
pub fn side_stem(file: &str) -> &str {
    file.strip_suffix(DATA_EXT)
        .or_else(|| file.strip_suffix(".ndjson"))
        .unwrap_or(file)
}

/// The upload marker's name of the sealed file named `sealed` (maybe compressed): the manifest's
/// stem, then the compression suffix, then `.uploaded` (`x.jsonl.zst` -> `x.zst.uploaded`,
/// `x.jsonl` -> `x.uploaded`, `x.events.ndjson.gz` -> `x.events.gz.uploaded`); before:
/// `x.jsonl.zst.uploaded`.
pub fn marker_name(sealed: &str) -> String {
    let plain = strip_compressed(sealed);
    let compression = &sealed[plain.len()..];
    format!("{}{compression}{MARKER_SUFFIX}", side_stem(plain))
}

/// The manifest's name versions before [`manifest_name`] gave `file` (`x.jsonl.manifest.json`).
pub fn old_manifest_name(file: &str) -> String {
    format!("{file}{MANIFEST_SUFFIX}")
}

/// `path` with its file name mapped by `f` (for the side-file names above).
pub fn map_file_name(path: &Path, f: impl FnOnce(&str) -> String) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(f(&name))
}

/// `path` with `suffix` appended to its file name (`a.jsonl` + `.open` -> `a.jsonl.open`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Syncs the directory holding `path`, so a file created, renamed or removed in it survives a
/// crash. A bare file name (no directory part) has nothing to sync.
///
/// # Errors
/// The directory cannot be opened or synced.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// Allocates `len` bytes of disk space from `offset` without changing the file's length.
#[cfg(target_os = "linux")]
pub fn reserve(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    // SAFETY: `file` is an open descriptor for the whole call; fallocate takes no pointers.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn reserve(_file: &File, _offset: u64, _len: u64) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// A directory that could not be listed during a strict walk.
#[derive(Debug)]
pub struct WalkError {
    /// The directory.
    pub dir: PathBuf,
    /// Why it could not be listed.
    pub source: std::io::Error,
}

/// How a walk treats a directory it cannot list and which directories it enters.
#[derive(Debug, Clone, Copy)]
struct WalkRules {
    /// Stop at the first directory that cannot be listed (else skip it and go on).
    strict: bool,
    /// Leave out directories whose name starts with `.`.
    skip_hidden_dirs: bool,
}

/// The one recursive walk: calls `visit` with the path, file name and type of every entry
/// under `dir` that is not a directory, depth first in the order the file system lists them.
fn walk_with(
    dir: &Path,
    rules: WalkRules,
    visit: &mut dyn FnMut(PathBuf, &str, FileType),
) -> Result<(), WalkError> {
    let fail = |source| WalkError {
        dir: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if rules.strict => return Err(fail(e)),
        Err(_) => return Ok(()),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if rules.strict => return Err(fail(e)),
            Err(_) => continue,
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if !(rules.skip_hidden_dirs && name.starts_with('.')) {
                walk_with(&path, rules, visit)?;
            }
        } else {
            visit(path, &name, kind);
        }
    }
    Ok(())
}

/// Every regular file under `dir` (recursively) for which `keep` holds, appended to `out`.
/// Directories that cannot be listed are skipped: the callers (sweeps at start, retention,
/// recovery) do what they can with what they see.
pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>, keep: impl Fn(&Path) -> bool) {
    let lenient = WalkRules {
        strict: false,
        skip_hidden_dirs: false,
    };
    let _ = walk_with(dir, lenient, &mut |path, _, kind| {
        if kind.is_file() && keep(&path) {
            out.push(path);
        }
    });
}

/// Every regular file under `dir` (recursively) that is not still being written (`.open`).
pub fn closed_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    files_under(dir, &mut out, |p| {
        !p.to_string_lossy().ends_with(OPEN_SUFFIX)
    });
    out
}

/// Every entry that is not a directory under `dir` (recursively, hidden directories left out),
/// given to `visit` with its file name.
///
/// # Errors
/// A directory cannot be listed: the walk stops there, because a reader must not silently
/// miss part of a recording.
pub fn entries_under(dir: &Path, visit: &mut dyn FnMut(PathBuf, &str)) -> Result<(), WalkError> {
    let strict = WalkRules {
        strict: true,
        skip_hidden_dirs: true,
    };
    walk_with(dir, strict, &mut |path, name, _| visit(path, name))
}

/// This machine's host name, read once.
pub fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| gethostname::gethostname().to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_come_off_once() {
        assert_eq!(strip_open_name("a.jsonl.zst.open"), "a.jsonl.zst");
        assert_eq!(strip_open_name("a.jsonl"), "a.jsonl");
        assert_eq!(strip_compressed("a.jsonl.zst"), "a.jsonl");
        assert_eq!(strip_compressed("a.jsonl.gz"), "a.jsonl");
        assert_eq!(strip_compressed("a.jsonl"), "a.jsonl");
        assert_eq!(
            strip_open(Path::new("d/a.jsonl.open")),
            Path::new("d/a.jsonl")
        );
        assert_eq!(
            with_suffix(Path::new("d/a.jsonl"), MANIFEST_SUFFIX),
            Path::new("d/a.jsonl.manifest.json")
        );
    }

    #[test]
    fn side_file_names_never_hold_jsonl() {
        assert_eq!(
            events_name("t_1795514400.jsonl"),
            "t_1795514400.events.ndjson"
        );
        assert_eq!(events_name("x.txt"), "x.txt.events.ndjson");
        assert_eq!(manifest_name("a.1.jsonl"), "a.1.manifest.json");
        assert_eq!(manifest_name("a.events.ndjson"), "a.events.manifest.json");
        assert_eq!(old_manifest_name("a.jsonl"), "a.jsonl.manifest.json");
        assert_eq!(marker_name("a.jsonl.zst"), "a.zst.uploaded");
        assert_eq!(marker_name("a.jsonl"), "a.uploaded");
        assert_eq!(marker_name("a.events.ndjson.gz"), "a.events.gz.uploaded");
        for side in [
            events_name("t_1795514400.jsonl"),
            manifest_name("t_1795514400.jsonl"),
            manifest_name(&events_name("t_1795514400.jsonl")),
        ] {
            assert!(!side.contains(".jsonl"), "{side}");
        }
        for sidecar in ["a.events.ndjson", "a.events.jsonl"] {
            assert!(is_events_name(sidecar));
            assert_eq!(events_data_name(sidecar).as_deref(), Some("a.jsonl"));
        }
        assert!(!is_events_name("a.jsonl"));
        assert_eq!(events_data_name("a.jsonl"), None);
        assert_eq!(
            map_file_name(Path::new("d/a.jsonl"), manifest_name),
            Path::new("d/a.manifest.json")
        );
    }

    #[test]
    fn lenient_walk_finds_regular_files_in_hidden_directories_too() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("s/.h")).unwrap();
        std::fs::write(d.join("a.jsonl"), "").unwrap();
        std::fs::write(d.join("s/b.jsonl.open"), "").unwrap();
        std::fs::write(d.join("s/.h/c.jsonl"), "").unwrap();
        let mut all = Vec::new();
        files_under(d, &mut all, |_| true);
        all.sort();
        assert_eq!(
            all,
            [
                d.join("a.jsonl"),
                d.join("s/.h/c.jsonl"),
                d.join("s/b.jsonl.open")
            ]
        );
        let mut open = Vec::new();
        files_under(d, &mut open, |p| p.to_string_lossy().ends_with(OPEN_SUFFIX));
        assert_eq!(open, [d.join("s/b.jsonl.open")]);
        // A directory that is not there is no error, just nothing found.
        let mut none = Vec::new();
        files_under(&d.join("missing"), &mut none, |_| true);
        assert!(none.is_empty());
    }

    #[test]
    fn strict_walk_skips_hidden_directories_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("s/.h")).unwrap();
        std::fs::write(d.join("s/b.jsonl"), "").unwrap();
        std::fs::write(d.join("s/.h/c.jsonl"), "").unwrap();
        let mut names = Vec::new();
        entries_under(d, &mut |_, name| names.push(name.to_owned())).unwrap();
        assert_eq!(names, ["b.jsonl"]);
        let e = entries_under(&d.join("missing"), &mut |_, _| {}).unwrap_err();
        assert_eq!(e.dir, d.join("missing"));
        assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
    }
}
