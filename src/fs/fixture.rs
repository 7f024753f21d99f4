//! Fixtures for the fs unit tests: a scratch tree whose root holds symlinks
//! planted the way a hostile user would (to `/`, `..` out of the root, an
//! absolute path outside, a loop) beside a secret file outside the root.

use super::Root;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A scratch directory removed when dropped, also when its test panics
/// (a failed assertion unwinds through it), so failures leave nothing behind.
pub struct Scratch(PathBuf);

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("minftpd-fs-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir = Scratch(dir);
    std::fs::create_dir_all(dir.join("root/sub")).unwrap();
    std::fs::write(dir.join("secret"), b"outside").unwrap();
    std::fs::write(dir.join("root/sub/inside"), b"inside").unwrap();
    symlink("/", dir.join("root/to-slash")).unwrap();
    symlink("../../secret", dir.join("root/sub/up")).unwrap();
    symlink(dir.join("secret"), dir.join("root/abs-secret")).unwrap();
    symlink("sub/inside", dir.join("root/rel-inside")).unwrap();
    symlink("loop", dir.join("root/loop")).unwrap();
    dir
}

fn read(root: &Root, path: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    root.open_file(path)?.0.read_to_end(&mut out)?;
    Ok(out)
}

pub fn symlinks_stay_inside(root: &Root) {
    assert_eq!(read(root, b"/rel-inside").unwrap(), b"inside");
    // An absolute link to "/" means the root itself: /to-slash/sub/inside is inside.
    assert_eq!(read(root, b"/to-slash/sub/inside").unwrap(), b"inside");
    assert!(read(root, b"/to-slash/secret").is_err());
    assert!(read(root, b"/sub/up").is_err());
    assert!(read(root, b"/abs-secret").is_err());
    assert!(read(root, b"/loop").is_err());
    assert!(read(root, b"/to-slash/etc/passwd").is_err());
    assert!(root.stat(b"/sub").unwrap().is_dir());
}
