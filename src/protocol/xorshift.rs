//! The unit tests' random source: a deterministic xorshift, so that a
//! failing round is the same round on every run and every machine.

/// A generator seeded with `seed` (not 0): `next(n)` is in `0..n`.
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}
