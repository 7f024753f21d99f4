//! What a packager and an administrator rely on: the manual pages and README
//! agree with the code, `make install`/`uninstall`, and the static binary.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod docs;
mod install;

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
