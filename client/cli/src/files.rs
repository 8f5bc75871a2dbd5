//! `hostscope files`: the files processes hold open, like lsof, on one
//! host or a whole fleet ("who holds /var/log/app.log?").

use std::collections::HashMap;

use serde::Serialize;

use super::{
    args::{FilesArgs, Output},
    fanout::Io,
    output,
    table::{Align, Table},
};
use hostscope_client::{
    Client,
    fleet::{Fleet, Summary},
    proto::{self, EnumName},
};

/// One descriptor, flat, for every format.
#[derive(Debug, Default, Clone, Serialize)]
struct FileRow {
    pid: u32,
    /// With --names only; `None` also when the process ended before its
    /// name was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    fd: u32,
    path: String,
    position: u64,
    mode: String,
    flags: u32,
    kind: String,
    deleted: bool,
}

impl FileRow {
    fn of(f: proto::OpenFile, names: &HashMap<u32, String>) -> FileRow {
        FileRow {
            name: names.get(&f.pid).cloned(),
            kind: proto::FileKind::from_wire(f.kind).map_or(f.kind.to_string(), |k| k.short_name()),
            pid: f.pid,
            fd: f.fd,
            path: f.path,
            position: f.position,
            mode: f.mode,
            flags: f.flags,
            deleted: f.deleted,
        }
    }
}

/// What one host answered.
struct Answer {
    files: proto::OpenFileBatch,
    /// Process names by pid, with --names.
    names: HashMap<u32, String>,
}

/// Lists open files, one table (with the host first for a fleet), or a
/// record per descriptor.
pub async fn files(
    fleet: &Fleet,
    args: FilesArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let request = proto::ListOpenFilesRequest {
        pids: args.pid.clone(),
        path: args.path.clone().unwrap_or_default(),
        all_kinds: args.all_kinds,
    };
    let (with_names, only_deleted) = (args.names, args.deleted);
    let call = move |client: Client| {
        let request = request.clone();
        async move {
            let mut files = client.open_files(request).await?;
            if only_deleted {
                files.files.retain(|f| f.deleted);
            }
            let mut names = HashMap::new();
            if with_names && !files.files.is_empty() {
                let mut pids: Vec<u32> = files.files.iter().map(|f| f.pid).collect();
                pids.dedup();
                names = client.process_names(pids).await?;
            }
            Ok(Answer { files, names })
        }
    };
    let template = output::record(
        "",
        &FileRow {
            name: with_names.then(String::new),
            ..FileRow::default()
        },
    )?;
    let several = fleet.len() > 1;
    let mut printer = io.printer(format, fleet.len(), &template);
    let mut rows: Vec<(String, FileRow)> = Vec::new();
    let mut errors: Vec<(String, Vec<proto::ProcessError>)> = Vec::new();
    let summary = io
        .fan_out(fleet, call, |host, answer: Answer, out| {
            let Answer { files, names } = answer;
            if !files.process_errors.is_empty() {
                errors.push((host.name.clone(), files.process_errors));
            }
            let mine = files.files.into_iter().map(|f| FileRow::of(f, &names));
            if printer.is_table() {
                rows.extend(mine.map(|r| (host.name.clone(), r)));
                return Ok(());
            }
            let records: Vec<_> = mine.map(|r| output::record(&host.name, &r)).collect();
            Ok(printer.records(out, records)?)
        })
        .await?;
    if printer.is_table() && !rows.is_empty() {
        // By host; each host's files came by pid and descriptor.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        table(&rows, several, with_names).write_with(io.out, io.width, !io.no_headers)?;
    }
    printer.finish(io.out)?;
    io.out.flush()?;
    errors.sort_by(|a, b| a.0.cmp(&b.0));
    for (host, errors) in errors {
        for line in error_lines(&errors) {
            match several {
                true => writeln!(io.err, "{host}: {line}")?,
                false => writeln!(io.err, "{line}")?,
            }
        }
    }
    Ok(summary)
}

/// lsof's table, in psutil's terms, with the host first for a fleet.
fn table(rows: &[(String, FileRow)], with_host: bool, with_names: bool) -> Table {
    let mut headers = vec![("PID", Align::Right)];
    if with_names {
        headers.push(("NAME", Align::Left));
    }
    headers.extend([
        ("FD", Align::Right),
        ("MODE", Align::Left),
        ("POS", Align::Right),
        ("KIND", Align::Left),
        ("PATH", Align::Left),
    ]);
    if with_host {
        headers.insert(0, ("HOST", Align::Left));
    }
    let mut table = Table::new(headers.into_iter().map(|(n, a)| (n.to_owned(), a)));
    for (host, r) in rows {
        let mut row = vec![r.pid.to_string()];
        if with_names {
            row.push(r.name.clone().unwrap_or_else(|| "-".to_owned()));
        }
        let path = match r.deleted {
            true => format!("{} (deleted)", r.path),
            false => r.path.clone(),
        };
        row.extend([
            r.fd.to_string(),
            if r.mode.is_empty() {
                "-".to_owned()
            } else {
                r.mode.clone()
            },
            r.position.to_string(),
            r.kind.clone(),
            path,
        ]);
        if with_host {
            row.insert(0, host.clone());
        }
        table.push(row);
    }
    table
}

/// One process's descriptors, as `proc` shows them: the `files` table
/// without the pid.
pub(crate) fn process_table(files: Vec<proto::OpenFile>) -> Table {
    let none = HashMap::new();
    let rows: Vec<(String, FileRow)> = files
        .into_iter()
        .map(|f| (String::new(), FileRow::of(f, &none)))
        .collect();
    let mut table = table(&rows, false, false);
    table.remove_column(0);
    table
}

/// How many pids an error line names before it counts the rest.
const PIDS_NAMED: usize = 10;

/// One line per kind of error: "access denied: pids 1, 2, 17 and 40 more".
fn error_lines(errors: &[proto::ProcessError]) -> Vec<String> {
    let mut by_kind: Vec<(i32, Vec<u32>)> = Vec::new();
    for e in errors {
        match by_kind.iter_mut().find(|(kind, _)| *kind == e.kind) {
            Some((_, pids)) => pids.push(e.pid),
            None => by_kind.push((e.kind, vec![e.pid])),
        }
    }
    by_kind
        .into_iter()
        .map(|(kind, mut pids)| {
            pids.sort_unstable();
            let what = proto::ErrorKind::from_wire(kind).map_or(format!("error {kind}"), |k| {
                k.short_name().replace('_', " ")
            });
            let named: Vec<String> = pids.iter().take(PIDS_NAMED).map(u32::to_string).collect();
            let mut line = format!(
                "{what}: pid{} {}",
                if pids.len() == 1 { "" } else { "s" },
                named.join(", ")
            );
            if pids.len() > PIDS_NAMED {
                line.push_str(&format!(" and {} more", pids.len() - PIDS_NAMED));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: u32, fd: u32, path: &str, deleted: bool) -> (String, FileRow) {
        (
            "web1".to_owned(),
            FileRow {
                pid,
                name: Some("nginx".to_owned()),
                fd,
                path: path.to_owned(),
                position: 120,
                mode: "a".to_owned(),
                flags: 0o2102001,
                kind: "file".to_owned(),
                deleted,
            },
        )
    }

    #[test]
    fn the_table_marks_deleted_files_and_shows_names_when_asked() {
        let rows = [
            row(42, 3, "/var/log/app.log", false),
            row(42, 7, "/var/log/app.log.1", true),
        ];
        let mut out = Vec::new();
        table(&rows, true, true)
            .write_with(&mut out, None, true)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines,
            [
                vec!["HOST", "PID", "NAME", "FD", "MODE", "POS", "KIND", "PATH"],
                vec![
                    "web1",
                    "42",
                    "nginx",
                    "3",
                    "a",
                    "120",
                    "file",
                    "/var/log/app.log"
                ],
                vec![
                    "web1",
                    "42",
                    "nginx",
                    "7",
                    "a",
                    "120",
                    "file",
                    "/var/log/app.log.1",
                    "(deleted)"
                ],
            ]
        );
        let mut out = Vec::new();
        table(&rows, false, false)
            .write_with(&mut out, None, true)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("PID"), "{text}");
        assert!(!text.contains("NAME") && !text.contains("web1"), "{text}");
    }

    #[test]
    fn errors_are_one_line_per_kind_naming_the_first_pids() {
        let error = |pid, kind: proto::ErrorKind| proto::ProcessError {
            pid,
            kind: kind as i32,
        };
        let mut errors: Vec<_> = (1..=12)
            .rev()
            .map(|pid| error(pid, proto::ErrorKind::AccessDenied))
            .collect();
        errors.push(error(4242, proto::ErrorKind::NoSuchProcess));
        assert_eq!(
            error_lines(&errors),
            [
                "access denied: pids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more",
                "no such process: pid 4242",
            ]
        );
    }

    #[test]
    fn records_name_every_column() {
        let record = output::record(
            "web1",
            &FileRow {
                name: Some(String::new()),
                ..FileRow::default()
            },
        )
        .unwrap();
        let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "host", "pid", "name", "fd", "path", "position", "mode", "flags", "kind", "deleted"
            ]
        );
    }
}
