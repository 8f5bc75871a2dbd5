//! How many bytes of responses the agent holds for clients that have not
//! taken them yet, per connection and in total.
//!
//! A listing holds the batches it has built until the client takes them.
//! A client that keeps its HTTP/2 window shut takes nothing, so without a
//! bound a few hundred such streams hold the whole process table each.
//! Every batch therefore takes its encoded size from a [`Budget`] before it
//! is built, and gives it back once the client has taken it (see
//! [`super::outbox`]). A stream that finds no room when it starts is
//! refused with RESOURCE_EXHAUSTED; one that runs out of room half way
//! waits for room (no longer than the stall timeout).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

/// The bytes held for one connection's streams.
#[derive(Debug, Default)]
pub struct ConnBuffer {
    used: AtomicUsize,
}

impl ConnBuffer {
    /// A connection holding nothing yet.
    pub fn new() -> Arc<ConnBuffer> {
        Arc::new(ConnBuffer::default())
    }

    /// Bytes held for this connection now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }
}

/// Which bound a reservation ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The connection holds `max_buffered_bytes_per_connection`.
    Connection(usize),
    /// The agent holds `max_buffered_bytes`.
    Agent(usize),
}

impl Full {
    /// The `[limits]` key of the bound.
    pub fn key(self) -> &'static str {
        match self {
            Full::Connection(_) => "max_buffered_bytes_per_connection",
            Full::Agent(_) => "max_buffered_bytes",
        }
    }

    /// The bound, in bytes.
    pub fn limit(self) -> usize {
        match self {
            Full::Connection(n) | Full::Agent(n) => n,
        }
    }
}

/// The agent's bytes held for clients, bounded in total and per connection.
#[derive(Debug)]
pub struct Budget {
    max_total: usize,
    max_per_connection: usize,
    used: AtomicUsize,
    /// The most held since memory was last given back to the system.
    high_water: AtomicUsize,
    /// Woken whenever bytes are given back.
    freed: Notify,
}

/// Held bytes at or above which, once everything is given back, the agent
/// asks the allocator to return its free memory to the system.
const TRIM_ABOVE: usize = 4 * 1024 * 1024;

impl Budget {
    /// A budget of `max_total` bytes, `max_per_connection` for any one
    /// connection.
    pub fn new(max_total: usize, max_per_connection: usize) -> Arc<Budget> {
        Arc::new(Budget {
            max_total: max_total.max(1),
            max_per_connection: max_per_connection.max(1),
            used: AtomicUsize::new(0),
            high_water: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    /// Bytes held now, for every connection together.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// Takes `bytes` for `conn` (and the agent), or says which bound is in
    /// the way. Nothing is taken when either would be exceeded.
    pub fn try_reserve(
        self: &Arc<Budget>,
        conn: Option<&Arc<ConnBuffer>>,
        bytes: usize,
    ) -> Result<Reservation, Full> {
        if let Some(conn) = conn {
            add_within(&conn.used, bytes, self.max_per_connection)
                .map_err(|()| Full::Connection(self.max_per_connection))?;
        }
        if add_within(&self.used, bytes, self.max_total).is_err() {
            if let Some(conn) = conn {
                conn.used.fetch_sub(bytes, Ordering::SeqCst);
            }
            return Err(Full::Agent(self.max_total));
        }
        self.high_water
            .fetch_max(self.used.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(Reservation {
            budget: Arc::clone(self),
            conn: conn.cloned(),
            bytes,
        })
    }

    /// Takes `bytes` for `conn`, waiting up to `patience` for others to give
    /// some back.
    pub async fn reserve(
        self: &Arc<Budget>,
        conn: Option<&Arc<ConnBuffer>>,
        bytes: usize,
        patience: Duration,
    ) -> Result<Reservation, Full> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before trying, so that a release in between wakes
            // this waiter.
            freed.as_mut().enable();
            let full = match self.try_reserve(conn, bytes) {
                Ok(reservation) => return Ok(reservation),
                Err(full) => full,
            };
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(full);
            }
        }
    }

    /// Gives back `bytes` of `conn`.
    fn release(&self, conn: Option<&ConnBuffer>, bytes: usize) {
        if bytes == 0 {
            return;
        }
        if let Some(conn) = conn {
            conn.used.fetch_sub(bytes, Ordering::SeqCst);
        }
        let before = self.used.fetch_sub(bytes, Ordering::SeqCst);
        self.freed.notify_waiters();
        if before == bytes && self.high_water.swap(0, Ordering::SeqCst) >= TRIM_ABOVE {
            give_back_memory();
        }
    }
}

/// Adds `n` to `counter` unless that would take it above `max`.
fn add_within(counter: &AtomicUsize, n: usize, max: usize) -> Result<(), ()> {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            used.checked_add(n).filter(|sum| *sum <= max)
        })
        .map(drop)
        .map_err(drop)
}

/// Asks the allocator to return free memory to the system, off the async
/// workers: glibc keeps freed heap pages of its arenas otherwise, so the
/// agent's size would stay at its peak after the streams that caused it
/// have ended. malloc_trim is the C allocator's own interface, which no
/// safe wrapper covers.
#[allow(unsafe_code)]
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let trim = || {
            // SAFETY: malloc_trim only walks and shrinks the allocator's own
            // arenas; it takes no pointers.
            unsafe { libc::malloc_trim(0) };
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(trim)),
            Err(_) => trim(),
        }
    }
}

/// Bytes taken from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    conn: Option<Arc<ConnBuffer>>,
    bytes: usize,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives back all but `keep` bytes.
    pub fn shrink_to(&mut self, keep: usize) {
        if keep < self.bytes {
            self.budget.release(self.conn.as_deref(), self.bytes - keep);
            self.bytes = keep;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.conn.as_deref(), self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_per_connection_and_in_total_and_given_back() {
        let budget = Budget::new(100, 60);
        let (a, b) = (ConnBuffer::new(), ConnBuffer::new());
        let a1 = budget.try_reserve(Some(&a), 50).expect("room");
        assert_eq!(
            budget.try_reserve(Some(&a), 20).unwrap_err(),
            Full::Connection(60)
        );
        let mut b1 = budget.try_reserve(Some(&b), 50).expect("room for b");
        assert_eq!(
            budget.try_reserve(Some(&b), 10).unwrap_err(),
            Full::Agent(100),
            "the agent is full"
        );
        assert_eq!(b.used(), 50, "a refused reservation takes nothing");
        b1.shrink_to(20);
        assert_eq!((budget.used(), b.used()), (70, 20));
        let b2 = budget.try_reserve(Some(&b), 30).expect("room again");
        drop((a1, b1, b2));
        assert_eq!((budget.used(), a.used(), b.used()), (0, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_reservation_gets_room_when_another_gives_it_back() {
        let budget = Budget::new(10, 10);
        let held = budget.try_reserve(None, 10).expect("room");
        let waiter = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                budget
                    .reserve(None, 5, Duration::from_secs(60))
                    .await
                    .map(|r| r.bytes())
            })
        };
        tokio::task::yield_now().await;
        drop(held);
        assert_eq!(waiter.await.expect("waiter"), Ok(5));
        assert_eq!(
            budget
                .reserve(None, 11, Duration::from_secs(1))
                .await
                .unwrap_err(),
            Full::Agent(10),
            "more than the whole budget never fits"
        );
    }
}
