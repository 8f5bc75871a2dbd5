//! The hub: starts the collector for the first watcher, hands its events to
//! every watcher, and keeps watchers within the agent's limits.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use hostscope_proto as pb;
use tokio::sync::{Semaphore, broadcast, watch};

use super::{
    Channel, Event, WatchOptions,
    collector::Collector,
    filter::WatchFilter,
    lock,
    sampler::{self, Sampler},
    tree::Tree,
};
use crate::{
    authz::Identity,
    backend::{self, Backend, Field, FieldSet, Status as ProcStatus},
    service::{
        self, ServiceError, convert,
        outbox::{self, Ended, Outbox, OutboxStream},
    },
};

/// The shared collector and the watchers' bookkeeping.
pub struct Hub {
    backend: Arc<dyn Backend>,
    options: WatchOptions,
    /// The running collector's channel; `None` while nobody watches.
    channel: Channel,
    /// Watchers by client identity.
    watchers: Arc<Mutex<HashMap<String, usize>>>,
    /// Flips to true when the agent shuts down: every stream then ends.
    stop: watch::Sender<bool>,
    /// Which source the collector uses, found out at start-up.
    mode: backend::WatchMode,
    /// The agent's scan permits, which sample scans take like listings.
    scans: Arc<Semaphore>,
    /// How long a watcher's client may take none of its events.
    stall: Duration,
}

impl Hub {
    /// A hub over `backend`; finds out which event source works (and so
    /// which mode GetHost reports) by opening it once. Sample scans take a
    /// permit of `scans`; a stream whose client takes no event for `stall`
    /// is ended.
    pub fn new(
        backend: Arc<dyn Backend>,
        options: WatchOptions,
        scans: Arc<Semaphore>,
        stall: Duration,
    ) -> Hub {
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
            scans,
            stall,
        }
    }

    /// "netlink" (Linux) or "kqueue" (the BSDs, macOS) or "poll", for
    /// GetHost and the start-up log.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            backend::WatchMode::Kernel if cfg!(target_os = "linux") => "netlink",
            backend::WatchMode::Kernel => "kqueue",
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
    ) -> Result<OutboxStream<pb::ProcessEvent>, ServiceError> {
        let filter = WatchFilter::new(&request)?;
        let every = sampler::interval(request.sample_interval)?;
        if every.is_some() {
            let pids = filter.pids().to_vec();
            service::blocking(&self.backend, move |b| check_sampleable(b, &pids)).await?;
        }
        let slot = self.take_slot(client)?;
        let events = self.subscribe()?;
        // The descendants known now; forks seen later extend the set.
        let tree = match request.descendants_of {
            Some(root) => {
                Some(service::blocking(&self.backend, move |b| Tree::read(b, root)).await?)
            }
            None => None,
        };
        let sampler = every
            .filter(|_| filter.wants(pb::ProcessEventKind::Sample))
            .map(|every| {
                Sampler::new(
                    Arc::clone(&self.backend),
                    every,
                    &filter,
                    Arc::clone(&self.scans),
                )
            });
        let (outbox, stream) = outbox::outbox(self.options.watcher_buffer, self.stall);
        let watcher = Watcher {
            filter,
            tree,
            sampler,
            outbox,
            client: client.display().to_owned(),
            _slot: slot,
        };
        tokio::spawn(watcher.run(events, self.stop.subscribe()));
        Ok(stream)
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
    fn subscribe(&self) -> Result<broadcast::Receiver<Arc<Event>>, ServiceError> {
        let mut channel = lock(&self.channel);
        if let Some(tx) = channel.as_ref() {
            return Ok(tx.subscribe());
        }
        let source = self
            .backend
            .events(self.options.mode, self.options.poll_interval)?;
        let (tx, rx) = broadcast::channel(self.options.broadcast_capacity.max(16));
        let collector = Collector::new(
            Arc::clone(&self.backend),
            source,
            tx.clone(),
            Arc::clone(&self.channel),
        );
        std::thread::Builder::new()
            .name("hostscope-events".into())
            .spawn(move || collector.run())
            .map_err(|e| ServiceError::internal("starting the event collector", e))?;
        *channel = Some(tx);
        Ok(rx)
    }
}

/// Fails the call for listed pids that cannot be sampled: a pid that does
/// not exist, or a zombie, which has nothing left to measure.
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

/// Resolves once the agent shuts down.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// One watcher's place against the limits, given back when it ends.
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

/// One watcher: what it asked for, and its stream.
struct Watcher {
    filter: WatchFilter,
    tree: Option<Tree>,
    sampler: Option<Sampler>,
    outbox: Outbox<pb::ProcessEvent>,
    /// Who watches, for the log.
    client: String,
    _slot: Slot,
}

impl Watcher {
    /// Sends what the watcher asked for until the client leaves or stops
    /// reading, the collector stops or the agent shuts down.
    async fn run(
        mut self,
        mut events: broadcast::Receiver<Arc<Event>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticks = self.sampler.as_ref().map(Sampler::ticks);
        if let Some(sampler) = &mut self.sampler {
            // The baseline reading the first rates start from.
            sampler.sample(&self.filter, self.tree.as_ref()).await;
        }
        'watching: loop {
            let tick = async {
                match ticks.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            };
            let out = tokio::select! {
                () = stopped(&mut stop) => break,
                () = self.outbox.closed() => break,
                received = events.recv() => match received {
                    Ok(event) => self.admit(&event).into_iter().collect(),
                    Err(broadcast::error::RecvError::Lagged(dropped)) => {
                        vec![convert::lagged_to_pb(dropped, super::now())]
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick => match &mut self.sampler {
                    Some(sampler) => sampler.sample(&self.filter, self.tree.as_ref()).await,
                    None => Vec::new(),
                },
            };
            for event in out {
                // A client that does not read must not keep the watcher
                // from stopping with the agent.
                let sent = tokio::select! {
                    sent = self.outbox.send(Ok(event)) => sent,
                    () = stopped(&mut stop) => break 'watching,
                };
                match sent {
                    Ok(()) => {}
                    Err(Ended::Stalled) => {
                        tracing::debug!(client = %self.client, "ended a watch whose client took no events");
                        return;
                    }
                    Err(Ended::Gone) => return,
                }
            }
        }
    }

    /// The message for a collector event, if it is for this watcher. The
    /// tree follows every event, so that no fork below it is missed.
    fn admit(&mut self, event: &Event) -> Option<pb::ProcessEvent> {
        let inside = self.tree.as_mut().is_none_or(|tree| tree.follow(event));
        (inside && self.filter.admits(event)).then(|| convert::event_to_pb(event))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use tokio_stream::StreamExt;

    use super::*;
    use crate::service::watch::testing;

    /// Generous: the machine may be busy with other work.
    const LIMIT: Duration = Duration::from_secs(30);

    fn hub(options: WatchOptions) -> Hub {
        let options = WatchOptions {
            mode: backend::WatchMode::Poll,
            poll_interval: Duration::from_millis(50),
            ..options
        };
        Hub::new(
            Arc::from(testing::real()),
            options,
            Arc::new(Semaphore::new(4)),
            Duration::from_secs(10),
        )
    }

    fn client(name: &str) -> Identity {
        Identity {
            names: vec![name.to_owned()],
        }
    }

    fn reason(err: ServiceError) -> &'static str {
        err.reason()
    }

    #[tokio::test]
    async fn watchers_are_limited_per_client_and_per_agent_until_they_leave() {
        let hub = hub(WatchOptions {
            max_watchers: 3,
            max_watchers_per_client: 2,
            ..WatchOptions::default()
        });
        let request = pb::WatchProcessesRequest::default;
        let a1 = hub.watch(&client("a"), request()).await.expect("a's first");
        let a2 = hub
            .watch(&client("a"), request())
            .await
            .expect("a's second");
        let refused = hub.watch(&client("a"), request()).await.err().map(reason);
        assert_eq!(refused, Some("RESOURCE_EXHAUSTED"));
        let b1 = hub.watch(&client("b"), request()).await.expect("b's first");
        match hub.watch(&client("c"), request()).await {
            Err(ServiceError::AgentWatchLimit { limit: 3 }) => {}
            other => panic!("{:?}", other.err()),
        }
        drop((a1, b1));
        // A watcher leaves when its task sees the stream gone.
        let deadline = tokio::time::Instant::now() + LIMIT;
        while lock(&hub.watchers).values().sum::<usize>() > 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "slots not given back"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hub.watch(&client("a"), request()).await.expect("a again");
        drop(a2);
    }

    #[tokio::test]
    async fn a_bad_request_takes_no_slot() {
        let hub = hub(WatchOptions::default());
        let bad = pb::WatchProcessesRequest {
            sample_interval: Some(0.0),
            ..Default::default()
        };
        let err = hub.watch(&client("a"), bad).await.err().map(reason);
        assert_eq!(err, Some("INVALID_ARGUMENT"));
        assert!(lock(&hub.watchers).is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_child_of_this_user_is_seen_to_start_and_exit_and_shutdown_ends_the_stream() {
        let hub = hub(WatchOptions::default());
        let uids: FieldSet = [Field::Uids].into_iter().collect();
        let me = hub
            .backend
            .process(std::process::id(), uids)
            .expect("this process")
            .uids
            .expect("its uids");
        let request = pb::WatchProcessesRequest {
            // A user by uid, as `hostscope watch --user 1000` asks.
            filter: Some(pb::ProcessFilter {
                username: me.real.to_string(),
                ..Default::default()
            }),
            descendants_of: Some(std::process::id()),
            ..Default::default()
        };
        let mut stream = hub.watch(&client("a"), request).await.expect("watch");
        // Polling sees only processes that live across a poll: this one
        // lives until the test has seen it start.
        let sleeper = testing::Sleeper::spawn();
        let pid = sleeper.0.id();
        let mut kinds = Vec::new();
        let mut sleeper = Some(sleeper);
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !kinds.contains(&pb::ProcessEventKind::Exited) {
            let event = tokio::time::timeout_at(deadline, stream.next())
                .await
                .expect("events in time")
                .expect("stream open")
                .expect("event");
            if event.pid == pid {
                let kind = pb::ProcessEventKind::try_from(event.kind).expect("kind");
                if kind == pb::ProcessEventKind::Started {
                    assert_eq!(event.ppid, Some(std::process::id()));
                    // Ends the sleeper: kill and reap.
                    sleeper = None;
                }
                kinds.push(kind);
            }
        }
        assert!(sleeper.is_none());
        assert_eq!(kinds.first(), Some(&pb::ProcessEventKind::Started));

        hub.shut_down();
        let end = tokio::time::timeout(LIMIT, async {
            while let Some(event) = stream.next().await {
                event.expect("clean end");
            }
        })
        .await;
        assert!(end.is_ok(), "the stream ended at shutdown");
    }
}
