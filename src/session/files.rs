//! Files and directories: CWD, PWD, MKD, RMD, DELE, RNFR/RNTO, SIZE, MDTM, MFMT, MLST, STAT,
//! SITE, and the permission checks. The client names paths (confined by fs, hidden names refused),
//! plants symlinks (writes resolve beneath the write root), sizes directories (STAT streams).

use super::transfer::write_listing;
use super::{from_fs, r, show, Reply, Session};
use crate::auth::Write;
use crate::command;
use crate::fs::{self, Root};
use crate::listing::{self, Access, Format};
use crate::log::Quoted;
use crate::reply::{self, *};
use crate::sys;
use std::io::{self, BufWriter, Write as _};
use std::time::Duration;

impl Session<'_> {
    /// Where a write to `vpath` (already allowed by `forbid`) resolves: a
    /// named user's root, or for anonymous users the root opened at the upload
    /// directory with the path rebased onto it. The policy is enforced by
    /// where the kernel resolves, not by the path string: a symlink planted in
    /// the upload directory cannot carry a write out of it.
    pub(super) fn write_root(&self, vpath: &[u8]) -> io::Result<(&Root, Vec<u8>)> {
        let identity = self.identity();
        if identity.full_write {
            return Ok((self.root(), vpath.to_vec()));
        }
        let denied = || io::Error::from_raw_os_error(libc::EACCES);
        let (Some(dir), Some(root)) = (identity.upload_dir.as_deref(), self.upload_root.as_deref())
        else {
            return Err(denied());
        };
        let rest = if dir == b"/" {
            vpath
        } else {
            vpath.strip_prefix(dir).ok_or_else(denied)?
        };
        if rest.len() < 2 || rest[0] != b'/' {
            return Err(denied());
        }
        Ok((root, rest.to_vec()))
    }

    /// Names a listing would hide (CR, LF, our temporary upload prefix) are
    /// refused for new files and directories: what cannot be listed must not
    /// be created, or a drop box hides files that are fetched by name.
    pub(super) fn refuse_hidden_name(vpath: &[u8]) -> Option<Reply> {
        let name = fs::split_parent(vpath).map(|(_, n)| n).unwrap_or(b"");
        (!listing::listable(name)).then(|| r(BAD_NAME, "File name not allowed."))
    }

    /// Checks write permission; `None` means allowed.
    pub(super) fn forbid(&self, what: Write, vpath: &[u8]) -> Option<Reply> {
        if !self.ctx.config.write_enable {
            return Some(r(
                UNAVAILABLE_FILE,
                "Permission denied: the server is read-only.",
            ));
        }
        if !self.identity().may(what, vpath) {
            return Some(r(UNAVAILABLE_FILE, "Permission denied."));
        }
        None
    }

    /// DELE, RMD, SITE CHMOD: a change to a name that exists, allowed by
    /// `forbid`; the client names the path and fs keeps it within the root.
    pub(super) fn modify(
        &mut self,
        arg: &[u8],
        verb: &str,
        done: &str,
        op: impl Fn(&Root, &[u8]) -> io::Result<()>,
    ) -> Reply {
        let vpath = self.resolve(arg);
        if let Some(denied) = self.forbid(Write::Modify, &vpath) {
            return denied;
        }
        match op(self.root(), &vpath) {
            Ok(()) => {
                log::info!("{} {}: {}", self.peer, done, Quoted(&vpath));
                r(FILE_OK, done)
            }
            Err(e) => self.refused_write(verb, &vpath, &e),
        }
    }

    /// The reply to a write the filesystem refused. A refusal the admin must
    /// fix on the host (permissions, a read-only mount, a full disk or quota)
    /// is logged at info with the user, the client's path (quoted) and why:
    /// the client sees only "Permission denied", so without this line an admin
    /// could not tell why an upload fails short of running with -v.
    pub(super) fn refused_write(&self, verb: &str, vpath: &[u8], e: &io::Error) -> Reply {
        if let Some(why) = host_refusal(e) {
            let user = self.identity.as_ref().map_or("-", |i| i.name.as_str());
            log::info!(
                "{} {} {verb} {} refused by the filesystem: {why}",
                self.peer,
                Quoted(user.as_bytes()),
                Quoted(vpath)
            );
        }
        from_fs(e)
    }

    // ------------------------------------------------------------ directories

    /// PWD: the virtual path only, quotes doubled (RFC 959 appendix II).
    pub(super) fn pwd(&self) -> Reply {
        let quoted = String::from_utf8_lossy(&reply::quote_path(&self.cwd)).into_owned();
        r(CREATED, format!("{quoted} is the current directory."))
    }

    /// CWD/CDUP: any path the client names, confined to the root by fs; only
    /// a directory becomes the working directory.
    pub(super) fn cwd(&mut self, arg: &[u8]) -> Reply {
        let vpath = self.resolve(arg);
        match self.root().stat(&vpath) {
            Ok(st) if st.is_dir() => {
                self.cwd = vpath;
                r(FILE_OK, "Directory successfully changed.")
            }
            Ok(_) => r(
                UNAVAILABLE_FILE,
                "Failed to change directory: not a directory.",
            ),
            Err(e) => from_fs(&e),
        }
    }

    /// MKD: hidden names are refused; the directory is made beneath the write
    /// root with the session's umask.
    pub(super) fn mkd(&mut self, arg: &[u8]) -> Reply {
        let vpath = self.resolve(arg);
        if let Some(denied) = self
            .forbid(Write::CreateDir, &vpath)
            .or_else(|| Self::refuse_hidden_name(&vpath))
        {
            return denied;
        }
        let made = self
            .write_root(&vpath)
            .and_then(|(root, path)| root.mkdir(&path, 0o777 & !self.umask));
        match made {
            Ok(()) => {
                let quoted = String::from_utf8_lossy(&reply::quote_path(&vpath)).into_owned();
                r(CREATED, format!("{quoted} created."))
            }
            Err(e) => self.refused_write("MKD", &vpath, &e),
        }
    }

    /// RNFR: remembers a source the client may modify; any command but RNTO
    /// forgets it (`dispatch`).
    pub(super) fn rnfr(&mut self, arg: &[u8]) -> Reply {
        let vpath = self.resolve(arg);
        if let Some(denied) = self.forbid(Write::Modify, &vpath) {
            return denied;
        }
        match self.root().lstat(&vpath) {
            Ok(_) => {
                self.rename_from = Some(vpath);
                r(PENDING, "Ready for RNTO.")
            }
            Err(e) => from_fs(&e),
        }
    }

    /// RNTO: the new name is checked as a new file's is (permission, hidden
    /// names); both ends resolve within the root.
    pub(super) fn rnto(&mut self, arg: &[u8]) -> Reply {
        let Some(from) = self.rename_from.take() else {
            return r(BAD_SEQUENCE, "RNFR required first.");
        };
        let to = self.resolve(arg);
        if let Some(denied) = self
            .forbid(Write::Modify, &to)
            .or_else(|| Self::refuse_hidden_name(&to))
        {
            return denied;
        }
        match self.root().rename(&from, &to) {
            Ok(()) => {
                log::info!("{} renamed {} to {}", self.peer, Quoted(&from), Quoted(&to));
                r(FILE_OK, "Rename successful.")
            }
            Err(e) => self.refused_write("RNTO", &to, &e),
        }
    }

    // ------------------------------------------------------------ file facts

    /// SIZE: plain files only; the path is looked at, never opened for reading.
    pub(super) fn size(&self, arg: &[u8]) -> Reply {
        match self.root().stat(&self.resolve(arg)) {
            Ok(st) if st.is_file() => r(FILE_STATUS, st.size.to_string()),
            Ok(_) => r(
                UNAVAILABLE_FILE,
                "Could not get file size: not a plain file.",
            ),
            Err(e) => from_fs(&e),
        }
    }

    /// MDTM: plain files only, as SIZE.
    pub(super) fn mdtm(&self, arg: &[u8]) -> Reply {
        match self.root().stat(&self.resolve(arg)) {
            Ok(st) if st.is_file() => r(FILE_STATUS, listing::timeval(st.mtime)),
            Ok(_) => r(
                UNAVAILABLE_FILE,
                "Could not get modification time: not a plain file.",
            ),
            Err(e) => from_fs(&e),
        }
    }

    /// MFMT: the client chooses any time; fs sets it through the parent
    /// directory, so it needs no read permission on the file.
    pub(super) fn mfmt(&mut self, time: i64, arg: &[u8]) -> Reply {
        let vpath = self.resolve(arg);
        if let Some(denied) = self.forbid(Write::Modify, &vpath) {
            return denied;
        }
        match self.root().set_mtime(&vpath, time) {
            Ok(()) => r(
                FILE_STATUS,
                format!("Modify={}; {}", listing::timeval(time), show(arg)),
            ),
            Err(e) => from_fs(&e),
        }
    }

    /// What this session may do with the entries of `vpath` (or with
    /// `vpath` itself, for MLST), for the MLSx `perm` fact.
    pub(super) fn access(&self, vpath: &[u8]) -> Access {
        let identity = self.identity();
        let write = self.ctx.config.write_enable;
        Access {
            create: write && identity.may_write_in(vpath),
            modify: write && identity.full_write,
            world_readable_only: self.world_readable_only(),
            facts: self.facts,
        }
    }

    /// Anonymous sessions with `anon_world_readable_only` read only files
    /// that everyone may read, so a drop box's uploads (mode 0600 by
    /// `anon_umask`) are not served to the next anonymous client.
    fn world_readable_only(&self) -> bool {
        self.ctx.config.anon_world_readable_only
            && self.identity.as_ref().is_some_and(|i| i.anonymous)
    }

    pub(super) fn may_read(&self, st: &sys::FileStat) -> bool {
        !self.world_readable_only() || st.mode & 0o004 != 0
    }

    /// Opens a file whose bytes the client asked for (RETR, HASH) and its size:
    /// hidden names look absent, fs refuses anything but a regular file without
    /// blocking, and `may_read` applies.
    pub(super) fn open_to_read(&self, vpath: &[u8]) -> Result<(std::fs::File, u64), Reply> {
        if Self::refuse_hidden_name(vpath).is_some() {
            return Err(r(UNAVAILABLE_FILE, "No such file or directory."));
        }
        match self.root().open_file(vpath) {
            Ok((_, st)) if !self.may_read(&st) => Err(r(UNAVAILABLE_FILE, "Permission denied.")),
            Ok((file, st)) => Ok((file, st.size)),
            Err(e) => Err(from_fs(&e)),
        }
    }

    /// MLST: one entry's facts on the control connection.
    pub(super) fn mlst(&self, arg: &[u8]) -> Reply {
        let vpath = self.resolve(arg);
        match self.root().stat(&vpath) {
            Ok(st) => {
                let facts = listing::facts(&st, listing::entry_kind(&st), self.access(&vpath));
                let name = if arg.is_empty() {
                    show(&vpath)
                } else {
                    show(arg)
                };
                r(FILE_OK, format!("Listing {name}\n{facts}{name}\nEnd."))
            }
            Err(e) => from_fs(&e),
        }
    }

    /// STAT with a path: the listing goes to the control connection as a
    /// multi-line 213 reply, streamed line by line through a 16 KiB buffer as
    /// LIST streams to the data connection. A client chooses the directory
    /// size and may stop reading: it holds that buffer and at most one sort
    /// chunk of the server-wide budget (entries.rs), and a reply nobody
    /// reads ends the session at the control write timeout.
    pub(super) fn stat(&mut self, arg: &[u8]) -> io::Result<Reply> {
        if self.identity.is_none() || arg.is_empty() {
            return Ok(r(STATUS, self.status_text()));
        }
        let (_, path) = listing::split_options(arg);
        let listed = match self.listed(path, true) {
            Ok(listed) => listed,
            Err(reply) => return Ok(reply),
        };
        let vpath = &listed.vpath;
        let head = format!(
            "{FILE_STATUS}-Status of {}:\r\n",
            show(path).replace('\r', "")
        );
        let access = self.access(vpath);
        // Fields, not `self.root()`: the listing reads the root while it
        // writes to the control stream, which takes `&mut`.
        let root = self
            .root
            .as_ref()
            .expect("STAT with a path runs after login");
        let stream = &mut self.ctl.stream;
        let mut out = Indented::new(BufWriter::with_capacity(16 * 1024, stream));
        out.inner.write_all(head.as_bytes())?;
        let format = Format::Long { all: true };
        match write_listing(&mut out, root, access, &listed, format) {
            Ok(()) => out.inner.flush()?,
            Err(e) => {
                // Entries are already on the wire: end the reply, say why.
                out.inner.flush()?;
                log::info!("{}: STAT of {} failed: {e}", self.peer, Quoted(vpath));
                return Ok(r(LOCAL_ERROR, "Listing failed."));
            }
        }
        Ok(r(FILE_STATUS, "End of status."))
    }

    fn status_text(&self) -> String {
        let user = self
            .identity
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or("(not logged in)");
        format!(
            "minftpd {} status:\nConnected to {}\nLogged in as {}\nTYPE: {}, STRU: F, MODE: S\nSession timeout in seconds is {}\nEnd of status.",
            env!("CARGO_PKG_VERSION"),
            self.peer.ip().to_canonical(),
            user,
            if self.ascii { "ASCII" } else { "BINARY" },
            self.idle_timeout.as_secs()
        )
    }

    /// SITE CHMOD (mode at most 7777, permission bits only, set through the
    /// parent directory), UMASK (not for anonymous users), IDLE (30 to 7200 s).
    pub(super) fn site(&mut self, arg: &[u8]) -> Reply {
        let (verb, rest) = command::split_line(arg);
        let rest = rest.to_vec();
        match verb.as_str() {
            "CHMOD" => {
                let (mode, path) = command::split_line(&rest);
                let Ok(mode) = u32::from_str_radix(&mode, 8) else {
                    return r(BAD_ARGUMENT, "Usage: SITE CHMOD MODE PATH.");
                };
                if mode > 0o7777 || path.is_empty() {
                    return r(BAD_ARGUMENT, "Usage: SITE CHMOD MODE PATH.");
                }
                let path = path.to_vec();
                // SITE replies with 200 (RFC 959 5.4), not FILE_OK.
                let (code, text) = self.modify(
                    &path,
                    "SITE CHMOD",
                    "SITE CHMOD command ok.",
                    move |root, p| root.chmod(p, mode & 0o777),
                );
                (if code == FILE_OK { OK } else { code }, text)
            }
            "UMASK" if rest.is_empty() => {
                r(OK, format!("Your current UMASK is {:04o}.", self.umask))
            }
            "UMASK" if self.identity().anonymous => r(
                UNAVAILABLE_FILE,
                "Permission denied: anonymous users cannot change the umask.",
            ),
            "UMASK" => match std::str::from_utf8(&rest)
                .ok()
                .and_then(|s| u32::from_str_radix(s.trim(), 8).ok())
            {
                Some(mask) if mask <= 0o777 => {
                    self.umask = mask;
                    r(OK, format!("UMASK set to {mask:04o}."))
                }
                _ => r(BAD_ARGUMENT, "Bad UMASK value."),
            },
            "IDLE" if rest.is_empty() => r(
                OK,
                format!(
                    "Current idle time limit is {} seconds.",
                    self.idle_timeout.as_secs()
                ),
            ),
            "IDLE" => match std::str::from_utf8(&rest)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                Some(secs) if (30..=7200).contains(&secs) => {
                    self.idle_timeout = Duration::from_secs(secs);
                    r(OK, format!("Idle time limit set to {secs} seconds."))
                }
                _ => r(BAD_ARGUMENT, "SITE IDLE takes 30 to 7200 seconds."),
            },
            "HELP" | "" => r(HELP, "SITE commands: CHMOD UMASK IDLE HELP"),
            _ => r(SYNTAX_ERROR, "Unknown SITE command."),
        }
    }
}

/// Indents every line by one space, as the middle lines of a multi-line
/// reply are (so none can be taken for the last).
struct Indented<W: io::Write> {
    inner: W,
    at_line_start: bool,
}

impl<W: io::Write> Indented<W> {
    fn new(inner: W) -> Self {
        Indented {
            inner,
            at_line_start: true,
        }
    }
}

impl<W: io::Write> io::Write for Indented<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in buf.split_inclusive(|&b| b == b'\n') {
            if std::mem::take(&mut self.at_line_start) {
                self.inner.write_all(b" ")?;
            }
            self.inner.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why the host refused a write, in the words an admin acts on; `None` for
/// errors that are the client's (a missing file, a bad name).
fn host_refusal(e: &io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        libc::EACCES | libc::EPERM => {
            Some("permission denied (the account minftpd runs as may not write there)")
        }
        libc::EROFS => Some("read-only file system"),
        libc::ENOSPC => Some("no space left on device"),
        libc::EDQUOT => Some("disk quota exceeded"),
        _ => None,
    }
}
