//! Client bytes in log lines: `Quoted` writes a string a client sent (a
//! user name, a path, a command line) between quotes with every byte that
//! could end or forge a line escaped, so nothing a client sends reaches a
//! line unquoted; `Secs` writes durations. A client controls the bytes,
//! bounded by the command line's length.

/// A duration in seconds with `decimals` digits after the point (0: as few
/// as it needs, none for whole seconds), rounded half up. Integer arithmetic:
/// formatting an `f64` brought the float printing code into the static
/// binary (about 10 KB) for a few log lines.
pub struct Secs(pub std::time::Duration, pub u32);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Secs(duration, decimals) = *self;
        if decimals == 0 {
            let (whole, nanos) = (duration.as_secs(), duration.subsec_nanos());
            let fraction = format!("{nanos:09}");
            let fraction = fraction.trim_end_matches('0');
            return match fraction {
                "" => write!(f, "{whole}"),
                _ => write!(f, "{whole}.{fraction}"),
            };
        }
        let scale = 10u128.pow(decimals);
        let units = (duration.as_nanos() * scale + 500_000_000) / 1_000_000_000;
        let width = decimals as usize;
        write!(f, "{}.{:0width$}", units / scale, units % scale)
    }
}

/// A client-supplied byte string as it may appear in a log line: quoted, with
/// `"` and `\\` escaped, control characters (C0, DEL, C1), line and paragraph
/// separators and bidirectional overrides as `\xNN` or `\u{NNNN}`, and bytes
/// that are not UTF-8 as `\xNN`. A client can put anything into a path or a
/// user name; with this nothing it sends can end a log line early, start a
/// forged one, move a terminal's cursor, or look like text outside the quotes.
pub struct Quoted<'a>(pub &'a [u8]);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"")?;
        write_escaped(f, self.0, false)?;
        f.write_str("\"")
    }
}

/// Writes `bytes` escaped as `Quoted` does; `blank_as_underscore` also turns
/// spaces into `_` (xferlog's space-separated fields).
fn write_escaped(
    out: &mut impl std::fmt::Write,
    bytes: &[u8],
    blank_as_underscore: bool,
) -> std::fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.write_str("\\\"")?,
                '\\' => out.write_str("\\\\")?,
                ' ' if blank_as_underscore => out.write_char('_')?,
                c if c.is_control() || c.is_whitespace() && c != ' ' => {
                    if (c as u32) < 0x100 {
                        write!(out, "\\x{:02x}", c as u32)?
                    } else {
                        write!(out, "\\u{{{:04x}}}", c as u32)?
                    }
                }
                '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {
                    write!(out, "\\u{{{:04x}}}", c as u32)?
                }
                c => out.write_char(c)?,
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// A client-supplied string for a space-separated xferlog field: escaped like
/// `Quoted`, spaces as `_`, without the quotes.
pub(super) fn xferlog_field(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let _ = write_escaped(&mut out, bytes, true);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_bytes_in_log_lines_are_quoted_and_escaped() {
        let shown = |b: &[u8]| Quoted(b).to_string();
        assert_eq!(shown(b"/pub/a file.txt"), "\"/pub/a file.txt\"");
        assert_eq!(
            shown(b"x\r\n2026-01-01T00:00:00Z minftpd[1] WARN: login failed: peer=203.0.113.77"),
            "\"x\\x0d\\x0a2026-01-01T00:00:00Z minftpd[1] WARN: login failed: peer=203.0.113.77\""
        );
        assert_eq!(shown(b"\x1b[2J\x07"), "\"\\x1b[2J\\x07\"");
        assert_eq!(shown(b"say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
        assert_eq!(shown(b"caf\xc3\xa9 \xff\xfe"), "\"caf\u{e9} \\xff\\xfe\"");
        assert_eq!(
            shown("a\u{202e}b\u{85}c".as_bytes()),
            "\"a\\u{202e}b\\x85c\""
        );
        assert_eq!(xferlog_field(b"/a b\nc\\"), "/a_b\\x0ac\\\\");
    }

    #[test]
    fn seconds_are_written_like_the_float_formats_they_replace() {
        use std::time::Duration;
        let ms = Duration::from_millis;
        assert_eq!(Secs(ms(1234), 1).to_string(), "1.2");
        assert_eq!(Secs(ms(1250), 1).to_string(), "1.3");
        assert_eq!(Secs(ms(99_960), 1).to_string(), "100.0");
        assert_eq!(
            Secs(Duration::from_nanos(1_234_567), 3).to_string(),
            "0.001"
        );
        assert_eq!(Secs(ms(2_000), 3).to_string(), "2.000");
        assert_eq!(Secs(ms(5_000), 0).to_string(), "5");
        assert_eq!(Secs(ms(500), 0).to_string(), "0.5");
    }
}
