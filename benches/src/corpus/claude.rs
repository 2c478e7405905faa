//! The Claude-Code-style corpus ([`claude_redraws`]): a full-screen frame erased and redrawn
//! Ink-style under a syntax-highlighted transcript, its spinner line rewritten in place.

use super::ansi::{Ansi, Rgb, columns, wrap};
use super::words::{
    AGENT_SENTENCES, CODE_LINES, COMMAND_OUTPUT, COMMANDS, PATHS, SplitMix64, TODOS, USER_PROMPTS,
};
use super::{COLUMNS, CORPUS_BYTES_TARGET, ROWS, TICK_MS};

/// Seed of [`claude_redraws`]; changing it changes every Claude figure.
const SEED_CLAUDE: u64 = 0x0ba7_0c1a_0de0_0001;

/// About 1 MiB of Claude-Code-style full-screen redraws, escape-dense (over half the bytes).
///
/// Each turn types a prompt into the `❯` input box (one full redraw per keystroke burst),
/// submits it, then alternates spinner ticks (`✻ Thinking… (12s · ↓ 1.2k tokens · esc to
/// interrupt)`, the verb shimmering in truecolor one character at a time) with transcript
/// blocks: prose with CJK text and emoji, tool calls, syntax-highlighted diffs, to-do lists.
/// A full redraw, inside a synchronized update (`ESC[?2026h` … `l`), erases the previous frame
/// Ink-style (`ESC[2K ESC[1A` per line, then `ESC[G`), draws it again (box drawing, CUF padding)
/// and parks the caret in the input box with CUP; most ticks between full redraws rewrite only
/// the spinner line. OSC window titles and bracketed-paste toggles mark turn boundaries. The
/// corpus ends with an idle frame: the input box with `❯` and the `? for shortcuts` footer.
pub fn claude_redraws() -> Vec<u8> {
    let mut screen = ClaudeScreen {
        rng: SplitMix64::new(SEED_CLAUDE),
        out: Ansi::default(),
        frame_lines: 0,
        spinner_shown: false,
        tick: 0,
    };
    screen.out.osc_title("✳ Claude Code");
    screen.out.csi("?2004h");
    screen.out.csi("?1004h");
    screen.frame(&Status::Idle);
    // Every turn ends with the idle frame, so the corpus does too.
    while screen.out.len() < CORPUS_BYTES_TARGET {
        screen.turn();
    }
    screen.out.into_bytes()
}

/// Spinner glyphs, cycled one per tick.
const SPINNER_GLYPHS: &[&str] = &["·", "✢", "✳", "✶", "✻", "✽"];
/// Verbs the spinner line shows.
const SPINNER_VERBS: &[&str] = &[
    "Thinking",
    "Pondering",
    "Working",
    "Reading",
    "Planning",
    "Tinkering",
    "Weighing",
];

/// The Claude corpus's bottom frame: what sits above the input box.
enum Status<'a> {
    /// Waiting for input: an empty box.
    Idle,
    /// The user is typing.
    Typing(&'a str),
    /// Working: the spinner line.
    Busy {
        verb: &'a str,
        elapsed_ms: u64,
        tokens: usize,
    },
}

struct ClaudeScreen {
    rng: SplitMix64,
    out: Ansi,
    /// Lines the last full frame occupied, plus the one its trailing newline opened.
    frame_lines: usize,
    /// Whether the frame on screen has a spinner line that a tick may rewrite in place.
    spinner_shown: bool,
    /// Spinner ticks so far: drives the glyph, the shimmer and the full redraws.
    tick: usize,
}

impl ClaudeScreen {
    const ORANGE: Rgb = Rgb(215, 119, 87);
    const SHIMMER: Rgb = Rgb(245, 169, 137);
    const BORDER: Rgb = Rgb(136, 136, 136);
    /// Spinner ticks from one full redraw to the next; the ticks between rewrite only the
    /// spinner line.
    const TICKS_PER_REDRAW: usize = 8;
    /// Rows of the busy frame from the bottom: the spinner line, a blank line, three rows of
    /// input box, the footer and the empty row after its newline.
    const SPINNER_ROW: usize = ROWS - 6;
    const INPUT_ROW: usize = ROWS - 3;
    /// Column of the caret in an empty input box.
    const INPUT_COL: usize = 5;

    fn turn(&mut self) {
        let prompt = self.rng.pick(USER_PROMPTS);
        let mut typed = 0;
        while typed < prompt.len() {
            let burst = self.rng.range(1, 3);
            typed = prompt[typed..]
                .char_indices()
                .nth(burst)
                .map_or(prompt.len(), |(i, _)| typed + i);
            self.frame(&Status::Typing(&prompt[..typed]));
        }
        self.out.csi("?2004l");
        if self.rng.chance(40) {
            let title: Vec<&str> = prompt.split(' ').take(3).collect();
            self.out.osc_title(&format!("✳ {}", title.join(" ")));
        }
        self.commit(|s| s.user_message(prompt));
        let verb = self.rng.pick(SPINNER_VERBS);
        let mut elapsed_ms = 0;
        let mut tokens = 0;
        for _ in 0..self.rng.range(3, 7) {
            for _ in 0..self.rng.range(6, 24) {
                elapsed_ms += TICK_MS;
                tokens += self.rng.range(0, 40);
                self.tick += 1;
                if self.spinner_shown && !self.tick.is_multiple_of(Self::TICKS_PER_REDRAW) {
                    self.spinner_tick(verb, elapsed_ms, tokens);
                } else {
                    self.frame(&Status::Busy {
                        verb,
                        elapsed_ms,
                        tokens,
                    });
                }
            }
            match self.rng.range(0, 4) {
                0 => self.commit(Self::agent_text),
                1 => self.commit(Self::tool_call),
                2 | 3 => self.commit(Self::diff),
                _ => self.commit(Self::todos),
            }
        }
        self.commit(Self::agent_text);
        self.out.csi("?2004h");
        self.frame(&Status::Idle);
    }

    /// Erases the frame and writes a transcript block where it was; the next [`Self::frame`]
    /// draws the frame below the block.
    fn commit(&mut self, block: impl FnOnce(&mut Self)) {
        self.out.cup(ROWS, 1);
        self.out.erase_lines(self.frame_lines);
        self.frame_lines = 0;
        self.spinner_shown = false;
        block(self);
    }

    /// A full redraw inside a synchronized update: back to the row under the frame, erase it
    /// Ink-style, draw it again, park the caret in the input box.
    fn frame(&mut self, status: &Status<'_>) {
        self.out.csi("?2026h");
        self.out.csi("?25l");
        self.out.cup(ROWS, 1);
        self.out.erase_lines(self.frame_lines);
        let mut lines = 0;
        self.spinner_shown = false;
        if let Status::Busy {
            verb,
            elapsed_ms,
            tokens,
        } = *status
        {
            self.spinner_line(verb, elapsed_ms, tokens);
            self.out.crlf();
            self.out.crlf();
            lines += 2;
            self.spinner_shown = true;
        }
        let inner = COLUMNS - 2;
        self.out.fg(Self::BORDER);
        self.out.text("╭");
        self.out.repeat("─", inner);
        self.out.text("╮");
        self.out.sgr("39");
        self.out.crlf();
        self.out.fg(Self::BORDER);
        self.out.text("│");
        self.out.sgr("39");
        self.out.text(" ");
        self.out.sgr("1");
        self.out.text("❯");
        self.out.sgr("22");
        self.out.text(" ");
        let used = match status {
            Status::Typing(input) => {
                self.out.text(input);
                self.out.sgr("7");
                self.out.text(" ");
                self.out.sgr("27");
                columns(input) + 1
            }
            Status::Idle | Status::Busy { .. } => 0,
        };
        self.out.cuf(inner.saturating_sub(3 + used));
        self.out.fg(Self::BORDER);
        self.out.text("│");
        self.out.sgr("39");
        self.out.crlf();
        self.out.fg(Self::BORDER);
        self.out.text("╰");
        self.out.repeat("─", inner);
        self.out.text("╯");
        self.out.sgr("39");
        self.out.crlf();
        self.out.text("  ");
        self.out.sgr("2");
        self.out.text("? for shortcuts");
        self.out.sgr("22");
        self.out.crlf();
        lines += 4;
        self.frame_lines = lines + 1;
        let caret = match status {
            Status::Typing(input) => Self::INPUT_COL + columns(input),
            _ => Self::INPUT_COL,
        };
        self.out.cup(Self::INPUT_ROW, caret);
        self.out.csi("?25h");
        self.out.csi("?2026l");
    }

    /// A tick between full redraws: only the spinner line is rewritten in place.
    fn spinner_tick(&mut self, verb: &str, elapsed_ms: u64, tokens: usize) {
        self.out.csi("?2026h");
        self.out.csi("?25l");
        self.out.cup(Self::SPINNER_ROW, 1);
        self.out.csi("2K");
        self.spinner_line(verb, elapsed_ms, tokens);
        self.out.cup(Self::INPUT_ROW, Self::INPUT_COL);
        self.out.csi("?25h");
        self.out.csi("?2026l");
    }

    /// `✻ Thinking… (12s · ↓ 1.2k tokens · esc to interrupt)`, the verb in a moving shimmer.
    fn spinner_line(&mut self, verb: &str, elapsed_ms: u64, tokens: usize) {
        self.out.fg(Self::ORANGE);
        self.out
            .text(SPINNER_GLYPHS[self.tick % SPINNER_GLYPHS.len()]);
        self.out.text(" ");
        let width = verb.chars().count() + 1;
        let bright = self.tick % (width + 4);
        for (i, c) in verb.chars().chain(['…']).enumerate() {
            self.out.fg(if i.abs_diff(bright) <= 1 {
                Self::SHIMMER
            } else {
                Self::ORANGE
            });
            self.out.text(c.encode_utf8(&mut [0; 4]));
        }
        self.out.sgr("39");
        self.out.text(" ");
        self.out.sgr("2");
        self.out.text(&format!("({}s · ", elapsed_ms / 1000));
        self.out.sgr("22");
        self.out.fg(Rgb(153, 153, 153));
        self.out.text(&format!(
            "↓ {}.{}k tokens",
            tokens / 1000,
            tokens % 1000 / 100
        ));
        self.out.sgr("39");
        self.out.sgr("2");
        self.out.text(" · ");
        self.out.sgr("22");
        self.out.sgr("1");
        self.out.text("esc");
        self.out.sgr("22");
        self.out.sgr("2");
        self.out.text(" to interrupt)");
        self.out.sgr("22");
    }

    fn bullet(&mut self, colour: Rgb) {
        self.out.fg(colour);
        self.out.text("⏺");
        self.out.sgr("39");
        self.out.text(" ");
    }

    fn user_message(&mut self, prompt: &str) {
        self.out.crlf();
        self.out.fg256(246);
        self.out.text("> ");
        self.out.text(prompt);
        self.out.sgr("39");
        self.out.crlf();
        self.out.crlf();
    }

    fn agent_text(&mut self) {
        let mut paragraph = Vec::new();
        for _ in 0..self.rng.range(1, 3) {
            paragraph.push(self.rng.pick(AGENT_SENTENCES));
        }
        self.bullet(Rgb(255, 255, 255));
        for (i, line) in wrap(&paragraph.join(" "), COLUMNS - 2).iter().enumerate() {
            if i > 0 {
                self.out.text("  ");
            }
            self.out.prose(line, "38;5;153");
            self.out.crlf();
        }
        self.out.crlf();
    }

    fn tool_call(&mut self) {
        let command = self.rng.pick(COMMANDS);
        self.bullet(Rgb(78, 186, 101));
        self.out.sgr("1");
        self.out.text("Bash");
        self.out.sgr("22");
        self.out.text(&format!("({command})"));
        self.out.crlf();
        for i in 0..self.rng.range(1, 4) {
            self.out.text(if i == 0 { "  ⎿  " } else { "     " });
            self.out.sgr("2");
            self.out.text(self.rng.pick(COMMAND_OUTPUT));
            self.out.sgr("22");
            self.out.crlf();
        }
        self.out.crlf();
    }

    fn diff(&mut self) {
        const ADDED: Rgb = Rgb(2, 40, 0);
        const REMOVED: Rgb = Rgb(61, 1, 0);
        let path = self.rng.pick(PATHS);
        let added = self.rng.range(1, 6);
        let removed = self.rng.range(0, 3);
        self.bullet(Rgb(78, 186, 101));
        self.out.sgr("1");
        self.out.text("Update");
        self.out.sgr("22");
        self.out.text(&format!("({path})"));
        self.out.crlf();
        self.out.text("  ⎿  ");
        self.out.text(&format!(
            "Updated {path} with {added} additions and {removed} removals"
        ));
        self.out.crlf();
        let mut line_number = self.rng.range(10, 400);
        let context = self.rng.range(1, 3);
        let kinds = std::iter::repeat_n(' ', context)
            .chain(std::iter::repeat_n('-', removed))
            .chain(std::iter::repeat_n('+', added))
            .chain(std::iter::repeat_n(' ', context));
        for kind in kinds {
            let code = self.rng.pick(CODE_LINES);
            self.out.text("      ");
            self.out.sgr("2");
            self.out.text(&format!("{line_number:>4}"));
            self.out.sgr("22");
            self.out.text(" ");
            match kind {
                '+' => self.out.bg(ADDED),
                '-' => self.out.bg(REMOVED),
                _ => {}
            }
            self.out.text(&kind.to_string());
            self.out.text(" ");
            self.out.highlighted(code);
            if kind != ' ' {
                self.out.csi("K");
                self.out.sgr("49");
            }
            self.out.crlf();
            if kind != '-' {
                line_number += 1;
            }
        }
        self.out.crlf();
    }

    fn todos(&mut self) {
        let done = self.rng.range(0, TODOS.len());
        self.bullet(Rgb(78, 186, 101));
        self.out.sgr("1");
        self.out.text("Update Todos");
        self.out.sgr("22");
        self.out.crlf();
        for (i, item) in TODOS.iter().enumerate() {
            self.out.text(if i == 0 { "  ⎿  " } else { "     " });
            if i < done {
                self.out.fg(Rgb(78, 186, 101));
                self.out.text("☒ ");
                self.out.sgr("9");
                self.out.text(item);
                self.out.sgr("29;39");
            } else {
                self.out.text("☐ ");
                self.out.text(item);
            }
            self.out.crlf();
        }
        self.out.crlf();
    }
}
