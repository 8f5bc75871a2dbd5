//! `cargo xtask fuzz profile`: see `hostscope_cli::fuzzing::profile`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostscope_cli::fuzzing::profile(data));
