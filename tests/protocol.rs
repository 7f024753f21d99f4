//! Exact replies to the command set, spoken through the small test client.

use crate::common::*;

mod files;
mod session;
mod transfers;

fn served() -> Server {
    let root = TempDir::new("proto");
    root.write("a.txt", b"alpha\n");
    root.write(".hidden", b"h");
    root.write("dir/inner.txt", b"inner");
    Server::start(root, &["--anonymous"])
}

/// A server whose whole root a named user `rw` (password `pw`) may write.
fn writable(root: TempDir) -> (Server, TempDir) {
    rw_server(root, "pw", &[])
}

fn set_mtime(path: &std::path::Path, unix_secs: u64) {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}
