//! Memory records: `/proc/meminfo`, `/proc/vmstat` and the low watermarks
//! of `/proc/zoneinfo`, worked into psutil's `virtual_memory()` and
//! `swap_memory()` (`psutil/_pslinux.py` of psutil 7, after procps' `free`).

use std::collections::BTreeMap;

use super::{ParseError, key_values, lossy, number, numbered_lines, tokens};
use crate::backend::system::{SwapMemory, VirtualMemory, percent};

/// `/proc/meminfo`'s values in bytes by key (the kernel prints KiB, says
/// "kB"; the few counts without a unit, such as `HugePages_Total`, are
/// kept as printed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meminfo(BTreeMap<String, u64>);

impl Meminfo {
    /// The value of `key` (without the colon), where the kernel prints it.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.0.get(key).copied()
    }

    fn required(&self, key: &str) -> Result<u64, ParseError> {
        self.get(key)
            .ok_or_else(|| ParseError::new(0, format!("no {key}: line")))
    }
}

/// Reads every `Key: value [kB]` line of `/proc/meminfo`.
pub fn parse_meminfo(bytes: &[u8]) -> Result<Meminfo, ParseError> {
    let mut map = BTreeMap::new();
    for (n, key, value) in key_values(bytes) {
        let key = lossy(key);
        let mut it = tokens(value);
        let amount: u64 = number(it.next().unwrap_or_default(), &key, n)?;
        let amount = match it.next() {
            Some(b"kB") => amount
                .checked_mul(1024)
                .ok_or_else(|| ParseError::new(n, format!("{key}: {amount} kB overflows")))?,
            _ => amount,
        };
        map.insert(key, amount);
    }
    Ok(Meminfo(map))
}

/// The sum of the `low` watermarks of `/proc/zoneinfo`, in pages.
pub fn parse_zoneinfo_low(bytes: &[u8]) -> Result<u64, ParseError> {
    let mut pages = 0u64;
    for (n, line) in numbered_lines(bytes) {
        let mut it = tokens(line);
        if it.next() == Some(b"low") {
            let low: u64 = number(it.next().unwrap_or_default(), "low", n)?;
            pages = pages.saturating_add(low);
        }
    }
    Ok(pages)
}

/// Whether [`virtual_memory`] needs the zoneinfo watermarks: the kernel
/// has no `MemAvailable` (before 3.14) or printed 0 (psutil#1915).
pub fn needs_zoneinfo(mem: &Meminfo) -> bool {
    matches!(mem.get("MemAvailable"), None | Some(0))
}

/// psutil's `virtual_memory()` from `/proc/meminfo`; `watermark_low` is
/// [`parse_zoneinfo_low`] in bytes where [`needs_zoneinfo`] and the file
/// could be read. A member the kernel does not print is `None` (psutil
/// warns and gives 0).
pub fn virtual_memory(
    mem: &Meminfo,
    watermark_low: Option<u64>,
) -> Result<VirtualMemory, ParseError> {
    let total = mem.required("MemTotal")?;
    let free = mem.required("MemFree")?;
    let buffers = mem.get("Buffers");
    // As `free` does since procps 3.3.12: reclaimable slab is cache.
    let cached = mem
        .get("Cached")
        .map(|c| c.saturating_add(mem.get("SReclaimable").unwrap_or(0)));
    let shared = mem.get("Shmem").or_else(|| mem.get("MemShared"));
    let active = mem.get("Active");
    let inactive = mem.get("Inactive").or_else(|| {
        Some(
            mem.get("Inact_dirty")?
                .saturating_add(mem.get("Inact_clean")?)
                .saturating_add(mem.get("Inact_laundry")?),
        )
    });
    let slab = mem.get("Slab");
    let available = match mem.get("MemAvailable") {
        Some(avail) if avail > 0 => avail as f64,
        _ => estimate_available(mem, free, watermark_low),
    };
    // More than the total: the figures are the host's seen from a
    // container, and psutil takes free instead.
    let available = if available < 0.0 {
        0
    } else if available > total as f64 {
        free
    } else {
        available as u64
    };
    // psutil 7: what is not available is used (before, total - free -
    // buffers - cached).
    let used = total.saturating_sub(available);
    Ok(VirtualMemory {
        total,
        available,
        percent: percent(total.saturating_sub(available), total),
        used,
        free,
        active,
        inactive,
        buffers,
        cached,
        shared,
        slab,
        wired: None,
    })
}

/// psutil's `calculate_avail_vmem`: the kernel's own MemAvailable formula
/// (commit 34e431b0ae39), or free + cached where a term is missing.
fn estimate_available(mem: &Meminfo, free: u64, watermark_low: Option<u64>) -> f64 {
    let fallback = free.saturating_add(mem.get("Cached").unwrap_or(0)) as f64;
    let (Some(active_file), Some(inactive_file), Some(reclaimable), Some(low)) = (
        mem.get("Active(file)"),
        mem.get("Inactive(file)"),
        mem.get("SReclaimable"),
        watermark_low,
    ) else {
        return fallback;
    };
    let low = low as f64;
    let pagecache = (active_file + inactive_file) as f64;
    let reclaimable = reclaimable as f64;
    free as f64 - low + (pagecache - (pagecache / 2.0).min(low)) + reclaimable
        - (reclaimable / 2.0).min(low)
}

/// psutil's `swap_memory()`: sizes from `/proc/meminfo`, and pages swapped
/// in and out from `/proc/vmstat` where it was read (`pswpin`, `pswpout`,
/// counted in 4 KiB units whatever the page size, as psutil multiplies).
pub fn swap_memory(mem: &Meminfo, vmstat: Option<&[u8]>) -> Result<SwapMemory, ParseError> {
    let total = mem.required("SwapTotal")?;
    let free = mem.required("SwapFree")?;
    let used = total.saturating_sub(free);
    let (mut sin, mut sout) = (None, None);
    if let Some(vmstat) = vmstat {
        for (n, line) in numbered_lines(vmstat) {
            let mut it = tokens(line);
            let slot = match it.next() {
                Some(b"pswpin") => &mut sin,
                Some(b"pswpout") => &mut sout,
                _ => continue,
            };
            let pages: u64 = number(it.next().unwrap_or_default(), "pswp", n)?;
            *slot = Some(pages.saturating_mul(4 * 1024));
        }
    }
    Ok(SwapMemory {
        total,
        used,
        free,
        percent: SwapMemory::percent_of(used, total),
        sin,
        sout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample from this machine (Debian 12, kernel 6.18.44), the lines psutil
    // reads.
    const MEMINFO: &[u8] = br#"MemTotal:       24684084 kB
MemFree:        22626880 kB
MemAvailable:   24089424 kB
Buffers:           66848 kB
Cached:          1455288 kB
SwapCached:            0 kB
Active:           668672 kB
Inactive:        1054196 kB
Active(file):     432732 kB
Inactive(file):  1025904 kB
Shmem:              4516 kB
Slab:             222500 kB
SReclaimable:     184960 kB
SwapTotal:       1048572 kB
SwapFree:         786428 kB
HugePages_Total:       0
"#;

    #[test]
    fn virtual_memory_as_psutil() {
        let mem = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(mem.get("HugePages_Total"), Some(0));
        assert!(!needs_zoneinfo(&mem));
        let vm = virtual_memory(&mem, None).unwrap();
        let kib = |k: u64| k * 1024;
        assert_eq!(vm.total, kib(24_684_084));
        assert_eq!(vm.available, kib(24_089_424));
        // (24684084 - 24089424) / 24684084 = 2.409%
        assert_eq!(vm.percent, 2.4);
        assert_eq!(vm.cached, Some(kib(1_455_288 + 184_960)));
        assert_eq!(vm.used, kib(24_684_084 - 24_089_424));
        assert_eq!(vm.shared, Some(kib(4516)));
        assert_eq!(vm.slab, Some(kib(222_500)));
        assert_eq!(vm.active, Some(kib(668_672)));
        assert_eq!(vm.inactive, Some(kib(1_054_196)));
        assert_eq!(vm.buffers, Some(kib(66_848)));
        assert_eq!(vm.wired, None);
    }

    #[test]
    fn available_without_memavailable_follows_the_kernel_formula() {
        let text = b"MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 300 kB\n\
Active(file): 200 kB\nInactive(file): 200 kB\nSReclaimable: 40 kB\n";
        let mem = parse_meminfo(text).unwrap();
        assert!(needs_zoneinfo(&mem));
        // Without zoneinfo: free + cached.
        assert_eq!(virtual_memory(&mem, None).unwrap().available, 400 * 1024);
        // 100 - 10 + (400 - 10) + (40 - 10) = 510 KiB.
        let vm = virtual_memory(&mem, Some(10 * 1024)).unwrap();
        assert_eq!(vm.available, 510 * 1024);
        assert_eq!(vm.active, None);
        assert_eq!(vm.buffers, None);
        // More available than there is: psutil takes free instead.
        let over = parse_meminfo(b"MemTotal: 10 kB\nMemFree: 4 kB\nMemAvailable: 20 kB\n").unwrap();
        let vm = virtual_memory(&over, None).unwrap();
        assert_eq!((vm.available, vm.percent), (4 * 1024, 60.0));
        assert!(virtual_memory(&parse_meminfo(b"MemFree: 1 kB\n").unwrap(), None).is_err());
        assert!(parse_meminfo(b"MemTotal: x kB\n").is_err());
    }

    #[test]
    fn zoneinfo_low_watermarks_add_up() {
        let zoneinfo = b"Node 0, zone      DMA\n  pages free     3840\n        min      33\n        low      41\n        high     49\nNode 0, zone   Normal\n        low      9000\n";
        assert_eq!(parse_zoneinfo_low(zoneinfo), Ok(9041));
    }

    #[test]
    fn swap_with_vmstat_counts_in_4_kib() {
        let mem = parse_meminfo(MEMINFO).unwrap();
        let vmstat = b"nr_free_pages 5656720\npswpin 3\npswpout 10\n";
        let swap = swap_memory(&mem, Some(vmstat)).unwrap();
        assert_eq!(swap.total, 1_048_572 * 1024);
        assert_eq!(swap.used, 262_144 * 1024);
        assert_eq!(swap.percent, 25.0);
        assert_eq!(swap.sin, Some(12_288));
        assert_eq!(swap.sout, Some(40_960));
        let unread = swap_memory(&mem, None).unwrap();
        assert_eq!((unread.sin, unread.sout), (None, None));
        let none = parse_meminfo(b"SwapTotal: 0 kB\nSwapFree: 0 kB\n").unwrap();
        assert_eq!(swap_memory(&none, None).unwrap().percent, 0.0);
    }
}
