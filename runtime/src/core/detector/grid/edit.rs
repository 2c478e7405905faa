//! The grid's terminal operations other than writing text: cursor motion and addressing, line
//! feeds and reverse index within the scroll region, scrolling, erasing, inserting and deleting
//! characters and lines, saving the cursor, resetting and resizing (see the module
//! documentation of `grid`).

use super::{BLANK, Grid, TAB_WIDTH, WIDE_TAIL, clamp_size};
use crate::core::detector::vt::Op;

impl Grid {
    pub(super) fn line_feed(&mut self) {
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
            Op::Reset => {
                // The generation and the rows' text versions keep counting: a mark, a reading
                // or what was read off a row before the reset must not match the screen after.
                let (generation, version) = (self.generation + 1, self.version);
                *self = Grid::new(self.cols, self.rows);
                self.generation = generation;
                self.version = version;
            }
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
            if width < usize::from(self.cols) && self.cells[from + width].is(WIDE_TAIL) {
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
        self.versions = vec![0; usize::from(rows)];
        self.drawn = vec![BLANK; usize::from(cols) * usize::from(rows)];
        self.drawn_extent = vec![0; usize::from(rows)];
        self.row = (self.row - dropped).min(rows - 1);
        self.col = self.col.min(cols - 1);
        self.wrap_pending = false;
        self.top = 0;
        self.bottom = rows - 1;
        self.saved = (self.saved.0.min(rows - 1), self.saved.1.min(cols - 1));
        self.generation += 1;
    }
}
