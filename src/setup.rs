//! Set-ups that start but cannot work: nobody can log in, a directory the
//! sessions need is missing, or the account the server runs as cannot read
//! or write where it must. Said as warnings at start-up and by
//! `--check-config`, before a client finds out. Only the administrator's
//! configuration, users file and directories are looked at, once, before
//! the chroot; nothing here sees a client.

use crate::auth::Users;
use crate::config::Config;
use crate::privilege;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Who the sessions run as: the run-as account when started as root (its
/// supplementary groups are dropped), else the user who started minftpd.
struct RunAs {
    name: String,
    uid: u32,
    gids: Vec<u32>,
}

/// What a session needs of a directory.
#[derive(Clone, Copy, PartialEq)]
enum Need {
    /// List it and open what is inside (r and x).
    Read,
    /// Create and remove entries in it (w and x).
    Write,
    /// Run it as a program (r and x: a script is read by its interpreter).
    Run,
}

/// Every warning for `config` with `users` (the accounts in no particular order).
pub fn warnings(config: &Config, users: &Users) -> Vec<String> {
    let mut out = Vec::new();
    if !config.anonymous_enable && users.is_empty() {
        let accounts = match &config.users_file {
            None => "there is no users_file".to_string(),
            Some(path) => format!("{} holds no accounts", path.display()),
        };
        out.push(format!(
            "nobody can log in: anonymous_enable = no and {accounts} (-A allows anonymous logins, -U FILE names accounts)"
        ));
    }
    if !config.anon_upload_dir.is_empty() && !config.write_enable {
        out.push(format!(
            "anon_upload_dir = {} has no effect without write_enable = yes",
            config.anon_upload_dir
        ));
    }
    let Some(who) = run_as(config) else {
        return out;
    };
    check_dir(&mut out, &who, "the served root", &config.root, Need::Read);
    if let Some(hook) = &config.upload_hook {
        check_dir(&mut out, &who, "upload_hook", hook, Need::Run);
    }
    if config.anonymous_enable {
        let anon = under(&config.root, &config.anon_root);
        let what = format!("anon_root {}", config.anon_root);
        if check_exists(
            &mut out,
            &what,
            &anon,
            " (it is a directory under root; vsftpd's anon_root is minftpd's root)",
        ) {
            check_dir(&mut out, &who, &what, &anon, Need::Read);
            if config.write_enable && !config.anon_upload_dir.is_empty() {
                let upload = under(&anon, &config.anon_upload_dir);
                let what = format!("anon_upload_dir {}", config.anon_upload_dir);
                if check_exists(&mut out, &what, &upload, "") {
                    check_dir(&mut out, &who, &what, &upload, Need::Write);
                }
            }
        }
    }
    for account in users.accounts() {
        let home = String::from_utf8_lossy(&account.home);
        let path = under(&config.root, &home);
        let what = format!("user {}: home {home}", account.name);
        if check_exists(&mut out, &what, &path, "") {
            check_dir(&mut out, &who, &what, &path, Need::Read);
            if account.write && config.write_enable {
                check_dir(&mut out, &who, &what, &path, Need::Write);
            }
        }
    }
    out
}

/// A virtual path (`/a/b`) as the host path under `base`.
fn under(base: &Path, vpath: &str) -> PathBuf {
    base.join(vpath.trim_start_matches('/'))
}

/// False (with a warning) when `path` is not a directory.
fn check_exists(out: &mut Vec<String>, what: &str, path: &Path, hint: &str) -> bool {
    if path.is_dir() {
        return true;
    }
    out.push(format!("{what}: {} does not exist{hint}", path.display()));
    false
}

/// Warns when `who` cannot do `need` in the directory (or, to run it, the
/// program) `path`.
fn check_dir(out: &mut Vec<String>, who: &RunAs, what: &str, path: &Path, need: Need) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if allows(who, &meta, need) {
        return;
    }
    let name = &who.name;
    out.push(match need {
        Need::Read => format!(
            "{what}: {} is not readable by {name}, the account minftpd runs as (chmod a+rx it, or chown {name} it)",
            path.display()
        ),
        Need::Write => format!(
            "{what}: {} is not writable by {name}, the account minftpd runs as, so uploads there fail (chown {name} it)",
            path.display()
        ),
        Need::Run => format!(
            "{what}: {} cannot be run by {name}, the account hooks run as (chmod a+rx it)",
            path.display()
        ),
    });
}

/// The permission bits that apply to `who` grant `need` (r+x or w+x).
fn allows(who: &RunAs, meta: &std::fs::Metadata, need: Need) -> bool {
    let mode = meta.mode();
    let bits = if meta.uid() == who.uid {
        mode >> 6
    } else if who.gids.contains(&meta.gid()) {
        mode >> 3
    } else {
        mode
    };
    let wanted = match need {
        Need::Read | Need::Run => 0o5,
        Need::Write => 0o3,
    };
    bits & wanted == wanted
}

/// The account sessions will run as; None when it cannot be known (start-up
/// then fails on its own, with its own message).
fn run_as(config: &Config) -> Option<RunAs> {
    if privilege::is_root() {
        let account = privilege::resolve_run_as(&config.run_as).ok()?;
        return Some(RunAs {
            name: account.name,
            uid: account.uid,
            gids: vec![account.gid],
        });
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // "Uid:" and "Gid:" list real, effective, saved and file-system ids.
    let uid = *field("Uid:").get(1)?;
    let mut gids = field("Groups:");
    gids.extend(field("Gid:").get(1));
    Some(RunAs {
        name: account_name(uid),
        uid,
        gids,
    })
}

/// The name of `uid` in /etc/passwd, else `uid N`.
fn account_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}
