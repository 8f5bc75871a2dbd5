//! `hostscope ps`: a process listing that reads like `ps`.

use super::{
    args::{Output, PsArgs},
    fanout::{Io, Piece},
    fields::{COSTLY, Column, FieldList},
    format,
    output::{self, Renderer},
    render::{self, Style},
    table::{Align, Table},
};
use hostscope_client::{
    Client, Error, Process,
    fleet::{Charge, Fleet, Parts, Summary},
    proto::{self, ProcessField as F, ProcessFilter, ProcessStatus},
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

/// How a host's listing is kept until it has ended.
#[derive(Debug, Clone)]
enum Keep {
    /// Not at all: each batch is rendered and printed as it comes (NDJSON
    /// and CSV in the agent's order).
    Stream(Renderer),
    /// A table's rows, rendered as they come, ordered by pid at the end.
    Rows(Layout),
    /// JSON array elements, rendered as they come.
    Json,
    /// The processes themselves, for `--sort`.
    Processes,
}

/// What is kept of a host's listing.
enum Kept {
    Nothing,
    Rows(Vec<(u32, Vec<String>)>),
    Json { text: Vec<u8>, elements: usize },
    Processes(Vec<Process>),
}

impl Kept {
    fn made_for(keep: &Keep) -> Kept {
        match keep {
            Keep::Stream(_) => Kept::Nothing,
            Keep::Rows(_) => Kept::Rows(Vec::new()),
            Keep::Json => Kept::Json {
                text: Vec::new(),
                elements: 0,
            },
            Keep::Processes => Kept::Processes(Vec::new()),
        }
    }
}

/// What is held of a host's listing until it has ended, charged to the
/// query's budget until printed.
struct Held {
    kept: Kept,
    charge: Charge,
}

/// About the memory a table row takes, in bytes.
fn row_size(row: &[String]) -> usize {
    std::mem::size_of::<(u32, Vec<String>)>()
        + row
            .iter()
            .map(|cell| std::mem::size_of::<String>() + cell.len())
            .sum::<usize>()
}

/// Lists processes on every host. NDJSON and CSV print each batch as it
/// arrives, in the agent's order; a table (sorted by pid), JSON and a
/// `--sort`ed listing print each host's listing whole once it has ended.
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
    // NDJSON and CSV in the agent's order print each batch as it comes;
    // a table and JSON hold a host's part until it has ended, rendered as
    // it comes (text takes far less room than the messages); a sorted
    // listing holds the processes themselves. What is held is charged to
    // the budget.
    let layout = match &columns {
        Some(columns) => Layout::Chosen(columns.clone()),
        None => Layout::Default,
    };
    let keep = match printer.renderer(&template) {
        _ if !sort.is_empty() => Keep::Processes,
        Some(renderer) => Keep::Stream(renderer),
        None if printer.is_table() => Keep::Rows(layout.clone()),
        None => Keep::Json,
    };
    let budget = io.budget();
    let charging = budget.clone();
    let record_fields = shown.clone();
    let call = move |client: Client, parts: Parts<Vec<u8>, Held>| {
        let (request, filter) = (request.clone(), filter.clone());
        let (keep, shown) = (keep.clone(), record_fields.clone());
        let mut held = Held {
            kept: Kept::made_for(&keep),
            charge: charging.charge(),
        };
        async move {
            let mut processes = client
                .list_processes(proto::ListProcessesRequest {
                    fields: request.iter().map(|f| *f as i32).collect(),
                    filter: Some(filter),
                    interval_ms: interval_ms(interval),
                    memory_maps_ungrouped: ungrouped_maps,
                })
                .await?;
            let host = &parts.host().name;
            let now = format::now();
            while let Some(batch) = processes.next_batch().await {
                let batch = batch?;
                let added = match (&keep, &mut held.kept) {
                    (Keep::Stream(renderer), _) => {
                        let mut rows = Vec::new();
                        for p in &batch {
                            output::process_record(host, p, &shown)
                                .and_then(|record| renderer.row(&mut rows, &record))
                                .map_err(unrenderable)?;
                        }
                        drop(batch);
                        parts.send(rows).await;
                        0
                    }
                    (Keep::Rows(layout), Kept::Rows(rows)) => {
                        let mut added = 0;
                        for p in &batch {
                            let row = layout.row(p, now);
                            added += row_size(&row);
                            rows.push((p.pid(), row));
                        }
                        added
                    }
                    (_, Kept::Json { text, elements }) => {
                        let start = text.len();
                        for p in &batch {
                            if *elements > 0 {
                                text.extend_from_slice(b",\n");
                            }
                            output::process_record(host, p, &shown)
                                .and_then(|record| output::json_element(text, &record))
                                .map_err(unrenderable)?;
                            *elements += 1;
                        }
                        text.len() - start
                    }
                    (_, Kept::Processes(all)) => {
                        let added = batch.iter().map(Process::size_bytes).sum();
                        all.extend(batch);
                        added
                    }
                    // `kept` is made for `keep`: no other pair occurs.
                    (_, Kept::Nothing | Kept::Rows(_)) => 0,
                };
                held.charge.add(added);
            }
            Ok(held)
        }
    };
    let (width, headers) = (io.width, !io.no_headers);
    let summary = io
        .fan_out_parts(fleet, budget, call, |host, piece, out| {
            let held = match piece {
                Piece::Part(rows) => return Ok(printer.rendered(out, &rows)?),
                Piece::Done(held) => held,
            };
            let table = match held.kept {
                Kept::Nothing if !printer.is_table() => {
                    return Ok(printer.elements(out, &[], 0)?);
                }
                Kept::Json { text, elements } => return Ok(printer.elements(out, &text, elements)?),
                Kept::Processes(mut all) => {
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
                    layout.tabulate(&all)
                }
                Kept::Rows(mut rows) => {
                    rows.sort_by_key(|(pid, _)| *pid);
                    let mut table = layout.table();
                    for (_, row) in rows {
                        table.push(row);
                    }
                    table
                }
                Kept::Nothing => layout.table(),
            };
            if let Some(note) = none_found
                && table.is_empty()
            {
                return Ok(printer.table(out, host, |out| writeln!(out, "{note}"))?);
            }
            Ok(printer.table(out, host, |out| table.write_with(out, width, headers))?)
        })
        .await?;
    printer.finish(io.out)?;
    Ok(summary)
}

/// A process that could not be made a row (serde_json refusing a value),
/// as the host's error.
fn unrenderable(e: std::io::Error) -> Error {
    Error::Protocol {
        message: format!("a process could not be written as a row: {e}"),
    }
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

/// The columns of a table: the fields the user chose, each headed by its
/// name, or the default listing, USER PID PPID STATUS %CPU %MEM RSS
/// THREADS START TIME COMMAND.
#[derive(Debug, Clone)]
enum Layout {
    Chosen(Vec<Column>),
    Default,
}

impl Layout {
    /// A table with this layout's headers and no rows.
    fn table(&self) -> Table {
        match self {
            Layout::Chosen(columns) => Table::new(
                columns
                    .iter()
                    .map(|c| (render::header(*c), render::align(*c))),
            ),
            Layout::Default => {
                let header = |name: &str, align| (name.to_owned(), align);
                Table::new([
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
                ])
            }
        }
    }

    /// `p`'s row, START said relative to `now`.
    fn row(&self, p: &Process, now: f64) -> Vec<String> {
        match self {
            Layout::Chosen(columns) => columns
                .iter()
                .map(|c| render::column(p, *c, Style::Cell))
                .collect(),
            Layout::Default => {
                let or_why = |r: Result<String, hostscope_client::Error>| {
                    r.unwrap_or_else(|e| render::unreadable(&e, Style::Cell))
                };
                vec![
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
                ]
            }
        }
    }

    /// A table of `processes`, in their order.
    fn tabulate(&self, processes: &[Process]) -> Table {
        let now = format::now();
        let mut table = self.table();
        for p in processes {
            table.push(self.row(p, now));
        }
        table
    }
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
        Layout::Default
            .tabulate(&[p])
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
}
