//! psutil itself, as the oracle of the system figures: a Python virtual
//! environment with a pinned psutil, made once in the target directory, and
//! a runner for snippets that print JSON.
//!
//! The environment is built in a directory of its own and renamed into
//! place, so that test binaries running side by side never see half of
//! one: the first rename wins and the others discard theirs.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

/// The psutil release the figures are compared with.
pub const PSUTIL_VERSION: &str = "7.2.2";

/// The target directory this binary was built into: test and bench
/// binaries live in `<target>/<profile>/deps/`.
pub fn target_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not inside a target directory", exe.display()))
}

/// The real interpreter behind `python3`: pyenv's shim adds 50-150 ms to
/// every start, so the environment is made from what the shim runs.
fn base_python() -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("python3 failed: {}", out.status));
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if path.is_empty() {
        return Err("python3 did not name its executable".to_owned());
    }
    Ok(PathBuf::from(path))
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The psutil version importable by `python`, if any.
fn installed_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import psutil; print(psutil.__version__)"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn make_venv() -> Result<PathBuf, String> {
    let target = target_dir()?;
    let venv = target.join("psutil-venv");
    let python = venv.join("bin/python");
    match installed_version(&python) {
        Some(v) if v == PSUTIL_VERSION => return Ok(python),
        Some(v) => {
            return Err(format!(
                "{} holds psutil {v}, not {PSUTIL_VERSION}: remove it to rebuild it",
                venv.display()
            ));
        }
        None if venv.exists() => {
            return Err(format!(
                "{} exists but cannot import psutil: remove it to rebuild it",
                venv.display()
            ));
        }
        None => {}
    }
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let building = target.join(format!("psutil-venv.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let base = base_python()?;
    run_checked(
        Command::new(&base).arg("-m").arg("venv").arg(&building),
        &format!("{} -m venv {}", base.display(), building.display()),
    )?;
    let built = building.join("bin/python");
    let spec = format!("psutil=={PSUTIL_VERSION}");
    let installed = run_checked(
        Command::new(&built).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &spec,
        ]),
        &format!("pip install {spec}"),
    );
    if let Err(e) = installed {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    // Another binary may have finished first: then keep its environment.
    if std::fs::rename(&building, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    match installed_version(&python) {
        Some(v) if v == PSUTIL_VERSION => Ok(python),
        other => Err(format!(
            "{} has psutil {other:?} after installing {PSUTIL_VERSION}",
            venv.display()
        )),
    }
}

/// The interpreter of the psutil environment, made on first use. Panics
/// with the reason when it cannot be made: the comparisons with psutil
/// are the point of the tests that ask for it, and a machine without
/// Python, pip or PyPI must not pass them silently.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(make_venv) {
        Ok(path) => path.clone(),
        Err(e) => panic!(
            "cannot make the psutil {PSUTIL_VERSION} environment the system figures are \
             compared with (needs python3 with venv and pip, and PyPI): {e}"
        ),
    }
}

/// Runs `script` with psutil's interpreter and parses what it prints as
/// JSON. Panics with Python's own words if it fails.
pub fn run_json(script: &str) -> serde_json::Value {
    let python = python();
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "psutil snippet failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "psutil snippet printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A Python snippet that prints, as one JSON object, every system figure
/// psutil gives on this OS under psutil's own names: `cpu_times`,
/// `cpu_times_percpu`, `cpu_stats`, `cpu_count`, `cpu_count_physical`,
/// `cpu_freq`, `cpu_freq_percpu`, `loadavg`, `virtual_memory`,
/// `swap_memory`, `partitions`, `partitions_all`, `disk_usage` (by
/// mountpoint, for `partitions`), `disk_io` and `disk_io_perdisk`,
/// `users`, `boot_time`, `temperatures`, `fans`, `battery`.
pub const SYSTEM_SNIPPET: &str = r#"
import json, psutil

def nt(x):
    return None if x is None else x._asdict()

out = {}
out["cpu_times"] = nt(psutil.cpu_times())
out["cpu_times_percpu"] = [nt(t) for t in psutil.cpu_times(percpu=True)]
out["cpu_stats"] = nt(psutil.cpu_stats())
out["cpu_count"] = psutil.cpu_count()
out["cpu_count_physical"] = psutil.cpu_count(logical=False)
out["cpu_freq"] = nt(psutil.cpu_freq())
out["cpu_freq_percpu"] = [nt(f) for f in psutil.cpu_freq(percpu=True)]
out["loadavg"] = list(psutil.getloadavg())
out["virtual_memory"] = nt(psutil.virtual_memory())
out["swap_memory"] = nt(psutil.swap_memory())
out["partitions"] = [nt(p) for p in psutil.disk_partitions(all=False)]
out["partitions_all"] = [nt(p) for p in psutil.disk_partitions(all=True)]
usage = {}
for p in psutil.disk_partitions(all=False):
    try:
        usage[p.mountpoint] = nt(psutil.disk_usage(p.mountpoint))
    except OSError as e:
        usage[p.mountpoint] = None
out["disk_usage"] = usage
out["disk_io"] = nt(psutil.disk_io_counters())
out["disk_io_perdisk"] = {k: nt(v) for k, v in (psutil.disk_io_counters(perdisk=True) or {}).items()}
out["users"] = [nt(u) for u in psutil.users()]
out["boot_time"] = psutil.boot_time()
temps = psutil.sensors_temperatures() if hasattr(psutil, "sensors_temperatures") else {}
out["temperatures"] = {k: [nt(t) for t in v] for k, v in temps.items()}
fans = psutil.sensors_fans() if hasattr(psutil, "sensors_fans") else {}
out["fans"] = {k: [nt(f) for f in v] for k, v in fans.items()}
battery = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
out["battery"] = None if battery is None else {
    "percent": battery.percent,
    "secsleft": battery.secsleft if isinstance(battery.secsleft, (int, float)) and battery.secsleft >= 0 else None,
    "power_plugged": battery.power_plugged,
}
print(json.dumps(out))
"#;

/// The system figures as psutil sees them now (see [`SYSTEM_SNIPPET`]).
pub fn system() -> serde_json::Value {
    run_json(SYSTEM_SNIPPET)
}

/// psutil's `Process(pid).cpu_percent(interval)` and `memory_percent()`,
/// as `{"cpu_percent": .., "memory_percent": ..}`.
pub fn process_percent(pid: u32, interval_s: f64) -> serde_json::Value {
    run_json(&format!(
        "import json, psutil\n\
         p = psutil.Process({pid})\n\
         c = p.cpu_percent(interval={interval_s})\n\
         print(json.dumps({{\"cpu_percent\": c, \"memory_percent\": p.memory_percent()}}))\n"
    ))
}

/// A Python snippet that times psutil's in-process calls for the figures
/// of a full GetSystem (the measured ones aside) and ListDisks over
/// `iterations` rounds, and prints `{"ns_per_round": ..}`.
pub fn bench_snippet(iterations: u32) -> String {
    format!(
        r#"
import json, time, psutil

def once():
    psutil.cpu_times()
    psutil.cpu_times(percpu=True)
    psutil.cpu_stats()
    psutil.cpu_freq()
    psutil.cpu_freq(percpu=True)
    psutil.cpu_count()
    psutil.cpu_count(logical=False)
    psutil.getloadavg()
    psutil.virtual_memory()
    psutil.swap_memory()
    psutil.users()
    psutil.boot_time()
    psutil.sensors_temperatures()
    psutil.sensors_fans()
    psutil.sensors_battery()
    for p in psutil.disk_partitions():
        try:
            psutil.disk_usage(p.mountpoint)
        except OSError:
            pass
    psutil.disk_io_counters(perdisk=True)

for _ in range(20):
    once()
n = {iterations}
start = time.perf_counter()
for _ in range(n):
    once()
elapsed = time.perf_counter() - start
print(json.dumps({{"ns_per_round": elapsed / n * 1e9}}))
"#
    )
}

/// Writes `ns` as the median of `group/<id>` where criterion writes its
/// estimates (CRITERION_HOME, else the target directory's `criterion`), in
/// criterion's own layout, so that xtask reads figures timed outside
/// criterion (psutil's, inside Python) the same way.
pub fn write_estimate(group: &str, id: &str, ns: f64) {
    let home = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().expect("target directory").join("criterion"));
    let dir = home.join(group).join(id).join("new");
    std::fs::create_dir_all(&dir).expect("criterion directory");
    let json = serde_json::json!({ "median": { "point_estimate": ns } });
    std::fs::write(dir.join("estimates.json"), json.to_string()).expect("estimates");
    println!("{group}/{id}: {:.3} ms", ns / 1e6);
}
