//! wsrec's own record lines as `cat`/`verify` read them: any line parses or fails cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wsrec::read::looks_like_envelope(data);
    let _ = wsrec::read::quick_ts(data);
    if let Ok(entry) = wsrec::read::Entry::parse(data) {
        let _ = (entry.ts(), entry.stream(), entry.conn());
        if let wsrec::read::Entry::Message(m) = &entry {
            let _ = m.payload.bytes();
            let _ = m.payload.len();
        }
    }
});
