//! What the generators pick from: [`SplitMix64`], the seeded generator every choice is drawn
//! from, and the invented text of prompts, prose, commands, paths, code and to-do items.

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter through a mixing function. Tiny,
/// seedable and statistically fine for picking words; not for anything secret.
pub(super) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`, by multiply-shift (bias below 2^-32 for these small ranges).
    pub(super) fn range(&mut self, lo: usize, hi: usize) -> usize {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as usize
    }

    /// True with probability `percent`/100.
    pub(super) fn chance(&mut self, percent: usize) -> bool {
        self.range(0, 99) < percent
    }

    pub(super) fn pick(&mut self, words: &[&'static str]) -> &'static str {
        words[self.range(0, words.len() - 1)]
    }
}

/// Prompts a user types into either agent.
pub(super) const USER_PROMPTS: &[&str] = &[
    "fix the flaky timeout in the session tests",
    "add a --json flag to the status command",
    "why does the parser reject trailing commas?",
    "把日志输出改成结构化格式",
    "rename Config::load to Config::from_env and update the callers",
    "write a benchmark for the ring buffer",
    "テストを追加してください",
    "explain how the retry loop backs off",
    "make the release build strip debug info",
    "빌드 경고를 모두 고쳐 주세요",
];

/// Sentences an agent says between tool calls; some carry CJK text or emoji.
pub(super) const AGENT_SENTENCES: &[&str] = &[
    "I'll start by reading `src/session.rs` to see how the timeout is wired.",
    "The test waits on a real clock, so it races the scheduler under load.",
    "Switching to the injected `Clock` makes the wait deterministic.",
    "All 48 tests pass now ✅",
    "配置文件中的超时设置过短，我已将其调整为三十秒。",
    "ビルドは成功しました 🎉 警告はありません。",
    "빌드가 완료되었습니다. 경고는 없습니다.",
    "The retry loop doubles its delay up to `BACKOFF_MAX_MS` and then gives up.",
    "Next I'll update the callers and run `cargo test` again 🔧",
    "There are two call sites in `cli/status.rs` and one in the docs.",
    "The flag is wired through `StatusArgs` and documented in the help text.",
    "Trailing commas fail because `parse_list` expects another item after each separator.",
    "I kept the public API unchanged; only the internals moved 🚀",
    "日志现在以 JSON 行输出，每行一个事件。",
    "The ring buffer bench covers pushes, pops and wrap-around at 4 KiB.",
];

/// Shell commands an agent runs.
pub(super) const COMMANDS: &[&str] = &[
    "cargo test -p session",
    "rg -n \"fn load\" src",
    "cargo clippy --all-targets -- -D warnings",
    "git diff --stat",
    "npm run lint",
    "cargo build --release",
    "ls src/cli",
];

/// Lines those commands print.
pub(super) const COMMAND_OUTPUT: &[&str] = &[
    "running 48 tests",
    "test result: ok. 48 passed; 0 failed; 0 ignored",
    "src/config.rs:41:    pub fn load() -> Result<Self, ConfigError> {",
    " 3 files changed, 27 insertions(+), 9 deletions(-)",
    "warning: unused import: `std::fmt`",
    "Finished release profile in 41.07s",
    "args.rs  mod.rs  status.rs  run.rs",
    "✓ 112 files linted, 0 problems",
];

/// Files an agent reads and edits.
pub(super) const PATHS: &[&str] = &[
    "src/session.rs",
    "src/config.rs",
    "src/cli/status.rs",
    "tests/retry.rs",
    "src/ring.rs",
    "src/parser/list.rs",
];

/// Source lines that appear in diffs.
pub(super) const CODE_LINES: &[&str] = &[
    "    let deadline = now.plus(timeout_ms);",
    "    if self.tail.len() > WINDOW_BYTES_MAX {",
    "        return Err(Error::Timeout { after_ms: 30_000 });",
    "pub fn from_env() -> Result<Self, ConfigError> {",
    "    let retries = config.retries.unwrap_or(3);",
    "    match frame.kind() {",
    "        Kind::Data => self.on_data(&frame)?,",
    "const BACKOFF_MAX_MS: u64 = 8_000;",
    "    for line in output.lines().rev().take(50) {",
    "    }",
    "    let json = serde_json::to_string(&status)?;",
    "        self.delay_ms = (self.delay_ms * 2).min(BACKOFF_MAX_MS);",
    "    let label = \"session timed out\";",
    "    assert_eq!(ring.pop(), Some(7));",
];

/// To-do items an agent tracks.
pub(super) const TODOS: &[&str] = &[
    "Read the session timeout code",
    "Inject the clock into Session",
    "Rewrite the flaky test",
    "Run the full test suite",
    "Update the docs",
];
