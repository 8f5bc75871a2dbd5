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
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
};
use tokio_stream::{Stream, wrappers::ReceiverStream};

use crate::{Client, Error, TlsConfig};

pub mod inventory;
mod watch;

pub use inventory::{HostSpec, Inventory, InventoryError};
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
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            concurrency: 256,
            timeout: Duration::from_secs(10),
            retries: 1,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Many agents, asked together. Cloning is cheap; clones share the
/// connections, so a second call to a host reuses the first's.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    hosts: Vec<Arc<HostSpec>>,
    tls: Option<TlsConfig>,
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
                    if tx.is_closed() {
                        break;
                    }
                    let (inner, call, tx) = (Arc::clone(&inner), Arc::clone(&call), tx.clone());
                    tasks.spawn(async move {
                        let outcome = inner.ask(host, call.as_ref()).await;
                        drop(slot);
                        let _ = tx.send(outcome).await;
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
    async fn ask<T, F, Fut>(&self, host: Arc<HostSpec>, call: &F) -> HostOutcome<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = Instant::now();
        let attempts = AtomicU32::new(0);
        let deadline = self.options.timeout;
        let attempt_all = async {
            loop {
                let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
                let result = match self.client(&host).await {
                    Ok(client) => call(client).await,
                    Err(e) => Err(e),
                };
                match result {
                    Err(e) if e.is_retryable() && n <= self.options.retries => {
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
        let result = match tokio::time::timeout(deadline, attempt_all).await {
            Ok(result) => result,
            Err(_) => {
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
        let tls = self.tls.clone().map(|mut tls| {
            if host.server_name.is_some() {
                tls.server_name.clone_from(&host.server_name);
            }
            tls
        });
        let client = Client::connect(&host.address, tls).await?;
        self.clients().insert(host.address.clone(), client.clone());
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

    #[test]
    fn durations_read_as_typed() {
        assert_eq!(humanize(Duration::from_secs(10)), "10s");
        assert_eq!(humanize(Duration::from_millis(500)), "500ms");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }
}
