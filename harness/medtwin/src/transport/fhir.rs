//! FHIR R4 out: Observations per the vital-signs profile, over REST
//! (`docs/transports/fhir.md`).
//!
//! [`connect`] creates every patient and device on the server by
//! conditional create (`POST [base]/Patient` with `If-None-Exist:
//! identifier=...`: 201 created or 200 found, so reruns do not duplicate)
//! and learns their ids, so each Observation references them literally.
//! The [`FhirEncoder`] turns a measurement into its Observations (one
//! compact JSON resource per line, pure); the [`FhirCarrier`] POSTs one
//! Observation to `[base]/Observation`, or a transaction `Bundle` to
//! `[base]` when a message has several resources or `bundle = N` batches
//! several messages. Every Observation is a conditional create on its
//! identifier (device, seq, code), so a resend is not stored twice.
//!
//! Answers: 200/201 accepted; 4xx with an `OperationOutcome` refused, its
//! first error's issue code as the reason (`http_422: invalid`); 5xx, 408
//! and 429 retried by the lanes; a transaction-response with an entry
//! that is not 2xx refused with that entry's status and issue.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use medtwin_fhir::admin::{self, if_none_exist};
use medtwin_fhir::bundle::{
    TransactionOutcome, first_issue, observation_if_none_exist, parse_location, to_json,
    transaction_outcome, transaction_raw,
};
use medtwin_fhir::codes::{FHIR_JSON, SID_DEVICE, SID_PATIENT};
use medtwin_fhir::model::Observation;
use medtwin_fhir::observation::{Refs, observations, write_observations};
use medtwin_sim::Measurement;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use tokio::task::JoinSet;

use super::auth::Auth;
use super::http::{RUN_HEADER, failure_of, parse_retry_after};
use super::json::JsonEncoder;
pub use super::select::FhirOptions;
use super::select::{AnyCarrier, AnyEncoder, EncodeContext, TargetConfig, Wired};
use super::{Carrier, Cause, Encoder, Failure, Outgoing, Sent};

/// Conditional creates in flight at once while connecting.
const SETUP_CONCURRENCY: usize = 8;
/// Largest transaction Bundle, in messages.
pub const MAX_BUNDLE: usize = 1_000;
/// Bytes of a refusal's body kept in its detail.
const DETAIL_BYTES: usize = 160;

/// Encodes measurements as FHIR Observations: one compact JSON resource
/// per line (a pure function of the measurement, the names and the ids
/// the server gave).
#[derive(Clone, Debug)]
pub struct FhirEncoder {
    json: JsonEncoder,
    /// `Patient/<id>` by patient index (`None`: by identifier only).
    patients: Vec<Option<String>>,
    /// `Device/<id>` by device index.
    devices: Vec<Option<String>>,
}

impl FhirEncoder {
    /// An encoder referencing the server's ids (empty lists: references by
    /// identifier only, e.g. to a file).
    pub fn new(
        ctx: &EncodeContext,
        patients: Vec<Option<String>>,
        devices: Vec<Option<String>>,
    ) -> FhirEncoder {
        FhirEncoder {
            json: JsonEncoder::new(ctx.names.clone(), ctx.start),
            patients,
            devices,
        }
    }

    fn patient_ref(&self, idx: u32) -> Option<&str> {
        self.patients.get(idx as usize)?.as_deref()
    }

    fn device_ref(&self, idx: u32) -> Option<&str> {
        self.devices.get(idx as usize)?.as_deref()
    }

    /// The Observations of a measurement (what [`Encoder::encode`] writes).
    pub fn resources(&self, m: &Measurement) -> Vec<Observation> {
        let message = self.json.message(m);
        let refs = Refs {
            patient: self.patient_ref(m.patient_idx),
            device: self.device_ref(m.device_idx),
        };
        let mut out = Vec::with_capacity(message.values.len() + 1);
        observations(&message, refs, &mut out);
        out
    }
}

impl Encoder for FhirEncoder {
    fn content_type(&self) -> &'static str {
        // One resource per line (FHIR bulk data's NDJSON form).
        "application/fhir+ndjson"
    }

    fn encode(&self, m: &Measurement, out: &mut Vec<u8>) {
        let message = self.json.message(m);
        let refs = Refs {
            patient: self.patient_ref(m.patient_idx),
            device: self.device_ref(m.device_idx),
        };
        write_observations(&message, refs, out);
    }
}

/// The FHIR encoder for carriers that take any encoding (MQTT, file):
/// references by identifier only, since no server gave ids.
pub fn encoder(ctx: &EncodeContext) -> anyhow::Result<AnyEncoder> {
    Ok(AnyEncoder::Fhir(FhirEncoder::new(
        ctx,
        Vec::new(),
        Vec::new(),
    )))
}

/// Creates the patients and devices on the FHIR server (conditional
/// create) and returns the carrier and an encoder referencing their ids.
pub async fn connect(cfg: &TargetConfig, ctx: &EncodeContext) -> anyhow::Result<Wired> {
    let carrier = FhirCarrier::new(cfg)?;
    let names = &ctx.names;
    let patient_ids = carrier
        .create_all(names.patients.iter().map(|p| {
            (
                "Patient",
                SID_PATIENT,
                p.clone(),
                serde_json::to_value(admin::patient(p)).unwrap_or_default(),
            )
        }))
        .await
        .context("cannot create the patients on the FHIR server")?;
    let patient_refs: Vec<Option<String>> = patient_ids
        .iter()
        .map(|id| Some(format!("Patient/{id}")))
        .collect();
    // A device is named `<patient>/<model>`: its patient is the prefix.
    let owner = |device: &str| -> Option<usize> {
        let (patient, _) = device.rsplit_once('/')?;
        names.patients.iter().position(|p| p == patient)
    };
    let device_ids = carrier
        .create_all(names.devices.iter().enumerate().map(|(i, d)| {
            let model = names.models.get(i).map_or("", String::as_str);
            let patient = owner(d);
            let device = admin::device(
                d,
                model,
                patient.map_or("", |p| names.patients[p].as_str()),
                patient.and_then(|p| patient_refs[p].as_deref()),
            );
            (
                "Device",
                SID_DEVICE,
                d.clone(),
                serde_json::to_value(device).unwrap_or_default(),
            )
        }))
        .await
        .context("cannot create the devices on the FHIR server")?;
    let device_refs = device_ids
        .iter()
        .map(|id| Some(format!("Device/{id}")))
        .collect();
    Ok(Wired {
        carrier: AnyCarrier::Fhir(carrier),
        encoder: AnyEncoder::Fhir(FhirEncoder::new(ctx, patient_refs, device_refs)),
    })
}

/// POSTs Observations (or transaction Bundles of them) to a FHIR server.
#[derive(Debug)]
pub struct FhirCarrier {
    client: reqwest::Client,
    base: String,
    auth: Auth,
    run_id: Option<String>,
    bundle: usize,
    created: AtomicU64,
    found: AtomicU64,
    transactions: AtomicU64,
    empty: AtomicU64,
}

impl FhirCarrier {
    /// A carrier for the FHIR base URL `cfg.url`.
    pub fn new(cfg: &TargetConfig) -> anyhow::Result<FhirCarrier> {
        let tls = cfg.client_tls()?;
        let client = super::http::client(
            cfg.timeout,
            cfg.lanes.max(SETUP_CONCURRENCY),
            tls.as_deref(),
        )
        .context("cannot build the HTTP client")?;
        let bundle = cfg
            .fhir
            .bundle
            .map_or(1, |n| n as usize)
            .clamp(1, MAX_BUNDLE);
        Ok(FhirCarrier {
            client,
            base: cfg.url.trim_end_matches('/').to_owned(),
            auth: cfg.auth.clone(),
            run_id: cfg.run_id.clone(),
            bundle,
            created: AtomicU64::new(0),
            found: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            empty: AtomicU64::new(0),
        })
    }

    fn post(&self, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, FHIR_JSON)
            .header(ACCEPT, FHIR_JSON)
            // The server's copy of what was just sent is not needed.
            .header("Prefer", "return=minimal")
            .body(body);
        if let Some(run) = &self.run_id {
            request = request.header(RUN_HEADER, run);
        }
        request
    }

    /// Conditional creates of `(type, identifier system, value, resource)`,
    /// a few at a time; the server's ids in order.
    async fn create_all(
        &self,
        items: impl Iterator<Item = (&'static str, &'static str, String, serde_json::Value)>,
    ) -> anyhow::Result<Vec<String>> {
        let items: Vec<_> = items.collect();
        let mut ids = vec![String::new(); items.len()];
        let mut tasks = JoinSet::new();
        let mut items = items.into_iter().enumerate();
        loop {
            while tasks.len() < SETUP_CONCURRENCY
                && let Some((i, (kind, system, value, resource))) = items.next()
            {
                let request = self
                    .post(&format!("{}/{kind}", self.base), to_json(&resource))
                    .header("If-None-Exist", if_none_exist(system, &value));
                let auth = self.auth.clone();
                tasks.spawn(async move { (i, kind, value, create(&auth, request, kind).await) });
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            let (i, kind, value, result) = done.context("a create task failed")?;
            let (created, id) = result.with_context(|| format!("{kind} {value:?}"))?;
            let counter = if created { &self.created } else { &self.found };
            counter.fetch_add(1, Ordering::Relaxed);
            ids[i] = id;
        }
        Ok(ids)
    }

    async fn send_one(&self, resource: &[u8]) -> Sent {
        let mut request = self.post(&format!("{}/Observation", self.base), resource.to_vec());
        if let Some(search) = observation_if_none_exist(resource) {
            request = request.header("If-None-Exist", search);
        }
        match answer(&self.auth, request).await {
            Ok((201, _)) => {
                self.created.fetch_add(1, Ordering::Relaxed);
                Sent::Accepted
            }
            Ok(_) => {
                self.found.fetch_add(1, Ordering::Relaxed);
                Sent::Accepted
            }
            Err(f) => Sent::NotAccepted(f),
        }
    }

    async fn send_transaction(&self, resources: &[&[u8]]) -> Sent {
        let bundle = transaction_raw(resources);
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let body = match answer(&self.auth, self.post(&self.base, bundle)).await {
            Ok((_, body)) => body,
            Err(f) => return Sent::NotAccepted(f),
        };
        match transaction_outcome(&body, resources.len()) {
            Ok(TransactionOutcome::Done(_)) => Sent::Accepted,
            Ok(TransactionOutcome::Failed {
                index,
                status,
                issue,
            }) => {
                let reason = issue.as_ref().map_or("entry_failed", |i| i.code.as_str());
                let detail = format!(
                    "transaction entry {index} answered {status}: {}",
                    issue
                        .as_ref()
                        .and_then(|i| i.diagnostics.clone())
                        .unwrap_or_default()
                );
                Sent::NotAccepted(Failure::new(Cause::Status(status), detail).with_reason(reason))
            }
            Err(e) => Sent::NotAccepted(Failure::new(
                Cause::MalformedAnswer,
                format!("the transaction-response cannot be read: {e}"),
            )),
        }
    }
}

/// A conditional create's answer: (created?, id).
async fn create(
    auth: &Auth,
    request: reqwest::RequestBuilder,
    kind: &str,
) -> anyhow::Result<(bool, String)> {
    let response = match auth.send(request).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => anyhow::bail!(failure_of(&e).detail),
        Err(f) => anyhow::bail!("{}: {}", f.cause.name(), auth_failure_text(&f)),
    };
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .or_else(|| response.headers().get("content-location"))
        .and_then(|v| v.to_str().ok())
        .and_then(parse_location);
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        let why = first_issue(&body).map_or_else(
            || String::from_utf8_lossy(&body[..body.len().min(DETAIL_BYTES)]).into_owned(),
            |i| format!("{}: {}", i.code, i.diagnostics.unwrap_or_default()),
        );
        anyhow::bail!("the server answered {status}: {why}");
    }
    let id = location
        .filter(|(t, _)| t == kind)
        .map(|(_, id)| id)
        .or_else(|| {
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            v.get("id")?.as_str().map(str::to_owned)
        })
        .ok_or_else(|| {
            anyhow::anyhow!("the server answered {status} with neither a Location nor an id")
        })?;
    Ok((status.as_u16() == 201, id))
}

/// An authentication failure in words, with what to check.
fn auth_failure_text(f: &Failure) -> String {
    match f.cause {
        Cause::Auth(cause) => format!("{} (hint: {})", f.detail, cause.hint(f.reason.as_deref())),
        _ => f.detail.clone(),
    }
}

/// Sends a request; a 2xx is `(status, body)`, anything else a failure
/// with its cause, `Retry-After` and OperationOutcome issue code.
async fn answer(auth: &Auth, request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Failure> {
    let response = auth.send(request).await?.map_err(|e| failure_of(&e))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = match response.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => {
            let f = failure_of(&e);
            let cause = if status.is_success() {
                Cause::MalformedAnswer
            } else {
                Cause::Status(status.as_u16())
            };
            return Err(Failure {
                cause,
                retry_after,
                detail: format!("{status} with a body that could not be read: {}", f.detail),
                reason: None,
            });
        }
    };
    if status.is_success() {
        return Ok((status.as_u16(), body));
    }
    let issue = first_issue(&body);
    let detail = match &issue {
        Some(i) => format!(
            "{status}: {} ({})",
            i.diagnostics.as_deref().unwrap_or(""),
            i.code
        ),
        None => format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(DETAIL_BYTES)])
        ),
    };
    Err(Failure {
        cause: Cause::Status(status.as_u16()),
        retry_after,
        detail,
        reason: issue.map(|i| i.code),
    })
}

impl Carrier for FhirCarrier {
    fn batch_limit(&self) -> usize {
        self.bundle
    }

    async fn send(&self, batch: &[Outgoing]) -> Sent {
        // The encoder wrote one compact resource per line: sent as they
        // are, never parsed and written again.
        let resources: Vec<&[u8]> = batch
            .iter()
            .flat_map(|m| m.body.split(|b| *b == b'\n'))
            .filter(|l| !l.is_empty())
            .collect();
        match resources.as_slice() {
            // A message with nothing to say (no value, alarm or event).
            [] => {
                self.empty.fetch_add(batch.len() as u64, Ordering::Relaxed);
                Sent::Accepted
            }
            [one] if self.bundle == 1 => self.send_one(one).await,
            _ => self.send_transaction(&resources).await,
        }
    }

    fn destination(&self) -> &str {
        &self.base
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BTreeMap::from([
            ("fhir_created".to_owned(), get(&self.created)),
            ("fhir_found_existing".to_owned(), get(&self.found)),
            ("fhir_transactions".to_owned(), get(&self.transactions)),
            ("fhir_empty_messages".to_owned(), get(&self.empty)),
        ])
        .into_iter()
        .chain(self.auth.counters())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::json::Names;
    use medtwin_sim::{DeviceKind, DeviceTime, Quality, Reading, Readings, Vital};

    #[test]
    fn the_encoder_writes_one_observation_per_line_with_literal_references() {
        let ctx = EncodeContext {
            names: Names {
                patients: vec!["ward-000".into()],
                devices: vec!["ward-000/pulse_oximeter".into()],
                models: vec!["pulse_oximeter".into()],
            },
            start: medtwin_wire::parse_time("2026-01-01T08:00:00Z").unwrap(),
        };
        let e = FhirEncoder::new(
            &ctx,
            vec![Some("Patient/7".into())],
            vec![Some("Device/9".into())],
        );
        let m = Measurement {
            device_idx: 0,
            patient_idx: 0,
            kind: DeviceKind::PulseOximeter,
            seq: 3,
            measured_ms: 61_500,
            device_time: DeviceTime::Synced(61_500),
            readings: Readings::new(&[
                Reading {
                    vital: Vital::Spo2,
                    value: 96.0,
                },
                Reading {
                    vital: Vital::Hr,
                    value: 80.0,
                },
            ]),
            quality: Quality::Good,
            alarm: None,
            event: None,
        };
        let mut out = Vec::new();
        e.encode(&m, &mut out);
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["subject"]["reference"], "Patient/7");
        assert_eq!(lines[1]["device"]["reference"], "Device/9");
        assert_eq!(lines[0]["effectiveDateTime"], "2026-01-01T08:01:01.500Z");
        let mut again = Vec::new();
        e.encode(&m, &mut again);
        assert_eq!(out, again, "pure");
    }
}
