//! `hostscope`: ask a hostscope agent about its host's processes and
//! network interfaces, and make the fleet's certificates.
//!
//! Errors print their whole chain once, to stderr, and exit 1; usage errors
//! exit 2 (clap's convention); stdout going away (`| head`) ends quietly.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let matches = cli::args::Cli::command().get_matches();
    let parsed = match cli::args::Cli::from_arg_matches(&matches) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    };
    let typed_tls_flags = cli::typed_tls_flags(&matches);
    // One agent at a time: a single-threaded runtime is all it takes.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(parsed, typed_tls_flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
