//! `cargo xtask dist` and `cargo xtask deb`: release binaries, and the files
//! generated from them that packages install (shell completions and man
//! pages), then the Debian package.
//!
//! The binaries generate their own completions and man pages (`hostscope
//! completions SHELL`, `hostscope manpages DIR`, the same for
//! `hostscope-agent`), so what is installed always matches the binary
//! installed beside it, and this task needs no dependency on either crate.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::{cargo, run, target_dir};

/// The two binaries and the shells whose completions are packaged: file
/// names as bash-completion, zsh and fish look for them.
const BINARIES: [&str; 2] = ["hostscope", "hostscope-agent"];
const SHELLS: [(&str, &str, &str); 3] = [
    ("bash", "", ".bash"),
    ("zsh", "_", ""),
    ("fish", "", ".fish"),
];

/// Builds both binaries in release and writes `target/dist/completions/*`
/// and `target/dist/man/*.1.gz`. Returns the dist directory.
pub fn dist() -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "hostscope-agent",
        "-p",
        "hostscope-cli",
    ]))?;
    let target = target_dir()?;
    let dist = target.join("dist");
    let completions = dist.join("completions");
    let man = dist.join("man");
    for dir in [&completions, &man] {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("clearing {}", dir.display()));
            }
            _ => {}
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for binary in BINARIES {
        let exe = target.join("release").join(binary);
        for (shell, prefix, suffix) in SHELLS {
            let output = Command::new(&exe)
                .args(["completions", shell])
                .output()
                .with_context(|| format!("running {}", exe.display()))?;
            if !output.status.success() {
                bail!(
                    "{binary} completions {shell} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let file = completions.join(format!("{prefix}{binary}{suffix}"));
            fs::write(&file, &output.stdout)
                .with_context(|| format!("writing {}", file.display()))?;
        }
        run(Command::new(&exe).arg("manpages").arg(&man))?;
    }
    // Debian installs man pages compressed; -n leaves out the name and
    // time stamp so that the same page always gives the same bytes.
    let mut gzip = Command::new("gzip");
    gzip.args(["-9", "-n", "-f"]);
    for entry in fs::read_dir(&man).with_context(|| format!("reading {}", man.display()))? {
        gzip.arg(entry?.path());
    }
    run(&mut gzip)?;
    eprintln!("completions and man pages in {}", dist.display());
    Ok(dist)
}

/// [`dist`], then the Debian package `hostscope` (cargo-deb, metadata in
/// agent/Cargo.toml) into target/dist.
pub fn deb() -> Result<()> {
    let have_cargo_deb = cargo()
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !have_cargo_deb {
        bail!("cargo-deb is not installed: cargo install --locked cargo-deb");
    }
    let dist = dist()?;
    run(cargo()
        .args(["deb", "-p", "hostscope-agent", "--no-build", "--output"])
        .arg(&dist))?;
    Ok(())
}
