//! The build-log corpus ([`build_logs`]): cargo- and npm-style sections, mostly plain ASCII,
//! progress lines rewritten in place, each ending at a coloured shell prompt.

use super::CORPUS_BYTES_TARGET;
use super::ansi::Ansi;
use super::words::{PATHS, SplitMix64};

/// Seed of [`build_logs`].
const SEED_BUILD: u64 = 0x0ba7_0b11_d000_0003;

/// About 1 MiB of cargo- and npm-style build logs, mostly plain ASCII.
///
/// Sections of `Compiling` lines with an in-place `Building [==>  ]` progress line (`\r` and
/// `ESC[K`), compiler warnings, test runs, npm installs with a braille spinner, and bundler
/// summaries. Lines end in `\r\n` as a PTY delivers them; colours are the few SGR codes these
/// tools emit. The corpus ends with a coloured bash prompt after an OSC title.
pub fn build_logs() -> Vec<u8> {
    let mut log = BuildLog {
        rng: SplitMix64::new(SEED_BUILD),
        out: Ansi::default(),
    };
    log.shell_prompt();
    // Every section ends with the prompt, so the corpus does too.
    while log.out.len() < CORPUS_BYTES_TARGET {
        log.section();
    }
    log.out.into_bytes()
}

/// The build-log corpus: a shell session running builds.
struct BuildLog {
    rng: SplitMix64,
    out: Ansi,
}

impl BuildLog {
    /// npm's spinner frames: the only non-ASCII bytes besides a few box-drawing bars.
    const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
    const CRATE_STEMS: &[&str] = &[
        "fast", "tiny", "async", "proto", "mini", "text", "byte", "glob", "hash", "wire",
    ];
    const CRATE_TAILS: &[&str] = &[
        "-core", "-util", "_derive", "-sys", "", "-macros", "-io", "-codec",
    ];

    fn section(&mut self) {
        match self.rng.range(0, 5) {
            0 | 1 => self.cargo_build(),
            2 => self.cargo_test(),
            3 => self.npm_install(),
            _ => self.bundle(),
        }
        self.shell_prompt();
    }

    fn crate_name(&mut self) -> String {
        format!(
            "{}{}",
            self.rng.pick(Self::CRATE_STEMS),
            self.rng.pick(Self::CRATE_TAILS)
        )
    }

    fn version(&mut self) -> String {
        format!(
            "{}.{}.{}",
            self.rng.range(0, 3),
            self.rng.range(0, 40),
            self.rng.range(0, 20)
        )
    }

    /// A right-aligned cargo status word in bold colour, then the rest of the line.
    fn status(&mut self, colour: &str, word: &str, rest: &str) {
        self.out.sgr(&format!("1;{colour}"));
        self.out.text(&format!("{word:>12}"));
        self.out.sgr("0");
        self.out.text(" ");
        self.out.text(rest);
    }

    fn cargo_build(&mut self) {
        self.out.text("cargo build");
        self.out.crlf();
        let total = self.rng.range(40, 320);
        let mut progress_shown = false;
        for done in 1..=total {
            if progress_shown {
                self.out.csi("K");
            }
            let name = self.crate_name();
            let version = self.version();
            self.status("32", "Compiling", &format!("{name} v{version}"));
            self.out.crlf();
            if self.rng.chance(4) {
                self.warning();
            }
            progress_shown = self.rng.chance(35);
            if progress_shown {
                let filled = done * 25 / total;
                let bar = format!("{}>{}", "=".repeat(filled), " ".repeat(25 - filled));
                let active = format!("{}, {}(build)", self.crate_name(), self.crate_name());
                self.status(
                    "36",
                    "Building",
                    &format!("[{bar}] {done}/{total}: {active}"),
                );
                self.out.text("\r");
            }
        }
        if progress_shown {
            self.out.csi("K");
        }
        let secs = self.rng.range(2, 90);
        let cents = self.rng.range(0, 99);
        self.status(
            "32",
            "Finished",
            &format!("dev profile target(s) in {secs}.{cents:02}s"),
        );
        self.out.crlf();
    }

    fn warning(&mut self) {
        let line = self.rng.range(1, 400);
        let col = self.rng.range(1, 40);
        self.out.sgr("1;33");
        self.out.text("warning");
        self.out.sgr("0");
        self.out.sgr("1");
        self.out.text(": unused variable: `retries`");
        self.out.sgr("0");
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text("   --> ");
        self.out.sgr("0");
        self.out
            .text(&format!("{}:{line}:{col}", self.rng.pick(PATHS)));
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text("    |");
        self.out.sgr("0");
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text(&format!("{line:<4}|"));
        self.out.sgr("0");
        self.out
            .text(&format!("     let retries = {};", self.rng.range(1, 9)));
        self.out.crlf();
        self.out.sgr("1;34");
        self.out.text("    |");
        self.out.sgr("0");
        self.out.text("         ");
        self.out.sgr("1;33");
        self.out
            .text("^^^^^^^ help: prefix it with an underscore: `_retries`");
        self.out.sgr("0");
        self.out.crlf();
        self.out.crlf();
    }

    fn cargo_test(&mut self) {
        self.out.text("cargo test");
        self.out.crlf();
        for _ in 0..self.rng.range(1, 3) {
            let hash = self.rng.next_u64();
            let name = self.crate_name();
            self.status(
                "32",
                "Running",
                &format!("unittests src/lib.rs (target/debug/deps/{name}-{hash:016x})"),
            );
            self.out.crlf();
            let count = self.rng.range(5, 120);
            self.out.crlf();
            self.out.text(&format!("running {count} tests"));
            self.out.crlf();
            let mut ignored = 0;
            for _ in 0..count {
                let module = self.rng.pick(&[
                    "session",
                    "config",
                    "ring",
                    "parser::list",
                    "retry",
                    "cli::status",
                ]);
                let verb = self
                    .rng
                    .pick(&["rejects", "accepts", "keeps", "drops", "parses", "retries"]);
                let object = self.rng.pick(&[
                    "empty_input",
                    "trailing_commas",
                    "the_last_frame",
                    "a_timeout",
                    "unicode_names",
                ]);
                self.out
                    .text(&format!("test {module}::tests::{verb}_{object} ... "));
                if self.rng.chance(3) {
                    ignored += 1;
                    self.out.sgr("33");
                    self.out.text("ignored");
                } else {
                    self.out.sgr("32");
                    self.out.text("ok");
                }
                self.out.sgr("0");
                self.out.crlf();
            }
            self.out.crlf();
            self.out.text("test result: ");
            self.out.sgr("32");
            self.out.text("ok");
            self.out.sgr("0");
            let ms = self.rng.range(1, 999);
            self.out.text(&format!(
                ". {} passed; 0 failed; {ignored} ignored; 0 measured; 0 filtered out; finished in 0.{ms:03}s",
                count - ignored
            ));
            self.out.crlf();
            self.out.crlf();
        }
    }

    fn npm_install(&mut self) {
        self.out.text("npm install");
        self.out.crlf();
        for frame in 0..self.rng.range(20, 120) {
            self.out.text("\r");
            self.out.csi("K");
            self.out.text(Self::SPINNER[frame % Self::SPINNER.len()]);
            let phase = self.rng.pick(&["idealTree", "reify", "build", "audit"]);
            let package = self.crate_name();
            let version = self.version();
            self.out.text(&format!(
                " {phase}:{package}: timing fetch {package}@{version} {}ms",
                self.rng.range(3, 900)
            ));
        }
        self.out.text("\r");
        self.out.csi("K");
        if self.rng.chance(30) {
            self.out.sgr("33");
            self.out.text("npm warn");
            self.out.sgr("39");
            let (name, version) = (self.crate_name(), self.version());
            self.out.text(&format!(
                " deprecated {name}@{version}: no longer maintained"
            ));
            self.out.crlf();
        }
        self.out.crlf();
        let packages = self.rng.range(50, 900);
        self.out.text(&format!(
            "added {packages} packages, audited {} packages in {}s",
            packages + 1,
            self.rng.range(1, 40)
        ));
        self.out.crlf();
        self.out.crlf();
        self.out
            .text(&format!("found {} vulnerabilities", self.rng.range(0, 1)));
        self.out.crlf();
    }

    fn bundle(&mut self) {
        self.out.text("npm run build");
        self.out.crlf();
        self.out.crlf();
        let modules = self.rng.range(200, 3000);
        self.out
            .text(&format!("bundling {modules} modules for production..."));
        self.out.crlf();
        for _ in 0..self.rng.range(3, 12) {
            let hash = self.rng.next_u64() & 0xffff_ffff;
            let size = self.rng.range(1, 900);
            let gzip = size / 3 + 1;
            let kind = self.rng.pick(&["js", "css", "svg", "woff2"]);
            self.out.sgr("2");
            self.out.text("dist/");
            self.out.sgr("22");
            self.out.sgr("36");
            self.out.text(&format!("assets/index-{hash:08x}.{kind:<5}"));
            self.out.sgr("39");
            self.out.text(&format!(
                "  {size:>4}.{:02} kB │ gzip: {gzip:>4}.{:02} kB",
                size % 100,
                gzip % 100
            ));
            self.out.crlf();
        }
        self.out.sgr("32");
        self.out
            .text(&format!("✓ built in {}ms", self.rng.range(300, 9000)));
        self.out.sgr("39");
        self.out.crlf();
    }

    /// bash's default coloured prompt after an OSC title, as the log's last line.
    fn shell_prompt(&mut self) {
        self.out.osc_title("dev@box: ~/project");
        self.out.sgr("01;32");
        self.out.text("dev@box");
        self.out.sgr("00");
        self.out.text(":");
        self.out.sgr("01;34");
        self.out.text("~/project");
        self.out.sgr("00");
        self.out.text("$ ");
    }
}
