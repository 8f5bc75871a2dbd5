//! Answers in parts: what a host sends before it has finished, the budget
//! that bounds what a reader holds of the hosts in flight, and the clock
//! that stops a host's deadline while the reader is busy.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use super::{HostOutcome, HostSpec};

/// What [`Fleet::stream`](super::Fleet::stream) yields: parts of a host's
/// answer as they are sent, then the host's outcome.
#[derive(Debug)]
pub enum Streamed<P, T> {
    /// A part of `host`'s answer; the host has not finished yet.
    Part {
        /// The host that sent it.
        host: Arc<HostSpec>,
        /// What it sent.
        part: P,
    },
    /// A host's outcome, after all of its parts.
    Done(HostOutcome<T>),
}

/// Where a call of [`Fleet::stream`](super::Fleet::stream) sends the parts
/// of its answer.
pub struct Parts<P, T> {
    pub(super) host: Arc<HostSpec>,
    pub(super) tx: mpsc::Sender<Streamed<P, T>>,
    pub(super) clock: Arc<Clock>,
    pub(super) sent: Arc<AtomicBool>,
}

impl<P, T> Clone for Parts<P, T> {
    fn clone(&self) -> Self {
        Parts {
            host: Arc::clone(&self.host),
            tx: self.tx.clone(),
            clock: Arc::clone(&self.clock),
            sent: Arc::clone(&self.sent),
        }
    }
}

impl<P, T> fmt::Debug for Parts<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parts")
            .field("host", &self.host.address)
            .finish()
    }
}

impl<P, T> Parts<P, T> {
    /// The host this call asks.
    pub fn host(&self) -> &HostSpec {
        &self.host
    }

    /// Hands `part` to the reader, waiting while the reader is behind; the
    /// wait does not count against the host's deadline. A part sent after
    /// the reader has gone is dropped: the query is being cancelled.
    pub async fn send(&self, part: P) {
        self.sent.store(true, Ordering::Relaxed);
        let item = Streamed::Part {
            host: Arc::clone(&self.host),
            part,
        };
        let item = match self.tx.try_send(item) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(item)) => item,
        };
        let _paused = self.clock.pause();
        let _ = self.tx.send(item).await;
    }
}

// === Budget ===

/// Bytes a reader may hold of the hosts in flight: once the charges reach
/// the limit, no further host is dialled until some are released.
/// Clones share one budget.
#[derive(Clone)]
pub struct Budget {
    limit: usize,
    state: Arc<watch::Sender<Use>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Use {
    /// Bytes charged and not yet released.
    bytes: usize,
    /// Whether a host waits to be dialled for want of room.
    holding_back: bool,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.limit)
            .field("used", &self.used())
            .finish()
    }
}

impl Budget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit: limit.max(1),
            state: Arc::new(watch::channel(Use::default()).0),
        }
    }

    /// A budget that never holds a host back.
    pub fn unlimited() -> Budget {
        Budget::new(usize::MAX)
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged and not yet released.
    pub fn used(&self) -> usize {
        self.state.borrow().bytes
    }

    /// Whether a host is waiting to be dialled for want of room.
    pub fn is_holding_back(&self) -> bool {
        self.state.borrow().holding_back
    }

    /// A charge of nothing yet, released when dropped.
    pub fn charge(&self) -> Charge {
        Charge {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// Resolves once there is room: charges below the limit.
    pub(super) async fn admit(&self) {
        let mut state = self.state.subscribe();
        if state.borrow_and_update().bytes < self.limit {
            return;
        }
        self.state.send_modify(|u| u.holding_back = true);
        // The sender lives in `self`: the wait ends only with room.
        let _ = state.wait_for(|u| u.bytes < self.limit).await;
        self.state.send_modify(|u| u.holding_back = false);
    }

    /// Resolves once a host waits to be dialled for want of room.
    pub async fn held_back(&self) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|u| u.holding_back).await;
    }

    fn add(&self, bytes: usize) {
        self.state
            .send_modify(|u| u.bytes = u.bytes.saturating_add(bytes));
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.state
                .send_modify(|u| u.bytes = u.bytes.saturating_sub(bytes));
        }
    }
}

/// Bytes held against a [`Budget`], released when dropped.
pub struct Charge {
    budget: Budget,
    bytes: usize,
}

impl fmt::Debug for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Charge")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Charge {
    /// Charges `bytes` more.
    pub fn add(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.budget.add(bytes);
    }

    /// The bytes this charge holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

// === Clock ===

/// A host's deadline, stopped while its call waits for the reader.
#[derive(Debug)]
pub(super) struct Clock {
    state: watch::Sender<Timer>,
}

#[derive(Debug, Clone, Copy)]
struct Timer {
    end: Instant,
    /// Since when the clock stands still, and how many waits stop it.
    paused: Option<(Instant, usize)>,
}

impl Clock {
    pub(super) fn start(deadline: Duration) -> Clock {
        let end = Instant::now() + deadline;
        Clock {
            state: watch::channel(Timer { end, paused: None }).0,
        }
    }

    /// Stops the clock until the returned guard is dropped.
    fn pause(&self) -> Paused<'_> {
        self.state.send_modify(|t| {
            t.paused = match t.paused {
                Some((since, n)) => Some((since, n + 1)),
                None => Some((Instant::now(), 1)),
            };
        });
        Paused(self)
    }

    fn resume(&self) {
        self.state.send_modify(|t| match t.paused {
            Some((since, 1)) => {
                t.end += since.elapsed();
                t.paused = None;
            }
            Some((since, n)) => t.paused = Some((since, n - 1)),
            None => {}
        });
    }

    /// Resolves once the deadline has passed with the clock running.
    pub(super) async fn expired(&self) {
        let mut state = self.state.subscribe();
        loop {
            let timer = *state.borrow_and_update();
            if timer.paused.is_none() && Instant::now() >= timer.end {
                return;
            }
            let changed = state.changed();
            match timer.paused {
                Some(_) => {
                    if changed.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => {
                    tokio::select! {
                        () = tokio::time::sleep_until(timer.end) => {}
                        _ = changed => {}
                    }
                }
            }
        }
    }
}

/// Keeps a [`Clock`] stopped while it lives.
struct Paused<'a>(&'a Clock);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stands_still_while_the_reader_is_behind() {
        let clock = Clock::start(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(6)).await;
        let paused = clock.pause();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        drop(paused);
        clock.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[test]
    fn charges_are_released_when_dropped() {
        let budget = Budget::new(10);
        let mut charge = budget.charge();
        charge.add(7);
        let mut other = budget.charge();
        other.add(5);
        assert_eq!((budget.used(), charge.bytes()), (12, 7));
        drop(charge);
        assert_eq!(budget.used(), 5);
        drop(other);
        assert_eq!(budget.used(), 0);
    }
}
