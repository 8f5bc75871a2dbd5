//! `cargo xtask fuzz [--time SECS] [--update-corpus] [TARGET]...`: runs the
//! cargo-fuzz targets of `fuzz/` with libFuzzer, one after the other.
//!
//! Each target is a one-line call of a function in a `fuzzing` module of
//! the crates; the integration tests run the same functions over every
//! committed corpus file, so what a fuzzer once found stays tested
//! without nightly. A run starts from a copy of the committed corpus
//! (`fuzz/corpus/TARGET`) in cargo's target directory, so the committed
//! one changes only with `--update-corpus`, which minimises what the run
//! found into it (`cargo fuzz cmin`). Crashes land in
//! `fuzz/artifacts/TARGET`, and the command fails naming them.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{root, run};

/// Every fuzz target, in the order a run without names takes them.
pub(crate) const TARGETS: [&str; 6] = [
    "service",
    "glob",
    "proc_parsers",
    "bsd_decoders",
    "inventory",
    "profile",
];

/// Seconds each target runs when `--time` is not given.
const DEFAULT_SECS: u64 = 60;

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq)]
pub(crate) struct Args {
    /// Seconds per target.
    pub secs: u64,
    /// The targets, in order.
    pub targets: Vec<&'static str>,
    /// Minimise each run's corpus into `fuzz/corpus/TARGET`.
    pub update_corpus: bool,
}

/// Reads the arguments after `fuzz`.
pub(crate) fn parse(args: &[String]) -> Result<Args> {
    let mut secs = DEFAULT_SECS;
    let mut targets = Vec::new();
    let mut update_corpus = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => {
                let value = it.next().context("--time needs a number of seconds")?;
                secs =
                    value.parse().ok().filter(|s| *s > 0).with_context(|| {
                        format!("--time {value:?}: expected seconds, at least 1")
                    })?;
            }
            "--update-corpus" => update_corpus = true,
            name => {
                let target = TARGETS.into_iter().find(|t| *t == name).with_context(|| {
                    format!("no fuzz target {name:?}; there are {}", TARGETS.join(", "))
                })?;
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok(Args {
        secs,
        targets,
        update_corpus,
    })
}

/// Builds every target, then fuzzes each for `args.secs` seconds.
pub(crate) fn fuzz(args: &Args) -> Result<()> {
    ensure_cargo_fuzz()?;
    run(cargo_fuzz().arg("build"))?;
    let work = target_dir().join("fuzz").join("corpus");
    let mut crashed = Vec::new();
    for target in &args.targets {
        let committed = root().join("fuzz").join("corpus").join(target);
        let corpus = work.join(target);
        fresh_copy(&committed, &corpus)?;
        eprintln!("fuzzing {target} for {} s", args.secs);
        // New inputs go to the first directory: the copy.
        let status = cargo_fuzz()
            .args(["run", target])
            .arg(&corpus)
            .arg(&committed)
            .args([
                "--",
                &format!("-max_total_time={}", args.secs),
                // An input that takes 10 s is a hang, whatever the load.
                "-timeout=10",
                "-rss_limit_mb=4096",
                "-print_final_stats=1",
            ])
            .status()
            .context("starting cargo fuzz run")?;
        if !status.success() {
            crashed.push(*target);
            continue;
        }
        if args.update_corpus {
            run(cargo_fuzz().args(["cmin", target]).arg(&corpus))?;
            fresh_copy(&corpus, &committed)?;
            eprintln!(
                "{target}: {} corpus files in {}",
                fs::read_dir(&committed)?.count(),
                committed.display()
            );
        }
    }
    if !crashed.is_empty() {
        bail!(
            "fuzzing found crashes in {}: the inputs are in {}",
            crashed.join(", "),
            root().join("fuzz").join("artifacts").display()
        );
    }
    Ok(())
}

/// `cargo +nightly fuzz` in the workspace root, where cargo-fuzz finds
/// `fuzz/`. libFuzzer's instrumentation needs nightly.
///
/// Without the variables `cargo run` set for xtask itself: build scripts
/// that track them (ring's tracks `CARGO_PKG_NAME` and
/// `CARGO_MANIFEST_DIR`) would otherwise see them change between a run
/// from xtask and one from a shell, and rebuild half the tree each time.
fn cargo_fuzz() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(["+nightly", "fuzz"]).current_dir(root());
    for (name, _) in env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_run = matches!(
            name.as_ref(),
            "CARGO"
                | "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        ) || name.starts_with("CARGO_PKG_");
        if set_by_cargo_run {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

/// Installs the nightly toolchain and cargo-fuzz where they are missing.
fn ensure_cargo_fuzz() -> Result<()> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works(&["+nightly", "--version"]) {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    if !works(&["+nightly", "fuzz", "--version"]) {
        run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    }
    Ok(())
}

/// Replaces `to` with a copy of the files of `from` (none if it is
/// missing).
fn fresh_copy(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
            fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Cargo's target directory: CARGO_TARGET_DIR, or `target/`. The fuzz
/// crate is not in the workspace, so cargo-fuzz builds there too.
fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn every_target_for_a_minute_by_default() {
        let all = args("").unwrap();
        assert_eq!(all.secs, DEFAULT_SECS);
        assert_eq!(all.targets, TARGETS);
        assert!(!all.update_corpus);
    }

    #[test]
    fn targets_and_time_as_given() {
        let some = args("--time 300 profile service profile --update-corpus").unwrap();
        assert_eq!(
            some,
            Args {
                secs: 300,
                targets: vec!["profile", "service"],
                update_corpus: true,
            }
        );
        for bad in ["--time", "--time 0", "--time soon", "nosuch", "--jobs 2"] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_target_has_a_source_and_a_corpus() {
        let fuzz = root().join("fuzz");
        let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        for target in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target} is not in fuzz/Cargo.toml"
            );
            assert!(
                fuzz.join("fuzz_targets")
                    .join(format!("{target}.rs"))
                    .is_file()
            );
            assert!(
                fuzz.join("corpus").join(target).is_dir(),
                "{target} has no corpus"
            );
        }
    }
}
