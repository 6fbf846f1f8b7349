//! `wsrec export` speed and memory: a recording of real exchange frames (the corpus in
//! `tests/fixtures/corpus/`, cycled) in envelope lines, written to a temporary directory and
//! exported to Parquet with the library's `export`, as `wsrec export` does.
//!
//! ```sh
//! cargo bench --bench export            # 1,000,000 rows
//! cargo bench --bench export -- 200000  # another row count
//! ```

use std::io::{BufWriter, Write};
use std::time::Instant;

use wsrec::tools::Progress;
use wsrec::tools::export::{ExportOptions, export};

/// Peak resident memory of this process so far, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; a bare number is the row count.
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut names: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    let frames: Vec<String> = names
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("data/corpus/2026-11-24");
    std::fs::create_dir_all(&day).unwrap();
    let input = day.join("corpus-20261124T100000Z.jsonl");
    {
        let mut w = BufWriter::new(std::fs::File::create(&input).unwrap());
        for seq in 0..rows {
            let ts = 1_795_514_400_000_000_000u64 + seq * 3_000_000;
            let f = &frames[seq as usize % frames.len()];
            writeln!(
                w,
                r#"{{"ts":{ts},"stream":"corpus","conn":1,"seq":{seq},"msg":{f}}}"#
            )
            .unwrap();
        }
        w.flush().unwrap();
    }
    let in_bytes = std::fs::metadata(&input).unwrap().len();
    let rss_before = peak_rss_kib();
    let files = wsrec::read::discover(&[dir.path().join("data")]).unwrap();
    let out_path = dir.path().join("out.parquet");
    let out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&out_path).unwrap());
    let t = Instant::now();
    let (out, summary) = export(
        files,
        &ExportOptions::default(),
        out,
        &mut std::io::stderr(),
        &mut Progress::new(0, false),
    )
    .unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let out_bytes = std::fs::metadata(&out_path).unwrap().len();
    assert_eq!(summary.rows, rows);
    println!(
        "input: {rows} envelope lines of the corpus's {} frames, {:.1} MB",
        frames.len(),
        in_bytes as f64 / 1e6
    );
    println!(
        "export: {:.2} s, {:.2} M rows/s, {:.0} MB/s of input; {} row groups, {:.1} MB out ({:.1}x smaller)",
        secs,
        rows as f64 / secs / 1e6,
        in_bytes as f64 / secs / 1e6,
        summary.row_groups,
        out_bytes as f64 / 1e6,
        in_bytes as f64 / out_bytes as f64
    );
    println!(
        "peak RSS: {:.1} MiB (before the export: {:.1} MiB)",
        peak_rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}
