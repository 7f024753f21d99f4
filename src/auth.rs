//! Who may log in and what they may do: the anonymous policy, the users file,
//! password checks with crypt(3), and the write permissions of each identity.

use crate::fs::normalize;
use crate::sys;
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// One named account from the users file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    hash: Vec<u8>,
    /// The home directory as a virtual path under the served root.
    pub home: Vec<u8>,
    pub write: bool,
}

/// The accounts of a users file, by name.
#[derive(Clone, Debug, Default)]
pub struct Users {
    accounts: HashMap<String, Account>,
}

/// The users file, reachable for SIGHUP reloads also after the chroot: we keep
/// a descriptor of its directory, opened before, and re-open the name in it
/// (editors replace the file, so holding the file itself would go stale).
pub struct UsersFile {
    dir: OwnedFd,
    name: Vec<u8>,
    display: String,
}

impl UsersFile {
    pub fn open(path: &Path) -> Result<UsersFile, String> {
        let display = path.display().to_string();
        let name = path
            .file_name()
            .ok_or_else(|| format!("{display}: not a file name"))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(parent)
            .map_err(|e| format!("{display}: {e}"))?;
        Ok(UsersFile {
            dir: OwnedFd::from(dir),
            name: name.as_bytes().to_vec(),
            display,
        })
    }

    pub fn load(&self) -> Result<Users, String> {
        let read = || -> io::Result<String> {
            let fd = sys::openat(self.dir.as_fd(), &self.name, libc::O_RDONLY, 0)?;
            let mut text = String::new();
            std::fs::File::from(fd).read_to_string(&mut text)?;
            Ok(text)
        };
        let text = read().map_err(|e| format!("{}: {e}", self.display))?;
        Users::parse(&self.display, &text)
    }
}

/// Hash algorithms crypt(3) knows by prefix; anything else is refused with a
/// log line rather than checked.
const KNOWN_PREFIXES: &[&str] = &[
    "$6$", "$5$", "$1$", "$2b$", "$2a$", "$2y$", "$y$", "$7$", "$gy$",
];

/// A hash that unknown user names are checked against, so that a login for a
/// name that does not exist costs the same crypt(3) work as one that does.
const DECOY_SETTING: &[u8] = b"$6$minftpddecoysalt$";

impl Users {
    /// Parses a users file: `name:hash:home:rw|ro` a line, `#` comments. Errors
    /// name the file and line, never the hash.
    pub fn parse(path: &str, text: &str) -> Result<Users, String> {
        let mut accounts = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let account =
                parse_line(line).map_err(|reason| format!("{path}:{}: {reason}", index + 1))?;
            if accounts.contains_key(&account.name) {
                return Err(format!(
                    "{path}:{}: user {} appears twice",
                    index + 1,
                    account.name
                ));
            }
            accounts.insert(account.name.clone(), account);
        }
        Ok(Users { accounts })
    }

    /// Reads and parses a users file.
    pub fn load(path: &std::path::Path) -> Result<Users, String> {
        UsersFile::open(path)?.load()
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

fn parse_line(line: &str) -> Result<Account, String> {
    let fields: Vec<&str> = line.split(':').collect();
    let [name, hash, home, access] = fields.as_slice() else {
        return Err(format!(
            "expected name:hash:home:access, found {} fields",
            fields.len()
        ));
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
    {
        return Err("user name must be letters, digits, '.', '_', '-' or '@'".into());
    }
    if is_anonymous_name(name) {
        return Err(format!(
            "user {name}: the name is reserved for anonymous logins"
        ));
    }
    if !hash.starts_with('$') || hash.len() < 4 {
        return Err(format!("user {name}: password field is not a crypt(3) hash (make one with minftpd --hash-password)"));
    }
    if !home.starts_with('/') {
        return Err(format!(
            "user {name}: home must start with / (it is relative to the served root)"
        ));
    }
    let write = match *access {
        "rw" => true,
        "ro" => false,
        _ => return Err(format!("user {name}: access must be rw or ro")),
    };
    Ok(Account {
        name: name.to_string(),
        hash: hash.as_bytes().to_vec(),
        home: normalize(b"/", home.as_bytes()),
        write,
    })
}

pub fn is_anonymous_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp")
}

/// Compares without an early exit, so timing says nothing about where two
/// hashes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a password against an account's hash with crypt(3). An unknown
/// algorithm is logged and refused.
pub fn check_password(account: &Account, password: &[u8]) -> bool {
    let hash = &account.hash;
    if !KNOWN_PREFIXES
        .iter()
        .any(|p| hash.starts_with(p.as_bytes()))
    {
        log::error!(
            "user {}: unknown password hash format; login refused",
            account.name
        );
        return false;
    }
    match sys::crypt_hash(password, hash) {
        Some(computed) => constant_time_eq(&computed, hash),
        None => {
            log::error!(
                "user {}: the C library cannot check this hash format; login refused",
                account.name
            );
            false
        }
    }
}

/// Spends the same crypt(3) work as a real check, for a name that has no account.
pub fn decoy_check(password: &[u8]) {
    let _ = sys::crypt_hash(password, DECOY_SETTING);
}

/// Makes a `$6$` (SHA-512) hash with a random 16-character salt.
pub fn hash_password(password: &[u8]) -> io::Result<String> {
    const SALT_CHARS: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut random = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let salt: String = random
        .iter()
        .map(|b| SALT_CHARS[(*b & 63) as usize] as char)
        .collect();
    let setting = format!("$6${salt}$");
    let hash = sys::crypt_hash(password, setting.as_bytes()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "the C library's crypt(3) has no SHA-512",
        )
    })?;
    String::from_utf8(hash).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "crypt(3) returned bytes that are not text",
        )
    })
}

/// A logged-in client and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub anonymous: bool,
    /// The identity's root as a virtual path under the served root.
    pub home: Vec<u8>,
    /// Named `rw` users with write_enable.
    pub full_write: bool,
    /// Anonymous users with write_enable: the virtual directory they may add to.
    pub upload_dir: Option<Vec<u8>>,
}

/// What a writing command wants to do, for the permission check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Create a file that does not exist yet (STOR of a new name, STOU).
    CreateFile,
    /// Create a directory.
    CreateDir,
    /// Change, replace or remove something that exists (overwrite, APPE, REST
    /// upload, DELE, RMD, RNFR/RNTO, SITE CHMOD, MFMT).
    Modify,
}

impl Identity {
    /// May this identity do `what` at `vpath` (a normalised virtual path)?
    pub fn may(&self, what: Write, vpath: &[u8]) -> bool {
        if self.full_write {
            return true;
        }
        match (&self.upload_dir, what) {
            (Some(dir), Write::CreateFile | Write::CreateDir) => is_strictly_inside(vpath, dir),
            _ => false,
        }
    }

    /// May this identity write at all (for replies and MLSx `perm` facts)?
    pub fn may_write_in(&self, vpath: &[u8]) -> bool {
        self.full_write
            || self
                .upload_dir
                .as_deref()
                .is_some_and(|d| vpath == d || is_strictly_inside(vpath, d))
    }
}

/// True when `path` lies below `dir` (not `dir` itself).
fn is_strictly_inside(path: &[u8], dir: &[u8]) -> bool {
    if dir == b"/" {
        return path != b"/";
    }
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# accounts\n\nalice:$6$abc$def:/alice:rw\nbob:$5$x$y:/:ro\n";

    #[test]
    fn parses_good_lines() {
        let users = Users::parse("u", GOOD).unwrap();
        assert_eq!(users.len(), 2);
        let alice = users.get("alice").unwrap();
        assert_eq!(alice.home, b"/alice");
        assert!(alice.write);
        assert!(!users.get("bob").unwrap().write);
        assert!(users.get("carol").is_none());
    }

    #[test]
    fn bad_lines_name_file_and_line_but_never_the_hash() {
        let cases = [
            (
                "alice:$6$secret$hash:/a",
                "u:1: expected name:hash:home:access, found 3 fields",
            ),
            (
                "alice:plaintext:/a:rw",
                "u:1: user alice: password field is not a crypt(3) hash",
            ),
            (
                "alice:$6$secret$hash:a:rw",
                "u:1: user alice: home must start with /",
            ),
            (
                "alice:$6$secret$hash:/a:rx",
                "u:1: user alice: access must be rw or ro",
            ),
            ("al ice:$6$secret$hash:/a:rw", "u:1: user name must be"),
            (
                "anonymous:$6$secret$hash:/a:rw",
                "u:1: user anonymous: the name is reserved",
            ),
            (
                "\na:$6$secret$hash:/:rw\na:$6$secret$hash:/:rw",
                "u:3: user a appears twice",
            ),
        ];
        for (text, want) in cases {
            let err = Users::parse("u", text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: got {err:?}");
            assert!(!err.contains("secret"), "hash leaked: {err}");
        }
    }

    #[test]
    fn crypt_checks_sha512_and_sha256() {
        // Made with `openssl passwd -6 -salt saltsalt secret` and `-5`.
        let sha512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        let sha256 = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
        for hash in [sha512, sha256] {
            let account = Account {
                name: "u".into(),
                hash: hash.as_bytes().to_vec(),
                home: b"/".to_vec(),
                write: false,
            };
            assert!(check_password(&account, b"secret"), "{hash}");
            assert!(!check_password(&account, b"Secret"), "{hash}");
        }
    }

    #[test]
    fn unknown_hash_formats_are_refused() {
        let account = Account {
            name: "u".into(),
            hash: b"$9$whatever".to_vec(),
            home: b"/".to_vec(),
            write: false,
        };
        assert!(!check_password(&account, b"whatever"));
    }

    #[test]
    fn hash_password_round_trips() {
        let hash = hash_password(b"pw").unwrap();
        assert!(hash.starts_with("$6$"));
        let account = Account {
            name: "u".into(),
            hash: hash.into_bytes(),
            home: b"/".to_vec(),
            write: false,
        };
        assert!(check_password(&account, b"pw"));
        assert!(!check_password(&account, b"pw2"));
    }

    #[test]
    fn anonymous_writes_only_new_things_in_the_upload_dir() {
        let anon = Identity {
            name: "anonymous".into(),
            anonymous: true,
            home: b"/".to_vec(),
            full_write: false,
            upload_dir: Some(b"/upload".to_vec()),
        };
        assert!(anon.may(Write::CreateFile, b"/upload/f"));
        assert!(anon.may(Write::CreateDir, b"/upload/d"));
        assert!(!anon.may(Write::CreateFile, b"/uploadx/f"));
        assert!(!anon.may(Write::CreateDir, b"/upload"));
        assert!(!anon.may(Write::Modify, b"/upload/f"));
        assert!(!anon.may(Write::CreateFile, b"/f"));
        let ro = Identity {
            upload_dir: None,
            ..anon.clone()
        };
        assert!(!ro.may(Write::CreateFile, b"/upload/f"));
        let rw = Identity {
            full_write: true,
            anonymous: false,
            ..ro
        };
        assert!(rw.may(Write::Modify, b"/anything"));
    }
}
