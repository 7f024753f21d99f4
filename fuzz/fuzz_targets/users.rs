//! The users file parser: any text is accepted or refused with a message that
//! names the file and never contains the password hash field.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minftpd::auth::Users;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Users::parse("fuzz.users", &text) {
        assert!(e.starts_with("fuzz.users:"), "{e}");
        for line in text.lines() {
            let fields: Vec<&str> = line.trim().split(':').collect();
            if let [_, hash, _, _] = fields.as_slice() {
                if hash.len() >= 12 && hash.starts_with('$') {
                    assert!(!e.contains(hash), "hash leaked: {e}");
                }
            }
        }
    }
});
