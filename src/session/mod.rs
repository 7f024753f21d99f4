//! One control connection: its state, `run`, the command loop, dispatch, errors to replies.
//! A client's line reaches the log only quoted (PASS never), most commands wait for login,
//! and a silent client meets the idle or login deadline; the handlers live in the rooms below.

use crate::auth::{Identity, Users};
use crate::command::{self, Command, TransferType};
use crate::config::Config;
use crate::data::{self, Pending};
use crate::fs::{normalize, Root};
use crate::listing;
use crate::log::Quoted;
use crate::relay::Arrival;
use crate::reply::*;
use crate::sys;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod control;
mod files;
mod hash;
mod login;
mod secure;
mod transfer;
mod upload;
mod waiting;

pub use control::MAX_LINE;
use control::{Control, ControlStream, Input, SHUTDOWN_CHECK};
use login::PreLogin;
use secure::Secure;
use transfer::ListKind;
use upload::StoreKind;
pub use waiting::{Ticket, Waiting};

/// What every session shares: the configuration, the served root and the
/// accounts (replaced as a whole on SIGHUP).
pub struct Context {
    pub config: Config,
    pub root: Root,
    pub users: RwLock<Arc<Users>>,
    pub data: data::Settings,
    pub xferlog: Option<crate::log::XferLog>,
    /// The upload hook's pipe to its runner (`upload_hook`).
    pub hook: Option<crate::hook::Hook>,
    /// Set on SIGTERM/SIGINT: idle sessions say 421 and close.
    pub shutdown: AtomicBool,
    /// Sessions that have not logged in yet (see `waiting.rs`).
    pub waiting: Waiting,
    /// Failed logins per address and the bans they earned (`ban_after`).
    pub bans: crate::ban::Bans,
    /// The certificate (tls = yes or required), replaced on SIGHUP.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::Certs>,
}

impl Context {
    pub fn users(&self) -> Arc<Users> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
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
    root: Option<Arc<Root>>,
    /// Anonymous writes resolve beneath this root, opened at the upload
    /// directory, so a symlink planted inside it cannot lead elsewhere.
    upload_root: Option<Arc<Root>>,
    cwd: Vec<u8>,
    ascii: bool,
    rest: u64,
    rename_from: Option<Vec<u8>>,
    pending: Pending,
    epsv_all: bool,
    failures: u32,
    /// The MLSx facts chosen with OPTS MLST.
    facts: u8,
    /// The algorithm chosen with OPTS HASH.
    hash_algo: crate::digest::Algo,
    umask: u32,
    idle_timeout: Duration,
    /// USER/PASS must succeed before this.
    login_deadline: Instant,
    pre_login: PreLogin<'a>,
    /// Gives back the session's worker and its address's count (see `send_last`).
    release_slot: &'a dyn Fn(),
    secure: Secure,
}

/// How a connection came to its session.
pub struct Start {
    /// Who the client is (behind a balancer: from its PROXY header).
    pub arrival: Arrival,
    /// Its place among the sessions waiting to log in (`Pool::admit`, or
    /// inetd mode).
    pub ticket: Ticket,
    /// It came to an implicit FTPS listener and starts with a TLS handshake.
    pub implicit: bool,
}

/// Serves one control connection until QUIT, timeout, error or a closed socket.
/// `release_slot` gives back what the pool reserved for it, before the last reply.
pub fn run(stream: TcpStream, ctx: &Context, start: Start, release_slot: &dyn Fn()) {
    let Start {
        arrival,
        ticket,
        implicit,
    } = start;
    let peer = arrival.peer;
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _ = sys::set_oob_inline(&stream);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(ctx.config.data_timeout)));
    let _ = stream.set_read_timeout(Some(SHUTDOWN_CHECK));
    let started = Instant::now();
    // A balancer's health check every few seconds must not fill the log.
    let level = if arrival.health_check {
        log::Level::Debug
    } else {
        log::Level::Info
    };
    match arrival.via {
        Some(balancer) => log::log!(level, "session opened: {peer} via {balancer}"),
        None if arrival.health_check => log::log!(level, "health check from {peer}"),
        None => log::log!(level, "session opened: {peer}"),
    }
    let mut session = Session {
        ctx,
        ctl: Control::new(ControlStream::Plain(stream)),
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
        hash_algo: crate::digest::Algo::Sha256,
        umask: ctx.config.umask,
        idle_timeout: Duration::from_secs(ctx.config.idle_timeout),
        login_deadline: started + Duration::from_secs(ctx.config.login_timeout),
        pre_login: PreLogin::held(&ctx.waiting, ticket),
        release_slot,
        secure: Secure::default(),
    };
    if let Err(e) = session.start(implicit) {
        log::debug!("session {peer}: {e}");
    }
    log::log!(
        level,
        "session closed: {peer} after {}s",
        crate::log::Secs(started.elapsed(), 1)
    );
}

impl Session<'_> {
    /// The handshake first on an implicit listener (data is then protected
    /// by default, as implicit clients expect), then the commands.
    fn start(&mut self, implicit: bool) -> io::Result<()> {
        if implicit {
            #[cfg(feature = "tls")]
            {
                let ControlStream::Plain(tcp) = &self.ctl.stream else {
                    return Ok(());
                };
                let tcp = tcp.try_clone()?;
                if self.upgrade_control(tcp).is_err() {
                    return Ok(());
                }
                self.secure.private = true;
            }
            #[cfg(not(feature = "tls"))]
            return Ok(());
        }
        self.serve()
    }

    fn serve(&mut self) -> io::Result<()> {
        let banner = self.ctx.config.banner.clone();
        self.write_reply(READY, &banner)?;
        loop {
            let input = self.ctl.read_line(
                self.wait_limit(),
                &self.ctx.shutdown,
                self.pre_login.evict_flag(),
            )?;
            let line = match input {
                Input::TimedOut
                    if self.identity.is_none() && Instant::now() >= self.login_deadline =>
                {
                    log::info!("{}: no login within login_timeout; closing", self.peer);
                    self.send_last(UNAVAILABLE, "Login timeout: closing control connection.")?;
                    return Ok(());
                }
                Input::TimedOut => {
                    self.send_last(UNAVAILABLE, "Timeout: closing control connection.")?;
                    return Ok(());
                }
                Input::Evicted => {
                    log::info!(
                        "{}: closed to make room for a new client (its address held the most places waiting to log in)",
                        self.peer
                    );
                    self.send_last(UNAVAILABLE, "Too many connections waiting to log in.")?;
                    return Ok(());
                }
                Input::ShuttingDown => {
                    self.send_last(UNAVAILABLE, "Server shutting down.")?;
                    return Ok(());
                }
                Input::Closed => return Ok(()),
                Input::TooLong => {
                    self.write_reply(SYNTAX_ERROR, "Command line too long.")?;
                    continue;
                }
                Input::Overflow => {
                    log::info!(
                        "{}: a command line ran past {} bytes without an end of line; closing",
                        self.peer,
                        2 * MAX_LINE
                    );
                    self.send_last(SYNTAX_ERROR, "Command line too long.")?;
                    return Ok(());
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
        self.write_reply(reply.0, &reply.1)
    }

    /// Writes one reply; before login without waiting past an eviction
    /// (`Control::send_watching`).
    fn write_reply(&mut self, code: u16, text: &str) -> io::Result<()> {
        match self.pre_login.waiting_flag() {
            Some(evict) => self
                .ctl
                .send_watching(code, text, evict, self.ctx.data.data_timeout),
            None => self.ctl.send(code, text),
        }
    }

    /// The last reply before closing. The session's worker and its address's
    /// count are given back first: a client that saw 221 or 421 and connects
    /// again at once never finds its old session still counted.
    pub(super) fn send_last(&mut self, code: u16, text: &str) -> io::Result<()> {
        (self.release_slot)();
        self.write_reply(code, text)
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
                self.send_last(GOODBYE, "Goodbye.")?;
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
            Command::Dele(path) => {
                self.modify(&path, "DELE", "Delete operation successful.", |root, p| {
                    root.remove_file(p)
                })
            }
            Command::Rmd(path) => self.modify(
                &path,
                "RMD",
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
            Command::Hash(path) => self.hash(&path)?,
            Command::Mdtm(path) => self.mdtm(&path),
            Command::Mfmt(time, path) => self.mfmt(time, &path),
            Command::Site(arg) => self.site(&arg),
            Command::Syst => r(SYSTEM, "UNIX Type: L8"),
            Command::Stat(path) => self.stat(&path)?,
            Command::Help(_) => r(HELP, HELP_TEXT),
            Command::Noop => r(OK, "NOOP ok."),
            Command::Feat => r(STATUS, self.with_hash_feature(self.features())),
            Command::Opts(arg) => self.opts(&arg),
            Command::Host(_) if self.identity.is_some() => {
                r(BAD_SEQUENCE, "HOST must come before login.")
            }
            Command::Host(_) => r(READY, "Host accepted."),
            Command::Auth(tls) => return self.auth(tls),
            Command::Pbsz => self.pbsz(),
            Command::Prot(level) => self.prot(level),
            Command::Ccc => self.ccc(),
            Command::BadArgument(why) => r(BAD_ARGUMENT, why),
            Command::Unknown(_) => r(SYNTAX_ERROR, "Unknown command."),
        };
        self.send(reply)?;
        Ok(Flow::Continue)
    }

    /// OPTS UTF8, OPTS MLST (the facts MLSx list) and OPTS HASH (its
    /// algorithm); anything else is refused.
    fn opts(&mut self, arg: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(arg);
        let (option, value) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        match (
            option.to_ascii_uppercase().as_str(),
            value.trim().to_ascii_uppercase().as_str(),
        ) {
            ("UTF8", "ON" | "") => r(OK, "Always in UTF8 mode."),
            ("UTF8", "OFF") => r(OK, "Names are passed through as bytes."),
            ("HASH", _) => self.opts_hash(value),
            ("MLST", _) => {
                self.facts = listing::select_facts(value);
                r(OK, format!("MLST OPTS {}", listing::fact_list(self.facts)))
            }
            _ => r(BAD_ARGUMENT, "Option not understood."),
        }
    }

    // ------------------------------------------------------------ paths

    fn root(&self) -> &Root {
        self.root
            .as_deref()
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
}

fn from_fs(e: &io::Error) -> Reply {
    let (code, text) = fs_error(e);
    r(code, text)
}

const FEATURES: &str = "Features:\nEPRT\nEPSV\nMDTM\nMFMT\nMLST type*;size*;modify*;perm*;unix.mode*;unique*;\nPASV\nREST STREAM\nSIZE\nTVFS\nUTF8\nEnd";

const HELP_TEXT: &str = "The following commands are recognized:\n\
ABOR ACCT ALLO APPE CDUP CWD  DELE EPRT EPSV FEAT HASH HELP HOST LIST MDTM MFMT\n\
MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD  QUIT REIN REST RETR RMD\n\
RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCUP XCWD XMKD XPWD XRMD\n\
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
