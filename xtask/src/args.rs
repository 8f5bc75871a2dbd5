//! The command line, read into the [`Task`] it asks for: asking for help
//! anywhere wins, and each command takes its own arguments only.

use anyhow::{Context, Result, bail};

use crate::{fuzz, help::*};

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Task {
    /// Print this text.
    Help(&'static str),
    Demo {
        release: bool,
        keep: bool,
    },
    Ci,
    Bench(Bench),
    FleetSim(Vec<String>),
    InstallHooks,
    Dist,
    Deb,
    Xcheck(Vec<String>),
    Fuzz(fuzz::Args),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bench {
    Procs,
    Watch,
    Fleet,
    Sys,
    Sockets,
    /// The CLI's peak RSS and time over virtual fleets of these sizes.
    Fanout {
        hosts: Option<usize>,
    },
    /// `hostscope collect` against the same fan-out writing nothing, the
    /// collector's peak RSS over this many hosts, and the README's queries.
    Collect {
        hosts: Option<usize>,
    },
}

/// The most hosts `bench fanout --hosts N` simulates: each virtual host
/// holds a listening socket in the simulator, within its open-files limit.
pub const FANOUT_MAX: usize = 16_000;

/// Reads the command line (without the program name). Asking for help
/// anywhere wins, so that `--help` never starts a build.
pub fn parse(args: &[String]) -> Result<Task> {
    let is_help = |a: &String| a == "-h" || a == "--help";
    let Some((command, rest)) = args.split_first() else {
        return Ok(Task::Help(HELP));
    };
    let help = match command.as_str() {
        "-h" | "--help" => return Ok(Task::Help(HELP)),
        "help" => {
            return match rest {
                [] => Ok(Task::Help(HELP)),
                [command] => help_of(command)
                    .map(Task::Help)
                    .with_context(|| format!("no command {command:?}\n\n{HELP}")),
                _ => bail!("usage: cargo xtask help [COMMAND]"),
            };
        }
        other => help_of(other).with_context(|| format!("no command {other:?}\n\n{HELP}"))?,
    };
    if rest.iter().any(is_help) {
        return Ok(Task::Help(help));
    }
    let unexpected = |arg: &String| anyhow::anyhow!("unexpected argument {arg:?}\n\n{help}");
    Ok(match command.as_str() {
        "demo" => {
            if let Some(arg) = rest.iter().find(|a| *a != "--release" && *a != "--keep") {
                return Err(unexpected(arg));
            }
            Task::Demo {
                release: rest.iter().any(|a| a == "--release"),
                keep: rest.iter().any(|a| a == "--keep"),
            }
        }
        "bench" => match rest {
            [which, rest @ ..] if which == "fanout" || which == "collect" => {
                let hosts = match rest {
                    [] => None,
                    [flag, n] if flag == "--hosts" => n
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=FANOUT_MAX).contains(n))
                        .with_context(|| {
                            format!("--hosts takes a number from 1 to {FANOUT_MAX}, not {n:?}")
                        })
                        .map(Some)?,
                    [arg, ..] => return Err(unexpected(arg)),
                };
                Task::Bench(match which.as_str() {
                    "fanout" => Bench::Fanout { hosts },
                    _ => Bench::Collect { hosts },
                })
            }
            [which] => Task::Bench(match which.as_str() {
                "procs" => Bench::Procs,
                "watch" => Bench::Watch,
                "fleet" => Bench::Fleet,
                "sys" => Bench::Sys,
                "sockets" => Bench::Sockets,
                _ => return Err(unexpected(which)),
            }),
            _ => bail!("which benchmark?\n\n{help}"),
        },
        "fleet-sim" => Task::FleetSim(rest.to_vec()),
        "xcheck" => Task::Xcheck(rest.to_vec()),
        "fuzz" => Task::Fuzz(fuzz::parse(rest)?),
        "ci" | "install-hooks" | "dist" | "deb" => {
            if let Some(arg) = rest.first() {
                return Err(unexpected(arg));
            }
            match command.as_str() {
                "ci" => Task::Ci,
                "dist" => Task::Dist,
                "deb" => Task::Deb,
                _ => Task::InstallHooks,
            }
        }
        _ => unreachable!("help_of knows every command"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Task> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn help_anywhere_prints_help_and_runs_nothing() {
        for (line, text) in [
            ("", HELP),
            ("--help", HELP),
            ("-h", HELP),
            ("help", HELP),
            ("help demo", DEMO_HELP),
            ("demo --help", DEMO_HELP),
            ("demo --release -h", DEMO_HELP),
            ("ci --help", CI_HELP),
            ("bench --help", BENCH_HELP),
            ("bench procs --help", BENCH_HELP),
            ("bench sys --help", BENCH_HELP),
            ("fleet-sim --agents 10 --help", FLEET_SIM_HELP),
            ("install-hooks -h", INSTALL_HOOKS_HELP),
        ] {
            assert_eq!(parse_line(line).ok(), Some(Task::Help(text)), "{line:?}");
        }
    }

    #[test]
    fn commands_take_their_own_arguments_only() {
        let demo = |release, keep| Some(Task::Demo { release, keep });
        assert_eq!(parse_line("demo").ok(), demo(false, false));
        assert_eq!(parse_line("demo --release").ok(), demo(true, false));
        assert_eq!(parse_line("demo --keep --release").ok(), demo(true, true));
        assert!(parse_line("demo --kep").is_err());
        assert_eq!(
            parse_line("bench watch").ok(),
            Some(Task::Bench(Bench::Watch))
        );
        assert_eq!(parse_line("bench sys").ok(), Some(Task::Bench(Bench::Sys)));
        assert_eq!(
            parse_line("bench fanout").ok(),
            Some(Task::Bench(Bench::Fanout { hosts: None }))
        );
        assert_eq!(
            parse_line("bench fanout --hosts 500").ok(),
            Some(Task::Bench(Bench::Fanout { hosts: Some(500) }))
        );
        assert!(parse_line("bench fanout --hosts 0").is_err());
        assert_eq!(
            parse_line("bench collect").ok(),
            Some(Task::Bench(Bench::Collect { hosts: None }))
        );
        assert_eq!(
            parse_line("bench collect --hosts 2000").ok(),
            Some(Task::Bench(Bench::Collect { hosts: Some(2000) }))
        );
        assert!(parse_line("bench collect --hosts 20000").is_err());
        assert!(parse_line("bench fanout --hosts 100000").is_err());
        assert_eq!(
            parse_line("bench fanout --hosts 10000").ok(),
            Some(Task::Bench(Bench::Fanout {
                hosts: Some(10_000)
            }))
        );
        assert_eq!(
            parse_line("fleet-sim --agents 3 --dir d").ok(),
            Some(Task::FleetSim(
                ["--agents", "3", "--dir", "d"].map(String::from).to_vec()
            ))
        );
        for line in [
            "demo --relase",
            "ci now",
            "bench",
            "bench all",
            "install-hooks x",
            "deploy",
            "help deploy",
        ] {
            assert!(parse_line(line).is_err(), "{line:?} was accepted");
        }
    }
}
