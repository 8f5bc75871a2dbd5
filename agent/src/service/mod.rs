//! The `hostscope.v1.HostInspector` service: request -> backend -> message.
//!
//! Handlers validate their input, then do the blocking procfs work in
//! `spawn_blocking`. A listing scans the table into batches while it holds
//! one of the scan permits, gives the permit back, and only then sends:
//! a client that reads slowly, or not at all, never keeps a permit from
//! other clients, and an [`outbox`] ends its stream once it has taken
//! nothing for the stall timeout.

use std::{collections::BTreeMap, ops::ControlFlow, sync::Arc, time::Duration};

use hostscope_proto as pb;
use prost::Message;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::{
    authz::{Identity, Policy},
    backend::{self, Backend, Field, FieldSet, ProcessInfo},
};

pub mod audit;
pub mod convert;
pub mod errors;
pub mod outbox;
pub mod signal;
pub mod watch;

use audit::Audit;
pub use errors::ServiceError;
use outbox::OutboxStream;
use watch::{Hub, WatchOptions};

/// Largest message the agent sends. gRPC clients accept 4 MiB by default;
/// a batch stays below it however long the command lines.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// A batch is sent once it holds this many encoded bytes...
const BATCH_BYTES: usize = 256 * 1024;
/// ...or this many processes.
const BATCH_PROCESSES: usize = 512;

/// What the service may do, from the agent's configuration.
#[derive(Clone, Debug)]
pub struct Options {
    /// Serve process environments (they hold secrets).
    pub environ: bool,
    /// Process scans that may run at once; more wait their turn.
    pub max_concurrent_scans: usize,
    /// Who may read, and who may signal.
    pub policy: Policy,
    /// Where process events come from, and the watchers' limits.
    pub watch: WatchOptions,
    /// A stream whose client takes none of its data for this long is
    /// ended (listings and watches alike).
    pub stream_stall_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            environ: false,
            max_concurrent_scans: 4,
            policy: Policy::default(),
            watch: WatchOptions::default(),
            stream_stall_timeout: Duration::from_secs(10),
        }
    }
}

/// The gRPC service over one backend.
#[derive(Clone)]
pub struct Inspector {
    backend: Arc<dyn Backend>,
    options: Options,
    scans: Arc<Semaphore>,
    audit: Arc<Audit>,
    hub: Arc<Hub>,
}

impl Inspector {
    /// The service over `backend`, auditing signals to the log only.
    pub fn new(backend: Arc<dyn Backend>, options: Options) -> Inspector {
        let scans = Arc::new(Semaphore::new(options.max_concurrent_scans.max(1)));
        let hub = Arc::new(Hub::new(
            Arc::clone(&backend),
            options.watch.clone(),
            Arc::clone(&scans),
            options.stream_stall_timeout,
        ));
        Inspector {
            backend,
            options,
            scans,
            audit: Arc::new(Audit::log_only()),
            hub,
        }
    }

    /// Also appends audit lines to `audit`'s file.
    pub fn with_audit(mut self, audit: Audit) -> Inspector {
        self.audit = Arc::new(audit);
        self
    }

    /// Where signal requests are audited: for requests refused before they
    /// reach the service (a malformed SignalProcess message).
    pub fn audit(&self) -> Arc<Audit> {
        Arc::clone(&self.audit)
    }

    /// Where WatchProcesses gets its events: "netlink" or "poll".
    pub fn watch_mode(&self) -> &'static str {
        self.hub.mode_name()
    }

    /// Ends every watch stream: at shutdown, so that the calls in flight
    /// can drain.
    pub fn end_watches(&self) {
        self.hub.shut_down();
    }

    /// Refuses clients that hold no reader role.
    fn authorize_read<T>(&self, request: &Request<T>) -> Result<(), ServiceError> {
        let id = Identity::of(request);
        if self.options.policy.may_read(&id) {
            return Ok(());
        }
        Err(ServiceError::ReadDenied {
            client: id.display().to_owned(),
        })
    }

    /// Everything SignalProcess checks, then the signal itself.
    async fn signal(
        &self,
        id: &Identity,
        request: &pb::SignalProcessRequest,
    ) -> Result<pb::SignalProcessResponse, ServiceError> {
        if !self.options.policy.may_operate(id) {
            return Err(ServiceError::OperatorRequired {
                client: id.display().to_owned(),
            });
        }
        let (name, number) =
            signal::parse(&request.signal).map_err(|e| ServiceError::invalid("signal", e))?;
        // NaN compares false with everything: it would pass the pid-reuse
        // guard it stands for.
        if let Some(t) = request.expected_create_time.filter(|t| !t.is_finite()) {
            return Err(ServiceError::invalid(
                "expected_create_time",
                format!(
                    "expected_create_time must be a finite number of seconds since the epoch, \
                     not {t}"
                ),
            ));
        }
        let pid = request.pid;
        let why = match pid {
            0 => Some("pid 0 is no process (kill(2) would signal a whole process group)"),
            1 => Some("pid 1 is init: signalling it can take the host down"),
            p if p == std::process::id() => Some("that is the agent itself"),
            _ => None,
        };
        if let Some(why) = why {
            return Err(ServiceError::ProtectedProcess { pid, why });
        }
        let expected = request.expected_create_time;
        blocking(&self.backend, move |b| b.signal(pid, number, expected)).await?;
        Ok(pb::SignalProcessResponse {
            pid,
            signal: name.to_owned(),
            signal_number: number,
        })
    }

    /// The fields to read for a request's `fields`, and the fields refused
    /// by configuration. An empty selection means every field this agent
    /// serves; environ asked for by name on an agent that does not serve it
    /// is reported as ACCESS_DENIED rather than silently left out.
    fn select(&self, fields: &[i32]) -> Result<(FieldSet, Vec<Field>), ServiceError> {
        let mut set = if fields.is_empty() {
            let mut all = FieldSet::all();
            if !self.options.environ {
                all.remove(Field::Environ);
            }
            all
        } else {
            fields
                .iter()
                .map(|f| convert::field_from_pb(*f))
                .collect::<Result<FieldSet, _>>()
                .map_err(|e| ServiceError::invalid("fields", e))?
        };
        let mut refused = Vec::new();
        if !self.options.environ && set.contains(Field::Environ) {
            set.remove(Field::Environ);
            refused.push(Field::Environ);
        }
        Ok((set, refused))
    }
}

/// Runs blocking backend work off the async runtime.
async fn blocking<T, F>(backend: &Arc<dyn Backend>, work: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Backend) -> Result<T, backend::Error> + Send + 'static,
{
    let backend = Arc::clone(backend);
    tokio::task::spawn_blocking(move || work(backend.as_ref()))
        .await
        .map_err(|e| ServiceError::internal("the backend task failed", e))?
        .map_err(ServiceError::from)
}

#[tonic::async_trait]
impl pb::host_inspector_server::HostInspector for Inspector {
    async fn get_host(
        &self,
        request: Request<pb::GetHostRequest>,
    ) -> Result<Response<pb::Host>, Status> {
        self.authorize_read(&request)?;
        let mut host = blocking(&self.backend, |b| b.host()).await?;
        if !self.options.environ {
            host.process_fields.remove(Field::Environ);
        }
        Ok(Response::new(convert::host_to_pb(
            host,
            self.hub.mode_name(),
        )))
    }

    type ListProcessesStream = OutboxStream<pb::ProcessBatch>;

    async fn list_processes(
        &self,
        request: Request<pb::ListProcessesRequest>,
    ) -> Result<Response<Self::ListProcessesStream>, Status> {
        self.authorize_read(&request)?;
        let request = request.into_inner();
        let (fields, refused) = self.select(&request.fields)?;
        let filter = convert::filter_from_pb(request.filter.unwrap_or_default())?;
        let permit = Arc::clone(&self.scans)
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::ShuttingDown)?;

        let (outbox, stream) = outbox::outbox(2, self.options.stream_stall_timeout);
        let gone = outbox.gone();
        let backend = Arc::clone(&self.backend);
        tokio::spawn(async move {
            // Scan with the permit, into batches...
            let scanned = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let read = fields.union(filter.needs());
                let mut batches = Batcher::default();
                let mut visit = |info: ProcessInfo| {
                    if gone() {
                        return ControlFlow::Break(());
                    }
                    if filter.matches(&info) {
                        batches.push(convert::process_to_pb_refusing(info, fields, &refused));
                    }
                    ControlFlow::Continue(())
                };
                let result = scan(backend.as_ref(), &filter.pids, read, &mut visit);
                (batches.finish(), result.map_err(ServiceError::from))
            })
            .await;
            let (batches, result) = scanned.unwrap_or_else(|e| {
                (
                    Vec::new(),
                    Err(ServiceError::internal("the scan task failed", e)),
                )
            });
            // ...then send them without it.
            for batch in batches {
                if outbox.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
            if let Err(e) = result {
                if outbox.send(Err(e.into())).await.is_err() {
                    return;
                }
            }
            let _ = outbox.finish().await;
        });
        Ok(Response::new(stream))
    }

    async fn get_process(
        &self,
        request: Request<pb::GetProcessRequest>,
    ) -> Result<Response<pb::Process>, Status> {
        self.authorize_read(&request)?;
        let request = request.into_inner();
        let pid = convert::pid_from_pb("pid", request.pid)?;
        let (fields, refused) = self.select(&request.fields)?;
        let info = blocking(&self.backend, move |b| b.process(pid, fields)).await?;
        let mut msg = convert::process_to_pb_refusing(info, fields, &refused);
        fit(&mut msg, MAX_MESSAGE_BYTES);
        Ok(Response::new(msg))
    }

    async fn pid_exists(
        &self,
        request: Request<pb::PidExistsRequest>,
    ) -> Result<Response<pb::PidExistsResponse>, Status> {
        self.authorize_read(&request)?;
        let pid = convert::pid_from_pb("pid", request.into_inner().pid)?;
        let exists = blocking(&self.backend, move |b| b.pid_exists(pid)).await?;
        Ok(Response::new(pb::PidExistsResponse { exists }))
    }

    async fn list_net_interfaces(
        &self,
        request: Request<pb::ListNetInterfacesRequest>,
    ) -> Result<Response<pb::ListNetInterfacesResponse>, Status> {
        self.authorize_read(&request)?;
        let nics = blocking(&self.backend, |b| b.net_interfaces()).await?;
        Ok(Response::new(pb::ListNetInterfacesResponse {
            interfaces: nics.into_iter().map(convert::nic_to_pb).collect(),
        }))
    }

    async fn find_zombies(
        &self,
        request: Request<pb::FindZombiesRequest>,
    ) -> Result<Response<pb::FindZombiesResponse>, Status> {
        self.authorize_read(&request)?;
        let zombies = blocking(&self.backend, find_zombies).await?;
        Ok(Response::new(zombies))
    }

    async fn signal_process(
        &self,
        request: Request<pb::SignalProcessRequest>,
    ) -> Result<Response<pb::SignalProcessResponse>, Status> {
        let id = Identity::of(&request);
        let peer = request.remote_addr();
        let request = request.into_inner();
        let result = self.signal(&id, &request).await;
        let refusal = result
            .as_ref()
            .err()
            .map(|err| (err.reason().to_owned(), err.to_string()));
        self.audit.record(&audit::Entry {
            time: audit::Entry::now(),
            client: id.display(),
            peer,
            pid: request.pid,
            signal: &request.signal,
            expected_create_time: request.expected_create_time,
            outcome: if refusal.is_none() { "sent" } else { "refused" },
            reason: refusal.as_ref().map(|(reason, _)| reason.clone()),
            message: refusal.map(|(_, message)| message),
        });
        Ok(Response::new(result?))
    }

    type WatchProcessesStream = OutboxStream<pb::ProcessEvent>;

    async fn watch_processes(
        &self,
        request: Request<pb::WatchProcessesRequest>,
    ) -> Result<Response<Self::WatchProcessesStream>, Status> {
        self.authorize_read(&request)?;
        let id = Identity::of(&request);
        let stream = self.hub.watch(&id, request.into_inner()).await?;
        Ok(Response::new(stream))
    }
}

/// Every zombie, grouped by parent, most zombies first; each parent read
/// with what an operator needs to decide what to do with it.
fn find_zombies(b: &dyn Backend) -> Result<pb::FindZombiesResponse, backend::Error> {
    let scan: FieldSet = [Field::Ppid, Field::Name, Field::Status, Field::CreateTime]
        .into_iter()
        .collect();
    let mut by_parent: BTreeMap<u32, Vec<ProcessInfo>> = BTreeMap::new();
    b.for_each_process(scan, &mut |p| {
        if p.status == Some(backend::Status::Zombie) {
            // Backends read the parent from the same record as the state,
            // so a zombie without one is a backend fault, not a zombie of
            // pid 0.
            match p.ppid {
                Some(ppid) => by_parent.entry(ppid).or_default().push(p),
                None => tracing::warn!(pid = p.pid, "a zombie without a parent pid: left out"),
            }
        }
        ControlFlow::Continue(())
    })?;

    let parent_fields: FieldSet = [
        Field::Ppid,
        Field::Name,
        Field::Exe,
        Field::Cmdline,
        Field::Username,
        Field::CreateTime,
        Field::Status,
    ]
    .into_iter()
    .collect();
    let mut parents = Vec::with_capacity(by_parent.len());
    for (ppid, zombies) in by_parent {
        let parent = match b.process(ppid, parent_fields) {
            Ok(p) => Some(convert::process_to_pb(p, parent_fields)),
            // It exited after the scan: its zombies are being reparented.
            Err(backend::Error::NoSuchProcess { .. }) => None,
            Err(e) => return Err(e),
        };
        parents.push(convert::zombie_parent_to_pb(ppid, parent, zombies));
    }
    Ok(convert::zombies_to_pb(parents))
}

/// Visits every process, or only the listed `pids` when there are some,
/// skipping those that do not exist: a pid list is a handful of reads, not
/// a scan of the whole table.
fn scan(
    backend: &dyn Backend,
    pids: &[u32],
    fields: FieldSet,
    visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
) -> Result<(), backend::Error> {
    if pids.is_empty() {
        return backend.for_each_process(fields, visit);
    }
    for &pid in pids {
        match backend.process(pid, fields) {
            Ok(info) => {
                if visit(info).is_break() {
                    break;
                }
            }
            Err(backend::Error::NoSuchProcess { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Groups processes into batches bounded in count and encoded size.
#[derive(Default)]
struct Batcher {
    done: Vec<pb::ProcessBatch>,
    batch: pb::ProcessBatch,
    bytes: usize,
}

impl Batcher {
    /// Adds a process.
    fn push(&mut self, mut process: pb::Process) {
        // Room for the batch's own framing of this entry.
        const ENTRY_OVERHEAD: usize = 16;
        let limit = MAX_MESSAGE_BYTES - ENTRY_OVERHEAD;
        fit(&mut process, limit);
        let len = process.encoded_len() + ENTRY_OVERHEAD;
        if self.bytes + len > limit {
            self.flush();
        }
        self.bytes += len;
        self.batch.processes.push(process);
        if self.bytes >= BATCH_BYTES || self.batch.processes.len() >= BATCH_PROCESSES {
            self.flush();
        }
    }

    /// Closes the batch so far.
    fn flush(&mut self) {
        if self.batch.processes.is_empty() {
            return;
        }
        self.bytes = 0;
        self.done.push(std::mem::take(&mut self.batch));
    }

    /// Every batch, the last one included.
    fn finish(mut self) -> Vec<pb::ProcessBatch> {
        self.flush();
        self.done
    }
}

/// Shrinks a process whose environment or command line alone would exceed
/// `limit` bytes: variables go first, then trailing arguments. The kernel
/// allows argument lists far beyond any sane message; such processes are
/// still listed, with what fits.
fn fit(process: &mut pb::Process, limit: usize) {
    while process.encoded_len() > limit {
        if process.environ.pop_last().is_some() {
            continue;
        }
        match process.cmdline.last_mut() {
            Some(arg) if arg.len() > 4096 => {
                let mut cut = arg.len() / 2;
                while !arg.is_char_boundary(cut) {
                    cut -= 1;
                }
                arg.truncate(cut);
            }
            Some(_) => {
                process.cmdline.pop();
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_a_huge_process_under_the_limit() {
        let mut p = pb::Process {
            pid: 1,
            cmdline: vec!["x".repeat(3 * 1024 * 1024), "y".repeat(3 * 1024 * 1024)],
            environ: [("SECRET".to_owned(), "z".repeat(1024 * 1024))].into(),
            ..Default::default()
        };
        fit(&mut p, MAX_MESSAGE_BYTES);
        assert!(p.encoded_len() <= MAX_MESSAGE_BYTES);
        assert!(p.environ.is_empty());
        assert_eq!(p.cmdline[0].len(), 3 * 1024 * 1024);
    }

    #[test]
    fn batches_stay_under_the_message_limit() {
        let mut batcher = Batcher::default();
        // Small processes fill a batch part way; a huge one must then start
        // a batch of its own instead of overflowing this one.
        let sizes = [
            100_000,
            100_000,
            MAX_MESSAGE_BYTES - 100,
            100_000,
            5 * MAX_MESSAGE_BYTES,
        ];
        for (pid, size) in (1..).zip(sizes) {
            let p = pb::Process {
                pid,
                cmdline: vec!["a".repeat(size)],
                ..Default::default()
            };
            batcher.push(p);
        }
        let mut seen = 0;
        for batch in batcher.finish() {
            assert!(batch.encoded_len() <= MAX_MESSAGE_BYTES);
            seen += batch.processes.len();
        }
        assert_eq!(seen, sizes.len());
    }
}
