//! Kaifa head-end `EndDeviceEvent` messages (SPEC §4.3).
//!
//! The consumer converts SOAP XML to JSON, so keys may carry `ns1:`/`ns2:` prefixes, the event
//! type code sits under `@ref`, repeated elements may be one object or a list, and header fields
//! may be `""` or `null`. Required: a `payload` object with an identity (a non-empty
//! `header.message_id` or `payload.event_id`) and at least one timestamp to date the event by.

use serde::Deserialize;
use serde_json::Value;

use super::{decode_as, fields, EventTime};
use crate::error::{ErrorKind, PayloadError, Source};

#[derive(Debug, Deserialize)]
struct Wire {
    #[serde(default, deserialize_with = "fields::opt_code")]
    message_type: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_time")]
    timestamp: Option<EventTime>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    header: Option<Header>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    payload: Option<Payload>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    original_message: Option<Value>,
    /// Present when the consumer's XML transform failed and it forwarded the SOAP text.
    #[serde(default)]
    raw_soap: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Header {
    #[serde(default, deserialize_with = "fields::opt_short")]
    pub verb: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub noun: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_status")]
    pub revision: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_time")]
    pub timestamp: Option<EventTime>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub source: Option<String>,
    #[serde(
        default,
        alias = "AsyncReplyFlag",
        deserialize_with = "fields::opt_flag"
    )]
    pub async_reply_flag: Option<bool>,
    #[serde(default, alias = "AckRequired", deserialize_with = "fields::opt_flag")]
    pub ack_required: Option<bool>,
    #[serde(default, alias = "MessageID", deserialize_with = "fields::opt_code")]
    pub message_id: Option<String>,
    #[serde(
        default,
        alias = "CorrelationID",
        deserialize_with = "fields::opt_code"
    )]
    pub correlation_id: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_text")]
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    pub user: Option<User>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct User {
    #[serde(
        default,
        rename = "ns1:UserID",
        alias = "UserID",
        alias = "ns2:UserID",
        deserialize_with = "fields::opt_code"
    )]
    pub user_id: Option<String>,
    #[serde(
        default,
        rename = "ns1:Organization",
        alias = "Organization",
        alias = "ns2:Organization",
        deserialize_with = "fields::opt_code"
    )]
    pub organization: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Payload {
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub event_id: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_time")]
    pub created_date_time: Option<EventTime>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub issuer_id: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub issuer_tracking_id: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_text")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_short")]
    pub severity: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_code")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    pub event_type: Option<EventTypeRef>,
    #[serde(default, deserialize_with = "fields::one_or_many")]
    pub assets: Vec<NamedObject>,
    #[serde(default, deserialize_with = "fields::one_or_many")]
    pub usage_point: Vec<NamedObject>,
    #[serde(default, deserialize_with = "fields::one_or_many")]
    pub event_details: Vec<Detail>,
    #[serde(default, deserialize_with = "fields::one_or_many")]
    pub names: Vec<Name>,
    #[serde(default, deserialize_with = "fields::opt_block")]
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EventTypeRef {
    #[serde(
        default,
        rename = "@ref",
        alias = "ref",
        alias = "ns2:ref",
        deserialize_with = "fields::opt_short"
    )]
    pub code: Option<String>,
}

/// An asset or usage point: an mRID and its names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NamedObject {
    #[serde(
        default,
        rename = "ns2:mRID",
        alias = "mRID",
        alias = "mrid",
        deserialize_with = "fields::opt_code"
    )]
    pub mrid: Option<String>,
    #[serde(
        default,
        rename = "ns2:Names",
        alias = "Names",
        alias = "names",
        deserialize_with = "fields::one_or_many"
    )]
    pub names: Vec<Name>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Name {
    #[serde(
        default,
        rename = "ns2:name",
        alias = "name",
        deserialize_with = "fields::opt_name"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        rename = "ns2:NameType",
        alias = "NameType",
        deserialize_with = "fields::opt_block"
    )]
    pub name_type: Option<NameType>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NameType {
    #[serde(
        default,
        rename = "ns2:name",
        alias = "name",
        deserialize_with = "fields::opt_code"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        rename = "ns2:description",
        alias = "description",
        deserialize_with = "fields::opt_text"
    )]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Detail {
    #[serde(
        default,
        rename = "ns2:name",
        alias = "name",
        deserialize_with = "fields::opt_name"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        rename = "ns2:value",
        alias = "value",
        deserialize_with = "fields::opt_text"
    )]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Status {
    #[serde(
        default,
        rename = "ns2:dateTime",
        alias = "dateTime",
        deserialize_with = "fields::opt_time"
    )]
    pub date_time: Option<EventTime>,
    #[serde(
        default,
        rename = "ns2:reason",
        alias = "reason",
        deserialize_with = "fields::opt_text"
    )]
    pub reason: Option<String>,
    #[serde(
        default,
        rename = "ns2:remark",
        alias = "remark",
        deserialize_with = "fields::opt_text"
    )]
    pub remark: Option<String>,
    #[serde(
        default,
        rename = "ns2:value",
        alias = "value",
        deserialize_with = "fields::opt_code"
    )]
    pub value: Option<String>,
}

/// How a redelivery of this message is recognised (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryKey {
    MessageId(String),
    EventId(String),
}

impl DeliveryKey {
    /// The value kept in `kaifa_events.delivery_key`.
    pub fn stored(&self) -> String {
        match self {
            DeliveryKey::MessageId(id) => format!("message_id:{id}"),
            DeliveryKey::EventId(id) => format!("event_id:{id}"),
        }
    }

    /// The id written to `oms_meter_status_events.source_event_id`.
    pub fn id(&self) -> &str {
        match self {
            DeliveryKey::MessageId(id) | DeliveryKey::EventId(id) => id,
        }
    }
}

/// A validated Kaifa message.
#[derive(Debug, Clone, PartialEq)]
pub struct KaifaEvent {
    pub message_type: Option<String>,
    /// The consumer's handling time (top-level `timestamp`), if given.
    pub received_at: Option<EventTime>,
    /// When the meter spoke: `payload.created_date_time`, else `header.timestamp`, else the
    /// top-level `timestamp` (SPEC §4.3).
    pub occurred_at: EventTime,
    pub delivery_key: DeliveryKey,
    pub header: Option<Header>,
    pub payload: Payload,
    pub metadata: Option<Value>,
    pub original_message: Option<Value>,
}

impl KaifaEvent {
    /// The assets' mRIDs; with usage-point mRIDs, how a message finds its meter.
    pub fn asset_mrids(&self) -> Vec<String> {
        distinct_mrids(&self.payload.assets)
    }

    pub fn usage_point_mrids(&self) -> Vec<String> {
        distinct_mrids(&self.payload.usage_point)
    }
}

fn distinct_mrids(objects: &[NamedObject]) -> Vec<String> {
    let mut mrids: Vec<String> = Vec::new();
    for mrid in objects.iter().filter_map(|o| o.mrid.clone()) {
        if !mrids.contains(&mrid) {
            mrids.push(mrid);
        }
    }
    mrids
}

pub fn decode(payload: &Value) -> Result<KaifaEvent, PayloadError> {
    let wire: Wire = decode_as(Source::Kaifa, payload)?;
    let bad = |field: &str, problem: &str| {
        PayloadError::new(Source::Kaifa, ErrorKind::InvalidParameter, field, problem)
    };
    let body = match wire.payload {
        Some(body) => body,
        None if wire.raw_soap.is_some() => {
            return Err(bad(
                "payload",
                "missing: the consumer forwarded raw SOAP (its XML transform failed)",
            ))
        }
        None => return Err(bad("payload", "required, but missing or empty")),
    };
    let message_id = wire.header.as_ref().and_then(|h| h.message_id.clone());
    let delivery_key = match (message_id, body.event_id.clone()) {
        (Some(id), _) => DeliveryKey::MessageId(id),
        (None, Some(id)) => DeliveryKey::EventId(id),
        (None, None) => {
            return Err(bad(
                "payload.event_id",
                "required when header.message_id is empty, but missing",
            ))
        }
    };
    let occurred_at = body
        .created_date_time
        .or_else(|| wire.header.as_ref().and_then(|h| h.timestamp))
        .or(wire.timestamp)
        .ok_or_else(|| {
            bad(
                "timestamp",
                "required when payload.created_date_time and header.timestamp are absent, but missing",
            )
        })?;
    Ok(KaifaEvent {
        message_type: wire.message_type,
        received_at: wire.timestamp,
        occurred_at,
        delivery_key,
        header: wire.header,
        payload: body,
        metadata: wire.metadata.filter(|v| !v.is_null()),
        original_message: wire.original_message.filter(|v| !v.is_null()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::tests_support::example;
    use serde_json::json;

    #[test]
    fn decodes_the_minimal_message_without_header() {
        let e = decode(&example("kaifa_minimal.json")).unwrap();
        assert_eq!(
            e.delivery_key,
            DeliveryKey::EventId("KAIFA_TEST_001".into())
        );
        assert_eq!(e.payload.severity.as_deref(), Some("critical"));
        assert_eq!(e.asset_mrids(), vec!["M12345678"]);
        assert_eq!(Some(e.occurred_at), e.received_at);
    }

    #[test]
    fn decodes_the_full_message() {
        let e = decode(&example("kaifa_full.json")).unwrap();
        assert_eq!(
            e.delivery_key,
            DeliveryKey::MessageId("8f1c2a9e-3b5d-4c11-9e0a-7d2f6b1c0a55".into())
        );
        assert_eq!(
            e.payload
                .event_type
                .as_ref()
                .and_then(|t| t.code.as_deref()),
            Some("3.26.0.85")
        );
        assert_eq!(e.payload.event_details.len(), 2);
        assert_eq!(
            (e.asset_mrids(), e.usage_point_mrids()),
            (vec!["M23456789".to_string()], vec!["UP-000451".to_string()])
        );
        assert_eq!(
            e.payload.assets[0].names[0].name.as_deref(),
            Some("Meter M23456789")
        );
        let header = e.header.unwrap();
        assert_eq!(
            (header.async_reply_flag, header.ack_required),
            (Some(false), Some(true))
        );
        assert_eq!(header.user.unwrap().organization.as_deref(), Some("KAIFA"));
        assert_eq!(
            e.occurred_at,
            EventTime::parse("2025-09-30T10:09:58Z").unwrap()
        );
    }

    #[test]
    fn decodes_what_the_consumer_produces() {
        let e = decode(&example("kaifa_from_consumer.json")).unwrap();
        // message_id is "": the payload's event id identifies the message.
        assert_eq!(
            e.delivery_key,
            DeliveryKey::EventId("EDE-20250930-000777".into())
        );
        assert_eq!(e.payload.event_details.len(), 1);
        assert_eq!(e.payload.status, None);
        assert!(e.payload.names.is_empty());
        assert_eq!(
            (e.asset_mrids(), e.usage_point_mrids()),
            (vec!["M12345678".to_string()], vec![])
        );
        let header = e.header.unwrap();
        assert_eq!(
            (
                header.async_reply_flag,
                header.ack_required,
                header.revision
            ),
            (Some(false), None, None)
        );
    }

    #[test]
    fn event_time_prefers_the_device_clock() {
        let e = decode(&json!({
            "timestamp": "2025-09-30T13:00:00", "header": {"timestamp": "2025-09-30T10:00:01Z"},
            "payload": {"event_id": "E1"}
        }))
        .unwrap();
        assert_eq!(
            e.occurred_at,
            EventTime::parse("2025-09-30T10:00:01Z").unwrap()
        );
    }

    #[test]
    fn refuses_messages_without_an_event() {
        for (payload, field) in [
            (
                json!({"raw_soap": "<soap/>", "original_message": {}}),
                "payload",
            ),
            (
                json!({"timestamp": "2025-09-30T10:00:00Z", "payload": {}}),
                "payload",
            ),
            (
                json!({"timestamp": "2025-09-30T10:00:00Z", "payload": {"severity": "high"}}),
                "payload.event_id",
            ),
            (json!({"payload": {"event_id": "E1"}}), "timestamp"),
            (
                json!({"timestamp": "2025-09-30T10:00:00Z", "payload": {"event_id": "E1", "event_details": "x"}}),
                "payload.event_details",
            ),
            (
                json!({"timestamp": "2025-09-30T10:00:00Z", "payload": {"event_id": "E1", "assets": [{"ns2:mRID": {"x": 1}}]}}),
                "payload.assets[0].ns2:mRID",
            ),
            (
                json!({"timestamp": "2025-09-30T10:00:00Z", "header": {"ack_required": "maybe"}, "payload": {"event_id": "E1"}}),
                "header.ack_required",
            ),
        ] {
            let e = decode(&payload).unwrap_err();
            assert_eq!(e.field, field, "{payload}: {e}");
        }
    }
}
