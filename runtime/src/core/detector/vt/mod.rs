//! Streaming parser of terminal output: bytes in, screen-text events out.
//!
//! The parser is a byte-at-a-time state machine in the manner of the DEC ANSI parser (ground,
//! escape, CSI, OSC and the DCS/SOS/PM/APC string states), with UTF-8 decoding in the ground
//! state. Its whole memory is a handful of integers and the start of an OSC string
//! ([`OSC_BYTES_MAX`] bytes), so any input, however hostile, costs constant memory; a parameter
//! that overflows saturates.
//!
//! Invariant: the sequence of [`Sink`] calls depends only on the bytes, never on how they were
//! split into chunks, except that one run of text may arrive as several `text` calls. Fast paths
//! (word-at-a-time scans for printable ASCII, bulk UTF-8 validation) must keep that property; the
//! property test in `detector::tests` checks it.
//!
//! The parser reports printable text (invalid UTF-8 becomes U+FFFD, one per maximal invalid
//! subpart), the terminal operations a screen model needs ([`Op`]: cursor motion, erasing,
//! inserting and deleting, scrolling and its region, saving the cursor, clearing), the queries
//! owed a reply (DSR, DA1, DA2), bracketed paste (`CSI ? 2004 h/l`) and each OSC string that
//! was terminated (its first [`OSC_BYTES_MAX`] bytes: titles, notifications, agent states).
//! Everything else (SGR, DCS and other strings, charsets, other modes) is dropped. Two models consume it:
//! the screen grid (`grid`), which applies every operation as a terminal would, and the line
//! model ([`LineSink`]), which keeps a stream of text lines:
//! - CR, LF, VT, FF, NEL, IND and downward or absolute cursor motion (CUD, CNL, CUP, HVP, VPA,
//!   VPR, and CHA/HPA to column 1) become line breaks; TAB and forward motion (CUF, HPR, CHA/HPA
//!   further right) become a space; BS erases the last character of the current line;
//! - erase line (`CSI 2 K`) empties the current line, and cursor up (CUU, CPL) from an empty line
//!   returns to the end of the line above (from a non-empty one it is a line break): together
//!   they take back the lines that Ink-style renderers erase before drawing the next frame;
//! - erase display (`CSI 2 J`, `CSI 3 J`), full reset (`ESC c`) and switching to or from the
//!   alternate screen clear the text;
//! - the other operations (erasing part of a line or of the display, reverse index, scrolling,
//!   inserting or deleting, backward motion) are dropped.
//!
//! Layout: this module holds the events ([`Op`], [`Sink`]) and the line model's mapping of them
//! ([`LineSink`]); `parser` the state machine, `csi` what a control sequence's parameters say
//! and which event a complete one is, `scan` the word-at-a-time scans and UTF-8 checks of the
//! ground state's fast path.

mod csi;
mod parser;
mod scan;

use super::TerminalQuery;

pub(crate) use parser::Parser;
pub(crate) use scan::{HIGHS, ONES};

/// A terminal operation, as the parser recognised it. Counts are at least 1 (a missing or zero
/// parameter means 1); rows and columns are 1-based as on the wire, 0 meaning "not given".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// CR.
    CarriageReturn,
    /// LF, VT, FF, IND: down a line, scrolling at the bottom of the scroll region.
    LineFeed,
    /// NEL: carriage return and line feed.
    NextLine,
    /// RI: up a line, scrolling down at the top of the scroll region.
    ReverseIndex,
    /// TAB.
    Tab,
    /// BS.
    Backspace,
    /// CUU (and CPL with `to_start`).
    Up { count: u16, to_start: bool },
    /// CUD, VPR (and CNL with `to_start`).
    Down { count: u16, to_start: bool },
    /// CUF, HPR.
    Forward(u16),
    /// CUB.
    Back(u16),
    /// CHA, HPA.
    Column(u16),
    /// VPA.
    Row(u16),
    /// CUP, HVP.
    Position { row: u16, col: u16 },
    /// ED: 0 below the cursor, 1 above it, 2 and 3 all.
    EraseDisplay(u16),
    /// EL: 0 right of the cursor, 1 left of it, 2 the whole line.
    EraseLine(u16),
    /// ECH.
    EraseChars(u16),
    /// ICH.
    InsertChars(u16),
    /// DCH.
    DeleteChars(u16),
    /// IL.
    InsertLines(u16),
    /// DL.
    DeleteLines(u16),
    /// SU.
    ScrollUp(u16),
    /// SD.
    ScrollDown(u16),
    /// DECSTBM: the scroll region's top and bottom rows.
    ScrollRegion { top: u16, bottom: u16 },
    /// DECSC, `CSI s`.
    SaveCursor,
    /// DECRC, `CSI u`.
    RestoreCursor,
    /// RIS (`ESC c`).
    Reset,
    /// Switching to or from the alternate screen (`?47`, `?1047`, `?1049`).
    AlternateScreen,
}

/// Receiver of the parser's events.
pub(crate) trait Sink {
    /// A run of printable text: valid UTF-8, whole characters, no control characters.
    fn text(&mut self, bytes: &[u8]);
    /// A run of printable text the parser found to be all ASCII: a [`Sink::text`] whose
    /// receiver need not check that again.
    #[inline]
    fn ascii_text(&mut self, bytes: &[u8]) {
        self.text(bytes);
    }
    /// A terminal operation.
    fn op(&mut self, op: Op);
    /// The program asked the terminal something and waits for the reply.
    fn query(&mut self, query: TerminalQuery);
    /// Bracketed paste mode was switched on or off.
    fn bracketed_paste(&mut self, on: bool);
    /// Faint text (SGR 2) was switched on or off: reported only by a parser that tracks it
    /// ([`Parser::tracking_faint`]).
    fn faint(&mut self, _on: bool) {}
    /// An OSC string ended (BEL or ST; one cancelled by CAN or SUB is not reported): its first
    /// [`OSC_BYTES_MAX`] bytes, such as `0;title` or `7501;state=working`.
    fn osc(&mut self, _payload: &[u8]) {}
}

/// Bytes of an OSC string kept for [`Sink::osc`]: the start of a title or a state report is
/// what says something; the rest of a long one is dropped.
pub(crate) const OSC_BYTES_MAX: usize = 128;

/// Receiver of the line model's events (see the module documentation); every `LineSink` is a
/// [`Sink`].
pub(crate) trait LineSink {
    /// A run of printable text.
    fn text(&mut self, bytes: &[u8]);
    /// Horizontal white space (TAB, forward cursor motion).
    fn space(&mut self);
    /// The cursor moved to another line.
    fn line_break(&mut self);
    /// Backspace: the last character of the current line is gone.
    fn backspace(&mut self);
    /// Erase in line (entire line): the current line is empty.
    fn erase_line(&mut self);
    /// Cursor up: an empty current line rejoins the line above; otherwise a line break.
    fn cursor_up(&mut self);
    /// The screen was cleared or swapped: nothing written before is visible.
    fn clear(&mut self);
    /// The program asked the terminal something and waits for the reply.
    fn query(&mut self, query: TerminalQuery);
    /// Bracketed paste mode was switched on or off.
    fn bracketed_paste(&mut self, on: bool);
}

impl<T: LineSink> Sink for T {
    #[inline]
    fn text(&mut self, bytes: &[u8]) {
        LineSink::text(self, bytes);
    }

    #[inline]
    fn op(&mut self, op: Op) {
        match op {
            Op::CarriageReturn | Op::LineFeed | Op::NextLine | Op::Down { .. } => {
                self.line_break();
            }
            Op::Position { .. } | Op::Row(_) => self.line_break(),
            Op::Column(col) if col <= 1 => self.line_break(),
            Op::Tab | Op::Forward(_) | Op::Column(_) => self.space(),
            Op::Backspace => self.backspace(),
            Op::Up { .. } => self.cursor_up(),
            Op::EraseLine(2) => self.erase_line(),
            Op::EraseDisplay(2 | 3) | Op::Reset | Op::AlternateScreen => self.clear(),
            _ => {}
        }
    }

    fn query(&mut self, query: TerminalQuery) {
        LineSink::query(self, query);
    }

    fn bracketed_paste(&mut self, on: bool) {
        LineSink::bracketed_paste(self, on);
    }
}
