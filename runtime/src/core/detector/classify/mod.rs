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
//! A frame is read off the text window's view, or off the grid's rows one by one ([`Frame`]):
//! only the rows the tail reaches are rendered, and what was read off a row ([`Known`]: its
//! trimmed extent and characters, whether it is a prompt, a menu's choice or a busy line) is
//! kept while the row's text version stands, so a frame whose footer alone changed costs the
//! footer's rows. Either way the verdict is the one the text in one piece gives (a property
//! test in `grid` holds the two to it).
//!
//! Layout: this module holds the verdicts' order (`classify`, the shell's last line, prompt and
//! menu lines) and what is kept of a row; `phrases` the phrase table and its one-pass search;
//! `lines` the walk over the tail's lines and the byte-level work on a line (trimming,
//! measuring, cutting to characters).

mod lines;
mod phrases;

use std::sync::LazyLock;

use super::grid::{FAINT_TAIL, Grid, SCREEN_ROWS_MAX};
use super::{Profile, Readiness};
use crate::core::state::Attention;
use lines::{
    TRIM_AGENT, TRIM_RIGHT, TailWalk, has_ascii_graphic, is_word_byte, measure,
    starts_with_ignore_case, strip_spaces, suffix_bytes, trim,
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

/// Buffers reused from one classification to the next (the hot path allocates nothing), and
/// what was read off the grid's rows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    /// The blocker region's pieces: the line (see [`Frame::line`]) and the byte range in it,
    /// newest first, and whether each has printable ASCII.
    pieces: Vec<(usize, usize, usize, bool)>,
    /// The blocker region, lower-cased and collapsed.
    lower: Vec<u8>,
    /// What was read off each stored row of the grid, with the row's text version it holds
    /// for (at most [`SCREEN_ROWS_MAX`] entries).
    known: Vec<Known>,
}

/// What one classification reads off a whole line of the tail, kept per stored row of the grid
/// while the row's text version stands. The default is the empty line's (version 0).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Known {
    version: u64,
    /// The trimmed line's bytes in the row's text (equal: nothing is left).
    from: u32,
    to: u32,
    /// Its characters, and whether it has printable ASCII.
    chars: u32,
    graphic: bool,
    /// It is a menu's chosen item, the profile's prompt, or holds a busy phrase in its usual
    /// spelling (with printable ASCII).
    menu: bool,
    prompt: bool,
    busy: bool,
}

impl Known {
    /// What was read off stored row `stored`, text version `version` (`text`), for `profile`:
    /// kept in `known` while the version stands, read again otherwise.
    fn of(
        known: &mut Vec<Known>,
        profile: Profile,
        stored: usize,
        version: u64,
        text: &[u8],
    ) -> Known {
        if known.len() <= stored {
            known.resize(stored + 1, Known::default());
        }
        debug_assert!(known.len() <= usize::from(SCREEN_ROWS_MAX));
        let facts = &mut known[stored];
        if facts.version != version {
            *facts = Known::read(profile, version, text);
        }
        *facts
    }

    /// Reads `text`, version `version` of a row, for `profile`.
    fn read(profile: Profile, version: u64, text: &[u8]) -> Self {
        let (from, to) = trim(text, 0, text.len(), TRIM_AGENT);
        let line = &text[from..to];
        let (chars, graphic) = measure(line);
        // Row texts are at most SCREEN_COLS_MAX characters of four bytes each.
        let narrow = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
        Known {
            version,
            from: narrow(from),
            to: narrow(to),
            chars: narrow(chars),
            graphic,
            menu: is_menu_choice(line),
            prompt: is_prompt_line(profile, line),
            busy: graphic && busy_as_usually_spelled(line),
        }
    }
}

/// The text a frame is read from, line by line from the bottom.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// One buffer of lines ended by line feeds (the text window's view).
    Text(&'a [u8]),
    /// The grid's rows, each apart with its text version: only the rows the tail reaches are
    /// rendered (see `Grid::render_row`), and what was read off a row is kept while its
    /// version stands.
    Grid(&'a mut Grid),
}

impl Frame<'_> {
    /// The bytes of line `id`: the whole buffer of a [`Frame::Text`] (its lines are ranges of
    /// it), the screen's row `id` of a [`Frame::Grid`] (rendered when the walk reached it).
    fn line(&self, id: usize) -> &[u8] {
        match self {
            Frame::Text(view) => view,
            Frame::Grid(grid) => grid.row(id).2,
        }
    }
}

/// Classifies the visible text of `frame` for `profile`.
pub(crate) fn classify(profile: Profile, frame: Frame<'_>, scratch: &mut Scratch) -> Readiness {
    if profile == Profile::Shell {
        return classify_shell(frame);
    }
    let mut walk = TailWalk::new(frame);
    let known = &mut scratch.known;
    let pieces = &mut scratch.pieces;
    pieces.clear();
    // The blocker region is the tail's last BLOCKER_CHARS; prompt and menu lines met on the way
    // count.
    let mut prompt = false;
    let mut menu = false;
    let mut budget = BLOCKER_CHARS;
    while budget > 0 {
        let Some(line) = walk.next(profile, known) else {
            break;
        };
        let bytes = walk.frame().line(line.id);
        let text = &bytes[line.from..line.to];
        let (is_menu, is_prompt) = match line.known {
            Some(known) => (known.menu, known.prompt),
            None => (is_menu_choice(text), is_prompt_line(profile, text)),
        };
        // A menu is what the screen ends with: a choice-like line above the input line is the
        // agent's transcript (an echoed prompt `❯ 1. Fix it`, an answer `● 1. …`).
        menu = menu || (!prompt && is_menu);
        prompt = prompt || is_prompt;
        let busy = if line.chars >= budget && line.graphic {
            let from = line.to - suffix_bytes(text, budget);
            let graphic = has_ascii_graphic(&bytes[from..line.to]);
            pieces.push((line.id, from, line.to, graphic));
            graphic && busy_as_usually_spelled(&bytes[from..line.to])
        } else {
            // Whole, or without printable ASCII: then any part of it stands as one marker.
            pieces.push((line.id, line.from, line.to, line.graphic));
            match line.known {
                Some(known) => known.busy,
                None => line.graphic && busy_as_usually_spelled(text),
            }
        };
        budget = budget.saturating_sub(line.chars + 1);
        // A busy indicator wins over everything but a menu drawn under it: one in its usual
        // spelling, within a single line, settles the verdict without building the region (it
        // would be found there too).
        if !menu && busy {
            return Readiness::Busy;
        }
    }
    if pieces.is_empty() {
        return Readiness::NoPrompt;
    }
    let lower = &mut scratch.lower;
    lower.clear();
    for &(id, from, to, graphic) in pieces.iter().rev() {
        // A line with no printable ASCII (box drawing, rules) cannot hold or join a phrase: one
        // non-word byte stands for it.
        lower.extend_from_slice(if graphic {
            &walk.frame().line(id)[from..to]
        } else {
            b"\x01"
        });
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
    if !menu && (prompt || prompt_further_up(profile, &mut walk, known)) {
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

/// Whether a line of the tail left in `walk` is the profile's prompt.
fn prompt_further_up(profile: Profile, walk: &mut TailWalk<'_>, known: &mut Vec<Known>) -> bool {
    while let Some(line) = walk.next(profile, known) {
        let prompt = match line.known {
            Some(known) => known.prompt,
            None => is_prompt_line(profile, &walk.frame().line(line.id)[line.from..line.to]),
        };
        if prompt {
            return true;
        }
    }
    false
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

fn classify_shell(frame: Frame<'_>) -> Readiness {
    let verdict = match frame {
        Frame::Text(view) => {
            let mut end = view.len();
            loop {
                let start = memchr::memrchr(b'\n', &view[..end]).map_or(0, |at| at + 1);
                if let Some(verdict) = shell_line(&view[start..end]) {
                    break Some(verdict);
                }
                if start == 0 {
                    break None;
                }
                end = start - 1;
            }
        }
        Frame::Grid(grid) => (0..usize::from(grid.size().1))
            .rev()
            .find_map(|row| shell_line(grid.render_row(row).2)),
    };
    verdict.unwrap_or(Readiness::NoPrompt)
}

/// The shell's verdict on `line`, the last line of the screen unless it is blank (`None`).
fn shell_line(line: &[u8]) -> Option<Readiness> {
    let (from, to) = trim(line, 0, line.len(), TRIM_RIGHT);
    if from == to {
        return None;
    }
    let end = &line[to - suffix_bytes(&line[from..to], SHELL_LINE_CHARS)..to];
    // `$` followed by trimmed white space: bash's `user@host:~/dir$ `.
    let dollar_space = to < line.len() && line[to - 1] == b'$';
    Some(if dollar_space || is_shell_prompt(end) {
        Readiness::Ready
    } else {
        Readiness::NoPrompt
    })
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
