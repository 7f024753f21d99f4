//! Uploads through a hidden temporary file beside the target, renamed over it
//! only by `commit`; an exclusive commit (anonymous uploads, STOU) never
//! replaces a file: link(2), else renameat2(RENAME_NOREPLACE), else an
//! `O_EXCL` create of the target and a copy.
//!
//! A hostile client controls the target path (resolved like every other, see
//! resolve.rs) and the bytes. The temporary is created
//! `O_CREAT|O_EXCL|O_NOFOLLOW` (never a planted symlink or FIFO), a name clash
//! is retried at most 100 times, and a target that is a directory is refused.

use super::{checked, Root, Want};
use crate::sys;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// A new upload: written under a hidden temporary name beside its target and
/// renamed over it only by `commit`, so a failed upload never replaces a good
/// file. Dropped without `commit`, the temporary file is removed.
pub struct Upload {
    pub file: File,
    dir: OwnedFd,
    temp: Vec<u8>,
    target: Vec<u8>,
    exclusive: bool,
    committed: bool,
}

/// Prefix of temporary upload names; listings hide them.
pub const TEMP_PREFIX: &[u8] = b".minftpd-upload.";

impl Upload {
    /// Creates the temporary file beside `vpath`. `exclusive` makes `commit`
    /// refuse to replace an existing target (anonymous uploads, STOU).
    pub fn create(root: &Root, vpath: &[u8], exclusive: bool, mode: u32) -> io::Result<Upload> {
        let (dir, target) = root.parent(vpath)?;
        if let Ok(st) = sys::lstatat(dir.as_fd(), &target) {
            if st.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::EISDIR));
            }
        }
        let mut attempt = 0u32;
        loop {
            let temp = temp_name(attempt);
            // O_EXCL|O_NOFOLLOW: always a new regular file, so O_NONBLOCK is
            // only for uniformity with every other open. O_RDWR: the last
            // fallback of an exclusive commit copies the data out of it.
            let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            match sys::openat(dir.as_fd(), &temp, flags | libc::O_NONBLOCK, mode) {
                Ok(fd) => {
                    let upload = Upload {
                        file: File::from(checked(fd, Want::File)?.0),
                        dir,
                        temp,
                        target,
                        exclusive,
                        committed: false,
                    };
                    return Ok(upload);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the finished temporary file over the target. With `fsync`
    /// the upload is on disk when this returns (and so before the 226): the
    /// data is synced before the rename, so the name never shows a partial
    /// file; after it the file again and then the directory, because until
    /// then the new name (or, for an overwrite, the switch from the old file
    /// to the new) lives only in memory and a power cut takes it away.
    /// make test-powercut found what vfat needs besides: there a file's
    /// directory entry (first cluster, size) is written with the file, not
    /// with the directory, so only the second file sync writes the entry at
    /// its new name; and the replaced file's clusters are freed when its last
    /// reference goes, so `_replaced` holds it until the new entry is on disk,
    /// or a cut could leave the name pointing at clusters already free.
    pub fn commit(mut self, fsync: bool) -> io::Result<()> {
        let mut _replaced = None;
        if fsync {
            sys::fsync(self.file.as_fd())?;
            let flags = libc::O_PATH | libc::O_NOFOLLOW;
            _replaced = sys::openat(self.dir.as_fd(), &self.target, flags, 0).ok();
        }
        if self.exclusive {
            self.commit_exclusive(fsync)?;
        } else {
            sys::renameat(self.dir.as_fd(), &self.temp, self.dir.as_fd(), &self.target)?;
        }
        self.committed = true;
        if fsync {
            sys::fsync(self.file.as_fd())?;
            sys::sync_dir(self.dir.as_fd(), self.file.as_fd())?;
        }
        Ok(())
    }

    /// Puts the upload at the target only if no file has that name, never
    /// replacing one: link(2) fails with EEXIST, an atomic "create if absent".
    /// Filesystems without hard links (vfat) answer EPERM: then
    /// renameat2(RENAME_NOREPLACE), and where that flag is unsupported too, an
    /// O_CREAT|O_EXCL create of the target and a copy of the data into it.
    fn commit_exclusive(&mut self, fsync: bool) -> io::Result<()> {
        let dir = self.dir.as_fd();
        match sys::linkat(dir, &self.temp, &self.target) {
            Ok(()) => {
                let _ = sys::unlinkat(dir, &self.temp, false);
                return Ok(());
            }
            Err(e)
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
                ) =>
            {
                return Err(e)
            }
            Err(_) => {}
        }
        let noreplace = libc::RENAME_NOREPLACE;
        match sys::renameat2(dir, &self.temp, dir, &self.target, noreplace) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
                self.copy_exclusive(fsync)
            }
            other => other,
        }
    }

    /// The last fallback: the exclusive create keeps "never replace" atomic;
    /// the price is that the target is visible while the copy runs, and a
    /// failed copy removes the target it created.
    fn copy_exclusive(&mut self, fsync: bool) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let dir = self.dir.as_fd();
        let mode = sys::fstat(self.file.as_fd())?.mode & 0o7777;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let mut out = File::from(sys::openat(dir, &self.target, flags, mode)?);
        let copied = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| io::copy(&mut self.file, &mut out))
            .and_then(|_| {
                if fsync {
                    sys::fsync(out.as_fd())
                } else {
                    Ok(())
                }
            });
        if let Err(e) = copied {
            let _ = sys::unlinkat(dir, &self.target, false);
            return Err(e);
        }
        let _ = sys::unlinkat(dir, &self.temp, false);
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            let _ = sys::unlinkat(self.dir.as_fd(), &self.temp, false);
        }
    }
}

fn temp_name(attempt: u32) -> Vec<u8> {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = TEMP_PREFIX.to_vec();
    name.extend_from_slice(format!("{}.{:x}.{}", sys::getpid(), nanos, attempt).as_bytes());
    name
}

#[cfg(test)]
mod tests {
    use super::super::fixture::scratch;
    use super::*;

    #[test]
    fn upload_replaces_only_on_commit() {
        use std::io::Write;
        let dir = scratch("upload");
        let root = Root::open(&dir.join("root")).unwrap();
        let mut up = Upload::create(&root, b"/sub/inside", false, 0o644).unwrap();
        up.file.write_all(b"half").unwrap();
        drop(up);
        assert_eq!(
            std::fs::read(dir.join("root/sub/inside")).unwrap(),
            b"inside"
        );
        assert_eq!(std::fs::read_dir(dir.join("root/sub")).unwrap().count(), 2);
        let mut up = Upload::create(&root, b"/sub/inside", false, 0o644).unwrap();
        up.file.write_all(b"whole").unwrap();
        up.commit(true).unwrap();
        let up = Upload::create(&root, b"/sub/inside", true, 0o644).unwrap();
        assert!(
            up.commit(false).is_err(),
            "an exclusive upload must not replace a file"
        );
        assert_eq!(
            std::fs::read(dir.join("root/sub/inside")).unwrap(),
            b"whole"
        );
        assert_eq!(std::fs::read_dir(dir.join("root/sub")).unwrap().count(), 2);
    }

    /// The last fallback of an exclusive commit (no link(2), no
    /// RENAME_NOREPLACE): creates the target exclusively and copies.
    #[test]
    fn exclusive_copy_creates_and_never_replaces() {
        use std::io::Write;
        let dir = scratch("copy");
        let root = Root::open(&dir.join("root")).unwrap();
        let mut up = Upload::create(&root, b"/sub/new", true, 0o640).unwrap();
        up.file.write_all(b"copied data").unwrap();
        up.copy_exclusive(true).unwrap();
        up.committed = true;
        drop(up);
        assert_eq!(
            std::fs::read(dir.join("root/sub/new")).unwrap(),
            b"copied data"
        );
        let mut up = Upload::create(&root, b"/sub/new", true, 0o640).unwrap();
        up.file.write_all(b"other").unwrap();
        let e = up.copy_exclusive(false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        drop(up);
        assert_eq!(
            std::fs::read(dir.join("root/sub/new")).unwrap(),
            b"copied data"
        );
        let mut names: Vec<_> = std::fs::read_dir(dir.join("root/sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["inside", "new", "up"]);
    }
}
