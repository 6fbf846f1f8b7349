//! `wsrec merge`: combines recordings of the same feed made by different recorders (redundant
//! recorders in two places) into one recording, in the ordinary envelope format.
//!
//! Per stream name, the sources' records are merged in receive-time order by a streaming k-way
//! merge. Each source is read ahead only as far as `tolerance` past the record being decided, so
//! memory is bounded by the message rate times the tolerance, not by the recording's size.
//!
//! - **Duplicates.** A message is the same as one of another source when its exchange sequence
//!   identity matches ([`venue_seq`]: Binance `U`/`u`/`pu`, Bybit `u`, OKX `seqId`, Deribit
//!   `change_id`; not Coinbase's `sequence_num` nor Bitfinex's `SEQ_ALL`, which count per
//!   connection), otherwise when its bytes are identical, and in both cases only if received
//!   within `tolerance` of it. Matching
//!   is one to one and only across sources: two identical messages of one source (heartbeats,
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
//! - **Provenance.** Each run of output messages taken from one source connection is one output
//!   connection (`conn`), opened by a `connected` event that names the `source` (path as given),
//!   its index, the `source_conn` and the recorder's `host`. Where the output switches source
//!   without a gap, the previous output connection ends with `disconnected` reason `replaced`, as
//!   in the recorder's own make-before-break. `seq` is renumbered from 0 per output stream.
//!
//! Output files are written into a hidden staging directory inside the output directory and
//! moved into place only when every stream is done, so a merge that fails leaves no file that
//! looks complete. Inputs are only read.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use std::hash::Hasher as _;
use twox_hash::XxHash3_64 as Xxh3;

use super::venue_seq::{self, Point, Step, Venue};
use super::{UsageError, find_files, format_duration_ns, format_ts};
use crate::manifest::{self, ManifestBuilder};
use crate::read::{Entry, EventDetail, Format, Item, Order, Payload, RecordingFile, Scan};
use crate::rotation;

/// Output files cover one UTC hour each, like the recorder's default.
const HOUR_NS: u64 = 3_600_000_000_000;
/// Matched copies the clock offset estimate looks at.
const OFFSET_SAMPLES: usize = 31;
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
    /// The times no source was connected (the first [`MAX_GAPS_LISTED`]).
    pub remaining: Vec<GapSpan>,
    /// Times the output changed source without a gap.
    pub switches: u64,
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
    let summary = merge(inputs, output, opts)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(&summary))?;
    }
    out.flush()?;
    Ok(())
}

/// Merges the recordings at `inputs` (in order of preference) into `output`.
///
/// # Errors
/// Bad input ([`UsageError`]), or a failure to read or write; then nothing is left in `output`
/// but what was there before.
pub fn merge(inputs: &[PathBuf], output: &Path, opts: &MergeOptions) -> anyhow::Result<Summary> {
    if inputs.len() < 2 {
        return Err(UsageError(
            "merge needs at least two recordings of the same feed: wsrec merge A/ B/ -o C/"
                .to_owned(),
        )
        .into());
    }
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
    let stage = output.join(format!(".wsrec-merge-{}", std::process::id()));
    let result = (|| -> anyhow::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(&stage)?;
        let mut written = Vec::new();
        let labels = summary.sources.clone();
        for name in &names {
            let files: Vec<Vec<RecordingFile>> = by_source
                .iter_mut()
                .map(|m| m.remove(name).unwrap_or_default())
                .collect();
            let (s, w) = merge_stream(name, files, &labels, &stage, opts, &mut summary)?;
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

// ---------------------------------------------------------------------------------------------
// Reading one source's stream as merge items.

/// What becomes of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Not matched yet.
    Open,
    /// Matched; this copy is written.
    Keep,
    /// Matched; another copy is written.
    Dup,
}

/// A message's exchange sequence identity.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VenueId {
    venue: Venue,
    key: String,
    step: Step,
}

#[derive(Debug)]
struct Msg {
    /// The source connection (unique within the source).
    uconn: u32,
    /// `,"msg":…`, `,"text":…` or `,"bin":…`: the payload member as written.
    frag: Vec<u8>,
    venue: Option<VenueId>,
    hash: u64,
    fate: Fate,
}

impl Msg {
    fn same(&self, other: &Msg) -> bool {
        match (&self.venue, &other.venue) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.frag == other.frag,
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Kind {
    Msg(Msg),
    /// A connection is up; `up`: the source had none before.
    Connected {
        uconn: u32,
        conn: u64,
        host: Option<String>,
        up: bool,
    },
    /// The source's last live connection ended.
    Down {
        reason: String,
    },
    /// A loss mark; `body` is the event's members from `"event"` on.
    Loss {
        body: Vec<u8>,
    },
}

#[derive(Debug)]
struct Pending {
    ts: u64,
    kind: Kind,
}

#[derive(Deserialize, Default)]
struct HostField {
    host: Option<String>,
}

/// A source's connection state, turning its records into [`Pending`] items.
#[derive(Debug, Default)]
struct Track {
    venue: bool,
    live: BTreeSet<u64>,
    max_conn: u64,
    pid: Option<u64>,
    run: u32,
    uconns: HashMap<(u32, u64), u32>,
    last_ts: u64,
    out: VecDeque<Pending>,
    points: Vec<Point>,
}

impl Track {
    fn uconn(&mut self, conn: u64) -> u32 {
        let n = self.uconns.len() as u32;
        *self.uconns.entry((self.run, conn)).or_insert(n)
    }

    fn entry(&mut self, entry: Entry<'_>, line: &[u8]) {
        match entry {
            Entry::Message(m) => {
                if !self.live.contains(&m.conn) {
                    let up = self.live.is_empty();
                    self.live.insert(m.conn);
                    self.max_conn = self.max_conn.max(m.conn);
                    let uconn = self.uconn(m.conn);
                    self.out.push_back(Pending {
                        ts: m.ts,
                        kind: Kind::Connected {
                            uconn,
                            conn: m.conn,
                            host: None,
                            up,
                        },
                    });
                }
                self.last_ts = self.last_ts.max(m.ts);
                let uconn = self.uconn(m.conn);
                let msg = self.message(uconn, &m.payload);
                self.out.push_back(Pending {
                    ts: m.ts,
                    kind: Kind::Msg(msg),
                });
            }
            Entry::Event(e) => {
                let conn = e.conn;
                match &*e.name {
                    "connected" => {
                        let detail = EventDetail::parse(line);
                        let new_run = conn <= self.max_conn
                            || matches!((self.pid, detail.pid), (Some(a), Some(b)) if a != b);
                        if new_run {
                            if !self.live.is_empty() {
                                self.live.clear();
                                self.out.push_back(Pending {
                                    ts: self.last_ts.min(e.ts),
                                    kind: Kind::Down {
                                        reason:
                                            "recorder stopped without closing (killed or crashed)"
                                                .to_owned(),
                                    },
                                });
                            }
                            self.run += 1;
                            self.max_conn = 0;
                        }
                        if detail.pid.is_some() {
                            self.pid = detail.pid;
                        }
                        self.max_conn = self.max_conn.max(conn);
                        let up = self.live.is_empty();
                        self.live.insert(conn);
                        let uconn = self.uconn(conn);
                        let host = serde_json::from_slice::<HostField>(line)
                            .unwrap_or_default()
                            .host;
                        self.out.push_back(Pending {
                            ts: e.ts,
                            kind: Kind::Connected {
                                uconn,
                                conn,
                                host,
                                up,
                            },
                        });
                    }
                    "disconnected" => {
                        let was_live = self.live.remove(&conn);
                        if was_live && self.live.is_empty() {
                            let reason = EventDetail::parse(line)
                                .reason
                                .unwrap_or_else(|| "unknown".to_owned());
                            self.out.push_back(Pending {
                                ts: e.ts,
                                kind: Kind::Down { reason },
                            });
                        }
                    }
                    "dropped" | "disk_full_gap" | "write_error_gap" => {
                        if let Some(at) = memchr::memmem::find(line, b",\"event\":") {
                            let end = line.len().saturating_sub(1).max(at + 1);
                            self.out.push_back(Pending {
                                ts: e.ts,
                                kind: Kind::Loss {
                                    body: line[at + 1..end].to_vec(),
                                },
                            });
                        }
                    }
                    _ => {}
                }
                self.last_ts = self.last_ts.max(e.ts);
            }
        }
    }

    fn message(&mut self, uconn: u32, payload: &Payload<'_>) -> Msg {
        let mut frag = Vec::with_capacity(payload.len() + 16);
        match payload {
            Payload::Json(s) => {
                frag.extend_from_slice(b",\"msg\":");
                frag.extend_from_slice(s.as_bytes());
            }
            Payload::Text(t) => {
                frag.extend_from_slice(b",\"text\":");
                crate::json::write_json_string(t.as_bytes(), &mut frag);
            }
            Payload::Binary(b) => {
                frag.extend_from_slice(b",\"bin\":\"");
                frag.extend_from_slice(b.as_bytes());
                frag.push(b'"');
            }
        }
        let mut venue = None;
        if self.venue
            && let Payload::Json(s) = payload
        {
            self.points.clear();
            venue_seq::points(s.as_bytes(), &mut self.points);
            // Coinbase and Bitfinex number per connection: two recorders' numbers do not
            // correspond.
            venue = self
                .points
                .iter()
                .find(|p| !p.venue.per_connection())
                .map(|p| VenueId {
                    venue: p.venue,
                    key: p.key.clone(),
                    step: p.step,
                });
        }
        let hash = match &venue {
            Some(v) => venue_hash(v),
            None => Xxh3::oneshot(&frag),
        };
        Msg {
            uconn,
            frag,
            venue,
            hash,
            fate: Fate::Open,
        }
    }

    /// At the end of the source: a connection still live ends with the data.
    fn finish(&mut self) {
        if !self.live.is_empty() {
            self.live.clear();
            self.out.push_back(Pending {
                ts: self.last_ts,
                kind: Kind::Down {
                    reason: "end_of_recording".to_owned(),
                },
            });
        }
    }
}

fn venue_hash(v: &VenueId) -> u64 {
    let mut h = Xxh3::new();
    h.write(&[v.venue as u8]);
    h.write(v.key.as_bytes());
    let (tag, a, b) = match v.step {
        Step::Reset { last } => (0u8, last, 0),
        Step::Link { prev, last } => (1, prev, last),
        Step::Range { first, last } => (2, first, last),
        Step::Increasing { value } => (3, value, 0),
    };
    h.write(&[0, tag]);
    h.write(&a.to_le_bytes());
    h.write(&b.to_le_bytes());
    h.finish()
}

/// One source's stream, read as [`Pending`] items.
struct SourceReader {
    scan: Option<Scan>,
    track: Track,
    done: bool,
}

impl SourceReader {
    fn new(files: Vec<RecordingFile>, venue: bool) -> Self {
        Self {
            scan: (!files.is_empty()).then(|| Scan::new(files, Order::Merged)),
            track: Track {
                venue,
                ..Track::default()
            },
            done: false,
        }
    }

    fn next(&mut self, summary: &mut Summary) -> Option<Pending> {
        loop {
            if let Some(p) = self.track.out.pop_front() {
                return Some(p);
            }
            if self.done {
                return None;
            }
            let Some(item) = self.scan.as_mut().and_then(Scan::next_item) else {
                self.done = true;
                self.track.finish();
                continue;
            };
            match item {
                Item::Error(e) => summary.warn(e.to_string()),
                Item::FileEnd { .. } => {}
                Item::Line {
                    file,
                    format,
                    info,
                    bytes,
                    ..
                } => {
                    let at = format!("{}:{}", file.path.display(), info.number);
                    if info.too_long {
                        summary.warn(format!("{at}: line too long; skipped"));
                    } else if info.torn {
                        if !file.is_open {
                            summary.warn(format!("{at}: torn last line; skipped"));
                        }
                    } else if format == Format::Raw {
                        summary.warn(format!("{at}: raw line; skipped"));
                    } else {
                        match Entry::parse(bytes) {
                            Ok(e) => self.track.entry(e, bytes),
                            Err(why) => {
                                summary.warn(format!("{at}: not a record ({why}); skipped"))
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing the output stream.

struct OutFile {
    rel: PathBuf,
    w: BufWriter<File>,
    hash: Xxh3,
    lines: u64,
    bytes: u64,
    manifest: ManifestBuilder,
    start_ns: u64,
}

/// One output stream: envelope lines into hourly files under the stage.
struct Out {
    stage: PathBuf,
    stream: String,
    name_json: Vec<u8>,
    file: Option<OutFile>,
    written: Vec<PathBuf>,
    line: Vec<u8>,
    seq: u64,
}

impl Out {
    fn new(stage: &Path, stream: &str) -> Self {
        let mut name_json = Vec::new();
        crate::json::write_json_string(stream.as_bytes(), &mut name_json);
        Self {
            stage: stage.to_owned(),
            stream: stream.to_owned(),
            name_json,
            file: None,
            written: Vec::new(),
            line: Vec::new(),
            seq: 0,
        }
    }

    /// Writes a message line; `frag` is its payload member.
    fn message(&mut self, ts: u64, conn: u64, frag: &[u8]) -> anyhow::Result<()> {
        self.start(ts, conn);
        self.line.extend_from_slice(b",\"seq\":");
        self.line
            .extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        self.line.extend_from_slice(frag);
        self.line.extend_from_slice(b"}\n");
        let seq = self.seq;
        self.seq += 1;
        self.emit(ts, |m| m.message(conn, seq, ts))
    }

    /// Writes an event line; `body` is `"event":"name",…`.
    fn event(&mut self, ts: u64, conn: u64, body: &[u8]) -> anyhow::Result<()> {
        self.start(ts, conn);
        self.line.push(b',');
        self.line.extend_from_slice(body);
        self.line.extend_from_slice(b"}\n");
        self.emit(ts, |m| m.event(body))
    }

    fn start(&mut self, ts: u64, conn: u64) {
        self.line.clear();
        self.line.extend_from_slice(b"{\"ts\":");
        self.line
            .extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
        self.line.extend_from_slice(b",\"stream\":");
        self.line.extend_from_slice(&self.name_json);
        self.line.extend_from_slice(b",\"conn\":");
        self.line
            .extend_from_slice(itoa::Buffer::new().format(conn).as_bytes());
    }

    fn emit(&mut self, ts: u64, note: impl FnOnce(&mut ManifestBuilder)) -> anyhow::Result<()> {
        // Files only move forward in time: a line a little older than the current file's start
        // (another source's clock) stays in the current file.
        let next = match &self.file {
            Some(f) if ts < f.start_ns + HOUR_NS => false,
            Some(_) | None => true,
        };
        if next {
            self.close()?;
            self.open(rotation::bucket_start(ts, HOUR_NS))?;
        }
        let Some(f) = self.file.as_mut() else {
            anyhow::bail!("no output file open");
        };
        f.w.write_all(&self.line)?;
        f.hash.write(&self.line);
        f.lines += 1;
        f.bytes += self.line.len() as u64;
        note(&mut f.manifest);
        Ok(())
    }

    fn open(&mut self, start_ns: u64) -> anyhow::Result<()> {
        let base = rotation::render(crate::config::DEFAULT_PATH_TEMPLATE, &self.stream, start_ns)
            .map_err(|e| {
            UsageError(format!(
                "stream name `{}` cannot be used as a file name: {e}",
                self.stream
            ))
        })?;
        let mut part = 0;
        let rel = loop {
            let p = rotation::with_part(&base, part);
            if !self.stage.join(&p).exists() {
                break p;
            }
            part += 1;
        };
        let path = self.stage.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(&path)?;
        self.file = Some(OutFile {
            manifest: ManifestBuilder::new(&rel, &self.stream, "envelope", start_ns),
            rel,
            w: BufWriter::with_capacity(256 * 1024, file),
            hash: Xxh3::new(),
            lines: 0,
            bytes: 0,
            start_ns,
        });
        Ok(())
    }

    /// Syncs the current file and writes its manifest.
    fn close(&mut self) -> anyhow::Result<()> {
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        let file = f.w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let mut m = f.manifest.manifest;
        m.lines = f.lines;
        m.bytes = f.bytes;
        m.xxh3_64 = format!("{:016x}", f.hash.finish());
        let mut body = serde_json::to_vec(&m)?;
        body.push(b'\n');
        let mpath = self.stage.join(manifest::path_for(&f.rel));
        let mut mf = File::create(&mpath)?;
        mf.write_all(&body)?;
        mf.sync_all()?;
        self.written.push(f.rel);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The merge of one stream.

/// One source during the merge.
struct Src {
    reader: SourceReader,
    /// Items read ahead, in source order.
    queue: VecDeque<Pending>,
    /// Serial number of `queue[0]`.
    base: u64,
    /// Unmatched messages in the queue by identity hash: their serials, in order.
    index: HashMap<u64, VecDeque<u64>>,
    /// Serials of the `Down` items in the queue.
    downs: VecDeque<u64>,
    /// Serials of the `Connected` items in the queue that bring the source up.
    ups: VecDeque<u64>,
    /// Receive-time offset against source 0 (ns), subtracted for ordering and matching.
    offset: i64,
    deltas: VecDeque<i64>,
    matches: u64,
    up: bool,
    /// Since the last `Down`: the output gap counter then, if another source was up.
    down: Option<Option<u64>>,
    last_loss: Option<u64>,
    /// Source connection -> (its number, the recorder's host).
    conns: HashMap<u32, (u64, Option<String>)>,
}

impl Src {
    fn adj(&self, ts: u64) -> u64 {
        ts.saturating_add_signed(-self.offset)
    }

    /// Reads one more item; false at the end.
    fn fill(&mut self, summary: &mut Summary) -> bool {
        let Some(p) = self.reader.next(summary) else {
            return false;
        };
        let serial = self.base + self.queue.len() as u64;
        match &p.kind {
            Kind::Msg(m) => self.index.entry(m.hash).or_default().push_back(serial),
            Kind::Down { .. } => self.downs.push_back(serial),
            Kind::Connected { up: true, .. } => self.ups.push_back(serial),
            _ => {}
        }
        self.queue.push_back(p);
        true
    }

    fn unindex(&mut self, hash: u64, serial: u64) {
        if let Some(b) = self.index.get_mut(&hash) {
            if let Some(pos) = b.iter().position(|&s| s == serial) {
                b.remove(pos);
            }
            if b.is_empty() {
                self.index.remove(&hash);
            }
        }
    }

    fn note_delta(&mut self, delta: i64, tolerance: u64) {
        if self.deltas.len() == OFFSET_SAMPLES {
            self.deltas.pop_front();
        }
        self.deltas.push_back(delta);
        self.matches += 1;
        if self.matches % 8 == 1 || self.deltas.len() < OFFSET_SAMPLES {
            let mut v: Vec<i64> = self.deltas.iter().copied().collect();
            v.sort_unstable();
            let tol = i64::try_from(tolerance).unwrap_or(i64::MAX);
            self.offset = v[v.len() / 2].clamp(-tol, tol);
        }
    }
}

struct StreamMerge<'a> {
    srcs: Vec<Src>,
    labels: &'a [SourceInfo],
    tol: u64,
    out: Out,
    s: StreamSummary,
    /// Output connection number (0: none yet).
    out_conn: u64,
    /// The source connection the current output connection comes from; `None` while no
    /// source is up.
    span: Option<(usize, u32)>,
    /// Output gaps opened so far.
    gap_serial: u64,
    /// The open output gap: (since, reason).
    gap: Option<(u64, String)>,
}

fn merge_stream(
    name: &str,
    files: Vec<Vec<RecordingFile>>,
    labels: &[SourceInfo],
    stage: &Path,
    opts: &MergeOptions,
    summary: &mut Summary,
) -> anyhow::Result<(StreamSummary, Vec<PathBuf>)> {
    let n = files.len();
    let srcs = files
        .into_iter()
        .map(|f| Src {
            reader: SourceReader::new(f, opts.venue),
            queue: VecDeque::new(),
            base: 0,
            index: HashMap::new(),
            downs: VecDeque::new(),
            ups: VecDeque::new(),
            offset: 0,
            deltas: VecDeque::new(),
            matches: 0,
            up: false,
            down: None,
            last_loss: None,
            conns: HashMap::new(),
        })
        .collect();
    let mut m = StreamMerge {
        srcs,
        labels,
        tol: opts.tolerance_ns,
        out: Out::new(stage, name),
        s: StreamSummary {
            stream: name.to_owned(),
            from_source: vec![0; n],
            source_gaps: vec![0; n],
            ..StreamSummary::default()
        },
        out_conn: 0,
        span: None,
        gap_serial: 0,
        gap: None,
    };
    m.run(summary)?;
    m.out.close()?;
    m.s.files = m.out.written.len() as u64;
    m.s.offset_ms = m.srcs.iter().map(|s| s.offset as f64 / 1e6).collect();
    Ok((m.s, m.out.written))
}

impl StreamMerge<'_> {
    fn run(&mut self, summary: &mut Summary) -> anyhow::Result<()> {
        loop {
            for s in &mut self.srcs {
                if s.queue.is_empty() {
                    s.fill(summary);
                }
            }
            // The next item: the earliest head (offsets applied); ties go to the earlier source.
            let Some(i) = (0..self.srcs.len())
                .filter(|&i| !self.srcs[i].queue.is_empty())
                .min_by_key(|&i| (self.srcs[i].adj(self.srcs[i].queue[0].ts), i))
            else {
                return Ok(());
            };
            let t = self.srcs[i].adj(self.srcs[i].queue[0].ts);
            // Every other source read ahead past t + tolerance, where its copies may be.
            let horizon = t.saturating_add(self.tol);
            for (j, s) in self.srcs.iter_mut().enumerate() {
                if j == i {
                    continue;
                }
                while s.queue.back().is_none_or(|b| s.adj(b.ts) <= horizon) {
                    if !s.fill(summary) {
                        break;
                    }
                }
            }
            let src = &mut self.srcs[i];
            let serial = src.base;
            let Some(item) = src.queue.pop_front() else {
                continue;
            };
            src.base += 1;
            if src.downs.front() == Some(&serial) {
                src.downs.pop_front();
            }
            if src.ups.front() == Some(&serial) {
                src.ups.pop_front();
            }
            if let Kind::Msg(m) = &item.kind
                && m.fate == Fate::Open
            {
                src.unindex(m.hash, serial);
            }
            self.item(i, t, item)?;
        }
    }

    fn item(&mut self, i: usize, t: u64, item: Pending) -> anyhow::Result<()> {
        match item.kind {
            Kind::Msg(m) => match m.fate {
                Fate::Dup => self.s.duplicates += 1,
                Fate::Keep => self.write_message(i, item.ts, &m)?,
                Fate::Open => {
                    if self.matched(i, t, item.ts, &m) == i {
                        self.write_message(i, item.ts, &m)?;
                    } else {
                        self.s.duplicates += 1;
                    }
                }
            },
            Kind::Connected {
                uconn,
                conn,
                host,
                up,
            } => {
                self.srcs[i].conns.insert(uconn, (conn, host));
                if up {
                    self.srcs[i].up = true;
                    if let Some(at_down) = self.srcs[i].down.take() {
                        self.s.source_gaps[i] += 1;
                        if at_down == Some(self.gap_serial) {
                            self.s.gaps_filled += 1;
                        }
                    }
                    if self.span.is_none() {
                        self.open_span(i, uconn, item.ts)?;
                    }
                }
            }
            Kind::Down { reason } => {
                self.srcs[i].up = false;
                let others_up = self.srcs.iter().any(|s| s.up);
                self.srcs[i].down = Some(others_up.then_some(self.gap_serial));
                if !others_up && self.span.is_some() {
                    let mut body = b"\"event\":\"disconnected\",\"reason\":".to_vec();
                    crate::json::write_json_string(reason.as_bytes(), &mut body);
                    self.source_member(&mut body, i);
                    self.out.event(item.ts, self.out_conn, &body)?;
                    self.span = None;
                    self.gap_serial += 1;
                    self.gap = Some((item.ts, reason));
                }
            }
            Kind::Loss { mut body } => {
                self.s.source_gaps[i] += 1;
                let tol = self.tol;
                let covered = (0..self.srcs.len()).any(|j| {
                    let s = &self.srcs[j];
                    j != i
                        && s.up
                        && s.last_loss.is_none_or(|l| l.saturating_add(tol) < t)
                        && !s.queue.iter().any(|p| {
                            matches!(p.kind, Kind::Loss { .. })
                                && s.adj(p.ts) <= t.saturating_add(tol)
                        })
                });
                self.srcs[i].last_loss = Some(t);
                if covered {
                    self.s.gaps_filled += 1;
                } else {
                    self.s.gaps_remaining += 1;
                    self.source_member(&mut body, i);
                    self.out.event(item.ts, self.out_conn.max(1), &body)?;
                }
            }
        }
        Ok(())
    }

    /// Finds the copies of `m` (source `i`, adjusted time `t`) in the other sources, marks them,
    /// and returns the source whose copy is written.
    fn matched(&mut self, i: usize, t: u64, ts: u64, m: &Msg) -> usize {
        let mut group: Vec<(usize, u64, u64)> = Vec::new(); // (source, serial, ts)
        let known = |k: usize, s: &Src| k == 0 || s.matches > 0;
        let known_i = known(i, &self.srcs[i]);
        for (j, s) in self.srcs.iter().enumerate() {
            if j == i {
                continue;
            }
            // A source without a connection when the message came has no copy of it (a new
            // connection only gets what is sent after it), nor has one after its next
            // disconnect. Until the two clocks' offset is known, "when" is only known to
            // within the tolerance.
            let slack = if known_i && known(j, s) { 0 } else { self.tol };
            let from = if s.up {
                s.base
            } else {
                match s.ups.front() {
                    Some(&u)
                        if s.queue
                            .get((u - s.base) as usize)
                            .is_some_and(|p| s.adj(p.ts) <= t.saturating_add(slack)) =>
                    {
                        u
                    }
                    _ => continue,
                }
            };
            let until = s
                .downs
                .iter()
                .find(|&&d| d > from)
                .copied()
                .unwrap_or(u64::MAX);
            let Some(bucket) = s.index.get(&m.hash) else {
                continue;
            };
            for &serial in bucket {
                if serial > until {
                    break;
                }
                if serial < from {
                    continue;
                }
                let Some(p) = s.queue.get((serial - s.base) as usize) else {
                    continue;
                };
                let at = s.adj(p.ts);
                if at > t.saturating_add(self.tol) {
                    break;
                }
                if let Kind::Msg(c) = &p.kind
                    && at.saturating_add(self.tol) >= t
                    && c.same(m)
                {
                    group.push((j, serial, p.ts));
                    break;
                }
            }
        }
        let winner = group.iter().map(|g| g.0).chain([i]).min().unwrap_or(i);
        let ts0 = if i == 0 {
            Some(ts)
        } else {
            group.iter().find(|g| g.0 == 0).map(|g| g.2)
        };
        for &(j, serial, gts) in &group {
            let s = &mut self.srcs[j];
            let hash = m.hash;
            s.unindex(hash, serial);
            let idx = (serial - s.base) as usize;
            if let Some(Pending {
                kind: Kind::Msg(c), ..
            }) = s.queue.get_mut(idx)
            {
                c.fate = if j == winner { Fate::Keep } else { Fate::Dup };
            }
            if let Some(t0) = ts0 {
                let delta = i64::try_from(gts as i128 - t0 as i128).unwrap_or(0);
                s.note_delta(delta, self.tol);
            }
        }
        if i != 0
            && let Some(t0) = ts0
        {
            let delta = i64::try_from(ts as i128 - t0 as i128).unwrap_or(0);
            self.srcs[i].note_delta(delta, self.tol);
        }
        winner
    }

    fn write_message(&mut self, i: usize, ts: u64, m: &Msg) -> anyhow::Result<()> {
        if self.span != Some((i, m.uconn)) {
            self.open_span(i, m.uconn, ts)?;
        }
        self.out.message(ts, self.out_conn, &m.frag)?;
        self.s.messages += 1;
        self.s.from_source[i] += 1;
        Ok(())
    }

    /// Starts a new output connection for source `i`'s connection `uconn` at `ts`.
    fn open_span(&mut self, i: usize, uconn: u32, ts: u64) -> anyhow::Result<()> {
        let old = self.out_conn;
        let new = old + 1;
        let (conn, host) = self.srcs[i].conns.get(&uconn).cloned().unwrap_or((0, None));
        let mut body = b"\"event\":\"connected\"".to_vec();
        self.source_member(&mut body, i);
        body.extend_from_slice(b",\"source_index\":");
        body.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        body.extend_from_slice(b",\"source_conn\":");
        body.extend_from_slice(itoa::Buffer::new().format(conn).as_bytes());
        if let Some(h) = host {
            body.extend_from_slice(b",\"host\":");
            crate::json::write_json_string(h.as_bytes(), &mut body);
        }
        let handover = self.span.is_some();
        if handover {
            body.extend_from_slice(b",\"replaces\":");
            body.extend_from_slice(itoa::Buffer::new().format(old).as_bytes());
        }
        self.out.event(ts, new, &body)?;
        if handover {
            self.out.event(
                ts,
                old,
                b"\"event\":\"disconnected\",\"reason\":\"replaced\",\"detail\":\"merge: next span from another source\"",
            )?;
            self.s.switches += 1;
        } else if let Some((from, reason)) = self.gap.take() {
            self.s.gaps_remaining += 1;
            if self.s.remaining.len() < MAX_GAPS_LISTED {
                self.s.remaining.push(GapSpan {
                    from_ns: from,
                    to_ns: ts,
                    reason,
                });
            }
        }
        self.out_conn = new;
        self.span = Some((i, uconn));
        Ok(())
    }

    fn source_member(&self, body: &mut Vec<u8>, i: usize) {
        body.extend_from_slice(b",\"source\":");
        let label = self.labels.get(i).map_or("", |l| l.path.as_str());
        crate::json::write_json_string(label.as_bytes(), body);
    }
}
