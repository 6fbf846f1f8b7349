//! The grammar of a block's tokens, taken one by one: for a block with few tokens, cheaper
//! than the masks of the parent module (which keep the same state, [`Grammar`], so that one
//! block may take either way).

use super::Successor;
use super::nesting::Stack;
use crate::json::{literal, scan_number};

/// A number or literal starting at `p` (a scalar run's first byte) must be well formed
/// and end where whitespace, a separator, a closer or the input does.
#[inline(always)]
pub(super) fn scalar(b: &[u8], p: usize) -> Option<()> {
    let end = match b[p] {
        b'-' | b'0'..=b'9' => scan_number(b, p)?,
        b't' => literal(b, p, b"true")?,
        b'f' => literal(b, p, b"false")?,
        b'n' => literal(b, p, b"null")?,
        _ => return None,
    };
    // Not `at`: its 0 past the end must not let a NUL byte through.
    matches!(b.get(end), None | Some(b' ' | b'\t' | b',' | b']' | b'}')).then_some(())
}

/// What the grammar allows next, for the blocks whose few tokens are taken one by one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
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

/// Takes the token `c` at `p`, one by one: for a block with few tokens, cheaper than the
/// block's masks.
#[inline(always)]
pub(super) fn step(b: &[u8], p: usize, c: u8, want: Want, stack: &mut Stack) -> Option<Want> {
    match want {
        Want::Value | Want::ValueOrClose => match c {
            b'"' => Some(Want::Next),
            b'{' => {
                stack.push(1);
                Some(Want::KeyOrClose)
            }
            b'[' => {
                stack.push(0);
                Some(Want::ValueOrClose)
            }
            b']' if want == Want::ValueOrClose => {
                stack.pop(0)?;
                Some(Want::Next)
            }
            _ => {
                scalar(b, p)?;
                Some(Want::Next)
            }
        },
        Want::KeyOrClose | Want::Key => match c {
            b'"' => Some(Want::Colon),
            b'}' if want == Want::KeyOrClose => {
                stack.pop(1)?;
                Some(Want::Next)
            }
            _ => None,
        },
        Want::Colon => (c == b':').then_some(Want::Value),
        Want::Next => match c {
            b',' if stack.depth > 0 => Some(if stack.in_object() == 1 {
                Want::Key
            } else {
                Want::Value
            }),
            b']' => stack.pop(0).map(|()| Want::Next),
            b'}' => stack.pop(1).map(|()| Want::Next),
            _ => None,
        },
    }
}

/// The grammar's state between blocks: the next token after each class of token. Exactly one
/// carry is set, that of the last token's class (at the start, as after a colon).
pub(super) struct Grammar {
    pub(super) after_colon: Successor,
    pub(super) after_brace: Successor,
    pub(super) after_bracket: Successor,
    pub(super) after_object_comma: Successor,
    pub(super) after_array_comma: Successor,
    pub(super) after_key: Successor,
    pub(super) after_value: Successor,
}

impl Grammar {
    pub(super) fn new() -> Self {
        let mut g = Grammar {
            after_colon: Successor::default(),
            after_brace: Successor::default(),
            after_bracket: Successor::default(),
            after_object_comma: Successor::default(),
            after_array_comma: Successor::default(),
            after_key: Successor::default(),
            after_value: Successor::default(),
        };
        g.set(Want::Value);
        g
    }

    /// What the last token allows next.
    #[inline(always)]
    pub(super) fn want(&self) -> Want {
        if self.after_value.carry == 1 {
            Want::Next
        } else if self.after_key.carry == 1 {
            Want::Colon
        } else if self.after_brace.carry == 1 {
            Want::KeyOrClose
        } else if self.after_bracket.carry == 1 {
            Want::ValueOrClose
        } else if self.after_object_comma.carry == 1 {
            Want::Key
        } else {
            Want::Value
        }
    }

    /// The state after a last token that allows `want` next.
    #[inline(always)]
    pub(super) fn set(&mut self, want: Want) {
        let is = |w: Want| u64::from(want == w);
        self.after_colon.carry = is(Want::Value);
        self.after_brace.carry = is(Want::KeyOrClose);
        self.after_bracket.carry = is(Want::ValueOrClose);
        self.after_object_comma.carry = is(Want::Key);
        // After a comma in an array the masks allow what they allow after a colon.
        self.after_array_comma.carry = 0;
        self.after_key.carry = is(Want::Colon);
        self.after_value.carry = is(Want::Next);
    }

    /// The last token was a value.
    pub(super) fn complete(&self) -> bool {
        self.after_value.carry == 1
    }
}
