//! The ground state's scans: runs of text found eight bytes at a time, CSI parameters skipped
//! the same way, and short runs checked as UTF-8 inline (with the lead-byte table the byte-wise
//! decoder shares). Each is tested against a plain scan of every byte value and position.

/// Text runs up to this long are validated inline; longer ones by the SIMD validator, whose call
/// costs more than a short run's check.
pub(super) const SHORT_RUN_BYTES: usize = 16;

/// For a UTF-8 lead byte: how many continuation bytes follow, and the range allowed for the first
/// of them (which excludes overlong forms, surrogates and code points past U+10FFFF).
pub(super) fn lead(byte: u8) -> Option<(u8, u8, u8)> {
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
pub(super) fn valid_prefix(bytes: &[u8]) -> (usize, bool) {
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
pub(super) fn skip_parameters(bytes: &[u8], from: usize) -> usize {
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
pub(super) struct TextRun {
    /// Index of the first C0 control or DEL, or the end of the input.
    pub(super) end: usize,
    /// The run has a byte of 0x80 or more: it needs UTF-8 validation and may hold a C1 control.
    pub(super) non_ascii: bool,
}

/// Scans `bytes[from..]` up to the first C0 control or DEL, noting whether the run is ASCII.
///
/// Eight bytes per step: the hot path of escape-dense output is short runs of text between
/// escape sequences, and long runs of plain text in logs.
#[inline(always)]
pub(super) fn scan_text(bytes: &[u8], from: usize) -> TextRun {
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
