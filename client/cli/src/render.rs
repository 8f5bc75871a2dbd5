//! One process field as text, for `ps` columns and `proc` lines, read
//! through the client's accessors so that a field the agent could not read
//! says why instead of looking empty.

use hostscope_client::{
    Error, Process,
    proto::{self, EnumName, ProcessField as F, ProcessStatus},
};

use super::{fields::Column, format, table::Align};

/// Where a value is shown: a table cell (short) or a line of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Cell,
    Line,
}

/// A column's value for `p`.
pub fn column(p: &Process, column: Column, style: Style) -> String {
    match column {
        Column::Pid => p.pid().to_string(),
        Column::Field(f) => field(p, f, style),
    }
}

/// A column's table header: the field's name in capitals, or ps's %CPU
/// and %MEM.
pub fn header(column: Column) -> String {
    match column {
        Column::Field(F::CpuPercent) => "%CPU".to_owned(),
        Column::Field(F::MemoryPercent) => "%MEM".to_owned(),
        c => c.name().to_ascii_uppercase(),
    }
}

/// How a column aligns: numbers right, text left.
pub fn align(column: Column) -> Align {
    match column {
        Column::Pid
        | Column::Field(
            F::Ppid
            | F::Nice
            | F::NumThreads
            | F::NumFds
            | F::CpuPercent
            | F::MemoryPercent
            | F::CpuNum
            | F::Threads
            | F::MemoryMaps,
        ) => Align::Right,
        Column::Field(_) => Align::Left,
    }
}

/// A field's value for `p`, or why it has none.
pub fn field(p: &Process, f: F, style: Style) -> String {
    value(p, f, style).unwrap_or_else(|e| unreadable(&e, style))
}

/// What a field the agent could not read shows instead of a value.
pub fn unreadable(e: &Error, style: Style) -> String {
    let (line, cell) = match e {
        Error::ZombieProcess { .. } => ("<zombie process>", "<zombie>"),
        Error::AccessDenied { .. } => ("<access denied>", "<denied>"),
        Error::Unsupported { .. } => ("<unsupported>", "<unsupported>"),
        Error::NoSuchProcess { .. } => ("<no such process>", "<gone>"),
        Error::Timeout { .. } => ("<timeout>", "<timeout>"),
        Error::FieldNotRequested { .. } => ("<not requested>", "-"),
        _ => ("<error>", "<error>"),
    };
    match style {
        Style::Line => line.to_owned(),
        Style::Cell => cell.to_owned(),
    }
}

/// The command as `ps` shows it: the command line, or the name in
/// brackets for kernel threads and zombies, which have none.
pub fn command(p: &Process) -> String {
    match p.cmdline() {
        Ok(args) if !args.is_empty() => args.join(" "),
        _ => {
            let name = p.name().unwrap_or("?");
            match p.status() {
                Ok(ProcessStatus::Zombie) => format!("[{name}] <defunct>"),
                _ => format!("[{name}]"),
            }
        }
    }
}

fn value(p: &Process, f: F, style: Style) -> Result<String, Error> {
    Ok(match f {
        F::Ppid => p.ppid()?.to_string(),
        F::Name => p.name()?.to_owned(),
        F::Exe => p.exe()?.to_owned(),
        F::Cmdline => p.cmdline()?.join(" "),
        F::Status => p.status()?.short_name(),
        F::Username => p.username()?.to_owned(),
        F::Uids => ids(p.uids()?),
        F::Gids => ids(p.gids()?),
        F::Terminal => match (p.terminal()?, style) {
            (Some(tty), _) => tty.to_owned(),
            (None, Style::Cell) => "?".to_owned(),
            (None, Style::Line) => "none".to_owned(),
        },
        F::Cwd => p.cwd()?.to_owned(),
        F::Nice => p.nice()?.to_string(),
        F::CreateTime => {
            let (t, now) = (p.create_time()?, format::now());
            match style {
                Style::Cell => format::start_time(t, now),
                Style::Line => format!(
                    "{} ({} ago)",
                    format::datetime(t),
                    format::duration(now - t)
                ),
            }
        }
        F::NumThreads => p.num_threads()?.to_string(),
        F::NumFds => p.num_fds()?.to_string(),
        F::NumCtxSwitches => {
            let c = p.num_ctx_switches()?;
            format!("voluntary={} involuntary={}", c.voluntary, c.involuntary)
        }
        F::CpuTimes => cpu_times(p.cpu_times()?),
        F::MemoryInfo => {
            let m = p.memory_info()?;
            let b = format::bytes;
            let known = [("shared", m.shared), ("text", m.text), ("data", m.data)];
            format!("rss={} vms={}{}", b(m.rss), b(m.vms), present(known, b))
        }
        F::IoCounters => {
            let io = p.io_counters()?;
            format!(
                "read_count={} write_count={} read_bytes={} write_bytes={}",
                io.read_count,
                io.write_count,
                format::bytes(io.read_bytes),
                format::bytes(io.write_bytes)
            )
        }
        F::Environ => {
            let vars = p.environ()?.iter().map(|(k, v)| format!("{k}={v}"));
            match style {
                Style::Cell => vars.collect::<Vec<_>>().join(" "),
                // One variable per indented line under "environ:".
                Style::Line => vars.map(|kv| format!("\n  {kv}")).collect(),
            }
        }
        F::CpuPercent => format!("{:.1}", p.cpu_percent()?),
        F::MemoryPercent => format!("{:.1}", p.memory_percent()?),
        F::Cgroup => p.cgroup()?.to_owned(),
        F::MemoryFullInfo => {
            let m = p.memory_full_info()?;
            let b = format::bytes;
            format!("uss={} pss={} swap={}", b(m.uss), b(m.pss), b(m.swap))
        }
        F::MemoryMaps => {
            let maps = p.memory_maps()?;
            match style {
                Style::Cell => maps.len().to_string(),
                Style::Line => maps
                    .iter()
                    .map(|m| format!("\n  {}", memory_map(m)))
                    .collect(),
            }
        }
        F::Threads => {
            let threads = p.threads()?;
            match style {
                Style::Cell => threads.len().to_string(),
                Style::Line => threads
                    .iter()
                    .map(|t| {
                        format!(
                            "\n  {} user={:.2} system={:.2}",
                            t.id, t.user_time, t.system_time
                        )
                    })
                    .collect(),
            }
        }
        F::Rlimits => {
            let limits = p.rlimits()?;
            let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |n| n.to_string());
            match style {
                Style::Cell => limits
                    .iter()
                    .map(|r| format!("{}={}:{}", r.resource, show(r.soft), show(r.hard)))
                    .collect::<Vec<_>>()
                    .join(" "),
                // A small table like prlimit(1): RESOURCE SOFT HARD.
                Style::Line => {
                    let mut text = format!("\n  {:<11} {:>20} {:>20}", "RESOURCE", "SOFT", "HARD");
                    for r in limits {
                        text.push_str(&format!(
                            "\n  {:<11} {:>20} {:>20}",
                            r.resource,
                            show(r.soft),
                            show(r.hard)
                        ));
                    }
                    text
                }
            }
        }
        F::CpuAffinity => p
            .cpu_affinity()?
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        F::CpuNum => p.cpu_num()?.to_string(),
        F::Ionice => {
            let n = p.ionice()?;
            let class = proto::IoNiceClass::from_wire(n.ioclass)
                .map_or_else(|| n.ioclass.to_string(), |c| c.short_name());
            format!("class={class} value={}", n.value)
        }
        F::PageFaults => {
            let f = p.page_faults()?;
            format!("minor={} major={}", f.minor, f.major)
        }
        F::Unspecified => "-".to_owned(),
    })
}

/// One mapping (or one path's mappings) on a line: address and
/// permissions when ungrouped, then sizes and the path.
fn memory_map(m: &proto::MemoryMap) -> String {
    let b = format::bytes;
    let place = match m.addr.is_empty() {
        true => String::new(),
        false => format!("{} {} ", m.addr, m.perms),
    };
    format!(
        "{place}rss={} pss={} private={} swap={} {}",
        b(m.rss),
        b(m.pss),
        b(m.private_clean + m.private_dirty),
        b(m.swap),
        m.path
    )
}

fn ids(ids: proto::Ids) -> String {
    format!(
        "real={} effective={} saved={}",
        ids.real, ids.effective, ids.saved
    )
}

fn cpu_times(t: proto::CpuTimes) -> String {
    let known = [
        ("children_user", t.children_user),
        ("children_system", t.children_system),
        ("iowait", t.iowait),
    ];
    let secs = |s: f64| format!("{s:.2}");
    format!(
        "user={:.2} system={:.2}{}",
        t.user,
        t.system,
        present(known, secs)
    )
}

/// " name=value" for each member the host's OS keeps: one it does not is
/// left out, never shown as a zero.
fn present<T: Copy, const N: usize>(
    members: [(&str, Option<T>); N],
    show: impl Fn(T) -> String,
) -> String {
    members
        .iter()
        .filter_map(|(name, value)| value.map(|v| format!(" {name}={}", show(v))))
        .collect()
}

#[cfg(test)]
mod tests {
    use proto::{ErrorKind, FieldError};

    use super::*;

    fn zombie() -> Process {
        Process::from(proto::Process {
            pid: 4242,
            ppid: Some(17),
            name: Some("defunct".to_owned()),
            status: Some(ProcessStatus::Zombie as i32),
            memory_info: Some(proto::MemoryInfo {
                rss: 0,
                ..Default::default()
            }),
            field_errors: vec![
                FieldError {
                    field: F::Exe as i32,
                    kind: ErrorKind::ZombieProcess as i32,
                },
                FieldError {
                    field: F::Cwd as i32,
                    kind: ErrorKind::AccessDenied as i32,
                },
            ],
            ..Default::default()
        })
    }

    #[test]
    fn field_errors_say_why() {
        let p = zombie();
        assert_eq!(field(&p, F::Exe, Style::Line), "<zombie process>");
        assert_eq!(field(&p, F::Exe, Style::Cell), "<zombie>");
        assert_eq!(field(&p, F::Cwd, Style::Line), "<access denied>");
        assert_eq!(field(&p, F::Status, Style::Line), "zombie");
        assert_eq!(field(&p, F::Ppid, Style::Cell), "17");
        assert_eq!(field(&p, F::MemoryInfo, Style::Line), "rss=0B vms=0B");
    }

    #[test]
    fn members_an_os_does_not_keep_are_left_out_not_zero() {
        let linux = Process::from(proto::Process {
            pid: 7,
            cpu_times: Some(proto::CpuTimes {
                user: 1.0,
                system: 0.5,
                children_user: Some(0.0),
                children_system: Some(0.25),
                iowait: Some(0.0),
            }),
            memory_info: Some(proto::MemoryInfo {
                rss: 4096,
                vms: 8192,
                shared: Some(0),
                text: Some(4096),
                data: Some(0),
            }),
            ..Default::default()
        });
        assert_eq!(
            field(&linux, F::CpuTimes, Style::Line),
            "user=1.00 system=0.50 children_user=0.00 children_system=0.25 iowait=0.00"
        );
        assert_eq!(
            field(&linux, F::MemoryInfo, Style::Line),
            "rss=4.0K vms=8.0K shared=0B text=4.0K data=0B"
        );
        // macOS keeps neither the children's times nor text and data.
        let macos = Process::from(proto::Process {
            pid: 7,
            cpu_times: Some(proto::CpuTimes {
                user: 1.0,
                system: 0.5,
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            field(&macos, F::CpuTimes, Style::Line),
            "user=1.00 system=0.50"
        );
    }

    #[test]
    fn commands_read_like_ps() {
        assert_eq!(command(&zombie()), "[defunct] <defunct>");
        let kthread = Process::from(proto::Process {
            pid: 2,
            name: Some("kthreadd".to_owned()),
            ..Default::default()
        });
        assert_eq!(command(&kthread), "[kthreadd]");
        let shell = Process::from(proto::Process {
            pid: 3,
            cmdline: vec!["bash".to_owned(), "-l".to_owned()],
            ..Default::default()
        });
        assert_eq!(command(&shell), "bash -l");
        assert_eq!(field(&shell, F::Terminal, Style::Cell), "?");
        assert_eq!(field(&shell, F::Environ, Style::Line), "");
    }
}
