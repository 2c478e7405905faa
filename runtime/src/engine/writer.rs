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

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::TypingFailed;
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
    /// A prompt typed as a person pastes one ([`super::type_prompt`]).
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
                        let typed = super::type_prompt(&*pty, agent, &text, bracketed).await;
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
