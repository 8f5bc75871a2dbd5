//! The help texts: `cargo xtask --help` and each command's, which
//! `--help` prints without building anything.

pub const HELP: &str = "\
cargo xtask <command> [options]

Commands:
  demo [--release] [--keep]
                       make a throwaway PKI, start an agent on 127.0.0.1 with
                       mutual TLS, and query it with `hostscope host`, `ps`,
                       `nics` (and a zombie it makes for the occasion)
  ci                   what .ci/run runs: fmt check, clippy, the tests
  bench procs|watch|fleet|sys|sockets|fanout|collect
                       benchmarks against their floors; see `cargo xtask bench
                       --help`
  fleet-sim [ARGS]     real agents on 127.0.0.1 and an inventory file for them;
                       see `cargo xtask fleet-sim --help`
  install-hooks        a git pre-commit hook that runs fmt and clippy
  dist                 release binaries, and their shell completions and man
                       pages in target/dist
  deb                  dist, then the Debian package (cargo-deb) in target/dist
  xcheck [--target T]  clippy -D warnings for FreeBSD, OpenBSD, NetBSD and macOS
                       (x86_64 and aarch64) on this machine
  fuzz [--time SECS] [TARGET]...
                       libFuzzer on the request handlers, parsers, decoders
                       and TOML files (nightly, cargo-fuzz); see `cargo xtask
                       fuzz --help`
  help [COMMAND]       this text, or a command's

`cargo xtask COMMAND --help` prints a command's help without building
anything. Build output goes to cargo's target directory: CARGO_TARGET_DIR
(or build.target-dir) is honoured.
";

pub const DEMO_HELP: &str = "\
cargo xtask demo [--release] [--keep]

Builds hostscope-agent and hostscope, makes a throwaway PKI in
TARGET/demo/pki, starts an agent on a free port of 127.0.0.1 with mutual TLS,
queries it with `hostscope host`, `ps`, `ps --status zombie` (with a zombie
made for the occasion) and `nics`, and stops it with SIGTERM. With --keep the
agent keeps serving, and the demo prints the commands that query it, until
Ctrl-C.

TARGET is cargo's target directory (CARGO_TARGET_DIR, if set).

Options:
  --release   build and run the release binaries
  --keep      keep the agent running until Ctrl-C, for queries of your own
  -h, --help  this text
";

pub const CI_HELP: &str = "\
cargo xtask ci

What .ci/run runs: cargo fmt --check, cargo clippy --workspace
--all-targets -- -D warnings, cargo test --workspace.
";

pub const BENCH_HELP: &str = "\
cargo xtask bench procs|watch|fleet|sys|sockets|fanout|collect [--hosts N]

  procs   the agent's process collection against the floor (the kernel's
          cost of the same /proc reads) with 2,000 extra sleeping
          processes, and one `hostscope ps` end to end split into start,
          setup, connect and listing, against the floor and psutil's
          process_iter; prints medians and ratios
  watch   delay from a process's exit to its EXITED event at a watching
          client over mTLS, against the agent's own event source; p50/p99
          and agent CPU per 1,000 processes
  fleet   `hostscope host` and `hostscope ps` against a simulated fleet of
          1,000 agents, fresh processes (so fresh mTLS connections) each
          run, against the floor of a TCP connect and mutual-TLS handshake
          to every host; prints medians, hosts per second, the client's
          peak RSS and ratios
  fanout  the CLI's peak RSS (wait4) and wall time for `hostscope host` and
          `hostscope ps --fields pid,name,status -o ndjson` over 500 and
          10,000 virtual hosts (--hosts N: that many only, at most 16,000):
          one simulator process, a listener with real mutual TLS on each of
          127.1.0.1 onwards, each listing 600 processes from a canned copy
          of this machine's; stdout to a drained pipe and to /dev/null;
          time per host, and the goals met or not
  collect `hostscope collect` over 1,000 virtual hosts x 200 processes into
          SQLite and into a throwaway PostgreSQL cluster (initdb as nobody,
          a Unix socket only, killed when the bench ends), each against
          the same fan-out writing nothing (`ps --fields <collect's> -o
          ndjson > /dev/null`), fresh processes, 5 interleaved rounds; 30
          snapshots into one SQLite file, then the README's example
          queries over them with `hostscope sql`; then collect's peak RSS
          into SQLite over 10,000 virtual hosts (--hosts N: that many, at
          most 16,000); the goals met or not
  sys     GetSystem (every figure but the measured ones) and ListDisks
          over mTLS, and the agent's backend in process, against psutil's
          in-process calls for the same figures; prints medians, ratios
          and the agent's CPU time per snapshot
  sockets ListConnections (kind all, with pids) over mTLS, and the agent's
          backend in process, with 10,000 extra sockets on loopback (a
          child's 5,000 connected TCP pairs), against psutil's in-process
          net_connections('all'); prints medians and ratios

Release builds, in cargo's target directory (CARGO_TARGET_DIR, if set).
";

pub const FLEET_SIM_HELP: &str = "\
cargo xtask fleet-sim --agents N [options]

Builds and runs hostscope-fleet-sim (release): N real agents on 127.0.0.1,
each with its own certificate and port, plus broken hosts, and an
inventory file naming them all.

Options (passed on to hostscope-fleet-sim):
  --agents N        real agent servers, the --wrong-ca ones included
  --closed N        extra inventory entries whose port is closed
  --silent N        extra inventory entries that accept TCP and never answer
  --wrong-ca N      how many agents present a certificate from another CA
  --dir DIR         where the PKI (DIR/pki) and the inventory
                    (DIR/inventory.toml) go [default: TARGET/fleet-sim]
  --duration TIME   stop after this long (90s, 10m) [default: 60s]
  -h, --help        this text

TARGET is cargo's target directory (CARGO_TARGET_DIR, if set).
";

pub const XCHECK_HELP: &str = "\
cargo xtask xcheck [--target TARGET]

Runs `clippy --workspace --all-targets -- -D warnings` for another OS on
this Linux machine (../shared/tools/xcheck, or $XCHECK: the nightly toolchain
builds std from source), for every target or those named:
x86_64-unknown-freebsd, x86_64-unknown-openbsd, x86_64-unknown-netbsd,
x86_64-apple-darwin, aarch64-apple-darwin. The integration test crate,
which drives real agents with Linux-only calls, is left out: it is linted
on Linux only. The Apple targets build ring's C with clang (installed
with apt-get if missing) and a stub SDK. Output goes to TARGET/xcheck.
Nothing links or runs.
";

pub const DIST_HELP: &str = "\
cargo xtask dist

Builds hostscope-agent and hostscope in release and writes their shell
completions (bash, zsh, fish) and man pages to target/dist.
";

pub const DEB_HELP: &str = "\
cargo xtask deb

`cargo xtask dist`, then the Debian package of both binaries, the systemd
unit, an example configuration, completions and man pages (cargo-deb) in
target/dist.
";

pub const FUZZ_HELP: &str = "\
cargo xtask fuzz [--time SECS] [--update-corpus] [TARGET]...

Builds the cargo-fuzz targets of fuzz/ with nightly (installing cargo-fuzz
if missing) and runs each named target, or every one, for SECS seconds
[default: 60], starting from the committed corpus fuzz/corpus/TARGET:
  service        every HostInspector request, decoded from the bytes and
                 handled by the service over a fake backend
  glob           the process name glob matcher, against the glob crate's
                 Pattern on short inputs, for time on long ones
  proc_parsers   the /proc parsers (stat, status, statm, io, cmdline, net,
                 proc_event, system)
  bsd_decoders   the BSD and macOS record decoders (FreeBSD, OpenBSD,
                 NetBSD, macOS, kqueue events, media words, sockaddrs)
  inventory      the inventory TOML, --hosts lists and address files
  profile        the client profile TOML
The run's corpus lives in TARGET/fuzz/corpus; with --update-corpus it is
minimised (cargo fuzz cmin) into fuzz/corpus/TARGET. Crashing inputs go to
fuzz/artifacts/TARGET and fail the command. `cargo test` replays every
committed corpus file without nightly.
";

pub const INSTALL_HOOKS_HELP: &str = "\
cargo xtask install-hooks

Installs a git pre-commit hook that runs cargo fmt --check and cargo clippy.
";

/// The help text of `command`, if it is one.
pub fn help_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "demo" => DEMO_HELP,
        "ci" => CI_HELP,
        "bench" => BENCH_HELP,
        "fleet-sim" => FLEET_SIM_HELP,
        "install-hooks" => INSTALL_HOOKS_HELP,
        "dist" => DIST_HELP,
        "deb" => DEB_HELP,
        "xcheck" => XCHECK_HELP,
        "fuzz" => FUZZ_HELP,
        _ => return None,
    })
}
