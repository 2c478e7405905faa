//! What the generators write: [`Ansi`], the byte stream a TUI sends its PTY with one method per
//! escape sequence, truecolor [`Rgb`], a highlighter's token colours, and the terminal columns
//! text takes (wide characters, wrapping).

/// A colour for truecolor SGR (`ESC[38;2;r;g;bm`).
#[derive(Clone, Copy)]
pub(super) struct Rgb(pub(super) u8, pub(super) u8, pub(super) u8);

/// The byte stream a TUI writes to its PTY, with one method per escape sequence it uses.
#[derive(Default)]
pub(super) struct Ansi {
    pub(super) s: String,
}

impl Ansi {
    pub(super) fn len(&self) -> usize {
        self.s.len()
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.s.into_bytes()
    }

    pub(super) fn text(&mut self, text: &str) {
        self.s.push_str(text);
    }

    pub(super) fn repeat(&mut self, text: &str, count: usize) {
        for _ in 0..count {
            self.s.push_str(text);
        }
    }

    /// End of line as a PTY delivers it (the line discipline turns `\n` into `\r\n`).
    pub(super) fn crlf(&mut self) {
        self.s.push_str("\r\n");
    }

    /// `ESC [` followed by `body`.
    pub(super) fn csi(&mut self, body: &str) {
        self.s.push_str("\x1b[");
        self.s.push_str(body);
    }

    pub(super) fn sgr(&mut self, params: &str) {
        self.s.push_str(&format!("\x1b[{params}m"));
    }

    pub(super) fn fg(&mut self, Rgb(r, g, b): Rgb) {
        self.s.push_str(&format!("\x1b[38;2;{r};{g};{b}m"));
    }

    pub(super) fn bg(&mut self, Rgb(r, g, b): Rgb) {
        self.s.push_str(&format!("\x1b[48;2;{r};{g};{b}m"));
    }

    pub(super) fn fg256(&mut self, index: u8) {
        self.s.push_str(&format!("\x1b[38;5;{index}m"));
    }

    /// Cursor position (CUP), 1-based.
    pub(super) fn cup(&mut self, row: usize, col: usize) {
        self.s.push_str(&format!("\x1b[{row};{col}H"));
    }

    /// Cursor forward (CUF).
    pub(super) fn cuf(&mut self, columns: usize) {
        if columns > 0 {
            self.s.push_str(&format!("\x1b[{columns}C"));
        }
    }

    /// Ink's erase of the previous frame: clear and go up for every line, then column 1.
    pub(super) fn erase_lines(&mut self, count: usize) {
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
    pub(super) fn osc_title(&mut self, title: &str) {
        self.s.push_str("\x1b]0;");
        self.s.push_str(title);
        self.s.push('\x07');
    }

    /// Code with one truecolor escape per token, the way a highlighter colours a diff.
    pub(super) fn highlighted(&mut self, code: &str) {
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
    pub(super) fn prose(&mut self, line: &str, code: &str) {
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
pub(super) fn columns(text: &str) -> usize {
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
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
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
