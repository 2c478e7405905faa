//! The audit trail's writer: one task owns `audit.log` in the state directory and appends the
//! entries it is handed, in order, one line each (`core::audit`), owner-only, rotating the
//! files when a line would take the current one past its bound.
//!
//! A caller hands its entry over ([`AuditLog`]) before it answers (no file IO on the request's
//! path) and waits only when [`AUDIT_QUEUE_MAX`] entries are queued already: the trail is never
//! dropped to keep up.
//! A line that cannot be written (a full disk) is counted, and the next line written says how
//! many were lost before it (`"lost"`); the call it records is not failed for it. Nothing is
//! synced per line: a crash loses at most what was queued, and a machine's crash what the
//! kernel had not written yet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::api::audit::{AUDIT_QUEUE_MAX, AuditLog, Queued};
use crate::core::audit::{AUDIT_FILES_KEPT, file_name, rotates};
use crate::ports::{Clock, FileMode, Files};

/// Starts the writer of `state_dir`'s trail through `files`, its entries stamped by `clock`: the
/// log to hand entries to, and the writer's task (it ends once every [`AuditLog`] is dropped and
/// the queue is written).
#[must_use]
pub fn start(
    files: Arc<dyn Files>,
    clock: Arc<dyn Clock>,
    state_dir: PathBuf,
) -> (AuditLog, tokio::task::JoinHandle<()>) {
    let (queue, entries) = mpsc::channel(AUDIT_QUEUE_MAX);
    let task = tokio::spawn(write(files, state_dir, entries));
    (AuditLog::new(queue, clock), task)
}

async fn write(files: Arc<dyn Files>, dir: PathBuf, mut entries: mpsc::Receiver<Queued>) {
    let path = |n: usize| dir.join(file_name(n));
    // What the current file holds (a restart appends to it), learnt with the first entry by an
    // empty append: nothing is read, and a daemon that records nothing touches no file.
    let mut size: Option<u64> = None;
    let mut lost: u64 = 0;
    while let Some((entry, secrets)) = entries.recv().await {
        let size_now = match size {
            Some(size) => size,
            None => files
                .append(&dir, &path(0), b"", FileMode::OwnerOnly)
                .await
                .unwrap_or(0),
        };
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let mut line = entry.encode(&secrets);
        if lost > 0 {
            // The line is one JSON object: the count goes in first.
            line.insert_str(1, &format!("\"lost\":{lost},"));
        }
        size = Some(size_now);
        if rotates(size_now, line.len()) {
            match rotate(&*files, &dir, &path).await {
                Ok(()) => size = Some(0),
                Err(error) => tracing::warn!(%error, "the audit trail could not be rotated"),
            }
        }
        match files
            .append(&dir, &path(0), line.as_bytes(), FileMode::OwnerOnly)
            .await
        {
            Ok(now) => {
                size = Some(now);
                lost = 0;
            }
            Err(error) => {
                lost += 1;
                tracing::warn!(%error, lost, "an audit line could not be written");
            }
        }
    }
}

/// `audit.log.<n>` to `.<n+1>` from the oldest kept down, then `audit.log` to `.1`: the oldest
/// is replaced, so at most [`AUDIT_FILES_KEPT`] files remain.
async fn rotate(
    files: &dyn Files,
    dir: &Path,
    path: &impl Fn(usize) -> PathBuf,
) -> Result<(), crate::ports::FilesError> {
    for n in (0..AUDIT_FILES_KEPT - 1).rev() {
        files.rename(dir, &path(n), &path(n + 1)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::Map;

    use super::start;
    use crate::core::audit::{
        AUDIT_FILE_BYTES_MAX, AUDIT_FILES_KEPT, Action, Actor, Entry, Outcome, decode, file_name,
    };
    use crate::core::time::Millis;
    use crate::ports::FileMode;
    use crate::ports::fakes::FakeFiles;

    /// A clock whose every reading is the same: the entries keep their order by their place.
    fn clock() -> Arc<dyn crate::ports::Clock> {
        Arc::new(crate::ports::fakes::FakeClock::starting_at(Millis(1_000)))
    }

    fn entry(n: u64, prompt: &str) -> Entry {
        let mut args = Map::new();
        args.insert("prompt".into(), prompt.into());
        Entry {
            at: Millis(n),
            actor: Actor::App,
            action: Action::SendPrompt,
            coordinator: None,
            task: None,
            args,
            outcome: Outcome {
                status: 200,
                error: None,
            },
        }
    }

    fn lines(files: &FakeFiles, n: usize) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let path = Path::new("/state").join(file_name(n));
        files.get(&path).map_or_else(Vec::new, |file| {
            String::from_utf8(file.bytes)
                .unwrap()
                .lines()
                .map(|line| decode(line).unwrap())
                .collect()
        })
    }

    #[tokio::test]
    async fn entries_are_appended_in_order_owner_only_and_without_their_secrets() {
        let files = Arc::new(FakeFiles::default());
        let (log, writer) = start(files.clone(), clock(), "/state".into());
        log.record(entry(1, "first"), vec![]).await;
        log.record(entry(2, "the token is s3cret"), vec!["s3cret".into()])
            .await;
        drop(log);
        writer.await.unwrap();
        let written = lines(&files, 0);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0]["args"]["prompt"], "first");
        assert_eq!(written[1]["args"]["prompt"], "the token is [secret]");
        let file = files.get(Path::new("/state/audit.log")).unwrap();
        assert_eq!(file.mode, FileMode::OwnerOnly);
    }

    #[tokio::test]
    async fn a_full_file_rotates_and_the_oldest_goes() {
        let files = Arc::new(FakeFiles::default());
        // Lines of about 1 KiB: a file takes about 4,000.
        let big = "x".repeat(900);
        let per_line = entry(0, &big).encode(&[]).len() as u64;
        let per_file = AUDIT_FILE_BYTES_MAX / per_line;
        let (log, writer) = start(files.clone(), clock(), "/state".into());
        let total = per_file * (AUDIT_FILES_KEPT as u64 + 2);
        for n in 0..total {
            log.record(entry(n, &format!("{n:06} {big}")), vec![]).await;
        }
        drop(log);
        writer.await.unwrap();
        for n in 0..AUDIT_FILES_KEPT {
            let size = files
                .get(&Path::new("/state").join(file_name(n)))
                .unwrap()
                .bytes
                .len() as u64;
            assert!(
                size <= AUDIT_FILE_BYTES_MAX,
                "{} holds {size}",
                file_name(n)
            );
        }
        assert!(
            files
                .get(&Path::new("/state").join(file_name(AUDIT_FILES_KEPT)))
                .is_none()
        );
        // Lines are told apart by their prompts' numbers: the newest is the last of the current
        // file, and the files hold what came before it, in order, with nothing missing.
        let number = |line: &serde_json::Map<String, serde_json::Value>| -> u64 {
            line["args"]["prompt"].as_str().unwrap()[..6]
                .parse()
                .unwrap()
        };
        let kept: Vec<u64> = (0..AUDIT_FILES_KEPT)
            .rev()
            .flat_map(|n| lines(&files, n))
            .map(|line| number(&line))
            .collect();
        assert_eq!(kept.last(), Some(&(total - 1)));
        assert!(
            kept.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, none missing"
        );
        assert!(kept[0] > 0, "the oldest went");
    }

    #[tokio::test]
    async fn a_restarted_writer_appends_to_the_file_it_finds_and_rotates_it_when_full() {
        let files = Arc::new(FakeFiles::default());
        let old = vec![b'.'; usize::try_from(AUDIT_FILE_BYTES_MAX).unwrap() - 10];
        files.put(Path::new("/state/audit.log"), &old);
        let (log, writer) = start(files.clone(), clock(), "/state".into());
        log.record(entry(1, "after the restart"), vec![]).await;
        drop(log);
        writer.await.unwrap();
        let rotated = files.get(Path::new("/state/audit.log.1")).unwrap();
        assert_eq!(rotated.bytes, old, "the full file moved aside whole");
        let written = lines(&files, 0);
        assert_eq!(written.len(), 1);
        assert_eq!(written[0]["args"]["prompt"], "after the restart");
    }

    #[tokio::test]
    async fn lines_a_full_disk_lost_are_counted_in_the_next_one_written() {
        let files = Arc::new(FakeFiles::default());
        // The writer's first append (empty: it learns the file's size) and the first line are
        // written; the next two lines meet a full disk.
        files.fail_writes_after(2, 2);
        let (log, writer) = start(files.clone(), clock(), "/state".into());
        log.record(entry(1, "kept"), vec![]).await;
        log.record(entry(2, "lost"), vec![]).await;
        log.record(entry(3, "lost too"), vec![]).await;
        log.record(entry(4, "after"), vec![]).await;
        drop(log);
        writer.await.unwrap();
        let written = lines(&files, 0);
        assert_eq!(written.len(), 2);
        assert_eq!(written[1]["args"]["prompt"], "after");
        assert_eq!(written[1]["lost"], 2);
        assert!(written[0].get("lost").is_none());
    }
}
