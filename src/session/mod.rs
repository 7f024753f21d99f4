//! One control connection: its state (user, cwd, type, rest offset, rename
//! source, data channel) and the command loop. Standalone, inetd and systemd
//! sessions all run through `run`.

use crate::auth::{Identity, Users, Write};
use crate::command::{self, Command, EpsvArg, TransferType};
use crate::config::Config;
use crate::data::{self, Failure, Pending};
use crate::fs::{self, normalize, Root, Upload};
use crate::listing::{self, Access, Format};
use crate::log::Quoted;
use crate::reply::{self, *};
use crate::sys;
use std::io::{self, BufWriter, Seek, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod control;
mod login;

pub use control::MAX_LINE;
use control::{Control, Input, SHUTDOWN_CHECK};
use login::PreLogin;

/// What every session shares: the configuration, the served root and the
/// accounts (replaced as a whole on SIGHUP).
pub struct Context {
    pub config: Config,
    pub root: Root,
    pub users: RwLock<Arc<Users>>,
    pub data: data::Settings,
    pub xferlog: Option<crate::log::XferLog>,
    /// Set on SIGTERM/SIGINT: idle sessions say 421 and close.
    pub shutdown: AtomicBool,
    /// Sessions that have not logged in yet. At most half the pool may wait
    /// to log in, so clients that never log in cannot keep out those who do.
    pub pre_login: AtomicUsize,
}

impl Context {
    pub fn users(&self) -> Arc<Users> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts one more session waiting to log in, unless half the pool
    /// already is. The session gives it back when it logs in or ends.
    pub fn count_pre_login(&self) -> bool {
        let cap = self.config.max_clients.div_ceil(2).max(1);
        self.pre_login
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }
}

/// Maps a filesystem error to the reply a client sees; never a host path.
fn fs_error(e: &io::Error) -> (u16, &'static str) {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            (UNAVAILABLE_FILE, "No such file or directory.")
        }
        Some(libc::EACCES) | Some(libc::EPERM) => (UNAVAILABLE_FILE, "Permission denied."),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => (NO_SPACE, "Insufficient storage space."),
        Some(libc::EEXIST) => (UNAVAILABLE_FILE, "File exists."),
        Some(libc::EISDIR) => (UNAVAILABLE_FILE, "Is a directory."),
        Some(libc::ENOTEMPTY) => (UNAVAILABLE_FILE, "Directory not empty."),
        Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) | Some(libc::EILSEQ) => {
            (BAD_NAME, "File name not allowed.")
        }
        Some(libc::ELOOP) => (UNAVAILABLE_FILE, "Too many levels of symbolic links."),
        Some(libc::EROFS) => (UNAVAILABLE_FILE, "Read-only file system."),
        Some(libc::EXDEV) => (UNAVAILABLE_FILE, "Cannot rename across file systems."),
        _ => (LOCAL_ERROR, "Local error in processing."),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// What the loop does after a command.
enum Flow {
    Continue,
    Close,
}

type Reply = (u16, String);

fn r(code: u16, text: impl Into<String>) -> Reply {
    (code, text.into())
}

struct Session<'a> {
    ctx: &'a Context,
    ctl: Control,
    peer: SocketAddr,
    local: SocketAddr,
    user: Option<String>,
    identity: Option<Identity>,
    root: Option<Root>,
    /// Anonymous writes resolve beneath this root, opened at the upload
    /// directory, so a symlink planted inside it cannot lead elsewhere.
    upload_root: Option<Root>,
    cwd: Vec<u8>,
    ascii: bool,
    rest: u64,
    rename_from: Option<Vec<u8>>,
    pending: Pending,
    epsv_all: bool,
    failures: u32,
    /// The MLSx facts chosen with OPTS MLST.
    facts: u8,
    umask: u32,
    idle_timeout: Duration,
    /// USER/PASS must succeed before this.
    login_deadline: Instant,
    pre_login: PreLogin<'a>,
}

/// Serves one control connection until QUIT, timeout, error or a closed socket.
/// The caller has counted it in `ctx.pre_login` (`Pool::admit`, or inetd mode).
pub fn run(stream: TcpStream, ctx: &Context) {
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _ = sys::set_oob_inline(&stream);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(ctx.config.data_timeout)));
    let _ = stream.set_read_timeout(Some(SHUTDOWN_CHECK));
    let started = Instant::now();
    log::info!("session opened: {peer}");
    let mut session = Session {
        ctx,
        ctl: Control::new(stream),
        peer,
        local,
        user: None,
        identity: None,
        root: None,
        upload_root: None,
        cwd: b"/".to_vec(),
        ascii: false,
        rest: 0,
        rename_from: None,
        pending: Pending::None,
        epsv_all: false,
        failures: 0,
        facts: listing::ALL_FACTS,
        umask: ctx.config.umask,
        idle_timeout: Duration::from_secs(ctx.config.idle_timeout),
        login_deadline: started + Duration::from_secs(ctx.config.login_timeout),
        pre_login: PreLogin::held(&ctx.pre_login),
    };
    if let Err(e) = session.serve() {
        log::debug!("session {peer}: {e}");
    }
    log::info!(
        "session closed: {peer} after {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

impl Session<'_> {
    fn serve(&mut self) -> io::Result<()> {
        let banner = self.ctx.config.banner.clone();
        self.ctl.send(READY, &banner)?;
        loop {
            let input = self.ctl.read_line(self.wait_limit(), &self.ctx.shutdown)?;
            let line = match input {
                Input::TimedOut
                    if self.identity.is_none() && Instant::now() >= self.login_deadline =>
                {
                    log::info!("{}: no login within login_timeout; closing", self.peer);
                    self.ctl
                        .send(UNAVAILABLE, "Login timeout: closing control connection.")?;
                    return Ok(());
                }
                Input::TimedOut => {
                    self.ctl
                        .send(UNAVAILABLE, "Timeout: closing control connection.")?;
                    return Ok(());
                }
                Input::ShuttingDown => {
                    self.ctl.send(UNAVAILABLE, "Server shutting down.")?;
                    return Ok(());
                }
                Input::Closed => return Ok(()),
                Input::TooLong => {
                    self.ctl.send(SYNTAX_ERROR, "Command line too long.")?;
                    continue;
                }
                Input::Line(line) => line,
            };
            if line.is_empty() {
                continue;
            }
            let cmd = command::parse(&line);
            if let Command::Pass(_) = cmd {
                log::debug!("{} <- PASS ****", self.peer);
            } else {
                log::debug!("{} <- {}", self.peer, Quoted(&line));
            }
            if let Flow::Close = self.dispatch(cmd)? {
                return Ok(());
            }
        }
    }

    fn send(&mut self, reply: Reply) -> io::Result<()> {
        self.ctl.send(reply.0, &reply.1)
    }

    /// How long the next command may take to arrive: the idle timeout, and
    /// before login no longer than what is left of the login deadline.
    fn wait_limit(&self) -> Duration {
        if self.identity.is_some() {
            return self.idle_timeout;
        }
        let left = self
            .login_deadline
            .saturating_duration_since(Instant::now());
        left.min(self.idle_timeout)
    }

    fn dispatch(&mut self, cmd: Command) -> io::Result<Flow> {
        if self.identity.is_none() && !cmd.allowed_before_login() {
            self.send(r(NOT_LOGGED_IN, "Please login with USER and PASS."))?;
            return Ok(Flow::Continue);
        }
        // RNTO must come right after RNFR (RFC 959 4.1.3): anything else
        // forgets the rename source.
        if !matches!(cmd, Command::Rnto(_) | Command::Rnfr(_)) {
            self.rename_from = None;
        }
        let reply = match cmd {
            Command::User(name) => self.user(name),
            Command::Pass(password) => return self.pass(&password),
            Command::Acct => r(NOT_NEEDED, "ACCT not needed."),
            Command::Quit => {
                self.send(r(GOODBYE, "Goodbye."))?;
                return Ok(Flow::Close);
            }
            Command::Rein => self.rein(),
            Command::Port(addr) | Command::Eprt(addr) => self.port(addr),
            Command::Pasv => self.pasv(),
            Command::Epsv(arg) => self.epsv(arg),
            Command::Type(TransferType::Ascii) => {
                self.ascii = true;
                r(OK, "Switching to ASCII mode.")
            }
            Command::Type(TransferType::Binary) => {
                self.ascii = false;
                r(OK, "Switching to Binary mode.")
            }
            Command::Stru(b'F') => r(OK, "Structure set to F."),
            Command::Stru(_) => r(NOT_FOR_PARAMETER, "Only STRU F is supported."),
            Command::Mode(b'S') => r(OK, "Mode set to S."),
            Command::Mode(_) => r(NOT_FOR_PARAMETER, "Only MODE S is supported."),
            Command::Retr(path) => self.retr(&path)?,
            Command::Stor(path) => self.store(&path, StoreKind::Replace)?,
            Command::Appe(path) => self.store(&path, StoreKind::Append)?,
            Command::Stou(path) => self.store(&path, StoreKind::Unique)?,
            Command::Allo => r(NOT_NEEDED, "ALLO command ignored."),
            Command::Rest(offset) => {
                self.rest = offset;
                r(PENDING, format!("Restart position accepted ({offset})."))
            }
            Command::Rnfr(path) => self.rnfr(&path),
            Command::Rnto(path) => self.rnto(&path),
            Command::Abor => {
                self.pending = Pending::None;
                r(225, "No transfer to ABOR.")
            }
            Command::Dele(path) => self.modify(&path, "Delete operation successful.", |root, p| {
                root.remove_file(p)
            }),
            Command::Rmd(path) => self.modify(
                &path,
                "Remove directory operation successful.",
                |root, p| root.remove_dir(p),
            ),
            Command::Mkd(path) => self.mkd(&path),
            Command::Pwd => self.pwd(),
            Command::Cwd(path) => self.cwd(&path),
            Command::Cdup => self.cwd(b".."),
            Command::List(arg) => self.list(&arg, ListKind::List)?,
            Command::Nlst(arg) => self.list(&arg, ListKind::Nlst)?,
            Command::Mlsd(arg) => self.list(&arg, ListKind::Mlsd)?,
            Command::Mlst(path) => self.mlst(&path),
            Command::Size(path) => self.size(&path),
            Command::Mdtm(path) => self.mdtm(&path),
            Command::Mfmt(time, path) => self.mfmt(time, &path),
            Command::Site(arg) => self.site(&arg),
            Command::Syst => r(SYSTEM, "UNIX Type: L8"),
            Command::Stat(path) => self.stat(&path)?,
            Command::Help(_) => r(HELP, HELP_TEXT),
            Command::Noop => r(OK, "NOOP ok."),
            Command::Feat => r(STATUS, FEATURES),
            Command::Opts(arg) => self.opts(&arg),
            Command::Host(_) if self.identity.is_some() => {
                r(BAD_SEQUENCE, "HOST must come before login.")
            }
            Command::Host(_) => r(READY, "Host accepted."),
            Command::Auth => r(NOT_IMPLEMENTED, "TLS is not supported."),
            Command::Pbsz => r(NOT_IMPLEMENTED, "TLS is not supported."),
            Command::Prot => r(NO_TLS, "Only PROT C without TLS."),
            Command::BadArgument(why) => r(BAD_ARGUMENT, why),
            Command::Unknown(_) => r(SYNTAX_ERROR, "Unknown command."),
        };
        self.send(reply)?;
        Ok(Flow::Continue)
    }

    fn opts(&mut self, arg: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(arg);
        let (option, value) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        match (
            option.to_ascii_uppercase().as_str(),
            value.trim().to_ascii_uppercase().as_str(),
        ) {
            ("UTF8", "ON" | "") => r(OK, "Always in UTF8 mode."),
            ("UTF8", "OFF") => r(OK, "Names are passed through as bytes."),
            ("MLST", _) => {
                self.facts = listing::select_facts(value);
                r(OK, format!("MLST OPTS {}", listing::fact_list(self.facts)))
            }
            _ => r(BAD_ARGUMENT, "Option not understood."),
        }
    }

    // ------------------------------------------------------------ data channel set-up

    fn port(&mut self, target: SocketAddr) -> Reply {
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

    fn pasv(&mut self) -> Reply {
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

    fn epsv(&mut self, arg: EpsvArg) -> Reply {
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

    /// Opens the data connection that PASV/EPSV/PORT/EPRT prepared.
    fn open_data(&mut self) -> Result<TcpStream, Reply> {
        let settings = &self.ctx.data;
        let stream = match std::mem::take(&mut self.pending) {
            Pending::None => return Err(r(CANT_OPEN_DATA, "Use PORT, PASV or EPSV first.")),
            Pending::Passive(listener) => {
                data::accept_passive(&listener, self.peer.ip(), settings.accept_timeout)
            }
            Pending::Active(target) => data::connect_active(target, self.local.ip(), settings),
        };
        let stream = stream.map_err(|e| {
            log::info!("{}: data connection failed: {e}", self.peer);
            r(CANT_OPEN_DATA, "Failed to establish data connection.")
        })?;
        Ok(stream)
    }

    // ------------------------------------------------------------ paths and permissions

    fn root(&self) -> &Root {
        self.root
            .as_ref()
            .expect("commands that touch files run only after login")
    }

    fn resolve(&self, arg: &[u8]) -> Vec<u8> {
        normalize(&self.cwd, arg)
    }

    fn identity(&self) -> &Identity {
        self.identity
            .as_ref()
            .expect("commands that touch files run only after login")
    }

    /// Where a write to `vpath` (already allowed by `forbid`) resolves: a
    /// named user's root, or for anonymous users the root opened at the upload
    /// directory with the path rebased onto it. The policy is enforced by
    /// where the kernel resolves, not by the path string: a symlink planted in
    /// the upload directory cannot carry a write out of it.
    fn write_root(&self, vpath: &[u8]) -> io::Result<(&Root, Vec<u8>)> {
        let identity = self.identity();
        if identity.full_write {
            return Ok((self.root(), vpath.to_vec()));
        }
        let denied = || io::Error::from_raw_os_error(libc::EACCES);
        let (Some(dir), Some(root)) = (identity.upload_dir.as_deref(), self.upload_root.as_ref())
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
    fn refuse_hidden_name(vpath: &[u8]) -> Option<Reply> {
        let name = fs::split_parent(vpath).map(|(_, n)| n).unwrap_or(b"");
        (!listing::listable(name)).then(|| r(BAD_NAME, "File name not allowed."))
    }

    /// Checks write permission; `None` means allowed.
    fn forbid(&self, what: Write, vpath: &[u8]) -> Option<Reply> {
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

    fn modify(
        &mut self,
        arg: &[u8],
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
            Err(e) => from_fs(&e),
        }
    }

    // ------------------------------------------------------------ directories

    fn pwd(&self) -> Reply {
        let quoted = String::from_utf8_lossy(&reply::quote_path(&self.cwd)).into_owned();
        r(CREATED, format!("{quoted} is the current directory."))
    }

    fn cwd(&mut self, arg: &[u8]) -> Reply {
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

    fn mkd(&mut self, arg: &[u8]) -> Reply {
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
            Err(e) => from_fs(&e),
        }
    }

    fn rnfr(&mut self, arg: &[u8]) -> Reply {
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

    fn rnto(&mut self, arg: &[u8]) -> Reply {
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
            Err(e) => from_fs(&e),
        }
    }

    // ------------------------------------------------------------ file facts

    fn size(&self, arg: &[u8]) -> Reply {
        match self.root().stat(&self.resolve(arg)) {
            Ok(st) if st.is_file() => r(FILE_STATUS, st.size.to_string()),
            Ok(_) => r(
                UNAVAILABLE_FILE,
                "Could not get file size: not a plain file.",
            ),
            Err(e) => from_fs(&e),
        }
    }

    fn mdtm(&self, arg: &[u8]) -> Reply {
        match self.root().stat(&self.resolve(arg)) {
            Ok(st) if st.is_file() => r(FILE_STATUS, listing::timeval(st.mtime)),
            Ok(_) => r(
                UNAVAILABLE_FILE,
                "Could not get modification time: not a plain file.",
            ),
            Err(e) => from_fs(&e),
        }
    }

    fn mfmt(&mut self, time: i64, arg: &[u8]) -> Reply {
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
    fn access(&self, vpath: &[u8]) -> Access {
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

    fn may_read(&self, st: &sys::FileStat) -> bool {
        !self.world_readable_only() || st.mode & 0o004 != 0
    }

    fn mlst(&self, arg: &[u8]) -> Reply {
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
    /// multi-line 213 reply, streamed line by line through a small buffer as
    /// LIST streams to the data connection. A client chooses the directory
    /// size and may stop reading: memory stays at the buffer, and a reply
    /// nobody reads ends the session at the control write timeout.
    fn stat(&mut self, arg: &[u8]) -> io::Result<Reply> {
        if self.identity.is_none() || arg.is_empty() {
            return Ok(r(STATUS, self.status_text()));
        }
        let (_, path) = listing::split_options(arg);
        let vpath = self.resolve(path);
        if let Err(e) = self.root().stat(&vpath) {
            return Ok(from_fs(&e));
        }
        let head = format!(
            "{FILE_STATUS}-Status of {}:\r\n",
            show(path).replace('\r', "")
        );
        let stream = &self.ctl.stream;
        let mut out = Indented::new(BufWriter::with_capacity(16 * 1024, stream));
        out.inner.write_all(head.as_bytes())?;
        match self.write_listing(&mut out, &vpath, Format::Long { all: true }) {
            Ok(()) => out.inner.flush()?,
            Err(e) => {
                // Entries are already on the wire: end the reply, say why.
                out.inner.flush()?;
                log::info!("{}: STAT of {} failed: {e}", self.peer, Quoted(&vpath));
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

    fn site(&mut self, arg: &[u8]) -> Reply {
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
                let (code, text) = self.modify(&path, "SITE CHMOD command ok.", move |root, p| {
                    root.chmod(p, mode & 0o777)
                });
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

    // ------------------------------------------------------------ listings

    /// Writes a listing of `vpath` (a directory's entries, or one line for a file).
    fn write_listing(
        &self,
        out: &mut impl io::Write,
        vpath: &[u8],
        format: Format,
    ) -> io::Result<()> {
        let root = self.root();
        let st = root.stat(vpath)?;
        let access = self.access(vpath);
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
        listing::write_dir(out, &mut dir, format, access, &st, now, follow)
    }

    fn list(&mut self, arg: &[u8], kind: ListKind) -> io::Result<Reply> {
        let (all, path) = match kind {
            ListKind::Mlsd => (true, arg),
            _ => listing::split_options(arg),
        };
        let vpath = self.resolve(path);
        let format = match kind {
            ListKind::List => Format::Long { all },
            ListKind::Nlst => Format::Names,
            ListKind::Mlsd => Format::Facts,
        };
        // Answer 550 before any data connection: sync tools decide from it.
        match self.root().stat(&vpath) {
            Ok(st) if kind == ListKind::Mlsd && !st.is_dir() => {
                return Ok(r(BAD_ARGUMENT, "MLSD needs a directory."))
            }
            Ok(_) => {}
            Err(e) => return Ok(from_fs(&e)),
        }
        let sock = match self.open_data() {
            Ok(sock) => sock,
            Err(reply) => return Ok(reply),
        };
        self.send(r(OPENING_DATA, "Here comes the directory listing."))?;
        // Listings write through a blocking buffer: the socket timeouts bound a stall.
        if data::set_data_timeouts(&sock, self.ctx.data.data_timeout).is_err() {
            return Ok(r(CANT_OPEN_DATA, "Failed to set up data connection."));
        }
        let mut out = BufWriter::with_capacity(64 * 1024, &sock);
        let result = self
            .write_listing(&mut out, &vpath, format)
            .and_then(|()| out.flush());
        drop(out);
        drop(sock);
        Ok(match result {
            Ok(()) => r(TRANSFER_DONE, "Directory send OK."),
            Err(e) => {
                log::info!("{}: listing of {} failed: {e}", self.peer, Quoted(&vpath));
                r(TRANSFER_ABORTED, "Failure writing network stream.")
            }
        })
    }

    // ------------------------------------------------------------ transfers

    fn retr(&mut self, arg: &[u8]) -> io::Result<Reply> {
        let vpath = self.resolve(arg);
        let offset = std::mem::take(&mut self.rest);
        if Self::refuse_hidden_name(&vpath).is_some() {
            return Ok(r(UNAVAILABLE_FILE, "No such file or directory."));
        }
        let (mut file, size) = match self.root().open_file(&vpath) {
            Ok((_, st)) if !self.may_read(&st) => {
                return Ok(r(UNAVAILABLE_FILE, "Permission denied."))
            }
            Ok((file, st)) => (file, st.size),
            Err(e) => return Ok(from_fs(&e)),
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
        let started = Instant::now();
        let ascii = self.ascii;
        let rate = self.rate_limit();
        let mut watch = data::Watch::new(&mut self.ctl, self.ctx.data.data_timeout, rate);
        let outcome = if ascii {
            data::send_ascii(&sock, &mut file, offset, &mut watch)
        } else {
            data::send_binary(
                &sock,
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

    fn store(&mut self, arg: &[u8], kind: StoreKind) -> io::Result<Reply> {
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
            Err(e) => return Ok(from_fs(&e)),
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
        let started = Instant::now();
        let ascii = self.ascii;
        let rate = self.rate_limit();
        let mut watch = data::Watch::new(&mut self.ctl, self.ctx.data.data_timeout, rate);
        let mut outcome = data::receive(&sock, target.file(), ascii, &mut watch);
        drop(sock);
        if let Ok(moved) = outcome {
            if let Err(e) = target.finish(offset + moved, self.ctx.config.fsync_uploads) {
                outcome = Err((Failure::File(e), moved));
            }
        }
        self.log_transfer(kind.verb(), &vpath, &outcome, started);
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
    fn rate_limit(&self) -> u64 {
        let config = &self.ctx.config;
        match &self.identity {
            Some(identity) if identity.anonymous => config.anon_max_rate,
            _ => config.max_rate,
        }
    }

    fn log_transfer(&self, verb: &str, vpath: &[u8], outcome: &data::Outcome, started: Instant) {
        let user = self
            .identity
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or("-");
        let secs = started.elapsed().as_secs_f64();
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
                "{} {} {verb} {} ok {bytes} bytes in {secs:.3}s",
                self.peer,
                Quoted(user.as_bytes()),
                Quoted(vpath)
            ),
            Err((why, bytes)) => log::info!(
                "{} {} {verb} {} failed ({why:?}) after {bytes} bytes in {secs:.3}s",
                self.peer,
                Quoted(user.as_bytes()),
                Quoted(vpath)
            ),
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

/// Where an upload goes.
enum Target {
    New(Upload),
    InPlace { file: std::fs::File, truncate: bool },
}

impl Target {
    fn file(&mut self) -> &mut std::fs::File {
        match self {
            Target::New(upload) => &mut upload.file,
            Target::InPlace { file, .. } => file,
        }
    }

    /// Makes a finished upload visible (or, for REST+STOR, cuts what lay
    /// beyond the new end).
    fn finish(self, end: u64, fsync: bool) -> io::Result<()> {
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
enum StoreKind {
    Replace,
    Append,
    Unique,
}

impl StoreKind {
    fn verb(self) -> &'static str {
        match self {
            StoreKind::Replace => "STOR",
            StoreKind::Append => "APPE",
            StoreKind::Unique => "STOU",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    List,
    Nlst,
    Mlsd,
}

fn from_fs(e: &io::Error) -> Reply {
    let (code, text) = fs_error(e);
    r(code, text)
}

const FEATURES: &str = "Features:\nEPRT\nEPSV\nMDTM\nMFMT\nMLST type*;size*;modify*;perm*;unix.mode*;unique*;\nPASV\nREST STREAM\nSIZE\nTVFS\nUTF8\nEnd";

const HELP_TEXT: &str = "The following commands are recognized:\n\
ABOR ACCT ALLO APPE CDUP CWD  DELE EPRT EPSV FEAT HELP HOST LIST MDTM MFMT MKD\n\
MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD  QUIT REIN REST RETR RMD  RNFR\n\
RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCUP XCWD XMKD XPWD XRMD\n\
Help OK.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_codes_without_paths() {
        assert_eq!(fs_error(&io::Error::from_raw_os_error(libc::ENOENT)).0, 550);
        assert_eq!(fs_error(&io::Error::from_raw_os_error(libc::ENOSPC)).0, 452);
        assert_eq!(fs_error(&io::Error::from_raw_os_error(libc::EDQUOT)).0, 452);
        assert_eq!(fs_error(&io::Error::from_raw_os_error(libc::EINVAL)).0, 553);
        assert_eq!(fs_error(&io::Error::from_raw_os_error(libc::EIO)).0, 451);
    }
}
