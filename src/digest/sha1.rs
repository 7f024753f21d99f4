//! SHA-1 (FIPS 180-4), for HASH, where clients still ask for it; not for security.
//! Input is file bytes a client may have uploaded; the state is fixed-size.

pub(super) const INITIAL: [u64; 8] = [
    0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0, 0, 0, 0,
];

/// One 64-byte block; the five state words are the low halves of `state`.
pub(super) fn compress(state: &mut [u64; 8], block: &[u8]) {
    let mut w = [0u32; 80];
    for (x, word) in w.iter_mut().zip(block.chunks_exact(4)) {
        *x = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e, ..] = state.map(|x| x as u32);
    for (i, word) in w.iter().enumerate() {
        let (f, k) = match i / 20 {
            0 => ((b & c) | (!b & d), 0x5a827999),
            1 => (b ^ c ^ d, 0x6ed9eba1),
            2 => ((b & c) | (b & d) | (c & d), 0x8f1bbcdc),
            _ => (b ^ c ^ d, 0xca62c1d6),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(*word);
        (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
    }
    for (s, x) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = u64::from((*s as u32).wrapping_add(x));
    }
}
