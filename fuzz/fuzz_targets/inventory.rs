//! `cargo xtask fuzz inventory`: see `hostscope_client::fuzzing::inventory`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostscope_client::fuzzing::inventory(data));
