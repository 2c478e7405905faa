//! Detector tests: the fixture table (§7.6 of the reference spec, stricter variant), time rules,
//! terminal queries, and the properties (chunk independence, bounded memory, no panics).

use proptest::prelude::*;

use super::{
    Assessment, Detector, DetectorConfig, ECHO_GUARD_MS, Profile, QUERIES_PENDING_MAX, Readiness,
    TerminalQuery,
};
use crate::core::state::Attention;
use crate::core::time::Millis;

fn fed(profile: Profile, input: &str) -> Detector {
    let mut detector = Detector::new(profile, Millis(0));
    detector.feed(Millis(0), input.as_bytes());
    detector
}

/// One fixture: a named terminal stream and what the profile must make of it.
struct Fixture {
    name: &'static str,
    profile: Profile,
    input: String,
    expected: Readiness,
}

fn fixture(
    name: &'static str,
    profile: Profile,
    input: impl Into<String>,
    expected: Readiness,
) -> Fixture {
    Fixture {
        name,
        profile,
        input: input.into(),
        expected,
    }
}

const CLAUDE_FOOTER: &str = "  ? for shortcuts                                        \
    ⧉ In main.rs · 1 line selected · Context left until auto-compact: 12% · \
    Opus 4 · ~/projects/baton (main) · accept edits on (shift+tab to cycle) · \
    bypass permissions off · MCP: baton connected · Update available! Run: npm i -g";

fn claude_box(inner: &str) -> String {
    format!(
        "\x1b[2m╭────────────────────────────────────────╮\x1b[0m\r\n\x1b[2m│\x1b[0m {inner}                                      \x1b[2m│\x1b[0m\r\n\x1b[2m╰────────────────────────────────────────╯\x1b[0m\r\n"
    )
}

fn codex_footer(len: usize) -> String {
    let words = "⏎ send   ⇧⏎ newline   ⌃T transcript   ⌃C quit   ";
    words.chars().cycle().take(len).collect()
}

/// Every fixture of §7.6 (where the reference variants disagree, the stricter one), plus the
/// cases our own text model adds. Each row asserts; the table is also snapshotted with the
/// screen text each stream leaves, so a change in the text model shows up in review.
fn fixtures() -> Vec<Fixture> {
    use Profile::{Claude, Codex, Gemini, Generic, Shell};
    use Readiness::{Busy, NoPrompt, Ready, Starting};
    const DIALOG: Readiness = Readiness::Attention(Attention::Dialog);
    const QUESTION: Readiness = Readiness::Attention(Attention::Question);
    const PERMISSION: Readiness = Readiness::Attention(Attention::Permission);
    vec![
        // Text model (the reference's stripAnsi cases).
        fixture("plain text passes through", Claude, "hello world", NoPrompt),
        fixture(
            "SGR colours are removed",
            Claude,
            "\x1b[31mred\x1b[0m \x1b[1;38;2;1;2;3mbold",
            NoPrompt,
        ),
        fixture(
            "erase display and home leave nothing",
            Claude,
            "old ❯\x1b[2J\x1b[H",
            NoPrompt,
        ),
        fixture(
            "OSC title ended by BEL is removed",
            Claude,
            "\x1b]0;claude\x07❯",
            Ready,
        ),
        fixture(
            "OSC title ended by ST is removed",
            Claude,
            "\x1b]2;title\x1b\\❯",
            Ready,
        ),
        fixture(
            "OSC ended by C1 ST is removed",
            Claude,
            "\x1b]0;t\u{9c}❯",
            Ready,
        ),
        fixture(
            "unterminated OSC swallows the rest",
            Claude,
            "\x1b]0;title ❯",
            NoPrompt,
        ),
        fixture(
            "DCS string is swallowed up to ST",
            Claude,
            "\x1bPq#0;2;0;0;0\x1b\\❯",
            Ready,
        ),
        fixture(
            "APC, PM and SOS strings are swallowed",
            Claude,
            "\x1b_a❯\x1b\\\x1b^b❯\x1b\\\x1bXc❯\x1b\\",
            NoPrompt,
        ),
        fixture(
            "C1 CSI as a code point is an escape",
            Claude,
            "❯\u{9b}2J",
            NoPrompt,
        ),
        fixture(
            "alternate screen exit clears the screen",
            Claude,
            "\x1b[?1049h❯\x1b[?1049l",
            NoPrompt,
        ),
        fixture(
            "consecutive sequences are removed",
            Claude,
            "\x1b[1m\x1b[32m\x1b[4m\x1b[0m❯",
            Ready,
        ),
        fixture(
            "escape-only input is empty",
            Claude,
            "\x1b[0m\x1b[?25l\x1b[K\x1b7\x1b8\x1b=\x1b(0",
            NoPrompt,
        ),
        fixture(
            "single-character escapes are dropped",
            Claude,
            "\x1b7\x1bM\x1b=❯\x1b>",
            Ready,
        ),
        fixture(
            "CSI ending in an unusual final is removed",
            Claude,
            "\x1b[2S\x1b[12345m\x1b[>4;2m❯",
            Ready,
        ),
        fixture("backspace erases the glyph", Shell, "$\x08", NoPrompt),
        fixture("backspace erases one character", Shell, "$x\x08", Ready),
        fixture(
            "on the grid backspace only moves the cursor",
            Claude,
            "❯\x08",
            Ready,
        ),
        fixture(
            "on the grid backspace, space, backspace erases",
            Claude,
            "❯x\x08 \x08",
            Ready,
        ),
        fixture(
            "cursor motion separates lines",
            Claude,
            "esc to\x1b[5;1H❯",
            Ready,
        ),
        fixture(
            "a replacement character is plain text",
            Claude,
            "\u{fffd}",
            NoPrompt,
        ),
        // Shell last-line patterns (§7.5).
        fixture("shell: bare glyph", Shell, "❯", Ready),
        fixture("shell: padded glyph", Shell, "   ❯   ", Ready),
        fixture(
            "shell: glyph with a trailing space",
            Shell,
            "~/src ❯ ",
            Ready,
        ),
        fixture("shell: codex glyph", Shell, "› ", Ready),
        fixture("shell: bash prompt", Shell, "user@host:~ $ ", Ready),
        fixture(
            "shell: bash prompt with the dollar after the path",
            Shell,
            "dev@box:~/baton$ ",
            Ready,
        ),
        fixture(
            "shell: a dollar closing a word without a space after it",
            Shell,
            "price in US$",
            NoPrompt,
        ),
        fixture(
            "shell: bash prompt followed by padding",
            Shell,
            "dev@box:~/baton$ \u{a0} ",
            Ready,
        ),
        fixture("shell: zsh prompt", Shell, "user@host % ", Ready),
        fixture("shell: root prompt", Shell, "root@host # ", Ready),
        fixture("shell: yes/no question", Shell, "Continue? [Y/n] ", Ready),
        fixture("shell: no/yes question", Shell, "Overwrite? [y/N]", Ready),
        fixture(
            "shell: trust dialog ending in [Y/n]",
            Shell,
            "Do you trust this folder? [Y/n] ",
            Ready,
        ),
        fixture(
            "shell: a dollar amount is not a prompt",
            Shell,
            "Costs $5 per month",
            NoPrompt,
        ),
        fixture(
            "shell: output after the prompt",
            Shell,
            "$ ls\r\nCargo.toml  src\r\n",
            NoPrompt,
        ),
        fixture("shell: empty", Shell, "", NoPrompt),
        // Agent prompt, both reference variants.
        fixture("claude: bare glyph", Claude, "❯", Ready),
        fixture(
            "claude: glyph at the end of 200 characters is not a prompt",
            Claude,
            format!("{}❯", "A".repeat(200)),
            NoPrompt,
        ),
        fixture(
            "claude: selection menu (a dialog: enter to confirm)",
            Claude,
            "Select a model:\r\n❯ Option A\r\n  Option B\r\n  Option C\r\nEnter to confirm · Esc to exit",
            QUESTION,
        ),
        fixture(
            "claude: trust dialog, its footer's esc to cancel is no busy sign",
            Claude,
            "Quick safety check: Is this a project you created or one you trust?\r\n\r\n❯ 1. Yes, I trust this folder\r\n  2. No, exit\r\n\r\nEnter to confirm · Esc to cancel",
            DIALOG,
        ),
        fixture(
            "gemini: trust menu whose question scrolled out of the blocker region",
            Gemini,
            "│ ● 1. Trust folder (repo) │\r\n│   2. Trust parent folder (explore) │\r\n│   3. Don't trust │",
            DIALOG,
        ),
        fixture(
            "claude: a finished turn's timer is no spinner",
            Claude,
            "● Done.\r\n\r\n✻ Worked for 3s\r\n\r\n──────────\r\n❯ \r\n──────────\r\n  ? for shortcuts",
            Ready,
        ),
        fixture(
            "claude: permission prompt, its esc to cancel is a menu's footer",
            Claude,
            " Bash command\r\n   touch hello.txt\r\n Do you want to proceed?\r\n ❯ 1. Yes\r\n   2. No\r\n\r\n Esc to cancel · Tab to amend · ctrl+e to explain",
            PERMISSION,
        ),
        fixture(
            "claude: a menu drawn under a stale spinner line asks the human",
            Claude,
            "✻ Working… (4s · esc to interrupt)\r\n Do you want to proceed?\r\n ❯ 1. Yes\r\n   2. No\r\n Esc to cancel",
            PERMISSION,
        ),
        fixture(
            "codex: approval prompt",
            Codex,
            "  Would you like to run the following command?\r\n  $ touch hello.txt\r\n› 1. Yes, proceed (y)\r\n  2. No, and tell Codex what to do differently (esc)\r\n  Press enter to confirm or esc to cancel",
            PERMISSION,
        ),
        fixture(
            "gemini: tool confirmation in its box",
            Gemini,
            "│ ? Shell  touch hello.txt │\r\n│ Allow execution of [Shell]? │\r\n│ ● 1. Allow once │\r\n│   2. Allow for this session │\r\n│   3. No, suggest changes (esc) │",
            PERMISSION,
        ),
        fixture(
            "codex: sign-in menu",
            Codex,
            "  Welcome to Codex\r\n› 1. Sign in with ChatGPT\r\n  2. Provide your own API key\r\n  Press Enter to continue",
            Readiness::Attention(Attention::SignIn),
        ),
        fixture(
            "claude: a numbered list in the agent's answer above its prompt is no menu",
            Claude,
            "⏺ Steps:\r\n  1. Build\r\n  2. Test\r\n\r\n❯ ",
            Ready,
        ),
        fixture(
            "claude: an echoed numbered prompt above the input line is no menu",
            Claude,
            "❯ 1. Fix the lint\r\n✻ Working… (2s · esc to interrupt)\r\n────\r\n❯ \r\n────\r\n  ? for shortcuts",
            Busy,
        ),
        fixture(
            "gemini: an echoed numbered message above its spinner is no menu",
            Gemini,
            " > 1. Add a test\r\n⠋ Thinking (esc to cancel, 2s)\r\n╭────╮\r\n│ > Type your message │\r\n╰────╯",
            Busy,
        ),
        fixture(
            "gemini: esc to cancel alone is still busy",
            Gemini,
            "⠋ Refining the plan (esc to cancel, 12s)",
            Busy,
        ),
        fixture("claude: empty", Claude, "", NoPrompt),
        fixture("codex: glyph and space", Codex, "› ", Ready),
        fixture(
            "claude: colour-wrapped glyph",
            Claude,
            "\x1b[38;5;246m❯\x1b[39m ",
            Ready,
        ),
        fixture(
            "claude: trust dialog ending in [Y/n]",
            Claude,
            "Do you trust this folder? [Y/n] ",
            DIALOG,
        ),
        fixture(
            "claude: lone alternate-screen exit",
            Claude,
            "\x1b[?1049l",
            NoPrompt,
        ),
        fixture(
            "claude: codex glyph is not claude's prompt",
            Claude,
            "›",
            NoPrompt,
        ),
        // Stricter variant: ready frames.
        fixture(
            "claude: prompt line above a long status footer",
            Claude,
            format!("{}{CLAUDE_FOOTER}", claude_box("❯")),
            Ready,
        ),
        fixture(
            "claude: rule-framed prompt",
            Claude,
            format!(
                "\x1b[2m{}\x1b[0m\r\n❯ \r\n\x1b[2m{}\x1b[0m\r\n{CLAUDE_FOOTER}",
                "─".repeat(80),
                "─".repeat(80)
            ),
            Ready,
        ),
        fixture(
            "claude: empty vim insert mode",
            Claude,
            format!("{}  -- INSERT --  {CLAUDE_FOOTER}", claude_box(">")),
            Ready,
        ),
        fixture(
            "claude: vim insert mode with inline status and CR separators",
            Claude,
            "│ >  │\r--INSERT--⏵⏵ accept edits on (shift+tab to cycle)\r",
            Ready,
        ),
        fixture(
            "claude: vim mode word is not insert mode",
            Claude,
            "-- INSERTED --",
            NoPrompt,
        ),
        fixture(
            "claude: prompt after an accepted trust dialog in scrollback",
            Claude,
            format!(
                "Do you trust the files in this folder?\r\n❯ 1. Yes, proceed\r\n  2. No, exit\r\n\x1b[2J\x1b[H\r\nWelcome to Claude Code!\r\n{}",
                claude_box("❯")
            ),
            Ready,
        ),
        fixture(
            "claude: trust dialog still in the tail beside a prompt",
            Claude,
            format!(
                "Do you trust the files in this folder?\r\n{}",
                claude_box("❯")
            ),
            Ready,
        ),
        fixture(
            "claude: a line erased after CR shows only what is written after",
            Claude,
            "\r\x1b[2K❯ \r\x1b[2K  ? for shortcuts\r",
            NoPrompt,
        ),
        fixture(
            "claude: redraw with CR LF separators",
            Claude,
            "\r\x1b[2K❯ \r\n\x1b[2K  ? for shortcuts\r",
            Ready,
        ),
        fixture(
            "claude: work complete then prompt",
            Claude,
            "work complete\n❯",
            Ready,
        ),
        fixture(
            "claude: busy spinner beats a visible prompt",
            Claude,
            format!(
                "✻ Thinking… (12s · esc to interrupt)\r\n{}",
                claude_box("❯")
            ),
            Busy,
        ),
        fixture(
            "claude: busy phrase pushed out of the blocker tail",
            Claude,
            format!(
                "✻ Thinking… (esc to interrupt)\r\n{}\r\n❯",
                "The build passed and all tests are green. ".repeat(13)
            ),
            Ready,
        ),
        fixture(
            "codex: prompt above a footer",
            Codex,
            format!("›\r\n\r\n  {}", codex_footer(60)),
            Ready,
        ),
        fixture(
            "codex: prompt above a 500-character footer",
            Codex,
            format!("› \r\n\r\n{}", codex_footer(500)),
            Ready,
        ),
        fixture(
            "codex: colour-wrapped prompt",
            Codex,
            "\x1b[1m\x1b[36m›\x1b[0m\x1b[K\r\n",
            Ready,
        ),
        fixture(
            "gemini: type-your-message box",
            Gemini,
            "╭──────────╮\r\n│ > Type your message or @path/to/file │\r\n╰──────────╯",
            Ready,
        ),
        fixture("gemini: bare prompt", Gemini, ">   ", Ready),
        fixture(
            "gemini: prompt after MCP start-up completed",
            Gemini,
            "Starting MCP servers (0/2)…\r\nStarting MCP servers complete\r\n> Type your message",
            Ready,
        ),
        fixture(
            "gemini: a quote is not a prompt",
            Gemini,
            "> quoted text",
            NoPrompt,
        ),
        // Stricter variant: not-ready frames.
        fixture(
            "codex: working with a visible prompt is busy",
            Codex,
            "• Working (18m 51s • esc to interrupt) · 1 background terminal running · /stop to close\r\n\r\n›\r\n",
            Busy,
        ),
        fixture(
            "codex: control-damaged working line is busy",
            Codex,
            "q\x0eqWorking (2s • esc to interrupt)\r\n›\r\n",
            Busy,
        ),
        fixture(
            "codex: background terminal alone is busy",
            Codex,
            "1 background terminal running\r\n› ",
            Busy,
        ),
        fixture(
            "codex: stop-to-close alone is busy",
            Codex,
            "/stop to close\r\n› ",
            Busy,
        ),
        fixture(
            "gemini: esc to cancel is busy",
            Gemini,
            "⠋ Thinking (esc to cancel, 3s)\r\n> ",
            Busy,
        ),
        fixture(
            "codex: MCP servers starting",
            Codex,
            "Starting MCP servers (0/2): baton, github\r\nBooting MCP server: baton\r\n›",
            Starting,
        ),
        fixture(
            "claude: MCP servers starting without booting line",
            Claude,
            "Starting MCP servers (1/2)\r\n❯",
            Starting,
        ),
        fixture(
            "codex: model loading",
            Codex,
            "model: loading\r\n› ",
            Starting,
        ),
        fixture(
            "codex: trust dialog",
            Codex,
            "Do you trust the contents of this directory?\r\n› 1. Yes, continue\r\n  2. No, quit\r\nPress enter to continue",
            DIALOG,
        ),
        fixture(
            "claude: networking is not working",
            Claude,
            "networking (ok)\r\n❯",
            Ready,
        ),
        // The generic profile has no glyph: blockers only.
        fixture(
            "generic: prompt glyph means nothing",
            Generic,
            "❯",
            NoPrompt,
        ),
        fixture("generic: busy phrase", Generic, "esc to interrupt", Busy),
        fixture(
            "generic: dialog phrase",
            Generic,
            "Press enter to continue",
            DIALOG,
        ),
    ]
}

#[test]
fn every_fixture_gets_its_expected_readiness() {
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let readiness = fed(fixture.profile, &fixture.input).readiness();
        if readiness != fixture.expected {
            failures.push(format!(
                "{}: got {readiness}, expected {}",
                fixture.name, fixture.expected
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fixture_table_with_screen_text() {
    let mut table = String::new();
    for fixture in fixtures() {
        let detector = fed(fixture.profile, &fixture.input);
        let text = detector.screen_text();
        let shown: String = text
            .chars()
            .rev()
            .take(120)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        table.push_str(&format!(
            "{} [{}] => {}\n    {:?}\n",
            fixture.name,
            fixture.profile,
            detector.readiness(),
            shown
        ));
    }
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("detector_fixtures", table);
    });
}

#[test]
fn every_fixture_is_the_same_at_every_single_split() {
    for fixture in fixtures() {
        let bytes = fixture.input.as_bytes();
        for split in 0..=bytes.len() {
            let mut detector = Detector::new(fixture.profile, Millis(0));
            detector.feed(Millis(0), &bytes[..split]);
            detector.feed(Millis(0), &bytes[split..]);
            assert_eq!(
                detector.readiness(),
                fixture.expected,
                "{} split at {split}",
                fixture.name
            );
        }
    }
}

#[test]
fn invalid_utf8_becomes_one_replacement_character_per_maximal_invalid_subpart() {
    let check = |input: &[u8], expected: &str| {
        let mut detector = Detector::new(Profile::Claude, Millis(0));
        detector.feed(Millis(0), input);
        assert_eq!(detector.screen_text(), expected, "{input:x?}");
    };
    check(b"a\xffb", "a\u{fffd}b");
    check(b"\xe2\x9d", ""); // held: the next byte may complete it
    check(b"\xe2\x9da", "\u{fffd}a");
    check(b"\xc0\xaf", "\u{fffd}\u{fffd}");
    check(b"\xed\xa0\x80", "\u{fffd}\u{fffd}\u{fffd}");
    check(b"\xf0\x9f\xa6\x80", "\u{1f980}");
}

#[test]
fn glyph_split_after_its_first_byte_is_still_a_prompt() {
    for (profile, glyph) in [(Profile::Claude, "❯"), (Profile::Codex, "›")] {
        let mut detector = Detector::new(profile, Millis(0));
        detector.feed(Millis(0), &glyph.as_bytes()[..1]);
        assert_eq!(detector.readiness(), Readiness::NoPrompt);
        detector.feed(Millis(1), &glyph.as_bytes()[1..]);
        assert_eq!(detector.readiness(), Readiness::Ready, "{profile}");
    }
}

#[test]
fn ansi_wrapped_prompt_split_inside_the_escape_is_still_a_prompt() {
    let stream = "\x1b[38;5;246m❯\x1b[39m ".as_bytes();
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), &stream[..4]);
    detector.feed(Millis(1), &stream[4..]);
    assert_eq!(detector.readiness(), Readiness::Ready);
}

fn assess(detector: &Detector, at: u64) -> Assessment {
    detector.assess(Millis(at))
}

#[test]
fn a_prompt_is_idle_only_after_it_stayed_for_the_stability_period() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(100), "❯".as_bytes());
    assert_eq!(
        assess(&detector, 149),
        Assessment {
            readiness: Readiness::Ready,
            idle: false,
            recheck_at: Some(Millis(150))
        }
    );
    assert_eq!(
        assess(&detector, 150),
        Assessment {
            readiness: Readiness::Ready,
            idle: true,
            recheck_at: None
        }
    );
}

#[test]
fn a_frame_without_the_prompt_restarts_the_stability_period() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), "❯".as_bytes());
    detector.feed(
        Millis(30),
        "\r\n✻ Thinking… (esc to interrupt)\r\n".as_bytes(),
    );
    assert_eq!(assess(&detector, 60).readiness, Readiness::Busy);
    detector.feed(Millis(70), "\x1b[2J\x1b[H❯".as_bytes());
    assert!(
        !assess(&detector, 100).idle,
        "seen at 70, stable only at 120"
    );
    assert!(assess(&detector, 120).idle);
}

#[test]
fn never_reports_a_stale_prompt_after_a_prompt_was_sent_decision_tail_reset() {
    // The reference (variant L) keeps its window across a prompt: a reply shorter than 50
    // visible characters leaves the old glyph in view and reads as idle at once.
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), "❯ ".as_bytes());
    assert!(assess(&detector, 100).idle);
    detector.prompt_sent(Millis(200), "fix the bug");
    detector.feed(Millis(210), b"ok");
    let after = assess(&detector, 5_000);
    assert_eq!(after.readiness, Readiness::NoPrompt);
    assert!(!after.idle);
}

#[test]
fn a_full_screen_agent_is_not_trusted_to_be_idle_until_it_showed_it_was_busy() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.prompt_sent(Millis(1_000), "fix the bug");
    // The input box is redrawn empty before the spinner appears.
    detector.feed(Millis(1_010), claude_box("❯").as_bytes());
    let guarded = assess(&detector, 1_500);
    assert_eq!(guarded.readiness, Readiness::Ready);
    assert!(!guarded.idle);
    assert_eq!(guarded.recheck_at, Some(Millis(1_000 + ECHO_GUARD_MS)));
    detector.feed(
        Millis(1_100),
        "✻ Thinking… (1s · esc to interrupt)\r\n".as_bytes(),
    );
    assert_eq!(assess(&detector, 1_100).readiness, Readiness::Busy);
    detector.feed(
        Millis(1_600),
        format!("\x1b[2J\x1b[HDone.\r\n{}", claude_box("❯")).as_bytes(),
    );
    assert!(!assess(&detector, 1_649).idle);
    assert!(
        assess(&detector, 1_650).idle,
        "busy was seen: the guard is lifted before it expires"
    );
}

#[test]
fn the_echo_guard_expires_even_if_the_agent_never_looked_busy() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.prompt_sent(Millis(0), "hi");
    detector.feed(Millis(10), "❯".as_bytes());
    assert!(!assess(&detector, ECHO_GUARD_MS - 1).idle);
    assert!(assess(&detector, ECHO_GUARD_MS).idle);
}

#[test]
fn the_echo_of_a_sent_prompt_is_swallowed() {
    let mut detector = Detector::new(Profile::Shell, Millis(0));
    detector.feed(Millis(0), b"user@host:~ $ ");
    detector.prompt_sent(Millis(100), "ls -la");
    detector.feed(Millis(110), b"ls -la\r\n");
    assert_eq!(detector.screen_text(), "", "the echo left nothing behind");
    detector.feed(Millis(120), b"total 0\r\nuser@host:~ $ ");
    assert_eq!(detector.screen_text(), "total 0\nuser@host:~ $ ");
    assert!(!assess(&detector, 169).idle);
    assert!(
        assess(&detector, 170).idle,
        "a shell's output lifts the guard"
    );
}

#[test]
fn blank_output_does_not_lift_the_echo_guard() {
    let config = DetectorConfig {
        quiet_period_ms: Some(100),
        ..DetectorConfig::for_profile(Profile::Generic)
    };
    let mut detector = Detector::with_config(config, Millis(0));
    detector.prompt_sent(Millis(0), "make");
    detector.feed(Millis(10), b"make");
    detector.feed(Millis(20), b"\r\n\x1b[?2004l");
    assert!(
        !assess(&detector, 500).idle,
        "only the echo, a line break and a mode so far"
    );
    assert!(assess(&detector, ECHO_GUARD_MS).idle);
    detector.prompt_sent(Millis(3_000), "make");
    detector.feed(Millis(3_010), b"cc -c main.c\r\n");
    assert!(
        assess(&detector, 3_110).idle,
        "visible output of its own lifts it"
    );
}

#[test]
fn cursor_and_colour_changes_are_not_activity_for_the_quiet_period() {
    let mut detector = Detector::new(Profile::Generic, Millis(0));
    let quiet = detector.config().quiet_period_ms.unwrap_or_default();
    detector.feed(Millis(0), b"done\r\n");
    detector.feed(Millis(quiet - 1), b"\x1b[?25l\x1b[1m\x1b[?25h\x1b[0m");
    assert!(
        assess(&detector, quiet).idle,
        "a blinking cursor is not output"
    );
}

#[test]
fn echo_after_the_guard_expired_is_ordinary_output() {
    let mut detector = Detector::new(Profile::Shell, Millis(0));
    detector.prompt_sent(Millis(0), "make");
    detector.feed(Millis(ECHO_GUARD_MS), b"make");
    assert_eq!(detector.screen_text(), "make");
}

#[test]
fn echo_does_not_count_as_activity_for_the_quiet_period() {
    let mut detector = Detector::new(Profile::Generic, Millis(0));
    detector.prompt_sent(Millis(1_000), "run it");
    detector.feed(Millis(1_500), b"run it\r\n");
    let quiet = detector.config().quiet_period_ms.unwrap_or_default();
    assert_eq!(
        assess(&detector, 1_000 + quiet - 1).recheck_at,
        Some(Millis(1_000 + quiet))
    );
    assert!(assess(&detector, 1_000 + quiet).idle);
}

#[test]
fn a_short_quiet_period_still_waits_for_the_echo_guard() {
    let config = DetectorConfig {
        quiet_period_ms: Some(100),
        ..DetectorConfig::for_profile(Profile::Claude)
    };
    let mut detector = Detector::with_config(config, Millis(0));
    detector.prompt_sent(Millis(0), "fix the bug");
    assert_eq!(
        assess(&detector, 100).recheck_at,
        Some(Millis(ECHO_GUARD_MS))
    );
    assert!(!assess(&detector, ECHO_GUARD_MS - 1).idle);
    assert!(assess(&detector, ECHO_GUARD_MS).idle);
}

#[test]
fn a_long_prompt_is_still_recognised_in_its_echo() {
    let prompt = "word ".repeat(4_000);
    let mut detector = Detector::new(Profile::Shell, Millis(0));
    detector.prompt_sent(Millis(0), &prompt);
    detector.feed(Millis(10), b"word word word\r\n");
    assert_eq!(detector.screen_text(), "", "swallowed as echo");
}

#[test]
fn a_generic_agent_is_idle_after_the_quiet_period() {
    let mut detector = Detector::new(Profile::Generic, Millis(0));
    let quiet = detector.config().quiet_period_ms.unwrap_or_default();
    detector.feed(Millis(100), b"thinking...\r\nanswer: 42\r\n");
    assert_eq!(
        assess(&detector, 100 + quiet - 1),
        Assessment {
            readiness: Readiness::NoPrompt,
            idle: false,
            recheck_at: Some(Millis(100 + quiet))
        }
    );
    assert!(assess(&detector, 100 + quiet).idle);
    detector.feed(Millis(200 + quiet), b"more");
    assert!(
        !assess(&detector, 200 + quiet).idle,
        "new output starts the quiet period over"
    );
}

#[test]
fn a_busy_or_starting_screen_is_never_idle_however_quiet() {
    for (text, readiness) in [
        ("esc to interrupt", Readiness::Busy),
        ("model: loading", Readiness::Starting),
    ] {
        let mut detector = Detector::new(Profile::Generic, Millis(0));
        detector.feed(Millis(0), text.as_bytes());
        assert_eq!(
            assess(&detector, 1_000_000),
            Assessment {
                readiness,
                idle: false,
                recheck_at: None
            }
        );
    }
}

#[test]
fn a_configured_quiet_period_also_serves_a_glyph_profile() {
    let config = DetectorConfig {
        quiet_period_ms: Some(1_000),
        ..DetectorConfig::for_profile(Profile::Codex)
    };
    let mut detector = Detector::with_config(config, Millis(0));
    detector.feed(Millis(0), b"some custom wrapper output");
    assert!(!assess(&detector, 999).idle);
    assert!(assess(&detector, 1_000).idle);
}

fn drain(detector: &mut Detector) -> Vec<TerminalQuery> {
    std::iter::from_fn(|| detector.poll_query()).collect()
}

#[test]
fn terminal_queries_are_reported_once_each_in_order() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(
        Millis(0),
        b"\x1b[6n\x1b[c\x1b[0c\x1b[>c\x1b[>0c\x1b[5n\xc2\x9b6n",
    );
    assert_eq!(
        drain(&mut detector),
        [
            TerminalQuery::CursorPosition,
            TerminalQuery::PrimaryAttributes,
            TerminalQuery::PrimaryAttributes,
            TerminalQuery::SecondaryAttributes,
            TerminalQuery::SecondaryAttributes,
            TerminalQuery::DeviceStatus,
            TerminalQuery::CursorPosition,
        ]
    );
    assert_eq!(drain(&mut detector), []);
}

#[test]
fn look_alike_sequences_are_not_queries() {
    let detector_queries = |input: &[u8]| {
        let mut detector = Detector::new(Profile::Claude, Millis(0));
        detector.feed(Millis(0), input);
        drain(&mut detector)
    };
    for input in [
        &b"\x1b[?6n"[..],
        b"\x1b[1c",
        b"\x1b[=c",
        b"\x1b[6 n",
        b"\x1b]6n\x07",
        b"6n",
        b"\x1b[16n",
    ] {
        assert_eq!(detector_queries(input), [], "{input:?}");
    }
}

#[test]
fn a_query_split_across_chunks_is_reported_once() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), b"\x1b");
    detector.feed(Millis(0), b"[");
    detector.feed(Millis(0), b"6");
    assert_eq!(drain(&mut detector), []);
    detector.feed(Millis(0), b"n");
    assert_eq!(drain(&mut detector), [TerminalQuery::CursorPosition]);
}

#[test]
fn queries_beyond_the_bound_are_dropped_and_counted() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), &b"\x1b[6n".repeat(QUERIES_PENDING_MAX + 8));
    assert_eq!(drain(&mut detector).len(), QUERIES_PENDING_MAX);
    assert_eq!(detector.queries_dropped(), 8);
}

#[test]
fn query_replies_are_what_terminals_send() {
    assert_eq!(TerminalQuery::CursorPosition.reply(), b"\x1b[1;1R");
    assert_eq!(TerminalQuery::DeviceStatus.reply(), b"\x1b[0n");
    assert!(
        TerminalQuery::PrimaryAttributes
            .reply()
            .starts_with(b"\x1b[?")
    );
    assert!(
        TerminalQuery::SecondaryAttributes
            .reply()
            .starts_with(b"\x1b[>")
    );
}

#[test]
fn bracketed_paste_follows_the_last_mode_switch_even_when_split() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    assert!(!detector.bracketed_paste());
    detector.feed(Millis(0), b"\x1b[?20");
    detector.feed(Millis(0), b"04h");
    assert!(detector.bracketed_paste());
    detector.feed(Millis(0), b"\x1b[?1049;2004l");
    assert!(!detector.bracketed_paste());
}

#[test]
fn reset_forgets_screen_modes_and_queries() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), "\x1b[?2004h\x1b[6n❯".as_bytes());
    detector.reset(Millis(10));
    assert_eq!(detector.readiness(), Readiness::NoPrompt);
    assert!(!detector.bracketed_paste());
    assert_eq!(drain(&mut detector), []);
}

#[test]
fn profiles_parse_from_their_names_and_nothing_else() {
    for profile in Profile::ALL {
        assert_eq!(profile.name().parse::<Profile>(), Ok(profile));
    }
    let error = "Claude".parse::<Profile>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown profile \"Claude\": expected one of claude, codex, gemini, shell, generic"
    );
}

/// Pieces that streams are built from: everything the parser treats specially, and the words
/// and glyphs the classifier looks for.
fn token() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"a",
        b"word ",
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b"\r\n",
        b"\x08",
        b"\x00",
        b"\x07",
        b"\x7f",
        "❯".as_bytes(),
        "›".as_bytes(),
        b">",
        b"$ ",
        b"[Y/n]",
        "│".as_bytes(),
        "─".as_bytes(),
        "日本".as_bytes(),
        "🦀".as_bytes(),
        "\u{a0}".as_bytes(),
        b"\xff",
        b"\xe2\x9d",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"esc to interrupt",
        b"Working (",
        b"model: loading",
        b"Do you trust",
        b"Starting MCP servers (",
        b"Starting MCP servers complete",
        b"-- INSERT --",
        b"> Type your message",
        b"\x1b[31m",
        b"\x1b[0m",
        b"\x1b[2K",
        b"\x1b[1A",
        b"\x1b[G",
        b"\x1b[5C",
        b"\x1b[12;40H",
        b"\x1b[2J",
        b"\x1b[?1049h",
        b"\x1b[?2004h",
        b"\x1b[?2004l",
        b"\x1b[38;2;255;100;0m",
        b"\x1b[2m",
        b"\x1b[22m",
        b"\x1b[m",
        b"\x1b[1;2m",
        b"\x1b[38;2;2;2;2m",
        b"\x1b[48;2;2;2;2;2m",
        b"\x1b[38;2;;;m",
        b"\x1b[38:2::2:2:2;2m",
        b"\x1b]0;title\x07",
        b"\x1b]8;;https://x\x1b\\",
        b"\x1bP1$r\x1b\\",
        b"\x1b_apc\x1b\\",
        b"\x1b7",
        b"\x1b(0",
        b"\x1bc",
        b"\x1b",
        b"\x1b[",
        b"\xc2\x9b",
        b"\xc2\x9c",
        b"\xc2\x9d",
        b"\xc2\x85",
        b"\x1b[6n",
        b"\x1b[c",
        b"\x1b[>c",
        b"\x18",
        b"\x1b[99999999999m",
    ];
    prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 1..6),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(token(), 0..120).prop_map(|tokens| tokens.concat())
}

/// Feeds `bytes` one at a time and records, after each, the readiness, the screen text and the
/// queries that became due.
fn byte_by_byte(profile: Profile, bytes: &[u8]) -> Vec<(Readiness, String, Vec<TerminalQuery>)> {
    let mut detector = Detector::new(profile, Millis(0));
    bytes
        .iter()
        .map(|&byte| {
            detector.feed(Millis(0), &[byte]);
            (
                detector.readiness(),
                detector.screen_text(),
                drain(&mut detector),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_split_gives_the_same_classifications_and_query_replies(
        bytes in stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        profile in proptest::sample::select(Profile::ALL.to_vec()),
    ) {
        let reference = byte_by_byte(profile, &bytes);
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut detector = Detector::new(profile, Millis(0));
        let mut fed = 0;
        let mut expected_queries = Vec::new();
        for cut in cuts {
            detector.feed(Millis(0), &bytes[fed..cut]);
            for (_, _, queries) in &reference[fed..cut] {
                expected_queries.extend_from_slice(queries);
            }
            fed = cut;
            prop_assert_eq!(drain(&mut detector), std::mem::take(&mut expected_queries));
            if cut > 0 {
                let (readiness, text, _) = &reference[cut - 1];
                prop_assert_eq!(detector.readiness(), *readiness, "at offset {}", cut);
                prop_assert_eq!(&detector.screen_text(), text, "at offset {}", cut);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_grow_memory_past_the_bounds(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4_096), 0..24),
        profile in proptest::sample::select(Profile::ALL.to_vec()),
    ) {
        let mut detector = Detector::new(profile, Millis(0));
        for (index, chunk) in chunks.iter().enumerate() {
            let now = Millis(index as u64 * 10);
            detector.feed(now, chunk);
            let _ = detector.assess(now);
            prop_assert!(detector.screen.within_bounds());
            prop_assert!(detector.screen.queries.len() <= QUERIES_PENDING_MAX);
        }
    }
}

#[test]
fn a_long_stream_keeps_the_window_within_its_bound() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    let frame = format!(
        "\x1b[2K\x1b[1A{}\r\n{}",
        "日本語のテキスト ".repeat(40),
        claude_box("❯")
    );
    for step in 0..2_000 {
        detector.feed(Millis(step), frame.as_bytes());
        assert!(detector.screen.within_bounds());
    }
    assert_eq!(detector.readiness(), Readiness::Ready);
}

#[test]
fn plain_text_keeps_lines_and_drops_escapes_and_erased_lines() {
    let output =
        "\x1b[1mBuilding\x1b[0m\r\n\x1b[32m✓\x1b[0m 12 tests\r\nspinner\x1b[2K\x1b[Gdone\x08E\r\n";
    assert_eq!(
        super::plain_text(output.as_bytes()),
        "Building\n✓ 12 tests\ndonE\n"
    );
    assert_eq!(super::plain_text(b"old\x1b[2Jnew"), "new");
}

#[test]
fn a_footer_redrawn_in_place_is_replaced_on_the_grid() {
    let stream = "❯ \r\nesc to interrupt\r\n\x1b[2A\x1b[2C\x1b[K\r\n\x1b[K? for shortcuts";
    let detector = fed(Profile::Claude, stream);
    assert_eq!(detector.screen_text(), "❯\n? for shortcuts");
    assert_eq!(detector.readiness(), Readiness::Ready);
    // The line model, which does not follow the cursor, keeps the stale footer.
    assert_eq!(fed(Profile::Generic, stream).readiness(), Readiness::Busy);
}

#[test]
fn history_scrolled_away_in_a_scroll_region_leaves_the_screen() {
    let mut detector = Detector::new(Profile::Codex, Millis(0));
    detector.resize(20, 4);
    // The input line on the last row; rows 1 to 3 scroll above it.
    detector.feed(
        Millis(0),
        "\x1b[4;1H›\x1b[1;3r\x1b[3;1HWorking (1s • esc to interrupt)".as_bytes(),
    );
    assert_eq!(detector.readiness(), Readiness::Busy);
    detector.feed(Millis(10), b"\r\n\r\n\r\n");
    assert_eq!(detector.screen_text(), "\n\n\n›");
    assert_eq!(detector.readiness(), Readiness::Ready);
}

#[test]
fn the_grid_follows_a_resize() {
    let stream = "0123456789❯";
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    assert_eq!(detector.size(), Some((120, 40)));
    detector.resize(10, 5);
    detector.feed(Millis(0), stream.as_bytes());
    assert_eq!(detector.screen_text(), "0123456789\n❯");
    assert_eq!(detector.readiness(), Readiness::Ready);
    assert_eq!(
        fed(Profile::Claude, stream).readiness(),
        Readiness::NoPrompt
    );
    detector.reset(Millis(10));
    assert_eq!(detector.size(), Some((10, 5)), "a respawn keeps the size");
    assert_eq!(Detector::new(Profile::Shell, Millis(0)).size(), None);
}

#[test]
fn an_unchanged_grid_keeps_its_reading_until_a_prompt_is_sent_or_it_is_resized() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), "❯\x1b[3;1Hesc to interrupt\x1b[H".as_bytes());
    assert_eq!(detector.readiness(), Readiness::Busy);
    // Cursor motion and colours change no cell: the reading stands.
    detector.feed(Millis(1), b"\x1b[H\x1b[1m");
    assert_eq!(detector.readiness(), Readiness::Busy);
    // A resize to two rows cuts the busy line off: the next chunk reads the prompt alone,
    // though it changes no cell.
    detector.resize(120, 2);
    detector.feed(Millis(2), b"\x1b[H");
    assert_eq!(detector.readiness(), Readiness::Ready);
    // A prompt sent forgets the reading; the prompt still on the grid is read again.
    detector.prompt_sent(Millis(3), "fix the bug");
    assert_eq!(detector.readiness(), Readiness::NoPrompt);
    detector.feed(Millis(4), b"\x1b[H");
    assert_eq!(detector.readiness(), Readiness::Ready);
}

#[test]
fn a_full_reset_is_a_change_of_the_grid_even_when_as_many_cells_change_after_it() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    // Each chunk changes the cells once: the prompt, then a reset and one write.
    detector.feed(Millis(0), "❯".as_bytes());
    assert_eq!(detector.readiness(), Readiness::Ready);
    detector.feed(Millis(1), b"\x1bcx");
    assert_eq!(detector.readiness(), Readiness::NoPrompt);
    assert_eq!(detector.screen_text(), "x");
}

#[test]
fn wide_characters_take_two_cells_on_the_grid() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.resize(4, 2);
    detector.feed(Millis(0), "ab漢x".as_bytes());
    assert_eq!(detector.screen_text(), "ab漢\nx");
}

#[test]
fn a_faint_placeholder_after_the_prompt_is_an_empty_input_line() {
    let faint = fed(
        Profile::Codex,
        "\x1b[1m›\x1b[22m \x1b[2mAsk Codex to do anything",
    );
    assert_eq!(faint.readiness(), Readiness::Ready);
    assert_eq!(faint.screen_text(), "› Ask Codex to do anything");
    let plain = fed(Profile::Codex, "› Ask Codex to do anything");
    assert_eq!(plain.readiness(), Readiness::NoPrompt);
    // Faint text inside a busy line still reads as busy.
    let busy = fed(
        Profile::Codex,
        "\x1b[2mWorking (0s • \x1b[22m\x1b[1mesc\x1b[22m\x1b[2m to interrupt)\r\n\x1b[22m›",
    );
    assert_eq!(busy.readiness(), Readiness::Busy);
}

#[test]
fn a_full_screen_agents_prompt_is_not_trusted_at_once_after_a_prompt_is_sent() {
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), "❯".as_bytes());
    assert!(assess(&detector, 100).idle);
    detector.prompt_sent(Millis(1_000), "fix the bug");
    assert_eq!(
        assess(&detector, 1_000),
        Assessment {
            readiness: Readiness::NoPrompt,
            idle: false,
            recheck_at: None
        }
    );
}

#[test]
fn an_agents_osc_state_report_is_taken_once_whatever_the_chunking() {
    use crate::core::state::{AgentState, Attention};
    let stream = "\x1b]0;⠋ repo\x07\x1b]7501;state=working:app=codex\x1b\\text\x1b]7501;state=blocked:app=codex:kind=permission\u{9c}more";
    let whole = {
        let mut detector = Detector::new(Profile::Codex, Millis(0));
        detector.feed(Millis(0), stream.as_bytes());
        detector.take_osc()
    };
    assert_eq!(
        whole,
        Some(AgentState::NeedsAttention(Attention::Permission))
    );
    let mut detector = Detector::new(Profile::Codex, Millis(0));
    let mut last = None;
    for byte in stream.as_bytes() {
        detector.feed(Millis(0), std::slice::from_ref(byte));
        last = detector.take_osc().or(last);
    }
    assert_eq!(last, whole, "byte by byte");
    assert_eq!(detector.take_osc(), None, "taken once");
    assert_eq!(detector.screen_text().trim(), "textmore");
}

#[test]
fn a_cancelled_or_unfinished_osc_string_reports_nothing() {
    for stream in [
        "\x1b]7501;state=working\x18after",
        "\x1b]7501;state=working",
        "\x1b]7501;state=wor",
    ] {
        let mut detector = Detector::new(Profile::Codex, Millis(0));
        detector.feed(Millis(0), stream.as_bytes());
        assert_eq!(detector.take_osc(), None, "{stream:?}");
    }
}

#[test]
fn a_screen_asking_its_human_shows_the_prompt_was_taken() {
    // Claude Code answering at once with a tool call shows its permission prompt with no busy
    // frame between: an Enter pressed again would answer "1. Yes" (seen with the real CLI).
    let mut detector = Detector::new(Profile::Claude, Millis(0));
    detector.feed(Millis(0), "❯ ".as_bytes());
    detector.prompt_sent(Millis(100), "Create hello.txt");
    assert!(!detector.prompt_taken());
    detector.feed(
        Millis(300),
        "\x1b[2J\x1b[H Do you want to proceed?\r\n ❯ 1. Yes\r\n   2. No\r\n Esc to cancel · Tab to amend"
            .as_bytes(),
    );
    assert!(detector.prompt_taken());
}

#[test]
fn an_osc_title_filling_the_buffer_keeps_its_bytes_whatever_ends_it() {
    use crate::core::state::{AgentState, Attention};
    let title = format!(
        "0;{}Action Required",
        "x".repeat(super::vt::OSC_BYTES_MAX - 17)
    );
    assert_eq!(title.len(), super::vt::OSC_BYTES_MAX);
    for end in ["\x07", "\x1b\\", "\u{9c}"] {
        let mut detector = Detector::new(Profile::Codex, Millis(0));
        detector.feed(Millis(0), format!("\x1b]{title}{end}").as_bytes());
        assert_eq!(
            detector.take_osc(),
            Some(AgentState::NeedsAttention(Attention::Permission)),
            "ended by {end:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The parser hands runs it found all ASCII to `Sink::ascii_text` (a fast path): a screen
    /// takes them as it takes the same text through `Sink::text`, in either screen model and
    /// whether or not the echo guard records the chunk's text.
    #[test]
    fn ascii_text_lands_on_the_screen_as_text_does(
        before in stream(),
        text in "[ -~]{0,300}",
        profile in proptest::sample::select(Profile::ALL.to_vec()),
        recording in any::<bool>(),
    ) {
        use super::screen::Screen;
        use super::vt::{Parser, Sink};
        let (mut fast, mut general) = (Screen::new(profile), Screen::new(profile));
        Parser::default().advance(&before, &mut fast);
        Parser::default().advance(&before, &mut general);
        let (fast_mark, general_mark) = (fast.mark(recording), general.mark(recording));
        fast.ascii_text(text.as_bytes());
        general.text(text.as_bytes());
        prop_assert_eq!(fast.text_now(), general.text_now());
        prop_assert_eq!(fast.since(fast_mark), general.since(general_mark));
    }
}
