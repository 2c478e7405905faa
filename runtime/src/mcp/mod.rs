//! `baton mcp`: the MCP stdio server an agent CLI launches from the config Baton wrote for it.
//! It turns MCP tool calls into REST calls on the daemon's API.
//!
//! Layout: `args` (command line and environment, the role), `tools` (the catalogue per role,
//! each call's REST request and its result text; pure), `http` (a small HTTP/1.1 client over any
//! [`http::Connect`]: TCP here, turmoil in the simulator), `server` (the rmcp handler and the
//! REST side, retries and bounds), `hook` (`baton hook`: an agent's hook reported to the
//! daemon). Nothing but MCP protocol goes to stdout.

pub mod args;
pub mod hook;
pub mod http;
pub mod server;
pub mod tools;

use std::sync::Arc;

/// Serves MCP on stdin/stdout for `args` until the client closes the connection.
///
/// # Errors
/// The URL is invalid, or the MCP transport failed to start.
pub async fn serve_stdio(args: args::McpArgs) -> anyhow::Result<()> {
    use rmcp::ServiceExt as _;
    let backend = server::Backend::new(
        args,
        http::Tcp,
        Arc::new(crate::adapters::OsEntropy::open()?),
    )?;
    let running = server::McpServer::new(backend)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| anyhow::anyhow!("cannot start the MCP server: {error}"))?;
    running
        .waiting()
        .await
        .map_err(|error| anyhow::anyhow!("the MCP server stopped: {error}"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
