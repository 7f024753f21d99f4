//! Checks across keys that no single value can make (port ranges, the proxy
//! and TLS keys together, the served root), and resolving a `pasv_address`
//! host name once at start-up. Only the administrator's configuration is
//! read here; the one lookup (a name in `pasv_address`) is made once, before
//! any client connects.

use super::{Config, ConfigError, Source};
use std::net::IpAddr;

impl Config {
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
        crate::log::check_target(self.log_target, self.log_file.is_some())
            .map_err(|(key, reason)| err(key, reason))?;
        self.validate_tls()
            .map_err(|(key, reason)| err(key, reason))?;
        if let Some(program) = &self.upload_hook {
            check_hook(program).map_err(|reason| err("upload_hook", reason))?;
        }
        if !self.root.is_dir() {
            return Err(err(
                "root",
                format!("{} is not a directory", self.root.display()),
            ));
        }
        Ok(())
    }

    /// Resolves a host name in `pasv_address` to the IPv4 address PASV
    /// replies advertise: once, at start-up, before the chroot (where
    /// /etc/hosts and the resolver's files are out of reach). Returns the name
    /// and the address it gave, for the log; None when there was no name.
    /// resolve.rs says why this is not getaddrinfo.
    pub fn resolve_pasv_address(&mut self) -> Result<Option<(String, IpAddr)>, String> {
        if self.pasv_address_name.is_empty() {
            return Ok(None);
        }
        let name = self.pasv_address_name.clone();
        let ip = crate::resolve::ipv4_of(&name)
            .map_err(|e| format!("pasv_address: cannot resolve {name}: {e}"))?;
        let ip = IpAddr::V4(ip);
        self.pasv_address = Some(ip);
        Ok(Some((name, ip)))
    }
}

/// The hook is run by path with execve, no shell and no PATH search: it must
/// be an absolute path to an executable regular file.
fn check_hook(program: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = program.is_absolute()
        && std::fs::metadata(program)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    match runnable {
        true => Ok(()),
        false => Err(format!(
            "{} is not an executable file given by its absolute path",
            program.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_pasv_host_name_resolves_to_ipv4() {
        let mut config = Config::default();
        config.set("pasv_address", "localhost").unwrap();
        assert_eq!(config.pasv_address, None);
        let (name, ip) = config.resolve_pasv_address().unwrap().unwrap();
        assert_eq!(
            (name.as_str(), ip),
            ("localhost", "127.0.0.1".parse().unwrap())
        );
        assert_eq!(config.get("pasv_address"), "localhost");
        config.set("pasv_address", "192.0.2.7").unwrap();
        assert_eq!(config.resolve_pasv_address().unwrap(), None);
        assert!(config.set("pasv_address", "not a name").is_err());
        assert!(config.set("pasv_address", "::1").is_err());
    }
}
