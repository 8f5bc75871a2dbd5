//! Which processes a listing returns: pure matching on [`ProcessInfo`].

use super::{Field, FieldSet, ProcessInfo, Status, glob::Glob};

/// Every condition given must hold; the default matches every process.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these pids (empty: any).
    pub pids: Vec<u32>,
    /// Only children of this pid.
    pub ppid: Option<u32>,
    /// Only names matching this shell glob.
    pub name: Option<Glob>,
    /// Only this user: a name, or a decimal uid.
    pub username: Option<String>,
    /// Only these states (empty: any).
    pub statuses: Vec<Status>,
}

impl Filter {
    /// The fields that must be read to decide whether a process matches.
    pub fn needs(&self) -> FieldSet {
        let mut set = FieldSet::EMPTY;
        if self.ppid.is_some() {
            set.insert(Field::Ppid);
        }
        if self.name.is_some() {
            set.insert(Field::Name);
        }
        if let Some(user) = &self.username {
            set.insert(if parse_uid(user).is_some() {
                Field::Uids
            } else {
                Field::Username
            });
        }
        if !self.statuses.is_empty() {
            set.insert(Field::Status);
        }
        set
    }

    /// Whether `pid` can match at all, before anything is read.
    pub fn admits_pid(&self, pid: u32) -> bool {
        self.pids.is_empty() || self.pids.contains(&pid)
    }

    /// Whether a process read with at least [`Filter::needs`] matches. A
    /// field that could not be read does not match.
    pub fn matches(&self, p: &ProcessInfo) -> bool {
        self.admits_pid(p.pid)
            && self.ppid.is_none_or(|want| p.ppid == Some(want))
            && self
                .name
                .as_ref()
                .is_none_or(|glob| p.name.as_deref().is_some_and(|n| glob.matches(n)))
            && self
                .username
                .as_deref()
                .is_none_or(|user| match parse_uid(user) {
                    Some(uid) => p.uids.is_some_and(|ids| ids.real == uid),
                    None => p.username.as_deref() == Some(user),
                })
            && (self.statuses.is_empty() || p.status.is_some_and(|s| self.statuses.contains(&s)))
    }
}

fn parse_uid(user: &str) -> Option<u32> {
    user.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Ids;

    fn process() -> ProcessInfo {
        ProcessInfo {
            pid: 42,
            ppid: Some(1),
            name: Some("nginx: worker".into()),
            username: Some("www-data".into()),
            uids: Some(Ids {
                real: 33,
                effective: 33,
                saved: 33,
            }),
            status: Some(Status::Sleeping),
            ..ProcessInfo::new(42)
        }
    }

    #[test]
    fn empty_filter_matches_everything_and_needs_nothing() {
        let f = Filter::default();
        assert!(f.matches(&process()));
        assert!(f.needs().is_empty());
    }

    #[test]
    fn every_condition_must_hold() {
        let mut f = Filter {
            name: Some(Glob::new("nginx*").unwrap()),
            username: Some("33".into()),
            statuses: vec![Status::Sleeping, Status::Running],
            ppid: Some(1),
            pids: vec![42, 43],
        };
        assert!(f.matches(&process()));
        assert_eq!(
            f.needs(),
            [Field::Ppid, Field::Name, Field::Uids, Field::Status]
                .into_iter()
                .collect()
        );
        f.statuses = vec![Status::Zombie];
        assert!(!f.matches(&process()));
    }

    #[test]
    fn unread_field_does_not_match() {
        let f = Filter {
            username: Some("www-data".into()),
            ..Filter::default()
        };
        let mut p = process();
        assert!(f.matches(&p));
        p.username = None;
        assert!(!f.matches(&p));
    }

    #[test]
    fn pid_list_admits_only_its_pids() {
        let f = Filter {
            pids: vec![42],
            ..Filter::default()
        };
        assert!(f.admits_pid(42));
        assert!(!f.admits_pid(7));
    }
}
