//! HASH and OPTS HASH (draft-bryan-ftp-hash): a digest of a file, so a client can verify
//! an upload without downloading it. The client names the file (opened and checked as for
//! RETR) and the algorithm (one of five); the work is bounded by the file's size when
//! opened, paced by the rate limit, and the control connection is watched meanwhile, so
//! ABOR or a hang-up ends it.

use super::{r, show, Reply, Session};
use crate::data::{self, Failure};
use crate::digest::{Algo, Digest};
use crate::reply::*;
use std::fs::File;
use std::io::{self, Read};

/// FEAT's HASH line for each choice, in the order of `Algo::ALL`.
const HASH_FEATURES: [&str; 5] = [
    "\nHASH SHA-256*;SHA-512;SHA-1;MD5;CRC32",
    "\nHASH SHA-256;SHA-512*;SHA-1;MD5;CRC32",
    "\nHASH SHA-256;SHA-512;SHA-1*;MD5;CRC32",
    "\nHASH SHA-256;SHA-512;SHA-1;MD5*;CRC32",
    "\nHASH SHA-256;SHA-512;SHA-1;MD5;CRC32*",
];

/// What a hashing read takes at once.
const HASH_BUFFER: usize = 64 * 1024;

impl Session<'_> {
    /// HASH: `213 ALGO 0-SIZE HEX path`, the range being the bytes hashed.
    pub(super) fn hash(&mut self, arg: &[u8]) -> io::Result<Reply> {
        if arg.is_empty() {
            return Ok(r(BAD_ARGUMENT, "HASH needs a file name."));
        }
        let vpath = self.resolve(arg);
        let (file, size) = match self.open_to_read(&vpath) {
            Ok(opened) => opened,
            Err(reply) => return Ok(reply),
        };
        let algo = self.hash_algo;
        let mut digest = algo.start();
        let rate = self.rate_limit();
        let mut watch = data::Watch::new(&mut self.ctl, self.ctx.data.data_timeout, rate);
        // Bytes appended while hashing are not read: the work is known up front.
        let outcome = digest_file(file.take(size), &mut digest, &mut watch);
        Ok(match outcome {
            Ok(hashed) => {
                let hex = digest.finish_hex();
                r(
                    FILE_STATUS,
                    format!("{} 0-{hashed} {hex} {}", algo.name(), show(arg)),
                )
            }
            Err((Failure::Aborted, _)) => {
                self.send(r(TRANSFER_ABORTED, "HASH aborted."))?;
                r(TRANSFER_DONE, "ABOR successful.")
            }
            Err((Failure::Network(e), _)) => return Err(e),
            Err((Failure::File(e), _)) => {
                log::info!("{}: HASH read failed: {e}", self.peer);
                r(LOCAL_ERROR, "Local error in processing.")
            }
        })
    }

    /// OPTS HASH [ALGO]: shows, or selects, the algorithm HASH uses.
    pub(super) fn opts_hash(&mut self, value: &str) -> Reply {
        if value.trim().is_empty() {
            return r(OK, self.hash_algo.name());
        }
        match Algo::parse(value) {
            Some(algo) => {
                self.hash_algo = algo;
                r(OK, algo.name())
            }
            None => r(NOT_FOR_PARAMETER, "Unknown algorithm."),
        }
    }

    /// FEAT with its HASH line, the chosen algorithm starred, in its
    /// alphabetical place (before MDTM).
    pub(super) fn with_hash_feature(&self, mut features: String) -> String {
        let at = features.find("\nMDTM").unwrap_or(0);
        features.insert_str(at, HASH_FEATURES[self.hash_algo as usize]);
        features
    }
}

/// Feeds the file to the digest, a slice at a time, under the watch; the
/// number of bytes hashed.
fn digest_file(
    mut file: io::Take<File>,
    digest: &mut Digest,
    watch: &mut data::Watch,
) -> data::Outcome {
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut hashed = 0u64;
    loop {
        let want = watch.slice(buf.len());
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Ok(hashed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((Failure::File(e), hashed)),
        };
        digest.update(&buf[..n]);
        hashed += n as u64;
        watch.step(n, hashed)?;
    }
}
