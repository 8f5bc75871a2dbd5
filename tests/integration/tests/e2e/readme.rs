//! The README read as a reader's renderer reads it: every fenced block
//! closes where it should, every link inside the repository leads
//! somewhere, and every `hostscope` and `hostscope-agent` command line in
//! its shell examples is one the command line parser accepts.

use std::{collections::BTreeSet, path::Path, path::PathBuf};

use clap::{CommandFactory, error::ErrorKind};
use hostscope_agent::config::Flags;
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Parser, Tag, TagEnd};

/// The workspace's root directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/integration lives two levels below the root")
        .to_owned()
}

fn readme() -> String {
    let path = root().join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// A fenced block as written: its info string, its contents and the line
/// of its opening fence.
struct Fence {
    info: String,
    code: String,
    line: usize,
}

/// Every fenced code block, checked to end with a fence of its own: a
/// block that runs to the end of the file, or swallows a line that was
/// meant to close it (a fence followed by text does not close one), takes
/// the prose after it into the code.
fn fences(text: &str) -> Result<Vec<Fence>, String> {
    let mut found = Vec::new();
    let mut open: Option<Fence> = None;
    for (event, range) in Parser::new(text).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let line = line_of(text, range.start);
                let source = text[range].trim_end();
                let last = source.lines().last().unwrap_or_default().trim();
                if source.lines().count() < 2 || (last != "```" && last != "~~~") {
                    return Err(format!(
                        "README.md:{line}: the fenced block opened here is not closed by a line \
                         of its own (it ends with {last:?})"
                    ));
                }
                open = Some(Fence {
                    info: info.to_string(),
                    code: String::new(),
                    line,
                });
            }
            Event::Text(t) => {
                if let Some(fence) = open.as_mut() {
                    fence.code.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => found.extend(open.take()),
            _ => {}
        }
    }
    for fence in &found {
        if let Some(stray) = fence
            .code
            .lines()
            .find(|l| l.trim_start().starts_with("```"))
        {
            return Err(format!(
                "README.md:{}: the fenced block opened here holds a fence line {stray:?}: a fence \
                 followed by text does not close a block",
                fence.line
            ));
        }
    }
    Ok(found)
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, and no
/// punctuation but hyphens and underscores.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn readme_fences_close_and_internal_links_resolve() {
    let text = readme();
    let fences = fences(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(fences.len() > 10, "the README has its examples");

    let mut anchors = BTreeSet::new();
    let mut links = Vec::new();
    let mut heading: Option<String> = None;
    for (event, range) in Parser::new(&text).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(level)) => {
                let h = heading.take().unwrap_or_default();
                if level != HeadingLevel::H1 || !anchors.is_empty() {
                    anchors.insert(anchor(&h));
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push((line_of(&text, range.start), dest_url.to_string()));
            }
            _ => {}
        }
    }
    assert!(
        anchors.contains("security"),
        "headings are read: {anchors:?}"
    );

    let mut broken = Vec::new();
    for (line, url) in &links {
        if url.contains("://") || url.starts_with("mailto:") {
            continue;
        }
        if let Some(fragment) = url.strip_prefix('#') {
            if !anchors.contains(fragment) {
                broken.push(format!("README.md:{line}: no heading for {url}"));
            }
        } else {
            let file = url.split('#').next().unwrap_or_default();
            if !root().join(file).exists() {
                broken.push(format!("README.md:{line}: no file {file}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The command lines of the README's shell examples: continuation lines
/// joined, comments cut, each split into words as the shell would.
fn shell_commands(fences: &[Fence]) -> Vec<(usize, Vec<String>)> {
    let mut commands = Vec::new();
    for fence in fences.iter().filter(|f| f.info == "sh") {
        let mut pending = String::new();
        let mut start = 0;
        for (n, line) in fence.code.lines().enumerate() {
            if pending.is_empty() {
                start = fence.line + 1 + n;
            }
            match line.strip_suffix('\\') {
                Some(head) => pending.push_str(head),
                None => {
                    pending.push_str(line);
                    let words = shlex::split(&pending)
                        .unwrap_or_else(|| panic!("README.md:{start}: unbalanced quotes"));
                    // A comment ends the command; what follows `#` is prose.
                    let words: Vec<String> = words.into_iter().take_while(|w| w != "#").collect();
                    commands.push((start, words));
                    pending.clear();
                }
            }
        }
    }
    commands
}

/// Whether the words hold shell the parser cannot judge: a pipe, a
/// redirection, a substitution or a variable.
fn needs_a_shell(words: &[String]) -> bool {
    words.iter().any(|w| {
        ["|", ">", "<", "&&", ";", "2>"].contains(&w.as_str())
            || w.contains("$(")
            || w.contains('$')
    })
}

#[test]
fn readme_command_lines_parse() {
    let text = readme();
    let mut checked = 0;
    let mut refused = Vec::new();
    for (line, words) in shell_commands(&fences(&text).unwrap_or_else(|e| panic!("{e}"))) {
        let Some(program) = words.first() else {
            continue;
        };
        if needs_a_shell(&words) {
            continue;
        }
        let result = match program.as_str() {
            "hostscope" => hostscope_cli::command()
                .try_get_matches_from(&words)
                .map(drop),
            // The agent's own subcommands (health, completions) are not
            // serving flags.
            "hostscope-agent" if words.get(1).is_none_or(|w| w.starts_with('-')) => {
                Flags::command().try_get_matches_from(&words).map(drop)
            }
            _ => continue,
        };
        checked += 1;
        match result {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {}
            Err(e) => refused.push(format!("README.md:{line}: {}: {e}", words.join(" "))),
        }
    }
    assert!(checked > 20, "the README's examples are found ({checked})");
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

#[test]
fn a_fence_followed_by_text_is_caught() {
    let broken = "# t\n\n```toml\na = 1\n``` Text that was meant to be prose.\n\n## Next\n";
    let e = fences(broken)
        .err()
        .expect("a fence followed by text is refused");
    assert!(e.contains("README.md:3:"), "{e}");
    let ok = fences("```sh\nls\n```\n").expect("a closed fence");
    assert_eq!(ok[0].code, "ls\n");
}
