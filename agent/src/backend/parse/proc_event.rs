//! Datagrams of the kernel's process connector (netlink
//! `NETLINK_CONNECTOR`, connector `CN_IDX_PROC`), which reports every
//! fork, exec and exit on the host, and the request that subscribes to it.
//!
//! A datagram holds one or more netlink messages (`struct nlmsghdr`), each
//! carrying a connector message (`struct cn_msg`) whose data is one
//! `struct proc_event` (include/uapi/linux/{netlink,connector,cn_proc}.h).
//! Netlink speaks the host's byte order, so every field is read
//! native-endian; fixtures built with `to_ne_bytes` hold on any machine.

use super::ParseError;
use crate::backend::RawEvent;

/// The connector index of process events (`CN_IDX_PROC`), which is also
/// the netlink multicast group (a bit mask) they are sent to.
pub const CN_IDX_PROC: u32 = 1;
/// The connector value of process events (`CN_VAL_PROC`).
pub const CN_VAL_PROC: u32 = 1;

/// `sizeof(struct nlmsghdr)`: length, type, flags, sequence, port.
const NLMSG_HDRLEN: usize = 16;
/// Netlink messages in one datagram start at multiples of this.
const NLMSG_ALIGNTO: usize = 4;
/// Netlink control messages, which carry no connector message.
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
/// The type the connector gives its messages.
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// `sizeof(struct cn_msg)`: id (idx, val), seq, ack, len, flags.
const CN_MSG_LEN: usize = 20;
/// `struct proc_event` up to its union: what, cpu, timestamp_ns.
const PROC_EVENT_HDRLEN: usize = 16;

/// `enum what` values of `struct proc_event` that the agent reads. The
/// others (uid, gid, sid, ptrace, comm, coredump changes) are ignored.
const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// What a subscriber asks of the process connector
/// (`enum proc_cn_mcast_op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McastOp {
    /// `PROC_CN_MCAST_LISTEN`: start sending events.
    Listen = 1,
    /// `PROC_CN_MCAST_IGNORE`: this subscriber no longer listens.
    Ignore = 2,
}

/// The kernel's answer to a [`McastOp`] request (`PROC_EVENT_NONE`),
/// multicast to every subscriber. `ack` is the request's plus one, which
/// is how a subscriber recognises its own; `seq` is the kernel's running
/// count of messages (Linux 6.x; older kernels echoed the request's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub seq: u32,
    pub ack: u32,
    /// 0, or the errno of the refusal (EPERM without CAP_NET_ADMIN).
    pub err: u32,
}

/// The datagram that sends `op` to the process connector; the kernel's
/// [`Ack`] answers with `ack` plus one.
pub fn mcast_message(op: McastOp, seq: u32, ack: u32) -> Vec<u8> {
    let payload = op as u32;
    let cn_len = std::mem::size_of_val(&payload);
    let total = NLMSG_HDRLEN + CN_MSG_LEN + cn_len;
    let mut msg = Vec::with_capacity(total);
    // struct nlmsghdr: the port is the kernel's to fill in.
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // struct cn_msg.
    msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&ack.to_ne_bytes());
    msg.extend_from_slice(&(cn_len as u16).to_ne_bytes());
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&payload.to_ne_bytes());
    msg
}

/// Parses one received datagram, appending its process events to `events`
/// and returning the acknowledgements it held (usually none).
///
/// `monotonic_to_epoch` is what to add to the kernel's timestamps
/// (nanoseconds of `CLOCK_MONOTONIC`) to get seconds since the Unix epoch.
///
/// Only whole processes are reported: the fork of a thread and the exit of
/// a thread other than the thread-group leader are skipped. Messages of
/// other connectors, other event kinds and netlink control messages are
/// skipped too. On a malformed message the error says where it was; the
/// events of the messages before it stay in `events`.
pub fn parse_datagram(
    bytes: &[u8],
    monotonic_to_epoch: f64,
    events: &mut Vec<RawEvent>,
) -> Result<Vec<Ack>, ParseError> {
    let mut acks = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let len = u32_at(rest, 0).map(|len| len as usize);
        let Some(len) = len.filter(|len| (NLMSG_HDRLEN..=rest.len()).contains(len)) else {
            return Err(malformed(
                offset,
                format!(
                    "netlink message length {len:?} does not fit the {} bytes left",
                    rest.len()
                ),
            ));
        };
        let kind = u16_at(rest, 4).unwrap_or(NLMSG_NOOP);
        let payload = &rest[NLMSG_HDRLEN..len];
        if !matches!(kind, NLMSG_NOOP | NLMSG_ERROR | NLMSG_OVERRUN) {
            let at = offset + NLMSG_HDRLEN;
            if let Some(ack) = parse_cn_msg(payload, at, monotonic_to_epoch, events)? {
                acks.push(ack);
            }
        }
        offset += len.next_multiple_of(NLMSG_ALIGNTO);
    }
    Ok(acks)
}

/// Parses one connector message that starts at byte `at` of the datagram.
fn parse_cn_msg(
    msg: &[u8],
    at: usize,
    monotonic_to_epoch: f64,
    events: &mut Vec<RawEvent>,
) -> Result<Option<Ack>, ParseError> {
    let header = (|| {
        let id = (u32_at(msg, 0)?, u32_at(msg, 4)?);
        Some((id, u32_at(msg, 8)?, u32_at(msg, 12)?, u16_at(msg, 16)?))
    })();
    let Some((id, seq, ack, len)) = header else {
        return Err(malformed(
            at,
            format!("connector header cut short at {} bytes", msg.len()),
        ));
    };
    if id != (CN_IDX_PROC, CN_VAL_PROC) {
        return Ok(None);
    }
    let Some(data) = msg.get(CN_MSG_LEN..CN_MSG_LEN + usize::from(len)) else {
        return Err(malformed(
            at,
            format!(
                "connector data of {len} bytes runs past the message's {}",
                msg.len()
            ),
        ));
    };
    let at = at + CN_MSG_LEN;
    let (Some(what), Some(timestamp_ns)) = (u32_at(data, 0), u64_at(data, 8)) else {
        return Err(malformed(
            at,
            format!("process event cut short at {} bytes", data.len()),
        ));
    };
    let time = monotonic_to_epoch + timestamp_ns as f64 / 1e9;
    // The union after the header; each kind reads only the fields it
    // needs, so older kernels' shorter records still parse.
    let union = &data[PROC_EVENT_HDRLEN..];
    let field = |index: usize, name: &str| {
        u32_at(union, index * 4).ok_or_else(|| {
            malformed(
                at,
                format!(
                    "process event {what:#x} has no {name} in its {} bytes",
                    data.len()
                ),
            )
        })
    };
    match what {
        PROC_EVENT_NONE => {
            return Ok(Some(Ack {
                seq,
                ack,
                err: field(0, "err")?,
            }));
        }
        PROC_EVENT_FORK => {
            // parent_pid, parent_tgid, child_pid, child_tgid.
            let parent_tgid = field(1, "parent_tgid")?;
            let (child_pid, child_tgid) = (field(2, "child_pid")?, field(3, "child_tgid")?);
            if child_pid == child_tgid {
                events.push(RawEvent::Fork {
                    pid: child_tgid,
                    ppid: parent_tgid,
                    time,
                });
            }
        }
        PROC_EVENT_EXEC => {
            // process_pid, process_tgid: after exec the thread that called
            // it is the leader, so either names the process.
            events.push(RawEvent::Exec {
                pid: field(1, "process_tgid")?,
                time,
            });
        }
        PROC_EVENT_EXIT => {
            // process_pid, process_tgid, exit_code, exit_signal, ...
            let (pid, tgid) = (field(0, "process_pid")?, field(1, "process_tgid")?);
            let status = field(2, "exit_code")?;
            if pid == tgid {
                let (exit_code, signal) = decode_wait_status(status);
                events.push(RawEvent::Exit {
                    pid,
                    exit_code,
                    signal,
                    time,
                });
            }
        }
        _ => {}
    }
    Ok(None)
}

/// Splits a wait status (what wait(2) reports, and what the kernel's exit
/// event carries as `exit_code`) into the code passed to exit(2) and the
/// signal that ended the process; at most one is `Some`, and neither for a
/// status that is not an exit (stopped).
pub fn decode_wait_status(status: u32) -> (Option<i32>, Option<i32>) {
    // WIFEXITED: no signal bits; WIFSIGNALED: signal bits other than the
    // 0x7f of a stopped process. Bit 0x80 says a core was dumped.
    match status & 0x7f {
        0 => (Some(((status >> 8) & 0xff) as i32), None),
        0x7f => (None, None),
        signal => (None, Some(signal as i32)),
    }
}

fn malformed(offset: usize, message: String) -> ParseError {
    ParseError::new(0, format!("byte {offset}: {message}"))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds added to the fixtures' monotonic timestamps.
    const EPOCH: f64 = 1_795_625_947.0;
    /// 12.5 s after boot.
    const STAMP_NS: u64 = 12_500_000_000;
    const TIME: f64 = EPOCH + 12.5;

    /// One netlink message as the kernel sends it: `struct nlmsghdr`,
    /// `struct cn_msg`, then `struct proc_event` of kind `what` with the
    /// union's 32-bit fields `fields` (cn_proc.h, Linux 6.x), padded to
    /// the netlink alignment.
    fn message(what: u32, fields: &[u32]) -> Vec<u8> {
        let mut event = Vec::new();
        event.extend_from_slice(&what.to_ne_bytes());
        event.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        event.extend_from_slice(&STAMP_NS.to_ne_bytes());
        for f in fields {
            event.extend_from_slice(&f.to_ne_bytes());
        }
        wrap(CN_IDX_PROC, &event)
    }

    /// `event` behind a netlink and a connector header for connector `idx`.
    fn wrap(idx: u32, event: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + CN_MSG_LEN + event.len();
        let mut msg = Vec::new();
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&7u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
        msg.extend_from_slice(&idx.to_ne_bytes());
        msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        msg.extend_from_slice(&7u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
        msg.extend_from_slice(&(event.len() as u16).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(event);
        msg.resize(len.next_multiple_of(NLMSG_ALIGNTO), 0);
        msg
    }

    fn parse(bytes: &[u8]) -> Result<Vec<RawEvent>, ParseError> {
        let mut events = Vec::new();
        let acks = parse_datagram(bytes, EPOCH, &mut events)?;
        assert_eq!(acks, vec![]);
        Ok(events)
    }

    fn exit(pid: u32, tgid: u32, status: u32) -> Vec<u8> {
        // process_pid, process_tgid, exit_code, exit_signal (SIGCHLD),
        // parent_pid, parent_tgid.
        message(PROC_EVENT_EXIT, &[pid, tgid, status, 17, 1, 1])
    }

    #[test]
    fn fork_of_a_process() {
        // parent_pid 100 (a thread of process 90), child 200 its own leader.
        let events = parse(&message(PROC_EVENT_FORK, &[100, 90, 200, 200])).unwrap();
        assert_eq!(
            events,
            vec![RawEvent::Fork {
                pid: 200,
                ppid: 90,
                time: TIME
            }]
        );
    }

    #[test]
    fn fork_of_a_thread_is_skipped() {
        let events = parse(&message(PROC_EVENT_FORK, &[90, 90, 201, 90])).unwrap();
        assert_eq!(events, vec![]);
    }

    #[test]
    fn exec() {
        let events = parse(&message(PROC_EVENT_EXEC, &[200, 200])).unwrap();
        assert_eq!(
            events,
            vec![RawEvent::Exec {
                pid: 200,
                time: TIME
            }]
        );
    }

    #[test]
    fn exit_with_code_3() {
        let events = parse(&exit(200, 200, 3 << 8)).unwrap();
        assert_eq!(
            events,
            vec![RawEvent::Exit {
                pid: 200,
                exit_code: Some(3),
                signal: None,
                time: TIME
            }]
        );
    }

    #[test]
    fn exit_by_sigkill() {
        let events = parse(&exit(200, 200, 9)).unwrap();
        assert_eq!(
            events,
            vec![RawEvent::Exit {
                pid: 200,
                exit_code: None,
                signal: Some(9),
                time: TIME
            }]
        );
    }

    #[test]
    fn exit_of_a_thread_is_skipped() {
        assert_eq!(parse(&exit(201, 200, 0)).unwrap(), vec![]);
    }

    #[test]
    fn wait_statuses() {
        assert_eq!(decode_wait_status(0), (Some(0), None));
        assert_eq!(decode_wait_status(255 << 8), (Some(255), None));
        // SIGSEGV with a core dump.
        assert_eq!(decode_wait_status(0x80 | 11), (None, Some(11)));
        // Stopped by SIGSTOP: not an exit.
        assert_eq!(decode_wait_status(19 << 8 | 0x7f), (None, None));
    }

    #[test]
    fn two_messages_in_one_datagram() {
        let mut datagram = message(PROC_EVENT_EXEC, &[200, 200]);
        datagram.extend(exit(200, 200, 3 << 8));
        let events = parse(&datagram).unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(events[0], RawEvent::Exec { pid: 200, .. }));
        assert!(matches!(
            events[1],
            RawEvent::Exit {
                pid: 200,
                exit_code: Some(3),
                ..
            }
        ));
    }

    #[test]
    fn truncated_datagrams_are_errors() {
        let whole = exit(200, 200, 9);
        for len in 1..whole.len() {
            let err = parse(&whole[..len]).unwrap_err();
            assert!(err.message.starts_with("byte 0: "), "{len}: {err}");
        }
        // A record whose own length leaves out a field it needs.
        let err = parse(&message(PROC_EVENT_EXIT, &[200, 200])).unwrap_err();
        assert!(err.message.contains("no exit_code"), "{err}");
        // A message cut inside the second of two keeps the first's event.
        let mut datagram = message(PROC_EVENT_EXEC, &[200, 200]);
        let first = datagram.len();
        datagram.extend(exit(200, 200, 9));
        datagram.truncate(first + 20);
        let mut events = Vec::new();
        let err = parse_datagram(&datagram, EPOCH, &mut events).unwrap_err();
        assert!(err.message.starts_with(&format!("byte {first}: ")), "{err}");
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn garbage_is_an_error_or_nothing() {
        // A length that points past the end, a length below the header.
        assert!(parse(&[0xff; 40]).is_err());
        assert!(parse(&[1, 0, 0, 0]).is_err());
        assert_eq!(parse(&[]).unwrap(), vec![]);
        // Every byte pattern of a short buffer: no panic.
        let whole = message(PROC_EVENT_FORK, &[1, 1, 2, 2]);
        for i in 0..whole.len() {
            let mut bytes = whole.clone();
            bytes[i] ^= 0xff;
            let _ = parse_datagram(&bytes, EPOCH, &mut Vec::new());
        }
    }

    #[test]
    fn other_connectors_kinds_and_control_messages_are_skipped() {
        let mut datagram = wrap(CN_IDX_PROC + 1, &[0; 32]);
        // PROC_EVENT_UID with pid, tgid, ruid, euid.
        datagram.extend(message(0x4, &[200, 200, 0, 0]));
        let mut noop = message(PROC_EVENT_EXEC, &[300, 300]);
        noop[4..6].copy_from_slice(&NLMSG_NOOP.to_ne_bytes());
        datagram.extend(noop);
        assert_eq!(parse(&datagram).unwrap(), vec![]);
    }

    #[test]
    fn acks_are_returned() {
        let mut datagram = message(PROC_EVENT_NONE, &[1]);
        // The kernel echoes seq and answers ack + 1 (cn_proc_ack).
        datagram[NLMSG_HDRLEN + 12..NLMSG_HDRLEN + 16].copy_from_slice(&43u32.to_ne_bytes());
        let mut events = Vec::new();
        let acks = parse_datagram(&datagram, EPOCH, &mut events).unwrap();
        assert_eq!(
            acks,
            vec![Ack {
                seq: 7,
                ack: 43,
                err: 1
            }]
        );
        assert_eq!(events, vec![]);
    }

    #[test]
    fn the_listen_request() {
        let msg = mcast_message(McastOp::Listen, 7, 42);
        assert_eq!(msg.len(), 40);
        assert_eq!(u32_at(&msg, 0), Some(40));
        assert_eq!(u16_at(&msg, 4), Some(NLMSG_DONE));
        // cn_msg: id, seq and ack, a 4-byte payload holding the op.
        assert_eq!((u32_at(&msg, 16), u32_at(&msg, 20)), (Some(1), Some(1)));
        assert_eq!((u32_at(&msg, 24), u32_at(&msg, 28)), (Some(7), Some(42)));
        assert_eq!(u16_at(&msg, 32), Some(4));
        assert_eq!(u32_at(&msg, 36), Some(1));
    }
}
