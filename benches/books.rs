//! Book engine benchmark: how fast `wsrec::book` rebuilds the order books of the real exchange
//! frames in `tests/fixtures/corpus/` (every venue whose books start in the feed), on one core,
//! and what memory it holds.
//!
//! Each venue's frames are fed as one stream, over and over as one long recording (each pass
//! starts again at the venue's snapshots), through one engine: the figures are updates (book
//! messages applied) and level changes per second, and the peak resident memory after 1 pass
//! and after all passes, which stays put when memory follows the books' sizes and not the
//! recording's.
//!
//! Run with `cargo bench --bench books`. Optional argument: passes over the corpus (default 200).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wsrec::book::{Books, Msg, Position};

/// The corpus files of books that start in the feed, with the venue's name for the table.
const FILES: &[(&str, &str)] = &[
    ("OKX books (checksums)", "okx_books.jsonl"),
    ("Bybit linear orderbook.200", "bybit-linear_orderbook.jsonl"),
    ("Bybit spot orderbook.200", "bybit-spot_orderbook.jsonl"),
    ("Kraken v1 book-1000 (checksums)", "kraken-v1_book.jsonl"),
    (
        "Coinbase Exchange level2",
        "coinbase-exchange_l2update.jsonl",
    ),
];

fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage writes into the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_maxrss
    }
}

struct Run {
    messages: u64,
    updates: u64,
    levels: u64,
    checksums: u64,
    breaks: u64,
    secs: f64,
}

/// Feeds `lines` `passes` times through one engine as stream `name`.
fn run(name: &str, lines: &[String], passes: usize) -> Run {
    let file: Arc<str> = Arc::from(name);
    let mut books = Books::new();
    let mut messages = 0u64;
    let mut breaks = 0u64;
    let start = Instant::now();
    let mut n = 0u64;
    for _ in 0..passes {
        for line in lines {
            n += 1;
            let at = Position {
                file: file.clone(),
                line: n,
            };
            let m = Msg {
                stream: name,
                conn: 1,
                ts: n,
                at: &at,
            };
            if books.message(&m, line) {
                messages += 1;
            }
            breaks += books.take_breaks().len() as u64;
        }
    }
    let (reports, last) = books.finish();
    let secs = start.elapsed().as_secs_f64();
    breaks += last.len() as u64;
    Run {
        messages,
        updates: reports.iter().map(|r| r.updates + r.snapshots).sum(),
        levels: reports.iter().map(|r| r.level_changes).sum(),
        checksums: reports.iter().map(|r| r.checksums_checked).sum(),
        breaks,
        secs,
    }
}

fn main() {
    let passes: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(200, |a| a.parse().expect("passes: a whole number"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let corpus: Vec<(&str, Vec<String>)> = FILES
        .iter()
        .map(|(name, file)| {
            let text = std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|e| panic!("reading {file}: {e}"));
            (*name, text.lines().map(str::to_owned).collect())
        })
        .collect();
    let rss_start = peak_rss_kib();
    for (name, lines) in &corpus {
        run(name, lines, 1);
    }
    let rss_one = peak_rss_kib();
    println!("book engine, {passes} passes over each venue's corpus frames, one core:");
    println!(
        "{:<34} {:>9} {:>12} {:>14} {:>10} {:>7}",
        "frames", "msgs", "updates/s", "levels/s", "checksums", "breaks"
    );
    let (mut updates, mut levels, mut secs) = (0u64, 0u64, 0f64);
    for (name, lines) in &corpus {
        let r = run(name, lines, passes);
        updates += r.updates;
        levels += r.levels;
        secs += r.secs;
        println!(
            "{:<34} {:>9} {:>12.0} {:>14.0} {:>10} {:>7}",
            name,
            r.messages,
            r.updates as f64 / r.secs,
            r.levels as f64 / r.secs,
            r.checksums,
            r.breaks
        );
    }
    println!(
        "{:<34} {:>9} {:>12.0} {:>14.0}",
        "all",
        "",
        updates as f64 / secs,
        levels as f64 / secs
    );
    println!(
        "peak RSS: {} KiB at start, {} KiB after 1 pass, {} KiB after {passes} passes",
        rss_start,
        rss_one,
        peak_rss_kib()
    );
}
