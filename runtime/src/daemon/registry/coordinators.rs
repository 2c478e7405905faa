//! A coordinator's registration and its end: register (checked, its credentials and its
//! `.mcp.json` entry written, persisted before it is answered), a new token, its own agent
//! started (handed to its actor), deregistration, the shutdown's last save, and a restore after
//! a restart.

use std::path::Path;

use super::{
    AGENT_ARG_BYTES_MAX, AGENT_ARGS_MAX, AgentRequest, COORDINATORS_MAX, CoordinatorInfo, Entry,
    RegisterRequest, Registry, RegistryError, files_error,
};
use crate::agents::McpServer;
use crate::core::auth::Secret;
use crate::core::coordinator::Records;
use crate::core::ids::{AgentId, CoordinatorId};
use crate::core::notify::{NOTIFICATION_DELAY_MS_MAX, NOTIFICATION_DELAY_MS_MIN};
use crate::daemon::state::{CoordinatorState, McpJsonState};
use crate::engine::{CoordinatorSettings, OwnAgentStart};
use crate::ports::{FileMode, SpawnSpec};

impl Registry {
    pub(super) async fn register(
        &mut self,
        request: RegisterRequest,
    ) -> Result<CoordinatorInfo, RegistryError> {
        validate(&request)?;
        let root = request.project_root.clone();
        self.main_branch(&root).await?;
        if self
            .entries
            .iter()
            .any(|(_, e)| e.is_registered() && e.settings.project_root == root)
        {
            return Err(RegistryError::Invalid(format!(
                "a coordinator is already registered on {}",
                root.display()
            )));
        }
        if self
            .entries
            .iter()
            .filter(|(_, e)| e.is_registered())
            .count()
            >= COORDINATORS_MAX
        {
            return Err(RegistryError::Invalid(format!(
                "at most {COORDINATORS_MAX} coordinators can be registered at once"
            )));
        }
        if request.skip_permissions
            && let Some(why) = crate::agents::AgentKind::from_command(&request.agent)
                .skip_permissions_refused(self.root_outside_a_sandbox)
        {
            return Err(RegistryError::Invalid(why));
        }
        let id = CoordinatorId::from_random(self.random());
        let token = Secret::from_random(self.random());
        let mut settings = CoordinatorSettings::new(root, request.agent, &self.layout.config_dir);
        settings.spawn.args = request.args;
        settings.skip_permissions = request.skip_permissions;
        if let Some(delay_ms) = request.notification_delay_ms {
            settings.notification_delay_ms = delay_ms;
        }
        settings.mcp = self.launch.clone();
        let plan = self.plan_wire(id, &token, &settings).await?;
        let handle = Some(self.engine.register(id, settings.clone()));
        let entry = Entry::new(token, settings, plan.as_ref(), handle, Records::default());
        self.entries.push((id, entry));
        // The state learns how to undo the .mcp.json change before the change is made: a
        // crash in between leaves nothing the next start cannot undo.
        let done = match self.write_state().await {
            Ok(()) => match &plan {
                Some((state, bytes)) => self.apply_wire(state, bytes).await,
                None => Ok(()),
            },
            Err(error) => Err(error),
        };
        if let Err(error) = done {
            // Not persisted or not wired: not registered.
            if let Some((_, entry)) = self.entries.pop() {
                self.unwire(id, entry.mcp_json.as_ref()).await;
            }
            let _ = self.engine.deregister(id).await;
            self.engine.prune_orphans().await;
            let _ = self.write_state().await;
            return Err(error);
        }
        self.publish();
        let (_, entry) = &self.entries[self.entries.len() - 1];
        tracing::info!(coordinator = %id, project = %entry.settings.project_root.display(), "coordinator registered");
        Ok(self.info(id, entry, 0))
    }

    /// See [`Request::Rotate`]. The credentials file is written first, then the state: a
    /// failure of either puts the old token back in both, and nothing changed.
    pub(super) async fn rotate(
        &mut self,
        id: CoordinatorId,
    ) -> Result<CoordinatorInfo, RegistryError> {
        let token = Secret::from_random(self.random());
        let index = self
            .entries
            .iter()
            .position(|(known, entry)| *known == id && entry.is_registered())
            .ok_or(RegistryError::NotFound(id))?;
        let config = self.layout.coordinator_config(id);
        let write = |token: &Secret| {
            let settings = &self.entries[index].1.settings;
            let server = McpServer::coordinator(&settings.mcp, id, token.expose());
            serde_json::to_vec_pretty(&server.config_at(&config)).unwrap_or_default()
        };
        let (fresh, old) = (write(&token), write(&self.entries[index].1.token));
        let files = self.ports.files.clone();
        files
            .write_atomic(
                &self.layout.config_dir,
                &config,
                &fresh,
                FileMode::OwnerOnly,
            )
            .await
            .map_err(files_error)?;
        let previous = std::mem::replace(&mut self.entries[index].1.token, token);
        if let Err(error) = self.write_state().await {
            self.entries[index].1.token = previous;
            let _ = files
                .write_atomic(&self.layout.config_dir, &config, &old, FileMode::OwnerOnly)
                .await;
            return Err(error);
        }
        // The directory now holds the new token only: the old one opens nothing, and every
        // WebSocket that authenticated with it is closed (4001).
        self.publish();
        tracing::info!(coordinator = %id, "coordinator token rotated");
        let (_, entry) = &self.entries[index];
        let tasks = match &entry.handle {
            Some(handle) => handle.list_tasks().await.map_or(0, |t| t.len()),
            None => 0,
        };
        Ok(self.info(id, entry, tasks))
    }

    /// The branch checked out at `root`, or why `root` is no usable repository.
    pub(super) async fn main_branch(&self, root: &Path) -> Result<String, RegistryError> {
        self.ports
            .repo
            .main_branch(root.to_owned())
            .await
            .map_err(|e| RegistryError::NotARepo {
                root: root.to_owned(),
                reason: e.to_string(),
            })
    }

    pub(super) async fn start_agent(
        &mut self,
        id: CoordinatorId,
        request: AgentRequest,
    ) -> Result<AgentId, RegistryError> {
        let (entry, handle) = self
            .entries
            .iter()
            .find(|(known, _)| *known == id)
            .and_then(|(_, entry)| Some((entry, entry.handle.clone()?)))
            .ok_or(RegistryError::NotFound(id))?;
        if request.command.trim().is_empty() {
            return Err(RegistryError::Invalid(
                "the agent's command is empty".into(),
            ));
        }
        let root = entry.settings.project_root.clone();
        let server = McpServer::coordinator(&self.launch, id, entry.token.expose());
        let config = self.layout.coordinator_config(id);
        let launch =
            crate::agents::launch(&request.command, &request.args, false, &server, &config);
        let first = match request.prompt {
            None => None,
            Some(prompt) => Some(crate::agents::prompts::coordinator(
                &prompt,
                &self.main_branch(&root).await?,
                crate::agents::prompts::CONCURRENT_TASKS_MAX,
            )),
        };
        let spec = SpawnSpec {
            agent: AgentId::from_random(self.random()),
            argv: launch.argv,
            env: launch.env,
            cwd: root,
            cols: crate::engine::AGENT_COLS,
            rows: crate::engine::AGENT_ROWS,
        };
        let start = OwnAgentStart {
            spawn: spec,
            profile: launch.profile,
            first_prompt: first,
        };
        // Its coordinator's actor owns it as it owns the tasks' agents.
        let agent = handle
            .start_own_agent(start)
            .await
            .map_err(|e| RegistryError::Agent(e.to_string()))?;
        tracing::info!(coordinator = %id, %agent, program = %request.command, "coordinator agent started");
        Ok(agent)
    }

    pub(super) async fn deregister(&mut self, id: CoordinatorId) -> Result<(), RegistryError> {
        let at = self
            .entries
            .iter()
            .position(|(known, entry)| *known == id && entry.is_registered())
            .ok_or(RegistryError::NotFound(id))?;
        let entry = &mut self.entries[at].1;
        let leaving = entry.handle.take();
        let mcp_json = entry.mcp_json.take();
        // Its token goes at once (no call of its own is taken from now on), while its tasks stay
        // in the published view throughout: listed as it leaves, then as orphans.
        self.publish_leaving(leaving.as_ref());
        let _ = self.engine.deregister(id).await;
        self.publish();
        self.unwire(id, mcp_json.as_ref()).await;
        // Its tasks stay (orphans) until closed; an empty save lets it go (a task still being
        // made when it left comes with a save of its own).
        self.write_state().await?;
        tracing::info!(coordinator = %id, "coordinator deregistered");
        Ok(())
    }

    /// Takes every `.mcp.json` entry out and persists that (the registrations stay: the next
    /// start merges the entries again).
    pub(super) async fn shutdown(&mut self) {
        // The last word on each coordinator's tasks, from its actor: saves still on their way
        // would find the registry gone. An agent's exit its actor has not read yet is missing
        // (its exit code only: every task comes back exited after a restart anyway).
        for (_, entry) in &mut self.entries {
            if let Some(handle) = &entry.handle
                && let Ok(records) = handle.records().await
            {
                entry.records = records;
            }
        }
        let undone: Vec<McpJsonState> = self
            .entries
            .iter_mut()
            .filter_map(|(_, entry)| entry.mcp_json.take())
            .collect();
        for state in &undone {
            self.undo_mcp_json(state).await;
        }
        if let Err(error) = self.write_state().await {
            tracing::error!(%error, "persisting the state at shutdown failed");
        }
    }

    /// Restores one coordinator; a registered one's `.mcp.json` change comes back, to be made
    /// once the state records it.
    pub(super) async fn restore(
        &mut self,
        coordinator: CoordinatorState,
    ) -> Option<(CoordinatorId, McpJsonState, Vec<u8>)> {
        let CoordinatorState {
            id,
            token,
            registered,
            mut settings,
            records,
            ..
        } = coordinator;
        settings.mcp = self.launch.clone();
        let (handle, plan) = if registered {
            let plan = match self.plan_wire(id, &token, &settings).await {
                Ok(plan) => plan,
                Err(error) => {
                    tracing::warn!(coordinator = %id, %error, "the coordinator's MCP entry could not be written again");
                    None
                }
            };
            let handle = self.engine.restore(id, settings.clone(), records.clone());
            (Some(handle), plan)
        } else {
            if let Err(error) = self
                .engine
                .restore_orphan(id, settings.clone(), records.clone())
                .await
            {
                tracing::warn!(coordinator = %id, %error, "restoring orphaned tasks failed");
            }
            (None, None)
        };
        let entry = Entry::new(token, settings, plan.as_ref(), handle, records);
        self.entries.push((id, entry));
        plan.map(|(state, bytes)| (id, state, bytes))
    }
}

fn validate(request: &RegisterRequest) -> Result<(), RegistryError> {
    let invalid = |text: String| Err(RegistryError::Invalid(text));
    if !request.project_root.is_absolute() {
        return invalid(format!(
            "project root {} is not an absolute path",
            request.project_root.display()
        ));
    }
    if request.agent.trim().is_empty() {
        return invalid("agent must not be empty".to_owned());
    }
    if request.args.len() > AGENT_ARGS_MAX {
        return invalid(format!("at most {AGENT_ARGS_MAX} agent arguments"));
    }
    let delays = NOTIFICATION_DELAY_MS_MIN..=NOTIFICATION_DELAY_MS_MAX;
    if let Some(delay_ms) = request.notification_delay_ms
        && !delays.contains(&delay_ms)
    {
        return invalid(format!(
            "the notification delay must be {NOTIFICATION_DELAY_MS_MIN} to {NOTIFICATION_DELAY_MS_MAX} ms, not {delay_ms}"
        ));
    }
    let all = std::iter::once(&request.agent).chain(&request.args);
    for text in all {
        if text.len() > AGENT_ARG_BYTES_MAX {
            return invalid(format!(
                "an agent argument is longer than {AGENT_ARG_BYTES_MAX} bytes"
            ));
        }
        if text.chars().any(char::is_control) {
            return invalid(
                "agent command and arguments must not hold control characters".to_owned(),
            );
        }
    }
    Ok(())
}
