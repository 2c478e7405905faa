//! The demo agent's MCP client: it starts the server its `--mcp-config` names (Baton's entry,
//! `mcpServers.baton`) as a child process and speaks MCP to it over the child's stdin and stdout,
//! as Claude Code does. The child's stderr (its logs) goes nowhere: the agent's terminal is
//! its screen.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use serde_json::Value;

use crate::agents::SERVER_NAME;

/// Largest MCP config read.
pub const MCP_CONFIG_BYTES_MAX: u64 = 64 * 1024;
/// Longest a tool call may take before the agent gives up on it: past the longest wait the
/// server's tools take (`wait_for_signal_done` is bounded by its own timeout).
pub const TOOL_CALL_MS_MAX: u64 = 60 * 60 * 1_000;
/// How long the MCP handshake may take.
pub const HANDSHAKE_MS_MAX: u64 = 30_000;

/// A running MCP server and the client session with it.
pub struct Mcp {
    client: RunningService<RoleClient, ()>,
    child: tokio::process::Child,
}

impl Mcp {
    /// Starts the server `config` names and makes the MCP handshake.
    ///
    /// # Errors
    /// The config cannot be read or names no server, the server cannot start, or the handshake
    /// failed.
    pub async fn start(config: &Path) -> anyhow::Result<Self> {
        let bytes =
            std::fs::read(config).with_context(|| format!("reading {}", config.display()))?;
        anyhow::ensure!(
            bytes.len() as u64 <= MCP_CONFIG_BYTES_MAX,
            "{} is larger than {MCP_CONFIG_BYTES_MAX} bytes",
            config.display()
        );
        let json: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not JSON", config.display()))?;
        let entry = &json["mcpServers"][SERVER_NAME];
        let command = entry["command"]
            .as_str()
            .with_context(|| format!("{} names no {SERVER_NAME:?} server", config.display()))?;
        let args: Vec<&str> = entry["args"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut process = tokio::process::Command::new(command);
        process
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(env) = entry["env"].as_object() {
            for (key, value) in env {
                if let Some(value) = value.as_str() {
                    process.env(key, value);
                }
            }
        }
        let mut child = process
            .spawn()
            .with_context(|| format!("starting {command}"))?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            anyhow::bail!("{command}: no pipes to it");
        };
        let handshake = ().serve((stdout, stdin));
        let client = crate::time::timeout(Duration::from_millis(HANDSHAKE_MS_MAX), handshake)
            .await
            .map_err(|_| {
                anyhow::anyhow!("{command}: no MCP handshake within {HANDSHAKE_MS_MAX} ms")
            })?
            .map_err(|e| anyhow::anyhow!("{command}: MCP handshake: {e}"))?;
        // As real agents do: the tools are listed first (and the server tells the daemon the
        // agent is up then).
        client
            .list_tools(None)
            .await
            .map_err(|e| anyhow::anyhow!("{command}: listing its tools: {e}"))?;
        Ok(Mcp { client, child })
    }

    /// Calls `tool`: the text of its result, or of its error.
    ///
    /// # Errors
    /// The tool failed (its text), or the session broke.
    pub async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<String, String> {
        let request = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let called = crate::time::timeout(
            Duration::from_millis(TOOL_CALL_MS_MAX),
            self.client.call_tool(request),
        )
        .await
        .map_err(|_| format!("no answer within {TOOL_CALL_MS_MAX} ms"))?
        .map_err(|e| format!("MCP: {e}"))?;
        let content = serde_json::to_value(&called.content).unwrap_or_default();
        let text = content[0]["text"].as_str().unwrap_or_default().to_owned();
        if called.is_error == Some(true) {
            Err(text)
        } else {
            Ok(text)
        }
    }

    /// Ends the session and the server.
    pub async fn stop(mut self) {
        let _ = self.client.cancel().await;
        let _ = self.child.kill().await;
    }
}
