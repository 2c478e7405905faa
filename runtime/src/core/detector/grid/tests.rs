//! The grid's tests: operations as a terminal applies them, and properties (the view kept row
//! by row is what the cells render; no input at any size breaks the grid).

use super::{Grid, SCREEN_COLS_MAX};
use crate::core::detector::vt::Op;

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
    String::from_utf8_lossy(&grid.view()).into_owned()
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

/// Text pieces and cursor moves for the properties of writing in runs: narrow, wide and
/// zero-width characters, from any column, over wide characters, faint or not.
const WRITES: [&str; 16] = [
    "a",
    "\u{2500}\u{2500}x\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}\u{2500}",
    "\u{2502}\u{2502}漢漢\u{2502}",
    "bc",
    "\u{2500}\u{2500}\u{2500}",
    "\u{276f} x",
    "漢",
    "a漢b字",
    "e\u{301}",
    "\u{301}",
    "\u{1f600}!",
    "\u{2026} \u{b7} \u{2193}",
    "\x1b[2m",
    "\x1b[0m",
    "\x1b[1;3H",
    "\x1b[2G",
];

/// Writes `bytes` as the grid did before it wrote runs: a character at a time.
fn feed_char_by_char(grid: &mut Grid, bytes: &[u8]) {
    struct Chars<'a>(&'a mut Grid);
    impl super::super::vt::Sink for Chars<'_> {
        fn text(&mut self, bytes: &[u8]) {
            for c in String::from_utf8_lossy(bytes).chars() {
                self.0.put(c);
            }
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
    super::super::vt::Parser::tracking_faint().advance(bytes, &mut Chars(grid));
}

/// The old rendering of a row, cell by cell: the reference of [`super::render_row`].
fn render_row_cell_by_cell(row: &[super::Cell], out: &mut Vec<u8>) {
    let blank = |cell: &super::Cell| cell.c() == ' ' || cell.c() == super::WIDE_TAIL;
    let used = row
        .iter()
        .rposition(|cell| !blank(cell))
        .map_or(0, |at| at + 1);
    let row = &row[..used];
    let solid = row
        .iter()
        .rposition(|cell| !blank(cell) && !cell.faint())
        .map_or(0, |at| at + 1);
    let tail = (solid > 0 && solid < used)
        .then(|| solid + row[solid..].iter().take_while(|cell| blank(cell)).count());
    let mut buffer = [0; 4];
    for (at, cell) in row.iter().enumerate() {
        if Some(at) == tail {
            out.push(super::FAINT_TAIL);
        }
        if cell.c() != super::WIDE_TAIL {
            out.extend_from_slice(cell.c().encode_utf8(&mut buffer).as_bytes());
        }
    }
}

proptest::proptest! {
    /// Text written in runs leaves the grid as writing it a character at a time does: the
    /// same cells, cursor, pending wrap and view.
    #[test]
    fn text_in_runs_is_text_a_character_at_a_time(
        writes in proptest::collection::vec(proptest::sample::select(&WRITES[..]), 0..40),
        cols in 1u16..9,
        rows in 1u16..4,
    ) {
        let mut runs = Grid::new(cols, rows);
        let mut chars = Grid::new(cols, rows);
        for write in writes {
            feed(&mut runs, write.as_bytes());
            feed_char_by_char(&mut chars, write.as_bytes());
            proptest::prop_assert_eq!(&runs.cells, &chars.cells);
            proptest::prop_assert_eq!(
                (runs.row, runs.col, runs.wrap_pending),
                (chars.row, chars.col, chars.wrap_pending)
            );
        }
        proptest::prop_assert_eq!(text(&mut runs), text(&mut chars));
    }

    /// A row renders as it did cell by cell.
    #[test]
    fn rows_render_as_cell_by_cell(
        row in proptest::collection::vec(
            (proptest::sample::select(vec![' ', 'a', '~', '\u{2500}', '漢', '\0', '\u{1f600}']),
             proptest::bool::ANY),
            0..24,
        ),
    ) {
        let cells: Vec<super::Cell> =
            row.into_iter().map(|(c, faint)| super::Cell::new(c, faint)).collect();
        let (mut fast, mut plain) = (Vec::new(), Vec::new());
        super::render_row(&cells, &mut fast);
        render_row_cell_by_cell(&cells, &mut plain);
        proptest::prop_assert_eq!(fast, plain);
    }
}

#[test]
fn truecolour_is_no_faint_text_but_what_follows_it_can_be() {
    assert_eq!(screen(40, 1, b"\x1b[2ma \x1b[0mb\x1b[48;2;2;2;2mc"), "a bc");
    // Faint after the colour's three components: the row ends in faint text.
    assert_eq!(screen(40, 1, b"a \x1b[48;2;2;2;2;2mb"), "a \x1fb");
    assert_eq!(screen(40, 1, b"a \x1b[38;2;2;2;2m\x1b[2mb"), "a \x1fb");
}

#[test]
fn repeated_bytes_agree_with_a_byte_by_byte_scan_at_every_start_and_period() {
    let text = "──────────x──────────────────y漢漢漢漢漢漢漢漢漢abababababababab".as_bytes();
    for period in 1..=4 {
        for at in period..=text.len() {
            let plain = (at..text.len())
                .take_while(|&k| text[k] == text[k - period])
                .count();
            assert_eq!(super::repeated(text, at, period), plain, "{period} {at}");
        }
    }
}

/// Operations for the classifier's property: the terminal's and lines an agent's frame is
/// read by (prompts, menus, phrases, faint placeholders, borders).
const FRAME_OPERATIONS: [&str; 16] = [
    "❯",
    "│ ❯ │",
    "›",
    "> ",
    "❯ 1. Yes",
    "esc to interrupt",
    "Working (",
    "Esc to cancel",
    "enter to confirm",
    "Do you trust",
    "\x1b[2mAsk\x1b[22m",
    "── ─",
    "-- INSERT --",
    "$ ",
    "\r\n",
    "\x1b[1;1H",
];

proptest::proptest! {
    /// The grid's rows classify as their text in one piece does, for every profile, with what
    /// was read off rows kept from one classification to the next (so kept facts are checked
    /// against rows whose text changed, moved or stayed) and only the rows the tail reaches
    /// rendered (reading a row not rendered fails the grid's debug assertion).
    #[test]
    fn rows_classify_as_the_text_in_one_piece(
        operations in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(&OPERATIONS[..]),
                proptest::sample::select(&FRAME_OPERATIONS[..]),
            ],
            0..80,
        ),
        cols in 1u16..24,
        rows in 1u16..8,
        every in 1usize..4,
        resize in proptest::option::of((1u16..24, 1u16..8, 0usize..80)),
    ) {
        use crate::core::detector::Profile;
        use crate::core::detector::classify::{Frame, Scratch, classify};
        let profiles = [Profile::Claude, Profile::Codex, Profile::Gemini, Profile::Shell, Profile::Generic];
        let mut grid = Grid::new(cols, rows);
        let mut kept: Vec<Scratch> = profiles.iter().map(|_| Scratch::default()).collect();
        for (index, operation) in operations.iter().enumerate() {
            feed(&mut grid, operation.as_bytes());
            if let Some((cols, rows, at)) = resize && at == index {
                grid.resize(cols, rows);
            }
            if index % every == 0 {
                // From the cells alone: the kept rows stay as the classifications leave them.
                let mut whole = Vec::new();
                grid.render_into(&mut whole);
                for (profile, scratch) in profiles.iter().zip(&mut kept) {
                    let by_rows = classify(*profile, Frame::Grid(&mut grid), scratch);
                    let in_one = classify(*profile, Frame::Text(&whole), &mut Scratch::default());
                    proptest::prop_assert_eq!(by_rows, in_one, "{:?} after {}", profile, index);
                }
            }
        }
    }
}
