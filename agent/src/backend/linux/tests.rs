//! Tests of the Linux backend: every field of the processes in the fixture
//! tree (`tests/fixtures/linux`, see its README). What only the real
//! `/proc` and `/sys` can show (this process, its children, the loopback
//! interface) is tested in tests/integration (`tests/e2e/backend_live.rs`),
//! so that these pass on any machine.

use std::{
    collections::BTreeMap,
    ops::ControlFlow,
    ops::{Deref, DerefMut},
    path::{Path, PathBuf},
    process::{Child, Command},
};

use super::{Linux, net::link_stats, process::PidFile, process::Scan};
use crate::backend::{
    Backend, CpuTimes, CtxSwitches, Duplex, Error, ErrorKind, Field, FieldSet, Ids, IoCounters,
    MemoryInfo, ProcessInfo, Status,
};

// === Child processes ===

/// A child process that is killed and reaped when the test ends, pass or
/// fail. Until then it may exit and stay a zombie.
pub(super) struct KillOnDrop(Child);

impl KillOnDrop {
    pub(super) fn spawn(command: &mut Command) -> KillOnDrop {
        KillOnDrop(command.spawn().expect("spawn a test child"))
    }
}

impl Deref for KillOnDrop {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Fails harmlessly when the child was already reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// === Fixture tree ===

const NORMAL: u32 = 15792;
const PARENS: u32 = 15794;
const DELETED: u32 = 15796;
const ZOMBIE: u32 = 15802;
const WIDENED: u32 = 15827;
const KTHREADD: u32 = 2;
const THREADED: u32 = 15830;
const BOOT_TIME: f64 = 1_795_625_947.0;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linux")
}

/// The fixture backend, with the clock tick and page size of the machine
/// the samples came from, so the numbers hold on any build machine.
fn fixture() -> Linux {
    let dir = fixture_dir();
    Linux::with_consts(dir.join("proc"), dir.join("sys"), 100, 4096).unwrap()
}

fn list(backend: &Linux, fields: FieldSet) -> BTreeMap<u32, ProcessInfo> {
    let mut all = BTreeMap::new();
    backend
        .for_each_process(fields, &mut |p| {
            all.insert(p.pid, p);
            ControlFlow::Continue(())
        })
        .unwrap();
    all
}

/// Every field of a fixture process that should read without an error.
fn clean_process(pid: u32) -> ProcessInfo {
    let p = fixture().process(pid, Field::portable()).unwrap();
    assert_eq!(p.field_errors, vec![], "pid {pid}");
    p
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ids(real: u32, effective: u32, saved: u32) -> Ids {
    Ids {
        real,
        effective,
        saved,
    }
}

/// Pages of the fixture's statm as psutil's bytes.
fn memory(statm: [u64; 5]) -> MemoryInfo {
    let [rss, vms, shared, text, data] = statm.map(|pages| pages * 4096);
    MemoryInfo {
        rss,
        vms,
        shared: Some(shared),
        text: Some(text),
        data: Some(data),
    }
}

#[test]
fn fixture_lists_every_pid_once() {
    let all = list(&fixture(), Field::portable());
    let pids: Vec<u32> = all.keys().copied().collect();
    assert_eq!(
        pids,
        [KTHREADD, NORMAL, PARENS, DELETED, ZOMBIE, WIDENED, THREADED]
    );
}

#[test]
fn fixture_normal_process_every_field() {
    let p = fixture().process(NORMAL, Field::portable()).unwrap();
    let expected = ProcessInfo {
        pid: NORMAL,
        ppid: Some(1),
        name: Some("sleep".into()),
        exe: Some("/usr/bin/sleep".into()),
        cmdline: Some(strings(&["sleep", "1000"])),
        status: Some(Status::Sleeping),
        // The real uid 33 is www-data on Debian, where the tests run.
        username: Some("www-data".into()),
        uids: Some(ids(33, 33, 33)),
        gids: Some(ids(33, 33, 33)),
        terminal: Some(Some("/dev/pts/1".into())),
        cwd: Some("/tmp/fx/work".into()),
        nice: Some(5),
        create_time: Some(101_736.0 / 100.0 + BOOT_TIME),
        num_threads: Some(1),
        num_fds: Some(3),
        num_ctx_switches: Some(CtxSwitches {
            voluntary: 15,
            involuntary: 1,
        }),
        cpu_times: Some(CpuTimes {
            user: 0.12,
            system: 0.34,
            children_user: Some(0.05),
            children_system: Some(0.06),
            iowait: Some(0.07),
        }),
        memory_info: Some(memory([450, 730, 423, 5, 89])),
        io_counters: Some(IoCounters {
            read_count: 54,
            write_count: 0,
            read_bytes: 638_976,
            write_bytes: 16_384,
            read_chars: Some(36_857),
            write_chars: Some(0),
        }),
        environ: Some(env(&[
            ("HOME", "/var/www"),
            ("PATH", "/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
        ])),
        // Worked out by the service, never by a backend.
        cpu_percent: None,
        memory_percent: None,
        cgroup: Some("/system.slice/apache2.service".into()),
        field_errors: vec![],
        ..ProcessInfo::default()
    };
    assert_eq!(p, expected);
}

#[test]
fn fixture_zombie() {
    let p = fixture().process(ZOMBIE, Field::portable()).unwrap();
    assert_eq!(p.status, Some(Status::Zombie));
    assert_eq!(p.ppid, Some(15800));
    assert_eq!(p.name.as_deref(), Some("bash"));
    assert_eq!(p.cmdline, Some(vec![]));
    assert_eq!(p.terminal, Some(None));
    assert_eq!(p.uids, Some(ids(0, 0, 0)));
    assert_eq!(p.username.as_deref(), Some("root"));
    assert_eq!(p.create_time, Some(101_737.0 / 100.0 + BOOT_TIME));
    // A real zombie's fd directory is there and empty, its io and statm
    // all zeros (seen on this machine); exe, cwd and environ fail.
    assert_eq!(p.num_fds, Some(0));
    assert_eq!(p.memory_info, Some(memory([0; 5])));
    assert_eq!(
        p.io_counters,
        Some(IoCounters {
            read_chars: Some(0),
            write_chars: Some(0),
            ..IoCounters::default()
        })
    );
    assert_eq!(
        p.cpu_times,
        Some(CpuTimes {
            children_user: Some(0.0),
            children_system: Some(0.0),
            iowait: Some(0.0),
            ..CpuTimes::default()
        })
    );
    assert_eq!(
        (p.exe.as_ref(), p.cwd.as_ref(), p.environ.as_ref()),
        (None, None, None)
    );
    assert_eq!(
        p.field_errors,
        [
            (Field::Environ, ErrorKind::ZombieProcess),
            (Field::Exe, ErrorKind::ZombieProcess),
            (Field::Cwd, ErrorKind::ZombieProcess),
        ]
    );
}

#[test]
fn fixture_kernel_thread() {
    let p = clean_process(KTHREADD);
    assert_eq!(p.ppid, Some(0));
    assert_eq!(p.name.as_deref(), Some("kthreadd"));
    assert_eq!(p.exe.as_deref(), Some(""));
    assert_eq!(p.cmdline, Some(vec![]));
    assert_eq!(p.environ, Some(vec![]));
    assert_eq!(p.cwd.as_deref(), Some("/"));
    assert_eq!(p.num_fds, Some(0));
    assert_eq!(p.status, Some(Status::Sleeping));
    assert_eq!(p.memory_info, Some(memory([0; 5])));
    assert_eq!(p.create_time, Some(0.24 + BOOT_TIME));
    assert_eq!(
        p.num_ctx_switches,
        Some(CtxSwitches {
            voluntary: 61,
            involuntary: 0
        })
    );
}

#[test]
fn fixture_name_with_parentheses() {
    let p = clean_process(PARENS);
    assert_eq!(p.name.as_deref(), Some("a) (b"));
    assert_eq!(p.exe.as_deref(), Some("/tmp/fx/a) (b"));
    assert_eq!(p.cmdline, Some(strings(&["/tmp/fx/a) (b", "1000"])));
    assert_eq!(p.ppid, Some(1));
    assert_eq!(p.memory_info, Some(memory([382, 625, 358, 5, 89])));
    assert_eq!(
        p.environ,
        Some(env(&[("HOME", "/root"), ("PATH", "/usr/bin:/bin")]))
    );
}

#[test]
fn fixture_deleted_exe_and_unknown_user() {
    let p = clean_process(DELETED);
    assert_eq!(p.exe.as_deref(), Some("/usr/bin/foo"));
    assert_eq!(p.name.as_deref(), Some("foo"));
    // No user has uid 4242: psutil falls back to the number.
    assert_eq!(p.username.as_deref(), Some("4242"));
    assert_eq!(p.uids, Some(ids(4242, 0, 0)));
}

#[test]
fn fixture_truncated_name_is_widened_from_cmdline() {
    let name: FieldSet = [Field::Name].into_iter().collect();
    let p = fixture().process(WIDENED, name).unwrap();
    assert_eq!(p.name.as_deref(), Some("systemd-journald"));
    assert_eq!(p.cmdline, None, "cmdline was not requested");
}

/// A listing of pid, name and status opens `stat` of every process and
/// nothing else, but for the one whose 15-byte name needs the command line.
#[test]
fn fixture_cheap_listing_reads_only_stat() {
    let backend = fixture();
    let fields: FieldSet = [Field::Name, Field::Status].into_iter().collect();
    let mut scan = Scan::new(&backend, fields);
    let mut seen = Vec::new();
    scan.each(&mut |p| {
        assert_eq!(p.field_errors, vec![]);
        seen.push((p.pid, p.name.unwrap_or_default(), p.status));
        ControlFlow::Continue(())
    })
    .unwrap();
    let mut opened = scan.opened.clone();
    opened.sort_by_key(|(pid, file)| (*pid, *file as u8));
    assert_eq!(
        opened,
        [
            (KTHREADD, PidFile::Stat),
            (NORMAL, PidFile::Stat),
            (PARENS, PidFile::Stat),
            (DELETED, PidFile::Stat),
            (ZOMBIE, PidFile::Stat),
            (WIDENED, PidFile::Stat),
            (WIDENED, PidFile::Cmdline),
            (THREADED, PidFile::Stat),
        ]
    );
    assert!(seen.contains(&(ZOMBIE, "bash".into(), Some(Status::Zombie))));
    assert!(seen.contains(&(WIDENED, "systemd-journald".into(), Some(Status::Sleeping))));

    // Without fields, a listing opens nothing at all.
    let mut scan = Scan::new(&backend, FieldSet::EMPTY);
    scan.each(&mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(scan.opened, vec![]);
}

#[test]
fn fixture_missing_pid() {
    let backend = fixture();
    assert!(matches!(
        backend.process(4_000_000, Field::portable()),
        Err(Error::NoSuchProcess { pid: 4_000_000 })
    ));
    assert!(matches!(
        backend.process(4_000_000, FieldSet::EMPTY),
        Err(Error::NoSuchProcess { .. })
    ));
    assert_eq!(
        backend.process(NORMAL, FieldSet::EMPTY).unwrap(),
        ProcessInfo::new(NORMAL)
    );
}

#[test]
fn fixture_pid_exists() {
    let backend = fixture();
    assert!(backend.pid_exists(NORMAL).unwrap());
    assert!(backend.pid_exists(ZOMBIE).unwrap());
    assert!(!backend.pid_exists(4_000_000).unwrap());
}

#[test]
fn fixture_host() {
    let host = fixture().host().unwrap();
    assert_eq!(host.boot_time, BOOT_TIME);
    assert_eq!(host.memory_total, 24_684_084 * 1024);
    assert_eq!(host.os, "linux");
    assert_eq!(host.backend, "linux-procfs");
    assert_eq!(host.process_fields, FieldSet::all());
    assert_eq!(host.net_interface_fields.len(), 7);
    assert!(host.cpu_count >= 1);
    assert!(!host.kernel.is_empty() && !host.arch.is_empty());
}

#[test]
fn fixture_link_settings() {
    let sys = fixture_dir().join("sys");
    let eth0 = link_stats(&sys, "eth0", 0x1043).unwrap().unwrap();
    assert!(eth0.isup);
    assert_eq!(
        (eth0.speed, eth0.duplex, eth0.mtu),
        (0, Duplex::Unknown, 1400)
    );
    assert_eq!(eth0.flags, "up,broadcast,running,multicast");
    let enp = link_stats(&sys, "enp3s0", 0x1002).unwrap().unwrap();
    assert!(!enp.isup);
    assert_eq!((enp.speed, enp.duplex, enp.mtu), (1000, Duplex::Full, 1500));
    // lo has no speed or duplex files that read (EINVAL on a real system).
    let lo = link_stats(&sys, "lo", 0x49).unwrap().unwrap();
    assert_eq!((lo.speed, lo.duplex, lo.mtu), (0, Duplex::Unknown, 65536));
    assert_eq!(link_stats(&sys, "nosuch0", 0x1).unwrap(), None);
}

#[test]
fn fixture_net_dev_counters_join_live_interfaces() {
    let ifs = fixture().net_interfaces().unwrap();
    let enp = ifs.iter().find(|i| i.name == "enp3s0").unwrap();
    let io = enp.io_counters.unwrap();
    assert_eq!(
        (io.bytes_recv, io.bytes_sent, io.dropout),
        (987_654_321, 12_345_678, 6)
    );
    let names: Vec<&str> = ifs.iter().map(|i| i.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted by name, each once");
}

#[test]
fn construction_fails_with_the_path_of_a_bad_root() {
    let err = Linux::with_roots("/nonexistent/proc".into(), "/sys".into())
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent/proc/stat"), "{err}");
}

// === System figures ===

mod system_figures {
    use super::{fixture, fixture_dir};
    use crate::backend::{
        Backend, ErrorKind,
        system::{
            Battery, CgroupInfo, CpuCount, CpuFreq, CpuStats, Fan, LoadAvg, SwapMemory,
            SystemCpuTimes, SystemField, SystemFields, Temperature, User, VirtualMemory,
        },
    };

    /// The fixture backend reading the fixture's utmp file.
    fn backend() -> super::Linux {
        let mut linux = fixture();
        linux.utmp = fixture_dir().join("var/run/utmp");
        linux
    }

    fn read_figures() -> SystemFields {
        SystemFields::all()
            .iter()
            .filter(|f| !f.is_measured())
            .collect()
    }

    fn times(
        user: f64,
        system: f64,
        idle: f64,
        iowait: f64,
        softirq: f64,
        steal: f64,
    ) -> SystemCpuTimes {
        SystemCpuTimes {
            user,
            nice: 0.0,
            system,
            idle,
            iowait: Some(iowait),
            irq: Some(0.0),
            softirq: Some(softirq),
            steal: Some(steal),
            guest: Some(0.0),
            guest_nice: Some(0.0),
        }
    }

    #[test]
    fn every_figure_of_the_fixture_tree() {
        let info = backend().system(read_figures(), None);
        assert_eq!(info.field_errors, vec![]);

        let cpu = info.cpu_times.expect("cpu_times");
        assert_eq!(cpu.total, times(623.42, 83.30, 1364.41, 6.35, 0.79, 1.09));
        assert_eq!(
            cpu.per_cpu,
            vec![
                times(305.53, 36.66, 694.89, 1.74, 0.10, 0.52),
                times(317.88, 46.64, 669.52, 4.61, 0.68, 0.56),
            ]
        );
        assert_eq!(
            info.cpu_stats,
            Some(CpuStats {
                ctx_switches: 467_863,
                interrupts: 512_345,
                soft_interrupts: Some(217_197),
                syscalls: None,
            })
        );
        // Two cpufreq policies and two cpu MHz lines: the current value is
        // cpuinfo's (psutil#1851), min and max the policies' scaling limits.
        let freq = info.cpu_freq.expect("cpu_freq");
        let one = CpuFreq {
            current: 2599.998,
            min: Some(800.0),
            max: Some(3500.0),
        };
        assert_eq!(freq.per_cpu, vec![one, one]);
        assert_eq!(freq.total, one);
        assert_eq!(
            info.cpu_count,
            Some(CpuCount {
                logical: 2,
                physical: Some(2),
            })
        );
        assert_eq!(
            info.loadavg,
            Some(LoadAvg {
                load1: 0.34,
                load5: 0.09,
                load15: 0.45,
            })
        );
        let kib = |k: u64| k * 1024;
        assert_eq!(
            info.virtual_memory,
            Some(VirtualMemory {
                total: kib(24_684_084),
                available: kib(24_335_632),
                // (24684084 - 24335632) / 24684084 = 1.41%
                percent: 1.4,
                // total - available, as psutil 7
                used: kib(24_684_084 - 24_335_632),
                free: kib(22_782_796),
                active: Some(kib(943_772)),
                inactive: Some(kib(791_464)),
                buffers: Some(kib(4048)),
                cached: Some(kib(1_733_796 + 70_284)),
                shared: Some(kib(8872)),
                slab: Some(kib(94_540)),
                wired: None,
            })
        );
        assert_eq!(
            info.swap_memory,
            Some(SwapMemory {
                total: 0,
                used: 0,
                free: 0,
                percent: 0.0,
                sin: Some(3 * 4096),
                sout: Some(10 * 4096),
            })
        );
        assert_eq!(
            info.users,
            Some(vec![
                User {
                    name: "www-data".into(),
                    terminal: "pts/1".into(),
                    host: "192.0.2.10".into(),
                    started: 1_795_626_000.0,
                    pid: Some(15792),
                },
                User {
                    name: "root".into(),
                    terminal: "tty2".into(),
                    host: String::new(),
                    started: 1_795_626_100.0,
                    pid: Some(701),
                },
            ])
        );
        assert_eq!(info.boot_time, Some(super::BOOT_TIME));
        let temp = |sensor: &str, label: &str, current, high, critical| Temperature {
            sensor: sensor.into(),
            label: label.into(),
            current,
            high,
            critical,
        };
        assert_eq!(
            info.temperatures,
            Some(vec![
                temp("coretemp", "Package id 0", 45.0, Some(84.0), Some(100.0)),
                temp("coretemp", "Core 0", 43.0, Some(84.0), Some(100.0)),
                // Only under devices/platform/coretemp.0: psutil adds it.
                temp("coretemp", "Core 1", 44.0, None, None),
                temp("thinkpad", "", 38.5, None, None),
            ])
        );
        assert_eq!(
            info.fans,
            Some(vec![Fan {
                sensor: "thinkpad".into(),
                label: String::new(),
                current: 2100.0,
            }])
        );
        assert_eq!(
            info.battery,
            Some(Some(Battery {
                percent: 75.0,
                secsleft: Some(10_800.0),
                power_plugged: Some(false),
            }))
        );
        // The agent's own cgroup on a hybrid host: the unified hierarchy
        // has no memory controller, so the v1 controllers answer.
        assert_eq!(
            info.cgroup,
            Some(CgroupInfo {
                path: "/process_api/8a73b5f2155728d94b3c991b8b6d2ca3".into(),
                version: 1,
                memory_max: None,
                memory_current: 1_461_698_560,
                memory_swap_max: None,
                memory_swap_current: None,
                cpu_max_quota_us: None,
                cpu_max_period_us: 100_000,
                cpu_usage_us: Some(24_909_036_207),
                pids_max: None,
                pids_current: None,
            })
        );
    }

    #[test]
    fn only_the_requested_figures_are_read() {
        let fields: SystemFields = [SystemField::Loadavg].into_iter().collect();
        let info = backend().system(fields, None);
        assert!(info.loadavg.is_some());
        assert_eq!(info.cpu_times, None);
        assert_eq!(info.virtual_memory, None);
        assert_eq!(info.field_errors, vec![]);
    }

    #[test]
    fn a_cgroup_with_the_unified_memory_controller_reads_v2() {
        let fields: SystemFields = [SystemField::Cgroup].into_iter().collect();
        let info = backend().system(fields, Some("/system.slice/nginx.service"));
        assert_eq!(info.field_errors, vec![]);
        assert_eq!(
            info.cgroup,
            Some(CgroupInfo {
                path: "/system.slice/nginx.service".into(),
                version: 2,
                memory_max: Some(512 << 20),
                memory_current: 100 << 20,
                memory_swap_max: None,
                memory_swap_current: Some(0),
                cpu_max_quota_us: Some(50_000),
                cpu_max_period_us: 100_000,
                cpu_usage_us: Some(123_456),
                pids_max: Some(100),
                pids_current: Some(7),
            })
        );
    }

    #[test]
    fn cgroup_paths_outside_the_hierarchy_are_refused() {
        let fields: SystemFields = [SystemField::Cgroup].into_iter().collect();
        for bad in ["relative", "/a/../../etc", "/a\0b"] {
            let info = backend().system(fields, Some(bad));
            assert_eq!(info.cgroup, None, "{bad:?}");
            let (field, kind, message) = &info.field_errors[0];
            assert_eq!(
                (*field, *kind),
                (SystemField::Cgroup, ErrorKind::Unsupported)
            );
            assert!(message.contains("absolute"), "{message}");
        }
        // A cgroup that does not exist: no v2 directory, no v1 files.
        let info = backend().system(fields, Some("/no/such/cgroup"));
        assert_eq!(info.cgroup, None);
        assert_eq!(info.field_errors.len(), 1);
    }

    #[test]
    fn a_host_without_sensors_has_empty_lists_and_no_battery() {
        let mut linux = backend();
        linux.sysfs = fixture_dir().join("sys/class/net");
        let fields: SystemFields = [
            SystemField::SensorsTemperatures,
            SystemField::SensorsFans,
            SystemField::SensorsBattery,
        ]
        .into_iter()
        .collect();
        let info = linux.system(fields, None);
        assert_eq!(info.field_errors, vec![]);
        assert_eq!(info.temperatures, Some(vec![]));
        assert_eq!(info.fans, Some(vec![]));
        assert_eq!(info.battery, Some(None));
    }

    #[test]
    fn partitions_of_the_fixture_tree() {
        let physical = fixture().disk_partitions(false).unwrap();
        assert_eq!(physical.len(), 1);
        assert_eq!(physical[0].device, "/dev/vda");
        assert_eq!(physical[0].mountpoint, "/");
        assert_eq!(physical[0].fstype, "ext4");
        assert_eq!(
            physical[0].opts,
            "rw,relatime,discard,resv_strict,resuid=65534,resgid=65534"
        );
        let all = fixture().disk_partitions(true).unwrap();
        assert_eq!(all.len(), 19);
        assert_eq!(all[0].mountpoint, "/proc");
        assert_eq!(all[18].fstype, "cgroup2");
    }

    #[test]
    fn disk_io_of_the_fixture_tree() {
        let disks = fixture().disk_io_counters().unwrap();
        let names: Vec<(&str, bool)> = disks
            .iter()
            .map(|d| (d.name.as_str(), d.whole_disk))
            .collect();
        assert_eq!(
            names,
            [
                ("loop0", true),
                ("vda", true),
                ("zram0", true),
                ("vda1", false)
            ]
        );
        let vda = &disks[1];
        assert_eq!(vda.read_count, 2_028_462);
        assert_eq!(vda.read_merged_count, Some(56_984));
        assert_eq!(vda.read_bytes, 88_316_850 * 512);
        assert_eq!(vda.read_time, Some(2_729_869));
        assert_eq!(vda.write_count, 312_506);
        assert_eq!(vda.write_merged_count, Some(686_513));
        assert_eq!(vda.write_bytes, 380_911_048 * 512);
        assert_eq!(vda.write_time, Some(2_309_049));
        assert_eq!(vda.busy_time, Some(268_756));
    }

    #[test]
    fn live_disk_usage_of_the_root_agrees_with_statvfs() {
        let usage = fixture().disk_usage("/").unwrap();
        let st = rustix::fs::statvfs("/").unwrap();
        assert_eq!(usage.total, st.f_blocks * st.f_frsize);
        assert!(usage.used + usage.free <= usage.total);
        assert!(fixture().disk_usage("/no/such/mount").is_err());
    }
}

// === psutil's Process beyond the portable fields ===

#[test]
fn fixture_threads_limits_affinity_and_faults() {
    let fields: FieldSet = [
        Field::Threads,
        Field::Rlimits,
        Field::CpuAffinity,
        Field::CpuNum,
        Field::PageFaults,
        Field::IoCounters,
        Field::MemoryFullInfo,
    ]
    .into_iter()
    .collect();
    let p = fixture().process(THREADED, fields).unwrap();
    assert_eq!(p.field_errors, vec![]);
    let tids: Vec<u32> = p.threads.unwrap().iter().map(|t| t.id).collect();
    assert_eq!(tids, [15830, 15831, 15832]);
    let nofile = p
        .rlimits
        .unwrap()
        .into_iter()
        .find(|r| r.resource == "nofile")
        .unwrap();
    assert_eq!((nofile.soft, nofile.hard), (Some(123), Some(20_000)));
    assert_eq!(p.cpu_affinity, Some(vec![1]));
    assert_eq!(p.cpu_num, Some(1));
    let faults = p.page_faults.unwrap();
    assert_eq!((faults.minor, faults.major), (5544, 2));
    let io = p.io_counters.unwrap();
    assert_eq!(
        (io.read_chars, io.write_chars),
        (Some(1_693_638), Some(1689))
    );
    // From smaps_rollup: Private_Clean + Private_Dirty + Private_Hugetlb.
    let full = p.memory_full_info.unwrap();
    assert_eq!(full.uss, (120 + 9660 + 8) * 1024);
}

#[test]
fn memory_maps_grouped_or_one_per_mapping() {
    let grouped = fixture()
        .process(THREADED, [Field::MemoryMaps].into_iter().collect())
        .unwrap();
    let maps = grouped.memory_maps.unwrap();
    assert_eq!(maps.len(), 6);
    assert!(maps.iter().all(|m| m.addr.is_empty()));
    let ungrouped = fixture()
        .process(THREADED, [Field::MemoryMapsUngrouped].into_iter().collect())
        .unwrap();
    let maps = ungrouped.memory_maps.unwrap();
    assert_eq!(maps.len(), 8);
    assert_eq!(maps[0].perms, "r--p");
}

#[test]
fn without_a_rollup_smaps_is_summed() {
    // 15827 has an smaps (a copy of 15830's) and no smaps_rollup.
    let fields = [Field::MemoryFullInfo].into_iter().collect();
    let p = fixture().process(WIDENED, fields).unwrap();
    assert_eq!(p.field_errors, vec![]);
    let full = p.memory_full_info.unwrap();
    // Private kB of the eight mappings: 8 + 100 + 10240 + 4 + 4 + 16.
    assert_eq!(full.uss, (8 + 100 + 10_240 + 4 + 4 + 16) * 1024);
    assert_eq!(full.swap, 16 * 1024);
}

#[test]
fn a_listing_without_costly_fields_reads_no_smaps() {
    // No fixture process but 15830 and 15827 has smaps: a listing that
    // read it would name memory_full_info errors for the others.
    let backend = fixture();
    let mut scan = Scan::new(&backend, Field::portable());
    scan.each(&mut |p| {
        assert_eq!(
            p.field_errors
                .iter()
                .filter(|(f, _)| Field::COSTLY.contains(f))
                .count(),
            0
        );
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(
        scan.opened
            .iter()
            .all(|(_, f)| !matches!(f, PidFile::Smaps | PidFile::SmapsRollup | PidFile::Task)),
        "{:?}",
        scan.opened
    );
    // Asked for, a process without smaps says so.
    let p = backend
        .process(NORMAL, [Field::MemoryFullInfo].into_iter().collect())
        .unwrap();
    assert_eq!(
        p.field_errors,
        vec![(Field::MemoryFullInfo, ErrorKind::Unsupported)]
    );
}

#[test]
fn zombies_have_no_memory_maps_and_fixtures_no_ionice() {
    let fields = [Field::MemoryMaps, Field::MemoryFullInfo, Field::Ionice]
        .into_iter()
        .collect();
    let p = fixture().process(ZOMBIE, fields).unwrap();
    assert_eq!(
        p.field_errors,
        vec![
            (Field::MemoryFullInfo, ErrorKind::ZombieProcess),
            (Field::MemoryMaps, ErrorKind::ZombieProcess),
            (Field::Ionice, ErrorKind::Unsupported),
        ]
    );
}
