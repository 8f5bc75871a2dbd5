//! The `hostscope-agent` program, built in this package so that the
//! end-to-end tests get it as `CARGO_BIN_EXE_hostscope-test-agent` and never
//! run cargo themselves. It is the agent's own `main`
//! ([`hostscope_agent::cli::main`]); cargo forbids a second binary named
//! `hostscope-agent` in the workspace, hence the name.

fn main() -> std::process::ExitCode {
    hostscope_agent::cli::main()
}
