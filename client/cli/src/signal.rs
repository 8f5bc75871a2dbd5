//! `hostscope signal PID SIGNAL`: one signal to one process on one host,
//! like `kill`, and the agent's refusals in plain words.

use anyhow::bail;

use super::{
    args::{Output, SignalArgs},
    fanout::{self, Io},
    format, output,
};
use hostscope_client::{
    Client, Error,
    fleet::{Fleet, HostSpec, Summary},
    proto::{self, ProcessField},
};

/// What the agent said to a signal request it answered.
enum Answer {
    /// The signal was sent.
    Sent(proto::SignalProcessResponse),
    /// The agent refused, or failed, and said why: the error's stable
    /// label and its explanation in plain words.
    Refused { kind: &'static str, text: String },
}

/// Sends the signal on the one host the targets name. The agent's refusal
/// is the host's failure: it goes to stderr in plain words, with exit
/// status 2.
pub async fn signal(
    fleet: &Fleet,
    args: SignalArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    if fleet.len() != 1 {
        let names: Vec<&str> = fleet.hosts().map(|h| h.name.as_str()).collect();
        bail!(
            "signal acts on one host, and the targets name {} ({}): pick one with --host",
            names.len(),
            names.join(", ")
        );
    }
    let SignalArgs {
        pid,
        signal,
        expect_create_time,
        ..
    } = args;
    let call = move |client: Client| {
        let signal = signal.clone();
        async move { send(&client, pid, &signal, expect_create_time).await }
    };
    let template = output::record("", &proto::SignalProcessResponse::default())?;
    let mut printer = io
        .printer(format, fleet.len(), &template)
        .one_record_per_host();
    let mut refusals: Vec<(HostSpec, &'static str, String)> = Vec::new();
    let mut summary = io
        .fan_out(fleet, call, |host, answer: Answer, out| {
            match answer {
                Answer::Sent(sent) if printer.is_table() => writeln!(
                    out,
                    "sent {} ({}) to pid {}",
                    sent.signal, sent.signal_number, sent.pid
                )?,
                Answer::Sent(sent) => printer.records(out, [output::record(&host.name, &sent)])?,
                Answer::Refused { kind, text } => {
                    refusals.push((host.clone(), kind, format!("{}: {text}", host.name)));
                }
            }
            Ok(())
        })
        .await?;
    printer.finish(io.out)?;
    for (host, kind, text) in refusals {
        fanout::refused(&mut summary, &host, kind, text);
    }
    Ok(summary)
}

/// Sends the signal. Unreachable agents stay errors, so that the fleet
/// retries them; an answer, even a refusal, is final.
async fn send(
    client: &Client,
    pid: u32,
    signal: &str,
    expected_create_time: Option<f64>,
) -> Result<Answer, Error> {
    match client.signal(pid, signal, expected_create_time).await {
        Ok(sent) => Ok(Answer::Sent(sent)),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => Ok(Answer::Refused {
            kind: e.label(),
            text: explain(client, &e).await,
        }),
    }
}

/// A refused signal in plain words, saying what to do instead. Asks the
/// agent once more where that helps (the zombie's parent's name, the
/// reused pid's new start time); the answer is a nicety, so a failed
/// look-up just leaves it out.
async fn explain(client: &Client, e: &Error) -> String {
    match e {
        Error::ZombieProcess { pid, ppid, .. } => match *ppid {
            Some(1) => format!(
                "pid {pid} is a zombie whose parent is pid 1 (init): only init can reap it, and \
                 the agent never signals pid 1"
            ),
            Some(ppid) => {
                let name = client
                    .process(ppid, &[ProcessField::Name])
                    .await
                    .ok()
                    .and_then(|p| p.name().ok().map(|n| format!(" ({n})")))
                    .unwrap_or_default();
                format!(
                    "pid {pid} is a zombie: only its parent can reap it — signal its parent \
                     {ppid}{name} instead, e.g. hostscope signal {ppid} CHLD"
                )
            }
            None => format!(
                "pid {pid} is a zombie: only its parent can reap it — signal its parent instead \
                 (hostscope proc {pid} --fields ppid names it)"
            ),
        },
        Error::PidReused { pid, message } => {
            let started = client
                .process(*pid, &[ProcessField::CreateTime])
                .await
                .ok()
                .and_then(|p| p.create_time().ok());
            match started {
                Some(t) => format!(
                    "pid {pid} was reused: it now belongs to another process (started at {}, \
                     create_time {t}); nothing was sent",
                    format::datetime(t)
                ),
                None => format!(
                    "pid {pid} was reused: it now belongs to another process ({message}); \
                     nothing was sent"
                ),
            }
        }
        other => plain(other),
    }
}

/// An agent's refusal, or a failure, in plain words, for the errors that
/// need no further look-up to explain.
pub fn plain(e: &Error) -> String {
    match e {
        Error::OperatorRequired { message } => operator_required(message),
        Error::ProtectedProcess { pid, message } => format!(
            "pid {pid} is protected: the agent never signals pid 0, pid 1 or itself ({message})"
        ),
        Error::NoSuchProcess { pid: Some(pid) } => {
            format!("no such process: pid {pid} does not exist (any more)")
        }
        Error::AccessDenied { message, .. } => format!(
            "the agent may not signal that process (it must run as the process's user, or as \
             root): {message}"
        ),
        Error::InvalidArgument { message } => format!("the agent refused: {message}"),
        other => other.to_string(),
    }
}

/// What to do when the agent says the operator role is needed: the same
/// sentence for `signal` and for `zombies --reap`.
pub fn operator_required(message: &str) -> String {
    format!(
        "the agent refused: signalling needs the operator role — start the agent with \
         --operator <your certificate's name> (or list it in [authz] operators); the agent \
         said: {message}"
    )
}
