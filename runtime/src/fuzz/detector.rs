//! Target `detector`: terminal bytes into the prompt detector, mutations of the real recordings
//! (`scenarios/detector/*.raw` and the hostile sequences of this target's corpus) in random
//! chunks, with resizes to any size, prompts typed, respawns and assessments between them, at
//! times that only move forward.
//!
//! `core/detector/tests.rs` already holds that chunking never matters and that arbitrary bytes
//! stay bounded; this target adds the real recordings' structure and the other doors.
//! Properties: memory stays within the bounds; the grid's size within its clamp; the
//! assessment agrees with the readiness, and a recheck is in the future; queries owed a reply
//! never pile up past their bound.

use std::path::Path;

use proptest::prelude::*;

use super::{config, corpus, files_in, mutated};
use crate::core::detector::{
    Detector, Profile, QUERIES_PENDING_MAX, SCREEN_COLS_MAX, SCREEN_ROWS_MAX,
};
use crate::core::time::Millis;

const DICTIONARY: &[&[u8]] = &[
    b"\x1b[",
    b"\x1b]",
    b"\x1bP",
    b"\x1b\\",
    b"\x07",
    b"\x1b[6n",
    b"\x1b[c",
    b"\x1b[>c",
    b"\x1b]10;?\x1b\\",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?2004h",
    b"\x1b[1;1r",
    b"\x1b[99999;99999H",
    b"\x1b[4294967296A",
    b"\x1b[2J",
    b"\x1b[K",
    b"\x1b]0;\xe2\x9c\xb3 title\x07",
    b"\x1b]9;4;3;\x07",
    b"\x1b]777;notify;Codex;Approval requested\x07",
    b"\xe2\x9d\xaf",
    b"\xe2\x80\xba",
    b"\xc2\x9b",
    b"\xf0\x9f\x98\x80",
    b"\xed\xa0\x80",
    b"\r\n",
    b"\x08",
    b"\t",
];

/// The chunk the corpus is replayed in, besides whole.
const CHUNK_BYTES: usize = 61;

/// Something that happens to the detector.
#[derive(Clone, Debug)]
enum Step {
    /// Output: the next `n` bytes (modulo what is left), `ms` later.
    Feed {
        n: usize,
        ms: u16,
    },
    Resize(u16, u16),
    Prompt(String),
    Reset,
    /// A query answered: take what is owed.
    Drain,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1..2_048usize, 0..3_000u16).prop_map(|(n, ms)| Step::Feed { n, ms }),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(cols, rows)| Step::Resize(cols, rows)),
        1 => (0..8u16, 0..8u16).prop_map(|(cols, rows)| Step::Resize(cols, rows)),
        1 => ".{0,200}".prop_map(Step::Prompt),
        1 => Just(Step::Reset),
        1 => Just(Step::Drain),
    ]
}

fn recordings() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/detector");
    let mut files = files_in(&dir, &["raw"]);
    files.extend(corpus("detector"));
    files
}

fn run(profile: Profile, bytes: &[u8], steps: &[Step]) -> Result<(), TestCaseError> {
    let mut detector = Detector::new(profile, Millis(0));
    let (mut now, mut fed) = (0u64, 0usize);
    // Whatever the steps, every byte is fed by the end.
    let rest = Step::Feed {
        n: bytes.len(),
        ms: 1,
    };
    for step in steps.iter().chain([&rest]) {
        match step {
            Step::Feed { n, ms } => {
                now += u64::from(*ms);
                let end = (fed + n).min(bytes.len());
                detector.feed(Millis(now), &bytes[fed..end]);
                fed = end;
            }
            Step::Resize(cols, rows) => detector.resize(*cols, *rows),
            Step::Prompt(text) => detector.prompt_sent(Millis(now), text),
            Step::Reset => detector.reset(Millis(now)),
            Step::Drain => {
                let mut owed = 0;
                while detector.poll_query().is_some() {
                    owed += 1;
                }
                prop_assert!(owed <= QUERIES_PENDING_MAX);
            }
        }
        prop_assert!(detector.within_bounds(), "after {:?}", step);
        if let Some((cols, rows)) = detector.size() {
            prop_assert!((1..=SCREEN_COLS_MAX).contains(&cols), "{} columns", cols);
            prop_assert!((1..=SCREEN_ROWS_MAX).contains(&rows), "{} rows", rows);
        }
        let assessment = detector.assess(Millis(now));
        prop_assert_eq!(assessment.readiness, detector.readiness());
        if let Some(at) = assessment.recheck_at {
            prop_assert!(at.0 > now, "a recheck at {} is not after {}", at.0, now);
        }
        let _ = detector.reading(Millis(now));
        let _ = detector.take_osc();
    }
    prop_assert_eq!(fed, bytes.len());
    Ok(())
}

fn profile_of(name: &str) -> Profile {
    Profile::ALL
        .into_iter()
        .find(|profile| name.starts_with(profile.name()))
        .unwrap_or(Profile::Generic)
}

#[test]
fn every_recording_of_the_corpus_holds_the_properties_whole_and_in_small_chunks() {
    let files = recordings();
    assert!(files.len() >= 20, "the recordings are there");
    for (name, bytes) in files {
        // Small chunks, each assessed (byte by byte is the chunking property's, on small inputs).
        let chunked: Vec<Step> = (0..bytes.len().div_ceil(CHUNK_BYTES))
            .map(|_| Step::Feed {
                n: CHUNK_BYTES,
                ms: 1,
            })
            .collect();
        for steps in [&[][..], &chunked] {
            run(profile_of(&name), &bytes, steps).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn mutated_recordings_in_any_chunks_and_steps_hold_the_properties(
        bytes in mutated(
            recordings().into_iter().map(|(_, bytes)| bytes).collect(),
            DICTIONARY,
        ),
        steps in proptest::collection::vec(step(), 0..48),
        profile in proptest::sample::select(Profile::ALL.to_vec()),
    ) {
        run(profile, &bytes, &steps)?;
    }
}
