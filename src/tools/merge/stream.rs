//! The merge of one stream: the sources read ahead up to the tolerance, duplicates matched one to
//! one across sources, clock offsets estimated, gaps filled, and the output written in
//! receive-time order.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::read::RecordingFile;
use crate::tools::interrupt;

use super::output::Out;
use super::source::{ConnOrigin, Fate, Kind, Msg, Pending, SourceReader};
use super::{GapSpan, MAX_GAPS_LISTED, MergeOptions, SourceInfo, StreamSummary, Summary};

/// Matched copies the clock offset estimate looks at.
const OFFSET_SAMPLES: usize = 31;

/// One source during the merge.
pub(super) struct Src {
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
    /// Source connection -> (its number, the recorder's host and the stream's tags there).
    conns: HashMap<u32, (u64, ConnOrigin)>,
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

pub(super) struct StreamMerge<'a> {
    srcs: Vec<Src>,
    labels: &'a [SourceInfo],
    /// Set when the merge is to stop at the next record (a signal: `tools::interrupt`).
    stop: &'a AtomicBool,
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

pub(super) fn merge_stream(
    name: &str,
    files: Vec<Vec<RecordingFile>>,
    labels: &[SourceInfo],
    stage: &Path,
    opts: &MergeOptions,
    stop: &AtomicBool,
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
        stop,
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
    m.out.close(true)?;
    m.s.files = m.out.written.len() as u64;
    m.s.offset_ms = m.srcs.iter().map(|s| s.offset as f64 / 1e6).collect();
    Ok((m.s, m.out.written))
}

impl StreamMerge<'_> {
    fn run(&mut self, summary: &mut Summary) -> anyhow::Result<()> {
        loop {
            interrupt::check(self.stop)?;
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
                origin,
                up,
            } => {
                self.srcs[i].conns.insert(uconn, (conn, origin));
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
            Kind::Snapshot { uconn, frag } => {
                // Kept where the output is taking this very source connection's messages, so
                // the diffs around it are those it was fetched for; any other source's copy of
                // the moment is left out, so no snapshot appears twice.
                if self.span == Some((i, uconn)) {
                    self.out.snapshot(item.ts, self.out_conn, &frag)?;
                    self.s.snapshots += 1;
                } else {
                    self.s.snapshots_left_out += 1;
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
        let (conn, origin) = self.srcs[i].conns.get(&uconn).cloned().unwrap_or_default();
        let mut body = b"\"event\":\"connected\"".to_vec();
        self.source_member(&mut body, i);
        body.extend_from_slice(b",\"source_index\":");
        body.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        body.extend_from_slice(b",\"source_conn\":");
        body.extend_from_slice(itoa::Buffer::new().format(conn).as_bytes());
        if let Some(h) = origin.host {
            body.extend_from_slice(b",\"host\":");
            crate::json::write_json_string(h.as_bytes(), &mut body);
        }
        if !origin.tags.is_empty() {
            body.extend_from_slice(b",\"tags\":{");
            for (n, (k, v)) in origin.tags.iter().enumerate() {
                if n > 0 {
                    body.push(b',');
                }
                crate::json::write_json_string(k.as_bytes(), &mut body);
                body.push(b':');
                crate::json::write_json_string(v.as_bytes(), &mut body);
            }
            body.push(b'}');
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
