//! Counters of the reference backend, and their serializable snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Why a request (or, for `too_many_patients`, a message) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    /// Not JSON, or JSON not shaped like a telemetry message.
    BadJson,
    /// `schema` is not [`medtwin_wire::TELEMETRY_SCHEMA`].
    WrongSchema,
    /// A value's `code` is not one of the vitals.
    UnknownVital,
    /// A value's `unit` is not the vital's UCUM unit.
    UnitMismatch,
    /// A value's `loinc` is not the vital's LOINC code.
    LoincMismatch,
    /// `measured_at` is not an RFC 3339 UTC time.
    BadTime,
    /// `patient_id` is empty or too long.
    BadPatientId,
    /// The body is larger than [`medtwin_wire::MAX_BODY_BYTES`].
    TooLarge,
    /// The body could not be read (the client went away mid-body).
    BodyUnreadable,
    /// A new patient beyond `max_patients`.
    TooManyPatients,
    /// No bearer token, or the wrong one (HTTP 401).
    Unauthorized,
    /// The body was slower than the body-read timeout (HTTP 408).
    BodyTimeout,
    /// An HL7 v2 message that could not be read as an ORU^R01 (IHE PCD-01).
    BadHl7,
    /// A FHIR resource that could not be read as a vital-signs Observation
    /// (or a transaction Bundle of them).
    BadFhir,
    /// A body at `POST /v1/waveforms` that is not a valid
    /// [`medtwin_wire::WaveformChunk`].
    BadWaveform,
}

impl Reason {
    /// Number of reasons (the last variant's index + 1).
    const COUNT: usize = Reason::BadWaveform as usize + 1;

    /// The snake-case name used in error bodies and stats.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Reason::BadJson => "bad_json",
            Reason::WrongSchema => "wrong_schema",
            Reason::UnknownVital => "unknown_vital",
            Reason::UnitMismatch => "unit_mismatch",
            Reason::LoincMismatch => "loinc_mismatch",
            Reason::BadTime => "bad_time",
            Reason::BadPatientId => "bad_patient_id",
            Reason::TooLarge => "too_large",
            Reason::BodyUnreadable => "body_unreadable",
            Reason::TooManyPatients => "too_many_patients",
            Reason::Unauthorized => "unauthorized",
            Reason::BodyTimeout => "body_timeout",
            Reason::BadHl7 => "bad_hl7",
            Reason::BadFhir => "bad_fhir",
            Reason::BadWaveform => "bad_waveform",
        }
    }
}

/// Refusals by reason. Each counts one refused request body, except
/// `too_many_patients`, which counts messages (the rest of the body is kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Not JSON, or not shaped like a telemetry message (or an array of them).
    pub bad_json: u64,
    /// Wrong `schema` tag.
    pub wrong_schema: u64,
    /// Unknown vital `code`.
    pub unknown_vital: u64,
    /// `unit` does not match the vital.
    pub unit_mismatch: u64,
    /// `loinc` does not match the vital.
    pub loinc_mismatch: u64,
    /// `measured_at` unparseable.
    pub bad_time: u64,
    /// `patient_id` empty or longer than the limit.
    pub bad_patient_id: u64,
    /// Body over the size limit (HTTP 413).
    pub too_large: u64,
    /// Body could not be read.
    pub body_unreadable: u64,
    /// Messages for new patients beyond `max_patients` (HTTP 503).
    pub too_many_patients: u64,
    /// Requests without the right bearer token (HTTP 401).
    #[serde(default)]
    pub unauthorized: u64,
    /// Bodies slower than the body-read timeout (HTTP 408).
    #[serde(default)]
    pub body_timeout: u64,
    /// HL7 v2 messages that are not a readable ORU^R01 (NAKed).
    #[serde(default)]
    pub bad_hl7: u64,
    /// FHIR resources that are not a readable vital-signs Observation.
    #[serde(default)]
    pub bad_fhir: u64,
    /// Bodies at `POST /v1/waveforms` that are not valid waveform chunks.
    #[serde(default)]
    pub bad_waveform: u64,
}

/// A snapshot of the backend's counters (`GET /v1/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Telemetry messages accepted.
    pub accepted: u64,
    /// Refusals by reason.
    pub rejected: Rejected,
    /// Samples ignored because they were older than their parameter's newest
    /// sample by the smoothing span or more (late, out-of-order arrival).
    pub out_of_order: u64,
    /// Observations in an otherwise readable message that the backend has
    /// no vital for (an HL7 OBX with an MDC code it does not score),
    /// skipped and counted.
    #[serde(default)]
    pub unknown_metrics: u64,
    /// Patients known (over the runs kept).
    pub patients: u64,
    /// Runs whose state is kept (each run's patients apart, by the
    /// `x-medtwin-run` header).
    #[serde(default)]
    pub runs: u64,
    /// Alerts raised by the scorer (before fault injection).
    pub alerts_emitted: u64,
    /// Alerts withheld by the `drop_alerts_pct` fault.
    pub alerts_dropped_by_fault: u64,
    /// Extra copies queued by the `duplicate_alerts_pct` fault.
    #[serde(default)]
    pub alerts_duplicated_by_fault: u64,
    /// Alerts raised with no cause by the `spurious_alerts_pct` fault
    /// (included in `alerts_emitted`).
    #[serde(default)]
    pub alerts_spurious_by_fault: u64,
    /// Alerts the webhook answered with 2xx.
    pub alerts_delivered: u64,
    /// Alerts given up on: a 4xx answer, or retries exhausted.
    pub alerts_failed: u64,
    /// Alerts not queued because the delivery queue was full.
    pub alerts_queue_overflow: u64,
    /// Delivery attempts repeated after a connection error, timeout or 5xx.
    pub alerts_retried: u64,
    /// Alerts queued or being delivered: emitted minus every outcome above.
    /// Non-zero after shutdown means the grace period ran out.
    pub alerts_pending: u64,
    /// Waveform chunks accepted (`POST /v1/waveforms`): counted, not kept.
    #[serde(default)]
    pub waveform_chunks: u64,
    /// Samples in the accepted chunks, every channel.
    #[serde(default)]
    pub waveform_samples: u64,
}

/// Live counters, updated from many tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    rejected: [AtomicU64; Reason::COUNT],
    pub(crate) out_of_order: AtomicU64,
    pub(crate) unknown_metrics: AtomicU64,
    pub(crate) patients: AtomicU64,
    pub(crate) runs: AtomicU64,
    pub(crate) alerts_emitted: AtomicU64,
    pub(crate) alerts_dropped_by_fault: AtomicU64,
    pub(crate) alerts_duplicated_by_fault: AtomicU64,
    pub(crate) alerts_spurious_by_fault: AtomicU64,
    pub(crate) alerts_delivered: AtomicU64,
    pub(crate) alerts_failed: AtomicU64,
    pub(crate) alerts_queue_overflow: AtomicU64,
    pub(crate) alerts_retried: AtomicU64,
    pub(crate) waveform_chunks: AtomicU64,
    pub(crate) waveform_samples: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    add(counter, 1);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn reject(&self, reason: Reason, n: u64) {
        add(&self.rejected[reason as usize], n);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let r = |reason: Reason| get(&self.rejected[reason as usize]);
        let emitted = get(&self.alerts_emitted);
        let duplicated = get(&self.alerts_duplicated_by_fault);
        let settled = get(&self.alerts_dropped_by_fault)
            + get(&self.alerts_delivered)
            + get(&self.alerts_failed)
            + get(&self.alerts_queue_overflow);
        Stats {
            accepted: get(&self.accepted),
            rejected: Rejected {
                bad_json: r(Reason::BadJson),
                wrong_schema: r(Reason::WrongSchema),
                unknown_vital: r(Reason::UnknownVital),
                unit_mismatch: r(Reason::UnitMismatch),
                loinc_mismatch: r(Reason::LoincMismatch),
                bad_time: r(Reason::BadTime),
                bad_patient_id: r(Reason::BadPatientId),
                too_large: r(Reason::TooLarge),
                body_unreadable: r(Reason::BodyUnreadable),
                too_many_patients: r(Reason::TooManyPatients),
                unauthorized: r(Reason::Unauthorized),
                body_timeout: r(Reason::BodyTimeout),
                bad_hl7: r(Reason::BadHl7),
                bad_fhir: r(Reason::BadFhir),
                bad_waveform: r(Reason::BadWaveform),
            },
            out_of_order: get(&self.out_of_order),
            unknown_metrics: get(&self.unknown_metrics),
            patients: get(&self.patients),
            runs: get(&self.runs),
            alerts_emitted: emitted,
            alerts_dropped_by_fault: get(&self.alerts_dropped_by_fault),
            alerts_duplicated_by_fault: duplicated,
            alerts_spurious_by_fault: get(&self.alerts_spurious_by_fault),
            alerts_delivered: get(&self.alerts_delivered),
            alerts_failed: get(&self.alerts_failed),
            alerts_queue_overflow: get(&self.alerts_queue_overflow),
            alerts_retried: get(&self.alerts_retried),
            // Counters are read one by one while tasks run; saturate rather
            // than wrap on a torn read.
            alerts_pending: (emitted + duplicated).saturating_sub(settled),
            waveform_chunks: get(&self.waveform_chunks),
            waveform_samples: get(&self.waveform_samples),
        }
    }
}
