//! Serving: mutual TLS, health, reflection, limits and graceful shutdown.
//!
//! The agent accepts TLS itself rather than through tonic's built-in
//! acceptor, so that a rejected handshake (no client certificate, a
//! certificate from another CA, a plaintext client) is logged at WARN with
//! the peer's address and the reason, and so that the handshakes and
//! connections a peer may hold are bounded (see [`gate`]). Each connection
//! then has deadlines of its own: for its HTTP/2 preface, for idleness, and
//! for responses its client does not take (see [`conn`]). Rejections are
//! logged a few a time, then counted.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hostscope_proto as pb;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;

use crate::{
    authz::Identity,
    service::{self, Inspector},
};

mod conn;
mod conn_state;
mod edge;
mod gate;

use conn::{Conn, Io, TrackCallsLayer};
use gate::{Gate, Rejection};

/// Why the agent could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Bounds on what clients may make the agent do.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest a unary call may run (a client's shorter `grpc-timeout` wins).
    pub request_timeout: Duration,
    /// Longest a TLS handshake may take before the connection is dropped;
    /// the HTTP/2 preface must then follow within the same time again.
    pub handshake_timeout: Duration,
    /// TLS handshakes in progress at once. A new connection beyond it takes
    /// the place of the oldest pending handshake.
    pub max_handshakes: usize,
    /// TLS handshakes in progress at once from one peer network (an IPv4
    /// /24, an IPv6 /64); beyond it, that network's oldest is dropped.
    pub max_handshakes_per_peer: usize,
    /// Open connections (TLS done) at once; further ones are refused.
    pub max_connections: usize,
    /// Open connections at once from one peer network (an IPv4 /24, an
    /// IPv6 /64).
    pub max_connections_per_peer: usize,
    /// Open connections at once with one client certificate identity (its
    /// CN, else its first name), from anywhere.
    pub max_connections_per_identity: usize,
    /// A connection that carries no call for this long is closed.
    pub idle_timeout: Duration,
    /// At shutdown, how long calls in flight may take to finish before
    /// their connections are closed.
    pub shutdown_grace: Duration,
    /// Concurrent HTTP/2 streams (calls) per connection.
    pub max_concurrent_streams: u32,
    /// Largest request message in bytes.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: 256,
            max_handshakes_per_peer: 32,
            max_connections: 1024,
            max_connections_per_peer: 64,
            max_connections_per_identity: 128,
            idle_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
            max_concurrent_streams: 64,
            max_request_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// File descriptors the agent may need at these limits: one per
    /// handshake and per connection, and some for /proc, netlink, the
    /// audit file and the listener.
    pub fn descriptors_needed(&self) -> u64 {
        (self.max_handshakes as u64)
            .saturating_add(self.max_connections as u64)
            .saturating_add(64)
    }
}

/// The soft limit on open files before and after [`raise_fd_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub after: u64,
}

/// Raises this process's soft limit on open files (RLIMIT_NOFILE) to its
/// hard limit: the default soft limit (often 1024) would cap the agent's
/// connections well below what [`Limits`] allow.
#[cfg(unix)]
pub fn raise_fd_limit() -> std::io::Result<FdLimit> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    // No value (`None`) is RLIM_INFINITY.
    let value = |limit: Option<u64>| limit.unwrap_or(u64::MAX);
    let mut limit = getrlimit(Resource::Nofile);
    let before = value(limit.current);
    if limit.current == limit.maximum {
        return Ok(FdLimit {
            before,
            after: before,
        });
    }
    #[allow(unused_mut)]
    let mut target = limit.maximum;
    // macOS refuses a soft limit above OPEN_MAX (an unlimited hard limit
    // included): 10240 in `sys/syslimits.h`, which the libc crate lacks.
    #[cfg(target_os = "macos")]
    {
        const OPEN_MAX: u64 = 10240;
        target = Some(value(target).min(OPEN_MAX));
    }
    limit.current = target;
    setrlimit(Resource::Nofile, limit)?;
    Ok(FdLimit {
        before,
        after: value(target),
    })
}

/// The agent's TLS files; they live in [`crate::tls`], which also reloads
/// them.
pub use crate::tls::TlsFiles;

/// Raises the open-files limit (see [`raise_fd_limit`]) and says in the
/// log what it is, and whether it falls short of what `limits` may use.
pub fn log_fd_limit(limits: &Limits) {
    #[cfg(unix)]
    match raise_fd_limit() {
        Ok(FdLimit { before, after }) => {
            if after != before {
                tracing::info!(before, after, "raised the open-files limit (RLIMIT_NOFILE)");
            }
            let needed = limits.descriptors_needed();
            if after < needed {
                tracing::warn!(
                    limit = after,
                    needed,
                    "the open-files limit is below what [limits] max_handshakes and \
                     max_connections allow: raise the hard limit (LimitNOFILE= in systemd)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    #[cfg(not(unix))]
    let _ = limits;
}

/// One agent: the inspector service with health and reflection beside it.
pub struct Agent {
    inspector: Inspector,
    tls: Option<Arc<rustls::ServerConfig>>,
    client_ca: Option<crate::tls::ClientCa>,
    limits: Limits,
}

impl Agent {
    /// An agent serving `inspector`; `tls` None serves plaintext (the
    /// caller enforces loopback-only).
    pub fn new(
        inspector: Inspector,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
    ) -> Agent {
        Agent {
            inspector,
            tls,
            client_ca: None,
            limits,
        }
    }

    /// Verifies the client certificate of every call against `client_ca`,
    /// which follows reloads: a connection made under a client CA that was
    /// replaced since serves no further call (see
    /// [`crate::tls::ClientCaLayer`]).
    pub fn check_client_ca(mut self, client_ca: Option<crate::tls::ClientCa>) -> Agent {
        self.client_ca = client_ca;
        self
    }

    /// Serves on `listener` until `shutdown` completes, then lets calls in
    /// flight finish for up to [`Limits::shutdown_grace`] before closing
    /// the connections that still carry one.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<pb::host_inspector_server::HostInspectorServer<Inspector>>()
            .await;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        // Watch streams never end by themselves: end them when shutdown
        // begins, so that draining the calls in flight can finish.
        let watches = self.inspector.clone();
        let (draining, drain_started) = oneshot::channel();
        let shutdown = async move {
            shutdown.await;
            watches.end_watches();
            let _ = draining.send(());
        };
        let audit = self.inspector.audit();
        let stall_timeout = self.inspector.stream_stall_timeout();
        let inspector = pb::host_inspector_server::HostInspectorServer::new(self.inspector)
            .max_decoding_message_size(self.limits.max_request_bytes)
            .max_encoding_message_size(service::MAX_MESSAGE_BYTES);

        let router = Server::builder()
            .timeout(self.limits.request_timeout)
            .max_concurrent_streams(self.limits.max_concurrent_streams)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .layer(TrackCallsLayer)
            .layer(crate::tls::ClientCaLayer::new(self.client_ca))
            .layer(edge::CheckRequestsLayer {
                max_bytes: self.limits.max_request_bytes,
                audit,
            })
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?)
            .add_service(inspector);

        let gate = Arc::new(Gate::new(self.limits.clone(), stall_timeout));
        let (incoming, accepting) =
            incoming(listener, self.tls.map(TlsAcceptor::from), Arc::clone(&gate));
        let serving = router.serve_with_incoming_shutdown(incoming, shutdown);
        tokio::pin!(serving);
        let grace = self.limits.shutdown_grace;
        let over = async {
            match drain_started.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        let served = tokio::select! {
            served = &mut serving => served,
            () = over => {
                // Calls that still run (a client that stopped reading its
                // stream, say) would hold the agent up for ever.
                let closed = gate.close_all();
                tracing::warn!(
                    connections = closed,
                    ?grace,
                    "shutdown grace period over: closing connections with calls in flight"
                );
                serving.await
            }
        };
        served?;
        // The server has dropped its incoming stream, so the accept loop
        // ends; waiting for it means the port is free when serve returns.
        let _ = accepting.await;
        Ok(())
    }
}

/// Accepted connections for tonic, and the task that accepts them.
type Incoming = (
    ReceiverStream<Result<Conn, std::io::Error>>,
    tokio::task::JoinHandle<()>,
);

/// Accepts connections, completes TLS handshakes (when `tls` is set) off
/// the accept path, and hands tonic the connections the gate lets in.
fn incoming(listener: TcpListener, tls: Option<TlsAcceptor>, gate: Arc<Gate>) -> Incoming {
    let (tx, rx) = mpsc::channel(64);
    let accepting = tokio::spawn(accept_loop(listener, tx, tls, gate));
    (ReceiverStream::new(rx), accepting)
}

/// Accepts until the server drops its end of `tx` (at shutdown), and logs
/// the interval's summary of rejections meanwhile.
async fn accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<Result<Conn, std::io::Error>>,
    tls: Option<TlsAcceptor>,
    gate: Arc<Gate>,
) {
    let listen = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |addr| addr.to_string());
    let mut summary = tokio::time::interval(gate::LOG_INTERVAL);
    summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = summary.tick() => {
                gate.rejections.log_interval(&listen);
                continue;
            }
            () = tx.closed() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                on_connection(tcp, peer, tls.as_ref(), &gate, &tx);
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin, and keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    gate.stop_handshakes();
    gate.rejections.log_interval(&listen);
}

/// Lets one accepted connection in, or turns it away.
fn on_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<&TlsAcceptor>,
    gate: &Arc<Gate>,
    tx: &mpsc::Sender<Result<Conn, std::io::Error>>,
) {
    // A peer at its connection limit is refused before a handshake is
    // spent on it.
    if let Err(full) = gate.has_room(peer) {
        gate.rejections
            .reject(Rejection::OverLimit, peer, &full.reason());
        return;
    }
    let tx = tx.clone();
    let Some(acceptor) = tls.cloned() else {
        if let Some(conn) = Conn::open(Io::Plain(tcp), peer, None, gate) {
            tokio::spawn(async move {
                let _ = tx.send(Ok(conn)).await;
            });
        }
        return;
    };
    let (id, shed) = gate.begin_handshake(peer);
    let gate = Arc::clone(gate);
    let timeout = gate.limits.handshake_timeout;
    tokio::spawn(async move {
        let outcome = tokio::select! {
            shed = shed => match shed {
                Ok(()) => Err((Rejection::Shed, "handshake table full".to_owned())),
                // The agent is stopping: nothing to report.
                Err(_) => return,
            },
            done = tokio::time::timeout(timeout, acceptor.accept(tcp)) => match done {
                Ok(Ok(tls)) => Ok(tls),
                Ok(Err(e)) => Err((Rejection::Tls, e.to_string())),
                Err(_) => Err((
                    Rejection::HandshakeTimeout,
                    format!("no complete handshake within {timeout:?}"),
                )),
            },
        };
        gate.end_handshake(id);
        match outcome {
            Ok(tls) => {
                // The identity the roles are granted to: connections are
                // bounded per identity as well as per network, so that one
                // certificate from many addresses cannot take every place.
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(Identity::from_certificate)
                    .and_then(|id| id.names.into_iter().next());
                if let Some(conn) =
                    Conn::open(Io::Tls(Box::new(tls)), peer, identity.as_deref(), &gate)
                {
                    let _ = tx.send(Ok(conn)).await;
                }
            }
            Err((kind, reason)) => gate.rejections.reject(kind, peer, &reason),
        }
    });
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        let hard = limit.maximum;
        // Lower the soft limit (never below what this test binary needs),
        // then raise it again.
        let lowered = hard.unwrap_or(u64::MAX).min(512);
        limit.current = Some(lowered);
        setrlimit(Resource::Nofile, limit).expect("lower the soft limit");
        let raised = raise_fd_limit().expect("raise");
        assert_eq!(raised.before, lowered);
        assert_eq!(raised.after, hard.unwrap_or(u64::MAX));
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
        assert!(Limits::default().descriptors_needed() > 1024);
    }
}
