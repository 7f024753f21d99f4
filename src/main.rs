//! minftpd: a small, secure FTP server. This file parses the command line,
//! picks the mode, runs the start-up steps in order and sets the exit status.
#![deny(unsafe_code)]

use config::{Config, ConfigError, Source};
use minftpd::{activation, auth, config, data, fs, log, privilege, relay, server, session, sys};
use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

const DEFAULT_CONFIG: &str = "/etc/minftpd.conf";
/// Exit status for a bad command line or configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure while starting or serving.
const EXIT_RUNTIME: u8 = 1;

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optmulti(
        "l",
        "listen",
        "listen on ADDR:PORT, [IPV6]:PORT or :PORT (repeatable; default [::]:21)",
        "ADDR:PORT",
    );
    o.optopt(
        "r",
        "root",
        "serve DIR (also the one positional argument; default /srv/ftp)",
        "DIR",
    );
    o.optflag(
        "A",
        "anonymous",
        "allow anonymous logins (anonymous_enable = yes)",
    );
    o.optflag(
        "w",
        "write",
        "allow commands that write (write_enable = yes)",
    );
    o.optopt(
        "U",
        "users",
        "read named accounts from FILE (users_file)",
        "FILE",
    );
    o.optopt(
        "",
        "pasv-ports",
        "passive data ports LO-HI (pasv_min_port, pasv_max_port)",
        "LO-HI",
    );
    o.optopt(
        "",
        "pasv-address",
        "IPv4 address to advertise in PASV replies (pasv_address)",
        "IP",
    );
    o.optopt(
        "",
        "max-clients",
        "sessions served at once, the pool size (max_clients; default 50)",
        "N",
    );
    o.optopt(
        "",
        "max-per-ip",
        "sessions at once from one address (max_per_ip; default 10)",
        "N",
    );
    o.optflag(
        "",
        "no-chroot",
        "do not chroot when started as root (chroot = no)",
    );
    o.optflag(
        "i",
        "inetd",
        "serve one session on the socket on standard input (inetd)",
    );
    o.optflag(
        "",
        "implicit-tls",
        "the inherited connection (--inetd, systemd Accept=yes) is implicit FTPS",
    );
    o.optopt(
        "c",
        "config",
        "read the configuration from FILE (default /etc/minftpd.conf if it exists)",
        "FILE",
    );
    o.optmulti(
        "o",
        "option",
        "set any configuration key; later ones win over the file",
        "KEY=VALUE",
    );
    o.optflag(
        "",
        "check-config",
        "validate the configuration, print it in file format, exit 0 or 1",
    );
    o.optflag(
        "",
        "hash-password",
        "read a password from standard input and print a $6$ hash for the users file",
    );
    o.optflagmulti("v", "verbose", "log more (repeat for trace)");
    o.optflagmulti("q", "quiet", "log less (repeat for errors only)");
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o
}

fn usage(o: &getopts::Options) -> String {
    o.usage("Usage: minftpd [OPTIONS] [DIR]\n\nA small, secure FTP server. Serves DIR (or --root) to FTP clients.")
}

/// The command line turned into configuration settings, in the order they apply.
fn flag_settings(m: &getopts::Matches) -> Result<Vec<(String, String)>, ConfigError> {
    let mut set = Vec::new();
    let listen = m.opt_strs("listen");
    if !listen.is_empty() {
        set.push(("listen".into(), listen.join(",")));
    }
    let positional = m.free.first().cloned();
    if m.free.len() > 1 {
        return Err(ConfigError {
            source: Source::Option,
            key: String::new(),
            reason: format!("one directory to serve, got {}", m.free.len()),
        });
    }
    if let Some(root) = m.opt_str("root").or(positional) {
        set.push(("root".into(), root));
    }
    if m.opt_present("anonymous") {
        set.push(("anonymous_enable".into(), "yes".into()));
    }
    if m.opt_present("write") {
        set.push(("write_enable".into(), "yes".into()));
    }
    if m.opt_present("no-chroot") {
        set.push(("chroot".into(), "no".into()));
    }
    for (flag, key) in [
        ("users", "users_file"),
        ("pasv-address", "pasv_address"),
        ("max-clients", "max_clients"),
        ("max-per-ip", "max_per_ip"),
    ] {
        if let Some(value) = m.opt_str(flag) {
            set.push((key.into(), value));
        }
    }
    if let Some(range) = m.opt_str("pasv-ports") {
        let Some((lo, hi)) = range.split_once('-') else {
            return Err(ConfigError {
                source: Source::Option,
                key: "pasv-ports".into(),
                reason: format!("expected LO-HI, got {range:?}"),
            });
        };
        set.push(("pasv_min_port".into(), lo.into()));
        set.push(("pasv_max_port".into(), hi.into()));
    }
    let (verbose, quiet) = (m.opt_count("verbose"), m.opt_count("quiet"));
    if verbose + quiet > 0 {
        let level = match verbose as i32 - quiet as i32 {
            i32::MIN..=-2 => "error",
            -1 => "warn",
            0 => "info",
            1 => "debug",
            _ => "trace",
        };
        set.push(("log_level".into(), level.into()));
    }
    Ok(set)
}

/// Builds the configuration: defaults, then the file, then flags, then `-o`.
fn load_config(m: &getopts::Matches) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    let explicit = m.opt_str("config");
    let path = explicit.clone().unwrap_or_else(|| DEFAULT_CONFIG.into());
    let mut file_text = String::new();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            config.apply_file(&path, &text)?;
            file_text = text;
        }
        Err(e) if explicit.is_some() || e.kind() != io::ErrorKind::NotFound => {
            return Err(ConfigError {
                source: Source::File {
                    path: path.clone(),
                    line: 0,
                },
                key: String::new(),
                reason: e.to_string(),
            });
        }
        Err(_) => {}
    }
    let flags = flag_settings(m)?;
    for (key, value) in flags.clone() {
        config.set(&key, &value).map_err(|reason| ConfigError {
            source: Source::Option,
            key,
            reason,
        })?;
    }
    for option in m.opt_strs("option") {
        config.apply_option(&option)?;
    }
    config.validate().map_err(|mut e| {
        e.source = origin(&e.key, &path, &file_text, &flags, &m.opt_strs("option"));
        e
    })?;
    Ok(config)
}

/// Where the value of `key` that won came from: the last `-o`, else a flag,
/// else the last line of the file that set it, else the built-in default.
fn origin(
    key: &str,
    path: &str,
    file_text: &str,
    flags: &[(String, String)],
    options: &[String],
) -> Source {
    let sets = |text: &str| text.split_once('=').is_some_and(|(k, _)| k.trim() == key);
    if options.iter().any(|o| sets(o)) || flags.iter().any(|(k, _)| k == key) {
        return Source::Option;
    }
    let line = file_text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && sets(l))
        .last();
    match line {
        Some((index, _)) => Source::File {
            path: path.to_string(),
            line: index + 1,
        },
        None => Source::Default,
    }
}

fn hash_password_mode() -> ExitCode {
    let stdin = io::stdin();
    let fd = sys::borrow_stdio(0);
    let saved = sys::disable_echo(fd);
    if saved.is_some() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        sys::restore_echo(fd, &saved);
        eprintln!();
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if read.is_err() || password.is_empty() {
        eprintln!("minftpd: no password on standard input");
        return ExitCode::from(EXIT_RUNTIME);
    }
    match auth::hash_password(password.as_bytes()) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("minftpd: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn main() -> ExitCode {
    let opts = options();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("minftpd: {e}\nTry 'minftpd --help'.");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if m.opt_present("help") {
        print!("{}", usage(&opts));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("version") {
        println!("minftpd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("hash-password") {
        return hash_password_mode();
    }
    let config = match load_config(&m) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("minftpd: {e}");
            return ExitCode::from(if m.opt_present("check-config") {
                1
            } else {
                EXIT_CONFIG
            });
        }
    };
    if m.opt_present("check-config") {
        if let Some(path) = &config.users_file {
            if let Err(e) = auth::Users::load(path) {
                eprintln!("minftpd: {e}");
                return ExitCode::from(1);
            }
        }
        print!("{}", config.to_file_text());
        return ExitCode::SUCCESS;
    }
    match start(
        config,
        m.opt_present("inetd"),
        m.opt_present("implicit-tls"),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            ::log::error!("{e}");
            eprintln!("minftpd: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Runtime(e)) => {
            ::log::error!("{e}");
            eprintln!("minftpd: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

enum Failure {
    Config(String),
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

/// Start-up steps 2 to 5 of DESIGN.md, then serving.
fn start(config: Config, inetd: bool, implicit_tls: bool) -> Result<(), Failure> {
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
    sys::close_inherited_fds(&sockets.raw_fds()).map_err(runtime)?;

    // 3. everything outside the served root: logs, accounts, the root itself
    let stderr_unusable =
        matches!(sockets, Sockets::One(..)) || sys::is_socket(sys::borrow_stdio(2));
    let destination = log::open_destination(
        config.log_file.as_deref(),
        &config.syslog_socket,
        stderr_unusable,
    )
    .map_err(|e| Failure::Config(e.to_string()))?;
    log::init(config.log_level, destination);
    // A deep walk or many sessions must not meet a soft limit below the hard one.
    if let Err(e) = sys::raise_nofile_limit() {
        ::log::warn!("cannot raise the open file limit: {e}");
    }
    let xferlog = match &config.xferlog_file {
        Some(path) => Some(log::XferLog::open(path).map_err(|e| Failure::Config(e.to_string()))?),
        None => None,
    };
    let users = match &config.users_file {
        Some(path) => load_users(path).map_err(Failure::Config)?,
        None => auth::Users::default(),
    };
    let root = fs::Root::open(&config.root)
        .map_err(|e| Failure::Config(format!("root {}: {e}", config.root.display())))?;
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
    let ctx = Arc::new(session::Context {
        config,
        root,
        users: RwLock::new(Arc::new(users)),
        data,
        xferlog,
        shutdown: AtomicBool::new(false),
        waiting,
        #[cfg(feature = "tls")]
        tls: certs,
    });
    sys::install_signal_handlers().map_err(runtime)?;

    // 5. serve
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
            wait_for_signals(&ctx, &reload, chrooted, || session.is_finished());
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
            wait_for_signals(&ctx, &reload, chrooted, || false);
            shut_down(&ctx, grace, || pool.busy());
            Ok(())
        }
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

/// The main thread's job once serving: reload the users file and the
/// certificate on SIGHUP, and return on SIGTERM or SIGINT, or once `done`
/// says there is nothing to serve.
fn wait_for_signals(
    ctx: &session::Context,
    reload: &Reload,
    chrooted: bool,
    done: impl Fn() -> bool,
) {
    while !sys::termination_requested() && !done() {
        std::thread::sleep(Duration::from_millis(100));
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
fn load_certs(config: &Config) -> Result<Option<minftpd::tls::Certs>, String> {
    let (config::TlsMode::Yes | config::TlsMode::Required) = config.tls else {
        return Ok(None);
    };
    let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) else {
        return Err("tls needs tls_cert_file and tls_key_file".into());
    };
    let certs = minftpd::tls::Certs::load(cert, key)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Vec<(String, String)>, String> {
        let m = options().parse(args).map_err(|e| e.to_string())?;
        flag_settings(&m).map_err(|e| e.to_string())
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn flags_become_config_keys() {
        let got = settings(&[
            "-l",
            "127.0.0.1:21",
            "--listen",
            "[::1]:21",
            "-A",
            "-w",
            "/srv",
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                pair("listen", "127.0.0.1:21,[::1]:21"),
                pair("root", "/srv"),
                pair("anonymous_enable", "yes"),
                pair("write_enable", "yes"),
            ]
        );
        let got = settings(&["--pasv-ports", "4000-4010", "-vv"]).unwrap();
        assert_eq!(
            got,
            vec![
                pair("pasv_min_port", "4000"),
                pair("pasv_max_port", "4010"),
                pair("log_level", "trace"),
            ]
        );
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(settings(&["--pasv-ports", "4000"])
            .unwrap_err()
            .contains("LO-HI"));
        assert!(settings(&["/a", "/b"])
            .unwrap_err()
            .contains("one directory"));
        assert!(settings(&["--bogus"]).is_err());
    }

    #[test]
    fn root_flag_wins_over_the_positional_argument() {
        let got = settings(&["-r", "/x", "/y"]).unwrap();
        assert_eq!(got, vec![pair("root", "/x")]);
    }
}
