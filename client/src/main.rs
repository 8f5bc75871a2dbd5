//! `hostscope`: ask hostscope agents, one or a fleet, about their hosts'
//! processes and network interfaces, and make the fleet's certificates.
//! Everything lives in [`hostscope_client::cli`].

fn main() -> std::process::ExitCode {
    hostscope_client::cli::main()
}
