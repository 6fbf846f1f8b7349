//! `wsrec merge`: combines recordings of the same feed made by different recorders (redundant
//! recorders in two places) into one recording, in the ordinary envelope format.
//!
//! Per stream name, the sources' records are merged in receive-time order by a streaming k-way
//! merge. Each source is read ahead only as far as `tolerance` past the record being decided, so
//! memory is bounded by the message rate times the tolerance, not by the recording's size.
//!
//! - **Duplicates.** A message is the same as one of another source when its exchange sequence
//!   identity matches ([`venue_seq`](super::venue_seq): Binance `U`/`u`/`pu`, Bybit `u`, OKX
//!   `seqId`, Deribit `change_id`; not Coinbase's `sequence_num` nor Bitfinex's `SEQ_ALL`, which
//!   count per connection), otherwise when its bytes are identical, and in both cases only if
//!   received within `tolerance` of it. Matching is one to one and only across sources: two identical messages of one source (heartbeats,
//!   pongs, the overlap of a planned reconnect) are never collapsed. Of a set of copies, the one
//!   of the earliest source on the command line is kept, with its own `ts` and bytes.
//! - **Clock offset.** The receive-time offset of each source against the first is estimated
//!   from matched copies (median of the last ones, at most `tolerance`) and used for ordering and
//!   matching, so a recorder whose clock or network path is a few ms behind does not reorder the
//!   output where the sources take turns. Output lines keep their original `ts`.
//! - **Gaps.** Each source's disconnect windows (from its last live connection's `disconnected`
//!   to the next `connected`, or a killed run) are filled by whatever the other sources received
//!   meanwhile. Where every source is down at once, the output has a `disconnected` event and a
//!   later `connected`, so `wsrec verify` shows the window. A `dropped`, `disk_full_gap` or
//!   `write_error_gap` mark of one source is filled if another source was up and had no such mark
//!   within `tolerance`; otherwise it is copied to the output.
//! - **Snapshots.** A snapshot line (a REST order-book snapshot a recorder fetched for one of
//!   its connections) is not a message and is never matched across sources. It is kept when the
//!   output is taking its messages from that same source connection at that point, so the
//!   diffs around it come from the connection it was fetched for; the snapshots of the other
//!   sources are left out (counted), so none appears twice. Where the output switches source,
//!   the diffs that follow continue the book by their exchange sequence numbers.
//! - **Provenance.** Each run of output messages taken from one source connection is one output
//!   connection (`conn`), opened by a `connected` event that names the `source` (path as given),
//!   its index, the `source_conn`, the recorder's `host` and the stream's `tags` there. Where the output switches source
//!   without a gap, the previous output connection ends with `disconnected` reason `replaced`, as
//!   in the recorder's own make-before-break. `seq` is renumbered from 0 per output stream.
//!
//! Output files are written into a hidden staging directory inside the output directory and
//! moved into place only when every stream is done, so a merge that fails leaves no file that
//! looks complete. Inputs are only read.
//!
//! This module holds the options, the summary and the whole-merge steps (checking paths, grouping
//! files by stream, publishing the output); `source` reads one source's stream, `stream` merges
//! one stream, and `output` writes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{UsageError, find_files, format_duration_ns, format_ts};
use crate::read::RecordingFile;
use crate::store::manifest;

mod output;
mod source;
mod stream;

use stream::merge_stream;

/// Warnings listed (all are counted).
const MAX_WARNINGS: usize = 50;
/// Remaining gaps listed per stream (all are counted).
const MAX_GAPS_LISTED: usize = 100;

/// What `merge` is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeOptions {
    /// Copies of a message received this far apart (ns) are still the same message.
    pub tolerance_ns: u64,
    /// Use the exchanges' sequence numbers where known (else bytes only).
    pub venue: bool,
    /// Write into a non-empty output directory.
    pub force: bool,
}

impl Default for MergeOptions {
    fn default() -> Self {
        Self {
            tolerance_ns: 2_000_000_000,
            venue: true,
            force: false,
        }
    }
}

/// One input recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// The path as given.
    pub path: String,
    /// Recording files found.
    pub files: usize,
}

/// A time when no source had a live connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GapSpan {
    /// When the last source went down (ns).
    pub from_ns: u64,
    /// When one came back (ns).
    pub to_ns: u64,
    /// Why the last source went down.
    pub reason: String,
}

/// What was merged for one stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamSummary {
    /// Stream name.
    pub stream: String,
    /// Messages written.
    pub messages: u64,
    /// Of those, per source (in command-line order).
    pub from_source: Vec<u64>,
    /// Copies left out because another source's copy was kept.
    pub duplicates: u64,
    /// Per source: disconnect windows and loss marks (`dropped`, `disk_full_gap`,
    /// `write_error_gap`).
    pub source_gaps: Vec<u64>,
    /// Source gaps that another source covered completely.
    pub gaps_filled: u64,
    /// Gaps left in the output: times no source was connected, and loss marks no other source
    /// covered (copied to the output).
    pub gaps_remaining: u64,
    /// The times no source was connected (the first `MAX_GAPS_LISTED`).
    pub remaining: Vec<GapSpan>,
    /// Times the output changed source without a gap.
    pub switches: u64,
    /// Snapshot lines written.
    pub snapshots: u64,
    /// Snapshot lines of sources the output was not taking messages from, left out.
    pub snapshots_left_out: u64,
    /// Estimated receive-time offset of each source against the first, in ms.
    pub offset_ms: Vec<f64>,
    /// Output data files.
    pub files: u64,
}

/// The result of a merge.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The inputs, in order of preference.
    pub sources: Vec<SourceInfo>,
    /// The output directory.
    pub output: String,
    /// The tolerance used, in ms.
    pub tolerance_ms: f64,
    /// Per stream, by name.
    pub streams: Vec<StreamSummary>,
    /// Lines skipped and files that could not be read to their end.
    pub warnings: Vec<String>,
    /// Warnings beyond the list.
    pub warnings_not_listed: u64,
}

impl Summary {
    fn warn(&mut self, w: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else {
            self.warnings_not_listed += 1;
        }
    }
}

/// Runs `wsrec merge`: merges `inputs` into `output` and prints the summary (as JSON if
/// `json`).
///
/// # Errors
/// Bad input (usage, exit code 2), or a failure to read or write.
pub fn run(
    inputs: &[PathBuf],
    output: &Path,
    opts: &MergeOptions,
    json: bool,
) -> anyhow::Result<()> {
    if opts.tolerance_ns == 0 {
        return Err(UsageError(
            "--tolerance must be more than 0; give the largest receive-time difference between the recorders, such as 2s".to_owned(),
        )
        .into());
    }
    super::interrupt::catch();
    let summary = merge(inputs, output, opts)?;
    super::print_report(&summary, json, render)
}

/// Merges the recordings at `inputs` (in order of preference) into `output`.
///
/// # Errors
/// Bad input ([`UsageError`]), or a failure to read or write; then nothing is left in `output`
/// but what was there before.
pub fn merge(inputs: &[PathBuf], output: &Path, opts: &MergeOptions) -> anyhow::Result<Summary> {
    merge_until(inputs, output, opts, &super::interrupt::INTERRUPTED)
}

/// [`merge`], stopped with [`Interrupted`](super::interrupt::Interrupted) (what it staged
/// removed) once `stop` is set.
fn merge_until(
    inputs: &[PathBuf],
    output: &Path,
    opts: &MergeOptions,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<Summary> {
    if inputs.len() < 2 {
        return Err(UsageError(
            "merge needs at least two recordings of the same feed: wsrec merge A/ B/ -o C/"
                .to_owned(),
        )
        .into());
    }
    remove_stale_stages(output);
    check_paths(inputs, output, opts.force)?;
    let mut summary = Summary {
        output: output.display().to_string(),
        tolerance_ms: opts.tolerance_ns as f64 / 1e6,
        ..Summary::default()
    };
    // Per source: stream -> files.
    let mut by_source: Vec<BTreeMap<String, Vec<RecordingFile>>> = Vec::new();
    for input in inputs {
        let files = find_files(std::slice::from_ref(input))?;
        summary.sources.push(SourceInfo {
            path: input.display().to_string(),
            files: files.len(),
        });
        by_source.push(group_by_stream(input, files)?);
    }
    let names: BTreeSet<String> = by_source.iter().flat_map(|m| m.keys().cloned()).collect();

    let created = !output.exists();
    std::fs::create_dir_all(output).map_err(|e| {
        UsageError(format!(
            "cannot create the output directory {}: {e}",
            output.display()
        ))
    })?;
    let stage = output.join(format!("{STAGE_PREFIX}{}", std::process::id()));
    let result = (|| -> anyhow::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(&stage)?;
        let mut written = Vec::new();
        let labels = summary.sources.clone();
        for name in &names {
            let files: Vec<Vec<RecordingFile>> = by_source
                .iter_mut()
                .map(|m| m.remove(name).unwrap_or_default())
                .collect();
            let (s, w) = merge_stream(name, files, &labels, &stage, opts, stop, &mut summary)?;
            summary.streams.push(s);
            written.extend(w);
        }
        Ok(written)
    })();
    let written = match result {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&stage);
            if created {
                let _ = std::fs::remove_dir(output);
            }
            return Err(e);
        }
    };
    publish(&stage, output, &written)?;
    Ok(summary)
}

/// The staging directory of a merge in progress, in its output: this and the process number.
const STAGE_PREFIX: &str = ".wsrec-merge-";

/// Removes from `output` the staging directories of merges whose process is gone (killed before
/// they could remove their own), saying so on stderr; a merge stopped by Ctrl-C removes its own.
fn remove_stale_stages(output: &Path) {
    super::interrupt::remove_left_behind(output, STAGE_PREFIX, "", "a merge", |p| {
        std::fs::remove_dir_all(p)
    });
}

/// Refuses inputs that are missing or repeated, an output that overlaps an input, and a
/// non-empty output without `force`.
fn check_paths(inputs: &[PathBuf], output: &Path, force: bool) -> Result<(), UsageError> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for p in inputs {
        let c = std::fs::canonicalize(p).map_err(|_| {
            UsageError(format!(
                "{}: no such file or directory; give recording directories or files made by `wsrec record`",
                p.display()
            ))
        })?;
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == c) {
            return Err(UsageError(format!(
                "{} and {} are the same recording; give recordings made by different recorders",
                first.display(),
                p.display()
            )));
        }
        seen.push((c, p));
    }
    let out = absolute(output);
    for (c, p) in &seen {
        if out.starts_with(c) || c.starts_with(&out) {
            return Err(UsageError(format!(
                "the output {} overlaps the input {}; inputs are never written to: choose an output directory outside every input",
                output.display(),
                p.display()
            )));
        }
    }
    match std::fs::metadata(output) {
        Ok(m) if !m.is_dir() => Err(UsageError(format!(
            "the output {} is not a directory; give a new or empty directory",
            output.display()
        ))),
        Ok(_) => {
            let non_empty = std::fs::read_dir(output)
                .map_err(|e| UsageError(format!("cannot list {}: {e}", output.display())))?
                .next()
                .is_some();
            if non_empty && !force {
                Err(UsageError(format!(
                    "the output directory {} is not empty; give a new or empty directory, or --force to write into it (files of the same name are replaced)",
                    output.display()
                )))
            } else {
                Ok(())
            }
        }
        Err(_) => Ok(()),
    }
}

/// `p` made absolute with its existing ancestors resolved (it may not exist yet).
fn absolute(p: &Path) -> PathBuf {
    let mut tail = Vec::new();
    let mut cur = p.to_owned();
    loop {
        if let Ok(c) = std::fs::canonicalize(&cur) {
            let mut out = c;
            for t in tail.iter().rev() {
                out.push(t);
            }
            return out;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_owned());
                cur = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_owned()
                };
            }
            _ => return p.to_owned(),
        }
    }
}

/// The files of one source by stream (from each file's first record).
fn group_by_stream(
    input: &Path,
    files: Vec<RecordingFile>,
) -> Result<BTreeMap<String, Vec<RecordingFile>>, UsageError> {
    let mut out: BTreeMap<String, Vec<RecordingFile>> = BTreeMap::new();
    for f in files {
        let p = crate::read::probe(&f);
        if p.raw || f.is_events {
            return Err(UsageError(format!(
                "{}: raw-format recording (no receive time per message); merge needs envelope recordings (format = \"envelope\", the default)",
                f.path.display()
            )));
        }
        let stream = p.stream.unwrap_or_else(|| f.name_hints().stream);
        out.entry(stream).or_default().push(f);
    }
    if out.is_empty() {
        return Err(UsageError(format!(
            "{}: not a recording (no envelope records found)",
            input.display()
        )));
    }
    Ok(out)
}

/// Moves the staged files into `output` (data file, then its manifest) and removes the stage.
fn publish(stage: &Path, output: &Path, written: &[PathBuf]) -> anyhow::Result<()> {
    let mut dirs = BTreeSet::new();
    for rel in written {
        let to = output.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
            dirs.insert(parent.to_owned());
        }
        std::fs::rename(stage.join(rel), &to)?;
        let m = manifest::path_for(rel);
        std::fs::rename(stage.join(&m), output.join(&m))?;
    }
    for d in dirs {
        if let Ok(f) = File::open(&d) {
            let _ = f.sync_all();
        }
    }
    std::fs::remove_dir_all(stage)?;
    Ok(())
}

/// Renders the summary for people.
pub fn render(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Merged {} recordings into {} (tolerance {} ms):",
        s.sources.len(),
        s.output,
        s.tolerance_ms
    );
    for (i, src) in s.sources.iter().enumerate() {
        let _ = writeln!(out, "  [{}] {} ({} files)", i + 1, src.path, src.files);
    }
    for st in &s.streams {
        let from: Vec<String> = st
            .from_source
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} from [{}]", i + 1))
            .collect();
        let _ = writeln!(
            out,
            "stream {}: {} messages ({}), {} duplicates removed, {} source switches, {} file(s)",
            st.stream,
            st.messages,
            from.join(", "),
            st.duplicates,
            st.switches,
            st.files
        );
        let gaps: Vec<String> = st
            .source_gaps
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} in [{}]", i + 1))
            .collect();
        if st.snapshots + st.snapshots_left_out > 0 {
            let _ = writeln!(
                out,
                "  snapshots: {} kept, {} of the sources not taken at the time left out",
                st.snapshots, st.snapshots_left_out
            );
        }
        let _ = writeln!(
            out,
            "  gaps: {}; {} filled, {} remaining",
            gaps.join(", "),
            st.gaps_filled,
            st.gaps_remaining
        );
        for g in &st.remaining {
            let _ = writeln!(
                out,
                "  no source connected: {} to {} ({}, {})",
                format_ts(g.from_ns),
                format_ts(g.to_ns),
                format_duration_ns(g.to_ns.saturating_sub(g.from_ns)),
                g.reason
            );
        }
        if st.offset_ms.len() > 1 {
            let offs: Vec<String> = st.offset_ms[1..]
                .iter()
                .enumerate()
                .map(|(i, o)| format!("[{}] {o:+.3} ms", i + 2))
                .collect();
            let _ = writeln!(
                out,
                "  receive-time offset against [1]: {}",
                offs.join(", ")
            );
        }
    }
    for w in &s.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if s.warnings_not_listed > 0 {
        let _ = writeln!(out, "warning: {} more not listed", s.warnings_not_listed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording of stream `s` in `dir`: a connect and two messages.
    fn recording(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let t = 1_795_517_990_000_000_000u64;
        let lines = [
            format!(
                r#"{{"ts":{t},"stream":"s","conn":1,"event":"connected","url":"ws://127.0.0.1:1/"}}"#
            ),
            format!(
                r#"{{"ts":{},"stream":"s","conn":1,"seq":0,"msg":{{"n":0}}}}"#,
                t + 1
            ),
            format!(
                r#"{{"ts":{},"stream":"s","conn":1,"seq":1,"msg":{{"n":1}}}}"#,
                t + 2
            ),
        ];
        std::fs::write(
            dir.join("s-20261124T100000Z.jsonl"),
            lines.join("\n") + "\n",
        )
        .unwrap();
    }

    fn options() -> MergeOptions {
        MergeOptions {
            tolerance_ns: 1_000_000_000,
            ..MergeOptions::default()
        }
    }

    #[test]
    fn a_stopped_merge_leaves_nothing() {
        static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        recording(&a);
        recording(&b);
        let e = merge_until(&[a.clone(), b.clone()], &out, &options(), &STOP)
            .expect_err("a stopped merge fails");
        assert!(e.is::<crate::tools::interrupt::Interrupted>(), "{e:#}");
        assert!(
            !out.exists(),
            "the output directory the merge created stays"
        );
        // Into an existing directory: it stays, empty.
        std::fs::create_dir(&out).unwrap();
        merge_until(&[a, b], &out, &options(), &STOP).expect_err("a stopped merge fails");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }

    #[test]
    fn stages_of_killed_merges_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let gone = crate::tools::interrupt::ended_process();
        let stale = tmp.path().join(format!("{STAGE_PREFIX}{gone}"));
        let live = tmp
            .path()
            .join(format!("{STAGE_PREFIX}{}", std::process::id()));
        for d in [&stale, &live] {
            std::fs::create_dir_all(d.join("s")).unwrap();
            std::fs::write(d.join("s/x.jsonl"), b"{}\n").unwrap();
        }
        remove_stale_stages(tmp.path());
        assert!(!stale.exists());
        assert!(live.exists());
    }
}
