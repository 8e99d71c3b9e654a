//! SCADA: `insert_scada_event_from_json` and `insert_scada_event_with_meter_check` (SPEC §4.1).

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};

use super::{event_time, ingest, IngestError, Payload};
use crate::correlation::scada_alarm::{check_alarm, never_checked};
use crate::correlation::scada_result::ScadaResult;
use crate::db::jsonb::RawJsonb;
use crate::db::store::scada::{store, StoredAlarm};
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
        |client, received| Ok(decode_and_store(client, received)?.1.stored.id),
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
            let (alarm, stored) = decode_and_store(client, received)?;
            let id = stored.stored.id;
            if stored.stored.duplicate {
                let result = match stored.previous_result {
                    Some(previous) => ScadaResult::redelivered(previous),
                    None => never_checked(client, id, &alarm)?,
                };
                return Ok(JsonB(result.to_json()));
            }
            let at = event_time(Source::Scada, "timestamp", alarm.timestamp)?;
            Ok(JsonB(check_alarm(client, id, &alarm, at)?.to_json()))
        },
    )
}

fn decode_and_store(
    client: &mut SpiClient<'_>,
    received: &Payload,
) -> Result<(ScadaAlarm, StoredAlarm), IngestError> {
    let alarm = payload::decode(&received.value)?;
    let at = event_time(Source::Scada, "timestamp", alarm.timestamp)?;
    let stored = store(client, &alarm, at, received.raw)?;
    Ok((alarm, stored))
}
