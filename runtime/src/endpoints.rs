//! Where the daemon is reached: the REST API's port range on loopback and the app channel's
//! socket in the state directory.
//!
//! Constants only, in one place, so the side that binds them (`api::listen`, `daemon`) and the
//! sides that reach them (the MCP server entries agents are launched with, `agents::McpLaunch`;
//! the `baton` client commands, `cli::app`) agree without depending on one another. It depends
//! on nothing of the crate.

/// The first port the REST API tries when none is asked for (REST spec §1.4).
pub const PORT_DEFAULT: u16 = 7777;
/// The last port the REST API tries when none is asked for.
pub const PORT_LAST: u16 = 7800;

/// The app channel's socket in the state directory (owner-only; docs/app-channel.md).
pub const APP_SOCKET: &str = "app.sock";
