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

/// A unit test's skip, said like tests/common's (which unit tests cannot
/// reach): on stderr, in MINFTPD_SKIP_LOG for `make test`'s list, and a
/// failure under MINFTPD_NO_SKIPS=1 (CI). The caller returns right after.
pub fn skip(reason: &str) {
    let name = std::thread::current().name().unwrap_or("?").to_string();
    assert!(
        std::env::var("MINFTPD_NO_SKIPS").as_deref() != Ok("1"),
        "{name} would be skipped ({reason}), and MINFTPD_NO_SKIPS=1 makes that a failure"
    );
    eprintln!("SKIPPED: {name}: {reason}");
    if let Ok(path) = std::env::var("MINFTPD_SKIP_LOG") {
        let line = format!("{name}: {reason}\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| io::Write::write_all(&mut f, line.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot record the skip in {path}: {e}"));
    }
}
