//! Where the parser's events land: the screen model of the profile (the grid of a full-screen
//! agent, with the text a chunk wrote while the echo guard is up; the text window of a line
//! program), the bounded queue of terminal queries, bracketed paste and the last OSC report.
//! Marks taken before a chunk tell the detector what the chunk changed.

use std::collections::VecDeque;

use super::classify::Frame;
use super::{
    Profile, QUERIES_PENDING_MAX, SCREEN_COLS_DEFAULT, SCREEN_ROWS_DEFAULT, TEXT_WINDOW_BYTES,
    TerminalQuery, grid, osc, vt, window,
};
use crate::core::state::AgentState;

/// The parser's events land here: the screen model, the query queue and the terminal modes.
#[derive(Clone, Debug)]
pub(super) struct Screen {
    pub(super) model: Model,
    pub(super) queries: VecDeque<TerminalQuery>,
    pub(super) queries_dropped: u64,
    pub(super) bracketed_paste: bool,
    /// The state the last OSC string that said anything reported, not yet taken.
    pub(super) osc: Option<AgentState>,
}

/// How the screen is kept (see the module documentation).
#[derive(Clone, Debug)]
pub(super) enum Model {
    Lines(window::TextWindow),
    Grid {
        /// Boxed: it is most of the screen's size, and the line model has none of it.
        grid: Box<grid::Grid>,
        /// The text written since the last [`Screen::mark`] (at most [`TEXT_WINDOW_BYTES`]),
        /// a space for each other operation: what the echo guard compares with the prompt.
        written: Vec<u8>,
        /// Whether `written` is kept for this chunk (only while the echo guard is up).
        recording: bool,
    },
}

/// A point in the screen's history, to tell what a chunk changed.
#[derive(Clone, Copy, Debug)]
pub(super) enum Mark {
    Lines(window::Mark),
    Grid(u64),
}

impl Screen {
    pub(super) fn new(profile: Profile) -> Self {
        let model = if profile.full_screen() {
            Model::Grid {
                grid: Box::new(grid::Grid::new(SCREEN_COLS_DEFAULT, SCREEN_ROWS_DEFAULT)),
                written: Vec::new(),
                recording: false,
            }
        } else {
            Model::Lines(window::TextWindow::default())
        };
        Screen {
            model,
            queries: VecDeque::new(),
            queries_dropped: 0,
            bracketed_paste: false,
            osc: None,
        }
    }

    /// A mark before a chunk; `echo` says whether the chunk's text is wanted (the echo guard is
    /// up), which the grid keeps only then.
    pub(super) fn mark(&mut self, echo: bool) -> Mark {
        match &mut self.model {
            Model::Lines(window) => Mark::Lines(window.mark()),
            Model::Grid {
                grid,
                written,
                recording,
            } => {
                written.clear();
                *recording = echo;
                Mark::Grid(grid.generation())
            }
        }
    }

    /// Whether the screen changed since `mark`.
    pub(super) fn changed_since(&self, mark: Mark) -> bool {
        match (&self.model, mark) {
            (Model::Lines(window), Mark::Lines(mark)) => window.changed_since(mark),
            (Model::Grid { grid, .. }, Mark::Grid(generation)) => grid.generation() != generation,
            _ => true,
        }
    }

    /// The text written since `mark`: in the line model, only if nothing before it was erased.
    pub(super) fn since(&self, mark: Mark) -> Option<&[u8]> {
        match (&self.model, mark) {
            (Model::Lines(window), Mark::Lines(mark)) => window.since(mark),
            (Model::Grid { written, .. }, Mark::Grid(_)) => Some(written),
            _ => None,
        }
    }

    /// Takes an echo back out of the line model's text. The grid keeps it: the typed prompt is
    /// on the screen, and the agent redraws over it.
    pub(super) fn rewind(&mut self, mark: Mark) {
        if let (Model::Lines(window), Mark::Lines(mark)) = (&mut self.model, mark) {
            window.rewind(mark);
        }
    }

    /// Forgets the text before a prompt was sent. The grid keeps the screen, which is what
    /// the agent redraws from.
    pub(super) fn forget(&mut self) {
        if let Model::Lines(window) = &mut self.model {
            vt::LineSink::clear(window);
        }
    }

    /// The grid's generation (see `grid::Grid::generation`); `None` for the text window.
    pub(super) fn generation(&self) -> Option<u64> {
        match &self.model {
            Model::Lines(_) => None,
            Model::Grid { grid, .. } => Some(grid.generation()),
        }
    }

    /// The text the classifier reads: the text window's view, or the grid's rows.
    pub(super) fn frame(&mut self) -> Frame<'_> {
        match &mut self.model {
            Model::Lines(window) => Frame::Text(window.view()),
            Model::Grid { grid, .. } => Frame::Grid(grid),
        }
    }

    /// Whether the model holds no more than its bounds allow (for tests).
    #[cfg(test)]
    pub(super) fn within_bounds(&mut self) -> bool {
        match &mut self.model {
            Model::Lines(window) => {
                window.capacity_used() <= window::WINDOW_BUFFER_BYTES
                    && window.view().len() <= TEXT_WINDOW_BYTES
            }
            Model::Grid { grid, written, .. } => {
                let (cols, rows) = grid.size();
                let cells = usize::from(cols) * usize::from(rows);
                // Each cell renders to at most four bytes, each row ends in a line feed.
                written.len() <= TEXT_WINDOW_BYTES && grid.view().len() <= cells * 5
            }
        }
    }

    pub(super) fn text_now(&self) -> String {
        match &self.model {
            Model::Lines(window) => String::from_utf8_lossy(window.view()).into_owned(),
            Model::Grid { grid, .. } => {
                let mut out = Vec::new();
                grid.render_into(&mut out);
                out.retain(|&byte| byte != grid::FAINT_TAIL);
                String::from_utf8_lossy(&out).into_owned()
            }
        }
    }
}

impl Screen {
    /// Writes text to the model (`ascii`: the parser found every byte ASCII) and, while the echo
    /// guard records, to what it records.
    #[inline]
    fn put_text(&mut self, bytes: &[u8], ascii: bool) {
        match &mut self.model {
            Model::Lines(window) => window.push(bytes),
            Model::Grid {
                grid,
                written,
                recording,
            } => {
                if ascii {
                    grid.ascii(bytes);
                } else {
                    grid.text(bytes);
                }
                if !*recording {
                    return;
                }
                let room = TEXT_WINDOW_BYTES.saturating_sub(written.len());
                written.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        }
    }
}

impl vt::Sink for Screen {
    #[inline]
    fn text(&mut self, bytes: &[u8]) {
        self.put_text(bytes, false);
    }

    #[inline]
    fn ascii_text(&mut self, bytes: &[u8]) {
        self.put_text(bytes, true);
    }

    #[inline]
    fn op(&mut self, op: vt::Op) {
        match &mut self.model {
            Model::Lines(window) => vt::Sink::op(window, op),
            Model::Grid {
                grid,
                written,
                recording,
            } => {
                grid.op(op);
                if *recording && written.len() < TEXT_WINDOW_BYTES {
                    written.push(b' ');
                }
            }
        }
    }

    fn query(&mut self, query: TerminalQuery) {
        if self.queries.len() < QUERIES_PENDING_MAX {
            self.queries.push_back(query);
        } else {
            self.queries_dropped += 1;
        }
    }

    fn bracketed_paste(&mut self, on: bool) {
        self.bracketed_paste = on;
    }

    fn faint(&mut self, on: bool) {
        if let Model::Grid { grid, .. } = &mut self.model {
            grid.set_faint(on);
        }
    }

    fn osc(&mut self, payload: &[u8]) {
        if let Some(state) = osc::state(payload) {
            self.osc = Some(state);
        }
    }
}
