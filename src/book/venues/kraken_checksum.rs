//! Kraken's order book checksum, the same in spot v1 and v2
//! (<https://docs.kraken.com/api/docs/guides/spot-ws-book-v2>, "Checksum"; v1's guide alike):
//! the CRC32 of the top 10 asks then the top 10 bids, each price then size written as digits
//! only (decimal point removed, leading zeros stripped), over the venue's own number text.

use crate::book::level::Book;

/// Levels in Kraken's checksum, per side.
const CHECKSUM_LEVELS: usize = 10;

/// Kraken's checksum (v1 and v2) of `book`: top 10 asks then top 10 bids, price then size,
/// digits only, leading zeros stripped; with `precision` (price, size decimals) each
/// fraction is padded with zeros to it.
pub(super) fn checksum(book: &Book, precision: Option<(u32, u32)>) -> u32 {
    // The digits of all 40 numbers, hashed at once (one small hash per number costs more).
    let mut h = Vec::with_capacity(1024);
    let (pp, qp) = precision.map_or((None, None), |(p, q)| (Some(p), Some(q)));
    for l in book
        .asks()
        .take(CHECKSUM_LEVELS)
        .chain(book.bids().take(CHECKSUM_LEVELS))
    {
        digits(&mut h, l.price.as_str(), pp);
        digits(&mut h, l.size.as_str(), qp);
    }
    crc32fast::hash(&h)
}

/// Appends to `h` the digits of decimal `text` without its point and leading zeros, its fraction
/// padded with zeros to `decimals` (and an exponent expanded).
fn digits(h: &mut Vec<u8>, text: &str, decimals: Option<u32>) {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let mut buf = [0u8; 128];
    let mut len = 0;
    let mut fraction = 0i32;
    let mut seen_point = false;
    for &b in mantissa.as_bytes() {
        match b {
            b'.' => seen_point = true,
            b'0'..=b'9' => {
                if seen_point {
                    fraction += 1;
                }
                if (len > 0 || b != b'0') && len < buf.len() {
                    buf[len] = b;
                    len += 1;
                }
            }
            _ => {}
        }
    }
    if len == 0 {
        return;
    }
    // Decimals the text has; the zeros that make it `decimals` (or an integer) long.
    let scale = fraction - exponent;
    let target = scale.max(0).max(decimals.map_or(i32::MIN, |d| d as i32));
    for _ in 0..(target - scale) {
        if len < buf.len() {
            buf[len] = b'0';
            len += 1;
        }
    }
    h.extend_from_slice(&buf[..len]);
}
