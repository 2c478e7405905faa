//! Architecture invariant: `runtime/src/core/` is pure. It names no runtime, file system,
//! network, process, PTY or git crate, and reads no clock; time and randomness come in as
//! arguments. Comments may mention these names; code may not.

mod common;

use std::path::Path;

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

#[test]
fn core_names_no_io_runtime_or_clock() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let files = common::rust_files(&core);
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
