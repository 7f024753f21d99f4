//! Files and fixtures: a fresh temporary root removed on drop, test data,
//! users files with real crypt(3) hashes, and what the tests read back from
//! the disk (modes, times, leftover temporary files); a tmpfs mounted for one
//! test.

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed on drop. When the
/// tests run as root the server drops to an unprivileged account, so the tree
/// is made writable for it.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("minftpd-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        open_up(&path, 0o777);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file (and its parent directories) below the directory.
    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            self.mkdir_all(parent);
        }
        std::fs::write(&path, data).unwrap();
        open_up(&path, 0o666);
        path
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel);
        self.mkdir_all(&path);
        path
    }

    fn mkdir_all(&self, path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        let mut p = path;
        while p.starts_with(&self.0) && p != self.0 {
            open_up(p, 0o777);
            p = p.parent().unwrap();
        }
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.0.join(rel)).unwrap()
    }

    /// Names in a directory below this one, sorted.
    pub fn names(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.0.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_up(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Bytes that are not all the same, so that offsets and order matter.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A users file with `openssl passwd -6` hashes: (name, password, home, access).
pub fn users_file(dir: &TempDir, users: &[(&str, &str, &str, &str)]) -> PathBuf {
    let mut text = String::from("# test accounts\n");
    for (name, pass, home, access) in users {
        let out = run("openssl", &["passwd", "-6", pass]);
        let hash = String::from_utf8(out.stdout).unwrap();
        text.push_str(&format!("{name}:{}:{home}:{access}\n", hash.trim()));
    }
    let path = dir.path().join("users");
    std::fs::write(&path, text).unwrap();
    path
}

/// Asserts that no upload left a temporary (dot) file in `dir` of the root.
pub fn assert_no_temp_files(root: &TempDir, dir: &str) {
    let leftovers: Vec<String> = root
        .names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Permission bits (with setuid, setgid, sticky) of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Modification time of a file, in seconds since the epoch.
pub fn mtime_secs(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl TempDir {
    /// The directory's own name (its last path component).
    pub fn name(&self) -> &str {
        self.0.file_name().unwrap().to_str().unwrap()
    }
}

/// A tmpfs mounted with `options` on a directory of a server's root, for one
/// test (as root). The guard exists before the mount, so a failure anywhere
/// after it still unmounts; declared before the server, it outlives it. The
/// root's TempDir cannot remove the root while a tmpfs is mounted in it, so
/// the guard removes the root again once unmounted.
pub struct Tmpfs {
    mountpoint: PathBuf,
    root: PathBuf,
}

impl Tmpfs {
    /// Mounts the tmpfs on `rel` below `root`; None when that fails.
    pub fn mount(root: &TempDir, rel: &str, options: &str) -> Option<Tmpfs> {
        let mounted = Tmpfs {
            mountpoint: root.mkdir(rel),
            root: root.path().to_path_buf(),
        };
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&mounted.mountpoint)
            .status()
            .is_ok_and(|s| s.success())
            .then_some(mounted)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Nothing mounted (mount failed): umount fails harmlessly.
        let _ = Command::new("umount")
            .arg(&self.mountpoint)
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
