//! `baton mcp`: the MCP stdio server an agent CLI launches from the config Baton wrote for it.
//! It turns MCP tool calls into REST calls on the daemon's API.
//!
//! Layout: `args` (command line and environment, the role), `tools` (the catalogue per role,
//! each call's REST request and its result text; pure), `http` (a small HTTP/1.1 client over any
//! [`http::Connect`]: TCP here, turmoil in the simulator), `server` (the rmcp handler and the
//! REST side, retries and bounds), `hook` (`baton hook`: an agent's hook reported to the
//! daemon), `front` (every line checked before rmcp reads it: JSON-RPC errors for malformed
//! input). Nothing but MCP protocol goes to stdout.

pub mod args;
pub mod front;
pub mod hook;
pub mod http;
pub mod server;
pub mod tools;

use std::sync::Arc;

/// How long `baton mcp` waits, once its server stopped, for its last answers to be written.
pub const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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
    let server = server::McpServer::new(backend);
    let backend = server.backend();
    let input = EndWatch {
        inner: tokio::io::stdin(),
        ended: server.input_ended(),
    };
    // Malformed lines are answered by the front, as JSON-RPC says (rmcp would drop them).
    let (input, output, written) = front::serve(input, tokio::io::stdout());
    let running = server
        .serve((input, output))
        .await
        .map_err(|error| anyhow::anyhow!("cannot start the MCP server: {error}"))?;
    let stopped = running
        .waiting()
        .await
        .map_err(|error| anyhow::anyhow!("the MCP server stopped: {error}"));
    // Its last answers reach the client, and the give-backs of the calls the end cancelled
    // reach the daemon, before the process ends.
    let _ = crate::time::timeout(FLUSH_WAIT, async {
        let _ = written.await;
        backend.settled().await;
    })
    .await;
    stopped?;
    Ok(())
}

/// The client's input, telling when it ends (end of file, or an error): the calls in flight
/// are then dropped at once (see `McpServer::input_ended`).
pub struct EndWatch<R> {
    /// The input.
    pub inner: R,
    /// Told `true` once it ended.
    pub ended: Arc<tokio::sync::watch::Sender<bool>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for EndWatch<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let (before, room) = (buf.filled().len(), buf.remaining() > 0);
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let ended = match &polled {
            // Nothing read into room for something: the end of the input.
            std::task::Poll::Ready(Ok(())) => room && buf.filled().len() == before,
            std::task::Poll::Ready(Err(_)) => true,
            std::task::Poll::Pending => false,
        };
        if ended {
            self.ended.send_replace(true);
        }
        polled
    }
}

#[cfg(test)]
mod tests;
