//! What a packager and an administrator rely on: the manual pages and README
//! agree with the code, `make install`/`uninstall`, and the static binary.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn project(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(project(rel)).unwrap()
}

/// Every key and value `--check-config` prints.
fn effective_config() -> BTreeMap<String, String> {
    let root = TempDir::new("docs");
    check_config(root.path(), &[])
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = ") || l.ends_with(" ="))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// `.It Cm key ...` entries of minftpd.conf(5) and the `Default:` each states.
fn documented_defaults() -> BTreeMap<String, String> {
    let page = read("man/minftpd.conf.5");
    let mut out = BTreeMap::new();
    let mut key = None;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix(".It Cm ") {
            key = rest.split_whitespace().next().map(String::from);
        } else if let Some(value) = line.strip_prefix("Default: ") {
            if let Some(k) = key.take() {
                let value = if value == "(empty)" { "" } else { value };
                out.insert(k, value.to_string());
            }
        }
    }
    out
}

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

fn make(args: &[&str]) -> std::process::Output {
    let out = run_in("make", args, Some(&project("")));
    assert!(
        out.status.success(),
        "make {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn make_install_and_uninstall() {
    if !have("make") {
        return;
    }
    let dest = TempDir::new("destdir");
    let destdir = format!("DESTDIR={}", dest.path().display());
    // The binary this test run built: install must not build again.
    let bin = format!("BIN={BIN}");
    make(&["-s", "install", &destdir, "PREFIX=/usr", &bin]);
    assert_eq!(
        files_under(dest.path()),
        [
            "etc/minftpd.conf",
            "usr/lib/systemd/system/minftpd-inetd.socket",
            "usr/lib/systemd/system/minftpd-inetd@.service",
            "usr/lib/systemd/system/minftpd.service",
            "usr/lib/systemd/system/minftpd.socket",
            "usr/sbin/minftpd",
            "usr/share/man/man5/minftpd.conf.5",
            "usr/share/man/man8/minftpd.8",
        ]
    );
    let unit = std::fs::read_to_string(dest.path().join("usr/lib/systemd/system/minftpd.service"))
        .unwrap();
    assert!(unit.contains("ExecStart=/usr/sbin/minftpd "), "{unit}");
    // An administrator's own config survives both a second install and uninstall.
    std::fs::write(
        dest.path().join("etc/minftpd.conf"),
        "anonymous_enable = yes\n",
    )
    .unwrap();
    make(&["-s", "install", &destdir, "PREFIX=/usr", &bin]);
    make(&["-s", "uninstall", &destdir, "PREFIX=/usr"]);
    assert_eq!(files_under(dest.path()), ["etc/minftpd.conf"]);
    assert_eq!(
        std::fs::read_to_string(dest.path().join("etc/minftpd.conf")).unwrap(),
        "anonymous_enable = yes\n"
    );
    std::fs::remove_file(dest.path().join("etc/minftpd.conf")).unwrap();
    make(&["-s", "install", &destdir, "PREFIX=/usr", &bin]);
    make(&["-s", "uninstall", &destdir, "PREFIX=/usr"]);
    assert!(
        files_under(dest.path()).is_empty(),
        "{:?}",
        files_under(dest.path())
    );
}

/// The static binary `make test-static` built (`make static`, a step of its
/// own in CI: it is most of a run's time). Ignored by `make test`; without
/// MINFTPD_STATIC_BIN it is a skip, which CI counts as a failure.
#[test]
#[ignore = "needs the static build: run `make test-static`"]
fn static_binary_is_static_small_and_serves() {
    let Ok(path) = std::env::var("MINFTPD_STATIC_BIN") else {
        return skip("MINFTPD_STATIC_BIN is not set (make test-static sets it)");
    };
    if !have("file") {
        return;
    }
    let kind = String::from_utf8(run("file", &["-L", &path]).stdout).unwrap();
    assert!(
        kind.contains("statically linked") || kind.contains("static-pie linked"),
        "{kind}"
    );
    let size = std::fs::metadata(&path).unwrap().len();
    println!("static binary {path}: {size} bytes");
    // The musl build is held to 1 MiB; the glibc fallback carries more libc.
    if path.contains("musl") {
        assert!(
            size <= 1 << 20,
            "the static binary is {size} bytes, over 1 MiB"
        );
    }
    // Smoke test: serve one download with the static binary; the server is
    // checked at the end like every other (still running, no panic).
    let root = TempDir::new("static");
    root.write("s.txt", b"static smoke");
    let server = Server::launch(&path, &["-l", "127.0.0.1:0"], root, &["-A"]);
    let mut ftp = server.anon();
    assert_eq!(ftp.retr("s.txt"), b"static smoke");
    server.finish();
    if path.contains("musl") {
        static_musl_refuses_yescrypt_at_start_up(&path);
    }
}

/// musl's crypt(3) has no yescrypt, the hash current Debian, Ubuntu and
/// Fedora write into /etc/shadow, and answers a `$y$` setting with a DES
/// string rather than a failure: the static binary must refuse such a users
/// file at start-up, naming the account, instead of failing every login.
fn static_musl_refuses_yescrypt_at_start_up(path: &str) {
    let etc = TempDir::new("static-yescrypt");
    // `mkpasswd -m yescrypt -S saltsaltsaltsalt x`.
    let users = etc.write(
        "users",
        b"cam:$y$j9T$saltsaltsaltsalt$.756M/zb2pbOOmE06WQ0Z0ahuN3hP77kLoWIpIFnmy0:/:rw\n",
    );
    let root = etc.mkdir("root");
    let args = users_start_args(&root, &users);
    let (code, err) = start_bounded(path, &args);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:1: user cam: this build's crypt(3) cannot check $y$ password hashes; make one with minftpd --hash-password",
            users.display()
        )),
        "{err}"
    );
    let (code, err) = start_bounded(path, &[&args[..], &["--check-config"]].concat());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("user cam: this build's crypt(3) cannot check $y$"),
        "{err}"
    );
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
