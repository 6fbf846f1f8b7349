//! What one record means to the verifier: a message (`seq`, connection, exchange sequence), a
//! snapshot (counted), or an event (connects, disconnects, recorder runs, loss marks, recovered
//! files, failed snapshots), and the `seq` gaps they settle.

use std::sync::Arc;

use super::state::{OpenWindow, Seen, Where, close_window};
use super::verifier::Verifier;
use super::{IssueKind, Severity};
use crate::book::{Msg, Position, RestAnswer};
use crate::read::{Entry, EventDetail, Payload, RecordingFile, SnapshotDetail};
use crate::tools::{format_ts, venue_seq};

impl Verifier {
    pub(super) fn entry(
        &mut self,
        entry: Entry<'_>,
        line: &[u8],
        file: &RecordingFile,
        at: &Where,
    ) {
        let name = match entry.stream() {
            // Repairs before the stream was named from the configuration wrote `""`.
            "" => Some(file.name_hints().stream)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".to_owned()),
            s => s.to_owned(),
        };
        let ts = entry.ts();
        let conn = entry.conn();
        let recovered = matches!(&entry, Entry::Event(e) if e.name == "recovered");
        let after_kill = {
            let s = self.stream(&name);
            if file.is_events {
                s.raw = true;
                s.report.format = "raw";
            }
            if s.report.runs == 0 {
                s.report.runs = 1;
            }
            if recovered {
                s.killed
            } else {
                std::mem::take(&mut s.killed)
            }
        };
        match entry {
            Entry::Message(m) => {
                self.report.messages += 1;
                let s = self.stream(&name);
                s.report.messages += 1;
                s.last_at = Some(at.clone());
                if !s.live.contains(&conn) {
                    if let Some(w) = s.window.take() {
                        // The `connected` line is missing; the message shows the connection was up.
                        close_window(&mut s.report, w, ts);
                    }
                    s.live.insert(conn);
                    s.max_conn = s.max_conn.max(conn);
                }
                if !s.raw {
                    s.report.seq_first = Some(s.report.seq_first.map_or(m.seq, |f| f.min(m.seq)));
                    s.report.seq_last = Some(s.report.seq_last.map_or(m.seq, |l| l.max(m.seq)));
                    let seen = s.seq.observe(m.seq, at);
                    if seen == Seen::Duplicate {
                        s.report.seq_duplicates += 1;
                        self.issue(
                            IssueKind::SeqDuplicate,
                            Severity::Problem,
                            Some(at),
                            Some(&name),
                            format!("seq {} appears again (a duplicated line)", m.seq),
                        );
                    } else if seen == Seen::Ahead {
                        if let Some(books) = &mut self.books {
                            books.recorder_gap(&name, format!("a `seq` gap before seq {}", m.seq));
                        }
                        let settled = self.stream(&name).seq.settled();
                        self.gaps(&name, settled);
                    }
                }
                self.venue_flagged = false;
                if let Payload::Json(text) = m.payload
                    && self.opts.venue
                {
                    let mut points = std::mem::take(&mut self.points);
                    points.clear();
                    venue_seq::points(text.as_bytes(), &mut points);
                    self.venue_points(&name, conn, &points, at);
                    self.points = points;
                }
                if self.books.is_some()
                    && let Some(text) = m.payload.content_text()
                {
                    self.book_message(&name, conn, ts, at, &text);
                }
            }
            Entry::Snapshot(snap) => {
                self.report.snapshots += 1;
                let s = self.stream(&name);
                s.report.snapshots += 1;
                s.last_at = Some(at.clone());
                if let (Some(books), Payload::Json(body)) = (&mut self.books, &snap.payload) {
                    let detail = SnapshotDetail::parse(snap.request);
                    let position = Position {
                        file: at.file.clone(),
                        line: at.line,
                    };
                    books.rest(
                        &Msg {
                            stream: &name,
                            conn,
                            ts,
                            at: &position,
                        },
                        &RestAnswer {
                            symbol: detail.symbol.as_deref().unwrap_or(""),
                            url: detail.url.as_deref().unwrap_or(""),
                            body,
                        },
                    );
                    self.book_breaks();
                }
            }
            Entry::Event(e) => {
                self.report.events += 1;
                let detail = EventDetail::parse(line);
                self.stream(&name).report.events += 1;
                match &*e.name {
                    "connected" | "connect_failed" => {
                        let s = self.stream(&name);
                        // After a `recovered` event, the next connection is a new run's even
                        // when the killed run's file held none of its records.
                        let new_run = after_kill
                            || conn <= s.max_conn
                            || (e.name == "connected"
                                && matches!((s.pid, detail.pid), (Some(a), Some(b)) if a != b));
                        if new_run {
                            self.new_run(&name, ts, conn, after_kill);
                        } else if s.max_conn == 0 && conn == 1 && s.report.messages == 0 {
                            // The very start of a run: seq starts at 0.
                            s.seq.next = Some(0);
                        }
                        if let (Some(books), "connected", Some(source), Some(prev)) =
                            (&mut self.books, &*e.name, &detail.source, detail.replaces)
                        {
                            books.conn_continues(
                                &name,
                                conn,
                                format!(
                                    "the merge switched input here (from connection {prev} to {source}): the book resumes at its next snapshot"
                                ),
                            );
                        }
                        let s = self.stream(&name);
                        s.max_conn = s.max_conn.max(conn);
                        if e.name == "connected" {
                            s.report.connections += 1;
                            if detail.pid.is_some() {
                                s.pid = detail.pid;
                            }
                            s.live.insert(conn);
                            if let Some(w) = s.window.take() {
                                close_window(&mut s.report, w, ts);
                            }
                        } else {
                            s.report.connect_failures += 1;
                            match &mut s.window {
                                Some(w) => w.failed_attempts += 1,
                                None if s.live.is_empty() => {
                                    s.window = Some(OpenWindow {
                                        start_ns: ts,
                                        reason: "connect_failed".to_owned(),
                                        conn,
                                        failed_attempts: 1,
                                        at: at.clone(),
                                    });
                                }
                                None => {}
                            }
                        }
                    }
                    "disconnected" => {
                        let s = self.stream(&name);
                        s.live.remove(&conn);
                        s.venue.forget_conn(conn);
                        if let Some(books) = &mut self.books {
                            books.conn_ended(&name, conn);
                        }
                        self.book_breaks();
                        let s = self.stream(&name);
                        if s.live.is_empty() && s.window.is_none() {
                            s.window = Some(OpenWindow {
                                start_ns: ts,
                                reason: detail.reason.unwrap_or_else(|| "unknown".to_owned()),
                                conn,
                                failed_attempts: 0,
                                at: at.clone(),
                            });
                        }
                    }
                    "dropped" => {
                        let count = detail.count.unwrap_or(0);
                        if let Some(books) = &mut self.books {
                            books.recorder_gap(
                                &name,
                                format!("{count} message(s) dropped by the recorder"),
                            );
                        }
                        let s = self.stream(&name);
                        s.report.dropped += count;
                        s.dropped_credit += count;
                        self.issue(
                            IssueKind::Dropped,
                            Severity::Problem,
                            Some(at),
                            Some(&name),
                            format!(
                                "{count} message(s) dropped by the recorder (when_full = \"drop_newest\": the disk or the writer could not keep up)"
                            ),
                        );
                    }
                    "disk_full_gap" | "write_error_gap" => {
                        let lost = detail.lost.unwrap_or(0);
                        // A write error can also take event lines and the marks of drops.
                        let dropped = detail.dropped.unwrap_or(0);
                        if let Some(books) = &mut self.books {
                            books.recorder_gap(
                                &name,
                                format!("{lost} message(s) not written by the recorder"),
                            );
                        }
                        let s = self.stream(&name);
                        s.report.not_written += lost;
                        s.dropped_credit += lost + dropped;
                        let why = match (detail.from_ts, detail.to_ts) {
                            (Some(a), Some(b)) if e.name == "disk_full_gap" => format!(
                                "free disk space was below disk_stop from {} to {}",
                                format_ts(a),
                                format_ts(b)
                            ),
                            _ if e.name == "disk_full_gap" => {
                                "free disk space was below disk_stop".to_owned()
                            }
                            (Some(a), Some(b)) => format!(
                                "writing failed (disk full or I/O error) for lines received from {} to {}",
                                format_ts(a),
                                format_ts(b)
                            ),
                            _ => "writing failed (disk full or I/O error)".to_owned(),
                        };
                        let mut also = String::new();
                        if let Some(n) = detail.lost_events.filter(|&n| n > 0) {
                            also.push_str(&format!(", and {n} event line(s)"));
                        }
                        if dropped > 0 {
                            also.push_str(&format!(
                                ", and the mark of {dropped} message(s) dropped under drop_newest"
                            ));
                        }
                        self.issue(
                            IssueKind::NotWritten,
                            Severity::Problem,
                            Some(at),
                            Some(&name),
                            format!("{lost} message(s){also} not written by the recorder: {why}"),
                        );
                    }
                    "snapshot_failed" => {
                        self.stream(&name).report.snapshot_failures += 1;
                        let status = detail
                            .status
                            .map_or_else(|| "no HTTP answer".to_owned(), |c| format!("HTTP {c}"));
                        self.issue(
                            IssueKind::SnapshotFailed,
                            Severity::Warning,
                            Some(at),
                            Some(&name),
                            format!(
                                "snapshot of {} not fetched after {} attempt(s) ({status}): {}; the book cannot be rebuilt from connection {conn}'s diffs until its next snapshot",
                                detail.symbol.as_deref().unwrap_or("(unknown symbol)"),
                                detail.attempts.unwrap_or(0),
                                detail.error.as_deref().unwrap_or("no error given"),
                            ),
                        );
                    }
                    "recovered" => {
                        self.recovered(&name, ts, &detail, after_kill, at);
                        // Written at the repair, not when the data came: it says nothing about
                        // when the stream was last seen.
                        return;
                    }
                    _ => {}
                }
            }
        }
        // After the event is handled: a new run's window starts at the previous record.
        let s = self.stream(&name);
        s.report.first_ts = Some(s.report.first_ts.map_or(ts, |f| f.min(ts)));
        s.report.last_ts = Some(s.report.last_ts.map_or(ts, |l| l.max(ts)));
    }

    /// A `recovered` event at `at`, written at `ts` when the next start repaired a file of
    /// `name` that a killed or crashed run left open. The first of a stop is the problem that
    /// reports the run; further files the same stop left open (`again`) are warnings.
    pub(super) fn recovered(
        &mut self,
        name: &str,
        ts: u64,
        d: &EventDetail,
        again: bool,
        at: &Where,
    ) {
        let s = self.stream(name);
        s.killed = true;
        let cut = match d.cut_bytes.unwrap_or(0) {
            0 => "no bytes cut".to_owned(),
            n => format!("{n} bytes of an unfinished last line cut off"),
        };
        let repaired = format!("repaired at the next start, {}: {cut}", format_ts(ts));
        let file = d
            .file
            .as_deref()
            .map_or_else(|| "this file".to_owned(), |f| format!("`{f}`"));
        if again {
            self.issue(
                IssueKind::Recovered,
                Severity::Warning,
                Some(at),
                Some(name),
                format!("{file} was also left open by the same stop; {repaired}"),
            );
            return;
        }
        s.report.unclean_stops += 1;
        let when = |word: &str| {
            d.last_write_ts
                .map(|t| format!(" {word} {}", format_ts(t)))
                .unwrap_or_default()
        };
        let detail = if d.lines == Some(0) {
            format!(
                "the recorder was killed or crashed before it wrote anything to {file}: nothing that run received for this stream{} was written ({repaired})",
                when("after")
            )
        } else {
            format!(
                "the recorder was killed or crashed while writing {file}: what that run received for this stream after its last write{} was not written ({repaired})",
                when("at")
            )
        };
        self.issue(
            IssueKind::Recovered,
            Severity::Problem,
            Some(at),
            Some(name),
            detail,
        );
    }

    /// A new recorder run of `name` starts with connection `conn` at `ts`; `reported`: the
    /// previous run's end was reported already (by a `recovered` event).
    pub(super) fn new_run(&mut self, name: &str, ts: u64, conn: u64, reported: bool) {
        let s = self.stream(name);
        let holes = s.seq.finish(if conn == 1 { Some(0) } else { None });
        self.gaps(name, holes);
        let s = self.stream(name);
        s.report.runs += 1;
        s.max_conn = 0;
        s.pid = None;
        s.venue.clear();
        if let Some(books) = &mut self.books {
            books.stream_ended(name);
        }
        self.book_breaks();
        let s = self.stream(name);
        if !s.live.is_empty() {
            s.live.clear();
            let last = s.report.last_ts.unwrap_or(ts);
            let at = s.last_at.clone();
            // The previous run never wrote its `disconnected` events.
            let w = OpenWindow {
                start_ns: last.min(ts),
                reason: "recorder stopped without closing (killed or crashed)".to_owned(),
                conn: 0,
                failed_attempts: 0,
                at: at.clone().unwrap_or(Where {
                    file: Arc::from(""),
                    line: 0,
                }),
            };
            if s.window.is_none() {
                s.window = Some(w);
            }
            if reported {
                return;
            }
            s.report.unclean_stops += 1;
            self.issue(
                IssueKind::UncleanStop,
                Severity::Problem,
                at.as_ref(),
                Some(name),
                format!(
                    "the recorder stopped without closing its connections after {} (killed or crashed); messages received just before may be missing",
                    format_ts(last)
                ),
            );
        }
    }

    /// Reports settled `seq` holes, first as far as `dropped` events explain them.
    pub(super) fn gaps(&mut self, name: &str, holes: Vec<(u64, u64, Where)>) {
        for (start, end, at) in holes {
            let missing = end - start + 1;
            let s = self.stream(name);
            let explained = missing.min(s.dropped_credit);
            s.dropped_credit -= explained;
            s.report.seq_gaps += 1;
            s.report.seq_missing += missing;
            if explained == missing {
                continue;
            }
            let range = if start == end {
                format!("seq {start} is missing")
            } else {
                format!("seq {start}..={end} are missing ({missing} messages)")
            };
            let marked = if explained > 0 {
                format!(", {explained} of them marked as dropped")
            } else {
                String::new()
            };
            self.issue(
                IssueKind::SeqGap,
                Severity::Problem,
                Some(&at),
                Some(name),
                format!("{range}{marked}: lines were lost or removed"),
            );
        }
    }
}
