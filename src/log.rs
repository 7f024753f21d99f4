//! Logger set-up: lines to standard error, or nowhere when standard error is a
//! socket (inetd hands us the client connection as fds 0, 1 and 2, and a log
//! line there would corrupt the control channel).

use crate::listing::civil_from_epoch;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Stderr,
    Nowhere,
}

/// Installs the global logger. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: log::LevelFilter, destination: Destination) {
    if destination == Destination::Nowhere {
        log::set_max_level(log::LevelFilter::Off);
        return;
    }
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(|buf, record| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (y, mo, d, h, mi, s) = civil_from_epoch(secs);
        writeln!(
            buf,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z minftpd[{}] {}: {}",
            std::process::id(),
            record.level(),
            record.args()
        )
    });
    builder.target(env_logger::Target::Stderr);
    let _ = builder.try_init();
}
