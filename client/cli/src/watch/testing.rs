//! What the watch's tests share: events at a known time, and plans from
//! flags as typed.

use clap::Parser;

use super::plan::Plan;
use crate::args::{Cli, Command, Output, WatchArgs};
use hostscope_client::proto::{self, ProcessEventKind as Kind};

/// An event at 18:04:05.123 local time, give or take the zone.
pub(super) const TIME: f64 = 1_767_632_645.123;

pub(super) fn event(kind: Kind, pid: u32, name: &str) -> proto::ProcessEvent {
    proto::ProcessEvent {
        kind: kind as i32,
        pid,
        time: TIME,
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

fn args(extra: &[&str]) -> (WatchArgs, Option<Output>) {
    let mut all = vec!["hostscope", "watch"];
    all.extend(extra);
    let cli = Cli::try_parse_from(all).expect("valid flags");
    match cli.command {
        Command::Watch(args) => (args, cli.global.output),
        other => panic!("parsed as {other:?}"),
    }
}

pub(super) fn plan(extra: &[&str]) -> anyhow::Result<Plan> {
    let (args, output) = args(extra);
    Plan::resolve(&args, output)
}
