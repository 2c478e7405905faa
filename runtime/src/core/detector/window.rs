//! The detector's memory of recent screen text: the last [`TEXT_WINDOW_BYTES`] bytes of it.
//!
//! The window holds text as the parser reports it: printable UTF-8, single spaces for
//! horizontal motion and single line feeds for line changes (runs of either collapse into one).
//! Invariant: its content is a function of the text events alone, not of how they were grouped.
//! The logical start only moves forward (a backspace cannot resurrect text that fell out), so
//! the buffer may be compacted at any moment without changing what is visible.

use super::TEXT_WINDOW_BYTES;

/// Bytes the window's buffer holds before it drops what scrolled out of the window (moving the
/// visible text to its front): eight windows, so that text is moved once per seven windows of
/// output rather than once per window (a log program's output was a fifth of the detector's
/// time in moving it).
pub(crate) const WINDOW_BUFFER_BYTES: usize = 8 * TEXT_WINDOW_BYTES;

/// Position in the window's event stream, to take back text that turned out to be an echo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    len: usize,
    start: usize,
    epoch: u64,
}

/// A bounded, contiguous window of screen text.
#[derive(Clone, Debug)]
pub(crate) struct TextWindow {
    /// Holds at most [`WINDOW_BUFFER_BYTES`]; `buf[start..]` is visible.
    buf: Vec<u8>,
    start: usize,
    /// Bumped whenever bytes already written are dropped, popped or cleared, so a [`Mark`]
    /// taken earlier can tell that the text before it changed.
    epoch: u64,
}

impl Default for TextWindow {
    fn default() -> Self {
        TextWindow {
            buf: Vec::with_capacity(WINDOW_BUFFER_BYTES),
            start: 0,
            epoch: 0,
        }
    }
}

impl TextWindow {
    /// The visible text, starting at a character boundary.
    pub(crate) fn view(&self) -> &[u8] {
        let visible = &self.buf[self.start..];
        let skip = visible.iter().take_while(|&&b| b & 0xc0 == 0x80).count();
        &visible[skip..]
    }

    /// Appends printable text.
    #[inline]
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if bytes.len() >= TEXT_WINDOW_BYTES {
            self.buf.clear();
            self.buf
                .extend_from_slice(&bytes[bytes.len() - TEXT_WINDOW_BYTES..]);
            self.start = 0;
            self.epoch += 1;
            return;
        }
        if self.buf.len() + bytes.len() > WINDOW_BUFFER_BYTES {
            self.buf.drain(..self.start);
            self.start = 0;
            self.epoch += 1;
        }
        self.buf.extend_from_slice(bytes);
        self.start = self
            .start
            .max(self.buf.len().saturating_sub(TEXT_WINDOW_BYTES));
    }

    /// Appends one byte of white space (a space or a line feed), as [`TextWindow::push`] would.
    #[inline]
    fn push_byte(&mut self, byte: u8) {
        if self.buf.len() >= WINDOW_BUFFER_BYTES {
            self.push(&[byte]);
            return;
        }
        self.buf.push(byte);
        self.start = self
            .start
            .max(self.buf.len().saturating_sub(TEXT_WINDOW_BYTES));
    }

    /// Bytes held, visible or not (at most [`WINDOW_BUFFER_BYTES`]).
    #[cfg(test)]
    pub(crate) fn capacity_used(&self) -> usize {
        self.buf.len()
    }

    fn last(&self) -> Option<u8> {
        self.buf[self.start..].last().copied()
    }

    /// The current end of the text, to come back to with [`TextWindow::rewind`].
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            start: self.start,
            epoch: self.epoch,
        }
    }

    /// Whether the text changed since `mark` (appended, erased or cleared).
    pub(crate) fn changed_since(&self, mark: Mark) -> bool {
        mark.epoch != self.epoch || mark.len != self.buf.len()
    }

    /// The text appended since `mark`, if nothing written before it was removed since.
    pub(crate) fn since(&self, mark: Mark) -> Option<&[u8]> {
        (mark.epoch == self.epoch).then(|| &self.buf[mark.len..])
    }

    /// Takes back everything appended since `mark`. Returns whether it could.
    pub(crate) fn rewind(&mut self, mark: Mark) -> bool {
        if mark.epoch != self.epoch {
            return false;
        }
        self.buf.truncate(mark.len);
        self.start = mark.start;
        true
    }
}

/// The line model's events, applied to the window (queries and modes are not its business).
impl super::vt::LineSink for TextWindow {
    #[inline]
    fn text(&mut self, bytes: &[u8]) {
        self.push(bytes);
    }

    /// Appends one space unless the text is empty or already ends in white space.
    #[inline]
    fn space(&mut self) {
        if matches!(self.last(), Some(b) if b != b' ' && b != b'\n') {
            self.push_byte(b' ');
        }
    }

    /// Appends one line feed unless the text is empty or already ends in one.
    #[inline]
    fn line_break(&mut self) {
        if matches!(self.last(), Some(b) if b != b'\n') {
            self.push_byte(b'\n');
        }
    }

    /// Removes the last character of the current line, if any.
    #[inline]
    fn backspace(&mut self) {
        if matches!(self.last(), None | Some(b'\n')) {
            return;
        }
        self.epoch += 1;
        while self.buf.len() > self.start {
            let byte = self.buf.pop();
            if byte.is_some_and(|b| b & 0xc0 != 0x80) {
                break;
            }
        }
    }

    /// Empties the current line (everything after the last line feed).
    #[inline]
    fn erase_line(&mut self) {
        let visible = &self.buf[self.start..];
        let keep = memchr::memrchr(b'\n', visible).map_or(0, |at| at + 1);
        if keep < visible.len() {
            self.buf.truncate(self.start + keep);
            self.epoch += 1;
        }
    }

    /// Moves up a line: from an empty line (just after a line feed) back to the end of the line
    /// above; from a non-empty line, a line break (what follows is another line).
    #[inline]
    fn cursor_up(&mut self) {
        match self.last() {
            Some(b'\n') => {
                self.buf.pop();
                self.epoch += 1;
            }
            Some(_) => self.push_byte(b'\n'),
            None => {}
        }
    }

    /// Forgets everything.
    fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.epoch += 1;
    }

    fn query(&mut self, _: super::TerminalQuery) {}

    fn bracketed_paste(&mut self, _: bool) {}
}

#[cfg(test)]
mod tests {
    use super::super::vt::LineSink as _;
    use super::{TEXT_WINDOW_BYTES, TextWindow, WINDOW_BUFFER_BYTES};

    fn text(window: &TextWindow) -> String {
        String::from_utf8_lossy(window.view()).into_owned()
    }

    #[test]
    fn spaces_and_line_breaks_collapse_and_never_lead() {
        let mut window = TextWindow::default();
        window.space();
        window.line_break();
        window.push(b"a");
        window.space();
        window.space();
        window.line_break();
        window.line_break();
        window.push(b"b");
        assert_eq!(text(&window), "a \nb");
    }

    #[test]
    fn backspace_removes_a_whole_character_but_not_a_line_break() {
        let mut window = TextWindow::default();
        window.push("x\n❯é".as_bytes());
        window.backspace();
        assert_eq!(text(&window), "x\n❯");
        window.backspace();
        window.backspace();
        assert_eq!(text(&window), "x\n");
    }

    #[test]
    fn keeps_only_the_last_window_of_text_whatever_the_grouping() {
        let stream: Vec<u8> = (0..3 * TEXT_WINDOW_BYTES)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut whole = TextWindow::default();
        whole.push(&stream);
        for step in [1, 7, 100, TEXT_WINDOW_BYTES - 1] {
            let mut pieces = TextWindow::default();
            for chunk in stream.chunks(step) {
                pieces.push(chunk);
            }
            assert_eq!(pieces.view(), whole.view(), "step {step}");
        }
        assert_eq!(whole.view(), &stream[stream.len() - TEXT_WINDOW_BYTES..]);
    }

    #[test]
    fn a_byte_appended_alone_is_appended_as_text_is_at_every_fill() {
        for fill in [
            0,
            1,
            TEXT_WINDOW_BYTES,
            WINDOW_BUFFER_BYTES - 1,
            WINDOW_BUFFER_BYTES,
        ] {
            let filler: Vec<u8> = (0..fill).map(|i| b'a' + (i % 26) as u8).collect();
            let (mut alone, mut text) = (TextWindow::default(), TextWindow::default());
            for piece in filler.chunks(1_000) {
                alone.push(piece);
                text.push(piece);
            }
            alone.push_byte(b'\n');
            text.push(b"\n");
            assert_eq!(alone.view(), text.view(), "fill {fill}");
            assert_eq!(alone.capacity_used(), text.capacity_used(), "fill {fill}");
        }
    }

    #[test]
    fn view_starts_at_a_character_boundary() {
        let mut window = TextWindow::default();
        window.push("❯".as_bytes());
        window.push(&vec![b'a'; TEXT_WINDOW_BYTES - 1]);
        // The window's first byte is the glyph's last (a continuation byte): it is skipped.
        assert_eq!(window.view(), &vec![b'a'; TEXT_WINDOW_BYTES - 1][..]);
    }

    #[test]
    fn backspace_cannot_reach_text_that_fell_out() {
        let mut window = TextWindow::default();
        window.push(&vec![b'a'; TEXT_WINDOW_BYTES]);
        window.push(b"b");
        for _ in 0..5 {
            window.backspace();
        }
        assert_eq!(window.view().len(), TEXT_WINDOW_BYTES - 5);
    }

    #[test]
    fn erasing_lines_and_moving_up_takes_back_a_drawn_frame() {
        let mut window = TextWindow::default();
        window.push(b"kept");
        window.line_break();
        window.push(b"frame one");
        window.line_break();
        window.push(b"footer");
        window.line_break();
        // Ink, from the empty line under the frame: erase line, up; erase line.
        window.erase_line();
        window.cursor_up();
        window.erase_line();
        assert_eq!(text(&window), "kept\nframe one\n");
        window.cursor_up();
        window.erase_line();
        assert_eq!(text(&window), "kept\n");
    }

    #[test]
    fn moving_up_from_a_written_line_starts_another_line() {
        let mut window = TextWindow::default();
        window.push(b"progress 10%");
        window.cursor_up();
        window.push(b"progress 20%");
        assert_eq!(text(&window), "progress 10%\nprogress 20%");
    }

    #[test]
    fn rewind_takes_back_what_was_appended_since_the_mark() {
        let mut window = TextWindow::default();
        window.push(b"before");
        let mark = window.mark();
        window.line_break();
        window.push(b"echo");
        assert_eq!(window.since(mark), Some(&b"\necho"[..]));
        assert!(window.rewind(mark));
        assert_eq!(text(&window), "before");
        window.clear();
        assert!(!window.rewind(mark));
    }
}
