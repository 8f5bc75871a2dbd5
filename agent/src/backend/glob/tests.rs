use super::*;

fn glob(pattern: &str) -> Glob {
    Glob::new(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e}"))
}

/// Asserts what `pattern` says of each name: `yes` match, `no` do not.
fn check(pattern: &str, yes: &[&str], no: &[&str]) {
    let g = glob(pattern);
    let mut lazy = g.clone();
    lazy.masks = None;
    for name in yes {
        assert!(g.matches(name), "{pattern:?} should match {name:?}");
        assert!(lazy.matches(name), "{pattern:?} should match {name:?}");
    }
    for name in no {
        assert!(!g.matches(name), "{pattern:?} should not match {name:?}");
        assert!(!lazy.matches(name), "{pattern:?} should not match {name:?}");
    }
}

fn syntax_error(pattern: &str) -> (usize, &'static str) {
    match Glob::new(pattern) {
        Err(GlobError::Syntax { pos, msg }) => (pos, msg),
        other => panic!("{pattern:?}: {other:?}"),
    }
}

#[test]
fn literals_wildcards_and_sets() {
    check("nginx", &["nginx"], &["nginx:", "ngin", "Nginx", ""]);
    check("", &[""], &["a"]);
    check("nginx*", &["nginx", "nginx: worker"], &["xnginx"]);
    check("*", &["", "a", "a/b/c"], &[]);
    check("c?t", &["cat", "c/t", "cét"], &["ct", "cart"]);
    check("d*g", &["dg", "doog", "d/o/g"], &["dog!"]);
    check("*a*b*", &["ab", "xaybz", "bab"], &["ba", "b"]);
    check("k[!e]tteh", &["kitteh"], &["ketteh"]);
    check("[a-c]x", &["ax", "bx", "cx"], &["dx", "-x"]);
    check("[c-a]", &[], &["a", "b", "c", "-"]);
    check("[abc-]", &["a", "-"], &["d"]);
    check("[-a]", &["a", "-"], &["b"]);
    check("[]]", &["]"], &["a"]);
    check("[!]]", &["a"], &["]"]);
    check("[]a]", &["]", "a"], &["b"]);
    check("[[]", &["["], &["]"]);
    check("[*]", &["*"], &["a"]);
    check("[?]", &["?"], &["a"]);
    check("[!!]", &["a"], &["!"]);
    check("[a-]]", &["a]", "-]"], &["b]", "a"]);
    check("[a-c-e]", &["a", "b", "-", "e"], &["d"]);
}

#[test]
fn recursive_wildcards_are_whole_path_components() {
    // At the end of a pattern, `**` matches anything.
    check("**", &["", "a", "a/", "a/b"], &[]);
    check("a/**", &["a/", "a/b/", "a/b"], &["a", "b/c"]);
    // Elsewhere it matches nothing or up to a `/`.
    check(
        "**/b",
        &["b", "a/b", "/b", "x/y/b"],
        &["ab", "a/bb", "a/xb"],
    );
    check("a/**/b", &["a/b", "a/x/b", "a/x/y/b"], &["ab", "a/xb"]);
    check("**/*", &["", "a", "a/b"], &[]);
    check("**/**", &["", "a/", "a"], &[]);
    assert_eq!(syntax_error("a**"), (0, ERROR_RECURSIVE_WILDCARDS));
    assert_eq!(syntax_error("**a"), (2, ERROR_RECURSIVE_WILDCARDS));
    assert_eq!(syntax_error("a/**b"), (4, ERROR_RECURSIVE_WILDCARDS));
    assert_eq!(syntax_error("***"), (2, ERROR_WILDCARDS));
}

#[test]
fn malformed_sets_are_errors_with_their_position() {
    for (pattern, pos) in [("[abc", 0), ("x[", 1), ("[]", 0), ("[!]", 0), ("ab[!", 2)] {
        assert_eq!(
            syntax_error(pattern),
            (pos, ERROR_INVALID_RANGE),
            "{pattern:?}"
        );
    }
    // The position counts characters, not bytes.
    assert_eq!(syntax_error("éé[").0, 2);
    let err = Glob::new("ab[").unwrap_err();
    assert_eq!(err.to_string(), "invalid range pattern at character 3");
}

#[test]
fn characters_beyond_ascii() {
    check("é*", &["é", "été"], &["e", "eé"]);
    check("[à-ÿ]x", &["àx", "éx", "ÿx"], &["ax", "Āx", "x"]);
    check("[!à-ÿ]", &["a", "Ā", "\u{10FFFF}"], &["é"]);
    check("?", &["\u{10FFFF}", "\u{D7FF}", "\u{E000}"], &["", "ab"]);
    check("[\u{D7FF}-\u{E000}]", &["\u{D7FF}", "\u{E000}"], &["a"]);
    check("[a-\u{10FFFF}]", &["a", "\u{10FFFF}", "é"], &["A"]);
}

#[test]
fn patterns_over_the_limit_are_refused_with_their_length() {
    let at_limit = "a".repeat(MAX_PATTERN_BYTES);
    assert!(glob(&at_limit).matches(&at_limit));
    let over = "*a".repeat(30_000) + "b";
    assert_eq!(
        Glob::new(&over).unwrap_err(),
        GlobError::TooLong { bytes: 60_001 }
    );
    // Bytes, not characters.
    let wide = "é".repeat(MAX_PATTERN_BYTES / 2 + 1);
    assert!(matches!(
        Glob::new(&wide),
        Err(GlobError::TooLong { bytes }) if bytes == MAX_PATTERN_BYTES + 2
    ));
    assert_eq!(glob("x*").as_str(), "x*");
}

#[test]
fn long_hostile_names_match_on_a_small_stack() {
    // A stack far smaller than a tokio worker's: a matcher that recursed
    // once per star would overflow it (and abort) on these.
    let name = "a".repeat(100_000);
    let run = move || {
        let stars = "*a".repeat(2_000);
        assert!(!glob(&format!("{stars}b")).matches(&name));
        assert!(glob(&stars).matches(&name));
        assert!(glob(&format!("{stars}*")).matches(&name));
        let long_literal = format!("*{}b", "a".repeat(4_000));
        assert!(!glob(&long_literal).matches(&name));
        let ends = format!("*{}", "a".repeat(4_000));
        assert!(glob(&ends).matches(&name));
        let mut slashes = "a/".repeat(20_000);
        slashes.push('b');
        assert!(glob("**/").matches(""));
        assert!(glob("**/b").matches(&slashes));
        assert!(!glob("**/a").matches(&slashes));
        let sets = "[!b]*".repeat(800);
        assert!(glob(&sets).matches(&name));
        assert!(!glob(&format!("{sets}b")).matches(&name));
    };
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(run)
        .expect("spawn")
        .join()
        .expect("the matcher ran on 64 KiB of stack");
}

#[test]
fn many_character_classes_in_one_pattern() {
    // Every character of the pattern is a class of its own.
    let pattern: String = (0x100u32..0x100 + 1_300)
        .filter_map(char::from_u32)
        .collect();
    assert!(pattern.len() <= MAX_PATTERN_BYTES);
    let g = glob(&format!("*{pattern}*"));
    assert!(g.matches(&format!("x{pattern}y")));
    let name: String = pattern.chars().rev().collect();
    assert!(!g.matches(&name.repeat(10)));
}

#[test]
fn refused_patterns_are_quoted_short() {
    assert_eq!(excerpt("nginx*"), "\"nginx*\"");
    let long = "*a".repeat(30_000) + "b";
    let quoted = excerpt(&long);
    assert_eq!(quoted, format!("{:?}… (60001 bytes)", "*a".repeat(32)));
    // Cut on a character, not inside one.
    assert!(excerpt(&"é".repeat(100)).starts_with(&format!("{:?}", "é".repeat(64))));
}

// === Against the glob crate ===

/// splitmix64: a small seeded generator, so that every run tries the same
/// cases and a failure names its inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

#[test]
fn agrees_with_the_glob_crate_on_random_patterns_and_names() {
    const PATTERN: &[char] = &['a', 'b', '*', '?', '[', ']', '!', '-', '/', 'é'];
    const NAME: &[char] = &['a', 'b', '-', '!', ']', '[', '/', 'é', 'c'];
    let mut rng = Rng(0x5eed_0f91_0500);
    let (mut valid, mut matched) = (0, 0);
    for _ in 0..30_000 {
        let pattern = rng.string(PATTERN, 10);
        let reference = ::glob::Pattern::new(&pattern);
        let ours = Glob::new(&pattern);
        let g = match (ours, reference) {
            (Ok(g), Ok(reference)) => {
                valid += 1;
                (g, reference)
            }
            (Err(GlobError::Syntax { pos, msg }), Err(e)) => {
                assert_eq!((pos, msg), (e.pos, e.msg), "{pattern:?}");
                continue;
            }
            (ours, reference) => panic!("{pattern:?}: {ours:?} vs {reference:?}"),
        };
        let (g, reference) = g;
        let mut lazy = g.clone();
        lazy.masks = None;
        for _ in 0..10 {
            let name = rng.string(NAME, 12);
            let want = reference.matches(&name);
            assert_eq!(g.matches(&name), want, "{pattern:?} vs {name:?}");
            // The paths of long patterns, which short ones do not take.
            assert_eq!(g.matches_in_words(&name), want, "{pattern:?} vs {name:?}");
            assert_eq!(lazy.matches(&name), want, "{pattern:?} vs {name:?}");
            matched += usize::from(want);
        }
        // Names made from the pattern itself, which match more often.
        let name: String = pattern
            .chars()
            .map(|c| match c {
                '*' | '?' | '[' => NAME[rng.below(NAME.len())],
                c => c,
            })
            .collect();
        assert_eq!(
            g.matches(&name),
            reference.matches(&name),
            "{pattern:?} vs {name:?}"
        );
    }
    // The generator reaches both sides of each question.
    assert!(valid > 5_000, "{valid} valid patterns");
    assert!(matched > 1_000, "{matched} matches");
}
