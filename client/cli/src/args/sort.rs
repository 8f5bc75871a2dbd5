//! `ps --sort`: the keys as typed, checked against the process fields
//! when the flags are parsed, and the order they put a listing in; and
//! `df --sort`'s column, which `crate::system` orders its rows by.

use std::cmp::Ordering;

use hostscope_client::{
    Process,
    proto::{EnumName, ProcessField as F},
};

/// One key of `--sort`: a path into the process record
/// (`memory_info.rss`) and its direction.
#[derive(Debug, Clone, PartialEq)]
struct SortKey {
    path: Vec<String>,
    descending: bool,
}

/// `--sort FIELD[,FIELD]`: the keys in order of precedence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sort(Vec<SortKey>);

/// The short names `--sort` takes for what the default table shows (its
/// headers, in any case) and for what `ps` users type, with the record
/// path each stands for. `time` is user plus system CPU time, the TIME
/// column; `cpu` and `mem` are the %CPU and %MEM columns; `uss`, `pss`
/// and `swap` are memory_full_info's, which is then read as well.
const SORT_ALIASES: [(&str, &str); 18] = [
    ("rss", "memory_info.rss"),
    ("uss", "memory_full_info.uss"),
    ("pss", "memory_full_info.pss"),
    ("swap", "memory_full_info.swap"),
    ("mem", "memory_percent"),
    ("%mem", "memory_percent"),
    ("pmem", "memory_percent"),
    ("cpu", "cpu_percent"),
    ("%cpu", "cpu_percent"),
    ("pcpu", "cpu_percent"),
    ("vms", "memory_info.vms"),
    ("vsz", "memory_info.vms"),
    ("user", "username"),
    ("threads", "num_threads"),
    ("fds", "num_fds"),
    ("start", "create_time"),
    ("time", CPU_TOTAL),
    ("command", "cmdline"),
];

/// The path of the sort key that adds `cpu_times.user` and
/// `cpu_times.system`, as the TIME column does.
const CPU_TOTAL: &str = "cpu_times.total";

/// Parses `--sort`: field names, CSV column names or the short names of
/// [`SORT_ALIASES`], in any case; `-` before one for descending.
pub fn parse_sort(s: &str) -> Result<Sort, String> {
    let mut keys = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (descending, typed) = match part.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, part),
        };
        let lower = typed.to_ascii_lowercase();
        let name = SORT_ALIASES
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map_or(lower.as_str(), |(_, path)| path);
        let path: Vec<String> = name.split('.').map(str::to_owned).collect();
        let known = path[0] == "pid" || F::from_short_name(&path[0]).is_some();
        if !known || path.len() > 2 {
            let aliases: Vec<&str> = SORT_ALIASES.iter().map(|(alias, _)| *alias).collect();
            return Err(format!(
                "cannot sort by {typed:?}: name a field (pid, name, create_time, ...), a \
                 nested one as in CSV columns (memory_info.rss, cpu_times.user), or one of {}",
                aliases.join(", ")
            ));
        }
        keys.push(SortKey { path, descending });
    }
    if keys.is_empty() {
        return Err("--sort needs a field, such as -memory_info.rss or -rss".to_owned());
    }
    Ok(Sort(keys))
}

impl Sort {
    /// The fields the keys read, so that the agent is asked for them.
    pub fn fields(&self) -> Vec<F> {
        self.0
            .iter()
            .filter_map(|k| F::from_short_name(&k.path[0]))
            .collect()
    }

    /// Whether no order was asked for: the agent's order stands.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Orders `processes` by the keys; a process without a key's value
    /// comes after those with one, whichever the direction. Stable, so
    /// equal keys keep the order they had.
    pub fn apply(&self, processes: &mut [Process]) {
        if self.0.is_empty() {
            return;
        }
        let value = |p: &Process, key: &SortKey| {
            let record = serde_json::to_value(p.proto()).unwrap_or_default();
            if key.path.join(".") == CPU_TOTAL {
                let times = record.get("cpu_times")?;
                let total = times.get("user")?.as_f64()? + times.get("system")?.as_f64()?;
                return Some(serde_json::Value::from(total));
            }
            key.path
                .iter()
                .try_fold(record, |v, k| v.get(k).cloned())
                .filter(|v| !v.is_null())
        };
        processes.sort_by(|a, b| {
            for key in &self.0 {
                let order = match (value(a, key), value(b, key)) {
                    (Some(x), Some(y)) => {
                        let order = compare(&x, &y);
                        if key.descending {
                            order.reverse()
                        } else {
                            order
                        }
                    }
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
            Ordering::Equal
        });
    }
}

/// Numbers by value, anything else by its text.
fn compare(a: &serde_json::Value, b: &serde_json::Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// `--sort` of `df`: a column and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DfSort {
    pub(crate) key: DfKey,
    pub(crate) descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DfKey {
    Host,
    Device,
    Mountpoint,
    Fstype,
    Total,
    Used,
    Free,
    Percent,
}

/// Parses `--sort` of `df`: percent, size, used, avail, mountpoint,
/// device, fstype or host, `-` before it for descending.
pub fn parse_df_sort(s: &str) -> Result<DfSort, String> {
    let (descending, name) = match s.trim().strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, s.trim()),
    };
    let key = match name.to_ascii_lowercase().as_str() {
        "host" => DfKey::Host,
        "device" | "filesystem" | "source" => DfKey::Device,
        "mountpoint" | "mounted" | "target" => DfKey::Mountpoint,
        "fstype" | "type" => DfKey::Fstype,
        "total" | "size" => DfKey::Total,
        "used" => DfKey::Used,
        "free" | "avail" => DfKey::Free,
        "percent" | "use%" | "pcent" => DfKey::Percent,
        _ => {
            return Err(format!(
                "cannot sort by {name:?}: sort by percent, size, used, avail, mountpoint, \
                 device, fstype or host (\"-percent\" for the fullest first)"
            ));
        }
    };
    Ok(DfSort { key, descending })
}

#[cfg(test)]
mod tests {
    use hostscope_client::proto;

    use super::*;

    fn listed(pid: u32, name: &str, rss: Option<u64>) -> Process {
        Process::new(
            proto::Process {
                pid,
                name: Some(name.to_owned()),
                memory_info: rss.map(|rss| proto::MemoryInfo {
                    rss,
                    ..Default::default()
                }),
                ..Default::default()
            },
            &[F::Name, F::MemoryInfo],
        )
    }

    #[test]
    fn sort_orders_by_each_key_in_turn_and_puts_unknowns_last() {
        let mut all = vec![
            listed(3, "sh", Some(100)),
            listed(1, "init", None),
            listed(2, "nginx", Some(900)),
            listed(4, "bash", Some(100)),
        ];
        let pids = |all: &[Process]| all.iter().map(Process::pid).collect::<Vec<_>>();
        parse_sort("-memory_info.rss,name")
            .expect("sort")
            .apply(&mut all);
        assert_eq!(pids(&all), [2, 4, 3, 1]);
        parse_sort("name").expect("sort").apply(&mut all);
        assert_eq!(pids(&all), [4, 1, 2, 3]);
        parse_sort("-pid").expect("sort").apply(&mut all);
        assert_eq!(pids(&all), [4, 3, 2, 1]);
        let sort = parse_sort("-memory_info.rss, create_time").expect("sort");
        assert_eq!(sort.fields(), [F::MemoryInfo, F::CreateTime]);
    }

    #[test]
    fn sort_takes_the_short_names_the_table_shows_in_any_case() {
        let mut all = vec![
            listed(3, "sh", Some(100)),
            listed(1, "init", None),
            listed(2, "nginx", Some(900)),
        ];
        let pids = |all: &[Process]| all.iter().map(Process::pid).collect::<Vec<_>>();
        for typed in ["-rss", "-RSS", "-Memory_Info.Rss"] {
            all.sort_by_key(Process::pid);
            parse_sort(typed).expect(typed).apply(&mut all);
            assert_eq!(pids(&all), [2, 3, 1], "{typed}");
        }
        assert_eq!(parse_sort("rss"), parse_sort("memory_info.rss"));
        assert_eq!(parse_sort("USER"), parse_sort("username"));
        assert_eq!(parse_sort("threads"), parse_sort("num_threads"));
        assert_eq!(parse_sort("-time").expect("time").fields(), [F::CpuTimes]);
        let cpu = |pid, user, system| {
            Process::new(
                proto::Process {
                    pid,
                    cpu_times: Some(proto::CpuTimes {
                        user,
                        system,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                &[F::CpuTimes],
            )
        };
        let mut busy = vec![cpu(1, 5.0, 0.0), cpu(2, 1.0, 9.0), cpu(3, 3.0, 3.0)];
        parse_sort("-time").expect("time").apply(&mut busy);
        assert_eq!(pids(&busy), [2, 3, 1]);
        for typed in ["cpu", "%CPU", "pcpu"] {
            assert_eq!(parse_sort(typed), parse_sort("cpu_percent"), "{typed}");
        }
        for typed in ["mem", "%mem", "PMEM"] {
            assert_eq!(parse_sort(typed), parse_sort("memory_percent"), "{typed}");
        }
    }

    #[test]
    fn sort_takes_memory_full_info_and_cpu_num_and_asks_for_them() {
        for (typed, path, field) in [
            ("uss", "memory_full_info.uss", F::MemoryFullInfo),
            ("-PSS", "-memory_full_info.pss", F::MemoryFullInfo),
            ("swap", "memory_full_info.swap", F::MemoryFullInfo),
            ("cpu_num", "cpu_num", F::CpuNum),
            ("-num_threads", "-num_threads", F::NumThreads),
        ] {
            let sort = parse_sort(typed).expect(typed);
            assert_eq!(Ok(&sort), parse_sort(path).as_ref(), "{typed}");
            assert_eq!(sort.fields(), [field], "{typed}");
        }
        let full = |pid, uss| {
            Process::new(
                proto::Process {
                    pid,
                    memory_full_info: Some(proto::MemoryFullInfo {
                        uss,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                &[F::MemoryFullInfo],
            )
        };
        let mut all = vec![full(1, 8 << 20), full(2, 64 << 20), full(3, 1 << 20)];
        parse_sort("-uss").expect("uss").apply(&mut all);
        let pids: Vec<u32> = all.iter().map(Process::pid).collect();
        assert_eq!(pids, [2, 1, 3]);
    }

    #[test]
    fn sort_names_what_it_takes() {
        for bad in ["rsss", "", "memory_info.rss.x", "-"] {
            let e = parse_sort(bad).expect_err(bad);
            assert!(e.contains("memory_info.rss"), "{bad}: {e}");
        }
    }
}
