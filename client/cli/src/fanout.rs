//! Asking every target host: results printed as each host answers, a
//! progress bar while they come in, and the summary and exit status at the
//! end.

use std::{
    future::Future,
    io::{self, Write},
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_stream::StreamExt;

use super::{args::Output, output::Printer};
use hostscope_client::{
    Client, Error,
    fleet::{Failure, Fleet, HostSpec, Summary},
};

/// Every host answered.
pub const EXIT_OK: u8 = 0;
/// A usage or local error: bad flags, unreadable certificates or inventory.
pub const EXIT_ERROR: u8 = 1;
/// One or more hosts failed; the others' results were printed.
pub const EXIT_HOSTS_FAILED: u8 = 2;

/// How a command ended, short of a local error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every host answered (or there was no host to ask, as for `pki`).
    Answered,
    /// At least one host failed.
    SomeFailed,
}

impl Status {
    /// The status of a fleet query.
    pub fn of(summary: &Summary) -> Status {
        if summary.all_ok() {
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
}

impl Io<'_> {
    /// A printer for `hosts` hosts in `format`, without CSV's header row
    /// under --no-headers.
    pub fn printer(&self, format: Output, hosts: usize, template: &serde_json::Value) -> Printer {
        Printer::new(format, hosts, template).without_headers(self.no_headers)
    }

    /// Runs `call` on every host of `fleet` and hands each answer to
    /// `each` as it arrives, with the output flushed after each host (so
    /// that NDJSON and tables stream). Returns how the hosts fared.
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
        let start = Instant::now();
        let mut summary = Summary::start(fleet.len());
        let progress = Progress::new(self.progress && fleet.len() > 1, fleet.len());
        let outcomes = fleet.run(call);
        tokio::pin!(outcomes);
        while let Some(outcome) = outcomes.next().await {
            summary.record(&outcome);
            progress.advance(summary.failed.len());
            if let Ok(answer) = outcome.result {
                let out = &mut *self.out;
                progress.suspend(|| {
                    each(&outcome.host, answer, out)?;
                    out.flush()?;
                    anyhow::Ok(())
                })?;
            }
        }
        drop(progress);
        summary.finish(start.elapsed());
        Ok(summary)
    }
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
/// single host just its error, as `error: ...`; for several the summary,
/// or with `quiet` only the lines of the hosts that failed.
pub fn report(summary: &Summary, quiet: bool, err: &mut dyn Write) -> io::Result<()> {
    if summary.total == 1 {
        for failure in &summary.failed {
            writeln!(err, "error: {}", failure.message)?;
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
pub fn summary_text(summary: &Summary) -> String {
    let mut text = format!("{} ok, {} failed", summary.ok, summary.failed.len());
    if summary.timed_out > 0 {
        text.push_str(&format!(" ({} timed out)", summary.timed_out));
    }
    text.push_str(&format!(" in {}\n", elapsed(summary.elapsed)));
    let mut failed: Vec<_> = summary.failed.iter().collect();
    failed.sort_by(|a, b| (&a.host, &a.address).cmp(&(&b.host, &b.address)));
    for f in failed {
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
    fn broken_pipes_are_recognised_through_context() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no pipe here")));
    }
}
