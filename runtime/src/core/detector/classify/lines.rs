//! Lines as the classifier reads them: the walk over the tail's non-empty lines, newest first
//! and within [`TAIL_CHARS`], and the byte-level work on a line: trimming white space and box
//! borders, counting characters (word at a time), cutting to the last characters, finding
//! printable ASCII.

use super::{Frame, Known, Profile, TAIL_CHARS};
use crate::core::detector::vt::{HIGHS, ONES};

/// A non-empty trimmed line of the tail: its bytes in the frame's line `id` (see
/// [`Frame::line`]), cut to fit the tail.
#[derive(Clone, Copy, Debug)]
pub(super) struct TailLine {
    pub(super) id: usize,
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) chars: usize,
    /// The line has printable ASCII (see [`has_ascii_graphic`]).
    pub(super) graphic: bool,
    /// What was read off the whole line (a grid row's, not cut): its menu, prompt and busy
    /// facts need no reading again.
    pub(super) known: Option<Known>,
}

/// The tail's lines, newest first: the last [`TAIL_CHARS`] characters of the frame's non-empty
/// trimmed lines, each line costing its characters plus one for the line feed joining it; the
/// oldest line is cut to what is left. Walked lazily: most frames decide within the last lines.
pub(super) struct TailWalk<'a> {
    frame: Frame<'a>,
    /// Of a [`Frame::Text`], the end of the next line to look at; of a [`Frame::Grid`], the
    /// rows above the next one to look at, plus one. `None` once the frame or the budget is
    /// spent.
    end: Option<usize>,
    budget: usize,
}

impl<'a> TailWalk<'a> {
    pub(super) fn new(frame: Frame<'a>) -> Self {
        let end = match &frame {
            Frame::Text(view) => view.len(),
            Frame::Grid(grid) => usize::from(grid.size().1),
        };
        TailWalk {
            frame,
            end: Some(end),
            budget: TAIL_CHARS,
        }
    }

    /// The frame walked: its lines met so far can be read (see [`Frame::line`]).
    pub(super) fn frame(&self) -> &Frame<'a> {
        &self.frame
    }

    /// The next line up, read for `profile`; a grid row's facts are taken from `known` while
    /// its version stands, and kept there otherwise.
    #[inline(always)]
    pub(super) fn next(&mut self, profile: Profile, known: &mut Vec<Known>) -> Option<TailLine> {
        while let Some(end) = self.end {
            let line = match &mut self.frame {
                Frame::Text(view) => {
                    let view: &[u8] = view;
                    let start = memchr::memrchr(b'\n', &view[..end]).map_or(0, |at| at + 1);
                    self.end = start.checked_sub(1);
                    let (from, to) = trim(view, start, end, TRIM_AGENT);
                    if from == to {
                        continue;
                    }
                    let (chars, graphic) = measure(&view[from..to]);
                    TailLine {
                        id: 0,
                        from,
                        to,
                        chars,
                        graphic,
                        known: None,
                    }
                }
                Frame::Grid(grid) => {
                    let Some(row) = end.checked_sub(1) else {
                        self.end = None;
                        break;
                    };
                    self.end = Some(row);
                    let (stored, version, text) = grid.render_row(row);
                    if version == 0 {
                        continue;
                    }
                    let facts = Known::of(known, profile, stored, version, text);
                    if facts.from == facts.to {
                        continue;
                    }
                    TailLine {
                        id: row,
                        from: facts.from as usize,
                        to: facts.to as usize,
                        chars: facts.chars as usize,
                        graphic: facts.graphic,
                        known: Some(facts),
                    }
                }
            };
            if line.chars >= self.budget {
                let bytes = self.frame.line(line.id);
                let from = line.to - suffix_bytes(&bytes[line.from..line.to], self.budget);
                self.end = None;
                return Some(TailLine {
                    from,
                    chars: self.budget,
                    graphic: has_ascii_graphic(&bytes[from..line.to]),
                    known: None,
                    ..line
                });
            }
            self.budget -= line.chars + 1;
            if self.budget == 0 {
                self.end = None;
            }
            return Some(line);
        }
        None
    }
}

pub(super) fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

pub(super) fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

pub(super) fn strip_spaces(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

/// Whether `bytes` holds a printable ASCII character (0x21..=0x7E or DEL), eight at a time.
pub(super) fn has_ascii_graphic(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut array = [0; 8];
        array.copy_from_slice(word);
        let x = u64::from_le_bytes(array);
        // Per byte, without carries: ASCII (high bit clear) and above 0x20.
        let low = x & !HIGHS;
        if low.wrapping_add(ONES * 0x5f) & !x & HIGHS != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b > b' ' && b < 0x80)
}

/// What one pass over a line tells: its characters, and whether it has printable ASCII.
///
/// Thirty-two bytes per step: continuation bytes are summed in byte lanes and folded with one
/// multiplication (no popcount: the baseline x86-64 target has none).
#[inline(always)]
pub(super) fn measure(bytes: &[u8]) -> (usize, bool) {
    let word = |chunk: &[u8]| {
        let mut array = [0; 8];
        array.copy_from_slice(chunk);
        u64::from_le_bytes(array)
    };
    // 10xxxxxx (high bit set, next clear) as 1 in its lane; printable ASCII as a high bit.
    let continuation = |x: u64| (x & HIGHS & !(x << 1)) >> 7;
    let graphic = |x: u64| (x & !HIGHS).wrapping_add(ONES * 0x5f) & !x & HIGHS;
    let mut continuations = 0;
    let mut printable = 0;
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let (a, b, c, d) = (
            word(&block[..8]),
            word(&block[8..16]),
            word(&block[16..24]),
            word(&block[24..]),
        );
        let lanes = continuation(a) + continuation(b) + continuation(c) + continuation(d);
        continuations += (lanes.wrapping_mul(ONES) >> 56) as usize;
        printable |= graphic(a) | graphic(b) | graphic(c) | graphic(d);
    }
    let rest = blocks.remainder();
    continuations += rest.iter().filter(|&&b| b & 0xc0 == 0x80).count();
    let printable = printable != 0 || rest.iter().any(|&b| b > b' ' && b < 0x80);
    (bytes.len() - continuations, printable)
}

/// Length in bytes of the last `chars` characters of `bytes` (all of it if shorter).
pub(super) fn suffix_bytes(bytes: &[u8], chars: usize) -> usize {
    let mut seen = 0;
    for (index, &byte) in bytes.iter().enumerate().rev() {
        if byte & 0xc0 != 0x80 {
            seen += 1;
            if seen == chars {
                return bytes.len() - index;
            }
        }
    }
    bytes.len()
}

/// Which edges [`trim`] trims, and whether box borders count as white space there.
#[derive(Clone, Copy)]
pub(super) struct Trim {
    left: bool,
    borders: bool,
}

pub(super) const TRIM_AGENT: Trim = Trim {
    left: true,
    borders: true,
};
pub(super) const TRIM_RIGHT: Trim = Trim {
    left: false,
    borders: false,
};

/// Whether `c`, one UTF-8 character of two or more bytes, is white space a line is trimmed of
/// besides ASCII: no-break and other Unicode spaces; and, when `borders`, a vertical box-drawing
/// border around an input box (`│`, `┃`, `║`).
fn is_blank(c: &[u8], borders: bool) -> bool {
    match *c {
        // U+00A0, U+1680, U+2000..=U+200A, U+202F, U+205F, U+3000, U+FEFF.
        [0xc2, 0xa0]
        | [0xe1, 0x9a, 0x80]
        | [0xe2, 0x80, 0x80..=0x8a | 0xaf]
        | [0xe2, 0x81, 0x9f]
        | [0xe3, 0x80, 0x80]
        | [0xef, 0xbb, 0xbf] => true,
        // U+2502, U+2503, U+2551.
        [0xe2, 0x94, 0x82 | 0x83] | [0xe2, 0x95, 0x91] => borders,
        _ => false,
    }
}

/// Trims `view[from..to]` of white space (and, for agent lines, box borders); returns the range.
pub(super) fn trim(view: &[u8], mut from: usize, mut to: usize, how: Trim) -> (usize, usize) {
    while from < to {
        let last = view[to - 1];
        if last.is_ascii_whitespace() {
            to -= 1;
            continue;
        }
        let width = last_char_width(&view[from..to]);
        if last < 0x80 || !is_blank(&view[to - width..to], how.borders) {
            break;
        }
        to -= width;
    }
    while how.left && from < to {
        let first = view[from];
        if first.is_ascii_whitespace() {
            from += 1;
            continue;
        }
        let width = first_char_width(first).min(to - from);
        if first < 0x80 || !is_blank(&view[from..from + width], how.borders) {
            break;
        }
        from += width;
    }
    (from, to)
}

fn first_char_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        _ => 1,
    }
}

fn last_char_width(bytes: &[u8]) -> usize {
    let continuation = bytes
        .iter()
        .rev()
        .take(3)
        .take_while(|&&b| b & 0xc0 == 0x80)
        .count();
    (continuation + 1).min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::suffix_bytes;

    #[test]
    fn ascii_graphic_detection_agrees_with_a_plain_scan() {
        for value in 0..=255u8 {
            for position in 0..12 {
                let mut bytes = "─ ─ ".as_bytes().to_vec();
                bytes.insert(position.min(bytes.len()), value);
                let plain = bytes.iter().any(|&b| b > b' ' && b < 0x80);
                assert_eq!(
                    super::has_ascii_graphic(&bytes),
                    plain,
                    "{value:#x} at {position}"
                );
            }
        }
    }

    #[test]
    fn trim_removes_unicode_spaces_and_box_borders_only_where_asked() {
        let line = "\u{a0}│ ❯\u{3000}│\u{feff}".as_bytes();
        let (from, to) = super::trim(line, 0, line.len(), super::TRIM_AGENT);
        assert_eq!(&line[from..to], "❯".as_bytes());
        let (from, to) = super::trim(line, 0, line.len(), super::TRIM_RIGHT);
        assert_eq!(&line[from..to], "\u{a0}│ ❯\u{3000}│".as_bytes());
    }

    #[test]
    fn measure_counts_characters_of_long_lines_exactly() {
        for repeat in [1, 254, 255, 256, 700] {
            let text = format!("{}x", "─日a".repeat(repeat));
            assert_eq!(
                super::measure(text.as_bytes()),
                (text.chars().count(), true),
                "{repeat}"
            );
        }
        assert_eq!(super::measure("── ─".as_bytes()), (4, false));
    }

    #[test]
    fn measure_counts_characters_at_every_alignment() {
        for prefix in 0..40 {
            let text = format!("{}❯é日本語🦀 plain ─│", "a".repeat(prefix));
            assert_eq!(
                super::measure(text.as_bytes()).0,
                text.chars().count(),
                "prefix {prefix}"
            );
        }
    }

    #[test]
    fn suffix_counts_characters_not_bytes() {
        let text = "a❯é".as_bytes();
        assert_eq!(suffix_bytes(text, 1), 2);
        assert_eq!(suffix_bytes(text, 2), 5);
        assert_eq!(suffix_bytes(text, 9), text.len());
    }
}
