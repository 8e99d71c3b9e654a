//! Call-center trouble tickets (SPEC §4.4).
//!
//! Required: `ticketId`, `timestamp` and a `customer` object. A ticket without a meter number is
//! stored unlinked.

use serde::Deserialize;
use serde_json::Value;

use super::{decode_as, fields, required, EventTime};
use crate::error::{PayloadError, Source};

#[derive(Debug, Deserialize)]
struct Wire {
    #[serde(
        default,
        rename = "ticketId",
        alias = "ticket_id",
        deserialize_with = "fields::opt_code"
    )]
    ticket_id: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_time")]
    timestamp: Option<EventTime>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    customer: Option<Customer>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    intake: Option<Intake>,
    #[serde(default, deserialize_with = "fields::opt_short")]
    status: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Customer {
    #[serde(default, deserialize_with = "fields::opt_short")]
    pub phone: Option<String>,
    #[serde(
        default,
        rename = "meterNumber",
        alias = "meter_number",
        deserialize_with = "fields::opt_code"
    )]
    pub meter_number: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_text")]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_text")]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Intake {
    #[serde(
        default,
        rename = "intakeId",
        alias = "intake_id",
        deserialize_with = "fields::opt_code"
    )]
    pub intake_id: Option<String>,
    #[serde(
        default,
        rename = "omsEventId",
        alias = "oms_event_id",
        deserialize_with = "fields::opt_code"
    )]
    pub oms_event_id: Option<String>,
}

/// A validated ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub ticket_id: String,
    pub timestamp: EventTime,
    pub customer: Customer,
    pub intake: Intake,
    pub status: String,
    pub source: Option<String>,
}

pub fn decode(payload: &Value) -> Result<Ticket, PayloadError> {
    let wire: Wire = decode_as(Source::CallCenter, payload)?;
    Ok(Ticket {
        ticket_id: required(Source::CallCenter, "ticketId", wire.ticket_id)?,
        timestamp: required(Source::CallCenter, "timestamp", wire.timestamp)?,
        customer: required(Source::CallCenter, "customer", wire.customer)?,
        intake: wire.intake.unwrap_or_default(),
        status: wire.status.unwrap_or_else(|| "open".to_string()),
        source: wire.source,
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
        let t = decode(&example("callcenter_ticket.json")).unwrap();
        assert_eq!(t.ticket_id, "TC_TEST_001");
        assert_eq!(t.customer.meter_number.as_deref(), Some("M12345678"));
        assert_eq!(t.status, "open");
        let unlinked = decode(&example("callcenter_ticket_no_meter.json")).unwrap();
        assert_eq!(unlinked.customer.meter_number, None);
        assert_eq!(unlinked.intake.intake_id.as_deref(), Some("IN-0002"));
    }

    #[test]
    fn names_the_missing_or_bad_field() {
        let cases = [
            (
                json!({"timestamp": "2025-09-30T10:15:00Z", "customer": {"phone": "1"}}),
                "ticketId",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"ticketId": "T", "customer": {"phone": "1"}}),
                "timestamp",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"ticketId": "T", "timestamp": "2025-09-30T10:15:00Z"}),
                "customer",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"ticketId": "T", "timestamp": "2025-09-30T10:15:00Z", "customer": {}}),
                "customer",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"ticketId": "T", "timestamp": "2025-09-30T10:15:00Z", "customer": {"meterNumber": ["M1"]}}),
                "customer.meterNumber",
                ErrorKind::InvalidParameter,
            ),
            (
                json!({"ticketId": "T", "timestamp": "2025-09-30T10:15:00Z", "customer": {"phone": "9".repeat(51)}}),
                "customer.phone",
                ErrorKind::StringTooLong,
            ),
            (
                json!({"ticketId": {"id": 1}, "timestamp": "2025-09-30T10:15:00Z", "customer": {"phone": "1"}}),
                "ticketId",
                ErrorKind::InvalidParameter,
            ),
        ];
        for (payload, field, kind) in cases {
            let e = decode(&payload).unwrap_err();
            assert_eq!((e.field.as_str(), e.kind), (field, kind), "{payload}");
        }
    }
}
