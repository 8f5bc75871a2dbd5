//! `/proc/<pid>/smaps` and `smaps_rollup`: a header line per mapping, then
//! `Key:  value kB` lines (proc(5)).

use std::collections::HashMap;

use super::{ParseError, lossy, number, numbered_lines, tokens};
use crate::backend::{MemoryFullInfo, MemoryMap};

/// A `Key:  value kB` line: the key, and the value in bytes when it is a
/// number.
type SizeLine<'a> = (&'a [u8], Option<u64>);

/// The key and size of a `Key:  value kB` line; `None` for a header line.
fn size_line(line: &[u8], n: usize) -> Result<Option<SizeLine<'_>>, ParseError> {
    let mut it = tokens(line);
    let Some(key) = it.next() else {
        return Ok(None);
    };
    let Some(key) = key.strip_suffix(b":") else {
        return Ok(None);
    };
    // VmFlags (and any other line of words) carries no size.
    let value = match it.next() {
        Some(v) if v.iter().all(u8::is_ascii_digit) => Some(number::<u64>(v, "size", n)? * 1024),
        _ => None,
    };
    Ok(Some((key, value)))
}

/// psutil's `uss`, `pss` and `swap` from `smaps_rollup`, or from a whole
/// `smaps` summed: uss is every `Private_*` line (clean, dirty, hugetlb),
/// pss the `Pss:` lines, swap the `Swap:` lines. An empty file (a kernel
/// thread) is all zeros.
pub fn parse_full_info(bytes: &[u8]) -> Result<MemoryFullInfo, ParseError> {
    let mut info = MemoryFullInfo::default();
    for (n, line) in numbered_lines(bytes) {
        let Some((key, Some(value))) = size_line(line, n)? else {
            continue;
        };
        match key {
            b"Pss" => info.pss += value,
            b"Swap" => info.swap += value,
            k if k.starts_with(b"Private") => info.uss += value,
            _ => {}
        }
    }
    Ok(info)
}

/// psutil's `memory_maps` from `smaps`: one entry per mapping, or with
/// `grouped` one per path (in the order paths first appear) with the sizes
/// added up. A mapping without a path is "[anon]"; a path's " (deleted)"
/// suffix is dropped unless `exists` says a file of that very name exists
/// (as psutil does).
pub fn parse_memory_maps(
    bytes: &[u8],
    grouped: bool,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<MemoryMap>, ParseError> {
    let mut maps: Vec<MemoryMap> = Vec::new();
    for (n, line) in numbered_lines(bytes) {
        match size_line(line, n)? {
            Some((key, value)) => {
                let Some(map) = maps.last_mut() else {
                    return Err(ParseError::new(n, "a size before any mapping"));
                };
                let Some(value) = value else {
                    if key == b"VmFlags" {
                        continue;
                    }
                    return Err(ParseError::new(
                        n,
                        format!("no size on line {:?}", lossy(line)),
                    ));
                };
                let slot = match key {
                    b"Rss" => &mut map.rss,
                    b"Size" => &mut map.size,
                    b"Pss" => &mut map.pss,
                    b"Shared_Clean" => &mut map.shared_clean,
                    b"Shared_Dirty" => &mut map.shared_dirty,
                    b"Private_Clean" => &mut map.private_clean,
                    b"Private_Dirty" => &mut map.private_dirty,
                    b"Referenced" => &mut map.referenced,
                    b"Anonymous" => &mut map.anonymous,
                    b"Swap" => &mut map.swap,
                    _ => continue,
                };
                *slot = value;
            }
            None if line.trim_ascii().is_empty() => {}
            None => maps.push(header(line, n, &exists)?),
        }
    }
    if !grouped {
        return Ok(maps);
    }
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<MemoryMap> = Vec::new();
    for map in maps {
        match by_path.get(&map.path) {
            Some(&i) => groups[i].add(&map),
            None => {
                by_path.insert(map.path.clone(), groups.len());
                groups.push(MemoryMap {
                    addr: String::new(),
                    perms: String::new(),
                    ..map
                });
            }
        }
    }
    Ok(groups)
}

/// A mapping's header: `addr perms offset dev inode [path]`; the path is
/// the rest of the line and may hold spaces.
fn header(line: &[u8], n: usize, exists: &impl Fn(&str) -> bool) -> Result<MemoryMap, ParseError> {
    let mut rest = line;
    let mut fields = [&b""[..]; 5];
    for field in &mut fields {
        rest = rest.trim_ascii_start();
        let end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        *field = &rest[..end];
        rest = &rest[end..];
    }
    if fields[4].is_empty() {
        return Err(ParseError::new(
            n,
            format!("not a mapping header: {:?}", lossy(line)),
        ));
    }
    let mut path = lossy(rest.trim_ascii());
    if path.is_empty() {
        path = "[anon]".to_owned();
    } else if let Some(live) = path.strip_suffix(" (deleted)")
        && !exists(&path)
    {
        path = live.to_owned();
    }
    Ok(MemoryMap {
        path,
        addr: lossy(fields[0]),
        perms: lossy(fields[1]),
        ..MemoryMap::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/linux/proc")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn rollup_sums_every_private_line() {
        let info = parse_full_info(&fixture("15830/smaps_rollup")).unwrap();
        // Private_Clean 120 + Private_Dirty 9660 + Private_Hugetlb 8 kB.
        assert_eq!(
            info,
            MemoryFullInfo {
                uss: (120 + 9660 + 8) * 1024,
                pss: 10_433 * 1024,
                swap: 16 * 1024,
            }
        );
    }

    #[test]
    fn smaps_summed_agrees_with_its_mappings() {
        let smaps = fixture("15830/smaps");
        let info = parse_full_info(&smaps).unwrap();
        let maps = parse_memory_maps(&smaps, false, |_| false).unwrap();
        let sum = |f: fn(&MemoryMap) -> u64| maps.iter().map(f).sum::<u64>();
        assert_eq!(info.pss, sum(|m| m.pss));
        assert_eq!(info.swap, sum(|m| m.swap));
        assert_eq!(info.uss, sum(|m| m.private_clean + m.private_dirty));
        assert!(info.uss > 0 && info.pss > 0);
    }

    #[test]
    fn mappings_one_by_one() {
        let maps = parse_memory_maps(&fixture("15830/smaps"), false, |_| false).unwrap();
        assert_eq!(maps.len(), 8);
        let first = &maps[0];
        assert_eq!(first.addr, "55d0c3e00000-55d0c3e02000");
        assert_eq!(first.perms, "r--p");
        assert_eq!(first.path, "/usr/bin/python3.11");
        assert_eq!((first.size, first.rss, first.pss), (8192, 8192, 8192));
        assert!(maps.iter().any(|m| m.path == "[heap]"));
        let anon = maps.iter().find(|m| m.path == "[anon]").unwrap();
        assert_eq!(anon.anonymous, anon.rss);
        assert_eq!(anon.private_dirty, 10_240 * 1024);
        // " (deleted)" goes when no file has that very name.
        assert!(maps.iter().any(|m| m.path == "/tmp/fx/gone lib.so"));
    }

    #[test]
    fn mappings_grouped_by_path_in_first_seen_order() {
        let smaps = fixture("15830/smaps");
        let one_by_one = parse_memory_maps(&smaps, false, |_| false).unwrap();
        let grouped = parse_memory_maps(&smaps, true, |_| false).unwrap();
        let paths: Vec<&str> = grouped.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/bin/python3.11",
                "[heap]",
                "[anon]",
                "/tmp/fx/gone lib.so",
                "[stack]",
                "[vdso]"
            ]
        );
        let python = &grouped[0];
        assert!(python.addr.is_empty() && python.perms.is_empty());
        let want: u64 = one_by_one
            .iter()
            .filter(|m| m.path == "/usr/bin/python3.11")
            .map(|m| m.rss)
            .sum();
        assert_eq!(python.rss, want);
        // A file really named "... (deleted)" keeps the suffix.
        let kept = parse_memory_maps(&smaps, true, |p| p.ends_with(" (deleted)")).unwrap();
        assert!(
            kept.iter()
                .any(|m| m.path == "/tmp/fx/gone lib.so (deleted)")
        );
    }

    #[test]
    fn a_kernel_thread_has_no_mappings() {
        assert_eq!(parse_memory_maps(b"", true, |_| false).unwrap(), []);
        assert_eq!(parse_full_info(b"").unwrap(), MemoryFullInfo::default());
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(parse_memory_maps(b"Rss: 4 kB\n", false, |_| false).is_err());
        let bad = b"00400000-00401000 r-xp 00000000 08:01 12 /bin/x\nRss: lots kB\n";
        assert_eq!(
            parse_memory_maps(bad, false, |_| false).unwrap_err().line,
            2
        );
        assert!(parse_memory_maps(b"garbage\n", false, |_| false).is_err());
        assert!(parse_full_info(b"Pss: 99999999999999999999 kB\n").is_err());
    }
}
