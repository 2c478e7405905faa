//! Baton's deterministic simulator: the runtime's own code on simulated time, network (turmoil),
//! PTYs with scripted agents, repos and files, replaying multi-agent scenarios bit for bit from a
//! seed or a scenario file.
//!
//! Not built yet: it arrives with its own issue, once the coordinator engine and its ports exist
//! to be simulated. Until then this crate only reserves its place in the workspace, so that the
//! layout in ARCHITECTURE.md is the layout on disk.
