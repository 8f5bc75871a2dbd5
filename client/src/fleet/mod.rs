//! Asking many agents at once.
//!
//! A [`Fleet`] fans one call out to every host with bounded concurrency,
//! gives each host one deadline that covers connect, handshake and call,
//! retries a host that was unreachable, and yields each host's outcome the
//! moment it is known. One dead host never stalls or fails the others: a
//! refused port, a host that accepts TCP and never speaks TLS, a wrong
//! certificate, a name that does not resolve — each becomes that host's
//! error in the stream and in the [`Summary`].

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};

use crate::{Client, Error, TlsConfig, client::PreparedTls};

pub mod inventory;
mod stream;
mod watch;

pub use inventory::{HostSpec, Inventory, InventoryError};
use stream::Clock;
pub use stream::{Budget, Charge, Parts, Streamed};
pub use watch::WatchItem;

/// How a fleet is asked.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Hosts asked at once.
    pub concurrency: usize,
    /// Per host: connect, TLS handshake, every retry and the call itself.
    pub timeout: Duration,
    /// Further attempts for a host that was unreachable.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Keep each host's connection open once its call is done, for the
    /// next call to that host through this fleet or its clones. A query
    /// that asks each host once has no use for it: an open connection holds
    /// its socket and its TLS and HTTP/2 buffers, tens of KiB a host, so
    /// over 10,000 hosts the idle connections would outweigh everything
    /// else the client holds.
    pub keep_connections: bool,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            concurrency: 256,
            timeout: Duration::from_secs(10),
            retries: 1,
            backoff: Duration::from_millis(200),
            keep_connections: true,
        }
    }
}

/// Many agents, asked together. Cloning is cheap; clones share the
/// connections, so a second call to a host reuses the first's (unless
/// [`FleetOptions::keep_connections`] is off).
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    hosts: Vec<Arc<HostSpec>>,
    tls: Option<TlsConfig>,
    /// `tls` checked and prepared once for every host; `None` when it
    /// could not be, and each host then reports why as it dials.
    prepared: Option<PreparedTls>,
    options: FleetOptions,
    /// Open connections by address.
    clients: Mutex<HashMap<String, Client>>,
}

/// What one host answered, or why it did not.
#[derive(Debug)]
pub struct HostOutcome<T> {
    /// The host asked.
    pub host: Arc<HostSpec>,
    /// Its answer or its error.
    pub result: Result<T, Error>,
    /// Attempts made (1 without retries).
    pub attempts: u32,
    /// From the first attempt to the outcome.
    pub elapsed: Duration,
}

impl Fleet {
    /// A fleet of `hosts`, all checked with the same TLS settings (`None`:
    /// plaintext); a host's `server_name` overrides the name its
    /// certificate is checked for.
    pub fn new(hosts: Vec<HostSpec>, tls: Option<TlsConfig>, options: FleetOptions) -> Fleet {
        Fleet {
            inner: Arc::new(Inner {
                hosts: hosts.into_iter().map(Arc::new).collect(),
                prepared: tls.clone().and_then(|tls| PreparedTls::new(tls).ok()),
                tls,
                options,
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How many hosts the fleet has.
    pub fn len(&self) -> usize {
        self.inner.hosts.len()
    }

    /// Whether the fleet has no host.
    pub fn is_empty(&self) -> bool {
        self.inner.hosts.is_empty()
    }

    /// The hosts, in inventory order.
    pub fn hosts(&self) -> impl Iterator<Item = &HostSpec> {
        self.inner.hosts.iter().map(|h| h.as_ref())
    }

    /// Runs `call` on every host, at most `concurrency` at once, and yields
    /// each host's outcome as it completes. Dropping the stream cancels the
    /// query: no further host is dialled, and the calls in flight are
    /// abandoned, their connections closed. Needs a Tokio runtime.
    pub fn run<T, F, Fut>(&self, call: F) -> impl Stream<Item = HostOutcome<T>> + Send + 'static
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let call = move |client: Client, _: Parts<std::convert::Infallible, T>| call(client);
        self.stream(Budget::unlimited(), call)
            .filter_map(|item| match item {
                Streamed::Done(outcome) => Some(outcome),
                Streamed::Part { part, .. } => match part {},
            })
    }

    /// [`Fleet::run`] for answers that come in parts: `call` sends each
    /// part through its [`Parts`] as it has it (a batch of a listing, say)
    /// and returns what is left for the end. The stream yields every part
    /// as it is sent and each host's outcome after its parts. A host is
    /// dialled only while `budget` has room: what the reader buffers it
    /// charges to the budget, and once the charges reach its limit no
    /// further host is dialled until they are released. Time a call spends
    /// waiting for the reader to take a part does not count against the
    /// host's deadline, and a host that has sent a part is not retried (its
    /// parts would come twice).
    pub fn stream<P, T, F, Fut>(
        &self,
        budget: Budget,
        call: F,
    ) -> impl Stream<Item = Streamed<P, T>> + Send + 'static
    where
        P: Send + 'static,
        T: Send + 'static,
        F: Fn(Client, Parts<P, T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let call = Arc::new(call);
        let concurrency = inner.options.concurrency.max(1);
        let (tx, rx) = mpsc::channel(concurrency);
        tokio::spawn(async move {
            let dial = async {
                let slots = Arc::new(Semaphore::new(concurrency));
                let mut tasks = JoinSet::new();
                for host in inner.hosts.iter().cloned() {
                    let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                        break;
                    };
                    // After the slot: a host that just ended has charged
                    // what the reader holds of it by now.
                    budget.admit().await;
                    if tx.is_closed() {
                        break;
                    }
                    let (inner, call, tx) = (Arc::clone(&inner), Arc::clone(&call), tx.clone());
                    tasks.spawn(async move {
                        let outcome = inner.ask(host, call.as_ref(), &tx).await;
                        drop(slot);
                        let _ = tx.send(Streamed::Done(outcome)).await;
                    });
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            };
            // The reader gone, the hosts in flight are dropped with their
            // tasks (a JoinSet aborts its tasks when dropped), rather than
            // left to run to their deadlines.
            tokio::select! {
                () = dial => {}
                () = tx.closed() => {}
            }
        });
        ReceiverStream::new(rx)
    }
}

impl Inner {
    /// One host, under its deadline, with retries.
    async fn ask<P, T, F, Fut>(
        &self,
        host: Arc<HostSpec>,
        call: &F,
        tx: &mpsc::Sender<Streamed<P, T>>,
    ) -> HostOutcome<T>
    where
        F: Fn(Client, Parts<P, T>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = Instant::now();
        let attempts = AtomicU32::new(0);
        let deadline = self.options.timeout;
        let clock = Arc::new(Clock::start(deadline));
        let sent = Arc::new(AtomicBool::new(false));
        let attempt_all = async {
            loop {
                let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
                let parts = Parts {
                    host: Arc::clone(&host),
                    tx: tx.clone(),
                    clock: Arc::clone(&clock),
                    sent: Arc::clone(&sent),
                };
                let result = match self.client(&host).await {
                    Ok(client) => call(client, parts).await,
                    Err(e) => Err(e),
                };
                let again = !sent.load(Ordering::Relaxed) && n <= self.options.retries;
                match result {
                    Err(e) if e.is_retryable() && again => {
                        self.forget(&host);
                        tokio::time::sleep(self.options.backoff * 2u32.pow(n - 1)).await;
                    }
                    Err(e) => {
                        if e.is_retryable() {
                            self.forget(&host);
                        }
                        return Err(e);
                    }
                    Ok(answer) => return Ok(answer),
                }
            }
        };
        let result = tokio::select! {
            result = attempt_all => result,
            () = clock.expired() => {
                self.forget(&host);
                Err(Error::Timeout {
                    message: format!(
                        "no answer from {} within {}",
                        host.address,
                        humanize(deadline)
                    ),
                })
            }
        };
        HostOutcome {
            host,
            result,
            attempts: attempts.load(Ordering::Relaxed),
            elapsed: start.elapsed(),
        }
    }

    /// The open connection to `host`, or a new one.
    async fn client(&self, host: &HostSpec) -> Result<Client, Error> {
        if let Some(client) = self.clients().get(&host.address) {
            return Ok(client.clone());
        }
        let client = match &self.prepared {
            Some(prepared) => {
                Client::connect_prepared(&host.address, Some(prepared), host.server_name.as_deref())
                    .await?
            }
            None => {
                let tls = self.tls.clone().map(|mut tls| {
                    if host.server_name.is_some() {
                        tls.server_name.clone_from(&host.server_name);
                    }
                    tls
                });
                Client::connect(&host.address, tls).await?
            }
        };
        if self.options.keep_connections {
            self.clients().insert(host.address.clone(), client.clone());
        }
        Ok(client)
    }

    /// Drops a connection that failed, so the next call dials afresh.
    fn forget(&self, host: &HostSpec) {
        self.clients().remove(&host.address);
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, Client>> {
        // A panic elsewhere cannot leave the map half-updated: recover it.
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A duration as people write it: `10s`, `500ms`, `1.5s`.
pub(crate) fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

// === Summary ===

/// How a fleet query went: hosts ok, failed (and why), timed out.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    /// Hosts asked.
    pub total: usize,
    /// Hosts that answered.
    pub ok: usize,
    /// Hosts that did not, timeouts included, in the order they failed.
    pub failed: Vec<Failure>,
    /// How many of the failures were timeouts.
    pub timed_out: usize,
    /// Hosts that had not answered when the query was cancelled (Ctrl-C),
    /// asked or not yet: neither ok nor failed.
    pub cancelled: Vec<Failure>,
    /// From the start of the query to its last outcome.
    pub elapsed: Duration,
}

/// One host that did not answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// The host's name.
    pub host: String,
    /// Its address.
    pub address: String,
    /// A short, stable label of the error (`timeout`, `unknown-ca`, ...).
    pub kind: &'static str,
    /// The error in words.
    pub message: String,
}

impl Summary {
    /// A summary of a query of `total` hosts, before any outcome.
    pub fn start(total: usize) -> Summary {
        Summary {
            total,
            ..Summary::default()
        }
    }

    /// Counts one host's outcome.
    pub fn record<T>(&mut self, outcome: &HostOutcome<T>) {
        match &outcome.result {
            Ok(_) => self.ok += 1,
            Err(e) => {
                if matches!(e, Error::Timeout { .. }) {
                    self.timed_out += 1;
                }
                self.failed.push(Failure {
                    host: outcome.host.name.clone(),
                    address: outcome.host.address.clone(),
                    kind: e.label(),
                    message: e.to_string(),
                });
            }
        }
    }

    /// Counts `host` as cancelled: the query ended before it answered.
    pub fn cancel(&mut self, host: &HostSpec) {
        self.cancelled.push(Failure {
            host: host.name.clone(),
            address: host.address.clone(),
            kind: "cancelled",
            message: format!(
                "{} had not answered when the query was cancelled",
                host.address
            ),
        });
    }

    /// Whether the query was cancelled before every host had answered.
    pub fn was_cancelled(&self) -> bool {
        !self.cancelled.is_empty()
    }

    /// Sets the elapsed time once the last outcome is in.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// Whether every host answered.
    pub fn all_ok(&self) -> bool {
        self.failed.is_empty() && self.cancelled.is_empty() && self.ok == self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn hosts(addresses: &[&str]) -> Vec<HostSpec> {
        Inventory::from_list(&addresses.join(",")).unwrap().hosts
    }

    /// Ports on 127.0.0.1 that nothing listens on.
    fn closed_ports(n: usize) -> Vec<String> {
        let listeners: Vec<_> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        listeners
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn unreachable_hosts_fail_alone_and_are_retried() {
        let addrs = closed_ports(3);
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let options = FleetOptions {
            retries: 2,
            backoff: Duration::from_millis(1),
            ..FleetOptions::default()
        };
        let fleet = Fleet::new(hosts(&refs), None, options);
        let start = Instant::now();
        let outcomes: Vec<_> = fleet
            .run(|client| async move { client.host().await })
            .collect()
            .await;
        let mut summary = Summary::start(fleet.len());
        for outcome in &outcomes {
            summary.record(outcome);
            assert_eq!(outcome.attempts, 3, "{outcome:?}");
            assert!(matches!(
                outcome.result,
                Err(Error::ConnectionRefused { .. })
            ));
        }
        summary.finish(start.elapsed());
        assert_eq!((summary.total, summary.ok, summary.failed.len()), (3, 0, 3));
        assert!(
            summary
                .failed
                .iter()
                .all(|f| f.kind == "connection-refused")
        );
        assert!(!summary.all_ok());
    }

    #[tokio::test]
    async fn a_host_that_never_answers_times_out_without_holding_the_others() {
        // Accepts TCP, never speaks: the TLS handshake hangs.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                sockets.push(socket);
            }
        });
        let closed = closed_ports(1);
        let tls = {
            let dir = tempfile::tempdir().unwrap();
            crate::pki::init(dir.path(), false).unwrap();
            crate::pki::issue(dir.path(), "me", crate::pki::CertRole::Client, &[]).unwrap();
            TlsConfig::from_files(
                &dir.path().join("ca.pem"),
                Some(&dir.path().join("me.pem")),
                Some(&dir.path().join("me-key.pem")),
            )
            .unwrap()
        };
        let options = FleetOptions {
            timeout: Duration::from_millis(300),
            backoff: Duration::from_millis(1),
            ..FleetOptions::default()
        };
        let fleet = Fleet::new(hosts(&[&silent_addr, &closed[0]]), Some(tls), options);
        let outcomes: Vec<_> = fleet
            .run(|client| async move { client.host().await })
            .collect()
            .await;
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            if outcome.host.address == silent_addr {
                let err = outcome.result.unwrap_err();
                assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
                assert!(err.to_string().contains("300ms"), "{err}");
            } else {
                let err = outcome.result.unwrap_err();
                assert!(matches!(err, Error::ConnectionRefused { .. }), "{err:?}");
            }
        }
        held.abort();
    }

    #[tokio::test]
    async fn without_keep_connections_each_host_is_hung_up_on_when_done() {
        use tokio::io::AsyncReadExt;
        // Plaintext hosts that accept TCP: connecting succeeds, and the
        // call below needs nothing more.
        let mut addrs = Vec::new();
        let mut listeners = Vec::new();
        for _ in 0..2 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap().to_string());
            listeners.push(listener);
        }
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let options = FleetOptions {
            keep_connections: false,
            retries: 0,
            ..FleetOptions::default()
        };
        let fleet = Fleet::new(hosts(&refs), None, options);
        let outcomes: Vec<_> = fleet
            .run(|_client| async move { Ok::<_, Error>(()) })
            .collect()
            .await;
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        // The fleet is still alive, yet every host sees its connection
        // closed: reading ends at EOF, whatever the client sent first.
        for listener in listeners {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut sink))
                .await
                .expect("the connection is closed once its host is done")
                .unwrap();
        }
        drop(fleet);
    }

    #[tokio::test]
    async fn dropping_the_stream_abandons_the_hosts_in_flight() {
        // Accepts TCP, never speaks: the call waits for its answer until
        // the host's deadline, a minute away.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap().to_string();
        let options = FleetOptions {
            timeout: Duration::from_secs(60),
            retries: 0,
            ..FleetOptions::default()
        };
        let fleet = Fleet::new(hosts(&[&silent_addr]), None, options);
        // The call is dropped when the last host task that holds it ends.
        let (held, released) = tokio::sync::oneshot::channel::<()>();
        let call = move |client: Client| {
            let _held = &held;
            async move { client.host().await }
        };
        let outcomes = fleet.run(call);
        let (_socket, _) = silent.accept().await.unwrap();
        drop(outcomes);
        // Long before the deadline, on any machine.
        tokio::time::timeout(Duration::from_secs(30), released)
            .await
            .expect("the host in flight is abandoned once the stream is dropped")
            .expect_err("nothing is sent: the sender is only dropped");
    }

    #[tokio::test]
    async fn a_full_budget_holds_back_the_next_host_until_released() {
        // Plaintext hosts that accept TCP: connecting succeeds, and the
        // call below needs nothing more.
        let mut addrs = Vec::new();
        let mut listeners = Vec::new();
        for _ in 0..3 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap().to_string());
            listeners.push(tokio::spawn(async move {
                let mut sockets = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    sockets.push(socket);
                }
            }));
        }
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let options = FleetOptions {
            concurrency: 1,
            retries: 0,
            ..FleetOptions::default()
        };
        let fleet = Fleet::new(hosts(&refs), None, options);
        let budget = Budget::new(100);
        let dialled = Arc::new(AtomicU32::new(0));
        let (counter, charging) = (Arc::clone(&dialled), budget.clone());
        // Each host's answer is held by the reader, over the whole budget,
        // until the reader drops it.
        let call = move |_: Client, _: Parts<(), Charge>| {
            let (counter, charging) = (Arc::clone(&counter), charging.clone());
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                let mut charge = charging.charge();
                charge.add(150);
                Ok(charge)
            }
        };
        let mut items = Box::pin(fleet.stream(budget.clone(), call));
        let mut next = async || match items.next().await {
            Some(Streamed::Done(outcome)) => outcome.result.expect("answered"),
            other => panic!("expected an outcome, got {other:?}"),
        };
        let first = next().await;
        assert_eq!(budget.used(), 150);
        // The next host waits for room, undialled.
        budget.held_back().await;
        assert_eq!(dialled.load(Ordering::Relaxed), 1);
        // Released, it is dialled, and holds the budget in turn.
        drop(first);
        let second = next().await;
        assert_eq!(dialled.load(Ordering::Relaxed), 2);
        assert_eq!(budget.used(), 150);
        drop(second);
        drop(next().await);
        assert_eq!((dialled.load(Ordering::Relaxed), budget.used()), (3, 0));
        for listener in listeners {
            listener.abort();
        }
    }

    #[tokio::test]
    async fn a_host_that_sent_a_part_is_not_retried() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                sockets.push(socket);
            }
        });
        let options = FleetOptions {
            retries: 3,
            backoff: Duration::from_millis(1),
            ..FleetOptions::default()
        };
        let fleet = Fleet::new(hosts(&[&silent_addr]), None, options);
        // A part, then a failure that would be retried had nothing been
        // sent.
        let call = |_: Client, parts: Parts<u32, ()>| async move {
            parts.send(7).await;
            Err::<(), _>(Error::Transport {
                endpoint: "here".to_owned(),
                message: "gone".to_owned(),
            })
        };
        let items: Vec<_> = fleet.stream(Budget::unlimited(), call).collect().await;
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(matches!(items[0], Streamed::Part { part: 7, .. }));
        match &items[1] {
            Streamed::Done(outcome) => {
                assert_eq!(outcome.attempts, 1);
                assert!(outcome.result.is_err());
            }
            other => panic!("expected the outcome, got {other:?}"),
        }
        held.abort();
    }

    #[test]
    fn durations_read_as_typed() {
        assert_eq!(humanize(Duration::from_secs(10)), "10s");
        assert_eq!(humanize(Duration::from_millis(500)), "500ms");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }
}
