//! Path normalisation: whatever the client names, the virtual path is
//! absolute, has no `.`/`..`/empty components, and normalising it again
//! changes nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minftpd::fs::{normalize, split_parent};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(0);
    let (cwd_raw, arg) = data.split_at(split);
    let cwd = normalize(b"/", cwd_raw);
    let path = normalize(&cwd, arg);
    assert!(path.starts_with(b"/"));
    if path != b"/" {
        assert!(!path.ends_with(b"/"));
        for part in path[1..].split(|&b| b == b'/') {
            assert!(!part.is_empty() && part != b"." && part != b"..", "{path:?}");
        }
        let (parent, name) = split_parent(&path).expect("a path below / has a parent");
        assert!(!name.is_empty() && !name.contains(&b'/'));
        assert!(parent.starts_with(b"/"));
    }
    assert_eq!(normalize(b"/", &path), path);
    assert_eq!(normalize(&path, b""), path);
});
