//! Reading a config file and `-o` options into a `Config`: `key = value`
//! lines, `#` comments (whole lines, or after a value), and errors that say
//! where, which key and why, all of a file's at once, with a hint for a
//! vsftpd key or a near miss. The file is the administrator's; its lines are
//! only split, trimmed and matched against the key table, nothing is bounded
//! by more than the file's own length.

use super::vsftpd;
use super::{Config, KEYS};
use std::fmt;

/// Where a setting came from, for error messages.
#[derive(Clone, Debug)]
pub enum Source {
    Default,
    File {
        path: String,
        line: usize,
    },
    Option,
    /// A config file that could not be read at all.
    Unreadable {
        path: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Source::Default => write!(f, "built-in default"),
            Source::File { path, line } => write!(f, "{path}:{line}"),
            Source::Option => write!(f, "command line"),
            Source::Unreadable { path } => write!(f, "cannot read {path}"),
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

impl ConfigError {
    /// A config file that cannot be read: no line number, the system's reason.
    pub fn unreadable(path: &str, error: &std::io::Error) -> ConfigError {
        let reason = error.to_string();
        // "No such file or directory (os error 2)": the number says nothing more.
        let reason = match reason.find(" (os error") {
            Some(at) => reason[..at].to_string(),
            None => reason,
        };
        ConfigError {
            source: Source::Unreadable {
                path: path.to_string(),
            },
            key: String::new(),
            reason,
        }
    }
}

/// The value with a trailing comment removed: a `#` that opens the value or
/// follows white space starts a comment (a `#` inside a word is kept).
fn strip_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    let start = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    match start {
        Some(at) => &value[..at],
        None => value,
    }
}

/// Why `key` is unknown, with the vsftpd counterpart or a near miss.
fn unknown_key(key: &str) -> String {
    if let Some(c) = vsftpd::counterpart(key) {
        return match c.minftpd {
            Some(_) => format!(
                "unknown key; this is vsftpd's, minftpd's is {}",
                c.describe(|k| k.to_string())
            ),
            None => format!(
                "unknown key; this is vsftpd's, and minftpd has no such key, because {}",
                c.note
            ),
        };
    }
    match closest_key(key) {
        Some(near) => format!("unknown key; did you mean {near}?"),
        None => "unknown key".into(),
    }
}

/// The real key closest to `key`, when it is close enough to be a typo.
fn closest_key(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    KEYS.iter()
        .map(|k| (edit_distance(&key, k.name), k.name))
        .filter(|(d, name)| *d <= 2.max(name.len() / 4))
        .min()
        .map(|(_, name)| name)
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A bad value of a key vsftpd also has but means otherwise (`listen = YES`)
/// gets what minftpd's key wants.
fn with_vsftpd_note(key: &str, reason: String) -> String {
    match vsftpd::counterpart(key) {
        Some(c) if c.minftpd == Some(key) && !c.note.is_empty() => {
            format!("{reason} (vsftpd's {key} differs: {})", c.note)
        }
        _ => reason,
    }
}

impl Config {
    /// Applies a config file's text; `path` names it in errors. Every bad line
    /// is reported, in order, so one run shows all that needs fixing.
    pub fn apply_file(&mut self, path: &str, text: &str) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
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
                errors.push(ConfigError {
                    source,
                    key: String::new(),
                    reason: "expected key = value".into(),
                });
                continue;
            };
            let key = key.trim();
            let result = if KEYS.iter().any(|k| k.name == key) {
                self.set(key, strip_comment(value))
                    .map_err(|reason| with_vsftpd_note(key, reason))
            } else {
                Err(unknown_key(key))
            };
            if let Err(reason) = result {
                errors.push(ConfigError {
                    source,
                    key: key.to_string(),
                    reason,
                });
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors),
        }
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
        let result = match KEYS.iter().any(|k| k.name == key) {
            true => self.set(key, value),
            false => Err(unknown_key(key)),
        };
        result.map_err(|reason| ConfigError {
            source: Source::Option,
            key: key.to_string(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        let mut config = Config::default();
        match config.apply_file("f", text) {
            Ok(()) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn file_errors_name_file_line_and_key() {
        let mut config = Config::default();
        let err = config
            .apply_file("/etc/m.conf", "# c\n\nmax_clients = 0\n")
            .unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "/etc/m.conf:3: max_clients: expected a number above 0, got \"0\""
        );
        assert_eq!(errors("bogus_key = 1"), ["f:1: bogus_key: unknown key"]);
        assert_eq!(errors("no equals sign"), ["f:1: expected key = value"]);
        let err = errors("anonymous_enable = maybe");
        assert!(err[0].contains("expected yes or no"), "{err:?}");
    }

    #[test]
    fn every_bad_line_is_reported_in_one_run() {
        let got = errors("max_clients = 0\nroot = /tmp\nnope\nlocal_umask = 022\numask = 9\n");
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with("f:1: max_clients:"), "{got:?}");
        assert!(got[1].starts_with("f:3: expected key = value"), "{got:?}");
        assert!(got[2].starts_with("f:4: local_umask:"), "{got:?}");
        assert!(got[3].starts_with("f:5: umask:"), "{got:?}");
    }

    #[test]
    fn vsftpd_keys_and_near_misses_get_a_hint() {
        assert_eq!(
            errors("local_umask = 022"),
            ["f:1: local_umask: unknown key; this is vsftpd's, minftpd's is umask"]
        );
        assert!(errors("listen_port = 21")[0].contains("minftpd's is listen: the port is part"));
        assert!(errors("deny_file = {*.mp3}")[0].contains("minftpd has no such key, because"));
        assert_eq!(
            errors("max_client = 5"),
            ["f:1: max_client: unknown key; did you mean max_clients?"]
        );
        assert!(errors("listen = YES")[0].contains("vsftpd's listen differs"));
        assert_eq!(errors("zzzzzz = 1"), ["f:1: zzzzzz: unknown key"]);
    }

    #[test]
    fn a_trailing_comment_is_a_comment() {
        let mut config = Config::default();
        config
            .apply_file(
                "f",
                "max_clients = 7 # seven\nbanner = Welcome#1 #greeting\n",
            )
            .unwrap();
        assert_eq!(config.max_clients, 7);
        assert_eq!(config.banner, "Welcome#1");
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
        let err = config.apply_option("ftpd_banner=hi").unwrap_err();
        assert!(err.to_string().contains("minftpd's is banner"), "{err}");
    }

    #[test]
    fn an_unreadable_file_has_no_line_number() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            ConfigError::unreadable("/x.conf", &e).to_string(),
            "cannot read /x.conf: No such file or directory"
        );
    }
}
