//! One writer per terminal: what the engine types or writes into an agent's terminal (a typed
//! prompt, an answer to the agent's terminal query, a viewer's keystrokes, a resize) waits in
//! that terminal's queue and reaches it in the order it was asked for. A prompt is typed whole,
//! text, paste delay and Enter, before the next input goes: a viewer's keystrokes never land
//! inside it, and an answer to a terminal query never overtakes the text before it.
//!
//! Ending an agent does not queue: a kill goes to the terminal host at once.
//!
//! Bounds: [`TERMINAL_INPUTS_MAX`] inputs wait per terminal; a full queue refuses the next
//! input (its caller says so), it never waits.
//!
//! A prompt is typed as a person pastes one ([`type_prompt`]): wrapped for bracketed paste if
//! the agent asked for it, then Enter after a pause that grows with the prompt
//! ([`enter_delay_ms`]).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::core::ids::AgentId;
use crate::ports::{PtyError, PtyHost};

/// Inputs waiting for one terminal.
pub(crate) const TERMINAL_INPUTS_MAX: usize = 64;

/// An input for a terminal.
pub(crate) enum Input {
    /// Bytes, as they are; told how the write went, if asked.
    Write(Vec<u8>, Option<oneshot::Sender<Result<(), PtyError>>>),
    /// A new size.
    Resize {
        cols: u16,
        rows: u16,
        reply: oneshot::Sender<Result<(), PtyError>>,
    },
    /// A prompt typed as a person pastes one ([`type_prompt`]).
    Prompt {
        text: String,
        bracketed: bool,
        done: oneshot::Sender<Result<(), TypingFailed>>,
    },
}

/// The way into one terminal's writer. Dropping every clone ends the writer once it has
/// written what was queued.
#[derive(Clone, Debug)]
pub(crate) struct Writer(mpsc::Sender<Input>);

impl Writer {
    /// Starts the writer of `agent`'s terminal on `pty`.
    pub(crate) fn start(pty: Arc<dyn PtyHost>, agent: AgentId) -> Self {
        let (inputs, mut queue) = mpsc::channel(TERMINAL_INPUTS_MAX);
        tokio::spawn(async move {
            while let Some(input) = queue.recv().await {
                match input {
                    Input::Write(bytes, reply) => {
                        let result = pty.write(agent, &bytes).await;
                        if let Some(reply) = reply {
                            let _ = reply.send(result);
                        }
                    }
                    Input::Resize { cols, rows, reply } => {
                        let _ = reply.send(pty.resize(agent, cols, rows).await);
                    }
                    Input::Prompt {
                        text,
                        bracketed,
                        done,
                    } => {
                        let typed = type_prompt(&*pty, agent, &text, bracketed).await;
                        let _ = done.send(typed);
                    }
                }
            }
        });
        Writer(inputs)
    }

    /// Queues `input`, or gives it back: the queue is full ([`TERMINAL_INPUTS_MAX`]) or the
    /// writer has ended.
    pub(crate) fn queue(&self, input: Input) -> Result<(), Input> {
        self.0.try_send(input).map_err(|error| match error {
            mpsc::error::TrySendError::Full(input) | mpsc::error::TrySendError::Closed(input) => {
                input
            }
        })
    }
}

/// Shortest pause between typing a prompt and pressing Enter, so the agent takes the text as
/// typed, not as a pasted line it may not submit (see [`enter_delay_ms`]).
pub const PROMPT_ENTER_DELAY_MS: u64 = 50;
/// The pause grows by this much per line of the prompt: an agent takes longer over a longer
/// paste, and an Enter that comes while it still takes the paste in is lost (seen with Claude
/// Code on a loaded machine: the assignment stayed in its input box).
pub const PROMPT_ENTER_DELAY_PER_LINE_MS: u64 = 15;
/// Longest pause before Enter.
pub const PROMPT_ENTER_DELAY_MS_MAX: u64 = 500;

/// How typing a prompt failed.
#[derive(Debug)]
pub(crate) enum TypingFailed {
    /// The text could not be written (nothing reached the agent).
    Text(crate::ports::PtyError),
    /// The text was written; the Enter could not be.
    Enter(crate::ports::PtyError),
    /// Nothing was written: the terminal's writer could not take the prompt (its queue full,
    /// or ended).
    Gone,
}

/// Types `text` into `agent` as a person pastes a prompt: wrapped for bracketed paste if the
/// agent asked for it, then, after [`enter_delay_ms`], Enter. The engine types every prompt so
/// (its sub-tasks', a coordinator's own agent's first), through the terminal's writer.
pub(crate) async fn type_prompt(
    pty: &dyn crate::ports::PtyHost,
    agent: AgentId,
    text: &str,
    bracketed: bool,
) -> Result<(), TypingFailed> {
    let body = if bracketed {
        format!("\x1b[200~{text}\x1b[201~")
    } else {
        text.to_owned()
    };
    pty.write(agent, body.as_bytes())
        .await
        .map_err(TypingFailed::Text)?;
    crate::time::sleep(std::time::Duration::from_millis(enter_delay_ms(text))).await;
    pty.write(agent, b"\r").await.map_err(TypingFailed::Enter)
}

/// The pause before Enter after typing `prompt`: [`PROMPT_ENTER_DELAY_PER_LINE_MS`] per line,
/// from [`PROMPT_ENTER_DELAY_MS`] to [`PROMPT_ENTER_DELAY_MS_MAX`] (the reference's paste
/// delay).
#[must_use]
pub fn enter_delay_ms(prompt: &str) -> u64 {
    let lines = prompt.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
    (lines * PROMPT_ENTER_DELAY_PER_LINE_MS).clamp(PROMPT_ENTER_DELAY_MS, PROMPT_ENTER_DELAY_MS_MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use super::{Input, TERMINAL_INPUTS_MAX, Writer};
    use crate::core::ids::AgentId;
    use crate::ports::fakes::FakePty;
    use crate::ports::{PtyHost, SpawnSpec};

    async fn agent(pty: &Arc<FakePty>) -> AgentId {
        let agent = AgentId::from_random([7; 16]);
        let spec = SpawnSpec {
            agent,
            argv: vec!["agent".into()],
            env: Vec::new(),
            cwd: "/repo".into(),
            cols: 80,
            rows: 24,
        };
        pty.spawn(spec).await.unwrap();
        agent
    }

    #[tokio::test(start_paused = true)]
    async fn inputs_reach_the_terminal_in_order_and_nothing_lands_inside_a_prompt() {
        let pty = Arc::new(FakePty::default());
        let agent = agent(&pty).await;
        let writer = Writer::start(pty.clone(), agent);
        let (done, typed) = oneshot::channel();
        let prompt = Input::Prompt {
            text: "fix it".into(),
            bracketed: false,
            done,
        };
        assert!(writer.queue(prompt).is_ok());
        let (reply, written) = oneshot::channel();
        assert!(
            writer
                .queue(Input::Write(b"x".to_vec(), Some(reply)))
                .is_ok()
        );
        typed.await.unwrap().unwrap();
        written.await.unwrap().unwrap();
        assert_eq!(pty.input(agent), b"fix it\rx");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_gives_the_input_back() {
        let pty = Arc::new(FakePty::default());
        let agent = agent(&pty).await;
        let writer = Writer::start(pty.clone(), agent);
        // The writer takes the first input at once and types it for its paste delay; the
        // queue fills behind it.
        let (done, _typed) = oneshot::channel();
        let prompt = Input::Prompt {
            text: "long".into(),
            bracketed: false,
            done,
        };
        assert!(writer.queue(prompt).is_ok());
        tokio::task::yield_now().await;
        for _ in 0..TERMINAL_INPUTS_MAX {
            assert!(writer.queue(Input::Write(b"k".to_vec(), None)).is_ok());
        }
        assert!(writer.queue(Input::Write(b"k".to_vec(), None)).is_err());
    }
}
