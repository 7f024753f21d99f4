//! Who may log in and what they may do: the anonymous policy, the users file,
//! password checks with crypt(3), and the write permissions of each identity.

mod decoy;

use crate::fs::normalize;
use crate::sys;
use std::collections::HashMap;
use std::io::{self, Read};
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

/// The accounts of a users file, by name, and the decoy setting that names
/// without an account are checked against (chosen from these accounts, so a
/// SIGHUP reload that brings a costlier hash also brings a costlier decoy).
#[derive(Clone, Debug)]
pub struct Users {
    accounts: HashMap<String, Account>,
    decoy: Vec<u8>,
}

impl Default for Users {
    fn default() -> Users {
        Users {
            accounts: HashMap::new(),
            decoy: decoy::DEFAULT.to_vec(),
        }
    }
}

/// Hash algorithms crypt(3) knows by prefix; anything else is refused with a
/// log line rather than checked.
const KNOWN_PREFIXES: &[&str] = &[
    "$6$", "$5$", "$1$", "$2b$", "$2a$", "$2y$", "$y$", "$7$", "$gy$",
];

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
            let account = parse_line(line)
                .and_then(|account| check_hash_format(&account).map(|()| account))
                .map_err(|reason| format!("{path}:{}: {reason}", index + 1))?;
            if accounts.contains_key(&account.name) {
                return Err(format!(
                    "{path}:{}: user {} appears twice",
                    index + 1,
                    account.name
                ));
            }
            accounts.insert(account.name.clone(), account);
        }
        let decoy = decoy::costliest(accounts.values().map(|a| a.hash.as_slice()));
        Ok(Users { accounts, decoy })
    }

    /// Reads and parses a users file, by its path: callers re-read it on
    /// SIGHUP only when not chrooted, so no descriptor outside the served root
    /// is kept for it.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Users::parse(&path.display().to_string(), &text)
    }

    /// The setting (algorithm, cost, fixed salt) unknown names are checked
    /// against; for the log and tests.
    pub fn decoy(&self) -> &[u8] {
        &self.decoy
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }

    /// The accounts, in no particular order, for start-up checks of their homes.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The homes of the `rw` accounts (virtual paths under the served root).
    pub fn writable_homes(&self) -> impl Iterator<Item = &[u8]> {
        self.accounts
            .values()
            .filter(|a| a.write)
            .map(|a| a.home.as_slice())
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

/// `$id$` of a crypt(3) hash (`$6$`, `$y$`, `$2b$`): its algorithm.
fn hash_prefix(hash: &[u8]) -> &[u8] {
    match hash[1..].iter().position(|&b| b == b'$') {
        Some(at) => &hash[..at + 2],
        None => hash,
    }
}

/// Checks at load that this build's crypt(3) can check the account's hash,
/// so that a hash it cannot check stops start-up with the account's name
/// rather than failing every login as a wrong password. A C library that
/// does not know an algorithm may say so with `*` or, as musl does for
/// `$y$`, quietly fall back to DES and return something else: the result
/// must keep the hash's own `$id$`.
fn check_hash_format(account: &Account) -> Result<(), String> {
    let prefix = hash_prefix(&account.hash);
    let checked = sys::crypt_hash(b"minftpd load check", &account.hash);
    if checked.is_some_and(|out| out.starts_with(prefix)) {
        return Ok(());
    }
    // The algorithm with a well-formed salt tells a broken hash from an
    // algorithm this build lacks.
    let algorithm_works = decoy::setting_of(&account.hash)
        .and_then(|setting| sys::crypt_hash(b"x", &setting))
        .is_some_and(|out| out.starts_with(prefix));
    let why = match algorithm_works {
        true => "the password hash is malformed".to_string(),
        false => format!(
            "this build's crypt(3) cannot check {} password hashes",
            String::from_utf8_lossy(prefix)
        ),
    };
    Err(format!(
        "user {}: {why}; make one with minftpd --hash-password",
        account.name
    ))
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

/// Spends the crypt(3) work of the costliest configured hash, for a name that
/// has no account (or anonymous when anonymous logins are off). A hostile
/// client picks the name; the cost is bounded by what the administrator
/// configured, never by the client, and equals a real check of the costliest
/// account, so timing does not tell which names exist.
pub fn decoy_check(users: &Users, password: &[u8]) {
    let _ = sys::crypt_hash(password, &users.decoy);
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
    fn a_hash_crypt_cannot_check_is_refused_at_load() {
        let err =
            Users::parse("u", "ok:$6$abc$def:/:ro\nweird:$9$secret$format:/:ro\n").unwrap_err();
        assert_eq!(
            err,
            "u:2: user weird: this build's crypt(3) cannot check $9$ password hashes; make one with minftpd --hash-password"
        );
        let err = Users::parse("u", "bad:$6$rounds=x$y:/:ro\n").unwrap_err();
        assert!(
            err.contains("user bad: the password hash is malformed; make one"),
            "{err}"
        );
        assert_eq!(hash_prefix(b"$2b$12$x"), b"$2b$");
        assert_eq!(hash_prefix(b"$y$j9T$s$h"), b"$y$");
        assert_eq!(hash_prefix(b"$abc"), b"$abc");
    }

    #[test]
    fn crypt_runs_on_two_threads_at_once_and_both_get_their_own_hash() {
        // Each thread hashes its own password with its own salt many times; a
        // crypt(3) with one static result buffer and no lock hands one thread
        // the other's hash.
        let jobs: Vec<(Vec<u8>, Vec<u8>)> = (0..2)
            .map(|i| {
                let setting = format!("$5$rounds=1000$thread{i}$").into_bytes();
                let password = format!("password {i}").into_bytes();
                (setting, password)
            })
            .collect();
        let expected: Vec<Vec<u8>> = jobs
            .iter()
            .map(|(s, p)| sys::crypt_hash(p, s).unwrap())
            .collect();
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            for ((setting, password), want) in jobs.iter().zip(&expected) {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    for _ in 0..300 {
                        let got = sys::crypt_hash(password, setting).unwrap();
                        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
                    }
                });
            }
        });
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
