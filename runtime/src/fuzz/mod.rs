//! Fuzzing of everything that parses outside input (issue 20), as property tests: the stable
//! toolchain has no libFuzzer, so each target is a proptest fed arbitrary bytes and mutations
//! of real inputs (its committed corpus), run by `cargo test` like any other test.
//!
//! Targets, one module each: `http` (requests through the real router on fake ports, and every
//! route's JSON body), `ws` (the WebSocket protocol's client messages), `state` (the daemon's
//! state file), `mcp_json` (a coordinator's `.mcp.json` merge and its undo), `script` (the
//! agent-behaviour language and the asciicast recordings it loads), `detector` (terminal bytes).
//! The simulator's scenario files are fuzzed in `sim/src/scenario/fuzz.rs`.
//!
//! Each target first replays every file of its corpus (`runtime/tests/fuzz-corpus/<target>/`,
//! plus real inputs committed elsewhere) as a plain case, then runs [`cases`] random ones. A
//! failure proptest finds is written to `proptest-regressions/` beside the module and replayed
//! first ever after: commit it with the fix. docs/fuzzing.md says how to run a long campaign.
//!
//! Invariant: inputs are bounded ([`FUZZ_INPUT_BYTES_MAX`]), so a case's memory is too; a
//! parser's own named limit is exercised by a case just over it, not by random sizes.

mod detector;
mod http;
mod mcp_json;
mod script;
mod state;
mod ws;

use std::path::{Path, PathBuf};

use proptest::prelude::*;

/// The environment variable that sets every target's number of random cases (a long campaign:
/// `BATON_FUZZ_CASES=100000`); unset, each target runs its own small default, all of them
/// together a few seconds of a debug build.
pub(crate) const FUZZ_CASES_VAR: &str = "BATON_FUZZ_CASES";

/// Largest random input, in bytes: far past every structure the parsers have to get through
/// (a request line, a JSON document's nesting, a screen of terminal output), small enough that
/// a thousand cases run in seconds.
pub(crate) const FUZZ_INPUT_BYTES_MAX: usize = 4_096;

/// Most mutations applied to one seed.
const MUTATIONS_MAX: usize = 8;

/// The number of random cases: [`FUZZ_CASES_VAR`] if set, else `default`.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var(FUZZ_CASES_VAR)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default)
}

/// The proptest configuration of a target whose default is `default` cases.
pub(crate) fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        ..ProptestConfig::default()
    }
}

/// The committed corpus directory of `target`.
pub(crate) fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target)
}

/// Every file in `dir` whose name ends in one of `extensions` (all files when empty), sorted by
/// name: (name, bytes).
pub(crate) fn files_in(dir: &Path, extensions: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            extensions.is_empty()
                || path
                    .extension()
                    .is_some_and(|ext| extensions.iter().any(|e| ext == *e))
        })
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The corpus of `target` (at least one file: an empty corpus is a mistake).
pub(crate) fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let files = files_in(&corpus_dir(target), &[]);
    assert!(!files.is_empty(), "the {target} corpus is empty");
    files
}

/// One change to a seed; positions (and the dictionary's token) are taken modulo the input's
/// length (plus one: the end is a position too) when applied.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace a byte.
    Set(usize, u8),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
    /// Remove up to this many bytes.
    Remove(usize, usize),
    /// Copy a stretch of the input elsewhere (repeats structure: nesting, escapes).
    Repeat(usize, usize, usize),
    /// Insert a token of the target's dictionary.
    Token(usize, usize),
    /// Cut the input short (not to nothing).
    Truncate(usize),
}

fn mutation(dictionary_len: usize) -> impl Strategy<Value = Mutation> {
    let token = if dictionary_len == 0 {
        Just(None).boxed()
    } else {
        (any::<usize>(), any::<usize>()).prop_map(Some).boxed()
    };
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
        (any::<usize>(), any::<usize>(), 1..256usize)
            .prop_map(|(from, to, n)| Mutation::Repeat(from, to, n)),
        token.prop_map(|token| match token {
            Some((at, which)) => Mutation::Token(at, which),
            None => Mutation::Truncate(0),
        }),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for mutation in mutations {
        let at = |position: &usize, len: usize| position % (len + 1);
        match mutation {
            Mutation::Set(position, byte) => {
                if !bytes.is_empty() {
                    let i = position % bytes.len();
                    bytes[i] = *byte;
                }
            }
            Mutation::Insert(index, inserted) => {
                let i = at(index, bytes.len());
                bytes.splice(i..i, inserted.iter().copied());
            }
            Mutation::Remove(index, n) => {
                let i = at(index, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::Repeat(from, to, n) => {
                let i = at(from, bytes.len());
                let end = (i + n).min(bytes.len());
                let stretch = bytes[i..end].to_vec();
                let j = at(to, bytes.len());
                bytes.splice(j..j, stretch);
            }
            Mutation::Token(index, which) => {
                let token = dictionary[which % dictionary.len()];
                let i = at(index, bytes.len());
                bytes.splice(i..i, token.iter().copied());
            }
            Mutation::Truncate(index) => {
                let i = at(index, bytes.len());
                if i > 0 {
                    bytes.truncate(i);
                }
            }
        }
        // Repeats double at most: keep every case within the bound.
        bytes.truncate(FUZZ_INPUT_BYTES_MAX.max(seed.len()));
    }
    bytes
}

/// A seed of `seeds` with up to [`MUTATIONS_MAX`] mutations, some inserting tokens of
/// `dictionary` (the target's keywords and delimiters). Never longer than
/// [`FUZZ_INPUT_BYTES_MAX`] or the longest seed.
pub(crate) fn mutated(
    seeds: Vec<Vec<u8>>,
    dictionary: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    assert!(!seeds.is_empty(), "mutations need a seed");
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(mutation(dictionary.len()), 0..=MUTATIONS_MAX),
    )
        .prop_map(move |(seed, mutations)| apply(&seed, &mutations, dictionary))
}

/// Arbitrary bytes up to [`FUZZ_INPUT_BYTES_MAX`].
pub(crate) fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..FUZZ_INPUT_BYTES_MAX)
}

/// Half arbitrary bytes, half mutated seeds (most random bytes die at the first check; the
/// mutations reach the parser's depths).
pub(crate) fn bytes_or_mutated(
    seeds: Vec<Vec<u8>>,
    dictionary: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![bytes(), mutated(seeds, dictionary)]
}

/// An arbitrary JSON value: every type, nested a few levels, keys from `keys` (the shape's own
/// field names, so values land where the parser looks) or arbitrary.
pub(crate) fn json_value(
    keys: &'static [&'static str],
) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        3 => proptest::sample::select(keys).prop_map(str::to_owned),
        1 => ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![Just(0.5f64), Just(-1.0), Just(1e300), Just(4_294_967_296.0)]
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "[ -~]{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::{FUZZ_INPUT_BYTES_MAX, Mutation, apply};

    #[test]
    fn mutations_apply_where_they_say_and_stay_within_the_bound() {
        assert_eq!(apply(b"abc", &[Mutation::Set(0, b'x')], &[]), b"xbc");
        assert_eq!(
            apply(b"abc", &[Mutation::Token(0, 0)], &[b"<t>"]),
            b"<t>abc"
        );
        assert_eq!(apply(b"", &[Mutation::Remove(0, 3)], &[]), b"");
        let long = vec![b'a'; FUZZ_INPUT_BYTES_MAX];
        let repeated = (0..8).map(|_| Mutation::Repeat(0, 0, 256));
        assert_eq!(
            apply(&long, &repeated.collect::<Vec<_>>(), &[]).len(),
            FUZZ_INPUT_BYTES_MAX
        );
    }
}
