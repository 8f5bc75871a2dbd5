//! The hostscope agent: reads what the kernel knows about processes and
//! network interfaces, and serves it over gRPC with mutual TLS.
//!
//! [`backend`] reads the kernel into plain Rust values; [`service`] turns
//! requests into backend calls and values into `hostscope.v1` messages;
//! [`server`] serves the service with mutual TLS, health and reflection;
//! [`config`] resolves flags and the TOML file; [`tls`] loads the
//! certificate files and reloads them while serving; [`health`] is the
//! plaintext loopback health endpoint for probes; [`cli`] is the
//! `hostscope-agent` program itself, which its binary only calls.

#![deny(unsafe_code)]

pub mod authz;
pub mod backend;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod server;
pub mod service;
pub mod tls;
