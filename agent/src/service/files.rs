//! ListOpenFiles: the open descriptors of every process, or of some, as
//! psutil's `Process.open_files` gives them (regular files), or all of
//! them as `ls -l /proc/PID/fd` shows them.
//!
//! Processes are read in pid order, each one's descriptors in ascending
//! order, into batches of at most a batch's room; a process with more
//! descriptors than a batch holds goes on in the next one, from the
//! descriptor after the last sent. A process whose descriptors cannot be
//! read is named in the batch's `process_errors`. In a scan of every
//! process, one that exits meanwhile is skipped; a pid asked for by name
//! that does not exist is reported as NO_SUCH_PROCESS, so that "no files"
//! and "no process" read differently.

use std::ops::ControlFlow;

use hostscope_proto as pb;
use prost::Message;

use super::{ServiceError, convert, stream::Source};
use crate::backend::{
    self, Backend, FieldSet, FileKind, FilesQuery, OpenFile,
    glob::{self, Glob},
};

/// Room in a batch for one entry's own framing (a tag and a length).
const ENTRY_OVERHEAD: usize = 8;

/// The backend's query for a request: the one place where its pids and
/// path glob are checked.
pub fn query_from_pb(request: pb::ListOpenFilesRequest) -> Result<FilesQuery, ServiceError> {
    for &pid in &request.pids {
        convert::pid_from_pb("pids", pid)?;
    }
    // A pid asked for twice is read and answered once.
    let mut seen = std::collections::HashSet::with_capacity(request.pids.len());
    let mut pids = request.pids;
    pids.retain(|pid| seen.insert(*pid));
    let path = match request.path.as_str() {
        "" => None,
        // A refused pattern is quoted short: it may be kilobytes long.
        pattern => Some(Glob::new(pattern).map_err(|e| {
            ServiceError::invalid(
                "path",
                format!("bad path glob {}: {e}", glob::excerpt(pattern)),
            )
        })?),
    };
    Ok(FilesQuery {
        pids,
        path,
        all_kinds: request.all_kinds,
    })
}

/// The wire's kind of a descriptor.
pub fn kind_to_pb(kind: FileKind) -> pb::FileKind {
    match kind {
        FileKind::File => pb::FileKind::File,
        FileKind::Directory => pb::FileKind::Directory,
        FileKind::Device => pb::FileKind::Device,
        FileKind::Socket => pb::FileKind::Socket,
        FileKind::Pipe => pb::FileKind::Pipe,
        FileKind::AnonInode => pb::FileKind::AnonInode,
        FileKind::Other => pb::FileKind::Other,
    }
}

/// One descriptor on the wire.
pub fn file_to_pb(f: OpenFile) -> pb::OpenFile {
    pb::OpenFile {
        pid: f.pid,
        fd: f.fd,
        path: f.path,
        position: f.position,
        mode: f.mode.to_owned(),
        flags: f.flags,
        kind: kind_to_pb(f.kind) as i32,
        deleted: f.deleted,
    }
}

/// One ListOpenFiles listing and its place in it.
pub struct OpenFiles {
    query: FilesQuery,
    /// The processes to read: those asked for, or every process, listed
    /// when the first batch is read.
    pids: Option<Vec<u32>>,
    /// The pids were asked for by name.
    explicit: bool,
    /// Index in `pids` of the process being read.
    at: usize,
    /// The last descriptor of that process already sent.
    after: Option<u32>,
}

impl OpenFiles {
    /// The listing a request asks for; INVALID_ARGUMENT for bad pids or a
    /// bad path glob.
    pub fn new(request: pb::ListOpenFilesRequest) -> Result<OpenFiles, ServiceError> {
        let mut query = query_from_pb(request)?;
        let explicit = !query.pids.is_empty();
        let pids = explicit.then(|| std::mem::take(&mut query.pids));
        Ok(OpenFiles {
            query,
            pids,
            explicit,
            at: 0,
            after: None,
        })
    }
}

/// Every pid, in the order the backend lists them.
fn every_pid(backend: &dyn Backend) -> Result<Vec<u32>, backend::Error> {
    let mut pids = Vec::new();
    backend.for_each_process(FieldSet::EMPTY, &mut |p| {
        pids.push(p.pid);
        ControlFlow::Continue(())
    })?;
    Ok(pids)
}

/// A batch being filled, bounded in encoded size.
struct Batch {
    batch: pb::OpenFileBatch,
    bytes: usize,
    room: usize,
}

impl Batch {
    /// Whether `len` more bytes fit; the first entry always does, so that
    /// every batch makes progress (an entry is a few KiB at most, a batch's
    /// room far more).
    fn fits(&self, len: usize) -> bool {
        self.bytes == 0 || self.bytes + len <= self.room
    }
}

impl Source for OpenFiles {
    type Batch = pb::OpenFileBatch;

    fn next(
        &mut self,
        backend: &dyn Backend,
        room: usize,
        gone: &dyn Fn() -> bool,
    ) -> Result<(pb::OpenFileBatch, bool), ServiceError> {
        let pids = match &mut self.pids {
            Some(pids) => pids,
            none => none.insert(every_pid(backend)?),
        };
        let mut out = Batch {
            batch: pb::OpenFileBatch::default(),
            bytes: 0,
            room,
        };
        while let Some(&pid) = pids.get(self.at) {
            if gone() {
                return Ok((out.batch, true));
            }
            let mut full = false;
            let after = &mut self.after;
            let read = backend.open_files(pid, &self.query, *after, &mut |f| {
                let file = file_to_pb(f);
                let len = file.encoded_len() + ENTRY_OVERHEAD;
                if !out.fits(len) {
                    full = true;
                    return ControlFlow::Break(());
                }
                out.bytes += len;
                *after = Some(file.fd);
                out.batch.files.push(file);
                ControlFlow::Continue(())
            });
            if full {
                // The rest of this process goes in the next batch.
                return Ok((out.batch, false));
            }
            match read {
                Ok(()) => {}
                // It exited since the scan listed it.
                Err(backend::Error::NoSuchProcess { .. }) if !self.explicit => {}
                Err(e) => match e.kind() {
                    Some(kind) => {
                        let error = pb::ProcessError {
                            pid,
                            kind: convert::error_kind_to_pb(kind) as i32,
                        };
                        let len = error.encoded_len() + ENTRY_OVERHEAD;
                        if !out.fits(len) {
                            return Ok((out.batch, false));
                        }
                        out.bytes += len;
                        out.batch.process_errors.push(error);
                    }
                    None if self.explicit => return Err(e.into()),
                    // One process's malformed record must not fail a
                    // listing of all the others; the error names the file.
                    None => tracing::warn!(pid, error = %e, "skipping an unreadable process"),
                },
            }
            self.at += 1;
            self.after = None;
        }
        Ok((out.batch, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::stream::testing::{Fake, batches};

    #[test]
    fn requests_are_checked_and_pids_asked_once() {
        let query = query_from_pb(pb::ListOpenFilesRequest {
            pids: vec![7, 3, 7],
            path: "/var/log/*.log".into(),
            all_kinds: true,
        })
        .unwrap();
        assert_eq!(query.pids, [7, 3]);
        assert_eq!(
            query.path.map(|g| g.as_str().to_owned()).as_deref(),
            Some("/var/log/*.log")
        );
        assert!(query.all_kinds);

        let bad = |request: pb::ListOpenFilesRequest, field: &str| {
            let e = query_from_pb(request).unwrap_err();
            assert!(
                matches!(&e, ServiceError::InvalidArgument { field: f, .. } if *f == field),
                "{e:?}"
            );
            e.to_string()
        };
        let zero = pb::ListOpenFilesRequest {
            pids: vec![0],
            ..Default::default()
        };
        assert!(bad(zero, "pids").contains("0 is not a process"));
        let unclosed = pb::ListOpenFilesRequest {
            path: "/var/[log".into(),
            ..Default::default()
        };
        assert!(bad(unclosed, "path").contains("/var/[log"));
        let long = pb::ListOpenFilesRequest {
            path: "/".repeat(4097),
            ..Default::default()
        };
        let message = bad(long, "path");
        assert!(message.contains("4097 bytes"), "{message}");
        assert!(message.len() < 300, "quoted short: {message}");
        let at_limit = pb::ListOpenFilesRequest {
            path: "/".repeat(4096),
            ..Default::default()
        };
        assert!(query_from_pb(at_limit).is_ok());
    }

    #[test]
    fn files_keep_every_field_on_the_wire() {
        let f = OpenFile {
            pid: 42,
            fd: 7,
            path: "/var/log/app.log".into(),
            position: 1 << 33,
            mode: "a",
            flags: 0o2102001,
            kind: FileKind::File,
            deleted: true,
        };
        assert_eq!(
            file_to_pb(f),
            pb::OpenFile {
                pid: 42,
                fd: 7,
                path: "/var/log/app.log".into(),
                position: 1 << 33,
                mode: "a".into(),
                flags: 0o2102001,
                kind: pb::FileKind::File as i32,
                deleted: true,
            }
        );
        let kinds = [
            (FileKind::Directory, pb::FileKind::Directory),
            (FileKind::Device, pb::FileKind::Device),
            (FileKind::Socket, pb::FileKind::Socket),
            (FileKind::Pipe, pb::FileKind::Pipe),
            (FileKind::AnonInode, pb::FileKind::AnonInode),
            (FileKind::Other, pb::FileKind::Other),
        ];
        for (kind, wire) in kinds {
            assert_eq!(kind_to_pb(kind), wire);
        }
    }

    #[test]
    fn a_large_table_goes_on_in_the_next_batch_without_loss_or_repeat() {
        let backend = Fake { per_process: 500 };
        let every = OpenFiles::new(pb::ListOpenFilesRequest::default()).unwrap();
        let all = batches(every, &backend, 4096);
        assert!(all.len() > 5, "{} batches", all.len());
        let files: Vec<(u32, u32)> = all
            .iter()
            .flat_map(|b| b.files.iter().map(|f| (f.pid, f.fd)))
            .collect();
        let want: Vec<(u32, u32)> = [1, 3]
            .into_iter()
            .flat_map(|pid| (0..500).map(move |fd| (pid, fd)))
            .collect();
        assert_eq!(files, want);
        let errors: Vec<_> = all.iter().flat_map(|b| b.process_errors.clone()).collect();
        assert_eq!(
            errors,
            [pb::ProcessError {
                pid: 2,
                kind: pb::ErrorKind::AccessDenied as i32,
            }]
        );
    }

    #[test]
    fn pids_asked_for_that_do_not_exist_are_named() {
        let backend = Fake { per_process: 2 };
        let asked = OpenFiles::new(pb::ListOpenFilesRequest {
            pids: vec![4, 3],
            ..Default::default()
        })
        .unwrap();
        let all = batches(asked, &backend, 1 << 20);
        assert_eq!(all.len(), 1);
        let fds: Vec<(u32, u32)> = all[0].files.iter().map(|f| (f.pid, f.fd)).collect();
        assert_eq!(fds, [(3, 0), (3, 1)]);
        assert_eq!(
            all[0].process_errors,
            [pb::ProcessError {
                pid: 4,
                kind: pb::ErrorKind::NoSuchProcess as i32,
            }]
        );
    }

    #[test]
    fn a_client_gone_ends_the_listing() {
        let backend = Fake { per_process: 2 };
        let mut every = OpenFiles::new(pb::ListOpenFilesRequest::default()).unwrap();
        let (batch, ended) = every.next(&backend, 1 << 20, &|| true).unwrap();
        assert!(ended);
        assert!(batch.files.is_empty());
    }
}
