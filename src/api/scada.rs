//! SCADA: `insert_scada_event_from_json` and `insert_scada_event_with_meter_check` (SPEC §4.1).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};

use super::{event_time, ingest, IngestError, Payload};
use crate::correlation::scada_alarm::{check_alarm, classify_and_lock, never_checked};
use crate::correlation::scada_result::ScadaResult;
use crate::db::jsonb::RawJsonb;
use crate::db::store::scada::store;
use crate::error::Source;
use crate::payload::scada::{self as payload, ScadaAlarm};

/// Stores the alarm only; no meter work.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_scada_event_from_json(json_data: Option<RawJsonb>) -> Option<Uuid> {
    ingest(
        "insert_scada_event_from_json",
        Source::Scada,
        json_data,
        |client, received| {
            let (alarm, at) = decode(received)?;
            Ok(store(client, &alarm, at, received.raw)?.stored.id)
        },
    )
}

/// Stores the alarm, checks the meters in scope, and opens, joins or restores the outage.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_scada_event_with_meter_check(json_data: Option<RawJsonb>) -> Option<JsonB> {
    ingest(
        "insert_scada_event_with_meter_check",
        Source::Scada,
        json_data,
        |client, received| {
            let (alarm, at) = decode(received)?;
            let classification = classify_and_lock(client, &alarm)?;
            let stored = store(client, &alarm, at, received.raw)?;
            let id = stored.stored.id;
            if stored.stored.duplicate {
                let result = match stored.previous_result {
                    Some(previous) => ScadaResult::redelivered(previous),
                    None => never_checked(id, &classification),
                };
                return Ok(JsonB(result.to_json()));
            }
            Ok(JsonB(
                check_alarm(client, id, &alarm, &classification, at)?.to_json(),
            ))
        },
    )
}

fn decode(received: &Payload) -> Result<(ScadaAlarm, TimestampWithTimeZone), IngestError> {
    let alarm = payload::decode(&received.value)?;
    let at = event_time(Source::Scada, "timestamp", alarm.timestamp)?;
    Ok((alarm, at))
}
