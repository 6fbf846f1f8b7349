//! The status snapshot as a plain-text table for people.

use std::time::Duration;

use crate::observe::stats::{Snapshot, go_duration};

/// A plain-text table of `s`, one row per stream, then a summary line and the Go streamer's total
/// line ([`Snapshot::go_line`]).
///
/// `now_ns` (ns since the epoch) is passed in rather than read, so that the last-message age, and
/// with it the whole output, is a function of the arguments; callers pass the current time.
pub fn render_table(s: &Snapshot, now_ns: u64) -> String {
    /// Column headers, and whether the column is numeric (right-aligned so magnitudes line up).
    const COLUMNS: [(&str, bool); 9] = [
        ("STREAM", false),
        ("STATE", false),
        ("MSGS", true),
        ("RATE/s", true),
        ("RECONN", true),
        ("DROPPED", true),
        ("LOST", true),
        ("LAST MSG AGE", true),
        ("FILE", false),
    ];

    let rows: Vec<[String; 9]> = s
        .streams
        .iter()
        .map(|st| {
            [
                st.name.clone(),
                {
                    let mut state = st.state.name().to_owned();
                    if st.subscriptions_failed > 0 {
                        state.push_str(&format!(", {} subs failing", st.subscriptions_failed));
                    }
                    if st.snapshot_failures > 0 {
                        state.push_str(&format!(", {} snapshots failed", st.snapshot_failures));
                    }
                    state
                },
                st.messages.to_string(),
                format!("{:.2}", st.rate_per_sec),
                st.reconnects.to_string(),
                st.dropped.to_string(),
                st.lines_lost.to_string(),
                message_age(st.last_message_ns, now_ns),
                if st.current_file.is_empty() {
                    "-".to_owned()
                } else {
                    st.current_file.clone()
                },
            ]
        })
        .collect();

    let mut widths = COLUMNS.map(|(header, _)| header.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    let headers = COLUMNS.map(|(header, _)| header.to_owned());
    for row in std::iter::once(&headers).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if COLUMNS[i].1 {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }

    for st in s.streams.iter().filter(|st| !st.tags.is_empty()) {
        let tags: Vec<String> = st.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("{}: tags: {}\n", st.name, tags.join(" ")));
    }
    for st in s.streams.iter().filter(|st| !st.last_error.is_empty()) {
        out.push_str(&format!("{}: last error: {}\n", st.name, st.last_error));
    }

    out.push_str(&format!(
        "pid {} | uptime {} | queue {}/{} | files closed {} | write errors {}\n",
        s.pid,
        go_duration(s.uptime_secs),
        s.queue_depth,
        s.queue_capacity,
        s.files_closed,
        s.write_errors,
    ));
    if s.disk_buffer_peak_bytes > 0 || s.disk_stall_max_secs > 0.0 {
        out.push_str(&format!(
            "disk buffer: {}/{} bytes (peak {}) | longest disk operation {:.3}s\n",
            s.disk_buffer_bytes,
            s.disk_buffer_capacity,
            s.disk_buffer_peak_bytes,
            s.disk_stall_max_secs
        ));
    }
    if s.journal_bytes > 0 || s.journal_fallbacks > 0 {
        out.push_str(&format!(
            "journal: {} bytes kept | {} halves | behind the disk {} times\n",
            s.journal_bytes, s.journal_halves, s.journal_fallbacks
        ));
    }
    if s.compress_backlog > 0 || s.files_compressed > 0 || s.compress_errors > 0 {
        out.push_str(&format!(
            "compression: {} done, {} waiting, {} failed\n",
            s.files_compressed, s.compress_backlog, s.compress_errors
        ));
    }
    if let Some(n) = &s.nats {
        out.push_str(&format!(
            "nats: {} | published {} | dropped {} | in flight {} | queued {}\n",
            n.state.name(),
            n.published,
            n.dropped,
            n.in_flight,
            n.queued
        ));
    }
    if s.upload_backlog > 0 || s.files_uploaded > 0 || s.upload_errors > 0 {
        out.push_str(&format!(
            "upload: {} done ({} bytes), {} waiting, {} failed attempts\n",
            s.files_uploaded, s.bytes_uploaded, s.upload_backlog, s.upload_errors
        ));
    }
    if s.disk_stopped {
        out.push_str(&format!(
            "DISK FULL: {} bytes free, below disk_stop: messages are counted as lost, not written\n",
            s.disk_free
        ));
    } else if s.disk_low {
        out.push_str(&format!(
            "disk low: {} bytes free, below disk_warn\n",
            s.disk_free
        ));
    }
    out.push_str(&s.go_line());
    out.push('\n');
    out
}

/// How long ago the last message arrived: `-` if none yet, `250ms`, `4.2s`, then `12m34s`.
/// A last message "in the future" (clock stepped back) shows as `0ms`.
pub(super) fn message_age(last_ns: u64, now_ns: u64) -> String {
    if last_ns == 0 {
        return "-".to_owned();
    }
    let age = Duration::from_nanos(now_ns.saturating_sub(last_ns));
    if age < Duration::from_secs(1) {
        format!("{}ms", age.as_millis())
    } else if age < Duration::from_secs(60) {
        format!("{:.1}s", age.as_secs_f64())
    } else {
        go_duration(age.as_secs_f64())
    }
}
