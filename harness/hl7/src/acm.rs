//! IHE ACM, PCD-04 "Report Alert": one `ORU^R40^ORU_R40` (HL7 v2.6) per
//! alert state change, one alert per message, its facets in OBX rows
//! numbered by OBX-4's fifth part (refs: HL7, "PCD-04"):
//!
//! | facet | OBX-3 | OBX-5 |
//! |---|---|---|
//! | 1 event identification | `196616^MDC_EVT_ALARM^MDC` | the event term (CWE), original text the alert kind; OBX-8 abnormality, priority, alert type |
//! | 2 source identification | the triggering metric (NM, with unit and time), or `68480^MDC_ATTR_ALERT_SOURCE^MDC` | its value, or the source device |
//! | 3 event phase | `68481^MDC_ATTR_EVENT_PHASE^MDC` | `start`, `continue`, `update`, `escalate`, `de-escalate`, `end` |
//! | 4 alarm state | `68482^MDC_ATTR_ALARM_STATE^MDC` | `off`, `inactive`, `active`, `latched` |
//! | 5 inactivation state | `68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC` | `enabled`, `audio-paused`, ... |
//! | 6 priority | `68484^MDC_ATTR_ALARM_PRIORITY^MDC` | `PH`, `PM`, `PL`, `PN` |
//! | 7 alert type | `68485^MDC_ATTR_ALERT_TYPE^MDC` | `SP`, `ST`, `SA` |
//! | 8 score (medtwin) | `192515^MDCX_MEDTWIN_NEWS2_SCORE^MDC` | the NEWS2 total |
//!
//! The decoder reads facets by OBX-4's facet number or by OBX-3's
//! reference id, so messages from alarm sources that number the ACM
//! attributes differently (68164–68168 in some products) read the same.

use std::fmt;

use medtwin_wire::{AlertMessage, Priority, WireValue};

use crate::error::DecodeError;
use crate::mdc;
use crate::message::{Er7Writer, Message, Segment};
use crate::pcd01::{Pcd01Options, eui64, unit_of, write_msh, write_patient};
use crate::time::{from_dtm, to_dtm};

/// MSH-21 of a PCD-04 message: the IHE PCD ACM message profile.
pub const PCD04_PROFILE: [&str; 4] = [
    "IHE_PCD_ACM_001",
    "IHE PCD",
    "1.3.6.1.4.1.19376.1.6.4.4",
    "ISO",
];
/// MSH-9 medtwin writes: the message structure ORU_R40, as IHE PCD-04
/// and alarm sources write it (HL7 v2.6 has no separate ORU_R40
/// definition; its layout is ORU_R01's). The decoder also takes
/// `ORU^R40^ORU_R01` and `ORU^R40`.
pub const PCD04_TYPE: [&str; 3] = ["ORU", "R40", "ORU_R40"];

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// A value this module does not know, as received.
            Other(String),
        }

        impl $name {
            /// Its text in an OBX.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$v => $s,)*
                    $name::Other(s) => s,
                }
            }

            /// The value `text` names (case-insensitive); any other text
            /// is kept as `Other`.
            pub fn parse(text: &str) -> Self {
                let t = text.trim();
                $(if t.eq_ignore_ascii_case($s) { return $name::$v; })*
                $name::Other(t.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Facet 3, where the alert is in its life.
    EventPhase {
        /// The alert began: the one medtwin judges.
        Start = "start",
        /// Still present (a periodic repeat).
        Continue = "continue",
        /// Something about it changed.
        Update = "update",
        /// Its priority rose.
        Escalate = "escalate",
        /// Its priority fell.
        DeEscalate = "de-escalate",
        /// It ended.
        End = "end",
    }
}

text_enum! {
    /// Facet 4, IEC 60601-1-8 alarm condition state.
    AlarmState {
        /// Alarm turned off.
        Off = "off",
        /// Condition no longer present.
        Inactive = "inactive",
        /// Condition present.
        Active = "active",
        /// Condition gone, signal latched until acknowledged.
        Latched = "latched",
    }
}

text_enum! {
    /// Facet 5, the alarm's inactivation (silencing) state.
    InactivationState {
        /// Not inactivated.
        Enabled = "enabled",
        /// Audio paused.
        AudioPaused = "audio-paused",
        /// Audio off.
        AudioOff = "audio-off",
        /// Alarm paused.
        AlarmPaused = "alarm-paused",
        /// Alarm off.
        AlarmOff = "alarm-off",
        /// Acknowledged by a user.
        AlertAcknowledged = "alert-acknowledged",
    }
}

text_enum! {
    /// Facet 7 and OBX-8: the kind of alert.
    AlertType {
        /// Physiological alarm.
        Physiological = "SP",
        /// Technical alarm.
        Technical = "ST",
        /// Advisory.
        Advisory = "SA",
    }
}

text_enum! {
    /// Facet 6 and OBX-8: alarm priority.
    AlarmPriority {
        /// High.
        High = "PH",
        /// Medium.
        Medium = "PM",
        /// Low.
        Low = "PL",
        /// No priority (a message, not an alarm).
        None = "PN",
    }
}

impl AlarmPriority {
    /// From medtwin's priority.
    pub fn of(p: Priority) -> Self {
        match p {
            Priority::High => AlarmPriority::High,
            Priority::Medium => AlarmPriority::Medium,
            Priority::Low => AlarmPriority::Low,
        }
    }

    /// To medtwin's priority (no priority and unknown ones are low).
    pub fn to_priority(&self) -> Priority {
        match self {
            AlarmPriority::High => Priority::High,
            AlarmPriority::Medium => Priority::Medium,
            _ => Priority::Low,
        }
    }
}

/// The measurement that set the alert off.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// Its value (code, value, UCUM unit, LOINC).
    pub value: WireValue,
    /// When it was measured, RFC 3339.
    pub time: String,
}

/// One PCD-04 alert report.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertReport {
    /// The alert's id, the same in every phase (OBR-3).
    pub alert_id: String,
    /// PID-3-1.
    pub patient_id: String,
    /// medtwin's alert kind (`news2-high`, `device-lead-off`); for a
    /// foreign event with no kind, its text or reference id.
    pub kind: String,
    /// The event term, facet 1.
    pub event_code: u32,
    /// The event term's reference id.
    pub event_name: String,
    /// Priority.
    pub priority: AlarmPriority,
    /// Physiological, technical or advisory.
    pub alert_type: AlertType,
    /// OBX-8's `L`/`H` (limit alarms), if given.
    pub abnormality: Option<String>,
    /// Facet 3.
    pub phase: EventPhase,
    /// Facet 4.
    pub state: AlarmState,
    /// Facet 5.
    pub inactivation: InactivationState,
    /// When the alert changed (OBR-7), RFC 3339.
    pub time: String,
    /// The triggering measurement (facet 2), if any.
    pub trigger: Option<Trigger>,
    /// When the measurement that raised the alert was taken, RFC 3339:
    /// the trigger's time, or the source row's OBX-14 when the report
    /// names no triggering value.
    pub measurement_time: Option<String>,
    /// A score behind the alert (NEWS2 total), if any.
    pub score: Option<i64>,
}

impl AlertReport {
    /// The report of `alert` in `phase` at `time` (RFC 3339): event term
    /// from the kind, alert type technical for `device-` kinds and
    /// physiological otherwise, state inactive at the end and active
    /// before. An alert without an id gets `<patient>/<kind>`.
    pub fn from_alert(
        alert: &AlertMessage,
        phase: EventPhase,
        time: &str,
        trigger: Option<Trigger>,
    ) -> AlertReport {
        let event = mdc::event_for_kind(&alert.kind);
        let state = if phase == EventPhase::End {
            AlarmState::Inactive
        } else {
            AlarmState::Active
        };
        AlertReport {
            alert_id: alert
                .alert_id
                .clone()
                .unwrap_or_else(|| format!("{}/{}", alert.patient_id, alert.kind)),
            patient_id: alert.patient_id.clone(),
            kind: alert.kind.clone(),
            event_code: event.code,
            event_name: event.name.into(),
            priority: AlarmPriority::of(alert.priority),
            alert_type: if alert.kind.starts_with("device-") {
                AlertType::Technical
            } else {
                AlertType::Physiological
            },
            abnormality: None,
            phase,
            state,
            inactivation: InactivationState::Enabled,
            time: medtwin_wire::parse_time(time)
                .map_or_else(|| time.to_owned(), medtwin_wire::format_time),
            measurement_time: trigger.as_ref().map(|t| t.time.clone()).or_else(|| {
                let t = alert.measurement_time.as_deref()?;
                Some(
                    medtwin_wire::parse_time(t)
                        .map_or_else(|| t.to_owned(), medtwin_wire::format_time),
                )
            }),
            trigger,
            score: alert.score,
        }
    }

    /// The alert in medtwin's form: priority, kind, the trigger's time as
    /// the measurement time, the score.
    pub fn to_alert_message(&self) -> AlertMessage {
        AlertMessage {
            schema: None,
            alert_id: Some(self.alert_id.clone()),
            patient_id: self.patient_id.clone(),
            kind: self.kind.clone(),
            priority: self.priority.to_priority(),
            measurement_time: self.measurement_time.clone(),
            score: self.score,
        }
    }

    /// The `ORU^R40` of this report (a pure function). `control_id` is
    /// MSH-10: unique per message (the alert id and phase are not).
    pub fn encode(&self, opts: &Pcd01Options, control_id: &str) -> String {
        let time = to_dtm(&self.time).unwrap_or_default();
        let mut w = Er7Writer::new();
        write_msh(&mut w, opts, &time, PCD04_TYPE, control_id, PCD04_PROFILE);
        write_patient(&mut w, &self.patient_id, &opts.assigning_authority);
        let app_eui = eui64(&opts.sending_application);
        let order = [
            self.alert_id.as_str(),
            &opts.sending_application,
            &app_eui,
            "EUI-64",
        ];
        let alarm_code = mdc::EVT_ALARM.code.to_string();
        let alarm = [alarm_code.as_str(), mdc::EVT_ALARM.name, mdc::MDC];
        w.segment("OBR")
            .field("1")
            .comps(&order)
            .comps(&order)
            .comps(&alarm)
            .empty(2)
            .field(&time);

        let event_code = self.event_code.to_string();
        let mut flags: Vec<[&str; 1]> = Vec::new();
        if let Some(a) = &self.abnormality {
            flags.push([a]);
        }
        flags.push([self.priority.as_str()]);
        flags.push([self.alert_type.as_str()]);
        let flags: Vec<&[&str]> = flags.iter().map(|f| f.as_slice()).collect();
        obx_head(&mut w, 1, "CWE", &alarm, 1)
            .comps(&[
                &event_code,
                &self.event_name,
                mdc::MDC,
                "",
                "",
                "",
                "",
                "",
                &self.kind,
            ])
            .empty(2)
            .reps(&flags)
            .empty(2)
            .field("F")
            .empty(2)
            .field(&time);

        match &self.trigger {
            Some(t) => {
                let metric = mdc::metric_for(&t.value.code, "");
                let (code, name) = match metric {
                    Some(m) => (m.code.code.to_string(), m.code.name),
                    None => (String::new(), t.value.code.as_str()),
                };
                let trigger_time = to_dtm(&t.time).unwrap_or_default();
                let mut id = vec![code.as_str(), name, mdc::MDC];
                if let Some(loinc) = t.value.loinc.as_deref() {
                    id.extend([loinc, "", mdc::LOINC]);
                }
                obx_head(&mut w, 2, "NM", &id, 2).number(t.value.value);
                match metric
                    .and_then(|m| m.unit)
                    .filter(|u| mdc::ucum_of(u.code) == Some(t.value.unit.as_str()))
                {
                    Some(u) => {
                        let uc = u.code.to_string();
                        w.comps(&[
                            &uc,
                            u.name,
                            mdc::MDC,
                            &t.value.unit,
                            &t.value.unit,
                            mdc::UCUM,
                        ])
                    }
                    None => w.comps(&[&t.value.unit, &t.value.unit, mdc::UCUM]),
                };
                w.empty(4).field("F").empty(2).field(&trigger_time);
            }
            None => {
                let src = mdc::ATTR_ALERT_SOURCE.code.to_string();
                let mds = mdc::MDS_PHYSIO_MONITOR.code.to_string();
                obx_head(
                    &mut w,
                    2,
                    "CWE",
                    &[&src, mdc::ATTR_ALERT_SOURCE.name, mdc::MDC],
                    2,
                )
                .comps(&[&mds, mdc::MDS_PHYSIO_MONITOR.name, mdc::MDC])
                .empty(5)
                .field("F");
                if let Some(t) = self.measurement_time.as_deref().and_then(to_dtm) {
                    w.empty(2).field(&t);
                }
            }
        }
        let facets = [
            (3, mdc::ATTR_EVENT_PHASE, self.phase.as_str()),
            (4, mdc::ATTR_ALARM_STATE, self.state.as_str()),
            (
                5,
                mdc::ATTR_ALARM_INACTIVATION_STATE,
                self.inactivation.as_str(),
            ),
            (6, mdc::ATTR_ALARM_PRIORITY, self.priority.as_str()),
            (7, mdc::ATTR_ALERT_TYPE, self.alert_type.as_str()),
        ];
        for (facet, code, value) in facets {
            let c = code.code.to_string();
            obx_head(&mut w, facet, "ST", &[&c, code.name, mdc::MDC], facet)
                .field(value)
                .empty(5)
                .field("F");
        }
        if let Some(score) = self.score {
            let c = mdc::X_NEWS2_SCORE.code.to_string();
            obx_head(&mut w, 8, "NM", &[&c, mdc::X_NEWS2_SCORE.name, mdc::MDC], 8)
                .field(&score.to_string())
                .comps(&["{score}", "{score}", mdc::UCUM])
                .empty(4)
                .field("F");
        }
        w.finish()
    }

    /// Reads a PCD-04 report (see the module's table). Required: MSH-9
    /// `ORU^R40`, PID-3-1, an event row; a missing phase reads as
    /// `start` and a missing state as `active` (a one-shot report),
    /// priority and type from OBX-8 or their facets.
    pub fn decode(msg: &Message) -> Result<AlertReport, DecodeError> {
        let (code, event, _) = msg.message_type();
        if code != "ORU" || event != "R40" {
            return Err(DecodeError::WrongType {
                found: format!("{code}^{event}"),
                expected: "ORU^R40",
            });
        }
        let patient_id = msg
            .get("PID-3-1")
            .ok_or_else(|| DecodeError::missing("PID-3-1"))?
            .to_owned();
        let mut r = AlertReport {
            alert_id: msg
                .get("OBR-3-1")
                .or_else(|| msg.get("OBR-2-1"))
                .or_else(|| msg.control_id())
                .unwrap_or("")
                .to_owned(),
            patient_id,
            kind: String::new(),
            event_code: 0,
            event_name: String::new(),
            priority: AlarmPriority::Other(String::new()),
            alert_type: AlertType::Other(String::new()),
            abnormality: None,
            phase: EventPhase::Start,
            state: AlarmState::Active,
            inactivation: InactivationState::Enabled,
            time: String::new(),
            trigger: None,
            measurement_time: None,
            score: None,
        };
        let mut event_text = None;
        let mut found_event = false;
        let mut event_time = None;
        for (i, obx) in msg.segments_named("OBX").enumerate() {
            let path = |f: usize| format!("OBX[{}]-{f}", i + 1);
            let code: u32 = obx.get(3, 1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let name = obx.get(3, 2).unwrap_or("");
            let value = obx.get(5, 1).unwrap_or("");
            match facet_of(obx, code, name) {
                Facet::Event => {
                    found_event = true;
                    if code == mdc::EVT_ALARM.code && obx.get(2, 1) == Some("CWE") {
                        let v = obx.field(5);
                        r.event_code = v
                            .and_then(|f| f.component(1))
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(0);
                        r.event_name = v.and_then(|f| f.component(2)).unwrap_or("").to_owned();
                        event_text = v
                            .and_then(|f| f.component(9).or_else(|| f.component(2)))
                            .map(str::to_owned);
                    } else {
                        r.event_code = code;
                        r.event_name = name.to_owned();
                        event_text = (!value.is_empty()).then(|| value.to_owned());
                    }
                    if let Some(flags) = obx.field(8) {
                        for rep in 1..=flags.repetitions() {
                            let Some(flag) = flags.get(rep, 1, 1) else {
                                continue;
                            };
                            match flag {
                                "PH" | "PM" | "PL" | "PN" => {
                                    r.priority = AlarmPriority::parse(flag)
                                }
                                "SP" | "ST" | "SA" => r.alert_type = AlertType::parse(flag),
                                _ => r.abnormality = Some(flag.to_owned()),
                            }
                        }
                    }
                    event_time = obx.get(14, 1).map(str::to_owned);
                }
                Facet::Source if obx.get(2, 1) == Some("NM") => {
                    let v: f64 = value
                        .parse()
                        .ok()
                        .filter(|v: &f64| v.is_finite())
                        .ok_or_else(|| DecodeError::invalid(path(5), value, "not a number"))?;
                    let time = obx
                        .get(14, 1)
                        .map(|t| {
                            from_dtm(t)
                                .ok_or_else(|| DecodeError::invalid(path(14), t, "not an HL7 DTM"))
                        })
                        .transpose()?;
                    let wire_code =
                        mdc::wire_code_of(code).map_or_else(|| name.to_owned(), str::to_owned);
                    let loinc = obx
                        .field(3)
                        .filter(|f| f.component(6) == Some(mdc::LOINC))
                        .and_then(|f| f.component(4))
                        .map(str::to_owned);
                    r.measurement_time.clone_from(&time);
                    r.trigger = Some(Trigger {
                        value: WireValue {
                            code: wire_code,
                            value: v,
                            unit: unit_of(obx).unwrap_or_default(),
                            loinc,
                        },
                        time: time.unwrap_or_default(),
                    });
                }
                Facet::Source => {
                    if let Some(t) = obx.get(14, 1) {
                        r.measurement_time =
                            Some(from_dtm(t).ok_or_else(|| {
                                DecodeError::invalid(path(14), t, "not an HL7 DTM")
                            })?);
                    }
                }
                Facet::Phase => r.phase = EventPhase::parse(value),
                Facet::State => r.state = AlarmState::parse(value),
                Facet::Inactivation => r.inactivation = InactivationState::parse(value),
                Facet::Priority => {
                    if matches!(r.priority, AlarmPriority::Other(_)) {
                        r.priority = AlarmPriority::parse(value);
                    }
                }
                Facet::Type => {
                    if matches!(r.alert_type, AlertType::Other(_)) {
                        r.alert_type = AlertType::parse(value);
                    }
                }
                Facet::Score => {
                    r.score = Some(
                        value
                            .parse()
                            .map_err(|_| DecodeError::invalid(path(5), value, "not an integer"))?,
                    );
                }
                Facet::Other => {}
            }
        }
        if !found_event {
            return Err(DecodeError::missing("OBX (event identification, facet 1)"));
        }
        r.kind = mdc::kind_of_event(r.event_code)
            .or(event_text)
            .or_else(|| (!r.event_name.is_empty()).then(|| r.event_name.clone()))
            .ok_or_else(|| DecodeError::missing("OBX-5 (event identification)"))?;
        let time_text = msg
            .get("OBR-7")
            .or(event_time.as_deref())
            .or_else(|| msg.get("MSH-7"))
            .ok_or_else(|| DecodeError::missing("OBR-7"))?;
        r.time = from_dtm(time_text)
            .ok_or_else(|| DecodeError::invalid("OBR-7", time_text, "not an HL7 DTM"))?;
        Ok(r)
    }
}

fn obx_head<'w>(
    w: &'w mut Er7Writer,
    set_id: u32,
    value_type: &str,
    code: &[&str],
    facet: u32,
) -> &'w mut Er7Writer {
    w.segment("OBX")
        .field(&set_id.to_string())
        .field(value_type)
        .comps(code)
        .field(&format!("1.0.0.0.{facet}"))
}

enum Facet {
    Event,
    Source,
    Phase,
    State,
    Inactivation,
    Priority,
    Type,
    Score,
    Other,
}

/// Which facet an OBX carries: by OBX-3's reference id where it names an
/// ACM attribute, else by OBX-4's fifth part.
fn facet_of(obx: &Segment, code: u32, name: &str) -> Facet {
    match name {
        "MDC_ATTR_EVENT_PHASE" => return Facet::Phase,
        "MDC_ATTR_ALARM_STATE" | "MDC_ATTR_ALERT_STATE" => return Facet::State,
        "MDC_ATTR_ALARM_INACTIVATION_STATE" => return Facet::Inactivation,
        "MDC_ATTR_ALARM_PRIORITY" => return Facet::Priority,
        "MDC_ATTR_ALERT_TYPE" => return Facet::Type,
        "MDC_ATTR_ALERT_SOURCE" => return Facet::Source,
        _ => {}
    }
    if code == mdc::X_NEWS2_SCORE.code {
        return Facet::Score;
    }
    if code == mdc::EVT_ALARM.code {
        return Facet::Event;
    }
    let sub = obx.get(4, 1).unwrap_or("");
    let parts: Vec<&str> = sub.split('.').collect();
    match (parts.len(), parts.last()) {
        (5, Some(&"1")) => Facet::Event,
        (5, Some(&"2")) => Facet::Source,
        (5, Some(&"3")) => Facet::Phase,
        (5, Some(&"4")) => Facet::State,
        (5, Some(&"5")) => Facet::Inactivation,
        (5, Some(&"6")) => Facet::Priority,
        (5, Some(&"7")) => Facet::Type,
        _ if name.starts_with("MDC_EVT") => Facet::Event,
        _ => Facet::Other,
    }
}
