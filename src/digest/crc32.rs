//! CRC-32 (IEEE 802.3, as zlib and cksfv compute it), for HASH; a checksum, not a
//! digest. Input is file bytes a client may have uploaded; a table of 16 words, half
//! a byte at a time: a sixteenth of the usual table's size, fast enough beside disk reads.

const TABLE: [u32; 16] = table();

const fn table() -> [u32; 16] {
    let mut table = [0u32; 16];
    let mut n = 0;
    while n < 16 {
        let mut c = n as u32;
        let mut bit = 0;
        while bit < 4 {
            c = if c & 1 != 0 {
                0xedb88320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// Adds `data` to a running CRC (kept inverted, as the algorithm starts at !0).
pub(super) fn update(crc: u32, data: &[u8]) -> u32 {
    let mut c = crc;
    for &byte in data {
        c ^= u32::from(byte);
        c = TABLE[(c & 15) as usize] ^ (c >> 4);
        c = TABLE[(c & 15) as usize] ^ (c >> 4);
    }
    c
}
