//! The ISO/IEEE 11073-10101 (MDC) terms medtwin's HL7 messages use, each
//! as its 32-bit context-free code (partition × 65536 + term code) and
//! reference id. Every code here is copied, with its source, in
//! `docs/references.md`, "HL7 v2, IHE PCD-01 and ACM (PCD-04)"; codes in
//! the private range (term codes 0xF000–0xFFFF of a partition, which
//! 11073-10101 leaves to private use) are medtwin's own, marked `MDCX_`,
//! and used only where MDC has no term.

/// An MDC term: 32-bit code and reference id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    /// Context-free code, e.g. 150456.
    pub code: u32,
    /// Reference id, e.g. `MDC_PULS_OXIM_SAT_O2`.
    pub name: &'static str,
}

const fn c(code: u32, name: &'static str) -> Code {
    Code { code, name }
}

/// The coding system name IHE PCD writes in CWE-3 for MDC terms.
pub const MDC: &str = "MDC";
/// The coding system name for UCUM units (alternate coding, CWE-6).
pub const UCUM: &str = "UCUM";
/// The coding system name for LOINC (alternate coding, CWE-6).
pub const LOINC: &str = "LN";

// --- Devices (partition 1, object infrastructure). ---

/// Multi-parameter physiological monitor, the MDS of a bedside monitor.
pub const MDS_PHYSIO_MONITOR: Code = c(69965, "MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS");
/// Infusion pump MDS.
pub const MDS_INFUSION_PUMP: Code = c(69985, "MDC_DEV_PUMP_INFUS_MDS");
/// Weight scale (personal health device specialisation, used as the MDS).
pub const MDS_SCALE: Code = c(528399, "MDC_DEV_SPEC_PROFILE_SCALE");
/// Pulse oximeter VMD.
pub const VMD_SAT_O2: Code = c(69642, "MDC_DEV_ANALY_SAT_O2_VMD");
/// ECG VMD.
pub const VMD_ECG: Code = c(69798, "MDC_DEV_ECG_VMD");
/// Non-invasive blood pressure VMD.
pub const VMD_NIBP: Code = c(70686, "MDC_DEV_PRESS_BLD_NONINV_VMD");
/// Non-invasive blood pressure channel.
pub const CHAN_NIBP: Code = c(70687, "MDC_DEV_PRESS_BLD_NONINV_CHAN");
/// Temperature VMD.
pub const VMD_TEMP: Code = c(69902, "MDC_DEV_METER_TEMP_VMD");
/// Infusion pump VMD.
pub const VMD_INFUSION_PUMP: Code = c(69986, "MDC_DEV_PUMP_INFUS_VMD");
/// The device's model number (an MDS attribute); medtwin writes its
/// catalogue name (`device_kind`).
pub const ID_MODEL_NUMBER: Code = c(531969, "MDC_ID_MODEL_NUMBER");

// --- Metrics (partition 2, SCADA). ---

/// SpO2.
pub const SAT_O2: Code = c(150456, "MDC_PULS_OXIM_SAT_O2");
/// Heart rate from the ECG.
pub const ECG_HEART_RATE: Code = c(147842, "MDC_ECG_HEART_RATE");
/// Pulse rate from the oximeter's pleth.
pub const PULS_OXIM_PULS_RATE: Code = c(149530, "MDC_PULS_OXIM_PULS_RATE");
/// Pulse rate from the NIBP cuff.
pub const PULS_RATE_NON_INV: Code = c(149546, "MDC_PULS_RATE_NON_INV");
/// Respiratory rate.
pub const RESP_RATE: Code = c(151562, "MDC_RESP_RATE");
/// NIBP systolic.
pub const NIBP_SYS: Code = c(150021, "MDC_PRESS_BLD_NONINV_SYS");
/// NIBP diastolic.
pub const NIBP_DIA: Code = c(150022, "MDC_PRESS_BLD_NONINV_DIA");
/// NIBP mean.
pub const NIBP_MEAN: Code = c(150023, "MDC_PRESS_BLD_NONINV_MEAN");
/// Temperature.
pub const TEMP: Code = c(150344, "MDC_TEMP");
/// Glucose in interstitial fluid (a CGM).
pub const GLU_ISF: Code = c(160212, "MDC_CONC_GLU_ISF");
/// Glucose in capillary whole blood (a meter).
pub const GLU_CAPILLARY: Code = c(160184, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD");
/// Body mass.
pub const MASS_BODY: Code = c(188736, "MDC_MASS_BODY_ACTUAL");
/// Infusion pump's current flow rate.
pub const FLOW_FLUID_PUMP: Code = c(158014, "MDC_FLOW_FLUID_PUMP_CURRENT");
/// medtwin private: ACVPU level of consciousness, coded 0–4 (MDC has no
/// term for it).
pub const X_ACVPU: Code = c(192512, "MDCX_MEDTWIN_ACVPU");
/// medtwin private: supplemental oxygen flow as charted, L/min.
pub const X_O2_FLOW: Code = c(192513, "MDCX_MEDTWIN_O2_FLOW");
/// medtwin private: the patient's NEWS2 SpO2 scale, 1 or 2.
pub const X_SPO2_SCALE: Code = c(192514, "MDCX_MEDTWIN_SPO2_SCALE");
/// medtwin private: a NEWS2 total score.
pub const X_NEWS2_SCORE: Code = c(192515, "MDCX_MEDTWIN_NEWS2_SCORE");

// --- Units (partition 4, dimensions). ---

/// %.
pub const DIM_PERCENT: Code = c(262688, "MDC_DIM_PERCENT");
/// Beats per minute.
pub const DIM_BEAT_PER_MIN: Code = c(264864, "MDC_DIM_BEAT_PER_MIN");
/// Breaths per minute.
pub const DIM_RESP_PER_MIN: Code = c(264928, "MDC_DIM_RESP_PER_MIN");
/// mmHg.
pub const DIM_MMHG: Code = c(266016, "MDC_DIM_MMHG");
/// Degrees Celsius.
pub const DIM_DEGC: Code = c(268192, "MDC_DIM_DEGC");
/// mg/dL.
pub const DIM_MILLI_G_PER_DL: Code = c(264274, "MDC_DIM_MILLI_G_PER_DL");
/// kg.
pub const DIM_KILO_G: Code = c(263875, "MDC_DIM_KILO_G");
/// mL/h.
pub const DIM_MILLI_L_PER_HR: Code = c(265266, "MDC_DIM_MILLI_L_PER_HR");
/// Dimensionless.
pub const DIM_DIMLESS: Code = c(262656, "MDC_DIM_DIMLESS");

// --- Events (partition 3) and ACM attributes (partition 1). ---

/// Alarm (not otherwise specified): OBR-4 and the event row's OBX-3 of
/// an ACM report.
pub const EVT_ALARM: Code = c(196616, "MDC_EVT_ALARM");
/// Disconnected (a sensor off the patient).
pub const EVT_DISCONN: Code = c(196630, "MDC_EVT_DISCONN");
/// Failure (a measurement cycle that failed).
pub const EVT_FAIL: Code = c(196646, "MDC_EVT_FAIL");
/// ECG lead off.
pub const EVT_LEAD_OFF: Code = c(196680, "MDC_EVT_LEAD_OFF");
/// Battery low.
pub const EVT_BATT_LO: Code = c(196802, "MDC_EVT_BATT_LO");
/// Fluid line occlusion.
pub const EVT_FLUID_LINE_OCCL: Code = c(196940, "MDC_EVT_FLUID_LINE_OCCL");
/// medtwin private: NEWS2 aggregate 5–6 or a 3 in one parameter (medium
/// clinical risk).
pub const X_EVT_NEWS2_MEDIUM: Code = c(258048, "MDCX_EVT_MEDTWIN_NEWS2_MEDIUM");
/// medtwin private: NEWS2 aggregate 7 or more (high clinical risk).
pub const X_EVT_NEWS2_HIGH: Code = c(258049, "MDCX_EVT_MEDTWIN_NEWS2_HIGH");
/// medtwin private: perfusion too low for the optical sensor.
pub const X_EVT_LOW_PERFUSION: Code = c(258050, "MDCX_EVT_MEDTWIN_LOW_PERFUSION");
/// medtwin private: sensor past its wear life (a CGM).
pub const X_EVT_SENSOR_EXPIRED: Code = c(258051, "MDCX_EVT_MEDTWIN_SENSOR_EXPIRED");
/// medtwin private: a NEWS2 level below medium (aggregate 1–4).
pub const X_EVT_NEWS2_LOW: Code = c(258052, "MDCX_EVT_MEDTWIN_NEWS2_LOW");

/// ACM facet 2: alert source.
pub const ATTR_ALERT_SOURCE: Code = c(68480, "MDC_ATTR_ALERT_SOURCE");
/// ACM facet 3: event phase.
pub const ATTR_EVENT_PHASE: Code = c(68481, "MDC_ATTR_EVENT_PHASE");
/// ACM facet 4: alarm state.
pub const ATTR_ALARM_STATE: Code = c(68482, "MDC_ATTR_ALARM_STATE");
/// ACM facet 5: alarm inactivation state.
pub const ATTR_ALARM_INACTIVATION_STATE: Code = c(68483, "MDC_ATTR_ALARM_INACTIVATION_STATE");
/// ACM facet 6: alarm priority.
pub const ATTR_ALARM_PRIORITY: Code = c(68484, "MDC_ATTR_ALARM_PRIORITY");
/// ACM facet 7: alert type.
pub const ATTR_ALERT_TYPE: Code = c(68485, "MDC_ATTR_ALERT_TYPE");

/// Where a metric sits in the 11073 containment tree of a PCD-01 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Directly under the MDS (`1.0.0.n`), as personal health devices
    /// mapped to PCD-01 report.
    Mds,
    /// Under VMD `index` (and, for NIBP, its channel).
    Vmd {
        /// The VMD's position under the MDS (OBX-4's second number).
        index: u32,
        /// Its term.
        vmd: Code,
        /// A channel row to write under it, if the profile shows one.
        channel: Option<Code>,
    },
}

/// How one of medtwin's wire values is written in OBX: term, unit and
/// place in the containment tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// OBX-3.
    pub code: Code,
    /// OBX-6's MDC unit, where MDC has one.
    pub unit: Option<Code>,
    /// OBX-4's VMD and channel.
    pub placement: Placement,
}

const SAT_O2_VMD: Placement = Placement::Vmd {
    index: 1,
    vmd: VMD_SAT_O2,
    channel: None,
};
const ECG_VMD: Placement = Placement::Vmd {
    index: 2,
    vmd: VMD_ECG,
    channel: None,
};
const NIBP_VMD: Placement = Placement::Vmd {
    index: 3,
    vmd: VMD_NIBP,
    channel: Some(CHAN_NIBP),
};
const TEMP_VMD: Placement = Placement::Vmd {
    index: 4,
    vmd: VMD_TEMP,
    channel: None,
};
const PUMP_VMD: Placement = Placement::Vmd {
    index: 1,
    vmd: VMD_INFUSION_PUMP,
    channel: None,
};

/// The MDS of a device model, from its catalogue name: pumps and scales
/// by name, everything else a physiological monitor.
pub fn mds_for_kind(device_kind: &str) -> Code {
    if device_kind.contains("pump") {
        MDS_INFUSION_PUMP
    } else if device_kind.contains("scale") {
        MDS_SCALE
    } else {
        MDS_PHYSIO_MONITOR
    }
}

/// How wire value `code` (`hr`, `spo2`, ...) from a device of
/// `device_kind` is written; `None` for a code medtwin does not know.
/// Heart rate takes the term of the device that counts it: the
/// oximeter's pleth, the cuff, or (ECG patch, nurse) the ECG heart rate.
pub fn metric_for(code: &str, device_kind: &str) -> Option<Metric> {
    let m = |code, unit, placement| {
        Some(Metric {
            code,
            unit,
            placement,
        })
    };
    match code {
        "spo2" => m(SAT_O2, Some(DIM_PERCENT), SAT_O2_VMD),
        "hr" if device_kind.contains("oxim") => {
            m(PULS_OXIM_PULS_RATE, Some(DIM_BEAT_PER_MIN), SAT_O2_VMD)
        }
        "hr" if device_kind.contains("bp") => {
            m(PULS_RATE_NON_INV, Some(DIM_BEAT_PER_MIN), NIBP_VMD)
        }
        "hr" if device_kind.contains("ecg") => m(ECG_HEART_RATE, Some(DIM_BEAT_PER_MIN), ECG_VMD),
        "hr" => m(ECG_HEART_RATE, Some(DIM_BEAT_PER_MIN), Placement::Mds),
        "rr" => m(RESP_RATE, Some(DIM_RESP_PER_MIN), Placement::Mds),
        "sbp" => m(NIBP_SYS, Some(DIM_MMHG), NIBP_VMD),
        "dbp" => m(NIBP_DIA, Some(DIM_MMHG), NIBP_VMD),
        "map" => m(NIBP_MEAN, Some(DIM_MMHG), NIBP_VMD),
        "temp" => m(TEMP, Some(DIM_DEGC), TEMP_VMD),
        "glucose" if device_kind.contains("cgm") => {
            m(GLU_ISF, Some(DIM_MILLI_G_PER_DL), Placement::Mds)
        }
        "glucose" => m(GLU_CAPILLARY, Some(DIM_MILLI_G_PER_DL), Placement::Mds),
        "weight" => m(MASS_BODY, Some(DIM_KILO_G), Placement::Mds),
        "infusion_rate" => m(FLOW_FLUID_PUMP, Some(DIM_MILLI_L_PER_HR), PUMP_VMD),
        "acvpu" => m(X_ACVPU, Some(DIM_DIMLESS), Placement::Mds),
        "o2_flow" => m(X_O2_FLOW, None, Placement::Mds),
        "spo2_scale" => m(X_SPO2_SCALE, Some(DIM_DIMLESS), Placement::Mds),
        _ => None,
    }
}

/// The wire value code of a metric term (any heart or pulse rate is `hr`).
pub fn wire_code_of(metric: u32) -> Option<&'static str> {
    Some(match metric {
        150456 => "spo2",
        147842 | 149530 | 149546 => "hr",
        151562 => "rr",
        150021 => "sbp",
        150022 => "dbp",
        150023 => "map",
        150344 => "temp",
        160212 | 160184 => "glucose",
        188736 => "weight",
        158014 => "infusion_rate",
        192512 => "acvpu",
        192513 => "o2_flow",
        192514 => "spo2_scale",
        _ => return None,
    })
}

/// The UCUM unit of an MDC unit term this module uses.
pub fn ucum_of(unit: u32) -> Option<&'static str> {
    Some(match unit {
        262688 => "%",
        264864 | 264928 => "/min",
        266016 => "mm[Hg]",
        268192 => "Cel",
        264274 => "mg/dL",
        263875 => "kg",
        265266 => "mL/h",
        _ => return None,
    })
}

/// The event term of a device technical alarm (`lead_off`, ...): MDC's
/// where it has one, medtwin's private one otherwise, and the generic
/// alarm for one medtwin does not know (its name then travels as text).
pub fn technical_alarm_event(alarm: &str) -> Code {
    match alarm {
        "lead_off" => EVT_LEAD_OFF,
        "low_battery" => EVT_BATT_LO,
        "occlusion" => EVT_FLUID_LINE_OCCL,
        "sensor_off" => EVT_DISCONN,
        "measurement_failed" => EVT_FAIL,
        "low_perfusion" => X_EVT_LOW_PERFUSION,
        "sensor_expired" => X_EVT_SENSOR_EXPIRED,
        _ => EVT_ALARM,
    }
}

/// The technical alarm an event term names, if one of the above.
pub fn technical_alarm_of(event: u32) -> Option<&'static str> {
    Some(match event {
        196680 => "lead_off",
        196802 => "low_battery",
        196940 => "occlusion",
        196630 => "sensor_off",
        196646 => "measurement_failed",
        258050 => "low_perfusion",
        258051 => "sensor_expired",
        _ => return None,
    })
}

/// The event term of one of medtwin's alert kinds: NEWS2 levels (private
/// codes: MDC has no early-warning-score events), device technical alarms
/// (`device-<alarm>` with the alarm's `_` written `-`, as the reference
/// backend names them: `device-lead-off`), and the generic alarm for any
/// other kind.
pub fn event_for_kind(kind: &str) -> Code {
    match kind {
        "news2-high" => X_EVT_NEWS2_HIGH,
        "news2-medium" => X_EVT_NEWS2_MEDIUM,
        "news2-low" => X_EVT_NEWS2_LOW,
        _ => match kind.strip_prefix("device-") {
            Some(alarm) => technical_alarm_event(&alarm.replace('-', "_")),
            None => EVT_ALARM,
        },
    }
}

/// The alert kind an event term names, if it names one on its own.
pub fn kind_of_event(event: u32) -> Option<String> {
    match event {
        258049 => Some("news2-high".into()),
        258048 => Some("news2-medium".into()),
        258052 => Some("news2-low".into()),
        e => technical_alarm_of(e).map(|a| format!("device-{}", a.replace('_', "-"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_code_maps_there_and_back() {
        for code in [
            "hr",
            "spo2",
            "rr",
            "sbp",
            "dbp",
            "map",
            "temp",
            "glucose",
            "weight",
            "infusion_rate",
            "acvpu",
            "o2_flow",
            "spo2_scale",
        ] {
            for kind in [
                "pulse_oximeter",
                "ecg_patch",
                "bp_cuff",
                "cgm",
                "nurse_observations",
            ] {
                let m = metric_for(code, kind).unwrap();
                assert_eq!(wire_code_of(m.code.code), Some(code), "{code} {kind}");
                if let Some(u) = m.unit.filter(|u| u.code != DIM_DIMLESS.code) {
                    assert!(ucum_of(u.code).is_some(), "{code}");
                }
            }
        }
        assert_eq!(metric_for("pulse", "x"), None);
        // Private codes sit in the private range of their partition.
        for p in [
            X_ACVPU,
            X_O2_FLOW,
            X_SPO2_SCALE,
            X_NEWS2_SCORE,
            X_EVT_NEWS2_HIGH,
            X_EVT_LOW_PERFUSION,
        ] {
            assert!(p.code % 65536 >= 0xF000, "{p:?}");
            assert!(p.name.starts_with("MDCX_"), "{p:?}");
        }
        for kind in [
            "news2-high",
            "news2-medium",
            "news2-low",
            "device-lead-off",
            "device-sensor-expired",
        ] {
            assert_eq!(
                kind_of_event(event_for_kind(kind).code).as_deref(),
                Some(kind)
            );
        }
        assert_eq!(event_for_kind("spo2-low"), EVT_ALARM);
        assert_eq!(kind_of_event(EVT_ALARM.code), None);
    }
}
