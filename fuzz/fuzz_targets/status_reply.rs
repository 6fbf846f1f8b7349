//! The status protocol's reply as `wsrec status` reads it from the socket (which anything
//! could be listening on), and the table it renders from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshot) = serde_json::from_slice::<wsrec::observe::stats::Snapshot>(data) {
        let now = u64::from_le_bytes(
            data.get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        );
        let _ = wsrec::observe::status::render_table(&snapshot, now);
    }
});
