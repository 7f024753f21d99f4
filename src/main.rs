//! minftpd: a small, secure FTP server. This file parses the command line,
//! picks the mode and sets the exit status; daemon.rs runs the start-up.
#![deny(unsafe_code)]

mod cli;

use config::{Config, ConfigError, Source};
use minftpd::daemon::{start, Failure};
use minftpd::{auth, config, setup, sys};
use std::io::{self, BufRead};
use std::process::ExitCode;

const DEFAULT_CONFIG: &str = "/etc/minftpd.conf";
/// Exit status for a bad command line or configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure while starting or serving.
const EXIT_RUNTIME: u8 = 1;

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
/// Every bad line of the file is reported at once.
fn load_config(m: &getopts::Matches) -> Result<Config, Vec<ConfigError>> {
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
            return Err(vec![ConfigError::unreadable(&path, &e)]);
        }
        Err(_) => {}
    }
    load_command_line(&mut config, m, &path, &file_text).map_err(|e| vec![e])?;
    Ok(config)
}

/// Applies the flags and `-o` over the file, then validates the result.
fn load_command_line(
    config: &mut Config,
    m: &getopts::Matches,
    path: &str,
    file_text: &str,
) -> Result<(), ConfigError> {
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
        e.source = origin(&e.key, path, file_text, &flags, &m.opt_strs("option"));
        e
    })
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

/// `--check-config` reads the certificate and key and pairs them as start-up
/// does, so a missing, DER, encrypted, swapped or mismatched file is found
/// before the server is (re)started.
#[cfg(feature = "tls")]
fn check_tls(config: &Config) -> Result<(), String> {
    match (&config.tls, &config.tls_cert_file) {
        (config::TlsMode::No, _) | (_, None) => Ok(()),
        (_, Some(cert)) => {
            minftpd::tls::Certs::load(cert, config.tls_key_file.as_deref()).map(drop)
        }
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
    let opts = cli::options();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("minftpd: {e}\nTry 'minftpd --help'.");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if m.opt_present("help") {
        print!("{}", cli::usage());
        return ExitCode::SUCCESS;
    }
    if m.opt_present("version") {
        println!("minftpd {} ({})", env!("CARGO_PKG_VERSION"), built_with());
        return ExitCode::SUCCESS;
    }
    if m.opt_present("hash-password") {
        return hash_password_mode();
    }
    let config = match load_config(&m) {
        Ok(config) => config,
        Err(errors) => {
            for e in errors {
                eprintln!("minftpd: {e}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if m.opt_present("check-config") {
        return check_config_mode(config);
    }
    match start(
        config,
        m.opt_present("inetd"),
        m.opt_present("implicit-tls"),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => report_failure(&e, EXIT_CONFIG),
        Err(Failure::Runtime(e)) => report_failure(&e, EXIT_RUNTIME),
    }
}

/// The optional features this binary was built with, for `-V`.
fn built_with() -> &'static str {
    if cfg!(feature = "tls") {
        "tls"
    } else {
        "without tls"
    }
}

/// `--check-config`: what start-up would refuse fails (exit 1), what would
/// start but cannot work is a warning (exit 0), then the effective config.
fn check_config_mode(mut config: Config) -> ExitCode {
    let mut users = auth::Users::default();
    if let Some(path) = &config.users_file {
        match auth::Users::load(path) {
            Ok(loaded) => users = loaded,
            Err(e) => {
                eprintln!("minftpd: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    if let Err(e) = config.resolve_pasv_address() {
        eprintln!("minftpd: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    #[cfg(feature = "tls")]
    if let Err(e) = check_tls(&config) {
        eprintln!("minftpd: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    for warning in setup::warnings(&config, &users) {
        eprintln!("minftpd: warning: {warning}");
    }
    print!("{}", config.to_file_text());
    ExitCode::SUCCESS
}

/// Says why start-up or serving failed, once: on standard error, and in the
/// log too when the log goes elsewhere (a file, syslog).
fn report_failure(e: &str, status: u8) -> ExitCode {
    if !minftpd::daemon::logs_to_stderr() {
        ::log::error!("{e}");
    }
    eprintln!("minftpd: {e}");
    ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Vec<(String, String)>, String> {
        let m = cli::options().parse(args).map_err(|e| e.to_string())?;
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
