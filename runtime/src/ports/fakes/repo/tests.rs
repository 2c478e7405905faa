use std::path::Path;
use std::time::Duration;

use super::FakeRepo;
use crate::ports::fakes::Tree;
use crate::ports::fakes::tree::tests::tree;
use crate::ports::{FileChange, Head, MergeRequest, Repo, RepoError, WorktreeRequest};

/// The worktree `repo_with_worktree` makes.
const WT: &str = "/r/.worktrees/task/x";

fn worktree(root: &str, branch: &str, base: Option<&str>) -> WorktreeRequest {
    WorktreeRequest {
        root: root.into(),
        branch: branch.into(),
        path: Path::new(root).join(".worktrees").join(branch),
        base: base.map(Into::into),
    }
}

async fn repo_with_worktree() -> FakeRepo {
    let repo = FakeRepo::default();
    repo.add_repo(Path::new("/r"), "main", tree(&[("a.txt", "one\ntwo\n")]));
    repo.create_worktree(worktree("/r", "task/x", None))
        .await
        .unwrap();
    repo
}

fn merge(squash: bool) -> MergeRequest {
    MergeRequest {
        root: "/r".into(),
        branch: "task/x".into(),
        target: "main".into(),
        squash,
        message: None,
    }
}

#[tokio::test]
async fn it_refuses_what_git_refuses() {
    let repo = FakeRepo::default();
    let root = Path::new("/repo");
    repo.add_repo(root, "main", Tree::new());
    repo.create_worktree(worktree("/repo", "task/a-123456", None))
        .await
        .unwrap();
    assert!(
        repo.create_worktree(worktree("/repo", "task/a-123456", None))
            .await
            .is_err(),
        "branch exists"
    );
    assert_eq!(
        repo.create_worktree(worktree("/repo", "task/b", Some("nope")))
            .await,
        Err(RepoError::NoSuchBranch("nope".into()))
    );
    repo.add_empty_repo(Path::new("/empty"));
    assert_eq!(
        repo.create_worktree(worktree("/empty", "x", None)).await,
        Err(RepoError::NoCommits)
    );
    repo.remove_worktree(
        root.into(),
        "/repo/.worktrees/task/a-123456".into(),
        "task/a-123456".into(),
    )
    .await
    .unwrap();
    assert_eq!(repo.branches(root), ["main"]);
    assert!(repo.worktrees(root).is_empty());
}

#[tokio::test]
async fn edits_show_in_the_diff_committed_or_not() {
    let repo = repo_with_worktree().await;
    let wt = Path::new(WT);
    repo.edit(wt, "a.txt", "one\n2\n").unwrap();
    repo.commit(wt).unwrap();
    repo.edit(wt, "b.txt", "new\n").unwrap();
    let diff = repo
        .diff(wt.into(), "main".into(), Vec::new())
        .await
        .unwrap();
    let summary: Vec<_> = diff
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.change, f.added, f.removed, f.committed))
        .collect();
    assert_eq!(
        summary,
        [
            ("a.txt", FileChange::Modified, 1, 1, true),
            ("b.txt", FileChange::Untracked, 1, 0, false)
        ]
    );
    assert!(diff.text.contains("-two\n+2\n"), "{}", diff.text);
    let hidden = repo
        .diff(wt.into(), "main".into(), vec![("b.txt".into(), None)])
        .await
        .unwrap();
    assert_eq!(hidden.files.len(), 1, "the overlay hides b.txt");
}

#[tokio::test]
async fn a_merge_brings_the_branch_into_the_users_checkout() {
    let repo = repo_with_worktree().await;
    let wt = Path::new(WT);
    repo.edit(wt, "b.txt", "new\n").unwrap();
    repo.commit(wt).unwrap();
    let outcome = repo.merge(merge(true)).await.unwrap();
    assert_eq!((outcome.added, outcome.removed), (1, 0));
    assert_eq!(repo.files(Path::new("/r")).unwrap()["b.txt"], "new\n");
    assert!(!repo.is_dirty(Path::new("/r")));
    assert_eq!(repo.merged(), [merge(true)]);
}

#[tokio::test]
async fn both_sides_changing_a_file_conflict_and_change_nothing() {
    let repo = repo_with_worktree().await;
    let (wt, root) = (Path::new(WT), Path::new("/r"));
    repo.edit(wt, "a.txt", "theirs\n").unwrap();
    repo.commit(wt).unwrap();
    repo.edit(root, "a.txt", "ours\n").unwrap();
    repo.commit(root).unwrap();
    assert_eq!(
        repo.merge(merge(false)).await,
        Err(RepoError::Conflict(vec!["a.txt".into()]))
    );
    assert_eq!(repo.files(root).unwrap()["a.txt"], "ours\n");
    assert_eq!(repo.tree(root, "main").unwrap()["a.txt"], "ours\n");
    assert!(repo.merged().is_empty());
}

#[tokio::test]
async fn a_dirty_checkout_is_not_merged_into() {
    let repo = repo_with_worktree().await;
    repo.edit(Path::new("/r"), "scratch", "mine\n").unwrap();
    assert_eq!(repo.merge(merge(false)).await, Err(RepoError::Dirty));
}

#[tokio::test]
async fn excluded_untracked_files_are_neither_changes_nor_committed_and_outlive_a_merge() {
    let repo = repo_with_worktree().await;
    let (root, wt) = (Path::new("/r"), Path::new(WT));
    repo.exclude(root.to_owned(), "/.mcp.json".into())
        .await
        .unwrap();
    repo.exclude(root.to_owned(), "/.worktrees/".into())
        .await
        .unwrap();
    repo.edit(root, ".mcp.json", "{}\n").unwrap();
    repo.edit(root, ".worktrees/x", "y\n").unwrap();
    assert!(!repo.is_dirty(root), "excluded files are not changes");
    // Worktrees share the repository's exclusions, as git's info/exclude.
    repo.edit(wt, ".mcp.json", "{}\n").unwrap();
    repo.edit(wt, "b.txt", "new\n").unwrap();
    let diff = repo
        .diff(wt.to_owned(), "main".into(), Vec::new())
        .await
        .unwrap();
    let paths: Vec<&str> = diff.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["b.txt"]);
    assert!(repo.commit(wt).unwrap());
    assert!(!repo.tree(root, "task/x").unwrap().contains_key(".mcp.json"));
    repo.merge(merge(false)).await.unwrap();
    let files = repo.files(root).unwrap();
    assert_eq!(files["b.txt"], "new\n");
    assert_eq!(files[".mcp.json"], "{}\n", "the user's excluded file stays");
    // An untracked file nothing excludes is a change.
    repo.edit(root, "scratch", "mine\n").unwrap();
    assert!(repo.is_dirty(root));
}

#[tokio::test]
async fn removal_takes_the_worktree_and_its_branch_unless_stuck() {
    let repo = repo_with_worktree().await;
    let wt = Path::new(WT);
    repo.make_stuck(wt);
    assert!(
        repo.remove_worktree("/r".into(), wt.into(), "task/x".into())
            .await
            .is_err()
    );
    repo.unstick(wt);
    repo.remove_worktree("/r".into(), wt.into(), "task/x".into())
        .await
        .unwrap();
    assert!(repo.worktrees(Path::new("/r")).is_empty());
    assert_eq!(repo.branches(Path::new("/r")), ["main"]);
    assert_eq!(repo.files(wt), None, "its files went with it");
}

#[tokio::test(start_paused = true)]
async fn slow_operations_take_their_latency_in_tokio_time() {
    let repo = repo_with_worktree().await;
    repo.slow_worktrees(Duration::from_millis(300));
    repo.slow_merges(Duration::from_millis(200));
    repo.slow_removals(Duration::from_millis(100));
    let start = tokio::time::Instant::now();
    repo.create_worktree(worktree("/r", "task/y", None))
        .await
        .unwrap();
    repo.merge(merge(true)).await.unwrap();
    repo.remove_worktree("/r".into(), WT.into(), "task/x".into())
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(600));
}

#[tokio::test]
async fn a_status_names_the_branch_its_commit_and_what_is_not_committed() {
    let repo = repo_with_worktree().await;
    let clean = repo.status(WT.into()).await.unwrap();
    assert_eq!(clean.head, Head::Branch("task/x".into()));
    assert!(clean.dirty.is_empty());
    repo.edit(Path::new(WT), "a.txt", "changed\n").unwrap();
    repo.edit(Path::new(WT), "b.txt", "new\n").unwrap();
    let dirty = repo.status(WT.into()).await.unwrap();
    assert_eq!(dirty.dirty, ["a.txt", "b.txt"]);
    assert_eq!(dirty.commit, clean.commit, "nothing committed yet");
    assert_eq!(
        repo.read_committed(WT.into(), "a.txt".into()).await,
        Ok(Some(b"one\ntwo\n".to_vec())),
        "HEAD's content, not the working file's"
    );
    assert_eq!(
        repo.read_committed(WT.into(), "b.txt".into()).await,
        Ok(None)
    );
    repo.commit(Path::new(WT)).unwrap();
    let committed = repo.status(WT.into()).await.unwrap();
    assert!(committed.dirty.is_empty());
    assert_ne!(committed.commit, clean.commit);
    assert!(repo.status("/elsewhere".into()).await.is_err());
}

#[tokio::test]
async fn a_merge_tells_the_targets_new_tip_and_the_paths_it_changed() {
    let repo = repo_with_worktree().await;
    let before = repo.status("/r".into()).await.unwrap().commit;
    let unchanged = repo.merge(merge(true)).await.unwrap();
    assert_eq!((unchanged.commit, unchanged.paths), (before, Vec::new()));
    repo.edit(Path::new(WT), "b.txt", "new\n").unwrap();
    repo.commit(Path::new(WT)).unwrap();
    let merged = repo.merge(merge(false)).await.unwrap();
    assert_eq!(merged.paths, ["b.txt"]);
    assert_eq!(
        merged.commit,
        repo.status("/r".into()).await.unwrap().commit
    );
}
