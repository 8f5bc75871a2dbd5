//! The descendants of a watch's root pid, followed through forks.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    ops::ControlFlow,
};

use super::{Event, EventKind};
use crate::backend::{self, Backend, Field, FieldSet};

/// The pids below a root: read from the process table when the watch
/// starts, then extended by the forks the watcher sees. Exited pids stay a
/// while, for their ZOMBIE event; the oldest go once there are many, so the
/// set stays bounded.
#[derive(Debug)]
pub struct Tree {
    root: u32,
    pids: HashSet<u32>,
    exited: VecDeque<u32>,
}

impl Tree {
    /// Exited pids kept for their ZOMBIE events.
    const EXITED_KEPT: usize = 4096;

    /// The descendants of `root` in the process table now.
    pub fn read(b: &dyn Backend, root: u32) -> Result<Tree, backend::Error> {
        let mut table = Vec::new();
        let ppid: FieldSet = [Field::Ppid].into_iter().collect();
        b.for_each_process(ppid, &mut |p| {
            if let Some(ppid) = p.ppid {
                table.push((p.pid, ppid));
            }
            ControlFlow::Continue(())
        })?;
        Ok(Tree::new(root, table))
    }

    /// The descendants of `root` in a table of `(pid, ppid)` pairs.
    pub fn new(root: u32, table: impl IntoIterator<Item = (u32, u32)>) -> Tree {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, ppid) in table {
            children.entry(ppid).or_default().push(pid);
        }
        let mut pids = HashSet::new();
        let mut todo = vec![root];
        while let Some(pid) = todo.pop() {
            for &child in children.get(&pid).into_iter().flatten() {
                // The check also ends a loop in a table read while pids
                // were being reused.
                if child != root && pids.insert(child) {
                    todo.push(child);
                }
            }
        }
        Tree {
            root,
            pids,
            exited: VecDeque::new(),
        }
    }

    /// Whether `pid` is below the root.
    pub fn contains(&self, pid: u32) -> bool {
        self.pids.contains(&pid)
    }

    /// Follows `event` (every event, whatever the watcher keeps, so that no
    /// fork is missed) and says whether it is about a descendant.
    pub fn follow(&mut self, event: &Event) -> bool {
        let pid = event.process.pid;
        if event.kind == EventKind::Started
            && event
                .process
                .ppid
                .is_some_and(|ppid| ppid == self.root || self.contains(ppid))
        {
            self.pids.insert(pid);
        }
        if !self.contains(pid) {
            return false;
        }
        if matches!(event.kind, EventKind::Exited { .. }) {
            self.exited.push_back(pid);
            if self.exited.len() > Tree::EXITED_KEPT
                && let Some(oldest) = self.exited.pop_front()
            {
                self.pids.remove(&oldest);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ProcessInfo;

    fn event(kind: EventKind, pid: u32, ppid: Option<u32>) -> Event {
        Event {
            kind,
            time: 0.0,
            process: ProcessInfo {
                ppid,
                ..ProcessInfo::new(pid)
            },
        }
    }

    const EXITED: EventKind = EventKind::Exited {
        code: Some(0),
        signal: None,
    };

    #[test]
    fn a_table_gives_every_generation_below_the_root_only() {
        // 1 -> 10 -> 11 -> 12, 10 -> 13; 1 -> 20 is a sibling tree.
        let tree = Tree::new(10, [(10, 1), (11, 10), (12, 11), (13, 10), (20, 1)]);
        for pid in [11, 12, 13] {
            assert!(tree.contains(pid), "{pid}");
        }
        for pid in [1, 10, 20] {
            assert!(!tree.contains(pid), "{pid}");
        }
    }

    #[test]
    fn a_cycle_in_a_racy_table_ends() {
        let tree = Tree::new(10, [(11, 10), (12, 11), (11, 12)]);
        assert!(tree.contains(11) && tree.contains(12));
    }

    #[test]
    fn forks_below_the_root_join_and_others_do_not() {
        let mut tree = Tree::new(10, []);
        assert!(tree.follow(&event(EventKind::Started, 11, Some(10))));
        assert!(tree.follow(&event(EventKind::Started, 12, Some(11))));
        assert!(!tree.follow(&event(EventKind::Started, 30, Some(1))));
        assert!(tree.follow(&event(EventKind::Exec, 12, None)));
        assert!(!tree.follow(&event(EventKind::Exec, 30, None)));
        // A fork seen without its parent (unreadable) cannot join.
        assert!(!tree.follow(&event(EventKind::Started, 40, None)));
    }

    #[test]
    fn exited_pids_stay_for_their_zombie_event_until_many_exit() {
        let mut tree = Tree::new(1, []);
        assert!(tree.follow(&event(EventKind::Started, 2, Some(1))));
        assert!(tree.follow(&event(EXITED, 2, None)));
        assert!(tree.follow(&event(EventKind::Zombie, 2, Some(1))));
        for pid in 100..100 + Tree::EXITED_KEPT as u32 {
            tree.follow(&event(EventKind::Started, pid, Some(1)));
            tree.follow(&event(EXITED, pid, None));
        }
        assert!(!tree.contains(2), "the oldest exited pid is forgotten");
        assert!(tree.contains(99 + Tree::EXITED_KEPT as u32));
        assert_eq!(tree.exited.len(), Tree::EXITED_KEPT);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn read_finds_a_real_child_of_this_test() {
        let child = super::super::testing::Sleeper::spawn();
        let tree = Tree::read(super::super::testing::real().as_ref(), std::process::id())
            .expect("reading the process table");
        assert!(tree.contains(child.0.id()));
        assert!(!tree.contains(std::process::id()));
    }
}
