//! `cargo xtask fuzz glob`: see `hostscope_agent::fuzzing::glob`.
#![no_main]

fn reference(pattern: &str, name: &str) -> Option<bool> {
    glob::Pattern::new(pattern).ok().map(|p| p.matches(name))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| hostscope_agent::fuzzing::glob(data, reference));
