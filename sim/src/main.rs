//! `baton-sim`.
fn main() {}
