//! The phrases the classifier knows (busy, start-up, dialogs, permission, sign-in), each with
//! its meaning and word boundaries, searched for in one pass over the blocker region; and the
//! fast path that finds a busy phrase in its usual spelling within one raw line.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

use super::lines::is_word_byte;

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
// Inline: `classify` calls it on every line from another module (as it inlined it when both
// were one file); so `find_phrases`.
#[inline]
pub(super) fn busy_as_usually_spelled(line: &[u8]) -> bool {
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
pub(super) struct Found {
    pub(super) busy: bool,
    pub(super) cancel: bool,
    pub(super) confirm: bool,
    pub(super) starting: bool,
    pub(super) mcp_starting: bool,
    pub(super) mcp_started: bool,
    pub(super) dialog: bool,
    pub(super) permission: bool,
    pub(super) sign_in: bool,
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

#[inline]
pub(super) fn find_phrases(region: &[u8]) -> Found {
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

#[cfg(test)]
mod tests {
    use super::{PHRASES, find_phrases};

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
}
