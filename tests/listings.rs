//! Listings as clients expect them (issue 11): LIST, NLST, MLSD and STAT in
//! name order (byte order, as `ls` in the C locale).

use crate::common::*;

/// Names whose byte order differs from the order they were made in (and so,
/// on every filesystem we know, from readdir order): upper before lower
/// case, digits by byte not by value, UTF-8 after ASCII.
const NAMES: [&str; 12] = [
    "zeta", "b", "~tilde", "é.txt", "Zeta", "a b", "10", "9", "_under", "B", "a", "Ω",
];

fn sorted_root() -> TempDir {
    let root = TempDir::new("sorted");
    for name in NAMES {
        root.write(&format!("pub/{name}"), name.as_bytes());
    }
    root.mkdir("pub/dir");
    root.write("pub/.hidden", b"h");
    root
}

/// The names in the order readdir gives them: a sorted listing must differ.
fn readdir_order(root: &TempDir, rel: &str) -> Vec<String> {
    std::fs::read_dir(root.path().join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn byte_sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

/// The last field of each line (names hold no spaces but "a b", which ends
/// the line after the date field).
fn long_names(listing: &str, skip_fields: usize) -> Vec<String> {
    listing
        .lines()
        .map(|line| line.trim_start())
        .filter(|line| !line.starts_with("213"))
        .map(|line| {
            let mut rest = line;
            for _ in 0..skip_fields {
                rest = rest.trim_start();
                rest = &rest[rest.find(' ').unwrap_or(rest.len())..];
            }
            rest.trim_start().to_string()
        })
        .collect()
}

#[test]
fn listings_are_in_byte_order() {
    let root = sorted_root();
    let readdir = readdir_order(&root, "pub");
    let mut all: Vec<&str> = NAMES.to_vec();
    all.push("dir");
    let visible = byte_sorted(&all);
    assert_ne!(
        readdir, visible,
        "precondition: readdir order is not sorted"
    );
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();

    let nlst: Vec<String> = ftp.list("NLST pub").lines().map(String::from).collect();
    assert_eq!(nlst, visible, "NLST");

    let list = ftp.list("LIST pub");
    assert_eq!(long_names(&list, 8), visible, "LIST:\n{list}");

    let mut with_hidden = all.clone();
    with_hidden.push(".hidden");
    let list_all = ftp.list("LIST -a pub");
    assert_eq!(
        long_names(&list_all, 8),
        byte_sorted(&with_hidden),
        "LIST -a"
    );

    let mlsd = ftp.list("MLSD pub");
    let facts: Vec<String> = mlsd
        .lines()
        .skip(1)
        .map(|l| l.split_once("; ").unwrap().1.to_string())
        .collect();
    assert!(mlsd.starts_with("type=cdir;"), "{mlsd}");
    assert_eq!(facts, byte_sorted(&with_hidden), "MLSD:\n{mlsd}");

    let stat = ftp.ok("STAT pub", 213).text;
    let lines: Vec<&str> = stat.lines().collect();
    let body = lines[1..lines.len() - 1].join("\n");
    assert_eq!(
        long_names(&body, 8),
        byte_sorted(&with_hidden),
        "STAT:\n{stat}"
    );
}

/// A 200,000-entry directory is sorted in one buffer of its names (30
/// bytes each here, plus 5 of bookkeeping: 7 MB), freed when the listing
/// ends: the peak RSS grows by less than 16 MB and the RSS comes back.
#[test]
fn a_big_directory_is_sorted_in_a_few_megabytes() {
    const ENTRIES: usize = 200_000;
    let root = TempDir::new("big-sorted");
    let big = root.mkdir("big");
    for n in (0..ENTRIES).rev() {
        std::fs::File::create(big.join(format!("entry-with-a-long-name-{n:07}"))).unwrap();
    }
    let server = Server::start(root, &["-A"]);
    let mut ftp = server.anon();
    ftp.list("LIST /");
    let (peak, rss) = (status_kb(&server, "VmHWM"), status_kb(&server, "VmRSS"));
    let list = ftp.list("LIST big");
    let grown = status_kb(&server, "VmHWM").saturating_sub(peak);
    let kept = status_kb(&server, "VmRSS").saturating_sub(rss);
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(names.len(), ENTRIES);
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "LIST big is not sorted"
    );
    eprintln!("LIST of {ENTRIES} entries: peak RSS +{grown} kB, RSS after +{kept} kB");
    assert!(
        grown < 16 * 1024,
        "the listing grew the peak RSS by {grown} kB"
    );
    assert!(kept < 1024, "the listing left {kept} kB behind");
}
