//! The phone's page: its embedded assets are what its source builds, and it works in a real
//! browser against a real daemon.
//!
//! - The bundle check installs the page's pinned npm packages (without running their scripts,
//!   so the committed `dist/` is not rebuilt in place), builds the page into a temporary
//!   directory and compares it, file by file, with the committed `dist/` the binary embeds; the
//!   page's heartbeat is the daemon's.
//! - The browser check runs `web/phone/test/browser.mjs` (headless Chromium through
//!   playwright-core) against `baton daemon` on loopback with a coordinator whose sub-tasks run
//!   the demo agent; its screenshots land in `target/phone-screenshots/`. Chromium comes from
//!   Debian's package, installed here when missing (as root, as on CI).

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::{Daemon, json, within};

/// Where the page's source, build script and committed build are.
fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web/phone")
}

/// Runs `command` to its end; its output if it succeeded.
fn run(what: &str, command: &mut Command) -> String {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    let output = within(what, move || child.wait_with_output().unwrap());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{said}");
    said
}

/// The page's npm packages, installed once per run (both tests need them).
fn npm_packages() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*installed {
        run(
            "npm ci",
            Command::new("npm")
                .args([
                    "ci",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                ])
                .arg(web()),
        );
        *installed = true;
    }
}

#[test]
fn the_embedded_page_is_what_its_source_builds() {
    npm_packages();
    let out = tempfile::tempdir().unwrap();
    run(
        "the page's build",
        Command::new("node")
            .arg(web().join("build.mjs"))
            .arg("--out")
            .arg(out.path()),
    );
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let dist = web().join("dist");
    assert_eq!(names(out.path()), names(&dist), "the files differ");
    let mut total = 0;
    for name in names(&dist) {
        let built = std::fs::read(out.path().join(&name)).unwrap();
        let committed = std::fs::read(dist.join(&name)).unwrap();
        assert!(
            built == committed,
            "dist/{name} is not what the source builds: run `npm ci --prefix runtime/web/phone`"
        );
        total += committed.len();
    }
    // The binary embeds exactly the files the manifest names.
    let manifest = std::fs::read_to_string(dist.join("MANIFEST")).unwrap();
    let mut listed: Vec<&str> = manifest
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    listed.sort_unstable();
    let mut embedded: Vec<&str> = baton_runtime::api::page::ASSETS
        .iter()
        .map(|asset| asset.name)
        .collect();
    embedded.sort_unstable();
    assert_eq!(listed, embedded);
    println!("the page's bundle: {total} bytes");
    // The page's silence limit is made of the daemon's heartbeat.
    let connection = std::fs::read_to_string(web().join("src/connection.js")).unwrap();
    let heartbeat = connection
        .lines()
        .find_map(|line| line.strip_prefix("export const HEARTBEAT_MS = "))
        .and_then(|value| {
            value
                .trim_end_matches(';')
                .replace('_', "")
                .parse::<u64>()
                .ok()
        });
    assert_eq!(
        heartbeat,
        Some(baton_runtime::core::ws::WS_HEARTBEAT_MS),
        "connection.js's HEARTBEAT_MS is not the daemon's WS_HEARTBEAT_MS"
    );
}

/// Debian's Chromium, installed when missing.
fn chromium() {
    if Path::new("/usr/bin/chromium").exists() {
        return;
    }
    run(
        "apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    );
    run(
        "apt-get install chromium",
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    );
}

#[test]
fn the_phone_page_works_in_a_real_browser() {
    chromium();
    npm_packages();
    let temp = tempfile::tempdir().unwrap();
    let repo = common::repo_with(&temp.path().join("project"), &[("README.md", "hello\n")]);
    let daemon = Daemon::start(&temp.path().join("state"));
    let demo = baton_runtime::agents::DEMO_AGENT_SUBCOMMAND;
    let (coordinator, token, _) =
        daemon.register(&repo, common::BATON, &[demo, "--role", "sub-task"]);
    // The coordinator's own agent, given no prompt, waits at its prompt and makes no tasks.
    let (status, started) = daemon.app(
        "POST",
        &format!("/app/coordinators/{coordinator}/agent"),
        Some(
            serde_json::json!({"command": common::BATON, "args": [demo, "--role", "coordinator"]}),
        ),
    );
    assert_eq!(status, 201, "{started}");
    let phone = json(&daemon.cli(&["phone", "--loopback", "--port", "0", "--json"]));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/phone-screenshots");
    let config = serde_json::json!({
        "pageUrl": phone["url"],
        "apiUrl": format!("http://{}:{}", daemon.api.host, daemon.api.port),
        "coordinatorToken": token,
        "coordinatorId": coordinator,
        "shots": shots,
    });
    let mut node = Command::new("node")
        .arg(web().join("test/browser.mjs"))
        .env("BATON_BROWSER_TEST", config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The script asks for a restart of the daemon under its open page with a line of its own.
    let (mut to_node, from_node) = (node.stdin.take().unwrap(), node.stdout.take().unwrap());
    let state = daemon.state.clone();
    let (daemon, said) = within("the browser checks", move || {
        use std::io::{BufRead as _, Write as _};
        let mut daemon = daemon;
        let mut said = String::new();
        for line in std::io::BufReader::new(from_node).lines() {
            let line = line.unwrap();
            if line == "baton:restart" {
                daemon.stop();
                daemon = Daemon::start(&state);
                writeln!(to_node, "restarted").unwrap();
            }
            said.push_str(&line);
            said.push('\n');
        }
        drop(to_node);
        (daemon, said)
    });
    let output = within("the browser's end", move || {
        node.wait_with_output().unwrap()
    });
    let errors = String::from_utf8_lossy(&output.stderr);
    println!("{said}{errors}");
    assert!(
        output.status.success() && said.contains("browser checks passed"),
        "the browser checks failed:\n{said}{errors}\n{}",
        daemon.log()
    );
    assert!(
        !daemon
            .log()
            .contains(phone["url"].as_str().unwrap().rsplit('=').next().unwrap()),
        "the mobile token reached the log"
    );
    daemon.stop();
}
