//! Architecture invariant: `runtime/src/core/` is pure. It names no runtime, file system,
//! network, process, PTY or git crate, and reads no clock; time and randomness come in as
//! arguments. Comments may mention these names; code may not.

use std::path::{Path, PathBuf};

const FORBIDDEN: [&str; 9] = [
    "tokio",
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "portable_pty",
    "git2",
    "Instant::now",
    "SystemTime",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn core_names_no_io_runtime_or_clock() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the core's files, found {files:?}"
    );
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("UTF-8 source");
        for (index, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for name in FORBIDDEN.iter().filter(|name| code.contains(*name)) {
                offences.push(format!("{}:{}: {name}", file.display(), index + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the core must stay pure:\n{}",
        offences.join("\n")
    );
}
