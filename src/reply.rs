//! Reply codes as named constants, and their formatting (RFC 959 section 4.2).

pub const OPENING_DATA: u16 = 150;
pub const OK: u16 = 200;
pub const NOT_NEEDED: u16 = 202;
pub const STATUS: u16 = 211;
pub const FILE_STATUS: u16 = 213;
pub const HELP: u16 = 214;
pub const SYSTEM: u16 = 215;
pub const READY: u16 = 220;
pub const GOODBYE: u16 = 221;
pub const TRANSFER_DONE: u16 = 226;
pub const PASSIVE: u16 = 227;
pub const EXT_PASSIVE: u16 = 229;
pub const LOGGED_IN: u16 = 230;
pub const FILE_OK: u16 = 250;
pub const CREATED: u16 = 257;
pub const NEED_PASSWORD: u16 = 331;
pub const PENDING: u16 = 350;
pub const UNAVAILABLE: u16 = 421;
pub const CANT_OPEN_DATA: u16 = 425;
pub const TRANSFER_ABORTED: u16 = 426;
pub const LOCAL_ERROR: u16 = 451;
pub const NO_SPACE: u16 = 452;
pub const SYNTAX_ERROR: u16 = 500;
pub const BAD_ARGUMENT: u16 = 501;
pub const NOT_IMPLEMENTED: u16 = 502;
pub const BAD_SEQUENCE: u16 = 503;
pub const NOT_FOR_PARAMETER: u16 = 504;
pub const NOT_LOGGED_IN: u16 = 530;
pub const NO_TLS: u16 = 534;
pub const UNAVAILABLE_FILE: u16 = 550;
pub const BAD_NAME: u16 = 553;
pub const EXT_PROTOCOL: u16 = 522;

/// Formats a reply. Text with several lines becomes a multi-line reply:
/// `NNN-first`, the middle lines indented by one space (so that none can be
/// mistaken for the last), and `NNN last`. A bare CR (a client's own bytes,
/// echoed in a name) is dropped: only CRLF ends a line on the wire.
pub fn format(code: u16, text: &str) -> Vec<u8> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::with_capacity(text.len() + 8 * lines.len());
    let mut push = |prefix: &str, line: &str| {
        out.push_str(prefix);
        out.extend(line.chars().filter(|&c| c != '\r'));
        out.push_str("\r\n");
    };
    match lines.as_slice() {
        [first, middle @ .., last] => {
            push(&format!("{code}-"), first);
            for line in middle {
                push(" ", line);
            }
            push(&format!("{code} "), last);
        }
        [only] => push(&format!("{code} "), only),
        [] => push(&format!("{code} "), ""),
    }
    out.into_bytes()
}

/// A quoted path for `257` replies: inner quotes doubled (RFC 959 appendix II).
pub fn quote_path(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 2);
    out.push(b'"');
    for &b in path {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_cr_never_reaches_the_wire() {
        assert_eq!(format(250, "a\rb"), b"250 ab\r\n");
        assert_eq!(
            format(250, "Listing x\r\n213 forged\nEnd."),
            b"250-Listing x\r\n 213 forged\r\n250 End.\r\n"
        );
    }

    #[test]
    fn single_and_multi_line() {
        assert_eq!(format(200, "OK."), b"200 OK.\r\n");
        assert_eq!(
            format(211, "Features:\nEPSV\nEnd"),
            b"211-Features:\r\n EPSV\r\n211 End\r\n"
        );
        assert_eq!(format(214, "a\nb"), b"214-a\r\n214 b\r\n");
    }

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(quote_path(b"/a\"b"), b"\"/a\"\"b\"");
    }
}
