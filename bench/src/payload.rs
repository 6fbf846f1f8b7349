//! What the flood server sends: message `k` of a workload is a pure function of `k`, so the
//! checker can regenerate what it expects instead of keeping a copy of everything sent.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result, ensure};

/// Bytes of a small message around its padding: `{"seq":` + `,"pad":"` + `"}`.
const SMALL_OVERHEAD: usize = 7 + 8 + 2;
/// Smallest small-message size that fits any `u64` sequence number.
pub const SMALL_MIN_SIZE: usize = SMALL_OVERHEAD + 20;

/// A source of messages, indexed from 0.
#[derive(Debug, Clone)]
pub enum Payload {
    /// `{"seq":<k>,"pad":"xxx…"}` padded to exactly `size` bytes.
    Small {
        /// Exact length of every message.
        size: usize,
    },
    /// Real exchange frames, message `k` being `lines[k % lines.len()]`.
    Corpus {
        /// One frame per entry, without the line feed.
        lines: Vec<Vec<u8>>,
        /// Sum of `lines` lengths.
        cycle_bytes: u64,
    },
}

impl Payload {
    /// Small JSON messages of exactly `size` bytes.
    ///
    /// # Errors
    /// `size` below [`SMALL_MIN_SIZE`].
    pub fn small(size: usize) -> Result<Self> {
        ensure!(
            size >= SMALL_MIN_SIZE,
            "small messages need at least {SMALL_MIN_SIZE} bytes, got {size}"
        );
        Ok(Self::Small { size })
    }

    /// Every non-empty line of every `*.jsonl` file in `dir`, files in name order.
    ///
    /// # Errors
    /// The directory cannot be read, or holds no line at all.
    pub fn load_corpus(dir: &Path) -> Result<Self> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading corpus directory {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("listing {}", dir.display()))?;
        files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
        files.sort();
        let mut lines = Vec::new();
        for file in &files {
            let data =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            lines.extend(
                data.split(|&b| b == b'\n')
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
        ensure!(
            !lines.is_empty(),
            "no *.jsonl lines found in {}",
            dir.display()
        );
        let cycle_bytes = lines.iter().map(|l| l.len() as u64).sum();
        Ok(Self::Corpus { lines, cycle_bytes })
    }

    /// The large-frame mix of the speed issue: the corpus' frames, with a snapshot-like object of
    /// about 64 KB in place of every [`LARGE_64K_EVERY`]th frame and one of about 700 KB in place
    /// of every [`LARGE_700K_EVERY`]th (about 1 KB per message on average). The big objects are
    /// price levels taken from the corpus' book frames, put together as one book
    /// (`{"type":"snapshot","seq":N,"bids":[…],"asks":[…]}`), as a venue's full-depth snapshot
    /// would be.
    ///
    /// # Errors
    /// The corpus cannot be read, or holds no price level.
    pub fn load_large(dir: &Path) -> Result<Self> {
        let Self::Corpus { lines: frames, .. } = Self::load_corpus(dir)? else {
            unreachable!("load_corpus returns a corpus")
        };
        let mut levels = Vec::new();
        for frame in &frames {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(frame) {
                collect_levels(&v, &mut levels);
            }
        }
        ensure!(
            !levels.is_empty(),
            "no price level in the corpus of {}",
            dir.display()
        );
        let mut lines = Vec::with_capacity(frames.len());
        let (mut next_level, mut seq) = (0usize, 0u64);
        for (i, frame) in frames
            .iter()
            .cycle()
            .take(frames.len().max(LARGE_700K_EVERY))
            .enumerate()
        {
            let size = if i % LARGE_700K_EVERY == LARGE_700K_EVERY - 1 {
                700 * 1024
            } else if i % LARGE_64K_EVERY == LARGE_64K_EVERY - 1 {
                64 * 1024
            } else {
                lines.push(frame.clone());
                continue;
            };
            seq += 1;
            lines.push(book_object(seq, size, &levels, &mut next_level));
        }
        let cycle_bytes = lines.iter().map(|l| l.len() as u64).sum();
        Ok(Self::Corpus { lines, cycle_bytes })
    }

    /// Messages after which the sequence repeats, if it does.
    pub fn period(&self) -> Option<u64> {
        match self {
            Self::Small { .. } => None,
            Self::Corpus { lines, .. } => Some(lines.len() as u64),
        }
    }

    /// Length of message `k`.
    pub fn message_len(&self, k: u64) -> usize {
        match self {
            Self::Small { size } => *size,
            Self::Corpus { lines, .. } => lines[(k % lines.len() as u64) as usize].len(),
        }
    }

    /// Total bytes of messages `0..n`.
    pub fn total_bytes(&self, n: u64) -> u64 {
        match self {
            Self::Small { size } => n * *size as u64,
            Self::Corpus { lines, cycle_bytes } => {
                let len = lines.len() as u64;
                let rest: u64 = lines[..(n % len) as usize]
                    .iter()
                    .map(|l| l.len() as u64)
                    .sum();
                (n / len) * cycle_bytes + rest
            }
        }
    }

    /// Appends message `k` to `out`.
    pub fn write_message(&self, k: u64, out: &mut Vec<u8>) {
        match self {
            Self::Small { size } => {
                let start = out.len();
                out.extend_from_slice(b"{\"seq\":");
                // Writing to a Vec cannot fail.
                write!(out, "{k}").expect("write to Vec");
                out.extend_from_slice(b",\"pad\":\"");
                let pad = size - (out.len() - start) - 2;
                out.resize(out.len() + pad, b'x');
                out.extend_from_slice(b"\"}");
                debug_assert_eq!(out.len() - start, *size);
            }
            Self::Corpus { lines, .. } => {
                out.extend_from_slice(&lines[(k % lines.len() as u64) as usize]);
            }
        }
    }

    /// Whether `msg` is message `k`; `scratch` is reused to build the expected bytes.
    pub fn matches(&self, k: u64, msg: &[u8], scratch: &mut Vec<u8>) -> bool {
        match self {
            Self::Corpus { lines, .. } => lines[(k % lines.len() as u64) as usize] == msg,
            Self::Small { .. } => {
                scratch.clear();
                self.write_message(k, scratch);
                scratch.as_slice() == msg
            }
        }
    }

    /// Sequence number carried by a small message, for loss diagnostics; `None` for corpus frames.
    pub fn seq_of(&self, msg: &[u8]) -> Option<u64> {
        match self {
            Self::Small { .. } => {
                let rest = msg.strip_prefix(b"{\"seq\":")?;
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
            }
            Self::Corpus { .. } => None,
        }
    }
}

/// In the large-frame mix, every this many frames is a ~64 KB book object.
pub const LARGE_64K_EVERY: usize = 256;
/// In the large-frame mix, every this many frames is a ~700 KB book object.
pub const LARGE_700K_EVERY: usize = 2048;

/// Appends the compact text of every price level in `v` (an array of two to four strings or
/// numbers, the first a price, found anywhere in the frame) to `out`.
fn collect_levels(v: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::Array(items)
            if (2..=4).contains(&items.len())
                && items.iter().all(|x| x.is_string() || x.is_number())
                && items[0].as_str().is_some_and(|p| p.parse::<f64>().is_ok()) =>
        {
            out.push(v.to_string());
        }
        Value::Array(items) => items.iter().for_each(|x| collect_levels(x, out)),
        Value::Object(map) => map.values().for_each(|x| collect_levels(x, out)),
        _ => {}
    }
}

/// A book object of at least `size` bytes: `{"type":"snapshot","seq":N,"bids":[…],"asks":[…]}`
/// with levels taken in turn from `levels`, starting at `*next`.
fn book_object(seq: u64, size: usize, levels: &[String], next: &mut usize) -> Vec<u8> {
    let mut sides = [Vec::with_capacity(size / 2), Vec::with_capacity(size / 2)];
    let mut total = 64;
    let mut side = 0;
    while total < size {
        let level = levels[*next % levels.len()].as_bytes();
        *next += 1;
        let buf = &mut sides[side];
        if !buf.is_empty() {
            buf.push(b',');
        }
        buf.extend_from_slice(level);
        total += level.len() + 1;
        side ^= 1;
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(format!("{{\"type\":\"snapshot\",\"seq\":{seq},\"bids\":[").as_bytes());
    out.extend_from_slice(&sides[0]);
    out.extend_from_slice(b"],\"asks\":[");
    out.extend_from_slice(&sides[1]);
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_have_exact_size_and_seq() {
        let p = Payload::small(200).unwrap();
        for k in [0u64, 9, 10, 123_456, u64::MAX] {
            let mut out = b"prefix".to_vec();
            p.write_message(k, &mut out);
            let msg = &out[6..];
            assert_eq!(msg.len(), 200);
            assert_eq!(p.seq_of(msg), Some(k));
            let v: serde_json::Value = serde_json::from_slice(msg).unwrap();
            assert_eq!(v["seq"].as_u64(), Some(k));
        }
        assert_eq!(p.total_bytes(1000), 200_000);
        assert!(Payload::small(SMALL_MIN_SIZE - 1).is_err());
    }

    #[test]
    fn corpus_loads_and_cycles() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus");
        let p = Payload::load_corpus(&dir).unwrap();
        let len = p.period().unwrap();
        assert!(len > 1000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        p.write_message(3, &mut a);
        p.write_message(3 + 2 * len, &mut b);
        assert_eq!(a, b);
        assert!(!a.contains(&b'\n'));
        let n = 2 * len + 17;
        let sum: u64 = (0..n).map(|k| p.message_len(k) as u64).sum();
        assert_eq!(p.total_bytes(n), sum);
    }

    #[test]
    fn large_mix_averages_about_a_kilobyte_with_big_books() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus");
        let p = Payload::load_large(&dir).unwrap();
        let len = p.period().unwrap();
        let avg = p.total_bytes(len) as f64 / len as f64;
        assert!((800.0..1300.0).contains(&avg), "average {avg}");
        let big = p.message_len(LARGE_700K_EVERY as u64 - 1);
        assert!((690 * 1024..720 * 1024).contains(&big), "{big}");
        let mid = p.message_len(LARGE_64K_EVERY as u64 - 1);
        assert!((63 * 1024..66 * 1024).contains(&mid), "{mid}");
        let mut m = Vec::new();
        p.write_message(LARGE_700K_EVERY as u64 - 1, &mut m);
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert!(v["bids"].as_array().unwrap().len() > 1000);
        assert!(!m.contains(&b'\n'));
    }
}
