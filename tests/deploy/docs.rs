//! The manual pages and README agree with the code: every key, default and
//! option, the vsftpd key table, the --help block, and the fail2ban filter as
//! each page prints it.

use super::*;

#[test]
fn every_key_and_default_is_in_the_manual() {
    let code = effective_config();
    let documented = documented_defaults();
    assert!(code.len() >= 25, "{code:?}");
    for (key, value) in &code {
        let Some(doc) = documented.get(key) else {
            panic!("minftpd.conf.5 does not document {key}")
        };
        if key != "root" {
            assert_eq!(
                doc, value,
                "minftpd.conf.5 states another default for {key}"
            );
        }
    }
    for key in documented.keys() {
        assert!(
            code.contains_key(key),
            "minftpd.conf.5 documents {key}, which the code does not know"
        );
    }
    let readme = read("README.md");
    for key in code.keys() {
        assert!(
            readme.contains(&format!("`{key}`")),
            "README.md lacks the key {key}"
        );
    }
    let example = read("contrib/minftpd.conf");
    for key in code.keys() {
        assert!(
            example.contains(&format!("#{key} = ")),
            "contrib/minftpd.conf lacks {key}"
        );
    }
}

#[test]
fn every_option_is_in_the_manual_and_readme() {
    let help = String::from_utf8(run(BIN, &["--help"]).stdout).unwrap();
    let mut options: Vec<String> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.chars()
                .take_while(|c| *c == '-' || c.is_ascii_alphanumeric())
                .collect()
        })
        .collect();
    options.sort();
    options.dedup();
    assert!(options.len() >= 18, "{help}");
    let page = read("man/minftpd.8");
    let readme = read("README.md");
    for option in options {
        let name = &option[2..];
        assert!(
            page.contains(&format!("Fl -{name}")),
            "minftpd.8 lacks {option}"
        );
        assert!(readme.contains(option.as_str()), "README.md lacks {option}");
    }
}

#[test]
fn manual_pages_lint_clean() {
    if !have("mandoc") {
        return;
    }
    let pages = [project("man/minftpd.8"), project("man/minftpd.conf.5")];
    let out = run(
        "mandoc",
        &[
            "-T",
            "lint",
            "-W",
            "warning",
            pages[0].to_str().unwrap(),
            pages[1].to_str().unwrap(),
        ],
    );
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
}

/// The "Coming from vsftpd" tables of README.md and minftpd.conf(5) are the
/// table the config file's key hints come from: each row as the code prints
/// it, and no row the code lacks.
#[test]
fn vsftpd_tables_agree_with_the_code() {
    use minftpd::config::vsftpd::{markdown_row, mdoc_item, VSFTPD_KEYS};
    let readme = read("README.md");
    let section = readme
        .split("## Coming from vsftpd")
        .nth(1)
        .expect("README.md has a Coming from vsftpd section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();
    let want: Vec<String> = VSFTPD_KEYS.iter().map(markdown_row).collect();
    assert_eq!(rows, want, "README.md's vsftpd table");
    let page = read("man/minftpd.conf.5");
    let section = page
        .split(".Sh COMING FROM VSFTPD")
        .nth(1)
        .expect("minftpd.conf.5 has a COMING FROM VSFTPD section");
    let section = section.split("\n.Sh ").next().unwrap();
    let items = section.matches(".It Cm ").count();
    assert_eq!(items, VSFTPD_KEYS.len(), "minftpd.conf.5's vsftpd list");
    for c in VSFTPD_KEYS {
        let item = mdoc_item(c);
        assert!(
            section.contains(&format!("{item}\n")),
            "minftpd.conf.5 lacks\n{item}"
        );
    }
}

/// The text of `page` rendered as a reader sees it (mandoc, no overstrikes).
fn rendered_man_page(page: &str) -> String {
    let out = run("mandoc", &["-T", "ascii", project(page).to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // mandoc marks bold and underline as X\bX and _\bX: keep the X.
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The fail2ban filter as `text` shows it: from the `[Definition]` line to
/// the `ignoreregex` line, with the indentation of the first taken off.
fn filter_in(text: &str, what: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "[Definition]")
        .unwrap_or_else(|| panic!("no [Definition] in {what}"));
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.trim_start().starts_with("ignoreregex"))
            .unwrap_or_else(|| panic!("no ignoreregex in {what}"));
    let indent = lines[start].len() - lines[start].trim_start().len();
    lines[start..=end]
        .iter()
        .map(|l| format!("{}\n", l.get(indent..).unwrap_or("").trim_end()))
        .collect()
}

/// Issue 18: the fail2ban filter as README, minftpd(8) and the installed
/// file print it, run through fail2ban-regex: each bans the addresses of
/// real failures (log_file, syslog and journal lines) and none that a
/// client wrote into a name or path.
#[test]
fn the_fail2ban_filter_as_each_page_prints_it_bans_only_real_failures() {
    if !have("make") || !have("mandoc") || !have("fail2ban-regex") {
        return;
    }
    let dest = TempDir::new("f2b-dest");
    let destdir = format!("DESTDIR={}", dest.path().display());
    make(&[
        "-s",
        "install",
        &destdir,
        "PREFIX=/usr",
        &format!("BIN={BIN}"),
    ]);
    let installed =
        std::fs::read_to_string(dest.path().join("etc/fail2ban/filter.d/minftpd.conf")).unwrap();
    let jail =
        std::fs::read_to_string(dest.path().join("etc/fail2ban/jail.d/minftpd.conf")).unwrap();
    assert!(
        jail.contains("\nfilter   = minftpd\n") && jail.contains("\nbackend  = systemd\n"),
        "{jail}"
    );
    assert!(
        jail.contains("\njournalmatch = _SYSTEMD_UNIT=minftpd.service\n"),
        "{jail}"
    );
    assert!(
        jail.contains("\n#logpath = /var/log/minftpd/minftpd.log\n"),
        "{jail}"
    );
    let log = "\
2026-11-24T04:20:49Z minftpd[6474] WARN: login failed: peer=192.0.2.7 user=\"alice\"
Nov 24 04:20:50 box minftpd[6475]: login failed: peer=192.0.2.8 user=\"b\\\"ob\"
2026-11-24T04:20:51Z minftpd[6474] INFO: 127.0.0.1:4000 \"rw\" STOR \"/up/x login failed: peer=203.0.113.77 user=admin\" ok 1 bytes in 0.001s
2026-11-24T04:20:52Z minftpd[6474] WARN: login failed: peer=127.0.0.1 user=\"a\\\" peer=203.0.113.80 user=\\\"b\"
Nov 24 04:20:53 box minftpd[6475]: 127.0.0.1:4001 \"rw\" renamed \"/a\" to \"/y login failed: peer=203.0.113.78 user=z\"
";
    let dir = TempDir::new("f2b-pages");
    let log_path = dir.write("minftpd.log", log.as_bytes());
    let pages = [
        ("README.md", filter_in(&read("README.md"), "README.md")),
        (
            "minftpd(8)",
            filter_in(&rendered_man_page("man/minftpd.8"), "minftpd(8)"),
        ),
        (
            "the installed filter",
            filter_in(&installed, "the installed filter"),
        ),
    ];
    for (what, filter) in pages {
        let path = dir.write("filter.conf", filter.as_bytes());
        let out = run(
            "fail2ban-regex",
            &[
                "--out",
                "ip",
                log_path.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
        );
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{what}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let banned: Vec<&str> = report.split_whitespace().collect();
        assert_eq!(
            banned,
            ["192.0.2.7", "192.0.2.8", "127.0.0.1"],
            "{what}:\n{filter}"
        );
    }
}

/// The `--help` block of README.md is what the binary prints.
#[test]
fn readme_shows_help_as_the_binary_prints_it() {
    let help = String::from_utf8(run(BIN, &["--help"]).stdout).unwrap();
    let readme = read("README.md");
    let block = readme
        .split_once("`minftpd --help`:\n\n```\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("README.md has a `minftpd --help` block");
    let trimmed = |text: &str| {
        text.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(trimmed(block), trimmed(&help));
}
