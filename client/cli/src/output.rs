//! Records for JSON, NDJSON and CSV: the API's field names, enums as
//! lower-case names (the proto crate's `Serialize`), and the host's name
//! first, as "host"; and the [`Printer`] that writes each host's part in
//! the format asked for.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{args::Output, csv::Sheet, fields::Column};
use hostscope_client::{
    Process,
    fleet::HostSpec,
    proto::{self, EnumName, ProcessField},
};

/// `value` as a JSON object whose first key is `"host"`.
pub fn record(host: &str, value: &impl Serialize) -> io::Result<Value> {
    let mut map = Map::new();
    map.insert("host".to_owned(), Value::String(host.to_owned()));
    match serde_json::to_value(value)? {
        Value::Object(fields) => map.extend(fields),
        other => {
            map.insert("value".to_owned(), other);
        }
    }
    Ok(Value::Object(map))
}

/// A process as a record with only the fields in `shown`, plus its pid and
/// field errors. Lists and maps (cmdline, environ) are always present in
/// the message, so without this an unrequested cmdline would read as `[]`.
pub fn process_record(host: &str, p: &Process, shown: &[ProcessField]) -> io::Result<Value> {
    let mut value = record(host, p.proto())?;
    if let Value::Object(map) = &mut value {
        for f in ProcessField::values() {
            // An agent that does not serve environments sends none and
            // names no error; `{}` would read as an empty environment.
            let environ_withheld = *f == ProcessField::Environ
                && p.proto().environ.is_empty()
                && p.field_error(*f).is_none();
            if !shown.contains(f) || p.field_error(*f).is_some() || environ_withheld {
                map.shift_remove(&f.short_name());
            }
        }
    }
    Ok(value)
}

/// The CSV template of a process listing with these columns: a process
/// with every field and message present, its keys in the columns' order
/// (the order the user gave in --fields), field errors last. Written out
/// field by field, so that a field added to the API fails to compile here
/// rather than silently missing from CSV headers.
pub fn process_template(columns: &[Column]) -> io::Result<Value> {
    let shown: Vec<ProcessField> = columns
        .iter()
        .filter_map(|c| match c {
            Column::Field(f) => Some(*f),
            Column::Pid => None,
        })
        .collect();
    let template = proto::Process {
        pid: 0,
        ppid: Some(0),
        name: Some(String::new()),
        exe: Some(String::new()),
        cmdline: Vec::new(),
        status: Some(proto::ProcessStatus::Running as i32),
        username: Some(String::new()),
        uids: Some(proto::Ids::default()),
        gids: Some(proto::Ids::default()),
        terminal: Some(String::new()),
        cwd: Some(String::new()),
        nice: Some(0),
        create_time: Some(0.0),
        num_threads: Some(0),
        num_fds: Some(0),
        num_ctx_switches: Some(proto::CtxSwitches::default()),
        // Members some OSes leave out are columns all the same.
        cpu_times: Some(proto::CpuTimes {
            children_user: Some(0.0),
            children_system: Some(0.0),
            iowait: Some(0.0),
            ..Default::default()
        }),
        memory_info: Some(proto::MemoryInfo {
            shared: Some(0),
            text: Some(0),
            data: Some(0),
            ..Default::default()
        }),
        io_counters: Some(proto::IoCounters {
            read_chars: Some(0),
            write_chars: Some(0),
            ..Default::default()
        }),
        environ: Default::default(),
        cpu_percent: Some(0.0),
        memory_percent: Some(0.0),
        cgroup: Some(String::new()),
        memory_full_info: Some(proto::MemoryFullInfo::default()),
        // Lists of messages hold one element, so that each of its keys is
        // a column of its own (`rlimits.soft`) rather than one column of
        // `key=value` pairs.
        memory_maps: vec![proto::MemoryMap::default()],
        threads: vec![proto::Thread::default()],
        rlimits: vec![proto::Rlimit {
            resource: String::new(),
            soft: Some(0),
            hard: Some(0),
        }],
        cpu_affinity: Vec::new(),
        cpu_num: Some(0),
        ionice: Some(proto::IoNice::default()),
        page_faults: Some(proto::PageFaults::default()),
        field_errors: vec![proto::FieldError::default()],
    };
    let Value::Object(mut record) = process_record("", &Process::new(template, &shown), &shown)?
    else {
        return Ok(Value::Null);
    };
    let mut ordered = Map::new();
    let keys = ["host".to_owned()]
        .into_iter()
        .chain(columns.iter().map(|c| c.name()));
    for key in keys {
        if let Some(value) = record.shift_remove(&key) {
            ordered.insert(key, value);
        }
    }
    ordered.extend(record);
    // An empty list: field errors are one column of `field=kind` pairs
    // (see `csv`), not a pair of columns that are empty on most rows.
    if let Some(errors) = ordered.get_mut("field_errors") {
        *errors = Value::Array(Vec::new());
    }
    Ok(Value::Object(ordered))
}

/// An interface with every message present, for CSV templates.
pub fn interface_template() -> proto::NetInterface {
    proto::NetInterface {
        name: String::new(),
        addresses: vec![proto::NetAddress {
            family: 0,
            address: String::new(),
            netmask: Some(String::new()),
            broadcast: Some(String::new()),
            ptp: Some(String::new()),
        }],
        stats: Some(proto::NetIfStats {
            speed: Some(0),
            ..Default::default()
        }),
        io_counters: Some(proto::NetIoCounters::default()),
    }
}

/// How a host is named above its part of a table: "web1 (192.0.2.11:7443)",
/// or just the address for a host that has no other name.
pub fn heading(host: &HostSpec) -> String {
    if host.name == host.address {
        host.address.clone()
    } else {
        format!("{} ({})", host.name, host.address)
    }
}

/// Writes each host's part as the output format wants it: a table part
/// under a `== NAME (ADDRESS)` line when several hosts are asked; NDJSON
/// records at once, flushed by the caller; CSV rows under one header; JSON
/// as the elements of one array, written as they come and closed at the
/// end (only a lone object waits for the end).
pub struct Printer {
    format: Output,
    /// More than one host: table parts get a heading line each.
    several: bool,
    /// A JSON answer of exactly one record prints as that object rather
    /// than an array (`host` and `proc` asked of a single host).
    lone_object: bool,
    /// A lone object's records, written at the end.
    collected: Vec<Value>,
    /// JSON array elements written so far.
    elements: usize,
    sheet: Option<Sheet>,
    parts: usize,
}

impl Printer {
    /// A printer for `hosts` hosts; `template` is a record with every
    /// column present, for the CSV header.
    pub fn new(format: Output, hosts: usize, template: &Value) -> Printer {
        Printer {
            format,
            several: hosts > 1,
            lone_object: false,
            collected: Vec::new(),
            elements: 0,
            sheet: (format == Output::Csv).then(|| Sheet::new(template)),
            parts: 0,
        }
    }

    /// Leaves CSV's header row out when `skip` (--no-headers).
    pub fn without_headers(mut self, skip: bool) -> Printer {
        if let Some(sheet) = &mut self.sheet {
            sheet.without_header(skip);
        }
        self
    }

    /// For commands with one record per host: asked of a single host,
    /// JSON prints the record itself, as it did before fleets.
    pub fn one_record_per_host(mut self) -> Printer {
        self.lone_object = !self.several;
        self
    }

    /// Whether the output is a table, written by [`Printer::table`]; any
    /// other format takes records through [`Printer::records`].
    pub fn is_table(&self) -> bool {
        self.format == Output::Table
    }

    /// One host's part of a table, headed by its name when there are
    /// several hosts.
    pub fn table(
        &mut self,
        out: &mut dyn Write,
        host: &HostSpec,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.several {
            if self.parts > 0 {
                writeln!(out)?;
            }
            writeln!(out, "== {}", heading(host))?;
        }
        self.parts += 1;
        write(out)
    }

    /// Renders rows apart from the printer (on the tasks that ask the
    /// hosts), for NDJSON and CSV; `None` for the formats that keep a
    /// host's part together.
    pub fn renderer(&self, template: &Value) -> Option<Renderer> {
        match self.format {
            Output::Ndjson => Some(Renderer::Ndjson),
            Output::Csv => Some(Renderer::Csv(std::sync::Arc::new(Sheet::new(template)))),
            Output::Table | Output::Json => None,
        }
    }

    /// Rows a [`Renderer`] made: written as they are, after CSV's header.
    pub fn rendered(&mut self, out: &mut dyn Write, rows: &[u8]) -> io::Result<()> {
        if let Some(sheet) = &mut self.sheet {
            sheet.header_now(out)?;
        }
        out.write_all(rows)
    }

    /// One host's records.
    pub fn records(
        &mut self,
        out: &mut dyn Write,
        records: impl IntoIterator<Item = io::Result<Value>>,
    ) -> io::Result<()> {
        for record in records {
            let record = record?;
            match (self.format, &mut self.sheet) {
                (Output::Ndjson, _) => {
                    serde_json::to_writer(&mut *out, &record)?;
                    out.write_all(b"\n")?;
                }
                (Output::Csv, Some(sheet)) => sheet.row(out, &record)?,
                (Output::Json, _) if !self.lone_object => self.element(out, &record)?,
                _ => self.collected.push(record),
            }
        }
        Ok(())
    }

    /// One element of the JSON array.
    fn element(&mut self, out: &mut dyn Write, record: &Value) -> io::Result<()> {
        let mut text = Vec::new();
        json_element(&mut text, record)?;
        self.elements(out, &text, 1)
    }

    /// `count` elements of the JSON array that [`json_element`] rendered,
    /// joined by `,\n`: one host's part, in one piece.
    pub fn elements(&mut self, out: &mut dyn Write, text: &[u8], count: usize) -> io::Result<()> {
        if count == 0 {
            return Ok(());
        }
        out.write_all(if self.elements == 0 { b"[\n" } else { b",\n" })?;
        self.elements += count;
        out.write_all(text)
    }

    /// Ends the output: JSON writes its array now, CSV at least its header.
    pub fn finish(mut self, out: &mut dyn Write) -> io::Result<()> {
        match self.format {
            Output::Json if self.lone_object && self.collected.len() == 1 => {
                write_pretty(out, &self.collected[0])
            }
            // The single host failed: its error goes to stderr, and an
            // empty array would read as an answer.
            Output::Json if self.lone_object && self.collected.is_empty() => Ok(()),
            Output::Json if self.lone_object => write_pretty(out, &self.collected),
            Output::Json if self.elements == 0 => out.write_all(b"[]\n"),
            Output::Json => out.write_all(b"\n]\n"),
            Output::Csv => match &mut self.sheet {
                Some(sheet) => sheet.finish(out),
                None => Ok(()),
            },
            Output::Table | Output::Ndjson => Ok(()),
        }
    }
}

/// Renders NDJSON lines or CSV rows into bytes, on any thread, for
/// [`Printer::rendered`]: a host's rows take far less room as text than
/// as the messages they come from.
#[derive(Debug, Clone)]
pub enum Renderer {
    /// One JSON object a line.
    Ndjson,
    /// CSV rows under the columns of the printer's template.
    Csv(std::sync::Arc<Sheet>),
}

impl Renderer {
    /// Appends `record` to `out` as a line.
    pub fn row(&self, out: &mut Vec<u8>, record: &Value) -> io::Result<()> {
        match self {
            Renderer::Ndjson => {
                serde_json::to_writer(&mut *out, record)?;
                out.push(b'\n');
                Ok(())
            }
            Renderer::Csv(sheet) => sheet.line(out, record),
        }
    }
}

/// Appends `record` as an element of a JSON array, indented as
/// `write_pretty` indents it inside the array. JSON text has no raw line
/// breaks within strings, so every line of the element moves in alike.
pub fn json_element(out: &mut Vec<u8>, record: &Value) -> io::Result<()> {
    let text = serde_json::to_string_pretty(record)?;
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(b"  ");
        out.extend_from_slice(line.as_bytes());
    }
    Ok(())
}

/// Writes `value` as indented JSON and a newline.
pub fn write_pretty(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn host(name: &str, address: &str) -> HostSpec {
        HostSpec {
            name: name.to_owned(),
            address: address.to_owned(),
            server_name: None,
            labels: BTreeMap::new(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn host_comes_first_and_unrequested_lists_are_dropped() {
        let p = Process::new(
            proto::Process {
                pid: 7,
                name: Some("sh".to_owned()),
                status: Some(proto::ProcessStatus::Zombie as i32),
                ..Default::default()
            },
            &[ProcessField::Name, ProcessField::Status],
        );
        let v = process_record("web1:7443", &p, &[ProcessField::Name, ProcessField::Status])
            .expect("json");
        let text = serde_json::to_string(&v).expect("text");
        assert_eq!(
            text,
            r#"{"host":"web1:7443","pid":7,"name":"sh","status":"zombie"}"#
        );
    }

    #[test]
    fn ndjson_is_one_line_per_record() {
        let mut out = Vec::new();
        let mut printer = Printer::new(Output::Ndjson, 2, &Value::Null);
        for n in 0..2 {
            let v = record("h", &proto::PidExistsResponse { exists: n == 1 });
            printer.records(&mut out, [v]).expect("write");
        }
        printer.finish(&mut out).expect("finish");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"host\":\"h\",\"exists\":false}\n{\"host\":\"h\",\"exists\":true}\n"
        );
    }

    #[test]
    fn json_is_an_array_unless_one_host_has_one_record() {
        let answer = || record("h", &proto::PidExistsResponse { exists: true });
        let print = |printer: Printer, records: usize| {
            let mut printer = printer;
            let mut out = Vec::new();
            for _ in 0..records {
                printer.records(&mut out, [answer()]).expect("write");
            }
            printer.finish(&mut out).expect("finish");
            String::from_utf8(out).expect("utf-8")
        };
        let one = print(
            Printer::new(Output::Json, 1, &Value::Null).one_record_per_host(),
            1,
        );
        assert!(one.starts_with("{\n  \"host\": \"h\""), "{one}");
        let many = print(
            Printer::new(Output::Json, 2, &Value::Null).one_record_per_host(),
            2,
        );
        assert!(many.starts_with("[\n  {\n    \"host\": \"h\""), "{many}");
        let listing = print(Printer::new(Output::Json, 1, &Value::Null), 1);
        assert!(listing.starts_with("[\n"), "{listing}");
        assert_eq!(
            print(Printer::new(Output::Json, 1, &Value::Null), 0),
            "[]\n"
        );
    }

    #[test]
    fn json_written_as_it_comes_reads_as_one_pretty_array() {
        let records = [
            serde_json::json!({"host": "a", "pid": 1, "cmdline": ["sh", "-c"], "env": {}}),
            serde_json::json!({"host": "b", "nested": {"x": [1, {"y": "line\nbreak"}]}}),
            serde_json::json!({"host": "c", "empty": []}),
        ];
        let mut printer = Printer::new(Output::Json, 3, &Value::Null);
        let mut out = Vec::new();
        printer
            .records(&mut out, records[..2].iter().cloned().map(Ok))
            .expect("write");
        // The first host's elements are out before the end.
        assert!(out.starts_with(b"[\n  {\n    \"host\": \"a\""));
        printer
            .records(&mut out, [Ok(records[2].clone())])
            .expect("write");
        printer.finish(&mut out).expect("finish");
        let mut whole = Vec::new();
        write_pretty(&mut whole, &records).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(whole).expect("utf-8")
        );
    }

    #[test]
    fn tables_get_a_heading_per_host_only_for_several_hosts() {
        let write = |printer: &mut Printer, out: &mut Vec<u8>, h: &HostSpec| {
            printer
                .table(out, h, |out| writeln!(out, "body"))
                .expect("write");
        };
        let (web1, bare) = (host("web1", "192.0.2.11:7443"), host("b:7443", "b:7443"));
        let mut out = Vec::new();
        let mut printer = Printer::new(Output::Table, 2, &Value::Null);
        write(&mut printer, &mut out, &web1);
        write(&mut printer, &mut out, &bare);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "== web1 (192.0.2.11:7443)\nbody\n\n== b:7443\nbody\n"
        );
        let mut out = Vec::new();
        let mut printer = Printer::new(Output::Table, 1, &Value::Null);
        write(&mut printer, &mut out, &web1);
        assert_eq!(out, b"body\n");
    }

    #[test]
    fn the_process_template_has_a_column_per_shown_field() {
        let columns = [
            Column::Field(ProcessField::Name),
            Column::Pid,
            Column::Field(ProcessField::MemoryInfo),
        ];
        let sheet = Sheet::new(&process_template(&columns).expect("template"));
        assert_eq!(
            sheet.header(),
            [
                "host",
                "name",
                "pid",
                "memory_info.rss",
                "memory_info.vms",
                "memory_info.shared",
                "memory_info.text",
                "memory_info.data",
                "field_errors"
            ]
        );
    }

    #[test]
    fn lists_of_messages_get_a_column_per_key() {
        let columns = [
            ProcessField::MemoryFullInfo,
            ProcessField::Threads,
            ProcessField::Rlimits,
            ProcessField::CpuAffinity,
            ProcessField::CpuNum,
            ProcessField::Ionice,
            ProcessField::PageFaults,
        ]
        .map(Column::Field);
        let sheet = Sheet::new(&process_template(&columns).expect("template"));
        let header = sheet.header();
        assert_eq!(
            header,
            [
                "host",
                "memory_full_info.uss",
                "memory_full_info.pss",
                "memory_full_info.swap",
                "threads.id",
                "threads.user_time",
                "threads.system_time",
                "rlimits.resource",
                "rlimits.soft",
                "rlimits.hard",
                "cpu_affinity",
                "cpu_num",
                "ionice.ioclass",
                "ionice.value",
                "page_faults.minor",
                "page_faults.major",
                "pid",
                "field_errors"
            ]
        );
        let maps = process_template(&[Column::Pid, Column::Field(ProcessField::MemoryMaps)])
            .expect("template");
        let header = Sheet::new(&maps).header();
        assert_eq!(
            header[2..5],
            ["memory_maps.path", "memory_maps.addr", "memory_maps.perms"]
        );
        assert!(header.contains(&"memory_maps.rss".to_owned()), "{header:?}");

        // An unlimited limit keeps its place in the parallel columns.
        let p = Process::new(
            proto::Process {
                pid: 7,
                rlimits: vec![
                    proto::Rlimit {
                        resource: "cpu".to_owned(),
                        soft: None,
                        hard: None,
                    },
                    proto::Rlimit {
                        resource: "nofile".to_owned(),
                        soft: Some(1024),
                        hard: Some(4096),
                    },
                ],
                ..Default::default()
            },
            &[ProcessField::Rlimits],
        );
        let template = process_template(&[Column::Pid, Column::Field(ProcessField::Rlimits)])
            .expect("template");
        let mut sheet = Sheet::new(&template);
        let mut out = Vec::new();
        let record = process_record("h", &p, &[ProcessField::Rlimits]).expect("record");
        sheet.row(&mut out, &record).expect("row");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "host,pid,rlimits.resource,rlimits.soft,rlimits.hard,field_errors\n\
             h,7,cpu nofile,- 1024,- 4096,\n"
        );
    }

    #[test]
    fn a_withheld_environment_is_left_out_not_shown_empty() {
        let all = ProcessField::values().to_vec();
        let p = Process::new(
            proto::Process {
                pid: 7,
                name: Some("sh".to_owned()),
                ..Default::default()
            },
            &all,
        );
        let record = process_record("web1", &p, &all).expect("record");
        assert!(record.get("environ").is_none(), "{record}");
        assert_eq!(record["name"], "sh");
        let mut with_env = p.proto().clone();
        with_env.environ.insert("LANG".to_owned(), "C".to_owned());
        let record = process_record("web1", &Process::new(with_env, &all), &all).expect("record");
        assert_eq!(record["environ"]["LANG"], "C");
    }

    #[test]
    fn a_single_host_that_failed_prints_no_json() {
        let template = serde_json::json!({"host": ""});
        let printer = Printer::new(Output::Json, 1, &template).one_record_per_host();
        let mut out = Vec::new();
        printer.finish(&mut out).expect("finish");
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        // A listing of no processes is still an empty array.
        let mut out = Vec::new();
        Printer::new(Output::Json, 1, &template)
            .finish(&mut out)
            .expect("finish");
        assert_eq!(out, b"[]\n");
    }
}
