//! `hostscope-agent`: serves this host's processes and network interfaces.
//! Everything lives in [`hostscope_agent::cli`], so that the end-to-end
//! tests build the same program as a binary of their own crate.

#![deny(unsafe_code)]

fn main() -> std::process::ExitCode {
    hostscope_agent::cli::main()
}
