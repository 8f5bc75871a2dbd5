//! `cargo xtask fuzz bsd_decoders`: see `hostscope_agent::fuzzing::bsd_decoders`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostscope_agent::fuzzing::bsd_decoders(data));
