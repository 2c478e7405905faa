//! Frame classification: what the visible text says about the agent, per profile.
//!
//! Agent profiles (Claude, Codex, Gemini) read the *tail*: the last [`TAIL_CHARS`] characters of
//! the window's non-empty lines, each trimmed of white space and box borders (`│ ┃ ║`). Blocker
//! phrases are searched, case-insensitively, in the last [`BLOCKER_CHARS`] of it with white space
//! collapsed and lines joined by a space. The order of the verdicts is fixed:
//!
//! 1. busy: `Working (`, `background terminal running`, `esc to interrupt`, `esc to cancel`,
//!    `/stop to close`;
//! 2. starting: `model: loading`, `Booting MCP server`, `Starting MCP servers (` without
//!    `Starting MCP servers complete`;
//! 3. ready: a whole line is the profile's prompt (Claude `❯` or `-- INSERT --`, Codex `›`,
//!    Gemini `>` or `> Type your message`);
//! 4. dialog: `Do you trust`, `Press enter to continue`;
//! 5. otherwise no prompt.
//!
//! The shell profile reads the last non-empty line (at most [`SHELL_LINE_CHARS`] characters),
//! right-trimmed: it is ready when the line ends in `❯`, `›`, `[y/n]` (any case), or in `$`, `%`
//! or `#` standing alone or after white space. A line ending in `$ ` (dollar, space: bash's
//! `user@host:~/dir$ `) is a prompt whatever stands before the dollar. The generic profile has
//! no prompt: it reports blockers or no prompt, and relies on the quiet period.

use super::{Profile, Readiness};

/// Characters of the tail that agent profiles read.
pub const TAIL_CHARS: usize = 1_000;
/// Characters at the end of the tail searched for busy, start-up and dialog phrases: a phrase
/// further up belongs to an earlier frame.
pub const BLOCKER_CHARS: usize = 500;
/// Characters of the last line that the shell profile reads.
pub const SHELL_LINE_CHARS: usize = 200;

/// Buffers reused from one classification to the next (the hot path allocates nothing).
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    /// Byte ranges of the tail's lines in the view, newest first.
    lines: Vec<(usize, usize)>,
    /// The blocker region, lower-cased and collapsed.
    lower: Vec<u8>,
}

/// Classifies the visible text `view` for `profile`.
pub(crate) fn classify(profile: Profile, view: &[u8], scratch: &mut Scratch) -> Readiness {
    if profile == Profile::Shell {
        return classify_shell(view);
    }
    collect_tail(view, scratch);
    if scratch.lines.is_empty() {
        return Readiness::NoPrompt;
    }
    collect_blocker_region(view, scratch);
    let region = scratch.lower.as_slice();
    if BUSY.iter().any(|phrase| phrase.occurs_in(region)) {
        return Readiness::Busy;
    }
    let mcp_starting = STARTING_MCP.iter().any(|p| p.occurs_in(region))
        && !STARTED_MCP.iter().any(|p| p.occurs_in(region));
    if mcp_starting || STARTING.iter().any(|phrase| phrase.occurs_in(region)) {
        return Readiness::StartupOrDialog;
    }
    let ready = scratch
        .lines
        .iter()
        .any(|&(from, to)| is_prompt_line(profile, &view[from..to]));
    if ready {
        return Readiness::Ready;
    }
    if DIALOG.iter().any(|phrase| phrase.occurs_in(region)) {
        return Readiness::StartupOrDialog;
    }
    Readiness::NoPrompt
}

/// Fills `scratch.lines` with the tail's lines, newest first; the oldest may be cut to fit.
fn collect_tail(view: &[u8], scratch: &mut Scratch) {
    scratch.lines.clear();
    let mut budget = TAIL_CHARS;
    let mut end = view.len();
    while budget > 0 {
        let start = memchr::memrchr(b'\n', &view[..end]).map_or(0, |at| at + 1);
        let (from, to) = trim(view, start, end, TRIM_AGENT);
        if from < to {
            let line = &view[from..to];
            let chars = char_count(line);
            if chars >= budget {
                scratch.lines.push((to - suffix_bytes(line, budget), to));
                break;
            }
            scratch.lines.push((from, to));
            budget -= chars + 1;
        }
        if start == 0 {
            break;
        }
        end = start - 1;
    }
}

/// Fills `scratch.lower` with the last [`BLOCKER_CHARS`] of the tail, lower-cased, white space
/// collapsed, lines joined by one space.
fn collect_blocker_region(view: &[u8], scratch: &mut Scratch) {
    let mut budget = BLOCKER_CHARS;
    let mut count = 0;
    let mut first_cut = None;
    for &(from, to) in &scratch.lines {
        let line = &view[from..to];
        count += 1;
        let chars = char_count(line);
        if chars >= budget {
            first_cut = Some(to - suffix_bytes(line, budget));
            break;
        }
        budget -= chars + 1;
        if budget == 0 {
            break;
        }
    }
    scratch.lower.clear();
    for (index, &(from, to)) in scratch.lines[..count].iter().enumerate().rev() {
        let from = if index + 1 == count {
            first_cut.unwrap_or(from)
        } else {
            from
        };
        if !scratch.lower.is_empty() {
            scratch.lower.push(b' ');
        }
        for &byte in &view[from..to] {
            if byte.is_ascii_whitespace() {
                if scratch.lower.last() != Some(&b' ') {
                    scratch.lower.push(b' ');
                }
            } else {
                scratch.lower.push(byte.to_ascii_lowercase());
            }
        }
    }
}

fn is_prompt_line(profile: Profile, line: &[u8]) -> bool {
    match profile {
        Profile::Claude => line == "❯".as_bytes() || is_vim_insert(line),
        Profile::Codex => line == "›".as_bytes(),
        Profile::Gemini => {
            line == b">" || {
                let rest = strip_spaces(line.strip_prefix(b">").unwrap_or(b""));
                line.first() == Some(&b'>') && starts_with_ignore_case(rest, b"type your message")
            }
        }
        Profile::Shell | Profile::Generic => false,
    }
}

/// `-- INSERT --` (spaces optional, any case), alone or followed by white space or a non-word
/// character: Claude Code's vim mode shows it under an empty input line.
fn is_vim_insert(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"--") else {
        return false;
    };
    let rest = strip_spaces(rest);
    if !starts_with_ignore_case(rest, b"insert") {
        return false;
    }
    let rest = strip_spaces(&rest[b"insert".len()..]);
    let Some(rest) = rest.strip_prefix(b"--") else {
        return false;
    };
    rest.first().is_none_or(|&b| !is_word_byte(b))
}

fn classify_shell(view: &[u8]) -> Readiness {
    let mut end = view.len();
    loop {
        let start = memchr::memrchr(b'\n', &view[..end]).map_or(0, |at| at + 1);
        let (from, to) = trim(view, start, end, TRIM_RIGHT);
        if from < to {
            let line = &view[to - suffix_bytes(&view[from..to], SHELL_LINE_CHARS)..to];
            let dollar_space = view[from..end].ends_with(b"$ ");
            return if dollar_space || is_shell_prompt(line) {
                Readiness::Ready
            } else {
                Readiness::NoPrompt
            };
        }
        if start == 0 {
            return Readiness::NoPrompt;
        }
        end = start - 1;
    }
}

fn is_shell_prompt(line: &[u8]) -> bool {
    if line.ends_with("❯".as_bytes()) || line.ends_with("›".as_bytes()) {
        return true;
    }
    if line.len() >= 5 && line[line.len() - 5..].eq_ignore_ascii_case(b"[y/n]") {
        return true;
    }
    match line {
        [.., before, b'$' | b'%' | b'#'] => before.is_ascii_whitespace(),
        [b'$' | b'%' | b'#'] => true,
        _ => false,
    }
}

/// A phrase: literal parts separated by an optional single space, with optional word
/// boundaries. Matched against lower-case, collapsed text.
struct Phrase {
    parts: &'static [&'static [u8]],
    /// A word boundary is required before the match (leading `q`s excepted, see `skip_q`).
    word_start: bool,
    /// A word boundary is required after the match.
    word_end: bool,
    /// `q` characters right before the match belong to it (Codex's damaged `qqWorking`).
    skip_q: bool,
}

impl Phrase {
    const fn words(parts: &'static [&'static [u8]]) -> Phrase {
        Phrase {
            parts,
            word_start: true,
            word_end: true,
            skip_q: false,
        }
    }

    fn occurs_in(&self, hay: &[u8]) -> bool {
        let Some((first, rest)) = self.parts.split_first() else {
            return false;
        };
        memchr::memmem::find_iter(hay, first).any(|at| self.matches_at(hay, at, first.len(), rest))
    }

    fn matches_at(&self, hay: &[u8], at: usize, first_len: usize, rest: &[&[u8]]) -> bool {
        if self.word_start {
            let mut before = at;
            if self.skip_q {
                while before > 0 && hay[before - 1] == b'q' {
                    before -= 1;
                }
            }
            if before > 0 && is_word_byte(hay[before - 1]) {
                return false;
            }
        }
        let mut end = at + first_len;
        for part in rest {
            if hay.get(end) == Some(&b' ') {
                end += 1;
            }
            if !hay[end..].starts_with(part) {
                return false;
            }
            end += part.len();
        }
        !self.word_end || hay.get(end).is_none_or(|&b| !is_word_byte(b))
    }
}

static BUSY: [Phrase; 5] = [
    Phrase {
        parts: &[b"working", b"("],
        word_start: true,
        word_end: false,
        skip_q: true,
    },
    Phrase::words(&[b"background terminal running"]),
    Phrase::words(&[b"esc to interrupt"]),
    Phrase::words(&[b"esc to cancel"]),
    Phrase {
        parts: &[b"/stop to close"],
        word_start: false,
        word_end: true,
        skip_q: false,
    },
];

static STARTING: [Phrase; 2] = [
    Phrase::words(&[b"model:", b"loading"]),
    Phrase::words(&[b"booting mcp server"]),
];

static STARTING_MCP: [Phrase; 2] = [
    Phrase {
        parts: &[b"starting mcp server", b"("],
        word_start: true,
        word_end: false,
        skip_q: false,
    },
    Phrase {
        parts: &[b"starting mcp servers", b"("],
        word_start: true,
        word_end: false,
        skip_q: false,
    },
];

static STARTED_MCP: [Phrase; 2] = [
    Phrase::words(&[b"starting mcp server complete"]),
    Phrase::words(&[b"starting mcp servers complete"]),
];

static DIALOG: [Phrase; 2] = [
    Phrase::words(&[b"do you trust"]),
    Phrase::words(&[b"press enter to continue"]),
];

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn strip_spaces(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xc0 != 0x80).count()
}

/// Length in bytes of the last `chars` characters of `bytes` (all of it if shorter).
fn suffix_bytes(bytes: &[u8], chars: usize) -> usize {
    let mut seen = 0;
    for (index, &byte) in bytes.iter().enumerate().rev() {
        if byte & 0xc0 != 0x80 {
            seen += 1;
            if seen == chars {
                return bytes.len() - index;
            }
        }
    }
    bytes.len()
}

/// Which edges [`trim`] trims, and whether box borders count as white space there.
#[derive(Clone, Copy)]
struct Trim {
    left: bool,
    borders: bool,
}

const TRIM_AGENT: Trim = Trim {
    left: true,
    borders: true,
};
const TRIM_RIGHT: Trim = Trim {
    left: false,
    borders: false,
};

/// White space that a line is trimmed of besides ASCII: no-break and other Unicode spaces.
const UNICODE_SPACES: [&str; 16] = [
    "\u{a0}", "\u{1680}", "\u{2000}", "\u{2001}", "\u{2002}", "\u{2003}", "\u{2004}", "\u{2005}",
    "\u{2006}", "\u{2007}", "\u{2008}", "\u{2009}", "\u{200a}", "\u{202f}", "\u{3000}", "\u{feff}",
];
/// Vertical box-drawing borders around an input box: `│`, `┃`, `║`.
const BORDERS: [&str; 3] = ["\u{2502}", "\u{2503}", "\u{2551}"];

/// Trims `view[from..to]` of white space (and, for agent lines, box borders); returns the range.
fn trim(view: &[u8], mut from: usize, mut to: usize, how: Trim) -> (usize, usize) {
    let is_blank = |s: &str| UNICODE_SPACES.contains(&s) || (how.borders && BORDERS.contains(&s));
    while from < to {
        let last = view[to - 1];
        if last.is_ascii_whitespace() {
            to -= 1;
            continue;
        }
        let width = last_char_width(&view[from..to]);
        match std::str::from_utf8(&view[to - width..to]) {
            Ok(s) if width > 1 && is_blank(s) => to -= width,
            _ => break,
        }
    }
    while how.left && from < to {
        let first = view[from];
        if first.is_ascii_whitespace() {
            from += 1;
            continue;
        }
        let width = first_char_width(first).min(to - from);
        match std::str::from_utf8(&view[from..from + width]) {
            Ok(s) if width > 1 && is_blank(s) => from += width,
            _ => break,
        }
    }
    (from, to)
}

fn first_char_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        _ => 1,
    }
}

fn last_char_width(bytes: &[u8]) -> usize {
    let continuation = bytes
        .iter()
        .rev()
        .take(3)
        .take_while(|&&b| b & 0xc0 == 0x80)
        .count();
    (continuation + 1).min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::{Phrase, suffix_bytes};

    #[test]
    fn phrases_respect_word_boundaries_and_optional_spaces() {
        let working = &super::BUSY[0];
        assert!(working.occurs_in(b"working (3s"));
        assert!(working.occurs_in(b"x qqworking("));
        assert!(!working.occurs_in(b"networking ("));
        assert!(!working.occurs_in(b"working on it"));
        let loading = Phrase::words(&[b"model:", b"loading"]);
        assert!(loading.occurs_in(b"model:loading"));
        assert!(loading.occurs_in(b"model: loading"));
        assert!(!loading.occurs_in(b"model: loadings"));
    }

    #[test]
    fn suffix_counts_characters_not_bytes() {
        let text = "a❯é".as_bytes();
        assert_eq!(suffix_bytes(text, 1), 2);
        assert_eq!(suffix_bytes(text, 2), 5);
        assert_eq!(suffix_bytes(text, 9), text.len());
    }
}
