//! Call center: `insert_callcenter_ticket_from_json` and
//! `insert_callcenter_ticket_from_json_with_meter_link` (SPEC §4.4).

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::Uuid;

use super::jsonb::RawJsonb;
use super::{event_time, ingest, IngestError, Payload};
use crate::canonical;
use crate::db::registry;
use crate::db::store::callcenter::store;
use crate::db::store::Stored;
use crate::error::Source;
use crate::gucs;
use crate::payload::callcenter::{self as payload, Ticket};

/// Stores the ticket, customer, status history and raw message; links the customer to the meter.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_callcenter_ticket_from_json(json_data: Option<RawJsonb>) -> Option<Uuid> {
    ingest(
        "insert_callcenter_ticket_from_json",
        Source::CallCenter,
        json_data,
        |client, received| Ok(decode_and_store(client, received)?.2.id),
    )
}

/// Stores the ticket and records the customer's report against the meter as a `power_off` status
/// event (confidence 0.60 by default). The report does not change the meter's `power_status`.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn insert_callcenter_ticket_from_json_with_meter_link(
    json_data: Option<RawJsonb>,
) -> Option<Uuid> {
    ingest(
        "insert_callcenter_ticket_from_json_with_meter_link",
        Source::CallCenter,
        json_data,
        |client, received| {
            let (ticket, at, stored) = decode_and_store(client, received)?;
            if !stored.duplicate {
                if let Some(signal) = canonical::from_ticket(&ticket, &gucs::confidences()) {
                    registry::apply(client, &signal, at)?;
                }
            }
            Ok(stored.id)
        },
    )
}

fn decode_and_store(
    client: &mut SpiClient<'_>,
    received: &Payload,
) -> Result<(Ticket, TimestampWithTimeZone, Stored<Uuid>), IngestError> {
    let ticket = payload::decode(&received.value)?;
    let at = event_time(Source::CallCenter, "timestamp", ticket.timestamp)?;
    let stored = store(client, &ticket, at, received.raw)?;
    Ok((ticket, at, stored))
}
