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
//!
//! Layout: this module holds the verdicts' order (`classify`, the shell's last line, prompt and
//! menu lines); `phrases` the phrase table and its one-pass search; `lines` the walk over the
//! tail's lines and the byte-level work on a line (trimming, measuring, cutting to characters).

mod lines;
mod phrases;

use std::sync::LazyLock;

use super::grid::FAINT_TAIL;
use super::{Profile, Readiness};
use crate::core::state::Attention;
use lines::{
    TRIM_RIGHT, TailWalk, has_ascii_graphic, is_word_byte, starts_with_ignore_case, strip_spaces,
    suffix_bytes, trim,
};
use phrases::{busy_as_usually_spelled, find_phrases};

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
