//! Deterministic corpora of agent terminal output, the input of the detector benches.
//!
//! Three generators imitate the PTY traffic a prompt detector sees:
//! - [`claude_redraws`]: a Claude-Code-style TUI that erases and redraws its bottom frame
//!   (spinner, shimmer, input box) on every keystroke and every few ticks, under a
//!   syntax-highlighted transcript. Most of its bytes are escape sequences.
//! - [`codex_output`]: a Codex-CLI-style inline viewport: history inserted above a fixed bottom
//!   pane through a scroll region, cell-level updates of a status line, coloured diffs.
//!   Moderate escape density.
//! - [`build_logs`]: cargo- and npm-style logs: plain ASCII lines ending in `\r\n`, a few SGR
//!   colours, progress lines rewritten in place with `\r`.
//!
//! [`chunks`] cuts a corpus into the fixed-size reads a PTY host would deliver.
//!
//! Invariants:
//! - Determinism: every generator draws from a SplitMix64 with a fixed seed, never from a clock,
//!   the environment or a hash seed, so the same bytes come out on every run and every machine
//!   and a bench figure stays comparable across commits.
//! - Size: a generator adds whole turns (or log sections) until the corpus reaches
//!   [`CORPUS_BYTES_TARGET`], so it overshoots by less than one turn.
//! - Each corpus is valid UTF-8 as a whole; only [`chunks`] splits characters and escapes.
//! - Each corpus ends the way its agent looks when it waits for input: the Claude frame with the
//!   `❯` input box, the Codex pane with its `›` line, the build log with a shell prompt.
//!
//! All text is invented for this crate. The module depends on nothing but `std`.

/// Size in bytes after which a generator stops (at the end of the turn that crosses it): large
/// enough that per-call overheads vanish in the figures, small enough for a 2-core CI budget.
pub const CORPUS_BYTES_TARGET: usize = 1 << 20;

/// Columns of the simulated terminal: the width the generators wrap and pad to.
const COLUMNS: usize = 80;
/// Rows of the simulated terminal; the Claude frame and the Codex pane sit at its bottom.
const ROWS: usize = 40;

/// Seed of [`claude_redraws`]; changing it changes every Claude figure.
const SEED_CLAUDE: u64 = 0x0ba7_0c1a_0de0_0001;
/// Seed of [`codex_output`].
const SEED_CODEX: u64 = 0x0ba7_0c0d_e800_0002;
/// Seed of [`build_logs`].
const SEED_BUILD: u64 = 0x0ba7_0b11_d000_0003;

/// Cuts `data` into consecutive slices of `size` bytes (the last may be shorter).
///
/// The cut ignores content on purpose: boundaries fall inside UTF-8 characters and escape
/// sequences, as they do in real PTY reads, and a detector must cope.
///
/// # Panics
///
/// Panics if `size` is zero.
pub fn chunks(data: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    data.chunks(size)
}

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

/// About 1 MiB of Codex-CLI-style inline-viewport output, moderately escape-dense.
///
/// A fixed bottom pane holds a status line (`• Working (3s • esc to interrupt)`, updated cell by
/// cell as ratatui-style diffs), the `›` input line and a footer. History (user prompts,
/// reasoning summaries, commands and their output, coloured diffs, messages) is inserted above
/// the pane by scrolling a region (`ESC[1;nr`, `ESC[nS`) and writing the freed rows from a CUP
/// to the first of them.
/// The corpus ends with the idle pane: no status, the `›` line, the footer.
pub fn codex_output() -> Vec<u8> {
    let mut pane = CodexPane {
        rng: SplitMix64::new(SEED_CODEX),
        out: Ansi::default(),
        input_col: 3,
    };
    pane.out.csi("?2004h");
    pane.redraw(None);
    // Every turn ends with the idle pane, so the corpus does too.
    while pane.out.len() < CORPUS_BYTES_TARGET {
        pane.turn();
    }
    pane.out.into_bytes()
}

/// About 1 MiB of cargo- and npm-style build logs, mostly plain ASCII.
///
/// Sections of `Compiling` lines with an in-place `Building [==>  ]` progress line (`\r` and
/// `ESC[K`), compiler warnings, test runs, npm installs with a braille spinner, and bundler
/// summaries. Lines end in `\r\n` as a PTY delivers them; colours are the few SGR codes these
/// tools emit. The corpus ends with a coloured bash prompt after an OSC title.
pub fn build_logs() -> Vec<u8> {
    let mut log = BuildLog {
        rng: SplitMix64::new(SEED_BUILD),
        out: Ansi::default(),
    };
    log.shell_prompt();
    // Every section ends with the prompt, so the corpus does too.
    while log.out.len() < CORPUS_BYTES_TARGET {
        log.section();
    }
    log.out.into_bytes()
}

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter through a mixing function. Tiny,
/// seedable and statistically fine for picking words; not for anything secret.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`, by multiply-shift (bias below 2^-32 for these small ranges).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.range(0, 99) < percent
    }

    fn pick(&mut self, words: &[&'static str]) -> &'static str {
        words[self.range(0, words.len() - 1)]
    }
}

/// A colour for truecolor SGR (`ESC[38;2;r;g;bm`).
#[derive(Clone, Copy)]
struct Rgb(u8, u8, u8);

/// The byte stream a TUI writes to its PTY, with one method per escape sequence it uses.
#[derive(Default)]
struct Ansi {
    s: String,
}

impl Ansi {
    fn len(&self) -> usize {
        self.s.len()
    }

    fn into_bytes(self) -> Vec<u8> {
        self.s.into_bytes()
    }

    fn text(&mut self, text: &str) {
        self.s.push_str(text);
    }

    fn repeat(&mut self, text: &str, count: usize) {
        for _ in 0..count {
            self.s.push_str(text);
        }
    }

    /// End of line as a PTY delivers it (the line discipline turns `\n` into `\r\n`).
    fn crlf(&mut self) {
        self.s.push_str("\r\n");
    }

    /// `ESC [` followed by `body`.
    fn csi(&mut self, body: &str) {
        self.s.push_str("\x1b[");
        self.s.push_str(body);
    }

    fn sgr(&mut self, params: &str) {
        self.s.push_str(&format!("\x1b[{params}m"));
    }

    fn fg(&mut self, Rgb(r, g, b): Rgb) {
        self.s.push_str(&format!("\x1b[38;2;{r};{g};{b}m"));
    }

    fn bg(&mut self, Rgb(r, g, b): Rgb) {
        self.s.push_str(&format!("\x1b[48;2;{r};{g};{b}m"));
    }

    fn fg256(&mut self, index: u8) {
        self.s.push_str(&format!("\x1b[38;5;{index}m"));
    }

    /// Cursor position (CUP), 1-based.
    fn cup(&mut self, row: usize, col: usize) {
        self.s.push_str(&format!("\x1b[{row};{col}H"));
    }

    /// Cursor forward (CUF).
    fn cuf(&mut self, columns: usize) {
        if columns > 0 {
            self.s.push_str(&format!("\x1b[{columns}C"));
        }
    }

    /// Ink's erase of the previous frame: clear and go up for every line, then column 1.
    fn erase_lines(&mut self, count: usize) {
        for i in 0..count {
            self.s.push_str("\x1b[2K");
            if i + 1 < count {
                self.s.push_str("\x1b[1A");
            }
        }
        if count > 0 {
            self.s.push_str("\x1b[G");
        }
    }

    /// OSC 0 (icon name and window title), BEL-terminated.
    fn osc_title(&mut self, title: &str) {
        self.s.push_str("\x1b]0;");
        self.s.push_str(title);
        self.s.push('\x07');
    }

    /// Code with one truecolor escape per token, the way a highlighter colours a diff.
    fn highlighted(&mut self, code: &str) {
        let mut rest = code;
        while let Some(first) = rest.chars().next() {
            let len = token_len(rest);
            let (token, tail) = rest.split_at(len);
            if !first.is_whitespace() {
                self.fg(token_colour(token));
            }
            self.text(token);
            rest = tail;
        }
        self.sgr("39");
    }

    /// Prose in which `backticked` words are coloured with `code` (an SGR parameter string).
    fn prose(&mut self, line: &str, code: &str) {
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 1 {
                self.sgr(code);
                self.text(part);
                self.sgr("39");
            } else {
                self.text(part);
            }
        }
    }
}

/// Length in bytes of the token at the start of `code`: a string literal, a word, a run of
/// white space or one other character.
fn token_len(code: &str) -> usize {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let run = |keep: fn(char) -> bool| code.find(|c: char| !keep(c)).unwrap_or(code.len());
    match code.chars().next() {
        None => 0,
        Some('"') => code[1..].find('"').map_or(code.len(), |i| i + 2),
        Some(c) if is_word(c) => run(is_word),
        Some(c) if c.is_whitespace() => run(char::is_whitespace),
        Some(c) => c.len_utf8(),
    }
}

/// One Dark-like colour of a token.
fn token_colour(token: &str) -> Rgb {
    const KEYWORDS: &[&str] = &[
        "fn", "let", "mut", "pub", "use", "impl", "struct", "match", "if", "else", "return", "for",
        "in", "self", "const", "async", "await", "Some", "None", "Ok", "Err",
    ];
    let first = token.chars().next().unwrap_or(' ');
    if KEYWORDS.contains(&token) {
        Rgb(198, 120, 221)
    } else if first == '"' {
        Rgb(152, 195, 121)
    } else if first.is_ascii_digit() {
        Rgb(209, 154, 102)
    } else if first.is_uppercase() {
        Rgb(229, 192, 123)
    } else if first.is_alphanumeric() || first == '_' {
        Rgb(224, 108, 117)
    } else {
        Rgb(171, 178, 191)
    }
}

/// Terminal columns `text` occupies: two for East Asian wide characters and emoji, else one.
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115f
            | 0x2e80..=0xa4cf
            | 0xac00..=0xd7a3
            | 0xf900..=0xfaff
            | 0xff00..=0xff60
            | 0x1f300..=0x1faff => 2,
            _ => 1,
        })
        .sum()
}

/// Splits `text` at spaces into lines of at most `width` columns (a longer word gets a line of
/// its own). Backticks do not count: they become colour escapes.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let used = columns(&line.replace('`', ""));
        if !line.is_empty() && used + 1 + columns(&word.replace('`', "")) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// Prompts a user types into either agent.
const USER_PROMPTS: &[&str] = &[
    "fix the flaky timeout in the session tests",
    "add a --json flag to the status command",
    "why does the parser reject trailing commas?",
    "把日志输出改成结构化格式",
    "rename Config::load to Config::from_env and update the callers",
    "write a benchmark for the ring buffer",
    "テストを追加してください",
    "explain how the retry loop backs off",
    "make the release build strip debug info",
    "빌드 경고를 모두 고쳐 주세요",
];

/// Sentences an agent says between tool calls; some carry CJK text or emoji.
const AGENT_SENTENCES: &[&str] = &[
    "I'll start by reading `src/session.rs` to see how the timeout is wired.",
    "The test waits on a real clock, so it races the scheduler under load.",
    "Switching to the injected `Clock` makes the wait deterministic.",
    "All 48 tests pass now ✅",
    "配置文件中的超时设置过短，我已将其调整为三十秒。",
    "ビルドは成功しました 🎉 警告はありません。",
    "빌드가 완료되었습니다. 경고는 없습니다.",
    "The retry loop doubles its delay up to `BACKOFF_MAX_MS` and then gives up.",
    "Next I'll update the callers and run `cargo test` again 🔧",
    "There are two call sites in `cli/status.rs` and one in the docs.",
    "The flag is wired through `StatusArgs` and documented in the help text.",
    "Trailing commas fail because `parse_list` expects another item after each separator.",
    "I kept the public API unchanged; only the internals moved 🚀",
    "日志现在以 JSON 行输出，每行一个事件。",
    "The ring buffer bench covers pushes, pops and wrap-around at 4 KiB.",
];

/// Shell commands an agent runs.
const COMMANDS: &[&str] = &[
    "cargo test -p session",
    "rg -n \"fn load\" src",
    "cargo clippy --all-targets -- -D warnings",
    "git diff --stat",
    "npm run lint",
    "cargo build --release",
    "ls src/cli",
];

/// Lines those commands print.
const COMMAND_OUTPUT: &[&str] = &[
    "running 48 tests",
    "test result: ok. 48 passed; 0 failed; 0 ignored",
    "src/config.rs:41:    pub fn load() -> Result<Self, ConfigError> {",
    " 3 files changed, 27 insertions(+), 9 deletions(-)",
    "warning: unused import: `std::fmt`",
    "Finished release profile in 41.07s",
    "args.rs  mod.rs  status.rs  run.rs",
    "✓ 112 files linted, 0 problems",
];

/// Files an agent reads and edits.
const PATHS: &[&str] = &[
    "src/session.rs",
    "src/config.rs",
    "src/cli/status.rs",
    "tests/retry.rs",
    "src/ring.rs",
    "src/parser/list.rs",
];

/// Source lines that appear in diffs.
const CODE_LINES: &[&str] = &[
    "    let deadline = now.plus(timeout_ms);",
    "    if self.tail.len() > WINDOW_BYTES_MAX {",
    "        return Err(Error::Timeout { after_ms: 30_000 });",
    "pub fn from_env() -> Result<Self, ConfigError> {",
    "    let retries = config.retries.unwrap_or(3);",
    "    match frame.kind() {",
    "        Kind::Data => self.on_data(&frame)?,",
    "const BACKOFF_MAX_MS: u64 = 8_000;",
    "    for line in output.lines().rev().take(50) {",
    "    }",
    "    let json = serde_json::to_string(&status)?;",
    "        self.delay_ms = (self.delay_ms * 2).min(BACKOFF_MAX_MS);",
    "    let label = \"session timed out\";",
    "    assert_eq!(ring.pop(), Some(7));",
];

/// To-do items an agent tracks.
const TODOS: &[&str] = &[
    "Read the session timeout code",
    "Inject the clock into Session",
    "Rewrite the flaky test",
    "Run the full test suite",
    "Update the docs",
];

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

/// Milliseconds between two spinner ticks.
const TICK_MS: u64 = 100;

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

/// The Codex corpus's bottom pane and the rows it occupies.
struct CodexPane {
    rng: SplitMix64,
    out: Ansi,
    /// Column of the caret on the input line.
    input_col: usize,
}

impl CodexPane {
    const STATUS_ROW: usize = ROWS - 4;
    const INPUT_ROW: usize = ROWS - 2;
    const FOOTER_ROW: usize = ROWS;

    fn turn(&mut self) {
        let prompt = self.rng.pick(USER_PROMPTS);
        let mut typed = 0;
        while typed < prompt.len() {
            let burst = self.rng.range(3, 8);
            let end = prompt[typed..]
                .char_indices()
                .nth(burst)
                .map_or(prompt.len(), |(i, _)| typed + i);
            self.out.csi("?25l");
            self.out.cup(Self::INPUT_ROW, self.input_col);
            self.out.text(&prompt[typed..end]);
            if typed == 0 {
                self.out.csi("K");
            }
            self.input_col += columns(&prompt[typed..end]);
            self.out.cup(Self::INPUT_ROW, self.input_col);
            self.out.csi("?25h");
            typed = end;
        }
        self.input_col = 3;
        self.out.csi("?2004l");
        let mut history = Vec::new();
        for line in wrap(prompt, COLUMNS - 2) {
            let mut row = Ansi::default();
            row.sgr("2");
            row.text("› ");
            row.sgr("22");
            row.text(&line);
            history.push(row.s);
        }
        history.push(String::new());
        self.insert_history(&history);
        self.redraw(Some(0));
        let mut elapsed_ms = 0;
        for _ in 0..self.rng.range(3, 7) {
            for tick in 0..self.rng.range(1, 3) {
                elapsed_ms += TICK_MS;
                self.status_tick(tick, elapsed_ms);
            }
            let block = match self.rng.range(0, 4) {
                0 => self.reasoning(),
                1 => self.ran(),
                2 => self.explored(),
                3 => self.edited(),
                _ => self.message(),
            };
            self.insert_history(&block);
        }
        let block = self.message();
        self.insert_history(&block);
        self.out.csi("?2004h");
        self.redraw(None);
    }

    /// The whole pane: status line (when working), input line, footer.
    fn redraw(&mut self, working_ms: Option<u64>) {
        self.out.csi("?25l");
        self.out.cup(Self::STATUS_ROW, 1);
        self.out.csi("2K");
        if let Some(elapsed_ms) = working_ms {
            self.out.text("• ");
            self.out.sgr("1");
            self.out.text("Working");
            self.out.sgr("22");
            self.out.sgr("2");
            self.out
                .text(&format!(" ({}s • esc to interrupt)", elapsed_ms / 1000));
            self.out.sgr("22");
        }
        self.out.cup(Self::STATUS_ROW + 1, 1);
        self.out.csi("2K");
        self.out.cup(Self::INPUT_ROW, 1);
        self.out.csi("2K");
        self.out.sgr("1");
        self.out.text("›");
        self.out.sgr("22");
        self.out.text(" ");
        self.out.cup(Self::INPUT_ROW + 1, 1);
        self.out.csi("2K");
        self.out.cup(Self::FOOTER_ROW, 1);
        self.out.csi("2K");
        self.out.sgr("2");
        self.out.text(&format!(
            "  {}% context left · ? for shortcuts",
            self.rng.range(40, 99)
        ));
        self.out.sgr("22");
        self.out.cup(Self::INPUT_ROW, self.input_col);
        self.out.csi("?25h");
    }

    /// One frame of the status line, as a cell diff: the shimmer (a bold window sweeping over
    /// dim `Working`) always, the timer when the second changes.
    fn status_tick(&mut self, tick: usize, elapsed_ms: u64) {
        const WORD: &str = "Working";
        let bright = tick % (WORD.len() + 2);
        let (start, end) = (
            bright.saturating_sub(2).min(WORD.len()),
            bright.min(WORD.len()),
        );
        let (before, window, after) = (&WORD[..start], &WORD[start..end], &WORD[end..]);
        self.out.cup(Self::STATUS_ROW, 3);
        for (sgr, part) in [("2", before), ("1", window), ("2", after)] {
            if !part.is_empty() {
                self.out.sgr(sgr);
                self.out.text(part);
                self.out.sgr("22");
            }
        }
        if elapsed_ms.is_multiple_of(1000) {
            self.out.cup(Self::STATUS_ROW, 11);
            self.out.sgr("2");
            self.out
                .text(&format!("({}s • esc to interrupt)", elapsed_ms / 1000));
            self.out.sgr("22");
        }
        self.out.cup(Self::INPUT_ROW, self.input_col);
        self.out.csi("?25h");
    }

    /// Scrolls the region above the pane up and writes `lines` into the freed rows, one line
    /// feed apart.
    fn insert_history(&mut self, lines: &[String]) {
        let bottom = Self::STATUS_ROW - 1;
        let count = lines.len().min(bottom);
        self.out.csi("?25l");
        self.out.csi(&format!("1;{bottom}r"));
        self.out.csi(&format!("{count}S"));
        self.out.csi("r");
        self.out.cup(bottom + 1 - count, 1);
        for (i, line) in lines.iter().take(count).enumerate() {
            if i > 0 {
                self.out.crlf();
            }
            self.out.text(line);
        }
        self.out.cup(Self::INPUT_ROW, self.input_col);
        self.out.csi("?25h");
    }

    fn reasoning(&mut self) -> Vec<String> {
        let mut row = Ansi::default();
        row.sgr("2;3");
        row.prose(self.rng.pick(AGENT_SENTENCES), "36");
        row.sgr("22;23");
        vec![row.s, String::new()]
    }

    fn ran(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut head = Ansi::default();
        head.sgr("32");
        head.text("•");
        head.sgr("39");
        head.text(" ");
        head.sgr("1");
        head.text("Ran");
        head.sgr("22");
        head.text(" ");
        head.text(self.rng.pick(COMMANDS));
        lines.push(head.s);
        for i in 0..self.rng.range(2, 8) {
            let mut row = Ansi::default();
            row.text(if i == 0 { "  └ " } else { "    " });
            row.sgr("2");
            row.text(self.rng.pick(COMMAND_OUTPUT));
            row.sgr("22");
            lines.push(row.s);
        }
        lines.push(String::new());
        lines
    }

    fn explored(&mut self) -> Vec<String> {
        let mut lines = vec!["• Explored".to_owned()];
        for i in 0..self.rng.range(1, 4) {
            let mut row = Ansi::default();
            row.text(if i == 0 { "  └ " } else { "    " });
            row.sgr("36");
            if self.rng.chance(50) {
                row.text("Read");
                row.sgr("39");
                row.text(" ");
                row.text(self.rng.pick(PATHS));
            } else {
                row.text("Search");
                row.sgr("39");
                row.text(" ");
                row.text(&format!(
                    "{} in src",
                    self.rng.pick(&["load", "timeout", "retry", "parse_list"])
                ));
            }
            lines.push(row.s);
        }
        lines.push(String::new());
        lines
    }

    fn edited(&mut self) -> Vec<String> {
        let path = self.rng.pick(PATHS);
        let added = self.rng.range(2, 10);
        let removed = self.rng.range(0, 5);
        let mut head = Ansi::default();
        head.text("• ");
        head.sgr("1");
        head.text("Edited");
        head.sgr("22");
        head.text(&format!(" {path} ("));
        head.sgr("32");
        head.text(&format!("+{added}"));
        head.sgr("39");
        head.text(" ");
        head.sgr("31");
        head.text(&format!("-{removed}"));
        head.sgr("39");
        head.text(")");
        let mut lines = vec![head.s];
        let mut line_number = self.rng.range(10, 400);
        let kinds = std::iter::once(' ')
            .chain(std::iter::repeat_n('-', removed))
            .chain(std::iter::repeat_n('+', added))
            .chain(std::iter::once(' '));
        for kind in kinds {
            let mut row = Ansi::default();
            row.sgr("2");
            row.text(&format!("    {line_number:>4} "));
            row.sgr("22");
            match kind {
                '+' => row.sgr("32"),
                '-' => row.sgr("31"),
                _ => {}
            }
            row.text(&kind.to_string());
            row.text(self.rng.pick(CODE_LINES));
            if kind != ' ' {
                row.sgr("39");
            }
            lines.push(row.s);
            if kind != '-' {
                line_number += 1;
            }
        }
        lines.push(String::new());
        lines
    }

    fn message(&mut self) -> Vec<String> {
        let mut paragraph = Vec::new();
        for _ in 0..self.rng.range(2, 5) {
            paragraph.push(self.rng.pick(AGENT_SENTENCES));
        }
        let mut lines = Vec::new();
        for (i, text) in wrap(&paragraph.join(" "), COLUMNS - 2).iter().enumerate() {
            let mut row = Ansi::default();
            row.text(if i == 0 { "• " } else { "  " });
            row.prose(text, "36");
            lines.push(row.s);
        }
        lines.push(String::new());
        lines
    }
}

/// The build-log corpus: a shell session running builds.
struct BuildLog {
    rng: SplitMix64,
    out: Ansi,
}

impl BuildLog {
    /// npm's spinner frames: the only non-ASCII bytes besides a few box-drawing bars.
    const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
    const CRATE_STEMS: &[&str] = &[
        "fast", "tiny", "async", "proto", "mini", "text", "byte", "glob", "hash", "wire",
    ];
    const CRATE_TAILS: &[&str] = &[
        "-core", "-util", "_derive", "-sys", "", "-macros", "-io", "-codec",
    ];

    fn section(&mut self) {
        match self.rng.range(0, 5) {
            0 | 1 => self.cargo_build(),
            2 => self.cargo_test(),
            3 => self.npm_install(),
            _ => self.bundle(),
        }
        self.shell_prompt();
    }

    fn crate_name(&mut self) -> String {
        format!(
            "{}{}",
            self.rng.pick(Self::CRATE_STEMS),
            self.rng.pick(Self::CRATE_TAILS)
        )
    }

    fn version(&mut self) -> String {
        format!(
            "{}.{}.{}",
            self.rng.range(0, 3),
            self.rng.range(0, 40),
            self.rng.range(0, 20)
        )
    }

    /// A right-aligned cargo status word in bold colour, then the rest of the line.
    fn status(&mut self, colour: &str, word: &str, rest: &str) {
        self.out.sgr(&format!("1;{colour}"));
        self.out.text(&format!("{word:>12}"));
        self.out.sgr("0");
        self.out.text(" ");
        self.out.text(rest);
    }

    fn cargo_build(&mut self) {
        self.out.text("cargo build");
        self.out.crlf();
        let total = self.rng.range(40, 320);
        let mut progress_shown = false;
        for done in 1..=total {
            if progress_shown {
                self.out.csi("K");
            }
            let name = self.crate_name();
            let version = self.version();
            self.status("32", "Compiling", &format!("{name} v{version}"));
            self.out.crlf();
            if self.rng.chance(4) {
                self.warning();
            }
            progress_shown = self.rng.chance(35);
            if progress_shown {
                let filled = done * 25 / total;
                let bar = format!("{}>{}", "=".repeat(filled), " ".repeat(25 - filled));
                let active = format!("{}, {}(build)", self.crate_name(), self.crate_name());
                self.status(
                    "36",
                    "Building",
                    &format!("[{bar}] {done}/{total}: {active}"),
                );
                self.out.text("\r");
            }
        }
        if progress_shown {
            self.out.csi("K");
        }
        let secs = self.rng.range(2, 90);
        let cents = self.rng.range(0, 99);
        self.status(
            "32",
            "Finished",
            &format!("dev profile target(s) in {secs}.{cents:02}s"),
        );
        self.out.crlf();
    }

    fn warning(&mut self) {
        let line = self.rng.range(1, 400);
        let col = self.rng.range(1, 40);
        self.out.sgr("1;33");
        self.out.text("warning");
        self.out.sgr("0");
        self.out.sgr("1");
        self.out.text(": unused variable: `retries`");
        self.out.sgr("0");
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text("   --> ");
        self.out.sgr("0");
        self.out
            .text(&format!("{}:{line}:{col}", self.rng.pick(PATHS)));
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text("    |");
        self.out.sgr("0");
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text(&format!("{line:<4}|"));
        self.out.sgr("0");
        self.out
            .text(&format!("     let retries = {};", self.rng.range(1, 9)));
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text("    |");
        self.out.sgr("0");
        self.out.text("         ");
        self.out.sgr("1;33");
        self.out
            .text("^^^^^^^ help: prefix it with an underscore: `_retries`");
        self.out.sgr("0");
        self.out.crlf();
        self.out.crlf();
    }

    fn cargo_test(&mut self) {
        self.out.text("cargo test");
        self.out.crlf();
        for _ in 0..self.rng.range(1, 3) {
            let hash = self.rng.next_u64();
            let name = self.crate_name();
            self.status(
                "32",
                "Running",
                &format!("unittests src/lib.rs (target/debug/deps/{name}-{hash:016x})"),
            );
            self.out.crlf();
            let count = self.rng.range(5, 120);
            self.out.crlf();
            self.out.text(&format!("running {count} tests"));
            self.out.crlf();
            let mut ignored = 0;
            for _ in 0..count {
                let module = self.rng.pick(&[
                    "session",
                    "config",
                    "ring",
                    "parser::list",
                    "retry",
                    "cli::status",
                ]);
                let verb = self
                    .rng
                    .pick(&["rejects", "accepts", "keeps", "drops", "parses", "retries"]);
                let object = self.rng.pick(&[
                    "empty_input",
                    "trailing_commas",
                    "the_last_frame",
                    "a_timeout",
                    "unicode_names",
                ]);
                self.out
                    .text(&format!("test {module}::tests::{verb}_{object} ... "));
                if self.rng.chance(3) {
                    ignored += 1;
                    self.out.sgr("33");
                    self.out.text("ignored");
                } else {
                    self.out.sgr("32");
                    self.out.text("ok");
                }
                self.out.sgr("0");
                self.out.crlf();
            }
            self.out.crlf();
            self.out.text("test result: ");
            self.out.sgr("32");
            self.out.text("ok");
            self.out.sgr("0");
            let ms = self.rng.range(1, 999);
            self.out.text(&format!(
                ". {} passed; 0 failed; {ignored} ignored; 0 measured; 0 filtered out; finished in 0.{ms:03}s",
                count - ignored
            ));
            self.out.crlf();
            self.out.crlf();
        }
    }

    fn npm_install(&mut self) {
        self.out.text("npm install");
        self.out.crlf();
        for frame in 0..self.rng.range(20, 120) {
            self.out.text("\r");
            self.out.csi("K");
            self.out.text(Self::SPINNER[frame % Self::SPINNER.len()]);
            let phase = self.rng.pick(&["idealTree", "reify", "build", "audit"]);
            let package = self.crate_name();
            let version = self.version();
            self.out.text(&format!(
                " {phase}:{package}: timing fetch {package}@{version} {}ms",
                self.rng.range(3, 900)
            ));
        }
        self.out.text("\r");
        self.out.csi("K");
        if self.rng.chance(30) {
            self.out.sgr("33");
            self.out.text("npm warn");
            self.out.sgr("39");
            let (name, version) = (self.crate_name(), self.version());
            self.out.text(&format!(
                " deprecated {name}@{version}: no longer maintained"
            ));
            self.out.crlf();
        }
        self.out.crlf();
        let packages = self.rng.range(50, 900);
        self.out.text(&format!(
            "added {packages} packages, audited {} packages in {}s",
            packages + 1,
            self.rng.range(1, 40)
        ));
        self.out.crlf();
        self.out.crlf();
        self.out
            .text(&format!("found {} vulnerabilities", self.rng.range(0, 1)));
        self.out.crlf();
    }

    fn bundle(&mut self) {
        self.out.text("npm run build");
        self.out.crlf();
        self.out.crlf();
        let modules = self.rng.range(200, 3000);
        self.out
            .text(&format!("bundling {modules} modules for production..."));
        self.out.crlf();
        for _ in 0..self.rng.range(3, 12) {
            let hash = self.rng.next_u64() & 0xffff_ffff;
            let size = self.rng.range(1, 900);
            let gzip = size / 3 + 1;
            let kind = self.rng.pick(&["js", "css", "svg", "woff2"]);
            self.out.sgr("2");
            self.out.text("dist/");
            self.out.sgr("22");
            self.out.sgr("36");
            self.out.text(&format!("assets/index-{hash:08x}.{kind:<5}"));
            self.out.sgr("39");
            self.out.text(&format!(
                "  {size:>4}.{:02} kB │ gzip: {gzip:>4}.{:02} kB",
                size % 100,
                gzip % 100
            ));
            self.out.crlf();
        }
        self.out.sgr("32");
        self.out
            .text(&format!("✓ built in {}ms", self.rng.range(300, 9000)));
        self.out.sgr("39");
        self.out.crlf();
    }

    /// bash's default coloured prompt after an OSC title, as the log's last line.
    fn shell_prompt(&mut self) {
        self.out.osc_title("dev@box: ~/project");
        self.out.sgr("01;32");
        self.out.text("dev@box");
        self.out.sgr("00");
        self.out.text(":");
        self.out.sgr("01;34");
        self.out.text("~/project");
        self.out.sgr("00");
        self.out.text("$ ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Length of the escape sequence at the start of `data` (which starts with ESC), parsed the
    /// way a terminal does: CSI from `ESC[` to its final byte, OSC to BEL or `ESC \\`, any other
    /// escape as two bytes. An unterminated sequence runs to the end of `data`.
    fn escape_len(data: &[u8]) -> usize {
        let end = match data.get(1) {
            Some(b'[') => data[2..]
                .iter()
                .position(|b| (0x40..=0x7e).contains(b))
                .map(|i| 2 + i + 1),
            Some(b']') => data
                .windows(2)
                .enumerate()
                .skip(2)
                .find_map(|(i, w)| match w {
                    [0x07, _] => Some(i + 1),
                    [0x1b, b'\\'] => Some(i + 2),
                    _ => None,
                }),
            _ => Some(2),
        };
        end.unwrap_or(data.len()).min(data.len())
    }

    /// Bytes that belong to escape sequences.
    fn escape_bytes(data: &[u8]) -> usize {
        let mut count = 0;
        let mut i = 0;
        while let Some(at) = memchr::memchr(0x1b, &data[i..]) {
            let len = escape_len(&data[i + at..]);
            count += len;
            i += at + len;
        }
        count
    }

    /// The text of `data` without its escape sequences.
    fn visible_text(data: &[u8]) -> String {
        let mut text = Vec::new();
        let mut i = 0;
        while let Some(at) = memchr::memchr(0x1b, &data[i..]) {
            text.extend_from_slice(&data[i..i + at]);
            i += at + escape_len(&data[i + at..]);
        }
        text.extend_from_slice(&data[i..]);
        String::from_utf8_lossy(&text).into_owned()
    }

    fn density(data: &[u8]) -> f64 {
        escape_bytes(data) as f64 / data.len() as f64
    }

    fn corpora() -> [(&'static str, Vec<u8>); 3] {
        [
            ("claude_redraws", claude_redraws()),
            ("codex_output", codex_output()),
            ("build_logs", build_logs()),
        ]
    }

    #[test]
    fn every_generator_gives_the_same_bytes_twice() {
        assert!(claude_redraws() == claude_redraws());
        assert!(codex_output() == codex_output());
        assert!(build_logs() == build_logs());
    }

    #[test]
    fn every_corpus_is_about_one_mebibyte_of_valid_utf8() {
        for (name, data) in corpora() {
            assert!(
                data.len() >= CORPUS_BYTES_TARGET,
                "{name}: {} bytes",
                data.len()
            );
            assert!(
                data.len() < CORPUS_BYTES_TARGET + CORPUS_BYTES_TARGET / 16,
                "{name}: {} bytes",
                data.len()
            );
            assert!(std::str::from_utf8(&data).is_ok(), "{name} is not UTF-8");
        }
    }

    #[test]
    fn claude_redraws_are_mostly_escape_sequences() {
        let data = claude_redraws();
        assert!(density(&data) > 0.5, "escape density {:.3}", density(&data));
    }

    #[test]
    fn escape_density_falls_from_claude_to_codex_to_build_logs() {
        let [(_, claude), (_, codex), (_, build)] = corpora();
        let (claude, codex, build) = (density(&claude), density(&codex), density(&build));
        assert!(
            claude > codex && codex > build,
            "claude {claude:.3}, codex {codex:.3}, build {build:.3}"
        );
        assert!(codex > 0.3, "codex {codex:.3}");
        assert!(build < 0.25, "build {build:.3}");
    }

    #[test]
    fn claude_redraws_use_the_escapes_of_an_ink_redraw() {
        let data = claude_redraws();
        let text = String::from_utf8_lossy(&data);
        for needle in [
            "\x1b[2K\x1b[1A",
            "\x1b[2K\x1b[G",
            "\x1b[38;2;",
            "\x1b[38;5;",
            "\x1b[48;2;",
            "\x1b[1m",
            "\x1b[2m",
            "\x1b[22m",
            "\x1b]0;",
            "\x1b[?2004h",
            "\x1b[?2004l",
            "\x1b[?2026h",
        ] {
            assert!(text.contains(needle), "missing {needle:?}");
        }
        let visible = visible_text(&data);
        for needle in [
            "Thinking… (",
            "s · ↓ ",
            " tokens · esc to interrupt)",
            "? for shortcuts",
        ] {
            assert!(visible.contains(needle), "missing {needle:?}");
        }
        let cup = regex::Regex::new("\x1b\\[[0-9]+;[0-9]+H").expect("valid pattern");
        let cuf = regex::Regex::new("\x1b\\[[0-9]+C").expect("valid pattern");
        assert!(cup.is_match(&text) && cuf.is_match(&text));
    }

    #[test]
    fn claude_and_codex_transcripts_carry_multibyte_text() {
        let claude = String::from_utf8(claude_redraws()).expect("UTF-8");
        for needle in [
            "❯",
            "╭",
            "╮",
            "│",
            "╰",
            "╯",
            "─",
            "✻",
            "…",
            "配置",
            "ビルド",
            "빌드",
            "✅",
            "🚀",
        ] {
            assert!(claude.contains(needle), "claude lacks {needle}");
        }
        let codex = visible_text(&codex_output());
        for needle in ["›", "•", "└", "Working (", "s • esc to interrupt)"] {
            assert!(codex.contains(needle), "codex lacks {needle}");
        }
    }

    #[test]
    fn build_logs_are_mostly_ascii_lines_with_progress_rewrites() {
        let data = build_logs();
        let ascii = data.iter().filter(|b| b.is_ascii()).count();
        assert!(ascii as f64 / data.len() as f64 > 0.97);
        let text = String::from_utf8_lossy(&data);
        assert!(text.matches("\r\n").count() > 10_000);
        assert!(text.contains("\r\x1b[K"));
        assert!(text.contains("\x1b[1;32m   Compiling\x1b[0m "));
    }

    #[test]
    fn claude_redraws_end_with_an_idle_frame_showing_the_prompt() {
        let data = claude_redraws();
        let redraw = b"\x1b[?2026h";
        let start = data
            .windows(redraw.len())
            .rposition(|w| w == redraw)
            .expect("a redraw");
        let frame = visible_text(&data[start..]);
        let lines: Vec<&str> = frame
            .split("\r\n")
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert!(!frame.contains("esc to interrupt"), "{frame}");
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[1].trim_matches(['│', ' ']), "❯", "{lines:?}");
        assert_eq!(lines[3], "? for shortcuts");
    }

    #[test]
    fn codex_output_ends_with_the_idle_pane() {
        let data = codex_output();
        let text = String::from_utf8_lossy(&data);
        let tail = &text[text.rfind("\x1b[?2004h").expect("paste on")..];
        assert!(
            tail.contains("\x1b[38;1H\x1b[2K\x1b[1m›\x1b[22m "),
            "{tail:?}"
        );
        assert!(!visible_text(tail.as_bytes()).contains("Working"));
    }

    #[test]
    fn build_logs_end_with_a_shell_prompt() {
        let data = build_logs();
        assert!(data.ends_with(b"\x1b[00m$ "));
    }

    #[test]
    fn chunks_cover_the_data_in_order_and_split_anywhere() {
        let data = "❯ abc".as_bytes();
        let pieces: Vec<&[u8]> = chunks(data, 2).collect();
        assert_eq!(pieces, [&[0xe2, 0x9d][..], &[0xaf, b' '], b"ab", b"c"]);
        assert_eq!(
            chunks(&claude_redraws(), 4096)
                .map(<[u8]>::len)
                .sum::<usize>(),
            claude_redraws().len()
        );
    }

    #[test]
    fn escape_counting_follows_the_terminal_grammar() {
        assert_eq!(escape_bytes(b"a\x1b[38;2;1;2;3mb"), 13);
        assert_eq!(escape_bytes(b"\x1b]0;title\x07x"), 10);
        assert_eq!(escape_bytes(b"\x1b]0;t\x1b\\x"), 7);
        assert_eq!(escape_bytes(b"\x1b7x"), 2);
        assert_eq!(visible_text(b"a\x1b[1mb\x1b]0;t\x07c"), "abc");
    }
}
