//! What a connection and its calls share, as a leaf that both the
//! connection's I/O (`conn`) and the table of open connections (`gate`)
//! use: the count of open calls, since when none is open, what hyper
//! holds unsent, and the switch that closes the connection at the end of
//! a graceful shutdown.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::Waker,
};

use tokio::time::Instant;

use crate::service::budget::ConnBuffer;

/// What a connection and its calls share: its open calls, since when none
/// is, and whether the connection must close.
#[derive(Debug)]
pub(crate) struct ConnState {
    calls: Mutex<Calls>,
    closing: AtomicBool,
    /// The tasks last waiting to read and to write, woken when the idle
    /// clock starts or the connection must close.
    pub(super) readers: Mutex<Option<Waker>>,
    pub(super) writers: Mutex<Option<Waker>>,
    /// The bytes of responses held for this connection's calls.
    pub(super) buffered: Arc<ConnBuffer>,
}

impl ConnState {
    /// The state of a new connection: idle from now.
    pub(super) fn new() -> Arc<ConnState> {
        Arc::new(ConnState {
            calls: Mutex::new(Calls {
                open: 0,
                next: 0,
                idle_since: Instant::now(),
                held: HashMap::new(),
            }),
            closing: AtomicBool::new(false),
            readers: Mutex::new(None),
            writers: Mutex::new(None),
            buffered: ConnBuffer::new(),
        })
    }

    /// Marks the connection for closing and wakes whoever waits on it.
    pub(super) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        wake(&self.readers);
        wake(&self.writers);
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Counts a call until the returned guard is dropped; `watched` calls
    /// are subject to the stall timeout.
    pub(super) fn call_started(self: &Arc<ConnState>, watched: bool) -> CallGuard {
        let mut calls = lock(&self.calls);
        calls.open += 1;
        calls.next += 1;
        CallGuard {
            state: Arc::clone(self),
            id: calls.next,
            watched,
        }
    }

    /// When the connection became idle, or None while it carries a call.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        let calls = lock(&self.calls);
        (calls.open == 0).then_some(calls.idle_since)
    }

    /// Since when the oldest response data hyper holds without sending it
    /// has been held, if any.
    pub(super) fn held_since(&self) -> Option<Instant> {
        lock(&self.calls).held.values().min().copied()
    }

    /// Notes that hyper holds data of call `id` from now on (`true`) or
    /// has come back for more (`false`).
    fn hold(&self, id: u64, held: bool) {
        let started = {
            let mut calls = lock(&self.calls);
            if held {
                let mut started = false;
                calls.held.entry(id).or_insert_with(|| {
                    started = true;
                    Instant::now()
                });
                started
            } else {
                calls.held.remove(&id);
                false
            }
        };
        if started {
            // The reader's timer may wait for nothing, or for later.
            wake(&self.readers);
        }
    }
}

/// The calls of a connection.
#[derive(Debug)]
struct Calls {
    open: usize,
    next: u64,
    idle_since: Instant,
    /// For each call whose response data hyper holds without sending it
    /// (the client's window is shut), since when.
    held: HashMap<u64, Instant>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn register(slot: &Mutex<Option<Waker>>, waker: &Waker) {
    let mut slot = lock(slot);
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

fn wake(slot: &Mutex<Option<Waker>>) {
    if let Some(waker) = lock(slot).take() {
        waker.wake();
    }
}

/// One open call on a connection. The last one to end starts the idle
/// clock.
pub(super) struct CallGuard {
    state: Arc<ConnState>,
    id: u64,
    /// Whether the stall timeout applies to the call's response.
    watched: bool,
}

impl CallGuard {
    /// Notes whether hyper holds data of this call's response.
    pub(super) fn hold(&self, held: bool) {
        if self.watched {
            self.state.hold(self.id, held);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let idle = {
            let mut calls = lock(&self.state.calls);
            calls.held.remove(&self.id);
            calls.open -= 1;
            if calls.open == 0 {
                calls.idle_since = Instant::now();
            }
            calls.open == 0
        };
        if idle {
            // The connection's reader may be waiting without a timer.
            wake(&self.state.readers);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_idle_clock_starts_when_the_last_call_ends() {
        let state = ConnState::new();
        let opened = state.idle_since().expect("a new connection is idle");
        let first = state.call_started(true);
        let second = state.call_started(true);
        assert_eq!(state.idle_since(), None, "calls are open");
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(first);
        assert_eq!(state.idle_since(), None, "one call is still open");
        drop(second);
        let since = state.idle_since().expect("idle again");
        assert_eq!(since - opened, Duration::from_secs(5));
    }
}
