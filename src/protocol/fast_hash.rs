//! A fast, unkeyed hash for the server's two lookup tables.
//!
//! Every request but `auth` looks its token up in the sessions map, and
//! every `send` its recipient in the user directory. Neither table's keys are
//! chosen by a client: tokens are drawn at random by the server, user names
//! come from the server's users file, and a client can only look keys up,
//! not place them. Collisions, and so hash flooding, need placed keys, so
//! these maps do without the keyed, flood-resistant SipHash that `HashMap`
//! uses by default; this hash takes eight bytes a step and costs a fraction
//! of it on a 36-byte token.

use std::hash::{BuildHasherDefault, Hasher};

/// The hasher; see the module documentation for why it may be unkeyed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

/// Makes a [`FastHasher`] for a `HashMap`.
pub(crate) type BuildFastHasher = BuildHasherDefault<FastHasher>;

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut mix = |word: u64| self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            mix(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
    }

    /// Hashing a `str` ends with one marker byte (0xff), the same for every
    /// key: folding it in without a multiply saves a step of every lookup.
    fn write_u8(&mut self, byte: u8) {
        self.0 ^= u64::from(byte);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves its best bits at the top; the table indexes
        // by the low ones.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn tokens_that_differ_in_one_byte_spread_over_the_low_bits() {
        let build = BuildFastHasher::default();
        let token = *b"00000000-0000-4000-8000-000000000000";
        let mut low_bits = std::collections::HashSet::new();
        for i in 0..token.len() {
            let mut other = token;
            other[i] ^= 1;
            low_bits.insert(build.hash_one(other) & 0xff);
        }
        // 36 one-bit changes land in (nearly) as many of 256 buckets.
        assert!(low_bits.len() >= 30, "{}", low_bits.len());
    }

    #[test]
    fn the_length_of_a_short_tail_counts() {
        let hash = |bytes: &[u8]| {
            let mut hasher = FastHasher::default();
            hasher.write(bytes);
            hasher.finish()
        };
        // Zero-padded to eight bytes, both tails would be the same word.
        assert_ne!(hash(b"ab\0"), hash(b"ab"));
    }
}
