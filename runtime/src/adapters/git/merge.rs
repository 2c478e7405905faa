//! Committing a worktree's changes, and merging a branch into its target: the tips compared
//! read-only, the merged tree written by `git merge-tree` without touching any working tree,
//! then the target moved by fast-forwarding the checkout that holds it or by a
//! compare-and-swap of its ref.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use git2::{BranchType, Oid};

use super::run::{blocking, checkouts, git2_error, is_dirty, open, run, run_committing};
use crate::ports::{MERGED_PATHS_MAX, MergeOutcome, MergeRequest, RepoError};

pub(super) async fn commit_all(worktree: PathBuf, message: String) -> Result<bool, RepoError> {
    let add = ["add", "-A"].map(OsStr::new);
    run(&worktree, &add).await?.ok("git add")?;
    let staged = ["diff", "--cached", "--quiet", "--no-ext-diff"].map(OsStr::new);
    let out = run(&worktree, &staged).await?;
    match out.code {
        Some(0) => return Ok(false),
        Some(1) => {}
        _ => return Err(out.failure("git diff --cached")),
    }
    run_committing(&worktree, &["commit", "-q", "-m", &message].map(OsStr::new))
        .await?
        .ok("git commit")?;
    Ok(true)
}

/// What merging a branch into its target takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The branch is in the target already.
    Nothing,
    /// The target is behind the branch: move it there.
    FastForward,
    /// A new commit: both moved, or the changes are squashed.
    Merge,
}

/// The two tips and what merging takes, all read-only.
#[derive(Debug)]
struct Tips {
    target: String,
    target_tree: String,
    branch: String,
    plan: Plan,
}

fn tips(root: &Path, target: &str, branch: &str, squash: bool) -> Result<Tips, RepoError> {
    let repo = open(root)?;
    let tip = |name: &str| {
        repo.find_branch(name, BranchType::Local)
            .ok()
            .and_then(|b| b.get().peel_to_commit().ok())
    };
    let target_commit = tip(target).ok_or_else(|| RepoError::NoSuchBranch(target.to_owned()))?;
    let branch_commit = tip(branch)
        .ok_or_else(|| RepoError::Git(format!("merge: {branch} - not something we can merge")))?;
    let (ours, theirs) = (target_commit.id(), branch_commit.id());
    let ancestry = git2_error("compare the branches");
    let plan = if ours == theirs || repo.graph_descendant_of(ours, theirs).map_err(&ancestry)? {
        Plan::Nothing
    } else if !squash && repo.graph_descendant_of(theirs, ours).map_err(&ancestry)? {
        Plan::FastForward
    } else {
        Plan::Merge
    };
    Ok(Tips {
        target: ours.to_string(),
        target_tree: target_commit.tree_id().to_string(),
        branch: theirs.to_string(),
        plan,
    })
}

/// The merged tree of two commits, written without touching any working tree, or the
/// conflicted paths.
async fn merged_tree(root: &Path, ours: &str, theirs: &str) -> Result<String, RepoError> {
    let what = "git merge-tree";
    let args = [
        "merge-tree",
        "--write-tree",
        "--name-only",
        "--no-messages",
        "-z",
        ours,
        theirs,
    ]
    .map(OsStr::new);
    let out = run(root, &args).await?;
    let mut fields = out.stdout.split(|b| *b == 0);
    let tree = fields
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    match out.code {
        Some(0) if !tree.is_empty() => Ok(tree.into_owned()),
        Some(1) => {
            let mut paths: Vec<String> = fields
                .take_while(|f| !f.is_empty())
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            paths.sort();
            paths.dedup();
            if paths.is_empty() {
                Err(RepoError::Git(format!(
                    "{what} reported a conflict without a path"
                )))
            } else {
                Err(RepoError::Conflict(paths))
            }
        }
        // A usage error: git before 2.38 has no `--write-tree`.
        Some(129) => Err(RepoError::Git(format!(
            "{} (Baton needs git 2.38 or newer)",
            out.failure(what)
        ))),
        _ => Err(out.failure(what)),
    }
}

pub(super) async fn merge_once(request: &MergeRequest) -> Result<MergeOutcome, RepoError> {
    let root = request.root.as_path();
    let tips = {
        let (root, target, branch) = (
            request.root.clone(),
            request.target.clone(),
            request.branch.clone(),
        );
        let squash = request.squash;
        blocking(move || tips(&root, &target, &branch, squash)).await?
    };
    let target_ref = format!("refs/heads/{}", request.target);
    let holder = checkouts(root)
        .await?
        .into_iter()
        .find(|c| !c.prunable && c.branch.as_deref() == Some(target_ref.as_str()))
        .map(|c| c.path);
    if let Some(dir) = &holder
        && is_dirty(dir).await?
    {
        return Err(RepoError::Dirty);
    }
    let unchanged = MergeOutcome {
        target: request.target.clone(),
        added: 0,
        removed: 0,
        commit: tips.target.clone(),
        paths: Vec::new(),
    };
    let new = match tips.plan {
        Plan::Nothing => return Ok(unchanged),
        Plan::FastForward => tips.branch.clone(),
        Plan::Merge => {
            let tree = merged_tree(root, &tips.target, &tips.branch).await?;
            if request.squash && tree == tips.target_tree {
                return Ok(unchanged);
            }
            let message = if request.squash {
                request
                    .message
                    .clone()
                    .unwrap_or_else(|| "Squash merge".to_owned())
            } else {
                format!("Merge branch '{}'", request.branch)
            };
            let mut args = ["commit-tree", &tree, "-p", &tips.target].to_vec();
            if !request.squash {
                args.extend(["-p", &tips.branch]);
            }
            args.extend(["-m", &message]);
            let args: Vec<&OsStr> = args.into_iter().map(OsStr::new).collect();
            let out = run_committing(root, &args).await?.ok("git commit-tree")?;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    let (added, removed, paths) = {
        let (root, old, new) = (request.root.clone(), tips.target.clone(), new.clone());
        blocking(move || lines_between(&root, &old, &new)).await?
    };
    match holder {
        Some(dir) => {
            run(&dir, &["merge", "--ff-only", "-q", &new].map(OsStr::new))
                .await?
                .ok("git merge --ff-only")?;
        }
        None => {
            let message = format!("baton: merge {}", request.branch);
            let args = [
                "update-ref",
                "-m",
                &message,
                &target_ref,
                &new,
                &tips.target,
            ];
            run(root, &args.map(OsStr::new))
                .await?
                .ok("git update-ref")?;
        }
    }
    Ok(MergeOutcome {
        target: request.target.clone(),
        added,
        removed,
        commit: new,
        paths,
    })
}

/// Lines added and removed from commit `old` to commit `new`, and the paths changed (sorted, the
/// first [`MERGED_PATHS_MAX`]).
fn lines_between(root: &Path, old: &str, new: &str) -> Result<(u64, u64, Vec<String>), RepoError> {
    let repo = open(root)?;
    let read = git2_error("read the merge");
    let tree = |id: &str| {
        Oid::from_str(id)
            .and_then(|id| repo.find_commit(id))
            .and_then(|c| c.tree())
            .map_err(&read)
    };
    let (old, new) = (tree(old)?, tree(new)?);
    let diff = repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .map_err(&read)?;
    let stats = diff.stats().map_err(&read)?;
    let mut paths: Vec<String> = diff
        .deltas()
        .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    paths.sort();
    paths.truncate(MERGED_PATHS_MAX);
    Ok((stats.insertions() as u64, stats.deletions() as u64, paths))
}
