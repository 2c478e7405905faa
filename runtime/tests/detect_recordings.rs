//! Every recording in `scenarios/detector/` replayed through `baton detect`'s logic, its report
//! and the screen it ended on compared with the snapshot in `snapshots/`. A recording's profile is the part of its file name
//! before the first `-` (`claude-session.cast` is replayed with the claude profile).

use std::path::Path;

use baton_runtime::agents::recording::{Format, parse_recording};
use baton_runtime::cli::detect::{render, render_screen, replay};
use baton_runtime::core::detector::Profile;

#[test]
fn every_recording_replays_to_its_snapshot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/detector");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/detector exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "cast" || ext == "raw")
        })
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 5,
        "expected the committed recordings, found {paths:?}"
    );
    for path in paths {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name");
        let profile: Profile = stem
            .split('-')
            .next()
            .unwrap_or_default()
            .parse()
            .expect("profile prefix");
        let bytes = std::fs::read(&path).expect("readable recording");
        let recording = parse_recording(&bytes, Format::Auto).expect("well-formed recording");
        let replay = replay(&recording, profile);
        let report = render(&recording, profile, &replay.changes) + &render_screen(&replay);
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
            prepend_module_to_snapshot => false,
            input_file => &path,
        }, {
            insta::assert_snapshot!(format!("detect__{stem}"), report);
        });
    }
}
