//! CSV output: a header row of flattened key paths (`memory_info.rss`),
//! then one row per record.
//!
//! The columns come from a template record in which every message is
//! present, not from the first record: a first process whose memory the
//! agent could not read must not drop the `memory_info.*` columns for all
//! the others. Records are the same JSON values the other formats print, so
//! names and enum spellings agree across formats.

use std::io::{self, Write};

use serde_json::Value;

/// Writes records as CSV under a fixed header.
#[derive(Debug)]
pub struct Sheet {
    /// Each column's key path: `["memory_info", "rss"]`.
    columns: Vec<Vec<String>>,
    header_written: bool,
    /// Quotes and joins the cells of each row (RFC 4180). A writer is
    /// made per row over the caller's output, which differs per call and
    /// is flushed per host as answers arrive.
    builder: csv::WriterBuilder,
}

impl Sheet {
    /// A sheet whose columns are the leaves of `template`: nested objects
    /// become `parent.child` columns, a list of objects becomes one column
    /// per key of its first element, and anything else (scalars, lists of
    /// scalars, empty objects such as maps) is one column.
    pub fn new(template: &Value) -> Sheet {
        let mut columns = Vec::new();
        leaves(template, &mut Vec::new(), &mut columns);
        Sheet {
            columns,
            header_written: false,
            builder: {
                let mut builder = csv::WriterBuilder::new();
                builder.terminator(csv::Terminator::Any(b'\n'));
                builder
            },
        }
    }

    /// Leaves the header row out when `skip` (--no-headers).
    pub fn without_header(&mut self, skip: bool) {
        self.header_written |= skip;
    }

    /// The header row's names.
    pub fn header(&self) -> Vec<String> {
        self.columns.iter().map(|path| path.join(".")).collect()
    }

    /// Writes one record as a row, after the header if it is the first.
    pub fn row(&mut self, out: &mut dyn Write, record: &Value) -> io::Result<()> {
        self.write_header(out)?;
        self.line(out, record)
    }

    /// Writes the header row now unless it has been (or is not wanted), for
    /// rows written by [`Sheet::line`].
    pub fn header_now(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.write_header(out)
    }

    /// Writes one record as a row, whatever came before: for rows written
    /// apart from the sheet that writes the header.
    pub fn line(&self, out: &mut dyn Write, record: &Value) -> io::Result<()> {
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|path| {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                cell(record, &path)
            })
            .collect();
        self.write_line(out, &cells)
    }

    /// Ends the sheet: a listing without a single record still has its
    /// header, so that a reader sees the columns it would have had.
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.write_header(out)
    }

    fn write_header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            let header = self.header();
            self.write_line(out, &header)?;
        }
        Ok(())
    }

    /// Writes one row of `cells` to `out`.
    fn write_line(&self, out: &mut dyn Write, cells: &[String]) -> io::Result<()> {
        let mut writer = self.builder.from_writer(out);
        writer.write_record(cells)?;
        writer.flush()
    }
}

fn leaves(value: &Value, path: &mut Vec<String>, columns: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                leaves(child, path, columns);
                path.pop();
            }
        }
        Value::Array(items) => match items.first() {
            Some(first @ Value::Object(map)) if !map.is_empty() => leaves(first, path, columns),
            _ => columns.push(path.clone()),
        },
        _ => columns.push(path.clone()),
    }
}

/// The text of the value at `path` in `value`. A list met on the way is
/// mapped over, its elements joined with spaces; an element without the
/// value shows as "-" so that parallel columns (`addresses.address`,
/// `addresses.netmask`) keep their positions.
fn cell(value: &Value, path: &[&str]) -> String {
    match (value, path.split_first()) {
        // A process's field errors, `[{"field": "cwd", "kind":
        // "access_denied"}]`, read best as `cwd=access_denied`.
        (Value::Object(map), Some((&"field_errors", []))) => match map.get("field_errors") {
            Some(Value::Array(errors)) => errors
                .iter()
                .map(|e| format!("{}={}", scalar(&e["field"]), scalar(&e["kind"])))
                .collect::<Vec<_>>()
                .join(" "),
            Some(other) => scalar(other),
            None => String::new(),
        },
        (Value::Array(items), None) => items.iter().map(scalar).collect::<Vec<_>>().join(" "),
        (Value::Array(items), Some(_)) => items
            .iter()
            .map(|item| match cell(item, path) {
                text if text.is_empty() => "-".to_owned(),
                text => text,
            })
            .collect::<Vec<_>>()
            .join(" "),
        (Value::Object(map), Some((key, rest))) => {
            map.get(*key).map_or_else(String::new, |v| cell(v, rest))
        }
        (_, Some(_)) => String::new(),
        (leaf, None) => scalar(leaf),
    }
}

/// A leaf as text: strings as they are, no value as nothing, a map (such
/// as environ or labels) as `key=value` pairs joined with spaces.
fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(" "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be_and_read_back_as_written() {
        let fields = [
            "nginx",
            "",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "cr\r",
            " padded",
            "a b",
        ];
        let template = Value::Object(
            (0..fields.len())
                .map(|i| (format!("c{i}"), Value::String(String::new())))
                .collect(),
        );
        let record = Value::Object(
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| (format!("c{i}"), Value::String((*f).to_owned())))
                .collect(),
        );
        let mut sheet = Sheet::new(&template);
        let mut out = Vec::new();
        sheet.row(&mut out, &record).expect("row");
        let text = String::from_utf8(out.clone()).expect("utf-8");
        let row = text.split_once('\n').expect("a header line").1;
        assert_eq!(
            row,
            "nginx,,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\", padded,a b\n"
        );
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let read: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("csv");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].iter().collect::<Vec<_>>(), fields);
    }

    #[test]
    fn nested_messages_flatten_and_lists_join() {
        let template = json!({
            "host": "",
            "pid": 0,
            "cmdline": [""],
            "memory_info": {"rss": 0, "vms": 0},
            "environ": {},
            "addresses": [{"family": null, "address": "", "netmask": ""}],
        });
        let mut sheet = Sheet::new(&template);
        assert_eq!(
            sheet.header(),
            [
                "host",
                "pid",
                "cmdline",
                "memory_info.rss",
                "memory_info.vms",
                "environ",
                "addresses.family",
                "addresses.address",
                "addresses.netmask"
            ]
        );
        let record = json!({
            "host": "web1",
            "pid": 7,
            "cmdline": ["sh", "-c", "echo \"a,b\""],
            "memory_info": {"rss": 4096, "vms": 8192},
            "environ": {"HOME": "/root", "LANG": "C"},
            "addresses": [
                {"family": "inet", "address": "192.0.2.5", "netmask": "255.255.255.0"},
                {"family": "inet6", "address": "fe80::1"},
            ],
        });
        // A record missing a message leaves its cells empty.
        let sparse = json!({"host": "web2", "pid": 8});
        let mut out = Vec::new();
        sheet.row(&mut out, &record).expect("row");
        sheet.row(&mut out, &sparse).expect("row");
        sheet.finish(&mut out).expect("finish");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[1],
            "web1,7,\"sh -c echo \"\"a,b\"\"\",4096,8192,HOME=/root LANG=C,inet inet6,\
             192.0.2.5 fe80::1,255.255.255.0 -"
        );
        assert_eq!(lines[2], "web2,8,,,,,,,");
    }

    #[test]
    fn no_headers_leaves_only_rows() {
        let mut sheet = Sheet::new(&json!({"host": "", "pid": 0}));
        sheet.without_header(true);
        let mut out = Vec::new();
        sheet
            .row(&mut out, &json!({"host": "web1", "pid": 7}))
            .expect("row");
        sheet.finish(&mut out).expect("finish");
        assert_eq!(out, b"web1,7\n");
    }

    #[test]
    fn an_empty_listing_still_has_its_header() {
        let mut sheet = Sheet::new(&json!({"host": "", "name": ""}));
        let mut out = Vec::new();
        sheet.finish(&mut out).expect("finish");
        sheet.finish(&mut out).expect("finish twice");
        assert_eq!(out, b"host,name\n");
    }

    #[test]
    fn field_errors_are_one_column_of_pairs() {
        let mut sheet = Sheet::new(&json!({"host": "", "pid": 0, "field_errors": []}));
        assert_eq!(sheet.header(), ["host", "pid", "field_errors"]);
        let failing = json!({"host": "web1", "pid": 7, "field_errors": [
            {"field": "cwd", "kind": "access_denied"},
            {"field": "exe", "kind": "zombie_process"},
        ]});
        let fine = json!({"host": "web1", "pid": 8});
        let mut out = Vec::new();
        sheet.row(&mut out, &failing).expect("row");
        sheet.row(&mut out, &fine).expect("row");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "host,pid,field_errors\nweb1,7,cwd=access_denied exe=zombie_process\nweb1,8,\n"
        );
    }
}
