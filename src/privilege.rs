//! Giving up root: chroot into the served root, drop supplementary groups,
//! become the run-as account, and prove that root cannot come back.

use crate::sys;
use std::path::Path;

/// An account from /etc/passwd, looked up before the chroot (a static binary
/// has no working NSS, and after the chroot /etc/passwd is out of reach).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Finds `name` in passwd-format text.
pub fn find_account(passwd: &str, name: &str) -> Option<RunAs> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 || fields[0] != name {
            return None;
        }
        Some(RunAs {
            name: name.to_string(),
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
        })
    })
}

/// The account to run as: `run_as` if set, else `ftp` if it exists, else `nobody`.
pub fn resolve_run_as(configured: &str) -> Result<RunAs, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let candidates: Vec<&str> = if configured.is_empty() {
        vec!["ftp", "nobody"]
    } else {
        vec![configured]
    };
    let account = candidates
        .iter()
        .find_map(|name| find_account(&passwd, name))
        .ok_or_else(|| {
            format!(
                "run_as: no account {} in /etc/passwd",
                candidates.join(" or ")
            )
        })?;
    if account.uid == 0 {
        return Err(format!(
            "run_as: {} has uid 0; pick an unprivileged account",
            account.name
        ));
    }
    Ok(account)
}

/// Chroots into `root` (when asked) and becomes `account`. With `keep_port_20`
/// the one capability to bind port 20 survives, and nothing else.
/// Must run before any thread starts: capabilities are per thread.
pub fn drop_root(
    root: &Path,
    chroot: bool,
    account: &RunAs,
    keep_port_20: bool,
) -> Result<(), String> {
    if chroot {
        sys::chroot(root.as_os_str()).map_err(|e| format!("chroot {}: {e}", root.display()))?;
        std::env::set_current_dir("/").map_err(|e| format!("chdir / after chroot: {e}"))?;
    }
    if keep_port_20 {
        sys::keep_caps_across_setuid().map_err(|e| format!("PR_SET_KEEPCAPS: {e}"))?;
    }
    sys::drop_identity(account.uid, account.gid)
        .map_err(|e| format!("becoming {}: {e}", account.name))?;
    if sys::can_regain_root() {
        return Err("setuid(0) still works after dropping privileges; refusing to run".into());
    }
    if keep_port_20 {
        sys::keep_only_net_bind_service()
            .map_err(|e| format!("capset CAP_NET_BIND_SERVICE: {e}"))?;
    }
    Ok(())
}

/// True when started as root.
pub fn is_root() -> bool {
    sys::geteuid() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_accounts_in_passwd_text() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nftp:x:101:65534::/srv/ftp:/usr/sbin/nologin\nbad line\n";
        assert_eq!(
            find_account(passwd, "ftp"),
            Some(RunAs {
                name: "ftp".into(),
                uid: 101,
                gid: 65534
            })
        );
        assert_eq!(find_account(passwd, "nobody"), None);
        assert_eq!(find_account(passwd, "bad line"), None);
    }
}
