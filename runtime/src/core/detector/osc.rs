//! What the OSC strings agents print say about their state: evidence for `core::state`
//! beside the screen.
//!
//! - Codex CLI reports its state itself (`OSC 7501`): `state=working`, `state=blocked` (with
//!   `kind=permission` for an approval), `state=done` at the end of a turn, `state=idle` at its
//!   prompt, `state=clear` as it exits.
//! - Titles (`OSC 0` and `OSC 2`): Codex CLI and Gemini CLI put `Action Required` in the title
//!   while an approval waits; Gemini CLI's title starts with `◇` and says `Ready` at its prompt,
//!   with `✦` and `Working` while it works. Other titles (spinners, program names) say nothing:
//!   Claude Code's title glyph, for one, does not follow its permission prompts.
//! - Desktop notifications (`OSC 9`, `OSC 777;notify`) asking for an approval.
//!
//! Anything else is no evidence (`None`).

use crate::core::state::{AgentState, Attention};

/// The state an OSC string's payload (without `ESC ]` and its terminator) reports, if any.
#[must_use]
pub(crate) fn state(payload: &[u8]) -> Option<AgentState> {
    let (number, text) = split_number(payload)?;
    match number {
        7501 => agent_state_report(text),
        0 | 2 => title(text),
        9 | 777 => notification(text),
        _ => None,
    }
}

fn split_number(payload: &[u8]) -> Option<(u32, &[u8])> {
    let digits = payload.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 || payload.get(digits) != Some(&b';') {
        return None;
    }
    let number = std::str::from_utf8(&payload[..digits]).ok()?.parse().ok()?;
    Some((number, &payload[digits + 1..]))
}

/// `state=<s>` followed by `:`-separated fields (`app=codex`, `kind=permission`).
fn agent_state_report(text: &[u8]) -> Option<AgentState> {
    let mut fields = text.split(|&b| b == b':');
    let state = fields.next()?.strip_prefix(b"state=")?;
    let permission = fields.any(|field| field == b"kind=permission");
    match state {
        b"working" => Some(AgentState::Working),
        b"blocked" if permission => Some(AgentState::NeedsAttention(Attention::Permission)),
        b"blocked" => Some(AgentState::NeedsAttention(Attention::Question)),
        b"done" | b"idle" => Some(AgentState::WaitingForInput),
        _ => None,
    }
}

fn title(text: &[u8]) -> Option<AgentState> {
    if contains(text, b"Action Required") {
        return Some(AgentState::NeedsAttention(Attention::Permission));
    }
    let text = trim_start(text);
    if let Some(rest) = text.strip_prefix("◇".as_bytes()) {
        return starts_with_word(rest, b"Ready").then_some(AgentState::WaitingForInput);
    }
    if let Some(rest) = text.strip_prefix("✦".as_bytes()) {
        return starts_with_word(rest, b"Working").then_some(AgentState::Working);
    }
    None
}

fn notification(text: &[u8]) -> Option<AgentState> {
    let lower = text.to_ascii_lowercase();
    (contains(&lower, b"approval requested") || contains(&lower, b"approval required"))
        .then_some(AgentState::NeedsAttention(Attention::Permission))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

fn trim_start(text: &[u8]) -> &[u8] {
    let skip = text.iter().take_while(|&&b| b == b' ').count();
    &text[skip..]
}

fn starts_with_word(text: &[u8], word: &[u8]) -> bool {
    trim_start(text).starts_with(word)
}

#[cfg(test)]
mod tests {
    use super::state;
    use crate::core::state::{AgentState, Attention};

    fn check(payload: &str, expected: Option<AgentState>) {
        assert_eq!(state(payload.as_bytes()), expected, "{payload:?}");
    }

    #[test]
    fn codex_reports_its_own_state() {
        check("7501;state=working:app=codex", Some(AgentState::Working));
        check(
            "7501;state=blocked:app=codex:kind=permission",
            Some(AgentState::NeedsAttention(Attention::Permission)),
        );
        check(
            "7501;state=blocked:app=codex",
            Some(AgentState::NeedsAttention(Attention::Question)),
        );
        check(
            "7501;state=done:app=codex",
            Some(AgentState::WaitingForInput),
        );
        check(
            "7501;state=idle:app=codex",
            Some(AgentState::WaitingForInput),
        );
        check("7501;state=clear", None);
        check("7501;?", None);
    }

    #[test]
    fn titles_say_something_only_in_the_words_agents_use() {
        let approval = Some(AgentState::NeedsAttention(Attention::Permission));
        check(
            "0;[ ! ] Action Required | Create hello.txt | repo",
            approval,
        );
        check("0;✋  Action Required (repo)", approval);
        check("0;◇  Ready (repo)", Some(AgentState::WaitingForInput));
        check("2;✦  Working… (repo)", Some(AgentState::Working));
        check("0;✳ Claude Code", None);
        check("0;⠂ Claude Code", None);
        check("0;⠋ Create hello.txt | repo", None);
        check("0;◇ Readme.md", None);
    }

    #[test]
    fn approval_notifications_ask_for_a_human() {
        let approval = Some(AgentState::NeedsAttention(Attention::Permission));
        check("9;Approval requested: touch hello.txt", approval);
        check(
            "777;notify;Gemini CLI needs your attention;Approval required | repo",
            approval,
        );
        check("9;4;1;50", None);
        check("777;notify;Codex;Done.", None);
    }

    #[test]
    fn malformed_payloads_are_no_evidence() {
        for payload in [
            "",
            ";",
            "x;state=working",
            "123456;state=working",
            "7501",
            "7501state=working",
        ] {
            check(payload, None);
        }
    }
}
