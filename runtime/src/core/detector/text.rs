//! The line model's text as strings: [`plain_text`] for readers (`baton detect`, reports), and
//! the normalised text the echo guard compares a chunk's output with the sent prompt in.

use super::{TEXT_WINDOW_BYTES, TerminalQuery, vt};

/// The text of terminal output as a reader would want it: escape sequences parsed away, line
/// breaks where the cursor moved to another line, erased lines and backspaced characters taken
/// back (the detector's text model, without its window bound: the caller bounds the input).
#[must_use]
pub fn plain_text(bytes: &[u8]) -> String {
    let mut text = PlainText::default();
    vt::Parser::default().advance(bytes, &mut text);
    text.0
}

/// Text events as a plain string (see [`plain_text`]).
#[derive(Default)]
struct PlainText(String);

impl vt::LineSink for PlainText {
    fn text(&mut self, bytes: &[u8]) {
        self.0.push_str(&String::from_utf8_lossy(bytes));
    }

    fn space(&mut self) {
        if !self.0.is_empty() && !self.0.ends_with([' ', '\n']) {
            self.0.push(' ');
        }
    }

    fn line_break(&mut self) {
        if !self.0.is_empty() && !self.0.ends_with('\n') {
            self.0.push('\n');
        }
    }

    fn backspace(&mut self) {
        if !self.0.ends_with('\n') {
            self.0.pop();
        }
    }

    fn erase_line(&mut self) {
        let keep = self.0.rfind('\n').map_or(0, |at| at + 1);
        self.0.truncate(keep);
    }

    fn cursor_up(&mut self) {
        if self.0.ends_with('\n') {
            self.0.pop();
        } else {
            self.line_break();
        }
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn query(&mut self, _: TerminalQuery) {}

    fn bracketed_paste(&mut self, _: bool) {}
}

/// Normalises text for echo comparison: terminal controls parsed away, white space (line breaks
/// included) collapsed to single spaces, trimmed. At most [`TEXT_WINDOW_BYTES`] are kept (the
/// last ones), as in the window the echo is compared with.
pub(super) fn normalise_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.clear();
    vt::Parser::default().advance(bytes, &mut Normaliser { out });
    while out.last() == Some(&b' ') {
        out.pop();
    }
    if out.len() > TEXT_WINDOW_BYTES {
        out.drain(..out.len() - TEXT_WINDOW_BYTES);
    }
}

/// The parser's events as normalised text (see [`normalise_into`]).
struct Normaliser<'a> {
    out: &'a mut Vec<u8>,
}

impl Normaliser<'_> {
    fn blank(&mut self) {
        if !self.out.is_empty() && self.out.last() != Some(&b' ') {
            self.out.push(b' ');
        }
    }
}

impl vt::LineSink for Normaliser<'_> {
    fn text(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b' ' {
                self.blank();
            } else {
                self.out.push(byte);
            }
        }
    }

    fn space(&mut self) {
        self.blank();
    }

    fn line_break(&mut self) {
        self.blank();
    }

    fn backspace(&mut self) {
        while let Some(byte) = self.out.pop() {
            if byte & 0xc0 != 0x80 {
                break;
            }
        }
    }

    fn erase_line(&mut self) {}

    fn cursor_up(&mut self) {
        self.blank();
    }

    fn clear(&mut self) {
        self.out.clear();
    }

    fn query(&mut self, _: TerminalQuery) {}

    fn bracketed_paste(&mut self, _: bool) {}
}
