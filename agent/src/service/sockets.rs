//! ListConnections: the host's sockets, as psutil's `net_connections`.
//!
//! The request is checked and turned into a [`SocketQuery`]; the backend
//! lists the sockets (and reads descriptor tables when pids are asked for)
//! in one pass, under the first batch's scan permit; the listing then goes
//! out in batches bounded in count and in bytes, as every streamed listing
//! does (see [`super::stream`]).

use std::{net::IpAddr, vec};

use hostscope_proto as pb;
use prost::Message;

use super::{ENTRY_OVERHEAD, ServiceError, convert, stream::Source};
use crate::backend::{
    Backend,
    socket::{
        ConnStatus, Endpoint, Family, SockType, Socket, SocketKind, SocketListing, SocketQuery,
    },
};

/// A batch holds at most this many sockets (and process errors).
const BATCH_CONNECTIONS: usize = 4096;

/// One ListConnections listing: the query until the first batch lists the
/// sockets, then what is left to send.
pub(super) struct Connections {
    query: Option<SocketQuery>,
    errors: vec::IntoIter<(u32, crate::backend::ErrorKind)>,
    sockets: vec::IntoIter<Socket>,
    /// A socket taken that did not fit the batch before.
    pending: Option<pb::Connection>,
}

impl Connections {
    /// The listing a request asks for; INVALID_ARGUMENT names the field at
    /// fault.
    pub(super) fn new(request: pb::ListConnectionsRequest) -> Result<Self, ServiceError> {
        Ok(Connections {
            query: Some(query_from_pb(request)?),
            errors: Vec::new().into_iter(),
            sockets: Vec::new().into_iter(),
            pending: None,
        })
    }
}

impl Source for Connections {
    type Batch = pb::ConnectionBatch;

    fn next(
        &mut self,
        backend: &dyn Backend,
        room: usize,
        _gone: &dyn Fn() -> bool,
    ) -> Result<(pb::ConnectionBatch, bool), ServiceError> {
        if let Some(query) = self.query.take() {
            let SocketListing {
                sockets,
                process_errors,
            } = backend.connections(&query)?;
            self.errors = process_errors.into_iter();
            self.sockets = sockets.into_iter();
        }
        let mut batch = pb::ConnectionBatch::default();
        let mut bytes = 0;
        // Process errors first: a few bytes each, they always fit.
        for (pid, kind) in self.errors.by_ref() {
            let error = pb::ProcessError {
                pid,
                kind: convert::error_kind_to_pb(kind) as i32,
            };
            bytes += error.encoded_len() + ENTRY_OVERHEAD;
            batch.process_errors.push(error);
        }
        while batch.connections.len() < BATCH_CONNECTIONS {
            let next = self.pending.take();
            let Some(connection) = next.or_else(|| self.sockets.next().map(connection_to_pb))
            else {
                break;
            };
            let len = connection.encoded_len() + ENTRY_OVERHEAD;
            // An entry is a few hundred bytes at most: an empty batch
            // always has room for one.
            if !batch.connections.is_empty() && bytes + len > room {
                self.pending = Some(connection);
                break;
            }
            bytes += len;
            batch.connections.push(connection);
        }
        let ended = self.pending.is_none() && self.sockets.len() == 0;
        Ok((batch, ended))
    }
}

// === Conversion ===

/// The backend query for a request; INVALID_ARGUMENT names the field at
/// fault.
pub fn query_from_pb(request: pb::ListConnectionsRequest) -> Result<SocketQuery, ServiceError> {
    use pb::ConnectionKind as K;
    let kind = match K::try_from(request.kind) {
        Ok(K::Unspecified | K::Inet) => SocketKind::Inet,
        Ok(K::Inet4) => SocketKind::Inet4,
        Ok(K::Inet6) => SocketKind::Inet6,
        Ok(K::Tcp) => SocketKind::Tcp,
        Ok(K::Tcp4) => SocketKind::Tcp4,
        Ok(K::Tcp6) => SocketKind::Tcp6,
        Ok(K::Udp) => SocketKind::Udp,
        Ok(K::Udp4) => SocketKind::Udp4,
        Ok(K::Udp6) => SocketKind::Udp6,
        Ok(K::Unix) => SocketKind::Unix,
        Ok(K::All) => SocketKind::All,
        Err(_) => {
            return Err(ServiceError::invalid(
                "kind",
                format!("kind {} is no ConnectionKind", request.kind),
            ));
        }
    };
    let mut statuses = request
        .statuses
        .iter()
        .map(|&s| status_from_pb(s))
        .collect::<Result<Vec<_>, _>>()?;
    statuses.sort_unstable();
    statuses.dedup();
    let ports = |field: &'static str, ports: &[u32]| {
        ports
            .iter()
            .map(|&p| {
                u16::try_from(p).map_err(|_| {
                    ServiceError::invalid(field, format!("{field} holds port {p}, beyond 65535"))
                })
            })
            .collect::<Result<Vec<u16>, _>>()
    };
    let mut pids = request
        .pids
        .iter()
        .map(|&pid| convert::pid_from_pb("pids", pid))
        .collect::<Result<Vec<_>, _>>()?;
    pids.sort_unstable();
    pids.dedup();
    Ok(SocketQuery {
        kind,
        statuses,
        local_ports: ports("local_ports", &request.local_ports)?,
        remote_ports: ports("remote_ports", &request.remote_ports)?,
        pids,
        with_pids: request.with_pids,
    })
}

fn status_from_pb(status: i32) -> Result<ConnStatus, ServiceError> {
    use pb::ConnectionStatus as S;
    Ok(match S::try_from(status) {
        Ok(S::Established) => ConnStatus::Established,
        Ok(S::SynSent) => ConnStatus::SynSent,
        Ok(S::SynRecv) => ConnStatus::SynRecv,
        Ok(S::FinWait1) => ConnStatus::FinWait1,
        Ok(S::FinWait2) => ConnStatus::FinWait2,
        Ok(S::TimeWait) => ConnStatus::TimeWait,
        Ok(S::Close) => ConnStatus::Close,
        Ok(S::CloseWait) => ConnStatus::CloseWait,
        Ok(S::LastAck) => ConnStatus::LastAck,
        Ok(S::Listen) => ConnStatus::Listen,
        Ok(S::Closing) => ConnStatus::Closing,
        Ok(S::None) => ConnStatus::None,
        Ok(S::Unspecified) | Err(_) => {
            return Err(ServiceError::invalid(
                "statuses",
                format!("statuses holds {status}, which is no ConnectionStatus"),
            ));
        }
    })
}

fn status_to_pb(status: ConnStatus) -> pb::ConnectionStatus {
    use pb::ConnectionStatus as S;
    match status {
        ConnStatus::Established => S::Established,
        ConnStatus::SynSent => S::SynSent,
        ConnStatus::SynRecv => S::SynRecv,
        ConnStatus::FinWait1 => S::FinWait1,
        ConnStatus::FinWait2 => S::FinWait2,
        ConnStatus::TimeWait => S::TimeWait,
        ConnStatus::Close => S::Close,
        ConnStatus::CloseWait => S::CloseWait,
        ConnStatus::LastAck => S::LastAck,
        ConnStatus::Listen => S::Listen,
        ConnStatus::Closing => S::Closing,
        ConnStatus::None => S::None,
    }
}

fn address_to_pb(end: Endpoint) -> pb::SocketAddress {
    pb::SocketAddress {
        // IPv4-mapped IPv6 addresses print as "::ffff:127.0.0.1", as
        // inet_ntop (and so psutil) prints them.
        ip: end.ip.as_ref().map(IpAddr::to_string).unwrap_or_default(),
        port: u32::from(end.port),
        path: end.path,
    }
}

/// The message for one socket.
pub fn connection_to_pb(s: Socket) -> pb::Connection {
    pb::Connection {
        fd: s.fd,
        family: match s.family {
            Family::Inet => pb::SocketFamily::Inet,
            Family::Inet6 => pb::SocketFamily::Inet6,
            Family::Unix => pb::SocketFamily::Unix,
        } as i32,
        r#type: match s.kind {
            SockType::Stream => pb::SocketType::Stream,
            SockType::Dgram => pb::SocketType::Dgram,
            SockType::Seqpacket => pb::SocketType::Seqpacket,
            SockType::Raw => pb::SocketType::Raw,
        } as i32,
        laddr: Some(address_to_pb(s.laddr)),
        raddr: s.raddr.map(address_to_pb),
        status: status_to_pb(s.status) as i32,
        pid: s.pid,
        inode: s.inode,
        uid: s.uid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_field(request: pb::ListConnectionsRequest) -> &'static str {
        match query_from_pb(request) {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_large_table_goes_out_in_batches_without_loss_or_repeat() {
        use crate::service::stream::testing::{Fake, batches};
        let backend = Fake { per_process: 500 };
        let every = Connections::new(pb::ListConnectionsRequest::default()).unwrap();
        let all = batches(every, &backend, 4096);
        assert!(all.len() > 5, "{} batches", all.len());
        let sockets: Vec<(Option<u32>, Option<u32>)> = all
            .iter()
            .flat_map(|b| b.connections.iter().map(|c| (c.pid, c.fd)))
            .collect();
        let want: Vec<(Option<u32>, Option<u32>)> = [1, 3]
            .into_iter()
            .flat_map(|pid| (0..500).map(move |fd| (Some(pid), Some(fd))))
            .collect();
        assert_eq!(sockets, want);
        let errors: Vec<_> = all.iter().flat_map(|b| b.process_errors.clone()).collect();
        assert_eq!(
            errors,
            [pb::ProcessError {
                pid: 2,
                kind: pb::ErrorKind::AccessDenied as i32,
            }]
        );
    }

    #[test]
    fn unknown_enums_and_big_ports_are_refused_by_field() {
        let req = pb::ListConnectionsRequest::default;
        assert_eq!(
            invalid_field(pb::ListConnectionsRequest { kind: 99, ..req() }),
            "kind"
        );
        for bad in [0, 42] {
            let r = pb::ListConnectionsRequest {
                statuses: vec![bad],
                ..req()
            };
            assert_eq!(invalid_field(r), "statuses");
        }
        let r = pb::ListConnectionsRequest {
            local_ports: vec![80, 65536],
            ..req()
        };
        assert_eq!(invalid_field(r), "local_ports");
        let r = pb::ListConnectionsRequest {
            remote_ports: vec![70000],
            ..req()
        };
        assert_eq!(invalid_field(r), "remote_ports");
        let r = pb::ListConnectionsRequest {
            pids: vec![0],
            ..req()
        };
        assert_eq!(invalid_field(r), "pids");
    }

    #[test]
    fn a_request_becomes_its_query() {
        let q = query_from_pb(pb::ListConnectionsRequest {
            kind: pb::ConnectionKind::Tcp6 as i32,
            statuses: vec![
                pb::ConnectionStatus::Listen as i32,
                pb::ConnectionStatus::Listen as i32,
            ],
            local_ports: vec![65535],
            remote_ports: vec![],
            pids: vec![7, 3, 7],
            with_pids: false,
        })
        .unwrap();
        assert_eq!(q.kind, SocketKind::Tcp6);
        assert_eq!(q.statuses, [ConnStatus::Listen]);
        assert_eq!(q.local_ports, [65535]);
        assert_eq!(q.pids, [3, 7]);
        assert!(q.wants_pids());
        let default = query_from_pb(pb::ListConnectionsRequest::default()).unwrap();
        assert_eq!(default, SocketQuery::default());
    }

    #[test]
    fn v4_mapped_addresses_print_as_psutil_prints_them() {
        let ip: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let pb = address_to_pb(Endpoint::ip(ip, 80));
        assert_eq!(pb.ip, "::ffff:127.0.0.1");
        assert_eq!(pb.port, 80);
    }
}
