//! `cargo xtask fleet-sim`: real agents on 127.0.0.1 and an inventory
//! file for them, from hostscope-fleet-sim.

use anyhow::Result;

use crate::{cargo, run, target_dir};

pub fn fleet_sim(args: &[String]) -> Result<()> {
    let target = target_dir()?;
    // The CLI beside the simulator, so that the command it suggests runs.
    run(cargo().args([
        "build",
        "--release",
        "-j2",
        "-p",
        "hostscope-cli",
        "--bin",
        "hostscope",
    ]))?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "-j2",
        "-p",
        "hostscope-integration",
        "--bin",
        "hostscope-fleet-sim",
        "--",
    ]);
    cmd.args(args);
    let given = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !given("--dir") && !args.iter().any(|a| a == "handshake-floor") {
        cmd.arg("--dir").arg(target.join("fleet-sim"));
    }
    run(&mut cmd)
}
