//! The command-line options: one table that both getopts and `--help` read,
//! so the help cannot list an option the parser does not know. The help is
//! laid out here rather than by `getopts::Options::usage`, whose Unicode
//! width tables cost the static binary 20 KB for text that is all ASCII.
//! Nothing here sees a client's bytes; the arguments come from the admin.

/// How an option takes its value.
#[derive(Clone, Copy, PartialEq)]
enum Takes {
    /// A flag, given at most once.
    Flag,
    /// A flag that counts how often it is given (-vv).
    Count,
    /// One value (the last one wins).
    Value(&'static str),
    /// A value, repeatable.
    Values(&'static str),
}

struct Opt {
    short: &'static str,
    long: &'static str,
    takes: Takes,
    desc: &'static str,
}

const fn opt(short: &'static str, long: &'static str, takes: Takes, desc: &'static str) -> Opt {
    Opt {
        short,
        long,
        takes,
        desc,
    }
}

use Takes::{Count, Flag, Value, Values};

#[rustfmt::skip]
const OPTIONS: &[Opt] = &[
    opt("l", "listen", Values("ADDR:PORT"),
        "listen on ADDR:PORT, [IPV6]:PORT or :PORT (repeatable; default [::]:21)"),
    opt("r", "root", Value("DIR"),
        "serve DIR (also the one positional argument; default /srv/ftp)"),
    opt("A", "anonymous", Flag,
        "allow anonymous logins (anonymous_enable = yes)"),
    opt("w", "write", Flag,
        "allow commands that write (write_enable = yes)"),
    opt("U", "users", Value("FILE"),
        "read named accounts from FILE (users_file)"),
    opt("", "pasv-ports", Value("LO-HI"),
        "passive data ports LO-HI (pasv_min_port, pasv_max_port)"),
    opt("", "pasv-address", Value("HOST"),
        "IPv4 address or host name to advertise in PASV replies (pasv_address)"),
    opt("", "max-clients", Value("N"),
        "sessions served at once, the pool size (max_clients; default 50)"),
    opt("", "max-per-ip", Value("N"),
        "sessions at once from one address (max_per_ip; default 10)"),
    opt("", "no-chroot", Flag,
        "do not chroot when started as root (chroot = no)"),
    opt("i", "inetd", Flag,
        "serve one session on the socket on standard input (inetd)"),
    opt("", "implicit-tls", Flag,
        "the inherited connection (--inetd, systemd Accept=yes) is implicit FTPS"),
    opt("c", "config", Value("FILE"),
        "read the configuration from FILE (default /etc/minftpd.conf if it exists)"),
    opt("o", "option", Values("KEY=VALUE"),
        "set any configuration key; later ones win over the file"),
    opt("", "check-config", Flag,
        "validate the configuration, warn of set-ups that cannot work, print it in file format, exit 0 or 2"),
    opt("", "hash-password", Flag,
        "read a password from standard input and print a $6$ hash for the users file"),
    opt("v", "verbose", Count,
        "log more (repeat for trace)"),
    opt("q", "quiet", Count,
        "log less (repeat for errors only)"),
    opt("h", "help", Flag,
        "print this help and exit"),
    opt("V", "version", Flag,
        "print the version and the optional features built in, and exit"),
];

const BRIEF: &str = "Usage: minftpd [OPTIONS] [DIR]\n\nA small, secure FTP server. Serves DIR (or --root) to FTP clients.";

/// Where descriptions start, and how wide they may be (78 columns in all).
const DESC_COLUMN: usize = 24;
const DESC_WIDTH: usize = 54;

/// The parser for the table.
pub fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    for opt in OPTIONS {
        let (short, long, desc) = (opt.short, opt.long, opt.desc);
        match opt.takes {
            Flag => o.optflag(short, long, desc),
            Count => o.optflagmulti(short, long, desc),
            Value(hint) => o.optopt(short, long, desc, hint),
            Values(hint) => o.optmulti(short, long, desc, hint),
        };
    }
    o
}

/// The text of `--help`: the brief, then one entry an option, laid out as
/// getopts lays it out (the README shows it as printed).
pub fn usage() -> String {
    let rows: Vec<String> = OPTIONS.iter().map(usage_row).collect();
    format!("{BRIEF}\n\nOptions:\n{}\n", rows.join("\n"))
}

fn usage_row(opt: &Opt) -> String {
    let mut row = String::from("    ");
    row.push_str(if opt.short.is_empty() { "    " } else { "-" });
    if !opt.short.is_empty() {
        row.push_str(opt.short);
        row.push_str(", ");
    }
    row.push_str("--");
    row.push_str(opt.long);
    row.push(' ');
    if let Value(hint) | Values(hint) = opt.takes {
        row.push_str(hint);
    }
    let indent = format!("\n{:DESC_COLUMN$}", "");
    if row.len() < DESC_COLUMN {
        row.push_str(&" ".repeat(DESC_COLUMN - row.len()));
    } else {
        row.push_str(&indent);
    }
    row.push_str(&wrap(opt.desc, DESC_WIDTH).join(&indent));
    row
}

/// Words of `text` in lines of at most `width` bytes (a longer word gets a
/// line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_is_ascii_and_fits_78_columns() {
        let help = usage();
        assert!(
            help.is_ascii(),
            "byte widths are column widths only in ASCII"
        );
        for line in help.lines() {
            assert!(line.len() <= 78, "too wide: {line:?}");
        }
    }

    #[test]
    fn every_option_of_the_table_parses_and_is_in_the_help() {
        let help = usage();
        for opt in OPTIONS {
            assert!(help.contains(&format!("--{} ", opt.long)), "{}", opt.long);
            let mut args = vec![format!("--{}", opt.long)];
            if let Value(_) | Values(_) = opt.takes {
                args.push("x".into());
            }
            let m = options().parse(&args).expect(opt.long);
            assert!(m.opt_present(opt.long));
        }
    }

    #[test]
    fn long_words_get_a_line_of_their_own() {
        assert_eq!(wrap("a bb ccccc d", 4), ["a bb", "ccccc", "d"]);
    }
}
