//! The same validation 64 bytes at a time, in the manner of simdjson: SSE2 (part of every
//! x86-64 CPU) classifies each block into bit masks (quotes, backslashes, control bytes, spaces
//! and tabs, structural characters; AVX2 instead where the CPU has it); bit arithmetic turns
//! them into "inside a string" and "escaped" masks; a control byte inside a string is rejected
//! per block with one test. What is left is a short walk over the
//! tokens (structural characters, opening quotes, scalar starts) checking the grammar, with
//! numbers and literals checked by the scalar code of the parent module, and the (rare) escapes one by one.
//! String contents are never looked at byte by byte. Exactly the same language as
//! [`validate_scalar`](super::validate_scalar); the tests compare the two.

use super::{Ctx, Nest, literal, scan_escape, scan_number};

/// Bits at odd positions, for the escape arithmetic.
const ODD_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;

/// One bit per byte of a 64-byte block, per class. Bytes >= 0x80 and control bytes
/// outside strings need no class of their own: there they are neither whitespace nor
/// structural, so they fall into a scalar run, which no number or literal accepts.
#[derive(Default)]
pub(super) struct Classes {
    quote: u64,
    backslash: u64,
    /// Bytes below 0x20, tab included: none may stand inside a string.
    control: u64,
    /// Space and tab.
    space: u64,
    /// `{` `}` `[` `]` `:` `,`
    structural: u64,
}

/// The body of a classify function, for lanes of `$width` bytes: the SSE2 and AVX2
/// versions differ only in their intrinsics.
macro_rules! classify_lanes {
    ($block:ident, $lane:ty, $width:literal, $bits:ty, $load:ident, $cmpeq:ident,
     $max:ident, $or:ident, $set1:ident, $movemask:ident) => {{
        let mut c = Classes::default();
        let eq = |v: $lane, b: u8| $cmpeq(v, $set1(b as i8));
        let bits = |m: $lane| u64::from($movemask(m) as $bits);
        for k in 0..64 / $width {
            // SAFETY: each unaligned load reads `$width` bytes inside the 64-byte block.
            let v = unsafe { $load($block.as_ptr().add($width * k).cast::<$lane>()) };
            let shift = $width * k;
            c.quote |= bits(eq(v, b'"')) << shift;
            c.backslash |= bits(eq(v, b'\\')) << shift;
            // v <= 0x1f unsigned  <=>  max(v, 0x1f) == 0x1f
            let low = $set1(0x1f);
            c.control |= bits($cmpeq($max(v, low), low)) << shift;
            c.space |= bits($or(eq(v, b' '), eq(v, b'\t'))) << shift;
            // `[` `]` are `{` `}` without the 0x20 bit.
            let folded = $or(v, $set1(0x20));
            let brackets = $or(eq(folded, b'{'), eq(folded, b'}'));
            let punct = $or(eq(v, b':'), eq(v, b','));
            c.structural |= bits($or(brackets, punct)) << shift;
        }
        c
    }};
}

/// [`Classes`] with SSE2 (part of the x86-64 baseline), 16 bytes at a time.
///
/// Never inlined, here and for AVX2: inlined, LLVM sees through the movemasks and turns
/// the mask arithmetic back into byte vectors, bit by bit (twice the instructions).
#[inline(never)]
#[target_feature(enable = "sse2")]
pub(super) fn classify_sse2(block: &[u8; 64]) -> Classes {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    classify_lanes!(
        block,
        __m128i,
        16,
        u16,
        _mm_loadu_si128,
        _mm_cmpeq_epi8,
        _mm_max_epu8,
        _mm_or_si128,
        _mm_set1_epi8,
        _mm_movemask_epi8
    )
}

/// [`Classes`] with AVX2, 32 bytes at a time.
#[inline(never)]
#[target_feature(enable = "avx2")]
fn classify_avx2(block: &[u8; 64]) -> Classes {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    classify_lanes!(
        block,
        __m256i,
        32,
        u32,
        _mm256_loadu_si256,
        _mm256_cmpeq_epi8,
        _mm256_max_epu8,
        _mm256_or_si256,
        _mm256_set1_epi8,
        _mm256_movemask_epi8
    )
}

/// Bit i = XOR of bits 0..=i: 1 from an opening quote up to (not including) its closing one.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// What the grammar allows next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A value (document start, after `:`, after `,` in an array).
    Value,
    /// A value or `]` (after `[`).
    ValueOrClose,
    /// A key or `}` (after `{`).
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or a closer (after a value).
    Next,
}

/// A number or literal must end where whitespace, a separator, a closer or the input does.
#[inline(always)]
fn scalar_end(b: &[u8], end: usize) -> Option<Want> {
    // Not `at`: its 0 past the end must not let a NUL byte through.
    matches!(b.get(end), None | Some(b' ' | b'\t' | b',' | b']' | b'}')).then_some(Want::Next)
}

/// Takes the token `c` at `p`.
#[inline(always)]
fn step(b: &[u8], p: usize, c: u8, want: Want, nest: &mut Nest) -> Option<Want> {
    match want {
        Want::Value | Want::ValueOrClose => match c {
            b'"' => Some(Want::Next),
            b'{' => {
                nest.push(Ctx::Obj);
                Some(Want::KeyOrClose)
            }
            b'[' => {
                nest.push(Ctx::Arr);
                Some(Want::ValueOrClose)
            }
            b']' if want == Want::ValueOrClose => {
                nest.pop();
                Some(Want::Next)
            }
            b'-' | b'0'..=b'9' => scalar_end(b, scan_number(b, p)?),
            b't' => scalar_end(b, literal(b, p, b"true")?),
            b'f' => scalar_end(b, literal(b, p, b"false")?),
            b'n' => scalar_end(b, literal(b, p, b"null")?),
            _ => None,
        },
        Want::KeyOrClose | Want::Key => match c {
            b'"' => Some(Want::Colon),
            b'}' if want == Want::KeyOrClose => {
                nest.pop();
                Some(Want::Next)
            }
            _ => None,
        },
        Want::Colon => (c == b':').then_some(Want::Value),
        Want::Next => match (c, nest.top) {
            (b',', Ctx::Arr) => Some(Want::Value),
            (b',', Ctx::Obj) => Some(Want::Key),
            (b']', Ctx::Arr) | (b'}', Ctx::Obj) => {
                nest.pop();
                Some(Want::Next)
            }
            _ => None,
        },
    }
}

pub(super) fn validate(b: &[u8]) -> Option<()> {
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above; the answer is cached).
        unsafe { validate_avx2(b) }
    } else {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        validate_with(b, |block| unsafe { classify_sse2(block) })
    }
}

#[target_feature(enable = "avx2")]
fn validate_avx2(b: &[u8]) -> Option<()> {
    // The closure inherits AVX2 from this function, so it may call `classify_avx2`.
    validate_with(b, |block| classify_avx2(block))
}

/// [`Classes`] of the last, partial block (from `base` to the end), as if padded with
/// spaces (whitespace: no tokens, no errors). An input of 64 bytes or more is classified
/// over its last 64 bytes and the masks shifted down: copying the rest into a padded
/// block and loading it back stalled on store forwarding.
#[inline(always)]
fn tail(b: &[u8], base: usize, classify: impl Fn(&[u8; 64]) -> Classes) -> Classes {
    let rest = b.len() - base;
    let padding = !0u64 << rest;
    match b.last_chunk::<64>() {
        Some(last) => {
            let c = classify(last);
            let shift = 64 - rest;
            Classes {
                quote: c.quote >> shift,
                backslash: c.backslash >> shift,
                control: c.control >> shift,
                space: (c.space >> shift) | padding,
                structural: c.structural >> shift,
            }
        }
        None => {
            let mut block = [b' '; 64];
            block[..rest].copy_from_slice(&b[base..]);
            classify(&block)
        }
    }
}

#[inline(always)]
pub(super) fn validate_with(b: &[u8], classify: impl Fn(&[u8; 64]) -> Classes) -> Option<()> {
    let mut nest = Nest::new();
    let mut want = Want::Value;
    // Carried from block to block: the first byte is escaped (bit 0), the block starts
    // inside a string (all ones), the block starts inside a number or literal (bit 0).
    let mut next_escaped = 0u64;
    let mut in_string = 0u64;
    let mut in_scalar = 0u64;
    let mut base = 0;
    while base < b.len() {
        let c = match b.get(base..base + 64) {
            Some(full) => classify(full.try_into().ok()?),
            None => tail(b, base, &classify),
        };
        // Escaped bytes: those after an odd run of backslashes (simdjson's arithmetic).
        let escaped = if c.backslash == 0 {
            std::mem::take(&mut next_escaped)
        } else {
            let potential = c.backslash & !next_escaped;
            let codes = ((potential << 1) | ODD_BITS).wrapping_sub(potential) ^ ODD_BITS;
            let escaped = codes ^ (c.backslash | next_escaped);
            next_escaped = (codes & c.backslash) >> 63;
            escaped
        };
        let quotes = c.quote & !escaped;
        // 1 from an opening quote to just before its closing quote.
        let string = prefix_xor(quotes) ^ in_string;
        in_string = ((string as i64) >> 63) as u64;
        let inside = string | quotes;
        if c.control & inside != 0 {
            return None;
        }
        let mut escapes = escaped & string;
        while escapes != 0 {
            scan_escape(b, base + escapes.trailing_zeros() as usize)?;
            escapes &= escapes - 1;
        }
        let scalar = !(inside | c.space | c.structural);
        let scalar_starts = scalar & !((scalar << 1) | in_scalar);
        in_scalar = scalar >> 63;
        let mut tokens = (c.structural & !inside) | (quotes & string) | scalar_starts;
        while tokens != 0 {
            let p = base + tokens.trailing_zeros() as usize;
            tokens &= tokens - 1;
            want = step(b, p, b[p], want, &mut nest)?;
        }
        base += 64;
    }
    (want == Want::Next && nest.depth == 0 && in_string == 0).then_some(())
}
