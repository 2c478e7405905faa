//! The `baton detect` binary end to end: arguments, file reading, exit codes, output.

use std::path::Path;
use std::process::Command;

fn baton(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .output()
        .expect("the baton binary runs")
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/detector")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn prints_the_report_of_a_recording() {
    let output = baton(&[
        "detect",
        &scenario("shell-session.raw"),
        "--profile",
        "shell",
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 report");
    assert!(
        stdout.starts_with("# profile shell, raw bytes, 345 bytes\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\n      344  ready\n"), "{stdout}");
}

#[test]
fn an_unknown_profile_is_refused_with_the_list_of_profiles() {
    let output = baton(&[
        "detect",
        &scenario("shell-session.raw"),
        "--profile",
        "bash",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("expected one of claude, codex, gemini, shell, generic"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let output = baton(&["detect", "/nonexistent/recording.cast"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("baton: reading /nonexistent/recording.cast: No such file"),
        "{stderr}"
    );
}
