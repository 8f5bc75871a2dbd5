//! Query hostscope agents: psutil's questions (which processes, in what
//! state, using what; which interfaces, with which addresses) asked of a
//! remote host over gRPC with mutual TLS.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hostscope_client::Error> {
//! use std::path::Path;
//! use hostscope_client::{Client, TlsConfig, proto};
//!
//! let tls = TlsConfig::from_files(
//!     Path::new("pki/ca.pem"),
//!     Some(Path::new("pki/alice.pem")),
//!     Some(Path::new("pki/alice-key.pem")),
//! )?;
//! let client = Client::connect("web1", Some(tls)).await?;
//! match client.process(1234, &[]).await?.exe() {
//!     Ok(exe) => println!("{exe}"),
//!     Err(e) if e.is_not_found() => println!("gone: {e}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! Errors follow psutil: [`Error::NoSuchProcess`], [`Error::ZombieProcess`]
//! (a refinement of it, see [`Error::is_not_found`]), [`Error::AccessDenied`];
//! transport and TLS failures say what failed in plain words. [`pki`] makes a
//! fleet CA and its certificates; [`sweep`] plans and carries out guarded
//! zombie sweeps.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod client;
mod error;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod pki;
mod probe;
mod process;
pub mod sweep;
mod tls;

pub use hostscope_proto as proto;

pub use client::{Client, ConnectionStream, Connections, EventStream, ProcessStream};
pub use error::{Error, Peer, RejectedBy, StatusCode, TlsAlert};
pub use process::Process;
pub use tls::TlsConfig;

/// The port agents listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7443;
