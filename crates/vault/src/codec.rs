//! Byte-encoding helpers shared by the formats of this crate (see `docs/vault.md`).
//!
//! Rule used everywhere: a variable-length field is a 4-byte big-endian length followed by the
//! bytes; integers are big-endian and fixed width; decoding consumes exactly the input.

use crate::error::{Result, VaultError};

/// The most bytes an identifier (record id, patient id, resource type, member id, chain id) may
/// have. Identifiers must also be non-empty.
pub const MAX_ID_BYTES: usize = 256;

/// Checks an identifier is 1..=[`MAX_ID_BYTES`] bytes.
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<()> {
    let len = id.len();
    if len == 0 || len > MAX_ID_BYTES {
        return Err(VaultError::BadIdentifier {
            field,
            len,
            limit: MAX_ID_BYTES,
        });
    }
    Ok(())
}

/// Appends `u32be(len) ‖ bytes`. Callers bound `bytes` far below `u32::MAX`.
pub(crate) fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A cursor over untrusted bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }

    fn malformed(&self, reason: &'static str) -> VaultError {
        VaultError::Malformed {
            what: self.what,
            reason,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(self.malformed("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a length-prefixed field of `min..=max` bytes.
    pub(crate) fn lp(&mut self, min: usize, max: usize) -> Result<&'a [u8]> {
        let len = u32::from_be_bytes(self.array::<4>()?);
        let len = usize::try_from(len).map_err(|_| self.malformed("length out of range"))?;
        if len < min || len > max {
            return Err(self.malformed("length out of range"));
        }
        self.take(len)
    }

    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("trailing bytes"))
        }
    }
}

/// Lower-case hex, for error messages and ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix_is_u32_big_endian() {
        let mut out = Vec::new();
        put_lp(&mut out, b"abc");
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn reader_refuses_truncation_out_of_range_lengths_and_trailing_bytes() {
        let mut r = Reader::new(&[0, 0, 0, 5, 1, 2], "t");
        assert!(r.lp(0, 10).is_err());
        let mut r = Reader::new(&[0, 0, 0, 11], "t");
        assert!(r.lp(0, 10).is_err());
        let r = Reader::new(&[1], "t");
        assert!(r.finish().is_err());
    }

    #[test]
    fn identifiers_must_be_non_empty_and_bounded() {
        assert!(check_id("x", "").is_err());
        assert!(check_id("x", &"a".repeat(MAX_ID_BYTES)).is_ok());
        assert!(check_id("x", &"a".repeat(MAX_ID_BYTES + 1)).is_err());
    }
}
