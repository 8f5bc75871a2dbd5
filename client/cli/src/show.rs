//! `hostscope host`, `proc` and `nics`: one record, or one block per
//! interface, as `field: value` lines.

use std::io::{self, Write};

use super::{
    args::{Output, ProcArgs},
    fanout::Io,
    fields::{Column, FieldList},
    files, format, output,
    render::{self, Style},
    sockets,
};
use hostscope_client::{
    Client, Connections, Error, Process,
    fleet::{Fleet, Summary},
    proto::{self, EnumName},
};

/// Shows each host and its agent.
pub async fn host(fleet: &Fleet, format: Output, io: &mut Io<'_>) -> anyhow::Result<Summary> {
    let call = |client: Client| async move { client.host().await };
    let template = output::record("", &proto::Host::default())?;
    let mut printer = io
        .printer(format, fleet.len(), &template)
        .one_record_per_host();
    let summary = io
        .fan_out(fleet, call, |host, h: proto::Host, out| {
            if printer.is_table() {
                printer.table(out, host, |out| write_host(out, &h))?;
            } else {
                printer.records(out, [output::record(&host.name, &h)])?;
            }
            Ok(())
        })
        .await?;
    printer.finish(io.out)?;
    Ok(summary)
}

/// The host as `key: value` lines.
fn write_host(out: &mut dyn Write, h: &proto::Host) -> io::Result<()> {
    let names = |values: Vec<String>| values.join(", ");
    let process_fields = h
        .process_fields
        .iter()
        .filter_map(|v| proto::ProcessField::from_wire(*v).map(|f| f.short_name()))
        .collect();
    let nic_fields = h
        .net_interface_fields
        .iter()
        .filter_map(|v| proto::NetInterfaceField::from_wire(*v).map(|f| f.short_name()))
        .collect();
    let system_fields = h
        .system_fields
        .iter()
        .filter_map(|v| proto::SystemField::from_wire(*v).map(|f| f.short_name()))
        .collect();
    let uptime = format::duration(format::now() - h.boot_time);
    let lines = [
        ("hostname", h.hostname.clone()),
        ("os", h.os.clone()),
        ("os_release", h.os_release.clone()),
        ("kernel", h.kernel.clone()),
        ("arch", h.arch.clone()),
        (
            "boot_time",
            format!("{} (up {uptime})", format::datetime(h.boot_time)),
        ),
        ("cpu_count", h.cpu_count.to_string()),
        ("memory_total", format::bytes(h.memory_total)),
        ("agent_version", h.agent_version.clone()),
        ("backend", h.backend.clone()),
        ("watch_mode", h.watch_mode.clone()),
        ("process_fields", names(process_fields)),
        ("net_interface_fields", names(nic_fields)),
        ("system_fields", names(system_fields)),
        (
            "withheld",
            if h.withheld.is_empty() {
                "none".to_owned()
            } else {
                names(h.withheld.clone())
            },
        ),
    ];
    for (key, value) in lines {
        writeln!(out, "{key}: {value}")?;
    }
    Ok(())
}

/// Shows one process on each host, a line per field; fields the agent
/// could not read say why. Without `--fields`, the table also shows what
/// costs more calls: uss, pss and swap, the open descriptors and the
/// sockets (each says why where the agent would not tell).
pub async fn process(
    fleet: &Fleet,
    args: ProcArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let extras = args.fields.is_none() && format == Output::Table;
    let mut list = args.fields.unwrap_or_else(FieldList::all);
    if args.ungrouped_maps {
        list = list.with(proto::ProcessField::MemoryMaps);
    }
    let (pid, request, shown) = (args.pid, list.request(), list.fields());
    let ungrouped_maps = args.ungrouped_maps;
    let call = move |client: Client| {
        let request = proto::GetProcessRequest {
            pid,
            fields: request.iter().map(|f| *f as i32).collect(),
            memory_maps_ungrouped: ungrouped_maps,
            ..Default::default()
        };
        async move {
            let p = client.get_process(request).await?;
            let extras = match extras {
                true => Some(Extras::ask(&client, pid).await),
                false => None,
            };
            Ok((p, extras))
        }
    };
    let template = output::process_template(&list.with_pid())?;
    let mut printer = io
        .printer(format, fleet.len(), &template)
        .one_record_per_host();
    let summary = io
        .fan_out(
            fleet,
            call,
            |host, (p, extras): (Process, Option<Extras>), out| {
                if printer.is_table() {
                    printer.table(out, host, |out| {
                        write_process(out, &p, &list)?;
                        extras.map_or(Ok(()), |e| e.write(out))
                    })?;
                } else {
                    printer.records(out, [output::process_record(&host.name, &p, &shown)])?;
                }
                Ok(())
            },
        )
        .await?;
    printer.finish(io.out)?;
    Ok(summary)
}

/// What `proc` shows of a process besides its fields.
struct Extras {
    /// The process with memory_full_info alone.
    full: Result<Process, Error>,
    /// Every descriptor it holds, of every kind.
    files: Result<proto::OpenFileBatch, Error>,
    /// The sockets it holds.
    connections: Result<Connections, Error>,
}

impl Extras {
    async fn ask(client: &Client, pid: u32) -> Extras {
        let full = client.process(pid, &[proto::ProcessField::MemoryFullInfo]);
        let files = client.open_files(proto::ListOpenFilesRequest {
            pids: vec![pid],
            all_kinds: true,
            ..Default::default()
        });
        let connections = async {
            let request = proto::ListConnectionsRequest {
                kind: proto::ConnectionKind::All as i32,
                pids: vec![pid],
                with_pids: true,
                ..Default::default()
            };
            client.connections(request).await?.collect_all().await
        };
        let (full, files, connections) = tokio::join!(full, files, connections);
        Extras {
            full,
            files,
            connections,
        }
    }

    /// `memory_full_info: ...`, then `open_files:` and `connections:`,
    /// each a table indented under its name, or the reason there is none.
    fn write(self, out: &mut dyn Write) -> io::Result<()> {
        let field = Column::Field(proto::ProcessField::MemoryFullInfo);
        let full = match &self.full {
            Ok(p) => render::column(p, field, Style::Line),
            Err(e) => format!("<{}>", e.label()),
        };
        writeln!(out, "{}: {full}", field.name())?;
        let files = self.files.map(|batch| {
            let errors = batch.process_errors.first().map(|e| e.kind);
            (files::process_table(batch.files), errors)
        });
        let connections = self.connections.map(|all| {
            let errors = all.process_errors.first().map(|e| e.kind);
            (sockets::process_table(all.connections), errors)
        });
        for (name, answer) in [("open_files", files), ("connections", connections)] {
            match answer {
                Err(e) => writeln!(out, "{name}: <{}>", e.label())?,
                Ok((_, Some(kind))) => {
                    let kind = proto::ErrorKind::from_wire(kind)
                        .map_or(kind.to_string(), |k| k.short_name());
                    writeln!(out, "{name}: <{kind}>")?;
                }
                Ok((table, None)) if table.is_empty() => writeln!(out, "{name}: none")?,
                Ok((table, None)) => {
                    writeln!(out, "{name}:")?;
                    let mut text = Vec::new();
                    table.write_with(&mut text, None, true)?;
                    for line in String::from_utf8_lossy(&text).lines() {
                        writeln!(out, "  {line}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The process as `field: value` lines.
fn write_process(out: &mut dyn Write, p: &Process, list: &FieldList) -> io::Result<()> {
    for column in list.with_pid() {
        // An agent that does not serve environments leaves them out of
        // "every field"; an empty line would read as an empty environment.
        let environ = proto::ProcessField::Environ;
        let environ_absent = column == Column::Field(environ)
            && p.proto().environ.is_empty()
            && p.field_error(environ).is_none();
        if environ_absent {
            continue;
        }
        // A value of several lines starts on the next one.
        let value = render::column(p, column, Style::Line);
        let gap = if value.starts_with('\n') { "" } else { " " };
        writeln!(out, "{}:{gap}{value}", column.name())?;
    }
    Ok(())
}

/// Shows every network interface of each host, a block per interface.
pub async fn nics(fleet: &Fleet, format: Output, io: &mut Io<'_>) -> anyhow::Result<Summary> {
    let call = |client: Client| async move { client.net_interfaces().await };
    let template = output::record("", &output::interface_template())?;
    let mut printer = io.printer(format, fleet.len(), &template);
    let summary = io
        .fan_out(
            fleet,
            call,
            |host, interfaces: Vec<proto::NetInterface>, out| {
                if printer.is_table() {
                    printer.table(out, host, |out| write_nics(out, &interfaces))?;
                } else {
                    let records = interfaces.iter().map(|nic| output::record(&host.name, nic));
                    printer.records(out, records)?;
                }
                Ok(())
            },
        )
        .await?;
    printer.finish(io.out)?;
    Ok(summary)
}

/// Interfaces as blocks separated by blank lines.
fn write_nics(out: &mut dyn Write, interfaces: &[proto::NetInterface]) -> io::Result<()> {
    for (i, nic) in interfaces.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_nic(out, nic)?;
    }
    Ok(())
}

/// One interface:
///
/// ```text
/// eth0: up, 1000 Mbps, full duplex, mtu 1500
///   flags: up,broadcast,running,multicast
///   inet  192.0.2.5 netmask 255.255.255.0 broadcast 192.0.2.255
///   rx: 1.2G, 934211 packets, 0 errors, 0 dropped
/// ```
fn write_nic(out: &mut dyn Write, nic: &proto::NetInterface) -> io::Result<()> {
    match &nic.stats {
        Some(s) => {
            let state = if s.isup { "up" } else { "down" };
            let speed = match s.speed {
                None => "speed unknown".to_owned(),
                Some(mbps) => format!("{mbps} Mbps"),
            };
            let duplex =
                proto::Duplex::from_wire(s.duplex).map_or("unknown".to_owned(), |d| d.short_name());
            writeln!(
                out,
                "{}: {state}, {speed}, {duplex} duplex, mtu {}",
                nic.name, s.mtu
            )?;
            if !s.flags.is_empty() {
                writeln!(out, "  flags: {}", s.flags)?;
            }
        }
        None => writeln!(out, "{}:", nic.name)?,
    }
    for a in &nic.addresses {
        let family =
            proto::AddressFamily::from_wire(a.family).map_or("?".to_owned(), |f| f.short_name());
        let mut line = format!("  {family:<5} {}", a.address);
        for (label, value) in [
            ("netmask", &a.netmask),
            ("broadcast", &a.broadcast),
            ("ptp", &a.ptp),
        ] {
            if let Some(value) = value {
                line.push_str(&format!(" {label} {value}"));
            }
        }
        writeln!(out, "{line}")?;
    }
    if let Some(io) = &nic.io_counters {
        let b = format::bytes;
        writeln!(
            out,
            "  rx: {}, {} packets, {} errors, {} dropped",
            b(io.bytes_recv),
            io.packets_recv,
            io.errin,
            io.dropin
        )?;
        writeln!(
            out,
            "  tx: {}, {} packets, {} errors, {} dropped",
            b(io.bytes_sent),
            io.packets_sent,
            io.errout,
            io.dropout
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_block() {
        let nic = proto::NetInterface {
            name: "lo".to_owned(),
            addresses: vec![proto::NetAddress {
                family: proto::AddressFamily::Inet as i32,
                address: "127.0.0.1".to_owned(),
                netmask: Some("255.0.0.0".to_owned()),
                ..Default::default()
            }],
            stats: Some(proto::NetIfStats {
                isup: true,
                duplex: proto::Duplex::Unknown as i32,
                speed: None,
                mtu: 65536,
                flags: "up,loopback,running".to_owned(),
            }),
            io_counters: Some(proto::NetIoCounters {
                bytes_recv: 2048,
                packets_recv: 4,
                ..Default::default()
            }),
        };
        let mut out = Vec::new();
        write_nic(&mut out, &nic).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "lo: up, speed unknown, unknown duplex, mtu 65536\n  flags: up,loopback,running\n  \
             inet  127.0.0.1 netmask 255.0.0.0\n  rx: 2.0K, 4 packets, 0 errors, 0 dropped\n  \
             tx: 0B, 0 packets, 0 errors, 0 dropped\n"
        );
    }
}
