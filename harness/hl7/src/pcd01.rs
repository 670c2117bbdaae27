//! IHE PCD-01 "Communicate PCD Data": one `ORU^R01^ORU_R01` (HL7 v2.6)
//! per telemetry message, and back (refs: HL7, "PCD-01").
//!
//! ```text
//! MSH|^~\&|MEDTWIN^<EUI-64>^EUI-64|MEDTWIN|||<time>||ORU^R01^ORU_R01|<id>|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO
//! PID|||<patient>^^^MEDTWIN^PI||^^^^^^U
//! PV1||I
//! OBR|1|<seq>^MEDTWIN^<device EUI-64>^EUI-64|<same>|182777000^monitoring of patient^SCT|||<time>
//! OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||<time>||||<device>^^<EUI-64>^EUI-64
//! OBX|2|ST|531969^MDC_ID_MODEL_NUMBER^MDC|1.0.0.1|pulse_oximeter||||||R|||<time>
//! OBX|3||69642^MDC_DEV_ANALY_SAT_O2_VMD^MDC|1.1.0.0|||||||X|||<time>
//! OBX|4|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC^59408-5^^LN|1.1.1.1|97|262688^MDC_DIM_PERCENT^MDC^%^%^UCUM|||||R|||<time>||||<device>^^<EUI-64>^EUI-64
//! ```
//!
//! A device technical alarm rides in the same message as an MDS-level
//! row `196616^MDC_EVT_ALARM^MDC` whose CWE value is the alarm's event
//! term, with medtwin's alarm name as the CWE's original text; the alarm
//! itself goes to an alarm manager as PCD-04 (see [`crate::acm`]).

use medtwin_wire::{TELEMETRY_SCHEMA, TelemetryMessage, WireValue};

use crate::error::DecodeError;
use crate::mdc::{self, Code, Placement};
use crate::message::{Er7Writer, Message, Segment};
use crate::time::{from_dtm, to_dtm};

/// MSH-21 of a PCD-01 message: the IHE PCD-01 message profile.
pub const PCD01_PROFILE: [&str; 4] = [
    "IHE_PCD_001",
    "IHE PCD",
    "1.3.6.1.4.1.19376.1.6.1.1.1",
    "ISO",
];
/// OBR-4 of a PCD-01 message: SNOMED CT 182777000 "monitoring of patient",
/// as the PCD-01 examples write it.
pub const OBR4_MONITORING: [&str; 3] = ["182777000", "monitoring of patient", "SCT"];

/// What the encoder writes around the device's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcd01Options {
    /// MSH-3's namespace id (the device observation reporter); its EUI-64
    /// is derived from it.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-5 (empty: not sent).
    pub receiving_application: String,
    /// MSH-6 (empty: not sent).
    pub receiving_facility: String,
    /// PID-3's assigning authority.
    pub assigning_authority: String,
    /// MSH-11: `P` production, `T` training, `D` debugging.
    pub processing_id: String,
}

impl Default for Pcd01Options {
    fn default() -> Self {
        Pcd01Options {
            sending_application: "MEDTWIN".into(),
            sending_facility: "MEDTWIN".into(),
            receiving_application: String::new(),
            receiving_facility: String::new(),
            assigning_authority: "MEDTWIN".into(),
            processing_id: "P".into(),
        }
    }
}

/// A device's EUI-64, derived from its id: FNV-1a 64 of the id with the
/// first octet marked locally administered and unicast (IEEE EUI-64
/// rules), written as 16 upper-case hex digits. Same id, same EUI-64.
pub fn eui64(id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let h = (h & !(0x01 << 56)) | (0x02 << 56);
    format!("{h:016X}")
}

/// MSH-10 of the PCD-01 message for `(device, seq)`: the device's EUI-64
/// and the sequence number, so a resend carries the same id.
pub fn control_id_for(device_id: &str, seq: u64) -> String {
    format!("{}-{seq}", eui64(device_id))
}

/// Writes MSH with the common PCD fields; used by PCD-01 and PCD-04.
pub(crate) fn write_msh(
    w: &mut Er7Writer,
    opts: &Pcd01Options,
    time: &str,
    message_type: [&str; 3],
    control_id: &str,
    profile: [&str; 4],
) {
    let app_eui = eui64(&opts.sending_application);
    w.msh()
        .comps(&[&opts.sending_application, &app_eui, "EUI-64"])
        .field(&opts.sending_facility)
        .field(&opts.receiving_application)
        .field(&opts.receiving_facility)
        .field(time)
        .empty(1)
        .comps(&message_type)
        .field(control_id)
        .field(&opts.processing_id)
        .field("2.6")
        .empty(2)
        .field("AL")
        .field("NE")
        .empty(1)
        .field("UNICODE UTF-8")
        .empty(2)
        .comps(&profile);
}

/// Writes PID (patient id with its assigning authority, `PI`; the name
/// left unknown, name type `U`) and PV1 (inpatient).
pub(crate) fn write_patient(w: &mut Er7Writer, patient_id: &str, authority: &str) {
    w.segment("PID")
        .empty(2)
        .comps(&[patient_id, "", "", authority, "PI"])
        .empty(1)
        .comps(&["", "", "", "", "", "", "U"]);
    w.segment("PV1").empty(1).field("I");
}

struct Obx<'a> {
    w: &'a mut Er7Writer,
    set_id: u32,
    time: &'a str,
    equipment: [&'a str; 4],
}

impl Obx<'_> {
    /// A containment row (MDS, VMD, channel): no value, status `X`.
    fn device_row(&mut self, code: Code, sub_id: &str, equipment: bool) {
        self.set_id += 1;
        let code_text = code.code.to_string();
        self.w
            .segment("OBX")
            .field(&self.set_id.to_string())
            .empty(1)
            .comps(&[&code_text, code.name, mdc::MDC])
            .field(sub_id)
            .empty(6)
            .field("X")
            .empty(2)
            .field(self.time);
        if equipment {
            self.w.empty(3).comps(&self.equipment);
        }
    }

    fn metric(&mut self, value: &WireValue, metric: &mdc::Metric, sub_id: &str) {
        self.set_id += 1;
        let code_text = metric.code.code.to_string();
        let loinc = value.loinc.as_deref().unwrap_or("");
        let mut code = vec![code_text.as_str(), metric.code.name, mdc::MDC];
        if !loinc.is_empty() {
            code.extend([loinc, "", mdc::LOINC]);
        }
        self.w
            .segment("OBX")
            .field(&self.set_id.to_string())
            .field("NM")
            .comps(&code)
            .field(sub_id)
            .number(value.value);
        let unit_code;
        match metric.unit {
            // The MDC unit, with the UCUM unit as the alternate coding.
            Some(u)
                if u == mdc::DIM_DIMLESS || mdc::ucum_of(u.code) == Some(value.unit.as_str()) =>
            {
                unit_code = u.code.to_string();
                self.w.comps(&[
                    &unit_code,
                    u.name,
                    mdc::MDC,
                    &value.unit,
                    &value.unit,
                    mdc::UCUM,
                ]);
            }
            _ => {
                self.w.comps(&[&value.unit, &value.unit, mdc::UCUM]);
            }
        }
        self.w
            .empty(4)
            .field("R")
            .empty(2)
            .field(self.time)
            .empty(3)
            .comps(&self.equipment);
    }
}

/// The PCD-01 `ORU^R01` of one telemetry message: a pure function (same
/// message and options, same bytes). Values that are not finite numbers,
/// or whose code medtwin does not know, are left out (the twin sends
/// neither).
pub fn encode_oru_r01(m: &TelemetryMessage, opts: &Pcd01Options) -> String {
    let time = to_dtm(&m.measured_at).unwrap_or_default();
    let eui = eui64(&m.device_id);
    let mut w = Er7Writer::new();
    write_msh(
        &mut w,
        opts,
        &time,
        ["ORU", "R01", "ORU_R01"],
        &control_id_for(&m.device_id, m.seq),
        PCD01_PROFILE,
    );
    write_patient(&mut w, &m.patient_id, &opts.assigning_authority);
    let seq = m.seq.to_string();
    let order = [seq.as_str(), &opts.sending_application, &eui, "EUI-64"];
    w.segment("OBR")
        .field("1")
        .comps(&order)
        .comps(&order)
        .comps(&OBR4_MONITORING)
        .empty(2)
        .field(&time);

    let mut obx = Obx {
        w: &mut w,
        set_id: 0,
        time: &time,
        equipment: [&m.device_id, "", &eui, "EUI-64"],
    };
    obx.device_row(mdc::mds_for_kind(&m.device_kind), "1.0.0.0", true);
    // MDS attributes and MDS-level metrics share the `1.0.0.n` numbering.
    let mut mds_n = 0u32;
    let mut next_mds = || {
        mds_n += 1;
        format!("1.0.0.{mds_n}")
    };
    obx.set_id += 1;
    let model_code = mdc::ID_MODEL_NUMBER.code.to_string();
    let sub = next_mds();
    obx.w
        .segment("OBX")
        .field(&obx.set_id.to_string())
        .field("ST")
        .comps(&[&model_code, mdc::ID_MODEL_NUMBER.name, mdc::MDC])
        .field(&sub)
        .field(&m.device_kind)
        .empty(5)
        .field("R")
        .empty(2)
        .field(&time);
    if let Some(alarm) = &m.alarm {
        let event = mdc::technical_alarm_event(alarm);
        let event_code = event.code.to_string();
        let alarm_code = mdc::EVT_ALARM.code.to_string();
        obx.set_id += 1;
        let sub = next_mds();
        obx.w
            .segment("OBX")
            .field(&obx.set_id.to_string())
            .field("CWE")
            .comps(&[&alarm_code, mdc::EVT_ALARM.name, mdc::MDC])
            .field(&sub)
            .comps(&[&event_code, event.name, mdc::MDC, "", "", "", "", "", alarm])
            .empty(5)
            .field("R")
            .empty(2)
            .field(&time);
    }

    let known: Vec<(&WireValue, mdc::Metric)> = m
        .values
        .iter()
        .filter(|v| v.value.is_finite())
        .filter_map(|v| Some((v, mdc::metric_for(&v.code, &m.device_kind)?)))
        .collect();
    for (v, metric) in known
        .iter()
        .filter(|(_, mt)| mt.placement == Placement::Mds)
    {
        let sub = next_mds();
        obx.metric(v, metric, &sub);
    }
    // VMDs in the order of their index, each with its channel and metrics.
    let mut vmds: Vec<(u32, Code, Option<Code>)> = known
        .iter()
        .filter_map(|(_, mt)| match mt.placement {
            Placement::Vmd {
                index,
                vmd,
                channel,
            } => Some((index, vmd, channel)),
            Placement::Mds => None,
        })
        .collect();
    vmds.sort_by_key(|v| v.0);
    vmds.dedup_by_key(|v| v.0);
    for (index, vmd, channel) in vmds {
        obx.device_row(vmd, &format!("1.{index}.0.0"), false);
        if let Some(ch) = channel {
            obx.device_row(ch, &format!("1.{index}.1.0"), false);
        }
        let mut n = 0;
        for (v, metric) in &known {
            if matches!(metric.placement, Placement::Vmd { index: i, .. } if i == index) {
                n += 1;
                obx.metric(v, metric, &format!("1.{index}.1.{n}"));
            }
        }
    }
    w.finish()
}

/// A decoded PCD-01 message.
#[derive(Clone, Debug, PartialEq)]
pub struct Pcd01Decoded {
    /// The telemetry it carries.
    pub message: TelemetryMessage,
    /// OBX-3 of numeric results medtwin has no wire code for (a monitor's
    /// perfusion index, say), left out of `message`: the caller counts them.
    pub unknown_metrics: Vec<String>,
}

/// Reads a PCD-01 `ORU^R01` back into a telemetry message: patient from
/// PID-3, sequence number from OBR-3 (medtwin's, or else 0), time from
/// OBR-7, device from OBX-18 (the first row with one), model from the
/// `MDC_ID_MODEL_NUMBER` row, a technical alarm from an `MDC_EVT_ALARM`
/// row, and every numeric result whose term medtwin knows, with its UCUM
/// unit (the alternate coding of OBX-6, or the MDC unit's UCUM
/// equivalent) and its LOINC code where OBX-3 carries one.
pub fn decode_oru_r01(msg: &Message) -> Result<Pcd01Decoded, DecodeError> {
    let (code, event, _) = msg.message_type();
    if code != "ORU" || event != "R01" {
        return Err(DecodeError::WrongType {
            found: format!("{code}^{event}"),
            expected: "ORU^R01",
        });
    }
    let patient_id = msg
        .get("PID-3-1")
        .ok_or_else(|| DecodeError::missing("PID-3-1"))?
        .to_owned();
    let seq = match msg.get("OBR-3-1").or_else(|| msg.get("OBR-2-1")) {
        Some(s) => s.parse().unwrap_or(0),
        None => 0,
    };
    let obxs: Vec<&Segment> = msg.segments_named("OBX").collect();
    let time_text = msg
        .get("OBR-7")
        .or_else(|| obxs.iter().find_map(|o| o.get(14, 1)))
        .ok_or_else(|| DecodeError::missing("OBR-7"))?;
    let measured_at = from_dtm(time_text)
        .ok_or_else(|| DecodeError::invalid("OBR-7", time_text, "not an HL7 DTM"))?;
    let device_id = obxs
        .iter()
        .find_map(|o| o.get(18, 1))
        .ok_or_else(|| DecodeError::missing("OBX-18-1"))?
        .to_owned();

    let mut device_kind = None;
    let mut alarm = None;
    let mut values = Vec::new();
    let mut unknown_metrics = Vec::new();
    for (i, obx) in obxs.iter().enumerate() {
        let path = |f: usize| format!("OBX[{}]-{f}", i + 1);
        let code = obx.get(3, 1).unwrap_or("");
        let code_n: u32 = code.parse().unwrap_or(0);
        if code_n == mdc::ID_MODEL_NUMBER.code {
            device_kind = obx.get(5, 1).map(str::to_owned);
            continue;
        }
        if code_n == mdc::EVT_ALARM.code {
            let value = obx.field(5);
            alarm = value
                .and_then(|f| f.component(9))
                .map(str::to_owned)
                .or_else(|| {
                    let c = value?.component(1)?.parse().ok()?;
                    mdc::technical_alarm_of(c).map(str::to_owned)
                })
                .or_else(|| value?.component(2).map(str::to_owned));
            continue;
        }
        if obx.get(2, 1) != Some("NM") || obx.get(11, 1) == Some("X") {
            continue;
        }
        let Some(wire) = mdc::wire_code_of(code_n) else {
            unknown_metrics.push(format!("{}^{}", code, obx.get(3, 2).unwrap_or("")));
            continue;
        };
        let text = obx.get(5, 1).ok_or_else(|| DecodeError::missing(path(5)))?;
        let value: f64 = text
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| DecodeError::invalid(path(5), text, "not a number"))?;
        let unit = unit_of(obx).ok_or_else(|| DecodeError::missing(path(6)))?;
        let loinc = obx
            .field(3)
            .filter(|f| f.component(6) == Some(mdc::LOINC))
            .and_then(|f| f.component(4))
            .map(str::to_owned);
        values.push(WireValue {
            code: wire.into(),
            value,
            unit,
            loinc,
        });
    }
    Ok(Pcd01Decoded {
        message: TelemetryMessage {
            schema: TELEMETRY_SCHEMA.into(),
            synthetic: true,
            patient_id,
            device_id,
            device_kind: device_kind.unwrap_or_else(|| "unknown".into()),
            seq,
            measured_at,
            values,
            alarm,
            event: None,
        },
        unknown_metrics,
    })
}

/// The UCUM unit of an OBX: the UCUM coding of OBX-6 (alternate or
/// primary), else the UCUM equivalent of its MDC unit, else its text.
pub(crate) fn unit_of(obx: &Segment) -> Option<String> {
    let f = obx.field(6)?;
    if f.component(6) == Some(mdc::UCUM) {
        return f.component(4).map(str::to_owned);
    }
    if f.component(3) == Some(mdc::UCUM) {
        return f.component(1).map(str::to_owned);
    }
    let first = f.component(1)?;
    match first.parse().ok().and_then(mdc::ucum_of) {
        Some(ucum) => Some(ucum.to_owned()),
        None => Some(first.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_is_stable_locally_administered_and_unicast() {
        let e = eui64("ward-003/pulse_oximeter");
        assert_eq!(e, eui64("ward-003/pulse_oximeter"));
        assert_ne!(e, eui64("ward-004/pulse_oximeter"));
        assert_eq!(e.len(), 16);
        let first = u8::from_str_radix(&e[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02, "{e}");
    }
}
