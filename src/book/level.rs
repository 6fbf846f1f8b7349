//! The shared L2 book: price levels on two sides, each level keeping the venue's own text of
//! its price and size (checksums are computed over that text, never over floats), ordered by a
//! fixed-point key read from the text.

use std::collections::BTreeMap;

/// Longest number text kept (bytes); venues send at most ~25.
pub const MAX_NUMBER: usize = 40;

/// Decimal places of a price key: prices are ordered at 10⁻¹⁸ resolution.
const KEY_SCALE: i32 = 18;

/// A number as the venue wrote it, without its JSON quotes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text {
    len: u8,
    bytes: [u8; MAX_NUMBER],
}

impl Text {
    /// Keeps `s`.
    ///
    /// # Errors
    /// `s` is longer than [`MAX_NUMBER`] bytes.
    pub fn new(s: &str) -> Result<Self, NumberError> {
        if s.len() > MAX_NUMBER {
            return Err(NumberError::TooLong(s.len()));
        }
        let mut bytes = [0; MAX_NUMBER];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Self {
            len: s.len() as u8,
            bytes,
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Built from a `&str` of the same bytes.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A price or size the book cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not a decimal number.
    #[error("`{0}` is not a decimal number")]
    NotANumber(String),
    /// Out of the range the book orders (about ±1.7·10²⁰, 18 decimals).
    #[error("`{0}` is out of range")]
    OutOfRange(String),
    /// Longer than [`MAX_NUMBER`].
    #[error("a number of {0} characters (at most {MAX_NUMBER})")]
    TooLong(usize),
}

/// The ordering key of a decimal text (`123.45`, `-1`, `1.5e-8`): its value in units of
/// 10⁻¹⁸, digits beyond that dropped.
///
/// # Errors
/// Not a decimal number, or too large.
pub fn key(s: &str) -> Result<i128, NumberError> {
    let bad = || NumberError::NotANumber(s.to_owned());
    let b = s.as_bytes();
    let (negative, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut mantissa: i128 = 0;
    let mut digits = 0u32;
    let mut significant = 0u32;
    let mut fraction: i32 = 0;
    let mut dropped: i32 = 0;
    let mut seen_point = false;
    while i < b.len() {
        match b[i] {
            c @ b'0'..=b'9' => {
                digits += 1;
                if significant < 36 {
                    mantissa = mantissa * 10 + i128::from(c - b'0');
                    if mantissa != 0 {
                        significant += 1;
                    }
                    if seen_point {
                        fraction += 1;
                    }
                } else if !seen_point {
                    // Integer digits beyond what the mantissa holds still scale it.
                    dropped += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return Err(bad()),
        }
        i += 1;
    }
    if digits == 0 {
        return Err(bad());
    }
    let mut exponent: i32 = 0;
    if i < b.len() {
        let e = &s[i + 1..];
        exponent = e.parse().map_err(|_| bad())?;
        if !(-60..=60).contains(&exponent) {
            return Err(NumberError::OutOfRange(s.to_owned()));
        }
    }
    // value = mantissa · 10^(dropped + exponent − fraction); key = value · 10^KEY_SCALE.
    let shift = KEY_SCALE + dropped + exponent - fraction;
    let scaled = if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| mantissa.checked_mul(p))
            .ok_or_else(|| NumberError::OutOfRange(s.to_owned()))?
    } else if shift < -38 {
        0
    } else {
        mantissa / 10i128.pow((-shift) as u32)
    };
    Ok(if negative { -scaled } else { scaled })
}

/// Whether a size text means "no size" (the level goes): every digit is zero.
pub fn is_zero(s: &str) -> bool {
    let mantissa = s.split(['e', 'E']).next().unwrap_or(s);
    mantissa.bytes().any(|b| b.is_ascii_digit())
        && mantissa
            .bytes()
            .all(|b| matches!(b, b'0' | b'.' | b'-' | b'+'))
}

/// Which side of the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy orders, best (highest) first.
    Bid,
    /// Sell orders, best (lowest) first.
    Ask,
}

/// One price level as the venue wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// The price text.
    pub price: Text,
    /// The size text.
    pub size: Text,
}

/// What [`Book::set`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new level.
    Inserted,
    /// A level's size changed (or its text).
    Updated,
    /// A size of zero removed the level.
    Removed,
    /// A size of zero for a level the book does not have.
    RemovedMissing,
}

/// An L2 order book: the levels of each side by price.
#[derive(Clone, Debug, Default)]
pub struct Book {
    bids: BTreeMap<i128, Level>,
    asks: BTreeMap<i128, Level>,
    /// Level changes applied so far (set or removed), across clears.
    changes: u64,
}

impl PartialEq for Book {
    /// Books are equal when their levels are (the change count aside).
    fn eq(&self, other: &Self) -> bool {
        self.bids == other.bids && self.asks == other.asks
    }
}

impl Eq for Book {}

impl Book {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i128, Level> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Sets the level at `price` to `size`; a size of zero removes it.
    ///
    /// # Errors
    /// The price or size is not a usable number.
    pub fn set(&mut self, side: Side, price: &str, size: &str) -> Result<Change, NumberError> {
        let k = key(price)?;
        self.changes += 1;
        if is_zero(size) {
            return Ok(match self.side_mut(side).remove(&k) {
                Some(_) => Change::Removed,
                None => Change::RemovedMissing,
            });
        }
        let level = Level {
            price: Text::new(price)?,
            size: Text::new(size)?,
        };
        Ok(match self.side_mut(side).insert(k, level) {
            Some(_) => Change::Updated,
            None => Change::Inserted,
        })
    }

    /// Removes the level at `price`; false if there was none.
    ///
    /// # Errors
    /// The price is not a usable number.
    pub fn remove(&mut self, side: Side, price: &str) -> Result<bool, NumberError> {
        let k = key(price)?;
        self.changes += 1;
        Ok(self.side_mut(side).remove(&k).is_some())
    }

    /// Whether the book has a level at `price`.
    ///
    /// # Errors
    /// The price is not a usable number.
    pub fn has(&self, side: Side, price: &str) -> Result<bool, NumberError> {
        let k = key(price)?;
        Ok(match side {
            Side::Bid => self.bids.contains_key(&k),
            Side::Ask => self.asks.contains_key(&k),
        })
    }

    /// The bids, best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = &Level> {
        self.bids.values().rev()
    }

    /// The asks, best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = &Level> {
        self.asks.values()
    }

    /// One side, best first.
    pub fn side(&self, side: Side) -> Box<dyn Iterator<Item = &Level> + '_> {
        match side {
            Side::Bid => Box::new(self.bids()),
            Side::Ask => Box::new(self.asks()),
        }
    }

    /// Level changes applied so far (each set or removal; snapshots' levels included).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Levels on each side (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// The best bid and ask prices when the best bid is at or above the best ask.
    pub fn crossed(&self) -> Option<(Text, Text)> {
        let (bk, b) = self.bids.last_key_value()?;
        let (ak, a) = self.asks.first_key_value()?;
        (bk >= ak).then_some((b.price, a.price))
    }

    /// Keeps only the best `n` levels of each side (venues that say their book is `n` deep
    /// drop what falls below it without a message).
    pub fn truncate(&mut self, n: usize) {
        while self.bids.len() > n {
            self.bids.pop_first();
        }
        while self.asks.len() > n {
            self.asks.pop_last();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_decimal_texts_by_value() {
        let texts = [
            "-5",
            "0",
            "0.00000001",
            "1e-8",
            "0.1",
            "0.10",
            "1",
            "1.0",
            "9.99",
            "10",
            "1e3",
            "1000.5",
            "96000.1",
        ];
        let keys: Vec<i128> = texts.iter().map(|t| key(t).unwrap()).collect();
        for w in keys.windows(2) {
            assert!(w[0] <= w[1], "{keys:?}");
        }
        assert_eq!(key("0.1").unwrap(), key("0.10").unwrap());
        assert_eq!(key("1e-8").unwrap(), key("0.00000001").unwrap());
        assert_eq!(key("1000").unwrap(), key("1e3").unwrap());
        assert_eq!(key("1.5E+2").unwrap(), key("150").unwrap());
        for bad in ["", "abc", "1.2.3", "--1", "1e", "0x10", "."] {
            assert!(key(bad).is_err(), "{bad}");
        }
        assert!(matches!(key("1e50"), Err(NumberError::OutOfRange(_))));
    }

    #[test]
    fn zero_sizes_are_recognised_in_every_spelling() {
        for z in ["0", "0.0", "0.00000000", "0e0", "-0", "0E-8"] {
            assert!(is_zero(z), "{z}");
        }
        for nz in ["1", "0.00000001", "10", "1e-8", "", "."] {
            assert!(!is_zero(nz), "{nz}");
        }
    }

    #[test]
    fn a_book_keeps_levels_in_price_order_with_their_own_text() {
        let mut b = Book::new();
        assert_eq!(b.set(Side::Bid, "100.5", "1").unwrap(), Change::Inserted);
        assert_eq!(b.set(Side::Bid, "99", "2").unwrap(), Change::Inserted);
        assert_eq!(b.set(Side::Bid, "100.50", "3.0").unwrap(), Change::Updated);
        assert_eq!(b.set(Side::Ask, "101", "1").unwrap(), Change::Inserted);
        assert_eq!(b.set(Side::Ask, "100.9", "1").unwrap(), Change::Inserted);
        let bids: Vec<(&str, &str)> = b
            .bids()
            .map(|l| (l.price.as_str(), l.size.as_str()))
            .collect();
        assert_eq!(bids, [("100.50", "3.0"), ("99", "2")]);
        let asks: Vec<&str> = b.asks().map(|l| l.price.as_str()).collect();
        assert_eq!(asks, ["100.9", "101"]);
        assert_eq!(b.crossed(), None);
        assert_eq!(b.set(Side::Ask, "100.9", "0.000").unwrap(), Change::Removed);
        assert_eq!(
            b.set(Side::Ask, "100.9", "0").unwrap(),
            Change::RemovedMissing
        );
        b.set(Side::Ask, "100.5", "1").unwrap();
        assert!(b.crossed().is_some());
        b.truncate(1);
        assert_eq!(b.depth(), (1, 1));
        assert!(Text::new(&"1".repeat(MAX_NUMBER + 1)).is_err());
    }
}
