//! Diffs as the coordinator receives them: cut to a size its context can take, with a note.

/// Longest diff text returned, in characters: about what a coordinator can read in one go.
pub const DIFF_CHARS_MAX: usize = 50_000;
/// Appended to a diff that was cut.
pub const DIFF_TRUNCATED_NOTE: &str = "\n... (diff truncated)";

/// A diff's text, cut if needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The text returned.
    pub text: String,
    /// Whether it was cut.
    pub truncated: bool,
    /// Size of the full text in bytes.
    pub original_bytes: usize,
}

/// Cuts `text` after [`DIFF_CHARS_MAX`] characters (never inside a character) and notes it.
#[must_use]
pub fn truncate_diff(text: &str) -> Cut {
    let original_bytes = text.len();
    match text.char_indices().nth(DIFF_CHARS_MAX) {
        Some((at, _)) => Cut {
            text: format!("{}{DIFF_TRUNCATED_NOTE}", &text[..at]),
            truncated: true,
            original_bytes,
        },
        None => Cut {
            text: text.to_owned(),
            truncated: false,
            original_bytes,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{DIFF_CHARS_MAX, DIFF_TRUNCATED_NOTE, truncate_diff};

    #[test]
    fn a_diff_within_the_limit_is_untouched() {
        let text = "é".repeat(DIFF_CHARS_MAX);
        let cut = truncate_diff(&text);
        assert!(!cut.truncated);
        assert_eq!(cut.text, text);
        assert_eq!(cut.original_bytes, 2 * DIFF_CHARS_MAX);
    }

    #[test]
    fn a_longer_diff_is_cut_on_a_character_boundary_with_a_note() {
        let text = "é".repeat(DIFF_CHARS_MAX + 1);
        let cut = truncate_diff(&text);
        assert!(cut.truncated);
        assert_eq!(
            cut.text,
            format!("{}{DIFF_TRUNCATED_NOTE}", "é".repeat(DIFF_CHARS_MAX))
        );
        assert_eq!(cut.original_bytes, text.len());
    }
}
