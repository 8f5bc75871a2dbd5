//! Asking every target host: results printed as each host answers, a
//! progress bar while they come in, and the summary and exit status at the
//! end. Ctrl-C ends the asking early: what arrived is printed, the hosts
//! that had not answered are counted as cancelled, and the exit status is
//! 130.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    io::{self, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio_stream::StreamExt;

use super::{args::Output, output::Printer};
use hostscope_client::{
    Client, Error,
    fleet::{Budget, Failure, Fleet, HostSpec, Parts, Streamed, Summary},
};

/// Every host answered.
pub const EXIT_OK: u8 = 0;
/// A usage or local error: bad flags, unreadable certificates or inventory.
pub const EXIT_ERROR: u8 = 1;
/// One or more hosts failed; the others' results were printed.
pub const EXIT_HOSTS_FAILED: u8 = 2;
/// Ctrl-C (SIGINT) ended the query before every host had answered: 128
/// plus the signal's number, as shells report a command that SIGINT ended.
pub const EXIT_INTERRUPTED: u8 = 130;

/// How a command ended, short of a local error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every host answered (or there was no host to ask, as for `pki`).
    Answered,
    /// At least one host failed.
    SomeFailed,
    /// Ctrl-C ended the query before every host had answered.
    Interrupted,
}

impl Status {
    /// The status of a fleet query.
    pub fn of(summary: &Summary) -> Status {
        if summary.was_cancelled() {
            Status::Interrupted
        } else if summary.all_ok() {
            Status::Answered
        } else {
            Status::SomeFailed
        }
    }
}

/// The exit code for how the command ended. stdout going away (`| head`)
/// is no failure: the reader has what it wanted.
pub fn exit_code(result: &anyhow::Result<Status>) -> u8 {
    match result {
        Ok(Status::Answered) => EXIT_OK,
        Ok(Status::SomeFailed) => EXIT_HOSTS_FAILED,
        Ok(Status::Interrupted) => EXIT_INTERRUPTED,
        Err(e) if is_broken_pipe(e) => EXIT_OK,
        Err(_) => EXIT_ERROR,
    }
}

/// Whether an error is stdout going away (`hostscope ps | head`), which
/// ends the program quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Ctrl-C, as a fleet query sees it. Once triggered, [`Io::fan_out`]
/// dials no further host, abandons the hosts in flight and returns what
/// had arrived, the other hosts counted as cancelled. Clones share one
/// state.
#[derive(Debug, Clone)]
pub struct Interrupt {
    state: Arc<watch::Sender<bool>>,
    /// Whether [`Interrupt::listen`] wires the process's SIGINT to it (the
    /// binary), or only [`Interrupt::trigger`] sets it (tests, `run_with`).
    ctrl_c: bool,
}

impl Interrupt {
    /// An interrupt that only [`Interrupt::trigger`] sets.
    pub fn new() -> Interrupt {
        Interrupt {
            state: Arc::new(watch::channel(false).0),
            ctrl_c: false,
        }
    }

    /// An interrupt that the process's SIGINT sets, once
    /// [`Interrupt::listen`] is called.
    pub fn ctrl_c() -> Interrupt {
        Interrupt {
            ctrl_c: true,
            ..Interrupt::new()
        }
    }

    /// Sets the interrupt: the query ends early.
    pub fn trigger(&self) {
        self.state.send_replace(true);
    }

    /// Resolves once the interrupt is set (at once if it is already).
    pub async fn triggered(&self) {
        let mut state = self.state.subscribe();
        if state.wait_for(|set| *set).await.is_err() {
            // The sender lives as long as `self`: this cannot happen, and
            // an interrupt that cannot come is one that never comes.
            std::future::pending::<()>().await;
        }
    }

    /// For an interrupt made by [`Interrupt::ctrl_c`]: from now on the
    /// first SIGINT sets it, and a second one ends the process at once
    /// with [`EXIT_INTERRUPTED`], for a user who will not wait for the
    /// summary. Until this is called SIGINT ends the process as usual, so
    /// call it only where a query starts. Needs a Tokio runtime.
    pub fn listen(&self) -> anyhow::Result<()> {
        self.wire(
            tokio::signal::unix::SignalKind::interrupt(),
            "listening for Ctrl-C",
        )
    }

    /// [`Interrupt::listen`] for SIGTERM, as a service manager stops a
    /// long-running command.
    pub fn listen_terminate(&self) -> anyhow::Result<()> {
        self.wire(
            tokio::signal::unix::SignalKind::terminate(),
            "listening for SIGTERM",
        )
    }

    /// Sets the interrupt on the first `kind` signal, and ends the process
    /// on the second.
    fn wire(&self, kind: tokio::signal::unix::SignalKind, what: &str) -> anyhow::Result<()> {
        if !self.ctrl_c {
            return Ok(());
        }
        // Installed before the task starts, so that no signal is lost.
        let mut signals = tokio::signal::unix::signal(kind).context(what.to_owned())?;
        let interrupt = self.clone();
        tokio::spawn(async move {
            if signals.recv().await.is_none() {
                return;
            }
            interrupt.trigger();
            if signals.recv().await.is_some() {
                std::process::exit(EXIT_INTERRUPTED.into());
            }
        });
        Ok(())
    }
}

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt::new()
    }
}

/// Where a command's output goes, and what kind of place that is.
pub struct Io<'a> {
    /// Results.
    pub out: &'a mut dyn Write,
    /// The summary and errors.
    pub err: &'a mut dyn Write,
    /// Host lines or an inventory, for `-`.
    pub stdin: &'a mut dyn std::io::Read,
    /// The terminal's width when `out` is one: tables are cut to it.
    pub width: Option<usize>,
    /// Whether stderr is a terminal, where a progress bar may be drawn
    /// (never with --quiet).
    pub progress: bool,
    /// --no-headers: tables and CSV without their header line.
    pub no_headers: bool,
    /// --quiet: no closing summary line.
    pub quiet: bool,
    /// Ends a fleet query early (Ctrl-C).
    pub interrupt: Interrupt,
    /// --buffer-budget: bytes that tables and JSON (or collect) may hold
    /// of the hosts in flight before no further host is asked; `None`
    /// for the command's default.
    pub buffer_budget: Option<usize>,
}

/// What tables and JSON may hold of the hosts in flight by default.
pub const OUTPUT_BUDGET: usize = 64 << 20;

/// What a fan-out into the store may hold by default: hosts wait for one
/// writer, and a few hundred waiting keep it busy.
pub const STORE_BUDGET: usize = 8 << 20;

impl Io<'_> {
    /// A printer for `hosts` hosts in `format`, without CSV's header row
    /// under --no-headers.
    pub fn printer(&self, format: Output, hosts: usize, template: &serde_json::Value) -> Printer {
        Printer::new(format, hosts, template).without_headers(self.no_headers)
    }

    /// The byte budget of a query: what tables and JSON may hold of the
    /// hosts in flight (--buffer-budget, else [`OUTPUT_BUDGET`]).
    pub fn budget(&self) -> Budget {
        self.budget_or(OUTPUT_BUDGET)
    }

    /// The byte budget of a query, `default` without --buffer-budget.
    pub fn budget_or(&self, default: usize) -> Budget {
        Budget::new(self.buffer_budget.unwrap_or(default))
    }

    /// Runs `call` on every host of `fleet` and hands each answer to
    /// `each` as it arrives, with the output flushed after each host (so
    /// that NDJSON and tables stream). Returns how the hosts fared. Once
    /// the interrupt is set, no further host is dialled and those in flight
    /// are abandoned: the answers that had arrived are handed on, and every
    /// host without an outcome is counted as cancelled.
    pub async fn fan_out<T, F, Fut>(
        &mut self,
        fleet: &Fleet,
        call: F,
        mut each: impl FnMut(&HostSpec, T, &mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<Summary>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let call = move |client: Client, _: Parts<Infallible, T>| call(client);
        let each = |host: &HostSpec, piece: Piece<Infallible, T>, out: &mut dyn Write| match piece {
            Piece::Part(never) => match never {},
            Piece::Done(answer) => each(host, answer, out),
        };
        self.fan_out_parts(fleet, Budget::unlimited(), call, each)
            .await
    }

    /// [`Io::fan_out`] for answers in parts: `call` sends parts (a batch
    /// of a listing) as it has them, and `each` gets every part as it
    /// arrives, output flushed after it, then the host's answer once it
    /// has ended well. No further host is dialled while what the callers
    /// charged to `budget` is over its limit (see [`Fleet::stream`]).
    pub async fn fan_out_parts<P, T, F, Fut>(
        &mut self,
        fleet: &Fleet,
        budget: Budget,
        call: F,
        mut each: impl FnMut(&HostSpec, Piece<P, T>, &mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<Summary>
    where
        P: Send + 'static,
        T: Send + 'static,
        F: Fn(Client, Parts<P, T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let start = Instant::now();
        let mut summary = Summary::start(fleet.len());
        let progress = Progress::new(self.progress && fleet.len() > 1, fleet.len());
        // The hosts with an outcome, by name and address.
        let mut done: HashMap<(String, String), usize> = HashMap::new();
        let out = &mut *self.out;
        let mut write = |host: &HostSpec, piece: Piece<P, T>| {
            progress.suspend(|| {
                each(host, piece, &mut *out)?;
                out.flush()?;
                anyhow::Ok(())
            })
        };
        let mut take = |item: Streamed<P, T>| {
            let outcome = match item {
                Streamed::Part { host, part } => return write(&host, Piece::Part(part)),
                Streamed::Done(outcome) => outcome,
            };
            summary.record(&outcome);
            progress.advance(summary.failed.len());
            let key = (outcome.host.name.clone(), outcome.host.address.clone());
            *done.entry(key).or_default() += 1;
            if let Ok(answer) = outcome.result {
                write(&outcome.host, Piece::Done(answer))?;
            }
            anyhow::Ok(())
        };
        let mut items = Box::pin(fleet.stream(budget, call));
        let interrupted = self.interrupt.triggered();
        tokio::pin!(interrupted);
        let mut cancelled = false;
        loop {
            let item = tokio::select! {
                biased;
                () = &mut interrupted => {
                    cancelled = true;
                    break;
                }
                item = items.next() => item,
            };
            match item {
                Some(item) => take(item)?,
                None => break,
            }
        }
        if cancelled {
            // What is already here is printed; nothing more is awaited.
            loop {
                let item = tokio::select! {
                    biased;
                    item = items.next() => item,
                    () = std::future::ready(()) => None,
                };
                match item {
                    Some(item) => take(item)?,
                    None => break,
                }
            }
        }
        // Dropping the stream abandons the hosts still in flight.
        drop(items);
        drop(progress);
        if cancelled {
            for host in fleet.hosts() {
                let key = (host.name.clone(), host.address.clone());
                match done.get_mut(&key) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => summary.cancel(host),
                }
            }
        }
        summary.finish(start.elapsed());
        Ok(summary)
    }
}

/// What [`Io::fan_out_parts`] hands on of a host: a part of its answer,
/// or, once it has ended well, the rest.
#[derive(Debug)]
pub enum Piece<P, T> {
    /// A part, as the host sent it.
    Part(P),
    /// What the call returned.
    Done(T),
}

/// Counts a host that answered as failed after all: it answered, but
/// refused what was asked of it (a signal without the operator role), so
/// the summary names it and the exit status is 2.
pub fn refused(summary: &mut Summary, host: &HostSpec, kind: &'static str, message: String) {
    summary.ok = summary.ok.saturating_sub(1);
    summary.failed.push(Failure {
        host: host.name.clone(),
        address: host.address.clone(),
        kind,
        message,
    });
}

/// Reports the hosts that failed on stderr, after the results: for a
/// single host just its error, as `error: ...` (or `cancelled: ...`); for
/// several the summary, or with `quiet` only the lines of the hosts that
/// failed or were cancelled.
pub fn report(summary: &Summary, quiet: bool, err: &mut dyn Write) -> io::Result<()> {
    if summary.total == 1 {
        for failure in &summary.failed {
            writeln!(err, "error: {}", failure.message)?;
        }
        for cancelled in &summary.cancelled {
            writeln!(err, "cancelled: {}", cancelled.message)?;
        }
        return Ok(());
    }
    let text = summary_text(summary);
    let text = match quiet {
        // The count line goes; the failed hosts' lines stay.
        true => text.split_once('\n').map_or("", |(_, failures)| failures),
        false => &text,
    };
    err.write_all(text.as_bytes())
}

/// `42 ok, 8 failed (2 timed out) in 3.2s`, then a line per failed host,
/// by name: `  web7 (192.0.2.17:7443): connection-refused: <message>`.
/// After Ctrl-C the count says `, 3 cancelled` as well, and the hosts
/// cancelled follow the failed ones, as `  web9 (...): cancelled: ...`.
pub fn summary_text(summary: &Summary) -> String {
    let mut text = format!("{} ok, {} failed", summary.ok, summary.failed.len());
    if summary.timed_out > 0 {
        text.push_str(&format!(" ({} timed out)", summary.timed_out));
    }
    if summary.was_cancelled() {
        text.push_str(&format!(", {} cancelled", summary.cancelled.len()));
    }
    text.push_str(&format!(" in {}\n", elapsed(summary.elapsed)));
    fn by_name(list: &[Failure]) -> Vec<&Failure> {
        let mut list: Vec<&Failure> = list.iter().collect();
        list.sort_by(|a, b| (&a.host, &a.address).cmp(&(&b.host, &b.address)));
        list
    }
    let listed = by_name(&summary.failed)
        .into_iter()
        .chain(by_name(&summary.cancelled));
    for f in listed {
        let who = if f.host == f.address {
            f.address.clone()
        } else {
            format!("{} ({})", f.host, f.address)
        };
        // Most messages start with the address, which `who` has just said.
        let message = f
            .message
            .strip_prefix(f.address.as_str())
            .map_or(f.message.as_str(), str::trim_start);
        text.push_str(&format!("  {who}: {}: {message}\n", f.kind));
    }
    text
}

/// A run's length as people read it: "850ms", "3.2s", "1m 4s".
fn elapsed(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A progress bar on stderr (hosts done of total, failures so far,
/// elapsed), or nothing. Cleared when dropped, so that the summary and
/// errors are never mixed into it.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(show: bool, total: usize) -> Progress {
        if !show {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("[{elapsed}] {bar:40} {pos}/{len} hosts{msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(Some(bar))
    }

    /// One more host done, `failed` failures so far.
    fn advance(&self, failed: usize) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
            if failed > 0 {
                bar.set_message(format!(", {failed} failed"));
            }
        }
    }

    /// Runs `f`, which writes results, with the bar out of the way.
    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(host: &str, address: &str, kind: &'static str, message: &str) -> Failure {
        Failure {
            host: host.to_owned(),
            address: address.to_owned(),
            kind,
            message: message.to_owned(),
        }
    }

    fn summary(ok: usize, failed: Vec<Failure>, timed_out: usize, ms: u64) -> Summary {
        Summary {
            total: ok + failed.len(),
            ok,
            failed,
            timed_out,
            cancelled: Vec::new(),
            elapsed: Duration::from_millis(ms),
        }
    }

    #[test]
    fn the_summary_counts_then_names_each_failed_host() {
        let s = summary(
            42,
            vec![
                failure(
                    "web7",
                    "192.0.2.17:7443",
                    "connection-refused",
                    "192.0.2.17:7443 refused the connection",
                ),
                failure(
                    "b:7443",
                    "b:7443",
                    "timeout",
                    "no answer from b:7443 within 3s",
                ),
            ],
            1,
            3240,
        );
        assert_eq!(
            summary_text(&s),
            "42 ok, 2 failed (1 timed out) in 3.2s\n  b:7443: timeout: no answer from b:7443 \
             within 3s\n  web7 (192.0.2.17:7443): connection-refused: refused the connection\n"
        );
        assert_eq!(
            summary_text(&summary(3, vec![], 0, 850)),
            "3 ok, 0 failed in 850ms\n"
        );
        assert_eq!(
            summary_text(&summary(3, vec![], 0, 64_000)),
            "3 ok, 0 failed in 1m 4s\n"
        );
    }

    #[test]
    fn a_single_host_reports_just_its_error() {
        let s = summary(
            0,
            vec![failure("a", "a:7443", "resolve", "cannot resolve a:7443")],
            0,
            5,
        );
        let mut err = Vec::new();
        report(&s, false, &mut err).expect("write");
        assert_eq!(err, b"error: cannot resolve a:7443\n");
        let mut err = Vec::new();
        report(&summary(1, vec![], 0, 5), false, &mut err).expect("write");
        assert!(err.is_empty());
        let mut err = Vec::new();
        report(&summary(2, vec![], 0, 5), false, &mut err).expect("write");
        assert_eq!(err, b"2 ok, 0 failed in 5ms\n");
        // Quiet: nothing when all went well, the failed hosts otherwise.
        let mut err = Vec::new();
        report(&summary(2, vec![], 0, 5), true, &mut err).expect("write");
        assert!(err.is_empty());
        let two = summary(
            1,
            vec![failure("b", "b:7443", "resolve", "cannot resolve b:7443")],
            0,
            5,
        );
        let mut err = Vec::new();
        report(&two, true, &mut err).expect("write");
        assert_eq!(err, b"  b (b:7443): resolve: cannot resolve b:7443\n");
    }

    #[test]
    fn exit_codes_say_who_failed() {
        let ok = Status::of(&summary(2, vec![], 0, 1));
        let failed = Status::of(&summary(
            1,
            vec![failure("a", "a:7443", "timeout", "slow")],
            1,
            1,
        ));
        assert_eq!(exit_code(&Ok(ok)), EXIT_OK);
        assert_eq!(exit_code(&Ok(failed)), EXIT_HOSTS_FAILED);
        assert_eq!(exit_code(&Err(anyhow::anyhow!("no CA"))), EXIT_ERROR);
        let pipe = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(exit_code(&Err(pipe.context("writing"))), EXIT_OK);
        assert_eq!((EXIT_OK, EXIT_ERROR, EXIT_HOSTS_FAILED), (0, 1, 2));
    }

    #[test]
    fn an_interrupt_stops_dialling_and_counts_the_hosts_left_as_cancelled() {
        use hostscope_client::fleet::{FleetOptions, Inventory};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (summary, addresses) = runtime.block_on(async {
            // Accepts TCP and never answers; with one host at a time, the
            // second host waits for the first.
            let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let silent_addr = silent.local_addr().expect("addr").to_string();
            let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let closed_addr = closed.local_addr().expect("addr").to_string();
            drop(closed);
            let hosts = Inventory::from_list(&format!("{silent_addr},{closed_addr}"))
                .expect("hosts")
                .hosts;
            let options = FleetOptions {
                concurrency: 1,
                timeout: Duration::from_secs(600),
                retries: 0,
                ..FleetOptions::default()
            };
            let fleet = Fleet::new(hosts, None, options);
            let interrupt = Interrupt::new();
            let trigger = interrupt.clone();
            let held = tokio::spawn(async move {
                let accepted = silent.accept().await;
                trigger.trigger();
                accepted
            });
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut io = Io {
                out: &mut out,
                err: &mut err,
                stdin: &mut std::io::empty(),
                width: None,
                progress: false,
                no_headers: false,
                quiet: false,
                interrupt,
                buffer_budget: Some(usize::MAX),
            };
            let call = |client: hostscope_client::Client| async move { client.host().await };
            let summary = io
                .fan_out(&fleet, call, |_, _, out| Ok(writeln!(out, "answer")?))
                .await
                .expect("no local error");
            held.await.expect("accept task").expect("accepted");
            (summary, (silent_addr, closed_addr))
        });
        let (silent_addr, closed_addr) = addresses;
        assert_eq!((summary.ok, summary.failed.len()), (0, 0), "{summary:?}");
        // The closed port was never dialled: it would have failed at once.
        let cancelled: Vec<&str> = summary
            .cancelled
            .iter()
            .map(|c| c.address.as_str())
            .collect();
        assert_eq!(cancelled, [silent_addr.as_str(), closed_addr.as_str()]);
        assert_eq!(Status::of(&summary), Status::Interrupted);
        assert_eq!(exit_code(&Ok(Status::Interrupted)), 130);
        let text = summary_text(&summary);
        assert!(
            text.starts_with("0 ok, 0 failed, 2 cancelled in "),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  {silent_addr}: cancelled: had not answered when the query was cancelled\n"
            )),
            "{text}"
        );
        let mut err = Vec::new();
        report(&summary, true, &mut err).expect("write");
        let quiet = String::from_utf8(err).expect("utf-8");
        assert_eq!(quiet.lines().count(), 2, "quiet still names them: {quiet}");
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no pipe here")));
    }
}
