//! Frame classification: what the visible text says about the agent, per profile.
//!
//! Agent profiles (Claude, Codex, Gemini) read the *tail*: the last [`TAIL_CHARS`] characters of
//! the window's non-empty lines, each trimmed of white space and box borders (`│ ┃ ║`). Blocker
//! phrases are searched, case-insensitively, in the last [`BLOCKER_CHARS`] of it with white space
//! collapsed and lines joined by a space. A *menu's chosen item* is a line that starts with a
//! selection cursor (`❯ › ● >`) before a numbered choice (`❯ 1. Yes`), with no prompt line
//! under it (above the input line it is the transcript: an echoed prompt, an answer). The
//! order of the verdicts is fixed:
//!
//! 1. busy: `Working (`, `background terminal running`, `esc to interrupt`, `/stop to close`
//!    (unless a menu's chosen item is drawn under it), and `esc to cancel` unless something
//!    asks the human (a menu's chosen item, `Enter to confirm`, a dialog, permission or sign-in
//!    phrase: then it is a menu's footer, as in Claude Code's `Esc to cancel · Tab to amend`;
//!    alone it is Gemini CLI's spinner);
//! 2. starting: `model: loading`, `Booting MCP server`, `Starting MCP server(s) (` without
//!    `Starting MCP server(s) complete`;
//! 3. ready, unless a menu's chosen item is on screen: a whole line is the profile's prompt (Claude `❯` or `-- INSERT --`, Codex `›`,
//!    Gemini `>` or `> Type your message`), or is it followed by faint text only (an empty
//!    input line's placeholder, such as Codex's `› Ask Codex to do anything`);
//! 4. attention, with its reason: a sign-in phrase (`Sign in with`, `Select login method`,
//!    `How would you like to authenticate`, `use this API key`); a permission phrase (`Do you
//!    want to proceed`, `… make this edit`, `… create`, `Would you like to run the following
//!    command`, `Allow execution`, `Allow once`, `auto mode can't check actions`, `Enter to stay
//!    in auto mode`); a dialog phrase (`Do you trust`, `Press enter to continue`, `trust
//!    folder`, `trust this folder`, which stay in view when the question has scrolled out of
//!    the blocker region; `running in Bypass Permissions mode`); otherwise a menu's chosen
//!    item, `Enter to confirm` or `your default permission mode` (Claude Code's offer of auto
//!    mode): a question;
//! 5. otherwise no prompt.
//!
//! The shell profile reads the last non-empty line (at most [`SHELL_LINE_CHARS`] characters),
//! right-trimmed: it is ready when the line ends in `❯`, `›`, `[y/n]` (any case), or in `$`, `%`
//! or `#` standing alone or after white space. A `$` followed by white space (bash's
//! `user@host:~/dir$ `) is a prompt whatever stands before it. The generic profile has no
//! prompt: it reports blockers or no prompt, and relies on the quiet period.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

use super::grid::FAINT_TAIL;
use super::vt::{HIGHS, ONES};
use super::{Profile, Readiness};
use crate::core::state::Attention;

/// Characters of the tail that agent profiles read.
pub const TAIL_CHARS: usize = 1_000;
/// Characters at the end of the tail searched for busy, start-up and dialog phrases: a phrase
/// further up belongs to an earlier frame.
pub const BLOCKER_CHARS: usize = 500;
/// Characters at the end of the last line that the shell profile reads: its patterns look at
/// the line's end, so this bounds the work, not the verdict.
pub const SHELL_LINE_CHARS: usize = 200;

/// Buffers reused from one classification to the next (the hot path allocates nothing).
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    /// The blocker region's pieces: byte ranges of the view, newest first, and whether each has
    /// printable ASCII.
    pieces: Vec<(usize, usize, bool)>,
    /// The blocker region, lower-cased and collapsed.
    lower: Vec<u8>,
}

/// A non-empty trimmed line of the tail: its bytes in the view, cut to fit the tail.
#[derive(Clone, Copy, Debug)]
struct TailLine {
    from: usize,
    to: usize,
    chars: usize,
    /// The line has printable ASCII (see [`has_ascii_graphic`]).
    graphic: bool,
}

/// The tail's lines, newest first: the last [`TAIL_CHARS`] characters of the view's non-empty
/// trimmed lines, each line costing its characters plus one for the line feed joining it; the
/// oldest line is cut to what is left. Walked lazily: most frames decide within the last lines.
struct TailWalk<'a> {
    view: &'a [u8],
    /// End of the next line to look at; `None` once the view or the budget is spent.
    end: Option<usize>,
    budget: usize,
}

impl<'a> TailWalk<'a> {
    fn new(view: &'a [u8]) -> Self {
        TailWalk {
            view,
            end: Some(view.len()),
            budget: TAIL_CHARS,
        }
    }
}

impl Iterator for TailWalk<'_> {
    type Item = TailLine;

    #[inline(always)]
    fn next(&mut self) -> Option<TailLine> {
        while let Some(end) = self.end {
            let start = memchr::memrchr(b'\n', &self.view[..end]).map_or(0, |at| at + 1);
            self.end = start.checked_sub(1);
            let (from, to) = trim(self.view, start, end, TRIM_AGENT);
            if from == to {
                continue;
            }
            let line = &self.view[from..to];
            let (chars, graphic) = measure(line);
            if chars >= self.budget {
                let from = to - suffix_bytes(line, self.budget);
                let line = TailLine {
                    from,
                    to,
                    chars: self.budget,
                    graphic: has_ascii_graphic(&self.view[from..to]),
                };
                self.end = None;
                return Some(line);
            }
            self.budget -= chars + 1;
            if self.budget == 0 {
                self.end = None;
            }
            return Some(TailLine {
                from,
                to,
                chars,
                graphic,
            });
        }
        None
    }
}

/// Classifies the visible text `view` for `profile`.
pub(crate) fn classify(profile: Profile, view: &[u8], scratch: &mut Scratch) -> Readiness {
    if profile == Profile::Shell {
        return classify_shell(view);
    }
    let mut walk = TailWalk::new(view);
    let pieces = &mut scratch.pieces;
    pieces.clear();
    // The blocker region is the tail's last BLOCKER_CHARS; prompt and menu lines met on the way
    // count.
    let mut prompt = false;
    let mut menu = false;
    let mut budget = BLOCKER_CHARS;
    while budget > 0 {
        let Some(line) = walk.next() else { break };
        let text = &view[line.from..line.to];
        // A menu is what the screen ends with: a choice-like line above the input line is the
        // agent's transcript (an echoed prompt `❯ 1. Fix it`, an answer `● 1. …`).
        menu = menu || (!prompt && is_menu_choice(text));
        prompt = prompt || is_prompt_line(profile, text);
        if line.chars >= budget && line.graphic {
            let from = line.to - suffix_bytes(text, budget);
            pieces.push((from, line.to, has_ascii_graphic(&view[from..line.to])));
        } else {
            // Whole, or without printable ASCII: then any part of it stands as one marker.
            pieces.push((line.from, line.to, line.graphic));
        }
        budget = budget.saturating_sub(line.chars + 1);
        // A busy indicator wins over everything but a menu drawn under it: one in its usual
        // spelling, within a single line, settles the verdict without building the region (it
        // would be found there too).
        if !menu
            && let Some(&(from, to, true)) = pieces.last()
            && busy_as_usually_spelled(&view[from..to])
        {
            return Readiness::Busy;
        }
    }
    if pieces.is_empty() {
        return Readiness::NoPrompt;
    }
    let lower = &mut scratch.lower;
    lower.clear();
    for &(from, to, graphic) in pieces.iter().rev() {
        // A line with no printable ASCII (box drawing, rules) cannot hold or join a phrase: one
        // non-word byte stands for it.
        lower.extend_from_slice(if graphic { &view[from..to] } else { b"\x01" });
        lower.push(b' ');
    }
    if memchr::memchr(FAINT_TAIL, lower).is_some() {
        lower.retain(|&byte| byte != FAINT_TAIL);
    }
    lower.make_ascii_lowercase();
    if let Some(first) = DOUBLE_SPACE.find(lower) {
        collapse_spaces(lower, first);
    }
    let found = find_phrases(lower);
    // `esc to cancel` is a menu's footer beside `enter to confirm` or a choice; alone, a
    // working agent's (Gemini CLI's spinner).
    let asks = menu || found.confirm || found.dialog || found.permission || found.sign_in;
    if (found.busy && !menu) || (found.cancel && !asks) {
        return Readiness::Busy;
    }
    if found.starting || (found.mcp_starting && !found.mcp_started) {
        return Readiness::Starting;
    }
    if !menu && (prompt || walk.any(|line| is_prompt_line(profile, &view[line.from..line.to]))) {
        return Readiness::Ready;
    }
    if found.sign_in {
        return Readiness::Attention(Attention::SignIn);
    }
    if found.permission {
        return Readiness::Attention(Attention::Permission);
    }
    if found.dialog {
        return Readiness::Attention(Attention::Dialog);
    }
    if menu || found.confirm {
        return Readiness::Attention(Attention::Question);
    }
    Readiness::NoPrompt
}

/// Whether `line` (trimmed) is a menu's chosen item: a selection cursor (`❯`, `›`, `●`, `>`)
/// before a numbered choice, as in `❯ 1. Yes` or `● 2. Allow for this session`.
fn is_menu_choice(line: &[u8]) -> bool {
    let rest = match line {
        [b'>', rest @ ..] => rest,
        // ❯ U+276F, › U+203A, ● U+25CF.
        [0xe2, 0x9d, 0xaf, rest @ ..]
        | [0xe2, 0x80, 0xba, rest @ ..]
        | [0xe2, 0x97, 0x8f, rest @ ..] => rest,
        _ => return false,
    };
    let rest = strip_spaces(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=2).contains(&digits) && rest.get(digits) == Some(&b'.')
}

/// Two spaces: where collapsing starts. Built once.
static DOUBLE_SPACE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"  "));

/// Collapses every run of spaces in `text` into one; `first` is where the first run of two or
/// more starts. Moves the text between runs in bulk.
fn collapse_spaces(text: &mut Vec<u8>, first: usize) {
    let len = text.len();
    let mut read = first;
    let mut write = first;
    while read < len {
        // `read` starts a run of spaces: keep one.
        text[write] = b' ';
        write += 1;
        read += text[read..].iter().take_while(|&&b| b == b' ').count();
        let next = DOUBLE_SPACE.find(&text[read..]).map_or(len, |at| read + at);
        text.copy_within(read..next, write);
        write += next - read;
        read = next;
    }
    text.truncate(write);
}

#[cfg(test)]
#[test]
fn collapse_spaces_keeps_one_space_of_every_run() {
    let mut text = b"a  b c   d    ".to_vec();
    collapse_spaces(&mut text, 1);
    assert_eq!(text, b"a b c d ");
}

/// Whether `line` is the profile's prompt: as it reads, or without a faint tail (an empty input
/// line's placeholder, see `grid`).
fn is_prompt_line(profile: Profile, line: &[u8]) -> bool {
    if let Some(at) = memchr::memchr(FAINT_TAIL, line) {
        let solid = &line[..at];
        let end = solid.len() - solid.iter().rev().take_while(|&&b| b == b' ').count();
        if is_prompt_text(profile, &solid[..end]) {
            return true;
        }
    }
    is_prompt_text(profile, line)
}

fn is_prompt_text(profile: Profile, line: &[u8]) -> bool {
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
            // `$` followed by trimmed white space: bash's `user@host:~/dir$ `.
            let dollar_space = to < end && view[to - 1] == b'$';
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

/// What a phrase on screen means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meaning {
    Busy,
    /// `esc to cancel`: busy, unless a menu's `enter to confirm` stands beside it.
    Cancel,
    Starting,
    McpStarting,
    McpStarted,
    Dialog,
    /// `enter to confirm`: a menu waiting for a choice.
    Confirm,
    /// A question asking leave to use a tool.
    Permission,
    /// A sign-in menu, or a key to approve.
    SignIn,
}

/// A phrase: literal parts separated by an optional single space, with optional word
/// boundaries. Matched against lower-case, collapsed text.
struct Phrase {
    first: &'static [u8],
    rest: &'static [&'static [u8]],
    /// A word boundary is required before the match (leading `q`s excepted, see `skip_q`).
    word_start: bool,
    /// A word boundary is required after the match.
    word_end: bool,
    /// `q` characters right before the match belong to it (Codex's damaged `qqWorking`).
    skip_q: bool,
    meaning: Meaning,
}

/// `phrase!(Meaning, "a", "b"; start, end, q)`: a [`Phrase`] with word boundaries and `q`
/// skipping as given; `phrase!(Meaning, "a b")` is a whole-word phrase.
macro_rules! phrase {
    ($meaning:ident, $first:literal $(, $rest:literal)* ; $start:expr, $end:expr, $q:expr) => {
        Phrase {
            first: $first,
            rest: &[$($rest),*],
            word_start: $start,
            word_end: $end,
            skip_q: $q,
            meaning: Meaning::$meaning,
        }
    };
    ($meaning:ident, $first:literal $(, $rest:literal)*) => {
        phrase!($meaning, $first $(, $rest)* ; true, true, false)
    };
}

impl Phrase {
    fn matches_at(&self, hay: &[u8], at: usize) -> bool {
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
        let mut end = at + self.first.len();
        for part in self.rest {
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

/// Every phrase the classifier knows, searched for in one pass. Where one phrase's first part
/// can start inside another's (`do you trust` and `trust folder`), both mean the same, so a
/// leftmost, non-overlapping search misses no meaning.
static PHRASES: [Phrase; 27] = [
    phrase!(Busy, b"working", b"("; true, false, true),
    phrase!(Busy, b"background terminal running"),
    phrase!(Busy, b"esc to interrupt"),
    phrase!(Cancel, b"esc to cancel"),
    phrase!(Busy, b"/stop to close"; false, true, false),
    phrase!(Starting, b"model:", b"loading"),
    phrase!(Starting, b"booting mcp server"),
    // `Starting MCP server(s) (` or `Starting MCP server(s) complete`: told apart after the match.
    phrase!(McpStarting, b"starting mcp server"; true, false, false),
    phrase!(Dialog, b"do you trust"),
    phrase!(Dialog, b"press enter to continue"),
    phrase!(Confirm, b"enter to confirm"),
    phrase!(Dialog, b"trust folder"),
    phrase!(Dialog, b"trust this folder"),
    // Claude Code's first use of --dangerously-skip-permissions: its warning, "No, exit" chosen.
    phrase!(Dialog, b"running in bypass permissions mode"),
    // Permission prompts: Claude Code's questions over its menu, Codex's approval, Gemini CLI's
    // tool confirmation.
    phrase!(Permission, b"do you want to proceed"),
    phrase!(Permission, b"do you want to make this edit"),
    phrase!(Permission, b"do you want to create"),
    phrase!(Permission, b"would you like to run the following command"),
    phrase!(Permission, b"allow execution"),
    phrase!(Permission, b"allow once"),
    // Claude Code 2.1.332's auto mode without its safety check; its long explanation pushes
    // the heading out of the blocker region, its footer stays.
    phrase!(Permission, b"auto mode can't check actions"),
    phrase!(Permission, b"enter to stay in auto mode"),
    // Its offer at start-up, a menu without numbers: a question.
    phrase!(Confirm, b"your default permission mode"),
    // Sign-in menus and key approvals.
    phrase!(SignIn, b"sign in with"),
    phrase!(SignIn, b"select login method"),
    phrase!(SignIn, b"how would you like to authenticate"),
    phrase!(SignIn, b"use this api key"),
];

/// One automaton over the first parts of [`PHRASES`], built on first use.
static SEARCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(PHRASES.iter().map(|phrase| phrase.first))
        .expect("a few short constant patterns always build")
});

/// The busy phrases in the spelling agents print them, searched for in one raw line: a fast
/// path for the most common verdict while output streams. Each maps to its entry of
/// [`PHRASES`], whose boundaries and remaining parts are checked as usual.
/// `esc to cancel` is not among them: a menu's footer can hold it beside `enter to confirm`.
static BUSY_USUAL: LazyLock<(AhoCorasick, [usize; 4])> = LazyLock::new(|| {
    let spellings: [(&[u8], usize); 4] = [
        (b"Working", 0),
        (b"background terminal running", 1),
        (b"esc to interrupt", 2),
        (b"/stop to close", 4),
    ];
    let searcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(spellings.iter().map(|(spelling, _)| spelling))
        .expect("a few short constant patterns always build");
    (searcher, spellings.map(|(_, phrase)| phrase))
});

/// Whether `line`, as it stands, holds a busy phrase in its usual spelling. Never true where
/// the region search would not find busy; may be false where it would (other case, doubled
/// spaces, a phrase across lines).
fn busy_as_usually_spelled(line: &[u8]) -> bool {
    let (searcher, phrases) = &*BUSY_USUAL;
    searcher.find_iter(line).any(|hit| {
        let phrase = &PHRASES[phrases[hit.pattern().as_usize()]];
        // The phrase tables are lower case; only `Working` differs, in its first letter.
        let mut lowered = [0u8; 32];
        let part = &line[hit.start()..hit.end()];
        lowered[..part.len()].copy_from_slice(part);
        lowered[..part.len()].make_ascii_lowercase();
        phrase.meaning == Meaning::Busy
            && &lowered[..part.len()] == phrase.first
            && phrase.matches_at(line, hit.start())
    })
}

/// The meanings of the phrases present in `region`.
#[derive(Clone, Copy, Debug, Default)]
struct Found {
    busy: bool,
    cancel: bool,
    confirm: bool,
    starting: bool,
    mcp_starting: bool,
    mcp_started: bool,
    dialog: bool,
    permission: bool,
    sign_in: bool,
}

/// After `starting mcp server`: `s`, then `(` (still starting) or `complete` (done), each after
/// an optional space.
fn mcp_progress(after: &[u8]) -> Option<Meaning> {
    let after = after.strip_prefix(b"s").unwrap_or(after);
    let after = after.strip_prefix(b" ").unwrap_or(after);
    if after.starts_with(b"(") {
        Some(Meaning::McpStarting)
    } else if after.starts_with(b"complete") && after.get(8).is_none_or(|&b| !is_word_byte(b)) {
        Some(Meaning::McpStarted)
    } else {
        None
    }
}

fn find_phrases(region: &[u8]) -> Found {
    let mut found = Found::default();
    for hit in SEARCHER.find_iter(region) {
        let phrase = &PHRASES[hit.pattern().as_usize()];
        if !phrase.matches_at(region, hit.start()) {
            continue;
        }
        match phrase.meaning {
            Meaning::Busy => found.busy = true,
            Meaning::Cancel => found.cancel = true,
            Meaning::Confirm => found.confirm = true,
            Meaning::Starting => found.starting = true,
            Meaning::McpStarting => match mcp_progress(&region[hit.end()..]) {
                Some(Meaning::McpStarted) => found.mcp_started = true,
                Some(_) => found.mcp_starting = true,
                None => {}
            },
            Meaning::Dialog => found.dialog = true,
            Meaning::Permission => found.permission = true,
            Meaning::SignIn => found.sign_in = true,
            Meaning::McpStarted => found.mcp_started = true,
        }
    }
    found
}

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

/// Whether `bytes` holds a printable ASCII character (0x21..=0x7E or DEL), eight at a time.
fn has_ascii_graphic(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut array = [0; 8];
        array.copy_from_slice(word);
        let x = u64::from_le_bytes(array);
        // Per byte, without carries: ASCII (high bit clear) and above 0x20.
        let low = x & !HIGHS;
        if low.wrapping_add(ONES * 0x5f) & !x & HIGHS != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b > b' ' && b < 0x80)
}

/// What one pass over a line tells: its characters, and whether it has printable ASCII.
///
/// Thirty-two bytes per step: continuation bytes are summed in byte lanes and folded with one
/// multiplication (no popcount: the baseline x86-64 target has none).
#[inline(always)]
fn measure(bytes: &[u8]) -> (usize, bool) {
    let word = |chunk: &[u8]| {
        let mut array = [0; 8];
        array.copy_from_slice(chunk);
        u64::from_le_bytes(array)
    };
    // 10xxxxxx (high bit set, next clear) as 1 in its lane; printable ASCII as a high bit.
    let continuation = |x: u64| (x & HIGHS & !(x << 1)) >> 7;
    let graphic = |x: u64| (x & !HIGHS).wrapping_add(ONES * 0x5f) & !x & HIGHS;
    let mut continuations = 0;
    let mut printable = 0;
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let (a, b, c, d) = (
            word(&block[..8]),
            word(&block[8..16]),
            word(&block[16..24]),
            word(&block[24..]),
        );
        let lanes = continuation(a) + continuation(b) + continuation(c) + continuation(d);
        continuations += (lanes.wrapping_mul(ONES) >> 56) as usize;
        printable |= graphic(a) | graphic(b) | graphic(c) | graphic(d);
    }
    let rest = blocks.remainder();
    continuations += rest.iter().filter(|&&b| b & 0xc0 == 0x80).count();
    let printable = printable != 0 || rest.iter().any(|&b| b > b' ' && b < 0x80);
    (bytes.len() - continuations, printable)
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

/// Whether `c`, one UTF-8 character of two or more bytes, is white space a line is trimmed of
/// besides ASCII: no-break and other Unicode spaces; and, when `borders`, a vertical box-drawing
/// border around an input box (`│`, `┃`, `║`).
fn is_blank(c: &[u8], borders: bool) -> bool {
    match *c {
        // U+00A0, U+1680, U+2000..=U+200A, U+202F, U+205F, U+3000, U+FEFF.
        [0xc2, 0xa0]
        | [0xe1, 0x9a, 0x80]
        | [0xe2, 0x80, 0x80..=0x8a | 0xaf]
        | [0xe2, 0x81, 0x9f]
        | [0xe3, 0x80, 0x80]
        | [0xef, 0xbb, 0xbf] => true,
        // U+2502, U+2503, U+2551.
        [0xe2, 0x94, 0x82 | 0x83] | [0xe2, 0x95, 0x91] => borders,
        _ => false,
    }
}

/// Trims `view[from..to]` of white space (and, for agent lines, box borders); returns the range.
fn trim(view: &[u8], mut from: usize, mut to: usize, how: Trim) -> (usize, usize) {
    while from < to {
        let last = view[to - 1];
        if last.is_ascii_whitespace() {
            to -= 1;
            continue;
        }
        let width = last_char_width(&view[from..to]);
        if last < 0x80 || !is_blank(&view[to - width..to], how.borders) {
            break;
        }
        to -= width;
    }
    while how.left && from < to {
        let first = view[from];
        if first.is_ascii_whitespace() {
            from += 1;
            continue;
        }
        let width = first_char_width(first).min(to - from);
        if first < 0x80 || !is_blank(&view[from..from + width], how.borders) {
            break;
        }
        from += width;
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
    use super::{PHRASES, find_phrases, suffix_bytes};

    #[test]
    fn phrases_respect_word_boundaries_and_optional_spaces() {
        let busy = |text: &[u8]| find_phrases(text).busy;
        assert!(busy(b"working (3s"));
        assert!(busy(b"x qqworking("));
        assert!(!busy(b"networking ("));
        assert!(!busy(b"working on it"));
        let starting = |text: &[u8]| find_phrases(text).starting;
        assert!(starting(b"model:loading"));
        assert!(starting(b"model: loading"));
        assert!(!starting(b"model: loadings"));
        let mcp = find_phrases(b"starting mcp servers (1/2) starting mcp servers complete");
        assert!(mcp.mcp_starting && mcp.mcp_started);
    }

    #[test]
    fn busy_phrases_in_their_usual_spelling_are_found_in_one_line() {
        assert!(super::busy_as_usually_spelled(
            b"* Working (3s . esc to interrupt)"
        ));
        assert!(super::busy_as_usually_spelled(
            "✻ Thinking… (12s · esc to interrupt)".as_bytes()
        ));
        assert!(super::busy_as_usually_spelled(
            b"1 background terminal running"
        ));
        assert!(!super::busy_as_usually_spelled(b"Networking (ok)"));
        assert!(!super::busy_as_usually_spelled(b"Working on it"));
        assert!(
            !super::busy_as_usually_spelled(b"ESC to interrupt"),
            "left to the region search"
        );
    }

    #[test]
    fn every_phrase_is_found_in_its_own_words() {
        for phrase in &PHRASES {
            let mut text = phrase.first.to_vec();
            for part in phrase.rest {
                text.push(b' ');
                text.extend_from_slice(part);
            }
            if phrase.meaning == super::Meaning::McpStarting {
                text.extend_from_slice(b"s (0/2)");
            }
            let found = find_phrases(&text);
            let any = found.busy
                || found.starting
                || found.mcp_starting
                || found.mcp_started
                || found.dialog
                || found.cancel
                || found.confirm
                || found.permission
                || found.sign_in;
            assert!(any, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn ascii_graphic_detection_agrees_with_a_plain_scan() {
        for value in 0..=255u8 {
            for position in 0..12 {
                let mut bytes = "─ ─ ".as_bytes().to_vec();
                bytes.insert(position.min(bytes.len()), value);
                let plain = bytes.iter().any(|&b| b > b' ' && b < 0x80);
                assert_eq!(
                    super::has_ascii_graphic(&bytes),
                    plain,
                    "{value:#x} at {position}"
                );
            }
        }
    }

    #[test]
    fn trim_removes_unicode_spaces_and_box_borders_only_where_asked() {
        let line = "\u{a0}│ ❯\u{3000}│\u{feff}".as_bytes();
        let (from, to) = super::trim(line, 0, line.len(), super::TRIM_AGENT);
        assert_eq!(&line[from..to], "❯".as_bytes());
        let (from, to) = super::trim(line, 0, line.len(), super::TRIM_RIGHT);
        assert_eq!(&line[from..to], "\u{a0}│ ❯\u{3000}│".as_bytes());
    }

    #[test]
    fn measure_counts_characters_of_long_lines_exactly() {
        for repeat in [1, 254, 255, 256, 700] {
            let text = format!("{}x", "─日a".repeat(repeat));
            assert_eq!(
                super::measure(text.as_bytes()),
                (text.chars().count(), true),
                "{repeat}"
            );
        }
        assert_eq!(super::measure("── ─".as_bytes()), (4, false));
    }

    #[test]
    fn measure_counts_characters_at_every_alignment() {
        for prefix in 0..40 {
            let text = format!("{}❯é日本語🦀 plain ─│", "a".repeat(prefix));
            assert_eq!(
                super::measure(text.as_bytes()).0,
                text.chars().count(),
                "prefix {prefix}"
            );
        }
    }

    #[test]
    fn suffix_counts_characters_not_bytes() {
        let text = "a❯é".as_bytes();
        assert_eq!(suffix_bytes(text, 1), 2);
        assert_eq!(suffix_bytes(text, 2), 5);
        assert_eq!(suffix_bytes(text, 9), text.len());
    }
}
