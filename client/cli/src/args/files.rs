//! `hostscope files`'s flags as typed and its `--help` text: the first
//! stage for `crate::files`.

use clap::Args;

use crate::args::{self, Targets};

/// The help's closing part.
pub const EXAMPLES: &str = "\
By default only regular files are listed, as psutil's Process.open_files lists them; a file
deleted while open (its disk space not yet given back) is listed too, marked (deleted).
--all-kinds lists every descriptor, as `ls -l /proc/PID/fd` shows them: directories,
devices, sockets, pipes and anonymous inodes (eventfd, epoll, ...). Columns: PID, NAME (with
-p), FD, MODE (psutil's: r, w, a, r+, a+), POS (the file offset in bytes), KIND (file,
directory, device, socket, pipe, anon_inode, other) and PATH; a fleet adds HOST. -o json,
ndjson and csv give a record per descriptor with its open flags as well.

--path matches the whole path, and `*` crosses `/`: /var/log/*.log also matches
/var/log/nginx/access.log. Processes whose descriptors the agent may not read (it needs root,
or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, for other users' processes) and pids given to
--pid that do not exist are named on stderr; the others are listed all the same.

Examples:
  hostscope files --pid 4242
  hostscope files --pid 4242,4243 --all-kinds
  hostscope --inventory fleet.toml files --path /var/log/app.log -p
  hostscope --inventory fleet.toml files --deleted -p
  hostscope --hosts web1,web2 files --path '/var/lib/postgresql/*' -o csv";

/// What `hostscope files` takes, as typed.
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Only these processes, comma-separated or repeated [default: every process].
    #[arg(long, value_name = "PID", value_delimiter = ',', value_parser = args::parse_pid, allow_negative_numbers = true)]
    pub pid: Vec<u32>,

    /// Only files whose path matches this shell glob ("/var/log/*.log").
    #[arg(long, value_name = "GLOB", value_parser = args::parse_glob)]
    pub path: Option<String>,

    /// Every kind of descriptor (sockets, pipes, devices, directories, anonymous inodes),
    /// not only regular files.
    #[arg(long)]
    pub all_kinds: bool,

    /// Only files deleted while open: space a disk gives back once they are closed.
    #[arg(long)]
    pub deleted: bool,

    /// Show each process's name (NAME), asked of the agent in a second call.
    #[arg(long, short = 'p')]
    pub names: bool,

    #[command(flatten)]
    pub targets: Targets,
}
