//! The same validation 64 bytes at a time, in the manner of simdjson: SSE2 (part of every
//! x86-64 CPU) classifies each block into bit masks (quotes, backslashes, control bytes, spaces
//! and tabs, structural characters; AVX2 or AVX-512BW instead where the CPU has it); bit
//! arithmetic turns them into "inside a string" and "escaped" masks; a control byte inside a
//! string is rejected per block with one test. The grammar is then checked with masks too:
//! for each class of token (after `{`, after `[`, after a key, after a value...) one addition
//! finds the token that follows each of them, and what may follow is a mask test; a block with
//! only a few tokens takes them one by one instead (`grammar`), which is cheaper there. Only
//! brackets that do not close right after they open are walked one by one (`nesting`),
//! numbers and literals are checked by the scalar code of the parent module, and the (rare)
//! escapes one by one. String contents are never looked at byte by byte. Exactly the same
//! language as [`validate_scalar`](super::validate_scalar); the tests compare the two.

mod grammar;
mod nesting;

use self::grammar::{Grammar, scalar, step};
use self::nesting::Nesting;
use super::scan_escape;

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
    /// Bit 2 of each byte: among the structural characters, set for the closers
    /// `}` `]` (0x7D 0x5D, against 0x7B 0x5B) and for `,` (0x2C, against `:` 0x3A).
    bit2: u64,
    /// Bit 5 of each byte: among the brackets, set for braces (0x7B 0x7D, against 0x5B 0x5D).
    bit5: u64,
    /// Bit 6 of each byte: among the structural characters, set for the four brackets.
    bit6: u64,
}

/// The body of a classify function, for lanes of `$width` bytes: the SSE2 and AVX2
/// versions differ only in their intrinsics.
macro_rules! classify_lanes {
    ($block:ident, $lane:ty, $width:literal, $bits:ty, $load:ident, $cmpeq:ident,
     $max:ident, $or:ident, $set1:ident, $movemask:ident, $slli:ident) => {{
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
            // A 16-bit lane shift moves bit k of every byte to its top bit (bits that
            // cross into the next byte land below it), which is what movemask reads.
            c.bit2 |= bits($slli::<5>(v)) << shift;
            c.bit5 |= bits($slli::<2>(v)) << shift;
            c.bit6 |= bits($slli::<1>(v)) << shift;
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
        _mm_set1_epi8, _mm_slli_epi16,
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
        _mm_movemask_epi8,
        _mm_slli_epi16
    )
}

/// [`Classes`] with AVX2, 32 bytes at a time.
#[inline(never)]
#[target_feature(enable = "avx2")]
fn classify_avx2(block: &[u8; 64]) -> Classes {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_slli_epi16,
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
        _mm256_movemask_epi8,
        _mm256_slli_epi16
    )
}

/// [`Classes`] with AVX-512BW, the whole block at once: each class is one compare (or bit
/// test) straight into a 64-bit mask, where AVX2 needs a compare, a movemask and a merge
/// per 32 bytes.
#[inline]
#[target_feature(enable = "avx512bw")]
pub(super) fn classify_avx512(block: &[u8; 64]) -> Classes {
    use std::arch::x86_64::{__m512i, _mm512_loadu_si512};
    // SAFETY: the load reads the 64 bytes of the block.
    classes_avx512(unsafe { _mm512_loadu_si512(block.as_ptr().cast::<__m512i>()) })
}

/// [`classify_avx512`] of the last, partial block (fewer than 64 bytes): a masked load reads
/// just those bytes and fills the rest of the vector with spaces.
#[inline]
#[target_feature(enable = "avx512bw")]
fn classify_avx512_tail(rest: &[u8]) -> Classes {
    use std::arch::x86_64::{_mm512_mask_loadu_epi8, _mm512_set1_epi8};
    debug_assert!(rest.len() < 64);
    let lanes = (1u64 << rest.len()) - 1;
    // SAFETY: the mask covers the `rest.len()` bytes of the slice; masked-off lanes are not
    // read (they cannot fault) and take the spaces given.
    let v = unsafe {
        _mm512_mask_loadu_epi8(_mm512_set1_epi8(b' ' as i8), lanes, rest.as_ptr().cast())
    };
    classes_avx512(v)
}

#[inline]
#[target_feature(enable = "avx512bw")]
fn classes_avx512(v: std::arch::x86_64::__m512i) -> Classes {
    use std::arch::x86_64::{
        _mm512_cmpeq_epi8_mask, _mm512_cmple_epu8_mask, _mm512_or_si512, _mm512_set1_epi8,
        _mm512_test_epi8_mask,
    };
    let eq = |b: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b as i8));
    let bit = |b: u8| _mm512_test_epi8_mask(v, _mm512_set1_epi8(b as i8));
    // `[` `]` are `{` `}` without the 0x20 bit.
    let folded = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
    let folded_eq = |b: u8| _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8(b as i8));
    Classes {
        quote: eq(b'"'),
        backslash: eq(b'\\'),
        control: _mm512_cmple_epu8_mask(v, _mm512_set1_epi8(0x1f)),
        space: eq(b' ') | eq(b'\t'),
        structural: folded_eq(b'{') | folded_eq(b'}') | eq(b':') | eq(b','),
        bit2: bit(0x04),
        bit5: bit(0x20),
        bit6: bit(0x40),
    }
}

/// Bit i = XOR of bits 0..=i: 1 from an opening quote up to (not including) its closing one.
#[inline(always)]
pub(super) fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The token following each token of a class, carried across blocks.
///
/// `not_tokens` has a 1 at every byte that is not a token. Adding a 1 just above each
/// token of the class runs a carry through the non-token bytes above it until it stops
/// on the next token, whose bit it sets. The carry that leaves the block (or a class
/// token in its last bit) means "the last token of this class is still waiting for its
/// successor", and enters the next block at bit 0.
#[derive(Clone, Copy, Default)]
struct Successor {
    carry: u64,
}

impl Successor {
    #[inline(always)]
    fn of(&mut self, class: u64, not_tokens: u64) -> u64 {
        let (sum, over) = not_tokens.overflowing_add((class << 1) | self.carry);
        self.carry = u64::from(over) | (class >> 63);
        sum & !not_tokens
    }
}

/// Whether this CPU runs [`validate_avx512`]: AVX-512BW, carry-less multiplication, and the
/// bit instructions the token loops count and find bits with (`popcnt`, BMI1's `tzcnt` and
/// `blsr`; without them `count_ones` was a dozen instructions, ~6 % of the validator's time
/// on real frames).
pub(super) fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512bw") && has_bit_instructions()
}

/// Whether this CPU runs [`validate_avx2`] (as [`has_avx512`], with AVX2).
pub(super) fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && has_bit_instructions()
}

/// What both SIMD versions enable besides their vector width: carry-less multiplication,
/// `popcnt` and BMI1.
fn has_bit_instructions() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("pclmulqdq") && has!("popcnt") && has!("bmi1")
}

pub(super) fn validate(b: &[u8]) -> Option<()> {
    if has_avx512() {
        // SAFETY: the CPU has every feature the function enables (checked just above; the
        // answers are cached).
        unsafe { validate_avx512(b) }
    } else if has_avx2() {
        // SAFETY: as above.
        unsafe { validate_avx2(b) }
    } else {
        // SAFETY: SSE2 is part of every x86-64 CPU.
        let classify = |block: &[u8; 64]| unsafe { classify_sse2(block) };
        let tail = |b: &[u8], base| tail(b, base, classify);
        validate_with(b, classify, tail, prefix_xor, FEW_TOKENS)
    }
}

#[target_feature(enable = "avx512bw,pclmulqdq,popcnt,bmi1")]
pub(super) fn validate_avx512(b: &[u8]) -> Option<()> {
    // The closures inherit these features from this function.
    validate_with(
        b,
        |block| classify_avx512(block),
        |b, base| classify_avx512_tail(&b[base..]),
        |x| prefix_xor_clmul(x),
        FEW_TOKENS,
    )
}

#[target_feature(enable = "avx2,pclmulqdq,popcnt,bmi1")]
pub(super) fn validate_avx2(b: &[u8]) -> Option<()> {
    // The closures inherit these features from this function.
    let classify = |block: &[u8; 64]| classify_avx2(block);
    validate_with(
        b,
        classify,
        |b, base| tail(b, base, classify),
        |x| prefix_xor_clmul(x),
        FEW_TOKENS,
    )
}

/// [`prefix_xor`] in one carry-less multiplication by all ones.
#[inline]
#[target_feature(enable = "pclmulqdq")]
fn prefix_xor_clmul(x: u64) -> u64 {
    use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x};
    let product = _mm_clmulepi64_si128::<0>(_mm_set_epi64x(0, x as i64), _mm_set_epi64x(0, -1));
    _mm_cvtsi128_si64(product) as u64
}

/// [`Classes`] of the last, partial block (from `base` to the end), as if padded with
/// spaces (whitespace: no tokens, no errors). An input of 64 bytes or more is classified
/// over its last 64 bytes and the masks shifted down: copying the rest into a padded
/// block and loading it back stalled on store forwarding.
#[inline(always)]
pub(super) fn tail(b: &[u8], base: usize, classify: impl Fn(&[u8; 64]) -> Classes) -> Classes {
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
                bit2: c.bit2 >> shift,
                bit5: c.bit5 >> shift,
                bit6: c.bit6 >> shift,
            }
        }
        None => {
            let mut block = [b' '; 64];
            block[..rest].copy_from_slice(&b[base..]);
            classify(&block)
        }
    }
}

/// Blocks with at most this many tokens take them one by one (a token costs a few ns that
/// way; the masks cost ~30 ns per block whatever the tokens): 200-byte messages of a few
/// fields 77 -> 55 ns, real exchange frames within 2 %.
pub(super) const FEW_TOKENS: u32 = 8;

/// The grammar is checked per block with masks, one successor set per class of token:
/// after `{` a key or `}`; after `[` a value or `]`; after `:` (and at the start) a
/// value; after `,` a key in an object, a value in an array, nothing at the top level;
/// after a key a `:`; after a value (string, number, literal, closer) a `,` or a closer.
/// A string is a key when it follows `{`, or `,` in an object. Only brackets (for the
/// nesting) and numbers and literals (for their own grammar) are visited one by one.
///
/// `classify` takes a full block, `classify_tail` the input's last partial block from the
/// offset given (as if padded with spaces), `prefix_xor` is [`prefix_xor`] or a faster equal;
/// blocks with at most `few_tokens` tokens take them one by one ([`FEW_TOKENS`]).
#[inline(always)]
pub(super) fn validate_with(
    b: &[u8],
    classify: impl Fn(&[u8; 64]) -> Classes,
    classify_tail: impl Fn(&[u8], usize) -> Classes,
    prefix_xor: impl Fn(u64) -> u64 + Copy,
    few_tokens: u32,
) -> Option<()> {
    let mut nesting = Nesting::default();
    // Carried from block to block: the first byte is escaped (bit 0), the block starts
    // inside a string (all ones), the block starts inside a number or literal (bit 0).
    let mut next_escaped = 0u64;
    let mut in_string = 0u64;
    let mut in_scalar = 0u64;
    let mut g = Grammar::new();
    let mut base = 0;
    while base < b.len() {
        let c = match b.get(base..base + 64) {
            Some(full) => classify(full.try_into().ok()?),
            None => classify_tail(b, base),
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
        let scalar_bytes = !(inside | c.space | c.structural);
        let scalars = scalar_bytes & !((scalar_bytes << 1) | in_scalar);
        in_scalar = scalar_bytes >> 63;
        let structural = c.structural & !inside;
        let strings = quotes & string;
        let tokens = structural | strings | scalars;
        base += 64;
        if tokens == 0 {
            // Inside one string or number, or blank: every successor is still to come.
            continue;
        }
        if tokens.count_ones() <= few_tokens {
            nesting.push_waiting();
            let mut want = g.want();
            let mut rest = tokens;
            while rest != 0 {
                let p = base - 64 + rest.trailing_zeros() as usize;
                rest &= rest - 1;
                want = step(b, p, b[p], want, &mut nesting.stack)?;
            }
            g.set(want);
            continue;
        }
        let mut rest = scalars;
        while rest != 0 {
            scalar(b, base - 64 + rest.trailing_zeros() as usize)?;
            rest &= rest - 1;
        }
        let brackets = structural & c.bit6;
        let ctx = nesting.block(&c, brackets, prefix_xor)?;
        let opens = brackets & !c.bit2;
        let closes = brackets & c.bit2;
        let punct = structural & !c.bit6;
        let colons = punct & !c.bit2;
        let commas = punct & c.bit2;
        let values = opens | strings | scalars;

        let not_tokens = !tokens;
        let s_brace = g.after_brace.of(opens & c.bit5, not_tokens);
        let s_bracket = g.after_bracket.of(opens & !c.bit5, not_tokens);
        let s_colon = g.after_colon.of(colons, not_tokens);
        let s_object_comma = g.after_object_comma.of(commas & ctx.object, not_tokens);
        let s_array_comma = g.after_array_comma.of(commas & !ctx.object, not_tokens);
        let keys = strings & (s_brace | s_object_comma);
        let s_key = g.after_key.of(keys, not_tokens);
        let s_value = g
            .after_value
            .of(closes | (strings & !keys) | scalars, not_tokens);
        let bad = (s_brace & !(strings | closes))
            | (s_bracket & !(values | closes))
            | (s_colon & !values)
            | (s_object_comma & !strings)
            | (s_array_comma & !values)
            | (s_key & !colons)
            | (s_value & !(commas | closes))
            | (commas & ctx.top);
        if bad != 0 {
            return None;
        }
    }
    // The last token must have been a value, every container closed, every string too.
    (g.complete() && nesting.closed() && in_string == 0).then_some(())
}
