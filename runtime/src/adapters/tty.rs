//! The user's terminal: raw mode while a program (the demo agent, `baton attach`) passes
//! keystrokes through one by one, and its size.

/// Raw mode on standard input while held; the old mode back when dropped.
pub struct RawMode(rustix::termios::Termios);

impl RawMode {
    /// Puts standard input in raw mode, if it is a terminal (`None` when it is not).
    ///
    /// # Errors
    /// Its mode could not be read or set.
    pub fn enter() -> std::io::Result<Option<Self>> {
        use rustix::termios::{OptionalActions, isatty, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        if !isatty(&stdin) {
            return Ok(None);
        }
        let old = tcgetattr(&stdin)?;
        let mut raw = old.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Some(RawMode(old)))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}

/// The size of the terminal on standard output, `(cols, rows)`, if it is one.
#[must_use]
pub fn size() -> Option<(u16, u16)> {
    let stdout = std::io::stdout();
    if !rustix::termios::isatty(&stdout) {
        return None;
    }
    let size = rustix::termios::tcgetwinsize(&stdout).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}
