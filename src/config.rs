//! The configuration: every key with its default in one table, the `key = value`
//! file parser, `-o` overrides, validation, and printing the effective config.

use std::fmt;
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
    Key { name: "pasv_min_port", default: "0", doc: "lowest passive data port; 0 with pasv_max_port 0 means any ephemeral port" },
    Key { name: "pasv_max_port", default: "0", doc: "highest passive data port" },
    Key { name: "pasv_address", default: "", doc: "IPv4 address advertised in PASV replies (for NAT); empty: the control connection's local address" },
    Key { name: "proxy_protocol", default: "no", doc: "every connection, control and passive data, comes from a balancer in proxy_from and starts with a PROXY protocol v1 or v2 header naming the real client" },
    Key { name: "proxy_from", default: "", doc: "balancers allowed to send PROXY headers, comma-separated ADDR or ADDR/PREFIX; required when proxy_protocol = yes" },
    Key { name: "connect_from_port_20", default: "no", doc: "active-mode data connections leave from port 20 (needs root at start-up)" },
    Key { name: "max_clients", default: "50", doc: "worker pool size: sessions served at once" },
    Key { name: "max_per_ip", default: "10", doc: "sessions at once from one client address" },
    Key { name: "idle_timeout", default: "300", doc: "seconds an idle control connection is kept" },
    Key { name: "login_timeout", default: "60", doc: "seconds a connection may take to log in; at most half of max_clients wait to log in, and the one waiting longest makes room for a new one" },
    Key { name: "data_timeout", default: "300", doc: "seconds a data transfer may stall" },
    Key { name: "accept_timeout", default: "60", doc: "seconds to wait for the client to open a passive data connection" },
    Key { name: "connect_timeout", default: "60", doc: "seconds to wait for an active data connection to be accepted" },
    Key { name: "login_fail_delay", default: "1", doc: "seconds before answering a failed login; grows with each failure" },
    Key { name: "max_login_fails", default: "3", doc: "failed logins after which the connection is closed" },
    Key { name: "umask", default: "022", doc: "octal umask for uploaded files and created directories" },
    Key { name: "banner", default: "minftpd ready.", doc: "text of the 220 greeting" },
    Key { name: "log_level", default: "info", doc: "error, warn, info, debug or trace (RUST_LOG overrides)" },
    Key { name: "log_file", default: "", doc: "write the server log to this file instead of standard error" },
    Key { name: "syslog_socket", default: "/dev/log", doc: "syslog's datagram socket, used when standard error is a socket and log_file is empty" },
    Key { name: "xferlog_file", default: "", doc: "write one xferlog(5) line per finished or aborted transfer to this file" },
    Key { name: "fsync_uploads", default: "yes", doc: "226 only once the upload is on disk: fsync the file, rename it into place, fsync the directory; no: a power cut may lose acknowledged uploads" },
    Key { name: "max_rate", default: "0", doc: "bytes per second per session for named users, both directions; 0: unlimited" },
    Key { name: "anon_max_rate", default: "0", doc: "bytes per second per anonymous session, both directions; 0: unlimited" },
    Key { name: "shutdown_grace", default: "10", doc: "seconds running transfers may finish after SIGTERM or SIGINT" },
    Key { name: "tls", default: "no", doc: "FTPS (needs a build with the cargo feature tls): no; yes offers AUTH TLS; required makes named users log in and transfer over TLS" },
    Key { name: "tls_cert_file", default: "", doc: "PEM certificate, followed by its chain; read at start-up and on SIGHUP when not chrooted" },
    Key { name: "tls_key_file", default: "", doc: "PEM private key of tls_cert_file (PKCS#8, PKCS#1 or SEC1)" },
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
    pub pasv_min_port: u16,
    pub pasv_max_port: u16,
    pub pasv_address: Option<IpAddr>,
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
    pub umask: u32,
    pub banner: String,
    pub log_level: log::LevelFilter,
    pub log_file: Option<PathBuf>,
    pub syslog_socket: PathBuf,
    pub xferlog_file: Option<PathBuf>,
    pub fsync_uploads: bool,
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

/// Where a setting came from, for error messages.
#[derive(Clone, Debug)]
pub enum Source {
    Default,
    File { path: String, line: usize },
    Option,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Source::Default => write!(f, "built-in default"),
            Source::File { path, line } => write!(f, "{path}:{line}"),
            Source::Option => write!(f, "command line"),
        }
    }
}

/// A configuration error: where, which key, and why.
#[derive(Debug)]
pub struct ConfigError {
    pub source: Source,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.source, self.key, self.reason)
        }
    }
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
            pasv_min_port: 0,
            pasv_max_port: 0,
            pasv_address: None,
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
            umask: 0,
            banner: String::new(),
            log_level: log::LevelFilter::Info,
            log_file: None,
            syslog_socket: PathBuf::new(),
            xferlog_file: None,
            fsync_uploads: false,
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

fn parse_tls_mode(value: &str) -> Result<TlsMode, String> {
    match value.to_ascii_lowercase().as_str() {
        "no" => Ok(TlsMode::No),
        "yes" => Ok(TlsMode::Yes),
        "required" => Ok(TlsMode::Required),
        _ => Err(format!("expected no, yes or required, got {value:?}")),
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
            "pasv_min_port" => self.pasv_min_port = parse_num(value, "a port number")?,
            "pasv_max_port" => self.pasv_max_port = parse_num(value, "a port number")?,
            "pasv_address" => {
                self.pasv_address = if value.is_empty() {
                    None
                } else {
                    let ip: IpAddr = parse_num(value, "an IP address")?;
                    if !ip.is_ipv4() {
                        return Err("PASV can only advertise an IPv4 address".into());
                    }
                    Some(ip)
                }
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
            "log_file" => self.log_file = optional_path(value),
            "syslog_socket" => {
                if value.is_empty() {
                    return Err("must name a socket, such as /dev/log".into());
                }
                self.syslog_socket = PathBuf::from(value);
            }
            "xferlog_file" => self.xferlog_file = optional_path(value),
            "fsync_uploads" => self.fsync_uploads = parse_bool(value)?,
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
            "pasv_min_port" => self.pasv_min_port.to_string(),
            "pasv_max_port" => self.pasv_max_port.to_string(),
            "pasv_address" => self.pasv_address.map(|a| a.to_string()).unwrap_or_default(),
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
            "umask" => format!("{:03o}", self.umask),
            "banner" => self.banner.clone(),
            "log_level" => self.log_level.to_string().to_lowercase(),
            "log_file" => show_path(&self.log_file),
            "syslog_socket" => self.syslog_socket.display().to_string(),
            "xferlog_file" => show_path(&self.xferlog_file),
            "fsync_uploads" => yn(self.fsync_uploads),
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

    /// Applies a config file's text; `path` names it in errors.
    pub fn apply_file(&mut self, path: &str, text: &str) -> Result<(), ConfigError> {
        for (index, line) in text.lines().enumerate() {
            let source = Source::File {
                path: path.to_string(),
                line: index + 1,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(ConfigError {
                    source,
                    key: String::new(),
                    reason: "expected key = value".into(),
                });
            };
            let key = key.trim();
            self.set(key, value).map_err(|reason| ConfigError {
                source,
                key: key.to_string(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Applies one `-o key=value`.
    pub fn apply_option(&mut self, option: &str) -> Result<(), ConfigError> {
        let Some((key, value)) = option.split_once('=') else {
            return Err(ConfigError {
                source: Source::Option,
                key: option.to_string(),
                reason: "expected KEY=VALUE".into(),
            });
        };
        let key = key.trim();
        self.set(key, value).map_err(|reason| ConfigError {
            source: Source::Option,
            key: key.to_string(),
            reason,
        })
    }

    /// Checks what single keys cannot: ranges and the existence of the root.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, reason: String| ConfigError {
            source: Source::Default,
            key: key.to_string(),
            reason,
        };
        if (self.pasv_min_port == 0) != (self.pasv_max_port == 0)
            || self.pasv_min_port > self.pasv_max_port
        {
            return Err(err(
                "pasv_min_port",
                format!(
                    "passive port range {}-{} is not a range",
                    self.pasv_min_port, self.pasv_max_port
                ),
            ));
        }
        if self.proxy_protocol && self.proxy_from.is_empty() {
            return Err(err(
                "proxy_from",
                "proxy_protocol = yes needs the balancers' addresses here".into(),
            ));
        }
        self.validate_tls()
            .map_err(|(key, reason)| err(key, reason))?;
        if !self.root.is_dir() {
            return Err(err(
                "root",
                format!("{} is not a directory", self.root.display()),
            ));
        }
        Ok(())
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
        for (key, path) in [
            ("tls_cert_file", &self.tls_cert_file),
            ("tls_key_file", &self.tls_key_file),
        ] {
            if path.is_none() {
                return Err((
                    key,
                    "must name a PEM file when tls is yes or required".into(),
                ));
            }
        }
        Ok(())
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
        let text = config.to_file_text();
        let mut again = Config::default();
        again.apply_file("x", &text).unwrap();
        assert_eq!(config, again);
    }

    #[test]
    fn file_errors_name_file_line_and_key() {
        let mut config = Config::default();
        let err = config
            .apply_file("/etc/m.conf", "# c\n\nmax_clients = 0\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/m.conf:3: max_clients: expected a number above 0, got \"0\""
        );
        let err = config.apply_file("f", "bogus_key = 1").unwrap_err();
        assert_eq!(err.to_string(), "f:1: bogus_key: unknown key");
        let err = config.apply_file("f", "no equals sign").unwrap_err();
        assert_eq!(err.to_string(), "f:1: expected key = value");
        let err = config
            .apply_file("f", "anonymous_enable = maybe")
            .unwrap_err();
        assert!(err.to_string().contains("expected yes or no"), "{err}");
    }

    #[test]
    fn options_override_the_file() {
        let mut config = Config::default();
        config
            .apply_file("f", "max_clients = 7\nbanner = hello there")
            .unwrap();
        config.apply_option("max_clients=9").unwrap();
        assert_eq!(config.max_clients, 9);
        assert_eq!(config.banner, "hello there");
        let err = config.apply_option("max_clients").unwrap_err();
        assert!(err.to_string().contains("expected KEY=VALUE"));
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
    fn validation_catches_bad_ranges_and_missing_root() {
        let mut config = Config::default();
        config.set("root", "/nonexistent/minftpd-test").unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("root"));
        config.set("root", "/tmp").unwrap();
        config.set("pasv_min_port", "5000").unwrap();
        assert!(config.validate().is_err());
        config.set("pasv_max_port", "4000").unwrap();
        assert!(config.validate().is_err());
        config.set("pasv_max_port", "6000").unwrap();
        assert!(config.validate().is_ok());
        config.set("proxy_protocol", "yes").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("proxy_from: proxy_protocol = yes needs"),
            "{err}"
        );
        config.set("proxy_from", "10.0.0.0/8").unwrap();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn umask_is_octal() {
        let mut config = Config::default();
        config.set("umask", "077").unwrap();
        assert_eq!(config.umask, 0o077);
        assert!(config.set("umask", "999").is_err());
    }
}
