//! The frame reader on the bytes a server sends: however the stream is cut into reads, it
//! yields the same messages, control frames and fault as for the stream in one piece, never
//! panics, and never holds a message over its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsrec::net::transport::frame::{Got, Reader, Step};

/// Limit of the fuzzed readers: small, so that size faults are reached.
const MAX: usize = 4096;

/// Everything `stream` yields when it arrives `step` bytes at a time, as text lines.
fn run(stream: &[u8], deflate: bool, step: usize) -> Vec<String> {
    let mut reader = Reader::new(MAX, deflate);
    let mut seen = Vec::new();
    let (mut start, mut have) = (0, 0);
    loop {
        match reader.step(&stream[start..have]) {
            Ok(Step::Took(used, got)) => {
                let base = start;
                start += used;
                seen.push(match got {
                    Got::InPlace(data, r) => {
                        format!("{data:?} {:?}", &stream[base + r.start..base + r.end])
                    }
                    Got::Assembled(data) => {
                        assert!(reader.message().len() <= MAX);
                        format!("{data:?} {:?}", reader.message())
                    }
                    other => format!("{other:?}"),
                });
            }
            Ok(Step::More(need)) => {
                assert!(need > have - start);
                if have == stream.len() {
                    return seen;
                }
                have = (have + step).min(stream.len());
            }
            Err(fault) => {
                seen.push(format!("{fault:?} (close {})", fault.close_code()));
                return seen;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let deflate = flags & 1 != 0;
    let step = usize::from(flags >> 1).max(1);
    assert_eq!(run(stream, deflate, stream.len()), run(stream, deflate, step));
});
