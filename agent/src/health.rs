//! A plaintext gRPC health endpoint on a loopback address, and the check
//! that `hostscope-agent health` makes against it.
//!
//! The main port demands a client certificate, which a container probe or a
//! host's monitoring does not have, and a bare TCP probe of that port is a
//! failed TLS handshake that the agent logs at WARN every time. This
//! endpoint serves only `grpc.health.v1.Health`, in plaintext, and only on
//! loopback: nothing on it reveals more than "serving".

use std::{
    future::Future,
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use hostscope_proto as pb;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Endpoint, Server};
/// A health answer: SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN.
pub use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::service::Inspector;

/// Where `hostscope-agent health` asks by default, and the address the
/// shipped configurations give `--health-listen`.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
    crate::config::DEFAULT_PORT + 1,
);

/// The service name clients ask about, as in `grpc.health.v1`.
pub const INSPECTOR_SERVICE: &str = "hostscope.v1.HostInspector";

/// Why a health check could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Nothing answered at the address in time.
    #[error("connecting to the health endpoint at {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: tonic::transport::Error,
    },
    /// The endpoint answered with an error, e.g. NOT_FOUND for a service it
    /// does not know.
    #[error("asking {addr} about {service:?}: {status}")]
    Call {
        addr: SocketAddr,
        service: String,
        status: tonic::Status,
    },
}

/// `hostscope-agent health`: the arguments of the check.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The agent's health address (its --health-listen).
    #[arg(long, value_name = "ADDR", default_value_t = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// The service to ask about; "" asks about the agent as a whole.
    #[arg(long, value_name = "NAME", default_value = INSPECTOR_SERVICE)]
    pub service: String,
    /// Give up after this long, e.g. 500ms or 3s.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Serves the health service on `listener` until `shutdown` completes,
/// reporting the agent and its inspector service as serving.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<pb::host_inspector_server::HostInspectorServer<Inspector>>()
        .await;
    Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

/// Asks the health endpoint at `args.addr` about `args.service`.
pub async fn check(args: &HealthArgs) -> Result<ServingStatus, CheckError> {
    let addr = args.addr;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|source| CheckError::Connect { addr, source })?
        .connect_timeout(args.timeout)
        .timeout(args.timeout)
        .connect()
        .await
        .map_err(|source| CheckError::Connect { addr, source })?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .map_err(|status| CheckError::Call {
            addr,
            service: args.service.clone(),
            status,
        })?;
    Ok(ServingStatus::try_from(answer.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(addr: SocketAddr, service: &str) -> HealthArgs {
        HealthArgs {
            addr,
            service: service.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn serves_the_agent_and_the_inspector_and_refuses_unknown_services() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, async {
            let _ = stopped.await;
        }));

        for service in ["", INSPECTOR_SERVICE] {
            let status = check(&args(addr, service)).await.expect("health answer");
            assert_eq!(status, ServingStatus::Serving, "service {service:?}");
        }
        let err = check(&args(addr, "hostscope.v1.Nothing"))
            .await
            .expect_err("unknown service");
        assert!(
            matches!(&err, CheckError::Call { status, .. } if status.code() == tonic::Code::NotFound),
            "{err:?}"
        );

        let _ = stop.send(());
        server.await.expect("server task").expect("server ends");
        let err = check(&args(addr, "")).await.expect_err("stopped");
        assert!(matches!(err, CheckError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
