//! The host's figures on Linux: procfs and sysfs under the backend's
//! roots, the utmp file, and statvfs(3), read as psutil reads them
//! (`psutil/_pslinux.py`). The parsing lives in [`crate::backend::parse`].

use std::{
    collections::BTreeSet,
    io,
    path::{Path, PathBuf},
};

use super::{Linux, process::io_error, read, sys};
use crate::backend::{
    Error,
    parse::{
        ParseError,
        cgroup::{
            ProcCgroups, lists_controller, parse_cfs_quota, parse_count, parse_cpu_max,
            parse_cpu_stat_usage, parse_max, parse_proc_cgroups, parse_v1_limit,
        },
        cpu::{
            count_distinct_lists, parse_cpu_list_count, parse_cpu_stats, parse_cpu_times,
            parse_cpuinfo_cores, parse_cpuinfo_mhz, parse_loadavg, parse_sysfs_u64,
        },
        diskstats::{parse_block_stat, parse_diskstats, sys_block_name},
        meminfo::{needs_zoneinfo, parse_meminfo, parse_zoneinfo_low, swap_memory, virtual_memory},
        mounts::{
            MountInfo, parse_filesystems, parse_mountinfo, parse_mounts, partition_name,
            select_partitions, uevent_devname,
        },
        sensors::{BatteryFiles, battery, parse_int, parse_millis},
        utmp::parse_utmp,
    },
    system::{
        Battery, CgroupInfo, CpuCount, CpuFreq, CpuFreqSet, DiskIo, DiskUsage, Fan, Partition,
        SystemField, SystemFields, SystemInfo, Temperature, User,
    },
};

/// The utmp file psutil reads through getutxent(3).
pub(super) const UTMP: &str = "/var/run/utmp";

// === Reading files ===

/// The file's bytes, `None` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// The file at `path` parsed with `parse`, errors naming the file.
fn parsed<T>(path: &Path, parse: impl FnOnce(&[u8]) -> Result<T, ParseError>) -> Result<T, Error> {
    parse(&read(path)?).map_err(|e| e.at(path.to_owned()))
}

/// The file at `path` parsed with `parse`, `None` when it does not exist.
fn parsed_opt<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
) -> Result<Option<T>, Error> {
    read_opt(path)?
        .map(|bytes| parse(&bytes).map_err(|e| e.at(path.to_owned())))
        .transpose()
}

/// A trimmed text file, `None` when it cannot be read.
fn text(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

/// `field` parsed from `bytes` (one read shared by several figures) into
/// `info`, or its error recorded there.
fn figure<T>(
    info: &mut SystemInfo,
    fields: SystemFields,
    field: SystemField,
    bytes: &Result<Vec<u8>, Error>,
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
) -> Option<T> {
    if !fields.contains(field) {
        return None;
    }
    let result = match bytes {
        Ok(bytes) => parse(bytes).map_err(|e| e.at(path.to_owned())),
        Err(e) => {
            info.fail(field, e);
            return None;
        }
    };
    info.read(fields, field, || result)
}

/// The names in `dir` that start with `prefix` and go on with a number,
/// sorted by that number ("cpu0", "cpu1", ..., "cpu10"); empty when `dir`
/// cannot be listed.
fn numbered_entries(dir: &Path, prefix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, String)> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| Some((name.strip_prefix(prefix)?.parse().ok()?, name)))
        .collect();
    out.sort();
    out.into_iter().map(|(_, name)| name).collect()
}

/// The names in `dir`, sorted; empty when it cannot be listed.
fn entries(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

// === The figures ===

/// Every figure of `fields` that the backend reads (the measured ones are
/// the service's).
pub(super) fn system(linux: &Linux, fields: SystemFields, cgroup: Option<&str>) -> SystemInfo {
    use SystemField as F;
    let mut info = SystemInfo::default();
    let procfs = &linux.procfs;

    // /proc/stat serves two figures, /proc/meminfo two: each is read once.
    let stat_path = procfs.join("stat");
    if fields.any(&[F::CpuTimes, F::CpuStats]) {
        let stat = read(&stat_path);
        let clk_tck = linux.consts.clk_tck;
        info.cpu_times = figure(&mut info, fields, F::CpuTimes, &stat, &stat_path, |b| {
            parse_cpu_times(b, clk_tck)
        });
        info.cpu_stats = figure(
            &mut info,
            fields,
            F::CpuStats,
            &stat,
            &stat_path,
            parse_cpu_stats,
        );
    }
    info.cpu_freq = info.read(fields, F::CpuFreq, || cpu_freq(linux));
    info.cpu_count = info.read(fields, F::CpuCount, || cpu_count(linux));
    info.loadavg = info.read(fields, F::Loadavg, || {
        parsed(&procfs.join("loadavg"), parse_loadavg)
    });
    let meminfo_path = procfs.join("meminfo");
    if fields.any(&[F::VirtualMemory, F::SwapMemory]) {
        let meminfo = read(&meminfo_path);
        let page_size = linux.consts.page_size;
        info.virtual_memory = figure(
            &mut info,
            fields,
            F::VirtualMemory,
            &meminfo,
            &meminfo_path,
            |b| {
                let mem = parse_meminfo(b)?;
                // Kernels before 3.14 have no MemAvailable: psutil estimates
                // it from the zones' low watermarks.
                let low = needs_zoneinfo(&mem)
                    .then(|| std::fs::read(procfs.join("zoneinfo")).ok())
                    .flatten()
                    .and_then(|z| parse_zoneinfo_low(&z).ok())
                    .map(|pages| pages.saturating_mul(page_size));
                virtual_memory(&mem, low)
            },
        );
        // psutil goes on without sin and sout when vmstat is unreadable.
        let vmstat = fields
            .contains(F::SwapMemory)
            .then(|| std::fs::read(procfs.join("vmstat")).ok())
            .flatten();
        info.swap_memory = figure(
            &mut info,
            fields,
            F::SwapMemory,
            &meminfo,
            &meminfo_path,
            |b| swap_memory(&parse_meminfo(b)?, vmstat.as_deref()),
        );
    }
    info.users = info.read(fields, F::Users, || users(&linux.utmp));
    info.boot_time = info.read(fields, F::BootTime, || Ok(linux.consts.boot_time));
    info.temperatures = info.read(fields, F::SensorsTemperatures, || {
        Ok(temperatures(&linux.sysfs))
    });
    info.fans = info.read(fields, F::SensorsFans, || Ok(fans(&linux.sysfs)));
    info.battery = info.read(fields, F::SensorsBattery, || Ok(battery_of(&linux.sysfs)));
    info.cgroup = info.read(fields, F::Cgroup, || read_cgroup(linux, cgroup));
    // The service computes these; a backend that is asked says so.
    for field in [F::CpuPercent, F::CpuTimesPercent] {
        if fields.contains(field) {
            info.fail(
                field,
                &Error::Unsupported {
                    what: "a measured figure (the service measures it from CPU times) from the backend",
                },
            );
        }
    }
    info
}

/// psutil's `cpu_freq(percpu=True)`: each cpufreq policy (or each CPU's
/// `cpufreq` directory) in kHz, the current value taken from
/// `/proc/cpuinfo` when it names as many CPUs (psutil#1851); without
/// cpufreq, the `cpu MHz` lines with no min or max.
fn cpu_freq(linux: &Linux) -> Result<CpuFreqSet, Error> {
    let cpu_dir = linux.sysfs.join("devices/system/cpu");
    let cpuinfo_path = linux.procfs.join("cpuinfo");
    let mut dirs: Vec<PathBuf> = numbered_entries(&cpu_dir.join("cpufreq"), "policy")
        .into_iter()
        .map(|p| cpu_dir.join("cpufreq").join(p))
        .collect();
    if dirs.is_empty() {
        dirs = numbered_entries(&cpu_dir, "cpu")
            .into_iter()
            .map(|c| cpu_dir.join(c).join("cpufreq"))
            .filter(|d| d.is_dir())
            .collect();
    }
    let no_frequency = Error::Unsupported {
        what: "CPU frequencies (no cpufreq in sysfs, no cpu MHz in /proc/cpuinfo)",
    };
    if dirs.is_empty() {
        let mhz = parsed(&cpuinfo_path, parse_cpuinfo_mhz)?;
        let per_cpu = mhz
            .into_iter()
            .map(|current| CpuFreq {
                current,
                min: None,
                max: None,
            })
            .collect();
        return CpuFreqSet::from_per_cpu(per_cpu).ok_or(no_frequency);
    }
    let cpuinfo_mhz = std::fs::read(&cpuinfo_path)
        .ok()
        .and_then(|b| parse_cpuinfo_mhz(&b).ok())
        .unwrap_or_default();
    let khz = |dir: &Path, names: &[&str]| -> Result<Option<f64>, Error> {
        for name in names {
            let path = dir.join(name);
            if let Some(v) = parsed_opt(&path, |b| parse_sysfs_u64(b, name))? {
                return Ok(Some(v as f64 / 1000.0));
            }
        }
        Ok(None)
    };
    let mut per_cpu = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        let current = if cpuinfo_mhz.len() == dirs.len() {
            Some(cpuinfo_mhz[i])
        } else {
            khz(dir, &["scaling_cur_freq", "cpuinfo_cur_freq"])?
        };
        let Some(current) = current else {
            // An offline CPU reads as zeros, as psutil gives it.
            let online = text(&cpu_dir.join(format!("cpu{i}/online")));
            if online.as_deref() == Some("0") {
                per_cpu.push(CpuFreq {
                    current: 0.0,
                    min: Some(0.0),
                    max: Some(0.0),
                });
                continue;
            }
            return Err(Error::Parse {
                path: dir.clone(),
                line: 0,
                message: "neither scaling_cur_freq nor cpuinfo_cur_freq".to_owned(),
            });
        };
        per_cpu.push(CpuFreq {
            current,
            min: khz(dir, &["scaling_min_freq", "cpuinfo_min_freq"])?,
            max: khz(dir, &["scaling_max_freq", "cpuinfo_max_freq"])?,
        });
    }
    CpuFreqSet::from_per_cpu(per_cpu).ok_or(no_frequency)
}

/// Online CPUs (what glibc's `sysconf(_SC_NPROCESSORS_ONLN)` reads from
/// sysfs, so a fixture tree answers too) and psutil's physical cores.
fn cpu_count(linux: &Linux) -> Result<CpuCount, Error> {
    let cpu_dir = linux.sysfs.join("devices/system/cpu");
    let logical = match parsed_opt(&cpu_dir.join("online"), parse_cpu_list_count)? {
        Some(n) if n > 0 => n,
        _ => {
            const ONLINE_CPUS: &str = "sysconf(_SC_NPROCESSORS_ONLN)";
            sys::online_cpus()
                .map_err(|e| io_error(Path::new(ONLINE_CPUS), e))?
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(Error::Unsupported { what: ONLINE_CPUS })?
        }
    };
    let cpus = numbered_entries(&cpu_dir, "cpu");
    let lists = |name: &str| -> Vec<Vec<u8>> {
        cpus.iter()
            .filter_map(|c| std::fs::read(cpu_dir.join(c).join("topology").join(name)).ok())
            .collect()
    };
    let mut siblings = lists("core_cpus_list");
    if siblings.is_empty() {
        siblings = lists("thread_siblings_list");
    }
    let physical = count_distinct_lists(siblings.iter().map(Vec::as_slice)).or_else(|| {
        std::fs::read(linux.procfs.join("cpuinfo"))
            .ok()
            .and_then(|b| parse_cpuinfo_cores(&b))
    });
    Ok(CpuCount { logical, physical })
}

/// Login sessions from the utmp file; none when there is no file (a host
/// without logins, a container).
fn users(utmp: &Path) -> Result<Vec<User>, Error> {
    Ok(read_opt(utmp)?.map(|b| parse_utmp(&b)).unwrap_or_default())
}

// === Sensors ===

/// The `prefix*_*` files of each hwmon device (and of its `device/`
/// directory where `device` is set), as the paths of their common stems
/// ("…/hwmon0/temp1"), sorted as psutil sorts them.
fn hwmon_stems(sysfs: &Path, prefix: &str, device: bool) -> Vec<PathBuf> {
    let hwmon = sysfs.join("class/hwmon");
    let mut stems = BTreeSet::new();
    for name in entries(&hwmon).iter().filter(|n| n.starts_with("hwmon")) {
        let mut dirs = vec![hwmon.join(name)];
        if device {
            dirs.push(hwmon.join(name).join("device"));
        }
        for dir in dirs {
            for file in entries(&dir) {
                if let Some((stem, _)) = file.split_once('_')
                    && stem.starts_with(prefix)
                {
                    stems.insert(dir.join(stem).to_string_lossy().into_owned());
                }
            }
        }
    }
    stems.into_iter().map(PathBuf::from).collect()
}

/// The `temp*` stems of the coretemp platform devices
/// (`devices/platform/coretemp.*/hwmon/hwmon*/`) that `class/hwmon` does
/// not show under the same hwmon name (psutil#1708).
fn coretemp_stems(sysfs: &Path, known: &[PathBuf]) -> Vec<PathBuf> {
    let platform = sysfs.join("devices/platform");
    let class = sysfs.join("class/hwmon");
    let mut out = Vec::new();
    for device in entries(&platform)
        .iter()
        .filter(|d| d.starts_with("coretemp."))
    {
        let hwmon = platform.join(device).join("hwmon");
        for name in entries(&hwmon).iter().filter(|n| n.starts_with("hwmon")) {
            let dir = hwmon.join(name);
            let mut stems: Vec<String> = entries(&dir)
                .iter()
                .filter_map(|f| Some(f.split_once('_')?.0.to_owned()))
                .filter(|stem| stem.starts_with("temp"))
                .collect();
            stems.dedup();
            for stem in stems {
                if !known.contains(&class.join(name).join(&stem)) {
                    out.push(dir.join(stem));
                }
            }
        }
    }
    out
}

/// `stem` with `suffix` appended to its last component ("temp1" + "_input").
fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The name file of the hwmon device holding `stem`.
fn sensor_name(stem: &Path) -> Option<String> {
    text(&stem.parent()?.join("name"))
}

/// psutil's `sensors_temperatures()`, flattened in its dict's order:
/// hwmon `temp*` readings, or the thermal zones where hwmon has none.
/// Readings that cannot be read are skipped, as psutil skips them.
fn temperatures(sysfs: &Path) -> Vec<Temperature> {
    let mut groups: Vec<(String, Vec<Temperature>)> = Vec::new();
    let mut add = |t: Temperature| match groups.iter_mut().find(|(s, _)| *s == t.sensor) {
        Some((_, list)) => list.push(t),
        None => groups.push((t.sensor.clone(), vec![t])),
    };
    let millis = |path: PathBuf| std::fs::read(path).ok().and_then(|b| parse_millis(&b));
    let mut stems = hwmon_stems(sysfs, "temp", true);
    stems.extend(coretemp_stems(sysfs, &stems));
    for stem in &stems {
        let Some(current) = millis(with_suffix(stem, "_input")) else {
            continue;
        };
        let Some(sensor) = sensor_name(stem) else {
            continue;
        };
        add(Temperature {
            sensor,
            label: text(&with_suffix(stem, "_label")).unwrap_or_default(),
            current,
            high: millis(with_suffix(stem, "_max")),
            critical: millis(with_suffix(stem, "_crit")),
        });
    }
    if stems.is_empty() {
        let thermal = sysfs.join("class/thermal");
        for zone in numbered_entries(&thermal, "thermal_zone") {
            let zone = thermal.join(zone);
            let Some(current) = millis(zone.join("temp")) else {
                continue;
            };
            let Some(sensor) = text(&zone.join("type")) else {
                continue;
            };
            let (mut high, mut critical) = (None, None);
            for file in entries(&zone) {
                let Some(point) = file.strip_suffix("_type") else {
                    continue;
                };
                if !point.starts_with("trip_point") {
                    continue;
                }
                match text(&zone.join(&file)).as_deref() {
                    Some("critical") => critical = millis(zone.join(format!("{point}_temp"))),
                    Some("high") => high = millis(zone.join(format!("{point}_temp"))),
                    _ => {}
                }
            }
            add(Temperature {
                sensor,
                label: String::new(),
                current,
                high,
                critical,
            });
        }
    }
    groups.into_iter().flat_map(|(_, list)| list).collect()
}

/// psutil's `sensors_fans()`, flattened in its dict's order.
fn fans(sysfs: &Path) -> Vec<Fan> {
    let mut stems = hwmon_stems(sysfs, "fan", false);
    if stems.is_empty() {
        stems = hwmon_stems(sysfs, "fan", true);
    }
    let mut groups: Vec<(String, Vec<Fan>)> = Vec::new();
    for stem in &stems {
        let Some(current) = std::fs::read(with_suffix(stem, "_input"))
            .ok()
            .and_then(|b| parse_int(&b))
        else {
            continue;
        };
        let Some(sensor) = sensor_name(stem) else {
            continue;
        };
        let fan = Fan {
            sensor: sensor.clone(),
            label: text(&with_suffix(stem, "_label")).unwrap_or_default(),
            current: current as f64,
        };
        match groups.iter_mut().find(|(s, _)| *s == sensor) {
            Some((_, list)) => list.push(fan),
            None => groups.push((sensor, vec![fan])),
        }
    }
    groups.into_iter().flat_map(|(_, list)| list).collect()
}

/// psutil's `sensors_battery()`: the first power supply named `BAT*` or
/// `*battery*`; `None` without one.
fn battery_of(sysfs: &Path) -> Option<Battery> {
    let supplies = sysfs.join("class/power_supply");
    let names = entries(&supplies);
    let name = names
        .iter()
        .find(|n| n.starts_with("BAT") || n.to_lowercase().contains("battery"))?;
    let dir = supplies.join(name);
    let int = |paths: &[PathBuf]| -> Option<i64> {
        let bytes = paths.iter().find_map(|p| std::fs::read(p).ok())?;
        parse_int(&bytes)
    };
    let at = |names: &[&str]| -> Vec<PathBuf> { names.iter().map(|n| dir.join(n)).collect() };
    battery(&BatteryFiles {
        energy_now: int(&at(&["energy_now", "charge_now"])),
        power_now: int(&at(&["power_now", "current_now"])),
        energy_full: int(&at(&["energy_full", "charge_full"])),
        time_to_empty: int(&at(&["time_to_empty_now"])),
        capacity: int(&at(&["capacity"])),
        ac_online: int(&[supplies.join("AC0/online"), supplies.join("AC/online")]),
        status: text(&dir.join("status")),
    })
}

// === Cgroups ===

/// Refuses a cgroup path that is not absolute or has a `..` component or
/// a NUL, so no request reads outside the hierarchy.
fn check_cgroup_path(path: &str) -> Result<(), Error> {
    if !path.starts_with('/') || path.contains('\0') || path.split('/').any(|c| c == "..") {
        return Err(Error::Parse {
            path: PathBuf::from(path.replace('\0', "\\0")),
            line: 0,
            message: "a cgroup path must be absolute, without '..' or NUL".to_owned(),
        });
    }
    Ok(())
}

/// The directory of cgroup `path` in the hierarchy mounted as `mount`, or
/// `None` when the mount does not show it. A mount point under `/sys` is
/// taken under the backend's sysfs root.
fn cgroup_dir(linux: &Linux, mount: &MountInfo, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" {
        path
    } else {
        let rest = path.strip_prefix(mount.root.as_str())?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    let base = match mount.mountpoint.strip_prefix("/sys") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            linux.sysfs.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(&mount.mountpoint),
    };
    let rel = rel.trim_start_matches('/');
    Some(if rel.is_empty() { base } else { base.join(rel) })
}

/// Whether a v1 mount carries `controller` in its super block options.
fn has_controller(mount: &MountInfo, controller: &str) -> bool {
    mount.fstype == "cgroup" && mount.super_opts.split(',').any(|o| o == controller)
}

/// The limits and usage of cgroup `requested` (the agent's own when
/// `None`): from the unified hierarchy when it has the memory controller
/// enabled for that cgroup, else from the v1 controllers.
fn read_cgroup(linux: &Linux, requested: Option<&str>) -> Result<CgroupInfo, Error> {
    if let Some(path) = requested {
        check_cgroup_path(path)?;
    }
    let mounts = parsed(&linux.procfs.join("self/mountinfo"), parse_mountinfo)?;
    let own = match requested {
        Some(_) => ProcCgroups::default(),
        None => parse_proc_cgroups(&read(&linux.procfs.join("self/cgroup"))?),
    };
    if let Some(mount) = mounts.iter().find(|m| m.fstype == "cgroup2") {
        let path = requested.or(own.unified.as_deref());
        if let Some(path) = path
            && let Some(dir) = cgroup_dir(linux, mount, path)
        {
            let controllers = read_opt(&dir.join("cgroup.controllers"))?;
            if controllers.is_some_and(|c| lists_controller(&c, "memory")) {
                return cgroup_v2(&dir, path);
            }
        }
    }
    // The v1 controllers, each in its own hierarchy.
    let path_of = |controller: &str| requested.or(own.v1_path(controller));
    let dir_of = |controller: &str| -> Option<PathBuf> {
        let mount = mounts.iter().find(|m| has_controller(m, controller))?;
        cgroup_dir(linux, mount, path_of(controller)?)
    };
    let (Some(path), Some(memory)) = (path_of("memory"), dir_of("memory")) else {
        return Err(Error::Unsupported {
            what: "a cgroup hierarchy with the memory controller",
        });
    };
    let (cpu_max_quota_us, cpu_max_period_us) = match dir_of("cpu") {
        Some(cpu) => (
            parsed_opt(&cpu.join("cpu.cfs_quota_us"), parse_cfs_quota)?.flatten(),
            parsed_opt(&cpu.join("cpu.cfs_period_us"), |b| {
                parse_count(b, "cpu.cfs_period_us")
            })?
            .unwrap_or(0),
        ),
        None => (None, 0),
    };
    let cpu_usage_us = match dir_of("cpuacct") {
        Some(acct) => parsed_opt(&acct.join("cpuacct.usage"), |b| {
            parse_count(b, "cpuacct.usage")
        })?
        .map(|ns| ns / 1000),
        None => None,
    };
    let (pids_max, pids_current) = match dir_of("pids") {
        Some(pids) => (
            parsed_opt(&pids.join("pids.max"), |b| parse_max(b, "pids.max"))?.flatten(),
            parsed_opt(&pids.join("pids.current"), |b| {
                parse_count(b, "pids.current")
            })?,
        ),
        None => (None, None),
    };
    Ok(CgroupInfo {
        path: path.to_owned(),
        version: 1,
        memory_max: parsed(&memory.join("memory.limit_in_bytes"), |b| {
            parse_v1_limit(b, "memory.limit_in_bytes")
        })?,
        memory_current: parsed(&memory.join("memory.usage_in_bytes"), |b| {
            parse_count(b, "memory.usage_in_bytes")
        })?,
        // v1 counts memory and swap together (memory.memsw.*), not swap.
        memory_swap_max: None,
        memory_swap_current: None,
        cpu_max_quota_us,
        cpu_max_period_us,
        cpu_usage_us,
        pids_max,
        pids_current,
    })
}

/// A v2 cgroup's files in `dir`. Files of controllers not enabled for it
/// (cpu, pids) or of swap accounting the kernel lacks read as `None`; with
/// no `cpu.max` the period is 0.
fn cgroup_v2(dir: &Path, path: &str) -> Result<CgroupInfo, Error> {
    let (cpu_max_quota_us, cpu_max_period_us) =
        parsed_opt(&dir.join("cpu.max"), parse_cpu_max)?.unwrap_or((None, 0));
    Ok(CgroupInfo {
        path: path.to_owned(),
        version: 2,
        memory_max: parsed(&dir.join("memory.max"), |b| parse_max(b, "memory.max"))?,
        memory_current: parsed(&dir.join("memory.current"), |b| {
            parse_count(b, "memory.current")
        })?,
        memory_swap_max: parsed_opt(&dir.join("memory.swap.max"), |b| {
            parse_max(b, "memory.swap.max")
        })?
        .flatten(),
        memory_swap_current: parsed_opt(&dir.join("memory.swap.current"), |b| {
            parse_count(b, "memory.swap.current")
        })?,
        cpu_max_quota_us,
        cpu_max_period_us,
        cpu_usage_us: parsed_opt(&dir.join("cpu.stat"), parse_cpu_stat_usage)?.flatten(),
        pids_max: parsed_opt(&dir.join("pids.max"), |b| parse_max(b, "pids.max"))?.flatten(),
        pids_current: parsed_opt(&dir.join("pids.current"), |b| {
            parse_count(b, "pids.current")
        })?,
    })
}

// === Disks ===

/// psutil's `disk_partitions(all)` from `<procfs>/self/mounts`.
pub(super) fn disk_partitions(linux: &Linux, all: bool) -> Result<Vec<Partition>, Error> {
    let mut mounts = parsed(&linux.procfs.join("self/mounts"), parse_mounts)?;
    // Where the kernel names the root device only "/dev/root" or
    // "rootfs", psutil looks for its real name.
    let mut root_device = None;
    for mount in &mut mounts {
        if mount.device == "/dev/root" || mount.device == "rootfs" {
            let found = root_device.get_or_insert_with(|| root_device_name(linux));
            if let Some(found) = found {
                mount.device = found.clone();
            }
        }
    }
    let physical = if all {
        BTreeSet::new()
    } else {
        parse_filesystems(&read(&linux.procfs.join("filesystems"))?)
    };
    Ok(select_partitions(mounts, all, &physical))
}

/// The device holding the live "/" (psutil's `RootFsDeviceFinder`): its
/// device number looked up in `<procfs>/partitions`, else in
/// `<sysfs>/dev/block/M:m/uevent`; `None` unless `/dev/NAME` exists.
fn root_device_name(linux: &Linux) -> Option<String> {
    let (major, minor) = sys::device_of(Path::new("/")).ok()?;
    let from_partitions = || {
        let bytes = std::fs::read(linux.procfs.join("partitions")).ok()?;
        partition_name(&bytes, major, minor)
    };
    let from_uevent = || {
        let uevent = linux
            .sysfs
            .join(format!("dev/block/{major}:{minor}/uevent"));
        uevent_devname(&std::fs::read(uevent).ok()?)
    };
    let name = from_partitions().or_else(from_uevent)?;
    let path = format!("/dev/{name}");
    Path::new(&path).exists().then_some(path)
}

/// psutil's `disk_usage(path)`, through statvfs(3) of the live system.
pub(super) fn disk_usage(mountpoint: &str) -> Result<DiskUsage, Error> {
    let [frsize, blocks, bfree, bavail] = sys::statvfs(Path::new(mountpoint))
        .map_err(|e| io_error(&PathBuf::from(format!("statvfs(3) of {mountpoint}")), e))?;
    Ok(DiskUsage::from_statvfs(frsize, blocks, bfree, bavail))
}

/// psutil's `disk_io_counters(perdisk=True)` from `<procfs>/diskstats`; a
/// device is a whole disk when `<sysfs>/block` has it. Without diskstats,
/// from the `stat` files of `<sysfs>/block`, as psutil falls back.
pub(super) fn disk_io_counters(linux: &Linux) -> Result<Vec<DiskIo>, Error> {
    let block = linux.sysfs.join("block");
    let Some(mut disks) = parsed_opt(&linux.procfs.join("diskstats"), parse_diskstats)? else {
        return block_stats(&block);
    };
    for disk in &mut disks {
        disk.whole_disk = block.join(sys_block_name(&disk.name)).exists();
    }
    Ok(disks)
}

/// Each disk's `<sysfs>/block/NAME/stat` and its partitions'
/// `NAME/PART/stat`, disks in name order.
fn block_stats(block: &Path) -> Result<Vec<DiskIo>, Error> {
    let names = std::fs::read_dir(block).map_err(|e| io_error(block, e))?;
    let mut names: Vec<String> = names
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let dir = block.join(&name);
        let Some(mut disk) = parsed_opt(&dir.join("stat"), |b| parse_block_stat(&name, b))? else {
            continue;
        };
        disk.whole_disk = true;
        out.push(disk);
        // Partitions are named after their disk ("sda1", "nvme0n1p1").
        for part in entries(&dir).into_iter().filter(|p| p.starts_with(&name)) {
            let path = dir.join(&part).join("stat");
            if let Some(p) = parsed_opt(&path, |b| parse_block_stat(&part, b))? {
                out.push(p);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(root: &str, mountpoint: &str) -> MountInfo {
        MountInfo {
            root: root.to_owned(),
            mountpoint: mountpoint.to_owned(),
            fstype: "cgroup".to_owned(),
            super_opts: "rw,cpu,cpuacct".to_owned(),
        }
    }

    #[test]
    fn cgroup_directories_follow_the_mount_root_and_the_sysfs_root() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linux");
        let linux = Linux::with_consts(dir.join("proc"), dir.join("sys"), 100, 4096).unwrap();
        let sys = dir.join("sys");
        let at_sys = mount("/", "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(
            cgroup_dir(&linux, &at_sys, "/a/b"),
            Some(sys.join("fs/cgroup/cpu,cpuacct/a/b"))
        );
        assert_eq!(
            cgroup_dir(&linux, &at_sys, "/"),
            Some(sys.join("fs/cgroup/cpu,cpuacct"))
        );
        // A container sees its own cgroup as the hierarchy's root.
        let inside = mount("/docker/abc", "/cgroup");
        assert_eq!(
            cgroup_dir(&linux, &inside, "/docker/abc/x"),
            Some(PathBuf::from("/cgroup/x"))
        );
        assert_eq!(cgroup_dir(&linux, &inside, "/docker/abcd"), None);
        assert_eq!(cgroup_dir(&linux, &inside, "/other"), None);
        assert!(has_controller(&at_sys, "cpuacct"));
        assert!(!has_controller(&at_sys, "memory"));
        assert!(check_cgroup_path("/a/..b/c").is_ok());
        assert!(check_cgroup_path("/a/../c").is_err());
    }
}
