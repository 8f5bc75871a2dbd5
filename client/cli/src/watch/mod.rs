//! `hostscope watch`: process events from one host or a whole fleet, one
//! line (or one JSON object) each, the moment they arrive, until Ctrl-C,
//! `--count` or `--for` ends the watch.
//!
//! The flags are checked and resolved into a [`Plan`] (ripgrep's second
//! stage, in [`plan`]) before any host is asked. [`Fleet::watch`] merges
//! the hosts' streams and reconnects by itself; [`run`] prints what it
//! yields (each event as [`print`] writes it) and decides when to stop:
//! [`follow`] takes any stream of [`WatchItem`]s and any stop signal, so
//! that its rules are tested without agents.
//!
//! [`WatchItem`]: hostscope_client::fleet::WatchItem

use std::future::Future;

use anyhow::Context;

use super::{
    args::{Output, WatchArgs},
    fanout::{Io, Status},
};
use hostscope_client::fleet::Fleet;

mod plan;
mod print;
mod run;
#[cfg(test)]
mod testing;

use self::{
    plan::Plan,
    run::{Hosts, follow},
};

/// Watches every host of `fleet` as `args` asks and prints each event as
/// it arrives, until Ctrl-C or SIGTERM (whose handlers stay installed in
/// the process afterwards, as Tokio's do), `--count` or `--for`. Returns
/// `SomeFailed` when a host refused the watch.
pub async fn watch(
    fleet: &Fleet,
    args: WatchArgs,
    output: Option<Output>,
    io: &mut Io<'_>,
) -> anyhow::Result<Status> {
    let plan = Plan::resolve(&args, output)?;
    let stop = stop_signal()?;
    let hosts = Hosts {
        total: fleet.len(),
        width: (fleet.len() > 1).then(|| fleet.hosts().map(|h| h.name.len()).max().unwrap_or(0)),
    };
    let items = fleet.watch(plan.request.clone());
    follow(items, stop, &plan, &hosts, io).await
}

/// Resolves when the user asks the watch to end: Ctrl-C (SIGINT) or
/// SIGTERM. The handlers are installed before any host is asked, so that
/// a signal that comes early is not lost.
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
