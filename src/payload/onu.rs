//! ONU alarms from the fibre NMS (SPEC §4.2).
//!
//! Required: `onuId` (a 32-bit integer, or its text), `type`, `timestamp`. `eventId` is optional:
//! without it the event is identified by ONU, type and time, which is also how a redelivery under
//! a freshly invented `onu_<millis>` id is recognised (SPEC §6).

use serde::Deserialize;
use serde_json::Value;

use super::{decode_as, fields, required, Coordinates, EventTime};
use crate::error::{PayloadError, Source};

pub const LAST_GASP: &str = "ONU_LastGaspAlert";
pub const POWER_RESTORED: &str = "ONU_PowerRestored";

#[derive(Debug, Deserialize)]
struct Wire {
    #[serde(
        default,
        rename = "eventId",
        alias = "event_id",
        deserialize_with = "fields::opt_code"
    )]
    event_id: Option<String>,
    #[serde(
        default,
        rename = "type",
        alias = "eventType",
        deserialize_with = "fields::opt_code"
    )]
    event_type: Option<String>,
    #[serde(
        default,
        rename = "onuId",
        alias = "onu_id",
        deserialize_with = "fields::opt_int32"
    )]
    onu_id: Option<i32>,
    #[serde(
        default,
        rename = "onuSerial",
        alias = "onu_serial",
        deserialize_with = "fields::opt_code"
    )]
    onu_serial: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_time")]
    timestamp: Option<EventTime>,
    #[serde(
        default,
        rename = "alarmData",
        alias = "alarm_data",
        deserialize_with = "fields::opt_block"
    )]
    alarm_data: Option<AlarmData>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    location: Option<Coordinates>,
    #[serde(
        default,
        rename = "associatedMeters",
        alias = "associated_meters",
        deserialize_with = "fields::code_list"
    )]
    associated_meters: Vec<String>,
    #[serde(
        default,
        rename = "nmsType",
        alias = "nms_type",
        deserialize_with = "fields::opt_code"
    )]
    nms_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AlarmData {
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub category: Option<String>,
    #[serde(
        default,
        rename = "alarmType",
        alias = "alarm_type",
        deserialize_with = "fields::opt_code"
    )]
    pub alarm_type: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub parcel: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub serial: Option<String>,
}

/// What an ONU event means for the meters behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnuSignal {
    LastGasp,
    PowerRestored,
    Other,
}

/// A validated ONU event.
#[derive(Debug, Clone, PartialEq)]
pub struct OnuEvent {
    /// `None` when the producer sent no id; the shell derives a stable one (see `stable_event_id`).
    pub event_id: Option<String>,
    pub event_type: String,
    pub onu_id: i32,
    pub onu_serial: Option<String>,
    pub timestamp: EventTime,
    pub alarm: AlarmData,
    pub location: Coordinates,
    pub associated_meters: Vec<String>,
    pub nms_type: Option<String>,
}

impl OnuEvent {
    pub fn signal(&self) -> OnuSignal {
        match self.event_type.as_str() {
            LAST_GASP => OnuSignal::LastGasp,
            POWER_RESTORED => OnuSignal::PowerRestored,
            _ => OnuSignal::Other,
        }
    }
}

pub fn decode(payload: &Value) -> Result<OnuEvent, PayloadError> {
    let wire: Wire = decode_as(Source::Onu, payload)?;
    Ok(OnuEvent {
        onu_id: required(Source::Onu, "onuId", wire.onu_id)?,
        event_type: required(Source::Onu, "type", wire.event_type)?,
        timestamp: required(Source::Onu, "timestamp", wire.timestamp)?,
        event_id: wire.event_id,
        onu_serial: wire.onu_serial,
        alarm: wire.alarm_data.unwrap_or_default(),
        location: wire.location.unwrap_or_default(),
        associated_meters: wire.associated_meters,
        nms_type: wire.nms_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::payload::tests_support::example;
    use serde_json::json;

    #[test]
    fn decodes_the_examples() {
        let gasp = decode(&example("onu_last_gasp.json")).unwrap();
        assert_eq!(gasp.onu_id, 3230316);
        assert_eq!(gasp.signal(), OnuSignal::LastGasp);
        assert_eq!(gasp.associated_meters, vec!["M12345678", "M23456789"]);
        assert_eq!(gasp.alarm.alarm_type.as_deref(), Some("last_gasp"));
        let restored = decode(&example("onu_power_restored.json")).unwrap();
        assert_eq!(restored.signal(), OnuSignal::PowerRestored);
        assert!(restored.associated_meters.is_empty());
    }

    #[test]
    fn tolerates_xml_spellings() {
        let e = decode(&json!({
            "eventId": "", "type": "ONU_Other", "onuId": "42", "onuSerial": "",
            "timestamp": "2025-09-30T10:05:00", "alarmData": {}, "location": null,
            "associatedMeters": ["M1", "", "M1", 77]
        }))
        .unwrap();
        assert_eq!(e.signal(), OnuSignal::Other);
        assert_eq!((e.event_id, e.onu_id, e.onu_serial), (None, 42, None));
        assert_eq!(e.associated_meters, vec!["M1", "77"]);
    }

    #[test]
    fn names_the_missing_or_bad_field() {
        let cases = [
            (
                json!({"type": "ONU_LastGaspAlert", "timestamp": "2025-09-30T10:05:00Z"}),
                "onuId",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"onuId": "ONU-7", "type": "x", "timestamp": "2025-09-30T10:05:00Z"}),
                "onuId",
                ErrorKind::InvalidText,
            ),
            (
                json!({"onuId": 9_999_999_999_i64, "type": "x", "timestamp": "2025-09-30T10:05:00Z"}),
                "onuId",
                ErrorKind::OutOfRange,
            ),
            (
                json!({"onuId": 1, "timestamp": "2025-09-30T10:05:00Z"}),
                "type",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"onuId": 1, "type": "x", "timestamp": "30/09/2025"}),
                "timestamp",
                ErrorKind::InvalidDatetime,
            ),
            (
                json!({"onuId": 1, "type": "x", "timestamp": "2025-09-30T10:05:00Z", "associatedMeters": [{"m": 1}]}),
                "associatedMeters[0]",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"onuId": 1, "type": "x", "timestamp": "2025-09-30T10:05:00Z", "eventId": "E".repeat(101)}),
                "eventId",
                ErrorKind::StringTooLong,
            ),
            (
                json!({"onuId": 1, "type": "x", "timestamp": "2025-09-30T10:05:00Z", "alarmData": "power"}),
                "alarmData",
                ErrorKind::InvalidParameter,
            ),
        ];
        for (payload, field, kind) in cases {
            let e = decode(&payload).unwrap_err();
            assert_eq!((e.field.as_str(), e.kind), (field, kind), "{payload}");
        }
    }
}
