//! `cargo xtask fuzz proc_parsers`: see `hostscope_agent::fuzzing::proc_parsers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostscope_agent::fuzzing::proc_parsers(data));
