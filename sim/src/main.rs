//! `baton-sim`: runs scenario files in the deterministic simulator (the runner is not built yet;
//! the simulated world is, see the library).

use std::process::ExitCode;

fn main() -> ExitCode {
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "baton-sim: the scenario runner is not built yet; today `cargo test` replays the \
             detector recordings in scenarios/detector and the engine sequences in sim/tests"
        );
    }
    ExitCode::from(2)
}
