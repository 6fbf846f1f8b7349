//! Validator micro-benchmark: `wsrec::json::is_single_line_json` against
//! `serde_json::from_slice::<IgnoredAny>` over every line of the real exchange
//! frames in `tests/fixtures/corpus/*.jsonl` (alone, and with the `memchr2`
//! newline scan it would need to match our semantics), plus a UTF-8 check (one SIMD pass
//! over the bytes, the floor of any validator) and the escaped-string fallback
//! (`write_json_string`) for reference.
//!
//! Run with `cargo bench --bench json_validate`. Optional argument: minimum
//! seconds per measurement (default 1.0).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use wsrec::json::{is_single_line_json, write_json_string};

fn load_corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    let mut lines = Vec::new();
    for path in paths {
        let data = std::fs::read(&path).expect("read corpus file");
        lines.extend(
            data.split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    lines
}

/// Runs `pass` (one sweep over the corpus) repeatedly for at least `min`
/// after a warm-up, returning the best per-sweep time over a few rounds.
fn measure(min: Duration, mut pass: impl FnMut() -> usize) -> (Duration, usize) {
    let mut sink = 0usize;
    let warm = Instant::now();
    while warm.elapsed() < min / 4 {
        sink = sink.wrapping_add(pass());
    }
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut sweeps = 0u32;
        while start.elapsed() < min / 5 {
            sink = sink.wrapping_add(pass());
            sweeps += 1;
        }
        best = best.min(start.elapsed() / sweeps);
    }
    (best, sink)
}

fn main() {
    let min_secs: f64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0);
    let min = Duration::from_secs_f64(min_secs);

    let lines = load_corpus();
    assert!(!lines.is_empty(), "empty corpus");
    let msgs = lines.len();
    let bytes: usize = lines.iter().map(Vec::len).sum();

    // Sanity: both validators must accept the whole corpus.
    let ours_ok = lines.iter().filter(|l| is_single_line_json(l)).count();
    let serde_ok = lines
        .iter()
        .filter(|l| serde_json::from_slice::<IgnoredAny>(l).is_ok())
        .count();
    assert_eq!(ours_ok, msgs, "is_single_line_json rejected corpus lines");
    assert_eq!(serde_ok, msgs, "serde_json rejected corpus lines");

    println!(
        "corpus: {msgs} messages, {bytes} bytes (avg {:.0} B/msg), >= {min_secs} s per row",
        bytes as f64 / msgs as f64
    );

    let mut out = Vec::with_capacity(1 << 16);
    let rows: Vec<(&str, (Duration, usize))> = vec![
        (
            "is_single_line_json",
            measure(min, || {
                lines
                    .iter()
                    .filter(|l| is_single_line_json(black_box(l)))
                    .count()
            }),
        ),
        (
            "serde_json IgnoredAny",
            measure(min, || {
                lines
                    .iter()
                    .filter(|l| serde_json::from_slice::<IgnoredAny>(black_box(l)).is_ok())
                    .count()
            }),
        ),
        (
            "serde_json + memchr2 \\n\\r",
            measure(min, || {
                lines
                    .iter()
                    .filter(|l| {
                        let l = black_box(l);
                        memchr::memchr2(b'\n', b'\r', l).is_none()
                            && serde_json::from_slice::<IgnoredAny>(l).is_ok()
                    })
                    .count()
            }),
        ),
        (
            // One SIMD pass over the bytes and nothing else: what any validator that reads
            // each byte once costs at least, before it checks a single token.
            "simdutf8 (one SIMD pass)",
            measure(min, || {
                lines
                    .iter()
                    .filter(|l| simdutf8::basic::from_utf8(black_box(l)).is_ok())
                    .count()
            }),
        ),
        (
            "write_json_string",
            measure(min, || {
                let mut n = 0;
                for l in &lines {
                    out.clear();
                    write_json_string(black_box(l), &mut out);
                    n += black_box(&out).len();
                }
                n
            }),
        ),
    ];

    let books = book_objects(&lines);
    let book_bytes: usize = books.iter().map(Vec::len).sum();
    let (book_time, _) = measure(min, || {
        books
            .iter()
            .filter(|b| is_single_line_json(black_box(b)))
            .count()
    });
    let flood: Vec<Vec<u8>> = (1000..9000u32)
        .map(|k| {
            let head = format!("{{\"seq\":{k},\"pad\":\"");
            let pad = "x".repeat(200 - head.len() - 2);
            format!("{head}{pad}\"}}").into_bytes()
        })
        .collect();
    let (flood_time, _) = measure(min, || {
        flood
            .iter()
            .filter(|m| is_single_line_json(black_box(m)))
            .count()
    });

    println!(
        "{:<28} {:>10} {:>10} {:>12}",
        "function", "ns/msg", "MB/s", "Mmsg/s"
    );
    let base = rows[0].1.0;
    for (name, (per_sweep, sink)) in &rows {
        black_box(sink);
        let secs = per_sweep.as_secs_f64();
        println!(
            "{:<28} {:>10.1} {:>10.0} {:>12.2}   ({:.2}x validator time)",
            name,
            secs * 1e9 / msgs as f64,
            bytes as f64 / secs / 1e6,
            msgs as f64 / secs / 1e6,
            secs / base.as_secs_f64(),
        );
    }
    for (what, set, bytes, time) in [
        (
            "book objects (64 KB, 700 KB)",
            &books,
            book_bytes,
            book_time,
        ),
        (
            "200-byte flood messages",
            &flood,
            flood.len() * 200,
            flood_time,
        ),
    ] {
        let secs = time.as_secs_f64();
        println!(
            "is_single_line_json on {what}: {:.0} ns/msg, {:.0} MB/s",
            secs * 1e9 / set.len() as f64,
            bytes as f64 / secs / 1e6
        );
    }
}

/// Eight ~64 KB book snapshots and one of ~700 KB, as the bench's large-frame scenario builds
/// them: `{"type":"snapshot","seq":N,"bids":[..],"asks":[..]}` holding the corpus's own price
/// levels (arrays of 2 to 4 numbers or numeric strings), dense in tokens.
fn book_objects(lines: &[Vec<u8>]) -> Vec<Vec<u8>> {
    fn levels(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Array(a)
                if (2..=4).contains(&a.len())
                    && a.iter().all(|x| x.is_string() || x.is_number()) =>
            {
                out.push(v.to_string());
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| levels(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| levels(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    for l in lines {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(l) {
            levels(&v, &mut all);
        }
    }
    assert!(!all.is_empty(), "no price level in the corpus");
    let mut next = all.iter().cycle();
    [65_536; 8]
        .into_iter()
        .chain([700 * 1024])
        .enumerate()
        .map(|(seq, size)| {
            let mut sides = [Vec::new(), Vec::new()];
            let mut total = 64;
            for side in (0..2).cycle() {
                if total >= size {
                    break;
                }
                let level = next.next().expect("cycle").as_bytes();
                total += level.len() + 1;
                sides[side].push(level);
            }
            let mut out = format!("{{\"type\":\"snapshot\",\"seq\":{seq},\"bids\":[").into_bytes();
            out.extend_from_slice(&sides[0].join(&b',')[..]);
            out.extend_from_slice(b"],\"asks\":[");
            out.extend_from_slice(&sides[1].join(&b',')[..]);
            out.extend_from_slice(b"]}");
            out
        })
        .collect()
}
