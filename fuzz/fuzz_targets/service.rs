//! `cargo xtask fuzz service`: see `hostscope_agent::fuzzing::service`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostscope_agent::fuzzing::service(data));
