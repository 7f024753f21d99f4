//! The decoy: the crypt(3) setting that a login for a name without an account
//! is checked against, so that it costs what a real account's check costs.
//! The client picks the name and the password; the work is bounded by the
//! costliest hash the administrator configured, never by the client.

use super::KNOWN_PREFIXES;
use crate::sys;
use std::time::{Duration, Instant};

/// The decoy when no account has a usable hash: what --hash-password makes.
pub(super) const DEFAULT: &[u8] = b"$6$minftpddecoysalt$";

/// The fixed salts of decoy settings: well-formed for every algorithm (the
/// bcrypt one is 22 characters and ends in a character whose unused low bits
/// are zero), and no account's.
const DECOY_SALT: &[u8] = b"minftpddecoysalt";
const BCRYPT_DECOY_SALT: &[u8] = b"minftpddecoysaltminfte";

/// The settings of `hash` (algorithm and cost parameters) with the fixed salt:
/// `$2b$12$<salt>`, `$y$j9T$<salt>$`, `$6$rounds=N$<salt>$`, `$7$<params><salt>$`.
/// None when the hash cannot be taken apart that way.
pub(super) fn setting_of(hash: &[u8]) -> Option<Vec<u8>> {
    if [b"$2a$", b"$2b$", b"$2y$"]
        .iter()
        .any(|p| hash.starts_with(*p))
    {
        // $2b$NN$ then 22 salt and 31 digest characters, no `$` between.
        let cost = hash.get(4..7)?;
        if !(cost[0].is_ascii_digit() && cost[1].is_ascii_digit() && cost[2] == b'$') {
            return None;
        }
        return Some([&hash[..7], BCRYPT_DECOY_SALT].concat());
    }
    if hash.starts_with(b"$7$") {
        // scrypt: 11 parameter characters (N, r, p) run straight into the salt.
        let params = hash.get(3..14)?;
        return Some([b"$7$", params, DECOY_SALT, b"$"].concat());
    }
    // $id$[params$...]salt$digest: keep everything before the salt.
    let fields: Vec<&[u8]> = hash.split(|&b| b == b'$').collect();
    if fields.len() < 4 || !fields[0].is_empty() {
        return None;
    }
    let mut setting = fields[..fields.len() - 2].join(&b'$');
    setting.push(b'$');
    setting.extend_from_slice(DECOY_SALT);
    setting.push(b'$');
    Some(setting)
}

/// The work one crypt(3) with `setting` takes here: the least of a few runs,
/// so that a scheduling hiccup does not make a cheap setting look costly.
/// None when the C library refuses the setting.
fn crypt_cost(setting: &[u8]) -> Option<Duration> {
    let mut best: Option<Duration> = None;
    let started = Instant::now();
    for _ in 0..3 {
        let run = Instant::now();
        sys::crypt_hash(b"decoy password", setting)?;
        let took = run.elapsed();
        best = Some(best.map_or(took, |b| b.min(took)));
        // A costly setting is clearly costly after one run: don't slow start-up.
        if started.elapsed() > Duration::from_millis(50) {
            break;
        }
    }
    best
}

/// Picks the decoy: the fixed-salt form of each distinct algorithm and cost
/// among `hashes`, each measured with crypt(3) at load (on the main thread,
/// before serving or on SIGHUP), the costliest kept. Measuring rather than
/// ranking bcrypt cost against yescrypt and SHA-crypt parameters by formula
/// stays right for whatever the C library implements. Settings the C library
/// refuses are skipped: their accounts cannot log in either.
pub(super) fn costliest<'a>(hashes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut settings: Vec<Vec<u8>> = hashes
        .filter(|h| KNOWN_PREFIXES.iter().any(|p| h.starts_with(p.as_bytes())))
        .filter_map(setting_of)
        .collect();
    settings.sort();
    settings.dedup();
    settings
        .into_iter()
        .filter_map(|s| crypt_cost(&s).map(|cost| (cost, s)))
        .max_by_key(|(cost, _)| *cost)
        .map_or_else(|| DEFAULT.to_vec(), |(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::super::Users;
    use super::*;

    /// `mkpasswd -m yescrypt -S saltsaltsaltsalt x`.
    const YESCRYPT: &str = "$y$j9T$saltsaltsaltsalt$.756M/zb2pbOOmE06WQ0Z0ahuN3hP77kLoWIpIFnmy0";

    /// A users file line with `hash` for `name`.
    fn line(name: &str, hash: &str) -> String {
        format!("{name}:{hash}:/:ro\n")
    }

    #[test]
    fn the_decoy_costs_what_the_costliest_hash_costs() {
        let cheap = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        let rounds = "$6$rounds=50000$othersalt$abcdefghijklmnop";
        let text = line("cheap", cheap) + &line("slow", rounds);
        let users = Users::parse("u", &text).unwrap();
        assert_eq!(users.decoy(), b"$6$rounds=50000$minftpddecoysalt$");
        // The salt is fixed, never an account's.
        let bcrypt = "$2b$12$abcdefghijklmnopqrstuu0123456789012345678901234567890";
        if sys::crypt_hash(b"x", b"$2b$04$abcdefghijklmnopqrstuu").is_none() {
            eprintln!("SKIPPED bcrypt part: this C library's crypt(3) has no bcrypt");
            return;
        }
        let text = line("cheap", cheap) + &line("bf", bcrypt) + &line("y", YESCRYPT);
        let users = Users::parse("u", &text).unwrap();
        assert_eq!(users.decoy(), b"$2b$12$minftpddecoysaltminfte");
    }

    #[test]
    fn without_accounts_the_decoy_is_the_default_sha512() {
        assert_eq!(Users::default().decoy(), DEFAULT);
    }

    #[test]
    fn decoy_settings_keep_algorithm_and_cost_and_fix_the_salt() {
        let cases: [(&str, Option<&str>); 8] = [
            (
                "$2y$11$abcdefghijklmnopqrstuuXYZ",
                Some("$2y$11$minftpddecoysaltminfte"),
            ),
            ("$2b$1x$abc", None),
            ("$y$j9T$salt$hash", Some("$y$j9T$minftpddecoysalt$")),
            ("$gy$jCT$salt$hash", Some("$gy$jCT$minftpddecoysalt$")),
            (
                "$6$rounds=9000$salt$hash",
                Some("$6$rounds=9000$minftpddecoysalt$"),
            ),
            ("$5$salt$hash", Some("$5$minftpddecoysalt$")),
            (
                "$7$CU..../....saltsalt$hash",
                Some("$7$CU..../....minftpddecoysalt$"),
            ),
            ("$6$nodigest", None),
        ];
        for (hash, want) in cases {
            let got = setting_of(hash.as_bytes());
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{hash}");
        }
    }
}
