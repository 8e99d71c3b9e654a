//! ONU: `insert_onu_event_from_json` and `insert_onu_event_from_json_with_meter_sync` (SPEC §4.2).

use pgrx::prelude::*;

use super::{after_signal, before_signal, event_time, ingest, IngestError, Payload};
use crate::canonical;
use crate::db::jsonb::RawJsonb;
use crate::db::store::onu::{stable_event_id, store};
use crate::error::Source;
use crate::gucs;
use crate::payload::onu::{self as payload, OnuEvent};

/// Stores the event (and a stub ONU when the ONU is unknown); returns `onu_events.id`.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_onu_event_from_json(json_data: Option<RawJsonb>) -> Option<i32> {
    ingest(
        "insert_onu_event_from_json",
        Source::Onu,
        json_data,
        |client, received| {
            let (event, event_id, at) = decode(received)?;
            Ok(store(client, &event, &event_id, at, received.raw, None)?.id)
        },
    )
}

/// Stores the event and, for a last gasp or power restored, updates every active meter behind
/// the ONU with one audited status event each, and queues the signal for the correlator.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_onu_event_from_json_with_meter_sync(json_data: Option<RawJsonb>) -> Option<i32> {
    ingest(
        "insert_onu_event_from_json_with_meter_sync",
        Source::Onu,
        json_data,
        |client, received| {
            let (event, event_id, at) = decode(received)?;
            let signal = canonical::from_onu(&event, &event_id, &gucs::confidences());
            if signal.is_some() {
                before_signal(client)?;
            }
            let stored = store(client, &event, &event_id, at, received.raw, signal.as_ref())?;
            if signal.is_some() && !stored.duplicate {
                after_signal(client)?;
            }
            Ok(stored.id)
        },
    )
}

/// The validated event, the id it is stored under, and its time.
fn decode(received: &Payload) -> Result<(OnuEvent, String, TimestampWithTimeZone), IngestError> {
    let event = payload::decode(&received.value)?;
    let at = event_time(Source::Onu, "timestamp", event.timestamp)?;
    let event_id = event
        .event_id
        .clone()
        .unwrap_or_else(|| stable_event_id(&event, at));
    Ok((event, event_id, at))
}
