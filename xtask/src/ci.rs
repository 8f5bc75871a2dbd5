//! `cargo xtask ci`, the checks CI runs, and `cargo xtask install-hooks`,
//! a git pre-commit hook that runs the quick ones before each commit.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, root, run};

pub fn ci() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "-j2",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "-j2"]))
}

pub fn install_hooks() -> Result<()> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .current_dir(root())
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "not a git checkout: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hooks = root().join(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::create_dir_all(&hooks)?;
    let hook = hooks.join("pre-commit");
    std::fs::write(
        &hook,
        "#!/bin/sh\n# Installed by `cargo xtask install-hooks`.\nset -e\n\
         cargo fmt --all --check\n\
         cargo clippy --workspace --all-targets -j2 --quiet -- -D warnings\n",
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    }
    println!("installed {}", hook.display());
    Ok(())
}
