//! Who gets in: TLS handshakes in progress and open connections, bounded in
//! total and per peer, and a log of the connections turned away that stays
//! a few lines long however many there are.
//!
//! Handshakes are the part a stranger controls: anyone can open a TCP
//! connection and never send a ClientHello. So when the handshake table is
//! full, the oldest pending handshake (of the same peer first, else of
//! anyone) is dropped to make room: a client that completes its handshake
//! promptly always gets through, however many silent connections an
//! attacker keeps opening. Open connections belong to clients that hold a
//! certificate of the fleet; beyond their limits (in total, per network
//! prefix, per certificate identity), new ones are refused.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::oneshot;

use super::{Limits, conn_state::ConnState};

/// How often suppressed rejections are summed up in one log line.
pub(super) const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Rejections logged one by one per interval; the rest are only counted.
const LINES_PER_INTERVAL: u32 = 5;

/// The network a peer's handshakes and connections are counted under: the
/// /24 of an IPv4 address, the /64 of an IPv6 address. One host easily
/// holds many addresses of its network (a whole /64 is usual for IPv6), so
/// counting single addresses would bound little.
pub(super) fn peer_key(addr: SocketAddr) -> IpAddr {
    match addr.ip().to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & !0xff)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// Locks `mutex`, recovering the data if a panicking thread poisoned it:
/// every critical section here leaves the tables consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a connection was turned away or closed before it could be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rejection {
    /// The TLS handshake failed: no client certificate, another CA, not TLS.
    Tls,
    /// The TLS handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// A newer connection needed its handshake slot.
    Shed,
    /// The peer, or the agent, has as many connections as it may.
    OverLimit,
    /// TLS completed but the HTTP/2 preface did not arrive in time.
    PrefaceTimeout,
}

impl Rejection {
    const ALL: [Rejection; 5] = [
        Rejection::Tls,
        Rejection::HandshakeTimeout,
        Rejection::Shed,
        Rejection::OverLimit,
        Rejection::PrefaceTimeout,
    ];

    /// The log message of one such rejection.
    fn message(self) -> &'static str {
        match self {
            Rejection::Tls => "rejected TLS handshake",
            Rejection::HandshakeTimeout => "dropped TLS handshake: timed out",
            Rejection::Shed => "dropped TLS handshake: a newer connection needed its slot",
            Rejection::OverLimit => "refused connection: connection limit reached",
            Rejection::PrefaceTimeout => "closed connection: no HTTP/2 preface in time",
        }
    }

    /// The key of this kind in summary lines.
    fn key(self) -> &'static str {
        match self {
            Rejection::Tls => "tls",
            Rejection::HandshakeTimeout => "handshake_timeout",
            Rejection::Shed => "shed",
            Rejection::OverLimit => "over_limit",
            Rejection::PrefaceTimeout => "preface_timeout",
        }
    }
}

/// Counts every rejection, logs the first few of each interval one by one
/// with the peer and the reason, and sums up the rest in one line at the
/// end of the interval.
#[derive(Debug, Default)]
pub(super) struct RejectionLog {
    totals: [AtomicU64; 5],
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    logged: u32,
    suppressed: [u64; 5],
}

impl RejectionLog {
    /// Counts one rejection; true when it should be logged on its own line.
    fn admit(&self, kind: Rejection) -> bool {
        self.totals[kind as usize].fetch_add(1, Ordering::Relaxed);
        let mut window = lock(&self.window);
        if window.logged < LINES_PER_INTERVAL {
            window.logged += 1;
            true
        } else {
            window.suppressed[kind as usize] += 1;
            false
        }
    }

    /// Records one rejection of `peer`, logging it unless this interval's
    /// lines are used up.
    pub(super) fn reject(&self, kind: Rejection, peer: SocketAddr, reason: &dyn fmt::Display) {
        if self.admit(kind) {
            tracing::warn!(%peer, %reason, "{}", kind.message());
        }
    }

    /// Ends the interval: the rejections not logged on their own, by kind,
    /// or None when every one was.
    fn end_interval(&self) -> Option<Summary> {
        let window = std::mem::take(&mut *lock(&self.window));
        let suppressed: u64 = window.suppressed.iter().sum();
        (suppressed > 0).then(|| Summary {
            suppressed: window.suppressed,
            totals: self.totals(),
        })
    }

    /// Ends the interval and logs its summary line, if it has one, naming
    /// the address the agent listens on.
    pub(super) fn log_interval(&self, listen: &str) {
        if let Some(summary) = self.end_interval() {
            tracing::warn!(
                %listen,
                interval = ?LOG_INTERVAL,
                since_start = summary.totals.iter().sum::<u64>(),
                "{summary}"
            );
        }
    }

    /// Rejections of each kind since the agent started.
    fn totals(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.totals[i].load(Ordering::Relaxed))
    }
}

/// The rejections of one interval that were not logged one by one.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    suppressed: [u64; 5],
    totals: [u64; 5],
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count: u64 = self.suppressed.iter().sum();
        write!(
            f,
            "{count} more connections turned away, not logged one by one ("
        )?;
        let mut first = true;
        for kind in Rejection::ALL {
            let n = self.suppressed[kind as usize];
            if n > 0 {
                if !first {
                    write!(f, ", ")?;
                }
                write!(f, "{}: {n}", kind.key())?;
                first = false;
            }
        }
        write!(f, ")")
    }
}

// === Handshakes ===

/// TLS handshakes in progress, oldest first. Dropping an entry's sender
/// tells its handshake task to give up.
#[derive(Debug, Default)]
pub(super) struct Handshakes {
    next: u64,
    pending: BTreeMap<u64, (IpAddr, oneshot::Sender<()>)>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Handshakes {
    /// Admits a handshake from `peer`: its id, the receiver that resolves
    /// (with a value when shed for a newer handshake, with an error when the
    /// agent stops) and how many older handshakes were shed for it.
    pub(super) fn admit(
        &mut self,
        peer: IpAddr,
        max_total: usize,
        max_per_peer: usize,
    ) -> (u64, oneshot::Receiver<()>, usize) {
        let mut shed = 0;
        while self.per_peer.get(&peer).copied().unwrap_or(0) >= max_per_peer.max(1) {
            let oldest = self
                .pending
                .iter()
                .find(|(_, (ip, _))| *ip == peer)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => {
                    self.shed(id);
                    shed += 1;
                }
                None => break,
            }
        }
        while self.pending.len() >= max_total.max(1) {
            match self.pending.keys().next().copied() {
                Some(id) => {
                    self.shed(id);
                    shed += 1;
                }
                None => break,
            }
        }
        let id = self.next;
        self.next += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.insert(id, (peer, tx));
        *self.per_peer.entry(peer).or_default() += 1;
        (id, rx, shed)
    }

    /// Drops handshake `id` for a newer one, telling its task so.
    fn shed(&mut self, id: u64) {
        if let Some(cancel) = self.remove(id) {
            let _ = cancel.send(());
        }
    }

    /// Forgets handshake `id` (done or failed); true if it was pending.
    pub(super) fn finish(&mut self, id: u64) -> bool {
        self.remove(id).is_some()
    }

    /// Removes handshake `id`: the sender that cancels it, if it was pending.
    fn remove(&mut self, id: u64) -> Option<oneshot::Sender<()>> {
        let (peer, cancel) = self.pending.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
        Some(cancel)
    }

    /// Drops every pending handshake, without a word: the agent is stopping.
    pub(super) fn clear(&mut self) {
        self.pending.clear();
        self.per_peer.clear();
    }

    /// Handshakes in progress.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.len()
    }
}

// === Connections ===

/// Open connections, in total, per peer network and per client identity,
/// with a handle on each so that the end of a graceful shutdown can close
/// the ones still open.
#[derive(Debug, Default)]
pub(super) struct Connections {
    next: u64,
    open: HashMap<u64, Open>,
    per_peer: HashMap<IpAddr, usize>,
    per_identity: HashMap<String, usize>,
}

/// One open connection: its state, and what it is counted under.
#[derive(Debug)]
struct Open {
    state: Weak<ConnState>,
    peer: IpAddr,
    identity: Option<String>,
}

/// Which of the connection limits a connection ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Full {
    /// `max_connections`.
    Agent,
    /// `max_connections_per_peer`.
    Peer,
    /// `max_connections_per_identity`.
    Identity,
}

impl Full {
    /// Why the connection was refused, for the log.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Full::Agent => "too many connections ([limits] max_connections)",
            Full::Peer => {
                "too many connections from this network ([limits] max_connections_per_peer)"
            }
            Full::Identity => {
                "too many connections with this certificate identity \
                 ([limits] max_connections_per_identity)"
            }
        }
    }
}

/// The connection limits, as the table applies them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Caps {
    pub(super) total: usize,
    pub(super) per_peer: usize,
    pub(super) per_identity: usize,
}

/// `map[key]`, 0 when absent.
fn count<K: std::hash::Hash + Eq>(map: &HashMap<K, usize>, key: &K) -> usize {
    map.get(key).copied().unwrap_or(0)
}

/// Takes one off `map[key]`, forgetting the key at 0.
fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Connections {
    /// Whether `peer` may open one more connection now (its identity is
    /// not known before the handshake).
    pub(super) fn has_room(&self, peer: IpAddr, caps: Caps) -> Result<(), Full> {
        if self.open.len() >= caps.total {
            return Err(Full::Agent);
        }
        if count(&self.per_peer, &peer) >= caps.per_peer {
            return Err(Full::Peer);
        }
        Ok(())
    }

    /// Takes a place for a connection of `peer` with the client
    /// certificate `identity`, or says which limit is in the way.
    pub(super) fn open(
        &mut self,
        peer: IpAddr,
        identity: Option<&str>,
        state: &Arc<ConnState>,
        caps: Caps,
    ) -> Result<u64, Full> {
        self.has_room(peer, caps)?;
        if let Some(identity) = identity {
            if self.per_identity.get(identity).copied().unwrap_or(0) >= caps.per_identity {
                return Err(Full::Identity);
            }
            *self.per_identity.entry(identity.to_owned()).or_default() += 1;
        }
        let id = self.next;
        self.next += 1;
        self.open.insert(
            id,
            Open {
                state: Arc::downgrade(state),
                peer,
                identity: identity.map(str::to_owned),
            },
        );
        *self.per_peer.entry(peer).or_default() += 1;
        Ok(id)
    }

    /// Gives back the place of connection `id`.
    pub(super) fn close(&mut self, id: u64) {
        let Some(open) = self.open.remove(&id) else {
            return;
        };
        decrement(&mut self.per_peer, &open.peer);
        if let Some(identity) = &open.identity {
            decrement(&mut self.per_identity, identity);
        }
    }

    /// The connections still open.
    fn live(&self) -> Vec<Arc<ConnState>> {
        self.open
            .values()
            .filter_map(|open| open.state.upgrade())
            .collect()
    }
}

// === Gate ===

/// The limits, the tables and the rejection log, shared by the accept loop,
/// the handshake tasks and the connections.
#[derive(Debug)]
pub(super) struct Gate {
    pub(super) limits: Limits,
    /// How long hyper may hold a response's data that the client does not
    /// take before the connection is closed (the service's stream stall
    /// timeout).
    pub(super) stall_timeout: Duration,
    pub(super) handshakes: Mutex<Handshakes>,
    pub(super) connections: Mutex<Connections>,
    pub(super) rejections: RejectionLog,
}

impl Gate {
    /// A gate with no one inside.
    pub(super) fn new(limits: Limits, stall_timeout: Duration) -> Gate {
        Gate {
            limits,
            stall_timeout,
            handshakes: Mutex::default(),
            connections: Mutex::default(),
            rejections: RejectionLog::default(),
        }
    }

    /// Admits a handshake from `peer` (shedding older ones as needed): its
    /// id, and what resolves when it is shed in turn.
    pub(super) fn begin_handshake(&self, peer: SocketAddr) -> (u64, oneshot::Receiver<()>) {
        let (id, shed_rx, shed) = lock(&self.handshakes).admit(
            peer_key(peer),
            self.limits.max_handshakes,
            self.limits.max_handshakes_per_peer,
        );
        if shed > 0 {
            // The shed handshakes' peers are not known here; their tasks
            // record them. This line names the peer that caused it.
            tracing::debug!(%peer, shed, "handshake table full: dropped the oldest");
        }
        (id, shed_rx)
    }

    /// Forgets handshake `id`; false if it had been shed already.
    pub(super) fn end_handshake(&self, id: u64) -> bool {
        lock(&self.handshakes).finish(id)
    }

    /// The connection limits.
    fn caps(&self) -> Caps {
        Caps {
            total: self.limits.max_connections,
            per_peer: self.limits.max_connections_per_peer,
            per_identity: self.limits.max_connections_per_identity,
        }
    }

    /// Whether `peer` may open one more connection now, before its
    /// handshake is spent on it.
    pub(super) fn has_room(&self, peer: SocketAddr) -> Result<(), Full> {
        lock(&self.connections).has_room(peer_key(peer), self.caps())
    }

    /// Takes a place for `state`'s connection from `peer` with the client
    /// certificate `identity`, or says which limit is in the way.
    pub(super) fn open(
        &self,
        peer: SocketAddr,
        identity: Option<&str>,
        state: &Arc<ConnState>,
    ) -> Result<u64, Full> {
        lock(&self.connections).open(peer_key(peer), identity, state, self.caps())
    }

    /// Gives back connection `id`'s place.
    pub(super) fn close(&self, id: u64) {
        lock(&self.connections).close(id);
    }

    /// Drops every pending handshake: the agent stops accepting.
    pub(super) fn stop_handshakes(&self) {
        lock(&self.handshakes).clear();
    }

    /// Closes every connection still open; how many there were.
    pub(super) fn close_all(&self) -> usize {
        let live = lock(&self.connections).live();
        for conn in &live {
            conn.close();
        }
        live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    #[test]
    fn a_full_table_sheds_the_oldest_handshake_of_the_same_peer_first() {
        let mut table = Handshakes::default();
        let (b0, mut b0_shed, _) = table.admit(B, 4, 2);
        let (_, mut a0_shed, _) = table.admit(A, 4, 2);
        let (_, mut a1_shed, _) = table.admit(A, 4, 2);
        // A third handshake of A sheds A's oldest, not B's older one.
        let (_, _, shed) = table.admit(A, 4, 2);
        assert_eq!(shed, 1);
        assert_eq!(a0_shed.try_recv(), Ok(()), "A's oldest was shed");
        assert_eq!(
            b0_shed.try_recv(),
            Err(oneshot::error::TryRecvError::Empty),
            "B keeps its slot"
        );
        assert_eq!(a1_shed.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        assert_eq!(table.len(), 3);

        // The table is full in total: a newcomer sheds the oldest of all.
        let (_, _, shed) = table.admit(B, 3, 2);
        assert_eq!(shed, 1);
        assert_eq!(b0_shed.try_recv(), Ok(()), "the oldest of all was shed");
        assert!(!table.finish(b0), "a shed handshake is no longer pending");
        assert_eq!(table.len(), 3);

        // Stopping drops the rest without calling them shed.
        table.clear();
        assert_eq!(
            a1_shed.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
    }

    #[test]
    fn a_newcomer_always_gets_a_slot_however_many_came_before() {
        let mut table = Handshakes::default();
        for _ in 0..1000 {
            table.admit(A, 8, 8);
        }
        assert_eq!(table.len(), 8);
        let (id, mut shed, _) = table.admit(B, 8, 8);
        assert_eq!(shed.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        assert!(table.finish(id), "the newcomer's handshake is pending");
        assert_eq!(table.per_peer.get(&A), Some(&7));
        assert_eq!(table.per_peer.get(&B), None);
    }

    #[test]
    fn connections_are_bounded_in_total_and_per_peer() {
        let state = ConnState::new();
        let mut conns = Connections::default();
        let caps = Caps {
            total: 3,
            per_peer: 2,
            per_identity: 10,
        };
        let a1 = conns.open(A, None, &state, caps).expect("first of A");
        conns.open(A, None, &state, caps).expect("second of A");
        assert_eq!(conns.open(A, None, &state, caps), Err(Full::Peer));
        let b1 = conns.open(B, None, &state, caps).expect("first of B");
        assert_eq!(conns.open(B, None, &state, caps), Err(Full::Agent));
        conns.close(a1);
        conns.close(a1);
        assert_eq!(
            conns.per_peer.get(&A),
            Some(&1),
            "closing twice counts once"
        );
        conns.open(B, None, &state, caps).expect("room again");
        conns.close(b1);
        assert_eq!(conns.live().len(), 2);
    }

    #[test]
    fn connections_are_bounded_per_identity_across_networks() {
        let state = ConnState::new();
        let mut conns = Connections::default();
        let caps = Caps {
            total: 100,
            per_peer: 100,
            per_identity: 2,
        };
        let first = conns.open(A, Some("reader"), &state, caps).expect("first");
        conns
            .open(B, Some("reader"), &state, caps)
            .expect("second, from elsewhere");
        assert_eq!(
            conns.open(B, Some("reader"), &state, caps),
            Err(Full::Identity),
            "a third with the same identity, from any network"
        );
        conns
            .open(A, Some("operator"), &state, caps)
            .expect("another identity has room");
        conns.close(first);
        conns
            .open(B, Some("reader"), &state, caps)
            .expect("room again once one closed");
        assert_eq!(conns.per_identity.get("reader"), Some(&2));
    }

    #[test]
    fn ipv6_peers_count_by_their_64_network_and_mapped_ipv4_as_ipv4() {
        let one: SocketAddr = "[2001:db8:1:2:aaaa::1]:5000".parse().unwrap();
        let two: SocketAddr = "[2001:db8:1:2:bbbb::2]:6000".parse().unwrap();
        let other: SocketAddr = "[2001:db8:1:3::1]:6000".parse().unwrap();
        assert_eq!(peer_key(one), peer_key(two));
        assert_ne!(peer_key(one), peer_key(other));
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:5000".parse().unwrap();
        assert_eq!(peer_key(mapped), peer_key(SocketAddr::new(A, 1)));
        // IPv4 peers count by their /24.
        let (near, far): (SocketAddr, SocketAddr) = (
            "192.0.2.200:7000".parse().unwrap(),
            "192.0.3.1:7000".parse().unwrap(),
        );
        assert_eq!(peer_key(near), IpAddr::from([192, 0, 2, 0]));
        assert_eq!(peer_key(near), peer_key(SocketAddr::new(A, 1)));
        assert_ne!(peer_key(far), peer_key(near));
    }

    #[test]
    fn rejections_beyond_a_few_per_interval_are_only_counted() {
        let log = RejectionLog::default();
        let logged = (0..100)
            .filter(|i| {
                log.admit(if i % 2 == 0 {
                    Rejection::Shed
                } else {
                    Rejection::HandshakeTimeout
                })
            })
            .count();
        assert_eq!(logged, LINES_PER_INTERVAL as usize);
        let summary = log.end_interval().expect("a summary");
        assert_eq!(summary.suppressed.iter().sum::<u64>(), 95);
        assert_eq!(summary.totals.iter().sum::<u64>(), 100);
        let line = summary.to_string();
        assert!(line.starts_with("95 more connections"), "{line}");
        assert!(
            line.contains("shed: 47") && line.contains("handshake_timeout: 48"),
            "{line}"
        );
        assert!(!line.contains("tls"), "{line}");

        // A new interval logs again, and a quiet one has no summary.
        assert!(log.admit(Rejection::Tls));
        assert_eq!(log.end_interval(), None);
        assert_eq!(log.totals()[Rejection::Tls as usize], 1);
    }
}
