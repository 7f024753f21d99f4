//! Where an upload goes (a new file through a temporary name, or the existing
//! file for APPE and REST+STOR), and the upload hook's event once it is
//! answered with 226. The client chose the path and the bytes; the path
//! reaches the hook as bytes (hook/ bounds the record), never through a shell.

use super::Session;
use crate::fs::Upload;
use std::io;

impl Session<'_> {
    /// Tells the hook's runner about an upload answered with 226: the file
    /// under the served root (the identity's home, then the client's path),
    /// who sent it and from where.
    pub(super) fn run_upload_hook(&self, vpath: &[u8], size: u64) {
        let Some(hook) = &self.ctx.hook else { return };
        let identity = self.identity();
        let home = identity.home.strip_suffix(b"/").unwrap_or(&identity.home);
        let mut under_root = home.to_vec();
        under_root.extend_from_slice(vpath);
        hook.notify(&crate::hook::Event {
            under_root: &under_root,
            user: identity.name.as_bytes(),
            peer: self.peer.ip(),
            vpath,
            size,
        });
    }
}

/// Where an upload goes.
pub(super) enum Target {
    New(Upload),
    InPlace { file: std::fs::File, truncate: bool },
}

impl Target {
    pub(super) fn file(&mut self) -> &mut std::fs::File {
        match self {
            Target::New(upload) => &mut upload.file,
            Target::InPlace { file, .. } => file,
        }
    }

    /// The file's length once `finish` has run with `end`.
    pub(super) fn final_len(&mut self, end: u64) -> u64 {
        match self {
            Target::InPlace { truncate: true, .. } => end,
            _ => self.file().metadata().map_or(end, |m| m.len()),
        }
    }

    /// Makes a finished upload visible (or, for REST+STOR, cuts what lay
    /// beyond the new end).
    pub(super) fn finish(self, end: u64, fsync: bool) -> io::Result<()> {
        match self {
            Target::New(upload) => upload.commit(fsync),
            Target::InPlace { file, truncate } => {
                if truncate {
                    file.set_len(end)?;
                }
                if fsync {
                    file.sync_all()?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StoreKind {
    Replace,
    Append,
    Unique,
}

impl StoreKind {
    pub(super) fn verb(self) -> &'static str {
        match self {
            StoreKind::Replace => "STOR",
            StoreKind::Append => "APPE",
            StoreKind::Unique => "STOU",
        }
    }
}
