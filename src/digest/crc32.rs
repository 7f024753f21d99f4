//! CRC-32 (IEEE 802.3, as zlib and cksfv compute it), for HASH; a checksum, not a
//! digest. Input is file bytes a client may have uploaded; a table of 16 words, half
//! a byte at a time: a sixteenth of the usual table's size, fast enough beside disk reads.

use super::Hasher;

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

pub struct Crc32(u32);

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(!0)
    }
}

impl Hasher for Crc32 {
    fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for &byte in data {
            c ^= u32::from(byte);
            c = TABLE[(c & 15) as usize] ^ (c >> 4);
            c = TABLE[(c & 15) as usize] ^ (c >> 4);
        }
        self.0 = c;
    }

    fn finish(&mut self) -> Vec<u8> {
        (!self.0).to_be_bytes().to_vec()
    }
}
