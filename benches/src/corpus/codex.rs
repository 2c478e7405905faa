//! The Codex-CLI-style corpus ([`codex_output`]): an inline viewport whose history is inserted
//! above a fixed bottom pane through a scroll region, its status line updated cell by cell.

use super::ansi::{Ansi, columns, wrap};
use super::words::{
    AGENT_SENTENCES, CODE_LINES, COMMAND_OUTPUT, COMMANDS, PATHS, SplitMix64, USER_PROMPTS,
};
use super::{COLUMNS, CORPUS_BYTES_TARGET, ROWS, TICK_MS};

/// Seed of [`codex_output`].
const SEED_CODEX: u64 = 0x0ba7_0c0d_e800_0002;

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
