//! minftpd's modules. The binary (`main.rs`) is a thin layer over them; they
//! are a library so that the fuzz targets can reach the pure parsers.
#![deny(unsafe_code)]

pub mod activation;
pub mod auth;
pub mod ban;
pub mod command;
pub mod config;
pub mod daemon;
pub mod data;
pub mod digest;
pub mod entries;
pub mod fs;
pub mod glob;
pub mod hook;
pub mod listing;
pub mod log;
pub mod privilege;
pub mod proxy;
pub mod relay;
pub mod reply;
pub mod resolve;
pub mod sandbox;
pub mod seccomp;
pub mod server;
pub mod session;
pub mod setup;
#[allow(unsafe_code)]
pub mod sys;
#[cfg(feature = "tls")]
pub mod tls;
