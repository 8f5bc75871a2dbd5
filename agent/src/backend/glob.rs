//! Shell globs for process names, matched in bounded time and constant stack.
//!
//! The syntax and meaning are those of the `glob` crate's `Pattern` with its
//! default options, which the agent used before: `*` matches any run of
//! characters, `/` included; `?` any one character; `[abc]`, `[a-z]` and
//! `[!abc]` one character of a set or not of it, where a `]` right after
//! `[` or `[!` belongs to the set (`[]]`, `[!]]`) and a `-` at either end is
//! literal; `[[]`, `[*]` and `[?]` match those characters themselves. `**`
//! is valid only as a whole path component (`**`, `**/x`, `x/**`): it
//! matches nothing, anything that ends in `/`, or at the end of the pattern
//! anything at all. Matching is case sensitive.
//!
//! That crate matches by recursive backtracking: one stack frame per `*` in
//! the pattern, and time that grows with the product of the name's length
//! and the pattern's. A name is anything a local user passes to `exec -a`,
//! and a pattern anything a reader sends, so both are hostile here. A
//! [`Glob`] compiles the pattern into a bit-parallel automaton (a shift-and
//! simulation of its NFA) instead: the whole set of pattern positions a
//! prefix of the name can reach is one bit vector, advanced once per
//! character of the name.

use std::fmt;

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 4096;

/// How many characters of a refused pattern [`excerpt`] shows.
const EXCERPT_CHARS: usize = 64;

/// The most mask words a [`Glob`] computes when it is compiled (8 KiB);
/// a pattern with more classes times states computes the masks of the
/// classes a name meets as it matches.
const EAGER_MASK_WORDS: usize = 1024;

/// Why a pattern is not a glob.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is longer than [`MAX_PATTERN_BYTES`].
    #[error("the pattern is {bytes} bytes, more than the {MAX_PATTERN_BYTES} allowed")]
    TooLong {
        /// The pattern's length in bytes.
        bytes: usize,
    },
    /// The pattern is malformed.
    #[error("{msg} at character {}", pos + 1)]
    Syntax {
        /// Where the error is: an index of the pattern's characters
        /// (not bytes), from 0.
        pos: usize,
        /// What is wrong.
        msg: &'static str,
    },
}

const ERROR_WILDCARDS: &str = "wildcards are either regular `*` or recursive `**`";
const ERROR_RECURSIVE_WILDCARDS: &str = "recursive wildcards must form a single path component";
const ERROR_INVALID_RANGE: &str = "invalid range pattern";

/// A compiled shell glob.
///
/// # Bounds
///
/// Let `p` be the pattern's length (at most [`MAX_PATTERN_BYTES`]), `k`
/// its number of non-star tokens (`k <= p`) and `n` the name's length in
/// characters.
///
/// - [`Glob::new`] takes O(p log p) time and O(p) memory.
/// - [`Glob::matches`] takes O(n * (k/64 + log p)) time for the steps of
///   the automaton, plus O(k) for each distinct character class of the
///   pattern the name holds a character of (at most `2p + 1` classes, and
///   at most `n`); its stack use is constant (no recursion) and its memory
///   O(k/64) words per class it meets. With a 4 KiB pattern a step is at
///   most 65 words of shifts and masks.
#[derive(Clone)]
pub struct Glob {
    original: String,
    /// The `k` tokens other than stars. The automaton's states are 0..=k,
    /// state j meaning "the first j tokens have matched"; the stars are
    /// kept as what follows a state (`star`, `recursive`).
    tokens: Vec<Token>,
    /// 64-bit words per bit vector of states.
    words: usize,
    /// The states followed by `*`.
    star: Vec<u64>,
    /// The states followed by `**`.
    recursive: Vec<u64>,
    /// The states followed by either.
    gap: Vec<u64>,
    /// The starts of the character classes: the characters below
    /// `bounds[0]` are class 0, those from `bounds[i]` below `bounds[i+1]`
    /// class i + 1. Every token accepts all of a class or none of it.
    bounds: Vec<u32>,
    /// The class of each ASCII character.
    ascii: Box<[u16; 128]>,
    /// Every class's mask (`words` each, by class), when they are few
    /// enough to keep: see [`EAGER_MASK_WORDS`].
    masks: Option<Vec<u64>>,
}

/// What one character of the name must be.
#[derive(Clone, Debug)]
enum Token {
    /// This character.
    Char(char),
    /// Any character (`?`).
    Any,
    /// A character in (or, negated, not in) one of the inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether the character (or the code point, which may be a surrogate:
    /// it stands for its class) `c` matches.
    fn accepts(&self, c: u32) -> bool {
        match self {
            Token::Char(t) => *t as u32 == c,
            Token::Any => true,
            Token::Set { negated, ranges } => {
                ranges
                    .iter()
                    .any(|&(lo, hi)| lo as u32 <= c && c <= hi as u32)
                    != *negated
            }
        }
    }
}

/// The stars between two tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    None,
    /// `*`: anything.
    Star,
    /// `**` as a path component: nothing, anything ending in `/`, or (at
    /// the end of the pattern) the whole rest.
    Recursive,
}

impl Glob {
    /// Compiles `pattern`, or says why it is no glob.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(GlobError::TooLong {
                bytes: pattern.len(),
            });
        }
        let (tokens, gaps) = parse(pattern)?;
        Ok(Glob::compile(pattern.to_owned(), tokens, gaps))
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        match &self.masks {
            // Fewer than 64 tokens, as nearly every pattern: the states fit
            // in one word, kept in registers.
            Some(masks) if self.words == 1 => self.matches_in_one_word(name, masks),
            _ => self.matches_in_words(name),
        }
    }

    /// [`Glob::matches`] for a pattern whose states fit in one word.
    fn matches_in_one_word(&self, name: &str, masks: &[u64]) -> bool {
        let last = 1u64 << self.tokens.len();
        let (star, recursive, gap) = (self.star[0], self.recursive[0], self.gap[0]);
        let mut now = 1u64;
        let mut reached = now & gap;
        let mut after_slash = false;
        for c in name.chars() {
            if reached & last != 0 {
                return true;
            }
            let slash = if after_slash { recursive } else { 0 };
            let ready = now | (reached & star) | (reached & slash);
            now = (ready << 1) & masks[self.class(c)];
            reached |= now & gap;
            if now | reached == 0 {
                return false;
            }
            after_slash = c == '/';
        }
        (now | reached) & last != 0
    }

    /// [`Glob::matches`] for any pattern.
    fn matches_in_words(&self, name: &str) -> bool {
        let w = self.words;
        let k = self.tokens.len();
        // The states reached just now, by the character last read.
        let mut now = vec![0u64; w];
        // The states followed by a star reached at any point so far: the
        // star has been matching since.
        let mut reached = vec![0u64; w];
        // The states from which the next token may match the next character.
        let mut ready = vec![0u64; w];
        now[0] = 1;
        for i in 0..w {
            reached[i] = now[i] & self.gap[i];
        }
        let mut masks = Masks::new(match self.masks {
            Some(_) => 0,
            None => self.bounds.len() + 1,
        });
        let mut after_slash = false;
        for c in name.chars() {
            // Once the final state is reached and followed by a star, any
            // rest matches.
            if bit(&reached, k) {
                return true;
            }
            self.ready(&now, &reached, after_slash, &mut ready);
            let mask = match &self.masks {
                Some(all) => {
                    let class = self.class(c);
                    &all[class * w..(class + 1) * w]
                }
                None => masks.get(self, c),
            };
            let mut carry = 0;
            let mut alive = false;
            for i in 0..w {
                let v = ready[i];
                now[i] = ((v << 1) | carry) & mask[i];
                carry = v >> 63;
                reached[i] |= now[i] & self.gap[i];
                alive |= (now[i] | reached[i]) != 0;
            }
            if !alive {
                return false;
            }
            after_slash = c == '/';
        }
        // A `**` that ends the pattern also matches a rest without a `/`.
        bit(&now, k) || bit(&reached, k)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The states from which a token may start at the current position: those
    /// just reached, those whose `*` has been matching since they were, and
    /// those whose `**` has matched up to a `/` just read.
    fn ready(&self, now: &[u64], reached: &[u64], after_slash: bool, ready: &mut [u64]) {
        let slash = if after_slash { u64::MAX } else { 0 };
        for i in 0..self.words {
            ready[i] =
                now[i] | (reached[i] & self.star[i]) | (reached[i] & self.recursive[i] & slash);
        }
    }

    fn compile(original: String, tokens: Vec<Token>, gaps: Vec<Gap>) -> Glob {
        let k = tokens.len();
        let words = (k + 1).div_ceil(64);
        let mut star = vec![0u64; words];
        let mut recursive = vec![0u64; words];
        for (state, gap) in gaps.iter().enumerate() {
            match gap {
                Gap::None => {}
                Gap::Star => set(&mut star, state),
                Gap::Recursive => set(&mut recursive, state),
            }
        }
        let gap = star.iter().zip(&recursive).map(|(s, r)| s | r).collect();
        let mut bounds = Vec::new();
        for token in &tokens {
            match token {
                Token::Char(c) => bounds.extend([*c as u32, *c as u32 + 1]),
                Token::Any => {}
                Token::Set { ranges, .. } => {
                    for &(lo, hi) in ranges {
                        if lo <= hi {
                            bounds.extend([lo as u32, hi as u32 + 1]);
                        }
                    }
                }
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let mut ascii = Box::new([0u16; 128]);
        for (c, class) in (0u32..).zip(ascii.iter_mut()) {
            // At most 2 bounds per byte of a 4 KiB pattern: fits in u16.
            *class = bounds.partition_point(|&b| b <= c) as u16;
        }
        let mut glob = Glob {
            original,
            tokens,
            words,
            star,
            recursive,
            gap,
            bounds,
            ascii,
            masks: None,
        };
        let classes = glob.bounds.len() + 1;
        if classes * words <= EAGER_MASK_WORDS {
            let mut masks = vec![0u64; classes * words];
            for (class, mask) in masks.chunks_exact_mut(words).enumerate() {
                glob.mask(class, mask);
            }
            glob.masks = Some(masks);
        }
        glob
    }

    /// The character class of `c`.
    fn class(&self, c: char) -> usize {
        match self.ascii.get(c as usize) {
            Some(&class) => usize::from(class),
            None => self.bounds.partition_point(|&b| b <= c as u32),
        }
    }

    /// The states a character of class `class` leads to from their
    /// predecessors: bit j + 1 is set when token j accepts it.
    fn mask(&self, class: usize, out: &mut [u64]) {
        let c = match class {
            0 => 0,
            _ => self.bounds[class - 1],
        };
        for (j, token) in self.tokens.iter().enumerate() {
            if token.accepts(c) {
                set(out, j + 1);
            }
        }
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Glob").field(&self.original).finish()
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.original == other.original
    }
}

impl Eq for Glob {}

/// The masks of the classes met by one match, each computed once.
struct Masks {
    /// Where each class's mask starts in `words`, or `usize::MAX`.
    at: Vec<usize>,
    words: Vec<u64>,
}

impl Masks {
    fn new(classes: usize) -> Masks {
        Masks {
            at: vec![usize::MAX; classes],
            words: Vec::new(),
        }
    }

    fn get(&mut self, glob: &Glob, c: char) -> &[u64] {
        let class = glob.class(c);
        let w = glob.words;
        let mut start = self.at[class];
        if start == usize::MAX {
            start = self.words.len();
            self.words.resize(start + w, 0);
            glob.mask(class, &mut self.words[start..]);
            self.at[class] = start;
        }
        &self.words[start..start + w]
    }
}

fn bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

/// The tokens of `pattern`, and for each state 0..=k (before the first
/// token, between tokens, after the last) the stars there, read as the
/// `glob` crate reads them, errors and their positions included.
fn parse(pattern: &str) -> Result<(Vec<Token>, Vec<Gap>), GlobError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut gaps = vec![Gap::None];
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '?' => {
                tokens.push(Token::Any);
                gaps.push(Gap::None);
                i += 1;
            }
            '*' => {
                let old = i;
                while i < chars.len() && chars[i] == '*' {
                    i += 1;
                }
                match i - old {
                    1 => add_gap(&mut gaps, Gap::Star),
                    2 => {
                        // `**` must be a whole path component.
                        if old != 0 && chars[old - 1] != '/' {
                            return Err(GlobError::Syntax {
                                pos: old - 1,
                                msg: ERROR_RECURSIVE_WILDCARDS,
                            });
                        }
                        if i < chars.len() && chars[i] == '/' {
                            // The separator belongs to the `**`.
                            i += 1;
                        } else if i < chars.len() {
                            return Err(GlobError::Syntax {
                                pos: i,
                                msg: ERROR_RECURSIVE_WILDCARDS,
                            });
                        }
                        add_gap(&mut gaps, Gap::Recursive);
                    }
                    _ => {
                        return Err(GlobError::Syntax {
                            pos: old + 2,
                            msg: ERROR_WILDCARDS,
                        });
                    }
                }
            }
            '[' => {
                let (negated, from) = match chars.get(i + 1) {
                    Some('!') if i + 4 <= chars.len() => (true, i + 2),
                    Some(c) if *c != '!' && i + 3 <= chars.len() => (false, i + 1),
                    _ => {
                        return Err(GlobError::Syntax {
                            pos: i,
                            msg: ERROR_INVALID_RANGE,
                        });
                    }
                };
                // The first character of the set may be `]`.
                let Some(len) = chars[from + 1..].iter().position(|&c| c == ']') else {
                    return Err(GlobError::Syntax {
                        pos: i,
                        msg: ERROR_INVALID_RANGE,
                    });
                };
                let end = from + 1 + len;
                tokens.push(Token::Set {
                    negated,
                    ranges: parse_set(&chars[from..end]),
                });
                gaps.push(Gap::None);
                i = end + 1;
            }
            c => {
                tokens.push(Token::Char(c));
                gaps.push(Gap::None);
                i += 1;
            }
        }
    }
    Ok((tokens, gaps))
}

/// Adds stars to the last state's gap. Several stars in a row are one: `*`
/// if any of them is (`**/*` is anything), else `**`.
fn add_gap(gaps: &mut [Gap], gap: Gap) {
    if let Some(last) = gaps.last_mut()
        && *last != Gap::Star
    {
        *last = gap;
    }
}

/// The ranges of a set's characters: `a-z` is a range wherever it stands,
/// any other character (a `-` at either end too) stands for itself.
fn parse_set(s: &[char]) -> Vec<(char, char)> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if i + 3 <= s.len() && s[i + 1] == '-' {
            ranges.push((s[i], s[i + 2]));
            i += 3;
        } else {
            ranges.push((s[i], s[i]));
            i += 1;
        }
    }
    ranges
}

/// `pattern` quoted for a message or a log line: whole if short, else its
/// first 64 characters, an ellipsis and its length, so a refused pattern is
/// never echoed at length.
pub fn excerpt(pattern: &str) -> String {
    match pattern.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{pattern:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &pattern[..end], pattern.len()),
    }
}

#[cfg(test)]
mod tests;
