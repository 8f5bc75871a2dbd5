//! The committed fuzz corpora (fuzz/corpus/TARGET), replayed through the
//! same functions the fuzz targets call: every input a fuzzer kept,
//! crashes it once found included, stays tested on stable Rust, without
//! libFuzzer. `cargo xtask fuzz` finds new ones.

use std::{fs, path::PathBuf};

/// What a fuzz target calls with each input.
type Harness = fn(&[u8]);

/// The glob target's harness with its reference matcher, as
/// fuzz/fuzz_targets/glob.rs passes it.
fn glob(data: &[u8]) {
    hostscope_agent::fuzzing::glob(data, |pattern, name| {
        glob::Pattern::new(pattern).ok().map(|p| p.matches(name))
    });
}

/// Every fuzz target and the function it calls.
const TARGETS: [(&str, Harness); 6] = [
    ("service", hostscope_agent::fuzzing::service),
    ("glob", glob),
    ("proc_parsers", hostscope_agent::fuzzing::proc_parsers),
    ("bsd_decoders", hostscope_agent::fuzzing::bsd_decoders),
    ("inventory", hostscope_client::fuzzing::inventory),
    ("profile", hostscope_cli::fuzzing::profile),
];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs `target`'s function over each file of its corpus; a panic names
/// the file.
fn replay(target: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in files {
        let data = fs::read(&file).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} panicked on {}", target, file.display());
    }
}

#[test]
fn service_corpus_runs_clean() {
    replay("service");
}

#[test]
fn glob_corpus_runs_clean() {
    replay("glob");
}

#[test]
fn proc_parsers_corpus_runs_clean() {
    replay("proc_parsers");
}

#[test]
fn bsd_decoders_corpus_runs_clean() {
    replay("bsd_decoders");
}

#[test]
fn inventory_corpus_runs_clean() {
    replay("inventory");
}

#[test]
fn profile_corpus_runs_clean() {
    replay("profile");
}

/// A target added to fuzz/ without a line here would go unreplayed.
#[test]
fn every_fuzz_target_is_replayed() {
    let mut sources: Vec<String> = fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .map(|entry| {
            let path = entry.expect("an entry").path();
            path.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    sources.sort();
    let mut replayed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    replayed.sort();
    assert_eq!(sources, replayed);
}
