//! The layering rules of DESIGN.md, checked on the source tree so that a
//! plain `cargo test` catches a break (rust-analyzer's `tidy.rs`):
//! backends never see tonic, prost or the generated types, and the agent
//! and the client never depend on each other. And two rules of the tests
//! themselves: no test runs cargo, and a test that skips says so through
//! `hostscope_integration::skip!`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The workspace's root directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/integration lives two levels below the root")
        .to_owned()
}

// === backends speak plain Rust ===

/// What a backend must not name: the gRPC stack and the generated types.
const FOREIGN_TO_BACKENDS: [&str; 4] = ["tonic", "prost", "hostscope_proto", "hostscope-proto"];

/// The places (`line: name`) where `code` names one of `names` as a path
/// or crate: `tonic::`, `prost_types`, `use hostscope_proto`; not
/// `prosthetic`, and not in `//` comments, which may well say that
/// backends never see tonic.
fn names_in(code: &str, names: &[&str]) -> Vec<String> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let code = line.split_once("//").map_or(line, |(code, _)| code);
        for name in names {
            for (at, _) in code.match_indices(name) {
                let before = code[..at].chars().next_back();
                let after = code[at + name.len()..].chars().next();
                let starts_a_word = !before.is_some_and(word);
                // `tonic_types` and `prost_derive` name the same stack.
                let ends_a_name = !after.is_some_and(|c| c.is_alphanumeric() || c == '-');
                if starts_a_word && ends_a_name {
                    found.push(format!("{}: {name}", n + 1));
                }
            }
        }
    }
    found
}

#[test]
fn backends_never_name_tonic_prost_or_the_generated_types() {
    let backend = root().join("agent/src/backend");
    let files = sources(&backend);
    assert!(
        files.len() > 3,
        "no backend sources in {}",
        backend.display()
    );
    let mut offences = Vec::new();
    for file in files {
        let code = std::fs::read_to_string(&file).expect("a source file");
        let shown = file.strip_prefix(root()).unwrap_or(&file).display();
        offences.extend(
            names_in(&code, &FOREIGN_TO_BACKENDS)
                .into_iter()
                .map(|place| format!("{shown}:{place}")),
        );
    }
    assert!(
        offences.is_empty(),
        "backends return plain Rust structs; the service layer converts them \
         (DESIGN.md). Found:\n  {}",
        offences.join("\n  ")
    );
}

#[test]
fn names_in_finds_paths_and_crates_but_not_words_or_comments() {
    let code = "use tonic::Status;\n\
                let x = prost_types::Timestamp::default(); // prost\n\
                // tonic is never seen here\n\
                let prosthetic = tonicity;\n\
                use hostscope_proto as pb;\n";
    assert_eq!(
        names_in(code, &FOREIGN_TO_BACKENDS),
        ["1: tonic", "2: prost", "5: hostscope_proto"]
    );
}

// === the agent and the client stay apart ===

/// The agent's side and the client's side of the workspace: no crate of
/// one may depend on a crate of the other, directly or through another
/// workspace crate, in any kind of dependency.
const AGENT_SIDE: [&str; 1] = ["hostscope-agent"];
const CLIENT_SIDE: [&str; 2] = ["hostscope-client", "hostscope-cli"];

/// Every workspace member's package name and the workspace packages it
/// depends on (normal, dev and build dependencies, target-specific ones
/// included), read from the manifests.
fn workspace_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let read = |path: &Path| -> toml::Table {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        toml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
    };
    let workspace = read(&root.join("Cargo.toml"));
    let members: Vec<&str> = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let manifests: Vec<toml::Table> = members
        .iter()
        .map(|m| read(&root.join(m).join("Cargo.toml")))
        .collect();
    let names: BTreeSet<String> = manifests
        .iter()
        .filter_map(|m| m["package"]["name"].as_str().map(str::to_owned))
        .collect();
    // A dependency is named by its key, or by `package = "..."` when
    // renamed, in the member's table or in the workspace's.
    let package_of = |key: &str, spec: &toml::Value| -> String {
        let renamed = |spec: &toml::Value| spec.get("package")?.as_str().map(str::to_owned);
        let inherited = spec.get("workspace").and_then(|w| w.as_bool()) == Some(true);
        let in_workspace = workspace["workspace"]
            .get("dependencies")
            .and_then(|deps| deps.get(key));
        renamed(spec)
            .or_else(|| in_workspace.filter(|_| inherited).and_then(renamed))
            .unwrap_or_else(|| key.to_owned())
    };
    let tables = |manifest: &toml::Table| -> Vec<toml::Table> {
        let kinds = ["dependencies", "dev-dependencies", "build-dependencies"];
        let mut tables: Vec<toml::Table> = kinds
            .iter()
            .filter_map(|k| manifest.get(*k)?.as_table().cloned())
            .collect();
        for target in manifest
            .get("target")
            .and_then(|t| t.as_table())
            .into_iter()
            .flat_map(|t| t.values())
        {
            tables.extend(
                kinds
                    .iter()
                    .filter_map(|k| target.get(*k)?.as_table().cloned()),
            );
        }
        tables
    };
    manifests
        .iter()
        .filter_map(|manifest| {
            let name = manifest["package"]["name"].as_str()?.to_owned();
            let deps = tables(manifest)
                .iter()
                .flat_map(|table| table.iter().map(|(key, spec)| package_of(key, spec)))
                .filter(|dep| names.contains(dep))
                .collect();
            Some((name, deps))
        })
        .collect()
}

/// Every workspace package `from` reaches through its dependencies.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut next = vec![from.to_owned()];
    while let Some(name) = next.pop() {
        for dep in graph.get(&name).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                next.push(dep.clone());
            }
        }
    }
    seen
}

/// The pairs (from, to) where one side reaches the other.
fn crossings(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (sources, targets) in [
        (&AGENT_SIDE[..], &CLIENT_SIDE[..]),
        (&CLIENT_SIDE, &AGENT_SIDE),
    ] {
        for from in sources.iter().filter(|s| graph.contains_key(**s)) {
            let reached = reachable(graph, from);
            for to in targets.iter().filter(|t| reached.contains(**t)) {
                found.push(((*from).to_owned(), (*to).to_owned()));
            }
        }
    }
    found
}

#[test]
fn the_agent_and_the_client_never_depend_on_each_other() {
    let graph = workspace_graph(&root());
    // The check reads the real manifests: both sides are there, and the
    // shared proto crate is seen as a dependency of each.
    for side in ["hostscope-agent", "hostscope-client"] {
        assert!(
            graph
                .get(side)
                .is_some_and(|deps| deps.contains("hostscope-proto")),
            "{side} -> hostscope-proto not found in {graph:?}"
        );
    }
    assert_eq!(
        crossings(&graph),
        [],
        "the agent and the client depend only on hostscope-proto (DESIGN.md)"
    );
}

#[test]
fn a_crossing_through_another_crate_is_found() {
    let edge = |from: &str, to: &[&str]| {
        let to = to.iter().map(|t| (*t).to_owned()).collect();
        (from.to_owned(), to)
    };
    let graph = BTreeMap::from([
        edge("hostscope-agent", &["hostscope-proto", "middle"]),
        edge("middle", &["hostscope-client"]),
        edge("hostscope-client", &["hostscope-proto"]),
        edge("hostscope-proto", &[]),
    ]);
    assert_eq!(
        crossings(&graph),
        [("hostscope-agent".to_owned(), "hostscope-client".to_owned())]
    );
}

// === unsafe code stays where the kernel leaves no choice ===

/// The crates that ship: each of their crate roots denies `unsafe_code`.
const SHIPPED: [&str; 4] = ["proto", "agent", "client", "client/cli"];

/// The places allowed `unsafe`, as `file: item` where the `#[allow]`
/// stands and the file whose code uses it: kernel interfaces of the BSDs
/// and macOS that neither rustix nor nix wraps (sysctl by number,
/// getifaddrs with raw socket addresses, SIOCGIFMEDIA, libproc,
/// mach_timebase_info), Linux's ioprio_get(2) (psutil's `ionice`, which
/// neither wraps either), and glibc's malloc_trim, which gives the memory
/// of ended listings back to the system. Growing this list is a decision,
/// not a drive-by.
const UNSAFE_ALLOWED: [(&str, &str); 3] = [
    (
        "agent/src/backend/linux/sys.rs",
        "agent/src/backend/linux/sys.rs",
    ),
    ("agent/src/backend/mod.rs", "agent/src/backend/bsd_sys.rs"),
    ("agent/src/service/budget.rs", "agent/src/service/budget.rs"),
];

/// Whether `code` has `word` as a whole token outside `//` comments.
fn lines_with_token(code: &str, word: &str) -> Vec<usize> {
    code.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split_once("//").map_or(*line, |(code, _)| code);
            code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|token| token == word)
        })
        .map(|(n, _)| n + 1)
        .collect()
}

/// The crate roots of a package directory: `src/lib.rs`, `src/main.rs`,
/// `src/bin/*.rs`, and the files directly in `tests/` and `benches/`.
fn crate_roots(package: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|f| package.join(f))
        .filter(|f| f.is_file())
        .collect();
    for dir in ["src/bin", "tests", "benches"] {
        if let Ok(entries) = std::fs::read_dir(package.join(dir)) {
            roots.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "rs")),
            );
        }
    }
    roots.sort();
    roots
}

/// Every `.rs` file below `dir`, symbolic links and `fixtures` left out
/// (a fixture process's `root` links to `/`).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let (path, kind) = (entry.path(), entry.file_type().expect("a file type"));
            if kind.is_dir() && entry.file_name() != "fixtures" {
                dirs.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn shipped_crates_deny_unsafe_code_but_where_the_kernel_leaves_no_choice() {
    let root = root();
    let shown = |path: &Path| {
        path.strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut missing = Vec::new();
    let mut allows = Vec::new();
    let mut users = BTreeSet::new();
    for package in SHIPPED {
        let package = root.join(package);
        let roots = crate_roots(&package);
        assert!(!roots.is_empty(), "no crate root in {}", package.display());
        for file in roots {
            let code = std::fs::read_to_string(&file).expect("a source file");
            let denies = code.lines().any(|line| {
                let line = line.trim();
                line == "#![deny(unsafe_code)]" || line == "#![forbid(unsafe_code)]"
            });
            if !denies {
                missing.push(shown(&file));
            }
        }
        for dir in ["src", "tests", "benches"] {
            if !package.join(dir).is_dir() {
                continue;
            }
            for file in sources(&package.join(dir)) {
                let code = std::fs::read_to_string(&file).expect("a source file");
                for line in lines_with_token(&code, "allow") {
                    let text = code.lines().nth(line - 1).unwrap_or_default();
                    if text.contains("unsafe_code") {
                        allows.push(shown(&file));
                    }
                }
                if !lines_with_token(&code, "unsafe").is_empty() {
                    users.insert(shown(&file));
                }
            }
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "crate roots without #![deny(unsafe_code)]"
    );
    let allowed: Vec<String> = UNSAFE_ALLOWED
        .iter()
        .map(|(a, _)| (*a).to_owned())
        .collect();
    assert_eq!(allows, allowed, "#[allow(unsafe_code)] outside the list");
    let expected: BTreeSet<String> = UNSAFE_ALLOWED
        .iter()
        .map(|(_, u)| (*u).to_owned())
        .collect();
    assert_eq!(users, expected, "files with `unsafe` outside the list");
}

#[test]
fn tokens_are_whole_words_outside_comments() {
    let code = "let x = unsafe { f() };\n\
                #![deny(unsafe_code)]\n\
                // unsafe in a comment\n\
                unsafe extern \"C\" {}\n";
    assert_eq!(lines_with_token(code, "unsafe"), [1, 4]);
}

// === no test runs cargo ===

/// What starts cargo from a test: the cargo that runs the tests, or any
/// other. Spelt in pieces so that this file does not match itself.
const CARGO_RUNS: [&str; 2] = [
    concat!("env!(\"", "CARGO", "\")"),
    concat!("Command::new(\"", "cargo", "\")"),
];

/// The places (`FILE:LINE`) in `files` that `find` finds (it answers the
/// line numbers of one file's code).
fn places(files: impl IntoIterator<Item = PathBuf>, find: fn(&str) -> Vec<usize>) -> Vec<String> {
    let root = root();
    let mut found = Vec::new();
    for file in files {
        let code = std::fs::read_to_string(&file).expect("a source file");
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        found.extend(
            find(&code)
                .into_iter()
                .map(|line| format!("{shown}:{line}")),
        );
    }
    found
}

/// The places (`line`) where `code` starts cargo, outside `//` comments.
fn cargo_runs(code: &str) -> Vec<usize> {
    code.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split_once("//").map_or(*line, |(code, _)| code);
            CARGO_RUNS.iter().any(|run| code.contains(run))
        })
        .map(|(n, _)| n + 1)
        .collect()
}

#[test]
fn no_test_runs_cargo() {
    // The binaries the tests run are this package's own, and cargo has
    // built them (`CARGO_BIN_EXE_*`) before any test starts: a nested
    // `cargo build` waits on the build lock, rebuilds with other flags,
    // and fails offline.
    let package = root().join("tests/integration");
    let files = ["src", "tests", "benches"]
        .into_iter()
        .flat_map(|dir| sources(&package.join(dir)));
    let offences = places(files, cargo_runs);
    assert!(
        offences.is_empty(),
        "tests take binaries from env!(\"CARGO_BIN_EXE_<name>\") (a [[bin]] of \
         tests/integration), never from cargo. Found:\n  {}",
        offences.join("\n  ")
    );
}

#[test]
fn cargo_runs_are_found_outside_comments() {
    let code = "let bin = env!(\"CARGO_BIN_EXE_x\");\n\
                let cargo = Command::new(env!(\"CARGO\"));\n\
                // Command::new(\"cargo\") in a comment\n\
                let c = std::process::Command::new(\"cargo\");\n";
    assert_eq!(cargo_runs(code), [2, 4]);
}

// === skips go through skip! ===

/// The places (`line`) where `code` prints about skipping by hand, outside
/// `//` comments: such a line is captured by the harness and the test
/// passes, where `skip!` shows the reason and fails under HOSTSCOPE_NO_SKIP.
fn printed_skips(code: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut printing = false;
    for (n, line) in code.lines().enumerate() {
        let code = line.split_once("//").map_or(line, |(code, _)| code);
        // A print's arguments may follow on the next lines.
        printing = code.contains("println!(") || (printing && !code.contains(';'));
        if printing && code.to_ascii_lowercase().contains("skip") {
            found.push(n + 1);
        }
    }
    found
}

#[test]
fn tests_skip_only_through_skip() {
    // This file's examples print skips on purpose.
    let tidy = Path::new(file!()).file_name().expect("a file name");
    let files = sources(&root().join("tests/integration/tests"))
        .into_iter()
        .filter(|f| f.file_name() != Some(tidy));
    let offences = places(files, printed_skips);
    assert!(
        offences.is_empty(),
        "a test that cannot run here calls hostscope_integration::skip!(reason). Found:\n  {}",
        offences.join("\n  ")
    );
}

#[test]
fn printed_skips_are_found_across_lines() {
    let code = "eprintln!(\"SKIPPED: no root\");\n\
                eprintln!(\n    \"{}\",\n    \"skipped: no netlink\"\n);\n\
                println!(\"done\");\n\
                let skip = 1;\n\
                // eprintln!(\"skipped\") in a comment\n\
                skip!(\"no root\");\n";
    assert_eq!(printed_skips(code), [1, 4]);
}

// === module cycles stay broken ===

/// Every path into the crate that `code` names with `crate::`, `super::`
/// or `self::`, made absolute from the crate root (`watch::WatchArgs`,
/// `service::watch::event::Event`) as seen from the file module `module`
/// (`["args"]` for `args.rs`), with `use` groups expanded and `//`
/// comments left out; each with its line. Of the modules declared inline,
/// only a `mod tests {` that ends the file is followed (its `super::*` is
/// the file's module).
fn crate_paths(code: &str, module: &[&str]) -> Vec<(usize, String)> {
    let code: String = code
        .lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let tests = code
        .match_indices("mod tests {")
        .map(|(at, _)| at)
        .find(|at| code[..*at].ends_with('\n') || *at == 0)
        .unwrap_or(code.len());
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            let before = &code[..at];
            if before.ends_with("::") || before.chars().next_back().is_some_and(ident) {
                continue;
            }
            let line = before.matches('\n').count() + 1;
            let mut paths = Vec::new();
            use_tree(&code[at..], String::new(), &mut paths);
            for path in paths {
                let mut absolute: Vec<&str> = module.to_vec();
                if at > tests {
                    absolute.push("tests");
                }
                let mut segments = path.split("::").peekable();
                while let Some(first) = segments.peek() {
                    match *first {
                        "crate" => absolute.clear(),
                        "super" => drop(absolute.pop()),
                        "self" => {}
                        _ => break,
                    }
                    segments.next();
                }
                absolute.extend(segments);
                found.push((line, absolute.join("::")));
            }
        }
    }
    found.sort();
    found
}

/// The paths of the use tree (or plain path) at the start of `code`, each
/// after `prefix`: `a::{b, c::{d, e}}` gives `a::b`, `a::c::d`, `a::c::e`.
/// Returns how many bytes it read.
fn use_tree(code: &str, prefix: String, paths: &mut Vec<String>) -> usize {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '*';
    let skip = |code: &str, at: usize| at + (code[at..].len() - code[at..].trim_start().len());
    let mut at = skip(code, 0);
    if code[at..].starts_with('{') {
        at += 1;
        loop {
            at = skip(code, at);
            match code[at..].chars().next() {
                None => return at,
                Some('}') => return at + 1,
                Some(',') => at += 1,
                Some(_) => at += use_tree(&code[at..], prefix.clone(), paths),
            }
        }
    }
    let end = code[at..]
        .find(|c: char| !ident(c))
        .map_or(code.len(), |n| at + n);
    let name = &code[at..end];
    if name.is_empty() {
        // Not a path after all (`{` `}` mismatched, a stray `,`): step on.
        return end.max(at + 1);
    }
    let path = match (prefix.is_empty(), name) {
        (true, _) => name.to_owned(),
        // `a::{self, b}` names `a` itself.
        (false, "self") => prefix,
        (false, _) => format!("{prefix}::{name}"),
    };
    let after = skip(code, end);
    if code[after..].starts_with("::") {
        return after + 2 + use_tree(&code[after + 2..], path, paths);
    }
    paths.push(path);
    end
}

/// Where the files `files` (each with its module path) name one of the
/// paths `forbidden` (a path or what is inside it) other than through
/// one of `allowed`: `file:line: path`.
fn crossings_into(
    files: &[(PathBuf, Vec<String>)],
    forbidden: &[String],
    allowed: &[&str],
) -> Vec<String> {
    let within = |path: &str, of: &str| path == of || path.starts_with(&format!("{of}::"));
    let mut found = Vec::new();
    for (file, module) in files {
        let code = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        for (line, path) in crate_paths(&code, &module) {
            let bad = forbidden.iter().any(|f| within(&path, f));
            if bad && !allowed.iter().any(|a| within(&path, a)) {
                let shown = file.strip_prefix(root()).unwrap_or(file).display();
                found.push(format!("{shown}:{line}: {path}"));
            }
        }
    }
    found
}

/// The file modules of the CLI's first stage: `args.rs` and its leaves.
fn stage_one_files(src: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut files = vec![(src.join("args.rs"), vec!["args".to_owned()])];
    for file in sources(&src.join("args")) {
        let mut module = vec!["args".to_owned()];
        let relative = file.strip_prefix(src.join("args")).expect("below args/");
        module.extend(relative.with_extension("").iter().filter_map(|s| {
            let s = s.to_string_lossy();
            (s != "mod").then(|| s.into_owned())
        }));
        files.push((file, module));
    }
    files
}

#[test]
fn the_cli_first_stage_imports_no_later_stage() {
    // ripgrep's low-level args: what the user typed, validated. The
    // commands (watch, ps, files, ...) import args; args imports none of
    // them, only its own leaves and the parsers it validates with.
    const LEAVES: [&str; 3] = ["args", "duration", "fields"];
    let src = root().join("client/cli/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("the CLI's lib.rs");
    let modules: Vec<String> = lib
        .lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches("pub ");
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect();
    assert!(
        modules.iter().any(|m| m == "watch") && modules.iter().any(|m| m == "ps"),
        "no command modules found in {}: {modules:?}",
        src.join("lib.rs").display()
    );
    let later: Vec<String> = modules
        .into_iter()
        .filter(|m| !LEAVES.contains(&m.as_str()))
        .collect();
    let files = stage_one_files(&src);
    assert!(files.len() > 1, "no leaves of args found");
    assert_eq!(
        crossings_into(&files, &later, &[]),
        Vec::<String>::new(),
        "args.rs is the first stage: what it needs of a command (its flags, \
         their parsers, its help) lives in args or a leaf args owns (issue 20)"
    );
}

#[test]
fn the_agent_leaves_that_break_cycles_stay_leaves() {
    let agent = root().join("agent/src");
    let file = |path: &str, module: &str| {
        let module = module.split("::").map(str::to_owned).collect();
        vec![(agent.join(path), module)]
    };
    let owned = |paths: &[&str]| paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    let mut offences = Vec::new();
    // The watch imports convert; convert sees only the watch's leaf of
    // plain types.
    offences.extend(crossings_into(
        &file("service/convert.rs", "service::convert"),
        &owned(&["service::watch"]),
        &["service::watch::event"],
    ));
    offences.extend(crossings_into(
        &file("service/watch/event.rs", "service::watch::event"),
        &owned(&["service"]),
        &["service::watch::event"],
    ));
    // conn imports gate; gate sees the connections' shared state only.
    offences.extend(crossings_into(
        &file("server/gate.rs", "server::gate"),
        &owned(&["server::conn"]),
        &[],
    ));
    offences.extend(crossings_into(
        &file("server/conn_state.rs", "server::conn_state"),
        &owned(&["server"]),
        &["server::conn_state"],
    ));
    assert_eq!(
        offences,
        Vec::<String>::new(),
        "a leaf that breaks a module cycle names none of the modules that \
         import it (issue 20)"
    );
}

#[test]
fn crate_paths_expands_groups_and_resolves_super() {
    let code = "use super::{duration, watch::{self, WatchArgs}};\n\
                use crate::args::Targets; // crate::ps in a comment\n\
                let x = super::super::ps::parse_sort(s);\n\
                use hostscope_client::proto::{self as pb};\n\
                fn f() { self::g(); }\n\
                mod tests {\n\
                    use super::*;\n\
                }\n";
    assert_eq!(
        crate_paths(code, &["args", "watch"]),
        [
            (1, "args::duration".to_owned()),
            (1, "args::watch".to_owned()),
            (1, "args::watch::WatchArgs".to_owned()),
            (2, "args::Targets".to_owned()),
            (3, "ps::parse_sort".to_owned()),
            (5, "args::watch::g".to_owned()),
            (7, "args::watch::*".to_owned()),
        ]
    );
    assert_eq!(
        crate_paths(
            "use super::{ServiceError,\n    watch::event::Event};",
            &["service", "convert"]
        ),
        [
            (1, "service::ServiceError".to_owned()),
            (1, "service::watch::event::Event".to_owned()),
        ]
    );
}
