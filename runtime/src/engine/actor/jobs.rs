//! The jobs of slow IO an actor runs off its loop: making, merging and closing a task (the
//! core's [`Job`]s), rolling back a half-made one, a diff, a respawn, a removal. Each reports
//! back to the actor as an [`Internal`] event (or answers its caller itself, where nothing is
//! decided after it).
//!
//! Every step whose crash leaves a different state on disk is a named kill point
//! (`crate::kill_point!`); `tests/kill_points.rs` crashes the daemon at each one.
//!
//! It decides nothing: what is made, merged, closed or undone, and when, is the core's. What
//! an agent needs in its worktree is the `agents` module's data ([`agents::worktree_writes`]);
//! no agent kind is named here.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::{Created, Internal, Respawned};
use crate::agents;
use crate::core::branch::WORKTREES_DIR;
use crate::core::coordinator::{
    Creation, Job, Leftovers, NewTask, TaskSpec, WorktreeFile, WorktreeFileKind,
};
use crate::core::diff::truncate_diff;
use crate::core::ids::{AgentId, DoneToken, TaskId};
use crate::engine::{
    AGENT_COLS, AGENT_ROWS, CoordinatorSettings, DiffView, EngineError, MergeResult, Ports,
};
use crate::ports::{FileMode, MergeRequest, RepoError, SpawnSpec, WorktreeRequest};

/// The job `job` as a future that reports its end to the actor on `internal`. It is started
/// once the operation's intent is saved, so its first kill point finds the intent on disk.
pub(super) fn run(
    job: Job,
    ports: Ports,
    settings: CoordinatorSettings,
    internal: mpsc::Sender<Internal>,
) -> crate::ports::BoxFuture<'static, ()> {
    match job {
        Job::Create(creation) => Box::pin(async move {
            crate::kill_point!("create.intent_saved");
            let task = creation.id;
            let made = create(&ports, &settings, *creation).await.map(Box::new);
            let _ = internal.send(Internal::Created(task, made)).await;
        }),
        Job::Merge {
            task,
            worktree,
            branch,
            base_branch,
            worktree_files,
            squash,
            message,
        } => Box::pin(async move {
            crate::kill_point!("merge.intent_saved");
            let root = settings.project_root;
            let result = async {
                // What Baton wrote goes before the auto-commit, so the merge never carries it.
                strip_worktree_files(&ports, &worktree_files, &worktree).await?;
                crate::kill_point!("merge.stripped");
                let merged = async {
                    ports
                        .repo
                        .commit_all(worktree, "WIP: auto-commit before merge".into())
                        .await?;
                    crate::kill_point!("merge.committed");
                    let target = match base_branch {
                        Some(base) => base,
                        None => ports.repo.main_branch(root.clone()).await?,
                    };
                    let request = MergeRequest {
                        root: root.clone(),
                        branch,
                        target,
                        squash,
                        message,
                    };
                    let merged = ports.repo.merge(request).await;
                    crate::kill_point!("merge.merged");
                    merged
                }
                .await;
                merged
                    .map(|outcome| MergeResult {
                        target: outcome.target,
                        added: outcome.added,
                        removed: outcome.removed,
                    })
                    .map_err(|error| match error {
                        RepoError::Conflict(_) | RepoError::Dirty => {
                            EngineError::Conflict(error.to_string())
                        }
                        other => EngineError::Io(other.to_string()),
                    })
            }
            .await;
            let _ = internal.send(Internal::Merged(task, result)).await;
        }),
        Job::Close {
            task,
            agent,
            worktree,
            branch,
            config,
        } => Box::pin(async move {
            crate::kill_point!("close.intent_saved");
            // Ordered: the agent first (it must not write into a worktree being removed), then
            // the worktree and branch, then the config holding its token.
            let _ = ports.pty.kill(agent).await;
            crate::kill_point!("close.agent_killed");
            let result = async {
                ports
                    .repo
                    .remove_worktree(settings.project_root, worktree, branch)
                    .await
                    .map_err(|e| e.to_string())?;
                crate::kill_point!("close.worktree_removed");
                if let Some(config) = config {
                    ports
                        .files
                        .remove(dir_of(&config), &config)
                        .await
                        .map_err(|e| e.to_string())?;
                    crate::kill_point!("close.config_removed");
                }
                Ok(())
            }
            .await;
            let _ = internal.send(Internal::Closed(task, result)).await;
        }),
    }
}

/// Makes a task: worktree, the files its agent needs, config, agent; each step undone if a
/// later one fails.
/// How a job whose intent could not be saved is reported: nothing of it was begun.
pub(super) fn not_begun(job: &Job, error: &crate::ports::JournalError) -> Internal {
    let error = EngineError::Io(format!(
        "nothing was done: the task's record could not be saved ({error})"
    ));
    match job {
        Job::Create(creation) => Internal::Created(creation.id, Err(error)),
        Job::Merge { task, .. } => Internal::Merged(*task, Err(error)),
        Job::Close { task, .. } => Internal::Closed(*task, Err(error.to_string())),
    }
}

async fn create(
    ports: &Ports,
    settings: &CoordinatorSettings,
    creation: Creation,
) -> Result<Created, EngineError> {
    let root = settings.project_root.clone();
    let worktree = creation.worktree.clone();
    let request = WorktreeRequest {
        root: root.clone(),
        branch: creation.branch.clone(),
        path: worktree.clone(),
        base: creation.base_branch.clone(),
    };
    ports
        .repo
        .create_worktree(request)
        .await
        .map_err(|e| match e {
            // The caller named a branch that is not there: its request is wrong.
            RepoError::NoSuchBranch(_) => EngineError::Missing(e.to_string()),
            RepoError::Link { .. } => EngineError::Conflict(e.to_string()),
            RepoError::NotABranch(_) => EngineError::Invalid(e.to_string()),
            other => EngineError::Io(other.to_string()),
        })?;
    crate::kill_point!("create.worktree_added");
    let known = AgentToPrepare {
        task: creation.id,
        command: creation.command.clone(),
        args: creation.args.clone(),
        done_token: Some(creation.done_token.clone()),
        worktree: worktree.clone(),
        earlier: Vec::new(),
    };
    let config = creation.config.clone();
    let leftovers = |agent| Leftovers {
        agent,
        worktree: worktree.clone(),
        branch: creation.branch.clone(),
        config: Some(config.clone()),
    };
    let prepared = match prepare_agent(ports, settings, &known).await {
        Ok(prepared) => prepared,
        Err(error) => {
            undo(ports, root, leftovers(None)).await;
            return Err(error);
        }
    };
    let spec = SpawnSpec {
        agent: creation.agent,
        argv: prepared.launch.argv.clone(),
        env: prepared.launch.env.clone(),
        cwd: worktree.clone(),
        cols: AGENT_COLS,
        rows: AGENT_ROWS,
    };
    let session = match ports.pty.spawn(spec).await {
        Ok(session) => session,
        Err(error) => {
            undo(ports, root, leftovers(None)).await;
            return Err(EngineError::Io(error.to_string()));
        }
    };
    crate::kill_point!("create.agent_spawned");
    let new = NewTask {
        spec: TaskSpec {
            id: creation.id,
            name: creation.name,
            branch: creation.branch,
            base_branch: creation.base_branch,
            worktree,
            agent: creation.agent,
            profile: prepared.launch.profile,
            done_token: Some(creation.done_token),
            mcp_config: Some(config),
            worktree_files: prepared.worktree_files,
            launch: prepared.launch.argv,
            command: creation.command,
            args: creation.args,
            policy: creation.policy,
            checks: creation.checks,
        },
        assignment: creation.assignment,
    };
    Ok(Created { new, session })
}

/// Where a task's worktree goes: `<root>/<WORKTREES_DIR>/<branch>`.
pub(super) fn worktree_path(settings: &CoordinatorSettings, branch: &str) -> PathBuf {
    settings.project_root.join(WORKTREES_DIR).join(branch)
}

/// A task's MCP config file.
pub(super) fn config_path(settings: &CoordinatorSettings, task: TaskId) -> PathBuf {
    settings
        .config_dir
        .join(format!("baton-subtask-{task}.json"))
}

/// Starts a task's exited agent again with `launch` (its old command line), in `cwd`: its
/// command line and MCP config made again from the daemon's settings now (its address may
/// have changed since the task was made: a restart on another port), what Baton writes into
/// its worktree put back if a merge took it out. Reported as [`Internal::Respawned`].
pub(super) async fn respawn(
    ports: Ports,
    settings: CoordinatorSettings,
    known: AgentToPrepare,
    launch: Vec<String>,
    spawn: (AgentId, u16),
) -> Result<Respawned, String> {
    let (agent, cols) = spawn;
    let prepared = if known.command.is_empty() || known.done_token.is_none() {
        // Made before Baton kept what it was asked to run: its old command line.
        let env = launch
            .first()
            .map(|command| agents::launch_env(command))
            .unwrap_or_default();
        Ok((launch, env, known.earlier.clone()))
    } else {
        prepare_agent(&ports, &settings, &known)
            .await
            .map(|p| (p.launch.argv, p.launch.env, p.worktree_files))
    };
    match prepared {
        Ok((argv, env, files)) => {
            let spec = SpawnSpec {
                agent,
                argv: argv.clone(),
                env,
                cwd: known.worktree,
                cols,
                rows: AGENT_ROWS,
            };
            ports
                .pty
                .spawn(spec)
                .await
                .map(|session| (session, argv, files))
                .map_err(|error| error.to_string())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// What is needed to prepare a task's agent: the task, what it was asked to run, its worktree,
/// and the files Baton wrote there before (a respawn's).
pub(super) struct AgentToPrepare {
    pub(super) task: TaskId,
    pub(super) command: String,
    pub(super) args: Vec<String>,
    pub(super) done_token: Option<DoneToken>,
    pub(super) worktree: PathBuf,
    pub(super) earlier: Vec<WorktreeFile>,
}

/// What a task's agent starts with: the files Baton wrote for it and its command line.
struct Prepared {
    worktree_files: Vec<WorktreeFile>,
    launch: agents::Launch,
}

/// Puts in place what a task's agent needs before it starts, from the daemon's settings as they
/// are now: the files its kind reads in its worktree ([`agents::worktree_writes`]: those that
/// name its MCP config once the config exists), its MCP config (the daemon's current address,
/// its done token), and its command line. The same for a new task and a respawn; a respawn
/// keeps what each file held before Baton first wrote it, and the files Baton wrote before and
/// writes no more.
async fn prepare_agent(
    ports: &Ports,
    settings: &CoordinatorSettings,
    known: &AgentToPrepare,
) -> Result<Prepared, EngineError> {
    let worktree = &known.worktree;
    let earlier = |kind: WorktreeFileKind| known.earlier.iter().find(|f| f.kind == kind);
    let writes = agents::worktree_writes(&known.command);
    let (after_config, before_config): (Vec<_>, Vec<_>) = writes
        .iter()
        .copied()
        .partition(|write| write.names_config());
    let config = config_path(settings, known.task);
    let token = known
        .done_token
        .as_ref()
        .map(DoneToken::expose)
        .unwrap_or_default();
    let server = agents::McpServer::sub_task(&settings.mcp, known.task, token);
    let mut worktree_files: Vec<WorktreeFile> = Vec::new();
    for write in before_config {
        let written = write_worktree_file(ports, write, &server, &config, worktree).await?;
        worktree_files.extend(kept(written, earlier(write.kind)));
    }
    crate::kill_point!("create.preamble_written");
    // What Baton wrote before and writes no more (an earlier version's files) stays listed, to
    // be taken out before a merge.
    let written_now = |file: &WorktreeFile| writes.iter().any(|write| write.kind == file.kind);
    let no_more = known.earlier.iter().filter(|file| !written_now(file));
    worktree_files.extend(no_more.cloned());
    let contents = serde_json::to_string_pretty(&server.config()).unwrap_or_default();
    ports
        .files
        .write_atomic(
            &settings.config_dir,
            &config,
            contents.as_bytes(),
            FileMode::OwnerOnly,
        )
        .await
        .map_err(files_error)?;
    crate::kill_point!("create.config_written");
    for write in after_config {
        let written = write_worktree_file(ports, write, &server, &config, worktree).await?;
        worktree_files.extend(kept(written, earlier(write.kind)));
        crate::kill_point!("create.mcp_settings_written");
    }
    let launch = agents::launch(
        &known.command,
        &known.args,
        settings.skip_permissions,
        &server,
        &config,
    );
    Ok(Prepared {
        worktree_files,
        launch,
    })
}

/// The record of a file Baton wrote (`written`, if it wrote it now) or wrote before
/// (`earlier`): what it held before Baton first wrote it is kept.
fn kept(written: Option<WorktreeFile>, earlier: Option<&WorktreeFile>) -> Option<WorktreeFile> {
    match written {
        Some(mut written) => {
            if let Some(before) = earlier {
                written.original.clone_from(&before.original);
            }
            Some(written)
        }
        None => earlier.cloned(),
    }
}

/// Writes `write`'s file into `worktree`, with Baton's part in what it holds now: `None` when
/// nothing was to be written, else what to take out before a merge.
async fn write_worktree_file(
    ports: &Ports,
    write: agents::WorktreeWrite,
    server: &agents::McpServer,
    config: &Path,
    worktree: &Path,
) -> Result<Option<WorktreeFile>, EngineError> {
    let path = worktree.join(write.path);
    let original = ports
        .files
        .read(worktree, &path)
        .await
        .map_err(files_error)?;
    let Some(written) = write
        .content(original.as_deref(), server, config)
        .map_err(|error| EngineError::Invalid(error.to_string()))?
    else {
        return Ok(None);
    };
    ports
        .files
        .write_atomic(worktree, &path, &written, FileMode::Default)
        .await
        .map_err(files_error)?;
    Ok(Some(WorktreeFile {
        path,
        original,
        written,
        kind: write.kind,
    }))
}

/// A task's diff against the branch it forked from (the main branch if none), of its worktree
/// as it will be merged: without what Baton wrote into it (the coordinator never sees that).
pub(super) async fn diff(
    ports: Ports,
    root: PathBuf,
    worktree: PathBuf,
    base: Option<String>,
    written: Vec<WorktreeFile>,
) -> Result<DiffView, EngineError> {
    let mut overlay = Vec::new();
    for file in &written {
        overlay.extend(stripped(&ports, file, &worktree).await);
    }
    async {
        let base = match base {
            Some(base) => base,
            None => ports.repo.main_branch(root).await?,
        };
        ports.repo.diff(worktree, base, overlay).await
    }
    .await
    .map(|diff| {
        let cut = truncate_diff(&diff.text);
        DiffView {
            files: diff.files,
            text: cut.text,
            truncated: cut.truncated,
            original_bytes: cut.original_bytes,
        }
    })
    .map_err(|error| EngineError::Io(error.to_string()))
}

/// A file Baton wrote into a worktree as a merge would take it, relative to `worktree`, with
/// its content then (`None`: no file); `None` when the strip would leave the file as it is.
async fn stripped(
    ports: &Ports,
    file: &WorktreeFile,
    worktree: &Path,
) -> Option<(String, Option<Vec<u8>>)> {
    use crate::agents::preamble::{Strip, strip_worktree_file};
    let current = ports.files.read(worktree, &file.path).await.ok()??;
    let rel = file.path.strip_prefix(worktree).ok()?.to_str()?.to_owned();
    match strip_worktree_file(file.kind, &current, &file.written, file.original.as_deref()) {
        Strip::Keep => None,
        Strip::Write(bytes) => Some((rel, Some(bytes))),
        Strip::Remove => Some((rel, None)),
    }
}

/// Takes what Baton wrote out of `worktree` (before its branch is merged).
async fn strip_worktree_files(
    ports: &Ports,
    files: &[WorktreeFile],
    worktree: &Path,
) -> Result<(), EngineError> {
    for file in files {
        match stripped(ports, file, worktree).await {
            None => {}
            Some((_, Some(bytes))) => ports
                .files
                .write_atomic(worktree, &file.path, &bytes, FileMode::Default)
                .await
                .map_err(files_error)?,
            Some((_, None)) => {
                ports
                    .files
                    .remove(worktree, &file.path)
                    .await
                    .map_err(files_error)?;
            }
        }
    }
    Ok(())
}

/// What the app's removal of a task leaves it: the worktree without what Baton put in it, and
/// no config file.
pub(super) async fn leave(
    ports: Ports,
    config: Option<PathBuf>,
    written: Option<(Vec<WorktreeFile>, PathBuf)>,
) {
    if let Some(config) = config {
        let _ = ports.files.remove(dir_of(&config), &config).await;
    }
    if let Some((files, worktree)) = written {
        let _ = strip_worktree_files(&ports, &files, &worktree).await;
    }
}

/// Removes what a half-made task left: its agent killed first (if one was spawned), then its
/// worktree and branch, then its config file.
pub(super) async fn undo(ports: &Ports, root: PathBuf, leftovers: Leftovers) {
    if let Some(agent) = leftovers.agent {
        let _ = ports.pty.kill(agent).await;
    }
    let Leftovers {
        worktree,
        branch,
        config,
        ..
    } = leftovers;
    if let Err(error) = ports.repo.remove_worktree(root, worktree, branch).await {
        tracing::warn!(%error, "a half-made task's worktree or branch could not be removed");
    }
    if let Some(config) = config
        && let Err(error) = ports.files.remove(dir_of(&config), &config).await
    {
        tracing::warn!(%error, "a half-made task's config could not be removed");
    }
}

/// The directory a config file is kept in (confined there: the file itself is no link).
fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

/// A file operation's failure as the engine reports it: a file refused for confinement (a
/// symbolic link the repository committed, say) is the request's conflict with the repository,
/// not a failure of the disk.
fn files_error(error: crate::ports::FilesError) -> EngineError {
    if error.is_confinement() {
        EngineError::Conflict(format!(
            "{error}; nothing was changed (replace the link with a file to go on)"
        ))
    } else {
        EngineError::Io(error.to_string())
    }
}
