//! The one shape every source is reduced to (STYLE practice 2).
//!
//! A [`MeterSignal`] says who (which meters), what (power off, power on, communication seen, a
//! customer report), when, how sure, and which source event said it. The registry and audit code
//! in `db::registry` is written once against this shape. SCADA alarms name a feeder or substation
//! instead of meters and become a [`ScadaAlarmCheck`], whose scope is resolved in SQL.

pub mod kaifa_codes;
pub mod scada_vocabulary;

use serde_json::{json, Value};

use crate::error::Source;
use crate::payload::callcenter::Ticket;
use crate::payload::kaifa::KaifaEvent;
use crate::payload::onu::{OnuEvent, OnuSignal};
use crate::payload::EventTime;
use kaifa_codes::KaifaMeaning;

/// What a signal says about a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The meter (or its ONU) reported losing mains, and has gone silent with it.
    LastGasp,
    /// The meter (or its ONU) reported mains back, and speaks again.
    PowerRestored,
    /// SCADA saw the feeder or substation go dead: power off; communication is left as observed.
    FeederDeenergized,
    /// SCADA saw the feeder or substation energized: power on; communication unknown until the
    /// meter speaks.
    FeederEnergized,
    /// The meter spoke: communication online, power unchanged.
    CommunicationSeen,
    /// A customer says the power is off. Audited, never written to the registry (SPEC §4.4).
    CustomerReport,
}

impl StatusChange {
    /// `oms_meter_status_events.event_type`.
    pub fn event_type(self) -> &'static str {
        match self {
            StatusChange::LastGasp
            | StatusChange::FeederDeenergized
            | StatusChange::CustomerReport => "power_off",
            StatusChange::PowerRestored | StatusChange::FeederEnergized => "power_on",
            StatusChange::CommunicationSeen => "communication_restored",
        }
    }

    /// The `power_status` this change writes, if it writes one.
    pub fn new_power_status(self) -> Option<&'static str> {
        match self {
            StatusChange::LastGasp | StatusChange::FeederDeenergized => Some("off"),
            StatusChange::PowerRestored | StatusChange::FeederEnergized => Some("on"),
            StatusChange::CommunicationSeen | StatusChange::CustomerReport => None,
        }
    }

    /// The `communication_status` this change writes, if it writes one.
    pub fn new_communication_status(self) -> Option<&'static str> {
        match self {
            StatusChange::LastGasp => Some("offline"),
            StatusChange::PowerRestored | StatusChange::CommunicationSeen => Some("online"),
            StatusChange::FeederDeenergized
            | StatusChange::FeederEnergized
            | StatusChange::CustomerReport => None,
        }
    }
}

/// Which meters a signal is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterSelector {
    /// Every active meter registered behind the ONU, plus the listed meter numbers.
    BehindOnu {
        onu_id: i32,
        meter_numbers: Vec<String>,
    },
    /// Meters matched by asset mRID, usage-point mRID, or a meter number equal to an asset mRID
    /// (Kaifa, SPEC §4.3).
    ByMrid {
        asset_mrids: Vec<String>,
        usage_point_mrids: Vec<String>,
    },
    /// The meter a customer called about, by number. Reports are audited, never applied.
    ReportedMeter(String),
}

/// A source event reduced to its meaning for the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSignal {
    pub source: Source,
    pub source_event_id: String,
    pub change: StatusChange,
    pub at: EventTime,
    pub confidence: f64,
    pub selector: MeterSelector,
    pub metadata: Value,
}

/// Confidence scores from the session's settings (SPEC §8).
#[derive(Debug, Clone, Copy)]
pub struct Confidences {
    pub onu: f64,
    pub kaifa: f64,
    pub call_center: f64,
}

pub fn from_onu(event: &OnuEvent, event_id: &str, confidence: &Confidences) -> Option<MeterSignal> {
    let change = match event.signal() {
        OnuSignal::LastGasp => StatusChange::LastGasp,
        OnuSignal::PowerRestored => StatusChange::PowerRestored,
        OnuSignal::Other => return None,
    };
    Some(MeterSignal {
        source: Source::Onu,
        source_event_id: event_id.to_string(),
        change,
        at: event.timestamp,
        confidence: confidence.onu,
        selector: MeterSelector::BehindOnu {
            onu_id: event.onu_id,
            meter_numbers: event.associated_meters.clone(),
        },
        metadata: json!({"onu_id": event.onu_id, "onu_event_type": event.event_type}),
    })
}

pub fn from_kaifa(event: &KaifaEvent, confidence: &Confidences) -> Option<MeterSignal> {
    let code = event
        .payload
        .event_type
        .as_ref()
        .and_then(|t| t.code.as_deref());
    let classification = kaifa_codes::classify(code, event.payload.severity.as_deref());
    let change = match classification.meaning {
        KaifaMeaning::PowerOff => StatusChange::LastGasp,
        KaifaMeaning::PowerRestored => StatusChange::PowerRestored,
        KaifaMeaning::CommunicationOnly => StatusChange::CommunicationSeen,
        KaifaMeaning::PowerQuality => return None,
    };
    let asset_mrids = event.asset_mrids();
    let usage_point_mrids = event.usage_point_mrids();
    if asset_mrids.is_empty() && usage_point_mrids.is_empty() {
        return None;
    }
    Some(MeterSignal {
        source: Source::Kaifa,
        source_event_id: event.delivery_key.id().to_string(),
        change,
        at: event.occurred_at,
        confidence: confidence.kaifa,
        selector: MeterSelector::ByMrid {
            asset_mrids,
            usage_point_mrids,
        },
        metadata: json!({"classified_by": classification.basis, "reason": event.payload.reason}),
    })
}

pub fn from_ticket(ticket: &Ticket, confidence: &Confidences) -> Option<MeterSignal> {
    let meter_number = ticket.customer.meter_number.clone()?;
    Some(MeterSignal {
        source: Source::CallCenter,
        source_event_id: ticket.ticket_id.clone(),
        change: StatusChange::CustomerReport,
        at: ticket.timestamp,
        confidence: confidence.call_center,
        selector: MeterSelector::ReportedMeter(meter_number),
        metadata: json!({"ticket_id": ticket.ticket_id, "customer_phone": ticket.customer.phone}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::tests_support::example;
    use crate::payload::{callcenter, kaifa, onu};

    const CONF: Confidences = Confidences {
        onu: 0.85,
        kaifa: 0.90,
        call_center: 0.60,
    };

    #[test]
    fn onu_last_gasp_turns_meters_off() {
        let event = onu::decode(&example("onu_last_gasp.json")).unwrap();
        let signal = from_onu(&event, "ONU_TEST_001", &CONF).unwrap();
        assert_eq!(signal.change, StatusChange::LastGasp);
        assert_eq!(signal.confidence, 0.85);
        assert_eq!(
            signal.selector,
            MeterSelector::BehindOnu {
                onu_id: 3230316,
                meter_numbers: vec!["M12345678".into(), "M23456789".into()]
            }
        );
        let mut other = event.clone();
        other.event_type = "ONU_LinkDown".into();
        assert_eq!(from_onu(&other, "x", &CONF), None);
    }

    #[test]
    fn kaifa_examples_are_power_off() {
        for name in [
            "kaifa_minimal.json",
            "kaifa_full.json",
            "kaifa_from_consumer.json",
        ] {
            let event = kaifa::decode(&example(name)).unwrap();
            let signal = from_kaifa(&event, &CONF).unwrap();
            assert_eq!(signal.change, StatusChange::LastGasp, "{name}");
            assert_eq!(signal.change.new_communication_status(), Some("offline"));
        }
    }

    #[test]
    fn a_ticket_is_a_report_not_a_status_change() {
        let ticket = callcenter::decode(&example("callcenter_ticket.json")).unwrap();
        let signal = from_ticket(&ticket, &CONF).unwrap();
        assert_eq!(
            (signal.change.event_type(), signal.change.new_power_status()),
            ("power_off", None)
        );
        assert_eq!(
            signal.metadata,
            json!({"ticket_id": "TC_TEST_001", "customer_phone": "+962-7-1234-5678"})
        );
        let unlinked = callcenter::decode(&example("callcenter_ticket_no_meter.json")).unwrap();
        assert_eq!(from_ticket(&unlinked, &CONF), None);
    }
}
