//! Decimal text of the numbers in every line (receive time, sequence number), kept from one
//! line to the next.

/// The decimal text of the number last asked for, kept for the next line: lines of a batch
/// mostly share their receive time (the connection reads the clock once per 16 frames), and
/// their sequence numbers count up by one. Formatting a 19-digit timestamp afresh was a fifth
/// of the writer's time per line.
pub(super) struct Decimal {
    value: u64,
    /// The digits, right-aligned: `digits[start..]`; empty before the first use.
    digits: [u8; 20],
    start: usize,
}

impl Default for Decimal {
    fn default() -> Self {
        Self {
            value: 0,
            digits: [0; 20],
            start: 20,
        }
    }
}

impl Decimal {
    pub(super) fn of(&mut self, value: u64) -> &[u8] {
        let empty = self.start == self.digits.len();
        if empty || value != self.value {
            if !empty && self.value.checked_add(1) == Some(value) {
                self.increment();
            } else {
                let mut text = itoa::Buffer::new();
                let text = text.format(value).as_bytes();
                self.start = self.digits.len() - text.len();
                self.digits[self.start..].copy_from_slice(text);
            }
            self.value = value;
        }
        &self.digits[self.start..]
    }

    /// Adds one to the digits in place, carrying as far as needed.
    pub(super) fn increment(&mut self) {
        for i in (self.start..self.digits.len()).rev() {
            if self.digits[i] == b'9' {
                self.digits[i] = b'0';
            } else {
                self.digits[i] += 1;
                return;
            }
        }
        // All nines: one digit more (value + 1 fits in u64, so there is room for it).
        self.start -= 1;
        self.digits[self.start] = b'1';
    }
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    #[test]
    fn decimal_text_matches_itoa_when_reused_counted_up_or_jumping() {
        let mut d = Decimal::default();
        let check = |d: &mut Decimal, v: u64| {
            assert_eq!(d.of(v), itoa::Buffer::new().format(v).as_bytes(), "{v}");
        };
        for v in (0..1_200).chain(99_990..100_010) {
            check(&mut d, v);
            check(&mut d, v); // the same value again
        }
        for v in [
            9_999_999_999_999_999_999,
            10_000_000_000_000_000_000,
            u64::MAX - 1,
            u64::MAX,
            0,
            1_795_544_092_206_446_315,
            1_795_544_092_206_446_316,
            7,
            8,
        ] {
            check(&mut d, v);
        }
    }
}
