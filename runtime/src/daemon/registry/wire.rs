//! A coordinator's wiring into its project: its credentials file (0600, in the daemon's config
//! directory) and Baton's entry in the project's `.mcp.json` (worked out, then written once the
//! state records its undo; left alone when git tracks the file), taken out again exactly
//! ([`crate::agents::mcp_json`]); and the sweep of config files nothing uses after a restart.

use std::path::PathBuf;

use super::{MCP_JSON, Registry, RegistryError, files_error};
use crate::agents::McpServer;
use crate::agents::mcp_json::{self, Undo};
use crate::core::auth::Secret;
use crate::core::ids::CoordinatorId;
use crate::daemon::state::McpJsonState;
use crate::engine::CoordinatorSettings;
use crate::ports::FileMode;

impl Registry {
    /// Writes the coordinator's credentials file and works out Baton's entry in the project's
    /// `.mcp.json`: the undo and the bytes to write ([`Self::apply_wire`]), or `None` when git
    /// tracks that file (changing it would leave the user's checkout dirty, and merges into it
    /// refused; the coordinator's agent is started with `--mcp-config` instead).
    pub(super) async fn plan_wire(
        &self,
        id: CoordinatorId,
        token: &Secret,
        settings: &CoordinatorSettings,
    ) -> Result<Option<(McpJsonState, Vec<u8>)>, RegistryError> {
        let files = &self.ports.files;
        let config = self.layout.coordinator_config(id);
        let server = McpServer::coordinator(&settings.mcp, id, token.expose());
        let config_bytes =
            serde_json::to_vec_pretty(&server.config_at(&config)).unwrap_or_default();
        let root = settings.project_root.clone();
        let tracked = self
            .ports
            .repo
            .is_tracked(root.clone(), MCP_JSON.to_owned())
            .await
            .map_err(|e| RegistryError::NotARepo {
                root: root.clone(),
                reason: e.to_string(),
            })?;
        let plan = if tracked {
            tracing::info!(project = %root.display(), "the project's .mcp.json is tracked by git: left as it is");
            None
        } else {
            let path = root.join(MCP_JSON);
            let existing = files.read(&root, &path).await.map_err(files_error)?;
            let (written, registration) = mcp_json::register(
                &path.display().to_string(),
                existing.as_deref(),
                server.entry_reading(&config),
            )?;
            Some((McpJsonState { path, registration }, written))
        };
        files
            .write_atomic(
                &self.layout.config_dir,
                &config,
                &config_bytes,
                FileMode::OwnerOnly,
            )
            .await
            .map_err(files_error)?;
        crate::kill_point!("coordinator.config_written");
        Ok(plan)
    }

    /// Makes the `.mcp.json` change [`Self::plan_wire`] worked out, kept out of the user's
    /// `git status` as the reference does.
    pub(super) async fn apply_wire(
        &self,
        state: &McpJsonState,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let root = state.project();
        crate::kill_point!("mcp_json.writing");
        self.ports
            .files
            .write_atomic(&root, &state.path, bytes, FileMode::Default)
            .await
            .map_err(files_error)?;
        crate::kill_point!("mcp_json.written");
        if let Err(error) = self.ports.repo.exclude(root, format!("/{MCP_JSON}")).await {
            tracing::warn!(%error, "could not add .mcp.json to the repository's info/exclude");
        }
        Ok(())
    }

    /// Undoes [`Self::plan_wire`] and [`Self::apply_wire`]: the user's `.mcp.json` back, the
    /// credentials file gone.
    pub(super) async fn unwire(&self, id: CoordinatorId, mcp_json: Option<&McpJsonState>) {
        if let Some(state) = mcp_json {
            self.undo_mcp_json(state).await;
        }
        let config = self.layout.coordinator_config(id);
        let _ = self
            .ports
            .files
            .remove(&self.layout.config_dir, &config)
            .await;
    }

    /// Gives a user's `.mcp.json` back; whether it changed anything.
    pub(super) async fn undo_mcp_json(&self, state: &McpJsonState) -> bool {
        let files = &self.ports.files;
        let root = state.project();
        let current = match files.read(&root, &state.path).await {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(%error, "cannot read a .mcp.json to restore it");
                return false;
            }
        };
        let result = match mcp_json::deregister(current.as_deref(), &state.registration) {
            Undo::Leave => return false,
            Undo::Remove => files.remove(&root, &state.path).await.map(drop),
            Undo::Write(bytes) => {
                files
                    .write_atomic(&root, &state.path, &bytes, FileMode::Default)
                    .await
            }
        };
        match result {
            Ok(()) => {
                crate::kill_point!("mcp_json.restored");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot restore a .mcp.json");
                false
            }
        }
    }

    /// Removes every file in the config directory no restored coordinator or task uses.
    pub(super) async fn sweep_configs(&self) -> usize {
        let files = &self.ports.files;
        let Ok(present) = files.list(&self.layout.config_dir).await else {
            return 0;
        };
        let mut used: Vec<PathBuf> = Vec::new();
        for (id, entry) in &self.entries {
            used.push(self.layout.coordinator_config(*id));
            used.extend(
                entry
                    .records
                    .tasks
                    .iter()
                    .filter_map(|r| r.spec.mcp_config.clone()),
            );
        }
        let mut removed = 0;
        for path in present {
            if !used.contains(&path)
                && files
                    .remove(&self.layout.config_dir, &path)
                    .await
                    .unwrap_or(false)
            {
                removed += 1;
            }
        }
        removed
    }
}
