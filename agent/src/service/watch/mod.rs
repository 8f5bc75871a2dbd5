//! WatchProcesses: one collector for every watcher.
//!
//! The first watcher starts a [`collector`] thread that reads the backend's
//! event source (the kernel's process connector, or a table diff), turns
//! raw fork/exec/exit events into [`Event`]s, and publishes them on a
//! bounded broadcast channel that the [`Hub`] hands to each watcher. Each
//! watcher keeps what its [`filter`] admits (within its [`tree`] of
//! descendants, if it asked for one) and adds its own [`sampler`]'s
//! measurements. A watcher that falls behind loses the oldest events, gets a
//! LAGGED event saying how many, and goes on: it never blocks the collector
//! or other watchers, and memory stays bounded. When the last watcher
//! leaves, the collector stops: nothing runs while nobody watches.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use tokio::sync::broadcast;

use crate::backend;

mod collector;
pub(crate) mod event;
mod filter;
mod hub;
pub(crate) mod sampler;
mod tree;

pub use event::{Event, EventKind};
pub use hub::Hub;

/// How watching is set up and bounded.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Kernel events, polling, or the first that works.
    pub mode: backend::WatchMode,
    /// How often polling diffs the process table.
    pub poll_interval: Duration,
    /// Events the collector keeps for slow watchers before they lag.
    pub broadcast_capacity: usize,
    /// Events buffered per watcher between its filter and its stream.
    pub watcher_buffer: usize,
    /// Watchers per agent.
    pub max_watchers: usize,
    /// Watchers per client identity.
    pub max_watchers_per_client: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            mode: backend::WatchMode::Auto,
            poll_interval: Duration::from_secs(1),
            broadcast_capacity: 4096,
            watcher_buffer: 256,
            max_watchers: 64,
            max_watchers_per_client: 8,
        }
    }
}

/// The running collector's sender, shared by the hub (which subscribes new
/// watchers to it) and the collector (which clears it when it stops).
type Channel = Arc<Mutex<Option<broadcast::Sender<Arc<Event>>>>>;

/// Locks `m`, also after a panic elsewhere: the data it guards (counters and
/// a channel handle) stays consistent at every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Now, in seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Real processes for the unit tests.
#[cfg(all(test, target_os = "linux"))]
mod testing {
    use std::{
        process::{Child, Command},
        time::{Duration, Instant},
    };

    use crate::backend::{self, Backend, Field, FieldSet, Status};

    /// The backend over this machine's /proc and /sys.
    pub fn real() -> Box<dyn Backend> {
        backend::native("/proc".into(), "/sys".into()).expect("the real backend")
    }

    /// A child of this test that has exited and that the test has not yet
    /// waited for: a real zombie, reaped on drop.
    pub struct Zombie(Child);

    impl Zombie {
        /// Starts `true` and waits until the kernel shows it as a zombie.
        pub fn spawn(backend: &dyn Backend) -> Zombie {
            let zombie = Zombie(Command::new("true").spawn().expect("spawning true"));
            let status: FieldSet = [Field::Status].into_iter().collect();
            let deadline = Instant::now() + Duration::from_secs(30);
            while backend
                .process(zombie.pid(), status)
                .map_or(true, |p| p.status != Some(Status::Zombie))
            {
                assert!(Instant::now() < deadline, "no zombie after 30s");
                std::thread::sleep(Duration::from_millis(5));
            }
            zombie
        }

        /// Its pid.
        pub fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for Zombie {
        fn drop(&mut self) {
            let _ = self.0.wait();
        }
    }

    /// A child that sleeps until the test ends: killed and reaped on drop.
    pub struct Sleeper(pub Child);

    impl Sleeper {
        /// Starts `sleep 300`.
        pub fn spawn() -> Sleeper {
            Sleeper(
                Command::new("sleep")
                    .arg("300")
                    .spawn()
                    .expect("spawning sleep"),
            )
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
