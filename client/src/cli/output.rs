//! JSON and NDJSON records: the API's field names, enums as lower-case
//! names (the proto crate's `Serialize`), and the agent first, as "host".

use std::io::{self, Write};

use hostscope_client::{
    Process,
    proto::{EnumName, ProcessField},
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::args::Output;

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
            if !shown.contains(f) || p.field_error(*f).is_some() {
                map.shift_remove(&f.short_name());
            }
        }
    }
    Ok(value)
}

/// Writes records as the output format wants them: NDJSON at once, one per
/// line, flushed so that a reader sees each as it arrives; JSON collected
/// and written as one document at the end.
pub struct Records {
    format: Output,
    collected: Vec<Value>,
}

impl Records {
    /// Records in `format` (table output never reaches here).
    pub fn new(format: Output) -> Records {
        Records {
            format,
            collected: Vec::new(),
        }
    }

    /// One record.
    pub fn push(&mut self, out: &mut impl Write, value: Value) -> io::Result<()> {
        match self.format {
            Output::Ndjson => {
                serde_json::to_writer(&mut *out, &value)?;
                out.write_all(b"\n")?;
                out.flush()
            }
            Output::Json | Output::Table => {
                self.collected.push(value);
                Ok(())
            }
        }
    }

    /// Ends a list: JSON writes its array now.
    pub fn finish_list(self, out: &mut impl Write) -> io::Result<()> {
        match self.format {
            Output::Ndjson => Ok(()),
            Output::Json | Output::Table => write_pretty(out, &self.collected),
        }
    }
}

/// Writes one record on its own: a JSON document or an NDJSON line.
pub fn single(out: &mut impl Write, format: Output, value: &Value) -> io::Result<()> {
    match format {
        Output::Ndjson => {
            serde_json::to_writer(&mut *out, value)?;
            out.write_all(b"\n")
        }
        Output::Json | Output::Table => write_pretty(out, value),
    }
}

fn write_pretty(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use hostscope_client::proto;

    use super::*;

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
        let mut records = Records::new(Output::Ndjson);
        for n in 0..2 {
            let v = record("h", &proto::PidExistsResponse { exists: n == 1 }).expect("json");
            records.push(&mut out, v).expect("write");
        }
        records.finish_list(&mut out).expect("finish");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"host\":\"h\",\"exists\":false}\n{\"host\":\"h\",\"exists\":true}\n"
        );
    }
}
