//! The `hostscope` command line, built in this package so that the
//! end-to-end tests can run it as a real process (`CARGO_BIN_EXE_hostscope-cli`)
//! and send it signals.

fn main() -> std::process::ExitCode {
    hostscope_cli::main()
}
