//! The integration tests: one binary, a module per area. Each test starts the
//! real server on 127.0.0.1 port 0 with a fresh root.

mod common;

mod accounts;
mod admin_logs;
mod ban;
mod clients;
mod deploy;
mod features;
mod fs_hostile;
mod hardening;
mod hash;
mod hook;
mod listings;
mod prelogin;
mod protocol;
mod proxy;
mod sandbox;
mod security;
mod soak;
mod startup;
#[cfg(feature = "tls")]
mod tls;
mod uploads;
