//! The parser's state machine (see the module documentation of `vt`): the ground state with its
//! fast paths (text runs validated in bulk, common escape sequences acted on whole), the
//! byte-wise escape, CSI and string states, and UTF-8 decoding of what the fast path leaves.

use super::csi::{Csi, dispatch_csi, push_digit, sgr};
use super::scan::{SHORT_RUN_BYTES, lead, scan_text, skip_parameters, valid_prefix};
use super::{OSC_BYTES_MAX, Op, Sink};

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

/// The parser. See the module documentation of `vt`.
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
                if valid_end == i {
                } else if run.non_ascii {
                    sink.text(&bytes[i..valid_end]);
                } else {
                    sink.ascii_text(&bytes[i..valid_end]);
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
                // The line feed of a CR LF (how most lines end) at once, not after another scan.
                if byte == b'\r' && bytes.get(i) == Some(&b'\n') {
                    sink.op(Op::LineFeed);
                    i += 1;
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
        let first = *bytes.get(from)?;
        if (b'<'..=b'?').contains(&first) {
            return self.fast_csi_private(first, bytes, from + 1, sink);
        }
        // No private marker (cursor motion, erasing, scrolling): only the first two values
        // matter, read into plain integers; the rest is skipped.
        let (first, mut j) = read_value(bytes, from);
        let mut second = 0;
        let mut parameters = 1;
        if bytes.get(j) == Some(&b';') {
            (second, j) = read_value(bytes, j + 1);
            parameters = 2;
        }
        j = skip_parameters(bytes, j);
        let byte = *bytes.get(j)?;
        // SGR never gets here (`fast_escape` takes it first); anything but a final byte goes
        // back to the byte-wise states.
        if !(0x40..=0x7e).contains(&byte) || byte == b'm' {
            return None;
        }
        dispatch_csi(
            Csi::positional(first, second, parameters),
            byte,
            self.faint,
            sink,
        );
        Some(j + 1)
    }

    /// A fast-path CSI with a private marker (`?` modes, `>` queries) after it.
    #[inline(always)]
    fn fast_csi_private<S: Sink>(
        &mut self,
        private: u8,
        bytes: &[u8],
        from: usize,
        sink: &mut S,
    ) -> Option<usize> {
        let mut csi = Csi::default();
        csi.private = private;
        let mut j = from;
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
    #[inline]
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

/// The decimal value at `bytes[from..]` (0 if none) and the index after its digits.
#[inline(always)]
fn read_value(bytes: &[u8], from: usize) -> (u16, usize) {
    let mut value = 0;
    let mut j = from;
    while let Some(&byte) = bytes.get(j).filter(|b| b.is_ascii_digit()) {
        value = push_digit(value, byte);
        j += 1;
    }
    (value, j)
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
