//! The demo agent's terminal: raw mode while it runs (it echoes prompts itself, as the agents it
//! imitates do), its input read by a thread into a bounded channel, its output written whole.

use std::io::{Read as _, Write as _};

use anyhow::Context as _;
use tokio::sync::mpsc;

/// Chunks of input read ahead of the agent.
pub const INPUT_CHUNKS_MAX: usize = 64;
/// Input held while no line ended: past it, what is held is taken as a line.
pub const INPUT_BYTES_MAX: usize = 1 << 20;
/// Ctrl-C, in raw mode a byte like any other: the agent ends with status 130.
const INTERRUPT: u8 = 0x03;

/// What the input gave.
pub enum Input {
    /// A line (without its end).
    Line(Vec<u8>),
    /// The terminal closed (0) or Ctrl-C was typed (130).
    Closed(i32),
}

/// The process's terminal (or its standard streams, when they are no terminal).
pub struct Terminal {
    chunks: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    closed: Option<i32>,
    _raw: Option<crate::adapters::tty::RawMode>,
}

impl Terminal {
    /// Puts the terminal in raw mode (when standard input is one) and starts reading it.
    ///
    /// # Errors
    /// The terminal's mode could not be set.
    pub fn open() -> anyhow::Result<Self> {
        let raw =
            crate::adapters::tty::RawMode::enter().context("setting the terminal to raw mode")?;
        let (tx, chunks) = mpsc::channel(INPUT_CHUNKS_MAX);
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Terminal {
            chunks,
            pending: Vec::new(),
            closed: None,
            _raw: raw,
        })
    }

    /// Writes `bytes` and flushes.
    ///
    /// # Errors
    /// The terminal is gone.
    pub async fn print(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .context("writing to the terminal")
    }

    /// Writes `text` and a line end.
    ///
    /// # Errors
    /// The terminal is gone.
    pub async fn line(&mut self, text: &str) -> anyhow::Result<()> {
        self.print(format!("{text}\r\n").as_bytes()).await
    }

    /// The next submitted line (ended by Enter: a carriage return, or a newline when input is
    /// no terminal).
    pub async fn submitted(&mut self) -> Input {
        let found = self
            .until(|fresh| fresh.iter().position(|&b| b == b'\r' || b == b'\n'))
            .await;
        match found {
            Input::Line(mut line) => {
                line.pop();
                // A newline right after the carriage return belongs to the same Enter.
                if self.pending.first() == Some(&b'\n') {
                    self.pending.remove(0);
                }
                Input::Line(line)
            }
            closed => closed,
        }
    }

    /// The input up to where `found` says what it looks for ends (included).
    pub async fn until(&mut self, found: fn(&[u8]) -> Option<usize>) -> Input {
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == INTERRUPT) {
                self.pending.truncate(at);
                self.closed = Some(130);
            }
            if let Some(end) = found(&self.pending) {
                let end = (end + 1).min(self.pending.len());
                return Input::Line(self.pending.drain(..end).collect());
            }
            if self.pending.len() >= INPUT_BYTES_MAX {
                return Input::Line(std::mem::take(&mut self.pending));
            }
            if let Some(code) = self.closed {
                return Input::Closed(code);
            }
            match self.chunks.recv().await {
                Some(chunk) => self.pending.extend_from_slice(&chunk),
                None => self.closed = Some(0),
            }
        }
    }

    /// Waits until the terminal closes or Ctrl-C is typed, ignoring input: the exit code.
    pub async fn closed(&mut self) -> i32 {
        loop {
            self.pending.clear();
            if let Input::Closed(code) = self.until(|_| None).await {
                return code;
            }
        }
    }
}
