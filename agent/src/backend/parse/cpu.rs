//! CPU records: the `cpu` and counter lines of `/proc/stat`, `/proc/cpuinfo`
//! and `/proc/loadavg`, with psutil's meanings (`psutil/_pslinux.py`).

use std::collections::BTreeSet;

use super::{ParseError, lossy, number, numbered_lines, tokens};
use crate::backend::system::{CpuStats, CpuTimesSet, LoadAvg, SystemCpuTimes};

/// The CPU times of `/proc/stat`: the `cpu` line as the total and the
/// `cpuN` lines, in file order, per CPU; clock ticks become seconds with
/// `clk_tck`. Modes the kernel does not print (steal before 2.6.11, guest
/// before 2.6.24, guest_nice before 3.2) are `None`.
pub fn parse_cpu_times(bytes: &[u8], clk_tck: u64) -> Result<CpuTimesSet, ParseError> {
    if clk_tck == 0 {
        return Err(ParseError::new(0, "clock ticks per second is 0"));
    }
    let mut total = None;
    let mut per_cpu = Vec::new();
    for (n, line) in numbered_lines(bytes) {
        let mut it = tokens(line);
        let Some(label) = it.next() else { continue };
        if !label.starts_with(b"cpu") {
            continue;
        }
        let mut values = Vec::with_capacity(10);
        for token in it.take(10) {
            let ticks: u64 = number(token, &lossy(label), n)?;
            values.push(ticks as f64 / clk_tck as f64);
        }
        if values.len() < 4 {
            return Err(ParseError::new(
                n,
                format!(
                    "{}: {} values, expected at least 4",
                    lossy(label),
                    values.len()
                ),
            ));
        }
        let at = |i: usize| values.get(i).copied();
        let times = SystemCpuTimes {
            user: values[0],
            nice: values[1],
            system: values[2],
            idle: values[3],
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
            guest: at(8),
            guest_nice: at(9),
        };
        if label == b"cpu" {
            total = Some(times);
        } else {
            per_cpu.push(times);
        }
    }
    let total = total.ok_or_else(|| ParseError::new(0, "no cpu line"))?;
    Ok(CpuTimesSet { total, per_cpu })
}

/// psutil's `cpu_stats()`: the first number of the `ctxt`, `intr` and
/// `softirq` lines of `/proc/stat`. Linux counts no system calls.
pub fn parse_cpu_stats(bytes: &[u8]) -> Result<CpuStats, ParseError> {
    let (mut ctxt, mut intr, mut softirq) = (None, None, None);
    for (n, line) in numbered_lines(bytes) {
        let mut it = tokens(line);
        let slot = match it.next() {
            Some(b"ctxt") => &mut ctxt,
            Some(b"intr") => &mut intr,
            Some(b"softirq") => &mut softirq,
            _ => continue,
        };
        let value = it.next().unwrap_or_default();
        *slot = Some(number::<u64>(value, "counter", n)?);
    }
    Ok(CpuStats {
        ctx_switches: ctxt.ok_or_else(|| ParseError::new(0, "no ctxt line"))?,
        interrupts: intr.ok_or_else(|| ParseError::new(0, "no intr line"))?,
        soft_interrupts: softirq,
        syscalls: None,
    })
}

/// The `cpu MHz` values of `/proc/cpuinfo`, one per processor, in file
/// order (psutil's `_cpu_get_cpuinfo_freq`); empty where the architecture
/// does not print them.
pub fn parse_cpuinfo_mhz(bytes: &[u8]) -> Result<Vec<f64>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in numbered_lines(bytes) {
        if !line.to_ascii_lowercase().starts_with(b"cpu mhz") {
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        out.push(number(line[colon + 1..].trim_ascii(), "cpu MHz", n)?);
    }
    Ok(out)
}

/// Physical cores from `/proc/cpuinfo`, psutil's second method: the sum of
/// `cpu cores` over distinct `physical id`s. `None` when the file names
/// neither (ARM, for one).
pub fn parse_cpuinfo_cores(bytes: &[u8]) -> Option<u32> {
    let mut packages = std::collections::BTreeMap::new();
    let (mut physical_id, mut cores) = (None, None);
    // A blank line ends a processor's section; the file ends with one,
    // and the extra empty line below ends a file that does not.
    for line in bytes.split(|b| *b == b'\n').chain([&b""[..]]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            if let (Some(id), Some(n)) = (physical_id.take(), cores.take()) {
                packages.insert(id, n);
            }
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (key, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        let value = std::str::from_utf8(value).ok()?.parse::<u32>().ok();
        match key {
            b"physical id" => physical_id = value,
            b"cpu cores" => cores = value,
            _ => {}
        }
    }
    let sum: u32 = packages.values().sum();
    (sum > 0).then_some(sum)
}

/// Physical cores from the sibling lists of each CPU
/// (`topology/core_cpus_list` or `thread_siblings_list`), psutil's first
/// method: the number of distinct lists. `None` for no list.
pub fn count_distinct_lists<'a>(lists: impl IntoIterator<Item = &'a [u8]>) -> Option<u32> {
    let distinct: BTreeSet<&[u8]> = lists.into_iter().map(|l| l.trim_ascii()).collect();
    u32::try_from(distinct.len()).ok().filter(|n| *n > 0)
}

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`.
pub fn parse_loadavg(bytes: &[u8]) -> Result<LoadAvg, ParseError> {
    let mut it = tokens(bytes);
    let mut next = |what: &str| number::<f64>(it.next().unwrap_or_default(), what, 1);
    Ok(LoadAvg {
        load1: next("load1")?,
        load5: next("load5")?,
        load15: next("load15")?,
    })
}

/// How many CPUs a sysfs CPU list names (`devices/system/cpu/online`:
/// "0-3,6,8-9"), the count glibc's `sysconf(_SC_NPROCESSORS_ONLN)` gives.
pub fn parse_cpu_list_count(bytes: &[u8]) -> Result<u32, ParseError> {
    let mut count = 0u32;
    for range in bytes
        .trim_ascii()
        .split(|b| *b == b',')
        .filter(|r| !r.is_empty())
    {
        let mut ends = range.splitn(2, |b| *b == b'-');
        let first: u32 = number(ends.next().unwrap_or_default(), "CPU number", 0)?;
        let last: u32 = match ends.next() {
            Some(last) => number(last, "CPU number", 0)?,
            None => first,
        };
        let n = last.checked_sub(first).ok_or_else(|| {
            ParseError::new(0, format!("CPU range backwards: {:?}", lossy(range)))
        })?;
        count = count.saturating_add(n + 1);
    }
    Ok(count)
}

/// A sysfs file holding one number, such as a frequency in kHz.
pub fn parse_sysfs_u64(bytes: &[u8], what: &str) -> Result<u64, ParseError> {
    number(bytes.trim_ascii(), what, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample from this machine (Debian 12, kernel 6.18.44, 2 CPUs), with the
    // intr line cut.
    const STAT: &[u8] = br#"cpu  50315 0 6168 89606 411 0 39 88 0 0
cpu0 24841 0 2690 45620 91 0 5 42 0 0
cpu1 25473 0 3478 43986 320 0 34 46 0 0
intr 327584 0 0 0
ctxt 330852
btime 1795625947
processes 10979
procs_running 3
procs_blocked 0
softirq 141074 0 25912 4 3478 16265 0 197 35335 0 59883
"#;

    #[test]
    fn cpu_times_in_seconds_total_and_per_cpu() {
        let set = parse_cpu_times(STAT, 100).unwrap();
        assert_eq!(set.total.user, 503.15);
        assert_eq!(set.total.idle, 896.06);
        assert_eq!(set.total.iowait, Some(4.11));
        assert_eq!(set.total.steal, Some(0.88));
        assert_eq!(set.total.guest_nice, Some(0.0));
        assert_eq!(set.per_cpu.len(), 2);
        assert_eq!(set.per_cpu[1].system, 34.78);
        // A kernel before 2.6.11 prints seven modes.
        let old = parse_cpu_times(b"cpu 1 2 3 4 5 6 7\n", 100).unwrap();
        assert_eq!(old.total.softirq, Some(0.07));
        assert_eq!(old.total.steal, None);
        assert_eq!(old.total.guest, None);
        assert!(parse_cpu_times(b"cpu 1 2\n", 100).is_err());
        assert_eq!(
            parse_cpu_times(b"intr 1\ncpu 1 x 3 4\n", 100)
                .unwrap_err()
                .line,
            2
        );
        assert!(parse_cpu_times(b"intr 1\n", 100).is_err());
        assert!(parse_cpu_times(STAT, 0).is_err());
    }

    #[test]
    fn cpu_stats_take_the_first_number_of_each_counter() {
        let stats = parse_cpu_stats(STAT).unwrap();
        assert_eq!(
            stats,
            CpuStats {
                ctx_switches: 330_852,
                interrupts: 327_584,
                soft_interrupts: Some(141_074),
                syscalls: None,
            }
        );
        assert!(parse_cpu_stats(b"intr 1\n").is_err());
        assert_eq!(
            parse_cpu_stats(b"ctxt 1\nintr 2\n")
                .unwrap()
                .soft_interrupts,
            None
        );
    }

    // Sample from this machine's /proc/cpuinfo, cut to the lines read.
    const CPUINFO: &[u8] = b"processor\t: 0\ncpu MHz\t\t: 2599.998\nphysical id\t: 0\n\
core id\t\t: 0\ncpu cores\t: 2\n\nprocessor\t: 1\ncpu MHz\t\t: 2599.998\n\
physical id\t: 0\ncore id\t\t: 1\ncpu cores\t: 2\n\n";

    #[test]
    fn cpuinfo_frequencies_and_cores() {
        assert_eq!(
            parse_cpuinfo_mhz(CPUINFO).unwrap(),
            vec![2599.998, 2599.998]
        );
        assert_eq!(parse_cpuinfo_cores(CPUINFO), Some(2));
        // Two packages of four cores, without the final blank line.
        let two = b"physical id\t: 0\ncpu cores\t: 4\n\nphysical id\t: 1\ncpu cores\t: 4";
        assert_eq!(parse_cpuinfo_cores(two), Some(8));
        // ARM names neither.
        assert_eq!(
            parse_cpuinfo_cores(b"processor\t: 0\nBogoMIPS\t: 50.00\n"),
            None
        );
        assert!(parse_cpuinfo_mhz(b"processor\t: 0\n").unwrap().is_empty());
        assert!(parse_cpuinfo_mhz(b"cpu MHz\t: fast\n").is_err());
    }

    #[test]
    fn distinct_sibling_lists_are_cores() {
        let lists: [&[u8]; 4] = [b"0,2\n", b"1,3\n", b"0,2\n", b"1,3"];
        assert_eq!(count_distinct_lists(lists), Some(2));
        assert_eq!(count_distinct_lists([]), None);
    }

    #[test]
    fn loadavg() {
        // Sample from this machine.
        let avg = parse_loadavg(b"2.39 1.32 1.32 5/132 26413\n").unwrap();
        assert_eq!(
            avg,
            LoadAvg {
                load1: 2.39,
                load5: 1.32,
                load15: 1.32
            }
        );
        assert!(parse_loadavg(b"2.39 1.32\n").is_err());
        assert_eq!(
            parse_sysfs_u64(b"2600000\n", "scaling_cur_freq"),
            Ok(2_600_000)
        );
    }
}
