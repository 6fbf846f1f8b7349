//! The frame-header check on the bytes a server sends: however the stream is cut into reads,
//! the verdict and the good prefix are the same as for the stream in one piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsrec::net::transport::FrameScan;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let whole = FrameScan::default().scan(stream);
    let step = usize::from(cut).max(1);
    let mut scan = FrameScan::default();
    let mut pieces = Ok(());
    for (i, chunk) in stream.chunks(step).enumerate() {
        if let Err(e) = scan.scan(chunk) {
            pieces = Err((i * step + e.valid, e.reason));
            break;
        }
    }
    match (whole, pieces) {
        (Ok(()), Ok(())) => {}
        (Err(w), Err((at, reason))) => {
            assert_eq!(w.reason, reason);
            // In pieces, a header split across reads may already be partly handed over.
            assert!(
                at >= w.valid && at < w.valid + 14,
                "whole {} pieces {at}",
                w.valid
            );
        }
        (w, p) => panic!("whole {w:?} vs pieces {p:?}"),
    }
});
