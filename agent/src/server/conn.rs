//! One accepted connection as tonic serves it: a deadline for the HTTP/2
//! preface, an idle timeout while it carries no call, a stall timeout for
//! responses its client does not take, a count of its open calls, and a
//! switch that closes it at the end of a graceful shutdown.
//!
//! hyper has no deadline for the preface and no idle timeout, and its
//! keep-alive pings keep an idle connection alive for ever. So the agent
//! wraps each connection's I/O: when a deadline passes, the next read ends
//! the connection. A tower layer counts the calls on each connection (a
//! call lasts until its response body is dropped, so a stream counts until
//! it ends), which tells the I/O when the connection is idle.
//!
//! hyper asks a response body for its next piece of data only once it has
//! sent the previous one, which takes the client's flow-control window. So
//! a body whose data hyper has held for the stall timeout belongs to a
//! client that takes nothing (a window kept at 0): that connection is
//! closed, which is the only way to drop what hyper holds for it. Watch
//! streams are left to their own stall timeout, which ends them with a
//! status the client reads should it read again.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};
use tonic::{
    body::Body,
    codegen::http,
    transport::server::{Connected, TcpConnectInfo, TlsConnectInfo},
};

use super::{
    conn_state::{CallGuard, ConnState, register},
    gate::{Gate, Rejection},
};

/// The HTTP/2 client connection preface is this many bytes (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;

// === Io ===

/// A client's byte stream: TLS, or plaintext on loopback.
pub(super) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(tcp) => tcp.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

// === Conn ===

/// What tonic learns about a connection: the usual TCP or TLS details, and
/// the shared state through which [`TrackCallsLayer`] counts its calls.
#[derive(Clone)]
pub(crate) struct ConnInfo {
    peer: PeerInfo,
    state: Arc<ConnState>,
}

/// The connect info tonic's own code looks for (`Request::remote_addr`,
/// `Request::peer_certs`).
#[derive(Clone)]
enum PeerInfo {
    Tcp(TcpConnectInfo),
    Tls(TlsConnectInfo<TcpConnectInfo>),
}

/// An accepted connection, counted against the limits until dropped.
pub(crate) struct Conn {
    io: Io,
    info: ConnInfo,
    gate: Arc<Gate>,
    id: u64,
    peer: SocketAddr,
    /// Preface bytes still to come.
    preface_left: usize,
    preface_deadline: Instant,
    idle_timeout: Duration,
    stall_timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

/// What the connection waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    Preface,
    Idle,
    Stall,
}

impl Conn {
    /// Wraps `io` from `peer` with the client certificate `identity`, or
    /// gives it back closed (None) when the peer, the identity or the agent
    /// is at its connection limit.
    pub(super) fn open(
        io: Io,
        peer: SocketAddr,
        identity: Option<&str>,
        gate: &Arc<Gate>,
    ) -> Option<Conn> {
        let state = ConnState::new();
        let id = match gate.open(peer, identity, &state) {
            Ok(id) => id,
            Err(full) => {
                gate.rejections
                    .reject(Rejection::OverLimit, peer, &full.reason());
                return None;
            }
        };
        let peer_info = match &io {
            Io::Plain(tcp) => PeerInfo::Tcp(tcp.connect_info()),
            Io::Tls(tls) => PeerInfo::Tls(tls.connect_info()),
        };
        let now = Instant::now();
        let preface_deadline = now + gate.limits.handshake_timeout;
        Some(Conn {
            io,
            info: ConnInfo {
                peer: peer_info,
                state,
            },
            gate: Arc::clone(gate),
            id,
            peer,
            preface_left: PREFACE_LEN,
            preface_deadline,
            idle_timeout: gate.limits.idle_timeout,
            stall_timeout: gate.stall_timeout,
            timer: Box::pin(tokio::time::sleep_until(preface_deadline)),
        })
    }

    /// The deadline the connection waits under now, if any.
    fn deadline(&self) -> Option<(Instant, Deadline)> {
        if self.preface_left > 0 {
            return Some((self.preface_deadline, Deadline::Preface));
        }
        let state = &self.info.state;
        if let Some(since) = state.idle_since() {
            return Some((since + self.idle_timeout, Deadline::Idle));
        }
        state
            .held_since()
            .map(|since| (since + self.stall_timeout, Deadline::Stall))
    }

    /// Polls the current deadline: Ready with its kind once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Deadline> {
        let Some((deadline, kind)) = self.deadline() else {
            return Poll::Pending;
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx).map(|()| kind)
    }
}

fn closed_at_shutdown() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed: the agent is shutting down and its grace period is over",
    )
}

impl Conn {
    /// Registers the writing task, and fails once the connection must close.
    fn writable(&self, cx: &Context<'_>) -> io::Result<()> {
        register(&self.info.state.writers, cx.waker());
        if self.info.state.is_closing() {
            return Err(closed_at_shutdown());
        }
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.gate.close(self.id);
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let state = Arc::clone(&this.info.state);
        register(&state.readers, cx.waker());
        if state.is_closing() {
            return Poll::Ready(Err(closed_at_shutdown()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.preface_left = this.preface_left.saturating_sub(read);
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let kind = match this.poll_deadline(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(kind) => kind,
        };
        if kind == Deadline::Stall {
            tracing::warn!(
                peer = %this.peer,
                timeout = ?this.stall_timeout,
                "closing connection: its client took none of a response's data in time \
                 ([limits] stream_stall_timeout_secs)"
            );
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "a response's data not taken in time",
            )));
        }
        if kind == Deadline::Preface {
            this.gate.rejections.reject(
                Rejection::PrefaceTimeout,
                this.peer,
                &format_args!(
                    "no HTTP/2 preface within {:?}",
                    this.gate.limits.handshake_timeout
                ),
            );
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 preface in time",
            )));
        }
        // Idle for the whole timeout: end the connection as if the client
        // had closed it. It carries no call, so none is cut short.
        tracing::debug!(peer = %this.peer, timeout = ?this.idle_timeout, "closing idle connection");
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writable(cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writable(cx)?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.writable(cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

// === TrackCallsLayer ===

/// The path of WatchProcesses, whose streams have a stall timeout of their
/// own (see the module's documentation).
const WATCH_PATH: &str = "/hostscope.v1.HostInspector/WatchProcesses";

/// Counts the calls on each connection, and gives tonic's handlers back the
/// connect info they know ([`ConnInfo`] wraps it).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TrackCallsLayer;

impl<S> tower_layer::Layer<S> for TrackCallsLayer {
    type Service = TrackCalls<S>;

    fn layer(&self, inner: S) -> TrackCalls<S> {
        TrackCalls { inner }
    }
}

/// The service of [`TrackCallsLayer`].
#[derive(Clone, Debug)]
pub(crate) struct TrackCalls<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tonic::codegen::Service<http::Request<Body>> for TrackCalls<S>
where
    S: tonic::codegen::Service<http::Request<Body>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: 'static,
{
    type Response = http::Response<Tracked<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let watched = request.uri().path() != WATCH_PATH;
        let call = request.extensions_mut().remove::<ConnInfo>().map(|info| {
            match info.peer {
                PeerInfo::Tcp(tcp) => request.extensions_mut().insert(tcp).map(drop),
                PeerInfo::Tls(tls) => request.extensions_mut().insert(tls).map(drop),
            };
            request
                .extensions_mut()
                .insert(Arc::clone(&info.state.buffered));
            info.state.call_started(watched)
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Tracked { body, _call: call }))
        })
    }
}

/// A response body that keeps its call counted until it is dropped.
pub(crate) struct Tracked<B> {
    body: B,
    _call: Option<CallGuard>,
}

impl<B> http_body::Body for Tracked<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Some(call) = &this._call {
            // hyper holds a piece of data until the client's window lets
            // it through, and only then asks for more.
            let held = matches!(&polled, Poll::Ready(Some(Ok(frame))) if frame.is_data());
            call.hold(held);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
