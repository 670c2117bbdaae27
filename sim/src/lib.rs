//! The medtwin twin: a pure, deterministic simulation of patients, the
//! devices on them and the network hop those devices send through.
//!
//! The twin is a function of (configuration, seed): it does no I/O, reads no
//! clock and spawns no thread. Time is a fixed step; randomness is one seeded
//! stream per entity and purpose, derived from the scenario seed and the
//! entity's stable name (see [`rng`]), so adding a patient never changes
//! another patient's numbers.
//!
//! ```
//! use medtwin_sim::{SimConfig, Twin};
//! let config = SimConfig::example();
//! let mut twin = Twin::new(&config).unwrap();
//! while !twin.finished() {
//!     let out = twin.step();
//!     for delivery in &out.deliveries {
//!         // hand `delivery.measurement` to a transport at `delivery.delivered_ms`
//!         let _ = delivery;
//!     }
//! }
//! ```
//!
//! A running twin takes [`Command`]s, stamped in simulated time, through
//! [`Twin::push_command`]: the only way to change a twin once built (see
//! [`command`]).

pub mod cgm;
pub mod clinical;
pub mod command;
pub mod config;
pub mod device;
mod error;
pub mod glucose;
pub mod network;
pub mod news2;
pub mod physiology;
pub mod profile;
pub mod rng;
pub mod scores;
pub mod spec;
pub mod truth;
mod twin;
pub mod vitals;
pub mod waveform;

pub use clinical::{ConditionKind, InterventionKind, ParamKind, ParamSpec, Params};
pub use command::{COMMAND_CAPACITY, Command, CommandError};
pub use config::{
    CohortConfig, DeviceConfig, DeviceKind, EventConfig, Eviction, FaultConfig, FaultKind,
    GatewayConfig, InterventionConfig, NetworkConfig, PatientSelector, Shard, SimConfig,
};
pub use error::ConfigError;
pub use profile::{Meal, ProfileSpec, Spread};
pub use scores::{Criterion, CriterionEvent};
pub use spec::{ArtifactSpec, BatterySpec, ChannelSpec, DeviceSpec};
pub use truth::{
    Change, CommandApplied, CriterionOnset, Delivery, DeviceEvent, DeviceTime, EndReason,
    EpisodeEnd, EpisodeOnset, EventKind, InterventionGiven, Loss, LossCause, Measurement, Quality,
    Reading, Readings, StateChange, StepOutput, TechAlarm, WaveBlock,
};
pub use twin::{Accounting, Twin};
pub use vitals::{Acvpu, Rhythm, Vital, Vitals};
