//! Baton's deterministic simulator (grows with the simulator issue).
