//! Trees of text files, as [`super::FakeRepo`] commits and checks them out: how a file changed
//! between two trees, a file's unified diff with its line counts, and the three-way merge of
//! trees, file by file.
//!
//! Pure functions over values. Not modelled: renames, binary files, hunks (a file is the unit of
//! conflict; a file's diff is one hunk spanning it).

use std::collections::{BTreeMap, BTreeSet};

use crate::ports::FileChange;

/// A tree: path (relative to the checkout) → content.
pub type Tree = BTreeMap<String, String>;

/// How a file changed from `before` to `after`, if it did.
pub(super) fn change(before: Option<&String>, after: Option<&String>) -> Option<FileChange> {
    match (before, after) {
        (None, Some(_)) => Some(FileChange::Added),
        (Some(_), None) => Some(FileChange::Deleted),
        (Some(a), Some(b)) if a != b => Some(FileChange::Modified),
        _ => None,
    }
}

/// Lines of `text` (a final newline ends the last line, it does not start another).
fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// The edit script from `a` to `b` by longest common subsequence: `(' ' | '-' | '+', line)`.
fn line_diff<'t>(a: &[&'t str], b: &[&'t str]) -> Vec<(char, &'t str)> {
    let (n, m) = (a.len(), b.len());
    let mut common = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            out.push(('-', a[i]));
            i += 1;
        } else {
            out.push(('+', b[j]));
            j += 1;
        }
    }
    out
}

/// One file's unified diff (one hunk spanning the file) and its added and removed line counts.
pub(super) fn file_diff(
    path: &str,
    before: Option<&String>,
    after: Option<&String>,
) -> (String, u64, u64) {
    let (a, b) = (
        before.map(|t| lines(t)).unwrap_or_default(),
        after.map(|t| lines(t)).unwrap_or_default(),
    );
    let script = line_diff(&a, &b);
    let added = script.iter().filter(|(op, _)| *op == '+').count() as u64;
    let removed = script.iter().filter(|(op, _)| *op == '-').count() as u64;
    let old = if before.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".to_owned()
    };
    let new = if after.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".to_owned()
    };
    let mut text = format!(
        "diff --git a/{path} b/{path}\n--- {old}\n+++ {new}\n@@ -1,{} +1,{} @@\n",
        a.len(),
        b.len()
    );
    for (op, line) in script {
        text.push(op);
        text.push_str(line);
        text.push('\n');
    }
    (text, added, removed)
}

/// Lines added and removed from `before` to `after`, over every file.
pub(super) fn line_counts(before: &Tree, after: &Tree) -> (u64, u64) {
    let (mut added, mut removed) = (0, 0);
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        if change(before.get(path), after.get(path)).is_some() {
            let (_, a, r) = file_diff(path, before.get(path), after.get(path));
            added += a;
            removed += r;
        }
    }
    (added, removed)
}

/// Three-way merge of trees, file by file: the merged tree, or the conflicting paths.
pub(super) fn merge_trees(base: &Tree, ours: &Tree, theirs: &Tree) -> Result<Tree, Vec<String>> {
    let paths: BTreeSet<&String> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    let (mut merged, mut conflicts) = (Tree::new(), Vec::new());
    for path in paths {
        let (b, o, t) = (base.get(path), ours.get(path), theirs.get(path));
        let pick = if o == t || t == b {
            o
        } else if o == b {
            t
        } else {
            conflicts.push(path.clone());
            continue;
        };
        if let Some(content) = pick {
            merged.insert(path.clone(), content.clone());
        }
    }
    if conflicts.is_empty() {
        Ok(merged)
    } else {
        Err(conflicts)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::{Tree, file_diff, line_counts, merge_trees};

    /// A tree of `(path, content)` pairs.
    pub(in crate::ports::fakes) fn tree(files: &[(&str, &str)]) -> Tree {
        files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn a_files_diff_is_one_hunk_with_its_line_counts() {
        let (before, after) = ("one\ntwo\nthree\n".to_owned(), "one\n2\nthree\n".to_owned());
        let (text, added, removed) = file_diff("a.txt", Some(&before), Some(&after));
        assert_eq!(
            text,
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"
        );
        assert_eq!((added, removed), (1, 1));
        let (text, ..) = file_diff("new.txt", None, Some(&after));
        assert!(text.contains("--- /dev/null\n+++ b/new.txt\n"), "{text}");
    }

    #[test]
    fn a_merge_takes_each_sides_own_changes_and_names_the_files_both_changed() {
        let base = tree(&[("a", "1\n"), ("b", "1\n"), ("c", "1\n")]);
        let ours = tree(&[("a", "ours\n"), ("b", "1\n"), ("c", "ours\n")]);
        let theirs = tree(&[("a", "1\n"), ("b", "theirs\n"), ("c", "theirs\n")]);
        assert_eq!(
            merge_trees(&base, &ours, &theirs),
            Err(vec!["c".to_owned()])
        );
        let theirs = tree(&[
            ("a", "1\n"),
            ("b", "theirs\n"),
            ("c", "1\n"),
            ("d", "new\n"),
        ]);
        let merged = tree(&[
            ("a", "ours\n"),
            ("b", "theirs\n"),
            ("c", "ours\n"),
            ("d", "new\n"),
        ]);
        assert_eq!(merge_trees(&base, &ours, &theirs), Ok(merged.clone()));
        assert_eq!(line_counts(&ours, &merged), (2, 1), "b changed, d came");
    }
}
