//! Baton: the maps a simulation step looks hosts, links and sockets up in, on a cheap hasher.
//!
//! `IndexMap`'s default hasher (SipHash, randomly keyed) was about 5 % of Baton's simulator:
//! several lookups per host per step, on keys of a few bytes. These maps iterate in insertion
//! order whatever the hasher, so nothing a simulation does depends on it.

use std::hash::{BuildHasherDefault, Hasher};

use indexmap::IndexMap;

/// An `IndexMap` on [`StepHasher`].
pub(crate) type FastMap<K, V> = IndexMap<K, V, BuildHasherDefault<StepHasher>>;

/// A multiply-rotate hash (as rustc's `FxHasher`): fast on short keys, unkeyed (the keys are the
/// simulation's own addresses and numbers, never an adversary's).
#[derive(Default, Clone, Copy)]
pub(crate) struct StepHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl StepHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for StepHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for byte in chunks.remainder() {
            self.add(u64::from(*byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
