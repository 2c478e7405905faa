//! `baton-sim`: runs scenario files in the deterministic simulator (not built yet).

use std::process::ExitCode;

fn main() -> ExitCode {
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "baton-sim: the simulator is not built yet; today `cargo test` replays the detector \
             recordings in scenarios/detector (see scenarios/README.md)"
        );
    }
    ExitCode::from(2)
}
