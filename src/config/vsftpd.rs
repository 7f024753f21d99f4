//! The vsftpd.conf keys an admin coming from vsftpd is likely to write, each
//! with the minftpd key that does the same or why there is none. One table
//! serves the hint for an unknown key in a config file and the "Coming from
//! vsftpd" tables of README.md and minftpd.conf(5) (tests/deploy.rs checks
//! that both print exactly this). Only the key name, which a config file's
//! author wrote, is looked up here; nothing of a client reaches it.

/// One vsftpd key and its counterpart.
pub struct Counterpart {
    pub vsftpd: &'static str,
    /// The minftpd key (or `key = value`) that does the same, if any.
    pub minftpd: Option<&'static str>,
    /// With `minftpd`: how it differs (may be empty); without: why there is none.
    pub note: &'static str,
}

const fn to(vsftpd: &'static str, minftpd: &'static str, note: &'static str) -> Counterpart {
    Counterpart {
        vsftpd,
        minftpd: Some(minftpd),
        note,
    }
}

const fn none(vsftpd: &'static str, because: &'static str) -> Counterpart {
    Counterpart {
        vsftpd,
        minftpd: None,
        note: because,
    }
}

/// The common vsftpd.conf keys, in the order of vsftpd.conf(5)'s usual examples.
pub const VSFTPD_KEYS: &[Counterpart] = &[
    to("listen", "listen", "takes addresses, not YES; standalone is the default and --inetd the other way"),
    to("listen_ipv6", "listen", "[::]:21, the default, is dual-stack; 0.0.0.0:21 is IPv4 only"),
    to("listen_port", "listen", "the port is part of each address, as in [::]:2121"),
    to("listen_address", "listen", "the address with its port, as in 192.0.2.1:21"),
    to("anonymous_enable", "anonymous_enable", ""),
    to("anon_root", "root", "minftpd's anon_root is a directory under root"),
    to("anon_upload_enable", "anon_upload_dir", "the directory anonymous users may upload to; needs write_enable"),
    to("anon_mkdir_write_enable", "anon_upload_dir", "anonymous users may make directories there"),
    to("local_enable", "users_file", "minftpd's own accounts, one name:hash:home:rw|ro a line; make hashes with minftpd --hash-password"),
    to("local_root", "users_file", "each account's home is the third field of its line"),
    to("write_enable", "write_enable", ""),
    to("local_umask", "umask", ""),
    to("anon_umask", "anon_umask", ""),
    none("chroot_local_user", "every named user is always confined to the home of its users_file line"),
    none("chroot_list_enable", "no user can leave its home"),
    to("pasv_min_port", "pasv_min_port", ""),
    to("pasv_max_port", "pasv_max_port", ""),
    to("pasv_address", "pasv_address", "an IPv4 address or a host name"),
    to("pasv_addr_resolve", "pasv_address", "a host name there is resolved once at start-up"),
    none("pasv_enable", "passive mode is always on"),
    to("connect_from_port_20", "connect_from_port_20", ""),
    to("ftpd_banner", "banner", ""),
    none("banner_file", "the greeting is the one line of banner"),
    to("max_clients", "max_clients", ""),
    to("max_per_ip", "max_per_ip", ""),
    to("idle_session_timeout", "idle_timeout", ""),
    to("data_connection_timeout", "data_timeout", ""),
    to("accept_timeout", "accept_timeout", ""),
    to("connect_timeout", "connect_timeout", ""),
    to("local_max_rate", "max_rate", ""),
    to("anon_max_rate", "anon_max_rate", ""),
    to("xferlog_enable", "xferlog_file", "name a file to turn the transfer log on"),
    to("xferlog_file", "xferlog_file", ""),
    none("xferlog_std_format", "the transfer log is always in xferlog(5) format"),
    to("vsftpd_log_file", "log_file", ""),
    to("syslog_enable", "log_target = syslog", ""),
    to("nopriv_user", "run_as", ""),
    to("ssl_enable", "tls", "yes offers AUTH TLS; required makes named users use it (needs a build with tls)"),
    to("rsa_cert_file", "tls_cert_file", ""),
    to("rsa_private_key_file", "tls_key_file", ""),
    to("force_local_logins_ssl", "tls = required", ""),
    to("force_local_data_ssl", "tls = required", ""),
    to("force_anon_logins_ssl", "tls_anon_required", ""),
    to("force_anon_data_ssl", "tls_anon_required", ""),
    to("require_ssl_reuse", "tls_require_reuse", ""),
    to("implicit_ssl", "tls_implicit_listen", "the addresses that speak TLS from the first byte"),
    none("ssl_tlsv1", "only TLS 1.2 and 1.3 are offered"),
    none("ssl_ciphers", "rustls's own safe cipher suites are used"),
    none("userlist_enable", "only the accounts of users_file log in; system accounts never do"),
    none("userlist_file", "only the accounts of users_file log in; system accounts never do"),
    none("pam_service_name", "accounts come from users_file, not PAM"),
    none("deny_file", "access is by directory (homes, anon_root) and file permissions, not by name patterns"),
    none("hide_file", "access is by directory (homes, anon_root) and file permissions, not by name patterns"),
    none("dirmessage_enable", "there are no directory messages"),
    none("background", "minftpd stays in the foreground, as a systemd service wants"),
    none("secure_chroot_dir", "minftpd chroots into the served root itself"),
];

impl Counterpart {
    /// The counterpart as a sentence, with `code` marking a minftpd key.
    pub fn describe(&self, code: impl Fn(&str) -> String) -> String {
        match (self.minftpd, self.note) {
            (Some(key), "") => code(key),
            (Some(key), note) => format!("{}: {note}", code(key)),
            (None, because) => format!("none, because {because}"),
        }
    }
}

/// The counterpart of a vsftpd key, if it is one we know.
pub fn counterpart(key: &str) -> Option<&'static Counterpart> {
    VSFTPD_KEYS.iter().find(|c| c.vsftpd == key)
}

/// The README.md rows of the table (Markdown).
pub fn markdown_row(c: &Counterpart) -> String {
    format!("| `{}` | {} |", c.vsftpd, c.describe(|k| format!("`{k}`")))
}

/// The minftpd.conf(5) entry of the table (mdoc, inside a `.Bl -tag` list).
pub fn mdoc_item(c: &Counterpart) -> String {
    let text = match (c.minftpd, c.note) {
        (Some(key), "") => format!(".Cm {key}"),
        (Some(key), note) => format!(".Cm {key} :\n{note}"),
        (None, because) => format!("none, because {because}"),
    };
    format!(".It Cm {}\n{text}", c.vsftpd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vsftpd_key_appears_once_and_maps_to_a_real_key() {
        for (i, c) in VSFTPD_KEYS.iter().enumerate() {
            assert!(
                VSFTPD_KEYS[i + 1..].iter().all(|d| d.vsftpd != c.vsftpd),
                "{} twice",
                c.vsftpd
            );
            // log_target arrives with the logging work; every other key exists.
            if let Some(key) = c.minftpd {
                let name = key.split(" = ").next().unwrap();
                assert!(
                    name == "log_target" || super::super::KEYS.iter().any(|k| k.name == name),
                    "{} maps to unknown {name}",
                    c.vsftpd
                );
            }
            assert!(c.minftpd.is_some() || !c.note.is_empty(), "{}", c.vsftpd);
        }
    }

    #[test]
    fn descriptions_read_as_sentences() {
        let md = |k: &str| format!("`{k}`");
        assert_eq!(counterpart("local_umask").unwrap().describe(md), "`umask`");
        assert_eq!(
            counterpart("listen_port").unwrap().describe(md),
            "`listen`: the port is part of each address, as in [::]:2121"
        );
        assert!(counterpart("deny_file")
            .unwrap()
            .describe(md)
            .starts_with("none, because "));
        assert!(counterpart("umask").is_none());
    }
}
