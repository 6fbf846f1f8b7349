//! What a server or proxy answers to the upgrade or CONNECT request: the response head
//! parser, the upgrade checks, extension negotiation and `Retry-After`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsrec::net::transport::{
    DeflateOffer, ParsedHead, check_upgrade, negotiate_extensions, parse_head, parse_retry_after,
};

fuzz_target!(|data: &[u8]| {
    let offer = DeflateOffer {
        server_max_window_bits: Some(10),
        server_no_context_takeover: true,
    };
    if let Ok(Some(ParsedHead { head, len })) = parse_head(data) {
        assert!(len <= data.len());
        let _ =
            check_upgrade(&head, "dGhlIHNhbXBsZSBub25jZQ==", None, None).map_err(|e| e.to_string());
        let _ = check_upgrade(
            &head,
            "dGhlIHNhbXBsZSBub25jZQ==",
            Some(&offer),
            Some("json, chat"),
        )
        .map_err(|e| e.to_string());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(Some(canonical)) = negotiate_extensions(Some(&offer), text) {
            // The canonical form (what the `connected` event records) must read back the same.
            assert_eq!(
                negotiate_extensions(Some(&offer), &canonical),
                Ok(Some(canonical.clone()))
            );
        }
        let _ = parse_retry_after(text);
        let _ = wsrec::net::transport::HttpProxy::parse(text);
        let _ = wsrec::net::transport::no_proxy_matches(text, "stream.example.com", 443);
    }
});
