//! Config files: TOML and the Go streamer's JSON. Parsing and validation must turn any input
//! into a config or an error, never a panic, and an error must never echo a secret.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let venues = wsrec::net::venue::Catalog;
    // Parsed, venue presets applied (they may refuse a stream), validated: what `-c` loads.
    if let Ok(config) = wsrec::Config::parse_toml(text)
        .and_then(wsrec::net::venue::resolve)
    {
        let _ = config.validate(&venues);
        let _ = format!("{config:?}");
        for s in &config.streams {
            let _ = s.masked_url();
            // What a connection would dial with (reads no environment: `proxy = "env"` only
            // reads variables that the fuzzer's environment does not set).
            let _ = wsrec::net::transport::ConnectSpec::from_config(s);
        }
    }
    if let Ok(go) = serde_json::from_str::<wsrec::config::GoConfig>(text) {
        let _ = go.into_config().validate(&venues);
    }
});
