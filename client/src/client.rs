//! The connection to one agent and its typed calls.

use std::{
    collections::{HashMap, VecDeque},
    net::Ipv6Addr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use hostscope_proto::{self as proto, host_inspector_client::HostInspectorClient};
use rustls::pki_types::ServerName;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{
    DEFAULT_PORT, Error, Process, TlsConfig,
    error::{CallContext, from_status, from_transport},
    probe::Probe,
    tls::install_crypto_provider,
};

/// How long a TCP connect plus TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response message accepted. Batches and interface lists are
/// far smaller; this only stops a broken or hostile peer.
const MAX_DECODING_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

/// A connection to one hostscope agent. Cloning is cheap and clones share
/// the connection, so one `Client` can serve many concurrent calls.
#[derive(Debug, Clone)]
pub struct Client {
    inner: HostInspectorClient<Channel>,
    channel: Channel,
    ctx: Arc<CallContext>,
    probe: Arc<Probe>,
}

/// Where to connect: the parts of an endpoint string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or IP literal, without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Some(true)` for an explicit `https://`, `Some(false)` for `http://`.
    pub(crate) https: Option<bool>,
}

impl Target {
    /// Parses "host", "host:port", "[::1]:port", a bare IPv6 address, or any
    /// of those behind "https://" or "http://".
    pub(crate) fn parse(endpoint: &str) -> Result<Target, Error> {
        let invalid = |why: &str| Error::InvalidArgument {
            message: format!("endpoint {endpoint:?}: {why}"),
        };
        let s = endpoint.trim();
        let (https, rest) = if let Some(rest) = s.strip_prefix("https://") {
            (Some(true), rest)
        } else if let Some(rest) = s.strip_prefix("http://") {
            (Some(false), rest)
        } else {
            (None, s)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if rest.parse::<Ipv6Addr>().is_ok() {
            (rest, None)
        } else if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("an IPv6 address needs a closing ']'"))?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(invalid("only IPv6 addresses go in brackets"));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(invalid("expected ':PORT' after ']'")),
                },
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        if host.contains(['/', '@', '[', ']', '?', '#'])
            || host.contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "expected host, host:port, [ipv6]:port or https://host:port",
            ));
        }
        // A colon left in the host ("a:1:2") would be written back in
        // brackets, as an IPv6 address, which it is not.
        if host.contains(':') && host.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(
                "a host name has no ':'; IPv6 addresses go in brackets",
            ));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?,
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            https,
        })
    }

    /// Fails when an explicit scheme contradicts the TLS settings.
    fn check_scheme(&self, endpoint: &str, tls: bool) -> Result<(), Error> {
        let why = match (self.https, tls) {
            (Some(true), false) => "says https, but no TLS settings were given",
            (Some(false), true) => "says http (plaintext), but TLS settings were given",
            _ => return Ok(()),
        };
        Err(Error::InvalidArgument {
            message: format!("endpoint {endpoint:?} {why}"),
        })
    }

    /// `host:port`, with brackets around IPv6 addresses: how errors name
    /// the agent.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// TLS settings checked, and turned into the rustls configuration the
/// [`Probe`] speaks, once for any number of connections: checking the PEM
/// and building the configuration parse every certificate and the key
/// again, which a fleet would otherwise repeat for each host.
#[derive(Clone, Debug)]
pub(crate) struct PreparedTls {
    tls: TlsConfig,
    for_probe: Arc<rustls::ClientConfig>,
}

impl PreparedTls {
    pub(crate) fn new(tls: TlsConfig) -> Result<PreparedTls, Error> {
        let for_probe = tls.rustls_config()?;
        Ok(PreparedTls { tls, for_probe })
    }
}

/// The TLS settings for tonic, checking the agent's certificate for
/// `name`, and the same settings for the [`Probe`].
fn tls_settings(
    tls: &PreparedTls,
    name: &str,
) -> Result<
    (
        ClientTlsConfig,
        (Arc<rustls::ClientConfig>, ServerName<'static>),
    ),
    Error,
> {
    let server_name =
        ServerName::try_from(name.to_owned()).map_err(|e| Error::InvalidArgument {
            message: format!("{name:?} is no TLS server name: {e}"),
        })?;
    let for_probe = (Arc::clone(&tls.for_probe), server_name);
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.tls.ca_pem))
        .domain_name(name)
        .timeout(CONNECT_TIMEOUT);
    if let Some((cert, key)) = &tls.tls.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    Ok((config, for_probe))
}

/// The fields a request names, as the enum: wire values this client does
/// not know are left out.
fn requested_fields(wire: &[i32]) -> Vec<proto::ProcessField> {
    wire.iter()
        .filter_map(|f| proto::ProcessField::try_from(*f).ok())
        .collect()
}

impl Client {
    /// Connects to the agent at `endpoint`: "host", "host:port",
    /// "[::1]:port" or "https://host:port"; the port defaults to 7443.
    ///
    /// With `tls`, the agent's certificate is checked against `tls.ca_pem`
    /// for `tls.server_name` (default: the endpoint's host) and this
    /// client presents `tls.identity`. Without, it speaks plaintext HTTP/2,
    /// which an agent accepts only when started with
    /// `--insecure-plaintext`.
    ///
    /// Connects eagerly, so a refused connection, an unknown server CA or a
    /// name mismatch is reported here. An agent refusing *this client's*
    /// certificate is, with TLS 1.3, only seen on the first call.
    pub async fn connect(endpoint: &str, tls: Option<TlsConfig>) -> Result<Client, Error> {
        Target::parse(endpoint)?.check_scheme(endpoint, tls.is_some())?;
        let tls = tls.map(PreparedTls::new).transpose()?;
        Client::connect_prepared(endpoint, tls.as_ref(), None).await
    }

    /// [`Client::connect`] with TLS settings prepared beforehand;
    /// `server_name`, when given, overrides theirs.
    pub(crate) async fn connect_prepared(
        endpoint: &str,
        tls: Option<&PreparedTls>,
        server_name: Option<&str>,
    ) -> Result<Client, Error> {
        install_crypto_provider();
        let target = Target::parse(endpoint)?;
        target.check_scheme(endpoint, tls.is_some())?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let ctx = CallContext {
            endpoint: target.authority(),
            server_name: tls.map(|t| {
                server_name
                    .map(str::to_owned)
                    .or_else(|| t.tls.server_name.clone())
                    .unwrap_or_else(|| target.host.clone())
            }),
        };
        let uri = format!("{scheme}://{}", ctx.endpoint);
        let mut ep = Endpoint::from_shared(uri).map_err(|e| Error::InvalidArgument {
            message: format!("endpoint {endpoint:?}: {e}"),
        })?;
        ep = ep.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true);
        let mut probe_tls = None;
        if let (Some(tls), Some(name)) = (tls, &ctx.server_name) {
            let (config, for_probe) = tls_settings(tls, name)?;
            probe_tls = Some(for_probe);
            ep = ep.tls_config(config).map_err(|e| Error::Tls {
                message: format!(
                    "the TLS settings for {} are unusable: {}",
                    ctx.endpoint,
                    crate::error::chain_text(&e)
                ),
            })?;
        }
        let probe = Arc::new(Probe::new(ctx.endpoint.clone(), probe_tls));
        let channel = match ep.connect().await {
            Ok(channel) => channel,
            Err(e) => return Err(probe.explain(from_transport(&e, &ctx), &ctx).await),
        };
        let inner = HostInspectorClient::new(channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE);
        Ok(Client {
            inner,
            channel,
            ctx: Arc::new(ctx),
            probe,
        })
    }

    /// The agent's address as `host:port`.
    pub fn endpoint(&self) -> &str {
        &self.ctx.endpoint
    }

    /// The underlying channel, for other services the agent serves beside
    /// HostInspector (such as `grpc.health.v1`).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A call's answer, or its error: mapped from the status, and, when
    /// that is a transport failure without a stated cause, explained by a
    /// probe. `pid` is the process the call was about.
    async fn answer<T>(
        &self,
        result: Result<tonic::Response<T>, tonic::Status>,
        pid: Option<u32>,
    ) -> Result<T, Error> {
        match result {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => {
                let err = from_status(status, &self.ctx, pid);
                Err(self.probe.explain(err, &self.ctx).await)
            }
        }
    }

    /// Facts about the host and the agent (GetHost).
    pub async fn host(&self) -> Result<proto::Host, Error> {
        let result = self.inner.clone().get_host(proto::GetHostRequest {}).await;
        self.answer(result, None).await
    }

    /// Every process matching `filter`, with the `fields` asked for (empty:
    /// every field), one at a time as the agent's batches arrive.
    pub async fn processes(
        &self,
        fields: &[proto::ProcessField],
        filter: proto::ProcessFilter,
    ) -> Result<ProcessStream, Error> {
        self.list_processes(proto::ListProcessesRequest {
            fields: fields.iter().map(|f| *f as i32).collect(),
            filter: Some(filter),
            ..Default::default()
        })
        .await
    }

    /// [`Client::processes`] with every knob of the request, such as the
    /// interval `cpu_percent` is measured over.
    pub async fn list_processes(
        &self,
        request: proto::ListProcessesRequest,
    ) -> Result<ProcessStream, Error> {
        let fields = requested_fields(&request.fields);
        let result = self.inner.clone().list_processes(request).await;
        Ok(ProcessStream {
            batches: self.answer(result, None).await?,
            pending: VecDeque::new(),
            fields: fields.into(),
            ctx: self.ctx.clone(),
        })
    }

    /// One process, with the `fields` asked for (empty: every field). A
    /// zombie is returned, with status zombie; a missing pid is
    /// [`Error::NoSuchProcess`].
    pub async fn process(
        &self,
        pid: u32,
        fields: &[proto::ProcessField],
    ) -> Result<Process, Error> {
        self.get_process(proto::GetProcessRequest {
            pid,
            fields: fields.iter().map(|f| *f as i32).collect(),
            ..Default::default()
        })
        .await
    }

    /// [`Client::process`] with every knob of the request, such as
    /// `memory_maps_ungrouped` (one memory map per mapping, with its
    /// address and permissions, rather than one per path).
    pub async fn get_process(&self, request: proto::GetProcessRequest) -> Result<Process, Error> {
        let pid = request.pid;
        let fields = requested_fields(&request.fields);
        let result = self.inner.clone().get_process(request).await;
        Ok(Process::new(self.answer(result, Some(pid)).await?, &fields))
    }

    /// Whether `pid` exists; true for zombies too.
    pub async fn pid_exists(&self, pid: u32) -> Result<bool, Error> {
        let result = self
            .inner
            .clone()
            .pid_exists(proto::PidExistsRequest { pid })
            .await;
        Ok(self.answer(result, Some(pid)).await?.exists)
    }

    /// The names of `pids` that still run (or are zombies), from one
    /// listing; none asked, none read. A pid that is gone, or whose name
    /// cannot be read, is left out.
    pub async fn process_names(&self, pids: Vec<u32>) -> Result<HashMap<u32, String>, Error> {
        let mut names = HashMap::new();
        if pids.is_empty() {
            return Ok(names);
        }
        let filter = proto::ProcessFilter {
            pids,
            ..Default::default()
        };
        let mut stream = self.processes(&[proto::ProcessField::Name], filter).await?;
        while let Some(p) = stream.next().await {
            let p = p?;
            if let Ok(name) = p.name() {
                names.insert(p.pid(), name.to_owned());
            }
        }
        Ok(names)
    }

    /// Every network interface with addresses, link state and counters.
    pub async fn net_interfaces(&self) -> Result<Vec<proto::NetInterface>, Error> {
        let request = proto::ListNetInterfacesRequest {};
        let result = self.inner.clone().list_net_interfaces(request).await;
        Ok(self.answer(result, None).await?.interfaces)
    }

    /// Live process events (WatchProcesses): started, exec, exited,
    /// zombie, samples, and LAGGED when events were lost (this watcher
    /// fell behind, or the agent's kernel event buffer overflowed). The
    /// stream ends when the agent shuts down; a pid in `request.filter.pids`
    /// that is a zombie or gone fails a sampling watch here, as
    /// [`Error::ZombieProcess`] or [`Error::NoSuchProcess`].
    pub async fn watch(&self, request: proto::WatchProcessesRequest) -> Result<EventStream, Error> {
        let pid = request
            .filter
            .as_ref()
            .and_then(|f| (f.pids.len() == 1).then(|| f.pids[0]));
        let result = self.inner.clone().watch_processes(request).await;
        Ok(EventStream {
            events: self.answer(result, pid).await?,
            ctx: Arc::clone(&self.ctx),
        })
    }

    /// The host's own figures (GetSystem): CPU, memory, swap, load, users,
    /// sensors, a cgroup's limits. Figures that could not be read are in
    /// the answer's `field_errors`.
    pub async fn system(&self, request: proto::GetSystemRequest) -> Result<proto::System, Error> {
        let result = self.inner.clone().get_system(request).await;
        self.answer(result, None).await
    }

    /// Mounted file systems with their usage, and disk I/O counters
    /// (ListDisks). A mount that did not answer in time has
    /// `usage_error` TIMEOUT.
    pub async fn disks(
        &self,
        request: proto::ListDisksRequest,
    ) -> Result<proto::ListDisksResponse, Error> {
        let result = self.inner.clone().list_disks(request).await;
        self.answer(result, None).await
    }

    /// The open descriptors of processes (ListOpenFiles), as psutil's
    /// `Process.open_files` gives them: of `request.pids`, or of every
    /// process; regular files only unless `request.all_kinds`. The agent's
    /// batches come merged into one: `files` by process, each process's by
    /// descriptor, and `process_errors` naming the processes whose
    /// descriptors could not be read (ACCESS_DENIED, mostly; a pid asked
    /// for that does not exist is NO_SUCH_PROCESS).
    pub async fn open_files(
        &self,
        request: proto::ListOpenFilesRequest,
    ) -> Result<proto::OpenFileBatch, Error> {
        let result = self.inner.clone().list_open_files(request).await;
        let mut batches = self.answer(result, None).await?;
        let mut all = proto::OpenFileBatch::default();
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|status| from_status(status, &self.ctx, None))?;
            all.files.extend(batch.files);
            all.process_errors.extend(batch.process_errors);
        }
        Ok(all)
    }

    /// Every zombie on the host with its parent, grouped by parent, most
    /// zombies first (FindZombies).
    pub async fn find_zombies(&self) -> Result<proto::FindZombiesResponse, Error> {
        let result = self
            .inner
            .clone()
            .find_zombies(proto::FindZombiesRequest {})
            .await;
        self.answer(result, None).await
    }

    /// Sends `signal` ("TERM", "SIGKILL", "15", ...) to `pid` (SignalProcess).
    /// With `expected_create_time` (as this API reported it), a pid that
    /// now belongs to another process is refused with
    /// [`Error::PidReused`]. Needs the operator role
    /// ([`Error::OperatorRequired`]); a zombie gives
    /// [`Error::ZombieProcess`] naming the parent to act on instead.
    pub async fn signal(
        &self,
        pid: u32,
        signal: &str,
        expected_create_time: Option<f64>,
    ) -> Result<proto::SignalProcessResponse, Error> {
        let request = proto::SignalProcessRequest {
            pid,
            signal: signal.to_owned(),
            expected_create_time,
        };
        let result = self.inner.clone().signal_process(request).await;
        self.answer(result, Some(pid)).await
    }
}

// === Sockets ===

impl Client {
    /// The host's sockets (psutil's `net_connections`), as the agent's
    /// batches arrive; each batch also names the processes whose
    /// descriptors could not be read while mapping sockets to pids. See
    /// [`ConnectionStream::collect_all`] for the whole listing at once.
    pub async fn connections(
        &self,
        request: proto::ListConnectionsRequest,
    ) -> Result<ConnectionStream, Error> {
        let result = self.inner.clone().list_connections(request).await;
        Ok(ConnectionStream {
            batches: self.answer(result, None).await?,
            ctx: self.ctx.clone(),
        })
    }
}

/// The batches of a socket listing: see [`Client::connections`]. Ends after
/// the last batch, or with the first error.
pub struct ConnectionStream {
    batches: tonic::Streaming<proto::ConnectionBatch>,
    ctx: Arc<CallContext>,
}

/// A whole socket listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connections {
    /// Every socket, once per holding process when pids were asked for.
    pub connections: Vec<proto::Connection>,
    /// Processes whose descriptors could not be read: their sockets are
    /// listed without a pid.
    pub process_errors: Vec<proto::ProcessError>,
}

impl ConnectionStream {
    /// Every batch, gathered.
    pub async fn collect_all(mut self) -> Result<Connections, Error> {
        use tokio_stream::StreamExt;
        let mut all = Connections::default();
        while let Some(batch) = self.next().await {
            let batch = batch?;
            all.connections.extend(batch.connections);
            all.process_errors.extend(batch.process_errors);
        }
        Ok(all)
    }
}

impl std::fmt::Debug for ConnectionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionStream")
            .field("endpoint", &self.ctx.endpoint)
            .finish()
    }
}

impl Stream for ConnectionStream {
    type Item = Result<proto::ConnectionBatch, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.batches).poll_next(cx)) {
            Some(Ok(batch)) => Poll::Ready(Some(Ok(batch))),
            Some(Err(status)) => Poll::Ready(Some(Err(from_status(status, &this.ctx, None)))),
            None => Poll::Ready(None),
        }
    }
}

/// The events of a watch, as the agent sends them: see [`Client::watch`].
pub struct EventStream {
    events: tonic::Streaming<proto::ProcessEvent>,
    ctx: Arc<CallContext>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("endpoint", &self.ctx.endpoint)
            .finish()
    }
}

impl Stream for EventStream {
    type Item = Result<proto::ProcessEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.events).poll_next(cx)) {
            Some(Ok(event)) => Poll::Ready(Some(Ok(event))),
            Some(Err(status)) => Poll::Ready(Some(Err(from_status(status, &this.ctx, None)))),
            None => Poll::Ready(None),
        }
    }
}

/// The processes of a listing, one by one: [`Client::processes`] flattens
/// the agent's batches. Ends after the last batch, or with the first error.
pub struct ProcessStream {
    batches: tonic::Streaming<proto::ProcessBatch>,
    pending: VecDeque<proto::Process>,
    fields: Arc<[proto::ProcessField]>,
    ctx: Arc<CallContext>,
}

impl std::fmt::Debug for ProcessStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessStream")
            .field("endpoint", &self.ctx.endpoint)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl ProcessStream {
    /// The processes of the agent's next batch, as it arrives (`None`
    /// after the last), for a reader that handles a listing batch by batch
    /// rather than one process at a time.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<Process>, Error>> {
        if !self.pending.is_empty() {
            let fields = &self.fields;
            return Some(Ok(self
                .pending
                .drain(..)
                .map(|p| Process::new(p, fields))
                .collect()));
        }
        match self.batches.next().await? {
            Ok(batch) => Some(Ok(batch
                .processes
                .into_iter()
                .map(|p| Process::new(p, &self.fields))
                .collect())),
            Err(status) => Some(Err(from_status(status, &self.ctx, None))),
        }
    }
}

impl Stream for ProcessStream {
    type Item = Result<Process, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(p) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Process::new(p, &this.fields))));
            }
            match ready!(Pin::new(&mut this.batches).poll_next(cx)) {
                Some(Ok(batch)) => this.pending.extend(batch.processes),
                Some(Err(status)) => {
                    return Poll::Ready(Some(Err(from_status(status, &this.ctx, None))));
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, https: Option<bool>) -> Target {
        Target {
            host: host.to_owned(),
            port,
            https,
        }
    }

    #[test]
    fn endpoints_parse() {
        let cases = [
            ("web1", target("web1", 7443, None)),
            ("web1:9000", target("web1", 9000, None)),
            ("192.0.2.5", target("192.0.2.5", 7443, None)),
            ("[::1]:7000", target("::1", 7000, None)),
            ("[fe80::1]", target("fe80::1", 7443, None)),
            ("::1", target("::1", 7443, None)),
            ("https://web1:8443", target("web1", 8443, Some(true))),
            (
                "http://127.0.0.1:7443/",
                target("127.0.0.1", 7443, Some(false)),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Target::parse(input).ok(), Some(want), "{input}");
        }
        assert_eq!(
            Target::parse("[::1]:7000")
                .map(|t| t.authority())
                .ok()
                .as_deref(),
            Some("[::1]:7000")
        );
    }

    #[test]
    fn an_explicit_scheme_must_match_the_tls_settings() {
        let https = Target::parse("https://web1").expect("valid");
        assert!(https.check_scheme("https://web1", true).is_ok());
        assert!(https.check_scheme("https://web1", false).is_err());
        let http = Target::parse("http://web1").expect("valid");
        assert!(http.check_scheme("http://web1", true).is_err());
        assert!(
            Target::parse("web1")
                .expect("valid")
                .check_scheme("web1", false)
                .is_ok()
        );
    }

    #[test]
    fn bad_endpoints_are_invalid_arguments() {
        for input in [
            "",
            ":7443",
            "web1:",
            "web1:http",
            "web1:70000",
            "web1:0",
            "[::1",
            "[web1]:1",
            "https://web1/x",
            "user@web1",
            // Found by `cargo xtask fuzz inventory`: accepted, then written
            // as "[web2:7443c]:7443", which does not parse.
            "web2:7443c:7443",
            "1.2.3.4:5:6",
            // Line breaks and control characters in a host name.
            "web1\nweb2",
            "web1\u{0}",
            "web1\u{7f}:7443",
        ] {
            let e = Target::parse(input).expect_err(input);
            assert!(matches!(e, Error::InvalidArgument { .. }), "{input}: {e:?}");
        }
    }
}
