//! Request messages checked at the edge, before tonic decodes them.
//!
//! tonic answers an oversized request with OUT_OF_RANGE and a malformed one
//! with INTERNAL, while the API promises INVALID_ARGUMENT for bad input and
//! INTERNAL means "the agent is broken". Every HostInspector method takes
//! one request message, so this layer reads it (bounded by the request
//! size limit), checks its framing and decodes it; what fails is answered
//! here with INVALID_ARGUMENT and a message that says what is wrong, and
//! what passes goes on to tonic unchanged. A SignalProcess refused here is
//! audited like one the service refuses.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use hostscope_proto as pb;
use prost::Message;
use tonic::{
    Status,
    body::Body,
    codegen::{Bytes, http},
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};

use crate::{
    authz::Identity,
    service::audit::{self, Audit},
};

/// The path prefix of the methods checked here.
const SERVICE: &str = "/hostscope.v1.HostInspector/";
/// gRPC's message prefix: a compression flag and a 4-byte length.
const PREFIX: usize = 5;

/// Checks the request message of every HostInspector call.
#[derive(Clone, Debug)]
pub(crate) struct CheckRequestsLayer {
    /// Largest request message in bytes.
    pub(crate) max_bytes: usize,
    /// Where refused SignalProcess requests are audited.
    pub(crate) audit: Arc<Audit>,
}

impl<S> tower_layer::Layer<S> for CheckRequestsLayer {
    type Service = CheckRequests<S>;

    fn layer(&self, inner: S) -> CheckRequests<S> {
        CheckRequests {
            inner,
            max_bytes: self.max_bytes,
            audit: Arc::clone(&self.audit),
        }
    }
}

/// The service of [`CheckRequestsLayer`].
#[derive(Clone, Debug)]
pub(crate) struct CheckRequests<S> {
    inner: S,
    max_bytes: usize,
    audit: Arc<Audit>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tonic::codegen::Service<http::Request<Body>> for CheckRequests<S>
where
    S: tonic::codegen::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let Some(method) = request
            .uri()
            .path()
            .strip_prefix(SERVICE)
            .map(str::to_owned)
        else {
            return Box::pin(self.inner.call(request));
        };
        // The service readied by poll_ready serves this call; a clone
        // takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let max_bytes = self.max_bytes;
        let audit = Arc::clone(&self.audit);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let checked = read_bounded(body, PREFIX + max_bytes)
                .await
                .and_then(|bytes| match check_message(&method, &bytes, max_bytes) {
                    Ok(()) => Ok(bytes),
                    Err(message) => Err(Status::invalid_argument(message)),
                });
            let bytes = match checked {
                Ok(bytes) => bytes,
                Err(status) => {
                    if method == "SignalProcess" && status.code() == tonic::Code::InvalidArgument {
                        audit_refusal(&audit, &parts.extensions, &status);
                    }
                    return Ok(status.into_http());
                }
            };
            let body = Body::new(Buffered(Some(bytes)));
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}

/// Audits a SignalProcess request refused before it could be decoded: who
/// sent it and why; its pid and signal are unknown (0 and "").
fn audit_refusal(audit: &Audit, extensions: &http::Extensions, status: &Status) {
    let tls = extensions.get::<TlsConnectInfo<TcpConnectInfo>>();
    let tcp = tls
        .map(TlsConnectInfo::get_ref)
        .or_else(|| extensions.get::<TcpConnectInfo>());
    let id = tls
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|certs| certs.first().map(Identity::from_certificate))
        .unwrap_or_default();
    audit.record(&audit::Entry {
        time: audit::Entry::now(),
        client: id.display(),
        peer: tcp.and_then(TcpConnectInfo::remote_addr),
        pid: 0,
        signal: "",
        expected_create_time: None,
        outcome: "refused",
        reason: Some("INVALID_ARGUMENT".to_owned()),
        message: Some(status.message().to_owned()),
    });
}

/// Reads a request body of at most `limit` bytes.
async fn read_bounded(mut body: Body, limit: usize) -> Result<Bytes, Status> {
    use http_body::Body as _;
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        // A body that fails to arrive (a reset stream) ends the call as
        // tonic would end it.
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                // The prefix says how large the message is.
                bytes.extend_from_slice(&data[..data.len().min(PREFIX)]);
                let size = match bytes.first_chunk::<PREFIX>() {
                    Some(prefix) => {
                        u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]).to_string()
                    }
                    None => format!("more than {}", limit - PREFIX),
                };
                return Err(Status::invalid_argument(format!(
                    "request too large: {size} bytes, the limit is {} bytes",
                    limit - PREFIX
                )));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

/// What is wrong with the framed request message `bytes` of `method`, if
/// anything. Compressed messages go on unchecked: tonic refuses them, as
/// the agent accepts no compression.
fn check_message(method: &str, bytes: &[u8], max_bytes: usize) -> Result<(), String> {
    let Some((prefix, message)) = bytes.split_first_chunk::<PREFIX>() else {
        return Err(format!(
            "no request message: {} bytes where a gRPC message needs at least {PREFIX}",
            bytes.len()
        ));
    };
    if prefix[0] != 0 {
        return Ok(());
    }
    let declared = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if declared > max_bytes {
        return Err(format!(
            "request too large: {declared} bytes, the limit is {max_bytes} bytes"
        ));
    }
    if message.len() != declared {
        return Err(format!(
            "malformed request: the message says {declared} bytes but {} follow",
            message.len()
        ));
    }
    fn decode<M: Message + Default>(bytes: &[u8]) -> Result<(), prost::DecodeError> {
        M::decode(bytes).map(drop)
    }
    let decoded = match method {
        "GetHost" => decode::<pb::GetHostRequest>(message),
        "ListProcesses" => decode::<pb::ListProcessesRequest>(message),
        "GetProcess" => decode::<pb::GetProcessRequest>(message),
        "PidExists" => decode::<pb::PidExistsRequest>(message),
        "ListNetInterfaces" => decode::<pb::ListNetInterfacesRequest>(message),
        "FindZombies" => decode::<pb::FindZombiesRequest>(message),
        "SignalProcess" => decode::<pb::SignalProcessRequest>(message),
        "WatchProcesses" => decode::<pb::WatchProcessesRequest>(message),
        // An unknown method: tonic answers UNIMPLEMENTED.
        _ => Ok(()),
    };
    decoded.map_err(|e| format!("malformed {method} request: {e}"))
}

/// A body already read.
struct Buffered(Option<Bytes>);

impl http_body::Body for Buffered {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(
            self.get_mut()
                .0
                .take()
                .map(|b| Ok(http_body::Frame::data(b))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(message: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
        bytes.extend_from_slice(message);
        bytes
    }

    #[test]
    fn well_formed_requests_pass() {
        let request = pb::SignalProcessRequest {
            pid: 42,
            signal: "TERM".into(),
            expected_create_time: Some(1.5),
        };
        check_message("SignalProcess", &framed(&request.encode_to_vec()), 1024).unwrap();
        check_message("GetHost", &framed(&[]), 1024).unwrap();
        // Compressed, and unknown methods: tonic's to answer.
        check_message("GetHost", &[1, 0, 0, 0, 3, 9, 9, 9], 1024).unwrap();
        check_message("NoSuchMethod", &framed(&[0xff]), 1024).unwrap();
    }

    #[test]
    fn malformed_and_oversized_requests_say_what_is_wrong() {
        // Field 1 as a varint that never ends.
        let err = check_message("GetProcess", &framed(&[0x08, 0xff]), 1024).unwrap_err();
        assert!(err.starts_with("malformed GetProcess request"), "{err}");
        // A string field that is not UTF-8.
        let err = check_message("SignalProcess", &framed(&[0x12, 1, 0xff]), 1024).unwrap_err();
        assert!(err.contains("malformed SignalProcess"), "{err}");
        let err = check_message("GetHost", &[0, 0, 1, 0, 0], 1024).unwrap_err();
        assert_eq!(
            err,
            "request too large: 65536 bytes, the limit is 1024 bytes"
        );
        let err = check_message("GetHost", &[0, 0, 0, 0, 9, 1], 1024).unwrap_err();
        assert!(err.contains("says 9 bytes but 1 follow"), "{err}");
        let err = check_message("GetHost", &[0, 0], 1024).unwrap_err();
        assert!(err.starts_with("no request message"), "{err}");
    }
}
