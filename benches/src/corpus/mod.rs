//! Deterministic corpora of agent terminal output, the input of the detector benches.
//!
//! Three generators imitate the PTY traffic a prompt detector sees:
//! - [`claude_redraws`]: a Claude-Code-style TUI that erases and redraws its bottom frame
//!   (spinner, shimmer, input box) on every keystroke and every few ticks, under a
//!   syntax-highlighted transcript. Most of its bytes are escape sequences.
//! - [`codex_output`]: a Codex-CLI-style inline viewport: history inserted above a fixed bottom
//!   pane through a scroll region, cell-level updates of a status line, coloured diffs.
//!   Moderate escape density.
//! - [`build_logs`]: cargo- and npm-style logs: plain ASCII lines ending in `\r\n`, a few SGR
//!   colours, progress lines rewritten in place with `\r`.
//!
//! [`chunks`] cuts a corpus into the fixed-size reads a PTY host would deliver.
//!
//! Invariants:
//! - Determinism: every generator draws from a SplitMix64 with a fixed seed, never from a clock,
//!   the environment or a hash seed, so the same bytes come out on every run and every machine
//!   and a bench figure stays comparable across commits.
//! - Size: a generator adds whole turns (or log sections) until the corpus reaches
//!   [`CORPUS_BYTES_TARGET`], so it overshoots by less than one turn.
//! - Each corpus is valid UTF-8 as a whole; only [`chunks`] splits characters and escapes.
//! - Each corpus ends the way its agent looks when it waits for input: the Claude frame with the
//!   `❯` input box, the Codex pane with its `›` line, the build log with a shell prompt.
//!
//! All text is invented for this crate. The module depends on nothing but `std`.
//!
//! Layout: this module holds the size, the terminal's size and [`chunks`]; `claude`, `codex`
//! and `build` one generator each; `ansi` the escape sequences they write (and the text
//! measures they wrap by); `words` the seeded generator and the invented text they pick from.

mod ansi;
mod build;
mod claude;
mod codex;
#[cfg(test)]
mod tests;
mod words;

pub use build::build_logs;
pub use claude::claude_redraws;
pub use codex::codex_output;

/// Size in bytes after which a generator stops (at the end of the turn that crosses it): large
/// enough that per-call overheads vanish in the figures, small enough for a 2-core CI budget.
pub const CORPUS_BYTES_TARGET: usize = 1 << 20;

/// Columns of the simulated terminal: the width the generators wrap and pad to.
const COLUMNS: usize = 80;
/// Rows of the simulated terminal; the Claude frame and the Codex pane sit at its bottom.
const ROWS: usize = 40;
/// Milliseconds between two spinner ticks.
const TICK_MS: u64 = 100;

/// Cuts `data` into consecutive slices of `size` bytes (the last may be shorter).
///
/// The cut ignores content on purpose: boundaries fall inside UTF-8 characters and escape
/// sequences, as they do in real PTY reads, and a detector must cope.
///
/// # Panics
///
/// Panics if `size` is zero.
pub fn chunks(data: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    data.chunks(size)
}
