//! The digests HASH offers (draft-bryan-ftp-hash), written here so the default build
//! needs no crypto dependency: SHA-256, SHA-512, SHA-1, MD5 and CRC-32. A client
//! chooses the algorithm (one of these five names) and the file; every algorithm keeps
//! a fixed-size state, so only the file's length decides the work, and the caller paces it.

mod crc32;
mod md5;
mod sha1;
mod sha256;
mod sha512;

/// An algorithm HASH can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Sha256,
    Sha512,
    Sha1,
    Md5,
    Crc32,
}

impl Algo {
    /// All of them, the default first, in the order FEAT lists them.
    pub const ALL: [Algo; 5] = [
        Algo::Sha256,
        Algo::Sha512,
        Algo::Sha1,
        Algo::Md5,
        Algo::Crc32,
    ];

    /// The name the draft gives it.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "SHA-256",
            Algo::Sha512 => "SHA-512",
            Algo::Sha1 => "SHA-1",
            Algo::Md5 => "MD5",
            Algo::Crc32 => "CRC32",
        }
    }

    /// The algorithm a client names, in any case.
    pub fn parse(name: &str) -> Option<Algo> {
        Algo::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn start(self) -> Digest {
        let (state, block) = match self {
            Algo::Sha256 => (sha256::initial(), 64),
            Algo::Sha512 => (sha512::H, 128),
            Algo::Sha1 => (sha1::INITIAL, 64),
            Algo::Md5 => (md5::INITIAL, 64),
            Algo::Crc32 => ([u64::from(u32::MAX), 0, 0, 0, 0, 0, 0, 0], 64),
        };
        Digest {
            algo: self,
            state,
            blocks: Blocks::new(block),
        }
    }

    /// SHA-1, SHA-2 and MD5 compress whole blocks; CRC-32 has none.
    fn compress(self) -> fn(&mut [u64; 8], &[u8]) {
        match self {
            Algo::Sha256 => sha256::compress,
            Algo::Sha512 => sha512::compress,
            Algo::Sha1 => sha1::compress,
            _ => md5::compress,
        }
    }
}

/// A digest being computed: one type for every algorithm, whose state words
/// (32-bit ones in the low halves) live in eight u64, so that one copy of the
/// buffering code serves all and no table of function pointers is needed.
pub struct Digest {
    algo: Algo,
    state: [u64; 8],
    blocks: Blocks,
}

impl Digest {
    pub fn update(&mut self, data: &[u8]) {
        if self.algo == Algo::Crc32 {
            self.state[0] = u64::from(crc32::update(self.state[0] as u32, data));
        } else {
            self.blocks
                .update(data, &mut self.state, self.algo.compress());
        }
    }

    /// The digest in lower-case hex, as HASH replies with it.
    pub fn finish_hex(mut self) -> String {
        // Words in the output, their width in bytes, and their byte order.
        let (words, width, big_endian) = match self.algo {
            Algo::Sha256 => (8, 4, true),
            Algo::Sha512 => (8, 8, true),
            Algo::Sha1 => (5, 4, true),
            Algo::Md5 => (4, 4, false),
            Algo::Crc32 => (1, 4, true),
        };
        if self.algo == Algo::Crc32 {
            self.state[0] ^= u64::from(u32::MAX);
        } else {
            let compress = self.algo.compress();
            self.blocks.pad(big_endian, &mut self.state, compress);
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::new();
        for word in &self.state[..words] {
            let bytes = word.to_be_bytes();
            let mut bytes = bytes[8 - width..].to_vec();
            if !big_endian {
                bytes.reverse();
            }
            for byte in bytes {
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            }
        }
        out
    }
}

/// The block buffering and padding SHA-1, SHA-2 and MD5 share: whole blocks of
/// `size` bytes (64, or 128 for SHA-512) go to `compress`; the end is 0x80,
/// zeros, and the length in bits in the last 8 bytes (SHA-512's 16-byte length
/// has its upper half zero below 2^61 bytes).
struct Blocks {
    buf: [u8; 128],
    size: usize,
    len: usize,
    total: u64,
}

type Compress = fn(&mut [u64; 8], &[u8]);

impl Blocks {
    fn new(size: usize) -> Self {
        Blocks {
            buf: [0; 128],
            size,
            len: 0,
            total: 0,
        }
    }

    fn update(&mut self, mut data: &[u8], state: &mut [u64; 8], compress: Compress) {
        self.total = self.total.wrapping_add(data.len() as u64);
        while let Some((&byte, rest)) = data.split_first() {
            // Whole blocks straight from the input; the rest through the buffer.
            if self.len == 0 && data.len() >= self.size {
                let (block, rest) = data.split_at(self.size);
                compress(state, block);
                data = rest;
                continue;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = byte;
            }
            self.len += 1;
            data = rest;
            if self.len == self.size {
                compress(state, self.buf.get(..self.size).unwrap_or_default());
                self.len = 0;
            }
        }
    }

    fn pad(&mut self, big_endian: bool, state: &mut [u64; 8], compress: Compress) {
        let bits = self.total.wrapping_mul(8);
        self.update(&[0x80], state, compress);
        while self.len != self.size - 8 {
            self.update(&[0], state, compress);
        }
        let len = if big_endian {
            bits.to_be_bytes()
        } else {
            bits.to_le_bytes()
        };
        self.update(&len, state, compress);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(algo: Algo, parts: &[&[u8]]) -> String {
        let mut digest = algo.start();
        for part in parts {
            digest.update(part);
        }
        digest.finish_hex()
    }

    /// The FIPS 180 and RFC 1321 examples, and CRC-32's check value.
    #[test]
    fn standard_test_vectors() {
        let abc: &[&[u8]] = &[b"abc"];
        let empty: &[&[u8]] = &[];
        let two_blocks: &[&[u8]] = &[b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"];
        let cases = [
            (Algo::Sha256, abc, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (Algo::Sha256, empty, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (Algo::Sha256, two_blocks, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            (Algo::Sha512, abc, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
            (Algo::Sha512, empty, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
            (Algo::Sha1, abc, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (Algo::Sha1, two_blocks, "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
            (Algo::Md5, empty, "d41d8cd98f00b204e9800998ecf8427e"),
            (Algo::Md5, abc, "900150983cd24fb0d6963f7d28e17f72"),
            (Algo::Md5, &[b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"], "57edf4a22be3c955ac49da2e2107b67a"),
            (Algo::Crc32, &[b"123456789"], "cbf43926"),
            (Algo::Crc32, empty, "00000000"),
        ];
        for (algo, parts, want) in cases {
            assert_eq!(hex(algo, parts), want, "{algo:?} of {parts:?}");
        }
    }

    #[test]
    fn a_million_a_in_uneven_pieces() {
        let piece = [b'a'; 997];
        let mut sha256 = Algo::Sha256.start();
        let mut sha512 = Algo::Sha512.start();
        let mut left = 1_000_000;
        while left > 0 {
            let n = left.min(piece.len());
            sha256.update(&piece[..n]);
            sha512.update(&piece[..n]);
            left -= n;
        }
        assert_eq!(
            sha256.finish_hex(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        assert_eq!(sha512.finish_hex(), "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
    }

    #[test]
    fn names_parse_in_any_case() {
        assert_eq!(Algo::parse("sha-256"), Some(Algo::Sha256));
        assert_eq!(Algo::parse("CRC32"), Some(Algo::Crc32));
        assert_eq!(Algo::parse("SHA256"), None);
        for algo in Algo::ALL {
            assert_eq!(Algo::parse(algo.name()), Some(algo));
        }
    }
}
