//! Text that comes from outside (a task's name, an agent's screen, an error naming a file) and is
//! shown to people: what a name may hold, and how any text is printed safely on a terminal.
//!
//! Hidden characters are the ones that print nothing or move text around: control characters
//! (C0, DEL, C1: a terminal's escape sequences start with them), format characters (bidi
//! overrides and isolates, which can show `invoice\u{202E}gpj.exe` as `invoiceexe.jpg`; zero-width
//! spaces and joiners; the byte-order mark), and line and paragraph separators. A name must hold
//! none; any other text is printed with each one escaped.

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_general_category::{GeneralCategory, get_general_category};

/// Whether `c` is hidden (see the module documentation).
#[must_use]
pub fn is_hidden(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The first hidden character of a name, if any.
#[must_use]
pub fn hidden_in(name: &str) -> Option<char> {
    name.chars().find(|&c| is_hidden(c))
}

/// `text` as a terminal may print it: every hidden character but the line breaks and tabs of
/// multi-line text written as `\u{…}`, so no escape sequence runs and no bidi override turns
/// text around. Borrowed when nothing needed escaping.
#[must_use]
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let kept = |c: char| c == '\n' || c == '\t';
    if !text.chars().any(|c| is_hidden(c) && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) && !kept(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text (hidden characters can only be inside its strings) with every hidden character
/// but its layout's line breaks and tabs written as a JSON `\uXXXX` escape: the same JSON, safe
/// on a terminal.
#[must_use]
pub fn json_terminal_safe(json: &str) -> Cow<'_, str> {
    let kept = |c: char| c == '\n' || c == '\t';
    if !json.chars().any(|c| is_hidden(c) && !kept(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 12);
    let mut units = [0u16; 2];
    for c in json.chars() {
        if is_hidden(c) && !kept(c) {
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{hidden_in, is_hidden, json_terminal_safe, terminal_safe};

    #[test]
    fn json_stays_json_with_its_hidden_characters_escaped() {
        let value = serde_json::json!({ "name": "invoice\u{202e}gpj.exe", "tag": "\u{e0001}" });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = json_terminal_safe(&text);
        assert!(safe.contains("invoice\\u202egpj.exe"), "{safe}");
        assert!(safe.contains("\\udb40\\udc01"), "{safe}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
        assert!(safe.contains('\n'), "the layout is kept");
    }

    #[test]
    fn bidi_overrides_zero_widths_and_controls_are_hidden() {
        for c in [
            '\u{0}',
            '\u{1b}',
            '\u{7f}',
            '\u{9b}',
            '\u{202e}',
            '\u{2066}',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{2028}',
            '\u{2029}',
            '\u{ad}',
            '\u{e0001}',
        ] {
            assert!(is_hidden(c), "{:x}", u32::from(c));
        }
        for c in ['a', 'é', '日', '🙂', ' ', '-', '_'] {
            assert!(!is_hidden(c), "{c}");
        }
        assert_eq!(hidden_in("invoice\u{202e}gpj.exe"), Some('\u{202e}'));
        assert_eq!(hidden_in("Fix the login bug"), None);
    }

    #[test]
    fn terminal_safe_text_escapes_what_would_run_or_turn() {
        assert_eq!(
            terminal_safe("a\u{1b}[2Jb\u{202e}c"),
            "a\\u{1b}[2Jb\\u{202e}c"
        );
        assert_eq!(terminal_safe("two\nlines\tok"), "two\nlines\tok");
        assert!(matches!(
            terminal_safe("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(terminal_safe("\r\u{85}"), "\\u{d}\\u{85}");
    }
}
