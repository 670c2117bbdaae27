//! The twin's integration tests: commands on a running twin, determinism
//! and shard invariance, devices (the nurse-observation round among them),
//! networks, physiology and the glucose model against published ranges, and
//! the NEWS2 chart against a table model. One test binary (modules below).

mod circulation_validation;
mod commands;
mod determinism;
mod devices;
mod glucose_validation;
mod network;
mod news2;
mod nurse_obs;
mod physiology;
mod waveforms;
