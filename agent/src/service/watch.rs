//! WatchProcesses: one collector for every watcher.
//!
//! The first watcher starts a collector thread that reads the backend's
//! event source (the kernel's process connector, or a table diff), turns
//! raw fork/exec/exit events into `ProcessEvent`s, and publishes them on a
//! bounded broadcast channel. Each watcher filters that stream for itself.
//! A watcher that falls behind loses the oldest events, gets a LAGGED event
//! saying how many, and goes on: it never blocks the collector or other
//! watchers, and memory stays bounded. When the last watcher leaves, the
//! collector stops: nothing runs while nobody watches.

use std::{
    collections::{HashMap, HashSet},
    ops::ControlFlow,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use hostscope_proto as pb;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{
    authz::Identity,
    backend::{self, Backend, EventSource, Field, FieldSet, RawEvent, Status as ProcStatus},
    service::{self, ServiceError},
};

/// How watching is set up and bounded.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Kernel events, polling, or the first that works.
    pub mode: backend::WatchMode,
    /// How often polling diffs the process table.
    pub poll_interval: Duration,
    /// Events the collector keeps for slow watchers before they lag.
    pub broadcast_capacity: usize,
    /// Events buffered per watcher between its filter and its stream.
    pub watcher_buffer: usize,
    /// Watchers per agent.
    pub max_watchers: usize,
    /// Watchers per client identity.
    pub max_watchers_per_client: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            mode: backend::WatchMode::Auto,
            poll_interval: Duration::from_secs(1),
            broadcast_capacity: 4096,
            watcher_buffer: 256,
            max_watchers: 64,
            max_watchers_per_client: 8,
        }
    }
}

type Event = Arc<pb::ProcessEvent>;

/// The shared collector and the watchers' bookkeeping.
pub struct Hub {
    backend: Arc<dyn Backend>,
    options: WatchOptions,
    /// The running collector's channel; `None` while nobody watches.
    channel: Arc<Mutex<Option<broadcast::Sender<Event>>>>,
    /// Watchers by client identity.
    watchers: Arc<Mutex<HashMap<String, usize>>>,
    /// Flips to true when the agent shuts down: every stream then ends.
    stop: watch::Sender<bool>,
    /// Which source the collector uses, found out at start-up.
    mode: backend::WatchMode,
}

impl Hub {
    /// A hub over `backend`; finds out which event source works (and so
    /// which mode GetHost reports) by opening it once.
    pub fn new(backend: Arc<dyn Backend>, options: WatchOptions) -> Hub {
        let mode = match backend.events(options.mode, options.poll_interval) {
            Ok(source) => source.mode(),
            Err(e) => {
                tracing::warn!(error = %e, "process events unavailable: WatchProcesses will fail");
                options.mode
            }
        };
        Hub {
            backend,
            options,
            channel: Arc::default(),
            watchers: Arc::default(),
            stop: watch::channel(false).0,
            mode,
        }
    }

    /// "netlink" or "poll", for GetHost and the start-up log.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            backend::WatchMode::Kernel => "netlink",
            backend::WatchMode::Poll => "poll",
            backend::WatchMode::Auto => "unavailable",
        }
    }

    /// Ends every watch stream (at shutdown, so that draining calls in
    /// flight can finish).
    pub fn shut_down(&self) {
        self.stop.send_replace(true);
    }

    /// Starts a watcher for `request` on behalf of `client`.
    pub async fn watch(
        &self,
        client: &Identity,
        request: pb::WatchProcessesRequest,
    ) -> Result<ReceiverStream<Result<pb::ProcessEvent, Status>>, ServiceError> {
        let filter = WatchFilter::new(&request)?;
        let sample = match request.sample_interval {
            None => None,
            Some(s) if (0.1..=86_400.0).contains(&s) => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(ServiceError::invalid(
                    "sample_interval",
                    format!("sample_interval must be between 0.1 and 86400 seconds, not {s}"),
                ));
            }
        };
        if sample.is_some() {
            let pids = filter.pids.clone();
            service::blocking(&self.backend, move |b| check_sampleable(b, &pids)).await?;
        }
        let slot = self.take_slot(client)?;
        let events = self.subscribe()?;

        // The descendants known now; forks seen later extend the set.
        let mut tree = match request.descendants_of {
            Some(root) => service::blocking(&self.backend, move |b| descendants(b, root)).await?,
            None => Tree::default(),
        };

        let (tx, rx) = mpsc::channel(self.options.watcher_buffer.max(1));
        let backend = Arc::clone(&self.backend);
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let _slot = slot;
            let mut events = events;
            let mut sampler = Sampler::new(backend, sample);
            let mut tick = sample.map(|every| {
                let mut t = tokio::time::interval(every);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            if tick.is_some() {
                // The first sample needs a baseline one interval earlier.
                let _ = sampler.sample(&filter, &tree).await;
            }
            loop {
                let next_tick = async {
                    match tick.as_mut() {
                        Some(t) => t.tick().await,
                        None => std::future::pending().await,
                    }
                };
                let out = tokio::select! {
                    () = async {
                        // The guard `wait_for` returns is not Send: drop it here.
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    } => break,
                    () = tx.closed() => break,
                    received = events.recv() => match received {
                        Ok(event) => {
                            if !filter.admits(&event, &mut tree) {
                                continue;
                            }
                            vec![Ok((*event).clone())]
                        }
                        Err(broadcast::error::RecvError::Lagged(dropped)) => vec![Ok(lagged(dropped))],
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = next_tick => sampler.sample(&filter, &tree).await,
                };
                for event in out {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }

    /// Counts a watcher against the limits, released when dropped.
    fn take_slot(&self, client: &Identity) -> Result<Slot, ServiceError> {
        let who = client.display().to_owned();
        let mut watchers = lock(&self.watchers);
        let total: usize = watchers.values().sum();
        if total >= self.options.max_watchers {
            return Err(ServiceError::AgentWatchLimit {
                limit: self.options.max_watchers,
            });
        }
        let mine = watchers.entry(who.clone()).or_default();
        if *mine >= self.options.max_watchers_per_client {
            return Err(ServiceError::ClientWatchLimit {
                client: who,
                limit: self.options.max_watchers_per_client,
            });
        }
        *mine += 1;
        Ok(Slot {
            watchers: Arc::clone(&self.watchers),
            who,
        })
    }

    /// A receiver of the collector's events, starting the collector when
    /// nobody watched.
    fn subscribe(&self) -> Result<broadcast::Receiver<Event>, ServiceError> {
        let mut channel = lock(&self.channel);
        if let Some(tx) = channel.as_ref() {
            return Ok(tx.subscribe());
        }
        let source = self
            .backend
            .events(self.options.mode, self.options.poll_interval)?;
        let (tx, rx) = broadcast::channel(self.options.broadcast_capacity.max(16));
        *channel = Some(tx.clone());
        let collector = Collector {
            backend: Arc::clone(&self.backend),
            source,
            tx,
            channel: Arc::clone(&self.channel),
        };
        std::thread::Builder::new()
            .name("hostscope-events".into())
            .spawn(move || collector.run())
            .map_err(|e| ServiceError::internal("starting the event collector", e))?;
        Ok(rx)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One watcher's place against the limits.
struct Slot {
    watchers: Arc<Mutex<HashMap<String, usize>>>,
    who: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut watchers = lock(&self.watchers);
        if let Some(n) = watchers.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                watchers.remove(&self.who);
            }
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn lagged(dropped: u64) -> pb::ProcessEvent {
    pb::ProcessEvent {
        kind: pb::ProcessEventKind::Lagged as i32,
        time: now(),
        dropped,
        ..Default::default()
    }
}

// === Collector ===

/// What the collector remembers of a live process, to name it when it
/// exits (by then /proc may have nothing left to read).
struct Known {
    name: Option<String>,
    ppid: Option<u32>,
    username: Option<String>,
}

/// A check, soon after an exit, of whether the process is left a zombie:
/// the kernel reports the exit before the process's state turns Z.
struct ZombieCheck {
    pid: u32,
    due: Instant,
    tries: u32,
    /// What was known of the process when it exited.
    known: Option<Known>,
}

struct Collector {
    backend: Arc<dyn Backend>,
    source: Box<dyn EventSource>,
    tx: broadcast::Sender<Event>,
    channel: Arc<Mutex<Option<broadcast::Sender<Event>>>>,
}

/// Delays of the zombie checks after an exit.
const ZOMBIE_CHECKS: [Duration; 4] = [
    Duration::from_millis(2),
    Duration::from_millis(20),
    Duration::from_millis(200),
    Duration::from_secs(2),
];

impl Collector {
    fn run(mut self) {
        tracing::debug!(mode = ?self.source.mode(), "event collector started");
        let mut known = self.initial_table();
        let mut checks: Vec<ZombieCheck> = Vec::new();
        let mut raw = Vec::new();
        loop {
            // Stop once nobody listens; checked under the lock that
            // `subscribe` holds, so no new watcher can join a stopping
            // collector.
            {
                let mut channel = lock(&self.channel);
                if self.tx.receiver_count() == 0 {
                    *channel = None;
                    tracing::debug!("event collector stopped: nobody watches");
                    return;
                }
            }
            raw.clear();
            let wait = checks
                .iter()
                .map(|c| c.due.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(Duration::from_millis(200))
                .min(Duration::from_millis(200));
            if let Err(e) = self.source.next(wait, &mut raw) {
                tracing::warn!(error = %e, "reading process events failed; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            for event in raw.drain(..) {
                if let Some(event) = self.enrich(event, &mut known, &mut checks) {
                    let _ = self.tx.send(Arc::new(event));
                }
            }
            self.check_zombies(&mut checks);
        }
    }

    fn initial_table(&self) -> HashMap<u32, Known> {
        let fields: FieldSet = [Field::Ppid, Field::Name, Field::Username]
            .into_iter()
            .collect();
        let mut known = HashMap::new();
        let _ = self.backend.for_each_process(fields, &mut |p| {
            known.insert(
                p.pid,
                Known {
                    name: p.name,
                    ppid: p.ppid,
                    username: p.username,
                },
            );
            ControlFlow::Continue(())
        });
        known
    }

    /// A raw event with what /proc still says about the process.
    fn enrich(
        &self,
        event: RawEvent,
        known: &mut HashMap<u32, Known>,
        checks: &mut Vec<ZombieCheck>,
    ) -> Option<pb::ProcessEvent> {
        let fields: FieldSet = [
            Field::Ppid,
            Field::Name,
            Field::Cmdline,
            Field::Username,
            Field::CreateTime,
        ]
        .into_iter()
        .collect();
        match event {
            RawEvent::Fork { pid, ppid, time } => {
                let p = self.backend.process(pid, fields).ok();
                let mut event = described(pb::ProcessEventKind::Started, pid, time, p);
                event.ppid = Some(ppid);
                known.insert(pid, remembered(&event));
                Some(event)
            }
            RawEvent::Exec { pid, time } => {
                let p = self.backend.process(pid, fields).ok();
                let event = described(pb::ProcessEventKind::Exec, pid, time, p);
                known.insert(pid, remembered(&event));
                Some(event)
            }
            RawEvent::Exit {
                pid,
                exit_code,
                signal,
                time,
            } => {
                // Forgotten here, so the table holds only live processes.
                let k = known.remove(&pid);
                let event = pb::ProcessEvent {
                    kind: pb::ProcessEventKind::Exited as i32,
                    pid,
                    time,
                    ppid: k.as_ref().and_then(|k| k.ppid),
                    name: k.as_ref().and_then(|k| k.name.clone()),
                    username: k.as_ref().and_then(|k| k.username.clone()),
                    exit_code,
                    exit_signal: signal,
                    ..Default::default()
                };
                checks.push(ZombieCheck {
                    pid,
                    due: Instant::now() + ZOMBIE_CHECKS[0],
                    tries: 0,
                    known: k,
                });
                Some(event)
            }
        }
    }

    /// Runs the zombie checks that are due: a process found in state Z
    /// yields a ZOMBIE event; one that is gone was reaped.
    fn check_zombies(&self, checks: &mut Vec<ZombieCheck>) {
        let now_i = Instant::now();
        let fields: FieldSet = [Field::Status, Field::Ppid, Field::Name]
            .into_iter()
            .collect();
        checks.retain_mut(|check| {
            if check.due > now_i {
                return true;
            }
            match self.backend.process(check.pid, fields) {
                Ok(p) if p.status == Some(ProcStatus::Zombie) => {
                    let _ = self.tx.send(Arc::new(pb::ProcessEvent {
                        kind: pb::ProcessEventKind::Zombie as i32,
                        pid: check.pid,
                        time: now(),
                        ppid: p.ppid,
                        name: p
                            .name
                            .or_else(|| check.known.as_ref().and_then(|k| k.name.clone())),
                        username: check.known.as_ref().and_then(|k| k.username.clone()),
                        ..Default::default()
                    }));
                    false
                }
                Ok(_) => {
                    check.tries += 1;
                    match ZOMBIE_CHECKS.get(check.tries as usize) {
                        Some(delay) => {
                            check.due = now_i + *delay;
                            true
                        }
                        None => false,
                    }
                }
                Err(_) => false,
            }
        });
    }
}

/// An event about `pid` with what was read of it.
fn described(
    kind: pb::ProcessEventKind,
    pid: u32,
    time: f64,
    p: Option<backend::ProcessInfo>,
) -> pb::ProcessEvent {
    let mut event = pb::ProcessEvent {
        kind: kind as i32,
        pid,
        time,
        ..Default::default()
    };
    if let Some(p) = p {
        event.ppid = p.ppid;
        event.name = p.name;
        event.cmdline = p.cmdline.unwrap_or_default();
        event.username = p.username;
        event.create_time = p.create_time;
    }
    event
}

fn remembered(event: &pb::ProcessEvent) -> Known {
    Known {
        name: event.name.clone(),
        ppid: event.ppid,
        username: event.username.clone(),
    }
}

// === Watchers ===

/// One watcher's filter, over events rather than listings.
struct WatchFilter {
    pids: Vec<u32>,
    name: Option<glob::Pattern>,
    username: Option<String>,
    descendants_of: Option<u32>,
    kinds: Vec<i32>,
}

impl WatchFilter {
    fn new(request: &pb::WatchProcessesRequest) -> Result<WatchFilter, ServiceError> {
        let filter = request.filter.clone().unwrap_or_default();
        if filter.pids.contains(&0) {
            return Err(ServiceError::invalid(
                "filter.pids",
                "pid 0 is not a process",
            ));
        }
        if filter.ppid.is_some() || !filter.statuses.is_empty() {
            return Err(ServiceError::invalid(
                "filter",
                "a watch filters by pids, name, username and descendants_of; \
                 ppid and statuses do not apply to events",
            ));
        }
        let name = match filter.name.as_str() {
            "" => None,
            glob => Some(glob::Pattern::new(glob).map_err(|e| {
                ServiceError::invalid("filter.name", format!("bad name glob {glob:?}: {e}"))
            })?),
        };
        let mut kinds = Vec::new();
        for k in &request.kinds {
            match pb::ProcessEventKind::try_from(*k) {
                Ok(pb::ProcessEventKind::Unspecified) | Err(_) => {
                    return Err(ServiceError::invalid(
                        "kinds",
                        format!(
                            "unknown event kind {k}; valid kinds: started, exec, exited, zombie, sample, lagged"
                        ),
                    ));
                }
                Ok(pb::ProcessEventKind::Sample) if request.sample_interval.is_none() => {
                    return Err(ServiceError::invalid(
                        "kinds",
                        "SAMPLE events need a sample_interval",
                    ));
                }
                Ok(kind) => kinds.push(kind as i32),
            }
        }
        if kinds.is_empty() {
            kinds = [
                pb::ProcessEventKind::Started,
                pb::ProcessEventKind::Exec,
                pb::ProcessEventKind::Exited,
                pb::ProcessEventKind::Zombie,
            ]
            .map(|k| k as i32)
            .to_vec();
            if request.sample_interval.is_some() {
                kinds.push(pb::ProcessEventKind::Sample as i32);
            }
        }
        Ok(WatchFilter {
            pids: filter.pids,
            name,
            username: Some(filter.username).filter(|u| !u.is_empty()),
            descendants_of: request.descendants_of,
            kinds,
        })
    }

    /// Whether a collector event is for this watcher; keeps the descendant
    /// set current as forks and exits go by.
    fn admits(&self, event: &pb::ProcessEvent, tree: &mut Tree) -> bool {
        let kind = event.kind;
        if let Some(root) = self.descendants_of {
            if kind == pb::ProcessEventKind::Started as i32
                && event.ppid.is_some_and(|pp| pp == root || tree.contains(pp))
            {
                tree.pids.insert(event.pid);
            }
            if !tree.contains(event.pid) {
                return false;
            }
            if kind == pb::ProcessEventKind::Exited as i32 {
                tree.exited(event.pid);
            }
        }
        self.kinds.contains(&kind)
            && self.matches(event.pid, event.name.as_deref(), event.username.as_deref())
    }

    fn matches(&self, pid: u32, name: Option<&str>, username: Option<&str>) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid))
            && self
                .name
                .as_ref()
                .is_none_or(|g| name.is_some_and(|n| g.matches(n)))
            && self.username.as_deref().is_none_or(|u| username == Some(u))
    }

    fn wants(&self, kind: pb::ProcessEventKind) -> bool {
        self.kinds.contains(&(kind as i32))
    }
}

/// The descendants of a watch's root: the pids below it, kept as forks
/// happen. Exited pids stay a while, for their ZOMBIE event; the oldest go
/// once there are many, so the set stays bounded.
#[derive(Default)]
struct Tree {
    pids: HashSet<u32>,
    exited: std::collections::VecDeque<u32>,
}

impl Tree {
    const EXITED_KEPT: usize = 4096;

    fn contains(&self, pid: u32) -> bool {
        self.pids.contains(&pid)
    }

    fn exited(&mut self, pid: u32) {
        self.exited.push_back(pid);
        if self.exited.len() > Tree::EXITED_KEPT
            && let Some(old) = self.exited.pop_front()
        {
            self.pids.remove(&old);
        }
    }
}

/// Every pid below `root` in the process tree now.
fn descendants(b: &dyn Backend, root: u32) -> Result<Tree, backend::Error> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    let fields: FieldSet = [Field::Ppid].into_iter().collect();
    b.for_each_process(fields, &mut |p| {
        if let Some(ppid) = p.ppid {
            parents.entry(ppid).or_default().push(p.pid);
        }
        ControlFlow::Continue(())
    })?;
    let mut tree = Tree::default();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for child in parents.get(&pid).into_iter().flatten() {
            if tree.pids.insert(*child) {
                todo.push(*child);
            }
        }
    }
    Ok(tree)
}

/// Fails the call for listed pids that cannot be sampled.
fn check_sampleable(b: &dyn Backend, pids: &[u32]) -> Result<(), backend::Error> {
    let fields: FieldSet = [Field::Status, Field::Ppid, Field::Name]
        .into_iter()
        .collect();
    for &pid in pids {
        let p = b.process(pid, fields)?;
        if p.status == Some(ProcStatus::Zombie) {
            return Err(backend::Error::ZombieProcess {
                pid,
                ppid: p.ppid,
                name: p.name,
            });
        }
    }
    Ok(())
}

// === Samples ===

/// The previous reading of each sampled process, for rates.
struct Sampler {
    backend: Arc<dyn Backend>,
    previous: HashMap<u32, Reading>,
    enabled: bool,
}

#[derive(Clone, Copy)]
struct Reading {
    at: Instant,
    cpu_seconds: f64,
    read_bytes: u64,
    write_bytes: u64,
    create_time: f64,
}

impl Sampler {
    fn new(backend: Arc<dyn Backend>, every: Option<Duration>) -> Sampler {
        Sampler {
            backend,
            previous: HashMap::new(),
            enabled: every.is_some(),
        }
    }

    /// SAMPLE events for every matching live process with a reading one
    /// interval ago. Runs the reads off the async runtime.
    async fn sample(
        &mut self,
        filter: &WatchFilter,
        tree: &Tree,
    ) -> Vec<Result<pb::ProcessEvent, Status>> {
        if !self.enabled || !filter.wants(pb::ProcessEventKind::Sample) {
            return Vec::new();
        }
        let backend = Arc::clone(&self.backend);
        let fields: FieldSet = [
            Field::Name,
            Field::Username,
            Field::Status,
            Field::CreateTime,
            Field::CpuTimes,
            Field::MemoryInfo,
            Field::NumThreads,
            Field::NumFds,
            Field::IoCounters,
        ]
        .into_iter()
        .collect();
        let pids = filter.pids.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut keep = |p: backend::ProcessInfo| {
                found.push((Instant::now(), p));
                ControlFlow::Continue(())
            };
            if pids.is_empty() {
                let _ = backend.for_each_process(fields, &mut keep);
            } else {
                for pid in pids {
                    if let Ok(p) = backend.process(pid, fields) {
                        let _ = keep(p);
                    }
                }
            }
            found
        })
        .await
        .unwrap_or_default();

        let mut events = Vec::new();
        let mut current = HashMap::with_capacity(scanned.len());
        for (at, p) in scanned {
            let inside = filter.descendants_of.is_none() || tree.contains(p.pid);
            let live = p.status.is_some_and(|s| s != ProcStatus::Zombie);
            if !inside || !live || !filter.matches(p.pid, p.name.as_deref(), p.username.as_deref())
            {
                continue;
            }
            let cpu = p.cpu_times.map_or(0.0, |t| t.user + t.system);
            let io = p.io_counters.unwrap_or_default();
            let reading = Reading {
                at,
                cpu_seconds: cpu,
                read_bytes: io.read_bytes,
                write_bytes: io.write_bytes,
                create_time: p.create_time.unwrap_or_default(),
            };
            // A pid whose create_time changed is another process: no rate.
            if let Some(before) = self
                .previous
                .get(&p.pid)
                .filter(|b| b.create_time == reading.create_time)
            {
                let secs = reading.at.duration_since(before.at).as_secs_f64().max(1e-3);
                let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
                events.push(Ok(pb::ProcessEvent {
                    kind: pb::ProcessEventKind::Sample as i32,
                    pid: p.pid,
                    time: now(),
                    name: p.name.clone(),
                    username: p.username.clone(),
                    create_time: p.create_time,
                    sample: Some(pb::ProcessSample {
                        cpu_percent: ((cpu - before.cpu_seconds).max(0.0) / secs) * 100.0,
                        rss: p.memory_info.map_or(0, |m| m.rss),
                        num_threads: p.num_threads.unwrap_or_default(),
                        num_fds: p.num_fds.unwrap_or_default(),
                        read_bytes_per_sec: rate(reading.read_bytes, before.read_bytes),
                        write_bytes_per_sec: rate(reading.write_bytes, before.write_bytes),
                    }),
                    ..Default::default()
                }));
            }
            current.insert(p.pid, reading);
        }
        self.previous = current;
        events
    }
}
