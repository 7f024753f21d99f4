//! Hostile clients: each test asserts the safe outcome, then that a fresh,
//! well-behaved client is still served.

use crate::common::*;

mod data;
mod limits;
mod paths;

/// A fresh client logs in and downloads `inside.txt`.
fn still_serves(server: &Server) {
    assert_eq!(anon_when_served(server).retr("/inside.txt"), b"inside");
}

fn hostile_root() -> TempDir {
    let root = TempDir::new("hostile");
    root.write("inside.txt", b"inside");
    root
}
