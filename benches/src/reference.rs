//! Baseline: the reference prompt detector (variant L), re-implemented to be measured against.
//!
//! [`ReferenceDetector`] reproduces spec §7.1 (`stripAnsi` with its exact regex) and §7.2
//! (`chunkContainsAgentPrompt`): per chunk, decode UTF-8 as a stream, append to a sliding window
//! of the last [`WINDOW_UTF16_MAX`] code units, strip escapes from the whole window, turn control
//! characters into spaces, collapse white space, trim, and look for `❯` or `›` in the last
//! [`GLYPH_LOOKBACK_UTF16`] code units.
//!
//! Invariants:
//! - It is as naive as the reference on purpose (the whole window is re-stripped and
//!   re-normalised on every chunk): it is the baseline, and an optimised copy would make the
//!   comparison meaningless. Only the regex is compiled once.
//! - Lengths are UTF-16 code units (`char::len_utf16`), as in the reference's JavaScript. Where
//!   the reference would cut a surrogate pair in half, this keeps neither half; the lone half
//!   could never be a prompt glyph, so detection is unaffected.
//! - White space is JavaScript's `\s`: Rust's Unicode white space without U+0085, plus U+FEFF.
//!
//! Depends on `regex` and `std` only, never on `baton-runtime`: the baseline must not move when
//! the code under test does.

use regex::Regex;

/// Code units of decoded text the sliding window keeps (spec §7.2 step 2).
pub const WINDOW_UTF16_MAX: usize = 4_096;

/// Code units at the end of the normalised window searched for a prompt glyph (§7.2 step 4).
pub const GLYPH_LOOKBACK_UTF16: usize = 50;

/// The reference `stripAnsi` pattern, verbatim from spec §7.1.
pub const ANSI_PATTERN: &str = r"[\x1b\x9b][\[()#;?]*(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-ORZcf-nq-uy=><~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?";

/// Claude Code's `❯` (U+276F) and Codex CLI's `›` (U+203A).
const PROMPT_GLYPHS: [char; 2] = ['\u{276f}', '\u{203a}'];

/// The reference detector for one agent's output stream.
#[derive(Clone, Debug)]
pub struct ReferenceDetector {
    /// An incomplete UTF-8 sequence at the end of the last chunk (at most 3 bytes), completed by
    /// the next one.
    pending: Vec<u8>,
    /// The last [`WINDOW_UTF16_MAX`] code units of decoded text, escapes included.
    tail: String,
    ansi: Regex,
}

impl Default for ReferenceDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl ReferenceDetector {
    /// A detector with an empty window and a fresh decoder.
    pub fn new() -> Self {
        ReferenceDetector {
            pending: Vec::new(),
            tail: String::new(),
            ansi: Regex::new(ANSI_PATTERN).expect("the spec §7.1 pattern is a valid regex"),
        }
    }

    /// Feeds one chunk of PTY output; true if a prompt glyph is visible afterwards.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut combined = std::mem::take(&mut self.tail);
        let held = if self.pending.is_empty() {
            decode_streaming(chunk, &mut combined).to_vec()
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(chunk);
            decode_streaming(&joined, &mut combined).to_vec()
        };
        self.pending = held;
        let visible = self.prompt_visible(&combined);
        let keep = combined.len() - utf16_suffix(&combined, WINDOW_UTF16_MAX).len();
        combined.drain(..keep);
        self.tail = combined;
        visible
    }

    /// §7.2 steps 3 and 4 on the untruncated `combined` text.
    fn prompt_visible(&self, combined: &str) -> bool {
        let normalised = normalise(&self.strip_ansi(combined));
        !normalised.is_empty()
            && utf16_suffix(&normalised, GLYPH_LOOKBACK_UTF16).contains(PROMPT_GLYPHS)
    }

    /// §7.1: removes every match of [`ANSI_PATTERN`], leftmost first.
    fn strip_ansi<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        self.ansi.replace_all(text, "")
    }
}

/// Appends the decodable part of `bytes` to `out` and returns the incomplete sequence at its end
/// (empty if none), like a streaming `TextDecoder`: each maximal invalid subpart becomes one
/// U+FFFD.
fn decode_streaming<'b>(bytes: &'b [u8], out: &mut String) -> &'b [u8] {
    let mut pieces = bytes.utf8_chunks().peekable();
    while let Some(piece) = pieces.next() {
        out.push_str(piece.valid());
        let invalid = piece.invalid();
        if invalid.is_empty() {
            continue;
        }
        let truncated = matches!(std::str::from_utf8(invalid), Err(e) if e.error_len().is_none());
        if truncated && pieces.peek().is_none() {
            return invalid;
        }
        out.push(char::REPLACEMENT_CHARACTER);
    }
    &[]
}

/// The longest suffix of `text` at most `units_max` UTF-16 code units long.
fn utf16_suffix(text: &str, units_max: usize) -> &str {
    let mut units = 0;
    for (at, c) in text.char_indices().rev() {
        units += c.len_utf16();
        if units > units_max {
            return &text[at + c.len_utf8()..];
        }
    }
    text
}

/// §7.2 step 3 after stripping: controls to spaces, white-space runs to one space, trimmed.
fn normalise(stripped: &str) -> String {
    let mut out = String::with_capacity(stripped.len());
    let mut gap = false;
    for c in stripped.chars() {
        if is_control(c) || is_js_whitespace(c) {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    out
}

/// U+0000–U+001F and U+007F, which the reference replaces with a space.
fn is_control(c: char) -> bool {
    c <= '\u{1f}' || c == '\u{7f}'
}

/// JavaScript's `\s`.
fn is_js_whitespace(c: char) -> bool {
    c == '\u{feff}' || (c != '\u{85}' && c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_strip(input: &str, expect: &str) {
        assert_eq!(
            ReferenceDetector::new().strip_ansi(input),
            expect,
            "stripping {input:?}"
        );
    }

    /// Feeds `chunks` to a fresh detector and compares the verdict after each with `expect`.
    fn check_verdicts(chunks: &[&[u8]], expect: &[bool]) {
        let mut detector = ReferenceDetector::new();
        let verdicts: Vec<bool> = chunks.iter().map(|chunk| detector.feed(chunk)).collect();
        assert_eq!(verdicts, expect, "feeding {chunks:?}");
    }

    fn check_prompt(text: &str, expect: bool) {
        check_verdicts(&[text.as_bytes()], &[expect]);
    }

    #[test]
    fn short_escapes_with_a_final_in_the_set_are_removed() {
        check_strip("a\x1b7b\x1bMc\x1b=d", "abcd");
        check_strip("\x1b[31mred\x1b[0m", "red");
        check_strip("\x1b[2J\x1b[H", "");
        check_strip("\x1b[?1049h\x1b[?25l", "");
        check_strip("\u{9b}31mX", "X");
    }

    #[test]
    fn a_digit_can_serve_as_the_final_character() {
        check_strip("\x1b[2S", "S");
        check_strip("\x1b[12345m", "m");
        check_strip("\x1b[5@", "@");
    }

    #[test]
    fn a_private_marker_is_taken_for_the_final_character() {
        check_strip("\x1b[>4;2m", "4;2m");
    }

    #[test]
    fn unsupported_finals_and_string_introducers_are_kept() {
        check_strip("\x1b[@", "\x1b[@");
        check_strip("\x1bPq#0\x1b\\", "\x1bPq#0\x1b\\");
        check_strip("\x1b_app\x1b\\", "\x1b_app\x1b\\");
    }

    #[test]
    fn osc_runs_to_its_terminator_or_the_end_of_text() {
        check_strip("\x1b]0;title\x07rest", "rest");
        check_strip("\x1b]8;;https://example.test\x1b\\link", "link");
        check_strip("a\x1b]0;unterminated title ❯", "a");
        check_strip("a\x1b]0;cut at\x1b[1mb", "ab");
    }

    #[test]
    fn control_characters_survive_stripping() {
        check_strip("a\r\n\x08b", "a\r\n\x08b");
    }

    #[test]
    fn a_bare_glyph_is_a_prompt() {
        check_prompt("❯", true);
        check_prompt("› ", true);
        check_prompt("work complete\r\n❯ \r\n", true);
    }

    #[test]
    fn a_colour_wrapped_glyph_is_a_prompt() {
        check_prompt("\x1b[38;2;215;119;87m❯\x1b[39m \x1b[7m \x1b[27m", true);
    }

    #[test]
    fn a_glyph_after_a_long_line_is_a_prompt() {
        check_prompt(&format!("{}❯", "A".repeat(200)), true);
    }

    #[test]
    fn a_glyph_followed_by_more_than_fifty_visible_chars_is_not() {
        let menu =
            "❯ Option A\r\n  Option B\r\n  Option C\r\n\r\narrows move, enter picks, esc cancels";
        check_prompt(menu, false);
        check_prompt(&format!("❯{}", "x".repeat(49)), true);
        check_prompt(&format!("❯{}", "x".repeat(50)), false);
    }

    #[test]
    fn escapes_and_white_space_do_not_count_towards_the_fifty() {
        let padding = "\x1b[2K\x1b[1A".repeat(100);
        check_prompt(&format!("❯{padding}{}", " \r\n\t".repeat(40)), true);
    }

    #[test]
    fn empty_or_escape_only_output_is_not_a_prompt() {
        check_prompt("", false);
        check_prompt("\x1b[?1049l", false);
        check_prompt("\x1b]0;❯\x07", false);
    }

    #[test]
    fn the_unterminated_osc_hides_a_glyph_until_it_ends() {
        check_verdicts(
            &[b"\x1b]0;title ", "❯".as_bytes(), b"\x07\xe2\x9d\xaf"],
            &[false, false, true],
        );
    }

    #[test]
    fn a_glyph_split_across_chunks_is_reassembled() {
        check_verdicts(&[b"\xe2", b"\x9d", b"\xaf"], &[false, false, true]);
        check_verdicts(&[b"\xe2\x80", b"\xba"], &[false, true]);
    }

    #[test]
    fn an_escape_split_across_chunks_is_stripped_from_the_window() {
        check_verdicts(
            &[b"\x1b[3", b"8;5;2", "m❯\x1b[0".as_bytes(), b"m"],
            &[false, false, true, true],
        );
    }

    #[test]
    fn the_window_is_cumulative_until_fifty_visible_chars_follow() {
        let chunks: [&[u8]; 4] = ["❯".as_bytes(), b"\x1b[2K blink", &[b'y'; 30], &[b'z'; 30]];
        check_verdicts(&chunks, &[true, true, true, false]);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut out = String::new();
        assert_eq!(decode_streaming(b"a\xffb\xe2\x9d", &mut out), b"\xe2\x9d");
        assert_eq!(out, "a\u{fffd}b");
        out.clear();
        assert_eq!(decode_streaming(b"\xe2\x9dx\xf0", &mut out), b"\xf0");
        assert_eq!(out, "\u{fffd}x");
    }

    #[test]
    fn the_window_keeps_the_last_4096_code_units() {
        let mut detector = ReferenceDetector::new();
        detector.feed(&[b'a'; 10_000]);
        assert_eq!(detector.tail.len(), WINDOW_UTF16_MAX);
        detector.feed("😀".repeat(3_000).as_bytes());
        assert_eq!(detector.tail.chars().count(), WINDOW_UTF16_MAX / 2);
        assert_eq!(detector.tail.encode_utf16().count(), WINDOW_UTF16_MAX);
    }

    #[test]
    fn a_pair_cut_at_the_lookback_edge_is_dropped_whole() {
        let text = format!("😀{}", "x".repeat(49));
        assert_eq!(utf16_suffix(&text, 50), "x".repeat(49));
        assert_eq!(utf16_suffix(&text, 51), text);
    }

    #[test]
    fn white_space_is_javascripts() {
        assert_eq!(
            normalise("\u{a0}a\u{3000}\u{feff}b\u{2028}c\u{85}d \t"),
            "a b c\u{85}d"
        );
        assert_eq!(normalise("a\u{0}\u{7f}\u{1b}b"), "a b");
    }
}
