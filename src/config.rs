//! The configuration: every key with its default in one table, the typed
//! `Config`, each key's value from and to text, and printing the effective
//! config. Reading files and `-o` is in file.rs, checks across keys in
//! validate.rs, the vsftpd key table in vsftpd.rs. Values come from the
//! administrator (config file, command line), never from a client.

mod file;
mod validate;
pub mod vsftpd;

pub use file::{ConfigError, Source};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// One configuration key: its name, its default as written in a config file,
/// and the one-line meaning printed by `--check-config` and the man page.
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

/// Every key and its default. `Config::default()` is built from this table alone.
pub const KEYS: &[Key] = &[
    Key { name: "listen", default: "[::]:21", doc: "addresses to listen on, comma-separated ADDR:PORT; [::] is dual-stack, 0.0.0.0 is used where IPv6 is missing" },
    Key { name: "root", default: "/srv/ftp", doc: "the served directory; clients never see anything outside it" },
    Key { name: "anonymous_enable", default: "no", doc: "allow logins as anonymous or ftp with any password" },
    Key { name: "anon_root", default: "/", doc: "directory under root that anonymous users see as /" },
    Key { name: "anon_upload_dir", default: "", doc: "virtual directory where anonymous users may create files and directories (needs write_enable)" },
    Key { name: "anon_umask", default: "077", doc: "octal umask for anonymous uploads and directories; 077 keeps a drop box's files from other anonymous users" },
    Key { name: "anon_world_readable_only", default: "yes", doc: "anonymous users may download only files that everyone may read" },
    Key { name: "write_enable", default: "no", doc: "master switch for every command that writes" },
    Key { name: "users_file", default: "", doc: "named accounts, one name:crypt-hash:home:rw|ro a line" },
    Key { name: "run_as", default: "", doc: "account to run as after chroot when started as root; empty: ftp if it exists, else nobody" },
    Key { name: "chroot", default: "yes", doc: "chroot into root when started as root" },
    Key { name: "sandbox", default: "yes", doc: "after start-up, confine the process with Landlock (the served root, the passive ports) and a seccomp deny-list, as far as the kernel offers them" },
    Key { name: "pasv_min_port", default: "0", doc: "lowest passive data port; 0 with pasv_max_port 0 means any ephemeral port" },
    Key { name: "pasv_max_port", default: "0", doc: "highest passive data port" },
    Key { name: "pasv_address", default: "", doc: "IPv4 address or host name advertised in PASV replies (for NAT; a name is resolved once at start-up); empty: the control connection's local address" },
    Key { name: "proxy_protocol", default: "no", doc: "every connection, control and passive data, comes from a balancer in proxy_from and starts with a PROXY protocol v1 or v2 header naming the real client" },
    Key { name: "proxy_from", default: "", doc: "balancers allowed to send PROXY headers, comma-separated ADDR or ADDR/PREFIX; required when proxy_protocol = yes" },
    Key { name: "connect_from_port_20", default: "no", doc: "active-mode data connections leave from port 20 (needs root at start-up)" },
    Key { name: "max_clients", default: "50", doc: "worker pool size: sessions served at once" },
    Key { name: "max_per_ip", default: "10", doc: "sessions at once from one client address" },
    Key { name: "idle_timeout", default: "300", doc: "seconds an idle control connection is kept" },
    Key { name: "login_timeout", default: "60", doc: "seconds a connection may take to log in; at most half of max_clients wait to log in, those places shared fairly between client addresses" },
    Key { name: "data_timeout", default: "300", doc: "seconds a data transfer may stall" },
    Key { name: "accept_timeout", default: "60", doc: "seconds to wait for the client to open a passive data connection" },
    Key { name: "connect_timeout", default: "60", doc: "seconds to wait for an active data connection to be accepted" },
    Key { name: "login_fail_delay", default: "1", doc: "seconds before answering a failed login; grows with each failure" },
    Key { name: "max_login_fails", default: "3", doc: "failed logins after which the connection is closed" },
    Key { name: "ban_after", default: "0", doc: "failed logins from one client address within ban_time after which that address is refused with 421 for ban_time seconds; 0: no ban (for boxes without fail2ban)" },
    Key { name: "ban_time", default: "900", doc: "seconds over which failed logins are counted toward ban_after, and how long a ban lasts" },
    Key { name: "umask", default: "022", doc: "octal umask for uploaded files and created directories" },
    Key { name: "banner", default: "minftpd ready.", doc: "text of the 220 greeting" },
    Key { name: "log_level", default: "info", doc: "error, warn, info, debug or trace (RUST_LOG overrides)" },
    Key { name: "log_target", default: "auto", doc: "where the server log goes: stderr (the journal's priorities when JOURNAL_STREAM names it), syslog (syslog_socket), file (log_file); auto: log_file if set, else stderr, or syslog when standard error is a socket" },
    Key { name: "log_file", default: "", doc: "the server log's file, for log_target = file or auto; opened before the chroot: rotate it with copytruncate" },
    Key { name: "syslog_socket", default: "/dev/log", doc: "syslog's datagram socket, for log_target = syslog, or auto when standard error is a socket" },
    Key { name: "xferlog_file", default: "", doc: "write one xferlog(5) line per finished or aborted transfer to this file" },
    Key { name: "fsync_uploads", default: "yes", doc: "226 only once the upload is on disk: fsync the file, rename it into place, fsync the directory; no: a power cut may lose acknowledged uploads" },
    Key { name: "upload_hook", default: "", doc: "absolute path of a program run once for every upload answered with 226, outside the chroot, as the run-as account (never root), with the file's host path as its one argument and MINFTPD_USER, MINFTPD_PEER, MINFTPD_PATH, MINFTPD_SIZE in its environment; no shell" },
    Key { name: "upload_hook_timeout", default: "60", doc: "seconds an upload hook may run before its process group is killed" },
    Key { name: "max_rate", default: "0", doc: "bytes per second per session for named users, both directions; 0: unlimited" },
    Key { name: "anon_max_rate", default: "0", doc: "bytes per second per anonymous session, both directions; 0: unlimited" },
    Key { name: "shutdown_grace", default: "10", doc: "seconds running transfers may finish after SIGTERM or SIGINT" },
    Key { name: "tls", default: "no", doc: "FTPS (needs a build with the cargo feature tls): no; yes offers AUTH TLS; required makes named users log in and transfer over TLS" },
    Key { name: "tls_cert_file", default: "", doc: "PEM certificate, followed by its chain; read at start-up and on SIGHUP when not chrooted" },
    Key { name: "tls_key_file", default: "", doc: "PEM private key of tls_cert_file (PKCS#8, PKCS#1 or SEC1, not encrypted); empty: the key is in tls_cert_file, after the certificate" },
    Key { name: "tls_anon_required", default: "no", doc: "with tls = required, anonymous users too must log in and transfer over TLS" },
    Key { name: "tls_implicit_listen", default: "", doc: "addresses for implicit FTPS (TLS from the first byte, conventionally port 990), comma-separated ADDR:PORT" },
    Key { name: "tls_require_reuse", default: "no", doc: "a protected data connection must resume the control connection's TLS session (curl and lftp do; Python's ftplib does not)" },
];

/// The effective configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub root: PathBuf,
    pub anonymous_enable: bool,
    pub anon_root: String,
    pub anon_upload_dir: String,
    pub anon_umask: u32,
    pub anon_world_readable_only: bool,
    pub write_enable: bool,
    pub users_file: Option<PathBuf>,
    pub run_as: String,
    pub chroot: bool,
    pub sandbox: bool,
    pub pasv_min_port: u16,
    pub pasv_max_port: u16,
    pub pasv_address: Option<IpAddr>,
    /// A host name given as `pasv_address`, resolved at start-up into
    /// `pasv_address` (see `resolve_pasv_address`); empty for an address.
    pub pasv_address_name: String,
    pub proxy_protocol: bool,
    pub proxy_from: Vec<crate::relay::Net>,
    pub connect_from_port_20: bool,
    pub max_clients: usize,
    pub max_per_ip: usize,
    pub idle_timeout: u64,
    pub login_timeout: u64,
    pub data_timeout: u64,
    pub accept_timeout: u64,
    pub connect_timeout: u64,
    pub login_fail_delay: u64,
    pub max_login_fails: u32,
    pub ban_after: u64,
    pub ban_time: u64,
    pub umask: u32,
    pub banner: String,
    pub log_level: log::LevelFilter,
    pub log_target: crate::log::Target,
    pub log_file: Option<PathBuf>,
    pub syslog_socket: PathBuf,
    pub xferlog_file: Option<PathBuf>,
    pub fsync_uploads: bool,
    pub upload_hook: Option<PathBuf>,
    pub upload_hook_timeout: u64,
    pub max_rate: u64,
    pub anon_max_rate: u64,
    pub shutdown_grace: u64,
    pub tls: TlsMode,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_anon_required: bool,
    pub tls_implicit_listen: Vec<SocketAddr>,
    pub tls_require_reuse: bool,
}

/// The `tls` key: whether FTPS is offered, and whether named users must use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    No,
    Yes,
    Required,
}

impl Default for Config {
    fn default() -> Config {
        let mut config = Config {
            listen: Vec::new(),
            root: PathBuf::new(),
            anonymous_enable: false,
            anon_root: String::new(),
            anon_upload_dir: String::new(),
            anon_umask: 0,
            anon_world_readable_only: true,
            write_enable: false,
            users_file: None,
            run_as: String::new(),
            chroot: true,
            sandbox: true,
            pasv_min_port: 0,
            pasv_max_port: 0,
            pasv_address: None,
            pasv_address_name: String::new(),
            proxy_protocol: false,
            proxy_from: Vec::new(),
            connect_from_port_20: false,
            max_clients: 0,
            max_per_ip: 0,
            idle_timeout: 0,
            login_timeout: 0,
            data_timeout: 0,
            accept_timeout: 0,
            connect_timeout: 0,
            login_fail_delay: 0,
            max_login_fails: 0,
            ban_after: 0,
            ban_time: 0,
            umask: 0,
            banner: String::new(),
            log_level: log::LevelFilter::Info,
            log_target: crate::log::Target::Auto,
            log_file: None,
            syslog_socket: PathBuf::new(),
            xferlog_file: None,
            fsync_uploads: false,
            upload_hook: None,
            upload_hook_timeout: 0,
            max_rate: 0,
            anon_max_rate: 0,
            shutdown_grace: 0,
            tls: TlsMode::No,
            tls_cert_file: None,
            tls_key_file: None,
            tls_anon_required: false,
            tls_implicit_listen: Vec::new(),
            tls_require_reuse: false,
        };
        for key in KEYS {
            config
                .set(key.name, key.default)
                .expect("built-in default is valid");
        }
        config
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("expected yes or no, got {value:?}")),
    }
}

/// A comma-separated list of listen addresses; `empty_ok` for optional lists.
fn parse_listen_list(value: &str, empty_ok: bool) -> Result<Vec<SocketAddr>, String> {
    let addrs = value
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse_listen_addr)
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() && !empty_ok {
        return Err("needs at least one address".into());
    }
    Ok(addrs)
}

/// `tls` takes every word the yes/no keys take, and `required`.
fn parse_tls_mode(value: &str) -> Result<TlsMode, String> {
    if value.eq_ignore_ascii_case("required") {
        return Ok(TlsMode::Required);
    }
    match parse_bool(value) {
        Ok(true) => Ok(TlsMode::Yes),
        Ok(false) => Ok(TlsMode::No),
        Err(_) => Err(format!("expected no, yes or required, got {value:?}")),
    }
}

/// `pasv_address`: an IPv4 address, or a host name to resolve at start-up.
/// Returns the address, or None and the name.
fn parse_pasv_address(value: &str) -> Result<(Option<IpAddr>, String), String> {
    if value.is_empty() {
        return Ok((None, String::new()));
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        return match ip.is_ipv4() {
            true => Ok((Some(ip), String::new())),
            false => Err("PASV can only advertise an IPv4 address".into()),
        };
    }
    let is_name = value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    match is_name {
        true => Ok((None, value.to_string())),
        false => Err(format!(
            "expected an IPv4 address or a host name, got {value:?}"
        )),
    }
}

fn parse_num<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("expected {what}, got {value:?}"))
}

/// Parses `ADDR:PORT`, `[V6]:PORT` or a bare `:PORT`/`PORT` (all addresses).
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    Err(format!("expected ADDR:PORT or [IPV6]:PORT, got {text:?}"))
}

fn parse_umask(value: &str) -> Result<u32, String> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("expected an octal mask such as 022, got {value:?}"))
}

/// Checks a virtual directory name such as `/upload`.
fn parse_virtual_dir(value: &str) -> Result<String, String> {
    if value.is_empty() || value.starts_with('/') {
        Ok(value.to_string())
    } else {
        Err(format!("expected a path starting with /, got {value:?}"))
    }
}

impl Config {
    /// Sets one key from its text form, as in a config file.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        match key {
            "listen" => self.listen = parse_listen_list(value, false)?,
            "root" => {
                if value.is_empty() {
                    return Err("must name a directory".into());
                }
                self.root = PathBuf::from(value);
            }
            "anonymous_enable" => self.anonymous_enable = parse_bool(value)?,
            "anon_root" => {
                let dir = parse_virtual_dir(value)?;
                self.anon_root = if dir.is_empty() { "/".into() } else { dir };
            }
            "anon_upload_dir" => self.anon_upload_dir = parse_virtual_dir(value)?,
            "anon_umask" => self.anon_umask = parse_umask(value)?,
            "anon_world_readable_only" => self.anon_world_readable_only = parse_bool(value)?,
            "write_enable" => self.write_enable = parse_bool(value)?,
            "users_file" => self.users_file = optional_path(value),
            "run_as" => self.run_as = value.to_string(),
            "chroot" => self.chroot = parse_bool(value)?,
            "sandbox" => self.sandbox = parse_bool(value)?,
            "pasv_min_port" => self.pasv_min_port = parse_num(value, "a port number")?,
            "pasv_max_port" => self.pasv_max_port = parse_num(value, "a port number")?,
            "pasv_address" => {
                (self.pasv_address, self.pasv_address_name) = parse_pasv_address(value)?;
            }
            "proxy_protocol" => self.proxy_protocol = parse_bool(value)?,
            "proxy_from" => self.proxy_from = crate::relay::parse_nets(value)?,
            "connect_from_port_20" => self.connect_from_port_20 = parse_bool(value)?,
            "max_clients" => self.max_clients = parse_positive(value)?,
            "max_per_ip" => self.max_per_ip = parse_positive(value)?,
            "idle_timeout" => self.idle_timeout = parse_positive(value)? as u64,
            "login_timeout" => self.login_timeout = parse_positive(value)? as u64,
            "data_timeout" => self.data_timeout = parse_positive(value)? as u64,
            "accept_timeout" => self.accept_timeout = parse_positive(value)? as u64,
            "connect_timeout" => self.connect_timeout = parse_positive(value)? as u64,
            "login_fail_delay" => self.login_fail_delay = parse_num(value, "seconds")?,
            "max_login_fails" => self.max_login_fails = parse_positive(value)? as u32,
            "ban_after" => self.ban_after = parse_num(value, "a number")?,
            "ban_time" => self.ban_time = parse_positive(value)? as u64,
            "umask" => self.umask = parse_umask(value)?,
            "banner" => {
                if value.contains(['\r', '\n']) {
                    return Err("must be one line".into());
                }
                self.banner = value.to_string();
            }
            "log_level" => {
                self.log_level = value.parse().map_err(|_| {
                    format!("expected error, warn, info, debug or trace, got {value:?}")
                })?
            }
            "log_target" => self.log_target = crate::log::Target::parse(value)?,
            "log_file" => self.log_file = optional_path(value),
            "syslog_socket" => {
                if value.is_empty() {
                    return Err("must name a socket, such as /dev/log".into());
                }
                self.syslog_socket = PathBuf::from(value);
            }
            "xferlog_file" => self.xferlog_file = optional_path(value),
            "fsync_uploads" => self.fsync_uploads = parse_bool(value)?,
            "upload_hook" => self.upload_hook = optional_path(value),
            "upload_hook_timeout" => self.upload_hook_timeout = parse_positive(value)? as u64,
            "max_rate" => self.max_rate = parse_num(value, "bytes per second")?,
            "anon_max_rate" => self.anon_max_rate = parse_num(value, "bytes per second")?,
            "shutdown_grace" => self.shutdown_grace = parse_num(value, "seconds")?,
            "tls" => self.tls = parse_tls_mode(value)?,
            "tls_cert_file" => self.tls_cert_file = optional_path(value),
            "tls_key_file" => self.tls_key_file = optional_path(value),
            "tls_anon_required" => self.tls_anon_required = parse_bool(value)?,
            "tls_implicit_listen" => self.tls_implicit_listen = parse_listen_list(value, true)?,
            "tls_require_reuse" => self.tls_require_reuse = parse_bool(value)?,
            _ => return Err("unknown key".into()),
        }
        Ok(())
    }

    /// The text form of one key, as `set` accepts it.
    pub fn get(&self, key: &str) -> String {
        fn yn(b: bool) -> String {
            if b { "yes" } else { "no" }.into()
        }
        match key {
            "listen" => show_addrs(&self.listen),
            "root" => self.root.display().to_string(),
            "anonymous_enable" => yn(self.anonymous_enable),
            "anon_root" => self.anon_root.clone(),
            "anon_upload_dir" => self.anon_upload_dir.clone(),
            "anon_umask" => format!("{:03o}", self.anon_umask),
            "anon_world_readable_only" => yn(self.anon_world_readable_only),
            "write_enable" => yn(self.write_enable),
            "users_file" => show_path(&self.users_file),
            "run_as" => self.run_as.clone(),
            "chroot" => yn(self.chroot),
            "sandbox" => yn(self.sandbox),
            "pasv_min_port" => self.pasv_min_port.to_string(),
            "pasv_max_port" => self.pasv_max_port.to_string(),
            "pasv_address" => match self.pasv_address_name.is_empty() {
                false => self.pasv_address_name.clone(),
                true => self.pasv_address.map(|a| a.to_string()).unwrap_or_default(),
            },
            "proxy_protocol" => yn(self.proxy_protocol),
            "proxy_from" => self
                .proxy_from
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            "connect_from_port_20" => yn(self.connect_from_port_20),
            "max_clients" => self.max_clients.to_string(),
            "max_per_ip" => self.max_per_ip.to_string(),
            "idle_timeout" => self.idle_timeout.to_string(),
            "login_timeout" => self.login_timeout.to_string(),
            "data_timeout" => self.data_timeout.to_string(),
            "accept_timeout" => self.accept_timeout.to_string(),
            "connect_timeout" => self.connect_timeout.to_string(),
            "login_fail_delay" => self.login_fail_delay.to_string(),
            "max_login_fails" => self.max_login_fails.to_string(),
            "ban_after" => self.ban_after.to_string(),
            "ban_time" => self.ban_time.to_string(),
            "umask" => format!("{:03o}", self.umask),
            "banner" => self.banner.clone(),
            "log_level" => self.log_level.to_string().to_lowercase(),
            "log_target" => self.log_target.name().to_string(),
            "log_file" => show_path(&self.log_file),
            "syslog_socket" => self.syslog_socket.display().to_string(),
            "xferlog_file" => show_path(&self.xferlog_file),
            "fsync_uploads" => yn(self.fsync_uploads),
            "upload_hook" => show_path(&self.upload_hook),
            "upload_hook_timeout" => self.upload_hook_timeout.to_string(),
            "max_rate" => self.max_rate.to_string(),
            "anon_max_rate" => self.anon_max_rate.to_string(),
            "shutdown_grace" => self.shutdown_grace.to_string(),
            "tls" => match self.tls {
                TlsMode::No => "no",
                TlsMode::Yes => "yes",
                TlsMode::Required => "required",
            }
            .into(),
            "tls_cert_file" => show_path(&self.tls_cert_file),
            "tls_key_file" => show_path(&self.tls_key_file),
            "tls_anon_required" => yn(self.tls_anon_required),
            "tls_implicit_listen" => show_addrs(&self.tls_implicit_listen),
            "tls_require_reuse" => yn(self.tls_require_reuse),
            _ => String::new(),
        }
    }

    /// The TLS keys hang together, and TLS is asked for only from a build that has it.
    fn validate_tls(&self) -> Result<(), (&'static str, String)> {
        if self.tls == TlsMode::No {
            return match self.tls_implicit_listen.is_empty() {
                true => Ok(()),
                false => Err(("tls_implicit_listen", "needs tls = yes or required".into())),
            };
        }
        if !cfg!(feature = "tls") {
            return Err(("tls", "this minftpd was built without TLS (build it with the cargo feature tls, e.g. make static FEATURES=tls)".into()));
        }
        // tls_key_file may be empty: the key is then in tls_cert_file.
        match self.tls_cert_file {
            None => Err((
                "tls_cert_file",
                "must name a PEM file when tls is yes or required".into(),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The effective configuration in config-file format (itself a valid file).
    pub fn to_file_text(&self) -> String {
        let mut out = String::from("# minftpd effective configuration\n");
        for key in KEYS {
            out.push_str(&format!(
                "\n# {}\n{} = {}\n",
                key.doc,
                key.name,
                self.get(key.name)
            ));
        }
        out
    }
}

fn optional_path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

fn show_addrs(addrs: &[SocketAddr]) -> String {
    let text: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    text.join(", ")
}

fn show_path(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn parse_positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a number above 0, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_table() {
        let config = Config::default();
        for key in KEYS {
            assert_eq!(config.get(key.name), key.default, "key {}", key.name);
        }
        assert_eq!(config.max_clients, 50);
        assert_eq!(config.max_per_ip, 10);
        assert_eq!(config.idle_timeout, 300);
    }

    #[test]
    fn every_key_round_trips_through_its_text() {
        let mut config = Config::default();
        config.set("root", "/tmp").unwrap();
        config.set("pasv_address", "ftp.example.org").unwrap();
        let text = config.to_file_text();
        let mut again = Config::default();
        again.apply_file("x", &text).unwrap();
        assert_eq!(config, again);
    }

    #[test]
    fn listen_accepts_v4_v6_and_lists() {
        let mut config = Config::default();
        config.set("listen", "127.0.0.1:2121, [::1]:2121").unwrap();
        assert_eq!(
            config.listen,
            vec![
                "127.0.0.1:2121".parse().unwrap(),
                "[::1]:2121".parse().unwrap()
            ]
        );
        assert!(config.set("listen", "localhost").is_err());
        assert!(config.set("listen", "1.2.3.4").is_err());
    }

    #[test]
    fn umask_is_octal() {
        let mut config = Config::default();
        config.set("umask", "077").unwrap();
        assert_eq!(config.umask, 0o077);
        assert!(config.set("umask", "999").is_err());
    }

    #[test]
    fn tls_takes_the_words_every_yes_no_key_takes() {
        let mut config = Config::default();
        for (word, mode) in [
            ("on", TlsMode::Yes),
            ("TRUE", TlsMode::Yes),
            ("1", TlsMode::Yes),
            ("off", TlsMode::No),
            ("Required", TlsMode::Required),
        ] {
            config.set("tls", word).unwrap();
            assert_eq!(config.tls, mode, "{word}");
        }
        assert!(config.set("tls", "maybe").is_err());
    }
}
