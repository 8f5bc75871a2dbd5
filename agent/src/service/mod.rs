//! The `hostscope.v1.HostInspector` service: request -> backend -> message.
//!
//! Handlers validate their input, then do the blocking procfs work in
//! `spawn_blocking`. A listing finds the pids that match while it holds one
//! of the scan permits, then reads them a batch at a time, each under a
//! permit it gives back before sending: a client that reads slowly, or not
//! at all, never keeps a permit from other clients. A batch is read only
//! once the client has taken the one before and the response [`budget`]
//! has room for it, and an [`outbox`] ends the stream once its client has
//! taken nothing for the stall timeout.

use std::{collections::BTreeMap, ops::ControlFlow, sync::Arc, time::Duration};

use hostscope_proto as pb;
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use crate::{
    authz::{DataClass, Identity, Policy},
    backend::{self, Backend, Field, FieldSet, ProcessInfo},
};

pub mod audit;
pub mod budget;
pub mod convert;
pub mod errors;
pub mod files;
pub mod outbox;
pub mod percent;
pub mod signal;
pub mod sockets;
pub mod stream;
pub mod system;
pub mod watch;

use audit::Audit;
use budget::{Budget, ConnBuffer, Reservation};
pub use errors::ServiceError;
use outbox::{Outbox, OutboxStream};
use watch::{Hub, WatchOptions};

/// Largest message the agent sends. gRPC clients accept 4 MiB by default;
/// a batch stays below it however long the command lines.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The least `max_buffered_bytes` (and per connection) the agent accepts:
/// a few batches of a listing.
pub const MIN_BUFFERED_BYTES: usize = 4 * BATCH_BYTES;

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
    /// Bytes of listings held for clients that have not taken them yet,
    /// for every connection together.
    pub max_buffered_bytes: usize,
    /// The same, for any one connection.
    pub max_buffered_bytes_per_connection: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            environ: false,
            max_concurrent_scans: 4,
            policy: Policy::default(),
            watch: WatchOptions::default(),
            stream_stall_timeout: Duration::from_secs(10),
            max_buffered_bytes: 32 * 1024 * 1024,
            max_buffered_bytes_per_connection: 8 * 1024 * 1024,
        }
    }
}

/// The gRPC service over one backend.
#[derive(Clone)]
pub struct Inspector {
    backend: Arc<dyn Backend>,
    options: Options,
    scans: Arc<Semaphore>,
    budget: Arc<Budget>,
    audit: Arc<Audit>,
    hub: Arc<Hub>,
    /// Runs statvfs calls under deadlines for ListDisks.
    disks: Arc<system::UsageProbe>,
    /// For memory_percent.
    memory_total: percent::MemoryTotal,
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
        let budget = Budget::new(
            options.max_buffered_bytes,
            options.max_buffered_bytes_per_connection,
        );
        Inspector {
            backend,
            options,
            scans,
            budget,
            audit: Arc::new(Audit::log_only()),
            hub,
            disks: Arc::default(),
            memory_total: percent::MemoryTotal::default(),
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

    /// How long a client may take none of a response's data.
    pub fn stream_stall_timeout(&self) -> Duration {
        self.options.stream_stall_timeout
    }

    /// Bytes of listings held now for clients that have not taken them
    /// yet (see [`budget`]); 0 once every stream has ended.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.used()
    }

    /// The largest message one process may take in a listing: a batch of
    /// that one process must fit the message limit and the budgets.
    fn largest_process(&self) -> usize {
        MAX_MESSAGE_BYTES
            .min(self.options.max_buffered_bytes)
            .min(self.options.max_buffered_bytes_per_connection)
            .max(BATCH_BYTES)
    }

    /// Waits for one of the scan permits.
    async fn scan_permit(&self) -> Result<OwnedSemaphorePermit, ServiceError> {
        Arc::clone(&self.scans)
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::ShuttingDown)
    }

    /// What every listing does before it scans: refuses one that cannot
    /// have room for its first batch, then waits for a scan permit.
    async fn start_listing(
        &self,
        conn: Option<&Arc<ConnBuffer>>,
    ) -> Result<(Reservation, OwnedSemaphorePermit), ServiceError> {
        let first = self
            .budget
            .try_reserve(conn, BATCH_BYTES)
            .map_err(ServiceError::from)?;
        Ok((first, self.scan_permit().await?))
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

    /// The classes of data withheld from the client of `request`: those the
    /// policy withholds from readers, and environments everywhere unless
    /// the configuration serves them.
    fn withheld<T>(&self, request: &Request<T>) -> Vec<DataClass> {
        let mut classes = self.options.policy.withheld_from(&Identity::of(request));
        if !self.options.environ && !classes.contains(&DataClass::Environ) {
            classes.push(DataClass::Environ);
            classes.sort();
        }
        classes
    }

    /// Refuses a call whose whole answer is of a class withheld from its
    /// client.
    fn refuse_withheld<T>(
        &self,
        request: &Request<T>,
        class: DataClass,
    ) -> Result<(), ServiceError> {
        if self.withheld(request).contains(&class) {
            return Err(ServiceError::Withheld {
                class: class.name(),
                client: Identity::of(request).display().to_owned(),
            });
        }
        Ok(())
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

    /// The fields to read for a request's `fields`, and the fields
    /// withheld from its client. An empty selection means every field the
    /// client may see but the costly ones (memory_full_info, memory_maps),
    /// which are read when named; a withheld field asked for by name is
    /// reported as WITHHELD rather than silently left out. `ungrouped` (the
    /// request's `memory_maps_ungrouped`) asks for one memory map per
    /// mapping.
    fn select<T>(
        &self,
        request: &Request<T>,
        fields: &[i32],
        ungrouped: bool,
    ) -> Result<(FieldSet, Vec<Field>), ServiceError> {
        let named = !fields.is_empty();
        let mut set = if named {
            fields
                .iter()
                .map(|f| convert::field_from_pb(*f))
                .collect::<Result<FieldSet, _>>()
                .map_err(|e| ServiceError::invalid("fields", e))?
        } else {
            let mut all = FieldSet::all();
            for costly in Field::COSTLY {
                all.remove(costly);
            }
            all
        };
        if ungrouped && set.contains(Field::MemoryMaps) {
            set.remove(Field::MemoryMaps);
            set.insert(Field::MemoryMapsUngrouped);
        }
        let mut refused = Vec::new();
        for field in self.withheld(request).into_iter().flat_map(withheld_fields) {
            if set.contains(*field) {
                set.remove(*field);
                if named {
                    refused.push(*field);
                }
            }
        }
        Ok((set, refused))
    }
}

/// The process fields of a class of data.
fn withheld_fields(class: DataClass) -> &'static [Field] {
    match class {
        DataClass::Environ => &[Field::Environ],
        DataClass::MemoryMaps => &[Field::MemoryMaps, Field::MemoryMapsUngrouped],
        DataClass::Connections | DataClass::OpenFiles => &[],
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
        let withheld = self.withheld(&request);
        let mut host = blocking(&self.backend, |b| b.host()).await?;
        for field in withheld.iter().copied().flat_map(withheld_fields) {
            host.process_fields.remove(*field);
        }
        // What the service works out from what the backend reads.
        if host.system_fields.contains(backend::SystemField::CpuTimes) {
            host.system_fields.insert(backend::SystemField::CpuPercent);
            host.system_fields
                .insert(backend::SystemField::CpuTimesPercent);
        }
        if host.process_fields.contains(Field::CpuTimes) {
            host.process_fields.insert(Field::CpuPercent);
        }
        if host.process_fields.contains(Field::MemoryInfo) {
            host.process_fields.insert(Field::MemoryPercent);
        }
        let mut host = convert::host_to_pb(host, self.hub.mode_name());
        host.withheld = withheld.iter().map(|c| c.name().to_owned()).collect();
        Ok(Response::new(host))
    }

    type ListConnectionsStream = OutboxStream<pb::ConnectionBatch>;

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<Self::ListConnectionsStream>, Status> {
        self.authorize_read(&request)?;
        self.refuse_withheld(&request, DataClass::Connections)?;
        let conn = request.extensions().get::<Arc<ConnBuffer>>().cloned();
        let source = sockets::Connections::new(request.into_inner())?;
        Ok(Response::new(self.stream(conn, source).await?))
    }

    type ListOpenFilesStream = OutboxStream<pb::OpenFileBatch>;

    async fn list_open_files(
        &self,
        request: Request<pb::ListOpenFilesRequest>,
    ) -> Result<Response<Self::ListOpenFilesStream>, Status> {
        self.authorize_read(&request)?;
        self.refuse_withheld(&request, DataClass::OpenFiles)?;
        let conn = request.extensions().get::<Arc<ConnBuffer>>().cloned();
        let source = files::OpenFiles::new(request.into_inner())?;
        Ok(Response::new(self.stream(conn, source).await?))
    }

    type ListProcessesStream = OutboxStream<pb::ProcessBatch>;

    async fn list_processes(
        &self,
        request: Request<pb::ListProcessesRequest>,
    ) -> Result<Response<Self::ListProcessesStream>, Status> {
        self.authorize_read(&request)?;
        let conn = request.extensions().get::<Arc<ConnBuffer>>().cloned();
        let (fields, refused) = self.select(
            &request,
            &request.get_ref().fields,
            request.get_ref().memory_maps_ungrouped,
        )?;
        let request = request.into_inner();
        let interval = fields
            .contains(Field::CpuPercent)
            .then(|| system::interval_from_pb("interval_ms", request.interval_ms))
            .transpose()?;
        let filter = convert::filter_from_pb(request.filter.unwrap_or_default())?;
        let (first, permit) = self.start_listing(conn.as_ref()).await?;

        let (outbox, stream) = outbox::outbox(1, self.options.stream_stall_timeout);
        let listing = Listing {
            backend: Arc::clone(&self.backend),
            scans: Arc::clone(&self.scans),
            budget: Arc::clone(&self.budget),
            conn,
            fields,
            refused: Arc::from(refused),
            filter: Arc::new(filter),
            largest: self.largest_process(),
            interval,
            memory_total: self.memory_total.clone(),
        };
        tokio::spawn(listing.run(outbox, permit, first));
        Ok(Response::new(stream))
    }

    async fn get_process(
        &self,
        request: Request<pb::GetProcessRequest>,
    ) -> Result<Response<pb::Process>, Status> {
        self.authorize_read(&request)?;
        let (fields, refused) = self.select(
            &request,
            &request.get_ref().fields,
            request.get_ref().memory_maps_ungrouped,
        )?;
        let request = request.into_inner();
        let pid = convert::pid_from_pb("pid", request.pid)?;
        // Reads whose cost grows with the process (its fd directory, its
        // environment and arguments) wait for a scan permit like a scan.
        // The permit goes with the work: a call given up on does not free
        // it while the read still runs.
        let permit = if fields.any(&[
            Field::NumFds,
            Field::Environ,
            Field::Cmdline,
            Field::Threads,
            Field::MemoryFullInfo,
            Field::MemoryMaps,
            Field::MemoryMapsUngrouped,
        ]) {
            Some(self.scan_permit().await?)
        } else {
            None
        };
        // cpu_percent: one reading now and one an interval later.
        let before = if fields.contains(Field::CpuPercent) {
            let interval = system::interval_from_pb("interval_ms", request.interval_ms)?;
            let first = blocking(&self.backend, move |b| {
                b.process(pid, percent::first_reading())
            })
            .await?;
            let reading = watch::sampler::Reading::of(&first, std::time::Instant::now());
            tokio::time::sleep(interval).await;
            Some(reading)
        } else {
            None
        };
        let memory_total = self.memory_total.clone();
        let info = blocking(&self.backend, move |b| {
            let _permit = permit;
            let mut info = b.process(pid, percent::sources(fields))?;
            let total = match fields.contains(Field::MemoryPercent) {
                true => memory_total.get(b),
                false => 0,
            };
            percent::fill(
                &mut info,
                fields,
                before.as_ref(),
                std::time::Instant::now(),
                total,
            );
            Ok(info)
        })
        .await?;
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
        // A scan of the whole table, and a read of every zombie's parent.
        let permit = self.scan_permit().await?;
        let zombies = blocking(&self.backend, move |b| {
            let _permit = permit;
            find_zombies(b)
        })
        .await?;
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

    async fn get_system(
        &self,
        request: Request<pb::GetSystemRequest>,
    ) -> Result<Response<pb::System>, Status> {
        self.authorize_read(&request)?;
        let system = system::get_system(&self.backend, request.into_inner()).await?;
        Ok(Response::new(system))
    }

    async fn list_disks(
        &self,
        request: Request<pb::ListDisksRequest>,
    ) -> Result<Response<pb::ListDisksResponse>, Status> {
        self.authorize_read(&request)?;
        let disks = system::list_disks(&self.backend, &self.disks, request.into_inner()).await?;
        Ok(Response::new(disks))
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

// === Listing ===

/// Waits until the client has taken the batch before, then for `want`
/// bytes of the response budget (`held` when it is that large). `None`
/// when the client has gone.
async fn batch_room<T>(
    budget: &Arc<Budget>,
    conn: Option<&Arc<ConnBuffer>>,
    outbox: &Outbox<T>,
    held: Option<Reservation>,
    want: usize,
) -> Result<Option<Reservation>, ServiceError> {
    if outbox.room().await.is_err() {
        return Ok(None);
    }
    Ok(Some(match held {
        Some(r) if r.bytes() >= want => r,
        held => {
            drop(held);
            budget.reserve(conn, want, outbox.stall()).await?
        }
    }))
}

/// One ListProcesses stream: which processes match is decided first (a
/// list of pids, cheap to hold); their fields are read a batch at a time,
/// only when the client has taken the batch before and the agent's
/// response budget has room for the next.
struct Listing {
    backend: Arc<dyn Backend>,
    scans: Arc<Semaphore>,
    budget: Arc<Budget>,
    conn: Option<Arc<ConnBuffer>>,
    fields: FieldSet,
    refused: Arc<[Field]>,
    filter: Arc<backend::Filter>,
    /// The largest message one process may take (see [`Inspector::largest_process`]).
    largest: usize,
    /// cpu_percent's interval, when it is asked for.
    interval: Option<Duration>,
    /// For memory_percent.
    memory_total: percent::MemoryTotal,
}

/// The processes a listing matched: their pids, in order, and each one's
/// first CPU reading when cpu_percent is asked for.
#[derive(Clone)]
struct Matched {
    pids: Arc<[u32]>,
    readings: Arc<percent::Readings>,
}

/// What reading one batch found.
struct Read {
    batch: pb::ProcessBatch,
    /// Encoded bytes of the batch.
    bytes: usize,
    /// Index of the first pid not read into the batch.
    next: usize,
    /// The encoded size of the process at `next` when it did not fit in
    /// an empty batch: it needs a larger reservation.
    needs: Option<usize>,
}

impl Listing {
    /// Lists, sends, and ends the stream.
    async fn run(
        self,
        outbox: Outbox<pb::ProcessBatch>,
        permit: OwnedSemaphorePermit,
        first: Reservation,
    ) {
        if let Err(e) = self.send_all(&outbox, permit, first).await
            && outbox.send(Err(e.into())).await.is_err()
        {
            return;
        }
        let _ = outbox.finish().await;
    }

    /// Sends every batch; Err for the status that ends the stream.
    async fn send_all(
        &self,
        outbox: &Outbox<pb::ProcessBatch>,
        permit: OwnedSemaphorePermit,
        first: Reservation,
    ) -> Result<(), ServiceError> {
        let matched = self.matching(permit, outbox.gone()).await?;
        let pids = Arc::clone(&matched.pids);
        if let Some(interval) = self.interval {
            tokio::time::sleep(interval).await;
        }
        let mut next = 0;
        let mut reserved = Some(first);
        let mut needs = None;
        while next < pids.len() {
            let want = needs.map_or(BATCH_BYTES, |n: usize| n.max(BATCH_BYTES));
            let held = reserved.take();
            let Some(mut reservation) =
                batch_room(&self.budget, self.conn.as_ref(), outbox, held, want).await?
            else {
                return Ok(());
            };
            let permit = Arc::clone(&self.scans)
                .acquire_owned()
                .await
                .map_err(|_| ServiceError::ShuttingDown)?;
            let read = self
                .read(
                    permit,
                    matched.clone(),
                    next,
                    reservation.bytes(),
                    needs.is_some(),
                    outbox.gone(),
                )
                .await?;
            next = read.next;
            needs = read.needs;
            if read.batch.processes.is_empty() {
                reserved = Some(reservation);
                continue;
            }
            reservation.shrink_to(read.bytes);
            if outbox
                .send_held(Ok(read.batch), Some(reservation))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The pids of the processes that match the filter, read under `permit`
    /// with only the fields the filter needs, and each one's first reading
    /// when cpu_percent is asked for.
    async fn matching(
        &self,
        permit: OwnedSemaphorePermit,
        gone: impl Fn() -> bool + Send + 'static,
    ) -> Result<Matched, ServiceError> {
        let backend = Arc::clone(&self.backend);
        let filter = Arc::clone(&self.filter);
        let measure = self.interval.is_some();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut pids = Vec::new();
            let mut readings = percent::Readings::new();
            let mut visit = |info: ProcessInfo| {
                if gone() {
                    return ControlFlow::Break(());
                }
                if filter.matches(&info) {
                    pids.push(info.pid);
                    if measure {
                        let reading = watch::sampler::Reading::of(&info, std::time::Instant::now());
                        readings.insert(info.pid, reading);
                    }
                }
                ControlFlow::Continue(())
            };
            let mut fields = filter.needs();
            if measure {
                fields = fields.union(percent::first_reading());
            }
            scan(backend.as_ref(), &filter.pids, fields, &mut visit)?;
            Ok(Matched {
                pids: Arc::from(pids),
                readings: Arc::new(readings),
            })
        })
        .await
        .map_err(|e| ServiceError::internal("the scan task failed", e))?
    }

    /// Reads the `matched` processes from `next` on into one batch of at
    /// most `room` encoded bytes, under `permit`. With `force`, the first
    /// process is cut down to the room if it has grown since it was
    /// measured.
    async fn read(
        &self,
        permit: OwnedSemaphorePermit,
        matched: Matched,
        next: usize,
        room: usize,
        force: bool,
        gone: impl Fn() -> bool + Send + 'static,
    ) -> Result<Read, ServiceError> {
        let backend = Arc::clone(&self.backend);
        let filter = Arc::clone(&self.filter);
        let refused = Arc::clone(&self.refused);
        let fields = self.fields;
        let largest = self.largest;
        let explicit = !filter.pids.is_empty();
        let memory_total = self.memory_total.clone();
        let Matched { pids, readings } = matched;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let read_fields = percent::sources(fields).union(filter.needs());
            let total = match fields.contains(Field::MemoryPercent) {
                true => memory_total.get(backend.as_ref()),
                false => 0,
            };
            let mut batch = Batch::new(room);
            let mut at = next;
            let mut failed = None;
            let mut needs = None;
            let mut visit = |pid: u32, read: Result<ProcessInfo, backend::Error>| {
                if batch.is_full() || gone() {
                    return ControlFlow::Break(());
                }
                let mut info = match read {
                    Ok(info) => info,
                    // It exited since the filter saw it.
                    Err(backend::Error::NoSuchProcess { .. }) => {
                        at += 1;
                        return ControlFlow::Continue(());
                    }
                    Err(e) if explicit => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                    Err(e) => {
                        tracing::warn!(pid, error = %e, "skipping an unreadable process");
                        at += 1;
                        return ControlFlow::Continue(());
                    }
                };
                // It may have changed (exec'd, say) since it matched.
                if !filter.matches(&info) {
                    at += 1;
                    return ControlFlow::Continue(());
                }
                let now = std::time::Instant::now();
                percent::fill(&mut info, fields, readings.get(&pid), now, total);
                let mut process = convert::process_to_pb_refusing(info, fields, &refused);
                let limit = if force && batch.is_empty() {
                    largest.min(room)
                } else {
                    largest
                };
                fit(&mut process, limit.saturating_sub(ENTRY_OVERHEAD));
                match batch.offer(process) {
                    Ok(()) => {
                        at += 1;
                        ControlFlow::Continue(())
                    }
                    Err(len) => {
                        if batch.is_empty() {
                            needs = Some(len);
                        }
                        // Read again as the first of the next batch.
                        ControlFlow::Break(())
                    }
                }
            };
            backend.processes(&pids[next..], read_fields, &mut visit)?;
            if let Some(e) = failed {
                return Err(ServiceError::from(e));
            }
            let bytes = batch.bytes;
            let ended = gone();
            Ok(Read {
                batch: batch.done(),
                bytes,
                next: if ended { pids.len() } else { at },
                needs,
            })
        })
        .await
        .map_err(|e| ServiceError::internal("the scan task failed", e))?
    }
}

/// Room in a batch for one entry's own framing.
const ENTRY_OVERHEAD: usize = 16;

/// One batch of processes, bounded in count and in encoded size.
struct Batch {
    processes: Vec<pb::Process>,
    bytes: usize,
    room: usize,
}

impl Batch {
    fn new(room: usize) -> Batch {
        Batch {
            processes: Vec::new(),
            bytes: 0,
            room: room.min(MAX_MESSAGE_BYTES),
        }
    }

    fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    fn is_full(&self) -> bool {
        self.processes.len() >= BATCH_PROCESSES || self.bytes >= self.room
    }

    /// Adds `process` if it fits; else its encoded size with framing.
    fn offer(&mut self, process: pb::Process) -> Result<(), usize> {
        let len = process.encoded_len() + ENTRY_OVERHEAD;
        if self.bytes + len > self.room {
            return Err(len);
        }
        self.bytes += len;
        self.processes.push(process);
        Ok(())
    }

    fn done(self) -> pb::ProcessBatch {
        pb::ProcessBatch {
            processes: self.processes,
        }
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
    fn a_batch_takes_what_fits_its_room_and_names_the_size_of_what_does_not() {
        let process = |size: usize| pb::Process {
            pid: 1,
            cmdline: vec!["a".repeat(size)],
            ..Default::default()
        };
        let mut batch = Batch::new(250_000);
        assert!(batch.offer(process(100_000)).is_ok());
        assert!(batch.offer(process(100_000)).is_ok());
        let len = batch.offer(process(100_000)).expect_err("no room left");
        assert!(len > 100_000 && len < 100_000 + 2 * ENTRY_OVERHEAD, "{len}");
        assert!(batch.bytes <= 250_000);
        let done = batch.done();
        assert_eq!(done.processes.len(), 2);
        assert!(done.encoded_len() <= 250_000);

        let mut tiny = Batch::new(10 * MAX_MESSAGE_BYTES);
        assert_eq!(
            tiny.room, MAX_MESSAGE_BYTES,
            "never above the message limit"
        );
        for _ in 0..BATCH_PROCESSES {
            tiny.offer(process(1)).expect("room");
        }
        assert!(tiny.is_full());
    }
}
