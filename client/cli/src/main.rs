//! `hostscope`: ask hostscope agents, one or a fleet, about their hosts'
//! processes and network interfaces, and make the fleet's certificates.
//! Everything lives in the [`hostscope_cli`] library, so that tests can run
//! the same command line in-process.

#![deny(unsafe_code)]

fn main() -> std::process::ExitCode {
    hostscope_cli::main()
}
