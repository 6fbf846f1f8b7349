//! The verify report as text for people.

use super::{Report, Severity};
use crate::tools::{format_duration_ns, format_ts};

/// The report as text for people.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let mut kinds = Vec::new();
    if r.open_files > 0 {
        kinds.push(format!("{} still open", r.open_files));
    }
    if r.compressed_files > 0 {
        kinds.push(format!("{} compressed", r.compressed_files));
    }
    let kinds = if kinds.is_empty() {
        String::new()
    } else {
        format!(" ({})", kinds.join(", "))
    };
    let snapshots = if r.snapshots > 0 {
        format!(", {} snapshots", r.snapshots)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "Read {} file(s){kinds}, {} lines: {} messages, {} events{snapshots}; {} manifest(s) checked.",
        r.files, r.lines, r.messages, r.events, r.manifests_checked
    );
    for s in &r.streams {
        let _ = writeln!(o);
        let span = match (s.first_ts, s.last_ts) {
            (Some(a), Some(b)) => format!(", {} to {}", format_ts(a), format_ts(b)),
            _ => String::new(),
        };
        let seq = match (s.seq_first, s.seq_last) {
            (Some(a), Some(b)) => format!(", seq {a}..={b}"),
            _ if s.format == "raw" => ", raw format (seq not checked)".to_owned(),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "{}: {} messages{span}{seq}, {} connection(s) in {} run(s)",
            s.stream, s.messages, s.connections, s.runs
        );
        let mut facts = Vec::new();
        if s.snapshots > 0 {
            facts.push(format!("{} snapshot(s)", s.snapshots));
        }
        if s.snapshot_failures > 0 {
            facts.push(format!("{} failed snapshot fetch(es)", s.snapshot_failures));
        }
        if s.connect_failures > 0 {
            facts.push(format!(
                "{} failed connection attempt(s)",
                s.connect_failures
            ));
        }
        if s.seq_gaps > 0 {
            facts.push(format!(
                "{} seq gap(s), {} missing",
                s.seq_gaps, s.seq_missing
            ));
        }
        if s.seq_duplicates > 0 {
            facts.push(format!("{} duplicate seq", s.seq_duplicates));
        }
        if s.dropped > 0 {
            facts.push(format!("{} dropped", s.dropped));
        }
        if s.not_written > 0 {
            facts.push(format!("{} not written", s.not_written));
        }
        if s.unclean_stops > 0 {
            facts.push(format!("{} run(s) killed or crashed", s.unclean_stops));
        }
        if s.venue_checked > 0 {
            facts.push(format!(
                "exchange sequence checked on {} message(s), {} break(s)",
                s.venue_checked, s.venue_breaks
            ));
        }
        if !facts.is_empty() {
            let _ = writeln!(o, "  {}", facts.join("; "));
        }
        if s.disconnects.is_empty() {
            let _ = writeln!(o, "  no disconnect windows");
        } else {
            let _ = writeln!(
                o,
                "  {} disconnect window(s), {} in total:",
                s.disconnects.len() as u64 + s.disconnects_not_listed,
                format_duration_ns(s.disconnected_ns)
            );
        }
        for w in &s.disconnects {
            let attempts = if w.failed_attempts > 0 {
                format!(", {} failed attempt(s)", w.failed_attempts)
            } else {
                String::new()
            };
            let until = match w.duration_ns {
                Some(d) => format!("for {}", format_duration_ns(d)),
                None => "until the end of the recording".to_owned(),
            };
            let _ = writeln!(
                o,
                "    {} {until} ({}{attempts}) at {}:{}",
                format_ts(w.start_ns),
                w.reason,
                w.file,
                w.line
            );
        }
        if s.disconnects_not_listed > 0 {
            let _ = writeln!(o, "    … and {} more", s.disconnects_not_listed);
        }
    }
    render_books(r, &mut o);
    // Each severity under its own heading, so a note is never read as a failure.
    for (sev, heading, n) in [
        (Severity::Problem, "Problems", r.problems),
        (Severity::Warning, "Warnings (not problems)", r.warnings),
    ] {
        if n == 0 {
            continue;
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "{heading}: {n}");
        let mut listed = 0u64;
        for i in r.issues.iter().filter(|i| i.severity == sev) {
            listed += 1;
            let place = match (&i.file, i.line) {
                (Some(f), Some(l)) => format!("{f}:{l}: "),
                (Some(f), None) => format!("{f}: "),
                _ => String::new(),
            };
            let stream = i
                .stream
                .as_deref()
                .map(|s| format!("[{s}] "))
                .unwrap_or_default();
            let _ = writeln!(o, "  {place}{stream}{}", i.detail);
        }
        if n > listed {
            let _ = writeln!(
                o,
                "  … and {} more not listed (`--json` has the same cap)",
                n - listed
            );
        }
    }
    let _ = writeln!(o);
    match (r.problems, r.warnings) {
        (0, 0) => {
            let _ = writeln!(o, "OK: no problems found.");
        }
        (0, w) => {
            let _ = writeln!(o, "OK: no problems found ({w} warning(s)).");
        }
        (p, _) => {
            let _ = writeln!(o, "FAILED: {p} problem(s).");
        }
    }
    o
}

/// Books listed one per line in the text report (`--json` lists all).
const BOOKS_LISTED: usize = 50;

/// The order books: a summary line, then one line per book (proven ones after the others).
fn render_books(r: &Report, o: &mut String) {
    use std::fmt::Write as _;
    if r.books.is_empty() {
        return;
    }
    let _ = writeln!(o);
    let checksums = if r.checksums_checked > 0 {
        format!(
            "; {} checksum(s) compared, {} failed",
            r.checksums_checked, r.checksums_failed
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "Order books: {} rebuilt, {} proven{checksums}",
        r.books.len(),
        r.books_proven
    );
    let mut books: Vec<&crate::book::BookReport> = r.books.iter().collect();
    books.sort_by_key(|b| b.proven());
    for b in books.iter().take(BOOKS_LISTED) {
        let id = &b.id;
        let state = if b.proven() {
            "proven".to_owned()
        } else if b.spans_total == 0 {
            "never proven (no snapshot)".to_owned()
        } else {
            format!("{} break(s)", b.breaks - b.explained_breaks)
        };
        let mut facts = vec![
            format!("{} span(s)", b.spans_total),
            format!("{} update(s)", b.updates),
        ];
        if b.checksums_checked > 0 {
            facts.push(format!("{} checksum(s)", b.checksums_checked));
        }
        if b.unproven_updates > 0 {
            facts.push(format!("{} update(s) not proven", b.unproven_updates));
        }
        if b.explained_breaks > 0 {
            facts.push(format!(
                "{} break(s) after the recorder's own gaps",
                b.explained_breaks
            ));
        }
        let _ = writeln!(
            o,
            "  [{}] {} {} {}: {state} ({})",
            id.stream,
            id.venue,
            id.channel,
            id.symbol,
            facts.join(", ")
        );
    }
    if books.len() > BOOKS_LISTED {
        let _ = writeln!(
            o,
            "  … and {} more (`--json` lists every book and its spans)",
            books.len() - BOOKS_LISTED
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::verify::{Issue, IssueKind};

    #[test]
    fn problems_and_warnings_are_listed_under_their_own_headings() {
        let issue = |severity, detail: &str| Issue {
            kind: IssueKind::Recovered,
            severity,
            file: Some("f".to_owned()),
            line: Some(1),
            stream: Some("s".to_owned()),
            detail: detail.to_owned(),
        };
        // Three problems and a warning, two of the problems beyond the list.
        let r = Report {
            problems: 3,
            warnings: 1,
            issues: vec![
                issue(Severity::Warning, "a note"),
                issue(Severity::Problem, "a failure"),
            ],
            issues_not_listed: 2,
            ..Report::default()
        };
        let text = render(&r);
        let problems = text.find("\nProblems: 3\n").expect(&text);
        let warnings = text.find("\nWarnings (not problems): 1\n").expect(&text);
        let (under_problems, under_warnings) = (&text[problems..warnings], &text[warnings..]);
        assert!(under_problems.contains("a failure"), "{text}");
        assert!(under_problems.contains("… and 2 more not listed"), "{text}");
        assert!(!under_problems.contains("a note"), "{text}");
        assert!(under_warnings.contains("a note"), "{text}");
        assert!(!under_warnings.contains("more not listed"), "{text}");
        assert!(text.ends_with("\nFAILED: 3 problem(s).\n"), "{text}");
        let ok = render(&Report {
            warnings: 1,
            issues: vec![issue(Severity::Warning, "a note")],
            ..Report::default()
        });
        assert!(!ok.contains("Problems"), "{ok}");
        assert!(
            ok.ends_with("OK: no problems found (1 warning(s)).\n"),
            "{ok}"
        );
    }
}
