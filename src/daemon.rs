//! Start-up in the design's order (sockets, what lives outside the root,
//! confinement, the pool) and the main thread's life after it: SIGHUP
//! reloads, SIGTERM and SIGINT shut down. Nothing here reads client input;
//! what a client controls is bounded in session/ and server.rs.

use crate::config::{self, Config};
use crate::{activation, auth, data, fs, privilege, relay, sandbox, server, session, sys};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Why start-up or serving failed: the exit status tells them apart.
pub enum Failure {
    /// A bad configuration (exit 2).
    Config(String),
    /// Anything else (exit 1).
    Runtime(String),
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

/// Where the sessions come from; true marks implicit FTPS.
enum Sockets {
    Listeners(Vec<(std::net::TcpListener, bool)>),
    One(std::net::TcpStream, bool),
}

impl Sockets {
    fn raw_fds(&self) -> Vec<RawFd> {
        match self {
            Sockets::Listeners(l) => l.iter().map(|(l, _)| l.as_raw_fd()).collect(),
            Sockets::One(s, _) => vec![s.as_raw_fd()],
        }
    }
}

/// Standalone: the `listen` addresses, then the implicit FTPS ones.
fn bind_all(config: &Config) -> io::Result<Vec<(std::net::TcpListener, bool)>> {
    let plain = server::bind(&config.listen)?
        .into_iter()
        .map(|l| (l, false));
    let implicit = server::bind(&config.tls_implicit_listen)?;
    Ok(plain
        .chain(implicit.into_iter().map(|l| (l, true)))
        .collect())
}

/// What SIGHUP does with the accounts.
enum Reload {
    /// No users file.
    Nothing,
    /// Not chrooted: re-read the users file by its path.
    Path(std::path::PathBuf),
    /// Chrooted: the file is out of reach, and no descriptor may lead out of
    /// the root, so say that account changes need a restart.
    Chrooted,
}

/// Set once the log goes to standard error, so that a start-up error is
/// printed there once, not as a log line and again as the exit message.
static LOGS_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// True when the server log is written to standard error.
pub fn logs_to_stderr() -> bool {
    LOGS_TO_STDERR.load(Ordering::SeqCst)
}

/// Start-up steps 2 to 5 of DESIGN.md, then serving.
pub fn start(mut config: Config, inetd: bool, implicit_tls: bool) -> Result<(), Failure> {
    // Memory after load (glibc): first of all, while nothing is open and no
    // thread runs. A failure only costs memory; logging is not set up yet.
    // inetd starts a process per connection: one session, no idle workers.
    if !inetd {
        let _ = sys::restart_without_thread_malloc_cache();
    }
    sys::tune_malloc();
    if implicit_tls && config.tls == config::TlsMode::No {
        return Err(Failure::Config(
            "--implicit-tls needs tls = yes or required".into(),
        ));
    }
    // 2. the sockets
    let sockets = if inetd {
        activation::clear_systemd_env();
        Sockets::One(
            activation::inetd_connection().map_err(runtime)?,
            implicit_tls,
        )
    } else {
        match activation::systemd_sockets().map_err(runtime)? {
            Some(activation::Inherited::Listeners(l)) => Sockets::Listeners(l),
            Some(activation::Inherited::Connection(c)) => Sockets::One(c, implicit_tls),
            None => Sockets::Listeners(bind_all(&config).map_err(runtime)?),
        }
    };
    // Nothing a parent leaked (an fd to /etc, a socket) may follow us into the
    // chroot: from here on every open descriptor is one we opened.
    let socket_fds = sockets.raw_fds();
    sys::close_inherited_fds(&socket_fds).map_err(runtime)?;

    // 3. everything outside the served root: logs, accounts, the root itself
    let stderr_unusable = !crate::log::stderr_is_journal()
        && (matches!(sockets, Sockets::One(..)) || sys::is_socket(sys::borrow_stdio(2)));
    let destination = crate::log::open_destination(
        config.log_target,
        config.log_file.as_deref(),
        &config.syslog_socket,
        stderr_unusable,
    )
    .map_err(|e| Failure::Config(e.to_string()))?;
    LOGS_TO_STDERR.store(
        matches!(
            destination,
            crate::log::Destination::Stderr | crate::log::Destination::Journal
        ),
        Ordering::SeqCst,
    );
    crate::log::init(config.log_level, destination, stderr_unusable);
    // A deep walk or many sessions must not meet a soft limit below the hard one.
    match sys::raise_nofile_limit() {
        Ok(limit) => check_nofile_limit(&config, &sockets, limit),
        Err(e) => ::log::warn!("cannot raise the open file limit: {e}"),
    }
    // The hook's runner: forked here, while the process has one thread and
    // runs as it was started, before the accounts and keys are read (so the
    // runner holds none), the chroot, the privilege drop, the pool and the
    // sandbox; it becomes the run-as account itself.
    let hook = crate::hook::start(&config, &socket_fds).map_err(Failure::Config)?;
    let xferlog = match &config.xferlog_file {
        Some(path) => {
            Some(crate::log::XferLog::open(path).map_err(|e| Failure::Config(e.to_string()))?)
        }
        None => None,
    };
    let users = match &config.users_file {
        Some(path) => load_users(path).map_err(Failure::Config)?,
        None => auth::Users::default(),
    };
    let root = fs::Root::open(&config.root)
        .map_err(|e| Failure::Config(format!("root {}: {e}", config.root.display())))?;
    resolve_pasv_address(&mut config)?;
    for warning in crate::setup::warnings(&config, &users) {
        ::log::warn!("{warning}");
    }
    #[cfg(feature = "tls")]
    let certs = load_certs(&config).map_err(Failure::Config)?;

    // 4. confinement and identity
    let chrooted = confine(&config)?;
    sys::umask(0);
    let reload = match (&config.users_file, chrooted) {
        (None, _) => Reload::Nothing,
        (Some(_), true) => Reload::Chrooted,
        (Some(path), false) => Reload::Path(path.clone()),
    };
    // 5. the kernel sandbox: on the main thread, before any other starts,
    // so that every session thread inherits it
    ::log::info!("{}", sandbox::apply(&config, &root, &users, chrooted));

    let data = data::Settings {
        accept_timeout: Duration::from_secs(config.accept_timeout),
        connect_timeout: Duration::from_secs(config.connect_timeout),
        data_timeout: Duration::from_secs(config.data_timeout),
        pasv_ports: (config.pasv_min_port != 0)
            .then_some((config.pasv_min_port, config.pasv_max_port)),
        from_port_20: config.connect_from_port_20,
        proxy: config.proxy_protocol.then(|| relay::Relay {
            from: config.proxy_from.clone(),
            timeout: relay::HEADER_TIMEOUT.min(Duration::from_secs(config.accept_timeout)),
        }),
    };
    let grace = Duration::from_secs(config.shutdown_grace);
    let waiting = session::Waiting::new(
        config.max_clients,
        Duration::from_secs(config.login_timeout),
    );
    let bans = crate::ban::Bans::new(config.ban_after, Duration::from_secs(config.ban_time));
    let ctx = Arc::new(session::Context {
        config,
        root,
        users: RwLock::new(Arc::new(users)),
        data,
        xferlog,
        hook,
        shutdown: AtomicBool::new(false),
        waiting,
        bans,
        #[cfg(feature = "tls")]
        tls: certs,
    });
    sys::install_signal_handlers().map_err(runtime)?;

    // 6. serve
    match sockets {
        Sockets::One(stream, implicit) => {
            // The session runs beside the main thread so that signals mean the
            // same as standalone: SIGHUP reloads, SIGTERM ends an idle session
            // with 421 and gives a running transfer the grace.
            let ticket = ctx.waiting.admit_uncapped();
            let session_ctx = Arc::clone(&ctx);
            let session = std::thread::Builder::new()
                .name("session".into())
                .spawn(move || match server::arrival(&stream, &session_ctx) {
                    Some(arrival) => {
                        let start = session::Start {
                            arrival,
                            ticket,
                            implicit,
                        };
                        session::run(stream, &session_ctx, start, &|| {})
                    }
                    None => session_ctx.waiting.leave(&ticket),
                })
                .map_err(runtime)?;
            wait_for_signals(&ctx, &reload, chrooted, || session.is_finished(), || 0);
            shut_down(&ctx, grace, || usize::from(!session.is_finished()));
            Ok(())
        }
        Sockets::Listeners(listeners) => {
            // Said only now, when the daemon is confined and ready: tests and
            // scripts read the bound address (port 0 works) from this line.
            for (listener, implicit) in &listeners {
                let kind = if *implicit { " (implicit FTPS)" } else { "" };
                match listener.local_addr() {
                    Ok(addr) => ::log::info!("listening on {addr}{kind}"),
                    Err(e) => ::log::warn!("listening on an unknown address: {e}"),
                }
            }
            let pool = server::Pool::start(Arc::clone(&ctx)).map_err(runtime)?;
            server::spawn_acceptors(listeners, &pool).map_err(runtime)?;
            wait_for_signals(&ctx, &reload, chrooted, || false, || pool.ended());
            shut_down(&ctx, grace, || pool.busy());
            Ok(())
        }
    }
}

/// Step 3: a host name in `pasv_address` becomes the address PASV replies
/// advertise, looked up while the resolver's files are still in reach.
fn resolve_pasv_address(config: &mut Config) -> Result<(), Failure> {
    let resolved = config.resolve_pasv_address().map_err(Failure::Config)?;
    if let Some((name, ip)) = resolved {
        ::log::info!("pasv_address {name} resolves to {ip}; PASV replies advertise {ip}");
    }
    Ok(())
}

/// Descriptors one session may hold at once: its control connection, its
/// root (shared by sessions with the same home, but a named user's own), a
/// passive listener and the data connection it accepts, the file being
/// transferred, and the directory a path is resolved or listed in.
const FDS_PER_SESSION: u64 = 6;
/// Descriptors besides the sessions and listeners: standard input, output
/// and error, the served root, the log and transfer log, the syslog socket,
/// the upload hook's pipe, each acceptor's spare, and a few for reloads.
const FDS_FIXED: u64 = 16;

/// Open files the process may need with every session busy.
fn nofile_needed(max_clients: usize, listeners: usize) -> u64 {
    FDS_FIXED + listeners as u64 + max_clients as u64 * FDS_PER_SESSION
}

/// Warns, with the figure to set, when the open file limit (already raised
/// to the hard limit) is below what `max_clients` sessions may need: past
/// it, clients get 421 (out of file descriptors) before `max_clients`.
fn check_nofile_limit(config: &Config, sockets: &Sockets, limit: u64) {
    let (sessions, listeners) = match sockets {
        Sockets::Listeners(l) => (config.max_clients, l.len()),
        Sockets::One(..) => (1, 0),
    };
    let needed = nofile_needed(sessions, listeners);
    if limit < needed {
        ::log::warn!(
            "max_clients = {sessions} may need {needed} open files but the limit is {limit}: \
             set LimitNOFILE={needed} in the systemd unit (or ulimit -n {needed}), \
             or lower max_clients; until then some clients get 421"
        );
    }
}

/// Step 4: as root, chroot into the served root and become the run-as
/// account; otherwise say once that the path layer alone confines clients.
/// True when the process is now chrooted.
fn confine(config: &Config) -> Result<bool, Failure> {
    if !privilege::is_root() {
        if config.connect_from_port_20 {
            return Err(Failure::Config(
                "connect_from_port_20 needs minftpd to be started as root".into(),
            ));
        }
        ::log::info!("not started as root: no chroot and no change of identity; confinement by the path layer alone");
        return Ok(false);
    }
    let account = privilege::resolve_run_as(&config.run_as).map_err(Failure::Config)?;
    if !config.chroot {
        ::log::warn!(
            "chroot = no: the path layer alone confines clients; keep this only if you know why"
        );
    }
    privilege::drop_root(
        &config.root,
        config.chroot,
        &account,
        config.connect_from_port_20,
    )
    .map_err(runtime)?;
    ::log::info!(
        "running as {} (uid {}, gid {}){}",
        account.name,
        account.uid,
        account.gid,
        if config.chroot {
            ", chrooted into the served root"
        } else {
            ""
        }
    );
    Ok(config.chroot)
}

/// How often, at most, free heap memory is given back while sessions end.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// The main thread's job once serving: reload the users file and the
/// certificate on SIGHUP, and return on SIGTERM or SIGINT, or once `done`
/// says there is nothing to serve. On the way it writes the counts of
/// repeated refusals, and once a second, when sessions have ended since the
/// last time (`ended` counts them), gives the heap's free memory back: what
/// a busy minute freed is back with the kernel a second after it.
fn wait_for_signals(
    ctx: &session::Context,
    reload: &Reload,
    chrooted: bool,
    done: impl Fn() -> bool,
    ended: impl Fn() -> u64,
) {
    let mut trimmed_at = (ended(), std::time::Instant::now());
    while !sys::termination_requested() && !done() {
        std::thread::sleep(Duration::from_millis(100));
        crate::log::flush_refusals();
        if trimmed_at.1.elapsed() >= TRIM_INTERVAL && ended() != trimmed_at.0 {
            trimmed_at = (ended(), std::time::Instant::now());
            sys::trim_heap();
        }
        if sys::take_reload_request() {
            reload_users(ctx, reload);
            #[cfg(feature = "tls")]
            reload_certs(ctx, chrooted);
            #[cfg(not(feature = "tls"))]
            let _ = chrooted;
        }
    }
}

/// Step 3 for TLS: the certificate and key, read before the chroot; any
/// problem stops start-up and names the file.
#[cfg(feature = "tls")]
fn load_certs(config: &Config) -> Result<Option<crate::tls::Certs>, String> {
    let (config::TlsMode::Yes | config::TlsMode::Required) = config.tls else {
        return Ok(None);
    };
    let Some(cert) = &config.tls_cert_file else {
        return Err("tls needs tls_cert_file".into());
    };
    let certs = crate::tls::Certs::load(cert, config.tls_key_file.as_deref())?;
    ::log::info!("TLS certificate: {}", cert.display());
    Ok(Some(certs))
}

/// SIGHUP: the certificate is read again by its path when that is reachable,
/// as the accounts are (see `reload_users`); a bad new one keeps the old.
#[cfg(feature = "tls")]
fn reload_certs(ctx: &session::Context, chrooted: bool) {
    let Some(certs) = &ctx.tls else { return };
    if chrooted {
        ::log::warn!("SIGHUP: the TLS certificate cannot be re-read inside the chroot; restart minftpd to use a renewed one");
        return;
    }
    match certs.reload() {
        Ok(()) => ::log::info!("SIGHUP: reloaded the TLS certificate"),
        Err(e) => ::log::error!("SIGHUP: keeping the old TLS certificate: {e}"),
    }
}

/// Stops accepting, lets idle sessions say 421, and gives running transfers
/// (`busy` counts the sessions left) up to `grace` to finish.
fn shut_down(ctx: &session::Context, grace: Duration, busy: impl Fn() -> usize) {
    if busy() == 0 {
        return;
    }
    ::log::info!("shutting down: {} session(s) open", busy());
    ctx.shutdown.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + grace;
    while busy() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if busy() > 0 {
        ::log::warn!("shutdown grace over: ending {} session(s)", busy());
    }
    let _ = io::stderr().flush();
}

/// Reads the users file and says how many accounts it holds and what a login
/// for an unknown name costs (the decoy: the costliest configured hash).
fn load_users(path: &std::path::Path) -> Result<auth::Users, String> {
    let users = auth::Users::load(path)?;
    ::log::info!(
        "{}: {} account(s); unknown names are checked against {}",
        path.display(),
        users.len(),
        String::from_utf8_lossy(users.decoy())
    );
    Ok(users)
}

/// SIGHUP: re-read the users file when it is reachable by its path; inside the
/// chroot it is not, and we keep no descriptor outside the root to reach it.
fn reload_users(ctx: &session::Context, reload: &Reload) {
    let path = match reload {
        Reload::Nothing => {
            ::log::info!("SIGHUP: no users file to reload");
            return;
        }
        Reload::Chrooted => {
            ::log::warn!("SIGHUP: accounts cannot be re-read inside the chroot; restart minftpd to apply account changes");
            return;
        }
        Reload::Path(path) => path,
    };
    match load_users(path) {
        Ok(users) => {
            ::log::info!("SIGHUP: reloaded {} account(s)", users.len());
            *ctx.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
        }
        Err(e) => ::log::error!("SIGHUP: keeping the old accounts: {e}"),
    }
}
