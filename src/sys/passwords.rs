//! Passwords: crypt(3) through `crypt_r` (no global lock), and the terminal
//! echo switch of `--hash-password`. A client controls the password bytes and
//! which account's setting is used (bounded by the users file and the decoy).

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

#[cfg_attr(target_env = "gnu", link(name = "crypt"))]
extern "C" {
    fn crypt_r(
        key: *const libc::c_char,
        setting: *const libc::c_char,
        data: *mut libc::c_void,
    ) -> *mut libc::c_char;
}

/// Bytes of `struct crypt_data`: libxcrypt (the libcrypt of glibc systems)
/// fixes it at exactly 32768; musl's is 260 bytes, so this covers both.
const CRYPT_DATA_SIZE: usize = 32768;

/// `crypt(3)` of `password` with the settings (algorithm and salt) of `setting`.
/// `None` when the C library does not know the algorithm.
///
/// Uses `crypt_r` with a buffer of its own per call, so logins hash in parallel:
/// a global lock around `crypt` let one slow hash (bcrypt, chosen by whoever
/// guesses at that account) stall every other login.
pub fn crypt_hash(password: &[u8], setting: &[u8]) -> Option<Vec<u8>> {
    let key = CString::new(password).ok()?;
    let setting = CString::new(setting).ok()?;
    // Zeroed as both libraries ask before first use; on the heap because 32 KiB
    // is much for a worker's stack. u64 words give it any alignment it needs.
    let mut data = vec![0u64; CRYPT_DATA_SIZE / 8];
    // SAFETY: both strings are NUL-terminated; `data` is a zeroed area at least
    // as large as `struct crypt_data` and lives until the result is copied out
    // (the result points into it).
    let out = unsafe {
        crypt_r(
            key.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if out.is_null() {
        return None;
    }
    // SAFETY: a non-NULL result is a NUL-terminated string inside `data`.
    let out = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
    // The buffer held the password; clear it before it goes back to the allocator.
    data.iter_mut().for_each(|w| *w = 0);
    std::hint::black_box(&data);
    // glibc and musl signal failure with a string starting with '*'.
    if out.is_empty() || out[0] == b'*' {
        None
    } else {
        Some(out)
    }
}

/// Turns terminal echo off (when `fd` is a terminal) and returns the previous
/// settings for `restore_echo`.
pub fn disable_echo(fd: BorrowedFd) -> Option<libc::termios> {
    // SAFETY: all-zero termios is valid storage for tcgetattr to fill.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: term is a valid out-pointer.
    if unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut term) } != 0 {
        return None;
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    // SAFETY: term is a valid termios.
    unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &term) };
    Some(saved)
}

pub fn restore_echo(fd: BorrowedFd, saved: &libc::termios) {
    // SAFETY: saved came from tcgetattr.
    unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, saved) };
}
