//! The nesting of brackets across blocks: which container each position is in, and that
//! every closer closes its own kind.

use super::{Classes, Successor};
use crate::json::{Ctx, Nest};

/// Which container a position is in, as masks of the block: the innermost open one is an
/// object, or none is open (the top level).
pub(super) struct Contexts {
    pub(super) object: u64,
    pub(super) top: u64,
}

/// The open containers: a bit per level (1 = object), the first 64 levels in a register,
/// deeper ones in a [`Nest`] (only documents nested deeper than 64 levels touch it).
pub(super) struct Stack {
    pub(super) depth: usize,
    pub(super) low: u64,
    pub(super) deep: Nest,
}

impl Default for Stack {
    fn default() -> Self {
        Stack {
            depth: 0,
            low: 0,
            deep: Nest::new(),
        }
    }
}

impl Stack {
    #[inline(always)]
    pub(super) fn push(&mut self, object: u64) {
        if self.depth < 64 {
            self.low = (self.low & !(1 << self.depth)) | (object << self.depth);
        } else {
            self.push_deep(object);
        }
        self.depth += 1;
    }

    #[cold]
    fn push_deep(&mut self, object: u64) {
        self.deep
            .push(if object == 1 { Ctx::Obj } else { Ctx::Arr });
    }

    /// Closes the innermost container if it is of the kind given (1 = object).
    #[inline(always)]
    pub(super) fn pop(&mut self, object: u64) -> Option<()> {
        let d = self.depth.checked_sub(1)?;
        if d < 64 {
            (self.low >> d & 1 == object).then_some(())?;
        } else {
            self.pop_deep(object)?;
        }
        self.depth = d;
        Some(())
    }

    #[cold]
    fn pop_deep(&mut self, object: u64) -> Option<()> {
        let kind = if object == 1 { Ctx::Obj } else { Ctx::Arr };
        (self.deep.top == kind).then(|| self.deep.pop())
    }

    /// The innermost container is an object: 1 or 0.
    #[inline(always)]
    pub(super) fn in_object(&self) -> u64 {
        match self.depth {
            0 => 0,
            d if d <= 64 => self.low >> (d - 1) & 1,
            _ => u64::from(self.deep.top == Ctx::Obj),
        }
    }
}

/// The nesting, checked across blocks.
///
/// Most brackets come in pairs with no other bracket between them (`[price,size]`, `{..}`
/// of scalars): such a pair leaves the nesting as it found it, so it is checked (same
/// kind) and given its context with masks. Only the other brackets are walked one by one
/// on the stack: openers followed by another opener, closers that follow a closer.
/// An opener that is a block's last bracket waits for the next block to know which it is.
#[derive(Default)]
pub(super) struct Nesting {
    pub(super) stack: Stack,
    /// The next bracket after each `{`, and after each `[`.
    pub(super) after_brace: Successor,
    pub(super) after_bracket: Successor,
}

impl Nesting {
    /// Takes the block's brackets (`}` `]` must close their own kind) and returns the
    /// context of every position.
    #[inline(always)]
    pub(super) fn block(
        &mut self,
        c: &Classes,
        brackets: u64,
        prefix_xor: impl Fn(u64) -> u64,
    ) -> Option<Contexts> {
        let opens = brackets & !c.bit2;
        let closes = brackets & c.bit2;
        let braces = c.bit5;
        let fill = |bit: u64| 0u64.wrapping_sub(bit);
        // An opener from an earlier block still waiting for its next bracket.
        let (waiting_brace, waiting_bracket) = (self.after_brace.carry, self.after_bracket.carry);
        let not_brackets = !brackets;
        let after_braces = self.after_brace.of(opens & braces, not_brackets);
        let after_brackets = self.after_bracket.of(opens & !braces, not_brackets);
        if (after_braces & closes & !braces) | (after_brackets & closes & braces) != 0 {
            // `{]` or `[}`.
            return None;
        }
        // From each opener up to its next bracket: the context is the opener's kind.
        let in_brace = prefix_xor((opens & braces) ^ after_braces) ^ fill(waiting_brace);
        let in_bracket = prefix_xor((opens & !braces) ^ after_brackets) ^ fill(waiting_bracket);
        let after_opener = in_brace | in_bracket;

        let first = brackets & brackets.wrapping_neg();
        if first & opens != 0 && waiting_brace | waiting_bracket != 0 {
            // The waiting opener is followed by another: it stays open.
            self.stack.push(waiting_brace);
        }
        let paired_closes = (after_braces | after_brackets) & closes;
        let opener_after_opener = (after_braces | after_brackets) & opens;
        let mut walk = closes & !paired_closes;
        if opener_after_opener != 0 {
            walk |= predecessor(opener_after_opener, brackets);
        }
        // Past a closer the context is the stack's: it changes only where the walk does.
        let stack = &mut self.stack;
        let mut object = stack.in_object();
        let mut top = u64::from(stack.depth == 0);
        let (object_before, top_before) = (fill(object), fill(top));
        let (object, top) = if walk == 0 {
            (object_before, top_before)
        } else {
            let (mut object_flips, mut top_flips) = (0u64, 0u64);
            while walk != 0 {
                let p = walk.trailing_zeros();
                walk &= walk - 1;
                let kind = braces >> p & 1;
                if c.bit2 >> p & 1 == 0 {
                    stack.push(kind);
                } else {
                    stack.pop(kind)?;
                }
                let (now_object, now_top) = (stack.in_object(), u64::from(stack.depth == 0));
                object_flips |= (object ^ now_object) << p;
                top_flips |= (top ^ now_top) << p;
                (object, top) = (now_object, now_top);
            }
            (
                prefix_xor(object_flips) ^ object_before,
                prefix_xor(top_flips) ^ top_before,
            )
        };
        Some(Contexts {
            object: in_brace | (object & !after_opener),
            top: top & !after_opener,
        })
    }

    /// Opens the container of an opener still waiting for its next bracket, before the
    /// brackets are taken one by one.
    #[inline(always)]
    pub(super) fn push_waiting(&mut self) {
        if self.after_brace.carry | self.after_bracket.carry != 0 {
            self.stack.push(self.after_brace.carry);
            self.after_brace.carry = 0;
            self.after_bracket.carry = 0;
        }
    }

    /// No bracket is open, nor waiting.
    pub(super) fn closed(&self) -> bool {
        self.stack.depth == 0 && self.after_brace.carry | self.after_bracket.carry == 0
    }
}

/// The token before each of `class` among `tokens`, within the block: the successor
/// in the bit-reversed block.
#[inline(always)]
fn predecessor(class: u64, tokens: u64) -> u64 {
    let reversed = Successor::default().of(class.reverse_bits(), !tokens.reverse_bits());
    reversed.reverse_bits()
}
