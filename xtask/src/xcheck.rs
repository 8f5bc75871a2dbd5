//! `cargo xtask xcheck [--target T]...`: lints the workspace for the other
//! operating systems the agent supports, on this Linux machine.
//!
//! The `xcheck` script beside the workspace (`../shared/tools/xcheck`, or
//! `$XCHECK`) builds each target's standard library from source with the
//! nightly toolchain, so nothing but Rust is needed for the BSDs: ring's
//! C code compiles with the host's gcc (named explicitly for NetBSD, where
//! cc-rs would look for a cross compiler). The Apple targets need more: ring's
//! build script passes `-arch` and `-mmacosx-version-min`, which only
//! clang takes, and cc-rs wants an SDK. Clang with `-ffreestanding` and
//! ring's `RING_CORE_NOSTDLIBINC` needs no system headers but
//! `TargetConditionals.h`, which a stub SDK directory provides. SQLite's C,
//! which does need libc headers, is not compiled at all. Nothing is
//! linked: this proves the code compiles and lints clean there, not that
//! it runs.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::{root, run};

/// Every target checked, in the order they run.
pub(crate) const TARGETS: [&str; 5] = [
    "x86_64-unknown-freebsd",
    "x86_64-unknown-openbsd",
    "x86_64-unknown-netbsd",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
];

/// The lints every target runs: the whole workspace but the integration
/// test crate, which drives real agents on Linux with Linux-only calls
/// (`prctl`, `waitid`) and is linted on Linux only.
const CHECKS: [&[&str]; 1] = [&[
    "clippy",
    "--workspace",
    "--all-targets",
    "--exclude",
    "hostscope-integration",
    "-j2",
    "--",
    "-D",
    "warnings",
]];

/// What `TargetConditionals.h` answers for macOS, all ring needs of it.
const TARGET_CONDITIONALS: &str = "\
/* A stub of the Apple SDK header: macOS, not iOS. Written by cargo xtask xcheck. */
#ifndef TARGET_CONDITIONALS_STUB
#define TARGET_CONDITIONALS_STUB
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_VISION 0
#define TARGET_OS_SIMULATOR 0
#endif
";

/// Runs the checks for `--target T` (repeatable) or every target.
pub(crate) fn xcheck(args: &[String]) -> Result<()> {
    let targets = parse_targets(args)?;
    let script = script()?;
    let target_dir = target_dir().join("xcheck");
    ensure_nightly()?;
    let apple = targets.iter().any(|t| t.contains("apple"));
    let sdk = if apple {
        ensure_clang()?;
        Some(stub_sdk(&target_dir)?)
    } else {
        None
    };
    let started = Instant::now();
    for target in &targets {
        let one = Instant::now();
        for check in CHECKS {
            let mut cmd = Command::new(&script);
            cmd.current_dir(root())
                .arg(target)
                .args(check)
                .env("CARGO_TARGET_DIR", &target_dir)
                // The bundled SQLite is C that needs the target's libc
                // headers, which only that OS has. Nothing is linked here,
                // so libsqlite3-sys may take its pregenerated bindings and
                // compile no C (the "system library" path, whose link flags
                // are never used).
                .env("LIBSQLITE3_SYS_USE_PKG_CONFIG", "1");
            if let (true, Some(sdk)) = (target.contains("apple"), sdk.as_deref()) {
                apple_env(&mut cmd, target, sdk);
            }
            if target.contains("netbsd") {
                // cc-rs looks for a `x86_64--netbsd-gcc` cross compiler; the
                // host's compiles ring's C well enough to check against.
                let var = target.replace('-', "_");
                cmd.env(format!("CC_{var}"), "cc")
                    .env(format!("AR_{var}"), "ar");
            }
            run(&mut cmd)?;
        }
        eprintln!("xcheck: {target} clean in {:.0?}", one.elapsed());
    }
    eprintln!(
        "xcheck: {} target(s) clean in {:.0?}",
        targets.len(),
        started.elapsed()
    );
    Ok(())
}

fn parse_targets(args: &[String]) -> Result<Vec<String>> {
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let target = match arg.as_str() {
            "--target" => it.next().context("--target needs a target triple")?.clone(),
            other => match other.strip_prefix("--target=") {
                Some(t) => t.to_owned(),
                None => bail!("unknown argument {other:?}; usage: xcheck [--target T]..."),
            },
        };
        if !TARGETS.contains(&target.as_str()) {
            bail!("unknown target {target:?}; one of {}", TARGETS.join(", "));
        }
        targets.push(target);
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(targets)
}

/// The `xcheck` script: `$XCHECK`, else `../shared/tools/xcheck` from the
/// workspace.
fn script() -> Result<PathBuf> {
    let path = match env::var_os("XCHECK") {
        Some(path) => PathBuf::from(path),
        None => root().join("../shared/tools/xcheck"),
    };
    if !path.is_file() {
        bail!(
            "no xcheck script at {} (set XCHECK to its path)",
            path.display()
        );
    }
    Ok(path)
}

/// The workspace's target directory, `$CARGO_TARGET_DIR` where set.
fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        None => root().join("target"),
    }
}

/// Installs the nightly toolchain with clippy if rustup lacks it.
fn ensure_nightly() -> Result<()> {
    let ok = Command::new("cargo")
        .args(["+nightly", "clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "clippy",
        ]))?;
    }
    Ok(())
}

/// Installs Debian's clang and LLVM tools if `clang` or `llvm-ar` is
/// missing (as root; otherwise says what to install).
fn ensure_clang() -> Result<()> {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("clang") && have("llvm-ar") {
        return Ok(());
    }
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the Apple targets need clang and llvm-ar: apt-get install clang llvm");
    }
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "--no-install-recommends", "clang", "llvm"]);
    if run(&mut install).is_err() {
        run(Command::new("apt-get").arg("update"))?;
        run(&mut install)?;
    }
    Ok(())
}

/// Writes the stub SDK (its `usr/include/TargetConditionals.h`) under
/// `target_dir`; returns its root.
fn stub_sdk(target_dir: &Path) -> Result<PathBuf> {
    let sdk = target_dir.join("apple-sdk");
    let include = sdk.join("usr/include");
    fs::create_dir_all(&include).with_context(|| format!("creating {}", include.display()))?;
    let header = include.join("TargetConditionals.h");
    fs::write(&header, TARGET_CONDITIONALS)
        .with_context(|| format!("writing {}", header.display()))?;
    Ok(sdk)
}

/// The C toolchain settings cc-rs reads for `target`: clang, llvm-ar, the
/// stub SDK, and no libc headers.
fn apple_env(cmd: &mut Command, target: &str, sdk: &Path) {
    let var = target.replace('-', "_");
    cmd.env("SDKROOT", sdk)
        .env(format!("CC_{var}"), "clang")
        .env(format!("AR_{var}"), "llvm-ar")
        .env(
            format!("CFLAGS_{var}"),
            "-ffreestanding -DRING_CORE_NOSTDLIBINC=1",
        );
    eprintln!(
        "xcheck: {target} with clang, llvm-ar and the stub SDK at {}",
        sdk.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_chosen_or_all() {
        let all = parse_targets(&[]).expect("no arguments");
        assert_eq!(all, TARGETS);
        let args = [
            "--target",
            "x86_64-unknown-netbsd",
            "--target=aarch64-apple-darwin",
        ];
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(
            parse_targets(&args).expect("two targets"),
            ["x86_64-unknown-netbsd", "aarch64-apple-darwin"]
        );
        assert!(parse_targets(&["--target".to_owned()]).is_err());
        assert!(parse_targets(&["--target=x86_64-pc-windows-msvc".to_owned()]).is_err());
        assert!(parse_targets(&["--release".to_owned()]).is_err());
    }
}
