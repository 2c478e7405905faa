//! Terminal recordings, read: an asciinema cast (v2, absolute times; or v3, intervals), whose
//! output events keep their times, or raw bytes (`script` output, a PTY dump), which carry none.
//! `baton detect` replays them through the prompt detector (`cli::detect`); a script's `cast`
//! action plays a cast's output at its times ([`super::script`]).
//!
//! [`Format::Auto`] reads a file that starts with `{` as a cast and anything else as raw bytes;
//! a raw recording that happens to start with `{` is read with [`Format::Raw`]. A malformed cast
//! is an error naming its line, never a panic. Pure: the caller reads the file, bounded.

use crate::core::time::Millis;

/// One output event of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputEvent {
    /// When it was written, from the start of the recording.
    pub at: Millis,
    /// What was written.
    pub data: Vec<u8>,
}

/// A recording, as read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recording {
    /// Bytes without timing.
    Raw(Vec<u8>),
    /// An asciinema cast's output events.
    Cast {
        /// The format version (2 or 3).
        version: u64,
        /// The terminal's columns and rows, from the header (v2 `width` and `height`, v3
        /// `term.cols` and `term.rows`), if it says.
        size: Option<(u16, u16)>,
        /// Output events in order.
        events: Vec<OutputEvent>,
    },
}

/// Why a file that looks like an asciinema cast could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    /// The header line is not a JSON object with a numeric `version`.
    #[error("line 1: not an asciinema header: {0}")]
    Header(String),
    /// A version other than 2 or 3 (as written).
    #[error("line 1: asciinema version {0} is not supported (2 and 3 are)")]
    Version(String),
    /// An event line that is not `[time, code, data]`.
    #[error("line {line}: {reason}")]
    Event {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// How to read a recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// A cast if the first byte is `{`, else raw bytes.
    #[default]
    Auto,
    /// An asciinema cast, v2 or v3.
    Cast,
    /// Raw terminal output.
    Raw,
}

/// A format name that is not `auto`, `cast` or `raw`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: expected auto, cast or raw")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "auto" => Ok(Format::Auto),
            "cast" => Ok(Format::Cast),
            "raw" => Ok(Format::Raw),
            _ => Err(UnknownFormat(name.to_owned())),
        }
    }
}

/// Reads `bytes` in `format` (see [`Format::Auto`] for the guess).
///
/// # Errors
/// A cast whose header or events are malformed; the error names the line.
pub fn parse_recording(bytes: &[u8], format: Format) -> Result<Recording, RecordingError> {
    let cast = match format {
        Format::Auto => bytes.first() == Some(&b'{'),
        Format::Cast => true,
        Format::Raw => false,
    };
    if !cast {
        return Ok(Recording::Raw(bytes.to_vec()));
    }
    let mut lines = bytes
        .split(|&byte| byte == b'\n')
        .enumerate()
        .map(|(index, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            std::str::from_utf8(line)
                .map(|text| (index, text))
                .map_err(|error| (index, error))
        });
    let header = match lines.next() {
        Some(Ok((_, header))) => header,
        Some(Err((_, error))) => {
            return Err(RecordingError::Header(format!("not UTF-8 ({error})")));
        }
        None => "",
    };
    let header: serde_json::Value =
        serde_json::from_str(header).map_err(|error| RecordingError::Header(error.to_string()))?;
    let version = header
        .get("version")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| RecordingError::Header("no numeric \"version\" field".to_owned()))?;
    let version = match version {
        2.0 => 2,
        3.0 => 3,
        other => return Err(RecordingError::Version(other.to_string())),
    };
    let dimension = |v2: &str, v3: &str| {
        header
            .get(v2)
            .or_else(|| header.get("term").and_then(|term| term.get(v3)))
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
    };
    let size = dimension("width", "cols").zip(dimension("height", "rows"));
    let mut events = Vec::new();
    let mut clock = 0.0_f64;
    for line in lines {
        let (index, line) = match line {
            Ok(line) => line,
            Err((index, error)) => {
                return Err(RecordingError::Event {
                    line: index + 1,
                    reason: format!("not UTF-8 ({error})"),
                });
            }
        };
        let line_number = index + 1;
        let event_error = |reason: String| RecordingError::Event {
            line: line_number,
            reason,
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|error| event_error(error.to_string()))?;
        let (Some(time), Some(code), Some(data)) = (
            value.get(0).and_then(serde_json::Value::as_f64),
            value.get(1).and_then(serde_json::Value::as_str),
            value.get(2),
        ) else {
            return Err(event_error("expected [time, code, data]".to_owned()));
        };
        if !time.is_finite() || time < 0.0 {
            return Err(event_error(format!(
                "time {time} is not a non-negative number"
            )));
        }
        let at = if version == 2 { time } else { clock + time };
        if at < clock {
            return Err(event_error(format!("time {time} goes back before {clock}")));
        }
        clock = at;
        if code == "o" {
            let data = data
                .as_str()
                .ok_or_else(|| event_error("output data is not a string".to_owned()))?;
            events.push(OutputEvent {
                at: seconds_to_millis(at),
                data: data.as_bytes().to_vec(),
            });
        }
    }
    Ok(Recording::Cast {
        version,
        size,
        events,
    })
}

fn seconds_to_millis(seconds: f64) -> Millis {
    // Finite and non-negative (checked above); `as` saturates at u64::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = (seconds * 1000.0).round() as u64;
    Millis(ms)
}

#[cfg(test)]
mod tests {
    use super::{Format, Recording, RecordingError};
    use crate::core::time::Millis;

    fn parse_recording(bytes: &[u8]) -> Result<Recording, RecordingError> {
        super::parse_recording(bytes, Format::Auto)
    }

    #[test]
    fn the_format_can_be_forced_either_way() {
        let json_output = b"{\"status\": \"ok\"}\n$ ";
        assert!(parse_recording(json_output).is_err(), "guessed a cast");
        assert_eq!(
            super::parse_recording(json_output, Format::Raw),
            Ok(Recording::Raw(json_output.to_vec()))
        );
        assert_eq!(
            super::parse_recording(b"$ ", Format::Cast),
            Err(RecordingError::Header(
                "expected value at line 1 column 1".into()
            ))
        );
    }

    #[test]
    fn invalid_utf8_in_a_cast_names_its_line() {
        let cast = b"{\"version\": 2}\n[0.1, \"o\", \"a\"]\n[0.2, \"o\", \"\xff\"]\n";
        let error = parse_recording(cast).unwrap_err();
        assert!(
            matches!(&error, RecordingError::Event { line: 3, reason } if reason.starts_with("not UTF-8")),
            "{error:?}"
        );
    }

    #[test]
    fn bytes_without_a_json_header_are_raw() {
        assert_eq!(
            parse_recording(b"\x1b[0m$ "),
            Ok(Recording::Raw(b"\x1b[0m$ ".to_vec()))
        );
    }

    #[test]
    fn v3_times_are_intervals_and_non_output_events_are_skipped() {
        let cast =
            "{\"version\": 3}\n[0.5, \"o\", \"a\"]\n[0.25, \"i\", \"x\"]\n[0.25, \"o\", \"b\"]\n";
        let Ok(Recording::Cast { events, .. }) = parse_recording(cast.as_bytes()) else {
            panic!()
        };
        let times: Vec<_> = events.iter().map(|event| event.at).collect();
        assert_eq!(times, [Millis(500), Millis(1_000)]);
    }

    #[test]
    fn malformed_casts_name_the_line() {
        let check = |text: &str, expected: RecordingError| {
            assert_eq!(parse_recording(text.as_bytes()), Err(expected));
        };
        check("{\"version\": 1}\n", RecordingError::Version("1".into()));
        check(
            "{\"version\": 2.5}\n",
            RecordingError::Version("2.5".into()),
        );
        assert!(parse_recording(b"{\"version\": 2.0}\n").is_ok(), "2.0 is 2");
        check(
            "{\"width\": 80}\n",
            RecordingError::Header("no numeric \"version\" field".into()),
        );
        check(
            "{\"version\": 2}\n[1, \"o\"]\n",
            RecordingError::Event {
                line: 2,
                reason: "expected [time, code, data]".into(),
            },
        );
        check(
            "{\"version\": 2}\n[2, \"o\", \"a\"]\n[1, \"o\", \"b\"]\n",
            RecordingError::Event {
                line: 3,
                reason: "time 1 goes back before 2".into(),
            },
        );
    }
}
