//! Serving: mutual TLS, health, reflection, limits and graceful shutdown.
//!
//! The agent accepts TLS itself rather than through tonic's built-in
//! acceptor, so that a rejected handshake (no client certificate, a
//! certificate from another CA, a plaintext client) is logged at WARN with
//! the peer's address and the reason, and so that a peer that never
//! finishes its handshake is dropped after [`Limits::handshake_timeout`].

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hostscope_proto as pb;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Server, server::Connected};

use crate::service::{self, Inspector};

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
    /// Longest a TLS handshake may take before the connection is dropped.
    pub handshake_timeout: Duration,
    /// TLS handshakes in progress at once; further connections are refused.
    pub max_handshakes: usize,
    /// Concurrent HTTP/2 streams (calls) per connection.
    pub max_concurrent_streams: u32,
    /// Largest request message in bytes.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
            max_concurrent_streams: 64,
            max_request_bytes: 64 * 1024,
        }
    }
}

/// The agent's TLS files; they live in [`crate::tls`], which also reloads
/// them.
pub use crate::tls::TlsFiles;

/// One agent: the inspector service with health and reflection beside it.
pub struct Agent {
    inspector: Inspector,
    tls: Option<Arc<rustls::ServerConfig>>,
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
            limits,
        }
    }

    /// Serves on `listener` until `shutdown` completes, then lets in-flight
    /// calls finish.
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
        let shutdown = async move {
            shutdown.await;
            watches.end_watches();
        };
        let inspector = pb::host_inspector_server::HostInspectorServer::new(self.inspector)
            .max_decoding_message_size(self.limits.max_request_bytes)
            .max_encoding_message_size(service::MAX_MESSAGE_BYTES);

        let router = Server::builder()
            .timeout(self.limits.request_timeout)
            .max_concurrent_streams(self.limits.max_concurrent_streams)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?)
            .add_service(inspector);

        let accepting = match self.tls {
            Some(tls) => {
                let (incoming, accepting) =
                    tls_incoming(listener, TlsAcceptor::from(tls), self.limits);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await?;
                accepting
            }
            None => {
                let (incoming, accepting) = plain_incoming(listener);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await?;
                accepting
            }
        };
        // The server has dropped its incoming stream, so the accept loop
        // ends; waiting for it means the port is free when serve returns.
        let _ = accepting.await;
        Ok(())
    }
}

/// Accepted connections for tonic, and the task that accepts them.
type Incoming<IO> = (
    ReceiverStream<Result<IO, std::io::Error>>,
    tokio::task::JoinHandle<()>,
);

/// Accepts connections and completes TLS handshakes off the accept path,
/// bounded in number and time; failures are logged and never reach tonic.
fn tls_incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: Limits,
) -> Incoming<tokio_rustls::server::TlsStream<TcpStream>> {
    let (tx, rx) = mpsc::channel(64);
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
    let accepting = tokio::spawn(accept_loop(listener, tx.clone(), move |tcp, peer| {
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            tracing::warn!(%peer, "refused connection: too many TLS handshakes in progress");
            return;
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let timeout = limits.handshake_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send(Ok(tls)).await;
                }
                Ok(Err(e)) => tracing::warn!(%peer, reason = %e, "rejected TLS handshake"),
                Err(_) => tracing::warn!(%peer, ?timeout, "dropped TLS handshake: timed out"),
            }
        });
    }));
    (ReceiverStream::new(rx), accepting)
}

fn plain_incoming(listener: TcpListener) -> Incoming<TcpStream> {
    let (tx, rx) = mpsc::channel(64);
    let sender = tx.clone();
    let accepting = tokio::spawn(accept_loop(listener, tx, move |tcp, _| {
        let tx = sender.clone();
        tokio::spawn(async move {
            let _ = tx.send(Ok(tcp)).await;
        });
    }));
    (ReceiverStream::new(rx), accepting)
}

/// Accepts until the server drops its end of `tx` (at shutdown).
async fn accept_loop<IO>(
    listener: TcpListener,
    tx: mpsc::Sender<Result<IO, std::io::Error>>,
    mut on_connection: impl FnMut(TcpStream, SocketAddr),
) where
    IO: AsyncRead + AsyncWrite + Connected,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tx.closed() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                on_connection(tcp, peer);
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin, and keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
