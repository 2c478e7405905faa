//! A worktree's diff against where it forked from its base: the working tree (untracked files
//! included, large ones listed but not read) and the caller's overlay, built in an in-memory
//! index that is never written back, then diffed tree to tree with git2.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{
    Delta, DiffFormat, DiffOptions, Index, IndexAddOption, IndexEntry, IndexTime, Oid, Patch,
};

use super::run::{git2_error, open};
use super::{DIFF_TEXT_BYTES_MAX, UNTRACKED_FILE_BYTES_MAX};
use crate::ports::{ChangedFile, Diff, FileChange, Overlay, RepoError};

pub(super) fn diff_of(worktree: &Path, base: &str, overlay: Overlay) -> Result<Diff, RepoError> {
    let repo = open(worktree)?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(git2_error("read the worktree's HEAD"))?;
    let base_id = repo
        .revparse_single(&format!("{base}^{{commit}}"))
        .map_err(|_| RepoError::NoSuchBranch(base.to_owned()))?
        .id();
    let fork = repo
        .merge_base(head.id(), base_id)
        .map_err(git2_error("find where the worktree forked"))?;
    let fork_tree = repo
        .find_commit(fork)
        .and_then(|c| c.tree())
        .map_err(git2_error("read the fork point"))?;
    let head_tree = head.tree().map_err(git2_error("read HEAD's tree"))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| RepoError::Git(format!("{} has no working tree", worktree.display())))?
        .to_owned();
    // The index as on disk, for "does git track it", and an in-memory copy to build the
    // worktree's state in. Neither is written back.
    let tracked = Index::open(&repo.path().join("index")).map_err(git2_error("read the index"))?;
    let mut index = repo.index().map_err(git2_error("read the index"))?;
    let untracked =
        |path: &Path| tracked.get_path(path, 0).is_none() && head_tree.get_path(path).is_err();
    let mut large: BTreeMap<String, u64> = BTreeMap::new();
    let mut leave_out = |path: &Path, _matched: &[u8]| -> i32 {
        let Ok(meta) = std::fs::symlink_metadata(workdir.join(path)) else {
            return 0;
        };
        if meta.is_file() && meta.len() > UNTRACKED_FILE_BYTES_MAX && untracked(path) {
            large.insert(path.to_string_lossy().into_owned(), meta.len());
            return 1;
        }
        0
    };
    index
        .add_all(["*"], IndexAddOption::DEFAULT, Some(&mut leave_out))
        .map_err(git2_error("read the working tree"))?;
    for (path, content) in overlay {
        large.remove(&path);
        let at = Path::new(&path);
        match content {
            Some(bytes) => {
                let mode = index
                    .get_path(at, 0)
                    .map(|e| e.mode)
                    .filter(|mode| *mode == 0o100_755)
                    .unwrap_or(0o100_644);
                index
                    .add_frombuffer(&entry(&path, mode), &bytes)
                    .map_err(git2_error("apply the overlay"))?;
            }
            None => index
                .remove_path(at)
                .map_err(git2_error("apply the overlay"))?,
        }
    }
    let tree_id = index
        .write_tree()
        .map_err(git2_error("write the worktree's tree"))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(git2_error("read the worktree's tree"))?;

    let mut options = DiffOptions::new();
    options.include_typechange(true);
    let diff = repo
        .diff_tree_to_tree(Some(&fork_tree), Some(&tree), Some(&mut options))
        .map_err(git2_error("diff"))?;
    let mut files = Vec::new();
    for (i, delta) in diff.deltas().enumerate() {
        let change = match delta.status() {
            Delta::Added => FileChange::Added,
            Delta::Deleted => FileChange::Deleted,
            _ => FileChange::Modified,
        };
        let side = if change == FileChange::Deleted {
            delta.old_file()
        } else {
            delta.new_file()
        };
        let (Some(at), Some(bytes)) = (side.path(), side.path_bytes()) else {
            continue;
        };
        let (added, removed) = match Patch::from_diff(&diff, i).map_err(git2_error("diff"))? {
            Some(patch) => {
                let (_, added, removed) = patch.line_stats().map_err(git2_error("diff"))?;
                (added as u64, removed as u64)
            }
            None => (0, 0),
        };
        let in_head = head_tree.get_path(at).ok().map(|e| (e.id(), e.filemode()));
        let committed = in_head == tree.get_path(at).ok().map(|e| (e.id(), e.filemode()));
        let change = if change == FileChange::Added && !committed && untracked(at) {
            FileChange::Untracked
        } else {
            change
        };
        files.push(ChangedFile {
            path: String::from_utf8_lossy(bytes).into_owned(),
            change,
            added,
            removed,
            committed,
        });
    }
    let mut text = Vec::new();
    let mut cut = false;
    diff.print(DiffFormat::Patch, |_, _, line| {
        if text.len() >= DIFF_TEXT_BYTES_MAX {
            cut = true;
            return true;
        }
        match line.origin() {
            '+' => text.push(b'+'),
            '-' => text.push(b'-'),
            ' ' => text.push(b' '),
            _ => {}
        }
        text.extend_from_slice(line.content());
        true
    })
    .map_err(git2_error("diff"))?;
    let mut text = String::from_utf8_lossy(&text).into_owned();
    if cut {
        text.push_str(&format!("... (diff cut at {DIFF_TEXT_BYTES_MAX} bytes)\n"));
    }
    for (path, bytes) in large {
        text.push_str(&format!(
            "diff --git a/{path} b/{path}\nnew file, {bytes} bytes: not shown (over \
             {UNTRACKED_FILE_BYTES_MAX} bytes)\n"
        ));
        files.push(ChangedFile {
            path,
            change: FileChange::Untracked,
            added: 0,
            removed: 0,
            committed: false,
        });
    }
    // Committed first, then by path (the order `Diff::files` promises).
    files.sort_by(|a, b| b.committed.cmp(&a.committed).then(a.path.cmp(&b.path)));
    Ok(Diff { files, text })
}

/// An index entry for `path` with `mode`; git2 fills in the id and size from the content.
fn entry(path: &str, mode: u32) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: Oid::ZERO_SHA1,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}
