//! `hostscope ps`: a process listing that reads like `ps`.

use std::cmp::Ordering;

use tokio_stream::StreamExt;

use super::{
    args::{Output, PsArgs},
    fanout::Io,
    fields::{COSTLY, Column, FieldList},
    format, output,
    render::{self, Style},
    table::{Align, Table},
};
use hostscope_client::{
    Client, Process,
    fleet::{Fleet, Summary},
    proto::{self, EnumName, ProcessField as F, ProcessFilter, ProcessStatus},
};

/// An interval as the API's milliseconds (at least 1: 0 means the
/// agent's default).
pub fn interval_ms(interval: std::time::Duration) -> u32 {
    u32::try_from(interval.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

/// What the default listing asks for: enough for USER PID PPID STATUS %CPU
/// %MEM RSS THREADS START TIME COMMAND, and nothing that needs more than
/// stat, statm, status and cmdline.
const DEFAULT_FIELDS: [F; 11] = [
    F::Username,
    F::Ppid,
    F::Status,
    F::CpuPercent,
    F::MemoryPercent,
    F::MemoryInfo,
    F::NumThreads,
    F::CreateTime,
    F::CpuTimes,
    F::Name,
    F::Cmdline,
];

/// Lists processes on every host. Each host's listing is collected within
/// its deadline, then printed: records in the agent's order, a table
/// sorted by pid.
pub async fn ps(
    fleet: &Fleet,
    mut args: PsArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let none_found = none_found(&args.status, io.width.is_some());
    let filter = ProcessFilter {
        pids: args.pid,
        ppid: args.ppid,
        name: args.name.unwrap_or_default(),
        username: args.user.unwrap_or_default(),
        statuses: args.status.iter().map(|s| *s as i32).collect(),
    };
    let ungrouped_maps = args.ungrouped_maps;
    if ungrouped_maps {
        args.fields = args.fields.map(|list| list.with(F::MemoryMaps));
    }
    let (mut request, shown) = match &args.fields {
        Some(list) => (list.request(), list.fields()),
        None => (DEFAULT_FIELDS.to_vec(), DEFAULT_FIELDS.to_vec()),
    };
    // A field sorted by is read even when it is not shown. An empty
    // request already means every field but the costly ones: sorting by
    // one of those names every field instead.
    let sort = args.sort.unwrap_or_default();
    if request.is_empty() && sort.fields().iter().any(|f| COSTLY.contains(f)) {
        request = FieldList::all().fields();
    }
    if !request.is_empty() {
        for field in sort.fields() {
            if !request.contains(&field) {
                request.push(field);
            }
        }
    }
    let interval = args.interval;
    let call = move |client: Client| {
        let (request, filter) = (request.clone(), filter.clone());
        async move {
            let mut processes = client
                .list_processes(proto::ListProcessesRequest {
                    fields: request.iter().map(|f| *f as i32).collect(),
                    filter: Some(filter),
                    interval_ms: interval_ms(interval),
                    memory_maps_ungrouped: ungrouped_maps,
                })
                .await?;
            let mut all = Vec::new();
            while let Some(p) = processes.next().await {
                all.push(p?);
            }
            Ok(all)
        }
    };
    let columns = args.fields.map(|list| list.with_pid());
    let template = match &columns {
        Some(columns) => output::process_template(columns)?,
        None => {
            let default = DEFAULT_FIELDS.iter().map(|f| Column::Field(*f));
            let columns: Vec<Column> = std::iter::once(Column::Pid).chain(default).collect();
            output::process_template(&columns)?
        }
    };
    let mut printer = io.printer(format, fleet.len(), &template);
    let (width, headers) = (io.width, !io.no_headers);
    let summary = io
        .fan_out(fleet, call, |host, mut all: Vec<Process>, out| {
            if printer.is_table() {
                all.sort_by_key(Process::pid);
            }
            sort.apply(&mut all);
            if !printer.is_table() {
                let records = all
                    .iter()
                    .map(|p| output::process_record(&host.name, p, &shown));
                return Ok(printer.records(out, records)?);
            }
            if let Some(note) = none_found
                && all.is_empty()
            {
                return Ok(printer.table(out, host, |out| writeln!(out, "{note}"))?);
            }
            let table = match &columns {
                Some(columns) => chosen_columns(&all, columns),
                None => default_columns(&all),
            };
            Ok(printer.table(out, host, |out| table.write_with(out, width, headers))?)
        })
        .await?;
    printer.finish(io.out)?;
    Ok(summary)
}

/// What a table with no rows says instead of a bare header: `ps --status
/// zombie` that finds none says "no zombies" on a terminal, as `zombies`
/// does; in a pipe the header stays, for scripts.
fn none_found(statuses: &[ProcessStatus], terminal: bool) -> Option<&'static str> {
    match statuses {
        [ProcessStatus::Zombie] if terminal => Some("no zombies"),
        _ => None,
    }
}

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
    fn fields(&self) -> Vec<F> {
        self.0
            .iter()
            .filter_map(|k| F::from_short_name(&k.path[0]))
            .collect()
    }

    /// Orders `processes` by the keys; a process without a key's value
    /// comes after those with one, whichever the direction. Stable, so
    /// equal keys keep the order they had.
    fn apply(&self, processes: &mut [Process]) {
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

/// One column per field the user chose, headed by its name.
fn chosen_columns(processes: &[Process], columns: &[Column]) -> Table {
    let headers = columns
        .iter()
        .map(|c| (render::header(*c), render::align(*c)));
    let mut table = Table::new(headers);
    for p in processes {
        table.push(
            columns
                .iter()
                .map(|c| render::column(p, *c, Style::Cell))
                .collect(),
        );
    }
    table
}

/// The default listing: USER PID PPID STATUS %CPU %MEM RSS THREADS START
/// TIME COMMAND.
fn default_columns(processes: &[Process]) -> Table {
    let header = |name: &str, align| (name.to_owned(), align);
    let mut table = Table::new([
        header("USER", Align::Left),
        header("PID", Align::Right),
        header("PPID", Align::Right),
        header("STATUS", Align::Left),
        header("%CPU", Align::Right),
        header("%MEM", Align::Right),
        header("RSS", Align::Right),
        header("THREADS", Align::Right),
        header("START", Align::Left),
        header("TIME", Align::Right),
        header("COMMAND", Align::Left),
    ]);
    let now = format::now();
    for p in processes {
        let or_why = |r: Result<String, hostscope_client::Error>| {
            r.unwrap_or_else(|e| render::unreadable(&e, Style::Cell))
        };
        table.push(vec![
            render::field(p, F::Username, Style::Cell),
            p.pid().to_string(),
            render::field(p, F::Ppid, Style::Cell),
            render::field(p, F::Status, Style::Cell),
            render::field(p, F::CpuPercent, Style::Cell),
            render::field(p, F::MemoryPercent, Style::Cell),
            or_why(p.memory_info().map(|m| format::bytes(m.rss))),
            render::field(p, F::NumThreads, Style::Cell),
            or_why(p.create_time().map(|t| format::start_time(t, now))),
            or_why(p.cpu_times().map(|t| format::cpu_time(t.user + t.system))),
            render::command(p),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use hostscope_client::proto;

    use super::*;

    #[test]
    fn the_default_listing_reads_like_ps() {
        let p = Process::new(
            proto::Process {
                pid: 1,
                ppid: Some(0),
                name: Some("init".to_owned()),
                username: Some("root".to_owned()),
                status: Some(proto::ProcessStatus::Sleeping as i32),
                memory_info: Some(proto::MemoryInfo {
                    rss: 12 * 1024 * 1024,
                    ..Default::default()
                }),
                num_threads: Some(1),
                cpu_times: Some(proto::CpuTimes {
                    user: 60.0,
                    system: 3.5,
                    ..Default::default()
                }),
                cpu_percent: Some(1.5),
                memory_percent: Some(0.3),
                cmdline: vec!["/sbin/init".to_owned(), "splash".to_owned()],
                field_errors: vec![proto::FieldError {
                    field: F::CreateTime as i32,
                    kind: proto::ErrorKind::AccessDenied as i32,
                }],
                ..Default::default()
            },
            &DEFAULT_FIELDS,
        );
        let mut out = Vec::new();
        default_columns(&[p])
            .write_with(&mut out, None, true)
            .expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "USER PID PPID STATUS   %CPU %MEM RSS THREADS START        TIME COMMAND"
        );
        assert_eq!(
            lines[1],
            "root   1    0 sleeping  1.5  0.3 12M       1 <denied> 00:01:03 /sbin/init splash"
        );
    }

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
    fn no_zombies_is_said_on_a_terminal() {
        assert_eq!(
            none_found(&[ProcessStatus::Zombie], true),
            Some("no zombies")
        );
        assert_eq!(none_found(&[ProcessStatus::Zombie], false), None);
        assert_eq!(none_found(&[], true), None);
        let both = [ProcessStatus::Zombie, ProcessStatus::Running];
        assert_eq!(none_found(&both, true), None);
    }

    #[test]
    fn sort_names_what_it_takes() {
        for bad in ["rsss", "", "memory_info.rss.x", "-"] {
            let e = parse_sort(bad).expect_err(bad);
            assert!(e.contains("memory_info.rss"), "{bad}: {e}");
        }
    }
}
