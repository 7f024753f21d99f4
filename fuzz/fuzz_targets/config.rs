//! The config file parser: any text is accepted or refused with a message a
//! bad line,
//! and an accepted config printed by --check-config parses back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minftpd::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut config = Config::default();
    match config.apply_file("fuzz.conf", &text) {
        Ok(()) => {
            let printed = config.to_file_text();
            let mut again = Config::default();
            again.apply_file("printed", &printed).expect("printed config parses");
            assert_eq!(again, config);
        }
        // Every bad line is reported, each naming the file and its line.
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.to_string().starts_with("fuzz.conf:"), "{e}");
            }
        }
    }
});
