//! The control-line parser: any bytes a client sends must parse to a command
//! (or an error value) without panicking, and the verb we echo in logs stays short.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minftpd::command::{self, Command};

fuzz_target!(|data: &[u8]| {
    let line = command::clean_line(data);
    assert!(!line.ends_with(b"\r\n"));
    if let Command::Unknown(verb) = command::parse(&line) {
        assert!(verb.len() <= 16);
        assert!(verb.chars().all(|c| c.is_ascii_graphic()));
    }
    let _ = minftpd::listing::split_options(&line);
});
