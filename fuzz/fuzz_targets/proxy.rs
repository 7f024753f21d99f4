//! The PROXY protocol parser: any bytes a balancer (or anyone) sends give a header, a refusal
//! or a request for more, never a panic; "more" is never asked past MAX_HEADER bytes, a header
//! never claims bytes it was not given, and every shorter prefix of a header asks for more.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minftpd::proxy::{self, Error, MAX_HEADER};

fuzz_target!(|data: &[u8]| {
    match proxy::parse(data) {
        Ok(parsed) => {
            assert!(parsed.len <= data.len() && parsed.len <= MAX_HEADER);
            let exact = &data[..parsed.len];
            assert_eq!(proxy::parse(exact), Ok(parsed));
            for n in 0..parsed.len {
                assert_eq!(proxy::parse(&exact[..n]), Err(Error::Incomplete));
            }
        }
        Err(Error::Incomplete) => assert!(data.len() < MAX_HEADER),
        Err(Error::Invalid(why)) => assert!(!why.is_empty()),
    }
});
