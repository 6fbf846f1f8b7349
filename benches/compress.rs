//! Compression ratio and speed of the codecs wsrec offers, on the real exchange frames in
//! `tests/fixtures/corpus/` recorded in wsrec's envelope format, and the rate the compressor's
//! whole job (compress, then check) keeps up with, on those frames and on the recording bench's
//! 200-byte messages.
//!
//! ```sh
//! cargo bench --bench compress
//! ```

use std::io::Write;
use std::time::Instant;

const RUNS: usize = 10;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut frames = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    for p in names {
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            frames.push(line.to_owned());
        }
    }
    // The corpus once, as a recording in envelope lines (cycling it would flatter the ratio:
    // a long-window codec would find the repeats). Speed is timed over repeated runs.
    let mut data = Vec::new();
    let mut seq = 0u64;
    {
        for f in &frames {
            let ts = 1_795_517_990_000_000_000u64 + seq * 137_000;
            writeln!(
                data,
                r#"{{"ts":{ts},"stream":"corpus","conn":1,"seq":{seq},"msg":{f}}}"#
            )
            .unwrap();
            seq += 1;
        }
    }
    let mb = data.len() as f64 / 1e6;
    println!(
        "input: {} envelope lines, {:.1} MB (the corpus's {} frames), each codec run {RUNS} times",
        seq,
        mb,
        frames.len()
    );
    println!(
        "{:<10} {:>8} {:>12} {:>14}",
        "codec", "ratio", "compress MB/s", "decompress MB/s"
    );
    for level in [1, 3, 9] {
        let t = Instant::now();
        let mut out = Vec::new();
        for _ in 0..RUNS {
            out = zstd::bulk::compress(&data, level).unwrap();
        }
        let c = t.elapsed().as_secs_f64() / RUNS as f64;
        let t = Instant::now();
        let mut back = Vec::new();
        for _ in 0..RUNS {
            back = zstd::bulk::decompress(&out, data.len()).unwrap();
        }
        let d = t.elapsed().as_secs_f64() / RUNS as f64;
        assert_eq!(back.len(), data.len());
        println!(
            "{:<10} {:>8.1} {:>12.0} {:>14.0}",
            format!("zstd -{level}"),
            data.len() as f64 / out.len() as f64,
            mb / c,
            mb / d
        );
    }
    for level in [1, 6] {
        let t = Instant::now();
        let mut out = Vec::new();
        for _ in 0..RUNS {
            let mut enc =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            enc.write_all(&data).unwrap();
            out = enc.finish().unwrap();
        }
        let c = t.elapsed().as_secs_f64() / RUNS as f64;
        let t = Instant::now();
        let mut back = Vec::new();
        for _ in 0..RUNS {
            back.clear();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&out[..]), &mut back)
                .unwrap();
        }
        let d = t.elapsed().as_secs_f64() / RUNS as f64;
        assert_eq!(back.len(), data.len());
        println!(
            "{:<10} {:>8.1} {:>12.0} {:>14.0}",
            format!("gzip -{level}"),
            data.len() as f64 / out.len() as f64,
            mb / c,
            mb / d
        );
    }

    // What the recorder's compressor does per file, from memory (no disk): zstd -1 with a
    // 128 KiB window in 64 KiB writes, every chunk's lines counted and hashed; then the
    // output decompressed, counted and hashed again, and the two compared. Once with the
    // XXH3 the compressor uses, once with std's SipHash (what it used before).
    println!("the compressor's whole job (zstd -1, checked by decompressing):");
    let lines = seq as f64;
    let xxh3 = pipeline(&data, twox_hash::XxHash3_64::default);
    let sip = pipeline(&data, std::hash::DefaultHasher::default);
    for (name, secs) in [("XXH3 (now)", xxh3), ("SipHash (before)", sip)] {
        println!(
            "  check hashed with {name:<16} {:>6.0} MB/s of envelope lines, {:>5.2} M lines/s",
            mb / secs,
            lines / secs / 1e6
        );
    }

    // The same job on the bench's 200-byte flood messages as envelope lines (scenarios 1 and
    // 7), which compress far better than real frames: the rate the compressor keeps up with
    // there, next to the recording figures in the README.
    let mut flood = Vec::new();
    let n = 200_000u64;
    for seq in 0..n {
        let ts = 1_795_517_990_000_000_000u64 + seq * 20_000 + seq % 7 * 311;
        let head = format!("{{\"seq\":{seq},\"pad\":\"");
        let pad = "x".repeat(200 - head.len() - 2);
        writeln!(
            flood,
            r#"{{"ts":{ts},"stream":"bench","conn":1,"seq":{seq},"msg":{head}{pad}"}}}}"#
        )
        .unwrap();
    }
    let secs = pipeline(&flood, twox_hash::XxHash3_64::default);
    println!(
        "  on 200-byte messages as envelope lines ({:.0} MB): {:>6.0} MB/s, {:>5.2} M lines/s",
        flood.len() as f64 / 1e6,
        flood.len() as f64 / 1e6 / secs,
        n as f64 / secs / 1e6
    );
}

/// Seconds per run of compress + check over `data`, hashing with the hasher `new` makes.
fn pipeline<H: std::hash::Hasher>(data: &[u8], new: impl Fn() -> H) -> f64 {
    use std::io::Read;
    const CHUNK: usize = 64 * 1024;
    let digest = |hasher: &mut H, lines: &mut usize, chunk: &[u8]| {
        *lines += memchr::memchr_iter(b'\n', chunk).count();
        hasher.write(chunk);
    };
    let t = Instant::now();
    for _ in 0..RUNS {
        let (mut h, mut n) = (new(), 0);
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.window_log(17).unwrap();
        for chunk in data.chunks(CHUNK) {
            enc.write_all(chunk).unwrap();
            digest(&mut h, &mut n, chunk);
        }
        let out = enc.finish().unwrap();
        let (mut back_h, mut back_n) = (new(), 0);
        let mut dec = zstd::stream::read::Decoder::new(&out[..]).unwrap();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let got = dec.read(&mut buf).unwrap();
            if got == 0 {
                break;
            }
            digest(&mut back_h, &mut back_n, &buf[..got]);
        }
        assert_eq!((h.finish(), n), (back_h.finish(), back_n));
    }
    t.elapsed().as_secs_f64() / RUNS as f64
}
