//! The hot-path JSON validator against serde_json: a message is embedded verbatim as `msg`
//! only if it is one JSON text without a raw line break, so the two must agree (serde_json's
//! nesting limit aside); and the string fallback must round-trip any UTF-8 text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ours = wsrec::json::is_single_line_json(data);
    let no_breaks = !data.contains(&b'\n') && !data.contains(&b'\r');
    match serde_json::from_slice::<serde::de::IgnoredAny>(data) {
        Ok(_) => assert_eq!(
            ours, no_breaks,
            "serde_json accepts {data:?}; line breaks: {}",
            !no_breaks
        ),
        Err(e) => {
            let depth = e.to_string().contains("recursion limit");
            assert!(
                !ours || depth,
                "validator accepts what serde_json rejects ({e}): {data:?}"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        wsrec::json::write_json_string(data, &mut out);
        assert!(
            !out.contains(&b'\n') && !out.contains(&b'\r'),
            "line break in {out:?}"
        );
        let back: String = serde_json::from_slice(&out).expect("fallback is a JSON string");
        assert_eq!(back, text);
    }
});
