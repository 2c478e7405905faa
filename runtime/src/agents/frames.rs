//! Screens that scripted agents print (the simulator's, and `baton demo-agent`): for each agent
//! kind, a start-up screen, a trust dialog, a busy frame, the ready prompt and a permission
//! prompt (in each agent's real words, see the `*-real-*permission*` and `*-approval-*`
//! recordings), each a whole frame
//! (it clears the screen first), so that a script says `print = "busy"` instead of spelling out
//! escape sequences. The test below holds each frame to the verdict the prompt detector gives it,
//! so scripts and detector agree.

use crate::core::detector::Profile;

/// A named frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// The agent is starting (its model or MCP servers are loading).
    Startup,
    /// The agent asks whether to trust the folder.
    TrustDialog,
    /// The agent is working.
    Busy,
    /// The agent waits at its prompt.
    Ready,
    /// The agent asks permission to run a command (a human must answer).
    Permission,
}

impl Frame {
    /// Every frame.
    pub const ALL: [Frame; 5] = [
        Frame::Startup,
        Frame::TrustDialog,
        Frame::Busy,
        Frame::Ready,
        Frame::Permission,
    ];

    /// The frame called `name` in a script (`startup`, `trust_dialog`, `busy`, `ready`,
    /// `permission`).
    #[must_use]
    pub fn named(name: &str) -> Option<Frame> {
        Frame::ALL.into_iter().find(|frame| frame.name() == name)
    }

    /// Its name in scripts.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Frame::Startup => "startup",
            Frame::TrustDialog => "trust_dialog",
            Frame::Busy => "busy",
            Frame::Ready => "ready",
            Frame::Permission => "permission",
        }
    }
}

/// Clears the screen and homes the cursor: what follows is a new frame.
const NEW_FRAME: &str = "\x1b[2J\x1b[H";

/// The bytes an agent of `profile` prints for `frame` (the generic and shell profiles print the
/// Claude-style frames).
#[must_use]
pub fn bytes(profile: Profile, frame: Frame) -> Vec<u8> {
    let body = match (profile, frame) {
        (Profile::Codex, Frame::Startup) => "  Booting MCP server: baton\r\n",
        (Profile::Codex, Frame::TrustDialog) => {
            "  Do you trust the contents of this directory?\r\n  › 1. Yes, continue\r\n    2. No, quit\r\n"
        }
        (Profile::Codex, Frame::Busy) => "• Working (4s • esc to interrupt)\r\n",
        (Profile::Codex, Frame::Ready) => "• Done: the change is committed.\r\n\r\n› ",
        (Profile::Codex, Frame::Permission) => {
            "  Would you like to run the following command?\r\n\r\n  $ touch hello.txt\r\n\r\n› 1. Yes, proceed (y)\r\n  2. No, and tell Codex what to do differently (esc)\r\n\r\n  Press enter to confirm or esc to cancel\r\n"
        }
        (Profile::Gemini, Frame::Startup) => "  model: loading\r\n",
        (Profile::Gemini, Frame::TrustDialog) => {
            "  Do you trust this folder?\r\n  ● 1. Trust folder\r\n    2. Don't trust\r\n"
        }
        (Profile::Gemini, Frame::Busy) => "⠋ Thinking (esc to cancel, 4s)\r\n",
        (Profile::Gemini, Frame::Ready) => "✦ Done: the change is committed.\r\n\r\n> ",
        (Profile::Gemini, Frame::Permission) => {
            "│ ? Shell  touch hello.txt\r\n│ Allow execution of [Shell]?\r\n│ ● 1. Allow once\r\n│   2. Allow for this session\r\n│   3. No, suggest changes (esc)\r\n"
        }
        (_, Frame::Startup) => "✻ Welcome\r\n\r\n  Starting MCP servers (0/1)\r\n",
        (_, Frame::TrustDialog) => {
            "  Do you trust the files in this folder?\r\n  ❯ 1. Yes, proceed\r\n    2. No, exit\r\n"
        }
        (_, Frame::Busy) => "✻ Working… (4s · esc to interrupt)\r\n",
        (_, Frame::Ready) => "⏺ Done: the change is committed.\r\n\r\n❯ ",
        (_, Frame::Permission) => {
            " Bash command\r\n\r\n   touch hello.txt\r\n\r\n Do you want to proceed?\r\n ❯ 1. Yes\r\n   2. No\r\n\r\n Esc to cancel · Tab to amend\r\n"
        }
    };
    format!("{NEW_FRAME}{body}").into_bytes()
}

#[cfg(test)]
mod tests {
    use crate::core::detector::{Detector, Profile, Readiness};
    use crate::core::state::Attention;
    use crate::core::time::Millis;

    use super::{Frame, bytes};

    #[test]
    fn every_frame_reads_as_its_name_says_for_every_agent() {
        for profile in [Profile::Claude, Profile::Codex, Profile::Gemini] {
            for frame in Frame::ALL {
                let mut detector = Detector::new(profile, Millis(0));
                detector.feed(Millis(0), &bytes(profile, Frame::Busy));
                detector.feed(Millis(10), &bytes(profile, frame));
                let expected = match frame {
                    Frame::Startup => Readiness::Starting,
                    Frame::TrustDialog => Readiness::Attention(Attention::Dialog),
                    Frame::Busy => Readiness::Busy,
                    Frame::Ready => Readiness::Ready,
                    Frame::Permission => Readiness::Attention(Attention::Permission),
                };
                let assessment = detector.assess(Millis(5_000));
                assert_eq!(assessment.readiness, expected, "{profile:?} {frame:?}");
                assert_eq!(
                    assessment.idle,
                    frame == Frame::Ready,
                    "{profile:?} {frame:?}"
                );
            }
        }
    }

    #[test]
    fn frames_are_found_by_name() {
        for frame in Frame::ALL {
            assert_eq!(Frame::named(frame.name()), Some(frame));
        }
        assert_eq!(Frame::named("idle"), None);
    }
}
