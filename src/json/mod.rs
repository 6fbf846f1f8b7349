//! Hot-path JSON helpers for the recorder's output lines.
//!
//! Every received WebSocket text message becomes one JSONL line
//! `{"ts":..,"msg":<message>}`. When the message is itself exactly one valid
//! JSON text without a raw newline, its bytes are embedded verbatim as the
//! `msg` value; otherwise the message is stored as an escaped JSON string.
//! This module owns both halves of that decision:
//!
//! * [`is_single_line_json`] — a strict, allocation-free RFC 8259 validator
//!   that also rejects any `\n`/`\r` byte, so an embedded message can never
//!   break the one-record-per-line framing.
//! * [`write_json_string`] — the fallback that writes arbitrary UTF-8 text as a
//!   JSON string literal that is safe for line-oriented (and JavaScript)
//!   readers.
//!
//! Why a hand-written validator: the check runs for every message, and the
//! whole pipeline targets more than 2 M messages/s. The obvious alternative,
//! `serde_json`, has no "is this one JSON text" call: building a `Value`
//! allocates per node, and even deserializing into `IgnoredAny` is several
//! times slower than this validator (figures in bench/README.md) and still
//! needs a second pass for `\n`/`\r`, which it accepts as whitespace.
//! This validator does both checks in one pass (run `benches/json_validate.rs`
//! for current figures). On x86-64 it works 64 bytes at a time (`blocks`: SIMD
//! byte classes turned into bit masks, the grammar checked on the masks too, so
//! string contents are never looked at byte by byte); elsewhere, and as the
//! reference the tests compare it with, a byte-at-a-time validator scans string
//! contents eight bytes at a time (SWAR on `u64`). Both walk digits in tight
//! loops and track nesting with an explicit bit stack (inline for the first 256
//! levels, heap beyond), so they never recurse and never allocate for ordinary
//! messages. That is what keeps embedding messages verbatim cheap.

/// Nesting levels tracked without touching the heap (64 levels per word).
const INLINE_WORDS: usize = 4;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Byte at `i`, or 0 past the end. A NUL byte is never valid JSON anywhere, so
/// the sentinel makes every "expect X" check fail cleanly at end of input.
#[inline(always)]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Loads 8 bytes at `i` as a little-endian word (caller ensures `i + 8 <= len`).
#[inline(always)]
fn load8(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// High bit set in each byte of `x` that equals `byte`. Only the lowest flagged
/// byte is guaranteed exact (borrows may flag bytes above a true match), which
/// is all the scanners need since they use `trailing_zeros`.
#[inline(always)]
fn eq_mask(x: u64, byte: u8) -> u64 {
    let y = x ^ (ONES * u64::from(byte));
    y.wrapping_sub(ONES) & !y & HIGHS
}

/// High bit set in each byte of `x` below 0x20 (same exactness caveat).
#[inline(always)]
fn ctl_mask(x: u64) -> u64 {
    x.wrapping_sub(ONES * 0x20) & !x & HIGHS
}

/// Innermost context: the top level, an array, or an object.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Arr,
    Obj,
}

/// Explicit nesting stack: one bit per open container (1 = object, 0 = array).
struct Nest {
    depth: usize,
    /// Kind of the innermost open container (cached top of the stack).
    top: Ctx,
    inline: [u64; INLINE_WORDS],
    spill: Vec<u64>,
}

impl Nest {
    #[inline(always)]
    fn new() -> Self {
        Nest {
            depth: 0,
            top: Ctx::Top,
            inline: [0; INLINE_WORDS],
            spill: Vec::new(),
        }
    }

    #[inline(always)]
    fn push(&mut self, top: Ctx) {
        let d = self.depth;
        let (w, bit) = (d / 64, 1u64 << (d % 64));
        let word = if w < INLINE_WORDS {
            &mut self.inline[w]
        } else {
            let k = w - INLINE_WORDS;
            if k == self.spill.len() {
                self.spill.push(0);
            }
            &mut self.spill[k]
        };
        if top == Ctx::Obj {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        self.depth = d + 1;
        self.top = top;
    }

    /// Pops the innermost container (the caller knows one is open).
    #[inline(always)]
    fn pop(&mut self) {
        self.depth -= 1;
        self.top = match self.depth {
            0 => Ctx::Top,
            n => {
                let d = n - 1;
                let w = d / 64;
                let word = if w < INLINE_WORDS {
                    self.inline[w]
                } else {
                    self.spill[w - INLINE_WORDS]
                };
                if word >> (d % 64) & 1 == 1 {
                    Ctx::Obj
                } else {
                    Ctx::Arr
                }
            }
        };
    }
}

/// Skips spaces and tabs (the only whitespace a single-line text may hold).
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(at(b, i), b' ' | b'\t') {
        i += 1;
    }
    i
}

/// Scans string contents starting just after the opening quote; returns the
/// index just past the closing quote.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn scan_string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        while i + 8 <= b.len() {
            let w = load8(b, i);
            let quote = eq_mask(w, b'"');
            let other = eq_mask(w, b'\\') | ctl_mask(w);
            // Bits up to and including the first quote (all bits if none).
            let upto = quote ^ quote.wrapping_sub(1);
            if other & upto == 0 {
                if quote != 0 {
                    // The lowest flagged byte is exact in each mask.
                    return Some(i + (quote.trailing_zeros() / 8) as usize + 1);
                }
                i += 8;
                continue;
            }
            i += (other.trailing_zeros() / 8) as usize;
            break;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i = scan_escape(b, i + 1)?,
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// Validates the escape whose letter is at `i`; returns the index after it.
#[cold]
fn scan_escape(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => {
            let hex = b.get(i + 1..i + 5)?;
            // Lone surrogates are allowed: RFC 8259's grammar accepts them.
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 5)
        }
        _ => None,
    }
}

/// The index of the first byte at or after `i` that is not an ASCII digit (or the end).
/// Eight bytes at a time while eight remain: a digit loop that stops at an unpredictable
/// length cost about 10 ns per number on real frames (13-digit timestamps), the SWAR
/// check below one step per eight digits (validator 205 -> 196 ns per corpus message).
#[inline(always)]
fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let x = load8(b, i);
        // The top bit of each byte below '0' (0x30) or above '9' (0x39): with the top bit
        // set first, subtracting 0x30 clears it only below 0x30 and borrows from no other
        // byte; with it cleared first, adding 0x46 sets it from 0x3A up and carries into
        // no other byte; bytes from 0x80 up keep their own top bit.
        let below = !((x | HIGHS).wrapping_sub(ONES * 0x30)) & HIGHS;
        let above = ((x & !HIGHS) + ONES * 0x46) | x;
        let not_digits = (below | above) & HIGHS;
        if not_digits != 0 {
            return i + (not_digits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while at(b, i).is_ascii_digit() {
        i += 1;
    }
    i
}

/// Scans a number per the exact RFC 8259 grammar starting at `i`; returns the
/// index after it. What may follow is checked by the caller.
#[inline(always)]
fn scan_number(b: &[u8], mut i: usize) -> Option<usize> {
    if at(b, i) == b'-' {
        i += 1;
    }
    match at(b, i) {
        b'0' => i += 1,
        b'1'..=b'9' => i = skip_digits(b, i + 1),
        _ => return None,
    }
    if at(b, i) == b'.' {
        i += 1;
        if !at(b, i).is_ascii_digit() {
            return None;
        }
        i = skip_digits(b, i + 1);
    }
    if at(b, i) | 0x20 == b'e' {
        i += 1;
        if matches!(at(b, i), b'+' | b'-') {
            i += 1;
        }
        if !at(b, i).is_ascii_digit() {
            return None;
        }
        i = skip_digits(b, i + 1);
    }
    Some(i)
}

/// Scans an object member's `"key" :` plus the whitespace after the colon;
/// returns the index where the member's value starts.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn scan_key(b: &[u8], i: usize) -> Option<usize> {
    if at(b, i) != b'"' {
        return None;
    }
    let i = skip_ws(b, scan_string(b, i + 1)?);
    if at(b, i) != b':' {
        return None;
    }
    Some(skip_ws(b, i + 1))
}

#[inline(always)]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// The byte-at-a-time validator: the reference, and the one used off x86-64.
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn validate_scalar(b: &[u8]) -> Option<()> {
    let mut nest = Nest::new();
    let mut i = skip_ws(b, 0);
    // Each turn of 'value parses one value starting at `i` (no leading
    // whitespace), then the inner loop consumes closers, separators and
    // whitespace until the next value starts or the document ends.
    'value: loop {
        match at(b, i) {
            b'"' => i = scan_string(b, i + 1)?,
            b'-' | b'0'..=b'9' => i = scan_number(b, i)?,
            b'{' => {
                i = skip_ws(b, i + 1);
                if at(b, i) == b'}' {
                    i += 1;
                } else {
                    nest.push(Ctx::Obj);
                    i = scan_key(b, i)?;
                    continue 'value;
                }
            }
            b'[' => {
                i = skip_ws(b, i + 1);
                if at(b, i) == b']' {
                    i += 1;
                } else {
                    nest.push(Ctx::Arr);
                    continue 'value;
                }
            }
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            _ => return None,
        }
        loop {
            match (at(b, i), nest.top) {
                (b',', Ctx::Arr) => {
                    i = skip_ws(b, i + 1);
                    continue 'value;
                }
                (b',', Ctx::Obj) => {
                    i = scan_key(b, skip_ws(b, i + 1))?;
                    continue 'value;
                }
                (b']', Ctx::Arr) | (b'}', Ctx::Obj) => nest.pop(),
                (b' ' | b'\t', _) => {}
                // End of input (the 0 sentinel) is fine only at the top level;
                // anything else here is an error.
                (_, top) => return (top == Ctx::Top && i == b.len()).then_some(()),
            }
            i += 1;
        }
    }
}

/// Returns true iff `bytes` is exactly one JSON value (RFC 8259), optionally
/// surrounded by spaces/tabs, with no `\n` or `\r` byte anywhere.
///
/// Such a message can be embedded verbatim in a JSONL record. The check is
/// strict: exact number grammar (no leading zeros, `+`, `.5`, `1.`), all string
/// escapes including `\uXXXX` (lone surrogate escapes are accepted, as the RFC
/// grammar allows), no control bytes inside strings, and no bytes >= 0x80
/// outside strings. Inside strings such bytes are accepted unchecked: the
/// caller guarantees `bytes` is valid UTF-8.
///
/// Never panics and never recurses; any nesting depth is handled, without heap
/// allocation up to 256 levels.
#[must_use]
#[inline(never)]
pub fn is_single_line_json(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        blocks::validate(bytes).is_some()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        validate_scalar(bytes).is_some()
    }
}

/// The same validation 64 bytes at a time (x86-64: SSE2, or AVX2 where the CPU has it).
#[cfg(target_arch = "x86_64")]
mod blocks;

/// Escape for bytes below 0x20: the short form letter, or 0 for `\u00XX`.
const fn short_escape(c: u8) -> u8 {
    match c {
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => 0,
    }
}

/// Appends `text` (valid UTF-8) to `out` as a JSON string literal, quotes
/// included.
///
/// Escapes `"` and `\`, writes `\n` `\r` `\t` `\b` `\f` for those control
/// characters and `\u00XX` for the other bytes below 0x20, and also escapes
/// U+2028/U+2029 as `\u2028`/`\u2029` so the line stays safe for JavaScript
/// readers. The output never contains a raw `\n` or `\r`. Runs of bytes that
/// need no escaping are copied with one `extend_from_slice` each.
pub fn write_json_string(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push(b'"');
    let b = text;
    let mut start = 0; // first byte not yet copied
    let mut i = 0;
    loop {
        // Find the next byte that may need escaping: `"`, `\`, < 0x20, or
        // 0xE2 (lead byte of U+2028/U+2029).
        while i + 8 <= b.len() {
            let w = load8(b, i);
            let m = eq_mask(w, b'"') | eq_mask(w, b'\\') | ctl_mask(w) | eq_mask(w, 0xE2);
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else { break };
        match c {
            b'"' | b'\\' => {
                out.extend_from_slice(&b[start..i]);
                out.extend_from_slice(&[b'\\', c]);
                i += 1;
                start = i;
            }
            0..=0x1f => {
                out.extend_from_slice(&b[start..i]);
                match short_escape(c) {
                    0 => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[(c >> 4) as usize],
                        HEX[(c & 0xf) as usize],
                    ]),
                    e => out.extend_from_slice(&[b'\\', e]),
                }
                i += 1;
                start = i;
            }
            0xE2 if at(b, i + 1) == 0x80 && matches!(at(b, i + 2), 0xA8 | 0xA9) => {
                out.extend_from_slice(&b[start..i]);
                let last = if b[i + 2] == 0xA8 { b'8' } else { b'9' };
                out.extend_from_slice(&[b'\\', b'u', b'2', b'0', b'2', last]);
                i += 3;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64* — small deterministic PRNG for the randomized tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, one_in: usize) -> bool {
            self.below(one_in) == 0
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    fn serde_ok(b: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
    }

    const VALID: &[&str] = &[
        "0",
        "-0",
        "1",
        "-1",
        "123456789",
        "1e5",
        "1E+5",
        "1e-5",
        "-0.0e-0",
        "0.5",
        "10.25E10",
        "1.5e308",
        "123456789012345678901234567890",
        "true",
        "false",
        "null",
        "\"\"",
        "\"abc\"",
        r#""\"\\\/\b\f\n\r\t""#,
        r#""\u0041\u00e9\uABCD""#,
        r#""\ud800""#,
        r#""\udc00\ud800""#,
        "\"héllo € 😀 \u{2028}\"",
        "\"\u{7f}\"",
        "\"a string longer than eight bytes, with \\\"escapes\\\" inside\"",
        "[]",
        "{}",
        "[1]",
        "[1,2,3]",
        "[ 1 , 2 ]",
        "[[],[[]],{}]",
        r#"{"a":1}"#,
        r#"{"a":{"b":[true,false,null,"x",-1.5e-3]}}"#,
        r#"{ "a" : 1 , "b" : [ ] }"#,
        r#"{"":""}"#,
        r#"{"a":1,"a":2}"#,
        " 1",
        "1 ",
        "\t1\t",
        "\t {\"a\":[1, 2]} \t",
        "[ ]",
        "{ }",
        "[\t]",
    ];

    const INVALID: &[&str] = &[
        "",
        " ",
        "\t \t",
        "01",
        "-01",
        "00",
        "1.",
        ".1",
        "-",
        "+1",
        "-a",
        "1.e5",
        "1e",
        "1e+",
        "1E-",
        "1ee5",
        "0x10",
        "1_000",
        "NaN",
        "Infinity",
        "-Infinity",
        "[1,]",
        "[,1]",
        "[,]",
        "[1 2]",
        "[1,,2]",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{a:1}",
        "{1:1}",
        "{'a':1}",
        "[1}",
        "{\"a\":1]",
        "[",
        "]",
        "{",
        "}",
        "[[]",
        "[]]",
        "\"",
        "\"abc",
        "\"abc\\\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12\" ",
        "\"\\u123\"",
        "\"\\u12G4\"",
        "\"\\",
        "\"\\u",
        "\"\\u004",
        "\"\\U0041\"",
        "\"\\'\"",
        "\"a\u{1}b\"",
        "\"a\u{1f}b\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "\"a\rb\"",
        "\"\u{0}\"",
        "1 2",
        "[] []",
        "{}{}",
        "1,",
        "1]",
        "truex",
        "true false",
        "nul",
        "tru",
        "fals",
        "nulll",
        "True",
        "NULL",
        "1\n",
        "\n1",
        "\r1",
        "1\r",
        "1\r\n",
        "[1,\n2]",
        "{\"a\":\n1}",
        "\u{a0}1",
        "1\u{a0}",
        "é",
        "[é]",
        "\u{feff}1",
        "\u{0}",
        "1\u{0}",
        "// c\n1",
        "/*c*/1",
    ];

    #[test]
    fn table_valid() {
        for s in VALID {
            assert!(is_single_line_json(s.as_bytes()), "should accept {s:?}");
            assert!(serde_ok(s.as_bytes()), "serde disagrees on valid {s:?}");
        }
    }

    #[test]
    fn table_invalid() {
        for s in INVALID {
            assert!(!is_single_line_json(s.as_bytes()), "should reject {s:?}");
        }
    }

    #[test]
    fn string_scan_block_boundaries() {
        // Special bytes at every offset relative to the 8-byte SWAR blocks,
        // including the byte-wise tail.
        for len in 0..40 {
            for p in 0..=len {
                let mut s = vec![b'"'];
                s.extend(std::iter::repeat_n(b'a', len));
                s.push(b'"');
                assert!(is_single_line_json(&s));
                for (piece, ok) in [
                    (&b"\\\\"[..], true),
                    (b"\\\"", true),
                    (b"\\u00e9", true),
                    (b"\xc3\xa9", true),
                    (b"\x7f", true),
                    (b"\x1f", false),
                    (b"\x00", false),
                    (b"\t", false),
                    (b"\n", false),
                    (b"\\u12x", false),
                    (b"\\q", false),
                    (b"\"", false),
                ] {
                    let mut m = s.clone();
                    m.splice(p + 1..p + 1, piece.iter().copied());
                    assert_eq!(
                        is_single_line_json(&m),
                        ok,
                        "{:?}",
                        String::from_utf8_lossy(&m)
                    );
                }
            }
        }
    }

    #[test]
    fn invalid_bytes_that_are_not_utf8_never_panic() {
        // Outside the caller's contract, but must still not panic; bytes
        // >= 0x80 outside strings are rejected.
        for s in [&b"\xff"[..], b"[\xff]", b"\x80", b"1\xc3", b"{\"a\":\xe2}"] {
            assert!(!is_single_line_json(s));
        }
        assert!(is_single_line_json(b"\"\xff\xfe\""));
    }

    #[test]
    fn deep_nesting() {
        const N: usize = 100_000;
        let mut closed = Vec::with_capacity(2 * N);
        closed.resize(N, b'[');
        closed.resize(2 * N, b']');
        assert!(is_single_line_json(&closed));

        let unclosed = &closed[..2 * N - 1];
        assert!(!is_single_line_json(unclosed));
        assert!(!is_single_line_json(&closed[..N]));

        // Mismatched closer deep down.
        let mut bad = closed.clone();
        bad[N] = b'}';
        assert!(!is_single_line_json(&bad));

        // Mixed objects and arrays, past the inline stack and back.
        let mut mixed = Vec::new();
        for k in 0..N {
            if k % 3 == 0 {
                mixed.extend_from_slice(b"{\"k\":");
            } else {
                mixed.push(b'[');
            }
        }
        mixed.push(b'0');
        for k in (0..N).rev() {
            mixed.push(if k % 3 == 0 { b'}' } else { b']' });
        }
        assert!(is_single_line_json(&mixed));
        // Swap one closer for the other kind.
        let pos = mixed.len() - 1 - 700;
        mixed[pos] = if mixed[pos] == b'}' { b']' } else { b'}' };
        assert!(!is_single_line_json(&mixed));

        // Exactly around the inline/heap boundary, with siblings after pops.
        for depth in [63, 64, 65, 255, 256, 257, 300] {
            let mut s = Vec::new();
            for k in 0..depth {
                s.extend_from_slice(if k % 2 == 0 { b"[1," } else { b"{\"a\":" });
            }
            s.push(b'2');
            for k in (0..depth).rev() {
                s.extend_from_slice(if k % 2 == 0 { b",3]" } else { b",\"b\":4}" });
            }
            assert!(is_single_line_json(&s), "depth {depth}");
            if depth <= 100 {
                assert!(serde_ok(&s), "depth {depth}");
            }
        }
    }

    // ---- random JSON-like input generation for the differential test ----

    fn gen_ws(r: &mut Rng, out: &mut Vec<u8>) {
        if r.chance(4) {
            for _ in 0..r.below(3) {
                out.push(*r.pick(b" \t"));
            }
        }
    }

    fn gen_number(r: &mut Rng, out: &mut Vec<u8>) {
        if r.chance(3) {
            out.push(b'-');
        }
        if r.chance(4) {
            out.push(b'0');
        } else {
            out.push(b'1' + r.below(9) as u8);
            for _ in 0..r.below(20) {
                out.push(b'0' + r.below(10) as u8);
            }
        }
        if r.chance(3) {
            out.push(b'.');
            for _ in 0..1 + r.below(4) {
                out.push(b'0' + r.below(10) as u8);
            }
        }
        if r.chance(4) {
            out.push(*r.pick(b"eE"));
            if r.chance(2) {
                out.push(*r.pick(b"+-"));
            }
            for _ in 0..1 + r.below(3) {
                out.push(b'0' + r.below(10) as u8);
            }
        }
    }

    fn gen_string(r: &mut Rng, out: &mut Vec<u8>) {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "a", "b", "z", "0", "9", " ", "-", "BTC-USDT", "price", "é", "€", "😀",
            "\u{2028}", "\u{7f}", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
            "\\u0041", "\\u00e9", "\\uD83D\\uDE00", "\\ud800", "\\uDFFF", "\\uFFFF",
        ];
        out.push(b'"');
        let n = match r.below(4) {
            0 => 0,
            1 => r.below(4),
            2 => r.below(12),
            _ => r.below(40),
        };
        for _ in 0..n {
            out.extend_from_slice(r.pick(PIECES).as_bytes());
        }
        out.push(b'"');
    }

    fn gen_value(r: &mut Rng, depth: usize, out: &mut Vec<u8>) {
        let kinds = if depth >= 6 { 5 } else { 7 };
        match r.below(kinds) {
            0 => gen_number(r, out),
            1 => gen_string(r, out),
            2 => out.extend_from_slice(b"true"),
            3 => out.extend_from_slice(b"false"),
            4 => out.extend_from_slice(b"null"),
            5 => {
                out.push(b'[');
                gen_ws(r, out);
                let n = r.below(5);
                for k in 0..n {
                    if k > 0 {
                        gen_ws(r, out);
                        out.push(b',');
                        gen_ws(r, out);
                    }
                    gen_value(r, depth + 1, out);
                }
                gen_ws(r, out);
                out.push(b']');
            }
            _ => {
                out.push(b'{');
                gen_ws(r, out);
                let n = r.below(5);
                for k in 0..n {
                    if k > 0 {
                        gen_ws(r, out);
                        out.push(b',');
                        gen_ws(r, out);
                    }
                    gen_string(r, out);
                    gen_ws(r, out);
                    out.push(b':');
                    gen_ws(r, out);
                    gen_value(r, depth + 1, out);
                }
                gen_ws(r, out);
                out.push(b'}');
            }
        }
    }

    /// Random soup of JSON-ish tokens and bytes: exercises odd number and
    /// literal shapes that mutations of valid documents rarely reach.
    fn gen_soup(r: &mut Rng, out: &mut Vec<u8>) {
        const TOKENS: &[&str] = &[
            "0", "1", "9", "-", "+", ".", "e", "E", "[", "]", "{", "}", ",", ":", "\"", "\\", " ",
            "\t", "true", "false", "null", "tru", "nul", "u", "x", "é", "\u{1}", "\"a\"",
        ];
        for _ in 0..1 + r.below(8) {
            out.extend_from_slice(r.pick(TOKENS).as_bytes());
        }
    }

    fn mutate(r: &mut Rng, doc: &mut Vec<u8>) {
        const INTERESTING: &[u8] = b"[]{},:\"\\ \t0123456789-+.eEtfnulx/\x01\x7f";
        for _ in 0..1 + r.below(3) {
            let len = doc.len();
            match r.below(6) {
                0 if len > 0 => {
                    let p = r.below(len);
                    doc[p] = if r.chance(4) {
                        r.next() as u8
                    } else {
                        *r.pick(INTERESTING)
                    };
                }
                1 if len > 0 => {
                    doc.truncate(r.below(len));
                }
                2 if len > 0 => {
                    doc.remove(r.below(len));
                }
                3 => {
                    let p = r.below(len + 1);
                    doc.insert(p, *r.pick(INTERESTING));
                }
                4 if len > 0 => {
                    // Duplicate a slice (e.g. repeats a token or a comma).
                    let a = r.below(len);
                    let bnd = (a + 1 + r.below(8)).min(len);
                    let piece = doc[a..bnd].to_vec();
                    let p = r.below(len + 1);
                    doc.splice(p..p, piece);
                }
                _ => {
                    let p = r.below(len + 1);
                    doc.insert(p, *r.pick(b"[]{},:\""));
                }
            }
        }
    }

    fn max_bracket_depth(b: &[u8]) -> usize {
        // Counts brackets even inside strings: an overestimate is harmless.
        let (mut d, mut max) = (0usize, 0usize);
        for &c in b {
            match c {
                b'[' | b'{' => {
                    d += 1;
                    max = max.max(d);
                }
                b']' | b'}' => d = d.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    /// The last partial block is classified over the input's last 64 bytes, which overlap
    /// the block before: escapes, quotes and numbers on either side of that edge.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn tail_block_overlaps_the_previous_one() {
        let pieces: [&[u8]; 5] = [b"\\\"", b"\\\\", b"\",\"", b"\" 1", b"\\u0041"];
        let (mut valid, mut total) = (0, 0);
        for len in 60..200 {
            for piece in pieces {
                for at in 1..len - 1 - piece.len() {
                    let mut doc = vec![b'a'; len];
                    doc[0] = b'"';
                    doc[len - 1] = b'"';
                    doc[at..at + piece.len()].copy_from_slice(piece);
                    let mut array = b"[".to_vec();
                    array.extend_from_slice(&doc);
                    array.extend_from_slice(b",1]");
                    for d in [&doc, &array] {
                        let fast = every_block_validator(d);
                        assert_eq!(fast, validate_scalar(d).is_some(), "{d:?}");
                        total += 1;
                        valid += usize::from(fast);
                    }
                }
            }
        }
        assert!(
            valid > total / 4 && valid < total * 3 / 4,
            "{valid}/{total} valid"
        );
    }

    /// The block validator in each version this CPU can run (SSE2 always; AVX2 and AVX-512
    /// with carry-less multiplication where present), and with every block checked by masks
    /// or every block token by token, which must all agree.
    #[cfg(target_arch = "x86_64")]
    fn every_block_validator(doc: &[u8]) -> bool {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        let classify_sse2 = |block: &[u8; 64]| unsafe { blocks::classify_sse2(block) };
        let tail = |b: &[u8], base: usize| blocks::tail(b, base, classify_sse2);
        let sse2_with = |few| {
            blocks::validate_with(doc, classify_sse2, tail, blocks::prefix_xor, few).is_some()
        };
        let sse2 = sse2_with(blocks::FEW_TOKENS);
        let shown = || String::from_utf8_lossy(doc).into_owned();
        // Every block by masks, and every block token by token.
        assert_eq!(sse2_with(0), sse2, "masks only disagree on {:?}", shown());
        assert_eq!(sse2_with(64), sse2, "tokens only disagree on {:?}", shown());
        if blocks::has_avx2() {
            // SAFETY: the CPU has what it enables (checked just above).
            let avx2 = unsafe { blocks::validate_avx2(doc) }.is_some();
            assert_eq!(avx2, sse2, "AVX2 and SSE2 disagree on {:?}", shown());
        }
        if blocks::has_avx512() {
            // SAFETY: the CPU has what it enables (checked just above).
            let avx512 = unsafe { blocks::validate_avx512(doc) }.is_some();
            assert_eq!(avx512, sse2, "AVX-512 and SSE2 disagree on {:?}", shown());
        }
        assert_eq!(blocks::validate(doc).is_some(), sse2);
        sse2
    }

    /// Brackets whose pairs straddle block edges (an opener as a block's last bracket, its
    /// closer or another opener in the next block), nesting past the 64 levels the block
    /// validator keeps in a register, and every one-byte change of such documents into a
    /// structural character: the block validator must agree with the byte-at-a-time one.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn brackets_across_block_edges() {
        let deep = |n: usize| format!("{}1{}", "[{\"k\":".repeat(n), "}]".repeat(n));
        let docs = [
            r#"[[1,2],[3,[4]],{"a":[],"b":{}},[],[[["x"]]],{"c":[5,{"d":6}]}]"#.to_string(),
            r#"{"bids":[["1.5","2"],["1.4","3"]],"asks":[["1.6","1"]],"e":{}}"#.to_string(),
            r#"[{}, [], [[]], [{}], {"a":{"b":[]}} ]"#.to_string(),
            deep(40),
            deep(70),
        ];
        let (mut valid, mut total) = (0, 0);
        for doc in &docs {
            for pad in 0..70 {
                let mut d = " ".repeat(pad).into_bytes();
                d.extend_from_slice(doc.as_bytes());
                assert!(blocks::validate(&d).is_some(), "pad {pad}: {doc}");
                for at in pad..d.len() {
                    for with in *b"[]{},: " {
                        let mut m = d.clone();
                        m[at] = with;
                        let fast = every_block_validator(&m);
                        assert_eq!(
                            fast,
                            validate_scalar(&m).is_some(),
                            "{:?}",
                            String::from_utf8_lossy(&m)
                        );
                        total += 1;
                        valid += usize::from(fast);
                    }
                }
            }
        }
        assert!(
            valid > total / 50 && valid < total / 2,
            "{valid}/{total} valid"
        );
    }

    /// The 64-byte-block validator against the byte-at-a-time one, on long inputs whose
    /// strings, escapes (runs of backslashes), numbers and literals straddle block edges.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn blocks_agree_with_scalar() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut doc = Vec::new();
        let pieces: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"\\\\",
            b"\\\"",
            b"\\u00e9",
            b"\\uZZ",
            b"\\n",
            b"\\x",
            b"a",
            b"xxxxxxx",
            b" ",
            b"\t",
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b"1",
            b"-0.5e+7",
            b"01",
            b"true",
            b"nul",
            "\u{e9}".as_bytes(),
            b"\x7f",
            b"\0",
            b"\n",
            b"\x01",
        ];
        let (mut valid, mut total) = (0, 0);
        for case in 0..100_000 {
            doc.clear();
            if case % 2 == 0 {
                // Valid-ish documents: an array of generated values, sometimes mutated.
                doc.push(b'[');
                for k in 0..1 + r.below(12) {
                    if k > 0 {
                        doc.push(b',');
                    }
                    gen_value(&mut r, 0, &mut doc);
                }
                doc.push(b']');
                if r.chance(3) {
                    mutate(&mut r, &mut doc);
                }
            } else {
                for _ in 0..r.below(120) {
                    let piece: &&[u8] = r.pick(pieces);
                    doc.extend_from_slice(piece);
                }
            }
            // Shift the content against the block edges.
            let pad = r.below(64);
            doc.splice(0..0, std::iter::repeat_n(b' ', pad));
            if std::str::from_utf8(&doc).is_err() {
                continue;
            }
            let fast = every_block_validator(&doc);
            let slow = validate_scalar(&doc).is_some();
            assert_eq!(
                fast,
                slow,
                "disagreement on {:?}",
                String::from_utf8_lossy(&doc)
            );
            total += 1;
            valid += usize::from(fast);
        }
        assert!(
            valid > total / 10 && valid < total * 9 / 10,
            "{valid}/{total} valid"
        );
    }

    /// Digit runs of every length up to 24 cut by every byte, at every alignment, with and
    /// without more bytes after the cut: the same answer as serde_json (the number
    /// grammar's digits are taken eight at a time where eight bytes remain).
    #[test]
    fn digit_runs_end_at_the_first_other_byte() {
        let mut checked = 0;
        for pad in 0..8 {
            for digits in 0..=24 {
                for cut in 0..=255u8 {
                    for tail in [&b""[..], b"]", b"5]", b" ,1]"] {
                        let mut doc = vec![b' '; pad];
                        doc.push(b'[');
                        doc.push(b'1');
                        doc.extend((0..digits).map(|d| b'0' + (d * 7 % 10) as u8));
                        doc.push(cut);
                        doc.extend_from_slice(tail);
                        if cut == b'\n' || cut == b'\r' || std::str::from_utf8(&doc).is_err() {
                            continue;
                        }
                        assert_eq!(
                            is_single_line_json(&doc),
                            serde_ok(&doc),
                            "{:?}",
                            String::from_utf8_lossy(&doc)
                        );
                        assert_eq!(
                            validate_scalar(&doc).is_some(),
                            serde_ok(&doc),
                            "{:?}",
                            String::from_utf8_lossy(&doc)
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 8 * 25 * 120 * 4, "{checked}");
    }

    #[test]
    fn differential_against_serde_json() {
        const CASES: usize = 200_000;
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut doc = Vec::new();
        let (mut checked, mut accepted) = (0usize, 0usize);
        for case in 0..CASES {
            doc.clear();
            match case % 8 {
                0 => gen_soup(&mut r, &mut doc),
                _ => {
                    gen_ws(&mut r, &mut doc);
                    gen_value(&mut r, 0, &mut doc);
                    gen_ws(&mut r, &mut doc);
                    if r.chance(2) {
                        mutate(&mut r, &mut doc);
                    }
                }
            }
            if doc.contains(&b'\n')
                || doc.contains(&b'\r')
                || max_bracket_depth(&doc) > 100
                || std::str::from_utf8(&doc).is_err()
            {
                continue;
            }
            let ours = is_single_line_json(&doc);
            let theirs = serde_ok(&doc);
            assert_eq!(
                ours,
                theirs,
                "disagreement on {:?} (ours={ours}, serde_json={theirs})",
                String::from_utf8_lossy(&doc)
            );
            checked += 1;
            accepted += ours as usize;
        }
        // Guard against a generator that degenerates into one class.
        assert!(checked > CASES * 3 / 4, "only {checked} cases checked");
        assert!(accepted > checked / 4, "only {accepted}/{checked} valid");
        assert!(
            checked - accepted > checked / 4,
            "only {accepted}/{checked} valid"
        );
    }

    #[test]
    fn corpus_lines_are_accepted() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
        let mut files = 0;
        let mut lines = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            files += 1;
            let data = std::fs::read(&path).expect("read corpus file");
            for (n, line) in data.split(|&c| c == b'\n').enumerate() {
                if line.is_empty() {
                    continue;
                }
                lines += 1;
                assert!(
                    is_single_line_json(line),
                    "{}:{} rejected",
                    path.display(),
                    n + 1
                );
            }
        }
        assert!(files > 0 && lines > 0, "empty corpus at {}", dir.display());
    }

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_json_string(s.as_bytes(), &mut out);
        String::from_utf8(out).expect("output is UTF-8")
    }

    #[test]
    fn write_json_string_exact() {
        assert_eq!(escaped(""), r#""""#);
        assert_eq!(escaped("abc"), r#""abc""#);
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(escaped("\u{0}\u{1}\u{1f}"), r#""\u0000\u0001\u001f""#);
        assert_eq!(escaped("x\u{2028}y\u{2029}z"), r#""x\u2028y\u2029z""#);
        assert_eq!(
            escaped("…€\u{2027}\u{202a}é😀/\u{7f}"),
            "\"…€\u{2027}\u{202a}é😀/\u{7f}\""
        );
        assert_eq!(
            escaped("a long run of safe text, then \" and more safe text"),
            r#""a long run of safe text, then \" and more safe text""#
        );
        // Appends, never clears.
        let mut out = b"prefix:".to_vec();
        write_json_string(b"v", &mut out);
        assert_eq!(out, b"prefix:\"v\"");
    }

    #[test]
    fn write_json_string_round_trips() {
        // Control chars, escapes, multi-byte UTF-8 and 0xE2-led near-misses.
        const CHARS: &str = "aZ0 \"\\/\n\r\t\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f}éß€…\
                             \u{2028}\u{2029}\u{2027}\u{202a}\u{e280}😀\u{10ffff}\u{fffd}";
        let chars: Vec<char> = CHARS.chars().collect();
        let mut r = Rng(0x1234_5678_9abc_def1);
        let mut s = String::new();
        let mut out = Vec::new();
        for _ in 0..20_000 {
            s.clear();
            for _ in 0..r.below(64) {
                if r.chance(3) {
                    s.push(*r.pick(&chars));
                } else {
                    // Any scalar value, biased towards ASCII and control chars.
                    let c = match r.below(3) {
                        0 => r.below(0x80) as u32,
                        1 => r.below(0x800) as u32,
                        _ => r.below(0x11_0000) as u32,
                    };
                    s.push(char::from_u32(c).unwrap_or('?'));
                }
            }
            out.clear();
            write_json_string(s.as_bytes(), &mut out);
            assert!(!out.contains(&b'\n') && !out.contains(&b'\r'), "{s:?}");
            assert!(
                !out.windows(3)
                    .any(|w| w == b"\xe2\x80\xa8" || w == b"\xe2\x80\xa9"),
                "raw U+2028/U+2029 in output for {s:?}"
            );
            let back: String = serde_json::from_slice(&out).expect("output parses");
            assert_eq!(back, s);
            assert!(is_single_line_json(&out), "{s:?}");
        }
    }
}
