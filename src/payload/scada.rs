//! SCADA alarms (SPEC §4.1).
//!
//! Required: `eventType`, `substationId`, `timestamp`. Everything else is optional.

use serde::Deserialize;
use serde_json::Value;

use super::{decode_as, fields, required, Coordinates, EventTime};
use crate::error::{PayloadError, Source};

#[derive(Debug, Deserialize)]
struct Wire {
    #[serde(
        default,
        rename = "eventType",
        alias = "event_type",
        deserialize_with = "fields::opt_code"
    )]
    event_type: Option<String>,
    #[serde(
        default,
        rename = "substationId",
        alias = "substation_id",
        deserialize_with = "fields::opt_code"
    )]
    substation_id: Option<String>,
    #[serde(
        default,
        rename = "feederId",
        alias = "feeder_id",
        deserialize_with = "fields::opt_code"
    )]
    feeder_id: Option<String>,
    #[serde(
        default,
        rename = "mainStationId",
        alias = "main_station_id",
        deserialize_with = "fields::opt_code"
    )]
    main_station_id: Option<String>,
    #[serde(
        default,
        rename = "alarmType",
        alias = "alarm_type",
        deserialize_with = "fields::opt_code"
    )]
    alarm_type: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_time")]
    timestamp: Option<EventTime>,
    #[serde(default, deserialize_with = "fields::opt_voltage")]
    voltage: Option<f64>,
    #[serde(default, deserialize_with = "fields::opt_short")]
    severity: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_text")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    coordinates: Option<Coordinates>,
    #[serde(default, deserialize_with = "fields::opt_source")]
    source: Option<String>,
}

/// A validated SCADA alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct ScadaAlarm {
    pub event_type: String,
    pub substation_id: String,
    pub feeder_id: Option<String>,
    pub main_station_id: Option<String>,
    pub alarm_type: Option<String>,
    pub timestamp: EventTime,
    pub voltage: Option<f64>,
    pub severity: Option<String>,
    pub reason: Option<String>,
    pub coordinates: Coordinates,
    pub source: Option<String>,
}

pub fn decode(payload: &Value) -> Result<ScadaAlarm, PayloadError> {
    let wire: Wire = decode_as(Source::Scada, payload)?;
    Ok(ScadaAlarm {
        event_type: required(Source::Scada, "eventType", wire.event_type)?,
        substation_id: required(Source::Scada, "substationId", wire.substation_id)?,
        timestamp: required(Source::Scada, "timestamp", wire.timestamp)?,
        feeder_id: wire.feeder_id,
        main_station_id: wire.main_station_id,
        alarm_type: wire.alarm_type,
        voltage: wire.voltage,
        severity: wire.severity,
        reason: wire.reason,
        coordinates: wire.coordinates.unwrap_or_default(),
        source: wire.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    fn example(name: &str) -> Value {
        crate::payload::tests_support::example(name)
    }

    #[test]
    fn decodes_the_examples() {
        let trip = decode(&example("scada_breaker_trip.json")).unwrap();
        assert_eq!(
            (trip.substation_id.as_str(), trip.feeder_id.as_deref()),
            ("SS001", Some("FD002"))
        );
        assert_eq!(trip.voltage, Some(0.0));
        let lov = decode(&example("scada_loss_of_voltage.json")).unwrap();
        assert_eq!(lov.alarm_type.as_deref(), Some("De-energized"));
        assert_eq!(
            lov.coordinates,
            Coordinates {
                lat: Some(31.94),
                lng: Some(35.97)
            }
        );
        let restore = decode(&example("scada_restoration.json")).unwrap();
        assert_eq!(restore.voltage, Some(11000.0));
    }

    #[test]
    fn names_the_missing_or_bad_field() {
        let cases = [
            (
                json!({"substationId": "SS1", "timestamp": "2025-09-30T10:00:00Z"}),
                "eventType",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"eventType": "trip", "substationId": "", "timestamp": "2025-09-30T10:00:00Z"}),
                "substationId",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"eventType": "trip", "substationId": "SS1"}),
                "timestamp",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"eventType": "trip", "substationId": "SS1", "timestamp": 1759226400}),
                "timestamp",
                ErrorKind::InvalidDatetime,
            ),
            (
                json!({"eventType": "trip", "substationId": "SS1", "timestamp": "2025-09-30T10:00:00Z", "voltage": "high"}),
                "voltage",
                ErrorKind::InvalidText,
            ),
            (
                json!({"eventType": "trip", "substationId": "SS1", "timestamp": "2025-09-30T10:00:00Z", "coordinates": {"lat": 91}}),
                "coordinates.lat",
                ErrorKind::OutOfRange,
            ),
            (
                json!({"eventType": ["trip"], "substationId": "SS1", "timestamp": "2025-09-30T10:00:00Z"}),
                "eventType",
                ErrorKind::InvalidParameter,
            ),
        ];
        for (payload, field, kind) in cases {
            let e = decode(&payload).unwrap_err();
            assert_eq!((e.field.as_str(), e.kind), (field, kind), "{payload}");
        }
    }
}
