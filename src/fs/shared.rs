//! Roots shared between sessions. Every anonymous session serves the same
//! home, as does every session of one account; a descriptor each would make
//! the descriptor table, not `max_clients`, the limit on sessions. A client
//! controls only which configured home it logs into (and, anonymous, the
//! upload directory beneath it): the table holds one entry per directory a
//! live session holds, and entries no session holds any more are swept.

use super::Root;
use crate::sys;
use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, Weak};

/// The roots opened beneath one root, by virtual path, while sessions hold
/// them: a short list (one entry per home in use).
#[derive(Debug, Default)]
pub(super) struct Shared(Mutex<Vec<(Vec<u8>, Weak<Root>)>>);

impl Root {
    /// `subroot(vpath)`, shared with the sessions that already hold it. An
    /// open descriptor stays on its directory when the directory is renamed
    /// or replaced, so it is reused only while `vpath` still leads to that
    /// same directory (one short-lived `O_PATH` open to check); otherwise
    /// the directory is opened afresh, as a login always did.
    pub fn shared_subroot(&self, vpath: &[u8]) -> io::Result<Arc<Root>> {
        let now = self.stat(vpath)?;
        let mut shared = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        let held = shared.iter().find(|(path, _)| path == vpath);
        if let Some(root) = held.and_then(|(_, root)| root.upgrade()) {
            let open_on = sys::fstat(root.dir.as_fd())?;
            if (open_on.dev, open_on.ino) == (now.dev, now.ino) {
                return Ok(root);
            }
        }
        let root = Arc::new(self.subroot(vpath)?);
        shared.retain(|(path, root)| root.strong_count() > 0 && path != vpath);
        shared.push((vpath.to_vec(), Arc::downgrade(&root)));
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_with_one_home_share_its_descriptor_while_it_is_the_same_directory() {
        let dir = std::env::temp_dir().join(format!("minftpd-shared-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let root = Root::open(&dir).unwrap();
        let first = root.shared_subroot(b"/home").unwrap();
        let second = root.shared_subroot(b"/home").unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        // The home is replaced: a new login gets the new directory.
        std::fs::rename(dir.join("home"), dir.join("old")).unwrap();
        std::fs::create_dir(dir.join("home")).unwrap();
        let third = root.shared_subroot(b"/home").unwrap();
        assert!(!Arc::ptr_eq(&first, &third));
        assert!(root.stat(b"/home").unwrap().ino == sys::fstat(third.dir.as_fd()).unwrap().ino);
        // Once no session holds a root, its entry goes.
        drop((first, second));
        let _other = root.shared_subroot(b"/old").unwrap();
        assert_eq!(root.shared.0.lock().unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
