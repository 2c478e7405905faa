//! The screen grid: what a terminal of the agent's size shows, cell by cell.
//!
//! Full-screen agents (Claude Code, Codex CLI, Gemini CLI) draw a frame by moving the cursor and
//! rewriting only the cells that changed; Codex keeps its interface in a scroll region at the
//! bottom and inserts history above it. A stream of text lines cannot follow that: a finished
//! turn's `esc to interrupt` footer that is overwritten in place, not erased, stays in it. The
//! grid applies each [`Op`](super::vt::Op) as a VT100-style terminal does: cursor addressing,
//! the scroll region, erasing, inserting and deleting lines and characters, a pending wrap at
//! the right margin, and wide characters taking two cells. Lines scrolled off the top are gone,
//! as on a terminal without scrollback; the alternate screen shares the one grid (switching
//! clears it).
//!
//! The text the classifier reads after every chunk is kept row by row: a change marks its rows,
//! only those are rendered again, and rows scrolled or shifted keep their text (it moves with
//! them), so a redraw of the footer costs a few rows, not the whole screen.
//!
//! Memory: the cells (at most [`SCREEN_COLS_MAX`] by [`SCREEN_ROWS_MAX`]) and each row's text;
//! no input makes any of them grow.
//!
//! Layout: this module holds the cells, writing text into them and the rows' texts; `edit`
//! applies the other terminal operations (cursor motion, scrolling, erasing, inserting and
//! deleting, resizing).

mod edit;
#[cfg(test)]
mod tests;

use unicode_width::UnicodeWidthChar as _;

/// Widest grid kept: a wider terminal is read as this wide (its right part is cut off).
pub const SCREEN_COLS_MAX: u16 = 500;
/// Tallest grid kept: a taller terminal is read as this tall.
pub const SCREEN_ROWS_MAX: u16 = 200;

/// One cell: its character, and whether it was written faint (SGR 2), in one word: the code
/// point, with [`FAINT_BIT`] set for faint text. Four bytes a cell keeps a row's writes,
/// erasures and scans to plain word stores and compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell(u32);

/// Marks a faint cell (code points end at U+10FFFF, far below it).
const FAINT_BIT: u32 = 1 << 31;

impl Cell {
    const fn new(c: char, faint: bool) -> Self {
        Cell(c as u32 | if faint { FAINT_BIT } else { 0 })
    }

    /// A printable ASCII byte's cell.
    const fn ascii(byte: u8, faint: bool) -> Self {
        Cell(byte as u32 | if faint { FAINT_BIT } else { 0 })
    }

    /// Its character's code point.
    const fn code(self) -> u32 {
        self.0 & !FAINT_BIT
    }

    const fn faint(self) -> bool {
        self.0 & FAINT_BIT != 0
    }

    const fn is(self, c: char) -> bool {
        self.code() == c as u32
    }

    /// Its character (a cell only ever holds one written to it).
    #[cfg(test)]
    fn c(self) -> char {
        char::from_u32(self.code()).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

const BLANK: Cell = Cell::new(' ', false);
/// The right half of a wide character (never rendered).
const WIDE_TAIL: char = '\0';
/// Put before the faint text that ends a row after other text (a placeholder in an input
/// line, as Codex CLI and Claude Code show): the classifier can read the line without it.
pub(crate) const FAINT_TAIL: u8 = 0x1f;
/// Widths of recent non-ASCII characters kept, by code point modulo this: an agent's interface
/// draws with a few dozen symbols (borders, rules, spinners, arrows), each looked up in the
/// Unicode tables once rather than at every write. An entry is `code << 2 | width`; the
/// initial zeros say U+0000 has width 0, which is true.
const WIDTH_CACHE_ENTRIES: usize = 64;
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
    /// Each stored row's text version: 0 while its text is empty, otherwise a number no other
    /// text of this grid had, so what was read off a row holds while its version stands.
    versions: Vec<u64>,
    /// The last version handed out.
    version: u64,
    /// A row rendered again, before it is compared with the text it replaces (reused).
    spare: Vec<u8>,
    /// The cells as each stored row's text was last rendered from, laid out as `cells`, and
    /// the column from which on each such row is blank: a row marked changed whose cells are
    /// as they were (an agent's frame erased and drawn again the same) keeps its text without
    /// rendering it.
    drawn: Vec<Cell>,
    drawn_extent: Vec<u16>,
    /// For each stored row, a column from which on all its cells are blank (at most `cols`):
    /// rendering and erasing stop there.
    extent: Vec<u16>,
    /// Widths of recent characters (see [`WIDTH_CACHE_ENTRIES`]).
    widths: Box<[u32; WIDTH_CACHE_ENTRIES]>,
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
            versions: vec![0; usize::from(rows)],
            version: 0,
            spare: Vec::new(),
            drawn: vec![BLANK; usize::from(cols) * usize::from(rows)],
            drawn_extent: vec![0; usize::from(rows)],
            extent: vec![0; usize::from(rows)],
            widths: Box::new([0; WIDTH_CACHE_ENTRIES]),
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
    /// line feeds (blank rows are empty lines) up to the last row with text, from the rows'
    /// kept texts (rendered again where their cells changed). The classifier reads the rows
    /// themselves (see [`Grid::row`]); this is their text in one piece, for the tests.
    #[cfg(test)]
    pub(crate) fn view(&mut self) -> Vec<u8> {
        for row in 0..usize::from(self.rows) {
            self.render_row(row);
        }
        let texts = &self.row_text;
        let used = self
            .order
            .iter()
            .rposition(|&at| !texts[usize::from(at)].is_empty())
            .map_or(0, |at| at + 1);
        let rows: Vec<&[u8]> = self.order[..used]
            .iter()
            .map(|&at| &texts[usize::from(at)][..])
            .collect();
        rows.join(&b'\n')
    }

    /// The screen's row `row` (0 at the top), rendered again if its cells changed since its
    /// last rendering: the stored row that holds it, its text version (equal versions of a
    /// stored row mean equal texts; 0 is the empty text) and its text (see [`render_row`]).
    /// A row whose cells are as they were when last rendered keeps its text and version.
    pub(crate) fn render_row(&mut self, row: usize) -> (usize, u64, &[u8]) {
        let stored = usize::from(self.order[row]);
        if std::mem::take(&mut self.dirty[stored]) {
            let start = stored * usize::from(self.cols);
            let extent = usize::from(self.extent[stored]);
            // Past its extent each row is blank: comparing up to the larger one compares all.
            let compared = start..start + extent.max(usize::from(self.drawn_extent[stored]));
            if self.cells[compared.clone()] != self.drawn[compared.clone()] {
                self.drawn[compared.clone()].copy_from_slice(&self.cells[compared]);
                self.drawn_extent[stored] = self.extent[stored];
                self.spare.clear();
                render_row(&self.cells[start..start + extent], &mut self.spare);
                let text = &mut self.row_text[stored];
                if self.spare != *text {
                    std::mem::swap(&mut self.spare, text);
                    self.versions[stored] = if text.is_empty() {
                        0
                    } else {
                        self.version += 1;
                        self.version
                    };
                }
            }
        }
        (stored, self.versions[stored], &self.row_text[stored])
    }

    /// The screen's row `row` as last rendered (see [`Grid::render_row`], which must have
    /// rendered it since its cells last changed).
    pub(crate) fn row(&self, row: usize) -> (usize, u64, &[u8]) {
        let stored = usize::from(self.order[row]);
        debug_assert!(!self.dirty[stored], "row {row} read before it was rendered");
        (stored, self.versions[stored], &self.row_text[stored])
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
            self.unicode(bytes);
        }
    }

    /// Text with non-ASCII characters: each run that fits in the cursor's row is written cell
    /// by cell with no more than a store per character, and the row is marked once at its end
    /// (as [`Grid::put`] would leave it, character by character). A character that wraps first,
    /// or a wide one at the margin, goes through [`Grid::put`].
    fn unicode(&mut self, bytes: &[u8]) {
        let mut i = 0;
        let mut wrote = false;
        while i < bytes.len() {
            let Some((c, len)) = decode(bytes, i) else {
                // Not valid UTF-8 after all (the parser never sends it): the rest, lossily.
                for c in String::from_utf8_lossy(&bytes[i..]).chars() {
                    self.put(c);
                }
                return;
            };
            let width = char_width(c, &mut self.widths);
            if width == 0 {
                i += len;
                continue;
            }
            let cols = usize::from(self.cols);
            if self.wrap_pending || usize::from(self.col) + width > cols {
                self.put(c);
                i += len;
                continue;
            }
            // A run in this row, from the cursor up to the margin.
            let start = self.index(self.row, 0);
            self.unsplit(self.row, self.col);
            let faint = self.faint;
            let mut col = usize::from(self.col);
            let (mut c, mut len, mut width) = (c, len, width);
            loop {
                self.cells[start + col] = Cell::new(c, faint);
                if width == 2 {
                    self.cells[start + col + 1] = Cell::new(WIDE_TAIL, faint);
                }
                col += width;
                i += len;
                // Rules and borders repeat one narrow character: its copies are the same
                // bytes, written with no decoding.
                if width == 1 && len > 1 {
                    let same = repeated(bytes, i, len);
                    // Constant divisors: multiplications, not a division per character.
                    let copies = match len {
                        2 => same / 2,
                        3 => same / 3,
                        _ => same / 4,
                    }
                    .min(cols - col);
                    self.cells[start + col..start + col + copies].fill(Cell::new(c, faint));
                    col += copies;
                    i += copies * len;
                }
                // ASCII between the other characters (text holds no controls: every byte
                // below 0x80 is a printable character), copied as a stretch.
                let ascii = bytes[i..]
                    .iter()
                    .take_while(|&&byte| byte < 0x80)
                    .count()
                    .min(cols - col);
                for (cell, &byte) in self.cells[start + col..start + col + ascii]
                    .iter_mut()
                    .zip(&bytes[i..i + ascii])
                {
                    *cell = Cell::ascii(byte, faint);
                }
                col += ascii;
                i += ascii;
                // The next character with a width, if it fits in the row.
                let next = loop {
                    match decode(bytes, i) {
                        Some((c, len)) => match char_width(c, &mut self.widths) {
                            0 => i += len,
                            width => break Some((c, len, width)),
                        },
                        None => break None,
                    }
                };
                match next {
                    Some(found) if col + found.2 <= cols => (c, len, width) = found,
                    _ => break,
                }
            }
            let row = self.row;
            self.touch(row, col);
            if col < cols && self.cells[start + col].is(WIDE_TAIL) {
                self.cells[start + col] = BLANK;
            }
            self.advance(col);
            wrote = true;
        }
        if wrote {
            self.generation += 1;
        }
    }

    /// Printable ASCII text (no controls): whole runs copied into a row at a time.
    pub(crate) fn ascii(&mut self, mut bytes: &[u8]) {
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
                *cell = Cell::ascii(byte, faint);
            }
            let end = usize::from(self.col) + now.len();
            if end < usize::from(self.cols) && self.cells[at + now.len()].is(WIDE_TAIL) {
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
        self.cells[at] = Cell::new(c, faint);
        if width == 2 {
            self.cells[at + 1] = Cell::new(WIDE_TAIL, faint);
        }
        let after = self.col + u16::try_from(width).unwrap_or(1);
        if after < self.cols && self.cells[at + width].is(WIDE_TAIL) {
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
        if col > 0 && self.cells[at].is(WIDE_TAIL) {
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
}

/// The character at `bytes[at]` and its length in bytes, if a whole valid one starts there.
#[inline(always)]
fn decode(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let lead = *bytes.get(at)?;
    if lead < 0x80 {
        return Some((char::from(lead), 1));
    }
    // Three bytes (box drawing, arrows, most symbols of agent interfaces) decoded in one step.
    if let Some(&[second, third]) = bytes.get(at + 1..at + 3)
        && lead & 0xf0 == 0xe0
        && (second & 0xc0) | ((third & 0xc0) >> 2) == 0xa0
    {
        let code_point = (u32::from(lead & 0x0f) << 12)
            | (u32::from(second & 0x3f) << 6)
            | u32::from(third & 0x3f);
        return char::from_u32(code_point).map(|c| (c, 3));
    }
    let len = match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let tail = bytes.get(at + 1..at + len)?;
    let mut code_point = u32::from(lead) & (0x7f >> len);
    for &byte in tail {
        if byte & 0xc0 != 0x80 {
            return None;
        }
        code_point = (code_point << 6) | u32::from(byte & 0x3f);
    }
    // Overlong forms are not rejected here: the parser sends valid UTF-8 only, and the grid
    // needs a character, not a verdict.
    char::from_u32(code_point).map(|c| (c, len))
}

/// How many bytes from `at` on repeat the `period` bytes before them (each equals the byte
/// `period` places back): a character repeated is its bytes repeated. Eight bytes per step.
#[inline(always)]
fn repeated(bytes: &[u8], at: usize, period: usize) -> usize {
    let word = |k: usize| {
        let mut array = [0; 8];
        array.copy_from_slice(&bytes[k..k + 8]);
        u64::from_le_bytes(array)
    };
    let mut k = at;
    while k + 8 <= bytes.len() {
        let diff = word(k) ^ word(k - period);
        if diff != 0 {
            return k + (diff.trailing_zeros() / 8) as usize - at;
        }
        k += 8;
    }
    while k < bytes.len() && bytes[k] == bytes[k - period] {
        k += 1;
    }
    k - at
}

/// Cells `c` takes (0, 1 or 2, as [`Grid::put`] counts them), looked up in `widths` first
/// (see [`WIDTH_CACHE_ENTRIES`]).
#[inline(always)]
fn char_width(c: char, widths: &mut [u32; WIDTH_CACHE_ENTRIES]) -> usize {
    if c.is_ascii() {
        return 1;
    }
    let code = c as u32;
    let slot = &mut widths[code as usize % WIDTH_CACHE_ENTRIES];
    if *slot >> 2 != code {
        *slot = (code << 2) | c.width().unwrap_or(0).min(2) as u32;
    }
    (*slot & 3) as usize
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
        .rposition(|cell| !is_blank(cell) && !cell.faint())
        .map_or(0, |at| at + 1);
    let tail = (solid > 0 && solid < used).then(|| {
        solid
            + row[solid..]
                .iter()
                .take_while(|cell| is_blank(cell))
                .count()
    });
    out.reserve(used + 1);
    match tail {
        Some(tail) => {
            render_cells(&row[..tail], out);
            out.push(FAINT_TAIL);
            render_cells(&row[tail..], out);
        }
        None => render_cells(row, out),
    }
}

/// Appends the characters of `cells` to `out`: stretches of printable ASCII in bulk, other
/// characters one at a time, wide characters' right halves not at all.
fn render_cells(cells: &[Cell], out: &mut Vec<u8>) {
    // Most rows are all printable ASCII: converted and checked in one pass with no branch per
    // cell (the conversion is undone if the check fails).
    let start = out.len();
    // For printable ASCII the code point is the byte (the truncation is exact).
    out.extend(cells.iter().map(|cell| cell.code() as u8));
    let other = cells.iter().fold(false, |other, cell| {
        other | (cell.code().wrapping_sub(0x20) > 0x7e - 0x20)
    });
    if !other {
        return;
    }
    out.truncate(start);
    // At most four bytes a cell: no growth check per character below.
    out.reserve(4 * cells.len());
    let mut rest = cells;
    while !rest.is_empty() {
        let plain = rest
            .iter()
            .position(|cell| !(0x20..=0x7e).contains(&cell.code()))
            .unwrap_or(rest.len());
        out.extend(rest[..plain].iter().map(|cell| cell.code() as u8));
        let Some(cell) = rest.get(plain) else { break };
        if !cell.is(WIDE_TAIL) {
            encode(cell.code(), out);
        }
        rest = &rest[plain + 1..];
    }
}

/// Appends the UTF-8 encoding of a cell's code point (always a character's: cells are only
/// written from characters). The shifts keep the bytes exact; `as u8` truncates on purpose.
#[inline(always)]
fn encode(code: u32, out: &mut Vec<u8>) {
    let bytes = match code {
        0..=0x7f => [code as u8, 0, 0, 0],
        0x80..=0x7ff => [0xc0 | (code >> 6) as u8, 0x80 | (code & 0x3f) as u8, 0, 0],
        0x800..=0xffff => [
            0xe0 | (code >> 12) as u8,
            0x80 | ((code >> 6) & 0x3f) as u8,
            0x80 | (code & 0x3f) as u8,
            0,
        ],
        _ => [
            0xf0 | (code >> 18) as u8,
            0x80 | ((code >> 12) & 0x3f) as u8,
            0x80 | ((code >> 6) & 0x3f) as u8,
            0x80 | (code & 0x3f) as u8,
        ],
    };
    let len = match code {
        0..=0x7f => 1,
        0x80..=0x7ff => 2,
        0x800..=0xffff => 3,
        _ => 4,
    };
    // Four bytes stored at once, then cut to the character's length: no copy call.
    out.extend_from_slice(&bytes);
    out.truncate(out.len() - 4 + len);
}

/// A cell that shows nothing: a space (faint or not) or a wide character's right half.
fn is_blank(cell: &Cell) -> bool {
    cell.is(' ') || cell.is(WIDE_TAIL)
}

fn clamp_size(cols: u16, rows: u16) -> (u16, u16) {
    (
        cols.clamp(1, SCREEN_COLS_MAX),
        rows.clamp(1, SCREEN_ROWS_MAX),
    )
}
