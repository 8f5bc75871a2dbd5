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
//!
//! Framing errors are the client's: a compression flag other than 0 (the
//! agent accepts no compression, so a flag of 1 has no `grpc-encoding` to
//! go with it) is INVALID_ARGUMENT, where tonic would answer INTERNAL, and
//! a `grpc-encoding` other than `identity` is UNIMPLEMENTED. A request of
//! any service whose content type is not gRPC's (`application/grpc`,
//! optionally followed by `+subtype` or `;parameters`) is answered with
//! HTTP 415, as the gRPC spec asks, instead of being served.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use hostscope_proto::{self as pb, ERROR_DOMAIN};
use prost::Message;
use tonic::{
    Code, Status,
    body::Body,
    codegen::{Bytes, http},
    metadata::MetadataValue,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    authz::Identity,
    service::audit::{self, Audit},
};

/// The path prefix of the methods checked here.
const SERVICE: &str = "/hostscope.v1.HostInspector/";
/// gRPC's message prefix: a compression flag and a 4-byte length.
const PREFIX: usize = 5;
/// The content type of every gRPC request, before any `+subtype`.
const GRPC_CONTENT_TYPE: &[u8] = b"application/grpc";
/// How many characters of a refused header value a message quotes.
const QUOTED_CHARS: usize = 64;

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
        let method = request
            .uri()
            .path()
            .strip_prefix(SERVICE)
            .map(str::to_owned);
        let content_type = request.headers().get(http::header::CONTENT_TYPE);
        if !is_grpc_content_type(content_type) {
            let message = format!(
                "content-type {} is not gRPC: send application/grpc",
                quoted(content_type.map_or(&b""[..], |v| v.as_bytes()))
            );
            if method.as_deref() == Some("SignalProcess") {
                audit_refusal(
                    &self.audit,
                    request.extensions(),
                    "UNSUPPORTED_MEDIA_TYPE",
                    &message,
                );
            }
            return Box::pin(std::future::ready(Ok(unsupported_media_type(message))));
        }
        let Some(method) = method else {
            return Box::pin(self.inner.call(request));
        };
        if let Err(status) = check_encoding(request.headers()) {
            if method == "SignalProcess" {
                audit_refusal(
                    &self.audit,
                    request.extensions(),
                    "UNIMPLEMENTED",
                    status.message(),
                );
            }
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
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
                    Err(message) => Err(invalid_argument(message)),
                });
            let bytes = match checked {
                Ok(bytes) => bytes,
                Err(status) => {
                    if method == "SignalProcess" && status.code() == Code::InvalidArgument {
                        audit_refusal(
                            &audit,
                            &parts.extensions,
                            "INVALID_ARGUMENT",
                            status.message(),
                        );
                    }
                    return Ok(status.into_http());
                }
            };
            let body = Body::new(Buffered(Some(bytes)));
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}

/// Whether `value` is gRPC's content type: `application/grpc`, alone or
/// followed by `+subtype` (`+proto`, `+json`) or by `;parameters`. Media
/// types are case-insensitive.
fn is_grpc_content_type(value: Option<&http::HeaderValue>) -> bool {
    let Some(value) = value.map(http::HeaderValue::as_bytes) else {
        return false;
    };
    let Some((base, rest)) = value.split_at_checked(GRPC_CONTENT_TYPE.len()) else {
        return false;
    };
    base.eq_ignore_ascii_case(GRPC_CONTENT_TYPE) && matches!(rest.first(), None | Some(b'+' | b';'))
}

/// HTTP 415 with `message` as plain text: what the gRPC spec asks of a
/// server for a request that is not gRPC.
fn unsupported_media_type(message: String) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(Buffered(Some(Bytes::from(message)))));
    *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// UNIMPLEMENTED for a request compressed with anything but `identity`:
/// the agent accepts no compression, and says so in
/// `grpc-accept-encoding` as gRPC asks.
fn check_encoding(headers: &http::HeaderMap) -> Result<(), Status> {
    match headers.get("grpc-encoding") {
        None => Ok(()),
        Some(value) if value.as_bytes() == b"identity" => Ok(()),
        Some(value) => {
            let mut status = with_error_info(
                Code::Unimplemented,
                "UNIMPLEMENTED",
                format!(
                    "grpc-encoding {} is not supported: the agent accepts uncompressed \
                     messages only (identity)",
                    quoted(value.as_bytes())
                ),
            );
            status.metadata_mut().insert(
                "grpc-accept-encoding",
                MetadataValue::from_static("identity"),
            );
            Err(status)
        }
    }
}

/// INVALID_ARGUMENT with `message`, and ErrorInfo as every status of the
/// agent carries.
fn invalid_argument(message: String) -> Status {
    with_error_info(Code::InvalidArgument, "INVALID_ARGUMENT", message)
}

fn with_error_info(code: Code, reason: &str, message: String) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new()),
    )
}

/// A header value the client sent, quoted, escaped and cut short.
fn quoted(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    format!("\"{}\"", audit::bounded(&text, QUOTED_CHARS))
}

/// Audits a SignalProcess request refused before it could be decoded: who
/// sent it and why (`reason`, `message`); its pid and signal are unknown
/// (0 and "").
fn audit_refusal(audit: &Audit, extensions: &http::Extensions, reason: &str, message: &str) {
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
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
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
                return Err(invalid_argument(format!(
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
/// anything. The request's `grpc-encoding` has been checked: it is
/// `identity` or absent, so a message must not be flagged compressed.
fn check_message(method: &str, bytes: &[u8], max_bytes: usize) -> Result<(), String> {
    let Some((prefix, message)) = bytes.split_first_chunk::<PREFIX>() else {
        return Err(format!(
            "no request message: {} bytes where a gRPC message needs at least {PREFIX}",
            bytes.len()
        ));
    };
    match prefix[0] {
        0 => {}
        1 => {
            return Err(
                "malformed request: the message is flagged compressed (1) but the request \
                 names no grpc-encoding; the agent accepts uncompressed messages (flag 0)"
                    .to_owned(),
            );
        }
        flag => {
            return Err(format!(
                "malformed request: compression flag {flag}; a gRPC message is flagged 0 \
                 (uncompressed) or 1 (compressed)"
            ));
        }
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
        // Unknown methods: tonic's to answer.
        check_message("NoSuchMethod", &framed(&[0xff]), 1024).unwrap();
    }

    #[test]
    fn compression_flags_other_than_0_are_malformed() {
        let err = check_message("GetHost", &[1, 0, 0, 0, 3, 9, 9, 9], 1024).unwrap_err();
        assert!(err.contains("flagged compressed (1)"), "{err}");
        let err = check_message("GetHost", &[7, 0, 0, 0, 0], 1024).unwrap_err();
        assert!(err.contains("compression flag 7"), "{err}");
    }

    #[test]
    fn only_identity_is_an_accepted_encoding() {
        let mut headers = http::HeaderMap::new();
        check_encoding(&headers).unwrap();
        headers.insert("grpc-encoding", http::HeaderValue::from_static("identity"));
        check_encoding(&headers).unwrap();
        headers.insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
        let status = check_encoding(&headers).unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(status.message().contains("\"gzip\""), "{status:?}");
        assert_eq!(
            status.metadata().get("grpc-accept-encoding").unwrap(),
            "identity"
        );
        let long = "x".repeat(10_000);
        headers.insert("grpc-encoding", http::HeaderValue::from_str(&long).unwrap());
        let status = check_encoding(&headers).unwrap_err();
        assert!(status.message().len() < 300, "{}", status.message());
    }

    #[test]
    fn grpc_content_types_and_others() {
        let ct = |v: &'static str| is_grpc_content_type(Some(&http::HeaderValue::from_static(v)));
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "application/grpc;charset=utf-8",
            "Application/GRPC",
        ] {
            assert!(ct(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/json",
            "application/grpcx",
            "application/grp",
            "application/grpc-web",
            "",
        ] {
            assert!(!ct(no), "{no}");
        }
        assert!(!is_grpc_content_type(None));
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
