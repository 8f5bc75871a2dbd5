//! Listings streamed a batch at a time, as ListProcesses streams its own
//! (see the module header of [`super`]): each batch is read only once the
//! client has taken the one before and the response [budget] has room for
//! it, under a scan permit given back before the batch is sent, and off the
//! async workers.
//!
//! A listing says how to read its next batch by implementing [`Source`];
//! [`Inspector::stream`] does the rest.
//!
//! [budget]: super::budget

use std::sync::Arc;

use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    BATCH_BYTES, Inspector, ServiceError, batch_room,
    budget::{Budget, ConnBuffer, Reservation},
    outbox::{self, Outbox, OutboxStream},
};
use crate::backend::Backend;

/// What a listing reads, a batch at a time. The source is moved to a
/// blocking thread for each batch and back, so it keeps its place between
/// batches itself.
pub trait Source: Send + 'static {
    /// The message a batch is sent as.
    type Batch: Message + Send + 'static;

    /// Reads the next batch, of at most `room` encoded bytes, and says
    /// whether the listing has ended with it. Blocking; it should stop
    /// early, and may say it ended, once `gone` is true (the client went
    /// away). An empty batch is not sent.
    fn next(
        &mut self,
        backend: &dyn Backend,
        room: usize,
        gone: &dyn Fn() -> bool,
    ) -> Result<(Self::Batch, bool), ServiceError>;
}

/// What a running stream holds of the service.
struct Streamer {
    backend: Arc<dyn Backend>,
    scans: Arc<Semaphore>,
    budget: Arc<Budget>,
    conn: Option<Arc<ConnBuffer>>,
}

impl Inspector {
    /// Streams `source`'s batches for a client on `conn`. A listing that
    /// cannot have room for its first batch is refused before it reads
    /// anything; one that waits for a scan permit waits here.
    pub(super) async fn stream<S: Source>(
        &self,
        conn: Option<Arc<ConnBuffer>>,
        source: S,
    ) -> Result<OutboxStream<S::Batch>, ServiceError> {
        let (first, permit) = self.start_listing(conn.as_ref()).await?;
        let (outbox, stream) = outbox::outbox(1, self.options.stream_stall_timeout);
        let streamer = Streamer {
            backend: Arc::clone(&self.backend),
            scans: Arc::clone(&self.scans),
            budget: Arc::clone(&self.budget),
            conn,
        };
        tokio::spawn(streamer.run(source, outbox, permit, first));
        Ok(stream)
    }
}

impl Streamer {
    /// Reads and sends every batch, then ends the stream (with the status
    /// of an error, if one ended it).
    async fn run<S: Source>(
        self,
        source: S,
        outbox: Outbox<S::Batch>,
        permit: OwnedSemaphorePermit,
        first: Reservation,
    ) {
        if let Err(e) = self.send_all(source, &outbox, permit, first).await
            && outbox.send(Err(e.into())).await.is_err()
        {
            return;
        }
        let _ = outbox.finish().await;
    }

    async fn send_all<S: Source>(
        &self,
        mut source: S,
        outbox: &Outbox<S::Batch>,
        permit: OwnedSemaphorePermit,
        first: Reservation,
    ) -> Result<(), ServiceError> {
        let mut permit = Some(permit);
        let mut reserved = Some(first);
        loop {
            let held = reserved.take();
            let Some(mut reservation) =
                batch_room(&self.budget, self.conn.as_ref(), outbox, held, BATCH_BYTES).await?
            else {
                return Ok(());
            };
            let permit = match permit.take() {
                Some(p) => p,
                None => Arc::clone(&self.scans)
                    .acquire_owned()
                    .await
                    .map_err(|_| ServiceError::ShuttingDown)?,
            };
            let backend = Arc::clone(&self.backend);
            let gone = outbox.gone();
            let room = reservation.bytes();
            let (back, read) = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let read = source.next(backend.as_ref(), room, &gone);
                (source, read)
            })
            .await
            .map_err(|e| ServiceError::internal("the scan task failed", e))?;
            source = back;
            let (batch, ended) = read?;
            let bytes = batch.encoded_len();
            if bytes > 0 {
                reservation.shrink_to(bytes);
                if outbox
                    .send_held(Ok(batch), Some(reservation))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            } else {
                reserved = Some(reservation);
            }
            if ended {
                return Ok(());
            }
        }
    }
}

/// A backend and a reader for testing listings.
#[cfg(test)]
pub(super) mod testing {
    use std::ops::ControlFlow;

    use super::*;
    use crate::backend::{
        self, FieldSet,
        files::{FileKind, FilesQuery, OpenFile},
        socket::{ConnStatus, Endpoint, Family, SockType, Socket, SocketListing, SocketQuery},
    };

    /// A backend with `per_process` descriptors (and as many sockets) in
    /// each of pids 1..=3, pid 2 unreadable, and no pid 4.
    pub struct Fake {
        pub per_process: u32,
    }

    impl Backend for Fake {
        fn host(&self) -> Result<backend::HostInfo, backend::Error> {
            unimplemented!()
        }
        fn for_each_process(
            &self,
            _: FieldSet,
            visit: &mut dyn FnMut(backend::ProcessInfo) -> ControlFlow<()>,
        ) -> Result<(), backend::Error> {
            for pid in 1..=3 {
                if visit(backend::ProcessInfo::new(pid)).is_break() {
                    break;
                }
            }
            Ok(())
        }
        fn process(&self, _: u32, _: FieldSet) -> Result<backend::ProcessInfo, backend::Error> {
            unimplemented!()
        }
        fn pid_exists(&self, _: u32) -> Result<bool, backend::Error> {
            unimplemented!()
        }
        fn net_interfaces(&self) -> Result<Vec<backend::NetInterface>, backend::Error> {
            unimplemented!()
        }
        fn signal(&self, _: u32, _: i32, _: Option<f64>) -> Result<(), backend::Error> {
            unimplemented!()
        }
        fn events(
            &self,
            _: backend::WatchMode,
            _: std::time::Duration,
        ) -> Result<Box<dyn backend::EventSource>, backend::Error> {
            unimplemented!()
        }
        fn open_files(
            &self,
            pid: u32,
            _: &FilesQuery,
            after: Option<u32>,
            visit: &mut dyn FnMut(OpenFile) -> ControlFlow<()>,
        ) -> Result<(), backend::Error> {
            match pid {
                2 => {
                    return Err(backend::Error::AccessDenied {
                        pid: Some(2),
                        path: "/proc/2/fd".into(),
                    });
                }
                4.. => return Err(backend::Error::NoSuchProcess { pid }),
                _ => {}
            }
            let first = after.map_or(0, |a| a + 1);
            for fd in first..self.per_process {
                let file = OpenFile {
                    pid,
                    fd,
                    path: format!("/data/{pid}/{fd:04}"),
                    position: 0,
                    mode: "r",
                    flags: 0,
                    kind: FileKind::File,
                    deleted: false,
                };
                if visit(file).is_break() {
                    break;
                }
            }
            Ok(())
        }
        fn connections(&self, _: &SocketQuery) -> Result<SocketListing, backend::Error> {
            let sockets = [1, 3]
                .into_iter()
                .flat_map(|pid| {
                    (0..self.per_process).map(move |fd| Socket {
                        family: Family::Unix,
                        kind: SockType::Stream,
                        laddr: Endpoint::path(format!("/run/{pid}/{fd:04}.sock")),
                        raddr: None,
                        status: ConnStatus::None,
                        inode: u64::from(fd) + 1,
                        uid: None,
                        pid: Some(pid),
                        fd: Some(fd),
                    })
                })
                .collect();
            Ok(SocketListing {
                sockets,
                process_errors: vec![(2, backend::ErrorKind::AccessDenied)],
            })
        }
    }

    /// Every batch of a listing, read with `room` bytes each; each fits.
    pub fn batches<S: Source>(mut source: S, backend: &Fake, room: usize) -> Vec<S::Batch> {
        let mut all = Vec::new();
        loop {
            let (batch, ended) = source.next(backend, room, &|| false).unwrap();
            assert!(
                batch.encoded_len() <= room,
                "{} > {room}",
                batch.encoded_len()
            );
            all.push(batch);
            if ended {
                return all;
            }
            assert!(all.len() < 1000, "no progress");
        }
    }
}
