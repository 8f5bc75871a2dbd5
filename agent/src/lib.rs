//! The hostscope agent: reads what the kernel knows about processes and
//! network interfaces, and serves it over gRPC with mutual TLS.

pub mod backend;
