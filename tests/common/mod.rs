//! Test support: start the real binary on a loopback port with a fresh root,
//! speak FTP to it, and run external clients with a time limit.
#![allow(dead_code)]

use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_minftpd");
/// Every socket read and every wait in the tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer may take to close a connection it must close: short, so
/// that a server that keeps it open fails fast instead of after `TIMEOUT`.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

mod files;
mod ftp;
mod server;
mod tools;

pub use files::*;
pub use ftp::*;
pub use server::*;
pub use tools::*;
