//! The corpora's tests: the same bytes on every run, about a mebibyte of valid UTF-8 each,
//! escape density falling from Claude to Codex to build logs, the escapes and text each agent
//! writes, each ending the way its agent looks when it waits for input, and chunking that
//! covers the data in order.

use super::*;

/// Length of the escape sequence at the start of `data` (which starts with ESC), parsed the
/// way a terminal does: CSI from `ESC[` to its final byte, OSC to BEL or `ESC \\`, any other
/// escape as two bytes. An unterminated sequence runs to the end of `data`.
fn escape_len(data: &[u8]) -> usize {
    let end = match data.get(1) {
        Some(b'[') => data[2..]
            .iter()
            .position(|b| (0x40..=0x7e).contains(b))
            .map(|i| 2 + i + 1),
        Some(b']') => data
            .windows(2)
            .enumerate()
            .skip(2)
            .find_map(|(i, w)| match w {
                [0x07, _] => Some(i + 1),
                [0x1b, b'\\'] => Some(i + 2),
                _ => None,
            }),
        _ => Some(2),
    };
    end.unwrap_or(data.len()).min(data.len())
}

/// Bytes that belong to escape sequences.
fn escape_bytes(data: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while let Some(at) = memchr::memchr(0x1b, &data[i..]) {
        let len = escape_len(&data[i + at..]);
        count += len;
        i += at + len;
    }
    count
}

/// The text of `data` without its escape sequences.
fn visible_text(data: &[u8]) -> String {
    let mut text = Vec::new();
    let mut i = 0;
    while let Some(at) = memchr::memchr(0x1b, &data[i..]) {
        text.extend_from_slice(&data[i..i + at]);
        i += at + escape_len(&data[i + at..]);
    }
    text.extend_from_slice(&data[i..]);
    String::from_utf8_lossy(&text).into_owned()
}

fn density(data: &[u8]) -> f64 {
    escape_bytes(data) as f64 / data.len() as f64
}

fn corpora() -> [(&'static str, Vec<u8>); 3] {
    [
        ("claude_redraws", claude_redraws()),
        ("codex_output", codex_output()),
        ("build_logs", build_logs()),
    ]
}

#[test]
fn every_generator_gives_the_same_bytes_twice() {
    assert!(claude_redraws() == claude_redraws());
    assert!(codex_output() == codex_output());
    assert!(build_logs() == build_logs());
}

#[test]
fn every_corpus_is_about_one_mebibyte_of_valid_utf8() {
    for (name, data) in corpora() {
        assert!(
            data.len() >= CORPUS_BYTES_TARGET,
            "{name}: {} bytes",
            data.len()
        );
        assert!(
            data.len() < CORPUS_BYTES_TARGET + CORPUS_BYTES_TARGET / 16,
            "{name}: {} bytes",
            data.len()
        );
        assert!(std::str::from_utf8(&data).is_ok(), "{name} is not UTF-8");
    }
}

#[test]
fn claude_redraws_are_mostly_escape_sequences() {
    let data = claude_redraws();
    assert!(density(&data) > 0.5, "escape density {:.3}", density(&data));
}

#[test]
fn escape_density_falls_from_claude_to_codex_to_build_logs() {
    let [(_, claude), (_, codex), (_, build)] = corpora();
    let (claude, codex, build) = (density(&claude), density(&codex), density(&build));
    assert!(
        claude > codex && codex > build,
        "claude {claude:.3}, codex {codex:.3}, build {build:.3}"
    );
    assert!(codex > 0.3, "codex {codex:.3}");
    assert!(build < 0.25, "build {build:.3}");
}

#[test]
fn claude_redraws_use_the_escapes_of_an_ink_redraw() {
    let data = claude_redraws();
    let text = String::from_utf8_lossy(&data);
    for needle in [
        "\x1b[2K\x1b[1A",
        "\x1b[2K\x1b[G",
        "\x1b[38;2;",
        "\x1b[38;5;",
        "\x1b[48;2;",
        "\x1b[1m",
        "\x1b[2m",
        "\x1b[22m",
        "\x1b]0;",
        "\x1b[?2004h",
        "\x1b[?2004l",
        "\x1b[?2026h",
    ] {
        assert!(text.contains(needle), "missing {needle:?}");
    }
    let visible = visible_text(&data);
    for needle in [
        "Thinking… (",
        "s · ↓ ",
        " tokens · esc to interrupt)",
        "? for shortcuts",
    ] {
        assert!(visible.contains(needle), "missing {needle:?}");
    }
    let cup = regex::Regex::new("\x1b\\[[0-9]+;[0-9]+H").expect("valid pattern");
    let cuf = regex::Regex::new("\x1b\\[[0-9]+C").expect("valid pattern");
    assert!(cup.is_match(&text) && cuf.is_match(&text));
}

#[test]
fn claude_and_codex_transcripts_carry_multibyte_text() {
    let claude = String::from_utf8(claude_redraws()).expect("UTF-8");
    for needle in [
        "❯",
        "╭",
        "╮",
        "│",
        "╰",
        "╯",
        "─",
        "✻",
        "…",
        "配置",
        "ビルド",
        "빌드",
        "✅",
        "🚀",
    ] {
        assert!(claude.contains(needle), "claude lacks {needle}");
    }
    let codex = visible_text(&codex_output());
    for needle in ["›", "•", "└", "Working (", "s • esc to interrupt)"] {
        assert!(codex.contains(needle), "codex lacks {needle}");
    }
}

#[test]
fn build_logs_are_mostly_ascii_lines_with_progress_rewrites() {
    let data = build_logs();
    let ascii = data.iter().filter(|b| b.is_ascii()).count();
    assert!(ascii as f64 / data.len() as f64 > 0.97);
    let text = String::from_utf8_lossy(&data);
    assert!(text.matches("\r\n").count() > 10_000);
    assert!(text.contains("\r\x1b[K"));
    assert!(text.contains("\x1b[1;32m   Compiling\x1b[0m "));
}

#[test]
fn claude_redraws_end_with_an_idle_frame_showing_the_prompt() {
    let data = claude_redraws();
    let redraw = b"\x1b[?2026h";
    let start = data
        .windows(redraw.len())
        .rposition(|w| w == redraw)
        .expect("a redraw");
    let frame = visible_text(&data[start..]);
    let lines: Vec<&str> = frame
        .split("\r\n")
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(!frame.contains("esc to interrupt"), "{frame}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[1].trim_matches(['│', ' ']), "❯", "{lines:?}");
    assert_eq!(lines[3], "? for shortcuts");
}

#[test]
fn codex_output_ends_with_the_idle_pane() {
    let data = codex_output();
    let text = String::from_utf8_lossy(&data);
    let tail = &text[text.rfind("\x1b[?2004h").expect("paste on")..];
    assert!(
        tail.contains("\x1b[38;1H\x1b[2K\x1b[1m›\x1b[22m "),
        "{tail:?}"
    );
    assert!(!visible_text(tail.as_bytes()).contains("Working"));
}

#[test]
fn build_logs_end_with_a_shell_prompt() {
    let data = build_logs();
    assert!(data.ends_with(b"\x1b[00m$ "));
}

#[test]
fn chunks_cover_the_data_in_order_and_split_anywhere() {
    let data = "❯ abc".as_bytes();
    let pieces: Vec<&[u8]> = chunks(data, 2).collect();
    assert_eq!(pieces, [&[0xe2, 0x9d][..], &[0xaf, b' '], b"ab", b"c"]);
    assert_eq!(
        chunks(&claude_redraws(), 4096)
            .map(<[u8]>::len)
            .sum::<usize>(),
        claude_redraws().len()
    );
}

#[test]
fn escape_counting_follows_the_terminal_grammar() {
    assert_eq!(escape_bytes(b"a\x1b[38;2;1;2;3mb"), 13);
    assert_eq!(escape_bytes(b"\x1b]0;title\x07x"), 10);
    assert_eq!(escape_bytes(b"\x1b]0;t\x1b\\x"), 7);
    assert_eq!(escape_bytes(b"\x1b7x"), 2);
    assert_eq!(visible_text(b"a\x1b[1mb\x1b]0;t\x07c"), "abc");
}
