//! Field lists as the user names them (psutil's names, plus "pid" and
//! "all"), and what to ask the agent for.

use hostscope_client::proto::{EnumName, ProcessField};

/// A column of a process listing: the pid, which is always returned, or a
/// field the agent reads on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Pid,
    Field(ProcessField),
}

impl Column {
    /// The psutil name, as in `--fields` and in JSON.
    pub fn name(self) -> String {
        match self {
            Column::Pid => "pid".to_owned(),
            Column::Field(f) => f.short_name(),
        }
    }
}

/// The columns the user asked for, in their order, without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldList {
    pub columns: Vec<Column>,
}

impl FieldList {
    /// Parses "pid,name,status" or "all". An unknown name is an error that
    /// lists the valid ones.
    pub fn parse(s: &str) -> Result<FieldList, String> {
        let mut columns = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let parsed: Vec<Column> = if name.eq_ignore_ascii_case("all") {
                FieldList::all().columns
            } else if name.eq_ignore_ascii_case("pid") {
                vec![Column::Pid]
            } else {
                match ProcessField::from_short_name(name) {
                    Some(f) => vec![Column::Field(f)],
                    None => return Err(unknown(name)),
                }
            };
            for column in parsed {
                if !columns.contains(&column) {
                    columns.push(column);
                }
            }
        }
        if columns.is_empty() {
            return Err(format!("no fields given; {}", valid_names()));
        }
        Ok(FieldList { columns })
    }

    /// Every column: pid, then every field in the API's order but the
    /// costly memory_full_info and memory_maps (the agent's "every field"
    /// leaves them out too: they are read when named).
    pub fn all() -> FieldList {
        let fields = ProcessField::values()
            .iter()
            .filter(|f| !COSTLY.contains(f))
            .map(|f| Column::Field(*f));
        FieldList {
            columns: std::iter::once(Column::Pid).chain(fields).collect(),
        }
    }

    /// The fields shown, without the pid.
    pub fn fields(&self) -> Vec<ProcessField> {
        self.columns
            .iter()
            .filter_map(|c| match c {
                Column::Field(f) => Some(*f),
                Column::Pid => None,
            })
            .collect()
    }

    /// What to ask the agent for. Every field is asked for as the empty
    /// selection, so the agent applies its own notion of "everything" (it
    /// may leave environ out by configuration). An empty selection would
    /// mean "every field", so a list of only `pid` asks for ppid, which
    /// the agent reads from the same file anyway.
    pub fn request(&self) -> Vec<ProcessField> {
        let fields = self.fields();
        if fields.len() == FieldList::all().columns.len() - 1
            && !fields.iter().any(|f| COSTLY.contains(f))
        {
            return Vec::new();
        }
        if fields.is_empty() {
            return vec![ProcessField::Ppid];
        }
        fields
    }

    /// The list with `field` at its end, unless it names it already.
    pub fn with(mut self, field: ProcessField) -> FieldList {
        if !self.columns.contains(&Column::Field(field)) {
            self.columns.push(Column::Field(field));
        }
        self
    }

    /// The columns as shown: the user's, with the pid first when they did
    /// not place it themselves.
    pub fn with_pid(&self) -> Vec<Column> {
        if self.columns.contains(&Column::Pid) {
            return self.columns.clone();
        }
        std::iter::once(Column::Pid)
            .chain(self.columns.iter().copied())
            .collect()
    }
}

/// Fields that walk the whole address space of a process: only read when
/// named.
pub const COSTLY: [ProcessField; 2] = [ProcessField::MemoryFullInfo, ProcessField::MemoryMaps];

fn valid_names() -> String {
    let mut names = vec!["pid".to_owned()];
    names.extend(ProcessField::short_names());
    format!("valid fields: {}, or all", names.join(", "))
}

fn unknown(name: &str) -> String {
    format!("unknown field {name:?}; {}", valid_names())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_order_without_repeats() {
        let list = FieldList::parse("name, pid,status,name").expect("valid");
        assert_eq!(
            list.columns,
            [
                Column::Field(ProcessField::Name),
                Column::Pid,
                Column::Field(ProcessField::Status)
            ]
        );
        assert_eq!(list.request(), [ProcessField::Name, ProcessField::Status]);
        assert_eq!(list.with_pid(), list.columns);
    }

    #[test]
    fn all_means_every_field() {
        let all = FieldList::parse("all").expect("valid");
        assert_eq!(all.columns.len(), 1 + ProcessField::values().len() - 2);
        let costly = FieldList::parse("all,memory_full_info").expect("valid");
        assert_eq!(costly.request().len(), ProcessField::values().len() - 1);
        assert_eq!(all.columns[0], Column::Pid);
        assert_eq!(FieldList::parse("ALL,pid").expect("valid"), all);
        assert!(
            all.request().is_empty(),
            "every field is asked for as the empty selection"
        );
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = FieldList::parse("pid,rss").expect_err("rss is no field");
        assert!(e.starts_with("unknown field \"rss\""), "{e}");
        assert!(e.contains("pid, ppid, name, exe"), "{e}");
        assert!(e.ends_with("page_faults, or all"), "{e}");
        assert!(FieldList::parse(" , ").is_err());
        assert!(FieldList::parse("unspecified").is_err());
    }

    #[test]
    fn pid_alone_still_asks_for_something() {
        let list = FieldList::parse("pid").expect("valid");
        assert!(list.fields().is_empty());
        assert_eq!(list.request(), [ProcessField::Ppid]);
        let list = FieldList::parse("name").expect("valid");
        assert_eq!(
            list.with_pid(),
            [Column::Pid, Column::Field(ProcessField::Name)]
        );
    }
}
