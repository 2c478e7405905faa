//! `GitRepo` on real repositories: each test builds its own with the git CLI in a temporary
//! directory, calls the adapter, and checks what git itself then reports. Worktrees live beside
//! the user's checkout (not inside it), as in a real setup where they are ignored.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_runtime::adapters::git::{GitRepo, NODE_MODULES, UNTRACKED_FILE_BYTES_MAX};
use baton_runtime::ports::{
    Diff, FileChange, Head, MergeOutcome, MergeRequest, Repo, RepoError, WorktreeRequest,
};
use tempfile::TempDir;

/// Runs git in `dir`, failing the test if git fails; its standard output.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("git prints UTF-8 here")
}

/// A commit id, branch name or other one-line answer of git.
fn rev(dir: &Path, spec: &str) -> String {
    git(dir, &["rev-parse", spec]).trim().to_owned()
}

/// A new repository on `branch` whose commits (the test's and the adapter's) have an author.
fn init(dir: &Path, branch: &str) {
    std::fs::create_dir_all(dir).expect("test setup");
    git(dir, &["init", "-q", "-b", branch]);
    git(dir, &["config", "user.name", "t"]);
    git(dir, &["config", "user.email", "t@example.com"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
}

fn write(dir: &Path, path: &str, content: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().expect("a file in a directory")).expect("test setup");
    std::fs::write(file, content).expect("test setup");
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).expect("test setup")
}

fn commit(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

fn branch_exists(dir: &Path, branch: &str) -> bool {
    !git(dir, &["branch", "--list", branch]).trim().is_empty()
}

/// Each change of a diff as (path, kind, added, removed, committed).
fn summary(diff: &Diff) -> Vec<(&str, FileChange, u64, u64, bool)> {
    diff.files
        .iter()
        .map(|f| (f.path.as_str(), f.change, f.added, f.removed, f.committed))
        .collect()
}

/// Everything of a checkout a failed merge must leave as it was: its files (not `.git`), its
/// index file byte for byte, and its HEAD (branch and commit).
fn state(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, top: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("test setup") {
            let path = entry.expect("test setup").path();
            if path.file_name().expect("a named entry") == ".git" {
                continue;
            }
            if path.is_dir() {
                walk(&path, top, out);
            } else {
                let name = path
                    .strip_prefix(top)
                    .expect("test setup")
                    .display()
                    .to_string();
                out.push((name, std::fs::read(&path).expect("test setup")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    let index = dir.join(git(dir, &["rev-parse", "--git-path", "index"]).trim());
    out.push(("<index>".into(), std::fs::read(index).expect("test setup")));
    out.push((
        "<HEAD>".into(),
        git(dir, &["symbolic-ref", "HEAD"]).into_bytes(),
    ));
    out.push(("<HEAD commit>".into(), rev(dir, "HEAD").into_bytes()));
    out
}

/// A user's repository (`root`, on `main`) in a temporary directory, and the adapter.
struct World {
    _tmp: TempDir,
    base: PathBuf,
    root: PathBuf,
    repo: GitRepo,
}

impl World {
    /// A repository with no commit.
    fn empty() -> World {
        let tmp = tempfile::tempdir().expect("test setup");
        let base = tmp.path().canonicalize().expect("test setup");
        let root = base.join("repo");
        init(&root, "main");
        World {
            _tmp: tmp,
            base,
            root,
            repo: GitRepo::new(),
        }
    }

    /// A repository whose `main` holds `files` in one commit.
    fn with(files: &[(&str, &str)]) -> World {
        let world = World::empty();
        for (path, content) in files {
            write(&world.root, path, content);
        }
        commit(&world.root, "initial");
        world
    }

    /// A standard one: `a.txt` and `b.txt` of three lines each.
    fn standard() -> World {
        World::with(&[("a.txt", "one\ntwo\nthree\n"), ("b.txt", "x\ny\nz\n")])
    }

    fn worktree_path(&self, name: &str) -> PathBuf {
        self.base.join("worktrees").join(name)
    }

    fn request(&self, name: &str, base: Option<&str>) -> WorktreeRequest {
        WorktreeRequest {
            root: self.root.clone(),
            branch: format!("task/{name}"),
            path: self.worktree_path(name),
            base: base.map(str::to_owned),
        }
    }

    /// A task worktree `name` on branch `task/<name>` from HEAD.
    async fn task(&self, name: &str) -> PathBuf {
        self.repo
            .create_worktree(self.request(name, None))
            .await
            .expect("test setup");
        self.worktree_path(name)
    }

    async fn diff(&self, worktree: &Path) -> Diff {
        self.repo
            .diff(worktree.to_owned(), "main".into(), Vec::new())
            .await
            .expect("test setup")
    }

    fn merge_request(&self, name: &str, target: &str, squash: bool) -> MergeRequest {
        MergeRequest {
            root: self.root.clone(),
            branch: format!("task/{name}"),
            target: target.to_owned(),
            squash,
            message: None,
        }
    }

    async fn merge(&self, name: &str, squash: bool) -> Result<MergeOutcome, RepoError> {
        self.repo
            .merge(self.merge_request(name, "main", squash))
            .await
    }

    async fn remove(&self, name: &str) -> Result<(), RepoError> {
        self.repo
            .remove_worktree(
                self.root.clone(),
                self.worktree_path(name),
                format!("task/{name}"),
            )
            .await
    }

    fn worktree_count(&self) -> usize {
        git(&self.root, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Worktrees

#[tokio::test]
async fn a_worktree_starts_from_head_on_a_new_branch() {
    let world = World::standard();
    let wt = world.task("x").await;
    assert_eq!(read(&wt, "a.txt"), "one\ntwo\nthree\n");
    assert_eq!(
        git(&wt, &["symbolic-ref", "--short", "HEAD"]).trim(),
        "task/x"
    );
    assert_eq!(rev(&wt, "HEAD"), rev(&world.root, "main"));
    assert_eq!(world.worktree_count(), 2);
}

#[tokio::test]
async fn a_worktree_starts_from_the_base_branch_given() {
    let world = World::standard();
    git(&world.root, &["checkout", "-q", "-b", "dev"]);
    write(&world.root, "dev.txt", "dev\n");
    commit(&world.root, "dev work");
    git(&world.root, &["checkout", "-q", "main"]);
    world
        .repo
        .create_worktree(world.request("x", Some("dev")))
        .await
        .unwrap();
    let wt = world.worktree_path("x");
    assert_eq!(read(&wt, "dev.txt"), "dev\n");
    assert_eq!(rev(&wt, "HEAD"), rev(&world.root, "dev"));
}

#[tokio::test]
async fn an_unknown_base_branch_is_no_such_branch_and_creates_nothing() {
    let world = World::standard();
    let result = world
        .repo
        .create_worktree(world.request("x", Some("nope")))
        .await;
    assert_eq!(result, Err(RepoError::NoSuchBranch("nope".into())));
    assert!(!world.worktree_path("x").exists());
    assert!(!branch_exists(&world.root, "task/x"));
}

#[tokio::test]
async fn a_committed_link_on_the_way_to_the_worktree_is_refused_and_nothing_lands_outside() {
    let world = World::standard();
    let outside = tempfile::tempdir().unwrap();
    // The repository commits `.worktrees` as a link to a directory of the user's.
    std::os::unix::fs::symlink(outside.path(), world.root.join(".worktrees")).unwrap();
    commit(&world.root, "a link");
    let inside = |name: &str| world.root.join(".worktrees/task").join(name);
    let request = WorktreeRequest {
        path: inside("x"),
        ..world.request("x", None)
    };
    let result = world.repo.create_worktree(request).await;
    let Err(RepoError::Link { link, .. }) = &result else {
        panic!("{result:?}");
    };
    assert_eq!(link, Path::new(".worktrees"));
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing made outside the project"
    );
    assert!(!branch_exists(&world.root, "task/x"));
    // Nor is a directory removed through one.
    std::fs::create_dir_all(outside.path().join("task/y")).unwrap();
    std::fs::write(outside.path().join("task/y/keep.txt"), "mine").unwrap();
    let removed = world
        .repo
        .remove_worktree(world.root.clone(), inside("y"), "task/y".into())
        .await;
    assert!(
        matches!(removed, Err(RepoError::Link { .. })),
        "{removed:?}"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("task/y/keep.txt")).unwrap(),
        "mine"
    );
}

#[tokio::test]
async fn a_base_that_names_a_commit_or_a_tag_is_no_branch_and_creates_nothing() {
    let world = World::standard();
    git(&world.root, &["tag", "v1"]);
    let commit = rev(&world.root, "HEAD");
    for base in [commit.trim(), "v1", "HEAD~0", "main^{commit}"] {
        let result = world
            .repo
            .create_worktree(world.request("x", Some(base)))
            .await;
        assert_eq!(
            result,
            Err(RepoError::NotABranch(base.to_owned())),
            "{base}"
        );
        assert!(!world.worktree_path("x").exists());
        assert!(!branch_exists(&world.root, "task/x"));
    }
}

#[tokio::test]
async fn an_empty_repository_has_no_commits_to_branch_from() {
    let world = World::empty();
    let result = world.repo.create_worktree(world.request("x", None)).await;
    assert_eq!(result, Err(RepoError::NoCommits));
    assert!(!world.worktree_path("x").exists());
}

#[tokio::test]
async fn an_existing_branch_is_refused_and_nothing_is_created() {
    let world = World::standard();
    git(&world.root, &["branch", "task/x"]);
    let before = rev(&world.root, "task/x");
    let result = world.repo.create_worktree(world.request("x", None)).await;
    let Err(RepoError::Git(message)) = result else {
        panic!("expected a git error, got {result:?}");
    };
    assert!(message.contains("already exists"), "{message}");
    assert!(!world.worktree_path("x").exists());
    assert_eq!(rev(&world.root, "task/x"), before);
    assert_eq!(world.worktree_count(), 1);
}

#[tokio::test]
async fn an_existing_path_is_refused_and_no_branch_is_created() {
    let world = World::standard();
    let path = world.worktree_path("x");
    write(&path, "mine.txt", "mine\n");
    let result = world.repo.create_worktree(world.request("x", None)).await;
    assert!(matches!(result, Err(RepoError::Git(_))), "{result:?}");
    assert!(!branch_exists(&world.root, "task/x"));
    assert_eq!(read(&path, "mine.txt"), "mine\n");
}

#[tokio::test]
async fn a_failed_checkout_leaves_neither_worktree_nor_branch() {
    let world = World::standard();
    let hook = world.root.join(".git/hooks/post-checkout");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\necho hook refuses >&2\nexit 1\n").unwrap();
    let mut permissions = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&hook, permissions).unwrap();

    let result = world.repo.create_worktree(world.request("x", None)).await;
    let Err(RepoError::Git(message)) = result else {
        panic!("expected a git error, got {result:?}");
    };
    assert!(message.contains("hook refuses"), "{message}");
    assert!(!world.worktree_path("x").exists());
    assert!(!branch_exists(&world.root, "task/x"));
    assert_eq!(world.worktree_count(), 1);
}

#[tokio::test]
async fn the_roots_node_modules_is_linked_and_kept_out_of_diffs_and_commits() {
    let world = World::with(&[("a.txt", "one\n"), (".gitignore", "node_modules/\n")]);
    write(&world.root, "node_modules/dep/index.js", "dep\n");
    let wt = world.task("x").await;
    let link = wt.join(NODE_MODULES);
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(read(&wt, "node_modules/dep/index.js"), "dep\n");

    assert_eq!(world.diff(&wt).await, Diff::default());
    let committed = world.repo.commit_all(wt.clone(), "nothing".into()).await;
    assert_eq!(committed, Ok(false));
    // Nor does an agent's own git: the link is in the repository's info/exclude, once.
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    world.task("y").await;
    let exclude = std::fs::read_to_string(world.root.join(".git/info/exclude")).unwrap();
    assert_eq!(exclude.matches("/node_modules").count(), 1, "{exclude}");

    world.remove("x").await.unwrap();
    assert!(!wt.exists());
    assert_eq!(read(&world.root, "node_modules/dep/index.js"), "dep\n");
}

#[tokio::test]
async fn removal_takes_the_worktree_and_its_branch() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "scratch/untracked.txt", "left behind\n");
    world.remove("x").await.unwrap();
    assert!(!wt.exists());
    assert!(!branch_exists(&world.root, "task/x"));
    assert_eq!(world.worktree_count(), 1);
}

#[tokio::test]
async fn the_last_removal_leaves_no_worktrees_directory_behind() {
    let world = World::standard();
    let (a, b) = (world.task("a").await, world.task("b").await);
    world.remove("a").await.unwrap();
    assert!(!a.exists());
    assert!(
        b.exists(),
        "a sibling worktree and the directories holding it stay"
    );
    world.remove("b").await.unwrap();
    assert!(
        !world.root.join(".worktrees").exists(),
        "the empty .worktrees directory is gone with the last worktree"
    );
}

/// A crash can kill an agent's `git commit` while it holds its branch's ref lock: the close
/// after the restart removes the stale lock (older than `STALE_REF_LOCK_MS`) and the branch;
/// another branch's lock is not touched.
#[tokio::test]
async fn a_stale_lock_on_the_tasks_branch_does_not_stop_its_removal() {
    let world = World::standard();
    world.task("x").await;
    world.task("y").await;
    let heads = world.root.join(".git/refs/heads/task");
    for name in ["x.lock", "y.lock"] {
        // Made a minute older than the file system says it is.
        let lock = std::fs::File::create(heads.join(name)).unwrap();
        let made = lock.metadata().unwrap().modified().unwrap();
        lock.set_modified(made - std::time::Duration::from_secs(60))
            .unwrap();
    }
    world.remove("x").await.unwrap();
    assert!(!branch_exists(&world.root, "task/x"));
    assert!(!heads.join("x.lock").exists());
    assert!(heads.join("y.lock").exists(), "another branch's lock stays");
}

#[tokio::test]
async fn removing_a_worktree_twice_is_fine() {
    let world = World::standard();
    world.task("x").await;
    world.remove("x").await.unwrap();
    assert_eq!(world.remove("x").await, Ok(()));
    assert!(!branch_exists(&world.root, "task/x"));
}

#[tokio::test]
async fn a_locked_worktree_is_not_removed() {
    let world = World::standard();
    let wt = world.task("x").await;
    git(
        &world.root,
        &["worktree", "lock", wt.to_str().expect("UTF-8 path")],
    );
    let result = world.remove("x").await;
    let Err(RepoError::Git(message)) = result else {
        panic!("expected a git error, got {result:?}");
    };
    assert!(message.contains("locked"), "{message}");
    assert_eq!(read(&wt, "a.txt"), "one\ntwo\nthree\n");
    assert!(branch_exists(&world.root, "task/x"));
}

#[tokio::test]
async fn removal_never_takes_the_root_nor_the_main_branch() {
    let world = World::standard();
    world
        .repo
        .remove_worktree(world.root.clone(), world.root.clone(), "main".into())
        .await
        .unwrap();
    assert_eq!(read(&world.root, "a.txt"), "one\ntwo\nthree\n");
    assert!(branch_exists(&world.root, "main"));
    world
        .repo
        .remove_worktree(
            world.root.clone(),
            world.worktree_path("gone"),
            "main".into(),
        )
        .await
        .unwrap();
    assert!(branch_exists(&world.root, "main"));
}

#[tokio::test]
async fn a_directory_that_is_no_worktree_is_not_deleted() {
    let world = World::standard();
    let elsewhere = world.root.join("src");
    write(&world.root, "src/mine.txt", "mine\n");
    let result = world
        .repo
        .remove_worktree(world.root.clone(), elsewhere.clone(), "task/x".into())
        .await;
    let Err(RepoError::Git(message)) = result else {
        panic!("expected a refusal, got {result:?}");
    };
    assert!(message.contains("is not a worktree"), "{message}");
    assert_eq!(read(&world.root, "src/mine.txt"), "mine\n");
}

// ---------------------------------------------------------------------------------------------
// Diff

#[tokio::test]
async fn a_committed_edit_is_a_committed_modification() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "a.txt", "one\n2\nthree\n");
    commit(&wt, "edit");
    let diff = world.diff(&wt).await;
    assert_eq!(
        summary(&diff),
        [("a.txt", FileChange::Modified, 1, 1, true)]
    );
    assert!(
        diff.text
            .contains("--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"),
        "{}",
        diff.text
    );
}

#[tokio::test]
async fn an_uncommitted_edit_is_an_uncommitted_modification() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "b.txt", "x\ny\nz\nmore\n");
    let diff = world.diff(&wt).await;
    assert_eq!(
        summary(&diff),
        [("b.txt", FileChange::Modified, 1, 0, false)]
    );
    assert!(diff.text.contains(" z\n+more\n"), "{}", diff.text);
}

#[tokio::test]
async fn a_new_file_is_untracked_with_every_line_added_unless_staged() {
    let world = World::with(&[("a.txt", "one\n"), (".gitignore", "*.log\n")]);
    let wt = world.task("x").await;
    write(&wt, "new/c.txt", "x\ny\n");
    write(&wt, "staged.txt", "s\n");
    git(&wt, &["add", "staged.txt"]);
    write(&wt, "noise.log", "ignored\n");
    let diff = world.diff(&wt).await;
    assert_eq!(
        summary(&diff),
        [
            ("new/c.txt", FileChange::Untracked, 2, 0, false),
            ("staged.txt", FileChange::Added, 1, 0, false),
        ]
    );
    assert!(
        diff.text
            .contains("--- /dev/null\n+++ b/new/c.txt\n@@ -0,0 +1,2 @@\n+x\n+y\n"),
        "{}",
        diff.text
    );
}

#[tokio::test]
async fn a_deleted_file_is_a_deletion_committed_or_not() {
    let world = World::standard();
    let wt = world.task("x").await;
    git(&wt, &["rm", "-q", "a.txt"]);
    commit(&wt, "drop a");
    std::fs::remove_file(wt.join("b.txt")).unwrap();
    let diff = world.diff(&wt).await;
    assert_eq!(
        summary(&diff),
        [
            ("a.txt", FileChange::Deleted, 0, 3, true),
            ("b.txt", FileChange::Deleted, 0, 3, false),
        ]
    );
    assert!(
        diff.text.contains("--- a/b.txt\n+++ /dev/null\n"),
        "{}",
        diff.text
    );
}

#[tokio::test]
async fn an_overlay_hides_and_replaces_files_without_touching_the_worktree() {
    let world = World::standard();
    let wt = world.task("x").await;
    // What the engine put in: an instruction file and a block in a tracked file.
    write(&wt, "CLAUDE.md", "instructions\n");
    write(&wt, "a.txt", "one\ntwo\nthree\ninjected\n");
    write(&wt, "b.txt", "x\nY\nz\n");
    let before = state(&wt);
    let overlay = vec![
        ("CLAUDE.md".to_owned(), None),
        ("a.txt".to_owned(), Some(b"one\ntwo\nthree\n".to_vec())),
    ];
    let diff = world
        .repo
        .diff(wt.clone(), "main".into(), overlay)
        .await
        .unwrap();
    assert_eq!(
        summary(&diff),
        [("b.txt", FileChange::Modified, 1, 1, false)]
    );
    assert!(!diff.text.contains("injected"), "{}", diff.text);
    assert!(!diff.text.contains("instructions"), "{}", diff.text);
    assert_eq!(state(&wt), before);
    assert_eq!(read(&wt, "a.txt"), "one\ntwo\nthree\ninjected\n");

    let replaced = world
        .repo
        .diff(
            wt.clone(),
            "main".into(),
            vec![("b.txt".to_owned(), Some(b"x\ny\nz\nw\n".to_vec()))],
        )
        .await
        .unwrap();
    assert!(replaced.text.contains(" z\n+w\n"), "{}", replaced.text);
    assert_eq!(state(&wt), before);
}

#[tokio::test]
async fn changed_files_come_committed_first_then_by_path() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "z.txt", "z\n");
    write(&wt, "m.txt", "m\n");
    commit(&wt, "two files");
    write(&wt, "c.txt", "c\n");
    write(&wt, "a.txt", "changed\n");
    let diff = world.diff(&wt).await;
    let order: Vec<(&str, bool)> = diff
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.committed))
        .collect();
    assert_eq!(
        order,
        [
            ("m.txt", true),
            ("z.txt", true),
            ("a.txt", false),
            ("c.txt", false)
        ]
    );
}

#[tokio::test]
async fn the_diff_is_against_where_the_worktree_forked_from_its_base() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&world.root, "b.txt", "main moved on\n");
    commit(&world.root, "main work");
    write(&wt, "a.txt", "task\n");
    let diff = world.diff(&wt).await;
    assert_eq!(
        summary(&diff),
        [("a.txt", FileChange::Modified, 1, 3, false)]
    );
}

#[tokio::test]
async fn a_diff_against_an_unknown_base_is_no_such_branch() {
    let world = World::standard();
    let wt = world.task("x").await;
    let result = world.repo.diff(wt, "nope".into(), Vec::new()).await;
    assert_eq!(result, Err(RepoError::NoSuchBranch("nope".into())));
}

#[tokio::test]
async fn an_untracked_file_over_the_limit_is_listed_but_not_read() {
    let world = World::standard();
    let wt = world.task("x").await;
    let size = usize::try_from(UNTRACKED_FILE_BYTES_MAX).unwrap() + 2;
    std::fs::write(wt.join("dump.txt"), "q\n".repeat(size / 2)).unwrap();
    let diff = world.diff(&wt).await;
    assert_eq!(
        summary(&diff),
        [("dump.txt", FileChange::Untracked, 0, 0, false)]
    );
    assert!(diff.text.contains("dump.txt"), "{}", diff.text);
    assert!(!diff.text.contains("+q\n"));
    assert!(diff.text.len() < 1024, "{} bytes", diff.text.len());
}

// ---------------------------------------------------------------------------------------------
// Commit

#[tokio::test]
async fn with_no_identity_configured_commits_and_merges_are_made_as_baton() {
    let world = World::standard();
    // An empty identity overrides any the machine has: git alone would refuse to commit.
    git(&world.root, &["config", "user.name", ""]);
    git(&world.root, &["config", "user.email", ""]);
    let wt = world.task("x").await;
    write(&wt, "new.txt", "new\n");
    let committed = world.repo.commit_all(wt.clone(), "Task work".into()).await;
    assert_eq!(committed, Ok(true));
    assert_eq!(
        git(&wt, &["log", "-1", "--format=%an <%ae>"]).trim(),
        "Baton <baton@localhost>"
    );
    let merged = world.merge("x", true).await;
    assert!(merged.is_ok(), "{merged:?}");
    assert_eq!(
        git(&world.root, &["log", "-1", "--format=%cn <%ce>", "main"]).trim(),
        "Baton <baton@localhost>"
    );
}

#[tokio::test]
async fn commit_all_commits_every_change_then_finds_nothing_left() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "a.txt", "changed\n");
    write(&wt, "new.txt", "new\n");
    std::fs::remove_file(wt.join("b.txt")).unwrap();
    let committed = world
        .repo
        .commit_all(wt.clone(), "Task work".into())
        .await
        .unwrap();
    assert!(committed);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(git(&wt, &["log", "-1", "--format=%s"]).trim(), "Task work");
    assert_eq!(
        git(&wt, &["show", "--name-status", "--format=", "HEAD"]),
        "M\ta.txt\nD\tb.txt\nA\tnew.txt\n"
    );
    let again = world
        .repo
        .commit_all(wt.clone(), "Again".into())
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(git(&wt, &["log", "-1", "--format=%s"]).trim(), "Task work");
}

// ---------------------------------------------------------------------------------------------
// Status and committed content

#[tokio::test]
async fn a_worktrees_status_names_its_branch_commit_and_every_uncommitted_path() {
    let world = World::standard();
    let wt = world.task("x").await;
    let clean = world.repo.status(wt.clone()).await.unwrap();
    assert_eq!(clean.head, Head::Branch("task/x".into()));
    assert_eq!(clean.commit, rev(&wt, "HEAD"));
    assert!(clean.dirty.is_empty(), "{clean:?}");

    write(&wt, "a.txt", "changed\n");
    write(&wt, "dir/new file.txt", "untracked, in a new directory\n");
    write(&wt, "staged.txt", "staged\n");
    git(&wt, &["add", "staged.txt"]);
    git(&wt, &["mv", "b.txt", "renamed.txt"]);
    let dirty = world.repo.status(wt.clone()).await.unwrap();
    assert_eq!(
        dirty.dirty,
        [
            "a.txt",
            "b.txt",
            "dir/new file.txt",
            "renamed.txt",
            "staged.txt"
        ]
    );

    commit(&wt, "all of it");
    git(&wt, &["checkout", "-q", "--detach"]);
    let detached = world.repo.status(wt.clone()).await.unwrap();
    assert_eq!(detached.head, Head::Detached);
    assert_eq!(detached.commit, rev(&wt, "HEAD"));
    assert!(detached.dirty.is_empty());
}

#[tokio::test]
async fn what_head_holds_is_read_not_what_the_worktree_holds() {
    let world = World::standard();
    let wt = world.task("x").await;
    let committed = read(&wt, "a.txt");
    write(&wt, "a.txt", "edited, not committed\n");
    write(&wt, "new.txt", "never committed\n");
    let read_back = |path: &str| world.repo.read_committed(wt.clone(), path.into());
    assert_eq!(read_back("a.txt").await, Ok(Some(committed.into_bytes())));
    assert_eq!(read_back("new.txt").await, Ok(None));
    assert_eq!(read_back("no/such/file").await, Ok(None));
}

// ---------------------------------------------------------------------------------------------
// Merge

#[tokio::test]
async fn a_squash_merge_lands_in_the_users_checkout_as_one_commit() {
    let world = World::standard();
    let old_main = rev(&world.root, "main");
    let wt = world.task("x").await;
    write(&wt, "new.txt", "n1\nn2\n");
    commit(&wt, "first");
    write(&wt, "a.txt", "one\n2\nthree\n");
    commit(&wt, "second");
    let mut request = world.merge_request("x", "main", true);
    request.message = Some("Task x".into());
    let outcome = world.repo.merge(request).await.unwrap();
    assert_eq!(
        outcome,
        MergeOutcome {
            target: "main".into(),
            added: 3,
            removed: 1,
            commit: rev(&world.root, "main"),
            paths: vec!["a.txt".into(), "new.txt".into()],
        }
    );
    assert_eq!(read(&world.root, "new.txt"), "n1\nn2\n");
    assert_eq!(read(&world.root, "a.txt"), "one\n2\nthree\n");
    assert_eq!(git(&world.root, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&world.root, &["rev-list", "--parents", "-n", "1", "main"]).trim(),
        format!("{} {old_main}", rev(&world.root, "main"))
    );
    assert_eq!(
        git(&world.root, &["log", "-1", "--format=%s", "main"]).trim(),
        "Task x"
    );
    assert_eq!(rev(&world.root, "HEAD"), rev(&world.root, "main"));
}

#[tokio::test]
async fn a_merge_without_squash_makes_a_commit_with_both_parents() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "a.txt", "one\ntwo\nthree\nfour\n");
    commit(&wt, "task work");
    write(&world.root, "b.txt", "x\ny\nz\nzz\n");
    commit(&world.root, "main work");
    let (old_main, tip) = (rev(&world.root, "main"), rev(&wt, "HEAD"));
    let outcome = world.merge("x", false).await.unwrap();
    assert_eq!((outcome.added, outcome.removed), (1, 0));
    let new_main = rev(&world.root, "main");
    assert_eq!(outcome.commit, new_main, "the target's new tip");
    assert_eq!(
        outcome.paths,
        ["a.txt"],
        "what the merge changed on main, not main's own work"
    );
    assert_eq!(
        git(&world.root, &["rev-list", "--parents", "-n", "1", "main"]).trim(),
        format!("{new_main} {old_main} {tip}")
    );
    assert_eq!(
        git(&world.root, &["log", "-1", "--format=%s", "main"]).trim(),
        "Merge branch 'task/x'"
    );
    assert_eq!(read(&world.root, "a.txt"), "one\ntwo\nthree\nfour\n");
    assert_eq!(read(&world.root, "b.txt"), "x\ny\nz\nzz\n");
    assert_eq!(git(&world.root, &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn a_branch_ahead_of_its_target_is_fast_forwarded() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "c.txt", "c\n");
    commit(&wt, "task work");
    let outcome = world.merge("x", false).await.unwrap();
    assert_eq!((outcome.added, outcome.removed), (1, 0));
    assert_eq!(rev(&world.root, "main"), rev(&wt, "HEAD"));
    assert_eq!(
        (outcome.commit, outcome.paths),
        (rev(&wt, "HEAD"), vec!["c.txt".into()])
    );
    assert_eq!(read(&world.root, "c.txt"), "c\n");
    assert_eq!(git(&world.root, &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn a_branch_already_in_its_target_merges_nothing() {
    let world = World::standard();
    let wt = world.task("x").await;
    let before = rev(&world.root, "main");
    let unchanged = MergeOutcome {
        target: "main".into(),
        added: 0,
        removed: 0,
        commit: before.clone(),
        paths: Vec::new(),
    };
    assert_eq!(world.merge("x", false).await, Ok(unchanged.clone()));
    assert_eq!(world.merge("x", true).await, Ok(unchanged.clone()));
    assert_eq!(rev(&world.root, "main"), before);

    write(&wt, "c.txt", "c\n");
    commit(&wt, "task work");
    world.merge("x", true).await.unwrap();
    let squashed = rev(&world.root, "main");
    // The squash commit holds the branch's changes already: nothing to squash again.
    let unchanged = MergeOutcome {
        commit: squashed.clone(),
        ..unchanged
    };
    assert_eq!(world.merge("x", true).await, Ok(unchanged));
    assert_eq!(rev(&world.root, "main"), squashed);
}

#[tokio::test]
async fn a_conflict_is_reported_and_leaves_the_users_checkout_byte_identical() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "a.txt", "one\ntheirs\nthree\n");
    write(&wt, "b.txt", "x\ny\nz\nfine\n");
    commit(&wt, "task work");
    write(&world.root, "a.txt", "one\nours\nthree\n");
    commit(&world.root, "main work");
    let (before, refs) = (state(&world.root), git(&world.root, &["for-each-ref"]));
    for squash in [false, true] {
        assert_eq!(
            world.merge("x", squash).await,
            Err(RepoError::Conflict(vec!["a.txt".into()]))
        );
        assert_eq!(state(&world.root), before);
        assert_eq!(git(&world.root, &["for-each-ref"]), refs);
        assert!(!world.root.join(".git/MERGE_HEAD").exists());
    }
}

#[tokio::test]
async fn a_dirty_user_checkout_is_not_merged_into_and_is_left_alone() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "c.txt", "c\n");
    commit(&wt, "task work");
    let main = rev(&world.root, "main");

    write(&world.root, "scratch.txt", "mine\n");
    let before = state(&world.root);
    assert_eq!(world.merge("x", true).await, Err(RepoError::Dirty));
    assert_eq!(state(&world.root), before);
    assert_eq!(rev(&world.root, "main"), main);

    std::fs::remove_file(world.root.join("scratch.txt")).unwrap();
    write(&world.root, "a.txt", "edited by the user\n");
    assert_eq!(world.merge("x", false).await, Err(RepoError::Dirty));
    assert_eq!(read(&world.root, "a.txt"), "edited by the user\n");
    assert_eq!(rev(&world.root, "main"), main);
}

#[tokio::test]
async fn a_target_checked_out_nowhere_only_has_its_ref_moved() {
    let world = World::standard();
    let wt = world.task("x").await;
    write(&wt, "c.txt", "c\n");
    commit(&wt, "task work");
    git(&world.root, &["checkout", "-q", "-b", "side"]);
    write(&world.root, "scratch.txt", "the user's own work\n");
    let before = state(&world.root);
    let old_main = rev(&world.root, "main");

    let outcome = world.merge("x", true).await.unwrap();
    assert_eq!((outcome.added, outcome.removed), (1, 0));
    assert_eq!(
        git(&world.root, &["rev-parse", "main^"]).trim(),
        old_main,
        "one squash commit on main"
    );
    assert_eq!(
        git(&world.root, &["show", "main:c.txt"]),
        "c\n",
        "main holds the change"
    );
    assert_eq!(state(&world.root), before);
    assert!(!world.root.join("c.txt").exists());
}

#[tokio::test]
async fn a_merge_lands_in_the_worktree_holding_the_target_despite_its_node_modules_link() {
    let world = World::with(&[("a.txt", "one\n"), (".gitignore", "node_modules/\n")]);
    write(&world.root, "node_modules/dep.js", "dep\n");
    world
        .repo
        .create_worktree(WorktreeRequest {
            root: world.root.clone(),
            branch: "coord".into(),
            path: world.worktree_path("coord"),
            base: None,
        })
        .await
        .unwrap();
    let coord = world.worktree_path("coord");
    assert!(coord.join(NODE_MODULES).is_symlink());
    world
        .repo
        .create_worktree(world.request("x", Some("coord")))
        .await
        .unwrap();
    let wt = world.worktree_path("x");
    write(&wt, "c.txt", "c\n");
    // Through the adapter: a plain `git add -A` would commit the link (`node_modules/` does
    // not match a symlink).
    let committed = world.repo.commit_all(wt.clone(), "task work".into()).await;
    assert_eq!(committed, Ok(true));
    assert_eq!(
        git(&wt, &["show", "--name-only", "--format=", "HEAD"]),
        "c.txt\n"
    );
    let root_before = state(&world.root);

    let request = world.merge_request("x", "coord", true);
    world.repo.merge(request).await.unwrap();
    assert_eq!(read(&coord, "c.txt"), "c\n");
    assert_eq!(
        git(&coord, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    assert_eq!(state(&world.root), root_before);
}

#[tokio::test]
async fn merging_into_an_unknown_target_or_from_an_unknown_branch_fails() {
    let world = World::standard();
    world.task("x").await;
    assert_eq!(
        world
            .repo
            .merge(world.merge_request("x", "nope", true))
            .await,
        Err(RepoError::NoSuchBranch("nope".into()))
    );
    let result = world.merge("missing", false).await;
    assert!(matches!(result, Err(RepoError::Git(_))), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Main branch

#[tokio::test]
async fn the_main_branch_is_main_when_there_is_one() {
    let world = World::standard();
    git(&world.root, &["branch", "master"]);
    git(&world.root, &["checkout", "-q", "-b", "feature"]);
    assert_eq!(
        world.repo.main_branch(world.root.clone()).await,
        Ok("main".into())
    );
}

#[tokio::test]
async fn the_main_branch_is_master_without_main() {
    let world = World::standard();
    git(&world.root, &["branch", "-m", "main", "master"]);
    git(&world.root, &["checkout", "-q", "-b", "feature"]);
    assert_eq!(
        world.repo.main_branch(world.root.clone()).await,
        Ok("master".into())
    );
}

#[tokio::test]
async fn the_main_branch_follows_the_remotes_head() {
    let world = World::standard();
    git(&world.root, &["branch", "-m", "main", "trunk"]);
    let clone = world.base.join("clone");
    git(
        &world.base,
        &[
            "clone",
            "-q",
            world.root.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    git(&clone, &["branch", "main"]);
    git(&clone, &["checkout", "-q", "-b", "feature"]);
    assert_eq!(
        world.repo.main_branch(clone.clone()).await,
        Ok("trunk".into())
    );
}

#[tokio::test]
async fn without_main_or_master_the_checked_out_branch_is_the_main_branch() {
    let world = World::standard();
    git(&world.root, &["branch", "-m", "main", "dev"]);
    assert_eq!(
        world.repo.main_branch(world.root.clone()).await,
        Ok("dev".into())
    );
}
