//! The twin's integration tests: determinism and shard invariance,
//! devices, networks, physiology against published ranges, and the NEWS2
//! chart against a table model. One test binary (modules below).

mod determinism;
mod devices;
mod network;
mod news2;
mod physiology;
