//! Prompt-detector throughput: Baton's detector against the reference baseline and a memchr
//! ceiling.
//!
//! One criterion group per corpus and chunk size, named `detector/<corpus>/<chunk>` (for example
//! `detector/claude_redraws/4KiB`), with throughput in corpus bytes and three functions:
//! - `baton`: a fresh [`Detector`] fed chunk by chunk, one millisecond apart, draining terminal
//!   queries and assessing after every chunk, as the engine does;
//! - `reference_regex`: a fresh [`ReferenceDetector`] (spec §7.1–§7.2) fed the same chunks;
//! - `memchr_ceiling`: counting ESC bytes with `memchr`, a bound no detector that looks at every
//!   escape can beat.
//!
//! Construction happens inside the timed routine: it is negligible next to 1 MiB of input, and it
//! keeps every iteration independent of the previous one. Timings are kept short (1 s warm-up,
//! 3 s measurement, 20 flat samples) so the whole run fits in about two minutes on two cores.

use std::hint::black_box;
use std::time::Duration;

use baton_benches::corpus;
use baton_benches::reference::ReferenceDetector;
use baton_runtime::core::detector::{Detector, Profile};
use baton_runtime::core::time::Millis;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Read sizes a PTY host typically delivers, with the group-name suffix of each.
const CHUNK_SIZES: [(usize, &str); 2] = [(1024, "1KiB"), (4096, "4KiB")];

/// Virtual time between two chunks: the detector sees output arriving steadily.
const CHUNK_INTERVAL_MS: u64 = 1;

/// The corpora, each with the detector profile of the agent that produces it.
#[derive(Clone, Copy)]
enum Source {
    ClaudeRedraws,
    CodexOutput,
    BuildLogs,
}

impl Source {
    const ALL: [Source; 3] = [
        Source::ClaudeRedraws,
        Source::CodexOutput,
        Source::BuildLogs,
    ];

    fn name(self) -> &'static str {
        match self {
            Source::ClaudeRedraws => "claude_redraws",
            Source::CodexOutput => "codex_output",
            Source::BuildLogs => "build_logs",
        }
    }

    fn profile(self) -> Profile {
        match self {
            Source::ClaudeRedraws => Profile::Claude,
            Source::CodexOutput => Profile::Codex,
            Source::BuildLogs => Profile::Shell,
        }
    }

    fn bytes(self) -> Vec<u8> {
        match self {
            Source::ClaudeRedraws => corpus::claude_redraws(),
            Source::CodexOutput => corpus::codex_output(),
            Source::BuildLogs => corpus::build_logs(),
        }
    }
}

fn run_baton(source: Source, data: &[u8], chunk_size: usize) {
    let mut detector = Detector::new(source.profile(), Millis(0));
    let mut now = Millis(0);
    for chunk in corpus::chunks(data, chunk_size) {
        detector.feed(now, chunk);
        while let Some(query) = detector.poll_query() {
            black_box(query);
        }
        black_box(detector.assess(now));
        now = now.plus(CHUNK_INTERVAL_MS);
    }
}

fn run_reference(data: &[u8], chunk_size: usize) {
    let mut reference = ReferenceDetector::new();
    for chunk in corpus::chunks(data, chunk_size) {
        black_box(reference.feed(chunk));
    }
}

fn run_memchr(data: &[u8], chunk_size: usize) -> usize {
    corpus::chunks(data, chunk_size)
        .map(|chunk| memchr::memchr_iter(0x1b, chunk).count())
        .sum()
}

fn detector(c: &mut Criterion) {
    for source in Source::ALL {
        let data = source.bytes();
        for (chunk_size, label) in CHUNK_SIZES {
            let mut group = c.benchmark_group(format!("detector/{}/{label}", source.name()));
            group.throughput(Throughput::Bytes(data.len() as u64));
            group.sampling_mode(SamplingMode::Flat);
            group.bench_function("baton", |b| {
                b.iter(|| run_baton(source, black_box(&data), chunk_size));
            });
            group.bench_function("reference_regex", |b| {
                b.iter(|| run_reference(black_box(&data), chunk_size));
            });
            group.bench_function("memchr_ceiling", |b| {
                b.iter(|| run_memchr(black_box(&data), chunk_size));
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = detector
}
criterion_main!(benches);
