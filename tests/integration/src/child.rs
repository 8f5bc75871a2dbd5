//! Child processes that cannot outlive the test that started them.
//!
//! Every process a test starts goes through [`ChildGroup::spawn`]: the
//! child leads a process group of its own, and when the guard is dropped
//! (the test passed, failed or panicked) the whole group is killed and the
//! child reaped. A busy loop left running by a failed assertion would
//! otherwise burn a core until someone noticed.
//!
//! The group is only ever signalled while its leader is unreaped: until
//! then the kernel keeps the leader's pid, which is the group's id, from
//! going to anyone else, so the signal cannot reach a stranger's
//! processes. Once the leader has exited, the rest of its group is killed
//! before the leader is reaped, for the same reason.
//!
//! Programs started this way should also end by themselves within
//! minutes: a test binary killed outright runs no destructors.

use std::{
    io,
    os::unix::process::CommandExt,
    process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus},
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};

/// A child process leading its own process group; the group is killed and
/// the child reaped on drop.
#[derive(Debug)]
pub struct ChildGroup {
    child: Child,
    /// The leader's pid, which is also the group's id.
    pgid: Pid,
    /// Set once the leader has been reaped: from then on its pid may belong
    /// to another process, and the group is never signalled again.
    status: Option<ExitStatus>,
}

impl ChildGroup {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> io::Result<ChildGroup> {
        let child = cmd.process_group(0).spawn()?;
        let pgid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other(format!("pid {} out of range", child.id())))?;
        let mut group = ChildGroup {
            child,
            pgid,
            status: None,
        };
        // Never signal group 1: kill(-1) would reach every process we may
        // signal. A child cannot have pid 1 outside a pid namespace of its
        // own, but the guard must not rely on it.
        if pgid == Pid::INIT {
            group.status = Some(group.child.wait()?);
            return Err(io::Error::other("the child has pid 1"));
        }
        Ok(group)
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The write end of the child's stdin, if it was piped and not taken yet.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The read end of the child's stdout, if it was piped and not taken yet.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The read end of the child's stderr, if it was piped and not taken yet.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// The child's exit status if it has ended, without blocking. Once it
    /// has, what is left of its group is killed and the child reaped.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        // WNOWAIT: look without reaping, so that the pid stays the child's
        // while the rest of the group is killed.
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        match waitid(WaitId::Pid(self.pgid), options) {
            Ok(Some(_)) => self.finish().map(Some),
            Ok(None) => Ok(None),
            Err(rustix::io::Errno::INTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `limit` for the child to end by itself; once it has,
    /// kills what is left of its group and reaps it. `None` if it is still
    /// running.
    pub fn wait_timeout(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if start.elapsed() > limit {
                return Ok(None);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// [`ChildGroup::wait_timeout`] for tests: panics (and kills the group)
    /// if the child is still running after `limit`, a test's bound rather
    /// than a measurement.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        match self.wait_timeout(limit).expect("waitid on our own child") {
            Some(status) => status,
            None => {
                let status = self.kill();
                panic!(
                    "pid {} did not end within {limit:?}; killed ({status})",
                    self.id()
                );
            }
        }
    }

    /// Kills the whole group with SIGKILL and reaps the child; its exit
    /// status (normally "killed by SIGKILL", unless it had already ended).
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        self.finish().expect("reaping our own child")
    }

    /// Kills the group while the unreaped leader holds its id, then reaps
    /// the leader.
    fn finish(&mut self) -> io::Result<ExitStatus> {
        // ESRCH (every member gone already) is the expected case after a
        // natural exit; anything else is no reason to leave the child
        // unreaped.
        let _ = kill_process_group(self.pgid, Signal::KILL);
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for ChildGroup {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.finish();
        }
    }
}
