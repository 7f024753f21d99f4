//! Transfers: PORT/EPRT/PASV/EPSV, RETR, STOR, APPE, STOU, LIST, NLST, MLSD, their logging.
//! The client names files (uploads resolve beneath the write root, hidden names and FIFOs are
//! refused) and chooses sizes and pace: rate limits, accept and stall timeouts bound them.
//! A listing's last component may be a wildcard pattern: glob.rs bounds its length and cost.

use super::upload::{StoreKind, Target};
use super::{from_fs, fs_error, now, r, show, Reply, Session};
use crate::auth::Write;
use crate::command::EpsvArg;
use crate::data::{self, DataStream, Direction, Failure, Pending};
use crate::entries;
use crate::fs::{self, Root, Upload};
use crate::glob;
use crate::listing::{self, Access, Format};
use crate::log::Quoted;
use crate::reply::*;
use std::io::{self, BufWriter, Seek, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

impl Session<'_> {
    // ------------------------------------------------------------ data channel set-up

    /// PORT/EPRT: the client names the target; only its own address and a
    /// port of 1024 or above are accepted (no bounce attacks).
    pub(super) fn port(&mut self, target: SocketAddr) -> Reply {
        if self.epsv_all {
            return r(BAD_SEQUENCE, "EPSV ALL is in effect: use EPSV.");
        }
        match data::check_active_target(target, self.peer.ip()) {
            Ok(()) => {
                self.pending = Pending::Active(target);
                r(OK, "PORT command successful. Consider using PASV.")
            }
            Err(data::Refusal::OtherHost) => {
                log::warn!(
                    "{}: refused PORT/EPRT to another host {}",
                    self.peer,
                    target
                );
                r(
                    SYNTAX_ERROR,
                    "Illegal PORT command: data connections go to your own address only.",
                )
            }
            Err(data::Refusal::ReservedPort) => {
                r(NOT_FOR_PARAMETER, "Illegal PORT command: port below 1024.")
            }
        }
    }

    fn passive_listener(&mut self) -> Result<u16, Reply> {
        self.pending = Pending::None;
        match data::listen_passive(self.local.ip(), &self.ctx.data) {
            Ok(listener) => {
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                self.pending = Pending::Passive(listener);
                Ok(port)
            }
            Err(e) => {
                log::error!("passive listener: {e}");
                Err(r(CANT_OPEN_DATA, "Cannot open a passive port."))
            }
        }
    }

    /// PASV: a listener on a random port of the range, which only the control
    /// peer may connect to, within `accept_timeout`.
    pub(super) fn pasv(&mut self) -> Reply {
        if self.epsv_all {
            return r(BAD_SEQUENCE, "EPSV ALL is in effect: use EPSV.");
        }
        let advertised = match (self.ctx.config.pasv_address, self.local.ip().to_canonical()) {
            (Some(IpAddr::V4(ip)), _) | (None, IpAddr::V4(ip)) => ip,
            _ => return r(CANT_OPEN_DATA, "PASV needs IPv4; use EPSV."),
        };
        match self.passive_listener() {
            Ok(port) => {
                let [a, b, c, d] = advertised.octets();
                r(
                    PASSIVE,
                    format!(
                        "Entering Passive Mode ({a},{b},{c},{d},{},{}).",
                        port >> 8,
                        port & 0xff
                    ),
                )
            }
            Err(reply) => reply,
        }
    }

    /// EPSV: as PASV; `EPSV ALL` makes PORT and PASV refused from then on.
    pub(super) fn epsv(&mut self, arg: EpsvArg) -> Reply {
        let family = if self.local.ip().to_canonical().is_ipv4() {
            1
        } else {
            2
        };
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return r(OK, "EPSV ALL ok.");
            }
            EpsvArg::Protocol(p) if p != family => {
                return r(
                    EXT_PROTOCOL,
                    format!("Network protocol not supported, use ({family})."),
                )
            }
            _ => {}
        }
        match self.passive_listener() {
            Ok(port) => r(
                EXT_PASSIVE,
                format!("Entering Extended Passive Mode (|||{port}|)."),
            ),
            Err(reply) => reply,
        }
    }

    /// Opens the data connection that PASV/EPSV/PORT/EPRT prepared: a passive
    /// one from the control peer only, an active one within `connect_timeout`.
    fn open_data(&mut self) -> Result<DataStream, Reply> {
        if let Some(refusal) = self.refuse_plain_data() {
            self.pending = Pending::None;
            return Err(refusal);
        }
        let settings = &self.ctx.data;
        let stream = match std::mem::take(&mut self.pending) {
            Pending::None => return Err(r(CANT_OPEN_DATA, "Use PORT, PASV or EPSV first.")),
            Pending::Passive(listener) => data::accept_passive(
                &listener,
                self.peer.ip(),
                settings.accept_timeout,
                settings.proxy.as_ref(),
                &mut self.ctl,
            ),
            Pending::Active(target) => {
                data::connect_active(target, self.local.ip(), settings, &mut self.ctl)
            }
        };
        let stream = match stream {
            Ok(stream) => stream,
            // ABOR while waiting: 426 for the transfer, then ABOR's own 226.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                let _ = self.send(r(TRANSFER_ABORTED, "No data connection; transfer aborted."));
                return Err(r(TRANSFER_DONE, "ABOR successful."));
            }
            Err(e) => {
                log::info!("{}: data connection failed: {e}", self.peer);
                return Err(r(CANT_OPEN_DATA, "Failed to establish data connection."));
            }
        };
        Ok(DataStream::Plain(stream))
    }

    // ------------------------------------------------------------ listings

    /// LIST/NLST/MLSD: the client chooses the directory, and so the listing's
    /// size: it streams through a 64 KiB buffer, sorted through at most one
    /// chunk of the server-wide budget (entries.rs), a reader that stalls
    /// ends at `data_timeout`, and names that would break a line are not
    /// listed.
    pub(super) fn list(&mut self, arg: &[u8], kind: ListKind) -> io::Result<Reply> {
        let (all, path) = match kind {
            ListKind::Mlsd => (true, arg),
            _ => listing::split_options(arg),
        };
        let format = match kind {
            ListKind::List => Format::Long { all },
            ListKind::Nlst => Format::Names,
            ListKind::Mlsd => Format::Facts,
        };
        // Answer 550 before any data connection: sync tools decide from it.
        // MLSD names a directory (RFC 3659): no wildcards.
        let listed = match self.listed(path, kind != ListKind::Mlsd) {
            Ok(listed) => listed,
            Err(reply) => return Ok(reply),
        };
        let vpath = &listed.vpath;
        if kind == ListKind::Mlsd && !self.root().stat(vpath).is_ok_and(|st| st.is_dir()) {
            return Ok(r(BAD_ARGUMENT, "MLSD needs a directory."));
        }
        let sock = match self.open_data() {
            Ok(sock) => sock,
            Err(reply) => return Ok(reply),
        };
        self.send(r(OPENING_DATA, "Here comes the directory listing."))?;
        let mut sock = match self.protect_data(sock, Direction::ToClient) {
            Ok(sock) => sock,
            Err(reply) => return Ok(reply),
        };
        // Listings write through a blocking buffer: the socket timeouts bound a stall.
        if sock.set_timeouts(self.ctx.data.data_timeout).is_err() {
            return Ok(r(CANT_OPEN_DATA, "Failed to set up data connection."));
        }
        let access = self.access(vpath);
        let mut out = BufWriter::with_capacity(64 * 1024, &mut sock);
        let result = write_listing(&mut out, self.root(), access, &listed, format)
            .and_then(|()| out.flush());
        drop(out);
        drop(sock);
        Ok(match result {
            Ok(()) => r(TRANSFER_DONE, "Directory send OK."),
            Err(e) => {
                log::info!("{}: listing of {} failed: {e}", self.peer, Quoted(vpath));
                r(TRANSFER_ABORTED, "Failure writing network stream.")
            }
        })
    }

    // ------------------------------------------------------------ transfers

    /// RETR: the client names the file and the offset (REST); fs refuses FIFOs
    /// and devices without blocking, `anon_world_readable_only` applies, the
    /// rate limit sets the pace, `data_timeout` ends a stall, ABOR is heard.
    pub(super) fn retr(&mut self, arg: &[u8]) -> io::Result<Reply> {
        let vpath = self.resolve(arg);
        let offset = std::mem::take(&mut self.rest);
        let (mut file, size) = match self.open_to_read(&vpath) {
            Ok(opened) => opened,
            Err(reply) => return Ok(reply),
        };
        let sock = match self.open_data() {
            Ok(sock) => sock,
            Err(reply) => return Ok(reply),
        };
        let mode = if self.ascii { "ASCII" } else { "BINARY" };
        self.send(r(
            OPENING_DATA,
            format!(
                "Opening {mode} mode data connection for {} ({size} bytes).",
                show(arg)
            ),
        ))?;
        let mut sock = match self.protect_data(sock, Direction::ToClient) {
            Ok(sock) => sock,
            Err(reply) => return Ok(reply),
        };
        let started = Instant::now();
        let ascii = self.ascii;
        let rate = self.rate_limit();
        let mut watch = data::Watch::new(&mut self.ctl, self.ctx.data.data_timeout, rate);
        let outcome = if ascii {
            data::send_ascii(&mut sock, &mut file, offset, &mut watch)
        } else {
            data::send_binary(
                &mut sock,
                &file,
                offset,
                size.saturating_sub(offset),
                &mut watch,
            )
        };
        drop(sock);
        self.log_transfer("RETR", &vpath, &outcome, started);
        self.finish_transfer(outcome, "Transfer complete.")
    }

    /// STOR/APPE/STOU: the client names the target and sends what it likes.
    /// Hidden names are refused, writes resolve beneath the write root, a new
    /// file goes through a temporary name (a failed upload keeps the old file),
    /// and the rate limit and `data_timeout` bound the pace.
    pub(super) fn store(&mut self, arg: &[u8], kind: StoreKind) -> io::Result<Reply> {
        let offset = std::mem::take(&mut self.rest);
        let vpath = match kind {
            StoreKind::Unique => match self.unique_name(arg) {
                Ok(vpath) => vpath,
                Err(reply) => return Ok(reply),
            },
            _ => self.resolve(arg),
        };
        let exists = match self.write_root(&vpath) {
            Ok((root, path)) => root.lstat(&path).is_ok(),
            Err(_) => self.root().lstat(&vpath).is_ok(),
        };
        let in_place = kind == StoreKind::Append || offset > 0;
        let what = if exists || in_place && offset > 0 {
            Write::Modify
        } else {
            Write::CreateFile
        };
        if let Some(denied) = self
            .forbid(what, &vpath)
            .or_else(|| Self::refuse_hidden_name(&vpath))
        {
            return Ok(denied);
        }
        let mode = 0o666 & !self.umask;
        let target = if in_place {
            self.open_in_place(&vpath, kind, offset, mode)
        } else {
            self.open_upload(&vpath, kind, mode)
        };
        let mut target = match target {
            Ok(target) => target,
            Err(e) => return Ok(self.refused_write(kind.verb(), &vpath, &e)),
        };
        let sock = match self.open_data() {
            Ok(sock) => sock,
            Err(reply) => return Ok(reply),
        };
        let opening = match kind {
            StoreKind::Unique => format!(
                "FILE: {}",
                show(fs::split_parent(&vpath).map(|(_, n)| n).unwrap_or(b""))
            ),
            _ => "Ok to send data.".to_string(),
        };
        self.send(r(OPENING_DATA, opening))?;
        let mut sock = match self.protect_data(sock, Direction::FromClient) {
            Ok(sock) => sock,
            Err(reply) => return Ok(reply),
        };
        let started = Instant::now();
        let ascii = self.ascii;
        let rate = self.rate_limit();
        let mut watch = data::Watch::new(&mut self.ctl, self.ctx.data.data_timeout, rate);
        let mut outcome = data::receive(&mut sock, target.file(), ascii, &mut watch);
        drop(sock);
        let mut size = 0;
        if let Ok(moved) = outcome {
            size = target.final_len(offset + moved);
            if let Err(e) = target.finish(offset + moved, self.ctx.config.fsync_uploads) {
                outcome = Err((Failure::File(e), moved));
            }
        }
        self.log_transfer(kind.verb(), &vpath, &outcome, started);
        if outcome.is_ok() {
            self.run_upload_hook(&vpath, size);
        }
        self.finish_transfer(outcome, "Transfer complete.")
    }

    /// A new upload through a temporary file (see `fs::Upload`).
    fn open_upload(&self, vpath: &[u8], kind: StoreKind, mode: u32) -> io::Result<Target> {
        let exclusive = kind == StoreKind::Unique || !self.identity().full_write;
        let (root, path) = self.write_root(vpath)?;
        let upload = Upload::create(root, &path, exclusive, mode)?;
        Ok(Target::New(upload))
    }

    /// APPE and REST+STOR write into the existing file, by definition.
    fn open_in_place(
        &self,
        vpath: &[u8],
        kind: StoreKind,
        offset: u64,
        mode: u32,
    ) -> io::Result<Target> {
        let (root, path) = self.write_root(vpath)?;
        let mut file = root.open_for_update(&path, mode)?;
        let at = if kind == StoreKind::Append {
            io::SeekFrom::End(0)
        } else {
            io::SeekFrom::Start(offset)
        };
        file.seek(at)?;
        Ok(Target::InPlace {
            file,
            truncate: kind != StoreKind::Append,
        })
    }

    /// STOU: a name that does not exist yet, from the argument or `stou`.
    fn unique_name(&self, arg: &[u8]) -> Result<Vec<u8>, Reply> {
        let base = if arg.is_empty() {
            self.resolve(b"stou")
        } else {
            self.resolve(arg)
        };
        for n in 0..1000u32 {
            let mut candidate = base.clone();
            if n > 0 {
                candidate.extend_from_slice(format!(".{n}").as_bytes());
            }
            let taken = match self.write_root(&candidate) {
                Ok((root, path)) => root.lstat(&path).is_ok(),
                Err(_) => self.root().lstat(&candidate).is_ok(),
            };
            if !taken {
                return Ok(candidate);
            }
        }
        Err(r(UNAVAILABLE_FILE, "Could not find a unique name."))
    }

    /// The final reply of a transfer. ABOR gets `426` followed by `226`.
    fn finish_transfer(&mut self, outcome: data::Outcome, done: &str) -> io::Result<Reply> {
        Ok(match outcome {
            Ok(_) => r(TRANSFER_DONE, done),
            Err((Failure::Aborted, _)) => {
                self.send(r(TRANSFER_ABORTED, "Transfer aborted."))?;
                r(TRANSFER_DONE, "ABOR successful.")
            }
            Err((Failure::Network(e), _)) if e.kind() == io::ErrorKind::ConnectionAborted => {
                // The control connection is gone: nobody to answer.
                return Err(e);
            }
            Err((Failure::Network(_), _)) => {
                r(TRANSFER_ABORTED, "Connection closed; transfer aborted.")
            }
            Err((Failure::File(e), _)) => {
                let (code, text) = fs_error(&e);
                let code = if code == UNAVAILABLE_FILE || code == NO_SPACE {
                    code
                } else {
                    LOCAL_ERROR
                };
                r(code, text)
            }
        })
    }

    /// Bytes per second this session may move (0: unlimited).
    pub(super) fn rate_limit(&self) -> u64 {
        let config = &self.ctx.config;
        match &self.identity {
            Some(identity) if identity.anonymous => config.anon_max_rate,
            _ => config.max_rate,
        }
    }

    /// One log line and one xferlog record; the path is the client's, quoted.
    fn log_transfer(&self, verb: &str, vpath: &[u8], outcome: &data::Outcome, started: Instant) {
        let user = self
            .identity
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or("-");
        let secs = crate::log::Secs(started.elapsed(), 3);
        if let Some(xferlog) = &self.ctx.xferlog {
            let bytes = match outcome {
                Ok(bytes) | Err((_, bytes)) => *bytes,
            };
            xferlog.record(&crate::log::Transfer {
                seconds: started.elapsed().as_secs(),
                peer: self.peer.ip(),
                bytes,
                path: vpath,
                ascii: self.ascii,
                incoming: verb != "RETR",
                anonymous: self.identity.as_ref().is_some_and(|i| i.anonymous),
                user,
                complete: outcome.is_ok(),
            });
        }
        match outcome {
            Ok(bytes) => log::info!(
                "{} {} {verb} {} ok {bytes} bytes in {secs}s",
                self.peer,
                Quoted(user.as_bytes()),
                Quoted(vpath)
            ),
            Err((why, bytes)) => log::info!(
                "{} {} {verb} {} failed ({why:?}) after {bytes} bytes in {secs}s",
                self.peer,
                Quoted(user.as_bytes()),
                Quoted(vpath)
            ),
        }
    }
}

/// What a LIST, NLST or STAT argument lists: a file or directory as
/// written, or the entries of a directory that match a pattern.
pub(super) struct Listed<'a> {
    pub vpath: Vec<u8>,
    /// The last component of the argument, when it holds wildcards and
    /// names nothing as written.
    pub pattern: Option<&'a [u8]>,
    /// The argument before the pattern, as written (`pub/`): NLST puts it
    /// before each name, so that a client can RETR what it lists.
    pub prefix: &'a [u8],
}

impl Session<'_> {
    /// Resolves a listing argument: as written when that exists (a name may
    /// hold wildcard bytes), else, with `globbing`, its last component as a
    /// pattern over the directory before it. Wildcards in an earlier
    /// component are taken literally.
    pub(super) fn listed<'a>(&self, path: &'a [u8], globbing: bool) -> Result<Listed<'a>, Reply> {
        let vpath = self.resolve(path);
        let missing = match self.root().stat(&vpath) {
            Ok(_) => {
                let (pattern, prefix) = (None, &b""[..]);
                return Ok(Listed {
                    vpath,
                    pattern,
                    prefix,
                });
            }
            Err(e) => e,
        };
        let cut = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        let (prefix, last) = path.split_at(cut);
        if !globbing || !glob::has_wildcards(last) {
            return Err(from_fs(&missing));
        }
        if last.len() > glob::MAX_PATTERN {
            let why = format!(
                "Wildcard pattern too long (at most {} bytes).",
                glob::MAX_PATTERN
            );
            return Err(r(BAD_ARGUMENT, why));
        }
        let dir = self.resolve(if prefix.is_empty() { b"." } else { prefix });
        match self.root().stat(&dir) {
            Ok(st) if st.is_dir() => Ok(Listed {
                vpath: dir,
                pattern: Some(last),
                prefix,
            }),
            Ok(_) => Err(r(UNAVAILABLE_FILE, "No such file or directory.")),
            Err(e) => Err(from_fs(&e)),
        }
    }
}

/// Writes a listing (a directory's entries, those that match a pattern, or
/// one line for a file) to a data connection (LIST) or the control
/// connection (STAT).
pub(super) fn write_listing(
    out: &mut impl io::Write,
    root: &Root,
    access: Access,
    listed: &Listed,
    format: Format,
) -> io::Result<()> {
    let vpath = &listed.vpath[..];
    let st = root.stat(vpath)?;
    let now = now();
    if !st.is_dir() {
        let name = match format {
            Format::Long { .. } => fs::split_parent(vpath).map(|(_, n)| n).unwrap_or(b"/"),
            _ => vpath,
        };
        return listing::write_entry(out, name, &st, None, format, access, now);
    }
    let mut dir = root.read_dir(vpath)?;
    let follow = |name: &[u8]| {
        let mut child = vpath.to_vec();
        if child != b"/" {
            child.push(b'/');
        }
        child.extend_from_slice(name);
        root.stat(&child).ok()
    };
    let shape = entries::Shape {
        format,
        access,
        now,
        pattern: listed.pattern,
        prefix: listed.prefix,
    };
    entries::write_dir(out, &mut dir, shape, &st, follow)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ListKind {
    List,
    Nlst,
    Mlsd,
}
