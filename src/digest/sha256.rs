//! SHA-256 (FIPS 180-4), for HASH. Input is file bytes a client may have uploaded;
//! the state is fixed-size and each block costs the same, whatever the bytes.

// SHA-256's round constants and initial state are the upper halves of SHA-512's
// (both are fractional parts of roots of the first primes): one table serves both.
use super::sha512::{H as H512, K as K512};

pub(super) fn initial() -> [u64; 8] {
    H512.map(|h| h >> 32)
}

/// One 64-byte block; the state words are the low halves of `state`.
pub(super) fn compress(state: &mut [u64; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (x, word) in w.iter_mut().zip(block.chunks_exact(4)) {
        *x = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let mut v = state.map(|x| x as u32);
    for i in 0..64 {
        let [a, b, c, d, e, f, g, h] = v;
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add((K512[i] >> 32) as u32)
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        v = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
    }
    for (s, x) in state.iter_mut().zip(v) {
        *s = u64::from((*s as u32).wrapping_add(x));
    }
}
