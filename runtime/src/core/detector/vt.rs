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

use super::TerminalQuery;

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

const ESC: u8 = 0x1b;
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ground,
    Escape,
    EscapeIntermediate,
    Csi,
    /// OSC: ends at BEL or ST.
    Osc,
    /// DCS, SOS, PM, APC: end at ST only.
    Str,
}

/// What a CSI sequence has shown so far. Only what dispatch needs is kept.
#[derive(Clone, Copy, Debug, Default)]
struct Csi {
    /// `<`, `=`, `>` or `?` when it is the first parameter byte, else 0.
    private: u8,
    /// Bytes seen after the introducer (saturating): tells a leading private marker apart.
    len: u8,
    /// Any intermediate byte (0x20..=0x2F) or a misplaced private marker: dispatch ignores it.
    unusual: bool,
    /// Value of the first parameter (saturating; absent means 0).
    first: u16,
    /// Value of the second parameter (saturating; absent means 0).
    second: u16,
    /// Index of the parameter being read.
    index: u16,
    /// Value of the parameter being read (saturating).
    value: u16,
    /// `?2004` appeared among the parameters.
    paste: bool,
    /// `?47`, `?1047` or `?1049` appeared among the parameters.
    alternate_screen: bool,
    /// The parameter being read follows a `:` (a sub-parameter).
    sub: bool,
    /// What the parameters would do as SGR.
    sgr: Sgr,
}

/// The effect on faint text of an SGR sequence's parameters, read one at a time: 2 sets it,
/// 0 (or nothing) and 22 clear it, and the colour arguments of 38, 48 and 58 (`;5;n`,
/// `;2;r;g;b`, or any `:` sub-parameters) are skipped, so that a colour component of 2 is not
/// taken for faint.
#[derive(Clone, Copy, Debug, Default)]
struct Sgr {
    /// The next parameter selects a colour form (5 or 2).
    selector: bool,
    /// Colour components still to skip.
    skip: u8,
    /// The last effect on faint text, if any.
    faint: Option<bool>,
}

impl Sgr {
    #[inline]
    fn parameter(&mut self, value: u16, sub: bool) {
        if sub {
            self.selector = false;
            self.skip = 0;
        } else if self.selector {
            self.selector = false;
            self.skip = match value {
                5 => 1,
                2 => 3,
                _ => 0,
            };
        } else if self.skip > 0 {
            self.skip -= 1;
        } else {
            match value {
                0 | 22 => self.faint = Some(false),
                2 => self.faint = Some(true),
                38 | 48 | 58 => self.selector = true,
                _ => {}
            }
        }
    }
}

/// Adds a decimal digit to a parameter value. Values of five digits or more all become 9999:
/// none of the values dispatch looks at is that large, and the arithmetic cannot overflow.
fn push_digit(value: u16, byte: u8) -> u16 {
    if value < 1_000 {
        value * 10 + u16::from(byte - b'0')
    } else {
        9_999
    }
}

impl Csi {
    fn end_parameter(&mut self) {
        match self.index {
            0 => self.first = self.value,
            1 => self.second = self.value,
            _ => {}
        }
        if self.private == b'?' {
            match self.value {
                2004 => self.paste = true,
                47 | 1047 | 1049 => self.alternate_screen = true,
                _ => {}
            }
        }
        self.sgr.parameter(self.value, self.sub);
        self.index = self.index.saturating_add(1);
        self.value = 0;
    }

    /// Ends a parameter at its separator: a `:` makes the next one a sub-parameter.
    fn separator(&mut self, byte: u8) {
        self.end_parameter();
        self.sub = byte == b':';
    }
}

/// UTF-8 decoder state (WHATWG algorithm): a code point in progress.
#[derive(Clone, Copy, Debug)]
struct Utf8 {
    /// Continuation bytes still needed; 0 when between characters.
    need: u8,
    code_point: u32,
    lower: u8,
    upper: u8,
}

impl Default for Utf8 {
    fn default() -> Self {
        Utf8 {
            need: 0,
            code_point: 0,
            lower: 0x80,
            upper: 0xbf,
        }
    }
}

/// The parser. See the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct Parser {
    state: State,
    utf8: Utf8,
    csi: Csi,
    /// In a string state, the previous byte was 0xC2: a following 0x9C is ST (U+009C).
    string_c2: bool,
    /// The OSC string read so far (its first [`OSC_BYTES_MAX`] bytes).
    osc: [u8; OSC_BYTES_MAX],
    /// Bytes of it kept in `osc`.
    osc_len: usize,
    /// The 0xC2 of a possible C1 terminator (`string_c2`) was kept in `osc`.
    osc_c2_kept: bool,
    /// SGR sequences are read for faint text (see [`Sink::faint`]); otherwise skipped unread.
    faint: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::Ground,
            utf8: Utf8::default(),
            csi: Csi::default(),
            string_c2: false,
            osc: [0; OSC_BYTES_MAX],
            osc_len: 0,
            osc_c2_kept: false,
            faint: false,
        }
    }
}

impl Parser {
    /// A parser that reports faint text on and off.
    pub(crate) fn tracking_faint() -> Self {
        Parser {
            faint: true,
            ..Parser::default()
        }
    }

    /// Feeds `bytes` through the state machine, reporting to `sink`.
    pub(crate) fn advance<S: Sink>(&mut self, bytes: &[u8], sink: &mut S) {
        let mut i = 0;
        while i < bytes.len() {
            i = match self.state {
                State::Ground => self.ground(bytes, i, sink),
                State::Escape => self.escape(bytes, i, sink),
                State::EscapeIntermediate => self.escape_intermediate(bytes, i, sink),
                State::Csi => self.csi(bytes, i, sink),
                State::Osc | State::Str => self.string(bytes, i, sink),
            };
        }
    }

    /// Ground state: text, controls, and the start of escape sequences. Returns where it
    /// stopped: the end of `bytes` or the first byte after the state changed.
    fn ground<S: Sink>(&mut self, bytes: &[u8], mut i: usize, sink: &mut S) -> usize {
        let n = bytes.len();
        while i < n {
            if self.utf8.need > 0 {
                // A character begun in an earlier chunk, or left by the fast path.
                i = self.decode_slow(bytes, i, sink);
                if self.state != State::Ground {
                    return i;
                }
                continue;
            }
            // Escape sequences often follow each other with no text between: no scan for text.
            if bytes[i] == ESC
                && let Some(next) = self.fast_escape(bytes, i, sink)
            {
                i = next;
                continue;
            }
            // Fast path: the longest run of non-control bytes, validated as UTF-8 in bulk
            // (unless it is all ASCII) and searched for C1 controls (only if it has a C2 byte).
            let run = scan_text(bytes, i);
            let end = run.end;
            // A C1 control is encoded C2 80..C2 9F: only a non-ASCII run may hold one.
            let (valid_end, maybe_c1) = if !run.non_ascii {
                (end, false)
            } else if end - i <= SHORT_RUN_BYTES {
                let (valid, c1) = valid_prefix(&bytes[i..end]);
                (i + valid, c1)
            } else {
                let valid_end = match simdutf8::compat::from_utf8(&bytes[i..end]) {
                    Ok(_) => end,
                    Err(error) => i + error.valid_up_to(),
                };
                (
                    valid_end,
                    memchr::memchr(0xc2, &bytes[i..valid_end]).is_some(),
                )
            };
            i = if maybe_c1 {
                self.emit_valid(bytes, i, valid_end, sink)
            } else {
                if valid_end > i {
                    sink.text(&bytes[i..valid_end]);
                }
                valid_end
            };
            if self.state != State::Ground {
                return i;
            }
            if i < valid_end {
                continue;
            }
            if valid_end < end {
                // An invalid or unfinished sequence: the decoder takes it byte by byte.
                i = self.decode_slow(bytes, valid_end, sink);
                if self.state != State::Ground {
                    return i;
                }
                continue;
            }
            if end < n {
                let byte = bytes[end];
                // Tried here rather than at the top of the loop: measurably faster on
                // escape-dense output than going round once more.
                if byte == ESC
                    && let Some(next) = self.fast_escape(bytes, end, sink)
                {
                    i = next;
                    continue;
                }
                i = end + 1;
                self.control(byte, sink);
                if self.state != State::Ground {
                    return i;
                }
            } else {
                i = end;
            }
        }
        i
    }

    /// Acts on a whole escape sequence at `bytes[at]` (an ESC) without entering the byte-wise
    /// states, when it lies entirely within `bytes` and is of a common kind: a CSI made of an
    /// optional private marker, digits and separators, and a final byte; or a single-character
    /// escape. The events are exactly those the byte-wise states would give. Returns the position
    /// after the sequence, or `None` to leave it to the byte-wise states.
    #[inline(always)]
    fn fast_escape<S: Sink>(&mut self, bytes: &[u8], at: usize, sink: &mut S) -> Option<usize> {
        match *bytes.get(at + 1)? {
            b'[' => {
                // SGR (two thirds of all sequences in agent output) needs no parameter values.
                let end = skip_parameters(bytes, at + 2);
                match bytes.get(end) {
                    Some(b'm') => {
                        if self.faint {
                            sgr(&bytes[at + 2..end], sink);
                        }
                        Some(end + 1)
                    }
                    Some(_) => self.fast_csi(bytes, at + 2, sink),
                    None => None,
                }
            }
            b']' | b'P' | b'X' | b'^' | b'_' => None,
            byte @ 0x30..=0x7e => {
                escape_final(byte, sink);
                Some(at + 2)
            }
            _ => None,
        }
    }

    #[inline(always)]
    fn fast_csi<S: Sink>(&mut self, bytes: &[u8], from: usize, sink: &mut S) -> Option<usize> {
        let mut csi = Csi::default();
        let mut j = from;
        let first = *bytes.get(j)?;
        if (b'<'..=b'?').contains(&first) {
            csi.private = first;
            j += 1;
        }
        // Only the first two parameters' values matter (a position, a scroll region), except
        // for `?` modes, which are checked one by one: the rest is skipped without arithmetic.
        while let Some(&byte) = bytes.get(j).filter(|b| b.is_ascii_digit()) {
            csi.value = push_digit(csi.value, byte);
            j += 1;
        }
        if csi.private == b'?' {
            loop {
                let byte = *bytes.get(j)?;
                j += 1;
                match byte {
                    b'0'..=b'9' => csi.value = push_digit(csi.value, byte),
                    b';' | b':' => csi.separator(byte),
                    _ => return self.fast_csi_final(csi, byte, j, sink),
                }
            }
        }
        csi.end_parameter();
        if bytes.get(j) == Some(&b';') {
            j += 1;
            while let Some(&byte) = bytes.get(j).filter(|b| b.is_ascii_digit()) {
                csi.value = push_digit(csi.value, byte);
                j += 1;
            }
            csi.end_parameter();
        }
        j = skip_parameters(bytes, j);
        let byte = *bytes.get(j)?;
        self.fast_csi_final(csi, byte, j + 1, sink)
    }

    /// The byte after a fast-path CSI's parameters: a final byte dispatches; anything else
    /// (intermediates, misplaced markers, controls) goes back to the byte-wise states.
    #[inline(always)]
    fn fast_csi_final<S: Sink>(
        &mut self,
        mut csi: Csi,
        byte: u8,
        next: usize,
        sink: &mut S,
    ) -> Option<usize> {
        if !(0x40..=0x7e).contains(&byte) {
            return None;
        }
        if csi.private == b'?' {
            csi.end_parameter();
        }
        dispatch_csi(csi, byte, self.faint, sink);
        Some(next)
    }

    /// Emits valid UTF-8 text `bytes[from..to]`, stopping after the first C1 control (U+0080 to
    /// U+009F, encoded C2 80..C2 9F) to act on it. Returns the position reached.
    #[cold]
    #[inline(never)]
    fn emit_valid<S: Sink>(&mut self, bytes: &[u8], from: usize, to: usize, sink: &mut S) -> usize {
        let mut search = from;
        while let Some(offset) = memchr::memchr(0xc2, &bytes[search..to]) {
            let at = search + offset;
            // Valid UTF-8 guarantees a continuation byte follows C2 within `to`.
            let second = bytes[at + 1];
            if (0x80..=0x9f).contains(&second) {
                if at > from {
                    sink.text(&bytes[from..at]);
                }
                self.c1(u32::from(second), sink);
                return at + 2;
            }
            search = at + 2;
        }
        if to > from {
            sink.text(&bytes[from..to]);
        }
        to
    }

    /// Decodes one step of UTF-8 byte by byte (WHATWG): used for characters split across chunks
    /// and for invalid input. Returns the position after what it consumed.
    #[cold]
    #[inline(never)]
    fn decode_slow<S: Sink>(&mut self, bytes: &[u8], mut i: usize, sink: &mut S) -> usize {
        while i < bytes.len() {
            let byte = bytes[i];
            if self.utf8.need == 0 {
                if byte < 0x80 {
                    return i;
                }
                let Some((need, lower, upper)) = lead(byte) else {
                    sink.text(REPLACEMENT);
                    return i + 1;
                };
                self.utf8 = Utf8 {
                    need,
                    code_point: u32::from(byte & (0x7f >> (need + 1))),
                    lower,
                    upper,
                };
                i += 1;
                continue;
            }
            if byte < self.utf8.lower || byte > self.utf8.upper {
                // The sequence so far is a maximal invalid subpart; `byte` starts afresh.
                self.utf8 = Utf8::default();
                sink.text(REPLACEMENT);
                return i;
            }
            self.utf8.code_point = (self.utf8.code_point << 6) | u32::from(byte & 0x3f);
            self.utf8.need -= 1;
            self.utf8.lower = 0x80;
            self.utf8.upper = 0xbf;
            i += 1;
            if self.utf8.need == 0 {
                let code_point = self.utf8.code_point;
                self.utf8 = Utf8::default();
                if (0x80..=0x9f).contains(&code_point) {
                    self.c1(code_point, sink);
                } else if let Some(c) = char::from_u32(code_point) {
                    let mut buffer = [0; 4];
                    sink.text(c.encode_utf8(&mut buffer).as_bytes());
                }
                return i;
            }
        }
        i
    }

    /// A C0 control or DEL, in ground or inside an escape sequence (where it is executed too).
    fn control<S: Sink>(&mut self, byte: u8, sink: &mut S) {
        match byte {
            ESC => self.state = State::Escape,
            b'\n' | 0x0b | 0x0c => sink.op(Op::LineFeed),
            b'\r' => sink.op(Op::CarriageReturn),
            b'\t' => sink.op(Op::Tab),
            0x08 => sink.op(Op::Backspace),
            0x18 | 0x1a => self.state = State::Ground,
            // NUL, BEL, SO, SI, DEL and the rest change nothing visible.
            _ => {}
        }
    }

    /// A C1 control reached as a UTF-8 code point.
    fn c1<S: Sink>(&mut self, code_point: u32, sink: &mut S) {
        match code_point {
            0x9b => self.enter_csi(),
            0x9d => self.enter_string(State::Osc),
            0x90 | 0x98 | 0x9e | 0x9f => self.state = State::Str,
            0x84 => sink.op(Op::LineFeed),
            0x85 => sink.op(Op::NextLine),
            _ => {}
        }
    }

    fn enter_csi(&mut self) {
        self.state = State::Csi;
        self.csi = Csi::default();
    }

    fn enter_string(&mut self, state: State) {
        self.state = state;
        self.string_c2 = false;
        self.osc_len = 0;
    }

    /// After ESC: one byte decides.
    fn escape<S: Sink>(&mut self, bytes: &[u8], i: usize, sink: &mut S) -> usize {
        let byte = bytes[i];
        match byte {
            b'[' => self.enter_csi(),
            b']' => self.enter_string(State::Osc),
            b'P' | b'X' | b'^' | b'_' => self.enter_string(State::Str),
            0x20..=0x2f => self.state = State::EscapeIntermediate,
            0x30..=0x7e => {
                escape_final(byte, sink);
                self.state = State::Ground;
            }
            0x7f => {}
            0x00..=0x1f => self.control(byte, sink),
            // Not an escape sequence after all: the byte is text again.
            0x80..=0xff => {
                self.state = State::Ground;
                return i;
            }
        }
        i + 1
    }

    /// ESC followed by intermediates (charset designations and the like), up to a final byte.
    fn escape_intermediate<S: Sink>(&mut self, bytes: &[u8], i: usize, sink: &mut S) -> usize {
        let byte = bytes[i];
        match byte {
            0x20..=0x2f | 0x7f => {}
            0x30..=0x7e => self.state = State::Ground,
            0x00..=0x1f => self.control(byte, sink),
            0x80..=0xff => {
                self.state = State::Ground;
                return i;
            }
        }
        i + 1
    }

    /// Inside a CSI sequence: parameters, intermediates, then one final byte.
    fn csi<S: Sink>(&mut self, bytes: &[u8], mut i: usize, sink: &mut S) -> usize {
        while i < bytes.len() {
            let byte = bytes[i];
            i += 1;
            match byte {
                b'0'..=b'9' => self.csi.value = push_digit(self.csi.value, byte),
                b';' | b':' => self.csi.separator(byte),
                b'<'..=b'?' => {
                    if self.csi.len == 0 {
                        self.csi.private = byte;
                    } else {
                        self.csi.unusual = true;
                    }
                }
                0x20..=0x2f => self.csi.unusual = true,
                0x40..=0x7e => {
                    self.csi.end_parameter();
                    self.state = State::Ground;
                    dispatch_csi(self.csi, byte, self.faint, sink);
                    return i;
                }
                0x7f => {}
                0x00..=0x1f => {
                    self.control(byte, sink);
                    if self.state != State::Csi {
                        return i;
                    }
                }
                0x80..=0xff => {
                    self.state = State::Ground;
                    return i - 1;
                }
            }
            self.csi.len = self.csi.len.saturating_add(1);
        }
        i
    }

    /// Inside OSC or a DCS/SOS/PM/APC string: swallowed up to the terminator; an OSC string's
    /// start is kept and reported when it ends.
    fn string<S: Sink>(&mut self, bytes: &[u8], mut i: usize, sink: &mut S) -> usize {
        let osc = self.state == State::Osc;
        while i < bytes.len() {
            let byte = bytes[i];
            i += 1;
            if self.string_c2 {
                self.string_c2 = false;
                if byte == 0x9c {
                    // The 0xC2 before it, if it was kept, was half of the terminator.
                    if self.osc_c2_kept {
                        self.osc_len -= 1;
                    }
                    self.end_string(osc, sink);
                    return i;
                }
            }
            match byte {
                0x07 if osc => {
                    self.end_string(osc, sink);
                    return i;
                }
                ESC => {
                    // ESC \ is ST; any other escape ends the string and starts its own sequence.
                    self.end_string(osc, sink);
                    self.state = State::Escape;
                    return i;
                }
                0x18 | 0x1a => {
                    self.state = State::Ground;
                    return i;
                }
                _ => {
                    let kept = osc && self.osc_len < OSC_BYTES_MAX;
                    if kept {
                        self.osc[self.osc_len] = byte;
                        self.osc_len += 1;
                    }
                    if byte == 0xc2 {
                        self.string_c2 = true;
                        self.osc_c2_kept = kept;
                    }
                }
            }
        }
        i
    }

    /// A string ended: an OSC string is reported.
    fn end_string<S: Sink>(&mut self, osc: bool, sink: &mut S) {
        self.state = State::Ground;
        if osc {
            sink.osc(&self.osc[..self.osc_len]);
        }
    }
}

/// The parameters of an SGR sequence (`CSI … m`, only digits and separators) read for faint
/// text.
#[inline]
fn sgr<S: Sink>(parameters: &[u8], sink: &mut S) {
    let mut csi = Csi::default();
    for &byte in parameters {
        match byte {
            b'0'..=b'9' => csi.value = push_digit(csi.value, byte),
            _ => csi.separator(byte),
        }
    }
    csi.end_parameter();
    if let Some(on) = csi.sgr.faint {
        sink.faint(on);
    }
}

/// Acts on a complete CSI sequence; `faint` says whether SGR is read for faint text.
#[inline(always)]
fn dispatch_csi<S: Sink>(csi: Csi, final_byte: u8, faint: bool, sink: &mut S) {
    if csi.unusual {
        return;
    }
    // SGR (colours, attributes) is most of all sequences, and changes no text.
    if final_byte == b'm' {
        if faint
            && csi.private == 0
            && let Some(on) = csi.sgr.faint
        {
            sink.faint(on);
        }
        return;
    }
    let count = csi.first.max(1);
    let op = match (csi.private, final_byte) {
        (0, b'n') if csi.first == 6 => return sink.query(TerminalQuery::CursorPosition),
        (0, b'n') if csi.first == 5 => return sink.query(TerminalQuery::DeviceStatus),
        (0, b'c') if csi.first == 0 => return sink.query(TerminalQuery::PrimaryAttributes),
        (b'>', b'c') if csi.first == 0 => {
            return sink.query(TerminalQuery::SecondaryAttributes);
        }
        (b'?', b'h' | b'l') => {
            if csi.paste {
                sink.bracketed_paste(final_byte == b'h');
            }
            if !csi.alternate_screen {
                return;
            }
            Op::AlternateScreen
        }
        (0, b'A') => Op::Up {
            count,
            to_start: false,
        },
        (0, b'F') => Op::Up {
            count,
            to_start: true,
        },
        (0, b'B' | b'e') => Op::Down {
            count,
            to_start: false,
        },
        (0, b'E') => Op::Down {
            count,
            to_start: true,
        },
        (0, b'C' | b'a') => Op::Forward(count),
        (0, b'D') => Op::Back(count),
        (0, b'G' | b'`') => Op::Column(csi.first),
        (0, b'd') => Op::Row(csi.first),
        (0, b'H' | b'f') => Op::Position {
            row: csi.first,
            col: csi.second,
        },
        (0, b'J') => Op::EraseDisplay(csi.first),
        (0, b'K') => Op::EraseLine(csi.first),
        (0, b'X') => Op::EraseChars(count),
        (0, b'@') => Op::InsertChars(count),
        (0, b'P') => Op::DeleteChars(count),
        (0, b'L') => Op::InsertLines(count),
        (0, b'M') => Op::DeleteLines(count),
        (0, b'S') => Op::ScrollUp(count),
        (0, b'T') => Op::ScrollDown(count),
        (0, b'r') => Op::ScrollRegion {
            top: csi.first,
            bottom: csi.second,
        },
        (0, b's') if csi.index <= 1 && csi.first == 0 => Op::SaveCursor,
        (0, b'u') if csi.index <= 1 && csi.first == 0 => Op::RestoreCursor,
        _ => return,
    };
    sink.op(op);
}

/// Acts on the final byte of a two-byte escape sequence (`ESC` and one of 0x30..=0x7E).
#[inline(always)]
fn escape_final<S: Sink>(byte: u8, sink: &mut S) {
    let op = match byte {
        b'c' => Op::Reset,
        b'D' => Op::LineFeed,
        b'E' => Op::NextLine,
        b'M' => Op::ReverseIndex,
        b'7' => Op::SaveCursor,
        b'8' => Op::RestoreCursor,
        _ => return,
    };
    sink.op(op);
}

/// Text runs up to this long are validated inline; longer ones by the SIMD validator, whose call
/// costs more than a short run's check.
const SHORT_RUN_BYTES: usize = 16;

/// For a UTF-8 lead byte: how many continuation bytes follow, and the range allowed for the first
/// of them (which excludes overlong forms, surrogates and code points past U+10FFFF).
fn lead(byte: u8) -> Option<(u8, u8, u8)> {
    match byte {
        0xc2..=0xdf => Some((1, 0x80, 0xbf)),
        0xe0 => Some((2, 0xa0, 0xbf)),
        0xed => Some((2, 0x80, 0x9f)),
        0xe1..=0xef => Some((2, 0x80, 0xbf)),
        0xf0 => Some((3, 0x90, 0xbf)),
        0xf4 => Some((3, 0x80, 0x8f)),
        0xf1..=0xf3 => Some((3, 0x80, 0xbf)),
        _ => None,
    }
}

/// Length of the longest prefix of `bytes` made of whole, valid UTF-8 characters (what
/// `Utf8Error::valid_up_to` reports), and whether that prefix holds a C1 control: for runs too
/// short to be worth a call to the validator.
#[inline(always)]
fn valid_prefix(bytes: &[u8]) -> (usize, bool) {
    let mut i = 0;
    let mut c1 = false;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte < 0x80 {
            i += 1;
            continue;
        }
        let Some((need, lower, upper)) = lead(byte) else {
            return (i, c1);
        };
        let need = usize::from(need);
        let Some(tail) = bytes.get(i + 1..=i + need) else {
            return (i, c1);
        };
        if !(lower..=upper).contains(&tail[0]) || tail[1..].iter().any(|&b| b & 0xc0 != 0x80) {
            return (i, c1);
        }
        c1 |= byte == 0xc2 && tail[0] <= 0x9f;
        i += need + 1;
    }
    (i, c1)
}

/// 0x01 in every byte of a word: with [`HIGHS`], the constants of the word-at-a-time scans here
/// and in `classify`.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// 0x80 in every byte of a word.
pub(crate) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte at or after `from` that is not a CSI parameter byte (`0`-`9`, `:`,
/// `;`), or the end: SGR colours carry a dozen of them. Eight bytes per step.
#[inline(always)]
fn skip_parameters(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i + 8 <= bytes.len() {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        let x = u64::from_le_bytes(word);
        // Below 0x30 (exact for the lowest such byte), or above 0x3B (0x3C + 0x44 sets the
        // high bit; bytes >= 0x80 have it already).
        let below = x.wrapping_sub(ONES * 0x30) & !x & HIGHS;
        let above = (x.wrapping_add(ONES * (0x7f - 0x3b)) | x) & HIGHS;
        let hits = below | above;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes
        .get(i)
        .is_some_and(|&b| b.wrapping_sub(b'0') <= b';' - b'0')
    {
        i += 1;
    }
    i
}

/// A run of text found by [`scan_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TextRun {
    /// Index of the first C0 control or DEL, or the end of the input.
    end: usize,
    /// The run has a byte of 0x80 or more: it needs UTF-8 validation and may hold a C1 control.
    non_ascii: bool,
}

/// Scans `bytes[from..]` up to the first C0 control or DEL, noting whether the run is ASCII.
///
/// Eight bytes per step: the hot path of escape-dense output is short runs of text between
/// escape sequences, and long runs of plain text in logs.
#[inline(always)]
fn scan_text(bytes: &[u8], from: usize) -> TextRun {
    let mut i = from;
    let mut high = 0;
    while i + 8 <= bytes.len() {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        let x = u64::from_le_bytes(word);
        // A byte below 0x20 (bytes >= 0x80 are excluded by `!x`; exact for the lowest such
        // byte), or equal to 0x7F (a zero byte of `y`).
        let y = x ^ (ONES * 0x7f);
        let hits = (x.wrapping_sub(ONES * 0x20) & !x & HIGHS) | (y.wrapping_sub(ONES) & !y & HIGHS);
        if hits != 0 {
            let stop = (hits.trailing_zeros() / 8) as usize;
            // Only the bytes before the stop belong to the run.
            let before = (1u64 << (8 * stop)).wrapping_sub(1);
            high |= x & before & HIGHS;
            return TextRun {
                end: i + stop,
                non_ascii: high != 0,
            };
        }
        high |= x & HIGHS;
        i += 8;
    }
    let rest = &bytes[i..];
    let stop = rest
        .iter()
        .position(|&b| b < 0x20 || b == 0x7f)
        .unwrap_or(rest.len());
    let tail_high = rest[..stop].iter().any(|&b| b >= 0x80);
    TextRun {
        end: i + stop,
        non_ascii: high != 0 || tail_high,
    }
}

#[cfg(test)]
mod tests {
    use super::{TextRun, scan_text, skip_parameters, valid_prefix};

    proptest::proptest! {
        #[test]
        fn valid_prefix_agrees_with_the_standard_library(bytes in proptest::collection::vec(
            proptest::sample::select(vec![
                0x41u8, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
                0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
            ]),
            0..12,
        )) {
            let expected = std::str::from_utf8(&bytes).map_or_else(|e| e.valid_up_to(), |_| bytes.len());
            let c1 = std::str::from_utf8(&bytes[..expected])
                .is_ok_and(|text| text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)));
            proptest::prop_assert_eq!(valid_prefix(&bytes), (expected, c1));
        }
    }

    #[test]
    fn skip_parameters_agrees_with_a_plain_scan_for_every_byte_value_and_position() {
        for value in 0..=255u8 {
            for position in 0..20 {
                let mut bytes = b"38;2;255;100;0:1;2;".to_vec();
                bytes.push(b'9');
                bytes[position] = value;
                for from in [0, 3, 9] {
                    let plain = (from..bytes.len())
                        .find(|&i| !(b'0'..=b';').contains(&bytes[i]))
                        .unwrap_or(bytes.len());
                    assert_eq!(
                        skip_parameters(&bytes, from),
                        plain,
                        "{value:#x} at {position}"
                    );
                }
            }
        }
    }

    fn plain_scan(bytes: &[u8], from: usize) -> TextRun {
        let rest = &bytes[from..];
        let stop = rest
            .iter()
            .position(|&b| b < 0x20 || b == 0x7f)
            .unwrap_or(rest.len());
        let run = &rest[..stop];
        TextRun {
            end: from + stop,
            non_ascii: run.iter().any(|&b| b >= 0x80),
        }
    }

    #[test]
    fn scan_text_agrees_with_a_plain_scan_for_every_byte_value_position_and_start() {
        for value in 0..=255u8 {
            for position in 0..20 {
                for marker in [b'a', 0xc2, 0xe2, 0x1b] {
                    let mut bytes = vec![b'a'; 20];
                    bytes[(position + 7) % 20] = marker;
                    bytes[position] = value;
                    for from in [0, 1, 5, 13] {
                        assert_eq!(
                            scan_text(&bytes, from),
                            plain_scan(&bytes, from),
                            "value {value:#x} at {position}, marker {marker:#x}, from {from}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn scan_text_handles_high_bytes_next_to_controls() {
        let bytes = [0xff, 0xfe, 0x80, 0x7e, 0x20, 0xe2, 0x9d, 0x1f, 0x00];
        assert_eq!(
            scan_text(&bytes, 0),
            TextRun {
                end: 7,
                non_ascii: true
            }
        );
        assert_eq!(scan_text(&bytes, 8).end, 8);
    }
}
