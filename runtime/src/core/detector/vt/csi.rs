//! Control sequences (CSI): their parameters as the parser reads them, byte by byte or in the
//! fast path, and what a complete sequence means (`dispatch_csi`: an [`Op`], a query, a mode;
//! `sgr`: faint text on or off). Only what dispatch needs is kept of the parameters.

use super::{Op, Sink};
use crate::core::detector::TerminalQuery;

/// What a CSI sequence has shown so far. Only what dispatch needs is kept.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Csi {
    /// `<`, `=`, `>` or `?` when it is the first parameter byte, else 0.
    pub(super) private: u8,
    /// Bytes seen after the introducer (saturating): tells a leading private marker apart.
    pub(super) len: u8,
    /// Any intermediate byte (0x20..=0x2F) or a misplaced private marker: dispatch ignores it.
    pub(super) unusual: bool,
    /// Value of the first parameter (saturating; absent means 0).
    first: u16,
    /// Value of the second parameter (saturating; absent means 0).
    second: u16,
    /// Index of the parameter being read.
    index: u16,
    /// Value of the parameter being read (saturating).
    pub(super) value: u16,
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
pub(super) fn push_digit(value: u16, byte: u8) -> u16 {
    if value < 1_000 {
        value * 10 + u16::from(byte - b'0')
    } else {
        9_999
    }
}

impl Csi {
    /// A sequence with no private marker whose first two parameter values (0 when absent)
    /// and count of parameters read are known: what dispatch needs of it.
    pub(super) fn positional(first: u16, second: u16, parameters: u16) -> Self {
        Csi {
            first,
            second,
            index: parameters,
            ..Csi::default()
        }
    }

    // Inline: the parser's hot path calls it from another module (as it inlined it when both
    // were one file).
    #[inline]
    pub(super) fn end_parameter(&mut self) {
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
    pub(super) fn separator(&mut self, byte: u8) {
        self.end_parameter();
        self.sub = byte == b':';
    }
}
/// The parameters of an SGR sequence (`CSI … m`, only digits and separators) read for faint
/// text.
#[inline]
///
/// Read here without the rest of [`Csi`] (positions, modes): the same parameters, the same
/// effect, at a fraction of the work per byte (truecolour SGR carries five parameters).
pub(super) fn sgr<S: Sink>(parameters: &[u8], sink: &mut S) {
    // A truecolour foreground or background (`38;2;r;g;b`, `48;2;r;g;b`), the most common SGR
    // of agent output, sets a colour and nothing else.
    // One pass: the parameters are digits and separators only, so three values are two
    // separators that are both `;` (a `:` counts as two, failing the check).
    if let [b'3' | b'4', b'8', b';', b'2', b';', rgb @ ..] = parameters
        && rgb.iter().fold(0u32, |separators, &byte| {
            separators
                + match byte {
                    b';' => 1,
                    b':' => 3,
                    _ => 0,
                }
        }) == 2
    {
        return;
    }
    let mut sgr = Sgr::default();
    let mut value = 0;
    let mut sub = false;
    for &byte in parameters {
        if byte.is_ascii_digit() {
            value = push_digit(value, byte);
        } else {
            sgr.parameter(value, sub);
            value = 0;
            sub = byte == b':';
        }
    }
    sgr.parameter(value, sub);
    if let Some(on) = sgr.faint {
        sink.faint(on);
    }
}

/// Acts on a complete CSI sequence; `faint` says whether SGR is read for faint text.
#[inline(always)]
pub(super) fn dispatch_csi<S: Sink>(csi: Csi, final_byte: u8, faint: bool, sink: &mut S) {
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
