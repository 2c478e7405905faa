//! The screen grid: what a terminal of the agent's size shows, cell by cell.
//!
//! Full-screen agents (Claude Code, Codex CLI, Gemini CLI) draw a frame by moving the cursor and
//! rewriting only the cells that changed; Codex keeps its interface in a scroll region at the
//! bottom and inserts history above it. A stream of text lines cannot follow that: a finished
//! turn's `esc to interrupt` footer that is overwritten in place, not erased, stays in it. The
//! grid applies each [`Op`] as a VT100-style terminal does: cursor addressing, the scroll region,
//! erasing, inserting and deleting lines and characters, a pending wrap at the right margin, and
//! wide characters taking two cells. Lines scrolled off the top are gone, as on a terminal
//! without scrollback; the alternate screen shares the one grid (switching clears it).
//!
//! The view the classifier reads after every chunk is kept row by row: a change marks its rows,
//! only those are rendered again, and rows scrolled or shifted keep their text (it moves with
//! them), so a redraw of the footer costs a few rows, not the whole screen.
//!
//! Memory: the cells (at most [`SCREEN_COLS_MAX`] by [`SCREEN_ROWS_MAX`]), each row's text and
//! the rendered view; no input makes any of them grow.

use unicode_width::UnicodeWidthChar as _;

use super::vt::Op;

/// Widest grid kept: a wider terminal is read as this wide (its right part is cut off).
pub const SCREEN_COLS_MAX: u16 = 500;
/// Tallest grid kept: a taller terminal is read as this tall.
pub const SCREEN_ROWS_MAX: u16 = 200;

/// One cell: its character, and whether it was written faint (SGR 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell {
    c: char,
    faint: bool,
}

const BLANK: Cell = Cell {
    c: ' ',
    faint: false,
};
/// The right half of a wide character (never rendered).
const WIDE_TAIL: char = '\0';
/// Put before the faint text that ends a row after other text (a placeholder in an input
/// line, as Codex CLI and Claude Code show): the classifier can read the line without it.
pub(crate) const FAINT_TAIL: u8 = 0x1f;
/// Tab stops: every eighth column.
const TAB_WIDTH: u16 = 8;

/// The grid. See the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct Grid {
    cols: u16,
    rows: u16,
    /// `rows * cols` cells, a row of the store at a time (see `order`).
    cells: Vec<Cell>,
    /// For each row of the screen, top to bottom, the row of `cells` that holds it: scrolling
    /// reorders these instead of moving cells.
    order: Vec<u16>,
    /// Text is being written faint.
    faint: bool,
    /// The cursor (0-based).
    row: u16,
    col: u16,
    /// The last write filled the last column: the next character wraps first.
    wrap_pending: bool,
    /// The scroll region's first and last rows (0-based, inclusive).
    top: u16,
    bottom: u16,
    /// The cursor saved by DECSC.
    saved: (u16, u16),
    /// Bumped whenever a cell changes.
    generation: u64,
    /// Each stored row's text (see [`render_row`]) as of its last rendering, and whether its
    /// cells changed since: `rows` of each, in the order of `cells`.
    row_text: Vec<Vec<u8>>,
    dirty: Vec<bool>,
    /// For each stored row, a column from which on all its cells are blank (at most `cols`):
    /// rendering and erasing stop there.
    extent: Vec<u16>,
    /// The cells as text (see [`Grid::view`]), and the generation it shows.
    view: Vec<u8>,
    rendered: Option<u64>,
}

impl Grid {
    /// A blank grid of `cols` by `rows` (each clamped to 1 and the maxima).
    pub(crate) fn new(cols: u16, rows: u16) -> Self {
        let (cols, rows) = clamp_size(cols, rows);
        Grid {
            cols,
            rows,
            cells: vec![BLANK; usize::from(cols) * usize::from(rows)],
            order: (0..rows).collect(),
            faint: false,
            row: 0,
            col: 0,
            wrap_pending: false,
            top: 0,
            bottom: rows - 1,
            saved: (0, 0),
            generation: 0,
            // Blank rows render as nothing: the empty texts are up to date.
            row_text: vec![Vec::new(); usize::from(rows)],
            dirty: vec![false; usize::from(rows)],
            extent: vec![0; usize::from(rows)],
            view: Vec::new(),
            rendered: None,
        }
    }

    /// The grid's size: columns, rows.
    pub(crate) const fn size(&self) -> (u16, u16) {
        (self.cols, self.rows)
    }

    /// Counts changes of the cells: equal values mean the screen did not change between them.
    pub(crate) const fn generation(&self) -> u64 {
        self.generation
    }

    /// The screen as text: each row's characters up to its last non-blank one, rows joined by
    /// line feeds (blank rows are empty lines) up to the last row with text. Rendered again
    /// only after a change, and then only the rows that changed.
    pub(crate) fn view(&mut self) -> &[u8] {
        if self.rendered != Some(self.generation) {
            let width = usize::from(self.cols);
            for (row, (text, dirty)) in self.row_text.iter_mut().zip(&mut self.dirty).enumerate() {
                if std::mem::take(dirty) {
                    text.clear();
                    let start = row * width;
                    render_row(
                        &self.cells[start..start + usize::from(self.extent[row])],
                        text,
                    );
                }
            }
            let texts = &self.row_text;
            let used = self
                .order
                .iter()
                .rposition(|&at| !texts[usize::from(at)].is_empty())
                .map_or(0, |at| at + 1);
            self.view.clear();
            for (index, &at) in self.order[..used].iter().enumerate() {
                if index > 0 {
                    self.view.push(b'\n');
                }
                self.view.extend_from_slice(&texts[usize::from(at)]);
            }
            self.rendered = Some(self.generation);
        }
        &self.view
    }

    /// Renders the screen as text into `out` from the cells alone (see [`Grid::view`]).
    pub(crate) fn render_into(&self, out: &mut Vec<u8>) {
        out.clear();
        let width = usize::from(self.cols);
        let mut rows: Vec<Vec<u8>> = self
            .order
            .iter()
            .map(|&at| {
                let start = usize::from(at) * width;
                let mut text = Vec::new();
                render_row(&self.cells[start..start + width], &mut text);
                text
            })
            .collect();
        let used = rows
            .iter()
            .rposition(|text| !text.is_empty())
            .map_or(0, |at| at + 1);
        rows.truncate(used);
        out.extend_from_slice(&rows.join(&b'\n'));
    }

    /// Marks the screen's row `row` as changed, with cells written up to column `end`.
    fn touch(&mut self, row: u16, end: usize) {
        let stored = self.stored(row);
        self.dirty[stored] = true;
        let end = u16::try_from(end).unwrap_or(self.cols).min(self.cols);
        self.extent[stored] = self.extent[stored].max(end);
    }

    /// Faint text (SGR 2) on or off, for what is written next.
    pub(crate) fn set_faint(&mut self, on: bool) {
        self.faint = on;
    }

    /// Writes printable text (valid UTF-8) at the cursor.
    #[inline]
    pub(crate) fn text(&mut self, bytes: &[u8]) {
        if bytes.is_ascii() {
            self.ascii(bytes);
        } else {
            for c in String::from_utf8_lossy(bytes).chars() {
                self.put(c);
            }
        }
    }

    /// ASCII text: whole runs copied into a row at a time.
    fn ascii(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.wrap_pending {
                self.wrap();
            }
            let room = usize::from(self.cols - self.col);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            let at = self.index(self.row, self.col);
            self.unsplit(self.row, self.col);
            self.touch(self.row, usize::from(self.col) + now.len());
            let faint = self.faint;
            for (cell, &byte) in self.cells[at..at + now.len()].iter_mut().zip(now) {
                *cell = Cell {
                    c: char::from(byte),
                    faint,
                };
            }
            let end = usize::from(self.col) + now.len();
            if end < usize::from(self.cols) && self.cells[at + now.len()].c == WIDE_TAIL {
                self.cells[at + now.len()] = BLANK;
            }
            self.advance(end);
            bytes = rest;
        }
        self.generation += 1;
    }

    /// One character: a wide one takes two cells, a zero-width one none.
    fn put(&mut self, c: char) {
        let width = c.width().unwrap_or(0).min(2);
        if width == 0 {
            return;
        }
        if self.wrap_pending {
            self.wrap();
        }
        if width == 2 && self.col + 1 >= self.cols {
            if self.cols < 2 {
                return;
            }
            let at = self.index(self.row, self.col);
            self.unsplit(self.row, self.col);
            self.touch(self.row, 0);
            self.cells[at] = BLANK;
            self.wrap();
        }
        let at = self.index(self.row, self.col);
        self.unsplit(self.row, self.col);
        self.touch(self.row, usize::from(self.col) + width);
        let faint = self.faint;
        self.cells[at] = Cell { c, faint };
        if width == 2 {
            self.cells[at + 1] = Cell {
                c: WIDE_TAIL,
                faint,
            };
        }
        let after = self.col + u16::try_from(width).unwrap_or(1);
        if after < self.cols && self.cells[at + width].c == WIDE_TAIL {
            self.cells[at + width] = BLANK;
        }
        self.advance(usize::from(after));
        self.generation += 1;
    }

    /// Moves the cursor to column `end` after a write, holding a wrap at the right margin.
    fn advance(&mut self, end: usize) {
        if end >= usize::from(self.cols) {
            self.col = self.cols - 1;
            self.wrap_pending = true;
        } else {
            self.col = u16::try_from(end).unwrap_or(self.cols - 1);
        }
    }

    /// Writing at (`row`, `col`) over the right half of a wide character blanks its left half.
    fn unsplit(&mut self, row: u16, col: u16) {
        let at = self.index(row, col);
        if col > 0 && self.cells[at].c == WIDE_TAIL {
            self.cells[at - 1] = BLANK;
        }
    }

    fn wrap(&mut self) {
        self.wrap_pending = false;
        self.col = 0;
        self.line_feed();
    }

    /// The stored row that holds the screen's row `row`.
    fn stored(&self, row: u16) -> usize {
        usize::from(self.order[usize::from(row)])
    }

    /// Where the screen's (`row`, `col`) is kept in `cells`; a row's cells are contiguous.
    fn index(&self, row: u16, col: u16) -> usize {
        self.stored(row) * usize::from(self.cols) + usize::from(col)
    }

    /// Blanks the cells `from..to` (indices into `cells`, within one stored row); every
    /// change that moves cells ends here, so it also counts the change and marks the row.
    /// Cells past the row's extent are blank already: erasing only them changes nothing.
    fn blank(&mut self, from: usize, to: usize) {
        let width = usize::from(self.cols);
        let stored = from / width;
        let start = stored * width;
        let extent = usize::from(self.extent[stored]);
        let until = to.min(start + extent);
        if from < until {
            self.cells[from..until].fill(BLANK);
            self.dirty[stored] = true;
            if until == start + extent {
                self.extent[stored] = u16::try_from(from - start).unwrap_or(self.cols);
            }
            self.generation += 1;
        }
    }

    /// Blanks the screen's whole rows `from..to`.
    fn blank_rows(&mut self, from: u16, to: u16) {
        let width = usize::from(self.cols);
        for row in from..to {
            let start = self.index(row, 0);
            self.blank(start, start + width);
        }
    }

    fn line_feed(&mut self) {
        if self.row == self.bottom {
            self.scroll_up(1);
        } else if self.row + 1 < self.rows {
            self.row += 1;
        }
    }

    fn reverse_index(&mut self) {
        if self.row == self.top {
            self.scroll_down(1);
        } else if self.row > 0 {
            self.row -= 1;
        }
    }

    /// Moves the screen's rows `from..=last` by `count` rows up (`up` false: down) within
    /// them, blanking the rows left behind. Only the order changes: each stored row keeps its
    /// cells and its rendered text.
    fn shift_rows(&mut self, from: u16, last: u16, count: u16, up: bool) {
        let count = count.min(last - from + 1);
        let rows = &mut self.order[usize::from(from)..=usize::from(last)];
        // Moving rows with text is a change even when no cell is erased.
        if rows.iter().any(|&at| self.extent[usize::from(at)] > 0) {
            self.generation += 1;
        }
        if up {
            rows.rotate_left(usize::from(count));
            self.blank_rows(last + 1 - count, last + 1);
        } else {
            rows.rotate_right(usize::from(count));
            self.blank_rows(from, from + count);
        }
    }

    fn scroll_up(&mut self, count: u16) {
        self.shift_rows(self.top, self.bottom, count, true);
    }

    fn scroll_down(&mut self, count: u16) {
        self.shift_rows(self.top, self.bottom, count, false);
    }

    /// Column `col` (1-based, 0 meaning 1), clamped to the grid.
    fn column(&self, col: u16) -> u16 {
        col.max(1).min(self.cols) - 1
    }

    /// Row `row` (1-based, 0 meaning 1), clamped to the grid.
    fn row_at(&self, row: u16) -> u16 {
        row.max(1).min(self.rows) - 1
    }

    /// Applies a terminal operation.
    pub(crate) fn op(&mut self, op: Op) {
        // Every operation but a write ends a pending wrap.
        self.wrap_pending = false;
        match op {
            Op::CarriageReturn => self.col = 0,
            Op::LineFeed => self.line_feed(),
            Op::NextLine => {
                self.col = 0;
                self.line_feed();
            }
            Op::ReverseIndex => self.reverse_index(),
            Op::Tab => self.col = ((self.col / TAB_WIDTH + 1) * TAB_WIDTH).min(self.cols - 1),
            Op::Backspace => self.col = self.col.saturating_sub(1),
            Op::Up { count, to_start } => {
                let limit = if self.row >= self.top { self.top } else { 0 };
                self.row = self.row.saturating_sub(count).max(limit);
                if to_start {
                    self.col = 0;
                }
            }
            Op::Down { count, to_start } => {
                let limit = if self.row <= self.bottom {
                    self.bottom
                } else {
                    self.rows - 1
                };
                self.row = self.row.saturating_add(count).min(limit);
                if to_start {
                    self.col = 0;
                }
            }
            Op::Forward(count) => self.col = self.col.saturating_add(count).min(self.cols - 1),
            Op::Back(count) => self.col = self.col.saturating_sub(count),
            Op::Column(col) => self.col = self.column(col),
            Op::Row(row) => self.row = self.row_at(row),
            Op::Position { row, col } => {
                self.row = self.row_at(row);
                self.col = self.column(col);
            }
            Op::EraseDisplay(mode) => self.erase_display(mode),
            Op::EraseLine(mode) => self.erase_line(mode),
            Op::EraseChars(count) => {
                let at = self.index(self.row, self.col);
                let end = self.index(self.row, 0) + usize::from(self.cols);
                self.blank(at, (at + usize::from(count)).min(end));
            }
            Op::InsertChars(count) => self.shift_chars(count, false),
            Op::DeleteChars(count) => self.shift_chars(count, true),
            Op::InsertLines(count) => self.shift_lines(count, false),
            Op::DeleteLines(count) => self.shift_lines(count, true),
            Op::ScrollUp(count) => self.scroll_up(count),
            Op::ScrollDown(count) => self.scroll_down(count),
            Op::ScrollRegion { top, bottom } => {
                let top = self.row_at(top);
                let bottom = if bottom == 0 {
                    self.rows - 1
                } else {
                    self.row_at(bottom)
                };
                if top < bottom {
                    self.top = top;
                    self.bottom = bottom;
                    self.row = 0;
                    self.col = 0;
                }
            }
            Op::SaveCursor => self.saved = (self.row, self.col),
            Op::RestoreCursor => (self.row, self.col) = self.saved,
            Op::Reset => *self = Grid::new(self.cols, self.rows),
            Op::AlternateScreen => {
                self.blank_rows(0, self.rows);
                self.top = 0;
                self.bottom = self.rows - 1;
                self.row = 0;
                self.col = 0;
            }
        }
    }

    fn erase_display(&mut self, mode: u16) {
        let start = self.index(self.row, 0);
        let cursor = start + usize::from(self.col);
        match mode {
            0 => {
                self.blank(cursor, start + usize::from(self.cols));
                self.blank_rows(self.row + 1, self.rows);
            }
            1 => {
                self.blank_rows(0, self.row);
                self.blank(start, cursor + 1);
            }
            2 | 3 => self.blank_rows(0, self.rows),
            _ => {}
        }
    }

    fn erase_line(&mut self, mode: u16) {
        let start = self.index(self.row, 0);
        let cursor = start + usize::from(self.col);
        let end = start + usize::from(self.cols);
        match mode {
            0 => self.blank(cursor, end),
            1 => self.blank(start, cursor + 1),
            2 => self.blank(start, end),
            _ => {}
        }
    }

    /// ICH (`delete` false) or DCH at the cursor: the rest of the row moves right or left.
    fn shift_chars(&mut self, count: u16, delete: bool) {
        let at = self.index(self.row, self.col);
        let end = self.index(self.row, 0) + usize::from(self.cols);
        let count = usize::from(count).min(end - at);
        let stored = self.stored(self.row);
        let extent = usize::from(self.extent[stored]);
        let col = usize::from(self.col);
        if count == 0 || col >= extent {
            // Only blanks would move.
            return;
        }
        self.generation += 1;
        self.touch(self.row, if delete { 0 } else { extent + count });
        if delete {
            self.cells.copy_within(at + count..end, at);
            self.blank(end - count, end);
            // What was blank from the extent on is blank from `count` cells before it.
            let moved = u16::try_from(col.max(extent.saturating_sub(count))).unwrap_or(self.cols);
            self.extent[stored] = self.extent[stored].min(moved);
        } else {
            self.cells.copy_within(at..end - count, at + count);
            self.blank(at, at + count);
        }
    }

    /// IL (`delete` false) or DL at the cursor's row, inside the scroll region only.
    fn shift_lines(&mut self, count: u16, delete: bool) {
        if self.row < self.top || self.row > self.bottom {
            return;
        }
        self.shift_rows(self.row, self.bottom, count, delete);
        self.col = 0;
    }

    /// Takes the terminal's new size. Rows are kept from the top, unless the cursor would fall
    /// off the bottom: then as many rows leave at the top as keep it on the last row. The scroll
    /// region becomes the whole screen.
    pub(crate) fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = clamp_size(cols, rows);
        if (cols, rows) == (self.cols, self.rows) {
            return;
        }
        let dropped = (self.row + 1).saturating_sub(rows);
        let mut cells = vec![BLANK; usize::from(cols) * usize::from(rows)];
        let width = usize::from(cols.min(self.cols));
        for row in 0..rows.min(self.rows - dropped) {
            let from = self.index(row + dropped, 0);
            let to = usize::from(row) * usize::from(cols);
            cells[to..to + width].copy_from_slice(&self.cells[from..from + width]);
            // A wide character cut in half at the new margin leaves only its blank.
            if width < usize::from(self.cols) && self.cells[from + width].c == WIDE_TAIL {
                cells[to + width - 1] = BLANK;
            }
        }
        self.cols = cols;
        self.rows = rows;
        self.cells = cells;
        self.order = (0..rows).collect();
        self.extent = vec![cols; usize::from(rows)];
        self.row_text = vec![Vec::new(); usize::from(rows)];
        self.dirty = vec![true; usize::from(rows)];
        self.row = (self.row - dropped).min(rows - 1);
        self.col = self.col.min(cols - 1);
        self.wrap_pending = false;
        self.top = 0;
        self.bottom = rows - 1;
        self.saved = (self.saved.0.min(rows - 1), self.saved.1.min(cols - 1));
        self.generation += 1;
    }
}

/// Appends one row's text to `out`: its characters up to its last non-blank one, with
/// [`FAINT_TAIL`] before the faint text that ends it after other text.
fn render_row(row: &[Cell], out: &mut Vec<u8>) {
    let used = row
        .iter()
        .rposition(|cell| !is_blank(cell))
        .map_or(0, |at| at + 1);
    let row = &row[..used];
    // The faint tail: the last cells that are faint or blank, from the first faint character
    // among them, when something not faint stands before.
    let solid = row
        .iter()
        .rposition(|cell| !is_blank(cell) && !cell.faint)
        .map_or(0, |at| at + 1);
    let tail = (solid > 0 && solid < used).then(|| {
        solid
            + row[solid..]
                .iter()
                .take_while(|cell| is_blank(cell))
                .count()
    });
    out.reserve(used + 1);
    let mut buffer = [0; 4];
    for (at, cell) in row.iter().enumerate() {
        if Some(at) == tail {
            out.push(FAINT_TAIL);
        }
        if cell.c == WIDE_TAIL {
            continue;
        }
        if cell.c.is_ascii() {
            out.push(cell.c as u8);
        } else {
            // Byte by byte: a copy call per character costs more than the character.
            for &byte in cell.c.encode_utf8(&mut buffer).as_bytes() {
                out.push(byte);
            }
        }
    }
}

/// A cell that shows nothing: a space (faint or not) or a wide character's right half.
fn is_blank(cell: &Cell) -> bool {
    cell.c == ' ' || cell.c == WIDE_TAIL
}

fn clamp_size(cols: u16, rows: u16) -> (u16, u16) {
    (
        cols.clamp(1, SCREEN_COLS_MAX),
        rows.clamp(1, SCREEN_ROWS_MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::{Grid, Op, SCREEN_COLS_MAX};

    /// Feeds `bytes` through the parser into a grid of `cols` by `rows`; its text.
    fn screen(cols: u16, rows: u16, bytes: &[u8]) -> String {
        let mut grid = Grid::new(cols, rows);
        feed(&mut grid, bytes);
        text(&mut grid)
    }

    fn feed(grid: &mut Grid, bytes: &[u8]) {
        super::super::vt::Parser::tracking_faint().advance(bytes, &mut Into(grid));
    }

    fn text(grid: &mut Grid) -> String {
        String::from_utf8_lossy(grid.view()).into_owned()
    }

    struct Into<'a>(&'a mut Grid);

    impl super::super::vt::Sink for Into<'_> {
        fn text(&mut self, bytes: &[u8]) {
            self.0.text(bytes);
        }
        fn op(&mut self, op: Op) {
            self.0.op(op);
        }
        fn query(&mut self, _: super::super::TerminalQuery) {}
        fn bracketed_paste(&mut self, _: bool) {}
        fn faint(&mut self, on: bool) {
            self.0.set_faint(on);
        }
    }

    #[test]
    fn text_wraps_at_the_margin_only_when_more_comes() {
        assert_eq!(screen(4, 3, b"abcd"), "abcd");
        assert_eq!(screen(4, 3, b"abcdef"), "abcd\nef");
        // CR LF after a full row does not leave an empty row between.
        assert_eq!(screen(4, 3, b"abcd\r\nx"), "abcd\nx");
    }

    #[test]
    fn a_line_feed_at_the_bottom_scrolls_the_top_row_away() {
        assert_eq!(screen(5, 2, b"one\r\ntwo\r\nthree"), "two\nthree");
    }

    #[test]
    fn overwriting_in_place_replaces_what_was_there() {
        // A footer drawn, then the frame redrawn from its top with cursor-up: only the changed
        // cells are written, the rest is erased to the end of line.
        let frame = b"> \r\nesc to interrupt\r\n";
        let redraw = b"\x1b[2A\x1b[2C\x1b[K\r\n\x1b[Kctrl-c to exit";
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(redraw);
        assert_eq!(screen(20, 3, &bytes), ">\nctrl-c to exit");
    }

    #[test]
    fn cursor_addressing_is_one_based_and_clamped() {
        assert_eq!(
            screen(5, 3, b"\x1b[2;3Hx\x1b[Hy\x1b[9;9Hz"),
            "y\n  x\n    z"
        );
        assert_eq!(screen(5, 2, b"\x1b[2dq\x1b[4Gr"), "\nq  r");
    }

    #[test]
    fn a_scroll_region_scrolls_only_its_rows() {
        // Rows 1-2 scroll; row 3 (a footer) stays.
        let bytes = b"\x1b[3;1Hfooter\x1b[1;2r\x1b[1;1Ha\r\nb\r\nc";
        assert_eq!(screen(8, 3, bytes), "b\nc\nfooter");
    }

    #[test]
    fn reverse_index_and_inserted_lines_push_rows_down_within_the_region() {
        assert_eq!(screen(4, 3, b"a\r\nb\r\nc\x1b[H\x1bMz"), "z\na\nb");
        assert_eq!(screen(4, 3, b"a\r\nb\r\nc\x1b[2H\x1b[Lz"), "a\nz\nb");
        assert_eq!(screen(4, 3, b"a\r\nb\r\nc\x1b[1H\x1b[M"), "b\nc");
    }

    #[test]
    fn erasing_parts_of_lines_and_of_the_display() {
        assert_eq!(screen(6, 2, b"abcdef\x1b[1;3H\x1b[K"), "ab");
        assert_eq!(screen(6, 2, b"abcdef\x1b[1;3H\x1b[1K"), "   def");
        assert_eq!(screen(6, 2, b"abcdef\r\nxy\x1b[1;3H\x1b[J"), "ab");
        assert_eq!(screen(6, 2, b"abcdef\x1b[1;2H\x1b[2X"), "a  def");
    }

    #[test]
    fn inserting_and_deleting_characters_shift_the_rest_of_the_row() {
        assert_eq!(screen(6, 1, b"abcdef\x1b[1;2H\x1b[2@"), "a  bcd");
        assert_eq!(screen(6, 1, b"abcdef\x1b[1;2H\x1b[2P"), "adef");
    }

    #[test]
    fn wide_characters_take_two_cells_and_wrap_whole() {
        assert_eq!(screen(4, 2, "ab漢x".as_bytes()), "ab漢\nx");
        assert_eq!(screen(8, 1, "漢字 ok".as_bytes()), "漢字 ok");
        assert_eq!(screen(3, 2, "ab漢".as_bytes()), "ab\n漢");
        // Overwriting half of a wide character blanks the other half.
        assert_eq!(screen(4, 1, "漢\x1b[1;2Hx".as_bytes()), " x");
        assert_eq!(screen(4, 1, "漢\x1b[1;1Hx".as_bytes()), "x");
    }

    #[test]
    fn faint_text_that_ends_a_row_after_other_text_is_marked() {
        // Codex's empty input line: a bold glyph, then its placeholder in faint.
        assert_eq!(
            screen(
                40,
                1,
                b"\x1b[1m\xe2\x80\xba\x1b[22m \x1b[2mAsk Codex\x1b[22m"
            ),
            "\u{203a} \x1fAsk Codex"
        );
        // A row all faint, or faint text with more after it, is not marked.
        assert_eq!(screen(40, 1, b"\x1b[2m? for shortcuts"), "? for shortcuts");
        assert_eq!(screen(40, 1, b"\x1b[2mdim\x1b[0m bright"), "dim bright");
        // A colour component of 2 is not faint.
        assert_eq!(screen(40, 1, b"a \x1b[38;2;2;2;2mb"), "a b");
        assert_eq!(screen(40, 1, b"a \x1b[38:2::2:2:2mb"), "a b");
        assert_eq!(screen(40, 1, b"a \x1b[1;2mb"), "a \x1fb");
    }

    #[test]
    fn saved_cursor_comes_back() {
        assert_eq!(screen(6, 2, b"ab\x1b7\x1b[2;1Hzz\x1b8c"), "abc\nzz");
        assert_eq!(screen(6, 2, b"ab\x1b[s\x1b[2;1Hzz\x1b[uc"), "abc\nzz");
    }

    #[test]
    fn the_alternate_screen_and_a_reset_start_blank() {
        assert_eq!(screen(6, 2, b"shell\x1b[?1049hui"), "ui");
        assert_eq!(screen(6, 2, b"shell\x1bcx"), "x");
    }

    #[test]
    fn a_resize_keeps_the_cursor_row_in_view() {
        let mut grid = Grid::new(6, 4);
        feed(&mut grid, b"a\r\nb\r\nc\r\nd");
        grid.resize(3, 2);
        assert_eq!(text(&mut grid), "c\nd");
        feed(&mut grid, b"!");
        assert_eq!(text(&mut grid), "c\nd!");
        grid.resize(u16::MAX, 0);
        assert_eq!(grid.size(), (SCREEN_COLS_MAX, 1));
    }

    #[test]
    fn the_view_is_rendered_again_only_after_a_change() {
        let mut grid = Grid::new(6, 2);
        feed(&mut grid, b"hi");
        let generation = grid.generation();
        assert_eq!(text(&mut grid), "hi");
        feed(&mut grid, b"\x1b[H\x1b[5C\r");
        assert_eq!(
            grid.generation(),
            generation,
            "cursor motion changes no cell"
        );
        feed(&mut grid, b"\x1b[K");
        assert_eq!(text(&mut grid), "");
    }

    #[test]
    fn inserted_characters_push_a_short_row_right() {
        assert_eq!(screen(6, 1, b"ab\x1b[1G\x1b[2@"), "  ab");
        assert_eq!(screen(6, 1, b"abcd\x1b[1G\x1b[4@"), "    ab");
    }

    /// Whole terminal operations, for properties that need them intact.
    const OPERATIONS: [&str; 36] = [
        "a",
        "bc",
        "漢",
        " ",
        "\r",
        "\n",
        "\x08",
        "\t",
        "\x1b[2@",
        "\x1b[P",
        "\x1b[3P",
        "\x1b[K",
        "\x1b[1K",
        "\x1b[2K",
        "\x1b[J",
        "\x1b[1J",
        "\x1b[2J",
        "\x1b[2;3H",
        "\x1b[H",
        "\x1b[3G",
        "\x1b[L",
        "\x1b[2M",
        "\x1b[S",
        "\x1b[2T",
        "\x1b[2;4r",
        "\x1b[r",
        "\x1bM",
        "\x1b[2X",
        "\x1b[2m",
        "\x1b[0m",
        "\x1b7",
        "\x1b8",
        "\x1b[A",
        "\x1b[?1049h",
        "\x1bc",
        "\x1b[5d",
    ];

    proptest::proptest! {
        /// The view kept row by row (texts, marks and extents) is what the cells alone render,
        /// read at any points of a run of whole operations.
        #[test]
        fn the_kept_view_is_the_rendered_cells(
            operations in proptest::collection::vec(proptest::sample::select(&OPERATIONS[..]), 0..80),
            cols in 1u16..9,
            rows in 1u16..6,
            every in 1usize..6,
        ) {
            let mut grid = Grid::new(cols, rows);
            for (index, operation) in operations.iter().enumerate() {
                feed(&mut grid, operation.as_bytes());
                if index % every == 0 {
                    let mut fresh = Vec::new();
                    grid.render_into(&mut fresh);
                    proptest::prop_assert_eq!(grid.view(), &fresh[..]);
                }
            }
            let mut fresh = Vec::new();
            grid.render_into(&mut fresh);
            proptest::prop_assert_eq!(grid.view(), &fresh[..]);
        }

        /// No input panics or grows the grid, at any size.
        #[test]
        fn any_input_at_any_size_keeps_the_grid_whole(
            bytes in proptest::collection::vec(proptest::sample::select(vec![
                b'a', b' ', 0x1b, b'[', b';', b'1', b'2', b'9', b'A', b'B', b'C', b'D', b'H',
                b'J', b'K', b'L', b'M', b'P', b'@', b'X', b'S', b'T', b'r', b'd', b'G', b'7',
                b'8', b'\r', b'\n', 0x08, b'\t', 0xe6, 0xbc, 0xa2,
            ]), 0..200),
            cols in 1u16..8,
            rows in 1u16..6,
            views in proptest::collection::vec(0usize..200, 0..4),
        ) {
            let mut grid = Grid::new(cols, rows);
            // The view read in between (the row cache filled) and at the end must be what the
            // cells alone render.
            let mut cuts = views;
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut fed = 0;
            for cut in cuts {
                let cut = cut.min(bytes.len());
                feed(&mut grid, &bytes[fed..cut.max(fed)]);
                fed = fed.max(cut);
                let mut fresh = Vec::new();
                grid.render_into(&mut fresh);
                proptest::prop_assert_eq!(grid.view(), &fresh[..]);
            }
            proptest::prop_assert_eq!(grid.cells.len(), usize::from(cols) * usize::from(rows));
            proptest::prop_assert!(grid.row < rows && grid.col < cols);
            let view = text(&mut grid);
            proptest::prop_assert!(view.matches('\n').count() < usize::from(rows));
        }
    }
}
