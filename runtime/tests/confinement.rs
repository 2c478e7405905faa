//! Nothing outside the project: a real `baton daemon` on a repository that commits its agents'
//! files as symbolic links of every shape (absolute, relative, to a directory, dangling, the
//! worktrees' directory itself) and a user whose own `.mcp.json` is a link. The user's files
//! outside the project are hashed before and after: Baton changes none of them, refuses with a
//! 409 that names the link, and leaves no worktree, branch or config behind. Loopback only.

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{Daemon, git, repo_with};
use serde_json::json;

/// Every file under `dir` with its bytes, links as their targets: what must not change.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((path, target.into_os_string().into_encoded_bytes()));
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// A home directory with files an attacker would want changed.
fn home(root: &Path) -> PathBuf {
    let home = root.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::create_dir_all(home.join(".gemini")).unwrap();
    std::fs::write(home.join(".ssh/authorized_keys"), "ssh-ed25519 AAAA mine\n").unwrap();
    std::fs::write(home.join(".bashrc"), "export PATH=$HOME/bin:$PATH\n").unwrap();
    std::fs::write(
        home.join(".gemini/settings.json"),
        "{ \"theme\": \"mine\" }\n",
    )
    .unwrap();
    std::fs::write(home.join("mcp.json"), "{ \"mcpServers\": {} }\n").unwrap();
    home
}

/// A repository that commits `links` (path, target) besides a README.
fn repo_linking(root: &Path, name: &str, links: &[(&str, &Path)]) -> PathBuf {
    let repo = repo_with(&root.join(name), &[("README.md", "# cloned\n")]);
    for (at, target) in links {
        symlink(target, repo.join(at)).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "links"]);
    repo
}

fn worktrees(repo: &Path) -> usize {
    git(repo, &["worktree", "list"]).lines().count()
}

#[test]
fn links_in_a_cloned_repository_are_never_written_through() {
    let temp = tempfile::tempdir().unwrap();
    let home = home(temp.path());
    let keys = home.join(".ssh/authorized_keys");
    let codex = repo_linking(
        temp.path(),
        "codex",
        &[("AGENTS.md", &keys), ("notes", &home)],
    );
    let gemini_file = repo_linking(
        temp.path(),
        "gemini-file",
        &[("GEMINI.md", Path::new("../../../../home/.bashrc"))],
    );
    let gemini_dir = repo_linking(
        temp.path(),
        "gemini-dir",
        &[(".gemini", &home.join(".gemini"))],
    );
    let copilot = repo_linking(
        temp.path(),
        "copilot",
        &[(".agent.md", Path::new("/nonexistent/dangling"))],
    );
    let worktrees_out = repo_linking(temp.path(), "worktrees-out", &[(".worktrees", &home)]);
    let before = snapshot(&home);
    let daemon = Daemon::start(&temp.path().join("state"));
    for (repo, agent, link) in [
        (&codex, "codex", "AGENTS.md"),
        (&gemini_file, "gemini", "GEMINI.md"),
        (&gemini_dir, "gemini", ".gemini"),
        (&copilot, "copilot", ".agent.md"),
        (&worktrees_out, "codex", ".worktrees"),
    ] {
        let (_, token, _) = daemon.register(repo, agent, &[]);
        let (status, answer) = daemon.rest(
            &token,
            "POST",
            "/api/tasks",
            Some(json!({ "name": "work", "prompt": "Write the notes" })),
        );
        assert_eq!(status, 409, "{agent} {link}: {answer}\n{}", daemon.log());
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("{link} is a symbolic link")),
            "{agent}: {error}"
        );
        assert_eq!(worktrees(repo), 1, "{agent}: no worktree left");
        assert_eq!(
            git(repo, &["branch", "--format=%(refname:short)"]),
            "main\n",
            "{agent}: no branch left"
        );
        let (_, tasks) = daemon.rest(&token, "GET", "/api/tasks", None);
        assert_eq!(tasks, json!([]), "{agent}");
    }
    assert_eq!(snapshot(&home), before, "nothing of the user's changed");
    let configs: Vec<_> = std::fs::read_dir(temp.path().join("state/mcp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("baton-subtask-"))
        .collect();
    assert!(configs.is_empty(), "{configs:?}");
    daemon.stop();
}

#[test]
fn a_users_mcp_json_that_is_a_link_is_not_written_through() {
    let temp = tempfile::tempdir().unwrap();
    let home = home(temp.path());
    let repo = repo_with(&temp.path().join("project"), &[("README.md", "# mine\n")]);
    symlink(home.join("mcp.json"), repo.join(".mcp.json")).unwrap();
    let before = snapshot(&home);
    let daemon = Daemon::start(&temp.path().join("state"));
    let (status, answer) = daemon.app(
        "POST",
        "/app/coordinators",
        Some(json!({ "projectRoot": repo, "agent": "codex" })),
    );
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains(".mcp.json is a symbolic link"),
        "{answer}"
    );
    assert_eq!(snapshot(&home), before);
    assert!(
        std::fs::symlink_metadata(repo.join(".mcp.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let (_, status) = daemon.app("GET", "/app/status", None);
    assert_eq!(status["coordinators"], json!([]));
    daemon.stop();
}
