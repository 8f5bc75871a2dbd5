//! `hostscope sockets`: the hosts' sockets, like `ss -tulpn`.
//!
//! One ListConnections call per host; with `--processes`, one ListProcesses
//! call more for the names of the pids that hold them. `--listening` asks
//! the agent for LISTEN and stateless sockets, then keeps the UDP sockets
//! with no peer and the unix sockets bound to a name, as `ss -l` shows
//! them (psutil gives unix sockets no state, so a unix listener cannot be
//! told from the sockets it accepted).

use std::collections::HashMap;

use anyhow::Context as _;
use hostscope_client::{
    Client, Connections,
    fleet::{Fleet, Summary},
    proto,
};
use proto::EnumName as _;
use serde::Serialize;

use super::{
    args::{Output, SocketsArgs},
    fanout::Io,
    output,
    table::{Align, Table},
};

/// One row: a socket, flat, for every format.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct SockRow {
    /// "tcp", "tcp6", "udp", "udp6" or "unix", as netstat names them.
    pub(crate) proto: String,
    family: String,
    #[serde(rename = "type")]
    kind: String,
    local_ip: String,
    local_port: u32,
    remote_ip: String,
    remote_port: u32,
    path: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fd: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    inode: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
}

impl SockRow {
    fn of(c: proto::Connection, names: &HashMap<u32, String>) -> SockRow {
        let family = proto::SocketFamily::from_wire(c.family);
        let kind = proto::SocketType::from_wire(c.r#type);
        let six = family == Some(proto::SocketFamily::Inet6);
        let proto_name = match (family, kind) {
            (Some(proto::SocketFamily::Unix), _) => "unix",
            (_, Some(proto::SocketType::Stream)) if six => "tcp6",
            (_, Some(proto::SocketType::Stream)) => "tcp",
            (_, Some(proto::SocketType::Dgram)) if six => "udp6",
            (_, Some(proto::SocketType::Dgram)) => "udp",
            _ => "?",
        };
        let short = |name: Option<String>, wire: i32| name.unwrap_or_else(|| wire.to_string());
        let laddr = c.laddr.unwrap_or_default();
        let raddr = c.raddr.unwrap_or_default();
        SockRow {
            proto: proto_name.to_owned(),
            family: short(family.map(|f| f.short_name()), c.family),
            kind: short(kind.map(|k| k.short_name()), c.r#type),
            local_ip: laddr.ip,
            local_port: laddr.port,
            remote_ip: raddr.ip,
            remote_port: raddr.port,
            path: laddr.path,
            status: short(
                proto::ConnectionStatus::from_wire(c.status).map(|s| s.short_name()),
                c.status,
            ),
            name: c.pid.and_then(|pid| names.get(&pid).cloned()),
            pid: c.pid,
            fd: c.fd,
            inode: c.inode,
            uid: c.uid,
        }
    }

    /// A row with every column present, for CSV headers.
    pub(crate) fn template() -> SockRow {
        SockRow {
            pid: Some(0),
            fd: Some(0),
            name: Some(String::new()),
            uid: Some(0),
            ..SockRow::default()
        }
    }

    /// Whether `ss -l` would show it: TCP in LISTEN, UDP with no peer,
    /// unix bound to a name.
    pub(crate) fn listening(&self) -> bool {
        match self.proto.as_str() {
            "unix" => !self.path.is_empty(),
            _ => self.status == "listen" || (self.status == "none" && self.remote_port == 0),
        }
    }

    /// "ip:port", with IPv6 addresses bracketed as ss shows them; the path
    /// ("*" when unnamed) for unix sockets.
    pub(crate) fn local(&self) -> String {
        match self.proto.as_str() {
            "unix" if self.path.is_empty() => "*".to_owned(),
            "unix" => self.path.clone(),
            _ => endpoint(&self.local_ip, self.local_port),
        }
    }

    fn peer(&self) -> String {
        match (self.proto.as_str(), self.remote_port) {
            ("unix", _) | (_, 0) => "*".to_owned(),
            _ => endpoint(&self.remote_ip, self.remote_port),
        }
    }
}

fn endpoint(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The request for `args`.
fn request(args: &SocketsArgs) -> proto::ListConnectionsRequest {
    let mut statuses: Vec<i32> = args.state.iter().map(|s| *s as i32).collect();
    if args.listening {
        statuses.extend([
            proto::ConnectionStatus::Listen as i32,
            proto::ConnectionStatus::None as i32,
        ]);
    }
    proto::ListConnectionsRequest {
        kind: args.kind as i32,
        statuses,
        local_ports: args.port.iter().map(|&p| u32::from(p)).collect(),
        remote_ports: args.rport.iter().map(|&p| u32::from(p)).collect(),
        pids: args.pid.clone(),
        with_pids: args.processes,
    }
}

/// The IP sockets a host listens on, as `sockets --listening -p` shows
/// them, each named by its holder's name.
pub(crate) async fn listening(client: &Client) -> Result<Vec<SockRow>, hostscope_client::Error> {
    let (connections, names) = listening_connections(client).await?;
    Ok(connections
        .into_iter()
        .map(|c| SockRow::of(c, &names))
        .filter(SockRow::listening)
        .collect())
}

/// The IP sockets that may be listening (TCP in LISTEN, UDP with no
/// state), as the agent gives them, and the names of their holders.
pub(crate) async fn listening_connections(
    client: &Client,
) -> Result<(Vec<proto::Connection>, HashMap<u32, String>), hostscope_client::Error> {
    let request = proto::ListConnectionsRequest {
        kind: proto::ConnectionKind::Inet as i32,
        statuses: vec![
            proto::ConnectionStatus::Listen as i32,
            proto::ConnectionStatus::None as i32,
        ],
        with_pids: true,
        ..Default::default()
    };
    let all = client.connections(request).await?.collect_all().await?;
    let mut pids: Vec<u32> = all.connections.iter().filter_map(|c| c.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let names = client.process_names(pids).await?;
    Ok((all.connections, names))
}

/// A host's answer: its sockets, and the names of their holders.
struct Answer {
    connections: Connections,
    names: HashMap<u32, String>,
}

pub async fn sockets(
    fleet: &Fleet,
    args: SocketsArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let request = request(&args);
    let with_names = args.processes;
    let call = move |client: Client| {
        let request = request.clone();
        async move {
            let connections = client.connections(request).await?.collect_all().await?;
            let mut pids: Vec<u32> = connections
                .connections
                .iter()
                .filter_map(|c| c.pid)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let names = match with_names {
                true => client.process_names(pids).await?,
                false => HashMap::new(),
            };
            Ok(Answer { connections, names })
        }
    };
    let template = output::record("", &SockRow::template())?;
    let mut printer = io.printer(format, fleet.len(), &template);
    let mut rows: Vec<(String, SockRow)> = Vec::new();
    let mut unread: Vec<(String, usize)> = Vec::new();
    let listening = args.listening;
    let summary = io
        .fan_out(fleet, call, |host, answer: Answer, out| {
            let Answer { connections, names } = answer;
            if !connections.process_errors.is_empty() {
                unread.push((host.name.clone(), connections.process_errors.len()));
            }
            let mine = connections
                .connections
                .into_iter()
                .map(|c| SockRow::of(c, &names))
                .filter(|r| !listening || r.listening());
            if !printer.is_table() {
                let records: Vec<_> = mine.map(|r| output::record(&host.name, &r)).collect();
                return Ok(printer.records(out, records)?);
            }
            rows.extend(mine.map(|r| (host.name.clone(), r)));
            Ok(())
        })
        .await?;
    if printer.is_table() {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        table(&rows, fleet.len() > 1, args.processes).write_with(
            io.out,
            io.width,
            !io.no_headers,
        )?;
    }
    printer.finish(io.out)?;
    for (host, n) in unread {
        writeln!(
            io.err,
            "{host}: the descriptors of {n} processes could not be read (run the agent as root \
             to see them): their sockets show no process"
        )
        .context("writing to stderr")?;
    }
    Ok(summary)
}

/// `ss -tulpn`'s table, with the host first for a fleet.
/// One process's sockets, as `proc` shows them: the `sockets` table
/// without the process.
pub(crate) fn process_table(connections: Vec<proto::Connection>) -> Table {
    let none = HashMap::new();
    let rows: Vec<(String, SockRow)> = connections
        .into_iter()
        .map(|c| (String::new(), SockRow::of(c, &none)))
        .collect();
    table(&rows, false, false)
}

fn table(rows: &[(String, SockRow)], with_host: bool, processes: bool) -> Table {
    let mut headers = vec![
        ("Proto", Align::Left),
        ("State", Align::Left),
        ("Local Address:Port", Align::Left),
        ("Peer Address:Port", Align::Left),
    ];
    if processes {
        headers.push(("PID/Program", Align::Left));
    }
    if with_host {
        headers.insert(0, ("HOST", Align::Left));
    }
    let mut table = Table::new(headers.into_iter().map(|(n, a)| (n.to_owned(), a)));
    for (host, r) in rows {
        let mut row = vec![
            r.proto.clone(),
            r.status.to_uppercase(),
            r.local(),
            r.peer(),
        ];
        if processes {
            row.push(match (r.pid, &r.name) {
                (Some(pid), Some(name)) => format!("{pid}/{name}"),
                (Some(pid), None) => pid.to_string(),
                (None, _) => "-".to_owned(),
            });
        }
        if with_host {
            row.insert(0, host.clone());
        }
        table.push(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(family: proto::SocketFamily, kind: proto::SocketType) -> proto::Connection {
        proto::Connection {
            family: family as i32,
            r#type: kind as i32,
            status: proto::ConnectionStatus::None as i32,
            ..Default::default()
        }
    }

    #[test]
    fn listening_is_what_ss_l_shows() {
        let names = HashMap::new();
        let mut udp = conn(proto::SocketFamily::Inet, proto::SocketType::Dgram);
        udp.laddr = Some(proto::SocketAddress {
            ip: "127.0.0.1".into(),
            port: 53,
            path: String::new(),
        });
        assert!(SockRow::of(udp.clone(), &names).listening());
        udp.raddr = Some(proto::SocketAddress {
            ip: "127.0.0.1".into(),
            port: 9,
            path: String::new(),
        });
        assert!(!SockRow::of(udp, &names).listening());
        let mut unix = conn(proto::SocketFamily::Unix, proto::SocketType::Stream);
        assert!(!SockRow::of(unix.clone(), &names).listening());
        unix.laddr = Some(proto::SocketAddress {
            path: "/run/x.sock".into(),
            ..Default::default()
        });
        let row = SockRow::of(unix, &names);
        assert!(row.listening());
        assert_eq!(
            (row.proto.as_str(), row.local()),
            ("unix", "/run/x.sock".into())
        );
        let mut tcp6 = conn(proto::SocketFamily::Inet6, proto::SocketType::Stream);
        tcp6.status = proto::ConnectionStatus::Established as i32;
        tcp6.laddr = Some(proto::SocketAddress {
            ip: "::1".into(),
            port: 80,
            path: String::new(),
        });
        let row = SockRow::of(tcp6, &names);
        assert!(!row.listening());
        assert_eq!(
            (row.proto.as_str(), row.local(), row.peer()),
            ("tcp6", "[::1]:80".into(), "*".into())
        );
    }
}
